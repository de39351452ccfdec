/* timeutil.h -- wall-clock times as int64 microseconds since the Unix epoch (UTC). */
#ifndef VX_TIMEUTIL_H
#define VX_TIMEUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define VX_USEC_PER_SEC INT64_C(1000000)
#define VX_USEC_PER_DAY (INT64_C(86400) * VX_USEC_PER_SEC)

int64_t time_now_us(void);       /* CLOCK_REALTIME */
int64_t time_monotonic_us(void); /* CLOCK_MONOTONIC */

/* Durations are measured on CLOCK_MONOTONIC, which a step of the wall clock
 * does not move.  A condition variable that waits with a timeout is made
 * with time_cond_init() (0 or -1), and its absolute deadline, ms
 * milliseconds from now, comes from time_deadline_ts() -- or from
 * time_deadline_at() for a monotonic time in microseconds. */
int time_cond_init(pthread_cond_t *cv);
void time_deadline_ts(int64_t ms, struct timespec *ts);
void time_deadline_at(int64_t monotonic_us, struct timespec *ts);

/* Format as RFC 3339 UTC with milliseconds: "2026-11-26T06:11:39.123Z".
 * buf must hold at least 32 bytes. Returns buf. */
char *time_format_rfc3339(int64_t us, char *buf, size_t len);

/* Parse RFC 3339 ("...Z" or "+hh:mm", optional fraction). 0 on success, -1 on error. */
int time_parse_rfc3339(const char *s, int64_t *us);

#endif
