/* migrate.c -- bring the database schema up to date.
 *
 * The SQL files of migrations/ are compiled into the binary (see
 * gen_migrations.py), so the table migrate_migrations[] is all this file
 * needs.  schema_migrations records which numbers have run.
 *
 * Several instances may start at once (a rolling deploy, a replica set
 * coming up together), so the whole run holds a session-level advisory
 * lock: the first instance applies the pending migrations, the others wait
 * on the lock, then find nothing left to do.  If the process dies, its
 * session ends and PostgreSQL drops the lock.
 *
 * Each migration runs in its own transaction together with the row that
 * records it, so a failed migration leaves neither a half-applied schema
 * nor a record; fixing the file and running again is enough.  A number in
 * schema_migrations that this binary does not know (a newer binary ran
 * first) is ignored, so an older instance keeps working during a deploy. */
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Arbitrary, fixed: "vexil" in ASCII.  Every instance must use the same. */
#define MIGRATE_LOCK_KEY "508508531052"

/* Fill err from a failed result (or the connection when r is NULL) and
 * return -1.  Lost connections are VX_E_UNAVAILABLE. */
static int migrate_fail(PGconn *c, const PGresult *r, struct vx_error *err, const char *what)
{
    const char *primary = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *code = PQstatus(c) == CONNECTION_OK ? MIGRATE_E_FAILED : VX_E_UNAVAILABLE;
    char line[200];
    size_t n = 0;

    if (primary != NULL)
        return vx_fail(err, code, "%s: %s (SQLSTATE %s)", what, primary,
                       state != NULL ? state : "?");
    /* libpq's own messages span lines: keep one. */
    for (const char *p = PQerrorMessage(c); *p != '\0' && n + 1 < sizeof line; p++) {
        if (*p != '\n' && *p != '\t')
            line[n++] = *p;
        else if (n > 0 && line[n - 1] != ' ')
            line[n++] = ' ';
    }
    while (n > 0 && line[n - 1] == ' ')
        n--;
    line[n] = '\0';
    return vx_fail(err, code, "%s: %s", what, line);
}

/* Run one statement (no result rows wanted). 0 or -1 with err filled. */
static int migrate_exec(PGconn *c, const char *sql, int n, const char *const *params,
                        struct vx_error *err, const char *what)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    int rc = 0;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        rc = migrate_fail(c, r, err, what);
    PQclear(r);
    return rc;
}

static const char SQL_LOCK[] = "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")";
static const char SQL_UNLOCK[] = "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")";

/* Create the bookkeeping table unless it exists (checked first rather than
 * CREATE ... IF NOT EXISTS, which would print a NOTICE on every start). */
static const char SQL_HAS_TABLE[] = "SELECT to_regclass('schema_migrations') IS NOT NULL";
static const char SQL_CREATE_TABLE[] = "CREATE TABLE schema_migrations ("
                                       " version integer PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

static int migrate_ensure_table(PGconn *c, struct vx_error *err)
{
    PGresult *r = PQexec(c, SQL_HAS_TABLE);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        int rc = migrate_fail(c, r, err, "looking for schema_migrations");
        PQclear(r);
        return rc;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (exists)
        return 0;
    return migrate_exec(c, SQL_CREATE_TABLE, 0, NULL, err, "creating schema_migrations");
}

/* Which of the known migrations have run: done[i] for migrate_migrations[i]. */
static const char SQL_APPLIED[] = "SELECT version FROM schema_migrations";

static int migrate_applied(PGconn *c, bool *done, struct vx_error *err)
{
    PGresult *r = PQexec(c, SQL_APPLIED);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = migrate_fail(c, r, err, "reading schema_migrations");
        PQclear(r);
        return rc;
    }
    for (int row = 0; row < PQntuples(r); row++) {
        long v = strtol(PQgetvalue(r, row, 0), NULL, 10);
        for (size_t i = 0; i < migrate_n_migrations; i++)
            if (migrate_migrations[i].number == v)
                done[i] = true;
    }
    PQclear(r);
    return 0;
}

static const char SQL_RECORD[] = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

/* Apply one migration and record it, in one transaction. */
static int migrate_apply(PGconn *c, const struct migrate_migration *m, struct vx_error *err)
{
    char what[160], number[16];
    snprintf(what, sizeof what, "migration %04d_%s", m->number, m->name);
    snprintf(number, sizeof number, "%d", m->number);
    const char *params[] = {number, m->name};

    if (migrate_exec(c, "BEGIN", 0, NULL, err, what) != 0)
        return -1;
    /* PQexec, not PQexecParams: a migration holds several statements. */
    PGresult *r = PQexec(c, m->sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        migrate_fail(c, r, err, what);
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    if (migrate_exec(c, SQL_RECORD, 2, params, err, what) != 0 ||
        migrate_exec(c, "COMMIT", 0, NULL, err, what) != 0)
        goto rollback;
    return 0;

rollback:
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    return -1;
}

int migrate_run(PGconn *c, int *applied, struct vx_error *err)
{
    int n = 0, rc = -1;
    bool *done = calloc(migrate_n_migrations, sizeof *done);

    if (applied != NULL)
        *applied = 0;
    if (done == NULL)
        return vx_fail(err, MIGRATE_E_FAILED, "out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        free(done);
        return migrate_fail(c, NULL, err, "connecting");
    }
    if (PQtransactionStatus(c) != PQTRANS_IDLE) {
        free(done);
        return vx_fail(err, MIGRATE_E_FAILED, "migrate_run called inside a transaction");
    }
    if (migrate_exec(c, SQL_LOCK, 0, NULL, err, "taking the migration lock") != 0) {
        free(done);
        return -1;
    }
    if (migrate_ensure_table(c, err) != 0 || migrate_applied(c, done, err) != 0)
        goto unlock;
    for (size_t i = 0; i < migrate_n_migrations; i++) {
        if (done[i])
            continue;
        if (migrate_apply(c, &migrate_migrations[i], err) != 0)
            goto unlock;
        n++;
    }
    rc = 0;

unlock:
    /* On a lost connection the server has already dropped the lock. */
    if (PQstatus(c) == CONNECTION_OK) {
        struct vx_error unlock_err;
        if (migrate_exec(c, SQL_UNLOCK, 0, NULL, &unlock_err, "releasing the lock") != 0 &&
            rc == 0) {
            /* Keeping the lock would block every other instance. */
            if (err != NULL)
                *err = unlock_err;
            rc = -1;
        }
    }
    free(done);
    if (applied != NULL)
        *applied = n;
    return rc;
}
