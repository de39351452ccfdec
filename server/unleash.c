/* unleash.c -- vexil's flags as Unleash client features (unleash.h).
 *
 * Built from the snapshot with jansson on each answer that is not a 304:
 * SDKs poll with If-None-Match every 15 s or so, so a full answer is rare,
 * and a segment's users are copied into each flag that names it only
 * then. */
#include "unleash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/* How a user id travels.  The SDKs split userWithId's list on commas and
 * trim blanks around each id, and trim every value of an IN constraint too;
 * only a REGEX constraint's value reaches them untouched. */
enum user_way { USER_PLAIN, USER_IN, USER_REGEX };

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Might an SDK's trim() remove this byte at an end?  ASCII blanks, and
 * any non-ASCII character (JavaScript trims Unicode spaces too). */
static bool trimmable(char c)
{
    return blank(c) || (unsigned char)c >= 0x80;
}

static enum user_way user_way(const char *u)
{
    size_t n = strlen(u);

    if (n > 0 && (trimmable(u[0]) || trimmable(u[n - 1])))
        return USER_REGEX;
    return strchr(u, ',') != NULL ? USER_IN : USER_PLAIN;
}

/* The users of one strategy kind, gathered. */
struct user_lists {
    struct buf plain; /* "a,b,c" */
    json_t *in;       /* ["x,y", ...] */
    struct buf regex; /* "^(?: pad|tail )$" without the ^(?: and )$ yet */
};

/* Add u to the list its way says.  0 or -1. */
static int add_user(const char *u, struct user_lists *l)
{
    switch (user_way(u)) {
    case USER_PLAIN:
        return (l->plain.len > 0 ? buf_add(&l->plain, ",", 1) : 0) | buf_adds(&l->plain, u);
    case USER_IN:
        return json_array_append_new(l->in, json_string(u));
    case USER_REGEX:
        break;
    }
    int bad = l->regex.len > 0 ? buf_add(&l->regex, "|", 1) : 0;
    for (const char *p = u; *p != '\0'; p++) {
        if (strchr("\\^$.|?*+()[]{}/", *p) != NULL)
            bad |= buf_add(&l->regex, "\\", 1);
        bad |= buf_add(&l->regex, p, 1);
    }
    return bad;
}

/* A default strategy constrained on userId. */
static json_t *constrained(const char *op, const char *key, json_t *value)
{
    return json_pack("{s:s, s:{}, s:[{s:s, s:s, s:o, s:b, s:b}]}", "name", "default", "parameters",
                     "constraints", "contextName", "userId", "operator", op, key, value,
                     "caseInsensitive", 0, "inverted", 0);
}

/* The users of f and of its segments in s, once each, as the strategies
 * that turn them on (appended to out).  0 or -1. */
static int add_user_strategies(const struct vx_snapshot *s, const struct vx_flag *f, json_t *out)
{
    struct user_lists l = {.in = json_array()};
    json_t *seen = json_object(); /* user -> true, when a segment adds any */
    int bad = l.in == NULL || seen == NULL;
    bool dedup = f->n_segments > 0;

    for (size_t i = 0; !bad && i < f->n_users; i++) {
        bad = add_user(f->users[i], &l) != 0;
        if (dedup && !bad)
            bad = json_object_set_new(seen, f->users[i], json_true()) != 0;
    }
    for (size_t k = 0; !bad && k < f->n_segments; k++) {
        const struct vx_segment *g = snapshot_segment(s, f->segments[k], strlen(f->segments[k]));
        for (size_t i = 0; g != NULL && !bad && i < g->n_users; i++) {
            if (json_object_get(seen, g->users[i]) != NULL)
                continue;
            bad = add_user(g->users[i], &l) != 0 ||
                  json_object_set_new(seen, g->users[i], json_true()) != 0;
        }
    }
    if (!bad && l.plain.len > 0) {
        json_t *st = json_pack("{s:s, s:{s:s%}, s:[]}", "name", "userWithId", "parameters",
                               "userIds", l.plain.p, l.plain.len, "constraints");
        bad = json_array_append_new(out, st) != 0;
    }
    if (!bad && json_array_size(l.in) > 0)
        bad = json_array_append_new(out, constrained("IN", "values", json_incref(l.in))) != 0;
    if (!bad && l.regex.len > 0) {
        struct buf re = {0};
        bad = buf_adds(&re, "^(?:") | buf_add(&re, l.regex.p, l.regex.len) | buf_adds(&re, ")$");
        if (!bad)
            bad = json_array_append_new(
                      out, constrained("REGEX", "value", json_stringn(re.p, re.len))) != 0;
        buf_free(&re);
    }
    buf_free(&l.plain);
    buf_free(&l.regex);
    json_decref(l.in);
    json_decref(seen);
    return bad ? -1 : 0;
}

json_t *unleash_strategies(const struct vx_snapshot *s, const struct vx_flag *f)
{
    json_t *out = json_array();

    if (out == NULL || !f->enabled)
        return out;
    if (f->percentage >= 100) {
        if (json_array_append_new(out, json_pack("{s:s, s:{}, s:[]}", "name", "default",
                                                 "parameters", "constraints")) != 0)
            goto fail;
        return out;
    }
    if (add_user_strategies(s, f, out) != 0)
        goto fail;
    if (f->percentage > 0) {
        char rollout[16];
        snprintf(rollout, sizeof rollout, "%d", f->percentage);
        json_t *st = json_pack("{s:s, s:{s:s, s:s, s:s}, s:[]}", "name", "flexibleRollout",
                               "parameters", "rollout", rollout, "stickiness", "userId", "groupId",
                               f->name, "constraints");
        if (json_array_append_new(out, st) != 0)
            goto fail;
    }
    return out;

fail:
    json_decref(out);
    return NULL;
}

static json_t *feature(const struct vx_snapshot *s, const struct vx_flag *f)
{
    json_t *strategies = unleash_strategies(s, f);

    if (strategies == NULL)
        return NULL;
    /* An enabled feature without strategies is on for everyone in the
     * SDKs: a flag on for nobody is sent disabled. */
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:o, s:[], s:b}", "name", f->name,
                     "description", f->description, "type", "release", "project", "default",
                     "enabled", json_array_size(strategies) > 0, "stale", 0, "strategies",
                     strategies, "variants", "impressionData", 0);
}

json_t *unleash_features(const struct vx_snapshot *s, const struct vx_env *e)
{
    const struct vx_view *v = e->view;
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < v->n_flags; i++)
        if (json_array_append_new(arr, feature(s, &v->flags[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (arr == NULL)
        return NULL;
    return json_pack("{s:i, s:o, s:[], s:{s:s}, s:{s:I}}", "version", 2, "features", arr,
                     "segments", "query", "environment", e->name, "meta", "revision",
                     (json_int_t)v->version);
}
