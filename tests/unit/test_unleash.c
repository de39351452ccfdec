/* test_unleash.c -- vexil's flags as Unleash features: for every kind of
 * flag state, an Unleash SDK's evaluation of the features sent (written
 * here as the Node SDK evaluates them: strategies OR-ed, userWithId split
 * on commas and trimmed, the IN constraint, flexibleRollout on
 * murmur3("groupId:userId") % 100 + 1 and off without a user id) equals
 * vexil's own evaluation, for thousands of users. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "murmur3.h"
#include "snapshot.h"
#include "unit.h"
#include "unleash.h"

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

static char **names(const char *const *v, size_t n)
{
    char **a = calloc(n ? n : 1, sizeof *a);
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = dup_or_die(v[i]);
    return a;
}

struct flag_spec {
    const char *name;
    bool enabled;
    int percentage;
    const char *users[4]; /* sorted */
    const char *segments[2];
};

/* Every kind of state of docs/evaluation.md, and ids the SDKs' userWithId
 * cannot carry. */
static const struct flag_spec FLAGS[] = {
    {"a.off", false, 50, {"alice"}, {"team"}},
    {"b.listed", true, 0, {"alice", "carol"}, {NULL}},
    {"c.segment", true, 0, {NULL}, {"team"}},
    {"d.nobody", true, 0, {NULL}, {NULL}},
    {"e.five", true, 5, {NULL}, {NULL}},
    {"f.half", true, 50, {"zed"}, {"team"}},
    {"g.all", true, 100, {NULL}, {NULL}},
    {"h.odd-ids", true, 10, {" pad", "a(b)|c", "a,b", "tail "}, {NULL}},
    {"i.ninety-nine", true, 99, {NULL}, {NULL}},
};
#define N_FLAGS (sizeof FLAGS / sizeof FLAGS[0])
static const char *const TEAM[] = {"bob", "carol", "x,y"}; /* sorted */

static struct vx_snapshot *build(void)
{
    struct snapshot_parts p;

    memset(&p, 0, sizeof p);
    p.version = 3;
    p.n_envs = 1;
    p.envs = calloc(1, sizeof *p.envs);
    p.flags = calloc(1, sizeof *p.flags);
    p.n_flags = calloc(1, sizeof *p.n_flags);
    ck_assert(p.envs != NULL && p.flags != NULL && p.n_flags != NULL);
    p.envs[0].id = 1;
    p.envs[0].name = dup_or_die("production");
    p.envs[0].description = dup_or_die("");
    p.envs[0].is_default = true;
    p.envs[0].version = 3;
    p.flags[0] = calloc(N_FLAGS, sizeof **p.flags);
    ck_assert_ptr_nonnull(p.flags[0]);
    p.n_flags[0] = N_FLAGS;
    for (size_t i = 0; i < N_FLAGS; i++) {
        struct vx_flag *f = &p.flags[0][i];
        size_t nu = 0, ns = 0;
        while (nu < 4 && FLAGS[i].users[nu] != NULL)
            nu++;
        while (ns < 2 && FLAGS[i].segments[ns] != NULL)
            ns++;
        f->name = dup_or_die(FLAGS[i].name);
        f->description = dup_or_die("");
        f->owner = dup_or_die("");
        f->enabled = FLAGS[i].enabled;
        f->percentage = FLAGS[i].percentage;
        f->users = names(FLAGS[i].users, nu);
        f->n_users = nu;
        f->segments = names(FLAGS[i].segments, ns);
        f->n_segments = ns;
        f->revision = 1;
    }
    p.n_segments = 1;
    p.segments = calloc(1, sizeof *p.segments);
    ck_assert_ptr_nonnull(p.segments);
    p.segments[0].name = dup_or_die("team");
    p.segments[0].description = dup_or_die("");
    p.segments[0].users = names(TEAM, 3);
    p.segments[0].n_users = 3;
    p.segments[0].revision = 1;
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* ---- an Unleash SDK, as the Node SDK evaluates -------------------------- */

static bool trimmed_equal(const char *from, const char *to, const char *user)
{
    while (from < to && *from == ' ')
        from++;
    while (to > from && to[-1] == ' ')
        to--;
    return (size_t)(to - from) == strlen(user) && strncmp(from, user, (size_t)(to - from)) == 0;
}

static bool user_with_id(const json_t *params, const char *user)
{
    const char *ids = json_string_value(json_object_get(params, "userIds"));

    ck_assert_ptr_nonnull(ids);
    if (user == NULL)
        return false;
    for (const char *p = ids;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        if (trimmed_equal(p, end, user))
            return true;
        if (comma == NULL)
            return false;
        p = comma + 1;
    }
}

static bool flexible_rollout(const json_t *params, const char *user)
{
    const char *group = json_string_value(json_object_get(params, "groupId"));
    int rollout = atoi(json_string_value(json_object_get(params, "rollout")));
    char key[512];

    ck_assert_str_eq(json_string_value(json_object_get(params, "stickiness")), "userId");
    if (user == NULL)
        return false;
    snprintf(key, sizeof key, "%s:%s", group, user);
    return rollout > 0 && (int)(murmur3_x86_32(key, strlen(key), 0) % 100 + 1) <= rollout;
}

/* The Node SDK's cleanValues(): every IN value trimmed. */
static bool in_trimmed(const json_t *values, const char *user)
{
    size_t k;
    const json_t *v;

    json_array_foreach(values, k, v)
    {
        const char *val = json_string_value(v);
        if (user != NULL && trimmed_equal(val, val + strlen(val), user) && strspn(user, " ") == 0 &&
            (strlen(user) == 0 || user[strlen(user) - 1] != ' '))
            return true;
    }
    return false;
}

/* Our REGEX value ^(?:a|b)$ with \-escapes, matched whole. */
static bool regex_match(const char *re, const char *user)
{
    char alt[300];
    size_t n = 0;

    ck_assert(strncmp(re, "^(?:", 4) == 0);
    if (user == NULL)
        return false;
    for (const char *p = re + 4;; p++) {
        if (*p == '\\') {
            alt[n++] = *++p;
            continue;
        }
        if (*p == '|' || strcmp(p, ")$") == 0) {
            alt[n] = '\0';
            if (strcmp(alt, user) == 0)
                return true;
            n = 0;
            if (*p != '|')
                return false;
            continue;
        }
        alt[n++] = *p;
    }
}

static bool constraints_pass(const json_t *constraints, const char *user)
{
    size_t i;
    const json_t *c;

    json_array_foreach(constraints, i, c)
    {
        const char *op = json_string_value(json_object_get(c, "operator"));
        ck_assert_str_eq(json_string_value(json_object_get(c, "contextName")), "userId");
        bool ok = strcmp(op, "IN") == 0
                      ? in_trimmed(json_object_get(c, "values"), user)
                      : regex_match(json_string_value(json_object_get(c, "value")), user);
        ck_assert(strcmp(op, "IN") == 0 || strcmp(op, "REGEX") == 0);
        if (!ok)
            return false;
    }
    return true;
}

static bool sdk_is_enabled(const json_t *feature, const char *user)
{
    const json_t *strategies = json_object_get(feature, "strategies"), *st;
    size_t i;

    if (!json_is_true(json_object_get(feature, "enabled")))
        return false;
    if (json_array_size(strategies) == 0)
        return true; /* what the SDKs do: on for everyone */
    json_array_foreach(strategies, i, st)
    {
        const char *name = json_string_value(json_object_get(st, "name"));
        const json_t *params = json_object_get(st, "parameters");
        bool on;
        ck_assert(json_is_object(params));
        if (!constraints_pass(json_object_get(st, "constraints"), user))
            continue;
        if (strcmp(name, "default") == 0)
            on = true;
        else if (strcmp(name, "userWithId") == 0)
            on = user_with_id(params, user);
        else if (strcmp(name, "flexibleRollout") == 0)
            on = flexible_rollout(params, user);
        else
            ck_abort_msg("unexpected strategy %s", name);
        if (on)
            return true;
    }
    return false;
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_every_user_same_answer)
{
    struct vx_snapshot *s = build();
    const struct vx_env *e = &s->envs[0];
    json_t *body = unleash_features(s, e);
    const json_t *features = json_object_get(body, "features");
    char user[32];
    size_t on_counts[N_FLAGS] = {0};

    ck_assert_ptr_nonnull(body);
    ck_assert_uint_eq(json_array_size(features), N_FLAGS);
    for (int u = -12; u < 5000; u++) {
        /* Anonymous, the listed and odd ids, then generated ones. */
        static const char *const special[] = {NULL,    "alice", "bob",    "carol", "a,b", " pad",
                                              "tail ", "x,y",   "a(b)|c", "a(b)",  "pad", "tail"};
        const char *id = u < 0 ? special[u + 12] : user;
        if (u >= 0)
            snprintf(user, sizeof user, "user-%d", u);
        for (size_t i = 0; i < N_FLAGS; i++) {
            const json_t *f = json_array_get(features, i);
            ck_assert_str_eq(json_string_value(json_object_get(f, "name")), FLAGS[i].name);
            bool want = snapshot_eval(s, e->view, i, id, id != NULL ? strlen(id) : 0, NULL);
            ck_assert_msg(sdk_is_enabled(f, id) == want, "%s for %s: vexil %d", FLAGS[i].name,
                          id != NULL ? id : "(anonymous)", want);
            on_counts[i] += want;
        }
    }
    /* The cases are what they claim to be. */
    ck_assert_uint_eq(on_counts[0], 0);                  /* off */
    ck_assert_uint_eq(on_counts[1], 2);                  /* alice, carol */
    ck_assert_uint_eq(on_counts[2], 3);                  /* bob, carol, x,y */
    ck_assert_uint_eq(on_counts[3], 0);                  /* nobody */
    ck_assert(on_counts[4] > 150 && on_counts[4] < 350); /* ~5 % of 5000 */
    ck_assert_uint_eq(on_counts[6], 5012);               /* everyone, anonymous too */
    ck_assert(on_counts[7] >= 4);                        /* the odd ids */
    json_decref(body);
    snapshot_release(s);
}
END_TEST

START_TEST(test_shapes)
{
    struct vx_snapshot *s = build();
    json_t *body = unleash_features(s, &s->envs[0]);
    const json_t *features = json_object_get(body, "features");

    ck_assert_int_eq(json_integer_value(json_object_get(body, "version")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(body, "meta"), "revision")),
                     3);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(body, "query"), "environment")),
        "production");
    ck_assert(json_is_array(json_object_get(body, "segments")));
    /* Off, and on for nobody: disabled, no strategies. */
    for (int i = 0; i < 4; i += 3) {
        const json_t *f = json_array_get(features, (size_t)i);
        ck_assert(json_is_false(json_object_get(f, "enabled")));
        ck_assert_uint_eq(json_array_size(json_object_get(f, "strategies")), 0);
    }
    /* 100 %: one default strategy. */
    const json_t *all = json_object_get(json_array_get(features, 6), "strategies");
    ck_assert_uint_eq(json_array_size(all), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all, 0), "name")), "default");
    /* 50 % with a listed user and a segment: the users once each, then the rollout. */
    const json_t *half = json_object_get(json_array_get(features, 5), "strategies");
    ck_assert_uint_eq(json_array_size(half), 3);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(half, 0), "parameters"), "userIds")),
                     "zed,bob,carol");
    const json_t *roll = json_object_get(json_array_get(half, 2), "parameters");
    ck_assert_str_eq(json_string_value(json_object_get(roll, "rollout")), "50");
    ck_assert_str_eq(json_string_value(json_object_get(roll, "groupId")), "f.half");
    json_decref(body);
    snapshot_release(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("unleash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_user_same_answer);
    tcase_add_test(tc, test_shapes);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
