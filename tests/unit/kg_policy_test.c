/*
 * kg_policy_test.c - policy loader, checker and decision function.
 *
 * Every checker test asserts the exact line:column, because "names file:line
 * for every mistake" is the promise made to security officers.
 */
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
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x2C));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(64));
    CU_ASSERT_PTR_NULL(kg_policy_operation_name(0x80000001u));
    CU_ASSERT_EQUAL(kg_policy_operation_code("get"), 0); /* case-sensitive */
    CU_ASSERT_EQUAL(kg_policy_operation_code("Rekey"), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code("Get "), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code(""), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_code(NULL), 0);
    CU_ASSERT_EQUAL(kg_policy_operation_mask_all(), ((UINT64_C(1) << 0x2C) - 1) & ~UINT64_C(1));
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
                     5, 12, "scope must be own or all, not 'everyone'");
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
                     "export must be a single value, not a list");
    expect_one_error("version: 1\ngroups:\n  a:\n    ou: a\n    scope: {x: 1}\n", 5, 12,
                     "scope must be a single value, not a mapping");
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
    CU_ASSERT_EQUAL(kg_policy_decide(policy, &id, 0x2C, NULL).verdict, KG_POLICY_DENY_OPERATION);
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
    };

    return kg_test_run("policy", cases, sizeof(cases) / sizeof(cases[0]));
}
