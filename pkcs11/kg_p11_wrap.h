/*
 * kg_p11_wrap.h - keys that leave or enter the HSM wrapped, and public keys
 * in the clear.
 *
 * Wrapped export (KMIP Get with a Key Wrapping Specification) and wrapped
 * import (Register of a Key Block with Key Wrapping Data) are one
 * C_WrapKey / C_UnwrapKey each, inside the HSM: the key bytes never exist in
 * the gateway. Public keys are not secret: they are stored as
 * SubjectPublicKeyInfo DER (KG_P11_STORED_PUBLIC) and converted with
 * OpenSSL, without the HSM.
 *
 * No pkcs11.h here: the gateway includes this header.
 */
#ifndef KG_P11_WRAP_H
#define KG_P11_WRAP_H

#include <stddef.h>
#include <stdint.h>

#include "kg_p11.h"
#include "kg_result.h"

/* How a key is wrapped for export or import. */
enum kg_p11_wrap_mech {
    KG_P11_WRAP_AES_KW = 1,      /* RFC 3394 (CKM_AES_KEY_WRAP): key length a multiple of 8 */
    KG_P11_WRAP_AES_KWP,         /* RFC 5649 (CKM_AES_KEY_WRAP_PAD) */
    KG_P11_WRAP_RSA_OAEP_SHA1,   /* CKM_RSA_PKCS_OAEP, SHA-1 and MGF1-SHA1 */
    KG_P11_WRAP_RSA_OAEP_SHA256, /* CKM_RSA_PKCS_OAEP, SHA-256 and MGF1-SHA256 */
};

/* Longest wrapped key we hand out or accept: a private key's PKCS#8
 * wrapped (RSA-4096 is about 2.4 KB; 1024 bytes did not hold RSA-2048). */
#define KG_P11_MAX_WRAPPED KG_P11_MAX_BLOB

/*
 * Wrap stored key `target` under stored key `wrapping` with `mech`, inside
 * the HSM: the target is loaded extractable (KG_P11_USE_EXTRACT), the
 * wrapping key for KG_P11_USE_WRAP only (an AES key for the AES
 * mechanisms, an RSA public key for OAEP), and C_WrapKey writes the result
 * into `out` (caller's buffer of `cap` bytes; the wrapped bytes are not
 * secret). Both temporary objects are destroyed on every path. A resident
 * target is KG_ERR_DENIED (it never leaves the HSM).
 * Errors: KG_ERR_DENIED, KG_ERR_UNSUPPORTED_ALGORITHM (mechanism does not
 * fit the wrapping key's kind), KG_ERR_BAD_KEY_LENGTH (RFC 3394 of a key
 * whose length is not a multiple of 8 bytes), KG_ERR_UNSUPPORTED_FEATURE
 * (the HSM refuses the mechanism or its parameters), KG_ERR_INVALID_FIELD
 * (result over `cap`), KG_ERR_HSM_UNWRAP (a stored blob is not ours), or
 * the mapped CK_RV. *out_len is 0 on failure.
 */
kg_result kg_p11_wrap_key(struct kg_p11 *p11, const struct kg_p11_key_ref *target,
                          const struct kg_p11_key_ref *wrapping, enum kg_p11_wrap_mech mech, uint8_t *out,
                          size_t cap, size_t *out_len) KG_WARN_UNUSED;

/*
 * Wrap, under stored key `wrapping` with `mech`, a value built inside the
 * HSM as prefix || key bytes of stored secret key `target` || suffix: the
 * TTLV-encoded Key Value of KMIP Encoding Option TTLV Encoding. Two
 * C_DeriveKey (CKM_CONCATENATE_DATA_AND_BASE with `prefix`, then
 * CKM_CONCATENATE_BASE_AND_DATA with `suffix`) make sensitive generic-secret
 * session objects, extractable only so that the last one can be wrapped;
 * C_WrapKey writes it into `out` (caller's buffer of `cap` bytes, not
 * secret). Every temporary object is destroyed on every path. `prefix` and
 * `suffix` are borrowed, not secret (the caller computes them from the key
 * length only): `prefix` 1 to KG_P11_MAX_FRAME bytes, `suffix` 0 (no second
 * derive) to KG_P11_MAX_FRAME bytes.
 * Errors: those of kg_p11_wrap_key, and KG_ERR_UNSUPPORTED_FEATURE when the
 * HSM lacks the concatenation mechanisms (SoftHSMv2 2.6 does). out_len 0
 * on failure.
 */
#define KG_P11_MAX_FRAME 64u
kg_result kg_p11_wrap_key_framed(struct kg_p11 *p11, const struct kg_p11_key_ref *target,
                                 const struct kg_p11_key_ref *wrapping, enum kg_p11_wrap_mech mech,
                                 const uint8_t *prefix, size_t prefix_len, const uint8_t *suffix, size_t suffix_len,
                                 uint8_t *out, size_t cap, size_t *out_len) KG_WARN_UNUSED;

/*
 * Unwrap `wrapped` (a key of `kind`, KG_P11_KEY_AES or KG_P11_KEY_HMAC,
 * wrapped with the AES mechanism `mech`) under stored key `unwrapping`
 * (loaded for KG_P11_USE_UNWRAP only) into a sensitive session object,
 * re-wrap that under the MWK into `out` and destroy it: the key bytes never
 * leave the HSM in the clear. *key_bytes gets the key's length in bytes.
 * `wrapped` is borrowed and not secret.
 * Errors: KG_ERR_UNSUPPORTED_FEATURE (RSA mechanisms: import takes AES key
 * wrap only), KG_ERR_UNSUPPORTED_ALGORITHM (unwrapping key not AES),
 * KG_ERR_INVALID_FIELD (under 16 or over KG_P11_MAX_WRAPPED bytes),
 * KG_ERR_HSM_UNWRAP (the integrity check failed: wrong key or damaged
 * bytes), KG_ERR_BAD_KEY_LENGTH (an AES key not of 16, 24 or 32 bytes), or
 * the mapped CK_RV. out->len is 0 on failure.
 */
kg_result kg_p11_unwrap_key(struct kg_p11 *p11, const struct kg_p11_key_ref *unwrapping, enum kg_p11_wrap_mech mech,
                            enum kg_p11_key_kind kind, const uint8_t *wrapped, size_t len, struct kg_p11_blob *out,
                            uint32_t *key_bytes) KG_WARN_UNUSED;

/* Encodings of a public key (KMIP Key Format Types X.509 and PKCS#1). */
enum kg_p11_public_format {
    KG_P11_PUBLIC_SPKI = 1, /* SubjectPublicKeyInfo DER: RSA, EC and DSA */
    KG_P11_PUBLIC_PKCS1,    /* RSAPublicKey DER (RFC 8017 A.1.1): RSA only */
};

/*
 * Parse public key DER `der` (`len` bytes, borrowed) in `format` and store
 * it as SubjectPublicKeyInfo DER in `out` (mechanism 0, generation 0: the
 * KG_P11_STORED_PUBLIC form). *kind gets KG_P11_KEY_RSA_PUBLIC or
 * KG_P11_KEY_EC_PUBLIC (or, SPKI only, KG_P11_KEY_DSA_PUBLIC), *bits the modulus or field size. The whole input
 * must be one key: trailing bytes are refused. No HSM involved.
 * Errors: KG_ERR_INVALID_FIELD (not such a key, trailing bytes, too long),
 * KG_ERR_UNSUPPORTED_ALGORITHM (neither RSA nor EC). out->len 0 on failure.
 */
kg_result kg_p11_public_import(const uint8_t *der, size_t len, enum kg_p11_public_format format,
                               struct kg_p11_blob *out, enum kg_p11_key_kind *kind, uint32_t *bits) KG_WARN_UNUSED;

/*
 * Encode stored public key `blob` (SPKI DER) in `format` into `out`
 * (caller's buffer of `cap` bytes). PKCS#1 of an EC key is
 * KG_ERR_UNSUPPORTED_FORMAT; a blob that is not SPKI DER, or a result over
 * `cap`, KG_ERR_INVALID_FIELD. *out_len is 0 on failure.
 */
kg_result kg_p11_public_export(const struct kg_p11_blob *blob, enum kg_p11_public_format format, uint8_t *out,
                               size_t cap, size_t *out_len) KG_WARN_UNUSED;

#endif
