/* test_sha256.c -- SHA-256 against FIPS 180-2/180-4 example vectors.
 *
 * Expected digests are the published NIST examples (empty string, "abc",
 * the 448- and 896-bit messages, a million 'a'), plus messages around the
 * padding boundaries (55/56/63/64/65 ... bytes, where the length field
 * does or does not fit in the last block) whose digests were taken from an
 * independent implementation (Python's hashlib).  Every digest is checked
 * both one-shot and fed in awkward pieces. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "unit.h"

static void hex(const uint8_t d[SHA256_LEN], char out[2 * SHA256_LEN + 1])
{
    for (int i = 0; i < SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Digest of msg one-shot, and fed `step` bytes at a time; both must equal want. */
static void check_digest(const void *msg, size_t len, size_t step, const char *want)
{
    uint8_t d[SHA256_LEN];
    char h[2 * SHA256_LEN + 1];

    sha256(msg, len, d);
    hex(d, h);
    ck_assert_str_eq(h, want);

    struct sha256_ctx c;
    sha256_init(&c);
    for (size_t off = 0; off < len; off += step)
        sha256_update(&c, (const uint8_t *)msg + off, off + step <= len ? step : len - off);
    sha256_final(&c, d);
    hex(d, h);
    ck_assert_str_eq(h, want);
}

START_TEST(test_empty)
{
    check_digest("", 0, 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_abc)
{
    check_digest("abc", 3, 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_448_bits)
{
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ck_assert_uint_eq(strlen(m) * 8, 448);
    check_digest(m, strlen(m), 5,
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_896_bits)
{
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
        "klmnopqrlmnopqrsmnopqrstnopqrstu";
    ck_assert_uint_eq(strlen(m) * 8, 896);
    check_digest(m, strlen(m), 63,
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(test_million_a)
{
    size_t len = 1000000;
    char *m = malloc(len);
    ck_assert_ptr_nonnull(m);
    memset(m, 'a', len);
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    check_digest(m, len, 1000, want);
    check_digest(m, len, 7, want);
    free(m);
}
END_TEST

/* Message i % 251 of each length; digests from Python's hashlib. */
static const struct {
    size_t len;
    const char *want;
} boundaries[] = {
    {55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"},
    {56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"},
    {63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"},
    {64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"},
    {65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"},
    {119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"},
    {120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"},
    {127, "92ca0fa6651ee2f97b884b7246a562fa71250fedefe5ebf270d31c546bfea976"},
    {128, "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5"},
    {129, "5099c6a56203f9687f7d33f4bfdf576d31dc91f6b695ecea38b2770c87631135"},
};

START_TEST(test_padding_boundaries)
{
    uint8_t m[256];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i % 251);
    for (size_t step = 1; step <= 65; step += 8)
        check_digest(m, boundaries[_i].len, step, boundaries[_i].want);
}
END_TEST

START_TEST(test_ct_equal)
{
    uint8_t a[SHA256_LEN], b[SHA256_LEN];
    sha256("abc", 3, a);
    memcpy(b, a, sizeof b);
    ck_assert_int_eq(sha256_ct_equal(a, b, SHA256_LEN), 1);
    b[0] ^= 0x01;
    ck_assert_int_eq(sha256_ct_equal(a, b, SHA256_LEN), 0);
    b[0] ^= 0x01;
    b[SHA256_LEN - 1] ^= 0x80;
    ck_assert_int_eq(sha256_ct_equal(a, b, SHA256_LEN), 0);
    /* Only the first n bytes count. */
    ck_assert_int_eq(sha256_ct_equal(a, b, SHA256_LEN - 1), 1);
    ck_assert_int_eq(sha256_ct_equal(a, b, 0), 1);
}
END_TEST

/* RFC 4231 §4: HMAC-SHA-256 test cases 1-7 (case 5, truncated output, is
 * checked on its first 128 bits). */
static uint8_t unhex(char c)
{
    return (uint8_t)(c <= '9' ? c - '0' : c - 'a' + 10);
}

static size_t from_hex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(unhex(h[2 * i]) << 4 | unhex(h[2 * i + 1]));
    return n;
}

static const struct {
    const char *key, *data, *mac; /* hex, hex, hex */
} rfc4231[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddd",
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819",
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcd",
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
     "a3b6167473100ee06e0c796c2955552b"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b"
     "6579204669727374",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65"
     "206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b"
     "6579206e6565647320746f20626520686173686564206265666f7265206265696e672075736564206279207468652"
     "0"
     "484d414320616c676f726974686d2e",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

START_TEST(test_hmac_rfc4231)
{
    uint8_t key[200], data[200], want[SHA256_LEN], got[SHA256_LEN];
    size_t kl = from_hex(rfc4231[_i].key, key), dl = from_hex(rfc4231[_i].data, data);
    size_t ml = from_hex(rfc4231[_i].mac, want);

    hmac_sha256(key, kl, data, dl, got);
    ck_assert_msg(memcmp(got, want, ml) == 0, "RFC 4231 test case %d", _i + 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_abc);
    tcase_add_test(tc, test_448_bits);
    tcase_add_test(tc, test_896_bits);
    tcase_add_test(tc, test_million_a);
    tcase_add_loop_test(tc, test_padding_boundaries, 0,
                        (int)(sizeof boundaries / sizeof boundaries[0]));
    tcase_add_test(tc, test_ct_equal);
    tcase_add_loop_test(tc, test_hmac_rfc4231, 0, (int)(sizeof rfc4231 / sizeof rfc4231[0]));
    suite_add_tcase(s, tc);

    return unit_run(s);
}
