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
    /* A Get's named wrapping key and its owner, for the policy request. */
    char wrapping_uid[KG_UID_LEN + 1];
    char wrapping_owner[KG_GROUP_MAX + 1];
    /* Set by handlers for the audit record. */
    char audit_uid[KG_UID_LEN + 1];
    const char *audit_note; /* static text, e.g. "plaintext export" */
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
kg_result kg_op_activate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_revoke(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_destroy(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;
kg_result kg_op_locate(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/*
 * Shared by handlers that target an object: consume the optional Unique
 * Identifier at the head of the payload (the dispatcher already resolved it
 * and loaded ctx->object) and write it back as the first response item.
 */
kg_result kg_op_skip_uid(struct kg_ttlv_reader *in) KG_WARN_UNUSED;
kg_result kg_op_write_uid(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/* Attributes given to Create or Register (a 1.x Template-Attribute). */
#define KG_TEMPLATE_MAX_ATTRS 32
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
};

/*
 * Create and Register: Object Type (Symmetric Key only) and the template.
 * *t and *obj are allocated here and freed by the caller, also on failure;
 * (*obj)->object_type is set. `op` names the operation in messages.
 */
kg_result kg_op_read_new_key(struct kg_ttlv_reader *in, const char *op, struct kg_template **t,
                             struct kg_object **obj) KG_WARN_UNUSED;

/* Read an optional Template-Attribute; values borrow from the request. */
kg_result kg_op_read_template(struct kg_ttlv_reader *in, struct kg_template *out) KG_WARN_UNUSED;

/*
 * Insert `obj` (uid, type, algorithm, length, mask and blob filled in) with
 * the template's attributes, Initial Date and Last Change Date, owned by the
 * caller's group, in one durable transaction.
 */
kg_result kg_op_store_new_object(struct kg_op_ctx *ctx, struct kg_object *obj,
                                 const struct kg_template *t) KG_WARN_UNUSED;

/*
 * Read Object Type and the template from `in` into the policy request;
 * *out gets the template (the caller frees it) for further facts.
 */
kg_result kg_op_template_policy_facts(struct kg_ttlv_reader *in, struct kg_policy_request *req,
                                      struct kg_template **out) KG_WARN_UNUSED;

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

/* A new random UID (RFC 4122 version 4 text) from OpenSSL's DRBG. */
kg_result kg_op_new_uid(char out[KG_UID_LEN + 1]) KG_WARN_UNUSED;

#endif
