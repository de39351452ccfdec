/* listen.c -- keep this instance's snapshot current.
 *
 * One thread owns one PostgreSQL connection that does nothing but LISTEN
 * vexil and reload.  Every write transaction sends NOTIFY vexil with the new
 * version (or 'tokens'); on a newer version the thread reads what changed
 * since the version it serves, in one REPEATABLE READ transaction, builds a
 * snapshot that shares every unchanged flag with the current one
 * (store_snapshot_update), publishes it, and wakes the long-polls parked on
 * older versions.  It loads everything instead after every (re)connect
 * (notifications sent while we were disconnected are lost), on any other
 * notification ('tokens', or one sent by hand to force a reload), and when
 * the change log cannot explain the versions in between.  A check of the
 * version and the live tokens every check_interval seconds catches anything
 * missed.
 * The connection's health is the instance's view of the database
 * (/readyz, /metrics); reconnects back off from 100 ms to 2 s.
 *
 * Local writers can ask for a reload and wait for it (read-your-writes),
 * through a generation counter under a mutex and an eventfd that interrupts
 * the poll. */
#include "listen.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "longpoll.h"
#include "snapshot.h"
#include "store.h"
#include "timeutil.h"
#include "webhooks.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

static pthread_t l_thread;
static bool l_started;
static atomic_bool l_stopping;
static atomic_bool l_db_up;
/* Atomic: other threads (webhooks, plans, requests) poke the listener
 * through listen_db_suspect(), and may run before listen_start() has made
 * the eventfd or after listen_stop() has closed it; a poke then does
 * nothing. */
static atomic_int l_wakefd = -1;
static unsigned l_check_s = 10;
static PGconn *l_conn;
static bool l_pending;      /* a notification asked for an update not yet done */
static bool l_pending_full; /* ... or for a full reload */

static pthread_mutex_t l_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t l_cv;  /* on the monotonic clock: time_cond_init in listen_start */
static uint64_t l_requested; /* reload generations asked for */
static uint64_t l_done;      /* highest generation whose reload is published */

static void poke(void)
{
    uint64_t one = 1;
    int fd = atomic_load(&l_wakefd);

    if (fd >= 0)
        (void)!write(fd, &one, sizeof(one));
}

static void drop_conn(const char *why)
{
    if (l_conn != NULL) {
        log_error("database connection lost (%s); serving from the snapshot", why);
        PQfinish(l_conn);
        l_conn = NULL;
    }
    atomic_store(&l_db_up, false);
}

/* Take every notification libpq has queued.  libpq reads them into its own
 * queue during any query on the connection (a reload, a token flush, the
 * version check), after which the socket stays quiet: so this runs after
 * every query here, not only when poll() says the socket is readable. */
static void take_notifications(void)
{
    PGnotify *n;

    if (l_conn == NULL)
        return;
    while ((n = PQnotifies(l_conn)) != NULL) {
        char *end = NULL;
        long long v = strtoll(n->extra, &end, 10); /* "<sequence> <env>:<version> ..." */
        if (end == n->extra || (*end != '\0' && *end != ' '))
            l_pending_full = true; /* 'tokens', or anything else */
        else if (v != snapshot_version())
            l_pending = true; /* a version we do not serve yet */
        PQfreemem(n);
        webhooks_poke(); /* whatever changed may have an event to deliver */
    }
}

/* Write the last-use stamps of s's tokens that moved since their last
 * flush, all in one statement. */
static void flush_token_use(struct vx_snapshot *s)
{
    size_t n = 0;

    if (s == NULL || s->n_tokens == 0 || l_conn == NULL)
        return;
    const char **ids = calloc(s->n_tokens, sizeof(*ids));
    int64_t *ats = calloc(s->n_tokens, sizeof(*ats));
    size_t *which = calloc(s->n_tokens, sizeof(*which));
    for (size_t i = 0; ids != NULL && ats != NULL && which != NULL && i < s->n_tokens; i++) {
        int64_t lu = atomic_load_explicit(&s->token_use[i].last_used, memory_order_relaxed);
        if (lu > s->token_use[i].flushed) {
            ids[n] = s->tokens[i].id;
            ats[n] = lu;
            which[n++] = i;
        }
    }
    if (n > 0 && store_tokens_touch(l_conn, ids, ats, n) == STORE_OK)
        for (size_t k = 0; k < n; k++)
            s->token_use[which[k]].flushed = ats[k];
    take_notifications();
    free(ids);
    free(ats);
    free(which);
}

/* flush_token_use() of the current snapshot. */
static void flush_current_token_use(void)
{
    struct vx_snapshot *s = snapshot_acquire();

    flush_token_use(s);
    snapshot_release(s);
}

static bool token_live(const uint8_t token[LP_TOKEN_LEN], void *cls)
{
    return snapshot_find_token(cls, token) != NULL;
}

/* The live tokens changed: end the held requests and streams of those that
 * are gone (docs/api.md §4). */
static void revoke_held(void)
{
    struct vx_snapshot *s = snapshot_acquire();

    longpoll_revoke(s->token_epoch, token_live, s);
    snapshot_release(s);
}

/* Bring the snapshot up to date -- from what changed since prev, or in full
 * when full is set, there is no prev, or the changes cannot be read -- into
 * *s.  A store status. */
static enum store_status load(struct vx_snapshot *prev, bool full, struct vx_snapshot **s)
{
    enum store_status st;

    *s = NULL;
    if (!full && prev != NULL) {
        st = store_snapshot_update(l_conn, prev, s);
        if (st != STORE_OK || *s != NULL)
            return st;
        log_info("the change log does not explain the versions after %lld; loading in full",
                 (long long)prev->version);
    }
    return store_snapshot_load(l_conn, s);
}

/* Load and publish; wake waiters if the version moved. 0 or -1 (connection dropped). */
static int reload(bool full)
{
    struct vx_snapshot *s = NULL;
    uint64_t gen;

    pthread_mutex_lock(&l_mu);
    gen = l_requested;
    pthread_mutex_unlock(&l_mu);
    /* What is queued now is covered by this load. */
    full = full || l_pending_full;
    l_pending = l_pending_full = false;
    /* Requests stamped the tokens of the snapshot served until now: its
     * stamps are written below, once the new one is published. */
    struct vx_snapshot *prev = snapshot_acquire();
    enum store_status st = load(prev, full, &s);
    take_notifications(); /* what came during it may be newer */
    if (st != STORE_OK) {
        snapshot_release(prev);
        drop_conn(store_last_error(l_conn));
        return -1;
    }
    bool tokens_changed = prev != NULL && !snapshot_same_tokens(prev, s);
    s->token_epoch = prev == NULL ? 1 : prev->token_epoch + tokens_changed;
    snapshot_publish(s);
    /* The writers waiting for their version go first: their answer is the
     * confirmation of a rollback, and waking thousands of held requests
     * takes a while. */
    pthread_mutex_lock(&l_mu);
    if (gen > l_done)
        l_done = gen;
    pthread_cond_broadcast(&l_cv);
    pthread_mutex_unlock(&l_mu);
    if (tokens_changed)
        revoke_held(); /* before the wake-up: a revoked request gets 401, not 200 */
    longpoll_wake();   /* those whose environment's version moved, either way */
    atomic_store(&l_db_up, true);
    /* After publishing, so that the bookkeeping never delays a change. */
    flush_token_use(prev);
    snapshot_release(prev);
    return 0;
}

static int connect_and_listen(void)
{
    struct vx_error err;
    PGresult *res;

    l_conn = store_connect(&err);
    if (l_conn == NULL)
        return -1;
    res = NULL;
    if (store_exec(l_conn, "LISTEN " STORE_CHANNEL, 0, NULL, &res) != STORE_OK ||
        PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        drop_conn("LISTEN failed");
        return -1;
    }
    PQclear(res);
    take_notifications();
    if (reload(true) != 0)
        return -1;
    store_database_back();
    log_info("listening for changes; snapshot version %lld", (long long)snapshot_version());
    return 0;
}

/* The periodic check: do the version and the live tokens in the database
 * still match the snapshot's?  Catches whatever a notification missed.
 * 0 they match, 1 they do not (reload), -1 the query failed. */
static int check(void)
{
    int64_t v;
    struct vx_token *tokens = NULL;
    size_t n = 0;

    if (store_check(l_conn, &v, &tokens, &n) != STORE_OK)
        return -1;
    take_notifications();
    struct vx_snapshot *s = snapshot_acquire();
    bool same = s != NULL && s->version == v && snapshot_tokens_are(s, tokens, n);
    snapshot_release(s);
    for (size_t i = 0; i < n; i++)
        token_free(&tokens[i]);
    free(tokens);
    return same ? 0 : 1;
}

/* Read what the socket has; false if the connection broke. */
static bool consume(void)
{
    if (PQconsumeInput(l_conn) == 0)
        return false;
    take_notifications();
    return true;
}

static void *listen_main(void *arg)
{
    int backoff = BACKOFF_MIN_MS;
    int64_t next_check = time_monotonic_us() + (int64_t)l_check_s * VX_USEC_PER_SEC;

    (void)arg;
    while (!atomic_load(&l_stopping)) {
        bool need;
        if (l_conn == NULL) {
            if (connect_and_listen() != 0) {
                struct pollfd p = {.fd = atomic_load(&l_wakefd), .events = POLLIN};
                poll(&p, 1, backoff);
                backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                continue;
            }
            backoff = BACKOFF_MIN_MS;
        }
        int64_t now = time_monotonic_us();
        bool pending = l_pending || l_pending_full;
        int timeout = next_check > now && !pending ? (int)((next_check - now) / 1000) + 1 : 0;
        struct pollfd p[2] = {{.fd = PQsocket(l_conn), .events = POLLIN},
                              {.fd = atomic_load(&l_wakefd), .events = POLLIN}};
        if (poll(p, 2, timeout) < 0 && errno != EINTR)
            continue;
        if (p[1].revents & POLLIN) {
            uint64_t v;
            (void)!read(p[1].fd, &v, sizeof(v));
        }
        if ((p[0].revents & (POLLIN | POLLERR | POLLHUP)) && !consume()) {
            drop_conn("connection closed");
            continue;
        }
        pthread_mutex_lock(&l_mu);
        need = l_requested > l_done;
        pthread_mutex_unlock(&l_mu);
        if (time_monotonic_us() >= next_check) {
            next_check = time_monotonic_us() + (int64_t)l_check_s * VX_USEC_PER_SEC;
            flush_current_token_use();
            int c = check();
            if (c < 0) {
                drop_conn("version check failed");
                continue;
            }
            need = need || c > 0;
        }
        if (need || l_pending || l_pending_full)
            reload(false);
    }
    if (l_conn != NULL) {
        flush_current_token_use();
        PQfinish(l_conn);
        l_conn = NULL;
    }
    return NULL;
}

int listen_start(unsigned check_interval_s)
{
    l_check_s = check_interval_s > 0 ? check_interval_s : 10;
    if (time_cond_init(&l_cv) != 0)
        return -1;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -1;
    atomic_store(&l_wakefd, fd);
    atomic_store(&l_stopping, false);
    if (connect_and_listen() != 0)
        log_error("database unreachable at start; will keep trying");
    if (pthread_create(&l_thread, NULL, listen_main, NULL) != 0)
        return -1;
    l_started = true;
    return 0;
}

void listen_stop(void)
{
    if (!l_started)
        return;
    atomic_store(&l_stopping, true);
    poke();
    pthread_join(l_thread, NULL);
    l_started = false;
    close(atomic_exchange(&l_wakefd, -1));
}

bool listen_db_up(void)
{
    return atomic_load(&l_db_up);
}

void listen_db_suspect(void)
{
    pthread_mutex_lock(&l_mu);
    l_requested++;
    pthread_mutex_unlock(&l_mu);
    poke();
}

bool listen_await_version(int64_t version, int timeout_ms)
{
    struct timespec ts;
    bool ok;

    if (snapshot_version() >= version)
        return true;
    time_deadline_ts(timeout_ms, &ts);
    pthread_mutex_lock(&l_mu);
    l_requested++;
    poke();
    while (snapshot_version() < version)
        if (pthread_cond_timedwait(&l_cv, &l_mu, &ts) != 0)
            break;
    ok = snapshot_version() >= version;
    pthread_mutex_unlock(&l_mu);
    return ok;
}

bool listen_reload_sync(int timeout_ms)
{
    struct timespec ts;
    uint64_t target;
    bool ok;

    time_deadline_ts(timeout_ms, &ts);
    pthread_mutex_lock(&l_mu);
    target = ++l_requested;
    poke();
    while (l_done < target)
        if (pthread_cond_timedwait(&l_cv, &l_mu, &ts) != 0)
            break;
    ok = l_done >= target;
    pthread_mutex_unlock(&l_mu);
    return ok;
}
