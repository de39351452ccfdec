/* unit.h -- what every unit test program shares: run one suite, exit with
 * its verdict. */
#ifndef VX_UNIT_H
#define VX_UNIT_H

#include <check.h>
#include <stdlib.h>

/* Run every test of s (Check forks one child per test) and free it.
 * Returns the process exit status: EXIT_SUCCESS when none failed. */
static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
