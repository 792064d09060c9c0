/*
 * kg_policy_decide.c - the decision function.
 *
 * Pure: a function of (policy, identity, operation, object owner) only. No
 * allocation, no I/O, no globals, so it can run on the event loop for every
 * batch item and be replayed exactly by `kmipgw policy explain`.
 *
 * Order of checks, each a distinct verdict so the audit log says *why*:
 *   1. the identity's OUs select exactly one group (default deny otherwise);
 *   2. the group may perform the operation;
 *   3. the target object, if any, is within the group's scope.
 */
#include <string.h>

#include "kg_policy.h"

struct kg_policy_decision kg_policy_match(const struct kg_policy *policy, const struct kg_identity *id)
{
    struct kg_policy_decision d = { .verdict = KG_POLICY_DENY_NO_OU, .group = NULL, .rule = "identity" };
    size_t usable_ous = 0;

    if (id == NULL || id->ous == NULL || id->ou_count == 0) {
        return d;
    }
    /*
     * Every OU of the certificate takes part, not only the first: which OU a
     * CA writes first is not something a policy should depend on. Because the
     * loader refuses two groups with one OU, "two different groups" can only
     * come from two different OUs.
     */
    for (size_t i = 0; i < id->ou_count; i++) {
        const char *ou = id->ous[i];

        /* An empty OU is no OU: it cannot name a group (the loader refuses empty ou). */
        if (ou == NULL || ou[0] == '\0') {
            continue;
        }
        usable_ous++;
        if (policy == NULL) {
            continue;
        }
        for (size_t g = 0; g < policy->group_count; g++) {
            const struct kg_policy_group *group = &policy->groups[g];

            /* Exact, byte-for-byte: no case folding, no Unicode normalisation. */
            if (group->ou == NULL || strcmp(group->ou, ou) != 0) {
                continue;
            }
            if (d.group != NULL && d.group != group) {
                d.verdict = KG_POLICY_DENY_AMBIGUOUS;
                d.group = NULL;
                return d;
            }
            d.group = group;
        }
    }
    if (usable_ous == 0) {
        d.verdict = KG_POLICY_DENY_NO_OU;
    } else if (d.group == NULL) {
        d.verdict = KG_POLICY_DENY_UNKNOWN_OU;
    } else {
        d.verdict = KG_POLICY_ALLOW;
    }
    return d;
}

bool kg_policy_in_scope(const struct kg_policy_group *group, const char *owner)
{
    if (group == NULL) {
        return false;
    }
    switch (group->scope) {
    case KG_SCOPE_ALL:
        return true;
    case KG_SCOPE_OWN:
        /* An object with no recorded owner belongs to no group: only `all` sees it. */
        return owner != NULL && group->name != NULL && strcmp(owner, group->name) == 0;
    default:
        return false;
    }
}

struct kg_policy_decision kg_policy_decide(const struct kg_policy *policy, const struct kg_identity *id,
                                           uint32_t operation, const char *object_owner)
{
    struct kg_policy_decision d = kg_policy_match(policy, id);

    if (d.verdict != KG_POLICY_ALLOW) {
        return d;
    }
    /* Codes past the mask (KMIP 2.x and vendor 0x8XXXXXXX) are never granted. */
    if (operation > KG_POLICY_MAX_OP || (d.group->operations & (UINT64_C(1) << operation)) == 0) {
        d.verdict = KG_POLICY_DENY_OPERATION;
        return d;
    }
    if (object_owner != NULL && !kg_policy_in_scope(d.group, object_owner)) {
        d.verdict = KG_POLICY_DENY_SCOPE;
        return d;
    }
    return d;
}

struct kg_policy_decision kg_policy_decide_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                   const struct kg_policy_request *req)
{
    return kg_policy_decide(policy, id, req->operation, req->object_owner);
}

const char *kg_policy_verdict_text(enum kg_policy_verdict verdict)
{
    switch (verdict) {
    case KG_POLICY_ALLOW:
        return "allow";
    case KG_POLICY_DENY_NO_OU:
        return "deny: no OU in certificate";
    case KG_POLICY_DENY_UNKNOWN_OU:
        return "deny: no group matches the certificate's OU";
    case KG_POLICY_DENY_AMBIGUOUS:
        return "deny: the certificate's OUs match more than one group";
    case KG_POLICY_DENY_OPERATION:
        return "deny: operation not allowed for the group";
    case KG_POLICY_DENY_SCOPE:
        return "deny: object belongs to a group outside the scope";
    default:
        return "deny: unknown verdict";
    }
}

const char *kg_policy_export_text(enum kg_export_mode mode)
{
    switch (mode) {
    case KG_EXPORT_WRAPPED:
        return "wrapped";
    case KG_EXPORT_PLAINTEXT:
        return "plaintext";
    case KG_EXPORT_NONE:
        return "none";
    default:
        return "unknown";
    }
}

const char *kg_policy_scope_text(enum kg_scope scope)
{
    switch (scope) {
    case KG_SCOPE_OWN:
        return "own";
    case KG_SCOPE_ALL:
        return "all";
    default:
        return "unknown";
    }
}
