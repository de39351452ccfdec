/* opts.c -- the one long-option parser of every `vexil` command.
 *
 * Each command declares its options in a table (opts.h) and calls
 * opts_parse() once; the conventions of docs/decisions.md "Command line"
 * then hold for all of them alike: --help prints the usage on stdout, bad
 * use prints one line on stderr, "vexil <command>: ...", and every value
 * is checked where it is read, whether it came from the environment or the
 * command line, with one message shape for each kind.
 *
 * Why not getopt_long: it keeps global state between calls (these functions
 * run many times in one unit-test process), prints messages of its own,
 * and accepts abbreviations (--data for --database) that stop working, or
 * change meaning, as soon as a longer option is added. */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httputil.h"

void opts_vfail(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "vexil %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

__attribute__((format(printf, 2, 3))) static void opts_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    opts_vfail(cmd, fmt, ap);
    va_end(ap);
}

/* Set what o sets from value (not for a switch).  The message names where
 * the value came from: the environment variable, or the option.  0, or -1
 * after printing it. */
static int opts_set(const char *cmd, const struct opts_opt *o, bool from_env, const char *value)
{
    const char *dashes = from_env ? "" : "--", *from = from_env ? o->env : o->name;
    int64_t n;

    switch (o->kind) {
    case OPTS_KIND_STRING:
        *(const char **)o->out = value;
        return 0;
    case OPTS_KIND_CUSTOM:
        if (o->parse(value, o->out) == 0)
            return 0;
        opts_fail(cmd, "%s%s wants %s, got '%s'", dashes, from, o->want, value);
        return -1;
    case OPTS_KIND_INT:
    case OPTS_KIND_UINT:
    case OPTS_KIND_SIZE:
        break;
    case OPTS_KIND_END:
    case OPTS_KIND_SWITCH:
        return -1;
    }
    if (parse_int_range(value, o->min, o->max, &n) != 0) {
        opts_fail(cmd, "%s%s wants an integer from %lld to %lld, got '%s'", dashes, from,
                  (long long)o->min, (long long)o->max, value);
        return -1;
    }
    if (o->kind == OPTS_KIND_INT)
        *(int *)o->out = (int)n;
    else if (o->kind == OPTS_KIND_UINT)
        *(unsigned *)o->out = (unsigned)n;
    else
        *(size_t *)o->out = (size_t)n;
    return 0;
}

/* The option named by name[0..len), or NULL. */
static const struct opts_opt *opts_find(const struct opts_opt *opts, const char *name, size_t len)
{
    for (const struct opts_opt *o = opts; o->name != NULL; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* Was help asked for before any "--"? */
static bool opts_help_asked(int argc, char **argv)
{
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

/* The environment, in table order. */
static enum opts_result opts_from_env(const struct opts_cmd *cmd)
{
    for (const struct opts_opt *o = cmd->opts; o->name != NULL; o++) {
        const char *v = o->env != NULL ? getenv(o->env) : NULL;
        if (v != NULL && v[0] != '\0' && opts_set(cmd->name, o, true, v) != 0)
            return OPTS_BAD;
    }
    return OPTS_OK;
}

enum opts_result opts_parse(const struct opts_cmd *cmd, int argc, char **argv, const char **pos,
                            int max_pos, int *n_pos)
{
    bool options_done = false;

    *n_pos = 0;
    if (opts_help_asked(argc, argv)) {
        fputs(cmd->usage, stdout);
        return OPTS_HELP;
    }
    if (opts_from_env(cmd) != OPTS_OK)
        return OPTS_BAD;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];

        if (!options_done && strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (*n_pos == max_pos) {
                opts_fail(cmd->name, "unexpected argument '%s' (see --help)", a);
                return OPTS_BAD;
            }
            pos[(*n_pos)++] = a;
            continue;
        }

        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const struct opts_opt *o = a[1] == '-' ? opts_find(cmd->opts, name, len) : NULL;
        if (o == NULL) {
            opts_fail(cmd->name, "unknown option '%.*s' (see --help)",
                      (int)(a[1] == '-' ? len + 2 : strlen(a)), a);
            return OPTS_BAD;
        }
        if (o->kind == OPTS_KIND_SWITCH) {
            if (eq != NULL) {
                opts_fail(cmd->name, "option '--%s' takes no value", o->name);
                return OPTS_BAD;
            }
            *(bool *)o->out = true;
            continue;
        }
        if (eq == NULL && i + 1 == argc) {
            opts_fail(cmd->name, "option '--%s' needs a value", o->name);
            return OPTS_BAD;
        }
        if (opts_set(cmd->name, o, false, eq != NULL ? eq + 1 : argv[++i]) != 0)
            return OPTS_BAD;
    }
    return OPTS_OK;
}
