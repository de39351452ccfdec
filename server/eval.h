/* eval.h -- docs/evaluation.md: is a flag on for a user?  Pure, lock-free, allocation-free. */
#ifndef VX_EVAL_H
#define VX_EVAL_H

#include <stdbool.h>
#include <stddef.h>

#include "murmur3.h"

struct vx_flag;

/* Why a flag evaluated as it did; maps one-to-one onto OFREP reasons. */
enum vx_reason {
    VX_REASON_DISABLED,        /* not enabled: the kill switch wins */
    VX_REASON_TARGETING_MATCH, /* user listed in flag.users or a segment of the flag */
    VX_REASON_STATIC,          /* percentage 100 */
    VX_REASON_SPLIT,           /* decided by the user's bucket */
    VX_REASON_DEFAULT,         /* anonymous user below 100 % */
};

/* bucket(name, user) = murmur3_x86_32(name ":" user, seed 0) % 100 + 1, in 1..100. */
int eval_bucket(const char *name, size_t name_len, const char *user, size_t user_len);

/* Evaluate; user may be NULL (absent). *reason (if not NULL) receives the reason. */
bool eval_flag(const struct vx_flag *f, const char *user, size_t user_len, enum vx_reason *reason);

/* The hash state after "name:", the part of every bucket of a flag that
 * does not depend on the user: the snapshot computes it once per flag. */
void eval_prefix(const char *name, size_t name_len, struct murmur3_ctx *out);

/* eval_flag with the flag's prefix state from eval_prefix (NULL: computed
 * here).  Same answer, less hashing per user. */
bool eval_flag_prefixed(const struct vx_flag *f, const struct murmur3_ctx *prefix, const char *user,
                        size_t user_len, enum vx_reason *reason);

/* The segments a flag's state may name (docs/evaluation.md): has() tells
 * whether user is in the segment called segment; an unknown segment holds
 * nobody. */
struct eval_segments {
    bool (*has)(const void *cls, const char *segment, const char *user, size_t user_len);
    const void *cls;
};

/* eval_flag_prefixed, with the users of the flag's segments on too (segs
 * NULL: no segment holds anybody). */
bool eval_flag_in(const struct vx_flag *f, const struct murmur3_ctx *prefix,
                  const struct eval_segments *segs, const char *user, size_t user_len,
                  enum vx_reason *reason);

/* OFREP's name for a reason: "DISABLED", "TARGETING_MATCH", ... */
const char *eval_reason_name(enum vx_reason r);

#endif
