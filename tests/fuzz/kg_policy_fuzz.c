/*
 * kg_policy_fuzz.c - fuzz target: the policy file parser and checker
 * (policy/kg_policy_load.c), through kg_policy_load_buffer only.
 *
 * Checked besides what the sanitizers see, from kg_policy.h:
 *  - success means a policy and no errors; failure means no policy and at
 *    least one error;
 *  - error messages are NUL-terminated, hold no control characters (they are
 *    printed to terminals and logs) and are sorted by position;
 *  - a loaded policy's groups have names of the documented alphabet and
 *    length, OUs (when set) without control characters, distinct names and
 *    distinct OUs.
 */
#include <stdbool.h>
#include <string.h>

#include "kg_fuzz.h"
#include "kg_policy.h"

#define KG_FUZZ_MAX_GROUP_NAME 64 /* kg_policy.h: "at most 64" */

static bool kg_fuzz_clean_text(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);

    if (end == NULL) {
        return false;
    }
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7F) {
            return false;
        }
    }
    return true;
}

static bool kg_fuzz_group_name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len < 1 || len > KG_FUZZ_MAX_GROUP_NAME) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.')) {
            return false;
        }
    }
    return true;
}

static void kg_fuzz_check_errors(const struct kg_policy_errors *errors)
{
    KG_FUZZ_CHECK(errors->count <= KG_POLICY_MAX_ERRORS);
    for (size_t i = 0; i < errors->count; i++) {
        const struct kg_policy_error *e = &errors->items[i];

        KG_FUZZ_CHECK(kg_fuzz_clean_text(e->message, sizeof(e->message)));
        KG_FUZZ_CHECK((e->line == 0) == (e->column == 0));
        if (i > 0) {
            const struct kg_policy_error *p = &errors->items[i - 1];

            KG_FUZZ_CHECK(p->line < e->line || (p->line == e->line && p->column <= e->column));
        }
    }
}

/*
 * Only what the loader documents about every group; the policy module grows
 * new keys, which this target leaves to the loader's own checks.
 */
static void kg_fuzz_check_policy(const struct kg_policy *policy)
{
    KG_FUZZ_CHECK(policy->group_count == 0 || policy->groups != NULL);
    for (size_t i = 0; i < policy->group_count; i++) {
        const struct kg_policy_group *g = &policy->groups[i];

        KG_FUZZ_CHECK(g->name != NULL && kg_fuzz_group_name_ok(g->name));
        /* NULL: a group reached only through no_ou / ambiguous. */
        KG_FUZZ_CHECK(g->ou == NULL || (g->ou[0] != '\0' && kg_fuzz_clean_text(g->ou, strlen(g->ou) + 1)));
        KG_FUZZ_CHECK((g->operations & 1u) == 0); /* code 0 is no operation */
        for (size_t j = 0; j < i; j++) {
            const struct kg_policy_group *h = &policy->groups[j];

            KG_FUZZ_CHECK(strcmp(h->name, g->name) != 0);
            KG_FUZZ_CHECK(h->ou == NULL || g->ou == NULL || strcmp(h->ou, g->ou) != 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kg_policy_errors errors;
    struct kg_policy *policy = NULL;
    int rc;

    rc = kg_policy_load_buffer((const char *)data, size, "fuzz.yaml", &policy, &errors);
    kg_fuzz_check_errors(&errors);
    if (rc == 0) {
        KG_FUZZ_CHECK(policy != NULL && errors.count == 0 && errors.overflow == 0);
        kg_fuzz_check_policy(policy);
    } else {
        KG_FUZZ_CHECK(rc == -1 && policy == NULL && errors.count >= 1);
    }
    kg_policy_free(policy);
    return 0;
}
