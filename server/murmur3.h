/* murmur3.h -- MurmurHash3 x86_32, as used by Unleash's gradual rollout. */
#ifndef VX_MURMUR3_H
#define VX_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

uint32_t murmur3_x86_32(const void *data, size_t len, uint32_t seed);

/* Streaming form: feeding the bytes in any number of pieces gives the same
 * hash as murmur3_x86_32() over their concatenation.  No allocation. */
struct murmur3_ctx {
    uint32_t h;    /* running hash */
    uint32_t tail; /* up to 3 pending bytes, little-endian */
    unsigned tail_len;
    size_t total; /* bytes fed so far */
};

void murmur3_init(struct murmur3_ctx *c, uint32_t seed);
void murmur3_update(struct murmur3_ctx *c, const void *data, size_t len);
uint32_t murmur3_final(const struct murmur3_ctx *c);

#endif
