/* api_unleash.c -- docs/unleash.md: the routes Unleash's SDKs call, so that
 * a service or a web page moves from an Unleash server to vexil by changing
 * only its URL and token.
 *
 *   GET  /api/client/features      server SDKs: every flag of the token's
 *                                   environment as strategies (unleash.c),
 *                                   ETag = the environment's version
 *   GET  /api/client/streaming     the same, pushed as Server-Sent Events on
 *                                   every change (sse.c)
 *   POST /api/client/register      202; nothing is kept
 *   POST /api/client/metrics       202; the counts move last_evaluated_at
 *   GET|POST /api/frontend          browser and mobile SDKs: the flags on for
 *                                   one context, evaluated here
 *   POST /api/frontend/client/{metrics,register}   as above
 *
 * The SDKs send the token bare in Authorization (ROUTE_BARE_TOKEN).  A
 * frontend token may not read /api/client/features or its stream: the
 * strategies carry the flags' user lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "eval.h"
#include "httputil.h"
#include "sha256.h"
#include "sse.h"
#include "text.h"
#include "timeutil.h"
#include "unleash.h"
#include "usage.h"

#define UNLEASH_KEEPALIVE_SEC 15

/* ---- server SDKs ---------------------------------------------------------- */

enum http_rc unleash_features_get(struct vx_req *r)
{
    const struct vx_env *e = http_env(r, r->snap);

    if (e == NULL)
        return HTTP_QUEUED;
    http_set_etag(r, e->view->version);
    http_no_cache(r);
    switch (http_if_none_match(r, e->view->version)) {
    case HTTP_INM_BAD:
        return HTTP_QUEUED;
    case HTTP_INM_MATCH:
        return http_reply_empty(r, 304);
    case HTTP_INM_NONE:
        break;
    }
    return http_reply_json(r, 200, unleash_features(r->snap, e));
}

/* The full state as one event: unleash-connected first, then
 * unleash-updated. */
static int stream_event(struct buf *b, const struct vx_snapshot *s, const struct vx_env *e,
                        bool first)
{
    json_t *state = unleash_features(s, e);
    char *text = state != NULL ? json_dumps(state, JSON_COMPACT) : NULL;
    int bad = text == NULL;

    json_decref(state);
    if (!bad)
        bad = buf_addf(b, "event: %s\nid: %lld\ndata: %s\n\n",
                       first ? "unleash-connected" : "unleash-updated", (long long)e->view->version,
                       text);
    free(text);
    return bad ? -1 : 0;
}

enum http_rc unleash_streaming(struct vx_req *r)
{
    const struct vx_env *e = http_env(r, r->snap);

    if (e == NULL)
        return HTTP_QUEUED;
    const struct sse_opts o = {
        .preamble = ": vexil unleash stream\n\n",
        .keepalive_s = UNLEASH_KEEPALIVE_SEC,
        .event = stream_event,
        .sent = -1, /* the full state first, always */
    };
    return sse_start(r, r->token, e, &o);
}

/* ---- metrics and registration --------------------------------------------- */

/* A metrics body {appName?, instanceId?, bucket: {start?, stop?,
 * toggles: {name: {yes, no, variants?}}}, ...}: 0 with *toggles (borrowed
 * from body) and *at (the bucket's stop, else now), or -1 with 400
 * queued. */
static int read_metrics(struct vx_req *r, json_t *body, json_t **toggles, int64_t *at)
{
    json_t *bucket = json_object_get(body, "bucket");
    const char *key, *stop = json_string_value(json_object_get(bucket, "stop"));
    json_t *v;
    int64_t now = time_now_us();

    *toggles = json_object_get(bucket, "toggles");
    if (!json_is_object(bucket) || !json_is_object(*toggles)) {
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "an Unleash metrics body needs bucket.toggles, an object");
        return -1;
    }
    json_object_foreach(*toggles, key, v)
    {
        json_t *yes = json_object_get(v, "yes"), *no = json_object_get(v, "no");
        if (!json_is_object(v) || !json_is_integer(yes) || json_integer_value(yes) < 0 ||
            !json_is_integer(no) || json_integer_value(no) < 0) {
            http_reply_error(r, 400, VX_E_INVALID_VALUE,
                             "bucket.toggles.%.100s needs yes and no, counts of at least 0", key);
            return -1;
        }
    }
    /* The evaluations happened during the bucket: its stop, unless it
     * claims a time to come. */
    *at = now;
    if (stop != NULL && time_parse_rfc3339(stop, at) == 0 && *at > now)
        *at = now;
    return 0;
}

/* POST .../client/metrics: the flags an SDK evaluated move their
 * last_evaluated_at in the token's environment. */
enum http_rc unleash_metrics(struct vx_req *r)
{
    const struct vx_env *e = http_env(r, r->snap);
    json_t *body, *toggles, *v;
    const char *key;
    int64_t at;

    if (e == NULL || (body = http_body_json(r, false)) == NULL)
        return HTTP_QUEUED;
    if (read_metrics(r, body, &toggles, &at) != 0) {
        json_decref(body);
        return HTTP_QUEUED;
    }
    json_object_foreach(toggles, key, v)
    {
        size_t len = strlen(key);
        bool counted = json_integer_value(json_object_get(v, "yes")) > 0 ||
                       json_integer_value(json_object_get(v, "no")) > 0;
        if (counted && view_find(e->view, key, len) != NULL)
            usage_mark_at(e->id, key, len, at);
    }
    json_decref(body);
    return http_reply_empty(r, 202);
}

/* POST .../client/register: an SDK says hello.  Nothing is kept; a body
 * that is not a JSON object is still refused. */
enum http_rc unleash_register(struct vx_req *r)
{
    json_t *body = http_body_json(r, true);

    if (body == NULL)
        return HTTP_QUEUED;
    json_decref(body);
    return http_reply_empty(r, 202);
}

/* ---- frontend SDKs -------------------------------------------------------- */

/* The context's userId: from the query (GET) or {"context": {...}} (POST).
 * NULL (anonymous) when absent or empty; 0, or -1 with 400 queued. */
static int frontend_user(struct vx_req *r, json_t **body, const char **user)
{
    *body = NULL;
    *user = NULL;
    if (strcmp(r->method, "POST") == 0) {
        json_t *ctx;
        if ((*body = http_body_json(r, true)) == NULL)
            return -1;
        ctx = json_object_get(*body, "context");
        if (ctx != NULL && !json_is_object(ctx)) {
            http_reply_error(r, 400, VX_E_INVALID_VALUE, "context must be an object");
            return -1;
        }
        json_t *id = json_object_get(ctx, "userId");
        if (id != NULL && !json_is_string(id) && !json_is_null(id)) {
            http_reply_error(r, 400, VX_E_INVALID_VALUE, "context.userId must be a string");
            return -1;
        }
        *user = json_string_value(id);
    } else {
        *user = http_query(r, "userId");
    }
    if (*user != NULL && (strlen(*user) > FLAG_USER_MAX || !utf8_valid(*user, strlen(*user)))) {
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "userId must be valid UTF-8 of at most %d bytes", FLAG_USER_MAX);
        return -1;
    }
    if (*user != NULL && (*user)[0] == '\0')
        *user = NULL;
    return 0;
}

/* "<version>-<first 64 bits of SHA-256 of the user id>": the answer
 * depends on nothing else (the other context fields are not used). */
static void frontend_etag(int64_t version, const char *user, char out[64])
{
    uint8_t h[SHA256_LEN];
    int n;

    sha256(user != NULL ? user : "", user != NULL ? strlen(user) : 0, h);
    n = snprintf(out, 64, "\"%lld-%s", (long long)version, user != NULL ? "" : "anonymous");
    for (int i = 0; user != NULL && i < 8; i++)
        n += snprintf(out + n, 64 - (size_t)n, "%02x", h[i]);
    snprintf(out + n, 64 - (size_t)n, "\"");
}

enum http_rc unleash_frontend(struct vx_req *r)
{
    const struct vx_env *e = http_env(r, r->snap);
    const char *user;
    json_t *body = NULL;
    char etag[64];

    if (e == NULL || frontend_user(r, &body, &user) != 0) {
        json_decref(body);
        return HTTP_QUEUED;
    }
    const struct vx_view *v = e->view;
    usage_mark_all(e->id);
    frontend_etag(v->version, user, etag);
    http_add_header(r, "ETag", etag);
    http_no_cache(r);
    const char *inm = http_header(r, "If-None-Match");
    if (inm != NULL && etag_header_has(inm, strlen(inm), etag + 1, strlen(etag) - 2)) {
        json_decref(body);
        return http_reply_empty(r, 304);
    }
    struct buf b = {0};
    int bad = buf_adds(&b, "{\"toggles\":[");
    bool any = false;
    size_t ul = user != NULL ? strlen(user) : 0;
    for (size_t i = 0; i < v->n_flags; i++) {
        if (!snapshot_eval(r->snap, v, i, user, ul, NULL))
            continue;
        bad |= buf_adds(&b, any ? ",{\"name\":" : "{\"name\":");
        /* v->keys[i] is the name as a JSON string followed by ':'. */
        bad |= buf_add(&b, v->keys[i], v->keys_len[i] - 1);
        bad |= buf_adds(&b, ",\"enabled\":true,\"impressionData\":false,\"variant\":{\"name\":"
                            "\"disabled\",\"enabled\":false,\"feature_enabled\":true}}");
        any = true;
    }
    bad |= buf_adds(&b, "]}");
    json_decref(body);
    return http_reply_buf(r, 200, &b, bad);
}
