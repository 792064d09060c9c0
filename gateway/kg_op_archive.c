/*
 * kg_op_archive.c - Archive and Recover (KMIP 1.4 sections 4.22 and 4.23).
 *
 * Archival here is a state, not a move: the key material stays where it was
 * (wrapped in the store, or resident in the HSM), which 4.22 allows ("the
 * location of the archive ... is determined by the policies within the key
 * management system"). What changes is that the object is off-line: Locate
 * leaves it out unless its Storage Status Mask asks for archival storage,
 * and every operation but Recover, Get Attributes and Get Attribute List is
 * refused with Object Archived (the dispatcher asks kg_op_refuse_archived).
 *
 * The state is the Archive Date attribute row (kg_store.h): 3.32 has the
 * server set it at Archive and delete it at Recover, so the row says exactly
 * "archived", survives restarts and needed no schema change; attributes stay
 * readable while archived, as the 1.1 test case TC-101 shows a server doing.
 */
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"

kg_result kg_op_refuse_archived(struct kg_op_ctx *ctx)
{
    bool archived = false;

    KG_GUARD(kg_store_is_archived(ctx->store, ctx->object.uid, &archived));
    if (archived) {
        kg_error_set(KG_ERR_OBJECT_ARCHIVED, __FILE__, __LINE__);
        kg_error_detail("object %s is archived: Recover it first", ctx->object.uid);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

static kg_result kg_archive_apply(struct kg_store *w, const struct kg_op_ctx *ctx)
{
    KG_GUARD(kg_attr_store_date(w, ctx->object.uid, KG_STORE_ARCHIVE_DATE, ctx->now));
    KG_GUARD(kg_attr_store_date(w, ctx->object.uid, "Last Change Date", ctx->now));
    return KG_RESULT_OK;
}

/* The dispatcher refused an object already archived (11.23: Object Archived). */
kg_result kg_op_archive(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_store *w;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_archive_apply(w, ctx)));
    ctx->audit_note = "archived";
    KG_GUARD(kg_op_write_uid(ctx, out));
    return KG_RESULT_OK;
}

static kg_result kg_recover_apply(struct kg_store *w, const struct kg_op_ctx *ctx, bool *recovered)
{
    /* Read on the writer: a concurrent Archive or Recover is either wholly
     * before this change or wholly after it. */
    KG_GUARD(kg_store_is_archived(w, ctx->object.uid, recovered));
    if (*recovered) {
        KG_GUARD(kg_store_delete_attr_all(w, ctx->object.uid, KG_STORE_ARCHIVE_DATE));
        KG_GUARD(kg_attr_store_date(w, ctx->object.uid, "Last Change Date", ctx->now));
    }
    return KG_RESULT_OK;
}

/* Recovering an object that is on-line already changes nothing and succeeds:
 * afterwards it is on-line, which is all 4.23 promises. */
kg_result kg_op_recover(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_store *w;
    bool recovered = false;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_recover_apply(w, ctx, &recovered)));
    ctx->audit_note = recovered ? "recovered from archive" : "was not archived";
    KG_GUARD(kg_op_write_uid(ctx, out));
    return KG_RESULT_OK;
}
