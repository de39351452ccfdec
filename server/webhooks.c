/* webhooks.c -- the webhook sender (webhooks.h).
 *
 * Why one sender.  Every instance runs this thread, but only the one that
 * holds a PostgreSQL session advisory lock (WEBHOOK_LOCK_KEY) delivers;
 * the others try to take it every second.  The lock lives with the
 * holder's connection, so when that instance dies or loses its database,
 * the lock is released and another instance takes over within a second
 * or two: the database decides, as for release plans, and no event is
 * delivered by two instances at once.
 *
 * What it does.  Each round takes, for every webhook, its oldest pending
 * delivery that is due (store_webhook_due), posts them side by side with
 * libcurl's multi interface (5 s at most each, so a receiver that never
 * answers holds the others back by no more than that), and records each
 * attempt and its outcome in one transaction:
 * delivered on a 2xx; else tried again after webhook_backoff_us(), until a
 * day has passed since the event, then failed.  A webhook's next delivery
 * waits for the one before it, so each receiver gets its events in order.
 * The writes never wait for any of this: they only insert outbox rows.
 *
 * When.  The listener pokes the thread on every notification (any change
 * on any instance); a round that delivered something is followed at once
 * by the next (a receiver's backlog drains at its own pace); otherwise the
 * thread looks every ROUND_MS, for retries that fell due. */
#include "webhooks.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"
#include "log.h"
#include "store.h"
#include "timeutil.h"
#include "webhook.h"

#define WEBHOOK_LOCK_KEY   INT64_C(0x76786877) /* "vxhw" */
#define ROUND_MS           500
#define STANDBY_MS         1000 /* how often an instance without the lock tries it */
#define QUEUE_EVERY_MS     5000
#define DUE_MAX            64 /* webhooks served in one round */
#define TIMEOUT_MS         5000
#define CONNECT_TIMEOUT_MS 3000
#define GIVE_UP_US         (INT64_C(86400) * VX_USEC_PER_SEC)

static pthread_t w_thread;
static bool w_started;
static pthread_mutex_t w_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t w_cv; /* on the monotonic clock */
static bool w_poked;
static atomic_bool w_stopping;

static atomic_llong w_pending = -1, w_oldest_s;
static atomic_ullong w_delivered, w_retried, w_failed;
static atomic_bool w_holder;

/* ---- a round of deliveries ------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *cls)
{
    (void)p;
    (void)cls;
    return size * n;
}

/* One delivery in flight. */
struct transfer {
    const struct store_webhook_job *job;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char err[CURL_ERROR_SIZE];
    char h_sig[32 + 7 + 64 + 1], h_id[64];
    long status; /* the receiver's, 0 when none came */
    bool done;
};

/* Make t's request: POST the signed body.  0 or -1. */
static int transfer_init(struct transfer *t, const struct store_webhook_job *j)
{
    struct webhook_event e = {
        .id = j->event_id,
        .event = j->event,
        .at = j->at,
        .actor = j->actor,
        .kind = j->kind,
        .subject = j->subject,
        .environments = j->environments,
        .before = j->before,
        .after = j->after,
    };
    char sig[7 + 64 + 1];

    memset(t, 0, sizeof *t);
    t->job = j;
    t->body = webhook_body(&e, j->slack);
    t->easy = curl_easy_init();
    if (t->body == NULL || t->easy == NULL)
        return -1;
    webhook_signature(j->secret, t->body, strlen(t->body), sig);
    snprintf(t->h_sig, sizeof t->h_sig, "X-Vexil-Signature: %s", sig);
    snprintf(t->h_id, sizeof t->h_id, "X-Vexil-Delivery: %s", j->delivery);
    t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
    t->headers = curl_slist_append(t->headers, t->h_sig);
    t->headers = curl_slist_append(t->headers, t->h_id);
    t->headers = curl_slist_append(t->headers, "Expect:"); /* no 100-continue round trip */
    CURL *c = t->easy;
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vexil/" VEXIL_VERSION);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->err);
    curl_easy_setopt(c, CURLOPT_PRIVATE, t);
    return 0;
}

static void transfer_free(struct transfer *t)
{
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
}

/* Record what became of t. */
static void record(PGconn *c, const struct transfer *t, int ms)
{
    const struct store_webhook_job *j = t->job;
    char why[CURL_ERROR_SIZE + 32];
    int64_t now = time_now_us();
    enum store_delivery_outcome outcome = STORE_DELIVERY_RETRY;

    why[0] = '\0';
    if (t->status >= 200 && t->status < 300)
        outcome = STORE_DELIVERY_DONE;
    else if (t->status > 0)
        snprintf(why, sizeof why, "the receiver answered %ld", t->status);
    else
        snprintf(why, sizeof why, "%s", t->err[0] != '\0' ? t->err : "no answer");
    if (outcome != STORE_DELIVERY_DONE && now - j->at >= GIVE_UP_US)
        outcome = STORE_DELIVERY_FAILED;
    enum store_status st =
        store_webhook_record(c, j->delivery, now, (int)t->status, why[0] != '\0' ? why : NULL, ms,
                             outcome, now + webhook_backoff_us(j->attempts + 1));
    if (st != STORE_OK)
        log_error("webhooks: cannot record the attempt of delivery %s: %s", j->delivery,
                  store_last_error(c));
    else if (outcome == STORE_DELIVERY_DONE)
        atomic_fetch_add(&w_delivered, 1);
    else if (outcome == STORE_DELIVERY_RETRY)
        atomic_fetch_add(&w_retried, 1);
    else
        atomic_fetch_add(&w_failed, 1);
}

/* Post jobs[0..n) (one per webhook) side by side, so that a receiver that
 * never answers holds the round back by its timeout and no more, then
 * record each outcome.  Returns how many were delivered. */
static size_t deliver(PGconn *c, const struct store_webhook_job *jobs, size_t n)
{
    struct transfer *t = calloc(n ? n : 1, sizeof *t);
    CURLM *m = curl_multi_init();
    int64_t t0 = time_monotonic_us();
    size_t delivered = 0;
    int running = 0;

    for (size_t i = 0; t != NULL && m != NULL && i < n; i++) {
        if (transfer_init(&t[i], &jobs[i]) == 0)
            curl_multi_add_handle(m, t[i].easy);
        else
            snprintf(t[i].err, sizeof t[i].err, "out of memory");
    }
    do {
        if (m == NULL || t == NULL || curl_multi_perform(m, &running) != CURLM_OK)
            break;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct transfer *x = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &x->status);
            else if (x->err[0] == '\0')
                snprintf(x->err, sizeof x->err, "%s", curl_easy_strerror(msg->data.result));
            x->done = true;
        }
        if (running > 0)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    } while (running > 0 && !atomic_load(&w_stopping));
    int ms = (int)((time_monotonic_us() - t0) / 1000);
    for (size_t i = 0; t != NULL && i < n; i++) {
        /* Stopping: a transfer not finished is abandoned, and its delivery
         * stays pending for the next sender. */
        if (t[i].job != NULL && (t[i].done || (!atomic_load(&w_stopping) && t[i].easy == NULL))) {
            record(c, &t[i], ms);
            delivered += t[i].status >= 200 && t[i].status < 300;
        }
        if (m != NULL && t[i].easy != NULL)
            curl_multi_remove_handle(m, t[i].easy);
        transfer_free(&t[i]);
    }
    curl_multi_cleanup(m);
    free(t);
    return delivered;
}

/* ---- the thread ----------------------------------------------------------- */

/* One round; returns how long to wait (ms) before the next. */
static int webhooks_round(int64_t *last_queue)
{
    PGconn *c = store_thread_conn();
    bool held = false;
    enum store_status st = store_webhook_lock(c, WEBHOOK_LOCK_KEY, &held);
    int64_t mono = time_monotonic_us();
    int wait = held ? ROUND_MS : STANDBY_MS;

    if (st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (held != atomic_load(&w_holder))
        log_info(held ? "webhooks: this instance delivers" : "webhooks: another instance delivers");
    atomic_store(&w_holder, held);
    if (st == STORE_OK && held) {
        struct store_webhook_job *jobs = NULL;
        size_t n = 0;
        if (store_webhook_due(c, time_now_us(), DUE_MAX, &jobs, &n) == STORE_OK && n > 0 &&
            deliver(c, jobs, n) > 0)
            wait = 0; /* the next of a delivered webhook's events may be waiting */
        store_webhook_jobs_free(jobs, n);
    }
    if (st == STORE_OK && mono - *last_queue >= (int64_t)QUEUE_EVERY_MS * 1000) {
        int64_t pending, oldest;
        if (store_webhook_queue(c, time_now_us(), &pending, &oldest) == STORE_OK) {
            atomic_store(&w_pending, pending);
            atomic_store(&w_oldest_s, oldest);
            *last_queue = mono;
        }
    }
    return wait;
}

static void *webhooks_main(void *arg)
{
    int64_t last_queue = INT64_MIN / 2;

    (void)arg;
    while (!atomic_load(&w_stopping)) {
        int wait = webhooks_round(&last_queue);
        struct timespec ts;
        time_deadline_ts(wait, &ts);
        pthread_mutex_lock(&w_mu);
        while (!atomic_load(&w_stopping) && !w_poked && wait > 0 &&
               pthread_cond_timedwait(&w_cv, &w_mu, &ts) == 0)
            ;
        w_poked = false;
        pthread_mutex_unlock(&w_mu);
    }
    return NULL;
}

int webhooks_start(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || time_cond_init(&w_cv) != 0) {
        log_error("cannot start the webhook sender");
        return -1;
    }
    atomic_store(&w_stopping, false);
    if (pthread_create(&w_thread, NULL, webhooks_main, NULL) != 0) {
        log_error("cannot start the webhook sender");
        return -1;
    }
    w_started = true;
    return 0;
}

void webhooks_stop(bool wait)
{
    if (!w_started)
        return;
    pthread_mutex_lock(&w_mu);
    atomic_store(&w_stopping, true);
    pthread_cond_signal(&w_cv);
    pthread_mutex_unlock(&w_mu);
    if (!wait)
        return;
    pthread_join(w_thread, NULL);
    w_started = false;
    curl_global_cleanup();
}

void webhooks_poke(void)
{
    pthread_mutex_lock(&w_mu);
    w_poked = true;
    pthread_cond_signal(&w_cv);
    pthread_mutex_unlock(&w_mu);
}

void webhooks_metrics(struct buf *b)
{
    long long pending = atomic_load(&w_pending);

    buf_addf(b,
             "# HELP vexil_webhook_deliveries_total Webhook delivery attempts this instance made, "
             "by outcome.\n"
             "# TYPE vexil_webhook_deliveries_total counter\n"
             "vexil_webhook_deliveries_total{outcome=\"delivered\"} %llu\n"
             "vexil_webhook_deliveries_total{outcome=\"retry\"} %llu\n"
             "vexil_webhook_deliveries_total{outcome=\"failed\"} %llu\n"
             "# HELP vexil_webhook_sender 1 while this instance is the one that delivers.\n"
             "# TYPE vexil_webhook_sender gauge\nvexil_webhook_sender %d\n",
             atomic_load(&w_delivered), atomic_load(&w_retried), atomic_load(&w_failed),
             atomic_load(&w_holder) ? 1 : 0);
    if (pending >= 0)
        buf_addf(b,
                 "# HELP vexil_webhook_queue Webhook deliveries pending (counted every 5 s).\n"
                 "# TYPE vexil_webhook_queue gauge\nvexil_webhook_queue %lld\n"
                 "# HELP vexil_webhook_oldest_pending_seconds Age of the oldest pending "
                 "delivery's event.\n"
                 "# TYPE vexil_webhook_oldest_pending_seconds gauge\n"
                 "vexil_webhook_oldest_pending_seconds %lld\n",
                 pending, (long long)atomic_load(&w_oldest_s));
}
