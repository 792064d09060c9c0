/*
 * kg_policy_decide.c - the decision function.
 *
 * A function of (policy, identity, request) only: no I/O, no globals, no
 * allocation except inside a credential check, so it can run for every
 * batch item and be replayed exactly by `kmipgw policy explain`. The only
 * state it touches is the credential cache (kg_policy_state.c), which
 * changes the cost of an answer, never the answer.
 *
 * Order of checks, each a distinct verdict and rule so the audit log says
 * *why* (kg_policy.h lists them): identity, operations, scope, create.*,
 * limits.max_live_objects, export, wrapping_keys, credential.
 */
#include <stdio.h>
#include <string.h>

#include "kg_policy.h"
#include "kg_policy_internal.h"

/* Point d at rule `kind` of group g (a group built by hand may have no texts). */
static void kg_policy_set_rule(struct kg_policy_decision *d, const struct kg_policy_group *g,
                               enum kg_policy_rule_kind kind)
{
    if (g != NULL && g->rule_text[kind] != NULL) {
        d->rule = g->rule_text[kind];
        d->line = g->rule_line[kind];
    } else {
        d->rule = "groups";
        d->line = 0;
    }
}

/* May a certificate issued by the CA with `issuer` (hex) vouch for group g? */
static bool kg_policy_ca_ok(const struct kg_policy_group *g, const char *issuer)
{
    uint8_t fp[32];

    if (g->ca_count == 0) {
        return true; /* not bound: any client CA the gateway trusts */
    }
    if (issuer == NULL || !kg_policy_parse_sha256(issuer, strlen(issuer), fp)) {
        return false;
    }
    for (size_t i = 0; i < g->ca_count; i++) {
        /* Fingerprints of CA certificates are public: no need for constant time. */
        if (memcmp(g->ca_sha256[i], fp, sizeof(fp)) == 0) {
            return true;
        }
    }
    return false;
}

/* The group a named case (no_ou / ambiguous) selects, subject to its CA binding. */
static struct kg_policy_decision kg_policy_named_case(const struct kg_policy_group *g, const char *issuer,
                                                      enum kg_policy_verdict deny, const char *rule,
                                                      unsigned line)
{
    struct kg_policy_decision d = { .verdict = deny, .group = NULL, .rule = rule, .line = line };

    if (g == NULL) {
        return d; /* the default: deny */
    }
    if (!kg_policy_ca_ok(g, issuer)) {
        d.verdict = KG_POLICY_DENY_CA;
        kg_policy_set_rule(&d, g, KG_RULE_CA);
        return d;
    }
    d.verdict = KG_POLICY_ALLOW;
    d.group = g;
    return d;
}

struct kg_policy_decision kg_policy_match(const struct kg_policy *policy, const struct kg_identity *id)
{
    struct kg_policy_decision d = { .verdict = KG_POLICY_DENY_NO_OU, .group = NULL, .rule = "no_ou", .line = 0 };
    const struct kg_policy_group *matched = NULL, *wrong_ca = NULL;
    const char *issuer = id != NULL ? id->issuer_fingerprint : NULL;
    size_t usable_ous = 0;
    bool ambiguous = false;

    if (id == NULL) {
        return d; /* no identity at all: not even no_ou's group */
    }
    if (policy != NULL) {
        d.line = policy->no_ou_line;
    }
    /*
     * Every OU of the certificate takes part, not only the first: which OU a
     * CA writes first is not something a policy should depend on. Because the
     * loader refuses two groups with one OU, "two different groups" can only
     * come from two different OUs.
     */
    for (size_t i = 0; id->ous != NULL && i < id->ou_count; i++) {
        const char *ou = id->ous[i];

        /* An empty OU is no OU: it cannot name a group (the loader refuses empty ou). */
        if (ou == NULL || ou[0] == '\0') {
            continue;
        }
        usable_ous++;
        for (size_t g = 0; policy != NULL && g < policy->group_count; g++) {
            const struct kg_policy_group *group = &policy->groups[g];

            /* Exact, byte-for-byte: no case folding, no Unicode normalisation. */
            if (group->ou == NULL || strcmp(group->ou, ou) != 0) {
                continue;
            }
            /* An OU is only as trustworthy as the CA that signed it. */
            if (!kg_policy_ca_ok(group, issuer)) {
                if (wrong_ca == NULL) {
                    wrong_ca = group;
                }
                continue;
            }
            if (matched != NULL && matched != group) {
                ambiguous = true;
            } else {
                matched = group;
            }
        }
    }
    if (usable_ous == 0) {
        return kg_policy_named_case(policy != NULL ? policy->no_ou_group : NULL, issuer, KG_POLICY_DENY_NO_OU,
                                    "no_ou", policy != NULL ? policy->no_ou_line : 0);
    }
    if (ambiguous) {
        return kg_policy_named_case(policy->ambiguous_group, issuer, KG_POLICY_DENY_AMBIGUOUS, "ambiguous",
                                    policy->ambiguous_line);
    }
    if (matched != NULL) {
        d.verdict = KG_POLICY_ALLOW;
        d.group = matched;
        kg_policy_set_rule(&d, matched, KG_RULE_OU);
        return d;
    }
    if (wrong_ca != NULL) {
        d.verdict = KG_POLICY_DENY_CA;
        kg_policy_set_rule(&d, wrong_ca, KG_RULE_CA);
        return d;
    }
    d.verdict = KG_POLICY_DENY_UNKNOWN_OU;
    d.rule = "groups";
    d.line = policy != NULL ? policy->groups_line : 0;
    return d;
}

bool kg_policy_in_scope(const struct kg_policy_group *group, const char *owner)
{
    /* An object with no recorded owner belongs to no group: only `all` sees it. */
    bool own = group != NULL && owner != NULL && group->name != NULL && strcmp(owner, group->name) == 0;

    if (group == NULL) {
        return false;
    }
    switch (group->scope) {
    case KG_SCOPE_ALL:
        return true;
    case KG_SCOPE_OWN:
        return own;
    case KG_SCOPE_LIST:
        /* The own group is always in scope; a list only adds to it. */
        for (size_t i = 0; !own && owner != NULL && i < group->scope_group_count; i++) {
            own = strcmp(owner, group->scope_groups[i]) == 0;
        }
        return own;
    default:
        return false;
    }
}

enum kg_export_mode kg_policy_export_for(const struct kg_policy_group *group, uint32_t object_type)
{
    if (group == NULL) {
        return KG_EXPORT_NONE;
    }
    if (object_type == 0x02) { /* Symmetric Key: export_mode is its documented home */
        return group->export_mode;
    }
    if (object_type <= KG_POLICY_MAX_OBJECT_TYPE) {
        return group->export_types[object_type];
    }
    return group->export_other;
}

/* The operation check shared by both decide functions. */
static bool kg_policy_operation_ok(const struct kg_policy_group *g, uint32_t operation)
{
    /* Codes past the mask (KMIP 2.x and vendor 0x8XXXXXXX) are never granted. */
    return operation <= KG_POLICY_MAX_OP && (g->operations & (UINT64_C(1) << operation)) != 0;
}

struct kg_policy_decision kg_policy_decide(const struct kg_policy *policy, const struct kg_identity *id,
                                           uint32_t operation, const char *object_owner)
{
    struct kg_policy_decision d = kg_policy_match(policy, id);

    if (d.verdict != KG_POLICY_ALLOW) {
        return d;
    }
    if (!kg_policy_operation_ok(d.group, operation)) {
        d.verdict = KG_POLICY_DENY_OPERATION;
        kg_policy_set_rule(&d, d.group, KG_RULE_OPERATIONS);
        return d;
    }
    if (object_owner != NULL && !kg_policy_in_scope(d.group, object_owner)) {
        d.verdict = KG_POLICY_DENY_SCOPE;
        kg_policy_set_rule(&d, d.group, KG_RULE_SCOPE);
        return d;
    }
    kg_policy_set_rule(&d, d.group, KG_RULE_OPERATIONS);
    return d;
}

/* Operations that bring a new managed object into being (KMIP 1.4 section 4), for max_live_objects. */
static bool kg_policy_makes_objects(uint32_t operation)
{
    switch (operation) {
    case 0x01: /* Create */
    case 0x02: /* Create Key Pair */
    case 0x03: /* Register */
    case 0x04: /* Re-key */
    case 0x05: /* Derive Key */
    case 0x06: /* Certify */
    case 0x07: /* Re-certify */
    case 0x1D: /* Re-key Key Pair */
    case 0x28: /* Create Split Key */
    case 0x29: /* Join Split Key */
    case 0x2A: /* Import */
        return true;
    default:
        return false;
    }
}

/* Operations whose new keys the group's create.* rules govern. */
static bool kg_policy_makes_keys(uint32_t operation)
{
    return operation == 0x01 /* Create */ || operation == 0x02 /* Create Key Pair */ ||
           operation == 0x03 /* Register */ || operation == 0x04 /* Re-key */ ||
           operation == 0x1D /* Re-key Key Pair */;
}

/* Secret Data (0x07) and Opaque Object (0x08) have no Cryptographic
 * Algorithm or Length (KMIP 2.1 Table 28): object_types and usage_masks
 * alone judge them. */
static bool kg_policy_has_no_algorithm(uint32_t object_type)
{
    return object_type == 0x07 || object_type == 0x08;
}

/* create.*: the kind of the first constraint the request breaks, or KG_RULE_COUNT if none. */
static enum kg_policy_rule_kind kg_policy_create_breaks(const struct kg_policy_group *g,
                                                        const struct kg_policy_request *req)
{
    const struct kg_policy_create *c = &g->create;
    uint32_t mask = req->has_usage_mask ? (uint32_t)req->usage_mask : 0;
    bool algorithm_free = kg_policy_has_no_algorithm(req->object_type);
    bool length_ok = c->length_count == 0 || algorithm_free;

    if (req->object_type == 0 || req->object_type > 31 || (c->object_types & (UINT32_C(1) << req->object_type)) == 0) {
        return KG_RULE_CREATE_OBJECT_TYPES;
    }
    if (algorithm_free) {
        /* nothing more to check than the usage mask */
    } else if (req->algorithm == 0 || req->algorithm > KG_POLICY_MAX_ALGORITHM ||
        (c->algorithms & (UINT64_C(1) << req->algorithm)) == 0) {
        return KG_RULE_CREATE_ALGORITHMS;
    }
    for (size_t i = 0; i < c->length_count; i++) {
        length_ok |= c->lengths[i] == req->length;
    }
    if (!length_ok) {
        return KG_RULE_CREATE_LENGTHS;
    }
    if (c->has_usage_masks && (mask & ~c->usage_masks) != 0) {
        return KG_RULE_CREATE_USAGE_MASKS;
    }
    return KG_RULE_COUNT;
}

/* wrapping_keys: may g name this key? */
static bool kg_policy_wrapping_key_ok(const struct kg_policy_group *g, const struct kg_policy_request *req)
{
    const char *uid = req->wrapping_key_uid, *owner = req->wrapping_key_owner;

    if (uid == NULL || uid[0] == '\0') {
        return false; /* wrapped under nothing named: nothing to check against */
    }
    for (size_t i = 0; i < g->wrapping_uid_count; i++) {
        if (strcmp(g->wrapping_uids[i], uid) == 0) {
            return true;
        }
    }
    if (owner == NULL) {
        return false;
    }
    if (g->wrap_own && g->name != NULL && strcmp(owner, g->name) == 0) {
        return true;
    }
    return g->wrap_in_scope && kg_policy_in_scope(g, owner);
}

struct kg_policy_decision kg_policy_match_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                  const struct kg_policy_request *req)
{
    struct kg_policy_decision d = kg_policy_match(policy, id);
    const struct kg_policy_credential *c;

    if (d.verdict != KG_POLICY_ALLOW || req == NULL || !req->has_credential || !d.group->credential.present) {
        return d;
    }
    c = kg_policy_credential_verify(policy, d.group, req->credential_kind, req->username, req->username_len,
                                    req->password, req->password_len);
    d.credential_verified = c != NULL;
    if (c != NULL && c->act_as != NULL) {
        d.group = c->act_as;
    }
    return d;
}

struct kg_policy_decision kg_policy_decide_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                   const struct kg_policy_request *req)
{
    struct kg_policy_decision d = kg_policy_match_request(policy, id, req);
    const struct kg_policy_group *g = d.group;

    if (d.verdict != KG_POLICY_ALLOW) {
        return d;
    }
    if (req == NULL) {
        d.verdict = KG_POLICY_DENY_OPERATION;
        kg_policy_set_rule(&d, g, KG_RULE_OPERATIONS);
        return d;
    }
    if (!kg_policy_operation_ok(g, req->operation)) {
        d.verdict = KG_POLICY_DENY_OPERATION;
        kg_policy_set_rule(&d, g, KG_RULE_OPERATIONS);
        return d;
    }
    if (req->object_owner != NULL && !kg_policy_in_scope(g, req->object_owner)) {
        d.verdict = KG_POLICY_DENY_SCOPE;
        kg_policy_set_rule(&d, g, KG_RULE_SCOPE);
        return d;
    }
    if (kg_policy_makes_keys(req->operation)) {
        struct kg_policy_request pub = *req;
        enum kg_policy_rule_kind broken = kg_policy_create_breaks(g, req);

        pub.object_type = req->pair_object_type;
        pub.usage_mask = req->pair_usage_mask;
        if (broken == KG_RULE_COUNT && req->pair_object_type != 0) {
            broken = kg_policy_create_breaks(g, &pub);
        }
        if (broken != KG_RULE_COUNT) {
            d.verdict = KG_POLICY_DENY_CREATE;
            /* With no create: key at all, the rule is that key's default. */
            kg_policy_set_rule(&d, g, g->rule_line[KG_RULE_CREATE] == 0 ? KG_RULE_CREATE : broken);
            return d;
        }
    }
    if (kg_policy_makes_objects(req->operation) && g->has_max_live_objects &&
        req->group_live_objects + (req->objects_made > 1 ? req->objects_made : 1) > g->max_live_objects) {
        d.verdict = KG_POLICY_DENY_LIMIT;
        kg_policy_set_rule(&d, g, KG_RULE_MAX_LIVE_OBJECTS);
        return d;
    }
    if (req->key_material) {
        enum kg_export_mode mode = kg_policy_export_for(g, req->object_type);

        if (mode == KG_EXPORT_NONE || (mode == KG_EXPORT_WRAPPED && !req->wrapped)) {
            d.verdict = KG_POLICY_DENY_EXPORT;
            kg_policy_set_rule(&d, g, KG_RULE_EXPORT);
            return d;
        }
        /* Checked for plaintext groups too: naming a key to wrap under is a use of that key. */
        if (req->wrapped && !kg_policy_wrapping_key_ok(g, req)) {
            d.verdict = KG_POLICY_DENY_WRAPPING_KEY;
            kg_policy_set_rule(&d, g, KG_RULE_WRAPPING_KEYS);
            return d;
        }
    }
    if (g->credential.present && !d.credential_verified) {
        bool ok;

        if (!req->has_credential) {
            ok = !g->credential.required;
        } else {
            ok = kg_policy_credential_verify(policy, g, req->credential_kind, req->username, req->username_len,
                                             req->password, req->password_len) != NULL;
        }
        if (!ok) {
            d.verdict = KG_POLICY_DENY_CREDENTIAL;
            kg_policy_set_rule(&d, g, KG_RULE_CREDENTIAL);
            return d;
        }
    }
    kg_policy_set_rule(&d, g, req->key_material ? KG_RULE_EXPORT : KG_RULE_OPERATIONS);
    return d;
}

char *kg_policy_decision_format(const struct kg_policy *policy, const struct kg_policy_decision *d, char *buf,
                                size_t cap)
{
    const char *path = policy != NULL && policy->path != NULL ? policy->path : "policy";

    if (buf == NULL || cap == 0) {
        return buf;
    }
    if (d == NULL) {
        snprintf(buf, cap, "deny: no decision");
    } else if (d->line > 0) {
        snprintf(buf, cap, "%s (rule %s at %s:%u)", kg_policy_verdict_text(d->verdict), d->rule, path, d->line);
    } else {
        snprintf(buf, cap, "%s (rule %s, default: not written in %s)", kg_policy_verdict_text(d->verdict), d->rule,
                 path);
    }
    return buf;
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
    case KG_POLICY_DENY_CA:
        return "deny: the OU's group does not accept certificates of this CA";
    case KG_POLICY_DENY_CREATE:
        return "deny: the group may not create or register such an object";
    case KG_POLICY_DENY_EXPORT:
        return "deny: key material may not leave in this form";
    case KG_POLICY_DENY_WRAPPING_KEY:
        return "deny: the group may not name this wrapping key";
    case KG_POLICY_DENY_CREDENTIAL:
        return "deny: KMIP credential missing or wrong";
    case KG_POLICY_DENY_LIMIT:
        return "deny: the group owns its maximum of live objects";
    case KG_POLICY_DENY_RATE:
        return "deny: the group's request rate limit is exceeded";
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
    case KG_SCOPE_LIST:
        return "own+listed";
    default:
        return "unknown";
    }
}

const char *kg_policy_residency_text(enum kg_residency residency)
{
    switch (residency) {
    case KG_RESIDENCY_WRAPPED:
        return "wrapped";
    case KG_RESIDENCY_HSM:
        return "hsm";
    default:
        return "unknown";
    }
}
