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
    int64_t version;
    bool gap; /* an update that the change log cannot explain */
    struct vx_flag *flags;
    size_t n_flags;
    char **deleted;
    size_t n_deleted;
    struct vx_token *tokens;
    size_t n_tokens;
};

static void snapshot_load_free(struct snapshot_load *l)
{
    int64_t since = l->since;

    for (size_t i = 0; i < l->n_flags; i++)
        flag_free(&l->flags[i]);
    for (size_t i = 0; i < l->n_deleted; i++)
        free(l->deleted[i]);
    for (size_t i = 0; i < l->n_tokens; i++)
        free(l->tokens[i].name);
    free(l->flags);
    free(l->deleted);
    free(l->tokens);
    memset(l, 0, sizeof *l);
    l->since = since;
}

/* The version, every flag when with_flags, and the live tokens. */
static enum store_status load_parts(PGconn *c, struct snapshot_load *l, bool with_flags)
{
    enum store_status st;

    snapshot_load_free(l);
    st = store_version_select(c, &l->version);
    if (st == STORE_OK && with_flags)
        st = store_flags_select(c, &l->flags, &l->n_flags);
    if (st == STORE_OK)
        st = store_tokens_select(c, &l->tokens, &l->n_tokens);
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

    if (st != STORE_OK)
        snapshot_load_free(&l);
    *version = l.version;
    *tokens = l.tokens;
    *n = l.n_tokens;
    return st;
}

static enum store_status snapshot_update_cb(PGconn *c, void *cls)
{
    struct snapshot_load *l = cls;
    int64_t logged = 0;
    enum store_status st;

    snapshot_load_free(l);
    st = store_version_select(c, &l->version);
    if (st == STORE_OK && l->version >= l->since)
        st = store_changes_count(c, l->since, &logged);
    if (st != STORE_OK)
        return st;
    if (l->version < l->since || logged != l->version - l->since) {
        l->gap = true;
        return STORE_OK;
    }
    st = store_flags_changed(c, l->since, &l->flags, &l->n_flags);
    if (st == STORE_OK)
        st = store_changes_deleted(c, l->since, &l->deleted, &l->n_deleted);
    if (st == STORE_OK)
        st = store_tokens_select(c, &l->tokens, &l->n_tokens);
    return st;
}

enum store_status store_snapshot_update(PGconn *c, const struct vx_snapshot *prev,
                                        struct vx_snapshot **out)
{
    struct snapshot_load l = {.since = prev->version};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, snapshot_update_cb, &l);

    *out = NULL;
    if (st != STORE_OK || l.gap) {
        snapshot_load_free(&l);
        return st;
    }
    /* snapshot_apply takes the arrays, also when it fails. */
    *out = snapshot_apply(prev, l.version, l.flags, l.n_flags, l.deleted, l.n_deleted, l.tokens,
                          l.n_tokens);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory building the snapshot");
    return STORE_OK;
}

enum store_status store_snapshot_load(PGconn *c, struct vx_snapshot **out)
{
    struct snapshot_load l = {.since = -1};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, snapshot_load_cb, &l);

    *out = NULL;
    if (st != STORE_OK) {
        snapshot_load_free(&l);
        return st;
    }
    /* snapshot_new takes the arrays, also when it fails. */
    *out = snapshot_new(l.version, l.flags, l.n_flags, l.tokens, l.n_tokens);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory building the snapshot");
    return STORE_OK;
}
