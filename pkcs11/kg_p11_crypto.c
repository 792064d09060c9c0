/*
 * kg_p11_crypto.c - Encrypt, Decrypt, MAC, MAC Verify, Sign and Signature
 * Verify inside the HSM with a stored key (see kg_p11_crypto.h).
 *
 * Each operation is one session checkout: load the key for its one use,
 * one single-part C_* call, then kg_p11_finish destroys the temporary key
 * object and returns the session, on every path.
 */
#include "kg_p11_crypto.h"
#include "kg_p11_internal.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#define KG_P11_GCM_IV_DEFAULT 12u
#define KG_P11_AES_BLOCK 16u

/*
 * The answer of a C_*Init: a mechanism the token does not offer is the
 * client asking for what this HSM cannot do (KG_ERR_UNSUPPORTED_ALGORITHM,
 * which KMIP answers as such and which leaves the session in the pool), not
 * an HSM failure; anything else is mapped as usual.
 */
static kg_result kg_p11_crypto_init_rv(CK_RV rv, const char *what)
{
    if (rv == CKR_MECHANISM_INVALID) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("%s: the HSM does not offer this mechanism", what);
        return KG_RESULT_ERROR;
    }
    return KG_P11_CHECK(rv, what);
}

static kg_result kg_p11_bad(int err, const char *what)
{
    kg_error_set(err, __FILE__, __LINE__);
    kg_error_detail("%s", what);
    return KG_RESULT_ERROR;
}

/* Check the key kind against what the operation needs (the gateway maps
 * KMIP algorithms to kinds; this keeps the HSM from being asked nonsense). */
static kg_result kg_p11_need_kind(const struct kg_p11_key_ref *key, enum kg_p11_key_kind a, enum kg_p11_key_kind b)
{
    if (key->kind != a && key->kind != b) {
        return kg_p11_bad(KG_ERR_INVALID_FIELD, "the key's algorithm cannot do this operation");
    }
    return KG_RESULT_OK;
}

/* Build the CK_MECHANISM of an AES cipher; `gcm` is the caller's storage. */
static kg_result kg_p11_cipher_mech(const struct kg_p11_cipher_params *p, const uint8_t *iv, size_t nonce_len,
                                    size_t tag_len, CK_GCM_PARAMS *gcm, CK_MECHANISM *mech)
{
    switch (p->cipher) {
    case KG_P11_CIPHER_AES_GCM:
        KG_ENSURE(nonce_len >= 1 && nonce_len <= KG_P11_CRYPTO_MAX_IV, KG_ERR_INVALID_FIELD);
        KG_ENSURE(p->adata_len <= KG_P11_CRYPTO_MAX_AAD && (p->aad != NULL || p->adata_len == 0), KG_ERR_INVALID_FIELD);
        /* NIST SP 800-38D allows 12..16 byte tags for general use; shorter
         * ones need usage limits we do not enforce. */
        if (tag_len < 12 || tag_len > KG_P11_CRYPTO_GCM_TAG_MAX) {
            return kg_p11_bad(KG_ERR_INVALID_FIELD, "GCM Tag Length must be 12 to 16 bytes");
        }
        memset(gcm, 0, sizeof(*gcm));
        gcm->pIv = (CK_BYTE_PTR)iv;
        gcm->ulIvLen = nonce_len;
        gcm->ulIvBits = nonce_len * 8;
        gcm->pAAD = (CK_BYTE_PTR)p->aad;
        gcm->ulAADLen = p->adata_len;
        gcm->ulTagBits = tag_len * 8;
        *mech = (CK_MECHANISM){ CKM_AES_GCM, gcm, sizeof(*gcm) };
        return KG_RESULT_OK;
    case KG_P11_CIPHER_AES_CBC_PAD:
        if (nonce_len != KG_P11_AES_BLOCK) {
            return kg_p11_bad(KG_ERR_INVALID_FIELD, "CBC needs a 16-byte IV");
        }
        *mech = (CK_MECHANISM){ CKM_AES_CBC_PAD, (CK_VOID_PTR)iv, nonce_len };
        return KG_RESULT_OK;
    }
    return kg_p11_bad(KG_ERR_INVALID_FIELD, "unknown cipher");
}

kg_result kg_p11_encrypt(struct kg_p11 *p11, const struct kg_p11_key_ref *key, const struct kg_p11_cipher_params *params,
                         const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len,
                         uint8_t *tag, size_t *tag_len, uint8_t *iv_out, size_t *iv_out_len)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mech;
    bool is_gcm;
    const uint8_t *iv;
    size_t nonce_len;
    size_t want_tag;
    CK_ULONG n;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && key != NULL && params != NULL && out != NULL && out_len != NULL && tag != NULL &&
                  tag_len != NULL && iv_out != NULL && iv_out_len != NULL && (in != NULL || in_len == 0),
              KG_ERR_INTERNAL);
    *out_len = 0;
    *tag_len = 0;
    *iv_out_len = 0;
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_AES, KG_P11_KEY_AES));
    KG_ENSURE(in_len <= KG_P11_CRYPTO_MAX_DATA, KG_ERR_INVALID_FIELD);
    KG_ENSURE(out_cap >= in_len + KG_P11_CRYPTO_OVERHEAD, KG_ERR_INTERNAL);
    is_gcm = params->cipher == KG_P11_CIPHER_AES_GCM;
    want_tag = is_gcm ? (params->tag_len != 0 ? params->tag_len : KG_P11_CRYPTO_GCM_TAG_MAX) : 0;
    iv = params->iv;
    nonce_len = params->nonce_len;

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    if (iv == NULL) {
        /* The HSM's RNG draws the IV; it goes back to the client (KMIP 1.4
         * section 4.29: the server does not keep it). */
        nonce_len = nonce_len != 0 ? nonce_len : (is_gcm ? KG_P11_GCM_IV_DEFAULT : KG_P11_AES_BLOCK);
        KG_GOTO_ENSURE(rc, nonce_len <= KG_P11_CRYPTO_MAX_IV, KG_ERR_INVALID_FIELD);
        KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GenerateRandom(s, iv_out, nonce_len), "C_GenerateRandom"));
        *iv_out_len = nonce_len;
        iv = iv_out;
    }
    KG_GOTO_GUARD(rc, kg_p11_cipher_mech(params, iv, nonce_len, want_tag, &gcm, &mech));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, key, KG_P11_USE_ENCRYPT, &h, &tmp));
    KG_GOTO_GUARD(rc, kg_p11_crypto_init_rv(p11->fn->C_EncryptInit(s, &mech, h), "C_EncryptInit"));
    n = out_cap;
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_Encrypt(s, (CK_BYTE_PTR)in, in_len, out, &n), "C_Encrypt"));
    if (is_gcm) {
        /* PKCS#11 appends the tag to the ciphertext; KMIP carries it apart. */
        KG_GOTO_ENSURE(rc, n >= want_tag && n - want_tag == in_len, KG_ERR_HSM);
        memcpy(tag, out + in_len, want_tag);
        OPENSSL_cleanse(out + in_len, want_tag);
        *tag_len = want_tag;
        n -= want_tag;
    }
    *out_len = n;
out:
    rc = kg_p11_finish(p11, s, tmp, rc);
    if (kg_failed(rc)) {
        *out_len = 0;
        *tag_len = 0;
        *iv_out_len = 0;
    }
    return rc;
}

kg_result kg_p11_decrypt(struct kg_p11 *p11, const struct kg_p11_key_ref *key, const struct kg_p11_cipher_params *params,
                         const uint8_t *in, size_t in_len, const uint8_t *tag, size_t tag_len, uint8_t *out,
                         size_t out_cap, size_t *out_len)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mech;
    uint8_t *joined = NULL;
    size_t joined_len = in_len;
    bool is_gcm;
    size_t want_tag = 0;
    CK_ULONG n;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && key != NULL && params != NULL && out != NULL && out_len != NULL &&
                  (in != NULL || in_len == 0),
              KG_ERR_INTERNAL);
    *out_len = 0;
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_AES, KG_P11_KEY_AES));
    KG_ENSURE(in_len <= KG_P11_CRYPTO_MAX_DATA + KG_P11_CRYPTO_OVERHEAD, KG_ERR_INVALID_FIELD);
    KG_ENSURE(out_cap >= in_len, KG_ERR_INTERNAL);
    if (params->iv == NULL) {
        return kg_p11_bad(KG_ERR_MISSING_FIELD, "Decrypt needs the IV/Counter/Nonce");
    }
    is_gcm = params->cipher == KG_P11_CIPHER_AES_GCM;
    if (is_gcm) {
        want_tag = params->tag_len != 0 ? params->tag_len : tag_len;
        if (tag == NULL || tag_len == 0) {
            return kg_p11_bad(KG_ERR_MISSING_FIELD, "GCM Decrypt needs the Authenticated Encryption Tag");
        }
        if (tag_len != want_tag) {
            return kg_p11_bad(KG_ERR_INVALID_FIELD, "Authenticated Encryption Tag length differs from Tag Length");
        }
    }
    KG_GUARD(kg_p11_cipher_mech(params, params->iv, params->nonce_len, want_tag, &gcm, &mech));
    if (is_gcm) {
        /* PKCS#11 takes ciphertext||tag in one buffer. */
        joined_len = in_len + tag_len;
        joined = OPENSSL_malloc(joined_len);
        KG_ENSURE(joined != NULL, KG_ERR_NOMEM);
        if (in_len != 0) {
            memcpy(joined, in, in_len);
        }
        memcpy(joined + in_len, tag, tag_len);
    }

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, key, KG_P11_USE_DECRYPT, &h, &tmp));
    KG_GOTO_GUARD(rc, kg_p11_crypto_init_rv(p11->fn->C_DecryptInit(s, &mech, h), "C_DecryptInit"));
    n = out_cap;
    rv = p11->fn->C_Decrypt(s, is_gcm ? joined : (CK_BYTE_PTR)in, joined_len, out, &n);
    if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE) {
        /* Wrong tag, key, IV or padding: one answer for all, and the
         * operation is over (PKCS#11 v2.40 section 5.9), so the session
         * stays usable. */
        kg_error_set(KG_ERR_HSM_UNWRAP, __FILE__, __LINE__);
        kg_error_detail("ciphertext does not decrypt/authenticate under this key");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (is_gcm && rv == CKR_GENERAL_ERROR) {
        /* SoftHSM's answer to a wrong GCM tag. Still a generic failure to
         * the pool (the session is closed, which is safe whatever it was),
         * but say what it most likely means. */
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("C_Decrypt: CKR_GENERAL_ERROR: GCM tag check failed or the HSM failed");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_Decrypt"));
    KG_GOTO_ENSURE(rc, n <= out_cap, KG_ERR_HSM);
    *out_len = n;
out:
    rc = kg_p11_finish(p11, s, tmp, rc);
    if (kg_failed(rc)) {
        OPENSSL_cleanse(out, out_cap);
        *out_len = 0;
    }
    OPENSSL_free(joined);
    return rc;
}

static kg_result kg_p11_hmac_mech(enum kg_p11_hash hash, CK_MECHANISM_TYPE *out)
{
    switch (hash) {
    case KG_P11_HASH_SHA1:
        *out = CKM_SHA_1_HMAC;
        return KG_RESULT_OK;
    case KG_P11_HASH_SHA224:
        *out = CKM_SHA224_HMAC;
        return KG_RESULT_OK;
    case KG_P11_HASH_SHA256:
        *out = CKM_SHA256_HMAC;
        return KG_RESULT_OK;
    case KG_P11_HASH_SHA384:
        *out = CKM_SHA384_HMAC;
        return KG_RESULT_OK;
    case KG_P11_HASH_SHA512:
        *out = CKM_SHA512_HMAC;
        return KG_RESULT_OK;
    }
    return kg_p11_bad(KG_ERR_UNSUPPORTED_ALGORITHM, "unsupported hash");
}

/*
 * One C_SignInit/C_Sign or C_VerifyInit/C_Verify with stored key `key`
 * loaded for `use`. Verify: *valid gets the outcome and the signature
 * errors are not failures.
 */
static kg_result kg_p11_sign_once(struct kg_p11 *p11, const struct kg_p11_key_ref *key, CK_MECHANISM *mech, bool verify,
                                  const uint8_t *data, size_t data_len, uint8_t *sig, size_t *sig_len, bool *valid)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_ULONG n = *sig_len;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, key, verify ? KG_P11_USE_VERIFY : KG_P11_USE_SIGN, &h, &tmp));
    if (verify) {
        KG_GOTO_GUARD(rc, kg_p11_crypto_init_rv(p11->fn->C_VerifyInit(s, mech, h), "C_VerifyInit"));
        rv = p11->fn->C_Verify(s, (CK_BYTE_PTR)data, data_len, sig, *sig_len);
        *valid = rv == CKR_OK;
        if (rv != CKR_SIGNATURE_INVALID && rv != CKR_SIGNATURE_LEN_RANGE) {
            KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_Verify"));
        }
    } else {
        KG_GOTO_GUARD(rc, kg_p11_crypto_init_rv(p11->fn->C_SignInit(s, mech, h), "C_SignInit"));
        KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_Sign(s, (CK_BYTE_PTR)data, data_len, sig, &n), "C_Sign"));
        *sig_len = n;
    }
out:
    return kg_p11_finish(p11, s, tmp, rc);
}

kg_result kg_p11_mac(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_hash hash, const uint8_t *data,
                     size_t data_len, uint8_t *mac, size_t *mac_len)
{
    CK_MECHANISM mech = { 0, NULL, 0 };

    KG_ENSURE(p11 != NULL && key != NULL && mac != NULL && mac_len != NULL && (data != NULL || data_len == 0),
              KG_ERR_INTERNAL);
    *mac_len = KG_P11_CRYPTO_MAX_MAC;
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_HMAC, KG_P11_KEY_HMAC));
    KG_ENSURE(data_len <= KG_P11_CRYPTO_MAX_DATA, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_hmac_mech(hash, &mech.mechanism));
    if (kg_failed(kg_p11_sign_once(p11, key, &mech, false, data, data_len, mac, mac_len, NULL))) {
        *mac_len = 0;
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_p11_mac_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_hash hash,
                            const uint8_t *data, size_t data_len, const uint8_t *mac, size_t mac_len, bool *valid)
{
    CK_MECHANISM mech = { 0, NULL, 0 };
    uint8_t copy[KG_P11_CRYPTO_MAX_MAC];

    KG_ENSURE(p11 != NULL && key != NULL && valid != NULL && (mac != NULL || mac_len == 0) &&
                  (data != NULL || data_len == 0),
              KG_ERR_INTERNAL);
    *valid = false;
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_HMAC, KG_P11_KEY_HMAC));
    KG_ENSURE(data_len <= KG_P11_CRYPTO_MAX_DATA, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_hmac_mech(hash, &mech.mechanism));
    if (mac_len == 0 || mac_len > sizeof(copy)) {
        return KG_RESULT_OK; /* no HMAC has that length: not valid */
    }
    /* C_Verify takes a non-const pointer; give it our own copy. */
    memcpy(copy, mac, mac_len);
    return kg_p11_sign_once(p11, key, &mech, true, data, data_len, copy, &mac_len, valid);
}

static const EVP_MD *kg_p11_md(enum kg_p11_hash hash)
{
    switch (hash) {
    case KG_P11_HASH_SHA1:
        return EVP_sha1();
    case KG_P11_HASH_SHA224:
        return EVP_sha224();
    case KG_P11_HASH_SHA256:
        return EVP_sha256();
    case KG_P11_HASH_SHA384:
        return EVP_sha384();
    case KG_P11_HASH_SHA512:
        return EVP_sha512();
    }
    return NULL;
}

/* The RSA mechanism of `scheme` with `hash`; `pss` is the caller's storage. */
static kg_result kg_p11_rsa_mech(enum kg_p11_sig scheme, enum kg_p11_hash hash, CK_RSA_PKCS_PSS_PARAMS *pss,
                                 CK_MECHANISM *mech)
{
    static const struct {
        enum kg_p11_hash hash;
        CK_MECHANISM_TYPE pkcs1, pss, hash_mech, mgf;
    } map[] = {
        { KG_P11_HASH_SHA1, CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1 },
        { KG_P11_HASH_SHA224, CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224 },
        { KG_P11_HASH_SHA256, CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256 },
        { KG_P11_HASH_SHA384, CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA384 },
        { KG_P11_HASH_SHA512, CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512 },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].hash != hash) {
            continue;
        }
        if (scheme == KG_P11_SIG_RSA_PKCS1) {
            *mech = (CK_MECHANISM){ map[i].pkcs1, NULL, 0 };
        } else {
            /* Salt as long as the hash: what RFC 8017 recommends and what
             * `cryptography`'s PSS.DIGEST_LENGTH verifies. */
            pss->hashAlg = map[i].hash_mech;
            pss->mgf = map[i].mgf;
            pss->sLen = (CK_ULONG)EVP_MD_get_size(kg_p11_md(hash));
            *mech = (CK_MECHANISM){ map[i].pss, pss, sizeof(*pss) };
        }
        return KG_RESULT_OK;
    }
    return kg_p11_bad(KG_ERR_UNSUPPORTED_ALGORITHM, "unsupported hash");
}

/* Digest `data` with `hash` into `md` (EVP_MAX_MD_SIZE): CKM_ECDSA signs a
 * digest, and SoftHSM has no CKM_ECDSA_SHA*. The digest is public. */
static kg_result kg_p11_digest(enum kg_p11_hash hash, const uint8_t *data, size_t data_len, uint8_t *md,
                               size_t *md_len)
{
    const EVP_MD *type = kg_p11_md(hash);
    unsigned int n = 0;

    if (type == NULL) {
        return kg_p11_bad(KG_ERR_UNSUPPORTED_ALGORITHM, "unsupported hash");
    }
    KG_ENSURE(EVP_Digest(data, data_len, md, &n, type, NULL) == 1, KG_ERR_INTERNAL);
    *md_len = n;
    return KG_RESULT_OK;
}

/* PKCS#11 r||s (two equal halves) -> DER Ecdsa-Sig-Value, in place in `sig`. */
static kg_result kg_p11_ecdsa_to_der(uint8_t *sig, size_t *sig_len, size_t cap)
{
    size_t half = *sig_len / 2;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(sig + half, (int)half, NULL);
    unsigned char *der = NULL;
    int len;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, es != NULL && r != NULL && s != NULL && *sig_len % 2 == 0 && half > 0, KG_ERR_HSM);
    KG_GOTO_ENSURE(rc, ECDSA_SIG_set0(es, r, s) == 1, KG_ERR_NOMEM);
    r = NULL; /* owned by es now */
    s = NULL;
    len = i2d_ECDSA_SIG(es, &der);
    KG_GOTO_ENSURE(rc, len > 0 && (size_t)len <= cap, KG_ERR_INTERNAL);
    memcpy(sig, der, (size_t)len);
    *sig_len = (size_t)len;
out:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

/*
 * DER Ecdsa-Sig-Value -> r||s, each half `half` bytes, into `out`. False
 * when it is not one well-formed signature that fits: the caller answers
 * Invalid, not an error.
 */
static bool kg_p11_ecdsa_from_der(const uint8_t *der, size_t der_len, size_t half, uint8_t *out)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;
    bool ok = false;

    if (es == NULL || p != der + der_len) {
        goto out;
    }
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, out, (int)half) == (int)half && BN_bn2binpad(s, out + half, (int)half) == (int)half;
out:
    ECDSA_SIG_free(es);
    return ok;
}

/* Bytes of the curve order of EC key object `h` (for r||s halves). */
static kg_result kg_p11_ec_half(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, size_t *half)
{
    uint8_t params[256];
    CK_ATTRIBUTE a = { CKA_EC_PARAMS, params, sizeof(params) };
    const unsigned char *p = params;
    EC_GROUP *group = NULL;

    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, h, &a, 1), "C_GetAttributeValue"));
    group = d2i_ECPKParameters(NULL, &p, (long)a.ulValueLen);
    if (group == NULL) {
        return kg_p11_bad(KG_ERR_HSM, "EC key with unknown curve parameters");
    }
    *half = ((size_t)EC_GROUP_order_bits(group) + 7) / 8;
    EC_GROUP_free(group);
    return KG_RESULT_OK;
}

/* ECDSA verify: the signature must be re-encoded as r||s sized to the key's
 * curve, which is read from the loaded object. */
static kg_result kg_p11_ecdsa_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *key, const uint8_t *md,
                                     size_t md_len, const uint8_t *sig, size_t sig_len, bool *valid)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    uint8_t raw[2 * 66 + 2];
    size_t half = 0;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, key, KG_P11_USE_VERIFY, &h, &tmp));
    KG_GOTO_GUARD(rc, kg_p11_ec_half(p11, s, h, &half));
    KG_GOTO_ENSURE(rc, half > 0 && 2 * half <= sizeof(raw), KG_ERR_UNSUPPORTED_ALGORITHM);
    if (!kg_p11_ecdsa_from_der(sig, sig_len, half, raw)) {
        goto out; /* *valid stays false */
    }
    KG_GOTO_GUARD(rc, kg_p11_crypto_init_rv(p11->fn->C_VerifyInit(s, &mech, h), "C_VerifyInit"));
    rv = p11->fn->C_Verify(s, (CK_BYTE_PTR)md, md_len, raw, 2 * half);
    *valid = rv == CKR_OK;
    if (rv != CKR_SIGNATURE_INVALID && rv != CKR_SIGNATURE_LEN_RANGE) {
        KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_Verify"));
    }
out:
    return kg_p11_finish(p11, s, tmp, rc);
}

kg_result kg_p11_sign(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_sig scheme,
                      enum kg_p11_hash hash, const uint8_t *data, size_t data_len, uint8_t *sig, size_t *sig_len)
{
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    CK_RSA_PKCS_PSS_PARAMS pss;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;

    KG_ENSURE(p11 != NULL && key != NULL && sig != NULL && sig_len != NULL && (data != NULL || data_len == 0),
              KG_ERR_INTERNAL);
    *sig_len = 0;
    KG_ENSURE(data_len <= KG_P11_CRYPTO_MAX_DATA, KG_ERR_INVALID_FIELD);
    if (scheme == KG_P11_SIG_ECDSA) {
        KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_EC_PRIVATE, KG_P11_KEY_EC_PRIVATE));
        KG_GUARD(kg_p11_digest(hash, data, data_len, md, &md_len));
        *sig_len = KG_P11_CRYPTO_MAX_SIG;
        if (kg_failed(kg_p11_sign_once(p11, key, &mech, false, md, md_len, sig, sig_len, NULL)) ||
            kg_failed(kg_p11_ecdsa_to_der(sig, sig_len, KG_P11_CRYPTO_MAX_SIG))) {
            *sig_len = 0;
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_RSA_PRIVATE, KG_P11_KEY_RSA_PRIVATE));
    KG_GUARD(kg_p11_rsa_mech(scheme, hash, &pss, &mech));
    *sig_len = KG_P11_CRYPTO_MAX_SIG;
    if (kg_failed(kg_p11_sign_once(p11, key, &mech, false, data, data_len, sig, sig_len, NULL))) {
        *sig_len = 0;
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_p11_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_sig scheme,
                        enum kg_p11_hash hash, const uint8_t *data, size_t data_len, const uint8_t *sig,
                        size_t sig_len, bool *valid)
{
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    CK_RSA_PKCS_PSS_PARAMS pss;
    uint8_t md[EVP_MAX_MD_SIZE];
    uint8_t copy[KG_P11_CRYPTO_MAX_SIG];
    size_t md_len = 0;

    KG_ENSURE(p11 != NULL && key != NULL && valid != NULL && (sig != NULL || sig_len == 0) &&
                  (data != NULL || data_len == 0),
              KG_ERR_INTERNAL);
    *valid = false;
    KG_ENSURE(data_len <= KG_P11_CRYPTO_MAX_DATA, KG_ERR_INVALID_FIELD);
    if (scheme == KG_P11_SIG_ECDSA) {
        KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_EC_PUBLIC, KG_P11_KEY_EC_PUBLIC));
        KG_GUARD(kg_p11_digest(hash, data, data_len, md, &md_len));
        return kg_p11_ecdsa_verify(p11, key, md, md_len, sig, sig_len, valid);
    }
    KG_GUARD(kg_p11_need_kind(key, KG_P11_KEY_RSA_PUBLIC, KG_P11_KEY_RSA_PUBLIC));
    KG_GUARD(kg_p11_rsa_mech(scheme, hash, &pss, &mech));
    if (sig_len == 0 || sig_len > sizeof(copy)) {
        return KG_RESULT_OK; /* longer than any key we hold: not valid */
    }
    memcpy(copy, sig, sig_len);
    return kg_p11_sign_once(p11, key, &mech, true, data, data_len, copy, &sig_len, valid);
}
