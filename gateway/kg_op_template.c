/*
 * kg_op_template.c - Template objects (KMIP 1.4 section 2.2.6): a named set
 * of client-settable attributes, deprecated in KMIP 1.3 and gone from 2.0,
 * kept for 1.x clients only.
 *
 * Register stores a Template as an object row with no key material (storage
 * PUBLIC, empty blob: nothing secret, nothing to seal) and its attributes as
 * any object's: Cryptographic Algorithm, Length and Usage Mask in the row's
 * columns, the rest as attribute rows, its Name among them. Get Attributes,
 * Locate and Destroy therefore treat it as any object.
 *
 * A Template-Attribute (Create, Register, Re-key, Create Key Pair) may name
 * templates (section 2.1.8): kg_op_template_resolve finds each by its Name
 * in the caller's scope and adds its attributes beneath the request's own.
 * A template holds only what a client could set itself (the same
 * kg_op_template_add rules as a Create), so naming one grants nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"

/* Shown of a Template's Name in messages, at most. */
#define KG_TEMPLATE_NAME_SHOWN 64

static kg_result kg_template_no_2x(const struct kg_op_ctx *ctx)
{
    if (ctx->version.major >= 2) {
        /* Object Type 0x06 is Reserved in KMIP 2.x: not a value it has. */
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("KMIP %d.%d has no Template objects (removed in 2.0)", (int)ctx->version.major,
                        (int)ctx->version.minor);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_template_ref(const struct kg_op_ctx *ctx, const struct kg_ttlv_item *it,
                             struct kg_template_refs *refs)
{
    KG_GUARD(kg_template_no_2x(ctx));
    KG_ENSURE(it->type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
    if (refs->count >= KG_TEMPLATE_MAX_REFS) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("a Template-Attribute names at most %d templates", KG_TEMPLATE_MAX_REFS);
        return KG_RESULT_ERROR;
    }
    refs->name[refs->count++] = *it;
    return KG_RESULT_OK;
}

/* ---- finding a template by name --------------------------------------- */

/* One Name reference: the Name Value for messages, and the Name as a
 * stored Attribute Value (what the object's Name row holds) to find it. */
struct kg_template_name {
    const char *text;
    uint32_t text_len;
    struct kg_ttlv_writer value;
};

/* Name { Name Value, Name Type } of `it` into *n (n->value initialised by
 * the caller). Bounded by the item itself and the default TTLV limits. */
static kg_result kg_template_name_read(const struct kg_ttlv_item *it, struct kg_template_name *n)
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item top, nv, nt;

    kg_ttlv_budget_init(&b, NULL);
    KG_GUARD(kg_ttlv_reader_init(&r, it->raw, it->raw_len, &b));
    KG_GUARD(kg_ttlv_read(&r, &top));
    KG_GUARD(kg_ttlv_child(&r, &top, &c));
    KG_GUARD(kg_ttlv_read_expect(&c, KG_TAG_NAME_VALUE, KG_TTLV_TEXT_STRING, &nv));
    KG_GUARD(kg_ttlv_read_expect(&c, KG_TAG_NAME_TYPE, KG_TTLV_ENUMERATION, &nt));
    KG_GUARD(kg_ttlv_reader_finish(&c));
    KG_GUARD(kg_ttlv_get_text(&nv, &n->text, &n->text_len));
    KG_GUARD(kg_ttlv_begin_struct(&n->value, KG_TAG_ATTRIBUTE_VALUE));
    KG_GUARD(kg_ttlv_write_raw(&n->value, nv.raw, nv.raw_len));
    KG_GUARD(kg_ttlv_write_raw(&n->value, nt.raw, nt.raw_len));
    return kg_ttlv_end_struct(&n->value);
}

static const uint32_t kg_template_gone[] = { KG_STATE_DESTROYED, KG_STATE_DESTROYED_COMPROMISED };

/* Live objects in the caller's scope named `n`, of `object_type` (0: any);
 * at most two, which is enough to tell one from several. */
static kg_result kg_template_find(struct kg_op_ctx *ctx, const struct kg_template_name *n, uint32_t object_type,
                                  char (*uids)[KG_UID_LEN + 1], uint32_t *found)
{
    const char *owners[KG_STORE_LOCATE_MAX_OWNERS];
    struct kg_store_filter_attr f = {
        .name = "Name", .value = n->value.buf, .value_len = n->value.len, .match = KG_STORE_MATCH_EQUAL
    };
    struct kg_store_locate q;

    memset(&q, 0, sizeof(q));
    q.object_type = object_type;
    q.attrs = &f;
    q.attr_count = 1;
    q.hidden_states = kg_template_gone;
    q.hidden_state_count = (uint32_t)(sizeof(kg_template_gone) / sizeof(kg_template_gone[0]));
    KG_GUARD(kg_op_locate_scope(ctx, owners, &q));
    return kg_store_locate(ctx->store, &q, uids, 2, found);
}

/* The UID of the one Template `n` names, or the KMIP error saying why not. */
static kg_result kg_template_lookup(struct kg_op_ctx *ctx, const struct kg_template_name *n,
                                    char uid[KG_UID_LEN + 1])
{
    char uids[2][KG_UID_LEN + 1];
    uint32_t found = 0, other = 0;
    int shown = (int)(n->text_len > KG_TEMPLATE_NAME_SHOWN ? KG_TEMPLATE_NAME_SHOWN : n->text_len);

    KG_GUARD(kg_template_find(ctx, n, KG_OBJ_TEMPLATE, uids, &found));
    if (found == 1) {
        memcpy(uid, uids[0], KG_UID_LEN + 1);
        return KG_RESULT_OK;
    }
    if (found > 1) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("more than one Template is named '%.*s'", shown, n->text);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_template_find(ctx, n, 0, uids, &other));
    if (other > 0) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("'%.*s' names an object that is not a Template", shown, n->text);
        return KG_RESULT_ERROR;
    }
    kg_error_set(KG_ERR_NOT_FOUND, __FILE__, __LINE__);
    kg_error_detail("no Template named '%.*s'", shown, n->text);
    return KG_RESULT_ERROR;
}

/* ---- a template's attributes ------------------------------------------ */

/* Add `a` to the attributes templates give (`tt`): a single-valued one
 * replaces an earlier template's (the last template wins, 4.2). */
static kg_result kg_template_put(struct kg_template *tt, const struct kg_attr_in *a)
{
    for (uint32_t i = 0; i < tt->extra_count && !(a->def->flags & KG_ATTR_MULTI); i++) {
        if (strcmp(tt->extra[i].name, a->name) == 0) {
            tt->extra[i] = *a;
            return KG_RESULT_OK;
        }
    }
    if (tt->extra_count >= KG_TEMPLATE_MAX_ATTRS) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("the templates named give more than %d attributes", KG_TEMPLATE_MAX_ATTRS);
        return KG_RESULT_ERROR;
    }
    tt->extra[tt->extra_count++] = *a;
    return KG_RESULT_OK;
}

struct kg_template_rows {
    struct kg_template *t;  /* owns the value bytes (t->ref_values) */
    struct kg_template *tt; /* what the templates give */
    kg_result rc;
};

/* One row of a template: copied into t->ref_values and added to tt. Its
 * Name is the template's own; rows no client could set (Initial Date,
 * Last Change Date, ...) are the template object's, not for the new one. */
static bool kg_template_row_fn(void *arg, const struct kg_attr *row)
{
    struct kg_template_rows *s = arg;
    struct kg_template *t = s->t;
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r;
    struct kg_attr_in a;

    a.def = kg_attr_lookup(row->name, (uint32_t)strlen(row->name));
    if (strcmp(row->name, "Name") == 0 || a.def == NULL || !(a.def->flags & KG_ATTR_CLIENT_SET)) {
        return true;
    }
    if (row->value_len > KG_TEMPLATE_REF_BYTES - t->ref_used) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("the templates named hold more than %d bytes of attributes", KG_TEMPLATE_REF_BYTES);
        s->rc = KG_RESULT_ERROR;
        return false;
    }
    memcpy(t->ref_values + t->ref_used, row->value, row->value_len);
    snprintf(a.name, sizeof(a.name), "%s", row->name);
    a.has_index = false;
    a.index = 0;
    a.has_value = true;
    kg_ttlv_budget_init(&b, NULL);
    s->rc = kg_ttlv_reader_init(&r, t->ref_values + t->ref_used, row->value_len, &b);
    if (kg_ok(s->rc)) {
        s->rc = kg_ttlv_read(&r, &a.value); /* points into ref_values, which t keeps */
    }
    if (kg_ok(s->rc)) {
        t->ref_used += row->value_len;
        s->rc = kg_template_put(s->tt, &a);
    }
    return kg_ok(s->rc);
}

/* Template `uid`'s attributes into tt (later ones replacing earlier ones). */
static kg_result kg_template_load(struct kg_op_ctx *ctx, const char *uid, struct kg_template *t,
                                  struct kg_template *tt)
{
    struct kg_object *obj = calloc(1, sizeof(*obj));
    struct kg_template_rows s = { .t = t, .tt = tt, .rc = KG_RESULT_OK };
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(obj != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_store_get_object(ctx->store, uid, obj));
    KG_GOTO_ENSURE(rc, obj->object_type == KG_OBJ_TEMPLATE, KG_ERR_INTERNAL);
    if (obj->algorithm != 0) {
        tt->has_algorithm = true;
        tt->algorithm = obj->algorithm;
    }
    if (obj->length != 0) {
        tt->has_length = true;
        tt->length = obj->length;
    }
    if (obj->usage_mask != 0) {
        tt->has_usage_mask = true;
        tt->usage_mask = obj->usage_mask;
    }
    KG_GOTO_GUARD(rc, kg_store_each_attr(ctx->store, uid, NULL, kg_template_row_fn, &s));
    rc = s.rc;
out:
    free(obj);
    return rc;
}

/* What the templates give (tt) beneath what the request gave (t). */
static kg_result kg_template_merge(struct kg_template *t, const struct kg_template *tt)
{
    if (!t->has_algorithm && tt->has_algorithm) {
        t->has_algorithm = true;
        t->algorithm = tt->algorithm;
    }
    if (!t->has_length && tt->has_length) {
        t->has_length = true;
        t->length = tt->length;
    }
    if (!t->has_usage_mask && tt->has_usage_mask) {
        t->has_usage_mask = true;
        t->usage_mask = tt->usage_mask;
    }
    uint32_t given = t->extra_count;

    for (uint32_t i = 0; i < tt->extra_count; i++) {
        bool overridden = false;

        for (uint32_t j = 0; j < given && !(tt->extra[i].def->flags & KG_ATTR_MULTI); j++) {
            overridden |= strcmp(t->extra[j].name, tt->extra[i].name) == 0;
        }
        if (overridden) {
            continue;
        }
        if (t->extra_count >= KG_TEMPLATE_MAX_ATTRS) {
            kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
            kg_error_detail("the request and its templates give more than %d attributes", KG_TEMPLATE_MAX_ATTRS);
            return KG_RESULT_ERROR;
        }
        t->extra[t->extra_count++] = tt->extra[i];
    }
    return KG_RESULT_OK;
}

kg_result kg_op_template_resolve(struct kg_op_ctx *ctx, const struct kg_template_refs *refs, struct kg_template *t)
{
    struct kg_template *tt = NULL;
    struct kg_template_name n = { 0 };
    char uid[KG_UID_LEN + 1];
    kg_result rc = KG_RESULT_OK;

    if (refs->count == 0) {
        return KG_RESULT_OK;
    }
    tt = calloc(1, sizeof(*tt));
    KG_ENSURE(tt != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_ttlv_writer_init(&n.value, 64, false));
    for (uint32_t i = 0; i < refs->count; i++) {
        n.value.len = 0;
        KG_GOTO_GUARD(rc, kg_template_name_read(&refs->name[i], &n));
        KG_GOTO_GUARD(rc, kg_template_lookup(ctx, &n, uid));
        KG_GOTO_GUARD(rc, kg_template_load(ctx, uid, t, tt));
    }
    t->ref_templates = refs->count;
    rc = kg_template_merge(t, tt);
out:
    kg_ttlv_writer_cleanup(&n.value);
    free(tt);
    return rc;
}

/* ---- Register ------------------------------------------------------------ */

/*
 * Object Type, Template-Attribute (the template object's own attributes,
 * its Name in KMIP 1.1 and later) and Template { Attribute... } (what it
 * gives, its Name too in KMIP 1.0's test cases): all become the object's
 * attributes, with Create's rules (kg_op_template_add: client-settable
 * only, single-valued once, at most KG_TEMPLATE_MAX_ATTRS).
 */
static kg_result kg_template_read(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_template *t)
{
    struct kg_ttlv_item it;
    struct kg_ttlv_reader body;
    uint32_t object_type = 0, given = 0;
    bool named = false;

    KG_GUARD(kg_template_no_2x(ctx));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_OBJECT_TYPE, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &object_type));
    KG_ENSURE(object_type == KG_OBJ_TEMPLATE, KG_ERR_INTERNAL);
    KG_GUARD(kg_op_read_template(ctx, in, t));
    KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_TEMPLATE, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(in, &it, &body));
    while (!kg_ttlv_reader_done(&body)) {
        struct kg_attr_in a;

        KG_GUARD(kg_ttlv_read_expect(&body, KG_TAG_ATTRIBUTE, KG_TTLV_STRUCTURE, &it));
        KG_GUARD(kg_attr_read(&body, &it, true, &a));
        KG_GUARD(kg_op_template_add(t, &a));
        given++;
    }
    KG_GUARD(kg_ttlv_reader_finish(in));
    if (given == 0) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("a Template holds at least one Attribute");
        return KG_RESULT_ERROR;
    }
    if (t->ref_templates != 0 || (t->object_type != 0 && t->object_type != KG_OBJ_TEMPLATE) ||
        t->has_certificate_type) {
        /* Copied from other templates, or a type it cannot have: a
         * template is what its own request says, nothing more. */
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("a Template names no other template, object type or certificate type");
        return KG_RESULT_ERROR;
    }
    for (uint32_t i = 0; i < t->extra_count; i++) {
        named |= strcmp(t->extra[i].name, "Name") == 0;
    }
    if (!named) {
        /* Only a Name lets a Template-Attribute refer to it (2.2.6). */
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("a Template needs a Name");
        return KG_RESULT_ERROR;
    }
    return kg_op_template_check_version(ctx, t);
}

kg_result kg_op_register_template_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                        struct kg_policy_request *req)
{
    struct kg_template *t = calloc(1, sizeof(*t));
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(t != NULL, KG_ERR_NOMEM);
    rc = kg_template_read(ctx, in, t);
    /* No key: create.object_types alone judges it; what it gives is
     * judged when a Create names it, as if the client had said it. */
    req->object_type = KG_OBJ_TEMPLATE;
    req->algorithm = 0;
    req->length = 0;
    req->has_usage_mask = false;
    free(t);
    return rc;
}

static kg_result kg_template_insert(struct kg_store *w, const struct kg_op_ctx *ctx, struct kg_object *obj,
                                    const struct kg_template *t)
{
    KG_GUARD(kg_op_insert_new(w, ctx, obj));
    return kg_op_put_extras(w, obj->uid, t->extra, t->extra_count);
}

kg_result kg_op_register_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_template *t = calloc(1, sizeof(*t));
    struct kg_object *obj = calloc(1, sizeof(*obj));
    struct kg_store *w;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_ENSURE(rc, t != NULL && obj != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_template_read(ctx, in, t));
    obj->object_type = KG_OBJ_TEMPLATE;
    obj->algorithm = t->has_algorithm ? t->algorithm : 0;
    obj->length = t->has_length ? t->length : 0;
    obj->usage_mask = t->has_usage_mask ? t->usage_mask : 0;
    obj->storage = KG_P11_STORED_PUBLIC; /* no blob: nothing secret, nothing to seal */
    KG_GOTO_GUARD(rc, kg_op_new_uid(obj->uid));
    /* Durability: the response leaves once the commit holding it has. */
    KG_GOTO_GUARD(rc, kg_change_begin(ctx->gw->committer, NULL, &w));
    KG_GOTO_GUARD(rc, kg_change_end(ctx->gw->committer, kg_template_insert(w, ctx, obj, t)));
    memcpy(ctx->audit_uid, obj->uid, sizeof(obj->uid));
    ctx->audit_note = "template";
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, KG_UID_LEN));
out:
    free(obj);
    free(t);
    return rc;
}

/* ---- Get, and what a Template is not -------------------------------------- */

kg_result kg_op_template_no_lifecycle(const struct kg_object *obj, const char *what)
{
    if (obj->object_type == KG_OBJ_TEMPLATE) {
        kg_error_set(KG_ERR_ILLEGAL_OPERATION, __FILE__, __LINE__);
        kg_error_detail("a Template is not %s: it has no key", what);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

struct kg_template_out {
    struct kg_ttlv_writer *out;
    const struct kg_op_ctx *ctx;
    kg_result rc;
};

/* One row of the template, if it is one of its attributes (not its Initial
 * or Last Change Date, nor anything else only the server set on it). */
static bool kg_template_write_fn(void *arg, const struct kg_attr *row)
{
    struct kg_template_out *o = arg;
    const struct kg_attr_def *def = kg_attr_lookup(row->name, (uint32_t)strlen(row->name));

    if (def == NULL || !(def->flags & KG_ATTR_CLIENT_SET)) {
        return true;
    }
    o->rc = kg_attr_write_for(o->out, row->name, row->index, row->value, row->value_len, o->ctx->version.major,
                              o->ctx->version.minor);
    return kg_ok(o->rc);
}

kg_result kg_op_get_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    static const char *const derived[] = { "Cryptographic Algorithm", "Cryptographic Length",
                                           "Cryptographic Usage Mask" };
    const struct kg_object *obj = &ctx->object;
    struct kg_template_out o = { .out = out, .ctx = ctx, .rc = KG_RESULT_OK };
    bool written;

    KG_GUARD(kg_op_skip_uid(in));
    if (!kg_ttlv_reader_done(in)) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("a Template has no key to format or wrap");
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_template_no_2x(ctx));
    KG_ENSURE(obj->state != KG_STATE_DESTROYED && obj->state != KG_STATE_DESTROYED_COMPROMISED,
              KG_ERR_OBJECT_DESTROYED);
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, obj->object_type));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, obj->uid, (uint32_t)strlen(obj->uid)));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_TEMPLATE));
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
        KG_GUARD(kg_attr_write_derived(out, obj, derived[i], &written));
    }
    KG_GUARD(kg_store_each_attr(ctx->store, obj->uid, NULL, kg_template_write_fn, &o));
    KG_GUARD(o.rc);
    return kg_ttlv_end_struct(out);
}
