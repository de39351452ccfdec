/* router.c -- segment-wise matching of a path against a routing table.
 *
 * The table is small (tens of routes) and matching a request walks it once,
 * comparing segments in place: no allocation, no copy.  The same walk
 * gathers the methods of every route whose pattern matches, which is what a
 * 405's Allow header must list. */
#include "router.h"

#include <string.h>

/* Split "/a/b/c" into segments. Returns the count, or -1 if more than max. */
static int split(const char *p, size_t len, const char **seg, size_t *segl, int max)
{
    int n = 0;
    size_t i = 0;

    if (len == 0 || p[0] != '/')
        return -1;
    i = 1;
    if (len == 1)
        return 0; /* "/" */
    for (;;) {
        size_t start = i;
        while (i < len && p[i] != '/')
            i++;
        if (n == max)
            return -1;
        seg[n] = p + start;
        segl[n] = i - start;
        n++;
        if (i >= len)
            break;
        i++; /* skip '/'; a trailing '/' yields a final empty segment */
    }
    return n;
}

static int pattern_matches(const char *pattern, const char **seg, const size_t *segl, int nseg,
                           struct router_match *m)
{
    const char *pseg[ROUTER_MAX_SEGS];
    size_t pl[ROUTER_MAX_SEGS];
    int np = split(pattern, strlen(pattern), pseg, pl, ROUTER_MAX_SEGS);
    size_t argc = 0;

    if (np != nseg)
        return 0;
    for (int i = 0; i < np; i++) {
        if (pl[i] == 1 && pseg[i][0] == '*') {
            if (segl[i] == 0 || argc == ROUTER_MAX_ARGS)
                return 0;
            if (m != NULL) {
                m->argv[argc] = seg[i];
                m->argl[argc] = segl[i];
            }
            argc++;
        } else if (pl[i] != segl[i] || memcmp(pseg[i], seg[i], pl[i]) != 0) {
            return 0;
        }
    }
    if (m != NULL)
        m->argc = argc;
    return 1;
}

static void allow_add(char *allow, size_t cap, const char *method)
{
    size_t used = strlen(allow);
    size_t ml = strlen(method);

    /* Skip duplicates ("GET" listed by two routes). */
    const char *p = allow;
    while ((p = strstr(p, method)) != NULL) {
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
            return;
        p += ml;
    }
    if (used + ml + 3 > cap)
        return;
    if (used > 0) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, method, ml + 1);
}

void router_find(const void *table, size_t n, size_t stride, const char *method, const char *path,
                 size_t len, struct router_match *m)
{
    const char *seg[ROUTER_MAX_SEGS];
    size_t segl[ROUTER_MAX_SEGS];
    int nseg = split(path, len, seg, segl, ROUTER_MAX_SEGS);
    int path_known = 0;
    int is_head = strcmp(method, "HEAD") == 0;

    memset(m, 0, sizeof(*m));
    m->status = 404;
    if (nseg < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct router_route *r =
            (const struct router_route *)((const char *)table + i * stride);
        if (!pattern_matches(r->pattern, seg, segl, nseg, NULL))
            continue;
        path_known = 1;
        allow_add(m->allow, sizeof(m->allow), r->method);
        if (strcmp(r->method, "GET") == 0)
            allow_add(m->allow, sizeof(m->allow), "HEAD");
        if (m->route == NULL &&
            (strcmp(r->method, method) == 0 || (is_head && strcmp(r->method, "GET") == 0))) {
            pattern_matches(r->pattern, seg, segl, nseg, m);
            m->route = r;
            m->index = i;
            m->status = 0;
            m->allow[0] = '\0'; /* Allow is only for 405 */
            return;
        }
    }
    if (path_known)
        m->status = 405;
}
