/* kg_test.c - the CUnit runner behind kg_test.h. */
#include "kg_test.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

int kg_test_run(const char *suite_name, const struct kg_test_case *cases, size_t count)
{
    CU_pSuite suite;
    unsigned run, failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: cannot initialise registry\n");
        return 1;
    }
    suite = CU_add_suite(suite_name, NULL, NULL);
    if (suite == NULL) {
        CU_cleanup_registry();
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        if (CU_add_test(suite, cases[i].name, cases[i].fn) == NULL) {
            CU_cleanup_registry();
            return 1;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    run = CU_get_number_of_tests_run();
    failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    printf("kgtest-summary: %s %u %u\n", suite_name, run - failed, failed);
    return failed > 100 ? 100 : (int)failed;
}

const char *kg_test_shared_dir(void)
{
    const char *dir = getenv("KG_SHARED_DIR");

    return dir != NULL ? dir : "../shared";
}
