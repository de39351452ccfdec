/*
 * propagation.c -- how long does a flag change take to reach N waiting clients?
 *
 * Why: vexil's promise is that switching a flag off reaches every service "in
 * well under a second".  Services learn of changes by long-polling
 * (GET /flags?...&wait=S with If-None-Match: "<version>"), so the figure that
 * matters is: from the moment the admin write is acknowledged, how long until
 * each held client has its 200 with the new body -- with thousands held at
 * once, and at what memory cost to the server.
 *
 * How: one thread, one epoll set, non-blocking sockets.  A round
 *   1. reads the server's held gauge (Prometheus text, default
 *      vexil_longpoll_held) as a baseline;
 *   2. opens N keep-alive connections (at most --connect-batch connecting at
 *      once, so the listen backlog never overflows) and sends one hold request
 *      on each ("{i}" in --path becomes the client index);
 *   3. waits until the gauge has grown by N (or --settle-ms without metrics),
 *      answering nothing yet; any answer that arrives now is an "early" one,
 *      i.e. a failure (wrong version, 304, error);
 *   4. samples the server's VmRSS (--server-pid), then on a fresh connection
 *      records t0, sends the trigger request (PATCH a flag, or POST /release
 *      for ref_server), and records t1 when its answer is complete;
 *   5. records, per client, when its whole response has been read.  A client
 *      counts as "received" when the status is --expect-status, the ETag (if
 *      we sent If-None-Match) differs from the one we sent, and the body
 *      contains --expect-body (if given).
 * Latencies are reported relative to t1 (the write is acknowledged) and t0
 * (the write is sent).  A client may legitimately be answered before t1: the
 * server wakes waiters on its own schedule, not after the admin's answer.
 *
 * --rounds R repeats this (with N usually 1) to measure a distribution across
 * tries, e.g. between two instances: hold on B (--host/--port), write on A
 * (--trigger-host/--trigger-port), alternating --trigger-body values, with
 * --follow-etag moving If-None-Match to the version each round ended at.
 *
 * HTTP parsing handles short reads, Content-Length bodies, chunked bodies,
 * close-delimited bodies and bodiless statuses (1xx, 204, 304); we send one
 * request per connection, so a keep-alive connection stays open, unwatched,
 * until the end of the round.  Every loop is bounded by a deadline.
 *
 * The last line of output is machine-readable: "RESULT key=value ...".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PR_MAX_HEADER   (16 * 1024)
#define PR_MAX_RESPONSE (8 * 1024 * 1024)
#define PR_MAX_BODIES   8

enum pr_state { PR_IDLE, PR_CONNECTING, PR_SENDING, PR_WAITING, PR_DONE, PR_FAILED };

struct pr_conn {
    int fd;
    enum pr_state state;
    int is_trigger;
    char *req; /* request bytes not yet fully written; freed once sent */
    size_t req_len, req_sent;
    char *buf; /* response bytes read so far; kept for the next round, freed at exit */
    size_t len, cap;
    size_t header_len; /* 0 until the blank line after the headers is seen */
    int status;
    long long content_length; /* -1: absent */
    int chunked;
    int early;        /* answered before the trigger was sent */
    int server_close; /* the server said Connection: close, or closed */
    const char *why;  /* failure reason, static string */
    double t_done;
    char etag[64];
};

struct pr_opts {
    const char *host;
    int port;
    int clients;
    const char *path;
    const char *if_none_match;
    const char *auth;
    const char *trigger_host;
    int trigger_port;
    const char *trigger_method;
    const char *trigger_path;
    const char *trigger_bodies[PR_MAX_BODIES];
    int n_trigger_bodies;
    const char *metrics_host;
    int metrics_port;
    const char *metrics_path;
    const char *held_metric;
    int settle_ms;
    double hold_timeout;
    double collect_timeout;
    int connect_batch;
    int rounds;
    int follow_etag;
    int new_connections;
    int expect_status;
    const char *expect_bodies[PR_MAX_BODIES];
    int n_expect_bodies;
    long server_pid;
    const char *label;
};

static double pr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pr_resolve(const char *host, int port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Close without TIME_WAIT: 10 000 connections per run, several runs in a row,
 * would otherwise exhaust the ephemeral ports of 127.0.0.1. */
static void pr_close_hard(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---- HTTP response parsing ------------------------------------------------ */

/* Is the chunked body starting at b (n bytes) complete?  1 yes, 0 not yet, -1 bad. */
static int pr_chunked_complete(const char *b, size_t n)
{
    size_t i = 0;
    for (;;) {
        const char *eol = memmem(b + i, n - i, "\r\n", 2);
        if (eol == NULL)
            return n - i > 64 ? -1 : 0;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(b + i, &end, 16);
        if (end == b + i || errno != 0 || size > PR_MAX_RESPONSE)
            return -1;
        i = (size_t)(eol - b) + 2;
        if (size == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                const char *t = memmem(b + i, n - i, "\r\n", 2);
                if (t == NULL)
                    return 0;
                if (t == b + i)
                    return 1;
                i = (size_t)(t - b) + 2;
            }
        }
        if (n - i < size + 2)
            return 0;
        i += (size_t)size + 2;
    }
}

/* Parse the status line and headers once the blank line is in.  0 ok, -1 bad. */
static int pr_parse_head(struct pr_conn *c)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->len > PR_MAX_HEADER ? -1 : 0;
    c->header_len = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(c->buf + 9);
    c->content_length = -1;

    char *line = memchr(c->buf, '\n', c->header_len) + 1;
    while (line < end) {
        char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL) {
            size_t nlen = (size_t)(colon - line);
            char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(eol - v);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                char num[32];
                if (vlen == 0 || vlen >= sizeof num)
                    return -1;
                memcpy(num, v, vlen);
                num[vlen] = '\0';
                char *e;
                errno = 0;
                long long cl = strtoll(num, &e, 10);
                if (*e != '\0' || errno != 0 || cl < 0 || cl > PR_MAX_RESPONSE)
                    return -1;
                c->content_length = cl;
            } else if (nlen == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                if (vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0)
                    c->chunked = 1;
            } else if (nlen == 10 && strncasecmp(line, "Connection", 10) == 0) {
                if (memmem(v, vlen, "close", 5) != NULL)
                    c->server_close = 1;
            } else if (nlen == 4 && strncasecmp(line, "ETag", 4) == 0) {
                size_t n = vlen < sizeof c->etag - 1 ? vlen : sizeof c->etag - 1;
                memcpy(c->etag, v, n);
                c->etag[n] = '\0';
            }
        }
        line = eol + 2;
    }
    return 0;
}

/* After new bytes: 1 complete, 0 need more, -1 bad.  at_eof: the peer closed. */
static int pr_response_complete(struct pr_conn *c, int at_eof)
{
    if (c->header_len == 0) {
        if (pr_parse_head(c) != 0)
            return -1;
        if (c->header_len == 0)
            return at_eof ? -1 : 0;
    }
    if ((c->status >= 100 && c->status < 200) || c->status == 204 || c->status == 304)
        return 1;
    size_t body = c->len - c->header_len;
    if (c->chunked) {
        int r = pr_chunked_complete(c->buf + c->header_len, body);
        return r == 0 && at_eof ? -1 : r;
    }
    if (c->content_length >= 0) {
        if (body >= (size_t)c->content_length)
            return 1;
        return at_eof ? -1 : 0;
    }
    return at_eof ? 1 : 0; /* close-delimited */
}

/* ---- one blocking request, for the held gauge ---------------------------- */

/* GET host:port path, Connection: close.  Returns the malloc'd response
 * (caller frees) or NULL; *status gets the HTTP status. */
static char *pr_simple_get(const char *host, int port, const char *path, int *status)
{
    struct sockaddr_in sa;
    if (pr_resolve(host, port, &sa) != 0)
        return NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                     path, host, port);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    struct pr_conn c;
    memset(&c, 0, sizeof c);
    int done = 0;
    while (!done) {
        if (c.cap - c.len < 4096) {
            size_t ncap = c.cap ? c.cap * 2 : 16384;
            char *nb = ncap <= PR_MAX_RESPONSE ? realloc(c.buf, ncap + 1) : NULL;
            if (nb == NULL)
                break;
            c.buf = nb;
            c.cap = ncap;
        }
        ssize_t r = read(fd, c.buf + c.len, c.cap - c.len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            done = pr_response_complete(&c, 1) == 1 ? 1 : -1;
            break;
        }
        c.len += (size_t)r;
        int k = pr_response_complete(&c, 0);
        if (k != 0)
            done = k;
    }
    pr_close_hard(fd);
    if (done != 1) {
        free(c.buf);
        return NULL;
    }
    c.buf[c.len] = '\0';
    *status = c.status;
    memmove(c.buf, c.buf + c.header_len, c.len - c.header_len + 1);
    return c.buf;
}

/* Sum of every sample of metric `name` (with or without labels); -1 on error. */
static double pr_read_gauge(const struct pr_opts *o)
{
    int status = 0;
    char *text = pr_simple_get(o->metrics_host, o->metrics_port, o->metrics_path, &status);
    if (text == NULL)
        return -1;
    double sum = -1;
    size_t nl = strlen(o->held_metric);
    for (char *line = text; line != NULL && *line != '\0';) {
        char *next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(line, o->held_metric, nl) == 0 && (line[nl] == ' ' || line[nl] == '{')) {
            char *v = line[nl] == '{' ? strchr(line + nl, '}') : line + nl;
            if (v != NULL) {
                v += v[0] == '}' ? 1 : 0;
                sum = (sum < 0 ? 0 : sum) + strtod(v, NULL);
            }
        }
        line = next;
    }
    free(text);
    return status == 200 ? sum : -1;
}

static long pr_rss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

/* ---- a round --------------------------------------------------------------- */

struct pr_round {
    int n;
    struct pr_conn *conns;
    struct pr_conn trig;
    int epfd;
    double t0, t1;
    int connected; /* new connections made this round */
    int reused;    /* requests sent on a connection kept from the last round */
    int in_flight; /* clients connecting or sending */
    int finished;  /* clients done or failed */
    long rss_kb;
    double held_after; /* seconds from first connect to the gauge reaching N */
};

static char *pr_build_request(const struct pr_opts *o, int idx, size_t *len)
{
    char path[2048];
    const char *mark = strstr(o->path, "{i}");
    if (mark != NULL)
        snprintf(path, sizeof path, "%.*s%d%s", (int)(mark - o->path), o->path, idx, mark + 3);
    else
        snprintf(path, sizeof path, "%s", o->path);
    char *req = NULL;
    int n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s%s%s%s\r\n", path, o->host,
                     o->port, o->if_none_match ? "If-None-Match: " : "",
                     o->if_none_match ? o->if_none_match : "", o->if_none_match ? "\r\n" : "",
                     o->auth ? "Authorization: Bearer " : "", o->auth ? o->auth : "",
                     o->auth ? "\r\n" : "");
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return req;
}

/* Every state change goes through here, so the loops never rescan all clients. */
static void pr_set_state(struct pr_round *r, struct pr_conn *c, enum pr_state s)
{
    if (!c->is_trigger) {
        int was_fl = c->state == PR_CONNECTING || c->state == PR_SENDING;
        int is_fl = s == PR_CONNECTING || s == PR_SENDING;
        int was_fin = c->state == PR_DONE || c->state == PR_FAILED;
        int is_fin = s == PR_DONE || s == PR_FAILED;
        r->in_flight += is_fl - was_fl;
        r->finished += is_fin - was_fin;
    }
    c->state = s;
}

static void pr_fail(struct pr_round *r, struct pr_conn *c, const char *why)
{
    if (c->state == PR_DONE || c->state == PR_FAILED)
        return;
    pr_set_state(r, c, PR_FAILED);
    c->why = why;
    c->t_done = pr_now();
}

/* Write what is left of the request.  0 ok (maybe partial), -1 failed. */
static int pr_send_some(struct pr_round *r, struct pr_conn *c)
{
    while (c->req_sent < c->req_len) {
        ssize_t w = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w <= 0)
            return -1;
        c->req_sent += (size_t)w;
    }
    free(c->req);
    c->req = NULL;
    pr_set_state(r, c, PR_WAITING);
    /* One-shot: a finished socket needs no EPOLL_CTL_DEL, which matters when
     * 10 000 answers arrive at once and every syscall delays the next stamp. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c};
    epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static void pr_read_some(struct pr_round *r, struct pr_conn *c, double t_trigger)
{
    char scratch[65536];
    for (;;) {
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->state == PR_WAITING) { /* re-arm the one-shot registration */
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
                                         .data.ptr = c};
                epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
            }
            return;
        }
        int at_eof = n <= 0;
        if (at_eof)
            c->server_close = 1;
        if (n > 0) {
            if (c->len + (size_t)n > PR_MAX_RESPONSE) {
                pr_fail(r, c, "response too large");
                break;
            }
            if (c->len + (size_t)n > c->cap) {
                size_t ncap = c->cap ? c->cap : 4096;
                while (ncap < c->len + (size_t)n)
                    ncap *= 2;
                char *nb = realloc(c->buf, ncap);
                if (nb == NULL) {
                    pr_fail(r, c, "out of memory");
                    break;
                }
                c->buf = nb;
                c->cap = ncap;
            }
            memcpy(c->buf + c->len, scratch, (size_t)n);
            c->len += (size_t)n;
        }
        int k = pr_response_complete(c, at_eof);
        if (k < 0) {
            pr_fail(r, c, at_eof ? "closed before a full response" : "bad response");
            break;
        }
        if (k == 1) {
            c->t_done = pr_now();
            pr_set_state(r, c, PR_DONE);
            c->early = !c->is_trigger && t_trigger == 0;
            break;
        }
        if (at_eof) {
            pr_fail(r, c, "closed before a full response");
            break;
        }
    }
    /* Done with this socket for the round; it stays open (keep-alive) but
     * unwatched.  A one-shot registration is already disarmed; one made while
     * the request was still being written is not. */
    if (c->req != NULL)
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static int pr_start_connect(struct pr_round *r, struct pr_conn *c, const struct sockaddr_in *sa)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        pr_fail(r, c, "socket() failed");
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
        pr_fail(r, c, "connect() failed");
        return -1;
    }
    pr_set_state(r, c, PR_CONNECTING);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        pr_fail(r, c, "epoll_ctl failed");
        return -1;
    }
    return 0;
}

static void pr_handle_event(struct pr_round *r, struct pr_conn *c, uint32_t events,
                            double t_trigger)
{
    if (c->state == PR_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            pr_fail(r, c, "connect failed");
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
        pr_set_state(r, c, PR_SENDING);
        if (!c->is_trigger)
            r->connected++;
    }
    if (c->state == PR_SENDING && (events & EPOLLOUT)) {
        if (pr_send_some(r, c) != 0) {
            pr_fail(r, c, "send failed");
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
    }
    if ((c->state == PR_WAITING || c->state == PR_SENDING) &&
        (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        pr_read_some(r, c, t_trigger);
}

/* Run the epoll loop once with the given timeout (ms). */
static void pr_poll(struct pr_round *r, int timeout_ms, double t_trigger)
{
    struct epoll_event evs[1024];
    int n = epoll_wait(r->epfd, evs, 1024, timeout_ms);
    for (int i = 0; i < n; i++)
        pr_handle_event(r, evs[i].data.ptr, evs[i].events, t_trigger);
}

static int pr_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pr_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(p / 100.0 * (double)n);
    return v[k == 0 ? 0 : k - 1];
}

struct pr_totals {
    long clients, received, early, failed, timeout, stale;
    double *lat_t1, *lat_t0; /* ms, one per received client */
    size_t nlat;
    double *trigger_ms;
    int ntrig;
    long rss_kb, rss_first_kb;
    double held_after_max;
    const char *first_why;
};

/* Returns 0 when the round ran (whatever its clients got), -1 on a set-up failure. */
/* Make c ready for a new request: keep its socket (and buffer) when the last
 * answer left a usable keep-alive connection and reuse is allowed, else close it. */
static int pr_recycle(struct pr_round *r, struct pr_conn *c, int allow_reuse)
{
    int fd = c->fd;
    char *buf = c->buf;
    size_t cap = c->cap;
    int reuse = allow_reuse && fd >= 0 && c->state == PR_DONE && !c->server_close;
    if (!reuse && fd >= 0) {
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
        pr_close_hard(fd);
    }
    free(c->req);
    memset(c, 0, sizeof *c);
    c->fd = reuse ? fd : -1;
    c->buf = buf;
    c->cap = cap;
    c->state = PR_IDLE;
    return reuse;
}

/* Send the next request on a kept-alive socket (registered, one-shot disarmed). */
static void pr_start_reuse(struct pr_round *r, struct pr_conn *c)
{
    pr_set_state(r, c, PR_SENDING);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0 &&
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        pr_fail(r, c, "epoll_ctl failed");
}

/* conns (o->clients of them) and epfd live across rounds, so that clients can
 * poll again on the same keep-alive connection, as real ones do. */
static int pr_run_round(const struct pr_opts *o, int round, char *inm, size_t inm_size,
                        struct pr_conn *conns, int epfd, struct pr_totals *tot)
{
    struct sockaddr_in sa, tsa;
    if (pr_resolve(o->host, o->port, &sa) != 0 ||
        pr_resolve(o->trigger_host, o->trigger_port, &tsa) != 0) {
        fprintf(stderr, "propagation: bad host (IPv4 literal needed)\n");
        return -1;
    }
    struct pr_opts oo = *o;
    oo.if_none_match = inm[0] ? inm : NULL;

    struct pr_round r;
    memset(&r, 0, sizeof r);
    r.n = o->clients;
    r.conns = conns;
    r.epfd = epfd;
    r.rss_kb = -1;
    r.trig.fd = -1;

    double base = o->metrics_path[0] ? pr_read_gauge(o) : -1;
    if (o->metrics_path[0] && base < 0)
        fprintf(stderr, "propagation: cannot read %s from %s (will settle %d ms instead)\n",
                o->held_metric, o->metrics_path, o->settle_ms);

    /* 1. Connect and send, at most connect_batch in flight. */
    double start = pr_now();
    double deadline = start + o->hold_timeout;
    int next = 0;
    for (;;) {
        while (next < r.n && r.in_flight < o->connect_batch) {
            struct pr_conn *c = &r.conns[next];
            int reuse = pr_recycle(&r, c, !o->new_connections);
            c->req = pr_build_request(&oo, next, &c->req_len);
            next++;
            if (c->req == NULL) {
                pr_fail(&r, c, "out of memory");
                continue;
            }
            if (reuse) {
                r.reused++;
                pr_start_reuse(&r, c);
            } else {
                pr_start_connect(&r, c, &sa);
            }
        }
        if (next == r.n && r.in_flight == 0)
            break;
        if (pr_now() > deadline) {
            fprintf(stderr, "propagation: round %d: connecting took longer than %.0f s\n", round,
                    o->hold_timeout);
            break;
        }
        pr_poll(&r, 50, 0);
    }
    for (int i = 0; i < r.n; i++)
        if (r.conns[i].state == PR_CONNECTING || r.conns[i].state == PR_SENDING)
            pr_fail(&r, &r.conns[i], "connect/send timeout");

    /* 2. Wait until the server holds them all (or settle without a gauge). */
    int sent = 0;
    for (int i = 0; i < r.n; i++)
        sent += r.conns[i].state == PR_WAITING || r.conns[i].state == PR_DONE;
    double poll_ms = 1;
    double settle_end = pr_now() + o->settle_ms / 1000.0;
    double last_gauge = -1;
    for (;;) {
        double now = pr_now();
        if (base >= 0) {
            last_gauge = pr_read_gauge(o);
            if (last_gauge >= base + sent)
                break;
        } else if (now >= settle_end) {
            break;
        }
        if (now > deadline) {
            fprintf(stderr,
                    "propagation: round %d: held gauge %.0f, wanted %.0f after %.0f s; "
                    "triggering anyway\n",
                    round, last_gauge, base + sent, o->hold_timeout);
            break;
        }
        pr_poll(&r, (int)poll_ms, 0);
        poll_ms = poll_ms * 2 > 100 ? 100 : poll_ms * 2;
    }
    r.held_after = pr_now() - start;
    if (o->server_pid > 0)
        r.rss_kb = pr_rss_kb(o->server_pid);
    pr_poll(&r, 0, 0); /* anything that arrived while we looked is early */

    /* 3. The trigger, on its own fresh connection. */
    const char *body = o->n_trigger_bodies ? o->trigger_bodies[round % o->n_trigger_bodies] : "";
    size_t blen = strlen(body);
    struct pr_conn *t = &r.trig;
    t->is_trigger = 1;
    int n = asprintf(&t->req,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     o->trigger_method, o->trigger_path, o->trigger_host, o->trigger_port,
                     o->auth ? "Authorization: Bearer " : "", o->auth ? o->auth : "",
                     o->auth ? "\r\n" : "", blen, body);
    if (n < 0) {
        fprintf(stderr, "propagation: out of memory\n");
        return -1;
    }
    t->req_len = (size_t)n;
    t->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (t->fd < 0 || connect(t->fd, (struct sockaddr *)&tsa, sizeof tsa) != 0) {
        fprintf(stderr, "propagation: cannot connect to the trigger %s:%d\n", o->trigger_host,
                o->trigger_port);
        return -1;
    }
    setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(t->fd, F_SETFL, fcntl(t->fd, F_GETFL) | O_NONBLOCK);
    t->state = PR_SENDING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = t};
    epoll_ctl(r.epfd, EPOLL_CTL_ADD, t->fd, &ev);

    r.t0 = pr_now();
    if (pr_send_some(&r, t) != 0)
        pr_fail(&r, t, "send failed");

    /* 4. Collect until everyone and the trigger are done, or the deadline. */
    double cdeadline = r.t0 + o->collect_timeout;
    for (;;) {
        int trig_done = t->state == PR_DONE || t->state == PR_FAILED;
        if (r.finished == r.n && trig_done)
            break;
        double left = cdeadline - pr_now();
        if (left <= 0)
            break;
        pr_poll(&r, left > 0.1 ? 100 : (int)(left * 1000) + 1, r.t0);
    }
    if (t->state != PR_DONE || (t->status / 100) != 2) {
        fprintf(stderr, "propagation: round %d: trigger %s %s -> %s (status %d)\n", round,
                o->trigger_method, o->trigger_path, t->why ? t->why : "no answer", t->status);
        if (t->state == PR_DONE && t->len > t->header_len)
            fprintf(stderr, "  body: %.*s\n",
                    (int)(t->len - t->header_len > 300 ? 300 : t->len - t->header_len),
                    t->buf + t->header_len);
    }
    r.t1 = t->state == PR_DONE ? t->t_done : NAN;
    if (!isnan(r.t1))
        tot->trigger_ms[tot->ntrig++] = (r.t1 - r.t0) * 1000.0;

    /* 5. Tally. */
    const char *new_etag = NULL;
    const char *expect = o->n_expect_bodies ? o->expect_bodies[round % o->n_expect_bodies] : "";
    size_t first_lat = tot->nlat;
    long first_received = tot->received;
    for (int i = 0; i < r.n; i++) {
        struct pr_conn *c = &r.conns[i];
        tot->clients++;
        const char *why = NULL;
        if (c->state == PR_FAILED)
            why = c->why;
        else if (c->state != PR_DONE)
            why = "no answer before the collect timeout";
        else if (c->early)
            why = "answered before the trigger";
        else if (c->status != o->expect_status)
            why = "unexpected status";
        else if (oo.if_none_match && strcmp(c->etag, oo.if_none_match) == 0)
            why = "same ETag as before";
        else if (expect[0] != '\0' && memmem(c->buf + c->header_len, c->len - c->header_len, expect,
                                             strlen(expect)) == NULL)
            why = "body lacks the expected text";
        if (why == NULL) {
            tot->received++;
            tot->lat_t0[tot->nlat] = (c->t_done - r.t0) * 1000.0;
            tot->lat_t1[tot->nlat] = isnan(r.t1) ? NAN : (c->t_done - r.t1) * 1000.0;
            tot->nlat++;
            if (new_etag == NULL && c->etag[0])
                new_etag = c->etag;
        } else {
            if (c->early)
                tot->early++;
            else if (c->state == PR_WAITING || c->state == PR_SENDING || c->state == PR_CONNECTING)
                tot->timeout++;
            else if (c->state == PR_DONE)
                tot->stale++;
            else
                tot->failed++;
            if (tot->first_why == NULL)
                tot->first_why = why;
            if (o->rounds <= 3 && tot->clients - tot->received <= 3)
                fprintf(stderr, "propagation: round %d client %d: %s (status %d, ETag %s)\n", round,
                        i, why, c->status, c->etag[0] ? c->etag : "-");
        }
    }
    if (round == 0)
        tot->rss_first_kb = r.rss_kb;
    if (r.rss_kb > tot->rss_kb)
        tot->rss_kb = r.rss_kb;
    if (o->rounds > 1 && o->rounds <= 10) {
        size_t k = tot->nlat - first_lat;
        double *v = malloc((k + 1) * sizeof *v);
        if (v != NULL) {
            memcpy(v, tot->lat_t1 + first_lat, k * sizeof *v);
            qsort(v, k, sizeof *v, pr_cmp_double);
            printf("  round %d: received %ld/%d (%d reused)  answer - t1 p50 %.2f p99 %.2f max "
                   "%.2f ms  "
                   "trigger %.2f ms",
                   round, tot->received - first_received, r.n, r.reused, pr_pct(v, k, 50),
                   pr_pct(v, k, 99), pr_pct(v, k, 100), (r.t1 - r.t0) * 1000.0);
            if (r.rss_kb >= 0)
                printf("  VmRSS %.1f MB", r.rss_kb / 1024.0);
            printf("\n");
            fflush(stdout);
            free(v);
        }
    }
    if (r.held_after > tot->held_after_max)
        tot->held_after_max = r.held_after;
    if (o->follow_etag && new_etag != NULL)
        snprintf(inm, inm_size, "%s", new_etag);

    /* Client sockets stay open for the next round; only the trigger goes. */
    epoll_ctl(r.epfd, EPOLL_CTL_DEL, t->fd, NULL);
    pr_close_hard(t->fd);
    free(t->req);
    free(t->buf);
    return 0;
}

static void pr_usage(FILE *f)
{
    fprintf(
        f, "usage: propagation --port P [options]\n"
           "  --host H               server holding the clients (127.0.0.1)\n"
           "  --clients N            connections held at once (10000)\n"
           "  --path P               hold request path, {i} = client index (/hold)\n"
           "  --if-none-match V      If-None-Match value sent on hold requests, e.g. '\"5\"'\n"
           "  --auth TOKEN           Authorization: Bearer TOKEN on hold and trigger\n"
           "  --trigger-host H --trigger-port P   where the write goes (same server)\n"
           "  --trigger-method M --trigger-path P (POST /release)\n"
           "  --trigger-body B       request body; repeat to alternate per round\n"
           "  --metrics-path P       Prometheus endpoint on the holding server (/metrics; '' off)\n"
           "  --held-metric NAME     gauge of held requests (vexil_longpoll_held)\n"
           "  --settle-ms MS         wait this long when there is no gauge (2000)\n"
           "  --hold-timeout S       bound on connecting + waiting for held (60)\n"
           "  --collect-timeout S    bound on waiting for answers after the trigger (10)\n"
           "  --connect-batch K      connects in flight at once (256)\n"
           "  --rounds R             repeat the whole measurement (1)\n"
           "  --follow-etag          next round's If-None-Match = this round's new ETag\n"
           "  --new-connections      new connections every round (default: poll again on the\n"
           "                         kept-alive ones, as real clients do)\n"
           "  --expect-status S      status of a good answer (200)\n"
           "  --expect-body TEXT     a good answer's body contains TEXT; repeat to alternate\n"
           "                         per round like --trigger-body ('' = no check)\n"
           "  --server-pid PID       report this process's VmRSS while holding\n"
           "  --label TEXT           name printed with the results\n");
}

int main(int argc, char **argv)
{
    struct pr_opts o = {.host = "127.0.0.1",
                        .port = 0,
                        .clients = 10000,
                        .path = "/hold",
                        .trigger_method = "POST",
                        .trigger_path = "/release",
                        .metrics_path = "/metrics",
                        .held_metric = "vexil_longpoll_held",
                        .settle_ms = 2000,
                        .hold_timeout = 60,
                        .collect_timeout = 10,
                        .connect_batch = 256,
                        .rounds = 1,
                        .expect_status = 200,
                        .label = "propagation"};
    static const struct option longopts[] = {
        {"host", 1, 0, 'h'},           {"port", 1, 0, 'p'},
        {"clients", 1, 0, 'n'},        {"path", 1, 0, 'P'},
        {"if-none-match", 1, 0, 'e'},  {"auth", 1, 0, 'a'},
        {"trigger-host", 1, 0, 'H'},   {"trigger-port", 1, 0, 'T'},
        {"trigger-method", 1, 0, 'M'}, {"trigger-path", 1, 0, 'U'},
        {"trigger-body", 1, 0, 'B'},   {"metrics-path", 1, 0, 'm'},
        {"held-metric", 1, 0, 'g'},    {"settle-ms", 1, 0, 's'},
        {"hold-timeout", 1, 0, 'w'},   {"collect-timeout", 1, 0, 'c'},
        {"connect-batch", 1, 0, 'k'},  {"rounds", 1, 0, 'r'},
        {"follow-etag", 0, 0, 'f'},    {"new-connections", 0, 0, 'N'},
        {"expect-status", 1, 0, 'S'},  {"expect-body", 1, 0, 'b'},
        {"server-pid", 1, 0, 'x'},     {"label", 1, 0, 'l'},
        {"help", 0, 0, '?'},           {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'n':
            o.clients = atoi(optarg);
            break;
        case 'P':
            o.path = optarg;
            break;
        case 'e':
            o.if_none_match = optarg;
            break;
        case 'a':
            o.auth = optarg;
            break;
        case 'H':
            o.trigger_host = optarg;
            break;
        case 'T':
            o.trigger_port = atoi(optarg);
            break;
        case 'M':
            o.trigger_method = optarg;
            break;
        case 'U':
            o.trigger_path = optarg;
            break;
        case 'B':
            if (o.n_trigger_bodies == PR_MAX_BODIES) {
                fprintf(stderr, "propagation: at most %d --trigger-body\n", PR_MAX_BODIES);
                return 2;
            }
            o.trigger_bodies[o.n_trigger_bodies++] = optarg;
            break;
        case 'm':
            o.metrics_path = optarg;
            break;
        case 'g':
            o.held_metric = optarg;
            break;
        case 's':
            o.settle_ms = atoi(optarg);
            break;
        case 'w':
            o.hold_timeout = atof(optarg);
            break;
        case 'c':
            o.collect_timeout = atof(optarg);
            break;
        case 'k':
            o.connect_batch = atoi(optarg);
            break;
        case 'r':
            o.rounds = atoi(optarg);
            break;
        case 'f':
            o.follow_etag = 1;
            break;
        case 'N':
            o.new_connections = 1;
            break;
        case 'S':
            o.expect_status = atoi(optarg);
            break;
        case 'b':
            if (o.n_expect_bodies == PR_MAX_BODIES) {
                fprintf(stderr, "propagation: at most %d --expect-body\n", PR_MAX_BODIES);
                return 2;
            }
            o.expect_bodies[o.n_expect_bodies++] = optarg;
            break;
        case 'x':
            o.server_pid = atol(optarg);
            break;
        case 'l':
            o.label = optarg;
            break;
        default:
            pr_usage(ch == '?' && strcmp(argv[optind - 1], "--help") == 0 ? stdout : stderr);
            return ch == '?' && strcmp(argv[optind - 1], "--help") == 0 ? 0 : 2;
        }
    }
    if (optind != argc || o.port <= 0 || o.port > 65535 || o.clients < 1 || o.clients > 60000 ||
        o.rounds < 1 || o.rounds > 100000 || o.connect_batch < 1 || o.hold_timeout <= 0 ||
        o.collect_timeout <= 0 || o.hold_timeout > 600 || o.collect_timeout > 600) {
        pr_usage(stderr);
        return 2;
    }
    if (o.trigger_host == NULL)
        o.trigger_host = o.host;
    if (o.trigger_port == 0)
        o.trigger_port = o.port;
    o.metrics_host = o.host;
    o.metrics_port = o.port;

    /* One descriptor per client, plus a few. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)o.clients + 32) {
        fprintf(stderr, "propagation: RLIMIT_NOFILE %llu is too low for %d clients\n",
                (unsigned long long)rl.rlim_cur, o.clients);
        return 1;
    }

    struct pr_totals tot;
    memset(&tot, 0, sizeof tot);
    size_t maxlat = (size_t)o.clients * (size_t)o.rounds;
    tot.lat_t1 = calloc(maxlat, sizeof(double));
    tot.lat_t0 = calloc(maxlat, sizeof(double));
    tot.trigger_ms = calloc((size_t)o.rounds, sizeof(double));
    tot.rss_kb = -1;
    tot.rss_first_kb = -1;
    if (tot.lat_t1 == NULL || tot.lat_t0 == NULL || tot.trigger_ms == NULL) {
        fprintf(stderr, "propagation: out of memory\n");
        return 1;
    }
    char inm[64] = "";
    if (o.if_none_match)
        snprintf(inm, sizeof inm, "%s", o.if_none_match);

    struct pr_conn *conns = calloc((size_t)o.clients, sizeof *conns);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || epfd < 0) {
        fprintf(stderr, "propagation: out of memory or epoll\n");
        return 1;
    }
    for (int i = 0; i < o.clients; i++)
        conns[i].fd = -1;
    for (int round = 0; round < o.rounds; round++)
        if (pr_run_round(&o, round, inm, sizeof inm, conns, epfd, &tot) != 0)
            return 1;
    for (int i = 0; i < o.clients; i++) {
        if (conns[i].fd >= 0)
            pr_close_hard(conns[i].fd);
        free(conns[i].req);
        free(conns[i].buf);
    }
    free(conns);
    close(epfd);

    qsort(tot.lat_t1, tot.nlat, sizeof(double), pr_cmp_double);
    qsort(tot.lat_t0, tot.nlat, sizeof(double), pr_cmp_double);
    qsort(tot.trigger_ms, (size_t)tot.ntrig, sizeof(double), pr_cmp_double);
    double *l1 = tot.lat_t1, *l0 = tot.lat_t0;
    size_t k = tot.nlat;

    printf("%s: %d client(s) x %d round(s) on %s:%d, trigger %s %s on %s:%d\n", o.label, o.clients,
           o.rounds, o.host, o.port, o.trigger_method, o.trigger_path, o.trigger_host,
           o.trigger_port);
    printf("  received new value   %ld / %ld   (early %ld, wrong/stale %ld, failed %ld, "
           "no answer %ld)\n",
           tot.received, tot.clients, tot.early, tot.stale, tot.failed, tot.timeout);
    if (tot.first_why)
        printf("  first problem        %s\n", tot.first_why);
    printf("  all held after       %.2f s (slowest round)\n", tot.held_after_max);
    if (tot.rss_kb >= 0)
        printf("  server VmRSS holding %.1f MB in round 0, at most %.1f MB (pid %ld)\n",
               tot.rss_first_kb / 1024.0, tot.rss_kb / 1024.0, o.server_pid);
    printf("  trigger answered     p50 %.2f ms  max %.2f ms  (t1 - t0)\n",
           pr_pct(tot.trigger_ms, (size_t)tot.ntrig, 50),
           pr_pct(tot.trigger_ms, (size_t)tot.ntrig, 100));
    printf("  answer - t1 (ms)     min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
           pr_pct(l1, k, 0), pr_pct(l1, k, 50), pr_pct(l1, k, 90), pr_pct(l1, k, 99),
           pr_pct(l1, k, 100));
    printf("  answer - t0 (ms)     min %.2f  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
           pr_pct(l0, k, 0), pr_pct(l0, k, 50), pr_pct(l0, k, 90), pr_pct(l0, k, 99),
           pr_pct(l0, k, 100));
    printf(
        "RESULT label=%s clients=%ld received=%ld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
        "max_ms=%.3f p99_t0_ms=%.3f max_t0_ms=%.3f trigger_ms=%.3f rss_kb=%ld rss_first_kb=%ld\n",
        o.label, tot.clients, tot.received, pr_pct(l1, k, 50), pr_pct(l1, k, 90), pr_pct(l1, k, 99),
        pr_pct(l1, k, 100), pr_pct(l0, k, 99), pr_pct(l0, k, 100),
        pr_pct(tot.trigger_ms, (size_t)tot.ntrig, 50), tot.rss_kb, tot.rss_first_kb);
    free(tot.lat_t1);
    free(tot.lat_t0);
    free(tot.trigger_ms);
    return 0;
}
