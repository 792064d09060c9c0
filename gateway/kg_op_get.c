/*
 * kg_op_get.c - Get (KMIP 1.4 section 4.11). Reading and checking a Key
 * Wrapping Specification is kg_op_wrap.c's.
 *
 * What leaves is decided by the caller's group export mode (DESIGN.md):
 * `plaintext` answers Raw (or Transparent) key bytes, unwrapped inside the
 * HSM into a kg_secret and copied only into the locked response writer;
 * `wrapped` needs a Key Wrapping Specification (or Key Wrap Type As
 * Registered of a key registered wrapped), and the key is then wrapped
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
    bool has_wrap_type;
    uint32_t wrap_type;   /* enum kg_key_wrap_type */
    bool has_compression; /* Key Compression Type given: not supported */
    bool wrapping;        /* wrap as `wrap` says: the request's or the registered one */
    bool as_registered;   /* `wrap` is the Key Wrapping Data of the Register */
    struct kg_op_wrap_info wrap;
};

/*
 * The Get payload in KMIP 1.4 order (4.11): Unique Identifier, Key Format
 * Type, Key Wrap Type, Key Compression Type, Key Wrapping Specification.
 * Shared by the policy facts and the handler, so that both see the same
 * wrapping. Key Wrap Type As Registered of a key registered wrapped (`obj`,
 * NULL when none was resolved) means the stored Key Wrapping Data; of any
 * other key, and Not Wrapped, a plain Get. The spec does not say what Key
 * Wrap Type and a Key Wrapping Specification together mean: they give two
 * answers to one question, so the request is an Invalid Field.
 */
static kg_result kg_op_get_read_payload(struct kg_ttlv_reader *in, const struct kg_object *obj,
                                        struct kg_op_get_req *req)
{
    struct kg_ttlv_item it;

    memset(req, 0, sizeof(*req));
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it, &req->has_format));
    if (req->has_format) {
        KG_GUARD(kg_ttlv_get_enum(&it, &req->format));
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_WRAP_TYPE, KG_TTLV_ENUMERATION, &it, &req->has_wrap_type));
    if (req->has_wrap_type) {
        KG_GUARD(kg_ttlv_get_enum(&it, &req->wrap_type));
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &req->has_compression));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_WRAPPING_SPECIFICATION, KG_TTLV_STRUCTURE, &it, &req->wrapping));
    if (req->wrapping) {
        KG_GUARD(kg_op_wrap_read(in, &it, &req->wrap));
    }
    if (!req->has_wrap_type) {
        return KG_RESULT_OK;
    }
    if (req->wrap_type != KG_KEY_WRAP_TYPE_NOT_WRAPPED && req->wrap_type != KG_KEY_WRAP_TYPE_AS_REGISTERED) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("Key Wrap Type %u is not supported", (unsigned)req->wrap_type);
        return KG_RESULT_ERROR;
    }
    if (req->wrapping && req->wrap_type == KG_KEY_WRAP_TYPE_AS_REGISTERED) {
        /* Not Wrapped with a specification means "not as registered, but
         * wrapped like this" (OASIS TC-WRAP-3-20); As Registered with one
         * asks for two wrappings at once. */
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("give either Key Wrap Type As Registered or a Key Wrapping Specification, not both");
        return KG_RESULT_ERROR;
    }
    if (req->wrap_type == KG_KEY_WRAP_TYPE_AS_REGISTERED && obj != NULL && obj->registered_wrapping_len > 0) {
        KG_GUARD(kg_op_wrap_decode_registered(obj->registered_wrapping, obj->registered_wrapping_len, &req->wrap));
        req->wrapping = true;
        req->as_registered = true;
    }
    return KG_RESULT_OK;
}

static kg_result kg_op_get_read(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_op_get_req *req)
{
    KG_GUARD(kg_op_get_read_payload(in, &ctx->object, req));
    KG_ENSURE(!req->has_compression, KG_ERR_UNSUPPORTED_FEATURE);
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

/* The Key Material of a public key in `format`: X.509 (SubjectPublicKeyInfo)
 * or PKCS#1 DER, or a Transparent RSA or DSA structure. */
static kg_result kg_op_get_public_material(const struct kg_object *obj, uint32_t format, struct kg_ttlv_writer *out)
{
    uint8_t der[KG_P11_MAX_BLOB];
    size_t len = 0;

    if (kg_op_pkey_transparent(format)) {
        return kg_op_pkey_write_public(obj, format, out);
    }
    KG_GUARD(kg_p11_public_export(&obj->blob, format == KG_FORMAT_PKCS1 ? KG_P11_PUBLIC_PKCS1 : KG_P11_PUBLIC_SPKI,
                                  der, sizeof(der), &len));
    return kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, der, (uint32_t)len);
}

/* A public key in the clear, in the format asked for, else the one it was
 * registered in (X.509 for a generated one). */
static kg_result kg_op_get_public(struct kg_op_ctx *ctx, const struct kg_op_get_req *req, uint32_t format,
                                  struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;

    if (req->wrapping) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("public keys are not secret: they are returned in the clear, never wrapped");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(obj->storage == KG_P11_STORED_PUBLIC, KG_ERR_UNSUPPORTED_OBJECT);
    KG_ENSURE(kg_op_pkey_format_ok(KG_OBJ_PUBLIC_KEY, format), KG_ERR_UNSUPPORTED_FORMAT);
    {
        /* Returned without the HSM ever loading it: check its binding here
         * so another object's public key is never answered for this one. */
        struct kg_p11_binding b;

        kg_op_binding(obj, &b);
        KG_GUARD(kg_p11_blob_verify(ctx->gw->p11, &b));
    }
    KG_GUARD(kg_op_get_begin(out, obj, KG_TAG_PUBLIC_KEY, format));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
    KG_GUARD(kg_op_get_public_material(obj, format, out));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_op_get_end(out, obj));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    ctx->audit_note = "public key";
    return KG_RESULT_OK;
}

/* Wrapped export: C_WrapKey inside the HSM under the key the request names
 * (or, As Registered, the key it was registered wrapped under: AES key wrap
 * is deterministic, so the answer is the very bytes that were registered). */
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
     * whole Key Value (TTLV Encoding, 2.1.5). A KMIP 1.2 to 1.4 client that
     * asks for No Encoding by name gets them as Key Material inside the Key
     * Value structure (OASIS TC-WRAP-*-14); otherwise they are the Key
     * Value itself, a Byte String (OASIS TC_141 in 1.1, AX-M-2-14 in 1.4,
     * which leaves the option out, TC-WRAP-1-20 in 2.0). Register reads
     * both. */
    bool as_material = req->wrap.has_encoding && req->wrap.encoding == KG_ENCODING_NONE &&
                       ctx->version.major == 1 && ctx->version.minor >= 2;

    if (!as_material) {
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
    ctx->audit_note = req->as_registered ? "wrapped export as registered" : "wrapped export";
out:
    free(wrapping);
    return rc;
}

/* Policy already refused any Get whose key would leave in a form the group
 * may not export (groups.<g>.export); this cannot trigger, and is kept
 * because the price of a mistake here is a leaked key. */
static kg_result kg_op_get_plaintext_allowed(const struct kg_op_ctx *ctx)
{
    if (KG_NEVER(kg_policy_export_for(ctx->group, ctx->object.object_type) != KG_EXPORT_PLAINTEXT)) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("policy of group '%s' allows this key's material only %s", ctx->group->name,
                        kg_policy_export_for(ctx->group, ctx->object.object_type) == KG_EXPORT_WRAPPED ? "wrapped"
                                                                                                      : "never");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* A private key in the clear (RSA: PKCS#1, PKCS#8, Transparent RSA; DSA:
 * PKCS#8, Transparent DSA), read out of the HSM by kg_op_pkey.c. */
static kg_result kg_op_get_private(struct kg_op_ctx *ctx, uint32_t format, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;

    KG_GUARD(kg_op_pkey_check_private_format(obj, format));
    KG_GUARD(kg_op_get_plaintext_allowed(ctx));
    KG_GUARD(kg_op_get_begin(out, obj, KG_TAG_PRIVATE_KEY, format));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
    KG_GUARD(kg_op_pkey_write_private(ctx, obj, format, out));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_op_get_end(out, obj));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    ctx->audit_note = "plaintext export";
    return KG_RESULT_OK;
}

kg_result kg_op_get_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_op_get_req get;
    const struct kg_op_wrap_info *info = &get.wrap;
    struct kg_object *wrapping = NULL;

    ctx->wrapping_uid[0] = '\0';
    ctx->wrapping_owner[0] = '\0';
    /* Read here, in the dispatcher's snapshot with the object itself, for
     * kg_op_get: a Get then opens no second read transaction. */
    if (ctx->has_object && ctx->object.object_type != KG_OBJ_TEMPLATE) {
        KG_GUARD(kg_attr_get_facts(ctx->store, &ctx->object, &ctx->get_facts));
        ctx->has_get_facts = true;
    }
    /* A public key, a certificate or a Template is not secret: its Get
     * is no export of key material. */
    req->key_material = !(ctx->has_object && (ctx->object.object_type == KG_OBJ_PUBLIC_KEY ||
                                              ctx->object.object_type == KG_OBJ_CERTIFICATE ||
                                              ctx->object.object_type == KG_OBJ_TEMPLATE));
    /* As Registered is judged exactly as the Key Wrapping Specification it
     * stands for: a wrapped export under the registered wrapping key. */
    KG_GUARD(kg_op_get_read_payload(&in, ctx->has_object ? &ctx->object : NULL, &get));
    req->wrapped = get.wrapping;
    if (!req->wrapped) {
        return KG_RESULT_OK;
    }
    req->key_material = true;
    if (!info->has_uid) {
        return KG_RESULT_OK;
    }
    memcpy(ctx->wrapping_uid, info->uid, sizeof(ctx->wrapping_uid));
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

static kg_result kg_op_get_material(struct kg_op_ctx *ctx, const struct kg_attr_get_facts *facts,
                                    struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_secret *key = NULL;
    struct kg_op_get_req req;
    uint32_t format;
    uint32_t object_tag = KG_TAG_SYMMETRIC_KEY;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_op_get_read(ctx, in, &req));
    /* A destroyed key has no material left: Object Destroyed (Item Not
     * Found to a 1.x client). */
    KG_ENSURE(obj->state != KG_STATE_DESTROYED && obj->state != KG_STATE_DESTROYED_COMPROMISED &&
                  (obj->blob.len > 0 || obj->storage == KG_P11_STORED_RESIDENT),
              KG_ERR_OBJECT_DESTROYED);
    if (obj->storage == KG_P11_STORED_RESIDENT) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("key %s is resident in the HSM and never leaves it, in any form", obj->uid);
        return KG_RESULT_ERROR;
    }
    if (!req.wrapping && facts->sensitive) {
        /* Sensitive: "the server SHALL prevent the object value being
         * retrieved unless it is wrapped by another key" (3.48). */
        kg_error_set(KG_ERR_SENSITIVE, __FILE__, __LINE__);
        kg_error_detail("object %s is Sensitive: it is returned only wrapped", obj->uid);
        return KG_RESULT_ERROR;
    }
    /* KMIP 2.1 section 6.1.22: without a Key Format Type, the key leaves
     * in the format it was registered in. */
    format = req.has_format ? req.format : facts->key_format;
    if (obj->object_type == KG_OBJ_PUBLIC_KEY) {
        return kg_op_get_public(ctx, &req, format, out);
    }
    if (kg_op_is_data_object(obj->object_type)) {
        return kg_op_get_data(ctx, req.has_format, req.format, req.wrapping, out); /* kg_op_get_data.c */
    }
    if (obj->object_type == KG_OBJ_PRIVATE_KEY && req.wrapping) {
        /* C_WrapKey of a private key wraps its PKCS#8 encoding, whatever
         * form it was registered in. */
        format = req.has_format ? req.format : KG_FORMAT_PKCS8;
        KG_ENSURE(format == KG_FORMAT_PKCS8, KG_ERR_UNSUPPORTED_FORMAT);
        return kg_op_get_wrapped(ctx, &req, KG_TAG_PRIVATE_KEY, format, out);
    }
    if (obj->object_type == KG_OBJ_PRIVATE_KEY) {
        return kg_op_get_private(ctx, format, out);
    }
    KG_ENSURE(obj->object_type == KG_OBJ_SYMMETRIC_KEY, KG_ERR_UNSUPPORTED_OBJECT);
    KG_ENSURE(format == KG_FORMAT_RAW || format == KG_FORMAT_TRANSPARENT_SYMMETRIC, KG_ERR_UNSUPPORTED_FORMAT);
    if (req.wrapping) {
        return kg_op_get_wrapped(ctx, &req, object_tag, format, out);
    }
    KG_GUARD(kg_op_get_plaintext_allowed(ctx));
    /* AES or HMAC read at its Cryptographic Length (bits % 8 == 0); Triple
     * DES is 24 bytes whether counted as 168 or 192 bits (kg_p11_export_key). */
    struct kg_p11_key_ref ref;
    KG_GOTO_GUARD(rc, kg_op_key_ref(obj, &ref));
    KG_GOTO_GUARD(rc, kg_p11_export_key(ctx->gw->p11, &ref, obj->length % 8 == 0 ? (size_t)obj->length / 8 : 0, &key));
    KG_GOTO_GUARD(rc, kg_op_get_write_key(out, obj, format, key));
    ctx->audit_note = "plaintext export";
out:
    kg_secret_free(key);
    return rc;
}

/*
 * Once its key has been served, an object is no longer Fresh (KMIP 1.4
 * section 3.34): the first Get writes Fresh False, in a change committed
 * before the answer leaves; later Gets only read that it is False (with
 * the other facts a Get reads, kg_attr_get_facts).
 */
static kg_result kg_op_get_mark_served(struct kg_op_ctx *ctx, bool fresh)
{
    struct kg_store *w;

    if (!fresh) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    return kg_change_end(ctx->gw->committer, kg_attr_mark_served(w, ctx->object.uid));
}

kg_result kg_op_get(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    if (ctx->object.object_type == KG_OBJ_TEMPLATE) {
        return kg_op_get_template(ctx, in, out); /* kg_op_template.c: no key, never served */
    }
    if (!ctx->has_get_facts) {
        KG_GUARD(kg_attr_get_facts(ctx->store, &ctx->object, &ctx->get_facts));
        ctx->has_get_facts = true;
    }
    KG_GUARD(kg_op_get_material(ctx, &ctx->get_facts, in, out));
    return kg_op_get_mark_served(ctx, ctx->get_facts.fresh);
}
