/* test_plan.c -- release plans: what a valid plan is, how a plan moves
 * from status to status, its JSON, and Alertmanager's payload. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "unit.h"

#define S  INT64_C(1000000)
#define T0 (INT64_C(1795673499123) * 1000) /* 2026-11-26T06:11:39.123Z */

/* A plan parsed from a PUT body, or a failed test. */
static struct vx_plan parse(const char *text)
{
    struct vx_plan p;
    struct vx_error err = {0};
    json_t *body = json_loads(text, 0, NULL);

    memset(&p, 0, sizeof p);
    ck_assert_ptr_nonnull(body);
    ck_assert_msg(plan_from_json(body, &p, &err) == 0, "%s: %s", text, err.message);
    json_decref(body);
    return p;
}

static const char LADDER[] = "{\"steps\":[{\"percentage\":5,\"hold_seconds\":3600},"
                             "{\"percentage\":25,\"hold_seconds\":86400},"
                             "{\"percentage\":50,\"hold_seconds\":86400},"
                             "{\"percentage\":100}]}";

START_TEST(test_parse_ladder)
{
    struct vx_plan p = parse(LADDER);

    ck_assert_int_eq(p.n_steps, 4);
    ck_assert_int_eq(p.steps[0].percentage, 5);
    ck_assert_int_eq(p.steps[0].hold_s, 3600);
    ck_assert_int_eq(p.steps[2].hold_s, 86400);
    ck_assert_int_eq(p.steps[3].percentage, 100);
    ck_assert_int_eq(p.steps[3].hold_s, 0);
    ck_assert_int_eq(p.on_alert, PLAN_ON_ALERT_DISABLE); /* the default */
    p = parse("{\"steps\":[{\"percentage\":100,\"hold_seconds\":5}],\"on_alert\":\"pause\"}");
    ck_assert_int_eq(p.n_steps, 1);
    ck_assert_int_eq(p.steps[0].hold_s, 0); /* the last step's hold is ignored */
    ck_assert_int_eq(p.on_alert, PLAN_ON_ALERT_PAUSE);
}
END_TEST

/* Bodies refused, with the code and a word the message must hold. */
static const struct {
    const char *body, *code, *says;
} bad[] = {
    {"[]", VX_E_INVALID_VALUE, "object"},
    {"{}", VX_E_INVALID_VALUE, "steps is required"},
    {"{\"steps\":[]}", VX_E_INVALID_VALUE, "1 to 20"},
    {"{\"steps\":{}}", VX_E_INVALID_VALUE, "1 to 20"},
    {"{\"steps\":[{\"percentage\":5,\"hold_seconds\":1},{\"percentage\":5}]}", VX_E_INVALID_VALUE,
     "steps[1].percentage must be above"},
    {"{\"steps\":[{\"percentage\":50,\"hold_seconds\":1},{\"percentage\":25}]}", VX_E_INVALID_VALUE,
     "above the step before it (50)"},
    {"{\"steps\":[{\"percentage\":0}]}", VX_E_INVALID_VALUE, "1 to 100"},
    {"{\"steps\":[{\"percentage\":101}]}", VX_E_INVALID_VALUE, "1 to 100"},
    {"{\"steps\":[{\"percentage\":5.5}]}", VX_E_INVALID_VALUE, "1 to 100"},
    {"{\"steps\":[{\"percentage\":\"5\"}]}", VX_E_INVALID_VALUE, "1 to 100"},
    {"{\"steps\":[{\"percentage\":5},{\"percentage\":10}]}", VX_E_INVALID_VALUE,
     "steps[0].hold_seconds"},
    {"{\"steps\":[{\"percentage\":5,\"hold_seconds\":0},{\"percentage\":10}]}", VX_E_INVALID_VALUE,
     "1 to 7776000"},
    {"{\"steps\":[{\"percentage\":5,\"hold_seconds\":7776001},{\"percentage\":10}]}",
     VX_E_INVALID_VALUE, "90 days"},
    {"{\"steps\":[{\"percentage\":5,\"hold_seconds\":-1},{\"percentage\":10}]}", VX_E_INVALID_VALUE,
     "hold_seconds"},
    {"{\"steps\":[{\"percentage\":100,\"hold_seconds\":0}]}", VX_E_INVALID_VALUE,
     "absent on the last step"},
    {"{\"steps\":[5]}", VX_E_INVALID_VALUE, "steps[0] must be an object"},
    {"{\"steps\":[{\"percentage\":5,\"wait\":1}]}", VX_E_UNKNOWN_FIELD, "steps[0]: unknown field"},
    {"{\"steps\":[{\"percentage\":5}],\"name\":\"x\"}", VX_E_UNKNOWN_FIELD, "unknown field 'name'"},
    {"{\"steps\":[{\"percentage\":5}],\"on_alert\":\"rollback\"}", VX_E_INVALID_VALUE, "on_alert"},
    {"{\"steps\":[{\"percentage\":5}],\"on_alert\":true}", VX_E_INVALID_VALUE, "on_alert"},
};

START_TEST(test_parse_rejects)
{
    struct vx_plan p;
    struct vx_error err = {0};
    json_t *body = json_loads(bad[_i].body, 0, NULL);

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(plan_from_json(body, &p, &err), -1);
    ck_assert_str_eq(err.code, bad[_i].code);
    ck_assert_msg(strstr(err.message, bad[_i].says) != NULL, "%s: '%s' lacks '%s'", bad[_i].body,
                  err.message, bad[_i].says);
    json_decref(body);
}
END_TEST

START_TEST(test_parse_limits)
{
    /* 20 steps are allowed, 21 are not. */
    char text[4096];
    size_t n = 0;
    struct vx_plan p;
    struct vx_error err = {0};

    for (int steps = 20; steps <= 21; steps++) {
        n = (size_t)snprintf(text, sizeof text, "{\"steps\":[");
        for (int i = 1; i <= steps; i++)
            n += (size_t)snprintf(text + n, sizeof text - n,
                                  "%s{\"percentage\":%d,\"hold_seconds\":%d}", i > 1 ? "," : "",
                                  i * 4, i == 1 ? PLAN_HOLD_MIN_S : (int)PLAN_HOLD_MAX_S);
        snprintf(text + n, sizeof text - n, "]}");
        json_t *body = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(body);
        ck_assert_int_eq(plan_from_json(body, &p, &err), steps == 20 ? 0 : -1);
        json_decref(body);
    }
    ck_assert_int_eq(p.n_steps, 20); /* from the accepted one */
}
END_TEST

START_TEST(test_json_round_trip)
{
    struct vx_plan p = parse(LADDER), q;
    struct vx_error err = {0};

    strcpy(p.flag, "checkout.v2");
    strcpy(p.env, "production");
    strcpy(p.started_by, "anna");
    plan_start(&p, T0);
    json_t *o = plan_to_json(&p);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "running");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "step")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "percentage")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(o, "started_at")),
                     "2026-11-26T06:11:39.123Z");
    ck_assert_str_eq(json_string_value(json_object_get(o, "next_at")),
                     "2026-11-26T07:11:39.123Z"); /* an hour later */
    ck_assert(json_is_null(json_object_get(o, "reason")));
    ck_assert_str_eq(json_string_value(json_object_get(o, "on_alert")), "disable");
    /* The stored steps read back the same. */
    memset(&q, 0, sizeof q);
    ck_assert_int_eq(plan_steps_from_json(json_object_get(o, "steps"), &q, &err), 0);
    ck_assert_int_eq(q.n_steps, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(q.steps[i].percentage, p.steps[i].percentage);
        ck_assert_int_eq(q.steps[i].hold_s, p.steps[i].hold_s);
    }
    ck_assert_ptr_null(
        json_object_get(json_array_get(json_object_get(o, "steps"), 3), "hold_seconds"));
    json_decref(o);
}
END_TEST

START_TEST(test_steps_and_done)
{
    struct vx_plan p = parse(LADDER);

    plan_start(&p, T0);
    ck_assert_int_eq(p.status, PLAN_RUNNING);
    ck_assert_int_eq(p.next_at, T0 + 3600 * S);
    ck_assert_int_eq(plan_advance(&p, T0 + 3600 * S), 0);
    ck_assert_int_eq(p.step, 1);
    ck_assert_int_eq(p.next_at, T0 + 3600 * S + 86400 * S); /* from when the step was taken */
    ck_assert_int_eq(plan_advance(&p, T0 + 2 * S), 0);
    ck_assert_int_eq(p.step, 2);
    ck_assert_int_eq(p.next_at, T0 + 2 * S + 86400 * S);
    ck_assert_int_eq(plan_advance(&p, T0 + 3 * S), 0);
    ck_assert_int_eq(p.step, 3);
    ck_assert_int_eq(p.status, PLAN_DONE);
    ck_assert_int_eq(p.next_at, 0);
    ck_assert_int_eq(plan_advance(&p, T0 + 4 * S), -1); /* nothing after the last */
    ck_assert_int_eq(p.step, 3);
    /* A one-step plan is done at once. */
    p = parse("{\"steps\":[{\"percentage\":100}]}");
    plan_start(&p, T0);
    ck_assert_int_eq(p.status, PLAN_DONE);
    ck_assert_int_eq(p.next_at, 0);
}
END_TEST

START_TEST(test_pause_resume)
{
    struct vx_plan p = parse(LADDER);

    plan_start(&p, T0);
    ck_assert_int_eq(plan_resume(&p, T0), -1); /* not paused */
    ck_assert_int_eq(plan_pause(&p, T0 + S, "state changed by anna"), 0);
    ck_assert_int_eq(p.status, PLAN_PAUSED);
    ck_assert_int_eq(p.next_at, 0);
    ck_assert_str_eq(p.reason, "state changed by anna");
    ck_assert_int_eq(plan_pause(&p, T0 + 2 * S, "again"), -1); /* already paused */
    ck_assert_str_eq(p.reason, "state changed by anna");
    ck_assert_int_eq(plan_resume(&p, T0 + 10 * S), 0);
    ck_assert_int_eq(p.status, PLAN_RUNNING);
    ck_assert_int_eq(p.next_at, T0 + 10 * S + 3600 * S); /* the hold starts again in full */
    ck_assert_str_eq(p.reason, "");
    /* Advancing a paused plan runs it again. */
    ck_assert_int_eq(plan_pause(&p, T0 + 11 * S, NULL), 0);
    ck_assert_int_eq(plan_advance(&p, T0 + 12 * S), 0);
    ck_assert_int_eq(p.status, PLAN_RUNNING);
    ck_assert_int_eq(p.step, 1);
}
END_TEST

START_TEST(test_halt_and_abort)
{
    struct vx_plan p = parse(LADDER);

    plan_start(&p, T0);
    ck_assert_int_eq(plan_halt(&p, T0 + S, "alert CheckoutErrors fired"), 0);
    ck_assert_int_eq(p.status, PLAN_HALTED);
    ck_assert_int_eq(p.next_at, 0);
    ck_assert_str_eq(p.reason, "alert CheckoutErrors fired");
    ck_assert(!plan_active(&p));
    ck_assert_int_eq(plan_halt(&p, T0 + S, "again"), -1);
    ck_assert_int_eq(plan_resume(&p, T0 + S), -1);
    ck_assert_int_eq(plan_advance(&p, T0 + S), -1);
    ck_assert_int_eq(plan_pause(&p, T0 + S, NULL), -1);
    ck_assert_int_eq(plan_abort(&p, T0 + 2 * S), 0); /* a halted plan may be aborted */
    ck_assert_int_eq(p.status, PLAN_ABORTED);
    ck_assert_int_eq(plan_abort(&p, T0 + 3 * S), -1);
    /* A paused plan halts too; a done one neither halts nor aborts. */
    p = parse(LADDER);
    plan_start(&p, T0);
    plan_pause(&p, T0, NULL);
    ck_assert_int_eq(plan_halt(&p, T0, "turned off by anna"), 0);
    p = parse("{\"steps\":[{\"percentage\":100}]}");
    plan_start(&p, T0);
    ck_assert_int_eq(plan_halt(&p, T0, "x"), -1);
    ck_assert_int_eq(plan_abort(&p, T0), -1);
}
END_TEST

START_TEST(test_names)
{
    enum plan_status s;
    enum plan_on_alert a;

    for (int i = PLAN_RUNNING; i <= PLAN_ABORTED; i++) {
        ck_assert_int_eq(plan_status_parse(plan_status_name((enum plan_status)i), &s), 0);
        ck_assert_int_eq(s, i);
    }
    ck_assert_int_eq(plan_status_parse("stopped", &s), -1);
    ck_assert_int_eq(plan_on_alert_parse("pause", &a), 0);
    ck_assert_int_eq(a, PLAN_ON_ALERT_PAUSE);
    ck_assert_int_eq(plan_on_alert_parse("Pause", &a), -1);
}
END_TEST

/* ---- Alertmanager --------------------------------------------------------- */

/* The example of Alertmanager's documentation (webhook_config), with
 * vexil's labels on its alerts. */
static const char PAYLOAD[] =
    "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"CheckoutErrors\\\"}\","
    "\"truncatedAlerts\":0,\"status\":\"firing\",\"receiver\":\"vexil\","
    "\"groupLabels\":{\"alertname\":\"CheckoutErrors\"},"
    "\"commonLabels\":{\"alertname\":\"CheckoutErrors\",\"severity\":\"page\"},"
    "\"commonAnnotations\":{\"summary\":\"checkout errors above 5 %\"},"
    "\"externalURL\":\"http://alertmanager:9093\","
    "\"alerts\":["
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"CheckoutErrors\",\"severity\":\"page\","
    "\"vexil_flag\":\"checkout.v2\",\"vexil_env\":\"staging\"},"
    "\"annotations\":{},\"startsAt\":\"2026-11-30T18:00:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prometheus:9090/graph\",\"fingerprint\":\"c6bcd5e3b5bf2b8a\"},"
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"Old\",\"vexil_flag\":\"a\"},"
    "\"annotations\":{},\"startsAt\":\"2026-11-30T17:00:00Z\",\"endsAt\":\"2026-11-30T17:30:00Z\","
    "\"generatorURL\":\"\",\"fingerprint\":\"1\"},"
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"KillSwitch\",\"vexil_flag\":\"b\","
    "\"vexil_action\":\"disable\"}},"
    "{\"status\":\"firing\",\"labels\":{\"instance\":\"x\"}}]}";

START_TEST(test_alerts)
{
    json_t *body = json_loads(PAYLOAD, 0, NULL);
    struct plan_alert *a;
    struct vx_error err = {0};
    size_t n;

    ck_assert_ptr_nonnull(body);
    ck_assert_msg(plan_alerts_from_json(body, &a, &n, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(a[0].name, "CheckoutErrors");
    ck_assert(a[0].firing);
    ck_assert_str_eq(a[0].flag, "checkout.v2");
    ck_assert_str_eq(a[0].env, "staging");
    ck_assert(!a[0].disable);
    ck_assert(!a[1].firing);
    ck_assert_ptr_null(a[1].env);
    ck_assert(a[2].disable);
    ck_assert_str_eq(a[2].flag, "b");
    ck_assert_ptr_null(a[3].flag);
    ck_assert_str_eq(a[3].name, "");
    free(a);
    json_decref(body);
}
END_TEST

static const char *const not_payloads[] = {
    "[]",
    "{}",
    "{\"alerts\":[]}",
    "{\"version\":\"4\"}",
    "{\"version\":4,\"alerts\":[]}",
    "{\"version\":\"3\",\"alerts\":[]}",
    "{\"version\":\"4\",\"alerts\":{}}",
    "{\"version\":\"4\",\"alerts\":[1]}",
    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\"}]}",
    "{\"version\":\"4\",\"alerts\":[{\"labels\":{}}]}",
    "{\"version\":\"4\",\"alerts\":[{\"status\":\"pending\",\"labels\":{}}]}",
    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"vexil_flag\":7}}]}",
    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":[]}]}",
    "{\"version\":\"4\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"severity\":1}}]}",
};

START_TEST(test_alerts_rejects)
{
    json_t *body = json_loads(not_payloads[_i], 0, NULL);
    struct plan_alert *a = (struct plan_alert *)1;
    struct vx_error err = {0};
    size_t n = 9;

    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(plan_alerts_from_json(body, &a, &n, &err), -1);
    ck_assert_str_eq(err.code, VX_E_INVALID_VALUE);
    ck_assert_ptr_null(a);
    ck_assert_uint_eq(n, 0);
    json_decref(body);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parse_ladder);
    tcase_add_loop_test(tc, test_parse_rejects, 0, N(bad));
    tcase_add_test(tc, test_parse_limits);
    tcase_add_test(tc, test_json_round_trip);
    tcase_add_test(tc, test_steps_and_done);
    tcase_add_test(tc, test_pause_resume);
    tcase_add_test(tc, test_halt_and_abort);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_alerts);
    tcase_add_loop_test(tc, test_alerts_rejects, 0, N(not_payloads));
    suite_add_tcase(s, tc);

    return unit_run(s);
}
