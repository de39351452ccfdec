/* view.h -- the flag set of one environment as its clients see it: the
 * flags (definition plus that environment's state) sorted by name, and the
 * GET /flags body built from them.
 *
 * A view is immutable once built and reference-counted; a snapshot
 * (snapshot.h) holds one per environment, and a response body holds the
 * view it came from.  Each flag lives in a reference-counted piece (struct
 * vx_flag_piece) that holds everything derived from it: its hash prefix,
 * its JSON key and its serialised JSON object.  Views share the pieces of
 * the flags a change did not touch, so a change costs what changed plus one
 * array of pointers, and no second copy of the flag set exists while one is
 * applied.  An environment whose version did not move keeps its view
 * whole. */
#ifndef VX_VIEW_H
#define VX_VIEW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval.h"
#include "flag.h"

/* One flag and what is derived from it, shared by every view in which
 * the flag is unchanged.  Immutable once built; freed with its last
 * reference (view.c). */
struct vx_flag_piece {
    struct vx_flag flag;       /* owns its strings */
    struct murmur3_ctx prefix; /* eval_prefix() of the name */
    char *key;                 /* the name as a JSON string plus ':' */
    size_t key_len;
    char *json; /* ',' then flag_to_json() dumped compact */
    size_t json_len;
    atomic_long refs;
};

/* One piece of a body made of pieces (for an iovec). */
struct vx_span {
    const void *base;
    size_t len;
};

/* Bodies up to this size are also kept joined in one string, to be sent in
 * one piece: cheaper than streaming the spans for the usual flag set. */
#define VIEW_JOIN_MAX ((size_t)256 * 1024)

/* The gzip form of the GET /flags body, made at most once per view, on
 * first demand (view_gzip).  The one part of a view that changes after it
 * is published. */
struct vx_view_gzip {
    pthread_mutex_t mu;
    atomic_bool asked; /* someone has asked for it to be made (view_gzip_ask) */
    atomic_bool ready;
    unsigned char *data; /* NULL when building it failed */
    size_t len;
};

struct vx_view {
    int64_t version; /* the environment's version (docs/propagation.md) */
    /* Sorted by name (strcmp).  flags[i] is a shallow copy of
     * pieces[i]->flag: it shares the piece's strings (never flag_free it),
     * and lets readers index flags as one array. */
    struct vx_flag *flags;
    size_t n_flags;
    struct vx_flag_piece **pieces; /* per flag, a reference each */
    /* The GET /flags answer, {"version":N,"flags":[...]}: the head, each
     * piece's JSON (the first without its leading comma), the tail. */
    struct vx_span *body;
    size_t body_n;
    size_t body_len; /* sum of the spans' lengths */
    char *joined;    /* a small body (at most VIEW_JOIN_MAX) in one string, else NULL */
    char head[48];
    char **keys; /* per flag: pieces[i]->key */
    size_t *keys_len;
    size_t keys_total;         /* sum of keys_len */
    struct vx_view_gzip *gzip; /* mutable, see above */
    atomic_long refs;
};

/* The view at version that is prev (NULL: none) with the flags changed[]
 * added or replaced (by name) and the flags named deleted[] removed; it
 * shares every other flag's piece with prev, which is left as it was.
 * Takes ownership of changed[] and deleted[] (malloc'd arrays and their
 * strings), also on failure.  refs = 1, or NULL on OOM. */
struct vx_view *view_apply(const struct vx_view *prev, int64_t version, struct vx_flag *changed,
                           size_t n_changed, char **deleted, size_t n_deleted);

void view_retain(struct vx_view *v);
void view_release(struct vx_view *v);

/* The GET /flags body of v in one malloc'd string (caller frees); *len its
 * length.  NULL on OOM.  For tests and tools: the server sends the spans. */
char *view_body_copy(const struct vx_view *v, size_t *len);

/* The GET /flags body of v compressed with gzip, once view_gzip_build() has
 * made it; kept with v and valid while the caller holds v.  false while it
 * is not made yet (or could not be): answer the plain body then.  Never
 * waits. */
bool view_gzip(struct vx_view *v, const unsigned char **data, size_t *len);

/* Make the gzip body of v, once (a second call returns at once).  It takes
 * time in proportion to the body: it is done in the background, never on a
 * thread that serves requests (http_reply.c). */
void view_gzip_build(struct vx_view *v);

/* Record that a client wants the gzip body of v: true for the first caller
 * only, who then has it made. */
bool view_gzip_ask(struct vx_view *v);

/* Flag by name, or NULL. Binary search. */
const struct vx_flag *view_find(const struct vx_view *v, const char *name, size_t len);

#endif
