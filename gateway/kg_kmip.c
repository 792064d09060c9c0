/*
 * kg_kmip.c - KMIP vocabulary helpers.
 *
 * Operation names live in one table, policy/kg_policy_ops.c, so that the
 * names a security officer writes in policy.yaml are byte for byte the names
 * logs and audit records print. This file only forwards to it.
 */
#include "kg_kmip.h"

#include "kg_policy.h"

/* Every operation the gateway can dispatch must fit the policy's 64-bit mask. */
_Static_assert(KG_OP_MAX <= KG_POLICY_MAX_OP, "operation codes must fit the policy mask");

const char *kg_kmip_operation_name(uint32_t op)
{
    return kg_policy_operation_name(op);
}

uint32_t kg_kmip_operation_from_name(const char *name)
{
    return kg_policy_operation_code(name);
}
