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

/* Can this user id travel in userWithId's comma-separated list?  The SDKs
 * split on commas and trim blanks around each id. */
static bool plain_user(const char *u)
{
    size_t n = strlen(u);

    return n > 0 && strchr(u, ',') == NULL && strchr(" \t\r\n", u[0]) == NULL &&
           strchr(" \t\r\n", u[n - 1]) == NULL;
}

/* Add u to the list of plain ids (buf) or to the constraint's values. */
static int add_user(const char *u, struct buf *plain, json_t *other)
{
    if (!plain_user(u))
        return json_array_append_new(other, json_string(u));
    return (plain->len > 0 ? buf_add(plain, ",", 1) : 0) | buf_adds(plain, u);
}

/* The users of f and of its segments in s, once each, as the strategies
 * that turn them on (appended to out).  0 or -1. */
static int add_user_strategies(const struct vx_snapshot *s, const struct vx_flag *f, json_t *out)
{
    struct buf plain = {0};
    json_t *other = json_array();
    json_t *seen = json_object(); /* user -> true, when a segment adds any */
    int bad = other == NULL || seen == NULL;
    bool dedup = f->n_segments > 0;

    for (size_t i = 0; !bad && i < f->n_users; i++) {
        bad = add_user(f->users[i], &plain, other) != 0;
        if (dedup && !bad)
            bad = json_object_set_new(seen, f->users[i], json_true()) != 0;
    }
    for (size_t k = 0; !bad && k < f->n_segments; k++) {
        const struct vx_segment *g = snapshot_segment(s, f->segments[k], strlen(f->segments[k]));
        for (size_t i = 0; g != NULL && !bad && i < g->n_users; i++) {
            if (json_object_get(seen, g->users[i]) != NULL)
                continue;
            bad = add_user(g->users[i], &plain, other) != 0 ||
                  json_object_set_new(seen, g->users[i], json_true()) != 0;
        }
    }
    if (!bad && plain.len > 0) {
        json_t *st = json_pack("{s:s, s:{s:s%}, s:[]}", "name", "userWithId", "parameters",
                               "userIds", plain.p, plain.len, "constraints");
        bad = json_array_append_new(out, st) != 0;
    }
    if (!bad && json_array_size(other) > 0) {
        json_t *st = json_pack("{s:s, s:{}, s:[{s:s, s:s, s:O, s:b, s:b}]}", "name", "default",
                               "parameters", "constraints", "contextName", "userId", "operator",
                               "IN", "values", other, "caseInsensitive", 0, "inverted", 0);
        bad = json_array_append_new(out, st) != 0;
    }
    buf_free(&plain);
    json_decref(other);
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
