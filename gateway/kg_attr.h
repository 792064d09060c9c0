/*
 * kg_attr.h - KMIP attributes: which exist, who may set them, and how they
 * are read from and written to TTLV (KMIP 1.4 section 3).
 *
 * Values are kept as the encoded Attribute Value item (tag 0x42000B, type,
 * value, padding), so any type, custom ones included, round-trips unchanged.
 * A few attributes are derived from the object row instead of stored:
 * Unique Identifier, Object Type, State, Cryptographic Algorithm,
 * Cryptographic Length, Cryptographic Usage Mask.
 */
#ifndef KG_ATTR_H
#define KG_ATTR_H

#include <stdbool.h>
#include <stdint.h>

#include "kg_result.h"
#include "kg_store.h"
#include "kg_ttlv.h"

enum kg_attr_flag {
    KG_ATTR_DERIVED = 1u << 0,       /* from the object row, never a stored row */
    KG_ATTR_MULTI = 1u << 1,         /* may have several instances */
    KG_ATTR_CLIENT_SET = 1u << 2,    /* may be given in Create/Register */
    KG_ATTR_CLIENT_ADD = 1u << 3,    /* Add Attribute allowed */
    KG_ATTR_CLIENT_MODIFY = 1u << 4, /* Modify Attribute allowed */
    KG_ATTR_CLIENT_DELETE = 1u << 5, /* Delete Attribute allowed */
};

struct kg_attr_def {
    const char *name;
    uint8_t type;   /* enum kg_ttlv_type; 0 = any (custom attributes) */
    uint32_t flags;
};

/* The definition of attribute `name`, a generic one for custom x-/y- names,
 * or NULL when the name is unknown. */
const struct kg_attr_def *kg_attr_lookup(const char *name, uint32_t len);

/* One Attribute structure as read from a request: borrowed pointers. */
struct kg_attr_in {
    char name[KG_ATTR_NAME_MAX + 1];
    const struct kg_attr_def *def;
    bool has_index;
    int32_t index;
    bool has_value;
    struct kg_ttlv_item value; /* raw/raw_len: the encoded Attribute Value */
};

/*
 * Read the Attribute structure `item` (a child of `parent`): Attribute Name,
 * optional Attribute Index, optional Attribute Value. Unknown names,
 * over-long names and values whose type does not match the definition fail
 * with KG_ERR_BAD_ATTRIBUTE. `need_value` requires the value.
 */
kg_result kg_attr_read(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item, bool need_value,
                       struct kg_attr_in *out) KG_WARN_UNUSED;

/* Write Attribute { Name, Index (when > 0), Value } from a stored value. */
kg_result kg_attr_write(struct kg_ttlv_writer *w, const char *name, int32_t index, const uint8_t *value,
                        uint32_t value_len) KG_WARN_UNUSED;

/* Write the derived attribute `name` of `obj`; *written false if `name` is
 * not a derived one. */
kg_result kg_attr_write_derived(struct kg_ttlv_writer *w, const struct kg_object *obj, const char *name,
                                bool *written) KG_WARN_UNUSED;

/* Names of the derived attributes, for Get Attribute List and "all". */
extern const char *const kg_attr_derived_names[];
extern const uint32_t kg_attr_derived_count;

/* Store the Date-Time attribute `name` = `when`, replacing any value. */
kg_result kg_attr_store_date(struct kg_store *store, const char *uid, const char *name,
                             int64_t when) KG_WARN_UNUSED;

#endif
