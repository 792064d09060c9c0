/* kg_attr.c - the attribute table and attribute TTLV forms. */
#include "kg_attr.h"

#include <string.h>

#include "kg_kmip.h"

#define SET KG_ATTR_CLIENT_SET
#define ADD KG_ATTR_CLIENT_ADD
#define MOD KG_ATTR_CLIENT_MODIFY
#define DEL KG_ATTR_CLIENT_DELETE
#define EDITABLE (SET | ADD | MOD | DEL)

/* KMIP 1.4 section 3, with who may change what (each attribute's "Rules"
 * table). Attributes not listed are refused rather than stored blindly. */
static const struct kg_attr_def kg_attr_defs[] = {
    { "Unique Identifier", KG_TTLV_TEXT_STRING, KG_ATTR_DERIVED },
    { "Object Type", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED },
    { "State", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED },
    { "Cryptographic Algorithm", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED },
    { "Cryptographic Length", KG_TTLV_INTEGER, KG_ATTR_DERIVED },
    { "Cryptographic Usage Mask", KG_TTLV_INTEGER, KG_ATTR_DERIVED },
    { "Name", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE },
    { "Cryptographic Parameters", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE },
    { "Operation Policy Name", KG_TTLV_TEXT_STRING, EDITABLE },
    { "Usage Limits", KG_TTLV_STRUCTURE, SET | ADD | MOD },
    { "Initial Date", KG_TTLV_DATE_TIME, 0 },
    { "Activation Date", KG_TTLV_DATE_TIME, SET | ADD | MOD },
    { "Process Start Date", KG_TTLV_DATE_TIME, SET | ADD | MOD },
    { "Protect Stop Date", KG_TTLV_DATE_TIME, SET | ADD | MOD },
    { "Deactivation Date", KG_TTLV_DATE_TIME, SET | ADD | MOD },
    { "Destroy Date", KG_TTLV_DATE_TIME, 0 },
    { "Compromise Occurrence Date", KG_TTLV_DATE_TIME, 0 },
    { "Compromise Date", KG_TTLV_DATE_TIME, 0 },
    { "Revocation Reason", KG_TTLV_STRUCTURE, 0 },
    { "Archive Date", KG_TTLV_DATE_TIME, 0 },
    { "Object Group", KG_TTLV_TEXT_STRING, KG_ATTR_MULTI | EDITABLE },
    { "Fresh", KG_TTLV_BOOLEAN, SET | ADD | MOD },
    { "Link", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE },
    { "Application Specific Information", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE },
    { "Contact Information", KG_TTLV_TEXT_STRING, EDITABLE },
    { "Last Change Date", KG_TTLV_DATE_TIME, 0 },
    { "Original Creation Date", KG_TTLV_DATE_TIME, 0 },
    { "Description", KG_TTLV_TEXT_STRING, EDITABLE },
    { "Comment", KG_TTLV_TEXT_STRING, EDITABLE },
};

/* Custom attributes: "x-" names belong to clients; "y-" names are the
 * server's (KMIP 1.4 section 3.39), so clients may read but not set them. */
static const struct kg_attr_def kg_attr_client_custom = { "x-", 0, KG_ATTR_MULTI | EDITABLE };
static const struct kg_attr_def kg_attr_server_custom = { "y-", 0, KG_ATTR_MULTI };

const char *const kg_attr_derived_names[] = {
    "Unique Identifier", "Object Type", "State",
    "Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask",
};
const uint32_t kg_attr_derived_count = sizeof(kg_attr_derived_names) / sizeof(kg_attr_derived_names[0]);

const struct kg_attr_def *kg_attr_lookup(const char *name, uint32_t len)
{
    if (len > 2 && name[1] == '-' && (name[0] == 'x' || name[0] == 'X')) {
        return &kg_attr_client_custom;
    }
    if (len > 2 && name[1] == '-' && (name[0] == 'y' || name[0] == 'Y')) {
        return &kg_attr_server_custom;
    }
    for (size_t i = 0; i < sizeof(kg_attr_defs) / sizeof(kg_attr_defs[0]); i++) {
        if (strlen(kg_attr_defs[i].name) == len && memcmp(kg_attr_defs[i].name, name, len) == 0) {
            return &kg_attr_defs[i];
        }
    }
    return NULL;
}

kg_result kg_attr_read(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item, bool need_value,
                       struct kg_attr_in *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    const char *name;
    uint32_t name_len;
    bool present = false;

    memset(out, 0, sizeof(*out));
    KG_GUARD(kg_ttlv_child(parent, item, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &name, &name_len));
    KG_ENSURE(name_len > 0 && name_len <= KG_ATTR_NAME_MAX, KG_ERR_BAD_ATTRIBUTE);
    memcpy(out->name, name, name_len);
    out->name[name_len] = '\0';
    out->def = kg_attr_lookup(name, name_len);
    if (out->def == NULL) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("unknown attribute '%s'", out->name);
        return KG_RESULT_ERROR;
    }
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_ATTRIBUTE_INDEX, KG_TTLV_INTEGER, &it, &out->has_index));
    if (out->has_index) {
        KG_GUARD(kg_ttlv_get_int(&it, &out->index));
        KG_ENSURE(out->index >= 0, KG_ERR_BAD_ATTRIBUTE);
    }
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_ATTRIBUTE_VALUE, KG_TTLV_ANY_TYPE, &out->value, &present));
    out->has_value = present;
    KG_GUARD(kg_ttlv_reader_finish(&r));
    if (need_value && !present) {
        kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
        kg_error_detail("attribute '%s' has no value", out->name);
        return KG_RESULT_ERROR;
    }
    if (present) {
        if (out->def->type != 0 && out->value.type != out->def->type) {
            kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("attribute '%s' has the wrong type", out->name);
            return KG_RESULT_ERROR;
        }
        KG_ENSURE(out->value.raw_len <= KG_ATTR_VALUE_MAX, KG_ERR_BAD_ATTRIBUTE);
    }
    return KG_RESULT_OK;
}

kg_result kg_attr_write(struct kg_ttlv_writer *w, const char *name, int32_t index, const uint8_t *value,
                        uint32_t value_len)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    if (index > 0) {
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_INDEX, index));
    }
    KG_GUARD(kg_ttlv_write_raw(w, value, value_len));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

static kg_result kg_attr_begin(struct kg_ttlv_writer *w, const char *name)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    return KG_RESULT_OK;
}

kg_result kg_attr_write_derived(struct kg_ttlv_writer *w, const struct kg_object *obj, const char *name,
                                bool *written)
{
    *written = true;
    if (strcmp(name, "Unique Identifier") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_VALUE, obj->uid, (uint32_t)strlen(obj->uid)));
    } else if (strcmp(name, "Object Type") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->object_type));
    } else if (strcmp(name, "State") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->state));
    } else if (strcmp(name, "Cryptographic Algorithm") == 0 && obj->algorithm != 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->algorithm));
    } else if (strcmp(name, "Cryptographic Length") == 0 && obj->length != 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, obj->length));
    } else if (strcmp(name, "Cryptographic Usage Mask") == 0 && obj->usage_mask != 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, obj->usage_mask));
    } else {
        *written = false;
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

kg_result kg_attr_store_date(struct kg_store *store, const char *uid, const char *name, int64_t when)
{
    struct kg_ttlv_writer w;
    kg_result rc = KG_RESULT_OK;
    int32_t index;

    KG_GUARD(kg_ttlv_writer_init(&w, 16, false));
    KG_GOTO_GUARD(rc, kg_ttlv_write_datetime(&w, KG_TAG_ATTRIBUTE_VALUE, when));
    KG_GOTO_GUARD(rc, kg_store_delete_attr_all(store, uid, name));
    KG_GOTO_GUARD(rc, kg_store_add_attr(store, uid, name, w.buf, w.len, &index));
out:
    kg_ttlv_writer_cleanup(&w);
    return rc;
}
