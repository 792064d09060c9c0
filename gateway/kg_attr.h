/*
 * kg_attr.h - KMIP attributes: which exist, who may set them, and how they
 * are read from and written to TTLV (KMIP 1.4 section 3).
 *
 * Values are kept as the encoded Attribute Value item (tag 0x42000B, type,
 * value, padding), so any type, custom ones included, round-trips unchanged.
 * A few attributes are derived from the object row instead of stored:
 * Unique Identifier, Object Type, State, Cryptographic Algorithm,
 * Cryptographic Length, Cryptographic Usage Mask, and the KMIP 1.4
 * Sensitive, Always Sensitive, Extractable and Never Extractable, which
 * follow from where the key lives (kg_attr_write_derived).
 *
 * Every attribute belongs to the protocol versions from the one that
 * introduced it: a 1.0 client is never shown Fresh (1.1) nor a 1.1 client
 * Original Creation Date (1.2). Get Attributes and Get Attribute List
 * filter with kg_attr_in_version.
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
    /* A row the server keeps for itself (the Secret Data Type and Opaque
     * Data Type Get answers with): never shown as an attribute, and a
     * client naming it is told it is unknown. */
    KG_ATTR_INTERNAL = 1u << 6,
    /* A KMIP 1.x attribute KMIP 2.0 removed (Certificate Identifier,
     * Subject and Issuer): not shown to a 2.x client. */
    KG_ATTR_1X_ONLY = 1u << 7,
};

struct kg_attr_def {
    const char *name;
    uint8_t type;   /* enum kg_ttlv_type; 0 = any (custom attributes) */
    uint32_t flags;
    uint8_t since;  /* the KMIP 1.x minor version that introduced it, or KG_ATTR_SINCE_2X */
};

/* A KMIP 2.x vendor attribute of a vendor other than "x" and "y" (2.1
 * section 4.60) is stored under "<vendor>:<name>": a Vendor Identification
 * is [A-Za-z0-9_.], so the first ':' ends it, and no 1.x name has that
 * form. Such attributes exist for 2.x clients only. */
#define KG_ATTR_VENDOR_SEP ':'
#define KG_ATTR_VENDOR_MAX 32u

/* Is `vendor` (len bytes) a Vendor Identification: 1 to KG_ATTR_VENDOR_MAX
 * characters of [A-Za-z0-9_.]? */
bool kg_attr_vendor_valid(const char *vendor, uint32_t len);

/* `since` of an attribute KMIP 2.x introduced: above every 1.x minor. */
#define KG_ATTR_SINCE_2X 0xFFu

/* The server's own rows of Secret Data (a Structure: Secret Data Type and
 * the Key Format Type it was registered in) and of an Opaque Object (its
 * Opaque Data Type): KG_ATTR_INTERNAL. */
#define KG_ATTR_SECRET_DATA_TYPE "Secret Data Type"
#define KG_ATTR_OPAQUE_DATA_TYPE "Opaque Data Type"

/* The definition of attribute `name`, a generic one for custom x-/y- names
 * and for KMIP 2.x vendor attributes ("<vendor>:<name>", see
 * KG_ATTR_VENDOR_SEP), or NULL when the name is unknown. */
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

/* The Key Format Type of key `obj`: the one it was registered in (its
 * stored row), else the form Get returns a key made here in. */
kg_result kg_attr_key_format(struct kg_store *store, const struct kg_object *obj, uint32_t *format) KG_WARN_UNUSED;

/* Write the Key Format Type attribute of `obj` (kg_attr_key_format);
 * *written false when `obj` is no key. */
kg_result kg_attr_write_key_format(struct kg_ttlv_writer *w, struct kg_store *store, const struct kg_object *obj,
                                   bool *written) KG_WARN_UNUSED;

/* Write the derived attribute `name` of `obj`; *written false if `name` is
 * not a derived one. */
kg_result kg_attr_write_derived(struct kg_ttlv_writer *w, const struct kg_object *obj, const char *name,
                                bool *written) KG_WARN_UNUSED;

/* Is `def` an attribute of protocol version major.minor? Custom and all
 * 1.0 attributes are in every version; any 2.x has every 1.x attribute
 * but those KMIP 2.0 removed (KG_ATTR_1X_ONLY). Internal rows are in none. */
bool kg_attr_in_version(const struct kg_attr_def *def, int32_t major, int32_t minor);

/*
 * kg_attr_write for a client of version major.minor: the stored form is the
 * newest; a 1.0 client gets a Digest without Key Format Type (a field KMIP
 * 1.1 added). Anything else is written as stored.
 */
kg_result kg_attr_write_for(struct kg_ttlv_writer *w, const char *name, int32_t index, const uint8_t *value,
                            uint32_t value_len, int32_t major, int32_t minor) KG_WARN_UNUSED;

/* Names of the derived attributes, for Get Attribute List and "all". */
extern const char *const kg_attr_derived_names[];
extern const uint32_t kg_attr_derived_count;

/* Store the Date-Time attribute `name` = `when`, replacing any value. */
kg_result kg_attr_store_date(struct kg_store *store, const char *uid, const char *name,
                             int64_t when) KG_WARN_UNUSED;

/* The Lease Time (KMIP 1.4 section 3.20) the server sets on new objects:
 * the longest lease it grants, which is what Obtain Lease grants
 * (kg_op_usage.c): 0, no lease interval (section 4.17), as kmipgw keeps no
 * leases and checks state and dates at every use instead. */
#define KG_ATTR_LEASE_TIME 0u

/* What the server itself sets on a new object (kg_attr_store_new). */
struct kg_attr_new {
    int64_t now;
    bool generated;         /* the server made the key material (Create, Re-key) */
    bool fresh_given;       /* the client's template set Fresh: its value stands */
    /* The key's SHA-256 made in the HSM (struct kg_p11_blob's digest),
     * stored as Digest over Key Format Type Raw; absent when !has_digest. */
    bool has_digest;
    uint8_t digest[32];
    /* Register: the Key Format Type the key came in (0: made here). Stored
     * as the "Key Format Type" row, and names the Digest's format. */
    uint32_t key_format;
};

/*
 * In the change that inserts object `uid`: store the attributes the server
 * sets at creation (KMIP 1.4 section 3): Digest (if n->has_digest), Fresh
 * True (unless the client set it), Lease Time, and for keys the server
 * generated, Original Creation Date (= Initial Date, n->now) and Random
 * Number Generator (RNG Algorithm Unspecified: the HSM's generator, whose
 * details kmipgw does not know). Initial and Last Change Date are the
 * caller's, as before. Nothing secret is handled.
 */
kg_result kg_attr_store_new(struct kg_store *w, const char *uid, const struct kg_attr_new *n) KG_WARN_UNUSED;

/* The first stored instance of Date-Time attribute `name` of `uid` into
 * *when, *found true; *found false (and *when 0) when it has none. A row
 * that is not a Date-Time is KG_ERR_STORE. */
kg_result kg_attr_get_date(struct kg_store *store, const char *uid, const char *name, bool *found,
                           int64_t *when) KG_WARN_UNUSED;

/* Is object `uid`'s Fresh attribute True? False when it has none. */
kg_result kg_attr_is_fresh(struct kg_store *store, const char *uid, bool *fresh) KG_WARN_UNUSED;

/* obj->sensitive from the object's Sensitive row (false without one), and
 * obj->sensitive_raised from the row kg_attr_sensitive_change leaves. */
kg_result kg_attr_load_sensitive(struct kg_store *store, struct kg_object *obj) KG_WARN_UNUSED;

/*
 * A client adds, modifies or sets attribute `a` of `obj` (inside the change
 * `w`); a no-op unless `a` is Sensitive. Sensitive may be raised but never
 * lowered: an object that is sensitive (resident, or made so) stays so, or a
 * client allowed to change attributes could undo the protection and Get the
 * key in plaintext. Raising it on an object that was not sensitive records
 * that it was not always so (Always Sensitive False, KMIP 2.1 section 4.3).
 * The value is the client's, already read with bounds (kg_attr_read).
 */
kg_result kg_attr_sensitive_change(struct kg_store *w, const struct kg_object *obj,
                                   const struct kg_attr_in *a) KG_WARN_UNUSED;

/* What a Get needs of an object's attribute rows. */
struct kg_attr_get_facts {
    uint32_t key_format; /* the Key Format Type it was registered in, else its type's default */
    bool sensitive;      /* a Sensitive row says True */
    bool fresh;          /* a Fresh row says True */
};

/* kg_attr_get_facts of `obj`, read in one pass over its rows: one query on
 * the Get path instead of one per fact (a round trip each on PostgreSQL). */
kg_result kg_attr_get_facts(struct kg_store *store, const struct kg_object *obj,
                            struct kg_attr_get_facts *out) KG_WARN_UNUSED;

/* Is `name` one of kg_attr_derived_names (answered from the object, never
 * from a stored row of that name)? */
bool kg_attr_is_derived(const char *name);

/*
 * The object has been served to a client (a Get returned its key): Fresh
 * becomes False (KMIP 1.4 section 3.34). Inside a change; a no-op when the
 * object has no Fresh or it is False already, so only a first serve writes.
 */
kg_result kg_attr_mark_served(struct kg_store *w, const char *uid) KG_WARN_UNUSED;

/*
 * Usage Limits (KMIP 1.4 section 3.21) as the server stores it, from the
 * client's value `in` (an Attribute Value structure): Usage Limits Total
 * (Long Integer, >= 0), Usage Limits Count = Total, Usage Limits Unit,
 * written into caller storage out[0..cap) (*len its length). The client's
 * Count is ignored when `creating` (the rule for Create and Register) and
 * refused otherwise (Add and Modify may not set it): KG_ERR_READ_ONLY_ATTRIBUTE.
 * A missing Total or Unit, or a field twice, is KG_ERR_BAD_ATTRIBUTE.
 */
kg_result kg_attr_usage_limits(const struct kg_attr_in *in, bool creating, uint8_t *out, uint32_t cap,
                               uint32_t *len) KG_WARN_UNUSED;

/* Has stored Usage Limits `value` been drawn on (Count below Total, by Get
 * Usage Allocation)? Then the client may no longer change or delete it.
 * An unreadable value counts as drawn on: refuse rather than guess. */
bool kg_attr_usage_limits_used(const uint8_t *value, uint32_t value_len);

#endif
