/* test_flag.c -- the flag: validation of request bodies (docs/api.md §1), the
 * rolled_out_at rule, JSON form, copying, and staleness (docs/operations.md §3).
 *
 * Request bodies are written as JSON text where possible, so each test
 * reads like the request a client would send; bodies that JSON text cannot
 * express to jansson's parser (strings with NUL, 10 001 users) are built
 * with the jansson API. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"
#include "timeutil.h"
#include "unit.h"

#define DAY VX_USEC_PER_DAY
#define SEC VX_USEC_PER_SEC
#define T0  INT64_C(1795673499123000) /* 2026-11-26T06:11:39.123Z */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s: %s", text, je.text);
    return j;
}

static void assert_patch_empty(const struct vx_flag_patch *p)
{
    ck_assert_uint_eq(p->set, 0);
    ck_assert_ptr_null(p->name);
    ck_assert_ptr_null(p->description);
    ck_assert_ptr_null(p->owner);
    ck_assert_ptr_null(p->users);
    ck_assert_uint_eq(p->n_users, 0);
    ck_assert_ptr_null(p->segments);
    ck_assert_uint_eq(p->n_segments, 0);
    ck_assert_ptr_null(p->envs);
    ck_assert_uint_eq(p->n_envs, 0);
}

/* body must be refused with code, and the message must contain part. */
static void expect_fail_json(const json_t *body, bool create, const char *code, const char *part)
{
    struct vx_flag_patch p;
    struct vx_error err = {0};
    char *text = body ? json_dumps(body, JSON_ENCODE_ANY) : NULL;

    ck_assert_msg(flag_patch_from_json(body, create, &p, &err) == -1, "accepted %.200s",
                  text ? text : "NULL");
    ck_assert_msg(err.code != NULL && strcmp(err.code, code) == 0, "%.200s: code %s, want %s",
                  text ? text : "NULL", err.code ? err.code : "NULL", code);
    ck_assert_msg(strstr(err.message, part) != NULL, "%.200s: message \"%s\" lacks \"%s\"",
                  text ? text : "NULL", err.message, part);
    assert_patch_empty(&p);
    free(text);
}

static void expect_fail(const char *text, bool create, const char *code, const char *part)
{
    json_t *j = parse(text);
    expect_fail_json(j, create, code, part);
    json_decref(j);
}

/* body must be accepted; p is filled (caller frees). */
static void expect_ok(const char *text, bool create, struct vx_flag_patch *p)
{
    struct vx_error err = {0};
    json_t *j = parse(text);
    ck_assert_msg(flag_patch_from_json(j, create, p, &err) == 0, "refused %s: %s", text,
                  err.message);
    json_decref(j);
}

static void expect_ok_json(const json_t *body, bool create, struct vx_flag_patch *p)
{
    struct vx_error err = {0};
    ck_assert_msg(flag_patch_from_json(body, create, p, &err) == 0, "refused: %s", err.message);
}

/* A string of n copies of the UTF-8 character c (caller frees). */
static char *repeat(const char *c, size_t n)
{
    size_t cl = strlen(c);
    char *s = malloc(cl * n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * cl, c, cl);
    s[cl * n] = '\0';
    return s;
}

/* {"name": "f", <field>: <string of n copies of c>} */
static json_t *body_with_text(const char *field, const char *c, size_t n)
{
    char *s = repeat(c, n);
    json_t *j = json_pack("{s:s, s:s}", "name", "f", field, s);
    ck_assert_ptr_nonnull(j);
    free(s);
    return j;
}

/* A flag made through the public path: POST body, then flag_from_patch. */
static void make_flag(const char *body, int64_t now, struct vx_flag *f)
{
    struct vx_flag_patch p;
    expect_ok(body, true, &p);
    ck_assert_int_eq(flag_from_patch(&p, now, f), 0);
    flag_patch_free(&p);
}

/* Apply a PATCH body to f; returns flag_apply_patch's result. */
static int patch_flag(struct vx_flag *f, const char *body, int64_t now)
{
    struct vx_flag_patch p;
    expect_ok(body, false, &p);
    int rc = flag_apply_patch(f, &p, now);
    flag_patch_free(&p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* name                                                                 */
/* ------------------------------------------------------------------ */

static const char *const good_names[] = {
    "a",   "Z",  "0",  "9",  "new_order_flow", "checkout.v2", "Feature.flexibleRollout.10",
    "a-b", "a_", "a.", "a-", "0_._-",          "ABCxyz019",
};

START_TEST(test_name_valid)
{
    const char *n = good_names[_i];
    ck_assert_msg(flag_name_valid(n, strlen(n)), "refused %s", n);
}
END_TEST

static const char *const bad_names[] = {
    "",   "_a",       ".a",        "-a",          "a b",         "a/b", "a:b", "a+b",  "a\tb", " a",
    "a ", "\xc3\xbc", "a\xc3\xbc", "\303\274ber", "caf\xc3\xa9", "a,b", "a@b", "a\"b", "a\\b",
};

START_TEST(test_name_invalid)
{
    const char *n = bad_names[_i];
    ck_assert_msg(!flag_name_valid(n, strlen(n)), "accepted \"%s\"", n);
}
END_TEST

START_TEST(test_name_length)
{
    char *n100 = repeat("a", 100);
    char *n101 = repeat("a", 101);
    ck_assert(flag_name_valid(n100, 100));
    ck_assert(!flag_name_valid(n101, 101));
    /* length is the given one, not strlen */
    ck_assert(flag_name_valid(n101, 100));
    ck_assert(!flag_name_valid("a\0b", 3));
    ck_assert(!flag_name_valid("abc", 0));
    ck_assert(!flag_name_valid(NULL, 0));

    struct vx_flag_patch p;
    json_t *j = json_pack("{s:s}", "name", n100);
    expect_ok_json(j, true, &p);
    ck_assert_str_eq(p.name, n100);
    ck_assert_uint_eq(p.set, FLAG_SET_NAME);
    flag_patch_free(&p);
    json_decref(j);

    j = json_pack("{s:s}", "name", n101);
    expect_fail_json(j, true, VX_E_INVALID_VALUE, "name");
    json_decref(j);
    free(n100);
    free(n101);
}
END_TEST

START_TEST(test_name_in_body)
{
    expect_fail("{\"name\": \"_leading\"}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"name\": \"\"}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"name\": \"\\u00fcber\"}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"name\": 42}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"name\": null}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"name\": [\"a\"]}", true, VX_E_INVALID_VALUE, "name");
    expect_fail("{\"description\": \"no name\"}", true, VX_E_INVALID_VALUE, "name is required");
    expect_fail("{}", true, VX_E_INVALID_VALUE, "name is required");
    /* PATCH: name may not appear at all, even unchanged or valid. */
    expect_fail("{\"name\": \"new_ui\"}", false, VX_E_INVALID_VALUE, "name is immutable");
    expect_fail("{\"name\": \"x\", \"enabled\": true}", false, VX_E_INVALID_VALUE,
                "name is immutable");
}
END_TEST

/* ------------------------------------------------------------------ */
/* description and owner                                                */
/* ------------------------------------------------------------------ */

/* Limits count characters, not bytes: 1-, 2-, 3- and 4-byte characters. */
static const char *const chars[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x9a\x80"};

START_TEST(test_description_length)
{
    struct vx_flag_patch p;
    json_t *j = body_with_text("description", chars[_i], 1000);
    expect_ok_json(j, true, &p);
    ck_assert_uint_eq(strlen(p.description), 1000 * strlen(chars[_i]));
    ck_assert(p.set & FLAG_SET_DESCRIPTION);
    flag_patch_free(&p);
    json_decref(j);

    j = body_with_text("description", chars[_i], 1001);
    expect_fail_json(j, true, VX_E_INVALID_VALUE, "description must be at most 1000 characters");
    json_decref(j);
}
END_TEST

START_TEST(test_owner_length)
{
    struct vx_flag_patch p;
    json_t *j = body_with_text("owner", chars[_i], 200);
    expect_ok_json(j, true, &p);
    ck_assert_uint_eq(strlen(p.owner), 200 * strlen(chars[_i]));
    flag_patch_free(&p);
    json_decref(j);

    j = body_with_text("owner", chars[_i], 201);
    expect_fail_json(j, true, VX_E_INVALID_VALUE, "owner must be at most 200 characters");
    json_decref(j);
}
END_TEST

START_TEST(test_text_types)
{
    struct vx_flag_patch p;
    expect_fail("{\"name\": \"f\", \"description\": 5}", true, VX_E_INVALID_VALUE, "description");
    expect_fail("{\"name\": \"f\", \"description\": null}", true, VX_E_INVALID_VALUE,
                "description");
    expect_fail("{\"owner\": false}", false, VX_E_INVALID_VALUE, "owner");
    expect_fail("{\"owner\": {}}", false, VX_E_INVALID_VALUE, "owner");

    expect_ok("{\"description\": \"\", \"owner\": \"\"}", false, &p);
    ck_assert_str_eq(p.description, "");
    ck_assert_str_eq(p.owner, "");
    ck_assert_uint_eq(p.set, FLAG_SET_DESCRIPTION | FLAG_SET_OWNER);
    flag_patch_free(&p);
}
END_TEST

/* Strings with an embedded NUL ("\u0000") would be cut short by C code
 * downstream; they are refused wherever they appear. */
START_TEST(test_nul_in_strings)
{
    json_t *j;

    j = json_pack("{s:o}", "name", json_stringn("ab\0c", 4));
    expect_fail_json(j, true, VX_E_INVALID_VALUE, "name");
    json_decref(j);

    j = json_pack("{s:s, s:o}", "name", "f", "description", json_stringn("ab\0c", 4));
    expect_fail_json(j, true, VX_E_INVALID_VALUE, "description must not contain NUL");
    json_decref(j);

    j = json_pack("{s:o}", "owner", json_stringn("\0", 1));
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "owner must not contain NUL");
    json_decref(j);

    j = json_pack("{s:[s, o]}", "users", "alice", json_stringn("bob\0", 4));
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "users[1] must not contain NUL");
    json_decref(j);

    /* A key with a NUL is not "enabled". */
    j = json_object();
    json_object_setn_new(j, "enabled\0x", 9, json_true());
    expect_fail_json(j, false, VX_E_UNKNOWN_FIELD, "enabled");
    json_decref(j);

    /* The same bodies as JSON text, through jansson's parser. */
    json_error_t je;
    j = json_loads("{\"description\": \"a\\u0000b\"}", JSON_ALLOW_NUL, &je);
    ck_assert_ptr_nonnull(j);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "description");
    json_decref(j);
}
END_TEST

/* ------------------------------------------------------------------ */
/* enabled and percentage                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_enabled)
{
    struct vx_flag_patch p;
    expect_ok("{\"enabled\": true}", false, &p);
    ck_assert(p.enabled);
    ck_assert_uint_eq(p.set, FLAG_SET_ENABLED);
    flag_patch_free(&p);
    expect_ok("{\"enabled\": false}", false, &p);
    ck_assert(!p.enabled);
    ck_assert_uint_eq(p.set, FLAG_SET_ENABLED);
    flag_patch_free(&p);

    expect_fail("{\"enabled\": 1}", false, VX_E_INVALID_VALUE, "enabled");
    expect_fail("{\"enabled\": 0}", false, VX_E_INVALID_VALUE, "enabled");
    expect_fail("{\"enabled\": \"true\"}", false, VX_E_INVALID_VALUE, "enabled");
    expect_fail("{\"enabled\": null}", false, VX_E_INVALID_VALUE, "enabled");
}
END_TEST

START_TEST(test_percentage_valid)
{
    static const int values[] = {0, 1, 50, 99, 100};
    char body[64];
    struct vx_flag_patch p;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        snprintf(body, sizeof body, "{\"percentage\": %d}", values[i]);
        expect_ok(body, false, &p);
        ck_assert_int_eq(p.percentage, values[i]);
        ck_assert_uint_eq(p.set, FLAG_SET_PERCENTAGE);
        flag_patch_free(&p);
    }
}
END_TEST

static const char *const bad_percentages[] = {
    "-1",
    "101",
    "50.5",
    "50.0",
    "1e2",
    "0.0",
    "\"50\"",
    "true",
    "false",
    "null",
    "[50]",
    "{}",
    "4294967346",  /* 2^32 + 50: must not wrap to 50 */
    "-4294967246", /* -(2^32) + 50 */
    "9223372036854775807",
};

START_TEST(test_percentage_invalid)
{
    char body[80];
    snprintf(body, sizeof body, "{\"percentage\": %s}", bad_percentages[_i]);
    expect_fail(body, false, VX_E_INVALID_VALUE, "percentage must be an integer from 0 to 100");
}
END_TEST

/* 1e999 does not fit a double: jansson refuses the whole body (an
 * invalid_json answer upstream); should a parser ever let it through as a
 * real, validation refuses it as any other real. */
START_TEST(test_percentage_huge_real)
{
    json_error_t je;
    json_t *j = json_loads("{\"percentage\": 1e999}", 0, &je);
    if (j != NULL) {
        expect_fail_json(j, false, VX_E_INVALID_VALUE, "percentage");
        json_decref(j);
    }
    j = json_pack("{s:f}", "percentage", 1e300);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "percentage");
    json_decref(j);
}
END_TEST

/* ------------------------------------------------------------------ */
/* users                                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_users_sorted)
{
    struct vx_flag_patch p;
    expect_ok("{\"users\": [\"carol\", \"Bob\", \"alice\", \"\\u00fc\", \"bob\", \"al\"]}", false,
              &p);
    ck_assert_uint_eq(p.set, FLAG_SET_USERS);
    ck_assert_uint_eq(p.n_users, 6);
    /* bytewise: uppercase before lowercase, UTF-8 (>= 0x80) last */
    ck_assert_str_eq(p.users[0], "Bob");
    ck_assert_str_eq(p.users[1], "al");
    ck_assert_str_eq(p.users[2], "alice");
    ck_assert_str_eq(p.users[3], "bob");
    ck_assert_str_eq(p.users[4], "carol");
    ck_assert_str_eq(p.users[5], "\xc3\xbc");
    flag_patch_free(&p);

    expect_ok("{\"users\": []}", false, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_USERS);
    ck_assert_uint_eq(p.n_users, 0);
    flag_patch_free(&p);
}
END_TEST

START_TEST(test_users_invalid)
{
    expect_fail("{\"users\": [\"a\", \"b\", \"a\"]}", false, VX_E_INVALID_VALUE,
                "users must be distinct");
    expect_fail("{\"users\": [\"alice\", \"\"]}", false, VX_E_INVALID_VALUE, "users[1]");
    expect_fail("{\"users\": [\"alice\", 42]}", false, VX_E_INVALID_VALUE,
                "users[1] must be a string");
    expect_fail("{\"users\": [null]}", false, VX_E_INVALID_VALUE, "users[0] must be a string");
    expect_fail("{\"users\": [[\"a\"]]}", false, VX_E_INVALID_VALUE, "users[0]");
    expect_fail("{\"users\": \"alice\"}", false, VX_E_INVALID_VALUE, "users");
    expect_fail("{\"users\": {\"alice\": true}}", false, VX_E_INVALID_VALUE, "users");
    expect_fail("{\"users\": null}", false, VX_E_INVALID_VALUE, "users");
}
END_TEST

/* What the store applies to users read back from the table. */
START_TEST(test_users_normalize)
{
    const char *in[] = {"carol", "alice", "bob", "alice", "carol", "alice"};
    char *u[6];
    const char *dup = "x";

    for (size_t i = 0; i < 6; i++)
        u[i] = strdup(in[i]);
    ck_assert_uint_eq(flag_users_normalize(u, 6, &dup), 3);
    ck_assert_str_eq(dup, "alice");
    ck_assert_str_eq(u[0], "alice");
    ck_assert_str_eq(u[1], "bob");
    ck_assert_str_eq(u[2], "carol");
    for (size_t i = 3; i < 6; i++)
        ck_assert_ptr_null(u[i]);
    ck_assert_uint_eq(flag_users_normalize(u, 3, &dup), 3);
    ck_assert_ptr_null(dup);
    ck_assert_uint_eq(flag_users_normalize(u, 3, NULL), 3);
    ck_assert_uint_eq(flag_users_normalize(NULL, 0, &dup), 0);
    for (size_t i = 0; i < 3; i++)
        free(u[i]);
}
END_TEST

START_TEST(test_user_length)
{
    struct vx_flag_patch p;
    /* 256 bytes: ASCII, and 128 two-byte characters. */
    char *a256 = repeat("a", 256), *e128 = repeat("\xc3\xa9", 128);
    json_t *j = json_pack("{s:[s,s]}", "users", a256, e128);
    expect_ok_json(j, false, &p);
    ck_assert_uint_eq(p.n_users, 2);
    flag_patch_free(&p);
    json_decref(j);

    /* 257 bytes, whatever the characters. */
    char *a257 = repeat("a", 257);
    j = json_pack("{s:[s]}", "users", a257);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "users[0] must be 1 to 256 bytes");
    json_decref(j);
    char *mixed = malloc(258);
    ck_assert_ptr_nonnull(mixed);
    snprintf(mixed, 258, "a%s", e128); /* 1 + 256 bytes */
    j = json_pack("{s:[s]}", "users", mixed);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "users[0]");
    json_decref(j);
    free(a256);
    free(a257);
    free(e128);
    free(mixed);
}
END_TEST

static json_t *users_body(size_t n)
{
    json_t *a = json_array();
    char u[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(u, sizeof u, "user-%zu", i);
        json_array_append_new(a, json_string(u));
    }
    return json_pack("{s:o}", "users", a);
}

START_TEST(test_users_count)
{
    struct vx_flag_patch p;
    json_t *j = users_body(FLAG_USERS_MAX);
    expect_ok_json(j, false, &p);
    ck_assert_uint_eq(p.n_users, 10000);
    size_t unsorted = 0;
    for (size_t i = 1; i < p.n_users; i++)
        unsorted += strcmp(p.users[i - 1], p.users[i]) >= 0;
    ck_assert_uint_eq(unsorted, 0);
    flag_patch_free(&p);
    json_decref(j);

    j = users_body(FLAG_USERS_MAX + 1);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "users must have at most 10000 entries");
    json_decref(j);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The body as a whole                                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_unknown_fields)
{
    expect_fail("{\"name\": \"f\", \"color\": \"red\"}", true, VX_E_UNKNOWN_FIELD, "color");
    expect_fail("{\"name\": \"f\", \"revision\": 3}", true, VX_E_UNKNOWN_FIELD, "revision");
    expect_fail("{\"name\": \"f\", \"created_at\": \"x\"}", true, VX_E_UNKNOWN_FIELD, "created_at");
    expect_fail("{\"rolled_out_at\": null}", false, VX_E_UNKNOWN_FIELD, "rolled_out_at");
    expect_fail("{\"Enabled\": true}", false, VX_E_UNKNOWN_FIELD, "Enabled");
    expect_fail("{\"enabled \": true}", false, VX_E_UNKNOWN_FIELD, "enabled");
    /* An unknown field is reported whatever else is wrong and wherever it is. */
    expect_fail("{\"percentage\": 500, \"zzz\": 1}", false, VX_E_UNKNOWN_FIELD, "zzz");
    expect_fail("{\"zzz\": 1, \"percentage\": 500}", false, VX_E_UNKNOWN_FIELD, "zzz");
    expect_fail("{\"zzz\": 1}", true, VX_E_UNKNOWN_FIELD, "zzz");
    expect_fail("{\"name\": \"x\", \"zzz\": 1}", false, VX_E_UNKNOWN_FIELD, "zzz");
}
END_TEST

/* The first bad field in a fixed order is reported, whatever the key order. */
START_TEST(test_error_order)
{
    expect_fail("{\"users\": 5, \"description\": 5}", false, VX_E_INVALID_VALUE, "description");
    expect_fail("{\"description\": 5, \"users\": 5}", false, VX_E_INVALID_VALUE, "description");
    expect_fail("{\"percentage\": -1, \"enabled\": 1}", false, VX_E_INVALID_VALUE, "enabled");
}
END_TEST

START_TEST(test_not_an_object)
{
    static const char *const bodies[] = {"[]",  "[{\"name\": \"f\"}]", "\"f\"", "42", "null",
                                         "true"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        expect_fail(bodies[i], true, VX_E_BAD_REQUEST, "object");
        expect_fail(bodies[i], false, VX_E_BAD_REQUEST, "object");
    }
    expect_fail_json(NULL, true, VX_E_BAD_REQUEST, "object");
}
END_TEST

START_TEST(test_full_create_body)
{
    struct vx_flag_patch p;
    expect_ok("{\"name\": \"new_ui\", \"description\": \"New UI\", \"owner\": \"web team\","
              " \"enabled\": true, \"percentage\": 25, \"users\": [\"u2\", \"u1\"]}",
              true, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_NAME | FLAG_SET_DESCRIPTION | FLAG_SET_OWNER |
                                 FLAG_SET_ENABLED | FLAG_SET_PERCENTAGE | FLAG_SET_USERS);
    ck_assert_str_eq(p.name, "new_ui");
    ck_assert_str_eq(p.description, "New UI");
    ck_assert_str_eq(p.owner, "web team");
    ck_assert(p.enabled);
    ck_assert_int_eq(p.percentage, 25);
    ck_assert_uint_eq(p.n_users, 2);
    ck_assert_str_eq(p.users[0], "u1");
    ck_assert_str_eq(p.users[1], "u2");
    flag_patch_free(&p);
    assert_patch_empty(&p);
    flag_patch_free(&p); /* freeing twice is harmless */

    expect_ok("{}", false, &p);
    assert_patch_empty(&p);
    flag_patch_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Creating and patching                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_from_patch_defaults)
{
    struct vx_flag f;
    make_flag("{\"name\": \"bare\"}", T0, &f);
    ck_assert_str_eq(f.name, "bare");
    ck_assert_str_eq(f.description, "");
    ck_assert_str_eq(f.owner, "");
    ck_assert(!f.enabled);
    ck_assert_int_eq(f.percentage, 0);
    ck_assert_uint_eq(f.n_users, 0);
    ck_assert_int_eq(f.created_at, T0);
    ck_assert_int_eq(f.updated_at, T0);
    ck_assert_int_eq(f.rolled_out_at, 0);
    ck_assert_int_eq(f.revision, 1);
    flag_free(&f);

    /* A create patch needs a name. */
    struct vx_flag_patch p = {0};
    ck_assert_int_eq(flag_from_patch(&p, T0, &f), -1);
}
END_TEST

START_TEST(test_from_patch_rolled_out)
{
    struct vx_flag f;
    make_flag("{\"name\": \"r\", \"enabled\": true, \"percentage\": 100}", T0, &f);
    ck_assert_int_eq(f.rolled_out_at, T0);
    flag_free(&f);
    make_flag("{\"name\": \"r\", \"enabled\": false, \"percentage\": 100}", T0, &f);
    ck_assert_int_eq(f.rolled_out_at, 0);
    flag_free(&f);
    make_flag("{\"name\": \"r\", \"enabled\": true, \"percentage\": 99}", T0, &f);
    ck_assert_int_eq(f.rolled_out_at, 0);
    flag_free(&f);
}
END_TEST

/* flag_update_rolled_out() over every combination of before/after. */
START_TEST(test_rolled_out_rule)
{
    const int64_t then = T0 - 5 * DAY, now = T0;
    struct vx_flag rolled = {.enabled = true, .percentage = 100, .rolled_out_at = then};
    struct vx_flag off = {.enabled = false, .percentage = 100};
    struct vx_flag partial = {.enabled = true, .percentage = 50};
    struct vx_flag after;

    after = (struct vx_flag){.enabled = true, .percentage = 100, .rolled_out_at = 7};
    flag_update_rolled_out(&rolled, &after, now);
    ck_assert_int_eq(after.rolled_out_at, then); /* kept */

    after = (struct vx_flag){.enabled = true, .percentage = 100};
    flag_update_rolled_out(&off, &after, now);
    ck_assert_int_eq(after.rolled_out_at, now); /* became rolled out */
    flag_update_rolled_out(&partial, &after, now);
    ck_assert_int_eq(after.rolled_out_at, now);
    flag_update_rolled_out(NULL, &after, now);
    ck_assert_int_eq(after.rolled_out_at, now);

    after = (struct vx_flag){.enabled = false, .percentage = 100, .rolled_out_at = then};
    flag_update_rolled_out(&rolled, &after, now);
    ck_assert_int_eq(after.rolled_out_at, 0); /* switched off */
    after = (struct vx_flag){.enabled = true, .percentage = 99, .rolled_out_at = then};
    flag_update_rolled_out(&rolled, &after, now);
    ck_assert_int_eq(after.rolled_out_at, 0); /* lowered */
    after = (struct vx_flag){.enabled = true, .percentage = 0, .rolled_out_at = then};
    flag_update_rolled_out(NULL, &after, now);
    ck_assert_int_eq(after.rolled_out_at, 0);
}
END_TEST

/* The rule through a sequence of PATCHes. */
START_TEST(test_rolled_out_through_patches)
{
    struct vx_flag f;
    int64_t t = T0;
    make_flag("{\"name\": \"seq\", \"enabled\": true, \"percentage\": 100}", t, &f);
    ck_assert_int_eq(f.rolled_out_at, T0);

    ck_assert_int_eq(patch_flag(&f, "{\"description\": \"still rolled out\"}", t += DAY), 1);
    ck_assert_int_eq(f.rolled_out_at, T0);
    ck_assert_int_eq(patch_flag(&f, "{\"percentage\": 99}", t += DAY), 1);
    ck_assert_int_eq(f.rolled_out_at, 0);
    ck_assert_int_eq(patch_flag(&f, "{\"percentage\": 100}", t += DAY), 1);
    ck_assert_int_eq(f.rolled_out_at, t);
    int64_t since = t;
    ck_assert_int_eq(patch_flag(&f, "{\"enabled\": false}", t += DAY), 1);
    ck_assert_int_eq(f.rolled_out_at, 0);
    ck_assert_int_eq(patch_flag(&f, "{\"enabled\": true}", t += DAY), 1);
    ck_assert_int_eq(f.rolled_out_at, t);
    ck_assert_int_ne(f.rolled_out_at, since);
    ck_assert_int_eq(f.revision, 6);
    flag_free(&f);
}
END_TEST

START_TEST(test_apply_patch_changes)
{
    struct vx_flag f;
    make_flag("{\"name\": \"p\", \"owner\": \"ann\", \"users\": [\"b\", \"a\"]}", T0, &f);

    ck_assert_int_eq(patch_flag(&f,
                                "{\"description\": \"d\", \"owner\": \"bo\", \"enabled\": true,"
                                " \"percentage\": 30, \"users\": [\"z\"]}",
                                T0 + SEC),
                     1);
    ck_assert_str_eq(f.name, "p");
    ck_assert_str_eq(f.description, "d");
    ck_assert_str_eq(f.owner, "bo");
    ck_assert(f.enabled);
    ck_assert_int_eq(f.percentage, 30);
    ck_assert_uint_eq(f.n_users, 1);
    ck_assert_str_eq(f.users[0], "z");
    ck_assert_int_eq(f.revision, 2);
    ck_assert_int_eq(f.created_at, T0);
    ck_assert_int_eq(f.updated_at, T0 + SEC);

    /* Fields not in the patch stay. */
    ck_assert_int_eq(patch_flag(&f, "{\"users\": []}", T0 + 2 * SEC), 1);
    ck_assert_uint_eq(f.n_users, 0);
    ck_assert_str_eq(f.owner, "bo");
    ck_assert_int_eq(f.percentage, 30);
    ck_assert_int_eq(f.revision, 3);
    flag_free(&f);
}
END_TEST

/* A patch that changes nothing returns 0 and leaves the flag untouched:
 * no new revision, no new updated_at. */
START_TEST(test_apply_patch_noop)
{
    struct vx_flag f;
    make_flag("{\"name\": \"n\", \"description\": \"d\", \"owner\": \"o\", \"enabled\": true,"
              " \"percentage\": 100, \"users\": [\"a\", \"b\"]}",
              T0, &f);
    static const char *const same[] = {
        "{}",
        "{\"description\": \"d\"}",
        "{\"owner\": \"o\"}",
        "{\"enabled\": true}",
        "{\"percentage\": 100}",
        "{\"users\": [\"b\", \"a\"]}", /* same set, other order */
        ("{\"description\": \"d\", \"owner\": \"o\", \"enabled\": true, \"percentage\": 100,"
         " \"users\": [\"a\", \"b\"]}"),
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        ck_assert_msg(patch_flag(&f, same[i], T0 + DAY) == 0, "%s changed the flag", same[i]);
        ck_assert_int_eq(f.revision, 1);
        ck_assert_int_eq(f.updated_at, T0);
        ck_assert_int_eq(f.rolled_out_at, T0);
    }
    /* Users that differ only in count or content do change it. */
    ck_assert_int_eq(patch_flag(&f, "{\"users\": [\"a\"]}", T0 + DAY), 1);
    ck_assert_int_eq(patch_flag(&f, "{\"users\": [\"c\"]}", T0 + DAY), 1);
    ck_assert_int_eq(f.revision, 3);
    flag_free(&f);
}
END_TEST

START_TEST(test_copy)
{
    struct vx_flag f, c;
    make_flag("{\"name\": \"c\", \"description\": \"d\", \"users\": [\"x\", \"y\"]}", T0, &f);
    ck_assert_int_eq(flag_copy(&f, &c), 0);
    ck_assert_ptr_ne(c.name, f.name);
    ck_assert_ptr_ne(c.users, f.users);
    ck_assert_ptr_ne(c.users[0], f.users[0]);
    ck_assert_str_eq(c.name, "c");
    ck_assert_str_eq(c.description, "d");
    ck_assert_uint_eq(c.n_users, 2);
    ck_assert_str_eq(c.users[1], "y");
    ck_assert_int_eq(c.created_at, T0);
    flag_free(&f); /* the copy outlives the original */
    ck_assert_str_eq(c.users[0], "x");
    flag_free(&c);
    ck_assert_ptr_null(c.name);
}
END_TEST

START_TEST(test_has_user)
{
    struct vx_flag f;
    make_flag("{\"name\": \"h\", \"users\": [\"m\", \"a\", \"z\", \"mm\", \"\\u00fc\"]}", T0, &f);
    ck_assert(flag_has_user(&f, "a", 1));
    ck_assert(flag_has_user(&f, "m", 1));
    ck_assert(flag_has_user(&f, "mm", 2));
    ck_assert(flag_has_user(&f, "z", 1));
    ck_assert(flag_has_user(&f, "\xc3\xbc", 2));
    ck_assert(!flag_has_user(&f, "", 0));
    ck_assert(!flag_has_user(&f, "b", 1));
    ck_assert(!flag_has_user(&f, "mmm", 3));
    ck_assert(!flag_has_user(&f, "\xc3", 1));
    ck_assert(!flag_has_user(&f, "m\0", 2)); /* length counts */
    flag_free(&f);

    struct vx_flag empty = {0};
    ck_assert(!flag_has_user(&empty, "a", 1));
}
END_TEST

/* ------------------------------------------------------------------ */
/* JSON form                                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_to_json_exact)
{
    struct vx_flag f;
    make_flag("{\"name\": \"checkout.v2\", \"description\": \"caf\\u00e9 \\\"q\\\"\","
              " \"owner\": \"pay\", \"enabled\": true, \"percentage\": 100,"
              " \"users\": [\"u2\", \"u1\"]}",
              T0, &f);
    ck_assert_int_eq(patch_flag(&f, "{\"owner\": \"payments\"}", T0 + 1500), 1);

    json_t *j = flag_to_json(&f);
    ck_assert_ptr_nonnull(j);
    char *s = json_dumps(j, JSON_COMPACT);
    ck_assert_str_eq(s, "{\"name\":\"checkout.v2\",\"description\":\"caf\xc3\xa9 \\\"q\\\"\","
                        "\"owner\":\"payments\",\"enabled\":true,\"percentage\":100,"
                        "\"users\":[\"u1\",\"u2\"],\"segments\":[],"
                        "\"created_at\":\"2026-11-26T06:11:39.123Z\","
                        "\"updated_at\":\"2026-11-26T06:11:39.124Z\","
                        "\"rolled_out_at\":\"2026-11-26T06:11:39.123Z\",\"revision\":2}");
    free(s);
    json_decref(j);

    /* rolled_out_at null, empty users */
    ck_assert_int_eq(patch_flag(&f, "{\"enabled\": false, \"users\": []}", T0 + 2000), 1);
    j = flag_to_json(&f);
    s = json_dumps(j, JSON_COMPACT);
    ck_assert_str_eq(s, "{\"name\":\"checkout.v2\",\"description\":\"caf\xc3\xa9 \\\"q\\\"\","
                        "\"owner\":\"payments\",\"enabled\":false,\"percentage\":100,"
                        "\"users\":[],\"segments\":[],"
                        "\"created_at\":\"2026-11-26T06:11:39.123Z\","
                        "\"updated_at\":\"2026-11-26T06:11:39.125Z\","
                        "\"rolled_out_at\":null,\"revision\":3}");
    free(s);
    json_decref(j);
    flag_free(&f);
}
END_TEST

static void assert_flags_equal(const struct vx_flag *a, const struct vx_flag *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->description, b->description);
    ck_assert_str_eq(a->owner, b->owner);
    ck_assert_int_eq(a->enabled, b->enabled);
    ck_assert_int_eq(a->percentage, b->percentage);
    ck_assert_uint_eq(a->n_users, b->n_users);
    for (size_t i = 0; i < a->n_users; i++)
        ck_assert_str_eq(a->users[i], b->users[i]);
    ck_assert_int_eq(a->created_at, b->created_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
    ck_assert_int_eq(a->rolled_out_at, b->rolled_out_at);
    ck_assert_int_eq(a->revision, b->revision);
}

START_TEST(test_json_round_trip)
{
    static const char *const bodies[] = {
        "{\"name\": \"a\"}",
        ("{\"name\": \"b\", \"enabled\": true, \"percentage\": 100, \"users\": [\"x\", "
         "\"\\u00fc\"],"
         " \"description\": \"\\ud83d\\ude80 launch\", \"owner\": \"\\u00e9quipe\"}"),
        "{\"name\": \"c\", \"enabled\": true, \"percentage\": 7}",
    };
    struct vx_flag f, g;
    struct vx_error err = {0};
    make_flag(bodies[_i], T0, &f);
    ck_assert_int_eq(patch_flag(&f, "{\"owner\": \"someone else\"}", T0 + 3 * DAY + 7000), 1);

    json_t *j = flag_to_json(&f);
    ck_assert_msg(flag_from_json(j, &g, &err) == 0, "%s", err.message);
    assert_flags_equal(&f, &g);
    json_t *j2 = flag_to_json(&g);
    ck_assert(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    flag_free(&f);
    flag_free(&g);
}
END_TEST

START_TEST(test_from_json_lenient_and_strict)
{
    struct vx_flag f;
    struct vx_error err = {0};

    /* Admin extras and unknown fields are ignored; optional fields default. */
    json_t *j = parse("{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39.123Z\","
                      " \"updated_at\": \"2026-11-27T06:11:39.123Z\", \"revision\": 4,"
                      " \"age_days\": 3, \"stale\": [], \"future\": {}}");
    ck_assert_int_eq(flag_from_json(j, &f, &err), 0);
    ck_assert_str_eq(f.name, "x");
    ck_assert_str_eq(f.description, "");
    ck_assert_str_eq(f.owner, "");
    ck_assert(!f.enabled);
    ck_assert_int_eq(f.percentage, 0);
    ck_assert_int_eq(f.created_at, T0);
    ck_assert_int_eq(f.updated_at, T0 + DAY);
    ck_assert_int_eq(f.rolled_out_at, 0);
    ck_assert_int_eq(f.revision, 4);
    flag_free(&f);
    json_decref(j);

    static const struct {
        const char *json;
        const char *part;
    } bad[] = {
        {"[]", "object"},
        {"{\"created_at\": \"2026-11-26T06:11:39Z\", \"updated_at\": \"2026-11-26T06:11:39Z\","
         " \"revision\": 1}",
         "name"},
        {"{\"name\": \"_x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\", \"revision\": 1}",
         "name"},
        {"{\"name\": \"x\", \"updated_at\": \"2026-11-26T06:11:39Z\", \"revision\": 1}",
         "created_at"},
        {"{\"name\": \"x\", \"created_at\": \"yesterday\", \"updated_at\": "
         "\"2026-11-26T06:11:39Z\", \"revision\": 1}",
         "created_at"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\", \"revision\": 1}",
         "updated_at"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\", \"rolled_out_at\": 5, \"revision\": 1}",
         "rolled_out_at"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\"}",
         "revision"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\", \"revision\": 0}",
         "revision"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\", \"revision\": 1, \"percentage\": 101}",
         "percentage"},
        {"{\"name\": \"x\", \"created_at\": \"2026-11-26T06:11:39Z\","
         " \"updated_at\": \"2026-11-26T06:11:39Z\", \"revision\": 1, \"users\": [\"a\", \"a\"]}",
         "users"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i].json);
        memset(&err, 0, sizeof err);
        ck_assert_msg(flag_from_json(j, &f, &err) == -1, "accepted %s", bad[i].json);
        ck_assert_str_eq(err.code, VX_E_INVALID_VALUE);
        ck_assert_msg(strstr(err.message, bad[i].part) != NULL, "\"%s\" lacks \"%s\"", err.message,
                      bad[i].part);
        ck_assert_ptr_null(f.name);
        ck_assert_ptr_null(f.users);
        json_decref(j);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Age and staleness                                                    */
/* ------------------------------------------------------------------ */

/* Reasons as one comma-separated string, for easy comparison. */
static char *reasons(const struct vx_flag *f, int64_t now, int days, int rolled_out_days)
{
    static char buf[256];
    json_t *a = flag_stale_reasons(f, now, days, rolled_out_days);
    ck_assert_ptr_nonnull(a);
    ck_assert(json_is_array(a));
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (i > 0)
            strcat(buf, ",");
        strcat(buf, json_string_value(json_array_get(a, i)));
    }
    json_decref(a);
    return buf;
}

START_TEST(test_stale_age_boundary)
{
    struct vx_flag f = {.name = "s", .created_at = T0};
    int64_t limit = T0 + 30 * DAY;

    ck_assert_str_eq(reasons(&f, limit, 30, 14), ""); /* exactly 30 days: not older */
    ck_assert_str_eq(reasons(&f, limit + 1, 30, 14), "older_than_30_days");
    ck_assert_str_eq(reasons(&f, limit + SEC, 30, 14), "older_than_30_days");
    ck_assert_str_eq(reasons(&f, limit + DAY, 30, 14), "older_than_30_days");
    ck_assert_str_eq(reasons(&f, limit - SEC, 30, 14), "");
    ck_assert_str_eq(reasons(&f, limit - DAY, 30, 14), "");
    ck_assert_str_eq(reasons(&f, T0 - DAY, 30, 14), ""); /* created in the future */

    /* Other thresholds name themselves. */
    ck_assert_str_eq(reasons(&f, T0 + 7 * DAY + SEC, 7, 14), "older_than_7_days");
    ck_assert_str_eq(reasons(&f, T0 + SEC, 0, 14), "older_than_0_days");
    ck_assert_str_eq(reasons(&f, T0, 0, 14), "");
    /* Negative means the default (30). */
    ck_assert_str_eq(reasons(&f, limit + SEC, -1, -1), "older_than_30_days");
    ck_assert_str_eq(reasons(&f, limit - SEC, -1, -1), "");
    /* A threshold beyond int64 microseconds never overflows into "stale". */
    ck_assert_str_eq(reasons(&f, limit + 1000 * DAY, INT_MAX, INT_MAX), "");
}
END_TEST

START_TEST(test_stale_rolled_out_boundary)
{
    int64_t since = T0 + 2 * DAY;
    struct vx_flag f = {
        .name = "r", .enabled = true, .percentage = 100, .created_at = T0, .rolled_out_at = since};
    int64_t limit = since + 14 * DAY;

    ck_assert_str_eq(reasons(&f, limit, 30, 14), "");
    ck_assert_str_eq(reasons(&f, limit + 1, 30, 14), "rolled_out_14_days");
    ck_assert_str_eq(reasons(&f, limit + SEC, 30, 14), "rolled_out_14_days");
    ck_assert_str_eq(reasons(&f, limit + DAY, 30, 14), "rolled_out_14_days");
    ck_assert_str_eq(reasons(&f, limit - SEC, 30, 14), "");
    ck_assert_str_eq(reasons(&f, limit - DAY, 30, 14), "");
    ck_assert_str_eq(reasons(&f, since + 3 * DAY + SEC, 30, 3), "rolled_out_3_days");
    ck_assert_str_eq(reasons(&f, limit + SEC, -1, -1), "rolled_out_14_days");

    /* Both, in a fixed order. */
    ck_assert_str_eq(reasons(&f, T0 + 31 * DAY, 30, 14), "older_than_30_days,rolled_out_14_days");

    /* Not rolled out (any more): no rolled_out reason, whatever the stamp. */
    f.percentage = 99;
    ck_assert_str_eq(reasons(&f, limit + DAY, 30, 14), "");
    f.percentage = 100;
    f.enabled = false;
    ck_assert_str_eq(reasons(&f, limit + DAY, 30, 14), "");
    f.enabled = true;
    f.rolled_out_at = 0;
    ck_assert_str_eq(reasons(&f, limit + DAY, 30, 14), "");
}
END_TEST

START_TEST(test_age_days)
{
    struct vx_flag f = {.name = "a", .created_at = T0};
    ck_assert_int_eq(flag_age_days(&f, T0), 0);
    ck_assert_int_eq(flag_age_days(&f, T0 + DAY - 1), 0);
    ck_assert_int_eq(flag_age_days(&f, T0 + DAY), 1);
    ck_assert_int_eq(flag_age_days(&f, T0 + 30 * DAY - SEC), 29);
    ck_assert_int_eq(flag_age_days(&f, T0 + 30 * DAY), 30);
    ck_assert_int_eq(flag_age_days(&f, T0 + 400 * DAY + 5 * SEC), 400);
    ck_assert_int_eq(flag_age_days(&f, T0 - 3 * DAY), 0); /* never negative */
}
END_TEST

START_TEST(test_admin_json)
{
    struct vx_flag f;
    make_flag("{\"name\": \"adm\", \"enabled\": true, \"percentage\": 100}", T0, &f);
    json_t *j = flag_to_admin_json(&f, T0 + 20 * DAY, -1, -1);
    ck_assert_ptr_nonnull(j);

    static const char *const keys[] = {
        "name",       "description", "owner",         "enabled",  "percentage", "users", "segments",
        "created_at", "updated_at",  "rolled_out_at", "revision", "age_days",   "stale"};
    ck_assert_uint_eq(json_object_size(j), sizeof keys / sizeof keys[0]);
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        ck_assert_str_eq(key, keys[i]);
        i++;
    }
    ck_assert_int_eq(json_integer_value(json_object_get(j, "age_days")), 20);
    char *stale = json_dumps(json_object_get(j, "stale"), JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_str_eq(stale, "[\"rolled_out_14_days\"]");
    free(stale);
    json_decref(j);

    j = flag_to_admin_json(&f, T0 + 40 * DAY, 60, 50);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "age_days")), 40);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "stale")), 0);
    json_decref(j);
    flag_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Segments and environments                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_segments_field)
{
    struct vx_flag_patch p;

    expect_ok("{\"segments\": [\"beta\", \"Alpha.2\", \"a-b_c\"]}", false, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_SEGMENTS);
    ck_assert_uint_eq(p.n_segments, 3);
    ck_assert_str_eq(p.segments[0], "Alpha.2"); /* sorted, strcmp order */
    ck_assert_str_eq(p.segments[1], "a-b_c");
    ck_assert_str_eq(p.segments[2], "beta");
    ck_assert_ptr_null(p.users);
    flag_patch_free(&p);

    expect_ok("{\"name\": \"f\", \"segments\": []}", true, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_NAME | FLAG_SET_SEGMENTS);
    ck_assert_uint_eq(p.n_segments, 0);
    ck_assert_ptr_null(p.segments);
    flag_patch_free(&p);

    expect_fail("{\"segments\": [\"a\", \"b\", \"a\"]}", false, VX_E_INVALID_VALUE,
                "segments must be distinct: \"a\"");
    expect_fail("{\"segments\": [\"-a\"]}", false, VX_E_INVALID_VALUE,
                "\"-a\" is not a segment name");
    expect_fail("{\"segments\": [\"a b\"]}", false, VX_E_INVALID_VALUE, "is not a segment name");
    expect_fail("{\"segments\": [\"ok\", \"caf\\u00e9\"]}", false, VX_E_INVALID_VALUE,
                "is not a segment name");
    expect_fail("{\"segments\": [\"\"]}", false, VX_E_INVALID_VALUE, "segments[0]");
    expect_fail("{\"segments\": [\"a\", 5]}", false, VX_E_INVALID_VALUE, "segments[1]");
    expect_fail("{\"segments\": \"a\"}", false, VX_E_INVALID_VALUE, "segments must be an array");
    expect_fail("{\"segments\": null}", false, VX_E_INVALID_VALUE, "segments");

    /* A segment name obeys the flag name rule: 101 characters is too long. */
    char *longname = repeat("s", FLAG_NAME_MAX + 1);
    json_t *j = json_pack("{s:[s]}", "segments", longname);
    ck_assert_ptr_nonnull(j);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "is not a segment name");
    json_decref(j);
    longname[FLAG_NAME_MAX] = '\0';
    j = json_pack("{s:[s]}", "segments", longname);
    expect_ok_json(j, false, &p);
    ck_assert_str_eq(p.segments[0], longname);
    flag_patch_free(&p);
    json_decref(j);
    free(longname);
}
END_TEST

/* {"segments": [n distinct names]} */
static json_t *segments_body(size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "seg%zu", i);
        ck_assert_int_eq(json_array_append_new(a, json_string(name)), 0);
    }
    json_t *j = json_pack("{s:o}", "segments", a);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(test_segments_count)
{
    struct vx_flag_patch p;
    json_t *j = segments_body(FLAG_SEGMENTS_MAX);
    expect_ok_json(j, false, &p);
    ck_assert_uint_eq(p.n_segments, FLAG_SEGMENTS_MAX);
    flag_patch_free(&p);
    json_decref(j);

    j = segments_body(FLAG_SEGMENTS_MAX + 1);
    expect_fail_json(j, false, VX_E_INVALID_VALUE, "segments must have at most 100 entries");
    json_decref(j);

    /* The same limit inside an environment, named there. */
    json_t *e = segments_body(FLAG_SEGMENTS_MAX + 1);
    j = json_pack("{s:{s:O}}", "environments", "staging", e);
    expect_fail_json(j, false, VX_E_INVALID_VALUE,
                     "environments.staging.segments must have at most");
    json_decref(j);
    json_decref(e);
}
END_TEST

START_TEST(test_environments_valid)
{
    struct vx_flag_patch p;

    expect_ok("{\"description\": \"d\", \"enabled\": true, \"environments\": {"
              " \"staging\": {\"enabled\": false, \"percentage\": 30, \"users\": [\"u2\", \"u1\"],"
              "               \"segments\": [\"beta\"]},"
              " \"dev\": {\"percentage\": 100},"
              " \"qa-2\": {}}}",
              false, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_DESCRIPTION | FLAG_SET_ENABLED | FLAG_SET_ENVIRONMENTS);
    ck_assert_str_eq(p.description, "d");
    ck_assert(p.enabled);
    ck_assert_uint_eq(p.n_envs, 3);
    /* Sorted by environment name. */
    ck_assert_str_eq(p.envs[0].env, "dev");
    ck_assert_str_eq(p.envs[1].env, "qa-2");
    ck_assert_str_eq(p.envs[2].env, "staging");
    ck_assert_uint_eq(p.envs[0].state.set, FLAG_SET_PERCENTAGE);
    ck_assert_int_eq(p.envs[0].state.percentage, 100);
    ck_assert_uint_eq(p.envs[1].state.set, 0);
    const struct vx_flag_patch *st = &p.envs[2].state;
    ck_assert_uint_eq(st->set,
                      FLAG_SET_ENABLED | FLAG_SET_PERCENTAGE | FLAG_SET_USERS | FLAG_SET_SEGMENTS);
    ck_assert(!st->enabled);
    ck_assert_int_eq(st->percentage, 30);
    ck_assert_uint_eq(st->n_users, 2);
    ck_assert_str_eq(st->users[0], "u1");
    ck_assert_str_eq(st->users[1], "u2");
    ck_assert_uint_eq(st->n_segments, 1);
    ck_assert_str_eq(st->segments[0], "beta");
    ck_assert_uint_eq(st->n_envs, 0);
    flag_patch_free(&p);
    assert_patch_empty(&p);

    /* On create too; and an empty object names no environment. */
    expect_ok("{\"name\": \"f\", \"environments\": {}}", true, &p);
    ck_assert_uint_eq(p.set, FLAG_SET_NAME | FLAG_SET_ENVIRONMENTS);
    ck_assert_uint_eq(p.n_envs, 0);
    flag_patch_free(&p);
    expect_ok("{\"name\": \"f\", \"environments\": {\"production\": {\"enabled\": true}}}", true,
              &p);
    ck_assert_uint_eq(p.n_envs, 1);
    ck_assert(p.envs[0].state.enabled);
    ck_assert_uint_eq(p.envs[0].state.set, FLAG_SET_ENABLED);
    flag_patch_free(&p);
}
END_TEST

START_TEST(test_environments_invalid)
{
    /* Only state fields in an environment: anything else is unknown there,
     * and named with its path. */
    expect_fail("{\"environments\": {\"staging\": {\"color\": 1}}}", false, VX_E_UNKNOWN_FIELD,
                "\"environments.staging.color\"");
    expect_fail("{\"environments\": {\"staging\": {\"description\": \"x\"}}}", false,
                VX_E_UNKNOWN_FIELD, "\"environments.staging.description\"");
    expect_fail("{\"environments\": {\"staging\": {\"owner\": \"x\"}}}", false, VX_E_UNKNOWN_FIELD,
                "\"environments.staging.owner\"");
    expect_fail("{\"environments\": {\"staging\": {\"name\": \"x\"}}}", false, VX_E_UNKNOWN_FIELD,
                "\"environments.staging.name\"");
    expect_fail("{\"environments\": {\"staging\": {\"environments\": {}}}}", false,
                VX_E_UNKNOWN_FIELD, "\"environments.staging.environments\"");
    /* The unknown field is reported whatever else is wrong in there. */
    expect_fail("{\"environments\": {\"dev\": {\"percentage\": 500, \"zzz\": 1}}}", false,
                VX_E_UNKNOWN_FIELD, "\"environments.dev.zzz\"");
    expect_fail("{\"name\": \"f\", \"environments\": {\"dev\": {\"zzz\": 1}}}", true,
                VX_E_UNKNOWN_FIELD, "environments.dev.zzz");

    /* Bad values are named with their path. */
    expect_fail("{\"environments\": {\"staging\": {\"percentage\": 101}}}", false,
                VX_E_INVALID_VALUE, "environments.staging.percentage");
    expect_fail("{\"environments\": {\"staging\": {\"enabled\": 1}}}", false, VX_E_INVALID_VALUE,
                "environments.staging.enabled");
    expect_fail("{\"environments\": {\"staging\": {\"users\": [\"a\", \"a\"]}}}", false,
                VX_E_INVALID_VALUE, "environments.staging.users must be distinct");
    expect_fail("{\"environments\": {\"staging\": {\"segments\": [\"-x\"]}}}", false,
                VX_E_INVALID_VALUE, "environments.staging.segments");
    expect_fail("{\"environments\": {\"staging\": 5}}", false, VX_E_INVALID_VALUE,
                "environments.staging");
    expect_fail("{\"environments\": {\"staging\": []}}", false, VX_E_INVALID_VALUE,
                "must be a JSON object");
    expect_fail("{\"environments\": []}", false, VX_E_INVALID_VALUE, "environments must be");
    expect_fail("{\"environments\": null}", false, VX_E_INVALID_VALUE, "environments");

    /* Environment names: ^[a-z0-9][a-z0-9_-]{0,31}$ */
    static const char *const bad[] = {
        "Staging", "-dev", "_dev",       "",
        "a.b",     "a b",  "caf\\u00e9", "0123456789abcdef0123456789abcdefX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"environments\": {\"ok\": {}, \"%s\": {}}}", bad[i]);
        expect_fail(body, false, VX_E_INVALID_VALUE, "is not an environment name");
    }
    /* The message names the bad one. */
    expect_fail("{\"environments\": {\"Staging\": {}}}", false, VX_E_INVALID_VALUE,
                "environments: \"Staging\"");
    /* A NUL in the name (jansson allows it in keys). */
    json_t *j = json_object();
    ck_assert_int_eq(json_object_setn_new(j, "dev\0x", 5, json_object()), 0);
    json_t *body = json_pack("{s:o}", "environments", j);
    expect_fail_json(body, false, VX_E_INVALID_VALUE, "is not an environment name");
    json_decref(body);
}
END_TEST

START_TEST(test_env_name_valid)
{
    static const char *const good[] = {
        "a",    "0",      "production", "qa-2", "a_b",
        "a0-_", "9lives", "a-",         "z_",   "0123456789abcdef0123456789abcdef"}; /* 32 */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(env_name_valid(good[i], strlen(good[i])), "refused %s", good[i]);

    static const char *const bad[] = {"",          "-a",
                                      "_a",        "A",
                                      "prodA",     "prod.x",
                                      "a b",       "a/b",
                                      "a:b",       "\xc3\xa9",
                                      "a\xc3\xa9", " a",
                                      "a ",        "0123456789abcdef0123456789abcdef0"}; /* 33 */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!env_name_valid(bad[i], strlen(bad[i])), "accepted \"%s\"", bad[i]);

    ck_assert(!env_name_valid(NULL, 0));
    ck_assert(!env_name_valid(NULL, 3));
    ck_assert(!env_name_valid("a\0b", 3));    /* by length: the NUL is in it */
    ck_assert(env_name_valid("stagingX", 7)); /* only len bytes count */
    ck_assert(!env_name_valid("staging", 0));
}
END_TEST

/* The request's environment may be set at top level or in environments,
 * not both. */
START_TEST(test_patch_check_env)
{
    static const struct {
        const char *body;
        bool ok;
    } cases[] = {
        {"{\"enabled\": true, \"environments\": {\"production\": {\"percentage\": 5}}}", false},
        {"{\"users\": [], \"environments\": {\"dev\": {}, \"production\": {}}}", false},
        {"{\"segments\": [\"s\"], \"environments\": {\"production\": {}}}", false},
        {"{\"enabled\": true, \"environments\": {\"staging\": {\"percentage\": 5}}}", true},
        {"{\"percentage\": 5, \"environments\": {\"dev\": {}, \"prod\": {}}}", true},
        {"{\"environments\": {\"production\": {\"percentage\": 5}}}", true},
        {"{\"description\": \"d\", \"environments\": {\"production\": {}}}", true},
        {"{\"enabled\": true}", true},
        {"{}", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vx_flag_patch p;
        struct vx_error err = {0};
        expect_ok(cases[i].body, false, &p);
        int rc = flag_patch_check_env(&p, "production", &err);
        if (cases[i].ok) {
            ck_assert_msg(rc == 0, "%s refused: %s", cases[i].body, err.message);
        } else {
            ck_assert_msg(rc == -1, "%s accepted", cases[i].body);
            ck_assert_str_eq(err.code, VX_E_BAD_REQUEST);
            ck_assert_msg(strstr(err.message, "\"production\"") != NULL, "%s", err.message);
        }
        flag_patch_free(&p);
    }
}
END_TEST

START_TEST(test_patch_for_env)
{
    struct vx_flag_patch p;
    expect_ok("{\"description\": \"d\", \"owner\": \"o\", \"enabled\": true, \"percentage\": 10,"
              " \"users\": [\"t\"], \"environments\": {"
              " \"staging\": {\"percentage\": 50, \"segments\": [\"s\"]},"
              " \"dev\": {\"enabled\": false, \"users\": []}}}",
              false, &p);
    const struct vx_flag_patch *staging = &p.envs[1].state, *dev = &p.envs[0].state;
    ck_assert_str_eq(p.envs[1].env, "staging");

    /* The request's environment: the definition and the top-level state. */
    struct vx_flag_patch q = flag_patch_for_env(&p, "production", true);
    ck_assert_uint_eq(q.set, FLAG_SET_DESCRIPTION | FLAG_SET_OWNER | FLAG_SET_ENABLED |
                                 FLAG_SET_PERCENTAGE | FLAG_SET_USERS);
    ck_assert_ptr_eq(q.description, p.description); /* borrowed */
    ck_assert(q.enabled);
    ck_assert_int_eq(q.percentage, 10);
    ck_assert_ptr_eq(q.users, p.users);
    ck_assert_uint_eq(q.n_users, 1);
    ck_assert_ptr_null(q.envs);
    ck_assert_uint_eq(q.n_envs, 0);

    /* Another environment: the definition and its own bits only. */
    q = flag_patch_for_env(&p, "staging", false);
    ck_assert_uint_eq(q.set, FLAG_SET_DESCRIPTION | FLAG_SET_OWNER | FLAG_SET_PERCENTAGE |
                                 FLAG_SET_SEGMENTS);
    ck_assert_int_eq(q.percentage, 50);
    ck_assert_ptr_eq(q.segments, staging->segments);
    ck_assert_uint_eq(q.n_segments, 1);
    ck_assert_ptr_null(q.envs);

    q = flag_patch_for_env(&p, "dev", false);
    ck_assert_uint_eq(q.set,
                      FLAG_SET_DESCRIPTION | FLAG_SET_OWNER | FLAG_SET_ENABLED | FLAG_SET_USERS);
    ck_assert(!q.enabled);
    ck_assert_uint_eq(q.n_users, 0);
    ck_assert_ptr_eq(q.users, dev->users);

    /* An environment the patch does not name: the definition alone. */
    q = flag_patch_for_env(&p, "qa", false);
    ck_assert_uint_eq(q.set, FLAG_SET_DESCRIPTION | FLAG_SET_OWNER);
    /* Names compare whole: "stag" is not "staging". */
    q = flag_patch_for_env(&p, "stag", false);
    ck_assert_uint_eq(q.set, FLAG_SET_DESCRIPTION | FLAG_SET_OWNER);

    /* Applied to a flag, each environment's patch changes what it says. */
    struct vx_flag f;
    make_flag("{\"name\": \"f\", \"enabled\": true, \"percentage\": 20, \"users\": [\"x\"]}", T0,
              &f);
    q = flag_patch_for_env(&p, "staging", false);
    ck_assert_int_eq(flag_apply_patch(&f, &q, T0 + SEC), 1);
    ck_assert_str_eq(f.description, "d");
    ck_assert(f.enabled); /* not staging's to change */
    ck_assert_int_eq(f.percentage, 50);
    ck_assert_uint_eq(f.n_users, 1);
    ck_assert_uint_eq(f.n_segments, 1);
    ck_assert_str_eq(f.segments[0], "s");
    ck_assert_ptr_ne(f.segments, staging->segments); /* copied, not borrowed */
    flag_free(&f);
    flag_patch_free(&p);

    /* Per-environment bits win over the top-level ones for the same
     * environment (a patch flag_patch_check_env refuses, but
     * flag_patch_for_env still has a defined answer). */
    expect_ok("{\"enabled\": true, \"percentage\": 10,"
              " \"environments\": {\"production\": {\"percentage\": 70}}}",
              false, &p);
    q = flag_patch_for_env(&p, "production", true);
    ck_assert_uint_eq(q.set, FLAG_SET_ENABLED | FLAG_SET_PERCENTAGE);
    ck_assert(q.enabled);
    ck_assert_int_eq(q.percentage, 70);
    q = flag_patch_for_env(&p, "production", false);
    ck_assert_uint_eq(q.set, FLAG_SET_PERCENTAGE);
    ck_assert_int_eq(q.percentage, 70);
    flag_patch_free(&p);
}
END_TEST

START_TEST(test_segments_lifecycle)
{
    struct vx_flag f, c;
    make_flag("{\"name\": \"s\", \"segments\": [\"b\", \"a\"]}", T0, &f);
    ck_assert_uint_eq(f.n_segments, 2);
    ck_assert_str_eq(f.segments[0], "a");
    ck_assert_str_eq(f.segments[1], "b");
    ck_assert_int_eq(f.revision, 1);

    /* The same set in another order changes nothing. */
    ck_assert_int_eq(patch_flag(&f, "{\"segments\": [\"b\", \"a\"]}", T0 + SEC), 0);
    ck_assert_int_eq(f.revision, 1);
    ck_assert_int_eq(patch_flag(&f, "{\"segments\": [\"c\"]}", T0 + SEC), 1);
    ck_assert_int_eq(f.revision, 2);
    ck_assert_int_eq(f.updated_at, T0 + SEC);
    ck_assert_uint_eq(f.n_segments, 1);
    ck_assert_str_eq(f.segments[0], "c");

    ck_assert_int_eq(flag_copy(&f, &c), 0);
    ck_assert_ptr_ne(c.segments, f.segments);
    ck_assert_ptr_ne(c.segments[0], f.segments[0]);
    ck_assert_uint_eq(c.n_segments, 1);
    flag_free(&f);
    ck_assert_str_eq(c.segments[0], "c"); /* the copy outlives the original */

    ck_assert_int_eq(patch_flag(&c, "{\"segments\": []}", T0 + 2 * SEC), 1);
    ck_assert_uint_eq(c.n_segments, 0);
    ck_assert_ptr_null(c.segments);
    flag_free(&c);
}
END_TEST

/* Two flags made from the same body. */
static void make_pair(const char *body, struct vx_flag *a, struct vx_flag *b)
{
    make_flag(body, T0, a);
    make_flag(body, T0, b);
}

START_TEST(test_state_and_definition_equal)
{
    static const char *const base = "{\"name\": \"e\", \"description\": \"d\", \"owner\": \"o\","
                                    " \"enabled\": true, \"percentage\": 30,"
                                    " \"users\": [\"u1\", \"u2\"], \"segments\": [\"s1\"]}";
    /* Each changes one field of b: the state ones first. */
    static const struct {
        const char *patch;
        bool state;
    } changes[] = {
        {"{\"enabled\": false}", true},
        {"{\"percentage\": 31}", true},
        {"{\"users\": [\"u1\"]}", true},
        {"{\"users\": [\"u1\", \"u3\"]}", true},
        {"{\"segments\": []}", true},
        {"{\"segments\": [\"s2\"]}", true},
        {"{\"segments\": [\"s1\", \"s2\"]}", true},
        {"{\"description\": \"D\"}", false},
        {"{\"owner\": \"O\"}", false},
    };
    struct vx_flag a, b;

    make_pair(base, &a, &b);
    ck_assert(flag_state_equal(&a, &b));
    ck_assert(flag_definition_equal(&a, &b));
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        struct vx_flag c;
        ck_assert_int_eq(flag_copy(&b, &c), 0);
        ck_assert_int_eq(patch_flag(&c, changes[i].patch, T0 + SEC), 1);
        ck_assert_msg(flag_state_equal(&a, &c) == !changes[i].state, "%s: state_equal %d",
                      changes[i].patch, flag_state_equal(&a, &c));
        ck_assert_msg(flag_state_equal(&c, &a) == !changes[i].state, "%s (swapped)",
                      changes[i].patch);
        ck_assert_msg(flag_definition_equal(&a, &c) == changes[i].state, "%s: definition_equal %d",
                      changes[i].patch, flag_definition_equal(&a, &c));
        flag_free(&c);
    }
    /* rolled_out_at is state; revision, times and name are neither. */
    b.rolled_out_at = T0 + 5;
    ck_assert(!flag_state_equal(&a, &b));
    b.rolled_out_at = a.rolled_out_at;
    b.revision = 9;
    b.updated_at = T0 + DAY;
    ck_assert(flag_state_equal(&a, &b));
    ck_assert(flag_definition_equal(&a, &b));
    flag_free(&a);
    flag_free(&b);
}
END_TEST

START_TEST(test_state_assign_and_json)
{
    struct vx_flag dst, src;
    make_flag("{\"name\": \"dst\", \"description\": \"keep\", \"owner\": \"me\","
              " \"users\": [\"old\"], \"segments\": [\"olds\"]}",
              T0, &dst);
    make_flag("{\"name\": \"src\", \"description\": \"other\", \"enabled\": true,"
              " \"percentage\": 100, \"users\": [\"b\", \"a\"], \"segments\": [\"s\"]}",
              T0 + DAY, &src);
    ck_assert(!flag_state_equal(&dst, &src));

    ck_assert_int_eq(flag_state_assign(&dst, &src), 0);
    ck_assert(flag_state_equal(&dst, &src));
    ck_assert_str_eq(dst.name, "dst"); /* the definition stays */
    ck_assert_str_eq(dst.description, "keep");
    ck_assert_str_eq(dst.owner, "me");
    ck_assert_int_eq(dst.created_at, T0);
    ck_assert_int_eq(dst.revision, 1);
    ck_assert_int_eq(dst.rolled_out_at, T0 + DAY);
    ck_assert_ptr_ne(dst.users, src.users); /* a deep copy */
    ck_assert_ptr_ne(dst.users[0], src.users[0]);
    ck_assert_ptr_ne(dst.segments[0], src.segments[0]);

    json_t *j = flag_state_to_json(&dst);
    ck_assert_ptr_nonnull(j);
    char *s = json_dumps(j, JSON_COMPACT);
    ck_assert_str_eq(s, "{\"enabled\":true,\"percentage\":100,\"users\":[\"a\",\"b\"],"
                        "\"segments\":[\"s\"],\"rolled_out_at\":\"2026-11-27T06:11:39.123Z\"}");
    free(s);
    json_decref(j);
    flag_free(&src);

    /* Assigning an empty state empties users and segments. */
    struct vx_flag empty = {0};
    ck_assert_int_eq(flag_state_assign(&dst, &empty), 0);
    ck_assert_ptr_null(dst.users);
    ck_assert_ptr_null(dst.segments);
    j = flag_state_to_json(&dst);
    s = json_dumps(j, JSON_COMPACT);
    ck_assert_str_eq(s, "{\"enabled\":false,\"percentage\":0,\"users\":[],\"segments\":[],"
                        "\"rolled_out_at\":null}");
    free(s);
    json_decref(j);
    flag_free(&dst);
}
END_TEST

START_TEST(test_segments_json)
{
    struct vx_flag f, g;
    struct vx_error err = {0};
    make_flag("{\"name\": \"sj\", \"segments\": [\"zeta\", \"beta\"], \"users\": [\"u\"]}", T0, &f);

    json_t *j = flag_to_json(&f);
    ck_assert_ptr_nonnull(j);
    char *s = json_dumps(json_object_get(j, "segments"), JSON_COMPACT | JSON_ENCODE_ANY);
    ck_assert_str_eq(s, "[\"beta\",\"zeta\"]");
    free(s);
    /* Right after users. */
    void *it = json_object_iter_at(j, "users");
    ck_assert_str_eq(json_object_iter_key(json_object_iter_next(j, it)), "segments");

    ck_assert_msg(flag_from_json(j, &g, &err) == 0, "%s", err.message);
    ck_assert_uint_eq(g.n_segments, 2);
    ck_assert_str_eq(g.segments[0], "beta");
    ck_assert_str_eq(g.segments[1], "zeta");
    ck_assert(flag_state_equal(&f, &g));
    flag_free(&g);

    /* Given out of order in stored JSON, read sorted. */
    json_object_set_new(j, "segments", json_pack("[s,s,s]", "c", "a", "b"));
    ck_assert_int_eq(flag_from_json(j, &g, &err), 0);
    ck_assert_uint_eq(g.n_segments, 3);
    ck_assert_str_eq(g.segments[0], "a");
    ck_assert_str_eq(g.segments[2], "c");
    flag_free(&g);

    /* Absent (history from before segments): none. */
    json_object_del(j, "segments");
    ck_assert_int_eq(flag_from_json(j, &g, &err), 0);
    ck_assert_uint_eq(g.n_segments, 0);
    ck_assert_ptr_null(g.segments);
    flag_free(&g);

    /* Bad ones are refused, and leave g empty. */
    json_object_set_new(j, "segments", json_pack("[s,s]", "a", "a"));
    ck_assert_int_eq(flag_from_json(j, &g, &err), -1);
    ck_assert_str_eq(err.code, VX_E_INVALID_VALUE);
    ck_assert_ptr_nonnull(strstr(err.message, "segments"));
    ck_assert_ptr_null(g.name);
    ck_assert_ptr_null(g.segments);
    json_object_set_new(j, "segments", json_string("a"));
    ck_assert_int_eq(flag_from_json(j, &g, &err), -1);
    json_object_set_new(j, "segments", json_pack("[s]", "not a name"));
    ck_assert_int_eq(flag_from_json(j, &g, &err), -1);
    json_decref(j);
    flag_free(&f);
}
END_TEST

START_TEST(test_users_from_json)
{
    char **u;
    size_t n;
    struct vx_error err = {0};
    json_t *j = parse("[\"c\", \"a\", \"b\"]");

    ck_assert_int_eq(users_from_json(j, "members", 3, &u, &n, &err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(u[0], "a");
    ck_assert(users_contain(u, n, "b", 1));
    ck_assert(users_contain(u, n, "cd", 1));
    ck_assert(!users_contain(u, n, "cd", 2));
    ck_assert(!users_contain(u, n, "", 0));
    ck_assert(!users_contain(u, 0, "a", 1));
    char **copy;
    ck_assert_int_eq(users_copy(u, n, &copy), 0);
    ck_assert_ptr_ne(copy[1], u[1]);
    ck_assert_str_eq(copy[1], "b");
    users_free(copy, n);
    users_free(u, n);

    ck_assert_int_eq(users_from_json(j, "members", 2, &u, &n, &err), -1);
    ck_assert_str_eq(err.code, VX_E_INVALID_VALUE);
    ck_assert_ptr_nonnull(strstr(err.message, "members must have at most 2 entries"));
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(n, 0);
    json_decref(j);

    j = parse("[]");
    ck_assert_int_eq(users_from_json(j, "members", 3, &u, &n, &err), 0);
    ck_assert_ptr_null(u);
    ck_assert_uint_eq(n, 0);
    json_decref(j);
    ck_assert_int_eq(users_copy(NULL, 0, &copy), 0);
    ck_assert_ptr_null(copy);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("flag");

    TCase *tc = tcase_create("validation");
    tcase_add_loop_test(tc, test_name_valid, 0, N(good_names));
    tcase_add_loop_test(tc, test_name_invalid, 0, N(bad_names));
    tcase_add_test(tc, test_name_length);
    tcase_add_test(tc, test_name_in_body);
    tcase_add_loop_test(tc, test_description_length, 0, N(chars));
    tcase_add_loop_test(tc, test_owner_length, 0, N(chars));
    tcase_add_test(tc, test_text_types);
    tcase_add_test(tc, test_nul_in_strings);
    tcase_add_test(tc, test_enabled);
    tcase_add_test(tc, test_percentage_valid);
    tcase_add_loop_test(tc, test_percentage_invalid, 0, N(bad_percentages));
    tcase_add_test(tc, test_percentage_huge_real);
    tcase_add_test(tc, test_users_sorted);
    tcase_add_test(tc, test_users_invalid);
    tcase_add_test(tc, test_users_normalize);
    tcase_add_test(tc, test_user_length);
    tcase_add_test(tc, test_users_count);
    tcase_add_test(tc, test_unknown_fields);
    tcase_add_test(tc, test_error_order);
    tcase_add_test(tc, test_not_an_object);
    tcase_add_test(tc, test_full_create_body);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_from_patch_defaults);
    tcase_add_test(tc, test_from_patch_rolled_out);
    tcase_add_test(tc, test_rolled_out_rule);
    tcase_add_test(tc, test_rolled_out_through_patches);
    tcase_add_test(tc, test_apply_patch_changes);
    tcase_add_test(tc, test_apply_patch_noop);
    tcase_add_test(tc, test_copy);
    tcase_add_test(tc, test_has_user);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, test_to_json_exact);
    tcase_add_loop_test(tc, test_json_round_trip, 0, 3);
    tcase_add_test(tc, test_from_json_lenient_and_strict);
    suite_add_tcase(s, tc);

    tc = tcase_create("environments");
    tcase_add_test(tc, test_segments_field);
    tcase_add_test(tc, test_segments_count);
    tcase_add_test(tc, test_environments_valid);
    tcase_add_test(tc, test_environments_invalid);
    tcase_add_test(tc, test_env_name_valid);
    tcase_add_test(tc, test_patch_check_env);
    tcase_add_test(tc, test_patch_for_env);
    tcase_add_test(tc, test_segments_lifecycle);
    tcase_add_test(tc, test_state_and_definition_equal);
    tcase_add_test(tc, test_state_assign_and_json);
    tcase_add_test(tc, test_segments_json);
    tcase_add_test(tc, test_users_from_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("staleness");
    tcase_add_test(tc, test_stale_age_boundary);
    tcase_add_test(tc, test_stale_rolled_out_boundary);
    tcase_add_test(tc, test_age_days);
    tcase_add_test(tc, test_admin_json);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
