/* kg_pki.c - the client CA's certificates (kg_pki.h). */
#include "kg_pki.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "kg_secret.h"
#include "kg_tls.h"

#define KG_PKI_MAX_PEM (64u * 1024u) /* a CSR or a key; an RSA-16384 key is ~13 KiB */
#define KG_PKI_MIN_RSA 2048
#define KG_PKI_MAX_RSA 16384 /* OpenSSL's own ceiling for RSA verification */
#define KG_PKI_BACKDATE_SECONDS (5L * 60L)

/*
 * Fail with KG_ERR_CONFIG and a message (a format literal and its
 * arguments): every refusal here is about the input. OpenSSL's queue holds
 * the low-level reason of a parse failure; ours says it better, so it is
 * dropped. kg_error_set clears the detail, so the detail comes after it.
 */
#define KG_PKI_FAIL(...)                                                                                     \
    (ERR_clear_error(), kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__), kg_error_detail(__VA_ARGS__), \
     KG_RESULT_ERROR)

/* PEM callback: never prompt (the default would read a passphrase from the terminal). */
static int kg_pki_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

kg_result kg_pki_key_check(EVP_PKEY *key, const char *what)
{
    char group[64];
    int nid;

    KG_ENSURE(key != NULL, KG_ERR_INTERNAL);
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        if (EVP_PKEY_get_bits(key) < KG_PKI_MIN_RSA || EVP_PKEY_get_bits(key) > KG_PKI_MAX_RSA) {
            return KG_PKI_FAIL("%s is RSA-%d: refused (RSA keys must have %d to %d bits)", what,
                               EVP_PKEY_get_bits(key), KG_PKI_MIN_RSA, KG_PKI_MAX_RSA);
        }
        return KG_RESULT_OK;
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1) {
            return KG_PKI_FAIL("%s is EC on a curve without a name: refused (P-256 or P-384 only)", what);
        }
        nid = OBJ_txt2nid(group);
        if (nid == NID_undef) {
            nid = EC_curve_nist2nid(group);
        }
        if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1) {
            return KG_PKI_FAIL("%s is EC on %s: refused (P-256 or P-384 only)", what, group);
        }
        return KG_RESULT_OK;
    default:
        return KG_PKI_FAIL("%s is of type %s: refused (RSA or EC P-256/P-384 only)", what,
                           OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
    }
}

/* The first certificate of the bundle at `path` whose key is `key`; the caller owns *out. */
static kg_result kg_pki_find_cert(const char *path, EVP_PKEY *key, X509 **out)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert = NULL;
    int seen = 0;

    *out = NULL;
    if (bio == NULL) {
        return KG_PKI_FAIL("cannot open the CA certificate %s: %s", path, strerror(errno));
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, kg_pki_no_passphrase, NULL)) != NULL) {
        seen++;
        if (X509_check_private_key(cert, key) == 1) {
            break;
        }
        X509_free(cert);
    }
    BIO_free(bio);
    if (cert == NULL) {
        return KG_PKI_FAIL(seen == 0 ? "%s holds no PEM certificate"
                                     : "no certificate in %s matches the CA key (pki.ca_key): set pki.ca_cert",
                           path);
    }
    ERR_clear_error(); /* the end of the bundle, and key mismatches before the match */
    if (X509_check_ca(cert) < 1) {
        X509_free(cert);
        return KG_PKI_FAIL("the certificate in %s that matches the CA key is not a CA certificate", path);
    }
    *out = cert;
    return KG_RESULT_OK;
}

kg_result kg_pki_ca_load(const char *cert_path, const char *key_path, struct kg_pki_ca *ca)
{
    struct kg_secret *pem = NULL;
    kg_result rc = KG_RESULT_OK;
    BIO *bio = NULL;

    KG_ENSURE(ca != NULL && cert_path != NULL && key_path != NULL, KG_ERR_INTERNAL);
    memset(ca, 0, sizeof(*ca));
    /* Locked memory, wiped by kg_secret_free; OpenSSL reads private-key PEM
     * through its own cleansing buffers, so no copy of the text survives. */
    KG_GOTO_GUARD(rc, kg_secret_read_file(key_path, KG_PKI_MAX_PEM, &pem));
    bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    KG_GOTO_ENSURE(rc, bio != NULL, KG_ERR_NOMEM);
    ca->key = PEM_read_bio_PrivateKey(bio, NULL, kg_pki_no_passphrase, NULL);
    if (ca->key == NULL) {
        rc = KG_PKI_FAIL("%s holds no unencrypted PEM private key", key_path);
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_pki_key_check(ca->key, "the CA key"));
    KG_GOTO_GUARD(rc, kg_pki_find_cert(cert_path, ca->key, &ca->cert));
    KG_GOTO_GUARD(rc, kg_tls_fingerprint(ca->cert, ca->fingerprint));
out:
    BIO_free(bio);
    kg_secret_free(pem);
    if (kg_failed(rc)) {
        kg_pki_ca_cleanup(ca);
    }
    return rc;
}

void kg_pki_ca_cleanup(struct kg_pki_ca *ca)
{
    if (ca == NULL) {
        return;
    }
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    OPENSSL_cleanse(ca, sizeof(*ca));
}

/* Text of a name entry or a CN: 1..KG_PKI_MAX_CN bytes of UTF-8, no control characters. */
static bool kg_pki_text_ok(const unsigned char *s, int len)
{
    if (len < 1 || (unsigned)len > KG_PKI_MAX_CN) {
        return false;
    }
    for (int i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F) {
            return false;
        }
    }
    return true;
}

/* The CSR's one CN, as UTF-8. */
static kg_result kg_pki_csr_cn(const char *path, X509_REQ *req, char cn[KG_PKI_MAX_CN + 1])
{
    X509_NAME *subject = X509_REQ_get_subject_name(req);
    int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int len;

    if (at < 0) {
        return KG_PKI_FAIL("the CSR in %s has no CN in its subject", path);
    }
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, at) >= 0) {
        return KG_PKI_FAIL("the CSR in %s has more than one CN", path);
    }
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
    if (len < 0 || !kg_pki_text_ok(utf8, len)) {
        OPENSSL_free(utf8);
        return KG_PKI_FAIL("the CN of the CSR in %s is not 1 to %u characters of text", path, KG_PKI_MAX_CN);
    }
    memcpy(cn, utf8, (size_t)len);
    cn[len] = '\0';
    OPENSSL_free(utf8);
    return KG_RESULT_OK;
}

kg_result kg_pki_csr_read(const char *path, X509_REQ **out, char cn[KG_PKI_MAX_CN + 1])
{
    kg_result rc = KG_RESULT_OK;
    X509_REQ *req = NULL;
    EVP_PKEY *key;
    BIO *bio = NULL;
    struct stat st;

    KG_ENSURE(out != NULL && path != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    /* stat first only to refuse a huge or special file before parsing it;
     * a file swapped in between is just parsed, nothing more. */
    if (stat(path, &st) != 0) {
        return KG_PKI_FAIL("cannot open the CSR %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)KG_PKI_MAX_PEM) {
        return KG_PKI_FAIL("%s is not a regular file of at most %u bytes", path, KG_PKI_MAX_PEM);
    }
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        return KG_PKI_FAIL("cannot open the CSR %s: %s", path, strerror(errno));
    }
    req = PEM_read_bio_X509_REQ(bio, NULL, kg_pki_no_passphrase, NULL);
    if (req == NULL) {
        rc = KG_PKI_FAIL("%s holds no PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)", path);
        goto out;
    }
    key = X509_REQ_get0_pubkey(req);
    if (key == NULL) {
        rc = KG_PKI_FAIL("the CSR in %s has a public key this gateway cannot read", path);
        goto out;
    }
    /* The self-signature proves the requester holds the private key, and
     * that nobody changed the request on its way here. */
    if (X509_REQ_verify(req, key) != 1) {
        rc = KG_PKI_FAIL("the CSR in %s does not verify against its own key: altered or corrupt; refused", path);
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_pki_key_check(key, "the CSR's key"));
    KG_GOTO_GUARD(rc, kg_pki_csr_cn(path, req, cn));
    *out = req;
    req = NULL;
out:
    X509_REQ_free(req);
    BIO_free(bio);
    return rc;
}

/* 16 random bytes, positive and with the second bit set, so the DER
 * INTEGER is always exactly 16 bytes (RFC 5280 4.1.2.2 allows 20). */
static kg_result kg_pki_serial(X509 *cert)
{
    unsigned char raw[16];
    kg_result rc = KG_RESULT_OK;
    BIGNUM *bn = NULL;

    KG_ENSURE(RAND_bytes(raw, sizeof(raw)) == 1, KG_ERR_RANDOM);
    raw[0] = (unsigned char)((raw[0] & 0x7F) | 0x40);
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    KG_GOTO_ENSURE(rc, bn != NULL, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL, KG_ERR_NOMEM);
out:
    BN_free(bn);
    return rc;
}

static kg_result kg_pki_validity(const struct kg_pki_ca *ca, X509 *cert, uint32_t days)
{
    char ca_end[64] = "?";
    BIO *mem;

    if (days < 1 || days > KG_PKI_MAX_DAYS) {
        return KG_PKI_FAIL("validity of %u days: must be 1 to %u", days, KG_PKI_MAX_DAYS);
    }
    KG_ENSURE(X509_gmtime_adj(X509_getm_notBefore(cert), -KG_PKI_BACKDATE_SECONDS) != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) != NULL, KG_ERR_INTERNAL);
    /* A certificate that outlives its CA stops verifying when the CA does:
     * say so now rather than let it fail in a year. */
    if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca->cert)) > 0) {
        mem = BIO_new(BIO_s_mem());
        if (mem != NULL && ASN1_TIME_print(mem, X509_get0_notAfter(ca->cert)) == 1) {
            int n = BIO_read(mem, ca_end, (int)sizeof(ca_end) - 1);

            ca_end[n > 0 ? n : 0] = '\0';
        }
        BIO_free(mem);
        return KG_PKI_FAIL("%u days would outlast the CA certificate (valid until %s): ask for fewer days", days,
                           ca_end);
    }
    return KG_RESULT_OK;
}

static kg_result kg_pki_subject(X509 *cert, const struct kg_pki_request *req)
{
    X509_NAME *name = X509_NAME_new();
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(name != NULL, KG_ERR_NOMEM);
    if (req->ou != NULL) {
        KG_GOTO_ENSURE(rc,
                       X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_UTF8,
                                                  (const unsigned char *)req->ou, -1, -1, 0) == 1,
                       KG_ERR_NOMEM);
    }
    KG_GOTO_ENSURE(rc,
                   X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)req->cn, -1,
                                              -1, 0) == 1,
                   KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, X509_set_subject_name(cert, name) == 1, KG_ERR_NOMEM);
out:
    X509_NAME_free(name);
    return rc;
}

/* A host name of letters, digits and '-' in dot-separated labels (RFC 1123); no wildcards. */
static bool kg_pki_dns_ok(const char *s)
{
    size_t len = strlen(s), label = 0;

    if (len < 1 || len > 253) {
        return false;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-') {
                return false;
            }
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* One subjectAltName entry: an iPAddress when `text` parses as one, else a dNSName. */
static kg_result kg_pki_general_name(const char *text, GENERAL_NAME **out)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(text);
    ASN1_IA5STRING *dns = NULL;

    *out = NULL;
    ERR_clear_error(); /* "not an IP address", when it is a host name */
    if (gn == NULL) {
        ASN1_OCTET_STRING_free(ip);
        KG_BAIL(KG_ERR_NOMEM);
    }
    if (ip != NULL) {
        GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
        *out = gn;
        return KG_RESULT_OK;
    }
    if (!kg_pki_dns_ok(text)) {
        GENERAL_NAME_free(gn);
        return KG_PKI_FAIL("'%.80s' is neither an IP address nor a host name", text);
    }
    dns = ASN1_IA5STRING_new();
    if (dns == NULL || ASN1_STRING_set(dns, text, -1) != 1) {
        ASN1_IA5STRING_free(dns);
        GENERAL_NAME_free(gn);
        KG_BAIL(KG_ERR_NOMEM);
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
    *out = gn;
    return KG_RESULT_OK;
}

static kg_result kg_pki_san(X509 *cert, const struct kg_pki_request *req)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(names != NULL, KG_ERR_NOMEM);
    for (size_t i = 0; i < req->name_count; i++) {
        GENERAL_NAME *gn = NULL;

        KG_GOTO_GUARD(rc, kg_pki_general_name(req->names[i], &gn));
        if (sk_GENERAL_NAME_push(names, gn) <= 0) {
            GENERAL_NAME_free(gn);
            KG_GOTO_BAIL(rc, KG_ERR_NOMEM);
        }
    }
    KG_GOTO_ENSURE(rc, X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1,
                   KG_ERR_NOMEM);
out:
    GENERAL_NAMES_free(names);
    return rc;
}

static kg_result kg_pki_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    KG_ENSURE(ext != NULL, KG_ERR_INTERNAL);
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    KG_ENSURE(ok == 1, KG_ERR_NOMEM);
    return KG_RESULT_OK;
}

static kg_result kg_pki_extensions(const struct kg_pki_ca *ca, X509 *cert, const struct kg_pki_request *req,
                                   EVP_PKEY *subject_key)
{
    /* keyEncipherment only where it can happen: TLS_RSA_* key transport. */
    const bool rsa = EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA;
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, ca->cert, cert, NULL, NULL, 0);
    KG_GUARD(kg_pki_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    KG_GUARD(kg_pki_add_ext(cert, &ctx, NID_key_usage,
                            rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"));
    KG_GUARD(kg_pki_add_ext(cert, &ctx, NID_ext_key_usage,
                            req->profile == KG_PKI_SERVER ? "serverAuth,clientAuth" : "clientAuth"));
    KG_GUARD(kg_pki_add_ext(cert, &ctx, NID_subject_key_identifier, "hash"));
    KG_GUARD(kg_pki_add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (req->profile == KG_PKI_SERVER) {
        KG_GUARD(kg_pki_san(cert, req));
    }
    return KG_RESULT_OK;
}

static kg_result kg_pki_request_check(const struct kg_pki_request *req)
{
    KG_ENSURE(req->cn != NULL, KG_ERR_INTERNAL);
    if (!kg_pki_text_ok((const unsigned char *)req->cn, (int)strnlen(req->cn, KG_PKI_MAX_CN + 1))) {
        return KG_PKI_FAIL("the CN '%.80s' is not 1 to %u characters of text", req->cn, KG_PKI_MAX_CN);
    }
    switch (req->profile) {
    case KG_PKI_CLIENT:
        KG_ENSURE(req->ou != NULL && req->name_count == 0, KG_ERR_INTERNAL);
        return KG_RESULT_OK;
    case KG_PKI_SERVER:
        KG_ENSURE(req->ou == NULL && req->names != NULL, KG_ERR_INTERNAL);
        if (req->name_count < 1 || req->name_count > KG_PKI_MAX_NAMES) {
            return KG_PKI_FAIL("a server certificate needs 1 to %u names", KG_PKI_MAX_NAMES);
        }
        return KG_RESULT_OK;
    default:
        KG_BAIL(KG_ERR_INTERNAL);
    }
}

kg_result kg_pki_issue(const struct kg_pki_ca *ca, const struct kg_pki_request *req, EVP_PKEY *subject_key,
                       X509 **out)
{
    kg_result rc = KG_RESULT_OK;
    X509 *cert = NULL;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(ca != NULL && ca->cert != NULL && ca->key != NULL && req != NULL && subject_key != NULL,
              KG_ERR_INTERNAL);
    KG_GUARD(kg_pki_request_check(req));
    KG_GUARD(kg_pki_key_check(subject_key, "the certified key"));
    cert = X509_new();
    KG_ENSURE(cert != NULL, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, X509_set_version(cert, X509_VERSION_3) == 1, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pki_serial(cert));
    KG_GOTO_GUARD(rc, kg_pki_validity(ca, cert, req->days));
    KG_GOTO_GUARD(rc, kg_pki_subject(cert, req));
    KG_GOTO_ENSURE(rc, X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) == 1, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, X509_set_pubkey(cert, subject_key) == 1, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_pki_extensions(ca, cert, req, subject_key));
    KG_GOTO_ENSURE(rc, X509_sign(cert, ca->key, EVP_sha256()) > 0, KG_ERR_INTERNAL);
    *out = cert;
    cert = NULL;
out:
    X509_free(cert);
    return rc;
}

kg_result kg_pki_keygen(enum kg_pki_key_type type, EVP_PKEY **out)
{
    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    switch (type) {
    case KG_PKI_KEY_RSA3072:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case KG_PKI_KEY_EC_P256:
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    default:
        *out = NULL;
        KG_BAIL(KG_ERR_INTERNAL);
    }
    KG_ENSURE(*out != NULL, KG_ERR_RANDOM);
    return KG_RESULT_OK;
}
