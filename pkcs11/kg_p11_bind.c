/*
 * kg_p11_bind.c - stored blobs bound to their object (issue 9).
 *
 * A wrapped blob alone says nothing about whose key it is: RFC 5649's
 * integrity check passes for any blob the MWK made, so a blob copied from
 * one row of the store to another would unwrap as the other object's key.
 * Every stored blob therefore carries a tag, an HMAC-SHA-256 computed
 * inside the HSM under a MAC key that never leaves it, over the blob and
 * the object it belongs to (UID, type, algorithm, length, storage, owning
 * group). kg_p11_key_load checks the tag before the blob reaches
 * C_UnwrapKey or becomes a public key object: a swapped, altered or
 * unsealed blob is refused, never used as a wrong key.
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* The MAC key's label is the MWK's with this suffix; its CKA_ID is "1",
 * leaving room for a later MAC key generation. */
#define KG_P11_MAC_SUFFIX "-mac"
#define KG_P11_MAC_ID "1"
#define KG_P11_MAC_LABEL_MAX 256u

/* Domain string first in the MAC input: a tag made for anything else,
 * or by a later encoding, can never verify as a blob tag of this one. */
static const char kg_p11_bind_domain[] = "kmipgw-blob-v1";

/* Longest UID and owner group the encoding accepts (the store's are 36 and 64). */
#define KG_P11_BIND_TEXT_MAX 256u
/* Domain, two texts, six integers and the blob, each with a 4-byte length. */
#define KG_P11_BIND_MAX \
    (4u + sizeof(kg_p11_bind_domain) + 2u * (4u + KG_P11_BIND_TEXT_MAX) + 6u * 8u + 4u + KG_P11_MAX_BLOB)

struct kg_p11_bind_buf {
    uint8_t data[KG_P11_BIND_MAX];
    size_t len;
};

static void kg_p11_bind_put(struct kg_p11_bind_buf *buf, const void *bytes, size_t len)
{
    uint8_t *p = buf->data + buf->len;

    /* Bounds are checked by kg_p11_bind_encode before any put. */
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    if (len > 0) {
        memcpy(p + 4, bytes, len);
    }
    buf->len += 4 + len;
}

static void kg_p11_bind_put_u32(struct kg_p11_bind_buf *buf, uint32_t v)
{
    uint8_t be[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

    kg_p11_bind_put(buf, be, sizeof(be));
}

/* The fixed, length-prefixed MAC input: every field is a 4-byte big-endian
 * length and its bytes, so no two different bindings encode alike. */
static kg_result kg_p11_bind_encode(const struct kg_p11_binding *b, struct kg_p11_bind_buf *buf)
{
    size_t uid_len;
    size_t group_len;

    KG_ENSURE(b != NULL && buf != NULL, KG_ERR_INTERNAL);
    if (b->uid == NULL || b->owner_group == NULL || b->blob == NULL || b->blob->len == 0 ||
        b->blob->len > KG_P11_MAX_BLOB) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("blob binding needs a UID, an owner group and a non-empty blob");
        return KG_RESULT_ERROR;
    }
    uid_len = strnlen(b->uid, KG_P11_BIND_TEXT_MAX + 1);
    group_len = strnlen(b->owner_group, KG_P11_BIND_TEXT_MAX + 1);
    KG_ENSURE(uid_len > 0 && uid_len <= KG_P11_BIND_TEXT_MAX && group_len <= KG_P11_BIND_TEXT_MAX,
              KG_ERR_INVALID_FIELD);
    buf->len = 0;
    kg_p11_bind_put(buf, kg_p11_bind_domain, sizeof(kg_p11_bind_domain) - 1);
    kg_p11_bind_put(buf, b->uid, uid_len);
    kg_p11_bind_put_u32(buf, b->object_type);
    kg_p11_bind_put_u32(buf, b->algorithm);
    kg_p11_bind_put_u32(buf, (uint32_t)b->length);
    kg_p11_bind_put_u32(buf, b->storage);
    kg_p11_bind_put(buf, b->owner_group, group_len);
    kg_p11_bind_put_u32(buf, b->blob->mechanism);
    kg_p11_bind_put_u32(buf, b->blob->mwk_generation);
    kg_p11_bind_put(buf, b->blob->bytes, b->blob->len);
    return KG_RESULT_OK;
}

static kg_result kg_p11_mac_label(const struct kg_p11 *p11, char *label, size_t cap)
{
    int n = snprintf(label, cap, "%s%s", p11->mwk_label, KG_P11_MAC_SUFFIX);

    KG_ENSURE(n > 0 && (size_t)n < cap, KG_ERR_CONFIG);
    return KG_RESULT_OK;
}

/* Is `obj` a sensitive, non-extractable generic secret that can sign? A
 * key someone else made under our label must not become the seal. */
static kg_result kg_p11_mac_check_object(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                         const char *label)
{
    CK_KEY_TYPE ktype = 0;
    CK_BBOOL extractable = CK_TRUE;
    CK_BBOOL sensitive = CK_FALSE;
    CK_BBOOL sign = CK_FALSE;
    CK_ATTRIBUTE check[] = {
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
        { CKA_SENSITIVE, &sensitive, sizeof(sensitive) },
        { CKA_SIGN, &sign, sizeof(sign) },
    };

    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, check, sizeof(check) / sizeof(check[0])),
                          "C_GetAttributeValue"));
    if (ktype != CKK_GENERIC_SECRET || extractable || !sensitive || !sign) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("token object '%s' is not a sensitive, non-extractable generic secret signing key; "
                        "refusing to seal blobs with it",
                        label);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* The MAC key on the token (not the cache): *h is CK_INVALID_HANDLE if absent. */
static kg_result kg_p11_mac_scan(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL yes = CK_TRUE;
    char label[KG_P11_MAC_LABEL_MAX];
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_LABEL, label, 0 },
    };
    CK_OBJECT_HANDLE objs[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_ULONG n = 0;
    kg_result rc;
    CK_RV rv;

    *h = CK_INVALID_HANDLE;
    KG_GUARD(kg_p11_mac_label(p11, label, sizeof(label)));
    tmpl[2].ulValueLen = strlen(label);
    KG_GUARD(KG_P11_CHECK(p11->fn->C_FindObjectsInit(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0])), "C_FindObjectsInit"));
    rc = KG_P11_CHECK(p11->fn->C_FindObjects(s, objs, 2, &n), "C_FindObjects");
    rv = p11->fn->C_FindObjectsFinal(s);
    KG_GUARD(rc);
    KG_GUARD(KG_P11_CHECK(rv, "C_FindObjectsFinal"));
    if (n > 1) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("several token objects are labelled '%s'; expected one blob MAC key", label);
        return KG_RESULT_ERROR;
    }
    if (n == 1) {
        KG_GUARD(kg_p11_mac_check_object(p11, s, objs[0], label));
        *h = objs[0];
    }
    return KG_RESULT_OK;
}

/* The cached MAC key handle if known for `epoch`. */
static bool kg_p11_mac_cached(struct kg_p11 *p11, uint64_t epoch, CK_OBJECT_HANDLE *h)
{
    bool known;

    pthread_mutex_lock(&p11->mwk_lock);
    known = p11->mac_known && p11->mac_epoch == epoch;
    *h = p11->mac_h;
    pthread_mutex_unlock(&p11->mwk_lock);
    return known;
}

/*
 * The MAC key's handle (its session copy, kg_p11_copy.c), cached per pool
 * epoch. The token is searched without a lock: a lookup hung in the HSM
 * must hold up its own request only. The copy is made and installed under
 * keys_lock; the copy it replaces is destroyed.
 */
static kg_result kg_p11_mac_handle(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    uint64_t epoch = 0;
    CK_OBJECT_HANDLE token_h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE old_h, old_token_h;

    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    if (kg_p11_mac_cached(p11, epoch, h)) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_p11_mac_scan(p11, s, &token_h));
    if (token_h == CK_INVALID_HANDLE) {
        kg_error_set(KG_ERR_HSM_NO_MWK, __FILE__, __LINE__);
        kg_error_detail("no blob MAC key '%s%s' on token '%s': run kmipgw init", p11->mwk_label,
                        KG_P11_MAC_SUFFIX, p11->token_label);
        return KG_RESULT_ERROR;
    }
    pthread_mutex_lock(&p11->keys_lock);
    if (kg_p11_mac_cached(p11, epoch, h)) { /* another thread looked meanwhile */
        pthread_mutex_unlock(&p11->keys_lock);
        return KG_RESULT_OK;
    }
    *h = kg_p11_key_copy(p11, token_h);
    pthread_mutex_lock(&p11->mwk_lock);
    old_h = p11->mac_h;
    old_token_h = p11->mac_token_h;
    p11->mac_h = *h;
    p11->mac_token_h = token_h;
    p11->mac_epoch = epoch;
    p11->mac_known = true;
    pthread_mutex_unlock(&p11->mwk_lock);
    kg_p11_key_copy_drop(p11, old_token_h, old_h);
    pthread_mutex_unlock(&p11->keys_lock);
    return KG_RESULT_OK;
}

static void kg_p11_mac_forget(struct kg_p11 *p11)
{
    pthread_mutex_lock(&p11->mwk_lock);
    p11->mac_known = false;
    pthread_mutex_unlock(&p11->mwk_lock);
}

kg_result kg_p11_init_mac(struct kg_p11 *p11, bool *created)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_GENERIC_SECRET;
    CK_ULONG value_len = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    char label[KG_P11_MAC_LABEL_MAX];
    /* Every security attribute explicit: token defaults differ. */
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &no, sizeof(no) },
        { CKA_SIGN, &yes, sizeof(yes) },
        { CKA_VERIFY, &yes, sizeof(yes) },
        { CKA_ENCRYPT, &no, sizeof(no) },
        { CKA_DECRYPT, &no, sizeof(no) },
        { CKA_WRAP, &no, sizeof(no) },
        { CKA_UNWRAP, &no, sizeof(no) },
        { CKA_DERIVE, &no, sizeof(no) },
        { CKA_LABEL, label, 0 },
        { CKA_ID, (CK_VOID_PTR)KG_P11_MAC_ID, sizeof(KG_P11_MAC_ID) - 1 },
    };
    bool locked = false;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && created != NULL, KG_ERR_INTERNAL);
    *created = false;
    KG_GUARD(kg_p11_mac_label(p11, label, sizeof(label)));
    tmpl[14].ulValueLen = strlen(label);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    /* Serialise with other creators in this process; the token is the
     * truth across processes. */
    pthread_mutex_lock(&p11->keys_lock);
    locked = true;
    KG_GOTO_GUARD(rc, kg_p11_mac_scan(p11, s, &h));
    if (h == CK_INVALID_HANDLE) {
        KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GenerateKey(s, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h),
                                       "C_GenerateKey"));
        *created = true;
    }
    pthread_mutex_lock(&p11->mwk_lock);
    p11->mac_known = false; /* found again, with its epoch, at first use */
    pthread_mutex_unlock(&p11->mwk_lock);
out:
    if (locked) {
        pthread_mutex_unlock(&p11->keys_lock);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

kg_result kg_p11_mac_check(struct kg_p11 *p11)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    rc = kg_p11_mac_handle(p11, s, &h);
out:
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

/* C_SignInit or C_VerifyInit under the MAC key; a stale handle is looked up again next time. */
static kg_result kg_p11_mac_init_op(struct kg_p11 *p11, CK_SESSION_HANDLE s, bool verify)
{
    CK_MECHANISM mech = { CKM_SHA256_HMAC, NULL, 0 };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv;

    KG_GUARD(kg_p11_mac_handle(p11, s, &h));
    rv = verify ? p11->fn->C_VerifyInit(s, &mech, h) : p11->fn->C_SignInit(s, &mech, h);
    if (kg_p11_rv_is_stale_handle(rv)) {
        kg_p11_mac_forget(p11);
    }
    return KG_P11_CHECK(rv, verify ? "C_VerifyInit" : "C_SignInit");
}

static kg_result kg_p11_blob_seal_on(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_binding *b,
                                     uint8_t tag[KG_P11_BLOB_TAG_LEN])
{
    struct kg_p11_bind_buf buf;
    CK_ULONG tag_len = KG_P11_BLOB_TAG_LEN;

    KG_GUARD(kg_p11_bind_encode(b, &buf));
    KG_GUARD(kg_p11_mac_init_op(p11, s, false));
    KG_GUARD(KG_P11_CHECK(p11->fn->C_Sign(s, buf.data, buf.len, tag, &tag_len), "C_Sign"));
    KG_ENSURE(tag_len == KG_P11_BLOB_TAG_LEN, KG_ERR_HSM);
    return KG_RESULT_OK;
}

static kg_result kg_p11_blob_refused(const struct kg_p11_binding *b, const char *why)
{
    kg_error_set(KG_ERR_HSM_BLOB_TAMPERED, __FILE__, __LINE__);
    kg_error_detail("object %s: stored key blob %s; refusing to use it", b->uid != NULL ? b->uid : "?", why);
    return KG_RESULT_ERROR;
}

kg_result kg_p11_blob_verify_on(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_binding *b)
{
    struct kg_p11_bind_buf buf;
    CK_RV rv;

    KG_ENSURE(p11 != NULL && b != NULL, KG_ERR_INTERNAL);
    if (b->tag == NULL) {
        return kg_p11_blob_refused(b, "is not sealed (written before blob binding: run kmipgw init)");
    }
    KG_GUARD(kg_p11_bind_encode(b, &buf));
    KG_GUARD(kg_p11_mac_init_op(p11, s, true));
    /* PKCS#11 does not write through pSignature; the cast only drops const. */
    rv = p11->fn->C_Verify(s, buf.data, buf.len, (CK_BYTE_PTR)b->tag, KG_P11_BLOB_TAG_LEN);
    if (rv == CKR_SIGNATURE_INVALID || rv == CKR_SIGNATURE_LEN_RANGE) {
        return kg_p11_blob_refused(b, "does not belong to this object or was altered");
    }
    return KG_P11_CHECK(rv, "C_Verify");
}

kg_result kg_p11_blob_seal(struct kg_p11 *p11, const struct kg_p11_binding *b, uint8_t tag[KG_P11_BLOB_TAG_LEN])
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && b != NULL && tag != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    rc = kg_p11_blob_seal_on(p11, s, b, tag);
out:
    if (kg_failed(rc)) {
        OPENSSL_cleanse(tag, KG_P11_BLOB_TAG_LEN);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

kg_result kg_p11_blob_verify(struct kg_p11 *p11, const struct kg_p11_binding *b)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && b != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    rc = kg_p11_blob_verify_on(p11, s, b);
out:
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}
