/* api_client.c -- docs/api.md §2: what services ask, answered from the snapshot.
 *
 * GET /flags serves the snapshot's pre-serialised pieces without copying
 * them, or its gzip form when the client accepts it.
 * GET /flags?user=U writes its answer straight into one buffer sized from
 * the snapshot: no JSON tree, one allocation.  With If-None-Match equal to
 * the current version the answer is 304, or, with wait=S, the request is
 * parked until the version moves (200 with the new body) or S seconds pass
 * (304). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "eval.h"
#include "httputil.h"
#include "text.h"
#include "timeutil.h"
#include "usage.h"

typedef enum http_rc (*answer_fn)(struct vx_req *r, struct vx_snapshot *s, const struct vx_env *e);

static void set_etag(struct vx_req *r, int64_t version)
{
    http_set_etag(r, version);
    http_no_cache(r);
}

/* The user parameter: NULL when absent; 400 queued (and *bad set) when
 * unusable. */
static const char *user_param(struct vx_req *r, bool *bad)
{
    const char *u = http_query(r, "user");

    *bad = false;
    if (u == NULL)
        return NULL;
    size_t l = strlen(u);
    if (l > FLAG_USER_MAX || !utf8_valid(u, l)) {
        http_reply_error(r, 400, VX_E_INVALID_VALUE, "user must be valid UTF-8 of at most %d bytes",
                         FLAG_USER_MAX);
        *bad = true;
    }
    return u;
}

static enum http_rc answer_flags(struct vx_req *r, struct vx_snapshot *snap, const struct vx_env *e)
{
    bool bad;
    const char *user = user_param(r, &bad);
    struct vx_view *s = e->view;

    if (bad)
        return HTTP_QUEUED;
    set_etag(r, s->version);
    if (user == NULL)
        return http_reply_view_body(r, 200, s);

    size_t ul = strlen(user);
    struct buf b = {0};
    /* keys + "true," per flag + envelope + escaped user (6x worst case) */
    if (buf_reserve(&b, s->keys_total + s->n_flags * 6 + ul * 6 + 128) != 0)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    buf_addf(&b, "{\"version\":%lld,\"user\":", (long long)s->version);
    buf_add_json_string(&b, user, ul);
    buf_add(&b, ",\"flags\":{", 10);
    /* Room for every key, "false," and the closing "}}": then write
     * without a check per flag. */
    if (buf_reserve(&b, s->keys_total + s->n_flags * 6 + 2) != 0) {
        buf_free(&b);
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    }
    char *o = b.p + b.len;
    for (size_t i = 0; i < s->n_flags; i++) {
        bool on = snapshot_eval(snap, s, i, user, ul, NULL);
        if (i > 0)
            *o++ = ',';
        memcpy(o, s->keys[i], s->keys_len[i]);
        o += s->keys_len[i];
        memcpy(o, on ? "true" : "false", on ? 4 : 5);
        o += on ? 4 : 5;
    }
    b.len = (size_t)(o - b.p);
    buf_add(&b, "}}", 2);
    size_t len;
    char *body = buf_take(&b, &len);
    return http_reply_owned(r, 200, "application/json", body, len);
}

static enum http_rc answer_flag(struct vx_req *r, struct vx_snapshot *snap, const struct vx_env *e)
{
    bool bad;
    const char *user = user_param(r, &bad);
    const char *name = http_arg(r, 0);
    const struct vx_view *s = e->view;
    const struct vx_flag *f;

    if (bad)
        return HTTP_QUEUED;
    f = view_find(s, name, strlen(name));
    if (f == NULL)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
    bool on =
        snapshot_eval(snap, s, (size_t)(f - s->flags), user, user != NULL ? strlen(user) : 0, NULL);
    struct buf b = {0};
    buf_adds(&b, "{\"name\":");
    buf_add_json_string(&b, f->name, strlen(f->name));
    buf_addf(&b, ",\"on\":%s,\"version\":%lld}", on ? "true" : "false", (long long)s->version);
    set_etag(r, s->version);
    size_t len;
    char *body = buf_take(&b, &len);
    return http_reply_owned(r, 200, "application/json", body, len);
}

static enum http_rc not_modified(struct vx_req *r, int64_t version)
{
    set_etag(r, version);
    return http_reply_empty(r, 304);
}

/* Is the request's token (found in its own snapshot) live in s too? */
static bool token_live(struct vx_req *r, const struct vx_snapshot *s)
{
    return snapshot_find_token(s, r->token->hash) != NULL;
}

/* Answer from s (the current snapshot, after a wait) if the token still
 * lives there and its environment is still there. */
static enum http_rc answer_now(struct vx_req *r, struct vx_snapshot *s, answer_fn answer)
{
    const struct vx_env *e = s != NULL ? snapshot_env_by_id(s, r->waiter.env_id) : NULL;

    if (s == NULL)
        return not_modified(r, r->since_version);
    if (!token_live(r, s))
        return http_reply_unauthorized(r, false);
    if (e == NULL)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "the environment was deleted");
    return e->view->version != r->since_version ? answer(r, s, e)
                                                : not_modified(r, e->view->version);
}

/* What a request evaluates, for last_evaluated_at (usage.h): nothing
 * (the flag set without a user), every flag, or the route's flag.  A 304 or
 * a long-poll counts too: the client goes on using what it evaluated. */
enum evaluates { EVALUATES_NONE, EVALUATES_ALL, EVALUATES_ONE };

/* The shared flow of both endpoints: conditional, long-poll, answer. */
static enum http_rc serve(struct vx_req *r, answer_fn answer, enum evaluates what)
{
    struct vx_snapshot *s;

    if (r->waiter.state != LP_IDLE) {
        /* Resumed: answer from the snapshot that is current now, if the
         * token still lives there (a revocation resumes with LP_REVOKED
         * only after publishing the snapshot without it). */
        r->waiter.state = LP_IDLE;
        s = snapshot_acquire();
        enum http_rc rc = answer_now(r, s, answer);
        snapshot_release(s);
        return rc;
    }

    s = r->snap; /* the route needs it: never NULL here */
    const struct vx_env *e = http_env(r, s);
    if (e == NULL)
        return HTTP_QUEUED;
    r->waiter.env_id = e->id;
    if (what == EVALUATES_ALL)
        usage_mark_all(e->id);
    else if (what == EVALUATES_ONE)
        usage_mark(e->id, http_arg(r, 0), strlen(http_arg(r, 0)));
    const struct vx_view *v = e->view;
    const char *w = http_query(r, "wait");
    int64_t wait = 0;
    if (w != NULL && parse_int_range(w, 1, 60, &wait) != 0)
        return http_reply_error(r, 400, VX_E_INVALID_VALUE,
                                "wait must be an integer number of seconds from 1 to 60");
    switch (http_if_none_match(r, v->version)) {
    case HTTP_INM_BAD:
        return HTTP_QUEUED;
    case HTTP_INM_NONE:
        return answer(r, s, e);
    case HTTP_INM_MATCH:
        break;
    }
    if (wait == 0)
        return not_modified(r, v->version);
    r->since_version = v->version;
    switch (http_park(r, v->version, time_monotonic_us() + wait * VX_USEC_PER_SEC)) {
    case HTTP_PARKED:
        return HTTP_SUSPENDED;
    case HTTP_PARK_REFUSED:
        return HTTP_QUEUED;
    case HTTP_PARK_MOVED:
        break;
    }
    /* The version (or the tokens) moved while we looked: answer from the
     * new snapshot. */
    r->waiter.state = LP_IDLE;
    struct vx_snapshot *now = snapshot_acquire();
    enum http_rc rc = answer_now(r, now, answer);
    snapshot_release(now);
    return rc;
}

enum http_rc api_client_flags(struct vx_req *r)
{
    /* Before any conditional or wait: a frontend token may not even learn
     * when the whole flag set changes. */
    if (r->waiter.state == LP_IDLE && r->token != NULL && r->token->role == VX_ROLE_FRONTEND &&
        http_query(r, "user") == NULL)
        return http_reply_error(r, 403, VX_E_FORBIDDEN,
                                "a frontend token may only evaluate: add ?user=");
    return serve(r, answer_flags, http_query(r, "user") != NULL ? EVALUATES_ALL : EVALUATES_NONE);
}

enum http_rc api_client_flag(struct vx_req *r)
{
    /* An unknown flag is 404 at once, whatever If-None-Match says. */
    if (r->waiter.state == LP_IDLE && r->snap != NULL) {
        const char *name = http_arg(r, 0);
        const struct vx_env *e = http_env(r, r->snap);
        if (e == NULL)
            return HTTP_QUEUED;
        if (view_find(e->view, name, strlen(name)) == NULL)
            return http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
    }
    return serve(r, answer_flag, EVALUATES_ONE);
}
