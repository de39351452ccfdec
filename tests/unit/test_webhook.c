/* test_webhook.c -- what a webhook receiver gets: registrations refused
 * and accepted, the body byte for byte, the chat sentence, the signature
 * (checked against Python's hmac module) and the retry schedule. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "unit.h"
#include "webhook.h"

static int spec(const char *text, struct webhook_spec *w, struct vx_error *err, json_t **keep)
{
    *keep = json_loads(text, 0, NULL);
    ck_assert_msg(*keep != NULL, "bad test JSON %s", text);
    return webhook_spec_from_json(*keep, w, err);
}

START_TEST(test_spec_accepted)
{
    struct webhook_spec w;
    struct vx_error err = {0};
    json_t *b;

    ck_assert_int_eq(spec("{\"url\":\"https://hooks.example.com/x?y=1\",\"secret\":"
                          "\"0123456789abcdef\"}",
                          &w, &err, &b),
                     0);
    ck_assert_str_eq(w.url, "https://hooks.example.com/x?y=1");
    ck_assert_uint_eq(w.n_events, 0);
    ck_assert(!w.slack);
    json_decref(b);
    ck_assert_int_eq(spec("{\"url\":\"http://127.0.0.1:9/h\",\"secret\":\"0123456789abcdef\","
                          "\"events\":[\"flag.updated\",\"flag.plan_halted\",\"flag.updated\"],"
                          "\"format\":\"slack\"}",
                          &w, &err, &b),
                     0);
    ck_assert_uint_eq(w.n_events, 2); /* a repeat counts once */
    ck_assert_str_eq(w.events[1], "flag.plan_halted");
    ck_assert(w.slack);
    json_decref(b);
}
END_TEST

static const struct {
    const char *body, *code, *says;
} refused[] = {
    {"{\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":\"ftp://x/y\",\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":\"javascript:alert(1)\",\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE,
     "url"},
    {"{\"url\":\"http://\",\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":\"http://a b/\",\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":\"http://a/\\n\",\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":7,\"secret\":\"0123456789abcdef\"}", VX_E_INVALID_VALUE, "url"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcde\"}", VX_E_INVALID_VALUE, "secret"},
    {"{\"url\":\"http://a/\"}", VX_E_INVALID_VALUE, "secret"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcdef\",\"events\":\"flag.updated\"}",
     VX_E_INVALID_VALUE, "events"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcdef\",\"events\":[\"flag.renamed\"]}",
     VX_E_INVALID_VALUE, "events[0]"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcdef\",\"events\":[1]}", VX_E_INVALID_VALUE,
     "events[0]"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcdef\",\"format\":\"xml\"}",
     VX_E_INVALID_VALUE, "format"},
    {"{\"url\":\"http://a/\",\"secret\":\"0123456789abcdef\",\"name\":\"x\"}", VX_E_UNKNOWN_FIELD,
     "name"},
};

START_TEST(test_spec_refused)
{
    struct webhook_spec w;
    struct vx_error err = {0};
    json_t *b;

    ck_assert_int_eq(spec(refused[_i].body, &w, &err, &b), -1);
    ck_assert_str_eq(err.code, refused[_i].code);
    ck_assert_msg(strstr(err.message, refused[_i].says) != NULL, "%s: %s", refused[_i].body,
                  err.message);
    json_decref(b);
}
END_TEST

/* A flag event as the history holds it. */
static json_t *state(bool enabled, int percentage)
{
    return json_pack("{s:b, s:i, s:[], s:[]}", "enabled", enabled, "percentage", percentage,
                     "users", "segments");
}

static json_t *flag(const char *env, json_t *st)
{
    return json_pack("{s:s, s:{s:o}}", "name", "checkout.v2", "environments", env, st);
}

START_TEST(test_text)
{
    json_t *envs = json_pack("[s]", "production");
    json_t *b = flag("production", state(true, 25)), *a = flag("production", state(false, 25));
    struct webhook_event e = {7, "flag.updated", 0, "anna", "flag", "checkout.v2", envs, b, a};
    char *t = webhook_text(&e);

    ck_assert_str_eq(t, "checkout.v2 turned OFF in production by anna");
    free(t);
    json_decref(a);
    a = flag("production", state(true, 50));
    e.after = a;
    t = webhook_text(&e);
    ck_assert_str_eq(t, "checkout.v2 rolled out to 50 % in production by anna");
    free(t);
    e.event = "flag.plan_step";
    e.actor = "plan:anna";
    t = webhook_text(&e);
    ck_assert_str_eq(t, "checkout.v2 rolled out to 50 % in production by plan:anna");
    free(t);
    e.event = "flag.reverted";
    e.actor = "anna";
    t = webhook_text(&e);
    ck_assert_str_eq(t, "checkout.v2 reverted by anna: rolled out to 50 % in production");
    free(t);
    e.event = "flag.created";
    e.actor = "<b>&";
    t = webhook_text(&e);
    ck_assert_str_eq(t, "checkout.v2 created by &lt;b&gt;&amp;"); /* escaped for Slack */
    free(t);
    json_decref(a);
    json_decref(b);
    json_decref(envs);
    /* A plan halted, and things that are not flags. */
    json_t *plan = json_pack("{s:s, s:s}", "environment", "production", "reason",
                             "alert CheckoutErrors fired");
    struct webhook_event h = {
        8, "flag.plan_halted", 0, "alert:CheckoutErrors", "flag", "checkout.v2", NULL, NULL, plan};
    t = webhook_text(&h);
    ck_assert_str_eq(t,
                     "checkout.v2: release plan halted in production (alert CheckoutErrors fired)");
    free(t);
    json_decref(plan);
    struct webhook_event s = {
        9, "segment.updated", 0, "anna", "segment", "internal-team", NULL, NULL, NULL};
    t = webhook_text(&s);
    ck_assert_str_eq(t, "segment internal-team updated by anna");
    free(t);
}
END_TEST

START_TEST(test_body_and_signature)
{
    json_t *envs = json_pack("[s]", "staging");
    struct webhook_event e = {42,
                              "environment.created",
                              INT64_C(1795673499123000),
                              "anna",
                              "environment",
                              "staging",
                              envs,
                              NULL,
                              NULL};
    char *body = webhook_body(&e, false), sig[7 + 64 + 1];

    ck_assert_str_eq(body, "{\"id\":42,\"event\":\"environment.created\",\"at\":"
                           "\"2026-11-26T06:11:39.123Z\",\"actor\":\"anna\",\"environment\":"
                           "\"staging\",\"environments\":[\"staging\"],\"before\":null,"
                           "\"after\":null}");
    free(body);
    body = webhook_body(&e, true);
    ck_assert_ptr_nonnull(strstr(body, ",\"text\":\"environment staging created by anna\"}"));
    free(body);
    json_decref(envs);
    /* python3 -c "import hmac,hashlib; print(hmac.new(b'0123456789abcdef', b'{\"id\":1}',
     *             hashlib.sha256).hexdigest())" */
    webhook_signature("0123456789abcdef", "{\"id\":1}", 8, sig);
    ck_assert_str_eq(sig,
                     "sha256=564c88996eca094e86962bc8c3ca28f6868b19f1646c542d29b5132b84f93dc3");
}
END_TEST

START_TEST(test_backoff)
{
    ck_assert_int_eq(webhook_backoff_us(1), 1 * VX_USEC_PER_SEC);
    ck_assert_int_eq(webhook_backoff_us(2), 2 * VX_USEC_PER_SEC);
    ck_assert_int_eq(webhook_backoff_us(3), 4 * VX_USEC_PER_SEC);
    ck_assert_int_eq(webhook_backoff_us(12), 2048 * VX_USEC_PER_SEC);
    ck_assert_int_eq(webhook_backoff_us(13), 3600 * VX_USEC_PER_SEC); /* an hour at most */
    ck_assert_int_eq(webhook_backoff_us(1000), 3600 * VX_USEC_PER_SEC);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("webhook");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_spec_accepted);
    tcase_add_loop_test(tc, test_spec_refused, 0, (int)(sizeof refused / sizeof refused[0]));
    tcase_add_test(tc, test_text);
    tcase_add_test(tc, test_body_and_signature);
    tcase_add_test(tc, test_backoff);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
