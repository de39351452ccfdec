/* test_murmur3.c -- MurmurHash3 x86_32 against published vectors.
 *
 * The expected values come from the reference implementation's widely
 * published test vectors (SMHasher / Appleby), not from this code: they
 * cover every tail length (0..3 bytes), non-zero seeds, bytes with the high
 * bit set, and the empty input.  The streaming interface must agree with
 * the one-shot function however the input is split. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "murmur3.h"
#include "unit.h"

static const struct {
    const char *data;
    size_t len;
    uint32_t seed;
    uint32_t want;
} vectors[] = {
    {"", 0, 0, 0},
    {"", 0, 1, 0x514E28B7},
    {"", 0, 0xffffffff, 0x81F16F39},
    {"\0\0\0\0", 4, 0, 0x2362F9DE},
    {"\0\0\0", 3, 0, 0x85F0B427},
    {"\0\0", 2, 0, 0x30F4C306},
    {"\0", 1, 0, 0x514E28B7},
    {"\xff\xff\xff\xff", 4, 0, 0x76293B50},
    {"\x21\x43\x65\x87", 4, 0, 0xF55B516B},
    {"\x21\x43\x65\x87", 4, 0x5082EDEE, 0x2362F9DE},
    {"\x21\x43\x65", 3, 0, 0x7E4A8634},
    {"\x21\x43", 2, 0, 0xA0F7B07A},
    {"\x21", 1, 0, 0x72661CF4},
    {"aaaa", 4, 0x9747b28c, 0x5A97808A},
    {"aaa", 3, 0x9747b28c, 0x283E0130},
    {"aa", 2, 0x9747b28c, 0x5D211726},
    {"a", 1, 0x9747b28c, 0x7FA09EA6},
    {"abcd", 4, 0x9747b28c, 0xF0478627},
    {"abc", 3, 0x9747b28c, 0xC84A62DD},
    {"ab", 2, 0x9747b28c, 0x74875592},
    {"Hello, world!", 13, 0x9747b28c, 0x24884CBA},
    {"The quick brown fox jumps over the lazy dog", 43, 0x9747b28c, 0x2FA826CD},
};
#define N_VECTORS ((int)(sizeof vectors / sizeof vectors[0]))

START_TEST(test_vectors)
{
    ck_assert_uint_eq(murmur3_x86_32(vectors[_i].data, vectors[_i].len, vectors[_i].seed),
                      vectors[_i].want);
}
END_TEST

/* Every split point of every vector, and one byte at a time. */
START_TEST(test_streaming_matches_one_shot)
{
    const char *d = vectors[_i].data;
    size_t len = vectors[_i].len;
    struct murmur3_ctx c;

    for (size_t cut = 0; cut <= len; cut++) {
        for (size_t cut2 = cut; cut2 <= len; cut2++) {
            murmur3_init(&c, vectors[_i].seed);
            murmur3_update(&c, d, cut);
            murmur3_update(&c, d + cut, cut2 - cut);
            murmur3_update(&c, d + cut2, len - cut2);
            ck_assert_uint_eq(murmur3_final(&c), vectors[_i].want);
        }
    }
    murmur3_init(&c, vectors[_i].seed);
    for (size_t i = 0; i < len; i++)
        murmur3_update(&c, d + i, 1);
    ck_assert_uint_eq(murmur3_final(&c), vectors[_i].want);
}
END_TEST

/* Long, unaligned input: the one-shot and streaming forms agree, and the
 * hash reads bytes, not words, so an odd start address changes nothing. */
START_TEST(test_unaligned_long)
{
    size_t len = 10007;
    unsigned char *buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < len; i++)
        buf[i + 1] = (unsigned char)(i * 131 + 7);
    unsigned char *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf + 1, len);

    uint32_t a = murmur3_x86_32(buf + 1, len, 42);
    ck_assert_uint_eq(a, murmur3_x86_32(copy, len, 42));

    struct murmur3_ctx c;
    murmur3_init(&c, 42);
    for (size_t off = 0; off < len; off += 333)
        murmur3_update(&c, buf + 1 + off, off + 333 <= len ? 333 : len - off);
    ck_assert_uint_eq(murmur3_final(&c), a);
    /* A different seed or one flipped bit gives a different hash. */
    ck_assert_uint_ne(murmur3_x86_32(copy, len, 43), a);
    copy[5000] ^= 1;
    ck_assert_uint_ne(murmur3_x86_32(copy, len, 42), a);
    free(buf);
    free(copy);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("murmur3");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_vectors, 0, N_VECTORS);
    tcase_add_loop_test(tc, test_streaming_matches_one_shot, 0, N_VECTORS);
    tcase_add_test(tc, test_unaligned_long);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
