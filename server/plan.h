/* plan.h -- release plans and the alerts that stop them: the pure part
 * (docs/api.md §8).
 *
 * A plan is a list of rising percentages, each held for a while, applied to
 * one flag's state in one environment.  This module holds the rules: what a
 * valid plan is, how a plan moves from status to status (start, step,
 * pause, resume, advance, abort, halt), its JSON, and what an Alertmanager
 * webhook payload says.  The database (store_plans.c) stores plans and
 * takes their steps; the scheduler (plans.c) decides when. */
#ifndef VX_PLAN_H
#define VX_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "flag.h"
#include "vx.h"

#define PLAN_STEPS_MAX  20
#define PLAN_HOLD_MIN_S 1
#define PLAN_HOLD_MAX_S (INT64_C(90) * 86400)
#define PLAN_REASON_MAX 200
#define PLAN_ACTOR_MAX  (5 + 100) /* "plan:" + a token's name */

enum plan_status { PLAN_RUNNING, PLAN_PAUSED, PLAN_HALTED, PLAN_DONE, PLAN_ABORTED };
enum plan_on_alert { PLAN_ON_ALERT_DISABLE, PLAN_ON_ALERT_PAUSE };

struct plan_step {
    int percentage; /* 1-100, rising */
    int64_t hold_s; /* how long it is held before the next step; 0 on the last */
};

struct vx_plan {
    char flag[FLAG_NAME_MAX + 1];
    char env[ENV_NAME_MAX + 1];
    struct plan_step steps[PLAN_STEPS_MAX];
    int n_steps;
    enum plan_on_alert on_alert;
    enum plan_status status;
    int step;                            /* index of the step applied last */
    int64_t started_at;                  /* µs */
    int64_t next_at;                     /* µs; 0 unless running */
    int64_t updated_at;                  /* µs */
    char started_by[PLAN_ACTOR_MAX + 1]; /* the name of the token that started it */
    char reason[PLAN_REASON_MAX + 1];    /* why it paused or halted; "" when none */
};

const char *plan_status_name(enum plan_status s);
int plan_status_parse(const char *s, enum plan_status *out);
const char *plan_on_alert_name(enum plan_on_alert a);
int plan_on_alert_parse(const char *s, enum plan_on_alert *out);

/* Is the plan still in charge of its state (running or paused)?  Only one
 * such plan may exist per flag and environment. */
bool plan_active(const struct vx_plan *p);

/* The steps of a plan body's "steps" array into p->steps/n_steps: 1-20
 * steps, percentages 1-100 strictly rising, every hold but the last's
 * 1 s - 90 days (the last's is optional and ignored).  Also reads the
 * stored form (the same array).  0, or -1 with err naming the field. */
int plan_steps_from_json(const json_t *steps, struct vx_plan *p, struct vx_error *err);

/* The steps as stored and answered: [{percentage, hold_seconds}, ...,
 * {percentage}].  New reference; NULL on OOM. */
json_t *plan_steps_to_json(const struct vx_plan *p);

/* A PUT body {steps, on_alert?} (on_alert defaults to "disable"; any other
 * field is refused) into p's steps and on_alert.  0, or -1 with err. */
int plan_from_json(const json_t *body, struct vx_plan *p, struct vx_error *err);

/* {flag, environment, status, step, steps, on_alert, started_at, started_by,
 * next_at, reason, percentage} (percentage: the applied step's).  New
 * reference; NULL on OOM. */
json_t *plan_to_json(const struct vx_plan *p);

/* The transitions.  Each changes p and returns 0, or returns -1 and leaves
 * p alone when the plan's status does not allow it.  now is µs.
 *   start:   a new plan at its first step: running (done if it has one step)
 *   advance: the next step (running or paused): running, or done after the last
 *   pause:   running -> paused
 *   resume:  paused -> running, the current step held again in full
 *   abort:   running, paused or halted -> aborted; the state stays as it is
 *   halt:    running or paused -> halted (the flag was turned off)
 * reason (may be NULL) is kept for pause and halt, cleared otherwise (an
 * aborted plan has none). */
void plan_start(struct vx_plan *p, int64_t now);
int plan_advance(struct vx_plan *p, int64_t now);
int plan_pause(struct vx_plan *p, int64_t now, const char *reason);
int plan_resume(struct vx_plan *p, int64_t now);
int plan_abort(struct vx_plan *p, int64_t now);
int plan_halt(struct vx_plan *p, int64_t now, const char *reason);

/* ---- Alertmanager's webhook payload (version 4) ------------------------- */

/* What one alert of a payload asks of vexil. */
struct plan_alert {
    char name[128];   /* label alertname ("" when missing) */
    bool firing;      /* status "firing" (else "resolved") */
    const char *flag; /* label vexil_flag, NULL when absent */
    const char *env;  /* label vexil_env, NULL when absent */
    bool disable;     /* label vexil_action = "disable" */
};

/* The alerts of an Alertmanager webhook body: {"version": "4", "status",
 * "alerts": [{"status": "firing"|"resolved", "labels": {...}}, ...], ...}
 * (the other fields Alertmanager sends are accepted and not used).
 * *out (caller frees; strings point into body, which must outlive it) gets
 * one entry per alert, *n of them.  0, or -1 with err when the body is not
 * such a payload. */
int plan_alerts_from_json(const json_t *body, struct plan_alert **out, size_t *n,
                          struct vx_error *err);

#endif
