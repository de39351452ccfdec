/* sha256.h -- SHA-256 (FIPS 180-4), used to store token secrets as hashes,
 * and HMAC-SHA256 (RFC 2104), which signs webhook bodies. */
#ifndef VX_SHA256_H
#define VX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

struct sha256_ctx {
    uint32_t state[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t buflen;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/* HMAC-SHA256 of data under key (any length). */
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 uint8_t out[SHA256_LEN]);

/* Compare n bytes in time independent of their contents: 1 if equal. */
int sha256_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
