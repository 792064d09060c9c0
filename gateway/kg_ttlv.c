/*
 * kg_ttlv.c - bounded TTLV reader and writer (KMIP 1.4 section 9.1).
 *
 * This is the only file that indexes TTLV bytes. Every bounds check is a
 * subtraction against bytes remaining (`len - pos >= n`), which cannot wrap
 * once `pos <= len` holds; kg_ttlv_reader_validate checks that invariant
 * before every read.
 */
#include "kg_ttlv.h"

#include <assert.h>
#include <string.h>

#include <openssl/crypto.h>


const struct kg_ttlv_limits kg_ttlv_default_limits = { 65536, 16, 4096 };

/* First allocation of a growable writer; most responses fit in one. */
#define KG_TTLV_WRITER_MIN_CAP 512u
/* A locked buffer takes whole pages: start a secret writer at one. */
#define KG_TTLV_SECRET_MIN_CAP 4096u

/*
 * Per-type length rules, KMIP 1.4 section 9.1.1.3 Table 287 (Date-Time
 * Extended from KMIP 2.0 section 9.1.1.3). fixed_len 0 means variable.
 * Structures and Big Integers are "Varies, multiple of 8"; Text and Byte
 * Strings may have any length and are padded.
 */
struct kg_ttlv_type_rule {
    bool known;
    uint8_t fixed_len;
    bool multiple_of_8;
};

static const struct kg_ttlv_type_rule kg_ttlv_type_rules[] = {
    [KG_TTLV_STRUCTURE] = { true, 0, true },
    [KG_TTLV_INTEGER] = { true, 4, false },
    [KG_TTLV_LONG_INTEGER] = { true, 8, false },
    [KG_TTLV_BIG_INTEGER] = { true, 0, true },
    [KG_TTLV_ENUMERATION] = { true, 4, false },
    [KG_TTLV_BOOLEAN] = { true, 8, false },
    [KG_TTLV_TEXT_STRING] = { true, 0, false },
    [KG_TTLV_BYTE_STRING] = { true, 0, false },
    [KG_TTLV_DATE_TIME] = { true, 8, false },
    [KG_TTLV_INTERVAL] = { true, 4, false },
    [KG_TTLV_DATE_TIME_EXTENDED] = { true, 8, false },
};

#define KG_TTLV_TYPE_COUNT (sizeof(kg_ttlv_type_rules) / sizeof(kg_ttlv_type_rules[0]))

/* ---- byte order and small helpers ---- */

static uint32_t kg_ttlv_load_u24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[2];
}

static uint32_t kg_ttlv_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t kg_ttlv_load_u64(const uint8_t *p)
{
    return ((uint64_t)kg_ttlv_load_u32(p) << 32) | (uint64_t)kg_ttlv_load_u32(p + 4);
}

static void kg_ttlv_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void kg_ttlv_store_u64(uint8_t *p, uint64_t v)
{
    kg_ttlv_store_u32(p, (uint32_t)(v >> 32));
    kg_ttlv_store_u32(p + 4, (uint32_t)v);
}

/* Two's complement without relying on implementation-defined narrowing. */
static int32_t kg_ttlv_to_i32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static int64_t kg_ttlv_to_i64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : (int64_t)(u - 0x8000000000000000u) + INT64_MIN;
}

/* Bytes of padding after a value of `len` bytes to reach a multiple of 8. */
static uint32_t kg_ttlv_pad(uint32_t len)
{
    return (8u - (len & 7u)) & 7u;
}

/* Section 9.1.1.1: 0x42 for tags of the specification, 0x54 for extensions. */
static bool kg_ttlv_tag_valid(uint32_t tag)
{
    uint32_t high = tag >> 16;

    return high == 0x42u || high == 0x54u;
}

static kg_result kg_ttlv_check_length(uint8_t type, uint32_t len)
{
    const struct kg_ttlv_type_rule *rule;

    KG_ENSURE(type < KG_TTLV_TYPE_COUNT && kg_ttlv_type_rules[type].known, KG_ERR_TTLV_BAD_TYPE);
    rule = &kg_ttlv_type_rules[type];
    if (rule->fixed_len != 0) {
        KG_ENSURE(len == rule->fixed_len, KG_ERR_TTLV_BAD_LENGTH);
    }
    if (rule->multiple_of_8) {
        KG_ENSURE((len & 7u) == 0, KG_ERR_TTLV_BAD_LENGTH);
    }
    return KG_RESULT_OK;
}

/* Value rules beyond length: section 9.1.1.4, a Boolean is exactly 0 or 1. */
static kg_result kg_ttlv_check_value(uint8_t type, const uint8_t *value, uint32_t len)
{
    if (type == KG_TTLV_BOOLEAN) {
        KG_ENSURE(len == 8, KG_ERR_TTLV_BAD_LENGTH);
        KG_ENSURE(kg_ttlv_load_u64(value) <= 1, KG_ERR_TTLV_BAD_VALUE);
    }
    return KG_RESULT_OK;
}

/* ---- reader ---- */

void kg_ttlv_budget_init(struct kg_ttlv_budget *budget, const struct kg_ttlv_limits *limits)
{
    budget->limits = limits != NULL ? *limits : kg_ttlv_default_limits;
    budget->items_read = 0;
}

kg_result kg_ttlv_reader_init(struct kg_ttlv_reader *r, const uint8_t *data, uint32_t len,
                              struct kg_ttlv_budget *budget)
{
    KG_ENSURE(r != NULL, KG_ERR_INTERNAL);
    r->data = NULL;
    r->len = 0;
    r->pos = 0;
    r->depth = 0;
    r->budget = NULL;
    KG_ENSURE(budget != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(len == 0 || data != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(len <= budget->limits.max_message_len, KG_ERR_TTLV_TOO_LONG);
    budget->items_read = 0;
    r->data = data;
    r->len = len;
    r->budget = budget;
    return KG_RESULT_OK;
}

bool kg_ttlv_reader_done(const struct kg_ttlv_reader *r)
{
    return r->pos == r->len;
}

kg_result kg_ttlv_reader_finish(const struct kg_ttlv_reader *r)
{
    KG_GUARD(kg_ttlv_reader_validate(r));
    KG_ENSURE(r->len - r->pos == 0, KG_ERR_TTLV_TRAILING);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_reader_validate(const struct kg_ttlv_reader *r)
{
    KG_ENSURE(r != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(r->pos <= r->len, KG_ERR_INTERNAL);
    KG_ENSURE(r->len == 0 || r->data != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(r->budget != NULL, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

/*
 * Decode and check the next item without consuming it or spending budget,
 * so that a caller rejecting it (read_expect) leaves the reader untouched.
 */
static kg_result kg_ttlv_parse(const struct kg_ttlv_reader *r, struct kg_ttlv_item *out)
{
    const uint8_t *p;
    uint32_t tag, len, avail, pad;
    uint8_t type;

    KG_GUARD(kg_ttlv_reader_validate(r));
    KG_ENSURE(r->len - r->pos >= KG_TTLV_HEADER_LEN, KG_ERR_TTLV_TRUNCATED);
    p = r->data + r->pos;
    tag = kg_ttlv_load_u24(p);
    type = p[3];
    len = kg_ttlv_load_u32(p + 4);
    KG_ENSURE(kg_ttlv_tag_valid(tag), KG_ERR_TTLV_BAD_TAG);
    KG_GUARD(kg_ttlv_check_length(type, len));

    /* Value first, then padding, each against what is left: no sum of an
     * attacker-chosen length is ever formed, so 0xFFFFFFFF cannot wrap. */
    avail = r->len - r->pos - KG_TTLV_HEADER_LEN;
    KG_ENSURE(avail >= len, KG_ERR_TTLV_TRUNCATED);
    pad = kg_ttlv_pad(len);
    KG_ENSURE(avail - len >= pad, KG_ERR_TTLV_TRUNCATED);
    for (uint32_t i = 0; i < pad; i++) {
        KG_ENSURE(p[KG_TTLV_HEADER_LEN + len + i] == 0, KG_ERR_TTLV_BAD_PADDING);
    }
    KG_GUARD(kg_ttlv_check_value(type, p + KG_TTLV_HEADER_LEN, len));
    KG_ENSURE(r->budget->items_read < r->budget->limits.max_items, KG_ERR_TTLV_TOO_MANY_ITEMS);

    out->tag = tag;
    out->type = type;
    out->len = len;
    out->value = p + KG_TTLV_HEADER_LEN;
    out->raw = p;
    out->raw_len = KG_TTLV_HEADER_LEN + len + pad;
    return KG_RESULT_OK;
}

/* Consume an item kg_ttlv_parse accepted at the current position. */
static void kg_ttlv_commit(struct kg_ttlv_reader *r, const struct kg_ttlv_item *it)
{
    r->pos += it->raw_len;
    r->budget->items_read++;
}

static void kg_ttlv_item_clear(struct kg_ttlv_item *it)
{
    it->tag = 0;
    it->type = 0;
    it->len = 0;
    it->value = NULL;
    it->raw = NULL;
    it->raw_len = 0;
}

kg_result kg_ttlv_read(struct kg_ttlv_reader *r, struct kg_ttlv_item *out)
{
    struct kg_ttlv_item it;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    kg_ttlv_item_clear(out);
    KG_GUARD(kg_ttlv_parse(r, &it));
    kg_ttlv_commit(r, &it);
    *out = it;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_peek_tag(const struct kg_ttlv_reader *r, uint32_t *out_tag)
{
    KG_ENSURE(out_tag != NULL, KG_ERR_INTERNAL);
    *out_tag = 0;
    KG_GUARD(kg_ttlv_reader_validate(r));
    KG_ENSURE(r->len - r->pos >= KG_TTLV_HEADER_LEN, KG_ERR_TTLV_TRUNCATED);
    *out_tag = kg_ttlv_load_u24(r->data + r->pos);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_read_expect(struct kg_ttlv_reader *r, uint32_t tag, uint8_t type,
                              struct kg_ttlv_item *out)
{
    struct kg_ttlv_item it;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    kg_ttlv_item_clear(out);
    KG_GUARD(kg_ttlv_parse(r, &it));
    KG_ENSURE(it.tag == tag && (type == KG_TTLV_ANY_TYPE || it.type == type), KG_ERR_TTLV_UNEXPECTED);
    kg_ttlv_commit(r, &it);
    *out = it;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_read_optional(struct kg_ttlv_reader *r, uint32_t tag, uint8_t type,
                                struct kg_ttlv_item *out, bool *present)
{
    uint32_t next;

    KG_ENSURE(out != NULL && present != NULL, KG_ERR_INTERNAL);
    *present = false;
    kg_ttlv_item_clear(out);
    KG_GUARD(kg_ttlv_reader_validate(r));
    if (kg_ttlv_reader_done(r)) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_peek_tag(r, &next));
    if (next != tag) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_read_expect(r, tag, type, out));
    *present = true;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_child(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                        struct kg_ttlv_reader *child)
{
    KG_ENSURE(child != NULL && item != NULL, KG_ERR_INTERNAL);
    child->data = NULL;
    child->len = 0;
    child->pos = 0;
    child->depth = 0;
    child->budget = NULL;
    KG_GUARD(kg_ttlv_reader_validate(parent));
    KG_ENSURE(item->type == KG_TTLV_STRUCTURE, KG_ERR_TTLV_BAD_TYPE);
    /* Items can be built by hand; hold them to the rules read enforces. */
    KG_GUARD(kg_ttlv_check_length(item->type, item->len));
    KG_ENSURE(item->len == 0 || item->value != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(parent->depth < parent->budget->limits.max_depth, KG_ERR_TTLV_TOO_DEEP);
    child->data = item->value;
    child->len = item->len;
    child->depth = parent->depth + 1;
    child->budget = parent->budget;
    return KG_RESULT_OK;
}

/*
 * Recursion is bounded by limits.max_depth: kg_ttlv_child refuses to go
 * deeper, and every level needs an 8-byte header of input besides.
 */
static kg_result kg_ttlv_walk(struct kg_ttlv_reader *r)
{
    struct kg_ttlv_item it;
    struct kg_ttlv_reader child;

    while (!kg_ttlv_reader_done(r)) {
        KG_GUARD(kg_ttlv_read(r, &it));
        if (it.type == KG_TTLV_STRUCTURE) {
            KG_GUARD(kg_ttlv_child(r, &it, &child));
            KG_GUARD(kg_ttlv_walk(&child));
        }
    }
    return kg_ttlv_reader_finish(r);
}

kg_result kg_ttlv_validate_tree(struct kg_ttlv_reader *r)
{
    uint32_t items_before;

    KG_GUARD(kg_ttlv_reader_validate(r));
    items_before = r->budget->items_read;
    KG_GUARD(kg_ttlv_walk(r));
    /* The walk has enforced max_items; give the count back so decoding the
     * same bytes afterwards with the same budget is not charged twice. */
    r->budget->items_read = items_before;
    return KG_RESULT_OK;
}

/* ---- value accessors ---- */

static kg_result kg_ttlv_item_check(const struct kg_ttlv_item *it, uint8_t type)
{
    KG_ENSURE(it != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(it->type == type, KG_ERR_TTLV_BAD_TYPE);
    KG_GUARD(kg_ttlv_check_length(type, it->len));
    KG_ENSURE(it->len == 0 || it->value != NULL, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_int(const struct kg_ttlv_item *it, int32_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_INTEGER));
    *out = kg_ttlv_to_i32(kg_ttlv_load_u32(it->value));
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_long(const struct kg_ttlv_item *it, int64_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_LONG_INTEGER));
    *out = kg_ttlv_to_i64(kg_ttlv_load_u64(it->value));
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_enum(const struct kg_ttlv_item *it, uint32_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_ENUMERATION));
    *out = kg_ttlv_load_u32(it->value);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_bool(const struct kg_ttlv_item *it, bool *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_BOOLEAN));
    KG_GUARD(kg_ttlv_check_value(it->type, it->value, it->len));
    *out = kg_ttlv_load_u64(it->value) == 1;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_datetime(const struct kg_ttlv_item *it, int64_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_DATE_TIME));
    *out = kg_ttlv_to_i64(kg_ttlv_load_u64(it->value));
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_datetime_ext(const struct kg_ttlv_item *it, int64_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_DATE_TIME_EXTENDED));
    *out = kg_ttlv_to_i64(kg_ttlv_load_u64(it->value));
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_interval(const struct kg_ttlv_item *it, uint32_t *out)
{
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_INTERVAL));
    *out = kg_ttlv_load_u32(it->value);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_text(const struct kg_ttlv_item *it, const char **out, uint32_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    KG_GUARD(kg_ttlv_item_check(it, KG_TTLV_TEXT_STRING));
    /* Section 9.1.1.4 forbids NUL termination; an embedded NUL would also
     * let C string handling downstream see a different name than we did. */
    KG_ENSURE(it->len == 0 || memchr(it->value, 0, it->len) == NULL, KG_ERR_TTLV_BAD_VALUE);
    *out = (const char *)it->value;
    *out_len = it->len;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_get_bytes(const struct kg_ttlv_item *it, const uint8_t **out, uint32_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    KG_ENSURE(it != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(it->type == KG_TTLV_BYTE_STRING || it->type == KG_TTLV_BIG_INTEGER, KG_ERR_TTLV_BAD_TYPE);
    KG_GUARD(kg_ttlv_item_check(it, it->type));
    *out = it->value;
    *out_len = it->len;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_message_length(const uint8_t header[KG_TTLV_HEADER_LEN], uint32_t *out_total)
{
    uint32_t len;

    KG_ENSURE(out_total != NULL && header != NULL, KG_ERR_INTERNAL);
    *out_total = 0;
    KG_ENSURE(kg_ttlv_tag_valid(kg_ttlv_load_u24(header)), KG_ERR_TTLV_BAD_TAG);
    /* Every KMIP message is one Structure (section 9.1.1.2 and 7.1). */
    KG_ENSURE(header[3] == KG_TTLV_STRUCTURE, KG_ERR_TTLV_BAD_TYPE);
    len = kg_ttlv_load_u32(header + 4);
    KG_GUARD(kg_ttlv_check_length(KG_TTLV_STRUCTURE, len));
    KG_ENSURE(len <= UINT32_MAX - KG_TTLV_HEADER_LEN, KG_ERR_TTLV_TOO_LONG);
    *out_total = KG_TTLV_HEADER_LEN + len;
    return KG_RESULT_OK;
}

/* ---- writer ---- */

static kg_result kg_ttlv_writer_validate(const struct kg_ttlv_writer *w)
{
    KG_ENSURE(w != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(w->len <= w->cap && w->cap <= w->max, KG_ERR_INTERNAL);
    KG_ENSURE(w->cap == 0 || w->buf != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(w->depth <= KG_TTLV_MAX_DEPTH, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_writer_init(struct kg_ttlv_writer *w, uint32_t max, bool secret)
{
    KG_ENSURE(w != NULL, KG_ERR_INTERNAL);
    memset(w, 0, sizeof(*w));
    w->max = max;
    if (secret) {
        /* Start small (most answers fit a page) and grow in locked memory
         * only: each larger buffer is a new kg_secret, and the old one is
         * wiped as it is released, so no copy of key bytes is left behind. */
        w->cap = max < KG_TTLV_SECRET_MIN_CAP ? max : KG_TTLV_SECRET_MIN_CAP;
        KG_GUARD(kg_secret_alloc(w->cap, &w->secret));
        w->buf = w->secret->data;
    }
    return KG_RESULT_OK;
}

void kg_ttlv_writer_cleanup(struct kg_ttlv_writer *w)
{
    if (w == NULL) {
        return;
    }
    if (w->secret != NULL) {
        kg_secret_free(w->secret);
    } else {
        OPENSSL_clear_free(w->buf, w->cap);
    }
    OPENSSL_cleanse(w, sizeof(*w));
}

void kg_ttlv_writer_rewind(struct kg_ttlv_writer *w, uint32_t mark, uint32_t depth_mark)
{
    /* Only backwards, and only to a depth that was open at the mark. */
    if (mark > w->len || depth_mark > w->depth) {
        return;
    }
    OPENSSL_cleanse(w->buf + mark, w->len - mark);
    w->len = mark;
    w->depth = depth_mark;
}

kg_result kg_ttlv_writer_finish(const struct kg_ttlv_writer *w)
{
    KG_GUARD(kg_ttlv_writer_validate(w));
    KG_ENSURE(w->depth == 0, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

/*
 * Make room for `n` more bytes. Fails before writing anything, so a failed
 * write leaves the writer exactly as it was.
 */
static kg_result kg_ttlv_writer_reserve(struct kg_ttlv_writer *w, uint32_t n)
{
    uint32_t want, new_cap;
    uint8_t *grown;

    KG_GUARD(kg_ttlv_writer_validate(w));
    KG_ENSURE(w->max - w->len >= n, KG_ERR_WRITER_FULL);
    if (w->cap - w->len >= n) {
        return KG_RESULT_OK;
    }
    want = w->len + n; /* <= max by the check above */
    new_cap = w->cap > 0 ? w->cap : KG_TTLV_WRITER_MIN_CAP;
    while (new_cap < want) {
        new_cap = new_cap > UINT32_MAX / 2 ? UINT32_MAX : new_cap * 2;
    }
    if (new_cap > w->max) {
        new_cap = w->max;
    }
    if (w->secret != NULL) {
        struct kg_secret *bigger = NULL;

        KG_GUARD(kg_secret_alloc(new_cap, &bigger));
        if (w->len > 0) {
            memcpy(bigger->data, w->buf, w->len);
        }
        bigger->len = w->len;
        kg_secret_free(w->secret); /* wipes the old copy */
        w->secret = bigger;
        w->buf = bigger->data;
        w->cap = new_cap;
        return KG_RESULT_OK;
    }
    grown = OPENSSL_malloc(new_cap);
    KG_ENSURE(grown != NULL, KG_ERR_NOMEM);
    if (w->len > 0) {
        memcpy(grown, w->buf, w->len);
    }
    /* Responses may carry wrapped keys or identifiers: wipe the old copy. */
    OPENSSL_clear_free(w->buf, w->cap);
    w->buf = grown;
    w->cap = new_cap;
    return KG_RESULT_OK;
}

static void kg_ttlv_writer_advance(struct kg_ttlv_writer *w, uint32_t n)
{
    w->len += n;
    if (w->secret != NULL) {
        w->secret->len = w->len;
    }
}

static void kg_ttlv_put_header(uint8_t *p, uint32_t tag, uint8_t type, uint32_t len)
{
    p[0] = (uint8_t)(tag >> 16);
    p[1] = (uint8_t)(tag >> 8);
    p[2] = (uint8_t)tag;
    p[3] = type;
    kg_ttlv_store_u32(p + 4, len);
}

/* Header, value, zero padding: one item, all or nothing. */
static kg_result kg_ttlv_write_value(struct kg_ttlv_writer *w, uint32_t tag, uint8_t type,
                                     const uint8_t *value, uint32_t len)
{
    uint32_t pad, total;
    uint8_t *p;

    KG_ENSURE(kg_ttlv_tag_valid(tag), KG_ERR_TTLV_BAD_TAG);
    KG_GUARD(kg_ttlv_check_length(type, len));
    KG_ENSURE(len == 0 || value != NULL, KG_ERR_INTERNAL);
    KG_GUARD(kg_ttlv_check_value(type, value, len));
    pad = kg_ttlv_pad(len);
    KG_ENSURE(len <= UINT32_MAX - KG_TTLV_HEADER_LEN - pad, KG_ERR_WRITER_FULL);
    total = KG_TTLV_HEADER_LEN + len + pad;
    KG_GUARD(kg_ttlv_writer_reserve(w, total));
    p = w->buf + w->len;
    kg_ttlv_put_header(p, tag, type, len);
    if (len > 0) {
        memcpy(p + KG_TTLV_HEADER_LEN, value, len);
    }
    /* Zero padding is part of the encoding (section 9.1.1.3), not a wipe. */
    memset(p + KG_TTLV_HEADER_LEN + len, 0, pad);
    kg_ttlv_writer_advance(w, total);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_begin_struct(struct kg_ttlv_writer *w, uint32_t tag)
{
    KG_GUARD(kg_ttlv_writer_validate(w));
    KG_ENSURE(kg_ttlv_tag_valid(tag), KG_ERR_TTLV_BAD_TAG);
    KG_ENSURE(w->depth < KG_TTLV_MAX_DEPTH, KG_ERR_TTLV_TOO_DEEP);
    KG_GUARD(kg_ttlv_writer_reserve(w, KG_TTLV_HEADER_LEN));
    /* Length 0 for now; kg_ttlv_end_struct backfills it. */
    kg_ttlv_put_header(w->buf + w->len, tag, KG_TTLV_STRUCTURE, 0);
    w->open[w->depth++] = w->len;
    kg_ttlv_writer_advance(w, KG_TTLV_HEADER_LEN);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_end_struct(struct kg_ttlv_writer *w)
{
    uint32_t start, body;

    KG_GUARD(kg_ttlv_writer_validate(w));
    KG_ENSURE(w->depth > 0, KG_ERR_INTERNAL);
    start = w->open[w->depth - 1];
    KG_ENSURE(start <= w->len && w->len - start >= KG_TTLV_HEADER_LEN, KG_ERR_INTERNAL);
    body = w->len - start - KG_TTLV_HEADER_LEN;
    /* Every child is padded to 8, so this holds unless the buffer was
     * written behind our back. */
    KG_ENSURE((body & 7u) == 0, KG_ERR_INTERNAL);
    kg_ttlv_store_u32(w->buf + start + 4, body);
    w->depth--;
    return KG_RESULT_OK;
}

kg_result kg_ttlv_write_int(struct kg_ttlv_writer *w, uint32_t tag, int32_t v)
{
    uint8_t b[4];

    kg_ttlv_store_u32(b, (uint32_t)v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_INTEGER, b, sizeof(b));
}

kg_result kg_ttlv_write_long(struct kg_ttlv_writer *w, uint32_t tag, int64_t v)
{
    uint8_t b[8];

    kg_ttlv_store_u64(b, (uint64_t)v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_LONG_INTEGER, b, sizeof(b));
}

kg_result kg_ttlv_write_enum(struct kg_ttlv_writer *w, uint32_t tag, uint32_t v)
{
    uint8_t b[4];

    kg_ttlv_store_u32(b, v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_ENUMERATION, b, sizeof(b));
}

kg_result kg_ttlv_write_bool(struct kg_ttlv_writer *w, uint32_t tag, bool v)
{
    uint8_t b[8];

    kg_ttlv_store_u64(b, v ? 1u : 0u);
    return kg_ttlv_write_value(w, tag, KG_TTLV_BOOLEAN, b, sizeof(b));
}

kg_result kg_ttlv_write_datetime(struct kg_ttlv_writer *w, uint32_t tag, int64_t v)
{
    uint8_t b[8];

    kg_ttlv_store_u64(b, (uint64_t)v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_DATE_TIME, b, sizeof(b));
}

kg_result kg_ttlv_write_datetime_ext(struct kg_ttlv_writer *w, uint32_t tag, int64_t v)
{
    uint8_t b[8];

    kg_ttlv_store_u64(b, (uint64_t)v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_DATE_TIME_EXTENDED, b, sizeof(b));
}

kg_result kg_ttlv_write_interval(struct kg_ttlv_writer *w, uint32_t tag, uint32_t v)
{
    uint8_t b[4];

    kg_ttlv_store_u32(b, v);
    return kg_ttlv_write_value(w, tag, KG_TTLV_INTERVAL, b, sizeof(b));
}

kg_result kg_ttlv_write_text(struct kg_ttlv_writer *w, uint32_t tag, const char *s, uint32_t len)
{
    return kg_ttlv_write_value(w, tag, KG_TTLV_TEXT_STRING, (const uint8_t *)s, len);
}

kg_result kg_ttlv_write_bytes(struct kg_ttlv_writer *w, uint32_t tag, const uint8_t *b, uint32_t len)
{
    return kg_ttlv_write_value(w, tag, KG_TTLV_BYTE_STRING, b, len);
}

kg_result kg_ttlv_write_bigint(struct kg_ttlv_writer *w, uint32_t tag, const uint8_t *b, uint32_t len)
{
    return kg_ttlv_write_value(w, tag, KG_TTLV_BIG_INTEGER, b, len);
}

/*
 * Limits for checking bytes we are about to emit: they are already in
 * memory, so only well-formedness matters, not the size of the work.
 */
static void kg_ttlv_emit_budget(struct kg_ttlv_budget *budget, uint32_t len)
{
    budget->limits.max_message_len = len;
    budget->limits.max_depth = KG_TTLV_MAX_DEPTH;
    budget->limits.max_items = UINT32_MAX;
    budget->items_read = 0;
}

kg_result kg_ttlv_write_raw(struct kg_ttlv_writer *w, const uint8_t *raw, uint32_t len)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r, child;
    struct kg_ttlv_item it;

    /* The writer only ever emits well-formed TTLV: `raw` must be exactly
     * one valid item, checked all the way down. */
    kg_ttlv_emit_budget(&budget, len);
    KG_GUARD(kg_ttlv_reader_init(&r, raw, len, &budget));
    KG_GUARD(kg_ttlv_read(&r, &it));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    if (it.type == KG_TTLV_STRUCTURE) {
        KG_GUARD(kg_ttlv_child(&r, &it, &child));
        KG_GUARD(kg_ttlv_walk(&child));
    }
    KG_GUARD(kg_ttlv_writer_reserve(w, len));
    memcpy(w->buf + w->len, raw, len);
    kg_ttlv_writer_advance(w, len);
    return KG_RESULT_OK;
}

kg_result kg_ttlv_write_item_as(struct kg_ttlv_writer *w, uint32_t tag, const struct kg_ttlv_item *it)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;

    KG_ENSURE(it != NULL, KG_ERR_INTERNAL);
    if (it->type != KG_TTLV_STRUCTURE) {
        return kg_ttlv_write_value(w, tag, it->type, it->value, it->len);
    }
    /* A Structure's value is its encoded children: check them as write_raw
     * does, then copy them under the new header (no padding: length is a
     * multiple of 8). */
    KG_ENSURE(kg_ttlv_tag_valid(tag), KG_ERR_TTLV_BAD_TAG);
    KG_GUARD(kg_ttlv_check_length(it->type, it->len));
    kg_ttlv_emit_budget(&budget, it->len);
    KG_GUARD(kg_ttlv_reader_init(&r, it->value, it->len, &budget));
    r.depth = 1;
    KG_GUARD(kg_ttlv_walk(&r));
    KG_ENSURE(it->len <= UINT32_MAX - KG_TTLV_HEADER_LEN, KG_ERR_WRITER_FULL);
    KG_GUARD(kg_ttlv_writer_reserve(w, KG_TTLV_HEADER_LEN + it->len));
    kg_ttlv_put_header(w->buf + w->len, tag, KG_TTLV_STRUCTURE, it->len);
    if (it->len > 0) {
        memcpy(w->buf + w->len + KG_TTLV_HEADER_LEN, it->value, it->len);
    }
    kg_ttlv_writer_advance(w, KG_TTLV_HEADER_LEN + it->len);
    return KG_RESULT_OK;
}
