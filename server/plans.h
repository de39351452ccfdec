/* plans.h -- the release plan scheduler of this instance, and its
 * counters (docs/api.md §8, docs/operations.md §2). */
#ifndef VX_PLANS_H
#define VX_PLANS_H

#include "store.h"
#include "text.h"

/* Start the scheduler thread: it takes every due step of every plan (of
 * any instance's) within a second of its time.  0 or -1. */
int plans_start(void);

/* Stop and join it (after store_shutdown(), a wait on the database ends
 * at once). */
void plans_stop(void);

/* A plan here started, resumed or advanced: look again now for the next
 * due time instead of at the next poll. */
void plans_poke(void);

/* Count what this instance did: a step a person advanced, an alert
 * received and what it did. */
void plans_count_step(void);
void plans_count_alert(enum alert_outcome outcome);

/* Append the plan metrics (Prometheus text) to b. */
void plans_metrics(struct buf *b);

#endif
