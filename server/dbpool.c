/* dbpool.c -- the database threads.
 *
 * One queue (a singly linked FIFO of tasks embedded in their owners) under
 * one mutex, and n threads that take from it.  The HTTP layer suspends a
 * request's connection, submits its task, and the task resumes the
 * connection when done: the epoll threads that serve reads and wake
 * long-polls keep running while a write waits on a lock or on a hung
 * database.  Every wait of a task on the database is itself bounded
 * (store_conn.c), so a stuck database holds a pool thread for seconds, not
 * minutes; at shutdown store_shutdown() ends even those waits, and the
 * threads drain the queue quickly before they are joined. */
#include "dbpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "store.h"

#define DBPOOL_MAX 64

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct db_task *q_head, *q_tail;
static bool q_stopping;
static atomic_uint q_queued;
static atomic_uint q_busy; /* queued + running */
static pthread_t q_threads[DBPOOL_MAX];
static unsigned q_n;

static void *dbpool_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q_lock);
        while (q_head == NULL && !q_stopping)
            pthread_cond_wait(&q_cond, &q_lock);
        struct db_task *t = q_head;
        if (t == NULL) { /* stopping, and nothing left */
            pthread_mutex_unlock(&q_lock);
            return NULL;
        }
        q_head = t->next;
        if (q_head == NULL)
            q_tail = NULL;
        atomic_fetch_sub(&q_queued, 1);
        pthread_mutex_unlock(&q_lock);
        t->next = NULL;
        t->run(t, t->needs_db ? store_thread_conn() : NULL); /* t may be gone after this */
        atomic_fetch_sub(&q_busy, 1);
    }
}

int dbpool_start(unsigned n)
{
    q_stopping = false;
    for (q_n = 0; q_n < n && q_n < DBPOOL_MAX; q_n++) {
        if (pthread_create(&q_threads[q_n], NULL, dbpool_main, NULL) != 0) {
            log_error("dbpool: cannot start database thread %u", q_n + 1);
            dbpool_stop();
            return -1;
        }
    }
    return 0;
}

void dbpool_submit(struct db_task *t)
{
    t->next = NULL;
    atomic_fetch_add(&q_busy, 1);
    atomic_fetch_add(&q_queued, 1);
    pthread_mutex_lock(&q_lock);
    if (q_tail != NULL)
        q_tail->next = t;
    else
        q_head = t;
    q_tail = t;
    pthread_cond_signal(&q_cond);
    pthread_mutex_unlock(&q_lock);
}

unsigned dbpool_busy(void)
{
    return atomic_load(&q_busy);
}

unsigned dbpool_queued(void)
{
    return atomic_load(&q_queued);
}

void dbpool_stop(void)
{
    pthread_mutex_lock(&q_lock);
    q_stopping = true;
    pthread_cond_broadcast(&q_cond);
    pthread_mutex_unlock(&q_lock);
    for (unsigned i = 0; i < q_n; i++)
        pthread_join(q_threads[i], NULL);
    q_n = 0;
}
