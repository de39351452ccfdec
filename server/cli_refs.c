/* cli_refs.c -- `vexil refs`: which lines of the code still name a flag,
 * and whether that flag is live (ok), due for removal (stale) or deleted
 * (unknown); and the references that `vexil stale --refs` adds to its
 * report.
 *
 * The names come from one of three places, chosen on the command line:
 *   - the database (the default, as for every command): the live flags,
 *     judged stale by their state in the default environment as `vexil
 *     stale` judges them, and the names in the flags' history that no flag
 *     has now -- deleted, so a reference to one is `unknown`;
 *   - a running server (--server URL, an admin token): GET /api/stale for
 *     the stale flags and GET /api/flags for the rest.  The API lists no
 *     deleted names, so through a server no reference is `unknown`
 *     (docs/decisions.md, "vexil refs"); a note on stderr says so when
 *     --fail-on unknown asks for them;
 *   - a file (--names FILE): live names, none stale, for use with neither
 *     (offline, the benchmark).
 * Any other string literal is not reported, however much it looks like a
 * flag name: most such literals are not flags, and a list of them would be
 * noise.
 *
 * The scan is refs.c's (one pass per file with every name at once); this
 * file gathers the names, runs it and prints, with the conventions of
 * cli.c: results on stdout with text from the data made visible, one line
 * on stderr for bad use or an error, exit 2. */
#include "cli.h"
#include "cli_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flag.h"
#include "refs.h"
#include "timeutil.h"

static const char USAGE_REFS[] =
    "Usage: vexil refs [--json] [--fail-on unknown|stale|none] [--days N] [--rolled-out-days N]\n"
    "                  [--database URL | --server URL [--token T] | --names FILE]\n"
    "                  [--max-file-size BYTES] [--threads N] PATH...\n"
    "\n"
    "Find where code still uses a flag: every flag name written as a whole string\n"
    "literal (\"name\", 'name' or `name`) in the files under each PATH.  Prints\n"
    "PATH:LINE: NAME for each, marked (stale: REASONS) when the flag is due for\n"
    "removal and (unknown: not a flag) when it was deleted.  Exits 1 when a\n"
    "reference fails --fail-on, 0 when none does, 2 on error.\n"
    "\n"
    "Where the names come from (one of):\n"
    "  --database URL  the database (default: $VEXIL_DATABASE_URL, else libpq's\n"
    "                  defaults): live flags, and deleted ones from their history\n"
    "  --server URL    a running vexil (http:// or https://) with an admin token:\n"
    "                  live flags only, so no reference is unknown\n"
    "  --token T       the admin token for --server (default: $VEXIL_TOKEN)\n"
    "  --names FILE    flag names, one per line ('#' starts a comment line): all\n"
    "                  live, none stale\n"
    "\n"
    "  --fail-on WHAT  unknown (default): exit 1 when code names a deleted flag;\n"
    "                  stale: also when it names a stale one; none: never\n"
    "  --days N             stale when older than N days (default 30)\n"
    "  --rolled-out-days N  stale when rolled out to 100 % for more than N days\n"
    "                       (default 14)\n"
    "  --json          print {\"references\":[{path,line,name,flag}],\"files_scanned\":N}\n"
    "  --max-file-size BYTES  skip larger files (default 10485760)\n"
    "  --threads N     files read at once (default: the CPUs, at most 8)\n"
    "  --help          show this help\n"
    "\n"
    "Not read: directories named .git, .hg, .svn, node_modules, __pycache__,\n"
    "build, builddir, dist, out or target (unless given as PATH), binary files\n"
    "(a NUL byte in the first 8 KiB), larger files, and anything but regular\n"
    "files and directories.  Links are followed; each file is read once.\n";

enum refs_mark { MARK_OK, MARK_STALE, MARK_UNKNOWN };
static const char *const MARK_NAME[] = {"ok", "stale", "unknown"};

/* --fail-on: the least mark that fails (MARK_UNKNOWN + 1: none does). */
static int refs_parse_fail_on(const char *v, void *out)
{
    int *least = out;

    if (strcmp(v, "unknown") == 0)
        *least = MARK_UNKNOWN;
    else if (strcmp(v, "stale") == 0)
        *least = MARK_STALE;
    else if (strcmp(v, "none") == 0)
        *least = MARK_UNKNOWN + 1;
    else
        return -1;
    return 0;
}

int cli_paths_add(const char *value, void *out)
{
    struct cli_paths *p = out;

    if (value[0] == '\0' || p->n == CLI_PATHS_MAX)
        return -1;
    p->v[p->n++] = value;
    return 0;
}

/* Files read at once by default: the CPUs, 1 to 8. */
static unsigned refs_threads_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
}

/* ------------------------------------------------------------------ */
/* The names known                                                      */
/* ------------------------------------------------------------------ */

/* The names looked for (tag: enum refs_mark) and the reasons of the stale
 * ones. */
struct refs_known {
    struct refs_names *set;
    json_t *reasons; /* name -> ["older_than_30_days", ...] */
};

/* Add name with mark and, for a stale name, its reasons (taken; may be
 * NULL).  A name already there keeps its mark.  0, or CLI_EXIT_ERROR
 * after printing the error line. */
static int refs_known_add(const char *cmd, struct refs_known *k, const char *name,
                          enum refs_mark mark, json_t *reasons)
{
    int added = refs_names_add(k->set, name, strlen(name), (int)mark);

    if (added > 0 && reasons != NULL)
        return json_object_set_new(k->reasons, name, reasons) == 0 ? 0
                                                                   : cli_fail(cmd, "out of memory");
    json_decref(reasons);
    return added < 0 ? cli_fail(cmd, "out of memory") : 0;
}

/* --names FILE: one name a line; blank lines and lines starting with '#'
 * are skipped, spaces around a name ignored. */
static int refs_known_from_file(const char *cmd, const char *file, struct refs_known *k)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0, no = 0;
    ssize_t len;
    int rc = 0;

    if (f == NULL)
        return cli_fail(cmd, "cannot read %s: %s", file, strerror(errno));
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e = line + len;
        no++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        if (s == e || *s == '#')
            continue;
        if (!flag_name_valid(s, (size_t)(e - s))) {
            struct buf shown = {0};
            int built = buf_add_visible(&shown, s, (size_t)(e - s) < 100 ? (size_t)(e - s) : 100);
            rc = cli_fail(cmd, "%s:%zu: not a flag name: %s", file, no,
                          built == 0 && shown.p != NULL ? shown.p : "?");
            buf_free(&shown);
            break;
        }
        *e = '\0';
        rc = refs_known_add(cmd, k, s, MARK_OK, NULL);
    }
    if (rc == 0 && ferror(f))
        rc = cli_fail(cmd, "cannot read %s", file);
    free(line);
    fclose(f);
    return rc;
}

/* The database: live flags (stale or not), then deleted names. */
static int refs_known_from_database(const char *cmd, const char *database, int days,
                                    int rolled_out_days, struct refs_known *k)
{
    struct vx_flag *flags = NULL;
    char **deleted = NULL;
    size_t n = 0, n_deleted = 0;
    enum store_status st;
    PGconn *c = cli_connect(cmd, database);
    int64_t now;
    int rc = 0;

    if (c == NULL)
        return CLI_EXIT_ERROR;
    st = store_flags_all(c, &flags, &n);
    if (st == STORE_OK)
        st = store_flags_deleted(c, &deleted, &n_deleted);
    if (st != STORE_OK)
        rc = cli_store_fail(cmd, c, st, "cannot read the flags");
    PQfinish(c);

    now = time_now_us();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *reasons = flag_stale_reasons(&flags[i], now, days, rolled_out_days);
        if (reasons == NULL)
            rc = cli_fail(cmd, "out of memory");
        else if (json_array_size(reasons) == 0) {
            json_decref(reasons);
            rc = refs_known_add(cmd, k, flags[i].name, MARK_OK, NULL);
        } else
            rc = refs_known_add(cmd, k, flags[i].name, MARK_STALE, reasons);
    }
    for (size_t i = 0; rc == 0 && i < n_deleted; i++)
        rc = refs_known_add(cmd, k, deleted[i], MARK_UNKNOWN, NULL);
    for (size_t i = 0; i < n; i++)
        flag_free(&flags[i]);
    free(flags);
    for (size_t i = 0; i < n_deleted; i++)
        free(deleted[i]);
    free(deleted);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The names known, from a server                                       */
/* ------------------------------------------------------------------ */

#define REFS_HTTP_MAX ((size_t)256 << 20) /* the largest answer read */

struct refs_http {
    CURL *h;
    struct buf body;
    bool too_large;
    char error[CURL_ERROR_SIZE];
};

static size_t refs_http_write(char *p, size_t size, size_t n, void *cls)
{
    struct refs_http *c = cls;
    size_t len = size * n;

    if (len > REFS_HTTP_MAX - c->body.len) {
        c->too_large = true;
        return 0;
    }
    return buf_add(&c->body, p, len) == 0 ? len : 0;
}

/* GET base + path; the answer, a JSON object with a "flags" array, into
 * *out (caller decrefs).  0, or CLI_EXIT_ERROR after printing the error
 * line (which names the path, not the URL: it may hold a password). */
static int refs_http_get(const char *cmd, struct refs_http *c, const char *base, size_t base_len,
                         const char *path, json_t **out)
{
    struct buf url = {0};
    json_error_t jerr;
    long status = 0;
    CURLcode rc;

    *out = NULL;
    c->body.len = 0;
    c->too_large = false;
    c->error[0] = '\0';
    if ((buf_add(&url, base, base_len) | buf_adds(&url, path)) != 0) {
        buf_free(&url);
        return cli_fail(cmd, "out of memory");
    }
    curl_easy_setopt(c->h, CURLOPT_URL, url.p);
    rc = curl_easy_perform(c->h);
    buf_free(&url);
    if (rc != CURLE_OK && c->too_large)
        return cli_fail(cmd, "GET %s: the answer is larger than %zu bytes", path, REFS_HTTP_MAX);
    if (rc != CURLE_OK)
        return cli_fail(cmd, "GET %s: %s", path,
                        c->error[0] != '\0' ? c->error : curl_easy_strerror(rc));
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    *out = json_loadb(c->body.p != NULL ? c->body.p : "", c->body.len, 0, &jerr);
    if (status != 200) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(*out, "error"), "message"));
        struct buf shown = {0};
        int built = msg != NULL ? buf_add_visible(&shown, msg, strlen(msg)) : -1;
        cli_fail(cmd, "GET %s: HTTP %ld%s%s", path, status, built == 0 ? ": " : "",
                 built == 0 && shown.p != NULL ? shown.p : "");
        buf_free(&shown);
        json_decref(*out);
        *out = NULL;
        return CLI_EXIT_ERROR;
    }
    if (!json_is_array(json_object_get(*out, "flags"))) {
        json_decref(*out);
        *out = NULL;
        return cli_fail(cmd, "GET %s: the answer is not a list of flags", path);
    }
    return 0;
}

/* Add the names of answer's "flags" with mark (MARK_STALE: with their
 * "stale" reasons). */
static int refs_known_from_answer(const char *cmd, const json_t *answer, enum refs_mark mark,
                                  struct refs_known *k)
{
    const json_t *f;
    size_t i;

    json_array_foreach(json_object_get(answer, "flags"), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *reasons = mark == MARK_STALE ? json_object_get(f, "stale") : NULL;
        if (name == NULL || !flag_name_valid(name, strlen(name)))
            continue;
        if (refs_known_add(cmd, k, name, mark, json_incref(reasons)) != 0)
            return CLI_EXIT_ERROR;
    }
    return 0;
}

/* A token as a header may carry it: 1 to 512 printable ASCII characters
 * without spaces. */
static bool refs_token_ok(const char *t)
{
    size_t n = strlen(t);

    for (size_t i = 0; i < n; i++)
        if (t[i] <= ' ' || t[i] > '~')
            return false;
    return n >= 1 && n <= 512;
}

/* --server: the stale flags, then every live flag. */
static int refs_known_from_server(const char *cmd, const char *server, const char *token, int days,
                                  int rolled_out_days, struct refs_known *k)
{
    struct refs_http c = {0};
    struct curl_slist *headers = NULL, *more;
    char auth[600], stale_path[96];
    size_t base_len = strlen(server);
    json_t *answer = NULL;
    int rc;

    while (base_len > 0 && server[base_len - 1] == '/')
        base_len--;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(stale_path, sizeof stale_path, "/api/stale?days=%d&rolled_out_days=%d", days,
             rolled_out_days);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return cli_fail(cmd, "cannot start libcurl");
    c.h = curl_easy_init();
    headers = curl_slist_append(NULL, auth);
    more = headers != NULL ? curl_slist_append(headers, "Accept: application/json") : NULL;
    explicit_bzero(auth, sizeof auth);
    if (c.h == NULL || more == NULL) {
        rc = cli_fail(cmd, "out of memory");
    } else {
        headers = more;
        curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, refs_http_write);
        curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &c);
        curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, c.error);
        curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(c.h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(c.h, CURLOPT_USERAGENT, "vexil-refs/" VEXIL_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(c.h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        rc = refs_http_get(cmd, &c, server, base_len, stale_path, &answer);
        if (rc == 0)
            rc = refs_known_from_answer(cmd, answer, MARK_STALE, k);
        json_decref(answer);
        answer = NULL;
        if (rc == 0)
            rc = refs_http_get(cmd, &c, server, base_len, "/api/flags", &answer);
        if (rc == 0)
            rc = refs_known_from_answer(cmd, answer, MARK_OK, k);
        json_decref(answer);
    }
    curl_slist_free_all(headers);
    if (c.h != NULL)
        curl_easy_cleanup(c.h);
    buf_free(&c.body);
    curl_global_cleanup();
    return rc;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */
/* ------------------------------------------------------------------ */

/* A path as a JSON string: a byte that is not UTF-8 becomes '?'.  New
 * reference; NULL on OOM. */
static json_t *refs_path_json(const char *path)
{
    char *copy;
    json_t *s;

    if (utf8_valid(path, strlen(path)))
        return json_string(path);
    copy = strdup(path);
    if (copy == NULL)
        return NULL;
    utf8_sanitize(copy);
    s = json_string(copy);
    free(copy);
    return s;
}

/* path:line: name (marks), one a line. */
static int refs_print_text(const char *cmd, const struct refs_known *k,
                           const struct refs_report *rep)
{
    struct buf out = {0};
    int built = 0;

    for (size_t f = 0; f < rep->n_files; f++) {
        for (size_t h = 0; h < rep->files[f].n_hits; h++) {
            int mark = MARK_OK;
            const char *name = refs_names_at(k->set, rep->files[f].hits[h].name, &mark);
            built |= cli_text(&out, rep->files[f].path) |
                     buf_addf(&out, ":%zu: %s", rep->files[f].hits[h].line, name);
            if (mark == MARK_STALE) {
                const json_t *reasons = json_object_get(k->reasons, name), *r;
                size_t i;
                built |= buf_adds(&out, " (stale: ");
                json_array_foreach(reasons, i, r)
                {
                    built |=
                        buf_adds(&out, i > 0 ? ", " : "") | cli_text(&out, json_string_value(r));
                }
                built |= buf_adds(&out, ")");
            } else if (mark == MARK_UNKNOWN) {
                built |= buf_adds(&out, " (unknown: not a flag)");
            }
            built |= buf_add(&out, "\n", 1);
        }
    }
    return cli_write(cmd, &out, built) == 0 ? 0 : CLI_EXIT_ERROR;
}

/* {"references":[{path, line, name, flag}], "files_scanned": N} */
static int refs_print_json(const char *cmd, const struct refs_known *k,
                           const struct refs_report *rep)
{
    json_t *root = json_object(), *list = json_array();
    int rc = root != NULL && list != NULL ? 0 : -1;

    for (size_t f = 0; rc == 0 && f < rep->n_files; f++) {
        for (size_t h = 0; rc == 0 && h < rep->files[f].n_hits; h++) {
            int mark = MARK_OK;
            const char *name = refs_names_at(k->set, rep->files[f].hits[h].name, &mark);
            json_t *o = json_pack(
                "{s:o?, s:I, s:s, s:s}", "path", refs_path_json(rep->files[f].path), "line",
                (json_int_t)rep->files[f].hits[h].line, "name", name, "flag", MARK_NAME[mark]);
            if (o != NULL && json_object_get(o, "path") == NULL) {
                json_decref(o);
                o = NULL;
            }
            if (o == NULL || json_array_append_new(list, o) != 0)
                rc = -1;
        }
    }
    if (rc == 0 && (json_object_set(root, "references", list) != 0 ||
                    json_object_set_new(root, "files_scanned",
                                        json_integer((json_int_t)rep->files_scanned)) != 0))
        rc = -1;
    json_decref(list);
    if (rc != 0) {
        json_decref(root);
        return cli_fail(cmd, "out of memory");
    }
    rc = cli_print_json(cmd, root);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* vexil refs                                                           */
/* ------------------------------------------------------------------ */

/* Check the choice of source; fills *database from the environment when
 * it is the one.  0, or CLI_EXIT_ERROR after printing the error line. */
static int refs_check_source(const char *cmd, const char *names, const char *server,
                             const char *token, const char **database)
{
    if ((names != NULL) + (server != NULL) + (*database != NULL) > 1)
        return cli_fail(cmd, "--database, --server and --names are three sources of names: "
                             "give one");
    if (server != NULL && strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0)
        return cli_fail(cmd, "--server wants an http:// or https:// URL, got '%s'", server);
    if (server != NULL && token == NULL)
        return cli_fail(cmd, "--server needs an admin token: --token or $VEXIL_TOKEN");
    if (server != NULL && !refs_token_ok(token))
        return cli_fail(cmd, "--token is not a token (printable ASCII, no spaces)");
    if (names == NULL && server == NULL && *database == NULL) {
        const char *env = getenv("VEXIL_DATABASE_URL");
        *database = env != NULL && env[0] != '\0' ? env : NULL;
    }
    return 0;
}

int cli_refs(int argc, char **argv)
{
    const char *cmd = "refs", *database = NULL, *server = NULL, *token = NULL, *names = NULL;
    bool json = false;
    int days = FLAG_STALE_DAYS_DEFAULT, ro_days = FLAG_ROLLED_OUT_DAYS_DEFAULT,
        fail_on = MARK_UNKNOWN;
    int n_pos = 0, rc, worst = MARK_OK;
    struct refs_config cfg = {REFS_MAX_FILE_SIZE_DEFAULT, refs_threads_default()};
    const struct opts_opt opts[] = {
        OPTS_STRING("database", NULL, database),
        OPTS_STRING("server", NULL, server),
        OPTS_STRING("token", "VEXIL_TOKEN", token),
        OPTS_STRING("names", NULL, names),
        OPTS_CUSTOM("fail-on", NULL, refs_parse_fail_on, &fail_on, "unknown, stale or none"),
        OPTS_NUMBER("days", NULL, days, 0, FLAG_STALE_DAYS_MAX),
        OPTS_NUMBER("rolled-out-days", NULL, ro_days, 0, FLAG_STALE_DAYS_MAX),
        OPTS_NUMBER("max-file-size", NULL, cfg.max_file_size, 1, REFS_MAX_FILE_SIZE_MAX),
        OPTS_NUMBER("threads", NULL, cfg.threads, 1, REFS_THREADS_MAX),
        OPTS_SWITCH("json", json),
        OPTS_END,
    };
    const struct opts_cmd spec = {cmd, USAGE_REFS, opts};
    const char **pos = calloc(argc > 0 ? (size_t)argc : 1, sizeof *pos);
    struct refs_known k = {refs_names_new(), json_object()};
    struct refs_report rep = {0};
    struct vx_error err;
    enum opts_result parsed;

    if (pos == NULL || k.set == NULL || k.reasons == NULL) {
        rc = cli_fail(cmd, "out of memory");
        goto done;
    }
    parsed =
        opts_parse(&spec, argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, pos, argc, &n_pos);
    if (parsed != OPTS_OK) {
        rc = cli_exit(parsed);
        goto done;
    }
    if (n_pos == 0) {
        rc = cli_fail(cmd, "which code? give the files or directories to scan (see --help)");
        goto done;
    }
    rc = refs_check_source(cmd, names, server, token, &database);
    if (rc == 0 && names != NULL)
        rc = refs_known_from_file(cmd, names, &k);
    else if (rc == 0 && server != NULL)
        rc = refs_known_from_server(cmd, server, token, days, ro_days, &k);
    else if (rc == 0)
        rc = refs_known_from_database(cmd, database, days, ro_days, &k);
    if (rc != 0)
        goto done;

    if (refs_scan_paths(k.set, pos, (size_t)n_pos, &cfg, &rep, &err) != 0) {
        rc = cli_fail(cmd, "%s", err.message);
        goto done;
    }
    for (size_t f = 0; f < rep.n_files; f++)
        for (size_t h = 0; h < rep.files[f].n_hits; h++) {
            int mark = MARK_OK;
            refs_names_at(k.set, rep.files[f].hits[h].name, &mark);
            worst = mark > worst ? mark : worst;
        }
    rc = json ? refs_print_json(cmd, &k, &rep) : refs_print_text(cmd, &k, &rep);
    if (rc == 0 && server != NULL && fail_on == MARK_UNKNOWN)
        fputs("vexil refs: note: a server lists live flags only, so references to deleted flags "
              "are not seen (use --database for them)\n",
              stderr);
    if (rc == 0 && worst >= fail_on)
        rc = CLI_EXIT_FOUND;
done:
    refs_report_free(&rep);
    refs_names_free(k.set);
    json_decref(k.reasons);
    free(pos);
    return rc;
}

/* ------------------------------------------------------------------ */
/* vexil stale --refs                                                   */
/* ------------------------------------------------------------------ */

int cli_refs_attach(const char *cmd, json_t *stale, const struct cli_paths *paths)
{
    struct refs_names *set = refs_names_new();
    struct refs_config cfg = {REFS_MAX_FILE_SIZE_DEFAULT, refs_threads_default()};
    struct refs_report rep = {0};
    struct vx_error err;
    json_t *f;
    size_t i;
    int rc = set != NULL ? 0 : -1;

    json_array_foreach(stale, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "name"));
        if (rc == 0 && (name == NULL || json_object_set_new(f, "references", json_array()) != 0 ||
                        refs_names_add(set, name, strlen(name), (int)i) < 0))
            rc = -1;
    }
    if (rc != 0) {
        refs_names_free(set);
        return cli_fail(cmd, "out of memory");
    }
    if (refs_scan_paths(set, paths->v, paths->n, &cfg, &rep, &err) != 0) {
        refs_names_free(set);
        return cli_fail(cmd, "%s", err.message);
    }
    for (size_t fi = 0; rc == 0 && fi < rep.n_files; fi++) {
        for (size_t h = 0; rc == 0 && h < rep.files[fi].n_hits; h++) {
            int at = 0;
            refs_names_at(set, rep.files[fi].hits[h].name, &at);
            json_t *list = json_object_get(json_array_get(stale, (size_t)at), "references");
            json_t *o = json_pack("{s:o?, s:I}", "path", refs_path_json(rep.files[fi].path), "line",
                                  (json_int_t)rep.files[fi].hits[h].line);
            if (o != NULL && json_object_get(o, "path") == NULL) {
                json_decref(o);
                o = NULL;
            }
            if (o == NULL || json_array_append_new(list, o) != 0)
                rc = -1;
        }
    }
    refs_report_free(&rep);
    refs_names_free(set);
    return rc == 0 ? 0 : cli_fail(cmd, "out of memory");
}
