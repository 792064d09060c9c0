/*
 * kg_policy_ops.c - KMIP operation names <-> codes.
 *
 * The one table of operation names in kmipgw: the policy loader reads names
 * from policy files with it, and the gateway names operations with it, so logs,
 * audit records and `policy explain` print the same words a security officer
 * wrote. Names and codes are those of KMIP 1.4 section 9.1.3.2.27 (Table 315),
 * spelled exactly as there: matching is case-sensitive so that a policy file
 * reads the same everywhere ("Re-key", not "rekey").
 */
#include <string.h>

#include "kg_policy.h"

/* Indexed by operation code; a NULL slot is a code KMIP 1.4 does not define. */
static const char *const kg_policy_op_names[KG_POLICY_MAX_OP + 1] = {
    [0x01] = "Create",
    [0x02] = "Create Key Pair",
    [0x03] = "Register",
    [0x04] = "Re-key",
    [0x05] = "Derive Key",
    [0x06] = "Certify",
    [0x07] = "Re-certify",
    [0x08] = "Locate",
    [0x09] = "Check",
    [0x0A] = "Get",
    [0x0B] = "Get Attributes",
    [0x0C] = "Get Attribute List",
    [0x0D] = "Add Attribute",
    [0x0E] = "Modify Attribute",
    [0x0F] = "Delete Attribute",
    [0x10] = "Obtain Lease",
    [0x11] = "Get Usage Allocation",
    [0x12] = "Activate",
    [0x13] = "Revoke",
    [0x14] = "Destroy",
    [0x15] = "Archive",
    [0x16] = "Recover",
    [0x17] = "Validate",
    [0x18] = "Query",
    [0x19] = "Cancel",
    [0x1A] = "Poll",
    [0x1B] = "Notify",
    [0x1C] = "Put",
    [0x1D] = "Re-key Key Pair",
    [0x1E] = "Discover Versions",
    [0x1F] = "Encrypt",
    [0x20] = "Decrypt",
    [0x21] = "Sign",
    [0x22] = "Signature Verify",
    [0x23] = "MAC",
    [0x24] = "MAC Verify",
    [0x25] = "RNG Retrieve",
    [0x26] = "RNG Seed",
    [0x27] = "Hash",
    [0x28] = "Create Split Key",
    [0x29] = "Join Split Key",
    [0x2A] = "Import",
    [0x2B] = "Export",
    /* KMIP 2.1 operations kmipgw answers (gateway/kg_op_interop.c). */
    [0x2C] = "Log",
    [0x31] = "Set Attribute",
    [0x34] = "Interop",
};

const char *kg_policy_operation_name(uint32_t operation)
{
    if (operation > KG_POLICY_MAX_OP) {
        return NULL;
    }
    return kg_policy_op_names[operation];
}

uint32_t kg_policy_operation_code(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (uint32_t op = 1; op <= KG_POLICY_MAX_OP; op++) {
        if (kg_policy_op_names[op] != NULL && strcmp(kg_policy_op_names[op], name) == 0) {
            return op;
        }
    }
    return 0;
}

uint64_t kg_policy_operation_mask_all(void)
{
    uint64_t mask = 0;

    for (uint32_t op = 1; op <= KG_POLICY_MAX_OP; op++) {
        if (kg_policy_op_names[op] != NULL) {
            mask |= UINT64_C(1) << op;
        }
    }
    return mask;
}
