/* kg_p11_uri.c - bounded parser for the PKCS#11 URIs of kg_p11_uri.h. */
#include "kg_p11_uri.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KG_P11_URI_SCHEME "pkcs11:"
#define KG_P11_URI_SCHEME_LEN 7u
/* Attribute names are echoed in messages only when short and plain. */
#define KG_P11_URI_MAX_NAME 32u

static kg_result kg_p11_uri_fail(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static kg_result kg_p11_uri_fail(int line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kg_error_set(KG_ERR_CONFIG, __FILE__, line);
    kg_error_detail("pkcs11 URI: %s", msg);
    return KG_RESULT_ERROR;
}

#define KG_P11_URI_FAIL(...) kg_p11_uri_fail(__LINE__, __VA_ARGS__)

bool kg_p11_uri_is(const char *s)
{
    if (s == NULL) {
        return false;
    }
    for (size_t i = 0; i < KG_P11_URI_SCHEME_LEN; i++) {
        char c = s[i];

        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != KG_P11_URI_SCHEME[i]) {
            return false; /* also stops at a NUL before the end of the scheme */
        }
    }
    return true;
}

static int kg_p11_uri_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* RFC 7512 pk11-pchar without pct-encoded: unreserved / pk11-path-res-avail. */
static bool kg_p11_uri_pchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~:[]@!$'()*+,=&", c) != NULL;
}

/*
 * Percent-decode value v[0..n) of attribute `name` into out[0..cap).
 * A '%' needs two hex digits; a character outside pk11-pchar is refused (it
 * should have been encoded), so "object=a b" cannot mean two things.
 */
static kg_result kg_p11_uri_decode(const char *name, const char *v, size_t n, uint8_t *out, size_t cap,
                                   size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t byte;

        if (v[i] == '%') {
            int hi = n - i > 2 ? kg_p11_uri_hex(v[i + 1]) : -1;
            int lo = n - i > 2 ? kg_p11_uri_hex(v[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                return KG_P11_URI_FAIL("%s: '%%' must be followed by two hex digits", name);
            }
            byte = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (kg_p11_uri_pchar(v[i])) {
            byte = (uint8_t)v[i];
        } else {
            return KG_P11_URI_FAIL("%s: a character at offset %zu must be percent-encoded", name, i);
        }
        if (o == cap) {
            return KG_P11_URI_FAIL("%s is longer than %zu bytes", name, cap);
        }
        out[o++] = byte;
    }
    *out_len = o;
    return KG_RESULT_OK;
}

/* A decoded label: non-empty, and no NUL inside, as libp11 hands labels
 * around as C strings and a NUL would silently cut the name short. */
static kg_result kg_p11_uri_label(const char *name, const char *v, size_t n, char *out, size_t cap)
{
    size_t len = 0;

    KG_GUARD(kg_p11_uri_decode(name, v, n, (uint8_t *)out, cap, &len));
    if (len == 0) {
        return KG_P11_URI_FAIL("%s is empty", name);
    }
    if (memchr(out, '\0', len) != NULL) {
        return KG_P11_URI_FAIL("%s contains a NUL byte (%%00)", name);
    }
    out[len] = '\0';
    return KG_RESULT_OK;
}

/* id: all "%xx" triplets, or bare hex digits; see kg_p11_uri.h. */
static kg_result kg_p11_uri_id(const char *v, size_t n, struct kg_p11_uri *out)
{
    bool pct = memchr(v, '%', n) != NULL;

    if (n == 0) {
        return KG_P11_URI_FAIL("id is empty");
    }
    if (pct) {
        for (size_t i = 0; i < n; i += 3) {
            if (v[i] != '%') {
                return KG_P11_URI_FAIL("id mixes %%xx bytes and bare hex; write every byte one way "
                                       "(id=%%01%%a2 or id=01a2)");
            }
        }
        KG_GUARD(kg_p11_uri_decode("id", v, n, out->id, sizeof(out->id), &out->id_len));
        return KG_RESULT_OK;
    }
    if (n % 2 != 0) {
        return KG_P11_URI_FAIL("id in hex needs an even number of digits");
    }
    if (n / 2 > sizeof(out->id)) {
        return KG_P11_URI_FAIL("id is longer than %zu bytes", sizeof(out->id));
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = kg_p11_uri_hex(v[i]);
        int lo = kg_p11_uri_hex(v[i + 1]);

        if (hi < 0 || lo < 0) {
            return KG_P11_URI_FAIL("id must be hex digits or %%xx bytes");
        }
        out->id[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->id_len = n / 2;
    return KG_RESULT_OK;
}

/* Copy an attribute name for a message when it is short and plain, else a
 * placeholder: it comes from a file an operator will paste into a ticket. */
static const char *kg_p11_uri_name_text(char buf[KG_P11_URI_MAX_NAME + 1], const char *name, size_t n)
{
    if (n == 0 || n > KG_P11_URI_MAX_NAME) {
        return "(unreadable)";
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_')) {
            return "(unreadable)";
        }
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    return buf;
}

/* One "name=value" of the path. `seen` bits: 1 object, 2 id, 4 token. */
static kg_result kg_p11_uri_attr(const char *a, size_t n, unsigned *seen, struct kg_p11_uri *out)
{
    const char *eq = memchr(a, '=', n);
    char nbuf[KG_P11_URI_MAX_NAME + 1];
    size_t name_len;
    const char *v;
    size_t vn;
    unsigned bit;

    if (n == 0) {
        return KG_P11_URI_FAIL("empty attribute (a ';' too many?)");
    }
    if (eq == NULL) {
        return KG_P11_URI_FAIL("attribute '%s' has no '=value'", kg_p11_uri_name_text(nbuf, a, n));
    }
    name_len = (size_t)(eq - a);
    v = eq + 1;
    vn = n - name_len - 1;
    if (name_len == 6 && memcmp(a, "object", 6) == 0) {
        bit = 1;
    } else if (name_len == 2 && memcmp(a, "id", 2) == 0) {
        bit = 2;
    } else if (name_len == 5 && memcmp(a, "token", 5) == 0) {
        bit = 4;
    } else {
        return KG_P11_URI_FAIL("attribute '%s' is not accepted (only object, id and token)",
                               kg_p11_uri_name_text(nbuf, a, name_len));
    }
    if ((*seen & bit) != 0) {
        return KG_P11_URI_FAIL("attribute '%s' given twice", kg_p11_uri_name_text(nbuf, a, name_len));
    }
    *seen |= bit;
    switch (bit) {
    case 1:
        return kg_p11_uri_label("object", v, vn, out->object, KG_P11_URI_MAX_LABEL);
    case 2:
        return kg_p11_uri_id(v, vn, out);
    case 4:
        out->has_token = true;
        return kg_p11_uri_label("token", v, vn, out->token, KG_P11_URI_MAX_TOKEN);
    default:
        KG_BAIL(KG_ERR_INTERNAL);
    }
}

kg_result kg_p11_uri_parse(const char *s, struct kg_p11_uri *out)
{
    unsigned seen = 0;
    size_t len;
    const char *p;
    const char *end;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    if (!kg_p11_uri_is(s)) {
        return KG_P11_URI_FAIL("does not start with 'pkcs11:'");
    }
    len = strnlen(s, KG_P11_URI_MAX + 1);
    if (len > KG_P11_URI_MAX) {
        return KG_P11_URI_FAIL("longer than %u bytes", KG_P11_URI_MAX);
    }
    end = s + len;
    p = s + KG_P11_URI_SCHEME_LEN;
    /* The query is where RFC 7512 puts pin-value and module-path: refused
     * whole, and never quoted. */
    if (memchr(p, '?', (size_t)(end - p)) != NULL) {
        return KG_P11_URI_FAIL("query attributes (after '?') are not accepted; the module and PIN come from hsm:");
    }
    if (memchr(p, '#', (size_t)(end - p)) != NULL) {
        return KG_P11_URI_FAIL("a fragment ('#') is not accepted");
    }
    if (p == end) {
        return KG_P11_URI_FAIL("names no key (object=<label> is required)");
    }
    for (;;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi != NULL ? semi : end;

        KG_GUARD(kg_p11_uri_attr(p, (size_t)(stop - p), &seen, out));
        if (semi == NULL) {
            break;
        }
        p = semi + 1; /* at most `end`: then the next attribute is empty, an error */
    }
    if ((seen & 1u) == 0) {
        return KG_P11_URI_FAIL("names no key (object=<label> is required)");
    }
    return KG_RESULT_OK;
}
