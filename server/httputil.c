/* httputil.c -- what the HTTP layer reads from requests: entity-tag lists,
 * integer parameters, escaped paths, CORS origins, Accept-Encoding.
 *
 * ETag parsing is strict: a client that sends garbage learns so (400)
 * instead of silently never matching. */
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
