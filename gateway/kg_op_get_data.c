/*
 * kg_op_get_data.c - Get (KMIP 1.4 section 4.11) of Secret Data, Opaque
 * Objects and Certificates (kg_op_register_data.c stores them).
 *
 * Secret Data and an Opaque Object's value are key material: policy has
 * already judged the Get by groups.<g>.export for their object type, and
 * only plaintext leaves, read inside the HSM into a kg_secret and copied
 * only into the locked response writer. There is no wrapped form: KMIP
 * wraps a Key Block's Key Value, which an Opaque Object has not, and
 * kmipgw does not wrap Secret Data either (Feature Not Supported), so a
 * group with export wrapped never sees them leave.
 *
 * A certificate is not secret and leaves in the clear, once its blob's
 * binding to this object has been checked.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

/* The server row `name` of `uid` (copied, the callback's row is brief). */
struct kg_get_row {
    struct kg_attr *row;
    bool found;
};

static bool kg_get_row_fn(void *p, const struct kg_attr *a)
{
    struct kg_get_row *g = p;

    *g->row = *a;
    g->found = true;
    return false;
}

/*
 * What Get answers besides the value, from the object's server row:
 * *type (Secret Data Type or Opaque Data Type) and, for Secret Data, the
 * Key Format Type it was registered in (*format). Missing or unreadable:
 * KG_ERR_STORE, kmipgw wrote that row itself.
 */
static kg_result kg_get_data_types(struct kg_op_ctx *ctx, uint32_t *type, uint32_t *format)
{
    bool secret = ctx->object.object_type == KG_OBJ_SECRET_DATA;
    struct kg_attr *row = calloc(1, sizeof(*row));
    struct kg_get_row g = { .row = row };
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item it;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(row != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_store_each_attr(ctx->store, ctx->object.uid,
                                         secret ? KG_ATTR_SECRET_DATA_TYPE : KG_ATTR_OPAQUE_DATA_TYPE, kg_get_row_fn,
                                         &g));
    KG_GOTO_ENSURE(rc, g.found, KG_ERR_STORE);
    kg_ttlv_budget_init(&b, NULL);
    KG_GOTO_GUARD(rc, kg_ttlv_reader_init(&r, row->value, row->value_len, &b));
    KG_GOTO_GUARD(rc, kg_ttlv_read(&r, &it));
    if (!secret) {
        KG_GOTO_GUARD(rc, kg_ttlv_get_enum(&it, type));
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_ttlv_child(&r, &it, &c));
    KG_GOTO_GUARD(rc, kg_ttlv_read_expect(&c, KG_TAG_SECRET_DATA_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GOTO_GUARD(rc, kg_ttlv_get_enum(&it, type));
    KG_GOTO_GUARD(rc, kg_ttlv_read_expect(&c, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GOTO_GUARD(rc, kg_ttlv_get_enum(&it, format));
out:
    free(row);
    if (kg_failed(rc)) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("the stored type of %s is missing or unreadable", ctx->object.uid);
    }
    return rc;
}

/* Object Type, Unique Identifier, and the object with `value`. */
static kg_result kg_get_data_write(struct kg_ttlv_writer *out, const struct kg_object *obj, uint32_t type,
                                   uint32_t format, const uint8_t *value, uint32_t len)
{
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, obj->object_type));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, (uint32_t)strlen(obj->uid)));
    if (obj->object_type == KG_OBJ_CERTIFICATE) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_CERTIFICATE));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_CERTIFICATE_TYPE, type));
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_CERTIFICATE_VALUE, value, len));
    } else if (obj->object_type == KG_OBJ_OPAQUE_OBJECT) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_OPAQUE_OBJECT));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OPAQUE_DATA_TYPE, type));
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_OPAQUE_DATA_VALUE, value, len));
    } else {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_SECRET_DATA));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_SECRET_DATA_TYPE, type));
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_BLOCK));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_KEY_FORMAT_TYPE, format));
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_KEY_VALUE));
        KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_KEY_MATERIAL, value, len));
        KG_GUARD(kg_ttlv_end_struct(out));
        KG_GUARD(kg_ttlv_end_struct(out));
    }
    return kg_ttlv_end_struct(out);
}

/* A certificate, in the clear: its DER is the blob. */
static kg_result kg_get_certificate(struct kg_op_ctx *ctx, bool has_format, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_p11_binding b;

    KG_ENSURE(obj->storage == KG_P11_STORED_PUBLIC, KG_ERR_UNSUPPORTED_OBJECT);
    if (has_format) {
        kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
        kg_error_detail("a certificate is returned as registered; Key Format Type does not apply");
        return KG_RESULT_ERROR;
    }
    /* Returned without the HSM ever loading it: check its binding here so
     * another object's certificate is never answered for this one. */
    kg_op_binding(obj, &b);
    KG_GUARD(kg_p11_blob_verify(ctx->gw->p11, &b));
    KG_GUARD(kg_get_data_write(out, obj, KG_CERT_X509, 0, obj->blob.bytes, obj->blob.len));
    ctx->audit_note = "certificate";
    return KG_RESULT_OK;
}

/* Secret Data or an Opaque Object's value, in plaintext. */
static kg_result kg_get_secret(struct kg_op_ctx *ctx, bool has_format, uint32_t format, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_p11_key_ref ref;
    struct kg_secret *value = NULL;
    uint32_t type = 0, registered = KG_FORMAT_RAW;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_get_data_types(ctx, &type, &registered));
    if (obj->object_type == KG_OBJ_OPAQUE_OBJECT) {
        /* An Opaque Object has no Key Block to format. */
        KG_ENSURE(!has_format, KG_ERR_UNSUPPORTED_FORMAT);
    } else {
        format = has_format ? format : registered;
        KG_ENSURE(format == KG_FORMAT_RAW || format == KG_FORMAT_OPAQUE, KG_ERR_UNSUPPORTED_FORMAT);
    }
    /* Policy already refused a Get this group may not make in plaintext;
     * checked again because the price of a mistake is a leaked secret. */
    if (KG_NEVER(kg_policy_export_for(ctx->group, obj->object_type) != KG_EXPORT_PLAINTEXT)) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("policy of group '%s' does not export this object in plaintext", ctx->group->name);
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(obj->storage == KG_P11_STORED_WRAPPED && obj->length > 0 && obj->length % 8 == 0, KG_ERR_STORE);
    KG_GUARD(kg_op_key_ref(obj, &ref));
    KG_GOTO_GUARD(rc, kg_p11_export_key(ctx->gw->p11, &ref, (size_t)obj->length / 8, &value));
    KG_GOTO_GUARD(rc, kg_get_data_write(out, obj, type, format, value->data, (uint32_t)value->len));
    ctx->audit_note = "plaintext export";
out:
    kg_secret_free(value);
    return rc;
}

kg_result kg_op_get_data(struct kg_op_ctx *ctx, bool has_format, uint32_t format, bool wrapping,
                         struct kg_ttlv_writer *out)
{
    if (wrapping) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail(ctx->object.object_type == KG_OBJ_CERTIFICATE
                            ? "certificates are not secret: they are returned in the clear, never wrapped"
                            : "Secret Data and Opaque Objects are not exported wrapped");
        return KG_RESULT_ERROR;
    }
    if (ctx->object.object_type == KG_OBJ_CERTIFICATE) {
        return kg_get_certificate(ctx, has_format, out);
    }
    return kg_get_secret(ctx, has_format, format, out);
}
