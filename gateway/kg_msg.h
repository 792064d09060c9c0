/*
 * kg_msg.h - KMIP 1.x request and response messages (KMIP 1.4 section 7).
 *
 * kg_msg_decode_request validates the whole TTLV tree first (every length,
 * padding, depth and item cap), then reads the Request Header and the Batch
 * Items. Payloads are not interpreted here: each batch item carries its
 * Request Payload item, and the operation's own file reads it.
 *
 * Everything decoded borrows from the request buffer, which must outlive the
 * struct kg_request (the server keeps it in locked memory and cleanses it
 * after the response is written: a Register payload holds key bytes, and the
 * header may hold a password).
 */
#ifndef KG_MSG_H
#define KG_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "kg_result.h"
#include "kg_ttlv.h"

struct kg_version {
    int32_t major;
    int32_t minor;
};

/* Protocol versions this build answers, newest first (Discover Versions). */
extern const struct kg_version kg_msg_supported_versions[];
extern const uint32_t kg_msg_supported_version_count;

bool kg_msg_version_supported(struct kg_version v);

/* Upper bound on batch items per message, whatever the configuration says. */
#define KG_MSG_MAX_BATCH 256

struct kg_request_item {
    uint32_t operation;          /* raw enumeration value, may be unknown */
    bool has_batch_id;
    const uint8_t *batch_id;     /* borrowed */
    uint32_t batch_id_len;
    bool has_payload;
    struct kg_ttlv_item payload; /* borrowed Request Payload Structure */
    bool critical_extension;     /* a Message Extension we must understand (we understand none) */
};

struct kg_request {
    struct kg_version version;
    bool has_credential;
    bool device_credential;      /* a Device credential: username is its Device Serial Number */
    const char *username;        /* borrowed, not NUL-terminated */
    uint32_t username_len;
    const char *password;        /* borrowed; never logged */
    uint32_t password_len;
    uint32_t max_response_size;  /* 0 = not given */
    uint32_t batch_error_continuation; /* KG_BATCH_STOP unless given */
    bool async_indicator;        /* Asynchronous Indicator true: the client accepts Operation Pending */
    uint32_t batch_count;
    struct kg_request_item items[KG_MSG_MAX_BATCH];
    /* Budget for reading payloads after validation: every item was already
     * counted once by the validation pass, so payload readers get a fresh
     * budget with the same limits. */
    struct kg_ttlv_budget payload_budget;
};

/*
 * What could be read of a request that failed to decode, so that the Invalid
 * Message response can echo it (VSPHERE.md: "answer in 1.1 with the
 * Operation and batch ID echoed where they could be read").
 */
struct kg_request_partial {
    struct kg_version version;   /* 1.1 if unreadable */
    uint32_t operation;          /* 0 if unreadable */
    bool has_batch_id;
    uint8_t batch_id[64];
    uint32_t batch_id_len;
};

/*
 * Decode the message in buf[0..len). `max_batch` caps Batch Count (at most
 * KG_MSG_MAX_BATCH). On failure `partial` holds what could be read and the
 * kg error tells why (category PROTO or LIMIT, or UNSUPPORTED_VERSION for a
 * well-formed message in a version we do not speak).
 */
kg_result kg_msg_decode_request(const uint8_t *buf, uint32_t len, const struct kg_ttlv_limits *limits,
                                uint32_t max_batch, struct kg_request *out,
                                struct kg_request_partial *partial) KG_WARN_UNUSED;

/* A reader over one item's payload (empty reader when it has none). */
kg_result kg_msg_payload_reader(struct kg_request *req, const struct kg_request_item *item,
                                struct kg_ttlv_reader *out) KG_WARN_UNUSED;

/* One batch item's outcome, as the response reports it. */
struct kg_item_result {
    uint32_t status;  /* enum kg_result_status */
    uint32_t reason;  /* enum kg_result_reason, 0 on success */
    char message[200];
};

/* Fill `res` from the current kg error (category -> reason table). */
void kg_msg_result_from_error(struct kg_version version, struct kg_item_result *res);

/* Does this error category mean the connection must be closed? */
bool kg_msg_error_closes(int code);

/* Bytes kg_msg_write_response writes besides the items: Response Message
 * and Response Header headers (16), Protocol Version (40), Time Stamp (16),
 * Batch Count (16). Fixed, since every field has a fixed length. */
#define KG_MSG_RESPONSE_HEADER_LEN 88u

/*
 * Write the header of a response message and its items. `items` holds the
 * already-encoded Batch Item structures (count of them), copied verbatim.
 */
kg_result kg_msg_write_response(struct kg_ttlv_writer *w, struct kg_version version, int64_t now,
                                uint32_t batch_count, const uint8_t *items, uint32_t items_len) KG_WARN_UNUSED;

/*
 * Write one failed Batch Item: Operation (omitted when 0), Unique Batch Item
 * ID (when given), Result Status, Result Reason, Result Message.
 */
kg_result kg_msg_write_failed_item(struct kg_ttlv_writer *w, uint32_t operation, const uint8_t *batch_id,
                                   uint32_t batch_id_len, const struct kg_item_result *res) KG_WARN_UNUSED;

/*
 * Build a complete one-item failure response for a message that could not be
 * decoded, from `partial` and the current kg error.
 */
kg_result kg_msg_write_decode_failure(struct kg_ttlv_writer *w, const struct kg_request_partial *partial,
                                      int64_t now) KG_WARN_UNUSED;

#endif
