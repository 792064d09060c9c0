/* kg_audit_test.c - not yet written. */
#include "kg_test.h"

static void test_placeholder(void) { CU_ASSERT(1); }

int main(void)
{
    static const struct kg_test_case cases[] = { KG_TEST(test_placeholder) };
    return kg_test_run("audit", cases, sizeof(cases) / sizeof(cases[0]));
}
