/*
 * kg_result.h - the one error idiom of kmipgw.
 *
 * Every internal function that can fail returns a kg_result. It is a struct,
 * not an int, so it cannot be mixed up with a count or a boolean, and it is
 * warn_unused_result, so ignoring it is a compiler warning (and an error with
 * werror). On failure the failing site records an error code and its
 * file:line in thread-local storage; kg_errno() and kg_error_debug() read it.
 *
 * This header lives in pkcs11/ because pkcs11/ is the bottom layer: gateway/
 * may include it, pkcs11/ may include nothing of gateway/. policy/ is pure and
 * reports through its own return values.
 *
 * Error codes carry a category in their high bits (KG_ERR_T_*); one table in
 * gateway/ maps a category to a KMIP Result Reason and to "close the
 * connection".
 */
#ifndef KG_RESULT_H
#define KG_RESULT_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

struct kg_result {
    int32_t value; /* 0 ok, -1 error */
};
typedef struct kg_result kg_result;

#define KG_WARN_UNUSED __attribute__((warn_unused_result))

#define KG_ERR_T_SHIFT 16
enum kg_error_category {
    KG_ERR_T_OK = 0,
    KG_ERR_T_PROTO = 1,       /* malformed input: Invalid Message, close */
    KG_ERR_T_LIMIT = 2,       /* a configured cap exceeded: close */
    KG_ERR_T_FIELD = 3,       /* well-formed but invalid value: Invalid Field */
    KG_ERR_T_UNSUPPORTED = 4, /* valid KMIP we do not do */
    KG_ERR_T_NOT_FOUND = 5,   /* Item Not Found */
    KG_ERR_T_DENIED = 6,      /* Permission Denied */
    KG_ERR_T_STATE = 7,       /* Wrong Key Lifecycle State */
    KG_ERR_T_HSM = 8,         /* the HSM failed: Cryptographic Failure */
    KG_ERR_T_INTERNAL = 9,    /* our fault or the OS's: General Failure */
    KG_ERR_T_IO = 10,         /* network / file I/O */
    KG_ERR_T_CONFIG = 11,     /* bad configuration or CLI input */
};

#define KG_ERR(cat, n) (((cat) << KG_ERR_T_SHIFT) | (n))

enum kg_error {
    KG_OK = 0,

    KG_ERR_TTLV_TRUNCATED = KG_ERR(KG_ERR_T_PROTO, 1),
    KG_ERR_TTLV_BAD_TYPE = KG_ERR(KG_ERR_T_PROTO, 2),
    KG_ERR_TTLV_BAD_LENGTH = KG_ERR(KG_ERR_T_PROTO, 3),
    KG_ERR_TTLV_BAD_PADDING = KG_ERR(KG_ERR_T_PROTO, 4),
    KG_ERR_TTLV_BAD_TAG = KG_ERR(KG_ERR_T_PROTO, 5),
    KG_ERR_TTLV_TRAILING = KG_ERR(KG_ERR_T_PROTO, 6),
    KG_ERR_TTLV_UNEXPECTED = KG_ERR(KG_ERR_T_PROTO, 7),
    KG_ERR_TTLV_BAD_VALUE = KG_ERR(KG_ERR_T_PROTO, 8),
    KG_ERR_MSG_MALFORMED = KG_ERR(KG_ERR_T_PROTO, 9),
    KG_ERR_MSG_BAD_VERSION = KG_ERR(KG_ERR_T_PROTO, 10),

    KG_ERR_TTLV_TOO_DEEP = KG_ERR(KG_ERR_T_LIMIT, 1),
    KG_ERR_TTLV_TOO_MANY_ITEMS = KG_ERR(KG_ERR_T_LIMIT, 2),
    KG_ERR_TTLV_TOO_LONG = KG_ERR(KG_ERR_T_LIMIT, 3),
    KG_ERR_WRITER_FULL = KG_ERR(KG_ERR_T_LIMIT, 4),
    KG_ERR_TOO_MANY_BATCH_ITEMS = KG_ERR(KG_ERR_T_LIMIT, 5),

    KG_ERR_INVALID_FIELD = KG_ERR(KG_ERR_T_FIELD, 1),
    KG_ERR_MISSING_FIELD = KG_ERR(KG_ERR_T_FIELD, 2),
    KG_ERR_BAD_ATTRIBUTE = KG_ERR(KG_ERR_T_FIELD, 3),
    KG_ERR_READ_ONLY_ATTRIBUTE = KG_ERR(KG_ERR_T_FIELD, 4),
    KG_ERR_ATTRIBUTE_NOT_FOUND = KG_ERR(KG_ERR_T_FIELD, 5),
    KG_ERR_BAD_KEY_LENGTH = KG_ERR(KG_ERR_T_FIELD, 6),
    /* A field given twice where the operation takes it once (Get Attributes
     * naming an attribute twice): Invalid Message, as the OASIS 1.1 test
     * cases answer it, but the connection stays open. */
    KG_ERR_DUPLICATE_FIELD = KG_ERR(KG_ERR_T_FIELD, 7),
    /* A second instance of a single-valued attribute (Add Attribute):
     * Attribute Single Valued in KMIP 2.x, Invalid Field in 1.x. */
    KG_ERR_SINGLE_VALUED = KG_ERR(KG_ERR_T_FIELD, 8),
    /* Add Attribute of a Name the object already has (KMIP 2.1 BL-M-8-21):
     * Non Unique Name Attribute in KMIP 2.x, Invalid Field in 1.x. */
    KG_ERR_NON_UNIQUE_NAME = KG_ERR(KG_ERR_T_FIELD, 9),
    /* Set Attribute of an attribute the object has several instances of
     * (KMIP 2.1 section 6.1.51): Multi Valued Attribute (a 2.x operation). */
    KG_ERR_MULTI_VALUED = KG_ERR(KG_ERR_T_FIELD, 10),

    KG_ERR_UNSUPPORTED_OP = KG_ERR(KG_ERR_T_UNSUPPORTED, 1),
    KG_ERR_UNSUPPORTED_VERSION = KG_ERR(KG_ERR_T_UNSUPPORTED, 2),
    KG_ERR_UNSUPPORTED_OBJECT = KG_ERR(KG_ERR_T_UNSUPPORTED, 3),
    KG_ERR_UNSUPPORTED_ALGORITHM = KG_ERR(KG_ERR_T_UNSUPPORTED, 4),
    KG_ERR_UNSUPPORTED_FORMAT = KG_ERR(KG_ERR_T_UNSUPPORTED, 5),
    KG_ERR_UNSUPPORTED_FEATURE = KG_ERR(KG_ERR_T_UNSUPPORTED, 6),
    /* Quantum Safe asked of a key that is not (KMIP 2.1 section 4.45):
     * the Quantum Safe profile answers General Failure. */
    KG_ERR_NOT_QUANTUM_SAFE = KG_ERR(KG_ERR_T_UNSUPPORTED, 7),

    KG_ERR_NOT_FOUND = KG_ERR(KG_ERR_T_NOT_FOUND, 1),
    /* The object exists but its key material was destroyed: KMIP 2.x
     * Result Reason Object Destroyed, 1.x Item Not Found. */
    KG_ERR_OBJECT_DESTROYED = KG_ERR(KG_ERR_T_NOT_FOUND, 2),

    KG_ERR_DENIED = KG_ERR(KG_ERR_T_DENIED, 1),
    KG_ERR_AUTHENTICATION = KG_ERR(KG_ERR_T_DENIED, 2), /* the KMIP credential was refused */
    /* The operation cannot apply to this object (Get Usage Allocation of a
     * key without Usage Limits): Result Reason Illegal Operation. */
    KG_ERR_ILLEGAL_OPERATION = KG_ERR(KG_ERR_T_DENIED, 3),
    /* A Check of usage the Cryptographic Usage Mask does not allow: KMIP
     * 2.x Incompatible Cryptographic Usage Mask, 1.x Permission Denied. */
    KG_ERR_INCOMPATIBLE_USAGE_MASK = KG_ERR(KG_ERR_T_DENIED, 4),
    /* The object is Sensitive (client-set, KMIP 1.4 section 3.48): its key
     * material is not returned. Result Reason Sensitive (1.4 and later). */
    KG_ERR_SENSITIVE = KG_ERR(KG_ERR_T_DENIED, 5),

    KG_ERR_WRONG_STATE = KG_ERR(KG_ERR_T_STATE, 1),
    /* The object is archived (Archive, KMIP 1.4 section 4.22): Recover it
     * first. Result Reason Object Archived. */
    KG_ERR_OBJECT_ARCHIVED = KG_ERR(KG_ERR_T_STATE, 2),

    KG_ERR_HSM = KG_ERR(KG_ERR_T_HSM, 1),
    KG_ERR_HSM_NO_TOKEN = KG_ERR(KG_ERR_T_HSM, 2),
    KG_ERR_HSM_LOGIN = KG_ERR(KG_ERR_T_HSM, 3),
    KG_ERR_HSM_NO_MWK = KG_ERR(KG_ERR_T_HSM, 4),
    KG_ERR_HSM_SESSION = KG_ERR(KG_ERR_T_HSM, 5),
    KG_ERR_HSM_MECHANISM = KG_ERR(KG_ERR_T_HSM, 6),
    KG_ERR_HSM_UNWRAP = KG_ERR(KG_ERR_T_HSM, 7),
    KG_ERR_HSM_BUSY = KG_ERR(KG_ERR_T_HSM, 8),
    /* A stored blob failed its binding check (kg_p11_blob_verify): swapped
     * between objects, altered, or never sealed. Never unwrapped. */
    KG_ERR_HSM_BLOB_TAMPERED = KG_ERR(KG_ERR_T_HSM, 20),

    KG_ERR_NOMEM = KG_ERR(KG_ERR_T_INTERNAL, 1),
    KG_ERR_INTERNAL = KG_ERR(KG_ERR_T_INTERNAL, 2),
    KG_ERR_STORE = KG_ERR(KG_ERR_T_INTERNAL, 3),
    KG_ERR_LOCK = KG_ERR(KG_ERR_T_INTERNAL, 4),
    KG_ERR_RANDOM = KG_ERR(KG_ERR_T_INTERNAL, 5),

    KG_ERR_IO = KG_ERR(KG_ERR_T_IO, 1),
    KG_ERR_CLOSED = KG_ERR(KG_ERR_T_IO, 2),
    KG_ERR_TIMEOUT = KG_ERR(KG_ERR_T_IO, 3),
    KG_ERR_TLS = KG_ERR(KG_ERR_T_IO, 4),

    KG_ERR_CONFIG = KG_ERR(KG_ERR_T_CONFIG, 1),
};

#define KG_RESULT_OK ((kg_result){ 0 })
#define KG_RESULT_ERROR ((kg_result){ -1 })

static inline bool kg_ok(kg_result r) { return r.value == 0; }
static inline bool kg_failed(kg_result r) { return r.value != 0; }

/* Record error code and site in this thread's error slot. */
void kg_error_set(int code, const char *file, int line);
/* Attach a short human-readable detail (no secrets!) to the current error. */
void kg_error_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The code of the last error recorded on this thread (KG_OK if none). */
int kg_errno(void);
/* "file:line" of the last error. Static thread-local storage; do not free. */
const char *kg_error_debug(void);
/* Detail text of the last error, "" if none. Thread-local; do not free. */
const char *kg_error_text(void);
/* A short fixed name for a code, e.g. "TTLV_TRUNCATED". Never NULL. */
const char *kg_error_name(int code);
void kg_error_clear(void);

/* A copy of this thread's error slot, for clean-up code that may fail on
 * its own but must leave the caller's error as it found it. */
struct kg_error_saved {
    int code;
    char site[128];
    char text[256];
};
void kg_error_save(struct kg_error_saved *saved);
void kg_error_restore(const struct kg_error_saved *saved);

static inline int kg_error_category_of(int code) { return code >> KG_ERR_T_SHIFT; }

#define KG_STRINGIFY_(x) #x
#define KG_STRINGIFY(x) KG_STRINGIFY_(x)

/* Fail the current function with error code `err`. */
#define KG_BAIL(err)                                \
    do {                                            \
        kg_error_set((err), __FILE__, __LINE__);    \
        return KG_RESULT_ERROR;                     \
    } while (0)

/* Fail with `err` unless `cond` holds. */
#define KG_ENSURE(cond, err)                        \
    do {                                            \
        if (!(cond)) {                              \
            KG_BAIL(err);                           \
        }                                           \
    } while (0)

/* Propagate a failing kg_result unchanged (error slot already set). */
#define KG_GUARD(expr)                              \
    do {                                            \
        if (kg_failed(expr)) {                      \
            return KG_RESULT_ERROR;                 \
        }                                           \
    } while (0)

/* Forms for functions with one `out:` cleanup label: set `rc` and jump. */
#define KG_GOTO_BAIL(rc, err)                       \
    do {                                            \
        kg_error_set((err), __FILE__, __LINE__);    \
        (rc) = KG_RESULT_ERROR;                     \
        goto out;                                   \
    } while (0)
#define KG_GOTO_ENSURE(rc, cond, err)               \
    do {                                            \
        if (!(cond)) {                              \
            KG_GOTO_BAIL(rc, err);                  \
        }                                           \
    } while (0)
#define KG_GOTO_GUARD(rc, expr)                     \
    do {                                            \
        if (kg_failed((rc) = (expr))) {             \
            goto out;                               \
        }                                           \
    } while (0)

/*
 * Defensive "cannot happen" branches (STYLE.md section 9): assert in debug
 * builds, still handled (and failing closed) in release builds. A branch
 * inside KG_NEVER has no negative test by construction.
 */
#ifdef NDEBUG
#define KG_NEVER(x) (x)
#else
#define KG_NEVER(x) ((x) ? (assert(0), 1) : 0)
#endif

#endif
