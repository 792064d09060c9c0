/* kg_attr.c - the attribute table and attribute TTLV forms. */
#include "kg_attr.h"

#include <string.h>

#include <openssl/sha.h>

#include "kg_kmip.h"

#define SET KG_ATTR_CLIENT_SET
#define ADD KG_ATTR_CLIENT_ADD
#define MOD KG_ATTR_CLIENT_MODIFY
#define DEL KG_ATTR_CLIENT_DELETE
#define EDITABLE (SET | ADD | MOD | DEL)

/* The server's row saying Sensitive was raised after the object was made
 * (kg_attr_sensitive_change): Always Sensitive is then False. */
#define KG_ATTR_SENSITIVE_RAISED "Sensitive Raised"

/* KMIP 1.4 section 3, with who may change what (each attribute's "Rules"
 * table) and the 1.x minor version that introduced it. Attributes not
 * listed are refused rather than stored blindly. */
static const struct kg_attr_def kg_attr_defs[] = {
    { "Unique Identifier", KG_TTLV_TEXT_STRING, KG_ATTR_DERIVED, 0 },
    /* KMIP 2.0 section 4.56: SHA-256 of the Unique Identifier. */
    { "Short Unique Identifier", KG_TTLV_BYTE_STRING, KG_ATTR_DERIVED, KG_ATTR_SINCE_2X },
    /* KMIP 2.0 made these attributes of a key (sections 4.27 and 4.44). */
    { "Key Format Type", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED, KG_ATTR_SINCE_2X },
    { "Protection Storage Mask", KG_TTLV_INTEGER, KG_ATTR_DERIVED, KG_ATTR_SINCE_2X },
    { "Object Type", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED, 0 },
    { "State", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED, 0 },
    { "Cryptographic Algorithm", KG_TTLV_ENUMERATION, KG_ATTR_DERIVED, 0 },
    { "Cryptographic Length", KG_TTLV_INTEGER, KG_ATTR_DERIVED, 0 },
    { "Cryptographic Usage Mask", KG_TTLV_INTEGER, KG_ATTR_DERIVED, 0 },
    /* Section 3.48 to 3.51: where the key lives says them (see below);
     * a client may also make an object Sensitive, when it is made or later
     * (raised, never lowered: kg_attr_sensitive_change); its row is read on
     * demand. */
    { "Sensitive", KG_TTLV_BOOLEAN, SET | ADD | MOD, 4 },
    { "Always Sensitive", KG_TTLV_BOOLEAN, KG_ATTR_DERIVED, 4 },
    { "Extractable", KG_TTLV_BOOLEAN, KG_ATTR_DERIVED, 4 },
    { "Never Extractable", KG_TTLV_BOOLEAN, KG_ATTR_DERIVED, 4 },
    { "Name", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE, 0 },
    { "Cryptographic Parameters", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE, 0 },
    /* Set by the server at creation, over the key in the HSM (3.17). */
    { "Digest", KG_TTLV_STRUCTURE, KG_ATTR_MULTI, 0 },
    { "Operation Policy Name", KG_TTLV_TEXT_STRING, EDITABLE, 0 },
    { "Lease Time", KG_TTLV_INTERVAL, 0, 0 },
    /* Count is the server's; Modify and Delete only until Get Usage
     * Allocation draws on it (kg_op_attributes.c). */
    { "Usage Limits", KG_TTLV_STRUCTURE, EDITABLE, 0 },
    { "Initial Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Activation Date", KG_TTLV_DATE_TIME, SET | ADD | MOD, 0 },
    { "Process Start Date", KG_TTLV_DATE_TIME, SET | ADD | MOD, 0 },
    { "Protect Stop Date", KG_TTLV_DATE_TIME, SET | ADD | MOD, 0 },
    { "Deactivation Date", KG_TTLV_DATE_TIME, SET | ADD | MOD, 0 },
    { "Destroy Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Compromise Occurrence Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Compromise Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Revocation Reason", KG_TTLV_STRUCTURE, 0, 0 },
    { "Archive Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Object Group", KG_TTLV_TEXT_STRING, KG_ATTR_MULTI | EDITABLE, 0 },
    /* Initially set by client or server, then the server's alone (3.34). */
    { "Fresh", KG_TTLV_BOOLEAN, SET, 1 },
    { "Link", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE, 0 },
    { "Application Specific Information", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE, 0 },
    { "Contact Information", KG_TTLV_TEXT_STRING, EDITABLE, 0 },
    { "Last Change Date", KG_TTLV_DATE_TIME, 0, 0 },
    { "Alternative Name", KG_TTLV_STRUCTURE, KG_ATTR_MULTI | EDITABLE, 2 },
    /* A client may give it for a key it made (Register, or Add later);
     * never changed once set (3.43). The server's for keys it makes. */
    { "Original Creation Date", KG_TTLV_DATE_TIME, SET | ADD, 2 },
    /* 3.44 came with KMIP 1.3, but the 1.3 profile vectors (SKFF-M-9-13)
     * list no Random Number Generator for a server-made key while the 1.4
     * ones do: shown from 1.4. Server-set only: a template naming an RNG
     * would oblige the server to use it, which kmipgw cannot choose. */
    { "Random Number Generator", KG_TTLV_STRUCTURE, 0, 4 },
    { "Description", KG_TTLV_TEXT_STRING, EDITABLE, 4 },
    { "Comment", KG_TTLV_TEXT_STRING, EDITABLE, 4 },
    /* KMIP 2.1 only (no 1.x minor reaches KG_ATTR_SINCE_2X). Quantum Safe
     * is enforced on new objects (kg_op_create.c). */
    { "Protection Level", KG_TTLV_ENUMERATION, EDITABLE, KG_ATTR_SINCE_2X },
    { "Protection Period", KG_TTLV_INTERVAL, EDITABLE, KG_ATTR_SINCE_2X },
    { "Quantum Safe", KG_TTLV_BOOLEAN, EDITABLE, KG_ATTR_SINCE_2X },
    /* Certificates (KMIP 1.4 sections 3.6 to 3.16, 2.1 sections 4.6 to
     * 4.8 and 4.61 to 4.63): set by the server from the certificate at
     * Register (kg_cert.c), never changed by anyone. A template may name
     * Certificate Type, to agree with the certificate (kg_op_template_add). */
    { "Certificate Type", KG_TTLV_ENUMERATION, 0, 0 },
    { "Certificate Length", KG_TTLV_INTEGER, 0, 1 },
    { "X.509 Certificate Identifier", KG_TTLV_STRUCTURE, 0, 1 },
    { "X.509 Certificate Subject", KG_TTLV_STRUCTURE, 0, 1 },
    { "X.509 Certificate Issuer", KG_TTLV_STRUCTURE, 0, 1 },
    { "Certificate Identifier", KG_TTLV_STRUCTURE, KG_ATTR_1X_ONLY, 0 },
    { "Certificate Subject", KG_TTLV_STRUCTURE, KG_ATTR_1X_ONLY, 0 },
    { "Certificate Issuer", KG_TTLV_STRUCTURE, KG_ATTR_1X_ONLY, 0 },
    { "Digital Signature Algorithm", KG_TTLV_ENUMERATION, KG_ATTR_MULTI, 1 },
#define KG_CERT_NAME_ATTRS(part)                                                              \
    { "Certificate Subject " part, KG_TTLV_TEXT_STRING, KG_ATTR_MULTI, KG_ATTR_SINCE_2X },     \
    { "Certificate Issuer " part, KG_TTLV_TEXT_STRING, KG_ATTR_MULTI, KG_ATTR_SINCE_2X }
    KG_CERT_NAME_ATTRS("CN"), KG_CERT_NAME_ATTRS("O"), KG_CERT_NAME_ATTRS("OU"), KG_CERT_NAME_ATTRS("Email"),
    KG_CERT_NAME_ATTRS("C"), KG_CERT_NAME_ATTRS("ST"), KG_CERT_NAME_ATTRS("L"), KG_CERT_NAME_ATTRS("UID"),
    KG_CERT_NAME_ATTRS("Serial Number"), KG_CERT_NAME_ATTRS("Title"), KG_CERT_NAME_ATTRS("DC"),
    KG_CERT_NAME_ATTRS("DN Qualifier"),
#undef KG_CERT_NAME_ATTRS
    /* What Get of Secret Data or an Opaque Object answers besides the
     * value (kg_op_register_data.c): the server's own rows. */
    { KG_ATTR_SECRET_DATA_TYPE, KG_TTLV_STRUCTURE, KG_ATTR_INTERNAL, KG_ATTR_SINCE_2X },
    { KG_ATTR_OPAQUE_DATA_TYPE, KG_TTLV_ENUMERATION, KG_ATTR_INTERNAL, KG_ATTR_SINCE_2X },
    { KG_ATTR_SENSITIVE_RAISED, KG_TTLV_BOOLEAN, KG_ATTR_INTERNAL, KG_ATTR_SINCE_2X },
};

/* Custom attributes: "x-" names belong to clients; "y-" names are the
 * server's (KMIP 1.4 section 3.39), so clients may read but not set them. */
static const struct kg_attr_def kg_attr_client_custom = { "x-", 0, KG_ATTR_MULTI | EDITABLE, 0 };
static const struct kg_attr_def kg_attr_server_custom = { "y-", 0, KG_ATTR_MULTI, 0 };
/* Other vendors' attributes (KMIP 2.1 section 4.60) are a client's, and
 * KMIP 2.x's only. */
static const struct kg_attr_def kg_attr_vendor = { "vendor", 0, KG_ATTR_MULTI | EDITABLE, KG_ATTR_SINCE_2X };

const char *const kg_attr_derived_names[] = {
    "Unique Identifier", "Short Unique Identifier", "Object Type", "State",
    "Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask",
    "Sensitive", "Always Sensitive", "Extractable", "Never Extractable",
    "Key Format Type", "Protection Storage Mask",
};
const uint32_t kg_attr_derived_count = sizeof(kg_attr_derived_names) / sizeof(kg_attr_derived_names[0]);

bool kg_attr_in_version(const struct kg_attr_def *def, int32_t major, int32_t minor)
{
    if (def == NULL || (def->flags & KG_ATTR_INTERNAL) != 0) {
        return false;
    }
    if (major > 1) {
        return (def->flags & KG_ATTR_1X_ONLY) == 0;
    }
    return minor >= (int32_t)def->since;
}

bool kg_attr_vendor_valid(const char *vendor, uint32_t len)
{
    if (len == 0 || len > KG_ATTR_VENDOR_MAX) {
        return false;
    }
    for (uint32_t i = 0; i < len; i++) {
        char c = vendor[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) {
            return false;
        }
    }
    return true;
}

const struct kg_attr_def *kg_attr_lookup(const char *name, uint32_t len)
{
    if (len > 2 && name[1] == '-' && (name[0] == 'x' || name[0] == 'X')) {
        return &kg_attr_client_custom;
    }
    if (len > 2 && name[1] == '-' && (name[0] == 'y' || name[0] == 'Y')) {
        return &kg_attr_server_custom;
    }
    const char *sep = memchr(name, KG_ATTR_VENDOR_SEP, len);
    if (sep != NULL && sep + 1 < name + len && kg_attr_vendor_valid(name, (uint32_t)(sep - name))) {
        return &kg_attr_vendor;
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
    if (out->def == NULL || (out->def->flags & KG_ATTR_INTERNAL) != 0) {
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

static bool kg_attr_is_key(const struct kg_object *obj)
{
    return obj->object_type == KG_OBJ_SYMMETRIC_KEY || obj->object_type == KG_OBJ_PRIVATE_KEY ||
           obj->object_type == KG_OBJ_PUBLIC_KEY;
}

/* Secret Data and Opaque Objects: their row's length is the value's, kept
 * to read it back exactly, and no Cryptographic Length (KMIP 2.1 Table 28). */
static bool kg_attr_is_data(const struct kg_object *obj)
{
    return obj->object_type == KG_OBJ_SECRET_DATA || obj->object_type == KG_OBJ_OPAQUE_OBJECT;
}

/*
 * Sensitive, Always Sensitive, Extractable and Never Extractable (KMIP 1.4
 * sections 3.48 to 3.51) as they truly are for `obj`, in KMIP's sense (may
 * a Get return the key, and in plaintext?), which is not PKCS#11's
 * CKA_SENSITIVE: every key is sensitive inside the HSM, yet a wrapped one
 * leaves it through Get when policy allows.
 *   resident  a token object no operation ever exports (kg_p11_key_load
 *             refuses extraction): sensitive and never extractable, always;
 *   wrapped / public  Get can return them: extractable, and not sensitive
 *             unless the client made them so when it made them
 *             (obj->sensitive: Get then returns them only wrapped);
 *             whether a given client gets plaintext is policy's decision
 *             per group.
 * Storage never changes over an object's life, nor does the client's
 * Sensitive, so the "Always" and "Never" forms follow from the same facts. *value gets the answer; false
 * when `name` is none of the four.
 */
static bool kg_attr_exposure(const struct kg_object *obj, const char *name, bool *value)
{
    bool resident = obj->storage == KG_P11_STORED_RESIDENT;

    if (strcmp(name, "Sensitive") == 0) {
        *value = resident || obj->sensitive;
        return true;
    }
    if (strcmp(name, "Always Sensitive") == 0) {
        *value = resident || (obj->sensitive && !obj->sensitive_raised);
        return true;
    }
    if (strcmp(name, "Never Extractable") == 0) {
        *value = resident;
        return true;
    }
    if (strcmp(name, "Extractable") == 0) {
        *value = !resident;
        return true;
    }
    return false;
}

/* Key Format Type of a key that was not registered: Raw bytes, PKCS#8, X.509 SPKI. */
static uint32_t kg_attr_default_format(const struct kg_object *obj)
{
    return obj->object_type == KG_OBJ_SYMMETRIC_KEY ? KG_FORMAT_RAW
           : obj->object_type == KG_OBJ_PRIVATE_KEY ? KG_FORMAT_PKCS8
                                                     : KG_FORMAT_X509;
}

/* The stored "Key Format Type" row: one Enumeration Attribute Value. */
static bool kg_attr_format_fn(void *arg, const struct kg_attr *a)
{
    const uint8_t *v = a->value;

    if (a->value_len == 16 && v[0] == 0x42 && v[1] == 0x00 && v[2] == 0x0B && v[3] == KG_TTLV_ENUMERATION) {
        *(uint32_t *)arg = (uint32_t)v[8] << 24 | (uint32_t)v[9] << 16 | (uint32_t)v[10] << 8 | v[11];
    }
    return false;
}

kg_result kg_attr_key_format(struct kg_store *store, const struct kg_object *obj, uint32_t *format)
{
    *format = 0;
    KG_GUARD(kg_store_each_attr(store, obj->uid, "Key Format Type", kg_attr_format_fn, format));
    if (*format == 0) {
        *format = kg_attr_default_format(obj);
    }
    return KG_RESULT_OK;
}

static bool kg_attr_true_fn(void *arg, const struct kg_attr *a);

static bool kg_attr_get_facts_fn(void *arg, const struct kg_attr *a)
{
    struct kg_attr_get_facts *f = arg;

    if (strcmp(a->name, "Key Format Type") == 0) {
        (void)kg_attr_format_fn(&f->key_format, a);
    } else if (strcmp(a->name, "Sensitive") == 0) {
        (void)kg_attr_true_fn(&f->sensitive, a);
    } else if (strcmp(a->name, "Fresh") == 0) {
        (void)kg_attr_true_fn(&f->fresh, a);
    }
    return true;
}

kg_result kg_attr_get_facts(struct kg_store *store, const struct kg_object *obj, struct kg_attr_get_facts *out)
{
    memset(out, 0, sizeof(*out));
    KG_GUARD(kg_store_each_attr(store, obj->uid, NULL, kg_attr_get_facts_fn, out));
    if (out->key_format == 0) {
        out->key_format = kg_attr_default_format(obj);
    }
    return KG_RESULT_OK;
}

kg_result kg_attr_write_key_format(struct kg_ttlv_writer *w, struct kg_store *store, const struct kg_object *obj,
                                   bool *written)
{
    uint32_t format = 0;

    *written = kg_attr_is_key(obj);
    if (!*written) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_attr_key_format(store, obj, &format));
    KG_GUARD(kg_attr_begin(w, "Key Format Type"));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, format));
    return kg_ttlv_end_struct(w);
}

kg_result kg_attr_write_derived(struct kg_ttlv_writer *w, const struct kg_object *obj, const char *name,
                                bool *written)
{
    bool flag = false;

    *written = true;
    if (strcmp(name, "Unique Identifier") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_VALUE, obj->uid, (uint32_t)strlen(obj->uid)));
    } else if (strcmp(name, "Short Unique Identifier") == 0) {
        uint8_t md[SHA256_DIGEST_LENGTH];

        KG_ENSURE(SHA256((const unsigned char *)obj->uid, strlen(obj->uid), md) != NULL, KG_ERR_INTERNAL);
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_ATTRIBUTE_VALUE, md, sizeof(md)));
    } else if (strcmp(name, "Object Type") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->object_type));
    } else if (strcmp(name, "State") == 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->state));
    } else if (strcmp(name, "Cryptographic Algorithm") == 0 && obj->algorithm != 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, obj->algorithm));
    } else if (strcmp(name, "Cryptographic Length") == 0 && obj->length != 0 && !kg_attr_is_data(obj)) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, obj->length));
    } else if (strcmp(name, "Cryptographic Usage Mask") == 0 && obj->usage_mask != 0) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, obj->usage_mask));
    } else if (kg_attr_is_key(obj) && kg_attr_exposure(obj, name, &flag)) {
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_bool(w, KG_TAG_ATTRIBUTE_VALUE, flag));
    } else if (kg_attr_is_key(obj) && strcmp(name, "Key Format Type") == 0) {
        /* Of a key made here: the form Get returns by default. A registered
         * key's own (a stored row) is kg_attr_write_key_format's. */
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, kg_attr_default_format(obj)));
    } else if (kg_attr_is_key(obj) && strcmp(name, "Protection Storage Mask") == 0) {
        /* Where the key is kept: a resident key in the HSM (Hardware), any
         * other as a blob in the store on this host (Software). */
        KG_GUARD(kg_attr_begin(w, name));
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE,
                                   obj->storage == KG_P11_STORED_RESIDENT ? KG_PROTECTION_HARDWARE
                                                                          : KG_PROTECTION_SOFTWARE));
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

/* ---- forms that depend on the protocol version -------------------------- */

/* A reader over a stored or request value item `raw`, its first item in *it. */
static kg_result kg_attr_open_value(const uint8_t *raw, uint32_t raw_len, struct kg_ttlv_budget *b,
                                    struct kg_ttlv_reader *r, struct kg_ttlv_item *it)
{
    kg_ttlv_budget_init(b, NULL);
    KG_GUARD(kg_ttlv_reader_init(r, raw, raw_len, b));
    KG_GUARD(kg_ttlv_read(r, it));
    KG_ENSURE(it->type == KG_TTLV_STRUCTURE, KG_ERR_BAD_ATTRIBUTE);
    return KG_RESULT_OK;
}

/* A Digest for KMIP 1.0, whose Digest structure is Hashing Algorithm and
 * Digest Value only: the stored value without its Key Format Type. */
static kg_result kg_attr_write_digest_10(struct kg_ttlv_writer *w, const char *name, int32_t index,
                                         const uint8_t *value, uint32_t value_len)
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item it, alg, dv;

    KG_GUARD(kg_attr_open_value(value, value_len, &b, &r, &it));
    KG_GUARD(kg_ttlv_child(&r, &it, &c));
    KG_GUARD(kg_ttlv_read_expect(&c, KG_TAG_HASHING_ALGORITHM, KG_TTLV_ENUMERATION, &alg));
    KG_GUARD(kg_ttlv_read_expect(&c, KG_TAG_DIGEST_VALUE, KG_TTLV_BYTE_STRING, &dv));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    if (index > 0) {
        KG_GUARD(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_INDEX, index));
    }
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE_VALUE));
    KG_GUARD(kg_ttlv_write_raw(w, alg.raw, alg.raw_len));
    KG_GUARD(kg_ttlv_write_raw(w, dv.raw, dv.raw_len));
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

kg_result kg_attr_write_for(struct kg_ttlv_writer *w, const char *name, int32_t index, const uint8_t *value,
                            uint32_t value_len, int32_t major, int32_t minor)
{
    if (major == 1 && minor == 0 && strcmp(name, "Digest") == 0) {
        return kg_attr_write_digest_10(w, name, index, value, value_len);
    }
    return kg_attr_write(w, name, index, value, value_len);
}

/* ---- what the server sets on a new object ------------------------------ */

/* RNG Algorithm Unspecified (KMIP 1.4 section 9.1.3.2.40), what Query
 * answers for the RNGs too (kg_op_query.c). */
#define KG_ATTR_RNG_UNSPECIFIED 0x01u

/* Store the value `w` holds as the one instance of `name` (`replace`: after
 * deleting any there is; a new object has none of the server's own), and
 * empty `w` for the next value (every Structure in it is closed by then). */
static kg_result kg_attr_store_one(struct kg_store *store, const char *uid, const char *name,
                                   struct kg_ttlv_writer *w, bool replace)
{
    int32_t index;

    KG_ENSURE(w->depth == 0, KG_ERR_INTERNAL);
    if (replace) {
        KG_GUARD(kg_store_delete_attr_all(store, uid, name));
    }
    KG_GUARD(kg_store_add_attr(store, uid, name, w->buf, w->len, &index));
    w->len = 0;
    return KG_RESULT_OK;
}

static kg_result kg_attr_store_new_rows(struct kg_store *store, const char *uid, const struct kg_attr_new *n,
                                        struct kg_ttlv_writer *w)
{
    if (n->has_digest) {
        KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE_VALUE));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_HASHING_ALGORITHM, KG_HASH_SHA256));
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_DIGEST_VALUE, n->digest, sizeof(n->digest)));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_KEY_FORMAT_TYPE, n->key_format != 0 ? n->key_format : KG_FORMAT_RAW));
        KG_GUARD(kg_ttlv_end_struct(w));
        KG_GUARD(kg_attr_store_one(store, uid, "Digest", w, false));
    }
    if (n->key_format != 0) {
        /* Derived for keys made here; a registered key keeps its own. */
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, n->key_format));
        KG_GUARD(kg_attr_store_one(store, uid, "Key Format Type", w, false));
    }
    if (!n->fresh_given) {
        KG_GUARD(kg_ttlv_write_bool(w, KG_TAG_ATTRIBUTE_VALUE, true));
        KG_GUARD(kg_attr_store_one(store, uid, "Fresh", w, false));
    }
    KG_GUARD(kg_ttlv_write_interval(w, KG_TAG_ATTRIBUTE_VALUE, KG_ATTR_LEASE_TIME));
    KG_GUARD(kg_attr_store_one(store, uid, "Lease Time", w, false));
    if (n->generated) {
        /* The same instant as Initial Date (section 3.43); a client's
         * value in the template does not count for a key made here. */
        KG_GUARD(kg_attr_store_date(store, uid, "Original Creation Date", n->now));
        KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE_VALUE));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_RNG_ALGORITHM, KG_ATTR_RNG_UNSPECIFIED));
        KG_GUARD(kg_ttlv_end_struct(w));
        KG_GUARD(kg_attr_store_one(store, uid, "Random Number Generator", w, false));
    }
    return KG_RESULT_OK;
}

kg_result kg_attr_store_new(struct kg_store *w, const char *uid, const struct kg_attr_new *n)
{
    struct kg_ttlv_writer tw;
    kg_result rc;

    KG_GUARD(kg_ttlv_writer_init(&tw, KG_ATTR_VALUE_MAX, false));
    rc = kg_attr_store_new_rows(w, uid, n, &tw);
    kg_ttlv_writer_cleanup(&tw);
    return rc;
}

bool kg_attr_is_derived(const char *name)
{
    for (uint32_t i = 0; i < kg_attr_derived_count; i++) {
        if (strcmp(kg_attr_derived_names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Is a stored Boolean row (Fresh, Sensitive) True? */
static bool kg_attr_true_fn(void *arg, const struct kg_attr *a)
{
    static const uint8_t yes[16] = { 0x42, 0x00, 0x0B, KG_TTLV_BOOLEAN, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1 };

    *(bool *)arg = a->value_len == sizeof(yes) && memcmp(a->value, yes, sizeof(yes)) == 0;
    return false;
}

kg_result kg_attr_is_fresh(struct kg_store *store, const char *uid, bool *fresh)
{
    *fresh = false;
    return kg_store_each_attr(store, uid, "Fresh", kg_attr_true_fn, fresh);
}

kg_result kg_attr_load_sensitive(struct kg_store *store, struct kg_object *obj)
{
    obj->sensitive = false;
    obj->sensitive_raised = false;
    KG_GUARD(kg_store_each_attr(store, obj->uid, "Sensitive", kg_attr_true_fn, &obj->sensitive));
    return kg_store_each_attr(store, obj->uid, KG_ATTR_SENSITIVE_RAISED, kg_attr_true_fn, &obj->sensitive_raised);
}

kg_result kg_attr_sensitive_change(struct kg_store *w, const struct kg_object *obj, const struct kg_attr_in *a)
{
    static const uint8_t yes[16] = { 0x42, 0x00, 0x0B, KG_TTLV_BOOLEAN, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1 };
    struct kg_object now = *obj;
    bool raise;
    int32_t index;

    if (strcmp(a->name, "Sensitive") != 0) {
        return KG_RESULT_OK;
    }
    raise = a->value.raw_len == sizeof(yes) && memcmp(a->value.raw, yes, sizeof(yes)) == 0;
    /* Read inside the change: the caller's copy may predate it. */
    KG_GUARD(kg_attr_load_sensitive(w, &now));
    if (now.storage == KG_P11_STORED_RESIDENT || now.sensitive) {
        if (!raise) {
            kg_error_set(KG_ERR_READ_ONLY_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("Sensitive may be raised, never lowered: this object stays sensitive");
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    if (!raise || now.sensitive_raised) {
        return KG_RESULT_OK;
    }
    return kg_store_add_attr(w, obj->uid, KG_ATTR_SENSITIVE_RAISED, yes, sizeof(yes), &index);
}

kg_result kg_attr_mark_served(struct kg_store *w, const char *uid)
{
    struct kg_ttlv_writer tw;
    bool fresh = false;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_attr_is_fresh(w, uid, &fresh));
    if (!fresh) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_ttlv_writer_init(&tw, 16, false));
    KG_GOTO_GUARD(rc, kg_ttlv_write_bool(&tw, KG_TAG_ATTRIBUTE_VALUE, false));
    KG_GOTO_GUARD(rc, kg_attr_store_one(w, uid, "Fresh", &tw, true));
out:
    kg_ttlv_writer_cleanup(&tw);
    return rc;
}

/* ---- Usage Limits -------------------------------------------------------- */

struct kg_attr_limits {
    bool has_total, has_count, has_unit;
    int64_t total, count;
    uint32_t unit;
};

/* Read a Usage Limits value: each field at most once, in any order. */
static kg_result kg_attr_limits_read(const uint8_t *raw, uint32_t raw_len, struct kg_attr_limits *l)
{
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r, c;
    struct kg_ttlv_item it;

    memset(l, 0, sizeof(*l));
    KG_GUARD(kg_attr_open_value(raw, raw_len, &b, &r, &it));
    KG_GUARD(kg_ttlv_child(&r, &it, &c));
    while (!kg_ttlv_reader_done(&c)) {
        KG_GUARD(kg_ttlv_read(&c, &it));
        if (it.tag == KG_TAG_USAGE_LIMITS_TOTAL && !l->has_total) {
            KG_GUARD(kg_ttlv_get_long(&it, &l->total));
            l->has_total = true;
        } else if (it.tag == KG_TAG_USAGE_LIMITS_COUNT && !l->has_count) {
            KG_GUARD(kg_ttlv_get_long(&it, &l->count));
            l->has_count = true;
        } else if (it.tag == KG_TAG_USAGE_LIMITS_UNIT && !l->has_unit) {
            KG_GUARD(kg_ttlv_get_enum(&it, &l->unit));
            l->has_unit = true;
        } else {
            kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
            kg_error_detail("Usage Limits has an unexpected or repeated field 0x%06X", it.tag);
            return KG_RESULT_ERROR;
        }
    }
    return KG_RESULT_OK;
}

kg_result kg_attr_usage_limits(const struct kg_attr_in *in, bool creating, uint8_t *out, uint32_t cap,
                               uint32_t *len)
{
    struct kg_attr_limits l;
    struct kg_ttlv_writer w;
    kg_result rc = KG_RESULT_OK;

    *len = 0;
    if (kg_failed(kg_attr_limits_read(in->value.raw, in->value.raw_len, &l))) {
        int err = kg_errno();

        /* A malformed value is the client's: an attribute error, whatever
         * the codec called it. */
        kg_error_set(kg_error_category_of(err) == KG_ERR_T_FIELD ? err : KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("Usage Limits is malformed");
        return KG_RESULT_ERROR;
    }
    if (!l.has_total || !l.has_unit || l.total < 0) {
        kg_error_set(KG_ERR_BAD_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("Usage Limits needs Usage Limits Total (not negative) and Usage Limits Unit");
        return KG_RESULT_ERROR;
    }
    if (l.has_count && !creating) {
        kg_error_set(KG_ERR_READ_ONLY_ATTRIBUTE, __FILE__, __LINE__);
        kg_error_detail("Usage Limits Count is kept by the server");
        return KG_RESULT_ERROR;
    }
    /* Count starts at Total (section 3.21); a client's Count at creation
     * is ignored, as the section says. */
    KG_GUARD(kg_ttlv_writer_init(&w, cap, false));
    KG_GOTO_GUARD(rc, kg_ttlv_begin_struct(&w, KG_TAG_ATTRIBUTE_VALUE));
    KG_GOTO_GUARD(rc, kg_ttlv_write_long(&w, KG_TAG_USAGE_LIMITS_TOTAL, l.total));
    KG_GOTO_GUARD(rc, kg_ttlv_write_long(&w, KG_TAG_USAGE_LIMITS_COUNT, l.total));
    KG_GOTO_GUARD(rc, kg_ttlv_write_enum(&w, KG_TAG_USAGE_LIMITS_UNIT, l.unit));
    KG_GOTO_GUARD(rc, kg_ttlv_end_struct(&w));
    memcpy(out, w.buf, w.len);
    *len = w.len;
out:
    kg_ttlv_writer_cleanup(&w);
    return rc;
}

bool kg_attr_usage_limits_used(const uint8_t *value, uint32_t value_len)
{
    struct kg_attr_limits l;
    bool used = true;

    if (kg_ok(kg_attr_limits_read(value, value_len, &l)) && l.has_total && l.has_count) {
        used = l.count != l.total;
    }
    kg_error_clear();
    return used;
}

/* The first stored instance of a Date-Time, read in place (no copy of the
 * row); the callback stops at it. */
struct kg_attr_date_read {
    bool found, readable;
    int64_t when;
};

static bool kg_attr_date_fn(void *arg, const struct kg_attr *a)
{
    struct kg_attr_date_read *d = arg;
    struct kg_ttlv_budget b;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    d->found = true;
    kg_ttlv_budget_init(&b, NULL);
    d->readable = kg_ok(kg_ttlv_reader_init(&r, a->value, a->value_len, &b)) && kg_ok(kg_ttlv_read(&r, &it)) &&
                  kg_ok(kg_ttlv_get_datetime(&it, &d->when));
    return false;
}

kg_result kg_attr_get_date(struct kg_store *store, const char *uid, const char *name, bool *found, int64_t *when)
{
    struct kg_attr_date_read d = { false, false, 0 };

    *found = false;
    *when = 0;
    KG_GUARD(kg_store_each_attr(store, uid, name, kg_attr_date_fn, &d));
    if (d.found && !d.readable) {
        /* kmipgw writes only Date-Times there: the store's fault, not the
         * client's (a TTLV error must not close the connection). */
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("stored %s of %s is unreadable", name, uid);
        return KG_RESULT_ERROR;
    }
    *found = d.found;
    *when = d.found ? d.when : 0;
    return KG_RESULT_OK;
}
