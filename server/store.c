/* store.c -- the store's connections, failures and transactions.
 *
 * Why.  Every query of vexil (store_flags.c, store_events.c,
 * store_version.c, store_tokens.c) runs through the few functions here, so
 * that reconnecting, classifying failures and retrying live in one place
 * and a query function is only its statement and how to read its result.
 * The helpers they share are declared in store_int.h.
 *
 * Statements.  Every value travels as a parameter (PQexecParams, text
 * format); no SQL is ever built from data.  Timestamps cross the wire as
 * integer microseconds since the epoch, in both directions, so nothing is
 * rounded through floating point text:
 *   read:  (extract(epoch from ts) * 1000000)::bigint     (numeric, exact)
 *   write: 'epoch'::timestamptz + $n::bigint * interval '1 microsecond'
 * (the US() and TS() fragments of store_int.h).  users (text[]) crosses as
 * a JSON array: array_to_json(users) on the way out,
 * jsonb_array_elements_text($n::jsonb) on the way in (TEXT_ARRAY()), which
 * avoids hand-written array-literal quoting.
 *
 * Transactions.  Writes run at READ COMMITTED: their row locks make them
 * correct.  A write that changes what is served (store_write_transaction)
 * locks the one vexil_state row first -- it holds that lock to COMMIT
 * anyway, for the version bump (store_version.c) -- and, holding it, waits
 * at most STORE_HELD_LOCK_WAIT_MS for any other lock: past that it rolls
 * back, lets the writers queued behind it go, and tries again, until it
 * has waited the lock timeout in all.  So no two writes can wait on each
 * other in a cycle (only the holder of the sequence row waits on rows, and
 * never for long), and a row held by someone else -- a forgotten psql --
 * holds up only the writes of that row.  Deadlocks (40P01) or
 * serialization failures (40001) are still retried, as is a transaction
 * that asks for it by name with store_retry() (a flag revert that lost a
 * race, store_flag_writes.c).  Reads run in one REPEATABLE READ READ ONLY
 * transaction (BEGIN_READ_ONLY), so that what they read belongs together.
 *
 * Failures.  A lost or refused connection is STORE_UNAVAILABLE; the HTTP
 * layer answers 503 and the snapshot keeps serving reads.  A connection
 * that looks fine but whose server went away (a restart) fails on its
 * first statement: the transaction runner then reconnects once and starts
 * over, since nothing was done yet (only on the thread connections of
 * store_thread_conn(): other connections belong to callers who may hold
 * session state, such as the listener's LISTEN).  To keep a dead database
 * from costing every request a connect timeout, a thread that failed to
 * connect does not try again for STORE_RECONNECT_BACKOFF_US.  The last
 * failure of each thread is kept for store_last_error().  Connecting, and
 * waiting for each statement within its bounds, is store_conn.c's. */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "timeutil.h"

#define STORE_MAX_RETRIES 5

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
void store_oneline(char *buf, size_t size, const char *msg)
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

/* Remember a failure of our own (no SQLSTATE) with message fmt, ap. */
__attribute__((format(printf, 2, 0))) static void store_remember(bool retry, const char *fmt,
                                                                 va_list ap)
{
    vsnprintf(store_errmsg, sizeof store_errmsg, fmt, ap);
    store_sqlstate[0] = '\0';
    store_retry_wanted = retry;
}

enum store_status store_fail(enum store_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_remember(false, fmt, ap);
    va_end(ap);
    return status;
}

/* A failure that a new attempt of the transaction may fix, by the wish of
 * the code that failed (see store_retryable). */
enum store_status store_retry(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store_remember(true, fmt, ap);
    va_end(ap);
    return STORE_ERROR;
}

/* Remember the failure of r (NULL: of the connection) and classify it. */
enum store_status store_failed(PGconn *c, const PGresult *r)
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
PGresult *store_query(PGconn *c, const char *sql, int n, const char *const *params,
                      enum store_status *st)
{
    PGresult *r = NULL;
    enum store_status waited = store_exec(c, sql, n, params, &r);
    ExecStatusType s = PQresultStatus(r);

    if (waited != STORE_OK) {
        *st = waited;
        return NULL;
    }
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    *st = store_failed(c, r);
    PQclear(r);
    return NULL;
}

/* Run a statement whose rows are not wanted; *rows (if not NULL) receives
 * how many rows it touched. */
enum store_status store_command(PGconn *c, const char *sql, int n, const char *const *params,
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
PGresult *store_query_row(PGconn *c, const char *sql, int n, const char *const *params,
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

int64_t store_int64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Run a statement that returns one row and read its first column as an
 * integer (NULL reads as 0). */
enum store_status store_query_int64(PGconn *c, const char *sql, int n, const char *const *params,
                                    int64_t *out)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query_row(c, sql, n, params, &st);

    if (r != NULL) {
        *out = store_int64(r, 0, 0);
        PQclear(r);
    }
    return st;
}

bool store_bool(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

const char *store_itoa(int64_t v, char buf[24])
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Results as JSON                                                      */
/* ------------------------------------------------------------------ */

json_t *store_text_json(const PGresult *r, int row, int col)
{
    return json_string(PQgetvalue(r, row, col));
}

json_t *store_text_or_null_json(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

json_t *store_int64_json(const PGresult *r, int row, int col)
{
    return json_integer(store_int64(r, row, col));
}

json_t *store_bool_json(const PGresult *r, int row, int col)
{
    return json_boolean(store_bool(r, row, col));
}

json_t *store_time_json(const PGresult *r, int row, int col)
{
    char buf[32];

    if (PQgetisnull(r, row, col))
        return json_null();
    return json_string(time_format_rfc3339(store_int64(r, row, col), buf, sizeof buf));
}

json_t *store_wrap(const char *key, json_t *list)
{
    json_t *o = json_object();

    if (o == NULL || json_object_set_new(o, key, list) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Row `row` of r as an object: field i from column i.  New reference;
 * NULL on OOM. */
static json_t *store_row_json(const PGresult *r, int row, const struct store_json_field *fields,
                              size_t n)
{
    json_t *o = json_object();
    int rc = o == NULL;

    /* json_object_set_new takes the value even on failure and refuses a
     * NULL one, so one check at the end catches any allocation failure. */
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = json_object_set_new(o, fields[i].key, fields[i].value(r, row, (int)i));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *store_rows_json(const PGresult *r, int rows, const char *key,
                        const struct store_json_field *fields, size_t n)
{
    json_t *list = json_array();
    int rc = list == NULL;

    for (int i = 0; i < rows && i < PQntuples(r) && rc == 0; i++)
        rc = json_array_append_new(list, store_row_json(r, i, fields, n));
    if (rc != 0) {
        json_decref(list);
        return NULL;
    }
    return store_wrap(key, list);
}

/* ------------------------------------------------------------------ */
/* Transactions                                                         */
/* ------------------------------------------------------------------ */

static void store_rollback(PGconn *c)
{
    PGresult *r = NULL;

    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE &&
        store_exec(c, "ROLLBACK", 0, NULL, &r) == STORE_OK)
        PQclear(r);
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
enum store_status store_transaction(PGconn *c, const char *begin,
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

/* Holding the sequence row, a write waits at most this long (ms) for any
 * other lock (or the lock timeout, if shorter) before it lets go of
 * everything and tries again. */
#define STORE_HELD_LOCK_WAIT_MS 50

struct locked_write {
    enum store_status (*cb)(PGconn *c, void *cls);
    void *cls;
    bool holding; /* the sequence row was locked when cb failed */
};

static enum store_status locked_write_cb(PGconn *c, void *cls)
{
    struct locked_write *w = cls;
    int wait_ms = store_lock_timeout_ms();
    char sql[64];
    enum store_status st = store_sequence_lock(c);

    w->holding = false;
    snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = %d",
             wait_ms < STORE_HELD_LOCK_WAIT_MS ? wait_ms : STORE_HELD_LOCK_WAIT_MS);
    if (st == STORE_OK)
        st = store_command(c, sql, 0, NULL, NULL);
    if (st != STORE_OK)
        return st;
    w->holding = true;
    return w->cb(c, w->cls);
}

enum store_status store_write_transaction(PGconn *c, enum store_status (*cb)(PGconn *c, void *cls),
                                          void *cls)
{
    struct locked_write w = {cb, cls, false};
    int64_t deadline = time_monotonic_us() + (int64_t)store_lock_timeout_ms() * 1000;

    for (;;) {
        enum store_status st = store_transaction(c, "BEGIN", locked_write_cb, &w);
        /* A lock that another session holds (55P03): let the writers
         * queued on the sequence row go first, then wait again, until the
         * write has waited the lock timeout in all. */
        if (st != STORE_ERROR || !w.holding || strcmp(store_sqlstate, "55P03") != 0 ||
            time_monotonic_us() >= deadline)
            return st;
        store_backoff(0);
    }
}

struct read_json {
    enum store_status (*select)(PGconn *c, const void *arg, json_t **obj);
    const void *arg;
    json_t *obj;
};

static enum store_status read_json_cb(PGconn *c, void *cls)
{
    struct read_json *q = cls;

    json_decref(q->obj);
    q->obj = NULL;
    return q->select(c, q->arg, &q->obj);
}

enum store_status
store_read_json(PGconn *c, enum store_status (*select)(PGconn *c, const void *arg, json_t **obj),
                const void *arg, json_t **out)
{
    struct read_json q = {.select = select, .arg = arg};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, read_json_cb, &q);

    if (st != STORE_OK) {
        json_decref(q.obj);
        q.obj = NULL;
    }
    *out = q.obj;
    return st;
}
