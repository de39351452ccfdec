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
static const char SQL_VERSION_BUMP[] =
    "WITH v AS (UPDATE vexil_state "
               "SET version = version + 1 "
               "RETURNING version), "
         "logged AS (INSERT INTO flag_changes (version, name) "
                    "SELECT version, $2 FROM v), "
         "pruned AS (DELETE FROM flag_changes "
                    "WHERE version <= (SELECT version FROM v) - 10000) "
    "SELECT version, pg_notify($1, version::text) "
    "FROM v";

static const char SQL_CHANGES_COUNT[] =
    "SELECT count(*) "
    "FROM flag_changes "
    "WHERE version > $1";

static const char SQL_CHANGES_DELETED[] =
    "SELECT DISTINCT c.name COLLATE \"C\" "
    "FROM flag_changes c "
    "WHERE c.version > $1 "
      "AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.name = c.name) "
    "ORDER BY 1";

static const char SQL_VERSION[] =
    "SELECT version "
    "FROM vexil_state";

static const char SQL_NOTIFY_TOKENS[] =
    "SELECT pg_notify($1, 'tokens')";
/* clang-format on */

enum store_status store_version_bump(PGconn *c, const char *name, int64_t *version)
{
    const char *params[] = {STORE_CHANNEL, name};

    return store_query_int64(c, SQL_VERSION_BUMP, 2, params, version);
}

enum store_status store_changes_count(PGconn *c, int64_t since, int64_t *n)
{
    char v[24];
    const char *params[] = {store_itoa(since, v)};

    return store_query_int64(c, SQL_CHANGES_COUNT, 1, params, n);
}

enum store_status store_changes_deleted(PGconn *c, int64_t since, char ***names, size_t *n)
{
    char v[24];
    const char *params[] = {store_itoa(since, v)};
    enum store_status st;
    PGresult *r = store_query(c, SQL_CHANGES_DELETED, 1, params, &st);

    *names = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    size_t rows = (size_t)PQntuples(r);
    char **a = calloc(rows > 0 ? rows : 1, sizeof *a);
    for (size_t i = 0; a != NULL && i < rows; i++) {
        a[i] = strdup(PQgetvalue(r, (int)i, 0));
        if (a[i] == NULL) {
            while (i > 0)
                free(a[--i]);
            free(a);
            a = NULL;
        }
    }
    PQclear(r);
    if (a == NULL)
        return store_fail(STORE_ERROR, "out of memory reading deleted flags");
    *names = a;
    *n = rows;
    return STORE_OK;
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
