/*
 * kg_fresh_pool.h - keys the gateway makes ahead of need (policy
 * groups.<g>.fresh_pool; KMIP Client Registration Method Server
 * Pre-Generated, and the 1.1 test case TC_151 "Locate a Fresh Object from
 * the Default Group").
 */
#ifndef KG_FRESH_POOL_H
#define KG_FRESH_POOL_H

#include "kg_ops.h"
#include "kg_store.h"

/*
 * Before a Locate of the Fresh (or Default) members of an Object Group:
 * when `object_group` (the Locate's Object Group filter, a stored-form
 * Attribute Value, borrowed) is the caller's group's fresh_pool, make keys
 * until the group holds the pool's size of fresh ones there. Each is made by
 * kg_op_create exactly as the group's own Create would make it (policy
 * decides it first; a refusal is logged once per call and leaves the pool
 * as it is), is durable before this returns, and is audited as a Create with
 * the note "fresh pool". Nothing secret passes through here.
 */
kg_result kg_fresh_pool_top_up(struct kg_op_ctx *ctx, const struct kg_store_filter_attr *object_group) KG_WARN_UNUSED;

#endif
