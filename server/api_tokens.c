/* api_tokens.c -- docs/api.md §3 tokens: list, create (secret shown once), revoke.
 *
 * Token writes do not move the flag-set version (clients would see a false
 * change); they notify 'tokens' instead, and every instance reloads.  Here
 * we also wait for our own reload, so a token created or revoked through
 * this instance works (or stops working) on it as soon as the answer is
 * sent. */
#include <string.h>

#include "api.h"
#include "httputil.h"
#include "listen.h"
#include "store.h"

#define AWAIT_RELOAD_MS 2000

static enum http_rc unavailable(struct vx_req *r)
{
    listen_db_suspect();
    return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
}

enum http_rc api_tokens_list(struct vx_req *r)
{
    json_t *out = NULL;
    PGconn *c = store_thread_conn();

    if (c == NULL)
        return unavailable(r);
    if (store_tokens_list(c, &out) != STORE_OK)
        return unavailable(r);
    return http_reply_json(r, 200, out);
}

enum http_rc api_tokens_create(struct vx_req *r)
{
    json_t *body = http_body_json(r, false);
    const char *key, *name, *role;
    json_t *v;
    enum vx_role rl;
    char id[TOKEN_ID_LEN + 1], secret[64];

    if (body == NULL)
        return HTTP_QUEUED;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "role") != 0) {
            enum http_rc rc =
                http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body); /* key lives in body */
            return rc;
        }
    }
    v = json_object_get(body, "name");
    name = json_string_value(v);
    if (name == NULL || strlen(name) != json_string_length(v) || !token_name_valid(name)) {
        json_decref(body);
        return http_reply_error(r, 400, VX_E_INVALID_VALUE,
                                "name must be 1 to %d characters of printable text",
                                TOKEN_NAME_MAX);
    }
    role = json_string_value(json_object_get(body, "role"));
    if (role != NULL && strcmp(role, "admin") == 0)
        rl = VX_ROLE_ADMIN;
    else if (role != NULL && strcmp(role, "client") == 0)
        rl = VX_ROLE_CLIENT;
    else {
        json_decref(body);
        return http_reply_error(r, 400, VX_E_INVALID_VALUE, "role must be \"admin\" or \"client\"");
    }
    PGconn *c = store_thread_conn();
    if (c == NULL) {
        json_decref(body);
        return unavailable(r);
    }
    enum store_status st = store_token_create(c, name, rl, id, secret);
    if (st != STORE_OK) {
        json_decref(body);
        return unavailable(r);
    }
    listen_reload_sync(AWAIT_RELOAD_MS);
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name, "role", role, "token", secret);
    json_decref(body);
    memset(secret, 0, sizeof(secret));
    http_add_header(r, "Cache-Control", "no-store");
    return http_reply_json(r, 201, out);
}

enum http_rc api_tokens_delete(struct vx_req *r)
{
    PGconn *c = store_thread_conn();
    const char *id = http_arg(r, 0);

    if (strlen(id) != TOKEN_ID_LEN)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no live token with id '%.40s'", id);
    if (c == NULL)
        return unavailable(r);
    enum store_status st = store_token_revoke(c, id);
    if (st == STORE_NOT_FOUND)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no live token with id '%.40s'", id);
    if (st != STORE_OK)
        return unavailable(r);
    listen_reload_sync(AWAIT_RELOAD_MS);
    return http_reply_empty(r, 204);
}
