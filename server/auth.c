/* auth.c -- docs/api.md §4 bearer tokens.
 *
 * The secret is hashed (SHA-256) and looked up among the live tokens of the
 * request's snapshot, so authentication never touches the database and a
 * revocation takes effect on an instance as soon as its listener publishes
 * the next snapshot.  Last use is stamped into the token with an atomic
 * store (no lock); the listener flushes it to the database now and then. */
#include "auth.h"

#include <string.h>
#include <strings.h>

#include "sha256.h"
#include "timeutil.h"

static int deny(struct vx_req *r, unsigned status, const char *code, const char *msg, bool bodyless)
{
    if (status == 401)
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"vexil\"");
    if (bodyless)
        http_reply_empty(r, status);
    else
        http_reply_error(r, status, code, "%s", msg);
    return -1;
}

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

int auth_check(struct vx_req *r, int role, bool bodyless)
{
    const char *h = http_header(r, "Authorization");
    uint8_t hash[SHA256_LEN];
    const struct vx_token *t;

    if (h == NULL)
        return deny(r, 401, VX_E_UNAUTHORIZED, "an Authorization: Bearer token is required",
                    bodyless);
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return deny(r, 401, VX_E_UNAUTHORIZED, "the Authorization header must be 'Bearer <token>'",
                    bodyless);
    h += 7;
    while (*h == ' ')
        h++;
    secret_hash(h, hash);
    t = r->snap != NULL ? snapshot_find_token(r->snap, hash) : NULL;
    if (t == NULL)
        return deny(r, 401, VX_E_UNAUTHORIZED, "the token is unknown or revoked", bodyless);
    if (role == ROUTE_ADMIN && t->role != VX_ROLE_ADMIN)
        return deny(r, 403, VX_E_FORBIDDEN, "this needs an admin token", bodyless);
    r->token = t;
    /* Stamp at most about once a second per token, to keep the cache line
     * quiet under load. */
    int64_t now = time_now_us();
    if (now - atomic_load_explicit(&((struct vx_token *)t)->last_used, memory_order_relaxed) >
        VX_USEC_PER_SEC)
        atomic_store_explicit(&((struct vx_token *)t)->last_used, now, memory_order_relaxed);
    return 0;
}
