/* store_plans.c -- the plans table: release plans and the alerts that stop
 * them (store.h, docs/api.md §8).
 *
 * Why.  A plan's steps must each happen exactly once although every
 * instance runs a scheduler, and must survive every instance stopping.  So
 * the plan lives in PostgreSQL, and a step is taken in one transaction that
 * locks the flag's row, then the plan's row, checks under that lock that
 * the step is still due, writes the flag's state (an ordinary write:
 * event, version bump, NOTIFY) and moves the plan on.  Two schedulers that
 * find the same due step queue on the flag's lock; the second then sees
 * the plan already moved on and does nothing.
 *
 * Lock order.  Every transaction here locks the flag before the plan, as a
 * person's flag write does (it locks the flag, then pauses the plan through
 * store_plans_person_wrote()), so none of them can deadlock with another.
 *
 * The rules (what may follow what, when the next step falls due) are
 * plan.c's; this file loads a plan, calls them, and stores the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* clang-format off */
#define PLAN_COLUMNS \
    "flag, environment, steps::text, on_alert, status, step, " US("started_at") ", " \
    "started_by, " US("next_at") ", coalesce(reason, ''), " US("updated_at") " "

static const char SQL_FLAG_LOCK[] =
    "SELECT 1 FROM flags WHERE name = $1 FOR UPDATE";

static const char SQL_STATE_EXISTS[] =
    "SELECT 1 FROM flag_states WHERE flag = $1 AND environment = $2";

static const char SQL_PLAN_LOCK[] =
    "SELECT " PLAN_COLUMNS "FROM plans WHERE flag = $1 AND environment = $2 FOR UPDATE";

static const char SQL_PLAN_GET[] =
    "SELECT " PLAN_COLUMNS "FROM plans WHERE flag = $1 AND environment = $2";

static const char SQL_PLANS_LIST[] =
    "SELECT " PLAN_COLUMNS "FROM plans "
    "WHERE $1::text IS NULL OR environment = $1 "
    "ORDER BY flag COLLATE \"C\", environment COLLATE \"C\"";

static const char SQL_PLAN_WRITE[] =
    "INSERT INTO plans (flag, environment, steps, on_alert, status, step, started_at, "
                       "started_by, next_at, reason, updated_at) "
    "VALUES ($1, $2, $3::jsonb, $4, $5, $6, " TS(7) ", $8, "
            "CASE WHEN $9::bigint = 0 THEN NULL ELSE " TS(9) " END, NULLIF($10, ''), " TS(11) ") "
    "ON CONFLICT (flag, environment) DO UPDATE SET "
        "steps = EXCLUDED.steps, on_alert = EXCLUDED.on_alert, status = EXCLUDED.status, "
        "step = EXCLUDED.step, started_at = EXCLUDED.started_at, "
        "started_by = EXCLUDED.started_by, next_at = EXCLUDED.next_at, "
        "reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at";

/* A person moved the state: pause a running plan (turning it off halts
 * it: halt()). */
static const char SQL_PLAN_PERSON_PAUSE[] =
    "UPDATE plans SET status = 'paused', next_at = NULL, reason = $3, updated_at = " TS(4) " "
    "WHERE flag = $1 AND environment = $2 AND status = 'running'";


static const char SQL_PLANS_DUE[] =
    "SELECT flag, environment FROM plans "
    "WHERE status = 'running' AND next_at <= " TS(1) " "
    "ORDER BY next_at LIMIT $2";

static const char SQL_PLANS_NEXT_DUE[] =
    "SELECT " US("min(next_at)") " FROM plans WHERE status = 'running'";

static const char SQL_PLANS_COUNT[] =
    "SELECT status, count(*) FROM plans GROUP BY status";
/* clang-format on */

/* Row row of a PLAN_COLUMNS result into p.  0 or -1 (a row this server
 * did not write). */
static int plan_from_row(const PGresult *r, int row, struct vx_plan *p)
{
    json_t *steps = json_loads(PQgetvalue(r, row, 2), 0, NULL);
    int rc = plan_steps_from_json(steps, p, NULL);

    json_decref(steps);
    snprintf(p->flag, sizeof p->flag, "%s", PQgetvalue(r, row, 0));
    snprintf(p->env, sizeof p->env, "%s", PQgetvalue(r, row, 1));
    if (plan_on_alert_parse(PQgetvalue(r, row, 3), &p->on_alert) != 0 ||
        plan_status_parse(PQgetvalue(r, row, 4), &p->status) != 0)
        rc = -1;
    p->step = (int)store_int64(r, row, 5);
    if (p->step < 0 || p->step >= p->n_steps)
        rc = -1;
    p->started_at = store_int64(r, row, 6);
    snprintf(p->started_by, sizeof p->started_by, "%s", PQgetvalue(r, row, 7));
    p->next_at = store_int64(r, row, 8);
    snprintf(p->reason, sizeof p->reason, "%s", PQgetvalue(r, row, 9));
    p->updated_at = store_int64(r, row, 10);
    return rc;
}

/* The plan of flag in env by sql (locking or not) into *p; *found. */
static enum store_status plan_select(PGconn *c, const char *sql, const char *flag, const char *env,
                                     struct vx_plan *p, bool *found)
{
    const char *params[] = {flag, env};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, sql, 2, params, &st);

    *found = false;
    if (r == NULL)
        return st;
    if (PQntuples(r) == 1) {
        *found = true;
        if (plan_from_row(r, 0, p) != 0)
            st = store_fail(STORE_ERROR, "the plan of %s in %s cannot be read", flag, env);
    }
    PQclear(r);
    return st;
}

static enum store_status plan_write(PGconn *c, const struct vx_plan *p)
{
    char step[24], started[24], next[24], updated[24];
    json_t *arr = plan_steps_to_json(p);
    char *steps = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
    const char *params[] = {p->flag,
                            p->env,
                            steps,
                            plan_on_alert_name(p->on_alert),
                            plan_status_name(p->status),
                            store_itoa(p->step, step),
                            store_itoa(p->started_at, started),
                            p->started_by,
                            store_itoa(p->next_at, next),
                            p->reason,
                            store_itoa(p->updated_at, updated)};
    enum store_status st = steps != NULL ? store_command(c, SQL_PLAN_WRITE, 11, params, NULL)
                                         : store_fail(STORE_ERROR, "out of memory");

    free(steps);
    json_decref(arr);
    return st;
}

/* Lock flag's row: STORE_NOT_FOUND when there is none. */
static enum store_status lock_flag(PGconn *c, const char *flag)
{
    const char *params[] = {flag};
    long rows = 0;
    enum store_status st = store_command(c, SQL_FLAG_LOCK, 1, params, &rows);

    return st == STORE_OK && rows == 0 ? STORE_NOT_FOUND : st;
}

/* Does flag have a state in env (is env an environment)? */
static enum store_status state_exists(PGconn *c, const char *flag, const char *env, bool *exists)
{
    const char *params[] = {flag, env};
    long rows = 0;
    enum store_status st = store_command(c, SQL_STATE_EXISTS, 2, params, &rows);

    *exists = rows > 0;
    return st;
}

/* Apply the plan's current step to its state, as the plan. */
static enum store_status plan_apply_step(PGconn *c, const struct vx_plan *p, int64_t now,
                                         int64_t *version)
{
    char actor[PLAN_ACTOR_MAX + 8];

    snprintf(actor, sizeof actor, "plan:%s", p->started_by);
    return store_flag_state_set(c, p->flag, p->env, true, p->steps[p->step].percentage, "plan",
                                actor, now, version);
}

/* ---- start ---------------------------------------------------------------- */

struct plan_job {
    /* in */
    const char *flag, *env;
    enum plan_op op;
    int64_t now;
    /* in (start) and out */
    struct vx_plan *plan;
    /* out */
    int64_t version;
    bool taken; /* take_due: the step was still due and was taken */
};

static enum store_status plan_start_cb(PGconn *c, void *cls)
{
    struct plan_job *j = cls;
    struct vx_plan cur;
    bool found, exists;
    enum store_status st = lock_flag(c, j->plan->flag);

    j->version = 0;
    if (st == STORE_OK)
        st = state_exists(c, j->plan->flag, j->plan->env, &exists);
    if (st == STORE_OK && !exists)
        return store_fail(STORE_INVALID, "unknown environment \"%s\"", j->plan->env);
    if (st == STORE_OK)
        st = plan_select(c, SQL_PLAN_LOCK, j->plan->flag, j->plan->env, &cur, &found);
    if (st == STORE_OK && found && plan_active(&cur))
        return STORE_CONFLICT;
    if (st != STORE_OK)
        return st;
    plan_start(j->plan, j->now);
    st = plan_apply_step(c, j->plan, j->now, &j->version);
    return st == STORE_OK ? plan_write(c, j->plan) : st;
}

enum store_status store_plan_start(PGconn *c, struct vx_plan *p, int64_t now, int64_t *version)
{
    struct plan_job j = {.plan = p, .now = now};
    enum store_status st = store_write_transaction(c, plan_start_cb, &j);

    if (version != NULL)
        *version = st == STORE_OK ? j.version : 0;
    return st;
}

/* ---- read ----------------------------------------------------------------- */

enum store_status store_plan_get(PGconn *c, const char *flag, const char *env, struct vx_plan *out)
{
    bool found;
    enum store_status st = plan_select(c, SQL_PLAN_GET, flag, env, out, &found);

    return st == STORE_OK && !found ? STORE_NOT_FOUND : st;
}

static enum store_status plans_list_select(PGconn *c, const void *arg, json_t **out)
{
    const char *params[] = {arg};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_PLANS_LIST, 1, params, &st);
    json_t *arr = r != NULL ? json_array() : NULL;

    for (int i = 0; arr != NULL && i < PQntuples(r); i++) {
        struct vx_plan p;
        if (plan_from_row(r, i, &p) != 0 || json_array_append_new(arr, plan_to_json(&p)) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (r != NULL && arr == NULL)
        st = store_fail(STORE_ERROR, "the plans cannot be read");
    PQclear(r);
    *out = arr != NULL ? store_wrap("plans", arr) : NULL;
    return st == STORE_OK && *out == NULL ? store_fail(STORE_ERROR, "out of memory") : st;
}

enum store_status store_plans_list(PGconn *c, const char *env, json_t **out)
{
    return store_read_json(c, plans_list_select, env, out);
}

enum store_status store_plans_count(PGconn *c, int64_t counts[5])
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_PLANS_COUNT, 0, NULL, &st);

    memset(counts, 0, 5 * sizeof counts[0]);
    for (int i = 0; r != NULL && i < PQntuples(r); i++) {
        enum plan_status s;
        if (plan_status_parse(PQgetvalue(r, i, 0), &s) == 0)
            counts[s] = store_int64(r, i, 1);
    }
    PQclear(r);
    return st;
}

/* ---- control -------------------------------------------------------------- */

static enum store_status plan_control_cb(PGconn *c, void *cls)
{
    struct plan_job *j = cls;
    bool found;
    int rc = -1;
    enum store_status st = lock_flag(c, j->flag);

    j->version = 0;
    if (st == STORE_OK)
        st = plan_select(c, SQL_PLAN_LOCK, j->flag, j->env, j->plan, &found);
    if (st == STORE_OK && !found)
        st = STORE_NOT_FOUND;
    if (st != STORE_OK)
        return st;
    switch (j->op) {
    case PLAN_OP_PAUSE:
        rc = plan_pause(j->plan, j->now, "paused by a person");
        break;
    case PLAN_OP_RESUME:
        rc = plan_resume(j->plan, j->now);
        break;
    case PLAN_OP_ABORT:
        rc = plan_abort(j->plan, j->now);
        break;
    case PLAN_OP_ADVANCE:
        rc = plan_advance(j->plan, j->now);
        if (rc == 0)
            st = plan_apply_step(c, j->plan, j->now, &j->version);
        break;
    }
    if (rc != 0)
        return STORE_CONFLICT;
    return st == STORE_OK ? plan_write(c, j->plan) : st;
}

enum store_status store_plan_control(PGconn *c, const char *flag, const char *env, enum plan_op op,
                                     int64_t now, struct vx_plan *out, int64_t *version)
{
    struct plan_job j = {.flag = flag, .env = env, .op = op, .now = now, .plan = out};
    enum store_status st = store_write_transaction(c, plan_control_cb, &j);

    if (version != NULL)
        *version = st == STORE_OK ? j.version : 0;
    return st;
}

/* Halt p (locked, active) for reason, and record the webhook event
 * flag.plan_halted with the plan before and after (docs/api.md §9). */
static enum store_status halt(PGconn *c, struct vx_plan *p, int64_t now, const char *reason,
                              const char *actor)
{
    json_t *before = plan_to_json(p), *after = NULL, *envs = json_pack("[s]", p->env);
    enum store_status st = STORE_OK;

    if (plan_halt(p, now, reason) != 0) {
        json_decref(before);
        json_decref(envs);
        return STORE_OK; /* not active: nothing to halt */
    }
    after = plan_to_json(p);
    if (before == NULL || after == NULL || envs == NULL)
        st = store_fail(STORE_ERROR, "out of memory");
    if (st == STORE_OK)
        st = plan_write(c, p);
    if (st == STORE_OK)
        st = store_outbox_insert(c, "flag.plan_halted", "flag", p->flag, now, actor, envs, before,
                                 after);
    json_decref(before);
    json_decref(after);
    json_decref(envs);
    return st;
}

enum store_status store_plans_person_wrote(PGconn *c, const char *flag, const char *env,
                                           bool turned_off, const char *actor, int64_t now)
{
    char reason[PLAN_REASON_MAX + 1], at[24];
    const char *params[] = {flag, env, reason, store_itoa(now, at)};
    struct vx_plan p;
    bool found;
    enum store_status st;

    snprintf(reason, sizeof reason, "%s by %s", turned_off ? "turned off" : "state changed", actor);
    if (!turned_off)
        return store_command(c, SQL_PLAN_PERSON_PAUSE, 4, params, NULL);
    st = plan_select(c, SQL_PLAN_LOCK, flag, env, &p, &found);
    return st == STORE_OK && found ? halt(c, &p, now, reason, actor) : st;
}

/* ---- the scheduler's steps ------------------------------------------------ */

static enum store_status plan_take_cb(PGconn *c, void *cls)
{
    struct plan_job *j = cls;
    bool found = false;
    enum store_status st = lock_flag(c, j->flag);

    j->version = 0;
    j->taken = false;
    if (st == STORE_NOT_FOUND) /* deleted meanwhile: its plan went with it */
        return STORE_OK;
    if (st == STORE_OK)
        st = plan_select(c, SQL_PLAN_LOCK, j->flag, j->env, j->plan, &found);
    /* Another instance may have taken the step since we looked. */
    if (st != STORE_OK || !found || j->plan->status != PLAN_RUNNING || j->plan->next_at > j->now)
        return st;
    if (plan_advance(j->plan, j->now) != 0)
        return store_fail(STORE_ERROR, "the plan of %s in %s has no next step", j->flag, j->env);
    st = plan_apply_step(c, j->plan, j->now, &j->version);
    if (st == STORE_OK)
        st = plan_write(c, j->plan);
    j->taken = st == STORE_OK;
    return st;
}

enum store_status store_plans_take_due(PGconn *c, int64_t now, int max, int *taken,
                                       int64_t *version, int64_t *next_due)
{
    char at[24], lim[24];
    const char *params[] = {store_itoa(now, at), store_itoa(max, lim)};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_PLANS_DUE, 2, params, &st);

    *taken = 0;
    *version = 0;
    *next_due = 0;
    for (int i = 0; r != NULL && st == STORE_OK && i < PQntuples(r); i++) {
        struct vx_plan p;
        struct plan_job j = {
            .flag = PQgetvalue(r, i, 0), .env = PQgetvalue(r, i, 1), .now = now, .plan = &p};
        st = store_write_transaction(c, plan_take_cb, &j);
        if (st == STORE_OK && j.taken) {
            (*taken)++;
            if (j.version > *version)
                *version = j.version;
        }
    }
    PQclear(r);
    if (st == STORE_OK)
        st = store_query_int64(c, SQL_PLANS_NEXT_DUE, 0, NULL, next_due);
    return st;
}

/* ---- alerts --------------------------------------------------------------- */

struct alert_job {
    const char *flag, *env, *name;
    bool disable;
    int64_t now;
    /* out */
    enum alert_outcome outcome;
    struct vx_plan *plan;
    bool had_plan;
    int64_t version;
};

static enum store_status alert_cb(PGconn *c, void *cls)
{
    struct alert_job *j = cls;
    char actor[8 + sizeof((struct plan_alert *)0)->name], reason[PLAN_REASON_MAX + 1];
    bool exists, active;
    enum store_status st = lock_flag(c, j->flag);

    j->version = 0;
    j->had_plan = false;
    if (st == STORE_NOT_FOUND) {
        j->outcome = ALERT_UNKNOWN_FLAG;
        return STORE_OK;
    }
    if (st == STORE_OK)
        st = state_exists(c, j->flag, j->env, &exists);
    if (st == STORE_OK && !exists) {
        j->outcome = ALERT_UNKNOWN_ENV;
        return STORE_OK;
    }
    if (st == STORE_OK)
        st = plan_select(c, SQL_PLAN_LOCK, j->flag, j->env, j->plan, &j->had_plan);
    if (st != STORE_OK)
        return st;
    active = j->had_plan && plan_active(j->plan);
    snprintf(actor, sizeof actor, "alert:%s", j->name);
    snprintf(reason, sizeof reason, "alert %s fired", j->name);
    if (j->disable || (active && j->plan->on_alert == PLAN_ON_ALERT_DISABLE)) {
        j->outcome = ALERT_DISABLED;
        st = store_flag_state_set(c, j->flag, j->env, false, -1, "alert", actor, j->now,
                                  &j->version);
        if (st == STORE_OK && active)
            st = halt(c, j->plan, j->now, reason, actor);
        return st;
    }
    if (!active) {
        j->outcome = ALERT_NO_PLAN;
        return STORE_OK;
    }
    if (plan_pause(j->plan, j->now, reason) != 0) {
        j->outcome = ALERT_ALREADY;
        return STORE_OK;
    }
    j->outcome = ALERT_PAUSED;
    return plan_write(c, j->plan);
}

enum store_status store_alert_apply(PGconn *c, const char *flag, const char *env,
                                    const char *alertname, bool disable, int64_t now,
                                    enum alert_outcome *outcome, struct vx_plan *plan_out,
                                    bool *had_plan, int64_t *version)
{
    struct alert_job j = {.flag = flag,
                          .env = env,
                          .name = alertname,
                          .disable = disable,
                          .now = now,
                          .plan = plan_out};
    enum store_status st = store_write_transaction(c, alert_cb, &j);

    *outcome = j.outcome;
    *had_plan = st == STORE_OK && j.had_plan;
    if (version != NULL)
        *version = st == STORE_OK ? j.version : 0;
    return st;
}
