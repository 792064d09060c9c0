/*
 * kg_ttlv.h - bounded TTLV reader and writer (KMIP 1.4 section 9.1).
 *
 * Reader: a cursor over borrowed bytes. Every Structure is read through a
 * child reader limited to the Structure's declared length; the parent skips
 * the whole length at once, and the child must be consumed exactly
 * (kg_ttlv_reader_finish) or the input is rejected. Lengths are uint32_t and
 * checked as `len - pos >= n` against the bytes remaining before any use.
 * Padding bytes must be zero. Nesting depth and the total item count of one
 * message are capped by the limits the top-level reader was created with.
 *
 * Items borrow: a kg_ttlv_item points into the reader's buffer and is valid
 * only while that buffer lives. Nothing here allocates when reading.
 *
 * Writer: a growable buffer with a hard cap. Structures reserve their length,
 * children are written, kg_ttlv_end_struct backfills the length. A writer
 * created with `secret` true keeps its bytes in kg_secret (locked) memory;
 * every writer's buffer is cleansed when freed.
 */
#ifndef KG_TTLV_H
#define KG_TTLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_result.h"
#include "kg_secret.h"

enum kg_ttlv_type {
    KG_TTLV_STRUCTURE = 0x01,
    KG_TTLV_INTEGER = 0x02,
    KG_TTLV_LONG_INTEGER = 0x03,
    KG_TTLV_BIG_INTEGER = 0x04,
    KG_TTLV_ENUMERATION = 0x05,
    KG_TTLV_BOOLEAN = 0x06,
    KG_TTLV_TEXT_STRING = 0x07,
    KG_TTLV_BYTE_STRING = 0x08,
    KG_TTLV_DATE_TIME = 0x09,
    KG_TTLV_INTERVAL = 0x0A,
    KG_TTLV_DATE_TIME_EXTENDED = 0x0B, /* KMIP 2.x */
};

#define KG_TTLV_HEADER_LEN 8u

/* For kg_ttlv_read_expect / _optional: accept any type with that tag. */
#define KG_TTLV_ANY_TYPE 0u

struct kg_ttlv_limits {
    uint32_t max_message_len; /* whole message, header included */
    uint32_t max_depth;       /* Structure nesting; top-level message is depth 1 */
    uint32_t max_items;       /* items in one message, all levels */
};

/* Defaults: 64 KiB, depth 16, 4096 items. */
extern const struct kg_ttlv_limits kg_ttlv_default_limits;

/* Shared by a top-level reader and all its children. */
struct kg_ttlv_budget {
    struct kg_ttlv_limits limits;
    uint32_t items_read;
};

struct kg_ttlv_reader {
    const uint8_t *data; /* borrowed */
    uint32_t len;
    uint32_t pos;
    uint32_t depth;
    struct kg_ttlv_budget *budget; /* borrowed; shared with children */
};

struct kg_ttlv_item {
    uint32_t tag;         /* 24-bit tag, 0x42xxxx */
    uint8_t type;         /* enum kg_ttlv_type */
    uint32_t len;         /* declared value length (unpadded) */
    const uint8_t *value; /* borrowed; `len` bytes */
    const uint8_t *raw;   /* borrowed; the whole encoded item: header, value, padding */
    uint32_t raw_len;
};

/*
 * Set `budget` to `limits` (kg_ttlv_default_limits when NULL) with no items
 * read. The budget is caller storage and owns nothing.
 */
void kg_ttlv_budget_init(struct kg_ttlv_budget *budget, const struct kg_ttlv_limits *limits);

/*
 * Start reading `len` bytes at `data` with `budget` (caller-owned, items_read
 * reset to 0 by this call). Fails with KG_ERR_TTLV_TOO_LONG if len exceeds
 * budget->limits.max_message_len.
 */
kg_result kg_ttlv_reader_init(struct kg_ttlv_reader *r, const uint8_t *data, uint32_t len,
                              struct kg_ttlv_budget *budget) KG_WARN_UNUSED;

/* True when all bytes of this reader have been consumed. */
bool kg_ttlv_reader_done(const struct kg_ttlv_reader *r);

/* Fail with KG_ERR_TTLV_TRAILING unless the reader is consumed exactly. */
kg_result kg_ttlv_reader_finish(const struct kg_ttlv_reader *r) KG_WARN_UNUSED;

/* Debug invariant check: pos <= len, data non-NULL when len > 0. */
kg_result kg_ttlv_reader_validate(const struct kg_ttlv_reader *r) KG_WARN_UNUSED;

/*
 * Read the next item: header, value and padding. Checks: 8 header bytes
 * present; tag's first byte 0x42 (standard) or 0x54 (extension), else
 * KG_ERR_TTLV_BAD_TAG; type known; fixed-length types have their fixed length
 * and Structure / Big Integer lengths are multiples of 8 (KMIP 1.4 Table
 * 287), else KG_ERR_TTLV_BAD_LENGTH; Boolean is 0 or 1; the value and its
 * padding to 8 bytes fit in what remains; padding bytes are zero; item
 * budget not exhausted. A Structure's value is not parsed here: use
 * kg_ttlv_child. On failure nothing is consumed and *out is zeroed.
 */
kg_result kg_ttlv_read(struct kg_ttlv_reader *r, struct kg_ttlv_item *out) KG_WARN_UNUSED;

/* Tag of the next item without consuming it; fails when none is left. */
kg_result kg_ttlv_peek_tag(const struct kg_ttlv_reader *r, uint32_t *out_tag) KG_WARN_UNUSED;

/* Like kg_ttlv_read but requires `tag` and `type` (KG_ERR_TTLV_UNEXPECTED). */
kg_result kg_ttlv_read_expect(struct kg_ttlv_reader *r, uint32_t tag, uint8_t type,
                              struct kg_ttlv_item *out) KG_WARN_UNUSED;

/*
 * If the next item has `tag`, read it (requiring `type`) and set *present;
 * otherwise consume nothing and clear *present. Ending is not an error.
 */
kg_result kg_ttlv_read_optional(struct kg_ttlv_reader *r, uint32_t tag, uint8_t type,
                                struct kg_ttlv_item *out, bool *present) KG_WARN_UNUSED;

/*
 * A child reader over the value of Structure `item`, one level deeper. Fails
 * with KG_ERR_TTLV_TOO_DEEP past max_depth, KG_ERR_TTLV_BAD_TYPE if item is
 * not a Structure. The child shares the parent's budget.
 */
kg_result kg_ttlv_child(const struct kg_ttlv_reader *parent, const struct kg_ttlv_item *item,
                        struct kg_ttlv_reader *child) KG_WARN_UNUSED;

/*
 * Walk every item of a complete message recursively, validating everything
 * kg_ttlv_read checks at every level. Used to reject a malformed message
 * before any of it is interpreted.
 * On success the reader is consumed and the budget's items_read is put back
 * to its value on entry (max_items was enforced during the walk), so the
 * same bytes can then be decoded with a fresh reader on the same budget.
 * On failure the reader is left part-way and must not be used further.
 */
kg_result kg_ttlv_validate_tree(struct kg_ttlv_reader *r) KG_WARN_UNUSED;

/*
 * Value accessors: check the item's type and decode big-endian. A wrong type
 * fails with KG_ERR_TTLV_BAD_TYPE, a length that breaks the type's rule with
 * KG_ERR_TTLV_BAD_LENGTH; *out is written only on success.
 */
kg_result kg_ttlv_get_int(const struct kg_ttlv_item *it, int32_t *out) KG_WARN_UNUSED;
kg_result kg_ttlv_get_long(const struct kg_ttlv_item *it, int64_t *out) KG_WARN_UNUSED;
kg_result kg_ttlv_get_enum(const struct kg_ttlv_item *it, uint32_t *out) KG_WARN_UNUSED;
kg_result kg_ttlv_get_bool(const struct kg_ttlv_item *it, bool *out) KG_WARN_UNUSED;
kg_result kg_ttlv_get_datetime(const struct kg_ttlv_item *it, int64_t *out) KG_WARN_UNUSED;
/* Date-Time Extended (KMIP 2.x, microseconds since the Epoch). */
kg_result kg_ttlv_get_datetime_ext(const struct kg_ttlv_item *it, int64_t *out) KG_WARN_UNUSED;
kg_result kg_ttlv_get_interval(const struct kg_ttlv_item *it, uint32_t *out) KG_WARN_UNUSED;
/* Text: borrowed pointer, not NUL-terminated. Fails on embedded NUL
 * (KG_ERR_TTLV_BAD_VALUE). *out is NULL and *out_len 0 on failure. */
kg_result kg_ttlv_get_text(const struct kg_ttlv_item *it, const char **out, uint32_t *out_len) KG_WARN_UNUSED;
/* Byte string or Big Integer bytes: borrowed pointer. */
kg_result kg_ttlv_get_bytes(const struct kg_ttlv_item *it, const uint8_t **out, uint32_t *out_len) KG_WARN_UNUSED;

/*
 * Length of a whole message from its first 8 bytes (the outer header): 8 plus
 * the declared length. Fails with KG_ERR_TTLV_BAD_TAG / KG_ERR_TTLV_BAD_TYPE
 * (not a Structure) / KG_ERR_TTLV_BAD_LENGTH (not a multiple of 8) /
 * KG_ERR_TTLV_TOO_LONG (8 + length does not fit in uint32_t). The caller
 * still compares *out_total against its configured cap. *out_total is 0 on
 * failure.
 */
kg_result kg_ttlv_message_length(const uint8_t header[KG_TTLV_HEADER_LEN], uint32_t *out_total) KG_WARN_UNUSED;

/* ---- writer ---- */

#define KG_TTLV_MAX_DEPTH 32

struct kg_ttlv_writer {
    uint8_t *buf;              /* owned; heap, or secret->data */
    uint32_t len;
    uint32_t cap;
    uint32_t max;              /* hard cap on len */
    struct kg_secret *secret;  /* non-NULL when the buffer is locked memory */
    uint32_t open[KG_TTLV_MAX_DEPTH]; /* offsets of open Structure headers */
    uint32_t depth;
};

/*
 * Initialise a writer that may grow to `max` bytes. When `secret` is true the
 * buffer lives in locked memory (it will hold key bytes) and grows by moving
 * to a larger kg_secret, the old one wiped. Release with
 * kg_ttlv_writer_cleanup, which cleanses the buffer.
 */
kg_result kg_ttlv_writer_init(struct kg_ttlv_writer *w, uint32_t max, bool secret) KG_WARN_UNUSED;
void kg_ttlv_writer_cleanup(struct kg_ttlv_writer *w);

/* KG_ERR_INTERNAL while a Structure is still open: the output is incomplete. */
kg_result kg_ttlv_writer_finish(const struct kg_ttlv_writer *w) KG_WARN_UNUSED;

/*
 * Every write below is all or nothing: on failure the writer is unchanged.
 * Errors: KG_ERR_WRITER_FULL past `max`, KG_ERR_TTLV_BAD_TAG for a tag outside
 * 0x42xxxx/0x54xxxx, KG_ERR_TTLV_BAD_LENGTH / KG_ERR_TTLV_BAD_TYPE /
 * KG_ERR_TTLV_BAD_VALUE for what a reader would reject, KG_ERR_NOMEM.
 * Source pointers must not point into the writer's own buffer (it may move).
 * kg_ttlv_begin_struct fails with KG_ERR_TTLV_TOO_DEEP past KG_TTLV_MAX_DEPTH;
 * kg_ttlv_end_struct with KG_ERR_INTERNAL when no Structure is open.
 */
/*
 * Undo everything written since `mark` (a value of w->len taken earlier at
 * the same Structure depth `depth_mark`): the dropped bytes are cleansed,
 * since they may hold key material.
 */
void kg_ttlv_writer_rewind(struct kg_ttlv_writer *w, uint32_t mark, uint32_t depth_mark);

kg_result kg_ttlv_begin_struct(struct kg_ttlv_writer *w, uint32_t tag) KG_WARN_UNUSED;
/* Backfill the length of the innermost open Structure. */
kg_result kg_ttlv_end_struct(struct kg_ttlv_writer *w) KG_WARN_UNUSED;

kg_result kg_ttlv_write_int(struct kg_ttlv_writer *w, uint32_t tag, int32_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_long(struct kg_ttlv_writer *w, uint32_t tag, int64_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_enum(struct kg_ttlv_writer *w, uint32_t tag, uint32_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_bool(struct kg_ttlv_writer *w, uint32_t tag, bool v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_datetime(struct kg_ttlv_writer *w, uint32_t tag, int64_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_datetime_ext(struct kg_ttlv_writer *w, uint32_t tag, int64_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_interval(struct kg_ttlv_writer *w, uint32_t tag, uint32_t v) KG_WARN_UNUSED;
kg_result kg_ttlv_write_text(struct kg_ttlv_writer *w, uint32_t tag, const char *s, uint32_t len) KG_WARN_UNUSED;
kg_result kg_ttlv_write_bytes(struct kg_ttlv_writer *w, uint32_t tag, const uint8_t *b, uint32_t len) KG_WARN_UNUSED;
/* Big Integer: `len` must be a multiple of 8 (two's complement, big-endian). */
kg_result kg_ttlv_write_bigint(struct kg_ttlv_writer *w, uint32_t tag, const uint8_t *b, uint32_t len) KG_WARN_UNUSED;
/* Copy an already-encoded item (e.g. kg_ttlv_item.raw) verbatim. `raw` must
 * be exactly one well-formed item; it is validated all the way down. */
kg_result kg_ttlv_write_raw(struct kg_ttlv_writer *w, const uint8_t *raw, uint32_t len) KG_WARN_UNUSED;
/* Re-encode an item read elsewhere under a new tag (type and value kept). A
 * Structure's children are validated as for kg_ttlv_write_raw. */
kg_result kg_ttlv_write_item_as(struct kg_ttlv_writer *w, uint32_t tag, const struct kg_ttlv_item *it) KG_WARN_UNUSED;

#endif
