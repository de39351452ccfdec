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
 * name ever had is read from its events, for a revert to continue from it.
 * The names its events hold that no flag has now are the deleted flags,
 * which `vexil refs` reports when code still names them. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* clang-format off */
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO flag_events (flag_name, at, actor, action, before, after, environments) "
    "VALUES ($1, " TS(2) ", $3, $4, $5::jsonb, $6::jsonb, " TEXT_ARRAY(7) ")";

static const char SQL_EVENT_GET[] =
    "SELECT flag_name, action, before::text, after::text, array_to_json(environments)::text "
    "FROM flag_events "
    "WHERE id = $1";

static const char SQL_MAX_REVISION[] =
    "SELECT coalesce(max(greatest((before->>'revision')::bigint, "
                                 "(after->>'revision')::bigint)), 0) "
    "FROM flag_events "
    "WHERE flag_name = $1";

static const char SQL_HISTORY[] =
    "SELECT id, " US("at") ", actor, action, array_to_json(environments)::text, "
           "before::text, after::text "
    "FROM flag_events "
    "WHERE flag_name = $1 "
    "AND ($2::bigint IS NULL OR id < $2::bigint) "
    "ORDER BY id DESC "
    "LIMIT $3";

static const char SQL_SEGMENT_HISTORY[] =
    "SELECT id, " US("at") ", actor, action, before::text, after::text "
    "FROM segment_events "
    "WHERE segment_name = $1 "
    "AND ($2::bigint IS NULL OR id < $2::bigint) "
    "ORDER BY id DESC "
    "LIMIT $3";

/* Names with history and no flag: deleted (the index on flag_name serves
 * the DISTINCT). */
static const char SQL_DELETED_NAMES[] =
    "SELECT DISTINCT e.flag_name COLLATE \"C\" "
    "FROM flag_events e "
    "WHERE NOT EXISTS (SELECT 1 FROM flags f WHERE f.name = e.flag_name) "
    "ORDER BY 1";

static const char SQL_SEGMENT_EVENT_INSERT[] =
    "INSERT INTO segment_events (segment_name, at, actor, action, before, after) "
    "VALUES ($1, " TS(2) ", $3, $4, $5::jsonb, $6::jsonb)";
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */

json_t *flag_envs_json(const struct flag_envs *fe, size_t top)
{
    json_t *o = flag_to_json(&fe->flags[top]);
    json_t *envs = json_object();
    int rc = o == NULL || envs == NULL;

    for (size_t i = 0; i < fe->n && rc == 0; i++)
        rc = json_object_set_new(envs, fe->envs[i], flag_state_to_json(&fe->flags[i]));
    rc = rc || json_object_set_new(o, "environments", envs) != 0;
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* JSON text of o (taken), compact; NULL for o == NULL (SQL NULL) -- and on
 * OOM, which *st then reports. */
static char *store_json_text(json_t *o, bool want, enum store_status *st)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (want && s == NULL)
        *st = store_fail(STORE_ERROR, "cannot encode an event");
    return s;
}

/* The object of a flag event: the default environment's state on top. */
static json_t *event_flag_json(const struct flag_envs *fe)
{
    return fe != NULL && fe->n > 0 ? flag_envs_json(fe, 0) : NULL;
}

enum store_status store_event_insert(PGconn *c, const char *name, int64_t at, const char *actor,
                                     const char *action, const struct flag_envs *before,
                                     const struct flag_envs *after, char *const *envs, size_t n)
{
    enum store_status st = STORE_OK;
    char at_s[24];
    char *b = store_json_text(event_flag_json(before), before != NULL, &st);
    char *a = store_json_text(event_flag_json(after), after != NULL, &st);
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < n; i++)
        json_array_append_new(list, json_string(envs[i]));
    char *l = store_json_text(list, true, &st);
    if (st == STORE_OK) {
        const char *params[] = {
            name, store_itoa(at, at_s), actor != NULL ? actor : "", action, b, a, l};
        st = store_command(c, SQL_EVENT_INSERT, 7, params, NULL);
    }
    free(b);
    free(a);
    free(l);
    return st;
}

enum store_status store_segment_event_insert(PGconn *c, const char *name, int64_t at,
                                             const char *actor, const char *action, json_t *before,
                                             json_t *after)
{
    enum store_status st = STORE_OK;
    char at_s[24];
    char *b = store_json_text(before, before != NULL, &st);
    char *a = store_json_text(after, after != NULL, &st);

    if (st == STORE_OK) {
        const char *params[] = {name, store_itoa(at, at_s), actor != NULL ? actor : "", action, b,
                                a};
        st = store_command(c, SQL_SEGMENT_EVENT_INSERT, 6, params, NULL);
    }
    free(b);
    free(a);
    return st;
}

/* ------------------------------------------------------------------ */
/* Reading, for a revert                                                */
/* ------------------------------------------------------------------ */

void store_event_free(struct store_event *e)
{
    free(e->name);
    free(e->action);
    json_decref(e->before);
    json_decref(e->after);
    json_decref(e->environments);
    memset(e, 0, sizeof *e);
}

/* Column col of row as JSON, NULL for SQL NULL; *bad set when it does not
 * parse. */
static json_t *event_column(const PGresult *r, int col, bool *bad)
{
    if (PQgetisnull(r, 0, col))
        return NULL;
    json_t *j = json_loads(PQgetvalue(r, 0, col), 0, NULL);
    *bad |= j == NULL;
    return j;
}

enum store_status store_event_get(PGconn *c, int64_t id, struct store_event *e, bool *found)
{
    enum store_status st = STORE_OK;
    char id_s[24];
    const char *params[] = {store_itoa(id, id_s)};
    PGresult *r = store_query(c, SQL_EVENT_GET, 1, params, &st);

    memset(e, 0, sizeof *e);
    *found = false;
    if (r == NULL)
        return st;
    if (PQntuples(r) == 1) {
        bool bad = false;
        e->name = strdup(PQgetvalue(r, 0, 0));
        e->action = strdup(PQgetvalue(r, 0, 1));
        e->before = event_column(r, 2, &bad);
        e->after = event_column(r, 3, &bad);
        e->environments = event_column(r, 4, &bad);
        if (bad || e->name == NULL || e->action == NULL || !json_is_array(e->environments)) {
            store_event_free(e);
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
    /* Each environment's state with its keys in the usual order too. */
    json_t *envs = json_object_get(raw, "environments"), *ordered = json_object();
    const char *env;
    json_t *state;
    json_object_foreach(envs, env, state)
    {
        static const char *const keys[] = {"enabled", "percentage", "users", "segments",
                                           "rolled_out_at"};
        json_t *st = json_object();
        for (size_t i = 0; st != NULL && i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(state, keys[i]);
            if (v != NULL)
                json_object_set(st, keys[i], v);
        }
        json_object_set_new(ordered, env, st);
    }
    if (envs != NULL)
        json_object_set_new(o, "environments", ordered);
    else
        json_decref(ordered);
    json_decref(raw);
    return o;
}

/* A JSON column as it is, null for SQL NULL. */
static json_t *store_event_raw(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return json_null();
    return json_loads(PQgetvalue(r, row, col), 0, NULL);
}

/* A row of SQL_HISTORY as an API event. */
static const struct store_json_field event_fields[] = {
    /* clang-format off */
    {"id",     store_int64_json},
    {"at",     store_time_json},
    {"actor",  store_text_json},
    {"action", store_text_json},
    {"environments", store_event_raw},
    {"before", store_event_flag},
    {"after",  store_event_flag},
    /* clang-format on */
};

/* A segment's before/after with its keys in the usual order (jsonb sorts
 * them), null for SQL NULL. */
static json_t *store_event_segment(const PGresult *r, int row, int col)
{
    static const char *const keys[] = {"name",       "description", "users",
                                       "created_at", "updated_at",  "revision"};
    json_t *raw = store_event_raw(r, row, col), *o;

    if (!json_is_object(raw) || (o = json_object()) == NULL)
        return raw;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(raw, keys[i]);
        if (v != NULL)
            json_object_set(o, keys[i], v);
    }
    json_decref(raw);
    return o;
}

static const struct store_json_field segment_event_fields[] = {
    /* clang-format off */
    {"id",     store_int64_json},
    {"at",     store_time_json},
    {"actor",  store_text_json},
    {"action", store_text_json},
    {"before", store_event_segment},
    {"after",  store_event_segment},
    /* clang-format on */
};

/* One page of a flag's history, newest first (store_flag_history). */
struct history_page {
    const char *name;
    int limit;
    int64_t before; /* 0: from the newest */
    const char *sql;
    const struct store_json_field *fields;
    size_t n_fields;
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
    PGresult *r = store_query(c, pg->sql, 3, params, &st);

    *out = NULL;
    if (r == NULL)
        return st;
    int rows = PQntuples(r);
    if (rows == 0 && pg->before == 0) {
        PQclear(r);
        return STORE_NOT_FOUND;
    }
    *out = store_rows_json(r, pg->limit, "events", pg->fields, pg->n_fields);
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
    const struct history_page pg = {name,         limit,
                                    before,       SQL_HISTORY,
                                    event_fields, sizeof event_fields / sizeof event_fields[0]};

    return store_read_json(c, store_history_select, &pg, out);
}

enum store_status store_segment_history(PGconn *c, const char *name, int limit, int64_t before,
                                        json_t **out)
{
    const struct history_page pg = {name,
                                    limit,
                                    before,
                                    SQL_SEGMENT_HISTORY,
                                    segment_event_fields,
                                    sizeof segment_event_fields / sizeof segment_event_fields[0]};

    return store_read_json(c, store_history_select, &pg, out);
}

enum store_status store_flags_deleted(PGconn *c, char ***names, size_t *n)
{
    return store_names_query(c, SQL_DELETED_NAMES, NULL, names, n);
}
