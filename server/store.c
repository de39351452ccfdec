/* store.c -- every query vexil sends to PostgreSQL.
 *
 * Shape.  Each statement is a static string next to the small function that
 * runs it and reads its result; the public functions in store.h combine
 * them inside store_run_transaction().  Every value travels as a parameter
 * (PQexecParams, text format); no SQL is ever built from data.
 *
 * Writes.  A flag write locks the flag's row (SELECT ... FOR UPDATE),
 * computes the new state in C with the pure functions of flag.h (so the
 * rules live in one place and are unit-tested), writes the row, appends an
 * event with whole before/after flag objects, then increments the global
 * version and sends NOTIFY vexil, '<version>' -- all in one transaction, so
 * listeners never see a version without its change and a failure leaves no
 * trace.  The single vexil_state row also orders concurrent writers.
 * Writes run at READ COMMITTED: the row locks make them correct, and
 * deadlocks (40P01) or serialization failures (40001) are retried.
 *
 * Timestamps cross the wire as integer microseconds since the epoch, in
 * both directions, so nothing is rounded through floating point text:
 *   read:  (extract(epoch from ts) * 1000000)::bigint     (numeric, exact)
 *   write: 'epoch'::timestamptz + $n::bigint * interval '1 microsecond'
 * users (text[]) crosses as a JSON array: array_to_json(users) on the way
 * out, jsonb_array_elements_text($n::jsonb) on the way in, which avoids
 * hand-written array-literal quoting.
 *
 * Failures.  A lost or refused connection is STORE_UNAVAILABLE; the HTTP
 * layer answers 503 and the snapshot keeps serving reads.  A connection
 * that looks fine but whose server went away (a restart) fails on its
 * first statement: the transaction runner then reconnects once and starts
 * over, since nothing was done yet (only on the thread connections of
 * store_thread_conn(): other connections belong to callers who may hold
 * session state, such as the listener's LISTEN).  To keep a dead database from costing
 * every request a connect timeout, a thread that failed to connect does
 * not try again for STORE_RECONNECT_BACKOFF_US.  The last failure of each
 * thread is kept for store_last_error().
 *
 * Connections.  HTTP worker threads each own one connection, kept in a
 * pthread key whose destructor closes it when the thread ends. */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

#include "encode.h"
#include "sha256.h"
#include "timeutil.h"

#define STORE_MAX_RETRIES          5
#define STORE_RECONNECT_BACKOFF_US (1 * VX_USEC_PER_SEC)
#define STORE_SECRET_BYTES         32

/* SQL fragments for timestamps as µs (see the top of the file). */
#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"
#define TS(n)   "('epoch'::timestamptz + $" #n "::bigint * interval '1 microsecond')"
/* A text[] from a JSON array parameter, keeping its order. */
#define TEXT_ARRAY(n)                                                                              \
    "ARRAY(SELECT u FROM jsonb_array_elements_text($" #n "::jsonb) WITH ORDINALITY AS t(u, i) "    \
    "ORDER BY i)"

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* The last failure of this thread: SQLSTATE ("" if none), a message, and
 * whether the failing code asked for the transaction to start over
 * (store_retry). */
static _Thread_local char store_sqlstate[6];
static _Thread_local char store_errmsg[512];
static _Thread_local bool store_retry_wanted;

/* Copy msg into buf on one line (libpq messages span several). */
static void store_oneline(char *buf, size_t size, const char *msg)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = msg; *p != '\0' && n + 1 < size; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < size)
            buf[n++] = ' ';
        space = false;
        buf[n++] = *p;
    }
    buf[n] = '\0';
}

static void store_error_clear(void)
{
    store_sqlstate[0] = '\0';
    store_errmsg[0] = '\0';
    store_retry_wanted = false;
}

/* Remember a failure that is not the server's (out of memory, bad data).
 * Returns status so that callers can `return store_fail(...)`. */
__attribute__((format(printf, 2, 3))) static enum store_status store_fail(enum store_status status,
                                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(store_errmsg, sizeof store_errmsg, fmt, ap);
    va_end(ap);
    store_sqlstate[0] = '\0';
    store_retry_wanted = false;
    return status;
}

/* Ask for the current transaction to be rolled back and run again from
 * the start, with message fmt for when the attempts run out.  Returns
 * STORE_ERROR, which the transaction runner then treats like a
 * serialization failure. */
__attribute__((format(printf, 1, 2))) static enum store_status store_retry(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(store_errmsg, sizeof store_errmsg, fmt, ap);
    va_end(ap);
    store_sqlstate[0] = '\0';
    store_retry_wanted = true;
    return STORE_ERROR;
}

/* Remember the failure of r (NULL: of the connection) and classify it. */
static enum store_status store_failed(PGconn *c, const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorMessage(r) : "";

    if (msg[0] == '\0')
        msg = PQerrorMessage(c);
    store_oneline(store_errmsg, sizeof store_errmsg, msg);
    snprintf(store_sqlstate, sizeof store_sqlstate, "%s", state != NULL ? state : "");
    store_retry_wanted = false;

    if (PQstatus(c) != CONNECTION_OK)
        return STORE_UNAVAILABLE;
    if (state == NULL)
        return STORE_ERROR;
    /* 08: connection exception; 57P0x: server shutting down or starting;
     * 53: too many connections, disk full, out of memory; 25006: we were
     * failed over to a read-only standby. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0 || strcmp(state, "25006") == 0)
        return STORE_UNAVAILABLE;
    if (strcmp(state, "23505") == 0)
        return STORE_CONFLICT;
    return STORE_ERROR;
}

/* Was the last failure one that a new attempt of the transaction may fix:
 * a serialization failure, a deadlock, or a store_retry()? */
static bool store_retryable(void)
{
    return store_retry_wanted || strcmp(store_sqlstate, "40001") == 0 ||
           strcmp(store_sqlstate, "40P01") == 0;
}

const char *store_last_error(PGconn *c)
{
    if (store_errmsg[0] != '\0')
        return store_errmsg;
    return c != NULL ? PQerrorMessage(c) : "no database connection";
}

/* ------------------------------------------------------------------ */
/* Running statements                                                   */
/* ------------------------------------------------------------------ */

/* Run sql with n text parameters (a NULL entry is SQL NULL).  Returns the
 * result, which the caller PQclear()s, or NULL with *st set and the
 * failure remembered. */
static PGresult *store_query(PGconn *c, const char *sql, int n, const char *const *params,
                             enum store_status *st)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);

    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    *st = store_failed(c, r);
    PQclear(r);
    return NULL;
}

/* Run a statement whose rows are not wanted; *rows (if not NULL) receives
 * how many rows it touched. */
static enum store_status store_command(PGconn *c, const char *sql, int n, const char *const *params,
                                       long *rows)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, sql, n, params, &st);

    if (r == NULL)
        return st;
    if (rows != NULL)
        *rows = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return STORE_OK;
}

/* Run a statement that returns exactly one row. The result is the caller's. */
static PGresult *store_query_row(PGconn *c, const char *sql, int n, const char *const *params,
                                 enum store_status *st)
{
    PGresult *r = store_query(c, sql, n, params, st);

    if (r != NULL && PQntuples(r) != 1) {
        *st = store_fail(STORE_ERROR, "expected one row, got %d", PQntuples(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

static int64_t store_int64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Run a statement that returns one row and read its first column as an
 * integer (NULL reads as 0). */
static enum store_status store_query_int64(PGconn *c, const char *sql, int n,
                                           const char *const *params, int64_t *out)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query_row(c, sql, n, params, &st);

    if (r == NULL)
        return st;
    *out = store_int64(r, 0, 0);
    PQclear(r);
    return STORE_OK;
}

static bool store_bool(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */
/* ------------------------------------------------------------------ */

static char *store_conninfo;
static pthread_key_t store_key;
static pthread_once_t store_key_once = PTHREAD_ONCE_INIT;
/* This thread's last failed connection attempt: no new one before this
 * (monotonic µs). */
static _Thread_local int64_t store_reconnect_after;

void store_configure(const char *conninfo)
{
    free(store_conninfo);
    store_conninfo = conninfo != NULL && conninfo[0] != '\0' ? strdup(conninfo) : NULL;
}

/* Server messages below WARNING (NOTICE, INFO...) are of no interest to an
 * operator; libpq would print them on stderr. */
static void store_notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    char line[512];

    if (sev != NULL && strcmp(sev, "WARNING") != 0)
        return;
    store_oneline(line, sizeof line, PQresultErrorMessage(r));
    fprintf(stderr, "vexil: database: %s\n", line);
}

PGconn *store_connect(struct vx_error *err)
{
    /* Our defaults come first: values in the user's conninfo (expanded in
     * place of dbname) override them. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {"3", "vexil", store_conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    char msg[256];

    if (c == NULL) {
        vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        store_oneline(msg, sizeof msg, PQerrorMessage(c));
        vx_fail(err, VX_E_UNAVAILABLE, "cannot connect to the database: %s", msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeReceiver(c, store_notice, NULL);
    return c;
}

static void store_key_destroy(void *c)
{
    PQfinish(c);
}

static void store_key_create(void)
{
    pthread_key_create(&store_key, store_key_destroy);
}

/* Bumped by store_database_back(): a thread's back-off ends early when the
 * database has been seen again since its last failure. */
static atomic_uint store_back_epoch;
static _Thread_local unsigned store_failed_epoch;

void store_database_back(void)
{
    atomic_fetch_add(&store_back_epoch, 1);
}

/* May this thread try to connect again now? */
static bool store_may_reconnect(void)
{
    return time_monotonic_us() >= store_reconnect_after ||
           atomic_load(&store_back_epoch) != store_failed_epoch;
}

static void store_reconnect_failed(void)
{
    store_reconnect_after = time_monotonic_us() + STORE_RECONNECT_BACKOFF_US;
    store_failed_epoch = atomic_load(&store_back_epoch);
}

PGconn *store_thread_conn(void)
{
    struct vx_error err;
    PGconn *c;

    pthread_once(&store_key_once, store_key_create);
    c = pthread_getspecific(store_key);
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    if (!store_may_reconnect())
        return NULL;
    if (c != NULL) {
        PQfinish(c);
        pthread_setspecific(store_key, NULL);
    }
    c = store_connect(&err);
    if (c == NULL) {
        store_fail(STORE_UNAVAILABLE, "%s", err.message);
        store_reconnect_failed();
        return NULL;
    }
    pthread_setspecific(store_key, c);
    return c;
}

/* Reconnect c in place (one attempt, subject to the backoff) -- only if it
 * is this thread's own connection from store_thread_conn(): any other (the
 * listener's) may carry session state such as LISTEN, which a reset would
 * silently drop, so its owner must see the failure and reconnect itself. */
static bool store_reset(PGconn *c)
{
    pthread_once(&store_key_once, store_key_create);
    if (c != pthread_getspecific(store_key) || !store_may_reconnect())
        return false;
    PQreset(c);
    if (PQstatus(c) == CONNECTION_OK)
        return true;
    store_failed(c, NULL);
    store_reconnect_failed();
    return false;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static void store_rollback(PGconn *c)
{
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
}

static enum store_status store_commit(PGconn *c)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, "COMMIT", 0, NULL, &st);

    if (r == NULL)
        return st;
    /* COMMIT of a failed transaction "succeeds" as ROLLBACK. */
    if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        st = store_fail(STORE_ERROR, "the transaction was rolled back");
    PQclear(r);
    return st;
}

/* Brief pause before retrying: 10, 20, 40... ms, so that two transactions
 * that deadlocked do not collide again at once. */
static void store_backoff(int attempt)
{
    struct timespec ts = {0, (10L << attempt) * 1000L * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* store_run_transaction() with the BEGIN statement of the caller's choice. */
static enum store_status store_transaction(PGconn *c, const char *begin,
                                           enum store_status (*cb)(PGconn *c, void *cls), void *cls)
{
    bool reconnected = false;
    enum store_status st = STORE_ERROR;

    if (c == NULL)
        return STORE_UNAVAILABLE;
    if (PQstatus(c) != CONNECTION_OK) {
        if (!store_reset(c))
            return STORE_UNAVAILABLE;
        reconnected = true;
    }
    /* A caller that left a transaction open (it should not) gets a clean
     * start rather than a nested BEGIN warning and odd results. */
    store_rollback(c);

    for (int attempt = 0; attempt <= STORE_MAX_RETRIES; attempt++) {
        store_error_clear();
        st = store_command(c, begin, 0, NULL, NULL);
        if (st == STORE_UNAVAILABLE && !reconnected) {
            /* The server went away since our last use: nothing was done
             * yet, so reconnect once and start over. */
            reconnected = true;
            if (!store_reset(c))
                return STORE_UNAVAILABLE;
            attempt--;
            continue;
        }
        if (st != STORE_OK)
            return st;
        reconnected = true; /* from here on a lost connection is final */
        st = cb(c, cls);
        if (st == STORE_OK)
            st = store_commit(c);
        if (st == STORE_OK)
            return STORE_OK;
        store_rollback(c);
        if (st != STORE_ERROR || !store_retryable())
            return st;
        if (attempt < STORE_MAX_RETRIES)
            store_backoff(attempt);
    }
    return st;
}

enum store_status store_run_transaction(PGconn *c, enum store_status (*cb)(PGconn *c, void *cls),
                                        void *cls)
{
    return store_transaction(c, "BEGIN", cb, cls);
}

#define BEGIN_READ_ONLY "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/* Fill buf with the decimal form of v; returns buf. */
static const char *store_itoa(int64_t v, char buf[24])
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

/* Does s look like a canonical uuid?  (Anything else cannot be a token id,
 * and would make the ::uuid cast fail.) */
static bool store_uuid_valid(const char *s)
{
    uuid_t u;
    return s != NULL && strlen(s) == TOKEN_ID_LEN && uuid_parse(s, u) == 0;
}

/* ------------------------------------------------------------------ */
/* Flags: rows <-> struct vx_flag                                       */
/* ------------------------------------------------------------------ */

/* The columns every flag query selects, in this order (flag_from_row). */
#define FLAG_COLUMNS                                                                               \
    "name, description, owner, enabled, percentage, array_to_json(users)::text, " US(              \
        "created_at") ", " US("updated_at") ", " US("rolled_out_at") ", revision"

/* users from a JSON array text; sorted and made distinct again so that the
 * invariant of struct vx_flag holds even after a hand edit of the table. */
static int store_users_from_json(const char *text, char ***users, size_t *n)
{
    json_t *a = json_loads(text, 0, NULL);
    size_t len = json_array_size(a);
    char **u = calloc(len > 0 ? len : 1, sizeof *u);

    *users = NULL;
    *n = 0;
    if (!json_is_array(a) || u == NULL)
        goto fail;
    for (size_t i = 0; i < len; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s == NULL || (u[i] = strdup(s)) == NULL)
            goto fail;
    }
    json_decref(a);
    *users = u;
    *n = flag_users_normalize(u, len, NULL);
    return 0;

fail:
    for (size_t i = 0; i < len && u != NULL; i++)
        free(u[i]);
    free(u);
    json_decref(a);
    return -1;
}

/* Row `row` of a FLAG_COLUMNS result into f (caller flag_free()s). */
static enum store_status store_flag_from_row(const PGresult *r, int row, struct vx_flag *f)
{
    memset(f, 0, sizeof *f);
    f->name = strdup(PQgetvalue(r, row, 0));
    f->description = strdup(PQgetvalue(r, row, 1));
    f->owner = strdup(PQgetvalue(r, row, 2));
    f->enabled = store_bool(r, row, 3);
    f->percentage = (int)store_int64(r, row, 4);
    f->created_at = store_int64(r, row, 6);
    f->updated_at = store_int64(r, row, 7);
    f->rolled_out_at = store_int64(r, row, 8);
    f->revision = store_int64(r, row, 9);
    if (f->name == NULL || f->description == NULL || f->owner == NULL ||
        store_users_from_json(PQgetvalue(r, row, 5), &f->users, &f->n_users) != 0) {
        flag_free(f);
        return store_fail(STORE_ERROR, "cannot read flag %s", PQgetvalue(r, row, 0));
    }
    return STORE_OK;
}

/* All rows of a FLAG_COLUMNS result; caller frees each with flag_free and
 * the array with free. */
static enum store_status store_flags_from_result(const PGresult *r, struct vx_flag **flags,
                                                 size_t *n)
{
    size_t rows = (size_t)PQntuples(r);
    struct vx_flag *a = calloc(rows > 0 ? rows : 1, sizeof *a);

    *flags = NULL;
    *n = 0;
    if (a == NULL)
        return store_fail(STORE_ERROR, "out of memory reading flags");
    for (size_t i = 0; i < rows; i++) {
        if (store_flag_from_row(r, (int)i, &a[i]) != STORE_OK) {
            while (i > 0)
                flag_free(&a[--i]);
            free(a);
            return STORE_ERROR;
        }
    }
    *flags = a;
    *n = rows;
    return STORE_OK;
}

/* The parameters $1..$10 of a flag row, in FLAG_COLUMNS order. */
struct flag_params {
    char percentage[24], created_at[24], updated_at[24], rolled_out_at[24], revision[24];
    char *users; /* JSON array, from json_dumps */
    const char *v[10];
};

/* Fill p from f; flag_params_free() afterwards, also on failure. */
static enum store_status flag_params_init(struct flag_params *p, const struct vx_flag *f)
{
    json_t *users = json_array();
    int rc = users == NULL;

    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < f->n_users && rc == 0; i++)
        rc = json_array_append_new(users, json_string(f->users[i]));
    if (rc == 0)
        p->users = json_dumps(users, JSON_COMPACT);
    json_decref(users);
    if (p->users == NULL)
        return store_fail(STORE_ERROR, "cannot encode the users of flag %s", f->name);
    p->v[0] = f->name;
    p->v[1] = f->description;
    p->v[2] = f->owner;
    p->v[3] = f->enabled ? "t" : "f";
    p->v[4] = store_itoa(f->percentage, p->percentage);
    p->v[5] = p->users;
    p->v[6] = store_itoa(f->created_at, p->created_at);
    p->v[7] = store_itoa(f->updated_at, p->updated_at);
    p->v[8] = f->rolled_out_at != 0 ? store_itoa(f->rolled_out_at, p->rolled_out_at) : NULL;
    p->v[9] = store_itoa(f->revision, p->revision);
    return STORE_OK;
}

static void flag_params_free(struct flag_params *p)
{
    free(p->users);
    p->users = NULL;
}

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

/* ------------------------------------------------------------------ */
/* Flags: statements                                                    */
/* ------------------------------------------------------------------ */

static const char SQL_FLAG_LOCK[] = "SELECT " FLAG_COLUMNS " FROM flags WHERE name = $1 FOR UPDATE";

/* Lock the row of flag name; *found tells whether it exists, then *f holds
 * it (caller flag_free()s). */
static enum store_status store_flag_lock(PGconn *c, const char *name, struct vx_flag *f,
                                         bool *found)
{
    enum store_status st = STORE_OK;
    const char *params[] = {name};
    PGresult *r = store_query(c, SQL_FLAG_LOCK, 1, params, &st);

    *found = false;
    memset(f, 0, sizeof *f);
    if (r == NULL)
        return st;
    if (PQntuples(r) == 1) {
        st = store_flag_from_row(r, 0, f);
        *found = st == STORE_OK;
    }
    PQclear(r);
    return st;
}

static const char SQL_FLAG_INSERT[] =
    "INSERT INTO flags (name, description, owner, enabled, percentage, users, created_at, "
    "updated_at, rolled_out_at, revision) "
    "VALUES ($1, $2, $3, $4, $5, " TEXT_ARRAY(6) ", " TS(7) ", " TS(8) ", " TS(
        9) ", $10) "
           "ON CONFLICT (name) DO NOTHING";

/* Insert f; *inserted is false when the name is taken. */
static enum store_status store_flag_insert(PGconn *c, const struct vx_flag *f, bool *inserted)
{
    struct flag_params p;
    long rows = 0;
    enum store_status st = flag_params_init(&p, f);

    if (st == STORE_OK)
        st = store_command(c, SQL_FLAG_INSERT, 10, p.v, &rows);
    flag_params_free(&p);
    *inserted = rows == 1;
    return st;
}

static const char SQL_FLAG_UPDATE[] =
    "UPDATE flags SET description = $2, owner = $3, enabled = $4, percentage = $5, "
    "users = " TEXT_ARRAY(6) ", created_at = " TS(7) ", updated_at = " TS(
        8) ", "
           "rolled_out_at = " TS(9) ", revision = $10 WHERE name = $1";

/* Overwrite the row of f->name with f (the row must exist and be locked). */
static enum store_status store_flag_write(PGconn *c, const struct vx_flag *f)
{
    struct flag_params p;
    long rows = 0;
    enum store_status st = flag_params_init(&p, f);

    if (st == STORE_OK)
        st = store_command(c, SQL_FLAG_UPDATE, 10, p.v, &rows);
    flag_params_free(&p);
    if (st == STORE_OK && rows != 1)
        st = store_fail(STORE_ERROR, "flag %s vanished while locked", f->name);
    return st;
}

static const char SQL_FLAG_DELETE[] = "DELETE FROM flags WHERE name = $1";

static enum store_status store_flag_remove(PGconn *c, const char *name)
{
    const char *params[] = {name};
    return store_command(c, SQL_FLAG_DELETE, 1, params, NULL);
}

static const char SQL_FLAGS_ALL[] =
    "SELECT " FLAG_COLUMNS " FROM flags ORDER BY name COLLATE \"C\"";

/* Every flag, sorted by name in strcmp order; caller frees (see store.h). */
static enum store_status store_flags_select(PGconn *c, struct vx_flag **flags, size_t *n)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_FLAGS_ALL, 0, NULL, &st);

    *flags = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    st = store_flags_from_result(r, flags, n);
    PQclear(r);
    return st;
}

/* ------------------------------------------------------------------ */
/* Events, version, notifications                                       */
/* ------------------------------------------------------------------ */

static const char SQL_EVENT_INSERT[] =
    "INSERT INTO flag_events (flag_name, at, actor, action, before, after) "
    "VALUES ($1, " TS(2) ", $3, $4, $5::jsonb, $6::jsonb)";

/* Record action on flag name; before/after NULL where the flag did not
 * exist. */
static enum store_status store_event_insert(PGconn *c, const char *name, int64_t at,
                                            const char *actor, const char *action,
                                            const struct vx_flag *before,
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

static const char SQL_EVENT_GET[] = "SELECT flag_name, action, before::text "
                                    "FROM flag_events WHERE id = $1";

/* The flag name of event id and its `before` object (NULL when null); both
 * the caller's to free (free, json_decref).  *found false if no such event. */
static enum store_status store_event_get(PGconn *c, int64_t id, char **name, json_t **before,
                                         bool *found)
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

static const char SQL_MAX_REVISION[] =
    "SELECT coalesce(max(greatest((before->>'revision')::bigint, "
    "(after->>'revision')::bigint)), 0) FROM flag_events WHERE flag_name = $1";

/* The highest revision flag name ever had, by its history. */
static enum store_status store_max_revision(PGconn *c, const char *name, int64_t *rev)
{
    const char *params[] = {name};

    *rev = 0;
    return store_query_int64(c, SQL_MAX_REVISION, 1, params, rev);
}

static const char SQL_HISTORY[] =
    "SELECT id, " US("at") ", actor, action, before::text, "
                           "after::text FROM flag_events WHERE flag_name = $1 "
                           "ORDER BY id DESC";

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

/* Wrap list as {"key": list}; takes list.  New reference; NULL on OOM. */
static json_t *store_wrap(const char *key, json_t *list)
{
    json_t *o = json_object();

    if (o == NULL || json_object_set_new(o, key, list) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One history row as an API event. New reference; NULL on OOM. */
static json_t *store_event_json(const PGresult *r, int row)
{
    json_t *e = json_object();
    char at[32];
    int rc = e == NULL;

    if (rc == 0) {
        rc |= json_object_set_new(e, "id", json_integer(store_int64(r, row, 0)));
        rc |= json_object_set_new(
            e, "at", json_string(time_format_rfc3339(store_int64(r, row, 1), at, sizeof at)));
        rc |= json_object_set_new(e, "actor", json_string(PQgetvalue(r, row, 2)));
        rc |= json_object_set_new(e, "action", json_string(PQgetvalue(r, row, 3)));
        rc |= json_object_set_new(e, "before", store_event_flag(r, row, 4));
        rc |= json_object_set_new(e, "after", store_event_flag(r, row, 5));
    }
    if (rc != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* History rows as {"events":[...]}; new reference in *out. */
static enum store_status store_history_select(PGconn *c, const char *name, json_t **out)
{
    enum store_status st = STORE_OK;
    const char *params[] = {name};
    PGresult *r = store_query(c, SQL_HISTORY, 1, params, &st);
    json_t *events = json_array();
    int rows, rc = events == NULL;

    *out = NULL;
    if (r == NULL) {
        json_decref(events);
        return st;
    }
    rows = PQntuples(r);
    for (int i = 0; i < rows && rc == 0; i++)
        rc = json_array_append_new(events, store_event_json(r, i));
    PQclear(r);
    if (rc != 0) {
        json_decref(events);
        return store_fail(STORE_ERROR, "out of memory building the history of %s", name);
    }
    if (rows == 0) {
        json_decref(events);
        return STORE_NOT_FOUND;
    }
    *out = store_wrap("events", events);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory building the history of %s", name);
    return STORE_OK;
}

/* One statement: bump the version, and NOTIFY it (delivered at COMMIT). */
static const char SQL_VERSION_BUMP[] =
    "WITH v AS (UPDATE vexil_state SET version = version + 1 RETURNING version) "
    "SELECT version, pg_notify($1, version::text) FROM v";

static enum store_status store_version_bump(PGconn *c, int64_t *version)
{
    const char *params[] = {STORE_CHANNEL};

    return store_query_int64(c, SQL_VERSION_BUMP, 1, params, version);
}

static const char SQL_VERSION[] = "SELECT version FROM vexil_state";

static enum store_status store_version_select(PGconn *c, int64_t *version)
{
    return store_query_int64(c, SQL_VERSION, 0, NULL, version);
}

static const char SQL_NOTIFY_TOKENS[] = "SELECT pg_notify($1, 'tokens')";

static enum store_status store_notify_tokens(PGconn *c)
{
    const char *params[] = {STORE_CHANNEL};
    return store_command(c, SQL_NOTIFY_TOKENS, 1, params, NULL);
}

/* ------------------------------------------------------------------ */
/* Flag writes                                                          */
/* ------------------------------------------------------------------ */

/* The state of one flag write, shared by create/update/delete/revert. */
struct flag_write {
    /* in */
    const char *name;
    const struct vx_flag_patch *patch;
    int64_t if_match;
    int64_t event_id;
    const char *actor;
    int64_t now;
    /* out, rebuilt by every attempt of the transaction */
    struct vx_flag flag;
    bool have_flag;
    int64_t version;
};

/* Forget the outcome of a previous attempt. */
static void flag_write_reset(struct flag_write *w)
{
    if (w->have_flag)
        flag_free(&w->flag);
    w->have_flag = false;
    w->version = 0;
}

/* Hand the written flag to the caller's out (or drop it). */
static void flag_write_finish(struct flag_write *w, enum store_status st, struct vx_flag *out,
                              int64_t *version)
{
    if (st == STORE_OK && out != NULL && w->have_flag)
        *out = w->flag;
    else if (w->have_flag)
        flag_free(&w->flag);
    w->have_flag = false;
    if (version != NULL)
        *version = st == STORE_OK ? w->version : 0;
}

/* The If-Match rule of store.h. */
static bool store_if_match(int64_t if_match, const struct vx_flag *f)
{
    return if_match <= 0 || f->revision == if_match;
}

static enum store_status flag_create_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag f;
    bool inserted = false;
    enum store_status st;

    flag_write_reset(w);
    if (flag_from_patch(w->patch, w->now, &f) != 0)
        return store_fail(STORE_ERROR, "cannot build the new flag");
    st = store_flag_insert(c, &f, &inserted);
    if (st == STORE_OK && !inserted)
        st = STORE_CONFLICT;
    if (st == STORE_OK)
        st = store_event_insert(c, f.name, w->now, w->actor, "create", NULL, &f);
    if (st == STORE_OK)
        st = store_version_bump(c, &w->version);
    if (st != STORE_OK) {
        flag_free(&f);
        return st;
    }
    w->flag = f;
    w->have_flag = true;
    return STORE_OK;
}

enum store_status store_flag_create(PGconn *c, const struct vx_flag_patch *p, const char *actor,
                                    int64_t now, struct vx_flag *out, int64_t *version)
{
    struct flag_write w = {.patch = p, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_create_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

static enum store_status flag_update_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur, next;
    bool found;
    int changed;
    enum store_status st;

    flag_write_reset(w);
    st = store_flag_lock(c, w->name, &cur, &found);
    if (st != STORE_OK)
        return st;
    if (!found)
        return STORE_NOT_FOUND;
    if (!store_if_match(w->if_match, &cur)) {
        flag_free(&cur);
        return STORE_PRECONDITION;
    }
    if (flag_copy(&cur, &next) != 0) {
        flag_free(&cur);
        return store_fail(STORE_ERROR, "out of memory");
    }
    changed = flag_apply_patch(&next, w->patch, w->now);
    if (changed <= 0) {
        /* Nothing to write (or out of memory): answer the current flag. */
        flag_free(&next);
        if (changed < 0) {
            flag_free(&cur);
            return store_fail(STORE_ERROR, "out of memory");
        }
        w->flag = cur;
        w->have_flag = true;
        return STORE_OK;
    }
    st = store_flag_write(c, &next);
    if (st == STORE_OK)
        st = store_event_insert(c, w->name, w->now, w->actor, "update", &cur, &next);
    if (st == STORE_OK)
        st = store_version_bump(c, &w->version);
    flag_free(&cur);
    if (st != STORE_OK) {
        flag_free(&next);
        return st;
    }
    w->flag = next;
    w->have_flag = true;
    return STORE_OK;
}

enum store_status store_flag_update(PGconn *c, const char *name, const struct vx_flag_patch *p,
                                    int64_t if_match, const char *actor, int64_t now,
                                    struct vx_flag *out, int64_t *version)
{
    struct flag_write w = {
        .name = name, .patch = p, .if_match = if_match, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_update_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

static enum store_status flag_delete_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur;
    bool found;
    enum store_status st;

    flag_write_reset(w);
    st = store_flag_lock(c, w->name, &cur, &found);
    if (st != STORE_OK)
        return st;
    if (!found)
        return STORE_NOT_FOUND;
    if (!store_if_match(w->if_match, &cur))
        st = STORE_PRECONDITION;
    if (st == STORE_OK)
        st = store_flag_remove(c, w->name);
    if (st == STORE_OK)
        st = store_event_insert(c, w->name, w->now, w->actor, "delete", &cur, NULL);
    if (st == STORE_OK)
        st = store_version_bump(c, &w->version);
    flag_free(&cur);
    return st;
}

enum store_status store_flag_delete(PGconn *c, const char *name, int64_t if_match,
                                    const char *actor, int64_t now, int64_t *version)
{
    struct flag_write w = {.name = name, .if_match = if_match, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_delete_cb, &w);

    flag_write_finish(&w, st, NULL, version);
    return st;
}

/* The flag restored from event w->event_id, against the current row cur
 * (NULL if the flag does not exist now): see store.h and docs/decisions.md. */
static enum store_status flag_revert_state(PGconn *c, struct flag_write *w,
                                           const struct vx_flag *cur, struct vx_flag *restored)
{
    char *ev_name = NULL;
    json_t *before = NULL;
    bool found;
    int64_t max_rev = 0;
    struct vx_error err;
    enum store_status st = store_event_get(c, w->event_id, &ev_name, &before, &found);

    memset(restored, 0, sizeof *restored);
    if (st == STORE_OK && (!found || strcmp(ev_name, w->name) != 0))
        st = STORE_NOT_FOUND;
    else if (st == STORE_OK && before == NULL)
        st = STORE_CONFLICT;
    else if (st == STORE_OK && flag_from_json(before, restored, &err) != 0)
        st = store_fail(STORE_ERROR, "event %lld: %s", (long long)w->event_id, err.message);
    else if (st == STORE_OK && strcmp(restored->name, w->name) != 0) {
        flag_free(restored);
        st = store_fail(STORE_ERROR, "event %lld holds another flag", (long long)w->event_id);
    }
    free(ev_name);
    json_decref(before);
    if (st != STORE_OK)
        return st;

    /* created_at comes from the restored state; the revision continues
     * from the highest the name ever had, so that no revision number is
     * ever reused for different content. */
    st = store_max_revision(c, w->name, &max_rev);
    if (st != STORE_OK) {
        flag_free(restored);
        return st;
    }
    if (cur != NULL && cur->revision > max_rev)
        max_rev = cur->revision;
    restored->revision = max_rev + 1;
    restored->updated_at = w->now;
    flag_update_rolled_out(cur, restored, w->now);
    return STORE_OK;
}

static enum store_status flag_revert_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur, restored;
    bool found, inserted = true;
    enum store_status st;

    flag_write_reset(w);
    st = store_flag_lock(c, w->name, &cur, &found);
    if (st != STORE_OK)
        return st;
    st = flag_revert_state(c, w, found ? &cur : NULL, &restored);
    if (st != STORE_OK) {
        flag_free(&cur);
        return st;
    }
    if (found)
        st = store_flag_write(c, &restored);
    else
        st = store_flag_insert(c, &restored, &inserted);
    if (st == STORE_OK && !inserted) {
        /* Created by someone else since we looked: start over, and the
         * next attempt restores over it. */
        st = store_retry("flag %s was created concurrently", w->name);
    }
    if (st == STORE_OK)
        st = store_event_insert(c, w->name, w->now, w->actor, "revert", found ? &cur : NULL,
                                &restored);
    if (st == STORE_OK)
        st = store_version_bump(c, &w->version);
    flag_free(&cur);
    if (st != STORE_OK) {
        flag_free(&restored);
        return st;
    }
    w->flag = restored;
    w->have_flag = true;
    return STORE_OK;
}

enum store_status store_flag_revert(PGconn *c, const char *name, int64_t event_id,
                                    const char *actor, int64_t now, struct vx_flag *out,
                                    int64_t *version)
{
    struct flag_write w = {.name = name, .event_id = event_id, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_revert_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

/* ------------------------------------------------------------------ */
/* Flag reads                                                           */
/* ------------------------------------------------------------------ */

struct flag_history {
    const char *name;
    json_t *out;
};

static enum store_status flag_history_cb(PGconn *c, void *cls)
{
    struct flag_history *h = cls;

    json_decref(h->out);
    h->out = NULL;
    return store_history_select(c, h->name, &h->out);
}

enum store_status store_flag_history(PGconn *c, const char *name, json_t **out)
{
    struct flag_history h = {.name = name};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, flag_history_cb, &h);

    if (st != STORE_OK) {
        json_decref(h.out);
        h.out = NULL;
    }
    *out = h.out;
    return st;
}

struct flags_all {
    struct vx_flag *flags;
    size_t n;
};

static void flags_all_free(struct flags_all *a)
{
    for (size_t i = 0; i < a->n; i++)
        flag_free(&a->flags[i]);
    free(a->flags);
    a->flags = NULL;
    a->n = 0;
}

static enum store_status flags_all_cb(PGconn *c, void *cls)
{
    struct flags_all *a = cls;

    flags_all_free(a);
    return store_flags_select(c, &a->flags, &a->n);
}

enum store_status store_flags_all(PGconn *c, struct vx_flag **flags, size_t *n)
{
    struct flags_all a = {0};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, flags_all_cb, &a);

    if (st != STORE_OK)
        flags_all_free(&a);
    *flags = a.flags;
    *n = a.n;
    return st;
}

static enum store_status version_cb(PGconn *c, void *cls)
{
    return store_version_select(c, cls);
}

enum store_status store_version(PGconn *c, int64_t *version)
{
    *version = 0;
    return store_transaction(c, BEGIN_READ_ONLY, version_cb, version);
}

/* ------------------------------------------------------------------ */
/* Tokens                                                               */
/* ------------------------------------------------------------------ */

static const char *store_role_name(enum vx_role role)
{
    return role == VX_ROLE_ADMIN ? "admin" : "client";
}

static const char SQL_TOKENS_LIVE[] =
    "SELECT id::text, name, role, encode(secret_hash, 'hex'), " US(
        "last_used_at") " FROM tokens WHERE revoked_at IS NULL";

/* Live tokens for a snapshot; caller frees each name and the array. */
static enum store_status store_tokens_select(PGconn *c, struct vx_token **tokens, size_t *n)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_TOKENS_LIVE, 0, NULL, &st);
    size_t rows;
    struct vx_token *t;

    *tokens = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    rows = (size_t)PQntuples(r);
    t = calloc(rows > 0 ? rows : 1, sizeof *t);
    if (t == NULL) {
        PQclear(r);
        return store_fail(STORE_ERROR, "out of memory reading tokens");
    }
    for (size_t i = 0; i < rows; i++) {
        int row = (int)i;
        int64_t used = store_int64(r, row, 4);
        snprintf(t[i].id, sizeof t[i].id, "%s", PQgetvalue(r, row, 0));
        t[i].name = strdup(PQgetvalue(r, row, 1));
        t[i].role = strcmp(PQgetvalue(r, row, 2), "admin") == 0 ? VX_ROLE_ADMIN : VX_ROLE_CLIENT;
        atomic_init(&t[i].last_used, used);
        t[i].flushed = used;
        if (t[i].name == NULL || encode_unhex(PQgetvalue(r, row, 3), t[i].hash, SHA256_LEN) != 0) {
            for (size_t j = 0; j <= i; j++)
                free(t[j].name);
            free(t);
            PQclear(r);
            return store_fail(STORE_ERROR, "cannot read token %s", PQgetvalue(r, row, 0));
        }
    }
    PQclear(r);
    *tokens = t;
    *n = rows;
    return STORE_OK;
}

static const char SQL_TOKENS_LIST[] = "SELECT id::text, name, role, " US("created_at") ", " US(
    "last_used_at") " FROM tokens "
                    "WHERE revoked_at IS NULL ORDER BY created_at, id";

/* A time column as RFC 3339 text, or null. New reference; NULL on OOM. */
static json_t *store_time_json(const PGresult *r, int row, int col)
{
    char buf[32];

    if (PQgetisnull(r, row, col))
        return json_null();
    return json_string(time_format_rfc3339(store_int64(r, row, col), buf, sizeof buf));
}

/* One token row as the API shows it (never the secret). */
static json_t *store_token_json(const PGresult *r, int row)
{
    json_t *t = json_object();
    int rc = t == NULL;

    if (rc == 0) {
        rc |= json_object_set_new(t, "id", json_string(PQgetvalue(r, row, 0)));
        rc |= json_object_set_new(t, "name", json_string(PQgetvalue(r, row, 1)));
        rc |= json_object_set_new(t, "role", json_string(PQgetvalue(r, row, 2)));
        rc |= json_object_set_new(t, "created_at", store_time_json(r, row, 3));
        rc |= json_object_set_new(t, "last_used_at", store_time_json(r, row, 4));
    }
    if (rc != 0) {
        json_decref(t);
        return NULL;
    }
    return t;
}

/* {"tokens":[...]} for the API; new reference in *out. */
static enum store_status store_tokens_list_select(PGconn *c, json_t **out)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_TOKENS_LIST, 0, NULL, &st);
    json_t *list = json_array();
    int rc = list == NULL;

    *out = NULL;
    if (r == NULL) {
        json_decref(list);
        return st;
    }
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = json_array_append_new(list, store_token_json(r, i));
    PQclear(r);
    if (rc == 0)
        *out = store_wrap("tokens", list);
    else
        json_decref(list);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory listing tokens");
    return STORE_OK;
}

static enum store_status tokens_list_cb(PGconn *c, void *cls)
{
    json_t **out = cls;

    json_decref(*out);
    *out = NULL;
    return store_tokens_list_select(c, out);
}

enum store_status store_tokens_list(PGconn *c, json_t **out)
{
    json_t *list = NULL;
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, tokens_list_cb, &list);

    if (st != STORE_OK) {
        json_decref(list);
        list = NULL;
    }
    *out = list;
    return st;
}

static const char SQL_TOKEN_INSERT[] = "INSERT INTO tokens (id, name, role, secret_hash) "
                                       "VALUES ($1::uuid, $2, $3, decode($4, 'hex'))";

struct token_create {
    const char *id, *name, *role, *hash_hex;
};

static enum store_status token_create_cb(PGconn *c, void *cls)
{
    struct token_create *t = cls;
    const char *params[] = {t->id, t->name, t->role, t->hash_hex};
    enum store_status st = store_command(c, SQL_TOKEN_INSERT, 4, params, NULL);

    if (st == STORE_OK)
        st = store_notify_tokens(c);
    return st;
}

/* 32 bytes from the kernel's CSPRNG. 0 or -1. */
static int store_random(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

enum store_status store_token_create(PGconn *c, const char *name, enum vx_role role,
                                     char id[TOKEN_ID_LEN + 1], char secret[64])
{
    uint8_t raw[STORE_SECRET_BYTES], hash[SHA256_LEN];
    char hash_hex[2 * SHA256_LEN + 1];
    uuid_t u;
    enum store_status st;

    id[0] = '\0';
    secret[0] = '\0';
    if (c == NULL)
        return STORE_UNAVAILABLE;
    if (store_random(raw, sizeof raw) != 0)
        return store_fail(STORE_ERROR, "getrandom: %s", strerror(errno));
    memcpy(secret, "vx_", 3);
    encode_base64url(raw, sizeof raw, secret + 3); /* 43 characters */
    explicit_bzero(raw, sizeof raw);
    sha256(secret, strlen(secret), hash);
    encode_hex(hash, sizeof hash, hash_hex);
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);

    struct token_create t = {id, name, store_role_name(role), hash_hex};
    st = store_run_transaction(c, token_create_cb, &t);
    if (st != STORE_OK) {
        explicit_bzero(secret, 64);
        id[0] = '\0';
    }
    return st;
}

static const char SQL_TOKEN_REVOKE[] = "UPDATE tokens SET revoked_at = now() "
                                       "WHERE id = $1::uuid AND revoked_at IS NULL";

static enum store_status token_revoke_cb(PGconn *c, void *cls)
{
    const char *params[] = {cls};
    long rows = 0;
    enum store_status st = store_command(c, SQL_TOKEN_REVOKE, 1, params, &rows);

    if (st == STORE_OK && rows == 0)
        st = STORE_NOT_FOUND;
    if (st == STORE_OK)
        st = store_notify_tokens(c);
    return st;
}

enum store_status store_token_revoke(PGconn *c, const char *id)
{
    if (!store_uuid_valid(id))
        return c == NULL ? STORE_UNAVAILABLE : STORE_NOT_FOUND;
    return store_run_transaction(c, token_revoke_cb, (void *)id);
}

/* Only ever moves last_used_at forward, so batches may arrive in any order. */
static const char SQL_TOKEN_TOUCH[] = "UPDATE tokens SET last_used_at = "
                                      "greatest(last_used_at, " TS(2) ") WHERE id = $1::uuid";

struct token_touch {
    const char *id;
    int64_t at;
};

static enum store_status token_touch_cb(PGconn *c, void *cls)
{
    struct token_touch *t = cls;
    char at[24];
    const char *params[] = {t->id, store_itoa(t->at, at)};

    return store_command(c, SQL_TOKEN_TOUCH, 2, params, NULL);
}

enum store_status store_token_touch(PGconn *c, const char *id, int64_t at)
{
    struct token_touch t = {id, at};

    if (!store_uuid_valid(id))
        return c == NULL ? STORE_UNAVAILABLE : STORE_NOT_FOUND;
    return store_run_transaction(c, token_touch_cb, &t);
}

/* ------------------------------------------------------------------ */
/* Snapshot                                                             */
/* ------------------------------------------------------------------ */

struct snapshot_load {
    int64_t version;
    struct vx_flag *flags;
    size_t n_flags;
    struct vx_token *tokens;
    size_t n_tokens;
};

static void snapshot_load_free(struct snapshot_load *l)
{
    for (size_t i = 0; i < l->n_flags; i++)
        flag_free(&l->flags[i]);
    for (size_t i = 0; i < l->n_tokens; i++)
        free(l->tokens[i].name);
    free(l->flags);
    free(l->tokens);
    memset(l, 0, sizeof *l);
}

static enum store_status snapshot_load_cb(PGconn *c, void *cls)
{
    struct snapshot_load *l = cls;
    enum store_status st;

    snapshot_load_free(l);
    st = store_version_select(c, &l->version);
    if (st == STORE_OK)
        st = store_flags_select(c, &l->flags, &l->n_flags);
    if (st == STORE_OK)
        st = store_tokens_select(c, &l->tokens, &l->n_tokens);
    return st;
}

enum store_status store_snapshot_load(PGconn *c, struct vx_snapshot **out)
{
    struct snapshot_load l = {0};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, snapshot_load_cb, &l);

    *out = NULL;
    if (st != STORE_OK) {
        snapshot_load_free(&l);
        return st;
    }
    /* snapshot_new takes the arrays, also when it fails. */
    *out = snapshot_new(l.version, l.flags, l.n_flags, l.tokens, l.n_tokens);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory building the snapshot");
    return STORE_OK;
}
