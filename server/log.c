/* log.c -- structured logging to stderr.
 *
 * Request lines are many (one per request), so while the daemon serves
 * (log_start) each thread collects them in its own buffer, written with one
 * write(2) when it fills or, by a flusher thread, every 50 ms: a line
 * reaches the log at most that much later, and the request path saves a
 * system call per request.  Buffers hold whole lines only, so lines never
 * interleave.  The daemon's own messages are written at once.
 *
 * Messages are formatted into a stack buffer, escaped as JSON strings, and
 * written with one write(2).  Nothing here allocates, so logging works when
 * memory is short, and stdio's lock is never taken on the request path. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "text.h"
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

#define LOG_BUF_SIZE 16384
#define LOG_MAX_BUFS 128
#define LOG_FLUSH_MS 50

struct log_buf {
    pthread_mutex_t lock;
    size_t len;
    char data[LOG_BUF_SIZE];
};

/* A slot is filled once, by its thread, after the buffer is whole; the
 * flusher may look at it any time: so the store and the load are atomic. */
static _Atomic(struct log_buf *) log_bufs[LOG_MAX_BUFS];
static atomic_int log_nbufs;
static _Thread_local struct log_buf *log_mine;
static atomic_bool log_buffering;
static pthread_t log_flusher;
static pthread_mutex_t log_stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_stop_cond; /* monotonic: time_cond_init in log_start */
static bool log_stopping;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Caller holds b->lock. */
static void flush_buf(struct log_buf *b)
{
    write_all(b->data, b->len);
    b->len = 0;
}

/* This thread's buffer, made on first use; NULL when all slots are taken. */
static struct log_buf *my_buf(void)
{
    if (log_mine == NULL) {
        int i = atomic_fetch_add(&log_nbufs, 1);
        if (i >= LOG_MAX_BUFS)
            return NULL;
        struct log_buf *b = calloc(1, sizeof(*b));
        if (b == NULL)
            return NULL;
        pthread_mutex_init(&b->lock, NULL);
        atomic_store(&log_bufs[i], b);
        log_mine = b;
    }
    return log_mine;
}

static void emit_request_line(const char *line, size_t n)
{
    struct log_buf *b = atomic_load(&log_buffering) ? my_buf() : NULL;

    if (b == NULL) {
        write_all(line, n);
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (b->len + n > sizeof(b->data))
        flush_buf(b);
    memcpy(b->data + b->len, line, n);
    b->len += n;
    pthread_mutex_unlock(&b->lock);
}

void log_flush(void)
{
    int n = atomic_load(&log_nbufs);

    for (int i = 0; i < n && i < LOG_MAX_BUFS; i++) {
        struct log_buf *b = atomic_load(&log_bufs[i]);
        if (b == NULL)
            continue;
        pthread_mutex_lock(&b->lock);
        if (b->len > 0)
            flush_buf(b);
        pthread_mutex_unlock(&b->lock);
    }
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_stop_lock);
    while (!log_stopping) {
        struct timespec ts;
        time_deadline_ts(LOG_FLUSH_MS, &ts);
        pthread_cond_timedwait(&log_stop_cond, &log_stop_lock, &ts);
        log_flush();
    }
    pthread_mutex_unlock(&log_stop_lock);
    return NULL;
}

int log_start(void)
{
    log_stopping = false;
    if (time_cond_init(&log_stop_cond) != 0)
        return -1;
    if (pthread_create(&log_flusher, NULL, flusher_main, NULL) != 0)
        return -1;
    atomic_store(&log_buffering, true);
    return 0;
}

void log_stop(void)
{
    if (!atomic_exchange(&log_buffering, false))
        return;
    pthread_mutex_lock(&log_stop_lock);
    log_stopping = true;
    pthread_cond_signal(&log_stop_cond);
    pthread_mutex_unlock(&log_stop_lock);
    pthread_join(log_flusher, NULL);
    log_flush();
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
        emit_request_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
}
