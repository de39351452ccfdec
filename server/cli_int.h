/* cli_int.h -- what the command files (cli.c, cli_refs.c) share; nothing
 * else includes it.
 *
 * cli.c holds the helpers every command uses: the exit statuses, the one
 * line of bad use or error, text from data made visible in a table,
 * writing the output, the database connection and JSON output.  cli_refs.c
 * holds the scan that `vexil stale --refs` adds to its report. */
#ifndef VX_CLI_INT_H
#define VX_CLI_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "opts.h"
#include "store.h"
#include "text.h"

#define CLI_EXIT_OK    0
#define CLI_EXIT_FOUND 1 /* stale flags (stale); a reference that fails --fail-on (refs) */
#define CLI_EXIT_ERROR 2

/* ------------------------------------------------------------------ */
/* cli.c                                                                */
/* ------------------------------------------------------------------ */

/* Print the one line of bad use or error on stderr; returns CLI_EXIT_ERROR. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The exit status for opts_parse()'s result, when it is not OPTS_OK. */
int cli_exit(enum opts_result r);

/* The width of s (NULL: 0) as buf_add_visible shows it. */
size_t cli_width(const char *s);

/* Add s (NULL: nothing), made visible.  0, or -1 when out of memory. */
int cli_text(struct buf *out, const char *s);

/* Add s, made visible, left-aligned in a column of width characters, then
 * two spaces.  0, or -1 when out of memory. */
int cli_cell(struct buf *out, const char *s, size_t width);

/* Write out (built: 0, or -1 when building it ran out of memory) to stdout
 * and free it.  0, or -1 after printing the error line. */
int cli_write(const char *cmd, struct buf *out, int built);

/* Connect with database (NULL: libpq's defaults).  NULL after printing the
 * error line.  Caller PQfinish()es. */
PGconn *cli_connect(const char *cmd, const char *database);

/* Print the error line for a failed store call; returns CLI_EXIT_ERROR. */
int cli_store_fail(const char *cmd, PGconn *c, enum store_status st, const char *what);

/* Print a JSON value and a newline on stdout, no control character left
 * raw.  0 or CLI_EXIT_ERROR. */
int cli_print_json(const char *cmd, const json_t *v);

/* ------------------------------------------------------------------ */
/* cli_refs.c                                                           */
/* ------------------------------------------------------------------ */

/* The paths of a repeatable option (`--refs PATH`), pointing into argv. */
#define CLI_PATHS_MAX 64
struct cli_paths {
    const char *v[CLI_PATHS_MAX];
    size_t n;
};

/* OPTS_KIND_CUSTOM parser: append value to the struct cli_paths at out.
 * 0, or -1 when it is empty or the list is full. */
int cli_paths_add(const char *value, void *out);
#define CLI_PATHS_WANT "a file or directory (at most 64 of them)"

/* Scan paths for the names of the flags in stale (an array of admin flag
 * objects) and give each object "references": [{"path", "line"}], in walk
 * order.  0, or CLI_EXIT_ERROR after printing the error line. */
int cli_refs_attach(const char *cmd, json_t *stale, const struct cli_paths *paths);

#endif
