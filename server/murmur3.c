/* murmur3.c -- MurmurHash3 x86_32 (Austin Appleby, public domain).
 *
 * vexil buckets users exactly as Unleash does (docs/evaluation.md), so this must be the
 * reference algorithm bit for bit: little-endian 4-byte blocks, the same
 * tail handling and the same finaliser.  Blocks are read byte by byte, which
 * makes the result independent of host endianness and alignment.
 *
 * The hash is computed by a small streaming state (murmur3_init / update /
 * final) so that evaluation can hash "name" ":" "user" from three pieces
 * without joining them into a buffer, i.e. without allocating on the read
 * path.  The one-shot murmur3_x86_32() is the same state used once. */
#include "murmur3.h"

#define MURMUR3_C1 UINT32_C(0xcc9e2d51)
#define MURMUR3_C2 UINT32_C(0x1b873593)

static inline uint32_t murmur3_rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

/* Mix one 4-byte block k into the running hash h. */
static inline uint32_t murmur3_block(uint32_t h, uint32_t k)
{
    k *= MURMUR3_C1;
    k = murmur3_rotl32(k, 15);
    k *= MURMUR3_C2;
    h ^= k;
    h = murmur3_rotl32(h, 13);
    return h * 5 + UINT32_C(0xe6546b64);
}

void murmur3_init(struct murmur3_ctx *c, uint32_t seed)
{
    c->h = seed;
    c->tail = 0;
    c->tail_len = 0;
    c->total = 0;
}

void murmur3_update(struct murmur3_ctx *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;

    c->total += len;
    /* Complete a pending partial block byte by byte, then take whole
     * 4-byte blocks straight from the input, then keep the rest pending. */
    while (c->tail_len != 0 && i < len) {
        c->tail |= (uint32_t)p[i++] << (8 * c->tail_len);
        if (++c->tail_len == 4) {
            c->h = murmur3_block(c->h, c->tail);
            c->tail = 0;
            c->tail_len = 0;
        }
    }
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                     (uint32_t)p[i + 3] << 24;
        c->h = murmur3_block(c->h, k);
    }
    for (; i < len; i++)
        c->tail |= (uint32_t)p[i] << (8 * c->tail_len++);
}

uint32_t murmur3_final(const struct murmur3_ctx *c)
{
    uint32_t h = c->h;

    if (c->tail_len > 0) {
        uint32_t k = c->tail;
        k *= MURMUR3_C1;
        k = murmur3_rotl32(k, 15);
        k *= MURMUR3_C2;
        h ^= k;
    }
    /* The reference takes the length as a 32-bit int. */
    h ^= (uint32_t)c->total;
    h ^= h >> 16;
    h *= UINT32_C(0x85ebca6b);
    h ^= h >> 13;
    h *= UINT32_C(0xc2b2ae35);
    h ^= h >> 16;
    return h;
}

uint32_t murmur3_x86_32(const void *data, size_t len, uint32_t seed)
{
    struct murmur3_ctx c;
    murmur3_init(&c, seed);
    murmur3_update(&c, data, len);
    return murmur3_final(&c);
}
