/* encode.c -- bytes as text: lowercase hex and unpadded base64url.
 *
 * Why a module of its own.  Token secrets are written in base64url and
 * their digests cross to PostgreSQL in hex; the OFREP change-stream keys are
 * base64url too.  Encoders are pure and easy to get subtly wrong at the
 * edges (the last one or two bytes of base64, an odd-length hex string), so
 * they live here once, with a unit test (tests/unit/test_encode.c), instead
 * of a copy in every file that needs one.
 *
 * How.  encode_base64url() takes the input three bytes at a time into a
 * 24-bit group and writes the four 6-bit characters of the group, or only
 * the two or three that carry input bits for a short last group: that is
 * the unpadded form.  encode_unhex() insists on exactly 2n digits, so a
 * value of the wrong length is refused rather than truncated or padded. */
#include "encode.h"

#include <string.h>

void encode_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int encode_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int encode_unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = encode_hex_digit(s[2 * i]), lo = encode_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void encode_base64url(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}
