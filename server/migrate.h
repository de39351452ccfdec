/* migrate.h -- apply the numbered SQL files of migrations/ (compiled into the
 * binary) in order, each once, under a PostgreSQL advisory lock so several
 * instances may start at once. */
#ifndef VX_MIGRATE_H
#define VX_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "vx.h"

/* One migration: migrations/NNNN_name.sql, compiled into the binary by
 * server/gen_migrations.py (a meson custom_target). */
struct migrate_migration {
    int number;       /* NNNN: 1, 2, 3, ... in order */
    const char *name; /* the part after NNNN_, without .sql */
    const char *sql;  /* the whole file; may hold several statements */
};

/* The generated table, sorted by number. */
extern const struct migrate_migration migrate_migrations[];
extern const size_t migrate_n_migrations;

/* err->code of a migration that failed for another reason than the
 * database being unreachable (a statement failed). */
#define MIGRATE_E_FAILED "migration_failed"

/* Apply pending migrations. *applied (if not NULL) receives how many ran.
 * 0 on success, -1 with err filled: code VX_E_UNAVAILABLE when the database
 * cannot be reached, else MIGRATE_E_FAILED.  c must not be inside a
 * transaction. */
int migrate_run(PGconn *c, int *applied, struct vx_error *err);

#endif
