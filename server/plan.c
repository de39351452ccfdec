/* plan.c -- release plans: validation, transitions, JSON, and Alertmanager's
 * payload (plan.h).
 *
 * Why here and pure.  Whether a plan may pause, what its next time is and
 * what an alert asks for are rules that every path shares: the HTTP
 * handlers, the scheduler of every instance, the alert endpoint.  Keeping
 * them out of SQL and out of the handlers puts each rule in one place, where
 * the unit tests reach it (tests/unit/test_plan.c); the database code only
 * loads a plan, calls one of these, and stores the result. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

static const char *const STATUS_NAMES[] = {"running", "paused", "halted", "done", "aborted"};
static const char *const ON_ALERT_NAMES[] = {"disable", "pause"};

const char *plan_status_name(enum plan_status s)
{
    return STATUS_NAMES[s];
}

/* The index of s in names[0..n), or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

int plan_status_parse(const char *s, enum plan_status *out)
{
    int i = name_index(STATUS_NAMES, sizeof STATUS_NAMES / sizeof STATUS_NAMES[0], s);

    if (i >= 0)
        *out = (enum plan_status)i;
    return i >= 0 ? 0 : -1;
}

const char *plan_on_alert_name(enum plan_on_alert a)
{
    return ON_ALERT_NAMES[a];
}

int plan_on_alert_parse(const char *s, enum plan_on_alert *out)
{
    int i = name_index(ON_ALERT_NAMES, sizeof ON_ALERT_NAMES / sizeof ON_ALERT_NAMES[0], s);

    if (i >= 0)
        *out = (enum plan_on_alert)i;
    return i >= 0 ? 0 : -1;
}

bool plan_active(const struct vx_plan *p)
{
    return p->status == PLAN_RUNNING || p->status == PLAN_PAUSED;
}

/* ---- validation ----------------------------------------------------------- */

static int step_from_json(const json_t *o, size_t i, size_t n, int prev, struct plan_step *out,
                          struct vx_error *err)
{
    const char *key;
    const json_t *v;
    bool last = i + 1 == n;

    if (!json_is_object(o))
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "steps[%zu] must be an object {percentage, hold_seconds}", i);
    json_object_foreach((json_t *)o, key, v)
    {
        if (strcmp(key, "percentage") != 0 && strcmp(key, "hold_seconds") != 0)
            return vx_fail(err, VX_E_UNKNOWN_FIELD, "steps[%zu]: unknown field '%.100s'", i, key);
    }
    v = json_object_get(o, "percentage");
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100)
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "steps[%zu].percentage must be an integer from 1 to 100", i);
    out->percentage = (int)json_integer_value(v);
    if (out->percentage <= prev)
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "steps[%zu].percentage must be above the step before it (%d)", i, prev);
    v = json_object_get(o, "hold_seconds");
    out->hold_s = 0;
    if (v == NULL && last)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < PLAN_HOLD_MIN_S ||
        json_integer_value(v) > PLAN_HOLD_MAX_S)
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "steps[%zu].hold_seconds must be an integer from %d to %lld (90 days)%s", i,
                       PLAN_HOLD_MIN_S, (long long)PLAN_HOLD_MAX_S,
                       last ? " or absent on the last step" : "");
    if (!last) /* the last step's hold has nothing to wait for */
        out->hold_s = json_integer_value(v);
    return 0;
}

int plan_steps_from_json(const json_t *steps, struct vx_plan *p, struct vx_error *err)
{
    size_t n = json_array_size(steps);
    int prev = 0;

    if (!json_is_array(steps) || n < 1 || n > PLAN_STEPS_MAX)
        return vx_fail(err, VX_E_INVALID_VALUE, "steps must be an array of 1 to %d steps",
                       PLAN_STEPS_MAX);
    for (size_t i = 0; i < n; i++) {
        if (step_from_json(json_array_get(steps, i), i, n, prev, &p->steps[i], err) != 0)
            return -1;
        prev = p->steps[i].percentage;
    }
    p->n_steps = (int)n;
    return 0;
}

json_t *plan_steps_to_json(const struct vx_plan *p)
{
    json_t *arr = json_array();

    for (int i = 0; arr != NULL && i < p->n_steps; i++) {
        json_t *o = json_pack("{s:i}", "percentage", p->steps[i].percentage);
        if (o != NULL && i + 1 < p->n_steps &&
            json_object_set_new(o, "hold_seconds", json_integer(p->steps[i].hold_s)) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

int plan_from_json(const json_t *body, struct vx_plan *p, struct vx_error *err)
{
    const char *key;
    const json_t *v;

    if (!json_is_object(body))
        return vx_fail(err, VX_E_INVALID_VALUE, "the body must be a JSON object {steps, on_alert}");
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "steps") != 0 && strcmp(key, "on_alert") != 0)
            return vx_fail(err, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
    }
    if (json_object_get(body, "steps") == NULL)
        return vx_fail(err, VX_E_INVALID_VALUE, "steps is required");
    if (plan_steps_from_json(json_object_get(body, "steps"), p, err) != 0)
        return -1;
    p->on_alert = PLAN_ON_ALERT_DISABLE;
    v = json_object_get(body, "on_alert");
    if (v != NULL &&
        (!json_is_string(v) || plan_on_alert_parse(json_string_value(v), &p->on_alert) != 0))
        return vx_fail(err, VX_E_INVALID_VALUE, "on_alert must be \"disable\" or \"pause\"");
    return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static json_t *time_or_null(int64_t us)
{
    char buf[40];

    return us > 0 ? json_string(time_format_rfc3339(us, buf, sizeof buf)) : json_null();
}

json_t *plan_to_json(const struct vx_plan *p)
{
    char started[40];

    return json_pack("{s:s, s:s, s:s, s:i, s:i, s:o, s:s, s:s, s:s, s:o, s:o}", "flag", p->flag,
                     "environment", p->env, "status", plan_status_name(p->status), "step", p->step,
                     "percentage", p->steps[p->step].percentage, "steps", plan_steps_to_json(p),
                     "on_alert", plan_on_alert_name(p->on_alert), "started_at",
                     time_format_rfc3339(p->started_at, started, sizeof started), "started_by",
                     p->started_by, "next_at", time_or_null(p->next_at), "reason",
                     p->reason[0] != '\0' ? json_string(p->reason) : json_null());
}

/* ---- transitions ---------------------------------------------------------- */

static void set_reason(struct vx_plan *p, const char *reason)
{
    snprintf(p->reason, sizeof p->reason, "%s", reason != NULL ? reason : "");
}

/* Hold step p->step from now; or done after the last. */
static void plan_hold(struct vx_plan *p, int64_t now)
{
    if (p->step + 1 >= p->n_steps) {
        p->status = PLAN_DONE;
        p->next_at = 0;
    } else {
        p->status = PLAN_RUNNING;
        p->next_at = now + p->steps[p->step].hold_s * 1000000;
    }
    p->updated_at = now;
}

void plan_start(struct vx_plan *p, int64_t now)
{
    p->step = 0;
    p->started_at = now;
    set_reason(p, NULL);
    plan_hold(p, now);
}

int plan_advance(struct vx_plan *p, int64_t now)
{
    if (!plan_active(p) || p->step + 1 >= p->n_steps)
        return -1;
    p->step++;
    set_reason(p, NULL);
    plan_hold(p, now);
    return 0;
}

/* The plan stops taking steps, with status s, for reason (NULL: none). */
static void plan_stop(struct vx_plan *p, enum plan_status s, int64_t now, const char *reason)
{
    p->status = s;
    p->next_at = 0;
    p->updated_at = now;
    set_reason(p, reason);
}

int plan_pause(struct vx_plan *p, int64_t now, const char *reason)
{
    if (p->status != PLAN_RUNNING)
        return -1;
    plan_stop(p, PLAN_PAUSED, now, reason);
    return 0;
}

int plan_resume(struct vx_plan *p, int64_t now)
{
    if (p->status != PLAN_PAUSED)
        return -1;
    set_reason(p, NULL);
    plan_hold(p, now);
    return 0;
}

int plan_abort(struct vx_plan *p, int64_t now)
{
    if (!plan_active(p) && p->status != PLAN_HALTED)
        return -1;
    plan_stop(p, PLAN_ABORTED, now, NULL);
    return 0;
}

int plan_halt(struct vx_plan *p, int64_t now, const char *reason)
{
    if (!plan_active(p))
        return -1;
    plan_stop(p, PLAN_HALTED, now, reason);
    return 0;
}

/* ---- Alertmanager --------------------------------------------------------- */

/* Label key of labels as a string, NULL when absent; -1 when not a string. */
static int label(const json_t *labels, const char *key, const char **out)
{
    const json_t *v = json_object_get(labels, key);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static int alert_from_json(const json_t *a, size_t i, struct plan_alert *out, struct vx_error *err)
{
    const json_t *labels = json_object_get(a, "labels");
    const char *status = json_string_value(json_object_get(a, "status"));
    const char *name, *action;

    const char *key;
    const json_t *v;

    if (!json_is_object(a) || status == NULL || !json_is_object(labels))
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "alerts[%zu] must be an object with a status and labels", i);
    json_object_foreach((json_t *)labels, key, v)
    {
        if (!json_is_string(v)) /* Alertmanager's labels are strings, every one */
            return vx_fail(err, VX_E_INVALID_VALUE, "alerts[%zu].labels.%.64s must be a string", i,
                           key);
    }
    if (strcmp(status, "firing") != 0 && strcmp(status, "resolved") != 0)
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "alerts[%zu].status must be \"firing\" or \"resolved\"", i);
    if (label(labels, "alertname", &name) != 0 || label(labels, "vexil_flag", &out->flag) != 0 ||
        label(labels, "vexil_env", &out->env) != 0 || label(labels, "vexil_action", &action) != 0)
        return vx_fail(err, VX_E_INVALID_VALUE, "alerts[%zu].labels must be strings", i);
    out->firing = strcmp(status, "firing") == 0;
    out->disable = action != NULL && strcmp(action, "disable") == 0;
    snprintf(out->name, sizeof out->name, "%s", name != NULL ? name : "");
    return 0;
}

int plan_alerts_from_json(const json_t *body, struct plan_alert **out, size_t *n,
                          struct vx_error *err)
{
    const json_t *alerts = json_object_get(body, "alerts");
    const char *version = json_string_value(json_object_get(body, "version"));
    size_t count = json_array_size(alerts);

    *out = NULL;
    *n = 0;
    if (!json_is_object(body) || version == NULL || !json_is_array(alerts))
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "not an Alertmanager webhook payload: it needs \"version\" and \"alerts\"");
    if (strcmp(version, "4") != 0)
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "Alertmanager webhook payload version \"%.20s\" is not supported (4 is)",
                       version);
    struct plan_alert *list = calloc(count ? count : 1, sizeof *list);
    if (list == NULL)
        return vx_fail(err, VX_E_INTERNAL, "out of memory");
    for (size_t i = 0; i < count; i++)
        if (alert_from_json(json_array_get(alerts, i), i, &list[i], err) != 0) {
            free(list);
            return -1;
        }
    *out = list;
    *n = count;
    return 0;
}
