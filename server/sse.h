/* sse.h -- change streams as Server-Sent Events that hold no thread: the
 * OFREP change stream (ofrep.c) and Unleash's streaming mode (api_unleash.c)
 * (docs/ofrep.md, docs/unleash.md). */
#ifndef VX_SSE_H
#define VX_SSE_H

#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "snapshot.h"
#include "text.h"

/* Write into b the event that tells the client about environment e of s
 * (first: the stream's first event).  0, or -1 (out of memory: the
 * stream ends). */
typedef int (*sse_event_fn)(struct buf *b, const struct vx_snapshot *s, const struct vx_env *e,
                            bool first);

struct sse_opts {
    const char *preamble; /* written first (a comment, a retry: line) */
    int keepalive_s;      /* a comment line at least this often */
    sse_event_fn event;
    int64_t sent; /* the version the client already knows; -1: none */
};

/* Answer r with a stream of the events of environment e for token t: an
 * event now unless e's version is o->sent, then one each time the version
 * moves, a comment every keepalive_s; the stream ends when the token is
 * revoked, the environment deleted, or the server stops.  It counts
 * against --max-waiters; r's snapshot is let go.  Returns the handler's
 * result. */
enum http_rc sse_start(struct vx_req *r, const struct vx_token *t, const struct vx_env *e,
                       const struct sse_opts *o);

#endif
