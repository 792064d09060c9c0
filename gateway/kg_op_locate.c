/*
 * kg_op_locate.c - Locate (KMIP 1.4 section 4.9): objects whose attributes
 * match every given value, limited to the caller's scope. An object outside
 * the scope is never listed.
 *
 * Matching (4.9). The attributes kept in object columns (Unique Identifier,
 * Object Type, State, Cryptographic Algorithm and Length) must be equal;
 * Cryptographic Usage Mask matches an object whose mask has every requested
 * bit. A structure (Name, Link, Application Specific Information...) matches
 * a stored one holding every field given. One instance of a Date-Time
 * attribute matches that instant; two instances of the same one are a range,
 * bounds included. Anything else, x- and y- attributes included, must be
 * equal. Attribute Index values are ignored, as 4.9 requires.
 *
 * Left out unless asked for: destroyed objects (they keep only their
 * metadata and Get answers Item Not Found for them) unless a State filter
 * names a destroyed state; archived objects unless the Storage Status Mask
 * asks for archival storage.
 *
 * Order: newest first. Object Group Member (9.1.3.2.33): Group Member Fresh
 * lists only objects whose Fresh attribute is True, oldest first. Group
 * Member Default is "the default object as defined by server policy"; here
 * it is the oldest fresh member, else the oldest member, so that clients
 * that take the default and Get it (which makes it not fresh) go through the
 * group in creation order. Offset Items skips matches, Maximum Items caps
 * them; this server never lists more than KG_LOCATE_MAX_RESULTS.
 *
 * ID Placeholder (4.9): the UID when exactly one is returned; otherwise it
 * is emptied, so that batched items after the Locate that name no object
 * fail instead of acting on an earlier item's object.
 */
#include <stdlib.h>
#include <string.h>

#include "kg_fresh_pool.h"
#include "kg_kmip.h"
#include "kg_ops.h"

#define KG_LOCATE_MAX_RESULTS 1024

/* Attribute Value Boolean True, as kg_ttlv_write_bool encodes it and the
 * store keeps a Fresh attribute (tag 0x42000B, type 0x06, length 8, 1). */
static const uint8_t kg_locate_true[16] = { 0x42, 0x00, 0x0B, 0x06, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1 };

/* Everything read from the request payload. */
struct kg_locate_req {
    struct kg_store_locate q;
    struct kg_store_filter_attr filters[KG_STORE_LOCATE_MAX_ATTRS];
    uint8_t instances[KG_STORE_LOCATE_MAX_ATTRS]; /* date filters: instances seen (1 or 2) */
    char uid[KG_UID_LEN + 1];
    bool none;          /* the filters contradict each other: nothing can match */
    bool has_max, has_offset, has_mask, has_member;
    int32_t max_items, offset;
    uint32_t member;    /* enum kg_object_group_member; 0 = none */
};

/* A column filter: the first value sets it, a different second one means
 * no object can match (an object has one Object Type). */
static void kg_locate_set_u32(struct kg_locate_req *r, uint32_t *field, uint32_t v)
{
    if (v == 0 || (*field != 0 && *field != v)) {
        r->none = true; /* 0 is no valid value of these columns */
    }
    *field = v;
}

/* Attributes that live in object columns become column filters. */
static kg_result kg_locate_column(struct kg_locate_req *r, const struct kg_attr_in *a, bool *used)
{
    struct kg_store_locate *q = &r->q;
    uint32_t v;
    int32_t i;

    *used = true;
    if (strcmp(a->name, "Unique Identifier") == 0) {
        const char *text;
        uint32_t len;

        KG_GUARD(kg_ttlv_get_text(&a->value, &text, &len));
        /* Our UIDs are all KG_UID_LEN long: anything else cannot exist. */
        if (len != KG_UID_LEN || (q->uid != NULL && memcmp(r->uid, text, len) != 0)) {
            r->none = true;
        } else {
            memcpy(r->uid, text, len);
            r->uid[len] = '\0';
            q->uid = r->uid;
        }
    } else if (strcmp(a->name, "Object Type") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &v));
        kg_locate_set_u32(r, &q->object_type, v);
    } else if (strcmp(a->name, "State") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &v));
        kg_locate_set_u32(r, &q->state, v);
    } else if (strcmp(a->name, "Cryptographic Algorithm") == 0) {
        KG_GUARD(kg_ttlv_get_enum(&a->value, &v));
        kg_locate_set_u32(r, &q->algorithm, v);
    } else if (strcmp(a->name, "Cryptographic Length") == 0) {
        KG_GUARD(kg_ttlv_get_int(&a->value, &i));
        if (i <= 0 || (q->length != 0 && q->length != i)) {
            r->none = true;
        }
        q->length = i;
    } else if (strcmp(a->name, "Cryptographic Usage Mask") == 0) {
        /* Two masks: the object needs the bits of both. */
        KG_GUARD(kg_ttlv_get_int(&a->value, &i));
        q->usage_mask |= i;
    } else if (a->def->flags & KG_ATTR_DERIVED) {
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("Locate cannot filter on '%s'", a->name);
        return KG_RESULT_ERROR;
    } else {
        *used = false;
    }
    return KG_RESULT_OK;
}

/* A Date-Time filter: a new one is that instant; a second instance of the
 * same attribute widens it to the range between the two. */
static kg_result kg_locate_date(struct kg_locate_req *r, const struct kg_attr_in *a)
{
    struct kg_store_locate *q = &r->q;
    int64_t when;

    KG_GUARD(kg_ttlv_get_datetime(&a->value, &when));
    for (uint32_t i = 0; i < q->attr_count; i++) {
        struct kg_store_filter_attr *f = &r->filters[i];

        if (f->match != KG_STORE_MATCH_DATES || strcmp(f->name, a->name) != 0) {
            continue;
        }
        if (r->instances[i] >= 2) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("Locate: more than two instances of '%s' (one is a date, two a range)", a->name);
            return KG_RESULT_ERROR;
        }
        f->low = when < f->low ? when : f->low;
        f->high = when > f->high ? when : f->high;
        r->instances[i]++;
        return KG_RESULT_OK;
    }
    KG_ENSURE(q->attr_count < KG_STORE_LOCATE_MAX_ATTRS, KG_ERR_INVALID_FIELD);
    r->filters[q->attr_count] = (struct kg_store_filter_attr){
        .name = a->name, .match = KG_STORE_MATCH_DATES, .low = when, .high = when
    };
    r->instances[q->attr_count] = 1;
    q->attr_count++;
    return KG_RESULT_OK;
}

/* One Attribute of the request into a column filter or a store filter. */
static kg_result kg_locate_attribute(struct kg_locate_req *r, const struct kg_attr_in *a)
{
    struct kg_store_locate *q = &r->q;
    bool used;

    KG_GUARD(kg_locate_column(r, a, &used));
    if (used) {
        return KG_RESULT_OK;
    }
    if (strcmp(a->name, "Usage Limits") == 0) {
        /* 4.9 asks for "count and total at least these": not done here. */
        kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
        kg_error_detail("Locate cannot filter on '%s'", a->name);
        return KG_RESULT_ERROR;
    }
    if (a->value.type == KG_TTLV_DATE_TIME) {
        return kg_locate_date(r, a);
    }
    KG_ENSURE(q->attr_count < KG_STORE_LOCATE_MAX_ATTRS, KG_ERR_INVALID_FIELD);
    r->filters[q->attr_count] = (struct kg_store_filter_attr){
        .name = a->name,
        .value = a->value.raw,
        .value_len = a->value.raw_len,
        .match = a->value.type == KG_TTLV_STRUCTURE ? KG_STORE_MATCH_FIELDS : KG_STORE_MATCH_EQUAL,
    };
    q->attr_count++;
    return KG_RESULT_OK;
}

/* An Integer field that may appear once and must not be negative. */
static kg_result kg_locate_count(const struct kg_ttlv_item *it, bool *seen, int32_t *out)
{
    KG_ENSURE(!*seen, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_get_int(it, out));
    KG_ENSURE(*out >= 0, KG_ERR_INVALID_FIELD);
    *seen = true;
    return KG_RESULT_OK;
}

/*
 * Read the request payload into `r`. Attributes borrow into `attrs` (at
 * most KG_STORE_LOCATE_MAX_ATTRS, caller-owned) and the request buffer;
 * more Attributes than that is Invalid Field.
 */
static kg_result kg_locate_read(struct kg_ttlv_reader *in, struct kg_attr_in *attrs, struct kg_locate_req *r)
{
    struct kg_ttlv_item it;
    uint32_t n = 0;
    int32_t v;

    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read(in, &it));
        switch (it.tag) {
        case KG_TAG_MAXIMUM_ITEMS:
            KG_GUARD(kg_locate_count(&it, &r->has_max, &r->max_items));
            break;
        case KG_TAG_OFFSET_ITEMS:
            KG_GUARD(kg_locate_count(&it, &r->has_offset, &r->offset));
            break;
        case KG_TAG_STORAGE_STATUS_MASK:
            KG_GUARD(kg_locate_count(&it, &r->has_mask, &v));
            KG_ENSURE(((uint32_t)v & ~(KG_STORAGE_ON_LINE | KG_STORAGE_ARCHIVAL)) == 0, KG_ERR_INVALID_FIELD);
            r->q.storage_mask = (uint32_t)v;
            break;
        case KG_TAG_OBJECT_GROUP_MEMBER:
            KG_ENSURE(!r->has_member, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_ttlv_get_enum(&it, &r->member));
            KG_ENSURE(r->member == KG_GROUP_MEMBER_FRESH || r->member == KG_GROUP_MEMBER_DEFAULT,
                      KG_ERR_INVALID_FIELD);
            r->has_member = true;
            break;
        case KG_TAG_ATTRIBUTE:
            if (n >= KG_STORE_LOCATE_MAX_ATTRS) {
                kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
                kg_error_detail("Locate: more than %d attributes", KG_STORE_LOCATE_MAX_ATTRS);
                return KG_RESULT_ERROR;
            }
            KG_GUARD(kg_attr_read(in, &it, true, &attrs[n]));
            KG_GUARD(kg_locate_attribute(r, &attrs[n]));
            n++;
            break;
        default:
            KG_BAIL(KG_ERR_INVALID_FIELD);
        }
    }
    r->q.attrs = r->filters;
    return KG_RESULT_OK;
}

/* Only what the caller's scope covers is ever looked at. `owners` is
 * caller-owned, KG_STORE_LOCATE_MAX_OWNERS long, and must outlive the query. */
static kg_result kg_locate_scope(const struct kg_op_ctx *ctx, const char **owners, struct kg_store_locate *q)
{
    if (ctx->group->scope == KG_SCOPE_OWN) {
        q->owner_group = ctx->group->name;
    } else if (ctx->group->scope == KG_SCOPE_LIST) {
        KG_ENSURE(ctx->group->scope_group_count < KG_STORE_LOCATE_MAX_OWNERS, KG_ERR_INTERNAL);
        owners[0] = ctx->group->name;
        for (size_t i = 0; i < ctx->group->scope_group_count; i++) {
            owners[i + 1] = ctx->group->scope_groups[i];
        }
        q->owner_groups = owners;
        q->owner_group_count = (uint32_t)ctx->group->scope_group_count + 1;
    }
    return KG_RESULT_OK;
}

static const uint32_t kg_locate_destroyed[] = { KG_STATE_DESTROYED, KG_STATE_DESTROYED_COMPROMISED };

kg_result kg_op_locate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_attr_in *attrs = NULL;
    struct kg_locate_req *r = NULL;
    char (*uids)[KG_UID_LEN + 1] = NULL;
    const char *owners[KG_STORE_LOCATE_MAX_OWNERS];
    uint32_t found = 0;
    kg_result rc = KG_RESULT_OK;

    attrs = calloc(KG_STORE_LOCATE_MAX_ATTRS, sizeof(*attrs));
    r = calloc(1, sizeof(*r));
    uids = calloc(KG_LOCATE_MAX_RESULTS, sizeof(*uids));
    KG_GOTO_ENSURE(rc, attrs != NULL && r != NULL && uids != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_locate_read(in, attrs, r));
    KG_GOTO_GUARD(rc, kg_locate_scope(ctx, owners, &r->q));

    if (r->q.state == 0) {
        r->q.hidden_states = kg_locate_destroyed;
        r->q.hidden_state_count = (uint32_t)(sizeof(kg_locate_destroyed) / sizeof(kg_locate_destroyed[0]));
    }
    if (r->member != 0) {
        /* A pool the gateway keeps fresh is topped up first (kg_fresh_pool.h). */
        for (uint32_t i = 0; i < r->q.attr_count; i++) {
            if (strcmp(r->filters[i].name, "Object Group") == 0) {
                KG_GOTO_GUARD(rc, kg_fresh_pool_top_up(ctx, &r->filters[i]));
            }
        }
        r->q.order = r->member == KG_GROUP_MEMBER_FRESH ? KG_STORE_ORDER_PREFER_ONLY : KG_STORE_ORDER_PREFER_FIRST;
        r->q.prefer = (struct kg_store_filter_attr){
            .name = "Fresh", .value = kg_locate_true, .value_len = sizeof(kg_locate_true)
        };
    }
    r->q.max_items = (uint32_t)r->max_items;
    r->q.offset = (uint32_t)r->offset;
    if (!r->none) {
        KG_GOTO_GUARD(rc, kg_store_locate(ctx->store, &r->q, uids, KG_LOCATE_MAX_RESULTS, &found));
    }
    for (uint32_t i = 0; i < found; i++) {
        KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, uids[i], KG_UID_LEN));
    }
    if (found == 1) {
        /* The dispatcher copies it into the ID Placeholder (and the audit). */
        memcpy(ctx->audit_uid, uids[0], sizeof(ctx->audit_uid));
    } else {
        ctx->id_placeholder[0] = '\0';
        ctx->id_placeholder_found_nothing = found == 0;
    }
out:
    free(attrs);
    free(r);
    free(uids);
    return rc;
}
