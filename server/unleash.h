/* unleash.h -- vexil's flags in Unleash's formats (docs/unleash.md): the
 * pure part of the Unleash SDK compatibility.
 *
 * An Unleash SDK evaluates flags itself from the strategies the server
 * sends.  unleash_features() writes each flag so that every evaluation an
 * SDK makes equals vexil's own (docs/evaluation.md):
 *
 *   not enabled, or on for nobody          -> enabled: false
 *   percentage 100                         -> [default]
 *   listed users and segment users         -> [userWithId {userIds}]
 *     (an id with a comma: a default strategy constrained userId IN [...];
 *      with a blank or non-ASCII character at either end, which the SDKs
 *      may trim: constrained userId REGEX ^(?:...)$, escaped)
 *   0 < percentage < 100                   -> [flexibleRollout {rollout,
 *                                             stickiness userId, groupId name}]
 *
 * An SDK turns a flag on when any strategy is on, and flexibleRollout with
 * userId stickiness is off for a user without an id, as vexil's rule 4. */
#ifndef VX_UNLEASH_H
#define VX_UNLEASH_H

#include <jansson.h>

#include "snapshot.h"

/* The client features body of environment e of s:
 * {"version": 2, "features": [...], "segments": [], "query":
 * {"environment": name}, "meta": {"revision": version}} (vexil's segments
 * travel as the users they hold).  New reference; NULL on OOM. */
json_t *unleash_features(const struct vx_snapshot *s, const struct vx_env *e);

/* The strategies of flag f (of s) as above: a new array, empty when the
 * flag is on for nobody.  NULL on OOM. */
json_t *unleash_strategies(const struct vx_snapshot *s, const struct vx_flag *f);

#endif
