/* webhooks.h -- the webhook sender of this instance (docs/api.md §9,
 * docs/operations.md §2). */
#ifndef VX_WEBHOOKS_H
#define VX_WEBHOOKS_H

#include <stdbool.h>

#include "text.h"

/* Start the sender thread.  It delivers only while this instance holds
 * the webhook lock in PostgreSQL, so one instance at a time does.  0 or
 * -1. */
int webhooks_start(void);

/* Stop it: a delivery in flight is abandoned within a second (the next
 * holder sends it again, with the same X-Vexil-Delivery).  wait: also
 * join the thread (else only ask it to stop, so that the stop runs beside
 * the rest of the shutdown). */
void webhooks_stop(bool wait);

/* Something changed (a notification came): look for deliveries now. */
void webhooks_poke(void);

/* Append the webhook metrics (Prometheus text) to b. */
void webhooks_metrics(struct buf *b);

#endif
