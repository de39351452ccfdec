/* text.c -- building text: the growable buffer every answer is written
 * into, UTF-8 checks, JSON string literals, and text from data made safe to
 * show on a terminal or in a mail (docs/decisions.md, "Text for people").
 *
 * The read path writes its JSON answers itself (not through jansson) to
 * avoid building a tree per request; buf_add_json_string is what keeps that
 * safe. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t utf8_char_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t len = strlen(s);

    for (size_t i = 0; i < len;) {
        size_t n = utf8_char_len(p + i, len - i);
        if (n == 0) {
            p[i] = '?';
            n = 1;
        }
        i += n;
    }
}

long utf8_text_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    long n = 0;

    while (left > 0) {
        size_t len = utf8_char_len(p, left);
        if (len == 0)
            return -1;
        unsigned cp = len == 1   ? p[0]
                      : len == 2 ? (unsigned)(p[0] & 0x1F) << 6 | (p[1] & 0x3F)
                                 : 0xA0;
        if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
            return -1;
        p += len;
        left -= len;
        n++;
    }
    return n;
}

bool token_name_valid(const char *s)
{
    long n = utf8_text_chars(s);
    return n >= 1 && n <= TOKEN_NAME_MAX;
}

bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        if (p[i] == 0)
            return false;
        size_t n = utf8_char_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

int buf_add_json_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    /* Worst case 6 bytes per input byte plus quotes. */
    if (buf_reserve(b, len * 6 + 2) != 0)
        return -1;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t n = utf8_char_len(p + i, len - i);
            if (n == 0) {
                memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD */
                o += 3;
                i++;
            } else {
                memcpy(o, p + i, n);
                o += n;
                i += n;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else if (c == '<' || c == '>' || c == '&') {
            /* Harmless in JSON, but never let a body be sniffed as HTML. */
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
    return 0;
}

/* The code point of the valid UTF-8 character of n bytes at p. */
static unsigned long utf8_decode(const unsigned char *p, size_t n)
{
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    unsigned long cp = p[0] & lead_mask[n];

    for (size_t i = 1; i < n; i++)
        cp = (cp << 6) | (p[i] & 0x3Fu);
    return cp;
}

bool text_char_control(unsigned long cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The visible form of what starts at p (left > 0 bytes): *used is how many
 * bytes of the input it stands for; the escape is written to esc (NUL-
 * terminated) and its length returned, or 0 when those bytes are shown as
 * they are. */
static size_t visible_escape(const unsigned char *p, size_t left, size_t *used, char esc[16])
{
    size_t n = utf8_char_len(p, left);
    unsigned long cp;

    if (n == 0) {
        *used = 1;
        return (size_t)snprintf(esc, 16, "\\x%02x", p[0]);
    }
    *used = n;
    cp = utf8_decode(p, n);
    switch (cp) {
    case '\\':
        return (size_t)snprintf(esc, 16, "\\\\");
    case '\n':
        return (size_t)snprintf(esc, 16, "\\n");
    case '\r':
        return (size_t)snprintf(esc, 16, "\\r");
    case '\t':
        return (size_t)snprintf(esc, 16, "\\t");
    default:
        break;
    }
    if (!text_char_control(cp))
        return 0;
    if (cp < 0x80)
        return (size_t)snprintf(esc, 16, "\\x%02x", (unsigned)cp);
    return (size_t)snprintf(esc, 16, "\\u%04x", (unsigned)cp);
}

int buf_add_visible(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0; /* [run, i): bytes shown as they are, not yet added */

    while (i < len) {
        char esc[16];
        size_t used, n = visible_escape(p + i, len - i, &used, esc);
        if (n == 0) {
            i += used;
            continue;
        }
        if (buf_add(b, s + run, i - run) != 0 || buf_add(b, esc, n) != 0)
            return -1;
        i += used;
        run = i;
    }
    return buf_add(b, s + run, len - run);
}

size_t text_visible_width(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, width = 0;

    while (i < len) {
        char esc[16];
        size_t used, n = visible_escape(p + i, len - i, &used, esc);
        width += n > 0 ? n : 1;
        i += used;
    }
    return width;
}

int buf_add_json_visible(struct buf *b, const char *json, size_t len)
{
    const unsigned char *p = (const unsigned char *)json;
    size_t i = 0, run = 0; /* [run, i): bytes copied as they are, not yet added */

    while (i < len) {
        char esc[16];
        size_t n = utf8_char_len(p + i, len - i);
        /* C0 stays: JSON escapes it inside strings, so outside them it can
         * only be the white space between tokens (the newlines of
         * JSON_INDENT). */
        unsigned long cp = n > 0 ? utf8_decode(p + i, n) : 0;
        if (n > 0 && (cp < 0x20 || !text_char_control(cp))) {
            i += n;
            continue;
        }
        if (n == 0) {
            snprintf(esc, sizeof esc, "\\ufffd");
            n = 1;
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        }
        if (buf_add(b, json + run, i - run) != 0 || buf_add(b, esc, 6) != 0)
            return -1;
        i += n;
        run = i;
    }
    return buf_add(b, json + run, len - run);
}

char *buf_take(struct buf *b, size_t *len)
{
    char *p = b->p;

    if (p == NULL) {
        p = malloc(1);
        if (p != NULL)
            p[0] = '\0';
    }
    if (len != NULL)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
