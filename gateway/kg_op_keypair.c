/*
 * kg_op_keypair.c - Create Key Pair (KMIP 1.4 section 4.2) and Re-key Key
 * Pair (section 4.5): RSA 2048/3072/4096 and EC P-256/P-384 generated in
 * the HSM (pkcs11/kg_p11_pair.h). The private key is stored wrapped under
 * the MWK, or resident on the token for groups with residency hsm; the
 * public key is stored as SubjectPublicKeyInfo DER in the clear. Each gets a
 * Link to the other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_pair.h"

/* Extras of one key: the common template's plus its own. */
#define KG_PAIR_MAX_EXTRAS (2 * KG_TEMPLATE_MAX_ATTRS)

/* One Template-Attribute of a key pair request. */
struct kg_pair_template {
    struct kg_template t;
    bool has_curve;
    uint32_t curve; /* enum kg_recommended_curve */
};

/* A key pair request, decoded and merged (Table 168). */
struct kg_pair_request {
    struct kg_pair_template common, priv, pub;
    uint32_t algorithm; /* 0: not given */
    int32_t length;     /* 0: not given */
    uint32_t curve;     /* 0: not given */
    int32_t priv_mask;
    int32_t pub_mask;
    struct kg_attr_in priv_extras[KG_PAIR_MAX_EXTRAS];
    uint32_t priv_extra_count;
    struct kg_attr_in pub_extras[KG_PAIR_MAX_EXTRAS];
    uint32_t pub_extra_count;
};

/*
 * Cryptographic Domain Parameters (section 3.7) is not in the attribute
 * table: only key pairs take it, and only its Recommended Curve matters
 * here. *handled says whether `attr` was that attribute.
 */
static kg_result kg_pair_domain(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *attr,
                                struct kg_pair_template *pt, bool *handled)
{
    static const char name[] = "Cryptographic Domain Parameters";
    struct kg_ttlv_reader r, v;
    struct kg_ttlv_item it, val;
    const char *text;
    uint32_t len;
    bool present = false;

    *handled = false;
    KG_GUARD(kg_ttlv_child(parent, attr, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &text, &len));
    if (len != sizeof(name) - 1 || memcmp(text, name, len) != 0) {
        return KG_RESULT_OK;
    }
    *handled = true;
    KG_ENSURE(!pt->has_curve, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_ATTRIBUTE_INDEX, KG_TTLV_INTEGER, &it, &present));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_VALUE, KG_TTLV_STRUCTURE, &val));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    KG_GUARD(kg_ttlv_child(&r, &val, &v));
    while (!kg_ttlv_reader_done(&v)) {
        KG_GUARD(kg_ttlv_read(&v, &it));
        if (it.tag == KG_TAG_RECOMMENDED_CURVE && it.type == KG_TTLV_ENUMERATION) {
            KG_ENSURE(!pt->has_curve, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_ttlv_get_enum(&it, &pt->curve));
            pt->has_curve = true;
        } else {
            /* Qlength (DSA, DH) and anything else: not for RSA or EC. */
            kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
            kg_error_detail("only Recommended Curve is supported in Cryptographic Domain Parameters");
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

/* One of the three Template-Attributes (tag `tag`), if present. Its
 * Template Names are resolved into it, its own attributes winning: with
 * kg_pair_merge_extras that is KMIP 1.4 section 4.2's order of precedence. */
static kg_result kg_pair_read_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, uint32_t tag,
                                       struct kg_pair_template *pt)
{
    struct kg_template *t = &pt->t;
    struct kg_ttlv_item ta, it;
    struct kg_ttlv_reader r;
    struct kg_template_refs refs = { 0 };
    bool present = false;

    KG_GUARD(kg_ttlv_read_optional(in, tag, KG_TTLV_STRUCTURE, &ta, &present));
    if (!present) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_child(in, &ta, &r));
    while (!kg_ttlv_reader_done(&r)) {
        struct kg_attr_in a;
        bool handled = false;

        KG_GUARD(kg_ttlv_read(&r, &it));
        if (it.tag == KG_TAG_NAME) {
            KG_GUARD(kg_op_template_ref(ctx, &it, &refs));
            continue;
        }
        KG_ENSURE(it.tag == KG_TAG_ATTRIBUTE && it.type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_pair_domain(&r, &it, pt, &handled));
        if (handled) {
            continue;
        }
        KG_GUARD(kg_attr_read(&r, &it, true, &a));
        KG_GUARD(kg_op_template_add(t, &a));
    }
    return kg_op_template_resolve(ctx, &refs, t);
}

/* A value both keys must share (Table 168): given anywhere, equal everywhere. */
static kg_result kg_pair_shared_u32(bool h1, uint32_t v1, bool h2, uint32_t v2, bool h3, uint32_t v3, uint32_t *out)
{
    *out = 0;
    if (h1) {
        *out = v1;
    }
    if (h2) {
        KG_ENSURE(*out == 0 || *out == v2, KG_ERR_INVALID_FIELD);
        *out = v2;
    }
    if (h3) {
        KG_ENSURE(*out == 0 || *out == v3, KG_ERR_INVALID_FIELD);
        *out = v3;
    }
    return KG_RESULT_OK;
}

/* The common extras not overridden by the key's own single-valued ones, then its own. */
static kg_result kg_pair_merge_extras(const struct kg_template *common, const struct kg_template *own,
                                      struct kg_attr_in *out, uint32_t *count)
{
    *count = 0;
    for (uint32_t i = 0; i < common->extra_count; i++) {
        bool overridden = false;

        for (uint32_t j = 0; j < own->extra_count && !(common->extra[i].def->flags & KG_ATTR_MULTI); j++) {
            overridden |= strcmp(common->extra[i].name, own->extra[j].name) == 0;
        }
        if (!overridden) {
            out[(*count)++] = common->extra[i];
        }
    }
    for (uint32_t j = 0; j < own->extra_count; j++) {
        KG_ENSURE(*count < KG_PAIR_MAX_EXTRAS, KG_ERR_INVALID_FIELD);
        out[(*count)++] = own->extra[j];
    }
    return KG_RESULT_OK;
}

/* Read the three templates from `in` into *p and merge them. */
static kg_result kg_pair_read_request(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_pair_request *p)
{
    const struct kg_template *c = &p->common.t, *k = &p->priv.t, *u = &p->pub.t;
    uint32_t length = 0;

    KG_GUARD(kg_pair_read_template(ctx, in, KG_TAG_COMMON_TEMPLATE_ATTRIBUTE, &p->common));
    KG_GUARD(kg_pair_read_template(ctx, in, KG_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE, &p->priv));
    KG_GUARD(kg_pair_read_template(ctx, in, KG_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE, &p->pub));
    KG_ENSURE(c->object_type == 0, KG_ERR_INVALID_FIELD);
    KG_ENSURE(k->object_type == 0 || k->object_type == KG_OBJ_PRIVATE_KEY, KG_ERR_INVALID_FIELD);
    KG_ENSURE(u->object_type == 0 || u->object_type == KG_OBJ_PUBLIC_KEY, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_pair_shared_u32(c->has_algorithm, c->algorithm, k->has_algorithm, k->algorithm, u->has_algorithm,
                                u->algorithm, &p->algorithm));
    KG_GUARD(kg_pair_shared_u32(c->has_length, (uint32_t)c->length, k->has_length, (uint32_t)k->length,
                                u->has_length, (uint32_t)u->length, &length));
    KG_ENSURE(length <= INT32_MAX, KG_ERR_INVALID_FIELD);
    p->length = (int32_t)length;
    KG_GUARD(kg_pair_shared_u32(p->common.has_curve, p->common.curve, p->priv.has_curve, p->priv.curve,
                                p->pub.has_curve, p->pub.curve, &p->curve));
    /* Usage masks may differ; the key's own wins over the common one. */
    p->priv_mask = k->has_usage_mask ? k->usage_mask : c->has_usage_mask ? c->usage_mask : KG_USAGE_SIGN;
    p->pub_mask = u->has_usage_mask ? u->usage_mask : c->has_usage_mask ? c->usage_mask : KG_USAGE_VERIFY;
    KG_GUARD(kg_pair_merge_extras(c, k, p->priv_extras, &p->priv_extra_count));
    KG_GUARD(kg_pair_merge_extras(c, u, p->pub_extras, &p->pub_extra_count));
    return KG_RESULT_OK;
}

/* The enum kg_kmip Recommended Curve as the HSM layer names it. */
static enum kg_p11_curve kg_pair_curve(uint32_t curve)
{
    return curve == KG_CURVE_P256 ? KG_P11_CURVE_P256 : curve == KG_CURVE_P384 ? KG_P11_CURVE_P384 : KG_P11_CURVE_NONE;
}

/*
 * What to generate: algorithm, and RSA modulus bits or EC curve (from
 * Recommended Curve, or from Cryptographic Length 256/384: the bit length
 * of Q, Table 168's note). *length gets the length to record.
 */
static kg_result kg_pair_spec_of(uint32_t algorithm, int32_t length, uint32_t curve, int32_t priv_mask,
                                 struct kg_p11_pair_spec *spec, int32_t *out_length)
{
    memset(spec, 0, sizeof(*spec));
    if (algorithm == 0) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("Create Key Pair needs a Cryptographic Algorithm");
        return KG_RESULT_ERROR;
    }
    if (algorithm == KG_ALG_RSA) {
        KG_ENSURE(curve == 0, KG_ERR_INVALID_FIELD);
        if (length == 0) {
            kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
            kg_error_detail("an RSA key pair needs a Cryptographic Length");
            return KG_RESULT_ERROR;
        }
        if (length < 0 || !kg_p11_pair_rsa_bits_ok((uint32_t)length)) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("RSA keys are 2048, 3072 or 4096 bits long");
            return KG_RESULT_ERROR;
        }
        spec->algorithm = KG_P11_PAIR_RSA;
        spec->rsa_bits = (uint32_t)length;
    } else if (algorithm == KG_ALG_EC || algorithm == KG_ALG_ECDSA) {
        spec->algorithm = KG_P11_PAIR_EC;
        if (curve != 0) {
            spec->curve = kg_pair_curve(curve);
        } else {
            spec->curve = length == 256 ? KG_P11_CURVE_P256 : length == 384 ? KG_P11_CURVE_P384 : KG_P11_CURVE_NONE;
        }
        if (spec->curve == KG_P11_CURVE_NONE) {
            kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
            kg_error_detail("EC keys are made on P-256 or P-384 only");
            return KG_RESULT_ERROR;
        }
        KG_ENSURE(length == 0 || (uint32_t)length == kg_p11_curve_bits(spec->curve), KG_ERR_INVALID_FIELD);
        length = (int32_t)kg_p11_curve_bits(spec->curve);
    } else {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("key pairs are RSA or EC");
        return KG_RESULT_ERROR;
    }
    spec->private_uses = ((priv_mask & KG_USAGE_SIGN) ? KG_P11_PAIR_USE_SIGN : 0u) |
                         ((priv_mask & KG_USAGE_DECRYPT) ? KG_P11_PAIR_USE_DECRYPT : 0u) |
                         ((priv_mask & KG_USAGE_UNWRAP_KEY) ? KG_P11_PAIR_USE_UNWRAP : 0u);
    *out_length = length;
    return KG_RESULT_OK;
}

kg_result kg_op_create_key_pair_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_pair_request *p = calloc(1, sizeof(*p));
    struct kg_p11_pair_spec spec;
    int32_t length = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pair_read_request(ctx, &in, p));
    KG_GOTO_GUARD(rc, kg_pair_spec_of(p->algorithm, p->length, p->curve, p->priv_mask, &spec, &length));
    req->object_type = KG_OBJ_PRIVATE_KEY;
    req->algorithm = p->algorithm;
    req->length = length;
    req->usage_mask = p->priv_mask;
    req->has_usage_mask = true;
    req->pair_object_type = KG_OBJ_PUBLIC_KEY;
    req->pair_usage_mask = p->pub_mask;
    req->objects_made = 2;
out:
    free(p);
    return rc;
}

/* The two new objects, their extras and what a re-key copies from. */
struct kg_pair_job {
    struct kg_op_ctx *ctx;
    struct kg_object *priv, *pub;
    const struct kg_attr_in *priv_extras, *pub_extras;
    uint32_t priv_extra_count, pub_extra_count;
    const struct kg_object *old_priv, *old_pub; /* NULL for Create Key Pair */
    bool has_offset;
    uint32_t offset;
};

static kg_result kg_pair_apply(struct kg_store *w, struct kg_pair_job *job)
{
    KG_GUARD(kg_op_insert_new(w, job->ctx, job->priv));
    KG_GUARD(kg_op_insert_new(w, job->ctx, job->pub));
    if (job->old_priv != NULL) {
        struct kg_rekey_args a = { .has_offset = job->has_offset, .offset = job->offset, .pair = true };

        a.extras = job->priv_extras;
        a.extra_count = job->priv_extra_count;
        KG_GUARD(kg_op_rekey_rows(w, job->ctx, job->old_priv->uid, job->priv, &a));
        a.extras = job->pub_extras;
        a.extra_count = job->pub_extra_count;
        KG_GUARD(kg_op_rekey_rows(w, job->ctx, job->old_pub->uid, job->pub, &a));
    } else {
        KG_GUARD(kg_op_put_extras(w, job->priv->uid, job->priv_extras, job->priv_extra_count));
        KG_GUARD(kg_op_put_extras(w, job->pub->uid, job->pub_extras, job->pub_extra_count));
        KG_GUARD(kg_op_settle_state(w, job->ctx, job->priv));
        KG_GUARD(kg_op_settle_state(w, job->ctx, job->pub));
    }
    /* Section 4.2: each half links to the other. */
    KG_GUARD(kg_op_link_store(w, job->priv->uid, KG_LINK_PUBLIC_KEY, job->pub->uid));
    KG_GUARD(kg_op_link_store(w, job->pub->uid, KG_LINK_PRIVATE_KEY, job->priv->uid));
    return KG_RESULT_OK;
}

/*
 * Generate the pair per `spec` into fresh objects, store them (and their
 * links, and for a re-key what they copy) in one durable change, and answer
 * with both UIDs. A resident private key whose rows could not be stored is
 * removed from the token again.
 */
/* Refuse, before the HSM is touched, a pair the token cannot generate
 * (mechanism discovery, kg_p11_mech.c): KMIP Cryptographic Algorithm Not
 * Supported rather than an HSM failure. */
static kg_result kg_pair_token_can(struct kg_p11 *p11, const struct kg_p11_pair_spec *spec, int32_t length)
{
    bool rsa = spec->algorithm == KG_P11_PAIR_RSA;
    uint32_t bits = rsa ? (uint32_t)length : kg_p11_curve_bits(spec->curve);

    if (!kg_p11_can_bits(p11, rsa ? KG_P11_CAN_GENERATE_RSA : KG_P11_CAN_GENERATE_EC, bits)) {
        kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
        kg_error_detail("the HSM token cannot generate %s key pairs of %u bits (%s)", rsa ? "RSA" : "EC", bits,
                        rsa ? "CKM_RSA_PKCS_KEY_PAIR_GEN" : "CKM_EC_KEY_PAIR_GEN");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

static kg_result kg_pair_make(struct kg_pair_job *job, struct kg_p11_pair_spec *spec, uint32_t algorithm,
                              int32_t length, int32_t priv_mask, int32_t pub_mask, bool resident,
                              struct kg_ttlv_writer *out)
{
    struct kg_op_ctx *ctx = job->ctx;
    struct kg_p11_pair *pair = calloc(1, sizeof(*pair));
    struct kg_object *priv = calloc(1, sizeof(*priv));
    struct kg_object *pub = calloc(1, sizeof(*pub));
    struct kg_store *w;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, pair != NULL && priv != NULL && pub != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pair_token_can(ctx->gw->p11, spec, length));
    KG_GOTO_GUARD(rc, kg_op_new_uid(priv->uid));
    KG_GOTO_GUARD(rc, kg_op_new_uid(pub->uid));
    spec->resident_id = resident ? priv->uid : NULL;
    if (resident) {
        KG_GOTO_GUARD(rc, kg_op_check_undoable(ctx));
    }
    KG_GOTO_GUARD(rc, kg_p11_generate_pair(ctx->gw->p11, spec, pair));

    priv->object_type = KG_OBJ_PRIVATE_KEY;
    pub->object_type = KG_OBJ_PUBLIC_KEY;
    priv->algorithm = pub->algorithm = algorithm;
    priv->length = pub->length = length;
    priv->usage_mask = priv_mask;
    pub->usage_mask = pub_mask;
    priv->storage = resident ? KG_P11_STORED_RESIDENT : KG_P11_STORED_WRAPPED;
    priv->blob = pair->private_blob;
    pub->storage = KG_P11_STORED_PUBLIC;
    pub->blob = pair->public_der;
    job->priv = priv;
    job->pub = pub;
    rc = kg_change_begin(ctx->gw->committer, NULL, &w);
    if (kg_ok(rc)) {
        rc = kg_change_end(ctx->gw->committer, kg_pair_apply(w, job));
    }
    if (kg_failed(rc) && resident) {
        int err = kg_errno();

        /* No row names the new token object: remove it, keep the store's error. */
        if (kg_failed(kg_p11_pair_destroy_resident(ctx->gw->p11, priv->uid))) {
            kg_log("error", "resident private key %s could not be removed after a failed store", priv->uid);
        }
        kg_error_set(err, __FILE__, __LINE__);
        goto out;
    }
    KG_GOTO_GUARD(rc, rc);
    ctx->audit_note = resident ? "resident key pair" : "key pair";
    /* The private key's UID is the ID Placeholder (section 4.2). */
    memcpy(ctx->audit_uid, priv->uid, sizeof(priv->uid));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_PRIVATE_KEY_UNIQUE_IDENTIFIER, priv->uid, KG_UID_LEN));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_PUBLIC_KEY_UNIQUE_IDENTIFIER, pub->uid, KG_UID_LEN));
out:
    free(pair);
    free(priv);
    free(pub);
    return rc;
}

kg_result kg_op_create_key_pair(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_pair_request *p = calloc(1, sizeof(*p));
    struct kg_pair_job job = { .ctx = ctx };
    struct kg_p11_pair_spec spec;
    int32_t length = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pair_read_request(ctx, in, p));
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(in));
    KG_GOTO_GUARD(rc, kg_pair_spec_of(p->algorithm, p->length, p->curve, p->priv_mask, &spec, &length));
    job.priv_extras = p->priv_extras;
    job.priv_extra_count = p->priv_extra_count;
    job.pub_extras = p->pub_extras;
    job.pub_extra_count = p->pub_extra_count;
    KG_GOTO_GUARD(rc, kg_pair_make(&job, &spec, p->algorithm, length, p->priv_mask, p->pub_mask,
                                   ctx->group->residency == KG_RESIDENCY_HSM, out));
out:
    free(p);
    return rc;
}

/* ---- Re-key Key Pair ------------------------------------------------------ */

/* The private key a Re-key Key Pair names, or the ID Placeholder. */
static kg_result kg_pair_target(struct kg_ttlv_reader *in, const struct kg_op_ctx *ctx, char out[KG_UID_LEN + 1])
{
    struct kg_ttlv_item it;
    bool present = false;

    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_PRIVATE_KEY_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it, &present));
    return kg_op_uid_or_placeholder(ctx, &it, present, out);
}

/*
 * The target is named by Private Key Unique Identifier, not the leading
 * Unique Identifier the dispatcher resolves, so it is loaded here and its
 * owner handed to policy, which checks scope as for any target (an object
 * out of scope answers Item Not Found).
 */
kg_result kg_op_rekey_key_pair_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    char uid[KG_UID_LEN + 1];

    KG_GUARD(kg_pair_target(&in, ctx, uid));
    memcpy(ctx->audit_uid, uid, sizeof(uid));
    KG_GUARD(kg_store_get_object(ctx->store, uid, &ctx->object));
    ctx->has_object = true;
    req->object_owner = ctx->object.owner_group;
    kg_op_rekey_policy_facts(&ctx->object, req);
    /* The new public half copies the old one's mask, which create.* allowed
     * when the pair was made: only its type is checked again here. */
    req->pair_object_type = KG_OBJ_PUBLIC_KEY;
    req->objects_made = 2;
    return KG_RESULT_OK;
}

kg_result kg_op_rekey_key_pair(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_pair_request *p = calloc(1, sizeof(*p));
    struct kg_object *old_pub = calloc(1, sizeof(*old_pub));
    const struct kg_object *old_priv = &ctx->object;
    struct kg_pair_job job = { .ctx = ctx, .old_priv = old_priv, .old_pub = old_pub };
    struct kg_rekey_args args = { 0 };
    struct kg_p11_pair_spec spec;
    char uid[KG_UID_LEN + 1];
    char pub_uid[KG_UID_LEN + 1];
    int32_t length = 0;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, p != NULL && old_pub != NULL && ctx->has_object, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pair_target(in, ctx, uid));
    KG_GOTO_GUARD(rc, kg_op_read_offset(in, &args));
    KG_GOTO_GUARD(rc, kg_pair_read_request(ctx, in, p));
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(in));
    KG_GOTO_GUARD(rc, kg_op_rekey_check_old(old_priv, KG_OBJ_PRIVATE_KEY));
    /* The replacement is the same kind of pair. */
    KG_GOTO_ENSURE(rc, p->algorithm == 0 || p->algorithm == old_priv->algorithm, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, p->length == 0 || p->length == old_priv->length, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_op_link_find(ctx->store, old_priv->uid, KG_LINK_PUBLIC_KEY, pub_uid));
    KG_GOTO_GUARD(rc, kg_store_get_object(ctx->store, pub_uid, old_pub));
    /* A public key the caller may not see is as absent as any other. */
    KG_GOTO_ENSURE(rc, kg_policy_in_scope(ctx->group, old_pub->owner_group), KG_ERR_NOT_FOUND);
    KG_GOTO_GUARD(rc, kg_op_rekey_check_old(old_pub, KG_OBJ_PUBLIC_KEY));

    int32_t priv_mask = p->priv.t.has_usage_mask || p->common.t.has_usage_mask ? p->priv_mask : old_priv->usage_mask;
    int32_t pub_mask = p->pub.t.has_usage_mask || p->common.t.has_usage_mask ? p->pub_mask : old_pub->usage_mask;
    KG_GOTO_GUARD(rc, kg_pair_spec_of(old_priv->algorithm, old_priv->length, 0, priv_mask, &spec, &length));
    job.priv_extras = p->priv_extras;
    job.priv_extra_count = p->priv_extra_count;
    job.pub_extras = p->pub_extras;
    job.pub_extra_count = p->pub_extra_count;
    job.has_offset = args.has_offset;
    job.offset = args.offset;
    /* Residency follows the old key: a resident pair is replaced by one. */
    KG_GOTO_GUARD(rc, kg_pair_make(&job, &spec, old_priv->algorithm, length, priv_mask, pub_mask,
                                   old_priv->storage == KG_P11_STORED_RESIDENT, out));
    ctx->audit_note = "re-key key pair";
out:
    free(p);
    free(old_pub);
    return rc;
}
