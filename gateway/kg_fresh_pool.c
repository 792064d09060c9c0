/*
 * kg_fresh_pool.c - keys the gateway makes ahead of need (kg_fresh_pool.h).
 *
 * A Locate of the Fresh members of the pool's Object Group tops the pool up
 * first, so that a client always finds one; Get makes a key not fresh (KMIP
 * 1.4 section 3.34) and the next such Locate replaces it. No thread runs in
 * the background: the pool is filled when it is looked at. Two Locates at
 * once may both top it up, so it may hold up to twice its size, never less.
 *
 * Every limit of the group's own Create holds: its create rules (one policy
 * decision for the keys to make, counted as that many objects), its
 * limits.max_live_objects (the dispatcher holds the live-object lock for a
 * Locate by a group with a pool and that limit, and the fill is capped to
 * what the limit leaves) and its limits.requests_per_second (each key takes
 * a token; the fill stops when they run out).
 */
#include "kg_fresh_pool.h"

#include <string.h>

#include "kg_gateway.h"
#include "kg_kmip.h"
#include "kg_metrics.h"

static const uint32_t kg_pool_destroyed[] = { KG_STATE_DESTROYED, KG_STATE_DESTROYED_COMPROMISED };

/* Attribute Value Boolean True as the store keeps Fresh. */
static const uint8_t kg_pool_true[16] = { 0x42, 0x00, 0x0B, 0x06, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1 };

/* Is the stored-form Attribute Value `v` the text `text`? */
static bool kg_pool_value_is(const struct kg_store_filter_attr *v, const char *text)
{
    size_t n = strlen(text);

    return v->value_len >= 8 && v->value[3] == KG_TTLV_TEXT_STRING &&
           ((uint32_t)v->value[4] << 24 | (uint32_t)v->value[5] << 16 | (uint32_t)v->value[6] << 8 | v->value[7]) ==
               n &&
           v->value_len >= 8 + n && memcmp(v->value + 8, text, n) == 0;
}

static kg_result kg_pool_attr_int(struct kg_ttlv_writer *w, const char *name, bool is_enum, uint32_t v)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    KG_GUARD(is_enum ? kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, v)
                     : kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, (int32_t)v));
    return kg_ttlv_end_struct(w);
}

/* The Create payload (Object Type, Template-Attribute) of one pool key. */
static kg_result kg_pool_payload(const struct kg_policy_fresh_pool *pool, struct kg_ttlv_writer *w)
{
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_TEMPLATE_ATTRIBUTE));
    KG_GUARD(kg_pool_attr_int(w, "Cryptographic Algorithm", true, pool->algorithm));
    KG_GUARD(kg_pool_attr_int(w, "Cryptographic Length", false, (uint32_t)pool->length));
    KG_GUARD(kg_pool_attr_int(w, "Cryptographic Usage Mask", false, pool->usage_mask));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, "Object Group", 12));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_VALUE, pool->object_group,
                                (uint32_t)strlen(pool->object_group)));
    KG_GUARD(kg_ttlv_end_struct(w));
    return kg_ttlv_end_struct(w);
}

/* May the caller's group Create `count` such keys, its `live` objects
 * counted? Its own rules decide. */
static bool kg_pool_allowed(struct kg_op_ctx *ctx, const struct kg_policy_fresh_pool *pool, uint64_t live,
                            uint32_t count, struct kg_policy_decision *d)
{
    const struct kg_request *msg = ctx->request;
    struct kg_policy_request req = {
        .operation = KG_OP_CREATE,
        .group_live_objects = live,
        .objects_made = count,
        .object_type = KG_OBJ_SYMMETRIC_KEY,
        .algorithm = pool->algorithm,
        .length = pool->length,
        .usage_mask = (int32_t)pool->usage_mask,
        .has_credential = msg->has_credential,
        .credential_kind = msg->device_credential ? KG_POLICY_CRED_DEVICE : KG_POLICY_CRED_USERNAME,
        .username = msg->username,
        .username_len = msg->username_len,
        .password = msg->password,
        .password_len = msg->password_len,
    };

    *d = kg_policy_decide_request(ctx->policy, ctx->identity, &req);
    return d->verdict == KG_POLICY_ALLOW && d->group == ctx->group;
}

/* Make one pool key through Create; its UID goes to the audit. */
static kg_result kg_pool_make_one(struct kg_op_ctx *ctx, const struct kg_policy_fresh_pool *pool,
                                  const struct kg_policy_decision *d)
{
    struct kg_ttlv_writer payload = { 0 }, answer = { 0 };
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader in;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_ttlv_writer_init(&payload, 1024, false));
    KG_GOTO_GUARD(rc, kg_ttlv_writer_init(&answer, 1024, false));
    KG_GOTO_GUARD(rc, kg_pool_payload(pool, &payload));
    kg_ttlv_budget_init(&budget, NULL);
    KG_GOTO_GUARD(rc, kg_ttlv_reader_init(&in, payload.buf, payload.len, &budget));
    in.depth = 3; /* Request Message > Batch Item > Request Payload, as the dispatcher's */
    ctx->audit_uid[0] = '\0';
    rc = kg_op_create(ctx, &in, &answer);
out:;
    struct kg_audit_record rec = {
        .time = ctx->now,
        .identity = ctx->identity,
        .group = ctx->group->name,
        .operation = "Create",
        .uid = ctx->audit_uid,
        .decision = kg_policy_verdict_text(d->verdict),
        .rule = d->rule,
        .rule_line = d->line,
        .status = kg_ok(rc) ? KG_STATUS_SUCCESS : KG_STATUS_FAILED,
        .reason = kg_ok(rc) ? 0 : KG_REASON_GENERAL_FAILURE,
        .note = "fresh pool",
    };
    kg_audit_write(ctx->gw->audit, &rec);
    ctx->audit_uid[0] = '\0';
    ctx->audit_note = NULL;
    kg_ttlv_writer_cleanup(&payload);
    kg_ttlv_writer_cleanup(&answer);
    return rc;
}

kg_result kg_fresh_pool_top_up(struct kg_op_ctx *ctx, const struct kg_store_filter_attr *object_group)
{
    const struct kg_policy_fresh_pool *pool = &ctx->group->fresh_pool;
    char uids[KG_POLICY_MAX_POOL][KG_UID_LEN + 1];
    struct kg_policy_decision d;
    uint32_t found = 0, want;
    uint64_t live = 0;

    if (!pool->present || !kg_pool_value_is(object_group, pool->object_group)) {
        return KG_RESULT_OK;
    }
    struct kg_store_locate q = {
        .object_type = KG_OBJ_SYMMETRIC_KEY,
        .owner_group = ctx->group->name,
        .attrs = object_group,
        .attr_count = 1,
        .max_items = pool->size,
        .hidden_states = kg_pool_destroyed,
        .hidden_state_count = 2,
        .order = KG_STORE_ORDER_PREFER_ONLY,
        .prefer = { .name = "Fresh", .value = kg_pool_true, .value_len = sizeof(kg_pool_true) },
    };
    KG_GUARD(kg_store_locate(ctx->store, &q, uids, KG_POLICY_MAX_POOL, &found));
    if (found >= pool->size) {
        return KG_RESULT_OK;
    }
    want = pool->size - found;
    if (ctx->group->has_max_live_objects) {
        /* The dispatcher holds the live-object lock for this Locate. */
        KG_GUARD(kg_store_count_live(ctx->store, ctx->group->name, &live));
        if (live >= ctx->group->max_live_objects) {
            want = 0;
        } else if (ctx->group->max_live_objects - live < want) {
            want = (uint32_t)(ctx->group->max_live_objects - live);
        }
    }
    if (want == 0 || !kg_pool_allowed(ctx, pool, live, want, &d)) {
        kg_log("warn", "fresh_pool of group '%s' is not made: its own policy refuses such a Create (%s)",
               ctx->group->name, want == 0 ? "limits.max_live_objects" : kg_policy_verdict_text(d.verdict));
        return KG_RESULT_OK;
    }
    for (uint32_t i = 0; i < want; i++) {
        struct kg_policy_decision rate = kg_policy_rate_check(ctx->policy, ctx->group, kg_metrics_now_ns() / 1000000u);

        if (rate.verdict != KG_POLICY_ALLOW) {
            break; /* limits.requests_per_second: the rest waits for the next Locate */
        }
        KG_GUARD(kg_pool_make_one(ctx, pool, &d));
    }
    return KG_RESULT_OK;
}
