/* api_tokens.c -- docs/api.md §3 tokens: list, create (secret shown once), revoke.
 *
 * Token writes do not move the flag-set version (clients would see a false
 * change); they notify 'tokens' instead, and every instance reloads.  Here
 * we also wait for our own reload, so a token created or revoked through
 * this instance works (or stops working) on it as soon as the answer is
 * sent.  Every database call runs on a database thread (http_run_db) while
 * the request waits, suspended; the handler runs again with its outcome. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "listen.h"
#include "store.h"
#include "text.h"
#include "timeutil.h"

#define AWAIT_RELOAD_MS 2000

/* One database call of a handler here, run on a database thread
 * (http_run_db) while the request waits, suspended. */
struct token_call {
    enum store_status (*run)(PGconn *c, struct token_call *tc);
    /* in */
    const char *id; /* revoke: the route's argument */
    char *name;     /* create */
    enum vx_role role;
    char *env; /* create: a client or frontend token's environment, NULL: the default */
    /* out */
    enum store_status st;
    char error[256]; /* STORE_INVALID: what the body names that does not exist */
    json_t *list;
    char new_id[TOKEN_ID_LEN + 1], secret[64];
    struct store_token_made made;
};

static void token_call_free(void *job)
{
    struct token_call *tc = job;

    json_decref(tc->list);
    explicit_bzero(tc->secret, sizeof(tc->secret));
    free(tc->name);
    free(tc->env);
    free(tc);
}

static enum store_status run_list(PGconn *c, struct token_call *tc)
{
    return store_tokens_list(c, &tc->list);
}

/* Every call: the store, then for a change the wait until this instance
 * has reloaded, so the token works (or stops working) here at once. */
static void token_call_work(PGconn *c, void *job)
{
    struct token_call *tc = job;

    tc->st = tc->run(c, tc);
    if (tc->st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (tc->st == STORE_INVALID) /* the message is this thread's */
        snprintf(tc->error, sizeof tc->error, "%s", store_last_error(c));
    if (tc->st == STORE_OK && tc->run != run_list)
        listen_reload_sync(AWAIT_RELOAD_MS);
}

static enum store_status run_create(PGconn *c, struct token_call *tc)
{
    return store_token_create(c, tc->name, tc->role, tc->env, tc->new_id, tc->secret, &tc->made);
}

static enum store_status run_revoke(PGconn *c, struct token_call *tc)
{
    return store_token_revoke(c, tc->id);
}

static enum http_rc submit(struct vx_req *r,
                           enum store_status (*run)(PGconn *c, struct token_call *tc),
                           struct token_call *tc)
{
    if (tc == NULL)
        tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    tc->run = run;
    return http_run_db(r, token_call_work, tc, token_call_free);
}

static enum http_rc unavailable(struct vx_req *r)
{
    return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
}

enum http_rc api_tokens_list(struct vx_req *r)
{
    struct token_call *tc = http_db_job(r);

    if (tc == NULL)
        return submit(r, run_list, NULL);
    if (tc->st != STORE_OK)
        return unavailable(r);
    json_t *list = tc->list;
    tc->list = NULL;
    return http_reply_json(r, 200, list);
}

/* A create body {name, role, environment?} into a new call, or NULL with
 * 400 queued. */
static struct token_call *read_create(struct vx_req *r)
{
    json_t *body = http_body_json(r, false);
    const char *key, *name, *role, *env = NULL;
    json_t *v;
    struct token_call *tc;
    int role_v;

    if (body == NULL)
        return NULL;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "name") != 0 && strcmp(key, "role") != 0 &&
            strcmp(key, "environment") != 0) {
            http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body); /* key lives in body */
            return NULL;
        }
    }
    v = json_object_get(body, "name");
    name = json_string_value(v);
    if (name == NULL || strlen(name) != json_string_length(v) || !token_name_valid(name)) {
        json_decref(body);
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "name must be 1 to %d characters of printable text", TOKEN_NAME_MAX);
        return NULL;
    }
    role = json_string_value(json_object_get(body, "role"));
    role_v = role_parse(role);
    if (role_v < 0) {
        json_decref(body);
        http_reply_error(r, 400, VX_E_INVALID_VALUE,
                         "role must be \"admin\", \"client\" or \"frontend\"");
        return NULL;
    }
    v = json_object_get(body, "environment");
    if (v != NULL && !json_is_null(v)) {
        env = json_string_value(v);
        const char *why = role_v == VX_ROLE_ADMIN ? "an admin token has no environment"
                          : env == NULL || !env_name_valid(env, json_string_length(v))
                              ? "environment must be an environment name"
                              : NULL;
        if (why != NULL) {
            json_decref(body);
            http_reply_error(r, 400, VX_E_INVALID_VALUE, "%s", why);
            return NULL;
        }
    }
    tc = calloc(1, sizeof(*tc));
    if (tc != NULL) {
        tc->role = (enum vx_role)role_v;
        tc->name = strdup(name);
        tc->env = env != NULL ? strdup(env) : NULL;
    }
    json_decref(body);
    if (tc == NULL || tc->name == NULL || (env != NULL && tc->env == NULL)) {
        if (tc != NULL)
            token_call_free(tc);
        http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
        return NULL;
    }
    return tc;
}

enum http_rc api_tokens_create(struct vx_req *r)
{
    struct token_call *tc = http_db_job(r);

    if (tc == NULL) {
        tc = read_create(r);
        return tc != NULL ? submit(r, run_create, tc) : HTTP_QUEUED;
    }
    if (tc->st == STORE_INVALID)
        return http_reply_error(r, 400, VX_E_INVALID_VALUE, "%s", tc->error);
    if (tc->st != STORE_OK)
        return unavailable(r);
    char at[32];
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "id", tc->new_id, "name", tc->name,
                            "role", role_name(tc->role), "environment",
                            tc->made.env[0] != '\0' ? json_string(tc->made.env) : json_null(),
                            "token", tc->secret, "created_at",
                            time_format_rfc3339(tc->made.created_at, at, sizeof at));
    http_add_header(r, "Cache-Control", "no-store");
    return http_reply_json(r, 201, out);
}

enum http_rc api_tokens_delete(struct vx_req *r)
{
    struct token_call *tc = http_db_job(r);
    const char *id = http_arg(r, 0);

    if (tc == NULL && strlen(id) != TOKEN_ID_LEN)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no live token with id '%.40s'", id);
    if (tc == NULL) {
        tc = calloc(1, sizeof(*tc));
        if (tc != NULL)
            tc->id = id;
        return submit(r, run_revoke, tc);
    }
    if (tc->st == STORE_NOT_FOUND)
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no live token with id '%.40s'", id);
    if (tc->st != STORE_OK)
        return unavailable(r);
    return http_reply_empty(r, 204);
}
