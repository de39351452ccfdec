/* store_tokens.c -- the tokens table: API tokens, kept as the SHA-256 of
 * their secret.
 *
 * Why.  A token secret is shown once, when it is made, and never stored:
 * the table holds its SHA-256 (bytea), its name, role and stamps.  A
 * revoked token keeps its row (revoked_at set) so that its id stays known.
 * Every change to the set of live tokens sends NOTIFY vexil, 'tokens' in
 * its transaction, and the reloader then builds a snapshot with them.
 *
 * How.  A secret is "vx_" + 43 base64url characters from 32 bytes of
 * getrandom() (docs/decisions.md "HTTP").  The hash crosses the wire as hex
 * (encode()/decode() on the server side).  last_used_at is written in
 * batches by the listener (store_tokens_touch) and only ever moves forward,
 * so that batches may arrive in any order.  An id that is not a canonical
 * uuid is refused before it reaches the ::uuid cast, which would fail the
 * statement. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "encode.h"
#include "sha256.h"
#include "store_int.h"
#include "text.h"

#define STORE_SECRET_BYTES 32

/* clang-format off */
static const char SQL_TOKENS_LIVE[] =
    "SELECT id::text, name, role, encode(secret_hash, 'hex'), " US("last_used_at") ", "
           "environment "
    "FROM tokens "
    "WHERE revoked_at IS NULL";

static const char SQL_TOKENS_LIST[] =
    "SELECT id::text, name, role, environment, " US("created_at") ", " US("last_used_at") " "
    "FROM tokens "
    "WHERE revoked_at IS NULL "
    "ORDER BY created_at, id";

/* A row of SQL_TOKENS_LIST as the API shows it (never the secret). */
static const struct store_json_field token_fields[] = {
    {"id",           store_text_json},
    {"name",         store_text_json},
    {"role",         store_text_json},
    {"environment",  store_text_or_null_json},
    {"created_at",   store_time_json},
    {"last_used_at", store_time_json},
};

/* A client or frontend token belongs to $5, else to the default
 * environment; none is inserted when that environment does not exist. */
static const char SQL_TOKEN_INSERT[] =
    "WITH env AS (SELECT CASE WHEN $3 = 'admin' THEN NULL "
                            "ELSE coalesce($5, (SELECT name FROM environments "
                                               "WHERE is_default)) END AS name) "
    "INSERT INTO tokens (id, name, role, secret_hash, environment) "
    "SELECT $1::uuid, $2, $3, decode($4, 'hex'), env.name "
    "FROM env "
    "WHERE $3 = 'admin' OR EXISTS (SELECT 1 FROM environments e WHERE e.name = env.name) "
    "RETURNING coalesce(environment, ''), " US("created_at");

static const char SQL_TOKEN_REVOKE[] =
    "UPDATE tokens "
    "SET revoked_at = now() "
    "WHERE id = $1::uuid AND revoked_at IS NULL";

/* Only ever moves last_used_at forward, so batches may arrive in any order.
 * $1 and $2 are parallel arrays of ids and µs stamps. */
static const char SQL_TOKENS_TOUCH[] =
    "UPDATE tokens AS t "
    "SET last_used_at = greatest(t.last_used_at, "
                                "'epoch'::timestamptz + u.at * interval '1 microsecond') "
    "FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at) "
    "WHERE t.id = u.id";
/* clang-format on */

/* Does s look like a canonical uuid?  (Anything else cannot be a token id,
 * and would make the ::uuid cast fail.) */
static bool store_uuid_valid(const char *s)
{
    uuid_t u;
    return s != NULL && strlen(s) == TOKEN_ID_LEN && uuid_parse(s, u) == 0;
}

/* Live tokens for a snapshot; caller frees each name and the array. */
enum store_status store_tokens_select(PGconn *c, struct vx_token **tokens, size_t *n)
{
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_TOKENS_LIVE, 0, NULL, &st);
    size_t rows;
    struct vx_token *t;

    *tokens = NULL;
    *n = 0;
    if (r == NULL)
        return st;
    rows = (size_t)PQntuples(r);
    t = calloc(rows > 0 ? rows : 1, sizeof *t);
    if (t == NULL) {
        PQclear(r);
        return store_fail(STORE_ERROR, "out of memory reading tokens");
    }
    for (size_t i = 0; i < rows; i++) {
        int row = (int)i;
        int64_t used = store_int64(r, row, 4);
        snprintf(t[i].id, sizeof t[i].id, "%s", PQgetvalue(r, row, 0));
        t[i].name = strdup(PQgetvalue(r, row, 1));
        int role = role_parse(PQgetvalue(r, row, 2));
        t[i].role = role < 0 ? VX_ROLE_FRONTEND : (enum vx_role)role; /* unknown: the least */
        t[i].last_used_at = used;
        if (!PQgetisnull(r, row, 5))
            t[i].env = strdup(PQgetvalue(r, row, 5));
        if (t[i].name == NULL || (!PQgetisnull(r, row, 5) && t[i].env == NULL) ||
            encode_unhex(PQgetvalue(r, row, 3), t[i].hash, SHA256_LEN) != 0) {
            for (size_t j = 0; j <= i; j++)
                token_free(&t[j]);
            free(t);
            PQclear(r);
            return store_fail(STORE_ERROR, "cannot read token %s", PQgetvalue(r, row, 0));
        }
    }
    PQclear(r);
    *tokens = t;
    *n = rows;
    return STORE_OK;
}

/* {"tokens":[...]} for the API; new reference in *out. */
static enum store_status store_tokens_list_select(PGconn *c, const void *arg, json_t **out)
{
    (void)arg;
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_TOKENS_LIST, 0, NULL, &st);

    *out = NULL;
    if (r == NULL)
        return st;
    *out = store_rows_json(r, PQntuples(r), "tokens", token_fields,
                           sizeof token_fields / sizeof token_fields[0]);
    PQclear(r);
    if (*out == NULL)
        return store_fail(STORE_ERROR, "out of memory listing tokens");
    return STORE_OK;
}

enum store_status store_tokens_list(PGconn *c, json_t **out)
{
    return store_read_json(c, store_tokens_list_select, NULL, out);
}

struct token_create {
    const char *id, *name, *role, *hash_hex, *env;
    struct store_token_made *made;
};

static enum store_status token_create_cb(PGconn *c, void *cls)
{
    struct token_create *t = cls;
    const char *params[] = {t->id, t->name, t->role, t->hash_hex, t->env};
    enum store_status st = STORE_OK;
    PGresult *r = store_query(c, SQL_TOKEN_INSERT, 5, params, &st);

    if (r == NULL)
        return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return store_fail(STORE_INVALID, "environment: unknown environment \"%s\"",
                          t->env != NULL ? t->env : "(the default)");
    }
    snprintf(t->made->env, sizeof t->made->env, "%s", PQgetvalue(r, 0, 0));
    t->made->created_at = store_int64(r, 0, 1);
    PQclear(r);
    return store_notify_tokens(c);
}

/* 32 bytes from the kernel's CSPRNG. 0 or -1. */
static int store_random(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(buf + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

enum store_status store_token_create(PGconn *c, const char *name, enum vx_role role,
                                     const char *env, char id[TOKEN_ID_LEN + 1], char secret[64],
                                     struct store_token_made *made)
{
    uint8_t raw[STORE_SECRET_BYTES], hash[SHA256_LEN];
    char hash_hex[2 * SHA256_LEN + 1];
    uuid_t u;
    enum store_status st;

    id[0] = '\0';
    secret[0] = '\0';
    if (c == NULL)
        return STORE_UNAVAILABLE;
    if (store_random(raw, sizeof raw) != 0)
        return store_fail(STORE_ERROR, "getrandom: %s", strerror(errno));
    memcpy(secret, "vx_", 3);
    encode_base64url(raw, sizeof raw, secret + 3); /* 43 characters */
    explicit_bzero(raw, sizeof raw);
    sha256(secret, strlen(secret), hash);
    encode_hex(hash, sizeof hash, hash_hex);
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);

    struct store_token_made ignored;
    struct token_create t = {id,       name, role_name(role),
                             hash_hex, env,  made != NULL ? made : &ignored};
    st = store_run_transaction(c, token_create_cb, &t);
    if (st != STORE_OK) {
        explicit_bzero(secret, 64);
        id[0] = '\0';
    }
    return st;
}

static enum store_status token_revoke_cb(PGconn *c, void *cls)
{
    const char *params[] = {cls};
    long rows = 0;
    enum store_status st = store_command(c, SQL_TOKEN_REVOKE, 1, params, &rows);

    if (st == STORE_OK && rows == 0)
        st = STORE_NOT_FOUND;
    if (st == STORE_OK)
        st = store_notify_tokens(c);
    return st;
}

enum store_status store_token_revoke(PGconn *c, const char *id)
{
    if (!store_uuid_valid(id))
        return c == NULL ? STORE_UNAVAILABLE : STORE_NOT_FOUND;
    return store_run_transaction(c, token_revoke_cb, (void *)id);
}

enum store_status store_tokens_touch(PGconn *c, const char *const *ids, const int64_t *ats,
                                     size_t n)
{
    struct buf id_list = {0}, at_list = {0};
    int bad = buf_adds(&id_list, "{") | buf_adds(&at_list, "{");
    enum store_status st;

    /* Array literals: an id is a canonical uuid (checked) and a stamp a
     * number, so neither needs quoting. */
    for (size_t i = 0; i < n; i++) {
        if (!store_uuid_valid(ids[i]))
            continue;
        bad |= buf_addf(&id_list, "%s%s", id_list.len > 1 ? "," : "", ids[i]);
        bad |= buf_addf(&at_list, "%s%lld", at_list.len > 1 ? "," : "", (long long)ats[i]);
    }
    bad |= buf_adds(&id_list, "}") | buf_adds(&at_list, "}");
    if (bad != 0)
        st = store_fail(STORE_ERROR, "out of memory recording token use");
    else if (id_list.len == 2)
        st = STORE_OK; /* nothing to write */
    else {
        const char *params[] = {id_list.p, at_list.p};
        st = store_command(c, SQL_TOKENS_TOUCH, 2, params, NULL);
    }
    buf_free(&id_list);
    buf_free(&at_list);
    return st;
}
