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

/* The names of the first column of every row; caller frees. */
static enum store_status names_query(PGconn *c, const char *sql, const char *since, char ***out,
                                     size_t *n)
{
    const char *params[] = {since};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, sql, 1, params, &st);

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
        st = names_query(c, SQL_SEGMENTS_DELETED, params[0], deleted, n_deleted);
    return st;
}

enum store_status store_segments_hold(PGconn *c, char *const *names, size_t n,
                                      const char **missing)
{
    return store_first_missing(c, SQL_SEGMENTS_HOLD, names, n, missing);
}
