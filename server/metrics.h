/* metrics.h -- Prometheus counters kept with atomics, rendered on demand. */
#ifndef VX_METRICS_H
#define VX_METRICS_H

#include <stddef.h>

#include "router.h"

/* routes: the routing table, n entries of stride bytes each beginning with
 * a struct router_route (as for router_find); labels come from its name. */
int metrics_init(const void *routes, size_t n, size_t stride);
/* route: index in the table, or -1 for requests that matched none. */
void metrics_observe(int route, unsigned status, double seconds);
/* The /metrics text; caller frees. */
char *metrics_render(size_t *len);

#endif
