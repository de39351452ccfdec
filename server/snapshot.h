/* snapshot.h -- the immutable in-memory view of everything the read path
 * needs: the environments with each one's flags (view.h), the segments and
 * the live tokens.
 *
 * Every read (client API, admin GETs, auth) is answered from one snapshot,
 * never from the database.  A snapshot is built by the listener -- whole,
 * or from the previous one plus what changed (snapshot_build) -- published
 * with one atomic pointer swap, and freed when the last reader lets go of
 * it.  Readers never take a lock: snapshot_acquire() publishes the pointer
 * it is about to use in a per-thread hazard slot, re-checks it, then bumps
 * the refcount (see snapshot.c).
 *
 * Environments whose version did not move share their view with the
 * previous snapshot, segments that did not change their object: a change
 * costs what it changed. */
#ifndef VX_SNAPSHOT_H
#define VX_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eval.h"
#include "flag.h"
#include "sha256.h"
#include "view.h"

#define TOKEN_ID_LEN 36 /* canonical uuid text */

/* What a token may do (docs/api.md §4): a frontend token only evaluates;
 * a client token also reads the flag set; an admin token does everything. */
enum vx_role { VX_ROLE_CLIENT = 0, VX_ROLE_ADMIN = 1, VX_ROLE_FRONTEND = 2 };

/* "admin", "client", "frontend"; and back (-1 when unknown). */
const char *role_name(enum vx_role role);
int role_parse(const char *s);

struct vx_token {
    char id[TOKEN_ID_LEN + 1];
    char *name; /* owned */
    enum vx_role role;
    char *env;                /* owned; the environment of a client or frontend token, else NULL */
    size_t env_index;         /* set by snapshot_build: env's index in envs[], else SIZE_MAX */
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

/* An environment (docs/api.md §6). */
struct vx_env {
    int64_t id; /* stable across snapshots; a waiter remembers it */
    char *name;
    char *description;
    bool is_default;
    int64_t version;
    int64_t created_at;   /* µs */
    struct vx_view *view; /* a reference */
};

/* A segment (docs/api.md §7): a named, sorted, distinct user list.  Shared
 * by reference between snapshots while it does not change. */
struct vx_segment {
    char *name;
    char *description;
    char **users;
    size_t n_users;
    int64_t created_at, updated_at; /* µs */
    int64_t revision;
    /* users as an open-addressing hash set, built with the snapshot that
     * first holds the segment: slot i holds index + 1 into users (0 =
     * empty); mask + 1 slots, at least twice n_users.  Evaluation asks it
     * for every flag that names the segment, so it answers with one hash
     * and, mostly, one comparison instead of a binary search. */
    uint32_t *slots;
    size_t mask;
    atomic_long refs;
};

struct vx_snapshot {
    int64_t version;     /* the sequence number of all changes (docs/propagation.md) */
    struct vx_env *envs; /* in creation order */
    size_t n_envs;
    size_t default_env;           /* index in envs */
    struct vx_segment **segments; /* sorted by name, a reference each */
    size_t n_segments;
    struct vx_token *tokens; /* not revoked; sorted by hash (memcmp) */
    size_t n_tokens;
    struct vx_token_use *token_use; /* per token, same order: mutable, see above */
    uint64_t token_epoch; /* moves when the set of live tokens does (set before publishing) */
    struct eval_segments eval_segments; /* evaluation's way to the segments above */
    atomic_long refs;
};

/* What a snapshot is built from; snapshot_build takes every array and
 * string in it, also on failure.
 *
 * envs: every environment now, in creation order, view NULL.  flags[i]:
 * for envs[i], every flag (in full) or the flags that changed (update);
 * n_flags[i] their count.  deleted: names of flags gone (update).
 * segments: every segment (in full) or the changed ones (update);
 * deleted_segments: names of segments gone.  tokens: every live token. */
struct snapshot_parts {
    int64_t version;
    struct vx_env *envs;
    size_t n_envs;
    struct vx_flag **flags;
    size_t *n_flags;
    char **deleted;
    size_t n_deleted;
    struct vx_segment *segments;
    size_t n_segments;
    char **deleted_segments;
    size_t n_deleted_segments;
    struct vx_token *tokens;
    size_t n_tokens;
};

/* Free what parts holds and empty it. */
void snapshot_parts_free(struct snapshot_parts *p);

/* The snapshot made of parts: in full when prev is NULL; else prev brought
 * up to date, sharing the view of every environment whose version did not
 * move and every unchanged segment.  refs = 1, or NULL on OOM (or with no
 * environment at all). */
struct vx_snapshot *snapshot_build(const struct vx_snapshot *prev, struct snapshot_parts *parts);

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

/* Sequence number (version) of the current snapshot, -1 before the first.
 * Lock-free. */
int64_t snapshot_version(void);

/* Is v the view of some environment of the current snapshot? */
bool snapshot_view_current(const struct vx_view *v);

/* The environment called name (len bytes), or NULL. */
const struct vx_env *snapshot_env(const struct vx_snapshot *s, const char *name, size_t len);

/* The environment with id, or NULL. */
const struct vx_env *snapshot_env_by_id(const struct vx_snapshot *s, int64_t id);

/* The segment called name, or NULL. */
const struct vx_segment *snapshot_segment(const struct vx_snapshot *s, const char *name,
                                          size_t len);

/* Evaluate flag i of env's view for user (NULL: absent), with its
 * precomputed hash prefix and s's segments. */
bool snapshot_eval(const struct vx_snapshot *s, const struct vx_view *v, size_t i, const char *user,
                   size_t user_len, enum vx_reason *reason);

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

/* Free the strings of a token, of an environment (and release its view),
 * of a segment held by value. */
void token_free(struct vx_token *t);
void env_free(struct vx_env *e);
void segment_clear(struct vx_segment *g);

/* Drop the current snapshot at shutdown. */
void snapshot_shutdown(void);

#endif
