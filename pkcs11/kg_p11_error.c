/*
 * kg_p11_error.c - the one place a CK_RV becomes a kg error.
 *
 * Every PKCS#11 call in pkcs11/ passes its return value through
 * KG_P11_CHECK, as libp11 funnels every CK_RV through CKRerr. The mapping
 * decides what the rest of kmipgw sees: session-level failures (worth a
 * retry on a fresh session, or a sign the HSM went away), login failures
 * (an operator problem: wrong or locked PIN), unsupported mechanisms, bad
 * wrapped blobs, and everything else as a generic HSM failure.
 */
#include "kg_p11_internal.h"

#include <stdatomic.h>
#include <stdio.h>

/* Every CK_RV but CKR_OK that reached this file, for kmipgw_hsm_errors_total.
 * Relaxed: it is a statistic, ordered with nothing. */
static atomic_uint_fast64_t kg_p11_errors;

uint64_t kg_p11_error_count(void)
{
    return (uint64_t)atomic_load_explicit(&kg_p11_errors, memory_order_relaxed);
}

int kg_p11_rv_error(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return KG_OK;

    case CKR_HOST_MEMORY:
        return KG_ERR_NOMEM;

    /* The session, the token or the whole device is gone or unusable. */
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_COUNT:
    case CKR_SESSION_PARALLEL_NOT_SUPPORTED:
    case CKR_SESSION_READ_ONLY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SLOT_ID_INVALID:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return KG_ERR_HSM_SESSION;

    /* Not logged in, or logging in cannot work: fix the PIN. */
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_USER_TYPE_INVALID:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
    case CKR_USER_TOO_MANY_TYPES:
        return KG_ERR_HSM_LOGIN;

    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
        return KG_ERR_HSM_MECHANISM;

    /* A blob that does not unwrap: tampered, truncated or wrapped under
     * another key. RFC 5649 integrity check failures surface as either
     * WRAPPED_KEY_INVALID or ENCRYPTED_DATA_INVALID depending on the module;
     * pkcs11/ has no C_Decrypt caller that could be confused by this. */
    case CKR_WRAPPED_KEY_INVALID:
    case CKR_WRAPPED_KEY_LEN_RANGE:
    case CKR_ENCRYPTED_DATA_INVALID:
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
        return KG_ERR_HSM_UNWRAP;

    /* The HSM refuses the size: for the client that is a bad length. */
    case CKR_KEY_SIZE_RANGE:
        return KG_ERR_BAD_KEY_LENGTH;

    default:
        return KG_ERR_HSM;
    }
}

const char *kg_p11_rv_name(CK_RV rv)
{
    static _Thread_local char unknown[48];

    switch (rv) {
#define N(x) case x: return #x;
    N(CKR_OK) N(CKR_CANCEL) N(CKR_HOST_MEMORY) N(CKR_SLOT_ID_INVALID) N(CKR_GENERAL_ERROR)
    N(CKR_FUNCTION_FAILED) N(CKR_ARGUMENTS_BAD) N(CKR_NO_EVENT) N(CKR_NEED_TO_CREATE_THREADS)
    N(CKR_CANT_LOCK) N(CKR_ATTRIBUTE_READ_ONLY) N(CKR_ATTRIBUTE_SENSITIVE)
    N(CKR_ATTRIBUTE_TYPE_INVALID) N(CKR_ATTRIBUTE_VALUE_INVALID) N(CKR_ACTION_PROHIBITED)
    N(CKR_DATA_INVALID) N(CKR_DATA_LEN_RANGE) N(CKR_DEVICE_ERROR) N(CKR_DEVICE_MEMORY)
    N(CKR_DEVICE_REMOVED) N(CKR_ENCRYPTED_DATA_INVALID) N(CKR_ENCRYPTED_DATA_LEN_RANGE)
    N(CKR_FUNCTION_CANCELED) N(CKR_FUNCTION_NOT_PARALLEL) N(CKR_FUNCTION_NOT_SUPPORTED)
    N(CKR_KEY_HANDLE_INVALID) N(CKR_KEY_SIZE_RANGE) N(CKR_KEY_TYPE_INCONSISTENT)
    N(CKR_KEY_NOT_NEEDED) N(CKR_KEY_CHANGED) N(CKR_KEY_NEEDED) N(CKR_KEY_INDIGESTIBLE)
    N(CKR_KEY_FUNCTION_NOT_PERMITTED) N(CKR_KEY_NOT_WRAPPABLE) N(CKR_KEY_UNEXTRACTABLE)
    N(CKR_MECHANISM_INVALID) N(CKR_MECHANISM_PARAM_INVALID) N(CKR_OBJECT_HANDLE_INVALID)
    N(CKR_OPERATION_ACTIVE) N(CKR_OPERATION_NOT_INITIALIZED) N(CKR_PIN_INCORRECT)
    N(CKR_PIN_INVALID) N(CKR_PIN_LEN_RANGE) N(CKR_PIN_EXPIRED) N(CKR_PIN_LOCKED)
    N(CKR_SESSION_CLOSED) N(CKR_SESSION_COUNT) N(CKR_SESSION_HANDLE_INVALID)
    N(CKR_SESSION_PARALLEL_NOT_SUPPORTED) N(CKR_SESSION_READ_ONLY) N(CKR_SESSION_EXISTS)
    N(CKR_SESSION_READ_ONLY_EXISTS) N(CKR_SESSION_READ_WRITE_SO_EXISTS)
    N(CKR_SIGNATURE_INVALID) N(CKR_SIGNATURE_LEN_RANGE) N(CKR_TEMPLATE_INCOMPLETE)
    N(CKR_TEMPLATE_INCONSISTENT) N(CKR_TOKEN_NOT_PRESENT) N(CKR_TOKEN_NOT_RECOGNIZED)
    N(CKR_TOKEN_WRITE_PROTECTED) N(CKR_UNWRAPPING_KEY_HANDLE_INVALID)
    N(CKR_UNWRAPPING_KEY_SIZE_RANGE) N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
    N(CKR_USER_ALREADY_LOGGED_IN) N(CKR_USER_NOT_LOGGED_IN) N(CKR_USER_PIN_NOT_INITIALIZED)
    N(CKR_USER_TYPE_INVALID) N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) N(CKR_USER_TOO_MANY_TYPES)
    N(CKR_WRAPPED_KEY_INVALID) N(CKR_WRAPPED_KEY_LEN_RANGE) N(CKR_WRAPPING_KEY_HANDLE_INVALID)
    N(CKR_WRAPPING_KEY_SIZE_RANGE) N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
    N(CKR_RANDOM_SEED_NOT_SUPPORTED) N(CKR_RANDOM_NO_RNG) N(CKR_DOMAIN_PARAMS_INVALID)
    N(CKR_CURVE_NOT_SUPPORTED) N(CKR_BUFFER_TOO_SMALL) N(CKR_SAVED_STATE_INVALID)
    N(CKR_INFORMATION_SENSITIVE) N(CKR_STATE_UNSAVEABLE) N(CKR_CRYPTOKI_NOT_INITIALIZED)
    N(CKR_CRYPTOKI_ALREADY_INITIALIZED) N(CKR_MUTEX_BAD) N(CKR_MUTEX_NOT_LOCKED)
    N(CKR_NEW_PIN_MODE) N(CKR_NEXT_OTP) N(CKR_EXCEEDED_MAX_ITERATIONS)
    N(CKR_FIPS_SELF_TEST_FAILED) N(CKR_LIBRARY_LOAD_FAILED) N(CKR_PIN_TOO_WEAK)
    N(CKR_PUBLIC_KEY_INVALID) N(CKR_FUNCTION_REJECTED)
#undef N
    default:
        break;
    }
    if (rv >= CKR_VENDOR_DEFINED) {
        snprintf(unknown, sizeof(unknown), "CKR_VENDOR_DEFINED+0x%lx", (unsigned long)(rv - CKR_VENDOR_DEFINED));
    } else {
        snprintf(unknown, sizeof(unknown), "CKR_0x%lx", (unsigned long)rv);
    }
    return unknown;
}

kg_result kg_p11_check_at(CK_RV rv, const char *what, const char *file, int line)
{
    if (rv == CKR_OK) {
        return KG_RESULT_OK;
    }
    atomic_fetch_add_explicit(&kg_p11_errors, 1, memory_order_relaxed);
    kg_error_set(kg_p11_rv_error(rv), file, line);
    kg_error_detail("%s: %s (0x%lx)", what != NULL ? what : "PKCS#11 call", kg_p11_rv_name(rv),
                    (unsigned long)rv);
    return KG_RESULT_ERROR;
}

kg_result kg_p11_check_unwrap_at(CK_RV rv, const char *file, int line)
{
    int err = kg_p11_rv_error(rv);

    if (rv == CKR_OK) {
        return KG_RESULT_OK;
    }
    atomic_fetch_add_explicit(&kg_p11_errors, 1, memory_order_relaxed);
    /* Modules disagree on how a failed RFC 5649 integrity check is
     * reported (SoftHSM 2.6 says CKR_GENERAL_ERROR), so for the unwrap of a
     * stored blob every generic failure means "this blob does not unwrap".
     * Failures of the session, the login, memory or the mechanism, a
     * stale MWK handle, and a device that failed or is busy keep their own
     * meaning: the blob may be fine, and an operator must not be told a
     * key is damaged when the HSM is. */
    if (err == KG_ERR_HSM && rv != CKR_UNWRAPPING_KEY_HANDLE_INVALID && rv != CKR_UNWRAPPING_KEY_SIZE_RANGE &&
        rv != CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT && rv != CKR_DEVICE_ERROR && rv != CKR_DEVICE_MEMORY &&
        rv != CKR_FUNCTION_CANCELED && rv != CKR_CANT_LOCK && rv != CKR_OPERATION_ACTIVE) {
        err = KG_ERR_HSM_UNWRAP;
    }
    kg_error_set(err, file, line);
    kg_error_detail("C_UnwrapKey: %s (0x%lx)", kg_p11_rv_name(rv), (unsigned long)rv);
    return KG_RESULT_ERROR;
}
