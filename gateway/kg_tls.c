/* kg_tls.c - OpenSSL 3 server context and peer identity. */
#include "kg_tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "kg_p11_tls.h"
#include "kg_p11_uri.h"

/* Modern ECDHE-AEAD suites first, then the KMIP profile suites older
 * vCenters use (KMIP Profiles 1.4 section 3.1: TLS_RSA_WITH_AES_128_CBC_SHA256
 * and friends). tls.ciphers in gateway.yaml replaces the list. */
static const char kg_tls_default_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:AES256-SHA256";

static kg_result kg_tls_fail(const char *what, const char *path)
{
    char err[256];

    ERR_error_string_n(ERR_get_error(), err, sizeof(err));
    ERR_clear_error();
    kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
    kg_error_detail("%s %s: %s", what, path ? path : "", err);
    return KG_RESULT_ERROR;
}

/*
 * tls.crl: every CRL in the PEM file goes into the context's trust store, and
 * the client certificate (the leaf only: X509_V_FLAG_CRL_CHECK, not
 * CRL_CHECK_ALL) is checked against the CRL of its issuer. Fail closed: a
 * file that is missing or holds no parsable CRL stops startup, and with the
 * check on, a client whose CA has no CRL in the file, or whose CRL is past
 * its nextUpdate or badly signed, is refused. The file is read once, at
 * startup; restart the gateway to pick up a new CRL.
 */
static kg_result kg_tls_load_crl(SSL_CTX *ctx, const char *path)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = store != NULL ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;

    if (lookup == NULL) {
        return kg_tls_fail("cannot set up CRL checking for", path);
    }
    /* Counts the CRLs loaded; 0 for a missing file, no CRL, or a PEM error. */
    if (X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) < 1) {
        return kg_tls_fail("cannot load tls.crl (a PEM file of one or more CRLs)", path);
    }
    if (X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1) {
        return kg_tls_fail("cannot enable CRL checking for", path);
    }
    return KG_RESULT_OK;
}

/*
 * tls.key as a PKCS#11 URI: the key stays in the HSM and libp11 signs the
 * handshakes. The URI was checked when the config was loaded; it is parsed
 * again here because kg_config keeps it as text. The certificate must be in
 * `ctx` already: a key that does not belong to it is refused by name here,
 * as SSL_CTX_use_PrivateKey would only drop the certificate.
 */
static kg_result kg_tls_use_hsm_key(SSL_CTX *ctx, const struct kg_config *cfg, struct kg_p11 *p11)
{
    struct kg_p11_uri uri;
    EVP_PKEY *pkey = NULL;
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_p11_uri_parse(cfg->tls_key, &uri));
    if (p11 == NULL) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("tls.key is a pkcs11: URI, but the HSM is not open here");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(cert != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_tls_private_key(p11, uri.object, uri.id, uri.id_len, &pkey));
    if (X509_check_private_key(cert, pkey) != 1) {
        ERR_clear_error();
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("tls.key: the HSM key '%s' does not match the certificate %s", uri.object,
                        cfg->tls_certificate);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    /* The context takes its own reference; ours is dropped below. */
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        rc = kg_tls_fail("cannot use the HSM key named by tls.key with the certificate", cfg->tls_certificate);
        goto out;
    }
out:
    EVP_PKEY_free(pkey);
    return rc;
}

kg_result kg_tls_ctx_new(const struct kg_config *cfg, struct kg_p11 *p11, SSL_CTX **out)
{
    static const unsigned char sid_ctx[] = "kmipgw";
    SSL_CTX *ctx;
    STACK_OF(X509_NAME) *ca_names;
    kg_result rc = KG_RESULT_OK;

    *out = NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    KG_ENSURE(ctx != NULL, KG_ERR_NOMEM);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* SSL_OP_CLEANSE_PLAINTEXT: OpenSSL decrypts each record in place in its read
     * buffer and, without this option, frees that buffer (SSL_MODE_RELEASE_BUFFERS)
     * or leaves it with the plaintext in it: a Register's key bytes would stay in
     * the heap (found by tests/integration/test_secrets.py under ASan). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CLEANSE_PLAINTEXT);
    if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers ? cfg->tls_ciphers : kg_tls_default_ciphers) != 1) {
        rc = kg_tls_fail("bad tls.ciphers", cfg->tls_ciphers);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1) {
        rc = kg_tls_fail("cannot load server certificate", cfg->tls_certificate);
        goto out;
    }
    if (kg_p11_uri_is(cfg->tls_key)) {
        KG_GOTO_GUARD(rc, kg_tls_use_hsm_key(ctx, cfg, p11));
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        rc = kg_tls_fail("cannot load server key (or it does not match the certificate)", cfg->tls_key);
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
        rc = kg_tls_fail("cannot load client CA", cfg->tls_client_ca);
        goto out;
    }
    ca_names = SSL_load_client_CA_file(cfg->tls_client_ca);
    if (ca_names == NULL) {
        rc = kg_tls_fail("no CA names in", cfg->tls_client_ca);
        goto out;
    }
    SSL_CTX_set_client_CA_list(ctx, ca_names);
    if (cfg->tls_crl != NULL) {
        KG_GOTO_GUARD(rc, kg_tls_load_crl(ctx, cfg->tls_crl));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, 8);
    /* Verify the chain, not the EKU: vCenter's client certificate often
     * carries serverAuth only (VSPHERE.md). */
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_ANY);
    /* Resumed sessions keep the verified peer certificate; the context id
     * ties them to this server. */
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    *out = ctx;
    ctx = NULL;
out:
    SSL_CTX_free(ctx);
    return rc;
}

/* Copy an X.509 string as UTF-8 into out[cap]; refuse NULs and overflow. */
static kg_result kg_tls_copy_entry(X509_NAME_ENTRY *entry, char *out, size_t cap)
{
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(len >= 0, KG_ERR_DENIED);
    KG_GOTO_ENSURE(rc, (size_t)len < cap && memchr(utf8, 0, (size_t)len) == NULL, KG_ERR_DENIED);
    memcpy(out, utf8, (size_t)len);
    out[len] = '\0';
out:
    OPENSSL_free(utf8);
    return rc;
}

kg_result kg_tls_fingerprint(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    KG_ENSURE(X509_digest(cert, EVP_sha256(), md, &md_len) == 1 && md_len == 32, KG_ERR_INTERNAL);
    for (unsigned int i = 0; i < md_len; i++) {
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    }
    return KG_RESULT_OK;
}

kg_result kg_tls_identity_from_cert(X509 *cert, X509 *issuer, struct kg_tls_identity *out)
{
    X509_NAME *subject = X509_get_subject_name(cert);
    BIGNUM *serial = NULL;
    char *serial_hex = NULL;
    size_t ou_count = 0;
    kg_result rc = KG_RESULT_OK;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < X509_NAME_entry_count(subject); i++) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (nid == NID_commonName && out->cn[0] == '\0') {
            KG_GOTO_GUARD(rc, kg_tls_copy_entry(e, out->cn, sizeof(out->cn)));
        } else if (nid == NID_organizationalUnitName) {
            KG_GOTO_ENSURE(rc, ou_count < KG_TLS_MAX_OUS, KG_ERR_DENIED);
            KG_GOTO_GUARD(rc, kg_tls_copy_entry(e, out->ou_text[ou_count], sizeof(out->ou_text[0])));
            out->ous[ou_count] = out->ou_text[ou_count];
            ou_count++;
        }
    }
    serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    KG_GOTO_ENSURE(rc, serial != NULL, KG_ERR_NOMEM);
    serial_hex = BN_bn2hex(serial);
    KG_GOTO_ENSURE(rc, serial_hex != NULL, KG_ERR_NOMEM);
    snprintf(out->serial, sizeof(out->serial), "%s", serial_hex);
    KG_GOTO_GUARD(rc, kg_tls_fingerprint(cert, out->fingerprint));
    if (issuer != NULL) {
        KG_GOTO_GUARD(rc, kg_tls_fingerprint(issuer, out->issuer_fingerprint));
        out->id.issuer_fingerprint = out->issuer_fingerprint;
    }
    out->id.cn = out->cn;
    out->id.ous = out->ous;
    out->id.ou_count = ou_count;
    out->id.serial = out->serial;
    out->id.fingerprint = out->fingerprint;
out:
    OPENSSL_free(serial_hex);
    BN_free(serial);
    return rc;
}

kg_result kg_tls_identity_from(SSL *ssl, struct kg_tls_identity *out)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    kg_result rc = KG_RESULT_OK;

    memset(out, 0, sizeof(*out));
    KG_ENSURE(cert != NULL, KG_ERR_DENIED);
    KG_GOTO_ENSURE(rc, SSL_get_verify_result(ssl) == X509_V_OK, KG_ERR_DENIED);
    /* The verified chain runs leaf first: its second certificate is the CA
     * that signed the client's, which policy may bind a group to. */
    rc = kg_tls_identity_from_cert(cert, chain != NULL && sk_X509_num(chain) >= 2 ? sk_X509_value(chain, 1) : NULL,
                                   out);
out:
    X509_free(cert);
    return rc;
}

void kg_tls_identity_copy(struct kg_tls_identity *dst, const struct kg_tls_identity *src)
{
    *dst = *src;
    dst->id.cn = dst->cn;
    dst->id.serial = dst->serial;
    dst->id.fingerprint = dst->fingerprint;
    dst->id.issuer_fingerprint = src->id.issuer_fingerprint != NULL ? dst->issuer_fingerprint : NULL;
    for (size_t i = 0; i < KG_TLS_MAX_OUS; i++) {
        dst->ous[i] = dst->ou_text[i];
    }
    dst->id.ous = dst->ous;
}
