/* metrics.h -- Prometheus counters kept with atomics, rendered on demand. */
#ifndef VX_METRICS_H
#define VX_METRICS_H

#include <stddef.h>

#include "http.h"

/* routes: the routing table (labels come from each route's base.name). */
int metrics_init(const struct http_route *routes, size_t n);
/* route: index in the table, or -1 for requests that matched none. */
void metrics_observe(int route, unsigned status, double seconds);
/* The /metrics text; caller frees. */
char *metrics_render(size_t *len);

#endif
