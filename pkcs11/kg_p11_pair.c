/*
 * kg_p11_pair.c - key pairs generated in the HSM: C_GenerateKeyPair, the
 * private half wrapped under the MWK (or kept resident), the public half
 * read out and encoded as SubjectPublicKeyInfo with OpenSSL.
 */
#include "kg_p11_pair.h"

#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

/* DER OIDs of the curves, as CKA_EC_PARAMS wants them (namedCurve). */
static const uint8_t kg_p11_oid_p256[] = { 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07 };
static const uint8_t kg_p11_oid_p384[] = { 0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22 };

/* Largest public part we read back: a 4096-bit modulus is 512 bytes; an
 * uncompressed P-384 point in its OCTET STRING is 100. */
#define KG_P11_PAIR_MAX_PART 1024u

bool kg_p11_pair_rsa_bits_ok(uint32_t bits)
{
    return bits == 2048 || bits == 3072 || bits == 4096;
}

uint32_t kg_p11_curve_bits(enum kg_p11_curve curve)
{
    switch (curve) {
    case KG_P11_CURVE_P256:
        return 256;
    case KG_P11_CURVE_P384:
        return 384;
    case KG_P11_CURVE_NONE:
        break;
    }
    return 0;
}

enum kg_p11_curve kg_p11_curve_of_oid(const uint8_t *der, size_t len)
{
    if (len == sizeof(kg_p11_oid_p256) && memcmp(der, kg_p11_oid_p256, len) == 0) {
        return KG_P11_CURVE_P256;
    }
    if (len == sizeof(kg_p11_oid_p384) && memcmp(der, kg_p11_oid_p384, len) == 0) {
        return KG_P11_CURVE_P384;
    }
    return KG_P11_CURVE_NONE;
}

static kg_result kg_p11_pair_check_spec(const struct kg_p11_pair_spec *spec)
{
    if (spec->algorithm == KG_P11_PAIR_RSA) {
        if (!kg_p11_pair_rsa_bits_ok(spec->rsa_bits)) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("RSA key of %u bits; 2048, 3072 or 4096 supported", spec->rsa_bits);
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    if (spec->algorithm == KG_P11_PAIR_EC) {
        if (kg_p11_curve_bits(spec->curve) == 0) {
            kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
            kg_error_detail("EC curve %d; P-256 and P-384 supported", (int)spec->curve);
            return KG_RESULT_ERROR;
        }
        if (spec->private_uses & (KG_P11_PAIR_USE_DECRYPT | KG_P11_PAIR_USE_UNWRAP)) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("an EC key can only sign");
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
    kg_error_detail("key pair algorithm %d", (int)spec->algorithm);
    return KG_RESULT_ERROR;
}

/* Read one attribute of `obj` into `buf` (at most `cap` bytes). */
static kg_result kg_p11_pair_read_attr(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                       CK_ATTRIBUTE_TYPE type, uint8_t *buf, size_t cap, size_t *len)
{
    CK_ATTRIBUTE a = { type, NULL, 0 };

    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, &a, 1), "C_GetAttributeValue"));
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 || a.ulValueLen > cap) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("public key attribute 0x%lx of unusable length", (unsigned long)type);
        return KG_RESULT_ERROR;
    }
    a.pValue = buf;
    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, &a, 1), "C_GetAttributeValue"));
    *len = a.ulValueLen;
    return KG_RESULT_OK;
}

/*
 * CKA_EC_POINT is the DER OCTET STRING around the point (v2.40 section
 * 2.3.3); some modules return the bare point. Either way *point and *len name
 * the bare uncompressed point inside `der`, checked against its length.
 */
static kg_result kg_p11_pair_ec_point(const uint8_t *der, size_t der_len, const uint8_t **point, size_t *len)
{
    size_t head = 0;
    size_t body = 0;

    if (der_len >= 2 && der[0] == 0x04 && der[1] < 0x80 && (size_t)der[1] + 2 == der_len) {
        head = 2;
        body = der[1];
    } else if (der_len >= 3 && der[0] == 0x04 && der[1] == 0x81 && (size_t)der[2] + 3 == der_len) {
        head = 3;
        body = der[2];
    } else {
        body = der_len; /* bare point */
    }
    /* An uncompressed point: 0x04, X, Y. */
    if (body < 3 || der[head] != 0x04 || (body - 1) % 2 != 0) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("CKA_EC_POINT is not an uncompressed point");
        return KG_RESULT_ERROR;
    }
    *point = der + head;
    *len = body;
    return KG_RESULT_OK;
}

/* SubjectPublicKeyInfo DER of `pkey` into `out` (mechanism 0, generation 0). */
static kg_result kg_p11_pair_spki(EVP_PKEY *pkey, struct kg_p11_blob *out)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);

    if (len <= 0 || (size_t)len > sizeof(out->bytes)) {
        OPENSSL_free(der);
        kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
        kg_error_detail("public key does not encode as SubjectPublicKeyInfo");
        return KG_RESULT_ERROR;
    }
    memcpy(out->bytes, der, (size_t)len);
    out->len = (uint32_t)len;
    out->mechanism = 0;
    out->mwk_generation = 0;
    OPENSSL_free(der);
    return KG_RESULT_OK;
}

/* Build the public key from its parameters (`bld` filled by the caller). */
static kg_result kg_p11_pair_fromdata(const char *name, OSSL_PARAM_BLD *bld, struct kg_p11_blob *out)
{
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    kg_result rc = KG_RESULT_OK;

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);
    KG_GOTO_ENSURE(rc, params != NULL && ctx != NULL, KG_ERR_NOMEM);
    if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
        kg_error_detail("OpenSSL refused the %s public key the HSM made", name);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_p11_pair_spki(pkey, out));
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return rc;
}

static kg_result kg_p11_pair_rsa_public(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                                        struct kg_p11_blob *out)
{
    uint8_t n[KG_P11_PAIR_MAX_PART];
    uint8_t e[16];
    size_t n_len = 0;
    size_t e_len = 0;
    BIGNUM *bn_n = NULL;
    BIGNUM *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_p11_pair_read_attr(p11, s, pub, CKA_MODULUS, n, sizeof(n), &n_len));
    KG_GUARD(kg_p11_pair_read_attr(p11, s, pub, CKA_PUBLIC_EXPONENT, e, sizeof(e), &e_len));
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    bld = OSSL_PARAM_BLD_new();
    KG_GOTO_ENSURE(rc, bn_n != NULL && bn_e != NULL && bld != NULL, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
                           OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1,
                   KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_p11_pair_fromdata("RSA", bld, out));
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return rc;
}

static kg_result kg_p11_pair_ec_public(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub,
                                       enum kg_p11_curve curve, struct kg_p11_blob *out)
{
    uint8_t der[KG_P11_PAIR_MAX_PART];
    size_t der_len = 0;
    const uint8_t *point = NULL;
    size_t point_len = 0;
    OSSL_PARAM_BLD *bld = NULL;
    const char *group = curve == KG_P11_CURVE_P256 ? "P-256" : "P-384";
    size_t coord = kg_p11_curve_bits(curve) / 8;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_p11_pair_read_attr(p11, s, pub, CKA_EC_POINT, der, sizeof(der), &der_len));
    KG_GUARD(kg_p11_pair_ec_point(der, der_len, &point, &point_len));
    if (point_len != 1 + 2 * coord) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("EC point of %zu bytes for %s", point_len, group);
        return KG_RESULT_ERROR;
    }
    bld = OSSL_PARAM_BLD_new();
    KG_GOTO_ENSURE(rc, bld != NULL, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
                           OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) == 1,
                   KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_p11_pair_fromdata("EC", bld, out));
out:
    OSSL_PARAM_BLD_free(bld);
    return rc;
}

kg_result kg_p11_generate_pair(struct kg_p11 *p11, const struct kg_p11_pair_spec *spec, struct kg_p11_pair *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE }; /* session objects: public, private */
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
    bool rsa = spec != NULL && spec->algorithm == KG_P11_PAIR_RSA;
    bool resident = spec != NULL && spec->resident_id != NULL;
    CK_KEY_TYPE type = rsa ? CKK_RSA : CKK_EC;
    CK_MECHANISM mech = { rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0 };
    CK_ULONG modulus_bits = spec != NULL ? spec->rsa_bits : 0;
    CK_BYTE exponent[] = { 0x01, 0x00, 0x01 };
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_BBOOL sign = CK_FALSE;
    CK_BBOOL decrypt = CK_FALSE;
    CK_BBOOL unwrap = CK_FALSE;
    CK_ATTRIBUTE pub_tmpl[8] = {
        { CKA_CLASS, &pub_cls, sizeof(pub_cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_VERIFY, &yes, sizeof(yes) },
    };
    CK_ULONG pub_n = 4;
    /* The private key: sensitive always; a managed one is a session object
     * extractable only so that it can be wrapped under the MWK, a resident
     * one a token object that can never leave. */
    CK_ATTRIBUTE priv_tmpl[12] = {
        { CKA_CLASS, &priv_cls, sizeof(priv_cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
        { CKA_TOKEN, resident ? &yes : &no, sizeof(CK_BBOOL) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, resident ? &no : &yes, sizeof(CK_BBOOL) },
        { CKA_SIGN, &sign, sizeof(sign) },
    };
    CK_ULONG priv_n = 7;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && spec != NULL && out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_GUARD(kg_p11_pair_check_spec(spec));
    sign = (spec->private_uses & KG_P11_PAIR_USE_SIGN) ? CK_TRUE : CK_FALSE;
    decrypt = (spec->private_uses & KG_P11_PAIR_USE_DECRYPT) ? CK_TRUE : CK_FALSE;
    unwrap = (spec->private_uses & KG_P11_PAIR_USE_UNWRAP) ? CK_TRUE : CK_FALSE;
    if (rsa) {
        pub_tmpl[pub_n++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &modulus_bits, sizeof(modulus_bits) };
        pub_tmpl[pub_n++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, exponent, sizeof(exponent) };
        priv_tmpl[priv_n++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &decrypt, sizeof(decrypt) };
        priv_tmpl[priv_n++] = (CK_ATTRIBUTE){ CKA_UNWRAP, &unwrap, sizeof(unwrap) };
    } else if (spec->curve == KG_P11_CURVE_P256) {
        pub_tmpl[pub_n++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (CK_VOID_PTR)kg_p11_oid_p256, sizeof(kg_p11_oid_p256) };
    } else {
        pub_tmpl[pub_n++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (CK_VOID_PTR)kg_p11_oid_p384, sizeof(kg_p11_oid_p384) };
    }
    if (resident) {
        priv_tmpl[priv_n++] = (CK_ATTRIBUTE){ CKA_ID, (CK_VOID_PTR)spec->resident_id, strlen(spec->resident_id) };
    }

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    if (!resident) {
        KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GenerateKeyPair(s, &mech, pub_tmpl, pub_n, priv_tmpl, priv_n, &pub, &priv),
                                   "C_GenerateKeyPair"));
    objs[0] = pub;
    if (!resident) {
        objs[1] = priv;
    }
    if (rsa) {
        KG_GOTO_GUARD(rc, kg_p11_pair_rsa_public(p11, s, pub, &out->public_der));
    } else {
        KG_GOTO_GUARD(rc, kg_p11_pair_ec_public(p11, s, pub, spec->curve, &out->public_der));
    }
    if (!resident) {
        KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, priv, &out->private_blob));
    }
out:
    if (kg_failed(rc) && resident && priv != CK_INVALID_HANDLE) {
        /* A token object from a failed call would be a key nobody owns.
         * If this fails too the caller's error stands; the orphan keeps a
         * UID no store row names. */
        (void)p11->fn->C_DestroyObject(s, priv);
    }
    rc = kg_p11_finish_all(p11, s, objs, 2, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(&out->private_blob);
        kg_p11_blob_clear(&out->public_der);
    }
    return rc;
}

kg_result kg_p11_pair_destroy_resident(struct kg_p11 *p11, const char *id)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && id != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_find_resident(p11, s, id, CKO_PRIVATE_KEY, &h));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_DestroyObject(s, h), "C_DestroyObject"));
out:
    return kg_p11_finish(p11, s, CK_INVALID_HANDLE, rc);
}
