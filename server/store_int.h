/* store_int.h -- what the store_*.c files share; nothing outside them
 * includes it.
 *
 * store.c runs statements and transactions and remembers the last failure
 * of each thread; the other store files each hold the queries of one part of
 * the schema (store_flags.c the flags table, store_events.c flag_events,
 * store_version.c vexil_state and the NOTIFYs, store_tokens.c tokens) or
 * one transaction made of them (store_flag_writes.c, store_snapshot.c).
 * Each of them sees the others only through the functions declared here. */
#ifndef VX_STORE_INT_H
#define VX_STORE_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/* ------------------------------------------------------------------ */
/* SQL fragments                                                        */
/* ------------------------------------------------------------------ */

/* Timestamps cross the wire as integer µs since the epoch (see store.c).
 * US(col) reads column col so; TS(n) turns parameter $n into a timestamptz.
 * n is stringized, so TS(%d) is a printf format (store_flags.c builds its
 * statements that way). */
#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"
#define TS(n)   "('epoch'::timestamptz + $" #n "::bigint * interval '1 microsecond')"
/* A text[] from the JSON array of parameter $n, keeping its order. */
#define TEXT_ARRAY(n)                                                                              \
    "ARRAY(SELECT u FROM jsonb_array_elements_text($" #n "::jsonb) WITH ORDINALITY AS t(u, i) "    \
    "ORDER BY i)"

/* The BEGIN of every read: one consistent view, and no write by mistake. */
#define BEGIN_READ_ONLY "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

/* ------------------------------------------------------------------ */
/* Failures (store.c)                                                   */
/* ------------------------------------------------------------------ */

/* Remember a failure that is not the server's (out of memory, bad data).
 * Returns status so that callers can `return store_fail(...)`. */
__attribute__((format(printf, 2, 3))) enum store_status store_fail(enum store_status status,
                                                                   const char *fmt, ...);

/* Ask the transaction runner to roll back and run the transaction again
 * from the start (as after a serialization failure); fmt is the message
 * left when the attempts run out.  Returns STORE_ERROR. */
__attribute__((format(printf, 1, 2))) enum store_status store_retry(const char *fmt, ...);

/* Remember the failure of r (NULL: of the connection) and classify it. */
enum store_status store_failed(PGconn *c, const PGresult *r);

/* Copy a libpq message into buf on one line (they span several). */
void store_oneline(char *buf, size_t size, const char *msg);

/* Reconnect c in place (one attempt, subject to the back-off) -- only if it
 * is this thread's own connection from store_thread_conn(): any other (the
 * listener's) may carry session state such as LISTEN, which a reset would
 * silently drop, so its owner must see the failure and reconnect itself
 * (store_conn.c). */
bool store_reset(PGconn *c);

/* ------------------------------------------------------------------ */
/* Statements (store.c)                                                 */
/* ------------------------------------------------------------------ */

/* Run sql with n text parameters (a NULL entry is SQL NULL).  Returns the
 * result, which the caller PQclear()s, or NULL with *st set and the
 * failure remembered. */
PGresult *store_query(PGconn *c, const char *sql, int n, const char *const *params,
                      enum store_status *st);

/* Run a statement whose rows are not wanted; *rows (if not NULL) receives
 * how many rows it touched. */
enum store_status store_command(PGconn *c, const char *sql, int n, const char *const *params,
                                long *rows);

/* Run a statement that returns exactly one row. The result is the caller's. */
PGresult *store_query_row(PGconn *c, const char *sql, int n, const char *const *params,
                          enum store_status *st);

/* Run a statement that returns one row and read its first column as an
 * integer (NULL reads as 0). */
enum store_status store_query_int64(PGconn *c, const char *sql, int n, const char *const *params,
                                    int64_t *out);

/* Fill buf with the decimal form of v; returns buf. */
const char *store_itoa(int64_t v, char buf[24]);

/* Column col of row as an integer (NULL reads as 0) or a boolean. */
int64_t store_int64(const PGresult *r, int row, int col);
bool store_bool(const PGresult *r, int row, int col);

/* Column col of row as a JSON value: new reference, NULL on OOM. */
typedef json_t *store_json_fn(const PGresult *r, int row, int col);

/* Text as a string; an integer; a time (µs, see US) as RFC 3339 text, or
 * null for SQL NULL. */
store_json_fn store_text_json, store_text_or_null_json, store_int64_json, store_bool_json,
    store_time_json;

/* Wrap list as {"key": list}; takes list.  New reference; NULL on OOM. */
json_t *store_wrap(const char *key, json_t *list);

/* One field of the JSON object of a row: its key, and how its column
 * becomes the value. */
struct store_json_field {
    const char *key;
    store_json_fn *value;
};

/* The first rows rows of r (at most all) as objects whose field i comes
 * from column i by fields[i] (n fields), all as {"key": [...]}.  New
 * reference; NULL on OOM. */
json_t *store_rows_json(const PGresult *r, int rows, const char *key,
                        const struct store_json_field *fields, size_t n);

/* ------------------------------------------------------------------ */
/* Transactions (store.c)                                               */
/* ------------------------------------------------------------------ */

/* store_run_transaction() with the BEGIN statement of the caller's choice. */
enum store_status store_transaction(PGconn *c, const char *begin,
                                    enum store_status (*cb)(PGconn *c, void *cls), void *cls);

/* store_run_transaction() for a write that changes what is served (flags,
 * their states, segments, environments, plans).  cb runs with the sequence
 * row locked (store_sequence_lock) and waits at most 50 ms for any other
 * lock; past that the transaction is rolled back and run again after a
 * pause, until the lock timeout has passed in all (store.c, "Transactions").
 * So two writes never wait on each other in a cycle, and a row held by
 * another session holds up only the writes that need it. */
enum store_status store_write_transaction(PGconn *c, enum store_status (*cb)(PGconn *c, void *cls),
                                          void *cls);

/* The lock timeout of every connection (store_configure), in ms. */
int store_lock_timeout_ms(void);

/* Run select(c, arg, &obj) in a read-only transaction and hand obj (a new
 * reference) to *out; *out is NULL unless STORE_OK. */
enum store_status
store_read_json(PGconn *c, enum store_status (*select)(PGconn *c, const void *arg, json_t **obj),
                const void *arg, json_t **out);

/* ------------------------------------------------------------------ */
/* The flags and flag_states tables (store_flags.c)                     */
/* ------------------------------------------------------------------ */

/* Lock the rows of flag name (SELECT ... FOR UPDATE); *found tells whether
 * it exists, then *fe holds it (caller flag_envs_free()s). */
enum store_status store_flag_lock(PGconn *c, const char *name, struct flag_envs *fe, bool *found);

/* Insert the definition of f; *inserted is false when the name is taken. */
enum store_status store_flag_insert(PGconn *c, const struct vx_flag *f, bool *inserted);

/* Overwrite the definition of f->name with f's (the row must exist and be
 * locked). */
enum store_status store_flag_write(PGconn *c, const struct vx_flag *f);

/* Write f's state in env (insert or overwrite). */
enum store_status store_flag_state_write(PGconn *c, const char *env, const struct vx_flag *f);

enum store_status store_flag_remove(PGconn *c, const char *name);

/* Every flag in every environment, sorted by name in strcmp order, then by
 * environment; envs[i] the environment of flags[i].  Caller frees each
 * with flag_free and free, and the arrays with free. */
enum store_status store_flags_select(PGconn *c, struct vx_flag **flags, char ***envs, size_t *n);

/* Like store_flags_select, but only the flags the change log names after
 * version since. */
enum store_status store_flags_changed(PGconn *c, int64_t since, struct vx_flag **flags,
                                      char ***envs, size_t *n);

/* ------------------------------------------------------------------ */
/* Flag writes (store_flag_writes.c) and plans (store_plans.c)          */
/* ------------------------------------------------------------------ */

/* In the caller's transaction: set flag name's state in env to enabled
 * and, when percentage >= 0, that percentage, as an ordinary write
 * recorded with action ("plan" or "alert") and actor.  *version receives
 * the new sequence number, 0 when the state was already so.
 * STORE_NOT_FOUND when there is no such flag. */
enum store_status store_flag_state_set(PGconn *c, const char *name, const char *env, bool enabled,
                                       int percentage, const char *action, const char *actor,
                                       int64_t now, int64_t *version);

/* A person's write (its flag rows locked) changed the enabled or
 * percentage of flag's state in env: a plan running there pauses, or,
 * when turned_off, a running or paused one halts (docs/api.md §8). */
enum store_status store_plans_person_wrote(PGconn *c, const char *flag, const char *env,
                                           bool turned_off, const char *actor, int64_t now);

/* ------------------------------------------------------------------ */
/* The environments table (store_envs.c)                                */
/* ------------------------------------------------------------------ */

/* Every environment in creation order (view NULL); caller env_free()s each
 * and frees the array. */
enum store_status store_envs_select(PGconn *c, struct vx_env **envs, size_t *n);

/* The name of the default environment into buf. */
enum store_status store_default_env(PGconn *c, char buf[ENV_NAME_MAX + 1]);

/* names[0..n) as a JSON array text (for TEXT_ARRAY); caller frees; NULL
 * on OOM. */
char *store_names_json(char *const *names, size_t n);

/* Run sql with $1 the JSON array of names; *missing receives the name
 * (a pointer into names) equal to the first column of its first row, or
 * NULL when it returns none. */
enum store_status store_first_missing(PGconn *c, const char *sql, char *const *names, size_t n,
                                      const char **missing);

/* Lock the sequence number (vexil_state) until COMMIT.  Every write that
 * changes what is served takes it first (store_write_transaction), so a
 * flag create and an environment create, which add flag states, never miss
 * what the other adds, and webhook events get ids in commit order. */
enum store_status store_sequence_lock(PGconn *c);

/* Do these environments all exist?  *missing receives the first that does
 * not (a pointer into names), or NULL. */
enum store_status store_envs_exist(PGconn *c, char *const *names, size_t n, const char **missing);

/* ------------------------------------------------------------------ */
/* The segments table (store_segments.c)                                */
/* ------------------------------------------------------------------ */

/* Every segment (or those the change log names after since, since >= 0)
 * sorted by name; and with since >= 0 also the names logged that no
 * segment has now.  Caller segment_clear()s each and frees the arrays. */
enum store_status store_segments_select(PGconn *c, int64_t since, struct vx_segment **segs,
                                        size_t *n, char ***deleted, size_t *n_deleted);

/* Lock these segments against deletion (FOR KEY SHARE) and check that they
 * exist: *missing receives the first that does not, or NULL. */
enum store_status store_segments_hold(PGconn *c, char *const *names, size_t n,
                                      const char **missing);

/* ------------------------------------------------------------------ */
/* The flag_events and segment_events tables (store_events.c)           */
/* ------------------------------------------------------------------ */

/* Record action on flag name; before/after NULL where the flag did not
 * exist; envs[0..n) the environments whose state changed. */
enum store_status store_event_insert(PGconn *c, const char *name, int64_t at, const char *actor,
                                     const char *action, const struct flag_envs *before,
                                     const struct flag_envs *after, char *const *envs, size_t n);

/* Record action on segment name; before/after (taken) the segment objects,
 * NULL where none. */
enum store_status store_segment_event_insert(PGconn *c, const char *name, int64_t at,
                                             const char *actor, const char *action, json_t *before,
                                             json_t *after);

/* An event of a flag as stored: its flag name, action, `before` and
 * `after` objects (NULL when null) and the environments it changed (a JSON
 * array).  store_event_free() releases it. */
struct store_event {
    char *name;
    char *action;
    json_t *before, *after, *environments;
};
void store_event_free(struct store_event *e);

/* Event id into *e; *found false if there is no such event. */
enum store_status store_event_get(PGconn *c, int64_t id, struct store_event *e, bool *found);

/* The highest revision flag name ever had, by its history. */
enum store_status store_max_revision(PGconn *c, const char *name, int64_t *rev);

/* ------------------------------------------------------------------ */
/* vexil_state and notifications (store_version.c)                      */
/* ------------------------------------------------------------------ */

/* What a change touched, for the change log. */
enum store_change { STORE_CHANGE_FLAG, STORE_CHANGE_SEGMENT, STORE_CHANGE_ENVIRONMENT };

/* An empty list of environments for store_version_bump (NULL means all). */
extern char *const STORE_NO_ENVS[1];

/* Increment the sequence number into *version and the version of each
 * environment in envs[0..n) (envs NULL: of every environment), log that the
 * change touched name (table flag_changes, the last 10 000 kept) and
 * NOTIFY "<sequence> <env>:<version> ..." (delivered at COMMIT). */
enum store_status store_version_bump(PGconn *c, enum store_change kind, const char *name,
                                     char *const *envs, size_t n, int64_t *version);

/* How many versions after since the change log holds; *environments
 * whether any of them changed an environment itself. */
enum store_status store_changes_count(PGconn *c, int64_t since, int64_t *n, bool *environments);

/* The names logged after version since that no flag has now (deleted),
 * sorted in strcmp order; caller frees each and the array. */
enum store_status store_changes_deleted(PGconn *c, int64_t since, char ***names, size_t *n);

enum store_status store_version_select(PGconn *c, int64_t *version);

/* Run sql with the one parameter param (NULL: with none) and hand out the
 * first column of every row as strings (caller frees each and the array). */
enum store_status store_names_query(PGconn *c, const char *sql, const char *param, char ***out,
                                    size_t *n);

/* NOTIFY that the set of tokens changed (delivered at COMMIT). */
enum store_status store_notify_tokens(PGconn *c);

/* ------------------------------------------------------------------ */
/* The tokens table (store_tokens.c)                                    */
/* ------------------------------------------------------------------ */

/* Live tokens for a snapshot; caller frees each name and the array. */
enum store_status store_tokens_select(PGconn *c, struct vx_token **tokens, size_t *n);

#endif
