/*
 * kg_p11_pair_test.c - key pairs in a real SoftHSMv2 token: every size and
 * curve generates; the wrapped private key unwraps (kg_p11_key_load) and
 * signs; OpenSSL parses the public DER and verifies that signature with it,
 * which proves the two halves belong together; resident keys stay on the
 * token and never extract; unsupported sizes and curves are refused; no
 * session object outlives a call. Passes with a message without SoftHSM.
 */
#include "kg_test.h"
#include "kg_test_hsm.h"

#include "kg_p11.h"
#include "kg_p11_internal.h"
#include "kg_p11_pair.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define HSM_OR_SKIP(p11) KG_TEST_HSM_OR_SKIP(p11, "kgpair")


/*
 * Sign "kmipgw" with stored private key `ref` inside the HSM and verify the
 * signature with OpenSSL against `der`. 1: verified; 0: did not verify;
 * -1: the HSM side failed (kg error set).
 */
static int sign_and_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, const struct kg_p11_blob *der,
                           bool rsa)
{
    static const uint8_t msg[] = "kmipgw";
    uint8_t digest[32];
    unsigned int dlen = 0;
    uint8_t sig[1024];
    CK_ULONG sig_len = sizeof(sig);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { rsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA, NULL, 0 };
    const unsigned char *p = der->bytes;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *dsig = NULL;
    int dsig_len = 0;
    int ok = -1;
    kg_result rc = KG_RESULT_OK;

    EVP_Digest(msg, sizeof(msg) - 1, digest, &dlen, EVP_sha256(), NULL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(kg_p11_pool_of(p11), &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, ref, KG_P11_USE_SIGN, &h, &tmp));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_SignInit(s, &mech, h), "C_SignInit"));
    if (rsa) {
        rc = KG_P11_CHECK(p11->fn->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, &sig_len), "C_Sign");
    } else {
        rc = KG_P11_CHECK(p11->fn->C_Sign(s, digest, dlen, sig, &sig_len), "C_Sign");
    }
out:
    rc = kg_p11_finish(p11, s, tmp, rc);
    if (kg_failed(rc)) {
        return -1;
    }
    ok = 0;
    pkey = d2i_PUBKEY(NULL, &p, (long)der->len);
    if (pkey == NULL || p != der->bytes + der->len) {
        goto done;
    }
    if (!rsa) {
        /* PKCS#11 gives r || s; OpenSSL verifies the DER SEQUENCE. */
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)(sig_len / 2), NULL);
        BIGNUM *sv = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2), NULL);

        if (es == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(es, r, sv) != 1) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(sv);
            goto done;
        }
        dsig_len = i2d_ECDSA_SIG(es, &dsig);
        ECDSA_SIG_free(es);
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1) {
        goto done;
    }
    ok = EVP_DigestVerify(md, rsa ? sig : dsig, rsa ? sig_len : (size_t)dsig_len, msg, sizeof(msg) - 1) == 1;
done:
    OPENSSL_free(dsig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    return ok;
}

/* Generate, check the DER's type and size, sign with the unwrapped private key. */
static void check_pair(enum kg_p11_pair_algorithm alg, uint32_t bits, enum kg_p11_curve curve)
{
    HSM_OR_SKIP(p11);
    struct kg_p11_pair_spec spec = {
        .algorithm = alg, .rsa_bits = bits, .curve = curve, .private_uses = KG_P11_PAIR_USE_SIGN,
    };
    struct kg_p11_pair *pair = calloc(1, sizeof(*pair));
    bool rsa = alg == KG_P11_PAIR_RSA;
    long before_priv = kg_test_session_objects(p11, CKO_PRIVATE_KEY);
    long before_pub = kg_test_session_objects(p11, CKO_PUBLIC_KEY);

    CU_ASSERT_FATAL(pair != NULL);
    if (kg_failed(kg_p11_generate_pair(p11, &spec, pair))) {
        fprintf(stderr, "\ngenerate: %s %s at %s\n", kg_error_name(kg_errno()), kg_error_text(), kg_error_debug());
        CU_FAIL("kg_p11_generate_pair failed");
        free(pair);
        return;
    }
    CU_ASSERT(pair->private_blob.len > 0);
    CU_ASSERT(pair->private_blob.mwk_generation == kg_p11_mwk_generation(p11));
    CU_ASSERT(pair->public_der.mechanism == 0 && pair->public_der.mwk_generation == 0);

    /* The public DER parses and says what was asked for. */
    const unsigned char *p = pair->public_der.bytes;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)pair->public_der.len);
    CU_ASSERT_FATAL(pkey != NULL);
    CU_ASSERT(p == pair->public_der.bytes + pair->public_der.len);
    CU_ASSERT(EVP_PKEY_is_a(pkey, rsa ? "RSA" : "EC"));
    CU_ASSERT(EVP_PKEY_get_bits(pkey) == (int)(rsa ? bits : kg_p11_curve_bits(curve)));
    EVP_PKEY_free(pkey);

    /* The wrapped private key is no PKCS#8 in the clear: its DER would
     * start with SEQUENCE { INTEGER 0 ... }; the blob is RFC 5649 output. */
    CU_ASSERT(!(pair->private_blob.bytes[0] == 0x30 && pair->private_blob.bytes[1] == 0x82 &&
                pair->private_blob.bytes[4] == 0x02));

    struct kg_p11_key_ref ref = {
        .kind = rsa ? KG_P11_KEY_RSA_PRIVATE : KG_P11_KEY_EC_PRIVATE,
        .storage = KG_P11_STORED_WRAPPED,
        .blob = &pair->private_blob,
    };
    CU_ASSERT(sign_and_verify(p11, &ref, &pair->public_der, rsa) == 1);

    /* Negative: a different pair's public key does not verify it. */
    struct kg_p11_pair *other = calloc(1, sizeof(*other));
    CU_ASSERT_FATAL(other != NULL);
    if (!rsa || bits == 2048) {
        CU_ASSERT_FATAL(kg_ok(kg_p11_generate_pair(p11, &spec, other)));
        CU_ASSERT(sign_and_verify(p11, &ref, &other->public_der, rsa) == 0);
    }
    free(other);

    /* A damaged blob does not unwrap. */
    pair->private_blob.bytes[pair->private_blob.len / 2] ^= 0x01;
    CU_ASSERT(sign_and_verify(p11, &ref, &pair->public_der, rsa) == -1);
    CU_ASSERT(kg_errno() == KG_ERR_HSM_UNWRAP);

    CU_ASSERT(kg_test_session_objects(p11, CKO_PRIVATE_KEY) == before_priv);
    CU_ASSERT(kg_test_session_objects(p11, CKO_PUBLIC_KEY) == before_pub);
    free(pair);
}

static void test_rsa_2048(void) { check_pair(KG_P11_PAIR_RSA, 2048, KG_P11_CURVE_NONE); }
static void test_rsa_3072(void) { check_pair(KG_P11_PAIR_RSA, 3072, KG_P11_CURVE_NONE); }
static void test_rsa_4096(void) { check_pair(KG_P11_PAIR_RSA, 4096, KG_P11_CURVE_NONE); }
static void test_ec_p256(void) { check_pair(KG_P11_PAIR_EC, 0, KG_P11_CURVE_P256); }
static void test_ec_p384(void) { check_pair(KG_P11_PAIR_EC, 0, KG_P11_CURVE_P384); }

static void test_refused_specs(void)
{
    HSM_OR_SKIP(p11);
    struct kg_p11_pair *pair = calloc(1, sizeof(*pair));
    struct kg_p11_pair_spec rsa1024 = { .algorithm = KG_P11_PAIR_RSA, .rsa_bits = 1024 };
    struct kg_p11_pair_spec no_curve = { .algorithm = KG_P11_PAIR_EC, .curve = KG_P11_CURVE_NONE };
    struct kg_p11_pair_spec bad_curve = { .algorithm = KG_P11_PAIR_EC, .curve = (enum kg_p11_curve)7 };
    struct kg_p11_pair_spec ec_decrypt = { .algorithm = KG_P11_PAIR_EC, .curve = KG_P11_CURVE_P256,
                                           .private_uses = KG_P11_PAIR_USE_DECRYPT };
    struct kg_p11_pair_spec bad_alg = { .algorithm = (enum kg_p11_pair_algorithm)9, .rsa_bits = 2048 };

    CU_ASSERT_FATAL(pair != NULL);
    CU_ASSERT(kg_failed(kg_p11_generate_pair(p11, &rsa1024, pair)) && kg_errno() == KG_ERR_BAD_KEY_LENGTH);
    CU_ASSERT(pair->public_der.len == 0 && pair->private_blob.len == 0);
    CU_ASSERT(kg_failed(kg_p11_generate_pair(p11, &no_curve, pair)) && kg_errno() == KG_ERR_UNSUPPORTED_ALGORITHM);
    CU_ASSERT(kg_failed(kg_p11_generate_pair(p11, &bad_curve, pair)) && kg_errno() == KG_ERR_UNSUPPORTED_ALGORITHM);
    CU_ASSERT(kg_failed(kg_p11_generate_pair(p11, &ec_decrypt, pair)) && kg_errno() == KG_ERR_INVALID_FIELD);
    CU_ASSERT(kg_failed(kg_p11_generate_pair(p11, &bad_alg, pair)) && kg_errno() == KG_ERR_UNSUPPORTED_ALGORITHM);
    CU_ASSERT(kg_p11_pair_rsa_bits_ok(3072) && !kg_p11_pair_rsa_bits_ok(2047) && !kg_p11_pair_rsa_bits_ok(8192));
    free(pair);
}

static void test_resident(void)
{
    HSM_OR_SKIP(p11);
    static const char id[] = "0b4a9f3c-5d1e-4c2a-9b7f-3e2d1c0b9a87";
    struct kg_p11_pair *pair = calloc(1, sizeof(*pair));
    struct kg_p11_pair_spec spec = { .algorithm = KG_P11_PAIR_EC, .curve = KG_P11_CURVE_P256,
                                     .private_uses = KG_P11_PAIR_USE_SIGN, .resident_id = id };
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_EC_PRIVATE, .storage = KG_P11_STORED_RESIDENT,
                                  .resident_id = id };
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_BBOOL extractable = CK_TRUE;
    CK_BBOOL sensitive = CK_FALSE;
    CK_ATTRIBUTE flags[] = { { CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
                             { CKA_SENSITIVE, &sensitive, sizeof(sensitive) } };

    CU_ASSERT_FATAL(pair != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_pair(p11, &spec, pair)));
    CU_ASSERT(pair->private_blob.len == 0);
    CU_ASSERT(pair->public_der.len > 0);
    CU_ASSERT(sign_and_verify(p11, &ref, &pair->public_der, false) == 1);

    /* On the token, not extractable, sensitive; asking to extract is refused. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(kg_p11_pool_of(p11), &s)));
    CU_ASSERT(kg_ok(kg_p11_find_resident(p11, s, id, CKO_PRIVATE_KEY, &h)));
    CU_ASSERT(p11->fn->C_GetAttributeValue(s, h, flags, 2) == CKR_OK);
    CU_ASSERT(extractable == CK_FALSE && sensitive == CK_TRUE);
    CU_ASSERT(kg_failed(kg_p11_key_load(p11, s, &ref, KG_P11_USE_EXTRACT, &h, &tmp)) && kg_errno() == KG_ERR_DENIED);
    kg_p11_session_release(kg_p11_pool_of(p11), s);

    /* Undo: the token object goes, and a second undo finds nothing. */
    CU_ASSERT(kg_ok(kg_p11_pair_destroy_resident(p11, id)));
    CU_ASSERT(kg_failed(kg_p11_pair_destroy_resident(p11, id)) && kg_errno() == KG_ERR_HSM);
    CU_ASSERT(sign_and_verify(p11, &ref, &pair->public_der, false) == -1);
    free(pair);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_rsa_2048), KG_TEST(test_rsa_3072), KG_TEST(test_rsa_4096),
        KG_TEST(test_ec_p256),  KG_TEST(test_ec_p384),  KG_TEST(test_refused_specs),
        KG_TEST(test_resident),
    };
    int failed = kg_test_run("kg_p11_pair", cases, sizeof(cases) / sizeof(cases[0]));

    kg_test_hsm_cleanup();
    return failed > 100 ? 100 : failed;
}
