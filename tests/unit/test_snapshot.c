/* test_snapshot.c -- views (one environment's flags, their bodies, their
 * sharing across changes), snapshots built from their parts (environments,
 * segments, tokens), finding things in them, and publishing them to
 * readers that never lock.
 *
 * Each test runs in its own forked child (Check), so the module's current
 * snapshot, its hazard slots and its count of live snapshots start empty in
 * every test.  The stress test runs one writer against three readers;
 * ASan's leak check and TSan judge what it leaves behind and how its
 * threads met. */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "eval.h"
#include "flag.h"
#include "snapshot.h"
#include "unit.h"
#include "view.h"

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

/* A malloc'd array of malloc'd copies of names[] (n may be 0). */
static char **make_names(const char *const *names, size_t n)
{
    char **a = calloc(n ? n : 1, sizeof(*a));
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = dup_or_die(names[i]);
    return a;
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

/* A segment held by value, as the store hands it to snapshot_build; users
 * must be given sorted and distinct. */
static void fill_segment(struct vx_segment *g, const char *name, const char *const *users, size_t n,
                         int64_t revision)
{
    memset(g, 0, sizeof(*g));
    g->name = dup_or_die(name);
    g->description = dup_or_die("");
    g->users = n > 0 ? make_names(users, n) : NULL;
    g->n_users = n;
    g->revision = revision;
}

/* ---- parts -------------------------------------------------------------- */

struct env_spec {
    int64_t id;
    const char *name;
    int64_t version;
    bool is_default;
};

/* parts at version with the environments e[0..n), no flags yet. */
static void parts_init(struct snapshot_parts *p, int64_t version, const struct env_spec *e,
                       size_t n)
{
    memset(p, 0, sizeof(*p));
    p->version = version;
    p->n_envs = n;
    p->envs = calloc(n ? n : 1, sizeof(*p->envs));
    p->flags = calloc(n ? n : 1, sizeof(*p->flags));
    p->n_flags = calloc(n ? n : 1, sizeof(*p->n_flags));
    ck_assert(p->envs != NULL && p->flags != NULL && p->n_flags != NULL);
    for (size_t i = 0; i < n; i++) {
        p->envs[i].id = e[i].id;
        p->envs[i].name = dup_or_die(e[i].name);
        p->envs[i].description = dup_or_die("");
        p->envs[i].is_default = e[i].is_default;
        p->envs[i].version = e[i].version;
    }
}

/* Environment i of p gets the flags named names[] (enabled at 100 %). */
static void parts_flags(struct snapshot_parts *p, size_t i, const char *const *names, size_t n)
{
    p->flags[i] = make_flags(names, n);
    p->n_flags[i] = n;
}

/* A snapshot of one default environment "production" (id 1) at version,
 * holding flags[0..n) and tokens[0..nt) (both taken). */
static struct vx_snapshot *one_env(int64_t version, struct vx_flag *flags, size_t n,
                                   struct vx_token *tokens, size_t nt)
{
    static const struct env_spec prod = {1, "production", 0, true};
    struct env_spec e = prod;
    struct snapshot_parts p;

    e.version = version;
    parts_init(&p, version, &e, 1);
    p.flags[0] = flags;
    p.n_flags[0] = n;
    p.tokens = tokens;
    p.n_tokens = nt;
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(p.envs); /* taken */
    ck_assert_ptr_null(p.tokens);
    return s;
}

/* The view of the environment called name in s. */
static struct vx_view *view_of(const struct vx_snapshot *s, const char *name)
{
    const struct vx_env *e = snapshot_env(s, name, strlen(name));
    ck_assert_msg(e != NULL, "no environment %s", name);
    ck_assert_ptr_nonnull(e->view);
    return e->view;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The plain body of v (caller frees). */
static char *body_of(const struct vx_view *v)
{
    size_t len;
    char *b = view_body_copy(v, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, strlen(b));
    return b;
}

/* The piece of flag name in v, or NULL. */
static const struct vx_flag_piece *piece_of(const struct vx_view *v, const char *name)
{
    const struct vx_flag *f = view_find(v, name, strlen(name));
    return f != NULL ? v->pieces[f - v->flags] : NULL;
}

/* A view built in full from flags named names[] at version. */
static struct vx_view *full_view(int64_t version, const char *const *names, size_t n)
{
    struct vx_view *v = view_apply(NULL, version, make_flags(names, n), n, NULL, 0);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* ---- views: building ---------------------------------------------------- */

START_TEST(test_new_sorts_and_serialises)
{
    static const char *const names[] = {"zeta", "alpha", "Mid", "alpha.2", "beta"};
    static const char *const sorted[] = {"Mid", "alpha", "alpha.2", "beta", "zeta"}; /* strcmp */
    struct vx_token *tokens = calloc(3, sizeof(*tokens));
    ck_assert_ptr_nonnull(tokens);
    fill_token(&tokens[0], "c", 0x30, 1);
    fill_token(&tokens[1], "a", 0x10, 9);
    fill_token(&tokens[2], "b", 0x10, 2);

    struct vx_snapshot *s = one_env(42, make_flags(names, N(names)), N(names), tokens, 3);
    ck_assert_int_eq(s->version, 42);
    ck_assert_int_eq(atomic_load(&s->refs), 1);
    ck_assert_int_eq(snapshot_live(), 1);
    ck_assert_uint_eq(s->n_envs, 1);
    ck_assert_uint_eq(s->default_env, 0);
    struct vx_view *v = s->envs[0].view;
    ck_assert_int_eq(v->version, 42);
    ck_assert_int_eq(atomic_load(&v->refs), 1);
    ck_assert_uint_eq(v->n_flags, N(names));
    for (size_t i = 0; i < N(sorted); i++)
        ck_assert_str_eq(v->flags[i].name, sorted[i]);
    ck_assert_uint_eq(s->n_tokens, 3);
    ck_assert_str_eq(s->tokens[0].name, "b");
    ck_assert_str_eq(s->tokens[1].name, "a");
    ck_assert_str_eq(s->tokens[2].name, "c");

    /* The GET /flags body: the version, then the flags in name order, each
     * exactly as flag_to_json writes it. */
    size_t body_len;
    char *text = view_body_copy(v, &body_len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(body_len, strlen(text));
    ck_assert_uint_eq(body_len, v->body_len);
    ck_assert_ptr_nonnull(v->joined); /* small: kept in one piece too */
    ck_assert_str_eq(v->joined, text);
    json_error_t jerr;
    json_t *body = json_loadb(text, body_len, 0, &jerr);
    ck_assert_msg(body != NULL, "body does not parse: %s", jerr.text);
    ck_assert_int_eq(json_integer_value(json_object_get(body, "version")), 42);
    json_t *arr = json_object_get(body, "flags");
    ck_assert_uint_eq(json_array_size(arr), N(names));
    for (size_t i = 0; i < N(sorted); i++) {
        json_t *want = flag_to_json(&v->flags[i]);
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
        ck_assert_uint_eq(v->keys_len[i], strlen(want));
        ck_assert_int_eq(memcmp(v->keys[i], want, v->keys_len[i]), 0);
        total += v->keys_len[i];
    }
    ck_assert_uint_eq(v->keys_total, total);
    snapshot_release(s);
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

START_TEST(test_new_empty)
{
    struct vx_snapshot *s = one_env(0, NULL, 0, NULL, 0);
    struct vx_view *v = s->envs[0].view;
    char *text = body_of(v);
    ck_assert_str_eq(text, "{\"version\":0,\"flags\":[]}");
    free(text);
    ck_assert_uint_eq(v->n_flags, 0);
    ck_assert_uint_eq(v->keys_total, 0);
    ck_assert_ptr_null(view_find(v, "a", 1));
    ck_assert_ptr_null(view_find(v, "", 0));
    uint8_t h[SHA256_LEN] = {0};
    ck_assert_ptr_null(snapshot_find_token(s, h));
    ck_assert_uint_eq(s->n_segments, 0);
    ck_assert_ptr_null(snapshot_segment(s, "a", 1));
    snapshot_release(s);
}
END_TEST

/* No environment at all: no snapshot, and everything handed over is freed
 * (ASan's leak check). */
START_TEST(test_build_without_env)
{
    static const char *const users[] = {"u"};
    struct snapshot_parts p;

    parts_init(&p, 3, NULL, 0);
    p.tokens = calloc(1, sizeof(*p.tokens));
    ck_assert_ptr_nonnull(p.tokens);
    fill_token(&p.tokens[0], "t", 1, 1);
    p.n_tokens = 1;
    p.segments = calloc(1, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "g", users, 1, 1);
    p.n_segments = 1;
    p.deleted = make_names(users, 1);
    p.n_deleted = 1;
    ck_assert_ptr_null(snapshot_build(NULL, &p));
    ck_assert_int_eq(snapshot_live(), 0);
    ck_assert_ptr_null(p.tokens);
    ck_assert_ptr_null(p.segments);
    ck_assert_ptr_null(p.deleted);
    ck_assert_uint_eq(p.n_tokens, 0);
}
END_TEST

/* A name that JSON must escape gets an escaped key. */
START_TEST(test_keys_escaped)
{
    static const char *const names[] = {"q\"uote"};
    struct vx_view *v = full_view(1, names, 1);
    ck_assert_uint_eq(v->keys_len[0], strlen("\"q\\\"uote\":"));
    ck_assert_int_eq(memcmp(v->keys[0], "\"q\\\"uote\":", v->keys_len[0]), 0);
    view_release(v);
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
    struct vx_view *v = full_view(1, find_names, N(find_names));
    const struct vx_flag *f = view_find(v, finds[_i].name, finds[_i].len);
    if (finds[_i].found == NULL) {
        ck_assert_msg(f == NULL, "\"%.*s\" found \"%s\"", (int)finds[_i].len, finds[_i].name,
                      f != NULL ? f->name : "");
    } else {
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(f->name, finds[_i].found);
        ck_assert(f >= v->flags && f < v->flags + v->n_flags);
    }
    view_release(v);
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
    struct vx_snapshot *s = one_env(1, NULL, 0, tokens, NT);
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

/* Environments by name (len bytes only) and by id; the default one. */
START_TEST(test_find_env)
{
    static const struct env_spec envs[] = {
        {7, "production", 3, false}, {9, "staging", 4, true}, {4, "dev", 5, false}};
    struct snapshot_parts p;

    parts_init(&p, 12, envs, N(envs));
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->n_envs, 3);
    for (size_t i = 0; i < N(envs); i++) { /* kept in the order given (creation order) */
        ck_assert_str_eq(s->envs[i].name, envs[i].name);
        ck_assert_int_eq(s->envs[i].view->version, envs[i].version);
    }
    ck_assert_uint_eq(s->default_env, 1);
    ck_assert_ptr_eq(snapshot_env(s, "staging", 7), &s->envs[1]);
    ck_assert_ptr_eq(snapshot_env(s, "staging-x", 7), &s->envs[1]); /* only len bytes count */
    ck_assert_ptr_null(snapshot_env(s, "stag", 4));
    ck_assert_ptr_null(snapshot_env(s, "staging2", 8));
    ck_assert_ptr_null(snapshot_env(s, "", 0));
    ck_assert_ptr_null(snapshot_env(s, "Staging", 7));
    ck_assert_ptr_eq(snapshot_env_by_id(s, 4), &s->envs[2]);
    ck_assert_ptr_eq(snapshot_env_by_id(s, 7), &s->envs[0]);
    ck_assert_ptr_null(snapshot_env_by_id(s, 1));
    ck_assert_ptr_null(snapshot_env_by_id(s, -1));
    snapshot_release(s);
}
END_TEST

/* snapshot_eval answers what eval_flag answers, through the prefix the
 * view computed for the flag's name. */
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
    struct vx_snapshot *s = one_env(1, flags, 4, NULL, 0);
    struct vx_view *v = s->envs[0].view;

    enum vx_reason r;
    size_t i_off = (size_t)(view_find(v, "off", 3) - v->flags);
    size_t i_all = (size_t)(view_find(v, "all", 3) - v->flags);
    size_t i_split = (size_t)(view_find(v, "split", 5) - v->flags);
    size_t i_listed = (size_t)(view_find(v, "listed", 6) - v->flags);

    ck_assert(!snapshot_eval(s, v, i_off, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    ck_assert(snapshot_eval(s, v, i_all, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_STATIC);
    ck_assert(snapshot_eval(s, v, i_listed, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(!snapshot_eval(s, v, i_listed, "bob", 3, &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    ck_assert(!snapshot_eval(s, v, i_split, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);

    int on = 0;
    for (int u = 0; u < 2000; u++) {
        char user[16];
        int n = snprintf(user, sizeof user, "user-%d", u);
        enum vx_reason r1, r2;
        bool a = snapshot_eval(s, v, i_split, user, (size_t)n, &r1);
        bool b = eval_flag(&v->flags[i_split], user, (size_t)n, &r2);
        ck_assert_int_eq(a, b);
        ck_assert_int_eq(r1, r2);
        on += a;
    }
    ck_assert_int_gt(on, 600); /* about 37 % of 2000 */
    ck_assert_int_lt(on, 880);
    snapshot_release(s);
}
END_TEST

/* ---- views: applying changes ------------------------------------------- */

START_TEST(test_apply_shares_unchanged)
{
    static const char *const names[] = {"b", "d", "f", "h"};
    struct vx_view *prev = full_view(5, names, 4);

    /* Replace d, add a and e and z (given out of order), delete f and an
     * unknown name. */
    static const char *const changed[] = {"z", "d", "a", "e"};
    struct vx_flag *ch = make_flags(changed, 4);
    ch[1].percentage = 7; /* the new d */
    static const char *const gone[] = {"nope", "f"};
    struct vx_view *v = view_apply(prev, 9, ch, 4, make_names(gone, 2), 2);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->version, 9);

    static const char *const want[] = {"a", "b", "d", "e", "h", "z"};
    ck_assert_uint_eq(v->n_flags, N(want));
    for (size_t i = 0; i < N(want); i++) {
        ck_assert_str_eq(v->flags[i].name, want[i]);
        ck_assert_ptr_eq(v->flags[i].name, v->pieces[i]->flag.name); /* a view, not a copy */
    }
    /* Unchanged flags: the same pieces, one reference more. */
    ck_assert_ptr_eq(piece_of(v, "b"), piece_of(prev, "b"));
    ck_assert_ptr_eq(piece_of(v, "h"), piece_of(prev, "h"));
    ck_assert_int_eq(atomic_load(&piece_of(v, "b")->refs), 2);
    ck_assert_ptr_ne(piece_of(v, "d"), piece_of(prev, "d"));
    ck_assert_int_eq(atomic_load(&piece_of(v, "d")->refs), 1);
    ck_assert_int_eq(view_find(v, "d", 1)->percentage, 7);
    ck_assert_int_eq(view_find(prev, "d", 1)->percentage, 100); /* prev untouched */
    ck_assert_ptr_null(view_find(v, "f", 1));
    ck_assert_ptr_nonnull(view_find(prev, "f", 1));
    ck_assert_int_eq(prev->version, 5);

    /* Byte for byte what a full build of the same flags gives. */
    struct vx_flag *all = make_flags(want, N(want));
    all[2].percentage = 7;
    struct vx_view *full = view_apply(NULL, 9, all, N(want), NULL, 0);
    ck_assert_ptr_nonnull(full);
    char *b1 = body_of(v), *b2 = body_of(full);
    ck_assert_str_eq(b1, b2);
    ck_assert_uint_eq(v->keys_total, full->keys_total);
    ck_assert_uint_eq(v->body_len, full->body_len);
    for (size_t i = 0; i < N(want); i++) {
        ck_assert_int_eq(
            eval_flag_prefixed(&v->flags[i], &v->pieces[i]->prefix, "someone", 7, NULL),
            eval_flag_prefixed(&full->flags[i], &full->pieces[i]->prefix, "someone", 7, NULL));
        ck_assert_int_eq(
            memcmp(&v->pieces[i]->prefix, &full->pieces[i]->prefix, sizeof(struct murmur3_ctx)), 0);
        ck_assert_uint_eq(v->keys_len[i], full->keys_len[i]);
        ck_assert_int_eq(memcmp(v->keys[i], full->keys[i], v->keys_len[i]), 0);
    }
    free(b1);
    free(b2);

    /* The old view goes; the shared pieces stay whole for the new one. */
    view_release(prev);
    ck_assert_int_eq(atomic_load(&piece_of(v, "b")->refs), 1);
    b1 = body_of(v);
    b2 = body_of(full);
    ck_assert_str_eq(b1, b2);
    free(b1);
    free(b2);
    view_release(full);
    view_release(v);
}
END_TEST

START_TEST(test_apply_delete_and_recreate)
{
    static const char *const names[] = {"x"};
    struct vx_view *v0 = full_view(1, names, 1);
    /* Deleted ... */
    struct vx_view *v1 = view_apply(v0, 2, NULL, 0, make_names(names, 1), 1);
    ck_assert_ptr_nonnull(v1);
    ck_assert_uint_eq(v1->n_flags, 0);
    char *b = body_of(v1);
    ck_assert_str_eq(b, "{\"version\":2,\"flags\":[]}");
    free(b);
    ck_assert_ptr_nonnull(view_find(v0, "x", 1)); /* still in the old one */
    /* ... and created again: a new piece. */
    struct vx_flag *again = make_flags(names, 1);
    again[0].revision = 3;
    struct vx_view *v2 = view_apply(v1, 3, again, 1, NULL, 0);
    ck_assert_ptr_nonnull(v2);
    ck_assert_uint_eq(v2->n_flags, 1);
    ck_assert_int_eq(v2->flags[0].revision, 3);
    ck_assert_ptr_ne(v2->pieces[0], v0->pieces[0]);
    /* No change at all: every piece shared. */
    struct vx_view *v3 = view_apply(v2, 3, NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(v3);
    ck_assert_ptr_eq(v3->pieces[0], v2->pieces[0]);
    ck_assert_int_eq(atomic_load(&v2->pieces[0]->refs), 2);
    view_release(v0);
    view_release(v1);
    view_release(v2);
    view_release(v3);
}
END_TEST

/* gunzip data (len bytes) into a malloc'd string; *out_len its length. */
static char *gunzip(const unsigned char *data, size_t len, size_t *out_len)
{
    z_stream z = {0};
    size_t cap = 4096;
    char *out = malloc(cap);

    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(inflateInit2(&z, 15 + 16), Z_OK);
    memcpy(&z.next_in, &data, sizeof(z.next_in)); /* zlib's next_in is not const */
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    inflateEnd(&z);
    return out;
}

START_TEST(test_gzip_once)
{
    static const char *const names[] = {"a", "b", "c"};
    struct vx_view *v = full_view(4, names, 3);
    const unsigned char *g1, *g2;
    size_t l1, l2;

    ck_assert(!view_gzip(v, &g1, &l1)); /* not made yet: never made on demand */
    ck_assert(view_gzip_ask(v));        /* the first to ask has it made ... */
    ck_assert(!view_gzip_ask(v));       /* ... nobody else */
    ck_assert(!view_gzip(v, &g1, &l1)); /* asking does not make it */
    view_gzip_build(v);
    ck_assert(view_gzip(v, &g1, &l1));
    view_gzip_build(v); /* a second time changes nothing */
    ck_assert(view_gzip(v, &g2, &l2));
    ck_assert_ptr_eq(g1, g2); /* built once */
    ck_assert_uint_eq(l1, l2);
    ck_assert_uint_gt(l1, 18);
    ck_assert_int_eq(g1[0], 0x1f); /* the gzip magic */
    ck_assert_int_eq(g1[1], 0x8b);
    /* ISIZE, the last four bytes: the plain length. */
    uint32_t isize = (uint32_t)g1[l1 - 4] | (uint32_t)g1[l1 - 3] << 8 | (uint32_t)g1[l1 - 2] << 16 |
                     (uint32_t)g1[l1 - 1] << 24;
    ck_assert_uint_eq(isize, v->body_len);
    /* And it unpacks to the plain body, byte for byte. */
    size_t plain_len;
    char *plain = gunzip(g1, l1, &plain_len);
    char *body = body_of(v);
    ck_assert_uint_eq(plain_len, v->body_len);
    ck_assert_int_eq(memcmp(plain, body, plain_len), 0);
    free(plain);
    free(body);
    view_release(v);
}
END_TEST

/* ---- snapshots: environments across a build ----------------------------- */

/* An environment whose version did not move keeps the very same view; one
 * whose version moved gets a new view that shares its unchanged pieces;
 * deleted names go from moved environments only. */
START_TEST(test_build_keeps_unmoved_views)
{
    static const struct env_spec e0[] = {{1, "production", 3, true}, {2, "staging", 5, false}};
    static const char *const names[] = {"b", "d", "x"};
    struct snapshot_parts p;

    parts_init(&p, 10, e0, 2);
    parts_flags(&p, 0, names, 3);
    parts_flags(&p, 1, names, 3);
    struct vx_snapshot *s0 = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s0);
    struct vx_view *prod0 = view_of(s0, "production"), *stag0 = view_of(s0, "staging");
    ck_assert_ptr_ne(prod0, stag0);
    ck_assert_uint_eq(prod0->n_flags, 3);

    /* staging moves: d changes, x is deleted; production stays at 3. */
    static const struct env_spec e1[] = {{1, "production", 3, true}, {2, "staging", 6, false}};
    static const char *const gone[] = {"x"};
    parts_init(&p, 11, e1, 2);
    p.flags[1] = make_flags(names + 1, 1); /* d */
    p.flags[1][0].percentage = 42;
    p.n_flags[1] = 1;
    p.deleted = make_names(gone, 1);
    p.n_deleted = 1;
    struct vx_snapshot *s1 = snapshot_build(s0, &p);
    ck_assert_ptr_nonnull(s1);
    ck_assert_int_eq(s1->version, 11);
    ck_assert_int_eq(snapshot_live(), 2);

    struct vx_view *prod1 = view_of(s1, "production"), *stag1 = view_of(s1, "staging");
    ck_assert_ptr_eq(prod1, prod0); /* the very same view */
    ck_assert_int_eq(atomic_load(&prod0->refs), 2);
    ck_assert_ptr_nonnull(view_find(prod1, "x", 1)); /* not moved: the deletion is not its */
    ck_assert_ptr_ne(stag1, stag0);
    ck_assert_int_eq(stag1->version, 6);
    ck_assert_uint_eq(stag1->n_flags, 2);
    ck_assert_ptr_null(view_find(stag1, "x", 1));
    ck_assert_ptr_eq(piece_of(stag1, "b"), piece_of(stag0, "b")); /* shared */
    ck_assert_int_eq(atomic_load(&piece_of(stag1, "b")->refs), 2);
    ck_assert_ptr_ne(piece_of(stag1, "d"), piece_of(stag0, "d"));
    ck_assert_int_eq(view_find(stag1, "d", 1)->percentage, 42);
    ck_assert_int_eq(view_find(stag0, "d", 1)->percentage, 100); /* s0 untouched */
    ck_assert_ptr_nonnull(view_find(stag0, "x", 1));
    char *b = body_of(stag1);
    ck_assert_msg(starts_with(b, "{\"version\":6,\"flags\":[{\"name\":\"b\","), "%s", b);
    free(b);
    /* The pieces of one environment are not another's: production's b is
     * its own. */
    ck_assert_ptr_ne(piece_of(prod1, "b"), piece_of(stag1, "b"));

    /* s0 goes: production's view stays (s1 holds it), staging's old one
     * goes, and the shared pieces with it lose a reference. */
    snapshot_release(s0);
    ck_assert_int_eq(snapshot_live(), 1);
    ck_assert_int_eq(atomic_load(&prod1->refs), 1);
    ck_assert_int_eq(atomic_load(&piece_of(stag1, "b")->refs), 1);
    b = body_of(prod1);
    ck_assert_msg(starts_with(b, "{\"version\":3,\"flags\":[{\"name\":\"b\","), "%s", b);
    free(b);
    snapshot_release(s1);
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

/* Environments come and go and are known by id: a new one is built in full,
 * a renamed one (same id, same version) keeps its view, one that is gone
 * lets go of its view. */
START_TEST(test_build_envs_come_and_go)
{
    static const struct env_spec e0[] = {{1, "production", 3, true}, {2, "staging", 5, false}};
    static const char *const names[] = {"a", "b"};
    struct snapshot_parts p;

    parts_init(&p, 10, e0, 2);
    parts_flags(&p, 0, names, 2);
    parts_flags(&p, 1, names, 1);
    struct vx_snapshot *s0 = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s0);
    struct vx_view *prod0 = view_of(s0, "production"), *stag0 = view_of(s0, "staging");
    view_retain(stag0); /* to watch it */

    /* staging gone, production renamed "live" and no longer first, "qa" new. */
    static const struct env_spec e1[] = {{3, "qa", 1, false}, {1, "live", 3, true}};
    parts_init(&p, 11, e1, 2);
    parts_flags(&p, 0, names + 1, 1);
    struct vx_snapshot *s1 = snapshot_build(s0, &p);
    ck_assert_ptr_nonnull(s1);
    ck_assert_uint_eq(s1->n_envs, 2);
    ck_assert_uint_eq(s1->default_env, 1);
    ck_assert_ptr_null(snapshot_env(s1, "production", 10));
    ck_assert_ptr_null(snapshot_env(s1, "staging", 7));
    ck_assert_ptr_eq(view_of(s1, "live"), prod0);
    struct vx_view *qa = view_of(s1, "qa");
    ck_assert_int_eq(qa->version, 1);
    ck_assert_uint_eq(qa->n_flags, 1);
    ck_assert_str_eq(qa->flags[0].name, "b");

    ck_assert_int_eq(atomic_load(&stag0->refs), 2); /* s0's and ours */
    snapshot_release(s0);
    ck_assert_int_eq(atomic_load(&stag0->refs), 1); /* ours alone: s1 never took it */
    view_release(stag0);
    ck_assert_int_eq(atomic_load(&prod0->refs), 1); /* s1's */
    snapshot_release(s1);
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

/* ---- snapshots: segments ------------------------------------------------ */

static const struct vx_segment *seg(const struct vx_snapshot *s, const char *name)
{
    return snapshot_segment(s, name, strlen(name));
}

START_TEST(test_segments_shared_replaced_deleted)
{
    static const struct env_spec env = {1, "production", 1, true};
    static const char *const u1[] = {"alice", "bob"}, *const u2[] = {"carol"},
                             *const u3[] = {"dave"}, *const u2b[] = {"carol", "erin"};
    struct snapshot_parts p;

    parts_init(&p, 1, &env, 1);
    p.segments = calloc(3, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "gamma", u3, 1, 1); /* given out of order: sorted by name */
    fill_segment(&p.segments[1], "alpha", u1, 2, 1);
    fill_segment(&p.segments[2], "beta", u2, 1, 1);
    p.n_segments = 3;
    struct vx_snapshot *s0 = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s0);
    ck_assert_ptr_null(p.segments); /* taken */
    ck_assert_uint_eq(s0->n_segments, 3);
    ck_assert_str_eq(s0->segments[0]->name, "alpha");
    ck_assert_str_eq(s0->segments[1]->name, "beta");
    ck_assert_str_eq(s0->segments[2]->name, "gamma");
    const struct vx_segment *alpha0 = seg(s0, "alpha"), *beta0 = seg(s0, "beta");
    ck_assert_ptr_eq(alpha0, s0->segments[0]);
    ck_assert_ptr_null(seg(s0, "alph"));
    ck_assert_ptr_null(seg(s0, "alphaa"));
    ck_assert_ptr_eq(snapshot_segment(s0, "alphabet", 5), alpha0); /* only len bytes count */
    ck_assert_int_eq(atomic_load(&alpha0->refs), 1);

    /* beta changes, gamma goes, delta comes; alpha is not mentioned. */
    static const char *const gone[] = {"gamma", "no-such-segment"};
    parts_init(&p, 2, &env, 1);
    p.segments = calloc(2, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "delta", u1, 1, 1);
    fill_segment(&p.segments[1], "beta", u2b, 2, 2);
    p.n_segments = 2;
    p.deleted_segments = make_names(gone, 2);
    p.n_deleted_segments = 2;
    struct vx_snapshot *s1 = snapshot_build(s0, &p);
    ck_assert_ptr_nonnull(s1);
    ck_assert_uint_eq(s1->n_segments, 3);
    ck_assert_str_eq(s1->segments[0]->name, "alpha");
    ck_assert_str_eq(s1->segments[1]->name, "beta");
    ck_assert_str_eq(s1->segments[2]->name, "delta");
    ck_assert_ptr_eq(seg(s1, "alpha"), alpha0); /* unchanged: the same object */
    ck_assert_int_eq(atomic_load(&alpha0->refs), 2);
    const struct vx_segment *beta1 = seg(s1, "beta");
    ck_assert_ptr_ne(beta1, beta0); /* changed: replaced */
    ck_assert_int_eq(beta1->revision, 2);
    ck_assert_uint_eq(beta1->n_users, 2);
    ck_assert_str_eq(beta1->users[1], "erin");
    ck_assert_int_eq(atomic_load(&beta1->refs), 1);
    ck_assert_ptr_null(seg(s1, "gamma")); /* deleted */
    ck_assert_ptr_nonnull(seg(s1, "delta"));
    /* s0 is as it was. */
    ck_assert_uint_eq(s0->n_segments, 3);
    ck_assert_ptr_eq(seg(s0, "beta"), beta0);
    ck_assert_uint_eq(beta0->n_users, 1);
    ck_assert_ptr_nonnull(seg(s0, "gamma"));

    snapshot_release(s0);
    ck_assert_int_eq(atomic_load(&alpha0->refs), 1);
    ck_assert_str_eq(seg(s1, "alpha")->users[0], "alice"); /* still whole */

    /* No segment change at all: every one shared. */
    parts_init(&p, 3, &env, 1);
    struct vx_snapshot *s2 = snapshot_build(s1, &p);
    ck_assert_ptr_nonnull(s2);
    ck_assert_uint_eq(s2->n_segments, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_ptr_eq(s2->segments[i], s1->segments[i]);
    ck_assert_ptr_eq(view_of(s2, "production"), view_of(s1, "production"));
    snapshot_release(s1);
    snapshot_release(s2);
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

/* snapshot_eval finds a user through a segment the flag names
 * (TARGETING_MATCH), not through a segment that does not exist, and
 * answers from its own snapshot's segments. */
START_TEST(test_eval_segments)
{
    static const struct env_spec env = {1, "production", 1, true};
    static const char *const beta_users[] = {"alice", "bob"}, *const other_users[] = {"carol"};
    struct snapshot_parts p;

    parts_init(&p, 1, &env, 1);
    p.flags[0] = calloc(3, sizeof(struct vx_flag));
    ck_assert_ptr_nonnull(p.flags[0]);
    fill_flag(&p.flags[0][0], "seg", true, 0, 1);
    static const char *const seg_names[] = {"beta", "nosuch"};
    p.flags[0][0].segments = make_names(seg_names, 2);
    p.flags[0][0].n_segments = 2;
    fill_flag(&p.flags[0][1], "ghost", true, 0, 1);
    p.flags[0][1].segments = make_names(seg_names + 1, 1);
    p.flags[0][1].n_segments = 1;
    fill_flag(&p.flags[0][2], "off", false, 100, 1);
    p.flags[0][2].segments = make_names(seg_names, 1);
    p.flags[0][2].n_segments = 1;
    p.n_flags[0] = 3;
    p.segments = calloc(2, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "beta", beta_users, 2, 1);
    fill_segment(&p.segments[1], "other", other_users, 1, 1);
    p.n_segments = 2;
    struct vx_snapshot *s0 = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s0);
    struct vx_view *v = view_of(s0, "production");
    size_t i_seg = (size_t)(view_find(v, "seg", 3) - v->flags);
    size_t i_ghost = (size_t)(view_find(v, "ghost", 5) - v->flags);
    size_t i_off = (size_t)(view_find(v, "off", 3) - v->flags);
    enum vx_reason r;

    ck_assert(snapshot_eval(s0, v, i_seg, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(snapshot_eval(s0, v, i_seg, "bob", 3, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(
        !snapshot_eval(s0, v, i_seg, "carol", 5, &r)); /* in a segment the flag does not name */
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    ck_assert(snapshot_eval(s0, v, i_seg, "alicex", 5, &r)); /* "alice": users by length */
    ck_assert(!snapshot_eval(s0, v, i_seg, "alicex", 6, &r));
    ck_assert(!snapshot_eval(s0, v, i_seg, "ali", 3, &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    ck_assert(!snapshot_eval(s0, v, i_seg, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);
    ck_assert(!snapshot_eval(s0, v, i_ghost, "alice", 5, &r)); /* unknown segment: nobody */
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    ck_assert(!snapshot_eval(s0, v, i_off, "alice", 5, &r)); /* the kill switch wins */
    ck_assert_int_eq(r, VX_REASON_DISABLED);

    /* beta changes (alice leaves, carol joins) and nosuch comes into being
     * with dave: only the new snapshot sees it; the flags did not move. */
    static const char *const beta2[] = {"bob", "carol"}, *const nosuch_users[] = {"dave"};
    parts_init(&p, 2, &env, 1);
    p.segments = calloc(2, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "beta", beta2, 2, 2);
    fill_segment(&p.segments[1], "nosuch", nosuch_users, 1, 1);
    p.n_segments = 2;
    struct vx_snapshot *s1 = snapshot_build(s0, &p);
    ck_assert_ptr_nonnull(s1);
    ck_assert_ptr_eq(view_of(s1, "production"), v);
    ck_assert(!snapshot_eval(s1, v, i_seg, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    ck_assert(snapshot_eval(s1, v, i_seg, "carol", 5, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(snapshot_eval(s1, v, i_ghost, "dave", 4, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(snapshot_eval(s1, v, i_seg, "dave", 4, &r)); /* through its second segment */
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert(snapshot_eval(s0, v, i_seg, "alice", 5, &r)); /* s0 as it was */
    ck_assert(!snapshot_eval(s0, v, i_ghost, "dave", 4, &r));
    snapshot_release(s0);
    snapshot_release(s1);
}
END_TEST

/* A large segment: every member is found through the hash set and nobody
 * else -- neither a member's prefix nor a longer id, nor one holding a
 * NUL, nor the same bytes asked for with another length. */
START_TEST(test_eval_large_segment)
{
    static const struct env_spec env = {1, "production", 1, true};
    enum { N = 5000 };
    static char ids[N][16];
    static const char *users[N];
    struct snapshot_parts p;

    for (size_t i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "m%05zu", i * 2); /* sorted: fixed width */
        users[i] = ids[i];
    }
    parts_init(&p, 1, &env, 1);
    p.flags[0] = calloc(1, sizeof(struct vx_flag));
    ck_assert_ptr_nonnull(p.flags[0]);
    fill_flag(&p.flags[0][0], "big", true, 0, 1);
    static const char *const seg_names[] = {"many"};
    p.flags[0][0].segments = make_names(seg_names, 1);
    p.flags[0][0].n_segments = 1;
    p.n_flags[0] = 1;
    p.segments = calloc(1, sizeof(*p.segments));
    ck_assert_ptr_nonnull(p.segments);
    fill_segment(&p.segments[0], "many", users, N, 1);
    p.n_segments = 1;
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);
    struct vx_view *v = view_of(s, "production");
    enum vx_reason r;
    char id[16];

    for (size_t i = 0; i < 2 * N; i++) {
        int n = snprintf(id, sizeof id, "m%05zu", i);
        bool on = snapshot_eval(s, v, 0, id, (size_t)n, &r);
        ck_assert_msg(on == (i % 2 == 0), "%s: %d", id, on);
        ck_assert_int_eq(r, on ? VX_REASON_TARGETING_MATCH : VX_REASON_SPLIT);
    }
    ck_assert(!snapshot_eval(s, v, 0, "m0000", 5, &r));     /* a member's prefix */
    ck_assert(!snapshot_eval(s, v, 0, "m000000", 7, &r));   /* longer */
    ck_assert(!snapshot_eval(s, v, 0, "m00000\0x", 8, &r)); /* a NUL inside */
    ck_assert(snapshot_eval(s, v, 0, "m00000x", 6, &r));    /* only len bytes count */
    snapshot_release(s);
}
END_TEST

/* ---- snapshots: tokens -------------------------------------------------- */

START_TEST(test_token_env_index)
{
    static const struct env_spec envs[] = {{5, "production", 1, true}, {6, "staging", 1, false}};
    struct snapshot_parts p;

    parts_init(&p, 1, envs, 2);
    p.tokens = calloc(5, sizeof(*p.tokens));
    ck_assert_ptr_nonnull(p.tokens);
    fill_token(&p.tokens[0], "client-staging", 0x50, 0);
    p.tokens[0].env = dup_or_die("staging");
    fill_token(&p.tokens[1], "admin", 0x40, 0);
    p.tokens[1].role = VX_ROLE_ADMIN;
    fill_token(&p.tokens[2], "frontend-prod", 0x30, 0);
    p.tokens[2].role = VX_ROLE_FRONTEND;
    p.tokens[2].env = dup_or_die("production");
    fill_token(&p.tokens[3], "client-gone", 0x20, 0);
    p.tokens[3].env = dup_or_die("gone");
    fill_token(&p.tokens[4], "frontend-staging", 0x10, 0);
    p.tokens[4].role = VX_ROLE_FRONTEND;
    p.tokens[4].env = dup_or_die("staging");
    p.n_tokens = 5;
    for (size_t i = 0; i < 5; i++)
        p.tokens[i].env_index = 77; /* whatever the store left there */
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);

    static const struct {
        uint8_t fill;
        const char *name;
        size_t env_index;
    } want[] = {{0x50, "client-staging", 1},
                {0x40, "admin", SIZE_MAX},
                {0x30, "frontend-prod", 0},
                {0x20, "client-gone", SIZE_MAX},
                {0x10, "frontend-staging", 1}};
    for (size_t i = 0; i < N(want); i++) {
        uint8_t h[SHA256_LEN];
        memset(h, want[i].fill, SHA256_LEN);
        h[SHA256_LEN - 1] = 0;
        const struct vx_token *t = snapshot_find_token(s, h);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_msg(t->env_index == want[i].env_index, "%s: env_index %zu, want %zu",
                      want[i].name, t->env_index, want[i].env_index);
        if (t->env_index != SIZE_MAX)
            ck_assert_str_eq(s->envs[t->env_index].name, t->env);
    }
    snapshot_release(s);
}
END_TEST

START_TEST(test_roles)
{
    ck_assert_str_eq(role_name(VX_ROLE_ADMIN), "admin");
    ck_assert_str_eq(role_name(VX_ROLE_CLIENT), "client");
    ck_assert_str_eq(role_name(VX_ROLE_FRONTEND), "frontend");
    ck_assert_int_eq(role_parse("admin"), VX_ROLE_ADMIN);
    ck_assert_int_eq(role_parse("client"), VX_ROLE_CLIENT);
    ck_assert_int_eq(role_parse("frontend"), VX_ROLE_FRONTEND);
    ck_assert_int_eq(role_parse("Admin"), -1);
    ck_assert_int_eq(role_parse("admin "), -1);
    ck_assert_int_eq(role_parse(""), -1);
    ck_assert_int_eq(role_parse(NULL), -1);
}
END_TEST

/* Which tokens a snapshot holds, compared by hash whatever the order. */
START_TEST(test_same_tokens)
{
    struct vx_token *t1 = calloc(2, sizeof(*t1)), *t2 = calloc(2, sizeof(*t2));
    ck_assert(t1 != NULL && t2 != NULL);
    fill_token(&t1[0], "a", 0x10, 1);
    fill_token(&t1[1], "b", 0x20, 1);
    fill_token(&t2[0], "b", 0x20, 1);
    fill_token(&t2[1], "a", 0x10, 1);
    struct vx_snapshot *a = one_env(1, NULL, 0, t1, 2), *b = one_env(2, NULL, 0, t2, 2);
    ck_assert(snapshot_same_tokens(a, b));

    struct vx_token probe[3];
    fill_token(&probe[0], "x", 0x20, 1);
    fill_token(&probe[1], "y", 0x10, 1);
    ck_assert(snapshot_tokens_are(a, probe, 2)); /* sorted here */
    ck_assert_int_eq(probe[0].hash[0], 0x10);
    ck_assert(!snapshot_tokens_are(a, probe, 1));
    fill_token(&probe[2], "z", 0x30, 1);
    ck_assert(!snapshot_tokens_are(a, probe, 3));
    probe[1].hash[5] ^= 1; /* the same count, one hash off */
    ck_assert(!snapshot_tokens_are(a, probe, 2));
    for (size_t i = 0; i < 3; i++)
        token_free(&probe[i]);

    struct vx_snapshot *c = one_env(3, NULL, 0, NULL, 0);
    ck_assert(!snapshot_same_tokens(a, c));
    ck_assert(!snapshot_same_tokens(c, a));
    ck_assert(snapshot_tokens_are(c, NULL, 0));
    snapshot_release(a);
    snapshot_release(b);
    snapshot_release(c);
}
END_TEST

/* A token's use starts at what the database had and is stamped at most
 * about once a second. */
START_TEST(test_token_used)
{
    const int64_t T = INT64_C(1795673499000000), SEC = 1000000;
    struct vx_token *tokens = calloc(2, sizeof(*tokens));
    ck_assert_ptr_nonnull(tokens);
    fill_token(&tokens[0], "old", 0x10, 0);
    tokens[0].last_used_at = T - 100 * SEC;
    fill_token(&tokens[1], "never", 0x20, 0);
    struct vx_snapshot *s = one_env(1, NULL, 0, tokens, 2);
    const struct vx_token *old = &s->tokens[0], *never = &s->tokens[1];
    struct vx_token_use *u_old = &s->token_use[0], *u_never = &s->token_use[1];
    ck_assert_str_eq(old->name, "old");

    ck_assert_int_eq(atomic_load(&u_old->last_used), T - 100 * SEC);
    ck_assert_int_eq(u_old->flushed, T - 100 * SEC);
    ck_assert_int_eq(atomic_load(&u_never->last_used), 0);
    ck_assert_int_eq(u_never->flushed, 0);

    snapshot_token_used(s, old, T);
    ck_assert_int_eq(atomic_load(&u_old->last_used), T);
    ck_assert_int_eq(atomic_load(&u_never->last_used), 0); /* only that token's */
    snapshot_token_used(s, old, T + SEC);                  /* not more than a second later */
    ck_assert_int_eq(atomic_load(&u_old->last_used), T);
    snapshot_token_used(s, old, T + SEC + 1);
    ck_assert_int_eq(atomic_load(&u_old->last_used), T + SEC + 1);
    ck_assert_int_eq(u_old->flushed, T - 100 * SEC); /* the listener's to move */
    snapshot_token_used(s, never, T);
    ck_assert_int_eq(atomic_load(&u_never->last_used), T);
    ck_assert_int_eq(old->last_used_at, T - 100 * SEC); /* the immutable token untouched */
    snapshot_release(s);
}
END_TEST

/* ---- publishing and references ----------------------------------------- */

static struct vx_snapshot *numbered(int64_t version)
{
    static const char *const names[] = {"one", "two"};
    return one_env(version, make_flags(names, 2), 2, NULL, 0);
}

START_TEST(test_publish_and_acquire)
{
    ck_assert_int_eq(snapshot_version(), -1);
    ck_assert_ptr_null(snapshot_acquire());

    struct vx_snapshot *s1 = numbered(1);
    struct vx_view *v1 = s1->envs[0].view;
    ck_assert(!snapshot_view_current(v1));
    snapshot_publish(s1); /* takes the caller's reference */
    ck_assert_int_eq(snapshot_version(), 1);
    ck_assert(snapshot_view_current(v1));
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
    ck_assert_int_eq(snapshot_live(), 2);
    ck_assert(!snapshot_view_current(v1));
    ck_assert(snapshot_view_current(s2->envs[0].view));
    ck_assert_int_eq(atomic_load(&held->refs), 1); /* only the response's now */
    ck_assert_int_eq(held->version, 1);
    struct vx_view *hv = held->envs[0].view;
    ck_assert_int_eq(strncmp(hv->body[0].base, "{\"version\":1,", 13), 0);
    ck_assert_str_eq(hv->flags[1].name, "two");
    /* A body holds its view: it outlives the snapshot it came from. */
    view_retain(hv);
    struct vx_snapshot *now = snapshot_acquire();
    ck_assert_ptr_eq(now, s2);
    snapshot_release(now);
    snapshot_release(held); /* the last reference: s1 is freed here */
    ck_assert_int_eq(snapshot_live(), 1);
    ck_assert_int_eq(atomic_load(&hv->refs), 1);
    char *b = body_of(hv);
    ck_assert_msg(starts_with(b, "{\"version\":1,\"flags\":[{\"name\":\"one\","), "%s", b);
    free(b);
    view_release(hv);

    snapshot_release(NULL); /* allowed, does nothing */
    snapshot_shutdown();
    ck_assert_int_eq(snapshot_version(), -1);
    ck_assert_ptr_null(snapshot_acquire());
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

/* ---- one writer against several readers -------------------------------- */

#define STRESS_READERS   3
#define STRESS_VERSIONS  2000
#define STRESS_MAX_FLAGS 7
#define STRESS_BURST     32

static const char *const stress_names[STRESS_MAX_FLAGS] = {"a", "b", "c", "d", "e", "f", "g"};
static atomic_bool stress_done;
/* The view of the environment that never moves: every snapshot shares it. */
static struct vx_view *stress_still;

/* What the writer puts in version v: 1 + v % 7 flags, each revision v. */
static size_t stress_n_flags(int64_t v)
{
    return 1 + (size_t)(v % STRESS_MAX_FLAGS);
}

/* Version v, from prev (NULL: in full): "moving" (id 1) at version v with
 * its flags all changed and the ones past its count deleted, "still" (id 2)
 * at version 0 with one flag, given only in full. */
static struct vx_snapshot *stress_snapshot(const struct vx_snapshot *prev, int64_t v)
{
    static const struct env_spec envs[] = {{1, "moving", 0, true}, {2, "still", 0, false}};
    static const char *const still_names[] = {"const"};
    struct env_spec e[2] = {envs[0], envs[1]};
    struct snapshot_parts p;
    size_t n = stress_n_flags(v);

    e[0].version = v;
    parts_init(&p, v, e, 2);
    p.flags[0] = calloc(n, sizeof(struct vx_flag));
    if (p.flags[0] == NULL)
        return NULL;
    p.n_flags[0] = n;
    for (size_t i = 0; i < n; i++) /* given in reverse: the view sorts */
        fill_flag(&p.flags[0][i], stress_names[n - 1 - i], v % 2 == 0, (int)(v % 101), v);
    if (prev == NULL) {
        parts_flags(&p, 1, still_names, 1);
    } else {
        p.deleted = make_names(stress_names + n, STRESS_MAX_FLAGS - n);
        p.n_deleted = STRESS_MAX_FLAGS - n;
    }
    return snapshot_build(prev, &p);
}

/* 0 when s is what the writer made for its version, else a line number. */
static int stress_check(const struct vx_snapshot *s)
{
    char prefix[48];
    int n = snprintf(prefix, sizeof prefix, "{\"version\":%lld,\"flags\":[", (long long)s->version);

    if (s->n_envs != 2 || s->envs[0].id != 1 || s->envs[1].view != stress_still)
        return __LINE__;
    const struct vx_view *v = s->envs[0].view, *still = s->envs[1].view;
    if (v->version != s->version || v->n_flags != stress_n_flags(s->version))
        return __LINE__;
    size_t len = 0;
    for (size_t i = 0; i < v->body_n; i++)
        len += v->body[i].len;
    if (v->body_n != v->n_flags + 2 || len != v->body_len ||
        strncmp(v->body[0].base, prefix, (size_t)n) != 0 || v->joined == NULL ||
        strncmp(v->joined, prefix, (size_t)n) != 0)
        return __LINE__;
    for (size_t i = 0; i < v->n_flags; i++) {
        if (strcmp(v->flags[i].name, stress_names[i]) != 0 || v->flags[i].revision != s->version ||
            v->flags[i].percentage != (int)(s->version % 101))
            return __LINE__;
    }
    if (still->n_flags != 1 || strcmp(still->flags[0].name, "const") != 0 ||
        atomic_load(&still->refs) < 1)
        return __LINE__;
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
    /* The writer keeps a reference to what it published last, to build the
     * next one from, as the listener does. */
    struct vx_snapshot *mine = stress_snapshot(NULL, 0);
    ck_assert_ptr_nonnull(mine);
    stress_still = mine->envs[1].view;
    snapshot_retain(mine);
    snapshot_publish(mine);
    for (int i = 0; i < STRESS_READERS; i++)
        ck_assert_int_eq(pthread_create(&rd[i].thread, NULL, stress_read, &rd[i]), 0);
    for (int64_t v = 1; v <= STRESS_VERSIONS; v++) {
        struct vx_snapshot *s = stress_snapshot(mine, v);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(stress_check(s), 0);
        snapshot_retain(s);
        snapshot_publish(s);
        snapshot_release(mine);
        mine = s;
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
    snapshot_release(mine);
    ck_assert_int_ge(reads, STRESS_READERS);
    ck_assert_int_eq(snapshot_version(), STRESS_VERSIONS);
    struct vx_snapshot *last = snapshot_acquire();
    ck_assert_int_eq(last->version, STRESS_VERSIONS);
    ck_assert_int_eq(atomic_load(&last->refs), 2); /* the module's and ours: no reader leaked one */
    ck_assert_int_eq(snapshot_live(), 1);          /* every older one freed */
    ck_assert_int_eq(atomic_load(&stress_still->refs), 1); /* held by the last one alone */
    snapshot_release(last);
    snapshot_shutdown(); /* frees the last one; ASan's leak check sees the rest */
    ck_assert_int_eq(snapshot_live(), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("snapshot");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_new_sorts_and_serialises);
    tcase_add_test(tc, test_new_empty);
    tcase_add_test(tc, test_build_without_env);
    tcase_add_test(tc, test_keys_escaped);
    tcase_add_loop_test(tc, test_find, 0, (int)N(finds));
    tcase_add_test(tc, test_find_token);
    tcase_add_test(tc, test_find_env);
    tcase_add_test(tc, test_eval);
    tcase_add_test(tc, test_publish_and_acquire);
    tcase_add_test(tc, test_apply_shares_unchanged);
    tcase_add_test(tc, test_apply_delete_and_recreate);
    tcase_add_test(tc, test_gzip_once);
    tcase_add_test(tc, test_build_keeps_unmoved_views);
    tcase_add_test(tc, test_build_envs_come_and_go);
    tcase_add_test(tc, test_segments_shared_replaced_deleted);
    tcase_add_test(tc, test_eval_segments);
    tcase_add_test(tc, test_eval_large_segment);
    tcase_add_test(tc, test_token_env_index);
    tcase_add_test(tc, test_roles);
    tcase_add_test(tc, test_same_tokens);
    tcase_add_test(tc, test_token_used);
    suite_add_tcase(s, tc);

    /* A few seconds under TSan on two busy cores; the writer waits on
     * readers that are descheduled inside snapshot_acquire. */
    TCase *st = tcase_create("stress");
    tcase_set_timeout(st, 30);
    tcase_add_test(st, test_publish_stress);
    suite_add_tcase(s, st);

    return unit_run(s);
}
