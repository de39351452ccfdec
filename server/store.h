/* store.h -- every database query of vexil, one small function each.
 *
 * The queries live in one file per table (store_flags.c, store_events.c,
 * store_version.c, store_tokens.c) or per transaction made of them
 * (store_flag_writes.c, store_snapshot.c); store.c holds the connections,
 * failures and the transaction runner.
 *
 * Writes run through store_run_transaction(), which retries serialization
 * failures and deadlocks and reports a lost connection as STORE_UNAVAILABLE
 * so the HTTP layer can answer 503 with nothing half-written.  Every write
 * that changes the flag set increments the global version (table
 * vexil_state) and sends NOTIFY vexil, '<version>' in the same transaction;
 * token writes send NOTIFY vexil, 'tokens'.  All statements are
 * parameterised.
 *
 * A PGconn is used by one thread at a time: the database threads use
 * store_thread_conn(), the listener has its own.  Every function taking a
 * PGconn answers STORE_UNAVAILABLE when it is NULL, so the result of
 * store_thread_conn() may be passed straight in. */
#ifndef VX_STORE_H
#define VX_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "flag.h"
#include "plan.h"
#include "snapshot.h"
#include "vx.h"

#define STORE_CHANNEL "vexil"

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,    /* no such flag / event / token */
    STORE_CONFLICT,     /* name taken; revert of an event whose before is null */
    STORE_PRECONDITION, /* If-Match revision is not current */
    STORE_UNAVAILABLE,  /* database unreachable or connection lost */
    STORE_ERROR,        /* anything else (logged) */
    STORE_INVALID,      /* the body names an environment or segment that does not exist
                           (store_last_error names it) */
};

/* A flag in every environment: flags[i] is the flag as envs[i] sees it,
 * in the environments' creation order (the default's state is not
 * necessarily first). */
struct flag_envs {
    struct vx_flag *flags;
    char **envs;
    size_t n;
};
void flag_envs_free(struct flag_envs *fe);

/* The admin flag object of fe with envs[top]'s state at top level and
 * "environments": {env: state} (docs/api.md §6).  New reference; NULL on
 * OOM. */
json_t *flag_envs_json(const struct flag_envs *fe, size_t top);

/* The bounds on every database call (docs/operations.md §1).  A statement
 * that runs past statement_timeout_ms, or waits past lock_timeout_ms for a
 * lock, is cancelled by the server; one whose answer does not come within
 * statement_timeout_ms plus a second (a hung network) is given up here and
 * its connection closed.  Connecting gives up after connect_timeout_s. */
struct store_limits {
    int connect_timeout_s;
    int statement_timeout_ms;
    int lock_timeout_ms;
};
#define STORE_LIMITS_DEFAULT                                                                       \
    {                                                                                              \
        .connect_timeout_s = 3, .statement_timeout_ms = 5000, .lock_timeout_ms = 2000              \
    }

/* Remember the conninfo (URI or key=value; NULL or "" = libpq defaults)
 * used by store_connect() and store_thread_conn(), and the limits (NULL:
 * the defaults).  Copies the string.  Call before any thread uses the
 * store. */
void store_configure(const char *conninfo, const struct store_limits *limits);

/* From now on every wait for the database gives up at once (SIGTERM: the
 * threads that wait can then be joined). */
void store_shutdown(void);

/* A new connection (application_name=vexil, TCP keepalives, the limits
 * above), or NULL (err filled) if the database cannot be reached in time.
 * Caller PQfinish()es. */
PGconn *store_connect(struct vx_error *err);

/* Run one statement on c (a NULL params entry is SQL NULL) and wait for its
 * last result within the limits.  STORE_OK with *out the result (caller
 * PQclear()s; it may be an error result); else STORE_UNAVAILABLE (the wait
 * ran out and c is closed, or store_shutdown() was called). */
enum store_status store_exec(PGconn *c, const char *sql, int n, const char *const *params,
                             PGresult **out);

/* The calling thread's own connection, (re)connected on demand; NULL when
 * the database is unreachable (after a failed attempt the thread does not
 * try again for a second, so a dead database answers fast).  Owned by the
 * thread; closed when the thread exits. */
PGconn *store_thread_conn(void);

/* Make c (from store_connect()) the connection of the calling thread,
 * which has none yet: store_thread_conn() returns it from now on.  For a
 * thread that must not need a new connection later, when the database may
 * refuse one. */
void store_thread_adopt(PGconn *c);

/* Tell the store that the database answers again (the listener calls it
 * after reconnecting): threads that failed to connect retry at once
 * instead of waiting out their back-off. */
void store_database_back(void);

/* Run cb(conn, cls) inside BEGIN/COMMIT; roll back when cb returns anything
 * but STORE_OK; retry up to 5 times on SQLSTATE 40001/40P01, or when cb
 * asked for it with store_retry() (store_int.h). */
enum store_status store_run_transaction(PGconn *c, enum store_status (*cb)(PGconn *c, void *cls),
                                        void *cls);

/* Load flags, live tokens and the version in one REPEATABLE READ
 * transaction into a new snapshot (refs = 1, caller owns). */
enum store_status store_snapshot_load(PGconn *c, struct vx_snapshot **out);

/* prev brought up to date by reading only what changed since its version
 * (docs/propagation.md): a new snapshot (refs = 1, caller owns) that shares
 * prev's unchanged flags.  STORE_OK with *out NULL when the changes since
 * prev cannot be read from the change log (load in full instead). */
enum store_status store_snapshot_update(PGconn *c, const struct vx_snapshot *prev,
                                        struct vx_snapshot **out);

/* The version and the live tokens (caller frees each name and the array),
 * read together: what the periodic check compares with the snapshot. */
enum store_status store_check(PGconn *c, int64_t *version, struct vx_token **tokens, size_t *n);

/* All flags sorted by name as the default environment has them (for
 * `vexil stale`); caller frees each with flag_free and the array with
 * free. */
enum store_status store_flags_all(PGconn *c, struct vx_flag **flags, size_t *n);

/* The names that the flags' history knows but no flag has now -- the
 * deleted flags (for `vexil refs`) -- sorted in strcmp order; caller frees
 * each and the array. */
enum store_status store_flags_deleted(PGconn *c, char ***names, size_t *n);

/* Writes.  actor is the acting token's name.  now is µs since epoch.  env
 * is the request's environment, which the top-level state fields of a
 * patch set.  On success *out (if not NULL) receives the flag as written
 * (caller flag_envs_free()s) and *version the new sequence number.  A
 * patch naming an environment or a segment that does not exist:
 * STORE_INVALID. */

/* STORE_CONFLICT if the name exists. */
enum store_status store_flag_create(PGconn *c, const struct vx_flag_patch *p, const char *env,
                                    const char *actor, int64_t now, struct flag_envs *out,
                                    int64_t *version);

/* if_match < 0: unconditional; if_match == 0: any existing flag ("*");
 * else the revision that must be current (STORE_PRECONDITION otherwise).
 * A patch that changes nothing: STORE_OK, *out the current flag, *version 0
 * (nothing written, no event, no NOTIFY). */
enum store_status store_flag_update(PGconn *c, const char *name, const struct vx_flag_patch *p,
                                    const char *env, int64_t if_match, const char *actor,
                                    int64_t now, struct flag_envs *out, int64_t *version);

enum store_status store_flag_delete(PGconn *c, const char *name, int64_t if_match,
                                    const char *actor, int64_t now, int64_t *version);

/* One page of history: {"events":[{id, at, actor, action, before, after}],
 * "next": id|null}, newest first, at most limit events with ids below
 * before (0: from the newest); next is the before of the following page,
 * null on the last.  STORE_NOT_FOUND if the name never had an event (a
 * page past the end is empty, not missing).  *out new reference. */
#define STORE_HISTORY_LIMIT_DEFAULT 50
#define STORE_HISTORY_LIMIT_MAX     500
enum store_status store_flag_history(PGconn *c, const char *name, int limit, int64_t before,
                                     json_t **out);

/* Put back what event event_id changed as it was before it: the
 * definition if the event changed it, and the state of each environment it
 * names (the event must belong to name, else STORE_NOT_FOUND; before null:
 * STORE_CONFLICT).  Brings back a deleted flag.  Records a `revert`
 * event. */
enum store_status store_flag_revert(PGconn *c, const char *name, int64_t event_id,
                                    const char *actor, int64_t now, struct flag_envs *out,
                                    int64_t *version);

/* Environments (docs/api.md §6).  Each answers the environment's object
 * {name, description, default, version, created_at} in *out (new
 * reference) and the new sequence number in *version.  Create:
 * STORE_CONFLICT when the name is taken; every flag gets a disabled state
 * there.  Update: description NULL leaves it; make_default makes it the
 * default (and no other).  Delete: STORE_CONFLICT for the default; its
 * states go, its tokens are revoked, history stays.  STORE_NOT_FOUND for
 * an unknown name.  Each records a webhook event by actor. */
enum store_status store_env_create(PGconn *c, const char *name, const char *description,
                                   const char *actor, json_t **out, int64_t *version);
enum store_status store_env_update(PGconn *c, const char *name, const char *description,
                                   bool make_default, const char *actor, json_t **out,
                                   int64_t *version);
enum store_status store_env_delete(PGconn *c, const char *name, const char *actor,
                                   int64_t *version);

/* Segments (docs/api.md §7).  A create or update body: the fields it sets. */
struct segment_patch {
    bool set_description, set_users;
    char *description;
    char **users; /* sorted, distinct */
    size_t n_users;
};

/* The JSON object of a segment: {name, description, users (with_users) or
 * users_count, created_at, updated_at, revision}.  New reference; NULL on
 * OOM. */
json_t *segment_json(const struct vx_segment *g, bool with_users);

/* Segment writes, each with an event and a version bump of every
 * environment whose flags name the segment (none for a create or a
 * delete, which only an unused segment allows).  *out (caller
 * segment_clear()s) the segment as written.  Create: STORE_CONFLICT when
 * the name is taken.  Update and delete: STORE_NOT_FOUND, and
 * STORE_PRECONDITION when if_match > 0 is not the revision.  Delete:
 * STORE_CONFLICT while a flag names it, with used naming one. */
enum store_status store_segment_create(PGconn *c, const char *name, const struct segment_patch *p,
                                       const char *actor, int64_t now, struct vx_segment *out,
                                       int64_t *version);
enum store_status store_segment_update(PGconn *c, const char *name, const struct segment_patch *p,
                                       int64_t if_match, const char *actor, int64_t now,
                                       struct vx_segment *out, int64_t *version);
enum store_status store_segment_delete(PGconn *c, const char *name, int64_t if_match,
                                       const char *actor, int64_t now, int64_t *version,
                                       char used[256]);

/* The history of a segment, as store_flag_history. */
enum store_status store_segment_history(PGconn *c, const char *name, int limit, int64_t before,
                                        json_t **out);

/* Release plans (docs/api.md §8).  Each write locks the flag's rows, then
 * its plan's, in that order (as a person's flag write does), so that a
 * scheduler's step and a person's write never deadlock; a step the plan
 * takes is a flag write with action "plan" and actor "plan:<started_by>".
 * *version (if not NULL) receives the sequence number of that write, 0
 * when none was made. */

/* Start p (flag, env, steps, on_alert and started_by filled in): apply its
 * first step and store it; *p becomes the plan as stored.  STORE_NOT_FOUND
 * without the flag, STORE_INVALID without the environment, STORE_CONFLICT
 * while a plan is running or paused there. */
enum store_status store_plan_start(PGconn *c, struct vx_plan *p, int64_t now, int64_t *version);

/* The plan of flag in env into *out; STORE_NOT_FOUND when none. */
enum store_status store_plan_get(PGconn *c, const char *flag, const char *env, struct vx_plan *out);

/* What a person asks of a plan. */
enum plan_op { PLAN_OP_PAUSE, PLAN_OP_RESUME, PLAN_OP_ABORT, PLAN_OP_ADVANCE };

/* Apply op to the plan of flag in env (advance takes its next step now),
 * *out the plan after it.  STORE_NOT_FOUND when there is no plan,
 * STORE_CONFLICT when its status does not allow op. */
enum store_status store_plan_control(PGconn *c, const char *flag, const char *env, enum plan_op op,
                                     int64_t now, struct vx_plan *out, int64_t *version);

/* {"plans": [plan, ...]} of env (every environment when NULL), by flag
 * name.  *out new reference. */
enum store_status store_plans_list(PGconn *c, const char *env, json_t **out);

/* Take the steps due at now (at most max), each in its own transaction
 * that rechecks it under lock, so that of several instances exactly one
 * takes it.  *taken receives how many this call took, *version the
 * highest sequence number they made, *next_due (µs) when the next step
 * falls due (0: no plan is running). */
enum store_status store_plans_take_due(PGconn *c, int64_t now, int max, int *taken,
                                       int64_t *version, int64_t *next_due);

/* How many plans have each status, counts indexed by enum plan_status. */
enum store_status store_plans_count(PGconn *c, int64_t counts[5]);

/* What an alert did. */
enum alert_outcome {
    ALERT_DISABLED,     /* the flag was turned off (and its plan halted) */
    ALERT_PAUSED,       /* the plan paused */
    ALERT_NO_PLAN,      /* nothing to do: no running or paused plan */
    ALERT_ALREADY,      /* nothing to do: the plan was already paused */
    ALERT_UNKNOWN_FLAG, /* no such flag */
    ALERT_UNKNOWN_ENV,  /* no such environment */
};

/* Apply a firing alert named alertname to flag in env: turn the flag off
 * when disable (label vexil_action="disable") or its plan's on_alert says
 * so, halting the plan; else pause a running plan.  The write's actor is
 * "alert:<alertname>".  *plan_out receives the plan after it (when
 * *had_plan). */
enum store_status store_alert_apply(PGconn *c, const char *flag, const char *env,
                                    const char *alertname, bool disable, int64_t now,
                                    enum alert_outcome *outcome, struct vx_plan *plan_out,
                                    bool *had_plan, int64_t *version);

/* When flags were last evaluated (usage.c, docs/operations.md §3).
 * store_usage_write: marks is [{"env": environment id, "flag": name or
 * null for every flag of it, "at": µs}, ...]; each state's time becomes
 * the later of its stored one and the latest mark's, in one statement.
 * store_usage_read: every row (of env only, "" for the default
 * environment, NULL for all) sorted by flag
 * name (strcmp order), then environment: envs[i], flags[i] and ats[i]
 * (µs); store_usage_free() releases the arrays. */
enum store_status store_usage_write(PGconn *c, const json_t *marks);
enum store_status store_usage_read(PGconn *c, const char *env, char ***envs, char ***flags,
                                   int64_t **ats, size_t *n);
void store_usage_free(char **envs, char **flags, int64_t *ats, size_t n);

/* Webhooks (docs/api.md §9, store_webhooks.c).
 *
 * store_outbox_insert, inside the caller's write transaction (which holds
 * the sequence row): an event for the webhooks (the flag and segment
 * histories feed the outbox by themselves, through triggers); envs (a JSON
 * array), before and after may be NULL.
 * store_webhook_create: events[0..n) (n = 0: every event); *out the
 * webhook object {id, url, events, format, created_at}.  store_webhooks_list:
 * {"webhooks": [...]}.  store_webhook_delete and store_webhook_deliveries
 * ({"deliveries": [...]}, newest first): STORE_NOT_FOUND for an unknown
 * id. */
enum store_status store_outbox_insert(PGconn *c, const char *event, const char *kind,
                                      const char *subject, int64_t at, const char *actor,
                                      const json_t *envs, const json_t *before,
                                      const json_t *after);
enum store_status store_webhook_create(PGconn *c, const char *url, const char *secret,
                                       char *const *events, size_t n, bool slack, json_t **out);
enum store_status store_webhooks_list(PGconn *c, json_t **out);
enum store_status store_webhook_delete(PGconn *c, const char *id);
enum store_status store_webhook_deliveries(PGconn *c, const char *id, int limit, json_t **out);

/* The sender.  store_webhook_lock: take (or confirm this connection holds)
 * the session advisory lock key; *held says whether it does.
 * store_webhook_due: for each webhook its oldest pending delivery, if due
 * at now, at most max, oldest event first (caller
 * store_webhook_jobs_free()s).  store_webhook_record: one attempt and what
 * became of the delivery, in one transaction.  store_webhook_queue: how
 * many deliveries are pending, and the age (s) of the oldest's event. */
struct store_webhook_job {
    char *delivery, *url, *secret;
    bool slack;
    int64_t event_id, at, created_at;
    char *event, *actor, *kind, *subject;
    json_t *environments, *before, *after;
    int attempts;
};
enum store_delivery_outcome { STORE_DELIVERY_DONE, STORE_DELIVERY_RETRY, STORE_DELIVERY_FAILED };
enum store_status store_webhook_lock(PGconn *c, int64_t key, bool *held);
enum store_status store_webhook_due(PGconn *c, int64_t now, int max,
                                    struct store_webhook_job **jobs, size_t *n);
void store_webhook_jobs_free(struct store_webhook_job *jobs, size_t n);
enum store_status store_webhook_record(PGconn *c, const char *delivery, int64_t at, int status_code,
                                       const char *error, int duration_ms,
                                       enum store_delivery_outcome outcome, int64_t next_at);
enum store_status store_webhook_queue(PGconn *c, int64_t now, int64_t *pending, int64_t *oldest_s);

/* Tokens.  store_tokens_list: {"tokens":[{id,name,role,environment,created_at,last_used_at}]}
 * of live tokens, oldest first.  store_token_create: secret is "vx_" + 43
 * base64url chars from 32 bytes of getrandom(); only its SHA-256 is stored.
 * A client or frontend token belongs to env (NULL: the default
 * environment; STORE_INVALID when it does not exist), an admin token to
 * none.  store_token_revoke: STORE_NOT_FOUND if unknown or already
 * revoked. */
enum store_status store_tokens_list(PGconn *c, json_t **out);
/* What a token create made besides its id and secret: its environment
 * ("" for an admin token) and when. */
struct store_token_made {
    char env[ENV_NAME_MAX + 1];
    int64_t created_at; /* µs */
};
enum store_status store_token_create(PGconn *c, const char *name, enum vx_role role,
                                     const char *env, char id[TOKEN_ID_LEN + 1], char secret[64],
                                     struct store_token_made *made);
enum store_status store_token_revoke(PGconn *c, const char *id);

/* Record when tokens were last used: ids[i] at ats[i] (µs), n of them, in
 * one statement.  A stamp only ever moves forward. */
enum store_status store_tokens_touch(PGconn *c, const char *const *ids, const int64_t *ats,
                                     size_t n);

/* Human text (one line) for the last failure of a store call on this
 * thread, else PQerrorMessage(c) (for logs).  Valid until the next call. */
const char *store_last_error(PGconn *c);

#endif
