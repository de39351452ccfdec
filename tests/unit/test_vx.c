/* test_vx.c -- vx_fail(): the error helper. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "vx.h"
#include "unit.h"

START_TEST(test_fills_error)
{
    struct vx_error err = {0};
    ck_assert_int_eq(vx_fail(&err, VX_E_INVALID_VALUE, "%s must be %d", "x", 7), -1);
    ck_assert_ptr_eq(err.code, VX_E_INVALID_VALUE);
    ck_assert_str_eq(err.message, "x must be 7");
}
END_TEST

START_TEST(test_null_error)
{
    ck_assert_int_eq(vx_fail(NULL, VX_E_CONFLICT, "ignored %d", 1), -1);
}
END_TEST

/* A message cut by the buffer keeps only whole UTF-8 characters, so it
 * can still become a JSON string.  _i shifts the cut through every byte of
 * a 2-, 3- and 4-byte character. */
START_TEST(test_truncates_on_character_boundary)
{
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    char long_text[1200] = "";
    struct vx_error err;

    for (int i = 0; i < _i % 4; i++)
        strcat(long_text, "a");
    while (strlen(long_text) + 4 < sizeof long_text)
        strcat(long_text, chars[_i / 4]);
    vx_fail(&err, VX_E_BAD_REQUEST, "%s", long_text);
    ck_assert_uint_le(strlen(err.message), sizeof err.message - 1);
    ck_assert_uint_ge(strlen(err.message), sizeof err.message - 4);
    json_t *s = json_string(err.message);
    ck_assert_msg(s != NULL, "message is not valid UTF-8");
    json_decref(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fills_error);
    tcase_add_test(tc, test_null_error);
    tcase_add_loop_test(tc, test_truncates_on_character_boundary, 0, 12);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
