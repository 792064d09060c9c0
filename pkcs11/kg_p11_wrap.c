/*
 * kg_p11_wrap.c - wrapped export and import inside the HSM, and the
 * conversions of public keys (which need no HSM: they are not secret).
 *
 * Export and import each hold one session: the keys involved are loaded
 * onto it with kg_p11_key_load (so their temporary objects carry exactly
 * the uses asked for), one C_WrapKey or C_UnwrapKey runs, and
 * kg_p11_finish_all destroys every temporary object whatever happened.
 */
#include "kg_p11_wrap.h"
#include "kg_p11_internal.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * The CK_MECHANISM of `mech`, checked against the kind of key that will
 * wrap or unwrap with it. `oaep` is caller storage the mechanism points to.
 */
static kg_result kg_p11_wrap_mechanism(enum kg_p11_wrap_mech mech, enum kg_p11_key_kind wrapping_kind,
                                       CK_RSA_PKCS_OAEP_PARAMS *oaep, CK_MECHANISM *m)
{
    bool rsa = false;

    memset(oaep, 0, sizeof(*oaep));
    switch (mech) {
    case KG_P11_WRAP_AES_KW:
        *m = (CK_MECHANISM){ CKM_AES_KEY_WRAP, NULL, 0 };
        break;
    case KG_P11_WRAP_AES_KWP:
        *m = (CK_MECHANISM){ CKM_AES_KEY_WRAP_PAD, NULL, 0 };
        break;
    case KG_P11_WRAP_RSA_OAEP_SHA1:
        *oaep = (CK_RSA_PKCS_OAEP_PARAMS){ CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
        rsa = true;
        break;
    case KG_P11_WRAP_RSA_OAEP_SHA256:
        *oaep = (CK_RSA_PKCS_OAEP_PARAMS){ CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0 };
        rsa = true;
        break;
    default:
        kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
        kg_error_detail("unknown wrapping mechanism %d", (int)mech);
        return KG_RESULT_ERROR;
    }
    if (rsa) {
        *m = (CK_MECHANISM){ CKM_RSA_PKCS_OAEP, oaep, sizeof(*oaep) };
    }
    if (rsa ? wrapping_kind != KG_P11_KEY_RSA_PUBLIC : wrapping_kind != KG_P11_KEY_AES) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("%s wrapping needs %s wrapping key", rsa ? "RSA-OAEP" : "AES key wrap",
                        rsa ? "an RSA public" : "an AES");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/*
 * C_WrapKey's answer, read for the client: the codes that mean "not this
 * key or not these parameters" are the request's fault, not the HSM's.
 * CKR_ARGUMENTS_BAD is among them because every other argument is ours and
 * fixed; SoftHSMv2 2.6 answers it for OAEP with any hash but SHA-1.
 */
static kg_result kg_p11_wrap_check(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return KG_RESULT_OK;
    case CKR_KEY_SIZE_RANGE:
    case CKR_WRAPPED_KEY_LEN_RANGE:
        kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
        kg_error_detail("C_WrapKey: %s (RFC 3394 wraps keys of a multiple of 8 bytes)", kg_p11_rv_name(rv));
        return KG_RESULT_ERROR;
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_ARGUMENTS_BAD:
    case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("C_WrapKey: the HSM does not do this wrapping (%s)", kg_p11_rv_name(rv));
        return KG_RESULT_ERROR;
    case CKR_KEY_NOT_WRAPPABLE:
    case CKR_KEY_UNEXTRACTABLE:
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("C_WrapKey: %s", kg_p11_rv_name(rv));
        return KG_RESULT_ERROR;
    case CKR_BUFFER_TOO_SMALL:
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("wrapped key longer than %u bytes", KG_P11_MAX_WRAPPED);
        return KG_RESULT_ERROR;
    default:
        return KG_P11_CHECK(rv, "C_WrapKey");
    }
}

kg_result kg_p11_wrap_key(struct kg_p11 *p11, const struct kg_p11_key_ref *target,
                          const struct kg_p11_key_ref *wrapping, enum kg_p11_wrap_mech mech, uint8_t *out,
                          size_t cap, size_t *out_len)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE wrapper = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m;
    CK_ULONG n = cap;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && target != NULL && wrapping != NULL && out != NULL && out_len != NULL, KG_ERR_INTERNAL);
    *out_len = 0;
    KG_GUARD(kg_p11_wrap_mechanism(mech, wrapping->kind, &oaep, &m));
    if (target->storage == KG_P11_STORED_RESIDENT) {
        /* Said before any session work: kg_p11_key_load would refuse too. */
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("resident key '%s' never leaves the HSM", target->resident_id);
        return KG_RESULT_ERROR;
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, target, KG_P11_USE_EXTRACT, &key, &objs[0]));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, wrapping, KG_P11_USE_WRAP, &wrapper, &objs[1]));
    KG_GOTO_GUARD(rc, kg_p11_wrap_check(p11->fn->C_WrapKey(s, &m, wrapper, key, out, &n)));
    KG_GOTO_ENSURE(rc, n > 0 && n <= cap, KG_ERR_HSM);
    *out_len = n;
out:
    return kg_p11_finish_all(p11, s, objs, 2, rc);
}

/* Does the token derive with `mech`? Asked before any object exists so that
 * the refusal names the missing mechanism, not a derive error. */
static kg_result kg_p11_wrap_can_derive(struct kg_p11 *p11, CK_MECHANISM_TYPE mech, const char *name)
{
    CK_MECHANISM_INFO info;
    CK_RV rv = p11->fn->C_GetMechanismInfo(p11->pool.slot, mech, &info);

    if (rv == CKR_MECHANISM_INVALID || (rv == CKR_OK && (info.flags & CKF_DERIVE) == 0)) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("TTLV Encoding is built inside the HSM with %s, which this HSM does not have: ask for "
                        "Encoding Option No Encoding",
                        name);
        return KG_RESULT_ERROR;
    }
    return KG_P11_CHECK(rv, "C_GetMechanismInfo");
}

/* C_DeriveKey's answer: a refusal of the mechanism, its parameters or our
 * template is "this HSM cannot", the rest is the HSM's failure. */
static kg_result kg_p11_derive_check(CK_RV rv)
{
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_ATTRIBUTE_VALUE_INVALID:
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("C_DeriveKey: the HSM will not build the TTLV Encoding (%s)", kg_p11_rv_name(rv));
        return KG_RESULT_ERROR;
    default:
        return KG_P11_CHECK(rv, "C_DeriveKey");
    }
}

/* One concatenation derive of `base` with public `data` into a sensitive
 * generic-secret session object *h; `extractable` only for the object that
 * is wrapped out next, `derive` for the one derived from again. */
static kg_result kg_p11_wrap_concat(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type,
                                    CK_OBJECT_HANDLE base, const uint8_t *data, size_t len, bool extractable,
                                    bool derive, CK_OBJECT_HANDLE *h)
{
    /* The data is the frame around the key, public; the cast drops const
     * only (C_DeriveKey does not write through pData). */
    CK_KEY_DERIVATION_STRING_DATA param = { (CK_BYTE_PTR)data, len };
    CK_MECHANISM m = { type, &param, sizeof(param) };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, extractable ? &yes : &no, sizeof(yes) },
        { CKA_DERIVE, derive ? &yes : &no, sizeof(yes) },
        { CKA_ENCRYPT, &no, sizeof(no) },
        { CKA_DECRYPT, &no, sizeof(no) },
        { CKA_SIGN, &no, sizeof(no) },
        { CKA_VERIFY, &no, sizeof(no) },
        { CKA_WRAP, &no, sizeof(no) },
        { CKA_UNWRAP, &no, sizeof(no) },
    };

    return kg_p11_derive_check(p11->fn->C_DeriveKey(s, &m, base, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), h));
}

kg_result kg_p11_wrap_key_framed(struct kg_p11 *p11, const struct kg_p11_key_ref *target,
                                 const struct kg_p11_key_ref *wrapping, enum kg_p11_wrap_mech mech,
                                 const uint8_t *prefix, size_t prefix_len, const uint8_t *suffix, size_t suffix_len,
                                 uint8_t *out, size_t cap, size_t *out_len)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE wrapper = CK_INVALID_HANDLE;
    /* target, wrapping key, prefix||key, prefix||key||suffix */
    CK_OBJECT_HANDLE objs[4] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_OBJECT_HANDLE framed = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE can_derive = { CKA_DERIVE, &yes, sizeof(yes) };
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m;
    CK_ULONG n = cap;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && target != NULL && wrapping != NULL && out != NULL && out_len != NULL, KG_ERR_INTERNAL);
    *out_len = 0;
    KG_ENSURE(prefix != NULL && prefix_len > 0 && prefix_len <= KG_P11_MAX_FRAME &&
                  (suffix_len == 0 || suffix != NULL) && suffix_len <= KG_P11_MAX_FRAME,
              KG_ERR_INTERNAL);
    KG_GUARD(kg_p11_wrap_mechanism(mech, wrapping->kind, &oaep, &m));
    if (target->storage == KG_P11_STORED_RESIDENT) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("resident key '%s' never leaves the HSM", target->resident_id);
        return KG_RESULT_ERROR;
    }
    /* Derivation takes a secret key as base: a private key's PKCS#8 cannot
     * be framed this way. */
    KG_ENSURE(target->kind == KG_P11_KEY_AES || target->kind == KG_P11_KEY_HMAC, KG_ERR_UNSUPPORTED_FEATURE);
    KG_GUARD(kg_p11_wrap_can_derive(p11, CKM_CONCATENATE_DATA_AND_BASE, "CKM_CONCATENATE_DATA_AND_BASE"));
    if (suffix_len > 0) {
        KG_GUARD(kg_p11_wrap_can_derive(p11, CKM_CONCATENATE_BASE_AND_DATA, "CKM_CONCATENATE_BASE_AND_DATA"));
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    /* Loaded extractable because PKCS#11 makes a key derived from an
     * unextractable base unextractable too; CKA_DERIVE is set on this
     * temporary session object only, which is destroyed below. */
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, target, KG_P11_USE_EXTRACT, &key, &objs[0]));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_SetAttributeValue(s, key, &can_derive, 1), "C_SetAttributeValue"));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, wrapping, KG_P11_USE_WRAP, &wrapper, &objs[1]));
    KG_GOTO_GUARD(rc, kg_p11_wrap_concat(p11, s, CKM_CONCATENATE_DATA_AND_BASE, key, prefix, prefix_len, true,
                                         suffix_len > 0, &objs[2]));
    framed = objs[2];
    if (suffix_len > 0) {
        KG_GOTO_GUARD(rc, kg_p11_wrap_concat(p11, s, CKM_CONCATENATE_BASE_AND_DATA, objs[2], suffix, suffix_len, true,
                                             false, &objs[3]));
        framed = objs[3];
    }
    KG_GOTO_GUARD(rc, kg_p11_wrap_check(p11->fn->C_WrapKey(s, &m, wrapper, framed, out, &n)));
    KG_GOTO_ENSURE(rc, n > 0 && n <= cap, KG_ERR_HSM);
    *out_len = n;
out:
    return kg_p11_finish_all(p11, s, objs, 4, rc);
}

/* C_UnwrapKey's answer for wrapped import: the input is the client's, so a
 * failed integrity check is theirs (wrong key or damaged bytes). */
static kg_result kg_p11_unwrap_check(CK_RV rv)
{
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("C_UnwrapKey: the HSM does not do this unwrapping (%s)", kg_p11_rv_name(rv));
        return KG_RESULT_ERROR;
    default:
        return KG_P11_CHECK_UNWRAP(rv);
    }
}

kg_result kg_p11_unwrap_key(struct kg_p11 *p11, const struct kg_p11_key_ref *unwrapping, enum kg_p11_wrap_mech mech,
                            enum kg_p11_key_kind kind, const uint8_t *wrapped, size_t len, struct kg_p11_blob *out,
                            uint32_t *key_bytes)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE unwrapper = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM m;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = kind == KG_P11_KEY_AES ? CKK_AES : CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    /* Extractable only so that it can be wrapped under the MWK; it is a
     * sensitive session object and destroyed right after. */
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
    };
    CK_ULONG value_len = 0;
    CK_ATTRIBUTE get_len = { CKA_VALUE_LEN, &value_len, sizeof(value_len) };
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && unwrapping != NULL && out != NULL && key_bytes != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    *key_bytes = 0;
    if (mech != KG_P11_WRAP_AES_KW && mech != KG_P11_WRAP_AES_KWP) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("wrapped import takes AES key wrap (RFC 3394 or 5649) only");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(kind == KG_P11_KEY_AES || kind == KG_P11_KEY_HMAC, KG_ERR_UNSUPPORTED_ALGORITHM);
    KG_GUARD(kg_p11_wrap_mechanism(mech, unwrapping->kind, &oaep, &m));
    if (wrapped == NULL || len < 16 || len > KG_P11_MAX_WRAPPED) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("wrapped key of %zu bytes", len);
        return KG_RESULT_ERROR;
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, unwrapping, KG_P11_USE_UNWRAP, &unwrapper, &objs[0]));
    /* PKCS#11 does not write through pWrappedKey; the cast only drops const. */
    KG_GOTO_GUARD(rc, kg_p11_unwrap_check(p11->fn->C_UnwrapKey(s, &m, unwrapper, (CK_BYTE_PTR)wrapped, len, tmpl,
                                                               sizeof(tmpl) / sizeof(tmpl[0]), &objs[1])));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, objs[1], &get_len, 1), "C_GetAttributeValue"));
    KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, objs[1], out));
    if (value_len == 0 && out->len > 8) {
        /* SoftHSMv2 leaves CKA_VALUE_LEN at 0 on unwrapped keys. The MWK
         * blob (RFC 5649: the key rounded up to 8 bytes, plus 8) says it,
         * exactly for the lengths that are multiples of 8, the AES ones. */
        value_len = out->len - 8;
    }
    if (kind == KG_P11_KEY_AES ? (value_len != 16 && value_len != 24 && value_len != 32)
                               : (value_len == 0 || value_len > KG_P11_MAX_KEY)) {
        kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
        kg_error_detail("unwrapped key of %lu bytes", (unsigned long)value_len);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    *key_bytes = (uint32_t)value_len;
    if (kind == KG_P11_KEY_AES) {
        /* An AES object holds exactly its key; a generic secret may come
         * back padded (SoftHSM), so its digest could be of the padding too. */
        KG_GOTO_GUARD(rc, kg_p11_digest_into_blob(p11, s, objs[1], out));
    }
out:
    rc = kg_p11_finish_all(p11, s, objs, 2, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(out);
        *key_bytes = 0;
    }
    return rc;
}

/* ---- public keys: OpenSSL only ------------------------------------------- */

kg_result kg_p11_public_import(const uint8_t *der, size_t len, enum kg_p11_public_format format,
                               struct kg_p11_blob *out, enum kg_p11_key_kind *kind, uint32_t *bits)
{
    const unsigned char *p = der;
    unsigned char *w = NULL;
    EVP_PKEY *pkey = NULL;
    int n;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(out != NULL && kind != NULL && bits != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    KG_ENSURE(der != NULL && len > 0 && len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    if (format == KG_P11_PUBLIC_PKCS1) {
        pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
    } else {
        pkey = d2i_PUBKEY(NULL, &p, (long)len);
    }
    if (pkey == NULL || p != der + len) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("public key is not one %s DER", format == KG_P11_PUBLIC_PKCS1 ? "RSAPublicKey" :
                                                                                       "SubjectPublicKeyInfo");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *kind = KG_P11_KEY_RSA_PUBLIC;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        *kind = KG_P11_KEY_EC_PUBLIC;
    } else if (EVP_PKEY_is_a(pkey, "DSA") && format == KG_P11_PUBLIC_SPKI) {
        *kind = KG_P11_KEY_DSA_PUBLIC; /* stored and returned only: the HSM never verifies with it */
    } else {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("public key of type %s; RSA, EC and DSA supported", EVP_PKEY_get0_type_name(pkey));
        rc = KG_RESULT_ERROR;
        goto out;
    }
    /* Re-encoded rather than copied: what is stored is always SPKI. */
    n = i2d_PUBKEY(pkey, &w);
    KG_GOTO_ENSURE(rc, n > 0 && (size_t)n <= sizeof(out->bytes), KG_ERR_INVALID_FIELD);
    memcpy(out->bytes, w, (size_t)n);
    out->len = (uint32_t)n;
    *bits = (uint32_t)EVP_PKEY_get_bits(pkey);
out:
    OPENSSL_free(w);
    EVP_PKEY_free(pkey);
    return rc;
}

kg_result kg_p11_public_export(const struct kg_p11_blob *blob, enum kg_p11_public_format format, uint8_t *out,
                               size_t cap, size_t *out_len)
{
    const unsigned char *p = NULL;
    unsigned char *w = NULL;
    EVP_PKEY *pkey = NULL;
    int n;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(blob != NULL && out != NULL && out_len != NULL && blob->len <= sizeof(blob->bytes), KG_ERR_INTERNAL);
    *out_len = 0;
    p = blob->bytes;
    pkey = d2i_PUBKEY(NULL, &p, (long)blob->len);
    KG_GOTO_ENSURE(rc, pkey != NULL && p == blob->bytes + blob->len, KG_ERR_INVALID_FIELD);
    if (format == KG_P11_PUBLIC_PKCS1) {
        if (!EVP_PKEY_is_a(pkey, "RSA")) {
            kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
            kg_error_detail("PKCS#1 is a format of RSA keys only");
            rc = KG_RESULT_ERROR;
            goto out;
        }
        n = i2d_PublicKey(pkey, &w);
    } else {
        n = i2d_PUBKEY(pkey, &w);
    }
    KG_GOTO_ENSURE(rc, n > 0 && (size_t)n <= cap, KG_ERR_INVALID_FIELD);
    memcpy(out, w, (size_t)n);
    *out_len = (size_t)n;
out:
    OPENSSL_free(w);
    EVP_PKEY_free(pkey);
    return rc;
}
