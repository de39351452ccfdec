/* auth.h -- bearer tokens (docs/api.md §4), checked against the snapshot only. */
#ifndef VX_AUTH_H
#define VX_AUTH_H

#include "http.h"

/* Check r's Authorization header for a route needing role (ROUTE_CLIENT or
 * ROUTE_ADMIN).  0: r->token set.  -1: 401/403 queued. */
int auth_check(struct vx_req *r, int role, bool bodyless);

#endif
