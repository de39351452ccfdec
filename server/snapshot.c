/* snapshot.c -- publish and read the current snapshot without locks, and
 * build a snapshot from its parts.
 *
 * The current snapshot is one atomic pointer.  A reader cannot simply load
 * it and bump its refcount: between the two the reloader might swap it out
 * and free it.  So each reading thread owns a hazard slot: it writes the
 * pointer it is about to use there, checks that the pointer is still
 * current, and only then takes its reference.  The reloader, after swapping
 * in a new snapshot, waits until no slot holds the old one before dropping
 * its own reference to it.  Readers never block; the single writer may spin
 * for the few nanoseconds a reader spends between those two steps.
 *
 * References are what let a response body outlive the request that
 * produced it: a body holds the view it came from (view.h).
 *
 * Building.  An environment whose version did not move since the previous
 * snapshot keeps its view (a reference); one whose version moved gets the
 * previous view with its changed flags applied (view_apply), which shares
 * every unchanged flag.  Segments are merged by name the same way. */
#include "snapshot.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "murmur3.h"
#include "timeutil.h"

#define HAZARD_SLOTS 256

static _Atomic(struct vx_snapshot *) current;
static _Atomic(struct vx_snapshot *) hazard[HAZARD_SLOTS];
static atomic_int hazard_next;
static _Thread_local int hazard_slot = -1;
static atomic_llong current_version = -1;
static atomic_long live; /* snapshots built and not yet freed */

static int cmp_token(const void *a, const void *b)
{
    return memcmp(((const struct vx_token *)a)->hash, ((const struct vx_token *)b)->hash,
                  SHA256_LEN);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_segment(const void *a, const void *b)
{
    return strcmp(((const struct vx_segment *)a)->name, ((const struct vx_segment *)b)->name);
}

const char *role_name(enum vx_role role)
{
    switch (role) {
    case VX_ROLE_ADMIN:
        return "admin";
    case VX_ROLE_FRONTEND:
        return "frontend";
    case VX_ROLE_CLIENT:
        break;
    }
    return "client";
}

int role_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "admin") == 0)
        return VX_ROLE_ADMIN;
    if (strcmp(s, "client") == 0)
        return VX_ROLE_CLIENT;
    if (strcmp(s, "frontend") == 0)
        return VX_ROLE_FRONTEND;
    return -1;
}

/* ---- parts ---------------------------------------------------------------- */

void token_free(struct vx_token *t)
{
    free(t->name);
    free(t->env);
    t->name = t->env = NULL;
}

void env_free(struct vx_env *e)
{
    free(e->name);
    free(e->description);
    view_release(e->view);
    memset(e, 0, sizeof *e);
}

void segment_clear(struct vx_segment *g)
{
    free(g->name);
    free(g->description);
    users_free(g->users, g->n_users);
    free(g->slots);
    memset(g, 0, sizeof *g);
}

static void segment_release(struct vx_segment *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    segment_clear(g);
    free(g);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void free_flags(struct vx_flag *flags, size_t n)
{
    for (size_t i = 0; flags != NULL && i < n; i++)
        flag_free(&flags[i]);
    free(flags);
}

void snapshot_parts_free(struct snapshot_parts *p)
{
    for (size_t i = 0; i < p->n_envs; i++) {
        if (p->envs != NULL) /* NULL once snapshot_build took them */
            env_free(&p->envs[i]);
        if (p->flags != NULL)
            free_flags(p->flags[i], p->n_flags != NULL ? p->n_flags[i] : 0);
    }
    free(p->envs);
    free(p->flags);
    free(p->n_flags);
    free_names(p->deleted, p->n_deleted);
    for (size_t i = 0; i < p->n_segments; i++)
        segment_clear(&p->segments[i]);
    free(p->segments);
    free_names(p->deleted_segments, p->n_deleted_segments);
    for (size_t i = 0; i < p->n_tokens; i++)
        token_free(&p->tokens[i]);
    free(p->tokens);
    memset(p, 0, sizeof *p);
}

/* ---- snapshots ------------------------------------------------------------ */

static void snapshot_free(struct vx_snapshot *s)
{
    for (size_t i = 0; i < s->n_envs; i++)
        env_free(&s->envs[i]);
    for (size_t i = 0; s->segments != NULL && i < s->n_segments; i++)
        segment_release(s->segments[i]);
    for (size_t i = 0; i < s->n_tokens; i++)
        token_free(&s->tokens[i]);
    free(s->envs);
    free(s->segments);
    free(s->tokens);
    free(s->token_use);
    free(s);
    atomic_fetch_sub(&live, 1);
}

/* The hash of a user in a segment's set.  Evaluating the flags of one
 * request asks for the same user many times: the last one is remembered
 * per thread (by its bytes: a buffer may be reused for another user). */
static uint32_t user_hash(const char *user, size_t len)
{
    static _Thread_local char last[FLAG_USER_MAX];
    static _Thread_local size_t last_len = SIZE_MAX;
    static _Thread_local uint32_t last_hash;

    if (len > FLAG_USER_MAX)
        return murmur3_x86_32(user, len, 0x5e6d);
    if (len != last_len || memcmp(user, last, len) != 0) {
        last_hash = murmur3_x86_32(user, len, 0x5e6d);
        memcpy(last, user, len);
        last_len = len;
    }
    return last_hash;
}

/* Fill g's hash set of users (struct vx_segment).  0 or -1 (OOM). */
static int segment_index(struct vx_segment *g)
{
    size_t size = 8;

    while (size < 2 * g->n_users)
        size *= 2;
    g->slots = calloc(size, sizeof *g->slots);
    if (g->slots == NULL || g->n_users >= UINT32_MAX)
        return -1;
    g->mask = size - 1;
    for (size_t i = 0; i < g->n_users; i++) {
        size_t at = murmur3_x86_32(g->users[i], strlen(g->users[i]), 0x5e6d) & g->mask;
        while (g->slots[at] != 0)
            at = (at + 1) & g->mask;
        g->slots[at] = (uint32_t)i + 1;
    }
    return 0;
}

static bool has_segment_user(const void *cls, const char *name, const char *user, size_t len)
{
    const struct vx_segment *g = snapshot_segment(cls, name, strlen(name));

    if (g == NULL || g->n_users == 0)
        return false;
    for (size_t at = user_hash(user, len) & g->mask; g->slots[at] != 0; at = (at + 1) & g->mask)
        if (name_cmp(g->users[g->slots[at] - 1], user, len) == 0)
            return true;
    return false;
}

/* The segments of prev merged with the changed (taken, sorted here) and
 * without the deleted: s->segments.  0 or -1 (OOM). */
static int build_segments(struct vx_snapshot *s, const struct vx_snapshot *prev,
                          struct snapshot_parts *p)
{
    size_t n_prev = prev != NULL ? prev->n_segments : 0, i = 0, j = 0, k = 0;

    if (p->n_segments > 1)
        qsort(p->segments, p->n_segments, sizeof *p->segments, cmp_segment);
    if (p->n_deleted_segments > 1)
        qsort(p->deleted_segments, p->n_deleted_segments, sizeof(char *), cmp_name);
    s->segments = calloc(n_prev + p->n_segments + 1, sizeof(struct vx_segment *));
    if (s->segments == NULL)
        return -1;
    while (i < n_prev || j < p->n_segments) {
        int c = i == n_prev          ? 1
                : j == p->n_segments ? -1
                                     : strcmp(prev->segments[i]->name, p->segments[j].name);
        if (c >= 0) {
            struct vx_segment *g = malloc(sizeof *g);
            if (g == NULL)
                return -1;
            *g = p->segments[j];
            memset(&p->segments[j++], 0, sizeof *g);
            atomic_init(&g->refs, 1);
            s->segments[s->n_segments++] = g;
            if (segment_index(g) != 0)
                return -1;
            i += c == 0;
            continue;
        }
        struct vx_segment *g = prev->segments[i++];
        while (k < p->n_deleted_segments && strcmp(p->deleted_segments[k], g->name) < 0)
            k++;
        if (k < p->n_deleted_segments && strcmp(p->deleted_segments[k], g->name) == 0)
            continue;
        atomic_fetch_add(&g->refs, 1);
        s->segments[s->n_segments++] = g;
    }
    return 0;
}

/* Each environment's view: kept from prev when its version did not move,
 * else prev's view with the changes applied (or built in full).  0 or -1. */
static int build_envs(struct vx_snapshot *s, const struct vx_snapshot *prev,
                      struct snapshot_parts *p)
{
    s->envs = p->envs;
    s->n_envs = p->n_envs;
    p->envs = NULL;
    for (size_t i = 0; i < s->n_envs; i++) {
        struct vx_env *e = &s->envs[i];
        const struct vx_env *old = prev != NULL ? snapshot_env_by_id(prev, e->id) : NULL;
        struct vx_flag *changed = p->flags != NULL ? p->flags[i] : NULL;
        size_t n_changed = p->n_flags != NULL ? p->n_flags[i] : 0;
        if (p->flags != NULL)
            p->flags[i] = NULL;
        if (p->n_flags != NULL)
            p->n_flags[i] = 0;
        if (e->is_default)
            s->default_env = i;
        if (old != NULL && old->version == e->version) {
            free_flags(changed, n_changed);
            view_retain(old->view);
            e->view = old->view;
            continue;
        }
        char **deleted = NULL;
        if (old != NULL && p->n_deleted > 0) {
            deleted = calloc(p->n_deleted, sizeof *deleted);
            for (size_t k = 0; deleted != NULL && k < p->n_deleted; k++)
                if ((deleted[k] = strdup(p->deleted[k])) == NULL) {
                    free_names(deleted, k);
                    deleted = NULL;
                }
            if (deleted == NULL) {
                free_flags(changed, n_changed);
                return -1;
            }
        }
        e->view = view_apply(old != NULL ? old->view : NULL, e->version, changed, n_changed,
                             deleted, deleted != NULL ? p->n_deleted : 0);
        if (e->view == NULL)
            return -1;
    }
    return 0;
}

/* Sort the tokens, resolve their environments, start their use counters. */
static int build_tokens(struct vx_snapshot *s, struct snapshot_parts *p)
{
    s->tokens = p->tokens;
    s->n_tokens = p->n_tokens;
    p->tokens = NULL;
    p->n_tokens = 0;
    if (s->n_tokens > 1)
        qsort(s->tokens, s->n_tokens, sizeof(*s->tokens), cmp_token);
    s->token_use = calloc(s->n_tokens ? s->n_tokens : 1, sizeof(*s->token_use));
    if (s->token_use == NULL)
        return -1;
    for (size_t i = 0; i < s->n_tokens; i++) {
        struct vx_token *t = &s->tokens[i];
        const struct vx_env *e = t->env != NULL ? snapshot_env(s, t->env, strlen(t->env)) : NULL;
        t->env_index = e != NULL ? (size_t)(e - s->envs) : SIZE_MAX;
        atomic_init(&s->token_use[i].last_used, t->last_used_at);
        s->token_use[i].flushed = t->last_used_at;
    }
    return 0;
}

struct vx_snapshot *snapshot_build(const struct vx_snapshot *prev, struct snapshot_parts *parts)
{
    struct vx_snapshot *s = calloc(1, sizeof(*s));
    bool ok = s != NULL && parts->n_envs > 0;

    if (s != NULL) {
        atomic_fetch_add(&live, 1);
        atomic_init(&s->refs, 1);
        s->version = parts->version;
        s->eval_segments = (struct eval_segments){has_segment_user, s};
    }
    ok = ok && build_segments(s, prev, parts) == 0;
    ok = ok && build_envs(s, prev, parts) == 0;
    ok = ok && build_tokens(s, parts) == 0;
    snapshot_parts_free(parts);
    if (!ok && s != NULL) {
        snapshot_free(s);
        s = NULL;
    }
    return s;
}

struct vx_snapshot *snapshot_acquire(void)
{
    struct vx_snapshot *s;

    if (hazard_slot < 0)
        hazard_slot = atomic_fetch_add(&hazard_next, 1) % HAZARD_SLOTS;
    do {
        s = atomic_load(&current);
        atomic_store(&hazard[hazard_slot], s);
    } while (s != atomic_load(&current));
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    atomic_store(&hazard[hazard_slot], NULL);
    return s;
}

void snapshot_retain(struct vx_snapshot *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void snapshot_release(struct vx_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        snapshot_free(s);
}

void snapshot_publish(struct vx_snapshot *s)
{
    struct vx_snapshot *old = atomic_exchange(&current, s);

    atomic_store(&current_version, s != NULL ? s->version : -1);
    if (old == NULL)
        return;
    for (int i = 0; i < HAZARD_SLOTS; i++)
        while (atomic_load(&hazard[i]) == old)
            sched_yield();
    snapshot_release(old);
}

long snapshot_live(void)
{
    return atomic_load(&live);
}

int64_t snapshot_version(void)
{
    return atomic_load(&current_version);
}

const struct vx_token *snapshot_find_token(const struct vx_snapshot *s,
                                           const uint8_t hash[SHA256_LEN])
{
    /* The search order depends only on the hash of the secret, which an
     * attacker cannot steer toward a stored one; the final comparison is in
     * constant time. */
    size_t lo = 0, hi = s->n_tokens;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(s->tokens[mid].hash, hash, SHA256_LEN);
        if (c == 0)
            return sha256_ct_equal(s->tokens[mid].hash, hash, SHA256_LEN) ? &s->tokens[mid] : NULL;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Do two token arrays, both sorted by hash, hold the same hashes? */
static bool same_hashes(const struct vx_token *a, size_t na, const struct vx_token *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (memcmp(a[i].hash, b[i].hash, SHA256_LEN) != 0)
            return false;
    return true;
}

bool snapshot_tokens_are(const struct vx_snapshot *s, struct vx_token *tokens, size_t n)
{
    if (n > 1)
        qsort(tokens, n, sizeof(*tokens), cmp_token);
    return same_hashes(s->tokens, s->n_tokens, tokens, n);
}

bool snapshot_same_tokens(const struct vx_snapshot *a, const struct vx_snapshot *b)
{
    return same_hashes(a->tokens, a->n_tokens, b->tokens, b->n_tokens);
}

void snapshot_token_used(struct vx_snapshot *s, const struct vx_token *t, int64_t now)
{
    struct vx_token_use *u = &s->token_use[t - s->tokens];

    if (now - atomic_load_explicit(&u->last_used, memory_order_relaxed) > VX_USEC_PER_SEC)
        atomic_store_explicit(&u->last_used, now, memory_order_relaxed);
}

bool snapshot_view_current(const struct vx_view *v)
{
    struct vx_snapshot *s = snapshot_acquire();
    bool found = false;

    for (size_t i = 0; s != NULL && i < s->n_envs && !found; i++)
        found = s->envs[i].view == v;
    snapshot_release(s);
    return found;
}

const struct vx_env *snapshot_env(const struct vx_snapshot *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n_envs; i++) /* a few, in creation order */
        if (name_cmp(s->envs[i].name, name, len) == 0)
            return &s->envs[i];
    return NULL;
}

const struct vx_env *snapshot_env_by_id(const struct vx_snapshot *s, int64_t id)
{
    for (size_t i = 0; i < s->n_envs; i++)
        if (s->envs[i].id == id)
            return &s->envs[i];
    return NULL;
}

static const char *segment_name_at(const void *list, size_t i)
{
    return ((struct vx_segment *const *)list)[i]->name;
}

const struct vx_segment *snapshot_segment(const struct vx_snapshot *s, const char *name, size_t len)
{
    size_t i = names_find(s->segments, s->n_segments, segment_name_at, name, len);

    return i < s->n_segments ? s->segments[i] : NULL;
}

bool snapshot_eval(const struct vx_snapshot *s, const struct vx_view *v, size_t i, const char *user,
                   size_t user_len, enum vx_reason *reason)
{
    return eval_flag_in(&v->flags[i], &v->pieces[i]->prefix, &s->eval_segments, user, user_len,
                        reason);
}

void snapshot_shutdown(void)
{
    snapshot_publish(NULL);
}
