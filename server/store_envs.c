/* store_envs.c -- the environments table (docs/api.md §6).
 *
 * Why.  Each environment has a name, a description, its own version and
 * whether it is the default; the snapshot holds them all (snapshot.h), and
 * flag writes check the environments a body names against this table,
 * inside their transaction, so that a write never half-succeeds on an
 * environment deleted meanwhile. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "timeutil.h"

/* clang-format off */
static const char SQL_ENVS[] =
    "SELECT id, name, description, is_default, version, " US("created_at") " "
    "FROM environments "
    "ORDER BY id";

static const char SQL_DEFAULT_ENV[] =
    "SELECT name "
    "FROM environments "
    "WHERE is_default";

/* The first of the names ($1, a JSON array) that no environment has. */
static const char SQL_ENVS_MISSING[] =
    "SELECT n "
    "FROM unnest(" TEXT_ARRAY(1) ") AS n "
    "WHERE NOT EXISTS (SELECT 1 FROM environments e WHERE e.name = n) "
    "LIMIT 1";
/* clang-format on */

enum store_status store_envs_select(PGconn *c, struct vx_env **envs, size_t *n)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_ENVS, 0, NULL, &st);

    *envs = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    size_t rows = (size_t)PQntuples(r);
    struct vx_env *e = calloc(rows > 0 ? rows : 1, sizeof *e);
    for (size_t i = 0; e != NULL && i < rows; i++) {
        int row = (int)i;
        e[i].id = store_int64(r, row, 0);
        e[i].name = strdup(PQgetvalue(r, row, 1));
        e[i].description = strdup(PQgetvalue(r, row, 2));
        e[i].is_default = store_bool(r, row, 3);
        e[i].version = store_int64(r, row, 4);
        e[i].created_at = store_int64(r, row, 5);
        if (e[i].name == NULL || e[i].description == NULL) {
            for (size_t k = 0; k <= i; k++)
                env_free(&e[k]);
            free(e);
            e = NULL;
        }
    }
    PQclear(r);
    if (e == NULL)
        return store_fail(STORE_ERROR, "out of memory reading environments");
    *envs = e;
    *n = rows;
    return STORE_OK;
}

enum store_status store_default_env(PGconn *c, char buf[ENV_NAME_MAX + 1])
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query_row(c, SQL_DEFAULT_ENV, 0, NULL, &st);

    buf[0] = '\0';
    if (r == NULL)
        return st;
    snprintf(buf, ENV_NAME_MAX + 1, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return STORE_OK;
}

/* names[0..n) as a JSON array text; caller frees. */
char *store_names_json(char *const *names, size_t n)
{
    json_t *a = json_array();
    char *s;

    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    s = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* The first of names that the query sql ($1 the names) returns, as a
 * pointer into names; NULL when none. */
enum store_status store_first_missing(PGconn *c, const char *sql, char *const *names, size_t n,
                                      const char **missing)
{
    char *list = store_names_json(names, n);
    enum store_status st = STORE_OK;

    *missing = NULL;
    if (list == NULL)
        return store_fail(STORE_ERROR, "out of memory");
    const char *params[] = {list};
    PGresult *r = store_query(c, sql, 1, params, &st);
    free(list);
    if (r == NULL)
        return st;
    for (size_t i = 0; PQntuples(r) > 0 && i < n; i++)
        if (strcmp(names[i], PQgetvalue(r, 0, 0)) == 0)
            *missing = names[i];
    PQclear(r);
    return STORE_OK;
}

enum store_status store_envs_exist(PGconn *c, char *const *names, size_t n, const char **missing)
{
    return store_first_missing(c, SQL_ENVS_MISSING, names, n, missing);
}

/* ---- writes ----------------------------------------------------------------- */

/* clang-format off */
static const char SQL_ENV_INSERT[] =
    "INSERT INTO environments (name, description, version) "
    "VALUES ($1, $2, 1) "
    "ON CONFLICT (name) DO NOTHING";

static const char SQL_ENV_STATES[] =
    "INSERT INTO flag_states (flag, environment) "
    "SELECT name, $1 FROM flags";

static const char SQL_ENV_LOCK[] =
    "SELECT is_default FROM environments WHERE name = $1 FOR UPDATE";

static const char SQL_ENV_DESCRIBE[] =
    "UPDATE environments SET description = $2 WHERE name = $1";

/* Two statements: the unique index on the default is checked row by row,
 * so the old default is unmade before the new one is made. */
static const char SQL_ENV_UNDEFAULT[] =
    "UPDATE environments SET is_default = false WHERE is_default AND name <> $1";

static const char SQL_ENV_DEFAULT[] =
    "UPDATE environments SET is_default = true WHERE name = $1";

static const char SQL_ENV_REVOKE_TOKENS[] =
    "UPDATE tokens SET revoked_at = now() "
    "WHERE environment = $1 AND revoked_at IS NULL";

static const char SQL_ENV_DELETE[] =
    "DELETE FROM environments WHERE name = $1";

static const char SQL_ENV_JSON[] =
    "SELECT name, description, is_default, version, " US("created_at") " "
    "FROM environments WHERE name = $1";
/* clang-format on */

static const struct store_json_field env_fields[] = {
    {"name", store_text_json},     {"description", store_text_json}, {"default", store_bool_json},
    {"version", store_int64_json}, {"created_at", store_time_json},
};

/* One environment write (store.h). */
struct env_write {
    const char *name;
    const char *description; /* NULL: unchanged */
    bool make_default;
    const char *actor;
    enum { ENV_CREATE, ENV_UPDATE, ENV_DELETE } what;
    json_t *out;
    int64_t version;
};

/* The object of environment name, as the API shows it, into *out
 * (replacing what it held). */
static enum store_status env_json(PGconn *c, const char *name, json_t **out)
{
    const char *params[] = {name};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_ENV_JSON, 1, params, &st);

    if (r == NULL)
        return st;
    json_t *list = store_rows_json(r, 1, "e", env_fields, sizeof env_fields / sizeof env_fields[0]);
    PQclear(r);
    json_decref(*out);
    *out = json_incref(json_array_get(json_object_get(list, "e"), 0));
    json_decref(list);
    return *out != NULL ? STORE_OK : store_fail(STORE_ERROR, "out of memory");
}

/* The webhook event of the write (docs/api.md §9). */
static enum store_status env_event(PGconn *c, const struct env_write *w, const json_t *before)
{
    static const char *const events[] = {"environment.created", "environment.updated",
                                         "environment.deleted"};
    json_t *envs = json_pack("[s]", w->name);
    enum store_status st =
        envs != NULL
            ? store_outbox_insert(c, events[w->what], "environment", w->name, time_now_us(),
                                  w->actor, envs, before, w->what == ENV_DELETE ? NULL : w->out)
            : store_fail(STORE_ERROR, "out of memory");

    json_decref(envs);
    return st;
}

static enum store_status env_write_cb(PGconn *c, void *cls)
{
    struct env_write *w = cls;
    const char *p1[] = {w->name};
    const char *p2[] = {w->name, w->description != NULL ? w->description : ""};
    long rows = 0;
    /* The sequence row is locked (env_write), so a flag created meanwhile
     * gets its state here too. */
    enum store_status st = STORE_OK;
    json_t *before = NULL;

    if (w->what == ENV_CREATE) {
        st = store_command(c, SQL_ENV_INSERT, 2, p2, &rows);
        if (st == STORE_OK && rows == 0)
            return STORE_CONFLICT;
        if (st == STORE_OK)
            st = store_command(c, SQL_ENV_STATES, 1, p1, NULL);
    } else {
        PGresult *r = store_query(c, SQL_ENV_LOCK, 1, p1, &st);
        if (r == NULL)
            return st;
        bool found = PQntuples(r) == 1, is_default = found && store_bool(r, 0, 0);
        PQclear(r);
        if (!found)
            return STORE_NOT_FOUND;
        if (w->what == ENV_DELETE && is_default)
            return STORE_CONFLICT;
        st = env_json(c, w->name, &before);
        if (st == STORE_OK && w->what == ENV_DELETE) {
            st = store_command(c, SQL_ENV_REVOKE_TOKENS, 1, p1, NULL);
            if (st == STORE_OK)
                st = store_command(c, SQL_ENV_DELETE, 1, p1, NULL);
            if (st == STORE_OK) /* no foreign key: migrations/0005 */
                st = store_command(c, "DELETE FROM flag_usage WHERE environment = $1", 1, p1, NULL);
            if (st == STORE_OK)
                st = store_notify_tokens(c);
        } else if (st == STORE_OK) {
            if (w->description != NULL)
                st = store_command(c, SQL_ENV_DESCRIBE, 2, p2, NULL);
            if (st == STORE_OK && w->make_default)
                st = store_command(c, SQL_ENV_UNDEFAULT, 1, p1, NULL);
            if (st == STORE_OK && w->make_default)
                st = store_command(c, SQL_ENV_DEFAULT, 1, p1, NULL);
        }
    }
    /* No environment's answers change: only the sequence moves, and the
     * listeners load in full (kind 'environment'). */
    if (st == STORE_OK)
        st =
            store_version_bump(c, STORE_CHANGE_ENVIRONMENT, w->name, STORE_NO_ENVS, 0, &w->version);
    if (st == STORE_OK && w->what != ENV_DELETE)
        st = env_json(c, w->name, &w->out);
    if (st == STORE_OK)
        st = env_event(c, w, before);
    json_decref(before);
    return st;
}

static enum store_status env_write(PGconn *c, struct env_write *w, json_t **out, int64_t *version)
{
    enum store_status st = store_write_transaction(c, env_write_cb, w);

    if (st != STORE_OK) {
        json_decref(w->out);
        w->out = NULL;
    }
    if (out != NULL)
        *out = w->out;
    else
        json_decref(w->out);
    *version = st == STORE_OK ? w->version : 0;
    return st;
}

enum store_status store_env_create(PGconn *c, const char *name, const char *description,
                                   const char *actor, json_t **out, int64_t *version)
{
    struct env_write w = {
        .name = name, .description = description, .actor = actor, .what = ENV_CREATE};

    return env_write(c, &w, out, version);
}

enum store_status store_env_update(PGconn *c, const char *name, const char *description,
                                   bool make_default, const char *actor, json_t **out,
                                   int64_t *version)
{
    struct env_write w = {.name = name,
                          .description = description,
                          .make_default = make_default,
                          .actor = actor,
                          .what = ENV_UPDATE};

    return env_write(c, &w, out, version);
}

enum store_status store_env_delete(PGconn *c, const char *name, const char *actor, int64_t *version)
{
    struct env_write w = {.name = name, .actor = actor, .what = ENV_DELETE};

    return env_write(c, &w, NULL, version);
}
