/* test_snapshot.c -- building a snapshot, finding flags and tokens in it,
 * and publishing it to readers that never lock.
 *
 * Each test runs in its own forked child (Check), so the module's current
 * snapshot and hazard slots start empty in every test.  The stress test
 * runs one writer against three readers; ASan's leak check and TSan
 * judge what it leaves behind and how its threads met. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "flag.h"
#include "snapshot.h"
#include "unit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* A flag owning its strings, as store_snapshot_load makes them. */
static void fill_flag(struct vx_flag *f, const char *name, bool enabled, int percentage,
                      int64_t revision)
{
    memset(f, 0, sizeof(*f));
    f->name = dup_or_die(name);
    f->description = dup_or_die("");
    f->owner = dup_or_die("team");
    f->enabled = enabled;
    f->percentage = percentage;
    f->revision = revision;
}

/* flags[] (malloc'd) named names[], enabled at 100 %. */
static struct vx_flag *make_flags(const char *const *names, size_t n)
{
    struct vx_flag *flags = calloc(n ? n : 1, sizeof(*flags));
    ck_assert_ptr_nonnull(flags);
    for (size_t i = 0; i < n; i++)
        fill_flag(&flags[i], names[i], true, 100, 1);
    return flags;
}

/* A token whose hash is all `fill` bytes except the last, `last`. */
static void fill_token(struct vx_token *t, const char *name, uint8_t fill, uint8_t last)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof t->id, "00000000-0000-4000-8000-%012x", (unsigned)fill << 8 | last);
    t->name = dup_or_die(name);
    t->role = VX_ROLE_CLIENT;
    memset(t->hash, fill, SHA256_LEN);
    t->hash[SHA256_LEN - 1] = last;
}

/* ---- building --------------------------------------------------------- */

START_TEST(test_new_sorts_and_serialises)
{
    static const char *const names[] = {"zeta", "alpha", "Mid", "alpha.2", "beta"};
    static const char *const sorted[] = {"Mid", "alpha", "alpha.2", "beta", "zeta"}; /* strcmp */
    struct vx_token *tokens = calloc(3, sizeof(*tokens));
    ck_assert_ptr_nonnull(tokens);
    fill_token(&tokens[0], "c", 0x30, 1);
    fill_token(&tokens[1], "a", 0x10, 9);
    fill_token(&tokens[2], "b", 0x10, 2);

    struct vx_snapshot *s = snapshot_new(42, make_flags(names, N(names)), N(names), tokens, 3);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->version, 42);
    ck_assert_int_eq(atomic_load(&s->refs), 1);
    ck_assert_uint_eq(s->n_flags, N(names));
    for (size_t i = 0; i < N(sorted); i++)
        ck_assert_str_eq(s->flags[i].name, sorted[i]);
    ck_assert_uint_eq(s->n_tokens, 3);
    ck_assert_str_eq(s->tokens[0].name, "b");
    ck_assert_str_eq(s->tokens[1].name, "a");
    ck_assert_str_eq(s->tokens[2].name, "c");

    /* The GET /flags body: the version, then the flags in name order, each
     * exactly as flag_to_json writes it. */
    size_t body_len;
    char *text = snapshot_body_copy(s, &body_len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(body_len, strlen(text));
    ck_assert_uint_eq(body_len, s->body_len);
    json_error_t jerr;
    json_t *body = json_loadb(text, body_len, 0, &jerr);
    ck_assert_msg(body != NULL, "body does not parse: %s", jerr.text);
    ck_assert_int_eq(json_integer_value(json_object_get(body, "version")), 42);
    json_t *arr = json_object_get(body, "flags");
    ck_assert_uint_eq(json_array_size(arr), N(names));
    for (size_t i = 0; i < N(sorted); i++) {
        json_t *want = flag_to_json(&s->flags[i]);
        ck_assert(json_equal(json_array_get(arr, i), want));
        json_decref(want);
    }
    /* Byte for byte what jansson writes for the whole body. */
    char *whole = json_dumps(body, JSON_COMPACT);
    ck_assert_str_eq(text, whole);
    free(whole);
    json_decref(body);
    ck_assert_int_eq(strncmp(text, "{\"version\":42,\"flags\":[{", 24), 0);
    free(text);

    /* Per flag: its JSON key, and keys_total their sum. */
    size_t total = 0;
    for (size_t i = 0; i < N(sorted); i++) {
        char want[64];
        snprintf(want, sizeof want, "\"%s\":", sorted[i]);
        ck_assert_uint_eq(s->keys_len[i], strlen(want));
        ck_assert_int_eq(memcmp(s->keys[i], want, s->keys_len[i]), 0);
        total += s->keys_len[i];
    }
    ck_assert_uint_eq(s->keys_total, total);
    snapshot_release(s);
}
END_TEST

START_TEST(test_new_empty)
{
    struct vx_snapshot *s = snapshot_new(0, NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(s);
    size_t len;
    char *text = snapshot_body_copy(s, &len);
    ck_assert_str_eq(text, "{\"version\":0,\"flags\":[]}");
    free(text);
    ck_assert_uint_eq(s->keys_total, 0);
    ck_assert_ptr_null(snapshot_find(s, "a", 1));
    ck_assert_ptr_null(snapshot_find(s, "", 0));
    uint8_t h[SHA256_LEN] = {0};
    ck_assert_ptr_null(snapshot_find_token(s, h));
    snapshot_release(s);
}
END_TEST

/* A name that JSON must escape gets an escaped key. */
START_TEST(test_keys_escaped)
{
    static const char *const names[] = {"q\"uote"};
    struct vx_snapshot *s = snapshot_new(1, make_flags(names, 1), 1, NULL, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->keys_len[0], strlen("\"q\\\"uote\":"));
    ck_assert_int_eq(memcmp(s->keys[0], "\"q\\\"uote\":", s->keys_len[0]), 0);
    snapshot_release(s);
}
END_TEST

/* ---- lookups ---------------------------------------------------------- */

static const char *const find_names[] = {"b", "a", "abc", "ab", "a.b", "a_b", "z"};

static const struct {
    const char *name;
    size_t len;
    const char *found; /* NULL: not found */
} finds[] = {
    {"a", 1, "a"},     {"ab", 2, "ab"},   {"abc", 3, "abc"},
    {"abc", 2, "ab"},                     /* only len bytes count: a name inside a longer path */
    {"abc", 1, "a"},   {"abcd", 4, NULL}, /* "abc" is a prefix of it, not it */
    {"abd", 3, NULL},  {"aa", 2, NULL},   {"", 0, NULL},
    {"a.b", 3, "a.b"}, {"a_b", 3, "a_b"}, {"a.c", 3, NULL},
    {"b", 1, "b"},     {"z", 1, "z"},     {"zz", 2, NULL},
    {"A", 1, NULL}, /* names are case-sensitive */
    {"0", 1, NULL}, /* before every name */
    {"~", 1, NULL}, /* after every name */
};

START_TEST(test_find)
{
    struct vx_snapshot *s =
        snapshot_new(1, make_flags(find_names, N(find_names)), N(find_names), NULL, 0);
    ck_assert_ptr_nonnull(s);
    const struct vx_flag *f = snapshot_find(s, finds[_i].name, finds[_i].len);
    if (finds[_i].found == NULL) {
        ck_assert_msg(f == NULL, "\"%.*s\" found \"%s\"", (int)finds[_i].len, finds[_i].name,
                      f != NULL ? f->name : "");
    } else {
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(f->name, finds[_i].found);
        ck_assert(f >= s->flags && f < s->flags + s->n_flags);
    }
    snapshot_release(s);
}
END_TEST

START_TEST(test_find_token)
{
    enum { NT = 5 };
    struct vx_token *tokens = calloc(NT, sizeof(*tokens));
    ck_assert_ptr_nonnull(tokens);
    for (int i = 0; i < NT; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        fill_token(&tokens[i], name, (uint8_t)(0xf0 - 0x20 * i), (uint8_t)i);
    }
    struct vx_snapshot *s = snapshot_new(1, NULL, 0, tokens, NT);
    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < NT; i++) {
        uint8_t h[SHA256_LEN];
        char name[8];
        memset(h, 0xf0 - 0x20 * i, SHA256_LEN);
        h[SHA256_LEN - 1] = (uint8_t)i;
        snprintf(name, sizeof name, "t%d", i);
        const struct vx_token *t = snapshot_find_token(s, h);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, name);
        h[SHA256_LEN - 1] ^= 0x80; /* one bit off: no token */
        ck_assert_ptr_null(snapshot_find_token(s, h));
        h[0] ^= 1;
        ck_assert_ptr_null(snapshot_find_token(s, h));
    }
    snapshot_release(s);
}
END_TEST

/* snapshot_eval answers what eval_flag answers, through the prefix the
 * snapshot computed for the flag's name. */
START_TEST(test_eval)
{
    struct vx_flag *flags = calloc(4, sizeof(*flags));
    ck_assert_ptr_nonnull(flags);
    fill_flag(&flags[0], "off", false, 100, 1);
    fill_flag(&flags[1], "all", true, 100, 1);
    fill_flag(&flags[2], "split", true, 37, 1);
    fill_flag(&flags[3], "listed", true, 0, 1);
    flags[3].users = calloc(1, sizeof(char *));
    ck_assert_ptr_nonnull(flags[3].users);
    flags[3].users[0] = dup_or_die("alice");
    flags[3].n_users = 1;
    struct vx_snapshot *s = snapshot_new(1, flags, 4, NULL, 0);
    ck_assert_ptr_nonnull(s);

    enum vx_reason r;
    size_t i_off = (size_t)(snapshot_find(s, "off", 3) - s->flags);
    size_t i_all = (size_t)(snapshot_find(s, "all", 3) - s->flags);
    size_t i_split = (size_t)(snapshot_find(s, "split", 5) - s->flags);
    size_t i_listed = (size_t)(snapshot_find(s, "listed", 6) - s->flags);

    ck_assert(!snapshot_eval(s, i_off, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    ck_assert(snapshot_eval(s, i_all, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_STATIC);
    ck_assert(snapshot_eval(s, i_listed, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(!snapshot_eval(s, i_listed, "bob", 3, &r));
    ck_assert(!snapshot_eval(s, i_split, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);

    int on = 0;
    for (int u = 0; u < 2000; u++) {
        char user[16];
        int n = snprintf(user, sizeof user, "user-%d", u);
        enum vx_reason r1, r2;
        bool a = snapshot_eval(s, i_split, user, (size_t)n, &r1);
        bool b = eval_flag(&s->flags[i_split], user, (size_t)n, &r2);
        ck_assert_int_eq(a, b);
        ck_assert_int_eq(r1, r2);
        on += a;
    }
    ck_assert_int_gt(on, 600); /* about 37 % of 2000 */
    ck_assert_int_lt(on, 880);
    snapshot_release(s);
}
END_TEST

/* ---- publishing and references ----------------------------------------- */

static struct vx_snapshot *numbered(int64_t version)
{
    static const char *const names[] = {"one", "two"};
    struct vx_snapshot *s = snapshot_new(version, make_flags(names, 2), 2, NULL, 0);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- applying changes ------------------------------------------------- */

/* The plain body of s (caller frees). */
static char *body_of(const struct vx_snapshot *s)
{
    size_t len;
    char *b = snapshot_body_copy(s, &len);
    ck_assert_ptr_nonnull(b);
    return b;
}

static char **make_names(const char *const *names, size_t n)
{
    char **a = calloc(n ? n : 1, sizeof(*a));
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = dup_or_die(names[i]);
    return a;
}

/* The piece of flag name in s, or NULL. */
static const struct vx_flag_piece *piece_of(const struct vx_snapshot *s, const char *name)
{
    const struct vx_flag *f = snapshot_find(s, name, strlen(name));
    return f != NULL ? s->pieces[f - s->flags] : NULL;
}

START_TEST(test_apply_shares_unchanged)
{
    static const char *const names[] = {"b", "d", "f", "h"};
    struct vx_snapshot *prev = snapshot_new(5, make_flags(names, 4), 4, NULL, 0);
    ck_assert_ptr_nonnull(prev);

    /* Replace d, add a and e and z (given out of order), delete f and an
     * unknown name. */
    static const char *const changed[] = {"z", "d", "a", "e"};
    struct vx_flag *ch = make_flags(changed, 4);
    ch[1].percentage = 7; /* the new d */
    static const char *const gone[] = {"nope", "f"};
    struct vx_snapshot *s = snapshot_apply(prev, 9, ch, 4, make_names(gone, 2), 2, NULL, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->version, 9);

    static const char *const want[] = {"a", "b", "d", "e", "h", "z"};
    ck_assert_uint_eq(s->n_flags, N(want));
    for (size_t i = 0; i < N(want); i++) {
        ck_assert_str_eq(s->flags[i].name, want[i]);
        ck_assert_ptr_eq(s->flags[i].name, s->pieces[i]->flag.name); /* a view, not a copy */
    }
    /* Unchanged flags: the same pieces, one reference more. */
    ck_assert_ptr_eq(piece_of(s, "b"), piece_of(prev, "b"));
    ck_assert_ptr_eq(piece_of(s, "h"), piece_of(prev, "h"));
    ck_assert_int_eq(atomic_load(&piece_of(s, "b")->refs), 2);
    ck_assert_ptr_ne(piece_of(s, "d"), piece_of(prev, "d"));
    ck_assert_int_eq(snapshot_find(s, "d", 1)->percentage, 7);
    ck_assert_int_eq(snapshot_find(prev, "d", 1)->percentage, 100); /* prev untouched */
    ck_assert_ptr_null(snapshot_find(s, "f", 1));
    ck_assert_ptr_nonnull(snapshot_find(prev, "f", 1));

    /* Byte for byte what a full build of the same flags gives. */
    struct vx_flag *all = make_flags(want, N(want));
    all[2].percentage = 7;
    struct vx_snapshot *full = snapshot_new(9, all, N(want), NULL, 0);
    char *b1 = body_of(s), *b2 = body_of(full);
    ck_assert_str_eq(b1, b2);
    ck_assert_uint_eq(s->keys_total, full->keys_total);
    for (size_t i = 0; i < N(want); i++) {
        ck_assert_int_eq(snapshot_eval(s, i, "someone", 7, NULL),
                         snapshot_eval(full, i, "someone", 7, NULL));
        ck_assert_str_eq(s->keys[i], full->keys[i]);
    }
    free(b1);
    free(b2);

    /* The old snapshot goes; the shared pieces stay whole for the new one. */
    snapshot_release(prev);
    ck_assert_int_eq(atomic_load(&piece_of(s, "b")->refs), 1);
    b1 = body_of(s);
    b2 = body_of(full);
    ck_assert_str_eq(b1, b2);
    free(b1);
    free(b2);
    snapshot_release(full);
    snapshot_release(s);
}
END_TEST

START_TEST(test_apply_delete_and_recreate)
{
    static const char *const names[] = {"x"};
    struct vx_snapshot *s0 = snapshot_new(1, make_flags(names, 1), 1, NULL, 0);
    /* Deleted ... */
    struct vx_snapshot *s1 = snapshot_apply(s0, 2, NULL, 0, make_names(names, 1), 1, NULL, 0);
    ck_assert_ptr_nonnull(s1);
    ck_assert_uint_eq(s1->n_flags, 0);
    char *b = body_of(s1);
    ck_assert_str_eq(b, "{\"version\":2,\"flags\":[]}");
    free(b);
    /* ... and created again: a new piece. */
    struct vx_flag *again = make_flags(names, 1);
    again[0].revision = 3;
    struct vx_snapshot *s2 = snapshot_apply(s1, 3, again, 1, NULL, 0, NULL, 0);
    ck_assert_uint_eq(s2->n_flags, 1);
    ck_assert_int_eq(s2->flags[0].revision, 3);
    ck_assert_ptr_ne(s2->pieces[0], s0->pieces[0]);
    /* No change at all (a token reload): every piece shared. */
    struct vx_snapshot *s3 = snapshot_apply(s2, 3, NULL, 0, NULL, 0, NULL, 0);
    ck_assert_ptr_eq(s3->pieces[0], s2->pieces[0]);
    snapshot_release(s0);
    snapshot_release(s1);
    snapshot_release(s2);
    snapshot_release(s3);
}
END_TEST

START_TEST(test_gzip_once)
{
    static const char *const names[] = {"a", "b", "c"};
    struct vx_snapshot *s = snapshot_new(4, make_flags(names, 3), 3, NULL, 0);
    const unsigned char *g1, *g2;
    size_t l1, l2;

    ck_assert(!snapshot_gzip(s, &g1, &l1)); /* not made yet: never made on demand */
    snapshot_gzip_build(s);
    ck_assert(snapshot_gzip(s, &g1, &l1));
    snapshot_gzip_build(s); /* a second time changes nothing */
    ck_assert(snapshot_gzip(s, &g2, &l2));
    ck_assert_ptr_eq(g1, g2); /* built once */
    ck_assert_uint_eq(l1, l2);
    ck_assert_uint_gt(l1, 18);
    ck_assert_int_eq(g1[0], 0x1f); /* the gzip magic */
    ck_assert_int_eq(g1[1], 0x8b);
    /* ISIZE, the last four bytes: the plain length. */
    uint32_t isize = (uint32_t)g1[l1 - 4] | (uint32_t)g1[l1 - 3] << 8 | (uint32_t)g1[l1 - 2] << 16 |
                     (uint32_t)g1[l1 - 1] << 24;
    ck_assert_uint_eq(isize, s->body_len);
    snapshot_release(s);
}
END_TEST

START_TEST(test_publish_and_acquire)
{
    ck_assert_int_eq(snapshot_version(), -1);
    ck_assert_ptr_null(snapshot_acquire());

    struct vx_snapshot *s1 = numbered(1);
    snapshot_publish(s1); /* takes the caller's reference */
    ck_assert_int_eq(snapshot_version(), 1);
    struct vx_snapshot *a = snapshot_acquire();
    ck_assert_ptr_eq(a, s1);
    ck_assert_int_eq(atomic_load(&s1->refs), 2);
    snapshot_retain(a);
    ck_assert_int_eq(atomic_load(&s1->refs), 3);
    snapshot_release(a);
    snapshot_release(a);
    ck_assert_int_eq(atomic_load(&s1->refs), 1);

    /* A response still holds s1 when s2 is published: s1 stays whole until
     * that response lets go (ASan would report a read of freed memory). */
    struct vx_snapshot *held = snapshot_acquire();
    struct vx_snapshot *s2 = numbered(2);
    snapshot_publish(s2);
    ck_assert_int_eq(snapshot_version(), 2);
    ck_assert_int_eq(atomic_load(&held->refs), 1); /* only the response's now */
    ck_assert_int_eq(held->version, 1);
    ck_assert_int_eq(strncmp(held->body[0].base, "{\"version\":1,", 13), 0);
    ck_assert_str_eq(held->flags[1].name, "two");
    struct vx_snapshot *now = snapshot_acquire();
    ck_assert_ptr_eq(now, s2);
    snapshot_release(now);
    snapshot_release(held); /* the last reference: s1 is freed here */

    snapshot_release(NULL); /* allowed, does nothing */
    snapshot_shutdown();
    ck_assert_int_eq(snapshot_version(), -1);
    ck_assert_ptr_null(snapshot_acquire());
}
END_TEST

/* ---- one writer against several readers -------------------------------- */

#define STRESS_READERS   3
#define STRESS_VERSIONS  2000
#define STRESS_MAX_FLAGS 7
#define STRESS_BURST     32

static const char *const stress_names[STRESS_MAX_FLAGS] = {"a", "b", "c", "d", "e", "f", "g"};
static atomic_bool stress_done;

/* What the writer puts in version v: 1 + v % 7 flags, each revision v. */
static size_t stress_n_flags(int64_t v)
{
    return 1 + (size_t)(v % STRESS_MAX_FLAGS);
}

static struct vx_snapshot *stress_snapshot(int64_t v)
{
    size_t n = stress_n_flags(v);
    struct vx_flag *flags = calloc(n, sizeof(*flags));
    if (flags == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) /* given in reverse: snapshot_new sorts */
        fill_flag(&flags[i], stress_names[n - 1 - i], v % 2 == 0, (int)(v % 101), v);
    return snapshot_new(v, flags, n, NULL, 0);
}

/* 0 when s is what the writer made for its version, else a line number. */
static int stress_check(const struct vx_snapshot *s)
{
    char prefix[48];
    int n = snprintf(prefix, sizeof prefix, "{\"version\":%lld,\"flags\":[", (long long)s->version);

    if (s->n_flags != stress_n_flags(s->version))
        return __LINE__;
    size_t len = 0;
    for (size_t i = 0; i < s->body_n; i++)
        len += s->body[i].len;
    if (s->body_n != s->n_flags + 2 || len != s->body_len ||
        strncmp(s->body[0].base, prefix, (size_t)n) != 0)
        return __LINE__;
    for (size_t i = 0; i < s->n_flags; i++) {
        if (strcmp(s->flags[i].name, stress_names[i]) != 0 || s->flags[i].revision != s->version ||
            s->flags[i].percentage != (int)(s->version % 101))
            return __LINE__;
    }
    return atomic_load(&s->refs) >= 1 ? 0 : __LINE__;
}

struct stress_reader {
    pthread_t thread;
    long reads;
    int bad_line; /* first inconsistency seen, 0 if none */
    int64_t went_back;
};

static void *stress_read(void *arg)
{
    struct stress_reader *rd = arg;
    struct vx_snapshot *prev = NULL;
    int64_t last = -1;

    while (!atomic_load(&stress_done) || rd->reads == 0) {
        struct vx_snapshot *s = snapshot_acquire();
        if (s == NULL)
            continue;
        int bad = stress_check(s);
        if (bad != 0 && rd->bad_line == 0)
            rd->bad_line = bad;
        if (s->version < last) /* one writer publishes in order */
            rd->went_back = s->version;
        last = s->version;
        /* Hold the previous one across this acquire, as a response body
         * outlives its request, and check it is still whole. */
        if (prev != NULL) {
            bad = stress_check(prev);
            if (bad != 0 && rd->bad_line == 0)
                rd->bad_line = bad;
            snapshot_release(prev);
        }
        prev = s;
        rd->reads++;
        /* Then a burst of bare acquire/release pairs: the more of its time
         * a reader spends inside snapshot_acquire, the likelier a publish
         * lands between its load of the pointer and its reference. */
        for (int i = 0; i < STRESS_BURST; i++) {
            struct vx_snapshot *q = snapshot_acquire();
            if (q->version < last)
                rd->went_back = q->version;
            last = q->version;
            snapshot_release(q);
        }
    }
    snapshot_release(prev);
    return NULL;
}

START_TEST(test_publish_stress)
{
    struct stress_reader rd[STRESS_READERS];

    memset(rd, 0, sizeof rd);
    atomic_store(&stress_done, false);
    snapshot_publish(stress_snapshot(0));
    for (int i = 0; i < STRESS_READERS; i++)
        ck_assert_int_eq(pthread_create(&rd[i].thread, NULL, stress_read, &rd[i]), 0);
    for (int64_t v = 1; v <= STRESS_VERSIONS; v++) {
        struct vx_snapshot *s = stress_snapshot(v);
        ck_assert_ptr_nonnull(s);
        snapshot_publish(s);
    }
    atomic_store(&stress_done, true);
    long reads = 0;
    for (int i = 0; i < STRESS_READERS; i++) {
        pthread_join(rd[i].thread, NULL);
        ck_assert_msg(rd[i].bad_line == 0, "reader %d saw an inconsistent snapshot (line %d)", i,
                      rd[i].bad_line);
        ck_assert_msg(rd[i].went_back == 0, "reader %d went back to version %lld", i,
                      (long long)rd[i].went_back);
        reads += rd[i].reads;
    }
    ck_assert_int_ge(reads, STRESS_READERS);
    ck_assert_int_eq(snapshot_version(), STRESS_VERSIONS);
    struct vx_snapshot *last = snapshot_acquire();
    ck_assert_int_eq(last->version, STRESS_VERSIONS);
    ck_assert_int_eq(atomic_load(&last->refs), 2); /* the module's and ours: no reader leaked one */
    snapshot_release(last);
    snapshot_shutdown(); /* frees the last one; ASan's leak check sees the rest */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_new_sorts_and_serialises);
    tcase_add_test(tc, test_new_empty);
    tcase_add_test(tc, test_keys_escaped);
    tcase_add_loop_test(tc, test_find, 0, (int)N(finds));
    tcase_add_test(tc, test_find_token);
    tcase_add_test(tc, test_eval);
    tcase_add_test(tc, test_publish_and_acquire);
    tcase_add_test(tc, test_apply_shares_unchanged);
    tcase_add_test(tc, test_apply_delete_and_recreate);
    tcase_add_test(tc, test_gzip_once);
    suite_add_tcase(s, tc);

    /* A few seconds under TSan on two busy cores; the writer waits on
     * readers that are descheduled inside snapshot_acquire. */
    TCase *st = tcase_create("stress");
    tcase_set_timeout(st, 30);
    tcase_add_test(st, test_publish_stress);
    suite_add_tcase(s, st);

    return unit_run(s);
}
