/*
 * ref_server.c -- the "ceiling" that vexil's benchmarks are measured against.
 *
 * Why: a requests/s or a propagation latency means little on its own, since
 * both depend on the machine, the kernel and libmicrohttpd itself.  This
 * server does the least work libmicrohttpd allows with the same daemon set-up
 * vexil uses (epoll internal thread pool of 2, suspend/resume, connection and
 * memory limits, idle timeout), so vexil's figure divided by this one says how
 * much vexil's own code (routing, auth, snapshot, evaluation, JSON, logging)
 * costs on top of the HTTP library.
 *
 * How:
 *   GET  /body[?size=N]  answers N bytes (default --body-size) from one static
 *                        buffer: no allocation, no copy (MHD_RESPMEM_PERSISTENT).
 *   GET  /hold           suspends the connection and appends it to a list
 *                        (suspend and append happen under one mutex, so a
 *                        release can never resume a connection that is not
 *                        suspended yet).
 *   POST /release[?size=N]  (or GET) resumes every held connection from
 *                        the handler's own thread; each then answers 200 with
 *                        a small body, or with N bytes when size is given (to
 *                        match the size of vexil's answers).  The release
 *                        itself answers {"released": count}.
 *   GET  /metrics        "vexil_longpoll_held N", the same gauge name vexil
 *                        exports, so the propagation tool waits on both the
 *                        same way.
 *   GET  /healthz        200.
 * SIGINT/SIGTERM resume everything still held, then stop the daemon.
 *
 * Build: cc -O2 -Wall -Wextra -Werror ref_server.c -o ref_server \
 *            $(pkg-config --cflags --libs libmicrohttpd) -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define REF_MAX_BODY (4u * 1024u * 1024u)

struct ref_config {
    const char *host;
    unsigned port;
    unsigned threads;
    unsigned max_conn;
    size_t mem_limit;
    unsigned idle_timeout;
    size_t body_size;
    size_t max_held;
};

/* Held connections.  The array is allocated once at start (max_held slots). */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Connection **held;
static size_t held_count;
static size_t held_cap;

static char *body_buf; /* REF_MAX_BODY bytes of 'x'; the content does not matter */
static size_t default_body_size;
static size_t release_body_size; /* 0: the small resp_released; atomic access */

/* Per-request markers stored in *con_cls; no allocation per request. */
static int mark_seen;
static int mark_held;

static struct MHD_Response *resp_released;
static struct MHD_Response *resp_not_found;
static struct MHD_Response *resp_too_many;
static struct MHD_Response *resp_ok;

static enum MHD_Result ref_queue_static(struct MHD_Connection *c, unsigned status,
                                        struct MHD_Response *r)
{
    return MHD_queue_response(c, status, r);
}

static enum MHD_Result ref_queue_text(struct MHD_Connection *c, unsigned status, const char *text,
                                      const char *ctype)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The "size" query argument: 0 ok (*size set, or untouched when absent), -1 bad. */
static int ref_size_arg(struct MHD_Connection *c, size_t *size)
{
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "size");
    if (s == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > REF_MAX_BODY)
        return -1;
    *size = (size_t)v;
    return 0;
}

static enum MHD_Result ref_send_body(struct MHD_Connection *c, size_t size)
{
    /* Persistent buffer shared by all threads: MHD sends straight from it. */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(size, body_buf, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result ref_body(struct MHD_Connection *c)
{
    size_t size = default_body_size;
    if (ref_size_arg(c, &size) != 0)
        return ref_queue_text(c, MHD_HTTP_BAD_REQUEST, "bad size\n", "text/plain");
    return ref_send_body(c, size);
}

/* Called with held_lock NOT held.  Returns how many were resumed.  body_size:
 * what each resumed connection answers (0: the small default). */
static size_t ref_release_all(size_t body_size)
{
    pthread_mutex_lock(&held_lock);
    __atomic_store_n(&release_body_size, body_size, __ATOMIC_RELEASE);
    size_t n = held_count;
    for (size_t i = 0; i < n; i++)
        MHD_resume_connection(held[i]);
    held_count = 0;
    pthread_mutex_unlock(&held_lock);
    return n;
}

static enum MHD_Result ref_handler(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;

    if (*con_cls == &mark_held) { /* resumed after a release */
        size_t size = __atomic_load_n(&release_body_size, __ATOMIC_ACQUIRE);
        return size ? ref_send_body(c, size) : ref_queue_static(c, MHD_HTTP_OK, resp_released);
    }
    if (*con_cls == NULL) { /* headers only; MHD calls again for the body */
        *con_cls = &mark_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) { /* ignore request bodies, but consume them */
        *upload_data_size = 0;
        return MHD_YES;
    }

    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

    if (is_get && strcmp(url, "/body") == 0)
        return ref_body(c);

    if (is_get && strcmp(url, "/hold") == 0) {
        pthread_mutex_lock(&held_lock);
        if (held_count == held_cap) {
            pthread_mutex_unlock(&held_lock);
            return ref_queue_static(c, MHD_HTTP_SERVICE_UNAVAILABLE, resp_too_many);
        }
        *con_cls = &mark_held;
        MHD_suspend_connection(c);
        held[held_count++] = c;
        pthread_mutex_unlock(&held_lock);
        return MHD_YES;
    }

    if ((is_get || is_post) && strcmp(url, "/release") == 0) {
        char text[64];
        size_t size = 0;
        if (ref_size_arg(c, &size) != 0)
            return ref_queue_text(c, MHD_HTTP_BAD_REQUEST, "bad size\n", "text/plain");
        snprintf(text, sizeof text, "{\"released\":%zu}\n", ref_release_all(size));
        return ref_queue_text(c, MHD_HTTP_OK, text, "application/json");
    }

    if (is_get && strcmp(url, "/metrics") == 0) {
        char text[160];
        pthread_mutex_lock(&held_lock);
        size_t n = held_count;
        pthread_mutex_unlock(&held_lock);
        snprintf(text, sizeof text, "# TYPE vexil_longpoll_held gauge\nvexil_longpoll_held %zu\n",
                 n);
        return ref_queue_text(c, MHD_HTTP_OK, text, "text/plain; version=0.0.4");
    }

    if (is_get && strcmp(url, "/healthz") == 0)
        return ref_queue_static(c, MHD_HTTP_OK, resp_ok);

    return ref_queue_static(c, MHD_HTTP_NOT_FOUND, resp_not_found);
}

static struct MHD_Response *ref_static_response(const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        fprintf(stderr, "ref_server: cannot create response\n");
        exit(1);
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return r;
}

static int ref_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static void ref_usage(FILE *f)
{
    fprintf(f, "usage: ref_server [--host 127.0.0.1] [--port 8090] [--threads 2]\n"
               "                  [--max-conn 16000] [--mem-limit 16384] [--idle-timeout 120]\n"
               "                  [--body-size 1024] [--max-held 16000]\n");
}

int main(int argc, char **argv)
{
    struct ref_config cfg = {"127.0.0.1", 8090, 2, 16000, 16384, 120, 1024, 16000};

    for (int i = 1; i < argc; i++) {
        unsigned long long v = 0;
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0) {
            ref_usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            ref_usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--host") == 0) {
            cfg.host = val;
            continue;
        }
        if (ref_parse_uint(val, UINT_MAX, &v) != 0) {
            fprintf(stderr, "ref_server: bad value for %s: %s\n", opt, val);
            return 2;
        }
        if (strcmp(opt, "--port") == 0 && v <= 65535)
            cfg.port = (unsigned)v;
        else if (strcmp(opt, "--threads") == 0 && v >= 1 && v <= 64)
            cfg.threads = (unsigned)v;
        else if (strcmp(opt, "--max-conn") == 0 && v >= 1)
            cfg.max_conn = (unsigned)v;
        else if (strcmp(opt, "--mem-limit") == 0 && v >= 4096)
            cfg.mem_limit = (size_t)v;
        else if (strcmp(opt, "--idle-timeout") == 0)
            cfg.idle_timeout = (unsigned)v;
        else if (strcmp(opt, "--body-size") == 0 && v <= REF_MAX_BODY)
            cfg.body_size = (size_t)v;
        else if (strcmp(opt, "--max-held") == 0 && v >= 1)
            cfg.max_held = (size_t)v;
        else {
            fprintf(stderr, "ref_server: bad option or value: %s %s\n", opt, val);
            return 2;
        }
    }

    /* Every held connection is a socket: allow as many as the hard limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    body_buf = malloc(REF_MAX_BODY);
    held = calloc(cfg.max_held, sizeof *held);
    if (body_buf == NULL || held == NULL) {
        fprintf(stderr, "ref_server: out of memory\n");
        return 1;
    }
    memset(body_buf, 'x', REF_MAX_BODY);
    default_body_size = cfg.body_size;
    held_cap = cfg.max_held;

    resp_released = ref_static_response("{\"released\":true}\n");
    resp_not_found = ref_static_response("{\"error\":\"not found\"}\n");
    resp_too_many = ref_static_response("{\"error\":\"too many held\"}\n");
    resp_ok = ref_static_response("{\"status\":\"ok\"}\n");

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)cfg.port);
    if (inet_pton(AF_INET, cfg.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ref_server: bad IPv4 host: %s\n", cfg.host);
        return 2;
    }

    /* Signals go to the main thread only: block them before MHD starts its
     * threads (which inherit the mask), then sigwait below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)cfg.port, NULL, NULL, ref_handler, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, cfg.max_conn, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        cfg.mem_limit, MHD_OPTION_CONNECTION_MEMORY_INCREMENT, (size_t)1024, /* as vexil */
        MHD_OPTION_CONNECTION_TIMEOUT, cfg.idle_timeout, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "ref_server: cannot start on %s:%u\n", cfg.host, cfg.port);
        return 1;
    }
    fprintf(stderr, "ref_server: listening on %s:%u (threads %u, max-conn %u, mem-limit %zu)\n",
            cfg.host, cfg.port, cfg.threads, cfg.max_conn, cfg.mem_limit);

    int sig = 0;
    sigwait(&sigs, &sig);

    /* Suspended connections must be resumed before MHD_stop_daemon. */
    size_t n = ref_release_all(0);
    if (n > 0)
        usleep(200 * 1000); /* give the workers a moment to answer them */
    MHD_stop_daemon(d);
    MHD_destroy_response(resp_released);
    MHD_destroy_response(resp_not_found);
    MHD_destroy_response(resp_too_many);
    MHD_destroy_response(resp_ok);
    free(held);
    free(body_buf);
    return 0;
}
