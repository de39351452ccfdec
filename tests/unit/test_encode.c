/* test_encode.c -- hex and base64url of server/encode.c.
 *
 * base64url: the test vectors of RFC 4648 §10 ("", "f" ... "foobar"), which
 * use no character that differs between the two alphabets, written without
 * their '=' padding; then bytes whose groups land on 62 and 63, where the
 * URL alphabet has '-' and '_' instead of '+' and '/'; then the length of a
 * token secret (32 bytes -> 43 characters).
 * hex: round trips of every byte value, both cases accepted on the way in,
 * and refusals: odd length, a character that is not a hex digit, a string
 * of the wrong length for the buffer. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "encode.h"
#include "unit.h"

static const struct {
    const char *in;
    const char *want;
} rfc4648_vectors[] = {
    {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
    {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
};

START_TEST(test_base64url_rfc4648)
{
    const char *in = rfc4648_vectors[_i].in;
    char out[ENCODE_BASE64URL_SIZE(6)];

    memset(out, 'x', sizeof out);
    encode_base64url((const uint8_t *)in, strlen(in), out);
    ck_assert_str_eq(out, rfc4648_vectors[_i].want);
}
END_TEST

START_TEST(test_base64url_alphabet)
{
    /* 0xfb 0xff: 111110 111111 1111(00) -> 62, 63, 60. */
    const uint8_t a[] = {0xfb, 0xff};
    /* 0xff x3: four times 63; 0x00 x3: four times 0. */
    const uint8_t b[] = {0xff, 0xff, 0xff, 0x00, 0x00, 0x00};
    char out[ENCODE_BASE64URL_SIZE(6)];

    encode_base64url(a, sizeof a, out);
    ck_assert_str_eq(out, "-_8");
    encode_base64url(b, sizeof b, out);
    ck_assert_str_eq(out, "____AAAA");
}
END_TEST

START_TEST(test_base64url_secret_length)
{
    uint8_t raw[32];
    char out[ENCODE_BASE64URL_SIZE(32)];

    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    ck_assert_uint_eq(sizeof out, 44);
    encode_base64url(raw, sizeof raw, out);
    ck_assert_uint_eq(strlen(out), 43);
    ck_assert_uint_eq(strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_"),
                      43);
}
END_TEST

START_TEST(test_hex_round_trip)
{
    uint8_t in[256], back[256];
    char text[2 * 256 + 1];

    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)i;
    encode_hex(in, sizeof in, text);
    ck_assert_uint_eq(strlen(text), 512);
    ck_assert(strncmp(text, "000102", 6) == 0);
    ck_assert_str_eq(text + 500, "fafbfcfdfeff");
    ck_assert_int_eq(encode_unhex(text, back, sizeof back), 0);
    ck_assert_mem_eq(in, back, sizeof in);

    encode_hex(in, 0, text);
    ck_assert_str_eq(text, "");
    ck_assert_int_eq(encode_unhex("", back, 0), 0);
}
END_TEST

START_TEST(test_unhex_upper_case)
{
    uint8_t out[4];
    const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef};

    ck_assert_int_eq(encode_unhex("DEADbeef", out, sizeof out), 0);
    ck_assert_mem_eq(out, want, sizeof want);
}
END_TEST

START_TEST(test_unhex_refuses)
{
    uint8_t out[4];

    /* Odd length. */
    ck_assert_int_eq(encode_unhex("abc", out, 2), -1);
    ck_assert_int_eq(encode_unhex("abcdeff", out, 4), -1);
    /* Not a hex digit, first or second of a pair, or anywhere. */
    ck_assert_int_eq(encode_unhex("zz", out, 1), -1);
    ck_assert_int_eq(encode_unhex("0g", out, 1), -1);
    ck_assert_int_eq(encode_unhex("00112 33", out, 4), -1);
    ck_assert_int_eq(encode_unhex("0x112233", out, 4), -1);
    /* Wrong length for the buffer: shorter and longer. */
    ck_assert_int_eq(encode_unhex("001122", out, 4), -1);
    ck_assert_int_eq(encode_unhex("0011223344", out, 4), -1);
    ck_assert_int_eq(encode_unhex("", out, 1), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("encode");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_base64url_rfc4648, 0,
                        (int)(sizeof rfc4648_vectors / sizeof rfc4648_vectors[0]));
    tcase_add_test(tc, test_base64url_alphabet);
    tcase_add_test(tc, test_base64url_secret_length);
    tcase_add_test(tc, test_hex_round_trip);
    tcase_add_test(tc, test_unhex_upper_case);
    tcase_add_test(tc, test_unhex_refuses);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
