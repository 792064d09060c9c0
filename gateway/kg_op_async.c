/*
 * kg_op_async.c - Poll and Cancel (KMIP 1.4 sections 4.27 and 4.28) of the
 * operations the dispatcher deferred (kg_dispatch.c, kg_async.h).
 *
 * A deferred item does not run until it is polled: it then runs through the
 * ordinary dispatcher path (policy decided with the Poll message's identity
 * and credential, audit, durable commit) and is answered in the Poll's
 * place. So a Cancel always finds it not started, and never races a worker.
 */
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

struct kg_async_who kg_op_async_who(const struct kg_op_ctx *ctx)
{
    return (struct kg_async_who){
        .owner = ctx->identity->fingerprint,
        .conn_id = ctx->conn_id,
        .version_major = ctx->version.major,
        .version_minor = ctx->version.minor,
    };
}

/* The payload's one Asynchronous Correlation Value (borrowed). */
static kg_result kg_op_async_read_value(struct kg_ttlv_reader *in, const uint8_t **id, uint32_t *id_len)
{
    struct kg_ttlv_item it;

    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_ASYNCHRONOUS_CORRELATION_VALUE, KG_TTLV_BYTE_STRING, &it));
    KG_GUARD(kg_ttlv_get_bytes(&it, id, id_len));
    KG_GUARD(kg_ttlv_reader_finish(in));
    return KG_RESULT_OK;
}

/*
 * Poll: take the caller's pending item out of the table into ctx->polled;
 * the dispatcher runs it and answers it instead of this (empty) payload.
 * An unknown, expired, cancelled or someone else's value: Item Not Found.
 */
kg_result kg_op_poll(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_async_who who = kg_op_async_who(ctx);
    const uint8_t *id;
    uint32_t id_len;

    (void)out;
    KG_GUARD(kg_op_async_read_value(in, &id, &id_len));
    KG_GUARD(kg_async_take(&ctx->gw->async, &who, id, id_len, kg_dispatch_now_ms(), &ctx->polled));
    ctx->has_polled = true;
    return KG_RESULT_OK;
}

/*
 * Cancel: a pending item of the caller is dropped before it ever ran:
 * Canceled. Section 4.27 answers a value that matches no pending operation
 * with Unavailable; someone else's value is answered exactly so, as it
 * does not exist for this caller.
 */
kg_result kg_op_cancel(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_async_who who = kg_op_async_who(ctx);
    struct kg_async_entry gone;
    const uint8_t *id;
    uint32_t id_len;
    uint32_t result = KG_CANCELLATION_CANCELED;

    KG_GUARD(kg_op_async_read_value(in, &id, &id_len));
    if (kg_ok(kg_async_take(&ctx->gw->async, &who, id, id_len, kg_dispatch_now_ms(), &gone))) {
        ctx->audit_note = "pending operation canceled";
        kg_async_entry_clear(&gone);
    } else {
        kg_error_clear();
        result = KG_CANCELLATION_UNAVAILABLE;
    }
    KG_GUARD(kg_ttlv_write_bytes(out, KG_TAG_ASYNCHRONOUS_CORRELATION_VALUE, id, id_len));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_CANCELLATION_RESULT, result));
    return KG_RESULT_OK;
}
