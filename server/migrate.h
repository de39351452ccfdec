/* migrate.h -- apply the numbered SQL files of migrations/ (compiled into the
 * binary) in order, each once, under a PostgreSQL advisory lock so several
 * instances may start at once. */
#ifndef VX_MIGRATE_H
#define VX_MIGRATE_H

#include <libpq-fe.h>

#include "vx.h"

/* Apply pending migrations. *applied (if not NULL) receives how many ran.
 * 0 on success, -1 with err filled. */
int migrate_run(PGconn *c, int *applied, struct vx_error *err);

#endif
