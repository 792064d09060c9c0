/*
 * kg_p11_pair.h - asymmetric key pairs generated inside the HSM (Create Key
 * Pair, Re-key Key Pair).
 *
 * C_GenerateKeyPair makes both halves on the token. The private half is
 * either a session object (sensitive, extractable) wrapped at once under the
 * MWK and destroyed, or, for a resident key, a non-extractable token object
 * whose CKA_ID is the private key's KMIP UID. The public half is read out
 * (RSA modulus and exponent, or the EC point) and returned as
 * SubjectPublicKeyInfo DER, which is public and stored in the clear. No
 * private key byte ever exists outside the HSM.
 *
 * Public API of pkcs11/: no pkcs11.h here.
 */
#ifndef KG_P11_PAIR_H
#define KG_P11_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_p11.h"
#include "kg_result.h"

enum kg_p11_pair_algorithm {
    KG_P11_PAIR_RSA = 1,
    KG_P11_PAIR_EC = 2,
};

/* The named curves we generate on (NIST P-256 and P-384). */
enum kg_p11_curve {
    KG_P11_CURVE_NONE = 0,
    KG_P11_CURVE_P256 = 1,
    KG_P11_CURVE_P384 = 2,
};

/* What the private key may do on the token: the KMIP usage mask, mapped by
 * the caller. Only a resident key keeps these flags; a wrapped key gets its
 * flags each time it is unwrapped (kg_p11_key_load). */
enum kg_p11_pair_use {
    KG_P11_PAIR_USE_SIGN = 1u << 0,
    KG_P11_PAIR_USE_DECRYPT = 1u << 1, /* RSA only */
    KG_P11_PAIR_USE_UNWRAP = 1u << 2,  /* RSA only */
};

struct kg_p11_pair_spec {
    enum kg_p11_pair_algorithm algorithm;
    uint32_t rsa_bits;       /* RSA: 2048, 3072 or 4096 */
    enum kg_p11_curve curve; /* EC */
    unsigned private_uses;   /* enum kg_p11_pair_use bits */
    /* NULL: the private key is wrapped under the MWK into out->private_blob.
     * Else: it stays on the token as a non-extractable object with this
     * CKA_ID (the private key's UID text) and out->private_blob is empty. */
    const char *resident_id;
};

struct kg_p11_pair {
    struct kg_p11_blob private_blob; /* wrapped PKCS#8 (CKM_AES_KEY_WRAP_PAD), or len 0 when resident */
    struct kg_p11_blob public_der;   /* SubjectPublicKeyInfo DER; mechanism 0, generation 0 */
};

/* RSA modulus sizes and curves this layer generates. */
bool kg_p11_pair_rsa_bits_ok(uint32_t bits);

/* Bits of a curve's field (256, 384), or 0 for KG_P11_CURVE_NONE. */
uint32_t kg_p11_curve_bits(enum kg_p11_curve curve);

/* The curve whose namedCurve OID DER (tag and length included) is `der`,
 * or KG_P11_CURVE_NONE. */
enum kg_p11_curve kg_p11_curve_of_oid(const uint8_t *der, size_t len);

/*
 * Generate a key pair per `spec` inside the HSM into *out (caller-provided
 * storage; nothing in it is secret: the private blob is wrapped). Every
 * session object is destroyed on every path; on failure a resident token
 * object made here is destroyed too, and *out is cleared.
 * Errors: KG_ERR_BAD_KEY_LENGTH (RSA size), KG_ERR_UNSUPPORTED_ALGORITHM
 * (algorithm or curve), KG_ERR_HSM_NO_MWK, KG_ERR_HSM_BUSY, KG_ERR_NOMEM,
 * KG_ERR_INTERNAL (public key not encodable), or the mapped CK_RV.
 */
kg_result kg_p11_generate_pair(struct kg_p11 *p11, const struct kg_p11_pair_spec *spec,
                               struct kg_p11_pair *out) KG_WARN_UNUSED;

/*
 * Destroy the resident private key whose CKA_ID is `id` (the undo of a
 * resident kg_p11_generate_pair whose objects could not be stored).
 * Errors: KG_ERR_HSM (no or several such objects), or the mapped CK_RV.
 */
kg_result kg_p11_pair_destroy_resident(struct kg_p11 *p11, const char *id) KG_WARN_UNUSED;

#endif
