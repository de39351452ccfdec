/* vx.c -- the error helper every module uses.
 *
 * Errors travel up as a struct vx_error: a static machine code and a human
 * sentence.  vx_fail() fills one and returns -1 so that a failure reads
 * as a single line at the point of detection:
 *
 *     if (!json_is_boolean(v))
 *         return vx_fail(err, VX_E_INVALID_VALUE, "enabled must be true or false");
 *
 * The message usually ends up inside a JSON error body.  jansson refuses to
 * build a string from invalid UTF-8, so a message cut short by the fixed
 * buffer must not end in half a character: the tail is trimmed back to the
 * last complete UTF-8 sequence; a character cut inside the message (by a
 * "%.64s" precision) becomes '?' (utf8_sanitize). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vx.h"

#include "text.h"

/* Length of the UTF-8 sequence that a lead byte announces; 0 for a
 * continuation byte. */
static size_t vx_utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xC0) == 0x80)
        return 0;
    if ((c & 0xE0) == 0xC0)
        return 2;
    if ((c & 0xF0) == 0xE0)
        return 3;
    return 4;
}

/* Drop an incomplete UTF-8 sequence at the end of s (NUL-terminated). */
static void vx_utf8_trim_tail(char *s)
{
    size_t len = strlen(s);
    size_t i = len;

    /* Walk back over at most 3 continuation bytes to the lead byte. */
    while (i > 0 && len - i < 4) {
        i--;
        size_t need = vx_utf8_seq_len((unsigned char)s[i]);
        if (need == 0)
            continue;
        if (i + need > len)
            s[i] = '\0';
        return;
    }
}

int vx_fail(struct vx_error *err, const char *code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (n < 0)
        err->message[0] = '\0';
    vx_utf8_trim_tail(err->message);
    /* A "%.64s" may still have cut a character inside the message. */
    utf8_sanitize(err->message);
    return -1;
}
