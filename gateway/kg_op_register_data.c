/*
 * kg_op_register_data.c - Register (KMIP 1.4 section 4.3) of Secret Data
 * (section 2.2.7), Opaque Objects (2.2.8) and Certificates (2.2.1).
 *
 * Secret Data and an Opaque Object's value are secret: like a plaintext
 * symmetric key (kg_op_register.c) the bytes are copied once from the
 * locked request buffer into a kg_secret, imported into the HSM as a
 * generic secret (KG_P11_KEY_SECRET), wrapped there under the master key
 * and wiped. The row keeps the value's length (obj->length, bits) so Get
 * reads back exactly those bytes, and a server row (KG_ATTR_SECRET_DATA_TYPE
 * or KG_ATTR_OPAQUE_DATA_TYPE, never shown as an attribute) keeps what
 * Get answers besides them. A group with residency hsm is refused: there
 * is no resident form of a value that must be read back.
 *
 * A certificate is not secret: its DER is stored in the clear (storage
 * PUBLIC, sealed like a public key's) after OpenSSL has parsed it, and its
 * attributes are server rows made from it (kg_cert.c).
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

/* What the object structure of the Register carries; pointers borrow from
 * the request. */
struct kg_data_in {
    uint32_t object_type;
    uint32_t data_type; /* Secret Data Type, Opaque Data Type or Certificate Type */
    uint32_t format;    /* Secret Data: its Key Format Type */
    const uint8_t *value;
    uint32_t value_len;
};

bool kg_op_is_data_object(uint32_t object_type)
{
    return object_type == KG_OBJ_SECRET_DATA || object_type == KG_OBJ_OPAQUE_OBJECT ||
           object_type == KG_OBJ_CERTIFICATE;
}

/* Key Block { Key Format Type Raw or Opaque, Key Value { Key Material } } of
 * Secret Data. A wrapped value would have to be unwrapped by a key the
 * HSM does not hold as a generic secret's wrapper: not supported. */
static kg_result kg_data_read_key_block(struct kg_ttlv_reader *obj, struct kg_data_in *d)
{
    struct kg_ttlv_item it;
    struct kg_ttlv_reader block, value;

    KG_GUARD(kg_ttlv_read_expect(obj, KG_TAG_KEY_BLOCK, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(obj, &it, &block));
    KG_GUARD(kg_ttlv_read_expect(&block, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &d->format));
    KG_ENSURE(d->format == KG_FORMAT_RAW || d->format == KG_FORMAT_OPAQUE, KG_ERR_UNSUPPORTED_FORMAT);
    KG_GUARD(kg_ttlv_read(&block, &it));
    KG_ENSURE(it.tag == KG_TAG_KEY_VALUE, KG_ERR_MISSING_FIELD);
    if (it.type != KG_TTLV_STRUCTURE || !kg_ttlv_reader_done(&block)) {
        /* A Byte String Key Value or Key Wrapping Data: a wrapped value. */
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("Secret Data is registered in the clear only: one Key Value with its Key Material");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_ttlv_child(&block, &it, &value));
    KG_GUARD(kg_ttlv_read_expect(&value, KG_TAG_KEY_MATERIAL, KG_TTLV_BYTE_STRING, &it));
    KG_GUARD(kg_ttlv_get_bytes(&it, &d->value, &d->value_len));
    /* Attributes inside the Key Value: ignoring them would drop what the
     * client meant to set. */
    KG_ENSURE(kg_ttlv_reader_done(&value), KG_ERR_UNSUPPORTED_FEATURE);
    return KG_RESULT_OK;
}

/* The object after the template: Secret Data { Secret Data Type, Key
 * Block }, Opaque Object { Opaque Data Type, Opaque Data Value } or
 * Certificate { Certificate Type, Certificate Value }. */
static kg_result kg_data_read_object(struct kg_ttlv_reader *in, uint32_t object_type, struct kg_data_in *d)
{
    struct kg_ttlv_item it;
    struct kg_ttlv_reader obj;
    uint32_t tag = object_type == KG_OBJ_SECRET_DATA     ? KG_TAG_SECRET_DATA
                   : object_type == KG_OBJ_OPAQUE_OBJECT ? KG_TAG_OPAQUE_OBJECT
                                                         : KG_TAG_CERTIFICATE;

    memset(d, 0, sizeof(*d));
    d->object_type = object_type;
    KG_GUARD(kg_ttlv_read_expect(in, tag, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(in, &it, &obj));
    if (object_type == KG_OBJ_SECRET_DATA) {
        KG_GUARD(kg_ttlv_read_expect(&obj, KG_TAG_SECRET_DATA_TYPE, KG_TTLV_ENUMERATION, &it));
        KG_GUARD(kg_ttlv_get_enum(&it, &d->data_type));
        KG_GUARD(kg_data_read_key_block(&obj, d));
    } else {
        bool opaque = object_type == KG_OBJ_OPAQUE_OBJECT;

        KG_GUARD(kg_ttlv_read_expect(&obj, opaque ? KG_TAG_OPAQUE_DATA_TYPE : KG_TAG_CERTIFICATE_TYPE,
                                     KG_TTLV_ENUMERATION, &it));
        KG_GUARD(kg_ttlv_get_enum(&it, &d->data_type));
        KG_GUARD(kg_ttlv_read_expect(&obj, opaque ? KG_TAG_OPAQUE_DATA_VALUE : KG_TAG_CERTIFICATE_VALUE,
                                     KG_TTLV_BYTE_STRING, &it));
        KG_GUARD(kg_ttlv_get_bytes(&it, &d->value, &d->value_len));
    }
    KG_GUARD(kg_ttlv_reader_finish(&obj));
    if (object_type == KG_OBJ_CERTIFICATE && d->data_type != KG_CERT_X509) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("only X.509 certificates are registered");
        return KG_RESULT_ERROR;
    }
    if (object_type != KG_OBJ_CERTIFICATE && (d->value_len == 0 || d->value_len > KG_P11_MAX_SECRET_DATA)) {
        kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
        kg_error_detail("a secret value is 1 to %u bytes long, this one %u", KG_P11_MAX_SECRET_DATA, d->value_len);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* Object Type, template and object. A template naming a Cryptographic
 * Algorithm or Length is refused: neither applies to Secret Data or an
 * Opaque Object (KMIP 2.1 Table 28), and a certificate's come from its key. */
static kg_result kg_data_read(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_template *t,
                              struct kg_data_in *d)
{
    struct kg_ttlv_item it;
    uint32_t object_type;

    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &object_type));
    KG_ENSURE(kg_op_is_data_object(object_type), KG_ERR_INTERNAL);
    KG_GUARD(kg_op_read_template(ctx, in, t));
    KG_ENSURE(t->object_type == 0 || t->object_type == object_type, KG_ERR_INVALID_FIELD);
    if (t->has_algorithm || t->has_length) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("Cryptographic Algorithm and Length are not given for this object type");
        return KG_RESULT_ERROR;
    }
    if (t->has_certificate_type && object_type != KG_OBJ_CERTIFICATE) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("Certificate Type is an attribute of certificates");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_data_read_object(in, object_type, d));
    KG_ENSURE(!t->has_certificate_type || t->certificate_type == d->data_type, KG_ERR_INVALID_FIELD);
    return kg_ttlv_reader_finish(in);
}

kg_result kg_op_register_data_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_policy_request *req)
{
    struct kg_template *t = calloc(1, sizeof(*t));
    struct kg_op_server_rows *rows = calloc(1, sizeof(*rows));
    struct kg_data_in d;
    uint32_t algorithm = 0;
    int32_t bits = 0;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, t != NULL && rows != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_op_server_rows_init(rows));
    KG_GOTO_GUARD(rc, kg_data_read(ctx, in, t, &d));
    req->object_type = d.object_type;
    req->usage_mask = t->usage_mask;
    req->has_usage_mask = t->has_usage_mask;
    req->algorithm = 0;
    req->length = 0;
    if (d.object_type == KG_OBJ_CERTIFICATE) {
        /* Judged by the key it certifies, as a public key would be. */
        KG_GOTO_GUARD(rc, kg_cert_parse(d.value, d.value_len, rows, &algorithm, &bits));
        req->algorithm = algorithm;
        req->length = bits;
    }
out:
    if (rows != NULL) {
        kg_op_server_rows_cleanup(rows);
    }
    free(rows);
    free(t);
    return rc;
}

/* One Enumeration (`b` 0: none) or a Structure of two as server row `name`. */
static kg_result kg_data_type_row(struct kg_op_server_rows *rows, const char *name, uint32_t tag_a, uint32_t a,
                                  uint32_t tag_b, uint32_t b)
{
    uint32_t start = rows->w.len;

    if (tag_b == 0) {
        KG_GUARD(kg_ttlv_write_enum(&rows->w, KG_TAG_ATTRIBUTE_VALUE, a));
        return kg_op_server_rows_close(rows, name, start);
    }
    KG_GUARD(kg_ttlv_begin_struct(&rows->w, KG_TAG_ATTRIBUTE_VALUE));
    KG_GUARD(kg_ttlv_write_enum(&rows->w, tag_a, a));
    KG_GUARD(kg_ttlv_write_enum(&rows->w, tag_b, b));
    KG_GUARD(kg_ttlv_end_struct(&rows->w));
    return kg_op_server_rows_close(rows, name, start);
}

/* The secret value into the HSM and out again wrapped under the MWK. */
static kg_result kg_data_import(struct kg_op_ctx *ctx, const struct kg_data_in *d, struct kg_object *obj)
{
    struct kg_secret *value = NULL;
    kg_result rc = KG_RESULT_OK;

    if (ctx->group->residency == KG_RESIDENCY_HSM) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("group '%s' keeps its keys in the HSM (residency hsm); secret data would be stored wrapped",
                        ctx->group->name);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_secret_from(d->value, d->value_len, &value));
    obj->length = (int32_t)d->value_len * 8;
    obj->storage = KG_P11_STORED_WRAPPED;
    rc = kg_p11_import_secret(ctx->gw->p11, KG_P11_KEY_SECRET, value, &obj->blob);
    kg_secret_free(value);
    /* No Digest attribute: an unsalted SHA-256 of a password or a short
     * seed, stored in the clear, would let anyone with the store guess it. */
    obj->blob.has_digest = false;
    memset(obj->blob.digest, 0, sizeof(obj->blob.digest));
    return rc;
}

/* The certificate's DER as the row's blob, in the clear. */
static kg_result kg_data_certificate(const struct kg_data_in *d, struct kg_object *obj,
                                     struct kg_op_server_rows *rows)
{
    uint32_t algorithm = 0;
    int32_t bits = 0;

    if (d->value_len > KG_P11_MAX_BLOB) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("certificate of %u bytes; at most %u are stored", d->value_len, KG_P11_MAX_BLOB);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_cert_parse(d->value, d->value_len, rows, &algorithm, &bits));
    obj->algorithm = algorithm;
    obj->length = bits;
    obj->storage = KG_P11_STORED_PUBLIC;
    memcpy(obj->blob.bytes, d->value, d->value_len);
    obj->blob.len = d->value_len;
    return KG_RESULT_OK;
}

kg_result kg_op_register_data(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_template *t = calloc(1, sizeof(*t));
    struct kg_object *obj = calloc(1, sizeof(*obj));
    struct kg_op_server_rows *rows = calloc(1, sizeof(*rows));
    struct kg_data_in d;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, t != NULL && obj != NULL && rows != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_op_server_rows_init(rows));
    KG_GOTO_GUARD(rc, kg_data_read(ctx, in, t, &d));
    obj->object_type = d.object_type;
    obj->usage_mask = t->usage_mask;
    if (d.object_type == KG_OBJ_CERTIFICATE) {
        KG_GOTO_GUARD(rc, kg_data_certificate(&d, obj, rows));
        ctx->audit_note = "certificate";
    } else if (d.object_type == KG_OBJ_SECRET_DATA) {
        KG_GOTO_GUARD(rc, kg_data_type_row(rows, KG_ATTR_SECRET_DATA_TYPE, KG_TAG_SECRET_DATA_TYPE, d.data_type,
                                           KG_TAG_KEY_FORMAT_TYPE, d.format));
        KG_GOTO_GUARD(rc, kg_data_import(ctx, &d, obj));
        ctx->audit_note = "secret data";
    } else {
        KG_GOTO_GUARD(rc, kg_data_type_row(rows, KG_ATTR_OPAQUE_DATA_TYPE, 0, d.data_type, 0, 0));
        KG_GOTO_GUARD(rc, kg_data_import(ctx, &d, obj));
        ctx->audit_note = "opaque object";
    }
    KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
    t->server_rows = rows;
    KG_GOTO_GUARD(rc, kg_op_store_new_object(ctx, obj, t));
    memcpy(ctx->audit_uid, obj->uid, sizeof(obj->uid));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, KG_UID_LEN));
out:
    if (rows != NULL) {
        kg_op_server_rows_cleanup(rows);
    }
    free(rows);
    free(obj);
    free(t);
    return rc;
}

/* ---- server rows ----------------------------------------------------------- */

kg_result kg_op_server_rows_init(struct kg_op_server_rows *r)
{
    r->count = 0;
    /* Not secret: type enumerations and certificate fields. */
    return kg_ttlv_writer_init(&r->w, KG_OP_SERVER_ROWS_MAX * KG_ATTR_VALUE_MAX, false);
}

void kg_op_server_rows_cleanup(struct kg_op_server_rows *r)
{
    kg_ttlv_writer_cleanup(&r->w);
    r->count = 0;
}

kg_result kg_op_server_rows_close(struct kg_op_server_rows *r, const char *name, uint32_t start)
{
    uint32_t len = r->w.len - start;

    KG_ENSURE(r->w.depth == 0 && start <= r->w.len, KG_ERR_INTERNAL);
    if (r->count >= KG_OP_SERVER_ROWS_MAX || len > KG_ATTR_VALUE_MAX) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("'%s' would be row %u of %u bytes: more than the server keeps", name, r->count + 1, len);
        return KG_RESULT_ERROR;
    }
    r->row[r->count].name = name;
    r->row[r->count].off = start;
    r->row[r->count].len = len;
    r->count++;
    return KG_RESULT_OK;
}
