/*
 * kg_ttlv_fuzz.c - fuzz target: the bounded TTLV reader (gateway/kg_ttlv.c).
 *
 * The input is one message. It is validated (kg_ttlv_validate_tree), then
 * walked again item by item with every typed getter, and re-encoded with the
 * writer. Beyond what the sanitizers see, the target checks that
 *  - validation and the item-by-item walk agree on every input;
 *  - a valid input re-encodes to exactly itself (the reader accepts only the
 *    canonical encoding, so anything else means reader and writer disagree);
 *  - kg_ttlv_message_length agrees with the first header;
 *  - each top-level item copies through kg_ttlv_write_raw and, re-tagged,
 *    through kg_ttlv_write_item_as.
 */
#include <stdbool.h>
#include <string.h>

#include "kg_fuzz.h"
#include "kg_fuzz_walk.h"
#include "kg_ttlv.h"

/* A tag of the specification that no message uses at the top level. */
#define KG_FUZZ_RETAG 0x420001u

static uint32_t kg_fuzz_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The first header alone: kg_ttlv_message_length against a plain decoding. */
static void kg_fuzz_message_length(const uint8_t *data, size_t size)
{
    uint32_t total = 1, len;
    bool tag_ok, ok;

    if (size < KG_TTLV_HEADER_LEN) {
        return;
    }
    len = kg_fuzz_load_u32(data + 4);
    tag_ok = data[0] == 0x42 || data[0] == 0x54;
    ok = kg_ok(kg_ttlv_message_length(data, &total));
    KG_FUZZ_CHECK(ok == (tag_ok && data[3] == KG_TTLV_STRUCTURE && len % 8 == 0 &&
                         len <= UINT32_MAX - KG_TTLV_HEADER_LEN));
    KG_FUZZ_CHECK(ok ? total == len + KG_TTLV_HEADER_LEN : total == 0);
}

/* Copy every top-level item of a valid message through the two raw writers. */
static void kg_fuzz_copy_items(const uint8_t *data, uint32_t len)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    struct kg_ttlv_writer w;

    kg_ttlv_budget_init(&budget, NULL);
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_init(&r, data, len, &budget)));
    while (!kg_ttlv_reader_done(&r)) {
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_read(&r, &it)));

        KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&w, it.raw_len, false)));
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_write_raw(&w, it.raw, it.raw_len)));
        KG_FUZZ_CHECK(w.len == it.raw_len && memcmp(w.buf, it.raw, it.raw_len) == 0);
        kg_ttlv_writer_cleanup(&w);

        KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&w, it.raw_len, false)));
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_write_item_as(&w, KG_FUZZ_RETAG, &it)));
        KG_FUZZ_CHECK(w.len == it.raw_len && w.buf[0] == 0x42 && w.buf[1] == 0x00 && w.buf[2] == 0x01);
        KG_FUZZ_CHECK(memcmp(w.buf + 3, it.raw + 3, it.raw_len - 3) == 0);
        kg_ttlv_writer_cleanup(&w);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_writer w;
    bool valid, walked;
    uint32_t len;

    kg_error_clear();
    kg_fuzz_message_length(data, size);
    kg_ttlv_budget_init(&budget, NULL);
    if (size > budget.limits.max_message_len) {
        KG_FUZZ_CHECK(size > UINT32_MAX || kg_failed(kg_ttlv_reader_init(&r, data, (uint32_t)size, &budget)));
        return 0;
    }
    len = (uint32_t)size;

    KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_init(&r, data, len, &budget)));
    valid = kg_ok(kg_ttlv_validate_tree(&r));
    if (valid) {
        /* Consumed, and the item count given back for the decoding pass. */
        KG_FUZZ_CHECK(kg_ttlv_reader_done(&r) && budget.items_read == 0);
    }

    /* The output of a valid input is as long as the input: cap it there. */
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&w, len, false)));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_init(&r, data, len, &budget)));
    walked = kg_ok(kg_fuzz_walk(&r, &w));
    KG_FUZZ_CHECK(walked == valid);
    if (walked) {
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_finish(&w)));
        KG_FUZZ_CHECK(w.len == len && (len == 0 || memcmp(w.buf, data, len) == 0));
    }
    kg_ttlv_writer_cleanup(&w);

    if (valid) {
        kg_fuzz_copy_items(data, len);
    }
    return 0;
}
