/* store_webhooks.c -- webhooks, their outbox, deliveries and attempts
 * (store.h, docs/api.md §9).
 *
 * The flag and segment histories feed the outbox through triggers
 * (migrations/0006_webhooks.sql); the writes that have no history table
 * (environments, plan halts) call store_outbox_insert() in their own
 * transaction.  Either way an event is committed with its change or not
 * at all.  The sender reads, for each webhook, its oldest pending delivery
 * and records what became of each attempt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "timeutil.h"

/* clang-format off */
static const char SQL_OUTBOX_INSERT[] =
    "INSERT INTO webhook_outbox (event, kind, subject, at, actor, environments, before, after) "
    "VALUES ($1, $2, $3, " TS(4) ", $5, " TEXT_ARRAY(6) ", $7::jsonb, $8::jsonb)";

static const char SQL_WEBHOOK_INSERT[] =
    "INSERT INTO webhooks (id, url, secret, events, format) "
    "VALUES (gen_random_uuid(), $1, $2, " TEXT_ARRAY(3) ", $4) "
    "RETURNING id, url, array_to_json(events)::text, format, " US("created_at");

static const char SQL_WEBHOOKS_LIST[] =
    "SELECT id, url, array_to_json(events)::text, format, " US("created_at") " "
    "FROM webhooks ORDER BY created_at, id";

static const char SQL_WEBHOOK_DELETE[] =
    "DELETE FROM webhooks WHERE id::text = $1";

static const char SQL_WEBHOOK_EXISTS[] =
    "SELECT 1 FROM webhooks WHERE id::text = $1";

/* Each delivery of a webhook, newest first, with its attempts. */
static const char SQL_DELIVERIES[] =
    "SELECT d.id, o.id, o.event, d.status, "
           "CASE WHEN d.status = 'pending' THEN " US("d.next_at") " END, "
           US("d.created_at") ", " US("d.delivered_at") ", "
           "coalesce((SELECT json_agg(json_build_object("
                        "'at', to_char(a.at AT TIME ZONE 'UTC', "
                                      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                        "'status_code', a.status_code, 'error', a.error, "
                        "'duration_ms', a.duration_ms) ORDER BY a.id) "
                     "FROM webhook_attempts a WHERE a.delivery = d.id), '[]')::text "
    "FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox "
    "WHERE d.webhook::text = $1 "
    "ORDER BY o.id DESC LIMIT $2";

/* For each webhook, its oldest pending delivery, when it is due. */
static const char SQL_DUE[] =
    "SELECT d.id, w.url, w.secret, w.format, o.id, o.event, " US("o.at") ", o.actor, o.kind, "
           "o.subject, array_to_json(o.environments)::text, o.before::text, o.after::text, "
           "d.attempts, " US("d.created_at") " "
    "FROM (SELECT DISTINCT ON (webhook) id, webhook, outbox, next_at, attempts, created_at "
          "FROM webhook_deliveries WHERE status = 'pending' "
          "ORDER BY webhook, outbox) d "
    "JOIN webhooks w ON w.id = d.webhook "
    "JOIN webhook_outbox o ON o.id = d.outbox "
    "WHERE d.next_at <= " TS(1) " "
    "ORDER BY o.id LIMIT $2";

static const char SQL_ATTEMPT[] =
    "INSERT INTO webhook_attempts (delivery, at, status_code, error, duration_ms) "
    "VALUES ($1::uuid, " TS(2) ", $3::integer, $4, $5)";

static const char SQL_DELIVERED[] =
    "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, "
    "delivered_at = " TS(2) " WHERE id = $1::uuid";

static const char SQL_RETRY[] =
    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_at = " TS(2) " "
    "WHERE id = $1::uuid";

static const char SQL_FAILED[] =
    "UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1 "
    "WHERE id = $1::uuid";

static const char SQL_QUEUE[] =
    "SELECT count(*), coalesce(extract(epoch from " TS(1) " - min(o.at)), 0)::bigint "
    "FROM webhook_deliveries d JOIN webhook_outbox o ON o.id = d.outbox "
    "WHERE d.status = 'pending'";

static const char SQL_LOCK[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                             "AND pid = pg_backend_pid() AND objid = $1::bigint::oid "
                             "AND granted) "
               "THEN true ELSE pg_try_advisory_lock($1::bigint) END";
/* clang-format on */

enum store_status store_outbox_insert(PGconn *c, const char *event, const char *kind,
                                      const char *subject, int64_t at, const char *actor,
                                      const json_t *envs, const json_t *before, const json_t *after)
{
    char ts[24];
    char *e = json_dumps(envs != NULL ? envs : json_array(), JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = before != NULL ? json_dumps(before, JSON_COMPACT) : NULL;
    char *a = after != NULL ? json_dumps(after, JSON_COMPACT) : NULL;
    const char *params[] = {event, kind, subject, store_itoa(at, ts), actor, e, b, a};
    /* Event ids in commit order (migrations/0006): the caller's
     * store_write_transaction() holds the sequence row already. */
    enum store_status st =
        e == NULL || (before != NULL && b == NULL) || (after != NULL && a == NULL)
            ? store_fail(STORE_ERROR, "out of memory")
            : store_command(c, SQL_OUTBOX_INSERT, 8, params, NULL);

    free(e);
    free(b);
    free(a);
    return st;
}

/* Row i of a webhook query (id, url, events text, format, created_at). */
static json_t *webhook_row(const PGresult *r, int i)
{
    char at[40];
    json_t *events = json_loads(PQgetvalue(r, i, 2), 0, NULL);

    return json_pack("{s:s, s:s, s:o, s:s, s:s}", "id", PQgetvalue(r, i, 0), "url",
                     PQgetvalue(r, i, 1), "events", events != NULL ? events : json_array(),
                     "format", PQgetvalue(r, i, 3), "created_at",
                     time_format_rfc3339(store_int64(r, i, 4), at, sizeof at));
}

enum store_status store_webhook_create(PGconn *c, const char *url, const char *secret,
                                       char *const *events, size_t n, bool slack, json_t **out)
{
    char *ev = store_names_json(events, n);
    const char *params[] = {url, secret, ev, slack ? "slack" : "json"};
    enum store_status st = STORE_OK;
    PGresult *r = ev != NULL ? store_query_row(c, SQL_WEBHOOK_INSERT, 4, params, &st) : NULL;

    free(ev);
    *out = r != NULL ? webhook_row(r, 0) : NULL;
    PQclear(r);
    if (st == STORE_OK && *out == NULL)
        return store_fail(STORE_ERROR, "out of memory");
    return st;
}

static enum store_status webhooks_select(PGconn *c, const void *arg, json_t **out)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_WEBHOOKS_LIST, 0, NULL, &st);
    json_t *arr = r != NULL ? json_array() : NULL;

    (void)arg;
    for (int i = 0; arr != NULL && i < PQntuples(r); i++)
        if (json_array_append_new(arr, webhook_row(r, i)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    PQclear(r);
    *out = arr != NULL ? store_wrap("webhooks", arr) : NULL;
    return st == STORE_OK && *out == NULL ? store_fail(STORE_ERROR, "out of memory") : st;
}

enum store_status store_webhooks_list(PGconn *c, json_t **out)
{
    return store_read_json(c, webhooks_select, NULL, out);
}

enum store_status store_webhook_delete(PGconn *c, const char *id)
{
    const char *params[] = {id};
    long rows = 0;
    enum store_status st = store_command(c, SQL_WEBHOOK_DELETE, 1, params, &rows);

    return st == STORE_OK && rows == 0 ? STORE_NOT_FOUND : st;
}

struct deliveries_arg {
    const char *id;
    int limit;
};

static enum store_status deliveries_select(PGconn *c, const void *arg, json_t **out)
{
    const struct deliveries_arg *a = arg;
    char lim[24];
    const char *p1[] = {a->id}, *p2[] = {a->id, store_itoa(a->limit, lim)};
    long rows = 0;
    enum store_status st = store_command(c, SQL_WEBHOOK_EXISTS, 1, p1, &rows);
    PGresult *r = NULL;
    json_t *arr = NULL;

    *out = NULL;
    if (st == STORE_OK && rows == 0)
        return STORE_NOT_FOUND;
    if (st == STORE_OK)
        r = store_query(c, SQL_DELIVERIES, 2, p2, &st);
    if (r != NULL)
        arr = json_array();
    for (int i = 0; arr != NULL && i < PQntuples(r); i++) {
        json_t *attempts = json_loads(PQgetvalue(r, i, 7), 0, NULL);
        json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o}", "id", PQgetvalue(r, i, 0),
                              "event_id", (json_int_t)store_int64(r, i, 1), "event",
                              PQgetvalue(r, i, 2), "status", PQgetvalue(r, i, 3), "next_at",
                              store_time_json(r, i, 4), "created_at", store_time_json(r, i, 5),
                              "delivered_at", store_time_json(r, i, 6), "attempts",
                              attempts != NULL ? attempts : json_array());
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    PQclear(r);
    if (st == STORE_OK)
        *out = arr != NULL ? store_wrap("deliveries", arr) : NULL;
    return st == STORE_OK && *out == NULL ? store_fail(STORE_ERROR, "out of memory") : st;
}

enum store_status store_webhook_deliveries(PGconn *c, const char *id, int limit, json_t **out)
{
    struct deliveries_arg a = {id, limit};

    return store_read_json(c, deliveries_select, &a, out);
}

/* ---- the sender ----------------------------------------------------------- */

enum store_status store_webhook_lock(PGconn *c, int64_t key, bool *held)
{
    char k[24];
    const char *params[] = {store_itoa(key, k)};
    enum store_status st = STORE_OK;
    PGresult *r = store_query_row(c, SQL_LOCK, 1, params, &st);

    *held = r != NULL && store_bool(r, 0, 0);
    PQclear(r);
    return st;
}

void store_webhook_jobs_free(struct store_webhook_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct store_webhook_job *j = &jobs[i];
        free(j->delivery);
        free(j->url);
        free(j->secret);
        free(j->event);
        free(j->actor);
        free(j->kind);
        free(j->subject);
        json_decref(j->environments);
        json_decref(j->before);
        json_decref(j->after);
    }
    free(jobs);
}

/* NULL for SQL NULL, else the parsed JSON. */
static json_t *json_col(const PGresult *r, int i, int col)
{
    return PQgetisnull(r, i, col) ? NULL : json_loads(PQgetvalue(r, i, col), 0, NULL);
}

enum store_status store_webhook_due(PGconn *c, int64_t now, int max,
                                    struct store_webhook_job **jobs, size_t *n)
{
    char ts[24], lim[24];
    const char *params[] = {store_itoa(now, ts), store_itoa(max, lim)};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_DUE, 2, params, &st);
    size_t rows = r != NULL ? (size_t)PQntuples(r) : 0;

    *jobs = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    *jobs = calloc(rows ? rows : 1, sizeof **jobs);
    for (size_t i = 0; *jobs != NULL && i < rows; i++) {
        struct store_webhook_job *j = &(*jobs)[i];
        int row = (int)i;
        j->delivery = strdup(PQgetvalue(r, row, 0));
        j->url = strdup(PQgetvalue(r, row, 1));
        j->secret = strdup(PQgetvalue(r, row, 2));
        j->slack = strcmp(PQgetvalue(r, row, 3), "slack") == 0;
        j->event_id = store_int64(r, row, 4);
        j->event = strdup(PQgetvalue(r, row, 5));
        j->at = store_int64(r, row, 6);
        j->actor = strdup(PQgetvalue(r, row, 7));
        j->kind = strdup(PQgetvalue(r, row, 8));
        j->subject = strdup(PQgetvalue(r, row, 9));
        j->environments = json_col(r, row, 10);
        j->before = json_col(r, row, 11);
        j->after = json_col(r, row, 12);
        j->attempts = (int)store_int64(r, row, 13);
        j->created_at = store_int64(r, row, 14);
        *n = i + 1;
        if (j->delivery == NULL || j->url == NULL || j->secret == NULL || j->event == NULL ||
            j->actor == NULL || j->kind == NULL || j->subject == NULL) {
            st = store_fail(STORE_ERROR, "out of memory");
            break;
        }
    }
    PQclear(r);
    if (*jobs == NULL && rows > 0)
        st = store_fail(STORE_ERROR, "out of memory");
    if (st != STORE_OK) {
        store_webhook_jobs_free(*jobs, *n);
        *jobs = NULL;
        *n = 0;
    }
    return st;
}

struct record {
    const char *const *attempt;
    const char *sql;
    const char *const *update;
    int n_update;
};

static enum store_status record_cb(PGconn *c, void *cls)
{
    const struct record *rec = cls;
    enum store_status st = store_command(c, SQL_ATTEMPT, 5, rec->attempt, NULL);

    return st == STORE_OK ? store_command(c, rec->sql, rec->n_update, rec->update, NULL) : st;
}

enum store_status store_webhook_record(PGconn *c, const char *delivery, int64_t at, int status_code,
                                       const char *error, int duration_ms,
                                       enum store_delivery_outcome outcome, int64_t next_at)
{
    char ts[24], code[24], ms[24], nx[24];
    const char *attempt[] = {delivery, store_itoa(at, ts),
                             status_code > 0 ? store_itoa(status_code, code) : NULL, error,
                             store_itoa(duration_ms, ms)};
    const char *update[] = {delivery,
                            store_itoa(outcome == STORE_DELIVERY_RETRY ? next_at : at, nx)};
    struct record rec = {attempt,
                         outcome == STORE_DELIVERY_DONE    ? SQL_DELIVERED
                         : outcome == STORE_DELIVERY_RETRY ? SQL_RETRY
                                                           : SQL_FAILED,
                         update, outcome == STORE_DELIVERY_FAILED ? 1 : 2};

    return store_run_transaction(c, record_cb, &rec);
}

enum store_status store_webhook_queue(PGconn *c, int64_t now, int64_t *pending, int64_t *oldest_s)
{
    char ts[24];
    const char *params[] = {store_itoa(now, ts)};
    enum store_status st = STORE_OK;
    PGresult *r = store_query_row(c, SQL_QUEUE, 1, params, &st);

    *pending = r != NULL ? store_int64(r, 0, 0) : 0;
    *oldest_s = r != NULL ? store_int64(r, 0, 1) : 0;
    PQclear(r);
    return st;
}
