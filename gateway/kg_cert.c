/*
 * kg_cert.c - an X.509 certificate's KMIP attributes (KMIP 1.4 sections
 * 3.6 to 3.16, KMIP 2.1 sections 4.6 to 4.8 and 4.61 to 4.63), made by the
 * server at Register from the certificate itself.
 *
 * OpenSSL parses the DER (bounded by its length; nothing after the
 * certificate is accepted). Nothing here is secret. Every attribute is a
 * server row (struct kg_op_server_rows) that no client may change.
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "kg_kmip.h"
#include "kg_ops.h"

/* The 2.x name parts (KMIP 2.1 Table 39) and the RDN each comes from. */
static const struct {
    int nid;
    const char *subject;
    const char *issuer;
} kg_cert_parts[] = {
#define KG_CERT_PART(nid, part) { nid, "Certificate Subject " part, "Certificate Issuer " part }
    KG_CERT_PART(NID_commonName, "CN"),           KG_CERT_PART(NID_organizationName, "O"),
    KG_CERT_PART(NID_organizationalUnitName, "OU"), KG_CERT_PART(NID_pkcs9_emailAddress, "Email"),
    KG_CERT_PART(NID_countryName, "C"),           KG_CERT_PART(NID_stateOrProvinceName, "ST"),
    KG_CERT_PART(NID_localityName, "L"),          KG_CERT_PART(NID_userId, "UID"),
    KG_CERT_PART(NID_serialNumber, "Serial Number"), KG_CERT_PART(NID_title, "Title"),
    KG_CERT_PART(NID_domainComponent, "DC"),      KG_CERT_PART(NID_dnQualifier, "DN Qualifier"),
#undef KG_CERT_PART
};

/* KMIP's Digital Signature Algorithm for OpenSSL signature NID `nid`; 0
 * when KMIP has no name for it (the attribute is then left out). */
static uint32_t kg_cert_signature_algorithm(int nid)
{
    static const struct {
        int nid;
        uint32_t dsa;
    } map[] = {
        { NID_md5WithRSAEncryption, KG_DSA_MD5_RSA },
        { NID_sha1WithRSAEncryption, KG_DSA_SHA1_RSA },
        { NID_sha224WithRSAEncryption, KG_DSA_SHA224_RSA },
        { NID_sha256WithRSAEncryption, KG_DSA_SHA256_RSA },
        { NID_sha384WithRSAEncryption, KG_DSA_SHA384_RSA },
        { NID_sha512WithRSAEncryption, KG_DSA_SHA512_RSA },
        { NID_rsassaPss, KG_DSA_RSASSA_PSS },
        { NID_dsaWithSHA1, KG_DSA_DSA_SHA1 },
        { NID_dsa_with_SHA224, KG_DSA_DSA_SHA224 },
        { NID_dsa_with_SHA256, KG_DSA_DSA_SHA256 },
        { NID_ecdsa_with_SHA1, KG_DSA_ECDSA_SHA1 },
        { NID_ecdsa_with_SHA224, KG_DSA_ECDSA_SHA224 },
        { NID_ecdsa_with_SHA256, KG_DSA_ECDSA_SHA256 },
        { NID_ecdsa_with_SHA384, KG_DSA_ECDSA_SHA384 },
        { NID_ecdsa_with_SHA512, KG_DSA_ECDSA_SHA512 },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].nid == nid) {
            return map[i].dsa;
        }
    }
    return 0;
}

/* An OpenSSL failure while reading a certificate the parser accepted. */
static kg_result kg_cert_fail(const char *what)
{
    kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
    kg_error_detail("certificate: %s", what);
    return KG_RESULT_ERROR;
}

/* The DER of `name` as Byte String `tag` into rows->w. */
static kg_result kg_cert_write_name_der(struct kg_ttlv_writer *w, uint32_t tag, const X509_NAME *name)
{
    const unsigned char *der = NULL;
    size_t len = 0;

    if (X509_NAME_get0_der(name, &der, &len) != 1 || len > KG_ATTR_VALUE_MAX) {
        return kg_cert_fail("distinguished name unreadable");
    }
    return kg_ttlv_write_bytes(w, tag, der, (uint32_t)len);
}

/* `name` as RFC 2253 text, Text String `tag` into w. */
static kg_result kg_cert_write_name_text(struct kg_ttlv_writer *w, uint32_t tag, const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    long len;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(bio != NULL, KG_ERR_NOMEM);
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
        rc = kg_cert_fail("distinguished name unprintable");
        goto out;
    }
    len = BIO_get_mem_data(bio, &text);
    KG_GOTO_ENSURE(rc, len >= 0 && len <= KG_ATTR_VALUE_MAX, KG_ERR_BAD_ATTRIBUTE);
    rc = kg_ttlv_write_text(w, tag, len > 0 ? text : "", (uint32_t)len);
out:
    BIO_free(bio);
    return rc;
}

/* Server row `row` = Structure { `tag`: `name` as DER bytes (`der`) or
 * as RFC 2253 text }. */
static kg_result kg_cert_name_row(struct kg_op_server_rows *rows, const char *row, uint32_t tag,
                                  const X509_NAME *name, bool der)
{
    uint32_t start = rows->w.len;

    KG_GUARD(kg_ttlv_begin_struct(&rows->w, KG_TAG_ATTRIBUTE_VALUE));
    KG_GUARD(der ? kg_cert_write_name_der(&rows->w, tag, name) : kg_cert_write_name_text(&rows->w, tag, name));
    KG_GUARD(kg_ttlv_end_struct(&rows->w));
    return kg_op_server_rows_close(rows, row, start);
}

/* The serial number in decimal, for the 1.0 Certificate Identifier's Text. */
static kg_result kg_cert_write_serial_text(struct kg_ttlv_writer *w, X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *dec = bn != NULL ? BN_bn2dec(bn) : NULL;
    kg_result rc;

    if (dec == NULL) {
        BN_free(bn);
        return kg_cert_fail("serial number unreadable");
    }
    rc = kg_ttlv_write_text(w, KG_TAG_SERIAL_NUMBER, dec, (uint32_t)strlen(dec));
    OPENSSL_free(dec);
    BN_free(bn);
    return rc;
}

/* Certificate Identifier: the issuer and serial number, as DER bytes
 * (X.509 Certificate Identifier, KMIP 1.1 on) or as text (KMIP 1.0). */
static kg_result kg_cert_identifier_row(X509 *x, struct kg_op_server_rows *rows, bool der)
{
    struct kg_ttlv_writer *w = &rows->w;
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    uint32_t start = w->len;

    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE_VALUE));
    if (der) {
        KG_GUARD(kg_cert_write_name_der(w, KG_TAG_ISSUER_DISTINGUISHED_NAME, X509_get_issuer_name(x)));
        /* The Serial Number field's content octets, as in the certificate. */
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_CERTIFICATE_SERIAL_NUMBER, ASN1_STRING_get0_data(serial),
                                     (uint32_t)ASN1_STRING_length(serial)));
    } else {
        KG_GUARD(kg_cert_write_name_text(w, KG_TAG_ISSUER, X509_get_issuer_name(x)));
        KG_GUARD(kg_cert_write_serial_text(w, x));
    }
    KG_GUARD(kg_ttlv_end_struct(w));
    return kg_op_server_rows_close(rows, der ? "X.509 Certificate Identifier" : "Certificate Identifier", start);
}

/* X.509 Certificate Identifier, Subject and Issuer (KMIP 1.1 on), and the
 * KMIP 1.0 Certificate Identifier, Subject and Issuer (text forms). */
static kg_result kg_cert_identity_rows(X509 *x, struct kg_op_server_rows *rows)
{
    const X509_NAME *subject = X509_get_subject_name(x), *issuer = X509_get_issuer_name(x);

    KG_GUARD(kg_cert_identifier_row(x, rows, true));
    KG_GUARD(kg_cert_name_row(rows, "X.509 Certificate Subject", KG_TAG_SUBJECT_DISTINGUISHED_NAME, subject, true));
    KG_GUARD(kg_cert_name_row(rows, "X.509 Certificate Issuer", KG_TAG_ISSUER_DISTINGUISHED_NAME, issuer, true));
    KG_GUARD(kg_cert_identifier_row(x, rows, false));
    KG_GUARD(kg_cert_name_row(rows, "Certificate Subject", KG_TAG_CERTIFICATE_SUBJECT_DISTINGUISHED_NAME, subject,
                              false));
    return kg_cert_name_row(rows, "Certificate Issuer", KG_TAG_CERTIFICATE_ISSUER_DISTINGUISHED_NAME, issuer, false);
}

/* One row per RDN entry of `name` that KMIP 2.x names (several OUs are
 * several instances), `subject` choosing the Subject or Issuer names. */
static kg_result kg_cert_part_rows(const X509_NAME *name, bool subject, struct kg_op_server_rows *rows)
{
    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));

        for (size_t p = 0; p < sizeof(kg_cert_parts) / sizeof(kg_cert_parts[0]); p++) {
            unsigned char *utf8 = NULL;
            int len;
            uint32_t start = rows->w.len;
            kg_result rc;

            if (kg_cert_parts[p].nid != nid) {
                continue;
            }
            len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
            if (len < 0) {
                return kg_cert_fail("name entry is not text");
            }
            rc = kg_ttlv_write_text(&rows->w, KG_TAG_ATTRIBUTE_VALUE, (const char *)utf8, (uint32_t)len);
            OPENSSL_free(utf8);
            KG_GUARD(rc);
            KG_GUARD(kg_op_server_rows_close(rows, subject ? kg_cert_parts[p].subject : kg_cert_parts[p].issuer,
                                             start));
        }
    }
    return KG_RESULT_OK;
}

/* Certificate Type, Length and Digital Signature Algorithm. */
static kg_result kg_cert_plain_rows(X509 *x, uint32_t len, struct kg_op_server_rows *rows)
{
    uint32_t start = rows->w.len;
    uint32_t dsa = kg_cert_signature_algorithm(X509_get_signature_nid(x));

    KG_GUARD(kg_ttlv_write_enum(&rows->w, KG_TAG_ATTRIBUTE_VALUE, KG_CERT_X509));
    KG_GUARD(kg_op_server_rows_close(rows, "Certificate Type", start));
    start = rows->w.len;
    KG_GUARD(kg_ttlv_write_int(&rows->w, KG_TAG_ATTRIBUTE_VALUE, (int32_t)len));
    KG_GUARD(kg_op_server_rows_close(rows, "Certificate Length", start));
    if (dsa != 0) {
        start = rows->w.len;
        KG_GUARD(kg_ttlv_write_enum(&rows->w, KG_TAG_ATTRIBUTE_VALUE, dsa));
        KG_GUARD(kg_op_server_rows_close(rows, "Digital Signature Algorithm", start));
    }
    return KG_RESULT_OK;
}

/* The certified key's KMIP algorithm and size (KMIP 2.1 Table 28: a
 * certificate's Cryptographic Algorithm and Length are its key's). */
static void kg_cert_key(X509 *x, uint32_t *algorithm, int32_t *bits)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    int id = pk != NULL ? EVP_PKEY_get_base_id(pk) : 0;

    *algorithm = id == EVP_PKEY_RSA ? KG_ALG_RSA : id == EVP_PKEY_EC ? KG_ALG_EC : 0;
    *bits = *algorithm != 0 ? EVP_PKEY_get_bits(pk) : 0;
}

kg_result kg_cert_parse(const uint8_t *der, uint32_t len, struct kg_op_server_rows *rows, uint32_t *algorithm,
                        int32_t *bits)
{
    const unsigned char *p = der;
    X509 *x = NULL;
    kg_result rc = KG_RESULT_OK;

    *algorithm = 0;
    *bits = 0;
    KG_ENSURE(len > 0 && len <= INT32_MAX, KG_ERR_INVALID_FIELD);
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len) {
        X509_free(x);
        ERR_clear_error(); /* the reason is ours to give; no stale error for the next OpenSSL user */
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("Certificate Value is not one DER X.509 certificate");
        return KG_RESULT_ERROR;
    }
    kg_cert_key(x, algorithm, bits);
    KG_GOTO_GUARD(rc, kg_cert_plain_rows(x, len, rows));
    KG_GOTO_GUARD(rc, kg_cert_identity_rows(x, rows));
    KG_GOTO_GUARD(rc, kg_cert_part_rows(X509_get_subject_name(x), true, rows));
    KG_GOTO_GUARD(rc, kg_cert_part_rows(X509_get_issuer_name(x), false, rows));
out:
    X509_free(x);
    return rc;
}
