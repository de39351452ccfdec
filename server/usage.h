/* usage.h -- when each flag was last evaluated, per environment
 * (docs/operations.md §3 "Last evaluated").
 *
 * The read path marks what it evaluated (usage_mark, usage_mark_all): a
 * few instructions, no lock, no allocation, no system call in the common
 * case.  A background thread gathers the marks of every thread and writes
 * them to flag_states.last_evaluated_at every --last-evaluated-interval seconds (10), in one
 * statement, then reads back what every instance wrote, for the admin
 * answers (usage_last). */
#ifndef VX_USAGE_H
#define VX_USAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Flag name (len bytes) was evaluated in the environment of id env_id. */
void usage_mark(int64_t env_id, const char *name, size_t len);
/* Every flag of the environment of id env_id was evaluated. */
void usage_mark_all(int64_t env_id);
/* Flag name was evaluated at time at (µs), as an SDK's metrics report. */
void usage_mark_at(int64_t env_id, const char *name, size_t len, int64_t at);
/* Read what the database holds (so that the first answers know it), then
 * start the writer thread, which writes every interval_s seconds.  0 or
 * -1. */
int usage_start(unsigned interval_s);
/* Write what is marked one last time, and stop: ask for it, and wait at
 * most wait_ms (< 0: until it is done; after store_shutdown() its database
 * waits end at once) for the thread to end; call again to wait more. */
void usage_stop(int wait_ms);

/* Once nothing marks any more (the HTTP daemon stopped): free everything,
 * if the writer has ended (else leave it to the process's exit). */
void usage_free(void);

/* When flag was last evaluated in env, as far as the database said at the
 * last read (µs; 0: never, or not known yet). */
int64_t usage_last(const char *env, const char *flag);

/* Set "last_evaluated_at" (RFC 3339 or null) on the state object o of
 * flag in env, a flag created at created_at (µs): a time read before it
 * belongs to an earlier flag of that name.  0, or -1 on OOM. */
int usage_annotate(json_t *o, const char *env, const char *flag, int64_t created_at);

#endif
