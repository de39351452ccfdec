/* timeutil.c -- clocks and RFC 3339 timestamps.
 *
 * Times are int64 microseconds since the Unix epoch, UTC: the resolution of
 * PostgreSQL's timestamptz, so a value read from the database survives the
 * round trip through memory unchanged.  JSON shows them with milliseconds,
 * "2026-11-26T06:11:39.123Z" (docs/decisions.md).
 *
 * Formatting and parsing are done by hand with gmtime_r()/timegm() and
 * integer printf: strftime() and strptime() depend on the locale, and
 * strptime() has no notion of fractions or offsets.
 *
 * The parser takes RFC 3339 (§5.6): a 'T' (or 't', or a space as the RFC's
 * note allows) between date and time, an optional fraction of any length
 * (digits past microseconds are truncated), and 'Z' or a "+hh:mm" offset.
 * It also takes a bare "+hh" offset, which is how PostgreSQL prints a
 * timestamptz, so a value straight from the database parses too.  Field
 * ranges are checked (a 31st of April is an error); a leap second ":60" is
 * accepted and counts as the next second, as POSIX time has no leap seconds. */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "timeutil.h"

static int64_t time_clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * VX_USEC_PER_SEC + ts.tv_nsec / 1000;
}

int64_t time_now_us(void)
{
    return time_clock_us(CLOCK_REALTIME);
}

int64_t time_monotonic_us(void)
{
    return time_clock_us(CLOCK_MONOTONIC);
}

int time_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);

    if (rc == 0)
        rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : -1;
}

void time_deadline_at(int64_t monotonic_us, struct timespec *ts)
{
    ts->tv_sec = (time_t)(monotonic_us / VX_USEC_PER_SEC);
    ts->tv_nsec = (long)(monotonic_us % VX_USEC_PER_SEC) * 1000L;
}

void time_deadline_ts(int64_t ms, struct timespec *ts)
{
    time_deadline_at(time_monotonic_us() + ms * 1000, ts);
}

char *time_format_rfc3339(int64_t us, char *buf, size_t len)
{
    /* Floor division, so that times before 1970 keep a positive fraction:
     * -1 µs is 1969-12-31T23:59:59.999Z. */
    int64_t sec = us / VX_USEC_PER_SEC;
    int64_t rem = us % VX_USEC_PER_SEC;
    if (rem < 0) {
        sec--;
        rem += VX_USEC_PER_SEC;
    }

    time_t t = (time_t)sec;
    struct tm tm;
    if (len == 0)
        return buf;
    if (gmtime_r(&t, &tm) == NULL) {
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000));
    return buf;
}

/* Read exactly n decimal digits at *s into *out and advance *s. */
static bool time_digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

static bool time_expect(const char **s, char c)
{
    if (**s != c)
        return false;
    (*s)++;
    return true;
}

static int time_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int time_parse_rfc3339(const char *s, int64_t *us)
{
    int year, month, day, hour, min, sec;

    if (s == NULL)
        return -1;
    if (!time_digits(&s, 4, &year) || !time_expect(&s, '-') || !time_digits(&s, 2, &month) ||
        !time_expect(&s, '-') || !time_digits(&s, 2, &day))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (!time_digits(&s, 2, &hour) || !time_expect(&s, ':') || !time_digits(&s, 2, &min) ||
        !time_expect(&s, ':') || !time_digits(&s, 2, &sec))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > time_days_in_month(year, month) || hour > 23 ||
        min > 59 || sec > 60)
        return -1;

    /* Fraction: keep six digits (µs), ignore the rest. */
    int64_t frac = 0;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        int64_t scale = 100000;
        for (; *s >= '0' && *s <= '9'; s++) {
            frac += (*s - '0') * scale;
            scale /= 10;
        }
    }

    int64_t offset = 0; /* seconds east of UTC */
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s == '-' ? -1 : 1;
        int oh, om = 0;
        s++;
        if (!time_digits(&s, 2, &oh))
            return -1;
        if (*s == ':') {
            s++;
            if (!time_digits(&s, 2, &om))
                return -1;
        }
        if (oh > 23 || om > 59)
            return -1;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;

    struct tm tm = {
        .tm_year = year - 1900,
        .tm_mon = month - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = min,
        .tm_sec = sec,
    };
    /* timegm() may answer -1 for 1969-12-31T23:59:59 too; the fields are
     * already known to be valid, so -1 is taken at face value. */
    time_t t = timegm(&tm);
    *us = ((int64_t)t - offset) * VX_USEC_PER_SEC + frac;
    return 0;
}
