/* test_httputil.c -- server/httputil.c: entity tags, integer parameters,
 * JSON string output, UTF-8 validation, text made visible for a terminal
 * or a mail. */
#include <check.h>
#include <jansson.h>
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

/* Whatever bytes go in, the output parses as JSON and round-trips valid UTF-8. */
START_TEST(test_json_string_roundtrip)
{
    static const char *in[] = {"plain",        "q\"uote\\back", "ctl\x01\n\t",
                               "<img src=x>&", "\xc3\xbc-user", "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct buf b = {0};
        ck_assert_int_eq(buf_add_json_string(&b, in[i], strlen(in[i])), 0);
        json_error_t e;
        json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &e);
        ck_assert_msg(j != NULL, "not JSON: %s", b.p);
        ck_assert_str_eq(json_string_value(j), in[i]);
        ck_assert_ptr_null(strchr(b.p, '<'));
        json_decref(j);
        buf_free(&b);
    }
}
END_TEST

START_TEST(test_json_string_invalid_utf8_replaced)
{
    struct buf b = {0};
    ck_assert_int_eq(buf_add_json_string(&b, "a\xff\xc3(b", 5), 0);
    json_error_t e;
    json_t *j = json_loadb(b.p, b.len, JSON_DECODE_ANY, &e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(j), "a\xef\xbf\xbd\xef\xbf\xbd(b");
    json_decref(j);
    buf_free(&b);
}
END_TEST

START_TEST(test_utf8_valid)
{
    ck_assert(utf8_valid("abc", 3));
    ck_assert(utf8_valid("\xc3\xbc", 2));
    ck_assert(!utf8_valid("a\0b", 3));
    ck_assert(!utf8_valid("\xc0\xaf", 2));         /* overlong */
    ck_assert(!utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!utf8_valid("\xe2\x82", 2));         /* truncated */
}
END_TEST

START_TEST(test_utf8_sanitize)
{
    char s[] = "ok \xc3\xbc cut\xe2\x82 end\xff";
    utf8_sanitize(s);
    ck_assert_str_eq(s, "ok \xc3\xbc cut?? end?");
    ck_assert(utf8_valid(s, strlen(s)));
}
END_TEST

START_TEST(test_token_names)
{
    char hundred[101], hundred_one[102];
    memset(hundred, 'a', 100);
    hundred[100] = '\0';
    memset(hundred_one, 'a', 101);
    hundred_one[101] = '\0';
    ck_assert_int_eq(utf8_text_chars("d\xc3\xa9ploy \xe2\x82\xac"), 8);
    ck_assert(token_name_valid("ci"));
    ck_assert(token_name_valid(hundred));
    ck_assert(!token_name_valid(hundred_one));
    ck_assert(!token_name_valid(""));
    ck_assert(!token_name_valid("tab\there"));
    ck_assert(!token_name_valid("c1\xc2\x85")); /* NEL, a C1 control */
    ck_assert(!token_name_valid("bad\xff"));
    /* 100 two-byte characters are 100 characters, not 200 bytes */
    char wide[201];
    for (int i = 0; i < 100; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[200] = '\0';
    ck_assert(token_name_valid(wide));
}
END_TEST

START_TEST(test_buf_growth)
{
    struct buf b = {0};
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(buf_addf(&b, "%d,", i % 10), 0);
    ck_assert_uint_eq(b.len, 20000);
    size_t len;
    char *p = buf_take(&b, &len);
    ck_assert_uint_eq(len, 20000);
    ck_assert_uint_eq(strlen(p), 20000);
    ck_assert_ptr_null(b.p);
    free(p);
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

/* Does s hold a byte < 0x20, 0x7f, or a C1 character (C2 80..C2 9F)? */
static bool has_control(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i] != '\0'; i++)
        if (p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] < 0xa0))
            return true;
    return false;
}

/* A string literal and its length, NULs inside included. */
#define S(lit) lit, sizeof(lit) - 1

START_TEST(test_visible_escapes)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {S("alice"), "alice"},
        {S("zo\xc3\xab \xe6\x97\xa5\xf0\x9f\x98\x80"), "zo\xc3\xab \xe6\x97\xa5\xf0\x9f\x98\x80"},
        {S("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m"},
        {S("a\r\nBcc: x"), "a\\r\\nBcc: x"},
        {S("t\tab"), "t\\tab"},
        {S("nul\0x"), "nul\\x00x"},
        {S("del\x7f"), "del\\x7f"},
        {S("csi\xc2\x9b"
           "2J"),
         "csi\\u009b2J"},
        {S("\xc2\x80\xc2\x9f\xc2\xa0"), "\\u0080\\u009f\xc2\xa0"}, /* NBSP is text */
        {S("ls\xe2\x80\xa8ps\xe2\x80\xa9"), "ls\\u2028ps\\u2029"},
        {S("rlo\xe2\x80\xaeole"), "rlo\\u202eole"},
        {S("\xe2\x81\xa6i\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c"), "\\u2066i\\u2069\\u200f\\u061c"},
        {S("back\\slash"), "back\\\\slash"},
        {S("bad\xff\xc3(\xe2\x82"), "bad\\xff\\xc3(\\xe2\\x82"},
        {S("\xed\xa0\x80"), "\\xed\\xa0\\x80"}, /* a surrogate */
        {S(""), ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b = {0};
        ck_assert_int_eq(buf_add_visible(&b, cases[i].in, cases[i].len), 0);
        char *got = buf_take(&b, NULL);
        ck_assert_msg(strcmp(got, cases[i].out) == 0, "case %zu: <%s>, want <%s>", i, got,
                      cases[i].out);
        ck_assert_msg(!has_control(got), "case %zu: a control character left in <%s>", i, got);
        ck_assert(utf8_valid(got, strlen(got)));
        free(got);
    }
}
END_TEST

/* The width of a cell is what it shows, so columns line up. */
START_TEST(test_visible_width)
{
    ck_assert_uint_eq(text_visible_width("alice", 5), 5);
    ck_assert_uint_eq(text_visible_width("zo\xc3\xab", 4), 3);
    ck_assert_uint_eq(text_visible_width("\x1b[0m", 4), 7);      /* \x1b[0m */
    ck_assert_uint_eq(text_visible_width("\r\n", 2), 4);         /* \r\n */
    ck_assert_uint_eq(text_visible_width("\xc2\x9b", 2), 6);     /* \u009b */
    ck_assert_uint_eq(text_visible_width("a\xff", 2), 5);        /* a\xff */
    ck_assert_uint_eq(text_visible_width("\\", 1), 2);           /* \\ */
    ck_assert_uint_eq(text_visible_width("\xe2\x80\xae", 3), 6); /* \u202e */
    /* Whatever goes in, the width is the characters that come out. */
    unsigned char all[512];
    for (size_t i = 0; i < 256; i++) {
        all[2 * i] = (unsigned char)i;
        all[2 * i + 1] = 'x';
    }
    struct buf b = {0};
    ck_assert_int_eq(buf_add_visible(&b, (const char *)all, sizeof all), 0);
    ck_assert(!has_control(b.p));
    ck_assert(utf8_valid(b.p, b.len));
    long chars = utf8_text_chars(b.p);
    ck_assert_int_ge(chars, 0);
    ck_assert_uint_eq(text_visible_width((const char *)all, sizeof all), (size_t)chars);
    buf_free(&b);
}
END_TEST

START_TEST(test_char_control)
{
    static const unsigned long yes[] = {0,      0x1b,   0x1f,   0x7f,   0x80,   0x9b,
                                        0x9f,   0x61c,  0x200e, 0x200f, 0x2028, 0x2029,
                                        0x202a, 0x202e, 0x2066, 0x2069};
    static const unsigned long no[] = {' ',    'a',    '~',    0xa0,   0xeb,   0x200b,
                                       0x2027, 0x202f, 0x2065, 0x206a, 0xfffd, 0x1f600};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(text_char_control(yes[i]), "U+%04lX", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!text_char_control(no[i]), "U+%04lX", no[i]);
}
END_TEST

/* jansson leaves DEL, C1 and U+2028 as they are; after buf_add_json_visible
 * the text is the same JSON value without them. */
START_TEST(test_json_visible)
{
    const char *owner = "\x1b[31mred\x1b[0m\r\n\x7f\xc2\x9b\xe2\x80\xa8\xe2\x80\xae zo\xc3\xab \\";
    json_t *o = json_pack("{s:s, s:[i]}", "owner", owner, "n", 1);
    ck_assert_ptr_nonnull(o);
    char *dumped = json_dumps(o, JSON_INDENT(2));
    ck_assert_ptr_nonnull(dumped);
    ck_assert_ptr_nonnull(strstr(dumped, "\xc2\x9b")); /* what this is for */
    struct buf b = {0};
    ck_assert_int_eq(buf_add_json_visible(&b, dumped, strlen(dumped)), 0);
    /* Only the newlines of the indentation are left below 0x20. */
    for (size_t i = 0; i < b.len; i++) {
        unsigned char c = (unsigned char)b.p[i];
        ck_assert_msg(c >= 0x20 || c == '\n', "byte %02x at %zu", c, i);
        ck_assert(c != 0x7f && !(c == 0xc2 && (unsigned char)b.p[i + 1] < 0xa0));
    }
    ck_assert_ptr_nonnull(strstr(b.p, "\\u009b"));
    ck_assert_ptr_nonnull(strstr(b.p, "zo\xc3\xab")); /* text stays text */
    json_error_t e;
    json_t *back = json_loadb(b.p, b.len, 0, &e);
    ck_assert_msg(back != NULL, "not JSON: %s", e.text);
    ck_assert(json_equal(back, o));
    ck_assert_str_eq(json_string_value(json_object_get(back, "owner")), owner);
    json_decref(back);
    buf_free(&b);
    /* Invalid UTF-8 (which jansson never writes) becomes U+FFFD. */
    ck_assert_int_eq(buf_add_json_visible(&b, "\"a\xff\"", 4), 0);
    ck_assert_str_eq(b.p, "\"a\\ufffd\"");
    buf_free(&b);
    free(dumped);
    json_decref(o);
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
    tcase_add_test(tc, test_json_string_roundtrip);
    tcase_add_test(tc, test_json_string_invalid_utf8_replaced);
    tcase_add_test(tc, test_utf8_valid);
    tcase_add_test(tc, test_utf8_sanitize);
    tcase_add_test(tc, test_token_names);
    tcase_add_test(tc, test_buf_growth);
    tcase_add_test(tc, test_etag_header_has);
    tcase_add_test(tc, test_etag_format);
    tcase_add_test(tc, test_url_unescape);
    tcase_add_test(tc, test_origin_listed);
    tcase_add_test(tc, test_visible_escapes);
    tcase_add_test(tc, test_visible_width);
    tcase_add_test(tc, test_char_control);
    tcase_add_test(tc, test_json_visible);
    tcase_add_test(tc, test_accepts_gzip);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
