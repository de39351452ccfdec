/* webhook.h -- what a webhook receives: the pure part of webhooks
 * (docs/api.md §9).
 *
 * The validation of a webhook's registration, the body of an event as it
 * is posted, the sentence a chat tool shows, and the signature.  The
 * database (store_webhooks.c) keeps webhooks and their deliveries; the
 * sender (webhooks.c) posts. */
#ifndef VX_WEBHOOK_H
#define VX_WEBHOOK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "sha256.h"
#include "vx.h"

#define WEBHOOK_URL_MAX    2000
#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 1000
#define WEBHOOK_EVENTS_MAX 12

/* A registration: POST /api/webhooks {url, secret, events?, format?}. */
struct webhook_spec {
    const char *url, *secret; /* point into the body */
    const char *events[WEBHOOK_EVENTS_MAX];
    size_t n_events; /* 0: every event */
    bool slack;
};

/* Is name one of the event names? */
bool webhook_event_known(const char *name);

/* Read and check a registration body (borrowing its strings).  0, or -1
 * with err naming the field. */
int webhook_spec_from_json(const json_t *body, struct webhook_spec *w, struct vx_error *err);

/* An event of the outbox. */
struct webhook_event {
    int64_t id;
    const char *event; /* flag.updated, ... */
    int64_t at;        /* µs */
    const char *actor;
    const char *kind;                      /* flag, segment, environment */
    const char *subject;                   /* its name */
    json_t *environments, *before, *after; /* borrowed; NULL reads as null / [] */
};

/* The sentence a chat tool shows, e.g. "checkout.v2 turned OFF in
 * production by anna", with &, < and > escaped as Slack wants them.
 * Caller frees; NULL on OOM. */
char *webhook_text(const struct webhook_event *e);

/* The body posted for e (with the text when slack).  Caller frees; NULL
 * on OOM. */
char *webhook_body(const struct webhook_event *e, bool slack);

/* "sha256=<64 hex>" of body under secret into out. */
void webhook_signature(const char *secret, const char *body, size_t len, char out[7 + 64 + 1]);

/* The wait before attempt number attempts + 1 (attempts >= 1 made):
 * 1 s, 2 s, 4 s, ... at most an hour, in µs. */
int64_t webhook_backoff_us(int attempts);

#endif
