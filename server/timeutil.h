/* timeutil.h -- wall-clock times as int64 microseconds since the Unix epoch (UTC). */
#ifndef VX_TIMEUTIL_H
#define VX_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define VX_USEC_PER_SEC INT64_C(1000000)
#define VX_USEC_PER_DAY (INT64_C(86400) * VX_USEC_PER_SEC)

int64_t time_now_us(void);       /* CLOCK_REALTIME */
int64_t time_monotonic_us(void); /* CLOCK_MONOTONIC */

/* Format as RFC 3339 UTC with milliseconds: "2026-11-26T06:11:39.123Z".
 * buf must hold at least 32 bytes. Returns buf. */
char *time_format_rfc3339(int64_t us, char *buf, size_t len);

/* Parse RFC 3339 ("...Z" or "+hh:mm", optional fraction). 0 on success, -1 on error. */
int time_parse_rfc3339(const char *s, int64_t *us);

#endif
