/*
 * kg_locate_match.c - Locate's value comparisons on encoded TTLV (see
 * kg_locate_match.h). A deliberately small walker of its own rather than
 * kg_ttlv's reader: the store library links no codec, and all it needs is
 * "split this Structure into its fields", with every length checked against
 * the bytes left before it is used.
 */
#include "kg_locate_match.h"

#include <string.h>

#define KG_LM_HEADER_LEN 8u
#define KG_LM_STRUCTURE 0x01u
#define KG_LM_DATE_TIME 0x09u

static uint32_t kg_lm_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * The whole length (header, value, padding to 8) of the item at
 * buf[pos..len) into *out; false if it does not fit. pos <= len on entry.
 * A Structure's value is its fields, already a multiple of 8 long.
 */
static bool kg_lm_item_len(const uint8_t *buf, size_t len, size_t pos, size_t *out)
{
    size_t vlen, padded;

    if (len - pos < KG_LM_HEADER_LEN) {
        return false;
    }
    vlen = kg_lm_be32(buf + pos + 4);
    padded = (vlen + 7u) & ~(size_t)7u;
    if (len - pos - KG_LM_HEADER_LEN < padded) {
        return false;
    }
    *out = KG_LM_HEADER_LEN + padded;
    return true;
}

/* `buf` is exactly one item: its length covers all of `len`. */
static bool kg_lm_single(const uint8_t *buf, size_t len)
{
    size_t item;

    return buf != NULL && kg_lm_item_len(buf, len, 0, &item) && item == len;
}

/* Some field of the Structure `s` (whole item, s_len bytes) encodes exactly as `f`. */
static bool kg_lm_has_field(const uint8_t *s, size_t s_len, const uint8_t *f, size_t f_len)
{
    size_t pos = KG_LM_HEADER_LEN, item;

    while (pos < s_len) {
        if (!kg_lm_item_len(s, s_len, pos, &item)) {
            return false;
        }
        if (item == f_len && memcmp(s + pos, f, f_len) == 0) {
            return true;
        }
        pos += item;
    }
    return false;
}

bool kg_locate_fields_match(const uint8_t *stored, size_t stored_len, const uint8_t *want, size_t want_len)
{
    size_t pos = KG_LM_HEADER_LEN, item;

    if (!kg_lm_single(stored, stored_len) || !kg_lm_single(want, want_len)) {
        return false;
    }
    if (want[3] != KG_LM_STRUCTURE) {
        return stored_len == want_len && memcmp(stored, want, want_len) == 0;
    }
    /* Same tag, both Structures; then every wanted field must be there. */
    if (stored[3] != KG_LM_STRUCTURE || memcmp(stored, want, 3) != 0) {
        return false;
    }
    while (pos < want_len) {
        if (!kg_lm_item_len(want, want_len, pos, &item) ||
            !kg_lm_has_field(stored, stored_len, want + pos, item)) {
            return false;
        }
        pos += item;
    }
    return true;
}

bool kg_locate_date_of(const uint8_t *value, size_t len, int64_t *out)
{
    uint64_t v = 0;

    if (!kg_lm_single(value, len) || value[3] != KG_LM_DATE_TIME || kg_lm_be32(value + 4) != 8u) {
        return false;
    }
    for (unsigned i = 0; i < 8; i++) {
        v = v << 8 | value[KG_LM_HEADER_LEN + i];
    }
    /* Two's complement on the wire (9.1.1.4): reinterpret, not convert. */
    memcpy(out, &v, sizeof(*out));
    return true;
}
