/* kg_op_discover.c - Discover Versions (KMIP 1.4 section 4.26). */
#include "kg_kmip.h"
#include "kg_ops.h"

/*
 * Answer the versions we support, in our order of preference, restricted to
 * those the client listed (all of ours when it listed none) and to those not
 * newer than the request's own: a client that asks in 1.4 cannot read a 2.x
 * message, and the OASIS cases of each version expect exactly that list
 * (TC-Q-S2C-2-14, TC_161_11). An empty answer tells the client we share no
 * version.
 */
kg_result kg_op_discover_versions(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_version wanted[32];
    uint32_t n = 0;
    struct kg_ttlv_item it, major, minor;
    struct kg_ttlv_reader v;

    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_PROTOCOL_VERSION, KG_TTLV_STRUCTURE, &it));
        KG_ENSURE(n < sizeof(wanted) / sizeof(wanted[0]), KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_child(in, &it, &v));
        KG_GUARD(kg_ttlv_read_expect(&v, KG_TAG_PROTOCOL_VERSION_MAJOR, KG_TTLV_INTEGER, &major));
        KG_GUARD(kg_ttlv_read_expect(&v, KG_TAG_PROTOCOL_VERSION_MINOR, KG_TTLV_INTEGER, &minor));
        KG_GUARD(kg_ttlv_reader_finish(&v));
        KG_GUARD(kg_ttlv_get_int(&major, &wanted[n].major));
        KG_GUARD(kg_ttlv_get_int(&minor, &wanted[n].minor));
        n++;
    }
    for (uint32_t i = 0; i < kg_msg_supported_version_count; i++) {
        struct kg_version ours = kg_msg_supported_versions[i];
        bool listed = (n == 0);

        if (ours.major > ctx->version.major ||
            (ours.major == ctx->version.major && ours.minor > ctx->version.minor)) {
            continue;
        }
        for (uint32_t j = 0; j < n && !listed; j++) {
            listed = wanted[j].major == ours.major && wanted[j].minor == ours.minor;
        }
        if (!listed) {
            continue;
        }
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_PROTOCOL_VERSION));
        KG_GUARD(kg_ttlv_write_int(out, KG_TAG_PROTOCOL_VERSION_MAJOR, ours.major));
        KG_GUARD(kg_ttlv_write_int(out, KG_TAG_PROTOCOL_VERSION_MINOR, ours.minor));
        KG_GUARD(kg_ttlv_end_struct(out));
    }
    return KG_RESULT_OK;
}
