/* api_flags.c -- docs/api.md §3 flags: CRUD with If-Match, history, revert, stale.
 *
 * Reads come from the snapshot like every other read.  Writes (and the
 * history, which lives only in the database) are validated here, on the
 * HTTP thread, then run on a database thread (http_run_db) while the
 * request waits suspended: each write is one transaction, followed by a
 * short wait until this instance's listener publishes the new version, so
 * a client that writes and then reads here sees its own write.  The
 * handler runs a second time with the call's outcome and answers. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "httputil.h"
#include "listen.h"
#include "store.h"
#include "timeutil.h"
#include "usage.h"

#define AWAIT_PUBLISH_MS 2000

/* age_days and stale of f added to o (taken).  o, or NULL on OOM. */
static json_t *add_age(json_t *o, const struct vx_flag *f, int64_t now, int days, int rdays)
{
    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "age_days", json_integer(flag_age_days(f, now))) != 0 ||
        json_object_set_new(o, "stale", flag_stale_reasons(f, now, days, rdays)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The admin object of flag f of environment e's view in s: its state in e
 * on top, every environment's under "environments" (each with its
 * last_evaluated_at), and the newest
 * revision and update time any view has (an environment whose version did
 * not move keeps the flag as it was then: docs/decisions.md).  *revision
 * receives that revision.  NULL on OOM. */
static json_t *admin_flag(const struct vx_snapshot *s, const struct vx_env *e,
                          const struct vx_flag *f, int64_t now, int days, int rdays,
                          int64_t *revision)
{
    json_t *envs = json_object();
    struct vx_flag top = *f;
    int rc = envs == NULL;

    for (size_t i = 0; i < s->n_envs && rc == 0; i++) {
        const struct vx_flag *g = view_find(s->envs[i].view, f->name, strlen(f->name));
        if (g == NULL)
            continue;
        if (g->revision > top.revision) {
            top.revision = g->revision;
            top.updated_at = g->updated_at;
        }
        json_t *state = flag_state_to_json(g);
        rc = state == NULL || usage_annotate(state, s->envs[i].name, f->name, f->created_at) != 0 ||
             json_object_set_new(envs, s->envs[i].name, state) != 0;
    }
    json_t *o = rc == 0 ? add_age(flag_to_json(&top), &top, now, days, rdays) : NULL;
    if (o == NULL || usage_annotate(o, e->name, f->name, f->created_at) != 0 ||
        json_object_set_new(o, "environments", envs) != 0) {
        json_decref(o);
        if (o == NULL)
            json_decref(envs);
        return NULL;
    }
    *revision = top.revision;
    return o;
}

/* Answer the flag as a write left it: the request's environment on top. */
static enum http_rc reply_written_flag(struct vx_req *r, unsigned status,
                                       const struct flag_envs *fe, const char *env)
{
    size_t top = 0;

    for (size_t i = 0; i < fe->n; i++)
        if (strcmp(fe->envs[i], env) == 0)
            top = i;
    http_set_etag(r, fe->flags[top].revision);
    json_t *o = add_age(flag_envs_json(fe, top), &fe->flags[top], time_now_us(),
                        FLAG_STALE_DAYS_DEFAULT, FLAG_ROLLED_OUT_DAYS_DEFAULT);
    json_t *envs = json_object_get(o, "environments");
    int bad = o == NULL ||
              usage_annotate(o, fe->envs[top], fe->flags[top].name, fe->flags[top].created_at) != 0;
    for (size_t i = 0; !bad && i < fe->n; i++)
        bad = usage_annotate(json_object_get(envs, fe->envs[i]), fe->envs[i], fe->flags[i].name,
                             fe->flags[i].created_at) != 0;
    if (bad) {
        json_decref(o);
        o = NULL;
    }
    return http_reply_json(r, status, o);
}

/* Map a failed store call to its answer. */
static enum http_rc reply_store_failure(struct vx_req *r, enum store_status st, const char *what)
{
    switch (st) {
    case STORE_NOT_FOUND:
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "%s not found", what);
    case STORE_CONFLICT:
        return http_reply_error(r, 409, VX_E_CONFLICT, "%s conflicts with the current state", what);
    case STORE_PRECONDITION:
        return http_reply_error(r, 412, VX_E_PRECONDITION_FAILED,
                                "%s has changed since the revision in If-Match", what);
    case STORE_UNAVAILABLE:
        listen_db_suspect();
        return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
    default:
        return http_reply_unavailable(
            r, 2, "the database failed to apply the change; nothing was changed");
    }
}

/* The request's environment and the flag named by the route's argument in
 * its view, or NULL with 404 queued. */
static const struct vx_flag *find_or_404(struct vx_req *r, const struct vx_env **env)
{
    const char *name = http_arg(r, 0);
    const struct vx_env *e = http_env(r, r->snap);
    const struct vx_flag *f = e != NULL ? view_find(e->view, name, strlen(name)) : NULL;

    if (e != NULL && f == NULL)
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
    if (env != NULL)
        *env = e;
    return f;
}

/* The route's flag name, or NULL with 404 queued when it cannot be a flag's
 * name at all (it never reaches the database then: bytes that are not
 * UTF-8 would make PostgreSQL fail instead of answering "no such row"). */
static const char *name_or_404(struct vx_req *r)
{
    const char *name = http_arg(r, 0);

    if (!flag_name_valid(name, strlen(name))) {
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
        return NULL;
    }
    return name;
}

static const char *actor(struct vx_req *r)
{
    return r->token != NULL ? r->token->name : "";
}

/* ------------------------------------------------------------------ */
/* Database calls, on a database thread                                 */
/* ------------------------------------------------------------------ */

/* One database call of a handler here (http_run_db): what it needs, and
 * what it found.  Its strings point into the request (the route's
 * argument, the token's name in the request's snapshot), which outlives
 * the call: the request waits, suspended, until the call is done. */
struct flag_call {
    enum store_status (*run)(PGconn *c, struct flag_call *fc);
    /* in */
    const char *name;
    struct vx_flag_patch patch; /* create, update */
    int64_t if_match;           /* update, delete */
    int64_t event;              /* revert */
    int limit;                  /* history */
    int64_t before;             /* history */
    const char *actor;
    int64_t now;
    char env[ENV_NAME_MAX + 1]; /* the request's environment (create, update, the answer) */
    /* out */
    enum store_status st;
    char error[256];       /* STORE_INVALID: what the body names that does not exist */
    struct flag_envs flag; /* as written (create, update, revert); empty if none */
    int64_t version;       /* the version the write made, 0 if none */
    json_t *history;
};

static struct flag_call *flag_call_new(struct vx_req *r,
                                       enum store_status (*run)(PGconn *c, struct flag_call *fc))
{
    struct flag_call *fc = calloc(1, sizeof(*fc));

    if (fc != NULL) {
        fc->run = run;
        fc->name = http_arg(r, 0);
        fc->actor = actor(r);
        fc->now = time_now_us();
        fc->if_match = -1;
        if (r->snap != NULL) /* the answer's environment until read_patch() says otherwise */
            snprintf(fc->env, sizeof fc->env, "%s", r->snap->envs[r->snap->default_env].name);
    }
    return fc;
}

static void flag_call_free(void *job)
{
    struct flag_call *fc = job;

    flag_patch_free(&fc->patch);
    flag_envs_free(&fc->flag);
    json_decref(fc->history);
    free(fc);
}

/* The work of every call: the store, then (for a write) the wait until this
 * instance serves the new version, so that a client that writes and then
 * reads here sees its own write. */
static void flag_call_work(PGconn *c, void *job)
{
    struct flag_call *fc = job;

    fc->st = fc->run(c, fc);
    if (fc->st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (fc->st == STORE_INVALID) /* the message is this thread's */
        snprintf(fc->error, sizeof fc->error, "%s", store_last_error(c));
    if (fc->st == STORE_OK && fc->version > 0)
        listen_await_version(fc->version, AWAIT_PUBLISH_MS);
}

/* The store leaves fc->flag untouched (zeroed) unless the write succeeds. */
static enum store_status run_create(PGconn *c, struct flag_call *fc)
{
    return store_flag_create(c, &fc->patch, fc->env, fc->actor, fc->now, &fc->flag, &fc->version);
}

static enum store_status run_update(PGconn *c, struct flag_call *fc)
{
    return store_flag_update(c, fc->name, &fc->patch, fc->env, fc->if_match, fc->actor, fc->now,
                             &fc->flag, &fc->version);
}

static enum store_status run_delete(PGconn *c, struct flag_call *fc)
{
    return store_flag_delete(c, fc->name, fc->if_match, fc->actor, fc->now, &fc->version);
}

static enum store_status run_revert(PGconn *c, struct flag_call *fc)
{
    return store_flag_revert(c, fc->name, fc->event, fc->actor, fc->now, &fc->flag, &fc->version);
}

static enum store_status run_history(PGconn *c, struct flag_call *fc)
{
    return store_flag_history(c, fc->name, fc->limit, fc->before, &fc->history);
}

/* Hand fc to a database thread (the handler runs again when it is done),
 * or answer 500 when there is no fc (out of memory). */
static enum http_rc submit(struct vx_req *r, struct flag_call *fc)
{
    if (fc == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    return http_run_db(r, flag_call_work, fc, flag_call_free);
}

/* The answer to a finished write: the flag as written (or an empty body),
 * else the failure. */
static enum http_rc reply_written(struct vx_req *r, struct flag_call *fc, unsigned status)
{
    if (fc->st == STORE_INVALID)
        return http_reply_error(r, 400, VX_E_INVALID_VALUE, "%s", fc->error);
    if (fc->st != STORE_OK)
        return reply_store_failure(r, fc->st, "the flag");
    return fc->flag.n > 0 ? reply_written_flag(r, status, &fc->flag, fc->env)
                          : http_reply_empty(r, status);
}

/* ------------------------------------------------------------------ */
/* Handlers                                                             */
/* ------------------------------------------------------------------ */

/* What a list keeps of a flag: 1 keep, 0 skip, -1 out of memory. */
typedef int (*keep_fn)(const struct vx_flag *f, int64_t now, int days, int rdays);

/* The admin objects of environment e's flags that keep() accepts (all when
 * NULL), or NULL when out of memory: never a list that silently misses a
 * flag. */
static json_t *admin_flags(const struct vx_snapshot *s, const struct vx_env *e, int days, int rdays,
                           keep_fn keep)
{
    int64_t now = time_now_us(), rev;
    json_t *arr = json_array();
    const struct vx_view *v = e->view;

    for (size_t i = 0; arr != NULL && i < v->n_flags; i++) {
        const struct vx_flag *f = &v->flags[i];
        int k = keep != NULL ? keep(f, now, days, rdays) : 1;
        if (k == 0)
            continue;
        if (k < 0 || json_array_append_new(arr, admin_flag(s, e, f, now, days, rdays, &rev)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

enum http_rc api_flags_list(struct vx_req *r)
{
    const struct vx_env *e = http_env(r, r->snap);
    if (e == NULL)
        return HTTP_QUEUED;
    int64_t version = e->view->version;
    json_t *arr =
        admin_flags(r->snap, e, FLAG_STALE_DAYS_DEFAULT, FLAG_ROLLED_OUT_DAYS_DEFAULT, NULL);
    json_t *o =
        arr != NULL ? json_pack("{s:I, s:o}", "version", (json_int_t)version, "flags", arr) : NULL;

    http_set_etag(r, version);
    return http_reply_json(r, 200, o);
}

enum http_rc api_flags_get(struct vx_req *r)
{
    const struct vx_env *e;
    const struct vx_flag *f = find_or_404(r, &e);
    int64_t rev = 0;

    if (f == NULL)
        return HTTP_QUEUED;
    json_t *o = admin_flag(r->snap, e, f, time_now_us(), FLAG_STALE_DAYS_DEFAULT,
                           FLAG_ROLLED_OUT_DAYS_DEFAULT, &rev);
    http_set_etag(r, rev);
    return http_reply_json(r, 200, o);
}

/* Read and validate a POST (create) or PATCH body into a new call.  NULL
 * with the 400 (or 500) queued when that fails. */
static struct flag_call *read_patch(struct vx_req *r, bool create,
                                    enum store_status (*run)(PGconn *c, struct flag_call *fc))
{
    struct vx_error err;
    json_t *body = http_body_json(r, false);
    struct flag_call *fc;

    if (body == NULL)
        return NULL;
    fc = flag_call_new(r, run);
    if (fc == NULL) {
        json_decref(body);
        http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
        return NULL;
    }
    const struct vx_env *e = http_env(r, r->snap);
    if (e == NULL) {
        json_decref(body);
        flag_call_free(fc);
        return NULL;
    }
    snprintf(fc->env, sizeof fc->env, "%s", e->name);
    if (flag_patch_from_json(body, create, &fc->patch, &err) != 0 ||
        flag_patch_check_env(&fc->patch, fc->env, &err) != 0) {
        json_decref(body);
        flag_call_free(fc);
        http_reply_error(r, 400, err.code, "%s", err.message);
        return NULL;
    }
    json_decref(body);
    return fc;
}

enum http_rc api_flags_create(struct vx_req *r)
{
    struct flag_call *fc = http_db_job(r);

    if (fc != NULL && fc->st == STORE_CONFLICT)
        return http_reply_error(r, 409, VX_E_CONFLICT, "a flag named '%s' already exists",
                                fc->patch.name);
    if (fc != NULL)
        return reply_written(r, fc, 201);
    fc = read_patch(r, true, run_create);
    return fc != NULL ? submit(r, fc) : HTTP_QUEUED;
}

enum http_rc api_flags_patch(struct vx_req *r)
{
    struct flag_call *fc = http_db_job(r);
    int64_t im;

    if (fc != NULL)
        return reply_written(r, fc, 200);
    im = http_if_match(r);
    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    fc = read_patch(r, false, run_update);
    if (fc == NULL)
        return HTTP_QUEUED;
    fc->if_match = im;
    return submit(r, fc);
}

enum http_rc api_flags_delete(struct vx_req *r)
{
    struct flag_call *fc = http_db_job(r);
    int64_t im;

    if (fc != NULL)
        return reply_written(r, fc, 204);
    im = http_if_match(r);
    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    fc = flag_call_new(r, run_delete);
    if (fc != NULL)
        fc->if_match = im;
    return submit(r, fc);
}

/* A query parameter within [lo, hi], def when absent: 0, or -1 with 400
 * queued. */
static int int_param(struct vx_req *r, const char *key, int64_t lo, int64_t hi, int64_t def,
                     int64_t *out)
{
    const char *v = http_query(r, key);

    *out = def;
    if (v == NULL || parse_int_range(v, lo, hi, out) == 0)
        return 0;
    http_reply_error(r, 400, VX_E_INVALID_VALUE, "%s must be an integer from %lld to %lld", key,
                     (long long)lo, (long long)hi);
    return -1;
}

enum http_rc api_flags_history(struct vx_req *r)
{
    struct flag_call *fc = http_db_job(r);
    int64_t limit, before;

    if (fc != NULL && fc->st != STORE_OK)
        return reply_store_failure(r, fc->st, "the flag's history");
    if (fc != NULL) {
        json_t *out = fc->history;
        fc->history = NULL;
        return http_reply_json(r, 200, out);
    }
    if (name_or_404(r) == NULL ||
        int_param(r, "limit", 1, STORE_HISTORY_LIMIT_MAX, STORE_HISTORY_LIMIT_DEFAULT, &limit) !=
            0 ||
        int_param(r, "before", 1, INT64_MAX, 0, &before) != 0)
        return HTTP_QUEUED;
    fc = flag_call_new(r, run_history);
    if (fc != NULL) {
        fc->limit = (int)limit;
        fc->before = before;
    }
    return submit(r, fc);
}

/* The event id of a revert body {"event": id}: > 0, or 0 with 400 queued. */
static int64_t revert_event(struct vx_req *r)
{
    json_t *body = http_body_json(r, false);
    const char *key;
    json_t *v;
    int64_t event = 0;

    if (body == NULL)
        return 0;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "event") != 0) {
            http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body); /* key lives in body */
            return 0;
        }
    }
    v = json_object_get(body, "event");
    if (json_is_integer(v) && json_integer_value(v) >= 1)
        event = json_integer_value(v);
    else
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "event must be the positive integer id of a history event");
    json_decref(body);
    return event;
}

enum http_rc api_flags_revert(struct vx_req *r)
{
    struct flag_call *fc = http_db_job(r);
    int64_t event;

    if (fc != NULL && fc->st == STORE_CONFLICT)
        return http_reply_error(r, 409, VX_E_CONFLICT,
                                "event %lld has no state before it to restore",
                                (long long)fc->event);
    if (fc != NULL && fc->st == STORE_NOT_FOUND)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no event %lld in the history of this flag",
                                (long long)fc->event);
    if (fc != NULL)
        return reply_written(r, fc, 200);
    if (name_or_404(r) == NULL || (event = revert_event(r)) == 0)
        return HTTP_QUEUED;
    fc = flag_call_new(r, run_revert);
    if (fc != NULL)
        fc->event = event;
    return submit(r, fc);
}

static int days_param(struct vx_req *r, const char *key, int def, int *out)
{
    const char *v = http_query(r, key);
    int64_t n;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (parse_int_range(v, 0, FLAG_STALE_DAYS_MAX, &n) != 0) {
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "%s must be a whole number of days from 0 to %d", key,
                         FLAG_STALE_DAYS_MAX);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int is_stale(const struct vx_flag *f, int64_t now, int days, int rdays)
{
    json_t *reasons = flag_stale_reasons(f, now, days, rdays);
    int stale = reasons == NULL ? -1 : json_array_size(reasons) > 0;

    json_decref(reasons);
    return stale;
}

enum http_rc api_stale(struct vx_req *r)
{
    int days, rdays;

    if (days_param(r, "days", FLAG_STALE_DAYS_DEFAULT, &days) != 0 ||
        days_param(r, "rolled_out_days", FLAG_ROLLED_OUT_DAYS_DEFAULT, &rdays) != 0)
        return HTTP_QUEUED;
    /* Staleness is judged in the default environment (docs/operations.md §3). */
    json_t *arr = admin_flags(r->snap, &r->snap->envs[r->snap->default_env], days, rdays, is_stale);
    return http_reply_json(r, 200, arr != NULL ? json_pack("{s:o}", "flags", arr) : NULL);
}
