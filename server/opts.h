/* opts.h -- the one long-option parser of every `vexil` command.
 *
 * A command declares each option once, in a table: its name, the
 * environment variable that may also set it, the kind of value it takes,
 * its bounds and the variable it sets.  opts_parse() applies the
 * environment, then the command line, to variables that already hold the
 * defaults: command line over environment over defaults (docs/decisions.md
 * "Command line").  Write the entries with the OPTS_* macros below: they
 * check at compile time that the variable has the type the kind writes. */
#ifndef VX_OPTS_H
#define VX_OPTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum opts_kind {
    OPTS_KIND_END = 0, /* ends a table */
    OPTS_KIND_SWITCH,  /* --name: sets a bool to true; takes no value */
    OPTS_KIND_STRING,  /* --name V or --name=V: points a const char * at V */
    OPTS_KIND_INT,     /* a decimal integer in [min, max] into an int */
    OPTS_KIND_UINT,    /* ... into an unsigned */
    OPTS_KIND_SIZE,    /* ... into a size_t */
    OPTS_KIND_CUSTOM,  /* parse(V, out); the error message says it wants `want` */
};

struct opts_opt {
    const char *name; /* without the leading "--" */
    const char *env;  /* variable read before the command line, or NULL */
    enum opts_kind kind;
    void *out;        /* what the value sets; its type follows kind */
    int64_t min, max; /* the integer kinds: bounds, within the range of out's type */
    int (*parse)(const char *value, void *out); /* OPTS_KIND_CUSTOM: 0, or -1 if bad */
    const char *want;                           /* OPTS_KIND_CUSTOM: what a good value looks like */
};

/* Table entries.  var is the variable itself, not its address: a variable
 * of another type than the kind writes fails to compile.  A switch has no
 * environment variable. */
#define OPTS_SWITCH(opt, var)                                                                      \
    {                                                                                              \
        .name = (opt), .kind = OPTS_KIND_SWITCH, .out = OPTS_BOOL_PTR(&(var))                      \
    }
#define OPTS_STRING(opt, env_var, var)                                                             \
    {                                                                                              \
        .name = (opt), .env = (env_var), .kind = OPTS_KIND_STRING, .out = OPTS_STRING_PTR(&(var))  \
    }
#define OPTS_NUMBER(opt, env_var, var, lo, hi)                                                     \
    {                                                                                              \
        .name = (opt), .env = (env_var), .kind = OPTS_NUMBER_KIND(&(var)), .out = &(var),          \
        .min = (lo), .max = (hi)                                                                   \
    }
#define OPTS_CUSTOM(opt, env_var, parse_fn, out_ptr, want_text)                                    \
    {                                                                                              \
        .name = (opt), .env = (env_var), .kind = OPTS_KIND_CUSTOM, .out = (out_ptr),               \
        .parse = (parse_fn), .want = (want_text)                                                   \
    }
#define OPTS_END                                                                                   \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* The compile-time type checks of the entries above. */
#define OPTS_BOOL_PTR(p)   _Generic((p), bool * : (p))
#define OPTS_STRING_PTR(p) _Generic((p), const char ** : (p))
#define OPTS_NUMBER_KIND(p)                                                                        \
    _Generic((p), int * : OPTS_KIND_INT, unsigned * : OPTS_KIND_UINT, size_t * : OPTS_KIND_SIZE)

/* One command: its name as messages show it ("serve", "token create"), the
 * usage printed for --help, and its options (ended by OPTS_END). */
struct opts_cmd {
    const char *name;
    const char *usage;
    const struct opts_opt *opts;
};

enum opts_result {
    OPTS_OK,   /* every value set; go on */
    OPTS_HELP, /* --help or -h was given: the usage is printed on stdout */
    OPTS_BAD,  /* bad use: one line printed on stderr */
};

/* Parse the command's arguments argv[0..argc) (what follows its name).
 * First, if --help or -h stands before any "--", print the usage and return
 * OPTS_HELP.  Then set each option whose environment variable is set and
 * not empty, in table order, then each option of the command line, in
 * order (a later one wins).  "--" ends the options; "-" and words that do
 * not start with '-' are positional: they go to pos, at most max_pos of
 * them, their number in *n_pos.  A bad value, an unknown option, a missing
 * value, a value given to a switch or one positional argument too many is
 * bad use.  Values point into argv or the environment. */
enum opts_result opts_parse(const struct opts_cmd *cmd, int argc, char **argv, const char **pos,
                            int max_pos, int *n_pos);

/* Print the one line of bad use or error on stderr: "vexil <cmd>: <message>". */
void opts_vfail(const char *cmd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
