/* kg_op_query.c - Query (KMIP 1.4 section 4.25): only what the HSM token
 * behind the gateway can really do (issue 9). */
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
/*
 * Can the token behind this gateway really do `op`? Mechanism discovery
 * (kg_p11_mech.c) decides for the operations that need a particular
 * mechanism; every other one in the table works on any token that passed
 * kg_p11_open (which requires AES key generation and an MWK wrapping).
 */
static bool kg_query_token_can(struct kg_p11 *p11, uint32_t op)
{
    switch (op) {
    case KG_OP_CREATE_KEY_PAIR:
    case KG_OP_REKEY_KEY_PAIR:
        return kg_p11_can(p11, KG_P11_CAN_GENERATE_RSA) || kg_p11_can(p11, KG_P11_CAN_GENERATE_EC);
    case KG_OP_ENCRYPT:
    case KG_OP_DECRYPT:
        return kg_p11_can(p11, KG_P11_CAN_AES_GCM) || kg_p11_can(p11, KG_P11_CAN_AES_CBC_PAD);
    case KG_OP_SIGN:
    case KG_OP_SIGNATURE_VERIFY:
        return kg_p11_can(p11, KG_P11_CAN_RSA_SIGN) || kg_p11_can(p11, KG_P11_CAN_RSA_PSS) ||
               kg_p11_can(p11, KG_P11_CAN_ECDSA);
    case KG_OP_MAC:
    case KG_OP_MAC_VERIFY:
        return kg_p11_can(p11, KG_P11_CAN_HMAC_SHA256) || kg_p11_can(p11, KG_P11_CAN_HMAC_SHA384) ||
               kg_p11_can(p11, KG_P11_CAN_HMAC_SHA512);
    default:
        return true;
    }
}

kg_result kg_op_query(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    bool want_ops = false, want_objects = false, want_info = false;
    struct kg_ttlv_item it;
    uint32_t fn;

    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_QUERY_FUNCTION, KG_TTLV_ENUMERATION, &it));
        KG_GUARD(kg_ttlv_get_enum(&it, &fn));
        want_ops |= fn == KG_QUERY_OPERATIONS;
        want_objects |= fn == KG_QUERY_OBJECTS;
        want_info |= fn == KG_QUERY_SERVER_INFORMATION;
    }
    if (want_ops) {
        for (uint32_t op = 1; op <= KG_OP_MAX; op++) {
            if (kg_ops_lookup(op) != NULL && kg_query_token_can(ctx->gw->p11, op)) {
                KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OPERATION, op));
            }
        }
    }
    if (want_objects) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
        if (kg_query_token_can(ctx->gw->p11, KG_OP_CREATE_KEY_PAIR)) {
            KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_PUBLIC_KEY));
            KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_PRIVATE_KEY));
        }
    }
    if (want_info) {
        KG_GUARD(kg_ttlv_write_text(out, KG_TAG_VENDOR_IDENTIFICATION, KG_VENDOR, (uint32_t)strlen(KG_VENDOR)));
    }
    return KG_RESULT_OK;
}
