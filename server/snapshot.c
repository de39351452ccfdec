/* snapshot.c -- publish and read the current snapshot without locks.
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
 * References are what let a response body (flags_body) outlive the request
 * that produced it: MHD frees it later through a callback that releases. */
#include "snapshot.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "httputil.h"
#include "timeutil.h"

#define HAZARD_SLOTS 256

static _Atomic(struct vx_snapshot *) current;
static _Atomic(struct vx_snapshot *) hazard[HAZARD_SLOTS];
static atomic_int hazard_next;
static _Thread_local int hazard_slot = -1;
static atomic_llong current_version = -1;
static atomic_long live; /* snapshots built and not yet freed */

static int cmp_flag(const void *a, const void *b)
{
    return strcmp(((const struct vx_flag *)a)->name, ((const struct vx_flag *)b)->name);
}

static int cmp_token(const void *a, const void *b)
{
    return memcmp(((const struct vx_token *)a)->hash, ((const struct vx_token *)b)->hash,
                  SHA256_LEN);
}

static void snapshot_free(struct vx_snapshot *s)
{
    for (size_t i = 0; i < s->n_flags; i++) {
        flag_free(&s->flags[i]);
        if (s->keys != NULL)
            free(s->keys[i]);
    }
    for (size_t i = 0; i < s->n_tokens; i++)
        free(s->tokens[i].name);
    free(s->flags);
    free(s->tokens);
    free(s->token_use);
    free(s->keys);
    free(s->keys_len);
    free(s->prefix);
    free(s->flags_body);
    free(s);
    atomic_fetch_sub(&live, 1);
}

/* The GET /flags body: {"version":N,"flags":[...]} */
static int build_body(struct vx_snapshot *s)
{
    json_t *arr = json_array();
    json_t *root = json_pack("{s:I, s:o}", "version", (json_int_t)s->version, "flags", arr);

    if (root == NULL)
        return -1;
    for (size_t i = 0; i < s->n_flags; i++) {
        json_t *f = flag_to_json(&s->flags[i]);
        if (f == NULL || json_array_append_new(arr, f) != 0) {
            json_decref(root);
            return -1;
        }
    }
    s->flags_body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s->flags_body == NULL)
        return -1;
    s->flags_body_len = strlen(s->flags_body);
    return 0;
}

/* Per flag: its JSON key and its hash prefix, so answering a user costs
 * neither escaping nor hashing the names. */
static int build_keys(struct vx_snapshot *s)
{
    size_t n = s->n_flags ? s->n_flags : 1;

    s->keys = calloc(n, sizeof(*s->keys));
    s->keys_len = calloc(n, sizeof(*s->keys_len));
    s->prefix = calloc(n, sizeof(*s->prefix));
    if (s->keys == NULL || s->keys_len == NULL || s->prefix == NULL)
        return -1;
    for (size_t i = 0; i < s->n_flags; i++) {
        eval_prefix(s->flags[i].name, strlen(s->flags[i].name), &s->prefix[i]);
        struct buf b = {0};
        const char *name = s->flags[i].name;
        if (buf_add_json_string(&b, name, strlen(name)) != 0 || buf_add(&b, ":", 1) != 0) {
            buf_free(&b);
            return -1;
        }
        s->keys[i] = buf_take(&b, &s->keys_len[i]);
        s->keys_total += s->keys_len[i];
    }
    return 0;
}

/* The mutable per-token counters, starting from the stored last use. */
static int build_token_use(struct vx_snapshot *s)
{
    s->token_use = calloc(s->n_tokens ? s->n_tokens : 1, sizeof(*s->token_use));
    if (s->token_use == NULL)
        return -1;
    for (size_t i = 0; i < s->n_tokens; i++) {
        atomic_init(&s->token_use[i].last_used, s->tokens[i].last_used_at);
        s->token_use[i].flushed = s->tokens[i].last_used_at;
    }
    return 0;
}

struct vx_snapshot *snapshot_new(int64_t version, struct vx_flag *flags, size_t n_flags,
                                 struct vx_token *tokens, size_t n_tokens)
{
    struct vx_snapshot *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        for (size_t i = 0; i < n_flags; i++)
            flag_free(&flags[i]);
        for (size_t i = 0; i < n_tokens; i++)
            free(tokens[i].name);
        free(flags);
        free(tokens);
        return NULL;
    }
    atomic_fetch_add(&live, 1);
    s->version = version;
    s->flags = flags;
    s->n_flags = n_flags;
    s->tokens = tokens;
    s->n_tokens = n_tokens;
    atomic_init(&s->refs, 1);
    if (n_flags > 1)
        qsort(flags, n_flags, sizeof(*flags), cmp_flag);
    if (n_tokens > 1)
        qsort(tokens, n_tokens, sizeof(*tokens), cmp_token);
    if (build_body(s) != 0 || build_keys(s) != 0 || build_token_use(s) != 0) {
        snapshot_free(s);
        return NULL;
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

bool snapshot_eval(const struct vx_snapshot *s, size_t i, const char *user, size_t user_len,
                   enum vx_reason *reason)
{
    return eval_flag_prefixed(&s->flags[i], &s->prefix[i], user, user_len, reason);
}

const struct vx_flag *snapshot_find(const struct vx_snapshot *s, const char *name, size_t len)
{
    size_t lo = 0, hi = s->n_flags;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *n = s->flags[mid].name;
        int c = strncmp(n, name, len);
        if (c == 0 && n[len] != '\0')
            c = 1;
        if (c == 0)
            return &s->flags[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
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

bool snapshot_tokens_are(const struct vx_snapshot *s, struct vx_token *tokens, size_t n)
{
    if (s->n_tokens != n)
        return false;
    if (n > 1)
        qsort(tokens, n, sizeof(*tokens), cmp_token);
    for (size_t i = 0; i < n; i++)
        if (memcmp(s->tokens[i].hash, tokens[i].hash, SHA256_LEN) != 0)
            return false;
    return true;
}

bool snapshot_same_tokens(const struct vx_snapshot *a, const struct vx_snapshot *b)
{
    if (a->n_tokens != b->n_tokens)
        return false;
    for (size_t i = 0; i < a->n_tokens; i++)
        if (memcmp(a->tokens[i].hash, b->tokens[i].hash, SHA256_LEN) != 0)
            return false;
    return true;
}

void snapshot_token_used(struct vx_snapshot *s, const struct vx_token *t, int64_t now)
{
    struct vx_token_use *u = &s->token_use[t - s->tokens];

    if (now - atomic_load_explicit(&u->last_used, memory_order_relaxed) > VX_USEC_PER_SEC)
        atomic_store_explicit(&u->last_used, now, memory_order_relaxed);
}

void snapshot_shutdown(void)
{
    snapshot_publish(NULL);
}
