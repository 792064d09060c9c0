/*
 * kg_op_attributes.c - Get Attributes, Get Attribute List, Add, Modify and
 * Delete Attribute (KMIP 1.4 sections 4.12 to 4.16), and KMIP 2.x Set
 * Attribute (2.1 section 6.1.51).
 */
#include <stdlib.h>
#include <string.h>

#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"

#define KG_MAX_NAMES 64

struct kg_attr_emit {
    struct kg_ttlv_writer *out;
    kg_result rc;
    /* Get Attribute List: the previous name, to list each name once. */
    char last[KG_ATTR_NAME_MAX + 1];
    bool names_only;
    struct kg_version version; /* the client's: what it is shown */
};

/* Is `name` an attribute of the client's protocol version? A stored name
 * the table no longer knows is shown as it is. */
static bool kg_attr_shown(const char *name, struct kg_version v)
{
    const struct kg_attr_def *def = kg_attr_lookup(name, (uint32_t)strlen(name));

    return def == NULL || kg_attr_in_version(def, v.major, v.minor);
}

static bool kg_attr_emit_row(void *p, const struct kg_attr *a)
{
    struct kg_attr_emit *e = p;

    /* A derived attribute is answered from the object (kg_attr_write_derived),
     * even where a row of it is kept too (a registered key's Key Format
     * Type, the client's Sensitive): written with the derived ones, not twice. */
    if (!kg_attr_shown(a->name, e->version) || kg_attr_is_derived(a->name)) {
        return true;
    }
    if (e->names_only) {
        if (strcmp(e->last, a->name) == 0) {
            return true;
        }
        memcpy(e->last, a->name, sizeof(e->last));
        e->rc = kg_ttlv_write_text(e->out, KG_TAG_ATTRIBUTE_NAME, a->name, (uint32_t)strlen(a->name));
    } else {
        e->rc = kg_attr_write_for(e->out, a->name, a->index, a->value, a->value_len, e->version.major,
                                  e->version.minor);
    }
    return kg_ok(e->rc);
}

static kg_result kg_attr_emit_all(struct kg_op_ctx *ctx, const char *name, struct kg_attr_emit *e)
{
    e->rc = KG_RESULT_OK;
    KG_GUARD(kg_store_each_attr(ctx->store, ctx->object.uid, name, kg_attr_emit_row, e));
    return e->rc;
}

/* Write derived attribute `name` if the client's version has it. */
static kg_result kg_attr_derived_for(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out, const char *name,
                                     bool *written)
{
    if (!kg_attr_shown(name, ctx->version)) {
        /* Not an attribute of this version: absent from the answer, and
         * no stored row of it is looked for either. */
        *written = true;
        return KG_RESULT_OK;
    }
    if (strcmp(name, "Key Format Type") == 0) {
        return kg_attr_write_key_format(out, ctx->store, &ctx->object, written);
    }
    return kg_attr_write_derived(out, &ctx->object, name, written);
}

kg_result kg_op_get_attributes(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_attr_emit e = { .out = out, .version = ctx->version };
    char name[KG_ATTR_NAME_MAX + 1];
    struct kg_ttlv_item it, asked[KG_MAX_NAMES];
    const char *text;
    uint32_t len, count = 0;
    bool written;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_attr_load_sensitive(ctx->store, &ctx->object));
    KG_GUARD(kg_op_write_uid(ctx, out));
    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &it));
        KG_GUARD(kg_ttlv_get_text(&it, &text, &len));
        KG_ENSURE(count < KG_MAX_NAMES, KG_ERR_INVALID_FIELD);
        for (uint32_t i = 0; i < count; i++) {
            if (asked[i].len == it.len && memcmp(asked[i].value, it.value, it.len) == 0) {
                kg_error_set(KG_ERR_DUPLICATE_FIELD, __FILE__, __LINE__);
                kg_error_detail("Attribute Name '%.*s' asked for twice", (int)(len > 64 ? 64 : len), text);
                return KG_RESULT_ERROR;
            }
        }
        asked[count++] = it;
        /* A name we do not know, or one not set on this object, is simply
         * absent from the answer: vCenter asks for x- names before it sets
         * them and expects Success with no attribute (VSPHERE.md). */
        if (len == 0 || len > KG_ATTR_NAME_MAX) {
            continue;
        }
        memcpy(name, text, len);
        name[len] = '\0';
        KG_GUARD(kg_attr_derived_for(ctx, out, name, &written));
        if (!written) {
            KG_GUARD(kg_attr_emit_all(ctx, name, &e));
        }
    }
    if (count == 0) {
        for (uint32_t i = 0; i < kg_attr_derived_count; i++) {
            KG_GUARD(kg_attr_derived_for(ctx, out, kg_attr_derived_names[i], &written));
        }
        KG_GUARD(kg_attr_emit_all(ctx, NULL, &e));
    }
    return KG_RESULT_OK;
}

kg_result kg_op_get_attribute_list(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_attr_emit e = { .out = out, .names_only = true, .version = ctx->version };
    struct kg_ttlv_writer scratch;
    kg_result rc = KG_RESULT_OK;
    bool written;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_attr_load_sensitive(ctx->store, &ctx->object));
    KG_GUARD(kg_op_write_uid(ctx, out));
    /* List a derived attribute only when the object has it (an object
     * without a length has no Cryptographic Length): write it to scratch. */
    KG_GUARD(kg_ttlv_writer_init(&scratch, 1024, false));
    for (uint32_t i = 0; i < kg_attr_derived_count; i++) {
        written = false;
        if (kg_attr_shown(kg_attr_derived_names[i], ctx->version)) {
            KG_GOTO_GUARD(rc, kg_attr_write_derived(&scratch, &ctx->object, kg_attr_derived_names[i], &written));
        }
        if (written) {
            const char *n = kg_attr_derived_names[i];
            KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_ATTRIBUTE_NAME, n, (uint32_t)strlen(n)));
        }
    }
    KG_GOTO_GUARD(rc, kg_attr_emit_all(ctx, NULL, &e));
out:
    kg_ttlv_writer_cleanup(&scratch);
    return rc;
}

/* Find a stored row of (uid, name) whose value equals `value`. */
struct kg_attr_find {
    const uint8_t *value;
    uint32_t len;
    int32_t index; /* -1: none */
    struct kg_attr *copy; /* when non-NULL, receives the row at `want` */
    int32_t want;
};

static bool kg_attr_find_row(void *p, const struct kg_attr *a)
{
    struct kg_attr_find *f = p;

    if (f->copy != NULL) {
        if (a->index == f->want) {
            *f->copy = *a;
            f->index = a->index;
            return false;
        }
        return true;
    }
    if (a->value_len == f->len && memcmp(a->value, f->value, f->len) == 0) {
        f->index = a->index;
        return false;
    }
    return true;
}

/*
 * May a client add or modify life-cycle date `name` of an object in
 * `state`? KMIP 1.4 sections 3.24 to 3.27: the Activation Date only while
 * Pre-Active (after that it records what happened), the Process Start,
 * Protect Stop and Deactivation Dates only while Pre-Active or Active.
 * Every other attribute: yes.
 */
static bool kg_attr_date_changeable(const char *name, uint32_t state)
{
    if (strcmp(name, "Activation Date") == 0) {
        return state == KG_STATE_PRE_ACTIVE;
    }
    if (strcmp(name, "Process Start Date") == 0 || strcmp(name, "Protect Stop Date") == 0 ||
        strcmp(name, "Deactivation Date") == 0) {
        return state == KG_STATE_PRE_ACTIVE || state == KG_STATE_ACTIVE;
    }
    return true;
}

/* Refuse changes the attribute's rules forbid, and changes to destroyed
 * objects, which only keep their metadata for the record. */
static kg_result kg_attr_check_change(const struct kg_op_ctx *ctx, const struct kg_attr_in *a, uint32_t flag)
{
    if (!kg_attr_in_version(a->def, ctx->version.major, ctx->version.minor)) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("'%s' is not an attribute of KMIP %d.%d", a->name, (int)ctx->version.major,
                        (int)ctx->version.minor);
        return KG_RESULT_ERROR;
    }
    if (!(a->def->flags & flag)) {
        kg_error_set(KG_ERR_READ_ONLY_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("attribute '%s' may not be changed by a client this way", a->name);
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(ctx->object.state != KG_STATE_DESTROYED && ctx->object.state != KG_STATE_DESTROYED_COMPROMISED,
              KG_ERR_WRONG_STATE);
    if (!kg_attr_date_changeable(a->name, ctx->object.state)) {
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("'%s' may not be changed in this state", a->name);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

static kg_result kg_attr_read_one(struct kg_ttlv_reader *in, bool need_value, struct kg_attr_in *a)
{
    struct kg_ttlv_item it;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_ATTRIBUTE, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_attr_read(in, &it, need_value, a));
    KG_GUARD(kg_ttlv_reader_finish(in));
    return KG_RESULT_OK;
}

/* Room for a Usage Limits value as the server stores it (three fields). */
#define KG_USAGE_LIMITS_MAX 64u

static bool kg_is_usage_limits(const struct kg_attr_in *a)
{
    return strcmp(a->name, "Usage Limits") == 0;
}

/*
 * Usage Limits as given to Add or Modify becomes the server's form (Count =
 * Total) in `buf`, and a->value points at it from then on (for the store
 * and the response). Other attributes are left alone.
 */
static kg_result kg_usage_limits_in(struct kg_attr_in *a, uint8_t buf[KG_USAGE_LIMITS_MAX])
{
    uint32_t len = 0;

    if (!kg_is_usage_limits(a)) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_attr_usage_limits(a, false, buf, KG_USAGE_LIMITS_MAX, &len));
    a->value.raw = buf;
    a->value.raw_len = len;
    return KG_RESULT_OK;
}

/* Refuse to change or delete Usage Limits instance `index` once Get Usage
 * Allocation has drawn on it (KMIP 1.4 Table 102). Inside the change. */
static kg_result kg_usage_limits_unused(struct kg_store *w, const struct kg_op_ctx *ctx, int32_t index)
{
    struct kg_attr *row = calloc(1, sizeof(*row));
    struct kg_attr_find f = { .index = -1, .copy = row, .want = index };
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(row != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_store_each_attr(w, ctx->object.uid, "Usage Limits", kg_attr_find_row, &f));
    if (f.index >= 0 && kg_attr_usage_limits_used(row->value, row->value_len)) {
        kg_error_set(KG_ERR_READ_ONLY_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("Usage Limits may not change once Get Usage Allocation has used it");
        rc = KG_RESULT_ERROR;
    }
out:
    free(row);
    return rc;
}

/* Stamp Last Change Date in the same change as the edit it records. */
static kg_result kg_attr_touch(struct kg_store *w, const struct kg_op_ctx *ctx, kg_result rc)
{
    KG_GUARD(rc);
    return kg_attr_store_date(w, ctx->object.uid, "Last Change Date", ctx->now);
}

/* Apply Add Attribute; *index gets the instance, *unchanged whether it
 * already existed. */
static kg_result kg_add_apply(struct kg_store *w, const struct kg_op_ctx *ctx, const struct kg_attr_in *a,
                              int32_t *index, bool *unchanged)
{
    struct kg_attr_find f = { .index = -1, .value = a->value.raw, .len = a->value.raw_len };
    uint32_t count = 0;

    *unchanged = false;
    KG_GUARD(kg_store_each_attr(w, ctx->object.uid, a->name, kg_attr_find_row, &f));
    if (f.index >= 0 && strcmp(a->name, "Name") == 0) {
        /* A Name names one object once (KMIP 2.1 section 11.29). */
        kg_error_set(KG_ERR_NON_UNIQUE_NAME, __FILE__, __LINE__);
        kg_error_detail("the object already has this Name");
        return KG_RESULT_ERROR;
    }
    if (f.index >= 0) {
        /* The same value again: vCenter re-adds its x- tags and must not
         * fail (VSPHERE.md), and a second identical instance would only
         * confuse Locate. Answer with the instance that exists. */
        *index = f.index;
        *unchanged = true;
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_store_count_attr(w, ctx->object.uid, a->name, &count));
    if (count > 0 && !(a->def->flags & KG_ATTR_MULTI)) {
        kg_error_set(KG_ERR_SINGLE_VALUED, __FILE__, __LINE__);
        kg_error_detail("attribute '%s' is single-valued and already set", a->name);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_attr_sensitive_change(w, &ctx->object, a));
    KG_GUARD(kg_store_add_attr(w, ctx->object.uid, a->name, a->value.raw, a->value.raw_len, index));
    return kg_attr_touch(w, ctx, KG_RESULT_OK);
}

kg_result kg_op_add_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    uint8_t limits[KG_USAGE_LIMITS_MAX];
    struct kg_attr_in a;
    struct kg_store *w;
    int32_t index = 0;
    bool unchanged;

    KG_GUARD(kg_attr_read_one(in, true, &a));
    KG_GUARD(kg_attr_check_change(ctx, &a, KG_ATTR_CLIENT_ADD));
    KG_GUARD(kg_usage_limits_in(&a, limits));
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_add_apply(w, ctx, &a, &index, &unchanged)));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_attr_write(out, a.name, index, a.value.raw, a.value.raw_len));
    return KG_RESULT_OK;
}

/* Apply Modify Attribute of instance `index`. */
static kg_result kg_modify_apply(struct kg_store *w, const struct kg_op_ctx *ctx, const struct kg_attr_in *a,
                                 int32_t index)
{
    if (kg_is_usage_limits(a)) {
        KG_GUARD(kg_usage_limits_unused(w, ctx, index));
    }
    KG_GUARD(kg_attr_sensitive_change(w, &ctx->object, a));
    KG_GUARD(kg_store_set_attr(w, ctx->object.uid, a->name, index, a->value.raw, a->value.raw_len));
    return kg_attr_touch(w, ctx, KG_RESULT_OK);
}

kg_result kg_op_modify_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    uint8_t limits[KG_USAGE_LIMITS_MAX];
    struct kg_attr_in a;
    struct kg_store *w;
    int32_t index;

    KG_GUARD(kg_attr_read_one(in, true, &a));
    KG_GUARD(kg_attr_check_change(ctx, &a, KG_ATTR_CLIENT_MODIFY));
    KG_GUARD(kg_usage_limits_in(&a, limits));
    index = a.has_index ? a.index : 0;
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_modify_apply(w, ctx, &a, index)));
    KG_GUARD(kg_op_write_uid(ctx, out));
    KG_GUARD(kg_attr_write(out, a.name, index, a.value.raw, a.value.raw_len));
    return KG_RESULT_OK;
}

/* How many instances of an attribute an object has (counting stops at
 * two), and the index of the last one seen. */
struct kg_attr_instances {
    uint32_t count;
    int32_t index;
};

static bool kg_attr_instance_row(void *p, const struct kg_attr *a)
{
    struct kg_attr_instances *n = p;

    n->count++;
    n->index = a->index;
    return n->count < 2;
}

/*
 * Apply Set Attribute: with no instance it is Add Attribute, with exactly
 * one it is Modify Attribute of that instance, each under that operation's
 * rules (a client may modify an attribute it may not add, and the other way
 * round: Original Creation Date); with several, which one to change is
 * ambiguous and 6.1.51 refuses. Counted inside the change so that a
 * concurrent Add cannot slip in between.
 */
static kg_result kg_set_apply(struct kg_store *w, const struct kg_op_ctx *ctx, const struct kg_attr_in *a)
{
    struct kg_attr_instances n = { 0, 0 };
    int32_t index = 0;
    bool unchanged;

    KG_GUARD(kg_store_each_attr(w, ctx->object.uid, a->name, kg_attr_instance_row, &n));
    if (n.count > 1) {
        kg_error_set(KG_ERR_MULTI_VALUED, __FILE__, __LINE__);
        kg_error_detail("the object has several '%s' instances: Set Attribute cannot tell which to change",
                        a->name);
        return KG_RESULT_ERROR;
    }
    if (n.count == 0) {
        KG_GUARD(kg_attr_check_change(ctx, a, KG_ATTR_CLIENT_ADD));
        return kg_add_apply(w, ctx, a, &index, &unchanged);
    }
    KG_GUARD(kg_attr_check_change(ctx, a, KG_ATTR_CLIENT_MODIFY));
    return kg_modify_apply(w, ctx, a, n.index);
}

kg_result kg_op_set_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    uint8_t limits[KG_USAGE_LIMITS_MAX];
    struct kg_attr_in a;
    struct kg_store *w;

    if (ctx->version.major < 2) {
        /* KMIP 1.x has no such operation (1.4 section 9.1.3.2.27). */
        kg_error_set(KG_ERR_UNSUPPORTED_OP, __FILE__, __LINE__);
        kg_error_detail("Set Attribute is a KMIP 2.x operation; use Add or Modify Attribute");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_attr_read_one(in, true, &a));
    KG_ENSURE(!a.has_index, KG_ERR_INVALID_FIELD); /* 2.x names no instance */
    KG_GUARD(kg_usage_limits_in(&a, limits));
    KG_GUARD(kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GUARD(kg_change_end(ctx->gw->committer, kg_set_apply(w, ctx, &a)));
    /* The 2.x response is the Unique Identifier alone (Table 323). */
    return kg_op_write_uid(ctx, out);
}

/* Apply Delete Attribute, copying the deleted instance into *old. */
static kg_result kg_delete_apply(struct kg_store *w, const struct kg_op_ctx *ctx, const struct kg_attr_in *a,
                                 struct kg_attr *old)
{
    struct kg_attr_find f = { .index = -1, .copy = old, .want = a->index };

    KG_GUARD(kg_store_each_attr(w, ctx->object.uid, a->name, kg_attr_find_row, &f));
    KG_ENSURE(f.index >= 0, KG_ERR_ATTRIBUTE_NOT_FOUND);
    if (kg_is_usage_limits(a)) {
        KG_GUARD(kg_usage_limits_unused(w, ctx, a->index));
    }
    return kg_attr_touch(w, ctx, kg_store_delete_attr(w, ctx->object.uid, a->name, a->index));
}

kg_result kg_op_delete_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_attr_in a;
    struct kg_attr *old = NULL;
    struct kg_store *w;
    struct kg_ttlv_item it;
    const char *text;
    uint32_t len;
    kg_result rc = KG_RESULT_OK;
    bool present = false;

    /* 1.x form: Unique Identifier, Attribute Name, Attribute Index. */
    memset(&a, 0, sizeof(a));
    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &text, &len));
    KG_ENSURE(len > 0 && len <= KG_ATTR_NAME_MAX, KG_ERR_BAD_ATTRIBUTE);
    memcpy(a.name, text, len);
    a.def = kg_attr_lookup(text, len);
    KG_ENSURE(a.def != NULL, KG_ERR_BAD_ATTRIBUTE);
    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_ATTRIBUTE_INDEX, KG_TTLV_INTEGER, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_int(&it, &a.index));
    }
    KG_GUARD(kg_ttlv_reader_finish(in));
    KG_GUARD(kg_attr_check_change(ctx, &a, KG_ATTR_CLIENT_DELETE));

    old = calloc(1, sizeof(*old));
    KG_ENSURE(old != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_change_begin(ctx->gw->committer, ctx->object.uid, &w));
    KG_GOTO_GUARD(rc, kg_change_end(ctx->gw->committer, kg_delete_apply(w, ctx, &a, old)));
    KG_GOTO_GUARD(rc, kg_op_write_uid(ctx, out));
    KG_GOTO_GUARD(rc, kg_attr_write(out, old->name, old->index, old->value, old->value_len));
out:
    free(old);
    return rc;
}
