/* auth.c -- docs/api.md §4 bearer tokens.
 *
 * The secret is hashed (SHA-256) and looked up among the live tokens of the
 * request's snapshot, so authentication never touches the database and a
 * revocation takes effect on an instance as soon as its listener publishes
 * the next snapshot.  Last use is stamped into the snapshot's mutable
 * per-token counters (snapshot_token_used, an atomic store, no lock); the
 * listener flushes them to the database now and then.
 *
 * This file only decides; http_reply.c turns a refusal into 401 or 403. */
#include "auth.h"

#include <string.h>
#include <strings.h>

#include "sha256.h"
#include "timeutil.h"

/* SHA-256 of the presented secret.  A client sends the same token on every
 * request, so each thread remembers the last secret and its hash; the
 * comparison with it runs in constant time. */
static void secret_hash(const char *secret, uint8_t hash[SHA256_LEN])
{
    static _Thread_local struct {
        size_t len;
        char secret[128];
        uint8_t hash[SHA256_LEN];
    } last;
    size_t len = strlen(secret);

    if (len == last.len && len > 0 &&
        sha256_ct_equal((const uint8_t *)secret, (const uint8_t *)last.secret, len)) {
        memcpy(hash, last.hash, SHA256_LEN);
        return;
    }
    sha256(secret, len, hash);
    if (len <= sizeof(last.secret)) {
        memcpy(last.secret, secret, len);
        memcpy(last.hash, hash, SHA256_LEN);
        last.len = len;
    }
}

/* How much a role may do: frontend < client < admin. */
static int role_rank(enum vx_role r)
{
    return r == VX_ROLE_ADMIN ? 2 : r == VX_ROLE_CLIENT ? 1 : 0;
}

enum auth_result auth_token(struct vx_snapshot *s, const char *authorization, enum vx_role need,
                            bool bare_ok, const struct vx_token **out)
{
    const char *h = authorization;
    uint8_t hash[SHA256_LEN];
    const struct vx_token *t;

    *out = NULL;
    if (h == NULL)
        return AUTH_MISSING;
    if (strncasecmp(h, "Bearer ", 7) == 0)
        h += 7;
    else if (!bare_ok)
        return AUTH_NOT_BEARER;
    while (*h == ' ')
        h++;
    secret_hash(h, hash);
    t = s != NULL ? snapshot_find_token(s, hash) : NULL;
    if (t == NULL)
        return AUTH_UNKNOWN;
    if (role_rank(t->role) < role_rank(need))
        return AUTH_FORBIDDEN;
    snapshot_token_used(s, t, time_now_us());
    *out = t;
    return AUTH_OK;
}
