/* http.c -- the libmicrohttpd daemon and the life of a request.
 *
 * One daemon with an epoll thread pool serves every connection; no handler
 * ever blocks on anything but a database write.  A request's life:
 *   1. uri_log_cb allocates its struct vx_req (the raw URI length is known
 *      only here, for the 414 check);
 *   2. the first access_cb call, headers only, refuses a URL or an
 *      announced body over the limits (414/413); a request that announces
 *      a body is admitted here too -- routed (404/405), its snapshot and
 *      token checked (503, 401/403) -- so that a refusal never reads or
 *      keeps the body;
 *   3. body calls append to r->body up to the cap;
 *   4. the final call admits a request without a body the same way, then
 *      runs the handler, which queues a reply, or parks the connection
 *      (long-poll) and runs again after the resume;
 *   5. completed_cb logs one line, counts metrics and runs the handler's
 *      cleanup (rh_cleaner), then frees the context.
 *
 * The routing table is routes.c; what handlers call to answer is
 * http_reply.c.  Replies always carry X-Request-Id; errors carry the body of
 * docs/api.md §5. */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "config.h"
#include "httputil.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "timeutil.h"

static struct MHD_Daemon *daemon_;
static atomic_uint open_connections;

/* ---- request context ----------------------------------------------------- */

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct vx_req *r = calloc(1, sizeof(*r));

    (void)cls;
    if (r == NULL)
        return NULL;
    r->conn = conn;
    r->raw_uri_len = strlen(uri);
    r->start_us = time_monotonic_us();
    return r;
}

static void req_free(struct vx_req *r)
{
    longpoll_forget(&r->waiter);
    if (r->rh_cleaner != NULL)
        r->rh_cleaner(r->rh_ctx);
    if (r->db.job_free != NULL)
        r->db.job_free(r->db.job);
    for (int i = 0; i < r->nheaders; i++)
        free(r->hvalue[i]);
    for (size_t i = 0; i < r->match.argc; i++)
        free((char *)r->match.argv[i]);
    free(r->body);
    snapshot_release(r->snap);
    free(r);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct vx_req *r = *con_cls;

    (void)cls;
    (void)conn;
    if (r == NULL)
        return;
    double ms = (double)(time_monotonic_us() - r->start_us) / 1000.0;
    unsigned status = r->status ? (unsigned)r->status : 499; /* closed without an answer */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status == 0)
        status = 499;
    int idx = r->route != NULL ? (int)r->match.index : -1;
    metrics_observe(idx, status, ms / 1000.0);
    if (r->method != NULL)
        log_request(r->method, r->url, status, ms, r->request_id);
    req_free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's unescape callback: ours (url_unescape), which never
 * turns %00 into a NUL. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return url_unescape(s);
}

/* ---- the access handler ---------------------------------------------------- */

/* A random (version 4) UUID for a request that brings no X-Request-Id.
 * libuuid reads the kernel's random source on every call, a system call
 * per request; an id needs to be unique, not secret, so each thread draws
 * from its own xorshift generator, seeded once from the kernel. */
static void request_id_new(char out[37])
{
    static _Thread_local uint64_t state;
    uint8_t b[16];

    if (state == 0) {
        uuid_t seed;
        uuid_generate_random(seed);
        memcpy(&state, seed, sizeof(state));
        state |= 1;
    }
    for (int i = 0; i < 16; i += 8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        memcpy(b + i, &state, 8);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    uuid_unparse_lower(b, out);
}

static void set_request_id(struct vx_req *r)
{
    const char *given = http_header(r, "X-Request-Id");

    if (given != NULL) {
        size_t l = strlen(given);
        bool ok = l > 0 && l < sizeof(r->request_id);
        for (size_t i = 0; ok && i < l; i++)
            ok = isalnum((unsigned char)given[i]) || strchr("-_.:/+=", given[i]) != NULL;
        if (ok) {
            memcpy(r->request_id, given, l + 1);
            return;
        }
    }
    request_id_new(r->request_id);
}

/* Copy the route's argument segments into NUL-terminated strings. */
static int copy_args(struct vx_req *r)
{
    for (size_t i = 0; i < r->match.argc; i++) {
        char *a = strndup(r->match.argv[i], r->match.argl[i]);
        if (a == NULL) {
            r->match.argc = i;
            return -1;
        }
        r->match.argv[i] = a;
    }
    return 0;
}

/* First call, headers only: a URL or an announced body over the limits.
 * libmicrohttpd 0.9.75 closes the connection after any reply queued this
 * early, which is what these refusals want (access_cb also refuses a
 * request with a body here, before reading it).  true: go on; false:
 * refused, *rc is what to tell libmicrohttpd. */
static bool early_checks(struct vx_req *r, enum http_rc *rc)
{
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t n;

    set_request_id(r);
    if (r->raw_uri_len > vx_cfg.max_url) {
        *rc = http_reply_error(r, 414, VX_E_BAD_REQUEST, "the URL is longer than %zu bytes",
                               vx_cfg.max_url);
        return false;
    }
    if (cl != NULL && parse_int_range(cl, 0, INT64_MAX, &n) == 0 && (uint64_t)n > vx_cfg.max_body) {
        *rc = http_reply_error(r, 413, VX_E_PAYLOAD_TOO_LARGE, "the body is larger than %zu bytes",
                               vx_cfg.max_body);
        return false;
    }
    return true;
}

/* Route r (404/405): true with r->route set, or false with the answer
 * queued in *rc. */
static bool route(struct vx_req *r, enum http_rc *rc)
{
    router_find(http_routes, http_n_routes, sizeof(http_routes[0]), r->method, r->url,
                strlen(r->url), &r->match);
    if (r->match.status == 404) {
        *rc = http_reply_error(r, 404, VX_E_NOT_FOUND, "no such resource: %s %.200s", r->method,
                               r->url);
        return false;
    }
    if (r->match.status == 405) {
        http_add_header(r, "Allow", r->match.allow);
        *rc = http_reply_error(r, 405, VX_E_METHOD_NOT_ALLOWED,
                               "%s is not allowed here; allowed: %s", r->method, r->match.allow);
        return false;
    }
    if (copy_args(r) != 0) {
        *rc = HTTP_CLOSE;
        return false;
    }
    r->route = &http_routes[r->match.index];
    return true;
}

/* Route r (404/405) and check what its route needs -- the snapshot (503
 * before the first is loaded) and a token (401/403).  true: r->route is
 * set and the handler may run; false: the refusal is queued, *rc says
 * how. */
static bool admit(struct vx_req *r, enum http_rc *rc)
{
    if (!route(r, rc))
        return false;
    unsigned flags = r->route->flags, role = flags & ROUTE_ROLE_MASK;
    r->snap = snapshot_acquire();
    if (r->snap == NULL && (role != ROUTE_PUBLIC || (flags & ROUTE_SNAPSHOT))) {
        *rc = http_reply_unavailable(r, 1, "no flags loaded yet");
        return false;
    }
    if (role != ROUTE_PUBLIC && !http_authenticate(r, role, flags & ROUTE_BODYLESS_401)) {
        *rc = HTTP_QUEUED;
        return false;
    }
    return true;
}

/* Does the request announce a body (a length above 0, or chunks)? */
static bool has_body(struct vx_req *r)
{
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (cl != NULL && strcmp(cl, "0") != 0) ||
           http_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Final call: admit the request unless its first call did, then run the
 * handler.  A resumed request goes straight to its handler. */
static enum http_rc dispatch(struct vx_req *r)
{
    enum http_rc rc;

    if (r->route == NULL) {
        if (strcmp(r->method, "OPTIONS") == 0)
            return http_preflight(r);
        if (!admit(r, &rc))
            return rc;
    }
    return r->route->handler(r);
}

static enum MHD_Result to_mhd(enum http_rc rc)
{
    return rc == HTTP_CLOSE ? MHD_NO : MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct vx_req *r = *con_cls;
    enum http_rc rc;

    (void)cls;
    (void)version;
    if (r == NULL)
        return MHD_NO; /* out of memory in uri_log_cb */
    if (r->method == NULL) {
        r->conn = conn;
        r->method = method;
        r->url = url;
        if (!early_checks(r, &rc))
            return to_mhd(rc);
        /* A request with a body is admitted (or refused) from its headers
         * alone: a refusal is answered before one byte of the body is read
         * or kept (and the connection then closes).  One without a body
         * waits for the final call, so a 401 or 404 keeps the connection. */
        if (has_body(r) && strcmp(r->method, "OPTIONS") != 0 && !admit(r, &rc))
            return to_mhd(rc);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* Refused from its headers, or a route that reads no body: nothing
         * is kept (r->route is known here: a request with a body is
         * admitted on its first call). */
        if (r->status != 0 || (r->route != NULL && !(r->route->flags & ROUTE_BODY)))
            return MHD_YES;
        if (r->body_too_large || r->body_len + n > vx_cfg.max_body) {
            /* Over the cap (sent chunked, so not refused up front): keep
             * reading and dropping, to answer 413 at the end, unless the
             * client goes on far past it; then just close. */
            r->body_too_large = true;
            r->body_dropped += n;
            if (r->body_dropped > 16 * vx_cfg.max_body) {
                r->status = 413;
                return MHD_NO;
            }
            return MHD_YES;
        }
        char *nb = realloc(r->body, r->body_len + n + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + r->body_len, upload_data, n);
        r->body = nb;
        r->body_len += n;
        r->body[r->body_len] = '\0';
        return MHD_YES;
    }
    if (r->status != 0 && r->waiter.state == LP_IDLE && r->rh_ctx == NULL)
        return MHD_YES; /* already answered */
    if (r->body_too_large)
        return to_mhd(http_reply_error(r, 413, VX_E_PAYLOAD_TOO_LARGE,
                                       "the body is larger than %zu bytes", vx_cfg.max_body));
    return to_mhd(dispatch(r));
}

/* ---- start and stop ---------------------------------------------------------- */

/* The connection limit.  libmicrohttpd's own limit makes a full server stop
 * calling accept(), so clients over it wait unanswered in the listen backlog
 * until some idle connection times out.  We count connections ourselves and
 * close the extra ones at once, so a client learns it must retry elsewhere. */
static void conn_notify_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)c;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&open_connections, 1);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&open_connections, 1);
}

static enum MHD_Result accept_cb(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)cls;
    (void)addr;
    (void)len;
    return atomic_load(&open_connections) < vx_cfg.max_connections ? MHD_YES : MHD_NO;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t l = strlen(msg);
    while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = '\0';
    log_info("libmicrohttpd: %s", msg);
}

int http_start(void)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;

    memset(&ss, 0, sizeof(ss));
    if (strchr(vx_cfg.listen_host, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(vx_cfg.listen_port);
        if (inet_pton(AF_INET6, vx_cfg.listen_host, &a->sin6_addr) != 1) {
            log_error("--listen: '%s' is not an IPv6 address", vx_cfg.listen_host);
            return -1;
        }
        flags |= MHD_USE_IPv6;
        sl = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(vx_cfg.listen_port);
        const char *h =
            strcmp(vx_cfg.listen_host, "localhost") == 0 ? "127.0.0.1" : vx_cfg.listen_host;
        if (inet_pton(AF_INET, h, &a->sin_addr) != 1) {
            log_error("--listen: '%s' is not an IPv4 address", vx_cfg.listen_host);
            return -1;
        }
        sl = sizeof(*a);
    }
    (void)sl;
    if (metrics_init(http_routes, http_n_routes, sizeof(http_routes[0])) != 0)
        return -1;
    daemon_ = MHD_start_daemon(
        flags, vx_cfg.listen_port, accept_cb, NULL, access_cb, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_CONNECTION, conn_notify_cb,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)vx_cfg.threads,
        /* room above our own limit (accept_cb), split across the workers */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(vx_cfg.max_connections + 64 * vx_cfg.threads),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)vx_cfg.max_conns_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)vx_cfg.idle_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)vx_cfg.conn_memory,
        MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)1024, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned int)4096, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL, MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb,
        NULL, MHD_OPTION_END);
    if (daemon_ == NULL) {
        log_error("cannot listen on %s:%u", vx_cfg.listen_host, (unsigned)vx_cfg.listen_port);
        return -1;
    }
    return 0;
}

void http_stop(void)
{
    if (daemon_ == NULL)
        return;
    MHD_socket s = MHD_quiesce_daemon(daemon_);
    if (s != MHD_INVALID_SOCKET)
        close(s);
    longpoll_shutdown();
    /* Writes waiting on the database give up now and answer 503. */
    store_shutdown();
    for (int i = 0; i < 120 && dbpool_busy() > 0; i++)
        usleep(25000);
    /* Give the resumed requests a moment to be answered and sent. */
    for (int i = 0; i < 40; i++) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (info == NULL || info->num_connections == 0)
            break;
        usleep(25000);
    }
    MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
