/*
 * kg_kmip.h - KMIP enumeration values (KMIP 1.4 section 9.1.3.2) that the
 * gateway speaks, and the tag table.
 */
#ifndef KG_KMIP_H
#define KG_KMIP_H

#include <stdbool.h>
#include <stddef.h>
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
    KG_OP_LOG = 0x2C,     /* KMIP 2.0 */
    KG_OP_SET_ATTRIBUTE = 0x31, /* KMIP 2.0 */
    KG_OP_INTEROP = 0x34, /* KMIP 2.1, test benches only */
    KG_OP_MAX = 0x34,
};

enum kg_result_status {
    KG_STATUS_SUCCESS = 0,
    KG_STATUS_FAILED = 1,
    KG_STATUS_PENDING = 2,
    KG_STATUS_UNDONE = 3,
};

/* Cancellation Result (KMIP 1.4 section 9.1.3.2.25). */
enum kg_cancellation_result {
    KG_CANCELLATION_CANCELED = 1,
    KG_CANCELLATION_UNAVAILABLE = 5,
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
    KG_REASON_ATTRIBUTE_READ_ONLY = 0x22,                   /* KMIP 2.0 */
    KG_REASON_ATTRIBUTE_SINGLE_VALUED = 0x23,               /* KMIP 2.0 */
    KG_REASON_SENSITIVE = 0x16,                             /* KMIP 1.4 */
    KG_REASON_MULTI_VALUED_ATTRIBUTE = 0x1E,                /* KMIP 2.0 */
    KG_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK = 0x29, /* KMIP 2.0 */
    KG_REASON_NON_UNIQUE_NAME_ATTRIBUTE = 0x35,             /* KMIP 2.0 */
    KG_REASON_OBJECT_DESTROYED = 0x36,                      /* KMIP 2.0 */
    KG_REASON_OBJECT_NOT_FOUND = 0x37,                      /* KMIP 2.0 */
    KG_REASON_WRONG_KEY_LIFECYCLE_STATE = 0x43,             /* KMIP 2.0 */
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
    KG_ALG_DSA = 0x05,
    KG_ALG_ECDSA = 0x06,
    KG_ALG_HMAC_SHA1 = 0x07,
    KG_ALG_HMAC_SHA224 = 0x08,
    KG_ALG_HMAC_SHA256 = 0x09,
    KG_ALG_HMAC_SHA384 = 0x0A,
    KG_ALG_HMAC_SHA512 = 0x0B,
    KG_ALG_EC = 0x1A,
};

/* Protection Storage Masks (KMIP 2.0 section 11.41), the bits kmipgw reports. */
enum kg_protection_storage {
    KG_PROTECTION_SOFTWARE = 0x01,
    KG_PROTECTION_HARDWARE = 0x02,
};

enum kg_key_format {
    KG_FORMAT_RAW = 0x01,
    KG_FORMAT_OPAQUE = 0x02,
    KG_FORMAT_PKCS1 = 0x03,
    KG_FORMAT_PKCS8 = 0x04,
    KG_FORMAT_X509 = 0x05,
    KG_FORMAT_TRANSPARENT_SYMMETRIC = 0x07,
    KG_FORMAT_TRANSPARENT_DSA_PRIVATE = 0x08,
    KG_FORMAT_TRANSPARENT_DSA_PUBLIC = 0x09,
    KG_FORMAT_TRANSPARENT_RSA_PRIVATE = 0x0A,
    KG_FORMAT_TRANSPARENT_RSA_PUBLIC = 0x0B,
};

/* 9.1.3.2.14 Block Cipher Mode */
enum kg_block_cipher_mode {
    KG_MODE_CBC = 0x01,
    KG_MODE_ECB = 0x02,
    KG_MODE_PCBC = 0x03,
    KG_MODE_CFB = 0x04,
    KG_MODE_OFB = 0x05,
    KG_MODE_CTR = 0x06,
    KG_MODE_CMAC = 0x07,
    KG_MODE_CCM = 0x08,
    KG_MODE_GCM = 0x09,
    KG_MODE_CBC_MAC = 0x0A,
    KG_MODE_XTS = 0x0B,
    KG_MODE_AES_KEY_WRAP_PADDING = 0x0C,
    KG_MODE_NIST_KEY_WRAP = 0x0D,
};

/* 9.1.3.2.15 Padding Method */
enum kg_padding_method {
    KG_PADDING_NONE = 0x01,
    KG_PADDING_OAEP = 0x02,
    KG_PADDING_PKCS5 = 0x03,
    KG_PADDING_SSL3 = 0x04,
    KG_PADDING_ZEROS = 0x05,
    KG_PADDING_ANSI_X923 = 0x06,
    KG_PADDING_ISO_10126 = 0x07,
    KG_PADDING_PKCS1_V15 = 0x08,
    KG_PADDING_X931 = 0x09,
    KG_PADDING_PSS = 0x0A,
};

/* 9.1.3.2.16 Hashing Algorithm */
enum kg_hashing_algorithm {
    KG_HASH_MD5 = 0x03,
    KG_HASH_SHA1 = 0x04,
    KG_HASH_SHA224 = 0x05,
    KG_HASH_SHA256 = 0x06,
    KG_HASH_SHA384 = 0x07,
    KG_HASH_SHA512 = 0x08,
};

/* 9.1.3.2.4 Wrapping Method */
enum kg_wrapping_method {
    KG_WRAP_METHOD_ENCRYPT = 0x01,
    KG_WRAP_METHOD_MAC_SIGN = 0x02,
    KG_WRAP_METHOD_ENCRYPT_THEN_MAC_SIGN = 0x03,
    KG_WRAP_METHOD_MAC_SIGN_THEN_ENCRYPT = 0x04,
    KG_WRAP_METHOD_TR31 = 0x05,
};

/* 9.1.3.2.32 Encoding Option */
enum kg_encoding_option {
    KG_ENCODING_NONE = 0x01,
    KG_ENCODING_TTLV = 0x02,
};

/* 9.1.3.2.48 Key Wrap Type */
enum kg_key_wrap_type {
    KG_KEY_WRAP_TYPE_NOT_WRAPPED = 0x01,
    KG_KEY_WRAP_TYPE_AS_REGISTERED = 0x02,
};

/* 9.1.3.2.6 Certificate Type */
enum kg_certificate_type {
    KG_CERT_X509 = 0x01,
    KG_CERT_PGP = 0x02,
};

/* 9.1.3.2.7 Digital Signature Algorithm */
enum kg_digital_signature_algorithm {
    KG_DSA_MD5_RSA = 0x02,
    KG_DSA_SHA1_RSA = 0x03,
    KG_DSA_SHA224_RSA = 0x04,
    KG_DSA_SHA256_RSA = 0x05,
    KG_DSA_SHA384_RSA = 0x06,
    KG_DSA_SHA512_RSA = 0x07,
    KG_DSA_RSASSA_PSS = 0x08,
    KG_DSA_DSA_SHA1 = 0x09,
    KG_DSA_DSA_SHA224 = 0x0A,
    KG_DSA_DSA_SHA256 = 0x0B,
    KG_DSA_ECDSA_SHA1 = 0x0C,
    KG_DSA_ECDSA_SHA224 = 0x0D,
    KG_DSA_ECDSA_SHA256 = 0x0E,
    KG_DSA_ECDSA_SHA384 = 0x0F,
    KG_DSA_ECDSA_SHA512 = 0x10,
};

/* 9.1.3.2.23 Validity Indicator */
enum kg_validity_indicator {
    KG_VALIDITY_VALID = 0x01,
    KG_VALIDITY_INVALID = 0x02,
    KG_VALIDITY_UNKNOWN = 0x03,
};

/* 9.1.3.3.1 Cryptographic Usage Mask: the MAC bits */
enum kg_usage_mask_mac {
    KG_USAGE_MAC_GENERATE = 0x0080,
    KG_USAGE_MAC_VERIFY = 0x0100,
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
    KG_QUERY_APPLICATION_NAMESPACES = 0x04,
    KG_QUERY_EXTENSION_LIST = 0x05,
    KG_QUERY_EXTENSION_MAP = 0x06,
    KG_QUERY_ATTESTATION_TYPES = 0x07,
    KG_QUERY_RNGS = 0x08,
    KG_QUERY_VALIDATIONS = 0x09,
    KG_QUERY_PROFILES = 0x0A,
    KG_QUERY_CAPABILITIES = 0x0B,
    KG_QUERY_CLIENT_REGISTRATION_METHODS = 0x0C,
};

enum kg_credential_type {
    KG_CREDENTIAL_USERNAME_PASSWORD = 0x01,
    KG_CREDENTIAL_DEVICE = 0x02,
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

/* 9.1.3.2.20 Link Type */
enum kg_link_type {
    KG_LINK_CERTIFICATE = 0x101,
    KG_LINK_PUBLIC_KEY = 0x102,
    KG_LINK_PRIVATE_KEY = 0x103,
    KG_LINK_DERIVATION_BASE_OBJECT = 0x104,
    KG_LINK_DERIVED_KEY = 0x105,
    KG_LINK_REPLACEMENT_OBJECT = 0x106,
    KG_LINK_REPLACED_OBJECT = 0x107,
};

/* 9.1.3.2.5 Recommended Curve (the ones kmipgw generates on) */
enum kg_recommended_curve {
    KG_CURVE_P256 = 0x07,
    KG_CURVE_P384 = 0x0A,
};

enum kg_batch_error_continuation {
    KG_BATCH_CONTINUE = 0x01,
    KG_BATCH_STOP = 0x02,
    KG_BATCH_UNDO = 0x03,
};

/* Object Group Member (Locate, KMIP 1.4 section 9.1.3.2.33). */
enum kg_object_group_member {
    KG_GROUP_MEMBER_FRESH = 0x01,
    KG_GROUP_MEMBER_DEFAULT = 0x02,
};

struct kg_tag_name {
    uint32_t tag;
    const char *name;
};

/* Specification name of a tag ("Unique Identifier"), or NULL if unknown. */
const char *kg_kmip_tag_name(uint32_t tag);

/* The i-th entry of the tag table, NULL past the end (for building indexes). */
const struct kg_tag_name *kg_kmip_tag_at(size_t i);

/* One named value of an enumeration or mask (name in XML CamelCase form). */
struct kg_enum_name {
    uint32_t value;
    const char *name;
};

/* The names of the values of the Enumeration (or, when `mask`, the bits of
 * the Integer mask) with tag `tag`. Static storage (kg_kmip_enum_names.c). */
struct kg_enum_table {
    uint32_t tag;
    bool mask;
    const struct kg_enum_name *names;
    uint32_t count;
};

/* The value names used with `tag`, or NULL if it has none. */
const struct kg_enum_table *kg_kmip_enum_table(uint32_t tag);

#endif
