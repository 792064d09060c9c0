/*
 * kg_p11_import.c - asymmetric keys a client registers or reads back in
 * the clear (kg_p11_import.h): a bounded DER walker and writer for private
 * keys that never copies a component, the HSM import and plaintext export
 * of private keys, and public keys from and to their components.
 */
#include "kg_p11_import.h"

#include "kg_p11_internal.h"
#include "kg_p11_pair.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

/* DER tags used here (X.690). */
#define KG_DER_INTEGER 0x02u
#define KG_DER_OCTET_STRING 0x04u
#define KG_DER_NULL 0x05u
#define KG_DER_OID 0x06u
#define KG_DER_SEQUENCE 0x30u
#define KG_DER_CONTEXT_0 0xA0u /* [0] constructed */

/* Algorithm OIDs of PrivateKeyInfo (RFC 8017, RFC 3279, RFC 5480), value only. */
static const uint8_t kg_p11_oid_rsa[] = { 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01 };
static const uint8_t kg_p11_oid_dsa[] = { 0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01 };
static const uint8_t kg_p11_oid_ec[] = { 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01 };

size_t kg_p11_parts_count(enum kg_p11_key_kind kind)
{
    switch (kind) {
    case KG_P11_KEY_RSA_PRIVATE:
        return 8;
    case KG_P11_KEY_DSA_PRIVATE:
    case KG_P11_KEY_DSA_PUBLIC:
        return 4;
    case KG_P11_KEY_EC_PRIVATE:
    case KG_P11_KEY_RSA_PUBLIC:
        return 2;
    default:
        return 0;
    }
}

void kg_p11_parts_cleanup(struct kg_p11_parts *parts)
{
    if (parts == NULL) {
        return;
    }
    kg_secret_free(parts->secret);
    memset(parts, 0, sizeof(*parts));
}

uint32_t kg_p11_span_bits(struct kg_p11_span s)
{
    size_t i = 0;
    uint32_t bits = 0;

    while (i < s.len && s.data[i] == 0) {
        i++;
    }
    if (i == s.len) {
        return 0;
    }
    for (uint8_t top = s.data[i]; top != 0; top >>= 1) {
        bits++;
    }
    return (uint32_t)((s.len - i - 1) * 8 + bits);
}

struct kg_p11_span kg_p11_span_trim(struct kg_p11_span s)
{
    while (s.len > 1 && s.data[0] == 0) {
        s.data++;
        s.len--;
    }
    return s;
}

/* ---- a bounded DER reader: spans only, never a copy ----------------------- */

/* The unread rest of one DER value. */
struct kg_p11_der {
    const uint8_t *data;
    size_t len;
    size_t pos;
};

static kg_result kg_p11_der_bad(const char *what)
{
    kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
    kg_error_detail("private key DER: %s", what);
    return KG_RESULT_ERROR;
}

static bool kg_p11_der_done(const struct kg_p11_der *d)
{
    return d->len - d->pos == 0;
}

/* The tag of the next element, or 0 when none is left. */
static uint8_t kg_p11_der_peek(const struct kg_p11_der *d)
{
    return kg_p11_der_done(d) ? 0 : d->data[d->pos];
}

/*
 * Read one element with tag `tag` (definite length, at most 3 length bytes)
 * into *body, a reader over exactly its contents.
 */
static kg_result kg_p11_der_read(struct kg_p11_der *d, uint8_t tag, struct kg_p11_der *body)
{
    size_t n = 0;
    size_t len_bytes;

    if (d->len - d->pos < 2 || d->data[d->pos] != tag) {
        return kg_p11_der_bad("unexpected element");
    }
    d->pos++;
    n = d->data[d->pos++];
    if (n & 0x80u) {
        len_bytes = n & 0x7Fu;
        if (len_bytes == 0 || len_bytes > 3 || d->len - d->pos < len_bytes) {
            return kg_p11_der_bad("bad length");
        }
        n = 0;
        for (size_t i = 0; i < len_bytes; i++) {
            n = (n << 8) | d->data[d->pos++];
        }
    }
    if (d->len - d->pos < n) {
        return kg_p11_der_bad("element longer than its container");
    }
    *body = (struct kg_p11_der){ .data = d->data + d->pos, .len = n, .pos = 0 };
    d->pos += n;
    return KG_RESULT_OK;
}

/* A non-negative INTEGER as an unsigned span into the input. */
static kg_result kg_p11_der_uint(struct kg_p11_der *d, struct kg_p11_span *out)
{
    struct kg_p11_der body;

    KG_GUARD(kg_p11_der_read(d, KG_DER_INTEGER, &body));
    if (body.len == 0 || (body.data[0] & 0x80u) != 0) {
        return kg_p11_der_bad("empty or negative integer");
    }
    *out = kg_p11_span_trim((struct kg_p11_span){ body.data, body.len });
    if (out->len > KG_P11_PART_MAX) {
        return kg_p11_der_bad("integer too long");
    }
    return KG_RESULT_OK;
}

/* An INTEGER that must be the small value `want` (a version field). */
static kg_result kg_p11_der_version(struct kg_p11_der *d, uint8_t want)
{
    struct kg_p11_span v;

    KG_GUARD(kg_p11_der_uint(d, &v));
    if (v.len != 1 || v.data[0] != want) {
        return kg_p11_der_bad("unsupported version");
    }
    return KG_RESULT_OK;
}

static kg_result kg_p11_der_finish(const struct kg_p11_der *d)
{
    return kg_p11_der_done(d) ? KG_RESULT_OK : kg_p11_der_bad("trailing bytes");
}

/* RSAPrivateKey (RFC 8017 A.1.2): version 0 (two primes) and eight integers. */
static kg_result kg_p11_der_rsa(struct kg_p11_der *d, struct kg_p11_parts *out)
{
    struct kg_p11_der seq;

    KG_GUARD(kg_p11_der_read(d, KG_DER_SEQUENCE, &seq));
    KG_GUARD(kg_p11_der_finish(d));
    KG_GUARD(kg_p11_der_version(&seq, 0));
    for (size_t i = 0; i < 8; i++) {
        KG_GUARD(kg_p11_der_uint(&seq, &out->part[i]));
    }
    KG_GUARD(kg_p11_der_finish(&seq));
    out->kind = KG_P11_KEY_RSA_PRIVATE;
    out->count = 8;
    return KG_RESULT_OK;
}

/* ECPrivateKey (RFC 5915): version 1, the private value, then optional
 * [0] parameters and [1] public key, which are public and skipped; nothing
 * else may follow. */
static kg_result kg_p11_der_ec(struct kg_p11_der *d, struct kg_p11_parts *out)
{
    struct kg_p11_der seq, priv, skipped;

    KG_GUARD(kg_p11_der_read(d, KG_DER_SEQUENCE, &seq));
    KG_GUARD(kg_p11_der_finish(d));
    KG_GUARD(kg_p11_der_version(&seq, 1));
    KG_GUARD(kg_p11_der_read(&seq, KG_DER_OCTET_STRING, &priv));
    if (priv.len == 0 || priv.len > KG_P11_PART_MAX) {
        return kg_p11_der_bad("bad EC private value");
    }
    if (!kg_p11_der_done(&seq) && seq.data[seq.pos] == 0xA0) {
        KG_GUARD(kg_p11_der_read(&seq, 0xA0, &skipped));
    }
    if (!kg_p11_der_done(&seq) && seq.data[seq.pos] == 0xA1) {
        KG_GUARD(kg_p11_der_read(&seq, 0xA1, &skipped));
    }
    KG_GUARD(kg_p11_der_finish(&seq));
    out->part[1] = (struct kg_p11_span){ priv.data, priv.len };
    out->kind = KG_P11_KEY_EC_PRIVATE;
    out->count = 2;
    return KG_RESULT_OK;
}

static bool kg_p11_der_is_oid(const struct kg_p11_der *oid, const uint8_t *want, size_t want_len)
{
    return oid->len == want_len && memcmp(oid->data, want, want_len) == 0;
}

/* PrivateKeyInfo (RFC 5208 section 5): version 0, AlgorithmIdentifier,
 * the key as an OCTET STRING, optional [0] attributes (public, ignored). */
static kg_result kg_p11_der_pkcs8(struct kg_p11_der *d, struct kg_p11_parts *out)
{
    struct kg_p11_der seq, alg, oid, params, key;
    const uint8_t *params_at = NULL;

    KG_GUARD(kg_p11_der_read(d, KG_DER_SEQUENCE, &seq));
    KG_GUARD(kg_p11_der_finish(d));
    KG_GUARD(kg_p11_der_version(&seq, 0));
    KG_GUARD(kg_p11_der_read(&seq, KG_DER_SEQUENCE, &alg));
    KG_GUARD(kg_p11_der_read(&alg, KG_DER_OID, &oid));
    KG_GUARD(kg_p11_der_read(&seq, KG_DER_OCTET_STRING, &key));
    if (kg_p11_der_peek(&seq) == KG_DER_CONTEXT_0) {
        struct kg_p11_der attrs;

        KG_GUARD(kg_p11_der_read(&seq, KG_DER_CONTEXT_0, &attrs));
    }
    KG_GUARD(kg_p11_der_finish(&seq));

    if (kg_p11_der_is_oid(&oid, kg_p11_oid_rsa, sizeof(kg_p11_oid_rsa))) {
        if (kg_p11_der_peek(&alg) == KG_DER_NULL) {
            KG_GUARD(kg_p11_der_read(&alg, KG_DER_NULL, &params));
        }
        KG_GUARD(kg_p11_der_finish(&alg));
        return kg_p11_der_rsa(&key, out);
    }
    if (kg_p11_der_is_oid(&oid, kg_p11_oid_dsa, sizeof(kg_p11_oid_dsa))) {
        KG_GUARD(kg_p11_der_read(&alg, KG_DER_SEQUENCE, &params));
        KG_GUARD(kg_p11_der_finish(&alg));
        for (size_t i = 0; i < 3; i++) {
            KG_GUARD(kg_p11_der_uint(&params, &out->part[i]));
        }
        KG_GUARD(kg_p11_der_finish(&params));
        KG_GUARD(kg_p11_der_uint(&key, &out->part[3]));
        KG_GUARD(kg_p11_der_finish(&key));
        out->kind = KG_P11_KEY_DSA_PRIVATE;
        out->count = 4;
        return KG_RESULT_OK;
    }
    if (kg_p11_der_is_oid(&oid, kg_p11_oid_ec, sizeof(kg_p11_oid_ec))) {
        /* The namedCurve OID whole (tag and length too): CKA_EC_PARAMS. */
        params_at = alg.data + alg.pos;
        KG_GUARD(kg_p11_der_read(&alg, KG_DER_OID, &params));
        KG_GUARD(kg_p11_der_finish(&alg));
        out->part[0] = (struct kg_p11_span){ params_at, (size_t)(params.data + params.len - params_at) };
        if (kg_p11_curve_of_oid(out->part[0].data, out->part[0].len) == KG_P11_CURVE_NONE) {
            kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
            kg_error_detail("EC private key on a curve other than P-256 and P-384");
            return KG_RESULT_ERROR;
        }
        return kg_p11_der_ec(&key, out);
    }
    kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
    kg_error_detail("PKCS#8 key of an algorithm other than RSA, DSA and EC");
    return KG_RESULT_ERROR;
}

kg_result kg_p11_private_from_der(const uint8_t *der, size_t len, enum kg_p11_private_format format,
                                  struct kg_p11_parts *out)
{
    struct kg_p11_der d = { .data = der, .len = len, .pos = 0 };
    kg_result rc;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_ENSURE(der != NULL && len > 0, KG_ERR_INVALID_FIELD);
    rc = format == KG_P11_PRIVATE_PKCS1 ? kg_p11_der_rsa(&d, out) : kg_p11_der_pkcs8(&d, out);
    if (kg_failed(rc)) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- a DER writer into locked memory --------------------------------------
 * Sizes are computed first, so the one kg_secret is allocated at its size
 * and every component is copied exactly once, into it. */

struct kg_p11_der_out {
    uint8_t *buf; /* NULL: count only */
    size_t len;
};

static size_t kg_p11_der_head_len(size_t n)
{
    return n < 0x80 ? 2 : (n < 0x100 ? 3 : (n < 0x10000 ? 4 : 5));
}

static void kg_p11_der_put(struct kg_p11_der_out *o, const uint8_t *b, size_t n)
{
    if (o->buf != NULL && n > 0) {
        memcpy(o->buf + o->len, b, n);
    }
    o->len += n;
}

static void kg_p11_der_head(struct kg_p11_der_out *o, uint8_t tag, size_t n)
{
    uint8_t h[5];
    size_t k = kg_p11_der_head_len(n);

    h[0] = tag;
    if (k == 2) {
        h[1] = (uint8_t)n;
    } else {
        h[1] = (uint8_t)(0x80u | (k - 2));
        for (size_t i = 0; i < k - 2; i++) {
            h[k - 1 - i] = (uint8_t)(n >> (8 * i));
        }
    }
    kg_p11_der_put(o, h, k);
}

/* Contents length of the minimal INTEGER of unsigned `s`. */
static size_t kg_p11_der_int_body(struct kg_p11_span s)
{
    s = kg_p11_span_trim(s);
    return s.len == 0 ? 1 : s.len + ((s.data[0] & 0x80u) ? 1 : 0);
}

static size_t kg_p11_der_int_len(struct kg_p11_span s)
{
    size_t body = kg_p11_der_int_body(s);

    return kg_p11_der_head_len(body) + body;
}

static void kg_p11_der_int(struct kg_p11_der_out *o, struct kg_p11_span s)
{
    static const uint8_t zero = 0;
    size_t body = kg_p11_der_int_body(s);

    s = kg_p11_span_trim(s);
    kg_p11_der_head(o, KG_DER_INTEGER, body);
    if (s.len == 0 || (s.data[0] & 0x80u)) {
        kg_p11_der_put(o, &zero, 1);
    }
    kg_p11_der_put(o, s.data, s.len);
}

/* Contents length of SEQUENCE { INTEGER version, parts[from..to) }. */
static size_t kg_p11_der_ints_len(const struct kg_p11_parts *p, size_t from, size_t to, bool version)
{
    size_t n = version ? 3 : 0;

    for (size_t i = from; i < to; i++) {
        n += kg_p11_der_int_len(p->part[i]);
    }
    return n;
}

static void kg_p11_der_ints(struct kg_p11_der_out *o, const struct kg_p11_parts *p, size_t from, size_t to,
                            bool version)
{
    static const uint8_t v0[] = { KG_DER_INTEGER, 1, 0 };

    kg_p11_der_head(o, KG_DER_SEQUENCE, kg_p11_der_ints_len(p, from, to, version));
    if (version) {
        kg_p11_der_put(o, v0, sizeof(v0));
    }
    for (size_t i = from; i < to; i++) {
        kg_p11_der_int(o, p->part[i]);
    }
}

/* AlgorithmIdentifier contents: the OID and its parameters (RSA: NULL,
 * DSA: SEQUENCE { p, q, g }). */
static size_t kg_p11_der_alg_len(const struct kg_p11_parts *p)
{
    if (p->kind == KG_P11_KEY_RSA_PRIVATE) {
        return 2 + sizeof(kg_p11_oid_rsa) + 2;
    }
    size_t params = kg_p11_der_ints_len(p, 0, 3, false);

    return 2 + sizeof(kg_p11_oid_dsa) + kg_p11_der_head_len(params) + params;
}

static void kg_p11_der_alg(struct kg_p11_der_out *o, const struct kg_p11_parts *p)
{
    static const uint8_t null[] = { KG_DER_NULL, 0 };
    bool rsa = p->kind == KG_P11_KEY_RSA_PRIVATE;

    kg_p11_der_head(o, KG_DER_SEQUENCE, kg_p11_der_alg_len(p));
    kg_p11_der_head(o, KG_DER_OID, rsa ? sizeof(kg_p11_oid_rsa) : sizeof(kg_p11_oid_dsa));
    kg_p11_der_put(o, rsa ? kg_p11_oid_rsa : kg_p11_oid_dsa, rsa ? sizeof(kg_p11_oid_rsa) : sizeof(kg_p11_oid_dsa));
    if (rsa) {
        kg_p11_der_put(o, null, sizeof(null));
    } else {
        kg_p11_der_ints(o, p, 0, 3, false);
    }
}

/* The key itself: RSAPrivateKey, or the DSA private INTEGER x. */
static size_t kg_p11_der_key_len(const struct kg_p11_parts *p)
{
    if (p->kind == KG_P11_KEY_RSA_PRIVATE) {
        size_t body = kg_p11_der_ints_len(p, 0, 8, true);

        return kg_p11_der_head_len(body) + body;
    }
    return kg_p11_der_int_len(p->part[3]);
}

static void kg_p11_der_key(struct kg_p11_der_out *o, const struct kg_p11_parts *p)
{
    if (p->kind == KG_P11_KEY_RSA_PRIVATE) {
        kg_p11_der_ints(o, p, 0, 8, true);
    } else {
        kg_p11_der_int(o, p->part[3]);
    }
}

/* PrivateKeyInfo contents. */
static size_t kg_p11_der_pkcs8_len(const struct kg_p11_parts *p)
{
    size_t alg = kg_p11_der_alg_len(p);
    size_t key = kg_p11_der_key_len(p);

    return 3 + kg_p11_der_head_len(alg) + alg + kg_p11_der_head_len(key) + key;
}

static void kg_p11_der_write(struct kg_p11_der_out *o, const struct kg_p11_parts *p,
                             enum kg_p11_private_format format)
{
    static const uint8_t v0[] = { KG_DER_INTEGER, 1, 0 };

    if (format == KG_P11_PRIVATE_PKCS1) {
        kg_p11_der_key(o, p);
        return;
    }
    kg_p11_der_head(o, KG_DER_SEQUENCE, kg_p11_der_pkcs8_len(p));
    kg_p11_der_put(o, v0, sizeof(v0));
    kg_p11_der_alg(o, p);
    kg_p11_der_head(o, KG_DER_OCTET_STRING, kg_p11_der_key_len(p));
    kg_p11_der_key(o, p);
}

kg_result kg_p11_private_to_der(const struct kg_p11_parts *parts, enum kg_p11_private_format format,
                                struct kg_secret **out)
{
    struct kg_p11_der_out o = { NULL, 0 };

    KG_ENSURE(parts != NULL && out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    if (parts->kind != KG_P11_KEY_RSA_PRIVATE && parts->kind != KG_P11_KEY_DSA_PRIVATE) {
        kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
        kg_error_detail("only RSA and DSA private keys are written as DER here");
        return KG_RESULT_ERROR;
    }
    if (format == KG_P11_PRIVATE_PKCS1 && parts->kind != KG_P11_KEY_RSA_PRIVATE) {
        kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
        kg_error_detail("PKCS#1 is a format of RSA keys only");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(parts->count == kg_p11_parts_count(parts->kind), KG_ERR_INVALID_FIELD);
    kg_p11_der_write(&o, parts, format); /* counting pass */
    KG_GUARD(kg_secret_alloc(o.len, out));
    o = (struct kg_p11_der_out){ (*out)->data, 0 };
    kg_p11_der_write(&o, parts, format);
    (*out)->len = o.len;
    return KG_RESULT_OK;
}

/* ---- private keys in the HSM --------------------------------------------- */

/* CKA_ types of the components of `kind`, in kg_p11_parts order. */
static const CK_ATTRIBUTE_TYPE *kg_p11_parts_attrs(enum kg_p11_key_kind kind, CK_KEY_TYPE *type)
{
    static const CK_ATTRIBUTE_TYPE rsa[] = { CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
                                             CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT };
    static const CK_ATTRIBUTE_TYPE dsa[] = { CKA_PRIME, CKA_SUBPRIME, CKA_BASE, CKA_VALUE };
    static const CK_ATTRIBUTE_TYPE ec[] = { CKA_EC_PARAMS, CKA_VALUE };

    switch (kind) {
    case KG_P11_KEY_RSA_PRIVATE:
        *type = CKK_RSA;
        return rsa;
    case KG_P11_KEY_DSA_PRIVATE:
        *type = CKK_DSA;
        return dsa;
    case KG_P11_KEY_EC_PRIVATE:
        *type = CKK_EC;
        return ec;
    default:
        return NULL;
    }
}

static kg_result kg_p11_parts_check(const struct kg_p11_parts *parts)
{
    if (parts->count != kg_p11_parts_count(parts->kind)) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("key has %zu components, %zu expected", parts->count, kg_p11_parts_count(parts->kind));
        return KG_RESULT_ERROR;
    }
    for (size_t i = 0; i < parts->count; i++) {
        if (parts->part[i].data == NULL || parts->part[i].len == 0 || parts->part[i].len > KG_P11_PART_MAX) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("key component %zu is empty or longer than %u bytes", i, KG_P11_PART_MAX);
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

kg_result kg_p11_import_private(struct kg_p11 *p11, const struct kg_p11_parts *parts, struct kg_p11_blob *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = 0;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    const CK_ATTRIBUTE_TYPE *attrs = NULL;
    /* Sensitive, extractable only so that it can be wrapped under the MWK,
     * no use at all: its uses come with each unwrap (kg_p11_key_load). */
    CK_ATTRIBUTE tmpl[6 + KG_P11_PARTS_MAX] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &type, sizeof(type) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
    };
    CK_ULONG n = 6;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && parts != NULL && out != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    attrs = kg_p11_parts_attrs(parts->kind, &type);
    KG_ENSURE(attrs != NULL, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_parts_check(parts));
    for (size_t i = 0; i < parts->count; i++) {
        /* Straight from the caller's (locked) buffer: no copy on our side.
         * The cast drops const only: C_CreateObject reads the template. */
        struct kg_p11_span v = attrs[i] == CKA_EC_PARAMS ? parts->part[i] : kg_p11_span_trim(parts->part[i]);

        tmpl[n++] = (CK_ATTRIBUTE){ attrs[i], (CK_VOID_PTR)v.data, v.len };
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_CreateObject(s, tmpl, n, &obj), "C_CreateObject"));
    KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, obj, out));
out:
    rc = kg_p11_finish(p11, s, obj, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(out);
    }
    return rc;
}

/* Read the components `attrs` of `h` into one new kg_secret: lengths
 * first, then the values straight into the locked pages. */
static kg_result kg_p11_read_parts(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                                   const CK_ATTRIBUTE_TYPE *attrs, struct kg_p11_parts *out)
{
    CK_ATTRIBUTE q[KG_P11_PARTS_MAX];
    CK_ULONG room[KG_P11_PARTS_MAX];
    size_t total = 0;
    size_t off = 0;

    for (size_t i = 0; i < out->count; i++) {
        q[i] = (CK_ATTRIBUTE){ attrs[i], NULL, 0 };
    }
    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, h, q, out->count), "C_GetAttributeValue"));
    for (size_t i = 0; i < out->count; i++) {
        if (q[i].ulValueLen == CK_UNAVAILABLE_INFORMATION || q[i].ulValueLen == 0 ||
            q[i].ulValueLen > KG_P11_PART_MAX) {
            kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
            kg_error_detail("private key component 0x%lx is not readable", (unsigned long)attrs[i]);
            return KG_RESULT_ERROR;
        }
        total += q[i].ulValueLen;
    }
    KG_GUARD(kg_secret_alloc(total, &out->secret));
    for (size_t i = 0; i < out->count; i++) {
        q[i].pValue = out->secret->data + off;
        room[i] = q[i].ulValueLen;
        off += q[i].ulValueLen;
    }
    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, h, q, out->count), "C_GetAttributeValue"));
    /* A token may report an upper bound first: each value starts where its
     * room does, and must fit in it. */
    for (size_t i = 0; i < out->count; i++) {
        if (q[i].ulValueLen == 0 || q[i].ulValueLen > room[i]) {
            kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
            kg_error_detail("private key component 0x%lx changed length", (unsigned long)attrs[i]);
            return KG_RESULT_ERROR;
        }
        out->part[i] = (struct kg_p11_span){ q[i].pValue, q[i].ulValueLen };
    }
    out->secret->len = off;
    return KG_RESULT_OK;
}

kg_result kg_p11_export_private(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, struct kg_p11_parts *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE tmp = CK_INVALID_HANDLE;
    CK_KEY_TYPE type = 0;
    const CK_ATTRIBUTE_TYPE *attrs = NULL;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && ref != NULL && out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    attrs = kg_p11_parts_attrs(ref->kind, &type);
    KG_ENSURE(attrs != NULL, KG_ERR_INVALID_FIELD);
    out->kind = ref->kind;
    out->count = kg_p11_parts_count(ref->kind);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, ref, KG_P11_USE_READ, &h, &tmp));
    KG_GOTO_GUARD(rc, kg_p11_read_parts(p11, s, h, attrs, out));
out:
    rc = kg_p11_finish(p11, s, tmp, rc);
    if (kg_failed(rc)) {
        kg_p11_parts_cleanup(out);
    }
    return rc;
}

/* ---- public keys: components <-> SubjectPublicKeyInfo (nothing secret) ---- */

kg_result kg_p11_public_from_parts(const struct kg_p11_parts *parts, struct kg_p11_blob *out, uint32_t *bits)
{
    static const char *const rsa_names[] = { OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E };
    static const char *const dsa_names[] = { OSSL_PKEY_PARAM_FFC_P, OSSL_PKEY_PARAM_FFC_Q, OSSL_PKEY_PARAM_FFC_G,
                                             OSSL_PKEY_PARAM_PUB_KEY };
    bool rsa = parts != NULL && parts->kind == KG_P11_KEY_RSA_PUBLIC;
    const char *const *names = rsa ? rsa_names : dsa_names;
    BIGNUM *bn[KG_P11_PARTS_MAX] = { NULL };
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    unsigned char *der = NULL;
    int len = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(parts != NULL && out != NULL && bits != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    KG_ENSURE(parts->kind == KG_P11_KEY_RSA_PUBLIC || parts->kind == KG_P11_KEY_DSA_PUBLIC, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_p11_parts_check(parts));
    bld = OSSL_PARAM_BLD_new();
    KG_GOTO_ENSURE(rc, bld != NULL, KG_ERR_NOMEM);
    for (size_t i = 0; i < parts->count; i++) {
        bn[i] = BN_bin2bn(parts->part[i].data, (int)parts->part[i].len, NULL);
        KG_GOTO_ENSURE(rc, bn[i] != NULL && OSSL_PARAM_BLD_push_BN(bld, names[i], bn[i]) == 1, KG_ERR_NOMEM);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, rsa ? "RSA" : "DSA", NULL);
    KG_GOTO_ENSURE(rc, params != NULL && ctx != NULL, KG_ERR_NOMEM);
    if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
        (len = i2d_PUBKEY(pkey, &der)) <= 0 || (size_t)len > sizeof(out->bytes)) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("the %s public key components do not make a key", rsa ? "RSA" : "DSA");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    memcpy(out->bytes, der, (size_t)len);
    out->len = (uint32_t)len;
    *bits = kg_p11_span_bits(parts->part[0]);
out:
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < KG_P11_PARTS_MAX; i++) {
        BN_free(bn[i]);
    }
    return rc;
}

kg_result kg_p11_public_to_parts(const struct kg_p11_blob *blob, uint8_t *buf, size_t cap, struct kg_p11_parts *out)
{
    static const char *const rsa_names[] = { OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E };
    static const char *const dsa_names[] = { OSSL_PKEY_PARAM_FFC_P, OSSL_PKEY_PARAM_FFC_Q, OSSL_PKEY_PARAM_FFC_G,
                                             OSSL_PKEY_PARAM_PUB_KEY };
    const unsigned char *p = NULL;
    EVP_PKEY *pkey = NULL;
    const char *const *names = NULL;
    size_t off = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(blob != NULL && buf != NULL && out != NULL && blob->len <= sizeof(blob->bytes), KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    p = blob->bytes;
    pkey = d2i_PUBKEY(NULL, &p, (long)blob->len);
    KG_GOTO_ENSURE(rc, pkey != NULL && p == blob->bytes + blob->len, KG_ERR_INVALID_FIELD);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        out->kind = KG_P11_KEY_RSA_PUBLIC;
        names = rsa_names;
    } else if (EVP_PKEY_is_a(pkey, "DSA")) {
        out->kind = KG_P11_KEY_DSA_PUBLIC;
        names = dsa_names;
    } else {
        kg_error_set(KG_ERR_UNSUPPORTED_FORMAT, __FILE__, __LINE__);
        kg_error_detail("transparent public keys are RSA or DSA");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    out->count = kg_p11_parts_count(out->kind);
    for (size_t i = 0; i < out->count; i++) {
        BIGNUM *bn = NULL;
        int n = 0;

        KG_GOTO_ENSURE(rc, EVP_PKEY_get_bn_param(pkey, names[i], &bn) == 1, KG_ERR_INVALID_FIELD);
        if ((size_t)BN_num_bytes(bn) > cap - off) {
            BN_free(bn);
            KG_GOTO_BAIL(rc, KG_ERR_INVALID_FIELD);
        }
        n = BN_bn2bin(bn, buf + off);
        BN_free(bn);
        out->part[i] = (struct kg_p11_span){ buf + off, (size_t)n };
        off += (size_t)n;
    }
out:
    EVP_PKEY_free(pkey);
    if (kg_failed(rc)) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
