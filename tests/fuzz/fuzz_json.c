/* fuzz_json.c -- libFuzzer target for request-body validation (server/flag.c).
 *
 * The input is a request body.  It is parsed exactly as http_body_json()
 * does (json_loadb with JSON_REJECT_DUPLICATES) and then fed to
 *   - flag_patch_from_json() in create mode (POST /api/flags) and in update
 *     mode (PATCH /api/flags/<name>),
 *   - flag_from_json() (a flag restored from history by revert),
 * and whatever those accept goes on through flag_from_patch(),
 * flag_apply_patch(), flag_to_json()/flag_to_admin_json(), eval_flag() and
 * back through flag_from_json().
 *
 * Besides ASan/UBSan findings, every property the rest of the daemon relies
 * on is checked and a violation aborts (a crash for libFuzzer):
 *   - a refusal carries a docs/api.md §5 code and a non-empty, valid UTF-8
 *     message, and leaves the patch empty;
 *   - an accepted body obeys docs/api.md §1 (name pattern, lengths, percentage
 *     0..100, users sorted, distinct, 1..256 bytes without NUL, <= 10 000);
 *   - a flag survives flag_to_json -> flag_from_json -> flag_to_json
 *     unchanged, and every listed user evaluates on while it is enabled.
 * The same bytes also go through buf_add_json_string() (server/httputil.c),
 * which writes every string of the hand-made read-path JSON: its output must
 * always be one valid JSON string, equal to the input when that is valid
 * UTF-8.
 *
 * Build and run: tests/fuzz/run.sh (see there). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "flag.h"
#include "text.h"
#include "timeutil.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_json: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* 2026-11-26T06:11:39.123Z and 400 days later. */
#define T0 INT64_C(1795673499123000)
#define T1 (T0 + 400 * VX_USEC_PER_DAY)

static const char *const codes[] = {
    VX_E_BAD_REQUEST,  VX_E_INVALID_JSON,        VX_E_UNKNOWN_FIELD,     VX_E_INVALID_VALUE,
    VX_E_UNAUTHORIZED, VX_E_FORBIDDEN,           VX_E_NOT_FOUND,         VX_E_METHOD_NOT_ALLOWED,
    VX_E_CONFLICT,     VX_E_PRECONDITION_FAILED, VX_E_PAYLOAD_TOO_LARGE, VX_E_UNAVAILABLE,
};

static void check_error(const struct vx_error *err)
{
    int known = 0;

    CHECK(err->code != NULL);
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        known |= strcmp(err->code, codes[i]) == 0;
    CHECK(known);
    CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL);
    CHECK(err->message[0] != '\0');
    CHECK(utf8_valid(err->message, strlen(err->message)));
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void check_users(char *const *users, size_t n)
{
    CHECK(n <= FLAG_USERS_MAX);
    CHECK((n == 0) == (users == NULL));
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(users[i]);
        CHECK(l >= 1 && l <= FLAG_USER_MAX);
        CHECK(utf8_valid(users[i], l));
        if (i > 0)
            CHECK(strcmp(users[i - 1], users[i]) < 0);
    }
}

static void check_flag(const struct vx_flag *f)
{
    CHECK(f->name != NULL && flag_name_valid(f->name, strlen(f->name)));
    CHECK(f->description != NULL && utf8_chars(f->description) <= FLAG_DESCRIPTION_MAX);
    CHECK(f->owner != NULL && utf8_chars(f->owner) <= FLAG_OWNER_MAX);
    CHECK(f->percentage >= 0 && f->percentage <= 100);
    CHECK(f->revision >= 1);
    check_users(f->users, f->n_users);
}

/* Evaluation must agree with docs/evaluation.md for the listed users and a few others. */
static void check_eval(const struct vx_flag *f)
{
    static const char *const others[] = {"alice", "bob", "", "\xc3\xbc-user"};
    enum vx_reason why;

    for (size_t i = 0; i < f->n_users; i++) {
        size_t l = strlen(f->users[i]);
        CHECK(flag_has_user(f, f->users[i], l));
        CHECK(eval_flag(f, f->users[i], l, &why) == f->enabled);
        CHECK(eval_reason_name(why) != NULL);
        int b = eval_bucket(f->name, strlen(f->name), f->users[i], l);
        CHECK(b >= 1 && b <= 100);
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        bool on = eval_flag(f, others[i], strlen(others[i]), &why);
        if (!f->enabled)
            CHECK(!on && why == VX_REASON_DISABLED);
        if (f->enabled && f->percentage == 100)
            CHECK(on);
    }
    CHECK(eval_flag(f, NULL, 0, &why) == (f->enabled && f->percentage == 100));
}

/* flag -> JSON -> flag -> JSON must be stable. */
static void check_roundtrip(const struct vx_flag *f)
{
    struct vx_flag g;
    struct vx_error err = {0};
    json_t *j1 = flag_to_json(f);
    json_t *j2;

    CHECK(j1 != NULL);
    CHECK(flag_from_json(j1, &g, &err) == 0);
    check_flag(&g);
    CHECK(strcmp(g.name, f->name) == 0 && strcmp(g.description, f->description) == 0 &&
          strcmp(g.owner, f->owner) == 0);
    CHECK(g.enabled == f->enabled && g.percentage == f->percentage && g.revision == f->revision);
    CHECK(g.n_users == f->n_users);
    for (size_t i = 0; i < f->n_users; i++)
        CHECK(strcmp(g.users[i], f->users[i]) == 0);
    CHECK((g.rolled_out_at == 0) == (f->rolled_out_at == 0));
    j2 = flag_to_json(&g);
    CHECK(j2 != NULL && json_equal(j1, j2));
    json_decref(j2);
    json_decref(j1);

    j1 = flag_to_admin_json(f, T1, -1, -1);
    CHECK(j1 != NULL && json_is_array(json_object_get(j1, "stale")));
    CHECK(json_integer_value(json_object_get(j1, "age_days")) >= 0);
    json_decref(j1);
    flag_free(&g);
}

static void check_patch(const json_t *body, bool create)
{
    struct vx_flag_patch p;
    struct vx_error err = {0};
    const unsigned all = FLAG_SET_NAME | FLAG_SET_DESCRIPTION | FLAG_SET_OWNER | FLAG_SET_ENABLED |
                         FLAG_SET_PERCENTAGE | FLAG_SET_USERS;

    if (flag_patch_from_json(body, create, &p, &err) != 0) {
        check_error(&err);
        CHECK(p.set == 0 && p.name == NULL && p.description == NULL && p.owner == NULL &&
              p.users == NULL && p.n_users == 0);
        return;
    }
    CHECK(json_is_object(body));
    CHECK((p.set & ~all) == 0);
    CHECK(json_object_size(body) == (size_t)__builtin_popcount(p.set));
    CHECK(create == ((p.set & FLAG_SET_NAME) != 0));
    if (p.set & FLAG_SET_NAME)
        CHECK(p.name != NULL && flag_name_valid(p.name, strlen(p.name)));
    if (p.set & FLAG_SET_DESCRIPTION)
        CHECK(p.description != NULL && utf8_chars(p.description) <= FLAG_DESCRIPTION_MAX);
    if (p.set & FLAG_SET_OWNER)
        CHECK(p.owner != NULL && utf8_chars(p.owner) <= FLAG_OWNER_MAX);
    if (p.set & FLAG_SET_PERCENTAGE)
        CHECK(p.percentage >= 0 && p.percentage <= 100);
    check_users(p.users, p.n_users);

    struct vx_flag f;
    if (create) {
        CHECK(flag_from_patch(&p, T0, &f) == 0);
        check_flag(&f);
        CHECK(f.revision == 1);
        CHECK((f.rolled_out_at != 0) == (f.enabled && f.percentage == 100));
    } else {
        /* Apply to a flag that is rolled out with one user. */
        static char *base_users[] = {"alice"};
        struct vx_flag base = {
            .name = "fuzz",
            .description = "d",
            .owner = "o",
            .enabled = true,
            .percentage = 100,
            .users = base_users,
            .n_users = 1,
            .created_at = T0,
            .updated_at = T0,
            .rolled_out_at = T0,
            .revision = 7,
        };
        CHECK(flag_copy(&base, &f) == 0);
        int rc = flag_apply_patch(&f, &p, T1);
        CHECK(rc == 0 || rc == 1);
        CHECK(f.revision == (rc == 1 ? 8 : 7));
        CHECK(f.updated_at == (rc == 1 ? T1 : T0));
        if (f.enabled && f.percentage == 100)
            CHECK(f.rolled_out_at == T0);
        else
            CHECK(f.rolled_out_at == 0);
        check_flag(&f);
        /* Applying the same patch again changes nothing. */
        CHECK(flag_apply_patch(&f, &p, T1 + 1) == 0);
    }
    check_eval(&f);
    check_roundtrip(&f);
    flag_free(&f);
    flag_patch_free(&p);
}

static void check_restore(const json_t *body)
{
    struct vx_flag f;
    struct vx_error err = {0};

    if (flag_from_json(body, &f, &err) != 0) {
        check_error(&err);
        CHECK(f.name == NULL && f.description == NULL && f.owner == NULL && f.users == NULL);
        return;
    }
    check_flag(&f);
    check_eval(&f);
    /* Times far outside 0000..9999 cannot be printed back as RFC 3339;
     * history only ever holds times the server wrote itself. */
    if (f.created_at >= 0 && f.updated_at >= 0 && f.rolled_out_at >= 0)
        check_roundtrip(&f);
    flag_free(&f);
}

/* buf_add_json_string must always write one JSON string literal. */
static void check_json_string(const uint8_t *data, size_t size)
{
    struct buf b = {0};
    json_error_t je;
    json_t *j;

    CHECK(buf_add_json_string(&b, (const char *)data, size) == 0);
    CHECK(b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"');
    CHECK(memchr(b.p, '<', b.len) == NULL && memchr(b.p, '>', b.len) == NULL);
    j = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    CHECK(j != NULL && json_is_string(j));
    if (utf8_valid((const char *)data, size)) {
        CHECK(json_string_length(j) == size);
        CHECK(memcmp(json_string_value(j), data, size) == 0);
    }
    json_decref(j);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *body;

    check_json_string(data, size);
    /* As http_body_json(): reject duplicate keys, accept only what jansson
     * accepts (valid UTF-8, depth <= 2048). */
    body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    if (body == NULL)
        return 0;
    check_patch(body, true);
    check_patch(body, false);
    check_restore(body);
    json_decref(body);
    return 0;
}
