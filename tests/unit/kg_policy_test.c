/*
 * kg_policy_test.c - policy loader, checker and decision function.
 *
 * Every checker test asserts the exact line:column, because "names file:line
 * for every mistake" is the promise made to security officers.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kg_policy.h"
#include "kg_test.h"

#define OPBIT(op) (UINT64_C(1) << (op))

/* ---- helpers ------------------------------------------------------------ */

/* Source tree root: $KG_SOURCE_DIR under meson test, else found upwards from the cwd. */
static const char *kg_test_source_dir(void)
{
    static const char *const candidates[] = { ".", "..", "../..", "../../.." };
    static char found[4096];
    const char *env = getenv("KG_SOURCE_DIR");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        snprintf(found, sizeof(found), "%s/policy/kg_policy.h", candidates[i]);
        if (access(found, R_OK) == 0) {
            snprintf(found, sizeof(found), "%s", candidates[i]);
            return found;
        }
    }
    return ".";
}

static struct kg_policy_errors errs;

/* Load `text`; returns the policy or NULL (then `errs` holds the mistakes). */
static struct kg_policy *load(const char *text)
{
    struct kg_policy *policy = (struct kg_policy *)1; /* must be reset */
    int rc = kg_policy_load_buffer(text, strlen(text), "test.yaml", &policy, &errs);

    if (rc == 0) {
        CU_ASSERT_PTR_NOT_NULL(policy);
        CU_ASSERT_EQUAL(errs.count, 0);
    } else {
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(policy);
        CU_ASSERT(errs.count > 0);
    }
    return rc == 0 ? policy : NULL;
}

/* Does error `i` sit at line:column and mention `needle`? Prints what it got if not. */
static int error_is(size_t i, unsigned line, unsigned column, const char *needle)
{
    int ok = i < errs.count && errs.items[i].line == line && errs.items[i].column == column &&
             strstr(errs.items[i].message, needle) != NULL;

    if (!ok) {
        fprintf(stderr, "\n  wanted #%zu %u:%u ~'%s'; have:\n", i, line, column, needle);
        for (size_t j = 0; j < errs.count; j++) {
            fprintf(stderr, "    #%zu %u:%u: %s\n", j, errs.items[j].line, errs.items[j].column,
                    errs.items[j].message);
        }
    }
    return ok;
}

/* The text must fail with exactly one error, at line:column, mentioning `needle`. */
static void expect_one_error(const char *text, unsigned line, unsigned column, const char *needle)
{
    struct kg_policy *policy = load(text);

    CU_ASSERT_PTR_NULL(policy);
    kg_policy_free(policy);
    CU_ASSERT_EQUAL(errs.count, 1);
    CU_ASSERT_EQUAL(errs.overflow, 0);
    CU_ASSERT(error_is(0, line, column, needle));
}

static const struct kg_policy_group *group_named(const struct kg_policy *policy, const char *name)
{
    for (size_t i = 0; policy != NULL && i < policy->group_count; i++) {
        if (strcmp(policy->groups[i].name, name) == 0) {
            return &policy->groups[i];
        }
    }
    return NULL;
}

static struct kg_identity ident(const char *const *ous, size_t count)
{
    struct kg_identity id = { .cn = "client", .ous = ous, .ou_count = count, .serial = "01", .fingerprint = "00" };

    return id;
}

/* A policy for the decision tests. */
static const char decide_policy[] =
    "version: 1\n"
    "groups:\n"
    "  vsphere:\n"
    "    ou: vsphere\n"
    "    operations: [Discover Versions, Create, Get, Get Attributes]\n"
    "    export: plaintext\n"
    "  backup:\n"
    "    ou: backup\n"
    "    operations: [Get, Locate]\n"
    "  admin:\n"
    "    ou: admin\n"
    "    operations: all\n"
    "    scope: all\n"
    "  intl:\n"
    "    ou: \"Sécurité Ünit 鍵\"\n"
    "    operations: [Get]\n";

/* ---- operation table ----------------------------------------------------- */

static void test_ops_table(void)
{
    static const struct {
        uint32_t code;
        const char *name;
    } known[] = {
        { 0x01, "Create" },           { 0x03, "Register" },           { 0x04, "Re-key" },
        { 0x07, "Re-certify" },       { 0x0A, "Get" },                { 0x0B, "Get Attributes" },
        { 0x0C, "Get Attribute List" }, { 0x12, "Activate" },         { 0x18, "Query" },
        { 0x1D, "Re-key Key Pair" },  { 0x1E, "Discover Versions" },  { 0x22, "Signature Verify" },
        { 0x23, "MAC" },              { 0x25, "RNG Retrieve" },       { 0x2B, "Export" },
    };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        CU_ASSERT_STRING_EQUAL(kg_policy_operation_name(known[i].code), known[i].name);
        CU_ASSERT_EQUAL(kg_policy_operation_code(known[i].name), known[i].code);
    }
    /* Every code 1..0x2B has a name, and each name maps back to its code. */
    for (uint32_t op = 1; op <= 0x2B; op++) {
        const char *name = kg_policy_operation_name(op);

        CU_ASSERT_PTR_NOT_NULL_FATAL(name);
        CU_ASSERT_EQUAL(kg_policy_operation_code(name), op);
    }
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0));
    /* Of the 2.x operations, only those kmipgw answers. */
    CU_ASSERT_STRING_EQUAL(kg_policy_operation_name(0x2C), "Log");
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x2D));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x30));
    CU_ASSERT_STRING_EQUAL(kg_policy_operation_name(0x31), "Set Attribute");
    CU_ASSERT_EQUAL(kg_policy_operation_code("Set Attribute"), 0x31);
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x32));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x33));
    CU_ASSERT_STRING_EQUAL(kg_policy_operation_name(0x34), "Interop");
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x35));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(64));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x80000001u));
    CU_ASSERT_EQUAL(kg_policy_operation_code("get"), 0); /* case-sensitive */
    CU_ASSERT_EQUAL(kg_policy_operation_code("Rekey"), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code("Get "), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code(""), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code(NULL), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_mask_all(),
                    (((UINT64_C(1) << 0x2D) - 1) & ~UINT64_C(1)) | (UINT64_C(1) << 0x31) | (UINT64_C(1) << 0x34));
}

/* ---- loading ------------------------------------------------------------- */

static void test_load_conf_policy(void)
{
    char path[4096];
    struct kg_policy *policy = (struct kg_policy *)1;
    const struct kg_policy_group *g;
    uint64_t vsphere_ops = OPBIT(0x1E) | OPBIT(0x18) | OPBIT(0x01) | OPBIT(0x0A) | OPBIT(0x0B) | OPBIT(0x0C) |
                           OPBIT(0x0D) | OPBIT(0x0E) | OPBIT(0x12);
    uint64_t backup_ops = OPBIT(0x1E) | OPBIT(0x18) | OPBIT(0x01) | OPBIT(0x03) | OPBIT(0x0A) | OPBIT(0x0B) |
                          OPBIT(0x0C) | OPBIT(0x08) | OPBIT(0x12);

    CU_ASSERT_FATAL((size_t)snprintf(path, sizeof(path), "%s/conf/policy.yaml", kg_test_source_dir()) < sizeof(path));
    CU_ASSERT_EQUAL_FATAL(kg_policy_load_file(path, &policy, &errs), 0);
    CU_ASSERT_EQUAL(errs.count, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_STRING_EQUAL(policy->path, path);
    CU_ASSERT_EQUAL(policy->group_count, 3);

    g = group_named(policy, "vsphere");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->ou, "vsphere");
    CU_ASSERT_EQUAL(g->operations, vsphere_ops);
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_PLAINTEXT);
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_OWN);
    CU_ASSERT(g->line > 0);

    g = group_named(policy, "backup");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->ou, "backup");
    CU_ASSERT_EQUAL(g->operations, backup_ops);
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_WRAPPED);
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_OWN);

    g = group_named(policy, "admin");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->ou, "admin");
    CU_ASSERT_EQUAL(g->operations, kg_policy_operation_mask_all());
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_PLAINTEXT);
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_ALL);

    /* vCenter's conversation is allowed; what it never sends is not. */
    {
        const char *ous[] = { "vsphere" };
        struct kg_identity id = ident(ous, 1);

        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x1E, NULL).verdict, KG_POLICY_ALLOW);
        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "vsphere").verdict, KG_POLICY_ALLOW);
        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x14, "vsphere").verdict, KG_POLICY_DENY_OPERATION);
        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "backup").verdict, KG_POLICY_DENY_SCOPE);
    }
    {
        const char *ous[] = { "unlisted" };
        struct kg_identity id = ident(ous, 1);

        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x1E, NULL).verdict, KG_POLICY_DENY_UNKNOWN_OU);
    }
    kg_policy_free(policy);
}

static void test_load_defaults(void)
{
    struct kg_policy *policy = load("version: 1\n"
                                    "groups:\n"
                                    "  min:\n"
                                    "    ou: m\n");
    const struct kg_policy_group *g = group_named(policy, "min");

    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->operations, 0);
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_WRAPPED);
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_OWN);
    CU_ASSERT_EQUAL(g->line, 3);
    CU_ASSERT_STRING_EQUAL(policy->path, "test.yaml");
    kg_policy_free(policy);

    /* Flow style, quoted scalars, an empty list and export: none. */
    policy = load("{version: 1, groups: {x: {ou: 'a b', operations: [], export: none, scope: all}}}");
    g = group_named(policy, "x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->ou, "a b");
    CU_ASSERT_EQUAL(g->operations, 0);
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_NONE);
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_ALL);
    kg_policy_free(policy);

    /* A KMIP 2.x operation by its name, and `all` granting it. */
    policy = load("{version: 1, groups: {x: {ou: a, operations: [Set Attribute]}, every: {ou: b, operations: all}}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_EQUAL(group_named(policy, "x")->operations, UINT64_C(1) << 0x31);
    CU_ASSERT((group_named(policy, "every")->operations & (UINT64_C(1) << 0x31)) != 0);
    kg_policy_free(policy);
    CU_ASSERT_PTR_NULL(load("{version: 1, groups: {x: {ou: a, operations: [SetAttribute]}}}"));

    kg_policy_free(NULL);
}

static void test_load_empty_groups_denies_all(void)
{
    struct kg_policy *policy = load("version: 1\ngroups: {}\n");
    const char *ous[] = { "admin" };
    struct kg_identity id = ident(ous, 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_EQUAL(policy->group_count, 0);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x1E, NULL).verdict, KG_POLICY_DENY_UNKNOWN_OU);
    kg_policy_free(policy);
}

/* ---- checker: one mistake each ------------------------------------------ */

static void test_err_unknown_top_key(void)
{
    expect_one_error("version: 1\n"
                     "gropus: {}\n"
                     "groups: {}\n",
                     2, 1, "unknown key 'gropus' at top level");
}

static void test_err_unknown_group_key(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    exports: none\n",
                     5, 5, "unknown key 'exports' in group 'a'");
}

static void test_err_missing_ou(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    operations: [Get]\n",
                     3, 3, "group 'a' has no ou");
}

static void test_err_empty_ou(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: ''\n",
                     4, 9, "ou of group 'a' is empty");
}

static void test_err_duplicate_group(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "  a:\n"
                     "    ou: b\n",
                     5, 3, "group 'a' is defined twice (first at line 3)");
}

static void test_err_duplicate_ou(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: shared\n"
                     "  b:\n"
                     "    ou: shared\n",
                     6, 9, "ou 'shared' already selects group 'a' (line 3)");
}

static void test_err_unknown_operation(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    operations: [Get, Frobnicate]\n",
                     5, 23, "unknown operation 'Frobnicate'");
    /* A near miss gets a suggestion, still an error: names are case-sensitive. */
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    operations:\n"
                     "      - rekey\n",
                     6, 9, "did you mean 'Re-key'?");
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    operations: [Get, all]\n",
                     5, 23, "'all' stands alone");
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    operations: [Get, Query, Get]\n",
                     5, 30, "operation 'Get' is listed twice");
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    operations: everything\n",
                     5, 17, "or the word all, not 'everything'");
}

static void test_err_bad_export(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    export: Plaintext\n",
                     5, 13, "export must be wrapped, plaintext or none, not 'Plaintext'");
}

static void test_err_bad_scope(void)
{
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    scope: everyone\n",
                     5, 12, "scope must be own, all or a list of group names, not 'everyone'");
}

static void test_err_wrong_kinds(void)
{
    expect_one_error("- version: 1\n", 1, 1, "the top level (version: 1, groups: ...) must be a mapping, not a list");
    expect_one_error("version: 1\ngroups: [a, b]\n", 2, 9, "groups must be a mapping, not a list");
    expect_one_error("version: 1\ngroups:\n", 2, 8, "groups is empty");
    expect_one_error("version: 1\ngroups:\n  a: [x]\n", 3, 6, "a group must be a mapping, not a list");
    expect_one_error("version: 1\ngroups:\n  a:\n", 3, 5, "a group must be a mapping, not a single value");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: [x, y]\n", 4, 9, "ou must be a single value, not a list");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: a\n    operations: {Get: yes}\n", 5, 17,
                     "operations must be a list, not a mapping");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: a\n    operations: [[Get]]\n", 5, 18,
                     "an operation must be a single value, not a list");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: a\n    export: [plaintext]\n", 5, 13,
                     "export must be a single value or a mapping of object type to mode, not a list");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: a\n    scope: {x: 1}\n", 5, 12,
                     "scope must be own, all or a list of group names, not a mapping");
    expect_one_error("version: [1]\ngroups: {}\n", 1, 10, "version must be a single value, not a list");
    expect_one_error("version: 1\ngroups: {}\n[k]: v\n", 3, 1, "a key must be a single value, not a list");
    expect_one_error("version: 1\ngroups:\n  [a]: {ou: a}\n", 3, 3, "a group name must be a single value");
}

static void test_err_version(void)
{
    expect_one_error("groups: {}\n", 1, 1, "version is missing");
    expect_one_error("version: 2\ngroups: {}\n", 1, 10, "version '2' is not supported");
    expect_one_error("version: 1.0\ngroups: {}\n", 1, 10, "version '1.0' is not supported");
    expect_one_error("# groups on line 2\n\n  version: 1\n", 3, 3, "groups is missing");
}

static void test_err_duplicate_keys(void)
{
    expect_one_error("version: 1\ngroups: {}\nversion: 1\n", 3, 1, "key 'version' given twice (first at line 1)");
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    scope: all\n"
                     "    scope: own\n",
                     6, 5, "key 'scope' given twice (first at line 5)");
}

static void test_err_group_name(void)
{
    expect_one_error("version: 1\ngroups:\n  'bad name':\n    ou: a\n", 3, 3, "group name 'bad name'");
    expect_one_error("version: 1\ngroups:\n  '':\n    ou: a\n", 3, 3, "group name ''");
}

static void test_err_yaml_syntax(void)
{
    /* A tab used for indentation: the parser's own position, and a hint. */
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "\ta:\n",
                     3, 1, "tabs");
    /* An unclosed flow mapping. */
    expect_one_error("version: 1\n"
                     "groups: {a: {ou: x}\n",
                     3, 1, "YAML syntax error: did not find expected ',' or '}'");
    /* Bad indentation. */
    expect_one_error("version: 1\n"
                     "groups: {}\n"
                     "  extra: 1\n",
                     3, 3, "YAML syntax error: did not find expected key (while parsing a block mapping at line 1)");
    /* A second ': ' on one line. */
    expect_one_error("version: 1\n"
                     "groups: a: b\n",
                     2, 10, "YAML syntax error: mapping values are not allowed");
    /* Not UTF-8: the reader reports a byte offset, turned into line:column. */
    expect_one_error("version: 1\n"
                     "groups: {}\n"
                     "x: \"\xff\"\n",
                     3, 5, "invalid leading UTF-8 octet");
    /* A syntax error hides nothing else: it is reported alone, even after semantic errors. */
    expect_one_error("version: 7\n"
                     "groups:\n"
                     "  a: {ou: x\n",
                     4, 1, "YAML syntax error");
}

static void test_err_structure(void)
{
    expect_one_error("", 1, 1, "the policy file is empty");
    expect_one_error("# only a comment\n", 1, 1, "the policy file is empty");
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a: &g\n"
                     "    ou: a\n"
                     "  b: *g\n",
                     5, 6, "aliases (*g) are not allowed");
    expect_one_error("version: 1\n"
                     "groups: {}\n"
                     "---\n"
                     "version: 1\n",
                     3, 1, "one YAML document");
    {
        /* Deep nesting is refused before it costs anything. */
        char deep[200];
        size_t n = 0;

        n += (size_t)snprintf(deep, sizeof(deep), "version: 1\ngroups: {}\nx: ");
        for (int i = 0; i < 40; i++) {
            deep[n++] = '[';
        }
        deep[n] = '\0';
        expect_one_error(deep, 3, 4 + 31, "nested more than 32 levels deep");
    }
}

static void test_err_sanitized(void)
{
    /* An escape sequence in the file must not reach a terminal through a message. */
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: a\n"
                     "    export: \"\\e[31mred\\u0085\"\n",
                     5, 13, "not '?[31mred?'");
    for (size_t i = 0; i < errs.count; i++) {
        for (const char *p = errs.items[i].message; *p != '\0'; p++) {
            CU_ASSERT((unsigned char)*p >= 0x20 && (unsigned char)*p != 0x7F);
        }
    }
    expect_one_error("version: 1\n"
                     "groups:\n"
                     "  a:\n"
                     "    ou: \"a\\tb\"\n",
                     4, 9, "without control characters");
    /* Long values are cut, not overflowing the message. */
    expect_one_error("version: 1\ngroups: {}\n"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     ": 1\n",
                     3, 1, "xxx...' at top level");
}

static void test_err_several_at_once(void)
{
    struct kg_policy *policy = load("version: 3\n"                          /* 1 */
                                    "colour: blue\n"                        /* 2 */
                                    "groups:\n"                             /* 3 */
                                    "  vsphere:\n"                          /* 4 */
                                    "    ou: vsphere\n"                     /* 5 */
                                    "    operations: [Get, Gte]\n"          /* 6 */
                                    "    export: raw\n"                     /* 7 */
                                    "  backup:\n"                           /* 8 */
                                    "    scope: ours\n"                     /* 9 */
                                    "  vsphere:\n"                          /* 10 */
                                    "    ou: other\n"                       /* 11 */
                                    "  third:\n"                            /* 12 */
                                    "    ou: vsphere\n"                     /* 13 */
                                    "    frobs: 1\n");                      /* 14 */

    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 9);
    CU_ASSERT_EQUAL(errs.overflow, 0);
    CU_ASSERT(error_is(0, 1, 10, "version '3'"));
    CU_ASSERT(error_is(1, 2, 1, "unknown key 'colour'"));
    CU_ASSERT(error_is(2, 6, 23, "unknown operation 'Gte'"));
    CU_ASSERT(error_is(3, 7, 13, "not 'raw'"));
    CU_ASSERT(error_is(4, 8, 3, "group 'backup' has no ou"));
    CU_ASSERT(error_is(5, 9, 12, "not 'ours'"));
    CU_ASSERT(error_is(6, 10, 3, "group 'vsphere' is defined twice (first at line 4)"));
    CU_ASSERT(error_is(7, 13, 9, "ou 'vsphere' already selects group 'vsphere' (line 4)"));
    CU_ASSERT(error_is(8, 14, 5, "unknown key 'frobs' in group 'third'"));
}

static void test_err_cap(void)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof(text), "version: 1\ngroups: {}\n");

    /* 40 unknown keys: 32 stored (lines 3..34), 8 counted. */
    for (int i = 0; i < 40; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "k%d: 1\n", i);
    }
    CU_ASSERT_PTR_NULL(load(text));
    CU_ASSERT_EQUAL(errs.count, KG_POLICY_MAX_ERRORS);
    CU_ASSERT_EQUAL(errs.overflow, 40 - KG_POLICY_MAX_ERRORS);
    CU_ASSERT(error_is(0, 3, 1, "unknown key 'k0'"));
    CU_ASSERT(error_is(KG_POLICY_MAX_ERRORS - 1, 34, 1, "unknown key 'k31'"));
}

static void test_err_files(void)
{
    char path[] = "/tmp/kg_policy_test_XXXXXX";
    struct kg_policy *policy = (struct kg_policy *)1;
    int fd = mkstemp(path);
    FILE *f;
    char *big;

    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    CU_ASSERT_FATAL(f != NULL);
    /* Valid YAML, but one byte over the cap: refused before parsing. */
    fputs("version: 1\ngroups: {}\n#", f);
    for (size_t i = 23; i < KG_POLICY_MAX_FILE_BYTES; i++) { /* 23 bytes above, 1 below */
        fputc('x', f);
    }
    fputs("\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(kg_policy_load_file(path, &policy, &errs), -1);
    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT(error_is(0, 0, 0, "larger than 1048576 bytes"));

    /* Exactly at the cap: accepted. */
    CU_ASSERT_EQUAL(truncate(path, KG_POLICY_MAX_FILE_BYTES), 0);
    policy = (struct kg_policy *)1;
    CU_ASSERT_EQUAL(kg_policy_load_file(path, &policy, &errs), 0);
    CU_ASSERT_PTR_NOT_NULL(policy);
    kg_policy_free(policy);
    unlink(path);

    /* The buffer entry point obeys the same cap. */
    big = malloc(KG_POLICY_MAX_FILE_BYTES + 2);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, ' ', KG_POLICY_MAX_FILE_BYTES + 1);
    big[KG_POLICY_MAX_FILE_BYTES + 1] = '\0';
    CU_ASSERT_EQUAL(kg_policy_load_buffer(big, KG_POLICY_MAX_FILE_BYTES + 1, "big", &policy, &errs), -1);
    CU_ASSERT(error_is(0, 0, 0, "larger than"));
    free(big);

    policy = (struct kg_policy *)1;
    CU_ASSERT_EQUAL(kg_policy_load_file("/nonexistent/policy.yaml", &policy, &errs), -1);
    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT(error_is(0, 0, 0, "cannot open /nonexistent/policy.yaml"));
    CU_ASSERT_EQUAL(kg_policy_load_file("/tmp", &policy, &errs), -1);
    CU_ASSERT(error_is(0, 0, 0, "not a regular file"));
    /* errors may be NULL. */
    CU_ASSERT_EQUAL(kg_policy_load_file("/nonexistent/policy.yaml", &policy, NULL), -1);
}

/* ---- decisions ----------------------------------------------------------- */

static void test_decide_allow(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *ous[] = { "vsphere" };
    struct kg_identity id = ident(ous, 1);
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    d = kg_policy_decide(policy, &id, 0x01, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "vsphere"));
    d = kg_policy_decide(policy, &id, 0x0A, "vsphere");
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(d.group->export_mode, KG_EXPORT_PLAINTEXT);
    d = kg_policy_match(policy, &id);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "vsphere"));
    kg_policy_free(policy);
}

static void test_decide_denials(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *none[] = { NULL };
    const char *empty[] = { "" };
    const char *unknown[] = { "finance", "VSPHERE" }; /* exact match: no case folding */
    const char *two_groups[] = { "vsphere", "backup" };
    const char *vsphere[] = { "vsphere" };
    struct kg_identity id;
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);

    id = ident(none, 0);
    d = kg_policy_decide(policy, &id, 0x1E, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_NO_OU);
    CU_ASSERT_PTR_NULL(d.group);
    id = ident(none, 1);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x1E, NULL).verdict, KG_POLICY_DENY_NO_OU);
    id = ident(empty, 1);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x1E, NULL).verdict, KG_POLICY_DENY_NO_OU);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, NULL, 0x1E, NULL).verdict, KG_POLICY_DENY_NO_OU);

    id = ident(unknown, 2);
    d = kg_policy_decide(policy, &id, 0x1E, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_UNKNOWN_OU);
    CU_ASSERT_PTR_NULL(d.group);

    id = ident(two_groups, 2);
    d = kg_policy_decide(policy, &id, 0x0A, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(d.group);

    id = ident(vsphere, 1);
    d = kg_policy_decide(policy, &id, 0x14 /* Destroy */, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "vsphere")); /* explain names the group */

    d = kg_policy_decide(policy, &id, 0x0A, "backup");
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_SCOPE);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "vsphere"));

    for (int v = KG_POLICY_ALLOW; v <= KG_POLICY_DENY_SCOPE; v++) {
        CU_ASSERT_PTR_NOT_NULL(kg_policy_verdict_text((enum kg_policy_verdict)v));
    }
    CU_ASSERT_STRING_EQUAL(kg_policy_verdict_text(KG_POLICY_ALLOW), "allow");
    CU_ASSERT_STRING_EQUAL(kg_policy_verdict_text(KG_POLICY_DENY_NO_OU), "deny: no OU in certificate");
    CU_ASSERT_STRING_EQUAL(kg_policy_export_text(KG_EXPORT_WRAPPED), "wrapped");
    CU_ASSERT_STRING_EQUAL(kg_policy_export_text(KG_EXPORT_PLAINTEXT), "plaintext");
    CU_ASSERT_STRING_EQUAL(kg_policy_export_text(KG_EXPORT_NONE), "none");
    CU_ASSERT_STRING_EQUAL(kg_policy_scope_text(KG_SCOPE_OWN), "own");
    CU_ASSERT_STRING_EQUAL(kg_policy_scope_text(KG_SCOPE_ALL), "all");
    kg_policy_free(policy);
}

static void test_decide_scope(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *backup[] = { "backup" };
    const char *admin[] = { "admin" };
    struct kg_identity id;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    /* own: its objects only; operations without a target object are not scoped. */
    id = ident(backup, 1);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "backup").verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "vsphere").verdict, KG_POLICY_DENY_SCOPE);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "").verdict, KG_POLICY_DENY_SCOPE);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x08, NULL).verdict, KG_POLICY_ALLOW);
    /* The operation check comes before the scope check. */
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x14, "vsphere").verdict, KG_POLICY_DENY_OPERATION);
    /* all: everything, including a group that no longer exists. */
    id = ident(admin, 1);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x14, "vsphere").verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "backup").verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "gone").verdict, KG_POLICY_ALLOW);
    kg_policy_free(policy);
}

static void test_decide_two_ous_one_matches(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *ous[] = { "Engineering", "backup" };
    const char *ous_rev[] = { "backup", "Engineering", "backup" }; /* a repeated OU is still one group */
    struct kg_identity id;
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    id = ident(ous, 2);
    d = kg_policy_decide(policy, &id, 0x08, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "backup"));
    id = ident(ous_rev, 3);
    d = kg_policy_decide(policy, &id, 0x08, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "backup"));
    kg_policy_free(policy);
}

static void test_decide_unicode_ou(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *exact[] = { "Sécurité Ünit 鍵" };
    /* The same text with 'é' decomposed (e + U+0301): no normalisation, no match. */
    const char *decomposed[] = { "Se\xcc\x81" "curite\xcc\x81 Ünit 鍵" };
    struct kg_identity id;
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_STRING_EQUAL(group_named(policy, "intl")->ou, "Sécurité Ünit 鍵");
    id = ident(exact, 1);
    d = kg_policy_decide(policy, &id, 0x0A, "intl");
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "intl"));
    id = ident(decomposed, 1);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x0A, "intl").verdict, KG_POLICY_DENY_UNKNOWN_OU);
    kg_policy_free(policy);
}

static void test_decide_operation_range(void)
{
    struct kg_policy *policy = load(decide_policy);
    const char *admin[] = { "admin" };
    struct kg_identity id = ident(admin, 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    /* `all` is every operation the table names, nothing beyond. */
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x2B, NULL).verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x2C, NULL).verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x2D, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 63, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 64, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 65, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x80000001u, NULL).verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, UINT32_MAX, NULL).verdict, KG_POLICY_DENY_OPERATION);
    kg_policy_free(policy);
}

static void test_in_scope(void)
{
    struct kg_policy_group own = { .name = "backup", .ou = "backup", .scope = KG_SCOPE_OWN };
    struct kg_policy_group all = { .name = "admin", .ou = "admin", .scope = KG_SCOPE_ALL };

    CU_ASSERT_TRUE(kg_policy_in_scope(&own, "backup"));
    CU_ASSERT_FALSE(kg_policy_in_scope(&own, "backupx"));
    CU_ASSERT_FALSE(kg_policy_in_scope(&own, "Backup"));
    CU_ASSERT_FALSE(kg_policy_in_scope(&own, "vsphere"));
    CU_ASSERT_FALSE(kg_policy_in_scope(&own, NULL));
    CU_ASSERT_TRUE(kg_policy_in_scope(&all, "backup"));
    CU_ASSERT_TRUE(kg_policy_in_scope(&all, "admin"));
    CU_ASSERT_TRUE(kg_policy_in_scope(&all, NULL));
    CU_ASSERT_FALSE(kg_policy_in_scope(NULL, "backup"));
}

/* ---- the full schema ------------------------------------------------------ */

#define CA1_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define CA1_COLONS                                                                                               \
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
#define CA2_HEX "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define CA3_HEX "abababababababababababababababababababababababababababababababab" /* trusted, bound to nothing */

/* A crypt(3) hash of `password` with method `prefix` ("$y$", "$6$"), made here. */
static char *make_hash(const char *prefix, const char *password)
{
    static char hashes[4][CRYPT_OUTPUT_SIZE];
    static unsigned next;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *work = calloc(1, sizeof(*work));
    char *out = hashes[next++ % 4];
    const char *h;

    CU_ASSERT_PTR_NOT_NULL_FATAL(work);
    CU_ASSERT_PTR_NOT_NULL_FATAL(crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof(salt)));
    h = crypt_rn(password, salt, work, (int)sizeof(*work));
    CU_ASSERT_FATAL(h != NULL && h[0] != '*');
    snprintf(out, CRYPT_OUTPUT_SIZE, "%s", h);
    free(work);
    return out;
}

/* 1-based line of the first line of `text` containing `needle`; 0 if none. */
static unsigned line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    unsigned line = 1;

    if (at == NULL) {
        return 0;
    }
    for (const char *p = text; p < at; p++) {
        line += *p == '\n';
    }
    return line;
}

/* The policy of the table-driven decision tests. */
static const char full_policy[] =
    "version: 1\n"
    "groups:\n"
    "  vsphere:\n"
    "    ou: vsphere\n"
    "    operations: [Discover Versions, Create, Register, Get, Get Attributes, Activate]\n"
    "    create:\n"
    "      object_types: [Symmetric Key]\n"
    "      algorithms: [AES]\n"
    "      lengths: [128, 256]\n"
    "      usage_masks: [Encrypt, Decrypt]\n"
    "    export: plaintext\n"
    "  backup:\n"
    "    ou: backup\n"
    "    operations: [Create, Register, Get, Locate]\n"
    "    create: {object_types: [Symmetric Key, Secret Data, Template]}\n"
    "    export: {Symmetric Key: wrapped, Secret Data: none, Opaque Object: plaintext}\n"
    "    wrapping_keys: [own, kek-1]\n"
    "    scope: [vsphere]\n"
    "  wrapscope:\n"
    "    ou: wrapscope\n"
    "    operations: [Get]\n"
    "    export: {default: wrapped}\n"
    "    wrapping_keys: [in_scope]\n"
    "    scope: [backup]\n"
    "  nowrap:\n"
    "    ou: nowrap\n"
    "    operations: [Get]\n"
    "    wrapping_keys: []\n"
    "  defaults:\n"
    "    ou: defaults\n"
    "    operations: [Create, Register, Get]\n"
    "  admin:\n"
    "    ou: admin\n"
    "    operations: all\n"
    "    export: plaintext\n"
    "    scope: all\n"
    "  bound:\n"
    "    ou: bound\n"
    "    ca_sha256: [\"" CA1_COLONS "\", " CA2_HEX "]\n"
    "    operations: [Get]\n"
    "  limited:\n"
    "    ou: limited\n"
    "    operations: [Create, Register, Get, Discover Versions]\n"
    "    limits: {max_live_objects: 2, requests_per_second: 3}\n"
    "  zero:\n"
    "    ou: zero\n"
    "    operations: [Create]\n"
    "    limits:\n"
    "      max_live_objects: 0\n"
    "  none:\n"
    "    ou: none\n"
    "    operations: [Get]\n"
    "    export: none\n";

struct decide_case {
    const char *ou;
    const char *issuer;
    const char *op;
    const char *owner;
    const char *type;
    const char *alg;
    int32_t length;
    int32_t mask; /* -1: no usage mask in the request */
    bool material;
    bool wrapped;
    const char *wkey;
    const char *wowner;
    uint64_t live;
    enum kg_policy_verdict verdict;
    const char *rule;
    const char *at; /* text on the rule's line in full_policy; NULL: line 0 (a default) */
};

#define SK "Symmetric Key"
#define MASK_ED 12

static const struct decide_case decide_cases[] = {
    /* operations */
    { .ou = "vsphere", .op = "Discover Versions", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.vsphere.operations", .at = "    operations: [Discover Versions, Create, Register, Get, G" },
    { .ou = "vsphere", .op = "Destroy", .owner = "vsphere", .mask = -1, .verdict = KG_POLICY_DENY_OPERATION,
      .rule = "groups.vsphere.operations", .at = "    operations: [Discover Versions, Create, Register, Get, G" },
    { .ou = "admin", .op = "Destroy", .owner = "vsphere", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.admin.operations", .at = "    operations: all" },
    { .ou = "nowrap", .op = "Query", .mask = -1, .verdict = KG_POLICY_DENY_OPERATION,
      .rule = "groups.nowrap.operations", .at = "    operations: [Get]\n    wrapping_keys: []" },
    /* create: object type, algorithm, length, usage mask */
    { .ou = "vsphere", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = MASK_ED,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.vsphere.operations", .at = "Discover Versions, Create, Register" },
    { .ou = "vsphere", .op = "Register", .type = SK, .alg = "AES", .length = 128, .mask = 4,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.vsphere.operations", .at = "Discover Versions, Create, Register" },
    { .ou = "vsphere", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = -1,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.vsphere.operations", .at = "Discover Versions, Create, Register" },
    { .ou = "vsphere", .op = "Create", .type = "Secret Data", .alg = "AES", .length = 256, .mask = MASK_ED,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.object_types",
      .at = "      object_types: [Symmetric Key]" },
    { .ou = "vsphere", .op = "Create", .alg = "AES", .length = 256, .mask = MASK_ED, /* no type stated */
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.object_types",
      .at = "      object_types: [Symmetric Key]" },
    { .ou = "vsphere", .op = "Create", .type = SK, .alg = "3DES", .length = 256, .mask = MASK_ED,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.algorithms", .at = "      algorithms: [AES]" },
    { .ou = "vsphere", .op = "Create", .type = SK, .length = 256, .mask = MASK_ED, /* no algorithm stated */
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.algorithms", .at = "      algorithms: [AES]" },
    { .ou = "vsphere", .op = "Create", .type = SK, .alg = "AES", .length = 192, .mask = MASK_ED,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.lengths", .at = "      lengths: [128, 256]" },
    { .ou = "vsphere", .op = "Register", .type = SK, .alg = "AES", .length = 256, .mask = MASK_ED | 0x40,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.usage_masks",
      .at = "      usage_masks: [Encrypt, Decrypt]" },
    /* create present, some lists absent: their defaults (AES; any length; any mask) */
    { .ou = "backup", .op = "Create", .type = "Secret Data", .alg = "AES", .length = 64, .mask = 0x7FFFF,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.operations",
      .at = "    operations: [Create, Register, Get, L" },
    { .ou = "backup", .op = "Create", .type = SK, .alg = "HMAC-SHA256", .length = 256, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.backup.create.algorithms", .at = NULL },
    /* Secret Data and Opaque Objects have no algorithm: object_types decides */
    { .ou = "backup", .op = "Register", .type = "Secret Data", .length = 0, .mask = -1,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.operations",
      .at = "    operations: [Create, Register, Get, L" },
    /* Nor has a KMIP 1.x Template: what it gives is judged when a Create names it */
    { .ou = "backup", .op = "Register", .type = "Template", .length = 0, .mask = -1,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.operations",
      .at = "    operations: [Create, Register, Get, L" },
    { .ou = "vsphere", .op = "Register", .type = "Template", .length = 0, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.vsphere.create.object_types",
      .at = "      object_types: [Symmetric Key]" },
    { .ou = "backup", .op = "Register", .type = "Opaque Object", .length = 0, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.backup.create.object_types",
      .at = "    create: {object_types: [Symmetric Key, Secret Data, Template]}" },
    { .ou = "backup", .op = "Register", .type = SK, .length = 0, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.backup.create.algorithms", .at = NULL },
    /* no create at all: AES symmetric keys only, rule groups.<g>.create, default */
    { .ou = "defaults", .op = "Create", .type = SK, .alg = "AES", .length = 128, .mask = 0xFF,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.defaults.operations",
      .at = "    operations: [Create, Register, Get]" },
    { .ou = "defaults", .op = "Register", .type = "Secret Data", .alg = "AES", .length = 128, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.defaults.create", .at = NULL },
    { .ou = "defaults", .op = "Create", .type = SK, .alg = "RSA", .length = 2048, .mask = -1,
      .verdict = KG_POLICY_DENY_CREATE, .rule = "groups.defaults.create", .at = NULL },
    /* export: plaintext, wrapped, none, per object type */
    { .ou = "vsphere", .op = "Get", .owner = "vsphere", .type = SK, .mask = -1, .material = true,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.vsphere.export", .at = "    export: plaintext\n  backup:" },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true,
      .verdict = KG_POLICY_DENY_EXPORT, .rule = "groups.backup.export", .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = "Secret Data", .mask = -1, .material = true,
      .wrapped = true, .wkey = "kek-1", .verdict = KG_POLICY_DENY_EXPORT, .rule = "groups.backup.export",
      .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = "Opaque Object", .mask = -1, .material = true,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.export", .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = "Private Key", .mask = -1, .material = true,
      .verdict = KG_POLICY_DENY_EXPORT, .rule = "groups.backup.export", .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = false,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.operations",
      .at = "    operations: [Create, Register, Get, L" },
    { .ou = "none", .op = "Get", .owner = "none", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "none", .verdict = KG_POLICY_DENY_EXPORT, .rule = "groups.none.export",
      .at = "    export: none" },
    { .ou = "defaults", .op = "Get", .owner = "defaults", .type = SK, .mask = -1, .material = true,
      .verdict = KG_POLICY_DENY_EXPORT, .rule = "groups.defaults.export", .at = NULL },
    /* wrapped export: the wrapping key named */
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k-own", .wowner = "backup", .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.export",
      .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "kek-1", .wowner = "admin", .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.export",
      .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "kek-1", .verdict = KG_POLICY_ALLOW, .rule = "groups.backup.export",
      .at = "    export: {Symmetric Key: wrapped," },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "kek-2", .wowner = "vsphere", /* in scope, but `own` is not `in_scope` */
      .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.backup.wrapping_keys",
      .at = "    wrapping_keys: [own, kek-1]" },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "kek-3", .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.backup.wrapping_keys",
      .at = "    wrapping_keys: [own, kek-1]" },
    { .ou = "backup", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.backup.wrapping_keys",
      .at = "    wrapping_keys: [own, kek-1]" },
    { .ou = "wrapscope", .op = "Get", .owner = "backup", .type = "Secret Data", .mask = -1, .material = true,
      .wrapped = true, .wkey = "k", .wowner = "backup", .verdict = KG_POLICY_ALLOW, .rule = "groups.wrapscope.export",
      .at = "    export: {default: wrapped}" },
    { .ou = "wrapscope", .op = "Get", .owner = "backup", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "vsphere", .verdict = KG_POLICY_DENY_WRAPPING_KEY,
      .rule = "groups.wrapscope.wrapping_keys", .at = "    wrapping_keys: [in_scope]" },
    { .ou = "nowrap", .op = "Get", .owner = "nowrap", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "nowrap", .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.nowrap.wrapping_keys",
      .at = "    wrapping_keys: []" },
    { .ou = "defaults", .op = "Get", .owner = "defaults", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "defaults", .verdict = KG_POLICY_ALLOW, .rule = "groups.defaults.export", .at = NULL },
    { .ou = "defaults", .op = "Get", .owner = "defaults", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "admin", .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.defaults.wrapping_keys",
      .at = NULL },
    /* a plaintext group naming a wrapping key is checked too */
    { .ou = "vsphere", .op = "Get", .owner = "vsphere", .type = SK, .mask = -1, .material = true, .wrapped = true,
      .wkey = "k", .wowner = "admin", .verdict = KG_POLICY_DENY_WRAPPING_KEY, .rule = "groups.vsphere.wrapping_keys",
      .at = NULL },
    /* scope: own, a list, all */
    { .ou = "vsphere", .op = "Get Attributes", .owner = "backup", .mask = -1, .verdict = KG_POLICY_DENY_SCOPE,
      .rule = "groups.vsphere.scope", .at = NULL },
    { .ou = "backup", .op = "Get", .owner = "vsphere", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.backup.operations", .at = "    operations: [Create, Register, Get, L" },
    { .ou = "backup", .op = "Get", .owner = "backup", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.backup.operations", .at = "    operations: [Create, Register, Get, L" },
    { .ou = "backup", .op = "Get", .owner = "admin", .mask = -1, .verdict = KG_POLICY_DENY_SCOPE,
      .rule = "groups.backup.scope", .at = "    scope: [vsphere]" },
    { .ou = "wrapscope", .op = "Get", .owner = "vsphere", .mask = -1, .verdict = KG_POLICY_DENY_SCOPE,
      .rule = "groups.wrapscope.scope", .at = "    scope: [backup]" },
    { .ou = "admin", .op = "Get", .owner = "gone", .type = SK, .mask = -1, .material = true,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.admin.export", .at = "    export: plaintext\n    scope: all" },
    /* CA binding: listed in either spelling, not listed, unknown */
    { .ou = "bound", .issuer = CA1_HEX, .op = "Get", .owner = "bound", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.bound.operations", .at = "    operations: [Get]\n  limited:" },
    { .ou = "bound", .issuer = CA1_COLONS, .op = "Get", .owner = "bound", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.bound.operations", .at = "    operations: [Get]\n  limited:" },
    { .ou = "bound", .issuer = CA2_HEX, .op = "Get", .owner = "bound", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.bound.operations", .at = "    operations: [Get]\n  limited:" },
    { .ou = "bound", .issuer = CA3_HEX, .op = "Get", .owner = "bound", .mask = -1, .verdict = KG_POLICY_DENY_CA,
      .rule = "groups.bound.ca_sha256", .at = "    ca_sha256: [" },
    { .ou = "bound", .op = "Get", .owner = "bound", .mask = -1, .verdict = KG_POLICY_DENY_CA,
      .rule = "groups.bound.ca_sha256", .at = "    ca_sha256: [" },
    { .ou = "bound", .issuer = "00112233", .op = "Get", .mask = -1, .verdict = KG_POLICY_DENY_CA,
      .rule = "groups.bound.ca_sha256", .at = "    ca_sha256: [" },
    { .ou = "vsphere", .issuer = CA3_HEX, .op = "Get", .owner = "vsphere", .mask = -1, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.vsphere.operations", .at = "Discover Versions, Create, Register" },
    /* limits.max_live_objects: operations that make objects only */
    { .ou = "limited", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = -1, .live = 1,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.limited.operations", .at = "Register, Get, Discover Versions]" },
    { .ou = "limited", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = -1, .live = 2,
      .verdict = KG_POLICY_DENY_LIMIT, .rule = "groups.limited.limits.max_live_objects",
      .at = "    limits: {max_live_objects: 2" },
    { .ou = "limited", .op = "Register", .type = SK, .alg = "AES", .length = 256, .mask = -1, .live = 99,
      .verdict = KG_POLICY_DENY_LIMIT, .rule = "groups.limited.limits.max_live_objects",
      .at = "    limits: {max_live_objects: 2" },
    { .ou = "limited", .op = "Get", .owner = "limited", .mask = -1, .live = 99, .verdict = KG_POLICY_ALLOW,
      .rule = "groups.limited.operations", .at = "Register, Get, Discover Versions]" },
    { .ou = "zero", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = -1, .live = 0,
      .verdict = KG_POLICY_DENY_LIMIT, .rule = "groups.zero.limits.max_live_objects",
      .at = "      max_live_objects: 0" },
    { .ou = "vsphere", .op = "Create", .type = SK, .alg = "AES", .length = 256, .mask = -1, .live = UINT64_MAX,
      .verdict = KG_POLICY_ALLOW, .rule = "groups.vsphere.operations", .at = "Discover Versions, Create, Register" },
    /* identity before anything else */
    { .ou = "finance", .op = "Get", .mask = -1, .verdict = KG_POLICY_DENY_UNKNOWN_OU, .rule = "groups",
      .at = "groups:" },
};

static void test_decide_request_table(void)
{
    struct kg_policy *policy = load(full_policy);

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    for (size_t i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
        const struct decide_case *c = &decide_cases[i];
        const char *ous[] = { c->ou };
        struct kg_identity id = ident(ous, 1);
        struct kg_policy_request req = {
            .operation = kg_policy_operation_code(c->op),
            .object_owner = c->owner,
            .object_type = c->type != NULL ? kg_policy_object_type_code(c->type) : 0,
            .algorithm = c->alg != NULL ? kg_policy_algorithm_code(c->alg) : 0,
            .length = c->length,
            .usage_mask = c->mask < 0 ? 0 : c->mask,
            .has_usage_mask = c->mask >= 0,
            .key_material = c->material,
            .wrapped = c->wrapped,
            .wrapping_key_uid = c->wkey,
            .wrapping_key_owner = c->wowner,
            .group_live_objects = c->live,
        };
        struct kg_policy_decision d;
        unsigned line = c->at != NULL ? line_of(full_policy, c->at) : 0;
        int ok;

        id.issuer_fingerprint = c->issuer;
        CU_ASSERT(req.operation != 0);
        CU_ASSERT(c->at == NULL || line > 0);
        d = kg_policy_decide_request(policy, &id, &req);
        ok = d.verdict == c->verdict && strcmp(d.rule, c->rule) == 0 && d.line == line;
        if (!ok) {
            fprintf(stderr, "\n  case %zu (%s, %s): got %s / %s:%u, wanted %s / %s:%u\n", i, c->ou, c->op,
                    kg_policy_verdict_text(d.verdict), d.rule, d.line, kg_policy_verdict_text(c->verdict), c->rule,
                    line);
        }
        CU_ASSERT(ok);
        /* An allow always names the group; so does every denial past the identity. */
        if (d.verdict == KG_POLICY_ALLOW || d.verdict >= KG_POLICY_DENY_OPERATION) {
            CU_ASSERT(d.verdict == KG_POLICY_DENY_CA ? d.group == NULL : d.group == group_named(policy, c->ou));
        }
    }
    /* No request at all is no permission. */
    {
        const char *ous[] = { "admin" };
        struct kg_identity id = ident(ous, 1);

        CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, NULL).verdict, KG_POLICY_DENY_OPERATION);
    }
    kg_policy_free(policy);
}

/* The short form agrees with the full one where they overlap, and names rules too. */
static void test_decide_rules_short_form(void)
{
    struct kg_policy *policy = load(full_policy);
    const char *ous[] = { "backup" };
    struct kg_identity id = ident(ous, 1);
    struct kg_policy_decision d;
    char buf[200];

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    d = kg_policy_decide(policy, &id, 0x14, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.backup.operations");
    CU_ASSERT_EQUAL(d.line, line_of(full_policy, "    operations: [Create, Register, Get, L"));
    d = kg_policy_decide(policy, &id, 0x0A, "admin");
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_SCOPE);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.backup.scope");
    d = kg_policy_decide(policy, &id, 0x0A, "vsphere");
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.backup.operations");

    /* The text explain and logs print. */
    d = kg_policy_decide(policy, &id, 0x0A, "admin");
    CU_ASSERT_STRING_EQUAL(kg_policy_decision_format(policy, &d, buf, sizeof(buf)),
                           "deny: object belongs to a group outside the scope (rule groups.backup.scope at "
                           "test.yaml:18)");
    {
        struct kg_policy_request req = { .operation = 0x0A, .object_owner = "backup", .object_type = 2,
                                         .key_material = true };

        d = kg_policy_decide_request(policy, &id, &req);
        CU_ASSERT_STRING_EQUAL(kg_policy_decision_format(policy, &d, buf, sizeof(buf)),
                               "deny: key material may not leave in this form (rule groups.backup.export at "
                               "test.yaml:16)");
    }
    {
        const char *dflt[] = { "defaults" };
        struct kg_identity idd = ident(dflt, 1);
        struct kg_policy_request req = { .operation = 0x0A, .object_owner = "defaults", .object_type = 2,
                                         .key_material = true };

        d = kg_policy_decide_request(policy, &idd, &req);
        CU_ASSERT_STRING_EQUAL(kg_policy_decision_format(policy, &d, buf, sizeof(buf)),
                               "deny: key material may not leave in this form (rule groups.defaults.export, "
                               "default: not written in test.yaml)");
    }
    /* Cut, never overflowing. */
    CU_ASSERT_EQUAL(strlen(kg_policy_decision_format(policy, &d, buf, 10)), 9);
    CU_ASSERT_EQUAL(strlen(kg_policy_decision_format(NULL, NULL, buf, sizeof(buf))), strlen("deny: no decision"));
    for (int v = KG_POLICY_ALLOW; v <= KG_POLICY_DENY_RATE; v++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(kg_policy_verdict_text((enum kg_policy_verdict)v), v == 0 ? "allow" : "deny: "));
        CU_ASSERT_PTR_NULL(strstr(kg_policy_verdict_text((enum kg_policy_verdict)v), "unknown"));
    }
    kg_policy_free(policy);
}

/* ---- identity edge cases --------------------------------------------------- */

static const char edge_policy[] =
    "version: 1\n"
    "no_ou: guests\n"
    "ambiguous: deny\n"
    "groups:\n"
    "  guests:\n"
    "    operations: [Query]\n"
    "  comma:\n"
    "    ou: \"a,b\"\n"
    "    operations: [Get]\n"
    "  quote:\n"
    "    ou: 'x\"y'\n"
    "    operations: [Get]\n"
    "  slash:\n"
    "    ou: 'back\\slash+CN=z'\n"
    "    operations: [Get]\n"
    "  bound:\n"
    "    ou: bound\n"
    "    ca_sha256: [" CA1_HEX "]\n"
    "    operations: [Get]\n"
    "  open:\n"
    "    ou: open\n"
    "    operations: [Get]\n";

static struct kg_policy_decision match_ous(const struct kg_policy *policy, const char *const *ous, size_t n,
                                          const char *issuer)
{
    struct kg_identity id = ident(ous, n);

    id.issuer_fingerprint = issuer;
    return kg_policy_match(policy, &id);
}

static void test_identity_edges(void)
{
    struct kg_policy *policy = load(edge_policy);
    struct kg_policy *strict = load(decide_policy);
    const char *none[] = { NULL };
    const char *comma[] = { "a,b" };
    const char *comma_escaped[] = { "a\\,b" }; /* the RFC 4514 text form is not the value */
    const char *quote[] = { "x\"y" };
    const char *slash[] = { "back\\slash+CN=z" };
    const char *one_matches[] = { "Engineering", "open", "Sales" };
    const char *two_match[] = { "open", "a,b" };
    const char *bound_and_open[] = { "bound", "open" };
    const char *bound_only[] = { "bound" };
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_PTR_NOT_NULL_FATAL(strict);
    CU_ASSERT_PTR_EQUAL(policy->no_ou_group, group_named(policy, "guests"));
    CU_ASSERT_PTR_NULL(policy->ambiguous_group);
    CU_ASSERT_PTR_NULL(group_named(policy, "guests")->ou);

    /* No OU: denied by default, the group named by no_ou when there is one. */
    d = match_ous(strict, none, 0, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_NO_OU);
    CU_ASSERT_STRING_EQUAL(d.rule, "no_ou");
    CU_ASSERT_EQUAL(d.line, 0);
    d = match_ous(policy, none, 0, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "guests"));
    /* No identity at all is not "no OU": no group for it. */
    CU_ASSERT_EQUAL(kg_policy_match(policy, NULL).verdict, KG_POLICY_DENY_NO_OU);
    CU_ASSERT_PTR_NULL(kg_policy_match(policy, NULL).group);
    CU_ASSERT_STRING_EQUAL(d.rule, "no_ou");
    CU_ASSERT_EQUAL(d.line, 2);
    {
        const char *empty[] = { "", "" };

        d = match_ous(policy, empty, 2, NULL);
        CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "guests"));
    }
    /* ... and the guests group is only as good as its rules. */
    {
        struct kg_identity id = ident(none, 0);

        CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x18, NULL).verdict, KG_POLICY_ALLOW);
        d = kg_policy_decide(policy, &id, 0x0A, "guests");
        CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_OPERATION);
        CU_ASSERT_STRING_EQUAL(d.rule, "groups.guests.operations");
    }

    /* Several OUs, one of which names a group. */
    d = match_ous(policy, one_matches, 3, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "open"));
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.open.ou");
    CU_ASSERT_EQUAL(d.line, 21);

    /* Two groups: ambiguous, rule "ambiguous" at the line that says deny. */
    d = match_ous(policy, two_match, 2, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_AMBIGUOUS);
    CU_ASSERT_PTR_NULL(d.group);
    CU_ASSERT_STRING_EQUAL(d.rule, "ambiguous");
    CU_ASSERT_EQUAL(d.line, 3);

    /* Characters DN text would escape are plain characters of the value. */
    d = match_ous(policy, comma, 1, NULL);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "comma"));
    d = match_ous(policy, comma_escaped, 1, NULL);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_UNKNOWN_OU);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups");
    CU_ASSERT_EQUAL(d.line, 4);
    d = match_ous(policy, quote, 1, NULL);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "quote"));
    d = match_ous(policy, slash, 1, NULL);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "slash"));

    /* A trusted CA that is not bound to the OU's group. */
    d = match_ous(policy, bound_only, 1, CA3_HEX);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_CA);
    CU_ASSERT_PTR_NULL(d.group);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.bound.ca_sha256");
    CU_ASSERT_EQUAL(d.line, 18);
    d = match_ous(policy, bound_only, 1, CA1_HEX);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "bound"));
    /* Wrong CA for one OU: that OU simply does not match, neither selecting nor making it ambiguous. */
    d = match_ous(policy, bound_and_open, 2, CA3_HEX);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "open"));
    d = match_ous(policy, bound_and_open, 2, CA1_HEX);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_AMBIGUOUS);

    kg_policy_free(policy);
    kg_policy_free(strict);

    /* A group reached through no_ou / ambiguous keeps its CA binding. */
    policy = load("version: 1\n"
                  "no_ou: g\n"
                  "ambiguous: g\n"
                  "groups:\n"
                  "  g:\n"
                  "    ca_sha256: [" CA2_HEX "]\n"
                  "    operations: [Query]\n"
                  "  a: {ou: a}\n"
                  "  b: {ou: b}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    d = match_ous(policy, none, 0, CA2_HEX);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "g"));
    d = match_ous(policy, none, 0, CA1_HEX);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_CA);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.g.ca_sha256");
    {
        const char *ab[] = { "a", "b" };

        d = match_ous(policy, ab, 2, CA2_HEX);
        CU_ASSERT_EQUAL(d.verdict, KG_POLICY_ALLOW);
        CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "g"));
        CU_ASSERT_STRING_EQUAL(d.rule, "ambiguous");
        CU_ASSERT_EQUAL(d.line, 3);
    }
    kg_policy_free(policy);
}

/* ---- credentials ------------------------------------------------------------ */

static struct kg_policy_decision decide_cred(const struct kg_policy *policy, const char *ou, bool has,
                                             const char *user, const char *password, size_t password_len)
{
    const char *ous[] = { ou };
    struct kg_identity id = ident(ous, 1);
    struct kg_policy_request req = {
        .operation = 0x01,
        .object_type = 2,
        .algorithm = 3,
        .length = 256,
        .has_credential = has,
        .username = user,
        .username_len = user != NULL ? strlen(user) : 0,
        .password = password,
        .password_len = password_len,
    };

    return kg_policy_decide_request(policy, &id, &req);
}

#define PW(s) (s), (sizeof(s) - 1)

static void test_credentials(void)
{
    char text[2048];
    struct kg_policy *policy;
    const struct kg_policy_group *g;
    struct kg_policy_decision d;
    unsigned cred_line;

    snprintf(text, sizeof(text),
             "version: 1\n"
             "groups:\n"
             "  req:\n"
             "    ou: req\n"
             "    operations: [Create]\n"
             "    credential:\n"
             "      username: vcenter\n"
             "      password_hash: \"%s\"\n"
             "  opt:\n"
             "    ou: opt\n"
             "    operations: [Create, Query]\n"
             "    credential: {username: esx, password_hash: '%s', check: when_present}\n"
             "  free:\n"
             "    ou: free\n"
             "    operations: [Create]\n",
             make_hash("$y$", "s3cret pass"), make_hash("$6$", "other"));
    policy = load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    g = group_named(policy, "req");
    CU_ASSERT_TRUE(g->credential.present);
    CU_ASSERT_TRUE(g->credential.required);
    CU_ASSERT_STRING_EQUAL(g->credential.username, "vcenter");
    CU_ASSERT(strncmp(g->credential.password_hash, "$y$", 3) == 0);
    CU_ASSERT_FALSE(group_named(policy, "opt")->credential.required);
    CU_ASSERT_FALSE(group_named(policy, "free")->credential.present);
    cred_line = line_of(text, "    credential:\n");

    /* required: none, right, wrong password, wrong user */
    d = decide_cred(policy, "req", false, NULL, NULL, 0);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.req.credential");
    CU_ASSERT_EQUAL(d.line, cred_line);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("s3cret pass")).verdict, KG_POLICY_ALLOW);
    /* Again: now from the cache, same answer. */
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("s3cret pass")).verdict, KG_POLICY_ALLOW);
    /* A cached success for one password says nothing of another. */
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("s3cret pasS")).verdict,
                    KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("s3cret pas")).verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("")).verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", NULL, 0).verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vCenter", PW("s3cret pass")).verdict,
                    KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcente", PW("s3cret pass")).verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, NULL, PW("s3cret pass")).verdict, KG_POLICY_DENY_CREDENTIAL);
    /* crypt(3) would stop at the NUL; we do not. */
    CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", PW("s3cret pass\0junk")).verdict,
                    KG_POLICY_DENY_CREDENTIAL);
    {
        char big[KG_POLICY_MAX_PASSWORD + 2];

        memset(big, 'a', sizeof(big));
        CU_ASSERT_EQUAL(decide_cred(policy, "req", true, "vcenter", big, sizeof(big)).verdict,
                        KG_POLICY_DENY_CREDENTIAL);
    }
    /* The same username and password for another group is another cache entry. */
    CU_ASSERT_EQUAL(decide_cred(policy, "opt", true, "vcenter", PW("s3cret pass")).verdict,
                    KG_POLICY_DENY_CREDENTIAL);

    /* when_present: none passes, right passes, wrong does not */
    CU_ASSERT_EQUAL(decide_cred(policy, "opt", false, NULL, NULL, 0).verdict, KG_POLICY_ALLOW);
    CU_ASSERT_EQUAL(decide_cred(policy, "opt", true, "esx", PW("other")).verdict, KG_POLICY_ALLOW);
    d = decide_cred(policy, "opt", true, "esx", PW("wrong"));
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.opt.credential");
    CU_ASSERT_EQUAL(d.line, 12);

    /* No credential in the policy: a request's credential is not looked at. */
    CU_ASSERT_EQUAL(decide_cred(policy, "free", true, "anyone", PW("anything")).verdict, KG_POLICY_ALLOW);

    /* The credential is checked last: a denied operation costs no hash. */
    {
        const char *ous[] = { "req" };
        struct kg_identity id = ident(ous, 1);
        struct kg_policy_request req = { .operation = 0x18, .has_credential = true, .username = "x",
                                         .username_len = 1 };

        d = kg_policy_decide_request(policy, &id, &req);
        CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_OPERATION);
    }
    kg_policy_free(policy);
}

/* Many threads deciding with credentials at once: the cache's mutex (run under TSan/ASan). */
struct cred_thread_arg {
    const struct kg_policy *policy;
    int failures;
};

static void *cred_thread(void *p)
{
    struct cred_thread_arg *arg = p;

    for (int i = 0; i < 20; i++) {
        bool right = (i % 3) != 0;
        struct kg_policy_decision d = right ? decide_cred(arg->policy, "req", true, "u", PW("pw"))
                                            : decide_cred(arg->policy, "req", true, "u", PW("no"));

        if ((d.verdict == KG_POLICY_ALLOW) != right) {
            arg->failures++;
        }
    }
    return NULL;
}

static void test_credentials_threads(void)
{
    char text[512];
    struct kg_policy *policy;
    pthread_t threads[4];
    struct cred_thread_arg args[4];

    snprintf(text, sizeof(text),
             "version: 1\ngroups:\n  req:\n    ou: req\n    operations: [Create]\n"
             "    credential: {username: u, password_hash: '%s'}\n",
             make_hash("$6$", "pw"));
    policy = load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct cred_thread_arg){ .policy = policy };
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, cred_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CU_ASSERT_EQUAL(args[i].failures, 0);
    }
    kg_policy_free(policy);
}

/* ---- rate limit ----------------------------------------------------------- */

static void test_rate_limit(void)
{
    struct kg_policy *policy = load(full_policy);
    struct kg_policy *other = load(full_policy);
    const struct kg_policy_group *g, *open;
    struct kg_policy_decision d;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    g = group_named(policy, "limited");
    open = group_named(policy, "vsphere");
    CU_ASSERT_EQUAL(g->requests_per_second, 3);

    /* A full bucket: one second's worth, then no more. */
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 10000));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 10000));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 10000));
    d = kg_policy_rate_check(policy, g, 10000);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_RATE);
    CU_ASSERT_PTR_EQUAL(d.group, g);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.limited.limits.requests_per_second");
    CU_ASSERT_EQUAL(d.line, line_of(full_policy, "    limits: {max_live_objects: 2, requests_per_second: 3}"));
    /* Refill at 3 per second: 333 ms is not quite one request, 334 ms is (a denied request takes nothing). */
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, g, 10333));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 10334));
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, g, 10334));
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, g, 10500));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 10668));
    /* A long pause fills the bucket, not more. */
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 99000000));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 99000000));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 99000000));
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, g, 99000000));
    /* A clock that goes back refills nothing, and re-bases. */
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, g, 5));
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, 5 + 334));
    /* A huge jump does not overflow. */
    CU_ASSERT_TRUE(kg_policy_rate_allow(policy, g, UINT64_MAX));

    /* No limit: always. Buckets are per group. */
    for (int i = 0; i < 1000; i++) {
        CU_ASSERT_TRUE(kg_policy_rate_allow(policy, open, 1));
    }
    CU_ASSERT_EQUAL(kg_policy_rate_check(policy, open, 1).verdict, KG_POLICY_ALLOW);
    /* Fail closed: no group, or a group of another policy. */
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, NULL, 1));
    CU_ASSERT_FALSE(kg_policy_rate_allow(policy, group_named(other, "limited"), 1));
    /* A reload (another policy object) starts with a full bucket. */
    CU_ASSERT_TRUE(kg_policy_rate_allow(other, group_named(other, "limited"), 10000));
    kg_policy_free(policy);
    kg_policy_free(other);
}

/* ---- loading the full schema -------------------------------------------------- */

static void test_load_full_schema(void)
{
    char text[4096];
    struct kg_policy *policy;
    const struct kg_policy_group *g;
    static const uint8_t ca1[32] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                     0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                     0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };

    snprintf(text, sizeof(text),
             "version: 1\n"                                                         /* 1 */
             "no_ou: deny\n"                                                        /* 2 */
             "ambiguous: restricted\n"                                              /* 3 */
             "groups:\n"                                                            /* 4 */
             "  storage:\n"                                                         /* 5 */
             "    ou: \"Storage, EMEA\"\n"                                          /* 6 */
             "    ca_sha256:\n"                                                     /* 7 */
             "      - \"" CA1_COLONS "\"\n"                                         /* 8 */
             "      - " CA2_HEX "\n"                                                /* 9 */
             "    operations: [Create, Get]\n"                                      /* 10 */
             "    create:\n"                                                        /* 11 */
             "      object_types: [Symmetric Key, Secret Data]\n"                   /* 12 */
             "      algorithms: [AES, HMAC-SHA256, McEliece-6960119]\n"             /* 13 */
             "      lengths: [128, 256, 65536]\n"                                   /* 14 */
             "      usage_masks: [Encrypt, Decrypt, Wrap Key, Translate Unwrap]\n"  /* 15 */
             "    export:\n"                                                        /* 16 */
             "      Symmetric Key: wrapped\n"                                       /* 17 */
             "      Secret Data: plaintext\n"                                       /* 18 */
             "      Certificate Request: plaintext\n"                               /* 19 */
             "      default: none\n"                                                /* 20 */
             "    wrapping_keys: [own, in_scope, 1f0c6a4e-8d8b-4a8e-9c55-2b3f6d7e8a90]\n" /* 21 */
             "    scope: [restricted]\n"                                            /* 22 */
             "    residency: hsm\n"                                                 /* 23 */
             "    credential:\n"                                                    /* 24 */
             "      check: when_present\n"                                          /* 25 */
             "      password_hash: \"%s\"\n"                                        /* 26 */
             "      username: storage\n"                                            /* 27 */
             "    limits:\n"                                                        /* 28 */
             "      requests_per_second: 1000000\n"                                 /* 29 */
             "      max_live_objects: 1000000000\n"                                 /* 30 */
             "  restricted:\n"                                                      /* 31 */
             "    operations: []\n",                                                /* 32 */
             make_hash("$y$", "pw"));
    policy = load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    CU_ASSERT_PTR_NULL(policy->no_ou_group);
    CU_ASSERT_EQUAL(policy->no_ou_line, 2);
    CU_ASSERT_PTR_EQUAL(policy->ambiguous_group, group_named(policy, "restricted"));
    CU_ASSERT_EQUAL(policy->ambiguous_line, 3);
    CU_ASSERT_EQUAL(policy->groups_line, 4);
    g = group_named(policy, "storage");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(g->ou, "Storage, EMEA");
    CU_ASSERT_EQUAL(g->ca_count, 2);
    CU_ASSERT_EQUAL(memcmp(g->ca_sha256[0], ca1, 32), 0);
    CU_ASSERT_EQUAL(g->ca_sha256[1][0], 0xff);
    CU_ASSERT_EQUAL(g->ca_sha256[1][31], 0x00);
    CU_ASSERT_EQUAL(g->operations, OPBIT(0x01) | OPBIT(0x0A));
    CU_ASSERT_EQUAL(g->create.object_types, (1u << 2) | (1u << 7));
    CU_ASSERT_EQUAL(g->create.algorithms, OPBIT(3) | OPBIT(9) | OPBIT(0x35));
    CU_ASSERT_EQUAL(g->create.length_count, 3);
    CU_ASSERT_EQUAL(g->create.lengths[0], 128);
    CU_ASSERT_EQUAL(g->create.lengths[2], 65536);
    CU_ASSERT_TRUE(g->create.has_usage_masks);
    CU_ASSERT_EQUAL(g->create.usage_masks, 0x4u | 0x8u | 0x10u | 0x80000u);
    CU_ASSERT_EQUAL(g->export_mode, KG_EXPORT_WRAPPED);
    CU_ASSERT_EQUAL(kg_policy_export_for(g, 2), KG_EXPORT_WRAPPED);
    CU_ASSERT_EQUAL(kg_policy_export_for(g, 7), KG_EXPORT_PLAINTEXT);
    CU_ASSERT_EQUAL(kg_policy_export_for(g, 0x0A), KG_EXPORT_PLAINTEXT);
    CU_ASSERT_EQUAL(kg_policy_export_for(g, 1), KG_EXPORT_NONE);
    CU_ASSERT_EQUAL(kg_policy_export_for(g, 0x80000001u), KG_EXPORT_NONE);
    CU_ASSERT_EQUAL(kg_policy_export_for(NULL, 2), KG_EXPORT_NONE);
    CU_ASSERT_TRUE(g->wrap_own);
    CU_ASSERT_TRUE(g->wrap_in_scope);
    CU_ASSERT_EQUAL_FATAL(g->wrapping_uid_count, 1);
    CU_ASSERT_STRING_EQUAL(g->wrapping_uids[0], "1f0c6a4e-8d8b-4a8e-9c55-2b3f6d7e8a90");
    CU_ASSERT_EQUAL(g->scope, KG_SCOPE_LIST);
    CU_ASSERT_EQUAL_FATAL(g->scope_group_count, 1);
    CU_ASSERT_STRING_EQUAL(g->scope_groups[0], "restricted");
    CU_ASSERT_TRUE(kg_policy_in_scope(g, "restricted"));
    CU_ASSERT_TRUE(kg_policy_in_scope(g, "storage"));
    CU_ASSERT_FALSE(kg_policy_in_scope(g, "other"));
    CU_ASSERT_FALSE(kg_policy_in_scope(g, NULL));
    CU_ASSERT_EQUAL(g->residency, KG_RESIDENCY_HSM);
    CU_ASSERT_TRUE(g->credential.present);
    CU_ASSERT_FALSE(g->credential.required);
    CU_ASSERT_STRING_EQUAL(g->credential.username, "storage");
    CU_ASSERT_TRUE(g->has_max_live_objects);
    CU_ASSERT_EQUAL(g->max_live_objects, 1000000000u);
    CU_ASSERT_EQUAL(g->requests_per_second, 1000000u);
    /* Rules: text and line of every key. */
    CU_ASSERT_STRING_EQUAL(g->rule_text[KG_RULE_CA], "groups.storage.ca_sha256");
    CU_ASSERT_STRING_EQUAL(g->rule_text[KG_RULE_CREATE_USAGE_MASKS], "groups.storage.create.usage_masks");
    CU_ASSERT_STRING_EQUAL(g->rule_text[KG_RULE_MAX_LIVE_OBJECTS], "groups.storage.limits.max_live_objects");
    {
        static const struct {
            enum kg_policy_rule_kind kind;
            unsigned line;
        } lines[] = {
            { KG_RULE_OU, 6 },           { KG_RULE_CA, 7 },           { KG_RULE_OPERATIONS, 10 },
            { KG_RULE_CREATE, 11 },      { KG_RULE_CREATE_OBJECT_TYPES, 12 }, { KG_RULE_CREATE_ALGORITHMS, 13 },
            { KG_RULE_CREATE_LENGTHS, 14 }, { KG_RULE_CREATE_USAGE_MASKS, 15 }, { KG_RULE_EXPORT, 16 },
            { KG_RULE_WRAPPING_KEYS, 21 }, { KG_RULE_SCOPE, 22 },      { KG_RULE_RESIDENCY, 23 },
            { KG_RULE_CREDENTIAL, 24 },  { KG_RULE_MAX_LIVE_OBJECTS, 30 }, { KG_RULE_REQUESTS_PER_SECOND, 29 },
        };

        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            CU_ASSERT_EQUAL(g->rule_line[lines[i].kind], lines[i].line);
        }
    }
    g = group_named(policy, "restricted");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NULL(g->ou);
    CU_ASSERT_EQUAL(g->rule_line[KG_RULE_SCOPE], 0);
    CU_ASSERT_EQUAL(g->residency, KG_RESIDENCY_WRAPPED);
    CU_ASSERT_FALSE(g->credential.present);
    CU_ASSERT_FALSE(g->has_max_live_objects);
    CU_ASSERT_EQUAL(g->requests_per_second, 0);
    CU_ASSERT_EQUAL(g->create.object_types, 1u << 2);
    CU_ASSERT_EQUAL(g->create.algorithms, OPBIT(3));
    CU_ASSERT_EQUAL(g->create.length_count, 0);
    CU_ASSERT_FALSE(g->create.has_usage_masks);
    CU_ASSERT_TRUE(g->wrap_own);
    CU_ASSERT_FALSE(g->wrap_in_scope);
    CU_ASSERT_STRING_EQUAL(kg_policy_scope_text(KG_SCOPE_LIST), "own+listed");
    CU_ASSERT_STRING_EQUAL(kg_policy_residency_text(KG_RESIDENCY_HSM), "hsm");
    CU_ASSERT_STRING_EQUAL(kg_policy_residency_text(KG_RESIDENCY_WRAPPED), "wrapped");
    kg_policy_free(policy);
}

static void test_names_tables(void)
{
    CU_ASSERT_EQUAL(kg_policy_object_type_code("Symmetric Key"), 2);
    CU_ASSERT_EQUAL(kg_policy_object_type_code("PGP Key"), 9);
    CU_ASSERT_EQUAL(kg_policy_object_type_code("symmetric key"), 0);
    CU_ASSERT_EQUAL(kg_policy_object_type_code(NULL), 0);
    CU_ASSERT_STRING_EQUAL(kg_policy_object_type_name(7), "Secret Data");
    CU_ASSERT_PTR_NULL(kg_policy_object_type_name(0));
    CU_ASSERT_PTR_NULL(kg_policy_object_type_name(0x0B));
    CU_ASSERT_EQUAL(kg_policy_algorithm_code("AES"), 3);
    CU_ASSERT_EQUAL(kg_policy_algorithm_code("3DES"), 2);
    CU_ASSERT_EQUAL(kg_policy_algorithm_code("HMAC-SHA256"), 9);
    CU_ASSERT_EQUAL(kg_policy_algorithm_code("SHAKE-256"), 0x28);
    CU_ASSERT_EQUAL(kg_policy_algorithm_code("aes"), 0);
    CU_ASSERT_STRING_EQUAL(kg_policy_algorithm_name(4), "RSA");
    CU_ASSERT_PTR_NULL(kg_policy_algorithm_name(0x36));
    CU_ASSERT_EQUAL(kg_policy_usage_code("Encrypt") | kg_policy_usage_code("Decrypt"), 12);
    CU_ASSERT_EQUAL(kg_policy_usage_code("Wrap Key"), 0x10);
    CU_ASSERT_EQUAL(kg_policy_usage_code("Translate Unwrap"), 0x80000);
    CU_ASSERT_EQUAL(kg_policy_usage_code("encrypt"), 0);
    CU_ASSERT_STRING_EQUAL(kg_policy_usage_name(0x40), "Export");
    CU_ASSERT_PTR_NULL(kg_policy_usage_name(0x0C));
    for (uint32_t t = 1; t <= KG_POLICY_MAX_OBJECT_TYPE; t++) {
        CU_ASSERT_EQUAL(kg_policy_object_type_code(kg_policy_object_type_name(t)), t);
    }
    for (uint32_t a = 1; a <= 0x35; a++) {
        CU_ASSERT_EQUAL(kg_policy_algorithm_code(kg_policy_algorithm_name(a)), a);
    }
    for (uint32_t b = 0; b < 20; b++) {
        CU_ASSERT_EQUAL(kg_policy_usage_code(kg_policy_usage_name(UINT32_C(1) << b)), UINT32_C(1) << b);
    }
}

/* ---- checker: one mistake (or one kind) per file, exact positions ------------ */

#define G "version: 1\ngroups:\n  a:\n    ou: a\n" /* lines 1-4; the key under test is on line 5 */

/* A credential list: usernames and devices, each maybe acting as another group. */
static void test_credential_list_and_act_as(void)
{
    char text[2048];
    struct kg_policy *policy;
    const struct kg_policy_group *g;
    struct kg_policy_decision d;
    const char *ous[] = { "front" };
    struct kg_identity id = ident(ous, 1);
    struct kg_policy_request req = { .operation = 0x0A /* Get */, .object_owner = "front", .has_credential = true };

    snprintf(text, sizeof(text),
             "version: 1\n"
             "groups:\n"
             "  front:\n"
             "    ou: front\n"
             "    operations: [Get, Query]\n"
             "    credential:\n"
             "      - {username: fred, password_hash: '%s', check: when_present}\n"
             "      - {device_serial_number: sn1, password_hash: '%s', check: when_present}\n"
             "      - {username: barney, password_hash: '%s', check: when_present, act_as: guest}\n"
             "  guest:\n"
             "    ou: guest\n"
             "    operations: [Query]\n"
             "    credential: {username: own-user, password_hash: '%s', check: required}\n",
             make_hash("$6$", "p1"), make_hash("$6$", "p2"), make_hash("$6$", "p3"), make_hash("$6$", "p4"));
    policy = load(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    g = group_named(policy, "front");
    CU_ASSERT_TRUE(g->credential.present);
    CU_ASSERT_FALSE(g->credential.required);
    CU_ASSERT_EQUAL_FATAL(g->credential.next != NULL && g->credential.next->next != NULL, true);
    CU_ASSERT_EQUAL(g->credential.next->kind, KG_POLICY_CRED_DEVICE);
    CU_ASSERT_PTR_EQUAL(g->credential.next->next->act_as, group_named(policy, "guest"));

    /* Each entry by its kind: a device serial number is no username, and back. */
    req.username = "fred", req.username_len = 4, req.password = "p1", req.password_len = 2;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, &req).verdict, KG_POLICY_ALLOW);
    req.credential_kind = KG_POLICY_CRED_DEVICE;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, &req).verdict, KG_POLICY_DENY_CREDENTIAL);
    req.username = "sn1", req.username_len = 3, req.password = "p2";
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, &req).verdict, KG_POLICY_ALLOW);
    req.credential_kind = KG_POLICY_CRED_USERNAME;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, &req).verdict, KG_POLICY_DENY_CREDENTIAL);

    /* barney acts as guest: guest's operations decide (no Get), and guest's name is the group. */
    req.username = "barney", req.username_len = 6, req.password = "p3";
    d = kg_policy_decide_request(policy, &id, &req);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_OPERATION);
    CU_ASSERT_PTR_EQUAL(d.group, group_named(policy, "guest"));
    CU_ASSERT_PTR_EQUAL(kg_policy_match_request(policy, &id, &req).group, group_named(policy, "guest"));
    req.operation = 0x18; /* Query */
    req.object_owner = NULL;
    /* Verified once, against front's list: guest's own credential (for its
     * own certificates) does not judge it again. */
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &id, &req).verdict, KG_POLICY_ALLOW);
    /* With a wrong password barney acts as nobody else: front's credential check refuses. */
    req.password = "p1";
    d = kg_policy_decide_request(policy, &id, &req);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_CREDENTIAL);
    CU_ASSERT_PTR_EQUAL(d.group, g);
    kg_policy_free(policy);

    expect_one_error(G "    credential: []\n", 5, 17, "credential lists no credential");
    snprintf(text, sizeof(text), G "    credential: {username: u, device_serial_number: d, password_hash: '%s'}\n",
             make_hash("$6$", "x"));
    expect_one_error(text, 5, 17, "a credential names a username or a device_serial_number, not both");
    snprintf(text, sizeof(text), G "    credential: [{username: u, password_hash: '%s', act_as: nobody}]\n",
             make_hash("$6$", "x"));
    /* The column of the name itself, whatever length the hash before it has. */
    expect_one_error(text, 5, (unsigned)(strstr(text, "nobody") - strstr(text, "    credential")) + 1,
                     "act_as must name another group of this file, not 'nobody'");
}

/* fresh_pool: what the gateway makes ahead of need, and every way to get it wrong. */
static void test_fresh_pool(void)
{
    struct kg_policy *policy = load(G "    fresh_pool: {object_group: default, algorithm: AES, length: 256,\n"
                                      "                 usage_masks: [Encrypt, Decrypt], size: 4}\n");
    const struct kg_policy_fresh_pool *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(policy);
    p = &group_named(policy, "a")->fresh_pool;
    CU_ASSERT_TRUE(p->present);
    CU_ASSERT_STRING_EQUAL(p->object_group, "default");
    CU_ASSERT_EQUAL(p->algorithm, 3);
    CU_ASSERT_EQUAL(p->length, 256);
    CU_ASSERT_EQUAL(p->usage_mask, 0x0C);
    CU_ASSERT_EQUAL(p->size, 4);
    kg_policy_free(policy);

    expect_one_error(G "    fresh_pool: {object_group: d, algorithm: AES, length: 256, usage_masks: [Encrypt]}\n", 5, 17,
                     "fresh_pool has no size");
    expect_one_error(G "    fresh_pool: {object_group: d, algorithm: AES, length: 256, usage_masks: [Encrypt], size: 65}\n",
                     5, 94, "size must be a whole number from 1 to 64, not '65'");
    expect_one_error(G "    fresh_pool: {object_group: d, algorithm: AEZ, length: 256, usage_masks: [Encrypt], size: 1}\n",
                     5, 46, "unknown algorithm 'AEZ'");
    expect_one_error(G "    fresh_pool: [default]\n", 5, 17, "fresh_pool must be a mapping");
}

static void test_err_ca(void)
{
    expect_one_error(G "    ca_sha256: [zz]\n", 5, 17, "ca_sha256 entry 'zz' is not a SHA-256 fingerprint");
    expect_one_error(G "    ca_sha256: [\"sha256 Fingerprint=AB:CD\"]\n", 5, 17, "write only the hex digits after '='");
    expect_one_error(G "    ca_sha256: []\n", 5, 16, "ca_sha256 is empty");
    expect_one_error(G "    ca_sha256: " CA1_HEX "\n", 5, 16, "ca_sha256 must be a list, not a single value");
    expect_one_error(G "    ca_sha256:\n      - " CA1_HEX "\n      - " CA1_COLONS "\n", 7, 9, "is listed twice");
    /* One hex digit short with colons, a colon misplaced. */
    expect_one_error(G "    ca_sha256: [\"0:011:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:"
                       "66:77:88:99:AA:BB:CC:DD:EE:FF\"]\n",
                     5, 17, "is not a SHA-256 fingerprint");
    {
        char text[4096];
        size_t n = (size_t)snprintf(text, sizeof(text), G "    ca_sha256:\n");

        for (int i = 0; i < KG_POLICY_MAX_CAS + 1; i++) {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "      - %062x%02x\n", 0, i);
        }
        expect_one_error(text, 6 + KG_POLICY_MAX_CAS, 9, "more than 16 CA fingerprints");
    }
}

static void test_err_create(void)
{
    expect_one_error(G "    create: {colour: red}\n", 5, 14, "unknown key 'colour' in create");
    expect_one_error(G "    create: [AES]\n", 5, 13, "create must be a mapping, not a list");
    expect_one_error(G "    create:\n      object_types: [Symmetric Key, Secret Dat]\n", 6, 37,
                     "unknown object type 'Secret Dat'");
    expect_one_error(G "    create:\n      algorithms: [AES, aes]\n", 6, 25, "unknown algorithm 'aes'");
    expect_one_error(G "    create:\n      algorithms: [AES, AES]\n", 6, 25, "algorithm 'AES' is listed twice");
    expect_one_error(G "    create:\n      algorithms: AES\n", 6, 19, "create.algorithms must be a list");
    expect_one_error(G "    create:\n      usage_masks: [Encrypt, Encrypt/Decrypt]\n", 6, 30,
                     "unknown usage 'Encrypt/Decrypt'");
    expect_one_error(G "    create:\n      lengths: []\n", 6, 16, "create.lengths is empty");
    expect_one_error(G "    create:\n      lengths: 256\n", 6, 16, "create.lengths must be a list");
    expect_one_error(G "    create:\n      object_types: []\n      object_types: []\n", 7, 7,
                     "key 'object_types' given twice (first at line 6)");
    {
        struct kg_policy *policy = load(G "    create:\n      lengths: [128, abc, 0, 65537, 256, 128, -1, 0x80]\n");

        CU_ASSERT_PTR_NULL(policy);
        CU_ASSERT_EQUAL(errs.count, 6);
        CU_ASSERT(error_is(0, 6, 22, "a whole number of bits from 1 to 65536, not 'abc'"));
        CU_ASSERT(error_is(1, 6, 27, "not '0'"));
        CU_ASSERT(error_is(2, 6, 30, "not '65537'"));
        CU_ASSERT(error_is(3, 6, 42, "length 128 is listed twice"));
        CU_ASSERT(error_is(4, 6, 47, "not '-1'"));
        CU_ASSERT(error_is(5, 6, 51, "not '0x80'"));
    }
}

static void test_err_export_map(void)
{
    expect_one_error(G "    export: {Symmetric Key: plaintext, Secret: wrapped}\n", 5, 40,
                     "unknown object type 'Secret' in export");
    expect_one_error(G "    export: {Symmetric Key: raw}\n", 5, 29,
                     "export of 'Symmetric Key' must be wrapped, plaintext or none, not 'raw'");
    expect_one_error(G "    export: {default: none, default: wrapped}\n", 5, 29,
                     "key 'default' given twice (first at line 5)");
    expect_one_error(G "    export: {Symmetric Key: none, Symmetric Key: none}\n", 5, 35,
                     "object type 'Symmetric Key' is given twice in export");
    expect_one_error(G "    export: {Symmetric Key: [none]}\n", 5, 29, "an export mode must be a single value");
}

static void test_err_wrapping_keys(void)
{
    struct kg_policy *policy = load(G "    wrapping_keys: [own, \"bad uid\", own, k1, k1]\n");

    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT(error_is(0, 5, 26, "wrapping key 'bad uid' must be own, in_scope or a UID"));
    CU_ASSERT(error_is(1, 5, 37, "wrapping key 'own' is listed twice"));
    CU_ASSERT(error_is(2, 5, 46, "wrapping key 'k1' is listed twice"));
    expect_one_error(G "    wrapping_keys: own\n", 5, 20, "wrapping_keys must be a list, not a single value");
}

static void test_err_scope_list(void)
{
    struct kg_policy *policy = load(G "    scope: [ghost, own, b, b]\n  b:\n    ou: b\n");

    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 3);
    CU_ASSERT(error_is(0, 5, 13, "scope names group 'ghost', which is not defined"));
    CU_ASSERT(error_is(1, 5, 20, "'own' stands alone"));
    CU_ASSERT(error_is(2, 5, 28, "group 'b' is listed twice in scope"));
    expect_one_error(G "    scope: []\n", 5, 12, "scope is an empty list");
    /* A later group may be named; the own name is harmless. */
    policy = load(G "    scope: [b, a]\n  b:\n    ou: b\n");
    CU_ASSERT_PTR_NOT_NULL(policy);
    kg_policy_free(policy);
}

static void test_err_residency(void)
{
    expect_one_error(G "    residency: cloud\n", 5, 16, "residency must be wrapped or hsm, not 'cloud'");
    expect_one_error(G "    residency: [hsm]\n", 5, 16, "residency must be a single value, not a list");
}

static void test_err_credential(void)
{
    char text[1024];
    const char *good = make_hash("$y$", "x");
    char salt_only[CRYPT_GENSALT_OUTPUT_SIZE];
    struct kg_policy *policy;

    policy = load(G "    credential:\n      username: u\n      password: hunter2\n");
    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(error_is(0, 6, 7, "credential has no password_hash"));
    CU_ASSERT(error_is(1, 7, 7, "a password is never written in a policy"));
    /* The password itself never appears in a message. */
    for (size_t i = 0; i < errs.count; i++) {
        CU_ASSERT_PTR_NULL(strstr(errs.items[i].message, "hunter2"));
    }

    snprintf(text, sizeof(text), G "    credential: {password_hash: '%s'}\n", good);
    expect_one_error(text, 5, 17, "credential has no username or device_serial_number");
    expect_one_error(G "    credential: {username: u, password_hash: hunter2}\n", 5, 46,
                     "password_hash is not a crypt(3) hash");
    CU_ASSERT_PTR_NULL(strstr(errs.items[0].message, "hunter2"));
    expect_one_error(G "    credential: {username: u, password_hash: '$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.'}\n", 5, 46,
                     "password_hash uses a legacy method");
    expect_one_error(G "    credential: {username: u, password_hash: '$9$x'}\n", 5, 46,
                     "password_hash is not a crypt(3) password hash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(crypt_gensalt_rn("$y$", 0, NULL, 0, salt_only, sizeof(salt_only)));
    snprintf(text, sizeof(text), G "    credential: {username: u, password_hash: '%s'}\n", salt_only);
    expect_one_error(text, 5, 46, "password_hash is not a complete crypt(3) hash");
    snprintf(text, sizeof(text), G "    credential: {username: u, password_hash: '%s', check: sometimes}\n", good);
    expect_one_error(text, 5, 46 + (unsigned)strlen(good) + 2 + 9, "check must be required or when_present");
    snprintf(text, sizeof(text), G "    credential: {username: u, user: v, password_hash: '%s'}\n", good);
    expect_one_error(text, 5, 31, "unknown key 'user' in credential");
    snprintf(text, sizeof(text), G "    credential: {username: \"\", password_hash: '%s'}\n", good);
    expect_one_error(text, 5, 28, "username must be 1 to 256 bytes");
    expect_one_error(G "    credential: required\n", 5, 17, "credential must be a mapping, not a single value");
}

static void test_err_limits(void)
{
    struct kg_policy *policy = load(G "    limits: {max_live_objects: -1, requests_per_second: 0}\n");

    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(error_is(0, 5, 32, "max_live_objects must be a whole number from 0 to 1000000000, not '-1'"));
    CU_ASSERT(error_is(1, 5, 57, "requests_per_second must be a whole number from 1 to 1000000, not '0'"));
    policy = load(G "    limits: {max_live_objects: 1000000001, burst: 5}\n");
    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(error_is(0, 5, 32, "not '1000000001'"));
    CU_ASSERT(error_is(1, 5, 44, "unknown key 'burst' in limits"));
    expect_one_error(G "    limits:\n      requests_per_second: 1000001\n", 6, 28, "not '1000001'");
    expect_one_error(G "    limits:\n      requests_per_second: fast\n", 6, 28, "not 'fast'");
    expect_one_error(G "    limits:\n      max_live_objects: 99999999999999999999999\n", 6, 25,
                     "max_live_objects must be a whole number");
    expect_one_error(G "    limits: 5\n", 5, 13, "limits must be a mapping, not a single value");
}

static void test_err_named_cases(void)
{
    struct kg_policy *policy = load("version: 1\nno_ou: ghosts\nambiguous: [a]\ngroups:\n  a:\n    ou: a\n");

    CU_ASSERT_PTR_NULL(policy);
    CU_ASSERT_EQUAL(errs.count, 2);
    CU_ASSERT(error_is(0, 2, 8, "no_ou must be deny or the name of a group, not 'ghosts'"));
    CU_ASSERT(error_is(1, 3, 12, "ambiguous must be a single value, not a list"));
    /* Without a group: still checked. */
    expect_one_error("version: 1\nambiguous: x\ngroups: {}\n", 2, 12, "ambiguous must be deny or the name of a group");
    /* A group without ou is fine when named, an error when not. */
    policy = load("groups:\n  g:\n    operations: [Query]\nno_ou: g\nversion: 1\n");
    CU_ASSERT_PTR_NOT_NULL(policy);
    kg_policy_free(policy);
    expect_one_error("version: 1\nno_ou: deny\ngroups:\n  g:\n    operations: [Query]\n", 4, 3, "group 'g' has no ou");
    expect_one_error("version: 1\nno_ou: g\nno_ou: deny\ngroups:\n  g: {}\n", 3, 1, "key 'no_ou' given twice");
}

/* What the integration suite expects of the dev policy, at the decision level. */
static void test_conf_policy_requests(void)
{
    char path[4096];
    struct kg_policy *policy = NULL;
    const char *vs[] = { "vsphere" }, *bk[] = { "backup" }, *ad[] = { "admin" }, *un[] = { "unlisted" };
    struct kg_identity vsphere = ident(vs, 1), backup = ident(bk, 1), admin = ident(ad, 1), unlisted = ident(un, 1);
    const struct kg_policy_request create = { .operation = 0x01, .object_type = 2, .algorithm = 3, .length = 256,
                                              .usage_mask = 12, .has_usage_mask = true };
    static const uint32_t vcenter_ops[] = { 0x1E, 0x18, 0x0B, 0x0D, 0x12, 0x0C, 0x0E };
    struct kg_policy_request req;
    struct kg_policy_decision d;

    CU_ASSERT_FATAL((size_t)snprintf(path, sizeof(path), "%s/conf/policy.yaml", kg_test_source_dir()) < sizeof(path));
    CU_ASSERT_EQUAL_FATAL(kg_policy_load_file(path, &policy, &errs), 0);
    CU_ASSERT_PTR_NULL(policy->no_ou_group);
    CU_ASSERT_PTR_NULL(policy->ambiguous_group);
    CU_ASSERT(policy->no_ou_line > 0 && policy->ambiguous_line > 0);

    /* vCenter: the VSPHERE.md sequence on its own keys, Get in plaintext. */
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &create).verdict, KG_POLICY_ALLOW);
    for (size_t i = 0; i < sizeof(vcenter_ops) / sizeof(vcenter_ops[0]); i++) {
        bool no_object = vcenter_ops[i] == 0x1E || vcenter_ops[i] == 0x18;

        req = (struct kg_policy_request){ .operation = vcenter_ops[i], .object_owner = no_object ? NULL : "vsphere" };
        CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &req).verdict, KG_POLICY_ALLOW);
    }
    req = (struct kg_policy_request){ .operation = 0x0A, .object_owner = "vsphere", .object_type = 2,
                                      .key_material = true };
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &req).verdict, KG_POLICY_ALLOW);
    /* With a credential it does not check, and without one. */
    req.has_credential = true;
    req.username = "vcenter";
    req.username_len = 7;
    req.password = "x";
    req.password_len = 1;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &req).verdict, KG_POLICY_ALLOW);
    /* Not what vCenter never sends, nor others' keys. */
    req = (struct kg_policy_request){ .operation = 0x14, .object_owner = "vsphere" };
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &req).verdict, KG_POLICY_DENY_OPERATION);
    req = (struct kg_policy_request){ .operation = 0x0A, .object_owner = "backup", .object_type = 2,
                                      .key_material = true };
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &vsphere, &req).verdict, KG_POLICY_DENY_SCOPE);

    /* backup: creates and registers, but Get in plaintext is Permission Denied. */
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &backup, &create).verdict, KG_POLICY_ALLOW);
    req = create;
    req.operation = 0x03;
    req.length = 128;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &backup, &req).verdict, KG_POLICY_ALLOW);
    req = (struct kg_policy_request){ .operation = 0x0A, .object_owner = "backup", .object_type = 2,
                                      .key_material = true };
    d = kg_policy_decide_request(policy, &backup, &req);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_EXPORT);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups.backup.export");
    CU_ASSERT(d.line > 0);
    req.wrapped = true;
    req.wrapping_key_uid = "11111111-2222-3333-4444-555555555555";
    req.wrapping_key_owner = "backup";
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &backup, &req).verdict, KG_POLICY_ALLOW);
    req.wrapping_key_owner = "vsphere";
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &backup, &req).verdict, KG_POLICY_DENY_WRAPPING_KEY);
    req = (struct kg_policy_request){ .operation = 0x08 };
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &backup, &req).verdict, KG_POLICY_ALLOW);

    /* admin: everything on every key. */
    req = create;
    req.operation = 0x03;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &admin, &req).verdict, KG_POLICY_ALLOW);
    req.length = 128;
    req.usage_mask = 0xFFFFF;
    CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &admin, &req).verdict, KG_POLICY_ALLOW);
    for (uint32_t op = 0x01; op <= 0x2B; op++) {
        req = (struct kg_policy_request){ .operation = op, .object_owner = "vsphere", .object_type = 2,
                                          .algorithm = 3, .length = 256, .key_material = op == 0x0A };
        CU_ASSERT_EQUAL(kg_policy_decide_request(policy, &admin, &req).verdict, KG_POLICY_ALLOW);
    }

    /* unlisted: nothing at all. */
    req = (struct kg_policy_request){ .operation = 0x1E };
    d = kg_policy_decide_request(policy, &unlisted, &req);
    CU_ASSERT_EQUAL(d.verdict, KG_POLICY_DENY_UNKNOWN_OU);
    CU_ASSERT_STRING_EQUAL(d.rule, "groups");
    kg_policy_free(policy);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_ops_table),
        KG_TEST(test_load_conf_policy),
        KG_TEST(test_load_defaults),
        KG_TEST(test_load_empty_groups_denies_all),
        KG_TEST(test_err_unknown_top_key),
        KG_TEST(test_err_unknown_group_key),
        KG_TEST(test_err_missing_ou),
        KG_TEST(test_err_empty_ou),
        KG_TEST(test_err_duplicate_group),
        KG_TEST(test_err_duplicate_ou),
        KG_TEST(test_err_unknown_operation),
        KG_TEST(test_err_bad_export),
        KG_TEST(test_err_bad_scope),
        KG_TEST(test_err_wrong_kinds),
        KG_TEST(test_err_version),
        KG_TEST(test_err_duplicate_keys),
        KG_TEST(test_err_group_name),
        KG_TEST(test_err_yaml_syntax),
        KG_TEST(test_err_structure),
        KG_TEST(test_err_sanitized),
        KG_TEST(test_err_several_at_once),
        KG_TEST(test_err_cap),
        KG_TEST(test_err_files),
        KG_TEST(test_decide_allow),
        KG_TEST(test_decide_denials),
        KG_TEST(test_decide_scope),
        KG_TEST(test_decide_two_ous_one_matches),
        KG_TEST(test_decide_unicode_ou),
        KG_TEST(test_decide_operation_range),
        KG_TEST(test_in_scope),
        KG_TEST(test_names_tables),
        KG_TEST(test_load_full_schema),
        KG_TEST(test_conf_policy_requests),
        KG_TEST(test_decide_request_table),
        KG_TEST(test_decide_rules_short_form),
        KG_TEST(test_identity_edges),
        KG_TEST(test_credentials),
        KG_TEST(test_credential_list_and_act_as),
        KG_TEST(test_fresh_pool),
        KG_TEST(test_credentials_threads),
        KG_TEST(test_rate_limit),
        KG_TEST(test_err_ca),
        KG_TEST(test_err_create),
        KG_TEST(test_err_export_map),
        KG_TEST(test_err_wrapping_keys),
        KG_TEST(test_err_scope_list),
        KG_TEST(test_err_residency),
        KG_TEST(test_err_credential),
        KG_TEST(test_err_limits),
        KG_TEST(test_err_named_cases),
    };

    return kg_test_run("policy", cases, sizeof(cases) / sizeof(cases[0]));
}
