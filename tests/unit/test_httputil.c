/* test_httputil.c -- server/httputil.c: entity tags, integer parameters,
 * escaped paths, CORS origins, Accept-Encoding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "httputil.h"
#include "unit.h"

static int parse(const char *s, struct etag_list *l)
{
    return etag_parse(s, strlen(s), l);
}

START_TEST(test_etag_single)
{
    struct etag_list l;
    ck_assert_int_eq(parse("\"12\"", &l), 0);
    ck_assert_uint_eq(l.n, 1);
    ck_assert_int_eq(l.tag[0], 12);
    ck_assert(!l.weak[0]);
    ck_assert(etag_matches(&l, 12));
    ck_assert(!etag_matches(&l, 13));
}
END_TEST

START_TEST(test_etag_list_weak_star)
{
    struct etag_list l;
    ck_assert_int_eq(parse(" W/\"3\" ,\t\"7\"", &l), 0);
    ck_assert_uint_eq(l.n, 2);
    ck_assert(l.weak[0]);
    ck_assert(etag_matches(&l, 3));
    ck_assert(etag_matches(&l, 7));
    ck_assert(!etag_matches(&l, 5));
    ck_assert_int_eq(parse("*", &l), 0);
    ck_assert(l.any);
    ck_assert(etag_matches(&l, 99));
}
END_TEST

START_TEST(test_etag_malformed)
{
    static const char *bad[] = {"",
                                "12",
                                "\"\"",
                                "\"1",
                                "\"a\"",
                                "\"1\",",
                                "* \"1\"",
                                "\"-1\"",
                                "\"1\" x",
                                "w/\"1\"",
                                "\"99999999999999999999\"",
                                "\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\""};
    struct etag_list l;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], &l) == -1, "accepted <%s>", bad[i]);
}
END_TEST

START_TEST(test_etag_embedded_nul)
{
    struct etag_list l;
    ck_assert_int_eq(etag_parse("\"1\0\"", 4, &l), -1);
}
END_TEST

START_TEST(test_parse_int_range)
{
    int64_t v = -5;
    ck_assert_int_eq(parse_int_range("1", 1, 60, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(parse_int_range("60", 1, 60, &v), 0);
    ck_assert_int_eq(v, 60);
    static const char *bad[] = {"0",  "61",  "",     " 5",  "5 ",  "+5", "5s",
                                "-1", "1e1", "0x10", "\n5", "\r5", "-",  "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse_int_range(bad[i], 1, 60, &v) == -1, "accepted <%s>", bad[i]);
    ck_assert_int_eq(parse_int_range(NULL, 1, 60, &v), -1);
}
END_TEST

START_TEST(test_etag_header_has)
{
    const char *h = "W/\"7-ab\", \"12\"";
    ck_assert(etag_header_has(h, strlen(h), "7-ab", 4)); /* weak comparison */
    ck_assert(etag_header_has(h, strlen(h), "12", 2));
    ck_assert(!etag_header_has(h, strlen(h), "7", 1));
    ck_assert(!etag_header_has(h, strlen(h), "1", 1));
    ck_assert(etag_header_has("*", 1, "anything", 8));
    ck_assert(!etag_header_has("7-ab", 4, "7-ab", 4));     /* not quoted: malformed */
    ck_assert(!etag_header_has("\"a\" \"b\"", 7, "b", 1)); /* no comma */
    ck_assert(!etag_header_has("", 0, "", 0));
}
END_TEST

START_TEST(test_etag_format)
{
    char e[ETAG_VERSION_MAX];
    ck_assert_str_eq(etag_format(0, e), "\"0\"");
    ck_assert_str_eq(etag_format(INT64_MAX, e), "\"9223372036854775807\"");
    struct etag_list l;
    ck_assert_int_eq(etag_parse(e, strlen(e), &l), 0);
    ck_assert(etag_matches(&l, INT64_MAX));
}
END_TEST

START_TEST(test_url_unescape)
{
    char a[] = "/flags/a%2Fb%20c%zz%4";
    ck_assert_uint_eq(url_unescape(a), strlen("/flags/a/b c%zz%4"));
    ck_assert_str_eq(a, "/flags/a/b c%zz%4");
    char b[] = "x%00y"; /* a NUL never appears */
    ck_assert_uint_eq(url_unescape(b), 5);
    ck_assert_str_eq(b, "x%00y");
    char c[] = "%C3%BC";
    url_unescape(c);
    ck_assert_str_eq(c, "\xc3\xbc");
}
END_TEST

START_TEST(test_origin_listed)
{
    ck_assert(origin_listed("*", "https://a.example"));
    ck_assert(origin_listed("https://a.example, https://b.example", "https://b.example"));
    ck_assert(origin_listed(" https://a.example ", "https://a.example"));
    ck_assert(!origin_listed("https://a.example", "https://a.example.evil"));
    ck_assert(!origin_listed("https://a.example.evil", "https://a.example"));
    ck_assert(!origin_listed(NULL, "https://a.example"));
    ck_assert(!origin_listed("", "https://a.example"));
}
END_TEST

START_TEST(test_accepts_gzip)
{
    ck_assert(accepts_gzip("gzip"));
    ck_assert(accepts_gzip("gzip, deflate, br"));
    ck_assert(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    ck_assert(accepts_gzip("x-gzip"));
    ck_assert(accepts_gzip("*"));
    ck_assert(accepts_gzip("gzip;q=0.001"));
    ck_assert(accepts_gzip(" deflate ,gzip ; q=1"));
    ck_assert(!accepts_gzip(NULL));
    ck_assert(!accepts_gzip(""));
    ck_assert(!accepts_gzip("identity"));
    ck_assert(!accepts_gzip("gzip;q=0"));
    ck_assert(!accepts_gzip("gzip;q=0.000"));
    ck_assert(!accepts_gzip("gzip;q=0, *"));
    ck_assert(!accepts_gzip("*;q=0"));
    ck_assert(!accepts_gzip("gzipx, xgzip"));
    ck_assert(!accepts_gzip("br"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httputil");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_etag_single);
    tcase_add_test(tc, test_etag_list_weak_star);
    tcase_add_test(tc, test_etag_malformed);
    tcase_add_test(tc, test_etag_embedded_nul);
    tcase_add_test(tc, test_parse_int_range);
    tcase_add_test(tc, test_etag_header_has);
    tcase_add_test(tc, test_etag_format);
    tcase_add_test(tc, test_url_unescape);
    tcase_add_test(tc, test_origin_listed);
    tcase_add_test(tc, test_accepts_gzip);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
