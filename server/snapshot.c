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
 * References are what let a response body (the spans of body) outlive the
 * request that produced it: MHD frees it later through a callback that
 * releases.
 *
 * A flag's piece (snapshot.h) is built once, when the flag is loaded or
 * changed, and shared by reference with every later snapshot until the flag
 * changes again: snapshot_apply() merges the previous snapshot's sorted
 * pieces with the changed flags in one pass, taking a reference to each
 * unchanged piece.  Per snapshot there remain only arrays of pointers (and
 * the flags as shallow copies, so that readers index one array as before);
 * the gzip body is made on first demand, once. */
#include "snapshot.h"

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "text.h"
#include "timeutil.h"

#define HAZARD_SLOTS 256

static _Atomic(struct vx_snapshot *) current;
static _Atomic(struct vx_snapshot *) hazard[HAZARD_SLOTS];
static atomic_int hazard_next;
static _Thread_local int hazard_slot = -1;
static atomic_llong current_version = -1;
static atomic_long live; /* snapshots built and not yet freed */

/* zlib's fastest level: a 10 000-flag body with a million users compresses
 * in a fraction of the time of the default level, to well under a fifth. */
#define SNAPSHOT_GZIP_LEVEL 1

static int cmp_flag(const void *a, const void *b)
{
    return strcmp(((const struct vx_flag *)a)->name, ((const struct vx_flag *)b)->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_token(const void *a, const void *b)
{
    return memcmp(((const struct vx_token *)a)->hash, ((const struct vx_token *)b)->hash,
                  SHA256_LEN);
}

/* ---- pieces --------------------------------------------------------------- */

static void piece_release(struct vx_flag_piece *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    flag_free(&p->flag);
    free(p->key);
    free(p->json);
    free(p);
}

/* A piece made from *f, whose strings it takes (also on failure: *f is
 * then freed).  refs = 1; NULL on OOM. */
static struct vx_flag_piece *piece_new(struct vx_flag *f)
{
    struct vx_flag_piece *p = calloc(1, sizeof(*p));
    struct buf b = {0};
    json_t *j;
    char *text;

    if (p == NULL) {
        flag_free(f);
        return NULL;
    }
    p->flag = *f;
    memset(f, 0, sizeof(*f));
    atomic_init(&p->refs, 1);
    const char *name = p->flag.name;
    eval_prefix(name, strlen(name), &p->prefix);
    if (buf_add_json_string(&b, name, strlen(name)) != 0 || buf_add(&b, ":", 1) != 0)
        goto fail;
    p->key = buf_take(&b, &p->key_len);
    j = flag_to_json(&p->flag);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        goto fail;
    int bad = buf_add(&b, ",", 1) | buf_adds(&b, text);
    free(text);
    if (bad != 0)
        goto fail;
    p->json = buf_take(&b, &p->json_len);
    return p;

fail:
    buf_free(&b);
    piece_release(p);
    return NULL;
}

/* ---- snapshots ------------------------------------------------------------ */

static void free_tokens(struct vx_token *tokens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tokens[i].name);
    free(tokens);
}

static void snapshot_free(struct vx_snapshot *s)
{
    for (size_t i = 0; s->pieces != NULL && i < s->n_flags; i++)
        piece_release(s->pieces[i]);
    free_tokens(s->tokens, s->n_tokens);
    free(s->pieces);
    free(s->flags);
    free(s->token_use);
    free(s->keys);
    free(s->keys_len);
    free(s->body);
    free(s->joined);
    if (s->gzip != NULL) {
        pthread_mutex_destroy(&s->gzip->mu);
        free(s->gzip->data);
        free(s->gzip);
    }
    free(s);
    atomic_fetch_sub(&live, 1);
}

/* What readers index: the flags as one array, their keys, the body's
 * spans.  All point into the pieces. */
static int build_index(struct vx_snapshot *s)
{
    size_t n = s->n_flags ? s->n_flags : 1;
    static const char tail[] = "]}";

    s->flags = calloc(n, sizeof(*s->flags));
    s->keys = calloc(n, sizeof(*s->keys));
    s->keys_len = calloc(n, sizeof(*s->keys_len));
    s->body = calloc(s->n_flags + 2, sizeof(*s->body));
    if (s->flags == NULL || s->keys == NULL || s->keys_len == NULL || s->body == NULL)
        return -1;
    int hl =
        snprintf(s->head, sizeof(s->head), "{\"version\":%lld,\"flags\":[", (long long)s->version);
    s->body[0] = (struct vx_span){s->head, (size_t)hl};
    s->body_len = (size_t)hl;
    for (size_t i = 0; i < s->n_flags; i++) {
        const struct vx_flag_piece *p = s->pieces[i];
        size_t skip = i == 0; /* the first flag goes without its comma */
        s->flags[i] = p->flag;
        s->keys[i] = p->key;
        s->keys_len[i] = p->key_len;
        s->keys_total += p->key_len;
        s->body[i + 1] = (struct vx_span){p->json + skip, p->json_len - skip};
        s->body_len += p->json_len - skip;
    }
    s->body[s->n_flags + 1] = (struct vx_span){tail, sizeof(tail) - 1};
    s->body_n = s->n_flags + 2;
    s->body_len += sizeof(tail) - 1;
    if (s->body_len <= SNAPSHOT_JOIN_MAX) {
        size_t len;
        s->joined = snapshot_body_copy(s, &len);
        if (s->joined == NULL)
            return -1;
    }
    return 0;
}

/* The mutable per-token counters, starting from the stored last use, and
 * the lazily built gzip body. */
static int build_mutable(struct vx_snapshot *s)
{
    s->token_use = calloc(s->n_tokens ? s->n_tokens : 1, sizeof(*s->token_use));
    s->gzip = calloc(1, sizeof(*s->gzip));
    if (s->token_use == NULL || s->gzip == NULL)
        return -1;
    for (size_t i = 0; i < s->n_tokens; i++) {
        atomic_init(&s->token_use[i].last_used, s->tokens[i].last_used_at);
        s->token_use[i].flushed = s->tokens[i].last_used_at;
    }
    if (pthread_mutex_init(&s->gzip->mu, NULL) != 0) {
        free(s->gzip);
        s->gzip = NULL;
        return -1;
    }
    return 0;
}

/* A snapshot with the tokens (taken) and room for n pieces, or NULL (the
 * tokens freed). */
static struct vx_snapshot *snapshot_alloc(int64_t version, size_t n, struct vx_token *tokens,
                                          size_t n_tokens)
{
    struct vx_snapshot *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        free_tokens(tokens, n_tokens);
        return NULL;
    }
    atomic_fetch_add(&live, 1);
    atomic_init(&s->refs, 1);
    s->version = version;
    s->tokens = tokens;
    s->n_tokens = n_tokens;
    if (n_tokens > 1)
        qsort(tokens, n_tokens, sizeof(*tokens), cmp_token);
    s->pieces = calloc(n ? n : 1, sizeof(struct vx_flag_piece *));
    if (s->pieces == NULL || build_mutable(s) != 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

/* The pieces are in place: index them.  s, or NULL (s freed). */
static struct vx_snapshot *snapshot_finish(struct vx_snapshot *s)
{
    if (build_index(s) != 0) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

static void free_flags(struct vx_flag *flags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        flag_free(&flags[i]);
    free(flags);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

struct vx_snapshot *snapshot_new(int64_t version, struct vx_flag *flags, size_t n_flags,
                                 struct vx_token *tokens, size_t n_tokens)
{
    return snapshot_apply(NULL, version, flags, n_flags, NULL, 0, tokens, n_tokens);
}

struct vx_snapshot *snapshot_apply(const struct vx_snapshot *prev, int64_t version,
                                   struct vx_flag *changed, size_t n_changed, char **deleted,
                                   size_t n_deleted, struct vx_token *tokens, size_t n_tokens)
{
    size_t n_prev = prev != NULL ? prev->n_flags : 0;
    struct vx_snapshot *s = snapshot_alloc(version, n_prev + n_changed, tokens, n_tokens);
    size_t i = 0, j = 0, k = 0;

    if (s == NULL)
        goto done;
    if (n_changed > 1)
        qsort(changed, n_changed, sizeof(*changed), cmp_flag);
    if (n_deleted > 1)
        qsort(deleted, n_deleted, sizeof(*deleted), cmp_name);
    /* Merge the previous pieces with the changes, both sorted by name: a
     * changed flag replaces or joins, a deleted one is left out, every
     * other piece is shared. */
    while (i < n_prev || j < n_changed) {
        int c = i == n_prev      ? 1
                : j == n_changed ? -1
                                 : strcmp(prev->pieces[i]->flag.name, changed[j].name);
        if (c >= 0) {
            struct vx_flag_piece *p = piece_new(&changed[j++]);
            if (p == NULL) {
                snapshot_free(s);
                s = NULL;
                goto done;
            }
            s->pieces[s->n_flags++] = p;
            i += c == 0;
            continue;
        }
        struct vx_flag_piece *p = prev->pieces[i++];
        while (k < n_deleted && strcmp(deleted[k], p->flag.name) < 0)
            k++;
        if (k < n_deleted && strcmp(deleted[k], p->flag.name) == 0)
            continue;
        atomic_fetch_add(&p->refs, 1);
        s->pieces[s->n_flags++] = p;
    }
    s = snapshot_finish(s);

done:
    /* What piece_new took is zeroed: freeing the rest is safe. */
    free_flags(changed, n_changed);
    free_names(deleted, n_deleted);
    return s;
}

char *snapshot_body_copy(const struct vx_snapshot *s, size_t *len)
{
    char *out = malloc(s->body_len + 1);

    if (out == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < s->body_n; i++) {
        memcpy(out + at, s->body[i].base, s->body[i].len);
        at += s->body[i].len;
    }
    out[at] = '\0';
    *len = at;
    return out;
}

/* Compress the body of s with gzip into s->gzip (NULL data on failure). */
static void gzip_build(struct vx_snapshot *s)
{
    z_stream z = {0};
    unsigned char *out = NULL;
    int rc;

    /* 15 + 16: a gzip header and trailer around the deflate stream. */
    if (deflateInit2(&z, SNAPSHOT_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    uLong bound = deflateBound(&z, (uLong)s->body_len) + 64;
    out = malloc(bound);
    z.next_out = out;
    z.avail_out = (uInt)bound;
    rc = out != NULL ? Z_OK : Z_MEM_ERROR;
    for (size_t i = 0; rc == Z_OK && i < s->body_n; i++) {
        /* zlib's next_in is not const (ZLIB_CONST is not defined); deflate
         * only reads through it. */
        memcpy(&z.next_in, &s->body[i].base, sizeof(z.next_in));
        z.avail_in = (uInt)s->body[i].len;
        rc = deflate(&z, i + 1 == s->body_n ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_BUF_ERROR && z.avail_in == 0)
            rc = Z_OK; /* an empty span */
    }
    if (rc == Z_STREAM_END) {
        unsigned char *fit = realloc(out, z.total_out);
        s->gzip->data = fit != NULL ? fit : out;
        s->gzip->len = z.total_out;
        out = NULL;
    }
    deflateEnd(&z);
    free(out);
}

void snapshot_gzip_build(struct vx_snapshot *s)
{
    struct vx_snapshot_gzip *g = s->gzip;

    if (atomic_load_explicit(&g->ready, memory_order_acquire))
        return;
    pthread_mutex_lock(&g->mu);
    if (!atomic_load_explicit(&g->ready, memory_order_relaxed)) {
        gzip_build(s);
        atomic_store_explicit(&g->ready, true, memory_order_release);
    }
    pthread_mutex_unlock(&g->mu);
}

bool snapshot_gzip_ask(struct vx_snapshot *s)
{
    return !atomic_exchange(&s->gzip->asked, true);
}

bool snapshot_gzip(struct vx_snapshot *s, const unsigned char **data, size_t *len)
{
    struct vx_snapshot_gzip *g = s->gzip;

    if (!atomic_load_explicit(&g->ready, memory_order_acquire))
        return false;
    *data = g->data;
    *len = g->len;
    return g->data != NULL;
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
    return eval_flag_prefixed(&s->flags[i], &s->pieces[i]->prefix, user, user_len, reason);
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

void snapshot_shutdown(void)
{
    snapshot_publish(NULL);
}
