/*
 * kg_dispatch.c - the operation table and the per-message pipeline:
 * decode, then for each batch item: look up, resolve the target object,
 * decide by policy, execute, audit; then frame the response. An item the
 * client lets wait (Asynchronous Indicator) may be deferred instead, and
 * goes through the same pipeline when it is polled (kg_dispatch_defer).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "kg_gateway.h"
#include "kg_kmip.h"
#include "kg_kmip2.h"
#include "kg_metrics.h"
#include "kg_ops.h"

static const struct kg_op kg_ops[KG_OP_MAX + 1] = {
    [KG_OP_DISCOVER_VERSIONS] = { .execute = kg_op_discover_versions },
    [KG_OP_QUERY] = { .execute = kg_op_query },
    [KG_OP_CREATE] = { .execute = kg_op_create, .facts = kg_op_create_facts },
    [KG_OP_CREATE_KEY_PAIR] = { .execute = kg_op_create_key_pair, .facts = kg_op_create_key_pair_facts },
    [KG_OP_REKEY] = { .execute = kg_op_rekey, .facts = kg_op_rekey_facts, .targets_object = true },
    /* Names its target by Private Key Unique Identifier: resolved by its facts. */
    [KG_OP_REKEY_KEY_PAIR] = { .execute = kg_op_rekey_key_pair, .facts = kg_op_rekey_key_pair_facts },
    [KG_OP_REGISTER] = { .execute = kg_op_register, .facts = kg_op_register_facts },
    [KG_OP_GET] = { .execute = kg_op_get, .facts = kg_op_get_facts, .targets_object = true },
    [KG_OP_GET_ATTRIBUTES] = { .execute = kg_op_get_attributes, .targets_object = true, .archived_ok = true },
    [KG_OP_GET_ATTRIBUTE_LIST] = { .execute = kg_op_get_attribute_list, .targets_object = true, .archived_ok = true },
    [KG_OP_ADD_ATTRIBUTE] = { .execute = kg_op_add_attribute, .targets_object = true },
    [KG_OP_MODIFY_ATTRIBUTE] = { .execute = kg_op_modify_attribute, .targets_object = true },
    [KG_OP_DELETE_ATTRIBUTE] = { .execute = kg_op_delete_attribute, .targets_object = true },
    [KG_OP_SET_ATTRIBUTE] = { .execute = kg_op_set_attribute, .targets_object = true },
    [KG_OP_ACTIVATE] = { .execute = kg_op_activate, .targets_object = true },
    [KG_OP_REVOKE] = { .execute = kg_op_revoke, .targets_object = true },
    [KG_OP_DESTROY] = { .execute = kg_op_destroy, .targets_object = true },
    [KG_OP_LOCATE] = { .execute = kg_op_locate },
    [KG_OP_CHECK] = { .execute = kg_op_check, .targets_object = true },
    [KG_OP_OBTAIN_LEASE] = { .execute = kg_op_obtain_lease, .targets_object = true },
    [KG_OP_GET_USAGE_ALLOCATION] = { .execute = kg_op_get_usage_allocation, .targets_object = true },
    [KG_OP_ARCHIVE] = { .execute = kg_op_archive, .targets_object = true },
    [KG_OP_RECOVER] = { .execute = kg_op_recover, .targets_object = true, .archived_ok = true },
    /* Of the items an Asynchronous Indicator deferred (kg_dispatch_defer). */
    [KG_OP_CANCEL] = { .execute = kg_op_cancel },
    [KG_OP_POLL] = { .execute = kg_op_poll },
    [KG_OP_LOG] = { .execute = kg_op_log },
    [KG_OP_INTEROP] = { .execute = kg_op_interop },
    [KG_OP_ENCRYPT] = { .execute = kg_op_encrypt, .targets_object = true },
    [KG_OP_DECRYPT] = { .execute = kg_op_decrypt, .targets_object = true },
    [KG_OP_SIGN] = { .execute = kg_op_sign, .targets_object = true },
    [KG_OP_SIGNATURE_VERIFY] = { .execute = kg_op_signature_verify, .targets_object = true },
    [KG_OP_MAC] = { .execute = kg_op_mac, .targets_object = true },
    [KG_OP_MAC_VERIFY] = { .execute = kg_op_mac_verify, .targets_object = true },
};

const struct kg_op *kg_ops_lookup(uint32_t operation)
{
    if (operation > KG_OP_MAX || kg_ops[operation].execute == NULL) {
        return NULL;
    }
    return &kg_ops[operation];
}

/*
 * Find the UID an object-targeting item names: its payload's leading Unique
 * Identifier, or else the ID Placeholder left by the previous item (KMIP 1.4
 * section 6.x). The payload reader is not advanced.
 */
static kg_result kg_dispatch_target_uid(const struct kg_ttlv_reader *payload, const struct kg_op_ctx *ctx,
                                        char out[KG_UID_LEN + 1])
{
    struct kg_ttlv_reader peek = *payload;
    struct kg_ttlv_item it;
    bool present = false;

    KG_GUARD(kg_ttlv_read_optional(&peek, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it, &present));
    return kg_op_uid_or_placeholder(ctx, &it, present, out);
}

uint64_t kg_dispatch_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * limits.max_live_objects: counting a group's live objects, deciding, and
 * creating the new one must be one step, or concurrent Creates of one group
 * all count the same number and all pass. Taken only for the operations that
 * make objects (kg_dispatch_makes_objects) by groups that have the limit, from the count until the item has run (its
 * object committed or not made); one lock for all such groups keeps it
 * simple, and only limited groups' Creates wait on each other.
 */
static pthread_mutex_t kg_dispatch_live_lock = PTHREAD_MUTEX_INITIALIZER;

static bool kg_dispatch_makes_objects(uint32_t operation)
{
    return operation == KG_OP_CREATE || operation == KG_OP_REGISTER || operation == KG_OP_CREATE_KEY_PAIR ||
           operation == KG_OP_REKEY || operation == KG_OP_REKEY_KEY_PAIR;
}

/* Turn a denial into the KMIP error the client sees. `hidden`: the target
 * object is out of the group's scope, so whatever rule refused, the client
 * learns no more than it would of a UID that does not exist. */
static kg_result kg_dispatch_deny(const struct kg_policy_decision *d, bool hidden)
{
    switch (hidden ? KG_POLICY_DENY_SCOPE : d->verdict) {
    case KG_POLICY_DENY_SCOPE:
        /* Out of scope is indistinguishable from absent. */
        kg_error_set(KG_ERR_NOT_FOUND, __FILE__, __LINE__);
        break;
    case KG_POLICY_DENY_CREDENTIAL:
        kg_error_set(KG_ERR_AUTHENTICATION, __FILE__, __LINE__);
        kg_error_detail("%s", kg_policy_verdict_text(d->verdict));
        break;
    default:
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("%s", kg_policy_verdict_text(d->verdict));
        break;
    }
    return KG_RESULT_ERROR;
}

/* A policy request for `operation` with the message's credential, if any. */
static struct kg_policy_request kg_dispatch_policy_request(const struct kg_op_ctx *ctx, uint32_t operation)
{
    struct kg_policy_request req = { .operation = operation };
    const struct kg_request *msg = ctx->request;

    if (msg->has_credential) {
        req.has_credential = true;
        req.credential_kind = msg->device_credential ? KG_POLICY_CRED_DEVICE : KG_POLICY_CRED_USERNAME;
        req.username = msg->username;
        req.username_len = msg->username_len;
        req.password = msg->password;
        req.password_len = msg->password_len;
    }
    return req;
}

/*
 * Everything policy decides on, gathered before any handler runs: the
 * identity selects a group (an unknown OU learns nothing about any object),
 * the target object is resolved, the operation's own facts are read (what a
 * Create asks for, the form a Get would answer in), and then one pure
 * decision, and the group's request rate, settle it.
 */
static kg_result kg_dispatch_authorize_in(struct kg_op_ctx *ctx, const struct kg_op *op, uint32_t operation,
                                          struct kg_ttlv_reader *payload, struct kg_policy_decision *d,
                                          bool *live_locked, bool *reading)
{
    struct kg_policy_request req = kg_dispatch_policy_request(ctx, operation);
    char uid[KG_UID_LEN + 1];
    bool hidden = false;

    /* The group a credential may act as counts from the start: scope and
     * every fact below are judged for the group that will decide. */
    *d = kg_policy_match_request(ctx->policy, ctx->identity, &req);
    if (d->verdict != KG_POLICY_ALLOW) {
        return kg_dispatch_deny(d, false);
    }
    ctx->group = d->group;
    if (op->targets_object) {
        KG_GUARD(kg_dispatch_target_uid(payload, ctx, uid));
        memcpy(ctx->audit_uid, uid, sizeof(uid));
        KG_GUARD(kg_store_get_object(ctx->store, uid, &ctx->object));
        ctx->has_object = true;
        req.object_owner = ctx->object.owner_group;
        req.object_type = ctx->object.object_type;
        /* Out of scope is denied whatever else the request says (scope is
         * checked right after operations), and it must answer exactly as an
         * absent UID: its facts are not read, as a malformed payload would
         * otherwise answer differently, and every denial is Item Not Found. */
        hidden = !kg_policy_in_scope(d->group, ctx->object.owner_group);
    }
    if (op->facts != NULL && !hidden) {
        KG_GUARD(op->facts(ctx, *payload, &req));
    }
    /* A Locate may make keys too: a group's fresh_pool (kg_fresh_pool.c). */
    if ((kg_dispatch_makes_objects(operation) || (operation == KG_OP_LOCATE && d->group->fresh_pool.present)) &&
        d->group->has_max_live_objects) {
        /* Released by kg_dispatch_item once the item has run; a batch with
         * Undo holds it for all its items (kg_undo_begin). */
        if (!ctx->undo_batch) {
            pthread_mutex_lock(&kg_dispatch_live_lock);
            *live_locked = true;
        }
        /* Counted after the lock, outside the snapshot taken before it: a
         * change committed by the last holder must be counted. */
        kg_store_read_end(ctx->store, *reading);
        *reading = false;
        KG_GUARD(kg_store_count_live(ctx->store, d->group->name, &req.group_live_objects));
    }
    *d = kg_policy_decide_request(ctx->policy, ctx->identity, &req);
    if (d->verdict == KG_POLICY_ALLOW) {
        /* The rate limit only ever denies: an allow keeps the rule that
         * granted it (groups.<g>.operations or .export) for the audit. */
        struct kg_policy_decision rate = kg_policy_rate_check(ctx->policy, d->group, kg_dispatch_now_ms());

        if (rate.verdict != KG_POLICY_ALLOW) {
            *d = rate;
        }
    }
    if (d->verdict != KG_POLICY_ALLOW || hidden) {
        if (d->verdict == KG_POLICY_ALLOW) {
            /* Cannot happen (policy checks scope); fail closed if it does. */
            d->verdict = KG_POLICY_DENY_SCOPE;
        }
        ctx->has_object = false;
        return kg_dispatch_deny(d, hidden);
    }
    ctx->group = d->group;
    /* Only after policy: an archived object out of scope stays Item Not
     * Found, and a denied caller learns nothing of its archival. */
    if (ctx->has_object && !op->archived_ok) {
        KG_GUARD(kg_op_refuse_archived(ctx));
    }
    if (ctx->has_object) {
        KG_GUARD(kg_op_lifecycle_follow_dates(ctx));
    }
    return KG_RESULT_OK;
}

/*
 * The reads above (the object, the operation's facts, archival, lifecycle
 * dates) share one read snapshot: one set of SQLite's WAL read locks for a
 * Get instead of one per statement. A state change that follow_dates
 * commits goes through the writer; the handler reads after the snapshot.
 */
static kg_result kg_dispatch_authorize(struct kg_op_ctx *ctx, const struct kg_op *op, uint32_t operation,
                                       struct kg_ttlv_reader *payload, struct kg_policy_decision *d,
                                       bool *live_locked)
{
    bool reading = false;
    kg_result rc;

    KG_GUARD(kg_store_read_begin(ctx->store, &reading));
    rc = kg_dispatch_authorize_in(ctx, op, operation, payload, d, live_locked, &reading);
    kg_store_read_end(ctx->store, reading);
    return rc;
}

/*
 * Run a KMIP 2.x item: the handler answers in the 1.4 form into a scratch
 * writer, locked like `w` (a Get's answer holds key bytes), which
 * kg_kmip2_response rewrites into `w`. The scratch is wiped on every path.
 */
static kg_result kg_dispatch_execute_v2(struct kg_op_ctx *ctx, const struct kg_op *op, uint32_t operation,
                                        struct kg_ttlv_reader *payload, struct kg_ttlv_writer *w)
{
    struct kg_ttlv_writer v1;
    kg_result rc;

    KG_GUARD(kg_ttlv_writer_init(&v1, w->max, w->secret != NULL));
    rc = op->execute(ctx, payload, &v1);
    if (kg_ok(rc)) {
        rc = kg_kmip2_response(operation, v1.buf, v1.len, w);
    }
    kg_ttlv_writer_cleanup(&v1);
    return rc;
}

static kg_result kg_dispatch_run(struct kg_op_ctx *ctx, const struct kg_op *op, const struct kg_request_item *item,
                                 struct kg_ttlv_reader *payload, struct kg_ttlv_writer *w)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OPERATION, item->operation));
    if (item->has_batch_id) {
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_UNIQUE_BATCH_ITEM_ID, item->batch_id, item->batch_id_len));
    }
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_RESULT_STATUS, KG_STATUS_SUCCESS));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_RESPONSE_PAYLOAD));
    if (ctx->version.major >= 2) {
        KG_GUARD(kg_dispatch_execute_v2(ctx, op, item->operation, payload, w));
    } else {
        KG_GUARD(op->execute(ctx, payload, w));
    }
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

/*
 * A KMIP 2.x request payload in the 1.4 form (kg_kmip2_request), written to
 * `v1` (the caller's, initialised here in locked memory, wiped and freed by
 * the caller's kg_ttlv_writer_cleanup) and read
 * again by *payload over it with `budget`. 1.x payloads are left alone.
 */
static kg_result kg_dispatch_payload_v1(struct kg_op_ctx *ctx, uint32_t operation, struct kg_ttlv_reader *payload,
                                        struct kg_ttlv_writer *v1, struct kg_ttlv_budget *budget)
{
    struct kg_ttlv_limits limits = kg_ttlv_default_limits;

    if (ctx->version.major < 2) {
        return KG_RESULT_OK;
    }
    /* Locked, like the request it is rewritten from: a Register carries
     * plaintext key bytes, which are copied here verbatim. */
    KG_GUARD(kg_ttlv_writer_init(v1, 2 * kg_ttlv_default_limits.max_message_len, true));
    KG_GUARD(kg_kmip2_request(operation, payload, v1));
    /* The rewrite names attributes in text: allow it the growth. */
    limits.max_message_len = v1->len;
    limits.max_items = 2 * kg_ttlv_default_limits.max_items;
    kg_ttlv_budget_init(budget, &limits);
    KG_GUARD(kg_ttlv_reader_init(payload, v1->buf, v1->len, budget));
    payload->depth = 3; /* Request Message > Batch Item > Request Payload */
    return KG_RESULT_OK;
}

/* Run one batch item into `w`; returns whether it succeeded. */
static bool kg_dispatch_item_run(struct kg_op_ctx *ctx, const struct kg_request_item *item, struct kg_ttlv_writer *w)
{
    const uint64_t started = kg_metrics_now_ns();
    const struct kg_op *op = kg_ops_lookup(item->operation);
    struct kg_ttlv_reader payload;
    struct kg_ttlv_writer payload_v1 = { 0 };
    struct kg_ttlv_budget budget_v1;
    struct kg_item_result res = { 0 };
    /* No rule decided yet: if the item fails before the decision (unknown
     * operation, malformed payload, unknown UID), the audit says so. */
    struct kg_policy_decision d = { .verdict = KG_POLICY_DENY_OPERATION, .group = NULL, .rule = NULL };
    const char *decision = "not reached";
    uint32_t mark = w->len, depth = w->depth;
    char opname[48];
    kg_result rc;

    ctx->has_object = false;
    ctx->has_get_facts = false;
    ctx->group = NULL;
    ctx->audit_uid[0] = '\0';
    ctx->audit_note = NULL;
    kg_error_clear();

    if (op == NULL) {
        decision = "deny: operation not supported";
        kg_error_set(KG_ERR_UNSUPPORTED_OP, __FILE__, __LINE__);
        kg_error_detail("operation 0x%02X is not supported", (unsigned)item->operation);
        rc = KG_RESULT_ERROR;
    } else if (item->critical_extension) {
        /* KMIP 1.4 section 11.1: a critical extension not understood. */
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("critical Message Extension not understood");
        rc = KG_RESULT_ERROR;
    } else if (kg_failed(rc = kg_msg_payload_reader(ctx->request, item, &payload)) ||
               kg_failed(rc = kg_dispatch_payload_v1(ctx, item->operation, &payload, &payload_v1, &budget_v1))) {
        /* rc says why */
    } else {
        bool live_locked = false;

        rc = kg_dispatch_authorize(ctx, op, item->operation, &payload, &d, &live_locked);
        if (d.verdict != KG_POLICY_ALLOW) {
            kg_metrics_policy_denied(item->operation);
        }
        if (d.rule != NULL) {
            decision = kg_policy_verdict_text(d.verdict);
        }
        if (kg_ok(rc)) {
            rc = kg_dispatch_run(ctx, op, item, &payload, w);
        }
        if (live_locked) {
            pthread_mutex_unlock(&kg_dispatch_live_lock);
        }
    }
    if (kg_ok(rc) && ctx->request->max_response_size != 0 &&
        w->len - mark > ctx->request->max_response_size) {
        kg_error_set(KG_ERR_WRITER_FULL, __FILE__, __LINE__);
        kg_error_detail("response exceeds the Maximum Response Size of %u bytes",
                        ctx->request->max_response_size);
        rc = KG_RESULT_ERROR;
    }
    if (kg_failed(rc)) {
        if (kg_error_category_of(kg_errno()) == KG_ERR_T_INTERNAL) {
            kg_log("error", "%s failed: %s at %s: %s", op ? kg_policy_operation_name(item->operation) : "operation", kg_error_name(kg_errno()),
                   kg_error_debug(), kg_error_text());
        }
        kg_ttlv_writer_rewind(w, mark, depth);
        kg_msg_result_from_error(ctx->version, &res);
        if (kg_failed(kg_msg_write_failed_item(w, item->operation, item->has_batch_id ? item->batch_id : NULL,
                                               item->batch_id_len, &res))) {
            kg_ttlv_writer_rewind(w, mark, depth);
        }
    }

    if (op != NULL) {
        snprintf(opname, sizeof(opname), "%s", kg_policy_operation_name(item->operation));
    } else {
        snprintf(opname, sizeof(opname), "unknown(0x%02X)", (unsigned)item->operation);
    }
    struct kg_audit_record rec = {
        .time = ctx->now,
        .identity = ctx->identity,
        .group = ctx->group ? ctx->group->name : NULL,
        .operation = opname,
        .uid = ctx->audit_uid,
        .decision = decision,
        .rule = d.rule,
        .rule_line = d.line,
        .status = kg_ok(rc) ? KG_STATUS_SUCCESS : KG_STATUS_FAILED,
        .reason = kg_ok(rc) ? 0 : res.reason,
        .note = ctx->audit_note,
    };
    kg_audit_write(ctx->gw->audit, &rec);
    kg_metrics_request_done(item->operation, kg_ok(rc), res.reason, started);

    /* Only operations that produce a UID (Create, Register) set the ID
     * Placeholder (KMIP 1.4 section 4); one that merely targets an object
     * must not redirect the items after it. */
    if (kg_ok(rc) && op != NULL && !op->targets_object && ctx->audit_uid[0] != '\0') {
        memcpy(ctx->id_placeholder, ctx->audit_uid, sizeof(ctx->id_placeholder));
        ctx->id_placeholder_found_nothing = false;
    }
    kg_ttlv_writer_cleanup(&payload_v1);
    return kg_ok(rc);
}

/* ---- Asynchronous operations (KMIP 1.4 sections 4.27, 4.28, 6.7) ---------- */

/*
 * The operations an Asynchronous Indicator defers: those whose request
 * carries no secret (a UID, attributes to match, a revocation reason), as
 * the request's bytes wait in the table (kg_async.h). Everything else is
 * answered at once, which section 6.7 allows a server: Register and the
 * cryptographic operations carry key bytes or data; Get, Create and the
 * other operations that make or answer with key material are kept
 * synchronous too, so the table never has to hold or guard anything
 * secret, nor an object that is half made.
 */
static bool kg_dispatch_deferrable(uint32_t operation)
{
    switch (operation) {
    case KG_OP_LOCATE:
    case KG_OP_CHECK:
    case KG_OP_GET_ATTRIBUTES:
    case KG_OP_GET_ATTRIBUTE_LIST:
    case KG_OP_ACTIVATE:
    case KG_OP_REVOKE:
    case KG_OP_DESTROY:
    case KG_OP_ARCHIVE:
    case KG_OP_RECOVER:
        return true;
    default:
        return false;
    }
}

/*
 * Whether `item` may wait for a Poll: the client asked (Asynchronous
 * Indicator), the message has only this item (a deferred item would lose
 * its batch's ID Placeholder, order and Undo), it came on a connection, and
 * its caller may Poll (policy knows the caller, with this credential, and
 * grants Poll); else it would wait for nothing. The deferred operation
 * itself is decided when polled, by the ordinary path.
 */
static bool kg_dispatch_may_defer(const struct kg_op_ctx *ctx, const struct kg_request_item *item,
                                  struct kg_policy_decision *d)
{
    struct kg_policy_request req = kg_dispatch_policy_request(ctx, KG_OP_POLL);

    if (!ctx->request->async_indicator || ctx->request->batch_count != 1 || ctx->conn_id == 0 ||
        !kg_dispatch_deferrable(item->operation) || item->critical_extension) {
        return false;
    }
    *d = kg_policy_decide_request(ctx->policy, ctx->identity, &req);
    return d->verdict == KG_POLICY_ALLOW;
}

/* The Operation Pending answer of a deferred item (KMIP 1.4 section 7.1). */
static kg_result kg_dispatch_write_pending(const struct kg_request_item *item, const uint8_t *id,
                                           struct kg_ttlv_writer *w)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OPERATION, item->operation));
    if (item->has_batch_id) {
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_UNIQUE_BATCH_ITEM_ID, item->batch_id, item->batch_id_len));
    }
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_RESULT_STATUS, KG_STATUS_PENDING));
    KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_ASYNCHRONOUS_CORRELATION_VALUE, id, KG_ASYNC_ID_LEN));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

/* The Unique Identifier a deferred item names, for its audit record; empty
 * when it names none (it would use the ID Placeholder) or cannot be read. */
static void kg_dispatch_deferred_uid(struct kg_op_ctx *ctx, const struct kg_request_item *item,
                                     char out[KG_UID_LEN + 1])
{
    struct kg_ttlv_reader payload;
    struct kg_ttlv_item it;
    const char *text;
    uint32_t len;
    bool present = false;

    out[0] = '\0';
    if (kg_ok(kg_msg_payload_reader(ctx->request, item, &payload)) &&
        kg_ok(kg_ttlv_read_optional(&payload, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it, &present)) &&
        present && kg_ok(kg_ttlv_get_text(&it, &text, &len)) && len <= KG_UID_LEN) {
        memcpy(out, text, len);
        out[len] = '\0';
    }
    kg_error_clear();
}

/*
 * Defer `item` if it may be (kg_dispatch_may_defer) and the table has room:
 * answer Operation Pending with a fresh correlation value and audit the
 * deferral. False when it must run now (the table full included: then the
 * client simply gets its answer at once).
 */
static bool kg_dispatch_defer(struct kg_op_ctx *ctx, const struct kg_request_item *item, struct kg_ttlv_writer *w)
{
    struct kg_async_who who = kg_op_async_who(ctx);
    struct kg_policy_decision d = { 0 };
    uint8_t id[KG_ASYNC_ID_LEN];
    char uid[KG_UID_LEN + 1];
    uint32_t mark = w->len, depth = w->depth;
    bool queued = false;

    if (!kg_dispatch_may_defer(ctx, item, &d)) {
        return false;
    }
    if (kg_failed(kg_async_add(&ctx->gw->async, &who, item->operation, item->has_payload ? item->payload.value : NULL,
                               item->has_payload ? item->payload.len : 0, kg_dispatch_now_ms(), id, &queued)) ||
        !queued) {
        kg_error_clear();
        return false;
    }
    if (kg_failed(kg_dispatch_write_pending(item, id, w))) {
        /* No room to say so: forget it and answer the item at once. */
        struct kg_async_entry gone;

        kg_ttlv_writer_rewind(w, mark, depth);
        if (kg_ok(kg_async_take(&ctx->gw->async, &who, id, KG_ASYNC_ID_LEN, kg_dispatch_now_ms(), &gone))) {
            kg_async_entry_clear(&gone);
        }
        kg_error_clear();
        return false;
    }
    kg_dispatch_deferred_uid(ctx, item, uid);
    struct kg_audit_record rec = {
        .time = ctx->now,
        .identity = ctx->identity,
        .group = d.group != NULL ? d.group->name : NULL,
        .operation = kg_policy_operation_name(item->operation),
        .uid = uid,
        .decision = "deferred",
        .status = KG_STATUS_PENDING,
        .note = "asynchronous: runs when polled",
    };
    kg_audit_write(ctx->gw->audit, &rec);
    return true;
}

/*
 * Answer a Poll that found its item: the item runs now, by the ordinary
 * path, and its answer (its own Operation and payload, section 4.28)
 * replaces the Poll's, under the Poll's Unique Batch Item ID.
 */
static bool kg_dispatch_polled(struct kg_op_ctx *ctx, const struct kg_request_item *poll, struct kg_ttlv_writer *w)
{
    struct kg_async_entry e = ctx->polled;
    struct kg_request_item inner = {
        .operation = e.operation,
        .has_batch_id = poll->has_batch_id,
        .batch_id = poll->batch_id,
        .batch_id_len = poll->batch_id_len,
        .has_payload = true,
        .payload = { .tag = KG_TAG_REQUEST_PAYLOAD, .type = KG_TTLV_STRUCTURE, .len = e.payload_len,
                     .value = e.payload },
    };
    bool ok;

    ctx->has_polled = false;
    memset(&ctx->polled, 0, sizeof(ctx->polled));
    ok = kg_dispatch_item_run(ctx, &inner, w);
    kg_async_entry_clear(&e);
    return ok;
}

/* Process one batch item into `w`; returns whether it succeeded. */
static bool kg_dispatch_item(struct kg_op_ctx *ctx, const struct kg_request_item *item, struct kg_ttlv_writer *w)
{
    uint32_t mark = w->len, depth = w->depth;
    bool ok;

    if (kg_dispatch_defer(ctx, item, w)) {
        return true;
    }
    ctx->has_polled = false;
    ok = kg_dispatch_item_run(ctx, item, w);
    if (ctx->has_polled) {
        /* The Poll succeeded (and was audited): its answer is the item's. */
        kg_ttlv_writer_rewind(w, mark, depth);
        ok = kg_dispatch_polled(ctx, item, w);
    }
    return ok;
}

/* ---- Batch Error Continuation Option Undo --------------------------------- */

/* Items a batch with Undo may hold: while it runs it holds the writer (and
 * the live-object lock), and every other write waits for it. */
#define KG_UNDO_MAX_ITEMS 32u

/* What the undo of a batch needs to know of one answered item. */
struct kg_undo_item {
    uint32_t start, end; /* its bytes in the items writer */
    bool ok;
    char uid[KG_UID_LEN + 1];
};

/* Turn the Result Status of the answered item at buf[start, end) (our own
 * encoding: Operation, Unique Batch Item ID?, Result Status, ...) into
 * Operation Undone; its payload stays, as KMIP 1.4 section 6.7 has it. */
static void kg_undo_mark(uint8_t *buf, uint32_t start, uint32_t end)
{
    for (uint32_t at = start + 8; at + 8 <= end;) {
        uint32_t tag = (uint32_t)buf[at] << 16 | (uint32_t)buf[at + 1] << 8 | buf[at + 2];
        uint32_t len = (uint32_t)buf[at + 4] << 24 | (uint32_t)buf[at + 5] << 16 | (uint32_t)buf[at + 6] << 8 |
                       buf[at + 7];

        if (tag == KG_TAG_RESULT_STATUS && buf[at + 3] == KG_TTLV_ENUMERATION && len == 4 && at + 12 <= end) {
            buf[at + 8] = 0;
            buf[at + 9] = 0;
            buf[at + 10] = 0;
            buf[at + 11] = (uint8_t)KG_STATUS_UNDONE;
            return;
        }
        at += 8 + ((len + 7u) & ~7u);
    }
}

static void kg_undo_audit(struct kg_op_ctx *ctx, const struct kg_request_item *item, const char *uid, uint32_t status,
                          const char *note)
{
    struct kg_audit_record rec = {
        .time = ctx->now,
        .identity = ctx->identity,
        .group = ctx->group ? ctx->group->name : NULL,
        .operation = kg_policy_operation_name(item->operation),
        .uid = uid,
        .decision = "batch undo",
        .status = status,
        .reason = status == KG_STATUS_FAILED ? KG_REASON_GENERAL_FAILURE : 0,
        .note = note,
    };
    kg_audit_write(ctx->gw->audit, &rec);
}

/* None of the batch happened (its commit failed, or it could not start):
 * every item is answered with the current error, and audited (again). `done`
 * may be NULL when no item ran. */
static kg_result kg_undo_all_failed(struct kg_op_ctx *ctx, const struct kg_undo_item *done, uint32_t count,
                                    struct kg_ttlv_writer *items, uint32_t *written, const char *note)
{
    struct kg_item_result res = { 0 };

    kg_msg_result_from_error(ctx->version, &res);
    kg_ttlv_writer_rewind(items, 0, 0);
    for (*written = 0; *written < count; (*written)++) {
        const struct kg_request_item *item = &ctx->request->items[*written];

        KG_GUARD(kg_msg_write_failed_item(items, item->operation, item->has_batch_id ? item->batch_id : NULL,
                                          item->batch_id_len, &res));
        kg_undo_audit(ctx, item, done != NULL ? done[*written].uid : "", KG_STATUS_FAILED, note);
    }
    return KG_RESULT_OK;
}

/*
 * Run a batch with Batch Error Continuation Option Undo: its items are one
 * change (kg_change_batch_begin), read through the writer so each sees the
 * ones before it, and answered only once it is durable. When an item fails,
 * the rest are not run and those before it are rolled back and answered
 * Operation Undone. Items whose HSM effect cannot be rolled back (keys
 * resident in the HSM) refuse to run in such a batch (kg_op_check_undoable).
 * The live-object lock is taken first, for the whole batch, so that locks
 * are always taken in the same order (live, then the committer).
 */
static kg_result kg_undo_run(struct kg_op_ctx *ctx, struct kg_ttlv_writer *items, uint32_t *written)
{
    const uint32_t count = ctx->request->batch_count;
    struct kg_undo_item *done = NULL;
    struct kg_store *reader = ctx->store, *writer = NULL;
    bool failed = false;
    kg_result rc = KG_RESULT_OK;

    if (count > KG_UNDO_MAX_ITEMS) {
        /* Every other write waits while a batch with Undo runs. */
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("a batch with Undo holds at most %u items", KG_UNDO_MAX_ITEMS);
        return kg_undo_all_failed(ctx, NULL, count, items, written, "batch with Undo too long");
    }
    done = calloc(count, sizeof(*done));
    if (done == NULL) {
        kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
        return kg_undo_all_failed(ctx, NULL, count, items, written, "batch with Undo not started");
    }
    pthread_mutex_lock(&kg_dispatch_live_lock);
    if (kg_failed(kg_change_batch_begin(ctx->gw->committer, &writer))) {
        pthread_mutex_unlock(&kg_dispatch_live_lock);
        free(done);
        return kg_undo_all_failed(ctx, NULL, count, items, written, "batch with Undo not started");
    }
    ctx->store = writer;
    ctx->undo_batch = true;
    for (uint32_t i = 0; i < count && !failed; i++) {
        done[i].start = items->len;
        done[i].ok = kg_dispatch_item(ctx, &ctx->request->items[i], items);
        done[i].end = items->len;
        memcpy(done[i].uid, ctx->audit_uid, sizeof(done[i].uid));
        if (done[i].end == done[i].start) {
            failed = true; /* not even its failure fitted (see the plain loop) */
            break;
        }
        (*written)++;
        failed = !done[i].ok;
    }
    ctx->undo_batch = false;
    ctx->store = reader;
    rc = kg_change_batch_end(ctx->gw->committer, failed ? KG_RESULT_ERROR : KG_RESULT_OK);
    pthread_mutex_unlock(&kg_dispatch_live_lock);
    if (failed) {
        for (uint32_t i = 0; i < *written; i++) {
            if (done[i].ok) {
                kg_undo_mark(items->buf, done[i].start, done[i].end);
                kg_undo_audit(ctx, &ctx->request->items[i], done[i].uid, KG_STATUS_UNDONE,
                              "undone: a later item of its batch failed");
            }
        }
        rc = KG_RESULT_OK;
    } else if (kg_failed(rc)) {
        rc = kg_undo_all_failed(ctx, done, *written, items, written, "the batch's commit failed");
    }
    free(done);
    return rc;
}

struct kg_policy_ref {
    struct kg_policy *policy;
    unsigned refs; /* the gateway's own reference, plus one per request */
};

static struct kg_policy_ref *kg_gateway_policy_acquire(struct kg_gateway *gw);
static void kg_gateway_policy_release(struct kg_gateway *gw, struct kg_policy_ref *ref);

kg_result kg_gateway_process(struct kg_gateway *gw, struct kg_store *store, const struct kg_identity *identity,
                             uint64_t conn_id, const uint8_t *in, uint32_t len, struct kg_ttlv_writer *out, bool *close)
{
    struct kg_request_partial partial;
    struct kg_request *req = NULL;
    struct kg_ttlv_writer items = { 0 };
    struct kg_op_ctx ctx;
    struct kg_policy_ref *ref;
    uint32_t written = 0;
    int64_t now = (int64_t)time(NULL);
    kg_result rc = KG_RESULT_OK;

    *close = false;
    req = calloc(1, sizeof(*req));
    KG_ENSURE(req != NULL, KG_ERR_NOMEM);

    if (kg_failed(kg_msg_decode_request(in, len, &gw->limits, gw->config->max_batch_items, req, &partial))) {
        *close = kg_msg_error_closes(kg_errno());
        kg_log("warn", "undecodable request from CN=%s: %s (%s)", identity->cn, kg_error_name(kg_errno()),
               kg_error_text());
        rc = kg_msg_write_decode_failure(out, &partial, now);
        goto out;
    }

    /* The items writer holds key bytes when a Get succeeds: locked memory.
     * It leaves room for the response header, so items that fit always
     * make a complete response. */
    KG_GOTO_ENSURE(rc, out->max > KG_MSG_RESPONSE_HEADER_LEN, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_ttlv_writer_init(&items, out->max - KG_MSG_RESPONSE_HEADER_LEN, true));
    memset(&ctx, 0, sizeof(ctx));
    ctx.gw = gw;
    ctx.store = store;
    ctx.identity = identity;
    ctx.request = req;
    ctx.version = req->version;
    ctx.now = now;
    ctx.conn_id = conn_id;

    ref = kg_gateway_policy_acquire(gw);
    ctx.policy = ref->policy;
    if (req->batch_error_continuation == KG_BATCH_UNDO && req->batch_count > 1) {
        rc = kg_undo_run(&ctx, &items, &written);
    } else {
        for (uint32_t i = 0; i < req->batch_count; i++) {
            uint32_t before = items.len;
            bool ok = kg_dispatch_item(&ctx, &req->items[i], &items);
            if (items.len == before) {
                /* Not even its failure fitted: Batch Count must match the
                 * items sent, and nothing after it could be answered either. */
                break;
            }
            written++;
            if (!ok && req->batch_error_continuation != KG_BATCH_CONTINUE) {
                break;
            }
        }
    }
    kg_gateway_policy_release(gw, ref);
    KG_GOTO_GUARD(rc, rc);

    rc = kg_msg_write_response(out, req->version, now, written, items.buf, items.len);
out:
    kg_ttlv_writer_cleanup(&items);
    /* The decoded request borrows from `in`; nothing secret lives in it, but
     * it points at a password, so it is cleared before it is freed. */
    OPENSSL_cleanse(req, sizeof(*req));
    free(req);
    return rc;
}

static struct kg_policy_ref *kg_gateway_policy_acquire(struct kg_gateway *gw)
{
    struct kg_policy_ref *ref;

    pthread_mutex_lock(&gw->policy_lock);
    ref = gw->policy;
    ref->refs++;
    pthread_mutex_unlock(&gw->policy_lock);
    return ref;
}

static void kg_gateway_policy_release(struct kg_gateway *gw, struct kg_policy_ref *ref)
{
    bool last;

    pthread_mutex_lock(&gw->policy_lock);
    last = --ref->refs == 0;
    pthread_mutex_unlock(&gw->policy_lock);
    if (last) {
        kg_policy_free(ref->policy);
        free(ref);
    }
}

kg_result kg_gateway_init(struct kg_gateway *gw, struct kg_policy *policy)
{
    const struct kg_async_limits async = {
        .max_total = gw->config->async_max_pending,
        .max_per_conn = gw->config->async_per_connection,
        .lifetime_ms = gw->config->async_lifetime_ms,
    };

    if (kg_failed(kg_async_init(&gw->async, &async))) {
        kg_policy_free(policy);
        return KG_RESULT_ERROR;
    }
    gw->policy = calloc(1, sizeof(*gw->policy));
    if (gw->policy == NULL) {
        kg_async_cleanup(&gw->async);
        kg_policy_free(policy);
        KG_BAIL(KG_ERR_NOMEM);
    }
    gw->policy->policy = policy;
    gw->policy->refs = 1;
    pthread_mutex_init(&gw->policy_lock, NULL);
    return KG_RESULT_OK;
}

void kg_gateway_cleanup(struct kg_gateway *gw)
{
    if (gw->policy == NULL) {
        return;
    }
    kg_gateway_policy_release(gw, gw->policy);
    gw->policy = NULL;
    pthread_mutex_destroy(&gw->policy_lock);
    kg_async_cleanup(&gw->async);
}

void kg_gateway_connection_closed(struct kg_gateway *gw, uint64_t conn_id)
{
    kg_async_drop_conn(&gw->async, conn_id);
}

void kg_gateway_swap_policy(struct kg_gateway *gw, struct kg_policy *policy)
{
    struct kg_policy_ref *fresh = calloc(1, sizeof(*fresh)), *old;

    if (fresh == NULL) {
        kg_log("error", "policy reload: out of memory; the previous policy stays in force");
        kg_policy_free(policy);
        return;
    }
    fresh->policy = policy;
    fresh->refs = 1;
    pthread_mutex_lock(&gw->policy_lock);
    old = gw->policy;
    gw->policy = fresh;
    pthread_mutex_unlock(&gw->policy_lock);
    kg_gateway_policy_release(gw, old);
}
