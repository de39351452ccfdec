/* config.c -- parse `vexil serve` options.
 *
 * Precedence: command line over environment over defaults, so a systemd
 * unit can set VEXIL_* and an operator can still override one flag by hand.
 * Each option is declared once in serve_opts (with opts.h); opts_parse()
 * validates every value; bad use prints one line and exits 2 (docs/operations.md §1). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "httputil.h"
#include "opts.h"

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
    "  --max-waiters N          held long-polls and streams, below --max-connections\n"
    "                           (VEXIL_MAX_WAITERS, default 9/10 of --max-connections)\n"
    "  --max-connections-per-ip N  connections from one address (VEXIL_MAX_CONNECTIONS_PER_IP,\n"
    "                           default halfway between --max-waiters and --max-connections)\n"
    "  --idle-timeout SECONDS   close idle connections (VEXIL_IDLE_TIMEOUT, default 60)\n"
    "  --threads N              HTTP worker threads (VEXIL_THREADS, default: CPUs)\n"
    "  --check-interval SECONDS version check period (VEXIL_CHECK_INTERVAL, default 10)\n"
    "  --last-evaluated-interval SECONDS  how often evaluations are written as each flag's\n"
    "                           last_evaluated_at (VEXIL_LAST_EVALUATED_INTERVAL, default 10)\n"
    "  --connection-memory BYTES memory pool of each connection (VEXIL_CONNECTION_MEMORY,\n"
    "                           default 16384; requests whose line and headers exceed it\n"
    "                           get 414/431, so keep it above the URL limit)\n"
    "  --db-threads N           threads that run database work (VEXIL_DB_THREADS, default 4)\n"
    "  --db-connect-timeout SECONDS  (VEXIL_DB_CONNECT_TIMEOUT, default 3)\n"
    "  --db-statement-timeout MS  a statement running longer is cancelled and the write\n"
    "                           answers 503 (VEXIL_DB_STATEMENT_TIMEOUT, default 5000)\n"
    "  --db-lock-timeout MS     longest wait for each lock a write takes\n"
    "                           (VEXIL_DB_LOCK_TIMEOUT, default 2000)\n";

/* HOST:PORT, or [IPv6]:PORT, into out (struct vx_config). 0, or -1 if bad. */
static int listen_parse(const char *v, void *out)
{
    struct vx_config *cfg = out;
    const char *colon = strrchr(v, ':');
    int64_t port;

    if (colon == NULL || (size_t)(colon - v) >= sizeof(cfg->listen_host) ||
        parse_int_range(colon + 1, 1, 65535, &port) != 0)
        return -1;
    const char *h = v;
    size_t hl = (size_t)(colon - v);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8080 */
        h++;
        hl -= 2;
    }
    memcpy(cfg->listen_host, h, hl);
    cfg->listen_host[hl] = '\0';
    cfg->listen_port = (uint16_t)port;
    return 0;
}

/* Every option of `vexil serve`, once: name, environment variable, bounds. */
static const struct opts_opt serve_opts[] = {
    OPTS_CUSTOM("listen", "VEXIL_LISTEN", listen_parse, &vx_cfg, "HOST:PORT"),
    OPTS_STRING("database", "VEXIL_DATABASE_URL", vx_cfg.database),
    OPTS_STRING("web", "VEXIL_WEB_DIR", vx_cfg.web_dir),
    OPTS_STRING("cors-origins", "VEXIL_CORS_ORIGINS", vx_cfg.cors_origins),
    OPTS_NUMBER("max-body", "VEXIL_MAX_BODY", vx_cfg.max_body, 1024, INT64_C(1) << 30),
    OPTS_NUMBER("max-connections", "VEXIL_MAX_CONNECTIONS", vx_cfg.max_connections, 16, 1000000),
    OPTS_NUMBER("max-waiters", "VEXIL_MAX_WAITERS", vx_cfg.max_waiters, 1, 1000000),
    OPTS_NUMBER("idle-timeout", "VEXIL_IDLE_TIMEOUT", vx_cfg.idle_timeout, 1, 86400),
    OPTS_NUMBER("threads", "VEXIL_THREADS", vx_cfg.threads, 1, 64),
    OPTS_NUMBER("check-interval", "VEXIL_CHECK_INTERVAL", vx_cfg.check_interval, 1, 30),
    OPTS_NUMBER("last-evaluated-interval", "VEXIL_LAST_EVALUATED_INTERVAL",
                vx_cfg.last_evaluated_interval, 1, 600),
    OPTS_NUMBER("connection-memory", "VEXIL_CONNECTION_MEMORY", vx_cfg.conn_memory, 4096,
                1024 * 1024),
    OPTS_NUMBER("max-url", "VEXIL_MAX_URL", vx_cfg.max_url, 256, 1024 * 1024),
    OPTS_NUMBER("max-connections-per-ip", "VEXIL_MAX_CONNECTIONS_PER_IP", vx_cfg.max_conns_per_ip,
                1, 1000000),
    OPTS_NUMBER("db-threads", "VEXIL_DB_THREADS", vx_cfg.db_threads, 1, 64),
    OPTS_NUMBER("db-connect-timeout", "VEXIL_DB_CONNECT_TIMEOUT", vx_cfg.db_connect_timeout, 1, 60),
    OPTS_NUMBER("db-statement-timeout", "VEXIL_DB_STATEMENT_TIMEOUT", vx_cfg.db_statement_timeout,
                100, 600000),
    OPTS_NUMBER("db-lock-timeout", "VEXIL_DB_LOCK_TIMEOUT", vx_cfg.db_lock_timeout, 10, 600000),
    OPTS_END,
};

/* The connection limits hold together so that a rollback always gets
 * through (docs/api.md §5): held requests stay below the connection cap,
 * leaving room for writes, and one address (a flood, or a load balancer)
 * may take more than every held request but not every connection.  0 or 2
 * after the one line of bad use. */
static int derive_limits(void)
{
    if (vx_cfg.max_waiters == 0)
        vx_cfg.max_waiters = vx_cfg.max_connections - vx_cfg.max_connections / 10;
    if (vx_cfg.max_waiters >= vx_cfg.max_connections) {
        fprintf(stderr,
                "vexil serve: --max-waiters (%u) must stay below --max-connections (%u), "
                "so that a write always finds a connection\n",
                vx_cfg.max_waiters, vx_cfg.max_connections);
        return 2;
    }
    if (vx_cfg.max_conns_per_ip == 0)
        vx_cfg.max_conns_per_ip =
            vx_cfg.max_waiters + (vx_cfg.max_connections - vx_cfg.max_waiters) / 2;
    return 0;
}

int config_parse_serve(int argc, char **argv)
{
    static const struct opts_cmd serve = {"serve", usage, serve_opts};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n_pos;

    memset(&vx_cfg, 0, sizeof(vx_cfg));
    strcpy(vx_cfg.listen_host, "127.0.0.1");
    vx_cfg.listen_port = 8080;
    vx_cfg.max_body = 1024 * 1024;
    vx_cfg.max_url = 8192;
    vx_cfg.max_connections = 10000;
    vx_cfg.max_waiters = 0;      /* derived below unless given */
    vx_cfg.max_conns_per_ip = 0; /* likewise */
    vx_cfg.idle_timeout = 60;
    vx_cfg.threads = cpus > 0 && cpus < 64 ? (unsigned)cpus : 2;
    vx_cfg.conn_memory = 16 * 1024;
    vx_cfg.check_interval = 10;
    vx_cfg.last_evaluated_interval = 10;
    vx_cfg.db_threads = 4;
    vx_cfg.db_connect_timeout = 3;
    vx_cfg.db_statement_timeout = 5000;
    vx_cfg.db_lock_timeout = 2000;

    switch (
        opts_parse(&serve, argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, NULL, 0, &n_pos)) {
    case OPTS_OK:
        return derive_limits();
    case OPTS_HELP:
        return 1;
    case OPTS_BAD:
        break;
    }
    return 2;
}
