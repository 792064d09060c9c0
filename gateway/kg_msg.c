/* kg_msg.c - KMIP 1.x message headers, batch items and result reasons. */
#include "kg_msg.h"

#include <stdio.h>
#include <string.h>

#include "kg_kmip.h"

const struct kg_version kg_msg_supported_versions[] = {
    { 2, 1 }, { 2, 0 }, { 1, 4 }, { 1, 3 }, { 1, 2 }, { 1, 1 }, { 1, 0 },
};
const uint32_t kg_msg_supported_version_count =
    sizeof(kg_msg_supported_versions) / sizeof(kg_msg_supported_versions[0]);

bool kg_msg_version_supported(struct kg_version v)
{
    for (uint32_t i = 0; i < kg_msg_supported_version_count; i++) {
        if (kg_msg_supported_versions[i].major == v.major && kg_msg_supported_versions[i].minor == v.minor) {
            return true;
        }
    }
    return false;
}

static kg_result kg_msg_read_version(struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                                     struct kg_version *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item major, minor;

    KG_GUARD(kg_ttlv_child(parent, item, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_PROTOCOL_VERSION_MAJOR, KG_TTLV_INTEGER, &major));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_PROTOCOL_VERSION_MINOR, KG_TTLV_INTEGER, &minor));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    KG_GUARD(kg_ttlv_get_int(&major, &out->major));
    KG_GUARD(kg_ttlv_get_int(&minor, &out->minor));
    return KG_RESULT_OK;
}

/*
 * Device credential value (KMIP 1.4 section 2.1.2): Device Serial Number,
 * Password, Device Identifier, Network Identifier, Machine Identifier and
 * Media Identifier, each optional, in that order. Policy knows a device by
 * its serial number and password; the other identifiers are read (bounded)
 * and not used.
 */
static kg_result kg_msg_read_device(struct kg_ttlv_reader *value, struct kg_request *req)
{
    static const uint32_t ignored[] = { KG_TAG_DEVICE_IDENTIFIER, KG_TAG_NETWORK_IDENTIFIER,
                                        KG_TAG_MACHINE_IDENTIFIER, KG_TAG_MEDIA_IDENTIFIER };
    struct kg_ttlv_item it;
    bool present = false;

    KG_GUARD(kg_ttlv_read_optional(value, KG_TAG_DEVICE_SERIAL_NUMBER, KG_TTLV_TEXT_STRING, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_text(&it, &req->username, &req->username_len));
    }
    KG_GUARD(kg_ttlv_read_optional(value, KG_TAG_PASSWORD, KG_TTLV_TEXT_STRING, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_text(&it, &req->password, &req->password_len));
    }
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        KG_GUARD(kg_ttlv_read_optional(value, ignored[i], KG_TTLV_TEXT_STRING, &it, &present));
    }
    KG_GUARD(kg_ttlv_reader_finish(value));
    req->device_credential = true;
    req->has_credential = true;
    return KG_RESULT_OK;
}

/* Authentication { Credential { Credential Type, Credential Value } }:
 * Username and Password, and Device, are understood; other credential types
 * are kept out (has_credential stays false) rather than refused, since
 * authorization is by certificate (VSPHERE.md). */
static kg_result kg_msg_read_authentication(struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                                            struct kg_request *req)
{
    struct kg_ttlv_reader auth, cred, value;
    struct kg_ttlv_item it, type_item, value_item;
    uint32_t type;

    KG_GUARD(kg_ttlv_child(parent, item, &auth));
    /* 1.x allows one Credential; 2.x may repeat it. Read the first. */
    KG_GUARD(kg_ttlv_read_expect(&auth, KG_TAG_CREDENTIAL, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_child(&auth, &it, &cred));
    KG_GUARD(kg_ttlv_read_expect(&cred, KG_TAG_CREDENTIAL_TYPE, KG_TTLV_ENUMERATION, &type_item));
    KG_GUARD(kg_ttlv_get_enum(&type_item, &type));
    KG_GUARD(kg_ttlv_read(&cred, &value_item));
    KG_ENSURE(value_item.tag == KG_TAG_CREDENTIAL_VALUE, KG_ERR_MSG_MALFORMED);
    KG_GUARD(kg_ttlv_reader_finish(&cred));
    if (type != KG_CREDENTIAL_USERNAME_PASSWORD && type != KG_CREDENTIAL_DEVICE) {
        return KG_RESULT_OK;
    }
    KG_ENSURE(value_item.type == KG_TTLV_STRUCTURE, KG_ERR_MSG_MALFORMED);
    KG_GUARD(kg_ttlv_child(&cred, &value_item, &value));
    if (type == KG_CREDENTIAL_DEVICE) {
        return kg_msg_read_device(&value, req);
    }
    KG_GUARD(kg_ttlv_read_expect(&value, KG_TAG_USERNAME, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_get_text(&it, &req->username, &req->username_len));
    bool present = false;
    KG_GUARD(kg_ttlv_read_optional(&value, KG_TAG_PASSWORD, KG_TTLV_TEXT_STRING, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_text(&it, &req->password, &req->password_len));
    }
    KG_GUARD(kg_ttlv_reader_finish(&value));
    req->has_credential = true;
    return KG_RESULT_OK;
}

static kg_result kg_msg_read_header(struct kg_ttlv_reader *msg, struct kg_request *req,
                                    struct kg_request_partial *partial)
{
    struct kg_ttlv_item header, it;
    struct kg_ttlv_reader r;
    bool have_version = false, have_count = false;

    KG_GUARD(kg_ttlv_read_expect(msg, KG_TAG_REQUEST_HEADER, KG_TTLV_STRUCTURE, &header));
    KG_GUARD(kg_ttlv_child(msg, &header, &r));
    req->batch_error_continuation = KG_BATCH_STOP;
    while (!kg_ttlv_reader_done(&r)) {
        KG_GUARD(kg_ttlv_read(&r, &it));
        switch (it.tag) {
        case KG_TAG_PROTOCOL_VERSION:
            KG_ENSURE(!have_version, KG_ERR_MSG_MALFORMED);
            KG_GUARD(kg_msg_read_version(&r, &it, &req->version));
            partial->version = req->version;
            have_version = true;
            break;
        case KG_TAG_MAXIMUM_RESPONSE_SIZE: {
            int32_t v;
            KG_GUARD(kg_ttlv_get_int(&it, &v));
            KG_ENSURE(v > 0, KG_ERR_INVALID_FIELD);
            req->max_response_size = (uint32_t)v;
            break;
        }
        case KG_TAG_CLIENT_CORRELATION_VALUE:
        case KG_TAG_SERVER_CORRELATION_VALUE:
            /* KMIP 1.4 section 6.20: for the client's and the server's
             * logs; kmipgw answers without them. */
            KG_ENSURE(it.type == KG_TTLV_TEXT_STRING, KG_ERR_MSG_MALFORMED);
            break;
        case KG_TAG_ASYNCHRONOUS_INDICATOR:
            /* KMIP 1.4 section 6.7: the client can take Operation Pending;
             * the dispatcher decides which items it defers (kg_dispatch.c). */
            KG_GUARD(kg_ttlv_get_bool(&it, &req->async_indicator));
            break;
        case KG_TAG_TIME_STAMP:
        case KG_TAG_BATCH_ORDER_OPTION:
            /* Items are always processed in order: the option may be
             * ignored (KMIP 1.4 section 6.12). */
            break;
        case KG_TAG_AUTHENTICATION:
            KG_GUARD(kg_msg_read_authentication(&r, &it, req));
            break;
        case KG_TAG_BATCH_ERROR_CONTINUATION_OPTION:
            KG_GUARD(kg_ttlv_get_enum(&it, &req->batch_error_continuation));
            KG_ENSURE(req->batch_error_continuation >= KG_BATCH_CONTINUE &&
                          req->batch_error_continuation <= KG_BATCH_UNDO,
                      KG_ERR_MSG_MALFORMED);
            break;
        case KG_TAG_BATCH_COUNT: {
            int32_t v;
            KG_GUARD(kg_ttlv_get_int(&it, &v));
            KG_ENSURE(v >= 1, KG_ERR_MSG_MALFORMED);
            req->batch_count = (uint32_t)v;
            have_count = true;
            break;
        }
        default:
            kg_error_set(KG_ERR_MSG_MALFORMED, __FILE__, __LINE__);
            kg_error_detail("unexpected tag 0x%06X in Request Header", (unsigned)it.tag);
            return KG_RESULT_ERROR;
        }
    }
    KG_ENSURE(have_version, KG_ERR_MSG_MALFORMED);
    KG_ENSURE(have_count, KG_ERR_MSG_MALFORMED);
    return KG_RESULT_OK;
}

/* Message Extension { Vendor Identification, Criticality Indicator, Vendor
 * Extension }: only the indicator matters here. */
static kg_result kg_msg_read_extension(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *ext,
                                       bool *critical)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    KG_GUARD(kg_ttlv_child(parent, ext, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_VENDOR_IDENTIFICATION, KG_TTLV_TEXT_STRING, &it));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_CRITICALITY_INDICATOR, KG_TTLV_BOOLEAN, &it));
    KG_GUARD(kg_ttlv_get_bool(&it, critical));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_VENDOR_EXTENSION, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    return KG_RESULT_OK;
}

static kg_result kg_msg_read_item(struct kg_ttlv_reader *msg, const struct kg_ttlv_item *batch_item,
                                  struct kg_request_item *item, struct kg_request_partial *partial, bool first)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    bool present = false;

    /* kg_msg_decode_request clears only the header fields: an item slot may
     * hold a previous decode's values (has_batch_id, a stale pointer). */
    memset(item, 0, sizeof(*item));
    KG_GUARD(kg_ttlv_child(msg, batch_item, &r));
    KG_GUARD(kg_ttlv_read_expect(&r, KG_TAG_OPERATION, KG_TTLV_ENUMERATION, &it));
    KG_GUARD(kg_ttlv_get_enum(&it, &item->operation));
    if (first) {
        partial->operation = item->operation;
    }
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_UNIQUE_BATCH_ITEM_ID, KG_TTLV_BYTE_STRING, &it, &present));
    if (present) {
        KG_GUARD(kg_ttlv_get_bytes(&it, &item->batch_id, &item->batch_id_len));
        KG_ENSURE(item->batch_id_len <= sizeof(partial->batch_id), KG_ERR_INVALID_FIELD);
        item->has_batch_id = true;
        if (first) {
            memcpy(partial->batch_id, item->batch_id, item->batch_id_len);
            partial->batch_id_len = item->batch_id_len;
            partial->has_batch_id = true;
        }
    }
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_REQUEST_PAYLOAD, KG_TTLV_STRUCTURE, &item->payload,
                                   &item->has_payload));
    /* Message Extension (KMIP 1.4 section 6.16): none is understood, so a
     * critical one fails the item later; a non-critical one is ignored. */
    KG_GUARD(kg_ttlv_read_optional(&r, KG_TAG_MESSAGE_EXTENSION, KG_TTLV_STRUCTURE, &it, &present));
    if (present) {
        KG_GUARD(kg_msg_read_extension(&r, &it, &item->critical_extension));
    }
    KG_GUARD(kg_ttlv_reader_finish(&r));
    return KG_RESULT_OK;
}

kg_result kg_msg_decode_request(const uint8_t *buf, uint32_t len, const struct kg_ttlv_limits *limits,
                                uint32_t max_batch, struct kg_request *req, struct kg_request_partial *partial)
{
    struct kg_ttlv_budget budget = { .limits = *limits };
    struct kg_ttlv_reader top, msg;
    struct kg_ttlv_item message, it;
    uint32_t n = 0;

    memset(req, 0, offsetof(struct kg_request, items));
    memset(partial, 0, sizeof(*partial));
    partial->version = (struct kg_version){ 1, 1 };
    if (max_batch > KG_MSG_MAX_BATCH) {
        max_batch = KG_MSG_MAX_BATCH;
    }

    /* Pass 1: the whole tree is well-formed and within the caps. */
    KG_GUARD(kg_ttlv_reader_init(&top, buf, len, &budget));
    KG_GUARD(kg_ttlv_validate_tree(&top));

    /* Pass 2: interpret. Items cannot fail framing any more. */
    KG_GUARD(kg_ttlv_reader_init(&top, buf, len, &budget));
    KG_GUARD(kg_ttlv_read_expect(&top, KG_TAG_REQUEST_MESSAGE, KG_TTLV_STRUCTURE, &message));
    KG_GUARD(kg_ttlv_reader_finish(&top));
    KG_GUARD(kg_ttlv_child(&top, &message, &msg));
    KG_GUARD(kg_msg_read_header(&msg, req, partial));
    if (req->version.major != 1 && !kg_msg_version_supported(req->version)) {
        /* Another major version (or a 2.x we do not know) may have other
         * item forms; refuse before reading them. A later 1.x minor is
         * read as 1.4 (kg_msg_read_version). */
        kg_error_set(KG_ERR_UNSUPPORTED_VERSION, __FILE__, __LINE__);
        kg_error_detail("protocol version %d.%d is not supported; this server speaks 1.0 to 1.4, 2.0 and 2.1",
                        (int)req->version.major, (int)req->version.minor);
        return KG_RESULT_ERROR;
    }
    while (!kg_ttlv_reader_done(&msg)) {
        KG_GUARD(kg_ttlv_read_expect(&msg, KG_TAG_BATCH_ITEM, KG_TTLV_STRUCTURE, &it));
        KG_ENSURE(n < max_batch, KG_ERR_TOO_MANY_BATCH_ITEMS);
        KG_GUARD(kg_msg_read_item(&msg, &it, &req->items[n], partial, n == 0));
        n++;
    }
    if (n != req->batch_count) {
        kg_error_set(KG_ERR_MSG_MALFORMED, __FILE__, __LINE__);
        kg_error_detail("Batch Count says %u but the message holds %u batch items", req->batch_count, n);
        return KG_RESULT_ERROR;
    }
    req->payload_budget = (struct kg_ttlv_budget){ .limits = *limits };
    return KG_RESULT_OK;
}

kg_result kg_msg_payload_reader(struct kg_request *req, const struct kg_request_item *item,
                                struct kg_ttlv_reader *out)
{
    static const uint8_t empty[1];

    if (!item->has_payload) {
        KG_GUARD(kg_ttlv_reader_init(out, empty, 0, &req->payload_budget));
        return KG_RESULT_OK;
    }
    /* The payload was validated with the message; read it as a top-level
     * buffer of its own so its items cannot reach outside it. */
    KG_GUARD(kg_ttlv_reader_init(out, item->payload.value, item->payload.len, &req->payload_budget));
    out->depth = 3; /* Request Message > Batch Item > Request Payload */
    return KG_RESULT_OK;
}

static uint32_t kg_msg_reason_for(struct kg_version version, int code)
{
    switch (code) {
    case KG_ERR_WRITER_FULL:
        return KG_REASON_RESPONSE_TOO_LARGE;
    case KG_ERR_MISSING_FIELD:
        return KG_REASON_MISSING_DATA;
    case KG_ERR_UNSUPPORTED_OP:
        return KG_REASON_OPERATION_NOT_SUPPORTED;
    case KG_ERR_UNSUPPORTED_FORMAT:
        return KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED;
    case KG_ERR_UNSUPPORTED_VERSION:
        return KG_REASON_INVALID_MESSAGE;
    case KG_ERR_ATTRIBUTE_NOT_FOUND:
        return KG_REASON_ITEM_NOT_FOUND;
    /* KMIP 2.0 added the reasons below; the 1.x test cases answer
     * Permission Denied, Item Not Found and Invalid Field. */
    case KG_ERR_READ_ONLY_ATTRIBUTE:
        return version.major >= 2 ? KG_REASON_ATTRIBUTE_READ_ONLY : KG_REASON_PERMISSION_DENIED;
    case KG_ERR_NOT_FOUND:
        /* The object named does not exist (or is out of scope): OASIS BL-M-4-21. */
        return version.major >= 2 ? KG_REASON_OBJECT_NOT_FOUND : KG_REASON_ITEM_NOT_FOUND;
    case KG_ERR_SINGLE_VALUED:
        return version.major >= 2 ? KG_REASON_ATTRIBUTE_SINGLE_VALUED : KG_REASON_INVALID_FIELD;
    case KG_ERR_MULTI_VALUED:
        return version.major >= 2 ? KG_REASON_MULTI_VALUED_ATTRIBUTE : KG_REASON_INVALID_FIELD;
    case KG_ERR_INCOMPATIBLE_USAGE_MASK:
        return version.major >= 2 ? KG_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK : KG_REASON_PERMISSION_DENIED;
    case KG_ERR_OBJECT_DESTROYED:
        return version.major >= 2 ? KG_REASON_OBJECT_DESTROYED : KG_REASON_ITEM_NOT_FOUND;
    case KG_ERR_AUTHENTICATION:
        return KG_REASON_AUTHENTICATION_NOT_SUCCESSFUL;
    case KG_ERR_OBJECT_ARCHIVED:
        return KG_REASON_OBJECT_ARCHIVED;
    case KG_ERR_ILLEGAL_OPERATION:
        return KG_REASON_ILLEGAL_OPERATION;
    case KG_ERR_SENSITIVE:
        return version.major >= 2 || version.minor >= 4 ? KG_REASON_SENSITIVE : KG_REASON_PERMISSION_DENIED;
    case KG_ERR_NOT_QUANTUM_SAFE:
        return KG_REASON_GENERAL_FAILURE;
    case KG_ERR_DUPLICATE_FIELD:
        return KG_REASON_INVALID_MESSAGE;
    case KG_ERR_NON_UNIQUE_NAME:
        return version.major >= 2 ? KG_REASON_NON_UNIQUE_NAME_ATTRIBUTE : KG_REASON_INVALID_FIELD;
    default:
        break;
    }
    switch (kg_error_category_of(code)) {
    case KG_ERR_T_PROTO:
    case KG_ERR_T_LIMIT:
        return KG_REASON_INVALID_MESSAGE;
    case KG_ERR_T_FIELD:
        return KG_REASON_INVALID_FIELD;
    case KG_ERR_T_UNSUPPORTED:
        return KG_REASON_FEATURE_NOT_SUPPORTED;
    case KG_ERR_T_NOT_FOUND:
        return KG_REASON_ITEM_NOT_FOUND;
    case KG_ERR_T_DENIED:
        return KG_REASON_PERMISSION_DENIED;
    case KG_ERR_T_STATE:
        /* KMIP 1.x has no Wrong Key Lifecycle State; the 1.x test cases
         * answer a state violation with Permission Denied. 2.0 added it. */
        return version.major >= 2 ? KG_REASON_WRONG_KEY_LIFECYCLE_STATE : KG_REASON_PERMISSION_DENIED;
    case KG_ERR_T_HSM:
        return KG_REASON_CRYPTOGRAPHIC_FAILURE;
    default:
        return KG_REASON_GENERAL_FAILURE;
    }
}

static const char *kg_msg_reason_text(uint32_t reason)
{
    switch (reason) {
    case KG_REASON_ITEM_NOT_FOUND:
        return "item not found";
    case KG_REASON_RESPONSE_TOO_LARGE:
        return "response too large";
    case KG_REASON_INVALID_MESSAGE:
        return "invalid message";
    case KG_REASON_OPERATION_NOT_SUPPORTED:
        return "operation not supported";
    case KG_REASON_MISSING_DATA:
        return "missing data";
    case KG_REASON_INVALID_FIELD:
        return "invalid field";
    case KG_REASON_FEATURE_NOT_SUPPORTED:
        return "feature not supported";
    case KG_REASON_CRYPTOGRAPHIC_FAILURE:
        return "cryptographic failure in the HSM";
    case KG_REASON_PERMISSION_DENIED:
        return "permission denied";
    case KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED:
        return "key format type not supported";
    case KG_REASON_ATTRIBUTE_READ_ONLY:
        return "attribute read only";
    case KG_REASON_OBJECT_NOT_FOUND:
        return "object not found";
    case KG_REASON_ATTRIBUTE_SINGLE_VALUED:
        return "attribute single valued";
    case KG_REASON_MULTI_VALUED_ATTRIBUTE:
        return "multi valued attribute";
    case KG_REASON_WRONG_KEY_LIFECYCLE_STATE:
        return "wrong key lifecycle state";
    default:
        return "general failure";
    }
}

void kg_msg_result_from_error(struct kg_version version, struct kg_item_result *res)
{
    int code = kg_errno();
    const char *detail = kg_error_text();

    res->status = KG_STATUS_FAILED;
    res->reason = kg_msg_reason_for(version, code);
    /* Internal failures say no more than "general failure" to the client:
     * the detail (SQLite or OS text) goes to the log, not the wire. */
    if (detail[0] != '\0' && res->reason != KG_REASON_GENERAL_FAILURE) {
        snprintf(res->message, sizeof(res->message), "%s", detail);
    } else {
        snprintf(res->message, sizeof(res->message), "%s", kg_msg_reason_text(res->reason));
    }
}

bool kg_msg_error_closes(int code)
{
    int cat = kg_error_category_of(code);

    if (code == KG_ERR_WRITER_FULL) {
        return false;
    }
    return cat == KG_ERR_T_PROTO || cat == KG_ERR_T_LIMIT || cat == KG_ERR_T_IO;
}

kg_result kg_msg_write_response(struct kg_ttlv_writer *w, struct kg_version version, int64_t now,
                                uint32_t batch_count, const uint8_t *items, uint32_t items_len)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_RESPONSE_MESSAGE));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_RESPONSE_HEADER));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_PROTOCOL_VERSION));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MAJOR, version.major));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MINOR, version.minor));
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_write_datetime(w, KG_TAG_TIME_STAMP, now));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, (int32_t)batch_count));
    KG_GUARD(kg_ttlv_end_struct(w));
    if (items_len > 0) {
        /* kg_ttlv_write_raw takes one item at a time, and checks each: walk
         * the batch items we encoded ourselves. */
        struct kg_ttlv_budget budget = { .limits = { UINT32_MAX, KG_TTLV_MAX_DEPTH, UINT32_MAX } };
        struct kg_ttlv_reader r;
        struct kg_ttlv_item it;
        KG_GUARD(kg_ttlv_reader_init(&r, items, items_len, &budget));
        while (!kg_ttlv_reader_done(&r)) {
            KG_GUARD(kg_ttlv_read(&r, &it));
            KG_GUARD(kg_ttlv_write_raw(w, it.raw, it.raw_len));
        }
    }
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

kg_result kg_msg_write_failed_item(struct kg_ttlv_writer *w, uint32_t operation, const uint8_t *batch_id,
                                   uint32_t batch_id_len, const struct kg_item_result *res)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    if (operation != 0) {
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OPERATION, operation));
    }
    if (batch_id != NULL) {
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_UNIQUE_BATCH_ITEM_ID, batch_id, batch_id_len));
    }
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_RESULT_STATUS, res->status));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_RESULT_REASON, res->reason));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_RESULT_MESSAGE, res->message, (uint32_t)strlen(res->message)));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

kg_result kg_msg_write_decode_failure(struct kg_ttlv_writer *w, const struct kg_request_partial *partial,
                                      int64_t now)
{
    struct kg_ttlv_writer item = { 0 };
    struct kg_item_result res = { 0 };
    struct kg_version version = partial->version;
    kg_result rc = KG_RESULT_OK;

    /* Answer in the client's version when we speak it, else in 1.1, which
     * every 1.x client (vCenter included) reads. */
    if (!kg_msg_version_supported(version)) {
        version = (struct kg_version){ 1, 1 };
    }
    kg_msg_result_from_error(version, &res);
    KG_GUARD(kg_ttlv_writer_init(&item, 1024, false));
    KG_GOTO_GUARD(rc, kg_msg_write_failed_item(&item, partial->operation,
                                               partial->has_batch_id ? partial->batch_id : NULL,
                                               partial->batch_id_len, &res));
    KG_GOTO_GUARD(rc, kg_msg_write_response(w, version, now, 1, item.buf, item.len));
out:
    kg_ttlv_writer_cleanup(&item);
    return rc;
}
