/* murmur3.h -- MurmurHash3 x86_32, as used by Unleash's gradual rollout. */
#ifndef VX_MURMUR3_H
#define VX_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

uint32_t murmur3_x86_32(const void *data, size_t len, uint32_t seed);

#endif
