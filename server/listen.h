/* listen.h -- the change listener: one thread with its own PostgreSQL
 * connection that LISTENs for changes, reloads and publishes the snapshot,
 * wakes long-polls, flushes token usage, and tracks whether the database is
 * up. */
#ifndef VX_LISTEN_H
#define VX_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

/* Try to load the first snapshot (synchronously, once); then start the
 * thread, which keeps trying if the database was down.  0 or -1. */
int listen_start(unsigned check_interval_s);
void listen_stop(void);

bool listen_db_up(void);
/* A writer saw the database fail: re-check soon. */
void listen_db_suspect(void);

/* Ask for a reload now (after a local write), and wait up to timeout_ms for
 * the published snapshot to reach version (read-your-writes on this
 * instance).  true if it did. */
bool listen_await_version(int64_t version, int timeout_ms);
/* Ask for a full reload and wait up to timeout_ms until one that started
 * after this call has been published (token changes, which do not move the
 * version).  true if it was. */
bool listen_reload_sync(int timeout_ms);

#endif
