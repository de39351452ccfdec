/* config.h -- `vexil serve` settings: defaults, environment, command line. */
#ifndef VX_CONFIG_H
#define VX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct vx_config {
    char listen_host[64];
    uint16_t listen_port;
    const char *database;     /* NULL: libpq defaults */
    const char *web_dir;      /* NULL: no admin page */
    const char *cors_origins; /* comma-separated, "*" for any; NULL: no CORS */
    size_t max_body;          /* bytes, default 1 MiB */
    size_t max_url;           /* bytes, default 8 KiB */
    unsigned max_connections; /* default 10000 */
    unsigned max_waiters;     /* held long-polls and streams, default 9/10 of max_connections */
    unsigned idle_timeout;    /* seconds, default 60 */
    unsigned threads;         /* MHD worker threads, default = CPUs */
    size_t conn_memory;       /* per-connection pool bytes, default 16 KiB */
    unsigned check_interval;  /* seconds between version checks, default 10 */
    unsigned last_evaluated_interval; /* seconds between usage writes, default 10 */
    unsigned max_conns_per_ip;        /* default: between max_waiters and max_connections */
    unsigned db_threads;              /* threads that run database work, default 4 */
    int db_connect_timeout;           /* seconds, default 3 */
    int db_statement_timeout;         /* ms, default 5000 */
    int db_lock_timeout;              /* ms, default 2000 */
};

extern struct vx_config vx_cfg;

/* Fill vx_cfg from defaults, environment, then argv (after "serve").
 * Returns 0, 1 when --help was printed, or 2 after printing one line on
 * stderr about bad use. */
int config_parse_serve(int argc, char **argv);

#endif
