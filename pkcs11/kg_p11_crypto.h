/*
 * kg_p11_crypto.h - server-side cryptography with stored keys, and keys
 * that are born in the HSM (wrapped HMAC keys, resident token keys).
 *
 * Every function here takes a stored key as a kg_p11_key_ref and makes it
 * usable for exactly the one use it needs (kg_p11_key_load): a wrapped key
 * is unwrapped into a sensitive, non-extractable session object that is
 * destroyed before the call returns; a resident key is the token object
 * itself. The key never exists in the clear outside the HSM.
 *
 * The key's KMIP Cryptographic Usage Mask and the caller's policy are the
 * gateway's checks (gateway/kg_op_crypto.c); this layer only maps KMIP's
 * choices onto PKCS#11 mechanisms.
 *
 * Data buffers are the caller's: inputs are borrowed, outputs are written
 * into caller storage of the stated capacity. Plaintext given to or taken
 * from Encrypt/Decrypt is application data, not key material, so it is not
 * held in a kg_secret; a failed Decrypt leaves no byte of output behind.
 */
#ifndef KG_P11_CRYPTO_H
#define KG_P11_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_p11.h"
#include "kg_result.h"
#include "kg_secret.h"

/* Largest Data (or MAC/signature input) one request may carry. */
#define KG_P11_CRYPTO_MAX_DATA 65536u
/* Largest IV/nonce, AAD and tag we accept. */
#define KG_P11_CRYPTO_MAX_IV 64u
#define KG_P11_CRYPTO_MAX_AAD 65536u
#define KG_P11_CRYPTO_GCM_TAG_MAX 16u
/* Output slack a cipher may add to its input: CBC padding or a GCM tag. */
#define KG_P11_CRYPTO_OVERHEAD 32u
/* Largest MAC (SHA-512) and signature (RSA-8192 or DER ECDSA P-521). */
#define KG_P11_CRYPTO_MAX_MAC 64u
#define KG_P11_CRYPTO_MAX_SIG 1024u

enum kg_p11_cipher {
    KG_P11_CIPHER_AES_GCM = 1,  /* CKM_AES_GCM: IV 1..64 bytes (12 by default), tag 12..16 bytes */
    KG_P11_CIPHER_AES_CBC_PAD,  /* CKM_AES_CBC_PAD: PKCS#5 padding, IV 16 bytes */
};

enum kg_p11_hash {
    KG_P11_HASH_SHA1 = 1,
    KG_P11_HASH_SHA224,
    KG_P11_HASH_SHA256,
    KG_P11_HASH_SHA384,
    KG_P11_HASH_SHA512,
};

enum kg_p11_sig {
    KG_P11_SIG_RSA_PKCS1 = 1, /* RSASSA-PKCS1-v1_5, CKM_SHA*_RSA_PKCS */
    KG_P11_SIG_RSA_PSS,       /* RSASSA-PSS, MGF1 with the same hash, salt = hash length */
    KG_P11_SIG_ECDSA,         /* hash in OpenSSL, CKM_ECDSA; signature DER (X9.62 Ecdsa-Sig-Value) */
};

/* Cipher choices of one Encrypt or Decrypt, all borrowed from the request. */
struct kg_p11_cipher_params {
    enum kg_p11_cipher cipher;
    const uint8_t *iv; /* Decrypt: required; Encrypt: NULL to have the HSM draw one */
    size_t nonce_len;     /* Encrypt with iv NULL: the length to draw (0: 12 for GCM, 16 for CBC) */
    const uint8_t *aad; /* GCM only; may be NULL */
    size_t adata_len;
    size_t tag_len;     /* GCM only: 12..16 (0: 16) */
};

/*
 * Encrypt `in` (at most KG_P11_CRYPTO_MAX_DATA bytes) under stored AES key
 * `key` into `out` (capacity `out_cap`, at least in_len + 16). For GCM the
 * tag goes to `tag` (capacity KG_P11_CRYPTO_GCM_TAG_MAX), *tag_len gets its
 * length; for CBC *tag_len is 0. When params->iv is NULL the IV is drawn
 * from the HSM's RNG into `iv_out` (capacity KG_P11_CRYPTO_MAX_IV) and
 * *iv_out_len gets its length (else 0): the client must be told it.
 * Errors: KG_ERR_INVALID_FIELD (lengths, IV, tag length), KG_ERR_HSM_* .
 */
kg_result kg_p11_encrypt(struct kg_p11 *p11, const struct kg_p11_key_ref *key, const struct kg_p11_cipher_params *params,
                         const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len,
                         uint8_t *tag, size_t *tag_len, uint8_t *iv_out, size_t *iv_out_len) KG_WARN_UNUSED;

/*
 * Decrypt `in` with stored AES key `key` into `out` (capacity `out_cap`, at
 * least in_len). GCM needs `tag` (params->tag_len bytes, or tag_len when
 * params->tag_len is 0). Output is released only when the whole message
 * authenticated (GCM) or unpadded (CBC): a wrong tag, key, IV or padding is
 * a KG_ERR_T_HSM error (Cryptographic Failure: KG_ERR_HSM_UNWRAP for
 * CKR_ENCRYPTED_DATA_INVALID, KG_ERR_HSM for SoftHSM's CKR_GENERAL_ERROR on
 * a wrong GCM tag) with *out_len 0 and all of `out` wiped.
 */
kg_result kg_p11_decrypt(struct kg_p11 *p11, const struct kg_p11_key_ref *key, const struct kg_p11_cipher_params *params,
                         const uint8_t *in, size_t in_len, const uint8_t *tag, size_t tag_len, uint8_t *out,
                         size_t out_cap, size_t *out_len) KG_WARN_UNUSED;

/*
 * HMAC of `data` with stored HMAC key `key` and hash `hash` into `mac`
 * (capacity KG_P11_CRYPTO_MAX_MAC); *mac_len gets the length.
 */
kg_result kg_p11_mac(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_hash hash, const uint8_t *data,
                     size_t data_len, uint8_t *mac, size_t *mac_len) KG_WARN_UNUSED;

/*
 * Check `mac` over `data` in the HSM (C_Verify, constant time there).
 * *valid says whether it matched; a MAC of the wrong length is simply not
 * valid. Errors only when the check could not be made.
 */
kg_result kg_p11_mac_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_hash hash,
                            const uint8_t *data, size_t data_len, const uint8_t *mac, size_t mac_len,
                            bool *valid) KG_WARN_UNUSED;

/*
 * Sign `data` with stored private key `key` (RSA for the RSA schemes, EC for
 * ECDSA) into `sig` (capacity KG_P11_CRYPTO_MAX_SIG); *sig_len gets the
 * length. ECDSA signatures are DER, as KMIP clients (PyKMIP, OpenSSL)
 * expect: PKCS#11's r||s is converted here.
 */
kg_result kg_p11_sign(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_sig scheme,
                      enum kg_p11_hash hash, const uint8_t *data, size_t data_len, uint8_t *sig,
                      size_t *sig_len) KG_WARN_UNUSED;

/*
 * Verify `sig` over `data` with stored public key `key`. *valid says
 * whether it holds; a malformed signature is not valid (not an error).
 */
kg_result kg_p11_verify(struct kg_p11 *p11, const struct kg_p11_key_ref *key, enum kg_p11_sig scheme,
                        enum kg_p11_hash hash, const uint8_t *data, size_t data_len, const uint8_t *sig,
                        size_t sig_len, bool *valid) KG_WARN_UNUSED;

/* ---- kg_p11_resident.c: keys born in the HSM ----------------------------- */

/*
 * Generate a secret key of kind `kind` (KG_P11_KEY_AES: 128/192/256 bits;
 * KG_P11_KEY_HMAC: a multiple of 8 from 128 to 512, CKM_GENERIC_SECRET_KEY_GEN)
 * able to do `uses` (enum kg_p11_use bits of kg_p11_internal.h, as
 * kg_p11_uses_of_mask gives them).
 *   resident_id NULL: a session object, wrapped at once under the MWK into
 *                     `blob` and destroyed;
 *   resident_id set:  a token object (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
 *                     not CKA_EXTRACTABLE) with CKA_ID = resident_id and
 *                     CKA_LABEL "kmipgw:<resident_id>"; `blob` is empty.
 * Either way blob->digest gets the key's SHA-256 (kg_p11_digest_into_blob).
 * Errors: KG_ERR_BAD_KEY_LENGTH, KG_ERR_INVALID_FIELD (id too long),
 * KG_ERR_HSM_*.
 */
kg_result kg_p11_generate_secret(struct kg_p11 *p11, enum kg_p11_key_kind kind, uint32_t bits, unsigned uses,
                                 const char *resident_id, struct kg_p11_blob *blob) KG_WARN_UNUSED;

/*
 * Register into a resident group: create a token object as
 * kg_p11_generate_secret does, from `key` (the caller still owns and wipes
 * it; CKA_VALUE points into it, no copy is made here).
 */
kg_result kg_p11_resident_import(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_secret *key,
                                 unsigned uses, const char *resident_id) KG_WARN_UNUSED;

/*
 * Destroy the resident token object of `key` (storage RESIDENT) with
 * C_DestroyObject. An object already gone counts as destroyed (a Destroy
 * whose store commit failed after this step can be retried); several
 * objects with the ID are KG_ERR_HSM and nothing is destroyed.
 */
kg_result kg_p11_resident_destroy(struct kg_p11 *p11, const struct kg_p11_key_ref *key) KG_WARN_UNUSED;

/* KMIP Cryptographic Usage Mask bits -> enum kg_p11_use bits for a new key. */
unsigned kg_p11_uses_of_mask(uint32_t usage_mask);

#endif
