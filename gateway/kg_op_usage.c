/*
 * kg_op_usage.c - may a client use this object, and how much: Check,
 * Obtain Lease and Get Usage Allocation (KMIP 1.4 sections 4.10, 4.17 and
 * 4.18), with the Usage Limits attribute (3.21).
 *
 * None of them touches key material. Policy (groups.<g>.operations) has
 * decided by the time a handler runs; what is judged here is the object:
 * its usage mask, its state and dates, and its Usage Limits.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"

/*
 * The Lease Time every Obtain Lease grants. kmipgw keeps no leases: a client
 * may use a key as long as its state and dates allow, and every use is
 * checked then. 4.17 defines zero as exactly that ("no lease interval is
 * effective, and the client MAY use the object without any lease time
 * limit"), so a Lease Time asked about in a Check is always grantable.
 */
#define KG_USAGE_LEASE_TIME 0u

/* One stored attribute value, copied out of the store callback. */
struct kg_usage_attr {
    bool found;
    int32_t index;
    uint32_t len;
    uint8_t value[KG_ATTR_VALUE_MAX]; /* TTLV Attribute Value item */
};

static bool kg_usage_copy_fn(void *arg, const struct kg_attr *a)
{
    struct kg_usage_attr *u = arg;

    u->found = true;
    u->index = a->index;
    u->len = a->value_len;
    memcpy(u->value, a->value, a->value_len);
    return false; /* the first instance is enough */
}

/* The first instance of attribute `name` of `uid` into *out (caller storage). */
static kg_result kg_usage_load(struct kg_store *s, const char *uid, const char *name, struct kg_usage_attr *out)
{
    out->found = false;
    KG_GUARD(kg_store_each_attr(s, uid, name, kg_usage_copy_fn, out));
    return KG_RESULT_OK;
}

/* A row this code cannot read was not written by kmipgw: the store's fault,
 * not the client's (a TTLV error here must not close the connection). */
static kg_result kg_usage_bad_row(const char *uid, const char *name)
{
    kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
    kg_error_detail("stored %s of %s is unreadable", name, uid);
    return KG_RESULT_ERROR;
}

/* Usage Limits (3.21): Total, Count (what is left) and Unit. */
struct kg_usage_limits {
    int64_t total;
    bool has_count;
    int64_t count;
    bool has_unit; /* required by 3.21, but kept as the client gave it */
    uint32_t unit;
};

static kg_result kg_usage_limits_parse(const struct kg_usage_attr *a, struct kg_usage_limits *out)
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item it, f;
    bool has_total = false;

    memset(out, 0, sizeof(*out));
    kg_ttlv_budget_init(&b, NULL);
    KG_GUARD(kg_ttlv_reader_init(&r, a->value, a->len, &b));
    KG_GUARD(kg_ttlv_read(&r, &it));
    KG_GUARD(kg_ttlv_child(&r, &it, &c));
    /* Any order: the fields are told apart by tag. */
    while (!kg_ttlv_reader_done(&c)) {
        KG_GUARD(kg_ttlv_read(&c, &f));
        if (f.tag == KG_TAG_USAGE_LIMITS_TOTAL) {
            KG_GUARD(kg_ttlv_get_long(&f, &out->total));
            has_total = true;
        } else if (f.tag == KG_TAG_USAGE_LIMITS_COUNT) {
            KG_GUARD(kg_ttlv_get_long(&f, &out->count));
            out->has_count = true;
        } else if (f.tag == KG_TAG_USAGE_LIMITS_UNIT) {
            KG_GUARD(kg_ttlv_get_enum(&f, &out->unit));
            out->has_unit = true;
        } else {
            KG_BAIL(KG_ERR_STORE);
        }
    }
    KG_ENSURE(has_total, KG_ERR_STORE);
    return KG_RESULT_OK;
}

/* The Usage Limits of `uid`, if it has them; *remaining is the Count, or
 * the Total while no allocation was made and nobody set the Count. */
static kg_result kg_usage_limits_load(struct kg_store *s, const char *uid, struct kg_usage_attr *row,
                                      struct kg_usage_limits *lim, int64_t *remaining)
{
    KG_GUARD(kg_usage_load(s, uid, "Usage Limits", row));
    if (!row->found) {
        return KG_RESULT_OK;
    }
    if (kg_failed(kg_usage_limits_parse(row, lim))) {
        return kg_usage_bad_row(uid, "Usage Limits");
    }
    *remaining = lim->has_count ? lim->count : lim->total;
    return KG_RESULT_OK;
}

/* Objects that can apply cryptographic protection (3.21, 4.18): keys whose
 * usage mask lets them encrypt, wrap, MAC or sign. */
static bool kg_usage_can_protect(const struct kg_object *obj)
{
    int32_t protect = (int32_t)KG_USAGE_ENCRYPT | (int32_t)KG_USAGE_WRAP_KEY | (int32_t)KG_USAGE_MAC_GENERATE;

    if (obj->object_type == KG_OBJ_PRIVATE_KEY) {
        protect = (int32_t)KG_USAGE_SIGN;
    } else if (obj->object_type != KG_OBJ_SYMMETRIC_KEY) {
        return false;
    }
    return (obj->usage_mask & protect) != 0;
}

static bool kg_usage_destroyed(uint32_t state)
{
    return state == KG_STATE_DESTROYED || state == KG_STATE_DESTROYED_COMPROMISED;
}

/* The specification's name of State `state`, for messages. */
static const char *kg_usage_state_name(uint32_t state)
{
    const struct kg_enum_table *t = kg_kmip_enum_table(KG_TAG_STATE);

    for (uint32_t i = 0; t != NULL && i < t->count; i++) {
        if (t->names[i].value == state) {
            return t->names[i].name;
        }
    }
    return "unknown";
}

/* Fail with `err` and a formatted detail (kg_error_set clears the detail,
 * so it must come first). */
static kg_result kg_usage_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kg_result kg_usage_fail(int err, const char *fmt, ...)
{
    char text[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    kg_error_set(err, __FILE__, __LINE__);
    kg_error_detail("%s", text);
    return KG_RESULT_ERROR;
}

/* ---- Check ---------------------------------------------------------------- */

struct kg_check_request {
    bool has_count, has_mask, has_lease;
    int64_t count;
    int32_t mask;
    uint32_t lease;
};

static kg_result kg_check_read(struct kg_ttlv_reader *in, struct kg_check_request *req)
{
    struct kg_ttlv_item it;

    memset(req, 0, sizeof(*req));
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_USAGE_LIMITS_COUNT, KG_TTLV_LONG_INTEGER, &it, &req->has_count));
    if (req->has_count) {
        KG_GUARD(kg_ttlv_get_long(&it, &req->count));
        KG_ENSURE(req->count > 0, KG_ERR_INVALID_FIELD);
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_CRYPTOGRAPHIC_USAGE_MASK, KG_TTLV_INTEGER, &it, &req->has_mask));
    if (req->has_mask) {
        KG_GUARD(kg_ttlv_get_int(&it, &req->mask));
    }
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_LEASE_TIME, KG_TTLV_INTERVAL, &it, &req->has_lease));
    if (req->has_lease) {
        KG_GUARD(kg_ttlv_get_interval(&it, &req->lease));
    }
    KG_GUARD(kg_ttlv_reader_finish(in));
    return KG_RESULT_OK;
}

/*
 * 4.10: a Check that the object allows answers its UID; one it does not
 * allow empties the ID Placeholder and fails Permission Denied (11.11;
 * in KMIP 2.x Incompatible Cryptographic Usage Mask when the mask alone is why),
 * naming in the message every asked-for value that was refused. A Lease
 * Time is always grantable (KG_USAGE_LEASE_TIME is "no limit").
 */
kg_result kg_op_check(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    struct kg_check_request req;
    struct kg_usage_attr *row = NULL;
    struct kg_usage_limits lim;
    int64_t remaining = 0;
    char mask_why[96] = "", count_why[96] = "";
    bool destroyed;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_check_read(in, &req));
    destroyed = kg_usage_destroyed(obj->state);
    if (req.has_mask && (req.mask & ~obj->usage_mask) != 0) {
        snprintf(mask_why, sizeof(mask_why), " Cryptographic Usage Mask 0x%" PRIx32 " (the object allows 0x%" PRIx32 ")",
                 (uint32_t)req.mask, (uint32_t)obj->usage_mask);
    }
    if (req.has_count) {
        row = malloc(sizeof(*row));
        KG_ENSURE(row != NULL, KG_ERR_NOMEM);
        KG_GOTO_GUARD(rc, kg_usage_limits_load(ctx->store, obj->uid, row, &lim, &remaining));
        /* No Usage Limits: use is not limited (3.21), any count is fine. */
        if (row->found && req.count > remaining) {
            snprintf(count_why, sizeof(count_why), " Usage Limits Count %" PRId64 " (%" PRId64 " remaining)", req.count,
                     remaining);
        }
    }
    if (destroyed || mask_why[0] != '\0' || count_why[0] != '\0') {
        ctx->id_placeholder[0] = '\0';
        /* The mask alone: KMIP 2.x has a reason of its own for it. */
        int err = !destroyed && count_why[0] == '\0' ? KG_ERR_INCOMPATIBLE_USAGE_MASK : KG_ERR_DENIED;

        rc = kg_usage_fail(err, "check refused:%s%s%s", destroyed ? " the object is destroyed" : "",
                           mask_why, count_why);
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_op_write_uid(ctx, out));
out:
    free(row);
    return rc;
}

/* ---- Obtain Lease --------------------------------------------------------- */

/*
 * 4.17: Lease Time KG_USAGE_LEASE_TIME and the object's Last Change Date. No
 * lease for an object that must not be used any more: compromised or
 * destroyed (Permission Denied, 11.17).
 */
kg_result kg_op_obtain_lease(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    const struct kg_object *obj = &ctx->object;
    bool found = false;
    int64_t changed = 0;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    if (obj->state == KG_STATE_COMPROMISED || kg_usage_destroyed(obj->state)) {
        return kg_usage_fail(KG_ERR_DENIED, "no lease for an object in state %s", kg_usage_state_name(obj->state));
    }
    KG_GUARD(kg_attr_get_date(ctx->store, obj->uid, "Last Change Date", &found, &changed));
    if (!found) {
        /* Every object gets both at creation; only a row damaged outside
         * kmipgw lacks them. */
        KG_GUARD(kg_attr_get_date(ctx->store, obj->uid, "Initial Date", &found, &changed));
        if (!found) {
            return kg_usage_bad_row(obj->uid, "Last Change Date");
        }
    }
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_ttlv_write_interval(out, KG_TAG_LEASE_TIME, KG_USAGE_LEASE_TIME));
    KG_GUARD(kg_ttlv_write_datetime(out, KG_TAG_LAST_CHANGE_DATE, changed));
    return KG_RESULT_OK;
}

/* ---- Get Usage Allocation ------------------------------------------------- */

/* Protection is enabled (4.18): not revoked or destroyed, Activation Date
 * reached, Protect Stop Date (if any) not yet. */
static kg_result kg_allocation_window(struct kg_store *w, const struct kg_op_ctx *ctx)
{
    const struct kg_object *obj = &ctx->object;
    bool found = false;
    int64_t when = 0;

    if (obj->state != KG_STATE_ACTIVE && obj->state != KG_STATE_PRE_ACTIVE) {
        return kg_usage_fail(KG_ERR_WRONG_STATE, "an object in state %s cannot apply protection",
                             kg_usage_state_name(obj->state));
    }
    KG_GUARD(kg_attr_get_date(w, obj->uid, "Activation Date", &found, &when));
    if (!found || when > ctx->now) {
        return kg_usage_fail(KG_ERR_WRONG_STATE, "protection is not enabled yet: Activation Date not reached");
    }
    KG_GUARD(kg_attr_get_date(w, obj->uid, "Protect Stop Date", &found, &when));
    if (found && when <= ctx->now) {
        return kg_usage_fail(KG_ERR_WRONG_STATE, "protection has ended: Protect Stop Date passed");
    }
    return KG_RESULT_OK;
}

/* Inside the change: read, decide and write on the writer connection, so
 * two allocations of the same object never both take the last units. */
static kg_result kg_allocation_apply(struct kg_store *w, const struct kg_op_ctx *ctx, int64_t want,
                                     struct kg_usage_attr *row)
{
    const char *uid = ctx->object.uid;
    struct kg_usage_limits lim;
    struct kg_ttlv_writer v;
    int64_t remaining = 0;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_usage_limits_load(w, uid, row, &lim, &remaining));
    if (!row->found) {
        return kg_usage_fail(KG_ERR_ILLEGAL_OPERATION, "object %s has no Usage Limits", uid);
    }
    KG_GUARD(kg_allocation_window(w, ctx));
    if (want > remaining) {
        return kg_usage_fail(KG_ERR_DENIED, "unable to allocate %" PRId64 ": %" PRId64 " remaining", want, remaining);
    }
    KG_GUARD(kg_ttlv_writer_init(&v, 64, false));
    KG_GOTO_GUARD(rc, kg_ttlv_begin_struct(&v, KG_TAG_ATTRIBUTE_VALUE));
    KG_GOTO_GUARD(rc, kg_ttlv_write_long(&v, KG_TAG_USAGE_LIMITS_TOTAL, lim.total));
    KG_GOTO_GUARD(rc, kg_ttlv_write_long(&v, KG_TAG_USAGE_LIMITS_COUNT, remaining - want));
    if (lim.has_unit) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_enum(&v, KG_TAG_USAGE_LIMITS_UNIT, lim.unit));
    }
    KG_GOTO_GUARD(rc, kg_ttlv_end_struct(&v));
    KG_GOTO_GUARD(rc, kg_store_set_attr(w, uid, "Usage Limits", row->index, v.buf, v.len));
    KG_GOTO_GUARD(rc, kg_attr_store_date(w, uid, "Last Change Date", ctx->now));
out:
    kg_ttlv_writer_cleanup(&v);
    return rc;
}

/*
 * 4.18: take `Usage Limits Count` units from the object's Usage Limits. The
 * whole amount counts as used (the server "SHALL assume that the entire
 * allocated amount is going to be consumed"). Errors of 11.19: no count
 * (Missing Data), no Usage Limits or an object that cannot protect (Illegal
 * Operation), not enough left or protection not enabled (Permission Denied).
 */
kg_result kg_op_get_usage_allocation(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_usage_attr *row;
    struct kg_ttlv_item it;
    struct kg_store *w;
    int64_t want = 0;
    bool present = false;
    kg_result rc;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_USAGE_LIMITS_COUNT, KG_TTLV_LONG_INTEGER, &it, &present));
    if (!present) {
        return kg_usage_fail(KG_ERR_MISSING_FIELD, "Get Usage Allocation needs a Usage Limits Count");
    }
    KG_GUARD(kg_ttlv_get_long(&it, &want));
    KG_ENSURE(want > 0, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_reader_finish(in));
    if (!kg_usage_can_protect(&ctx->object)) {
        return kg_usage_fail(KG_ERR_ILLEGAL_OPERATION, "object %s cannot apply cryptographic protection",
                             ctx->object.uid);
    }
    row = malloc(sizeof(*row));
    KG_ENSURE(row != NULL, KG_ERR_NOMEM);
    rc = kg_change_begin(ctx->gw->committer, ctx->object.uid, &w);
    if (kg_ok(rc)) {
        rc = kg_change_end(ctx->gw->committer, kg_allocation_apply(w, ctx, want, row));
    }
    free(row);
    KG_GUARD(rc);
    ctx->audit_note = "usage allocated";
    KG_GUARD(kg_op_write_uid(ctx, out));
    return KG_RESULT_OK;
}
