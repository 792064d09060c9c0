/* kg_fuzz_walk.c - a checking TTLV walk for the ttlv and msg fuzz targets. */
#include "kg_fuzz_walk.h"

#include <stdbool.h>
#include <string.h>

#include "kg_fuzz.h"

/* Does [p, p + n) lie inside the bytes of `r`? Compared as integers so that
 * a pointer outside the buffer is no undefined comparison. */
static bool kg_fuzz_within(const struct kg_ttlv_reader *r, const uint8_t *p, uint32_t n)
{
    uintptr_t base = (uintptr_t)r->data, at = (uintptr_t)p;

    return at >= base && at - base <= r->len && r->len - (at - base) >= n;
}

/* Every value a getter can return, for re-encoding. */
struct kg_fuzz_values {
    int32_t i32;
    int64_t i64;
    uint32_t enumeration;
    bool boolean;
    int64_t datetime;
    int64_t datetime_ext;
    uint32_t interval;
    const char *text;
    uint32_t text_len;
    const uint8_t *bytes;
    uint32_t bytes_len;
    bool text_ok;
};

/*
 * Call every getter on `it`: exactly the one of its type must succeed (text
 * only without an embedded NUL; bytes for Byte String and Big Integer), and
 * the pointer getters must hand back the item's own value.
 */
static void kg_fuzz_getters(const struct kg_ttlv_item *it, struct kg_fuzz_values *v)
{
    uint8_t t = it->type;
    bool has_nul = t == KG_TTLV_TEXT_STRING && it->len > 0 && memchr(it->value, 0, it->len) != NULL;
    bool ok;

    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_int(it, &v->i32)) == (t == KG_TTLV_INTEGER));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_long(it, &v->i64)) == (t == KG_TTLV_LONG_INTEGER));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_enum(it, &v->enumeration)) == (t == KG_TTLV_ENUMERATION));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_bool(it, &v->boolean)) == (t == KG_TTLV_BOOLEAN));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_datetime(it, &v->datetime)) == (t == KG_TTLV_DATE_TIME));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_datetime_ext(it, &v->datetime_ext)) == (t == KG_TTLV_DATE_TIME_EXTENDED));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_get_interval(it, &v->interval)) == (t == KG_TTLV_INTERVAL));

    ok = kg_ok(kg_ttlv_get_text(it, &v->text, &v->text_len));
    KG_FUZZ_CHECK(ok == (t == KG_TTLV_TEXT_STRING && !has_nul));
    if (ok) {
        KG_FUZZ_CHECK(v->text == (const char *)it->value && v->text_len == it->len);
    } else {
        KG_FUZZ_CHECK(v->text == NULL && v->text_len == 0);
    }
    v->text_ok = ok;

    ok = kg_ok(kg_ttlv_get_bytes(it, &v->bytes, &v->bytes_len));
    KG_FUZZ_CHECK(ok == (t == KG_TTLV_BYTE_STRING || t == KG_TTLV_BIG_INTEGER));
    if (ok) {
        KG_FUZZ_CHECK(v->bytes == it->value && v->bytes_len == it->len);
    } else {
        KG_FUZZ_CHECK(v->bytes == NULL && v->bytes_len == 0);
    }
}

/* Check one item read from `r`, recurse into it if a Structure, re-encode it into `w`. */
static kg_result kg_fuzz_item(const struct kg_ttlv_reader *r, const struct kg_ttlv_item *it,
                              struct kg_ttlv_writer *w)
{
    struct kg_fuzz_values v;
    struct kg_ttlv_reader child;

    memset(&v, 0, sizeof(v));
    kg_fuzz_getters(it, &v);
    if (it->type == KG_TTLV_STRUCTURE) {
        KG_GUARD(kg_ttlv_child(r, it, &child));
        KG_FUZZ_CHECK(child.data == it->value && child.len == it->len && child.pos == 0);
        KG_FUZZ_CHECK(child.depth == r->depth + 1 && child.budget == r->budget);
        if (w != NULL) {
            KG_GUARD(kg_ttlv_begin_struct(w, it->tag));
        }
        KG_GUARD(kg_fuzz_walk(&child, w));
        if (w != NULL) {
            KG_GUARD(kg_ttlv_end_struct(w));
        }
        return KG_RESULT_OK;
    }
    if (w == NULL) {
        return KG_RESULT_OK;
    }
    switch (it->type) {
    case KG_TTLV_INTEGER:
        return kg_ttlv_write_int(w, it->tag, v.i32);
    case KG_TTLV_LONG_INTEGER:
        return kg_ttlv_write_long(w, it->tag, v.i64);
    case KG_TTLV_BIG_INTEGER:
        return kg_ttlv_write_bigint(w, it->tag, v.bytes, v.bytes_len);
    case KG_TTLV_ENUMERATION:
        return kg_ttlv_write_enum(w, it->tag, v.enumeration);
    case KG_TTLV_BOOLEAN:
        return kg_ttlv_write_bool(w, it->tag, v.boolean);
    case KG_TTLV_TEXT_STRING:
        /* A NUL inside is well-formed TTLV the getter refuses: copy it as is. */
        return v.text_ok ? kg_ttlv_write_text(w, it->tag, v.text, v.text_len) : kg_ttlv_write_item_as(w, it->tag, it);
    case KG_TTLV_BYTE_STRING:
        return kg_ttlv_write_bytes(w, it->tag, v.bytes, v.bytes_len);
    case KG_TTLV_DATE_TIME:
        return kg_ttlv_write_datetime(w, it->tag, v.datetime);
    case KG_TTLV_INTERVAL:
        return kg_ttlv_write_interval(w, it->tag, v.interval);
    case KG_TTLV_DATE_TIME_EXTENDED:
        return kg_ttlv_write_datetime_ext(w, it->tag, v.datetime_ext);
    default:
        /* kg_ttlv_read accepted a type it does not know. */
        KG_FUZZ_CHECK(0);
        return KG_RESULT_ERROR;
    }
}

kg_result kg_fuzz_walk(struct kg_ttlv_reader *r, struct kg_ttlv_writer *w)
{
    for (uint32_t index = 0; !kg_ttlv_reader_done(r); index++) {
        struct kg_ttlv_item it, none;
        uint32_t tag = 0, before = r->pos;
        bool present = true;
        kg_result rc;

        KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_validate(r)));
        KG_GUARD(kg_ttlv_peek_tag(r, &tag));
        /* Asking for another tag consumes nothing and is no error. */
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_read_optional(r, tag ^ 1u, KG_TTLV_ANY_TYPE, &none, &present)));
        KG_FUZZ_CHECK(!present && r->pos == before && none.raw == NULL);
        /* Read alternately with kg_ttlv_read and kg_ttlv_read_optional: same checks, two paths. */
        if (index % 2 == 0) {
            rc = kg_ttlv_read(r, &it);
        } else {
            rc = kg_ttlv_read_optional(r, tag, KG_TTLV_ANY_TYPE, &it, &present);
            KG_FUZZ_CHECK(kg_failed(rc) || present);
        }
        if (kg_failed(rc)) {
            /* "On failure nothing is consumed and *out is zeroed." */
            KG_FUZZ_CHECK(r->pos == before);
            KG_FUZZ_CHECK(it.raw == NULL && it.value == NULL && it.len == 0 && it.raw_len == 0);
            return rc;
        }
        KG_FUZZ_CHECK(it.tag == tag);
        KG_FUZZ_CHECK(it.raw == r->data + before && r->pos - before == it.raw_len);
        KG_FUZZ_CHECK(kg_fuzz_within(r, it.raw, it.raw_len));
        KG_FUZZ_CHECK(it.raw_len % 8 == 0 && it.raw_len >= KG_TTLV_HEADER_LEN);
        KG_FUZZ_CHECK(it.value == it.raw + KG_TTLV_HEADER_LEN && it.raw_len - KG_TTLV_HEADER_LEN - it.len < 8);
        KG_GUARD(kg_fuzz_item(r, &it, w));
    }
    return kg_ttlv_reader_finish(r);
}
