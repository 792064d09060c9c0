/*
 * kg_keys_report.c - building the rows and summary of `kmipgw keys report`
 * (kg_keys_report.h).
 *
 * Paging is by offset, oldest first: objects are never deleted from the
 * store (Destroy erases the blob and keeps the row), so an offset into the
 * creation order stays valid while the gateway adds keys behind it.
 */
#include "kg_keys_report.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kg_kmip.h"
#include "kg_kmip_tags.h"
#include "kg_ttlv.h"

const char *const kg_keys_tag_names[KG_KEYS_TAG_COUNT] = { "x-Component", "x-Name", "x-Identifier" };

#define KG_KEYS_DAY 86400

/* ---- one object's attribute rows ---- */

/* What one kg_store_each_attr pass collects; the first failure stops it. */
struct kg_keys_attrs {
    struct kg_keys_row *row;
    bool has_initial, has_original;
    int64_t initial, original;
    bool nomem;
};

/* The single item a stored value is (kg_store.h: the encoded Attribute
 * Value), or false when the row is not one well-formed item. */
static bool kg_keys_value(const struct kg_attr *a, struct kg_ttlv_item *it)
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r;

    kg_ttlv_budget_init(&b, NULL);
    return kg_ok(kg_ttlv_reader_init(&r, a->value, a->value_len, &b)) && kg_ok(kg_ttlv_read(&r, it)) &&
           kg_ok(kg_ttlv_reader_finish(&r));
}

/* A tag's value as a heap string: "" when not a Text String (the gateway
 * lets clients give custom attributes any type; such a value is not a
 * name to show). The previous instance is replaced: the last one wins. */
static bool kg_keys_set_tag(char **slot, const struct kg_ttlv_item *it, bool readable)
{
    const char *text = "";
    uint32_t len = 0;
    char *copy;

    if (!readable || kg_failed(kg_ttlv_get_text(it, &text, &len))) {
        text = "";
        len = 0;
    }
    copy = malloc((size_t)len + 1);
    if (copy == NULL) {
        return false;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    free(*slot);
    *slot = copy;
    return true;
}

static bool kg_keys_attr_fn(void *arg, const struct kg_attr *a)
{
    struct kg_keys_attrs *k = arg;
    struct kg_ttlv_item it;
    bool readable = kg_keys_value(a, &it);

    for (size_t t = 0; t < KG_KEYS_TAG_COUNT; t++) {
        if (strcmp(a->name, kg_keys_tag_names[t]) == 0) {
            k->nomem = !kg_keys_set_tag(&k->row->tags[t], &it, readable);
            return !k->nomem;
        }
    }
    if (!readable) {
        return true; /* not ours to judge here: Get Attributes reports it */
    }
    if (strcmp(a->name, "Fresh") == 0) {
        /* A Fresh that is not a Boolean reads as False, the safe side:
         * never-fetched keys are candidates for deletion. */
        k->row->has_fresh = true;
        k->row->fresh = false;
        if (kg_failed(kg_ttlv_get_bool(&it, &k->row->fresh))) {
            k->row->fresh = false;
        }
    } else if (strcmp(a->name, "Initial Date") == 0 && !k->has_initial) {
        k->has_initial = kg_ok(kg_ttlv_get_datetime(&it, &k->initial));
    } else if (strcmp(a->name, "Original Creation Date") == 0 && !k->has_original) {
        k->has_original = kg_ok(kg_ttlv_get_datetime(&it, &k->original));
    }
    kg_error_clear();
    return true;
}

/* ---- flags ---- */

void kg_keys_row_flag(struct kg_keys_row *row, const struct kg_keys_report_opts *opts)
{
    int64_t cutoff = opts->now - (int64_t)opts->unused_days * KG_KEYS_DAY;

    row->destroyed = row->state == KG_STATE_DESTROYED || row->state == KG_STATE_DESTROYED_COMPROMISED;
    row->compromised = row->state == KG_STATE_COMPROMISED || row->state == KG_STATE_DESTROYED_COMPROMISED;
    if (row->destroyed) {
        row->never_fetched = false;
        row->unused = false;
        return;
    }
    /* Fresh is the store's own record (cleared by the first Get), so it
     * outlives rotated audit logs; only without it does the audit decide. */
    row->never_fetched = row->has_fresh ? row->fresh : !row->has_last_use;
    if (row->has_last_use) {
        row->unused = row->last_use <= cutoff;
    } else {
        /* Never used: as old as the key. No creation date: old enough. */
        row->unused = !row->has_created || row->created <= cutoff;
    }
}

/* ---- building ---- */

static kg_result kg_keys_row_load(struct kg_store *store, const char *uid, const struct kg_keys_uses *uses,
                                  const struct kg_keys_report_opts *opts, struct kg_keys_row *row)
{
    struct kg_object *obj;
    struct kg_keys_attrs k = { .row = row };
    kg_result rc = KG_RESULT_OK;

    /* struct kg_object carries the wrapped blob (a few KiB): heap, not
     * stack, and wiped although wrapped bytes are no secret. */
    obj = calloc(1, sizeof(*obj));
    KG_ENSURE(obj != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_store_get_object(store, uid, obj));
    memcpy(row->uid, obj->uid, sizeof(row->uid));
    row->object_type = obj->object_type;
    row->algorithm = obj->algorithm;
    row->length = obj->length;
    row->state = obj->state;
    memcpy(row->group, obj->owner_group, sizeof(row->group));
    for (size_t t = 0; t < KG_KEYS_TAG_COUNT; t++) {
        row->tags[t] = calloc(1, 1);
        KG_GOTO_ENSURE(rc, row->tags[t] != NULL, KG_ERR_NOMEM);
    }
    KG_GOTO_GUARD(rc, kg_store_each_attr(store, uid, NULL, kg_keys_attr_fn, &k));
    KG_GOTO_ENSURE(rc, !k.nomem, KG_ERR_NOMEM);
    row->has_created = k.has_initial || k.has_original;
    row->created = k.has_initial ? k.initial : k.original;
    row->has_last_use = uses != NULL && kg_keys_uses_get(uses, row->uid, &row->last_use);
    kg_keys_row_flag(row, opts);
out:
    OPENSSL_cleanse(obj, sizeof(*obj));
    free(obj);
    return rc;
}

static kg_result kg_keys_report_add(struct kg_keys_report *r, struct kg_keys_row **row)
{
    if (r->count == r->cap) {
        size_t cap = r->cap == 0 ? KG_KEYS_PAGE : 2 * r->cap;
        struct kg_keys_row *bigger;

        KG_ENSURE(cap <= SIZE_MAX / sizeof(*bigger), KG_ERR_NOMEM);
        bigger = realloc(r->rows, cap * sizeof(*bigger));
        KG_ENSURE(bigger != NULL, KG_ERR_NOMEM);
        r->rows = bigger;
        r->cap = cap;
    }
    *row = &r->rows[r->count++];
    memset(*row, 0, sizeof(**row));
    return KG_RESULT_OK;
}

static int kg_keys_count_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kg_keys_count *)a)->name, ((const struct kg_keys_count *)b)->name);
}

/* Totals by state and by x-Component (sorted, runs counted: hostile tags
 * can make many distinct values, and sorting keeps that n log n). */
static kg_result kg_keys_summarise(struct kg_keys_report *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->count; i++) {
        const struct kg_keys_row *row = &r->rows[i];

        r->by_state[row->state < sizeof(r->by_state) / sizeof(r->by_state[0]) ? row->state : 0]++;
        r->never_fetched += row->never_fetched;
        r->unused += row->unused;
        r->destroyed += row->destroyed;
        r->compromised += row->compromised;
    }
    if (r->count == 0) {
        return KG_RESULT_OK;
    }
    r->components = calloc(r->count, sizeof(*r->components));
    KG_ENSURE(r->components != NULL, KG_ERR_NOMEM);
    for (size_t i = 0; i < r->count; i++) {
        r->components[i] = (struct kg_keys_count){ r->rows[i].tags[KG_KEYS_TAG_COMPONENT], 1 };
    }
    qsort(r->components, r->count, sizeof(*r->components), kg_keys_count_cmp);
    for (size_t i = 1; i < r->count; i++) {
        if (strcmp(r->components[i].name, r->components[n].name) == 0) {
            r->components[n].count++;
        } else {
            r->components[++n] = r->components[i];
        }
    }
    r->component_count = n + 1;
    return KG_RESULT_OK;
}

kg_result kg_keys_report_build(struct kg_store *store, const struct kg_keys_uses *uses,
                               const struct kg_keys_report_opts *opts, struct kg_keys_report *out)
{
    char (*page)[KG_UID_LEN + 1] = NULL;
    struct kg_store_locate q;
    uint32_t got = 0;
    kg_result rc = KG_RESULT_OK;

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    q.owner_group = opts->group;
    q.order = KG_STORE_ORDER_OLDEST;
    /* Archived objects too: they are keys the site still keeps. */
    q.storage_mask = KG_STORAGE_ON_LINE | KG_STORAGE_ARCHIVAL;
    q.max_items = KG_KEYS_PAGE;
    page = calloc(KG_KEYS_PAGE, sizeof(*page));
    KG_ENSURE(page != NULL, KG_ERR_NOMEM);
    do {
        KG_GOTO_GUARD(rc, kg_store_locate(store, &q, page, KG_KEYS_PAGE, &got));
        for (uint32_t i = 0; i < got; i++) {
            struct kg_keys_row *row;

            KG_GOTO_GUARD(rc, kg_keys_report_add(out, &row));
            KG_GOTO_GUARD(rc, kg_keys_row_load(store, page[i], uses, opts, row));
        }
        KG_GOTO_ENSURE(rc, UINT32_MAX - q.offset >= got, KG_ERR_INTERNAL);
        q.offset += got;
    } while (got == KG_KEYS_PAGE);
    rc = kg_keys_summarise(out);
out:
    free(page);
    return rc;
}

void kg_keys_report_cleanup(struct kg_keys_report *r)
{
    for (size_t i = 0; i < r->count; i++) {
        for (size_t t = 0; t < KG_KEYS_TAG_COUNT; t++) {
            free(r->rows[i].tags[t]);
        }
    }
    free(r->rows);
    free(r->components);
    memset(r, 0, sizeof(*r));
}
