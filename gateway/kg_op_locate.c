/*
 * kg_op_locate.c - Locate (KMIP 1.4 section 4.9): objects whose attributes
 * match every given value, newest first, limited to the caller's scope.
 * An object outside the scope is never listed.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

#define KG_LOCATE_MAX_FILTERS 16
#define KG_LOCATE_MAX_RESULTS 1024

/* Attributes that live in object columns become column filters. */
static kg_result kg_locate_column(struct kg_store_locate *q, const struct kg_attr_in *a, bool *used)
{
    *used = true;
    if (strcmp(a->name, "Object Type") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &q->object_type));
    } else if (strcmp(a->name, "State") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &q->state));
    } else if (strcmp(a->name, "Cryptographic Algorithm") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &q->algorithm));
    } else if (strcmp(a->name, "Cryptographic Length") == 0) {
        KG_GUARD(kg_ttlv_get_int(&a->value, &q->length));
    } else if (a->def->flags & KG_ATTR_DERIVED) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("Locate cannot filter on '%s'", a->name);
        return KG_RESULT_ERROR;
    } else {
        *used = false;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_locate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_attr_in *attrs = NULL;
    struct kg_store_filter_attr filters[KG_LOCATE_MAX_FILTERS];
    struct kg_store_locate q = { 0 };
    char (*uids)[KG_UID_LEN + 1] = NULL;
    struct kg_ttlv_item it;
    int32_t max_items = 0, offset = 0;
    uint32_t found = 0, n = 0;
    kg_result rc = KG_RESULT_OK;
    bool used;

    attrs = calloc(KG_LOCATE_MAX_FILTERS, sizeof(*attrs));
    uids = calloc(KG_LOCATE_MAX_RESULTS, sizeof(*uids));
    KG_GOTO_ENSURE(rc, attrs != NULL && uids != NULL, KG_ERR_NOMEM);
    while (!kg_ttlv_reader_done(in)) {
        KG_GOTO_GUARD(rc, kg_ttlv_read(in, &it));
        switch (it.tag) {
        case KG_TAG_MAXIMUM_ITEMS:
            KG_GOTO_GUARD(rc, kg_ttlv_get_int(&it, &max_items));
            KG_GOTO_ENSURE(rc, max_items >= 0, KG_ERR_INVALID_FIELD);
            break;
        case KG_TAG_OFFSET:
            KG_GOTO_GUARD(rc, kg_ttlv_get_int(&it, &offset));
            KG_GOTO_ENSURE(rc, offset >= 0 && offset < KG_LOCATE_MAX_RESULTS, KG_ERR_INVALID_FIELD);
            break;
        case KG_TAG_STORAGE_STATUS_MASK:
            /* Every object is on-line: nothing is archived here. */
            break;
        case KG_TAG_ATTRIBUTE:
            KG_GOTO_ENSURE(rc, n < KG_LOCATE_MAX_FILTERS, KG_ERR_INVALID_FIELD);
            KG_GOTO_GUARD(rc, kg_attr_read(in, &it, true, &attrs[n]));
            KG_GOTO_GUARD(rc, kg_locate_column(&q, &attrs[n], &used));
            if (!used) {
                filters[q.attr_count].name = attrs[n].name;
                filters[q.attr_count].value = attrs[n].value.raw;
                filters[q.attr_count].value_len = attrs[n].value.raw_len;
                q.attr_count++;
            }
            n++;
            break;
        default:
            KG_GOTO_BAIL(rc, KG_ERR_INVALID_FIELD);
        }
    }
    q.attrs = filters;
    /* Only what the caller's scope covers is ever looked at. */
    const char *owners[KG_STORE_LOCATE_MAX_OWNERS];
    if (ctx->group->scope == KG_SCOPE_OWN) {
        q.owner_group = ctx->group->name;
    } else if (ctx->group->scope == KG_SCOPE_LIST) {
        KG_GOTO_ENSURE(rc, ctx->group->scope_group_count < KG_STORE_LOCATE_MAX_OWNERS, KG_ERR_INTERNAL);
        owners[0] = ctx->group->name;
        for (size_t i = 0; i < ctx->group->scope_group_count; i++) {
            owners[i + 1] = ctx->group->scope_groups[i];
        }
        q.owner_groups = owners;
        q.owner_group_count = (uint32_t)ctx->group->scope_group_count + 1;
    }
    q.max_items = 0;
    if (max_items > 0 && (uint32_t)max_items + (uint32_t)offset < KG_LOCATE_MAX_RESULTS) {
        q.max_items = (uint32_t)max_items + (uint32_t)offset;
    }
    KG_GOTO_GUARD(rc, kg_store_locate(ctx->store, &q, uids, KG_LOCATE_MAX_RESULTS, &found));
    for (uint32_t i = (uint32_t)offset; i < found; i++) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, uids[i], KG_UID_LEN));
    }
out:
    free(attrs);
    free(uids);
    return rc;
}
