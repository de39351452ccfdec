/* eval.c -- docs/evaluation.md: is a flag on for a user?
 *
 * This is the read path's inner loop: every GET /flags?user=U evaluates every
 * flag, so it must be pure, lock-free and must not allocate.  The bucket
 * hash is fed "name", ":" and "user" as three pieces through murmur3's
 * streaming state instead of joining them into a buffer, so user ids of any
 * length cost no memory.
 *
 * The order of the tests is the contract: the kill switch wins over
 * everything, a listed user wins over the percentage, 100 % wins over the
 * absence of a user, and only then does the bucket decide.  Because a user's
 * bucket depends only on (name, user), raising the percentage can only turn
 * users on, never off. */
#include <string.h>

#include "eval.h"
#include "flag.h"
#include "murmur3.h"

void eval_prefix(const char *name, size_t name_len, struct murmur3_ctx *out)
{
    murmur3_init(out, 0);
    murmur3_update(out, name, name_len);
    murmur3_update(out, ":", 1);
}

/* The bucket from a flag's prefix state: only the user is hashed here. */
static int eval_bucket_from(const struct murmur3_ctx *prefix, const char *user, size_t user_len)
{
    struct murmur3_ctx c = *prefix;

    murmur3_update(&c, user, user_len);
    return (int)(murmur3_final(&c) % 100) + 1;
}

int eval_bucket(const char *name, size_t name_len, const char *user, size_t user_len)
{
    struct murmur3_ctx c;

    eval_prefix(name, name_len, &c);
    return eval_bucket_from(&c, user, user_len);
}

/* The decision and its reason in one place, so eval_flag() has one exit. */
/* Is user in any segment the flag's state names? */
static bool eval_in_segments(const struct vx_flag *f, const struct eval_segments *segs,
                             const char *user, size_t user_len)
{
    if (segs == NULL)
        return false;
    for (size_t i = 0; i < f->n_segments; i++)
        if (segs->has(segs->cls, f->segments[i], user, user_len))
            return true;
    return false;
}

static bool eval_decide(const struct vx_flag *f, const struct murmur3_ctx *prefix,
                        const struct eval_segments *segs, const char *user, size_t user_len,
                        enum vx_reason *reason)
{
    if (!f->enabled) {
        *reason = VX_REASON_DISABLED;
        return false;
    }
    if (user != NULL &&
        (flag_has_user(f, user, user_len) || eval_in_segments(f, segs, user, user_len))) {
        *reason = VX_REASON_TARGETING_MATCH;
        return true;
    }
    if (f->percentage == 100) {
        *reason = VX_REASON_STATIC;
        return true;
    }
    if (user == NULL || user_len == 0) {
        *reason = VX_REASON_DEFAULT;
        return false;
    }
    *reason = VX_REASON_SPLIT;
    if (prefix == NULL)
        return eval_bucket(f->name, strlen(f->name), user, user_len) <= f->percentage;
    return eval_bucket_from(prefix, user, user_len) <= f->percentage;
}

bool eval_flag_prefixed(const struct vx_flag *f, const struct murmur3_ctx *prefix, const char *user,
                        size_t user_len, enum vx_reason *reason)
{
    return eval_flag_in(f, prefix, NULL, user, user_len, reason);
}

bool eval_flag_in(const struct vx_flag *f, const struct murmur3_ctx *prefix,
                  const struct eval_segments *segs, const char *user, size_t user_len,
                  enum vx_reason *reason)
{
    enum vx_reason r;
    bool on = eval_decide(f, prefix, segs, user, user_len, &r);
    if (reason != NULL)
        *reason = r;
    return on;
}

const char *eval_reason_name(enum vx_reason r)
{
    switch (r) {
    case VX_REASON_DISABLED:
        return "DISABLED";
    case VX_REASON_TARGETING_MATCH:
        return "TARGETING_MATCH";
    case VX_REASON_STATIC:
        return "STATIC";
    case VX_REASON_SPLIT:
        return "SPLIT";
    case VX_REASON_DEFAULT:
        return "DEFAULT";
    }
    return "UNKNOWN";
}

bool eval_flag(const struct vx_flag *f, const char *user, size_t user_len, enum vx_reason *reason)
{
    return eval_flag_prefixed(f, NULL, user, user_len, reason);
}
