/* kg_kmip2.c - KMIP 2.x payloads to and from the 1.4 forms (see kg_kmip2.h). */
#include "kg_kmip2.h"

#include <string.h>

#include "kg_attr.h"
#include "kg_kmip.h"

/* The tag of standard attribute `name` (KMIP 2.x names every attribute's
 * tag as the attribute), or 0. */
static uint32_t kg_kmip2_tag_of(const char *name)
{
    const struct kg_tag_name *t;

    for (size_t i = 0; (t = kg_kmip_tag_at(i)) != NULL; i++) {
        if (strcmp(t->name, name) == 0) {
            return t->tag;
        }
    }
    return 0;
}

/* A custom attribute name: "x-" or "y-" (either case, as kg_attr_lookup
 * takes them from 1.x clients) and at least one more character. */
static bool kg_kmip2_is_custom(const char *name)
{
    return (name[0] == 'x' || name[0] == 'y' || name[0] == 'X' || name[0] == 'Y') && name[1] == '-' &&
           name[2] != '\0';
}

/* A stored name of another vendor's attribute ("<vendor>:<name>",
 * kg_attr.h): *vendor_len gets the vendor's length. */
static bool kg_kmip2_is_vendor(const char *name, uint32_t *vendor_len)
{
    const char *sep = strchr(name, KG_ATTR_VENDOR_SEP);

    if (sep == NULL || sep[1] == '\0' || !kg_attr_vendor_valid(name, (uint32_t)(sep - name))) {
        return false;
    }
    *vendor_len = (uint32_t)(sep - name);
    return true;
}

/* ---- requests ------------------------------------------------------------ */

/*
 * Attribute Name text of a 2.x vendor attribute: "x-<name>" or "y-<name>"
 * for the vendors KMIP 2.x keeps for 1.x custom attributes, else
 * "<vendor>:<name>" (kg_attr.h, KG_ATTR_VENDOR_SEP).
 */
static kg_result kg_kmip2_custom_name(const struct kg_ttlv_item *vendor, const struct kg_ttlv_item *name,
                                      char out[KG_ATTR_NAME_MAX + 1])
{
    const char *v, *n;
    uint32_t v_len, n_len;
    bool one_x;

    KG_GUARD(kg_ttlv_get_text(vendor, &v, &v_len));
    KG_GUARD(kg_ttlv_get_text(name, &n, &n_len));
    /* "x" and "y" are the 1.x custom attributes, stored as 1.x names them. */
    one_x = v_len == 1 && (v[0] == 'x' || v[0] == 'y');
    if (!kg_attr_vendor_valid(v, v_len) || n_len == 0 || v_len + 1 + n_len > KG_ATTR_NAME_MAX ||
        memchr(n, '\0', n_len) != NULL) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("a vendor attribute is a Vendor Identification of 1 to %u characters [A-Za-z0-9_.] and "
                        "a name, %u bytes in all",
                        KG_ATTR_VENDOR_MAX, KG_ATTR_NAME_MAX - 1);
        return KG_RESULT_ERROR;
    }
    memcpy(out, v, v_len);
    out[v_len] = one_x ? '-' : KG_ATTR_VENDOR_SEP;
    memcpy(out + v_len + 1, n, n_len);
    out[v_len + 1 + n_len] = '\0';
    return KG_RESULT_OK;
}

/* Write Attribute {Attribute Name `name`, Attribute Value = `value` retagged}. */
static kg_result kg_kmip2_write_v1_attribute(struct kg_ttlv_writer *out, const char *name,
                                             const struct kg_ttlv_item *value)
{
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    KG_GUARD(kg_ttlv_write_item_as(out, KG_TAG_ATTRIBUTE_VALUE, value));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/* One 2.x attribute `it` (a child of `parent`) as a 1.4 Attribute. */
static kg_result kg_kmip2_attribute_in(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *it,
                                       struct kg_ttlv_writer *out)
{
    char custom[KG_ATTR_NAME_MAX + 1];
    struct kg_ttlv_reader r;
    struct kg_ttlv_item vendor, name, value;
    const char *standard;

    if (it->tag == KG_TAG_ATTRIBUTE) {
        KG_ENSURE(it->type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
        KG_GUARD(kg_ttlv_child(parent, it, &r));
        KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_VENDOR_IDENTIFICATION, KG_TTLV_TEXT_STRING, &vendor));
        KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &name));
        KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_VALUE, KG_TTLV_ANY_TYPE, &value));
        KG_GUARD(kg_ttlv_reader_finish(&r));
        KG_GUARD(kg_kmip2_custom_name(&vendor, &name, custom));
        return kg_kmip2_write_v1_attribute(out, custom, &value);
    }
    standard = kg_kmip_tag_name(it->tag);
    if (standard == NULL || kg_attr_lookup(standard, (uint32_t)strlen(standard)) == NULL ||
        kg_kmip2_is_custom(standard)) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("tag 0x%06X is not an attribute kmipgw knows", (unsigned)it->tag);
        return KG_RESULT_ERROR;
    }
    return kg_kmip2_write_v1_attribute(out, standard, it);
}

/* The attributes inside structure `it`, each as a 1.4 Attribute. */
static kg_result kg_kmip2_attributes_in(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *it,
                                        struct kg_ttlv_writer *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item a;

    KG_ENSURE(it->type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
    KG_GUARD(kg_ttlv_child(parent, it, &r));
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &a));
        KG_GUARD(kg_kmip2_attribute_in(&r, &a, out));
    }
    return KG_RESULT_OK;
}

/* Attribute Reference (a tag as an Enumeration, or Vendor Identification
 * and Attribute Name) as a 1.4 Attribute Name. */
static kg_result kg_kmip2_reference_in(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *it,
                                       struct kg_ttlv_writer *out)
{
    char custom[KG_ATTR_NAME_MAX + 1];
    const char *name;
    uint32_t tag;

    if (it->type == KG_TTLV_STRUCTURE) {
        struct kg_ttlv_reader r;
        struct kg_ttlv_item vendor, attr_name;

        KG_GUARD(kg_ttlv_child(parent, it, &r));
        KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_VENDOR_IDENTIFICATION, KG_TTLV_TEXT_STRING, &vendor));
        KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &attr_name));
        KG_GUARD(kg_ttlv_reader_finish(&r));
        KG_GUARD(kg_kmip2_custom_name(&vendor, &attr_name, custom));
        name = custom;
    } else {
        KG_GUARD(kg_ttlv_get_enum(it, &tag));
        name = kg_kmip_tag_name(tag);
        if (name == NULL) {
            kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("Attribute Reference 0x%06X names no tag", (unsigned)tag);
            return KG_RESULT_ERROR;
        }
    }
    return kg_ttlv_write_text(out, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name));
}

/* `it`'s attributes inside a new 1.4 structure `tag`. */
static kg_result kg_kmip2_template_in(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *it,
                                      uint32_t tag, struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_ttlv_begin_struct(out, tag));
    KG_GUARD(kg_kmip2_attributes_in(parent, it, out));
    return kg_ttlv_end_struct(out);
}

kg_result kg_kmip2_request(uint32_t operation, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    struct kg_ttlv_item it;

    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read(in, &it));
        switch (it.tag) {
        case KG_TAG_ATTRIBUTES:
            if (operation == KG_OP_LOCATE) {
                KG_GUARD(kg_kmip2_attributes_in(in, &it, out));
            } else {
                KG_GUARD(kg_kmip2_template_in(in, &it, KG_TAG_TEMPLATE_ATTRIBUTE, out));
            }
            break;
        case KG_TAG_COMMON_ATTRIBUTES:
            KG_GUARD(kg_kmip2_template_in(in, &it, KG_TAG_COMMON_TEMPLATE_ATTRIBUTE, out));
            break;
        case KG_TAG_PRIVATE_KEY_ATTRIBUTES:
            KG_GUARD(kg_kmip2_template_in(in, &it, KG_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE, out));
            break;
        case KG_TAG_PUBLIC_KEY_ATTRIBUTES:
            KG_GUARD(kg_kmip2_template_in(in, &it, KG_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE, out));
            break;
        case KG_TAG_NEW_ATTRIBUTE: {
            struct kg_ttlv_reader r;
            struct kg_ttlv_item a;

            /* Exactly one attribute inside. */
            KG_ENSURE(it.type == KG_TTLV_STRUCTURE, KG_ERR_INVALID_FIELD);
            KG_GUARD(kg_ttlv_child(in, &it, &r));
            KG_GUARD(kg_ttlv_read(&r, &a));
            KG_GUARD(kg_ttlv_reader_finish(&r));
            KG_GUARD(kg_kmip2_attribute_in(&r, &a, out));
            break;
        }
        case KG_TAG_CURRENT_ATTRIBUTE:
            kg_error_set(KG_ERR_UNSUPPORTED_FEATURE, __FILE__, __LINE__);
            kg_error_detail("Current Attribute is not supported: kmipgw changes and deletes an attribute's "
                            "first instance; name it by Attribute Reference or New Attribute alone");
            return KG_RESULT_ERROR;
        case KG_TAG_ATTRIBUTE_REFERENCE:
            KG_GUARD(kg_kmip2_reference_in(in, &it, out));
            break;
        default:
            KG_GUARD(kg_ttlv_write_raw(out, it.raw, it.raw_len));
            break;
        }
    }
    return KG_RESULT_OK;
}

/* ---- responses ----------------------------------------------------------- */

/* The 1.4 Attribute Name `it` as a C string (our own handler wrote it). */
static kg_result kg_kmip2_name_text(const struct kg_ttlv_item *it, char out[KG_ATTR_NAME_MAX + 1])
{
    const char *text;
    uint32_t len;

    KG_GUARD(kg_ttlv_get_text(it, &text, &len));
    KG_ENSURE(len > 0 && len <= KG_ATTR_NAME_MAX, KG_ERR_INTERNAL);
    memcpy(out, text, len);
    out[len] = '\0';
    return KG_RESULT_OK;
}

/* Is stored name `name` a vendor attribute (custom "x-N", or "V:N")? If so
 * *vendor_len gets the length of its Vendor Identification. */
static bool kg_kmip2_vendor_of(const char *name, uint32_t *vendor_len)
{
    if (kg_kmip2_is_custom(name)) {
        *vendor_len = 1;
        return true;
    }
    return kg_kmip2_is_vendor(name, vendor_len);
}

/* Vendor attribute `name` ("x-N" or "V:N") as Vendor Identification "x"
 * (or "V") and Attribute Name "N". */
static kg_result kg_kmip2_write_vendor_name(struct kg_ttlv_writer *out, const char *name, uint32_t vendor_len)
{
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_VENDOR_IDENTIFICATION, name, vendor_len));
    return kg_ttlv_write_text(out, KG_TAG_ATTRIBUTE_NAME, name + vendor_len + 1,
                              (uint32_t)strlen(name + vendor_len + 1));
}

/* A 1.4 Attribute {Attribute Name, Attribute Index?, Attribute Value} as
 * the tagged 2.x item. */
static kg_result kg_kmip2_attribute_out(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *it,
                                        struct kg_ttlv_writer *out)
{
    char name[KG_ATTR_NAME_MAX + 1];
    struct kg_ttlv_reader r;
    struct kg_ttlv_item name_item, index, value;
    uint32_t tag, vendor_len;
    bool has_index;

    KG_GUARD(kg_ttlv_child(parent, it, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_NAME, KG_TTLV_TEXT_STRING, &name_item));
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_ATTRIBUTE_INDEX, KG_TTLV_INTEGER, &index, &has_index));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_ATTRIBUTE_VALUE, KG_TTLV_ANY_TYPE, &value));
    KG_GUARD(kg_kmip2_name_text(&name_item, name));
    if (kg_kmip2_vendor_of(name, &vendor_len)) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ATTRIBUTE));
        KG_GUARD(kg_kmip2_write_vendor_name(out, name, vendor_len));
        KG_GUARD(kg_ttlv_write_raw(out, value.raw, value.raw_len));
        return kg_ttlv_end_struct(out);
    }
    tag = kg_kmip2_tag_of(name);
    KG_ENSURE(tag != 0, KG_ERR_INTERNAL); /* every stored name is a known attribute */
    return kg_ttlv_write_item_as(out, tag, &value);
}

/* A 1.4 Attribute Name as a 2.x Attribute Reference. */
static kg_result kg_kmip2_reference_out(const struct kg_ttlv_item *it, struct kg_ttlv_writer *out)
{
    char name[KG_ATTR_NAME_MAX + 1];
    uint32_t tag, vendor_len;

    KG_GUARD(kg_kmip2_name_text(it, name));
    if (kg_kmip2_vendor_of(name, &vendor_len)) {
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ATTRIBUTE_REFERENCE));
        KG_GUARD(kg_kmip2_write_vendor_name(out, name, vendor_len));
        return kg_ttlv_end_struct(out);
    }
    tag = kg_kmip2_tag_of(name);
    KG_ENSURE(tag != 0, KG_ERR_INTERNAL);
    return kg_ttlv_write_enum(out, KG_TAG_ATTRIBUTE_REFERENCE, tag);
}

/* Do 2.x answers of `operation` leave its attributes out? */
static bool kg_kmip2_drops_attributes(uint32_t operation)
{
    return operation == KG_OP_ADD_ATTRIBUTE || operation == KG_OP_MODIFY_ATTRIBUTE ||
           operation == KG_OP_DELETE_ATTRIBUTE;
}

kg_result kg_kmip2_response(uint32_t operation, const uint8_t *payload, uint32_t len, struct kg_ttlv_writer *out)
{
    /* Our own handler's output: only its size bounds it (every item has an
     * 8-byte header), not a client message's item budget. */
    const struct kg_ttlv_limits limits = { len, kg_ttlv_default_limits.max_depth, len / KG_TTLV_HEADER_LEN + 1 };
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader in;
    struct kg_ttlv_item it;
    bool open = false, wrote_attributes = false;

    kg_ttlv_budget_init(&budget, &limits);
    KG_GUARD(kg_ttlv_reader_init(&in, payload, len, &budget));
    while (!kg_ttlv_reader_done(&in)) {
        KG_GUARD(kg_ttlv_read(&in, &it));
        if (it.tag == KG_TAG_ATTRIBUTE) {
            if (kg_kmip2_drops_attributes(operation)) {
                continue;
            }
            if (!open) {
                KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ATTRIBUTES));
                open = wrote_attributes = true;
            }
            KG_GUARD(kg_kmip2_attribute_out(&in, &it, out));
            continue;
        }
        if (open) {
            KG_GUARD(kg_ttlv_end_struct(out));
            open = false;
        }
        switch (it.tag) {
        case KG_TAG_ATTRIBUTE_NAME:
            KG_GUARD(kg_kmip2_reference_out(&it, out));
            break;
        case KG_TAG_TEMPLATE_ATTRIBUTE:
        case KG_TAG_COMMON_TEMPLATE_ATTRIBUTE:
        case KG_TAG_PRIVATE_KEY_TEMPLATE_ATTRIBUTE:
        case KG_TAG_PUBLIC_KEY_TEMPLATE_ATTRIBUTE:
            break;
        default:
            KG_GUARD(kg_ttlv_write_raw(out, it.raw, it.raw_len));
            break;
        }
    }
    if (open) {
        KG_GUARD(kg_ttlv_end_struct(out));
    }
    if (operation == KG_OP_GET_ATTRIBUTES && !wrote_attributes) {
        /* 2.x Get Attributes always answers an Attributes structure. */
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_ATTRIBUTES));
        KG_GUARD(kg_ttlv_end_struct(out));
    }
    return KG_RESULT_OK;
}
