/* store_usage.c -- the flag_usage table: when each flag was last evaluated
 * in each environment (store.h, usage.c).
 *
 * One statement writes a whole batch: the marks arrive as one JSON array
 * parameter, a mark without a flag name stands for every flag of its
 * environment, and the rows are upserted in key order (so two instances'
 * batches lock rows in the same order and never deadlock), keeping the later
 * time, without a lock on any flag's rows (flag_usage has no foreign key),
 * so a batch never waits for a flag write nor makes one wait.  A flag
 * deleted meanwhile may leave a row behind, which nothing reads (the read
 * joins the states).  A mark older than a flag's created_at is not that flag's: it was
 * made before the flag existed (a flag created since a GET /flags?user=,
 * or deleted and made again), so it is left out. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* clang-format off */
static const char SQL_USAGE_WRITE[] =
    "WITH m AS (SELECT e.name AS env, x.flag, x.at "
               "FROM jsonb_to_recordset($1::jsonb) AS x(env bigint, flag text, at bigint) "
               "JOIN environments e ON e.id = x.env), "
         "t AS (SELECT s.flag, s.environment, max(m.at) AS at "
               "FROM flag_states s "
               "JOIN flags f ON f.name = s.flag "
               "JOIN m ON s.environment = m.env AND (m.flag IS NULL OR s.flag = m.flag) "
               /* a mark older than the flag was made for another flag of
                * that name, or before this one existed */
               "WHERE m.at >= " US("f.created_at") " "
               "GROUP BY s.flag, s.environment) "
    "INSERT INTO flag_usage (flag, environment, last_evaluated_at) "
    "SELECT flag, environment, 'epoch'::timestamptz + at * interval '1 microsecond' "
    "FROM t ORDER BY flag, environment "
    "ON CONFLICT (flag, environment) DO UPDATE "
    "SET last_evaluated_at = GREATEST(flag_usage.last_evaluated_at, "
                                     "EXCLUDED.last_evaluated_at)";

static const char SQL_USAGE_READ[] =
    "SELECT u.environment, u.flag, " US("u.last_evaluated_at") " FROM flag_usage u "
    "JOIN flag_states s ON s.flag = u.flag AND s.environment = u.environment "
    "WHERE $1::text IS NULL "
       "OR u.environment = CASE WHEN $1 = '' "
                               "THEN (SELECT name FROM environments WHERE is_default) "
                               "ELSE $1 END "
    "ORDER BY u.flag COLLATE \"C\", u.environment COLLATE \"C\"";
/* clang-format on */

enum store_status store_usage_write(PGconn *c, const json_t *marks)
{
    char *text = json_dumps(marks, JSON_COMPACT);
    const char *params[] = {text};
    enum store_status st;

    if (text == NULL)
        return store_fail(STORE_ERROR, "out of memory");
    st = store_command(c, SQL_USAGE_WRITE, 1, params, NULL);
    free(text);
    return st;
}

enum store_status store_usage_read(PGconn *c, const char *env, char ***envs, char ***flags,
                                   int64_t **ats, size_t *n)
{
    const char *params[] = {env};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_USAGE_READ, 1, params, &st);
    size_t rows = r != NULL ? (size_t)PQntuples(r) : 0;

    *envs = *flags = NULL;
    *ats = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    *envs = calloc(rows ? rows : 1, sizeof **envs);
    *flags = calloc(rows ? rows : 1, sizeof **flags);
    *ats = calloc(rows ? rows : 1, sizeof **ats);
    for (size_t i = 0; *envs != NULL && *flags != NULL && *ats != NULL && i < rows; i++) {
        (*envs)[i] = strdup(PQgetvalue(r, (int)i, 0));
        (*flags)[i] = strdup(PQgetvalue(r, (int)i, 1));
        (*ats)[i] = store_int64(r, (int)i, 2);
        *n = i + 1;
        if ((*envs)[i] == NULL || (*flags)[i] == NULL) {
            st = STORE_ERROR;
            break;
        }
    }
    PQclear(r);
    if (st == STORE_OK && *n == rows && *envs != NULL && *flags != NULL && *ats != NULL)
        return STORE_OK;
    store_usage_free(*envs, *flags, *ats, *n);
    *envs = *flags = NULL;
    *ats = NULL;
    *n = 0;
    return store_fail(STORE_ERROR, "out of memory");
}

void store_usage_free(char **envs, char **flags, int64_t *ats, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (envs != NULL)
            free(envs[i]);
        if (flags != NULL)
            free(flags[i]);
    }
    free(envs);
    free(flags);
    free(ats);
}
