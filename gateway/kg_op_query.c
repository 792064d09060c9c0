/* kg_op_query.c - Query (KMIP 1.4 section 4.25). */
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

#define KG_VENDOR "kmipgw"

/*
 * Operations, Objects and Server Information are answered; other query
 * functions are valid requests for things we do not offer, so they add
 * nothing rather than fail (KMIP 1.4 section 4.25: the server returns what
 * it supports of what was asked). The 1.x Server Information structure
 * is vendor-defined and optional; Vendor Identification is what vCenter
 * reads (VSPHERE.md).
 */
kg_result kg_op_query(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    bool want_ops = false, want_objects = false, want_info = false;
    struct kg_ttlv_item it;
    uint32_t fn;

    (void)ctx;
    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_QUERY_FUNCTION, KG_TTLV_ENUMERATION, &it));
        KG_GUARD(kg_ttlv_get_enum(&it, &fn));
        want_ops |= fn == KG_QUERY_OPERATIONS;
        want_objects |= fn == KG_QUERY_OBJECTS;
        want_info |= fn == KG_QUERY_SERVER_INFORMATION;
    }
    if (want_ops) {
        for (uint32_t op = 1; op <= KG_OP_MAX; op++) {
            if (kg_ops_lookup(op) != NULL) {
                KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OPERATION, op));
            }
        }
    }
    if (want_objects) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    }
    if (want_info) {
        KG_GUARD(kg_ttlv_write_text(out, KG_TAG_VENDOR_IDENTIFICATION, KG_VENDOR, (uint32_t)strlen(KG_VENDOR)));
    }
    return KG_RESULT_OK;
}
