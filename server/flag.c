/* flag.c -- the flag (docs/api.md §1): request validation, JSON form, the
 * rolled_out_at rule and staleness (docs/operations.md §3).
 *
 * Validation is declarative in the Taler manner: the table flag_fields lists
 * every field a request may carry, and one small validator per kind (name,
 * text, boolean, percentage, users) checks a value and names the field in
 * its message.  A body is checked in two passes -- first that it carries no
 * field we do not know, then each known field in table order -- so that the
 * error a client sees does not depend on the order of the keys it sent.
 * flag_from_json() reuses the same validators, so a flag restored from
 * history obeys the same rules as one created over the API.
 *
 * jansson hands us valid UTF-8, but its strings may contain NUL ("\u0000"):
 * a string whose json_string_length() differs from its strlen() is refused
 * rather than silently cut short.  Lengths in characters count UTF-8 code
 * points, i.e. bytes that are not continuation bytes.
 *
 * users is kept sorted in strcmp (unsigned byte) order and distinct, which
 * makes duplicates adjacent after sorting and lets flag_has_user() binary
 * search; evaluation calls that for every request and it allocates nothing.
 *
 * Memory: a struct vx_flag or vx_flag_patch owns every string it points to;
 * flag_free() / flag_patch_free() release them.  Every function that fills
 * one leaves it empty (all NULL) on failure, so freeing it is always safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"
#include "text.h"
#include "timeutil.h"

#define FLAG_NAME_RULE "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static size_t flag_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static bool flag_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static bool flag_is_alnum(unsigned char c)
{
    return flag_name_char(c) && c != '_' && c != '.' && c != '-';
}

static int flag_strcmp_p(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void users_free(char **users, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(users[i]);
    free(users);
}

size_t flag_users_normalize(char **users, size_t n, const char **dup)
{
    size_t k = 0;

    if (dup != NULL)
        *dup = NULL;
    if (n == 0)
        return 0;
    qsort(users, n, sizeof *users, flag_strcmp_p);
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(users[k - 1], users[i]) == 0) {
            if (dup != NULL && *dup == NULL)
                *dup = users[k - 1];
            free(users[i]);
        } else {
            users[k++] = users[i];
        }
    }
    for (size_t i = k; i < n; i++)
        users[i] = NULL;
    return k;
}

/* Deep copy of a users array into *out (caller frees with flag_users_free).
 * 0, or -1 on OOM with *out NULL. */
int users_copy(char *const *src, size_t n, char ***out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    char **u = calloc(n, sizeof *u);
    if (u == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        u[i] = strdup(src[i]);
        if (u[i] == NULL) {
            users_free(u, i);
            return -1;
        }
    }
    *out = u;
    return 0;
}

static bool flag_users_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static bool flag_rolled_out(const struct vx_flag *f)
{
    return f->enabled && f->percentage == 100;
}

/* ------------------------------------------------------------------ */
/* Validators: one per kind of field; each names the field on error.    */
/* ------------------------------------------------------------------ */

/* A string without NUL; its bytes in *s, *len. */
static int flag_check_string(const json_t *v, const char *field, const char **s, size_t *len,
                             struct vx_error *err)
{
    if (!json_is_string(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be a string", field);
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (strlen(*s) != *len)
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must not contain NUL characters", field);
    return 0;
}

/* name: the docs/api.md §1 pattern.  *out is a new string (caller frees). */
static int flag_get_name(const json_t *v, const char *field, char **out, struct vx_error *err)
{
    const char *s = ""; /* set by flag_check_string on success */
    size_t len = 0;
    if (flag_check_string(v, field, &s, &len, err) != 0)
        return -1;
    if (!flag_name_valid(s, len))
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "%s must be 1 to 100 letters, digits, '_', '.' or '-', starting with a "
                       "letter or digit (" FLAG_NAME_RULE ")",
                       field);
    *out = strdup(s);
    return *out == NULL ? vx_fail(err, VX_E_UNAVAILABLE, "out of memory") : 0;
}

int text_from_json(const json_t *v, const char *field, size_t max, char **out, struct vx_error *err)
{
    const char *s = ""; /* set by flag_check_string on success */
    size_t len = 0;
    if (flag_check_string(v, field, &s, &len, err) != 0)
        return -1;
    if (flag_utf8_chars(s, len) > max)
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be at most %zu characters", field, max);
    *out = strdup(s);
    return *out == NULL ? vx_fail(err, VX_E_UNAVAILABLE, "out of memory") : 0;
}

static int flag_get_bool(const json_t *v, const char *field, bool *out, struct vx_error *err)
{
    if (!json_is_boolean(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

/* percentage: a JSON integer 0..100.  Reals (50.0, 1e2) are refused rather
 * than converted: a client that sends them has a bug worth hearing about. */
static int flag_get_percentage(const json_t *v, const char *field, int *out, struct vx_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100)
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be an integer from 0 to 100", field);
    *out = (int)json_integer_value(v);
    return 0;
}

int users_from_json(const json_t *v, const char *field, size_t max, char ***out, size_t *n_out,
                    struct vx_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (!json_is_array(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be an array of strings", field);
    size_t n = json_array_size(v);
    if (n > max)
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must have at most %zu entries", field, max);
    if (n == 0)
        return 0;

    const char *dup = NULL;
    char **u = calloc(n, sizeof *u);
    if (u == NULL)
        return vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            vx_fail(err, VX_E_INVALID_VALUE, "%s[%zu] must be a string", field, i);
            goto fail;
        }
        const char *s = json_string_value(e);
        size_t len = json_string_length(e);
        if (len < 1 || len > FLAG_USER_MAX) {
            vx_fail(err, VX_E_INVALID_VALUE, "%s[%zu] must be 1 to %d bytes long", field, i,
                    FLAG_USER_MAX);
            goto fail;
        }
        if (strlen(s) != len) {
            vx_fail(err, VX_E_INVALID_VALUE, "%s[%zu] must not contain NUL characters", field, i);
            goto fail;
        }
        u[i] = strdup(s);
        if (u[i] == NULL) {
            vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
            goto fail;
        }
    }
    if (flag_users_normalize(u, n, &dup) != n) {
        vx_fail(err, VX_E_INVALID_VALUE, "%s must be distinct: \"%.64s\" is listed twice", field,
                dup);
        goto fail;
    }
    *out = u;
    *n_out = n;
    return 0;

fail:
    users_free(u, n); /* calloc'd: unfilled slots are NULL */
    return -1;
}

static int flag_get_users(const json_t *v, const char *field, char ***out, size_t *n,
                          struct vx_error *err)
{
    return users_from_json(v, field, FLAG_USERS_MAX, out, n, err);
}

/* segments: distinct segment names (the flag name rule), at most
 * FLAG_SEGMENTS_MAX.  Whether each exists is the store's to check. */
static int flag_get_segments(const json_t *v, const char *field, char ***out, size_t *n,
                             struct vx_error *err)
{
    if (users_from_json(v, field, FLAG_SEGMENTS_MAX, out, n, err) != 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (!flag_name_valid((*out)[i], strlen((*out)[i]))) {
            vx_fail(err, VX_E_INVALID_VALUE, "%s: \"%.64s\" is not a segment name (%s)", field,
                    (*out)[i], FLAG_NAME_RULE);
            users_free(*out, *n);
            *out = NULL;
            *n = 0;
            return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Request bodies                                                       */
/* ------------------------------------------------------------------ */

/* Every field a request body may carry, in the order they are checked. */
static const struct flag_field {
    const char *key;
    unsigned bit;
} flag_fields[] = {
    /* clang-format off */
    {"name",        FLAG_SET_NAME},
    {"description", FLAG_SET_DESCRIPTION},
    {"owner",       FLAG_SET_OWNER},
    {"enabled",     FLAG_SET_ENABLED},
    {"percentage",  FLAG_SET_PERCENTAGE},
    {"users",       FLAG_SET_USERS},
    {"segments",    FLAG_SET_SEGMENTS},
    {"environments", FLAG_SET_ENVIRONMENTS},
    /* clang-format on */
};
#define FLAG_N_FIELDS (sizeof flag_fields / sizeof flag_fields[0])

/* Is key a field of the table whose bit is in allowed? */
static bool flag_field_known(const char *key, size_t key_len, unsigned allowed)
{
    for (size_t i = 0; i < FLAG_N_FIELDS; i++)
        if ((flag_fields[i].bit & allowed) && strlen(flag_fields[i].key) == key_len &&
            memcmp(flag_fields[i].key, key, key_len) == 0)
            return true;
    return false;
}

static int flag_patch_parse(const json_t *body, unsigned allowed, const char *prefix,
                            struct vx_flag_patch *p, struct vx_error *err);

static int cmp_env_patch(const void *a, const void *b)
{
    return strcmp(((const struct vx_env_patch *)a)->env, ((const struct vx_env_patch *)b)->env);
}

/* "environments": {"<env>": {state fields}, ...}. */
static int flag_get_environments(const json_t *v, const char *field, struct vx_flag_patch *p,
                                 struct vx_error *err)
{
    if (!json_is_object(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be an object of environment names", field);
    size_t n = json_object_size(v);
    p->envs = calloc(n > 0 ? n : 1, sizeof *p->envs);
    if (p->envs == NULL)
        return vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
    const char *key;
    size_t key_len;
    json_t *st;
    json_object_keylen_foreach((json_t *)v, key, key_len, st)
    {
        char prefix[ENV_NAME_MAX + 128];
        if (!env_name_valid(key, key_len))
            return vx_fail(err, VX_E_INVALID_VALUE,
                           "%s: \"%.64s\" is not an environment name (^[a-z0-9][a-z0-9_-]{0,31}$)",
                           field, key);
        snprintf(prefix, sizeof prefix, "%s.%s.", field, key);
        struct vx_env_patch *e = &p->envs[p->n_envs];
        if ((e->env = strdup(key)) == NULL)
            return vx_fail(err, VX_E_UNAVAILABLE, "out of memory");
        p->n_envs++;
        if (flag_patch_parse(st, FLAG_SET_STATE, prefix, &e->state, err) != 0)
            return -1;
    }
    if (p->n_envs > 1)
        qsort(p->envs, p->n_envs, sizeof *p->envs, cmp_env_patch);
    return 0;
}

/* Validate one present field into p. */
static int flag_patch_field(struct vx_flag_patch *p, unsigned bit, const char *key, const json_t *v,
                            struct vx_error *err)
{
    if (bit == FLAG_SET_SEGMENTS)
        return flag_get_segments(v, key, &p->segments, &p->n_segments, err);
    if (bit == FLAG_SET_ENVIRONMENTS)
        return flag_get_environments(v, key, p, err);
    switch (bit) {
    case FLAG_SET_NAME:
        return flag_get_name(v, key, &p->name, err);
    case FLAG_SET_DESCRIPTION:
        return text_from_json(v, key, FLAG_DESCRIPTION_MAX, &p->description, err);
    case FLAG_SET_OWNER:
        return text_from_json(v, key, FLAG_OWNER_MAX, &p->owner, err);
    case FLAG_SET_ENABLED:
        return flag_get_bool(v, key, &p->enabled, err);
    case FLAG_SET_PERCENTAGE:
        return flag_get_percentage(v, key, &p->percentage, err);
    case FLAG_SET_USERS:
        return flag_get_users(v, key, &p->users, &p->n_users, err);
    }
    return vx_fail(err, VX_E_INVALID_VALUE, "%s is not supported", key);
}

bool flag_name_valid(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > FLAG_NAME_MAX)
        return false;
    if (!flag_is_alnum((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!flag_name_char((unsigned char)s[i]))
            return false;
    return true;
}

bool env_name_valid(const char *s, size_t len)
{
    if (s == NULL || len < 1 || len > ENV_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* Pass 1 of a body: an object with nothing we do not know (the fields
 * whose bits are in allowed).  0, or -1 with err naming the field with its
 * prefix ("environments.staging."). */
static int flag_fields_known(const json_t *body, unsigned allowed, const char *prefix,
                             struct vx_error *err)
{
    size_t plen = strlen(prefix);

    if (!json_is_object(body))
        return vx_fail(err, plen > 0 ? VX_E_INVALID_VALUE : VX_E_BAD_REQUEST,
                       "%.*s must be a JSON object", plen > 0 ? (int)plen - 1 : 16,
                       plen > 0 ? prefix : "the request body");
    /* jansson's iterators take a non-const object although they do not
     * modify it. */
    json_t *obj = (json_t *)body;
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach(obj, key, key_len, v)
    {
        if (!flag_field_known(key, key_len, allowed))
            return vx_fail(err, VX_E_UNKNOWN_FIELD, "unknown field \"%s%.64s\"", prefix, key);
    }
    return 0;
}

/* Parse body into p, allowing the fields whose bits are in allowed; field
 * names in messages carry prefix ("environments.staging."). */
static int flag_patch_parse(const json_t *body, unsigned allowed, const char *prefix,
                            struct vx_flag_patch *p, struct vx_error *err)
{
    memset(p, 0, sizeof *p);
    if (flag_fields_known(body, allowed, prefix, err) != 0)
        return -1;

    /* Pass 2: each known field, in table order. */
    json_t *v;
    for (size_t i = 0; i < FLAG_N_FIELDS; i++) {
        char field[96];
        v = json_object_get(body, flag_fields[i].key);
        if (v == NULL)
            continue;
        snprintf(field, sizeof field, "%s%s", prefix, flag_fields[i].key);
        if (flag_patch_field(p, flag_fields[i].bit, field, v, err) != 0) {
            flag_patch_free(p);
            return -1;
        }
        p->set |= flag_fields[i].bit;
    }
    return 0;
}

int flag_patch_from_json(const json_t *body, bool create, struct vx_flag_patch *p,
                         struct vx_error *err)
{
    memset(p, 0, sizeof *p);
    /* Unknown fields first, so that the error does not depend on which
     * other fields came with them; then the name rules. */
    if (flag_fields_known(body, ~0u, "", err) != 0)
        return -1;
    if (create && json_object_get(body, "name") == NULL)
        return vx_fail(err, VX_E_INVALID_VALUE, "name is required");
    if (!create && json_object_get(body, "name") != NULL)
        return vx_fail(err, VX_E_INVALID_VALUE, "name is immutable");
    return flag_patch_parse(body, ~0u, "", p, err);
}

struct vx_flag_patch flag_patch_for_env(const struct vx_flag_patch *p, const char *env,
                                        bool request_env)
{
    struct vx_flag_patch out = *p;

    out.set &= ~(unsigned)(FLAG_SET_STATE | FLAG_SET_ENVIRONMENTS);
    out.envs = NULL;
    out.n_envs = 0;
    if (request_env)
        out.set |= p->set & FLAG_SET_STATE;
    for (size_t i = 0; i < p->n_envs; i++) {
        const struct vx_flag_patch *st = &p->envs[i].state;
        if (strcmp(p->envs[i].env, env) != 0)
            continue;
        out.set |= st->set & FLAG_SET_STATE;
        out.enabled = st->set & FLAG_SET_ENABLED ? st->enabled : out.enabled;
        out.percentage = st->set & FLAG_SET_PERCENTAGE ? st->percentage : out.percentage;
        if (st->set & FLAG_SET_USERS) {
            out.users = st->users;
            out.n_users = st->n_users;
        }
        if (st->set & FLAG_SET_SEGMENTS) {
            out.segments = st->segments;
            out.n_segments = st->n_segments;
        }
    }
    return out;
}

int flag_patch_check_env(const struct vx_flag_patch *p, const char *request_env,
                         struct vx_error *err)
{
    if (!(p->set & FLAG_SET_STATE))
        return 0;
    for (size_t i = 0; i < p->n_envs; i++)
        if (strcmp(p->envs[i].env, request_env) == 0)
            return vx_fail(err, VX_E_BAD_REQUEST,
                           "environment \"%s\" is addressed twice: by the top-level state "
                           "fields and in environments",
                           request_env);
    return 0;
}

void flag_patch_free(struct vx_flag_patch *p)
{
    free(p->name);
    free(p->description);
    free(p->owner);
    users_free(p->users, p->n_users);
    users_free(p->segments, p->n_segments);
    for (size_t i = 0; i < p->n_envs; i++) {
        free(p->envs[i].env);
        flag_patch_free(&p->envs[i].state);
    }
    free(p->envs);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ */
/* Creating and changing flags                                          */
/* ------------------------------------------------------------------ */

void flag_update_rolled_out(const struct vx_flag *before, struct vx_flag *after, int64_t now)
{
    if (!flag_rolled_out(after))
        after->rolled_out_at = 0;
    else if (before != NULL && flag_rolled_out(before) && before->rolled_out_at != 0)
        after->rolled_out_at = before->rolled_out_at;
    else
        after->rolled_out_at = now;
}

int flag_from_patch(const struct vx_flag_patch *p, int64_t now, struct vx_flag *out)
{
    memset(out, 0, sizeof *out);
    if (!(p->set & FLAG_SET_NAME) || p->name == NULL)
        return -1;

    const char *desc = p->set & FLAG_SET_DESCRIPTION ? p->description : "";
    const char *owner = p->set & FLAG_SET_OWNER ? p->owner : "";
    out->name = strdup(p->name);
    out->description = strdup(desc);
    out->owner = strdup(owner);
    if (out->name == NULL || out->description == NULL || out->owner == NULL)
        goto oom;
    if (p->set & FLAG_SET_USERS) {
        if (users_copy(p->users, p->n_users, &out->users) != 0)
            goto oom;
        out->n_users = p->n_users;
    }
    if (p->set & FLAG_SET_SEGMENTS) {
        if (users_copy(p->segments, p->n_segments, &out->segments) != 0)
            goto oom;
        out->n_segments = p->n_segments;
    }
    out->enabled = p->set & FLAG_SET_ENABLED ? p->enabled : false;
    out->percentage = p->set & FLAG_SET_PERCENTAGE ? p->percentage : 0;
    out->created_at = now;
    out->updated_at = now;
    out->revision = 1;
    flag_update_rolled_out(NULL, out, now);
    return 0;

oom:
    flag_free(out);
    return -1;
}

int flag_apply_patch(struct vx_flag *f, const struct vx_flag_patch *p, int64_t now)
{
    bool set_desc = (p->set & FLAG_SET_DESCRIPTION) && strcmp(f->description, p->description) != 0;
    bool set_owner = (p->set & FLAG_SET_OWNER) && strcmp(f->owner, p->owner) != 0;
    bool set_enabled = (p->set & FLAG_SET_ENABLED) && f->enabled != p->enabled;
    bool set_pct = (p->set & FLAG_SET_PERCENTAGE) && f->percentage != p->percentage;
    bool set_users =
        (p->set & FLAG_SET_USERS) && !flag_users_equal(f->users, f->n_users, p->users, p->n_users);
    bool set_segs = (p->set & FLAG_SET_SEGMENTS) &&
                    !flag_users_equal(f->segments, f->n_segments, p->segments, p->n_segments);

    /* name is immutable: flag_patch_from_json() refuses it for updates. */
    if (!set_desc && !set_owner && !set_enabled && !set_pct && !set_users && !set_segs)
        return 0;

    /* Allocate everything first so that running out of memory leaves f as
     * it was. */
    char *desc = NULL, *owner = NULL;
    char **users = NULL, **segs = NULL;
    if ((set_desc && (desc = strdup(p->description)) == NULL) ||
        (set_owner && (owner = strdup(p->owner)) == NULL) ||
        (set_users && users_copy(p->users, p->n_users, &users) != 0) ||
        (set_segs && users_copy(p->segments, p->n_segments, &segs) != 0)) {
        free(desc);
        free(owner);
        users_free(users, set_users ? p->n_users : 0);
        return -1;
    }
    if (set_segs) {
        users_free(f->segments, f->n_segments);
        f->segments = segs;
        f->n_segments = p->n_segments;
    }

    const struct vx_flag before = {
        .enabled = f->enabled,
        .percentage = f->percentage,
        .rolled_out_at = f->rolled_out_at,
    };
    if (set_desc) {
        free(f->description);
        f->description = desc;
    }
    if (set_owner) {
        free(f->owner);
        f->owner = owner;
    }
    if (set_users) {
        users_free(f->users, f->n_users);
        f->users = users;
        f->n_users = p->n_users;
    }
    if (set_enabled)
        f->enabled = p->enabled;
    if (set_pct)
        f->percentage = p->percentage;
    f->updated_at = now;
    f->revision++;
    flag_update_rolled_out(&before, f, now);
    return 1;
}

int flag_copy(const struct vx_flag *src, struct vx_flag *dst)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->description = strdup(src->description);
    dst->owner = strdup(src->owner);
    dst->users = NULL;
    dst->n_users = 0;
    dst->segments = NULL;
    dst->n_segments = 0;
    if (dst->name == NULL || dst->description == NULL || dst->owner == NULL ||
        users_copy(src->users, src->n_users, &dst->users) != 0) {
        flag_free(dst);
        return -1;
    }
    dst->n_users = src->n_users;
    if (users_copy(src->segments, src->n_segments, &dst->segments) != 0) {
        flag_free(dst);
        return -1;
    }
    dst->n_segments = src->n_segments;
    return 0;
}

void flag_free(struct vx_flag *f)
{
    free(f->name);
    free(f->description);
    free(f->owner);
    users_free(f->users, f->n_users);
    users_free(f->segments, f->n_segments);
    memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------------ */
/* Lookup                                                               */
/* ------------------------------------------------------------------ */

int name_cmp(const char *s, const char *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)s[i], b = (unsigned char)u[i];
        if (a == '\0')
            return -1;
        if (a != b)
            return a < b ? -1 : 1;
    }
    return s[n] != '\0';
}

bool flag_has_user(const struct vx_flag *f, const char *user, size_t user_len)
{
    return users_contain(f->users, f->n_users, user, user_len);
}

static const char *users_at(const void *list, size_t i)
{
    return ((char *const *)list)[i];
}

bool users_contain(char *const *users, size_t n, const char *user, size_t user_len)
{
    return names_find(users, n, users_at, user, user_len) < n;
}

/* ------------------------------------------------------------------ */
/* JSON form                                                            */
/* ------------------------------------------------------------------ */

static json_t *flag_time_json(int64_t us)
{
    char buf[32];
    return json_string(time_format_rfc3339(us, buf, sizeof buf));
}

/* A JSON array of strings. New reference; NULL on OOM. */
static json_t *flag_strings_json(char *const *a, size_t n)
{
    json_t *arr = json_array();
    int rc = arr == NULL;

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = json_array_append_new(arr, json_string(a[i]));
    if (rc != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

json_t *flag_state_to_json(const struct vx_flag *f)
{
    json_t *o = json_object();
    int rc = o == NULL;

    rc |= json_object_set_new(o, "enabled", json_boolean(f->enabled));
    rc |= json_object_set_new(o, "percentage", json_integer(f->percentage));
    rc |= json_object_set_new(o, "users", flag_strings_json(f->users, f->n_users));
    rc |= json_object_set_new(o, "segments", flag_strings_json(f->segments, f->n_segments));
    rc |= json_object_set_new(
        o, "rolled_out_at", f->rolled_out_at != 0 ? flag_time_json(f->rolled_out_at) : json_null());
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int flag_state_assign(struct vx_flag *dst, const struct vx_flag *src)
{
    char **users = NULL, **segs = NULL;

    if (users_copy(src->users, src->n_users, &users) != 0)
        return -1;
    if (users_copy(src->segments, src->n_segments, &segs) != 0) {
        users_free(users, src->n_users);
        return -1;
    }
    users_free(dst->users, dst->n_users);
    users_free(dst->segments, dst->n_segments);
    dst->users = users;
    dst->n_users = src->n_users;
    dst->segments = segs;
    dst->n_segments = src->n_segments;
    dst->enabled = src->enabled;
    dst->percentage = src->percentage;
    dst->rolled_out_at = src->rolled_out_at;
    return 0;
}

bool flag_state_equal(const struct vx_flag *a, const struct vx_flag *b)
{
    return a->enabled == b->enabled && a->percentage == b->percentage &&
           a->rolled_out_at == b->rolled_out_at &&
           flag_users_equal(a->users, a->n_users, b->users, b->n_users) &&
           flag_users_equal(a->segments, a->n_segments, b->segments, b->n_segments);
}

bool flag_definition_equal(const struct vx_flag *a, const struct vx_flag *b)
{
    return strcmp(a->description, b->description) == 0 && strcmp(a->owner, b->owner) == 0;
}

json_t *flag_to_json(const struct vx_flag *f)
{
    json_t *o = json_object();
    json_t *users = flag_strings_json(f->users, f->n_users);
    if (o == NULL || users == NULL) {
        json_decref(o);
        json_decref(users);
        return NULL;
    }
    int rc = 0;
    /* The *_new setters take ownership even on failure, and refuse a NULL
     * value, so one check at the end catches any allocation failure. */
    rc |= json_object_set_new(o, "name", json_string(f->name));
    rc |= json_object_set_new(o, "description", json_string(f->description));
    rc |= json_object_set_new(o, "owner", json_string(f->owner));
    rc |= json_object_set_new(o, "enabled", json_boolean(f->enabled));
    rc |= json_object_set_new(o, "percentage", json_integer(f->percentage));
    rc |= json_object_set_new(o, "users", users);
    rc |= json_object_set_new(o, "segments", flag_strings_json(f->segments, f->n_segments));
    rc |= json_object_set_new(o, "created_at", flag_time_json(f->created_at));
    rc |= json_object_set_new(o, "updated_at", flag_time_json(f->updated_at));
    rc |= json_object_set_new(
        o, "rolled_out_at", f->rolled_out_at != 0 ? flag_time_json(f->rolled_out_at) : json_null());
    rc |= json_object_set_new(o, "revision", json_integer(f->revision));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int flag_get_time(const json_t *obj, const char *field, bool nullable, int64_t *out,
                         struct vx_error *err)
{
    const json_t *v = json_object_get(obj, field);
    *out = 0;
    if (nullable && (v == NULL || json_is_null(v)))
        return 0;
    if (!json_is_string(v) || time_parse_rfc3339(json_string_value(v), out) != 0)
        return vx_fail(err, VX_E_INVALID_VALUE, "%s must be an RFC 3339 time", field);
    return 0;
}

/* An optional text field of a stored flag: absent means "". */
static int flag_get_text_or_empty(const json_t *obj, const char *field, size_t max, char **out,
                                  struct vx_error *err)
{
    const json_t *v = json_object_get(obj, field);
    if (v != NULL)
        return text_from_json(v, field, max, out, err);
    *out = strdup("");
    return *out == NULL ? vx_fail(err, VX_E_UNAVAILABLE, "out of memory") : 0;
}

int flag_from_json(const json_t *obj, struct vx_flag *out, struct vx_error *err)
{
    const json_t *v;

    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return vx_fail(err, VX_E_INVALID_VALUE, "a flag must be a JSON object");

    /* name, times and revision are required; the rest default as for a
     * new flag. */
    if (flag_get_name(json_object_get(obj, "name"), "name", &out->name, err) != 0 ||
        flag_get_text_or_empty(obj, "description", FLAG_DESCRIPTION_MAX, &out->description, err) !=
            0 ||
        flag_get_text_or_empty(obj, "owner", FLAG_OWNER_MAX, &out->owner, err) != 0)
        goto fail;
    v = json_object_get(obj, "enabled");
    if (v != NULL && flag_get_bool(v, "enabled", &out->enabled, err) != 0)
        goto fail;
    v = json_object_get(obj, "percentage");
    if (v != NULL && flag_get_percentage(v, "percentage", &out->percentage, err) != 0)
        goto fail;
    v = json_object_get(obj, "users");
    if (v != NULL && flag_get_users(v, "users", &out->users, &out->n_users, err) != 0)
        goto fail;
    v = json_object_get(obj, "segments");
    if (v != NULL && flag_get_segments(v, "segments", &out->segments, &out->n_segments, err) != 0)
        goto fail;
    if (flag_get_time(obj, "created_at", false, &out->created_at, err) != 0 ||
        flag_get_time(obj, "updated_at", false, &out->updated_at, err) != 0 ||
        flag_get_time(obj, "rolled_out_at", true, &out->rolled_out_at, err) != 0)
        goto fail;
    v = json_object_get(obj, "revision");
    if (!json_is_integer(v) || json_integer_value(v) < 1) {
        vx_fail(err, VX_E_INVALID_VALUE, "revision must be a positive integer");
        goto fail;
    }
    out->revision = json_integer_value(v);
    return 0;

fail:
    flag_free(out);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Age and staleness (docs/operations.md §3)                                          */
/* ------------------------------------------------------------------ */

int64_t flag_age_days(const struct vx_flag *f, int64_t now)
{
    int64_t age = now - f->created_at;
    return age > 0 ? age / VX_USEC_PER_DAY : 0;
}

/* now - since > days, exactly (not rounded to days); a threshold too large
 * to express in microseconds is never exceeded. */
static bool flag_longer_than(int64_t now, int64_t since, int days)
{
    if ((int64_t)days > INT64_MAX / VX_USEC_PER_DAY)
        return false;
    return now - since > (int64_t)days * VX_USEC_PER_DAY;
}

json_t *flag_stale_reasons(const struct vx_flag *f, int64_t now, int days, int rolled_out_days)
{
    char reason[64];
    json_t *a = json_array();
    if (a == NULL)
        return NULL;
    if (days < 0)
        days = FLAG_STALE_DAYS_DEFAULT;
    if (rolled_out_days < 0)
        rolled_out_days = FLAG_ROLLED_OUT_DAYS_DEFAULT;

    int rc = 0;
    if (flag_longer_than(now, f->created_at, days)) {
        snprintf(reason, sizeof reason, "older_than_%d_days", days);
        rc |= json_array_append_new(a, json_string(reason));
    }
    if (flag_rolled_out(f) && f->rolled_out_at != 0 &&
        flag_longer_than(now, f->rolled_out_at, rolled_out_days)) {
        snprintf(reason, sizeof reason, "rolled_out_%d_days", rolled_out_days);
        rc |= json_array_append_new(a, json_string(reason));
    }
    if (rc != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

json_t *flag_to_admin_json(const struct vx_flag *f, int64_t now, int days, int rolled_out_days)
{
    json_t *o = flag_to_json(f);
    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "age_days", json_integer(flag_age_days(f, now))) != 0 ||
        json_object_set_new(o, "stale", flag_stale_reasons(f, now, days, rolled_out_days)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
