/* kg_test.h - a thin CUnit runner shared by the unit test executables. */
#ifndef KG_TEST_H
#define KG_TEST_H

#include <CUnit/CUnit.h>
#include <stddef.h>

struct kg_test_case {
    const char *name;
    void (*fn)(void);
};

#define KG_TEST(fn) { #fn, fn }

/*
 * Run `cases` as one CUnit suite named `suite` (verbose), print
 * "kgtest-summary: <suite> <passed> <failed>" and return the failure count,
 * which main returns as the exit status (capped at 100).
 */
int kg_test_run(const char *suite, const struct kg_test_case *cases, size_t count);

/* Directory of ../shared (from $KG_SHARED_DIR), never NULL. */
const char *kg_test_shared_dir(void);

#endif
