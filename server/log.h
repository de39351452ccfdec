/* log.h -- JSON lines on stderr: one per request (SPEC §11) and the
 * daemon's own events.  Each line is written with a single write(2), so
 * lines from several threads never interleave. */
#ifndef VX_LOG_H
#define VX_LOG_H

#include <stdint.h>

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void log_request(const char *method, const char *path, unsigned status, double duration_ms,
                 const char *request_id);

#endif
