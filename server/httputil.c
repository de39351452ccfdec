/* httputil.c -- entity tags, integer parameters, JSON string output, and
 * text from data made safe to show on a terminal or in a mail.
 *
 * The read path writes its JSON answers itself (not through jansson) to
 * avoid building a tree per request; buf_add_json_string is what keeps that
 * safe.  ETag parsing is strict: a client that sends garbage learns so
 * (400) instead of silently never matching. */
#include "httputil.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* An entity-tag character: printable ASCII but '"', or obs-text. */
static bool etagc(char c)
{
    unsigned char u = (unsigned char)c;
    return u == 0x21 || (u >= 0x23 && u <= 0x7e) || u >= 0x80;
}

/* One tag of a list: its text between the quotes, and whether weak. */
struct etag_text {
    const char *p;
    size_t len;
    bool weak;
};

/* Outcome of one tag for the caller of etag_walk. */
enum etag_step { ETAG_NEXT, ETAG_STOP, ETAG_BAD };

/* Walk the list in s: "*" sets *any; each tag goes to each(), which may
 * stop the walk early (ETAG_STOP: 0) or refuse the tag (ETAG_BAD: -1).
 * 0 when the whole list was read, -1 when it is malformed. */
static int etag_walk(const char *s, size_t len, bool *any,
                     enum etag_step (*each)(const struct etag_text *t, void *cls), void *cls)
{
    const char *p = s, *end = s + len;

    *any = false;
    p = skip_ows(p, end);
    if (p < end && *p == '*') {
        *any = true;
        return skip_ows(p + 1, end) == end ? 0 : -1;
    }
    for (;;) {
        struct etag_text t = {0};

        p = skip_ows(p, end);
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
            t.weak = true;
            p += 2;
        }
        if (p >= end || *p != '"')
            return -1;
        t.p = ++p;
        while (p < end && etagc(*p))
            p++;
        if (p >= end || *p != '"')
            return -1;
        t.len = (size_t)(p - t.p);
        switch (each(&t, cls)) {
        case ETAG_STOP:
            return 0;
        case ETAG_BAD:
            return -1;
        case ETAG_NEXT:
            break;
        }
        p = skip_ows(p + 1, end);
        if (p == end)
            return 0;
        if (*p != ',')
            return -1;
        p++;
    }
}

/* A tag that is a version: into the list (ETAG_BAD if not one, or full). */
static enum etag_step etag_add_version(const struct etag_text *t, void *cls)
{
    struct etag_list *l = cls;
    int64_t v = 0;

    if (t->len == 0 || l->n == ETAG_LIST_MAX)
        return ETAG_BAD;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->p[i];
        if (c < '0' || c > '9' || v > (INT64_MAX - (c - '0')) / 10)
            return ETAG_BAD;
        v = v * 10 + (c - '0');
    }
    l->tag[l->n] = v;
    l->weak[l->n] = t->weak;
    l->n++;
    return ETAG_NEXT;
}

int etag_parse(const char *s, size_t len, struct etag_list *out)
{
    memset(out, 0, sizeof(*out));
    return etag_walk(s, len, &out->any, etag_add_version, out);
}

bool etag_matches(const struct etag_list *l, int64_t v)
{
    if (l->any)
        return true;
    for (size_t i = 0; i < l->n; i++)
        if (l->tag[i] == v)
            return true;
    return false;
}

struct etag_search {
    const char *text;
    size_t len;
    bool found;
};

static enum etag_step etag_compare(const struct etag_text *t, void *cls)
{
    struct etag_search *q = cls;

    q->found = t->len == q->len && memcmp(t->p, q->text, q->len) == 0;
    return q->found ? ETAG_STOP : ETAG_NEXT;
}

bool etag_header_has(const char *s, size_t len, const char *text, size_t text_len)
{
    struct etag_search q = {text, text_len, false};
    bool any;

    if (etag_walk(s, len, &any, etag_compare, &q) != 0)
        return false;
    return any || q.found;
}

char *etag_format(int64_t v, char *out)
{
    snprintf(out, ETAG_VERSION_MAX, "\"%lld\"", (long long)v);
    return out;
}

int parse_int_range(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    /* strtoll alone would accept leading white space and '+'. */
    if (s == NULL || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

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

size_t url_unescape(char *s)
{
    char *w = s;
    const char *rd = s;

    while (*rd != '\0') {
        if (rd[0] == '%' && isxdigit((unsigned char)rd[1]) && isxdigit((unsigned char)rd[2])) {
            char hex[3] = {rd[1], rd[2], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            if (v != 0) {
                *w++ = (char)v;
                rd += 3;
                continue;
            }
        }
        *w++ = *rd++;
    }
    *w = '\0';
    return (size_t)(w - s);
}

bool origin_listed(const char *list, const char *origin)
{
    size_t ol = strlen(origin);

    if (list == NULL)
        return false;
    if (strcmp(list, "*") == 0)
        return true;
    while (*list != '\0') {
        const char *end = strchr(list, ',');
        size_t l = end != NULL ? (size_t)(end - list) : strlen(list);
        while (l > 0 && *list == ' ')
            list++, l--;
        while (l > 0 && list[l - 1] == ' ')
            l--;
        if (l == ol && memcmp(list, origin, l) == 0)
            return true;
        if (end == NULL)
            break;
        list = end + 1;
    }
    return false;
}

/* The q value of one Accept-Encoding element's parameters (";q=0.5" ...),
 * 1 when absent; q=0 (any number of zeros) is the only refusal. */
static bool coding_q_positive(const char *p, const char *end)
{
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t'))
            p++;
        if (end - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            p += 2;
            while (p < end && (*p == '0' || *p == '.'))
                p++;
            return p < end && *p >= '1' && *p <= '9';
        }
        while (p < end && *p != ';')
            p++;
    }
    return true;
}

bool accepts_gzip(const char *accept_encoding)
{
    const char *p = accept_encoding;
    int gzip = -1, star = -1; /* -1 unnamed, 0 refused, 1 accepted */

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p + strcspn(p, ",");
        size_t nl = strcspn(p, ",; \t");
        bool ok = coding_q_positive(p + nl, end);
        if ((nl == 4 && strncasecmp(p, "gzip", 4) == 0) ||
            (nl == 6 && strncasecmp(p, "x-gzip", 6) == 0))
            gzip = ok;
        else if (nl == 1 && *p == '*')
            star = ok;
        p = end;
    }
    return gzip == 1 || (gzip == -1 && star == 1);
}
