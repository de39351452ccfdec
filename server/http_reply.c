/* http_reply.c -- what a handler sees of its request, and every way to
 * answer it.
 *
 * Accessors for the route's arguments, the query and the headers; the
 * replies (a copied, owned, snapshot-backed or JSON body, the error body of
 * docs/api.md §5, an empty one); the answers shared by many handlers (503
 * with Retry-After, 401/403, If-None-Match, parking a long-poll); and CORS,
 * added to every reply of a route that allows it (docs/ofrep.md).  The
 * request's life cycle -- routing, admission, the libmicrohttpd callbacks --
 * is http.c's. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "httputil.h"
#include "text.h"

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
    return origin != NULL && origin_listed(vx_cfg.cors_origins, origin);
}

static void add_cors(struct vx_req *r, struct MHD_Response *resp)
{
    const char *origin;

    if (r->route == NULL || !(r->route->flags & ROUTE_CORS))
        return;
    origin = http_header(r, "Origin");
    if (!cors_allowed(origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", "ETag, X-Request-Id");
}

void http_no_cache(struct vx_req *r)
{
    http_add_header(r, "Cache-Control", "no-cache");
}

enum http_rc http_preflight(struct vx_req *r)
{
    struct router_match m;
    const char *origin = http_header(r, "Origin");

    router_find(http_routes, http_n_routes, sizeof(http_routes[0]), "OPTIONS", r->url,
                strlen(r->url), &m);
    if (m.status == 404)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no such resource");
    http_add_header(r, "Allow", m.allow);
    if (cors_allowed(origin)) {
        http_add_header(r, "Access-Control-Allow-Origin", origin);
        http_add_header(r, "Access-Control-Allow-Methods", m.allow);
        http_add_header(r, "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, If-None-Match, If-Match, X-Request-Id, "
                        "Last-Event-ID, Unleash-AppName, Unleash-SDK, Unleash-Connection-Id, "
                        "Unleash-InstanceId, Unleash-Client-Spec");
        http_add_header(r, "Access-Control-Max-Age", "600");
        http_add_header(r, "Vary", "Origin");
    }
    return http_reply_empty(r, 204);
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

static void release_view_cb(void *cls)
{
    view_release(cls);
}

enum http_rc http_reply_view(struct vx_req *r, unsigned status, struct vx_view *s, const char *body,
                             size_t len)
{
    struct MHD_Response *resp;

    view_retain(s);
    resp = MHD_create_response_from_buffer_with_free_callback_cls(len, (void *)body,
                                                                  release_view_cb, s);
    if (resp == NULL)
        view_release(s);
    return http_queue(r, status, resp, "application/json");
}

/* Streams the spans of a view's body to libmicrohttpd, which asks for
 * the bytes in order, a connection buffer at a time.  (An iovec response
 * would avoid the copy, but libmicrohttpd 0.9.75 copies the iovec array
 * into the connection's memory pool, 16 bytes a span: a few hundred flags
 * exhaust it.) */
struct body_reader {
    struct vx_view *s; /* a reference */
    size_t span;       /* the span holding byte at */
    uint64_t at;       /* where that span starts */
};

static ssize_t body_read_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct body_reader *b = cls;
    const struct vx_view *s = b->s;
    size_t n = 0;

    if (pos < b->at) { /* asked again from earlier (never, in order): start over */
        b->span = 0;
        b->at = 0;
    }
    while (b->span < s->body_n && b->at + s->body[b->span].len <= pos)
        b->at += s->body[b->span++].len;
    while (n < max && b->span < s->body_n) {
        const struct vx_span *sp = &s->body[b->span];
        size_t off = (size_t)(pos + n - b->at), k = sp->len - off;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, (const char *)sp->base + off, k);
        n += k;
        if (off + k == sp->len) {
            b->at += sp->len;
            b->span++;
        }
    }
    return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void body_free_cb(void *cls)
{
    struct body_reader *b = cls;

    view_release(b->s);
    free(b);
}

/* The gzip body of a view, made on a pool thread (dbpool.h). */
struct compress_task {
    struct db_task task; /* first */
    struct vx_view *s;
};

static void compress_run(struct db_task *t, PGconn *c)
{
    struct compress_task *ct = (struct compress_task *)t;

    (void)c;
    /* A version already replaced is not worth the work: under a burst of
     * changes only the one served when the compressor comes round is
     * compressed (a later request asks again for the newer one). */
    if (snapshot_view_current(ct->s))
        view_gzip_build(ct->s);
    else
        atomic_store(&ct->s->gzip->asked, false);
    view_release(ct->s);
    free(ct);
}

/* Have the gzip body of s made in the background, unless someone already
 * asked: the first request that accepts gzip for a version pays nothing for
 * it, and no version nobody asks for costs a compression. */
static void compress_later(struct vx_view *s)
{
    struct compress_task *ct;

    if (!view_gzip_ask(s))
        return;
    ct = calloc(1, sizeof(*ct));
    if (ct == NULL) {
        atomic_store(&s->gzip->asked, false);
        return;
    }
    view_retain(s);
    ct->task.run = compress_run;
    ct->task.needs_db = false;
    ct->s = s;
    dbpool_submit(&ct->task);
}

enum http_rc http_reply_view_body(struct vx_req *r, unsigned status, struct vx_view *s)
{
    struct MHD_Response *resp;
    const unsigned char *gz;
    size_t gz_len;

    /* Vary on both forms, so that a cache never serves one for the other. */
    http_add_header(r, "Vary", "Accept-Encoding");
    if (accepts_gzip(http_header(r, "Accept-Encoding"))) {
        if (view_gzip(s, &gz, &gz_len)) {
            http_add_header(r, "Content-Encoding", "gzip");
            return http_reply_view(r, status, s, (const char *)gz, gz_len);
        }
        compress_later(s); /* this answer goes plain; later ones gzip */
    }
    if (s->joined != NULL)
        return http_reply_view(r, status, s, s->joined, s->body_len);
    struct body_reader *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    view_retain(s);
    b->s = s;
    resp = MHD_create_response_from_callback(s->body_len, (size_t)64 * 1024, body_read_cb, b,
                                             body_free_cb);
    if (resp == NULL)
        body_free_cb(b);
    return http_queue(r, status, resp, "application/json");
}

enum http_rc http_reply_json(struct vx_req *r, unsigned status, json_t *j)
{
    char *s;

    if (j == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory building the answer");
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

/* A pool thread: the work, then the request goes on.  r may be answered
 * and freed as soon as its connection is resumed, so nothing of it is
 * touched after that. */
static void db_call_run(struct db_task *t, PGconn *c)
{
    struct http_db_call *call = (struct http_db_call *)t;
    struct MHD_Connection *conn = call->conn;

    call->work(c, call->job);
    atomic_store(&call->done, true);
    MHD_resume_connection(conn);
}

enum http_rc http_run_db(struct vx_req *r, void (*work)(PGconn *c, void *job), void *job,
                         void (*job_free)(void *job))
{
    struct http_db_call *call = &r->db;

    call->task.run = db_call_run;
    call->task.needs_db = true;
    call->conn = r->conn;
    call->work = work;
    call->job = job;
    call->job_free = job_free;
    atomic_store(&call->done, false);
    /* Suspended before it is queued, so the resume always finds it so. */
    MHD_suspend_connection(r->conn);
    dbpool_submit(&call->task);
    return HTTP_SUSPENDED;
}

void *http_db_job(struct vx_req *r)
{
    return r->db.job != NULL && atomic_load(&r->db.done) ? r->db.job : NULL;
}

void http_release_snapshot(struct vx_req *r)
{
    snapshot_release(r->snap);
    r->snap = NULL;
    r->token = NULL;
}

void http_set_etag(struct vx_req *r, int64_t n)
{
    char etag[ETAG_VERSION_MAX];

    http_add_header(r, "ETag", etag_format(n, etag));
}

enum http_rc http_reply_unavailable(struct vx_req *r, unsigned retry_after, const char *fmt, ...)
{
    char msg[256], secs[16];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(secs, sizeof(secs), "%u", retry_after);
    http_add_header(r, "Retry-After", secs);
    return http_reply_error(r, 503, VX_E_UNAVAILABLE, "%s", msg);
}

/* 401 (with WWW-Authenticate) or 403, with a body unless bodyless. */
static void refuse(struct vx_req *r, enum auth_result a, bool bodyless)
{
    static const char *const why[] = {
        [AUTH_MISSING] = "an Authorization: Bearer token is required",
        [AUTH_NOT_BEARER] = "the Authorization header must be 'Bearer <token>'",
        [AUTH_UNKNOWN] = "the token is unknown or revoked",
        [AUTH_FORBIDDEN] = "this needs an admin token",
    };
    unsigned status = a == AUTH_FORBIDDEN ? 403 : 401;
    bool client_route = r->route != NULL && (r->route->flags & ROUTE_ROLE_MASK) == ROUTE_CLIENT;

    if (status == 401)
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"vexil\"");
    if (bodyless)
        http_reply_empty(r, status);
    else
        http_reply_error(r, status, status == 401 ? VX_E_UNAUTHORIZED : VX_E_FORBIDDEN, "%s",
                         a == AUTH_FORBIDDEN && client_route
                             ? "this needs a client or admin token (a frontend token may only "
                               "evaluate)"
                             : why[a]);
}

enum http_rc http_reply_unauthorized(struct vx_req *r, bool bodyless)
{
    refuse(r, AUTH_UNKNOWN, bodyless);
    return HTTP_QUEUED;
}

bool http_authenticate(struct vx_req *r, unsigned role, bool bodyless)
{
    enum auth_result a = auth_token(r->snap, http_header(r, "Authorization"),
                                    role == ROUTE_ADMIN    ? VX_ROLE_ADMIN
                                    : role == ROUTE_CLIENT ? VX_ROLE_CLIENT
                                                           : VX_ROLE_FRONTEND,
                                    (r->route->flags & ROUTE_BARE_TOKEN) != 0, &r->token);

    if (a == AUTH_OK)
        return true;
    refuse(r, a, bodyless);
    return false;
}

/* If-Match: -1 absent, 0 "*", else the revision.  -2 malformed (400 queued). */
int64_t http_if_match(struct vx_req *r)
{
    const char *h = http_header(r, "If-Match");
    struct etag_list l;

    if (h == NULL)
        return -1;
    if (etag_parse(h, strlen(h), &l) != 0 || (!l.any && (l.n != 1 || l.weak[0]))) {
        http_reply_error(r, 400, VX_E_BAD_REQUEST,
                         "If-Match must be one quoted revision such as \"3\", or *");
        return -2;
    }
    if (l.any)
        return 0;
    return l.tag[0] > 0 ? l.tag[0] : INT64_MAX; /* "0" never matches */
}

enum http_inm http_if_none_match(struct vx_req *r, int64_t v)
{
    const char *h = http_header(r, "If-None-Match");
    struct etag_list l;

    if (h == NULL)
        return HTTP_INM_NONE;
    if (etag_parse(h, strlen(h), &l) != 0) {
        http_reply_error(r, 400, VX_E_BAD_REQUEST,
                         "If-None-Match must be a list of quoted versions such as \"12\"");
        return HTTP_INM_BAD;
    }
    return etag_matches(&l, v) ? HTTP_INM_MATCH : HTTP_INM_NONE;
}

/* A waiter carries its token's hash, compared with the snapshot's. */
_Static_assert(LP_TOKEN_LEN == SHA256_LEN, "a waiter's token is a SHA-256");

enum http_park http_park(struct vx_req *r, int64_t since_version, int64_t deadline_us)
{
    memcpy(r->waiter.token, r->token->hash, LP_TOKEN_LEN);
    r->waiter.token_epoch = r->snap->token_epoch;
    enum lp_result rc = longpoll_park(&r->waiter, r->conn, since_version, deadline_us);

    if (rc == LP_SUSPENDED)
        return HTTP_PARKED;
    if (rc == LP_MOVED)
        return HTTP_PARK_MOVED;
    http_reply_not_held(r, rc);
    return HTTP_PARK_REFUSED;
}

enum http_rc http_reply_not_held(struct vx_req *r, enum lp_result why)
{
    /* The connection goes too: a client told to come back later must not
     * keep a connection that a write may need (docs/api.md §5). */
    http_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    return http_reply_unavailable(r, 1, "%s",
                                  why == LP_CLOSING
                                      ? "the server is shutting down"
                                      : "too many held requests on this instance; retry shortly");
}

const struct vx_env *http_env(struct vx_req *r, const struct vx_snapshot *s)
{
    const struct vx_token *t = snapshot_find_token(s, r->token->hash);
    const char *name = http_query(r, "env");

    if (t == NULL || (t->role != VX_ROLE_ADMIN && t->env_index >= s->n_envs)) {
        http_reply_unauthorized(r, false); /* revoked, or its environment is gone */
        return NULL;
    }
    if (t->role != VX_ROLE_ADMIN)
        return &s->envs[t->env_index];
    if (name == NULL)
        return &s->envs[s->default_env];
    const struct vx_env *e = snapshot_env(s, name, strlen(name));
    if (e == NULL)
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no environment named '%.64s'", name);
    return e;
}
