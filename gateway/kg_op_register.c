/*
 * kg_op_register.c - Register (KMIP 1.4 section 4.3) of symmetric keys, in
 * the clear or wrapped, and of public keys.
 *
 * Plaintext symmetric keys (Raw or Transparent Symmetric Key) arrive in the
 * request buffer, which the server keeps in locked memory and cleanses
 * after the response. They are copied once into a kg_secret, handed to the
 * HSM to be wrapped under the master key (or, in a group with residency
 * hsm, made a non-extractable token object), and wiped. AES and
 * HMAC-SHA256/384/512 keys are accepted.
 *
 * Wrapped symmetric keys (a Key Block with Key Wrapping Data: Encrypt, AES
 * key wrap, No Encoding) are unwrapped by C_UnwrapKey inside the HSM under
 * the key the Key Wrapping Data names and re-wrapped there under the MWK:
 * their plaintext never exists in the gateway. What they were wrapped with
 * is stored too, for a Get with Key Wrap Type As Registered.
 *
 * Public keys (X.509 SubjectPublicKeyInfo, PKCS#1 for RSA, Transparent RSA
 * or DSA Public Key) are not secret: they are stored as SPKI DER in the
 * clear (storage PUBLIC).
 *
 * Private keys (PKCS#1, PKCS#8, Transparent RSA or DSA Private Key) go from
 * the request buffer into the HSM as their components and are stored
 * wrapped under the MWK like generated ones (kg_op_pkey.c).
 *
 * The Key Format Type a key came in is kept (the "Key Format Type"
 * attribute row): a Get without one answers in it.
 *
 * Secret Data, Opaque Objects and Certificates are kg_op_register_data.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_crypto.h"

#include <openssl/sha.h>

struct kg_key_block_in {
    uint32_t object_type;
    uint32_t format;
    const uint8_t *material; /* borrowed from the request: key bytes, wrapped bytes or DER */
    uint32_t material_len;
    bool wrapped; /* material is wrapped as `wrap` says */
    struct kg_op_wrap_info wrap;
    bool has_algorithm;
    uint32_t algorithm;
    bool has_length;
    int32_t length;
    const uint8_t *material_raw; /* the whole Key Material item (Transparent Symmetric Key's Digest) */
    uint32_t material_raw_len;
    struct kg_op_pkey_in pkey;   /* a Private or Public Key's material (kg_op_pkey.c) */
};

/* The Key Value of a key in the clear: Key Material, either a Byte String
 * or (Transparent Symmetric Key) a structure holding Key. */
static kg_result kg_op_read_key_value(struct kg_ttlv_reader *value, struct kg_key_block_in *kb)
{
    struct kg_ttlv_item it, key;
    struct kg_ttlv_reader transparent;

    KG_GUARD(kg_ttlv_read(value, &it));
    KG_ENSURE(it.tag == KG_TAG_KEY_MATERIAL, KG_ERR_MISSING_FIELD);
    kb->material_raw = it.raw;
    kb->material_raw_len = it.raw_len;
    kb->pkey = (struct kg_op_pkey_in){ .object_type = kb->object_type, .format = kb->format };
    if (kg_op_pkey_transparent(kb->format)) {
        KG_GUARD(kg_ttlv_child(value, &it, &kb->pkey.material));
        kb->pkey.transparent = true;
    } else if (kb->format == KG_FORMAT_TRANSPARENT_SYMMETRIC && kb->object_type == KG_OBJ_SYMMETRIC_KEY) {
        KG_GUARD(kg_ttlv_child(value, &it, &transparent));
        KG_GUARD(kg_ttlv_read_expect(&transparent, KG_TAG_KEY, KG_TTLV_BYTE_STRING, &key));
        KG_GUARD(kg_ttlv_reader_finish(&transparent));
        KG_GUARD(kg_ttlv_get_bytes(&key, &kb->material, &kb->material_len));
    } else {
        KG_GUARD(kg_ttlv_get_bytes(&it, &kb->material, &kb->material_len));
        kb->pkey.der = kb->material;
        kb->pkey.der_len = kb->material_len;
    }
    /* Attributes inside the Key Value are not supported: ignoring them would
     * drop what the client meant to set. */
    KG_ENSURE(kg_ttlv_reader_done(value), KG_ERR_UNSUPPORTED_FEATURE);
    return KG_RESULT_OK;
}

static kg_result kg_op_check_formats(const struct kg_key_block_in *kb)
{
    bool ok;

    if (kb->object_type != KG_OBJ_SYMMETRIC_KEY) {
        ok = kg_op_pkey_format_ok(kb->object_type, kb->format);
    } else {
        ok = kb->format == KG_FORMAT_RAW || kb->format == KG_FORMAT_TRANSPARENT_SYMMETRIC;
    }
    KG_ENSURE(ok, KG_ERR_UNSUPPORTED_FORMAT);
    if (kb->wrapped && kb->object_type != KG_OBJ_SYMMETRIC_KEY) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("only symmetric keys are registered wrapped");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

static uint32_t kg_op_register_object_tag(uint32_t object_type)
{
    return object_type == KG_OBJ_PUBLIC_KEY    ? KG_TAG_PUBLIC_KEY
           : object_type == KG_OBJ_PRIVATE_KEY ? KG_TAG_PRIVATE_KEY
                                               : KG_TAG_SYMMETRIC_KEY;
}

static bool kg_op_register_takes(uint32_t object_type)
{
    return object_type == KG_OBJ_SYMMETRIC_KEY || object_type == KG_OBJ_PUBLIC_KEY ||
           object_type == KG_OBJ_PRIVATE_KEY;
}

/* The object after Object Type and Template-Attribute: Symmetric, Public
 * or Private Key { Key Block { Key Format Type, Key Value, Cryptographic
 * Algorithm?, Cryptographic Length?, Key Wrapping Data? } }. */
static kg_result kg_op_read_key_block(struct kg_ttlv_reader *in, uint32_t object_type, struct kg_key_block_in *kb)
{
    struct kg_ttlv_item it, value_item;
    struct kg_ttlv_reader obj, block, value;
    bool present = false;

    memset(kb, 0, sizeof(*kb));
    kb->object_type = object_type;
    KG_GUARD(kg_ttlv_read_expect(in, kg_op_register_object_tag(object_type), KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(in, &it, &obj));
    KG_GUARD(kg_ttlv_read_expect(&obj, KG_TAG_KEY_BLOCK, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(&obj, &it, &block));
    KG_GUARD(kg_ttlv_reader_finish(&obj));

    KG_GUARD(kg_ttlv_read_expect(&block, KG_TAG_KEY_FORMAT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &kb->format));
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_KEY_COMPRESSION_TYPE, KG_TTLV_ENUMERATION, &it, &present));
    KG_ENSURE(!present, KG_ERR_UNSUPPORTED_FEATURE);
    KG_GUARD(kg_ttlv_read(&block, &value_item));
    KG_ENSURE(value_item.tag == KG_TAG_KEY_VALUE, KG_ERR_MISSING_FIELD);
    KG_ENSURE(value_item.type == KG_TTLV_STRUCTURE || value_item.type == KG_TTLV_BYTE_STRING, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, KG_TTLV_ENUMERATION, &it,
                                   &kb->has_algorithm));
    if (kb->has_algorithm) {
        KG_GUARD(kg_ttlv_get_enum(&it, &kb->algorithm));
    }
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_CRYPTOGRAPHIC_LENGTH, KG_TTLV_INTEGER, &it, &kb->has_length));
    if (kb->has_length) {
        KG_GUARD(kg_ttlv_get_int(&it, &kb->length));
    }
    KG_GUARD(kg_ttlv_read_optional(&block, KG_TAG_KEY_WRAPPING_DATA, KG_TTLV_STRUCTURE, &it, &kb->wrapped));
    if (kb->wrapped) {
        KG_GUARD(kg_op_wrap_read(&block, &it, &kb->wrap));
    }
    KG_ENSURE(kg_ttlv_reader_done(&block), KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_op_check_formats(kb));

    /* A wrapped key comes as KMIP 1.4 section 2.1.3 has it (the Key Value
     * a Byte String) or as the OASIS TC-WRAP cases send it (the wrapped
     * bytes as the Byte String Key Material of a Key Value structure, No
     * Encoding being "the wrapped value of the Key Material"). A key in the
     * clear is always a structure. */
    if (value_item.type == KG_TTLV_BYTE_STRING) {
        KG_ENSURE(kb->wrapped, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_get_bytes(&value_item, &kb->material, &kb->material_len));
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_child(&block, &value_item, &value));
    if (kb->wrapped) {
        KG_GUARD(kg_ttlv_read_expect(&value, KG_TAG_KEY_MATERIAL, KG_TTLV_BYTE_STRING, &it));
        KG_GUARD(kg_ttlv_get_bytes(&it, &kb->material, &kb->material_len));
        KG_ENSURE(kg_ttlv_reader_done(&value), KG_ERR_UNSUPPORTED_FEATURE);
        return KG_RESULT_OK;
    }
    return kg_op_read_key_value(&value, kb);
}

/* Object Type of the Register, with the template: Symmetric, Public or
 * Private Key. *t and *obj are allocated here, freed by the caller also on failure. */
static kg_result kg_op_register_read(struct kg_ttlv_reader *in, struct kg_template **t, struct kg_object **obj,
                                     struct kg_key_block_in *kb)
{
    struct kg_ttlv_item it;
    uint32_t object_type;

    *t = NULL;
    *obj = NULL;
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &object_type));
    if (!kg_op_register_takes(object_type)) {
        kg_error_set(KG_ERR_UNSUPPORTED_OBJECT, __FILE__, __LINE__);
        kg_error_detail("Register takes symmetric, public and private keys only");
        return KG_RESULT_ERROR;
    }
    *t = calloc(1, sizeof(**t));
    *obj = calloc(1, sizeof(**obj));
    KG_ENSURE(*t != NULL && *obj != NULL, KG_ERR_NOMEM);
    KG_GUARD(kg_op_read_template(in, *t));
    KG_ENSURE((*t)->object_type == 0 || (*t)->object_type == object_type, KG_ERR_INVALID_FIELD);
    (*obj)->object_type = object_type;
    KG_GUARD(kg_op_read_key_block(in, object_type, kb));
    return kg_ttlv_reader_finish(in);
}

/* KMIP algorithm of a public key of `kind`: what the Key Block says if it
 * agrees with the key (EC keys may be called EC or ECDSA), else Invalid Field. */
static kg_result kg_op_public_algorithm(enum kg_p11_key_kind kind, const struct kg_key_block_in *kb, uint32_t *alg)
{
    if (kind == KG_P11_KEY_RSA_PUBLIC || kind == KG_P11_KEY_DSA_PUBLIC) {
        *alg = kind == KG_P11_KEY_RSA_PUBLIC ? KG_ALG_RSA : KG_ALG_DSA;
        KG_ENSURE(!kb->has_algorithm || kb->algorithm == *alg, KG_ERR_INVALID_FIELD);
        return KG_RESULT_OK;
    }
    *alg = kb->has_algorithm ? kb->algorithm : KG_ALG_EC;
    KG_ENSURE(*alg == KG_ALG_EC || *alg == KG_ALG_ECDSA, KG_ERR_INVALID_FIELD);
    return KG_RESULT_OK;
}

/* A public key's DER or Transparent structure parsed into obj (blob,
 * algorithm, length). */
static kg_result kg_op_register_public_parse(const struct kg_key_block_in *kb, struct kg_object *obj)
{
    enum kg_p11_key_kind kind;
    uint32_t bits = 0;

    if (kb->pkey.transparent) {
        KG_GUARD(kg_op_pkey_register_public(&kb->pkey, obj));
        KG_ENSURE(!kb->has_algorithm || kb->algorithm == obj->algorithm, KG_ERR_INVALID_FIELD);
        return KG_RESULT_OK;
    }

    KG_GUARD(kg_p11_public_import(kb->material, kb->material_len,
                                  kb->format == KG_FORMAT_PKCS1 ? KG_P11_PUBLIC_PKCS1 : KG_P11_PUBLIC_SPKI,
                                  &obj->blob, &kind, &bits));
    KG_GUARD(kg_op_public_algorithm(kind, kb, &obj->algorithm));
    obj->length = (int32_t)bits;
    obj->storage = KG_P11_STORED_PUBLIC;
    return KG_RESULT_OK;
}

static bool kg_op_register_is_data(struct kg_ttlv_reader in);

kg_result kg_op_register_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    struct kg_template *t = NULL;
    struct kg_object *obj = NULL;
    struct kg_key_block_in kb;
    kg_result rc = KG_RESULT_OK;

    (void)ctx;
    if (kg_op_register_is_data(in)) {
        return kg_op_register_data_facts(&in, req); /* kg_op_register_data.c */
    }
    KG_GUARD(kg_op_template_policy_facts(&in, req, &t));
    KG_GOTO_ENSURE(rc, kg_op_register_takes(req->object_type), KG_ERR_UNSUPPORTED_OBJECT);
    /* The key block says what is being registered, whatever the template
     * claims: policy judges the key itself. */
    KG_GOTO_GUARD(rc, kg_op_read_key_block(&in, req->object_type, &kb));
    if (kb.has_algorithm) {
        req->algorithm = kb.algorithm;
    }
    if (req->object_type == KG_OBJ_PRIVATE_KEY) {
        struct kg_p11_parts parts;
        uint32_t algorithm = 0;

        KG_GOTO_GUARD(rc, kg_op_pkey_private_facts(&kb.pkey, &parts, &algorithm, &req->length));
        req->algorithm = algorithm;
    } else if (req->object_type == KG_OBJ_PUBLIC_KEY) {
        obj = calloc(1, sizeof(*obj));
        KG_GOTO_ENSURE(rc, obj != NULL, KG_ERR_NOMEM);
        KG_GOTO_GUARD(rc, kg_op_register_public_parse(&kb, obj));
        req->algorithm = obj->algorithm;
        req->length = obj->length;
    } else if (kb.wrapped) {
        /* Checked against the unwrapped key by the handler. */
        req->length = kb.has_length ? kb.length : 0;
    } else {
        req->length = (int32_t)kb.material_len * 8;
    }
out:
    free(obj);
    free(t);
    return rc;
}

/* A wrapped symmetric key: unwrapped and re-wrapped under the MWK in the HSM. */
static kg_result kg_op_register_wrapped(struct kg_op_ctx *ctx, const struct kg_key_block_in *kb, struct kg_object *obj)
{
    struct kg_object *kek = NULL;
    struct kg_p11_key_ref ref;
    struct kg_op_wrap_params used;
    enum kg_p11_wrap_mech mech;
    uint32_t key_bytes = 0;
    kg_result rc = KG_RESULT_OK;

    if (!kb->has_length) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("a wrapped Key Block needs its Cryptographic Length");
        return KG_RESULT_ERROR;
    }
    kek = calloc(1, sizeof(*kek));
    KG_ENSURE(kek != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_op_wrap_prepare(ctx, &kb->wrap, KG_USAGE_UNWRAP_KEY, true, kek, &mech, &used));
    KG_GOTO_GUARD(rc, kg_op_key_ref(kek, &ref));
    KG_GOTO_GUARD(rc, kg_p11_unwrap_key(ctx->gw->p11, &ref, mech, KG_P11_KEY_AES, kb->material, kb->material_len,
                                        &obj->blob, &key_bytes));
    if ((int64_t)key_bytes * 8 != (int64_t)kb->length) {
        /* The policy decided on the length the client declared. */
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("unwrapped key has %u bits, Cryptographic Length says %d", key_bytes * 8, kb->length);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    obj->length = kb->length;
    obj->storage = KG_P11_STORED_WRAPPED;
    /* Kept for Get with Key Wrap Type As Registered: the key, parameters
     * and Encoding Option actually used (an omitted option stays omitted). */
    KG_GOTO_GUARD(rc, kg_op_wrap_encode_registered(kek->uid, &used, kb->wrap.has_encoding ? kb->wrap.encoding : 0,
                                                   obj->registered_wrapping, sizeof(obj->registered_wrapping),
                                                   &obj->registered_wrapping_len));
    ctx->audit_note = "wrapped import";
out:
    free(kek);
    return rc;
}

/*
 * What kind of plaintext secret key is being registered: AES (128/192/256)
 * or HMAC-SHA256/384/512 of a multiple of 8 bits from the hash's output
 * length to 512, the same rule as Create (kg_op_create.c): SoftHSM refuses
 * to MAC with a key shorter than the hash, so a shorter one is unusable.
 */
static kg_result kg_op_register_kind(const struct kg_object *obj, enum kg_p11_key_kind *kind)
{
    if (obj->algorithm == KG_ALG_3DES) {
        *kind = KG_P11_KEY_DES3; /* 24 bytes, checked on import */
        return KG_RESULT_OK;
    }
    if (obj->algorithm == KG_ALG_HMAC_SHA256 || obj->algorithm == KG_ALG_HMAC_SHA384 ||
        obj->algorithm == KG_ALG_HMAC_SHA512) {
        int32_t floor = obj->algorithm == KG_ALG_HMAC_SHA256 ? 256 : (obj->algorithm == KG_ALG_HMAC_SHA384 ? 384 : 512);

        if (obj->length < floor || obj->length > 512 || obj->length % 8 != 0) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("this HMAC key is a multiple of 8 bits from %d to 512 long", (int)floor);
            return KG_RESULT_ERROR;
        }
        *kind = KG_P11_KEY_HMAC;
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_op_check_aes(obj->algorithm, obj->length));
    *kind = KG_P11_KEY_AES;
    return KG_RESULT_OK;
}

/*
 * Hand plaintext `key` (the caller owns and wipes it) to the HSM. A group
 * with residency hsm gets a token object named by obj->uid, never
 * extractable, with the use flags of the key's usage mask; other groups
 * get it wrapped under the MWK into obj->blob.
 */
static kg_result kg_op_register_material(struct kg_op_ctx *ctx, enum kg_p11_key_kind kind,
                                         const struct kg_secret *key, struct kg_object *obj)
{
    if (ctx->group->residency == KG_RESIDENCY_HSM) {
        KG_GUARD(kg_op_check_undoable(ctx));
        KG_GUARD(kg_p11_resident_import(ctx->gw->p11, kind, key, kg_p11_uses_of_mask((uint32_t)obj->usage_mask),
                                        obj->uid));
        obj->storage = KG_P11_STORED_RESIDENT;
        ctx->audit_note = "resident key";
        return KG_RESULT_OK;
    }
    obj->storage = KG_P11_STORED_WRAPPED;
    return kg_p11_import_secret(ctx->gw->p11, kind, key, &obj->blob);
}

/*
 * The Digest of a key registered as a Transparent Symmetric Key is over
 * that form (KMIP 1.4 section 3.17: the digest of the Key Material in its
 * Key Format Type), i.e. over the TTLV Key Material structure as it came:
 * hashed here from the locked request buffer (the HSM's digest is of the
 * raw bytes). SHA256() cleanses its stack context.
 */
static kg_result kg_op_register_digest(const struct kg_key_block_in *kb, struct kg_object *obj)
{
    if (kb->format != KG_FORMAT_TRANSPARENT_SYMMETRIC || obj->storage != KG_P11_STORED_WRAPPED) {
        return KG_RESULT_OK;
    }
    KG_ENSURE(kb->material_raw != NULL && SHA256(kb->material_raw, kb->material_raw_len, obj->blob.digest) != NULL,
              KG_ERR_INTERNAL);
    obj->blob.has_digest = true;
    return KG_RESULT_OK;
}

/*
 * A private key: what the Key Block and the template declare is checked
 * against the key itself before the HSM sees it (the policy decided on
 * what was declared), then it is imported and stored wrapped.
 */
static kg_result kg_op_register_private(struct kg_op_ctx *ctx, const struct kg_key_block_in *kb,
                                        const struct kg_template *t, struct kg_object *obj)
{
    struct kg_p11_parts parts;
    uint32_t algorithm = 0;
    int32_t bits = 0;

    if (ctx->group->residency == KG_RESIDENCY_HSM) {
        /* Registered private keys are stored wrapped, and a group with
         * residency hsm was promised its keys never leave the HSM. */
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("group '%s' keeps its keys in the HSM (residency hsm); a registered private key would be "
                        "stored wrapped", ctx->group->name);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_op_pkey_private_facts(&kb->pkey, &parts, &algorithm, &bits));
    KG_GUARD(kg_op_pkey_check_declared(algorithm, bits, kb->has_algorithm, kb->algorithm, kb->has_length,
                                       kb->length));
    KG_GUARD(kg_op_pkey_check_declared(algorithm, bits, t->has_algorithm, t->algorithm, t->has_length, t->length));
    obj->algorithm = kb->has_algorithm ? kb->algorithm : (t->has_algorithm ? t->algorithm : 0);
    return kg_op_pkey_register_private(ctx, &kb->pkey, obj);
}

/* The store refused a resident key: remove its token object, or it is an
 * orphan nobody can reach through KMIP. The store's error stays the one
 * reported. */
static void kg_op_register_drop_resident(struct kg_op_ctx *ctx, enum kg_p11_key_kind kind,
                                         const struct kg_object *obj)
{
    struct kg_p11_key_ref ref = { .kind = kind, .storage = KG_P11_STORED_RESIDENT, .resident_id = obj->uid };
    int err = kg_errno();

    if (kg_failed(kg_p11_resident_destroy(ctx->gw->p11, &ref))) {
        kg_error_set(err, __FILE__, __LINE__);
        kg_error_detail("store failed; resident token object %s could not be removed", obj->uid);
    } else {
        kg_error_set(err, __FILE__, __LINE__);
    }
}

/* Does the payload register Secret Data, an Opaque Object or a
 * Certificate? Peeks at its Object Type on a copy of the reader. */
static bool kg_op_register_is_data(struct kg_ttlv_reader in)
{
    struct kg_ttlv_item it;
    uint32_t object_type = 0;

    if (kg_failed(kg_ttlv_read_expect(&in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it)) ||
        kg_failed(kg_ttlv_get_enum(&it, &object_type))) {
        kg_error_clear(); /* the handler reads it again and reports it */
        return false;
    }
    return kg_op_is_data_object(object_type);
}

kg_result kg_op_register(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    if (kg_op_register_is_data(*in)) {
        return kg_op_register_data(ctx, in, out); /* kg_op_register_data.c */
    }
    struct kg_template *t = NULL;
    struct kg_object *obj = NULL;
    struct kg_secret *key = NULL;
    struct kg_key_block_in kb;
    enum kg_p11_key_kind kind = KG_P11_KEY_AES;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_op_register_read(in, &t, &obj, &kb));
    obj->usage_mask = t->usage_mask;
    obj->key_format = kb.wrapped ? 0 : kb.format;
    if (obj->object_type == KG_OBJ_PRIVATE_KEY) {
        KG_GOTO_GUARD(rc, kg_op_register_private(ctx, &kb, t, obj));
    } else if (obj->object_type == KG_OBJ_PUBLIC_KEY) {
        KG_GOTO_GUARD(rc, kg_op_register_public_parse(&kb, obj));
        KG_GOTO_ENSURE(rc, !kb.has_length || kb.length == obj->length, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, !t->has_length || t->length == obj->length, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, !t->has_algorithm || t->algorithm == obj->algorithm, KG_ERR_INVALID_FIELD);
        ctx->audit_note = "public key";
    } else {
        obj->algorithm = kb.has_algorithm ? kb.algorithm : t->algorithm;
        obj->length = kb.wrapped ? kb.length : (int32_t)kb.material_len * 8;
        if (obj->algorithm == KG_ALG_3DES && obj->length == 192 &&
            ((kb.has_length && kb.length == 168) || (t->has_length && t->length == 168))) {
            obj->length = 168; /* the same 24 bytes, counted without parity */
        }
        KG_GOTO_ENSURE(rc, !kb.has_length || kb.length == obj->length, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, !t->has_length || t->length == obj->length, KG_ERR_INVALID_FIELD);
        KG_GOTO_ENSURE(rc, !t->has_algorithm || t->algorithm == obj->algorithm, KG_ERR_INVALID_FIELD);
        if (kb.wrapped) {
            KG_GOTO_GUARD(rc, kg_op_check_aes(obj->algorithm, obj->length));
            KG_GOTO_GUARD(rc, kg_op_register_wrapped(ctx, &kb, obj));
        } else {
            KG_GOTO_GUARD(rc, kg_op_register_kind(obj, &kind));
            KG_GOTO_GUARD(rc, kg_secret_from(kb.material, kb.material_len, &key));
            KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
            KG_GOTO_GUARD(rc, kg_op_register_material(ctx, kind, key, obj));
            KG_GOTO_GUARD(rc, kg_op_register_digest(&kb, obj));
        }
    }
    if (obj->uid[0] == '\0') {
        KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
    }
    rc = kg_op_store_new_object(ctx, obj, t);
    if (kg_failed(rc) && obj->storage == KG_P11_STORED_RESIDENT) {
        kg_op_register_drop_resident(ctx, kind, obj);
        goto out;
    }
    KG_GOTO_GUARD(rc, rc);
    memcpy(ctx->audit_uid, obj->uid, sizeof(obj->uid));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, KG_UID_LEN));
out:
    kg_secret_free(key);
    free(t);
    free(obj);
    return rc;
}
