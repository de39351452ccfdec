/* test_opts.c -- server/opts.c: option forms, switches, "--", bad use,
 * positional limits, --help, numbers and their bounds, the environment and
 * its precedence, custom values. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"
#include "unit.h"

#define USAGE "usage: vexil test [--name V] [--json] [--count N]\n"

/* What a test command sets; reset by run(). */
static const char *name, *web;
static bool json;
static int count;
static unsigned limit;
static size_t size;
static char custom[16];

/* A custom value: "ok:" and a word of at most 15 characters. */
static int custom_parse(const char *v, void *out)
{
    if (strncmp(v, "ok:", 3) != 0 || strlen(v + 3) >= sizeof custom)
        return -1;
    strcpy(out, v + 3);
    return 0;
}

static const struct opts_opt test_opts[] = {
    OPTS_STRING("name", NULL, name),
    OPTS_STRING("web", "VX_TEST_WEB", web),
    OPTS_SWITCH("json", json),
    OPTS_NUMBER("count", "VX_TEST_COUNT", count, -5, 100),
    OPTS_NUMBER("limit", NULL, limit, 16, 4000000000),
    OPTS_NUMBER("size", NULL, size, 0, INT64_C(1) << 40),
    OPTS_CUSTOM("custom", NULL, custom_parse, custom, "ok:WORD"),
    OPTS_END,
};
static const struct opts_cmd test_cmd = {"test", USAGE, test_opts};

/* What one call printed and returned. */
struct outcome {
    enum opts_result r;
    const char *pos[4];
    int n_pos;
    char out[256], err[256];
};

/* Read what fd 1 or 2 received into buf, from the temporary file it was
 * sent to, and put the descriptor back. */
static void take(int fd, int saved, FILE *tmp, char *buf, size_t size_buf)
{
    size_t n;

    fflush(fd == 1 ? stdout : stderr);
    dup2(saved, fd);
    close(saved);
    rewind(tmp);
    n = fread(buf, 1, size_buf - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
}

/* Run opts_parse on a NULL-terminated argv, with up to max_pos positional
 * arguments, capturing stdout and stderr.  The variables start from their
 * defaults. */
static struct outcome run(int max_pos, const char *const *args)
{
    struct outcome o = {0};
    char *argv[16];
    int argc = 0;

    while (args[argc] != NULL) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    name = web = NULL;
    json = false;
    count = 7;
    limit = 20;
    size = 0;
    strcpy(custom, "none");

    FILE *out = tmpfile(), *err = tmpfile();
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(err);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(err), 2);
    o.r = opts_parse(&test_cmd, argc, argv, o.pos, max_pos, &o.n_pos);
    take(1, saved_out, out, o.out, sizeof o.out);
    take(2, saved_err, err, o.err, sizeof o.err);
    return o;
}

#define RUN(max_pos, ...) run((max_pos), (const char *const[]){__VA_ARGS__, NULL})

/* Bad use: OPTS_BAD, nothing on stdout, exactly the one line want on stderr. */
static void assert_bad(const struct outcome *o, const char *want)
{
    ck_assert_int_eq(o->r, OPTS_BAD);
    ck_assert_str_eq(o->out, "");
    ck_assert_str_eq(o->err, want);
}

START_TEST(test_value_forms)
{
    struct outcome o = RUN(0, "--name", "a b", "--web=/srv/w");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(name, "a b");
    ck_assert_str_eq(web, "/srv/w");
    ck_assert_str_eq(o.err, "");
    ck_assert_str_eq(o.out, "");

    o = RUN(0, "--name=", "--web", "-x");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(name, "");
    ck_assert_str_eq(web, "-x"); /* the value of an option may start with '-' */

    o = RUN(0, "--name=a=b", "--name", "last");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(name, "last"); /* a later one wins */
}
END_TEST

START_TEST(test_switches)
{
    struct outcome o = RUN(0, "--name", "x");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert(!json);
    o = RUN(0, "--json");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert(json);
    ck_assert_ptr_null(name);
}
END_TEST

START_TEST(test_double_dash_ends_options)
{
    struct outcome o = RUN(3, "--name", "n", "--", "--json", "-", "--help");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert(!json);
    ck_assert_str_eq(o.out, ""); /* --help after "--" is an argument */
    ck_assert_int_eq(o.n_pos, 3);
    ck_assert_str_eq(o.pos[0], "--json");
    ck_assert_str_eq(o.pos[1], "-");
    ck_assert_str_eq(o.pos[2], "--help");
}
END_TEST

START_TEST(test_bad_use)
{
    static const struct {
        const char *args[4]; /* NULL-terminated */
        const char *err;
    } cases[] = {
        /* unknown options: no abbreviations, no short options, case matters */
        {{"--frob"}, "unknown option '--frob' (see --help)"},
        {{"--frob=1"}, "unknown option '--frob' (see --help)"},
        {{"-x"}, "unknown option '-x' (see --help)"},
        {{"--nam", "x"}, "unknown option '--nam' (see --help)"},
        {{"--NAME", "x"}, "unknown option '--NAME' (see --help)"},
        /* a missing value */
        {{"--count", "1", "--name"}, "option '--name' needs a value"},
        {{"--count"}, "option '--count' needs a value"},
        /* a value on a switch */
        {{"--json=yes"}, "option '--json' takes no value"},
        {{"--json="}, "option '--json' takes no value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        struct outcome o = run(0, cases[i].args);
        snprintf(want, sizeof want, "vexil test: %s\n", cases[i].err);
        assert_bad(&o, want);
        ck_assert(!json);
    }
}
END_TEST

START_TEST(test_positional_limits)
{
    struct outcome o = RUN(0, "extra");
    assert_bad(&o, "vexil test: unexpected argument 'extra' (see --help)\n");
    ck_assert_int_eq(o.n_pos, 0);

    o = RUN(1, "id", "--json");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_int_eq(o.n_pos, 1);
    ck_assert_str_eq(o.pos[0], "id");
    ck_assert(json);

    o = RUN(1, "a", "b");
    assert_bad(&o, "vexil test: unexpected argument 'b' (see --help)\n");
    o = RUN(0, "-");
    assert_bad(&o, "vexil test: unexpected argument '-' (see --help)\n");
    o = RUN(0, "--", "--json");
    assert_bad(&o, "vexil test: unexpected argument '--json' (see --help)\n");
}
END_TEST

START_TEST(test_help)
{
    /* Anywhere before "--", even after bad use or with a bad environment. */
    const char *const *cases[] = {
        (const char *const[]){"--help", NULL},
        (const char *const[]){"-h", NULL},
        (const char *const[]){"--frob", "--count", "x", "--help", NULL},
        (const char *const[]){"extra", "-h", "--", "x", NULL},
    };
    setenv("VX_TEST_COUNT", "not a number", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct outcome o = run(0, cases[i]);
        ck_assert_int_eq(o.r, OPTS_HELP);
        ck_assert_str_eq(o.out, USAGE);
        ck_assert_str_eq(o.err, "");
    }
    unsetenv("VX_TEST_COUNT");
}
END_TEST

START_TEST(test_numbers)
{
    struct outcome o = RUN(0, "--count", "-5", "--limit=4000000000", "--size", "1099511627776");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_int_eq(count, -5);
    ck_assert_uint_eq(limit, 4000000000u);
    ck_assert_uint_eq(size, (size_t)1 << 40);

    o = RUN(0, "--count", "100");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_int_eq(count, 100);

    static const char *bad[] = {"101", "-6", "abc", "",     "1.5",
                                " 1",  "+1", "1x",  "0x10", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        o = RUN(0, "--count", bad[i]);
        snprintf(want, sizeof want,
                 "vexil test: --count wants an integer from -5 to 100, got '%s'\n", bad[i]);
        assert_bad(&o, want);
        ck_assert_int_eq(count, 7); /* untouched */
    }
    o = RUN(0, "--limit", "15");
    assert_bad(&o, "vexil test: --limit wants an integer from 16 to 4000000000, got '15'\n");
    ck_assert_uint_eq(limit, 20);
}
END_TEST

START_TEST(test_environment)
{
    struct outcome o;

    setenv("VX_TEST_WEB", "/from/env", 1);
    setenv("VX_TEST_COUNT", "42", 1);
    o = RUN(0, "--json");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(web, "/from/env"); /* environment over defaults */
    ck_assert_int_eq(count, 42);

    o = RUN(0, "--web", "/from/argv", "--count=3");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(web, "/from/argv"); /* command line over environment */
    ck_assert_int_eq(count, 3);

    setenv("VX_TEST_WEB", "", 1); /* empty: not set */
    setenv("VX_TEST_COUNT", "", 1);
    o = RUN(0, "--json");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_ptr_null(web);
    ck_assert_int_eq(count, 7);

    /* A bad value in the environment is bad use, even when the command
     * line sets the option too; the message names the variable. */
    setenv("VX_TEST_COUNT", "1000", 1);
    o = RUN(0, "--count", "1");
    assert_bad(&o, "vexil test: VX_TEST_COUNT wants an integer from -5 to 100, got '1000'\n");
    unsetenv("VX_TEST_WEB");
    unsetenv("VX_TEST_COUNT");
}
END_TEST

START_TEST(test_custom)
{
    struct outcome o = RUN(0, "--custom", "ok:fine");
    ck_assert_int_eq(o.r, OPTS_OK);
    ck_assert_str_eq(custom, "fine");
    o = RUN(0, "--custom=nope");
    assert_bad(&o, "vexil test: --custom wants ok:WORD, got 'nope'\n");
    ck_assert_str_eq(custom, "none");
}
END_TEST

START_TEST(test_repeated_calls)
{
    /* No state kept between calls (getopt_long would keep optind). */
    for (int i = 0; i < 3; i++) {
        struct outcome o = RUN(1, "pos", "--name", "n", "--json");
        ck_assert_int_eq(o.r, OPTS_OK);
        ck_assert_int_eq(o.n_pos, 1);
        ck_assert_str_eq(name, "n");
        ck_assert(json);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("opts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_value_forms);
    tcase_add_test(tc, test_switches);
    tcase_add_test(tc, test_double_dash_ends_options);
    tcase_add_test(tc, test_bad_use);
    tcase_add_test(tc, test_positional_limits);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_environment);
    tcase_add_test(tc, test_custom);
    tcase_add_test(tc, test_repeated_calls);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
