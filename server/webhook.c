/* webhook.c -- registrations, bodies, sentences and signatures of webhooks
 * (webhook.h).
 *
 * Pure, so that what a receiver gets is unit-tested byte for byte
 * (tests/unit/test_webhook.c): the sender only adds the transport. */
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "timeutil.h"

static const char *const EVENTS[WEBHOOK_EVENTS_MAX] = {
    "flag.created",    "flag.updated",        "flag.deleted",        "flag.reverted",
    "flag.plan_step",  "flag.plan_halted",    "segment.created",     "segment.updated",
    "segment.deleted", "environment.created", "environment.updated", "environment.deleted",
};

bool webhook_event_known(const char *name)
{
    for (size_t i = 0; i < WEBHOOK_EVENTS_MAX; i++)
        if (strcmp(name, EVENTS[i]) == 0)
            return true;
    return false;
}

/* http:// or https://, a host, no blank or control character. */
static bool url_valid(const char *u)
{
    size_t n = strlen(u), skip;

    if (strncmp(u, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(u, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (n <= skip || n > WEBHOOK_URL_MAX || u[skip] == '/' || !utf8_valid(u, n))
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p != '\0'; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

int webhook_spec_from_json(const json_t *body, struct webhook_spec *w, struct vx_error *err)
{
    const char *key;
    const json_t *v;

    memset(w, 0, sizeof *w);
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "secret") != 0 && strcmp(key, "events") != 0 &&
            strcmp(key, "format") != 0)
            return vx_fail(err, VX_E_UNKNOWN_FIELD, "unknown field '%.100s'", key);
    }
    w->url = json_string_value(json_object_get(body, "url"));
    if (w->url == NULL || !url_valid(w->url))
        return vx_fail(err, VX_E_INVALID_VALUE,
                       "url must be an http:// or https:// URL of at most %d bytes, without "
                       "blanks or control characters",
                       WEBHOOK_URL_MAX);
    v = json_object_get(body, "secret");
    w->secret = json_string_value(v);
    if (w->secret == NULL || json_string_length(v) < WEBHOOK_SECRET_MIN ||
        json_string_length(v) > WEBHOOK_SECRET_MAX || strlen(w->secret) != json_string_length(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "secret must be a string of %d to %d bytes",
                       WEBHOOK_SECRET_MIN, WEBHOOK_SECRET_MAX);
    v = json_object_get(body, "events");
    if (v != NULL && !json_is_array(v))
        return vx_fail(err, VX_E_INVALID_VALUE, "events must be an array of event names");
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        const char *name = json_string_value(e);
        if (name == NULL || !webhook_event_known(name))
            return vx_fail(err, VX_E_INVALID_VALUE,
                           "events[%zu] is not an event name (flag.created, flag.updated, ...)", i);
        bool dup = false;
        for (size_t k = 0; k < w->n_events; k++)
            dup |= strcmp(w->events[k], name) == 0;
        if (!dup)
            w->events[w->n_events++] = name;
    }
    v = json_object_get(body, "format");
    const char *format = json_string_value(v);
    if (v != NULL &&
        (format == NULL || (strcmp(format, "json") != 0 && strcmp(format, "slack") != 0)))
        return vx_fail(err, VX_E_INVALID_VALUE, "format must be \"json\" or \"slack\"");
    w->slack = format != NULL && strcmp(format, "slack") == 0;
    return 0;
}

/* ---- the sentence --------------------------------------------------------- */

/* Text, with &, < and > escaped for Slack, and nothing below 0x20. */
static int add_text(struct buf *b, const char *s)
{
    int bad = 0;

    for (; *s != '\0'; s++) {
        if (*s == '&')
            bad |= buf_adds(b, "&amp;");
        else if (*s == '<')
            bad |= buf_adds(b, "&lt;");
        else if (*s == '>')
            bad |= buf_adds(b, "&gt;");
        else if ((unsigned char)*s < 0x20 || *s == 0x7f)
            bad |= buf_add(b, " ", 1);
        else
            bad |= buf_add(b, s, 1);
    }
    return bad;
}

/* What changed in one environment's state of a flag event. */
static int add_state_change(struct buf *b, const json_t *before, const json_t *after)
{
    json_t *eb = json_object_get(before, "enabled"), *ea = json_object_get(after, "enabled");
    json_t *pb = json_object_get(before, "percentage"), *pa = json_object_get(after, "percentage");

    if (after == NULL)
        return buf_adds(b, "removed");
    if (before == NULL || !json_equal(eb, ea))
        return json_is_true(ea)
                   ? buf_addf(b, "turned ON at %lld %%", (long long)json_integer_value(pa))
                   : buf_adds(b, "turned OFF");
    if (!json_equal(pb, pa))
        return buf_addf(b, "rolled out to %lld %%", (long long)json_integer_value(pa));
    return buf_adds(b, "targeting changed");
}

static int add_flag_changes(struct buf *b, const struct webhook_event *e)
{
    const json_t *envb = json_object_get(e->before, "environments");
    const json_t *enva = json_object_get(e->after, "environments");
    size_t i, n = json_array_size(e->environments);
    const json_t *v;
    int bad = 0;

    if (n == 0)
        return buf_adds(b, " changed (description or owner)");
    json_array_foreach(e->environments, i, v)
    {
        const char *env = json_string_value(v);
        if (env == NULL)
            continue;
        bad |= buf_adds(b, i == 0 ? " " : ", ");
        bad |= add_state_change(b, json_object_get(envb, env), json_object_get(enva, env));
        bad |= buf_adds(b, " in ") | add_text(b, env);
    }
    return bad;
}

char *webhook_text(const struct webhook_event *e)
{
    struct buf b = {0};
    const char *verb = strchr(e->event, '.') + 1;
    int bad = 0;

    if (strcmp(e->kind, "flag") != 0)
        bad |= add_text(&b, e->kind) | buf_add(&b, " ", 1);
    bad |= add_text(&b, e->subject);
    if (strcmp(e->event, "flag.updated") == 0 || strcmp(e->event, "flag.plan_step") == 0) {
        bad |= add_flag_changes(&b, e);
    } else if (strcmp(e->event, "flag.plan_halted") == 0) {
        const char *env = json_string_value(json_object_get(e->after, "environment"));
        const char *reason = json_string_value(json_object_get(e->after, "reason"));
        bad |= buf_adds(&b, ": release plan halted in ") | add_text(&b, env != NULL ? env : "?");
        if (reason != NULL)
            bad |= buf_adds(&b, " (") | add_text(&b, reason) | buf_adds(&b, ")");
    } else {
        bad |= buf_add(&b, " ", 1) | add_text(&b, verb);
    }
    if (strcmp(e->event, "flag.plan_halted") != 0)
        bad |= buf_adds(&b, " by ") | add_text(&b, e->actor);
    if (strcmp(e->event, "flag.reverted") == 0) { /* what the revert did, after who */
        bad |= buf_adds(&b, ":");
        bad |= add_flag_changes(&b, e);
    }
    if (bad) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* ---- the body and its signature ------------------------------------------- */

char *webhook_body(const struct webhook_event *e, bool slack)
{
    char at[40];
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", (json_int_t)e->id,
                          "event", e->event, "at", time_format_rfc3339(e->at, at, sizeof at),
                          "actor", e->actor, e->kind, e->subject, "environments",
                          e->environments != NULL ? json_incref(e->environments) : json_array(),
                          "before", e->before != NULL ? json_incref(e->before) : json_null(),
                          "after", e->after != NULL ? json_incref(e->after) : json_null());
    char *text = NULL, *out = NULL;

    if (o != NULL && slack) {
        text = webhook_text(e);
        if (text == NULL || json_object_set_new(o, "text", json_string(text)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    if (o != NULL)
        out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    free(text);
    return out;
}

void webhook_signature(const char *secret, const char *body, size_t len, char out[7 + 64 + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t mac[SHA256_LEN];

    hmac_sha256(secret, strlen(secret), body, len, mac);
    memcpy(out, "sha256=", 7);
    for (size_t i = 0; i < SHA256_LEN; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 64] = '\0';
}

int64_t webhook_backoff_us(int attempts)
{
    int64_t s = 1;

    for (int i = 1; i < attempts && s < 3600; i++)
        s *= 2;
    return (s < 3600 ? s : 3600) * VX_USEC_PER_SEC;
}
