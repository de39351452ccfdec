/* log.h -- JSON lines on stderr: one per request (docs/operations.md §2) and the
 * daemon's own events.  Lines are written whole, so lines from several
 * threads never interleave. */
#ifndef VX_LOG_H
#define VX_LOG_H

#include <stdint.h>

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* While serving: buffer request lines per thread, flushed every 50 ms by
 * a thread of its own (log_start), and all written out by log_stop. */
int log_start(void);
void log_stop(void);
void log_flush(void);

void log_request(const char *method, const char *path, unsigned status, double duration_ms,
                 const char *request_id);

#endif
