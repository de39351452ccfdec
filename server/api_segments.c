/* api_segments.c -- docs/api.md §7: segments, named user lists that flag
 * states name in any environment.
 *
 * Reads come from the snapshot: the segment itself, and where it is used
 * (each environment's flags that name it), found in one pass over the
 * views.  Writes and the history run on a database thread (http_run_db)
 * while the request waits suspended; a write answers once this instance
 * serves it, so the change is visible here at once. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "httputil.h"
#include "listen.h"
#include "store.h"
#include "timeutil.h"

#define AWAIT_PUBLISH_MS        2000
#define SEGMENT_USERS_MAX       100000
#define SEGMENT_DESCRIPTION_MAX 1000 /* characters */

/* {"<segment>": [{flag, environment}, ...]} for every segment some flag
 * state of s names.  New reference; NULL on OOM. */
static json_t *used_by_all(const struct vx_snapshot *s)
{
    json_t *map = json_object();
    int rc = map == NULL;

    for (size_t e = 0; rc == 0 && e < s->n_envs; e++) {
        const struct vx_view *v = s->envs[e].view;
        for (size_t i = 0; rc == 0 && i < v->n_flags; i++) {
            const struct vx_flag *f = &v->flags[i];
            for (size_t k = 0; rc == 0 && k < f->n_segments; k++) {
                json_t *list = json_object_get(map, f->segments[k]);
                if (list == NULL) {
                    list = json_array();
                    rc = json_object_set_new(map, f->segments[k], list);
                }
                rc = rc ||
                     json_array_append_new(list, json_pack("{s:s, s:s}", "flag", f->name,
                                                           "environment", s->envs[e].name)) != 0;
            }
        }
    }
    if (rc != 0) {
        json_decref(map);
        return NULL;
    }
    return map;
}

/* The segment's object with its used_by from map (NULL when the segment
 * is not in the snapshot's map: unused).  Takes o. */
static json_t *with_used_by(json_t *o, const json_t *map, const char *name)
{
    json_t *list = json_object_get(map, name);

    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "used_by", list != NULL ? json_incref(list) : json_array()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

enum http_rc api_segments_list(struct vx_req *r)
{
    const struct vx_snapshot *s = r->snap;
    json_t *map = used_by_all(s), *arr = json_array();

    for (size_t i = 0; map != NULL && arr != NULL && i < s->n_segments; i++) {
        const struct vx_segment *g = s->segments[i];
        if (json_array_append_new(arr, with_used_by(segment_json(g, false), map, g->name)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_decref(map);
    if (arr == NULL)
        return http_reply_json(r, 200, NULL);
    return http_reply_json(r, 200, json_pack("{s:o}", "segments", arr));
}

/* The route's segment name, or NULL with 404 queued when it cannot be
 * one. */
static const char *name_or_404(struct vx_req *r)
{
    const char *name = http_arg(r, 0);

    if (!flag_name_valid(name, strlen(name))) {
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no segment named '%.100s'", name);
        return NULL;
    }
    return name;
}

/* Answer segment g of the current snapshot's world, with its users. */
static enum http_rc reply_segment(struct vx_req *r, unsigned status, const struct vx_snapshot *s,
                                  const struct vx_segment *g)
{
    json_t *map = used_by_all(s);
    json_t *o = map != NULL ? with_used_by(segment_json(g, true), map, g->name) : NULL;

    json_decref(map);
    http_set_etag(r, g->revision);
    return http_reply_json(r, status, o);
}

enum http_rc api_segments_get(struct vx_req *r)
{
    const char *name = name_or_404(r);
    const struct vx_segment *g =
        name != NULL ? snapshot_segment(r->snap, name, strlen(name)) : NULL;

    if (name != NULL && g == NULL)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no segment named '%.100s'", name);
    return g != NULL ? reply_segment(r, 200, r->snap, g) : HTTP_QUEUED;
}

/* ---- writes and history ----------------------------------------------------- */

struct segment_call {
    enum { SEG_CREATE, SEG_UPDATE, SEG_DELETE, SEG_HISTORY } what;
    char *name;
    struct segment_patch patch;
    int64_t if_match;
    int limit;
    int64_t before;
    const char *actor; /* the token's name, in the request's snapshot */
    int64_t now;
    enum store_status st;
    struct vx_segment out;
    int64_t version;
    json_t *history;
    char used[256];
};

static void segment_call_free(void *job)
{
    struct segment_call *sc = job;

    free(sc->name);
    free(sc->patch.description);
    users_free(sc->patch.users, sc->patch.n_users);
    segment_clear(&sc->out);
    json_decref(sc->history);
    free(sc);
}

static void segment_call_work(PGconn *c, void *job)
{
    struct segment_call *sc = job;

    switch (sc->what) {
    case SEG_CREATE:
        sc->st = store_segment_create(c, sc->name, &sc->patch, sc->actor, sc->now, &sc->out,
                                      &sc->version);
        break;
    case SEG_UPDATE:
        sc->st = store_segment_update(c, sc->name, &sc->patch, sc->if_match, sc->actor, sc->now,
                                      &sc->out, &sc->version);
        break;
    case SEG_DELETE:
        sc->st = store_segment_delete(c, sc->name, sc->if_match, sc->actor, sc->now, &sc->version,
                                      sc->used);
        break;
    case SEG_HISTORY:
        sc->st = store_segment_history(c, sc->name, sc->limit, sc->before, &sc->history);
        break;
    }
    if (sc->st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (sc->st == STORE_OK && sc->version > 0)
        listen_await_version(sc->version, AWAIT_PUBLISH_MS);
}

static struct segment_call *call_new(struct vx_req *r, int what, const char *name)
{
    struct segment_call *sc = calloc(1, sizeof(*sc));

    if (sc != NULL) {
        sc->what = what;
        sc->name = strdup(name);
        sc->actor = r->token != NULL ? r->token->name : "";
        sc->now = time_now_us();
        sc->if_match = -1;
        if (sc->name == NULL) {
            free(sc);
            sc = NULL;
        }
    }
    return sc;
}

static enum http_rc submit(struct vx_req *r, struct segment_call *sc)
{
    if (sc == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    return http_run_db(r, segment_call_work, sc, segment_call_free);
}

/* A create (name, description?, users?) or update (description?, users?)
 * body into a new call; NULL with 400 queued. */
static struct segment_call *read_body(struct vx_req *r, bool create)
{
    json_t *body = http_body_json(r, false);
    const char *key;
    json_t *v;
    struct vx_error err = {0};

    if (body == NULL)
        return NULL;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "description") != 0 && strcmp(key, "users") != 0 &&
            (!create || strcmp(key, "name") != 0)) {
            http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body);
            return NULL;
        }
    }
    json_t *name = json_object_get(body, "name"), *desc = json_object_get(body, "description"),
           *users = json_object_get(body, "users");
    if (create && (!json_is_string(name) ||
                   !flag_name_valid(json_string_value(name), json_string_length(name)))) {
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$");
        json_decref(body);
        return NULL;
    }
    struct segment_call *sc = call_new(r, create ? SEG_CREATE : SEG_UPDATE,
                                       create ? json_string_value(name) : http_arg(r, 0));
    if (sc == NULL) {
        json_decref(body);
        http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
        return NULL;
    }
    sc->patch.set_description = desc != NULL;
    sc->patch.set_users = users != NULL;
    int bad = (desc != NULL && text_from_json(desc, "description", SEGMENT_DESCRIPTION_MAX,
                                              &sc->patch.description, &err) != 0) ||
              (users != NULL && users_from_json(users, "users", SEGMENT_USERS_MAX, &sc->patch.users,
                                                &sc->patch.n_users, &err) != 0);
    json_decref(body);
    if (bad) {
        segment_call_free(sc);
        http_reply_error(r, 400, err.code, "%s", err.message);
        return NULL;
    }
    return sc;
}

/* The answer to a finished call. */
static enum http_rc reply(struct vx_req *r, struct segment_call *sc, unsigned status)
{
    switch (sc->st) {
    case STORE_OK:
        break;
    case STORE_NOT_FOUND:
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no segment named '%.100s'", sc->name);
    case STORE_CONFLICT:
        if (sc->what == SEG_CREATE)
            return http_reply_error(r, 409, VX_E_CONFLICT, "a segment named '%s' already exists",
                                    sc->name);
        return http_reply_error(r, 409, VX_E_CONFLICT,
                                "segment '%s' is in use (%s): remove it from every flag first",
                                sc->name, sc->used);
    case STORE_PRECONDITION:
        return http_reply_error(r, 412, VX_E_PRECONDITION_FAILED,
                                "the segment has changed since the revision in If-Match");
    case STORE_UNAVAILABLE:
        return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
    default:
        return http_reply_unavailable(
            r, 2, "the database failed to apply the change; nothing was changed");
    }
    if (sc->what == SEG_HISTORY) {
        json_t *h = sc->history;
        sc->history = NULL;
        return http_reply_json(r, 200, h);
    }
    if (sc->what == SEG_DELETE)
        return http_reply_empty(r, status);
    struct vx_snapshot *s = snapshot_acquire();
    enum http_rc rc = reply_segment(r, status, s, &sc->out);
    snapshot_release(s);
    return rc;
}

enum http_rc api_segments_create(struct vx_req *r)
{
    struct segment_call *sc = http_db_job(r);

    if (sc != NULL)
        return reply(r, sc, 201);
    sc = read_body(r, true);
    return sc != NULL ? submit(r, sc) : HTTP_QUEUED;
}

enum http_rc api_segments_patch(struct vx_req *r)
{
    struct segment_call *sc = http_db_job(r);

    if (sc != NULL)
        return reply(r, sc, 200);
    int64_t im = http_if_match(r);
    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    sc = read_body(r, false);
    if (sc == NULL)
        return HTTP_QUEUED;
    sc->if_match = im;
    return submit(r, sc);
}

enum http_rc api_segments_delete(struct vx_req *r)
{
    struct segment_call *sc = http_db_job(r);

    if (sc != NULL)
        return reply(r, sc, 204);
    int64_t im = http_if_match(r);
    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    sc = call_new(r, SEG_DELETE, http_arg(r, 0));
    if (sc != NULL)
        sc->if_match = im;
    return submit(r, sc);
}

enum http_rc api_segments_history(struct vx_req *r)
{
    struct segment_call *sc = http_db_job(r);
    int64_t limit = STORE_HISTORY_LIMIT_DEFAULT, before = 0;
    const char *l = http_query(r, "limit"), *b = http_query(r, "before");

    if (sc != NULL)
        return reply(r, sc, 200);
    if (name_or_404(r) == NULL)
        return HTTP_QUEUED;
    if ((l != NULL && parse_int_range(l, 1, STORE_HISTORY_LIMIT_MAX, &limit) != 0) ||
        (b != NULL && parse_int_range(b, 1, INT64_MAX, &before) != 0))
        return http_reply_error(r, 400, VX_E_INVALID_VALUE,
                                "limit must be an integer from 1 to %d, before a positive event id",
                                STORE_HISTORY_LIMIT_MAX);
    sc = call_new(r, SEG_HISTORY, http_arg(r, 0));
    if (sc != NULL) {
        sc->limit = (int)limit;
        sc->before = before;
    }
    return submit(r, sc);
}
