/* longpoll.h -- requests parked until the flag set changes or a deadline
 * passes.  A parked connection costs no thread: it is suspended in
 * libmicrohttpd and resumed from the listener (on change) or the timer
 * thread (on deadline). */
#ifndef VX_LONGPOLL_H
#define VX_LONGPOLL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

enum lp_state {
    LP_IDLE = 0, /* not parked */
    LP_PARKED,
    LP_CHANGED,  /* resumed: the version moved */
    LP_TIMEOUT,  /* resumed: deadline passed */
    LP_SHUTDOWN, /* resumed: the daemon is stopping */
};

struct lp_waiter {
    struct MHD_Connection *conn;
    int64_t since_version;
    int64_t deadline_us; /* monotonic */
    enum lp_state state;
    struct lp_waiter *prev, *next;
    bool repeat; /* a stream: stays registered across wake-ups */
};

int longpoll_init(unsigned max_waiters);
void longpoll_shutdown(void); /* resume everything with LP_SHUTDOWN */
void longpoll_stop(void);     /* stop the timer thread */

/* Register w and suspend conn unless the version already moved past
 * since_version.  Call from the access handler only.
 * Returns 1 parked, 0 version already moved (not parked), -1 cap reached,
 * -2 shutting down. */
int longpoll_park(struct lp_waiter *w, struct MHD_Connection *conn, int64_t since_version,
                  int64_t deadline_us);

/* Streams (SSE): register w for the life of the stream, counted against
 * the cap like a parked request.  Returns 0, -1 cap reached, -2 shutting
 * down.  Unregister with longpoll_forget. */
int longpoll_stream_open(struct lp_waiter *w, struct MHD_Connection *conn);

/* From the stream's content reader when it has nothing to send: suspend its
 * connection until the version differs from since_version or deadline_us
 * (monotonic) passes; libmicrohttpd calls the reader again after the
 * resume.  Returns 1 suspended (the reader must then return 0), 0 the
 * version already differs (not suspended), -2 shutting down (end the
 * stream). */
int longpoll_stream_wait(struct lp_waiter *w, int64_t since_version, int64_t deadline_us);

/* Wake every parked waiter whose since_version < version. Any thread. */
void longpoll_wake(int64_t version);

/* Unlink w if still registered (completion of a request). */
void longpoll_forget(struct lp_waiter *w);

/* Number of parked requests. */
unsigned longpoll_held(void);

#endif
