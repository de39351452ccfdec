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
 * The change stream holds no thread (sse.c).
 *
 * A browser's EventSource cannot send an Authorization header, so the bulk
 * answer hands out a stream URL carrying `key`, a capability derived from
 * the caller's token (SHA-256 over a label and the token's stored hash): it
 * opens the change stream and nothing else, is the same on every instance,
 * and dies with the token.  Clients that can send headers may use
 * `Authorization: Bearer` instead. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "eval.h"
#include "httputil.h"
#include "sha256.h"
#include "sse.h"
#include "text.h"
#include "timeutil.h"
#include "usage.h"

#define OFREP_EVENTS_PATH    "/ofrep/v1/events"
#define OFREP_KEEPALIVE_SEC  15
#define OFREP_INACTIVITY_SEC 120 /* eventStreams inactivityDelaySec */
#define OFREP_RETRY_MS_TEXT  "2000"
#define OFREP_STREAM_KEY_LEN 43 /* base64url of 32 bytes, unpadded */
#define OFREP_CTX_HASH_HEX   16 /* hex digits of the context hash in the ETag */
#define OFREP_ETAG_MAX       64

/* ---- replies ------------------------------------------------------------- */

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
    http_no_cache(r);
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
    http_no_cache(r);
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

/* The event of a new version: fetch the bulk answer again (ADR-0008). */
static int stream_event(struct buf *b, const struct vx_snapshot *s, const struct vx_env *e,
                        bool first)
{
    long long v = (long long)e->view->version;

    (void)s;
    (void)first;
    return buf_addf(b,
                    "id: %lld\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"%lld\\\"\","
                    "\"lastModified\":%lld}\n\n",
                    v, v, (long long)last_modified(e));
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
    const struct sse_opts o = {
        .preamble = ": vexil change stream\nretry: " OFREP_RETRY_MS_TEXT "\n\n",
        .keepalive_s = OFREP_KEEPALIVE_SEC,
        .event = stream_event,
        .sent = last_event_id(r),
    };
    return sse_start(r, t, e, &o);
}
