/* router.h -- match a method and path against a static routing table.
 *
 * Pure (no MHD): the table lives in http.c, the matcher here, so routing is
 * unit-tested alone.  Patterns are literal segments and "*" for one
 * argument segment, e.g. "/api/flags/ * /history" (without the spaces).
 * A path whose segments match no pattern is 404; a path that matches but
 * not with this method is 405 with Allow listing the methods that do. */
#ifndef VX_ROUTER_H
#define VX_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_ARGS 2
#define ROUTER_MAX_SEGS 8

/* The router's part of a route.  A routing table is an array of the
 * caller's own entries, each beginning with this struct (the HTTP layer
 * adds a typed handler and its flags, see struct http_route), and
 * router_find() walks it with the entry's size as the stride.  So the
 * router stays pure and the compiler still checks every handler's type. */
struct router_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/flags/x/history" with "*" for an argument */
    const char *name;    /* for metrics: the pattern, or a short label */
};

struct router_match {
    const struct router_route *route; /* NULL when not matched */
    size_t index;                     /* of route in the table, when matched */
    int status;                       /* 0 when matched, else 404 or 405 */
    char allow[64];                   /* with 405: "GET, PATCH, DELETE" */
    size_t argc;
    const char *argv[ROUTER_MAX_ARGS]; /* point into buf */
    size_t argl[ROUTER_MAX_ARGS];
};

/* Match method + path against the n entries of table, each stride bytes
 * long and beginning with a struct router_route.  Arguments point into path
 * (not copied); path need not be NUL-terminated beyond len.  Empty segments
 * ("//", trailing "/") never match an argument.  HEAD matches GET routes. */
void router_find(const void *table, size_t n, size_t stride, const char *method, const char *path,
                 size_t len, struct router_match *m);

#endif
