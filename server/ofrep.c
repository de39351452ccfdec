/* ofrep.c -- docs/ofrep.md, the OpenFeature Remote Evaluation Protocol (OFREP).
 *
 * Three endpoints, all answered from the request's snapshot:
 *
 *   POST /ofrep/v1/evaluate/flags/<key>  one flag (server-side providers);
 *   POST /ofrep/v1/evaluate/flags        every flag for one context (web and
 *                                        mobile providers), with an ETag over
 *                                        the version and the context, so a
 *                                        poll that changes nothing is a 304;
 *   GET  /ofrep/v1/events                the change stream of OFREP ADR-0008:
 *                                        Server-Sent Events that tell a web
 *                                        provider to fetch the bulk answer
 *                                        again.
 *
 * The request body is read leniently, as the providers send it: an empty
 * body, a missing context or a context without targetingKey evaluates as an
 * anonymous user; only malformed JSON (PARSE_ERROR) or a context or
 * targetingKey of the wrong type (INVALID_CONTEXT) is refused.  Errors use
 * OFREP's bodies, never docs/api.md §5's.
 *
 * The change stream holds no thread.  Its response is a content-reader
 * callback of unknown length (chunked).  When the reader has nothing to
 * send, it suspends its own connection (longpoll_stream_wait, which
 * libmicrohttpd allows from a content reader) and returns 0; the listener
 * resumes it when the version moves, or the long-poll timer when the
 * keep-alive is due, and libmicrohttpd calls the reader again.  Returning 0
 * without suspending would make libmicrohttpd's internal polling spin.  The
 * stream is registered with the long-poll list once for its life
 * (lp_waiter.repeat), so it counts against --max-waiters, and SIGTERM ends
 * it through longpoll_shutdown like any held request.
 *
 * A browser's EventSource cannot send an Authorization header, so the bulk
 * answer hands out a stream URL carrying `key`, a capability derived from
 * the caller's token (SHA-256 over a label and the token's stored hash): it
 * opens the change stream and nothing else, is the same on every instance,
 * and dies with the token.  Clients that can send headers may use
 * `Authorization: Bearer` instead. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "encode.h"
#include "eval.h"
#include "httputil.h"
#include "sha256.h"
#include "text.h"
#include "timeutil.h"
#include "usage.h"

#define OFREP_EVENTS_PATH    "/ofrep/v1/events"
#define OFREP_KEEPALIVE_SEC  15
#define OFREP_INACTIVITY_SEC 120 /* eventStreams inactivityDelaySec */
#define OFREP_RETRY_MS       2000
#define OFREP_STREAM_KEY_LEN 43 /* base64url of 32 bytes, unpadded */
#define OFREP_CTX_HASH_HEX   16 /* hex digits of the context hash in the ETag */
#define OFREP_ETAG_MAX       64

/* ---- replies ------------------------------------------------------------- */

static void no_cache(struct vx_req *r)
{
    http_add_header(r, "Cache-Control", "no-cache");
}

/* Single-flag error: {"key", "errorCode", "errorDetails"}. */
static enum http_rc error_one(struct vx_req *r, unsigned status, const char *key, const char *code,
                              const char *details)
{
    struct buf b = {0};
    int bad = buf_adds(&b, "{\"key\":");

    bad |= buf_add_json_string(&b, key, strlen(key));
    bad |= buf_addf(&b, ",\"errorCode\":\"%s\",\"errorDetails\":", code);
    bad |= buf_add_json_string(&b, details, strlen(details));
    bad |= buf_adds(&b, "}");
    return http_reply_buf(r, status, &b, bad);
}

/* Bulk error: {"errorCode", "errorDetails"}. */
static enum http_rc error_bulk(struct vx_req *r, unsigned status, const char *code,
                               const char *details)
{
    struct buf b = {0};
    int bad = buf_addf(&b, "{\"errorCode\":\"%s\",\"errorDetails\":", code);

    bad |= buf_add_json_string(&b, details, strlen(details));
    bad |= buf_adds(&b, "}");
    return http_reply_buf(r, status, &b, bad);
}

/* ---- the evaluation request ---------------------------------------------- */

struct eval_req {
    json_t *root;      /* the parsed body (NULL when empty) */
    const json_t *ctx; /* the context object, or NULL */
    const char *user;  /* targetingKey, NULL for anonymous; points into root */
    size_t user_len;
    const char *code; /* on failure: PARSE_ERROR or INVALID_CONTEXT */
    char details[200];
};

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/* Parse {"context": {"targetingKey": "U", ...}}.  0, or -1 with q->code and
 * q->details set.  Free q->root with json_decref in either case. */
static int parse_eval_req(struct vx_req *r, struct eval_req *q)
{
    json_error_t e;
    const json_t *tk;

    memset(q, 0, sizeof(*q));
    if (r->body == NULL || blank(r->body, r->body_len))
        return 0;
    q->root = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (q->root == NULL) {
        q->code = "PARSE_ERROR";
        snprintf(q->details, sizeof(q->details), "the body is not valid JSON: %s (at byte %d)",
                 e.text, e.position);
        return -1;
    }
    if (!json_is_object(q->root)) {
        q->code = "PARSE_ERROR";
        snprintf(q->details, sizeof(q->details),
                 "the body must be a JSON object such as {\"context\": {...}}");
        return -1;
    }
    q->ctx = json_object_get(q->root, "context");
    if (q->ctx == NULL || json_is_null(q->ctx)) {
        q->ctx = NULL;
        return 0;
    }
    if (!json_is_object(q->ctx)) {
        q->code = "INVALID_CONTEXT";
        snprintf(q->details, sizeof(q->details), "context must be a JSON object");
        return -1;
    }
    tk = json_object_get(q->ctx, "targetingKey");
    if (tk == NULL || json_is_null(tk))
        return 0;
    if (!json_is_string(tk)) {
        q->code = "INVALID_CONTEXT";
        snprintf(q->details, sizeof(q->details), "context.targetingKey must be a string");
        return -1;
    }
    q->user = json_string_value(tk);
    q->user_len = json_string_length(tk);
    return 0;
}

/* Append one evaluation object:
 * {"key":K,"value":B,"reason":R,"variant":V,"metadata":{"version":N}}.
 * key_json is the flag name already as a JSON string literal.  0 or -1 (OOM). */
static int add_evaluation(struct buf *b, const struct vx_snapshot *s, const struct vx_view *v,
                          size_t i, const struct eval_req *q)
{
    enum vx_reason why;
    bool on = snapshot_eval(s, v, i, q->user, q->user_len, &why);
    /* v->keys[i] is the name as a JSON string followed by ':'. */
    const char *key_json = v->keys[i];
    size_t key_json_len = v->keys_len[i] - 1;
    int64_t version = v->version;

    int bad = buf_add(b, "{\"key\":", 7);

    bad |= buf_add(b, key_json, key_json_len);
    return bad | buf_addf(b,
                          ",\"value\":%s,\"reason\":\"%s\",\"variant\":\"%s\",\"metadata\":{"
                          "\"version\":%lld}}",
                          on ? "true" : "false", eval_reason_name(why), on ? "on" : "off",
                          (long long)version);
}

/* ---- POST /ofrep/v1/evaluate/flags/<key> --------------------------------- */

enum http_rc ofrep_eval_one(struct vx_req *r)
{
    const char *key = http_arg(r, 0);
    struct vx_snapshot *s = r->snap;
    struct eval_req q;
    enum http_rc rc;

    if (parse_eval_req(r, &q) != 0) {
        rc = error_one(r, 400, key, q.code, q.details);
        json_decref(q.root);
        return rc;
    }
    const struct vx_env *e = http_env(r, s);
    if (e == NULL) {
        json_decref(q.root);
        return HTTP_QUEUED;
    }
    const struct vx_view *v = e->view;
    const struct vx_flag *f = view_find(v, key, strlen(key));
    if (f == NULL) {
        char details[160];
        snprintf(details, sizeof(details), "no flag named '%.100s'", key);
        rc = error_one(r, 404, key, "FLAG_NOT_FOUND", details);
        json_decref(q.root);
        return rc;
    }
    struct buf b = {0};
    int bad = add_evaluation(&b, s, v, (size_t)(f - v->flags), &q);
    usage_mark(e->id, f->name, strlen(f->name));
    json_decref(q.root);
    if (bad != 0) {
        buf_free(&b);
        return error_one(r, 500, key, "GENERAL", "out of memory");
    }
    size_t len;
    char *body = buf_take(&b, &len);
    no_cache(r);
    return http_reply_owned(r, 200, "application/json", body, len);
}

/* ---- POST /ofrep/v1/evaluate/flags --------------------------------------- */

/* ETag of a bulk answer: "<version>-<first 64 bits of SHA-256 of the
 * canonical context>", canonical meaning compact with sorted keys; a missing
 * context hashes as {}.  The answer depends on nothing else. */
static int bulk_etag(int64_t version, const json_t *ctx, char *out, size_t outlen)
{
    uint8_t h[SHA256_LEN];
    char *canon;

    if (ctx != NULL) {
        canon = json_dumps(ctx, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        if (canon == NULL)
            return -1;
        sha256(canon, strlen(canon), h);
        free(canon);
    } else {
        sha256("{}", 2, h);
    }
    int n = snprintf(out, outlen, "\"%lld-", (long long)version);
    for (int i = 0; i < OFREP_CTX_HASH_HEX / 2; i++)
        n += snprintf(out + n, outlen - (size_t)n, "%02x", h[i]);
    snprintf(out + n, outlen - (size_t)n, "\"");
    return 0;
}

/* The change-stream capability of a token: base64url(SHA-256(label || hash)). */
static void stream_key(const uint8_t token_hash[SHA256_LEN], char out[OFREP_STREAM_KEY_LEN + 1])
{
    static const char label[] = "vexil ofrep events v1";
    struct sha256_ctx c;
    uint8_t k[SHA256_LEN];

    sha256_init(&c);
    sha256_update(&c, label, sizeof(label));
    sha256_update(&c, token_hash, SHA256_LEN);
    sha256_final(&c, k);
    encode_base64url(k, sizeof(k), out);
}

/* Is s a plain host[:port] (no characters that could break out of a URL)? */
static bool host_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(".-:[]_", c) != NULL))
            return false;
    }
    return true;
}

/* "eventStreams": one SSE entry.  `url` is absolute when the request says
 * where it was sent (Host, or X-Forwarded-Host/-Proto behind a proxy);
 * `endpoint.requestUri` lets providers resolve it against their own base
 * URL instead. */
static int add_event_streams(struct buf *b, struct vx_req *r)
{
    char key[OFREP_STREAM_KEY_LEN + 1];
    char uri[sizeof(OFREP_EVENTS_PATH) + 16 + OFREP_STREAM_KEY_LEN + ENV_NAME_MAX];
    const char *host = http_header(r, "X-Forwarded-Host");
    const char *proto = http_header(r, "X-Forwarded-Proto");

    stream_key(r->token->hash, key);
    /* An admin token's stream follows the environment it asked about. */
    const char *env = r->token->role == VX_ROLE_ADMIN ? http_query(r, "env") : NULL;
    if (env != NULL && env_name_valid(env, strlen(env)))
        snprintf(uri, sizeof(uri), "%s?key=%s&env=%s", OFREP_EVENTS_PATH, key, env);
    else
        snprintf(uri, sizeof(uri), "%s?key=%s", OFREP_EVENTS_PATH, key);
    if (host == NULL || !host_ok(host))
        host = http_header(r, MHD_HTTP_HEADER_HOST);
    if (proto == NULL || (strcmp(proto, "https") != 0 && strcmp(proto, "http") != 0))
        proto = "http";
    int bad = buf_adds(b, ",\"eventStreams\":[{\"type\":\"sse\",");
    if (host != NULL && host_ok(host))
        bad |= buf_addf(b, "\"url\":\"%s://%s%s\",", proto, host, uri);
    return bad | buf_addf(b, "\"endpoint\":{\"requestUri\":\"%s\"},\"inactivityDelaySec\":%d}]",
                          uri, OFREP_INACTIVITY_SEC);
}

enum http_rc ofrep_eval_bulk(struct vx_req *r)
{
    struct vx_snapshot *s = r->snap;
    struct eval_req q;
    char etag[OFREP_ETAG_MAX];
    enum http_rc rc;

    if (parse_eval_req(r, &q) != 0) {
        rc = error_bulk(r, 400, q.code, q.details);
        json_decref(q.root);
        return rc;
    }
    const struct vx_env *e = http_env(r, s);
    if (e == NULL) {
        json_decref(q.root);
        return HTTP_QUEUED;
    }
    const struct vx_view *v = e->view;
    if (bulk_etag(v->version, q.ctx, etag, sizeof(etag)) != 0) {
        json_decref(q.root);
        return error_bulk(r, 500, "GENERAL", "out of memory");
    }
    http_add_header(r, "ETag", etag);
    no_cache(r);
    usage_mark_all(e->id); /* a 304 too: the client goes on using its evaluations */
    /* Anything unparsable simply does not match: a full 200, never an
     * error.  The tag's text is the etag without its quotes. */
    const char *inm = http_header(r, "If-None-Match");
    if (inm != NULL && etag_header_has(inm, strlen(inm), etag + 1, strlen(etag) - 2)) {
        json_decref(q.root);
        return http_reply_empty(r, 304);
    }

    struct buf b = {0};
    /* Per flag: the key literal plus about 110 bytes of fields. */
    if (buf_reserve(&b, v->keys_total + v->n_flags * 120 + 512) != 0) {
        json_decref(q.root);
        return error_bulk(r, 500, "GENERAL", "out of memory");
    }
    int bad = buf_adds(&b, "{\"flags\":[");
    for (size_t i = 0; i < v->n_flags; i++) {
        if (i > 0)
            bad |= buf_add(&b, ",", 1);
        bad |= add_evaluation(&b, s, v, i, &q);
    }
    bad |= buf_addf(&b, "],\"metadata\":{\"version\":%lld}", (long long)v->version);
    bad |= add_event_streams(&b, r);
    bad |= buf_adds(&b, "}");
    if (bad != 0) {
        buf_free(&b);
        json_decref(q.root);
        return error_bulk(r, 500, "GENERAL", "out of memory");
    }
    json_decref(q.root);
    return http_reply_buf(r, 200, &b, 0);
}

/* ---- GET /ofrep/v1/events ------------------------------------------------ */

struct ofrep_stream {
    atomic_int refs;      /* the request's and the response's */
    struct vx_req *r;     /* valid while the reader can run */
    int64_t sent;         /* the version the client knows */
    int64_t keepalive_us; /* monotonic: next comment due */
    bool started;         /* preamble written */
    char out[256];        /* pending bytes for the client */
    size_t out_len, out_off;
};

static void stream_release(struct ofrep_stream *st)
{
    if (atomic_fetch_sub(&st->refs, 1) == 1)
        free(st);
}

/* lastModified of a version: the newest updated_at among its flags, in Unix
 * seconds.  Computed once per version, not once per stream. */
static pthread_mutex_t lm_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t lm_env = -1, lm_version = -1;
static int64_t lm_value;

static int64_t last_modified(const struct vx_env *e)
{
    const struct vx_view *s = e->view;
    int64_t v;

    pthread_mutex_lock(&lm_lock);
    if (lm_env != e->id || lm_version != s->version) {
        int64_t m = 0;
        for (size_t i = 0; i < s->n_flags; i++)
            if (s->flags[i].updated_at > m)
                m = s->flags[i].updated_at;
        lm_env = e->id;
        lm_version = s->version;
        lm_value = m / VX_USEC_PER_SEC;
    }
    v = lm_value;
    pthread_mutex_unlock(&lm_lock);
    return v;
}

static void stream_put(struct ofrep_stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void stream_put(struct ofrep_stream *st, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof(st->out) - st->out_len;

    va_start(ap, fmt);
    int n = vsnprintf(st->out + st->out_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        st->out_len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Has the client closed its side?  libmicrohttpd does not watch a
 * suspended connection, so a stream checks at each wake-up: an EventSource
 * never sends anything after its request, so a readable end of file (or an
 * error) means it is gone, and its slot is freed now rather than after a
 * failed write. */
static bool peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;

    if (ci == NULL)
        return false;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* libmicrohttpd's content reader.  Runs on the connection's worker thread,
 * never concurrently with itself, and never after the request completed. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct ofrep_stream *st = cls;

    (void)pos;
    while (st->out_off == st->out_len) {
        st->out_off = st->out_len = 0;
        if (!st->started) {
            st->started = true;
            stream_put(st, ": vexil change stream\nretry: %d\n\n", OFREP_RETRY_MS);
            break;
        }
        if (peer_gone(st->r->conn))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        struct vx_snapshot *s = snapshot_acquire();
        if (s == NULL)
            return MHD_CONTENT_READER_END_OF_STREAM;
        /* The token may have been revoked since the stream began. */
        const struct vx_env *e = snapshot_env_by_id(s, st->r->waiter.env_id);
        bool valid = snapshot_find_token(s, st->r->waiter.token) != NULL && e != NULL;
        int64_t v = e != NULL ? e->view->version : -1;
        int64_t lm = valid && v != st->sent ? last_modified(e) : 0;
        /* A revocation after this check wakes the wait below, or keeps it
         * from suspending (longpoll_revoke). */
        st->r->waiter.token_epoch = s->token_epoch;
        snapshot_release(s);
        if (!valid)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int64_t now = time_monotonic_us();
        if (v != st->sent) {
            st->sent = v;
            stream_put(st,
                       "id: %lld\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"%lld\\\"\","
                       "\"lastModified\":%lld}\n\n",
                       (long long)v, (long long)v, (long long)lm);
        } else if (now >= st->keepalive_us) {
            stream_put(st, ": keep-alive\n\n");
        } else {
            enum lp_result rc = longpoll_stream_wait(&st->r->waiter, st->sent, st->keepalive_us);
            if (rc == LP_SUSPENDED)
                return 0; /* suspended: called again after the resume */
            if (rc == LP_CLOSING)
                return MHD_CONTENT_READER_END_OF_STREAM;
            continue; /* the version or the tokens moved while we looked */
        }
        st->keepalive_us = now + OFREP_KEEPALIVE_SEC * VX_USEC_PER_SEC;
    }
    size_t n = st->out_len - st->out_off;
    if (n > max)
        n = max;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

/* The request's end (rh_cleaner): the reader may no longer reach it. */
static void stream_cleanup(void *cls)
{
    struct ofrep_stream *st = cls;

    st->r = NULL;
    stream_release(st);
}

static void stream_response_free(void *cls)
{
    stream_release(cls);
}

/* The token behind a stream key, or NULL.  Every token is compared, in
 * constant time, so the answer's timing says nothing about the key. */
static const struct vx_token *token_by_key(const struct vx_snapshot *s, const char *key)
{
    const struct vx_token *found = NULL;
    char k[OFREP_STREAM_KEY_LEN + 1];

    if (strlen(key) != OFREP_STREAM_KEY_LEN)
        return NULL;
    for (size_t i = 0; i < s->n_tokens; i++) {
        stream_key(s->tokens[i].hash, k);
        if (sha256_ct_equal((const uint8_t *)k, (const uint8_t *)key, OFREP_STREAM_KEY_LEN))
            found = &s->tokens[i];
    }
    return found;
}

/* Last-Event-ID: a version the client has seen, or -1 when absent or not
 * ours (then the stream starts with the current version as an event). */
static int64_t last_event_id(struct vx_req *r)
{
    const char *h = http_header(r, "Last-Event-ID");
    int64_t v;

    if (h == NULL || parse_int_range(h, 0, INT64_MAX, &v) != 0)
        return -1;
    return v;
}

enum http_rc ofrep_stream(struct vx_req *r)
{
    struct vx_snapshot *s = r->snap;
    const struct vx_token *t;
    const char *key = http_query(r, "key");

    if (http_header(r, "Authorization") != NULL) {
        if (!http_authenticate(r, ROUTE_EVAL, true))
            return HTTP_QUEUED;
        t = r->token;
    } else if (key != NULL) {
        t = token_by_key(s, key);
        if (t == NULL)
            return http_reply_unauthorized(r, true);
    } else {
        return http_reply_unauthorized(r, true);
    }
    r->token = t;
    const struct vx_env *e = http_env(r, s);
    if (e == NULL)
        return HTTP_QUEUED;
    r->waiter.env_id = e->id;

    struct ofrep_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return http_reply_error(r, 503, VX_E_UNAVAILABLE, "out of memory");
    atomic_init(&st->refs, 1);
    st->r = r;
    memcpy(r->waiter.token, t->hash, LP_TOKEN_LEN); /* also what the reader checks */
    st->sent = last_event_id(r);
    st->keepalive_us = time_monotonic_us() + OFREP_KEEPALIVE_SEC * VX_USEC_PER_SEC;
    r->rh_ctx = st;
    r->rh_cleaner = stream_cleanup;

    enum lp_result open = longpoll_stream_open(&r->waiter, r->conn);
    if (open != LP_REGISTERED)
        return http_reply_not_held(r, open);
    atomic_fetch_add(&st->refs, 1); /* the response's */
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 1024, stream_read, st, stream_response_free);
    if (resp == NULL) {
        stream_release(st);
        return HTTP_CLOSE;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum http_rc rc = http_queue(r, 200, resp, "text/event-stream");
    /* The stream lives for hours and reads the current snapshot at each
     * wake-up: it must not keep the one it started with alive. */
    http_release_snapshot(r);
    return rc;
}
