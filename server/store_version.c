/* store_version.c -- the global version (table vexil_state) and the
 * NOTIFYs that announce changes.
 *
 * Why.  Every write that changes the flag set increments the one version
 * number and sends NOTIFY vexil, '<version>' in the same transaction, so a
 * listener never sees a version without its change; token writes send
 * NOTIFY vexil, 'tokens' (listen.c receives both).  The single vexil_state row
 * also orders concurrent writers: each holds its lock until COMMIT.
 *
 * How.  The bump is one statement (UPDATE ... RETURNING inside a WITH, then
 * pg_notify), and PostgreSQL delivers a NOTIFY only at COMMIT, never for a
 * transaction that rolled back. */
#include "store_int.h"

/* clang-format off */
static const char SQL_VERSION_BUMP[] =
    "WITH v AS (UPDATE vexil_state "
               "SET version = version + 1 "
               "RETURNING version) "
    "SELECT version, pg_notify($1, version::text) "
    "FROM v";

static const char SQL_VERSION[] =
    "SELECT version "
    "FROM vexil_state";

static const char SQL_NOTIFY_TOKENS[] =
    "SELECT pg_notify($1, 'tokens')";
/* clang-format on */

enum store_status store_version_bump(PGconn *c, int64_t *version)
{
    const char *params[] = {STORE_CHANNEL};

    return store_query_int64(c, SQL_VERSION_BUMP, 1, params, version);
}

enum store_status store_version_select(PGconn *c, int64_t *version)
{
    return store_query_int64(c, SQL_VERSION, 0, NULL, version);
}

enum store_status store_notify_tokens(PGconn *c)
{
    const char *params[] = {STORE_CHANNEL};

    return store_command(c, SQL_NOTIFY_TOKENS, 1, params, NULL);
}
