/*
 * kg_p11_tls.h - the gateway's own TLS private key, kept on its token.
 *
 * With tls.key set to a PKCS#11 URI (kg_p11_uri.h) the server key never sits
 * in a file: libp11 finds it on the token kg_p11 already opened and logged
 * into, and hands OpenSSL an EVP_PKEY whose private operations (the TLS
 * handshake signature) run inside the HSM. libp11 takes a session from its
 * own per-slot pool for each operation, under its own lock, so the key may be
 * used from any number of threads at once.
 */
#ifndef KG_P11_TLS_H
#define KG_P11_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kg_result.h"

struct kg_p11;

/*
 * Find the one private key labelled `label` (and, when id_len > 0, with
 * CKA_ID id[0..id_len)) on the open token of `p11`, and return it as an
 * EVP_PKEY in *out (NULL on failure). RSA and EC keys are accepted.
 * Ownership: the caller owns the reference in *out (EVP_PKEY_free), but the
 * key's HSM operations go through `p11`'s libp11 slot: free *out, and every
 * SSL_CTX or SSL holding it, before kg_p11_close(p11). No key bytes are ever
 * read; label and id are not secret and may appear in messages.
 * Errors: KG_ERR_CONFIG when no private key or several match (the text lists
 * the private key labels present, or asks for id=); KG_ERR_HSM (or the mapped CK_RV) when the token cannot be searched or
 * libp11 cannot use the key; KG_ERR_NOMEM.
 */
kg_result kg_p11_tls_private_key(struct kg_p11 *p11, const char *label, const uint8_t *id, size_t id_len,
                                 EVP_PKEY **out) KG_WARN_UNUSED;

#endif
