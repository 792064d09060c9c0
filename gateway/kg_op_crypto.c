/*
 * kg_op_crypto.c - Encrypt, Decrypt, Sign, Signature Verify, MAC and MAC
 * Verify (KMIP 1.4 sections 4.29 to 4.34), done inside the HSM.
 *
 * The dispatcher has resolved the key and policy has allowed the operation;
 * what is left here is the key's own say: its Cryptographic Usage Mask
 * (a missing bit is Permission Denied: KMIP 1.4 has no more precise reason)
 * and its state (section 3.22: only an Active key protects new data; a
 * Deactivated or Compromised one may still process, i.e. decrypt and
 * verify). Single-part only: Correlation Value, Init and Final Indicator
 * answer Feature Not Supported.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_crypto.h"

/* What one request's Cryptographic Parameters say (all optional). */
struct kg_crypto_params {
    bool has_mode, has_padding, has_hash, has_dsa, has_alg, has_random_iv, has_iv_length, has_tag_length;
    uint32_t mode, padding, hash, dsa, alg;
    bool random_iv;
    int32_t iv_length;  /* bits */
    int32_t tag_length; /* bytes */
};

/* The request items every crypto operation may carry, borrowed. */
struct kg_crypto_in {
    struct kg_crypto_params params;
    bool has_params;
    const uint8_t *data, *iv, *aad, *tag, *mac, *sig;
    uint32_t data_len, iv_len, aad_len, tag_len, mac_len, sig_len;
    bool has_data, has_iv, has_aad, has_tag, has_mac, has_sig;
};

static kg_result kg_crypto_fail(int err, const char *what)
{
    kg_error_set(err, __FILE__, __LINE__);
    kg_error_detail("%s", what);
    return KG_RESULT_ERROR;
}

static kg_result kg_crypto_read_params(struct kg_ttlv_reader *parent, const struct kg_ttlv_item *st,
                                       struct kg_crypto_params *p)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    memset(p, 0, sizeof(*p));
    KG_GUARD(kg_ttlv_child(parent, st, &r));
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &it));
#define KG_CRYPTO_ONCE(flag) KG_ENSURE(!(flag), KG_ERR_INVALID_FIELD); (flag) = true
        switch (it.tag) {
        case KG_TAG_BLOCK_CIPHER_MODE:
            KG_CRYPTO_ONCE(p->has_mode);
            KG_GUARD(kg_ttlv_get_enum(&it, &p->mode));
            break;
        case KG_TAG_PADDING_METHOD:
            KG_CRYPTO_ONCE(p->has_padding);
            KG_GUARD(kg_ttlv_get_enum(&it, &p->padding));
            break;
        case KG_TAG_HASHING_ALGORITHM:
            KG_CRYPTO_ONCE(p->has_hash);
            KG_GUARD(kg_ttlv_get_enum(&it, &p->hash));
            break;
        case KG_TAG_DIGITAL_SIGNATURE_ALGORITHM:
            KG_CRYPTO_ONCE(p->has_dsa);
            KG_GUARD(kg_ttlv_get_enum(&it, &p->dsa));
            break;
        case KG_TAG_CRYPTOGRAPHIC_ALGORITHM:
            KG_CRYPTO_ONCE(p->has_alg);
            KG_GUARD(kg_ttlv_get_enum(&it, &p->alg));
            break;
        case KG_TAG_RANDOM_IV:
            KG_CRYPTO_ONCE(p->has_random_iv);
            KG_GUARD(kg_ttlv_get_bool(&it, &p->random_iv));
            break;
        case KG_TAG_IV_LENGTH:
            KG_CRYPTO_ONCE(p->has_iv_length);
            KG_GUARD(kg_ttlv_get_int(&it, &p->iv_length));
            break;
        case KG_TAG_TAG_LENGTH:
            KG_CRYPTO_ONCE(p->has_tag_length);
            KG_GUARD(kg_ttlv_get_int(&it, &p->tag_length));
            break;
        case KG_TAG_KEY_ROLE_TYPE:
            break; /* TR-31 bookkeeping; changes nothing we compute */
        default:
            /* Salt Length, Mask Generator, counters...: we cannot honour
             * them, and ignoring them would compute something else. */
            kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
            kg_error_detail("Cryptographic Parameters item 0x%06x is not supported", it.tag);
            return KG_RESULT_ERROR;
        }
#undef KG_CRYPTO_ONCE
    }
    return KG_RESULT_OK;
}

/* kg_store_each_attr callback: keep the first (lowest index) value. */
struct kg_crypto_stored {
    bool found;
    uint32_t len;
    uint8_t value[KG_ATTR_VALUE_MAX];
};

static bool kg_crypto_first_attr(void *arg, const struct kg_attr *attr)
{
    struct kg_crypto_stored *st = arg;

    if (attr->value_len <= sizeof(st->value)) {
        memcpy(st->value, attr->value, attr->value_len);
        st->len = attr->value_len;
        st->found = true;
    }
    return false;
}

/*
 * No Cryptographic Parameters in the request: KMIP says use the key's
 * Cryptographic Parameters attribute with the lowest Attribute Index.
 */
static kg_result kg_crypto_stored_params(struct kg_op_ctx *ctx, struct kg_crypto_in *in)
{
    struct kg_crypto_stored *st = calloc(1, sizeof(*st));
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(st != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_store_each_attr(ctx->store, ctx->object.uid, "Cryptographic Parameters",
                                         kg_crypto_first_attr, st));
    if (st->found) {
        kg_ttlv_budget_init(&budget, NULL);
        KG_GOTO_GUARD(rc, kg_ttlv_reader_init(&r, st->value, st->len, &budget));
        KG_GOTO_GUARD(rc, kg_ttlv_read(&r, &it));
        KG_GOTO_ENSURE(rc, it.type == KG_TTLV_STRUCTURE, KG_ERR_INTERNAL);
        KG_GOTO_GUARD(rc, kg_crypto_read_params(&r, &it, &in->params));
        in->has_params = true;
    }
out:
    free(st);
    return rc;
}

static kg_result kg_crypto_bytes(const struct kg_ttlv_item *it, bool *has, const uint8_t **p, uint32_t *len)
{
    KG_ENSURE(!*has, KG_ERR_INVALID_FIELD);
    KG_ENSURE(it->type == KG_TTLV_BYTE_STRING, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_get_bytes(it, p, len));
    *has = true;
    return KG_RESULT_OK;
}

/* Read the whole payload after the Unique Identifier. */
static kg_result kg_crypto_read(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_crypto_in *in)
{
    struct kg_ttlv_item it;

    memset(in, 0, sizeof(*in));
    KG_GUARD(kg_op_skip_uid(payload));
    while (!kg_ttlv_reader_done(payload)) {
        KG_GUARD(kg_ttlv_read(payload, &it));
        switch (it.tag) {
        case KG_TAG_CRYPTOGRAPHIC_PARAMETERS:
            KG_ENSURE(!in->has_params && it.type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_crypto_read_params(payload, &it, &in->params));
            in->has_params = true;
            break;
        case KG_TAG_DATA:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_data, &in->data, &in->data_len));
            break;
        case KG_TAG_IV_COUNTER_NONCE:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_iv, &in->iv, &in->iv_len));
            break;
        case KG_TAG_AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_aad, &in->aad, &in->aad_len));
            break;
        case KG_TAG_AUTHENTICATED_ENCRYPTION_TAG:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_tag, &in->tag, &in->tag_len));
            break;
        case KG_TAG_MAC_DATA:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_mac, &in->mac, &in->mac_len));
            break;
        case KG_TAG_SIGNATURE_DATA:
            KG_GUARD(kg_crypto_bytes(&it, &in->has_sig, &in->sig, &in->sig_len));
            break;
        case KG_TAG_CORRELATION_VALUE:
        case KG_TAG_INIT_INDICATOR:
        case KG_TAG_FINAL_INDICATOR:
            return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "multi-part (streaming) cryptography is not supported");
        case KG_TAG_DIGESTED_DATA:
            return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "Digested Data is not supported; send Data");
        default:
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("unexpected item 0x%06x in the request payload", it.tag);
            return KG_RESULT_ERROR;
        }
    }
    if (in->has_data && in->data_len > KG_P11_CRYPTO_MAX_DATA) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Data is limited to 65536 bytes per request");
    }
    if (!in->has_params) {
        KG_GUARD(kg_crypto_stored_params(ctx, in));
    }
    return KG_RESULT_OK;
}

/*
 * The key's own checks: usage mask bit `usage`, and a state that allows
 * protecting (`protect`) or only processing data.
 */
static kg_result kg_crypto_key_ok(const struct kg_op_ctx *ctx, uint32_t usage, bool protect, const char *what,
                                  struct kg_p11_key_ref *ref)
{
    uint32_t state = ctx->object.state;
    bool ok_state = state == KG_STATE_ACTIVE ||
                    (!protect && (state == KG_STATE_DEACTIVATED || state == KG_STATE_COMPROMISED));

    if (!((uint32_t)ctx->object.usage_mask & usage)) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("the key's Cryptographic Usage Mask does not allow %s", what);
        return KG_RESULT_ERROR;
    }
    if (!ok_state) {
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("%s needs an Active key%s", what, protect ? "" : " (or a Deactivated or Compromised one)");
        return KG_RESULT_ERROR;
    }
    return kg_op_key_ref(&ctx->object, ref);
}

static kg_result kg_crypto_need(bool has, const char *what)
{
    if (!has) {
        return kg_crypto_fail(KG_ERR_MISSING_FIELD, what);
    }
    return KG_RESULT_OK;
}

/* Block Cipher Mode and Padding Method -> the HSM cipher, plus IV, AAD and
 * tag length choices (Tag Length bytes, IV Length bits: KMIP 1.4 3.6). */
static kg_result kg_crypto_cipher(const struct kg_crypto_in *in, bool encrypt, struct kg_p11_cipher_params *cp)
{
    const struct kg_crypto_params *p = &in->params;

    memset(cp, 0, sizeof(*cp));
    KG_GUARD(kg_crypto_need(in->has_params && p->has_mode, "Cryptographic Parameters with a Block Cipher Mode are needed"));
    if (p->has_alg && p->alg != KG_ALG_AES) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "the key is an AES key");
    }
    if (p->mode == KG_MODE_GCM) {
        KG_ENSURE(!p->has_padding || p->padding == KG_PADDING_NONE, KG_ERR_INVALID_FIELD);
        cp->cipher = KG_P11_CIPHER_AES_GCM;
        if (p->has_tag_length) {
            KG_ENSURE(p->tag_length > 0, KG_ERR_INVALID_FIELD);
            cp->tag_len = (size_t)p->tag_length;
        }
    } else if (p->mode == KG_MODE_CBC) {
        if (p->has_padding && p->padding != KG_PADDING_PKCS5) {
            return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "CBC is supported with PKCS5 padding only");
        }
        cp->cipher = KG_P11_CIPHER_AES_CBC_PAD;
    } else {
        return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "Block Cipher Mode: GCM or CBC only");
    }
    if (in->has_aad && cp->cipher != KG_P11_CIPHER_AES_GCM) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Authenticated Encryption Additional Data needs GCM");
    }
    cp->aad = in->aad;
    cp->adata_len = in->aad_len;
    if (in->has_iv) {
        if (encrypt && p->has_random_iv && p->random_iv) {
            return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Random IV and an IV/Counter/Nonce given together");
        }
        cp->iv = in->iv;
        cp->nonce_len = in->iv_len;
    } else if (encrypt) {
        /* KMIP 1.4 4.29: the IV may be omitted when Random IV asks the
         * server for one. */
        KG_GUARD(kg_crypto_need(p->has_random_iv && p->random_iv, "IV/Counter/Nonce or Random IV is needed"));
        if (p->has_iv_length) {
            if (p->iv_length <= 0 || p->iv_length % 8 != 0 || p->iv_length / 8 > (int32_t)KG_P11_CRYPTO_MAX_IV) {
                return kg_crypto_fail(KG_ERR_INVALID_FIELD, "IV Length must be a whole number of bytes, at most 512 bits");
            }
            cp->nonce_len = (size_t)p->iv_length / 8;
        }
    } else {
        KG_GUARD(kg_crypto_need(false, "Decrypt needs the IV/Counter/Nonce"));
    }
    return KG_RESULT_OK;
}

kg_result kg_op_encrypt(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_cipher_params cp;
    struct kg_p11_key_ref ref;
    uint8_t tag[KG_P11_CRYPTO_GCM_TAG_MAX];
    uint8_t iv[KG_P11_CRYPTO_MAX_IV];
    size_t out_len = 0, tag_len = 0, iv_len = 0;
    uint8_t *buf = NULL;
    kg_result rc = KG_RESULT_OK;

    ctx->audit_note = "encrypt";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data, "Encrypt needs Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_ENCRYPT, true, "Encrypt", &ref));
    KG_GUARD(kg_crypto_cipher(&in, true, &cp));
    buf = malloc((size_t)in.data_len + KG_P11_CRYPTO_OVERHEAD);
    KG_ENSURE(buf != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_p11_encrypt(ctx->gw->p11, &ref, &cp, in.data, in.data_len, buf,
                                     (size_t)in.data_len + KG_P11_CRYPTO_OVERHEAD, &out_len, tag, &tag_len, iv,
                                     &iv_len));
    KG_GOTO_GUARD(rc, kg_op_write_uid(ctx, out));
    KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_DATA, buf, (uint32_t)out_len));
    if (iv_len != 0) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_IV_COUNTER_NONCE, iv, (uint32_t)iv_len));
    }
    if (tag_len != 0) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_AUTHENTICATED_ENCRYPTION_TAG, tag, (uint32_t)tag_len));
    }
out:
    free(buf);
    return rc;
}

kg_result kg_op_decrypt(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_cipher_params cp;
    struct kg_p11_key_ref ref;
    size_t out_len = 0;
    size_t cap;
    uint8_t *buf = NULL;
    kg_result rc = KG_RESULT_OK;

    ctx->audit_note = "decrypt";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data, "Decrypt needs Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_DECRYPT, false, "Decrypt", &ref));
    KG_GUARD(kg_crypto_cipher(&in, false, &cp));
    if (cp.cipher == KG_P11_CIPHER_AES_GCM) {
        KG_GUARD(kg_crypto_need(in.has_tag, "GCM Decrypt needs the Authenticated Encryption Tag"));
    } else if (in.has_tag) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Authenticated Encryption Tag needs GCM");
    }
    cap = (size_t)in.data_len + KG_P11_CRYPTO_OVERHEAD;
    buf = malloc(cap);
    KG_ENSURE(buf != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_p11_decrypt(ctx->gw->p11, &ref, &cp, in.data, in.data_len, in.tag, in.tag_len, buf, cap,
                                     &out_len));
    KG_GOTO_GUARD(rc, kg_op_write_uid(ctx, out));
    KG_GOTO_GUARD(rc, kg_ttlv_write_bytes(out, KG_TAG_DATA, buf, (uint32_t)out_len));
out:
    /* The plaintext was the client's data: wipe our copy all the same. */
    if (buf != NULL) {
        OPENSSL_cleanse(buf, cap);
    }
    free(buf);
    return rc;
}

/* Hashing Algorithm enumeration -> the HSM's hash. */
static kg_result kg_crypto_hash(uint32_t h, enum kg_p11_hash *out)
{
    switch (h) {
    case KG_HASH_SHA1:
        *out = KG_P11_HASH_SHA1;
        return KG_RESULT_OK;
    case KG_HASH_SHA224:
        *out = KG_P11_HASH_SHA224;
        return KG_RESULT_OK;
    case KG_HASH_SHA256:
        *out = KG_P11_HASH_SHA256;
        return KG_RESULT_OK;
    case KG_HASH_SHA384:
        *out = KG_P11_HASH_SHA384;
        return KG_RESULT_OK;
    case KG_HASH_SHA512:
        *out = KG_P11_HASH_SHA512;
        return KG_RESULT_OK;
    default:
        return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "Hashing Algorithm: SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512");
    }
}

/* The HMAC hash is the key's algorithm; parameters may only confirm it. */
static kg_result kg_crypto_mac_hash(const struct kg_op_ctx *ctx, const struct kg_crypto_in *in, enum kg_p11_hash *out)
{
    static const uint32_t hashes[] = { KG_HASH_SHA1, KG_HASH_SHA224, KG_HASH_SHA256, KG_HASH_SHA384, KG_HASH_SHA512 };
    uint32_t alg = ctx->object.algorithm;

    if (alg < KG_ALG_HMAC_SHA1 || alg > KG_ALG_HMAC_SHA512) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "MAC needs an HMAC key");
    }
    if (in->has_params && in->params.has_alg && in->params.alg != alg) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Cryptographic Algorithm differs from the key's");
    }
    if (in->has_params && in->params.has_hash && in->params.hash != hashes[alg - KG_ALG_HMAC_SHA1]) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Hashing Algorithm differs from the key's HMAC hash");
    }
    return kg_crypto_hash(hashes[alg - KG_ALG_HMAC_SHA1], out);
}

kg_result kg_op_mac(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_key_ref ref;
    enum kg_p11_hash hash;
    uint8_t mac[KG_P11_CRYPTO_MAX_MAC];
    size_t mac_len = 0;

    ctx->audit_note = "mac";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data, "MAC needs Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_MAC_GENERATE, true, "MAC Generate", &ref));
    KG_GUARD(kg_crypto_mac_hash(ctx, &in, &hash));
    KG_GUARD(kg_p11_mac(ctx->gw->p11, &ref, hash, in.data, in.data_len, mac, &mac_len));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_MAC_DATA, mac, (uint32_t)mac_len));
    return KG_RESULT_OK;
}

kg_result kg_op_mac_verify(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_key_ref ref;
    enum kg_p11_hash hash;
    bool valid = false;

    ctx->audit_note = "mac verify";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data && in.has_mac, "MAC Verify needs Data and MAC Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_MAC_VERIFY, false, "MAC Verify", &ref));
    KG_GUARD(kg_crypto_mac_hash(ctx, &in, &hash));
    KG_GUARD(kg_p11_mac_verify(ctx->gw->p11, &ref, hash, in.data, in.data_len, in.mac, in.mac_len, &valid));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_VALIDITY_INDICATOR, valid ? KG_VALIDITY_VALID : KG_VALIDITY_INVALID));
    return KG_RESULT_OK;
}

/*
 * The signature scheme: a Digital Signature Algorithm, or Cryptographic
 * Algorithm + Hashing Algorithm (+ Padding Method PSS or PKCS1 v1.5 for
 * RSA), checked against the key's algorithm.
 */
static kg_result kg_crypto_sig_scheme(const struct kg_op_ctx *ctx, const struct kg_crypto_in *in,
                                      enum kg_p11_sig *scheme, enum kg_p11_hash *hash)
{
    const struct kg_crypto_params *p = &in->params;
    bool key_rsa = ctx->object.algorithm == KG_ALG_RSA;
    bool key_ec = ctx->object.algorithm == KG_ALG_EC || ctx->object.algorithm == KG_ALG_ECDSA;
    uint32_t hash_alg = 0;

    KG_GUARD(kg_crypto_need(in->has_params && (p->has_dsa || p->has_hash),
                            "Cryptographic Parameters with a Digital Signature Algorithm or a Hashing Algorithm are needed"));
    if (p->has_dsa) {
        if (p->dsa >= KG_DSA_SHA1_RSA && p->dsa <= KG_DSA_SHA512_RSA) {
            *scheme = KG_P11_SIG_RSA_PKCS1;
            hash_alg = KG_HASH_SHA1 + (p->dsa - KG_DSA_SHA1_RSA);
        } else if (p->dsa >= KG_DSA_ECDSA_SHA1 && p->dsa <= KG_DSA_ECDSA_SHA512) {
            *scheme = KG_P11_SIG_ECDSA;
            hash_alg = KG_HASH_SHA1 + (p->dsa - KG_DSA_ECDSA_SHA1);
        } else if (p->dsa == KG_DSA_RSASSA_PSS) {
            *scheme = KG_P11_SIG_RSA_PSS;
            KG_GUARD(kg_crypto_need(p->has_hash, "RSASSA-PSS needs a Hashing Algorithm"));
        } else {
            return kg_crypto_fail(KG_ERR_UNSUPPORTED_FEATURE, "unsupported Digital Signature Algorithm");
        }
        if (p->has_hash) {
            KG_ENSURE(hash_alg == 0 || hash_alg == p->hash, KG_ERR_INVALID_FIELD);
            hash_alg = p->hash;
        }
    } else {
        hash_alg = p->hash;
        if (key_rsa) {
            if (p->has_padding && p->padding == KG_PADDING_PSS) {
                *scheme = KG_P11_SIG_RSA_PSS;
            } else if (p->has_padding && p->padding == KG_PADDING_PKCS1_V15) {
                *scheme = KG_P11_SIG_RSA_PKCS1;
            } else {
                return kg_crypto_fail(KG_ERR_MISSING_FIELD, "RSA signatures need Padding Method PSS or PKCS1 v1.5");
            }
        } else {
            *scheme = KG_P11_SIG_ECDSA;
        }
    }
    if (p->has_alg && p->alg != ctx->object.algorithm &&
        !(key_ec && (p->alg == KG_ALG_EC || p->alg == KG_ALG_ECDSA))) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "Cryptographic Algorithm differs from the key's");
    }
    if ((*scheme == KG_P11_SIG_ECDSA && !key_ec) || (*scheme != KG_P11_SIG_ECDSA && !key_rsa)) {
        return kg_crypto_fail(KG_ERR_INVALID_FIELD, "the signature algorithm does not fit the key");
    }
    return kg_crypto_hash(hash_alg, hash);
}

kg_result kg_op_sign(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_key_ref ref;
    enum kg_p11_sig scheme;
    enum kg_p11_hash hash;
    uint8_t sig[KG_P11_CRYPTO_MAX_SIG];
    size_t sig_len = 0;

    ctx->audit_note = "sign";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data, "Sign needs Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_SIGN, true, "Sign", &ref));
    KG_GUARD(kg_crypto_sig_scheme(ctx, &in, &scheme, &hash));
    KG_GUARD(kg_p11_sign(ctx->gw->p11, &ref, scheme, hash, in.data, in.data_len, sig, &sig_len));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_SIGNATURE_DATA, sig, (uint32_t)sig_len));
    return KG_RESULT_OK;
}

kg_result kg_op_signature_verify(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload, struct kg_ttlv_writer *out)
{
    struct kg_crypto_in in;
    struct kg_p11_key_ref ref;
    enum kg_p11_sig scheme;
    enum kg_p11_hash hash;
    bool valid = false;

    ctx->audit_note = "signature verify";
    KG_GUARD(kg_crypto_read(ctx, payload, &in));
    KG_GUARD(kg_crypto_need(in.has_data && in.has_sig, "Signature Verify needs Data and Signature Data"));
    KG_GUARD(kg_crypto_key_ok(ctx, KG_USAGE_VERIFY, false, "Verify", &ref));
    KG_GUARD(kg_crypto_sig_scheme(ctx, &in, &scheme, &hash));
    KG_GUARD(kg_p11_verify(ctx->gw->p11, &ref, scheme, hash, in.data, in.data_len, in.sig, in.sig_len, &valid));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_VALIDITY_INDICATOR, valid ? KG_VALIDITY_VALID : KG_VALIDITY_INVALID));
    return KG_RESULT_OK;
}
