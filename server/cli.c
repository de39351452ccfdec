/* cli.c -- the operator commands: `vexil migrate`, `vexil token ...` and
 * `vexil stale` (`vexil refs` is in cli_refs.c), and the helpers they share
 * (cli_int.h).
 *
 * Each command is a short function: parse the options with opts_parse()
 * against the command's table, open one connection, call the store, print.
 * They talk to the database directly (not to a running server), so they
 * work before the first `vexil serve` and from a cron job on any host that
 * reaches PostgreSQL.
 *
 * Conventions shared by every command (docs/decisions.md):
 *   --database URL, else $VEXIL_DATABASE_URL, else libpq's own defaults;
 *   --help prints the usage on stdout and exits 0;
 *   bad use prints ONE line on stderr and exits 2, as does any error;
 *   results go to stdout, notes to stderr. */
#include "cli.h"
#include "cli_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"
#include "migrate.h"
#include "opts.h"
#include "store.h"
#include "text.h"
#include "timeutil.h"
#include "vx.h"

/* ------------------------------------------------------------------ */
/* Usage and errors                                                     */
/* ------------------------------------------------------------------ */

static const char USAGE_MIGRATE[] =
    "Usage: vexil migrate [--database URL]\n"
    "\n"
    "Apply the pending database migrations, each once, under an advisory lock\n"
    "(safe to run from several hosts at once).\n"
    "\n"
    "  --database URL  libpq URI or key=value string (default: $VEXIL_DATABASE_URL,\n"
    "                  else libpq's defaults and PG* variables)\n"
    "  --help          show this help\n";

static const char USAGE_TOKEN[] =
    "Usage: vexil token create --name NAME --role admin|client|frontend [--environment ENV]\n"
    "                          [--database URL]\n"
    "       vexil token list [--json] [--database URL]\n"
    "       vexil token revoke ID [--database URL]\n"
    "\n"
    "Manage API tokens.  `create` prints the new secret alone on stdout (it is\n"
    "shown only this once; only its hash is stored) and the token id on stderr.\n"
    "`list` shows the live tokens, never their secrets.  `revoke` stops a token\n"
    "on every instance within a second.\n"
    "\n"
    "  --name NAME     a name for the token, 1-100 characters; recorded as the\n"
    "                  actor of every change made with it\n"
    "  --role ROLE     admin (admin API and page), client (flag reads) or\n"
    "                  frontend (evaluations only: for web pages and apps)\n"
    "  --environment ENV  the environment a client or frontend token reads\n"
    "                  (default: the default environment)\n"
    "  --json          list as JSON: {\"tokens\":[{id,name,role,created_at,last_used_at}]}\n"
    "  --database URL  libpq URI or key=value string (default: $VEXIL_DATABASE_URL)\n"
    "  --help          show this help\n";

static const char USAGE_STALE[] =
    "Usage: vexil stale [--days N] [--rolled-out-days N] [--owner NAME] [--json]\n"
    "                   [--refs PATH]... [--database URL]\n"
    "\n"
    "List the flags that are due for removal from the code: older than --days,\n"
    "or rolled out to 100 % for more than --rolled-out-days.  Meant for cron:\n"
    "prints nothing and exits 0 when no flag is stale, prints a table and exits 1\n"
    "when some are, exits 2 on error.\n"
    "\n"
    "  --days N             age limit in days (default 30)\n"
    "  --rolled-out-days N  rolled-out limit in days (default 14)\n"
    "  --owner NAME         only flags with this owner\n"
    "  --json               print {\"flags\":[<flag + age_days + stale>]} instead\n"
    "  --refs PATH          also list where the code under PATH (a file or a\n"
    "                       directory; repeatable) still names each stale flag,\n"
    "                       as `vexil refs` finds them (JSON: \"references\")\n"
    "  --database URL       libpq URI or key=value string (default: $VEXIL_DATABASE_URL)\n"
    "  --help               show this help\n";

/* Print the one line of bad use or error on stderr; returns CLI_EXIT_ERROR. */
int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    opts_vfail(cmd, fmt, ap);
    va_end(ap);
    return CLI_EXIT_ERROR;
}

/* The exit status for opts_parse()'s result, when it is not OPTS_OK. */
int cli_exit(enum opts_result r)
{
    return r == OPTS_HELP ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* Text from the database is shown through buf_add_visible, so that a
 * control character in an owner or a name is seen, escaped, instead of
 * acting on the terminal or the mail that shows the table (docs/decisions.md,
 * "Text for people").  Columns are as wide as what they show. */
size_t cli_width(const char *s)
{
    return s != NULL ? text_visible_width(s, strlen(s)) : 0;
}

/* Add s (NULL: nothing), made visible.  0, or -1 when out of memory. */
int cli_text(struct buf *out, const char *s)
{
    return s != NULL ? buf_add_visible(out, s, strlen(s)) : 0;
}

/* Add s, made visible, left-aligned in a column of width characters, then
 * two spaces.  0, or -1 when out of memory. */
int cli_cell(struct buf *out, const char *s, size_t width)
{
    if (cli_text(out, s) != 0)
        return -1;
    for (size_t w = cli_width(s); w < width + 2; w++)
        if (buf_add(out, " ", 1) != 0)
            return -1;
    return 0;
}

/* Write out (built: 0, or -1 when building it ran out of memory) to stdout
 * and free it.  0, or -1 after printing the error line. */
int cli_write(const char *cmd, struct buf *out, int built)
{
    int rc = 0;

    if (built != 0) {
        rc = -1;
        cli_fail(cmd, "out of memory");
    } else if ((out->len > 0 && fwrite(out->p, 1, out->len, stdout) != out->len) ||
               fflush(stdout) != 0) {
        rc = -1;
        cli_fail(cmd, "cannot write the output");
    }
    buf_free(out);
    return rc;
}

/* Connect with --database (or $VEXIL_DATABASE_URL, as the option tables
 * say), else libpq defaults: database NULL.  NULL after printing the error
 * line. Caller PQfinish()es. */
PGconn *cli_connect(const char *cmd, const char *database)
{
    struct vx_error err;
    PGconn *c;

    store_configure(database, NULL);
    c = store_connect(&err);
    store_configure(NULL, NULL);
    if (c == NULL)
        cli_fail(cmd, "%s", err.message);
    return c;
}

/* The error line for a failed store call. */
int cli_store_fail(const char *cmd, PGconn *c, enum store_status st, const char *what)
{
    if (st == STORE_UNAVAILABLE)
        return cli_fail(cmd, "%s: database unavailable: %s", what, store_last_error(c));
    return cli_fail(cmd, "%s: %s", what, store_last_error(c));
}

/* Print a JSON value and a newline on stdout. 0 or CLI_EXIT_ERROR. */
int cli_print_json(const char *cmd, const json_t *v)
{
    /* jansson escapes C0 but writes DEL and C1 as they are: escape those too
     * (the same JSON value) before a terminal sees them. */
    char *s = json_dumps(v, JSON_INDENT(2));
    struct buf out = {0};
    int built = s != NULL ? buf_add_json_visible(&out, s, strlen(s)) | buf_add(&out, "\n", 1) : -1;

    free(s);
    return cli_write(cmd, &out, built) == 0 ? 0 : CLI_EXIT_ERROR;
}

/* ------------------------------------------------------------------ */
/* vexil migrate                                                        */
/* ------------------------------------------------------------------ */

int cli_migrate(int argc, char **argv)
{
    const char *cmd = "migrate", *database = NULL, *pos[1];
    const struct opts_opt opts[] = {OPTS_STRING("database", "VEXIL_DATABASE_URL", database),
                                    OPTS_END};
    const struct opts_cmd spec = {cmd, USAGE_MIGRATE, opts};
    struct vx_error err;
    int n_pos, applied = 0, rc;
    enum opts_result r;
    PGconn *c;

    r = opts_parse(&spec, argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, pos, 0, &n_pos);
    if (r != OPTS_OK)
        return cli_exit(r);
    c = cli_connect(cmd, database);
    if (c == NULL)
        return CLI_EXIT_ERROR;
    rc = migrate_run(c, &applied, &err);
    PQfinish(c);
    if (rc != 0)
        return cli_fail(cmd, "%s", err.message);
    printf("%d migration%s applied; the database schema is up to date\n", applied,
           applied == 1 ? "" : "s");
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* vexil token                                                          */
/* ------------------------------------------------------------------ */

static int cli_token_create(int argc, char **argv)
{
    const char *cmd = "token create", *database = NULL, *name = NULL, *role = NULL, *env = NULL,
               *pos[1];
    const struct opts_opt opts[] = {
        OPTS_STRING("database", "VEXIL_DATABASE_URL", database), OPTS_STRING("name", NULL, name),
        OPTS_STRING("role", NULL, role), OPTS_STRING("environment", NULL, env), OPTS_END};
    const struct opts_cmd spec = {cmd, USAGE_TOKEN, opts};
    char id[TOKEN_ID_LEN + 1], secret[64];
    enum opts_result parsed;
    int r;
    enum store_status st;
    int n_pos, rc;
    PGconn *c;

    parsed = opts_parse(&spec, argc, argv, pos, 0, &n_pos);
    if (parsed != OPTS_OK)
        return cli_exit(parsed);
    if (name == NULL)
        return cli_fail(cmd, "--name is required (see --help)");
    if (role == NULL)
        return cli_fail(cmd, "--role is required: admin, client or frontend");
    if (!token_name_valid(name))
        return cli_fail(cmd, "--name must be 1 to %d characters of printable UTF-8 text",
                        TOKEN_NAME_MAX);
    r = role_parse(role);
    if (r < 0)
        return cli_fail(cmd, "--role must be admin, client or frontend");
    if (env != NULL && r == VX_ROLE_ADMIN)
        return cli_fail(cmd, "--environment is for client and frontend tokens only");
    if (env != NULL && !env_name_valid(env, strlen(env)))
        return cli_fail(cmd, "--environment must be an environment name");

    c = cli_connect(cmd, database);
    if (c == NULL)
        return CLI_EXIT_ERROR;
    st = store_token_create(c, name, (enum vx_role)r, env, id, secret, NULL);
    if (st != STORE_OK) {
        rc = cli_store_fail(cmd, c, st, "cannot create the token");
        PQfinish(c);
        return rc;
    }
    PQfinish(c);
    printf("%s\n", secret);
    fflush(stdout);
    explicit_bzero(secret, sizeof secret);
    fprintf(stderr, "vexil: created %s token %s (%s); the secret above is shown only this once\n",
            role, id, name);
    return CLI_EXIT_OK;
}

static int cli_token_list(int argc, char **argv)
{
    const char *cmd = "token list", *database = NULL, *pos[1];
    bool json = false;
    const struct opts_opt opts[] = {OPTS_STRING("database", "VEXIL_DATABASE_URL", database),
                                    OPTS_SWITCH("json", json), OPTS_END};
    const struct opts_cmd spec = {cmd, USAGE_TOKEN, opts};
    json_t *list = NULL, *t;
    enum store_status st;
    size_t i, wname = 4;
    int n_pos, rc;
    enum opts_result r;
    PGconn *c;

    r = opts_parse(&spec, argc, argv, pos, 0, &n_pos);
    if (r != OPTS_OK)
        return cli_exit(r);
    c = cli_connect(cmd, database);
    if (c == NULL)
        return CLI_EXIT_ERROR;
    st = store_tokens_list(c, &list);
    if (st != STORE_OK) {
        rc = cli_store_fail(cmd, c, st, "cannot list the tokens");
        PQfinish(c);
        return rc;
    }
    PQfinish(c);

    if (json) {
        rc = cli_print_json(cmd, list);
        json_decref(list);
        return rc;
    }
    json_t *tokens = json_object_get(list, "tokens");
    json_array_foreach(tokens, i, t)
    {
        size_t w = cli_width(json_string_value(json_object_get(t, "name")));
        wname = w > wname ? w : wname;
    }
    struct buf out = {0};
    int built = cli_cell(&out, "ID", TOKEN_ID_LEN) | cli_cell(&out, "NAME", wname) |
                cli_cell(&out, "ROLE", 8) | cli_cell(&out, "ENVIRONMENT", ENV_NAME_MAX) |
                cli_cell(&out, "CREATED", 24) | buf_adds(&out, "LAST USED\n");
    json_array_foreach(tokens, i, t)
    {
        const char *used = json_string_value(json_object_get(t, "last_used_at"));
        const char *env = json_string_value(json_object_get(t, "environment"));
        built |= cli_cell(&out, json_string_value(json_object_get(t, "id")), TOKEN_ID_LEN) |
                 cli_cell(&out, json_string_value(json_object_get(t, "name")), wname) |
                 cli_cell(&out, json_string_value(json_object_get(t, "role")), 8) |
                 cli_cell(&out, env != NULL ? env : "-", ENV_NAME_MAX) |
                 cli_cell(&out, json_string_value(json_object_get(t, "created_at")), 24) |
                 cli_text(&out, used != NULL ? used : "never") | buf_add(&out, "\n", 1);
    }
    json_decref(list);
    return cli_write(cmd, &out, built) == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

static int cli_token_revoke(int argc, char **argv)
{
    const char *cmd = "token revoke", *database = NULL, *pos[1];
    const struct opts_opt opts[] = {OPTS_STRING("database", "VEXIL_DATABASE_URL", database),
                                    OPTS_END};
    const struct opts_cmd spec = {cmd, USAGE_TOKEN, opts};
    enum store_status st;
    int n_pos, rc;
    enum opts_result r;
    PGconn *c;

    r = opts_parse(&spec, argc, argv, pos, 1, &n_pos);
    if (r != OPTS_OK)
        return cli_exit(r);
    if (n_pos != 1)
        return cli_fail(cmd, "which token? give its ID (see 'vexil token list')");
    c = cli_connect(cmd, database);
    if (c == NULL)
        return CLI_EXIT_ERROR;
    st = store_token_revoke(c, pos[0]);
    if (st == STORE_NOT_FOUND)
        rc = cli_fail(cmd, "no live token has the id '%s'", pos[0]);
    else if (st != STORE_OK)
        rc = cli_store_fail(cmd, c, st, "cannot revoke the token");
    else {
        printf("revoked token %s\n", pos[0]);
        rc = CLI_EXIT_OK;
    }
    PQfinish(c);
    return rc;
}

int cli_token(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    if (sub == NULL)
        return cli_fail("token", "which subcommand? create, list or revoke (see --help)");
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(USAGE_TOKEN, stdout);
        return CLI_EXIT_OK;
    }
    /* The subcommands get just their options. */
    if (strcmp(sub, "create") == 0)
        return cli_token_create(argc - 2, argv + 2);
    if (strcmp(sub, "list") == 0)
        return cli_token_list(argc - 2, argv + 2);
    if (strcmp(sub, "revoke") == 0)
        return cli_token_revoke(argc - 2, argv + 2);
    return cli_fail("token", "unknown subcommand '%s': create, list or revoke", sub);
}

/* ------------------------------------------------------------------ */
/* vexil stale                                                          */
/* ------------------------------------------------------------------ */

/* The references of a stale flag (--refs; NULL: not asked for), one
 * "  path:line" a line under its row.  0, or -1 when out of memory. */
static int cli_stale_refs(struct buf *out, const json_t *refs)
{
    const json_t *r;
    size_t i;
    int built = 0;

    if (refs == NULL)
        return 0;
    if (json_array_size(refs) == 0)
        return buf_adds(out, "  (no references)\n");
    json_array_foreach(refs, i, r)
    {
        built |=
            buf_adds(out, "  ") | cli_text(out, json_string_value(json_object_get(r, "path"))) |
            buf_addf(out, ":%lld\n", (long long)json_integer_value(json_object_get(r, "line")));
    }
    return built;
}

/* The stale flags as a table for a cron mail, added to out.  0, or -1 when
 * out of memory. */
/* Set "last_evaluated_at" on the admin object o of f from the usage rows
 * (flags[] sorted in strcmp order, the default environment's): its time,
 * or null when never (or only before f was made).  0 or -1. */
static int cli_last_evaluated(json_t *o, const struct vx_flag *f, char *const *flags,
                              const int64_t *ats, size_t n)
{
    size_t lo = 0, hi = n;
    int64_t at = 0;
    char buf[40];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(flags[mid], f->name);
        if (cmp == 0) {
            at = ats[mid] >= f->created_at ? ats[mid] : 0;
            break;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return json_object_set_new(o, "last_evaluated_at",
                               at > 0 ? json_string(time_format_rfc3339(at, buf, sizeof buf))
                                      : json_null());
}

/* "never", "just now", "5 min ago", "3 h ago", "12 d ago" for a
 * last_evaluated_at value. */
static void cli_ago(const json_t *v, int64_t now, char *buf, size_t len)
{
    int64_t at, s;

    if (!json_is_string(v) || time_parse_rfc3339(json_string_value(v), &at) != 0) {
        snprintf(buf, len, "never");
        return;
    }
    s = (now - at) / VX_USEC_PER_SEC;
    if (s < 60)
        snprintf(buf, len, "just now");
    else if (s < 3600)
        snprintf(buf, len, "%lld min ago", (long long)(s / 60));
    else if (s < 86400)
        snprintf(buf, len, "%lld h ago", (long long)(s / 3600));
    else
        snprintf(buf, len, "%lld d ago", (long long)(s / 86400));
}

static int cli_stale_table(struct buf *out, const json_t *stale, int days, int rolled_out_days)
{
    size_t i, wname = 4, wowner = 5, n = json_array_size(stale);
    const json_t *f;
    int built;

    json_array_foreach(stale, i, f)
    {
        size_t a = cli_width(json_string_value(json_object_get(f, "name")));
        size_t b = cli_width(json_string_value(json_object_get(f, "owner")));
        wname = a > wname ? a : wname;
        wowner = b > wowner ? b : wowner;
    }
    built = buf_addf(out,
                     "%zu flag%s due for removal (older than %d days, or rolled out to 100 %% for "
                     "more than %d days):\n\n",
                     n, n == 1 ? " is" : "s are", days, rolled_out_days);
    built |= cli_cell(out, "NAME", wname) | cli_cell(out, "OWNER", wowner) |
             cli_cell(out, "AGE (DAYS)", 10) | cli_cell(out, "LAST EVALUATED", 14) |
             buf_adds(out, "REASONS\n");
    json_array_foreach(stale, i, f)
    {
        const char *owner = json_string_value(json_object_get(f, "owner"));
        const json_t *reasons = json_object_get(f, "stale"), *r;
        char age[24], ago[24];
        size_t j;

        snprintf(age, sizeof age, "%lld",
                 (long long)json_integer_value(json_object_get(f, "age_days")));
        cli_ago(json_object_get(f, "last_evaluated_at"), time_now_us(), ago, sizeof ago);
        built |= cli_cell(out, json_string_value(json_object_get(f, "name")), wname) |
                 cli_cell(out, owner != NULL && owner[0] != '\0' ? owner : "-", wowner) |
                 cli_cell(out, age, 10) | cli_cell(out, ago, 14);
        json_array_foreach(reasons, j, r)
        {
            built |= buf_adds(out, j > 0 ? ", " : "") | cli_text(out, json_string_value(r));
        }
        built |= buf_add(out, "\n", 1) | cli_stale_refs(out, json_object_get(f, "references"));
    }
    return built != 0 ? -1 : 0;
}

int cli_stale(int argc, char **argv)
{
    const char *cmd = "stale", *database = NULL, *owner = NULL, *pos[1];
    struct cli_paths refs = {.n = 0};
    bool json = false;
    int days = FLAG_STALE_DAYS_DEFAULT, ro_days = FLAG_ROLLED_OUT_DAYS_DEFAULT, n_pos, rc;
    const struct opts_opt opts[] = {
        OPTS_STRING("database", "VEXIL_DATABASE_URL", database),
        OPTS_NUMBER("days", NULL, days, 0, FLAG_STALE_DAYS_MAX),
        OPTS_NUMBER("rolled-out-days", NULL, ro_days, 0, FLAG_STALE_DAYS_MAX),
        OPTS_STRING("owner", NULL, owner),
        OPTS_SWITCH("json", json),
        OPTS_CUSTOM("refs", NULL, cli_paths_add, &refs, CLI_PATHS_WANT),
        OPTS_END,
    };
    const struct opts_cmd spec = {cmd, USAGE_STALE, opts};
    enum opts_result parsed;
    struct vx_flag *flags = NULL;
    size_t n = 0;
    json_t *stale;
    enum store_status st;
    PGconn *c;
    int64_t now;

    parsed = opts_parse(&spec, argc > 0 ? argc - 1 : 0, argc > 0 ? argv + 1 : argv, pos, 0, &n_pos);
    if (parsed != OPTS_OK)
        return cli_exit(parsed);

    c = cli_connect(cmd, database);
    if (c == NULL)
        return CLI_EXIT_ERROR;
    char **u_envs = NULL, **u_flags = NULL;
    int64_t *u_ats = NULL;
    size_t u_n = 0;
    st = store_flags_all(c, &flags, &n);
    if (st == STORE_OK)
        st = store_usage_read(c, "", &u_envs, &u_flags, &u_ats, &u_n);
    if (st != STORE_OK) {
        rc = cli_store_fail(cmd, c, st, "cannot read the flags");
        PQfinish(c);
        for (size_t i = 0; i < n; i++)
            flag_free(&flags[i]);
        free(flags);
        return rc;
    }
    PQfinish(c);

    now = time_now_us();
    stale = json_array();
    for (size_t i = 0; i < n && stale != NULL; i++) {
        if (owner != NULL && strcmp(flags[i].owner, owner) != 0)
            continue;
        json_t *o = flag_to_admin_json(&flags[i], now, days, ro_days);
        if (o != NULL && json_array_size(json_object_get(o, "stale")) == 0) {
            json_decref(o);
            continue;
        }
        if (o != NULL && cli_last_evaluated(o, &flags[i], u_flags, u_ats, u_n) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (json_array_append_new(stale, o) != 0) {
            json_decref(stale);
            stale = NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        flag_free(&flags[i]);
    free(flags);
    store_usage_free(u_envs, u_flags, u_ats, u_n);
    if (stale == NULL)
        return cli_fail(cmd, "out of memory");
    if (refs.n > 0 && cli_refs_attach(cmd, stale, &refs) != 0) {
        json_decref(stale);
        return CLI_EXIT_ERROR;
    }

    rc = json_array_size(stale) > 0 ? CLI_EXIT_FOUND : CLI_EXIT_OK;
    if (json) {
        json_t *root = json_object();
        if (root == NULL || json_object_set_new(root, "flags", stale) != 0) {
            json_decref(root);
            return cli_fail(cmd, "out of memory");
        }
        if (cli_print_json(cmd, root) != 0)
            rc = CLI_EXIT_ERROR;
        json_decref(root);
        return rc;
    }
    struct buf out = {0};
    int built = rc == CLI_EXIT_FOUND ? cli_stale_table(&out, stale, days, ro_days) : 0;
    json_decref(stale);
    if (cli_write(cmd, &out, built) != 0)
        return CLI_EXIT_ERROR;
    return rc;
}
