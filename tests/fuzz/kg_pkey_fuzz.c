/*
 * kg_pkey_fuzz.c - fuzz target: the private key DER walker and writer
 * (pkcs11/kg_p11_import.c), which read a Register's PKCS#1 and PKCS#8 Key
 * Material straight from the request.
 *
 * The first input byte picks the format (even: PKCS#1, odd: PKCS#8); the
 * rest is the DER. Checked besides what the sanitizers see, from
 * kg_p11_import.h:
 *  - success means a kind with its documented number of components, every
 *    one a non-empty range inside the input (nothing copied);
 *  - failure leaves *out empty;
 *  - an RSA or DSA key written back (kg_p11_private_to_der) walks again to
 *    the same integers, and writing that again gives the same bytes.
 */
#include <stdbool.h>
#include <string.h>

#include "kg_fuzz.h"
#include "kg_p11_import.h"

static bool kg_fuzz_inside(struct kg_p11_span s, const uint8_t *data, size_t size)
{
    return s.len > 0 && s.data >= data && s.len <= size && s.data - data <= (ptrdiff_t)(size - s.len);
}

static bool kg_fuzz_same_int(struct kg_p11_span a, struct kg_p11_span b)
{
    a = kg_p11_span_trim(a);
    b = kg_p11_span_trim(b);
    return a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

static void kg_fuzz_rewrite(const struct kg_p11_parts *parts, enum kg_p11_private_format format)
{
    struct kg_secret *der = NULL;
    struct kg_secret *again = NULL;
    struct kg_p11_parts back;

    if (kg_failed(kg_p11_private_to_der(parts, format, &der))) {
        /* Only PKCS#1 of a DSA key is refused here. */
        KG_FUZZ_CHECK(format == KG_P11_PRIVATE_PKCS1 && parts->kind != KG_P11_KEY_RSA_PRIVATE);
        return;
    }
    KG_FUZZ_CHECK(kg_ok(kg_p11_private_from_der(der->data, der->len, format, &back)));
    KG_FUZZ_CHECK(back.kind == parts->kind && back.count == parts->count);
    for (size_t i = 0; i < back.count; i++) {
        KG_FUZZ_CHECK(kg_fuzz_same_int(back.part[i], parts->part[i]));
    }
    KG_FUZZ_CHECK(kg_ok(kg_p11_private_to_der(&back, format, &again)));
    KG_FUZZ_CHECK(again->len == der->len && memcmp(again->data, der->data, der->len) == 0);
    kg_secret_free(again);
    kg_secret_free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kg_p11_parts parts;
    enum kg_p11_private_format format;

    if (size < 1) {
        return 0;
    }
    format = (data[0] & 1) ? KG_P11_PRIVATE_PKCS8 : KG_P11_PRIVATE_PKCS1;
    data++;
    size--;
    if (kg_failed(kg_p11_private_from_der(data, size, format, &parts))) {
        KG_FUZZ_CHECK(parts.count == 0 && parts.part[0].data == NULL && parts.secret == NULL);
        return 0;
    }
    KG_FUZZ_CHECK(parts.count > 0 && parts.count == kg_p11_parts_count(parts.kind) && parts.secret == NULL);
    for (size_t i = 0; i < parts.count; i++) {
        KG_FUZZ_CHECK(kg_fuzz_inside(parts.part[i], data, size));
    }
    if (parts.kind != KG_P11_KEY_EC_PRIVATE) {
        kg_fuzz_rewrite(&parts, format);
    }
    return 0;
}
