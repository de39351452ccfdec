/* http.c -- the libmicrohttpd daemon, the routing table and the request
 * context.
 *
 * One daemon with an epoll thread pool serves every connection; no handler
 * ever blocks on anything but a database write.  A request's life:
 *   1. uri_log_cb allocates its struct vx_req (the raw URI length is known
 *      only here, for the 414 check);
 *   2. the first access_cb call routes it (404/405), checks the token
 *      (401/403) and the announced body size (413) and caches the route;
 *   3. body calls append to r->body up to the cap;
 *   4. the final call runs the handler, which queues a reply, or parks the
 *      connection (long-poll) and runs again after the resume;
 *   5. completed_cb logs one line, counts metrics and frees the context.
 *
 * Replies always carry X-Request-Id; errors carry docs/api.md §5's body. */
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

#include "api.h"
#include "auth.h"
#include "config.h"
#include "httputil.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"

#define R(m, p, h, f)                                                                              \
    {                                                                                              \
        m, p, (void (*)(void))(h), p, f                                                            \
    }

static const struct router_route routes[] = {
    R("GET", "/flags", api_client_flags, ROUTE_CLIENT | ROUTE_CORS),
    R("GET", "/flags/*", api_client_flag, ROUTE_CLIENT | ROUTE_CORS),
    R("GET", "/api/flags", api_flags_list, ROUTE_ADMIN),
    R("POST", "/api/flags", api_flags_create, ROUTE_ADMIN | ROUTE_BODY),
    R("GET", "/api/flags/*", api_flags_get, ROUTE_ADMIN),
    R("PATCH", "/api/flags/*", api_flags_patch, ROUTE_ADMIN | ROUTE_BODY),
    R("DELETE", "/api/flags/*", api_flags_delete, ROUTE_ADMIN),
    R("GET", "/api/flags/*/history", api_flags_history, ROUTE_ADMIN),
    R("POST", "/api/flags/*/revert", api_flags_revert, ROUTE_ADMIN | ROUTE_BODY),
    R("GET", "/api/stale", api_stale, ROUTE_ADMIN),
    R("GET", "/api/tokens", api_tokens_list, ROUTE_ADMIN),
    R("POST", "/api/tokens", api_tokens_create, ROUTE_ADMIN | ROUTE_BODY),
    R("DELETE", "/api/tokens/*", api_tokens_delete, ROUTE_ADMIN),
    R("POST", "/ofrep/v1/evaluate/flags", ofrep_eval_bulk,
      ROUTE_CLIENT | ROUTE_BODY | ROUTE_CORS | ROUTE_OFREP_AUTH),
    R("POST", "/ofrep/v1/evaluate/flags/*", ofrep_eval_one,
      ROUTE_CLIENT | ROUTE_BODY | ROUTE_CORS | ROUTE_OFREP_AUTH),
    R("GET", "/ofrep/v1/events", ofrep_stream, ROUTE_PUBLIC | ROUTE_CORS),
    R("GET", "/healthz", api_healthz, ROUTE_PUBLIC),
    R("GET", "/readyz", api_readyz, ROUTE_PUBLIC),
    R("GET", "/metrics", api_metrics, ROUTE_PUBLIC),
    R("GET", "/", api_root, ROUTE_PUBLIC),
    R("GET", "/admin", api_static, ROUTE_PUBLIC),
    R("GET", "/admin/", api_static, ROUTE_PUBLIC),
    R("GET", "/admin/*", api_static, ROUTE_PUBLIC),
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

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
    if (r->stream != NULL)
        ofrep_stream_free(r);
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
    int idx = r->match.route != NULL ? (int)(r->match.route - routes) : -1;
    metrics_observe(idx, status, ms / 1000.0);
    if (r->method != NULL)
        log_request(r->method, r->url, status, ms, r->request_id);
    req_free(r);
    *con_cls = NULL;
}

/* Our own unescape: like MHD's, except that %00 stays as it is, so a NUL
 * can never cut a path or parameter short and make it mean something else. */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    const char *rd = s;

    (void)cls;
    (void)c;
    while (*rd != '\0') {
        if (rd[0] == '%' && isxdigit((unsigned char)rd[1]) && isxdigit((unsigned char)rd[2])) {
            char hex[3] = {rd[1], rd[2], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            if (v != 0) {
                *w++ = (char)v;
                rd += 3;
                continue;
            }
        }
        *w++ = *rd++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

const char *http_arg(struct vx_req *r, size_t i)
{
    return i < r->match.argc ? r->match.argv[i] : NULL;
}

const char *http_query(struct vx_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(struct vx_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void http_add_header(struct vx_req *r, const char *name, const char *value)
{
    if (r->nheaders == HTTP_MAX_HEADERS)
        return;
    char *v = strdup(value);
    if (v == NULL)
        return;
    r->hname[r->nheaders] = name;
    r->hvalue[r->nheaders] = v;
    r->nheaders++;
}

/* ---- CORS ------------------------------------------------------------------ */

static bool cors_allowed(const char *origin)
{
    const char *list = vx_cfg.cors_origins;
    size_t ol;

    if (list == NULL || origin == NULL)
        return false;
    if (strcmp(list, "*") == 0)
        return true;
    ol = strlen(origin);
    while (*list != '\0') {
        const char *end = strchr(list, ',');
        size_t l = end != NULL ? (size_t)(end - list) : strlen(list);
        while (l > 0 && *list == ' ')
            list++, l--;
        while (l > 0 && list[l - 1] == ' ')
            l--;
        if (l == ol && memcmp(list, origin, l) == 0)
            return true;
        if (end == NULL)
            break;
        list = end + 1;
    }
    return false;
}

static void add_cors(struct vx_req *r, struct MHD_Response *resp)
{
    const char *origin;

    if (r->match.route == NULL || !(r->match.route->flags & ROUTE_CORS))
        return;
    origin = http_header(r, "Origin");
    if (!cors_allowed(origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "ETag, X-Request-Id");
}

/* ---- replies --------------------------------------------------------------- */

enum http_rc http_queue(struct vx_req *r, unsigned status, struct MHD_Response *resp,
                        const char *content_type)
{
    enum MHD_Result ok;

    if (resp == NULL)
        return HTTP_CLOSE;
    if (content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
    add_cors(r, resp);
    ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return HTTP_CLOSE;
    r->status = (int)status;
    return HTTP_QUEUED;
}

enum http_rc http_reply(struct vx_req *r, unsigned status, const char *content_type,
                        const char *body, size_t len)
{
    return http_queue(r, status,
                      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY),
                      content_type);
}

enum http_rc http_reply_owned(struct vx_req *r, unsigned status, const char *content_type,
                              char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL)
        free(body);
    return http_queue(r, status, resp, content_type);
}

static void release_snapshot_cb(void *cls)
{
    snapshot_release(cls);
}

enum http_rc http_reply_snapshot(struct vx_req *r, unsigned status, struct vx_snapshot *s,
                                 const char *body, size_t len)
{
    struct MHD_Response *resp;

    snapshot_retain(s);
    resp = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)body,
                                                                  release_snapshot_cb, s);
    if (resp == NULL)
        snapshot_release(s);
    return http_queue(r, status, resp, "application/json");
}

enum http_rc http_reply_json(struct vx_req *r, unsigned status, json_t *j)
{
    char *s;

    if (j == NULL)
        return http_reply_error(r, 500, VX_E_BAD_REQUEST, "out of memory");
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        return HTTP_CLOSE;
    return http_reply_owned(r, status, "application/json", s, strlen(s));
}

enum http_rc http_reply_error(struct vx_req *r, unsigned status, const char *code, const char *fmt,
                              ...)
{
    char msg[512];
    struct buf b = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int bad = buf_adds(&b, "{\"error\":{\"code\":");
    bad |= buf_add_json_string(&b, code, strlen(code));
    bad |= buf_adds(&b, ",\"message\":");
    bad |= buf_add_json_string(&b, msg, strlen(msg));
    bad |= buf_adds(&b, "}}");
    return http_reply_buf(r, status, &b, bad);
}

enum http_rc http_reply_buf(struct vx_req *r, unsigned status, struct buf *b, int bad)
{
    size_t len;

    if (bad != 0) {
        buf_free(b);
        return HTTP_CLOSE;
    }
    char *body = buf_take(b, &len);
    return http_reply_owned(r, status, "application/json", body, len);
}

enum http_rc http_reply_empty(struct vx_req *r, unsigned status)
{
    return http_queue(r, status, MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT),
                      NULL);
}

json_t *http_body_json(struct vx_req *r, bool allow_empty)
{
    json_error_t e;
    json_t *j;

    if (r->body_len == 0) {
        if (allow_empty)
            return json_object();
        http_reply_error(r, 400, VX_E_INVALID_JSON, "the request needs a JSON body");
        return NULL;
    }
    j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        http_reply_error(r, 400, VX_E_INVALID_JSON, "the body is not valid JSON: %s (at byte %d)",
                         e.text, e.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_reply_error(r, 400, VX_E_BAD_REQUEST, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

int http_if_none_match(struct vx_req *r, int64_t v)
{
    const char *h = http_header(r, "If-None-Match");
    struct etag_list l;

    if (h == NULL)
        return 0;
    if (etag_parse(h, strlen(h), &l) != 0) {
        http_reply_error(r, 400, VX_E_BAD_REQUEST,
                         "If-None-Match must be a list of quoted versions such as \"12\"");
        return -1;
    }
    return etag_matches(&l, v) ? 1 : 0;
}

int http_park(struct vx_req *r, int64_t since_version, int64_t deadline_us)
{
    enum lp_result rc = longpoll_park(&r->waiter, r->conn, since_version, deadline_us);

    if (rc == LP_SUSPENDED)
        return HTTP_SUSPENDED;
    if (rc == LP_MOVED)
        return -1;
    http_add_header(r, "Retry-After", "1");
    if (rc == LP_CLOSING)
        http_reply_error(r, 503, VX_E_UNAVAILABLE, "the server is shutting down");
    else
        http_reply_error(r, 503, VX_E_UNAVAILABLE,
                         "too many held requests on this instance; retry shortly");
    return HTTP_QUEUED;
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

static enum http_rc preflight(struct vx_req *r)
{
    struct router_match m;
    const char *origin = http_header(r, "Origin");

    router_find(routes, N_ROUTES, "OPTIONS", r->url, strlen(r->url), &m);
    if (m.status == 404)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such resource");
    http_add_header(r, "Allow", m.allow);
    if (cors_allowed(origin)) {
        http_add_header(r, "Access-Control-Allow-Origin", origin);
        http_add_header(r, "Access-Control-Allow-Methods", m.allow);
        http_add_header(r, "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, If-None-Match, If-Match, X-Request-Id, "
                        "Last-Event-ID");
        http_add_header(r, "Access-Control-Max-Age", "600");
        http_add_header(r, "Vary", "Origin");
    }
    return http_reply_empty(r, 204);
}

/* First call, headers only.  libmicrohttpd 0.9.75 closes the connection
 * after any reply queued this early, so only the answers that should close
 * it are given here: a URL or a body over the limits.  Everything else
 * waits for the final call (keep-alive survives 404s and 401s). */
static enum http_rc early_checks(struct vx_req *r)
{
    const char *cl = http_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t n;

    set_request_id(r);
    if (r->raw_uri_len > vx_cfg.max_url)
        return http_reply_error(r, 414, VX_E_BAD_REQUEST, "the URL is longer than %zu bytes",
                                vx_cfg.max_url);
    if (cl != NULL && parse_int_range(cl, 0, INT64_MAX, &n) == 0 && (uint64_t)n > vx_cfg.max_body)
        return http_reply_error(r, 413, VX_E_PAYLOAD_TOO_LARGE, "the body is larger than %zu bytes",
                                vx_cfg.max_body);
    return HTTP_SUSPENDED; /* go on */
}

/* Final call: route (404/405), authenticate (401/403), then run the
 * handler.  Returns the handler's answer. */
static enum http_rc dispatch(struct vx_req *r)
{
    if (r->match.route == NULL) {
        if (strcmp(r->method, "OPTIONS") == 0)
            return preflight(r);
        router_find(routes, N_ROUTES, r->method, r->url, strlen(r->url), &r->match);
        if (r->match.status == 404)
            return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such resource: %s %.200s",
                                    r->method, r->url);
        if (r->match.status == 405) {
            http_add_header(r, "Allow", r->match.allow);
            return http_reply_error(r, 405, VX_E_METHOD_NOT_ALLOWED,
                                    "%s is not allowed here; allowed: %s", r->method,
                                    r->match.allow);
        }
        if (copy_args(r) != 0)
            return HTTP_CLOSE;
        int flags = r->match.route->flags;
        r->snap = snapshot_acquire();
        if ((flags & ROUTE_ROLE_MASK) != ROUTE_PUBLIC &&
            auth_check(r, flags & ROUTE_ROLE_MASK, (flags & ROUTE_OFREP_AUTH) != 0) != 0)
            return HTTP_QUEUED;
    }
    return ((http_handler)r->match.route->handler)(r);
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

    (void)cls;
    (void)version;
    if (r == NULL)
        return MHD_NO; /* out of memory in uri_log_cb */
    if (r->method == NULL) {
        r->conn = conn;
        r->method = method;
        r->url = url;
        enum http_rc rc = early_checks(r);
        return rc == HTTP_SUSPENDED ? MHD_YES : to_mhd(rc);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
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
    if (r->status != 0 && r->waiter.state == LP_IDLE && r->stream == NULL)
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
    if (metrics_init(routes, N_ROUTES) != 0)
        return -1;
    daemon_ = MHD_start_daemon(
        flags, vx_cfg.listen_port, accept_cb, NULL, access_cb, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_CONNECTION, conn_notify_cb,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)vx_cfg.threads,
        /* room above our own limit (accept_cb), split across the workers */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(vx_cfg.max_connections + 64 * vx_cfg.threads),
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
