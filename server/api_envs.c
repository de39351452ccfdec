/* api_envs.c -- docs/api.md §6: environments.
 *
 * The list is answered from the snapshot like every read.  A write is
 * validated here, on the HTTP thread, then run on a database thread
 * (http_run_db) while the request waits suspended; it answers once this
 * instance serves the change, so that a client that creates an environment
 * here can use it here at once. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "listen.h"
#include "store.h"
#include "text.h"
#include "timeutil.h"

#define AWAIT_PUBLISH_MS 2000

static json_t *env_json(const struct vx_env *e)
{
    char at[32];

    return json_pack("{s:s, s:s, s:b, s:I, s:s}", "name", e->name, "description", e->description,
                     "default", e->is_default, "version", (json_int_t)e->version, "created_at",
                     time_format_rfc3339(e->created_at, at, sizeof at));
}

enum http_rc api_envs_list(struct vx_req *r)
{
    const struct vx_snapshot *s = r->snap;
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < s->n_envs; i++)
        if (json_array_append_new(arr, env_json(&s->envs[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    return http_reply_json(r, 200, arr != NULL ? json_pack("{s:o}", "environments", arr) : NULL);
}

/* One database call of a handler here. */
struct env_call {
    enum { CALL_CREATE, CALL_UPDATE, CALL_DELETE } what;
    char *name;
    char *description; /* NULL: not given */
    bool make_default;
    const char *actor; /* the token's name, in the request's snapshot */
    enum store_status st;
    json_t *out;
    int64_t version;
};

static void env_call_free(void *job)
{
    struct env_call *ec = job;

    free(ec->name);
    free(ec->description);
    json_decref(ec->out);
    free(ec);
}

static void env_call_work(PGconn *c, void *job)
{
    struct env_call *ec = job;

    switch (ec->what) {
    case CALL_CREATE:
        ec->st = store_env_create(c, ec->name, ec->description, ec->actor, &ec->out, &ec->version);
        break;
    case CALL_UPDATE:
        ec->st = store_env_update(c, ec->name, ec->description, ec->make_default, ec->actor,
                                  &ec->out, &ec->version);
        break;
    case CALL_DELETE:
        ec->st = store_env_delete(c, ec->name, ec->actor, &ec->version);
        break;
    }
    if (ec->st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (ec->st == STORE_OK)
        listen_await_version(ec->version, AWAIT_PUBLISH_MS);
}

/* Read a body of the fields allowed ("name", "description", "default")
 * into a new call; NULL with 400 queued. */
static struct env_call *read_body(struct vx_req *r, bool create)
{
    json_t *body = http_body_json(r, false);
    const char *key;
    json_t *v;
    struct env_call *ec;

    if (body == NULL)
        return NULL;
    json_object_foreach(body, key, v)
    {
        bool known = strcmp(key, "description") == 0 ||
                     (create ? strcmp(key, "name") == 0 : strcmp(key, "default") == 0);
        if (!known) {
            http_reply_error(r, 400, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
            json_decref(body);
            return NULL;
        }
    }
    struct vx_error err = {VX_E_INVALID_VALUE, ""};
    json_t *name = json_object_get(body, "name"), *desc = json_object_get(body, "description"),
           *def = json_object_get(body, "default");
    char *description = NULL;
    int bad = 0;
    if (create && (!json_is_string(name) ||
                   !env_name_valid(json_string_value(name), json_string_length(name))))
        bad = vx_fail(&err, VX_E_INVALID_VALUE,
                      "name must be an environment name: ^[a-z0-9][a-z0-9_-]{0,31}$");
    else if (desc != NULL)
        bad = text_from_json(desc, "description", FLAG_DESCRIPTION_MAX, &description, &err);
    if (bad == 0 && def != NULL && !json_is_true(def))
        bad = vx_fail(&err, VX_E_INVALID_VALUE,
                      "default can only be set to true: make another environment the default "
                      "instead");
    if (bad != 0) {
        free(description);
        http_reply_error(r, 400, err.code, "%s", err.message);
        json_decref(body);
        return NULL;
    }
    ec = calloc(1, sizeof(*ec));
    if (ec != NULL) {
        ec->name = strdup(create ? json_string_value(name) : http_arg(r, 0));
        ec->description = description;
        ec->make_default = def != NULL;
    } else {
        free(description);
    }
    json_decref(body);
    if (ec == NULL || ec->name == NULL) {
        if (ec != NULL)
            env_call_free(ec);
        http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
        return NULL;
    }
    return ec;
}

static enum http_rc submit(struct vx_req *r, struct env_call *ec, int what)
{
    if (ec == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    ec->what = what;
    ec->actor = r->token != NULL ? r->token->name : "";
    return http_run_db(r, env_call_work, ec, env_call_free);
}

/* The answer to a finished call. */
static enum http_rc reply(struct vx_req *r, struct env_call *ec, unsigned status)
{
    switch (ec->st) {
    case STORE_OK:
        if (ec->out == NULL)
            return http_reply_empty(r, status);
        json_t *out = ec->out;
        ec->out = NULL;
        return http_reply_json(r, status, out);
    case STORE_NOT_FOUND:
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no environment named '%.64s'", ec->name);
    case STORE_CONFLICT:
        return ec->what == CALL_CREATE
                   ? http_reply_error(r, 409, VX_E_CONFLICT,
                                      "an environment named '%s' already exists", ec->name)
                   : http_reply_error(r, 409, VX_E_CONFLICT,
                                      "'%s' is the default environment: make another the "
                                      "default before deleting it",
                                      ec->name);
    case STORE_UNAVAILABLE:
        return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
    default:
        return http_reply_unavailable(
            r, 2, "the database failed to apply the change; nothing was changed");
    }
}

/* The route's environment, or NULL with 404 queued. */
static const char *env_or_404(struct vx_req *r)
{
    const char *name = http_arg(r, 0);

    if (!env_name_valid(name, strlen(name))) {
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no environment named '%.64s'", name);
        return NULL;
    }
    return name;
}

enum http_rc api_envs_create(struct vx_req *r)
{
    struct env_call *ec = http_db_job(r);

    if (ec != NULL)
        return reply(r, ec, 201);
    ec = read_body(r, true);
    return ec != NULL ? submit(r, ec, CALL_CREATE) : HTTP_QUEUED;
}

enum http_rc api_envs_patch(struct vx_req *r)
{
    struct env_call *ec = http_db_job(r);

    if (ec != NULL)
        return reply(r, ec, 200);
    if (env_or_404(r) == NULL)
        return HTTP_QUEUED;
    ec = read_body(r, false);
    return ec != NULL ? submit(r, ec, CALL_UPDATE) : HTTP_QUEUED;
}

enum http_rc api_envs_delete(struct vx_req *r)
{
    struct env_call *ec = http_db_job(r);

    if (ec != NULL)
        return reply(r, ec, 204);
    if (env_or_404(r) == NULL)
        return HTTP_QUEUED;
    ec = calloc(1, sizeof(*ec));
    if (ec != NULL && (ec->name = strdup(http_arg(r, 0))) == NULL) {
        free(ec);
        ec = NULL;
    }
    return submit(r, ec, CALL_DELETE);
}
