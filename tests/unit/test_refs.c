/* test_refs.c -- server/refs.c: the set of names, what counts as a
 * reference in a buffer (quotes, escapes, prefixes, lines, UTF-8, CR LF),
 * the fast scan against a naive one on random text, and the walk over
 * files (order, skipped directories, binary and huge files, link loops,
 * threads). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flag.h"
#include "refs.h"
#include "unit.h"

/* A set of the NULL-terminated names, tag = index. */
static struct refs_names *names_of(const char *const *names)
{
    struct refs_names *set = refs_names_new();
    ck_assert_ptr_nonnull(set);
    for (int i = 0; names[i] != NULL; i++)
        ck_assert_int_eq(refs_names_add(set, names[i], strlen(names[i]), i), 1);
    return set;
}

/* The hits of text as "line:name" joined by spaces. */
static char *scan_text(const struct refs_names *set, const char *text, size_t len)
{
    struct refs_hits hits = {0};
    static char out[8192];
    size_t used = 0;

    ck_assert_int_eq(refs_scan_buffer(set, text, len, &hits), 0);
    out[0] = '\0';
    for (size_t i = 0; i < hits.n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%zu:%s", i > 0 ? " " : "",
                                 hits.v[i].line, refs_names_at(set, hits.v[i].name, NULL));
    free(hits.v);
    return out;
}

#define SCAN(set, text) scan_text((set), (text), sizeof(text) - 1)

START_TEST(test_names_set)
{
    struct refs_names *set = refs_names_new();
    int tag = -1;

    ck_assert_int_eq(refs_names_add(set, "checkout", 8, 7), 1);
    ck_assert_int_eq(refs_names_add(set, "checkout", 8, 9), 0);
    ck_assert_int_eq(refs_names_add(set, "check", 5, 3), 1);
    ck_assert_uint_eq(refs_names_count(set), 2);
    ck_assert_int_eq(refs_names_find(set, "checkout", 8), 0);
    ck_assert_int_eq(refs_names_find(set, "check", 5), 1);
    ck_assert_int_eq(refs_names_find(set, "checkou", 7), -1);
    ck_assert_str_eq(refs_names_at(set, 0, &tag), "checkout");
    ck_assert_int_eq(tag, 7); /* the first add wins */
    /* 10 000 names: the table grows, every name stays findable. */
    char name[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof name, "flag_%05d", i);
        ck_assert_int_eq(refs_names_add(set, name, (size_t)n, i), 1);
    }
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(name, sizeof name, "flag_%05d", i);
        ck_assert_int_eq(refs_names_find(set, name, (size_t)n), i + 2);
    }
    ck_assert_int_eq(refs_names_find(set, "flag_10000", 10), -1);
    refs_names_free(set);
}
END_TEST

START_TEST(test_delimiters)
{
    static const char *const names[] = {"checkout", NULL};
    struct refs_names *set = names_of(names);

    ck_assert_str_eq(SCAN(set, "a(\"checkout\")\nb('checkout')\nc(`checkout`)\n"),
                     "1:checkout 2:checkout 3:checkout");
    ck_assert_str_eq(SCAN(set, "a(\"checkout')\nb('checkout`)\nc(`checkout\")\n"), "");
    ck_assert_str_eq(SCAN(set, "checkout\n checkout = 1;\n \"checkout \" \" checkout\""), "");
    ck_assert_str_eq(SCAN(set, "\"checkout.v2\" \"checkout-old\" \"new.checkout\" \"Checkout\""),
                     "");
    /* The whole text and nothing else: at the very start and end too. */
    ck_assert_str_eq(SCAN(set, "\"checkout\""), "1:checkout");
    ck_assert_str_eq(SCAN(set, "'checkout"), "");
    ck_assert_str_eq(SCAN(set, "checkout'"), "");
    /* Prefixes (Python f/b/r strings) and what follows do not matter. */
    ck_assert_str_eq(SCAN(set, "x = f\"checkout\".upper()"), "1:checkout");
    refs_names_free(set);
}
END_TEST

START_TEST(test_prefix_names)
{
    static const char *const names[] = {"check", "checkout", "checkout.v2", NULL};
    struct refs_names *set = names_of(names);

    ck_assert_str_eq(SCAN(set, "\"check\"\n\"checkout\"\n\"checkout.v2\"\n\"checkout.v\"\n"),
                     "1:check 2:checkout 3:checkout.v2");
    refs_names_free(set);
}
END_TEST

START_TEST(test_escaped_quotes)
{
    static const char *const names[] = {"a", "b", "checkout", NULL};
    struct refs_names *set = names_of(names);

    /* An escaped quote neither ends a literal nor starts one. */
    ck_assert_str_eq(SCAN(set, "s = \"a\\\"b\""), "");
    ck_assert_str_eq(SCAN(set, "s = \"say \\\"checkout\\\" now\""), "");
    ck_assert_str_eq(SCAN(set, "s = 'it\\'checkout'"), "");
    ck_assert_str_eq(SCAN(set, "s = \"\\\\\\\"checkout\""), ""); /* \\\" : still escaped */
    /* An escaped backslash does not escape the quote after it. */
    ck_assert_str_eq(SCAN(set, "s = \"\\\\\" + \"checkout\""), "1:checkout");
    ck_assert_str_eq(SCAN(set, "c = '\\'' + 'checkout'"), "1:checkout");
    /* An apostrophe in prose does not hide a literal after it. */
    ck_assert_str_eq(SCAN(set, "// don't remove \"checkout\" yet\n"), "1:checkout");
    /* A name quoted inside another string is found. */
    ck_assert_str_eq(SCAN(set, "q = \"SELECT 1 WHERE f = 'checkout'\""), "1:checkout");
    refs_names_free(set);
}
END_TEST

START_TEST(test_lines)
{
    static const char *const names[] = {"checkout", "search", NULL};
    struct refs_names *set = names_of(names);

    /* A literal never spans lines. */
    ck_assert_str_eq(SCAN(set, "s = \"check\nout\"\nt = \"abc\ncheckout\"\n"), "");
    /* Line numbers, a name twice on a line counted once, blank lines. */
    ck_assert_str_eq(SCAN(set, "\n\n\"checkout\" \"search\" \"checkout\"\n\n\n'search'\n"),
                     "3:checkout 3:search 6:search");
    /* CR LF and a lone CR: lines end at LF. */
    ck_assert_str_eq(SCAN(set, "a\r\n\"checkout\"\r\n\r\n'search'\r\nb\r\"checkout\"\r\n"),
                     "2:checkout 4:search 5:checkout");
    /* Far apart, across many 16-byte blocks and more than 255 of them. */
    char big[64000];
    size_t n = 0;
    for (int line = 1; line <= 2000; line++) {
        const char *l = line == 1500 ? "x(\"checkout\");\n" : "  y = z + 1; // ok\n";
        memcpy(big + n, l, strlen(l));
        n += strlen(l);
    }
    ck_assert_str_eq(scan_text(set, big, n), "1500:checkout");
    refs_names_free(set);
}
END_TEST

START_TEST(test_utf8_around)
{
    static const char *const names[] = {"checkout", "caf", NULL};
    struct refs_names *set = names_of(names);

    ck_assert_str_eq(SCAN(set, "// \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80\n"
                               "label = \"\xc3\xa9\" + \"checkout\" + '\xe2\x80\x99'\n"
                               "\"caf\xc3\xa9\" \"chec\xc3\xa9kout\" \xe2\x80\x9c"
                               "checkout\xe2\x80\x9d\n"
                               "\xe6\x97\xa5\xe6\x9c\xac 'caf'\n"),
                     "2:checkout 4:caf");
    refs_names_free(set);
}
END_TEST

/* refs' name syntax is flag_name_valid's (server/flag.c), byte by byte. */
START_TEST(test_syntax_agrees_with_flag_names)
{
    for (int c = 1; c < 256; c++) {
        char name[4] = {'x', (char)c, 'y', '\0'}, first[3] = {(char)c, 'y', '\0'};
        char text[8];
        struct refs_names *set = refs_names_new();
        struct refs_hits hits = {0};

        refs_names_add(set, name, 3, 0);
        refs_names_add(set, first, 2, 1);
        snprintf(text, sizeof text, "\"%s\"", name);
        ck_assert_int_eq(refs_scan_buffer(set, text, 5, &hits), 0);
        ck_assert_msg((hits.n == 1) == flag_name_valid(name, 3), "byte 0x%02x inside a name", c);
        hits.n = 0;
        snprintf(text, sizeof text, "'%s'", first);
        ck_assert_int_eq(refs_scan_buffer(set, text, 4, &hits), 0);
        ck_assert_msg((hits.n == 1) == flag_name_valid(first, 2), "byte 0x%02x first", c);
        free(hits.v);
        refs_names_free(set);
    }
}
END_TEST

/* The longest name is found; a literal one byte longer never is. */
START_TEST(test_length_limit)
{
    char longest[FLAG_NAME_MAX + 1], over[FLAG_NAME_MAX + 2], text[256];
    struct refs_hits hits = {0};
    memset(longest, 'a', FLAG_NAME_MAX);
    longest[FLAG_NAME_MAX] = '\0';
    memset(over, 'a', FLAG_NAME_MAX + 1);
    over[FLAG_NAME_MAX + 1] = '\0';
    const char *const names[] = {longest, over, NULL};
    struct refs_names *set = names_of(names);

    snprintf(text, sizeof text, "\"%s\"\n\"%s\"\n", over, longest);
    ck_assert_int_eq(refs_scan_buffer(set, text, strlen(text), &hits), 0);
    ck_assert_uint_eq(hits.n, 1);
    ck_assert_uint_eq(hits.v[0].line, 2);
    ck_assert_uint_eq(hits.v[0].name, 0);
    free(hits.v);
    refs_names_free(set);
}
END_TEST

START_TEST(test_empty_set_and_text)
{
    struct refs_names *set = refs_names_new();
    ck_assert_str_eq(SCAN(set, "\"anything\""), "");
    refs_names_free(set);
    static const char *const names[] = {"x", NULL};
    set = names_of(names);
    ck_assert_str_eq(scan_text(set, "", 0), "");
    ck_assert_str_eq(SCAN(set, "\"\" '' ``"), "");
    refs_names_free(set);
}
END_TEST

/* The rule of refs.h spelt out plainly, one byte at a time: the reference
 * for the fast scan. */
static size_t naive_scan(const char *const *names, const char *t, size_t len, size_t *lines,
                         size_t *ids, size_t max)
{
    size_t n = 0, line = 1, first = 0;

    for (size_t q = 0; q < len; q++) {
        if (t[q] == '\n') {
            line++;
            first = n;
            continue;
        }
        if (t[q] != '"' && t[q] != '\'' && t[q] != '`')
            continue;
        size_t bs = 0;
        while (bs < q && t[q - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 1)
            continue;
        size_t j = q + 1;
        while (j < len && j - q - 1 < FLAG_NAME_MAX &&
               (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", t[j]) !=
                    NULL &&
                t[j] != '\0'))
            j++;
        if (j >= len || t[j] != t[q] || j == q + 1 || !flag_name_valid(t + q + 1, j - q - 1))
            continue;
        for (size_t k = 0; names[k] != NULL; k++) {
            if (strlen(names[k]) != j - q - 1 || memcmp(names[k], t + q + 1, j - q - 1) != 0)
                continue;
            bool dup = false;
            for (size_t d = first; d < n; d++)
                dup = dup || ids[d] == k;
            if (!dup && n < max) {
                lines[n] = line;
                ids[n++] = k;
            }
        }
    }
    return n;
}

START_TEST(test_fast_scan_matches_naive)
{
    static const char *const names[] = {"a", "b", "ab", "a.b", "b-a", "a_b_a", "0", NULL};
    static const char alphabet[] = "\"\"\"''``\\\\\n\n\r aab.-_0x";
    struct refs_names *set = names_of(names);
    char text[600];
    size_t lines[600], ids[600];
    unsigned seed = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof text);
        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rand_r(&seed) % (int)(sizeof alphabet - 1)];
        struct refs_hits hits = {0};
        size_t want = naive_scan(names, text, len, lines, ids, 600);
        ck_assert_int_eq(refs_scan_buffer(set, text, len, &hits), 0);
        ck_assert_msg(hits.n == want, "round %d: %zu hits, want %zu in %.*s", round, hits.n, want,
                      (int)len, text);
        for (size_t i = 0; i < want; i++) {
            ck_assert_uint_eq(hits.v[i].line, lines[i]);
            ck_assert_uint_eq(hits.v[i].name, ids[i]);
        }
        free(hits.v);
    }
    refs_names_free(set);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Files                                                                */
/* ------------------------------------------------------------------ */

static char root[64];

static void put(const char *rel, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

#define PUT(rel, text) put((rel), (text), sizeof(text) - 1)

static void dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void link_to(const char *target, const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    ck_assert_int_eq(symlink(target, path), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup_tree(void)
{
    snprintf(root, sizeof root, "/tmp/vexil-test-refs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown_tree(void)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Scan root/rels... (root itself when rels is empty) with names; the
 * result as "path:line:name" lines relative to root, and files scanned. */
static char *scan_paths(const char *const *names, const char *const *rels, size_t max,
                        unsigned threads, size_t *scanned)
{
    static char out[16384];
    char paths[8][512];
    const char *p[8];
    size_t n = 0, used = 0;
    struct refs_names *set = names_of(names);
    struct refs_report rep;
    struct vx_error err;
    struct refs_config cfg = {max, threads};

    for (; rels != NULL && rels[n] != NULL; n++) {
        snprintf(paths[n], sizeof paths[n], "%s/%s", root, rels[n]);
        p[n] = paths[n];
    }
    if (n == 0)
        p[n++] = root;
    ck_assert_msg(refs_scan_paths(set, p, n, &cfg, &rep, &err) == 0, "%s", err.message);
    out[0] = '\0';
    for (size_t f = 0; f < rep.n_files; f++)
        for (size_t h = 0; h < rep.files[f].n_hits; h++)
            used += (size_t)snprintf(
                out + used, sizeof out - used, "%s:%zu:%s\n", rep.files[f].path + strlen(root) + 1,
                rep.files[f].hits[h].line, refs_names_at(set, rep.files[f].hits[h].name, NULL));
    *scanned = rep.files_scanned;
    refs_report_free(&rep);
    refs_names_free(set);
    return out;
}

static const char *const FLAGS[] = {"checkout", "search", NULL};

START_TEST(test_walk_order_and_skips)
{
    size_t scanned = 0;

    dir("src");
    dir("src/b");
    dir("src/a");
    dir("node_modules");
    dir(".git");
    dir("build");
    PUT("src/z.js", "f(\"checkout\")\n");
    PUT("src/b/x.py", "\n\nflag('search')\n");
    PUT("src/a/y.go", "x := `checkout`\ny := \"search\"\n");
    PUT("src/a.c", "/* none */\n");
    PUT("node_modules/m.js", "\"checkout\"\n");
    PUT(".git/HEAD", "\"checkout\"\n");
    PUT("build/gen.c", "\"search\"\n");
    PUT("src/dist", "\"search\"\n"); /* a file named like a skipped directory */
    /* Entries sorted bytewise: "a" < "a.c" < "b" < "dist" < "z.js". */
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 0, 1, &scanned),
                     "src/a/y.go:1:checkout\nsrc/a/y.go:2:search\n"
                     "src/b/x.py:3:search\n"
                     "src/dist:1:search\n"
                     "src/z.js:1:checkout\n");
    ck_assert_uint_eq(scanned, 5);
    /* A skipped directory given as a path is read. */
    static const char *const given[] = {"node_modules", "src/z.js", NULL};
    ck_assert_str_eq(scan_paths(FLAGS, given, 0, 1, &scanned),
                     "node_modules/m.js:1:checkout\nsrc/z.js:1:checkout\n");
    ck_assert_uint_eq(scanned, 2);
}
END_TEST

START_TEST(test_binary_and_huge_files)
{
    size_t scanned = 0;
    static char bin[REFS_BINARY_PROBE + 100];

    PUT("text.txt", "\"checkout\"\n");
    PUT("nul.bin", "\"checkout\"\n\0\x01\x02");
    /* A NUL past the first 8 KiB: text. */
    memset(bin, ' ', sizeof bin);
    memcpy(bin, "\"search\"", 8);
    bin[REFS_BINARY_PROBE + 10] = '\0';
    put("late-nul.txt", bin, sizeof bin);
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 0, 1, &scanned),
                     "late-nul.txt:1:search\ntext.txt:1:checkout\n");
    ck_assert_uint_eq(scanned, 2);
    /* Larger than the limit: skipped; as large as the limit: read. */
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 11, 1, &scanned), "text.txt:1:checkout\n");
    ck_assert_uint_eq(scanned, 1);
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 10, 1, &scanned), "");
    ck_assert_uint_eq(scanned, 0);
}
END_TEST

START_TEST(test_links)
{
    size_t scanned = 0;

    dir("a");
    dir("a/sub");
    PUT("a/sub/f.js", "\"checkout\"\n");
    link_to("..", "a/sub/up");        /* a loop: a/sub/up -> a */
    link_to("sub/f.js", "a/same.js"); /* the same file twice */
    link_to("nowhere", "a/dangling"); /* leads nowhere */
    link_to("self", "a/self");        /* a link to itself */
    link_to("a", "loop");             /* root/loop -> a */
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 0, 1, &scanned), "a/same.js:1:checkout\n");
    ck_assert_uint_eq(scanned, 1);
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/a/pipe", root);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 0, 2, &scanned), "a/same.js:1:checkout\n");
}
END_TEST

START_TEST(test_threads_same_result)
{
    size_t one = 0, four = 0;
    char name[64], text[128];
    static char want[16384];

    dir("t");
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "t/f%03d.txt", i);
        int n = snprintf(text, sizeof text, "%s\n\"%s\"\n", i % 3 ? "x" : "\"checkout\"",
                         i % 2 ? "search" : "other");
        put(name, text, (size_t)n);
    }
    strcpy(want, scan_paths(FLAGS, NULL, 0, 1, &one));
    ck_assert_str_eq(scan_paths(FLAGS, NULL, 0, 4, &four), want);
    ck_assert_uint_eq(one, 200);
    ck_assert_uint_eq(four, 200);
    ck_assert_ptr_nonnull(strstr(want, "t/f000.txt:1:checkout\n"));
    ck_assert_ptr_nonnull(strstr(want, "t/f199.txt:2:search\n"));
}
END_TEST

START_TEST(test_missing_path)
{
    struct refs_names *set = names_of(FLAGS);
    struct refs_report rep;
    struct vx_error err;
    char path[512];
    const char *p[1] = {path};

    snprintf(path, sizeof path, "%s/no-such\x1b[31m", root);
    ck_assert_int_eq(refs_scan_paths(set, p, 1, NULL, &rep, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "No such file"));
    ck_assert_ptr_nonnull(strstr(err.message, "no-such\\x1b[31m")); /* shown escaped */
    ck_assert_uint_eq(rep.n_files, 0);
    refs_names_free(set);
}
END_TEST

START_TEST(test_unreadable_directory)
{
    struct refs_report rep;
    struct vx_error err;
    const char *p[1] = {root};

    if (geteuid() == 0)
        return; /* root reads anything */
    struct refs_names *set = names_of(FLAGS);
    dir("locked");
    char path[512];
    snprintf(path, sizeof path, "%s/locked", root);
    chmod(path, 0);
    ck_assert_int_eq(refs_scan_paths(set, p, 1, NULL, &rep, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "locked"));
    chmod(path, 0755);
    refs_names_free(set);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("refs");
    TCase *tc = tcase_create("buffer");
    tcase_add_test(tc, test_names_set);
    tcase_add_test(tc, test_delimiters);
    tcase_add_test(tc, test_prefix_names);
    tcase_add_test(tc, test_escaped_quotes);
    tcase_add_test(tc, test_lines);
    tcase_add_test(tc, test_utf8_around);
    tcase_add_test(tc, test_syntax_agrees_with_flag_names);
    tcase_add_test(tc, test_length_limit);
    tcase_add_test(tc, test_empty_set_and_text);
    tcase_add_test(tc, test_fast_scan_matches_naive);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup_tree, teardown_tree);
    tcase_add_test(files, test_walk_order_and_skips);
    tcase_add_test(files, test_binary_and_huge_files);
    tcase_add_test(files, test_links);
    tcase_add_test(files, test_threads_same_result);
    tcase_add_test(files, test_missing_path);
    tcase_add_test(files, test_unreadable_directory);
    suite_add_tcase(s, files);
    return unit_run(s);
}
