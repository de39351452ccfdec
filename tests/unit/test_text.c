/* test_text.c -- server/text.c: the buffer, JSON string output, UTF-8
 * validation, token names, text made visible for a terminal or a mail. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "unit.h"

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

int main(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_json_string_roundtrip);
    tcase_add_test(tc, test_json_string_invalid_utf8_replaced);
    tcase_add_test(tc, test_utf8_valid);
    tcase_add_test(tc, test_utf8_sanitize);
    tcase_add_test(tc, test_token_names);
    tcase_add_test(tc, test_buf_growth);
    tcase_add_test(tc, test_visible_escapes);
    tcase_add_test(tc, test_visible_width);
    tcase_add_test(tc, test_char_control);
    tcase_add_test(tc, test_json_visible);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
