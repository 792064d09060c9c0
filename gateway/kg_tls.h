/*
 * kg_tls.h - the server's TLS context and the identity of a client.
 *
 * TLS 1.2 and 1.3 only; a client certificate is required and verified
 * against the configured client CA bundle. The clientAuth EKU is not
 * insisted on: vCenter's certificate often lacks it (VSPHERE.md).
 *
 * With tls.crl set, the client certificate (not the rest of its chain) is
 * also checked against the CRL of its issuing CA, read from that file at
 * startup. A missing or unparsable file fails startup; a client CA without
 * a CRL in the file, or with an expired one, refuses its clients.
 *
 * tls.key is a PEM file, or a PKCS#11 URI naming a private key on the
 * gateway's token (pkcs11:object=<label>[;id=<hex>]), which then never
 * leaves the HSM: see kg_p11_tls.h.
 */
#ifndef KG_TLS_H
#define KG_TLS_H

#include <openssl/ssl.h>

#include "kg_config.h"
#include "kg_policy.h"
#include "kg_result.h"

#define KG_TLS_MAX_OUS 8

/* Everything policy and audit need, copied out of the peer certificate once
 * per connection. `id` points into the arrays of this struct. */
struct kg_tls_identity {
    char cn[256];
    char ou_text[KG_TLS_MAX_OUS][128];
    const char *ous[KG_TLS_MAX_OUS];
    char serial[96];      /* hex */
    char fingerprint[65]; /* SHA-256, hex */
    char issuer_fingerprint[65]; /* SHA-256 of the CA certificate that issued it, hex */
    struct kg_identity id;
};

struct kg_p11;

/*
 * Build the server context from the config. Caller owns *out (SSL_CTX_free).
 * When tls.key is a pkcs11: URI the private key is found on the token of
 * `p11` (open and logged in first), and *out uses it through libp11: free
 * *out before kg_p11_close(p11). `p11` may be NULL when tls.key is a PEM
 * file; with a URI that is a KG_ERR_CONFIG. A key that is missing, ambiguous
 * or does not match tls.certificate fails with KG_ERR_CONFIG and a message
 * naming it (kg_p11_tls.h).
 */
kg_result kg_tls_ctx_new(const struct kg_config *cfg, struct kg_p11 *p11, SSL_CTX **out) KG_WARN_UNUSED;

/*
 * Fill `out` from the verified peer certificate of `ssl`. Fails when there is
 * none, or when its subject has an over-long or NUL-containing CN/OU or more
 * than KG_TLS_MAX_OUS OUs (such a certificate gets no identity at all).
 */
kg_result kg_tls_identity_from(SSL *ssl, struct kg_tls_identity *out) KG_WARN_UNUSED;

/*
 * The identity `cert` gives (CN, OUs, serial, fingerprint) and, when
 * `issuer` is not NULL, the fingerprint of the CA that signed it. Used on a
 * verified peer certificate, and by `policy explain` on a certificate file,
 * so both see exactly the same identity. Fails like kg_tls_identity_from.
 */
kg_result kg_tls_identity_from_cert(X509 *cert, X509 *issuer, struct kg_tls_identity *out) KG_WARN_UNUSED;

/* SHA-256 of a certificate's DER, lowercase hex. */
kg_result kg_tls_fingerprint(X509 *cert, char out[65]) KG_WARN_UNUSED;

/* Copy an identity, re-pointing `id` into the copy's own arrays. */
void kg_tls_identity_copy(struct kg_tls_identity *dst, const struct kg_tls_identity *src);

#endif
