/* store_events.c -- the flag_events table: the history of every flag.
 *
 * Why.  Every flag write appends one event holding the whole flag before
 * and after it (JSON objects in jsonb columns, SQL NULL where the flag did
 * not exist), so that history can be shown (GET .../history) and any state
 * restored (revert, docs/decisions.md "Data").  History is kept by name: it
 * outlives a DELETE and continues when the name is created again.
 *
 * How.  Events are written with the flag's JSON form (flag_to_json) and read
 * back through flag_from_json/flag_to_json, so that the API shows their keys
 * in the usual order although jsonb sorts them.  The highest revision a
 * name ever had is read from its events, for a revert to continue from it. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* clang-format off */
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO flag_events (flag_name, at, actor, action, before, after) "
    "VALUES ($1, " TS(2) ", $3, $4, $5::jsonb, $6::jsonb)";

static const char SQL_EVENT_GET[] =
    "SELECT flag_name, action, before::text "
    "FROM flag_events "
    "WHERE id = $1";

static const char SQL_MAX_REVISION[] =
    "SELECT coalesce(max(greatest((before->>'revision')::bigint, "
                                 "(after->>'revision')::bigint)), 0) "
    "FROM flag_events "
    "WHERE flag_name = $1";

static const char SQL_HISTORY[] =
    "SELECT id, " US("at") ", actor, action, before::text, after::text "
    "FROM flag_events "
    "WHERE flag_name = $1 "
    "AND ($2::bigint IS NULL OR id < $2::bigint) "
    "ORDER BY id DESC "
    "LIMIT $3";
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */

/* A flag as compact JSON text for the events table; caller free()s.  NULL
 * for f == NULL (SQL NULL) -- and on OOM, which *st then reports. */
static char *store_flag_json_text(const struct vx_flag *f, enum store_status *st)
{
    if (f == NULL)
        return NULL;
    json_t *o = flag_to_json(f);
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (s == NULL)
        *st = store_fail(STORE_ERROR, "cannot encode flag %s", f->name);
    return s;
}

enum store_status store_event_insert(PGconn *c, const char *name, int64_t at, const char *actor,
                                     const char *action, const struct vx_flag *before,
                                     const struct vx_flag *after)
{
    enum store_status st = STORE_OK;
    char at_s[24];
    char *b = store_flag_json_text(before, &st);
    char *a = st == STORE_OK ? store_flag_json_text(after, &st) : NULL;

    if (st == STORE_OK) {
        const char *params[] = {name, store_itoa(at, at_s), actor != NULL ? actor : "", action, b,
                                a};
        st = store_command(c, SQL_EVENT_INSERT, 6, params, NULL);
    }
    free(b);
    free(a);
    return st;
}

/* ------------------------------------------------------------------ */
/* Reading, for a revert                                                */
/* ------------------------------------------------------------------ */

enum store_status store_event_get(PGconn *c, int64_t id, char **name, json_t **before, bool *found)
{
    enum store_status st = STORE_OK;
    char id_s[24];
    const char *params[] = {store_itoa(id, id_s)};
    PGresult *r = store_query(c, SQL_EVENT_GET, 1, params, &st);

    *name = NULL;
    *before = NULL;
    *found = false;
    if (r == NULL)
        return st;
    if (PQntuples(r) == 1) {
        *name = strdup(PQgetvalue(r, 0, 0));
        if (!PQgetisnull(r, 0, 2))
            *before = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        if (*name == NULL || (!PQgetisnull(r, 0, 2) && *before == NULL)) {
            free(*name);
            *name = NULL;
            st = store_fail(STORE_ERROR, "cannot read event %lld", (long long)id);
        } else {
            *found = true;
        }
    }
    PQclear(r);
    return st;
}

enum store_status store_max_revision(PGconn *c, const char *name, int64_t *rev)
{
    const char *params[] = {name};

    *rev = 0;
    return store_query_int64(c, SQL_MAX_REVISION, 1, params, rev);
}

/* ------------------------------------------------------------------ */
/* History                                                              */
/* ------------------------------------------------------------------ */

/* An event's before/after as the API shows it: re-encoded through
 * flag_from_json/flag_to_json so that keys come in the usual order (jsonb
 * sorts them), the raw object if that fails, null for SQL NULL.  New
 * reference; NULL on OOM. */
static json_t *store_event_flag(const PGresult *r, int row, int col)
{
    struct vx_flag f;
    json_t *raw, *o;

    if (PQgetisnull(r, row, col))
        return json_null();
    raw = json_loads(PQgetvalue(r, row, col), 0, NULL);
    if (raw == NULL || flag_from_json(raw, &f, NULL) != 0)
        return raw;
    o = flag_to_json(&f);
    flag_free(&f);
    if (o == NULL)
        return raw;
    json_decref(raw);
    return o;
}

/* A row of SQL_HISTORY as an API event. */
static const struct store_json_field event_fields[] = {
    /* clang-format off */
    {"id",     store_int64_json},
    {"at",     store_time_json},
    {"actor",  store_text_json},
    {"action", store_text_json},
    {"before", store_event_flag},
    {"after",  store_event_flag},
    /* clang-format on */
};

/* One page of a flag's history, newest first (store_flag_history). */
struct history_page {
    const char *name;
    int limit;
    int64_t before; /* 0: from the newest */
};

/* History rows of the page (arg) as {"events":[...], "next": id|null}; new
 * reference in *out.  STORE_NOT_FOUND when the name never had an event. */
static enum store_status store_history_select(PGconn *c, const void *arg, json_t **out)
{
    const struct history_page *pg = arg;
    enum store_status st = STORE_OK;
    char before[24], limit[24];
    /* One row more than the page shows: whether there is a next page. */
    const char *params[] = {pg->name, pg->before > 0 ? store_itoa(pg->before, before) : NULL,
                            store_itoa(pg->limit + 1, limit)};
    PGresult *r = store_query(c, SQL_HISTORY, 3, params, &st);

    *out = NULL;
    if (r == NULL)
        return st;
    int rows = PQntuples(r);
    if (rows == 0 && pg->before == 0) {
        PQclear(r);
        return STORE_NOT_FOUND;
    }
    *out = store_rows_json(r, pg->limit, "events", event_fields,
                           sizeof event_fields / sizeof event_fields[0]);
    json_t *next = rows > pg->limit ? json_integer(store_int64(r, pg->limit - 1, 0)) : json_null();
    PQclear(r);
    if (*out == NULL || json_object_set_new(*out, "next", next) != 0) {
        json_decref(*out);
        *out = NULL;
        return store_fail(STORE_ERROR, "out of memory building the history of %s", pg->name);
    }
    return STORE_OK;
}

enum store_status store_flag_history(PGconn *c, const char *name, int limit, int64_t before,
                                     json_t **out)
{
    const struct history_page pg = {name, limit, before};

    return store_read_json(c, store_history_select, &pg, out);
}
