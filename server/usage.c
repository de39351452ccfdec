/* usage.c -- when each flag was last evaluated (usage.h).
 *
 * Why this shape.  Knowing that nothing has asked for a flag for weeks is
 * what makes removing it safe, but the question is asked on the read path,
 * the hottest code in vexil, tens of thousands of times a second.  So the
 * read path only leaves a mark, and does even that at most once per flag,
 * environment and thread in each write period:
 *
 *   - Each thread that marks has its own ring (a single-producer,
 *     single-consumer queue) and a small direct-mapped cache of what it
 *     marked in the current period.  A mark whose (environment, name) is in
 *     the cache for this period costs a hash of the name and a compare; a
 *     new one is copied into the ring with two atomic stores.  No lock, no
 *     allocation, one clock read per new mark.
 *   - A per-user GET /flags evaluates every flag of its environment: it
 *     leaves one mark with no name, which the database write expands to
 *     every flag of that environment.
 *   - The writer thread drains every ring each period, keeps the latest
 *     time per (environment, name), writes them in ONE statement (a JSON
 *     array; the database keeps the later of the stored and the new time,
 *     so batches from several instances and a replayed batch change
 *     nothing), bumps the period (emptying every cache at once), and reads
 *     back every state's last_evaluated_at, which includes what the other
 *     instances wrote, into the table the admin answers use.
 *
 * What can be lost: the marks of the last period when the process is
 * killed (SIGTERM writes them first), and marks that find a thread's ring
 * full (1024 distinct flags marked by one thread in one period; counted
 * and logged), which the next period's marks make up for when the flag is
 * still in use. */
#include "usage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"
#include "log.h"
#include "store.h"
#include "timeutil.h"

#define RING_SIZE  1024 /* a power of two */
#define CACHE_SIZE 512  /* a power of two */

struct mark {
    int64_t env_id;
    int64_t at;  /* µs */
    uint8_t len; /* 0: every flag of env_id */
    char name[FLAG_NAME_MAX];
};

/* One thread's marks: written by that thread, drained by the writer. */
struct ring {
    struct mark marks[RING_SIZE];
    _Atomic uint64_t head; /* next to write; only the owner stores it */
    _Atomic uint64_t tail; /* next to read; only the writer stores it */
    struct {
        uint64_t key;
        uint64_t period;
    } cache[CACHE_SIZE]; /* the owner's alone */
    struct ring *next;   /* in u_rings */
};

static _Thread_local struct ring *t_ring;
static pthread_mutex_t u_rings_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ring *u_rings;          /* every thread's, under u_rings_mu */
static _Atomic uint64_t u_period = 1; /* bumped by the writer after each write */
static atomic_ullong u_dropped;

/* ---- the read path -------------------------------------------------------- */

/* FNV-1a of the environment id and the name: the cache key. */
static uint64_t mark_key(int64_t env_id, const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)env_id;

    h *= 1099511628211ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)name[i];
        h *= 1099511628211ULL;
    }
    return h | 1; /* never 0, the empty slot */
}

static struct ring *ring_of_thread(void)
{
    struct ring *r = calloc(1, sizeof *r);

    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&u_rings_mu);
    r->next = u_rings;
    u_rings = r;
    pthread_mutex_unlock(&u_rings_mu);
    t_ring = r;
    return r;
}

static void mark(int64_t env_id, const char *name, size_t len, int64_t at)
{
    struct ring *r = t_ring != NULL ? t_ring : ring_of_thread();
    uint64_t key = mark_key(env_id, name, len);
    uint64_t period = atomic_load_explicit(&u_period, memory_order_relaxed);

    if (r == NULL || len > FLAG_NAME_MAX)
        return;
    size_t slot = key & (CACHE_SIZE - 1);
    if (r->cache[slot].key == key && r->cache[slot].period == period)
        return; /* marked already in this period */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head - atomic_load_explicit(&r->tail, memory_order_acquire) >= RING_SIZE) {
        atomic_fetch_add_explicit(&u_dropped, 1, memory_order_relaxed);
        return;
    }
    struct mark *m = &r->marks[head & (RING_SIZE - 1)];
    m->env_id = env_id;
    m->at = at != 0 ? at : time_now_us();
    m->len = (uint8_t)len;
    memcpy(m->name, name, len);
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    r->cache[slot].key = key;
    r->cache[slot].period = period;
}

void usage_mark(int64_t env_id, const char *name, size_t len)
{
    mark(env_id, name, len, 0);
}

void usage_mark_all(int64_t env_id)
{
    mark(env_id, "", 0, 0);
}

void usage_mark_at(int64_t env_id, const char *name, size_t len, int64_t at)
{
    mark(env_id, name, len, at);
}

/* ---- what the database says, for admin answers ---------------------------- */

/* "env\nflag" -> µs, rebuilt whole after every write. */
struct last_table {
    char **keys;
    int64_t *at;
    size_t mask; /* slots - 1 */
};

static pthread_rwlock_t u_table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct last_table u_table;

static uint64_t key_hash(const char *env, const char *flag)
{
    uint64_t h = 1469598103934665603ULL;

    for (const char *p = env; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
    for (const char *p = flag; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static bool key_equal(const char *key, const char *env, const char *flag)
{
    size_t el = strlen(env);

    return strncmp(key, env, el) == 0 && key[el] == '\n' && strcmp(key + el + 1, flag) == 0;
}

static void table_free(struct last_table *t)
{
    for (size_t i = 0; t->keys != NULL && i <= t->mask; i++)
        free(t->keys[i]);
    free(t->keys);
    free(t->at);
    memset(t, 0, sizeof *t);
}

/* A table of rows (envs[i], flags[i], ats[i]).  0 or -1. */
static int table_build(struct last_table *t, char *const *envs, char *const *flags,
                       const int64_t *ats, size_t n)
{
    size_t slots = 16;

    while (slots < n * 2)
        slots *= 2;
    memset(t, 0, sizeof *t);
    t->keys = calloc(slots, sizeof *t->keys);
    t->at = calloc(slots, sizeof *t->at);
    t->mask = slots - 1;
    if (t->keys == NULL || t->at == NULL) {
        table_free(t);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = key_hash(envs[i], flags[i]) & t->mask;
        while (t->keys[s] != NULL)
            s = (s + 1) & t->mask;
        size_t el = strlen(envs[i]), fl = strlen(flags[i]);
        if ((t->keys[s] = malloc(el + fl + 2)) == NULL) {
            table_free(t);
            return -1;
        }
        memcpy(t->keys[s], envs[i], el);
        t->keys[s][el] = '\n';
        memcpy(t->keys[s] + el + 1, flags[i], fl + 1);
        t->at[s] = ats[i];
    }
    return 0;
}

int64_t usage_last(const char *env, const char *flag)
{
    int64_t at = 0;

    pthread_rwlock_rdlock(&u_table_lock);
    if (u_table.keys != NULL) {
        size_t s = key_hash(env, flag) & u_table.mask;
        for (; u_table.keys[s] != NULL; s = (s + 1) & u_table.mask)
            if (key_equal(u_table.keys[s], env, flag)) {
                at = u_table.at[s];
                break;
            }
    }
    pthread_rwlock_unlock(&u_table_lock);
    return at;
}

int usage_annotate(json_t *o, const char *env, const char *flag, int64_t created_at)
{
    char buf[40];
    int64_t at = usage_last(env, flag);

    if (at < created_at) /* read before this flag was made: an earlier one's */
        at = 0;
    return json_object_set_new(o, "last_evaluated_at",
                               at > 0 ? json_string(time_format_rfc3339(at, buf, sizeof buf))
                                      : json_null());
}

/* ---- the writer ----------------------------------------------------------- */

static pthread_t u_thread;
static bool u_started, u_stopping, u_joined;
static unsigned u_interval_s = 10;
static pthread_mutex_t u_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t u_cv; /* on the monotonic clock */

/* Every mark of every ring, as the JSON array the store writes:
 * [{"env": id, "flag": name|null, "at": µs}, ...], the latest per
 * (environment, name).  NULL on OOM (the marks are then lost). */
static json_t *drain(void)
{
    json_t *latest = json_object(); /* "id\nname" -> {"env","flag","at"} */
    json_t *out = json_array();
    char key[24 + FLAG_NAME_MAX + 2];

    pthread_mutex_lock(&u_rings_mu);
    for (struct ring *r = u_rings; r != NULL; r = r->next) {
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
        for (; tail != head; tail++) {
            const struct mark *m = &r->marks[tail & (RING_SIZE - 1)];
            int kl =
                snprintf(key, sizeof key, "%lld\n%.*s", (long long)m->env_id, (int)m->len, m->name);
            json_t *e = latest != NULL ? json_object_getn(latest, key, (size_t)kl) : NULL;
            if (e != NULL) {
                if (m->at > json_integer_value(json_object_get(e, "at")))
                    json_object_set_new(e, "at", json_integer(m->at));
            } else if (latest != NULL) {
                e = json_pack("{s:I, s:o, s:I}", "env", (json_int_t)m->env_id, "flag",
                              m->len > 0 ? json_stringn(m->name, m->len) : json_null(), "at",
                              (json_int_t)m->at);
                json_object_setn_new(latest, key, (size_t)kl, e);
            }
        }
        atomic_store_explicit(&r->tail, tail, memory_order_release);
    }
    pthread_mutex_unlock(&u_rings_mu);
    const char *k;
    json_t *v;
    json_object_foreach(latest, k, v)
    {
        json_array_append(out, v);
    }
    json_decref(latest);
    if (latest == NULL) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Write what is marked now.  0, or -1 (logged; the marks are lost). */
static int write_marks(PGconn *c)
{
    json_t *marks = drain();
    unsigned long long dropped = atomic_exchange(&u_dropped, 0);
    enum store_status st = STORE_OK;

    /* From here on the read path marks again what it evaluates. */
    atomic_fetch_add_explicit(&u_period, 1, memory_order_relaxed);
    if (dropped > 0)
        log_info("last evaluation: %llu marks found a full ring and were dropped", dropped);
    if (marks != NULL && json_array_size(marks) > 0)
        st = store_usage_write(c, marks);
    json_decref(marks);
    if (st != STORE_OK)
        log_error("last evaluation: cannot write: %s", store_last_error(c));
    return st == STORE_OK ? 0 : -1;
}

/* Read every instance's last evaluations into u_table. */
static void read_back(PGconn *c)
{
    char **envs = NULL, **flags = NULL;
    int64_t *ats = NULL;
    size_t n = 0;
    struct last_table t;

    if (store_usage_read(c, NULL, &envs, &flags, &ats, &n) != STORE_OK)
        return;
    if (table_build(&t, envs, flags, ats, n) == 0) {
        pthread_rwlock_wrlock(&u_table_lock);
        struct last_table old = u_table;
        u_table = t;
        pthread_rwlock_unlock(&u_table_lock);
        table_free(&old);
    }
    store_usage_free(envs, flags, ats, n);
}

static void *usage_main(void *arg)
{
    bool stopping = false;

    /* The connection usage_start() read with: open from the start, it is
     * there for the last batch at SIGTERM even if the database then takes
     * no new connection (max_connections reached). */
    if (arg != NULL)
        store_thread_adopt(arg);
    while (!stopping) {
        struct timespec ts;
        time_deadline_ts((int64_t)u_interval_s * 1000, &ts);
        pthread_mutex_lock(&u_mu);
        while (!u_stopping && pthread_cond_timedwait(&u_cv, &u_mu, &ts) == 0)
            ;
        stopping = u_stopping;
        pthread_mutex_unlock(&u_mu);
        PGconn *c = store_thread_conn();
        if (write_marks(c) == 0 && !stopping)
            read_back(c);
    }
    return NULL;
}

int usage_start(unsigned interval_s)
{
    u_interval_s = interval_s > 0 ? interval_s : 10;
    if (time_cond_init(&u_cv) != 0)
        return -1;
    /* Before the first answer: "null" would say "never evaluated". */
    PGconn *c = store_connect(NULL);
    if (c != NULL)
        read_back(c);
    u_stopping = false;
    u_joined = false;
    if (pthread_create(&u_thread, NULL, usage_main, c) != 0) {
        PQfinish(c);
        log_error("cannot start the last-evaluation writer");
        return -1;
    }
    u_started = true;
    return 0;
}

void usage_stop(int wait_ms)
{
    struct timespec ts;

    if (!u_started || u_joined)
        return;
    pthread_mutex_lock(&u_mu);
    u_stopping = true;
    pthread_cond_signal(&u_cv);
    pthread_mutex_unlock(&u_mu);
    if (wait_ms < 0) {
        pthread_join(u_thread, NULL);
        u_joined = true;
        return;
    }
    /* pthread_timedjoin_np measures on CLOCK_REALTIME. */
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    u_joined = pthread_timedjoin_np(u_thread, NULL, &ts) == 0;
}

void usage_free(void)
{
    if (!u_started || !u_joined)
        return; /* still writing: what it holds goes with the process */
    pthread_rwlock_wrlock(&u_table_lock);
    table_free(&u_table);
    pthread_rwlock_unlock(&u_table_lock);
    pthread_mutex_lock(&u_rings_mu);
    while (u_rings != NULL) {
        struct ring *next = u_rings->next;
        free(u_rings);
        u_rings = next;
    }
    pthread_mutex_unlock(&u_rings_mu);
    u_started = false;
}
