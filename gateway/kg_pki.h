/*
 * kg_pki.h - certificates signed by the gateway's client CA, for
 * `kmipgw pki sign-csr` (vCenter's "KMS signs the CSR" trust option) and
 * `kmipgw pki server-cert` (the gateway's own TLS certificate).
 *
 * Only OpenSSL 3 APIs, no openssl CLI: what ends up in a certificate is
 * decided here, by one table of profiles, and never by an openssl.cnf or by
 * what a CSR asks for. A CSR contributes its public key and its CN, nothing
 * else: its OU, its other name parts and its requested extensions are
 * dropped, because the OU is what the policy engine keys on (the requester
 * must not pick its own group) and the extensions are the CA's to decide.
 *
 * Keys are accepted when they are RSA of 2048 to 16384 bits or EC on P-256
 * or P-384 (what vCenter, ESXi and the KMIP TLS profiles use); the CA's own
 * key must pass the same test.
 */
#ifndef KG_PKI_H
#define KG_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kg_result.h"

#define KG_PKI_DEFAULT_DAYS 730u
#define KG_PKI_MAX_DAYS 3650u
/* X.520 ub-common-name: a longer CN is not a valid certificate. */
#define KG_PKI_MAX_CN 64u
#define KG_PKI_MAX_NAMES 16u

/* The signing CA. Caller storage: kg_pki_ca_load fills it, kg_pki_ca_cleanup empties it. */
struct kg_pki_ca {
    X509 *cert;    /* owned */
    EVP_PKEY *key; /* owned; the CA private key: kg_pki_ca_cleanup frees it, and
                    * OpenSSL clears its private numbers on free */
    char fingerprint[65]; /* SHA-256 of cert, hex: what policy's ca_sha256 compares */
};

/*
 * Load the CA: the private key from `key_path` (unencrypted PEM, mode 0600
 * or stricter, read into locked memory that is wiped before return:
 * kg_secret_read_file) and, from the PEM bundle at `cert_path`, the first
 * certificate whose public key matches it (tls.client_ca may list several
 * CAs). The certificate must be a CA certificate. `ca` is zeroed on entry;
 * on failure it holds nothing and kg_error_text() says why (KG_ERR_CONFIG).
 * The caller calls kg_pki_ca_cleanup(ca) on success.
 */
kg_result kg_pki_ca_load(const char *cert_path, const char *key_path, struct kg_pki_ca *ca) KG_WARN_UNUSED;

/* Free the certificate and the key, and zero `ca`. Accepts an empty or zeroed ca. */
void kg_pki_ca_cleanup(struct kg_pki_ca *ca);

/*
 * Refuse a weak or unexpected key: RSA below 2048 or above 16384 bits, EC
 * on a curve other than P-256 and P-384, any other type. KG_ERR_CONFIG with
 * a message naming the key (`what`: "the CSR's key", "the CA key").
 */
kg_result kg_pki_key_check(EVP_PKEY *key, const char *what) KG_WARN_UNUSED;

/*
 * Read the PEM certificate request at `path` (at most 64 KiB), verify its
 * self-signature (proof that the requester holds the private key) and its
 * key (kg_pki_key_check), and copy its one CN (1..KG_PKI_MAX_CN bytes of
 * UTF-8, no control characters) into cn[KG_PKI_MAX_CN + 1]. The caller owns
 * *out (X509_REQ_free); *out is NULL on failure, KG_ERR_CONFIG with a
 * message.
 */
kg_result kg_pki_csr_read(const char *path, X509_REQ **out, char cn[KG_PKI_MAX_CN + 1]) KG_WARN_UNUSED;

enum kg_pki_profile {
    /* EKU clientAuth; subject OU (the group's) and CN. */
    KG_PKI_CLIENT = 0,
    /* EKU serverAuth and clientAuth (VSPHERE.md: ESXi has failed without
     * both); subjectAltName from names; subject CN = names[0]. */
    KG_PKI_SERVER = 1,
};

/* What to certify; every pointer is borrowed for the call. */
struct kg_pki_request {
    enum kg_pki_profile profile;
    const char *cn;           /* required, 1..KG_PKI_MAX_CN bytes */
    const char *ou;           /* client: required; server: must be NULL */
    const char *const *names; /* server: 1..KG_PKI_MAX_NAMES DNS names or IP addresses */
    size_t name_count;
    uint32_t days;            /* 1..KG_PKI_MAX_DAYS */
};

/*
 * Sign a certificate for `subject_key` (public half used; borrowed) under
 * `ca`: X.509 v3, random positive 16-byte serial, valid from five minutes
 * ago (clock skew between this host and the relying party) for req->days
 * days, which must not outlast the CA certificate; basicConstraints
 * CA:FALSE, keyUsage digitalSignature (and keyEncipherment for RSA), the
 * profile's EKUs, SKI and AKI; SHA-256 signature. The caller owns *out
 * (X509_free); *out is NULL on failure (KG_ERR_CONFIG for a request the
 * CA cannot honour, with a message).
 */
kg_result kg_pki_issue(const struct kg_pki_ca *ca, const struct kg_pki_request *req, EVP_PKEY *subject_key,
                       X509 **out) KG_WARN_UNUSED;

enum kg_pki_key_type {
    /* The default: the KMIP profiles' TLS_RSA_* suites, which older vCenters
     * still offer, need an RSA server certificate. */
    KG_PKI_KEY_RSA3072 = 0,
    KG_PKI_KEY_EC_P256 = 1,
};

/* A new private key; the caller owns *out (EVP_PKEY_free). */
kg_result kg_pki_keygen(enum kg_pki_key_type type, EVP_PKEY **out) KG_WARN_UNUSED;

#endif
