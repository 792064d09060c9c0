/*
 * kg_p11_import_test.c - private and public keys as components
 * (kg_p11_import.h): the DER walker names OpenSSL's own encodings' integers
 * right and refuses malformed DER; the writer gives back OpenSSL's bytes
 * exactly; a private key imported into a real SoftHSMv2 token reads back
 * the same and signs; a failing HSM leaves neither a blob nor a session
 * object; public keys go to SPKI and back. Passes with a message without
 * SoftHSM (the HSM tests only).
 */
#include "kg_test.h"
#include "kg_test_hsm.h"

#include "kg_p11.h"
#include "kg_p11_import.h"
#include "kg_p11_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define HSM_OR_SKIP(p11) KG_TEST_HSM_OR_SKIP(p11, "kgimport")

/* A key made by OpenSSL once per program: "RSA" (2048), "DSA" (2048) or "EC" (P-256). */
static EVP_PKEY *test_key(const char *type)
{
    static EVP_PKEY *keys[3];
    int i = strcmp(type, "RSA") == 0 ? 0 : strcmp(type, "DSA") == 0 ? 1 : 2;

    if (keys[i] == NULL) {
        if (i == 0) {
            keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        } else if (i == 2) {
            keys[i] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        } else {
            EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
            EVP_PKEY *params = NULL;
            EVP_PKEY_CTX *kctx = NULL;

            EVP_PKEY_paramgen_init(pctx);
            EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 2048);
            EVP_PKEY_paramgen(pctx, &params);
            kctx = EVP_PKEY_CTX_new(params, NULL);
            EVP_PKEY_keygen_init(kctx);
            EVP_PKEY_keygen(kctx, &keys[i]);
            EVP_PKEY_CTX_free(kctx);
            EVP_PKEY_free(params);
            EVP_PKEY_CTX_free(pctx);
        }
    }
    return keys[i];
}

/* DER of `pkey`: PKCS#8 (pkcs8) or the traditional form (RSAPrivateKey). */
static int der_of(EVP_PKEY *pkey, bool pkcs8, unsigned char **out)
{
    if (pkcs8) {
        PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);
        int n = i2d_PKCS8_PRIV_KEY_INFO(p8, out);

        PKCS8_PRIV_KEY_INFO_free(p8);
        return n;
    }
    return i2d_PrivateKey(pkey, out);
}

/* Is span `s` the value of BIGNUM parameter `name` of `pkey`? */
static bool span_is(const struct kg_p11_span *s, EVP_PKEY *pkey, const char *name)
{
    BIGNUM *want = NULL;
    BIGNUM *got = BN_bin2bn(s->data, (int)s->len, NULL);
    bool same = EVP_PKEY_get_bn_param(pkey, name, &want) == 1 && got != NULL && BN_cmp(want, got) == 0;

    BN_free(want);
    BN_free(got);
    return same;
}

static const char *const rsa_names[] = { OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                         OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                         OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                         OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1 };
static const char *const dsa_names[] = { OSSL_PKEY_PARAM_FFC_P, OSSL_PKEY_PARAM_FFC_Q, OSSL_PKEY_PARAM_FFC_G,
                                         OSSL_PKEY_PARAM_PRIV_KEY };

static void check_parts(const struct kg_p11_parts *parts, EVP_PKEY *pkey, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(span_is(&parts->part[i], pkey, names[i]));
    }
}

static void test_rsa_der_walk_and_write(void)
{
    EVP_PKEY *pkey = test_key("RSA");

    CU_ASSERT_FATAL(pkey != NULL);
    for (int pkcs8 = 0; pkcs8 <= 1; pkcs8++) {
        unsigned char *der = NULL;
        int len = der_of(pkey, pkcs8, &der);
        struct kg_p11_parts parts;
        struct kg_secret *back = NULL;
        enum kg_p11_private_format f = pkcs8 ? KG_P11_PRIVATE_PKCS8 : KG_P11_PRIVATE_PKCS1;

        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT_FATAL(kg_ok(kg_p11_private_from_der(der, (size_t)len, f, &parts)));
        CU_ASSERT(parts.kind == KG_P11_KEY_RSA_PRIVATE && parts.count == 8);
        check_parts(&parts, pkey, rsa_names, 8);
        /* Spans point into the input: nothing was copied. */
        CU_ASSERT(parts.part[2].data > der && parts.part[2].data < der + len);
        CU_ASSERT(kg_p11_span_bits(parts.part[0]) == 2048);
        CU_ASSERT_FATAL(kg_ok(kg_p11_private_to_der(&parts, f, &back)));
        CU_ASSERT(back->len == (size_t)len && memcmp(back->data, der, (size_t)len) == 0);
        kg_secret_free(back);
        OPENSSL_free(der);
    }
}

static void test_dsa_and_ec_pkcs8(void)
{
    EVP_PKEY *dsa = test_key("DSA");
    EVP_PKEY *ec = test_key("EC");
    unsigned char *der = NULL;
    int len;
    struct kg_p11_parts parts;
    struct kg_secret *back = NULL;

    CU_ASSERT_FATAL(dsa != NULL && ec != NULL);
    len = der_of(dsa, true, &der);
    CU_ASSERT_FATAL(kg_ok(kg_p11_private_from_der(der, (size_t)len, KG_P11_PRIVATE_PKCS8, &parts)));
    CU_ASSERT(parts.kind == KG_P11_KEY_DSA_PRIVATE && parts.count == 4);
    check_parts(&parts, dsa, dsa_names, 4);
    CU_ASSERT_FATAL(kg_ok(kg_p11_private_to_der(&parts, KG_P11_PRIVATE_PKCS8, &back)));
    CU_ASSERT(back->len == (size_t)len && memcmp(back->data, der, (size_t)len) == 0);
    kg_secret_free(back);
    /* DSA has no PKCS#1 form. */
    CU_ASSERT(kg_failed(kg_p11_private_to_der(&parts, KG_P11_PRIVATE_PKCS1, &back)) &&
              kg_errno() == KG_ERR_UNSUPPORTED_FORMAT && back == NULL);
    CU_ASSERT(kg_failed(kg_p11_private_from_der(der, (size_t)len, KG_P11_PRIVATE_PKCS1, &parts)) &&
              kg_errno() == KG_ERR_INVALID_FIELD);
    OPENSSL_free(der);
    der = NULL;

    len = der_of(ec, true, &der);
    CU_ASSERT_FATAL(kg_ok(kg_p11_private_from_der(der, (size_t)len, KG_P11_PRIVATE_PKCS8, &parts)));
    CU_ASSERT(parts.kind == KG_P11_KEY_EC_PRIVATE && parts.count == 2);
    CU_ASSERT(span_is(&parts.part[1], ec, OSSL_PKEY_PARAM_PRIV_KEY));
    CU_ASSERT(parts.part[0].len == 10 && parts.part[0].data[0] == 0x06); /* the P-256 OID, whole */
    CU_ASSERT(kg_failed(kg_p11_private_to_der(&parts, KG_P11_PRIVATE_PKCS8, &back)) &&
              kg_errno() == KG_ERR_UNSUPPORTED_FORMAT);
    OPENSSL_free(der);
}

/* Every malformed form is refused, and *out is left empty. */
static void test_der_refusals(void)
{
    EVP_PKEY *pkey = test_key("RSA");
    unsigned char *der = NULL;
    int len = der_of(pkey, false, &der);
    uint8_t *bad = malloc((size_t)len + 8);
    struct kg_p11_parts parts;
    /* A PKCS#8 of an unknown algorithm (1.2.3.4) around an empty key. */
    static const uint8_t unknown_alg[] = { 0x30, 0x0D, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03,
                                           0x2A, 0x03, 0x04, 0x04, 0x01, 0x00 };
    /* RSAPrivateKey with a four-byte length form (too long for us). */
    static const uint8_t long_len[] = { 0x30, 0x84, 0x00, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00 };

    CU_ASSERT_FATAL(len > 16 && bad != NULL);
#define REFUSED(buf, n, fmt, err)                                                                   \
    do {                                                                                            \
        memset(&parts, 0xAA, sizeof(parts));                                                        \
        CU_ASSERT(kg_failed(kg_p11_private_from_der((buf), (n), (fmt), &parts)) && kg_errno() == (err)); \
        CU_ASSERT(parts.count == 0 && parts.part[0].data == NULL);                                  \
    } while (0)
    REFUSED(der, (size_t)len - 1, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD); /* truncated */
    memcpy(bad, der, (size_t)len);
    bad[len] = 0;
    REFUSED(bad, (size_t)len + 1, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD); /* trailing byte */
    memcpy(bad, der, (size_t)len);
    bad[6] = 0x01; /* version 1: multi-prime */
    REFUSED(bad, (size_t)len, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD);
    memcpy(bad, der, (size_t)len);
    bad[0] = 0x31; /* a SET, not a SEQUENCE */
    REFUSED(bad, (size_t)len, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD);
    memcpy(bad, der, (size_t)len);
    bad[11] = 0x80; /* the modulus' first content byte (after 02 82 hi lo): negative */
    REFUSED(bad, (size_t)len, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD);
    REFUSED(der, (size_t)len, KG_P11_PRIVATE_PKCS8, KG_ERR_INVALID_FIELD); /* PKCS#1 as PKCS#8 */
    REFUSED(unknown_alg, sizeof(unknown_alg), KG_P11_PRIVATE_PKCS8, KG_ERR_UNSUPPORTED_ALGORITHM);
    REFUSED(long_len, sizeof(long_len), KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD);
    REFUSED(der, 0, KG_P11_PRIVATE_PKCS1, KG_ERR_INVALID_FIELD);
    {
        /* A P-256 PKCS#8 built by hand around ECPrivateKey {1, d[32], tail}:
         * with no tail it is a key; anything but [0] / [1] after d is not. */
        uint8_t ec[80];
        static const uint8_t alg[] = { 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01,
                                       0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 };
        for (int tail = 0; tail <= 3; tail += 3) {
            size_t n = 0, inner = 3 + 34 + (size_t)tail;

            ec[n++] = 0x30, ec[n++] = (uint8_t)(3 + sizeof(alg) + 2 + 2 + inner);
            ec[n++] = 0x02, ec[n++] = 0x01, ec[n++] = 0x00;
            memcpy(ec + n, alg, sizeof(alg)), n += sizeof(alg);
            ec[n++] = 0x04, ec[n++] = (uint8_t)(2 + inner);
            ec[n++] = 0x30, ec[n++] = (uint8_t)inner;
            ec[n++] = 0x02, ec[n++] = 0x01, ec[n++] = 0x01;
            ec[n++] = 0x04, ec[n++] = 0x20;
            memset(ec + n, 0x11, 32), n += 32;
            if (tail != 0) {
                ec[n++] = 0x02, ec[n++] = 0x01, ec[n++] = 0x00; /* an INTEGER where [0] or [1] may be */
                REFUSED(ec, n, KG_P11_PRIVATE_PKCS8, KG_ERR_INVALID_FIELD);
            } else {
                CU_ASSERT(kg_ok(kg_p11_private_from_der(ec, n, KG_P11_PRIVATE_PKCS8, &parts)) &&
                          parts.kind == KG_P11_KEY_EC_PRIVATE);
            }
        }
    }
#undef REFUSED
    free(bad);
    OPENSSL_free(der);
}

static void test_public_parts_round_trip(void)
{
    EVP_PKEY *keys[2] = { test_key("RSA"), test_key("DSA") };

    for (int i = 0; i < 2; i++) {
        unsigned char *spki = NULL;
        int len = i2d_PUBKEY(keys[i], &spki);
        struct kg_p11_blob *in = calloc(1, sizeof(*in));
        struct kg_p11_blob *out = calloc(1, sizeof(*out));
        uint8_t buf[4096];
        struct kg_p11_parts parts;
        uint32_t bits = 0;

        CU_ASSERT_FATAL(len > 0 && in != NULL && out != NULL);
        memcpy(in->bytes, spki, (size_t)len);
        in->len = (uint32_t)len;
        CU_ASSERT_FATAL(kg_ok(kg_p11_public_to_parts(in, buf, sizeof(buf), &parts)));
        CU_ASSERT(parts.kind == (i == 0 ? KG_P11_KEY_RSA_PUBLIC : KG_P11_KEY_DSA_PUBLIC));
        CU_ASSERT_FATAL(kg_ok(kg_p11_public_from_parts(&parts, out, &bits)));
        CU_ASSERT(bits == 2048);
        CU_ASSERT(out->len == in->len && memcmp(out->bytes, in->bytes, in->len) == 0);
        /* Too small a buffer for the parts. */
        CU_ASSERT(kg_failed(kg_p11_public_to_parts(in, buf, 16, &parts)) && kg_errno() == KG_ERR_INVALID_FIELD);
        /* An empty component. */
        CU_ASSERT_FATAL(kg_ok(kg_p11_public_to_parts(in, buf, sizeof(buf), &parts)));
        parts.part[1].len = 0;
        CU_ASSERT(kg_failed(kg_p11_public_from_parts(&parts, out, &bits)) && out->len == 0);
        OPENSSL_free(spki);
        free(in);
        free(out);
    }
}

/* Import a private key into the HSM, read it back, and sign with it. */
static void check_import(struct kg_p11 *p11, EVP_PKEY *pkey, const char *const *names, size_t n)
{
    unsigned char *der = NULL;
    int len = der_of(pkey, true, &der);
    struct kg_p11_parts parts, back;
    struct kg_p11_blob *blob = calloc(1, sizeof(*blob));
    struct kg_p11_key_ref ref = { .storage = KG_P11_STORED_WRAPPED };

    CU_ASSERT_FATAL(len > 0 && blob != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_private_from_der(der, (size_t)len, KG_P11_PRIVATE_PKCS8, &parts)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_private(p11, &parts, blob)));
    CU_ASSERT(blob->len > 0 && blob->mwk_generation > 0);
    CU_ASSERT(kg_test_session_objects(p11, KG_TEST_ANY_CLASS) == 0);
    ref.kind = parts.kind;
    ref.blob = blob;
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_private(p11, &ref, &back)));
    CU_ASSERT(back.kind == parts.kind && back.count == n && back.secret != NULL);
    check_parts(&back, pkey, names, n);
    CU_ASSERT(kg_test_session_objects(p11, KG_TEST_ANY_CLASS) == 0);
    kg_p11_parts_cleanup(&back);
    CU_ASSERT(back.secret == NULL && back.count == 0);
    free(blob);
    OPENSSL_free(der);
}

static void test_import_export_rsa(void)
{
    HSM_OR_SKIP(p11);
    check_import(p11, test_key("RSA"), rsa_names, 8);
}

static void test_import_export_dsa(void)
{
    HSM_OR_SKIP(p11);
    check_import(p11, test_key("DSA"), dsa_names, 4);
}

/* An HSM that fails C_WrapKey (or C_GetAttributeValue): no blob, no parts,
 * no session object left behind. */
static CK_RV broken_wrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w, CK_OBJECT_HANDLE k,
                         CK_BYTE_PTR out, CK_ULONG_PTR len)
{
    (void)s, (void)m, (void)w, (void)k, (void)out, (void)len;
    return CKR_DEVICE_ERROR;
}

static CK_RV broken_get_attribute(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    (void)s, (void)h, (void)t, (void)n;
    return CKR_DEVICE_ERROR;
}

static void test_hsm_faults(void)
{
    HSM_OR_SKIP(p11);
    EVP_PKEY *pkey = test_key("RSA");
    unsigned char *der = NULL;
    int len = der_of(pkey, false, &der);
    struct kg_p11_parts parts, back;
    struct kg_p11_blob *blob = calloc(1, sizeof(*blob));
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_RSA_PRIVATE, .storage = KG_P11_STORED_WRAPPED };
    CK_FUNCTION_LIST broken = *p11->fn;
    CK_FUNCTION_LIST_PTR saved = p11->fn;

    CU_ASSERT_FATAL(blob != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_private_from_der(der, (size_t)len, KG_P11_PRIVATE_PKCS1, &parts)));
    broken.C_WrapKey = broken_wrap;
    p11->fn = &broken;
    CU_ASSERT(kg_failed(kg_p11_import_private(p11, &parts, blob)) && kg_errno() == KG_ERR_HSM);
    p11->fn = saved;
    CU_ASSERT(blob->len == 0);
    CU_ASSERT(kg_test_session_objects(p11, KG_TEST_ANY_CLASS) == 0);

    CU_ASSERT_FATAL(kg_ok(kg_p11_import_private(p11, &parts, blob)));
    ref.blob = blob;
    broken = *p11->fn;
    broken.C_GetAttributeValue = broken_get_attribute;
    p11->fn = &broken;
    CU_ASSERT(kg_failed(kg_p11_export_private(p11, &ref, &back)));
    p11->fn = saved;
    CU_ASSERT(back.secret == NULL && back.count == 0);
    CU_ASSERT(kg_test_session_objects(p11, KG_TEST_ANY_CLASS) == 0);

    /* The token refuses components that make no key of the kind (an EC
     * "curve" that is no OID); a kind with the wrong count never reaches it. */
    parts.kind = KG_P11_KEY_EC_PRIVATE;
    parts.count = 2;
    CU_ASSERT(kg_failed(kg_p11_import_private(p11, &parts, blob)) && blob->len == 0);
    parts.count = 3;
    CU_ASSERT(kg_failed(kg_p11_import_private(p11, &parts, blob)) && kg_errno() == KG_ERR_INVALID_FIELD);
    CU_ASSERT(kg_test_session_objects(p11, KG_TEST_ANY_CLASS) == 0);
    free(blob);
    OPENSSL_free(der);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_rsa_der_walk_and_write), KG_TEST(test_dsa_and_ec_pkcs8), KG_TEST(test_der_refusals),
        KG_TEST(test_public_parts_round_trip), KG_TEST(test_import_export_rsa), KG_TEST(test_import_export_dsa),
        KG_TEST(test_hsm_faults),
    };
    int failed = kg_test_run("kg_p11_import", cases, sizeof(cases) / sizeof(cases[0]));

    kg_test_hsm_cleanup();
    return failed > 100 ? 100 : failed;
}
