/* main.c -- `vexil serve | migrate | stale | refs | token | version`.
 *
 * serve: migrate, load the first snapshot, start the listener, the
 * long-poll timer and the HTTP daemon, then wait for SIGTERM/SIGINT in the
 * main thread (signals are blocked everywhere else), and shut down in the
 * reverse order: stop accepting, answer every held request, stop. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "config.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "plans.h"
#include "usage.h"
#include "webhooks.h"
#include "dbpool.h"
#include "longpoll.h"
#include "migrate.h"
#include "snapshot.h"
#include "store.h"
#include "timeutil.h"

static const char usage[] = "usage: vexil <command> [options]\n"
                            "commands:\n"
                            "  serve     migrate the database and serve HTTP\n"
                            "  migrate   apply pending database migrations\n"
                            "  token     create, list or revoke API tokens\n"
                            "  stale     list flags due for removal (for cron)\n"
                            "  refs      find where code still uses a flag\n"
                            "  version   print the version\n"
                            "Run 'vexil <command> --help' for a command's options.\n";

/* Allow as many descriptors as connections (plus room for the rest). */
static void raise_nofile(unsigned want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t need = (rlim_t)want + 256;
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
        log_error("open-file limit is %llu, below the %u connections asked for",
                  (unsigned long long)rl.rlim_cur, want);
}

static int serve(int argc, char **argv)
{
    struct vx_error err;
    sigset_t set;
    int sig = 0;
    int rc = config_parse_serve(argc, argv);

    if (rc == 1)
        return 0;
    if (rc != 0)
        return 2;
    raise_nofile(vx_cfg.max_connections);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* nothing to reload: configuration is read at start */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    const struct store_limits limits = {.connect_timeout_s = vx_cfg.db_connect_timeout,
                                        .statement_timeout_ms = vx_cfg.db_statement_timeout,
                                        .lock_timeout_ms = vx_cfg.db_lock_timeout};
    store_configure(vx_cfg.database, &limits);
    PGconn *c = store_connect(&err);
    if (c == NULL) {
        log_error("cannot reach the database: %s", err.message);
        return 1;
    }
    int applied = 0;
    if (migrate_run(c, &applied, &err) != 0) {
        log_error("migration failed: %s", err.message);
        PQfinish(c);
        return 1;
    }
    PQfinish(c);
    if (applied > 0)
        log_info("applied %d migration(s)", applied);
    static const struct longpoll_ops mhd_ops = {MHD_suspend_connection, MHD_resume_connection};
    if (log_start() != 0 || longpoll_init(vx_cfg.max_waiters, &mhd_ops) != 0 ||
        dbpool_start(vx_cfg.db_threads) != 0 ||
        webhooks_start() != 0 || /* before the listener, which pokes it */
        listen_start(vx_cfg.check_interval) != 0 || plans_start() != 0 ||
        usage_start(vx_cfg.last_evaluated_interval) != 0)
        return 1;
    if (http_start() != 0) {
        store_shutdown();
        webhooks_stop(true);
        usage_stop(-1);
        usage_free();
        plans_stop();
        dbpool_stop();
        listen_stop();
        longpoll_stop();
        log_stop();
        return 1;
    }
    log_info("vexil %s serving on %s:%u", VEXIL_VERSION, vx_cfg.listen_host,
             (unsigned)vx_cfg.listen_port);
    sigwait(&set, &sig);
    log_info("received %s; answering held requests and stopping",
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    webhooks_stop(false); /* abandons a delivery in flight, beside what follows */
    /* The last evaluations, while the database may still answer: at most a
     * second, so that a hung database still lets the stop end in time. */
    usage_stop(1000);
    http_stop(); /* also ends every wait on the database (store_shutdown) */
    usage_stop(-1);
    usage_free();
    webhooks_stop(true);
    plans_stop();
    dbpool_stop();
    longpoll_stop();
    listen_stop();
    snapshot_shutdown();
    log_stop();
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (cmd == NULL) {
        fputs("vexil: a command is required (serve, migrate, token, stale, refs, version); see "
              "--help\n",
              stderr);
        return 2;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("vexil %s\n", VEXIL_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return serve(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return cli_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cli_token(argc - 1, argv + 1);
    if (strcmp(cmd, "stale") == 0)
        return cli_stale(argc - 1, argv + 1);
    if (strcmp(cmd, "refs") == 0)
        return cli_refs(argc - 1, argv + 1);
    fprintf(stderr, "vexil: unknown command '%s' (serve, migrate, token, stale, refs, version)\n",
            cmd);
    return 2;
}
