/* test_eval.c -- docs/evaluation.md evaluation.
 *
 * The bucket vectors are docs/evaluation.md's table (the same buckets Unleash SDKs
 * compute); the rest checks the order of the rules and the properties the
 * spec names: determinism, monotonic rollout, and a fair share at p %.
 * Flags are built by hand here so that these tests depend on eval.c alone,
 * not on flag.c's validation. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "flag.h"
#include "unit.h"

static const struct {
    const char *name;
    const char *user;
    int bucket;
} buckets[] = {
    {"new_order_flow", "alice", 58},
    {"new_order_flow", "bob", 53},
    {"new_ui", "user-1", 48},
    {"new_ui", "user-2", 2},
    {"premium_features", "42", 39},
    {"checkout.v2", "\xc3\xbc-user", 16}, /* "ü-user" in UTF-8 */
    {"Feature.flexibleRollout.10", "174", 10},
    {"Feature.flexibleRollout.10", "499", 32},
};

START_TEST(test_bucket_vectors)
{
    const char *n = buckets[_i].name, *u = buckets[_i].user;
    ck_assert_int_eq(eval_bucket(n, strlen(n), u, strlen(u)), buckets[_i].bucket);
}
END_TEST

/* A user whose bucket is b is on at b % and off at b-1 %: the comparison
 * is "bucket <= percentage". */
START_TEST(test_bucket_boundary)
{
    struct vx_flag f = {.name = (char *)buckets[_i].name, .enabled = true};
    const char *u = buckets[_i].user;
    enum vx_reason r;

    f.percentage = buckets[_i].bucket;
    ck_assert(eval_flag(&f, u, strlen(u), &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    f.percentage = buckets[_i].bucket - 1;
    ck_assert(!eval_flag(&f, u, strlen(u), &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
}
END_TEST

START_TEST(test_bucket_range_and_determinism)
{
    char user[32];
    int seen[101] = {0}, bad = 0;
    for (int i = 0; i < 20000; i++) {
        int len = snprintf(user, sizeof user, "u%d", i);
        int b = eval_bucket("range", 5, user, (size_t)len);
        if (b < 1 || b > 100 || eval_bucket("range", 5, user, (size_t)len) != b) {
            bad++;
            continue;
        }
        seen[b]++;
    }
    ck_assert_int_eq(bad, 0);
    /* 20 000 users reach every bucket. */
    for (int b = 1; b <= 100; b++)
        ck_assert_int_gt(seen[b], 0);
}
END_TEST

/* The user's bytes are taken by length, not up to a NUL, and a long user
 * id needs no buffer. */
START_TEST(test_bucket_lengths)
{
    /* "new_order_flow" + ":" + "alice": only the first 5 bytes of the user
     * count, and only the first 14 of the name. */
    ck_assert_int_eq(eval_bucket("new_order_flowXX", 14, "alice-and-more", 5), 58);

    size_t len = 100000;
    char *big = malloc(len);
    ck_assert_ptr_nonnull(big);
    memset(big, 'z', len);
    int b = eval_bucket("f", 1, big, len);
    ck_assert_int_ge(b, 1);
    ck_assert_int_le(b, 100);
    free(big);
}
END_TEST

static struct vx_flag make_flag(const char *name, bool enabled, int pct, char **users, size_t n)
{
    struct vx_flag f = {
        .name = (char *)name, .enabled = enabled, .percentage = pct, .users = users, .n_users = n};
    return f;
}

START_TEST(test_kill_switch)
{
    char *users[] = {"alice", "bob"}; /* sorted */
    struct vx_flag f = make_flag("new_order_flow", false, 100, users, 2);
    enum vx_reason r = VX_REASON_SPLIT;

    /* Disabled wins over a listed user, 100 % and anonymous. */
    ck_assert(!eval_flag(&f, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    ck_assert(!eval_flag(&f, "carol", 5, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    ck_assert(!eval_flag(&f, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    /* reason may be NULL */
    ck_assert(!eval_flag(&f, "alice", 5, NULL));
}
END_TEST

START_TEST(test_listed_users)
{
    char *users[] = {"alice", "bob", "carol"};
    struct vx_flag f = make_flag("new_order_flow", true, 0, users, 3);
    enum vx_reason r;

    for (size_t i = 0; i < 3; i++) {
        ck_assert(eval_flag(&f, users[i], strlen(users[i]), &r));
        ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    }
    /* Not listed, 0 %: off by bucket. */
    ck_assert(!eval_flag(&f, "dave", 4, &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    /* A prefix or extension of a listed id is a different user. */
    ck_assert(!eval_flag(&f, "ali", 3, &r));
    ck_assert(!eval_flag(&f, "alicea", 6, &r));
    ck_assert(!eval_flag(&f, "bobby", 3 + 2, &r));
    /* Compared by length: "bob" within a longer buffer. */
    ck_assert(eval_flag(&f, "bobby", 3, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    /* Listed users win over 100 % in the reason. */
    f.percentage = 100;
    ck_assert(eval_flag(&f, "carol", 5, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
}
END_TEST

/* Binary search over many users: every listed user found, neighbours not. */
START_TEST(test_many_listed_users)
{
    size_t n = FLAG_USERS_MAX;
    char **users = calloc(n, sizeof *users);
    ck_assert_ptr_nonnull(users);
    for (size_t i = 0; i < n; i++) {
        users[i] = malloc(16);
        ck_assert_ptr_nonnull(users[i]);
        snprintf(users[i], 16, "user-%06zu", i * 2); /* zero-padded: sorted */
    }
    struct vx_flag f = make_flag("f", true, 0, users, n);
    char u[16];
    size_t wrong = 0;
    for (size_t i = 0; i < 2 * n; i++) {
        snprintf(u, sizeof u, "user-%06zu", i);
        wrong += flag_has_user(&f, u, strlen(u)) != (i % 2 == 0);
    }
    ck_assert_uint_eq(wrong, 0);
    for (size_t i = 0; i < n; i++)
        free(users[i]);
    free(users);
}
END_TEST

START_TEST(test_zero_and_hundred)
{
    struct vx_flag f = make_flag("new_order_flow", true, 0, NULL, 0);
    enum vx_reason r;
    char user[32];

    for (int i = 0; i < 1000; i++) {
        int len = snprintf(user, sizeof user, "user-%d", i);
        f.percentage = 0;
        ck_assert(!eval_flag(&f, user, (size_t)len, &r));
        ck_assert_int_eq(r, VX_REASON_SPLIT);
        f.percentage = 100;
        ck_assert(eval_flag(&f, user, (size_t)len, &r));
        ck_assert_int_eq(r, VX_REASON_STATIC);
    }
}
END_TEST

START_TEST(test_anonymous)
{
    struct vx_flag f = make_flag("new_order_flow", true, 99, NULL, 0);
    enum vx_reason r;

    /* Absent and empty users are off below 100 %... */
    ck_assert(!eval_flag(&f, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);
    ck_assert(!eval_flag(&f, "", 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);
    /* ...and on at 100 %. */
    f.percentage = 100;
    ck_assert(eval_flag(&f, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_STATIC);
    ck_assert(eval_flag(&f, "", 0, &r));
    ck_assert_int_eq(r, VX_REASON_STATIC);
}
END_TEST

/* Raising the percentage from 0 to 100 never turns a user off, and each
 * user switches on exactly at its bucket. */
START_TEST(test_monotonic_rollout)
{
    struct vx_flag f = make_flag("monotonic.rollout", true, 0, NULL, 0);
    char user[32], first_bad[64] = "";
    int turned_off = 0, wrong_switch = 0;

    /* Failures are counted and asserted once: every passing Check
     * assertion costs a write to the parent process. */
    for (int i = 0; i < 10000; i++) {
        int len = snprintf(user, sizeof user, "user-%d", i);
        bool was_on = false;
        int switched_at = -1;
        for (int p = 0; p <= 100; p++) {
            f.percentage = p;
            bool on = eval_flag(&f, user, (size_t)len, NULL);
            if (was_on && !on && turned_off++ == 0)
                snprintf(first_bad, sizeof first_bad, "%s off at %d %%", user, p);
            if (on && !was_on)
                switched_at = p;
            was_on = on;
        }
        wrong_switch += switched_at != eval_bucket(f.name, strlen(f.name), user, (size_t)len);
    }
    ck_assert_msg(turned_off == 0, "%d users turned off, first %s", turned_off, first_bad);
    ck_assert_int_eq(wrong_switch, 0);
}
END_TEST

START_TEST(test_fair_share)
{
    struct vx_flag f = make_flag("fair.share", true, 50, NULL, 0);
    char user[32];
    int on = 0, n = 100000;

    for (int i = 0; i < n; i++) {
        int len = snprintf(user, sizeof user, "user-%d", i);
        on += eval_flag(&f, user, (size_t)len, NULL);
    }
    ck_assert_msg(on >= n * 49 / 100 && on <= n * 51 / 100, "%d of %d on at 50 %%", on, n);

    /* And at 10 %: 9-11 %. */
    f.percentage = 10;
    on = 0;
    for (int i = 0; i < n; i++) {
        int len = snprintf(user, sizeof user, "user-%d", i);
        on += eval_flag(&f, user, (size_t)len, NULL);
    }
    ck_assert_msg(on >= n * 9 / 100 && on <= n * 11 / 100, "%d of %d on at 10 %%", on, n);
}
END_TEST

/* The prefix form (what the snapshot uses) gives the same answer and
 * reason as eval_flag, for names of every length mod 4 and many users,
 * and matches the vectors of docs/evaluation.md. */
START_TEST(test_prefixed_matches)
{
    static const char *names[] = {
        "a", "ab", "abc", "abcd", "new_order_flow", "checkout.v2", "Feature.flexibleRollout.10"};
    char user[32];
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        struct vx_flag f = make_flag(names[n], true, 37, NULL, 0);
        struct murmur3_ctx prefix;
        eval_prefix(f.name, strlen(f.name), &prefix);
        for (int u = 0; u < 2000; u++) {
            snprintf(user, sizeof(user), "user-%d%s", u, u % 3 ? "x" : "");
            enum vx_reason r1, r2;
            bool a = eval_flag(&f, user, strlen(user), &r1);
            bool b = eval_flag_prefixed(&f, &prefix, user, strlen(user), &r2);
            ck_assert_msg(a == b && r1 == r2, "%s/%s differ", names[n], user);
        }
    }
    struct murmur3_ctx p;
    eval_prefix("Feature.flexibleRollout.10", 26, &p);
    struct vx_flag f = make_flag("Feature.flexibleRollout.10", true, 10, NULL, 0);
    ck_assert(eval_flag_prefixed(&f, &p, "174", 3, NULL));  /* bucket 10 */
    ck_assert(!eval_flag_prefixed(&f, &p, "499", 3, NULL)); /* bucket 32 */
}
END_TEST

/* ---- segments ------------------------------------------------------------ */

/* A fake segment store: segment "beta" holds alice and bob, "gamma" holds
 * carol; any other name holds nobody.  Counts its calls. */
struct fake_segments {
    int calls;
    const char *last_segment;
};

static bool fake_has(const void *cls, const char *segment, const char *user, size_t user_len)
{
    struct fake_segments *fs = (struct fake_segments *)cls;
    static const struct {
        const char *segment, *user;
    } members[] = {{"beta", "alice"}, {"beta", "bob"}, {"gamma", "carol"}};

    fs->calls++;
    fs->last_segment = segment;
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (strcmp(members[i].segment, segment) == 0 && strlen(members[i].user) == user_len &&
            memcmp(members[i].user, user, user_len) == 0)
            return true;
    return false;
}

START_TEST(test_segments_disabled)
{
    char *segs[] = {"beta"};
    struct vx_flag f = make_flag("seg.flag", false, 100, NULL, 0);
    struct fake_segments fs = {0};
    struct eval_segments es = {fake_has, &fs};
    enum vx_reason r = VX_REASON_SPLIT;

    f.segments = segs;
    f.n_segments = 1;
    /* The kill switch wins over a segment member too. */
    ck_assert(!eval_flag_in(&f, NULL, &es, "alice", 5, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
    ck_assert(!eval_flag_in(&f, NULL, &es, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DISABLED);
}
END_TEST

START_TEST(test_segments_member)
{
    char *segs[] = {"beta", "gamma"}, *users[] = {"dave"};
    struct vx_flag f = make_flag("seg.flag", true, 0, users, 1);
    struct fake_segments fs = {0};
    struct eval_segments es = {fake_has, &fs};
    struct murmur3_ctx prefix;
    enum vx_reason r;

    f.segments = segs;
    f.n_segments = 2;
    eval_prefix(f.name, strlen(f.name), &prefix);
    /* A member of any segment the flag names: on, a targeting match, at 0 %. */
    static const char *const members[] = {"alice", "bob", "carol"};
    for (size_t i = 0; i < 3; i++) {
        r = VX_REASON_DEFAULT;
        ck_assert(eval_flag_in(&f, &prefix, &es, members[i], strlen(members[i]), &r));
        ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
        r = VX_REASON_DEFAULT;
        ck_assert(eval_flag_in(&f, NULL, &es, members[i], strlen(members[i]), &r));
        ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    }
    ck_assert_str_eq(fs.last_segment, "gamma"); /* carol: found in the second */
    /* The user's bytes by length. */
    ck_assert(eval_flag_in(&f, &prefix, &es, "alice-and-more", 5, &r));
    ck_assert(!eval_flag_in(&f, &prefix, &es, "alice-and-more", 6, &r));
    /* A listed user is still a match, without asking the segments. */
    fs.calls = 0;
    ck_assert(eval_flag_in(&f, &prefix, &es, "dave", 4, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    ck_assert_int_eq(fs.calls, 0);
    /* A member wins over 100 % in the reason, as a listed user does. */
    f.percentage = 100;
    ck_assert(eval_flag_in(&f, &prefix, &es, "bob", 3, &r));
    ck_assert_int_eq(r, VX_REASON_TARGETING_MATCH);
    /* Only the segments the flag names count: carol is in gamma only. */
    f.percentage = 0;
    f.n_segments = 1; /* beta */
    ck_assert(!eval_flag_in(&f, &prefix, &es, "carol", 5, &r));
    ck_assert_int_eq(r, VX_REASON_SPLIT);
    /* A flag naming no segment never asks. */
    f.n_segments = 0;
    fs.calls = 0;
    ck_assert(!eval_flag_in(&f, &prefix, &es, "alice", 5, &r));
    ck_assert_int_eq(fs.calls, 0);
}
END_TEST

/* Who is in no segment of the flag falls through to the percentage and
 * gets exactly eval_flag's answer. */
START_TEST(test_segments_non_member_falls_through)
{
    char *segs[] = {"beta", "nosuch"};
    struct vx_flag f = make_flag("seg.split", true, 37, NULL, 0);
    struct vx_flag plain = make_flag("seg.split", true, 37, NULL, 0);
    struct fake_segments fs = {0};
    struct eval_segments es = {fake_has, &fs};
    struct murmur3_ctx prefix;
    char user[32];
    int on = 0;

    f.segments = segs;
    f.n_segments = 2;
    eval_prefix(f.name, strlen(f.name), &prefix);
    for (int u = 0; u < 2000; u++) {
        int len = snprintf(user, sizeof user, "user-%d", u);
        enum vx_reason r1, r2;
        bool a = eval_flag_in(&f, &prefix, &es, user, (size_t)len, &r1);
        bool b = eval_flag(&plain, user, (size_t)len, &r2);
        ck_assert_msg(a == b && r1 == r2, "%s differs", user);
        ck_assert_int_eq(r1, VX_REASON_SPLIT);
        on += a;
    }
    ck_assert_int_eq(fs.calls, 2 * 2000); /* both segments asked for each */
    ck_assert_int_gt(on, 600);            /* about 37 % of 2000 */
    ck_assert_int_lt(on, 880);
    enum vx_reason r;
    /* Anonymous: no segment is asked, the default answer. */
    fs.calls = 0;
    ck_assert(!eval_flag_in(&f, &prefix, &es, NULL, 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);
    ck_assert(!eval_flag_in(&f, &prefix, &es, "", 0, &r));
    ck_assert_int_eq(r, VX_REASON_DEFAULT);
    f.percentage = 100;
    ck_assert(eval_flag_in(&f, &prefix, &es, "zed", 3, &r));
    ck_assert_int_eq(r, VX_REASON_STATIC);
}
END_TEST

/* Without segments (NULL) the answer is eval_flag's, members or not. */
START_TEST(test_segments_null)
{
    char *segs[] = {"beta"}, *users[] = {"dave"};
    struct vx_flag f = make_flag("Feature.flexibleRollout.10", true, 10, users, 1);
    struct murmur3_ctx prefix;
    enum vx_reason r1, r2;

    f.segments = segs;
    f.n_segments = 1;
    eval_prefix(f.name, strlen(f.name), &prefix);
    static const char *const who[] = {"alice", "bob", "dave", "174", "499", ""};
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
        size_t len = strlen(who[i]);
        bool a = eval_flag_in(&f, &prefix, NULL, who[i], len, &r1);
        bool b = eval_flag(&f, who[i], len, &r2);
        ck_assert_msg(a == b && r1 == r2, "%s: %d/%d vs %d/%d", who[i], a, r1, b, r2);
        ck_assert(eval_flag_in(&f, NULL, NULL, who[i], len, &r2) == a);
        ck_assert_int_eq(r1, r2);
    }
    /* alice is in beta, but without segments she is just a user: at 0 %
     * off, where with them she is on. */
    struct fake_segments fs = {0};
    struct eval_segments es = {fake_has, &fs};
    f.percentage = 0;
    ck_assert(!eval_flag_in(&f, &prefix, NULL, "alice", 5, &r1));
    ck_assert_int_eq(r1, VX_REASON_SPLIT);
    ck_assert(eval_flag_in(&f, &prefix, &es, "alice", 5, &r1));
    ck_assert_int_eq(r1, VX_REASON_TARGETING_MATCH);
    f.percentage = 10;
    ck_assert(eval_flag_in(&f, &prefix, NULL, "174", 3, &r1)); /* bucket 10 */
    ck_assert_int_eq(r1, VX_REASON_SPLIT);
    ck_assert(!eval_flag_in(&f, &prefix, NULL, "499", 3, &r1)); /* bucket 32 */
    ck_assert(eval_flag_in(&f, &prefix, NULL, "dave", 4, &r1));
    ck_assert_int_eq(r1, VX_REASON_TARGETING_MATCH);
    ck_assert(!eval_flag_in(&f, &prefix, NULL, NULL, 0, NULL)); /* reason may be NULL */
}
END_TEST

START_TEST(test_reason_names)
{
    ck_assert_str_eq(eval_reason_name(VX_REASON_DISABLED), "DISABLED");
    ck_assert_str_eq(eval_reason_name(VX_REASON_TARGETING_MATCH), "TARGETING_MATCH");
    ck_assert_str_eq(eval_reason_name(VX_REASON_STATIC), "STATIC");
    ck_assert_str_eq(eval_reason_name(VX_REASON_SPLIT), "SPLIT");
    ck_assert_str_eq(eval_reason_name(VX_REASON_DEFAULT), "DEFAULT");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("core");
    int nb = (int)(sizeof buckets / sizeof buckets[0]);
    tcase_add_loop_test(tc, test_bucket_vectors, 0, nb);
    tcase_add_loop_test(tc, test_bucket_boundary, 0, nb);
    tcase_add_test(tc, test_bucket_range_and_determinism);
    tcase_add_test(tc, test_bucket_lengths);
    tcase_add_test(tc, test_kill_switch);
    tcase_add_test(tc, test_listed_users);
    tcase_add_test(tc, test_many_listed_users);
    tcase_add_test(tc, test_zero_and_hundred);
    tcase_add_test(tc, test_anonymous);
    tcase_add_test(tc, test_monotonic_rollout);
    tcase_add_test(tc, test_fair_share);
    tcase_add_test(tc, test_prefixed_matches);
    tcase_add_test(tc, test_segments_disabled);
    tcase_add_test(tc, test_segments_member);
    tcase_add_test(tc, test_segments_non_member_falls_through);
    tcase_add_test(tc, test_segments_null);
    tcase_add_test(tc, test_reason_names);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
