/* auth.h -- bearer tokens (docs/api.md §4), checked against the snapshot
 * only.  This module decides; the HTTP layer (http_authenticate) answers. */
#ifndef VX_AUTH_H
#define VX_AUTH_H

#include <stdbool.h>

#include "snapshot.h"

enum auth_result {
    AUTH_OK,         /* a live token of the right role */
    AUTH_MISSING,    /* no Authorization header */
    AUTH_NOT_BEARER, /* not "Bearer <secret>" */
    AUTH_UNKNOWN,    /* no live token has this secret (unknown or revoked) */
    AUTH_FORBIDDEN,  /* a live token, but not an admin one where one is needed */
};

/* Check the Authorization header value (NULL when absent) against the live
 * tokens of s (NULL: none yet).  need: the least role that will do (VX_ROLE_FRONTEND: any).
 * bare_ok: the value may also be the secret alone, without "Bearer " (as
 * Unleash SDKs send it).  AUTH_OK sets *out and stamps the token's last
 * use in s. */
enum auth_result auth_token(struct vx_snapshot *s, const char *authorization, enum vx_role need,
                            bool bare_ok, const struct vx_token **out);

#endif
