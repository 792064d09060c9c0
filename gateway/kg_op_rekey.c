/*
 * kg_op_rekey.c - Re-key (KMIP 1.4 section 4.4), and what it shares with
 * Create Key Pair and Re-key Key Pair (kg_op_keypair.c): Link rows, a new
 * object's attribute rows, and the replacement's copied attributes and
 * offset dates (Tables 172, 173, 176, 177).
 *
 * A replacement is generated in the HSM like a new key and never derived
 * from the old one's material; only metadata is copied. The old key keeps
 * its state: the client revokes it when it is ready to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_attr.h"
#include "kg_commit.h"
#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_p11_crypto.h"

/* Most attribute rows a re-keyed object may carry; more is refused rather
 * than copied in part. */
#define KG_REKEY_MAX_ROWS 256u

kg_result kg_op_link_store(struct kg_store *w, const char *uid, uint32_t link_type, const char *target)
{
    struct kg_ttlv_writer v;
    int32_t index;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_ttlv_writer_init(&v, 128, false));
    KG_GOTO_GUARD(rc, kg_ttlv_begin_struct(&v, KG_TAG_ATTRIBUTE_VALUE));
    KG_GOTO_GUARD(rc, kg_ttlv_write_enum(&v, KG_TAG_LINK_TYPE, link_type));
    KG_GOTO_GUARD(rc, kg_ttlv_write_text(&v, KG_TAG_LINKED_OBJECT_IDENTIFIER, target, (uint32_t)strlen(target)));
    KG_GOTO_GUARD(rc, kg_ttlv_end_struct(&v));
    KG_GOTO_GUARD(rc, kg_store_add_attr(w, uid, "Link", v.buf, v.len, &index));
out:
    kg_ttlv_writer_cleanup(&v);
    return rc;
}

/* One stored attribute value (an encoded Attribute Value item) as an item. */
static kg_result kg_rekey_value(const struct kg_attr *a, struct kg_ttlv_budget *b, struct kg_ttlv_reader *r,
                                struct kg_ttlv_item *it)
{
    kg_ttlv_budget_init(b, NULL);
    KG_GUARD(kg_ttlv_reader_init(r, a->value, a->value_len, b));
    KG_GUARD(kg_ttlv_read(r, it));
    return KG_RESULT_OK;
}

/* Decode a stored Link value; false if it is not a well-formed Link. */
static bool kg_rekey_link_of(const struct kg_attr *a, uint32_t *type, char uid[KG_UID_LEN + 1])
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item it, t, id;
    const char *text;
    uint32_t len;

    if (kg_failed(kg_rekey_value(a, &b, &r, &it)) || it.type != KG_TTLV_STRUCTURE ||
        kg_failed(kg_ttlv_child(&r, &it, &c)) ||
        kg_failed(kg_ttlv_read_expect(&c, KG_TAG_LINK_TYPE, KG_TTLV_ENUMERATION, &t)) ||
        kg_failed(kg_ttlv_read_expect(&c, KG_TAG_LINKED_OBJECT_IDENTIFIER, KG_TTLV_TEXT_STRING, &id)) ||
        kg_failed(kg_ttlv_get_enum(&t, type)) || kg_failed(kg_ttlv_get_text(&id, &text, &len)) ||
        len != KG_UID_LEN) {
        kg_error_clear();
        return false;
    }
    memcpy(uid, text, len);
    uid[len] = '\0';
    return true;
}

struct kg_rekey_find {
    uint32_t type;
    bool found;
    char uid[KG_UID_LEN + 1];
};

static bool kg_rekey_find_fn(void *arg, const struct kg_attr *a)
{
    struct kg_rekey_find *f = arg;
    uint32_t type = 0;
    char uid[KG_UID_LEN + 1];

    if (kg_rekey_link_of(a, &type, uid) && type == f->type) {
        memcpy(f->uid, uid, sizeof(uid));
        f->found = true;
        return false;
    }
    return true;
}

kg_result kg_op_link_find(struct kg_store *s, const char *uid, uint32_t link_type, char out[KG_UID_LEN + 1])
{
    struct kg_rekey_find f = { .type = link_type };

    KG_GUARD(kg_store_each_attr(s, uid, "Link", kg_rekey_find_fn, &f));
    if (!f.found) {
        kg_error_set(KG_ERR_NOT_FOUND, __FILE__, __LINE__);
        kg_error_detail("object %s has no Link of type 0x%X", uid, link_type);
        return KG_RESULT_ERROR;
    }
    memcpy(out, f.uid, KG_UID_LEN + 1);
    return KG_RESULT_OK;
}

kg_result kg_op_put_extras(struct kg_store *w, const char *uid, const struct kg_attr_in *extras, uint32_t n)
{
    int32_t index;

    for (uint32_t i = 0; i < n; i++) {
        /* A given single-valued attribute replaces a copied one. */
        if (!(extras[i].def->flags & KG_ATTR_MULTI)) {
            KG_GUARD(kg_store_delete_attr_all(w, uid, extras[i].name));
        }
        KG_GUARD(kg_store_add_attr(w, uid, extras[i].name, extras[i].value.raw, extras[i].value.raw_len, &index));
    }
    return KG_RESULT_OK;
}

struct kg_rekey_date {
    bool found;
    int64_t when;
};

static bool kg_rekey_date_fn(void *arg, const struct kg_attr *a)
{
    struct kg_rekey_date *d = arg;
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    if (kg_ok(kg_rekey_value(a, &b, &r, &it)) && kg_ok(kg_ttlv_get_datetime(&it, &d->when))) {
        d->found = true;
    }
    kg_error_clear();
    return false;
}

static kg_result kg_rekey_read_date(struct kg_store *s, const char *uid, const char *name, bool *found, int64_t *when)
{
    struct kg_rekey_date d = { 0 };

    KG_GUARD(kg_store_each_attr(s, uid, name, kg_rekey_date_fn, &d));
    *found = d.found;
    *when = d.when;
    return KG_RESULT_OK;
}

kg_result kg_op_settle_state(struct kg_store *w, const struct kg_op_ctx *ctx, struct kg_object *obj)
{
    bool found = false;
    int64_t activation = 0;

    /* An Activation Date already reached makes the key Active at once
     * (KMIP 1.4 section 3.24), as for Create. */
    KG_GUARD(kg_rekey_read_date(w, obj->uid, "Activation Date", &found, &activation));
    obj->state = found && activation <= ctx->now ? KG_STATE_ACTIVE : KG_STATE_PRE_ACTIVE;
    if (obj->state != KG_STATE_PRE_ACTIVE) {
        KG_GUARD(kg_store_set_state(w, obj->uid, obj->state));
    }
    return KG_RESULT_OK;
}

kg_result kg_op_insert_new(struct kg_store *w, const struct kg_op_ctx *ctx, struct kg_object *obj)
{
    snprintf(obj->owner_group, sizeof(obj->owner_group), "%s", ctx->group->name);
    snprintf(obj->creator, sizeof(obj->creator), "%s", ctx->identity->cn ? ctx->identity->cn : "");
    obj->state = KG_STATE_PRE_ACTIVE;
    /* owner_group is final only now: seal here, inside the change (one
     * HSM HMAC while the writer holds the store). */
    KG_GUARD(kg_op_seal(ctx->gw->p11, obj));
    KG_GUARD(kg_store_insert_object(w, obj));
    KG_GUARD(kg_attr_store_date(w, obj->uid, "Initial Date", ctx->now));
    KG_GUARD(kg_attr_store_date(w, obj->uid, "Last Change Date", ctx->now));
    return KG_RESULT_OK;
}

/* ---- copying an old key's attributes to its replacement ---------------- */

struct kg_rekey_rows {
    struct kg_attr *rows;
    uint32_t count;
    uint32_t cap;
    bool overflow;
};

static bool kg_rekey_collect_fn(void *arg, const struct kg_attr *a)
{
    struct kg_rekey_rows *rs = arg;

    if (rs->count == rs->cap) {
        uint32_t cap = rs->cap == 0 ? 16 : rs->cap * 2;
        struct kg_attr *more;

        if (cap > KG_REKEY_MAX_ROWS || (more = realloc(rs->rows, cap * sizeof(*more))) == NULL) {
            rs->overflow = true;
            return false;
        }
        rs->rows = more;
        rs->cap = cap;
    }
    rs->rows[rs->count++] = *a;
    return true;
}

/* Table 173 / 177: set anew, not copied (or handled by the dates below). */
static bool kg_rekey_not_copied(const char *name)
{
    static const char *const skip[] = {
        "Initial Date", "Last Change Date", "Destroy Date", "Compromise Occurrence Date", "Compromise Date",
        "Revocation Reason", "Archive Date", "Link", "Original Creation Date",
        "Activation Date", "Process Start Date", "Protect Stop Date", "Deactivation Date",
        /* The server's own, set anew for the new key (kg_attr_store_new). */
        "Digest", "Random Number Generator", "Fresh", "Lease Time",
        /* A registered key's own form; the replacement is made here. */
        "Key Format Type",
    };

    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        if (strcmp(name, skip[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * The dates of the replacement (Tables 172 and 176). Without an Offset the
 * old dates are copied. With one, the new Activation Date is now + Offset
 * (AT2 = IT2 + Offset) and every other date moves by AT2 - AT1; with no old
 * Activation Date there is no AT1 to measure from, and they are copied.
 * A key pair carries only Activation and Deactivation (Table 176).
 */
static kg_result kg_rekey_dates(struct kg_store *w, const struct kg_op_ctx *ctx, const char *old_uid,
                                const char *new_uid, const struct kg_rekey_args *args)
{
    static const char *const shifted[] = { "Process Start Date", "Protect Stop Date", "Deactivation Date" };
    bool has_at1 = false;
    int64_t at1 = 0;
    int64_t at2 = ctx->now + (int64_t)args->offset;

    KG_GUARD(kg_rekey_read_date(w, old_uid, "Activation Date", &has_at1, &at1));
    if (args->has_offset) {
        KG_GUARD(kg_attr_store_date(w, new_uid, "Activation Date", at2));
    } else if (has_at1) {
        KG_GUARD(kg_attr_store_date(w, new_uid, "Activation Date", at1));
    }
    for (size_t i = 0; i < sizeof(shifted) / sizeof(shifted[0]); i++) {
        bool found = false;
        int64_t when = 0;

        if (args->pair && i < 2) {
            continue;
        }
        KG_GUARD(kg_rekey_read_date(w, old_uid, shifted[i], &found, &when));
        if (!found) {
            continue;
        }
        if (args->has_offset && has_at1) {
            when += at2 - at1;
        }
        KG_GUARD(kg_attr_store_date(w, new_uid, shifted[i], when));
    }
    return KG_RESULT_OK;
}

kg_result kg_op_rekey_rows(struct kg_store *w, const struct kg_op_ctx *ctx, const char *old_uid,
                           struct kg_object *fresh, const struct kg_rekey_args *args)
{
    struct kg_rekey_rows rs = { 0 };
    int32_t index;
    bool names = false;
    kg_result rc = KG_RESULT_OK;

    KG_GOTO_GUARD(rc, kg_store_each_attr(w, old_uid, NULL, kg_rekey_collect_fn, &rs));
    if (rs.overflow) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("object %s has more attributes than a re-key copies (%u)", old_uid, KG_REKEY_MAX_ROWS);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    for (uint32_t i = 0; i < rs.count; i++) {
        const struct kg_attr *a = &rs.rows[i];

        if (kg_rekey_not_copied(a->name)) {
            continue;
        }
        /* Name moves to the replacement (Table 173); Usage Limits are copied
         * whole; every other attribute is copied as it is. */
        names |= strcmp(a->name, "Name") == 0;
        KG_GOTO_GUARD(rc, kg_store_add_attr(w, fresh->uid, a->name, a->value, a->value_len, &index));
    }
    if (names) {
        KG_GOTO_GUARD(rc, kg_store_delete_attr_all(w, old_uid, "Name"));
    }
    KG_GOTO_GUARD(rc, kg_rekey_dates(w, ctx, old_uid, fresh->uid, args));
    KG_GOTO_GUARD(rc, kg_op_put_extras(w, fresh->uid, args->extras, args->extra_count));
    KG_GOTO_GUARD(rc, kg_op_link_store(w, fresh->uid, KG_LINK_REPLACED_OBJECT, old_uid));
    KG_GOTO_GUARD(rc, kg_op_link_store(w, old_uid, KG_LINK_REPLACEMENT_OBJECT, fresh->uid));
    KG_GOTO_GUARD(rc, kg_attr_store_date(w, old_uid, "Last Change Date", ctx->now));
    KG_GOTO_GUARD(rc, kg_op_settle_state(w, ctx, fresh));
out:
    free(rs.rows);
    return rc;
}

kg_result kg_op_rekey_check_old(const struct kg_object *old, uint32_t object_type)
{
    if (old->object_type != object_type) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("object %s is not a %s", old->uid,
                        object_type == KG_OBJ_SYMMETRIC_KEY ? "symmetric key" : "private key");
        return KG_RESULT_ERROR;
    }
    if (old->state == KG_STATE_DESTROYED || old->state == KG_STATE_DESTROYED_COMPROMISED) {
        /* Its metadata remains, but there is nothing to replace. */
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_error_detail("object %s is destroyed", old->uid);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_op_read_offset(struct kg_ttlv_reader *in, struct kg_rekey_args *args)
{
    struct kg_ttlv_item it;

    KG_GUARD(kg_ttlv_read_optional(in, KG_TAG_OFFSET, KG_TTLV_INTERVAL, &it, &args->has_offset));
    if (args->has_offset) {
        KG_GUARD(kg_ttlv_get_interval(&it, &args->offset));
    }
    return KG_RESULT_OK;
}

void kg_op_rekey_policy_facts(const struct kg_object *old, struct kg_policy_request *req)
{
    req->object_type = old->object_type;
    req->algorithm = old->algorithm;
    req->length = old->length;
    req->usage_mask = old->usage_mask;
    req->has_usage_mask = true;
    req->objects_made = 1;
}

kg_result kg_op_rekey_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req)
{
    (void)in;
    kg_op_rekey_policy_facts(&ctx->object, req);
    return KG_RESULT_OK;
}

struct kg_rekey_job {
    struct kg_op_ctx *ctx;
    struct kg_object *fresh;
    struct kg_rekey_args *args;
};

static kg_result kg_rekey_apply(struct kg_store *w, struct kg_rekey_job *job)
{
    struct kg_attr_new server_set = { .now = job->ctx->now, .generated = true,
                                      .has_digest = job->fresh->blob.has_digest };

    memcpy(server_set.digest, job->fresh->blob.digest, sizeof(server_set.digest));
    KG_GUARD(kg_op_insert_new(w, job->ctx, job->fresh));
    KG_GUARD(kg_op_rekey_rows(w, job->ctx, job->ctx->object.uid, job->fresh, job->args));
    KG_GUARD(kg_attr_store_new(w, job->fresh->uid, &server_set));
    return KG_RESULT_OK;
}

/*
 * New key material of the old key's kind and length, in the HSM: wrapped
 * under the MWK, or a resident token object whose CKA_ID is the new UID.
 */
static kg_result kg_rekey_material(struct kg_op_ctx *ctx, enum kg_p11_key_kind kind, bool resident,
                                   struct kg_object *fresh)
{
    uint32_t bits = (uint32_t)fresh->length;

    KG_ENSURE(fresh->length > 0, KG_ERR_INVALID_FIELD);
    if (kind == KG_P11_KEY_AES) {
        KG_GUARD(kg_op_check_aes(fresh->algorithm, fresh->length));
    }
    if (resident) {
        KG_GUARD(kg_op_check_undoable(ctx));
        fresh->storage = KG_P11_STORED_RESIDENT;
        return kg_p11_generate_secret(ctx->gw->p11, kind, bits, kg_p11_uses_of_mask((uint32_t)fresh->usage_mask),
                                      fresh->uid, &fresh->blob);
    }
    fresh->storage = KG_P11_STORED_WRAPPED;
    if (kind == KG_P11_KEY_AES) {
        return kg_p11_generate_aes(ctx->gw->p11, bits, &fresh->blob);
    }
    /* A wrapped secret's flags are set each time it is unwrapped for a use. */
    return kg_p11_generate_secret(ctx->gw->p11, kind, bits, 0, NULL, &fresh->blob);
}

kg_result kg_op_rekey(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_template *t = NULL;
    struct kg_object *fresh = NULL;
    struct kg_rekey_args args = { 0 };
    struct kg_store *w;
    const struct kg_object *old = &ctx->object;
    struct kg_p11_key_ref ref;
    bool resident = false;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_op_skip_uid(in));
    KG_GUARD(kg_op_read_offset(in, &args));
    t = calloc(1, sizeof(*t));
    fresh = calloc(1, sizeof(*fresh));
    KG_GOTO_ENSURE(rc, t != NULL && fresh != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_op_read_template(ctx, in, t));
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(in));
    /* The replacement is the same kind of key: the template may not change it. */
    KG_GOTO_ENSURE(rc, !t->has_algorithm || t->algorithm == old->algorithm, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, !t->has_length || t->length == old->length, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, t->object_type == 0 || t->object_type == KG_OBJ_SYMMETRIC_KEY, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_op_rekey_check_old(old, KG_OBJ_SYMMETRIC_KEY));
    KG_GOTO_GUARD(rc, kg_op_key_ref(old, &ref));

    fresh->object_type = KG_OBJ_SYMMETRIC_KEY;
    fresh->algorithm = old->algorithm;
    fresh->length = old->length;
    fresh->usage_mask = t->has_usage_mask ? t->usage_mask : old->usage_mask;
    KG_GOTO_GUARD(rc, kg_op_new_uid(fresh->uid));
    /* Residency follows the old key: a resident key is replaced by one. */
    resident = old->storage == KG_P11_STORED_RESIDENT;
    KG_GOTO_GUARD(rc, kg_rekey_material(ctx, ref.kind, resident, fresh));

    args.extras = t->extra;
    args.extra_count = t->extra_count;
    struct kg_rekey_job job = { .ctx = ctx, .fresh = fresh, .args = &args };
    rc = kg_change_begin(ctx->gw->committer, ctx->object.uid, &w);
    if (kg_ok(rc)) {
        rc = kg_change_end(ctx->gw->committer, kg_rekey_apply(w, &job));
    }
    if (kg_failed(rc) && resident) {
        struct kg_p11_key_ref made = { .kind = ref.kind, .storage = KG_P11_STORED_RESIDENT, .resident_id = fresh->uid };
        int err = kg_errno();

        /* No row names the new token object: remove it, keep the store's error. */
        if (kg_failed(kg_p11_resident_destroy(ctx->gw->p11, &made))) {
            kg_log("error", "resident key %s could not be removed after a failed store", fresh->uid);
        }
        kg_error_set(err, __FILE__, __LINE__);
        goto out;
    }
    KG_GOTO_GUARD(rc, rc);
    ctx->audit_note = resident ? "re-key, resident" : "re-key";
    /* Section 4.4: the replacement's UID becomes the ID Placeholder. The
     * dispatcher leaves it alone for operations that target an object. */
    memcpy(ctx->id_placeholder, fresh->uid, sizeof(fresh->uid));

    KG_GOTO_GUARD(rc, kg_ttlv_write_text(out, KG_TAG_UNIQUE_IDENTIFIER, fresh->uid, KG_UID_LEN));
out:
    free(t);
    free(fresh);
    return rc;
}
