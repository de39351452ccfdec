/* sse.c -- change streams that hold no thread (sse.h).
 *
 * A stream's response is a content-reader callback of unknown length
 * (chunked).  When the reader has nothing to send, it suspends its own
 * connection (longpoll_stream_wait, which libmicrohttpd allows from a
 * content reader) and returns 0; the listener resumes it when the
 * environment's version moves, or the long-poll timer when a keep-alive is
 * due, and libmicrohttpd calls the reader again.  Returning 0 without
 * suspending would make libmicrohttpd's internal polling spin.  The stream
 * is registered with the long-poll list once for its life
 * (lp_waiter.repeat), so it counts against --max-waiters, and SIGTERM ends
 * it through longpoll_shutdown like any held request.
 *
 * What an event says is the caller's (struct sse_opts.event); this file
 * only knows when one is due. */
#include "sse.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "longpoll.h"
#include "timeutil.h"

struct sse_stream {
    atomic_int refs;  /* the request's and the response's */
    struct vx_req *r; /* valid while the reader can run */
    struct sse_opts o;
    int64_t keepalive_us; /* monotonic: next comment due */
    bool started;         /* preamble written */
    bool evented;         /* an event written */
    struct buf out;       /* pending bytes for the client */
    size_t out_off;
};

static void stream_release(struct sse_stream *st)
{
    if (atomic_fetch_sub(&st->refs, 1) == 1) {
        buf_free(&st->out);
        free(st);
    }
}

/* Has the client closed its side?  libmicrohttpd does not watch a
 * suspended connection, so a stream checks at each wake-up: an EventSource
 * never sends anything after its request, so a readable end of file (or an
 * error) means it is gone, and its slot is freed now rather than after a
 * failed write. */
static bool peer_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;

    if (ci == NULL)
        return false;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* What is due now, written into st->out: 1 something, 0 suspended (the
 * reader returns 0), -1 the stream ends, -2 it ends with an error. */
static int stream_next(struct sse_stream *st)
{
    for (;;) {
        if (peer_gone(st->r->conn))
            return -2;
        struct vx_snapshot *s = snapshot_acquire();
        if (s == NULL)
            return -1;
        /* The token may have been revoked since the stream began. */
        const struct vx_env *e = snapshot_env_by_id(s, st->r->waiter.env_id);
        bool valid = snapshot_find_token(s, st->r->waiter.token) != NULL && e != NULL;
        int64_t v = e != NULL ? e->view->version : -1;
        int bad = 0;
        if (valid && v != st->o.sent) {
            bad = st->o.event(&st->out, s, e, !st->evented);
            st->evented = true;
        }
        /* A revocation after this check wakes the wait below, or keeps it
         * from suspending (longpoll_revoke). */
        st->r->waiter.token_epoch = s->token_epoch;
        snapshot_release(s);
        if (!valid || bad != 0)
            return -1;
        int64_t now = time_monotonic_us();
        if (v != st->o.sent) {
            st->o.sent = v;
        } else if (now >= st->keepalive_us) {
            buf_adds(&st->out, ": keep-alive\n\n");
        } else {
            enum lp_result rc = longpoll_stream_wait(&st->r->waiter, st->o.sent, st->keepalive_us);
            if (rc == LP_SUSPENDED)
                return 0;
            if (rc == LP_CLOSING)
                return -1;
            continue; /* the version or the tokens moved while we looked */
        }
        st->keepalive_us = now + st->o.keepalive_s * VX_USEC_PER_SEC;
        return 1;
    }
}

/* libmicrohttpd's content reader.  Runs on the connection's worker thread,
 * never concurrently with itself, and never after the request completed. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sse_stream *st = cls;

    (void)pos;
    if (st->out_off == st->out.len) {
        st->out_off = st->out.len = 0;
        if (!st->started) {
            st->started = true;
            buf_adds(&st->out, st->o.preamble);
        } else {
            switch (stream_next(st)) {
            case 0:
                return 0; /* suspended: called again after the resume */
            case -1:
                return MHD_CONTENT_READER_END_OF_STREAM;
            case -2:
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
        }
    }
    size_t n = st->out.len - st->out_off;
    if (n > max)
        n = max;
    memcpy(buf, st->out.p + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

/* The request's end (rh_cleaner): the reader may no longer reach it. */
static void stream_cleanup(void *cls)
{
    struct sse_stream *st = cls;

    st->r = NULL;
    stream_release(st);
}

static void stream_response_free(void *cls)
{
    stream_release(cls);
}

enum http_rc sse_start(struct vx_req *r, const struct vx_token *t, const struct vx_env *e,
                       const struct sse_opts *o)
{
    struct sse_stream *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return http_reply_error(r, 503, VX_E_UNAVAILABLE, "out of memory");
    r->waiter.env_id = e->id;
    atomic_init(&st->refs, 1);
    st->r = r;
    st->o = *o;
    memcpy(r->waiter.token, t->hash, LP_TOKEN_LEN); /* also what the reader checks */
    st->keepalive_us = time_monotonic_us() + o->keepalive_s * VX_USEC_PER_SEC;
    r->rh_ctx = st;
    r->rh_cleaner = stream_cleanup;

    enum lp_result open = longpoll_stream_open(&r->waiter, r->conn);
    if (open != LP_REGISTERED)
        return http_reply_not_held(r, open);
    atomic_fetch_add(&st->refs, 1); /* the response's */
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_response_free);
    if (resp == NULL) {
        stream_release(st);
        return HTTP_CLOSE;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum http_rc rc = http_queue(r, 200, resp, "text/event-stream");
    /* The stream lives for hours and reads the current snapshot at each
     * wake-up: it must not keep the one it started with alive. */
    http_release_snapshot(r);
    return rc;
}
