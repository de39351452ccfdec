/* flag.h -- the flag (docs/api.md §1): its in-memory form, JSON form, validation
 * of request bodies, the rolled_out_at rule and staleness (docs/operations.md §3).
 *
 * Everything here is pure: no I/O, no globals, so it is unit-tested alone and
 * fuzzed.  A struct vx_flag owns all of its strings; flag_free() releases
 * them.  users is kept sorted (bytewise, strcmp order) and distinct so that
 * evaluation can binary-search it. */
#ifndef VX_FLAG_H
#define VX_FLAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vx.h"

#define FLAG_NAME_MAX        100
#define FLAG_DESCRIPTION_MAX 1000 /* characters (UTF-8 code points) */
#define FLAG_OWNER_MAX       200  /* characters */
#define FLAG_USER_MAX        256  /* bytes */
#define FLAG_USERS_MAX       10000
#define FLAG_SEGMENTS_MAX    100 /* segments named by one state */
#define ENV_NAME_MAX         32

struct vx_flag {
    char *name;
    char *description;
    char *owner;
    bool enabled;
    int percentage;
    char **users; /* sorted, distinct */
    size_t n_users;
    char **segments; /* names of segments, sorted, distinct */
    size_t n_segments;
    int64_t created_at;    /* µs since epoch */
    int64_t updated_at;    /* µs since epoch */
    int64_t rolled_out_at; /* µs since epoch, 0 = null */
    int64_t revision;
};

/* Which fields a patch sets. */
enum {
    FLAG_SET_NAME = 1u << 0,
    FLAG_SET_DESCRIPTION = 1u << 1,
    FLAG_SET_OWNER = 1u << 2,
    FLAG_SET_ENABLED = 1u << 3,
    FLAG_SET_PERCENTAGE = 1u << 4,
    FLAG_SET_USERS = 1u << 5,
    FLAG_SET_SEGMENTS = 1u << 6,
    FLAG_SET_ENVIRONMENTS = 1u << 7,
};
/* The bits of the state in one environment (the rest is the definition). */
#define FLAG_SET_STATE (FLAG_SET_ENABLED | FLAG_SET_PERCENTAGE | FLAG_SET_USERS | FLAG_SET_SEGMENTS)

struct vx_env_patch;

/* A validated create (POST) or update (PATCH) body. Owns its strings. */
struct vx_flag_patch {
    unsigned set; /* FLAG_SET_* bits */
    char *name;
    char *description;
    char *owner;
    bool enabled;
    int percentage;
    char **users; /* sorted, distinct */
    size_t n_users;
    char **segments; /* sorted, distinct */
    size_t n_segments;
    /* "environments": the state of each environment named (FLAG_SET_STATE
     * bits only in each), sorted by environment name. */
    struct vx_env_patch *envs;
    size_t n_envs;
};

/* The state patch of one environment in a flag patch. */
struct vx_env_patch {
    char *env;
    struct vx_flag_patch state;
};

/* A text field (a description, an owner): a JSON string without NUL of at
 * most max characters (UTF-8 code points).  0 with *out a new string, or
 * -1 with err naming field. */
int text_from_json(const json_t *v, const char *field, size_t max, char **out,
                   struct vx_error *err);

/* docs/api.md §6 environment name rule: ^[a-z0-9][a-z0-9_-]{0,31}$ */
bool env_name_valid(const char *s, size_t len);

/* The patch that one environment's flag gets from p: the definition bits,
 * the top-level state bits when env is the request's environment, and the
 * bits p->envs names for env.  The result borrows p's strings: never free
 * it.  The caller has refused a patch that addresses the request's
 * environment both ways (flag_patch_check_env). */
struct vx_flag_patch flag_patch_for_env(const struct vx_flag_patch *p, const char *env,
                                        bool request_env);

/* Refuse (VX_E_BAD_REQUEST) a patch that sets state at top level and also
 * names the request's environment in "environments". */
int flag_patch_check_env(const struct vx_flag_patch *p, const char *request_env,
                         struct vx_error *err);

/* docs/api.md §1 name rule: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$ */
bool flag_name_valid(const char *s, size_t len);

/* Validate a request body.  create=true: POST (name required, all fields
 * allowed); create=false: PATCH (name not allowed).  Unknown fields ->
 * VX_E_UNKNOWN_FIELD, wrong type or value out of range -> VX_E_INVALID_VALUE,
 * body not an object -> VX_E_BAD_REQUEST; the message names the field.
 * On success p is filled (free with flag_patch_free) and 0 is returned. */
int flag_patch_from_json(const json_t *body, bool create, struct vx_flag_patch *p,
                         struct vx_error *err);
void flag_patch_free(struct vx_flag_patch *p);

/* A new flag from a create patch, with defaults, created_at = updated_at = now,
 * revision 1, and rolled_out_at by the rule below. 0 or -1 (out of memory). */
int flag_from_patch(const struct vx_flag_patch *p, int64_t now, struct vx_flag *out);

/* Apply an update patch to f in place: fields, updated_at = now, revision + 1,
 * rolled_out_at by the rule below. Returns 1 if anything changed, 0 if the
 * patch changes nothing (then f is untouched), -1 out of memory. */
int flag_apply_patch(struct vx_flag *f, const struct vx_flag_patch *p, int64_t now);

/* The rolled_out_at rule: a flag is "rolled out" while enabled with
 * percentage 100.  Given the state before (NULL if none) and after, set
 * after->rolled_out_at: kept from before if both rolled out, now if it has
 * just become rolled out, 0 otherwise. */
void flag_update_rolled_out(const struct vx_flag *before, struct vx_flag *after, int64_t now);

/* JSON object of a flag (docs/api.md §1 fields). New reference; NULL on OOM. */
json_t *flag_to_json(const struct vx_flag *f);

/* The state part of a flag: {enabled, percentage, users, segments,
 * rolled_out_at}.  New reference; NULL on OOM. */
json_t *flag_state_to_json(const struct vx_flag *f);

/* Copy the state part (enabled, percentage, users, segments, rolled_out_at)
 * of src over dst's.  0, or -1 on OOM (dst unchanged). */
int flag_state_assign(struct vx_flag *dst, const struct vx_flag *src);

/* Is the state part of a and b the same? */
bool flag_state_equal(const struct vx_flag *a, const struct vx_flag *b);

/* Is the definition part (description, owner) of a and b the same? */
bool flag_definition_equal(const struct vx_flag *a, const struct vx_flag *b);

/* Parse a flag object as produced by flag_to_json (used to restore history).
 * Unknown fields are ignored. 0 on success, -1 with err filled. */
int flag_from_json(const json_t *obj, struct vx_flag *out, struct vx_error *err);

/* Deep copy. 0 or -1 on OOM. */
int flag_copy(const struct vx_flag *src, struct vx_flag *dst);
void flag_free(struct vx_flag *f);

/* Sort users (n strings, each malloc'd) in place into the order struct
 * vx_flag keeps and drop repeated entries, freeing them; the slots past the
 * returned count are set to NULL.  Returns how many distinct users remain.
 * When dup is not NULL, *dup receives the first user (in sorted order) that
 * was listed more than once -- a pointer into users -- or NULL. */
size_t flag_users_normalize(char **users, size_t n, const char **dup);

/* Is user listed? (binary search; users must be sorted) */
bool flag_has_user(const struct vx_flag *f, const char *user, size_t user_len);

/* strcmp order between a NUL-terminated s and a counted (u, n), without
 * strlen.  s ending first means s sorts first -- even if u holds a NUL
 * there: a stored name never contains one, so it cannot equal such a u. */
int name_cmp(const char *s, const char *u, size_t n);

/* The index of name[0..len) in a list of n names sorted in strcmp order,
 * name_at(list, i) being the i-th; n when it is not there.  Binary search;
 * inline, so that each caller's name_at is inlined too: it serves the
 * read path (a flag's users, a view's flags, a snapshot's segments). */
static inline size_t names_find(const void *list, size_t n,
                                const char *(*name_at)(const void *list, size_t i),
                                const char *name, size_t len)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(name_at(list, mid), name, len);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return n;
}

/* Is user in users[0..n) (sorted, distinct)?  Binary search. */
bool users_contain(char *const *users, size_t n, const char *user, size_t user_len);

/* Deep copy of a sorted users array (or segment names) into *out (caller
 * frees with users_free).  0, or -1 on OOM with *out NULL. */
int users_copy(char *const *src, size_t n, char ***out);
void users_free(char **users, size_t n);

/* Validate a JSON array of user ids (distinct, each 1..256 bytes, at most
 * max) into a new sorted array (users_free), NULL when empty; the message
 * names field. */
int users_from_json(const json_t *v, const char *field, size_t max, char ***out, size_t *n,
                    struct vx_error *err);

/* Whole days since created_at (never negative). */
int64_t flag_age_days(const struct vx_flag *f, int64_t now);

/* docs/operations.md §3 default thresholds, used when a negative value is passed below. */
#define FLAG_STALE_DAYS_DEFAULT      30
#define FLAG_ROLLED_OUT_DAYS_DEFAULT 14
#define FLAG_STALE_DAYS_MAX          100000 /* the largest threshold accepted */

/* docs/operations.md §3. A flag is stale when now - created_at > days, or when it is
 * rolled out and now - rolled_out_at > rolled_out_days.  Returns a new JSON
 * array of reason strings ("older_than_<days>_days",
 * "rolled_out_<rolled_out_days>_days"), empty when none; NULL on OOM. */
json_t *flag_stale_reasons(const struct vx_flag *f, int64_t now, int days, int rolled_out_days);

/* flag_to_json plus "age_days" and "stale" (default thresholds 30/14 unless given:
 * a negative days or rolled_out_days means the default, here and in
 * flag_stale_reasons).  New reference; NULL on OOM. */
json_t *flag_to_admin_json(const struct vx_flag *f, int64_t now, int days, int rolled_out_days);

#endif
