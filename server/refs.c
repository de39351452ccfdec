/* refs.c -- finding flag names in source files (refs.h).
 *
 * Why.  A flag deleted in vexil while code still asks for it turns off
 * without a word (an unknown flag evaluates to off), and a stale flag is
 * only gone once its checks are out of the code.  Both questions come down
 * to one: on which lines of these files is a flag's name written?
 *
 * What counts.  A name between two of the same quote characters, the first
 * not escaped by a backslash.  Looking for that shape, rather than pairing
 * each quote with the next like a tokenizer of one language, keeps the
 * search indifferent to the language: an apostrophe in a comment ("don't")
 * does not swallow the rest of the line, a name quoted inside another
 * string (SQL in a Python string) is found, and a literal never spans lines
 * (a name holds no LF).  The price: in text such as "a"checkout"b", where
 * one literal ends right before a name's characters and the next begins
 * right after them, the name counts too.
 *
 * How, fast.  One pass over each file with every name at once.  The quote
 * characters are found 16 bytes at a time (SSE2; byte by byte elsewhere);
 * at each, the bytes that follow are checked against the name syntax (the
 * first byte already rejects most candidates) while their hash is
 * computed, and only a candidate of a name's shape, closed by the same
 * quote, is looked up: an open-addressing table whose slots keep each
 * name's hash, so that a miss rarely touches a name.  Lines are counted
 * only when a reference is found, from the previous one, 16 bytes at a
 * time.
 *
 * Files.  One thread walks the paths and lists the files (each directory's
 * entries sorted, so that the output does not depend on the file system);
 * then cfg->threads threads take files from the list, each reading a whole
 * file into its own buffer and scanning it into the file's own result; the
 * results are read back in walk order, where a file reached a second time
 * (through a link) is dropped.  Directories are also remembered by device
 * and inode during the walk, so a link loop ends. */
#include "refs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "flag.h"
#include "text.h"

/* ------------------------------------------------------------------ */
/* The name syntax (flag_name_valid, flag.c) and the hash               */
/* ------------------------------------------------------------------ */

/* The class of each byte: REFS_NAME may be in a name, REFS_FIRST may also
 * start one ([A-Za-z0-9]; '_', '.' and '-' only follow).  Checked against
 * flag_name_valid byte by byte in tests/unit/test_refs.c. */
#define REFS_NAME  1
#define REFS_FIRST 2
/* clang-format off */
static const unsigned char refs_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,     /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,     /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0,     /* 0x20: - . */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0,     /* 0x30: 0-9 */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,     /* 0x40: A-O */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 1,     /* 0x50: P-Z _ */
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,     /* 0x60: a-o */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0,     /* 0x70: p-z */
    /* 0x80-0xff: 0 */
};
/* clang-format on */

static inline bool refs_quote(unsigned char c)
{
    return c == '"' || c == '\'' || c == '`';
}

/* FNV-1a, 64 bits, folded to 32 for the slots. */
#define REFS_FNV_OFFSET 0xcbf29ce484222325ull
#define REFS_FNV_PRIME  0x100000001b3ull

static inline uint64_t refs_hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * REFS_FNV_PRIME;
}

static inline uint32_t refs_hash_fold(uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t refs_hash(const char *s, size_t len)
{
    uint64_t h = REFS_FNV_OFFSET;

    for (size_t i = 0; i < len; i++)
        h = refs_hash_step(h, (unsigned char)s[i]);
    return refs_hash_fold(h);
}

/* ------------------------------------------------------------------ */
/* The set of names                                                     */
/* ------------------------------------------------------------------ */

struct refs_slot {
    uint32_t hash;
    uint32_t id; /* the name's number + 1; 0: an empty slot */
};

struct refs_names {
    char **names;
    size_t *lens;
    int *tags;
    size_t n, cap;
    struct refs_slot *slots; /* mask + 1 of them, a power of 2, at most half full */
    size_t mask;
};

struct refs_names *refs_names_new(void)
{
    struct refs_names *set = calloc(1, sizeof *set);

    if (set == NULL)
        return NULL;
    set->mask = 15;
    set->slots = calloc(set->mask + 1, sizeof *set->slots);
    if (set->slots == NULL) {
        free(set);
        return NULL;
    }
    return set;
}

void refs_names_free(struct refs_names *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->names[i]);
    free(set->names);
    free(set->lens);
    free(set->tags);
    free(set->slots);
    free(set);
}

size_t refs_names_count(const struct refs_names *set)
{
    return set->n;
}

const char *refs_names_at(const struct refs_names *set, size_t i, int *tag)
{
    if (tag != NULL)
        *tag = set->tags[i];
    return set->names[i];
}

/* The number of s[0..len), filed under hash h, or -1. */
static long refs_lookup(const struct refs_names *set, uint32_t h, const char *s, size_t len)
{
    for (size_t i = h & set->mask;; i = (i + 1) & set->mask) {
        const struct refs_slot *sl = &set->slots[i];
        if (sl->id == 0)
            return -1;
        if (sl->hash == h) {
            size_t k = sl->id - 1;
            if (set->lens[k] == len && memcmp(set->names[k], s, len) == 0)
                return (long)k;
        }
    }
}

long refs_names_find(const struct refs_names *set, const char *s, size_t len)
{
    return refs_lookup(set, refs_hash(s, len), s, len);
}

/* Put id (a name's number + 1) with hash h into the first free slot. */
static void refs_file_slot(struct refs_slot *slots, size_t mask, uint32_t h, uint32_t id)
{
    size_t i = h & mask;

    while (slots[i].id != 0)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].id = id;
}

/* Double the slots when one more name would fill more than half.  0 or -1. */
static int refs_grow_slots(struct refs_names *set)
{
    size_t size = set->mask + 1;
    struct refs_slot *slots;

    if ((set->n + 1) * 2 <= size)
        return 0;
    slots = calloc(size * 2, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < size; i++)
        if (set->slots[i].id != 0)
            refs_file_slot(slots, size * 2 - 1, set->slots[i].hash, set->slots[i].id);
    free(set->slots);
    set->slots = slots;
    set->mask = size * 2 - 1;
    return 0;
}

/* Room for one more name in the arrays.  0 or -1. */
static int refs_grow_names(struct refs_names *set)
{
    size_t cap = set->cap > 0 ? set->cap * 2 : 64;
    char **names;
    size_t *lens;
    int *tags;

    if (set->n < set->cap)
        return 0;
    if (cap > UINT32_MAX - 1)
        return -1;
    names = realloc(set->names, cap * sizeof *names);
    if (names == NULL)
        return -1;
    set->names = names;
    lens = realloc(set->lens, cap * sizeof *lens);
    if (lens == NULL)
        return -1;
    set->lens = lens;
    tags = realloc(set->tags, cap * sizeof *tags);
    if (tags == NULL)
        return -1;
    set->tags = tags;
    set->cap = cap;
    return 0;
}

int refs_names_add(struct refs_names *set, const char *name, size_t len, int tag)
{
    uint32_t h = refs_hash(name, len);
    char *copy;

    if (refs_lookup(set, h, name, len) >= 0)
        return 0;
    if (refs_grow_slots(set) != 0 || refs_grow_names(set) != 0)
        return -1;
    copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    set->names[set->n] = copy;
    set->lens[set->n] = len;
    set->tags[set->n] = tag;
    set->n++;
    refs_file_slot(set->slots, set->mask, h, (uint32_t)set->n);
    return 1;
}

/* ------------------------------------------------------------------ */
/* One buffer                                                           */
/* ------------------------------------------------------------------ */

/* LF bytes in p[0..n). */
static size_t refs_count_lines(const char *p, size_t n)
{
    size_t count = 0, i = 0;

#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (n - i >= 16) {
        /* Each byte lane counts up to 255 matches (cmpeq gives -1). */
        size_t blocks = (n - i) / 16 < 255 ? (n - i) / 16 : 255;
        __m128i acc = zero;
        for (size_t b = 0; b < blocks; b++, i += 16)
            acc = _mm_sub_epi8(
                acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), lf));
        __m128i sums = _mm_sad_epu8(acc, zero);
        count +=
            (size_t)_mm_cvtsi128_si32(sums) + (size_t)_mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
#endif
    for (; i < n; i++)
        count += p[i] == '\n';
    return count;
}

/* The state of one scan. */
struct refs_scan {
    const struct refs_names *set;
    const unsigned char *buf;
    size_t len;
    struct refs_hits *hits;
    size_t line;       /* the line of counted */
    size_t counted;    /* lines are counted up to here */
    size_t line_first; /* the first hit on line */
};

/* The number of the name that the candidate opened by the quote at q
 * spells, or -1: a name's characters, at most FLAG_NAME_MAX of them
 * starting with a letter or digit, then the same quote; the opening quote
 * not escaped (an odd run of backslashes before it). */
static long refs_candidate(const struct refs_scan *s, size_t q)
{
    const unsigned char *u = s->buf;
    unsigned char quote = u[q];
    size_t i = q + 1, stop, b = q;
    uint64_t h = REFS_FNV_OFFSET;

    if (i >= s->len || !(refs_class[u[i]] & REFS_FIRST))
        return -1;
    stop = s->len - i > FLAG_NAME_MAX ? i + FLAG_NAME_MAX : s->len;
    while (i < stop && (refs_class[u[i]] & REFS_NAME))
        h = refs_hash_step(h, u[i++]);
    if (i >= s->len || u[i] != quote)
        return -1;
    while (b > 0 && u[b - 1] == '\\')
        b--;
    if ((q - b) % 2 != 0)
        return -1;
    return refs_lookup(s->set, refs_hash_fold(h), (const char *)u + q + 1, i - q - 1);
}

/* The quote at q: record the reference it opens, if any.  0 or -1 (OOM). */
static int refs_at(struct refs_scan *s, size_t q)
{
    long id = refs_candidate(s, q);
    struct refs_hits *h = s->hits;

    if (id < 0)
        return 0;
    if (q > s->counted) {
        size_t lines = refs_count_lines((const char *)s->buf + s->counted, q - s->counted);
        if (lines > 0) {
            s->line += lines;
            s->line_first = h->n;
        }
        s->counted = q;
    }
    for (size_t k = s->line_first; k < h->n; k++)
        if (h->v[k].name == (size_t)id)
            return 0;
    if (h->n == h->cap) {
        size_t cap = h->cap > 0 ? h->cap * 2 : 16;
        struct refs_hit *v = realloc(h->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n].line = s->line;
    h->v[h->n].name = (size_t)id;
    h->n++;
    return 0;
}

int refs_scan_buffer(const struct refs_names *set, const char *buf, size_t len,
                     struct refs_hits *hits)
{
    struct refs_scan s = {set, (const unsigned char *)buf, len, hits, 1, 0, hits->n};
    size_t q = 0;

    if (set->n == 0)
        return 0;
#if defined(__SSE2__)
    const __m128i dq = _mm_set1_epi8('"'), sq = _mm_set1_epi8('\''), bq = _mm_set1_epi8('`');
    for (; len - q >= 16; q += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + q));
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, dq), _mm_cmpeq_epi8(v, sq)), _mm_cmpeq_epi8(v, bq)));
        while (m != 0) {
            size_t at = q + (size_t)__builtin_ctz(m);
            m &= m - 1;
            /* Most quotes close a literal or open one that is no name: the
             * byte after them says so without a call. */
            if (at + 1 < len && (refs_class[(unsigned char)buf[at + 1]] & REFS_FIRST) &&
                refs_at(&s, at) != 0)
                return -1;
        }
    }
#endif
    for (; q < len; q++)
        if (refs_quote((unsigned char)buf[q]) && refs_at(&s, q) != 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Errors that name a path                                              */
/* ------------------------------------------------------------------ */

/* Fill err with "<what> <path>: <strerror(e)>" (the path made visible:
 * a file name may hold any byte but '/' and NUL) and return -1. */
static int refs_fail_path(struct vx_error *err, const char *what, const char *path, int e)
{
    struct buf b = {0};
    int built = buf_adds(&b, what) | buf_add_visible(&b, path, strlen(path)) |
                buf_addf(&b, ": %s", strerror(e));

    if (built != 0 || b.p == NULL)
        vx_fail(err, VX_E_INTERNAL, "out of memory");
    else
        vx_fail(err, VX_E_BAD_REQUEST, "%.255s", b.p);
    buf_free(&b);
    return -1;
}

static int refs_oom(struct vx_error *err)
{
    return vx_fail(err, VX_E_INTERNAL, "out of memory");
}

/* ------------------------------------------------------------------ */
/* Files and directories seen: a set of (device, inode)                 */
/* ------------------------------------------------------------------ */

struct refs_id {
    dev_t dev;
    ino_t ino;
    bool used;
};

struct refs_ids {
    struct refs_id *v;
    size_t n, mask; /* mask + 1 slots, at most half used; v NULL while empty */
};

static size_t refs_id_hash(dev_t dev, ino_t ino)
{
    uint64_t x = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return (size_t)(x ^ (x >> 29));
}

/* Remember (dev, ino).  1 when it is new, 0 when it was seen, -1 OOM. */
static int refs_ids_add(struct refs_ids *ids, dev_t dev, ino_t ino)
{
    size_t i;

    if ((ids->n + 1) * 2 > (ids->v != NULL ? ids->mask + 1 : 0)) {
        size_t size = ids->v != NULL ? (ids->mask + 1) * 2 : 64;
        struct refs_id *v = calloc(size, sizeof *v);
        if (v == NULL)
            return -1;
        for (size_t k = 0; ids->v != NULL && k <= ids->mask; k++) {
            if (!ids->v[k].used)
                continue;
            for (i = refs_id_hash(ids->v[k].dev, ids->v[k].ino) & (size - 1); v[i].used;
                 i = (i + 1) & (size - 1))
                ;
            v[i] = ids->v[k];
        }
        free(ids->v);
        ids->v = v;
        ids->mask = size - 1;
    }
    for (i = refs_id_hash(dev, ino) & ids->mask; ids->v[i].used; i = (i + 1) & ids->mask)
        if (ids->v[i].dev == dev && ids->v[i].ino == ino)
            return 0;
    ids->v[i].dev = dev;
    ids->v[i].ino = ino;
    ids->v[i].used = true;
    ids->n++;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The walk                                                             */
/* ------------------------------------------------------------------ */

bool refs_dir_skipped(const char *name)
{
    static const char *const skipped[] = {".git",        ".hg",   ".svn",     "node_modules",
                                          "__pycache__", "build", "builddir", "dist",
                                          "out",         "target"};

    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (strcmp(name, skipped[i]) == 0)
            return true;
    return false;
}

/* A growable array of strings, each the array's own. */
struct refs_strs {
    char **v;
    size_t n, cap;
};

static int refs_strs_push(struct refs_strs *a, char *s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap > 0 ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return 0;
}

static void refs_strs_free(struct refs_strs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* scandir's filter and order: every entry but "." and "..", in byte order
 * (alphasort would follow the locale). */
static int refs_dirent_keep(const struct dirent *e)
{
    return strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
}

static int refs_dirent_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* dir + "/" + name (no second '/' after a dir that ends with one), or NULL. */
static char *refs_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), size = a + 1 + strlen(name) + 1;
    char *p = malloc(size);

    if (p != NULL)
        snprintf(p, size, "%s%s%s", dir, a > 0 && dir[a - 1] != '/' ? "/" : "", name);
    return p;
}

/* Push the entries of directory path onto todo, sorted so that they come
 * off it in byte order.  0, 1 when the directory vanished, -1 (err). */
static int refs_read_dir(const char *path, struct refs_strs *todo, struct vx_error *err)
{
    struct dirent **list = NULL;
    int n = scandir(path, &list, refs_dirent_keep, refs_dirent_cmp), rc = 0;

    if (n < 0)
        return errno == ENOENT ? 1 : refs_fail_path(err, "cannot read the directory ", path, errno);
    for (int i = n; i > 0; i--) {
        char *p = rc == 0 ? refs_join(path, list[i - 1]->d_name) : NULL;
        if (rc == 0 && (p == NULL || refs_strs_push(todo, p) != 0)) {
            free(p);
            rc = refs_oom(err);
        }
        free(list[i - 1]);
    }
    free(list);
    return rc;
}

/* The last component of path (after its last '/'). */
static const char *refs_base(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

/* List the regular files under paths[0..n) into files, in walk order.
 * 0, or -1 with err filled. */
static int refs_walk(const char *const *paths, size_t n, struct refs_strs *files,
                     struct vx_error *err)
{
    struct refs_strs todo = {0};
    struct refs_ids dirs = {0};
    size_t given = n; /* todo's first `given` entries are the paths given */
    int rc = 0;

    for (size_t i = n; i > 0 && rc == 0; i--) {
        char *p = strdup(paths[i - 1]);
        if (p == NULL || refs_strs_push(&todo, p) != 0) {
            free(p);
            rc = refs_oom(err);
        }
    }
    while (rc == 0 && todo.n > 0) {
        char *path = todo.v[--todo.n];
        bool is_given = todo.n < given;
        struct stat st;

        if (is_given)
            given = todo.n;
        if (stat(path, &st) != 0) {
            int e = errno;
            if (is_given || (e != ENOENT && e != ELOOP && e != ENOTDIR))
                rc = refs_fail_path(err, is_given ? "" : "cannot read ", path, e);
            free(path);
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            if (refs_strs_push(files, path) != 0) {
                free(path);
                rc = refs_oom(err);
            }
            continue;
        }
        if (S_ISDIR(st.st_mode) && (is_given || !refs_dir_skipped(refs_base(path)))) {
            int seen = refs_ids_add(&dirs, st.st_dev, st.st_ino);
            if (seen < 0)
                rc = refs_oom(err);
            else if (seen > 0 && refs_read_dir(path, &todo, err) < 0)
                rc = -1;
        }
        free(path);
    }
    refs_strs_free(&todo);
    free(dirs.v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Reading and scanning the files, in threads                           */
/* ------------------------------------------------------------------ */

enum refs_state {
    REFS_NOT_READ = 0, /* not taken (the scan stopped at an error) */
    REFS_SKIPPED,      /* vanished, not a regular file, too large or binary */
    REFS_SCANNED,
    REFS_FAILED, /* cannot be read: errno in error */
    REFS_NOMEM,
};

struct refs_one {
    enum refs_state state;
    int error;
    dev_t dev;
    ino_t ino;
    struct refs_hits hits;
};

struct refs_job {
    const struct refs_names *set;
    char *const *paths;
    struct refs_one *res;
    size_t n;
    size_t max;
    size_t next; /* the next file to take (atomic) */
    int stop;    /* set when a file failed: take no more (atomic) */
};

/* Read all of fd into *buf (capacity *cap), at most max + 1 bytes.  The
 * length read, or -1 with errno set. */
static long refs_read_all(int fd, size_t size_hint, size_t max, char **buf, size_t *cap)
{
    size_t got = 0, want = (size_hint < max ? size_hint : max) + 1;

    for (;;) {
        if (want > *cap) {
            char *p = realloc(*buf, want);
            if (p == NULL) {
                errno = ENOMEM;
                return -1;
            }
            *buf = p;
            *cap = want;
        }
        ssize_t r = read(fd, *buf + got, *cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return (long)got;
        got += (size_t)r;
        if (got > max)
            return (long)got;
        if (got == *cap)
            want = *cap * 2 < max + 1 ? *cap * 2 : max + 1;
    }
}

/* Read and scan one file into *res, with *buf (capacity *cap) as room. */
static void refs_scan_file(const struct refs_job *job, const char *path, struct refs_one *res,
                           char **buf, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    long len;

    res->state = REFS_SKIPPED;
    if (fd < 0) {
        if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR) {
            res->state = REFS_FAILED;
            res->error = errno;
        }
        return;
    }
    if (fstat(fd, &st) != 0) {
        res->state = REFS_FAILED;
        res->error = errno;
        close(fd);
        return;
    }
    res->dev = st.st_dev;
    res->ino = st.st_ino;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > job->max) {
        close(fd);
        return;
    }
    len = refs_read_all(fd, (size_t)st.st_size, job->max, buf, cap);
    if (len < 0) {
        res->state = errno == ENOMEM ? REFS_NOMEM : REFS_FAILED;
        res->error = errno;
        close(fd);
        return;
    }
    close(fd);
    if ((size_t)len > job->max ||
        memchr(*buf, 0, (size_t)len < REFS_BINARY_PROBE ? (size_t)len : REFS_BINARY_PROBE) != NULL)
        return;
    res->state =
        refs_scan_buffer(job->set, *buf, (size_t)len, &res->hits) == 0 ? REFS_SCANNED : REFS_NOMEM;
}

static void *refs_worker(void *arg)
{
    struct refs_job *job = arg;
    char *buf = NULL;
    size_t cap = 0;

    while (!__atomic_load_n(&job->stop, __ATOMIC_RELAXED)) {
        size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->n)
            break;
        refs_scan_file(job, job->paths[i], &job->res[i], &buf, &cap);
        if (job->res[i].state == REFS_FAILED || job->res[i].state == REFS_NOMEM)
            __atomic_store_n(&job->stop, 1, __ATOMIC_RELAXED);
    }
    free(buf);
    return NULL;
}

/* Scan the files with up to threads threads (this one among them). */
static void refs_run(struct refs_job *job, unsigned threads)
{
    pthread_t tid[REFS_THREADS_MAX];
    size_t started = 0;

    if (threads > REFS_THREADS_MAX)
        threads = REFS_THREADS_MAX;
    while (started + 1 < threads && started + 1 < job->n &&
           pthread_create(&tid[started], NULL, refs_worker, job) == 0)
        started++;
    refs_worker(job);
    for (size_t i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
}

/* Move the results into out, in walk order, dropping files seen before:
 * the files with references go to dest (room for every file), which out
 * then owns.  0, or -1 with err filled at the first file (in walk order)
 * that failed. */
static int refs_collect(struct refs_job *job, struct refs_strs *files, struct refs_file *dest,
                        struct refs_report *out, struct vx_error *err)
{
    struct refs_ids seen = {0};
    size_t kept = 0;
    int rc = 0;

    for (size_t i = 0; i < job->n && rc == 0; i++) {
        struct refs_one *r = &job->res[i];
        int fresh;

        if (r->state == REFS_FAILED)
            rc = refs_fail_path(err, "cannot read ", files->v[i], r->error);
        else if (r->state == REFS_NOMEM)
            rc = refs_oom(err);
        if (rc != 0 || r->state != REFS_SCANNED)
            continue;
        fresh = refs_ids_add(&seen, r->dev, r->ino);
        if (fresh < 0)
            rc = refs_oom(err);
        if (fresh <= 0)
            continue;
        out->files_scanned++;
        if (r->hits.n == 0)
            continue;
        dest[kept].path = files->v[i];
        dest[kept].hits = r->hits.v;
        dest[kept].n_hits = r->hits.n;
        kept++;
        files->v[i] = NULL;
        r->hits.v = NULL;
    }
    free(seen.v);
    out->files = dest;
    out->n_files = kept;
    return rc;
}

void refs_report_free(struct refs_report *r)
{
    for (size_t i = 0; r->files != NULL && i < r->n_files; i++) {
        free(r->files[i].path);
        free(r->files[i].hits);
    }
    free(r->files);
    memset(r, 0, sizeof *r);
}

/* Read and scan the files (at least one) into out.  0, or -1 (err). */
static int refs_scan_files(const struct refs_names *set, struct refs_strs *files,
                           const struct refs_config *cfg, struct refs_report *out,
                           struct vx_error *err)
{
    struct refs_job job = {.set = set, .paths = files->v, .n = files->n};
    struct refs_file *dest = calloc(files->n, sizeof *dest);
    int rc;

    job.max =
        cfg != NULL && cfg->max_file_size > 0 ? cfg->max_file_size : REFS_MAX_FILE_SIZE_DEFAULT;
    job.res = calloc(files->n, sizeof *job.res);
    if (dest == NULL || job.res == NULL) {
        free(dest);
        free(job.res);
        return refs_oom(err);
    }
    refs_run(&job, cfg != NULL ? cfg->threads : 1);
    rc = refs_collect(&job, files, dest, out, err);
    for (size_t i = 0; i < job.n; i++)
        free(job.res[i].hits.v);
    free(job.res);
    return rc;
}

int refs_scan_paths(const struct refs_names *set, const char *const *paths, size_t n,
                    const struct refs_config *cfg, struct refs_report *out, struct vx_error *err)
{
    struct refs_strs files = {0};
    int rc;

    memset(out, 0, sizeof *out);
    rc = refs_walk(paths, n, &files, err);
    if (rc == 0 && files.n > 0)
        rc = refs_scan_files(set, &files, cfg, out, err);
    refs_strs_free(&files);
    if (rc != 0)
        refs_report_free(out);
    return rc;
}
