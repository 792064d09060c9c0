/*
 * kg_p11_import.h - asymmetric keys a client brings (Register) or takes
 * back in the clear (Get): private keys as their components, and public
 * keys from and to their components.
 *
 * A private key's components are secret. They are never decoded into
 * OpenSSL objects (d2i of a private key puts BIGNUMs on the ordinary heap):
 * the DER forms are walked with a small bounded reader that only names
 * byte ranges inside the caller's (locked) buffer, the HSM builds the key
 * from those ranges (C_CreateObject of a session object, wrapped at once
 * under the MWK and destroyed), and a plaintext export reads the
 * components back with C_GetAttributeValue straight into a kg_secret.
 *
 * Public API of pkcs11/: no pkcs11.h here.
 */
#ifndef KG_P11_IMPORT_H
#define KG_P11_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "kg_p11.h"
#include "kg_result.h"
#include "kg_secret.h"

/* A borrowed byte range (an unsigned big-endian integer, or DER). */
struct kg_p11_span {
    const uint8_t *data;
    size_t len;
};

/* Most components of a key this layer handles (a two-prime RSA private key). */
#define KG_P11_PARTS_MAX 8u
/* Largest single component accepted, bytes (an 8192-bit modulus). */
#define KG_P11_PART_MAX 1024u

/*
 * A key as its components, in this order:
 *   KG_P11_KEY_RSA_PRIVATE  n, e, d, p, q, d mod (p-1), d mod (q-1), q^-1 mod p
 *   KG_P11_KEY_DSA_PRIVATE  p, q, g, x
 *   KG_P11_KEY_EC_PRIVATE   curve (namedCurve OID DER, as CKA_EC_PARAMS), d
 *   KG_P11_KEY_RSA_PUBLIC   n, e
 *   KG_P11_KEY_DSA_PUBLIC   p, q, g, y
 * Integers are unsigned big-endian; leading zero bytes are allowed.
 * The spans borrow: from the request buffer, or from `secret` when it is set.
 */
struct kg_p11_parts {
    enum kg_p11_key_kind kind;
    size_t count;
    struct kg_p11_span part[KG_P11_PARTS_MAX];
    struct kg_secret *secret; /* owned when set (kg_p11_export_private); kg_p11_parts_cleanup frees it */
};

/* Number of components of `kind` (0 for a kind this layer does not take). */
size_t kg_p11_parts_count(enum kg_p11_key_kind kind);

/* Free and wipe parts->secret, forget every span. Accepts NULL. */
void kg_p11_parts_cleanup(struct kg_p11_parts *parts);

/* The DER forms of a private key (KMIP Key Format Types PKCS#1 and PKCS#8). */
enum kg_p11_private_format {
    KG_P11_PRIVATE_PKCS1 = 1, /* RSAPrivateKey (RFC 8017 A.1.2), two primes: RSA only */
    KG_P11_PRIVATE_PKCS8,     /* PrivateKeyInfo (RFC 5208): RSA, DSA, EC (P-256, P-384) */
};

/*
 * Walk private key DER `der` (`len` bytes, borrowed, normally in locked
 * memory) in `format` into *out: kind, and spans pointing into `der`. No
 * byte is copied and nothing is allocated. The whole input must be one key.
 * Errors: KG_ERR_INVALID_FIELD (not such DER, trailing bytes, a negative or
 * over-long integer, a multi-prime RSA key), KG_ERR_UNSUPPORTED_ALGORITHM
 * (a PKCS#8 key of another algorithm or curve).
 */
kg_result kg_p11_private_from_der(const uint8_t *der, size_t len, enum kg_p11_private_format format,
                                  struct kg_p11_parts *out) KG_WARN_UNUSED;

/*
 * Encode private key `parts` (RSA or DSA; EC is KG_ERR_UNSUPPORTED_FORMAT:
 * its PKCS#8 carries the public point, which the HSM does not return) in
 * `format` into a new kg_secret *out (DER, minimal integers). The caller
 * owns *out and frees it (wiped) with kg_secret_free; NULL on failure.
 * Errors: KG_ERR_UNSUPPORTED_FORMAT (PKCS#1 of a non-RSA key),
 * KG_ERR_INVALID_FIELD (wrong count), KG_ERR_LOCK / KG_ERR_NOMEM.
 */
kg_result kg_p11_private_to_der(const struct kg_p11_parts *parts, enum kg_p11_private_format format,
                                struct kg_secret **out) KG_WARN_UNUSED;

/* `s` without its leading zero bytes (at least one byte kept): no copy. */
struct kg_p11_span kg_p11_span_trim(struct kg_p11_span s);

/* Bit length of the integer in `s` (leading zero bytes skipped); 0 for zero. */
uint32_t kg_p11_span_bits(struct kg_p11_span s);

/*
 * Make the HSM hold private key `parts` (spans borrowed, normally pointing
 * into locked memory; nothing is copied on our side): C_CreateObject of a
 * sensitive, extractable session object, C_WrapKey under the MWK into
 * `out` (stored WRAPPED like a generated private key), C_DestroyObject on
 * every path. The caller still owns and wipes what the spans point into.
 * Errors: KG_ERR_INVALID_FIELD (kind or count wrong, a part empty or over
 * KG_P11_PART_MAX), KG_ERR_HSM_NO_MWK, KG_ERR_HSM_BUSY, mapped CK_RV (the
 * token refusing the components). out->len is 0 on failure.
 */
kg_result kg_p11_import_private(struct kg_p11 *p11, const struct kg_p11_parts *parts,
                                struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * Plaintext components of stored private key `ref` (WRAPPED, RSA, DSA or EC
 * kind): loaded with KG_P11_USE_READ into a readable session object, its
 * components read by C_GetAttributeValue into one new kg_secret, the object
 * destroyed on every path. *out gets the kind, the spans (into
 * out->secret) and owns out->secret: release with kg_p11_parts_cleanup.
 * Used only where policy allows plaintext export. Errors: KG_ERR_DENIED
 * (resident key), KG_ERR_INVALID_FIELD (not a private key kind),
 * KG_ERR_HSM (a component the token will not give), KG_ERR_HSM_UNWRAP,
 * mapped CK_RV, KG_ERR_LOCK. *out is empty on failure.
 */
kg_result kg_p11_export_private(struct kg_p11 *p11, const struct kg_p11_key_ref *ref,
                                struct kg_p11_parts *out) KG_WARN_UNUSED;

/*
 * A public key from its components (`parts`, kind RSA_PUBLIC or
 * DSA_PUBLIC, borrowed) as SubjectPublicKeyInfo DER into `out` (the
 * KG_P11_STORED_PUBLIC form), *bits the modulus or p size. No HSM involved.
 * Errors: KG_ERR_INVALID_FIELD (a part empty, too long or refused by
 * OpenSSL), KG_ERR_NOMEM. out->len 0 on failure.
 */
kg_result kg_p11_public_from_parts(const struct kg_p11_parts *parts, struct kg_p11_blob *out,
                                   uint32_t *bits) KG_WARN_UNUSED;

/*
 * The components of stored public key `blob` (SPKI DER) into `buf` (caller's,
 * `cap` bytes; nothing secret) with *out's spans pointing into it. *out's kind
 * says RSA or DSA; an EC key is KG_ERR_UNSUPPORTED_FORMAT. Errors also
 * KG_ERR_INVALID_FIELD (blob not SPKI, parts over `cap`).
 */
kg_result kg_p11_public_to_parts(const struct kg_p11_blob *blob, uint8_t *buf, size_t cap,
                                 struct kg_p11_parts *out) KG_WARN_UNUSED;

#endif
