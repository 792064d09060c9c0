/*
 * kg_p11_internal.h - what kg_p11.c, kg_p11_pool.c and kg_p11_error.c share,
 * and what the unit test reaches into. Not part of the kmipgw API: nothing
 * outside pkcs11/ and tests/unit/kg_p11_test.c includes this header, because
 * it pulls in pkcs11.h.
 */
#ifndef KG_P11_INTERNAL_H
#define KG_P11_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kg_p11.h"
#include "kg_result.h"
#include "kg_secret.h"

/*
 * p11-kit's pkcs11.h in its default CRYPTOKI_COMPAT mode: standard PKCS#11
 * names (ulMaxRwSessionCount, pValue...). Beware that it #defines a few
 * lower-case words (value, count, parameter, slot_id, reserved...) to those
 * names; do not use them as identifiers in pkcs11/.
 */
#include <p11-kit/pkcs11.h>
#include <libp11.h>

/* ---- kg_p11_error.c: the one place a CK_RV becomes a kg error ---------- */

/*
 * The kg error code for `rv` (KG_OK for CKR_OK). Pure; sets nothing.
 * Exposed for tests and for code that must decide (not report) on an rv.
 */
int kg_p11_rv_error(CK_RV rv);

/* "CKR_PIN_INCORRECT" etc., or "CKR_VENDOR_DEFINED+0x.." / "CKR_0x..".
 * Returns a static string or one in thread-local storage; do not free. */
const char *kg_p11_rv_name(CK_RV rv);

/*
 * Check the CK_RV `rv` returned by PKCS#11 call `what` (e.g. "C_WrapKey").
 * CKR_OK returns KG_RESULT_OK and touches nothing. Anything else records the
 * mapped error with the caller's file:line and a detail naming the call and
 * the CKR name (never a secret: `what` must be a fixed call name).
 */
kg_result kg_p11_check_at(CK_RV rv, const char *what, const char *file, int line) KG_WARN_UNUSED;
#define KG_P11_CHECK(rv, what) kg_p11_check_at((rv), (what), __FILE__, __LINE__)

/*
 * KG_P11_CHECK for C_UnwrapKey of a stored blob: a failure that is not
 * about the session, login, memory, mechanism, unwrapping key or the
 * device itself (CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, ...) becomes
 * KG_ERR_HSM_UNWRAP (the blob is damaged or not ours), whatever generic
 * code the module chose for it.
 */
kg_result kg_p11_check_unwrap_at(CK_RV rv, const char *file, int line) KG_WARN_UNUSED;
#define KG_P11_CHECK_UNWRAP(rv) kg_p11_check_unwrap_at((rv), __FILE__, __LINE__)

/* ---- kg_p11_pool.c: bounded session pool -------------------------------- */

/* Default for how long kg_p11_session_acquire waits for a free session
 * before giving up with KG_ERR_HSM_BUSY. Far above any single HSM call. */
#define KG_P11_ACQUIRE_TIMEOUT_MS 30000u

/*
 * One pool per token. Sessions are opened lazily up to `cap` and parked in
 * `idle` (a stack: the most recently used session is the one most likely
 * to be alive). `n_open` counts idle plus checked-out sessions. The pool
 * owns its copy of the PIN, used only to log in again when a checked-out
 * session shows the token's login was lost.
 */
struct kg_p11_pool {
    CK_FUNCTION_LIST_PTR fn; /* borrowed; outlives the pool */
    CK_SLOT_ID slot;
    bool login_required;
    struct kg_secret *pin; /* owned; NULL when !login_required */

    pthread_mutex_t lock;
    /* Threads waiting for a session, oldest first (kg_p11_pool.c): a
     * session returned goes to the head, not to whoever asks next. */
    struct kg_p11_pool_waiter *wait_head, *wait_tail;
    pthread_condattr_t cattr; /* each waiter's condition: monotonic clock */
    CK_SESSION_HANDLE *idle;  /* owned array of cap_max entries */
    uint32_t n_idle;
    uint32_t n_open;
    uint32_t cap;       /* current limit, only ever lowered */
    uint32_t cap_max;   /* limit at init: size of `idle` */
    uint32_t timeout_ms;
    /* An operation saw CKR_USER_NOT_LOGGED_IN: the next checkout logs in
     * whatever C_GetSessionInfo says. */
    bool relogin;
    /* CKR_OK, or why the token refused our PIN on a re-login (PIN changed
     * or locked): later checkouts fail at once instead of trying it again. */
    CK_RV pin_refused;
    /* Bumped whenever every session of the pool is gone, on a flush, on a
     * login error and on every re-login: object handles callers cached
     * (the MWK) may be stale then (libp11 pkcs11_wipe_cache; SoftHSM drops
     * the handles of private objects at logout). */
    uint64_t epoch;
};

/*
 * Initialise caller-provided storage `pool` over function list `fn` (an
 * initialised module) and slot `slot`. The cap is min(max_sessions, the
 * token's ulMaxRwSessionCount when it reports one). `pin` is copied (the
 * caller still owns and frees its own); pass NULL when the token needs no
 * login. timeout_ms 0 means KG_P11_ACQUIRE_TIMEOUT_MS.
 * Errors: KG_ERR_CONFIG (max_sessions 0), KG_ERR_NOMEM/KG_ERR_LOCK, and the
 * mapped error of C_GetTokenInfo. On error nothing needs cleaning up.
 */
kg_result kg_p11_pool_init(struct kg_p11_pool *pool, CK_FUNCTION_LIST_PTR fn, CK_SLOT_ID slot,
                           uint32_t max_sessions, const struct kg_secret *pin,
                           uint32_t timeout_ms) KG_WARN_UNUSED;

/* Close every idle session, wipe and free the PIN copy, zero *pool. Every
 * session must have been released. Accepts a pool that failed init only if
 * it was zeroed first. */
void kg_p11_pool_cleanup(struct kg_p11_pool *pool);

/*
 * Check a logged-in R/W session out of the pool into *out, blocking while
 * the pool is at its cap. The session is verified with C_GetSessionInfo:
 * a dead one (closed, device removed, token gone) is closed with every
 * idle session and replaced by a new one; a lost login (or one an
 * operation reported lost, see kg_p11_session_end) is restored with
 * C_Login, unless the token refused the PIN before (then it is not tried
 * again, so that retries cannot lock it). Any other failure of the check
 * keeps the session in the pool and fails the checkout.
 * The caller must give it back with kg_p11_session_end (or _release or
 * _discard) before the operation returns (one `out:` label), and may use it
 * from one thread only.
 * Errors: KG_ERR_HSM_BUSY (timed out), or the mapped error of
 * C_OpenSession / C_GetSessionInfo / C_Login.
 */
kg_result kg_p11_session_acquire(struct kg_p11_pool *pool, CK_SESSION_HANDLE *out) KG_WARN_UNUSED;

/* kg_p11_session_acquire waiting at most `timeout_ms` for a free session
 * instead of the pool's own timeout: for a health probe, which must answer
 * quickly even when every session is busy. */
kg_result kg_p11_session_acquire_within(struct kg_p11_pool *pool, uint32_t timeout_ms,
                                        CK_SESSION_HANDLE *out) KG_WARN_UNUSED;

/* Return `session` (from kg_p11_session_acquire) to the pool. Accepts
 * CK_INVALID_HANDLE as a no-op, so `out:` labels need no test. */
void kg_p11_session_release(struct kg_p11_pool *pool, CK_SESSION_HANDLE session);

/* Close `session` (from kg_p11_session_acquire) instead of returning it:
 * for a session left in an unknown state. Closing destroys its session
 * objects. */
void kg_p11_session_discard(struct kg_p11_pool *pool, CK_SESSION_HANDLE session);

/*
 * Give back `session` after an operation that ended with kg error `err`
 * (KG_OK for success), so that the pool learns from the failure:
 *   KG_ERR_HSM_SESSION  (session closed, device removed, token not present)
 *                       close it and every idle session, bump the epoch;
 *   KG_ERR_HSM_LOGIN    (CKR_USER_NOT_LOGGED_IN) keep it, log in again at
 *                       the next checkout, bump the epoch;
 *   KG_ERR_HSM          (CKR_DEVICE_ERROR and other generic failures) close
 *                       it: its state is unknown;
 *   anything else       return it, or close it when `must_close` (e.g. an
 *                       object on it could not be destroyed).
 * Accepts CK_INVALID_HANDLE as a no-op.
 */
void kg_p11_session_end(struct kg_p11_pool *pool, CK_SESSION_HANDLE session, int err, bool must_close);

/* Close every idle session (checked-out ones are verified when they next
 * come out) and bump the epoch. For when the device may have been reset:
 * dead handles must be gone before new sessions can reuse their numbers. */
void kg_p11_pool_flush(struct kg_p11_pool *pool);

/* Figures under the lock, for kg_p11_get_stats and tests. */
void kg_p11_pool_stats(struct kg_p11_pool *pool, uint32_t *n_open, uint32_t *n_idle, uint32_t *cap,
                       uint64_t *epoch);

/* ---- kg_p11.c ------------------------------------------------------------ */

/* Most MWK generations one token may hold at once: retire old ones
 * (`kmipgw rotate-master --retire-old`) before rotating past this. */
#define KG_P11_MWK_MAX_GENERATIONS 32u
/* How often, at most, the wrap path looks for a newer MWK generation, ms. */
#define KG_P11_MWK_RECHECK_MS 1000u

/* One MWK generation on the token. */
struct kg_p11_mwk_gen {
    uint32_t generation;
    CK_OBJECT_HANDLE h;       /* what operations use: the session copy, or token_h */
    CK_OBJECT_HANDLE token_h; /* the token object */
};

/* One mechanism kmipgw may use, as the token described it at open
 * (kg_p11_mech.c). `present` false: not listed, or refused by
 * C_GetMechanismInfo. */
struct kg_p11_mech_entry {
    CK_MECHANISM_TYPE type;
    bool present;
    CK_FLAGS flags;
    CK_ULONG min_size, max_size;
};
/* How many mechanisms kg_p11_mech.c tracks. */
#define KG_P11_MECH_TRACKED 19u
/* At most this many MWK wrapping mechanisms are acceptable at once. */
#define KG_P11_WRAP_MECHS_MAX 3u

/* The open token. Defined here so that the key files of pkcs11/ share it;
 * nothing outside pkcs11/ sees inside. */
struct kg_p11 {
    PKCS11_CTX *ctx;
    bool loaded;        /* PKCS11_CTX_load succeeded: unload (not safe otherwise) */
    PKCS11_SLOT *slots; /* libp11's list; releasing it closes all sessions */
    unsigned int nslots;
    PKCS11_SLOT *slot;  /* into `slots` */
    void *dl;           /* our reference on the module, for the function list */
    CK_FUNCTION_LIST_PTR fn;
    CK_SLOT_ID slot_id;
    /* The session the login was made on, held open for our lifetime: the
     * token logs the application out when its last session closes. It
     * also holds the key copies (kg_p11_copy.c), which replace it under
     * keys_lock when a device reset closed it. */
    CK_SESSION_HANDLE login_session;
    bool has_login_session;
    char *token_label;
    char *mwk_label;
    struct kg_p11_pool pool;

    /* MWK generations (token objects sharing mwk_label, CKA_ID = the
     * generation in decimal), ascending; the last is the current one, under
     * which new keys are wrapped; the others still unwrap their blobs
     * during and after a master key rotation. The table is looked up again
     * when the pool lost every session (pool.epoch moved, handles may not
     * survive that), when an operation found a handle invalid, when a blob
     * names a generation newer than the current one, and at most every
     * KG_P11_MWK_RECHECK_MS on the wrap path, so a running gateway starts
     * wrapping under a generation `kmipgw rotate-master` created. */
    pthread_mutex_t mwk_lock;
    bool mwk_lock_ready;
    /* Serialises installing the MWK table and the MAC key (and so every
     * use of the login session: the session copies, kg_p11_copy.c) and
     * creating or retiring generations. Lookups on the hot path run
     * without it. Taken before mwk_lock, never while holding it. */
    pthread_mutex_t keys_lock;
    bool keys_lock_ready;
    bool no_key_copies; /* use the token objects themselves (tests; a token that cannot copy) */
    struct kg_p11_mwk_gen mwk_gens[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t mwk_count;      /* 0: not known (yet), or none on the token */
    bool mwk_stale;          /* an operation found a handle invalid: look again */
    uint64_t mwk_epoch;      /* pool epoch the table was read under */
    uint64_t mwk_checked_ms; /* CLOCK_MONOTONIC ms of the last lookup */
    uint32_t mwk_generation; /* current generation; atomic reads (kg_p11_mwk_generation) */

    /* The blob MAC key (kg_p11_bind.c), cached under mwk_lock for the pool
     * epoch it was found under, like the MWK table. */
    CK_OBJECT_HANDLE mac_h;       /* its session copy, or mac_token_h */
    CK_OBJECT_HANDLE mac_token_h; /* the token object */
    uint64_t mac_epoch;
    bool mac_known;

    /* What the token offers (read once at open, then read-only) and the
     * MWK wrapping mechanisms chosen from it, best first: wrap_mechs[0]
     * wraps new blobs; the next one takes keys the first cannot wrap
     * (CKM_AES_KEY_WRAP and an encoding not a multiple of 8 bytes). */
    struct kg_p11_mech_entry mechs[KG_P11_MECH_TRACKED];
    uint32_t wrap_mechs[KG_P11_WRAP_MECHS_MAX];
    uint32_t n_wrap_mechs;
    /* Every blob carries the HSM-computed MAC over blob, UID and security
     * attributes (the bind helper's seal, verified before any unwrap):
     * only then is CKM_AES_CBC_PAD, which has no integrity of its own, an
     * acceptable MWK wrapping. Set before kg_p11_mech_choose_wrap runs. */
    bool blob_mac_ready;
};

/* ---- kg_p11_copy.c -------------------------------------------------------- */

/*
 * A session copy, inside the HSM, of the gateway's token key `original`
 * (an MWK generation or the MAC key) on the login session: as sensitive
 * and unextractable as the original, checked. Returns `original` itself
 * when the token will not copy it, there is no login session, or
 * p11->no_key_copies. Caller holds keys_lock. The caller owns the copy:
 * kg_p11_key_copy_drop destroys it; closing the login session does too.
 */
CK_OBJECT_HANDLE kg_p11_key_copy(struct kg_p11 *p11, CK_OBJECT_HANDLE original);

/* Destroy `copy` unless it is `original` (no copy was made). Caller holds
 * keys_lock. */
void kg_p11_key_copy_drop(struct kg_p11 *p11, CK_OBJECT_HANDLE original, CK_OBJECT_HANDLE copy);

/* Is `h` one of the session copies the MWK table or the MAC key cache
 * holds now? (Tests that count leftover session objects leave them out.) */
bool kg_p11_is_key_copy(struct kg_p11 *p11, CK_OBJECT_HANDLE h);

/* ---- kg_p11_mech.c -------------------------------------------------------- */

/* Read the token's mechanisms into p11->mechs (bounded: at most
 * KG_P11_MECH_LIST_MAX listed entries are looked at). Mapped CK_RV errors. */
kg_result kg_p11_mech_read(struct kg_p11 *p11) KG_WARN_UNUSED;

/* Choose p11->wrap_mechs from p11->mechs in the documented order
 * (kg_p11_mech.c). KG_ERR_HSM_MECHANISM, naming what was looked for, when
 * none is acceptable or the token cannot generate an AES-256 MWK. */
kg_result kg_p11_mech_choose_wrap(struct kg_p11 *p11) KG_WARN_UNUSED;

/* Does the token list `mechanism` with all of `flags`, and `bits` (0: any)
 * within its range (read as an AES range when `aes_size`)? */
bool kg_p11_mech_offers(const struct kg_p11 *p11, CK_MECHANISM_TYPE mechanism, CK_FLAGS flags, bool aes_size,
                        uint32_t bits);

/* Bytes of IV in front of a CKM_AES_CBC_PAD blob. */
#define KG_P11_CBC_IV_LEN 16u

/* Forget every stored byte of `blob` (mechanism, generation, length). */
void kg_p11_blob_clear(struct kg_p11_blob *blob);

/*
 * SHA-256 of secret key object `key` (which must hold exactly the key's
 * bytes: SoftHSM pads some unwrapped generic secrets), computed in the HSM
 * into out->digest, out->has_digest true. A token that refuses to digest
 * keys leaves has_digest false and succeeds; other errors are returned.
 * Only the digest reaches the gateway; nothing secret to wipe.
 */
kg_result kg_p11_digest_into_blob(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                                  struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * The current (newest) MWK generation's handle for an operation on session
 * `s` (cached per pool epoch, re-checked for a newer generation at most
 * every KG_P11_MWK_RECHECK_MS). KG_ERR_HSM_NO_MWK if the token has none.
 * kg_p11_wrap_under_mwk stamps blobs with the generation of the handle it
 * is given, so a rotation between the two calls cannot mislabel a blob.
 */
kg_result kg_p11_mwk_handle(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h) KG_WARN_UNUSED;

/*
 * The handle of MWK generation `generation`. A generation newer than the
 * current one makes the table be read again first (another process rotated).
 * A generation not on the token (retired, or never made) is KG_ERR_HSM_UNWRAP.
 */
kg_result kg_p11_mwk_for_generation(struct kg_p11 *p11, CK_SESSION_HANDLE s, uint32_t generation,
                                    CK_OBJECT_HANDLE *h) KG_WARN_UNUSED;

/*
 * The MWK that can unwrap `blob`: the blob's own generation, current or
 * older (its mechanism and shape checked first: a blob not made by
 * kg_p11_wrap_under_mwk is KG_ERR_HSM_UNWRAP and never reaches the HSM).
 */
kg_result kg_p11_mwk_for_blob(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_blob *blob,
                              CK_OBJECT_HANDLE *h) KG_WARN_UNUSED;

/* How to C_UnwrapKey `blob` with its own mechanism: *mech (its parameter,
 * the CBC-PAD IV, borrowed from the blob) and the wrapped bytes. Blob
 * shape as kg_p11_mwk_for_blob checks it, else KG_ERR_HSM_UNWRAP. */
kg_result kg_p11_blob_unwrap_params(const struct kg_p11_blob *blob, CK_MECHANISM *mech, const uint8_t **data,
                                    CK_ULONG *len) KG_WARN_UNUSED;

/* The generation of MWK handle `mwk` (kg_p11_mwk.c): from the table, else
 * (the table was read again since the caller got the handle) from the
 * object's CKA_ID. */
kg_result kg_p11_mwk_generation_of(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk,
                                   uint32_t *generation) KG_WARN_UNUSED;

/* An operation found MWK handle `h` invalid: look it up again next time. */
void kg_p11_mwk_forget(struct kg_p11 *p11, CK_OBJECT_HANDLE h);

/* Does `rv` say an object handle is not valid (any more)? */
bool kg_p11_rv_is_stale_handle(CK_RV rv);

/* Wrap `key` (any extractable key) under MWK handle `mwk` into `out` with
 * the chosen mechanism (p11->wrap_mechs[0]; the next one when that is
 * CKM_AES_KEY_WRAP and the key's encoding is not a multiple of 8 bytes),
 * stamped with the mechanism and that handle's generation. CBC-PAD blobs
 * get a fresh random IV from the HSM in front. KG_ERR_HSM_MECHANISM when
 * no mechanism was chosen. */
kg_result kg_p11_wrap_under_mwk(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk,
                                CK_OBJECT_HANDLE key, struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * The common end of every key operation: destroy session objects `objs`
 * (CK_INVALID_HANDLE entries are skipped; never pass a token object) and
 * give `s` back through kg_p11_session_end, which learns from a failed `rc`.
 * If a destroy fails the session is closed instead, which destroys every
 * session object it owns (v2.40 section 5.6), so no key outlives the
 * operation. Returns `rc`, or the destroy failure when `rc` was a success.
 * kg_p11_finish is the one-object form.
 */
kg_result kg_p11_finish_all(struct kg_p11 *p11, CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *objs, size_t n,
                           kg_result rc);
kg_result kg_p11_finish(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, kg_result rc);

/* ---- kg_p11_key.c: stored keys made usable on a session ------------------ */

/* What a loaded key may do: the CKA_ flags a temporary object gets. */
enum kg_p11_use {
    KG_P11_USE_ENCRYPT = 1u << 0,
    KG_P11_USE_DECRYPT = 1u << 1,
    KG_P11_USE_SIGN = 1u << 2,
    KG_P11_USE_VERIFY = 1u << 3,
    KG_P11_USE_WRAP = 1u << 4,
    KG_P11_USE_UNWRAP = 1u << 5,
    KG_P11_USE_EXTRACT = 1u << 6, /* CKA_EXTRACTABLE: it is about to be wrapped out */
    KG_P11_USE_READ = 1u << 7,    /* CKA_SENSITIVE=FALSE, CKA_EXTRACTABLE: its value is read
                                   * out in plaintext (kg_p11_export_key); never resident */
};

/*
 * Make stored key `ref` usable on session `s` for `uses` (enum kg_p11_use
 * bits), into *h:
 *   WRAPPED   unwrapped under the MWK into a private, sensitive session
 *             object with exactly the asked-for use flags (extractable
 *             only with KG_P11_USE_EXTRACT);
 *   RESIDENT  the token object whose CKA_ID is ref->resident_id (its own
 *             flags rule; KG_P11_USE_EXTRACT and KG_P11_USE_READ are
 *             KG_ERR_DENIED);
 *   PUBLIC    a session public key object built from the DER.
 * *to_destroy gets *h when it is a session object the caller must destroy
 * (hand it to kg_p11_finish/_all), else CK_INVALID_HANDLE: a resident
 * token object must never be destroyed by an operation.
 * Errors: KG_ERR_HSM_UNWRAP (blob not ours or damaged), KG_ERR_INVALID_FIELD
 * (public DER unusable), KG_ERR_HSM (resident object missing or ambiguous),
 * or the mapped CK_RV.
 */
kg_result kg_p11_key_load(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_key_ref *ref, unsigned uses,
                          CK_OBJECT_HANDLE *h, CK_OBJECT_HANDLE *to_destroy) KG_WARN_UNUSED;

/* kg_p11_blob_verify on session `s` (kg_p11_key_load's first step). */
kg_result kg_p11_blob_verify_on(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_binding *b) KG_WARN_UNUSED;

/* The one token object of class `cls` with CKA_ID `id` (text), else KG_ERR_HSM. */
kg_result kg_p11_find_resident(struct kg_p11 *p11, CK_SESSION_HANDLE s, const char *id, CK_OBJECT_CLASS cls,
                               CK_OBJECT_HANDLE *h) KG_WARN_UNUSED;

/* The pool inside an open kg_p11 (tests use it to break sessions). */
struct kg_p11_pool *kg_p11_pool_of(struct kg_p11 *p11);

/* libp11's slot of the open token (borrowed; valid until kg_p11_close), for
 * kg_p11_tls.c, which finds the gateway's TLS key through libp11. */
struct PKCS11_slot_st;
struct PKCS11_slot_st *kg_p11_libp11_slot(struct kg_p11 *p11);

#endif
