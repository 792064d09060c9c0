/* kg_op_util.c - small pieces shared by the operation handlers. */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "kg_kmip.h"
#include "kg_ops.h"

kg_result kg_op_skip_uid(struct kg_ttlv_reader *in)
{
    struct kg_ttlv_item it;
    bool present;

    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it, &present));
    return KG_RESULT_OK;
}

kg_result kg_op_write_uid(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, ctx->object.uid, (uint32_t)strlen(ctx->object.uid)));
    return KG_RESULT_OK;
}

kg_result kg_op_new_uid(char out[KG_UID_LEN + 1])
{
    uint8_t b[16];

    /* UIDs are random, never sequential (DESIGN.md): a UID reveals nothing
     * about how many keys exist or when they were made. */
    KG_ENSURE(RAND_bytes(b, sizeof(b)) == 1, KG_ERR_RANDOM);
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    snprintf(out, KG_UID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return KG_RESULT_OK;
}

kg_result kg_op_uid_or_placeholder(const struct kg_op_ctx *ctx, const struct kg_ttlv_item *it, bool present,
                                   char out[KG_UID_LEN + 1])
{
    const char *uid;
    uint32_t len;

    if (!present) {
        KG_ENSURE(ctx->id_placeholder[0] != '\0',
                  ctx->id_placeholder_found_nothing ? KG_ERR_NOT_FOUND : KG_ERR_MISSING_FIELD);
        memcpy(out, ctx->id_placeholder, KG_UID_LEN + 1);
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_get_text(it, &uid, &len));
    /* Our UIDs are all KG_UID_LEN long: anything else cannot exist. */
    KG_ENSURE(len == KG_UID_LEN, KG_ERR_NOT_FOUND);
    memcpy(out, uid, len);
    out[len] = '\0';
    return KG_RESULT_OK;
}

kg_result kg_op_check_undoable(const struct kg_op_ctx *ctx)
{
    if (ctx->undo_batch) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("a key resident in the HSM is not made or destroyed in a batch with Undo: the HSM cannot "
                        "take that back");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}
