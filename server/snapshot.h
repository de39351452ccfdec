/* snapshot.h -- the immutable in-memory view of all flags and tokens.
 *
 * Every read (client API, admin GETs, auth) is answered from one snapshot,
 * never from the database.  A snapshot is built by the listener -- whole
 * (snapshot_new, from store_snapshot_load) or from the previous one plus
 * what changed (snapshot_apply) -- published with one atomic pointer swap,
 * and freed when the last reader lets go of it.  Readers never take a lock:
 * snapshot_acquire() publishes the pointer it is about to use in a
 * per-thread hazard slot, re-checks it, then bumps the refcount (see
 * snapshot.c).
 *
 * Each flag lives in a reference-counted piece (struct vx_flag_piece) that
 * holds everything derived from it: its hash prefix, its JSON key and its
 * serialised JSON object.  Snapshots share the pieces of the flags a change
 * did not touch, so a change costs what changed plus one array of pointers,
 * and no second copy of the flag set exists while one is applied. */
#ifndef VX_SNAPSHOT_H
#define VX_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval.h"
#include "flag.h"
#include "sha256.h"

#define TOKEN_ID_LEN 36 /* canonical uuid text */

enum vx_role { VX_ROLE_CLIENT = 0, VX_ROLE_ADMIN = 1 };

struct vx_token {
    char id[TOKEN_ID_LEN + 1];
    char *name; /* owned */
    enum vx_role role;
    uint8_t hash[SHA256_LEN]; /* SHA-256 of the secret */
    int64_t last_used_at;     /* µs, as loaded from the database; 0 = never */
};

/* The one part of a snapshot that changes after it is published: when each
 * token was last used.  Kept apart from the immutable tokens, so nothing
 * writes through a pointer to them.  last_used is stamped by auth from any
 * thread (relaxed atomics); flushed, the value last written to the
 * database, is touched by the listener thread alone. */
struct vx_token_use {
    atomic_llong last_used; /* µs */
    int64_t flushed;
};

/* One flag and what is derived from it, shared by every snapshot in which
 * the flag is unchanged.  Immutable once built; freed with its last
 * reference (snapshot.c). */
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

/* The gzip form of the GET /flags body, made at most once per snapshot, on
 * first demand (snapshot_gzip).  The one other part of a snapshot that
 * changes after it is published, apart from the token use. */
/* Bodies up to this size are also kept joined in one string, to be sent in
 * one piece: cheaper than streaming the spans for the usual flag set. */
#define SNAPSHOT_JOIN_MAX ((size_t)256 * 1024)

struct vx_snapshot_gzip {
    pthread_mutex_t mu;
    atomic_bool asked; /* someone has asked for it to be made (snapshot_gzip_ask) */
    atomic_bool ready;
    unsigned char *data; /* NULL when building it failed */
    size_t len;
};

struct vx_snapshot {
    int64_t version; /* global flag-set version (docs/propagation.md) */
    /* Sorted by name (strcmp).  flags[i] is a shallow copy of
     * pieces[i]->flag: it shares the piece's strings (never flag_free it),
     * and lets readers index flags as one array. */
    struct vx_flag *flags;
    size_t n_flags;
    struct vx_flag_piece **pieces; /* per flag, a reference each */
    struct vx_token *tokens;       /* not revoked; sorted by hash (memcmp) */
    size_t n_tokens;
    struct vx_token_use *token_use; /* per token, same order: mutable, see above */
    uint64_t token_epoch; /* moves when the set of live tokens does (set before publishing) */
    /* The GET /flags answer, {"version":N,"flags":[...]}: the head, each
     * piece's JSON (the first without its leading comma), the tail. */
    struct vx_span *body;
    size_t body_n;
    size_t body_len; /* sum of the spans' lengths */
    char *joined;    /* a small body (at most SNAPSHOT_JOIN_MAX) in one string, else NULL */
    char head[48];
    char **keys; /* per flag: pieces[i]->key */
    size_t *keys_len;
    size_t keys_total;             /* sum of keys_len */
    struct vx_snapshot_gzip *gzip; /* mutable, see above */
    atomic_long refs;
};

/* Build a snapshot; takes ownership of flags[] and tokens[] (malloc'd arrays
 * and their contents), sorts both, pre-serialises each flag.  Returns a
 * snapshot with refs = 1 (the caller's), or NULL on OOM (then the arrays
 * have been freed). */
struct vx_snapshot *snapshot_new(int64_t version, struct vx_flag *flags, size_t n_flags,
                                 struct vx_token *tokens, size_t n_tokens);

/* The snapshot at version that is prev with the flags changed[] added or
 * replaced (by name) and the flags named deleted[] removed; it shares every
 * other flag's piece with prev, which is left as it was.  Takes ownership of
 * changed[], deleted[] (malloc'd strings) and tokens[] (the live tokens
 * now), as snapshot_new does, also on failure.  refs = 1, or NULL on OOM. */
struct vx_snapshot *snapshot_apply(const struct vx_snapshot *prev, int64_t version,
                                   struct vx_flag *changed, size_t n_changed, char **deleted,
                                   size_t n_deleted, struct vx_token *tokens, size_t n_tokens);

/* The GET /flags body of s in one malloc'd string (caller frees); *len its
 * length.  NULL on OOM.  For tests and tools: the server sends the spans. */
char *snapshot_body_copy(const struct vx_snapshot *s, size_t *len);

/* The GET /flags body of s compressed with gzip, once snapshot_gzip_build()
 * has made it; kept with s and valid while the caller holds s.  false while
 * it is not made yet (or could not be): answer the plain body then.  Never
 * waits. */
bool snapshot_gzip(struct vx_snapshot *s, const unsigned char **data, size_t *len);

/* Make the gzip body of s, once (a second call returns at once).  It takes
 * time in proportion to the body: it is done in the background, never on a
 * thread that serves requests (http_reply.c). */
void snapshot_gzip_build(struct vx_snapshot *s);

/* Record that a client wants the gzip body of s: true for the first caller
 * only, who then has it made. */
bool snapshot_gzip_ask(struct vx_snapshot *s);

/* Take a reference to the current snapshot (NULL before the first publish).
 * Lock-free.  Pair with snapshot_release(). */
struct vx_snapshot *snapshot_acquire(void);
void snapshot_retain(struct vx_snapshot *s);
void snapshot_release(struct vx_snapshot *s);

/* Make s current (the snapshot module takes over the caller's reference) and
 * release the previous one.  Called by one thread at a time (the reloader). */
void snapshot_publish(struct vx_snapshot *s);

/* Snapshots built and not yet freed: the current one, plus any that a
 * request or a response still holds. */
long snapshot_live(void);

/* Version of the current snapshot, -1 before the first. Lock-free. */
int64_t snapshot_version(void);

/* Evaluate flag i of s for user (NULL: absent), with its precomputed
 * hash prefix. */
bool snapshot_eval(const struct vx_snapshot *s, size_t i, const char *user, size_t user_len,
                   enum vx_reason *reason);

/* Flag by name, or NULL. Binary search. */
const struct vx_flag *snapshot_find(const struct vx_snapshot *s, const char *name, size_t len);

/* Token whose hash equals hash, or NULL.  Compares in constant time. */
const struct vx_token *snapshot_find_token(const struct vx_snapshot *s,
                                           const uint8_t hash[SHA256_LEN]);

/* Does s hold exactly the live tokens tokens[0..n) (sorted here by hash)? */
bool snapshot_tokens_are(const struct vx_snapshot *s, struct vx_token *tokens, size_t n);

/* Do a and b hold the same live tokens? */
bool snapshot_same_tokens(const struct vx_snapshot *a, const struct vx_snapshot *b);

/* Stamp token t (one of s's) as used at now (µs).  At most about once a
 * second per token, to keep the cache line quiet under load. */
void snapshot_token_used(struct vx_snapshot *s, const struct vx_token *t, int64_t now);

/* Drop the current snapshot at shutdown. */
void snapshot_shutdown(void);

#endif
