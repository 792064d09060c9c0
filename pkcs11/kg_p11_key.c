/*
 * kg_p11_key.c - make a stored key usable on a session: unwrap a blob
 * under the MWK, find a resident token object, or build a public key
 * object from its DER.
 *
 * Every operation that uses a managed key (wrapped export, server-side
 * cryptography, key pairs) goes through kg_p11_key_load, so the rules for
 * what a temporary key object may do live in one place: it is a session
 * object, private and sensitive, able to do exactly the uses asked for,
 * and extractable only when it is about to be wrapped out.
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

/* Longest RSA modulus or EC point we build an object from, bytes. */
#define KG_P11_MAX_PUBLIC_PART 1024u

static kg_result kg_p11_key_kind_class(enum kg_p11_key_kind kind, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *type)
{
    switch (kind) {
    case KG_P11_KEY_AES:
        *cls = CKO_SECRET_KEY;
        *type = CKK_AES;
        return KG_RESULT_OK;
    case KG_P11_KEY_HMAC:
    case KG_P11_KEY_SECRET:
        *cls = CKO_SECRET_KEY;
        *type = CKK_GENERIC_SECRET;
        return KG_RESULT_OK;
    case KG_P11_KEY_RSA_PRIVATE:
        *cls = CKO_PRIVATE_KEY;
        *type = CKK_RSA;
        return KG_RESULT_OK;
    case KG_P11_KEY_RSA_PUBLIC:
        *cls = CKO_PUBLIC_KEY;
        *type = CKK_RSA;
        return KG_RESULT_OK;
    case KG_P11_KEY_EC_PRIVATE:
        *cls = CKO_PRIVATE_KEY;
        *type = CKK_EC;
        return KG_RESULT_OK;
    case KG_P11_KEY_EC_PUBLIC:
        *cls = CKO_PUBLIC_KEY;
        *type = CKK_EC;
        return KG_RESULT_OK;
    case KG_P11_KEY_DES3:
        *cls = CKO_SECRET_KEY;
        *type = CKK_DES3;
        return KG_RESULT_OK;
    case KG_P11_KEY_DSA_PRIVATE:
        *cls = CKO_PRIVATE_KEY;
        *type = CKK_DSA;
        return KG_RESULT_OK;
    case KG_P11_KEY_DSA_PUBLIC:
        *cls = CKO_PUBLIC_KEY;
        *type = CKK_DSA;
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
    kg_error_detail("unknown key kind %d", (int)kind);
    return KG_RESULT_ERROR;
}

/*
 * The attribute template of a temporary object of class `cls`: the use
 * flags a class can carry (PKCS#11 v2.40 tables 27, 34, 36, 38), each
 * TRUE only when asked for. `tmpl` must hold 12 entries; *n gets the count.
 */
static void kg_p11_use_template(CK_OBJECT_CLASS cls, unsigned uses, CK_BBOOL *yes, CK_BBOOL *no,
                                CK_ATTRIBUTE *tmpl, CK_ULONG *n)
{
    CK_ULONG i = *n;

#define KG_P11_FLAG(attr, on) (tmpl[i++] = (CK_ATTRIBUTE){ (attr), (on) ? yes : no, sizeof(CK_BBOOL) })
    KG_P11_FLAG(CKA_TOKEN, false);
    if (cls == CKO_PUBLIC_KEY) {
        KG_P11_FLAG(CKA_ENCRYPT, uses & KG_P11_USE_ENCRYPT);
        KG_P11_FLAG(CKA_VERIFY, uses & KG_P11_USE_VERIFY);
        KG_P11_FLAG(CKA_WRAP, uses & KG_P11_USE_WRAP);
    } else {
        KG_P11_FLAG(CKA_PRIVATE, true);
        /* Only a plaintext read (policy allowed it) makes a readable object. */
        KG_P11_FLAG(CKA_SENSITIVE, !(uses & KG_P11_USE_READ));
        KG_P11_FLAG(CKA_EXTRACTABLE, uses & (KG_P11_USE_EXTRACT | KG_P11_USE_READ));
        KG_P11_FLAG(CKA_DECRYPT, uses & KG_P11_USE_DECRYPT);
        KG_P11_FLAG(CKA_SIGN, uses & KG_P11_USE_SIGN);
        KG_P11_FLAG(CKA_UNWRAP, uses & KG_P11_USE_UNWRAP);
        if (cls == CKO_SECRET_KEY) {
            KG_P11_FLAG(CKA_ENCRYPT, uses & KG_P11_USE_ENCRYPT);
            KG_P11_FLAG(CKA_VERIFY, uses & KG_P11_USE_VERIFY);
            KG_P11_FLAG(CKA_WRAP, uses & KG_P11_USE_WRAP);
        }
    }
#undef KG_P11_FLAG
    *n = i;
}

/* Does the object's CK_BBOOL `a->type` read back as *a->pValue? */
/* Most CK_BBOOL attributes a temporary object's template carries. */
#define KG_P11_MAX_FLAGS 16

static kg_result kg_p11_key_flag_is(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *a,
                                    bool *same)
{
    CK_BBOOL got = 2; /* neither TRUE nor FALSE: a token that writes nothing never matches */
    CK_ATTRIBUTE q = { a->type, &got, sizeof(got) };

    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, h, &q, 1), "C_GetAttributeValue"));
    *same = q.ulValueLen == sizeof(got) && got == *(const CK_BBOOL *)a->pValue;
    return KG_RESULT_OK;
}

/*
 * Read back every CK_BBOOL of `tmpl` (the template the object was asked
 * for) from the new object `h` and make the object match it or refuse it.
 * The only repair done is the one-way tightening PKCS#11 allows on any
 * key: CKA_SENSITIVE FALSE -> TRUE and CKA_EXTRACTABLE TRUE -> FALSE, by
 * C_SetAttributeValue (openCryptoki 3.8.1 leaves those two at FALSE/TRUE
 * on every unwrapped key, whatever the template said). Any other
 * difference (a use flag, CKA_PRIVATE, CKA_TOKEN, or a wanted loosening
 * the token will not do) is an error. The caller owns `h` and destroys
 * it on error.
 */
static kg_result kg_p11_key_enforce(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                                    const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_ATTRIBUTE q[KG_P11_MAX_FLAGS];
    CK_BBOOL got[KG_P11_MAX_FLAGS];
    const CK_ATTRIBUTE *want[KG_P11_MAX_FLAGS];
    CK_ULONG m = 0;

    for (CK_ULONG i = 0; i < n; i++) {
        if (tmpl[i].ulValueLen != sizeof(CK_BBOOL) || tmpl[i].type == CKA_CLASS || tmpl[i].type == CKA_KEY_TYPE) {
            continue;
        }
        KG_ENSURE(m < KG_P11_MAX_FLAGS, KG_ERR_INTERNAL);
        got[m] = 2; /* neither TRUE nor FALSE: a token that writes nothing never matches */
        q[m] = (CK_ATTRIBUTE){ tmpl[i].type, &got[m], sizeof(got[m]) };
        want[m] = &tmpl[i];
        m++;
    }
    /* Every flag in one call: a token that honours the template (SoftHSM)
     * costs one round trip per key use, not one per flag. */
    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, h, q, m), "C_GetAttributeValue"));
    for (CK_ULONG j = 0; j < m; j++) {
        const CK_ATTRIBUTE *a = want[j];
        bool same = q[j].ulValueLen == sizeof(CK_BBOOL) && got[j] == *(const CK_BBOOL *)a->pValue;

        if (!same && ((a->type == CKA_SENSITIVE && *(const CK_BBOOL *)a->pValue == CK_TRUE) ||
                      (a->type == CKA_EXTRACTABLE && *(const CK_BBOOL *)a->pValue == CK_FALSE))) {
            /* The cast drops const only: C_SetAttributeValue reads the template. */
            CK_RV rv = p11->fn->C_SetAttributeValue(s, h, (CK_ATTRIBUTE_PTR)a, 1);

            if (rv != CKR_OK) {
                kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
                kg_error_detail("unwrapped key: the token will not make it %s (C_SetAttributeValue: %s); refused",
                                a->type == CKA_SENSITIVE ? "sensitive" : "non-extractable", kg_p11_rv_name(rv));
                return KG_RESULT_ERROR;
            }
            KG_GUARD(kg_p11_key_flag_is(p11, s, h, a, &same));
        }
        if (!same) {
            kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
            kg_error_detail("unwrapped key: attribute 0x%lx is not %s as asked; refused", (unsigned long)a->type,
                            *(const CK_BBOOL *)a->pValue == CK_TRUE ? "TRUE" : "FALSE");
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

/* `tmpl` without its CKA_SENSITIVE and CKA_EXTRACTABLE entries, into `out` (cap n). */
static CK_ULONG kg_p11_key_without_one_way(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE *out)
{
    CK_ULONG m = 0;

    for (CK_ULONG i = 0; i < n; i++) {
        if (tmpl[i].type != CKA_SENSITIVE && tmpl[i].type != CKA_EXTRACTABLE) {
            out[m++] = tmpl[i];
        }
    }
    return m;
}

/*
 * Unwrap the blob under the MWK into a session object with exactly the
 * template of kg_p11_use_template.
 *
 * openCryptoki 3.8.1 (soft token, probed by hand) treats CKA_SENSITIVE and
 * CKA_EXTRACTABLE of C_UnwrapKey's template as read-only attributes: the
 * permissive values (SENSITIVE=FALSE, EXTRACTABLE=TRUE) are refused with
 * CKR_ATTRIBUTE_READ_ONLY, and the restrictive ones are accepted but the
 * object comes out non-sensitive and extractable all the same. The use
 * flags, CKA_PRIVATE and CKA_TOKEN are honoured. So: the full template
 * first (SoftHSM honours it all); on CKR_ATTRIBUTE_READ_ONLY once more
 * without those two; and in both cases every flag is read back and the
 * object tightened or refused (kg_p11_key_enforce), so no token default is
 * ever trusted. On success the caller owns *h; on error nothing is left.
 */
static kg_result kg_p11_key_unwrap(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_key_ref *ref,
                                   CK_OBJECT_CLASS cls, CK_KEY_TYPE type, unsigned uses, CK_OBJECT_HANDLE *h)
{
    /* The blob's own mechanism (and CBC-PAD IV), not the one new blobs
     * get: a store written under another stays readable. */
    CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    const uint8_t *wrapped = NULL;
    CK_ULONG wrapped_len = 0;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[14] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
    };
    CK_ATTRIBUTE fewer[14];
    CK_ULONG n = 2;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(ref->blob != NULL, KG_ERR_INTERNAL);
    kg_p11_use_template(cls, uses, &yes, &no, tmpl, &n);
    KG_GUARD(kg_p11_mwk_for_blob(p11, s, ref->blob, &mwk));
    KG_GUARD(kg_p11_blob_unwrap_params(ref->blob, &mech, &wrapped, &wrapped_len));
    /* PKCS#11 does not write through pWrappedKey; the cast only drops const. */
    rv = p11->fn->C_UnwrapKey(s, &mech, mwk, (CK_BYTE_PTR)wrapped, wrapped_len, tmpl, n, h);
    if (rv == CKR_ATTRIBUTE_READ_ONLY) {
        rv = p11->fn->C_UnwrapKey(s, &mech, mwk, (CK_BYTE_PTR)wrapped, wrapped_len, fewer,
                                  kg_p11_key_without_one_way(tmpl, n, fewer), h);
    }
    if (kg_p11_rv_is_stale_handle(rv)) {
        kg_p11_mwk_forget(p11, mwk);
    }
    KG_GUARD(KG_P11_CHECK_UNWRAP(rv));
    rc = kg_p11_key_enforce(p11, s, *h, tmpl, n);
    if (kg_failed(rc)) {
        /* Best effort: a session object goes with its session anyway. */
        (void)p11->fn->C_DestroyObject(s, *h);
        *h = CK_INVALID_HANDLE;
    }
    return rc;
}

kg_result kg_p11_find_resident(struct kg_p11 *p11, CK_SESSION_HANDLE s, const char *id, CK_OBJECT_CLASS cls,
                               CK_OBJECT_HANDLE *h)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_ID, (CK_VOID_PTR)id, strlen(id) },
    };
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_ULONG n = 0;
    kg_result rc = KG_RESULT_OK;

    *h = CK_INVALID_HANDLE;
    KG_GUARD(KG_P11_CHECK(p11->fn->C_FindObjectsInit(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0])), "C_FindObjectsInit"));
    rc = KG_P11_CHECK(p11->fn->C_FindObjects(s, objs, 2, &n), "C_FindObjects");
    CK_RV rv = p11->fn->C_FindObjectsFinal(s);

    KG_GUARD(rc);
    KG_GUARD(KG_P11_CHECK(rv, "C_FindObjectsFinal"));
    if (n != 1) {
        /* Gone (someone deleted it on the token) or ambiguous: never guess. */
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("resident key '%s': %lu token objects with that CKA_ID, expected 1", id,
                        (unsigned long)n);
        return KG_RESULT_ERROR;
    }
    *h = objs[0];
    return KG_RESULT_OK;
}

/* DER OCTET STRING around `point` (CKA_EC_POINT's form, v2.40 section 2.3.3). */
static kg_result kg_p11_der_octet_string(const uint8_t *point, size_t len, uint8_t *out, size_t cap,
                                         size_t *out_len)
{
    size_t head = len < 0x80 ? 2 : (len < 0x100 ? 3 : 4);

    KG_ENSURE(len <= 0xffff && head + len <= cap, KG_ERR_INVALID_FIELD);
    out[0] = 0x04;
    if (head == 2) {
        out[1] = (uint8_t)len;
    } else if (head == 3) {
        out[1] = 0x81;
        out[2] = (uint8_t)len;
    } else {
        out[1] = 0x82;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
    }
    memcpy(out + head, point, len);
    *out_len = head + len;
    return KG_RESULT_OK;
}

/* Create a session public key object from SubjectPublicKeyInfo DER. */
static kg_result kg_p11_key_public(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_key_ref *ref,
                                   CK_KEY_TYPE type, unsigned uses, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[14] = { /* 4 + kg_p11_use_template's most, 10 */
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
    };
    CK_ULONG n = 2;
    const unsigned char *p = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL;
    BIGNUM *bn_e = NULL;
    uint8_t part1[KG_P11_MAX_PUBLIC_PART];
    uint8_t part2[KG_P11_MAX_PUBLIC_PART];
    uint8_t point[KG_P11_MAX_PUBLIC_PART];
    char curve[64];
    size_t len1 = 0;
    size_t len2 = 0;
    ASN1_OBJECT *oid = NULL;
    unsigned char *oid_der = NULL;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(ref->blob != NULL && ref->blob->len <= sizeof(ref->blob->bytes), KG_ERR_INTERNAL);
    p = ref->blob->bytes;
    pkey = d2i_PUBKEY(NULL, &p, (long)ref->blob->len);
    if (pkey == NULL || p != ref->blob->bytes + ref->blob->len) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("public key is not one SubjectPublicKeyInfo DER");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (type == CKK_RSA) {
        KG_GOTO_ENSURE(rc, EVP_PKEY_is_a(pkey, "RSA"), KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &bn_n) == 1, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &bn_e) == 1, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, (size_t)BN_num_bytes(bn_n) <= sizeof(part1) && (size_t)BN_num_bytes(bn_e) <= sizeof(part2),
                       KG_ERR_INVALID_FIELD);
        len1 = (size_t)BN_bn2bin(bn_n, part1);
        len2 = (size_t)BN_bn2bin(bn_e, part2);
        tmpl[n++] = (CK_ATTRIBUTE){ CKA_MODULUS, part1, len1 };
        tmpl[n++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, part2, len2 };
    } else {
        int oid_len;

        KG_GOTO_ENSURE(rc, EVP_PKEY_is_a(pkey, "EC"), KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), NULL) == 1,
                       KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len2) == 1,
                       KG_ERR_INVALID_FIELD);
        oid = OBJ_txt2obj(curve, 0);
        KG_GOTO_ENSURE(rc, oid != NULL, KG_ERR_INVALID_FIELD);
        oid_len = i2d_ASN1_OBJECT(oid, &oid_der);
        KG_GOTO_ENSURE(rc, oid_len > 0 && (size_t)oid_len <= sizeof(part1), KG_ERR_INVALID_FIELD);
        memcpy(part1, oid_der, (size_t)oid_len);
        len1 = (size_t)oid_len;
        KG_GOTO_GUARD(rc, kg_p11_der_octet_string(point, len2, part2, sizeof(part2), &len2));
        tmpl[n++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, part1, len1 };
        tmpl[n++] = (CK_ATTRIBUTE){ CKA_EC_POINT, part2, len2 };
    }
    kg_p11_use_template(cls, uses, &yes, &no, tmpl, &n);
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_CreateObject(s, tmpl, n, h), "C_CreateObject"));
out:
    OPENSSL_free(oid_der);
    ASN1_OBJECT_free(oid);
    BN_free(bn_n);
    BN_free(bn_e);
    EVP_PKEY_free(pkey);
    return rc;
}

kg_result kg_p11_key_load(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_key_ref *ref, unsigned uses,
                          CK_OBJECT_HANDLE *h, CK_OBJECT_HANDLE *to_destroy)
{
    CK_OBJECT_CLASS cls = 0;
    CK_KEY_TYPE type = 0;

    KG_ENSURE(p11 != NULL && ref != NULL && h != NULL && to_destroy != NULL, KG_ERR_INTERNAL);
    *h = CK_INVALID_HANDLE;
    *to_destroy = CK_INVALID_HANDLE;
    KG_GUARD(kg_p11_key_kind_class(ref->kind, &cls, &type));
    if (ref->bind.uid == NULL && ref->storage == KG_P11_STORED_WRAPPED && ref->blob != NULL &&
        ref->blob->mechanism == (uint32_t)CKM_AES_CBC_PAD) {
        /* Key wrap (RFC 3394/5649) checks its own integrity; CBC-PAD does
         * not, so its blobs are used only with their binding verified. */
        kg_error_set(KG_ERR_HSM_BLOB_TAMPERED, __FILE__, __LINE__);
        kg_error_detail("CBC-PAD blob used without its binding: refused");
        return KG_RESULT_ERROR;
    }
    if (ref->bind.uid != NULL && ref->storage != KG_P11_STORED_RESIDENT) {
        /* First, before the blob reaches the HSM in any other way: a blob
         * swapped in from another row or altered is refused here, so it
         * can never be used (or exported) as this object's key. */
        KG_ENSURE(ref->bind.blob == ref->blob, KG_ERR_INTERNAL);
        KG_GUARD(kg_p11_blob_verify_on(p11, s, &ref->bind));
    }
    switch (ref->storage) {
    case KG_P11_STORED_WRAPPED:
        KG_ENSURE(cls != CKO_PUBLIC_KEY, KG_ERR_INTERNAL);
        KG_GUARD(kg_p11_key_unwrap(p11, s, ref, cls, type, uses, h));
        *to_destroy = *h;
        return KG_RESULT_OK;
    case KG_P11_STORED_RESIDENT:
        KG_ENSURE(ref->resident_id != NULL, KG_ERR_INTERNAL);
        if (uses & (KG_P11_USE_EXTRACT | KG_P11_USE_READ)) {
            kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
            kg_error_detail("resident key '%s' never leaves the HSM", ref->resident_id);
            return KG_RESULT_ERROR;
        }
        return kg_p11_find_resident(p11, s, ref->resident_id, cls, h);
    case KG_P11_STORED_PUBLIC:
        KG_ENSURE(cls == CKO_PUBLIC_KEY, KG_ERR_INTERNAL);
        KG_GUARD(kg_p11_key_public(p11, s, ref, type, uses, h));
        *to_destroy = *h;
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
    kg_error_detail("unknown key storage %d", (int)ref->storage);
    return KG_RESULT_ERROR;
}
