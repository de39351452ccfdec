/* metrics.c -- Prometheus text for /metrics (docs/operations.md §2).
 *
 * Counters are plain atomics in fixed arrays indexed by route and by a small
 * set of status codes, so observing a request costs two relaxed increments
 * and no lock.  The text is built only when /metrics is scraped. */
#include "metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dbpool.h"
#include "listen.h"
#include "longpoll.h"
#include "plans.h"
#include "webhooks.h"
#include "snapshot.h"
#include "text.h"

static const unsigned statuses[] = {200, 201, 204, 304, 400, 401, 403, 404, 405,
                                    409, 412, 413, 414, 499, 500, 503, 0};
#define N_STATUS (sizeof(statuses) / sizeof(statuses[0])) /* last: other */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static const char *m_table; /* the routing table, entries m_stride bytes apart */
static size_t m_stride;
static size_t m_n;
static atomic_ullong *m_count; /* [(n+1) * N_STATUS] */
static atomic_ullong m_hist[N_BUCKETS + 1];
static atomic_ullong m_sum_us;
static atomic_ullong m_total;

/* Entry i of the routing table (its router part). */
static const struct router_route *route_at(size_t i)
{
    return (const struct router_route *)(m_table + i * m_stride);
}

int metrics_init(const void *routes, size_t n, size_t stride)
{
    m_table = routes;
    m_stride = stride;
    m_n = n;
    m_count = calloc((n + 1) * N_STATUS, sizeof(*m_count));
    return m_count != NULL ? 0 : -1;
}

void metrics_observe(int route, unsigned status, double seconds)
{
    size_t ri = route >= 0 && (size_t)route < m_n ? (size_t)route : m_n;
    size_t si = N_STATUS - 1;
    size_t b = 0;

    for (size_t i = 0; i + 1 < N_STATUS; i++)
        if (statuses[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&m_count[ri * N_STATUS + si], 1, memory_order_relaxed);
    while (b < N_BUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&m_hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_sum_us, (unsigned long long)(seconds * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&m_total, 1, memory_order_relaxed);
}

char *metrics_render(size_t *len)
{
    struct buf b = {0};
    struct vx_snapshot *s = snapshot_acquire();

    buf_adds(&b, "# HELP vexil_http_requests_total HTTP requests by route and status.\n"
                 "# TYPE vexil_http_requests_total counter\n");
    for (size_t r = 0; r <= m_n; r++) {
        /* Several table rows share a pattern (one per method): label by
         * method and pattern. */
        const char *method = r < m_n ? route_at(r)->method : "";
        const char *name = r < m_n ? route_at(r)->name : "unmatched";
        for (size_t i = 0; i < N_STATUS; i++) {
            unsigned long long v = atomic_load(&m_count[r * N_STATUS + i]);
            if (v == 0)
                continue;
            if (statuses[i] != 0)
                buf_addf(&b,
                         "vexil_http_requests_total{method=\"%s\",route=\"%s\",status=\"%u\"} "
                         "%llu\n",
                         method, name, statuses[i], v);
            else
                buf_addf(&b,
                         "vexil_http_requests_total{method=\"%s\",route=\"%s\",status=\"other\"} "
                         "%llu\n",
                         method, name, v);
        }
    }
    buf_adds(&b, "# HELP vexil_http_request_duration_seconds Time to answer a request.\n"
                 "# TYPE vexil_http_request_duration_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += atomic_load(&m_hist[i]);
        buf_addf(&b, "vexil_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
                 cum);
    }
    cum += atomic_load(&m_hist[N_BUCKETS]);
    buf_addf(&b, "vexil_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    buf_addf(&b, "vexil_http_request_duration_seconds_sum %.6f\n",
             (double)atomic_load(&m_sum_us) / 1e6);
    buf_addf(&b, "vexil_http_request_duration_seconds_count %llu\n", atomic_load(&m_total));
    buf_addf(&b,
             "# HELP vexil_longpoll_held Requests and streams held open now.\n"
             "# TYPE vexil_longpoll_held gauge\nvexil_longpoll_held %u\n"
             "# HELP vexil_flags Flags in the served snapshot.\n"
             "# TYPE vexil_flags gauge\nvexil_flags %zu\n"
             "# HELP vexil_version Sequence number of the changes in the served snapshot.\n"
             "# TYPE vexil_version gauge\nvexil_version %lld\n"
             "# HELP vexil_database_up 1 while the database is reachable.\n"
             "# TYPE vexil_database_up gauge\nvexil_database_up %d\n"
             "# HELP vexil_snapshots_live Snapshots in memory: the served one and any still held.\n"
             "# TYPE vexil_snapshots_live gauge\nvexil_snapshots_live %ld\n"
             "# HELP vexil_database_busy Database calls of requests queued or running now.\n"
             "# TYPE vexil_database_busy gauge\nvexil_database_busy %u\n"
             "# HELP vexil_database_queued Database calls of requests waiting for a database "
             "thread.\n"
             "# TYPE vexil_database_queued gauge\nvexil_database_queued %u\n",
             longpoll_held(), s != NULL ? s->envs[s->default_env].view->n_flags : 0,
             (long long)(s != NULL ? s->version : -1), listen_db_up() ? 1 : 0, snapshot_live(),
             dbpool_busy(), dbpool_queued());
    buf_adds(&b, "# HELP vexil_environment_version Version of each environment in the served "
                 "snapshot.\n"
                 "# TYPE vexil_environment_version gauge\n");
    for (size_t i = 0; s != NULL && i < s->n_envs; i++)
        buf_addf(&b, "vexil_environment_version{environment=\"%s\"} %lld\n", s->envs[i].name,
                 (long long)s->envs[i].version);
    snapshot_release(s);
    plans_metrics(&b);
    webhooks_metrics(&b);
    return buf_take(&b, len);
}
