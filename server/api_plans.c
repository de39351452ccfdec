/* api_plans.c -- docs/api.md §8: release plans, and the alerts that stop
 * them.
 *
 * A plan lives only in the database (its steps are taken by whichever
 * instance gets there first, plans.c), so every handler here is a database
 * call: validated on the HTTP thread, run on a database thread
 * (http_run_db) while the request waits suspended, answered once this
 * instance serves whatever flag write the call made (read-your-writes, as
 * for every write).
 *
 * POST /api/alerts takes Alertmanager's webhook payload as Alertmanager
 * sends it.  The whole payload is checked before anything is done; then
 * each firing alert that names a flag is applied in its own transaction,
 * so an alert naming an unknown flag changes nothing and does not stop the
 * others.  The answer lists what each did. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "listen.h"
#include "plans.h"
#include "store.h"
#include "timeutil.h"

#define AWAIT_PUBLISH_MS 2000

/* One alert of a payload and what it did. */
struct alert_item {
    const struct plan_alert *alert;
    const char *env; /* its vexil_env, else the default environment */
    enum alert_outcome outcome;
    bool had_plan;
    struct vx_plan plan;
};

/* One database call of a handler here.  Its strings point into the
 * request (route arguments, query, the token's name in the request's
 * snapshot) or into body, which all outlive the call. */
struct plan_call {
    enum { CALL_START, CALL_GET, CALL_CONTROL, CALL_LIST, CALL_ALERTS } what;
    const char *flag;
    char env[ENV_NAME_MAX + 1]; /* "" for every environment (list) */
    enum plan_op op;
    int64_t now;
    struct vx_plan plan; /* in (start), out */
    /* alerts */
    json_t *body;
    struct plan_alert *alerts;
    struct alert_item *items;
    size_t n_items, ignored;
    /* out */
    enum store_status st;
    char error[256];
    int64_t version;
    json_t *list;
};

static void plan_call_free(void *job)
{
    struct plan_call *pc = job;

    json_decref(pc->list);
    json_decref(pc->body);
    free(pc->alerts);
    free(pc->items);
    free(pc);
}

static void run_alerts(PGconn *c, struct plan_call *pc)
{
    for (size_t i = 0; i < pc->n_items && pc->st == STORE_OK; i++) {
        struct alert_item *it = &pc->items[i];
        int64_t v = 0;
        if (!flag_name_valid(it->alert->flag, strlen(it->alert->flag))) {
            it->outcome = ALERT_UNKNOWN_FLAG;
        } else if (!env_name_valid(it->env, strlen(it->env))) {
            it->outcome = ALERT_UNKNOWN_ENV;
        } else {
            pc->st =
                store_alert_apply(c, it->alert->flag, it->env, it->alert->name, it->alert->disable,
                                  pc->now, &it->outcome, &it->plan, &it->had_plan, &v);
        }
        if (pc->st == STORE_OK)
            plans_count_alert(it->outcome);
        if (v > pc->version)
            pc->version = v;
    }
}

static void plan_call_work(PGconn *c, void *job)
{
    struct plan_call *pc = job;

    switch (pc->what) {
    case CALL_START:
        pc->st = store_plan_start(c, &pc->plan, pc->now, &pc->version);
        break;
    case CALL_GET:
        pc->st = store_plan_get(c, pc->flag, pc->env, &pc->plan);
        break;
    case CALL_CONTROL:
        pc->st = store_plan_control(c, pc->flag, pc->env, pc->op, pc->now, &pc->plan, &pc->version);
        break;
    case CALL_LIST:
        pc->st = store_plans_list(c, pc->env[0] != '\0' ? pc->env : NULL, &pc->list);
        break;
    case CALL_ALERTS:
        run_alerts(c, pc);
        break;
    }
    if (pc->st == STORE_UNAVAILABLE)
        listen_db_suspect();
    if (pc->st == STORE_INVALID)
        snprintf(pc->error, sizeof pc->error, "%s", store_last_error(c));
    if (pc->st == STORE_OK && pc->version > 0) {
        if (pc->what == CALL_START || pc->what == CALL_CONTROL)
            plans_count_step();
        listen_await_version(pc->version, AWAIT_PUBLISH_MS);
    }
    if (pc->st == STORE_OK && (pc->what == CALL_START || pc->what == CALL_CONTROL))
        plans_poke(); /* the next step's time may be earlier than the scheduler thinks */
}

/* A new call on the route's flag in the request's environment, or NULL
 * with an error queued. */
static struct plan_call *plan_call_new(struct vx_req *r, int what)
{
    const char *name = http_arg(r, 0);
    const struct vx_env *e;
    struct plan_call *pc;

    if (!flag_name_valid(name, strlen(name))) {
        http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", name);
        return NULL;
    }
    if ((e = http_env(r, r->snap)) == NULL)
        return NULL;
    if ((pc = calloc(1, sizeof *pc)) == NULL) {
        http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
        return NULL;
    }
    pc->what = what;
    pc->flag = name;
    pc->now = time_now_us();
    snprintf(pc->env, sizeof pc->env, "%s", e->name);
    return pc;
}

static const char *op_name(enum plan_op op)
{
    static const char *const names[] = {"pause", "resume", "abort", "advance"};
    return names[op];
}

/* The answer to a finished call on one plan. */
static enum http_rc reply_plan(struct vx_req *r, struct plan_call *pc, unsigned status)
{
    switch (pc->st) {
    case STORE_OK:
        return http_reply_json(r, status, plan_to_json(&pc->plan));
    case STORE_NOT_FOUND:
        return pc->what == CALL_START
                   ? http_reply_error(r, 404, VX_E_NOT_FOUND, "no flag named '%.100s'", pc->flag)
                   : http_reply_error(r, 404, VX_E_NOT_FOUND,
                                      "flag '%.100s' has no release plan in %s", pc->flag, pc->env);
    case STORE_CONFLICT:
        return pc->what == CALL_START
                   ? http_reply_error(r, 409, VX_E_CONFLICT,
                                      "a release plan is already running for '%.100s' in %s: "
                                      "abort it first",
                                      pc->flag, pc->env)
                   : http_reply_error(r, 409, VX_E_CONFLICT,
                                      "the release plan of '%.100s' in %s is %s: it cannot %s",
                                      pc->flag, pc->env, plan_status_name(pc->plan.status),
                                      op_name(pc->op));
    case STORE_INVALID:
        return http_reply_error(r, 400, VX_E_INVALID_VALUE, "%s", pc->error);
    case STORE_UNAVAILABLE:
        return http_reply_unavailable(r, 2, "the database is unreachable; nothing was changed");
    default:
        return http_reply_unavailable(
            r, 2, "the database failed to apply the change; nothing was changed");
    }
}

enum http_rc api_plan_put(struct vx_req *r)
{
    struct plan_call *pc = http_db_job(r);
    struct vx_error err;
    json_t *body;

    if (pc != NULL)
        return reply_plan(r, pc, 201);
    if ((body = http_body_json(r, false)) == NULL)
        return HTTP_QUEUED;
    if ((pc = plan_call_new(r, CALL_START)) == NULL) {
        json_decref(body);
        return HTTP_QUEUED;
    }
    int bad = plan_from_json(body, &pc->plan, &err);
    json_decref(body);
    if (bad != 0) {
        plan_call_free(pc);
        return http_reply_error(r, 400, err.code, "%s", err.message);
    }
    snprintf(pc->plan.flag, sizeof pc->plan.flag, "%s", pc->flag);
    snprintf(pc->plan.env, sizeof pc->plan.env, "%s", pc->env);
    snprintf(pc->plan.started_by, sizeof pc->plan.started_by, "%s",
             r->token != NULL ? r->token->name : "");
    return http_run_db(r, plan_call_work, pc, plan_call_free);
}

enum http_rc api_plan_get(struct vx_req *r)
{
    struct plan_call *pc = http_db_job(r);

    if (pc != NULL)
        return reply_plan(r, pc, 200);
    pc = plan_call_new(r, CALL_GET);
    return pc != NULL ? http_run_db(r, plan_call_work, pc, plan_call_free) : HTTP_QUEUED;
}

/* POST /api/flags/<name>/plan/<op>. */
static enum http_rc plan_control(struct vx_req *r, enum plan_op op)
{
    struct plan_call *pc = http_db_job(r);

    if (pc != NULL)
        return reply_plan(r, pc, 200);
    if ((pc = plan_call_new(r, CALL_CONTROL)) == NULL)
        return HTTP_QUEUED;
    pc->op = op;
    return http_run_db(r, plan_call_work, pc, plan_call_free);
}

enum http_rc api_plan_pause(struct vx_req *r)
{
    return plan_control(r, PLAN_OP_PAUSE);
}

enum http_rc api_plan_resume(struct vx_req *r)
{
    return plan_control(r, PLAN_OP_RESUME);
}

enum http_rc api_plan_abort(struct vx_req *r)
{
    return plan_control(r, PLAN_OP_ABORT);
}

enum http_rc api_plan_advance(struct vx_req *r)
{
    return plan_control(r, PLAN_OP_ADVANCE);
}

enum http_rc api_plans_list(struct vx_req *r)
{
    struct plan_call *pc = http_db_job(r);

    if (pc != NULL && pc->st != STORE_OK)
        return reply_plan(r, pc, 200);
    if (pc != NULL) {
        json_t *out = pc->list;
        pc->list = NULL;
        return http_reply_json(r, 200, out);
    }
    const struct vx_env *e = http_query(r, "env") != NULL ? http_env(r, r->snap) : NULL;
    if (http_query(r, "env") != NULL && e == NULL)
        return HTTP_QUEUED;
    if ((pc = calloc(1, sizeof *pc)) == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    pc->what = CALL_LIST;
    snprintf(pc->env, sizeof pc->env, "%s", e != NULL ? e->name : "");
    return http_run_db(r, plan_call_work, pc, plan_call_free);
}

/* ---- alerts --------------------------------------------------------------- */

static const char *outcome_name(enum alert_outcome o)
{
    static const char *const names[] = {"disabled", "paused",       "none",
                                        "none",     "unknown_flag", "unknown_environment"};
    return names[o];
}

static const char *outcome_detail(enum alert_outcome o)
{
    static const char *const details[] = {
        "the flag was turned off",    "the release plan paused",
        "no release plan is running", "the release plan was already paused",
        "no flag has this name",      "no environment has this name"};
    return details[o];
}

static json_t *alerts_answer(const struct plan_call *pc)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < pc->n_items; i++) {
        const struct alert_item *it = &pc->items[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "alert", it->alert->name, "flag",
                              it->alert->flag, "environment", it->env, "action",
                              outcome_name(it->outcome), "detail", outcome_detail(it->outcome),
                              "plan", it->had_plan ? plan_to_json(&it->plan) : json_null());
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr != NULL ? json_pack("{s:o, s:I}", "results", arr, "ignored", (json_int_t)pc->ignored)
                       : NULL;
}

enum http_rc api_alerts(struct vx_req *r)
{
    struct plan_call *pc = http_db_job(r);
    struct vx_error err;
    size_t n;

    if (pc != NULL && pc->st != STORE_OK)
        return reply_plan(r, pc, 200);
    if (pc != NULL)
        return http_reply_json(r, 200, alerts_answer(pc));
    if ((pc = calloc(1, sizeof *pc)) == NULL)
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    pc->what = CALL_ALERTS;
    pc->now = time_now_us();
    if ((pc->body = http_body_json(r, false)) == NULL) {
        plan_call_free(pc);
        return HTTP_QUEUED;
    }
    if (plan_alerts_from_json(pc->body, &pc->alerts, &n, &err) != 0) {
        plan_call_free(pc);
        return http_reply_error(r, 400, err.code, "%s", err.message);
    }
    pc->items = calloc(n ? n : 1, sizeof *pc->items);
    if (pc->items == NULL) {
        plan_call_free(pc);
        return http_reply_error(r, 500, VX_E_INTERNAL, "out of memory");
    }
    /* Resolved alerts and alerts that name no flag change nothing. */
    const char *def = r->snap->envs[r->snap->default_env].name;
    for (size_t i = 0; i < n; i++) {
        if (!pc->alerts[i].firing || pc->alerts[i].flag == NULL) {
            pc->ignored++;
            continue;
        }
        pc->items[pc->n_items].alert = &pc->alerts[i];
        pc->items[pc->n_items].env = pc->alerts[i].env != NULL ? pc->alerts[i].env : def;
        pc->n_items++;
    }
    return http_run_db(r, plan_call_work, pc, plan_call_free);
}
