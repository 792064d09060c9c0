/*
 * kg_op_pkey.c - the Key Format Types of asymmetric keys (KMIP 1.4 section
 * 2.1.7 and 9.1.3.2.3) for Register and Get: PKCS#1, PKCS#8 and the
 * Transparent RSA and DSA structures of private keys; X.509, PKCS#1 and
 * Transparent RSA and DSA of public keys.
 *
 * A private key's bytes arrive in the request buffer (locked memory) and
 * stay there: the DER walk and the Transparent reader only name byte ranges
 * in it, which the HSM takes (kg_p11_import_private). A plaintext Get reads
 * the components from the HSM into a kg_secret and writes them straight
 * into the locked response writer; padding a Big Integer goes through a
 * kg_secret too. Nothing private reaches the ordinary heap.
 */
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_pair.h"

/* The Big Integers of a Transparent structure, in the order KMIP lists
 * them (KMIP 1.4 sections 2.1.7.2 to 2.1.7.5). */
static const uint32_t kg_op_pkey_rsa_private_tags[] = {
    KG_TAG_MODULUS,          KG_TAG_PRIVATE_EXPONENT, KG_TAG_PUBLIC_EXPONENT,  KG_TAG_P,
    KG_TAG_Q,                KG_TAG_PRIME_EXPONENT_P, KG_TAG_PRIME_EXPONENT_Q, KG_TAG_CRT_COEFFICIENT,
};
/* Where the i-th of them goes in kg_p11_parts (n, e, d, ... as in DER):
 * KMIP puts the private exponent before the public one. */
static size_t kg_op_pkey_slot(uint32_t format, size_t i)
{
    static const size_t rsa_private[] = { 0, 2, 1, 3, 4, 5, 6, 7 };

    return format == KG_FORMAT_TRANSPARENT_RSA_PRIVATE ? rsa_private[i] : i;
}
static const uint32_t kg_op_pkey_dsa_private_tags[] = { KG_TAG_P, KG_TAG_Q, KG_TAG_G, KG_TAG_X };
static const uint32_t kg_op_pkey_rsa_public_tags[] = { KG_TAG_MODULUS, KG_TAG_PUBLIC_EXPONENT };
static const uint32_t kg_op_pkey_dsa_public_tags[] = { KG_TAG_P, KG_TAG_Q, KG_TAG_G, KG_TAG_Y };

/* The tags and key kind of Transparent `format`; NULL for another format. */
static const uint32_t *kg_op_pkey_tags(uint32_t format, enum kg_p11_key_kind *kind)
{
    switch (format) {
    case KG_FORMAT_TRANSPARENT_RSA_PRIVATE:
        *kind = KG_P11_KEY_RSA_PRIVATE;
        return kg_op_pkey_rsa_private_tags;
    case KG_FORMAT_TRANSPARENT_DSA_PRIVATE:
        *kind = KG_P11_KEY_DSA_PRIVATE;
        return kg_op_pkey_dsa_private_tags;
    case KG_FORMAT_TRANSPARENT_RSA_PUBLIC:
        *kind = KG_P11_KEY_RSA_PUBLIC;
        return kg_op_pkey_rsa_public_tags;
    case KG_FORMAT_TRANSPARENT_DSA_PUBLIC:
        *kind = KG_P11_KEY_DSA_PUBLIC;
        return kg_op_pkey_dsa_public_tags;
    default:
        return NULL;
    }
}

bool kg_op_pkey_transparent(uint32_t format)
{
    enum kg_p11_key_kind kind;

    return kg_op_pkey_tags(format, &kind) != NULL;
}

bool kg_op_pkey_format_ok(uint32_t object_type, uint32_t format)
{
    if (object_type == KG_OBJ_PRIVATE_KEY) {
        return format == KG_FORMAT_PKCS1 || format == KG_FORMAT_PKCS8 ||
               format == KG_FORMAT_TRANSPARENT_RSA_PRIVATE || format == KG_FORMAT_TRANSPARENT_DSA_PRIVATE;
    }
    if (object_type == KG_OBJ_PUBLIC_KEY) {
        return format == KG_FORMAT_X509 || format == KG_FORMAT_PKCS1 ||
               format == KG_FORMAT_TRANSPARENT_RSA_PUBLIC || format == KG_FORMAT_TRANSPARENT_DSA_PUBLIC;
    }
    return false;
}

/*
 * A Transparent Key Material structure: each Big Integer of the format
 * once, in the order KMIP lists them (all of them: an RSA private key
 * without its CRT values is not taken), none negative.
 */
static kg_result kg_op_pkey_read_transparent(struct kg_ttlv_reader material, uint32_t format,
                                             struct kg_p11_parts *out)
{
    const uint32_t *tags = NULL;
    struct kg_ttlv_item it;
    const uint8_t *b = NULL;
    uint32_t len = 0;

    memset(out, 0, sizeof(*out));
    tags = kg_op_pkey_tags(format, &out->kind);
    KG_ENSURE(tags != NULL, KG_ERR_UNSUPPORTED_FORMAT);
    out->count = kg_p11_parts_count(out->kind);
    for (size_t i = 0; i < out->count; i++) {
        /* Well-formed TTLV that is not the structure asked for is an
         * Invalid Field (or Missing Data), not a broken message. */
        KG_ENSURE(!kg_ttlv_reader_done(&material), KG_ERR_MISSING_FIELD);
        KG_GUARD(kg_ttlv_read(&material, &it));
        if (it.tag != tags[i] || it.type != KG_TTLV_BIG_INTEGER) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("Key Material item %zu is not the Big Integer its Key Format Type lists there", i);
            return KG_RESULT_ERROR;
        }
        KG_GUARD(kg_ttlv_get_bytes(&it, &b, &len));
        if (len == 0 || (b[0] & 0x80u) != 0) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("key component %zu is empty, negative or too long", i);
            return KG_RESULT_ERROR;
        }
        /* Big Integers are padded to 8 bytes: the padding is no part of
         * the value (KG_P11_PART_MAX bounds the value). */
        out->part[kg_op_pkey_slot(format, i)] = kg_p11_span_trim((struct kg_p11_span){ b, len });
    }
    KG_ENSURE(kg_ttlv_reader_done(&material), KG_ERR_INVALID_FIELD);
    return KG_RESULT_OK;
}

kg_result kg_op_pkey_parts(const struct kg_op_pkey_in *in, struct kg_p11_parts *out)
{
    if (in->transparent) {
        return kg_op_pkey_read_transparent(in->material, in->format, out);
    }
    KG_ENSURE(in->object_type == KG_OBJ_PRIVATE_KEY, KG_ERR_UNSUPPORTED_FORMAT);
    return kg_p11_private_from_der(in->der, in->der_len,
                                   in->format == KG_FORMAT_PKCS1 ? KG_P11_PRIVATE_PKCS1 : KG_P11_PRIVATE_PKCS8, out);
}

kg_result kg_op_pkey_private_facts(const struct kg_op_pkey_in *in, struct kg_p11_parts *parts, uint32_t *algorithm,
                                   int32_t *bits)
{
    KG_GUARD(kg_op_pkey_parts(in, parts));
    switch (parts->kind) {
    case KG_P11_KEY_RSA_PRIVATE:
        *algorithm = KG_ALG_RSA;
        *bits = (int32_t)kg_p11_span_bits(parts->part[0]);
        return KG_RESULT_OK;
    case KG_P11_KEY_DSA_PRIVATE:
        *algorithm = KG_ALG_DSA;
        *bits = (int32_t)kg_p11_span_bits(parts->part[0]);
        return KG_RESULT_OK;
    case KG_P11_KEY_EC_PRIVATE:
        *algorithm = KG_ALG_EC;
        *bits = (int32_t)kg_p11_curve_bits(kg_p11_curve_of_oid(parts->part[0].data, parts->part[0].len));
        return KG_RESULT_OK;
    default:
        break;
    }
    kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
    kg_error_detail("Key Format Type %u is not one of a private key", (unsigned)in->format);
    return KG_RESULT_ERROR;
}

/*
 * Does what the client declared (Key Block, then template) agree with the
 * key itself? An EC key may be declared EC or ECDSA. Invalid Field
 * otherwise: the policy decided on what was declared.
 */
kg_result kg_op_pkey_check_declared(uint32_t algorithm, int32_t bits, bool has_alg, uint32_t declared_alg,
                                    bool has_len, int32_t declared_len)
{
    bool alg_ok = !has_alg || declared_alg == algorithm ||
                  (algorithm == KG_ALG_EC && declared_alg == KG_ALG_ECDSA);

    if (!alg_ok || (has_len && declared_len != bits)) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("the key is %s of %d bits; the request declares otherwise",
                        algorithm == KG_ALG_RSA ? "RSA" : algorithm == KG_ALG_DSA ? "DSA" : "EC", (int)bits);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_pkey_register_private(struct kg_op_ctx *ctx, const struct kg_op_pkey_in *in, struct kg_object *obj)
{
    struct kg_p11_parts parts;
    uint32_t algorithm = 0;
    int32_t bits = 0;

    KG_GUARD(kg_op_pkey_private_facts(in, &parts, &algorithm, &bits));
    /* An EC key declared ECDSA (obj->algorithm, the caller's) keeps that
     * name: kg_op_key_ref takes both. */
    obj->algorithm = algorithm == KG_ALG_EC && obj->algorithm == KG_ALG_ECDSA ? KG_ALG_ECDSA : algorithm;
    obj->length = bits;
    KG_GUARD(kg_p11_import_private(ctx->gw->p11, &parts, &obj->blob));
    obj->storage = KG_P11_STORED_WRAPPED;
    obj->key_format = in->format;
    ctx->audit_note = "private key import";
    return KG_RESULT_OK;
}

kg_result kg_op_pkey_register_public(const struct kg_op_pkey_in *in, struct kg_object *obj)
{
    struct kg_p11_parts parts;
    uint32_t bits = 0;

    KG_GUARD(kg_op_pkey_read_transparent(in->material, in->format, &parts));
    KG_ENSURE(parts.kind == KG_P11_KEY_RSA_PUBLIC || parts.kind == KG_P11_KEY_DSA_PUBLIC, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_public_from_parts(&parts, &obj->blob, &bits));
    obj->algorithm = parts.kind == KG_P11_KEY_RSA_PUBLIC ? KG_ALG_RSA : KG_ALG_DSA;
    obj->length = (int32_t)bits;
    obj->storage = KG_P11_STORED_PUBLIC;
    return KG_RESULT_OK;
}

/* ---- Get ------------------------------------------------------------------ */

/*
 * A Big Integer (KMIP 1.4 section 9.1.1.4): two's complement, a multiple
 * of 8 bytes, so an unsigned value gets leading zeros (and one more byte
 * when its top bit is set). Built in a kg_secret: it may be a private
 * component.
 */
static kg_result kg_op_pkey_write_bigint(struct kg_ttlv_writer *out, uint32_t tag, struct kg_p11_span v)
{
    struct kg_secret *padded = NULL;
    size_t need;
    size_t total;
    kg_result rc = KG_RESULT_OK;

    v = kg_p11_span_trim(v);
    need = v.len + ((v.len > 0 && (v.data[0] & 0x80u)) ? 1 : 0);
    total = (need + 7u) / 8u * 8u;
    KG_ENSURE(total > 0 && total <= KG_P11_PART_MAX + 8u, KG_ERR_INTERNAL);
    KG_GUARD(kg_secret_alloc(total, &padded));
    memset(padded->data, 0, total - v.len);
    memcpy(padded->data + (total - v.len), v.data, v.len);
    padded->len = total;
    rc = kg_ttlv_write_bigint(out, tag, padded->data, (uint32_t)total);
    kg_secret_free(padded);
    return rc;
}

static kg_result kg_op_pkey_write_transparent(struct kg_ttlv_writer *out, uint32_t format,
                                              const struct kg_p11_parts *parts)
{
    enum kg_p11_key_kind kind;
    const uint32_t *tags = kg_op_pkey_tags(format, &kind);

    KG_ENSURE(tags != NULL && kind == parts->kind && parts->count == kg_p11_parts_count(kind),
              KG_ERR_UNSUPPORTED_FORMAT);
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_MATERIAL));
    for (size_t i = 0; i < parts->count; i++) {
        KG_GUARD(kg_op_pkey_write_bigint(out, tags[i], parts->part[kg_op_pkey_slot(format, i)]));
    }
    return kg_ttlv_end_struct(out);
}

/* Is `format` one a key of `kind` can be written in here? */
static bool kg_op_pkey_private_writable(enum kg_p11_key_kind kind, uint32_t format)
{
    if (kind == KG_P11_KEY_RSA_PRIVATE) {
        return format == KG_FORMAT_PKCS1 || format == KG_FORMAT_PKCS8 || format == KG_FORMAT_TRANSPARENT_RSA_PRIVATE;
    }
    if (kind == KG_P11_KEY_DSA_PRIVATE) {
        return format == KG_FORMAT_PKCS8 || format == KG_FORMAT_TRANSPARENT_DSA_PRIVATE;
    }
    return false; /* EC: its PKCS#8 needs the public point, which the HSM does not give back */
}

kg_result kg_op_pkey_check_private_format(const struct kg_object *obj, uint32_t format)
{
    struct kg_p11_key_ref ref;

    KG_GUARD(kg_op_key_ref(obj, &ref));
    if (!kg_op_pkey_private_writable(ref.kind, format)) {
        kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
        kg_error_detail("this private key is not returned in the clear in Key Format Type %u", (unsigned)format);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_pkey_write_private(struct kg_op_ctx *ctx, const struct kg_object *obj, uint32_t format,
                                   struct kg_ttlv_writer *out)
{
    struct kg_p11_key_ref ref;
    struct kg_p11_parts parts;
    struct kg_secret *der = NULL;
    kg_result rc = KG_RESULT_OK;

    memset(&parts, 0, sizeof(parts));
    KG_GUARD(kg_op_pkey_check_private_format(obj, format));
    KG_GUARD(kg_op_key_ref(obj, &ref));
    KG_GUARD(kg_p11_export_private(ctx->gw->p11, &ref, &parts));
    if (kg_op_pkey_transparent(format)) {
        KG_GOTO_GUARD(rc, kg_op_pkey_write_transparent(out, format, &parts));
    } else {
        KG_GOTO_GUARD(rc, kg_p11_private_to_der(&parts, format == KG_FORMAT_PKCS1 ? KG_P11_PRIVATE_PKCS1
                                                                                  : KG_P11_PRIVATE_PKCS8,
                                                &der));
        KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, der->data, (uint32_t)der->len));
    }
out:
    kg_secret_free(der);
    kg_p11_parts_cleanup(&parts);
    return rc;
}

kg_result kg_op_pkey_write_public(const struct kg_object *obj, uint32_t format, struct kg_ttlv_writer *out)
{
    uint8_t buf[4 * KG_P11_PART_MAX];
    struct kg_p11_parts parts;

    KG_GUARD(kg_p11_public_to_parts(&obj->blob, buf, sizeof(buf), &parts));
    return kg_op_pkey_write_transparent(out, format, &parts);
}
