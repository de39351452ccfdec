/* config.c -- parse `vexil serve` options.
 *
 * Precedence: command line over environment over defaults, so a systemd
 * unit can set VEXIL_* and an operator can still override one flag by hand.
 * Every value is validated; bad use prints one line and exits 2 (docs/operations.md §1). */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httputil.h"

struct vx_config vx_cfg;

static const char usage[] =
    "usage: vexil serve [options]\n"
    "  --listen HOST:PORT       address to serve on (VEXIL_LISTEN, default 127.0.0.1:8080)\n"
    "  --database URL           libpq URI or key=value string (VEXIL_DATABASE_URL)\n"
    "  --web DIR                admin page files (VEXIL_WEB_DIR)\n"
    "  --cors-origins LIST      comma-separated allowed origins or * (VEXIL_CORS_ORIGINS)\n"
    "  --max-body BYTES         request body limit (VEXIL_MAX_BODY, default 1048576)\n"
    "  --max-url BYTES          URL limit, 414 beyond (VEXIL_MAX_URL, default 8192)\n"
    "  --max-connections N      connection limit (VEXIL_MAX_CONNECTIONS, default 10000)\n"
    "  --max-waiters N          held long-polls and streams (VEXIL_MAX_WAITERS, default 10000)\n"
    "  --idle-timeout SECONDS   close idle connections (VEXIL_IDLE_TIMEOUT, default 60)\n"
    "  --threads N              HTTP worker threads (VEXIL_THREADS, default: CPUs)\n"
    "  --check-interval SECONDS version check period (VEXIL_CHECK_INTERVAL, default 10)\n"
    "  --connection-memory BYTES memory pool of each connection (VEXIL_CONNECTION_MEMORY,\n"
    "                           default 16384; requests whose line and headers exceed it\n"
    "                           get 414/431, so keep it above the URL limit)\n";

static int set_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    int64_t port;

    if (colon == NULL || (size_t)(colon - v) >= sizeof(vx_cfg.listen_host) ||
        parse_int_range(colon + 1, 1, 65535, &port) != 0) {
        fprintf(stderr, "vexil serve: --listen wants HOST:PORT, got '%s'\n", v);
        return -1;
    }
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8080 */
        h++;
        hl -= 2;
    }
    memcpy(vx_cfg.listen_host, h, hl);
    vx_cfg.listen_host[hl] = '\0';
    vx_cfg.listen_port = (uint16_t)port;
    return 0;
}

static int set_num(const char *name, const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (parse_int_range(v, min, max, out) != 0) {
        fprintf(stderr, "vexil serve: %s wants an integer from %lld to %lld, got '%s'\n", name,
                (long long)min, (long long)max, v);
        return -1;
    }
    return 0;
}

enum {
    O_LISTEN = 1,
    O_DB,
    O_WEB,
    O_CORS,
    O_BODY,
    O_CONN,
    O_WAIT,
    O_IDLE,
    O_THREADS,
    O_CHECK,
    O_CONNMEM,
    O_URL,
    O_HELP
};

static int apply(int opt, const char *v)
{
    int64_t n;

    switch (opt) {
    case O_LISTEN:
        return set_listen(v);
    case O_DB:
        vx_cfg.database = v;
        return 0;
    case O_WEB:
        vx_cfg.web_dir = v;
        return 0;
    case O_CORS:
        vx_cfg.cors_origins = v;
        return 0;
    case O_BODY:
        if (set_num("--max-body", v, 1024, INT64_C(1) << 30, &n))
            return -1;
        vx_cfg.max_body = (size_t)n;
        return 0;
    case O_CONN:
        if (set_num("--max-connections", v, 16, 1000000, &n))
            return -1;
        vx_cfg.max_connections = (unsigned)n;
        return 0;
    case O_WAIT:
        if (set_num("--max-waiters", v, 0, 1000000, &n))
            return -1;
        vx_cfg.max_waiters = (unsigned)n;
        return 0;
    case O_IDLE:
        if (set_num("--idle-timeout", v, 1, 86400, &n))
            return -1;
        vx_cfg.idle_timeout = (unsigned)n;
        return 0;
    case O_THREADS:
        if (set_num("--threads", v, 1, 64, &n))
            return -1;
        vx_cfg.threads = (unsigned)n;
        return 0;
    case O_CHECK:
        if (set_num("--check-interval", v, 1, 30, &n))
            return -1;
        vx_cfg.check_interval = (unsigned)n;
        return 0;
    case O_URL:
        if (set_num("--max-url", v, 256, 1024 * 1024, &n))
            return -1;
        vx_cfg.max_url = (size_t)n;
        return 0;
    case O_CONNMEM:
        if (set_num("--connection-memory", v, 4096, 1024 * 1024, &n))
            return -1;
        vx_cfg.conn_memory = (size_t)n;
        return 0;
    }
    return -1;
}

int config_parse_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"database", required_argument, NULL, O_DB},
        {"web", required_argument, NULL, O_WEB},
        {"cors-origins", required_argument, NULL, O_CORS},
        {"max-body", required_argument, NULL, O_BODY},
        {"max-connections", required_argument, NULL, O_CONN},
        {"max-waiters", required_argument, NULL, O_WAIT},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"threads", required_argument, NULL, O_THREADS},
        {"check-interval", required_argument, NULL, O_CHECK},
        {"connection-memory", required_argument, NULL, O_CONNMEM},
        {"max-url", required_argument, NULL, O_URL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *env;
        int opt;
    } envs[] = {
        {"VEXIL_LISTEN", O_LISTEN},
        {"VEXIL_DATABASE_URL", O_DB},
        {"VEXIL_WEB_DIR", O_WEB},
        {"VEXIL_CORS_ORIGINS", O_CORS},
        {"VEXIL_MAX_BODY", O_BODY},
        {"VEXIL_MAX_CONNECTIONS", O_CONN},
        {"VEXIL_MAX_WAITERS", O_WAIT},
        {"VEXIL_IDLE_TIMEOUT", O_IDLE},
        {"VEXIL_THREADS", O_THREADS},
        {"VEXIL_CHECK_INTERVAL", O_CHECK},
        {"VEXIL_CONNECTION_MEMORY", O_CONNMEM},
        {"VEXIL_MAX_URL", O_URL},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(&vx_cfg, 0, sizeof(vx_cfg));
    strcpy(vx_cfg.listen_host, "127.0.0.1");
    vx_cfg.listen_port = 8080;
    vx_cfg.max_body = 1024 * 1024;
    vx_cfg.max_url = 8192;
    vx_cfg.max_connections = 10000;
    vx_cfg.max_waiters = 10000;
    vx_cfg.idle_timeout = 60;
    vx_cfg.threads = cpus > 0 && cpus < 64 ? (unsigned)cpus : 2;
    vx_cfg.conn_memory = 16 * 1024;
    vx_cfg.check_interval = 10;

    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
        const char *v = getenv(envs[i].env);
        if (v != NULL && *v != '\0' && apply(envs[i].opt, v) != 0)
            return 2;
    }
    optind = 1;
    opterr = 0;
    for (;;) {
        int o = getopt_long(argc, argv, "", opts, NULL);
        if (o == -1)
            break;
        if (o == O_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (o == '?' || o == ':') {
            fprintf(stderr, "vexil serve: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
        if (apply(o, optarg) != 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "vexil serve: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}
