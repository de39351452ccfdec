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
