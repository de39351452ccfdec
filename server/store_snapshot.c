/* store_snapshot.c -- everything a snapshot is built from, read in one
 * transaction: all of it, or what changed since the previous one.
 *
 * Why.  The read path answers from an in-memory snapshot (snapshot.h),
 * never from the database; the listener renews it whenever the version
 * moves or the tokens change.  The version, the flags and the live tokens
 * must belong together -- a snapshot claiming version 42 must hold exactly
 * the flags of version 42 -- so they are read in one REPEATABLE READ
 * transaction, which sees one moment of the database.
 *
 * An update reads only the flags the change log (flag_changes, one row per
 * version, store_version.c) names after the previous snapshot's version,
 * and the names among them that no flag has any more (deleted).  Writers
 * commit in version order (the vexil_state row lock), so a transaction
 * that sees version V sees every change up to V.  The update is refused --
 * load in full instead -- unless the log holds exactly one row for each
 * version in between: that catches a version that went back (a restore),
 * one moved by hand, and a previous snapshot older than the log keeps.
 *
 * How.  Each part comes from the file that owns its table (store_version.c,
 * store_flags.c, store_tokens.c); snapshot_new() or snapshot_apply() then
 * takes the arrays. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct snapshot_load {
    int64_t since; /* an update: the previous snapshot's version; -1 in full */
    bool gap;      /* an update that the change log cannot explain */
    struct snapshot_parts parts;
};

/* Share out rows (flag i in environment envs[i]) to the environments of p,
 * sorted by name within each as they come.  Takes the arrays. */
static enum store_status split_by_env(struct snapshot_parts *p, struct vx_flag *flags, char **envs,
                                      size_t n)
{
    enum store_status st = STORE_OK;

    p->flags = calloc(p->n_envs ? p->n_envs : 1, sizeof(struct vx_flag *));
    p->n_flags = calloc(p->n_envs ? p->n_envs : 1, sizeof *p->n_flags);
    for (size_t e = 0; p->flags != NULL && p->n_flags != NULL && e < p->n_envs; e++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            count += strcmp(envs[i], p->envs[e].name) == 0;
        if ((p->flags[e] = calloc(count ? count : 1, sizeof **p->flags)) == NULL)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        size_t e = 0;
        while (e < p->n_envs && strcmp(envs[i], p->envs[e].name) != 0)
            e++;
        if (e < p->n_envs && p->flags != NULL && p->n_flags != NULL && p->flags[e] != NULL)
            p->flags[e][p->n_flags[e]++] = flags[i];
        else {
            flag_free(&flags[i]);
            st = store_fail(STORE_ERROR, "out of memory sharing out the flags");
        }
        free(envs[i]);
    }
    free(flags);
    free(envs);
    return st;
}

/* Everything (in full) or what changed after l->since, with the version
 * and the environments and tokens as they are now. */
static enum store_status load_parts(PGconn *c, struct snapshot_load *l, bool with_flags)
{
    struct snapshot_parts *p = &l->parts;
    struct vx_flag *flags = NULL;
    char **envs = NULL;
    size_t n = 0;
    enum store_status st;

    snapshot_parts_free(p);
    l->gap = false;
    st = store_version_select(c, &p->version);
    if (st == STORE_OK && l->since >= 0) {
        int64_t logged = 0;
        bool environments = false;
        if (p->version >= l->since)
            st = store_changes_count(c, l->since, &logged, &environments);
        if (st != STORE_OK)
            return st;
        if (p->version < l->since || logged != p->version - l->since || environments) {
            l->gap = true;
            return STORE_OK;
        }
    }
    if (st == STORE_OK)
        st = store_envs_select(c, &p->envs, &p->n_envs);
    if (st == STORE_OK && with_flags && l->since < 0)
        st = store_flags_select(c, &flags, &envs, &n);
    else if (st == STORE_OK && with_flags)
        st = store_flags_changed(c, l->since, &flags, &envs, &n);
    if (st == STORE_OK && with_flags)
        st = split_by_env(p, flags, envs, n);
    if (st == STORE_OK && with_flags && l->since >= 0)
        st = store_changes_deleted(c, l->since, &p->deleted, &p->n_deleted);
    if (st == STORE_OK && with_flags)
        st = store_segments_select(c, l->since, &p->segments, &p->n_segments, &p->deleted_segments,
                                   &p->n_deleted_segments);
    if (st == STORE_OK)
        st = store_tokens_select(c, &p->tokens, &p->n_tokens);
    return st;
}

static enum store_status snapshot_load_cb(PGconn *c, void *cls)
{
    return load_parts(c, cls, true);
}

static enum store_status check_cb(PGconn *c, void *cls)
{
    return load_parts(c, cls, false);
}

enum store_status store_check(PGconn *c, int64_t *version, struct vx_token **tokens, size_t *n)
{
    struct snapshot_load l = {.since = -1};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, check_cb, &l);

    *version = l.parts.version;
    *tokens = NULL;
    *n = 0;
    if (st == STORE_OK) {
        *tokens = l.parts.tokens;
        *n = l.parts.n_tokens;
        l.parts.tokens = NULL;
        l.parts.n_tokens = 0;
    }
    snapshot_parts_free(&l.parts);
    return st;
}

/* Run the load (prev NULL: in full) and build the snapshot. */
static enum store_status snapshot_read(PGconn *c, const struct vx_snapshot *prev,
                                       struct vx_snapshot **out)
{
    struct snapshot_load l = {.since = prev != NULL ? prev->version : -1};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, snapshot_load_cb, &l);

    *out = NULL;
    if (st != STORE_OK || l.gap) {
        snapshot_parts_free(&l.parts);
        return st;
    }
    /* snapshot_build takes the parts, also when it fails. */
    *out = snapshot_build(prev, &l.parts);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory building the snapshot");
    return STORE_OK;
}

enum store_status store_snapshot_update(PGconn *c, const struct vx_snapshot *prev,
                                        struct vx_snapshot **out)
{
    return snapshot_read(c, prev, out);
}

enum store_status store_snapshot_load(PGconn *c, struct vx_snapshot **out)
{
    return snapshot_read(c, NULL, out);
}

/* ---- store_flags_all --------------------------------------------------------- */

static enum store_status flags_all_cb(PGconn *c, void *cls)
{
    struct snapshot_load *l = cls;
    struct vx_flag *flags = NULL;
    char **envs = NULL;
    size_t n = 0;
    enum store_status st;

    snapshot_parts_free(&l->parts);
    st = store_envs_select(c, &l->parts.envs, &l->parts.n_envs);
    if (st == STORE_OK)
        st = store_flags_select(c, &flags, &envs, &n);
    if (st == STORE_OK)
        st = split_by_env(&l->parts, flags, envs, n);
    return st;
}

enum store_status store_flags_all(PGconn *c, struct vx_flag **flags, size_t *n)
{
    struct snapshot_load l = {.since = -1};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, flags_all_cb, &l);

    *flags = NULL;
    *n = 0;
    for (size_t e = 0; st == STORE_OK && e < l.parts.n_envs; e++) {
        if (!l.parts.envs[e].is_default)
            continue;
        *flags = l.parts.flags[e];
        *n = l.parts.n_flags[e];
        l.parts.flags[e] = NULL;
        l.parts.n_flags[e] = 0;
    }
    snapshot_parts_free(&l.parts);
    return st;
}
