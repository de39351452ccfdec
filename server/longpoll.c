/* longpoll.c -- parked requests and the two things that wake them.
 *
 * The waiter list is one doubly linked list under one mutex.  Parking
 * registers the waiter *before* comparing versions and suspends the
 * connection while still holding the mutex, so a change published between
 * the comparison and the suspension cannot be missed, and no resume can
 * reach a connection that is not yet suspended.  Waking walks the list once
 * and resumes every waiter whose environment's version moved (a change in
 * staging wakes nobody who waits on production); libmicrohttpd then
 * calls the access handler again, which answers from the new snapshot.
 *
 * A suspended connection never times out in libmicrohttpd and its client
 * may be long gone, so every waiter carries a deadline, enforced by one
 * timer thread that ticks every 50 ms (the wait granularity is a second).
 * The list is capped: beyond max_waiters a request is refused (503).
 *
 * A stream (w->repeat, ofrep.c's SSE change stream) is registered once for
 * its whole life, so it holds its place under the cap, and is suspended and
 * resumed many times: from its content reader whenever it has nothing to
 * send, by a change or by its keep-alive deadline.  Wakers resume only
 * waiters that are suspended (state LP_PARKED); a stream that is busy
 * writing finds the new version itself when it next asks to wait. */
#include "longpoll.h"

#include <pthread.h>
#include <stdatomic.h>

#include "log.h"
#include "snapshot.h"
#include "timeutil.h"

#define TICK_MS 50

static pthread_mutex_t lp_lock = PTHREAD_MUTEX_INITIALIZER;
/* Made again with a monotonic clock by longpoll_init (time_cond_init). */
static pthread_cond_t lp_cond = PTHREAD_COND_INITIALIZER;
static struct lp_waiter head = {.next = &head, .prev = &head};
static unsigned lp_max;
static struct longpoll_ops lp_ops;
static atomic_uint lp_count;
static bool lp_closing;
static uint64_t lp_token_epoch; /* of the last longpoll_revoke */
static bool lp_stopping;
static pthread_t lp_timer;
static bool lp_timer_started;

/* The version of environment env_id in s, -1 when there is none (gone, or
 * no snapshot yet). */
static int64_t env_version(const struct vx_snapshot *s, int64_t env_id)
{
    const struct vx_env *e = s != NULL ? snapshot_env_by_id(s, env_id) : NULL;

    return e != NULL ? e->version : -1;
}

/* Has w's environment moved from since in the current snapshot? */
static bool moved_now(const struct lp_waiter *w, int64_t since)
{
    struct vx_snapshot *s = snapshot_acquire();
    bool moved = env_version(s, w->env_id) != since;

    snapshot_release(s);
    return moved;
}

static void unlink_waiter(struct lp_waiter *w)
{
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->next = w->prev = NULL;
    atomic_fetch_sub(&lp_count, 1);
}

/* Resume a suspended waiter; a long-poll leaves the list, a stream stays. */
static void resume(struct lp_waiter *w, enum lp_state why)
{
    if (!w->repeat)
        unlink_waiter(w);
    w->state = why;
    lp_ops.resume(w->conn);
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lp_lock);
    while (!lp_stopping) {
        struct timespec ts;
        time_deadline_ts(TICK_MS, &ts);
        pthread_cond_timedwait(&lp_cond, &lp_lock, &ts);
        int64_t now = time_monotonic_us();
        for (struct lp_waiter *w = head.next, *next; w != &head; w = next) {
            next = w->next;
            if (w->state == LP_PARKED && w->deadline_us <= now)
                resume(w, LP_TIMEOUT);
        }
    }
    pthread_mutex_unlock(&lp_lock);
    return NULL;
}

int longpoll_init(unsigned max_waiters, const struct longpoll_ops *ops)
{
    lp_max = max_waiters;
    lp_ops = *ops;
    lp_closing = false;
    lp_stopping = false;
    if (time_cond_init(&lp_cond) != 0) {
        log_error("longpoll: cannot make the timer's condition variable");
        return -1;
    }
    if (pthread_create(&lp_timer, NULL, timer_main, NULL) != 0) {
        log_error("longpoll: cannot start the timer thread");
        return -1;
    }
    lp_timer_started = true;
    return 0;
}

/* Link w at the tail unless the daemon is closing or the cap is reached.
 * Returns LP_REGISTERED, LP_CLOSING or LP_FULL.  Caller holds lp_lock. */
static enum lp_result link_waiter(struct lp_waiter *w, struct MHD_Connection *conn)
{
    if (lp_closing)
        return LP_CLOSING;
    if (atomic_load(&lp_count) >= lp_max)
        return LP_FULL;
    w->conn = conn;
    w->next = &head;
    w->prev = head.prev;
    head.prev->next = w;
    head.prev = w;
    atomic_fetch_add(&lp_count, 1);
    return LP_REGISTERED;
}

enum lp_result longpoll_park(struct lp_waiter *w, struct MHD_Connection *conn,
                             int64_t since_version, int64_t deadline_us)
{
    enum lp_result rc;

    pthread_mutex_lock(&lp_lock);
    w->since_version = since_version;
    w->deadline_us = deadline_us;
    w->state = LP_PARKED;
    rc = link_waiter(w, conn);
    if (rc == LP_REGISTERED) {
        /* Registered first, compared second: a publish that lands after
         * this load will find w in the list. */
        if (moved_now(w, since_version) || w->token_epoch < lp_token_epoch) {
            unlink_waiter(w);
            w->state = LP_CHANGED;
            rc = LP_MOVED;
        } else {
            lp_ops.suspend(conn);
            rc = LP_SUSPENDED;
        }
    } else {
        w->state = LP_IDLE;
    }
    pthread_mutex_unlock(&lp_lock);
    return rc;
}

void longpoll_wake(void)
{
    struct vx_snapshot *s = snapshot_acquire();

    pthread_mutex_lock(&lp_lock);
    for (struct lp_waiter *w = head.next, *next; w != &head; w = next) {
        next = w->next;
        if (w->state == LP_PARKED && env_version(s, w->env_id) != w->since_version)
            resume(w, LP_CHANGED);
    }
    pthread_mutex_unlock(&lp_lock);
    snapshot_release(s);
}

enum lp_result longpoll_stream_open(struct lp_waiter *w, struct MHD_Connection *conn)
{
    enum lp_result rc;

    pthread_mutex_lock(&lp_lock);
    w->repeat = true;
    w->state = LP_IDLE;
    rc = link_waiter(w, conn);
    pthread_mutex_unlock(&lp_lock);
    return rc;
}

enum lp_result longpoll_stream_wait(struct lp_waiter *w, int64_t since_version, int64_t deadline_us)
{
    enum lp_result rc;

    pthread_mutex_lock(&lp_lock);
    if (lp_closing || w->next == NULL) {
        rc = LP_CLOSING;
    } else if (moved_now(w, since_version) || w->token_epoch < lp_token_epoch) {
        /* Moved (either way: a restored database goes back) while the
         * stream was busy: no suspension, the caller sends it now. */
        w->state = LP_CHANGED;
        rc = LP_MOVED;
    } else {
        w->since_version = since_version;
        w->deadline_us = deadline_us;
        w->state = LP_PARKED;
        lp_ops.suspend(w->conn);
        rc = LP_SUSPENDED;
    }
    pthread_mutex_unlock(&lp_lock);
    return rc;
}

void longpoll_revoke(uint64_t epoch, bool (*live)(const uint8_t token[LP_TOKEN_LEN], void *cls),
                     void *cls)
{
    pthread_mutex_lock(&lp_lock);
    lp_token_epoch = epoch;
    for (struct lp_waiter *w = head.next, *next; w != &head; w = next) {
        next = w->next;
        if (w->state == LP_PARKED && !live(w->token, cls))
            resume(w, LP_REVOKED);
    }
    pthread_mutex_unlock(&lp_lock);
}

void longpoll_forget(struct lp_waiter *w)
{
    pthread_mutex_lock(&lp_lock);
    if (w->next != NULL)
        unlink_waiter(w);
    pthread_mutex_unlock(&lp_lock);
}

void longpoll_shutdown(void)
{
    pthread_mutex_lock(&lp_lock);
    lp_closing = true;
    while (head.next != &head) {
        struct lp_waiter *w = head.next;
        bool suspended = w->state == LP_PARKED;
        unlink_waiter(w);
        w->state = LP_SHUTDOWN;
        /* A stream that is not suspended sees lp_closing when it next
         * asks to wait. */
        if (suspended)
            lp_ops.resume(w->conn);
    }
    pthread_mutex_unlock(&lp_lock);
}

void longpoll_stop(void)
{
    if (!lp_timer_started)
        return;
    pthread_mutex_lock(&lp_lock);
    lp_stopping = true;
    pthread_cond_signal(&lp_cond);
    pthread_mutex_unlock(&lp_lock);
    pthread_join(lp_timer, NULL);
    lp_timer_started = false;
}

unsigned longpoll_held(void)
{
    return atomic_load(&lp_count);
}
