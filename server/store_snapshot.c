/* store_snapshot.c -- everything a snapshot is built from, read in one
 * transaction.
 *
 * Why.  The read path answers from an in-memory snapshot (snapshot.h),
 * never from the database; the reloader rebuilds it whenever the version
 * moves or the tokens change.  The version, the flags and the live tokens
 * must belong together -- a snapshot claiming version 42 must hold exactly
 * the flags of version 42 -- so they are read in one REPEATABLE READ
 * transaction, which sees one moment of the database.
 *
 * How.  Each part comes from the file that owns its table (store_version.c,
 * store_flags.c, store_tokens.c); snapshot_new() then takes the arrays. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct snapshot_load {
    int64_t version;
    struct vx_flag *flags;
    size_t n_flags;
    struct vx_token *tokens;
    size_t n_tokens;
};

static void snapshot_load_free(struct snapshot_load *l)
{
    for (size_t i = 0; i < l->n_flags; i++)
        flag_free(&l->flags[i]);
    for (size_t i = 0; i < l->n_tokens; i++)
        free(l->tokens[i].name);
    free(l->flags);
    free(l->tokens);
    memset(l, 0, sizeof *l);
}

static enum store_status snapshot_load_cb(PGconn *c, void *cls)
{
    struct snapshot_load *l = cls;
    enum store_status st;

    snapshot_load_free(l);
    st = store_version_select(c, &l->version);
    if (st == STORE_OK)
        st = store_flags_select(c, &l->flags, &l->n_flags);
    if (st == STORE_OK)
        st = store_tokens_select(c, &l->tokens, &l->n_tokens);
    return st;
}

static enum store_status check_cb(PGconn *c, void *cls)
{
    struct snapshot_load *l = cls;
    enum store_status st;

    snapshot_load_free(l);
    st = store_version_select(c, &l->version);
    if (st == STORE_OK)
        st = store_tokens_select(c, &l->tokens, &l->n_tokens);
    return st;
}

enum store_status store_check(PGconn *c, int64_t *version, struct vx_token **tokens, size_t *n)
{
    struct snapshot_load l = {0};
    enum store_status st = store_transaction(c, BEGIN_READ_ONLY, check_cb, &l);

    if (st != STORE_OK)
        snapshot_load_free(&l);
    *version = l.version;
    *tokens = l.tokens;
    *n = l.n_tokens;
    return st;
}

enum store_status store_snapshot_load(PGconn *c, struct vx_snapshot **out)
{
    struct snapshot_load l = {0};
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
