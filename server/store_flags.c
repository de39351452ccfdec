/* store_flags.c -- the flags and flag_states tables: a flag's definition
 * (one row per flag) and its state in each environment (one row per flag
 * and environment), read into and written from struct vx_flag, which holds
 * a flag as one environment sees it.
 *
 * Why.  A flag row is described once, in flag_columns[] below: each entry
 * names a column, the field of struct vx_flag it holds and its kind.  The
 * kind (flag_kinds[]) says how the column is selected, how a parameter
 * becomes its value, and how the text of either is read into or written from
 * the field.  The SELECT list, the INSERT column and value lists, the
 * UPDATE's SET list and the row reader are all derived from that one table,
 * so adding a column is one line there (plus the field and the migration),
 * and a column list can never disagree with its parameter array.
 *
 * How.  The four statements on whole rows are built from the table once, at
 * first use (pthread_once), into static buffers; flag_sql() hands them out.
 * A row is written with the parameters $1..$N in table order: the first
 * column is the key (name), which UPDATE matches and never sets.  The
 * write path that uses these statements is store_flag_writes.c. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* ------------------------------------------------------------------ */
/* The row                                                              */
/* ------------------------------------------------------------------ */

/* How a column crosses the wire.  Each kind has one C type for its field
 * (FLAG_<kind>_CTYPE), which FLAG_COLUMN checks. */
enum flag_kind {
    FLAG_TEXT,         /* NOT NULL text */
    FLAG_BOOL,         /* boolean */
    FLAG_INT,          /* integer */
    FLAG_INT64,        /* bigint */
    FLAG_TIME,         /* NOT NULL timestamptz, as µs */
    FLAG_TIME_OR_NULL, /* timestamptz, as µs, 0 = NULL */
    FLAG_USERS,        /* text[], sorted and distinct, with n_users */
    FLAG_SEGMENTS,     /* text[], sorted and distinct, with n_segments */
};
#define FLAG_TEXT_CTYPE         char *
#define FLAG_BOOL_CTYPE         bool
#define FLAG_INT_CTYPE          int
#define FLAG_INT64_CTYPE        int64_t
#define FLAG_TIME_CTYPE         int64_t
#define FLAG_TIME_OR_NULL_CTYPE int64_t
#define FLAG_USERS_CTYPE        char **
#define FLAG_SEGMENTS_CTYPE     char **

/* Which table holds a column: flags (the definition, alias f) or
 * flag_states (one environment's state, alias s). */
enum flag_table { FLAG_DEF, FLAG_STATE };

/* The column named like field of struct vx_flag, of kind kind.  Does not
 * compile unless the field has the C type of the kind. */
/* clang-format off */
#define FLAG_COLUMN(table, field, kind)                                              \
    {#field, table, kind,                                                           \
     _Generic(((struct vx_flag *)NULL)->field,                                      \
              kind##_CTYPE: offsetof(struct vx_flag, field))}
/* clang-format on */

/* A flag row, in the order of its parameters $1..$N; the first column is
 * the key.  Adding a column is one line here (and the field, and the
 * migration). */
static const struct flag_column {
    const char *column; /* as in migrations/ */
    enum flag_table table;
    enum flag_kind kind;
    size_t offset; /* of its field in struct vx_flag */
} flag_columns[] = {
    /* clang-format off */
    FLAG_COLUMN(FLAG_DEF,   name,          FLAG_TEXT),
    FLAG_COLUMN(FLAG_DEF,   description,   FLAG_TEXT),
    FLAG_COLUMN(FLAG_DEF,   owner,         FLAG_TEXT),
    FLAG_COLUMN(FLAG_STATE, enabled,       FLAG_BOOL),
    FLAG_COLUMN(FLAG_STATE, percentage,    FLAG_INT),
    FLAG_COLUMN(FLAG_STATE, users,         FLAG_USERS),
    FLAG_COLUMN(FLAG_STATE, segments,      FLAG_SEGMENTS),
    FLAG_COLUMN(FLAG_DEF,   created_at,    FLAG_TIME),
    FLAG_COLUMN(FLAG_DEF,   updated_at,    FLAG_TIME),
    FLAG_COLUMN(FLAG_STATE, rolled_out_at, FLAG_TIME_OR_NULL),
    FLAG_COLUMN(FLAG_DEF,   revision,      FLAG_INT64),
    /* clang-format on */
};
#define FLAG_N_COLUMNS (sizeof flag_columns / sizeof flag_columns[0])

/* The field at offset in f, as a type * (type const *). */
#define FLAG_AT(f, offset, type)       ((type *)(void *)((char *)(f) + (offset)))
#define FLAG_CONST_AT(f, offset, type) ((type const *)(const void *)((const char *)(f) + (offset)))

/* The parameters of one row of one table: the columns of that table in
 * flag_columns order, after `lead` leading parameters (a state row's flag
 * name and environment); flag_params_free() after use. */
#define FLAG_MAX_PARAMS (FLAG_N_COLUMNS + 2)
struct flag_params {
    char num[FLAG_MAX_PARAMS][24]; /* decimal numbers */
    char *owned[FLAG_MAX_PARAMS];  /* values made by malloc (users) */
    const char *v[FLAG_MAX_PARAMS];
    int n;
};

/* Read column col of row into the field at offset in f.  Write the field at
 * offset in f as the text of parameter slot i of p.  0, or -1 when out of
 * memory or the text makes no sense. */
typedef int flag_read_fn(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset);
typedef int flag_write_fn(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i);

static int flag_read_text(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    char **s = FLAG_AT(f, offset, char *);

    *s = strdup(PQgetvalue(r, row, col));
    return *s == NULL ? -1 : 0;
}

static int flag_read_bool(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    *FLAG_AT(f, offset, bool) = store_bool(r, row, col);
    return 0;
}

static int flag_read_int(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    *FLAG_AT(f, offset, int) = (int)store_int64(r, row, col);
    return 0;
}

/* Also FLAG_TIME and FLAG_TIME_OR_NULL: NULL reads as 0. */
static int flag_read_int64(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    *FLAG_AT(f, offset, int64_t) = store_int64(r, row, col);
    return 0;
}

/* A string list from a JSON array text into the field at offset, its count
 * into *count; sorted and made distinct again so that the invariant of
 * struct vx_flag holds even after a hand edit of the table. */
static int flag_read_list(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset,
                          size_t *count)
{
    json_t *a = json_loads(PQgetvalue(r, row, col), 0, NULL);
    size_t len = json_array_size(a);
    char **u = calloc(len > 0 ? len : 1, sizeof *u);

    if (!json_is_array(a) || u == NULL)
        goto fail;
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s == NULL || (u[i] = strdup(s)) == NULL)
            goto fail;
    }
    json_decref(a);
    *FLAG_AT(f, offset, char **) = u;
    *count = flag_users_normalize(u, len, NULL);
    return 0;

fail:
    for (size_t i = 0; i < len && u != NULL; i++)
        free(u[i]);
    free(u);
    json_decref(a);
    return -1;
}

static int flag_read_users(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    return flag_read_list(r, row, col, f, offset, &f->n_users);
}

static int flag_read_segments(const PGresult *r, int row, int col, struct vx_flag *f, size_t offset)
{
    return flag_read_list(r, row, col, f, offset, &f->n_segments);
}

static int flag_write_text(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i)
{
    p->v[i] = *FLAG_CONST_AT(f, offset, char *);
    return 0;
}

static int flag_write_bool(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i)
{
    p->v[i] = *FLAG_CONST_AT(f, offset, bool) ? "t" : "f";
    return 0;
}

static int flag_write_int(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i)
{
    p->v[i] = store_itoa(*FLAG_CONST_AT(f, offset, int), p->num[i]);
    return 0;
}

/* Also FLAG_TIME. */
static int flag_write_int64(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i)
{
    p->v[i] = store_itoa(*FLAG_CONST_AT(f, offset, int64_t), p->num[i]);
    return 0;
}

static int flag_write_time_or_null(const struct vx_flag *f, size_t offset, struct flag_params *p,
                                   size_t i)
{
    int64_t t = *FLAG_CONST_AT(f, offset, int64_t);

    p->v[i] = t != 0 ? store_itoa(t, p->num[i]) : NULL;
    return 0;
}

/* A string list as a JSON array, for TEXT_ARRAY(). */
static int flag_write_list(const struct vx_flag *f, size_t offset, size_t count,
                           struct flag_params *p, size_t i)
{
    char *const *users = *FLAG_CONST_AT(f, offset, char **);
    json_t *a = json_array();
    int rc = a == NULL;

    for (size_t k = 0; k < count && rc == 0; k++)
        rc = json_array_append_new(a, json_string(users[k]));
    if (rc == 0)
        p->owned[i] = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    p->v[i] = p->owned[i];
    return p->owned[i] == NULL ? -1 : 0;
}

static int flag_write_users(const struct vx_flag *f, size_t offset, struct flag_params *p, size_t i)
{
    return flag_write_list(f, offset, f->n_users, p, i);
}

static int flag_write_segments(const struct vx_flag *f, size_t offset, struct flag_params *p,
                               size_t i)
{
    return flag_write_list(f, offset, f->n_segments, p, i);
}

/* Per kind: the SELECT expression of column %s, the value of parameter $%d,
 * and how to read and write the field. */
static const struct flag_kind_spec {
    const char *select;
    const char *param;
    flag_read_fn *read;
    flag_write_fn *write;
} flag_kinds[] = {
    /* clang-format off */
    [FLAG_TEXT]         = {"%s",      "$%d",  flag_read_text,  flag_write_text},
    [FLAG_BOOL]         = {"%s",      "$%d",  flag_read_bool,  flag_write_bool},
    [FLAG_INT]          = {"%s",      "$%d",  flag_read_int,   flag_write_int},
    [FLAG_INT64]        = {"%s",      "$%d",  flag_read_int64, flag_write_int64},
    [FLAG_TIME]         = {US("%s"),  TS(%d), flag_read_int64, flag_write_int64},
    [FLAG_TIME_OR_NULL] = {US("%s"),  TS(%d), flag_read_int64, flag_write_time_or_null},
    [FLAG_USERS]        = {"array_to_json(%s)::text", TEXT_ARRAY(%d),
                           flag_read_users, flag_write_users},
    [FLAG_SEGMENTS]     = {"array_to_json(%s)::text", TEXT_ARRAY(%d),
                           flag_read_segments, flag_write_segments},
    /* clang-format on */
};

static void flag_params_free(struct flag_params *p)
{
    for (size_t i = 0; i < FLAG_MAX_PARAMS; i++) {
        free(p->owned[i]);
        p->owned[i] = NULL;
    }
}

/* Fill p from the columns of table in f, after the leading parameters
 * lead[0..n_lead); flag_params_free() afterwards, also on failure. */
static enum store_status flag_params_init(struct flag_params *p, const struct vx_flag *f,
                                          enum flag_table table, const char *const *lead,
                                          int n_lead)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n_lead; i++)
        p->v[p->n++] = lead[i];
    for (size_t i = 0; i < FLAG_N_COLUMNS; i++) {
        const struct flag_column *col = &flag_columns[i];
        if (col->table != table)
            continue;
        if (flag_kinds[col->kind].write(f, col->offset, p, (size_t)p->n) != 0)
            return store_fail(STORE_ERROR, "cannot encode the %s of flag %s", col->column, f->name);
        p->n++;
    }
    return STORE_OK;
}

/* Row `row` of a result of flag_sql()'s SELECT list into f (caller
 * flag_free()s). */
static enum store_status flag_from_row(const PGresult *r, int row, struct vx_flag *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < FLAG_N_COLUMNS; i++) {
        const struct flag_column *col = &flag_columns[i];
        if (flag_kinds[col->kind].read(r, row, (int)i, f, col->offset) != 0) {
            flag_free(f);
            return store_fail(STORE_ERROR, "cannot read flag %s", PQgetvalue(r, row, 0));
        }
    }
    return STORE_OK;
}

/* All rows of such a result, with the environment of each (the column
 * after the flag's) into envs[] when envs is not NULL; caller frees each
 * with flag_free (and free) and the arrays with free. */
static enum store_status flags_from_result(const PGresult *r, struct vx_flag **flags, char ***envs,
                                           size_t *n)
{
    size_t rows = (size_t)PQntuples(r);
    struct vx_flag *a = calloc(rows > 0 ? rows : 1, sizeof *a);
    char **e = envs != NULL ? calloc(rows > 0 ? rows : 1, sizeof *e) : NULL;

    *flags = NULL;
    *n = 0;
    if (a == NULL || (envs != NULL && e == NULL)) {
        free(a);
        free(e);
        return store_fail(STORE_ERROR, "out of memory reading flags");
    }
    for (size_t i = 0; i < rows; i++) {
        enum store_status st = flag_from_row(r, (int)i, &a[i]);
        if (st == STORE_OK && e != NULL &&
            (e[i] = strdup(PQgetvalue(r, (int)i, (int)FLAG_N_COLUMNS))) == NULL) {
            flag_free(&a[i]);
            st = store_fail(STORE_ERROR, "out of memory reading flags");
        }
        if (st != STORE_OK) {
            while (i > 0) {
                flag_free(&a[--i]);
                if (e != NULL)
                    free(e[i]);
            }
            free(a);
            free(e);
            return STORE_ERROR;
        }
    }
    *flags = a;
    if (envs != NULL)
        *envs = e;
    *n = rows;
    return STORE_OK;
}

void flag_envs_free(struct flag_envs *fe)
{
    for (size_t i = 0; i < fe->n; i++) {
        flag_free(&fe->flags[i]);
        free(fe->envs[i]);
    }
    free(fe->flags);
    free(fe->envs);
    memset(fe, 0, sizeof *fe);
}

/* ------------------------------------------------------------------ */
/* Statements                                                           */
/* ------------------------------------------------------------------ */

/* The shapes of the statements on whole rows; flag_sql_build() fills in
 * the lists derived from flag_columns.  A flag is read as one row per
 * environment: the definition joined with that environment's state, the
 * environment's name last. */
/* clang-format off */
#define FLAG_FROM \
    "FROM flags f " \
    "JOIN flag_states s ON s.flag = f.name " \
    "JOIN environments e ON e.name = s.environment "

static const char SQL_FLAG_LOCK[] =
    "SELECT %s, s.environment "
    FLAG_FROM
    "WHERE f.name = $1 "
    "ORDER BY e.id "
    "FOR UPDATE OF f, s";

static const char SQL_FLAGS_ALL[] =
    "SELECT %s, s.environment "
    FLAG_FROM
    "ORDER BY f.name COLLATE \"C\", e.id";

/* The flags the change log names after $1.  The names come as one array
 * (an init plan), so each is an index lookup: an IN (subquery) lets the
 * planner merge-join along the whole index, which walks every flag to reach
 * one late in name order. */
static const char SQL_FLAGS_CHANGED[] =
    "SELECT %s, s.environment "
    FLAG_FROM
    "WHERE f.name = ANY (ARRAY(SELECT name FROM flag_changes "
                              "WHERE version > $1 AND kind = 'flag')) "
    "ORDER BY f.name COLLATE \"C\", e.id";

static const char SQL_FLAG_INSERT[] =
    "INSERT INTO flags (%s) "
    "VALUES (%s) "
    "ON CONFLICT (name) DO NOTHING";

static const char SQL_FLAG_UPDATE[] =
    "UPDATE flags "
    "SET %s "
    "WHERE %s";

static const char SQL_STATE_UPSERT[] =
    "INSERT INTO flag_states (flag, environment, %s) "
    "VALUES ($1, $2, %s) "
    "ON CONFLICT (flag, environment) DO UPDATE "
    "SET %s";

static const char SQL_FLAG_DELETE[] =
    "DELETE FROM flags "
    "WHERE name = $1";
/* clang-format on */

#define FLAG_SQL_MAX 2048

/* The statements built from the shapes above. */
static struct flag_sql {
    char lock[FLAG_SQL_MAX];
    char all[FLAG_SQL_MAX];
    char changed[FLAG_SQL_MAX];
    char insert[FLAG_SQL_MAX];
    char update[FLAG_SQL_MAX];
    char state[FLAG_SQL_MAX];
} flag_sql_built;
static bool flag_sql_ok;
static pthread_once_t flag_sql_once = PTHREAD_ONCE_INIT;

/* Append fmt to the string in buf; false if it does not fit. */
__attribute__((format(printf, 3, 4))) static bool flag_sql_append(char *buf, size_t size,
                                                                  const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < size - len;
}

/* Format the pieces of column i: its SELECT expression (qualified with its
 * table's alias) into select, its parameter $param into param. */
static void flag_sql_column(size_t i, int param_no, char select[128], char param[256])
{
    const struct flag_kind_spec *k = &flag_kinds[flag_columns[i].kind];
    char qualified[64];

    snprintf(qualified, sizeof qualified, "%s.%s", flag_columns[i].table == FLAG_DEF ? "f" : "s",
             flag_columns[i].column);
    snprintf(select, 128, k->select, qualified);
    snprintf(param, 256, k->param, param_no);
}

static void flag_sql_build(void)
{
    struct flag_sql *q = &flag_sql_built;
    char select[FLAG_SQL_MAX] = "", columns[FLAG_SQL_MAX] = "", values[FLAG_SQL_MAX] = "";
    char set[FLAG_SQL_MAX] = "", key[256] = "";
    char s_columns[FLAG_SQL_MAX] = "", s_values[FLAG_SQL_MAX] = "", s_set[FLAG_SQL_MAX] = "";
    char expr[128], param[256];
    bool ok = true;
    int n_def = 0, n_state = 0;

    for (size_t i = 0; i < FLAG_N_COLUMNS; i++) {
        const char *col = flag_columns[i].column;
        flag_sql_column(i, 0, expr, param);
        ok &= flag_sql_append(select, sizeof select, "%s%s", i > 0 ? ", " : "", expr);
        if (flag_columns[i].table == FLAG_STATE) {
            const char *sep = n_state > 0 ? ", " : "";
            flag_sql_column(i, n_state + 3, expr, param);
            ok &= flag_sql_append(s_columns, sizeof s_columns, "%s%s", sep, col);
            ok &= flag_sql_append(s_values, sizeof s_values, "%s%s", sep, param);
            ok &= flag_sql_append(s_set, sizeof s_set, "%s%s = EXCLUDED.%s", sep, col, col);
            n_state++;
            continue;
        }
        const char *sep = n_def > 0 ? ", " : "";
        flag_sql_column(i, n_def + 1, expr, param);
        ok &= flag_sql_append(columns, sizeof columns, "%s%s", sep, col);
        ok &= flag_sql_append(values, sizeof values, "%s%s", sep, param);
        if (n_def == 0)
            ok &= flag_sql_append(key, sizeof key, "%s = %s", col, param);
        else
            ok &= flag_sql_append(set, sizeof set, "%s%s = %s", n_def > 1 ? ", " : "", col, param);
        n_def++;
    }
    ok &= flag_sql_append(q->lock, sizeof q->lock, SQL_FLAG_LOCK, select);
    ok &= flag_sql_append(q->all, sizeof q->all, SQL_FLAGS_ALL, select);
    ok &= flag_sql_append(q->changed, sizeof q->changed, SQL_FLAGS_CHANGED, select);
    ok &= flag_sql_append(q->insert, sizeof q->insert, SQL_FLAG_INSERT, columns, values);
    ok &= flag_sql_append(q->update, sizeof q->update, SQL_FLAG_UPDATE, set, key);
    ok &= flag_sql_append(q->state, sizeof q->state, SQL_STATE_UPSERT, s_columns, s_values, s_set);
    flag_sql_ok = ok;
}

/* The statements on whole rows, or NULL (the failure remembered) if they
 * did not fit their buffers. */
static const struct flag_sql *flag_sql(void)
{
    pthread_once(&flag_sql_once, flag_sql_build);
    if (!flag_sql_ok) {
        store_fail(STORE_ERROR, "the flag statements exceed %d bytes", FLAG_SQL_MAX);
        return NULL;
    }
    return &flag_sql_built;
}

/* Run one of the SELECTs of whole rows and read every row. */
static enum store_status flags_query(PGconn *c, const char *sql, int n_params,
                                     const char *const *params, struct vx_flag **flags,
                                     char ***envs, size_t *n)
{
    enum store_status st = STORE_ERROR;
    PGresult *r = sql != NULL ? store_query(c, sql, n_params, params, &st) : NULL;

    *flags = NULL;
    *envs = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    st = flags_from_result(r, flags, envs, n);
    PQclear(r);
    return st;
}

enum store_status store_flag_lock(PGconn *c, const char *name, struct flag_envs *fe, bool *found)
{
    const struct flag_sql *q = flag_sql();
    const char *params[] = {name};
    enum store_status st =
        flags_query(c, q != NULL ? q->lock : NULL, 1, params, &fe->flags, &fe->envs, &fe->n);

    *found = st == STORE_OK && fe->n > 0;
    return st;
}

/* Run sql with the parameters of table's columns of f after lead; *rows
 * receives how many rows it touched. */
static enum store_status flag_row_command(PGconn *c, const char *sql, const struct vx_flag *f,
                                          enum flag_table table, const char *const *lead,
                                          int n_lead, long *rows)
{
    struct flag_params p;
    enum store_status st = flag_params_init(&p, f, table, lead, n_lead);

    *rows = 0;
    if (st == STORE_OK)
        st = store_command(c, sql, p.n, p.v, rows);
    flag_params_free(&p);
    return st;
}

enum store_status store_flag_insert(PGconn *c, const struct vx_flag *f, bool *inserted)
{
    const struct flag_sql *q = flag_sql();
    long rows = 0;
    enum store_status st =
        q != NULL ? flag_row_command(c, q->insert, f, FLAG_DEF, NULL, 0, &rows) : STORE_ERROR;

    *inserted = rows == 1;
    return st;
}

enum store_status store_flag_write(PGconn *c, const struct vx_flag *f)
{
    const struct flag_sql *q = flag_sql();
    long rows = 0;
    enum store_status st =
        q != NULL ? flag_row_command(c, q->update, f, FLAG_DEF, NULL, 0, &rows) : STORE_ERROR;

    if (st == STORE_OK && rows != 1)
        st = store_fail(STORE_ERROR, "flag %s vanished while locked", f->name);
    return st;
}

enum store_status store_flag_state_write(PGconn *c, const char *env, const struct vx_flag *f)
{
    const struct flag_sql *q = flag_sql();
    const char *lead[] = {f->name, env};
    long rows = 0;

    return q != NULL ? flag_row_command(c, q->state, f, FLAG_STATE, lead, 2, &rows) : STORE_ERROR;
}

enum store_status store_flag_remove(PGconn *c, const char *name)
{
    const char *params[] = {name};
    enum store_status st = store_command(c, SQL_FLAG_DELETE, 1, params, NULL);

    /* Its last evaluations (no foreign key: migrations/0005). */
    return st == STORE_OK
               ? store_command(c, "DELETE FROM flag_usage WHERE flag = $1", 1, params, NULL)
               : st;
}

enum store_status store_flags_select(PGconn *c, struct vx_flag **flags, char ***envs, size_t *n)
{
    const struct flag_sql *q = flag_sql();

    return flags_query(c, q != NULL ? q->all : NULL, 0, NULL, flags, envs, n);
}

enum store_status store_flags_changed(PGconn *c, int64_t since, struct vx_flag **flags,
                                      char ***envs, size_t *n)
{
    const struct flag_sql *q = flag_sql();
    char v[24];
    const char *params[] = {store_itoa(since, v)};

    return flags_query(c, q != NULL ? q->changed : NULL, 1, params, flags, envs, n);
}
