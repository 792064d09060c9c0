/*
 * kg_op_get.c - Get (KMIP 1.4 section 4.11), and the key wrapping pieces
 * Register shares.
 *
 * What leaves is decided by the caller's group export mode (DESIGN.md):
 * `plaintext` answers Raw (or Transparent) key bytes, unwrapped inside the
 * HSM into a kg_secret and copied only into the locked response writer;
 * `wrapped` needs a Key Wrapping Specification, and the key is then wrapped
 * inside the HSM (C_WrapKey) under the key it names: its bytes never exist
 * here; `none` is always refused. Resident keys never leave the HSM in any
 * form. Public keys are not secret and leave in the clear (X.509 or PKCS#1).
 *
 * TTLV Encoding (wrapping the TTLV-encoded Key Value, also what an omitted
 * Encoding Option means) of a symmetric key is built inside the HSM: the
 * Key Value's TTLV is prefix || key bytes || padding, and the prefix and
 * padding depend on the key length only, so two concatenation derives make
 * that value as a sensitive object which is then wrapped (kg_p11_wrap.h).
 * The plaintext never exists here. HSMs without those mechanisms (SoftHSMv2
 * 2.6) answer Feature Not Supported. Wrapped import takes No Encoding only:
 * a TTLV blob would have to be parsed, i.e. exist in the clear, here.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

/* ---- key wrapping: reading, checking, writing ----------------------------- */

static kg_result kg_op_wrap_read_params(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                                        struct kg_op_wrap_params *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    memset(out, 0, sizeof(*out));
    KG_GUARD(kg_ttlv_child(parent, item, &r));
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &it));
        /* Only the fields key wrapping uses are kept; the others (IV
         * lengths, tag lengths...) do not apply to key wrap or OAEP. */
        if (it.tag == KG_TAG_BLOCK_CIPHER_MODE) {
            KG_GUARD(kg_ttlv_get_enum(&it, &out->mode));
            out->has_mode = true;
        } else if (it.tag == KG_TAG_PADDING_METHOD) {
            KG_GUARD(kg_ttlv_get_enum(&it, &out->padding));
            out->has_padding = true;
        } else if (it.tag == KG_TAG_HASHING_ALGORITHM) {
            KG_GUARD(kg_ttlv_get_enum(&it, &out->hashing));
            out->has_hashing = true;
        }
    }
    return KG_RESULT_OK;
}

static kg_result kg_op_wrap_read_key_info(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                                          struct kg_op_wrap_info *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    const char *uid;
    uint32_t len;

    KG_GUARD(kg_ttlv_child(parent, item, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &uid, &len));
    /* Our UIDs are all KG_UID_LEN long: anything else cannot exist. */
    KG_ENSURE(len == KG_UID_LEN && memchr(uid, '\0', len) == NULL, KG_ERR_NOT_FOUND);
    memcpy(out->uid, uid, len);
    out->uid[len] = '\0';
    out->has_uid = true;
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_CRYPTOGRAPHIC_PARAMETERS, KG_TTLV_STRUCTURE, &it, &out->has_params));
    if (out->has_params) {
        KG_GUARD(kg_op_wrap_read_params(&r, &it, &out->params));
    }
    return kg_ttlv_reader_finish(&r);
}

kg_result kg_op_wrap_read(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                          struct kg_op_wrap_info *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    memset(out, 0, sizeof(*out));
    /* KMIP 1.4 section 2.1.5 reads an omitted Encoding Option as TTLV, but
     * the OASIS 1.1 test cases (TC_141, TC_142) and PyKMIP omit it and wrap
     * the bare key bytes: an omitted option means No Encoding here, and the
     * answer's Key Wrapping Data omits it too. */
    out->encoding = KG_ENCODING_NONE;
    KG_GUARD(kg_ttlv_child(parent, item, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_WRAPPING_METHOD, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &out->method));
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &it));
        switch (it.tag) {
        case KG_TAG_ENCRYPTION_KEY_INFORMATION:
            KG_ENSURE(it.type == KG_TTLV_STRUCTURE && !out->has_uid, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_op_wrap_read_key_info(&r, &it, out));
            break;
        case KG_TAG_ENCODING_OPTION:
            KG_ENSURE(it.type == KG_TTLV_ENUMERATION, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_ttlv_get_enum(&it, &out->encoding));
            out->has_encoding = true;
            break;
        case KG_TAG_ATTRIBUTE_NAME:
            /* Attributes travel only inside a TTLV-encoded Key Value (2.1.6);
             * with No Encoding only the key bytes are wrapped (OASIS TC_142). */
            out->has_attribute_names = true;
            break;
        case KG_TAG_MAC_SIGNATURE_KEY_INFORMATION:
        case KG_TAG_MAC_SIGNATURE:
        case KG_TAG_IV_COUNTER_NONCE:
            out->unsupported = true;
            break;
        default:
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("unexpected tag 0x%06X in key wrapping", it.tag);
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

/* Cryptographic Parameters instances of the wrapping key, as the store
 * keeps them (encoded Attribute Values), read in index order. */
struct kg_op_wrap_attrs {
    struct kg_op_wrap_params want; /* the request's, when has_want */
    bool has_want;
    uint32_t seen;
    bool matched;
    struct kg_op_wrap_params first;
    bool bad;
};

static bool kg_op_wrap_params_equal(const struct kg_op_wrap_params *a, const struct kg_op_wrap_params *b)
{
    return a->has_mode == b->has_mode && (!a->has_mode || a->mode == b->mode) &&
           a->has_padding == b->has_padding && (!a->has_padding || a->padding == b->padding) &&
           a->has_hashing == b->has_hashing && (!a->has_hashing || a->hashing == b->hashing);
}

static bool kg_op_wrap_attr_one(void *arg, const struct kg_attr *attr)
{
    struct kg_op_wrap_attrs *w = arg;
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    struct kg_op_wrap_params p;

    kg_ttlv_budget_init(&budget, NULL);
    if (kg_failed(kg_ttlv_reader_init(&r, attr->value, attr->value_len, &budget)) ||
        kg_failed(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_VALUE, KG_TTLV_STRUCTURE, &it)) ||
        kg_failed(kg_op_wrap_read_params(&r, &it, &p))) {
        w->bad = true;
        return false;
    }
    if (w->seen++ == 0) {
        w->first = p;
    }
    if (w->has_want && kg_op_wrap_params_equal(&w->want, &p)) {
        w->matched = true;
        return false;
    }
    return w->has_want;
}

/* The parameters to wrap with (2.1.6): the request's, checked against the
 * key's instances when it has any, or the key's first instance. */
static kg_result kg_op_wrap_params_for(struct kg_op_ctx *ctx, const struct kg_op_wrap_info *info,
                                       const struct kg_object *key, struct kg_op_wrap_params *used)
{
    struct kg_op_wrap_attrs w = { .has_want = info->has_params };

    if (info->has_params) {
        w.want = info->params;
    }
    KG_GUARD(kg_store_each_attr(ctx->store, key->uid, "Cryptographic Parameters", kg_op_wrap_attr_one, &w));
    KG_ENSURE(!w.bad, KG_ERR_STORE);
    if (info->has_params) {
        if (w.seen > 0 && !w.matched) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("the Cryptographic Parameters given match none of wrapping key %s", key->uid);
            return KG_RESULT_ERROR;
        }
        *used = info->params;
        return KG_RESULT_OK;
    }
    if (w.seen == 0) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("wrapping key %s has no Cryptographic Parameters: name them in the request", key->uid);
        return KG_RESULT_ERROR;
    }
    *used = w.first;
    return KG_RESULT_OK;
}

/* The HSM mechanism for parameters `p` with a wrapping key of kind `kind`. */
static kg_result kg_op_wrap_mechanism(enum kg_p11_key_kind kind, const struct kg_op_wrap_params *p,
                                      enum kg_p11_wrap_mech *mech)
{
    if (kind == KG_P11_KEY_AES) {
        if (p->has_mode && p->mode == KG_MODE_NIST_KEY_WRAP) {
            *mech = KG_P11_WRAP_AES_KW;
            return KG_RESULT_OK;
        }
        if (p->has_mode && p->mode == KG_MODE_AES_KEY_WRAP_PADDING) {
            *mech = KG_P11_WRAP_AES_KWP;
            return KG_RESULT_OK;
        }
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("AES key wrapping takes Block Cipher Mode NISTKeyWrap or AESKeyWrapPadding");
        return KG_RESULT_ERROR;
    }
    if (kind == KG_P11_KEY_RSA_PUBLIC && p->has_padding && p->padding == KG_PADDING_OAEP) {
        /* OAEP's default hash is SHA-1 (PKCS#1 v2.2 A.2.1). */
        if (!p->has_hashing || p->hashing == KG_HASH_SHA1) {
            *mech = KG_P11_WRAP_RSA_OAEP_SHA1;
            return KG_RESULT_OK;
        }
        if (p->hashing == KG_HASH_SHA256) {
            *mech = KG_P11_WRAP_RSA_OAEP_SHA256;
            return KG_RESULT_OK;
        }
    }
    kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
    kg_error_detail("RSA key wrapping takes Padding Method OAEP with SHA-1 or SHA-256");
    return KG_RESULT_ERROR;
}

kg_result kg_op_wrap_prepare(struct kg_op_ctx *ctx, const struct kg_op_wrap_info *info, int32_t usage,
                             bool scope_only, struct kg_object *key, enum kg_p11_wrap_mech *mech,
                             struct kg_op_wrap_params *used)
{
    struct kg_p11_key_ref ref;

    if (info->method != KG_WRAP_METHOD_ENCRYPT || info->unsupported ||
        (info->has_attribute_names && info->encoding == KG_ENCODING_TTLV)) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("key wrapping: only Wrapping Method Encrypt, without MAC/signature, IV or wrapped attributes");
        return KG_RESULT_ERROR;
    }
    /* TTLV Encoding for export only: see the head of this file. */
    if (info->encoding != KG_ENCODING_NONE &&
        !(info->encoding == KG_ENCODING_TTLV && usage == KG_USAGE_WRAP_KEY)) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("key wrapping: Encoding Option %u not supported here (wrapped import takes No Encoding)",
                        (unsigned)info->encoding);
        return KG_RESULT_ERROR;
    }
    if (!info->has_uid) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("key wrapping needs Encryption Key Information");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_store_get_object(ctx->store, info->uid, key));
    /* Before any other check, so that state and usage tell nothing about a
     * key the caller may not see. */
    KG_ENSURE(!scope_only || kg_policy_in_scope(ctx->group, key->owner_group), KG_ERR_NOT_FOUND);
    if (key->state != KG_STATE_ACTIVE) {
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("wrapping key %s is not Active", key->uid);
        return KG_RESULT_ERROR;
    }
    /* KMIP 1.4 has no Incompatible Cryptographic Usage Mask reason: a key
     * used against its mask is a Permission Denied. A key-encryption key
     * registered for wrapping also unwraps what was wrapped under it on
     * import (the OASIS TC-WRAP cases register their KEK with Wrap Key
     * only); an export always needs Wrap Key itself. */
    int32_t allowed = usage == KG_USAGE_UNWRAP_KEY ? (KG_USAGE_UNWRAP_KEY | KG_USAGE_WRAP_KEY) : usage;

    if ((key->usage_mask & allowed) == 0) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("key %s lacks the %s usage", key->uid, usage == KG_USAGE_WRAP_KEY ? "Wrap Key" : "Unwrap Key");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_op_key_ref(key, &ref));
    if (ref.kind != KG_P11_KEY_AES && ref.kind != KG_P11_KEY_RSA_PUBLIC) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("key %s is neither an AES key nor an RSA public key", key->uid);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_op_wrap_params_for(ctx, info, key, used));
    return kg_op_wrap_mechanism(ref.kind, used, mech);
}

/* `encoding` 0: the request omitted the Encoding Option, and so does the answer. */
static kg_result kg_op_wrap_write_data_enc(struct kg_ttlv_writer *out, const char *uid,
                                           const struct kg_op_wrap_params *used, uint32_t encoding)
{
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_WRAPPING_DATA));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_WRAPPING_METHOD, KG_WRAP_METHOD_ENCRYPT));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ENCRYPTION_KEY_INFORMATION));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, uid, (uint32_t)strlen(uid)));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_CRYPTOGRAPHIC_PARAMETERS));
    if (used->has_mode) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_BLOCK_CIPHER_MODE, used->mode));
    }
    if (used->has_padding) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_PADDING_METHOD, used->padding));
    }
    if (used->has_hashing) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_HASHING_ALGORITHM, used->hashing));
    }
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    if (encoding != 0) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_ENCODING_OPTION, encoding));
    }
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

kg_result kg_op_wrap_write_data(struct kg_ttlv_writer *out, const char *uid, const struct kg_op_wrap_params *used)
{
    return kg_op_wrap_write_data_enc(out, uid, used, KG_ENCODING_NONE);
}

/* One TTLV header (section 9.1: tag, type, length), big-endian. */
static void kg_op_frame_header(uint8_t *p, uint32_t tag, uint8_t type, uint32_t len)
{
    p[0] = (uint8_t)(tag >> 16);
    p[1] = (uint8_t)(tag >> 8);
    p[2] = (uint8_t)tag;
    p[3] = type;
    p[4] = (uint8_t)(len >> 24);
    p[5] = (uint8_t)(len >> 16);
    p[6] = (uint8_t)(len >> 8);
    p[7] = (uint8_t)len;
}

/*
 * The TTLV Key Value around a key of `key_len` bytes in `format`, without
 * attributes (2.1.4): prefix (Key Value header, Key Material header, and
 * for Transparent Symmetric the Key header) and suffix (the zero padding to
 * 8 bytes, 9.1.1.3), possibly empty. Computed from the length only: nothing
 * secret. `prefix` holds 24 bytes, `suffix` 8.
 */
static kg_result kg_op_get_ttlv_frame(uint32_t key_len, uint32_t format, uint8_t *prefix, size_t *prefix_len,
                                      uint8_t *suffix, size_t *suffix_len)
{
    uint32_t pad = (8u - key_len % 8u) % 8u;

    KG_ENSURE(key_len > 0 && key_len <= KG_P11_MAX_KEY, KG_ERR_BAD_KEY_LENGTH);
    memset(suffix, 0, 8);
    *suffix_len = pad;
    if (format == KG_FORMAT_TRANSPARENT_SYMMETRIC) {
        kg_op_frame_header(prefix, KG_TAG_KEY_VALUE, KG_TTLV_STRUCTURE, 16u + key_len + pad);
        kg_op_frame_header(prefix + 8, KG_TAG_KEY_MATERIAL, KG_TTLV_STRUCTURE, 8u + key_len + pad);
        kg_op_frame_header(prefix + 16, KG_TAG_KEY, KG_TTLV_BYTE_STRING, key_len);
        *prefix_len = 24;
    } else {
        kg_op_frame_header(prefix, KG_TAG_KEY_VALUE, KG_TTLV_STRUCTURE, 8u + key_len + pad);
        kg_op_frame_header(prefix + 8, KG_TAG_KEY_MATERIAL, KG_TTLV_BYTE_STRING, key_len);
        *prefix_len = 16;
    }
    return KG_RESULT_OK;
}

/* ---- Get ------------------------------------------------------------------ */

struct kg_op_get_req {
    bool has_format;
    uint32_t format;
    bool wrapping;
    struct kg_op_wrap_info wrap;
};

static kg_result kg_op_get_read(struct kg_ttlv_reader *in, struct kg_op_get_req *req)
{
    struct kg_ttlv_item it;
    bool present = false;

    memset(req, 0, sizeof(*req));
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it, &req->has_format));
    if (req->has_format) {
        KG_GUARD(kg_ttlv_get_enum(&it, &req->format));
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_ENSURE(!present, KG_ERR_UNSUPPORTED_FEATURE);
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_WRAPPING_SPECIFICATION, KG_TTLV_STRUCTURE, &it, &req->wrapping));
    if (req->wrapping) {
        KG_GUARD(kg_op_wrap_read(in, &it, &req->wrap));
    }
    KG_GUARD(kg_ttlv_reader_finish(in));
    return KG_RESULT_OK;
}

/* Object Type, Unique Identifier, and the opening of the object's structure
 * and its Key Block with Key Format Type. */
static kg_result kg_op_get_begin(struct kg_ttlv_writer *out, const struct kg_object *obj, uint32_t object_tag,
                                 uint32_t format)
{
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, obj->object_type));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, (uint32_t)strlen(obj->uid)));
    KG_GUARD(kg_ttlv_begin_struct(out, object_tag));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_BLOCK));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_KEY_FORMAT_TYPE, format));
    return KG_RESULT_OK;
}

static kg_result kg_op_get_end(struct kg_ttlv_writer *out, const struct kg_object *obj)
{
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, obj->algorithm));
    KG_GUARD(kg_ttlv_write_int(out, KG_TAG_CRYPTOGRAPHIC_LENGTH, obj->length));
    return KG_RESULT_OK;
}

static kg_result kg_op_get_write_key(struct kg_ttlv_writer *out, const struct kg_object *obj, uint32_t format,
                                     const struct kg_secret *key)
{
    KG_GUARD(kg_op_get_begin(out, obj, KG_TAG_SYMMETRIC_KEY, format));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
    if (format == KG_FORMAT_TRANSPARENT_SYMMETRIC) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_MATERIAL));
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY, key->data, (uint32_t)key->len));
        KG_GUARD(kg_ttlv_end_struct(out));
    } else {
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, key->data, (uint32_t)key->len));
    }
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_op_get_end(out, obj));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/* A public key in the clear: X.509 (SubjectPublicKeyInfo) unless PKCS#1 is asked. */
static kg_result kg_op_get_public(struct kg_op_ctx *ctx, const struct kg_op_get_req *req, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    uint32_t format = req->has_format ? req->format : KG_FORMAT_X509;
    uint8_t der[KG_P11_MAX_BLOB];
    size_t len = 0;

    if (req->wrapping) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("public keys are not secret: they are returned in the clear, never wrapped");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(obj->storage == KG_P11_STORED_PUBLIC, KG_ERR_UNSUPPORTED_OBJECT);
    KG_ENSURE(format == KG_FORMAT_X509 || format == KG_FORMAT_PKCS1, KG_ERR_UNSUPPORTED_FORMAT);
    KG_GUARD(kg_p11_public_export(&obj->blob, format == KG_FORMAT_PKCS1 ? KG_P11_PUBLIC_PKCS1 : KG_P11_PUBLIC_SPKI,
                                  der, sizeof(der), &len));
    KG_GUARD(kg_op_get_begin(out, obj, KG_TAG_PUBLIC_KEY, format));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
    KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, der, (uint32_t)len));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_op_get_end(out, obj));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    ctx->audit_note = "public key";
    return KG_RESULT_OK;
}

/* Wrapped export: C_WrapKey inside the HSM under the key the request names. */
static kg_result kg_op_get_wrapped(struct kg_op_ctx *ctx, const struct kg_op_get_req *req, uint32_t object_tag,
                                   uint32_t format, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_object *wrapping = NULL;
    struct kg_p11_key_ref target, wrapper;
    struct kg_op_wrap_params used;
    enum kg_p11_wrap_mech mech;
    uint8_t wrapped[KG_P11_MAX_WRAPPED];
    size_t len = 0;
    kg_result rc = KG_RESULT_OK;

    wrapping = calloc(1, sizeof(*wrapping));
    KG_ENSURE(wrapping != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_op_wrap_prepare(ctx, &req->wrap, KG_USAGE_WRAP_KEY, false, wrapping, &mech, &used));
    KG_GOTO_GUARD(rc, kg_op_key_ref(obj, &target));
    KG_GOTO_GUARD(rc, kg_op_key_ref(wrapping, &wrapper));
    if (req->wrap.encoding == KG_ENCODING_TTLV) {
        uint8_t prefix[24], suffix[8];
        size_t prefix_len = 0, suffix_len = 0;

        if (obj->object_type != KG_OBJ_SYMMETRIC_KEY || obj->length <= 0 || obj->length % 8 != 0) {
            kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
            kg_error_detail("TTLV Encoding is done for symmetric keys of whole bytes only: ask for No Encoding");
            rc = KG_RESULT_ERROR;
            goto out;
        }
        KG_GOTO_GUARD(rc, kg_op_get_ttlv_frame((uint32_t)obj->length / 8u, format, prefix, &prefix_len, suffix,
                                               &suffix_len));
        KG_GOTO_GUARD(rc, kg_p11_wrap_key_framed(ctx->gw->p11, &target, &wrapper, mech, prefix, prefix_len, suffix,
                                                 suffix_len, wrapped, sizeof(wrapped), &len));
    } else {
        KG_GOTO_GUARD(rc, kg_p11_wrap_key(ctx->gw->p11, &target, &wrapper, mech, wrapped, sizeof(wrapped), &len));
    }
    KG_GOTO_GUARD(rc, kg_op_get_begin(out, obj, object_tag, format));
    /* The wrapped bytes stand for the Key Material (No Encoding) or the
     * whole Key Value (TTLV Encoding, 2.1.5). KMIP 1.0 and 1.1 carry them as
     * the Key Value itself, a Byte String (OASIS TC_141); from 1.2 clients
     * (PyKMIP) and the OASIS TC-WRAP cases expect them as Key Material
     * inside the Key Value structure. Register reads both. */
    if (ctx->version.major == 1 && ctx->version.minor <= 1) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_KEY_VALUE, wrapped, (uint32_t)len));
    } else {
        KG_GOTO_GUARD(rc, kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
        KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, wrapped, (uint32_t)len));
        KG_GOTO_GUARD(rc, kg_ttlv_end_struct(out));
    }
    KG_GOTO_GUARD(rc, kg_op_get_end(out, obj));
    KG_GOTO_GUARD(rc, kg_op_wrap_write_data_enc(out, wrapping->uid, &used,
                                                req->wrap.has_encoding ? req->wrap.encoding : 0));
    KG_GOTO_GUARD(rc, kg_ttlv_end_struct(out));
    KG_GOTO_GUARD(rc, kg_ttlv_end_struct(out));
    ctx->audit_note = "wrapped export";
out:
    free(wrapping);
    return rc;
}

kg_result kg_op_get_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_ttlv_item it;
    struct kg_op_wrap_info info;
    bool present = false;
    struct kg_object *wrapping = NULL;

    ctx->wrapping_uid[0] = '\0';
    ctx->wrapping_owner[0] = '\0';
    /* A public key is not secret: its Get is no export of key material. */
    req->key_material = !(ctx->has_object && ctx->object.object_type == KG_OBJ_PUBLIC_KEY);
    KG_GUARD(kg_op_skip_uid(&in));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_WRAPPING_SPECIFICATION, KG_TTLV_STRUCTURE, &it, &req->wrapped));
    if (!req->wrapped) {
        return KG_RESULT_OK;
    }
    req->key_material = true;
    KG_GUARD(kg_op_wrap_read(&in, &it, &info));
    if (!info.has_uid) {
        return KG_RESULT_OK;
    }
    memcpy(ctx->wrapping_uid, info.uid, sizeof(ctx->wrapping_uid));
    req->wrapping_key_uid = ctx->wrapping_uid;
    /* An unknown wrapping key has no owner: policy then refuses it unless
     * it is listed by UID, and the handler finds it missing. */
    wrapping = calloc(1, sizeof(*wrapping));
    KG_ENSURE(wrapping != NULL, KG_ERR_NOMEM);
    if (kg_ok(kg_store_get_object(ctx->store, ctx->wrapping_uid, wrapping))) {
        memcpy(ctx->wrapping_owner, wrapping->owner_group, sizeof(ctx->wrapping_owner));
        req->wrapping_key_owner = ctx->wrapping_owner;
    } else {
        kg_error_clear();
    }
    free(wrapping);
    return KG_RESULT_OK;
}

kg_result kg_op_get(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_secret *key = NULL;
    struct kg_op_get_req req;
    uint32_t format;
    uint32_t object_tag = KG_TAG_SYMMETRIC_KEY;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_op_get_read(in, &req));
    /* A destroyed key has no material left: to a Get it does not exist. */
    KG_ENSURE(obj->state != KG_STATE_DESTROYED && obj->state != KG_STATE_DESTROYED_COMPROMISED &&
                  (obj->blob.len > 0 || obj->storage == KG_P11_STORED_RESIDENT),
              KG_ERR_NOT_FOUND);
    if (obj->storage == KG_P11_STORED_RESIDENT) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("key %s is resident in the HSM and never leaves it, in any form", obj->uid);
        return KG_RESULT_ERROR;
    }
    if (obj->object_type == KG_OBJ_PUBLIC_KEY) {
        return kg_op_get_public(ctx, &req, out);
    }
    format = req.has_format ? req.format : KG_FORMAT_RAW;
    if (obj->object_type == KG_OBJ_PRIVATE_KEY && req.wrapping) {
        /* C_WrapKey of a private key wraps its PKCS#8 encoding. */
        format = req.has_format ? req.format : KG_FORMAT_PKCS8;
        KG_ENSURE(format == KG_FORMAT_PKCS8, KG_ERR_UNSUPPORTED_FORMAT);
        return kg_op_get_wrapped(ctx, &req, KG_TAG_PRIVATE_KEY, format, out);
    }
    KG_ENSURE(obj->object_type == KG_OBJ_SYMMETRIC_KEY, KG_ERR_UNSUPPORTED_OBJECT);
    KG_ENSURE(format == KG_FORMAT_RAW || format == KG_FORMAT_TRANSPARENT_SYMMETRIC, KG_ERR_UNSUPPORTED_FORMAT);
    if (req.wrapping) {
        return kg_op_get_wrapped(ctx, &req, object_tag, format, out);
    }
    /* Policy already refused any Get whose key would leave in a form the
     * group may not export (groups.<g>.export); this cannot trigger, and is
     * kept because the price of a mistake here is a leaked key. */
    if (KG_NEVER(kg_policy_export_for(ctx->group, obj->object_type) != KG_EXPORT_PLAINTEXT)) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("policy of group '%s' allows key material only %s", ctx->group->name,
                        ctx->group->export_mode == KG_EXPORT_WRAPPED ? "wrapped" : "never");
        return KG_RESULT_ERROR;
    }
    struct kg_p11_key_ref ref; /* AES or HMAC; read at its Cryptographic Length (bits % 8 == 0) */
    KG_GOTO_GUARD(rc, kg_op_key_ref(obj, &ref));
    KG_GOTO_GUARD(rc, kg_p11_export_key(ctx->gw->p11, &ref, obj->length % 8 == 0 ? (size_t)obj->length / 8 : 0, &key));
    KG_GOTO_GUARD(rc, kg_op_get_write_key(out, obj, format, key));
    ctx->audit_note = "plaintext export";
out:
    kg_secret_free(key);
    return rc;
}
