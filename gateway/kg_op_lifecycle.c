/*
 * kg_op_lifecycle.c - Activate, Revoke and Destroy (KMIP 1.4 sections 4.19,
 * 4.20, 4.21) and the state machine of section 3.22.
 */
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_crypto.h"

static kg_result kg_lifecycle_apply(struct kg_store *w, const struct kg_op_ctx *ctx, uint32_t state,
                                    const char *date_name, bool erase_blob)
{
    const char *uid = ctx->object.uid;

    KG_GUARD(kg_store_set_state(w, uid, state));
    if (date_name != NULL) {
        KG_GUARD(kg_attr_store_date(w, uid, date_name, ctx->now));
    }
    if (erase_blob) {
        KG_GUARD(kg_store_erase_blob(w, uid));
    }
    KG_GUARD(kg_attr_store_date(w, uid, "Last Change Date", ctx->now));
    return KG_RESULT_OK;
}

/* Move ctx->object to `state`, record the dates, commit durably. */
static kg_result kg_lifecycle_commit(struct kg_op_ctx *ctx, uint32_t state, const char *date_name,
                                     bool erase_blob)
{
    struct kg_store *w;

    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_lifecycle_apply(w, ctx, state, date_name, erase_blob)));
    ctx->object.state = state;
    return KG_RESULT_OK;
}

kg_result kg_op_lifecycle_follow_dates(struct kg_op_ctx *ctx)
{
    uint32_t state = ctx->object.state, next = state;
    int64_t activation, deactivation;
    bool found;

    /* A Template's dates are for the keys it makes, not for itself. */
    if ((state != KG_STATE_PRE_ACTIVE && state != KG_STATE_ACTIVE) || ctx->object.object_type == KG_OBJ_TEMPLATE) {
        return KG_RESULT_OK;
    }
    /* A missing date is 0: never reached. */
    KG_GUARD(kg_attr_get_date(ctx->store, ctx->object.uid, "Activation Date", &found, &activation));
    KG_GUARD(kg_attr_get_date(ctx->store, ctx->object.uid, "Deactivation Date", &found, &deactivation));
    if (state == KG_STATE_PRE_ACTIVE && activation != 0 && activation <= ctx->now) {
        next = KG_STATE_ACTIVE;
    }
    if (deactivation != 0 && deactivation <= ctx->now) {
        next = KG_STATE_DEACTIVATED;
    }
    if (next == state) {
        return KG_RESULT_OK;
    }
    /* The dates are already recorded; only the state moves. */
    return kg_lifecycle_commit(ctx, next, NULL, false);
}

kg_result kg_op_activate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_op_template_no_lifecycle(&ctx->object, "activated"));
    if (ctx->object.state != KG_STATE_PRE_ACTIVE) {
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("only a Pre-Active object can be activated");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_lifecycle_commit(ctx, KG_STATE_ACTIVE, "Activation Date", false));
    KG_GUARD(kg_op_write_uid(ctx, out));
    return KG_RESULT_OK;
}

static kg_result kg_revoke_apply(struct kg_store *w, const struct kg_op_ctx *ctx, uint32_t next, int64_t occurred,
                                 const struct kg_ttlv_writer *reason)
{
    const char *uid = ctx->object.uid;
    int32_t index;

    KG_GUARD(kg_store_delete_attr_all(w, uid, "Revocation Reason"));
    KG_GUARD(kg_store_add_attr(w, uid, "Revocation Reason", reason->buf, reason->len, &index));
    if (next == KG_STATE_DEACTIVATED) {
        KG_GUARD(kg_attr_store_date(w, uid, "Deactivation Date", ctx->now));
    } else {
        KG_GUARD(kg_attr_store_date(w, uid, "Compromise Occurrence Date", occurred));
        KG_GUARD(kg_attr_store_date(w, uid, "Compromise Date", ctx->now));
    }
    KG_GUARD(kg_store_set_state(w, uid, next));
    KG_GUARD(kg_attr_store_date(w, uid, "Last Change Date", ctx->now));
    return KG_RESULT_OK;
}

kg_result kg_op_revoke(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_ttlv_item reason, code_item, it;
    struct kg_ttlv_reader r;
    struct kg_ttlv_writer value;
    uint32_t code, state = ctx->object.state, next;
    int64_t occurred = ctx->now;
    bool present = false;
    struct kg_store *w;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_REVOCATION_REASON, KG_TTLV_STRUCTURE, &reason));
    KG_GUARD(kg_ttlv_child(in, &reason, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_REVOCATION_REASON_CODE, KG_TTLV_ENUMERATION, &code_item));
    KG_GUARD(kg_ttlv_get_enum(&code_item, &code));
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_REVOCATION_MESSAGE, KG_TTLV_TEXT_STRING, &it, &present));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_COMPROMISE_OCCURRENCE_DATE, KG_TTLV_DATE_TIME, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_datetime(&it, &occurred));
    }
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_op_template_no_lifecycle(&ctx->object, "revoked"));

    if (code == KG_REVOKE_KEY_COMPROMISE || code == KG_REVOKE_CA_COMPROMISE) {
        KG_ENSURE(state != KG_STATE_DESTROYED_COMPROMISED && state != KG_STATE_COMPROMISED, KG_ERR_WRONG_STATE);
        next = state == KG_STATE_DESTROYED ? KG_STATE_DESTROYED_COMPROMISED : KG_STATE_COMPROMISED;
    } else {
        /* Any other reason deactivates an Active key (section 4.20). */
        KG_ENSURE(state == KG_STATE_ACTIVE, KG_ERR_WRONG_STATE);
        next = KG_STATE_DEACTIVATED;
    }

    KG_GUARD(kg_ttlv_writer_init(&value, 1024, false));
    KG_GOTO_GUARD(rc, kg_ttlv_write_item_as(&value, KG_TAG_ATTRIBUTE_VALUE, &reason));
    KG_GOTO_GUARD(rc, kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GOTO_GUARD(rc, kg_change_end(ctx->gw->committer, kg_revoke_apply(w, ctx, next, occurred, &value)));
    ctx->object.state = next;
    KG_GOTO_GUARD(rc, kg_op_write_uid(ctx, out));
out:
    kg_ttlv_writer_cleanup(&value);
    return rc;
}

kg_result kg_op_destroy(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    uint32_t state = ctx->object.state;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    if (state == KG_STATE_ACTIVE) {
        /* An Active key protects data in use: revoke it first (3.22). */
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("an Active object must be revoked before it is destroyed");
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(state != KG_STATE_DESTROYED && state != KG_STATE_DESTROYED_COMPROMISED, KG_ERR_NOT_FOUND);
    if (ctx->object.storage == KG_P11_STORED_RESIDENT) {
        struct kg_p11_key_ref ref;

        /* A resident key's only copy is the token object: it goes first,
         * and if the HSM cannot remove it the key is not destroyed. If the
         * commit below fails after it went, a retried Destroy finds no
         * object and completes (kg_p11_resident_destroy is idempotent). */
        KG_GUARD(kg_op_check_undoable(ctx));
        KG_GUARD(kg_op_key_ref(&ctx->object, &ref));
        KG_GUARD(kg_p11_resident_destroy(ctx->gw->p11, &ref));
        ctx->audit_note = "resident key destroyed in the HSM";
    }
    /* The wrapped blob is the only copy of the key outside the HSM's master
     * key: erasing it in the same transaction as the state change destroys
     * the key for good. */
    KG_GUARD(kg_lifecycle_commit(ctx,
                                 state == KG_STATE_COMPROMISED ? KG_STATE_DESTROYED_COMPROMISED : KG_STATE_DESTROYED,
                                 "Destroy Date", true));
    KG_GUARD(kg_op_write_uid(ctx, out));
    return KG_RESULT_OK;
}
