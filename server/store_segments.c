/* store_segments.c -- the segments table (docs/api.md §7): named user
 * lists that flag states name.
 *
 * Why.  A segment is read into the snapshot whole (its users sorted and
 * distinct, like a flag's), so that evaluation finds a user in it by
 * binary search; a change to it is logged (kind 'segment') so a listener
 * reloads only that segment.  A flag write that names segments holds them
 * (FOR KEY SHARE) until it commits, so a concurrent delete cannot leave a
 * flag naming a segment that is gone. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "timeutil.h"

/* clang-format off */
#define SEGMENT_COLUMNS \
    "name, description, array_to_json(users)::text, " US("created_at") ", " \
    US("updated_at") ", revision "

static const char SQL_SEGMENTS_ALL[] =
    "SELECT " SEGMENT_COLUMNS
    "FROM segments "
    "ORDER BY name COLLATE \"C\"";

static const char SQL_SEGMENTS_CHANGED[] =
    "SELECT " SEGMENT_COLUMNS
    "FROM segments "
    "WHERE name = ANY (ARRAY(SELECT name FROM flag_changes "
                            "WHERE version > $1 AND kind = 'segment')) "
    "ORDER BY name COLLATE \"C\"";

static const char SQL_SEGMENTS_DELETED[] =
    "SELECT DISTINCT c.name COLLATE \"C\" "
    "FROM flag_changes c "
    "WHERE c.version > $1 AND c.kind = 'segment' "
      "AND NOT EXISTS (SELECT 1 FROM segments g WHERE g.name = c.name) "
    "ORDER BY 1";

/* The first of the names ($1) that no segment has; the others are held. */
static const char SQL_SEGMENTS_HOLD[] =
    "WITH held AS (SELECT name FROM segments "
                  "WHERE name = ANY (" TEXT_ARRAY(1) ") "
                  "FOR KEY SHARE) "
    "SELECT n "
    "FROM unnest(" TEXT_ARRAY(1) ") AS n "
    "WHERE n NOT IN (SELECT name FROM held) "
    "LIMIT 1";
/* clang-format on */

/* Row row of a SEGMENT_COLUMNS result into g.  0 or -1. */
static int segment_from_row(const PGresult *r, int row, struct vx_segment *g)
{
    json_t *a = json_loads(PQgetvalue(r, row, 2), 0, NULL);
    int rc = 0;

    memset(g, 0, sizeof *g);
    g->name = strdup(PQgetvalue(r, row, 0));
    g->description = strdup(PQgetvalue(r, row, 1));
    g->created_at = store_int64(r, row, 3);
    g->updated_at = store_int64(r, row, 4);
    g->revision = store_int64(r, row, 5);
    if (g->name == NULL || g->description == NULL ||
        users_from_json(a, "users", SIZE_MAX, &g->users, &g->n_users, NULL) != 0)
        rc = -1;
    json_decref(a);
    if (rc != 0)
        segment_clear(g);
    return rc;
}

enum store_status store_segments_select(PGconn *c, int64_t since, struct vx_segment **segs,
                                        size_t *n, char ***deleted, size_t *n_deleted)
{
    char v[24];
    const char *params[] = {store_itoa(since, v)};
    enum store_status st = STORE_OK;
    PGresult *r = since >= 0 ? store_query(c, SQL_SEGMENTS_CHANGED, 1, params, &st)
                             : store_query(c, SQL_SEGMENTS_ALL, 0, NULL, &st);

    *segs = NULL;
    *n = 0;
    *deleted = NULL;
    *n_deleted = 0;
    if (r == NULL)
        return st;
    size_t rows = (size_t)PQntuples(r);
    struct vx_segment *a = calloc(rows > 0 ? rows : 1, sizeof *a);
    for (size_t i = 0; a != NULL && i < rows; i++)
        if (segment_from_row(r, (int)i, &a[i]) != 0) {
            while (i > 0)
                segment_clear(&a[--i]);
            free(a);
            a = NULL;
        }
    PQclear(r);
    if (a == NULL)
        return store_fail(STORE_ERROR, "cannot read the segments");
    *segs = a;
    *n = rows;
    if (since >= 0)
        st = store_names_query(c, SQL_SEGMENTS_DELETED, params[0], deleted, n_deleted);
    return st;
}

enum store_status store_segments_hold(PGconn *c, char *const *names, size_t n, const char **missing)
{
    return store_first_missing(c, SQL_SEGMENTS_HOLD, names, n, missing);
}

/* ---- writes ----------------------------------------------------------------- */

/* clang-format off */
static const char SQL_SEGMENT_LOCK[] =
    "SELECT " SEGMENT_COLUMNS
    "FROM segments WHERE name = $1 FOR UPDATE";

static const char SQL_SEGMENT_INSERT[] =
    "INSERT INTO segments (name, description, users, created_at, updated_at, revision) "
    "VALUES ($1, $2, " TEXT_ARRAY(3) ", " TS(4) ", " TS(4) ", 1) "
    "ON CONFLICT (name) DO NOTHING";

static const char SQL_SEGMENT_UPDATE[] =
    "UPDATE segments SET description = $2, users = " TEXT_ARRAY(3) ", "
                        "updated_at = " TS(4) ", revision = revision + 1 "
    "WHERE name = $1";

static const char SQL_SEGMENT_DELETE[] =
    "DELETE FROM segments WHERE name = $1";

/* The environments whose flags name the segment $1, and one such flag. */
static const char SQL_SEGMENT_USERS_ENVS[] =
    "SELECT DISTINCT environment COLLATE \"C\" FROM flag_states WHERE $1 = ANY (segments) "
    "ORDER BY 1";

static const char SQL_SEGMENT_USED[] =
    "SELECT flag, environment FROM flag_states WHERE $1 = ANY (segments) "
    "ORDER BY flag, environment LIMIT 1";
/* clang-format on */

json_t *segment_json(const struct vx_segment *g, bool with_users)
{
    char c[32], u[32];
    json_t *o = json_pack("{s:s, s:s}", "name", g->name, "description", g->description);
    int rc = o == NULL;

    if (with_users) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < g->n_users; i++)
            if (json_array_append_new(a, json_string(g->users[i])) != 0) {
                json_decref(a);
                a = NULL;
            }
        rc = rc || json_object_set_new(o, "users", a) != 0;
    } else {
        rc = rc || json_object_set_new(o, "users_count", json_integer((json_int_t)g->n_users)) != 0;
    }
    rc = rc || json_object_set_new(o, "created_at",
                                   json_string(time_format_rfc3339(g->created_at, c, sizeof c)));
    rc = rc || json_object_set_new(o, "updated_at",
                                   json_string(time_format_rfc3339(g->updated_at, u, sizeof u)));
    rc = rc || json_object_set_new(o, "revision", json_integer(g->revision));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One segment write. */
struct segment_write {
    const struct segment_patch *p;
    const char *name;
    int64_t if_match;
    const char *actor;
    int64_t now;
    enum { SEG_CREATE, SEG_UPDATE, SEG_DELETE } what;
    struct vx_segment out; /* as written */
    int64_t version;
    char used[256]; /* delete refused: who uses it */
};

/* The segment's row, locked, into *g; *found whether there is one. */
static enum store_status segment_lock(PGconn *c, const char *name, struct vx_segment *g,
                                      bool *found)
{
    const char *params[] = {name};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_SEGMENT_LOCK, 1, params, &st);

    *found = false;
    memset(g, 0, sizeof *g);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 1) {
        if (segment_from_row(r, 0, g) != 0)
            st = store_fail(STORE_ERROR, "cannot read segment %s", name);
        else
            *found = true;
    }
    PQclear(r);
    return st;
}

static enum store_status segment_write_cb(PGconn *c, void *cls)
{
    struct segment_write *w = cls;
    const struct segment_patch *p = w->p;
    struct vx_segment cur;
    bool found = false;
    char now_s[24];
    char **envs = NULL;
    size_t n_envs = 0;
    enum store_status st;

    segment_clear(&w->out);
    w->used[0] = '\0';
    st = segment_lock(c, w->name, &cur, &found);
    if (st != STORE_OK)
        return st;
    if (w->what == SEG_CREATE && found)
        st = STORE_CONFLICT;
    else if (w->what != SEG_CREATE && !found)
        st = STORE_NOT_FOUND;
    else if (w->what != SEG_CREATE && w->if_match > 0 && cur.revision != w->if_match)
        st = STORE_PRECONDITION;
    if (st != STORE_OK) {
        segment_clear(&cur);
        return st;
    }

    json_t *before = found ? segment_json(&cur, true) : NULL;
    const char *p1[] = {w->name};
    if (w->what == SEG_DELETE) {
        PGresult *r = store_query(c, SQL_SEGMENT_USED, 1, p1, &st);
        if (r != NULL && PQntuples(r) > 0) {
            snprintf(w->used, sizeof w->used, "flag %s in %s", PQgetvalue(r, 0, 0),
                     PQgetvalue(r, 0, 1));
            st = STORE_CONFLICT;
        }
        PQclear(r);
        if (st == STORE_OK)
            st = store_command(c, SQL_SEGMENT_DELETE, 1, p1, NULL);
    } else {
        const char *desc = p->set_description ? p->description : found ? cur.description : "";
        char *const *users = p->set_users ? p->users : cur.users;
        size_t n_users = p->set_users ? p->n_users : cur.n_users;
        bool same = found && strcmp(desc, cur.description) == 0 && n_users == cur.n_users;
        for (size_t i = 0; same && i < n_users; i++)
            same = strcmp(users[i], cur.users[i]) == 0;
        if (same) { /* nothing to write: the segment as it is */
            json_decref(before);
            w->out = cur;
            return STORE_OK;
        }
        char *list = store_names_json(users, n_users);
        if (list == NULL) {
            json_decref(before);
            segment_clear(&cur);
            return store_fail(STORE_ERROR, "out of memory");
        }
        const char *params[] = {w->name, desc, list, store_itoa(w->now, now_s)};
        st = store_command(c, w->what == SEG_CREATE ? SQL_SEGMENT_INSERT : SQL_SEGMENT_UPDATE, 4,
                           params, NULL);
        free(list);
        if (st == STORE_OK) {
            bool again;
            st = segment_lock(c, w->name, &w->out, &again);
        }
    }
    /* Every environment whose flags use the segment answers differently
     * now: one version bump each (none for a new or an unused one). */
    if (st == STORE_OK && w->what == SEG_UPDATE)
        st = store_names_query(c, SQL_SEGMENT_USERS_ENVS, w->name, &envs, &n_envs);
    if (st == STORE_OK)
        st = store_version_bump(c, STORE_CHANGE_SEGMENT, w->name,
                                envs != NULL ? envs : STORE_NO_ENVS, n_envs, &w->version);
    for (size_t i = 0; i < n_envs; i++)
        free(envs[i]);
    free(envs);
    json_t *after = w->what != SEG_DELETE && st == STORE_OK ? segment_json(&w->out, true) : NULL;
    static const char *const actions[] = {"create", "update", "delete"};
    if (st == STORE_OK)
        st = store_segment_event_insert(c, w->name, w->now, w->actor, actions[w->what], before,
                                        after);
    else {
        json_decref(before);
        json_decref(after);
    }
    segment_clear(&cur);
    return st;
}

static enum store_status segment_write(PGconn *c, struct segment_write *w, struct vx_segment *out,
                                       int64_t *version, char used[256])
{
    enum store_status st = store_write_transaction(c, segment_write_cb, w);

    if (st == STORE_OK && out != NULL)
        *out = w->out;
    else
        segment_clear(&w->out);
    *version = st == STORE_OK ? w->version : 0;
    if (used != NULL)
        snprintf(used, 256, "%s", w->used);
    return st;
}

enum store_status store_segment_create(PGconn *c, const char *name, const struct segment_patch *p,
                                       const char *actor, int64_t now, struct vx_segment *out,
                                       int64_t *version)
{
    struct segment_write w = {.p = p, .name = name, .actor = actor, .now = now, .what = SEG_CREATE};

    return segment_write(c, &w, out, version, NULL);
}

enum store_status store_segment_update(PGconn *c, const char *name, const struct segment_patch *p,
                                       int64_t if_match, const char *actor, int64_t now,
                                       struct vx_segment *out, int64_t *version)
{
    struct segment_write w = {
        .p = p, .name = name, .if_match = if_match, .actor = actor, .now = now, .what = SEG_UPDATE};

    return segment_write(c, &w, out, version, NULL);
}

enum store_status store_segment_delete(PGconn *c, const char *name, int64_t if_match,
                                       const char *actor, int64_t now, int64_t *version,
                                       char used[256])
{
    static const struct segment_patch none;
    struct segment_write w = {.p = &none,
                              .name = name,
                              .if_match = if_match,
                              .actor = actor,
                              .now = now,
                              .what = SEG_DELETE};

    return segment_write(c, &w, NULL, version, used);
}
