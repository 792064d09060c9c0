/*
 * kg_op_wrap.c - key wrapping (KMIP 1.4 sections 2.1.5 and 2.1.6) shared by
 * Get (wrapped export) and Register (wrapped import): reading a Key
 * Wrapping Specification or Key Wrapping Data, checking the wrapping key
 * and choosing the HSM mechanism, and writing Key Wrapping Data back.
 *
 * Nothing here touches key bytes: the wrapping itself happens inside the
 * HSM (kg_p11_wrap.h); this file only decides which key and mechanism.
 */
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

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

kg_result kg_op_wrap_write_data_enc(struct kg_ttlv_writer *out, const char *uid, const struct kg_op_wrap_params *used,
                                    uint32_t encoding)
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

/* ---- what a wrapped Register was wrapped with (store schema v3) ----------- */

kg_result kg_op_wrap_encode_registered(const char *uid, const struct kg_op_wrap_params *used, uint32_t encoding,
                                       uint8_t *buf, uint32_t cap, uint32_t *len)
{
    struct kg_ttlv_writer w;
    kg_result rc = KG_RESULT_OK;

    *len = 0;
    /* Not secret (a UID and enumerations): an ordinary heap writer. */
    KG_GUARD(kg_ttlv_writer_init(&w, cap, false));
    KG_GOTO_GUARD(rc, kg_op_wrap_write_data_enc(&w, uid, used, encoding));
    KG_GOTO_GUARD(rc, kg_ttlv_writer_finish(&w));
    KG_GOTO_ENSURE(rc, w.len <= cap, KG_ERR_INTERNAL);
    memcpy(buf, w.buf, w.len);
    *len = w.len;
out:
    kg_ttlv_writer_cleanup(&w);
    return rc;
}

kg_result kg_op_wrap_decode_registered(const uint8_t *buf, uint32_t len, struct kg_op_wrap_info *out)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    kg_ttlv_budget_init(&budget, NULL);
    if (kg_failed(kg_ttlv_reader_init(&r, buf, len, &budget)) ||
        kg_failed(kg_ttlv_read_expect(&r, KG_TAG_KEY_WRAPPING_DATA, KG_TTLV_STRUCTURE, &it)) ||
        kg_failed(kg_op_wrap_read(&r, &it, out)) || kg_failed(kg_ttlv_reader_finish(&r)) || !out->has_uid) {
        /* We wrote it: anything else in the column is a damaged store. */
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: unreadable registered Key Wrapping Data");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}
