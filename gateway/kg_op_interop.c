/*
 * kg_op_interop.c - Log (KMIP 2.1 section 6.1.29) and Interop (6.1.26).
 *
 * Log asks the server to record a client's message: it goes to the
 * gateway's log as one JSON line (kg_log escapes it), never longer than
 * KG_LOG_MESSAGE_MAX bytes, and the audit log records that it happened.
 *
 * Interop marks where an interoperability test case begins, ends or is
 * reset. The OASIS vectors send it (the BL profile opens and closes every
 * case with it), but KMIP says it "SHALL NOT be available in a production
 * server": kmipgw answers it only when gateway.yaml sets testing.interop,
 * and then does nothing but log it; otherwise it is Operation Not
 * Supported, like an operation kmipgw does not have.
 */
#include <string.h>

#include "kg_audit.h"
#include "kg_gateway.h"
#include "kg_kmip.h"
#include "kg_ops.h"

/* The most of a client's Log Message the gateway's log keeps. */
#define KG_LOG_MESSAGE_MAX 512u

enum kg_interop_function {
    KG_INTEROP_BEGIN = 0x01,
    KG_INTEROP_END = 0x02,
    KG_INTEROP_RESET = 0x03,
};

kg_result kg_op_log(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_ttlv_item it;
    const char *text;
    uint32_t len;

    (void)out; /* the answer is an empty payload */
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_LOG_MESSAGE, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_ttlv_get_text(&it, &text, &len));
    kg_log("info", "client log from %s: %.*s%s", ctx->identity->cn != NULL ? ctx->identity->cn : "(no CN)",
           (int)(len < KG_LOG_MESSAGE_MAX ? len : KG_LOG_MESSAGE_MAX), text,
           len > KG_LOG_MESSAGE_MAX ? " (cut)" : "");
    ctx->audit_note = "client log message";
    return KG_RESULT_OK;
}

kg_result kg_op_interop(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_ttlv_item fn_item, id_item;
    const char *id;
    uint32_t fn, id_len;
    bool has_id = false;

    (void)out;
    if (!ctx->gw->config->testing_interop) {
        kg_error_set(KG_ERR_UNSUPPORTED_OP, __FILE__, __LINE__);
        kg_error_detail("Interop is for test benches only (KMIP 2.1 section 6.1.26; testing.interop)");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_INTEROP_FUNCTION, KG_TTLV_ENUMERATION, &fn_item));
    KG_GUARD(kg_ttlv_get_enum(&fn_item, &fn));
    KG_ENSURE(fn >= KG_INTEROP_BEGIN && fn <= KG_INTEROP_RESET, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_INTEROP_IDENTIFIER, KG_TTLV_TEXT_STRING, &id_item, &has_id));
    KG_GUARD(kg_ttlv_reader_finish(in));
    if (has_id) {
        KG_GUARD(kg_ttlv_get_text(&id_item, &id, &id_len));
    } else {
        id = "";
        id_len = 0;
    }
    kg_log("info", "interop %s %.*s", fn == KG_INTEROP_BEGIN ? "begin" : fn == KG_INTEROP_END ? "end" : "reset",
           (int)(id_len < KG_LOG_MESSAGE_MAX ? id_len : KG_LOG_MESSAGE_MAX), id);
    ctx->audit_note = "interop test marker";
    return KG_RESULT_OK;
}
