/* test_timeutil.c -- RFC 3339 formatting and parsing, and the clocks.
 *
 * Expected microsecond values were computed independently (Python's
 * datetime), not by this code. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "unit.h"

#define T_2026 INT64_C(1795673499123000) /* 2026-11-26T06:11:39.123Z */

static const struct {
    int64_t us;
    const char *text;
} formats[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {T_2026, "2026-11-26T06:11:39.123Z"},
    {T_2026 + 999, "2026-11-26T06:11:39.123Z"}, /* truncated, not rounded */
    {INT64_C(951868799999999), "2000-02-29T23:59:59.999Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-1000, "1969-12-31T23:59:59.999Z"},
    {INT64_C(-62135596800000000), "0001-01-01T00:00:00.000Z"},
    {INT64_C(253402300799999000), "9999-12-31T23:59:59.999Z"},
};

START_TEST(test_format)
{
    char buf[32];
    ck_assert_ptr_eq(time_format_rfc3339(formats[_i].us, buf, sizeof buf), buf);
    ck_assert_str_eq(buf, formats[_i].text);
}
END_TEST

START_TEST(test_format_small_buffer)
{
    char buf[11];
    memset(buf, 'x', sizeof buf);
    time_format_rfc3339(T_2026, buf, sizeof buf);
    ck_assert_str_eq(buf, "2026-11-26");
}
END_TEST

static const struct {
    const char *text;
    int64_t us;
} parses[] = {
    {"2026-11-26T06:11:39.123Z", T_2026},
    {"2026-11-26t06:11:39.123z", T_2026},
    {"2026-11-26 06:11:39.123Z", T_2026},
    {"2026-11-26T08:11:39.123+02:00", T_2026},
    {"2026-11-25T23:41:39.123-06:30", T_2026},
    {"2026-11-26T06:11:39.123+00:00", T_2026},
    {"2026-11-26T06:11:39.123-00:00", T_2026},
    {"2026-11-26 06:11:39.123456+00", T_2026 + 456}, /* PostgreSQL's own output */
    {"2026-11-26T07:11:39.123+01", T_2026},
    {"2026-11-26T06:11:39Z", T_2026 - 123000},
    {"2026-11-26T06:11:39.1Z", T_2026 - 23000},
    {"2026-11-26T06:11:39.123456789Z", T_2026 + 456}, /* past µs: truncated */
    {"2000-02-29T23:59:59.999999Z", INT64_C(951868799999999)},
    {"1969-12-31T23:59:59.999Z", -1000},
    {"1969-12-31T23:59:59Z", -1000000},
    {"1970-01-01T00:00:00Z", 0},
    {"0001-01-01T00:00:00Z", INT64_C(-62135596800000000)},
    {"9999-12-31T23:59:59.999Z", INT64_C(253402300799999000)},
    {"2016-12-31T23:59:60Z", INT64_C(1483228800000000)}, /* leap second */
};

START_TEST(test_parse)
{
    int64_t us = 42;
    ck_assert_int_eq(time_parse_rfc3339(parses[_i].text, &us), 0);
    ck_assert_int_eq(us, parses[_i].us);
}
END_TEST

static const char *const bad[] = {
    "",
    "2026-11-26",
    "2026-11-26T06:11:39",       /* no offset */
    "2026-11-26T06:11Z",         /* no seconds */
    "2026-11-26X06:11:39Z",      /* bad separator */
    "2026-13-01T00:00:00Z",      /* month 13 */
    "2026-00-01T00:00:00Z",      /* month 0 */
    "2026-11-00T00:00:00Z",      /* day 0 */
    "2026-04-31T00:00:00Z",      /* April has 30 days */
    "2026-02-29T00:00:00Z",      /* not a leap year */
    "1900-02-29T00:00:00Z",      /* century, not a leap year */
    "2026-11-26T24:00:00Z",      /* hour 24 */
    "2026-11-26T06:60:00Z",      /* minute 60 */
    "2026-11-26T06:11:61Z",      /* second 61 */
    "2026-11-26T06:11:39.Z",     /* empty fraction */
    "2026-11-26T06:11:39.123ZZ", /* trailing garbage */
    "2026-11-26T06:11:39.123Z ", /* trailing space */
    " 2026-11-26T06:11:39.123Z", /* leading space */
    "2026-1-26T06:11:39Z",       /* one-digit month */
    "226-11-26T06:11:39Z",       /* three-digit year */
    "2026-11-26T06:11:39+2:00",  /* one-digit offset hour */
    "2026-11-26T06:11:39+24:00", /* offset hour 24 */
    "2026-11-26T06:11:39+02:60", /* offset minute 60 */
    "2026-11-26T06:11:39+02:3",  /* one-digit offset minute */
    "2026-11-26T06:11:39+",      /* sign only */
    "+2026-11-26T06:11:39Z",
    "2026-11-26T06:11:39.123", /* fraction, no offset */
};

START_TEST(test_parse_rejects)
{
    int64_t us = 42;
    ck_assert_msg(time_parse_rfc3339(bad[_i], &us) == -1, "accepted \"%s\"", bad[_i]);
}
END_TEST

START_TEST(test_parse_null)
{
    int64_t us = 42;
    ck_assert_int_eq(time_parse_rfc3339(NULL, &us), -1);
}
END_TEST

/* Format then parse returns the same millisecond, across a wide range of
 * times before and after the epoch. */
START_TEST(test_round_trip)
{
    char buf[32];
    int wrong = 0;
    int64_t step = INT64_C(3987654321) * 1000;                      /* ~46 days plus odd ms */
    for (int64_t us = -1000 * step; us < 1000 * step; us += step) { /* 1844..2096 */
        int64_t back = 0;
        time_format_rfc3339(us, buf, sizeof buf);
        wrong += time_parse_rfc3339(buf, &back) != 0 || back != us;
    }
    ck_assert_int_eq(wrong, 0);
}
END_TEST

START_TEST(test_clocks)
{
    int64_t now = time_now_us();
    int64_t y2020 = INT64_C(1577836800) * VX_USEC_PER_SEC;
    int64_t y2100 = INT64_C(4102444800) * VX_USEC_PER_SEC;
    ck_assert_int_gt(now, y2020);
    ck_assert_int_lt(now, y2100);

    int64_t a = time_monotonic_us();
    int64_t b = time_monotonic_us();
    ck_assert_int_ge(b, a);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_format, 0, N(formats));
    tcase_add_test(tc, test_format_small_buffer);
    tcase_add_loop_test(tc, test_parse, 0, N(parses));
    tcase_add_loop_test(tc, test_parse_rejects, 0, N(bad));
    tcase_add_test(tc, test_parse_null);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_clocks);
    suite_add_tcase(s, tc);

    return unit_run(s);
}
