/* store_conn.c -- connections to PostgreSQL, and a bound on every wait.
 *
 * Why.  A database that hangs (a failover under way, a black-holed network,
 * a lock held by a forgotten session) must cost a caller a known, short
 * time, never minutes: the threads that wait here serve writes and keep the
 * snapshot current, and SIGTERM must stop the daemon within seconds even
 * then.  libpq bounds nothing by itself once connected, so:
 *
 *   - the server bounds each statement (statement_timeout) and each wait
 *     for a lock (lock_timeout), set on every new connection;
 *   - this side bounds each wait for an answer too, at the statement
 *     timeout plus a second (store_exec): a network that swallows packets
 *     never answers at all, and TCP keepalives and tcp_user_timeout (set as
 *     connection defaults) notice a dead peer only after many seconds, or
 *     never when something in between still acknowledges;
 *   - connecting is bounded (connect_timeout) by the same loop;
 *   - store_shutdown() makes every wait give up at once.
 *
 * A wait that runs out closes the connection's socket under libpq, so the
 * connection reads as lost (CONNECTION_BAD) everywhere: the statement
 * answers STORE_UNAVAILABLE, a write answers 503 with nothing committed
 * (the server rolls back a transaction whose client is gone), and the next
 * use reconnects.
 *
 * Thread connections.  Each thread that writes (the database pool) owns one
 * connection, kept in a pthread key whose destructor closes it when the
 * thread ends.  To keep a dead database from costing every request a
 * connect timeout, a thread that failed to connect does not try again for
 * STORE_RECONNECT_BACKOFF_US, unless the listener has seen the database
 * come back since (store_database_back). */
#include "store_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "timeutil.h"

#define STORE_RECONNECT_BACKOFF_US (1 * VX_USEC_PER_SEC)
#define STORE_ANSWER_GRACE_MS      1000 /* for the server to report its own timeout */

static char *store_conninfo;
static struct store_limits store_lim = STORE_LIMITS_DEFAULT;
static int store_stop_fd = -1; /* readable once store_shutdown() was called */
static pthread_key_t store_key;
static pthread_once_t store_key_once = PTHREAD_ONCE_INIT;
/* This thread's last failed connection attempt: no new one before this
 * (monotonic µs). */
static _Thread_local int64_t store_reconnect_after;

int store_lock_timeout_ms(void)
{
    return store_lim.lock_timeout_ms;
}

void store_configure(const char *conninfo, const struct store_limits *limits)
{
    free(store_conninfo);
    store_conninfo = conninfo != NULL && conninfo[0] != '\0' ? strdup(conninfo) : NULL;
    if (limits != NULL)
        store_lim = *limits;
    if (store_stop_fd < 0)
        store_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void store_shutdown(void)
{
    uint64_t one = 1;

    if (store_stop_fd >= 0)
        (void)!write(store_stop_fd, &one, sizeof(one));
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

/* Wait until c's socket is ready for events, or deadline (monotonic µs)
 * passes, or store_shutdown() is called.  true: ready. */
static bool store_wait(PGconn *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - time_monotonic_us();
        struct pollfd p[2] = {{.fd = PQsocket(c), .events = events},
                              {.fd = store_stop_fd, .events = POLLIN}};
        if (left <= 0 || p[0].fd < 0)
            return false;
        int n = poll(p, store_stop_fd >= 0 ? 2 : 1, (int)((left + 999) / 1000));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & POLLIN))
            return false;
        if (n > 0)
            return true;
    }
}

/* Drive a connection attempt (PQconnectPoll) or a reset (PQresetPoll) to its
 * end within the connect timeout.  true: connected. */
static bool store_poll_connect(PGconn *c, PostgresPollingStatusType (*step)(PGconn *c))
{
    int64_t deadline = time_monotonic_us() + store_lim.connect_timeout_s * VX_USEC_PER_SEC;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;

    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        if (!store_wait(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline))
            return false;
        st = step(c);
    }
    return st == PGRES_POLLING_OK;
}

/* Make c read as lost: its socket is shut down under libpq, which then
 * fails whatever it does next on it. */
static void store_kill(PGconn *c)
{
    if (PQsocket(c) >= 0)
        shutdown(PQsocket(c), SHUT_RDWR);
    PQconsumeInput(c); /* notices the shutdown: CONNECTION_BAD */
}

/* Send what libpq holds for c (it is in nonblocking mode, so a query is
 * only queued by PQsend*) before deadline.  false: it could not. */
static bool store_flush(PGconn *c, int64_t deadline)
{
    for (;;) {
        int f = PQflush(c);
        if (f == 0)
            return true;
        /* While it waits to write, libpq must read what the server sends. */
        if (f < 0 || !store_wait(c, POLLIN | POLLOUT, deadline) || !PQconsumeInput(c))
            return false;
    }
}

/* The deadline of one statement: the server's timeout and a second. */
static int64_t store_deadline(void)
{
    return time_monotonic_us() +
           (int64_t)(store_lim.statement_timeout_ms + STORE_ANSWER_GRACE_MS) * 1000;
}

/* After a PQsend*: send it, and wait for its results before deadline; *out
 * is the last one (caller PQclear()s; it may be an error result).
 * STORE_OK, or STORE_UNAVAILABLE when the time ran out (c is then closed)
 * or the connection was lost without a result. */
static enum store_status store_results(PGconn *c, int64_t deadline, PGresult **out)
{
    PGresult *last = NULL, *r;

    *out = NULL;
    if (!store_flush(c, deadline))
        goto timed_out;
    for (;;) {
        while (!PQisBusy(c)) {
            r = PQgetResult(c);
            if (r == NULL) {
                *out = last;
                return STORE_OK;
            }
            PQclear(last);
            last = r;
        }
        if (!store_wait(c, POLLIN, deadline))
            goto timed_out;
        if (!PQconsumeInput(c)) {
            /* Lost: libpq has queued an error result; take it as the answer. */
            while ((r = PQgetResult(c)) != NULL) {
                PQclear(last);
                last = r;
            }
            *out = last;
            return last != NULL ? STORE_OK : store_failed(c, NULL);
        }
    }

timed_out:
    store_kill(c);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    PQclear(last);
    return store_fail(STORE_UNAVAILABLE,
                      "the database did not answer within %d ms; connection closed",
                      store_lim.statement_timeout_ms + STORE_ANSWER_GRACE_MS);
}

/* The session settings every connection gets once connected; from here on
 * the connection is in nonblocking mode, so that sending waits within the
 * deadlines too. */
static bool store_session(PGconn *c)
{
    char sql[160];
    PGresult *r = NULL;

    if (PQsetnonblocking(c, 1) != 0)
        return false;
    snprintf(sql, sizeof sql, "SET statement_timeout = %d; SET lock_timeout = %d",
             store_lim.statement_timeout_ms, store_lim.lock_timeout_ms);
    /* PQsendQuery, not the extended protocol: two statements in one (an
     * error in the first ends the string, so the last result tells). */
    if (!PQsendQuery(c, sql) || store_results(c, store_deadline(), &r) != STORE_OK)
        return false;
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

PGconn *store_connect(struct vx_error *err)
{
    char timeout[16];
    /* Our defaults come first: values in the user's conninfo (expanded in
     * place of dbname) override them. */
    const char *const keys[] = {"connect_timeout",
                                "application_name",
                                "keepalives",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                NULL};
    const char *const values[] = {timeout, "vexil",        "1", "10", "5", "3",
                                  "15000", store_conninfo, NULL};
    char msg[256];

    snprintf(timeout, sizeof timeout, "%d", store_lim.connect_timeout_s);
    PGconn *c = PQconnectStartParams(keys, values, 1);
    if (c == NULL) {
        vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
        return NULL;
    }
    if (PQstatus(c) == CONNECTION_BAD || !store_poll_connect(c, PQconnectPoll) ||
        !store_session(c)) {
        store_oneline(msg, sizeof msg, PQerrorMessage(c));
        vx_fail(err, VX_E_UNAVAILABLE, "cannot connect to the database: %s",
                msg[0] != '\0' ? msg : "no answer in time");
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeReceiver(c, store_notice, NULL);
    return c;
}

enum store_status store_exec(PGconn *c, const char *sql, int n, const char *const *params,
                             PGresult **out)
{
    *out = NULL;
    if (c == NULL)
        return store_fail(STORE_UNAVAILABLE, "no database connection");
    if (!PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0))
        return store_failed(c, NULL);
    return store_results(c, store_deadline(), out);
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

void store_thread_adopt(PGconn *c)
{
    pthread_once(&store_key_once, store_key_create);
    pthread_setspecific(store_key, c);
}

bool store_reset(PGconn *c)
{
    pthread_once(&store_key_once, store_key_create);
    if (c != pthread_getspecific(store_key) || !store_may_reconnect())
        return false;
    if (PQresetStart(c) && store_poll_connect(c, PQresetPoll) && store_session(c))
        return true;
    store_kill(c);
    store_failed(c, NULL);
    store_reconnect_failed();
    return false;
}
