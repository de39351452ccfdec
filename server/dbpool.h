/* dbpool.h -- a few threads that do the database work of requests, so
 * that no thread serving HTTP ever waits on PostgreSQL (docs/propagation.md).
 *
 * A task is embedded in its owner (the request, struct http_db_call) and
 * queued with dbpool_submit(); a pool thread runs it with that thread's own
 * connection (store_thread_conn(), NULL while the database is unreachable:
 * the task then reports it as unavailable).  Tasks run in the order they
 * came, as many at once as there are threads.  The same threads also run
 * the little background work that must hold neither an HTTP thread nor the
 * listener (compressing a new snapshot's body), as tasks that need no
 * connection. */
#ifndef VX_DBPOOL_H
#define VX_DBPOOL_H

#include <libpq-fe.h>
#include <stdbool.h>

struct db_task {
    void (*run)(struct db_task *t, PGconn *c); /* on a pool thread */
    bool needs_db;        /* false: background work that needs no connection (c NULL) */
    struct db_task *next; /* the queue's */
};

/* Start n threads.  0 or -1 (logged). */
int dbpool_start(unsigned n);

/* Queue t; a pool thread calls t->run(t, conn) soon.  Any thread. */
void dbpool_submit(struct db_task *t);

/* Tasks queued or running now. */
unsigned dbpool_busy(void);

/* Tasks waiting for a thread now (a gauge for /metrics). */
unsigned dbpool_queued(void);

/* Run what is queued, then stop and join the threads.  Call after
 * store_shutdown(), so that nothing waits long on the database. */
void dbpool_stop(void);

#endif
