/*
 * kg_kmip.h - KMIP enumeration values (KMIP 1.4 section 9.1.3.2) that the
 * gateway speaks, and the tag table.
 */
#ifndef KG_KMIP_H
#define KG_KMIP_H

#include <stdint.h>

#include "kg_kmip_tags.h"

/* 9.1.3.2.27 Operation */
enum kg_operation {
    KG_OP_CREATE = 0x01,
    KG_OP_CREATE_KEY_PAIR = 0x02,
    KG_OP_REGISTER = 0x03,
    KG_OP_REKEY = 0x04,
    KG_OP_DERIVE_KEY = 0x05,
    KG_OP_CERTIFY = 0x06,
    KG_OP_RECERTIFY = 0x07,
    KG_OP_LOCATE = 0x08,
    KG_OP_CHECK = 0x09,
    KG_OP_GET = 0x0A,
    KG_OP_GET_ATTRIBUTES = 0x0B,
    KG_OP_GET_ATTRIBUTE_LIST = 0x0C,
    KG_OP_ADD_ATTRIBUTE = 0x0D,
    KG_OP_MODIFY_ATTRIBUTE = 0x0E,
    KG_OP_DELETE_ATTRIBUTE = 0x0F,
    KG_OP_OBTAIN_LEASE = 0x10,
    KG_OP_GET_USAGE_ALLOCATION = 0x11,
    KG_OP_ACTIVATE = 0x12,
    KG_OP_REVOKE = 0x13,
    KG_OP_DESTROY = 0x14,
    KG_OP_ARCHIVE = 0x15,
    KG_OP_RECOVER = 0x16,
    KG_OP_VALIDATE = 0x17,
    KG_OP_QUERY = 0x18,
    KG_OP_CANCEL = 0x19,
    KG_OP_POLL = 0x1A,
    KG_OP_NOTIFY = 0x1B,
    KG_OP_PUT = 0x1C,
    KG_OP_REKEY_KEY_PAIR = 0x1D,
    KG_OP_DISCOVER_VERSIONS = 0x1E,
    KG_OP_ENCRYPT = 0x1F,
    KG_OP_DECRYPT = 0x20,
    KG_OP_SIGN = 0x21,
    KG_OP_SIGNATURE_VERIFY = 0x22,
    KG_OP_MAC = 0x23,
    KG_OP_MAC_VERIFY = 0x24,
    KG_OP_RNG_RETRIEVE = 0x25,
    KG_OP_RNG_SEED = 0x26,
    KG_OP_HASH = 0x27,
    KG_OP_CREATE_SPLIT_KEY = 0x28,
    KG_OP_JOIN_SPLIT_KEY = 0x29,
    KG_OP_IMPORT = 0x2A,
    KG_OP_EXPORT = 0x2B,
    KG_OP_MAX = 0x2B,
};

enum kg_result_status {
    KG_STATUS_SUCCESS = 0,
    KG_STATUS_FAILED = 1,
    KG_STATUS_PENDING = 2,
    KG_STATUS_UNDONE = 3,
};

enum kg_result_reason {
    KG_REASON_NONE = 0, /* not sent */
    KG_REASON_ITEM_NOT_FOUND = 0x01,
    KG_REASON_RESPONSE_TOO_LARGE = 0x02,
    KG_REASON_AUTHENTICATION_NOT_SUCCESSFUL = 0x03,
    KG_REASON_INVALID_MESSAGE = 0x04,
    KG_REASON_OPERATION_NOT_SUPPORTED = 0x05,
    KG_REASON_MISSING_DATA = 0x06,
    KG_REASON_INVALID_FIELD = 0x07,
    KG_REASON_FEATURE_NOT_SUPPORTED = 0x08,
    KG_REASON_CANCELED_BY_REQUESTER = 0x09,
    KG_REASON_CRYPTOGRAPHIC_FAILURE = 0x0A,
    KG_REASON_ILLEGAL_OPERATION = 0x0B,
    KG_REASON_PERMISSION_DENIED = 0x0C,
    KG_REASON_OBJECT_ARCHIVED = 0x0D,
    KG_REASON_INDEX_OUT_OF_BOUNDS = 0x0E,
    KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED = 0x10,
    KG_REASON_GENERAL_FAILURE = 0x100,
};

enum kg_object_type {
    KG_OBJ_CERTIFICATE = 0x01,
    KG_OBJ_SYMMETRIC_KEY = 0x02,
    KG_OBJ_PUBLIC_KEY = 0x03,
    KG_OBJ_PRIVATE_KEY = 0x04,
    KG_OBJ_SPLIT_KEY = 0x05,
    KG_OBJ_TEMPLATE = 0x06,
    KG_OBJ_SECRET_DATA = 0x07,
    KG_OBJ_OPAQUE_OBJECT = 0x08,
    KG_OBJ_PGP_KEY = 0x09,
};

enum kg_state {
    KG_STATE_PRE_ACTIVE = 0x01,
    KG_STATE_ACTIVE = 0x02,
    KG_STATE_DEACTIVATED = 0x03,
    KG_STATE_COMPROMISED = 0x04,
    KG_STATE_DESTROYED = 0x05,
    KG_STATE_DESTROYED_COMPROMISED = 0x06,
};

enum kg_crypto_algorithm {
    KG_ALG_DES = 0x01,
    KG_ALG_3DES = 0x02,
    KG_ALG_AES = 0x03,
    KG_ALG_RSA = 0x04,
    KG_ALG_HMAC_SHA256 = 0x09,
};

enum kg_key_format {
    KG_FORMAT_RAW = 0x01,
    KG_FORMAT_OPAQUE = 0x02,
    KG_FORMAT_TRANSPARENT_SYMMETRIC = 0x07,
};

enum kg_usage_mask {
    KG_USAGE_SIGN = 0x0001,
    KG_USAGE_VERIFY = 0x0002,
    KG_USAGE_ENCRYPT = 0x0004,
    KG_USAGE_DECRYPT = 0x0008,
    KG_USAGE_WRAP_KEY = 0x0010,
    KG_USAGE_UNWRAP_KEY = 0x0020,
    KG_USAGE_EXPORT = 0x0040,
};

enum kg_query_function {
    KG_QUERY_OPERATIONS = 0x01,
    KG_QUERY_OBJECTS = 0x02,
    KG_QUERY_SERVER_INFORMATION = 0x03,
};

enum kg_credential_type {
    KG_CREDENTIAL_USERNAME_PASSWORD = 0x01,
};

enum kg_name_type {
    KG_NAME_UNINTERPRETED_TEXT = 0x01,
    KG_NAME_URI = 0x02,
};

enum kg_revocation_reason {
    KG_REVOKE_UNSPECIFIED = 0x01,
    KG_REVOKE_KEY_COMPROMISE = 0x02,
    KG_REVOKE_CA_COMPROMISE = 0x03,
    KG_REVOKE_AFFILIATION_CHANGED = 0x04,
    KG_REVOKE_SUPERSEDED = 0x05,
    KG_REVOKE_CESSATION = 0x06,
    KG_REVOKE_PRIVILEGE_WITHDRAWN = 0x07,
};

enum kg_batch_error_continuation {
    KG_BATCH_CONTINUE = 0x01,
    KG_BATCH_STOP = 0x02,
    KG_BATCH_UNDO = 0x03,
};

struct kg_tag_name {
    uint32_t tag;
    const char *name;
};

/* Specification name of a tag ("Unique Identifier"), or NULL if unknown. */
const char *kg_kmip_tag_name(uint32_t tag);

#endif
