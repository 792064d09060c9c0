/*
 * kg_p11_crypto_test.c - server-side cryptography and HSM-born keys
 * (pkcs11/kg_p11_crypto.c, kg_p11_resident.c) against a real SoftHSMv2
 * token in a temporary directory. Known answers: NIST GCM test case 16
 * (AES-256), RFC 4231 test case 6 (HMAC-SHA-256 and -512). Signatures are
 * checked with OpenSSL against the public half read from the token.
 * Passes with a message when SoftHSM is not installed.
 */
#include "kg_test.h"
#include "kg_test_hsm.h"

#include "kg_p11.h"
#include "kg_p11_crypto.h"
#include "kg_p11_internal.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#define HSM_OR_SKIP(p11) KG_TEST_HSM_OR_SKIP(p11, "kgcrypto")

static void hex(const char *text, uint8_t *out, size_t *len)
{
    size_t n = strlen(text) / 2;

    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;

        sscanf(text + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    *len = n;
}

/* Token objects (any class) with CKA_ID `id`: 0, 1, ... */
static long token_objects(struct kg_p11 *p11, const char *id)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &yes, sizeof(yes) }, { CKA_ID, (CK_VOID_PTR)id, strlen(id) } };
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0;

    if (kg_failed(kg_p11_session_acquire(kg_p11_pool_of(p11), &s))) {
        return -1;
    }
    long count = 0;

    if (p11->fn->C_FindObjectsInit(s, tmpl, 2) != CKR_OK || p11->fn->C_FindObjects(s, objs, 8, &n) != CKR_OK) {
        count = 1000;
    }
    (void)p11->fn->C_FindObjectsFinal(s);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    for (CK_ULONG i = 0; i < n; i++) {
        count += kg_p11_is_key_copy(p11, objs[i]) ? 0 : 1; /* the gateway's own MWK/MAC copies */
    }
    return count;
}

/* Session secret keys left behind by an operation (there must be none). */
static long session_secret_keys(struct kg_p11 *p11)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &no, sizeof(no) } };
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0;

    if (kg_failed(kg_p11_session_acquire(kg_p11_pool_of(p11), &s))) {
        return -1;
    }
    long count = 0;

    if (p11->fn->C_FindObjectsInit(s, tmpl, 2) != CKR_OK || p11->fn->C_FindObjects(s, objs, 8, &n) != CKR_OK) {
        count = 1000;
    }
    (void)p11->fn->C_FindObjectsFinal(s);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    for (CK_ULONG i = 0; i < n; i++) {
        count += kg_p11_is_key_copy(p11, objs[i]) ? 0 : 1; /* the gateway's own MWK/MAC copies */
    }
    return count;
}

/* A known secret put straight on the token as a resident key named `id`. */
static bool make_resident_secret(struct kg_p11 *p11, CK_KEY_TYPE type, const uint8_t *v, size_t len, const char *id)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },     { CKA_KEY_TYPE, &type, sizeof(type) },
        { CKA_TOKEN, &yes, sizeof(yes) },     { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) }, { CKA_EXTRACTABLE, &no, sizeof(no) },
        { CKA_SIGN, &yes, sizeof(yes) },      { CKA_VERIFY, &yes, sizeof(yes) },
        { CKA_ENCRYPT, &yes, sizeof(yes) },   { CKA_DECRYPT, &yes, sizeof(yes) },
        { CKA_ID, (CK_VOID_PTR)id, strlen(id) }, { CKA_VALUE, (CK_VOID_PTR)v, len },
    };
    CK_RV rv;

    if (kg_failed(kg_p11_session_acquire(kg_p11_pool_of(p11), &s))) {
        return false;
    }
    rv = p11->fn->C_CreateObject(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    if (rv != CKR_OK) {
        fprintf(stderr, "\nC_CreateObject: %s\n", kg_p11_rv_name(rv));
    }
    return rv == CKR_OK;
}

static void test_gcm_nist_wrapped_and_resident(void)
{
    HSM_OR_SKIP(p11);
    uint8_t key[32], iv[12], pt[64], aad[20], want[128], ct[128], tag[16], out[128], iv_out[64];
    size_t key_len, iv_len, pt_len, aad_len, want_len, ct_len = 0, tag_len = 0, out_len = 0, iv_out_len = 0;
    struct kg_secret *secret = NULL;
    struct kg_p11_blob blob;
    struct kg_p11_key_ref wrapped = { KG_P11_KEY_AES, KG_P11_STORED_WRAPPED, &blob, NULL, { 0 } };
    struct kg_p11_key_ref resident = { KG_P11_KEY_AES, KG_P11_STORED_RESIDENT, NULL, "gcm-nist-16", { 0 } };
    const struct kg_p11_key_ref *refs[2] = { &wrapped, &resident };

    hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, &key_len);
    hex("cafebabefacedbaddecaf888", iv, &iv_len);
    hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        pt, &pt_len);
    hex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, &aad_len);
    hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        "76fc6ece0f4e1768cddf8853bb2d551b",
        want, &want_len);
    CU_ASSERT_FATAL(kg_ok(kg_secret_from(key, key_len, &secret)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_aes(p11, secret, &blob)));
    kg_secret_free(secret);
    CU_ASSERT_FATAL(make_resident_secret(p11, CKK_AES, key, key_len, "gcm-nist-16"));

    for (int i = 0; i < 2; i++) {
        struct kg_p11_cipher_params cp = { KG_P11_CIPHER_AES_GCM, iv, iv_len, aad, aad_len, 16 };

        CU_ASSERT_FATAL(kg_ok(kg_p11_encrypt(p11, refs[i], &cp, pt, pt_len, ct, sizeof(ct), &ct_len, tag, &tag_len,
                                             iv_out, &iv_out_len)));
        CU_ASSERT_EQUAL(ct_len, pt_len);
        CU_ASSERT_EQUAL(tag_len, 16);
        CU_ASSERT_EQUAL(iv_out_len, 0);
        CU_ASSERT(memcmp(ct, want, pt_len) == 0);
        CU_ASSERT(memcmp(tag, want + pt_len, 16) == 0);

        CU_ASSERT(kg_ok(kg_p11_decrypt(p11, refs[i], &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));
        CU_ASSERT(out_len == pt_len && memcmp(out, pt, pt_len) == 0);

        /* Tampered tag, ciphertext or AAD: Cryptographic Failure, no output. */
        tag[15] ^= 1;
        memset(out, 0x5a, sizeof(out));
        CU_ASSERT(kg_failed(kg_p11_decrypt(p11, refs[i], &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));
        /* Cryptographic Failure: SoftHSM says CKR_GENERAL_ERROR, others
         * CKR_ENCRYPTED_DATA_INVALID. */
        CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_HSM);
        CU_ASSERT_EQUAL(out_len, 0);
        for (size_t j = 0; j < sizeof(out); j++) {
            if (out[j] != 0) {
                CU_FAIL("output not wiped after a failed decrypt");
                break;
            }
        }
        tag[15] ^= 1;
        ct[0] ^= 0x80;
        CU_ASSERT(kg_failed(kg_p11_decrypt(p11, refs[i], &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));
        ct[0] ^= 0x80;
        cp.adata_len = aad_len - 1;
        CU_ASSERT(kg_failed(kg_p11_decrypt(p11, refs[i], &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));

        /* Bad parameters never reach the HSM. */
        cp.adata_len = aad_len;
        cp.tag_len = 8;
        CU_ASSERT(kg_failed(kg_p11_encrypt(p11, refs[i], &cp, pt, pt_len, ct, sizeof(ct), &ct_len, tag, &tag_len,
                                           iv_out, &iv_out_len)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
        cp.tag_len = 16;
        CU_ASSERT(kg_failed(kg_p11_decrypt(p11, refs[i], &cp, ct, ct_len, NULL, 0, out, sizeof(out), &out_len)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_MISSING_FIELD);
    }
    CU_ASSERT_EQUAL(session_secret_keys(p11), 0);
}

static void test_gcm_cbc_random_iv(void)
{
    HSM_OR_SKIP(p11);
    struct kg_p11_blob blob;
    struct kg_p11_key_ref ref = { KG_P11_KEY_AES, KG_P11_STORED_WRAPPED, &blob, NULL, { 0 } };
    uint8_t data[100], ct[200], out[200], tag[16], iv[64], iv2[64];
    size_t ct_len, out_len, tag_len, iv_len, iv2_len;

    memset(data, 0x42, sizeof(data));
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 128, &blob)));
    for (int mode = 0; mode < 2; mode++) {
        struct kg_p11_cipher_params cp = { mode ? KG_P11_CIPHER_AES_CBC_PAD : KG_P11_CIPHER_AES_GCM, NULL, 0,
                                           NULL, 0, 0 };

        CU_ASSERT_FATAL(kg_ok(kg_p11_encrypt(p11, &ref, &cp, data, sizeof(data), ct, sizeof(ct), &ct_len, tag,
                                             &tag_len, iv, &iv_len)));
        CU_ASSERT_EQUAL(iv_len, mode ? 16u : 12u);
        CU_ASSERT_EQUAL(ct_len, mode ? 112u : 100u); /* PKCS#5 pads to the next block */
        CU_ASSERT_EQUAL(tag_len, mode ? 0u : 16u);
        CU_ASSERT(kg_ok(kg_p11_encrypt(p11, &ref, &cp, data, sizeof(data), out, sizeof(out), &out_len, tag + 0,
                                       &tag_len, iv2, &iv2_len)));
        CU_ASSERT(memcmp(iv, iv2, iv_len) != 0); /* a fresh IV each time */
        CU_ASSERT_FATAL(kg_ok(kg_p11_encrypt(p11, &ref, &cp, data, sizeof(data), ct, sizeof(ct), &ct_len, tag,
                                             &tag_len, iv, &iv_len)));
        cp.iv = iv;
        cp.nonce_len = iv_len;
        CU_ASSERT(kg_ok(kg_p11_decrypt(p11, &ref, &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));
        CU_ASSERT(out_len == sizeof(data) && memcmp(out, data, sizeof(data)) == 0);
        if (mode) {
            /* CBC: wrong IV length refused; a truncated ciphertext fails unpadding. */
            cp.nonce_len = 8;
            CU_ASSERT(kg_failed(kg_p11_decrypt(p11, &ref, &cp, ct, ct_len, NULL, 0, out, sizeof(out), &out_len)));
            CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
            cp.nonce_len = 16;
            CU_ASSERT(kg_failed(kg_p11_decrypt(p11, &ref, &cp, ct, ct_len - 1, NULL, 0, out, sizeof(out), &out_len)));
            CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_HSM);
        }
    }
    /* An HMAC key cannot encrypt. */
    ref.kind = KG_P11_KEY_HMAC;
    struct kg_p11_cipher_params cp = { KG_P11_CIPHER_AES_GCM, NULL, 0, NULL, 0, 0 };
    CU_ASSERT(kg_failed(kg_p11_encrypt(p11, &ref, &cp, data, sizeof(data), ct, sizeof(ct), &ct_len, tag, &tag_len,
                                       iv, &iv_len)));
    CU_ASSERT_EQUAL(session_secret_keys(p11), 0);
}

static void test_hmac_rfc4231_and_generated(void)
{
    HSM_OR_SKIP(p11);
    static const char data[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    uint8_t key[131], want256[32], want512[64], mac[KG_P11_CRYPTO_MAX_MAC];
    size_t n, mac_len = 0;
    bool valid = true;
    struct kg_p11_key_ref resident = { KG_P11_KEY_HMAC, KG_P11_STORED_RESIDENT, NULL, "hmac-rfc4231-6", { 0 } };
    struct kg_p11_blob blob;
    struct kg_p11_key_ref wrapped = { KG_P11_KEY_HMAC, KG_P11_STORED_WRAPPED, &blob, NULL, { 0 } };

    memset(key, 0xaa, sizeof(key));
    hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want256, &n);
    hex("80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
        want512, &n);
    CU_ASSERT_FATAL(make_resident_secret(p11, CKK_GENERIC_SECRET, key, sizeof(key), "hmac-rfc4231-6"));
    CU_ASSERT_FATAL(kg_ok(kg_p11_mac(p11, &resident, KG_P11_HASH_SHA256, (const uint8_t *)data, strlen(data), mac,
                                     &mac_len)));
    CU_ASSERT(mac_len == 32 && memcmp(mac, want256, 32) == 0);
    CU_ASSERT_FATAL(kg_ok(kg_p11_mac(p11, &resident, KG_P11_HASH_SHA512, (const uint8_t *)data, strlen(data), mac,
                                     &mac_len)));
    CU_ASSERT(mac_len == 64 && memcmp(mac, want512, 64) == 0);
    CU_ASSERT(kg_ok(kg_p11_mac_verify(p11, &resident, KG_P11_HASH_SHA512, (const uint8_t *)data, strlen(data), mac,
                                      mac_len, &valid)));
    CU_ASSERT(valid);
    mac[3] ^= 1;
    CU_ASSERT(kg_ok(kg_p11_mac_verify(p11, &resident, KG_P11_HASH_SHA512, (const uint8_t *)data, strlen(data), mac,
                                      mac_len, &valid)));
    CU_ASSERT(!valid);
    CU_ASSERT(kg_ok(kg_p11_mac_verify(p11, &resident, KG_P11_HASH_SHA512, (const uint8_t *)data, strlen(data), mac,
                                      0, &valid)));
    CU_ASSERT(!valid);

    /* A wrapped HMAC key born in the HSM: 32 bytes + 8 of RFC 5649. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_secret(p11, KG_P11_KEY_HMAC, 256, 0, NULL, &blob)));
    CU_ASSERT_EQUAL(blob.len, 40);
    CU_ASSERT(kg_ok(kg_p11_mac(p11, &wrapped, KG_P11_HASH_SHA256, (const uint8_t *)"x", 1, mac, &mac_len)));
    CU_ASSERT(kg_ok(kg_p11_mac_verify(p11, &wrapped, KG_P11_HASH_SHA256, (const uint8_t *)"x", 1, mac, mac_len,
                                      &valid)));
    CU_ASSERT(valid);
    CU_ASSERT(kg_ok(kg_p11_mac_verify(p11, &wrapped, KG_P11_HASH_SHA256, (const uint8_t *)"y", 1, mac, mac_len,
                                      &valid)));
    CU_ASSERT(!valid);
    /* Lengths outside 128..512 or not whole bytes are refused. */
    CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_HMAC, 120, 0, NULL, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
    CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_HMAC, 260, 0, NULL, &blob)));
    CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_HMAC, 520, 0, NULL, &blob)));
    CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_AES, 100, 0, NULL, &blob)));
    CU_ASSERT_EQUAL(blob.len, 0);
    CU_ASSERT_EQUAL(session_secret_keys(p11), 0);
}

static void test_resident_generate_flags_destroy(void)
{
    HSM_OR_SKIP(p11);
    const char *id = "0f9d6ad4-resident-test";
    struct kg_p11_blob blob;
    struct kg_p11_key_ref ref = { KG_P11_KEY_AES, KG_P11_STORED_RESIDENT, NULL, id, { 0 } };
    struct kg_p11_cipher_params cp = { KG_P11_CIPHER_AES_GCM, NULL, 0, NULL, 0, 0 };
    uint8_t ct[64], tag[16], iv[64], out[64];
    size_t ct_len, tag_len, iv_len, out_len;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_BBOOL extractable = CK_TRUE, sensitive = CK_FALSE, token = CK_FALSE, decrypt = CK_TRUE;
    char label[64] = { 0 };
    CK_ATTRIBUTE attrs[] = {
        { CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
        { CKA_SENSITIVE, &sensitive, sizeof(sensitive) },
        { CKA_TOKEN, &token, sizeof(token) },
        { CKA_DECRYPT, &decrypt, sizeof(decrypt) },
        { CKA_LABEL, label, sizeof(label) - 1 },
    };

    /* Encrypt only (KMIP mask 0x4). */
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_secret(p11, KG_P11_KEY_AES, 256, kg_p11_uses_of_mask(0x4), id, &blob)));
    CU_ASSERT_EQUAL(blob.len, 0);
    CU_ASSERT_EQUAL(token_objects(p11, id), 1);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(kg_p11_pool_of(p11), &s)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_find_resident(p11, s, id, CKO_SECRET_KEY, &h)));
    CU_ASSERT_EQUAL(p11->fn->C_GetAttributeValue(s, h, attrs, 5), CKR_OK);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    CU_ASSERT(!extractable && sensitive && token && !decrypt);
    CU_ASSERT_STRING_EQUAL(label, "kmipgw:0f9d6ad4-resident-test");

    /* Usable for what its flags allow, and nothing else. */
    CU_ASSERT(kg_ok(kg_p11_encrypt(p11, &ref, &cp, (const uint8_t *)"abc", 3, ct, sizeof(ct), &ct_len, tag, &tag_len,
                                   iv, &iv_len)));
    cp.iv = iv;
    cp.nonce_len = iv_len;
    CU_ASSERT(kg_failed(kg_p11_decrypt(p11, &ref, &cp, ct, ct_len, tag, tag_len, out, sizeof(out), &out_len)));
    CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_HSM);

    /* Destroy removes it; a second destroy finds nothing and succeeds; the
     * key then fails. */
    CU_ASSERT(kg_ok(kg_p11_resident_destroy(p11, &ref)));
    CU_ASSERT_EQUAL(token_objects(p11, id), 0);
    CU_ASSERT(kg_ok(kg_p11_resident_destroy(p11, &ref)));
    cp.iv = NULL;
    CU_ASSERT(kg_failed(kg_p11_encrypt(p11, &ref, &cp, (const uint8_t *)"abc", 3, ct, sizeof(ct), &ct_len, tag,
                                       &tag_len, iv, &iv_len)));

    /* Two objects with one ID: ambiguous, none destroyed. */
    uint8_t k[16] = { 1 };
    CU_ASSERT_FATAL(make_resident_secret(p11, CKK_AES, k, sizeof(k), "dup-id"));
    CU_ASSERT_FATAL(make_resident_secret(p11, CKK_AES, k, sizeof(k), "dup-id"));
    struct kg_p11_key_ref dup = { KG_P11_KEY_AES, KG_P11_STORED_RESIDENT, NULL, "dup-id", { 0 } };
    CU_ASSERT(kg_failed(kg_p11_resident_destroy(p11, &dup)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_EQUAL(token_objects(p11, "dup-id"), 2);

    /* Import as a resident HMAC key. */
    struct kg_secret *secret = NULL;
    uint8_t mac[64];
    size_t mac_len;
    memset(k, 7, sizeof(k));
    CU_ASSERT_FATAL(kg_ok(kg_secret_from(k, sizeof(k), &secret)));
    CU_ASSERT(kg_ok(kg_p11_resident_import(p11, KG_P11_KEY_HMAC, secret, kg_p11_uses_of_mask(0x80), "imp-hmac")));
    kg_secret_free(secret);
    struct kg_p11_key_ref imp = { KG_P11_KEY_HMAC, KG_P11_STORED_RESIDENT, NULL, "imp-hmac", { 0 } };
    /* SoftHSM wants an HMAC key at least as long as the hash (16 < 32 bytes). */
    CU_ASSERT(kg_failed(kg_p11_mac(p11, &imp, KG_P11_HASH_SHA256, (const uint8_t *)"m", 1, mac, &mac_len)));
    CU_ASSERT_EQUAL(token_objects(p11, "imp-hmac"), 1);
    CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_AES, 128, 0, "", &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
}

/* Read the public half of token object `h` as an OpenSSL key. */
static EVP_PKEY *public_of(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, bool ec)
{
    uint8_t a[1024], b[1024];
    CK_ATTRIBUTE attrs[2] = {
        { ec ? CKA_EC_POINT : CKA_MODULUS, a, sizeof(a) },
        { ec ? CKA_EC_PARAMS : CKA_PUBLIC_EXPONENT, b, sizeof(b) },
    };
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, ec ? "EC" : "RSA", NULL);
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;

    if (p11->fn->C_GetAttributeValue(s, h, attrs, 2) != CKR_OK) {
        goto out;
    }
    if (ec) {
        /* CKA_EC_POINT is a DER OCTET STRING (short form for P-256). */
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, a + 2, attrs[0].ulValueLen - 2);
    } else {
        n = BN_bin2bn(a, (int)attrs[0].ulValueLen, NULL);
        e = BN_bin2bn(b, (int)attrs[1].ulValueLen, NULL);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pkey = NULL;
    }
out:
    BN_free(n);
    BN_free(e);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/* OpenSSL's verdict on `sig` over `data` (SHA-256; PSS salt 32 when pss). */
static int openssl_verify(EVP_PKEY *pkey, bool pss, const uint8_t *data, size_t len, const uint8_t *sig,
                          size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1;

    if (ok && pss) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1;
    }
    ok = ok && EVP_DigestVerify(md, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* A key pair on the token with CKA_IDs "<tag>-priv"/"<tag>-pub". */
static bool make_pair(struct kg_p11 *p11, bool ec, const char *priv_id, const char *pub_id)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG bits = 2048;
    CK_BYTE exp[] = { 1, 0, 1 };
    CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    CK_ATTRIBUTE pub_t[] = {
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_VERIFY, &yes, sizeof(yes) },
        { CKA_ID, (CK_VOID_PTR)pub_id, strlen(pub_id) },
        { ec ? CKA_EC_PARAMS : CKA_MODULUS_BITS, ec ? (CK_VOID_PTR)p256 : (CK_VOID_PTR)&bits,
          ec ? sizeof(p256) : sizeof(bits) },
        { CKA_PUBLIC_EXPONENT, exp, sizeof(exp) },
    };
    CK_ATTRIBUTE priv_t[] = {
        { CKA_TOKEN, &yes, sizeof(yes) },     { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) }, { CKA_SIGN, &yes, sizeof(yes) },
        { CKA_ID, (CK_VOID_PTR)priv_id, strlen(priv_id) },
    };
    CK_RV rv;

    if (kg_failed(kg_p11_session_acquire(kg_p11_pool_of(p11), &s))) {
        return false;
    }
    rv = p11->fn->C_GenerateKeyPair(s, &mech, pub_t, ec ? 4 : 5, priv_t, 5, &pub, &priv);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    return rv == CKR_OK;
}

static void sign_verify_case(struct kg_p11 *p11, bool ec, enum kg_p11_sig scheme, const char *priv_id,
                             const char *pub_id)
{
    struct kg_p11_key_ref priv = { ec ? KG_P11_KEY_EC_PRIVATE : KG_P11_KEY_RSA_PRIVATE, KG_P11_STORED_RESIDENT, NULL,
                                   priv_id, { 0 } };
    struct kg_p11_key_ref pub = { ec ? KG_P11_KEY_EC_PUBLIC : KG_P11_KEY_RSA_PUBLIC, KG_P11_STORED_RESIDENT, NULL,
                                  pub_id, { 0 } };
    static const uint8_t data[] = "signed by the HSM";
    uint8_t sig[KG_P11_CRYPTO_MAX_SIG];
    size_t sig_len = 0;
    bool valid = false;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    EVP_PKEY *pkey = NULL;

    CU_ASSERT_FATAL(kg_ok(kg_p11_sign(p11, &priv, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, &sig_len)));
    if (ec) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);

        CU_ASSERT(es != NULL && p == sig + sig_len); /* DER, not r||s */
        ECDSA_SIG_free(es);
    } else {
        CU_ASSERT_EQUAL(sig_len, 256);
    }
    CU_ASSERT(kg_ok(kg_p11_verify(p11, &pub, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, sig_len, &valid)));
    CU_ASSERT(valid);

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(kg_p11_pool_of(p11), &s)));
    CU_ASSERT(kg_ok(kg_p11_find_resident(p11, s, pub_id, CKO_PUBLIC_KEY, &h)));
    pkey = public_of(p11, s, h, ec);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    CU_ASSERT_FATAL(pkey != NULL);
    CU_ASSERT(openssl_verify(pkey, scheme == KG_P11_SIG_RSA_PSS, data, sizeof(data), sig, sig_len));
    CU_ASSERT(!openssl_verify(pkey, scheme == KG_P11_SIG_RSA_PSS, data, sizeof(data) - 1, sig, sig_len));
    EVP_PKEY_free(pkey);

    /* Wrong data, a flipped byte, garbage: Invalid, not an error. */
    CU_ASSERT(kg_ok(kg_p11_verify(p11, &pub, scheme, KG_P11_HASH_SHA256, data, sizeof(data) - 1, sig, sig_len, &valid)));
    CU_ASSERT(!valid);
    sig[sig_len - 1] ^= 1;
    CU_ASSERT(kg_ok(kg_p11_verify(p11, &pub, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, sig_len, &valid)));
    CU_ASSERT(!valid);
    CU_ASSERT(kg_ok(kg_p11_verify(p11, &pub, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, 3, &valid)));
    CU_ASSERT(!valid);
    /* A private key does not verify, a public key does not sign. */
    CU_ASSERT(kg_failed(kg_p11_verify(p11, &priv, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, sig_len, &valid)));
    CU_ASSERT(kg_failed(kg_p11_sign(p11, &pub, scheme, KG_P11_HASH_SHA256, data, sizeof(data), sig, &sig_len)));
}

static void test_sign_verify_rsa_ec(void)
{
    HSM_OR_SKIP(p11);
    CU_ASSERT_FATAL(make_pair(p11, false, "rsa-priv", "rsa-pub"));
    CU_ASSERT_FATAL(make_pair(p11, true, "ec-priv", "ec-pub"));
    sign_verify_case(p11, false, KG_P11_SIG_RSA_PSS, "rsa-priv", "rsa-pub");
    sign_verify_case(p11, false, KG_P11_SIG_RSA_PKCS1, "rsa-priv", "rsa-pub");
    sign_verify_case(p11, true, KG_P11_SIG_ECDSA, "ec-priv", "ec-pub");
    /* ECDSA with an RSA key is refused before the HSM. */
    struct kg_p11_key_ref rsa = { KG_P11_KEY_RSA_PRIVATE, KG_P11_STORED_RESIDENT, NULL, "rsa-priv", { 0 } };
    uint8_t sig[KG_P11_CRYPTO_MAX_SIG];
    size_t sig_len;
    CU_ASSERT(kg_failed(kg_p11_sign(p11, &rsa, KG_P11_SIG_ECDSA, KG_P11_HASH_SHA256, (const uint8_t *)"x", 1, sig,
                                    &sig_len)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
}

static void test_uses_of_mask(void)
{
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0), 0u);
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0x4 | 0x8), (unsigned)(KG_P11_USE_ENCRYPT | KG_P11_USE_DECRYPT));
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0x80), (unsigned)KG_P11_USE_SIGN);
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0x100), (unsigned)KG_P11_USE_VERIFY);
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0x1 | 0x2 | 0x10 | 0x20),
                    (unsigned)(KG_P11_USE_SIGN | KG_P11_USE_VERIFY | KG_P11_USE_WRAP | KG_P11_USE_UNWRAP));
    CU_ASSERT_EQUAL(kg_p11_uses_of_mask(0x40), 0u); /* Export is no PKCS#11 use */
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_uses_of_mask),
        KG_TEST(test_gcm_nist_wrapped_and_resident),
        KG_TEST(test_gcm_cbc_random_iv),
        KG_TEST(test_hmac_rfc4231_and_generated),
        KG_TEST(test_resident_generate_flags_destroy),
        KG_TEST(test_sign_verify_rsa_ec),
    };
    int failed = kg_test_run("kg_p11_crypto", cases, sizeof(cases) / sizeof(cases[0]));

    kg_test_hsm_cleanup();
    return failed > 100 ? 100 : failed;
}
