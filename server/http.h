/* http.h -- the HTTP daemon: libmicrohttpd setup, routing table, the
 * per-request context, body reading and replies.  Handlers (api_*.c,
 * ofrep.c) see only what is declared here. */
#ifndef VX_HTTP_H
#define VX_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "dbpool.h"
#include "longpoll.h"
#include "router.h"
#include "snapshot.h"
#include "text.h"

/* What a handler did with the request. */
enum http_rc {
    HTTP_QUEUED,    /* a response is queued (or an error reply was) */
    HTTP_SUSPENDED, /* parked; the handler runs again after the resume */
    HTTP_CLOSE,     /* drop the connection */
};

/* Route flags (http_route.flags). */
enum {
    ROUTE_PUBLIC = 0, /* no token */
    ROUTE_CLIENT = 1, /* client or admin token */
    ROUTE_ADMIN = 2,  /* admin token */
    ROUTE_EVAL = 3,   /* any token, also frontend: evaluations only (docs/api.md §2) */
    ROUTE_ROLE_MASK = 3,
    ROUTE_BODY = 4,          /* reads a JSON body */
    ROUTE_CORS = 8,          /* answers CORS (OFREP, client API) */
    ROUTE_BODYLESS_401 = 16, /* 401/403 without a body (OFREP) */
    ROUTE_SNAPSHOT = 32,     /* needs the snapshot (implied by a token): 503 before the first */
    ROUTE_BARE_TOKEN = 64,   /* the token may come without "Bearer " (Unleash SDKs) */
};

#define HTTP_MAX_HEADERS 8

struct vx_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *url; /* path, unescaped by our own callback */
    size_t raw_uri_len;
    struct router_match match;
    const struct http_route *route; /* the matched entry of http_routes */
    int64_t start_us;               /* monotonic */
    char request_id[64];
    struct vx_snapshot *snap; /* acquired once per request, released at completion */
    const struct vx_token *token;

    /* body */
    char *body;
    size_t body_len;
    bool body_too_large;
    size_t body_dropped; /* bytes read past the cap */

    /* extra response headers, applied when the response is queued */
    const char *hname[HTTP_MAX_HEADERS];
    char *hvalue[HTTP_MAX_HEADERS];
    int nheaders;

    int status; /* the status queued, for the log and metrics */

    /* long-poll / stream state */
    struct lp_waiter waiter;
    int64_t since_version;

    /* Database work in flight or done (http_run_db). */
    struct http_db_call {
        struct db_task task; /* first: the pool hands it back */
        struct MHD_Connection *conn;
        void (*work)(PGconn *c, void *job);
        void *job;
        void (*job_free)(void *job);
        atomic_bool done;
    } db;

    /* State a handler keeps across the calls of one request (a stream's),
     * owned by the handler: when the request ends, rh_cleaner(rh_ctx) runs
     * if set, so this layer frees it without knowing what it is. */
    void *rh_ctx;
    void (*rh_cleaner)(void *rh_ctx);
};

typedef enum http_rc (*http_handler)(struct vx_req *r);

/* One entry of the routing table: the router's part first (the router
 * walks the table through it), then the handler, whose type the compiler
 * checks, and the ROUTE_* flags. */
struct http_route {
    struct router_route base;
    http_handler handler;
    unsigned flags;
};

/* The routing table (routes.c): every endpoint, its handler and flags. */
extern const struct http_route http_routes[];
extern const size_t http_n_routes;

/* Answer an OPTIONS request: 204 with Allow, and the CORS preflight headers
 * for an allowed origin (http.c's, for every path). */
enum http_rc http_preflight(struct vx_req *r);

/* Start serving per vx_cfg. 0 or -1 (logged). */
int http_start(void);
/* Stop accepting, answer everything held, stop the daemon. */
void http_stop(void);

/* Arguments of the matched route (NUL-terminated copies owned by r). */
const char *http_arg(struct vx_req *r, size_t i);
/* Query parameter or NULL. */
const char *http_query(struct vx_req *r, const char *key);
/* Request header or NULL. */
const char *http_header(struct vx_req *r, const char *name);

/* Add a header to the response that will be queued (value copied). */
void http_add_header(struct vx_req *r, const char *name, const char *value);

/* Queue resp (adds X-Request-Id, the extra headers, CORS, and
 * content_type if not NULL) and destroy our handle on it. */
enum http_rc http_queue(struct vx_req *r, unsigned status, struct MHD_Response *resp,
                        const char *content_type);
/* Queue a response; body is copied unless noted. */
enum http_rc http_reply(struct vx_req *r, unsigned status, const char *content_type,
                        const char *body, size_t len);
/* Take ownership of a malloc'd body (freed with free()). */
enum http_rc http_reply_owned(struct vx_req *r, unsigned status, const char *content_type,
                              char *body, size_t len);
/* If-Match: -1 absent, 0 "*", else the revision.  -2 malformed (400
 * queued). */
int64_t http_if_match(struct vx_req *r);

/* The request's environment in s (docs/api.md §4): a client or frontend
 * token's own; for an admin token ?env=, else the default.  NULL with 404
 * queued when env= names none. */
const struct vx_env *http_env(struct vx_req *r, const struct vx_snapshot *s);

/* Serve bytes that live in view v (a reference is taken and released
 * once MHD is done with them). */
enum http_rc http_reply_view(struct vx_req *r, unsigned status, struct vx_view *v, const char *body,
                             size_t len);
/* Serve the GET /flags body of view s: gzip-compressed when the request
 * accepts it (Content-Encoding: gzip), else from its pieces; Vary:
 * Accept-Encoding on both. */
enum http_rc http_reply_view_body(struct vx_req *r, unsigned status, struct vx_view *s);
/* A JSON body built in b (emptied either way).  bad != 0 (an append
 * failed for lack of memory) closes the connection instead. */
enum http_rc http_reply_buf(struct vx_req *r, unsigned status, struct buf *b, int bad);
/* JSON body; steals j.  j == NULL (a failed build: out of memory) answers
 * 500 internal_error instead. */
enum http_rc http_reply_json(struct vx_req *r, unsigned status, json_t *j);
/* docs/api.md §5 error body. */
enum http_rc http_reply_error(struct vx_req *r, unsigned status, const char *code, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
/* An empty body (204, 304, 401/403 for OFREP). */
enum http_rc http_reply_empty(struct vx_req *r, unsigned status);

/* Parse the request body as a JSON object (strict: duplicate keys
 * rejected).  On failure the 400 is already queued and NULL returned.
 * allow_empty: an empty body yields an empty object. */
json_t *http_body_json(struct vx_req *r, bool allow_empty);

/* Let go of r->snap (and r->token, which points into it) early: for a
 * request that outlives the snapshot it started on, such as a stream. */
void http_release_snapshot(struct vx_req *r);

/* Run work(conn, job) on a database thread (dbpool.h) while r waits,
 * suspended: no HTTP thread waits on the database.  When work is done the
 * handler is called again, and http_db_job(r) then returns job.  r owns
 * job from here on: job_free(job) runs when the request ends.  Returns
 * HTTP_SUSPENDED. */
enum http_rc http_run_db(struct vx_req *r, void (*work)(PGconn *c, void *job), void *job,
                         void (*job_free)(void *job));

/* The job of r's finished http_run_db(), or NULL when none has run. */
void *http_db_job(struct vx_req *r);

/* Add `Cache-Control: no-cache` (answers that must be revalidated). */
void http_no_cache(struct vx_req *r);

/* Add `ETag: "n"` to the response. */
void http_set_etag(struct vx_req *r, int64_t n);

/* 503 unavailable with Retry-After: seconds. */
enum http_rc http_reply_unavailable(struct vx_req *r, unsigned retry_after, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 401 "unknown or revoked" with WWW-Authenticate (without a body when
 * bodyless): a token that is not, or no longer, live. */
enum http_rc http_reply_unauthorized(struct vx_req *r, bool bodyless);

/* Authenticate r for role (ROUTE_CLIENT or ROUTE_ADMIN) from its
 * Authorization header against r->snap: true with r->token set, or false
 * with 401/403 queued (without a body when bodyless). */
bool http_authenticate(struct vx_req *r, unsigned role, bool bodyless);

/* 503 for a long-poll or stream that cannot be held (why: LP_FULL or
 * LP_CLOSING), closing the connection. */
enum http_rc http_reply_not_held(struct vx_req *r, enum lp_result why);

/* If-None-Match against version v. */
enum http_inm {
    HTTP_INM_NONE,  /* absent, or no tag matches */
    HTTP_INM_MATCH, /* a tag (or "*") matches */
    HTTP_INM_BAD,   /* malformed: 400 queued */
};
enum http_inm http_if_none_match(struct vx_req *r, int64_t v);

/* Park the request until the flag-set version moves past since_version, or
 * deadline_us (monotonic) passes. */
enum http_park {
    HTTP_PARKED,       /* suspended: the handler runs again after the resume */
    HTTP_PARK_MOVED,   /* the version already moved: answer now */
    HTTP_PARK_REFUSED, /* 503 queued (too many held, or shutting down) */
};
enum http_park http_park(struct vx_req *r, int64_t since_version, int64_t deadline_us);

#endif
