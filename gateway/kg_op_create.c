/*
 * kg_op_create.c - Create (KMIP 1.4 section 4.1) of symmetric keys (AES and
 * HMAC, wrapped or resident), and the Template-Attribute handling Create
 * and Register share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_crypto.h"

kg_result kg_op_template_add(struct kg_template *t, const struct kg_attr_in *a)
{
    if (strcmp(a->name, "Cryptographic Algorithm") == 0) {
        KG_ENSURE(!t->has_algorithm, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_get_enum(&a->value, &t->algorithm));
        t->has_algorithm = true;
    } else if (strcmp(a->name, "Cryptographic Length") == 0) {
        KG_ENSURE(!t->has_length, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_get_int(&a->value, &t->length));
        t->has_length = true;
    } else if (strcmp(a->name, "Cryptographic Usage Mask") == 0) {
        KG_ENSURE(!t->has_usage_mask, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_get_int(&a->value, &t->usage_mask));
        t->has_usage_mask = true;
    } else if (strcmp(a->name, "Object Type") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &t->object_type));
    } else if (strcmp(a->name, "Certificate Type") == 0) {
        /* The server sets it from the certificate; a client may say what
         * it registers (OASIS BL-M-10-21), checked there. */
        KG_ENSURE(!t->has_certificate_type, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_get_enum(&a->value, &t->certificate_type));
        t->has_certificate_type = true;
    } else {
        if (!(a->def->flags & KG_ATTR_CLIENT_SET)) {
            kg_error_set(KG_ERR_READ_ONLY_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("attribute '%s' is set by the server", a->name);
            return KG_RESULT_ERROR;
        }
        /* Single-valued attributes may appear once. */
        for (uint32_t i = 0; i < t->extra_count && !(a->def->flags & KG_ATTR_MULTI); i++) {
            KG_ENSURE(strcmp(t->extra[i].name, a->name) != 0, KG_ERR_INVALID_FIELD);
        }
        KG_ENSURE(t->extra_count < KG_TEMPLATE_MAX_ATTRS, KG_ERR_INVALID_FIELD);
        t->extra[t->extra_count++] = *a;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_read_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_template *t)
{
    struct kg_ttlv_item ta, it;
    struct kg_ttlv_reader r;
    struct kg_template_refs refs = { 0 };
    bool present = false;

    memset(t, 0, sizeof(*t));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_TEMPLATE_ATTRIBUTE, KG_TTLV_STRUCTURE, &ta, &present));
    if (!present) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_child(in, &ta, &r));
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &it));
        if (it.tag == KG_TAG_NAME) {
            /* A Template object's name (KMIP 1.x): applied once the
             * request's own attributes are known, which win over it. */
            KG_GUARD(kg_op_template_ref(ctx, &it, &refs));
            continue;
        }
        KG_ENSURE(it.tag == KG_TAG_ATTRIBUTE && it.type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
        struct kg_attr_in a;
        KG_GUARD(kg_attr_read(&r, &it, true, &a));
        KG_GUARD(kg_op_template_add(t, &a));
    }
    return kg_op_template_resolve(ctx, &refs, t);
}

/* One template attribute as stored: Usage Limits in the server's form
 * (Count = Total, the client's Count ignored), anything else as given. */
static kg_result kg_op_insert_extra(struct kg_store *w, const char *uid, const struct kg_attr_in *a)
{
    uint8_t limits[64];
    uint32_t len = 0;
    int32_t index;

    if (strcmp(a->name, "Usage Limits") == 0) {
        KG_GUARD(kg_attr_usage_limits(a, true, limits, sizeof(limits), &len));
        return kg_store_add_attr(w, uid, a->name, limits, len, &index);
    }
    return kg_store_add_attr(w, uid, a->name, a->value.raw, a->value.raw_len, &index);
}

static kg_result kg_op_insert_object(struct kg_store *w, const struct kg_op_ctx *ctx, const struct kg_object *obj,
                                     const struct kg_template *t, const struct kg_attr_new *server_set)
{
    KG_GUARD(kg_store_insert_object(w, obj));
    for (uint32_t i = 0; i < t->extra_count; i++) {
        KG_GUARD(kg_op_insert_extra(w, obj->uid, &t->extra[i]));
    }
    for (uint32_t i = 0; t->server_rows != NULL && i < t->server_rows->count; i++) {
        const struct kg_op_server_rows *r = t->server_rows;
        int32_t index;

        KG_GUARD(kg_store_add_attr(w, obj->uid, r->row[i].name, r->w.buf + r->row[i].off, r->row[i].len, &index));
    }
    KG_GUARD(kg_attr_store_date(w, obj->uid, "Initial Date", ctx->now));
    KG_GUARD(kg_attr_store_date(w, obj->uid, "Last Change Date", ctx->now));
    KG_GUARD(kg_attr_store_new(w, obj->uid, server_set));
    return KG_RESULT_OK;
}

/*
 * Quantum Safe True (KMIP 2.1 section 4.45) asks for an object that stays
 * safe against a quantum computer: among what kmipgw makes, only symmetric
 * keys of at least 256 bits (Grover's search halves their strength); RSA
 * and EC fall to Shor's algorithm.
 */
static kg_result kg_op_check_quantum_safe(const struct kg_object *obj, const struct kg_template *t)
{
    bool wanted = false;

    for (uint32_t i = 0; i < t->extra_count; i++) {
        if (strcmp(t->extra[i].name, "Quantum Safe") == 0) {
            KG_GUARD(kg_ttlv_get_bool(&t->extra[i].value, &wanted));
        }
    }
    if (wanted && !(obj->object_type == KG_OBJ_SYMMETRIC_KEY && obj->length >= 256)) {
        kg_error_set(KG_ERR_NOT_QUANTUM_SAFE, __FILE__, __LINE__);
        kg_error_detail("a %d-bit key is not quantum safe; ask for 256 bits or more", (int)obj->length);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_template_check_version(const struct kg_op_ctx *ctx, const struct kg_template *t)
{
    for (uint32_t i = 0; i < t->extra_count; i++) {
        if (!kg_attr_in_version(t->extra[i].def, ctx->version.major, ctx->version.minor)) {
            kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("'%s' is not an attribute of KMIP %d.%d", t->extra[i].name, (int)ctx->version.major,
                            (int)ctx->version.minor);
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

kg_result kg_op_store_new_object(struct kg_op_ctx *ctx, struct kg_object *obj, const struct kg_template *t)
{
    struct kg_attr_new server_set = { 0 };
    struct kg_store *w;
    int64_t activation = 0;

    /* Here, where every new object passes; a key Create made for nothing
     * is dropped with its session (or, resident, destroyed by the caller). */
    KG_GUARD(kg_op_template_check_version(ctx, t));
    KG_GUARD(kg_op_check_quantum_safe(obj, t));

    if (ctx->group->residency == KG_RESIDENCY_HSM && obj->storage == KG_P11_STORED_WRAPPED) {
        /* The one place every new object passes: whatever operation made
         * it, a group whose keys must stay in the HSM never gets a key
         * wrapped into the store (Register has no resident path yet). */
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("group '%s' keeps its keys in the HSM (residency hsm); this key would be stored wrapped",
                        ctx->group->name);
        return KG_RESULT_ERROR;
    }
    snprintf(obj->owner_group, sizeof(obj->owner_group), "%s", ctx->group->name);
    snprintf(obj->creator, sizeof(obj->creator), "%s", ctx->identity->cn ? ctx->identity->cn : "");
    obj->state = KG_STATE_PRE_ACTIVE;
    for (uint32_t i = 0; i < t->extra_count; i++) {
        if (strcmp(t->extra[i].name, "Activation Date") == 0) {
            KG_GUARD(kg_ttlv_get_datetime(&t->extra[i].value, &activation));
        }
    }
    /* An Activation Date already reached makes the key Active at once
     * (KMIP 1.4 section 3.24). */
    if (activation != 0 && activation <= ctx->now) {
        obj->state = KG_STATE_ACTIVE;
    }
    /* Bound to its object before it is stored, outside the commit: every
     * row this inserts carries its tag. */
    KG_GUARD(kg_op_seal(ctx->gw->p11, obj));
    server_set.now = ctx->now;
    server_set.generated = t->generated;
    server_set.has_digest = obj->blob.has_digest;
    server_set.key_format = obj->key_format;
    memcpy(server_set.digest, obj->blob.digest, sizeof(server_set.digest));
    for (uint32_t i = 0; i < t->extra_count; i++) {
        server_set.fresh_given |= strcmp(t->extra[i].name, "Fresh") == 0;
    }
    /* Durability: kg_change_end returns once the group commit holding this
     * insert is on disk; only then is the response written. */
    KG_GUARD(kg_change_begin(ctx->gw->committer, NULL, &w));
    return kg_change_end(ctx->gw->committer, kg_op_insert_object(w, ctx, obj, t, &server_set));
}

kg_result kg_op_check_aes(uint32_t algorithm, int32_t length)
{
    if (algorithm != KG_ALG_AES) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("only AES keys are supported");
        return KG_RESULT_ERROR;
    }
    if (length != 128 && length != 192 && length != 256) {
        kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
        kg_error_detail("AES keys are 128, 192 or 256 bits long");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* What the template asks for, into the policy request. */
static void kg_op_template_facts(const struct kg_template *t, struct kg_policy_request *req)
{
    req->algorithm = t->algorithm;
    req->length = t->length;
    req->usage_mask = t->usage_mask;
    req->has_usage_mask = t->has_usage_mask;
}

kg_result kg_op_template_policy_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                      struct kg_policy_request *req, struct kg_template **out)
{
    struct kg_ttlv_item it;
    struct kg_template *t;

    *out = NULL;
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &req->object_type));
    t = calloc(1, sizeof(*t));
    KG_ENSURE(t != NULL, KG_ERR_NOMEM);
    if (kg_failed(kg_op_read_template(ctx, in, t))) {
        free(t);
        return KG_RESULT_ERROR;
    }
    kg_op_template_facts(t, req);
    *out = t;
    return KG_RESULT_OK;
}

kg_result kg_op_create_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_template *t = NULL;

    KG_GUARD(kg_op_template_policy_facts(ctx, &in, req, &t));
    free(t);
    return KG_RESULT_OK;
}

kg_result kg_op_read_new_key(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, const char *op,
                             struct kg_template **t, struct kg_object **obj)
{
    struct kg_ttlv_item it;
    uint32_t object_type;

    *t = NULL;
    *obj = NULL;
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &object_type));
    if (object_type != KG_OBJ_SYMMETRIC_KEY) {
        kg_error_set(KG_ERR_UNSUPPORTED_OBJECT, __FILE__, __LINE__);
        kg_error_detail("%s takes symmetric keys only", op);
        return KG_RESULT_ERROR;
    }
    *t = calloc(1, sizeof(**t));
    *obj = calloc(1, sizeof(**obj));
    KG_ENSURE(*t != NULL && *obj != NULL, KG_ERR_NOMEM);
    KG_GUARD(kg_op_read_template(ctx, in, *t));
    KG_ENSURE((*t)->object_type == 0 || (*t)->object_type == object_type, KG_ERR_INVALID_FIELD);
    (*obj)->object_type = object_type;
    return KG_RESULT_OK;
}

/*
 * What kind of secret key a Create asks for: AES (128/192/256) or an HMAC
 * key (HMAC-SHA256/384/512, a multiple of 8 bits from the hash's output
 * length to 512). The floor is RFC 2104's advice, and the HSM's rule too:
 * SoftHSM refuses (CKR_KEY_SIZE_RANGE) to MAC with a shorter key, so a
 * shorter one would be a key nobody can use.
 */
static kg_result kg_op_create_kind(const struct kg_template *t, enum kg_p11_key_kind *kind)
{
    if (t->algorithm == KG_ALG_3DES) {
        /* Legacy, but in the KMIP symmetric key profiles (SKFF): a policy
         * decides whether a group may have it (conf/policy.yaml). */
        *kind = KG_P11_KEY_DES3;
        return KG_RESULT_OK; /* the length is checked where it is made */
    }
    if (t->algorithm == KG_ALG_HMAC_SHA256 || t->algorithm == KG_ALG_HMAC_SHA384 ||
        t->algorithm == KG_ALG_HMAC_SHA512) {
        int32_t floor = t->algorithm == KG_ALG_HMAC_SHA256 ? 256 : (t->algorithm == KG_ALG_HMAC_SHA384 ? 384 : 512);

        if (t->length < floor || t->length > 512 || t->length % 8 != 0) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("this HMAC key is a multiple of 8 bits from %d to 512 long", (int)floor);
            return KG_RESULT_ERROR;
        }
        *kind = KG_P11_KEY_HMAC;
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_op_check_aes(t->algorithm, t->length));
    *kind = KG_P11_KEY_AES;
    return KG_RESULT_OK;
}

/*
 * Make the key in the HSM. A group with residency hsm gets a token object
 * named by the UID, never extractable, with the use flags of its usage
 * mask (the mask is the key's whole life: the object is not modifiable);
 * other groups get the key wrapped under the MWK. No plaintext here.
 */
static kg_result kg_op_create_material(struct kg_op_ctx *ctx, enum kg_p11_key_kind kind, const struct kg_template *t,
                                       struct kg_object *obj)
{
    if (ctx->group->residency == KG_RESIDENCY_HSM) {
        KG_GUARD(kg_op_check_undoable(ctx));
        KG_GUARD(kg_p11_generate_secret(ctx->gw->p11, kind, (uint32_t)t->length,
                                        kg_p11_uses_of_mask((uint32_t)t->usage_mask), obj->uid, &obj->blob));
        obj->storage = KG_P11_STORED_RESIDENT;
        ctx->audit_note = "resident key";
        return KG_RESULT_OK;
    }
    obj->storage = KG_P11_STORED_WRAPPED;
    if (kind == KG_P11_KEY_AES) {
        return kg_p11_generate_aes(ctx->gw->p11, (uint32_t)t->length, &obj->blob);
    }
    /* The wrapped HMAC or Triple DES key's flags do not matter: every use
     * unwraps it into an object with exactly the flags that use needs. */
    return kg_p11_generate_secret(ctx->gw->p11, kind, (uint32_t)t->length, 0, NULL, &obj->blob);
}

/*
 * Refuse, before the HSM is touched, a key the token cannot generate or
 * use (mechanism discovery, kg_p11_mech.c): KMIP Cryptographic Algorithm
 * Not Supported rather than an HSM failure.
 */
static kg_result kg_op_create_token_can(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_template *t)
{
    bool ok;
    const char *need;

    if (kind == KG_P11_KEY_AES) {
        ok = kg_p11_can_bits(p11, KG_P11_CAN_GENERATE_AES, (uint32_t)t->length);
        need = "CKM_AES_KEY_GEN";
    } else if (kind == KG_P11_KEY_DES3) {
        ok = kg_p11_can(p11, KG_P11_CAN_GENERATE_DES3);
        need = "CKM_DES3_KEY_GEN";
    } else {
        enum kg_p11_capability mac = t->algorithm == KG_ALG_HMAC_SHA256   ? KG_P11_CAN_HMAC_SHA256
                                     : t->algorithm == KG_ALG_HMAC_SHA384 ? KG_P11_CAN_HMAC_SHA384
                                                                          : KG_P11_CAN_HMAC_SHA512;

        ok = kg_p11_can(p11, KG_P11_CAN_GENERATE_HMAC) && kg_p11_can(p11, mac);
        need = "CKM_GENERIC_SECRET_KEY_GEN and the HMAC mechanism";
    }
    if (!ok) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("the HSM token cannot make this key (%d bits): it lacks %s", (int)t->length, need);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_create(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_template *t = NULL;
    struct kg_object *obj = NULL;
    enum kg_p11_key_kind kind = KG_P11_KEY_AES;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_op_read_new_key(ctx, in, "Create", &t, &obj));
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(in));
    if (!t->has_algorithm || !t->has_length) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("Create needs Cryptographic Algorithm and Cryptographic Length");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_op_create_kind(t, &kind));
    KG_GOTO_GUARD(rc, kg_op_create_token_can(ctx->gw->p11, kind, t));

    obj->algorithm = t->algorithm;
    obj->length = t->length;
    obj->usage_mask = t->usage_mask;
    t->generated = true; /* Original Creation Date, Random Number Generator */
    KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
    KG_GOTO_GUARD(rc, kg_op_create_material(ctx, kind, t, obj));
    rc = kg_op_store_new_object(ctx, obj, t);
    if (kg_failed(rc) && obj->storage == KG_P11_STORED_RESIDENT) {
        /* No row names the token object: remove it, or it is an orphan
         * nobody can reach or destroy through KMIP. The store error is the
         * one reported. */
        struct kg_p11_key_ref ref = { .kind = kind, .storage = KG_P11_STORED_RESIDENT, .resident_id = obj->uid };
        int err = kg_errno();

        if (kg_failed(kg_p11_resident_destroy(ctx->gw->p11, &ref))) {
            kg_error_set(err, __FILE__, __LINE__);
            kg_error_detail("store failed; resident token object %s could not be removed", obj->uid);
        } else {
            kg_error_set(err, __FILE__, __LINE__);
        }
        goto out;
    }
    KG_GOTO_GUARD(rc, rc);
    memcpy(ctx->audit_uid, obj->uid, sizeof(obj->uid));

    KG_GOTO_GUARD(rc, kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, obj->object_type));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, KG_UID_LEN));
out:
    free(t);
    free(obj);
    return rc;
}
