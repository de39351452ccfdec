/* store_flag_writes.c -- the four flag writes: create, update, delete,
 * revert (store.h).
 *
 * Why.  A flag write touches several tables and must do so all or nothing:
 * the flag's definition and its state in each environment
 * (store_flags.c), an event with the whole flag before and after it
 * (store_events.c), and the versions with their NOTIFY (store_version.c).
 * This file is the order in which a write does them.
 *
 * How.  Each write is a callback run by store_write_transaction(), which
 * first locks the sequence row, so writers queue in one order.  It locks
 * the flag's rows (SELECT ... FOR UPDATE), checks that the environments and
 * segments the body names exist (holding the segments against deletion),
 * computes the new state of each environment in C with the pure functions
 * of flag.h (so the rules live in one place and are unit-tested), writes
 * the definition and the states that changed, appends the event, then
 * bumps the version of every environment whose answers changed: those whose
 * state changed, or all of them when the definition did -- in one
 * transaction, so listeners never see a version without its change and a
 * failure leaves no trace.  The callback may run more than once (after a
 * deadlock or a serialization failure), so whatever it hands out is rebuilt
 * by every attempt: struct flag_write keeps the inputs and the outcome of
 * the last attempt.  A revert that finds the name taken by a concurrent
 * create asks for another attempt with store_retry(), which then restores
 * over the new row.
 *
 * A revert restores only what its event changed (docs/decisions.md
 * "Revert"): the definition when the event changed it, and the state of
 * each environment the event names; every other part stays as it is now. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* The state of one flag write, shared by create/update/delete/revert. */
struct flag_write {
    /* in */
    const char *name;
    const struct vx_flag_patch *patch;
    const char *env; /* the request's environment (top-level state fields) */
    int64_t if_match;
    int64_t event_id;
    const char *actor;
    const char *action; /* update: "update" (a person), "plan" or "alert" */
    int64_t now;
    /* out, rebuilt by every attempt of the transaction */
    struct flag_envs flag;
    int64_t version;
};

static void flag_write_reset(struct flag_write *w)
{
    flag_envs_free(&w->flag);
    w->version = 0;
}

static void flag_write_finish(struct flag_write *w, enum store_status st, struct flag_envs *out,
                              int64_t *version)
{
    if (st == STORE_OK && out != NULL)
        *out = w->flag;
    else
        flag_envs_free(&w->flag);
    memset(&w->flag, 0, sizeof w->flag);
    if (version != NULL)
        *version = st == STORE_OK ? w->version : 0;
}

/* The end of every write, once the rows are written (st says whether that
 * went well): record the event naming the environments whose state
 * changed, bump their versions (or every environment's, when bump_all),
 * and keep *after (taken) as the outcome. */
static enum store_status flag_write_record(PGconn *c, struct flag_write *w, enum store_status st,
                                           const char *action, const struct flag_envs *before,
                                           struct flag_envs *after, char *const *changed,
                                           size_t n_changed, bool bump_all)
{
    const char *name = w->name;

    if (st == STORE_OK)
        st = store_event_insert(c, name, w->now, w->actor, action, before, after, changed,
                                n_changed);
    if (st == STORE_OK)
        st = store_version_bump(c, STORE_CHANGE_FLAG, name, bump_all ? NULL : changed, n_changed,
                                &w->version);
    if (after == NULL)
        return st;
    if (st != STORE_OK) {
        flag_envs_free(after);
        return st;
    }
    w->flag = *after;
    memset(after, 0, sizeof *after);
    return STORE_OK;
}

/* Lock the rows of flag w->name into *cur and check the If-Match rule of
 * store.h: STORE_NOT_FOUND without a row, STORE_PRECONDITION when
 * w->if_match is not its revision (*cur then empty). */
static enum store_status flag_write_lock(PGconn *c, const struct flag_write *w,
                                         struct flag_envs *cur)
{
    bool found;
    enum store_status st = store_flag_lock(c, w->name, cur, &found);

    if (st == STORE_OK && !found)
        st = STORE_NOT_FOUND;
    if (st != STORE_OK) {
        flag_envs_free(cur);
        return st;
    }
    if (w->if_match > 0 && cur->flags[0].revision != w->if_match) {
        flag_envs_free(cur);
        return STORE_PRECONDITION;
    }
    return STORE_OK;
}

/* Do the environments and segments that the patch names exist?  The
 * segments are held against deletion until COMMIT.  STORE_INVALID naming
 * the first that does not. */
static enum store_status flag_write_check(PGconn *c, const struct vx_flag_patch *p)
{
    const char *missing = NULL;
    enum store_status st = STORE_OK;

    if (p->n_envs > 0) {
        char **names = calloc(p->n_envs, sizeof *names);
        if (names == NULL)
            return store_fail(STORE_ERROR, "out of memory");
        for (size_t i = 0; i < p->n_envs; i++)
            names[i] = p->envs[i].env;
        st = store_envs_exist(c, names, p->n_envs, &missing);
        free(names);
    }
    if (st == STORE_OK && missing != NULL)
        return store_fail(STORE_INVALID, "environments: unknown environment \"%s\"", missing);
    if (st == STORE_OK && (p->set & FLAG_SET_SEGMENTS) && p->n_segments > 0)
        st = store_segments_hold(c, p->segments, p->n_segments, &missing);
    for (size_t i = 0; st == STORE_OK && missing == NULL && i < p->n_envs; i++) {
        const struct vx_flag_patch *e = &p->envs[i].state;
        if ((e->set & FLAG_SET_SEGMENTS) && e->n_segments > 0)
            st = store_segments_hold(c, e->segments, e->n_segments, &missing);
    }
    if (st == STORE_OK && missing != NULL)
        return store_fail(STORE_INVALID, "segments: unknown segment \"%s\"", missing);
    return st;
}

/* ---- create --------------------------------------------------------------- */

static enum store_status flag_create_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct flag_envs fe = {0};
    struct vx_env *envs = NULL;
    size_t n_envs = 0;
    bool inserted = false;
    enum store_status st;

    flag_write_reset(w);
    /* The sequence row is locked (store_write_transaction): an environment
     * created meanwhile gets this flag's state. */
    st = flag_write_check(c, w->patch);
    if (st == STORE_OK)
        st = store_envs_select(c, &envs, &n_envs);
    if (st != STORE_OK)
        return st;
    fe.flags = calloc(n_envs ? n_envs : 1, sizeof *fe.flags);
    fe.envs = calloc(n_envs ? n_envs : 1, sizeof *fe.envs);
    for (size_t i = 0; fe.flags != NULL && fe.envs != NULL && i < n_envs; i++) {
        struct vx_flag_patch pe =
            flag_patch_for_env(w->patch, envs[i].name, strcmp(envs[i].name, w->env) == 0);
        if (flag_from_patch(&pe, w->now, &fe.flags[i]) != 0)
            break;
        fe.envs[i] = envs[i].name;
        envs[i].name = NULL;
        fe.n++;
    }
    for (size_t i = 0; i < n_envs; i++)
        env_free(&envs[i]);
    free(envs);
    if (fe.n != n_envs || n_envs == 0) {
        flag_envs_free(&fe);
        return store_fail(STORE_ERROR, "cannot build the new flag");
    }
    st = store_flag_insert(c, &fe.flags[0], &inserted);
    if (st == STORE_OK && !inserted)
        st = STORE_CONFLICT;
    for (size_t i = 0; st == STORE_OK && i < fe.n; i++)
        st = store_flag_state_write(c, fe.envs[i], &fe.flags[i]);
    char **all = fe.envs; /* every environment's state is new; fe moves into w */
    return flag_write_record(c, w, st, "create", NULL, &fe, all, fe.n, true);
}

enum store_status store_flag_create(PGconn *c, const struct vx_flag_patch *p, const char *env,
                                    const char *actor, int64_t now, struct flag_envs *out,
                                    int64_t *version)
{
    struct flag_write w = {.name = p->name, .patch = p, .env = env, .actor = actor, .now = now};
    enum store_status st = store_write_transaction(c, flag_create_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

/* ---- the rest of a write: compare, stamp, write ---------------------------- */

static int flag_envs_copy(const struct flag_envs *src, struct flag_envs *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->flags = calloc(src->n ? src->n : 1, sizeof *dst->flags);
    dst->envs = calloc(src->n ? src->n : 1, sizeof *dst->envs);
    if (dst->flags == NULL || dst->envs == NULL) {
        flag_envs_free(dst);
        return -1;
    }
    for (size_t i = 0; i < src->n; i++) {
        if (flag_copy(&src->flags[i], &dst->flags[i]) != 0 ||
            (dst->envs[i] = strdup(src->envs[i])) == NULL) {
            if (dst->flags[i].name != NULL)
                flag_free(&dst->flags[i]);
            dst->n = i;
            flag_envs_free(dst);
            return -1;
        }
        dst->n = i + 1;
    }
    return 0;
}

/* next is cur changed (same environments, same order): stamp the new
 * revision and time on every environment's copy, write the definition and
 * the states that changed, and record it.  cur is NULL when the flag does
 * not exist now (a revert of a delete): then everything is inserted.
 * Returns STORE_OK with nothing written when nothing changed. */
static enum store_status flag_write_changes(PGconn *c, struct flag_write *w, const char *action,
                                            struct flag_envs *cur, struct flag_envs *next,
                                            int64_t revision)
{
    bool def_changed = cur == NULL || !flag_definition_equal(&cur->flags[0], &next->flags[0]);
    enum store_status st = STORE_OK;
    /* The environments whose state changed (names borrowed from next). */
    char **changed = calloc(next->n ? next->n : 1, sizeof *changed);
    size_t n_changed = 0;

    if (changed == NULL) {
        flag_envs_free(next);
        return store_fail(STORE_ERROR, "out of memory");
    }
    for (size_t i = 0; i < next->n; i++)
        if (cur == NULL || !flag_state_equal(&cur->flags[i], &next->flags[i]))
            changed[n_changed++] = next->envs[i];
    if (!def_changed && n_changed == 0) {
        /* Nothing to write: answer the current flag. */
        free(changed);
        flag_envs_free(next);
        w->flag = *cur;
        memset(cur, 0, sizeof *cur);
        return STORE_OK;
    }
    for (size_t i = 0; i < next->n; i++) {
        next->flags[i].revision = revision;
        next->flags[i].updated_at = w->now;
    }
    if (cur == NULL) {
        bool inserted = true;
        st = store_flag_insert(c, &next->flags[0], &inserted);
        if (st == STORE_OK && !inserted) /* created by someone else since we looked */
            st = store_retry("flag %s was created concurrently", w->name);
    } else {
        st = store_flag_write(c, &next->flags[0]);
    }
    for (size_t i = 0; st == STORE_OK && i < next->n; i++)
        if (cur == NULL || !flag_state_equal(&cur->flags[i], &next->flags[i]))
            st = store_flag_state_write(c, next->envs[i], &next->flags[i]);
    /* A person who moves a state that a plan drives takes it over
     * (docs/api.md §8): the plan pauses, or halts when the flag went off. */
    bool person = strcmp(action, "update") == 0 || strcmp(action, "revert") == 0;
    for (size_t i = 0; st == STORE_OK && person && cur != NULL && i < next->n; i++) {
        const struct vx_flag *a = &cur->flags[i], *b = &next->flags[i];
        if (a->enabled != b->enabled || a->percentage != b->percentage)
            st = store_plans_person_wrote(c, w->name, next->envs[i], a->enabled && !b->enabled,
                                          w->actor, w->now);
    }
    /* The event names the environments whose state changed; the bump also
     * reaches every other one when the definition changed. */
    st = flag_write_record(c, w, st, action, cur, next, changed, n_changed, def_changed);
    free(changed);
    return st;
}

/* ---- update --------------------------------------------------------------- */

static enum store_status flag_update_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct flag_envs cur = {0}, next;
    enum store_status st;

    flag_write_reset(w);
    st = flag_write_lock(c, w, &cur);
    if (st == STORE_OK)
        st = flag_write_check(c, w->patch);
    if (st != STORE_OK) {
        flag_envs_free(&cur);
        return st;
    }
    if (flag_envs_copy(&cur, &next) != 0) {
        flag_envs_free(&cur);
        return store_fail(STORE_ERROR, "out of memory");
    }
    for (size_t i = 0; i < next.n; i++) {
        struct vx_flag_patch pe =
            flag_patch_for_env(w->patch, next.envs[i], strcmp(next.envs[i], w->env) == 0);
        if (flag_apply_patch(&next.flags[i], &pe, w->now) < 0) {
            flag_envs_free(&cur);
            flag_envs_free(&next);
            return store_fail(STORE_ERROR, "out of memory");
        }
    }
    st = flag_write_changes(c, w, w->action, &cur, &next, cur.flags[0].revision + 1);
    flag_envs_free(&cur);
    return st;
}

enum store_status store_flag_update(PGconn *c, const char *name, const struct vx_flag_patch *p,
                                    const char *env, int64_t if_match, const char *actor,
                                    int64_t now, struct flag_envs *out, int64_t *version)
{
    struct flag_write w = {.name = name,
                           .patch = p,
                           .env = env,
                           .if_match = if_match,
                           .actor = actor,
                           .action = "update",
                           .now = now};
    enum store_status st = store_write_transaction(c, flag_update_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

enum store_status store_flag_state_set(PGconn *c, const char *name, const char *env, bool enabled,
                                       int percentage, const char *action, const char *actor,
                                       int64_t now, int64_t *version)
{
    struct vx_flag_patch p = {.set = FLAG_SET_ENABLED, .enabled = enabled};
    struct flag_write w = {.name = name,
                           .patch = &p,
                           .env = env,
                           .if_match = -1,
                           .actor = actor,
                           .action = action,
                           .now = now};
    enum store_status st;

    if (percentage >= 0) {
        p.set |= FLAG_SET_PERCENTAGE;
        p.percentage = percentage;
    }
    st = flag_update_cb(c, &w);
    flag_write_finish(&w, st, NULL, version);
    return st;
}

/* ---- delete --------------------------------------------------------------- */

static enum store_status flag_delete_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct flag_envs cur = {0};
    enum store_status st;

    flag_write_reset(w);
    st = flag_write_lock(c, w, &cur);
    if (st != STORE_OK)
        return st;
    st = store_flag_remove(c, w->name);
    st = flag_write_record(c, w, st, "delete", &cur, NULL, cur.envs, cur.n, true);
    flag_envs_free(&cur);
    return st;
}

enum store_status store_flag_delete(PGconn *c, const char *name, int64_t if_match,
                                    const char *actor, int64_t now, int64_t *version)
{
    struct flag_write w = {.name = name, .if_match = if_match, .actor = actor, .now = now};
    enum store_status st = store_write_transaction(c, flag_delete_cb, &w);

    flag_write_finish(&w, st, NULL, version);
    return st;
}

/* ---- revert --------------------------------------------------------------- */

/* The flag of env as the event's before object had it: the definition at
 * its top level, the state of env from its "environments" (or, when it has
 * none for env, disabled).  0 or -1. */
static int flag_from_event(const json_t *before, const char *env, struct vx_flag *out)
{
    json_t *o = json_deep_copy(before);
    const json_t *st = json_object_get(json_object_get(before, "environments"), env);
    int rc = -1;

    if (o != NULL) {
        json_object_del(o, "environments");
        if (st != NULL) {
            rc = json_object_update(o, (json_t *)st);
        } else {
            rc = json_object_set_new(o, "enabled", json_false());
            rc |= json_object_set_new(o, "percentage", json_integer(0));
            rc |= json_object_set_new(o, "users", json_array());
            rc |= json_object_set_new(o, "segments", json_array());
            rc |= json_object_set_new(o, "rolled_out_at", json_null());
        }
    }
    rc = rc == 0 ? flag_from_json(o, out, NULL) : -1;
    json_decref(o);
    return rc;
}

/* Did the event name env among the environments whose state it changed? */
static bool event_names_env(const struct store_event *ev, const char *env)
{
    size_t i;
    json_t *v;

    json_array_foreach(ev->environments, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), env) == 0)
            return true;
    }
    return false;
}

/* Did the event change the definition (description, owner)? */
static bool event_changed_definition(const struct store_event *ev)
{
    static const char *const fields[] = {"description", "owner"};

    if (ev->before == NULL || ev->after == NULL)
        return true;
    for (size_t i = 0; i < 2; i++)
        if (!json_equal(json_object_get(ev->before, fields[i]),
                        json_object_get(ev->after, fields[i])))
            return true;
    return false;
}

/* next: the flag as now (cur, or NULL when deleted) with the parts the
 * event changed put back as they were before it.  0 or -1. */
static int flag_revert_build(const struct store_event *ev, const struct flag_envs *cur,
                             const struct vx_env *envs, size_t n_envs, int64_t now,
                             struct flag_envs *next)
{
    bool def = cur == NULL || event_changed_definition(ev);

    memset(next, 0, sizeof *next);
    next->flags = calloc(n_envs ? n_envs : 1, sizeof *next->flags);
    next->envs = calloc(n_envs ? n_envs : 1, sizeof *next->envs);
    if (next->flags == NULL || next->envs == NULL)
        goto fail;
    for (size_t i = 0; i < n_envs; i++) {
        const char *env = envs[i].name;
        const struct vx_flag *now_f = NULL;
        struct vx_flag then;
        for (size_t k = 0; cur != NULL && k < cur->n; k++)
            if (strcmp(cur->envs[k], env) == 0)
                now_f = &cur->flags[k];
        if (flag_from_event(ev->before, env, &then) != 0)
            goto fail;
        struct vx_flag *f = &next->flags[i];
        if (now_f == NULL) {
            *f = then; /* the flag is back: all of it as it was, rolled out from now */
            flag_update_rolled_out(NULL, f, now);
        } else {
            if (flag_copy(now_f, f) != 0) {
                flag_free(&then);
                goto fail;
            }
            int bad = 0;
            if (def) {
                char *d = strdup(then.description), *o = strdup(then.owner);
                bad = d == NULL || o == NULL;
                free(bad ? d : f->description);
                free(bad ? o : f->owner);
                if (!bad) {
                    f->description = d;
                    f->owner = o;
                }
            }
            if (!bad && event_names_env(ev, env))
                bad = flag_state_assign(f, &then);
            flag_free(&then);
            if (bad) {
                flag_free(f);
                goto fail;
            }
            flag_update_rolled_out(now_f, f, now);
        }
        next->n = i + 1;
        if ((next->envs[i] = strdup(env)) == NULL)
            goto fail;
    }
    return 0;

fail:
    flag_envs_free(next);
    return -1;
}

static enum store_status flag_revert_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct flag_envs cur = {0}, next;
    struct store_event ev;
    struct vx_env *envs = NULL;
    size_t n_envs = 0;
    int64_t max_rev = 0;
    bool found, exists = false;
    enum store_status st;

    flag_write_reset(w);
    st = store_event_get(c, w->event_id, &ev, &found);
    if (st != STORE_OK)
        return st;
    if (!found || strcmp(ev.name, w->name) != 0)
        st = STORE_NOT_FOUND;
    else if (ev.before == NULL)
        st = STORE_CONFLICT;
    if (st == STORE_OK)
        st = store_flag_lock(c, w->name, &cur, &exists);
    if (st == STORE_OK)
        st = store_envs_select(c, &envs, &n_envs);
    /* The revision continues from the highest the name ever had, so that
     * no revision number is ever reused for different content. */
    if (st == STORE_OK)
        st = store_max_revision(c, w->name, &max_rev);
    if (st == STORE_OK && exists && cur.flags[0].revision > max_rev)
        max_rev = cur.flags[0].revision;
    if (st == STORE_OK &&
        flag_revert_build(&ev, exists ? &cur : NULL, envs, n_envs, w->now, &next) != 0)
        st = store_fail(STORE_ERROR, "event %lld cannot be restored", (long long)w->event_id);
    for (size_t i = 0; i < n_envs; i++)
        env_free(&envs[i]);
    free(envs);
    store_event_free(&ev);
    if (st == STORE_OK)
        st = flag_write_changes(c, w, "revert", exists ? &cur : NULL, &next, max_rev + 1);
    flag_envs_free(&cur);
    return st;
}

enum store_status store_flag_revert(PGconn *c, const char *name, int64_t event_id,
                                    const char *actor, int64_t now, struct flag_envs *out,
                                    int64_t *version)
{
    struct flag_write w = {.name = name, .event_id = event_id, .actor = actor, .now = now};
    enum store_status st = store_write_transaction(c, flag_revert_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}
