/*
 * kg_p11_resident.c - secret keys born in the HSM: wrapped HMAC (and AES)
 * keys, and resident keys that live on the token as non-extractable
 * objects named by their KMIP UID (see kg_p11_crypto.h).
 */
#include "kg_p11_crypto.h"
#include "kg_p11_internal.h"

#include <stdio.h>
#include <string.h>

/* "kmipgw:" + a UID; our UIDs are 36 characters. */
#define KG_P11_RESIDENT_ID_MAX 64u

unsigned kg_p11_uses_of_mask(uint32_t mask)
{
    unsigned uses = 0;

    /* KMIP 1.4 section 9.1.3.3.1. HMAC is C_Sign/C_Verify in PKCS#11, so
     * MAC Generate and MAC Verify map onto the sign and verify flags. */
    if (mask & (0x0001u | 0x0080u)) {
        uses |= KG_P11_USE_SIGN;
    }
    if (mask & (0x0002u | 0x0100u)) {
        uses |= KG_P11_USE_VERIFY;
    }
    if (mask & 0x0004u) {
        uses |= KG_P11_USE_ENCRYPT;
    }
    if (mask & 0x0008u) {
        uses |= KG_P11_USE_DECRYPT;
    }
    if (mask & 0x0010u) {
        uses |= KG_P11_USE_WRAP;
    }
    if (mask & 0x0020u) {
        uses |= KG_P11_USE_UNWRAP;
    }
    return uses;
}

static kg_result kg_p11_secret_type(enum kg_p11_key_kind kind, uint32_t bits, CK_KEY_TYPE *type,
                                    CK_MECHANISM_TYPE *gen)
{
    if (kind == KG_P11_KEY_AES) {
        if (bits != 128 && bits != 192 && bits != 256) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("AES key length %u bits; 128, 192 or 256 supported", bits);
            return KG_RESULT_ERROR;
        }
        *type = CKK_AES;
        *gen = CKM_AES_KEY_GEN;
        return KG_RESULT_OK;
    }
    if (kind == KG_P11_KEY_HMAC) {
        /* RFC 2104: at least the hash output is recommended; 128 bits is
         * the floor NIST SP 800-107 allows for HMAC security strength. */
        if (bits < 128 || bits > 512 || bits % 8 != 0) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("HMAC key length %u bits; a multiple of 8 from 128 to 512 supported", bits);
            return KG_RESULT_ERROR;
        }
        *type = CKK_GENERIC_SECRET;
        *gen = CKM_GENERIC_SECRET_KEY_GEN;
        return KG_RESULT_OK;
    }
    if (kind == KG_P11_KEY_DES3) {
        /* KMIP counts a three-key Triple DES key as 168 bits (its key
         * bits) or 192 (with parity); either way 24 bytes. */
        if (bits != 168 && bits != 192) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("Triple DES key length %u bits; 168 or 192 supported", bits);
            return KG_RESULT_ERROR;
        }
        *type = CKK_DES3;
        *gen = CKM_DES3_KEY_GEN;
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
    kg_error_detail("only AES, HMAC and Triple DES secret keys are generated here");
    return KG_RESULT_ERROR;
}

/*
 * The template of a new secret key: resident (token, never extractable,
 * named) or temporary (session object, extractable only to be wrapped
 * under the MWK at once). `label` is the caller's storage. Returns the count.
 */
static CK_ULONG kg_p11_secret_template(CK_ATTRIBUTE *t, const CK_OBJECT_CLASS *cls, const CK_KEY_TYPE *type,
                                       unsigned uses, const char *resident_id, char *label, size_t label_cap,
                                       const CK_BBOOL *yes, const CK_BBOOL *no)
{
    bool resident = resident_id != NULL;
    CK_ULONG n = 0;

#define KG_P11_SET(attr, ptr, len) (t[n++] = (CK_ATTRIBUTE){ (attr), (CK_VOID_PTR)(ptr), (len) })
#define KG_P11_BOOL(attr, on) KG_P11_SET(attr, (on) ? yes : no, sizeof(CK_BBOOL))
    KG_P11_SET(CKA_CLASS, cls, sizeof(*cls));
    KG_P11_SET(CKA_KEY_TYPE, type, sizeof(*type));
    KG_P11_BOOL(CKA_TOKEN, resident);
    KG_P11_BOOL(CKA_PRIVATE, true);
    KG_P11_BOOL(CKA_SENSITIVE, true);
    KG_P11_BOOL(CKA_EXTRACTABLE, !resident);
    KG_P11_BOOL(CKA_ENCRYPT, uses & KG_P11_USE_ENCRYPT);
    KG_P11_BOOL(CKA_DECRYPT, uses & KG_P11_USE_DECRYPT);
    KG_P11_BOOL(CKA_SIGN, uses & KG_P11_USE_SIGN);
    KG_P11_BOOL(CKA_VERIFY, uses & KG_P11_USE_VERIFY);
    KG_P11_BOOL(CKA_WRAP, uses & KG_P11_USE_WRAP);
    KG_P11_BOOL(CKA_UNWRAP, uses & KG_P11_USE_UNWRAP);
    if (resident) {
        /* CKA_MODIFIABLE FALSE: nobody on the token can later flip
         * CKA_EXTRACTABLE or widen the use flags behind the policy. */
        KG_P11_BOOL(CKA_MODIFIABLE, false);
        snprintf(label, label_cap, "kmipgw:%s", resident_id);
        KG_P11_SET(CKA_ID, resident_id, strlen(resident_id));
        KG_P11_SET(CKA_LABEL, label, strlen(label));
    }
#undef KG_P11_BOOL
#undef KG_P11_SET
    return n;
}

kg_result kg_p11_generate_secret(struct kg_p11 *p11, enum kg_p11_key_kind kind, uint32_t bits, unsigned uses,
                                 const char *resident_id, struct kg_p11_blob *blob)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = 0;
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_ULONG value_len = bits / 8;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[20];
    CK_ULONG n;
    char label[KG_P11_RESIDENT_ID_MAX + 8];
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && blob != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(blob);
    KG_ENSURE(resident_id == NULL || (resident_id[0] != '\0' && strlen(resident_id) <= KG_P11_RESIDENT_ID_MAX),
              KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_secret_type(kind, bits, &type, &mech.mechanism));
    n = kg_p11_secret_template(tmpl, &cls, &type, uses, resident_id, label, sizeof(label), &yes, &no);
    if (kind != KG_P11_KEY_DES3) {
        /* CKM_DES3_KEY_GEN fixes the length and refuses CKA_VALUE_LEN. */
        tmpl[n++] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &value_len, sizeof(value_len) };
    }

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    if (resident_id == NULL) {
        KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GenerateKey(s, &mech, tmpl, n, &key), "C_GenerateKey"));
    if (resident_id == NULL) {
        KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, key, blob));
    }
    /* A resident key's blob stays empty but carries the digest too. */
    KG_GOTO_GUARD(rc, kg_p11_digest_into_blob(p11, s, key, blob));
out:
    /* A resident key is the token object itself: never destroyed here
     * once made. Only the wrapped path's session object is temporary. */
    rc = kg_p11_finish(p11, s, resident_id == NULL ? key : CK_INVALID_HANDLE, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(blob);
    }
    return rc;
}

kg_result kg_p11_resident_import(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_secret *key,
                                 unsigned uses, const char *resident_id)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = 0;
    CK_MECHANISM_TYPE gen = 0;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[20];
    CK_ULONG n;
    char label[KG_P11_RESIDENT_ID_MAX + 8];
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && key != NULL && resident_id != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(resident_id[0] != '\0' && strlen(resident_id) <= KG_P11_RESIDENT_ID_MAX, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_secret_type(kind, (uint32_t)key->len * 8u, &type, &gen));
    n = kg_p11_secret_template(tmpl, &cls, &type, uses, resident_id, label, sizeof(label), &yes, &no);
    /* Straight from the locked kg_secret: no copy of the key bytes here. */
    tmpl[n++] = (CK_ATTRIBUTE){ CKA_VALUE, key->data, key->len };

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_CreateObject(s, tmpl, n, &obj), "C_CreateObject"));
out:
    return kg_p11_finish(p11, s, CK_INVALID_HANDLE, rc);
}

kg_result kg_p11_resident_destroy(struct kg_p11 *p11, const struct kg_p11_key_ref *key)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_ULONG found = 0;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && key != NULL && key->storage == KG_P11_STORED_RESIDENT && key->resident_id != NULL,
              KG_ERR_INTERNAL);
    /* Every token object with the ID, whatever its class: each resident
     * key has its own UID, so two objects mean someone else made one and
     * we must not guess which to destroy. */
    CK_ATTRIBUTE tmpl[] = {
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_ID, (CK_VOID_PTR)key->resident_id, strlen(key->resident_id) },
    };

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_FindObjectsInit(s, tmpl, 2), "C_FindObjectsInit"));
    rc = KG_P11_CHECK(p11->fn->C_FindObjects(s, objs, 2, &found), "C_FindObjects");
    rv = p11->fn->C_FindObjectsFinal(s);
    KG_GOTO_GUARD(rc, rc);
    KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_FindObjectsFinal"));
    if (found > 1) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("resident key '%s': several token objects with that CKA_ID; none destroyed",
                        key->resident_id);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (found == 1) {
        KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_DestroyObject(s, objs[0]), "C_DestroyObject"));
    }
out:
    return kg_p11_finish(p11, s, CK_INVALID_HANDLE, rc);
}
