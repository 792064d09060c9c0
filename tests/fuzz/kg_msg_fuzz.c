/*
 * kg_msg_fuzz.c - fuzz target: the KMIP request decoder (gateway/kg_msg.c).
 *
 * The input is one request message, decoded as kg_gateway_process does it
 * (default limits, at most 64 batch items). On success every batch item's
 * payload is read through kg_msg_payload_reader and walked item by item; on
 * failure the Invalid Message answer is built with
 * kg_msg_write_decode_failure, as the server would send it. Checked besides
 * what the sanitizers see:
 *  - everything decoded points into the input buffer;
 *  - every payload re-encodes to exactly its own bytes;
 *  - a failure is always answerable, and the answer is well-formed TTLV;
 *  - a KMIP 2.x payload's rewrite into the 1.4 form (kg_kmip2_request) either
 *    fails cleanly or yields well-formed TTLV.
 */
#include <stdbool.h>
#include <string.h>

#include "kg_fuzz.h"
#include "kg_fuzz_walk.h"
#include "kg_kmip2.h"
#include "kg_kmip_tags.h"
#include "kg_msg.h"
#include "kg_ttlv.h"

#define KG_FUZZ_MAX_BATCH 64              /* the default of limits.max_batch_items */
#define KG_FUZZ_NOW ((int64_t)1700000000) /* a fixed time stamp keeps the target deterministic */
#define KG_FUZZ_MAX_RESPONSE 65536u       /* the default of limits.max_message_bytes */

/* Does [p, p + n) lie inside [data, data + size)? */
static bool kg_fuzz_inside(const uint8_t *data, size_t size, const void *p, size_t n)
{
    uintptr_t base = (uintptr_t)data, at = (uintptr_t)p;

    return at >= base && at - base <= size && size - (at - base) >= n;
}

/* The dispatcher's rewrite of a 2.x payload: a clean failure, or TTLV that
 * validates as the payload of a message would. */
static void kg_fuzz_kmip2(struct kg_request *req, const struct kg_request_item *item)
{
    struct kg_ttlv_reader r, check;
    struct kg_ttlv_writer v1;
    struct kg_ttlv_budget budget;

    KG_FUZZ_CHECK(kg_ok(kg_msg_payload_reader(req, item, &r)));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&v1, 2 * KG_FUZZ_MAX_RESPONSE, false)));
    if (kg_ok(kg_kmip2_request(item->operation, &r, &v1))) {
        KG_FUZZ_CHECK(v1.depth == 0);
        kg_ttlv_budget_init(&budget, NULL);
        budget.limits.max_message_len = 2 * KG_FUZZ_MAX_RESPONSE;
        budget.limits.max_items = 2 * kg_ttlv_default_limits.max_items;
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_init(&check, v1.buf, v1.len, &budget)));
        KG_FUZZ_CHECK(v1.len == 0 || kg_ok(kg_ttlv_validate_tree(&check)));
    } else {
        KG_FUZZ_CHECK(kg_errno() != KG_OK);
        kg_error_clear();
    }
    kg_ttlv_writer_cleanup(&v1);
}

static void kg_fuzz_payloads(const uint8_t *data, size_t size, struct kg_request *req)
{
    KG_FUZZ_CHECK(req->batch_count >= 1 && req->batch_count <= KG_FUZZ_MAX_BATCH);
    /* Any other version is refused before its batch items are read (a later
     * 1.x minor is read as 1.x). */
    KG_FUZZ_CHECK(req->version.major == 1 || kg_msg_version_supported(req->version));
    if (req->has_credential) {
        KG_FUZZ_CHECK(kg_fuzz_inside(data, size, req->username, req->username_len));
        KG_FUZZ_CHECK(req->password == NULL || kg_fuzz_inside(data, size, req->password, req->password_len));
    }
    for (uint32_t i = 0; i < req->batch_count; i++) {
        const struct kg_request_item *item = &req->items[i];
        struct kg_ttlv_reader r;
        struct kg_ttlv_writer w;

        if (item->has_batch_id) {
            KG_FUZZ_CHECK(kg_fuzz_inside(data, size, item->batch_id, item->batch_id_len));
        }
        if (item->has_payload) {
            KG_FUZZ_CHECK(item->payload.tag == KG_TAG_REQUEST_PAYLOAD && item->payload.type == KG_TTLV_STRUCTURE);
            KG_FUZZ_CHECK(kg_fuzz_inside(data, size, item->payload.raw, item->payload.raw_len));
        }
        KG_FUZZ_CHECK(kg_ok(kg_msg_payload_reader(req, item, &r)));
        KG_FUZZ_CHECK(r.len == (item->has_payload ? item->payload.len : 0));
        /* Validated with the message: reading the payload cannot fail. */
        KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&w, r.len, false)));
        KG_FUZZ_CHECK(kg_ok(kg_fuzz_walk(&r, &w)));
        KG_FUZZ_CHECK(w.len == r.len && (r.len == 0 || memcmp(w.buf, r.data, r.len) == 0));
        kg_ttlv_writer_cleanup(&w);
        if (req->version.major >= 2) {
            kg_fuzz_kmip2(req, item);
        }
    }
}

/* The answer to an undecodable request: always written, always well-formed. */
static void kg_fuzz_decode_failure(const struct kg_request_partial *partial)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;

    KG_FUZZ_CHECK(partial->batch_id_len <= sizeof(partial->batch_id));
    KG_FUZZ_CHECK(partial->has_batch_id || partial->batch_id_len == 0);
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_init(&w, KG_FUZZ_MAX_RESPONSE, false)));
    KG_FUZZ_CHECK(kg_ok(kg_msg_write_decode_failure(&w, partial, KG_FUZZ_NOW)));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_writer_finish(&w)));
    kg_ttlv_budget_init(&budget, NULL);
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_reader_init(&r, w.buf, w.len, &budget)));
    KG_FUZZ_CHECK(kg_ok(kg_ttlv_validate_tree(&r)));
    KG_FUZZ_CHECK(w.len >= KG_TTLV_HEADER_LEN);
    KG_FUZZ_CHECK((((uint32_t)w.buf[0] << 16) | ((uint32_t)w.buf[1] << 8) | w.buf[2]) == KG_TAG_RESPONSE_MESSAGE);
    kg_ttlv_writer_cleanup(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kg_request_partial partial;
    struct kg_request *req;

    if (size > UINT32_MAX) {
        return 0;
    }
    kg_error_clear();
    /* Zeroed, as the server allocates it (kg_gateway_process). */
    req = calloc(1, sizeof(*req));
    KG_FUZZ_CHECK(req != NULL);
    if (kg_ok(kg_msg_decode_request(data, (uint32_t)size, &kg_ttlv_default_limits, KG_FUZZ_MAX_BATCH, req,
                                    &partial))) {
        kg_fuzz_payloads(data, size, req);
    } else {
        KG_FUZZ_CHECK(kg_errno() != KG_OK);
        kg_fuzz_decode_failure(&partial);
    }
    free(req);
    return 0;
}
