/* view.c -- the flag set of one environment (view.h): its pieces, its
 * GET /flags body and that body's gzip form.
 *
 * A flag's piece is built once, when the flag is loaded or changed, and
 * shared by reference with every later view until the flag changes again:
 * view_apply() merges the previous view's sorted pieces with the changed
 * flags in one pass, taking a reference to each unchanged piece.  Per view
 * there remain only arrays of pointers (and the flags as shallow copies, so
 * that readers index one array); the gzip body is made on first demand,
 * once. */
#include "view.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "text.h"

/* zlib's fastest level: a 10 000-flag body with a million users compresses
 * in a fraction of the time of the default level, to well under a fifth. */
#define VIEW_GZIP_LEVEL 1

static int cmp_flag(const void *a, const void *b)
{
    return strcmp(((const struct vx_flag *)a)->name, ((const struct vx_flag *)b)->name);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
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

/* ---- views ---------------------------------------------------------------- */

static void view_free(struct vx_view *s)
{
    for (size_t i = 0; s->pieces != NULL && i < s->n_flags; i++)
        piece_release(s->pieces[i]);
    free(s->pieces);
    free(s->flags);
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
}

/* What readers index: the flags as one array, their keys, the body's
 * spans.  All point into the pieces. */
static int build_index(struct vx_view *s)
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
    if (s->body_len <= VIEW_JOIN_MAX) {
        size_t len;
        s->joined = view_body_copy(s, &len);
        if (s->joined == NULL)
            return -1;
    }
    return 0;
}

/* The lazily built gzip body. */
static int build_gzip(struct vx_view *s)
{
    s->gzip = calloc(1, sizeof(*s->gzip));
    if (s->gzip == NULL)
        return -1;
    if (pthread_mutex_init(&s->gzip->mu, NULL) != 0) {
        free(s->gzip);
        s->gzip = NULL;
        return -1;
    }
    return 0;
}

/* A view with room for n pieces, or NULL. */
static struct vx_view *view_alloc(int64_t version, size_t n)
{
    struct vx_view *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    atomic_init(&s->refs, 1);
    s->version = version;
    s->pieces = calloc(n ? n : 1, sizeof(struct vx_flag_piece *));
    if (s->pieces == NULL || build_gzip(s) != 0) {
        view_free(s);
        return NULL;
    }
    return s;
}

/* The pieces are in place: index them.  s, or NULL (s freed). */
static struct vx_view *view_finish(struct vx_view *s)
{
    if (build_index(s) != 0) {
        view_free(s);
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

struct vx_view *view_apply(const struct vx_view *prev, int64_t version, struct vx_flag *changed,
                           size_t n_changed, char **deleted, size_t n_deleted)
{
    size_t n_prev = prev != NULL ? prev->n_flags : 0;
    struct vx_view *s = view_alloc(version, n_prev + n_changed);
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
                view_free(s);
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
    s = view_finish(s);

done:
    /* What piece_new took is zeroed: freeing the rest is safe. */
    free_flags(changed, n_changed);
    free_names(deleted, n_deleted);
    return s;
}

char *view_body_copy(const struct vx_view *s, size_t *len)
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
static void gzip_build(struct vx_view *s)
{
    z_stream z = {0};
    unsigned char *out = NULL;
    int rc;

    /* 15 + 16: a gzip header and trailer around the deflate stream. */
    if (deflateInit2(&z, VIEW_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
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

void view_gzip_build(struct vx_view *s)
{
    struct vx_view_gzip *g = s->gzip;

    if (atomic_load_explicit(&g->ready, memory_order_acquire))
        return;
    pthread_mutex_lock(&g->mu);
    if (!atomic_load_explicit(&g->ready, memory_order_relaxed)) {
        gzip_build(s);
        atomic_store_explicit(&g->ready, true, memory_order_release);
    }
    pthread_mutex_unlock(&g->mu);
}

bool view_gzip_ask(struct vx_view *s)
{
    return !atomic_exchange(&s->gzip->asked, true);
}

bool view_gzip(struct vx_view *s, const unsigned char **data, size_t *len)
{
    struct vx_view_gzip *g = s->gzip;

    if (!atomic_load_explicit(&g->ready, memory_order_acquire))
        return false;
    *data = g->data;
    *len = g->len;
    return g->data != NULL;
}

void view_retain(struct vx_view *v)
{
    atomic_fetch_add(&v->refs, 1);
}

void view_release(struct vx_view *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

static const char *flag_name_at(const void *list, size_t i)
{
    return ((const struct vx_flag *)list)[i].name;
}

const struct vx_flag *view_find(const struct vx_view *s, const char *name, size_t len)
{
    size_t i = names_find(s->flags, s->n_flags, flag_name_at, name, len);

    return i < s->n_flags ? &s->flags[i] : NULL;
}
