/*
 * kg_msg_test.c - the KMIP message layer (gateway/kg_msg.c) and the whole
 * per-message pipeline (kg_gateway_process) with its operation handlers.
 *
 * Part A needs no HSM: requests are built with the kg_ttlv writer, in the
 * shape vCenter 8.0.1 sends (shared/kmip-vectors/vcenter-8.0.1), decoded with
 * kg_msg_decode_request, and every check of kg_msg.c gets a negative test.
 *
 * Part B drives kg_gateway_process on a real SoftHSMv2 token in a temporary
 * directory (no TLS): the vCenter sequence, lifecycle, attributes, Locate
 * and scope, batch error handling and the audit log. It passes with a
 * message when SoftHSM is not installed. Part B's tests share one token,
 * store and audit log, and the last test checks the audit log against
 * everything the earlier ones did.
 */
#include "kg_test.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kg_gateway.h"
#include "kg_kmip.h"
#include "kg_ops.h"
#include "kg_msg.h"
#include "kg_p11_internal.h"
#include "kg_ttlv.h"

/* A writer or reader call that must succeed for the test to make sense. */
#define OK(expr) CU_ASSERT_FATAL(kg_ok(expr))

/* Limits for reading what the gateway wrote: generous, only for tests. */
static const struct kg_ttlv_limits big_limits = { UINT32_MAX, 64, UINT32_MAX };

/* ======================================================================
 * Building requests
 * ====================================================================== */

/* The Request Header to write. Zero-initialised means: 1.1, Batch Count 1. */
struct hdr {
    int32_t major, minor;  /* 0.0 means 1.1 */
    int32_t batch_count;   /* 0 means 1 */
    bool no_header;        /* write no Request Header at all */
    bool no_version;
    bool no_count;
    bool twice_version;    /* Protocol Version twice */
    bool auth;             /* Authentication: Username and Password */
    const char *user, *pass; /* default vSphere / password */
    bool has_max_resp;
    int32_t max_resp;
    uint32_t bec;          /* Batch Error Continuation Option, 0: omitted */
    uint32_t extra_tag;    /* an Integer with this tag in the header, 0: none */
};

static void b_version(struct kg_ttlv_writer *w, int32_t major, int32_t minor)
{
    OK(kg_ttlv_begin_struct(w, KG_TAG_PROTOCOL_VERSION));
    OK(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MAJOR, major));
    OK(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MINOR, minor));
    OK(kg_ttlv_end_struct(w));
}

static void b_credential(struct kg_ttlv_writer *w, const char *user, const char *pass)
{
    OK(kg_ttlv_begin_struct(w, KG_TAG_AUTHENTICATION));
    OK(kg_ttlv_begin_struct(w, KG_TAG_CREDENTIAL));
    OK(kg_ttlv_write_enum(w, KG_TAG_CREDENTIAL_TYPE, KG_CREDENTIAL_USERNAME_PASSWORD));
    OK(kg_ttlv_begin_struct(w, KG_TAG_CREDENTIAL_VALUE));
    OK(kg_ttlv_write_text(w, KG_TAG_USERNAME, user, (uint32_t)strlen(user)));
    if (pass != NULL) {
        OK(kg_ttlv_write_text(w, KG_TAG_PASSWORD, pass, (uint32_t)strlen(pass)));
    }
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
}

/* Initialise `w` and write the Request Message start and its header. */
static void b_begin(struct kg_ttlv_writer *w, const struct hdr *h)
{
    static const struct hdr defaults;
    int32_t major, minor;

    if (h == NULL) {
        h = &defaults;
    }
    major = (h->major == 0 && h->minor == 0) ? 1 : h->major;
    minor = (h->major == 0 && h->minor == 0) ? 1 : h->minor;
    OK(kg_ttlv_writer_init(w, 1u << 20, false));
    OK(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_MESSAGE));
    if (h->no_header) {
        return;
    }
    OK(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_HEADER));
    if (!h->no_version) {
        b_version(w, major, minor);
    }
    if (h->twice_version) {
        b_version(w, major, minor);
    }
    if (h->has_max_resp) {
        OK(kg_ttlv_write_int(w, KG_TAG_MAXIMUM_RESPONSE_SIZE, h->max_resp));
    }
    if (h->auth) {
        b_credential(w, h->user ? h->user : "vSphere", h->pass ? h->pass : "password");
    }
    if (h->bec != 0) {
        OK(kg_ttlv_write_enum(w, KG_TAG_BATCH_ERROR_CONTINUATION_OPTION, h->bec));
    }
    if (h->extra_tag != 0) {
        OK(kg_ttlv_write_int(w, h->extra_tag, 1));
    }
    if (!h->no_count) {
        OK(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, h->batch_count == 0 ? 1 : h->batch_count));
    }
    OK(kg_ttlv_end_struct(w));
}

/* vCenter's 8-byte Unique Batch Item IDs: "QLKC" n 0 0 0. */
static const uint8_t *bid(unsigned n)
{
    static uint8_t ids[16][8];

    CU_ASSERT_FATAL(n < 16);
    memcpy(ids[n], "QLKC", 4);
    ids[n][4] = (uint8_t)n;
    ids[n][5] = ids[n][6] = ids[n][7] = 0;
    return ids[n];
}

/* Begin a Batch Item with Operation `op`, batch id `id` (8 bytes, or NULL)
 * and an open Request Payload. */
static void b_item(struct kg_ttlv_writer *w, uint32_t op, const uint8_t *id)
{
    OK(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_enum(w, KG_TAG_OPERATION, op));
    if (id != NULL) {
        OK(kg_ttlv_write_bytes(w, KG_TAG_UNIQUE_BATCH_ITEM_ID, id, 8));
    }
    OK(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_PAYLOAD));
}

/* End the Request Payload and the Batch Item. */
static void b_item_end(struct kg_ttlv_writer *w)
{
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
}

/* Message Extension { Vendor Identification, Criticality Indicator, Vendor
 * Extension } (KMIP 1.4 section 6.16); `broken` leaves out the indicator. */
static void b_extension(struct kg_ttlv_writer *w, bool critical, bool broken)
{
    OK(kg_ttlv_begin_struct(w, KG_TAG_MESSAGE_EXTENSION));
    OK(kg_ttlv_write_text(w, KG_TAG_VENDOR_IDENTIFICATION, "acme", 4));
    if (!broken) {
        OK(kg_ttlv_write_bool(w, KG_TAG_CRITICALITY_INDICATOR, critical));
    }
    OK(kg_ttlv_begin_struct(w, KG_TAG_VENDOR_EXTENSION));
    OK(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
}

static void b_end(struct kg_ttlv_writer *w)
{
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_writer_finish(w));
}

static void p_uid(struct kg_ttlv_writer *w, const char *uid)
{
    if (uid != NULL) {
        OK(kg_ttlv_write_text(w, KG_TAG_UNIQUE_IDENTIFIER, uid, (uint32_t)strlen(uid)));
    }
}

static void p_attr_begin(struct kg_ttlv_writer *w, const char *name, int32_t index)
{
    OK(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE));
    OK(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    if (index >= 0) {
        OK(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_INDEX, index));
    }
}

/* Attribute { Name, [Index when >= 0], Value: Text String }. */
static void p_attr_text(struct kg_ttlv_writer *w, const char *name, int32_t index, const char *value)
{
    p_attr_begin(w, name, index);
    OK(kg_ttlv_write_text(w, KG_TAG_ATTRIBUTE_VALUE, value, (uint32_t)strlen(value)));
    OK(kg_ttlv_end_struct(w));
}

static void p_attr_enum(struct kg_ttlv_writer *w, const char *name, uint32_t value)
{
    p_attr_begin(w, name, -1);
    OK(kg_ttlv_write_enum(w, KG_TAG_ATTRIBUTE_VALUE, value));
    OK(kg_ttlv_end_struct(w));
}

static void p_attr_int(struct kg_ttlv_writer *w, const char *name, int32_t value)
{
    p_attr_begin(w, name, -1);
    OK(kg_ttlv_write_int(w, KG_TAG_ATTRIBUTE_VALUE, value));
    OK(kg_ttlv_end_struct(w));
}

/* Attribute Name { Name Value, Name Type: Uninterpreted Text String }. */
static void p_attr_name(struct kg_ttlv_writer *w, const char *value)
{
    p_attr_begin(w, "Name", -1);
    OK(kg_ttlv_begin_struct(w, KG_TAG_ATTRIBUTE_VALUE));
    OK(kg_ttlv_write_text(w, KG_TAG_NAME_VALUE, value, (uint32_t)strlen(value)));
    OK(kg_ttlv_write_enum(w, KG_TAG_NAME_TYPE, KG_NAME_UNINTERPRETED_TEXT));
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
}

/* Create's payload as vCenter sends it: Object Type, then a
 * Template-Attribute left open for more attributes (p_create_end). */
static void p_create_begin(struct kg_ttlv_writer *w, uint32_t alg, int32_t bits, int32_t mask)
{
    OK(kg_ttlv_write_enum(w, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    OK(kg_ttlv_begin_struct(w, KG_TAG_TEMPLATE_ATTRIBUTE));
    p_attr_enum(w, "Cryptographic Algorithm", alg);
    p_attr_int(w, "Cryptographic Usage Mask", mask);
    p_attr_int(w, "Cryptographic Length", bits);
}

static void p_create_end(struct kg_ttlv_writer *w)
{
    OK(kg_ttlv_end_struct(w));
}

/* The vCenter 8.0.1 Add Attribute batch, with a Username/Password
 * credential in the header (example_add_attribute_batch_request.txt). */
static const char vc_uid[] = "01000000-7356-8565-621e-08ddba133224";
static const char *const vc_names[3] = { "x-Product_Version", "x-Vendor", "x-Product" };
static const char *const vc_values[3] = { "8.0.1 build-21560480", "VMware, Inc.", "VMware vSphere" };

static void build_vcenter_add_batch(struct kg_ttlv_writer *w, const char *uid, bool auth)
{
    struct hdr h = { .batch_count = 3, .auth = auth };

    b_begin(w, &h);
    for (unsigned i = 0; i < 3; i++) {
        b_item(w, KG_OP_ADD_ATTRIBUTE, bid(i + 1));
        p_uid(w, uid);
        p_attr_text(w, vc_names[i], -1, vc_values[i]);
        b_item_end(w);
    }
    b_end(w);
}

/* ======================================================================
 * Reading responses
 * ====================================================================== */

#define RESP_MAX_ITEMS 64

struct resp_item {
    bool has_op;
    uint32_t op;
    bool has_bid;
    uint8_t bid[64];
    uint32_t bid_len;
    bool has_status;
    uint32_t status;
    bool has_reason;
    uint32_t reason;
    char message[256];
    bool has_payload;
    struct kg_ttlv_item payload; /* borrows resp.buf */
};

struct resp {
    uint8_t *buf; /* owned copy of the response message */
    uint32_t len;
    bool parsed;
    bool close;
    int32_t major, minor;
    bool has_time;
    int64_t time_stamp;
    int32_t batch_count;
    uint32_t n;
    struct resp_item items[RESP_MAX_ITEMS];
};

static void resp_free(struct resp *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

static bool parse_item(const struct kg_ttlv_reader *msg, const struct kg_ttlv_item *bi, struct resp_item *out)
{
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    const uint8_t *b;
    const char *s;
    uint32_t n;

    memset(out, 0, sizeof(*out));
    if (kg_failed(kg_ttlv_child(msg, bi, &r))) {
        return false;
    }
    while (!kg_ttlv_reader_done(&r)) {
        if (kg_failed(kg_ttlv_read(&r, &it))) {
            return false;
        }
        switch (it.tag) {
        case KG_TAG_OPERATION:
            out->has_op = kg_ok(kg_ttlv_get_enum(&it, &out->op));
            break;
        case KG_TAG_UNIQUE_BATCH_ITEM_ID:
            if (kg_failed(kg_ttlv_get_bytes(&it, &b, &n)) || n > sizeof(out->bid)) {
                return false;
            }
            memcpy(out->bid, b, n);
            out->bid_len = n;
            out->has_bid = true;
            break;
        case KG_TAG_RESULT_STATUS:
            out->has_status = kg_ok(kg_ttlv_get_enum(&it, &out->status));
            break;
        case KG_TAG_RESULT_REASON:
            out->has_reason = kg_ok(kg_ttlv_get_enum(&it, &out->reason));
            break;
        case KG_TAG_RESULT_MESSAGE:
            if (kg_failed(kg_ttlv_get_text(&it, &s, &n))) {
                return false;
            }
            snprintf(out->message, sizeof(out->message), "%.*s", (int)n, s);
            break;
        case KG_TAG_RESPONSE_PAYLOAD:
            if (it.type != KG_TTLV_STRUCTURE) {
                return false;
            }
            out->payload = it;
            out->has_payload = true;
            break;
        default:
            return false;
        }
    }
    return out->has_status;
}

/* Parse r->buf as a Response Message, strictly (every length and padding
 * checked by the reader). */
static bool resp_parse(struct resp *r)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader top, msg, hdr, ver;
    struct kg_ttlv_item it, m;

    kg_ttlv_budget_init(&budget, &big_limits);
    r->parsed = false;
    r->n = 0;
    if (kg_failed(kg_ttlv_reader_init(&top, r->buf, r->len, &budget)) ||
        kg_failed(kg_ttlv_read_expect(&top, KG_TAG_RESPONSE_MESSAGE, KG_TTLV_STRUCTURE, &m)) ||
        kg_failed(kg_ttlv_reader_finish(&top)) || kg_failed(kg_ttlv_child(&top, &m, &msg)) ||
        kg_failed(kg_ttlv_read_expect(&msg, KG_TAG_RESPONSE_HEADER, KG_TTLV_STRUCTURE, &it)) ||
        kg_failed(kg_ttlv_child(&msg, &it, &hdr)) ||
        kg_failed(kg_ttlv_read_expect(&hdr, KG_TAG_PROTOCOL_VERSION, KG_TTLV_STRUCTURE, &it)) ||
        kg_failed(kg_ttlv_child(&hdr, &it, &ver)) ||
        kg_failed(kg_ttlv_read_expect(&ver, KG_TAG_PROTOCOL_VERSION_MAJOR, KG_TTLV_INTEGER, &it)) ||
        kg_failed(kg_ttlv_get_int(&it, &r->major)) ||
        kg_failed(kg_ttlv_read_expect(&ver, KG_TAG_PROTOCOL_VERSION_MINOR, KG_TTLV_INTEGER, &it)) ||
        kg_failed(kg_ttlv_get_int(&it, &r->minor)) || kg_failed(kg_ttlv_reader_finish(&ver)) ||
        kg_failed(kg_ttlv_read_expect(&hdr, KG_TAG_TIME_STAMP, KG_TTLV_DATE_TIME, &it)) ||
        kg_failed(kg_ttlv_get_datetime(&it, &r->time_stamp)) ||
        kg_failed(kg_ttlv_read_expect(&hdr, KG_TAG_BATCH_COUNT, KG_TTLV_INTEGER, &it)) ||
        kg_failed(kg_ttlv_get_int(&it, &r->batch_count)) || kg_failed(kg_ttlv_reader_finish(&hdr))) {
        return false;
    }
    r->has_time = true;
    while (!kg_ttlv_reader_done(&msg)) {
        if (r->n >= RESP_MAX_ITEMS || kg_failed(kg_ttlv_read_expect(&msg, KG_TAG_BATCH_ITEM, KG_TTLV_STRUCTURE, &it)) ||
            !parse_item(&msg, &it, &r->items[r->n])) {
            return false;
        }
        r->n++;
    }
    r->parsed = true;
    return true;
}

/* Take a copy of a writer's bytes as a response and parse it. */
static void resp_take(struct resp *r, const struct kg_ttlv_writer *w)
{
    memset(r, 0, sizeof(*r));
    r->buf = malloc(w->len ? w->len : 1);
    CU_ASSERT_FATAL(r->buf != NULL);
    memcpy(r->buf, w->buf, w->len);
    r->len = w->len;
    CU_ASSERT(resp_parse(r));
}

/* The nth child (0-based) with `tag` directly inside Structure `st`. */
static bool st_child(const struct kg_ttlv_item *st, uint32_t tag, unsigned nth, struct kg_ttlv_item *out)
{
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    if (st->type != KG_TTLV_STRUCTURE) {
        return false;
    }
    kg_ttlv_budget_init(&budget, &big_limits);
    if (kg_failed(kg_ttlv_reader_init(&r, st->value, st->len, &budget))) {
        return false;
    }
    while (!kg_ttlv_reader_done(&r)) {
        if (kg_failed(kg_ttlv_read(&r, &it))) {
            return false;
        }
        if (it.tag == tag) {
            if (nth == 0) {
                *out = it;
                return true;
            }
            nth--;
        }
    }
    return false;
}

static unsigned st_count(const struct kg_ttlv_item *st, uint32_t tag)
{
    struct kg_ttlv_item it;
    unsigned n = 0;

    while (st_child(st, tag, n, &it)) {
        n++;
    }
    return n;
}

/* Follow a path of tags (first match at each level). */
static bool st_path(const struct kg_ttlv_item *st, const uint32_t *tags, unsigned n, struct kg_ttlv_item *out)
{
    struct kg_ttlv_item cur = *st;

    for (unsigned i = 0; i < n; i++) {
        if (!st_child(&cur, tags[i], 0, &cur)) {
            return false;
        }
    }
    *out = cur;
    return true;
}

static bool text_is(const struct kg_ttlv_item *it, const char *s)
{
    const char *t;
    uint32_t n;

    return kg_ok(kg_ttlv_get_text(it, &t, &n)) && n == strlen(s) && memcmp(t, s, n) == 0;
}

static int64_t enum_of(const struct kg_ttlv_item *it)
{
    uint32_t v;

    return kg_ok(kg_ttlv_get_enum(it, &v)) ? (int64_t)v : -1;
}

static int64_t int_of(const struct kg_ttlv_item *it)
{
    int32_t v;

    return kg_ok(kg_ttlv_get_int(it, &v)) ? (int64_t)v : INT64_MIN;
}

/* The first Unique Identifier of item i's payload, "" if none. */
static const char *item_uid(const struct resp *r, unsigned i)
{
    static char uid[KG_UID_LEN + 1];
    struct kg_ttlv_item it;
    const char *t;
    uint32_t n;

    uid[0] = '\0';
    if (i < r->n && r->items[i].has_payload && st_child(&r->items[i].payload, KG_TAG_UNIQUE_IDENTIFIER, 0, &it) &&
        kg_ok(kg_ttlv_get_text(&it, &t, &n)) && n <= KG_UID_LEN) {
        memcpy(uid, t, n);
        uid[n] = '\0';
    }
    return uid;
}

static bool item_ok(const struct resp *r, unsigned i)
{
    return i < r->n && r->items[i].status == KG_STATUS_SUCCESS && !r->items[i].has_reason;
}

/* Result Reason of a failed item i, 0 when it succeeded, -1 when absent. */
static int64_t item_reason(const struct resp *r, unsigned i)
{
    if (i >= r->n) {
        return -1;
    }
    if (r->items[i].status == KG_STATUS_SUCCESS) {
        return 0;
    }
    return r->items[i].has_reason ? (int64_t)r->items[i].reason : -1;
}

struct attr_out {
    char name[KG_ATTR_NAME_MAX + 1];
    bool has_index;
    int32_t index;
    struct kg_ttlv_item value;
};

/* The nth Attribute structure of a payload. */
static bool payload_attr(const struct kg_ttlv_item *payload, unsigned nth, struct attr_out *a)
{
    struct kg_ttlv_item st, it;
    const char *t;
    uint32_t n;

    memset(a, 0, sizeof(*a));
    if (!st_child(payload, KG_TAG_ATTRIBUTE, nth, &st) || !st_child(&st, KG_TAG_ATTRIBUTE_NAME, 0, &it) ||
        kg_failed(kg_ttlv_get_text(&it, &t, &n)) || n > KG_ATTR_NAME_MAX) {
        return false;
    }
    memcpy(a->name, t, n);
    a->name[n] = '\0';
    if (st_child(&st, KG_TAG_ATTRIBUTE_INDEX, 0, &it)) {
        a->has_index = true;
        a->index = (int32_t)int_of(&it);
    }
    return st_child(&st, KG_TAG_ATTRIBUTE_VALUE, 0, &a->value);
}

/* ======================================================================
 * Part A: decoding
 * ====================================================================== */

static struct kg_request *dreq;
static struct kg_request_partial dpartial;

/* Decode w's bytes with the default limits; returns the kg error code
 * (KG_OK on success). */
static int decode_max(const struct kg_ttlv_writer *w, uint32_t max_batch)
{
    if (dreq == NULL) {
        dreq = calloc(1, sizeof(*dreq));
        CU_ASSERT_FATAL(dreq != NULL);
    }
    kg_error_clear();
    if (kg_ok(kg_msg_decode_request(w->buf, w->len, &kg_ttlv_default_limits, max_batch, dreq, &dpartial))) {
        return KG_OK;
    }
    CU_ASSERT_NOT_EQUAL(kg_errno(), KG_OK);
    return kg_errno();
}

static int decode(const struct kg_ttlv_writer *w)
{
    return decode_max(w, 64);
}

static void test_decode_vcenter_batch(void)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_reader pr;
    struct kg_ttlv_item it;
    struct kg_request *q;

    build_vcenter_add_batch(&w, vc_uid, true);
    CU_ASSERT_EQUAL_FATAL(decode(&w), KG_OK);
    q = dreq;
    CU_ASSERT_EQUAL(q->version.major, 1);
    CU_ASSERT_EQUAL(q->version.minor, 1);
    CU_ASSERT(q->has_credential);
    CU_ASSERT_EQUAL(q->username_len, 7);
    CU_ASSERT(q->username != NULL && memcmp(q->username, "vSphere", 7) == 0);
    CU_ASSERT_EQUAL(q->password_len, 8);
    CU_ASSERT(q->password != NULL && memcmp(q->password, "password", 8) == 0);
    CU_ASSERT_EQUAL(q->max_response_size, 0);
    CU_ASSERT_EQUAL(q->batch_error_continuation, KG_BATCH_STOP);
    CU_ASSERT_EQUAL(q->batch_count, 3);
    for (unsigned i = 0; i < 3; i++) {
        const struct kg_request_item *item = &q->items[i];
        struct attr_out a;

        CU_ASSERT_EQUAL(item->operation, KG_OP_ADD_ATTRIBUTE);
        CU_ASSERT(item->has_batch_id);
        CU_ASSERT_EQUAL(item->batch_id_len, 8);
        CU_ASSERT(item->batch_id != NULL && memcmp(item->batch_id, bid(i + 1), 8) == 0);
        CU_ASSERT(item->has_payload);
        CU_ASSERT_EQUAL(item->payload.tag, KG_TAG_REQUEST_PAYLOAD);
        CU_ASSERT_EQUAL(item->payload.type, KG_TTLV_STRUCTURE);
        /* The payload is handed to the op untouched: UID, then Attribute. */
        CU_ASSERT(st_child(&item->payload, KG_TAG_UNIQUE_IDENTIFIER, 0, &it) && text_is(&it, vc_uid));
        CU_ASSERT(payload_attr(&item->payload, 0, &a));
        CU_ASSERT_STRING_EQUAL(a.name, vc_names[i]);
        CU_ASSERT(!a.has_index);
        CU_ASSERT(text_is(&a.value, vc_values[i]));
        CU_ASSERT_EQUAL(st_count(&item->payload, KG_TAG_ATTRIBUTE), 1);

        /* The payload reader is bounded to the payload and reads it whole. */
        OK(kg_msg_payload_reader(q, item, &pr));
        OK(kg_ttlv_read_expect(&pr, KG_TAG_UNIQUE_IDENTIFIER, KG_TTLV_TEXT_STRING, &it));
        CU_ASSERT(text_is(&it, vc_uid));
        OK(kg_ttlv_read_expect(&pr, KG_TAG_ATTRIBUTE, KG_TTLV_STRUCTURE, &it));
        CU_ASSERT(kg_ttlv_reader_done(&pr));
    }
    /* Without the credential, as vCenter really sends this batch. */
    kg_ttlv_writer_cleanup(&w);
    build_vcenter_add_batch(&w, vc_uid, false);
    CU_ASSERT_EQUAL(decode(&w), KG_OK);
    CU_ASSERT(!dreq->has_credential);
    CU_ASSERT_PTR_NULL(dreq->username);
    CU_ASSERT_PTR_NULL(dreq->password);
    CU_ASSERT_EQUAL(dreq->batch_count, 3);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_header_options(void)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_reader pr;
    struct hdr h = { .has_max_resp = true, .max_resp = 4096, .bec = KG_BATCH_CONTINUE, .major = 1, .minor = 4 };

    /* Options the header may carry, and an item with no payload and no id. */
    b_begin(&w, &h);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OPERATION, KG_OP_DISCOVER_VERSIONS));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL_FATAL(decode(&w), KG_OK);
    CU_ASSERT_EQUAL(dreq->version.major, 1);
    CU_ASSERT_EQUAL(dreq->version.minor, 4);
    CU_ASSERT_EQUAL(dreq->max_response_size, 4096);
    CU_ASSERT_EQUAL(dreq->batch_error_continuation, KG_BATCH_CONTINUE);
    CU_ASSERT(!dreq->has_credential);
    CU_ASSERT_EQUAL(dreq->items[0].operation, KG_OP_DISCOVER_VERSIONS);
    CU_ASSERT(!dreq->items[0].has_batch_id);
    CU_ASSERT(!dreq->items[0].has_payload);
    OK(kg_msg_payload_reader(dreq, &dreq->items[0], &pr));
    CU_ASSERT(kg_ttlv_reader_done(&pr));
    kg_ttlv_writer_cleanup(&w);

    /* Batch Order Option, Time Stamp and Asynchronous Indicator are read
     * and ignored; Undo is a valid Batch Error Continuation value. */
    memset(&h, 0, sizeof(h));
    h.bec = KG_BATCH_UNDO;
    b_begin(&w, &h);
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_OK);
    CU_ASSERT_EQUAL(dreq->batch_error_continuation, KG_BATCH_UNDO);
    kg_ttlv_writer_cleanup(&w);

    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 2);
    OK(kg_ttlv_write_bool(&w, KG_TAG_ASYNCHRONOUS_INDICATOR, false));
    OK(kg_ttlv_write_datetime(&w, KG_TAG_TIME_STAMP, 1700000000));
    OK(kg_ttlv_write_bool(&w, KG_TAG_BATCH_ORDER_OPTION, true));
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_QUERY, bid(9));
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_OK);
    CU_ASSERT_EQUAL(dreq->version.minor, 2);
    CU_ASSERT_EQUAL(dreq->batch_error_continuation, KG_BATCH_STOP);
    kg_ttlv_writer_cleanup(&w);

    /* A batch id of exactly 64 bytes is the most accepted. */
    {
        uint8_t id[64];
        memset(id, 0xA5, sizeof(id));
        b_begin(&w, NULL);
        OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
        OK(kg_ttlv_write_enum(&w, KG_TAG_OPERATION, KG_OP_QUERY));
        OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, id, sizeof(id)));
        OK(kg_ttlv_end_struct(&w));
        b_end(&w);
        CU_ASSERT_EQUAL(decode(&w), KG_OK);
        CU_ASSERT_EQUAL(dreq->items[0].batch_id_len, 64);
        kg_ttlv_writer_cleanup(&w);
    }
}

/* Build a request from `h` holding `items` Query items and expect
 * decoding to fail with `code`. */
static void expect_header_error(const struct hdr *h, unsigned items, int code)
{
    struct kg_ttlv_writer w;

    b_begin(&w, h);
    for (unsigned i = 0; i < items; i++) {
        b_item(&w, KG_OP_QUERY, bid(i));
        b_item_end(&w);
    }
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), code);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_header_errors(void)
{
    /* No Request Header at all: the first item is a Batch Item. */
    expect_header_error(&(struct hdr){ .no_header = true }, 1, KG_ERR_TTLV_UNEXPECTED);
    expect_header_error(&(struct hdr){ .no_version = true }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .twice_version = true }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .no_count = true }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .batch_count = -1 }, 1, KG_ERR_MSG_MALFORMED);
    /* Batch Count disagrees with the items: more items, fewer items. */
    expect_header_error(&(struct hdr){ .batch_count = 2 }, 3, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .batch_count = 3 }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .batch_count = 1 }, 0, KG_ERR_MSG_MALFORMED);
    /* A tag that has no place in a Request Header. */
    expect_header_error(&(struct hdr){ .extra_tag = KG_TAG_OPERATION }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .extra_tag = KG_TAG_MAXIMUM_ITEMS }, 1, KG_ERR_MSG_MALFORMED);
    /* Batch Error Continuation Option outside Continue..Undo. */
    expect_header_error(&(struct hdr){ .bec = 4 }, 1, KG_ERR_MSG_MALFORMED);
    expect_header_error(&(struct hdr){ .bec = 0xFFFFFFFFu }, 1, KG_ERR_MSG_MALFORMED);
    /* Maximum Response Size must be positive. */
    expect_header_error(&(struct hdr){ .has_max_resp = true, .max_resp = 0 }, 1, KG_ERR_INVALID_FIELD);
    expect_header_error(&(struct hdr){ .has_max_resp = true, .max_resp = -1 }, 1, KG_ERR_INVALID_FIELD);
    expect_header_error(&(struct hdr){ .has_max_resp = true, .max_resp = INT32_MIN }, 1, KG_ERR_INVALID_FIELD);
    expect_header_error(&(struct hdr){ .has_max_resp = true, .max_resp = 1 }, 1, KG_OK);
}

static void test_decode_bad_bec_zero(void)
{
    struct kg_ttlv_writer w;

    /* hdr.bec == 0 means "omitted", so write the 0 by hand. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 1);
    OK(kg_ttlv_write_enum(&w, KG_TAG_BATCH_ERROR_CONTINUATION_OPTION, 0));
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_MSG_MALFORMED);
    kg_ttlv_writer_cleanup(&w);

    /* Batch Error Continuation written as an Integer: wrong type. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 1);
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_ERROR_CONTINUATION_OPTION, 1));
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(kg_error_category_of(decode(&w)), KG_ERR_T_PROTO);
    kg_ttlv_writer_cleanup(&w);
}

/* The variants of a broken Authentication structure. */
enum bad_cred {
    CRED_NO_CREDENTIAL,    /* Authentication {} */
    CRED_NO_TYPE,          /* Credential { Credential Value } */
    CRED_NO_VALUE,         /* Credential { Credential Type } */
    CRED_VALUE_NOT_STRUCT, /* Username/Password with a Text String value */
    CRED_NO_USERNAME,      /* Credential Value { Password } */
    CRED_EXTRA_FIELD,      /* Credential Value { Username, Password, Username } */
    CRED_TYPE_NOT_ENUM,    /* Credential Type as an Integer */
    CRED_USERNAME_BYTES,   /* Username as a Byte String */
    CRED_TRAILING,         /* Credential { Type, Value, Type } */
};

static int decode_bad_credential(enum bad_cred how)
{
    struct kg_ttlv_writer w;
    int code;

    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 1);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_AUTHENTICATION));
    if (how != CRED_NO_CREDENTIAL) {
        OK(kg_ttlv_begin_struct(&w, KG_TAG_CREDENTIAL));
        if (how == CRED_TYPE_NOT_ENUM) {
            OK(kg_ttlv_write_int(&w, KG_TAG_CREDENTIAL_TYPE, 1));
        } else if (how != CRED_NO_TYPE) {
            OK(kg_ttlv_write_enum(&w, KG_TAG_CREDENTIAL_TYPE, KG_CREDENTIAL_USERNAME_PASSWORD));
        }
        if (how == CRED_VALUE_NOT_STRUCT) {
            OK(kg_ttlv_write_text(&w, KG_TAG_CREDENTIAL_VALUE, "vSphere", 7));
        } else if (how != CRED_NO_VALUE) {
            OK(kg_ttlv_begin_struct(&w, KG_TAG_CREDENTIAL_VALUE));
            if (how == CRED_USERNAME_BYTES) {
                OK(kg_ttlv_write_bytes(&w, KG_TAG_USERNAME, (const uint8_t *)"vSphere", 7));
            } else if (how != CRED_NO_USERNAME) {
                OK(kg_ttlv_write_text(&w, KG_TAG_USERNAME, "vSphere", 7));
            }
            OK(kg_ttlv_write_text(&w, KG_TAG_PASSWORD, "password", 8));
            if (how == CRED_EXTRA_FIELD) {
                OK(kg_ttlv_write_text(&w, KG_TAG_USERNAME, "again", 5));
            }
            OK(kg_ttlv_end_struct(&w));
        }
        if (how == CRED_TRAILING) {
            OK(kg_ttlv_write_enum(&w, KG_TAG_CREDENTIAL_TYPE, KG_CREDENTIAL_USERNAME_PASSWORD));
        }
        OK(kg_ttlv_end_struct(&w));
    }
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_GET, bid(1));
    b_item_end(&w);
    b_end(&w);
    code = decode(&w);
    kg_ttlv_writer_cleanup(&w);
    return code;
}

static void test_decode_credential_errors(void)
{
    static const enum bad_cred all[] = {
        CRED_NO_CREDENTIAL, CRED_NO_TYPE,       CRED_NO_VALUE,       CRED_VALUE_NOT_STRUCT, CRED_NO_USERNAME,
        CRED_EXTRA_FIELD,   CRED_TYPE_NOT_ENUM, CRED_USERNAME_BYTES, CRED_TRAILING,
    };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        int code = decode_bad_credential(all[i]);
        if (kg_error_category_of(code) != KG_ERR_T_PROTO) {
            fprintf(stderr, "\ncredential case %zu: %s\n", i, kg_error_name(code));
        }
        CU_ASSERT_EQUAL(kg_error_category_of(code), KG_ERR_T_PROTO);
        /* What was read of the header is still reported. */
        CU_ASSERT_EQUAL(dpartial.version.major, 1);
        CU_ASSERT_EQUAL(dpartial.version.minor, 1);
    }
}

/* A request whose header carries a Device credential holding `fields` (tag,
 * text) pairs; returns the decode result. */
static int decode_device_credential(const uint32_t *tags, const char *const *values, size_t count,
                                    struct kg_ttlv_writer *w)
{
    OK(kg_ttlv_writer_init(w, 4096, false));
    OK(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_HEADER));
    b_version(w, 1, 1);
    OK(kg_ttlv_begin_struct(w, KG_TAG_AUTHENTICATION));
    OK(kg_ttlv_begin_struct(w, KG_TAG_CREDENTIAL));
    OK(kg_ttlv_write_enum(w, KG_TAG_CREDENTIAL_TYPE, KG_CREDENTIAL_DEVICE));
    OK(kg_ttlv_begin_struct(w, KG_TAG_CREDENTIAL_VALUE));
    for (size_t i = 0; i < count; i++) {
        OK(kg_ttlv_write_text(w, tags[i], values[i], (uint32_t)strlen(values[i])));
    }
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_end_struct(w));
    OK(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(w));
    b_item(w, KG_OP_QUERY, NULL);
    b_item_end(w);
    b_end(w);
    return decode(w);
}

/* Device credentials (KMIP 1.4 section 2.1.2): the serial number stands for
 * the name, the other identifiers are read and left; out of order, refused. */
static void test_decode_credential_device(void)
{
    static const uint32_t all[] = { KG_TAG_DEVICE_SERIAL_NUMBER, KG_TAG_PASSWORD, KG_TAG_DEVICE_IDENTIFIER,
                                    KG_TAG_NETWORK_IDENTIFIER, KG_TAG_MACHINE_IDENTIFIER, KG_TAG_MEDIA_IDENTIFIER };
    static const char *const values[] = { "serNum123456", "secret", "devID2233", "netID9000", "machineID1",
                                          "mediaID313" };
    static const uint32_t swapped[] = { KG_TAG_PASSWORD, KG_TAG_DEVICE_SERIAL_NUMBER };
    struct kg_ttlv_writer w;

    CU_ASSERT_EQUAL(decode_device_credential(all, values, 6, &w), KG_OK);
    CU_ASSERT(dreq->has_credential);
    CU_ASSERT(dreq->device_credential);
    CU_ASSERT(dreq->username_len == 12 && memcmp(dreq->username, "serNum123456", 12) == 0);
    CU_ASSERT(dreq->password_len == 6 && memcmp(dreq->password, "secret", 6) == 0);
    kg_ttlv_writer_cleanup(&w);

    CU_ASSERT_EQUAL(kg_error_category_of(decode_device_credential(swapped, values, 2, &w)), KG_ERR_T_PROTO);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_credential_other_type(void)
{
    struct kg_ttlv_writer w;

    /* A credential type other than Username and Password is kept out of
     * the request, not refused: authorization is by certificate. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 1);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_AUTHENTICATION));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_CREDENTIAL));
    OK(kg_ttlv_write_enum(&w, KG_TAG_CREDENTIAL_TYPE, 3 /* Attestation */));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_CREDENTIAL_VALUE));
    OK(kg_ttlv_write_text(&w, KG_TAG_PASSWORD, "pw", 2));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_OK);
    CU_ASSERT(!dreq->has_credential);
    kg_ttlv_writer_cleanup(&w);

    /* Username without Password is a valid Username and Password credential. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_MESSAGE));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_HEADER));
    b_version(&w, 1, 1);
    b_credential(&w, "alice", NULL);
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_OK);
    CU_ASSERT(dreq->has_credential);
    CU_ASSERT_EQUAL(dreq->username_len, 5);
    CU_ASSERT_PTR_NULL(dreq->password);
    CU_ASSERT_EQUAL(dreq->password_len, 0);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_item_errors(void)
{
    struct kg_ttlv_writer w;
    uint8_t long_id[65];

    /* A Batch Item without Operation. */
    b_begin(&w, NULL);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, bid(1), 8));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REQUEST_PAYLOAD));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_UNEXPECTED);
    CU_ASSERT_EQUAL(dpartial.operation, 0);
    CU_ASSERT(!dpartial.has_batch_id);
    kg_ttlv_writer_cleanup(&w);

    /* Operation as an Integer instead of an Enumeration. */
    b_begin(&w, NULL);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_int(&w, KG_TAG_OPERATION, KG_OP_GET));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(kg_error_category_of(decode(&w)), KG_ERR_T_PROTO);
    kg_ttlv_writer_cleanup(&w);

    /* A Unique Batch Item ID over 64 bytes. */
    memset(long_id, 0x5A, sizeof(long_id));
    b_begin(&w, NULL);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OPERATION, KG_OP_GET));
    OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, long_id, sizeof(long_id)));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_INVALID_FIELD);
    CU_ASSERT_EQUAL(dpartial.operation, KG_OP_GET);
    CU_ASSERT(!dpartial.has_batch_id);
    kg_ttlv_writer_cleanup(&w);

    /* An unknown field after the payload of a batch item. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, bid(1));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_write_int(&w, KG_TAG_ATTRIBUTE_INDEX, 0));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_TRAILING);
    kg_ttlv_writer_cleanup(&w);

    /* The payload must be a Structure. */
    b_begin(&w, NULL);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OPERATION, KG_OP_QUERY));
    OK(kg_ttlv_write_int(&w, KG_TAG_REQUEST_PAYLOAD, 3));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(kg_error_category_of(decode(&w)), KG_ERR_T_PROTO);
    kg_ttlv_writer_cleanup(&w);

    /* Something other than a Batch Item after the header. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_UNEXPECTED);
    kg_ttlv_writer_cleanup(&w);

    /* A Message Extension is read and its Criticality Indicator kept for
     * the dispatcher (which fails a critical one: none is understood). */
    for (int critical = 0; critical < 2; critical++) {
        b_begin(&w, NULL);
        b_item(&w, KG_OP_QUERY, NULL);
        OK(kg_ttlv_end_struct(&w));
        b_extension(&w, critical != 0, false);
        OK(kg_ttlv_end_struct(&w));
        b_end(&w);
        CU_ASSERT_EQUAL(decode(&w), KG_OK);
        CU_ASSERT_EQUAL(dreq->items[0].critical_extension, critical != 0);
        CU_ASSERT(dreq->items[0].has_payload);
        kg_ttlv_writer_cleanup(&w);
    }
    /* A Message Extension without its Criticality Indicator. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, NULL);
    OK(kg_ttlv_end_struct(&w));
    b_extension(&w, true, true);
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(kg_error_category_of(decode(&w)), KG_ERR_T_PROTO);
    kg_ttlv_writer_cleanup(&w);
    /* Anything after the Message Extension. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, NULL);
    OK(kg_ttlv_end_struct(&w));
    b_extension(&w, false, false);
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_TRAILING);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_batch_limits(void)
{
    struct kg_ttlv_writer w;

    /* Three items where the caller allows two. */
    b_begin(&w, &(struct hdr){ .batch_count = 3 });
    for (unsigned i = 0; i < 3; i++) {
        b_item(&w, KG_OP_QUERY, bid(i + 1));
        b_item_end(&w);
    }
    b_end(&w);
    CU_ASSERT_EQUAL(decode_max(&w, 2), KG_ERR_TOO_MANY_BATCH_ITEMS);
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TOO_MANY_BATCH_ITEMS));
    /* The first item was read before the cap was hit. */
    CU_ASSERT_EQUAL(dpartial.operation, KG_OP_QUERY);
    CU_ASSERT_EQUAL(decode_max(&w, 3), KG_OK);
    kg_ttlv_writer_cleanup(&w);

    /* A configured cap above KG_MSG_MAX_BATCH is held to it. */
    b_begin(&w, &(struct hdr){ .batch_count = KG_MSG_MAX_BATCH + 1 });
    for (unsigned i = 0; i < KG_MSG_MAX_BATCH + 1; i++) {
        b_item(&w, KG_OP_DISCOVER_VERSIONS, NULL);
        b_item_end(&w);
    }
    b_end(&w);
    CU_ASSERT_EQUAL(decode_max(&w, 100000), KG_ERR_TOO_MANY_BATCH_ITEMS);
    kg_ttlv_writer_cleanup(&w);

    b_begin(&w, &(struct hdr){ .batch_count = KG_MSG_MAX_BATCH });
    for (unsigned i = 0; i < KG_MSG_MAX_BATCH; i++) {
        b_item(&w, KG_OP_DISCOVER_VERSIONS, NULL);
        b_item_end(&w);
    }
    b_end(&w);
    CU_ASSERT_EQUAL(decode_max(&w, 100000), KG_OK);
    CU_ASSERT_EQUAL(dreq->batch_count, KG_MSG_MAX_BATCH);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_trailing_and_framing(void)
{
    struct kg_ttlv_writer w;
    uint32_t full;

    /* A second top-level item after the Request Message. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    full = w.len;
    OK(kg_ttlv_write_int(&w, KG_TAG_BATCH_COUNT, 1));
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_TRAILING);
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_TRAILING));

    /* Eight zero bytes after it: not even an item. */
    w.len = full;
    {
        static const uint8_t zeros[8];
        uint8_t *copy = malloc(full + 8);
        CU_ASSERT_FATAL(copy != NULL);
        memcpy(copy, w.buf, full);
        memcpy(copy + full, zeros, 8);
        kg_error_clear();
        CU_ASSERT(kg_failed(kg_msg_decode_request(copy, full + 8, &kg_ttlv_default_limits, 64, dreq, &dpartial)));
        CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_PROTO);

        /* Truncated by one byte, and by a whole item. */
        kg_error_clear();
        CU_ASSERT(kg_failed(kg_msg_decode_request(copy, full - 1, &kg_ttlv_default_limits, 64, dreq, &dpartial)));
        CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_PROTO);
        kg_error_clear();
        CU_ASSERT(kg_failed(kg_msg_decode_request(copy, full - 8, &kg_ttlv_default_limits, 64, dreq, &dpartial)));
        CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_PROTO);
        /* Nothing at all. */
        kg_error_clear();
        CU_ASSERT(kg_failed(kg_msg_decode_request(copy, 0, &kg_ttlv_default_limits, 64, dreq, &dpartial)));
        /* Over the configured message size. */
        {
            struct kg_ttlv_limits small = kg_ttlv_default_limits;
            small.max_message_len = full - 8;
            kg_error_clear();
            CU_ASSERT(kg_failed(kg_msg_decode_request(copy, full, &small, 64, dreq, &dpartial)));
            CU_ASSERT_EQUAL(kg_errno(), KG_ERR_TTLV_TOO_LONG);
        }
        free(copy);
    }
    kg_ttlv_writer_cleanup(&w);

    /* A Response Message is not a request. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_RESPONSE_MESSAGE));
    OK(kg_ttlv_end_struct(&w));
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_UNEXPECTED);
    kg_ttlv_writer_cleanup(&w);
}

static void test_decode_unsupported_version(void)
{
    struct kg_ttlv_writer w;

    b_begin(&w, &(struct hdr){ .major = 2, .minor = 2, .batch_count = 1 });
    b_item(&w, KG_OP_GET, bid(1));
    p_uid(&w, vc_uid);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_UNSUPPORTED_VERSION);
    CU_ASSERT_EQUAL(dpartial.version.major, 2);
    CU_ASSERT_EQUAL(dpartial.version.minor, 2);
    /* Not a framing problem: the connection can stay open. */
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_UNSUPPORTED_VERSION));
    kg_ttlv_writer_cleanup(&w);

    /* Major version 3 and 0 alike. */
    b_begin(&w, &(struct hdr){ .major = 3, .minor = 1 });
    b_item(&w, KG_OP_QUERY, NULL);
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_UNSUPPORTED_VERSION);
    CU_ASSERT_EQUAL(dpartial.version.major, 3);
    kg_ttlv_writer_cleanup(&w);

    CU_ASSERT(kg_msg_version_supported((struct kg_version){ 1, 0 }));
    CU_ASSERT(kg_msg_version_supported((struct kg_version){ 1, 1 }));
    CU_ASSERT(kg_msg_version_supported((struct kg_version){ 1, 4 }));
    CU_ASSERT(!kg_msg_version_supported((struct kg_version){ 1, 5 }));
    CU_ASSERT(kg_msg_version_supported((struct kg_version){ 2, 0 }));
    CU_ASSERT(kg_msg_version_supported((struct kg_version){ 2, 1 }));
    CU_ASSERT(!kg_msg_version_supported((struct kg_version){ 2, 2 }));
    CU_ASSERT(!kg_msg_version_supported((struct kg_version){ 3, 0 }));
    CU_ASSERT(!kg_msg_version_supported((struct kg_version){ 0, 0 }));
}

static void test_decode_partial_first_item(void)
{
    struct kg_ttlv_writer w;

    /* The second item has no Operation: the partial echoes the first. */
    b_begin(&w, &(struct hdr){ .batch_count = 2, .major = 1, .minor = 2 });
    b_item(&w, KG_OP_ADD_ATTRIBUTE, bid(1));
    p_uid(&w, vc_uid);
    b_item_end(&w);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, bid(2), 8));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_UNEXPECTED);
    CU_ASSERT_EQUAL(dpartial.version.major, 1);
    CU_ASSERT_EQUAL(dpartial.version.minor, 2);
    CU_ASSERT_EQUAL(dpartial.operation, KG_OP_ADD_ATTRIBUTE);
    CU_ASSERT(dpartial.has_batch_id);
    CU_ASSERT_EQUAL(dpartial.batch_id_len, 8);
    CU_ASSERT(memcmp(dpartial.batch_id, bid(1), 8) == 0);
    kg_ttlv_writer_cleanup(&w);

    /* Same when the second item's batch id is too long. */
    {
        uint8_t long_id[80];
        memset(long_id, 1, sizeof(long_id));
        b_begin(&w, &(struct hdr){ .batch_count = 2 });
        b_item(&w, KG_OP_GET_ATTRIBUTES, bid(3));
        b_item_end(&w);
        OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
        OK(kg_ttlv_write_enum(&w, KG_TAG_OPERATION, KG_OP_GET));
        OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, long_id, sizeof(long_id)));
        OK(kg_ttlv_end_struct(&w));
        b_end(&w);
        CU_ASSERT_EQUAL(decode(&w), KG_ERR_INVALID_FIELD);
        CU_ASSERT_EQUAL(dpartial.operation, KG_OP_GET_ATTRIBUTES);
        CU_ASSERT(dpartial.has_batch_id && dpartial.batch_id_len == 8 &&
                  memcmp(dpartial.batch_id, bid(3), 8) == 0);
        kg_ttlv_writer_cleanup(&w);
    }

    /* A broken header leaves the defaults: 1.1, no operation, no id. */
    b_begin(&w, &(struct hdr){ .no_version = true });
    b_item(&w, KG_OP_GET, bid(1));
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_MSG_MALFORMED);
    CU_ASSERT_EQUAL(dpartial.version.major, 1);
    CU_ASSERT_EQUAL(dpartial.version.minor, 1);
    CU_ASSERT_EQUAL(dpartial.operation, 0);
    CU_ASSERT(!dpartial.has_batch_id);
    kg_ttlv_writer_cleanup(&w);
}

/* ---- writing responses ---- */

static void test_write_decode_failure(void)
{
    struct kg_ttlv_writer w;
    struct kg_request_partial p;
    struct resp r;

    /* An unsupported version: answered in 1.1, echoing what was read. */
    memset(&p, 0, sizeof(p));
    p.version = (struct kg_version){ 3, 0 };
    p.operation = KG_OP_GET;
    p.has_batch_id = true;
    memcpy(p.batch_id, bid(7), 8);
    p.batch_id_len = 8;
    kg_error_clear();
    kg_error_set(KG_ERR_UNSUPPORTED_VERSION, __FILE__, __LINE__);
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_msg_write_decode_failure(&w, &p, 1700000000));
    OK(kg_ttlv_writer_finish(&w));
    resp_take(&r, &w);
    CU_ASSERT(r.parsed);
    CU_ASSERT_EQUAL(r.major, 1);
    CU_ASSERT_EQUAL(r.minor, 1);
    CU_ASSERT_EQUAL(r.time_stamp, 1700000000);
    CU_ASSERT_EQUAL(r.batch_count, 1);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == KG_OP_GET);
    CU_ASSERT(r.items[0].has_bid && r.items[0].bid_len == 8 && memcmp(r.items[0].bid, bid(7), 8) == 0);
    CU_ASSERT_EQUAL(r.items[0].status, KG_STATUS_FAILED);
    CU_ASSERT(r.items[0].has_reason && r.items[0].reason == KG_REASON_INVALID_MESSAGE);
    CU_ASSERT(r.items[0].message[0] != '\0');
    CU_ASSERT(!r.items[0].has_payload);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&w);

    /* Version 1.3 is spoken: answered in 1.3. Nothing read: no Operation,
     * no batch id (KMIP 1.4 section 11.1, "Message cannot be parsed"). */
    memset(&p, 0, sizeof(p));
    p.version = (struct kg_version){ 1, 3 };
    kg_error_set(KG_ERR_TTLV_TRUNCATED, __FILE__, __LINE__);
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_msg_write_decode_failure(&w, &p, 0));
    resp_take(&r, &w);
    CU_ASSERT(r.major == 1 && r.minor == 3);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT(!r.items[0].has_op);
    CU_ASSERT(!r.items[0].has_bid);
    CU_ASSERT_EQUAL(r.items[0].reason, KG_REASON_INVALID_MESSAGE);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&w);

    /* A too-small output writer fails rather than writing half. */
    kg_error_set(KG_ERR_MSG_MALFORMED, __FILE__, __LINE__);
    OK(kg_ttlv_writer_init(&w, 40, false));
    CU_ASSERT(kg_failed(kg_msg_write_decode_failure(&w, &p, 0)));
    kg_ttlv_writer_cleanup(&w);
}

static void test_write_decode_failure_from_decoder(void)
{
    struct kg_ttlv_writer w, out;
    struct resp r;

    /* Straight from the decoder: a 2.0 request is answered in 1.1 with
     * Invalid Message, and its items are not read. */
    b_begin(&w, &(struct hdr){ .major = 3, .minor = 0 });
    b_item(&w, KG_OP_GET, bid(1));
    b_item_end(&w);
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_UNSUPPORTED_VERSION);
    OK(kg_ttlv_writer_init(&out, 4096, false));
    OK(kg_msg_write_decode_failure(&out, &dpartial, 1));
    resp_take(&r, &out);
    CU_ASSERT(r.major == 1 && r.minor == 1);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT_EQUAL(r.items[0].status, KG_STATUS_FAILED);
    CU_ASSERT_EQUAL(r.items[0].reason, KG_REASON_INVALID_MESSAGE);
    CU_ASSERT(strstr(r.items[0].message, "3.0") != NULL);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&out);
    kg_ttlv_writer_cleanup(&w);

    /* A 1.2 request whose second item is broken: answered in 1.2, echoing
     * the first item's Operation and batch id. */
    b_begin(&w, &(struct hdr){ .major = 1, .minor = 2, .batch_count = 2 });
    b_item(&w, KG_OP_CREATE, bid(4));
    b_item_end(&w);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    CU_ASSERT_EQUAL(decode(&w), KG_ERR_TTLV_TRUNCATED); /* an empty Batch Item */
    OK(kg_ttlv_writer_init(&out, 4096, false));
    OK(kg_msg_write_decode_failure(&out, &dpartial, 1));
    resp_take(&r, &out);
    CU_ASSERT(r.major == 1 && r.minor == 2);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == KG_OP_CREATE);
    CU_ASSERT(r.items[0].has_bid && memcmp(r.items[0].bid, bid(4), 8) == 0);
    CU_ASSERT_EQUAL(r.items[0].reason, KG_REASON_INVALID_MESSAGE);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&out);
    kg_ttlv_writer_cleanup(&w);
}

static void test_write_response_and_failed_item(void)
{
    struct kg_ttlv_writer items, w;
    struct kg_item_result res = { .status = KG_STATUS_FAILED, .reason = KG_REASON_ITEM_NOT_FOUND };
    struct resp r;

    snprintf(res.message, sizeof(res.message), "no such key");
    OK(kg_ttlv_writer_init(&items, 4096, false));
    /* With neither Operation nor batch id. */
    OK(kg_msg_write_failed_item(&items, 0, NULL, 0, &res));
    /* With both. */
    OK(kg_msg_write_failed_item(&items, KG_OP_GET, bid(2), 8, &res));
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_msg_write_response(&w, (struct kg_version){ 1, 4 }, 1234, 2, items.buf, items.len));
    OK(kg_ttlv_writer_finish(&w));
    resp_take(&r, &w);
    CU_ASSERT(r.parsed);
    CU_ASSERT(r.major == 1 && r.minor == 4);
    CU_ASSERT_EQUAL(r.time_stamp, 1234);
    CU_ASSERT_EQUAL(r.batch_count, 2);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT(!r.items[0].has_op && !r.items[0].has_bid);
    CU_ASSERT(r.items[1].has_op && r.items[1].op == KG_OP_GET);
    CU_ASSERT(r.items[1].has_bid && r.items[1].bid_len == 8);
    for (unsigned i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(r.items[i].status, KG_STATUS_FAILED);
        CU_ASSERT_EQUAL(r.items[i].reason, KG_REASON_ITEM_NOT_FOUND);
        CU_ASSERT_STRING_EQUAL(r.items[i].message, "no such key");
    }
    resp_free(&r);
    kg_ttlv_writer_cleanup(&w);

    /* No items at all: a header alone, of the size the dispatcher reserves. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    OK(kg_msg_write_response(&w, (struct kg_version){ 1, 1 }, 0, 0, NULL, 0));
    CU_ASSERT_EQUAL(w.len, KG_MSG_RESPONSE_HEADER_LEN);
    resp_take(&r, &w);
    CU_ASSERT(r.parsed && r.n == 0 && r.batch_count == 0);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&w);

    /* Items that are not well-formed TTLV are refused, not copied. */
    OK(kg_ttlv_writer_init(&w, 4096, false));
    CU_ASSERT(kg_failed(kg_msg_write_response(&w, (struct kg_version){ 1, 1 }, 0, 1, items.buf, items.len - 1)));
    kg_ttlv_writer_cleanup(&w);
    kg_ttlv_writer_cleanup(&items);
}

/* Reason for error `code` as kg_msg_result_from_error maps it. */
static uint32_t reason_of(int code, const char *detail, char *message, size_t cap)
{
    struct kg_item_result res;

    memset(&res, 0, sizeof(res));
    kg_error_clear();
    kg_error_set(code, __FILE__, __LINE__);
    if (detail != NULL) {
        kg_error_detail("%s", detail);
    }
    kg_msg_result_from_error((struct kg_version){ 1, 1 }, &res);
    CU_ASSERT_EQUAL(res.status, KG_STATUS_FAILED);
    if (message != NULL) {
        snprintf(message, cap, "%s", res.message);
    }
    return res.reason;
}

static void test_reason_mapping(void)
{
    static const struct {
        int code;
        uint32_t reason;
    } table[] = {
        { KG_ERR_TTLV_TRUNCATED, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_MSG_MALFORMED, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_TTLV_TOO_DEEP, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_TOO_MANY_BATCH_ITEMS, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_WRITER_FULL, KG_REASON_RESPONSE_TOO_LARGE },
        { KG_ERR_INVALID_FIELD, KG_REASON_INVALID_FIELD },
        { KG_ERR_BAD_ATTRIBUTE, KG_REASON_INVALID_FIELD },
        { KG_ERR_BAD_KEY_LENGTH, KG_REASON_INVALID_FIELD },
        { KG_ERR_MISSING_FIELD, KG_REASON_MISSING_DATA },
        { KG_ERR_DUPLICATE_FIELD, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_READ_ONLY_ATTRIBUTE, KG_REASON_PERMISSION_DENIED },
        { KG_ERR_ATTRIBUTE_NOT_FOUND, KG_REASON_ITEM_NOT_FOUND },
        { KG_ERR_UNSUPPORTED_OP, KG_REASON_OPERATION_NOT_SUPPORTED },
        { KG_ERR_UNSUPPORTED_VERSION, KG_REASON_INVALID_MESSAGE },
        { KG_ERR_UNSUPPORTED_FORMAT, KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED },
        { KG_ERR_UNSUPPORTED_ALGORITHM, KG_REASON_FEATURE_NOT_SUPPORTED },
        { KG_ERR_UNSUPPORTED_OBJECT, KG_REASON_FEATURE_NOT_SUPPORTED },
        { KG_ERR_UNSUPPORTED_FEATURE, KG_REASON_FEATURE_NOT_SUPPORTED },
        { KG_ERR_NOT_FOUND, KG_REASON_ITEM_NOT_FOUND },
        { KG_ERR_DENIED, KG_REASON_PERMISSION_DENIED },
        { KG_ERR_WRONG_STATE, KG_REASON_PERMISSION_DENIED },
        { KG_ERR_HSM, KG_REASON_CRYPTOGRAPHIC_FAILURE },
        { KG_ERR_HSM_UNWRAP, KG_REASON_CRYPTOGRAPHIC_FAILURE },
        { KG_ERR_NOMEM, KG_REASON_GENERAL_FAILURE },
        { KG_ERR_STORE, KG_REASON_GENERAL_FAILURE },
        { KG_ERR_IO, KG_REASON_GENERAL_FAILURE },
        { KG_ERR_CONFIG, KG_REASON_GENERAL_FAILURE },
    };
    char msg[256];

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        uint32_t got = reason_of(table[i].code, NULL, NULL, 0);
        if (got != table[i].reason) {
            fprintf(stderr, "\n%s -> reason 0x%X, expected 0x%X\n", kg_error_name(table[i].code), got,
                    table[i].reason);
        }
        CU_ASSERT_EQUAL(got, table[i].reason);
    }
    /* The detail of a client-side error reaches the client... */
    CU_ASSERT_EQUAL(reason_of(KG_ERR_BAD_ATTRIBUTE, "unknown attribute 'Foo'", msg, sizeof(msg)),
                    KG_REASON_INVALID_FIELD);
    CU_ASSERT_STRING_EQUAL(msg, "unknown attribute 'Foo'");
    /* ...an internal one's (SQLite text, paths) does not. */
    CU_ASSERT_EQUAL(reason_of(KG_ERR_STORE, "disk I/O error at /var/lib/kmipgw/x.db", msg, sizeof(msg)),
                    KG_REASON_GENERAL_FAILURE);
    CU_ASSERT(strstr(msg, "/var/lib") == NULL);
    CU_ASSERT_STRING_EQUAL(msg, "general failure");
    /* No detail: the reason's own text. */
    reason_of(KG_ERR_DENIED, NULL, msg, sizeof(msg));
    CU_ASSERT_STRING_EQUAL(msg, "permission denied");
    /* KMIP 2.0 has a reason of its own for a state violation; 1.x does not. */
    {
        struct kg_item_result res;

        memset(&res, 0, sizeof(res));
        kg_error_clear();
        kg_error_set(KG_ERR_WRONG_STATE, __FILE__, __LINE__);
        kg_msg_result_from_error((struct kg_version){ 2, 0 }, &res);
        CU_ASSERT_EQUAL(res.reason, KG_REASON_WRONG_KEY_LIFECYCLE_STATE);
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_msg_result_from_error((struct kg_version){ 2, 1 }, &res);
        CU_ASSERT_EQUAL(res.reason, KG_REASON_PERMISSION_DENIED);
    }
}

static void test_error_closes(void)
{
    /* PROTO, LIMIT and IO close; WRITER_FULL (a LIMIT code that only means
     * this answer was too big) and every other category keep the
     * connection. */
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_TRUNCATED));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_BAD_PADDING));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_MSG_MALFORMED));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_MSG_BAD_VERSION));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_TOO_DEEP));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_TOO_MANY_ITEMS));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TTLV_TOO_LONG));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TOO_MANY_BATCH_ITEMS));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_WRITER_FULL));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_INVALID_FIELD));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_DUPLICATE_FIELD));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_MISSING_FIELD));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_UNSUPPORTED_OP));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_UNSUPPORTED_VERSION));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_NOT_FOUND));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_DENIED));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_WRONG_STATE));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_HSM));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_HSM_BUSY));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_NOMEM));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_STORE));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_IO));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_CLOSED));
    CU_ASSERT(kg_msg_error_closes(KG_ERR_TLS));
    CU_ASSERT(!kg_msg_error_closes(KG_ERR_CONFIG));
    CU_ASSERT(!kg_msg_error_closes(KG_OK));
}

/* ======================================================================
 * Part B: the pipeline on a SoftHSMv2 token
 * ====================================================================== */

#define SOFTHSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL "kgmsg"
#define TOKEN_PIN "1234"
#define MWK_LABEL "kgmsg-mwk"

static const char policy_yaml[] =
    "version: 1\n"
    "groups:\n"
    "  vsphere:\n"
    "    ou: vsphere\n"
    "    operations:\n"
    "      - Discover Versions\n"
    "      - Query\n"
    "      - Create\n"
    "      - Get\n"
    "      - Get Attributes\n"
    "      - Get Attribute List\n"
    "      - Add Attribute\n"
    "      - Modify Attribute\n"
    "      - Activate\n"
    "    export: plaintext\n"
    "    scope: own\n"
    "  backup:\n"
    "    ou: backup\n"
    "    operations:\n"
    "      - Discover Versions\n"
    "      - Query\n"
    "      - Create\n"
    "      - Register\n"
    "      - Get\n"
    "      - Get Attributes\n"
    "      - Get Attribute List\n"
    "      - Locate\n"
    "      - Activate\n"
    "    export: wrapped\n"
    "    scope: own\n"
    "  admin:\n"
    "    ou: admin\n"
    "    operations: all\n"
    "    export: plaintext\n"
    "    scope: all\n";

#define MAX_SEEN_KEYS 64

static struct {
    bool tried, ready;
    char dir[64];
    char audit_path[128];
    struct kg_config config;
    struct kg_gateway gw;
    bool lock_init;
    struct kg_store *store;         /* the reader connection handlers get */
    struct kg_committer *committer; /* the writer every change goes through */
    /* Key bytes the tests received, to look for in the audit log. */
    uint8_t keys[MAX_SEEN_KEYS][KG_P11_MAX_KEY];
    uint32_t key_lens[MAX_SEEN_KEYS];
    uint32_t key_count;
    /* Batch items the responses reported, and the audit lines they made. */
    uint64_t items_reported;
} env = { .dir = "/tmp/kg_msg_test.XXXXXX" };

static const char *const ous_vsphere[] = { "vsphere" };
static const char *const ous_backup[] = { "backup" };
static const char *const ous_admin[] = { "admin" };
static const char *const ous_unlisted[] = { "unlisted" };
static const char *const ous_two[] = { "vsphere", "backup" };

#define IDENTITY(name_, cn_, ous_, n_, serial_)                                                       \
    static const struct kg_identity name_ = {                                                      \
        .cn = cn_, .ous = ous_, .ou_count = n_, .serial = serial_, .fingerprint = "ab" serial_ \
    }
IDENTITY(id_vsphere, "vcenter.example", ous_vsphere, 1, "0a");
IDENTITY(id_backup, "backup.example", ous_backup, 1, "0b");
IDENTITY(id_admin, "custodian", ous_admin, 1, "0c");
IDENTITY(id_unlisted, "stranger", ous_unlisted, 1, "0d");
IDENTITY(id_no_ou, "no-ou", NULL, 0, "0e");
IDENTITY(id_two, "two-ous", ous_two, 2, "0f");

static const char *softhsm_module(void)
{
    const char *m = getenv("KG_SOFTHSM_MODULE");

    return m != NULL ? m : SOFTHSM_DEFAULT_MODULE;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void env_teardown(void)
{
    if (env.lock_init) {
        kg_gateway_cleanup(&env.gw);
    }
    kg_audit_close(env.gw.audit);
    kg_committer_close(env.committer);
    kg_store_close(env.store);
    kg_p11_close(env.gw.p11);
    memset(&env.gw, 0, sizeof(env.gw));
    env.store = NULL;
    env.committer = NULL;
    if (env.tried && env.dir[strlen(env.dir) - 1] != 'X') {
        nftw(env.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    OPENSSL_cleanse(env.keys, sizeof(env.keys));
}

static bool env_fail(const char *what)
{
    fprintf(stderr, "\nPart B setup: %s failed: %s %s (%s)\n", what, kg_error_name(kg_errno()), kg_error_text(),
            kg_error_debug());
    return false;
}

/* One token, store, policy and audit log for all of Part B, made on first
 * use. False: SoftHSM is not there (skip) or setup failed (reported). */
static bool env_setup(void)
{
    struct kg_p11_config pc = {
        .module_path = softhsm_module(),
        .token_label = TOKEN_LABEL,
        .mwk_label = MWK_LABEL,
        .max_sessions = 4,
    };
    struct kg_policy_errors perr;
    struct kg_secret *pin = NULL;
    char path[256], cmd[512];
    bool created = false;
    kg_result rc;
    FILE *f;

    if (env.tried) {
        return env.ready;
    }
    env.tried = true;
    if (access(softhsm_module(), R_OK) != 0 || system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\nSKIP: SoftHSMv2 (%s, softhsm2-util) not installed\n", softhsm_module());
        return false;
    }
    if (mkdtemp(env.dir) == NULL) {
        return env_fail("mkdtemp");
    }
    snprintf(path, sizeof(path), "%s/tokens", env.dir);
    if (mkdir(path, 0700) != 0) {
        return env_fail("mkdir tokens");
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", env.dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return env_fail("softhsm2.conf");
    }
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", env.dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label " TOKEN_LABEL " --pin " TOKEN_PIN
             " --so-pin 5678 >%s/init.log 2>&1",
             env.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "\nsofthsm2-util --init-token failed, see %s/init.log\n", env.dir);
        return false;
    }
    if (kg_failed(kg_secret_from(TOKEN_PIN, strlen(TOKEN_PIN), &pin))) {
        return env_fail("PIN");
    }
    rc = kg_p11_open(&pc, pin, false, &env.gw.p11);
    kg_secret_free(pin);
    if (kg_failed(rc)) {
        return env_fail("kg_p11_open");
    }
    if (kg_failed(kg_p11_init_mwk(env.gw.p11, &created)) || !created) {
        return env_fail("kg_p11_init_mwk");
    }
    if (kg_failed(kg_p11_init_mac(env.gw.p11, &created)) || !created) {
        return env_fail("kg_p11_init_mac");
    }
    snprintf(path, sizeof(path), "%s/t.db", env.dir);
    if (kg_failed(kg_store_open(path, &env.store))) {
        return env_fail("kg_store_open");
    }
    if (kg_failed(kg_committer_open(path, &env.committer))) {
        return env_fail("kg_committer_open");
    }
    env.gw.committer = env.committer;
    snprintf(env.audit_path, sizeof(env.audit_path), "%s/audit.log", env.dir);
    if (kg_failed(kg_audit_open(env.audit_path, &env.gw.audit))) {
        return env_fail("kg_audit_open");
    }
    struct kg_policy *policy = NULL;
    if (kg_policy_load_buffer(policy_yaml, strlen(policy_yaml), "policy.yaml", &policy, &perr) != 0) {
        for (size_t i = 0; i < perr.count; i++) {
            fprintf(stderr, "\npolicy.yaml:%u:%u: %s", perr.items[i].line, perr.items[i].column,
                    perr.items[i].message);
        }
        return env_fail("kg_policy_load_buffer");
    }
    /* The configuration as kg_config_load defaults it; only the limits
     * matter to kg_gateway_process. */
    env.config.max_message_bytes = 65536;
    env.config.max_depth = 16;
    env.config.max_items = 4096;
    env.config.max_batch_items = 64;
    env.config.workers = 1;
    env.config.max_pending = 1;
    env.gw.config = &env.config;
    env.gw.limits = (struct kg_ttlv_limits){
        .max_message_len = env.config.max_message_bytes,
        .max_depth = env.config.max_depth,
        .max_items = env.config.max_items,
    };
    if (kg_failed(kg_gateway_init(&env.gw, policy))) {
        return env_fail("kg_gateway_init");
    }
    env.lock_init = true;
    env.ready = true;
    return true;
}

#define NEED_HSM()                                              \
    do {                                                        \
        if (!env_setup()) {                                     \
            CU_PASS("SoftHSMv2 not available: test skipped");   \
            return;                                             \
        }                                                       \
    } while (0)

/* Lines in the audit log so far. */
static uint64_t audit_lines(void)
{
    FILE *f = fopen(env.audit_path, "r");
    uint64_t n = 0;
    int c;

    if (f == NULL) {
        return 0;
    }
    while ((c = fgetc(f)) != EOF) {
        n += c == '\n';
    }
    fclose(f);
    return n;
}

/* The whole audit log, NUL-terminated; the caller frees it. */
static char *audit_text(size_t *len)
{
    FILE *f = fopen(env.audit_path, "r");
    char *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL) {
            *len = fread(buf, 1, (size_t)n, f);
            buf[*len] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/*
 * Process request `req` (consumed) as `id` and parse the response into r.
 * Checks what holds for every answer: it parses, it is in the request's
 * version (1.1 unless told), its Batch Count is the number of items, and
 * the audit log grew by one line per item.
 */
static void run_as(const struct kg_identity *id, struct kg_ttlv_writer *req, struct resp *r)
{
    struct kg_ttlv_writer out;
    uint64_t before = audit_lines();
    bool close = true;
    kg_result rc;

    OK(kg_ttlv_writer_init(&out, env.config.max_message_bytes, true));
    kg_error_clear();
    rc = kg_gateway_process(&env.gw, env.store, id, 1, req->buf, req->len, &out, &close);
    kg_ttlv_writer_cleanup(req);
    if (kg_failed(rc)) {
        fprintf(stderr, "\nkg_gateway_process: %s at %s (%s)\n", kg_error_name(kg_errno()), kg_error_debug(),
                kg_error_text());
        kg_ttlv_writer_cleanup(&out);
        memset(r, 0, sizeof(*r));
        CU_FAIL_FATAL("kg_gateway_process failed");
    }
    resp_take(r, &out);
    kg_ttlv_writer_cleanup(&out);
    r->close = close;
    CU_ASSERT_FATAL(r->parsed);
    CU_ASSERT_EQUAL(r->batch_count, (int32_t)r->n);
    CU_ASSERT(r->has_time);
    /* One record per item answered, and a second for each item a batch
     * with Undo rolled back (it ran, then was undone). */
    unsigned records = r->n;
    for (unsigned i = 0; i < r->n; i++) {
        records += r->items[i].status == KG_STATUS_UNDONE;
    }
    CU_ASSERT_EQUAL(audit_lines() - before, records);
    env.items_reported += records;
}

/* A one-item request: operation `op`, batch id 1, payload the UID alone
 * (empty when uid is NULL). Checks Operation and batch id are echoed. */
static void run_op(const struct kg_identity *id, uint32_t op, const char *uid, struct resp *r)
{
    struct kg_ttlv_writer w;

    b_begin(&w, NULL);
    b_item(&w, op, bid(1));
    p_uid(&w, uid);
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, r);
    CU_ASSERT_EQUAL(r->n, 1);
    /* Operation 0 is no operation: it is not echoed. */
    CU_ASSERT(op == 0 ? !r->items[0].has_op : r->items[0].has_op && r->items[0].op == op);
    CU_ASSERT(r->items[0].has_bid && r->items[0].bid_len == 8 && memcmp(r->items[0].bid, bid(1), 8) == 0);
}

/* Result Reason of a one-item request (0 on success). */
static int64_t op_reason(const struct kg_identity *id, uint32_t op, const char *uid)
{
    struct resp r;
    int64_t reason;

    run_op(id, op, uid, &r);
    reason = item_reason(&r, 0);
    resp_free(&r);
    return reason;
}

/* Create an AES key as `id`; returns the Result Reason (0: created, UID in
 * uid). `name`, `xname`/`xvalue` add a Name and an x- attribute. */
static int64_t create_key_ex(const struct kg_identity *id, uint32_t alg, int32_t bits, const char *name,
                             const char *xname, const char *xvalue, char uid[KG_UID_LEN + 1])
{
    struct kg_ttlv_writer w;
    struct resp r;
    struct kg_ttlv_item it;
    int64_t reason;

    b_begin(&w, &(struct hdr){ .auth = true });
    b_item(&w, KG_OP_CREATE, bid(1));
    p_create_begin(&w, alg, bits, KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT);
    if (name != NULL) {
        p_attr_name(&w, name);
    }
    if (xname != NULL) {
        p_attr_text(&w, xname, -1, xvalue);
    }
    p_create_end(&w);
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, &r);
    reason = item_reason(&r, 0);
    if (uid != NULL) {
        snprintf(uid, KG_UID_LEN + 1, "%s", item_uid(&r, 0));
    }
    if (reason == 0) {
        CU_ASSERT_EQUAL(strlen(item_uid(&r, 0)), KG_UID_LEN);
        CU_ASSERT(st_child(&r.items[0].payload, KG_TAG_OBJECT_TYPE, 0, &it) && enum_of(&it) == KG_OBJ_SYMMETRIC_KEY);
    }
    resp_free(&r);
    return reason;
}

static void create_key(const struct kg_identity *id, char uid[KG_UID_LEN + 1])
{
    CU_ASSERT_EQUAL_FATAL(create_key_ex(id, KG_ALG_AES, 256, NULL, NULL, NULL, uid), 0);
}

/* Get Attributes(uid, name; all when name is NULL) as `id`: returns the
 * reason, *count gets the number of Attribute structures answered, and the
 * response stays in `hold` for the caller to read (and resp_free). */
static int64_t get_attr(const struct kg_identity *id, const char *uid, const char *name, struct resp *hold,
                        unsigned *count)
{
    struct kg_ttlv_writer w;

    b_begin(&w, NULL);
    b_item(&w, KG_OP_GET_ATTRIBUTES, bid(1));
    p_uid(&w, uid);
    if (name != NULL) {
        OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, name, (uint32_t)strlen(name)));
    }
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, hold);
    if (count != NULL) {
        *count = hold->n == 1 && hold->items[0].has_payload ? st_count(&hold->items[0].payload, KG_TAG_ATTRIBUTE)
                                                             : 0;
    }
    return item_reason(hold, 0);
}

/* The State of uid as `id` sees it, -1 on failure. */
static int64_t key_state(const struct kg_identity *id, const char *uid)
{
    struct resp r;
    struct attr_out a;
    unsigned n = 0;
    int64_t state = -1;

    if (get_attr(id, uid, "State", &r, &n) == 0 && n == 1 && payload_attr(&r.items[0].payload, 0, &a) &&
        strcmp(a.name, "State") == 0) {
        state = enum_of(&a.value);
    }
    resp_free(&r);
    return state;
}

static void remember_key(const uint8_t *b, uint32_t len)
{
    if (env.key_count < MAX_SEEN_KEYS && len <= KG_P11_MAX_KEY) {
        memcpy(env.keys[env.key_count], b, len);
        env.key_lens[env.key_count] = len;
        env.key_count++;
    }
}

/* Get uid as `id` (Key Format Type `format`, 0: not given). Returns the
 * reason; on success checks the answer's shape and copies the key. */
static int64_t get_key(const struct kg_identity *id, const char *uid, uint32_t format, int32_t max_resp,
                       uint8_t key[KG_P11_MAX_KEY], uint32_t *key_len)
{
    static const uint32_t block_path[] = { KG_TAG_SYMMETRIC_KEY, KG_TAG_KEY_BLOCK };
    struct kg_ttlv_writer w;
    struct kg_ttlv_item block, it, mat;
    struct resp r;
    const uint8_t *b;
    uint32_t n;
    int64_t reason;

    *key_len = 0;
    b_begin(&w, &(struct hdr){ .auth = true, .has_max_resp = max_resp > 0, .max_resp = max_resp });
    b_item(&w, KG_OP_GET, bid(1));
    p_uid(&w, uid);
    if (format != 0) {
        OK(kg_ttlv_write_enum(&w, KG_TAG_KEY_FORMAT_TYPE, format));
    }
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, &r);
    reason = item_reason(&r, 0);
    if (reason == 0) {
        const struct kg_ttlv_item *p = &r.items[0].payload;
        CU_ASSERT(st_child(p, KG_TAG_OBJECT_TYPE, 0, &it) && enum_of(&it) == KG_OBJ_SYMMETRIC_KEY);
        CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
        CU_ASSERT_FATAL(st_path(p, block_path, 2, &block));
        CU_ASSERT(st_child(&block, KG_TAG_KEY_FORMAT_TYPE, 0, &it) &&
                  enum_of(&it) == (format ? format : KG_FORMAT_RAW));
        CU_ASSERT(st_child(&block, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, 0, &it) && enum_of(&it) == KG_ALG_AES);
        CU_ASSERT_FATAL(st_child(&block, KG_TAG_KEY_VALUE, 0, &it));
        CU_ASSERT_FATAL(st_child(&it, KG_TAG_KEY_MATERIAL, 0, &mat));
        if (format == KG_FORMAT_TRANSPARENT_SYMMETRIC) {
            CU_ASSERT_FATAL(st_child(&mat, KG_TAG_KEY, 0, &mat));
        }
        CU_ASSERT_FATAL(kg_ok(kg_ttlv_get_bytes(&mat, &b, &n)) && n <= KG_P11_MAX_KEY);
        memcpy(key, b, n);
        *key_len = n;
        remember_key(b, n);
        CU_ASSERT(st_child(&block, KG_TAG_CRYPTOGRAPHIC_LENGTH, 0, &it) && int_of(&it) == (int64_t)n * 8);
    }
    OPENSSL_cleanse(r.buf, r.len);
    resp_free(&r);
    return reason;
}

/* Add Attribute(uid, name[index], text) as `id`: reason; *index_out gets
 * the index answered (0 when the answer omits it). */
static int64_t add_attr(const struct kg_identity *id, uint32_t op, const char *uid, const char *name,
                        int32_t index, const char *value, int32_t *index_out)
{
    struct kg_ttlv_writer w;
    struct attr_out a;
    struct resp r;
    int64_t reason;

    b_begin(&w, NULL);
    b_item(&w, op, bid(1));
    p_uid(&w, uid);
    p_attr_text(&w, name, index, value);
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, &r);
    reason = item_reason(&r, 0);
    if (reason == 0) {
        CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
        CU_ASSERT_FATAL(payload_attr(&r.items[0].payload, 0, &a));
        CU_ASSERT_STRING_EQUAL(a.name, name);
        CU_ASSERT(text_is(&a.value, value));
        /* Index 0 is the default and is left out (KMIP 1.4 section 2.1.1). */
        CU_ASSERT(!a.has_index || a.index > 0);
        if (index_out != NULL) {
            *index_out = a.has_index ? a.index : 0;
        }
    }
    resp_free(&r);
    return reason;
}

/* The filters of one Locate. */
struct locate_q {
    const char *xname, *xvalue; /* a text attribute filter */
    const char *name;           /* a Name filter */
    bool by_alg;                /* Cryptographic Algorithm AES */
    int32_t max_items;          /* 0: not given */
};

/* Locate as `id` with the filters of `q`; returns the reason, the UIDs
 * found (the first `cap` of them) and their number. */
static int64_t locate(const struct kg_identity *id, const struct locate_q *q, char (*uids)[KG_UID_LEN + 1],
                      unsigned cap, unsigned *found)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_item it;
    struct resp r;
    int64_t reason;

    *found = 0;
    b_begin(&w, NULL);
    b_item(&w, KG_OP_LOCATE, bid(1));
    if (q->max_items > 0) {
        OK(kg_ttlv_write_int(&w, KG_TAG_MAXIMUM_ITEMS, q->max_items));
    }
    if (q->xname != NULL) {
        p_attr_text(&w, q->xname, -1, q->xvalue);
    }
    if (q->name != NULL) {
        p_attr_name(&w, q->name);
    }
    if (q->by_alg) {
        p_attr_enum(&w, "Cryptographic Algorithm", KG_ALG_AES);
    }
    b_item_end(&w);
    b_end(&w);
    run_as(id, &w, &r);
    reason = item_reason(&r, 0);
    if (reason == 0) {
        const char *t;
        uint32_t n;
        while (st_child(&r.items[0].payload, KG_TAG_UNIQUE_IDENTIFIER, *found, &it)) {
            CU_ASSERT_FATAL(kg_ok(kg_ttlv_get_text(&it, &t, &n)) && n == KG_UID_LEN);
            if (*found < cap) {
                memcpy(uids[*found], t, n);
                uids[*found][n] = '\0';
            }
            (*found)++;
        }
    }
    resp_free(&r);
    return reason;
}

static bool uid_in(char (*uids)[KG_UID_LEN + 1], unsigned n, const char *uid)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(uids[i], uid) == 0) {
            return true;
        }
    }
    return false;
}

/* Revoke uid as admin with `code`: the reason. */
static int64_t revoke_key(const char *uid, uint32_t code)
{
    struct kg_ttlv_writer w;
    struct resp r;
    int64_t reason;

    b_begin(&w, NULL);
    b_item(&w, KG_OP_REVOKE, bid(1));
    p_uid(&w, uid);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_REVOCATION_REASON));
    OK(kg_ttlv_write_enum(&w, KG_TAG_REVOCATION_REASON_CODE, code));
    OK(kg_ttlv_write_text(&w, KG_TAG_REVOCATION_MESSAGE, "test", 4));
    OK(kg_ttlv_end_struct(&w));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    reason = item_reason(&r, 0);
    if (reason == 0) {
        CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
    }
    resp_free(&r);
    return reason;
}

/* ---- the tests ---- */

static void test_gw_vcenter_sequence(void)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_item it;
    struct attr_out a;
    struct resp r;
    char uid[KG_UID_LEN + 1];
    uint8_t key[KG_P11_MAX_KEY], key2[KG_P11_MAX_KEY];
    uint32_t key_len = 0, key2_len = 0;
    unsigned n;
    bool has11 = false;
    int32_t index = -1;

    NEED_HSM();
    /* 1. Discover Versions, empty payload (the health check). */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, NULL);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_FATAL(item_ok(&r, 0));
    CU_ASSERT(!r.close);
    CU_ASSERT(r.major == 1 && r.minor == 1);
    CU_ASSERT(!r.items[0].has_bid);
    /* Not newer than the request's 1.1: 1.1 and 1.0. */
    CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION), 2);
    for (unsigned i = 0; st_child(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION, i, &it); i++) {
        struct kg_ttlv_item major, minor;
        CU_ASSERT_FATAL(st_child(&it, KG_TAG_PROTOCOL_VERSION_MAJOR, 0, &major) &&
                        st_child(&it, KG_TAG_PROTOCOL_VERSION_MINOR, 0, &minor));
        has11 |= int_of(&major) == 1 && int_of(&minor) == 1;
    }
    CU_ASSERT(has11);
    resp_free(&r);

    /* ...again with a batch id, as the five-minute health check does. */
    run_op(&id_vsphere, KG_OP_DISCOVER_VERSIONS, NULL, &r);
    CU_ASSERT(item_ok(&r, 0));
    resp_free(&r);

    /* 2. Query Server Information -> Vendor Identification. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_QUERY, bid(1));
    OK(kg_ttlv_write_enum(&w, KG_TAG_QUERY_FUNCTION, KG_QUERY_SERVER_INFORMATION));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT(st_child(&r.items[0].payload, KG_TAG_VENDOR_IDENTIFICATION, 0, &it) && it.type == KG_TTLV_TEXT_STRING &&
              it.len > 0);
    CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_OPERATION), 0);
    resp_free(&r);

    /* 3. Create AES-256, mask 12, with the credential in the header. */
    create_key(&id_vsphere, uid);

    /* 4. Get Attributes x-Name on the new key: Success, the UID, nothing else. */
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Name", &r, &n), 0);
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
    CU_ASSERT_EQUAL(n, 0);
    resp_free(&r);

    /* 5. The three x- attributes in one batch: three answers, each echoing
     * its batch id, with the UID and the attribute. */
    build_vcenter_add_batch(&w, uid, false);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    for (unsigned i = 0; i < 3; i++) {
        CU_ASSERT(item_ok(&r, i));
        CU_ASSERT(r.items[i].has_op && r.items[i].op == KG_OP_ADD_ATTRIBUTE);
        CU_ASSERT(r.items[i].has_bid && r.items[i].bid_len == 8 && memcmp(r.items[i].bid, bid(i + 1), 8) == 0);
        CU_ASSERT_STRING_EQUAL(item_uid(&r, i), uid);
        CU_ASSERT(payload_attr(&r.items[i].payload, 0, &a));
        CU_ASSERT_STRING_EQUAL(a.name, vc_names[i]);
        CU_ASSERT(text_is(&a.value, vc_values[i]));
        CU_ASSERT(!a.has_index);
    }
    resp_free(&r);

    /* 6. Re-adding the same values must not fail the task: the same index
     * (0) comes back, and no second instance appears. */
    build_vcenter_add_batch(&w, uid, false);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(r.n, 3);
    for (unsigned i = 0; i < r.n; i++) {
        CU_ASSERT(item_ok(&r, i));
        CU_ASSERT(payload_attr(&r.items[i].payload, 0, &a) && !a.has_index);
    }
    resp_free(&r);
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Vendor", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && text_is(&a.value, "VMware, Inc."));
    resp_free(&r);
    /* A second value is a second instance (index 1); re-adding it answers
     * index 1 again. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Vendor", -1, "Broadcom", &index), 0);
    CU_ASSERT_EQUAL(index, 1);
    index = -1;
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Vendor", -1, "Broadcom", &index), 0);
    CU_ASSERT_EQUAL(index, 1);
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Vendor", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    resp_free(&r);

    /* The later tags, and reading one back. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Name", -1, "vm-42", NULL), 0);
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Name", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && strcmp(a.name, "x-Name") == 0 &&
              text_is(&a.value, "vm-42"));
    resp_free(&r);

    /* 7. Get carries only the UID: 32 bytes, Raw, AES, 256. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, 0, 0, key, &key_len), 0);
    CU_ASSERT_EQUAL(key_len, 32);
    /* The same key every time. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, KG_FORMAT_RAW, 0, key2, &key2_len), 0);
    CU_ASSERT(key2_len == key_len && memcmp(key, key2, key_len) == 0);
    /* Transparent Symmetric Key format carries the same bytes. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, KG_FORMAT_TRANSPARENT_SYMMETRIC, 0, key2, &key2_len), 0);
    CU_ASSERT(key2_len == key_len && memcmp(key, key2, key_len) == 0);
    /* A format we do not offer. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, KG_FORMAT_OPAQUE, 0, key2, &key2_len),
                    KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED);

    /* 8. State Pre-Active -> Activate -> Active. */
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_PRE_ACTIVE);
    run_op(&id_vsphere, KG_OP_ACTIVATE, uid, &r);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
    resp_free(&r);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_ACTIVE);
    /* Activating twice is a state error. */
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_ACTIVATE, uid), KG_REASON_PERMISSION_DENIED);
    /* Get Attributes with no names: the derived attributes and the tags. */
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, NULL, &r, &n), 0);
    CU_ASSERT(n >= 6 + 5);
    resp_free(&r);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(key2, sizeof(key2));
}

static void test_gw_register_get(void)
{
    static const uint8_t known[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                       0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF };
    struct kg_ttlv_writer w;
    struct resp r;
    char uid[KG_UID_LEN + 1];
    uint8_t key[KG_P11_MAX_KEY];
    uint32_t key_len = 0;

    NEED_HSM();
    b_begin(&w, NULL);
    b_item(&w, KG_OP_REGISTER, bid(1));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_TEMPLATE_ATTRIBUTE));
    p_attr_int(&w, "Cryptographic Usage Mask", KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT);
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_SYMMETRIC_KEY));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_KEY_BLOCK));
    OK(kg_ttlv_write_enum(&w, KG_TAG_KEY_FORMAT_TYPE, KG_FORMAT_RAW));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_KEY_VALUE));
    OK(kg_ttlv_write_bytes(&w, KG_TAG_KEY_MATERIAL, known, sizeof(known)));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_write_enum(&w, KG_TAG_CRYPTOGRAPHIC_ALGORITHM, KG_ALG_AES));
    OK(kg_ttlv_write_int(&w, KG_TAG_CRYPTOGRAPHIC_LENGTH, 128));
    OK(kg_ttlv_end_struct(&w));
    OK(kg_ttlv_end_struct(&w));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_FATAL(item_ok(&r, 0));
    snprintf(uid, sizeof(uid), "%s", item_uid(&r, 0));
    CU_ASSERT_EQUAL(strlen(uid), KG_UID_LEN);
    resp_free(&r);
    remember_key(known, sizeof(known));

    CU_ASSERT_EQUAL(get_key(&id_admin, uid, 0, 0, key, &key_len), 0);
    CU_ASSERT_EQUAL(key_len, 16);
    CU_ASSERT(memcmp(key, known, sizeof(known)) == 0);
    CU_ASSERT_EQUAL(key_state(&id_admin, uid), KG_STATE_PRE_ACTIVE);
    OPENSSL_cleanse(key, sizeof(key));
}

static void test_gw_modify_delete_index(void)
{
    struct attr_out a;
    struct resp r;
    char uid[KG_UID_LEN + 1];
    int32_t index = -1;
    unsigned n;

    NEED_HSM();
    create_key(&id_vsphere, uid);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Tag", -1, "a", &index), 0);
    CU_ASSERT_EQUAL(index, 0);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Tag", -1, "b", &index), 0);
    CU_ASSERT_EQUAL(index, 1);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Tag", -1, "c", &index), 0);
    CU_ASSERT_EQUAL(index, 2);

    /* Modify index 1 only. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_MODIFY_ATTRIBUTE, uid, "x-Tag", 1, "B", &index), 0);
    CU_ASSERT_EQUAL(index, 1);
    /* Modify without an index changes index 0. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_MODIFY_ATTRIBUTE, uid, "x-Tag", -1, "A", &index), 0);
    CU_ASSERT_EQUAL(index, 0);
    /* An index that does not exist. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_MODIFY_ATTRIBUTE, uid, "x-Tag", 7, "Z", NULL),
                    KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_MODIFY_ATTRIBUTE, uid, "x-Missing", -1, "Z", NULL),
                    KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Tag", &r, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && !a.has_index && text_is(&a.value, "A"));
    CU_ASSERT(payload_attr(&r.items[0].payload, 1, &a) && a.has_index && a.index == 1 && text_is(&a.value, "B"));
    CU_ASSERT(payload_attr(&r.items[0].payload, 2, &a) && a.has_index && a.index == 2 && text_is(&a.value, "c"));
    resp_free(&r);

    /* vsphere may not Delete Attribute; admin may (scope all). */
    {
        struct kg_ttlv_writer w;
        b_begin(&w, NULL);
        b_item(&w, KG_OP_DELETE_ATTRIBUTE, bid(1));
        p_uid(&w, uid);
        OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "x-Tag", 5));
        OK(kg_ttlv_write_int(&w, KG_TAG_ATTRIBUTE_INDEX, 1));
        b_item_end(&w);
        b_end(&w);
        run_as(&id_vsphere, &w, &r);
        CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_PERMISSION_DENIED);
        resp_free(&r);

        b_begin(&w, NULL);
        b_item(&w, KG_OP_DELETE_ATTRIBUTE, bid(1));
        p_uid(&w, uid);
        OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "x-Tag", 5));
        OK(kg_ttlv_write_int(&w, KG_TAG_ATTRIBUTE_INDEX, 1));
        b_item_end(&w);
        b_end(&w);
        run_as(&id_admin, &w, &r);
        CU_ASSERT_FATAL(item_ok(&r, 0));
        CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
        /* The deleted instance is answered. */
        CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && strcmp(a.name, "x-Tag") == 0 && a.has_index &&
                  a.index == 1 && text_is(&a.value, "B"));
        resp_free(&r);

        /* Deleting it again: Item Not Found. */
        b_begin(&w, NULL);
        b_item(&w, KG_OP_DELETE_ATTRIBUTE, bid(1));
        p_uid(&w, uid);
        OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "x-Tag", 5));
        OK(kg_ttlv_write_int(&w, KG_TAG_ATTRIBUTE_INDEX, 1));
        b_item_end(&w);
        b_end(&w);
        run_as(&id_admin, &w, &r);
        CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_ITEM_NOT_FOUND);
        resp_free(&r);

        /* Without an index: index 0 goes. */
        b_begin(&w, NULL);
        b_item(&w, KG_OP_DELETE_ATTRIBUTE, bid(1));
        p_uid(&w, uid);
        OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "x-Tag", 5));
        b_item_end(&w);
        b_end(&w);
        run_as(&id_admin, &w, &r);
        CU_ASSERT(item_ok(&r, 0));
        CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && text_is(&a.value, "A"));
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Tag", &r, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && a.has_index && a.index == 2 && text_is(&a.value, "c"));
    resp_free(&r);
}

static void test_gw_get_attribute_list(void)
{
    struct kg_ttlv_item it;
    struct resp r;
    char uid[KG_UID_LEN + 1];
    static const char *const expect[] = {
        "Unique Identifier", "Object Type", "State", "Cryptographic Algorithm", "Cryptographic Length",
        "Cryptographic Usage Mask", "Initial Date", "Last Change Date", "x-Vendor",
        /* Set by the server at creation (kg_attr_store_new); the 1.2 and
         * 1.4 ones (Original Creation Date, Sensitive, ...) are not shown
         * to this KMIP 1.1 request. */
        "Digest", "Fresh", "Lease Time",
    };

    NEED_HSM();
    create_key(&id_vsphere, uid);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Vendor", -1, "one", NULL), 0);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "x-Vendor", -1, "two", NULL), 0);
    run_op(&id_vsphere, KG_OP_GET_ATTRIBUTE_LIST, uid, &r);
    CU_ASSERT_FATAL(item_ok(&r, 0));
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        unsigned hits = 0;
        for (unsigned j = 0; st_child(&r.items[0].payload, KG_TAG_ATTRIBUTE_NAME, j, &it); j++) {
            hits += text_is(&it, expect[i]);
        }
        if (hits != 1) {
            fprintf(stderr, "\n'%s' listed %u times\n", expect[i], hits);
        }
        /* Each name once, however many instances it has. */
        CU_ASSERT_EQUAL(hits, 1);
    }
    CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_ATTRIBUTE_NAME), sizeof(expect) / sizeof(expect[0]));
    resp_free(&r);
}

static void test_gw_locate(void)
{
    char b1[KG_UID_LEN + 1], b2[KG_UID_LEN + 1], v1[KG_UID_LEN + 1], a1[KG_UID_LEN + 1];
    char uids[16][KG_UID_LEN + 1];
    unsigned n = 0;

    NEED_HSM();
    /* The same x-Identifier on keys of three groups. */
    CU_ASSERT_EQUAL_FATAL(create_key_ex(&id_backup, KG_ALG_AES, 256, NULL, "x-Identifier", "vm-loc-1", b1), 0);
    create_key(&id_vsphere, v1);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, v1, "x-Identifier", -1, "vm-loc-1", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(create_key_ex(&id_admin, KG_ALG_AES, 128, NULL, "x-Identifier", "vm-loc-1", a1), 0);
    CU_ASSERT_EQUAL_FATAL(create_key_ex(&id_backup, KG_ALG_AES, 192, NULL, "x-Identifier", "vm-loc-2", b2), 0);

    /* backup (scope own) finds only its own key... */
    CU_ASSERT_EQUAL(locate(&id_backup, &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-loc-1" }, uids,
                           16, &n),
                    0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(uid_in(uids, n, b1));
    /* ...admin (scope all) finds all three, newest first. */
    CU_ASSERT_EQUAL(locate(&id_admin, &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-loc-1" }, uids, 16,
                           &n),
                    0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(uid_in(uids, n, b1) && uid_in(uids, n, v1) && uid_in(uids, n, a1));
    CU_ASSERT_STRING_EQUAL(uids[0], a1);
    /* Maximum Items. */
    CU_ASSERT_EQUAL(locate(&id_admin,
                           &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-loc-1", .max_items = 2 },
                           uids, 16, &n),
                    0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(uid_in(uids, n, a1) && !uid_in(uids, n, b1));
    CU_ASSERT_EQUAL(locate(&id_admin,
                           &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-loc-1", .max_items = 1 },
                           uids, 16, &n),
                    0);
    CU_ASSERT_EQUAL(n, 1);
    /* No match is Success with no UID. */
    CU_ASSERT_EQUAL(locate(&id_admin, &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-none" }, uids, 16,
                           &n),
                    0);
    CU_ASSERT_EQUAL(n, 0);
    /* By algorithm, backup sees none of the other groups' keys. */
    CU_ASSERT_EQUAL(locate(&id_backup, &(struct locate_q){ .by_alg = true }, uids, 16, &n), 0);
    CU_ASSERT(n >= 2 && n <= 16);
    CU_ASSERT(uid_in(uids, n < 16 ? n : 16, b1) && uid_in(uids, n < 16 ? n : 16, b2));
    CU_ASSERT(!uid_in(uids, n < 16 ? n : 16, v1) && !uid_in(uids, n < 16 ? n : 16, a1));
    for (unsigned i = 0; i < n && i < 16; i++) {
        /* Everything listed is the caller's: Get Attributes succeeds. */
        CU_ASSERT_EQUAL(key_state(&id_backup, uids[i]), KG_STATE_PRE_ACTIVE);
    }
    /* Two filters: both must match. */
    CU_ASSERT_EQUAL(locate(&id_admin,
                           &(struct locate_q){ .xname = "x-Identifier", .xvalue = "vm-loc-2", .by_alg = true },
                           uids, 16, &n),
                    0);
    CU_ASSERT(n == 1 && strcmp(uids[0], b2) == 0);
    /* vsphere may not Locate at all. */
    CU_ASSERT_EQUAL(locate(&id_vsphere, &(struct locate_q){ .by_alg = true }, uids, 16, &n),
                    KG_REASON_PERMISSION_DENIED);
}

static void test_gw_create_with_name_locate(void)
{
    char uid[KG_UID_LEN + 1], other[KG_UID_LEN + 1];
    char uids[4][KG_UID_LEN + 1];
    struct attr_out a;
    struct kg_ttlv_item it;
    struct resp r;
    unsigned n = 0;

    NEED_HSM();
    CU_ASSERT_EQUAL_FATAL(create_key_ex(&id_backup, KG_ALG_AES, 256, "backup-set-7", NULL, NULL, uid), 0);
    CU_ASSERT_EQUAL_FATAL(create_key_ex(&id_backup, KG_ALG_AES, 256, "backup-set-8", NULL, NULL, other), 0);
    CU_ASSERT_EQUAL(locate(&id_backup, &(struct locate_q){ .name = "backup-set-7" }, uids, 4, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(n >= 1 && strcmp(uids[0], uid) == 0);
    CU_ASSERT_EQUAL(locate(&id_admin, &(struct locate_q){ .name = "backup-set-8" }, uids, 4, &n), 0);
    CU_ASSERT(n == 1 && strcmp(uids[0], other) == 0);
    CU_ASSERT_EQUAL(locate(&id_backup, &(struct locate_q){ .name = "backup-set-9" }, uids, 4, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    /* The Name reads back as given. */
    CU_ASSERT_EQUAL(get_attr(&id_backup, uid, "Name", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(payload_attr(&r.items[0].payload, 0, &a) && a.value.type == KG_TTLV_STRUCTURE &&
              st_child(&a.value, KG_TAG_NAME_VALUE, 0, &it) && text_is(&it, "backup-set-7"));
    resp_free(&r);
}

static void test_gw_revoke_destroy(void)
{
    char k1[KG_UID_LEN + 1], k2[KG_UID_LEN + 1];
    uint8_t key[KG_P11_MAX_KEY];
    uint32_t key_len;
    struct resp r;
    unsigned n;

    NEED_HSM();
    /* Key Compromise: Pre-Active -> Compromised. */
    create_key(&id_admin, k1);
    CU_ASSERT_EQUAL(revoke_key(k1, KG_REVOKE_KEY_COMPROMISE), 0);
    CU_ASSERT_EQUAL(key_state(&id_admin, k1), KG_STATE_COMPROMISED);
    CU_ASSERT_EQUAL(get_attr(&id_admin, k1, "Compromise Date", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    /* Compromised and destroyed: Destroyed Compromised. */
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_DESTROY, k1), 0);
    CU_ASSERT_EQUAL(key_state(&id_admin, k1), KG_STATE_DESTROYED_COMPROMISED);

    /* Cessation of Operation of an Active key: Deactivated. */
    create_key(&id_admin, k2);
    /* Cessation of a Pre-Active key is not a transition. */
    CU_ASSERT_EQUAL(revoke_key(k2, KG_REVOKE_CESSATION), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_ACTIVATE, k2), 0);
    /* Destroy of an Active key: refused. */
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_DESTROY, k2), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(key_state(&id_admin, k2), KG_STATE_ACTIVE);
    CU_ASSERT_EQUAL(get_key(&id_admin, k2, 0, 0, key, &key_len), 0);
    CU_ASSERT_EQUAL(revoke_key(k2, KG_REVOKE_CESSATION), 0);
    CU_ASSERT_EQUAL(key_state(&id_admin, k2), KG_STATE_DEACTIVATED);
    CU_ASSERT_EQUAL(get_attr(&id_admin, k2, "Deactivation Date", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    CU_ASSERT_EQUAL(get_attr(&id_admin, k2, "Revocation Reason", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    /* Destroy of the Deactivated key. */
    run_op(&id_admin, KG_OP_DESTROY, k2, &r);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), k2);
    resp_free(&r);
    /* Its material is gone... */
    CU_ASSERT_EQUAL(get_key(&id_admin, k2, 0, 0, key, &key_len), KG_REASON_ITEM_NOT_FOUND);
    /* ...its metadata stays. */
    CU_ASSERT_EQUAL(key_state(&id_admin, k2), KG_STATE_DESTROYED);
    CU_ASSERT_EQUAL(get_attr(&id_admin, k2, "Destroy Date", &r, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    resp_free(&r);
    /* Destroying it again: it no longer exists as a key. */
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_DESTROY, k2), KG_REASON_ITEM_NOT_FOUND);
    /* A destroyed key's attributes are frozen. */
    CU_ASSERT_EQUAL(add_attr(&id_admin, KG_OP_ADD_ATTRIBUTE, k2, "x-Note", -1, "late", NULL),
                    KG_REASON_PERMISSION_DENIED);
    /* A UID that never existed, and one of the wrong length. */
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_GET, "00000000-0000-4000-8000-000000000000"),
                    KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_GET_ATTRIBUTES, "nope"), KG_REASON_ITEM_NOT_FOUND);
    OPENSSL_cleanse(key, sizeof(key));
}

static void test_gw_unknown_operation_continue(void)
{
    struct kg_ttlv_writer w;
    struct resp r;

    NEED_HSM();
    /* Continue: the unknown operation fails, the next item still runs. */
    b_begin(&w, &(struct hdr){ .batch_count = 2, .bec = KG_BATCH_CONTINUE });
    b_item(&w, 0x7F, bid(1));
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(2));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == 0x7F);
    CU_ASSERT(r.items[0].has_bid && memcmp(r.items[0].bid, bid(1), 8) == 0);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_OPERATION_NOT_SUPPORTED);
    CU_ASSERT(item_ok(&r, 1));
    CU_ASSERT(r.items[1].has_bid && memcmp(r.items[1].bid, bid(2), 8) == 0);
    CU_ASSERT(!r.close);
    resp_free(&r);

    /* An operation KMIP defines that this server has no entry for. */
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_CERTIFY, NULL), KG_REASON_OPERATION_NOT_SUPPORTED);
    CU_ASSERT_EQUAL(op_reason(&id_admin, 0, NULL), KG_REASON_OPERATION_NOT_SUPPORTED);
}

static void test_gw_message_extension(void)
{
    struct kg_ttlv_writer w;
    struct resp r;

    NEED_HSM();
    /* A critical extension fails its item with Feature Not Supported (KMIP
     * 1.4 section 11.1); a non-critical one is ignored. */
    b_begin(&w, &(struct hdr){ .batch_count = 3, .bec = KG_BATCH_CONTINUE });
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
    OK(kg_ttlv_end_struct(&w));
    b_extension(&w, true, false);
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(2));
    OK(kg_ttlv_end_struct(&w));
    b_extension(&w, false, false);
    OK(kg_ttlv_end_struct(&w));
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(3));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_FEATURE_NOT_SUPPORTED);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == KG_OP_DISCOVER_VERSIONS);
    CU_ASSERT(!r.items[0].has_payload);
    CU_ASSERT(item_ok(&r, 1));
    CU_ASSERT(item_ok(&r, 2));
    resp_free(&r);
}

/* The Profile Names a Query Profiles in version `v` answers, in order;
 * returns how many (at most `max`). */
static unsigned query_profiles(struct kg_version v, uint32_t *names, unsigned max)
{
    struct kg_ttlv_writer w;
    struct kg_ttlv_item info, name;
    struct resp r;
    unsigned n = 0;
    uint32_t value;

    b_begin(&w, &(struct hdr){ .major = v.major, .minor = v.minor });
    b_item(&w, KG_OP_QUERY, bid(1));
    OK(kg_ttlv_write_enum(&w, KG_TAG_QUERY_FUNCTION, KG_QUERY_PROFILES));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT(item_ok(&r, 0));
    while (n < max && st_child(&r.items[0].payload, KG_TAG_PROFILE_INFORMATION, n, &info)) {
        CU_ASSERT(st_child(&info, KG_TAG_PROFILE_NAME, 0, &name) && kg_ok(kg_ttlv_get_enum(&name, &value)));
        /* 2.x names carry their Profile Version, 1.x names never do. */
        CU_ASSERT_EQUAL(st_count(&info, KG_TAG_PROFILE_VERSION), v.major >= 2 ? 1u : 0u);
        names[n++] = value;
    }
    resp_free(&r);
    return n;
}

/* Find the token's entry for `mech`, to hide it as if the token lacked it. */
static struct kg_p11_mech_entry *token_mech(CK_MECHANISM_TYPE mech)
{
    for (uint32_t i = 0; i < KG_P11_MECH_TRACKED; i++) {
        if (env.gw.p11->mechs[i].type == mech) {
            return &env.gw.p11->mechs[i];
        }
    }
    return NULL;
}

static void test_gw_query_profiles_need_the_mechanisms(void)
{
    static const uint32_t v12[] = { 0x10, 0x11, 0x12, 0x28, 0x29, 0x2A };
    static const uint32_t v12_no_des3[] = { 0x10, 0x11, 0x12 };
    static const uint32_t v20[] = { 0x115, 0x125, 0x127 };
    static const uint32_t v20_no_kw[] = { 0x115, 0x127 };
    struct kg_p11_mech_entry *des3, *kw;
    uint32_t names[32];
    unsigned n;

    NEED_HSM();
    des3 = token_mech(CKM_DES3_KEY_GEN);
    kw = token_mech(CKM_AES_KEY_WRAP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(des3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kw);
    CU_ASSERT_FATAL(des3->present && kw->present); /* SoftHSM has both */
    n = query_profiles((struct kg_version){ 1, 2 }, names, 32);
    CU_ASSERT(n == 6 && memcmp(names, v12, sizeof(v12)) == 0);
    n = query_profiles((struct kg_version){ 2, 0 }, names, 32);
    CU_ASSERT(n == 3 && memcmp(names, v20, sizeof(v20)) == 0);
    /* Without Triple DES the 1.0 to 1.2 Foundry cases cannot pass; without
     * AES Key Wrap the AES XTS ones cannot: not claimed. */
    des3->present = false;
    kw->present = false;
    n = query_profiles((struct kg_version){ 1, 2 }, names, 32);
    CU_ASSERT(n == 3 && memcmp(names, v12_no_des3, sizeof(v12_no_des3)) == 0);
    n = query_profiles((struct kg_version){ 2, 0 }, names, 32);
    CU_ASSERT(n == 2 && memcmp(names, v20_no_kw, sizeof(v20_no_kw)) == 0);
    des3->present = true;
    kw->present = true;
}

static void test_gw_versions(void)
{
    static const struct kg_version asked[] = { { 1, 0 }, { 1, 2 }, { 1, 4 } };
    struct kg_ttlv_writer w;
    struct resp r;
    size_t table_ops = 0;

    NEED_HSM();
    for (uint32_t op = 1; op <= KG_OP_MAX; op++) {
        /* Interop is listed only on a test bench (testing.interop), Set
         * Attribute only to KMIP 2.x clients (these ask in 1.x). */
        table_ops += kg_ops_lookup(op) != NULL && op != KG_OP_INTEROP && op != KG_OP_SET_ATTRIBUTE;
    }
    /* Answered in the request's version. */
    for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
        b_begin(&w, &(struct hdr){ .major = asked[i].major, .minor = asked[i].minor });
        b_item(&w, KG_OP_QUERY, bid(1));
        OK(kg_ttlv_write_enum(&w, KG_TAG_QUERY_FUNCTION, KG_QUERY_OPERATIONS));
        b_item_end(&w);
        b_end(&w);
        run_as(&id_vsphere, &w, &r);
        CU_ASSERT(r.major == asked[i].major && r.minor == asked[i].minor);
        CU_ASSERT(item_ok(&r, 0));
        /* Query Operations lists exactly what the table holds, but Interop
         * and Set Attribute. */
        CU_ASSERT(table_ops >= 14);
        CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_OPERATION), table_ops);
        resp_free(&r);
    }
    /* A newer 1.x minor version is processed normally (KMIP 1.4 section
     * 11.1: same major version). */
    b_begin(&w, &(struct hdr){ .major = 1, .minor = 5 });
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT_EQUAL(r.major, 1);
    resp_free(&r);
    /* Discover Versions with a list answers the ones we share, ours first,
     * none newer than the request: asked in 1.1, 2.0 and 1.3 are left out. */
    for (int pass = 0; pass < 2; pass++) {
        b_begin(&w, pass == 0 ? NULL : &(struct hdr){ .major = 2, .minor = 1 });
        b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
        b_version(&w, 2, 0);
        b_version(&w, 1, 1);
        b_version(&w, 1, 3);
        b_item_end(&w);
        b_end(&w);
        run_as(&id_vsphere, &w, &r);
        CU_ASSERT_FATAL(item_ok(&r, 0));
        if (pass == 0) {
            CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION), 1);
            resp_free(&r);
        }
    }
    CU_ASSERT_EQUAL(st_count(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION), 3);
    {
        struct kg_ttlv_item v, major, minor;
        CU_ASSERT(st_child(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION, 0, &v) &&
                  st_child(&v, KG_TAG_PROTOCOL_VERSION_MAJOR, 0, &major) && int_of(&major) == 2 &&
                  st_child(&v, KG_TAG_PROTOCOL_VERSION_MINOR, 0, &minor) && int_of(&minor) == 0);
        CU_ASSERT(st_child(&r.items[0].payload, KG_TAG_PROTOCOL_VERSION, 1, &v) &&
                  st_child(&v, KG_TAG_PROTOCOL_VERSION_MINOR, 0, &minor) && int_of(&minor) == 3);
    }
    resp_free(&r);
}

static void test_gw_stop_on_failure(void)
{
    struct kg_ttlv_writer w;
    struct resp r;

    NEED_HSM();
    /* Default (Stop): nothing after the failure runs, and the response's
     * Batch Count is the number of items processed. */
    b_begin(&w, &(struct hdr){ .batch_count = 3 });
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
    b_item_end(&w);
    b_item(&w, 0x7F, bid(2));
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(3));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL(r.batch_count, 2);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT_EQUAL(item_reason(&r, 1), KG_REASON_OPERATION_NOT_SUPPORTED);
    resp_free(&r);

    /* Explicit Stop, failing first. */
    b_begin(&w, &(struct hdr){ .batch_count = 2, .bec = KG_BATCH_STOP });
    b_item(&w, 0x7F, bid(1));
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(2));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL(r.batch_count, 1);
    CU_ASSERT_EQUAL(r.n, 1);
    resp_free(&r);

    /* Undo, failing first: nothing before it to undo, nothing after it runs. */
    b_begin(&w, &(struct hdr){ .batch_count = 2, .bec = KG_BATCH_UNDO });
    b_item(&w, 0x7F, bid(1));
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(2));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL(r.n, 1);
    resp_free(&r);
}

/* Batch Error Continuation Option Undo (KMIP 1.4 section 6.7): the items
 * before a failed one are rolled back and answered Operation Undone, with
 * their payloads; the items after it are not run. */
static void test_gw_batch_undo(void)
{
    struct kg_ttlv_writer w;
    struct resp r;
    char uid[KG_UID_LEN + 1], made[KG_UID_LEN + 1];

    NEED_HSM();
    create_key(&id_admin, uid);
    /* Activate, Create, then a Destroy of an Active key (Wrong Key Lifecycle
     * State), then one that never runs. */
    b_begin(&w, &(struct hdr){ .batch_count = 4, .bec = KG_BATCH_UNDO });
    b_item(&w, KG_OP_ACTIVATE, bid(1));
    p_uid(&w, uid);
    b_item_end(&w);
    b_item(&w, KG_OP_CREATE, bid(2));
    p_create_begin(&w, KG_ALG_AES, 256, KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT);
    p_create_end(&w);
    b_item_end(&w);
    b_item(&w, KG_OP_DESTROY, bid(3));
    p_uid(&w, uid);
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(4));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT_EQUAL(r.batch_count, 3);
    CU_ASSERT_EQUAL(r.items[0].status, KG_STATUS_UNDONE);
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 0), uid);
    CU_ASSERT_EQUAL(r.items[1].status, KG_STATUS_UNDONE);
    snprintf(made, sizeof(made), "%s", item_uid(&r, 1));
    CU_ASSERT_EQUAL(strlen(made), KG_UID_LEN);
    CU_ASSERT_EQUAL(r.items[2].status, KG_STATUS_FAILED);
    CU_ASSERT_EQUAL(item_reason(&r, 2), KG_REASON_PERMISSION_DENIED);
    resp_free(&r);
    /* Rolled back: the Activate (its state) and the Create (its key). */
    CU_ASSERT_EQUAL(key_state(&id_admin, uid), KG_STATE_PRE_ACTIVE);
    CU_ASSERT_EQUAL(op_reason(&id_admin, KG_OP_GET_ATTRIBUTES, made), KG_REASON_ITEM_NOT_FOUND);

    /* Without a failure every item happens, and each sees the ones before
     * it (they read through the batch's change): Destroy of the key made
     * Active one item earlier is refused only because it is now Active. */
    b_begin(&w, &(struct hdr){ .batch_count = 2, .bec = KG_BATCH_UNDO });
    b_item(&w, KG_OP_ACTIVATE, bid(1));
    p_uid(&w, uid);
    b_item_end(&w);
    b_item(&w, KG_OP_GET_ATTRIBUTES, bid(2));
    p_uid(&w, uid);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 2);
    CU_ASSERT(item_ok(&r, 0));
    CU_ASSERT(item_ok(&r, 1));
    resp_free(&r);
    CU_ASSERT_EQUAL(key_state(&id_admin, uid), KG_STATE_ACTIVE);

    /* A longer batch with Undo would hold every other write back: each of
     * its items is refused, none runs. */
    b_begin(&w, &(struct hdr){ .batch_count = 33, .bec = KG_BATCH_UNDO });
    for (int i = 0; i < 33; i++) {
        b_item(&w, KG_OP_DISCOVER_VERSIONS, NULL);
        b_item_end(&w);
    }
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 33);
    for (unsigned i = 0; i < 33; i++) {
        CU_ASSERT_EQUAL(item_reason(&r, i), KG_REASON_FEATURE_NOT_SUPPORTED);
    }
    resp_free(&r);
}

static void test_gw_identity_denied(void)
{
    char uid[KG_UID_LEN + 1];

    NEED_HSM();
    create_key(&id_vsphere, uid);
    /* An OU no group names, no OU at all, OUs of two groups: denied, and
     * told nothing about any key. */
    CU_ASSERT_EQUAL(op_reason(&id_unlisted, KG_OP_DISCOVER_VERSIONS, NULL), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(create_key_ex(&id_unlisted, KG_ALG_AES, 256, NULL, NULL, NULL, NULL),
                    KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_unlisted, KG_OP_GET, uid), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_no_ou, KG_OP_DISCOVER_VERSIONS, NULL), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_no_ou, KG_OP_GET_ATTRIBUTES, uid), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(create_key_ex(&id_no_ou, KG_ALG_AES, 256, NULL, NULL, NULL, NULL), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_two, KG_OP_DISCOVER_VERSIONS, NULL), KG_REASON_PERMISSION_DENIED);
    /* An operation outside the group's list. */
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_DESTROY, uid), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_REVOKE, uid), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_PRE_ACTIVE);
}

static void test_gw_scope(void)
{
    char admin_key[KG_UID_LEN + 1], backup_key[KG_UID_LEN + 1], vs_key[KG_UID_LEN + 1];
    uint8_t key[KG_P11_MAX_KEY];
    uint32_t key_len;

    NEED_HSM();
    create_key(&id_admin, admin_key);
    create_key(&id_backup, backup_key);
    create_key(&id_vsphere, vs_key);
    /* Another group's key is indistinguishable from no key. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, admin_key, 0, 0, key, &key_len), KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_GET_ATTRIBUTES, admin_key), KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_ACTIVATE, admin_key), KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, backup_key, "x-Name", -1, "mine", NULL),
                    KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(op_reason(&id_backup, KG_OP_GET_ATTRIBUTES, vs_key), KG_REASON_ITEM_NOT_FOUND);
    CU_ASSERT_EQUAL(key_state(&id_admin, admin_key), KG_STATE_PRE_ACTIVE);
    /* admin reaches every group's key. */
    CU_ASSERT_EQUAL(key_state(&id_admin, vs_key), KG_STATE_PRE_ACTIVE);
    CU_ASSERT_EQUAL(key_state(&id_admin, backup_key), KG_STATE_PRE_ACTIVE);

    /* backup's export mode is wrapped: a plain Get of its own key is
     * refused, though it may read the metadata. */
    CU_ASSERT_EQUAL(get_key(&id_backup, backup_key, 0, 0, key, &key_len), KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(key_len, 0);
    CU_ASSERT_EQUAL(key_state(&id_backup, backup_key), KG_STATE_PRE_ACTIVE);
    CU_ASSERT_EQUAL(op_reason(&id_backup, KG_OP_ACTIVATE, backup_key), 0);
    OPENSSL_cleanse(key, sizeof(key));
}

static void test_gw_id_placeholder(void)
{
    struct kg_ttlv_writer w;
    struct resp r;
    char uid[KG_UID_LEN + 1];

    NEED_HSM();
    /* Create, then Activate and Get Attributes without a UID. */
    b_begin(&w, &(struct hdr){ .batch_count = 3 });
    b_item(&w, KG_OP_CREATE, bid(1));
    p_create_begin(&w, KG_ALG_AES, 256, KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT);
    p_create_end(&w);
    b_item_end(&w);
    b_item(&w, KG_OP_ACTIVATE, bid(2));
    b_item_end(&w);
    b_item(&w, KG_OP_GET_ATTRIBUTES, bid(3));
    OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "State", 5));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT(item_ok(&r, 0) && item_ok(&r, 1) && item_ok(&r, 2));
    snprintf(uid, sizeof(uid), "%s", item_uid(&r, 0));
    CU_ASSERT_EQUAL(strlen(uid), KG_UID_LEN);
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 1), uid);
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 2), uid);
    resp_free(&r);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_ACTIVE);

    /* No placeholder in a new message: the UID is missing. */
    CU_ASSERT_EQUAL(op_reason(&id_vsphere, KG_OP_ACTIVATE, NULL), KG_REASON_MISSING_DATA);
}

static void test_gw_id_placeholder_not_replaced(void)
{
    struct kg_ttlv_writer w;
    struct resp r;
    char other[KG_UID_LEN + 1], uid[KG_UID_LEN + 1];

    NEED_HSM();
    /* Only Create, Register, Locate, ... set the ID Placeholder (KMIP 1.4
     * section 4): reading another key's State in between must not redirect
     * the following Activate to that key. */
    create_key(&id_vsphere, other);
    b_begin(&w, &(struct hdr){ .batch_count = 3 });
    b_item(&w, KG_OP_CREATE, bid(1));
    p_create_begin(&w, KG_ALG_AES, 256, KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT);
    p_create_end(&w);
    b_item_end(&w);
    b_item(&w, KG_OP_GET_ATTRIBUTES, bid(2));
    p_uid(&w, other);
    OK(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_NAME, "State", 5));
    b_item_end(&w);
    b_item(&w, KG_OP_ACTIVATE, bid(3));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    CU_ASSERT(item_ok(&r, 0) && item_ok(&r, 1) && item_ok(&r, 2));
    snprintf(uid, sizeof(uid), "%s", item_uid(&r, 0));
    CU_ASSERT_STRING_EQUAL(item_uid(&r, 2), uid);
    resp_free(&r);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_ACTIVE);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, other), KG_STATE_PRE_ACTIVE);
}

static void test_gw_response_too_large(void)
{
    char uid[KG_UID_LEN + 1];
    uint8_t key[KG_P11_MAX_KEY];
    uint32_t key_len = 0;
    struct kg_ttlv_writer w;
    struct resp r;

    NEED_HSM();
    create_key(&id_vsphere, uid);
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, 0, 0, key, &key_len), 0);
    CU_ASSERT_EQUAL_FATAL(key_len, 32);
    /* Too small for the Get's answer. */
    b_begin(&w, &(struct hdr){ .has_max_resp = true, .max_resp = 100 });
    b_item(&w, KG_OP_GET, bid(1));
    p_uid(&w, uid);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_RESPONSE_TOO_LARGE);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == KG_OP_GET);
    CU_ASSERT(!r.items[0].has_payload);
    CU_ASSERT(!r.close);
    /* The key bytes that did not fit are nowhere in the answer. */
    CU_ASSERT_PTR_NULL(memmem(r.buf, r.len, key, key_len));
    resp_free(&r);
    /* Large enough: the key. */
    CU_ASSERT_EQUAL(get_key(&id_vsphere, uid, 0, 4096, key, &key_len), 0);
    OPENSSL_cleanse(key, sizeof(key));
}

static void test_gw_create_errors(void)
{
    struct kg_ttlv_writer w;
    struct resp r;

    NEED_HSM();
    /* 100 bits is no AES key length. */
    CU_ASSERT_EQUAL(create_key_ex(&id_vsphere, KG_ALG_AES, 100, NULL, NULL, NULL, NULL), KG_REASON_INVALID_FIELD);
    CU_ASSERT_EQUAL(create_key_ex(&id_vsphere, KG_ALG_AES, 0, NULL, NULL, NULL, NULL), KG_REASON_INVALID_FIELD);
    CU_ASSERT_EQUAL(create_key_ex(&id_vsphere, KG_ALG_AES, -256, NULL, NULL, NULL, NULL), KG_REASON_INVALID_FIELD);
    /* Other algorithms: the policy's create rules (default: AES only) deny
     * them before the handler would find them unsupported. */
    CU_ASSERT_EQUAL(create_key_ex(&id_vsphere, KG_ALG_3DES, 168, NULL, NULL, NULL, NULL),
                    KG_REASON_PERMISSION_DENIED);
    CU_ASSERT_EQUAL(create_key_ex(&id_admin, KG_ALG_HMAC_SHA256, 256, NULL, NULL, NULL, NULL),
                    KG_REASON_PERMISSION_DENIED);
    /* A server-set attribute in the template. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_CREATE, bid(1));
    p_create_begin(&w, KG_ALG_AES, 256, 12);
    p_attr_begin(&w, "Initial Date", -1);
    OK(kg_ttlv_write_datetime(&w, KG_TAG_ATTRIBUTE_VALUE, 1000));
    OK(kg_ttlv_end_struct(&w));
    p_create_end(&w);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_PERMISSION_DENIED);
    resp_free(&r);
    /* Without a length. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_CREATE, bid(1));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    OK(kg_ttlv_begin_struct(&w, KG_TAG_TEMPLATE_ATTRIBUTE));
    p_attr_enum(&w, "Cryptographic Algorithm", KG_ALG_AES);
    OK(kg_ttlv_end_struct(&w));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_MISSING_DATA);
    resp_free(&r);
    /* Not a symmetric key. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_CREATE, bid(1));
    OK(kg_ttlv_write_enum(&w, KG_TAG_OBJECT_TYPE, KG_OBJ_SECRET_DATA));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_admin, &w, &r);
    CU_ASSERT_EQUAL(r.items[0].status, KG_STATUS_FAILED);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_PERMISSION_DENIED); /* create.object_types */
    resp_free(&r);
}

/* A stored Activation Date that is not a Date-Time (written behind the
 * gateway's back) fails the operation as the store's fault: General
 * Failure, connection kept, never a state guessed from it. */
static void test_gw_unreadable_date_row(void)
{
    struct resp r;
    struct kg_ttlv_writer v;
    char uid[KG_UID_LEN + 1];
    int32_t index;

    NEED_HSM();
    create_key(&id_vsphere, uid);
    run_op(&id_vsphere, KG_OP_ACTIVATE, uid, &r);
    CU_ASSERT(item_ok(&r, 0));
    resp_free(&r);
    OK(kg_ttlv_writer_init(&v, 64, false));
    OK(kg_ttlv_write_text(&v, KG_TAG_ATTRIBUTE_VALUE, "soon", 4));
    OK(kg_store_delete_attr_all(env.store, uid, "Deactivation Date"));
    OK(kg_store_add_attr(env.store, uid, "Deactivation Date", v.buf, v.len, &index));
    kg_ttlv_writer_cleanup(&v);
    run_op(&id_vsphere, KG_OP_GET, uid, &r);
    CU_ASSERT(!item_ok(&r, 0));
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_GENERAL_FAILURE);
    CU_ASSERT(!r.close);
    resp_free(&r);
}

static void test_gw_attribute_rules(void)
{
    struct kg_ttlv_writer w;
    struct resp r;
    char uid[KG_UID_LEN + 1];

    NEED_HSM();
    create_key(&id_vsphere, uid);
    /* Initial Date is the server's. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_ADD_ATTRIBUTE, bid(1));
    p_uid(&w, uid);
    p_attr_begin(&w, "Initial Date", -1);
    OK(kg_ttlv_write_datetime(&w, KG_TAG_ATTRIBUTE_VALUE, 1000));
    OK(kg_ttlv_end_struct(&w));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_PERMISSION_DENIED);
    resp_free(&r);
    /* So are y- names, and State (derived). */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "y-Server", -1, "x", NULL),
                    KG_REASON_PERMISSION_DENIED);
    b_begin(&w, NULL);
    b_item(&w, KG_OP_ADD_ATTRIBUTE, bid(1));
    p_uid(&w, uid);
    p_attr_enum(&w, "State", KG_STATE_ACTIVE);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_PERMISSION_DENIED);
    resp_free(&r);
    CU_ASSERT_EQUAL(key_state(&id_vsphere, uid), KG_STATE_PRE_ACTIVE);
    /* An unknown standard-looking name, and a value of the wrong type. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "Colour", -1, "red", NULL),
                    KG_REASON_INVALID_FIELD);
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "Contact Information", -1, "ops", NULL), 0);
    /* Single-valued and already set. */
    CU_ASSERT_EQUAL(add_attr(&id_vsphere, KG_OP_ADD_ATTRIBUTE, uid, "Contact Information", -1, "sec", NULL),
                    KG_REASON_INVALID_FIELD);
    /* Non-text custom attributes are kept as given. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_ADD_ATTRIBUTE, bid(1));
    p_uid(&w, uid);
    p_attr_int(&w, "x-Count", 7);
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT(item_ok(&r, 0));
    resp_free(&r);
    {
        struct attr_out a;
        unsigned n;
        CU_ASSERT_EQUAL(get_attr(&id_vsphere, uid, "x-Count", &r, &n), 0);
        CU_ASSERT(n == 1 && payload_attr(&r.items[0].payload, 0, &a) && int_of(&a.value) == 7);
        resp_free(&r);
    }
    /* Add Attribute without a value. */
    b_begin(&w, NULL);
    b_item(&w, KG_OP_ADD_ATTRIBUTE, bid(1));
    p_uid(&w, uid);
    p_attr_begin(&w, "x-Empty", -1);
    OK(kg_ttlv_end_struct(&w));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_MISSING_DATA);
    resp_free(&r);
}

static void test_gw_undecodable(void)
{
    struct kg_ttlv_writer w, out;
    struct resp r;
    bool close = false;
    uint64_t before;

    NEED_HSM();
    /* 3.0: answered in 1.1, Invalid Message, connection kept. */
    before = audit_lines();
    b_begin(&w, &(struct hdr){ .major = 3, .minor = 0 });
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
    b_item_end(&w);
    b_end(&w);
    OK(kg_ttlv_writer_init(&out, 65536, true));
    OK(kg_gateway_process(&env.gw, env.store, &id_vsphere, 1, w.buf, w.len, &out, &close));
    resp_take(&r, &out);
    CU_ASSERT(r.major == 1 && r.minor == 1);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_INVALID_MESSAGE);
    CU_ASSERT(!close);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&out);
    kg_ttlv_writer_cleanup(&w);

    /* Broken second item: first item's Operation and id echoed; close. */
    b_begin(&w, &(struct hdr){ .batch_count = 2 });
    b_item(&w, KG_OP_GET, bid(5));
    b_item_end(&w);
    OK(kg_ttlv_begin_struct(&w, KG_TAG_BATCH_ITEM));
    OK(kg_ttlv_write_bytes(&w, KG_TAG_UNIQUE_BATCH_ITEM_ID, bid(6), 8));
    OK(kg_ttlv_end_struct(&w));
    b_end(&w);
    OK(kg_ttlv_writer_init(&out, 65536, true));
    OK(kg_gateway_process(&env.gw, env.store, &id_vsphere, 1, w.buf, w.len, &out, &close));
    resp_take(&r, &out);
    CU_ASSERT_EQUAL_FATAL(r.n, 1);
    CU_ASSERT(r.items[0].has_op && r.items[0].op == KG_OP_GET);
    CU_ASSERT(r.items[0].has_bid && memcmp(r.items[0].bid, bid(5), 8) == 0);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_INVALID_MESSAGE);
    CU_ASSERT(close);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&out);
    kg_ttlv_writer_cleanup(&w);

    /* More items than the configured max_batch_items. */
    b_begin(&w, &(struct hdr){ .batch_count = 65 });
    for (unsigned i = 0; i < 65; i++) {
        b_item(&w, KG_OP_DISCOVER_VERSIONS, NULL);
        b_item_end(&w);
    }
    b_end(&w);
    OK(kg_ttlv_writer_init(&out, 65536, true));
    OK(kg_gateway_process(&env.gw, env.store, &id_admin, 1, w.buf, w.len, &out, &close));
    resp_take(&r, &out);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_EQUAL(item_reason(&r, 0), KG_REASON_INVALID_MESSAGE);
    CU_ASSERT(close);
    resp_free(&r);
    kg_ttlv_writer_cleanup(&out);
    kg_ttlv_writer_cleanup(&w);
    /* Nothing ran: nothing was audited as an operation. */
    CU_ASSERT_EQUAL(audit_lines(), before);
}

/* Hex of b in lower or upper case. */
static void hex_of(const uint8_t *b, uint32_t n, bool upper, char *out)
{
    static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
    const char *d = upper ? up : lo;

    for (uint32_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}


static void test_gw_response_fills_writer(void)
{
    struct kg_ttlv_writer w, out;
    struct resp r;
    bool close = false;
    uint64_t before;

    NEED_HSM();
    /* Ten Discover Versions answers (~104 bytes each) into output writers
     * too small for them all, at every size: the answer is always a whole
     * message whose Batch Count is the number of items it holds, each a
     * success or Response Too Large. */
    for (uint32_t max = KG_MSG_RESPONSE_HEADER_LEN + 8; max <= 1400; max += 8) {
        b_begin(&w, &(struct hdr){ .batch_count = 10, .bec = KG_BATCH_CONTINUE });
        for (unsigned i = 0; i < 10; i++) {
            b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(i));
            b_item_end(&w);
        }
        b_end(&w);
        OK(kg_ttlv_writer_init(&out, max, true));
        before = audit_lines();
        OK(kg_gateway_process(&env.gw, env.store, &id_admin, 1, w.buf, w.len, &out, &close));
        /* Every item that ran is audited, answered or not. */
        env.items_reported += audit_lines() - before;
        CU_ASSERT(out.len <= max);
        resp_take(&r, &out);
        CU_ASSERT(r.parsed);
        CU_ASSERT_EQUAL(r.batch_count, (int32_t)r.n);
        CU_ASSERT(r.n <= 10);
        for (unsigned i = 0; i < r.n; i++) {
            CU_ASSERT(item_ok(&r, i) || item_reason(&r, i) == KG_REASON_RESPONSE_TOO_LARGE);
            CU_ASSERT(r.items[i].has_bid && memcmp(r.items[i].bid, bid(i), 8) == 0);
        }
        CU_ASSERT(!close);
        resp_free(&r);
        kg_ttlv_writer_cleanup(&out);
        kg_ttlv_writer_cleanup(&w);
    }
}

static void test_gw_audit_log(void)
{
    struct kg_ttlv_writer w;
    struct resp r;
    char *text;
    size_t len, lines = 0;
    char hex[2 * KG_P11_MAX_KEY + 1];

    NEED_HSM();
    /* A batch of four: four records, in order. */
    b_begin(&w, &(struct hdr){ .batch_count = 4, .bec = KG_BATCH_CONTINUE, .auth = true });
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(1));
    b_item_end(&w);
    b_item(&w, KG_OP_QUERY, bid(2));
    b_item_end(&w);
    b_item(&w, 0x7F, bid(3));
    b_item_end(&w);
    b_item(&w, KG_OP_DISCOVER_VERSIONS, bid(4));
    b_item_end(&w);
    b_end(&w);
    run_as(&id_vsphere, &w, &r);
    CU_ASSERT_EQUAL(r.n, 4);
    resp_free(&r);

    text = audit_text(&len);
    CU_ASSERT_FATAL(text != NULL);
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    /* Exactly one line per batch item any response reported. */
    CU_ASSERT_EQUAL(lines, env.items_reported);
    CU_ASSERT(len > 0 && text[len - 1] == '\n');
    CU_ASSERT(strstr(text, "\"operation\":\"unknown(0x7F)\"") != NULL);
    CU_ASSERT(strstr(text, "\"group\":\"vsphere\"") != NULL);
    CU_ASSERT(strstr(text, "\"cn\":\"stranger\"") != NULL);
    CU_ASSERT(strstr(text, "plaintext export") != NULL);
    /* Never the credential's password. */
    CU_ASSERT_PTR_NULL(strstr(text, "password"));
    /* Never a key: hex either case, or raw. */
    CU_ASSERT(env.key_count >= 5);
    for (uint32_t k = 0; k < env.key_count; k++) {
        hex_of(env.keys[k], env.key_lens[k], false, hex);
        CU_ASSERT_PTR_NULL(strstr(text, hex));
        hex_of(env.keys[k], env.key_lens[k], true, hex);
        CU_ASSERT_PTR_NULL(strstr(text, hex));
        CU_ASSERT_PTR_NULL(memmem(text, len, env.keys[k], env.key_lens[k]));
        /* A half-key in hex is still too much. */
        hex_of(env.keys[k], env.key_lens[k] / 2, false, hex);
        CU_ASSERT_PTR_NULL(strstr(text, hex));
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    free(text);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_decode_vcenter_batch),
        KG_TEST(test_decode_header_options),
        KG_TEST(test_decode_header_errors),
        KG_TEST(test_decode_bad_bec_zero),
        KG_TEST(test_decode_credential_errors),
        KG_TEST(test_decode_credential_other_type),
        KG_TEST(test_decode_credential_device),
        KG_TEST(test_decode_item_errors),
        KG_TEST(test_decode_batch_limits),
        KG_TEST(test_decode_trailing_and_framing),
        KG_TEST(test_decode_unsupported_version),
        KG_TEST(test_decode_partial_first_item),
        KG_TEST(test_write_decode_failure),
        KG_TEST(test_write_decode_failure_from_decoder),
        KG_TEST(test_write_response_and_failed_item),
        KG_TEST(test_reason_mapping),
        KG_TEST(test_error_closes),
        /* Part B: order matters only for the last one. */
        KG_TEST(test_gw_vcenter_sequence),
        KG_TEST(test_gw_register_get),
        KG_TEST(test_gw_modify_delete_index),
        KG_TEST(test_gw_get_attribute_list),
        KG_TEST(test_gw_locate),
        KG_TEST(test_gw_create_with_name_locate),
        KG_TEST(test_gw_revoke_destroy),
        KG_TEST(test_gw_unknown_operation_continue),
        KG_TEST(test_gw_message_extension),
        KG_TEST(test_gw_versions),
        KG_TEST(test_gw_query_profiles_need_the_mechanisms),
        KG_TEST(test_gw_stop_on_failure),
        KG_TEST(test_gw_identity_denied),
        KG_TEST(test_gw_batch_undo),
        KG_TEST(test_gw_scope),
        KG_TEST(test_gw_id_placeholder),
        KG_TEST(test_gw_id_placeholder_not_replaced),
        KG_TEST(test_gw_response_too_large),
        KG_TEST(test_gw_create_errors),
        KG_TEST(test_gw_attribute_rules),
        KG_TEST(test_gw_unreadable_date_row),
        KG_TEST(test_gw_undecodable),
        KG_TEST(test_gw_response_fills_writer),
        KG_TEST(test_gw_audit_log),
    };
    int failed = kg_test_run("msg", cases, sizeof(cases) / sizeof(cases[0]));

    free(dreq);
    env_teardown();
    return failed;
}
