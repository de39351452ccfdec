/* store_version.c -- the global version (table vexil_state), the change
 * log (table flag_changes) and the NOTIFYs that announce changes.
 *
 * Why.  Every write that changes the flag set increments the one version
 * number and sends NOTIFY vexil, '<version>' in the same transaction, so a
 * listener never sees a version without its change; token writes send
 * NOTIFY vexil, 'tokens' (listen.c receives both).  The single vexil_state row
 * also orders concurrent writers: each holds its lock until COMMIT.
 *
 * The bump also logs which flag the new version changed, one row per
 * version in flag_changes, so that a listener can read only what changed
 * since the version it serves (store_snapshot.c).  Because the vexil_state
 * row lock is held from the bump to COMMIT, writers commit in version
 * order: whoever sees version V also sees every change up to V, and none
 * can commit a lower version later.
 *
 * How.  The bump is one statement (UPDATE ... RETURNING inside a WITH, the
 * log row, the pruning of old log rows, then pg_notify), and PostgreSQL
 * delivers a NOTIFY only at COMMIT, never for a transaction that rolled
 * back. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* The log keeps the last 10 000 versions: a listener further behind loads
 * in full. */
/* clang-format off */
/* $1 channel, $2 kind, $3 name, $4 every environment?, $5 the
 * environments (a JSON array).  The environments' row locks are taken in
 * name order, after the vexil_state row's, so writers cannot deadlock. */
static const char SQL_VERSION_BUMP[] =
    "WITH v AS (UPDATE vexil_state "
               "SET version = version + 1 "
               "RETURNING version), "
         "e AS (UPDATE environments "
               "SET version = version + 1 "
               "WHERE (SELECT version FROM v) > 0 "
                 "AND ($4::boolean OR name = ANY (" TEXT_ARRAY(5) ")) "
               "RETURNING name, version), "
         "logged AS (INSERT INTO flag_changes (version, kind, name) "
                    "SELECT version, $2, $3 FROM v), "
         "pruned AS (DELETE FROM flag_changes "
                    "WHERE version <= (SELECT version FROM v) - 10000) "
    "SELECT version, "
           "pg_notify($1, version::text || coalesce((SELECT string_agg(' ' || name || ':' || "
                                                                     "version, '' ORDER BY name) "
                                                    "FROM e), '')) "
    "FROM v";

static const char SQL_SEQUENCE_LOCK[] =
    "SELECT version FROM vexil_state FOR UPDATE";

static const char SQL_CHANGES_COUNT[] =
    "SELECT count(*), coalesce(bool_or(kind = 'environment'), false) "
    "FROM flag_changes "
    "WHERE version > $1";

static const char SQL_CHANGES_DELETED[] =
    "SELECT DISTINCT c.name COLLATE \"C\" "
    "FROM flag_changes c "
    "WHERE c.version > $1 AND c.kind = 'flag' "
      "AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.name = c.name) "
    "ORDER BY 1";

static const char SQL_VERSION[] =
    "SELECT version "
    "FROM vexil_state";

static const char SQL_NOTIFY_TOKENS[] =
    "SELECT pg_notify($1, 'tokens')";
/* clang-format on */

char *const STORE_NO_ENVS[1];

static const char *const change_kinds[] = {
    [STORE_CHANGE_FLAG] = "flag",
    [STORE_CHANGE_SEGMENT] = "segment",
    [STORE_CHANGE_ENVIRONMENT] = "environment",
};

enum store_status store_sequence_lock(PGconn *c)
{
    return store_command(c, SQL_SEQUENCE_LOCK, 0, NULL, NULL);
}

enum store_status store_version_bump(PGconn *c, enum store_change kind, const char *name,
                                     char *const *envs, size_t n, int64_t *version)
{
    json_t *a = json_array();
    char *list = NULL;
    enum store_status st;

    for (size_t i = 0; a != NULL && envs != NULL && i < n; i++)
        json_array_append_new(a, json_string(envs[i]));
    list = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (list == NULL)
        return store_fail(STORE_ERROR, "out of memory");
    const char *params[] = {STORE_CHANNEL, change_kinds[kind], name, envs == NULL ? "t" : "f",
                            list};
    st = store_query_int64(c, SQL_VERSION_BUMP, 5, params, version);
    free(list);
    return st;
}

enum store_status store_changes_count(PGconn *c, int64_t since, int64_t *n, bool *environments)
{
    char v[24];
    const char *params[] = {store_itoa(since, v)};
    enum store_status st;
    PGresult *r = store_query_row(c, SQL_CHANGES_COUNT, 1, params, &st);

    *n = 0;
    *environments = false;
    if (r == NULL)
        return st;
    *n = store_int64(r, 0, 0);
    *environments = store_bool(r, 0, 1);
    PQclear(r);
    return STORE_OK;
}

enum store_status store_names_query(PGconn *c, const char *sql, const char *since, char ***out,
                                    size_t *n)
{
    const char *params[] = {since};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, sql, since != NULL ? 1 : 0, params, &st);

    *out = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    size_t rows = (size_t)PQntuples(r);
    char **a = calloc(rows > 0 ? rows : 1, sizeof *a);
    for (size_t i = 0; a != NULL && i < rows; i++)
        if ((a[i] = strdup(PQgetvalue(r, (int)i, 0))) == NULL) {
            while (i > 0)
                free(a[--i]);
            free(a);
            a = NULL;
        }
    PQclear(r);
    if (a == NULL)
        return store_fail(STORE_ERROR, "out of memory");
    *out = a;
    *n = rows;
    return STORE_OK;
}

enum store_status store_changes_deleted(PGconn *c, int64_t since, char ***names, size_t *n)
{
    char v[24];

    return store_names_query(c, SQL_CHANGES_DELETED, store_itoa(since, v), names, n);
}

enum store_status store_version_select(PGconn *c, int64_t *version)
{
    return store_query_int64(c, SQL_VERSION, 0, NULL, version);
}

enum store_status store_notify_tokens(PGconn *c)
{
    const char *params[] = {STORE_CHANNEL};

    return store_command(c, SQL_NOTIFY_TOKENS, 1, params, NULL);
}
