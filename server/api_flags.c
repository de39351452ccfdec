/* api_flags.c -- docs/api.md §3 flags: CRUD with If-Match, history, revert, stale.
 *
 * Reads come from the snapshot like every other read.  Writes go to the
 * database through store.c in one transaction each, then wait (briefly) for
 * this instance's listener to publish the snapshot of the new version, so
 * a client that writes and then reads here sees its own write. */
#include <string.h>

#include "api.h"
#include "httputil.h"
#include "listen.h"
#include "store.h"
#include "timeutil.h"

#define AWAIT_PUBLISH_MS 2000

static enum http_rc reply_flag(struct vx_req *r, unsigned status, const struct vx_flag *f)
{
    http_set_etag(r, f->revision);
    return http_reply_json(r, status,
                           flag_to_admin_json(f, time_now_us(), FLAG_STALE_DAYS_DEFAULT,
                                              FLAG_ROLLED_OUT_DAYS_DEFAULT));
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

static PGconn *conn_or_503(struct vx_req *r)
{
    PGconn *c = store_thread_conn();

    if (c == NULL)
        reply_store_failure(r, STORE_UNAVAILABLE, "");
    return c;
}

/* The snapshot's flag named by the route's argument, or NULL with 404 queued. */
static const struct vx_flag *find_or_404(struct vx_req *r)
{
    const char *name = http_arg(r, 0);
    const struct vx_flag *f = snapshot_find(r->snap, name, strlen(name));

    if (f == NULL)
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
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

/* If-Match: -1 absent, 0 "*", else the revision.  -2 malformed (400 queued). */
static int64_t if_match(struct vx_req *r)
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

static const char *actor(struct vx_req *r)
{
    return r->token != NULL ? r->token->name : "";
}

static enum http_rc after_write(struct vx_req *r, unsigned status, const struct vx_flag *f,
                                int64_t version)
{
    if (version > 0)
        listen_await_version(version, AWAIT_PUBLISH_MS);
    return f != NULL ? reply_flag(r, status, f) : http_reply_empty(r, status);
}

/* What a list keeps of a flag: 1 keep, 0 skip, -1 out of memory. */
typedef int (*keep_fn)(const struct vx_flag *f, int64_t now, int days, int rdays);

/* The admin objects of the snapshot's flags that keep() accepts (all when
 * NULL), or NULL when out of memory: never a list that silently misses a
 * flag. */
static json_t *admin_flags(const struct vx_snapshot *s, int days, int rdays, keep_fn keep)
{
    int64_t now = time_now_us();
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < s->n_flags; i++) {
        const struct vx_flag *f = &s->flags[i];
        int k = keep != NULL ? keep(f, now, days, rdays) : 1;
        if (k == 0)
            continue;
        if (k < 0 || json_array_append_new(arr, flag_to_admin_json(f, now, days, rdays)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

enum http_rc api_flags_list(struct vx_req *r)
{
    int64_t version = r->snap->version;
    json_t *arr = admin_flags(r->snap, FLAG_STALE_DAYS_DEFAULT, FLAG_ROLLED_OUT_DAYS_DEFAULT, NULL);
    json_t *o =
        arr != NULL ? json_pack("{s:I, s:o}", "version", (json_int_t)version, "flags", arr) : NULL;

    http_set_etag(r, version);
    return http_reply_json(r, 200, o);
}

enum http_rc api_flags_get(struct vx_req *r)
{
    const struct vx_flag *f = find_or_404(r);

    return f != NULL ? reply_flag(r, 200, f) : HTTP_QUEUED;
}

/* Read and validate a POST (create) or PATCH body into p, and get this
 * thread's database connection.  NULL with the 400/503 queued (and p
 * freed) when either fails; else the caller flag_patch_free()s p. */
static PGconn *read_patch(struct vx_req *r, bool create, struct vx_flag_patch *p)
{
    struct vx_error err;
    json_t *body = http_body_json(r, false);

    if (body == NULL)
        return NULL;
    if (flag_patch_from_json(body, create, p, &err) != 0) {
        json_decref(body);
        http_reply_error(r, 400, err.code, "%s", err.message);
        return NULL;
    }
    json_decref(body);
    PGconn *c = conn_or_503(r);
    if (c == NULL)
        flag_patch_free(p);
    return c;
}

enum http_rc api_flags_create(struct vx_req *r)
{
    struct vx_flag_patch p;
    struct vx_flag out;
    int64_t version = 0;
    enum http_rc rc;
    PGconn *c = read_patch(r, true, &p);

    if (c == NULL)
        return HTTP_QUEUED;
    enum store_status st = store_flag_create(c, &p, actor(r), time_now_us(), &out, &version);
    if (st == STORE_CONFLICT)
        rc = http_reply_error(r, 409, VX_E_CONFLICT, "a flag named '%s' already exists", p.name);
    else if (st != STORE_OK)
        rc = reply_store_failure(r, st, "flag");
    else {
        rc = after_write(r, 201, &out, version);
        flag_free(&out);
    }
    flag_patch_free(&p);
    return rc;
}

enum http_rc api_flags_patch(struct vx_req *r)
{
    struct vx_flag_patch p;
    struct vx_flag out;
    int64_t version = 0;
    int64_t im = if_match(r);

    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    PGconn *c = read_patch(r, false, &p);
    if (c == NULL)
        return HTTP_QUEUED;
    enum store_status st =
        store_flag_update(c, http_arg(r, 0), &p, im, actor(r), time_now_us(), &out, &version);
    flag_patch_free(&p);
    if (st != STORE_OK)
        return reply_store_failure(r, st, "the flag");
    enum http_rc rc = after_write(r, 200, &out, version);
    flag_free(&out);
    return rc;
}

enum http_rc api_flags_delete(struct vx_req *r)
{
    int64_t version = 0;
    int64_t im = if_match(r);

    if (im == -2 || name_or_404(r) == NULL)
        return HTTP_QUEUED;
    PGconn *c = conn_or_503(r);
    if (c == NULL)
        return HTTP_QUEUED;
    enum store_status st =
        store_flag_delete(c, http_arg(r, 0), im, actor(r), time_now_us(), &version);
    if (st != STORE_OK)
        return reply_store_failure(r, st, "the flag");
    return after_write(r, 204, NULL, version);
}

enum http_rc api_flags_history(struct vx_req *r)
{
    json_t *out = NULL;

    if (name_or_404(r) == NULL)
        return HTTP_QUEUED;
    PGconn *c = conn_or_503(r);
    if (c == NULL)
        return HTTP_QUEUED;
    enum store_status st = store_flag_history(c, http_arg(r, 0), &out);
    if (st != STORE_OK)
        return reply_store_failure(r, st, "the flag's history");
    return http_reply_json(r, 200, out);
}

enum http_rc api_flags_revert(struct vx_req *r)
{
    if (name_or_404(r) == NULL)
        return HTTP_QUEUED;
    json_t *body = http_body_json(r, false);
    const char *key;
    json_t *v;
    int64_t event = 0;
    struct vx_flag out;
    int64_t version = 0;

    if (body == NULL)
        return HTTP_QUEUED;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "event") != 0) {
            enum http_rc rc =
                http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body); /* key lives in body */
            return rc;
        }
    }
    v = json_object_get(body, "event");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        json_decref(body);
        return http_reply_error(r, 400, VX_E_INVALID_VALUE,
                                "event must be the positive integer id of a history event");
    }
    event = json_integer_value(v);
    json_decref(body);
    PGconn *c = conn_or_503(r);
    if (c == NULL)
        return HTTP_QUEUED;
    enum store_status st =
        store_flag_revert(c, http_arg(r, 0), event, actor(r), time_now_us(), &out, &version);
    if (st == STORE_CONFLICT)
        return http_reply_error(r, 409, VX_E_CONFLICT,
                                "event %lld has no state before it to restore", (long long)event);
    if (st == STORE_NOT_FOUND)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no event %lld in the history of this flag",
                                (long long)event);
    if (st != STORE_OK)
        return reply_store_failure(r, st, "the flag");
    enum http_rc rc = after_write(r, 200, &out, version);
    flag_free(&out);
    return rc;
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
    json_t *arr = admin_flags(r->snap, days, rdays, is_stale);
    return http_reply_json(r, 200, arr != NULL ? json_pack("{s:o}", "flags", arr) : NULL);
}
