/* store_flag_writes.c -- the four flag writes: create, update, delete,
 * revert (store.h).
 *
 * Why.  A flag write touches three tables and must do so all or nothing:
 * the flag's row (store_flags.c), an event with the whole flag before and
 * after (store_events.c), and the global version with its NOTIFY
 * (store_version.c).  This file is the order in which a write does them.
 *
 * How.  Each write is a callback run by store_run_transaction().  It locks
 * the flag's row (SELECT ... FOR UPDATE), computes the new state in C with
 * the pure functions of flag.h (so the rules live in one place and are
 * unit-tested), writes the row, appends the event, then bumps the version
 * -- in one transaction, so listeners never see a version without its
 * change and a failure leaves no trace.  The callback may run more than
 * once (after a deadlock or a serialization failure), so whatever it hands
 * out is rebuilt by every attempt: struct flag_write keeps the inputs and
 * the outcome of the last attempt.  A revert that finds the name taken by a
 * concurrent create asks for another attempt with store_retry(), which then
 * restores over the new row. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* The state of one flag write, shared by create/update/delete/revert. */
struct flag_write {
    /* in */
    const char *name;
    const struct vx_flag_patch *patch;
    int64_t if_match;
    int64_t event_id;
    const char *actor;
    int64_t now;
    /* out, rebuilt by every attempt of the transaction */
    struct vx_flag flag;
    bool have_flag;
    int64_t version;
};

/* Forget the outcome of a previous attempt. */
static void flag_write_reset(struct flag_write *w)
{
    if (w->have_flag)
        flag_free(&w->flag);
    w->have_flag = false;
    w->version = 0;
}

/* Hand the written flag to the caller's out (or drop it). */
static void flag_write_finish(struct flag_write *w, enum store_status st, struct vx_flag *out,
                              int64_t *version)
{
    if (st == STORE_OK && out != NULL && w->have_flag)
        *out = w->flag;
    else if (w->have_flag)
        flag_free(&w->flag);
    w->have_flag = false;
    if (version != NULL)
        *version = st == STORE_OK ? w->version : 0;
}

/* The end of every write, once the flag's row is written (st says whether
 * that went well): record the event from before to after (NULL where the
 * flag does not exist), bump the version, and keep *after as the outcome of
 * this attempt -- or free it when any step failed. */
static enum store_status flag_write_record(PGconn *c, struct flag_write *w, enum store_status st,
                                           const char *action, const struct vx_flag *before,
                                           struct vx_flag *after)
{
    const char *name = after != NULL ? after->name : before->name;

    if (st == STORE_OK)
        st = store_event_insert(c, name, w->now, w->actor, action, before, after);
    if (st == STORE_OK)
        st = store_version_bump(c, name, &w->version);
    if (after == NULL)
        return st;
    if (st != STORE_OK) {
        flag_free(after);
        return st;
    }
    w->flag = *after;
    w->have_flag = true;
    return STORE_OK;
}

/* Lock the row of the flag w->name into *cur (caller flag_free()s) and
 * check the If-Match rule of store.h: STORE_NOT_FOUND without a row,
 * STORE_PRECONDITION when w->if_match is not its revision (*cur then
 * empty). */
static enum store_status flag_write_lock(PGconn *c, const struct flag_write *w, struct vx_flag *cur)
{
    bool found;
    enum store_status st = store_flag_lock(c, w->name, cur, &found);

    if (st != STORE_OK)
        return st;
    if (!found)
        return STORE_NOT_FOUND;
    if (w->if_match > 0 && cur->revision != w->if_match) {
        flag_free(cur);
        return STORE_PRECONDITION;
    }
    return STORE_OK;
}

static enum store_status flag_create_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag f;
    bool inserted = false;
    enum store_status st;

    flag_write_reset(w);
    if (flag_from_patch(w->patch, w->now, &f) != 0)
        return store_fail(STORE_ERROR, "cannot build the new flag");
    st = store_flag_insert(c, &f, &inserted);
    if (st == STORE_OK && !inserted)
        st = STORE_CONFLICT;
    return flag_write_record(c, w, st, "create", NULL, &f);
}

enum store_status store_flag_create(PGconn *c, const struct vx_flag_patch *p, const char *actor,
                                    int64_t now, struct vx_flag *out, int64_t *version)
{
    struct flag_write w = {.patch = p, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_create_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

static enum store_status flag_update_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur, next;
    int changed;
    enum store_status st;

    flag_write_reset(w);
    st = flag_write_lock(c, w, &cur);
    if (st != STORE_OK)
        return st;
    if (flag_copy(&cur, &next) != 0) {
        flag_free(&cur);
        return store_fail(STORE_ERROR, "out of memory");
    }
    changed = flag_apply_patch(&next, w->patch, w->now);
    if (changed <= 0) {
        /* Nothing to write (or out of memory): answer the current flag. */
        flag_free(&next);
        if (changed < 0) {
            flag_free(&cur);
            return store_fail(STORE_ERROR, "out of memory");
        }
        w->flag = cur;
        w->have_flag = true;
        return STORE_OK;
    }
    st = store_flag_write(c, &next);
    st = flag_write_record(c, w, st, "update", &cur, &next);
    flag_free(&cur);
    return st;
}

enum store_status store_flag_update(PGconn *c, const char *name, const struct vx_flag_patch *p,
                                    int64_t if_match, const char *actor, int64_t now,
                                    struct vx_flag *out, int64_t *version)
{
    struct flag_write w = {
        .name = name, .patch = p, .if_match = if_match, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_update_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}

static enum store_status flag_delete_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur;
    enum store_status st;

    flag_write_reset(w);
    st = flag_write_lock(c, w, &cur);
    if (st != STORE_OK)
        return st;
    st = store_flag_remove(c, w->name);
    st = flag_write_record(c, w, st, "delete", &cur, NULL);
    flag_free(&cur);
    return st;
}

enum store_status store_flag_delete(PGconn *c, const char *name, int64_t if_match,
                                    const char *actor, int64_t now, int64_t *version)
{
    struct flag_write w = {.name = name, .if_match = if_match, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_delete_cb, &w);

    flag_write_finish(&w, st, NULL, version);
    return st;
}

/* The flag restored from event w->event_id, against the current row cur
 * (NULL if the flag does not exist now): see store.h and docs/decisions.md. */
static enum store_status flag_revert_state(PGconn *c, struct flag_write *w,
                                           const struct vx_flag *cur, struct vx_flag *restored)
{
    char *ev_name = NULL;
    json_t *before = NULL;
    bool found;
    int64_t max_rev = 0;
    struct vx_error err;
    enum store_status st = store_event_get(c, w->event_id, &ev_name, &before, &found);

    memset(restored, 0, sizeof *restored);
    if (st == STORE_OK && (!found || strcmp(ev_name, w->name) != 0))
        st = STORE_NOT_FOUND;
    else if (st == STORE_OK && before == NULL)
        st = STORE_CONFLICT;
    else if (st == STORE_OK && flag_from_json(before, restored, &err) != 0)
        st = store_fail(STORE_ERROR, "event %lld: %s", (long long)w->event_id, err.message);
    else if (st == STORE_OK && strcmp(restored->name, w->name) != 0) {
        flag_free(restored);
        st = store_fail(STORE_ERROR, "event %lld holds another flag", (long long)w->event_id);
    }
    free(ev_name);
    json_decref(before);
    if (st != STORE_OK)
        return st;

    /* created_at comes from the restored state; the revision continues
     * from the highest the name ever had, so that no revision number is
     * ever reused for different content. */
    st = store_max_revision(c, w->name, &max_rev);
    if (st != STORE_OK) {
        flag_free(restored);
        return st;
    }
    if (cur != NULL && cur->revision > max_rev)
        max_rev = cur->revision;
    restored->revision = max_rev + 1;
    restored->updated_at = w->now;
    flag_update_rolled_out(cur, restored, w->now);
    return STORE_OK;
}

static enum store_status flag_revert_cb(PGconn *c, void *cls)
{
    struct flag_write *w = cls;
    struct vx_flag cur, restored;
    bool found, inserted = true;
    enum store_status st;

    flag_write_reset(w);
    st = store_flag_lock(c, w->name, &cur, &found);
    if (st != STORE_OK)
        return st;
    st = flag_revert_state(c, w, found ? &cur : NULL, &restored);
    if (st != STORE_OK) {
        flag_free(&cur);
        return st;
    }
    if (found)
        st = store_flag_write(c, &restored);
    else
        st = store_flag_insert(c, &restored, &inserted);
    if (st == STORE_OK && !inserted) {
        /* Created by someone else since we looked: start over, and the
         * next attempt restores over it. */
        st = store_retry("flag %s was created concurrently", w->name);
    }
    st = flag_write_record(c, w, st, "revert", found ? &cur : NULL, &restored);
    flag_free(&cur);
    return st;
}

enum store_status store_flag_revert(PGconn *c, const char *name, int64_t event_id,
                                    const char *actor, int64_t now, struct vx_flag *out,
                                    int64_t *version)
{
    struct flag_write w = {.name = name, .event_id = event_id, .actor = actor, .now = now};
    enum store_status st = store_run_transaction(c, flag_revert_cb, &w);

    flag_write_finish(&w, st, out, version);
    return st;
}
