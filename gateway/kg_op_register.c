/*
 * kg_op_register.c - Register (KMIP 1.4 section 4.3) of symmetric keys in
 * Raw or Transparent Symmetric Key format.
 *
 * The key bytes arrive in the request buffer, which the server keeps in
 * locked memory and cleanses after the response. They are copied once into
 * a kg_secret, handed to the HSM to be wrapped under the master key, and
 * wiped. Wrapped import (a Key Wrapping Data in the Key Block) comes with
 * the HSM issue and is refused here as not supported.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

struct kg_key_block_in {
    uint32_t format;
    const uint8_t *material; /* borrowed from the request */
    uint32_t material_len;
    bool has_algorithm;
    uint32_t algorithm;
    bool has_length;
    int32_t length;
};

static kg_result kg_op_read_key_block(struct kg_ttlv_reader *in, struct kg_key_block_in *kb)
{
    struct kg_ttlv_item it, key;
    struct kg_ttlv_reader sym, block, value, transparent;
    bool present = false;

    memset(kb, 0, sizeof(*kb));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_SYMMETRIC_KEY, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(in, &it, &sym));
    KG_GUARD(kg_ttlv_read_expect(&sym, KG_TAG_KEY_BLOCK, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(&sym, &it, &block));
    KG_GUARD(kg_ttlv_reader_finish(&sym));

    KG_GUARD(kg_ttlv_read_expect(&block, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &kb->format));
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_ENSURE(!present, KG_ERR_UNSUPPORTED_FEATURE);
    KG_GUARD(kg_ttlv_read(&block, &it));
    KG_ENSURE(it.tag == KG_TAG_KEY_VALUE, KG_ERR_MISSING_FIELD);
    if (it.type != KG_TTLV_STRUCTURE) {
        /* A Byte String Key Value is wrapped key material. */
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("wrapped key import is not supported yet");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_ttlv_child(&block, &it, &value));
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, KG_TTLV_ENUMERATION, &it,
                                   &kb->has_algorithm));
    if (kb->has_algorithm) {
        KG_GUARD(kg_ttlv_get_enum(&it, &kb->algorithm));
    }
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_CRYPTOGRAPHIC_LENGTH, KG_TTLV_INTEGER, &it, &kb->has_length));
    if (kb->has_length) {
        KG_GUARD(kg_ttlv_get_int(&it, &kb->length));
    }
    if (!kg_ttlv_reader_done(&block)) {
        KG_GUARD(kg_ttlv_read(&block, &it));
        if (it.tag == KG_TAG_KEY_WRAPPING_DATA) {
            kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
            kg_error_detail("wrapped key import is not supported yet");
            return KG_RESULT_ERROR;
        }
        KG_BAIL(KG_ERR_INVALID_FIELD);
    }

    KG_GUARD(kg_ttlv_read(&value, &it));
    KG_ENSURE(it.tag == KG_TAG_KEY_MATERIAL, KG_ERR_MISSING_FIELD);
    if (kb->format == KG_FORMAT_RAW) {
        KG_GUARD(kg_ttlv_get_bytes(&it, &kb->material, &kb->material_len));
    } else if (kb->format == KG_FORMAT_TRANSPARENT_SYMMETRIC) {
        KG_GUARD(kg_ttlv_child(&value, &it, &transparent));
        KG_GUARD(kg_ttlv_read_expect(&transparent, KG_TAG_KEY, KG_TTLV_BYTE_STRING, &key));
        KG_GUARD(kg_ttlv_reader_finish(&transparent));
        KG_GUARD(kg_ttlv_get_bytes(&key, &kb->material, &kb->material_len));
    } else {
        KG_BAIL(KG_ERR_UNSUPPORTED_FORMAT);
    }
    /* Attributes inside the Key Value are not supported: ignoring them would
     * drop what the client meant to set. */
    KG_ENSURE(kg_ttlv_reader_done(&value), KG_ERR_UNSUPPORTED_FEATURE);
    return KG_RESULT_OK;
}

kg_result kg_op_register_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_template *t = NULL;
    struct kg_key_block_in kb;
    kg_result rc = KG_RESULT_OK;

    (void)ctx;
    KG_GUARD(kg_op_template_policy_facts(&in, req, &t));
    /* The key block says what is being registered, whatever the template
     * claims: policy judges the key itself. */
    KG_GOTO_GUARD(rc, kg_op_read_key_block(&in, &kb));
    if (kb.has_algorithm) {
        req->algorithm = kb.algorithm;
    }
    req->length = (int32_t)kb.material_len * 8;
out:
    free(t);
    return rc;
}

kg_result kg_op_register(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_template *t = NULL;
    struct kg_object *obj = NULL;
    struct kg_secret *key = NULL;
    struct kg_key_block_in kb;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_op_read_new_key(in, "Register", &t, &obj));
    KG_GOTO_GUARD(rc, kg_op_read_key_block(in, &kb));
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(in));

    obj->algorithm = kb.has_algorithm ? kb.algorithm : t->algorithm;
    obj->length = (int32_t)kb.material_len * 8;
    obj->usage_mask = t->usage_mask;
    KG_GOTO_ENSURE(rc, !kb.has_length || kb.length == obj->length, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, !t->has_length || t->length == obj->length, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, !t->has_algorithm || t->algorithm == obj->algorithm, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_op_check_aes(obj->algorithm, obj->length));

    KG_GOTO_GUARD(rc, kg_secret_from(kb.material, kb.material_len, &key));
    KG_GOTO_GUARD(rc, kg_p11_import_aes(ctx->gw->p11, key, &obj->blob));
    KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
    KG_GOTO_GUARD(rc, kg_op_store_new_object(ctx, obj, t));
    memcpy(ctx->audit_uid, obj->uid, sizeof(obj->uid));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, KG_UID_LEN));
out:
    kg_secret_free(key);
    free(t);
    free(obj);
    return rc;
}
