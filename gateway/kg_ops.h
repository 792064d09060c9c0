/*
 * kg_ops.h - the operation table and what an operation handler is given.
 *
 * One file per operation (or per family of small ones) holds its decode,
 * execute and encode together. The dispatcher (kg_dispatch.c) checks, in
 * this order: the opcode has an entry; the protocol version; the target
 * object exists and is in the caller's scope; the policy decision. Only then
 * does it call the handler, which never re-checks policy.
 */
#ifndef KG_OPS_H
#define KG_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "kg_attr.h"
#include "kg_gateway.h"
#include "kg_msg.h"
#include "kg_p11_import.h"
#include "kg_p11_wrap.h"
#include "kg_policy.h"
#include "kg_store.h"
#include "kg_ttlv.h"

struct kg_op_ctx {
    struct kg_gateway *gw;
    struct kg_policy *policy;              /* the policy this request holds a reference to */
    struct kg_store *store;                /* this worker's connection */
    const struct kg_identity *identity;
    const struct kg_policy_group *group;   /* the caller's group (allowed) */
    struct kg_request *request;
    struct kg_version version;
    int64_t now;                           /* seconds since the epoch, one per message */
    /* The target object, loaded by the dispatcher for ops that name one. */
    bool has_object;
    struct kg_object object;
    /* ID Placeholder (KMIP 1.4 section 6.x): the UID the previous batch item
     * produced, used when an item omits its Unique Identifier. */
    char id_placeholder[KG_UID_LEN + 1];
    /* The previous item was a Locate that found nothing: an item relying on
     * the placeholder then names no object (Item Not Found), where an empty
     * placeholder otherwise means the client left its UID out (Missing Data). */
    bool id_placeholder_found_nothing;
    /* A Get's named wrapping key and its owner, for the policy request. */
    char wrapping_uid[KG_UID_LEN + 1];
    char wrapping_owner[KG_GROUP_MAX + 1];
    /* A Get's attribute facts, read by kg_op_get_facts inside the
     * dispatcher's read snapshot; false: the handler reads them itself. */
    bool has_get_facts;
    struct kg_attr_get_facts get_facts;
    /* Set by handlers for the audit record. */
    char audit_uid[KG_UID_LEN + 1];
    const char *audit_note; /* static text, e.g. "plaintext export" */
    /* The items run as one change of a batch with Undo (kg_dispatch.c). */
    bool undo_batch;
    /* The connection the message came on (0: none): pending operations
     * belong to it (kg_async.h). */
    uint64_t conn_id;
    /* Set by a Poll that found its item, which the dispatcher then runs and
     * answers in the Poll's place; owned, freed by the dispatcher. */
    bool has_polled;
    struct kg_async_entry polled;
};

/* Reads the payload, does the work, writes the Response Payload's children. */
typedef kg_result (*kg_op_execute_fn)(struct kg_op_ctx *ctx, struct kg_ttlv_reader *payload,
                                      struct kg_ttlv_writer *out);

/*
 * Reads, from a copy of the payload, what policy must know before the
 * operation may run (what a Create asks for, the form a Get answers in).
 * Borrowed strings it stores must live in ctx.
 */
typedef kg_result (*kg_op_facts_fn)(struct kg_op_ctx *ctx, struct kg_ttlv_reader payload,
                                    struct kg_policy_request *req);

struct kg_op {
    kg_op_execute_fn execute; /* named by kg_policy_operation_name(code) */
    kg_op_facts_fn facts; /* NULL: the operation and its target are all policy needs */
    bool targets_object; /* first payload item is a (possibly omitted) UID */
    /* The target may be archived (Recover, Get Attributes, Get Attribute
     * List); any other operation on an archived object is Object Archived. */
    bool archived_ok;
};

/* The table entry of `operation`, or NULL: Operation Not Supported. */
const struct kg_op *kg_ops_lookup(uint32_t operation);

/* Policy facts of the operations that have them. */
kg_result kg_op_create_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req) KG_WARN_UNUSED;
kg_result kg_op_register_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req) KG_WARN_UNUSED;
kg_result kg_op_get_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req) KG_WARN_UNUSED;

/* Handlers, one per operation. */
kg_result kg_op_discover_versions(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_query(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_create(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_register(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_get(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_get_attributes(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_get_attribute_list(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_add_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_modify_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_delete_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* KMIP 2.x Set Attribute (2.1 section 6.1.51), given in the 1.4 form
 * kg_kmip2_request makes of it (Unique Identifier, Attribute): adds the
 * attribute if the object has none, changes it if it has one, refuses if it
 * has several. A 1.x client is told the operation is not supported. */
kg_result kg_op_set_attribute(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_activate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_revoke(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_destroy(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_locate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* Check, Obtain Lease, Get Usage Allocation (kg_op_usage.c). */
kg_result kg_op_check(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_obtain_lease(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_get_usage_allocation(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                     struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* Archive and Recover (kg_op_archive.c). */
kg_result kg_op_archive(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_recover(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* KG_ERR_OBJECT_ARCHIVED if ctx->object is archived (the dispatcher asks,
 * after policy, for every operation without archived_ok). */
kg_result kg_op_refuse_archived(struct kg_op_ctx *ctx) KG_WARN_UNUSED;
/*
 * KMIP 1.4 section 3.22: an object moves to Active when its Activation
 * Date is reached and to Deactivated when its Deactivation Date is
 * (transitions 4 and 6, and 3 from Pre-Active). Dates are set in advance,
 * so the move is made when the object is next used: the dispatcher calls
 * this, after policy, for every operation on an object; a move is
 * committed durably before the operation goes on (kg_op_lifecycle.c).
 */
kg_result kg_op_lifecycle_follow_dates(struct kg_op_ctx *ctx) KG_WARN_UNUSED;
/* Poll and Cancel of deferred operations (kg_op_async.c). */
kg_result kg_op_poll(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_cancel(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* Who, for the pending table, is sending ctx's message. */
struct kg_async_who kg_op_async_who(const struct kg_op_ctx *ctx);
/* Milliseconds of the monotonic clock (rate limits, pending lifetimes). */
uint64_t kg_dispatch_now_ms(void);
/* Log and Interop (kg_op_interop.c). */
kg_result kg_op_log(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_interop(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/* Server-side cryptography (kg_op_crypto.c). */
kg_result kg_op_encrypt(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_decrypt(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_sign(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_signature_verify(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_mac(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_mac_verify(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/*
 * Shared by handlers that target an object: consume the optional Unique
 * Identifier at the head of the payload (the dispatcher already resolved it
 * and loaded ctx->object) and write it back as the first response item.
 */
kg_result kg_op_skip_uid(struct kg_ttlv_reader *in) KG_WARN_UNUSED;
kg_result kg_op_write_uid(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/*
 * The UID an item names in `it` (its Unique Identifier, when `present`), or
 * else ctx's ID Placeholder, into caller storage `out`. No placeholder:
 * KG_ERR_NOT_FOUND after a Locate that found nothing, else
 * KG_ERR_MISSING_FIELD; a UID not of our length cannot exist: KG_ERR_NOT_FOUND.
 */
kg_result kg_op_uid_or_placeholder(const struct kg_op_ctx *ctx, const struct kg_ttlv_item *it, bool present,
                                   char out[KG_UID_LEN + 1]) KG_WARN_UNUSED;

/* Attributes given to Create or Register (a 1.x Template-Attribute). */
#define KG_TEMPLATE_MAX_ATTRS 32
/* Template objects (KMIP 1.x, kg_op_template.c) one Template-Attribute may
 * name, and the bytes of attribute values they may bring into it. */
#define KG_TEMPLATE_MAX_REFS 4
#define KG_TEMPLATE_REF_BYTES 16384
/* Never copied by value: extra[] may point into ref_values. */
struct kg_template {
    uint32_t object_type; /* 0 if the template did not say */
    bool has_algorithm;
    uint32_t algorithm;
    bool has_length;
    int32_t length;
    bool has_usage_mask;
    int32_t usage_mask;
    uint32_t extra_count; /* attributes stored as rows */
    struct kg_attr_in extra[KG_TEMPLATE_MAX_ATTRS];
    /* Set by the handler for what the server sets (kg_attr_store_new). */
    bool generated;         /* Create: the server made the key material */
    /* Certificate Type named by the template (Register of a certificate:
     * it must agree with the certificate, which sets the attribute). */
    bool has_certificate_type;
    uint32_t certificate_type;
    /* Rows the server sets on the new object from what was registered
     * (certificate attributes, Secret Data Type), inserted with it by
     * kg_op_store_new_object; NULL when none. Borrowed. */
    const struct kg_op_server_rows *server_rows;
    /* Values of the attributes referenced Template objects gave
     * (kg_op_template_resolve), which extra[] entries point into, and
     * how many templates the Template-Attribute named. */
    uint32_t ref_templates;
    uint32_t ref_used;
    uint8_t ref_values[KG_TEMPLATE_REF_BYTES];
};

/* The Names a Template-Attribute gave (KMIP 1.4 section 2.1.8): items
 * borrowed from the request, in their order. */
struct kg_template_refs {
    uint32_t count;
    struct kg_ttlv_item name[KG_TEMPLATE_MAX_REFS];
};

/*
 * Attribute rows the server makes for a new object, as encoded Attribute
 * Values back to back in `w` (grown as needed; offsets, not pointers, so
 * growth moves nothing that is kept). kg_op_server_rows_init sets it up,
 * kg_op_server_rows_cleanup releases it; kg_op_server_rows_close makes the
 * value written to w since `start` (one complete item) row `name`.
 * KG_ERR_BAD_ATTRIBUTE past KG_OP_SERVER_ROWS_MAX rows or a value over
 * KG_ATTR_VALUE_MAX. Nothing secret goes in here.
 */
#define KG_OP_SERVER_ROWS_MAX 64
struct kg_op_server_rows {
    uint32_t count;
    struct {
        const char *name; /* static */
        uint32_t off, len;
    } row[KG_OP_SERVER_ROWS_MAX];
    struct kg_ttlv_writer w;
};
kg_result kg_op_server_rows_init(struct kg_op_server_rows *r) KG_WARN_UNUSED;
void kg_op_server_rows_cleanup(struct kg_op_server_rows *r);
kg_result kg_op_server_rows_close(struct kg_op_server_rows *r, const char *name, uint32_t start) KG_WARN_UNUSED;

/* ---- Secret Data, Opaque Object, Certificate --------------------------
 * (kg_op_register_data.c, kg_op_get_data.c, kg_cert.c) */

/* Is `object_type` one of the three: Register and Get hand those here. */
bool kg_op_is_data_object(uint32_t object_type);

/* Policy facts of a Register of one of them (the payload from Object
 * Type on): type, usage mask, and for a certificate its key's algorithm
 * and length. */
kg_result kg_op_register_data_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                    struct kg_policy_request *req) KG_WARN_UNUSED;

/* Register of Secret Data or an Opaque Object (the value imported into
 * the HSM as a generic secret and stored wrapped under the MWK, like a
 * plaintext symmetric key) or of an X.509 certificate (stored in the
 * clear, sealed, its attributes set from it). */
kg_result kg_op_register_data(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                              struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/* Get of ctx->object, one of the three, its request already read: Key
 * Format Type (`has_format`, `format`) and whether a Key Wrapping
 * Specification asked for `wrapping`. */
kg_result kg_op_get_data(struct kg_op_ctx *ctx, bool has_format, uint32_t format, bool wrapping,
                         struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/*
 * Parse X.509 certificate `der` (exactly one DER certificate, nothing
 * after it) and write its attributes as server rows into `rows`:
 * Certificate Type, Certificate Length, X.509 Certificate Identifier,
 * Subject and Issuer, the 1.x Certificate Identifier, Subject and
 * Issuer, Digital Signature Algorithm (when KMIP names it), and the 2.x
 * Certificate Subject and Issuer name parts. *algorithm and *bits get
 * its public key's KMIP algorithm and size (0 when neither RSA nor EC).
 * Not a certificate: KG_ERR_INVALID_FIELD with a detail. Borrows nothing.
 */
kg_result kg_cert_parse(const uint8_t *der, uint32_t len, struct kg_op_server_rows *rows, uint32_t *algorithm,
                        int32_t *bits) KG_WARN_UNUSED;

/*
 * Create and Register: Object Type (Symmetric Key only) and the template.
 * *t and *obj are allocated here and freed by the caller, also on failure;
 * (*obj)->object_type is set. `op` names the operation in messages.
 */
kg_result kg_op_read_new_key(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, const char *op,
                             struct kg_template **t, struct kg_object **obj) KG_WARN_UNUSED;

/*
 * Add one Template-Attribute attribute to *t: the four Create and Register
 * read themselves (algorithm, length, usage mask, object type; each at most
 * once), else a client-settable attribute kept as a row (single-valued ones
 * once). Values borrow from the request.
 */
kg_result kg_op_template_add(struct kg_template *t, const struct kg_attr_in *a) KG_WARN_UNUSED;

/*
 * Read an optional Template-Attribute; values borrow from the request.
 * Template Names in it are resolved (kg_op_template_resolve) against
 * ctx's store and scope: their attributes are added, the request's own
 * taking precedence.
 */
kg_result kg_op_read_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                              struct kg_template *out) KG_WARN_UNUSED;

/* ---- Template objects (KMIP 1.4 section 2.2.6; kg_op_template.c) ------- */

/*
 * Read one Template-Attribute Name item `it` (a child of `parent`) into
 * `refs`: KMIP 2.x has none (Invalid Field), more than
 * KG_TEMPLATE_MAX_REFS is Invalid Field.
 */
kg_result kg_op_template_ref(const struct kg_op_ctx *ctx, const struct kg_ttlv_item *it,
                             struct kg_template_refs *refs) KG_WARN_UNUSED;

/*
 * Add to `t` (the request's own attributes already in it) the attributes
 * of the Template objects `refs` names, KMIP 1.4 section 2.1.8 / 4.2: an
 * attribute the request gives explicitly wins; among templates, the last
 * one's single-valued attribute wins; multi-valued ones are the union. A
 * template's Name is its own, never copied. Each Name must name exactly
 * one live Template in the caller's scope: none is Item Not Found, an
 * object that is no Template is Invalid Field. Values are copied into
 * t->ref_values (bounded: KG_TEMPLATE_REF_BYTES), nothing else allocated.
 */
kg_result kg_op_template_resolve(struct kg_op_ctx *ctx, const struct kg_template_refs *refs,
                                 struct kg_template *t) KG_WARN_UNUSED;

/* Register of a Template object (KMIP 1.x only), and its policy facts:
 * the object type alone (a template holds no key). */
kg_result kg_op_register_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                  struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_register_template_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                        struct kg_policy_request *req) KG_WARN_UNUSED;

/* Get of Template ctx->object: Object Type, Unique Identifier and Template
 * { its client-settable attributes, Name included }. A Key Format Type or
 * wrapping asked of it is Invalid Field (it has no key); destroyed, Object
 * Destroyed; a 2.x client, Invalid Field. */
kg_result kg_op_get_template(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                             struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/* Illegal Operation if `obj` is a Template, which has no life cycle to
 * move through (KMIP 1.4 Tables 346 and 347); `what` ends the message. */
kg_result kg_op_template_no_lifecycle(const struct kg_object *obj, const char *what) KG_WARN_UNUSED;

/* Every attribute of `t` exists in ctx's protocol version (else Bad Attribute). */
kg_result kg_op_template_check_version(const struct kg_op_ctx *ctx, const struct kg_template *t) KG_WARN_UNUSED;

/* The caller's scope into a Locate query; `owners` is caller storage of
 * KG_STORE_LOCATE_MAX_OWNERS entries that must outlive the query
 * (kg_op_locate.c). */
kg_result kg_op_locate_scope(const struct kg_op_ctx *ctx, const char **owners,
                             struct kg_store_locate *q) KG_WARN_UNUSED;

/*
 * Insert `obj` (uid, type, algorithm, length, mask and blob filled in) with
 * the template's attributes, Initial Date and Last Change Date, owned by the
 * caller's group, in one durable transaction. A group with residency hsm
 * gets KG_ERR_DENIED for an object with storage WRAPPED.
 */
kg_result kg_op_store_new_object(struct kg_op_ctx *ctx, struct kg_object *obj,
                                 const struct kg_template *t) KG_WARN_UNUSED;

/*
 * Read Object Type and the template from `in` into the policy request;
 * *out gets the template (the caller frees it) for further facts.
 */
kg_result kg_op_template_policy_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in,
                                      struct kg_policy_request *req, struct kg_template **out) KG_WARN_UNUSED;

/* ---- asymmetric Key Format Types (kg_op_pkey.c) ---------------------------- */

/* The Key Material of a Private or Public Key's Key Block, borrowed from the request. */
struct kg_op_pkey_in {
    uint32_t object_type;
    uint32_t format;
    const uint8_t *der; /* PKCS#1, PKCS#8, X.509: the Byte String */
    uint32_t der_len;
    bool transparent;                /* a Transparent format: */
    struct kg_ttlv_reader material;  /* the Key Material structure's children */
};

/* Is `format` one whose Key Material is a structure of Big Integers? */
bool kg_op_pkey_transparent(uint32_t format);

/* May a key of `object_type` (Private or Public Key) be registered in `format`? */
bool kg_op_pkey_format_ok(uint32_t object_type, uint32_t format);

/* The components of the key `in` carries into *parts (spans into the
 * request; nothing allocated, nothing to free). Errors: KG_ERR_INVALID_FIELD
 * (malformed DER or structure), KG_ERR_UNSUPPORTED_ALGORITHM/_FORMAT. */
kg_result kg_op_pkey_parts(const struct kg_op_pkey_in *in, struct kg_p11_parts *parts) KG_WARN_UNUSED;

/* kg_op_pkey_parts of a private key, with its KMIP algorithm (RSA, DSA,
 * EC) and length (modulus, p, or curve bits): no HSM involved, so Register's
 * policy facts use it too. */
kg_result kg_op_pkey_private_facts(const struct kg_op_pkey_in *in, struct kg_p11_parts *parts, uint32_t *algorithm,
                                   int32_t *bits) KG_WARN_UNUSED;

/* Invalid Field unless the declared algorithm (EC may be declared ECDSA)
 * and length, where given, are the key's own. */
kg_result kg_op_pkey_check_declared(uint32_t algorithm, int32_t bits, bool has_alg, uint32_t declared_alg,
                                    bool has_len, int32_t declared_len) KG_WARN_UNUSED;

/* Register of a private key: its components go from the request buffer to
 * the HSM (kg_p11_import_private) and come back wrapped under the MWK into
 * obj->blob (storage WRAPPED); obj->algorithm (ECDSA kept if the caller
 * set it for an EC key), length and key_format are set. The caller checks
 * what was declared first, and stores the object. */
kg_result kg_op_pkey_register_private(struct kg_op_ctx *ctx, const struct kg_op_pkey_in *in,
                                      struct kg_object *obj) KG_WARN_UNUSED;

/* Register of a Transparent RSA or DSA public key: stored as SPKI DER
 * (storage PUBLIC) in obj->blob, with algorithm and length. */
kg_result kg_op_pkey_register_public(const struct kg_op_pkey_in *in, struct kg_object *obj) KG_WARN_UNUSED;

/* Key Format Type Not Supported unless private key `obj` can be written in
 * the clear in `format` (RSA: PKCS#1, PKCS#8, Transparent RSA; DSA: PKCS#8,
 * Transparent DSA). */
kg_result kg_op_pkey_check_private_format(const struct kg_object *obj, uint32_t format) KG_WARN_UNUSED;

/* The Key Material of private key `obj` in the clear in `format`, into the
 * (locked) response writer: read from the HSM into a kg_secret, written,
 * wiped. Only where policy allows plaintext export of private keys. */
kg_result kg_op_pkey_write_private(struct kg_op_ctx *ctx, const struct kg_object *obj, uint32_t format,
                                   struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/* The Key Material of public key `obj` in a Transparent `format`. */
kg_result kg_op_pkey_write_public(const struct kg_object *obj, uint32_t format,
                                  struct kg_ttlv_writer *out) KG_WARN_UNUSED;
/*
 * Before a key resident in the HSM is made or destroyed: a batch with Undo
 * (ctx->undo_batch) could not roll that back, so it is refused there with
 * Feature Not Supported; anywhere else, OK.
 */
kg_result kg_op_check_undoable(const struct kg_op_ctx *ctx) KG_WARN_UNUSED;

/* AES with 128, 192 or 256 bits, else the matching KMIP error. */
kg_result kg_op_check_aes(uint32_t algorithm, int32_t length) KG_WARN_UNUSED;

/*
 * The HSM's name for stored key `obj`: kind from Object Type and
 * Cryptographic Algorithm, storage and blob from the row. *out borrows from
 * *obj (blob, UID), which must outlive its use.
 * Errors: KG_ERR_UNSUPPORTED_ALGORITHM (not a key the HSM layer knows),
 * KG_ERR_WRONG_STATE (key material destroyed).
 */
kg_result kg_op_key_ref(const struct kg_object *obj, struct kg_p11_key_ref *out) KG_WARN_UNUSED;

/* What `obj`'s blob is bound to (kg_op_keyref.c): pointers into obj, valid
 * while obj is; tag NULL when the row is unsealed. */
void kg_op_binding(const struct kg_object *obj, struct kg_p11_binding *out);

/* Seal `obj` before it is stored: set obj->blob_mac (kg_p11_blob_seal over
 * its blob and owner_group, type, algorithm, length, storage, UID, all
 * final by now) and blob_sealed. A resident or empty blob needs none. */
kg_result kg_op_seal(struct kg_p11 *p11, struct kg_object *obj) KG_WARN_UNUSED;

/*
 * Key wrapping (KMIP 1.4 sections 2.1.5 and 2.1.6), shared by Get (wrapped
 * export) and Register (wrapped import); kg_op_wrap.c.
 */
struct kg_op_wrap_params { /* the Cryptographic Parameters fields wrapping uses */
    bool has_mode, has_padding, has_hashing;
    uint32_t mode, padding, hashing;
};
struct kg_op_wrap_info { /* a Key Wrapping Specification or Key Wrapping Data */
    uint32_t method;
    bool has_uid;
    char uid[KG_UID_LEN + 1];
    bool has_params;
    struct kg_op_wrap_params params;
    uint32_t encoding;        /* KG_ENCODING_NONE when absent (see kg_op_wrap_read) */
    bool has_encoding;        /* the Encoding Option was given */
    bool has_attribute_names; /* attributes to wrap with the key (TTLV Encoding only) */
    bool unsupported;         /* MAC/signature or IV given */
};

/* Read Key Wrapping Specification or Key Wrapping Data `item` (a child of
 * `parent`); borrows nothing. Bounded by the reader's budget. */
kg_result kg_op_wrap_read(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                          struct kg_op_wrap_info *out) KG_WARN_UNUSED;

/*
 * Check `info` and find its key: Encrypt with No Encoding only; the key
 * exists (*key, caller storage, filled), is Active, has usage bit `usage`
 * (KG_USAGE_WRAP_KEY or KG_USAGE_UNWRAP_KEY, else Permission Denied) and is
 * AES or an RSA public key; with `scope_only` a key outside the caller's
 * scope is Item Not Found (Register: policy did not judge that key; Get:
 * groups.<g>.wrapping_keys did). The parameters are the request's (which must
 * match one of the key's Cryptographic Parameters, if it has any) or the
 * key's first. *mech and *used get what to do and what to report.
 */
kg_result kg_op_wrap_prepare(struct kg_op_ctx *ctx, const struct kg_op_wrap_info *info, int32_t usage,
                             bool scope_only, struct kg_object *key, enum kg_p11_wrap_mech *mech,
                             struct kg_op_wrap_params *used) KG_WARN_UNUSED;

/* Write Key Wrapping Data { Encrypt, Encryption Key Information { uid,
 * Cryptographic Parameters `used` }, No Encoding }. */
kg_result kg_op_wrap_write_data(struct kg_ttlv_writer *out, const char *uid,
                                const struct kg_op_wrap_params *used) KG_WARN_UNUSED;
/* The same with Encoding Option `encoding`; 0 leaves it out (the request
 * omitted it, and so does the answer). */
kg_result kg_op_wrap_write_data_enc(struct kg_ttlv_writer *out, const char *uid,
                                    const struct kg_op_wrap_params *used, uint32_t encoding) KG_WARN_UNUSED;

/*
 * The Key Wrapping Data a key was registered wrapped with, as the store
 * keeps it (struct kg_object registered_wrapping): encode writes it into
 * caller storage buf[0..cap) (KG_ERR_WRITER_FULL past cap); decode reads it
 * back into *out (caller storage, borrows nothing; anything unreadable is
 * KG_ERR_STORE). No secret in either: a UID and enumerations.
 */
kg_result kg_op_wrap_encode_registered(const char *uid, const struct kg_op_wrap_params *used, uint32_t encoding,
                                       uint8_t *buf, uint32_t cap, uint32_t *len) KG_WARN_UNUSED;
kg_result kg_op_wrap_decode_registered(const uint8_t *buf, uint32_t len, struct kg_op_wrap_info *out) KG_WARN_UNUSED;

/* A new random UID (RFC 4122 version 4 text) from OpenSSL's DRBG. */
kg_result kg_op_new_uid(char out[KG_UID_LEN + 1]) KG_WARN_UNUSED;

/* ---- key pairs and re-key (kg_op_keypair.c, kg_op_rekey.c) ------------- */

kg_result kg_op_create_key_pair_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in,
                                      struct kg_policy_request *req) KG_WARN_UNUSED;
kg_result kg_op_rekey_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in, struct kg_policy_request *req) KG_WARN_UNUSED;
kg_result kg_op_rekey_key_pair_facts(struct kg_op_ctx *ctx, struct kg_ttlv_reader in,
                                     struct kg_policy_request *req) KG_WARN_UNUSED;
kg_result kg_op_create_key_pair(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_rekey(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_rekey_key_pair(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/* Add a Link row (`link_type`, enum kg_link_type, to `target`) to `uid`. */
kg_result kg_op_link_store(struct kg_store *w, const char *uid, uint32_t link_type, const char *target) KG_WARN_UNUSED;
/* The target of `uid`'s first Link of `link_type`; KG_ERR_NOT_FOUND if none. */
kg_result kg_op_link_find(struct kg_store *s, const char *uid, uint32_t link_type,
                          char out[KG_UID_LEN + 1]) KG_WARN_UNUSED;
/* Add attributes from a request (values borrowed from it) to `uid`; a
 * single-valued one replaces any row of that name. */
kg_result kg_op_put_extras(struct kg_store *w, const char *uid, const struct kg_attr_in *extras,
                           uint32_t n) KG_WARN_UNUSED;
/* Insert `obj` Pre-Active, owned by the caller's group, with Initial and
 * Last Change Date; inside a change (kg_change_begin). */
kg_result kg_op_insert_new(struct kg_store *w, const struct kg_op_ctx *ctx, struct kg_object *obj) KG_WARN_UNUSED;
/* Make `obj` Active if its stored Activation Date has come (obj->state too). */
kg_result kg_op_settle_state(struct kg_store *w, const struct kg_op_ctx *ctx, struct kg_object *obj) KG_WARN_UNUSED;

/* What a re-key copies and shifts (KMIP 1.4 sections 4.4 and 4.5). */
struct kg_rekey_args {
    bool has_offset;
    uint32_t offset;                 /* seconds (Interval) */
    bool pair;                       /* Re-key Key Pair: only Activation and Deactivation dates */
    const struct kg_attr_in *extras; /* from the request's template, borrowed */
    uint32_t extra_count;
};
kg_result kg_op_read_offset(struct kg_ttlv_reader *in, struct kg_rekey_args *args) KG_WARN_UNUSED;
/* `old` may be re-keyed as an object of `object_type`: right type, not destroyed. */
kg_result kg_op_rekey_check_old(const struct kg_object *old, uint32_t object_type) KG_WARN_UNUSED;
/*
 * In a change: give the already inserted replacement `fresh` the old key's
 * attributes (Names move), dates (Offset), the template's extras, the
 * Replaced/Replacement Object Links both ways, and its state.
 */
kg_result kg_op_rekey_rows(struct kg_store *w, const struct kg_op_ctx *ctx, const char *old_uid,
                           struct kg_object *fresh, const struct kg_rekey_args *args) KG_WARN_UNUSED;
/* Policy facts of a Re-key of `old`: the new key is of its type,
 * algorithm, length and usage mask, so create.* judges it as such. */
void kg_op_rekey_policy_facts(const struct kg_object *old, struct kg_policy_request *req);

#endif
