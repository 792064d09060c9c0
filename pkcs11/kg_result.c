/* kg_result.c - thread-local error slot behind the KG_* macros. */
#include "kg_result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local int kg_last_error;
static _Thread_local char kg_last_site[128];
static _Thread_local char kg_last_text[256];

void kg_error_set(int code, const char *file, int line)
{
    kg_last_error = code;
    kg_last_text[0] = '\0';
    snprintf(kg_last_site, sizeof(kg_last_site), "%s:%d", file, line);
}

void kg_error_detail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(kg_last_text, sizeof(kg_last_text), fmt, ap);
    va_end(ap);
}

int kg_errno(void) { return kg_last_error; }
const char *kg_error_debug(void) { return kg_last_site; }
const char *kg_error_text(void) { return kg_last_text; }

void kg_error_clear(void)
{
    kg_last_error = KG_OK;
    kg_last_site[0] = '\0';
    kg_last_text[0] = '\0';
}

void kg_error_save(struct kg_error_saved *saved)
{
    _Static_assert(sizeof(saved->site) == sizeof(kg_last_site), "site sizes");
    _Static_assert(sizeof(saved->text) == sizeof(kg_last_text), "text sizes");
    saved->code = kg_last_error;
    memcpy(saved->site, kg_last_site, sizeof(saved->site));
    memcpy(saved->text, kg_last_text, sizeof(saved->text));
}

void kg_error_restore(const struct kg_error_saved *saved)
{
    kg_last_error = saved->code;
    memcpy(kg_last_site, saved->site, sizeof(kg_last_site));
    memcpy(kg_last_text, saved->text, sizeof(kg_last_text));
}

const char *kg_error_name(int code)
{
    switch (code) {
#define N(x) case KG_ERR_##x: return #x;
    N(TTLV_TRUNCATED) N(TTLV_BAD_TYPE) N(TTLV_BAD_LENGTH) N(TTLV_BAD_PADDING)
    N(TTLV_BAD_TAG) N(TTLV_TRAILING) N(TTLV_UNEXPECTED) N(TTLV_BAD_VALUE)
    N(MSG_MALFORMED) N(MSG_BAD_VERSION) N(TTLV_TOO_DEEP) N(TTLV_TOO_MANY_ITEMS)
    N(TTLV_TOO_LONG) N(WRITER_FULL) N(TOO_MANY_BATCH_ITEMS) N(INVALID_FIELD)
    N(MISSING_FIELD) N(BAD_ATTRIBUTE) N(READ_ONLY_ATTRIBUTE) N(ATTRIBUTE_NOT_FOUND)
    N(BAD_KEY_LENGTH) N(DUPLICATE_FIELD) N(SINGLE_VALUED) N(NON_UNIQUE_NAME) N(MULTI_VALUED) N(OBJECT_DESTROYED)
    N(INCOMPATIBLE_USAGE_MASK) N(UNSUPPORTED_OP) N(UNSUPPORTED_VERSION) N(UNSUPPORTED_OBJECT)
    N(UNSUPPORTED_ALGORITHM) N(UNSUPPORTED_FORMAT) N(UNSUPPORTED_FEATURE) N(NOT_QUANTUM_SAFE)
    N(NOT_FOUND) N(DENIED) N(AUTHENTICATION) N(WRONG_STATE) N(OBJECT_ARCHIVED) N(ILLEGAL_OPERATION) N(SENSITIVE) N(HSM) N(HSM_NO_TOKEN) N(HSM_LOGIN)
    N(HSM_NO_MWK) N(HSM_SESSION) N(HSM_MECHANISM) N(HSM_UNWRAP) N(HSM_BUSY) N(HSM_BLOB_TAMPERED)
    N(NOMEM) N(INTERNAL) N(STORE) N(LOCK) N(RANDOM) N(IO) N(CLOSED) N(TIMEOUT)
    N(TLS) N(CONFIG)
#undef N
    case KG_OK:
        return "OK";
    default:
        return "UNKNOWN";
    }
}
