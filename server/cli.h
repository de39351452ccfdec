/* cli.h -- the operator commands of `vexil` other than serve. Each takes
 * main's argc - 1, argv + 1: argv[0] is the command's own name ("migrate",
 * "token", "stale", "refs"), its arguments follow.  Returns the process
 * exit status (0 ok; 1 stale flags found for `stale`, a reference that
 * fails --fail-on for `refs`; 2 bad use or error). */
#ifndef VX_CLI_H
#define VX_CLI_H

int cli_migrate(int argc, char **argv);
int cli_token(int argc, char **argv);
int cli_stale(int argc, char **argv);
int cli_refs(int argc, char **argv); /* cli_refs.c */

#endif
