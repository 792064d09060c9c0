/*
 * kg_op_get.c - Get (KMIP 1.4 section 4.11) of symmetric keys.
 *
 * What leaves is decided by the caller's group export mode (DESIGN.md):
 * `plaintext` answers Raw (or Transparent) key bytes, unwrapped inside the
 * HSM into a kg_secret and copied only into the locked response writer;
 * `wrapped` needs a Key Wrapping Specification (HSM-side wrapping arrives
 * with the HSM issue; until then such a request is refused as not
 * supported); `none` is always refused.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

static kg_result kg_op_get_read(struct kg_ttlv_reader *in, uint32_t *format, bool *wrapping)
{
    struct kg_ttlv_item it;
    bool present = false;

    *format = KG_FORMAT_RAW;
    *wrapping = false;
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_enum(&it, format));
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_ENSURE(!present, KG_ERR_UNSUPPORTED_FEATURE);
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_KEY_WRAPPING_SPECIFICATION, KG_TTLV_STRUCTURE, &it, wrapping));
    KG_GUARD(kg_ttlv_reader_finish(in));
    return KG_RESULT_OK;
}

static kg_result kg_op_get_write_key(struct kg_ttlv_writer *out, const struct kg_object *obj, uint32_t format,
                                     const struct kg_secret *key)
{
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, obj->object_type));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, (uint32_t)strlen(obj->uid)));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_SYMMETRIC_KEY));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_BLOCK));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_KEY_FORMAT_TYPE, format));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
    if (format == KG_FORMAT_TRANSPARENT_SYMMETRIC) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_MATERIAL));
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY, key->data, (uint32_t)key->len));
        KG_GUARD(kg_ttlv_end_struct(out));
    } else {
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, key->data, (uint32_t)key->len));
    }
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, obj->algorithm));
    KG_GUARD(kg_ttlv_write_int(out, KG_TAG_CRYPTOGRAPHIC_LENGTH, obj->length));
    KG_GUARD(kg_ttlv_end_struct(out));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/*
 * Key Wrapping Specification { Wrapping Method, Encryption Key Information
 * { Unique Identifier, ... }, ... } (KMIP 1.4 section 2.1.6): the wrapping key
 * it names, so policy can check it is one the caller may use.
 */
static kg_result kg_op_get_wrapping_uid(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                        const struct kg_ttlv_item *kws)
{
    struct kg_ttlv_reader spec, info;
    struct kg_ttlv_item it;
    const char *uid;
    uint32_t len;
    bool present = false;

    KG_GUARD(kg_ttlv_child(in, kws, &spec));
    KG_GUARD(kg_ttlv_read_expect(&spec, KG_TAG_WRAPPING_METHOD, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_read_optional(&spec, KG_TAG_ENCRYPTION_KEY_INFORMATION, KG_TTLV_STRUCTURE, &it, &present));
    if (!present) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_child(&spec, &it, &info));
    KG_GUARD(kg_ttlv_read_expect(&info, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &uid, &len));
    KG_ENSURE(len <= KG_UID_LEN, KG_ERR_NOT_FOUND);
    memcpy(ctx->wrapping_uid, uid, len);
    ctx->wrapping_uid[len] = '\0';
    return KG_RESULT_OK;
}

kg_result kg_op_get_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_ttlv_item it;
    bool present = false;
    struct kg_object *wrapping = NULL;

    ctx->wrapping_uid[0] = '\0';
    ctx->wrapping_owner[0] = '\0';
    req->key_material = true;
    KG_GUARD(kg_op_skip_uid(&in));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_GUARD(kg_ttlv_read_optional(&in, KG_TAG_KEY_WRAPPING_SPECIFICATION, KG_TTLV_STRUCTURE, &it, &req->wrapped));
    if (!req->wrapped) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_op_get_wrapping_uid(ctx, &in, &it));
    if (ctx->wrapping_uid[0] == '\0') {
        return KG_RESULT_OK;
    }
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
    uint32_t format;
    bool wrapping;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_op_get_read(in, &format, &wrapping));
    /* A destroyed key has no material left: to a Get it does not exist. */
    KG_ENSURE(obj->state != KG_STATE_DESTROYED && obj->state != KG_STATE_DESTROYED_COMPROMISED &&
                  obj->blob.len > 0,
              KG_ERR_NOT_FOUND);
    KG_ENSURE(obj->object_type == KG_OBJ_SYMMETRIC_KEY, KG_ERR_UNSUPPORTED_OBJECT);
    KG_ENSURE(format == KG_FORMAT_RAW || format == KG_FORMAT_TRANSPARENT_SYMMETRIC, KG_ERR_UNSUPPORTED_FORMAT);
    if (wrapping) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("wrapped export is not supported yet");
        return KG_RESULT_ERROR;
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
    KG_GOTO_GUARD(rc, kg_p11_export_plaintext(ctx->gw->p11, &obj->blob, &key));
    KG_GOTO_GUARD(rc, kg_op_get_write_key(out, obj, format, key));
    ctx->audit_note = "plaintext export";
out:
    kg_secret_free(key);
    return rc;
}
