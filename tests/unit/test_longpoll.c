/* test_longpoll.c -- parking, waking and deadlines of held requests and
 * streams, without libmicrohttpd.
 *
 * longpoll.c sees a connection only as an opaque pointer that it hands to
 * the suspend and resume operations given to longpoll_init; here those
 * count calls on a fake connection, so each test can tell whether, and how
 * often, its connection was suspended and resumed.  A waiter waits on the
 * version of one environment (by id) in the real snapshot module's current
 * snapshot, set here by publishing snapshots of empty environments: A (id
 * 1) and B (id 2), or A alone, or B alone. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "longpoll.h"
#include "snapshot.h"
#include "timeutil.h"
#include "unit.h"

#define CAP 3
#define FAR (60 * VX_USEC_PER_SEC) /* a deadline that never comes during a test */

struct MHD_Connection {
    atomic_int suspended;
    atomic_int resumed;
    atomic_int misplaced; /* resumes of a connection that was not suspended */
};

static void fake_suspend(struct MHD_Connection *c)
{
    atomic_fetch_add(&c->suspended, 1);
}

static void fake_resume(struct MHD_Connection *c)
{
    if (atomic_load(&c->resumed) >= atomic_load(&c->suspended))
        atomic_fetch_add(&c->misplaced, 1);
    atomic_fetch_add(&c->resumed, 1);
}

static const struct longpoll_ops fake_ops = {fake_suspend, fake_resume};

#define ENV_A 1
#define ENV_B 2
#define GONE  (-1) /* an environment left out of the snapshot */

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Publish a snapshot (sequence number seq) where A is at version a and B
 * at version b; an environment at GONE is not in it (not both). */
static void set_versions(int64_t seq, int64_t a, int64_t b)
{
    struct snapshot_parts p = {.version = seq};
    int64_t versions[2] = {a, b};

    p.envs = calloc(2, sizeof(*p.envs));
    ck_assert_ptr_nonnull(p.envs);
    for (int i = 0; i < 2; i++) {
        if (versions[i] == GONE)
            continue;
        struct vx_env *e = &p.envs[p.n_envs++];
        e->id = i == 0 ? ENV_A : ENV_B;
        e->name = dup_or_die(i == 0 ? "a" : "b");
        e->description = dup_or_die("");
        e->version = versions[i];
        e->is_default = i == 0;
    }
    struct vx_snapshot *s = snapshot_build(NULL, &p);
    ck_assert_ptr_nonnull(s);
    snapshot_publish(s);
}

static int64_t seq; /* the next snapshot's sequence number */

/* A at v, B at 1. */
static void set_version(int64_t v)
{
    set_versions(++seq, v, 1);
}

/* Publish, then wake: the listener's order. */
static void publish_and_wake(int64_t a, int64_t b)
{
    set_versions(++seq, a, b);
    longpoll_wake();
}

/* The version of A in the current snapshot, -1 if none. */
static int64_t version_a(void)
{
    struct vx_snapshot *s = snapshot_acquire();
    const struct vx_env *e = s != NULL ? snapshot_env_by_id(s, ENV_A) : NULL;
    int64_t v = e != NULL ? e->version : -1;
    snapshot_release(s);
    return v;
}

/* Each test runs in its own child: a fresh list, A at 5 and B at 1, a timer.  The
 * waiters a test leaves registered are unlinked by the teardown's
 * longpoll_shutdown, after the test has returned: so they are static. */
static void setup(void)
{
    set_version(5);
    ck_assert_int_eq(longpoll_init(CAP, &fake_ops), 0);
}

static void teardown(void)
{
    longpoll_shutdown();
    longpoll_stop();
    snapshot_shutdown();
}

static int64_t far(void)
{
    return time_monotonic_us() + FAR;
}

/* Wait up to ms for c to have been resumed n times; true if it was. */
static bool resumed_within(struct MHD_Connection *c, int n, int ms)
{
    int64_t until = time_monotonic_us() + ms * 1000;
    struct timespec pause = {0, 1000000}; /* 1 ms */

    while (atomic_load(&c->resumed) < n) {
        if (time_monotonic_us() > until)
            return false;
        nanosleep(&pause, NULL);
    }
    return true;
}

/* ---- long-poll ---------------------------------------------------------- */

START_TEST(test_park_then_wake)
{
    static struct MHD_Connection c = {0};
    static struct lp_waiter w = {.env_id = ENV_A};

    ck_assert_int_eq(longpoll_park(&w, &c, 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(w.state, LP_PARKED);
    ck_assert_int_eq(w.since_version, 5);
    ck_assert_int_eq(atomic_load(&c.suspended), 1);
    ck_assert_uint_eq(longpoll_held(), 1);

    longpoll_wake();        /* nothing published: A is still at 5 */
    publish_and_wake(5, 1); /* a new snapshot, A's version the same */
    ck_assert_int_eq(atomic_load(&c.resumed), 0);
    ck_assert_int_eq(w.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);

    publish_and_wake(6, 1);
    ck_assert_int_eq(atomic_load(&c.resumed), 1);
    ck_assert_int_eq(w.state, LP_CHANGED);
    ck_assert_ptr_null(w.next); /* unlinked */
    ck_assert_uint_eq(longpoll_held(), 0);

    publish_and_wake(7, 1); /* gone from the list: not resumed twice */
    ck_assert_int_eq(atomic_load(&c.resumed), 1);
    longpoll_forget(&w); /* the request completes: nothing left to unlink */
    ck_assert_uint_eq(longpoll_held(), 0);
    ck_assert_int_eq(atomic_load(&c.misplaced), 0);
}
END_TEST

/* One wake resumes every waiter whose environment moved, and only those. */
START_TEST(test_wake_selects)
{
    static struct MHD_Connection c[3] = {0};
    static struct lp_waiter w[3] = {{.env_id = ENV_A}, {.env_id = ENV_B}, {.env_id = ENV_A}};

    ck_assert_int_eq(longpoll_park(&w[0], &c[0], 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w[1], &c[1], 1, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w[2], &c[2], 5, far()), LP_SUSPENDED);
    publish_and_wake(6, 1);
    ck_assert_int_eq(atomic_load(&c[0].resumed), 1);
    ck_assert_int_eq(atomic_load(&c[1].resumed), 0);
    ck_assert_int_eq(atomic_load(&c[2].resumed), 1);
    ck_assert_int_eq(w[0].state, LP_CHANGED);
    ck_assert_int_eq(w[1].state, LP_PARKED);
    ck_assert_int_eq(w[2].state, LP_CHANGED);
    ck_assert_uint_eq(longpoll_held(), 1);
    publish_and_wake(6, 2);
    ck_assert_int_eq(atomic_load(&c[1].resumed), 1);
    ck_assert_int_eq(w[1].state, LP_CHANGED);
    ck_assert_uint_eq(longpoll_held(), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&c[i].resumed), 1);
}
END_TEST

/* A waiter on A is not woken when only B moves; it is when A moves. */
START_TEST(test_env_isolation)
{
    static struct MHD_Connection ca = {0}, cb = {0};
    static struct lp_waiter wa = {.env_id = ENV_A}, wb = {.env_id = ENV_B};

    ck_assert_int_eq(longpoll_park(&wa, &ca, 5, far()), LP_SUSPENDED);
    for (int64_t b = 2; b <= 4; b++) /* B moves, three times */
        publish_and_wake(5, b);
    ck_assert_int_eq(atomic_load(&ca.resumed), 0);
    ck_assert_int_eq(wa.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);

    /* And the other way round: B's waiter stays through a move of A. */
    ck_assert_int_eq(longpoll_park(&wb, &cb, 4, far()), LP_SUSPENDED);
    publish_and_wake(6, 4);
    ck_assert_int_eq(atomic_load(&ca.resumed), 1);
    ck_assert_int_eq(wa.state, LP_CHANGED);
    ck_assert_int_eq(atomic_load(&cb.resumed), 0);
    ck_assert_int_eq(wb.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);
    ck_assert_int_eq(atomic_load(&ca.misplaced), 0);
}
END_TEST

/* A waiter whose environment is deleted is woken: there is nothing left to
 * wait for. */
START_TEST(test_env_gone)
{
    static struct MHD_Connection ca = {0}, cb = {0}, late = {0};
    static struct lp_waiter wa = {.env_id = ENV_A}, wb = {.env_id = ENV_B}, wl = {.env_id = ENV_A};

    ck_assert_int_eq(longpoll_park(&wa, &ca, 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&wb, &cb, 1, far()), LP_SUSPENDED);
    publish_and_wake(GONE, 1);
    ck_assert_int_eq(atomic_load(&ca.resumed), 1);
    ck_assert_int_eq(wa.state, LP_CHANGED);
    ck_assert_ptr_null(wa.next);
    ck_assert_int_eq(atomic_load(&cb.resumed), 0); /* B is still there, unmoved */
    ck_assert_int_eq(wb.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);

    /* Parking on an environment that is not there answers at once. */
    ck_assert_int_eq(longpoll_park(&wl, &late, 5, far()), LP_MOVED);
    ck_assert_int_eq(wl.state, LP_CHANGED);
    ck_assert_int_eq(atomic_load(&late.suspended), 0);
    ck_assert_uint_eq(longpoll_held(), 1);
}
END_TEST

START_TEST(test_park_moved)
{
    static struct MHD_Connection c = {0}, cb = {0};
    static struct lp_waiter w = {.env_id = ENV_A}, wb = {.env_id = ENV_B};

    ck_assert_int_eq(longpoll_park(&w, &c, 4, far()), LP_MOVED);
    ck_assert_int_eq(w.state, LP_CHANGED);
    ck_assert_int_eq(atomic_load(&c.suspended), 0);
    ck_assert_ptr_null(w.next);
    ck_assert_uint_eq(longpoll_held(), 0);

    /* Any difference is a move, also a version ahead of the server's. */
    ck_assert_int_eq(longpoll_park(&w, &c, 9, far()), LP_MOVED);
    ck_assert_uint_eq(longpoll_held(), 0);
    /* The version compared is the waiter's environment's: 5 is A's, not B's. */
    ck_assert_int_eq(longpoll_park(&wb, &cb, 5, far()), LP_MOVED);
    ck_assert_int_eq(longpoll_park(&wb, &cb, 1, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w, &c, 5, far()), LP_SUSPENDED);
    ck_assert_uint_eq(longpoll_held(), 2);
    ck_assert_int_eq(atomic_load(&c.suspended), 1);
}
END_TEST

START_TEST(test_deadline)
{
    static struct MHD_Connection c = {0}, other = {0};
    static struct lp_waiter w = {.env_id = ENV_A}, wo = {.env_id = ENV_A};
    int64_t t0 = time_monotonic_us();

    ck_assert_int_eq(longpoll_park(&wo, &other, 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w, &c, 5, t0 + 200000), LP_SUSPENDED);
    ck_assert_msg(resumed_within(&c, 1, 1500), "not resumed by its deadline");
    int64_t took = time_monotonic_us() - t0;
    ck_assert_int_eq(w.state, LP_TIMEOUT);
    ck_assert_ptr_null(w.next);
    ck_assert_int_ge(took, 200000);
    ck_assert_int_lt(took, 1000000);
    ck_assert_int_eq(atomic_load(&other.resumed), 0); /* its deadline is far */
    ck_assert_int_eq(wo.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);
}
END_TEST

START_TEST(test_cap)
{
    static struct MHD_Connection c[CAP + 1] = {0};
    static struct lp_waiter w[CAP + 1] = {0};
    static struct MHD_Connection sc = {0};
    static struct lp_waiter sw = {0};

    for (int i = 0; i <= CAP; i++)
        w[i].env_id = i % 2 ? ENV_B : ENV_A; /* the cap counts every environment */
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(longpoll_park(&w[i], &c[i], i % 2 ? 1 : 5, far()), LP_SUSPENDED);
    ck_assert_uint_eq(longpoll_held(), CAP);
    ck_assert_int_eq(longpoll_park(&w[CAP], &c[CAP], 1, far()), LP_FULL);
    ck_assert_int_eq(w[CAP].state, LP_IDLE);
    ck_assert_int_eq(atomic_load(&c[CAP].suspended), 0);
    ck_assert_int_eq(longpoll_stream_open(&sw, &sc), LP_FULL);
    ck_assert_uint_eq(longpoll_held(), CAP);

    longpoll_forget(&w[0]); /* frees a place */
    ck_assert_uint_eq(longpoll_held(), CAP - 1);
    ck_assert_int_eq(longpoll_park(&w[CAP], &c[CAP], 1, far()), LP_SUSPENDED);
    ck_assert_uint_eq(longpoll_held(), CAP);
}
END_TEST

START_TEST(test_shutdown)
{
    static struct MHD_Connection c[2] = {0}, sc = {0}, late = {0};
    static struct lp_waiter w[2] = {{.env_id = ENV_A}, {.env_id = ENV_B}}, sw = {.env_id = ENV_A},
                            lw = {.env_id = ENV_A};

    ck_assert_int_eq(longpoll_park(&w[0], &c[0], 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w[1], &c[1], 1, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_stream_open(&sw, &sc), LP_REGISTERED); /* busy, not suspended */
    ck_assert_uint_eq(longpoll_held(), 3);

    longpoll_shutdown();
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(atomic_load(&c[i].resumed), 1);
        ck_assert_int_eq(w[i].state, LP_SHUTDOWN);
        ck_assert_ptr_null(w[i].next);
    }
    ck_assert_int_eq(atomic_load(&sc.resumed), 0); /* was not suspended */
    ck_assert_int_eq(sw.state, LP_SHUTDOWN);
    ck_assert_uint_eq(longpoll_held(), 0);

    ck_assert_int_eq(longpoll_park(&lw, &late, 5, far()), LP_CLOSING);
    ck_assert_int_eq(lw.state, LP_IDLE);
    ck_assert_int_eq(atomic_load(&late.suspended), 0);
    ck_assert_int_eq(longpoll_stream_open(&lw, &late), LP_CLOSING);
    ck_assert_int_eq(longpoll_stream_wait(&sw, 5, far()), LP_CLOSING); /* ends the stream */
    ck_assert_int_eq(atomic_load(&sc.suspended), 0);
    ck_assert_uint_eq(longpoll_held(), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(atomic_load(&c[i].misplaced), 0);
}
END_TEST

/* A token no longer live resumes its waiters with LP_REVOKED; a park made
 * with an older token epoch is not held. */
static bool only_token_1(const uint8_t token[LP_TOKEN_LEN], void *cls)
{
    (void)cls;
    return token[0] == 1;
}

START_TEST(test_revoke)
{
    static struct MHD_Connection c1 = {0}, c2 = {0}, c3 = {0};
    static struct lp_waiter w1 = {.env_id = ENV_A, .token = {1}, .token_epoch = 1},
                            w2 = {.env_id = ENV_B, .token = {2}, .token_epoch = 1},
                            w3 = {.env_id = ENV_A, .token = {1}, .token_epoch = 1};

    ck_assert_int_eq(longpoll_park(&w1, &c1, 5, far()), LP_SUSPENDED);
    ck_assert_int_eq(longpoll_park(&w2, &c2, 1, far()), LP_SUSPENDED);
    longpoll_revoke(2, only_token_1, NULL);
    ck_assert_int_eq(atomic_load(&c2.resumed), 1);
    ck_assert_int_eq(w2.state, LP_REVOKED);
    ck_assert_ptr_null(w2.next);
    ck_assert_int_eq(atomic_load(&c1.resumed), 0);
    ck_assert_int_eq(w1.state, LP_PARKED);
    ck_assert_uint_eq(longpoll_held(), 1);

    /* Found live in a snapshot of epoch 1, parks after the change to 2. */
    ck_assert_int_eq(longpoll_park(&w3, &c3, 5, far()), LP_MOVED);
    ck_assert_int_eq(atomic_load(&c3.suspended), 0);
    w3.token_epoch = 2;
    ck_assert_int_eq(longpoll_park(&w3, &c3, 5, far()), LP_SUSPENDED);
    ck_assert_uint_eq(longpoll_held(), 2);
}
END_TEST

/* ---- streams ------------------------------------------------------------- */

START_TEST(test_stream)
{
    static struct MHD_Connection c = {0};
    static struct lp_waiter w = {.env_id = ENV_A};

    ck_assert_int_eq(longpoll_stream_open(&w, &c), LP_REGISTERED);
    ck_assert(w.repeat);
    ck_assert_int_eq(w.state, LP_IDLE);
    ck_assert_int_eq(atomic_load(&c.suspended), 0);
    ck_assert_uint_eq(longpoll_held(), 1);

    /* Not suspended: a change passes it by; it finds it when it next waits. */
    publish_and_wake(6, 1);
    ck_assert_int_eq(atomic_load(&c.resumed), 0);
    ck_assert_int_eq(w.state, LP_IDLE);
    ck_assert_int_eq(longpoll_stream_wait(&w, 5, far()), LP_MOVED);
    ck_assert_int_eq(w.state, LP_CHANGED);
    ck_assert_int_eq(atomic_load(&c.suspended), 0);

    ck_assert_int_eq(longpoll_stream_wait(&w, 6, far()), LP_SUSPENDED);
    ck_assert_int_eq(w.state, LP_PARKED);
    ck_assert_int_eq(atomic_load(&c.suspended), 1);
    publish_and_wake(6, 2); /* another environment moves: not this stream's */
    ck_assert_int_eq(atomic_load(&c.resumed), 0);
    publish_and_wake(7, 2);
    ck_assert_int_eq(atomic_load(&c.resumed), 1);
    ck_assert_int_eq(w.state, LP_CHANGED);
    ck_assert_ptr_nonnull(w.next); /* a stream stays registered */
    ck_assert_uint_eq(longpoll_held(), 1);

    /* The version moved while it was busy sending: no suspension. */
    ck_assert_int_eq(longpoll_stream_wait(&w, 6, far()), LP_MOVED);
    ck_assert_int_eq(w.state, LP_CHANGED);
    ck_assert_int_eq(atomic_load(&c.suspended), 1);

    /* Back to an older version (a restored database) counts as a move too. */
    set_version(2);
    ck_assert_int_eq(longpoll_stream_wait(&w, 7, far()), LP_MOVED);

    /* The keep-alive deadline resumes it through the timer, still registered. */
    ck_assert_int_eq(longpoll_stream_wait(&w, 2, time_monotonic_us() + 100000), LP_SUSPENDED);
    ck_assert_msg(resumed_within(&c, 2, 1500), "not resumed by its keep-alive deadline");
    ck_assert_int_eq(w.state, LP_TIMEOUT);
    ck_assert_ptr_nonnull(w.next);
    ck_assert_uint_eq(longpoll_held(), 1);

    /* Its environment deleted: a waiting stream is woken ... */
    ck_assert_int_eq(longpoll_stream_wait(&w, 2, far()), LP_SUSPENDED);
    publish_and_wake(GONE, 2);
    ck_assert_int_eq(atomic_load(&c.resumed), 3);
    ck_assert_int_eq(w.state, LP_CHANGED);
    /* ... and one that asks to wait then is not suspended. */
    ck_assert_int_eq(longpoll_stream_wait(&w, 2, far()), LP_MOVED);
    ck_assert_int_eq(atomic_load(&c.suspended), 3);

    longpoll_forget(&w);
    ck_assert_ptr_null(w.next);
    ck_assert_uint_eq(longpoll_held(), 0);
    longpoll_forget(&w); /* twice is harmless */
    ck_assert_uint_eq(longpoll_held(), 0);
    /* Forgotten: waiting again ends the stream rather than suspending. */
    set_version(2);
    ck_assert_int_eq(longpoll_stream_wait(&w, 2, far()), LP_CLOSING);
    ck_assert_int_eq(atomic_load(&c.suspended), 3);
    ck_assert_int_eq(atomic_load(&c.misplaced), 0);
}
END_TEST

/* ---- no lost wake-up ------------------------------------------------------ */

/* Rounds of one race each: the test thread parks with the version it has
 * just read while the writer publishes the next one and wakes, as the
 * listener does.  Nothing else is published in the round, so a wake-up
 * lost there would never be made up for by a later one. */
#define RACE_ROUNDS 2000

static atomic_int race_go, race_done;

static void *race_publish(void *arg)
{
    (void)arg;
    for (int r = 1; r <= RACE_ROUNDS; r++) {
        while (atomic_load(&race_go) < r)
            sched_yield();
        publish_and_wake(5 + r, 1);
        atomic_store(&race_done, r);
    }
    return NULL;
}

/* Either the request finds the version moved, or it is resumed by the
 * wake of the publish it raced with. */
START_TEST(test_no_lost_wakeup)
{
    pthread_t writer;
    int parked = 0, moved = 0;

    atomic_store(&race_go, 0);
    atomic_store(&race_done, 0);
    ck_assert_int_eq(pthread_create(&writer, NULL, race_publish, NULL), 0);
    for (int r = 1; r <= RACE_ROUNDS; r++) {
        struct MHD_Connection c = {0};
        struct lp_waiter w = {.env_id = ENV_A};
        int64_t v = version_a();
        atomic_store(&race_go, r);
        /* Park a little later in each round, so that across the rounds the
         * publish lands before, during and after the park. */
        for (volatile int spin = 0; spin < (r * 37) % 3000; spin++)
            ;
        enum lp_result rc = longpoll_park(&w, &c, v, far());
        while (atomic_load(&race_done) < r)
            sched_yield();
        if (rc == LP_SUSPENDED) {
            parked++;
            ck_assert_msg(atomic_load(&c.resumed) == 1,
                          "round %d: parked at %lld, not woken by %lld", r, (long long)v,
                          (long long)version_a());
        } else {
            ck_assert_int_eq(rc, LP_MOVED);
            moved++;
        }
        ck_assert_int_eq(w.state, LP_CHANGED);
        ck_assert_int_eq(atomic_load(&c.misplaced), 0);
        ck_assert_uint_eq(longpoll_held(), 0);
    }
    pthread_join(writer, NULL);
    ck_assert_int_gt(parked, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("longpoll");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_park_then_wake);
    tcase_add_test(tc, test_wake_selects);
    tcase_add_test(tc, test_env_isolation);
    tcase_add_test(tc, test_env_gone);
    tcase_add_test(tc, test_park_moved);
    tcase_add_test(tc, test_deadline);
    tcase_add_test(tc, test_cap);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_stream);
    tcase_add_test(tc, test_no_lost_wakeup);
    /* Last: it leaves the token epoch at 2, which would turn every later
     * park into LP_MOVED when the tests share one process (CK_FORK=no). */
    tcase_add_test(tc, test_revoke);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
