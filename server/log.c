/* log.c -- structured logging to stderr.
 *
 * Messages are formatted into a stack buffer, escaped as JSON strings, and
 * written with one write(2).  Nothing here allocates, so logging works when
 * memory is short, and stdio's lock is never taken on the request path. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "httputil.h"
#include "timeutil.h"

/* Escape s into out as JSON string contents (no quotes); truncates at a
 * character boundary, and writes U+FFFD for bytes that are not UTF-8, so a
 * log line is always valid JSON. */
static size_t esc(char *out, size_t cap, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), o = 0;

    for (size_t i = 0; i < len && o + 7 < cap;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_char_len(p + i, len - i);
            if (n == 0) {
                memcpy(out + o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(out + o, p + i, n);
                o += n;
                i += n;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
        i++;
    }
    out[o] = '\0';
    return o;
}

static void emit(const char *level, const char *fmt, va_list ap)
{
    char msg[1024], emsg[2048], line[2400], ts[32];
    int n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    esc(emsg, sizeof(emsg), msg);
    time_format_rfc3339(time_now_us(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                 level, emsg);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("info", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit("error", fmt, ap);
    va_end(ap);
}

void log_request(const char *method, const char *path, unsigned status, double duration_ms,
                 const char *request_id)
{
    char epath[1100], eid[140], emethod[40], line[1500], ts[32];
    char p[512];
    int n;

    /* Log at most 500 bytes of the path (esc() repairs a cut character). */
    snprintf(p, sizeof(p), "%.500s", path != NULL ? path : "");
    esc(epath, sizeof(epath), p);
    esc(eid, sizeof(eid), request_id != NULL ? request_id : "");
    esc(emethod, sizeof(emethod), method != NULL ? method : "");
    time_format_rfc3339(time_now_us(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line),
                 "{\"time\":\"%s\",\"level\":\"info\",\"method\":\"%s\",\"path\":\"%s\","
                 "\"status\":%u,\"duration_ms\":%.3f,\"request_id\":\"%s\"}\n",
                 ts, emethod, epath, status, duration_ms, eid);
    if (n > 0)
        (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
}
