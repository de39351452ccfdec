/* longpoll.h -- requests parked until the flag set changes or a deadline
 * passes.  A parked connection costs no thread: it is suspended in
 * libmicrohttpd and resumed from the listener (on change) or the timer
 * thread (on deadline).  The connection is opaque here: suspending and
 * resuming it are operations handed to longpoll_init, so this module needs
 * no libmicrohttpd of its own (and is unit-tested without it). */
#ifndef VX_LONGPOLL_H
#define VX_LONGPOLL_H

#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;

/* What parking, opening a stream or waiting on one came to. */
enum lp_result {
    LP_SUSPENDED,  /* registered and suspended: answer after the resume */
    LP_REGISTERED, /* longpoll_stream_open: the stream holds its place */
    LP_MOVED,      /* the version already moved: not suspended, answer now */
    LP_FULL,       /* max_waiters reached: not registered (503) */
    LP_CLOSING,    /* the daemon is stopping: not registered (503, or end the stream) */
};

enum lp_state {
    LP_IDLE = 0, /* not parked */
    LP_PARKED,
    LP_CHANGED,  /* resumed: the version moved */
    LP_TIMEOUT,  /* resumed: deadline passed */
    LP_SHUTDOWN, /* resumed: the daemon is stopping */
    LP_REVOKED,  /* resumed: the token it was made with is no longer live */
};

#define LP_TOKEN_LEN 32 /* the SHA-256 of a token's secret */

struct lp_waiter {
    struct MHD_Connection *conn;
    int64_t env_id; /* the environment whose version it waits on (struct vx_env) */
    int64_t since_version;
    int64_t deadline_us; /* monotonic */
    enum lp_state state;
    struct lp_waiter *prev, *next;
    bool repeat; /* a stream: stays registered across wake-ups */
    /* Set by the caller before parking or waiting: the token the request
     * holds, and the token epoch of the snapshot that found it live (see
     * longpoll_revoke). */
    uint8_t token[LP_TOKEN_LEN];
    uint64_t token_epoch;
};

/* How to suspend and resume a connection: in the daemon
 * MHD_suspend_connection and MHD_resume_connection.  suspend is called from
 * the thread that parks, resume from any thread; both with the long-poll
 * lock held. */
struct longpoll_ops {
    void (*suspend)(struct MHD_Connection *conn);
    void (*resume)(struct MHD_Connection *conn);
};

/* Set the cap and the operations (copied) and start the timer thread.
 * 0, or -1 when the thread cannot start. */
int longpoll_init(unsigned max_waiters, const struct longpoll_ops *ops);
void longpoll_shutdown(void); /* resume everything with LP_SHUTDOWN */
void longpoll_stop(void);     /* stop the timer thread */

/* Register w and suspend conn unless the version of w->env_id already
 * differs from since_version.  Call from the access handler only.  Returns LP_SUSPENDED,
 * LP_MOVED (then w->state is LP_CHANGED), LP_FULL or LP_CLOSING (then
 * w->state is LP_IDLE). */
enum lp_result longpoll_park(struct lp_waiter *w, struct MHD_Connection *conn,
                             int64_t since_version, int64_t deadline_us);

/* Streams (SSE): register w for the life of the stream, counted against
 * the cap like a parked request.  Returns LP_REGISTERED, LP_FULL or
 * LP_CLOSING.  Unregister with longpoll_forget. */
enum lp_result longpoll_stream_open(struct lp_waiter *w, struct MHD_Connection *conn);

/* From the stream's content reader when it has nothing to send: suspend its
 * connection until the version differs from since_version or deadline_us
 * (monotonic) passes; libmicrohttpd calls the reader again after the
 * resume.  Returns LP_SUSPENDED (the reader must then return 0), LP_MOVED
 * (the version already differs: not suspended, send it now) or LP_CLOSING
 * (shutting down, or w is no longer registered: end the stream). */
enum lp_result longpoll_stream_wait(struct lp_waiter *w, int64_t since_version,
                                    int64_t deadline_us);

/* The set of live tokens changed, to epoch (which only grows): resume
 * every suspended waiter whose token live() no longer knows with
 * LP_REVOKED.  From now on a park or stream wait made with an older epoch
 * answers LP_MOVED instead of suspending, so that a request that found its
 * token live just before the change cannot slip in and stay.  Any
 * thread. */
void longpoll_revoke(uint64_t epoch, bool (*live)(const uint8_t token[LP_TOKEN_LEN], void *cls),
                     void *cls);

/* Wake every parked waiter whose environment's version in the current
 * snapshot differs from its since_version (also when the environment is
 * gone).  Call after publishing.  Any thread. */
void longpoll_wake(void);

/* Unlink w if still registered (completion of a request). */
void longpoll_forget(struct lp_waiter *w);

/* Number of parked requests. */
unsigned longpoll_held(void);

#endif
