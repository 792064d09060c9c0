/*
 * kg_op_keyref.c - a stored object as the HSM layer names it.
 *
 * The one place where KMIP's Object Type and Cryptographic Algorithm turn
 * into a PKCS#11 key kind, so every operation that hands a key to pkcs11/
 * (Get with wrapping, Encrypt, Sign, Re-key...) agrees on it.
 */
#include "kg_kmip.h"
#include "kg_ops.h"

void kg_op_binding(const struct kg_object *obj, struct kg_p11_binding *out)
{
    *out = (struct kg_p11_binding){
        .uid = obj->uid,
        .object_type = obj->object_type,
        .algorithm = obj->algorithm,
        .length = obj->length,
        .storage = obj->storage,
        .owner_group = obj->owner_group,
        .blob = &obj->blob,
        .tag = obj->blob_sealed ? obj->blob_mac : NULL,
    };
}

kg_result kg_op_seal(struct kg_p11 *p11, struct kg_object *obj)
{
    struct kg_p11_binding b;

    obj->blob_sealed = false;
    if (obj->storage == KG_P11_STORED_RESIDENT || obj->blob.len == 0) {
        return KG_RESULT_OK; /* no blob, nothing to bind */
    }
    kg_op_binding(obj, &b);
    KG_GUARD(kg_p11_blob_seal(p11, &b, obj->blob_mac));
    obj->blob_sealed = true;
    return KG_RESULT_OK;
}

kg_result kg_op_key_ref(const struct kg_object *obj, struct kg_p11_key_ref *out)
{
    bool hmac = obj->algorithm >= KG_ALG_HMAC_SHA1 && obj->algorithm <= KG_ALG_HMAC_SHA512;
    bool ec = obj->algorithm == KG_ALG_EC || obj->algorithm == KG_ALG_ECDSA;

    out->storage = (enum kg_p11_storage)obj->storage;
    out->blob = &obj->blob;
    out->resident_id = obj->uid;
    /* Always bound: kg_p11_key_load refuses this blob unless its stored tag
     * matches this very object (an unsealed row has no tag: refused). */
    kg_op_binding(obj, &out->bind);
    if (obj->object_type == KG_OBJ_SYMMETRIC_KEY && obj->algorithm == KG_ALG_AES) {
        out->kind = KG_P11_KEY_AES;
    } else if (obj->object_type == KG_OBJ_SYMMETRIC_KEY && obj->algorithm == KG_ALG_3DES) {
        out->kind = KG_P11_KEY_DES3;
    } else if (obj->object_type == KG_OBJ_SYMMETRIC_KEY && hmac) {
        out->kind = KG_P11_KEY_HMAC;
    } else if (obj->object_type == KG_OBJ_SECRET_DATA || obj->object_type == KG_OBJ_OPAQUE_OBJECT) {
        out->kind = KG_P11_KEY_SECRET; /* stored like a key, never used as one */
    } else if (obj->object_type == KG_OBJ_PRIVATE_KEY && obj->algorithm == KG_ALG_RSA) {
        out->kind = KG_P11_KEY_RSA_PRIVATE;
    } else if (obj->object_type == KG_OBJ_PRIVATE_KEY && ec) {
        out->kind = KG_P11_KEY_EC_PRIVATE;
    } else if (obj->object_type == KG_OBJ_PRIVATE_KEY && obj->algorithm == KG_ALG_DSA) {
        out->kind = KG_P11_KEY_DSA_PRIVATE;
    } else if (obj->object_type == KG_OBJ_PUBLIC_KEY && obj->algorithm == KG_ALG_DSA) {
        out->kind = KG_P11_KEY_DSA_PUBLIC;
    } else if (obj->object_type == KG_OBJ_PUBLIC_KEY && obj->algorithm == KG_ALG_RSA) {
        out->kind = KG_P11_KEY_RSA_PUBLIC;
    } else if (obj->object_type == KG_OBJ_PUBLIC_KEY && ec) {
        out->kind = KG_P11_KEY_EC_PUBLIC;
    } else {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("object %s (type %u, algorithm %u) is not a key the HSM can use", obj->uid,
                        obj->object_type, obj->algorithm);
        return KG_RESULT_ERROR;
    }
    if (obj->blob.len == 0 && obj->storage != KG_P11_STORED_RESIDENT) {
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("object %s has no key material (destroyed)", obj->uid);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}
