/* plans.c -- the release plan scheduler (plans.h).
 *
 * Why one per instance.  Every instance runs this thread; none is the
 * leader.  The database decides which instance takes a step: a step is
 * taken in a transaction that locks the flag and the plan and checks that
 * the step is still due (store_plans_take_due), so when two schedulers
 * wake for the same step, the second finds nothing left to do.  There is
 * no election to lose and nothing to hand over when an instance dies: the
 * others go on taking steps, and a step that fell due while every
 * instance was down is taken by the first to start.
 *
 * When.  The thread asks the database for the due steps, takes them, and
 * sleeps until the next step falls due, but never longer than POLL_MS, so
 * that a plan started or resumed on another instance is seen within that
 * time.  A plan started, resumed or advanced here pokes the thread, which
 * then looks again at once.  Every COUNT_EVERY_MS it also counts the plans
 * by status for /metrics. */
#include "plans.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "listen.h"
#include "log.h"
#include "timeutil.h"

#define POLL_MS        500
#define COUNT_EVERY_MS 5000
#define TAKE_MAX       32 /* steps per database round; more are taken at once after */

static pthread_t p_thread;
static bool p_started;
static pthread_mutex_t p_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t p_cv; /* on the monotonic clock */
static bool p_stopping, p_poked;

static atomic_llong p_counts[5]; /* plans by status, refreshed every COUNT_EVERY_MS */
static atomic_bool p_counted;    /* p_counts has been read at least once */
static atomic_ullong p_steps;    /* steps taken by this instance */
static atomic_ullong p_alerts[ALERT_UNKNOWN_ENV + 1];

void plans_count_step(void)
{
    atomic_fetch_add_explicit(&p_steps, 1, memory_order_relaxed);
}

void plans_count_alert(enum alert_outcome outcome)
{
    atomic_fetch_add_explicit(&p_alerts[outcome], 1, memory_order_relaxed);
}

/* One round: take the due steps, maybe count; returns the monotonic time
 * (µs) to look again. */
static int64_t plans_round(int64_t *last_count)
{
    PGconn *c = store_thread_conn();
    int64_t now = time_now_us(), mono = time_monotonic_us();
    int64_t version = 0, next_due = 0, wait_us = (int64_t)POLL_MS * 1000;
    int taken = 0;
    enum store_status st = store_plans_take_due(c, now, TAKE_MAX, &taken, &version, &next_due);

    if (st == STORE_UNAVAILABLE)
        listen_db_suspect();
    else if (st != STORE_OK)
        log_error("release plans: %s", store_last_error(c));
    for (int i = 0; i < taken; i++)
        plans_count_step();
    if (taken == TAKE_MAX)
        wait_us = 0; /* more may be due */
    else if (st == STORE_OK && next_due > 0 && next_due - now < wait_us)
        wait_us = next_due > now ? next_due - now : 0;
    if (st == STORE_OK && mono - *last_count >= (int64_t)COUNT_EVERY_MS * 1000) {
        int64_t counts[5];
        if (store_plans_count(c, counts) == STORE_OK) {
            for (int i = 0; i < 5; i++)
                atomic_store(&p_counts[i], counts[i]);
            atomic_store(&p_counted, true);
            *last_count = mono;
        }
    }
    return mono + wait_us;
}

static void *plans_main(void *arg)
{
    (void)arg;
    int64_t last_count = INT64_MIN / 2;

    pthread_mutex_lock(&p_mu);
    while (!p_stopping) {
        pthread_mutex_unlock(&p_mu);
        int64_t until = plans_round(&last_count);
        struct timespec ts;
        time_deadline_at(until, &ts);
        pthread_mutex_lock(&p_mu);
        while (!p_stopping && !p_poked && time_monotonic_us() < until)
            pthread_cond_timedwait(&p_cv, &p_mu, &ts);
        p_poked = false;
    }
    pthread_mutex_unlock(&p_mu);
    return NULL;
}

int plans_start(void)
{
    if (time_cond_init(&p_cv) != 0)
        return -1;
    p_stopping = false;
    if (pthread_create(&p_thread, NULL, plans_main, NULL) != 0) {
        log_error("cannot start the release plan scheduler");
        return -1;
    }
    p_started = true;
    return 0;
}

void plans_stop(void)
{
    if (!p_started)
        return;
    pthread_mutex_lock(&p_mu);
    p_stopping = true;
    pthread_cond_signal(&p_cv);
    pthread_mutex_unlock(&p_mu);
    pthread_join(p_thread, NULL);
    p_started = false;
}

void plans_poke(void)
{
    pthread_mutex_lock(&p_mu);
    p_poked = true;
    pthread_cond_signal(&p_cv);
    pthread_mutex_unlock(&p_mu);
}

void plans_metrics(struct buf *b)
{
    static const char *const outcomes[] = {"disabled", "paused",       "no_plan",
                                           "already",  "unknown_flag", "unknown_environment"};

    buf_adds(b, "# HELP vexil_plans Release plans by status (counted every 5 s).\n"
                "# TYPE vexil_plans gauge\n");
    for (int i = 0; i < 5 && atomic_load(&p_counted); i++)
        buf_addf(b, "vexil_plans{status=\"%s\"} %lld\n", plan_status_name((enum plan_status)i),
                 (long long)atomic_load(&p_counts[i]));
    buf_addf(b,
             "# HELP vexil_plan_steps_total Release plan steps this instance took.\n"
             "# TYPE vexil_plan_steps_total counter\nvexil_plan_steps_total %llu\n"
             "# HELP vexil_alerts_total Alerts received on /api/alerts, by what they did.\n"
             "# TYPE vexil_alerts_total counter\n",
             atomic_load(&p_steps));
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++)
        buf_addf(b, "vexil_alerts_total{outcome=\"%s\"} %llu\n", outcomes[i],
                 atomic_load(&p_alerts[i]));
}
