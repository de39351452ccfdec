/* test_router.c -- server/router.c: 404, 405 with Allow, arguments, HEAD. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "unit.h"

/* A table entry as a caller makes one: the router's part first, then the
 * caller's own fields (here an id the tests check). */
struct test_route {
    struct router_route base;
    int flags;
};

#define T(m, p, id)                                                                                \
    {                                                                                              \
        {m, p, p}, id                                                                              \
    }

static const struct test_route table[] = {
    T("GET", "/flags", 1),
    T("GET", "/flags/*", 2),
    T("GET", "/api/flags/*", 3),
    T("PATCH", "/api/flags/*", 4),
    T("DELETE", "/api/flags/*", 5),
    T("GET", "/api/flags/*/history", 6),
    T("POST", "/api/flags/*/revert", 7),
    T("POST", "/api/flags", 8),
    T("GET", "/", 9),
};
#define N (sizeof(table) / sizeof(table[0]))

static void find(const char *method, const char *path, struct router_match *m)
{
    router_find(table, N, sizeof(table[0]), method, path, strlen(path), m);
    if (m->route != NULL)
        ck_assert_ptr_eq(m->route, &table[m->index].base);
}

START_TEST(test_exact)
{
    struct router_match m;
    find("GET", "/flags", &m);
    ck_assert_int_eq(m.status, 0);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 1);
    ck_assert_uint_eq(m.argc, 0);
}
END_TEST

START_TEST(test_argument)
{
    struct router_match m;
    find("GET", "/api/flags/new_ui/history", &m);
    ck_assert_int_eq(m.status, 0);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 6);
    ck_assert_uint_eq(m.argc, 1);
    ck_assert_uint_eq(m.argl[0], 6);
    ck_assert(memcmp(m.argv[0], "new_ui", 6) == 0);
}
END_TEST

START_TEST(test_method_picks_route)
{
    struct router_match m;
    find("DELETE", "/api/flags/x", &m);
    ck_assert_int_eq(m.status, 0);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 5);
    find("PATCH", "/api/flags/x", &m);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 4);
}
END_TEST

START_TEST(test_unknown_is_404)
{
    static const char *paths[] = {"/nope",
                                  "/flags/a/b",
                                  "/api/flags/x/revert/y",
                                  "",
                                  "flags",
                                  "/api",
                                  "/api/flags//history",
                                  "/flags/",
                                  "/a/b/c/d/e/f/g/h/i/j"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct router_match m;
        find("GET", paths[i], &m);
        ck_assert_msg(m.status == 404, "%s gave %d", paths[i], m.status);
        ck_assert_ptr_null(m.route);
    }
}
END_TEST

START_TEST(test_wrong_method_is_405_with_allow)
{
    struct router_match m;
    find("POST", "/api/flags/x", &m);
    ck_assert_int_eq(m.status, 405);
    ck_assert_ptr_null(m.route);
    ck_assert_str_eq(m.allow, "GET, HEAD, PATCH, DELETE");
    find("PUT", "/flags", &m);
    ck_assert_int_eq(m.status, 405);
    ck_assert_str_eq(m.allow, "GET, HEAD");
    find("GET", "/api/flags/x/revert", &m);
    ck_assert_int_eq(m.status, 405);
    ck_assert_str_eq(m.allow, "POST");
}
END_TEST

START_TEST(test_head_matches_get)
{
    struct router_match m;
    find("HEAD", "/flags/abc", &m);
    ck_assert_int_eq(m.status, 0);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 2);
}
END_TEST

START_TEST(test_root)
{
    struct router_match m;
    find("GET", "/", &m);
    ck_assert_int_eq(m.status, 0);
    ck_assert_int_eq(((const struct test_route *)m.route)->flags, 9);
}
END_TEST

START_TEST(test_prefix_is_not_a_match)
{
    struct router_match m;
    /* "/flagsx" must not match "/flags", nor "/flag" */
    find("GET", "/flagsx", &m);
    ck_assert_int_eq(m.status, 404);
    find("GET", "/flag", &m);
    ck_assert_int_eq(m.status, 404);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_exact);
    tcase_add_test(tc, test_argument);
    tcase_add_test(tc, test_method_picks_route);
    tcase_add_test(tc, test_unknown_is_404);
    tcase_add_test(tc, test_wrong_method_is_405_with_allow);
    tcase_add_test(tc, test_head_matches_get);
    tcase_add_test(tc, test_root);
    tcase_add_test(tc, test_prefix_is_not_a_match);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
