/* snapshot.h -- the immutable in-memory view of all flags and tokens.
 *
 * Every read (client API, admin GETs, auth) is answered from one snapshot,
 * never from the database.  A snapshot is built whole by the reloader (from
 * store_snapshot_load), published with one atomic pointer swap, and freed
 * when the last reader lets go of it.  Readers never take a lock:
 * snapshot_acquire() publishes the pointer it is about to use in a per-thread
 * hazard slot, re-checks it, then bumps the refcount (see snapshot.c). */
#ifndef VX_SNAPSHOT_H
#define VX_SNAPSHOT_H

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

struct vx_snapshot {
    int64_t version;       /* global flag-set version (docs/propagation.md) */
    struct vx_flag *flags; /* sorted by name (strcmp) */
    size_t n_flags;
    struct vx_token *tokens; /* not revoked; sorted by hash (memcmp) */
    size_t n_tokens;
    struct vx_token_use *token_use; /* per token, same order: mutable, see above */
    uint64_t token_epoch; /* moves when the set of live tokens does (set before publishing) */
    char *flags_body;     /* pre-serialised GET /flags answer */
    size_t flags_body_len;
    char **keys; /* per flag: its name as a JSON string plus ':' */
    size_t *keys_len;
    size_t keys_total;          /* sum of keys_len */
    struct murmur3_ctx *prefix; /* per flag: eval_prefix() of its name */
    atomic_long refs;
};

/* Build a snapshot; takes ownership of flags[] and tokens[] (malloc'd arrays
 * and their contents), sorts both, pre-serialises the GET /flags body.
 * Returns a snapshot with refs = 1 (the caller's), or NULL on OOM (then the
 * arrays have been freed). */
struct vx_snapshot *snapshot_new(int64_t version, struct vx_flag *flags, size_t n_flags,
                                 struct vx_token *tokens, size_t n_tokens);

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
