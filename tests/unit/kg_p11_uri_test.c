/*
 * kg_p11_uri_test.c - the PKCS#11 URI parser (kg_p11_uri.h) and tls.key in
 * gateway.yaml (kg_config.c), which takes a PEM path or such a URI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kg_config.h"
#include "kg_p11_uri.h"
#include "kg_result.h"
#include "kg_test.h"

/* Parse `s`; it must fail with KG_ERR_CONFIG and a text containing `needle`. */
static void expect_bad(const char *s, const char *needle)
{
    struct kg_p11_uri uri;

    kg_error_clear();
    CU_ASSERT_TRUE(kg_failed(kg_p11_uri_parse(s, &uri)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    if (strstr(kg_error_text(), needle) == NULL) {
        fprintf(stderr, "for '%s': wanted '%s' in '%s'\n", s, needle, kg_error_text());
        CU_FAIL("error text");
    }
}

static void test_scheme(void)
{
    CU_ASSERT_TRUE(kg_p11_uri_is("pkcs11:object=a"));
    CU_ASSERT_TRUE(kg_p11_uri_is("PKCS11:object=a"));
    CU_ASSERT_TRUE(kg_p11_uri_is("Pkcs11:"));
    CU_ASSERT_FALSE(kg_p11_uri_is("pkcs11"));
    CU_ASSERT_FALSE(kg_p11_uri_is("pkcs12:object=a"));
    CU_ASSERT_FALSE(kg_p11_uri_is("/etc/kmipgw/pkcs11:key.pem"));
    CU_ASSERT_FALSE(kg_p11_uri_is("pki/server.key"));
    CU_ASSERT_FALSE(kg_p11_uri_is(""));
    CU_ASSERT_FALSE(kg_p11_uri_is(NULL));
    expect_bad("pki/server.key", "does not start with 'pkcs11:'");
}

static void test_object_only(void)
{
    struct kg_p11_uri uri;

    CU_ASSERT_TRUE_FATAL(kg_ok(kg_p11_uri_parse("pkcs11:object=kmipgw-tls", &uri)));
    CU_ASSERT_STRING_EQUAL(uri.object, "kmipgw-tls");
    CU_ASSERT_EQUAL(uri.id_len, 0);
    CU_ASSERT_FALSE(uri.has_token);
    CU_ASSERT_STRING_EQUAL(uri.token, "");
}

static void test_all_attributes_any_order(void)
{
    struct kg_p11_uri uri;
    static const uint8_t want[] = { 0x01, 0xa2 };

    CU_ASSERT_TRUE_FATAL(kg_ok(kg_p11_uri_parse("pkcs11:token=kmipgw;id=%01%A2;object=tls%20key", &uri)));
    CU_ASSERT_STRING_EQUAL(uri.object, "tls key");
    CU_ASSERT_TRUE(uri.has_token);
    CU_ASSERT_STRING_EQUAL(uri.token, "kmipgw");
    CU_ASSERT_EQUAL_FATAL(uri.id_len, 2);
    CU_ASSERT_EQUAL(memcmp(uri.id, want, 2), 0);
}

static void test_id_hex(void)
{
    struct kg_p11_uri uri;
    static const uint8_t want[] = { 0x01, 0xa2, 0xff };

    CU_ASSERT_TRUE_FATAL(kg_ok(kg_p11_uri_parse("pkcs11:object=k;id=01a2FF", &uri)));
    CU_ASSERT_EQUAL_FATAL(uri.id_len, 3);
    CU_ASSERT_EQUAL(memcmp(uri.id, want, 3), 0);
    /* The bare-hex reading: RFC 7512 alone would make this the bytes '0' '1'. */
    CU_ASSERT_TRUE_FATAL(kg_ok(kg_p11_uri_parse("pkcs11:object=k;id=01", &uri)));
    CU_ASSERT_EQUAL(uri.id_len, 1);
    CU_ASSERT_EQUAL(uri.id[0], 0x01);
}

static void test_id_bad(void)
{
    expect_bad("pkcs11:object=k;id=", "id is empty");
    expect_bad("pkcs11:object=k;id=1", "even number");
    expect_bad("pkcs11:object=k;id=0g", "hex digits");
    expect_bad("pkcs11:object=k;id=01%02", "mixes");
    expect_bad("pkcs11:object=k;id=%01%2", "two hex digits");
    expect_bad("pkcs11:object=k;id=%0", "two hex digits");
}

static void test_id_length_bound(void)
{
    char s[64 + 3 * (KG_P11_URI_MAX_ID + 1)];
    struct kg_p11_uri uri;
    size_t o;

    /* Exactly the cap in both forms passes; one byte more fails. */
    o = (size_t)snprintf(s, sizeof(s), "pkcs11:object=k;id=");
    for (size_t i = 0; i < KG_P11_URI_MAX_ID; i++) {
        o += (size_t)snprintf(s + o, sizeof(s) - o, "%%%02zx", i);
    }
    CU_ASSERT_TRUE(kg_ok(kg_p11_uri_parse(s, &uri)));
    CU_ASSERT_EQUAL(uri.id_len, KG_P11_URI_MAX_ID);
    snprintf(s + o, sizeof(s) - o, "%%ff");
    expect_bad(s, "id is longer than 64 bytes");

    o = (size_t)snprintf(s, sizeof(s), "pkcs11:object=k;id=");
    for (size_t i = 0; i < KG_P11_URI_MAX_ID; i++) {
        o += (size_t)snprintf(s + o, sizeof(s) - o, "%02zx", i);
    }
    CU_ASSERT_TRUE(kg_ok(kg_p11_uri_parse(s, &uri)));
    CU_ASSERT_EQUAL(uri.id_len, KG_P11_URI_MAX_ID);
    snprintf(s + o, sizeof(s) - o, "ff");
    expect_bad(s, "id is longer than 64 bytes");
}

static void test_label_bounds(void)
{
    char s[KG_P11_URI_MAX + 16];
    struct kg_p11_uri uri;
    size_t o = (size_t)snprintf(s, sizeof(s), "pkcs11:object=");

    memset(s + o, 'a', KG_P11_URI_MAX_LABEL);
    s[o + KG_P11_URI_MAX_LABEL] = '\0';
    CU_ASSERT_TRUE(kg_ok(kg_p11_uri_parse(s, &uri)));
    CU_ASSERT_EQUAL(strlen(uri.object), KG_P11_URI_MAX_LABEL);
    strcat(s, "a");
    expect_bad(s, "object is longer than 255 bytes");

    expect_bad("pkcs11:object=k;token=123456789012345678901234567890123", "token is longer than 32 bytes");
    CU_ASSERT_TRUE(kg_ok(kg_p11_uri_parse("pkcs11:object=k;token=12345678901234567890123456789012", &uri)));
    expect_bad("pkcs11:object=", "object is empty");
    expect_bad("pkcs11:object=k;token=", "token is empty");
    expect_bad("pkcs11:object=a%00b", "NUL byte");
}

static void test_whole_length_bound(void)
{
    char *s = malloc(KG_P11_URI_MAX + 2);
    struct kg_p11_uri uri;

    CU_ASSERT_FATAL(s != NULL);
    /* object=k, then ';' pads that make it exactly the cap: still parsed
     * (and refused for its empty attributes), one byte more is refused first. */
    memset(s, ';', KG_P11_URI_MAX + 1);
    memcpy(s, "pkcs11:object=k", 15);
    s[KG_P11_URI_MAX] = '\0';
    expect_bad(s, "empty attribute");
    s[KG_P11_URI_MAX] = ';';
    s[KG_P11_URI_MAX + 1] = '\0';
    expect_bad(s, "longer than 1024 bytes");
    CU_ASSERT_TRUE(kg_failed(kg_p11_uri_parse(s, &uri)));
    free(s);
}

static void test_percent_decoding(void)
{
    struct kg_p11_uri uri;

    CU_ASSERT_TRUE_FATAL(kg_ok(kg_p11_uri_parse("pkcs11:object=a%2fb%3Bc%25d:[]@!$'()*+,=&-._~", &uri)));
    CU_ASSERT_STRING_EQUAL(uri.object, "a/b;c%d:[]@!$'()*+,=&-._~");
    expect_bad("pkcs11:object=a b", "must be percent-encoded");
    expect_bad("pkcs11:object=a/b", "must be percent-encoded");
    expect_bad("pkcs11:object=a\"b", "must be percent-encoded");
    expect_bad("pkcs11:object=a%", "two hex digits");
    expect_bad("pkcs11:object=a%g0", "two hex digits");
}

static void test_structure_errors(void)
{
    expect_bad("pkcs11:", "names no key");
    expect_bad("pkcs11:id=01", "names no key");
    expect_bad("pkcs11:token=kmipgw", "names no key");
    expect_bad("pkcs11:object=a;", "empty attribute");
    expect_bad("pkcs11:;object=a", "empty attribute");
    expect_bad("pkcs11:object=a;;id=01", "empty attribute");
    expect_bad("pkcs11:object", "attribute 'object' has no '=value'");
    expect_bad("pkcs11:object=a;object=b", "attribute 'object' given twice");
    expect_bad("pkcs11:object=a;id=01;id=02", "attribute 'id' given twice");
    expect_bad("pkcs11:object=a;token=t;token=t", "attribute 'token' given twice");
    expect_bad("pkcs11:object=a;type=private", "attribute 'type' is not accepted (only object, id and token)");
    expect_bad("pkcs11:object=a;Object=b", "attribute 'Object' is not accepted");
    expect_bad("pkcs11:object=a;x y=1", "attribute '(unreadable)' is not accepted");
    expect_bad("pkcs11:object=a#frag", "fragment");
}

/* A PIN put into the URI's query must not be echoed. */
static void test_query_refused_unquoted(void)
{
    expect_bad("pkcs11:object=a?pin-value=S3cretPIN", "query attributes");
    CU_ASSERT_PTR_NULL(strstr(kg_error_text(), "S3cret"));
    expect_bad("pkcs11:object=a;pin-value=S3cretPIN", "attribute 'pin-value' is not accepted");
    CU_ASSERT_PTR_NULL(strstr(kg_error_text(), "S3cret"));
    expect_bad("pkcs11:object=a?module-path=/tmp/evil.so", "query attributes");
    CU_ASSERT_PTR_NULL(strstr(kg_error_text(), "evil"));
}

/* ---- tls.key in gateway.yaml -------------------------------------------- */

static char tmpdir[] = "/tmp/kg_p11_uri_test_XXXXXX";
static char cfg_path[sizeof(tmpdir) + 32];

/* Write a minimal config whose tls.key line is `key` and load it. */
static kg_result load_with_key(const char *key, const char *token, struct kg_config **cfg)
{
    FILE *f;

    snprintf(cfg_path, sizeof(cfg_path), "%s/gateway.yaml", tmpdir);
    f = fopen(cfg_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f,
            "tls:\n"
            "  certificate: server.crt\n"
            "  key: %s\n"
            "  client_ca: ca.crt\n"
            "hsm:\n"
            "  module: /usr/lib/softhsm/libsofthsm2.so\n"
            "  token_label: %s\n"
            "  pin_env: PIN\n"
            "store:\n"
            "  path: kmipgw.db\n"
            "policy:\n"
            "  path: policy.yaml\n",
            key, token);
    CU_ASSERT_FATAL(fclose(f) == 0);
    kg_error_clear();
    return kg_config_load(cfg_path, cfg);
}

static void test_config_key_pem_path(void)
{
    struct kg_config *cfg = NULL;
    char want[sizeof(tmpdir) + 32];

    CU_ASSERT_TRUE_FATAL(kg_ok(load_with_key("pki/server.key", "kmipgw", &cfg)));
    snprintf(want, sizeof(want), "%s/pki/server.key", tmpdir);
    CU_ASSERT_STRING_EQUAL(cfg->tls_key, want);
    kg_config_free(cfg);
}

static void test_config_key_uri_kept_verbatim(void)
{
    struct kg_config *cfg = NULL;

    CU_ASSERT_TRUE_FATAL(kg_ok(load_with_key("\"pkcs11:object=kmipgw-tls;id=01;token=kmipgw\"", "kmipgw", &cfg)));
    /* Not resolved against the config's directory like a path. */
    CU_ASSERT_STRING_EQUAL(cfg->tls_key, "pkcs11:object=kmipgw-tls;id=01;token=kmipgw");
    kg_config_free(cfg);
    CU_ASSERT_TRUE_FATAL(kg_ok(load_with_key("pkcs11:object=kmipgw-tls", "kmipgw", &cfg)));
    CU_ASSERT_STRING_EQUAL(cfg->tls_key, "pkcs11:object=kmipgw-tls");
    kg_config_free(cfg);
}

static void test_config_key_uri_malformed(void)
{
    struct kg_config *cfg = (struct kg_config *)1;
    char want[sizeof(tmpdir) + 64];

    CU_ASSERT_TRUE(kg_failed(load_with_key("pkcs11:object=a;type=private", "kmipgw", &cfg)));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    /* file:line:column of the value, then the parser's reason. */
    snprintf(want, sizeof(want), "%s/gateway.yaml:3:8: tls.key: pkcs11 URI: attribute 'type'", tmpdir);
    if (strstr(kg_error_text(), want) == NULL) {
        fprintf(stderr, "wanted '%s' in '%s'\n", want, kg_error_text());
        CU_FAIL("error text");
    }
    CU_ASSERT_TRUE(kg_failed(load_with_key("\"pkcs11:object=a?pin-value=S3cret\"", "kmipgw", &cfg)));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "query attributes"));
    CU_ASSERT_PTR_NULL(strstr(kg_error_text(), "S3cret"));
}

static void test_config_key_uri_token_mismatch(void)
{
    struct kg_config *cfg = (struct kg_config *)1;
    char want[sizeof(tmpdir) + 64];

    CU_ASSERT_TRUE(kg_failed(load_with_key("pkcs11:object=a;token=other", "kmipgw", &cfg)));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s/gateway.yaml:3:3: tls.key names token 'other'", tmpdir);
    if (strstr(kg_error_text(), want) == NULL || strstr(kg_error_text(), "hsm.token_label 'kmipgw'") == NULL) {
        fprintf(stderr, "wanted '%s' in '%s'\n", want, kg_error_text());
        CU_FAIL("error text");
    }
    /* The same token passes; so does a prefix of it only if it is equal. */
    CU_ASSERT_TRUE_FATAL(kg_ok(load_with_key("pkcs11:object=a;token=kmipgw", "kmipgw", &cfg)));
    kg_config_free(cfg);
    CU_ASSERT_TRUE(kg_failed(load_with_key("pkcs11:object=a;token=kmip", "kmipgw", &cfg)));
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_scheme),
        KG_TEST(test_object_only),
        KG_TEST(test_all_attributes_any_order),
        KG_TEST(test_id_hex),
        KG_TEST(test_id_bad),
        KG_TEST(test_id_length_bound),
        KG_TEST(test_label_bounds),
        KG_TEST(test_whole_length_bound),
        KG_TEST(test_percent_decoding),
        KG_TEST(test_structure_errors),
        KG_TEST(test_query_refused_unquoted),
        KG_TEST(test_config_key_pem_path),
        KG_TEST(test_config_key_uri_kept_verbatim),
        KG_TEST(test_config_key_uri_malformed),
        KG_TEST(test_config_key_uri_token_mismatch),
    };
    int failed;

    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    failed = kg_test_run("p11_uri", cases, sizeof(cases) / sizeof(cases[0]));
    unlink(cfg_path);
    rmdir(tmpdir);
    return failed;
}
