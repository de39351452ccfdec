/* api_webhooks.c -- docs/api.md §9: registering webhooks and reading their
 * deliveries.  Webhooks live only in the database, so every handler is a
 * database call (http_run_db) validated here first. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "httputil.h"
#include "listen.h"
#include "store.h"
#include "webhook.h"

#define DELIVERIES_LIMIT_DEFAULT 50
#define DELIVERIES_LIMIT_MAX     500

struct webhook_call {
    enum { CALL_CREATE, CALL_LIST, CALL_DELETE, CALL_DELIVERIES } what;
    json_t *body; /* create: the spec's strings point into it */
    struct webhook_spec spec;
    const char *id; /* the route's argument */
    int limit;
    enum store_status st;
    json_t *out;
};

static void webhook_call_free(void *job)
{
    struct webhook_call *wc = job;

    json_decref(wc->body);
    json_decref(wc->out);
    free(wc);
}

static void webhook_call_work(PGconn *c, void *job)
{
    struct webhook_call *wc = job;

    switch (wc->what) {
    case CALL_CREATE:
        wc->st =
            store_webhook_create(c, wc->spec.url, wc->spec.secret, (char *const *)wc->spec.events,
                                 wc->spec.n_events, wc->spec.slack, &wc->out);
        break;
    case CALL_LIST:
        wc->st = store_webhooks_list(c, &wc->out);
        break;
    case CALL_DELETE:
        wc->st = store_webhook_delete(c, wc->id);
        break;
    case CALL_DELIVERIES:
        wc->st = store_webhook_deliveries(c, wc->id, wc->limit, &wc->out);
        break;
    }
    if (wc->st == STORE_UNAVAILABLE)
        listen_db_suspect();
}

static enum http_rc reply(struct vx_req *r, struct webhook_call *wc, unsigned status)
{
    json_t *out = wc->out;

    switch (wc->st) {
    case STORE_OK:
        wc->out = NULL;
        return out != NULL ? http_reply_json(r, status, out) : http_reply_empty(r, status);
    case STORE_NOT_FOUND:
        return http_reply_error(r, 404, VX_E_NOT_FOUND, "no webhook with id '%.64s'", wc->id);
    case STORE_UNAVAILABLE:
        return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
    default:
        return http_reply_unavailable(r, 2, "the database failed; nothing was changed");
    }
}

static enum http_rc submit(struct vx_req *r, struct webhook_call *wc, int what)
{
    if (wc == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    wc->what = what;
    return http_run_db(r, webhook_call_work, wc, webhook_call_free);
}

/* The route's id, or NULL with 404 queued when it cannot be a webhook's
 * (a UUID, 36 characters of hex digits and dashes). */
static const char *id_or_404(struct vx_req *r)
{
    const char *id = http_arg(r, 0);
    size_t n = strlen(id);
    bool ok = n == 36;

    for (size_t i = 0; ok && i < n; i++)
        ok = (i == 8 || i == 13 || i == 18 || i == 23) ? id[i] == '-'
                                                       : strchr("0123456789abcdef", id[i]) != NULL;
    if (!ok) {
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no webhook with id '%.64s'", id);
        return NULL;
    }
    return id;
}

enum http_rc api_webhooks_create(struct vx_req *r)
{
    struct webhook_call *wc = http_db_job(r);
    struct vx_error err;

    if (wc != NULL)
        return reply(r, wc, 201);
    json_t *body = http_body_json(r, false);
    if (body == NULL)
        return HTTP_QUEUED;
    wc = calloc(1, sizeof *wc);
    if (wc == NULL) {
        json_decref(body);
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    }
    wc->body = body;
    if (webhook_spec_from_json(body, &wc->spec, &err) != 0) {
        webhook_call_free(wc);
        return http_reply_error(r, 400, err.code, "%s", err.message);
    }
    return submit(r, wc, CALL_CREATE);
}

enum http_rc api_webhooks_list(struct vx_req *r)
{
    struct webhook_call *wc = http_db_job(r);

    if (wc != NULL)
        return reply(r, wc, 200);
    return submit(r, calloc(1, sizeof *wc), CALL_LIST);
}

enum http_rc api_webhooks_delete(struct vx_req *r)
{
    struct webhook_call *wc = http_db_job(r);
    const char *id;

    if (wc != NULL)
        return reply(r, wc, 204);
    if ((id = id_or_404(r)) == NULL)
        return HTTP_QUEUED;
    if ((wc = calloc(1, sizeof *wc)) != NULL)
        wc->id = id;
    return submit(r, wc, CALL_DELETE);
}

enum http_rc api_webhooks_deliveries(struct vx_req *r)
{
    struct webhook_call *wc = http_db_job(r);
    const char *id, *l = http_query(r, "limit");
    int64_t limit = DELIVERIES_LIMIT_DEFAULT;

    if (wc != NULL)
        return reply(r, wc, 200);
    if ((id = id_or_404(r)) == NULL)
        return HTTP_QUEUED;
    if (l != NULL && parse_int_range(l, 1, DELIVERIES_LIMIT_MAX, &limit) != 0)
        return http_reply_error(r, 400, VX_E_INVALID_VALUE, "limit must be an integer from 1 to %d",
                                DELIVERIES_LIMIT_MAX);
    if ((wc = calloc(1, sizeof *wc)) != NULL) {
        wc->id = id;
        wc->limit = (int)limit;
    }
    return submit(r, wc, CALL_DELIVERIES);
}
