/*
 * kg_p11.c - the token and the key operations of kg_p11.h (the MWK's
 * generations are kg_p11_mwk.c's).
 *
 * libp11 does the parts it is good at: loading the module (C_Initialize
 * with CKF_OS_LOCKING_OK), enumerating slots and logging in once. It does
 * not expose the CK_FUNCTION_LIST, so we take the module's own list from the
 * already-loaded library (dlopen RTLD_NOLOAD) and run the pool and every key
 * operation on it directly. libp11 keeps the session it logged in with open
 * in its own pool until kg_p11_close releases the slots; that session holds
 * the token's login for the whole process (PKCS#11 v2.40 section 5.6:
 * closing the last session logs the user out).
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libp11.h>
#include <openssl/crypto.h>
#include <openssl/err.h>



struct kg_p11_pool *kg_p11_pool_of(struct kg_p11 *p11) { return &p11->pool; }

uint32_t kg_p11_mwk_generation(const struct kg_p11 *p11)
{
    return __atomic_load_n(&p11->mwk_generation, __ATOMIC_RELAXED);
}

void kg_p11_get_stats(struct kg_p11 *p11, struct kg_p11_stats *out)
{
    kg_p11_pool_stats(&p11->pool, &out->sessions_open, &out->sessions_idle, &out->max_sessions, NULL);
}

kg_result kg_p11_ping(struct kg_p11 *p11, uint32_t timeout_ms)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    /* The checkout is the probe: it runs C_GetSessionInfo on the session
     * and logs in again if the token lost the login. */
    KG_GUARD(kg_p11_session_acquire_within(&p11->pool, timeout_ms, &s));
    kg_p11_session_release(&p11->pool, s);
    return KG_RESULT_OK;
}

/*
 * Drain OpenSSL's error queue, where libp11 reports, and return the last
 * CK_RV it recorded (CKRerr). The queue must not be left dirty: TLS code on
 * this thread reads it (SSL_get_error).
 */
static bool kg_p11_libp11_rv(CK_RV *rv)
{
    unsigned long e;
    bool found = false;
    int ckr_lib = ERR_get_CKR_code();

    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ckr_lib) {
            *rv = (CK_RV)ERR_GET_REASON(e);
            found = true;
        }
    }
    return found;
}

static bool kg_p11_aes_key_bytes_ok(size_t n) { return n == 16 || n == 24 || n == 32; }

/* Token labels are blank-padded to 32 bytes on the token; libp11 trims,
 * but compare without trailing blanks on both sides anyway. */
static bool kg_p11_label_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);

    while (la > 0 && a[la - 1] == ' ') {
        la--;
    }
    while (lb > 0 && b[lb - 1] == ' ') {
        lb--;
    }
    return la == lb && memcmp(a, b, la) == 0;
}

/* Explain a failed PKCS11_CTX_load: the library itself, or its C_Initialize. */
static kg_result kg_p11_load_failed(const char *module_path)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    bool have_rv = kg_p11_libp11_rv(&rv);
    kg_result rc;
    void *probe = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);

    if (probe == NULL) {
        const char *why = dlerror();

        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        if (why != NULL && strstr(why, module_path) != NULL) {
            kg_error_detail("cannot load PKCS#11 module: %s", why); /* dlerror names the file */
        } else {
            kg_error_detail("cannot load PKCS#11 module %s: %s", module_path, why != NULL ? why : "dlopen failed");
        }
        return KG_RESULT_ERROR;
    }
    dlclose(probe);
    if (!have_rv) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s is not a usable PKCS#11 module (no C_GetFunctionList?)", module_path);
        return KG_RESULT_ERROR;
    }
    if (rv == CKR_OK) {
        rv = CKR_GENERAL_ERROR; /* a failed load must not map to success */
    }
    rc = KG_P11_CHECK(rv, "C_Initialize");
    kg_error_detail("PKCS#11 module %s failed to initialise: C_Initialize: %s (check the module's own "
                    "configuration, e.g. SOFTHSM2_CONF)",
                    module_path, kg_p11_rv_name(rv));
    return rc;
}

/* Find the one initialised token labelled `label` among p11->slots. */
static kg_result kg_p11_find_token(struct kg_p11 *p11, const char *module_path, const char *label)
{
    char seen[256];
    size_t used = 0;
    unsigned int matches = 0;

    seen[0] = '\0';
    for (unsigned int i = 0; i < p11->nslots; i++) {
        PKCS11_TOKEN *tok = p11->slots[i].token;

        if (tok == NULL || !tok->initialized || tok->label == NULL) {
            continue;
        }
        if (kg_p11_label_equal(tok->label, label)) {
            if (matches++ == 0) {
                p11->slot = &p11->slots[i];
            }
        }
        if (used < sizeof(seen)) {
            int n = snprintf(seen + used, sizeof(seen) - used, "%s'%s'", used > 0 ? ", " : "", tok->label);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (matches == 0) {
        kg_error_set(KG_ERR_HSM_NO_TOKEN, __FILE__, __LINE__);
        kg_error_detail("no token with label '%s' in %s; initialised tokens: %s", label, module_path,
                        used > 0 ? seen : "none");
        p11->slot = NULL;
        return KG_RESULT_ERROR;
    }
    if (matches > 1) {
        /* Picking one would make the MWK depend on slot order. */
        kg_error_set(KG_ERR_HSM_NO_TOKEN, __FILE__, __LINE__);
        kg_error_detail("%u tokens have the label '%s' in %s; token labels must be unique", matches, label,
                        module_path);
        p11->slot = NULL;
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* Log in through libp11, which wants a NUL-terminated PIN: build that copy
 * in locked memory and wipe it (kg_secret_free). */
static kg_result kg_p11_login(struct kg_p11 *p11, const struct kg_secret *pin)
{
    struct kg_secret *pinz = NULL;
    kg_result rc = KG_RESULT_OK;
    CK_RV rv = CKR_GENERAL_ERROR;

    if (pin == NULL || pin->len == 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("token '%s' requires a login but no PIN is configured", p11->token_label);
        return KG_RESULT_ERROR;
    }
    if (memchr(pin->data, '\0', pin->len) != NULL) {
        kg_error_set(KG_ERR_HSM_LOGIN, __FILE__, __LINE__);
        kg_error_detail("the PIN for token '%s' contains a NUL byte", p11->token_label);
        return KG_RESULT_ERROR;
    }
    KG_GOTO_GUARD(rc, kg_secret_alloc(pin->len + 1, &pinz));
    memcpy(pinz->data, pin->data, pin->len);
    pinz->data[pin->len] = '\0';
    pinz->len = pin->len;

    /* C_Login through the function list, not PKCS11_login: libp11 keeps a
     * copy of the PIN in ordinary heap memory for the slot's lifetime. */
    rv = p11->fn->C_OpenSession(p11->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                &p11->login_session);
    KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_OpenSession"));
    p11->has_login_session = true;
    rv = p11->fn->C_Login(p11->login_session, CKU_USER, pinz->data, (CK_ULONG)pinz->len);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        rv = CKR_OK;
    }
    if (rv != CKR_OK) {
        rc = KG_P11_CHECK(rv, "C_Login");
        if (kg_errno() == KG_ERR_HSM) {
            /* Whatever the module said, for the operator it is the login. */
            kg_error_set(KG_ERR_HSM_LOGIN, __FILE__, __LINE__);
        }
        kg_error_detail("login to token '%s' failed: %s%s", p11->token_label, kg_p11_rv_name(rv),
                        rv == CKR_PIN_INCORRECT ? " (wrong PIN)"
                        : rv == CKR_PIN_LOCKED  ? " (PIN locked: the security officer must unlock it)"
                                                : "");
        goto out;
    }
out:
    kg_secret_free(pinz);
    return rc;
}

/* Does `rv` say an object handle, possibly the MWK's, is not valid (any
 * more)? Modules differ in which code they use for a stale key handle. */
bool kg_p11_rv_is_stale_handle(CK_RV rv)
{
    return rv == CKR_WRAPPING_KEY_HANDLE_INVALID || rv == CKR_UNWRAPPING_KEY_HANDLE_INVALID ||
           rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

kg_result kg_p11_open(const struct kg_p11_config *cfg, const struct kg_secret *pin, bool require_mwk,
                      struct kg_p11 **out)
{
    struct kg_p11 *p11 = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    if (cfg == NULL || cfg->module_path == NULL || cfg->token_label == NULL || cfg->mwk_label == NULL ||
        cfg->mwk_label[0] == '\0') {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("hsm configuration needs module, token_label and mwk_label");
        return KG_RESULT_ERROR;
    }

    p11 = calloc(1, sizeof(*p11));
    KG_GOTO_ENSURE(rc, p11 != NULL, KG_ERR_NOMEM);
    p11->token_label = strdup(cfg->token_label);
    p11->mwk_label = strdup(cfg->mwk_label);
    KG_GOTO_ENSURE(rc, p11->token_label != NULL && p11->mwk_label != NULL, KG_ERR_NOMEM);
    KG_GOTO_ENSURE(rc, pthread_mutex_init(&p11->mwk_lock, NULL) == 0, KG_ERR_INTERNAL);
    p11->mwk_lock_ready = true;
    KG_GOTO_ENSURE(rc, pthread_mutex_init(&p11->keys_lock, NULL) == 0, KG_ERR_INTERNAL);
    p11->keys_lock_ready = true;

    p11->ctx = PKCS11_CTX_new();
    KG_GOTO_ENSURE(rc, p11->ctx != NULL, KG_ERR_NOMEM);
    if (PKCS11_CTX_load(p11->ctx, cfg->module_path) != 0) {
        rc = kg_p11_load_failed(cfg->module_path);
        goto out;
    }
    p11->loaded = true;

    /* The same library, already loaded and initialised by libp11: this
     * only takes a reference, and C_GetFunctionList returns the list libp11
     * itself called C_Initialize through. */
    p11->dl = dlopen(cfg->module_path, RTLD_NOW | RTLD_NOLOAD);
    if (p11->dl != NULL) {
        *(void **)&get_list = dlsym(p11->dl, "C_GetFunctionList");
    }
    if (get_list == NULL) {
        const char *why = dlerror();

        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("cannot find C_GetFunctionList in loaded module %s: %s", cfg->module_path,
                        why != NULL ? why : "not loaded");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(get_list(&p11->fn), "C_GetFunctionList"));
    KG_GOTO_ENSURE(rc, p11->fn != NULL, KG_ERR_HSM);

    if (PKCS11_enumerate_slots(p11->ctx, &p11->slots, &p11->nslots) != 0) {
        CK_RV rv = CKR_GENERAL_ERROR;

        (void)kg_p11_libp11_rv(&rv);
        rc = KG_P11_CHECK(rv, "C_GetSlotList");
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_p11_find_token(p11, cfg->module_path, cfg->token_label));
    p11->slot_id = (CK_SLOT_ID)PKCS11_get_slotid_from_slot(p11->slot);

    if (p11->slot->token->loginRequired) {
        KG_GOTO_GUARD(rc, kg_p11_login(p11, pin));
    }
    KG_GOTO_GUARD(rc, kg_p11_pool_init(&p11->pool, p11->fn, p11->slot_id, cfg->max_sessions,
                                       p11->slot->token->loginRequired ? pin : NULL, 0));

    /* What the token can do, once, and how blobs will be wrapped: a token
     * with no acceptable MWK wrapping is refused here, before any key is
     * made that could not be stored. CBC-PAD has no integrity of its own:
     * it is acceptable because every stored blob carries an HMAC made in
     * the HSM (kg_p11_bind.c) and kg_p11_key_load refuses a CBC-PAD blob
     * that comes without one to verify. */
    p11->blob_mac_ready = true;
    KG_GOTO_GUARD(rc, kg_p11_mech_read(p11));
    KG_GOTO_GUARD(rc, kg_p11_mech_choose_wrap(p11));

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    rc = kg_p11_mwk_handle(p11, s, &mwk);
    if (kg_failed(rc) && kg_errno() == KG_ERR_HSM_NO_MWK && !require_mwk) {
        kg_error_clear();
        rc = KG_RESULT_OK;
    }
out:
    if (p11 != NULL) {
        kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    }
    if (kg_failed(rc)) {
        kg_p11_close(p11);
        p11 = NULL;
    }
    *out = p11;
    return rc;
}

void kg_p11_close(struct kg_p11 *p11)
{
    if (p11 == NULL) {
        return;
    }
    kg_p11_pool_cleanup(&p11->pool);
    if (p11->has_login_session) {
        (void)p11->fn->C_CloseSession(p11->login_session);
    }
    /* Releasing libp11's slots calls C_CloseAllSessions, which closes its
     * login session and so logs the token out. */
    if (p11->slots != NULL) {
        PKCS11_release_all_slots(p11->ctx, p11->slots, p11->nslots);
    }
    if (p11->dl != NULL) {
        dlclose(p11->dl);
    }
    if (p11->ctx != NULL) {
        /* libp11 0.4.12 crashes unloading a context whose load failed. */
        if (p11->loaded) {
            PKCS11_CTX_unload(p11->ctx);
        }
        PKCS11_CTX_free(p11->ctx);
    }
    ERR_clear_error();
    if (p11->keys_lock_ready) {
        pthread_mutex_destroy(&p11->keys_lock);
    }
    if (p11->mwk_lock_ready) {
        pthread_mutex_destroy(&p11->mwk_lock);
    }
    free(p11->token_label);
    free(p11->mwk_label);
    OPENSSL_cleanse(p11, sizeof(*p11));
    free(p11);
}

void kg_p11_blob_clear(struct kg_p11_blob *blob)
{
    blob->mechanism = 0;
    blob->mwk_generation = 0;
    blob->len = 0;
    blob->has_digest = false;
    memset(blob->digest, 0, sizeof(blob->digest));
}

kg_result kg_p11_digest_into_blob(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                                  struct kg_p11_blob *out)
{
    CK_MECHANISM sha256 = { CKM_SHA256, NULL, 0 };
    CK_ULONG n = sizeof(out->digest);
    CK_RV rv;

    out->has_digest = false;
    rv = p11->fn->C_DigestInit(s, &sha256);
    if (rv == CKR_OK) {
        rv = p11->fn->C_DigestKey(s, key);
    }
    if (rv == CKR_KEY_INDIGESTIBLE || rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_MECHANISM_INVALID) {
        /* The token will not digest this key (the failed call ended the
         * operation): the object simply has no Digest. */
        return KG_RESULT_OK;
    }
    KG_GUARD(KG_P11_CHECK(rv, "C_DigestKey"));
    KG_GUARD(KG_P11_CHECK(p11->fn->C_DigestFinal(s, out->digest, &n), "C_DigestFinal"));
    KG_ENSURE(n == sizeof(out->digest), KG_ERR_HSM);
    out->has_digest = true;
    return KG_RESULT_OK;
}

/*
 * Wrap `key` under `mwk` with `mechanism` into out->bytes (two-call length
 * pattern). A CBC-PAD blob starts with a 16-byte IV from the HSM's RNG: a
 * fresh one per blob, so equal keys never give equal blobs. *wrap_rv gets
 * C_WrapKey's answer, for the caller's fall-through decision.
 */
static kg_result kg_p11_wrap_with(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk,
                                  CK_OBJECT_HANDLE key, uint32_t mechanism, struct kg_p11_blob *out, CK_RV *wrap_rv)
{
    CK_MECHANISM mech = { (CK_MECHANISM_TYPE)mechanism, NULL, 0 };
    size_t head = 0;
    CK_ULONG len = 0;
    CK_RV rv;

    *wrap_rv = CKR_OK;
    if (mechanism == (uint32_t)CKM_AES_CBC_PAD) {
        head = KG_P11_CBC_IV_LEN;
        KG_GUARD(KG_P11_CHECK(p11->fn->C_GenerateRandom(s, out->bytes, KG_P11_CBC_IV_LEN), "C_GenerateRandom"));
        mech.pParameter = out->bytes;
        mech.ulParameterLen = KG_P11_CBC_IV_LEN;
    }
    rv = p11->fn->C_WrapKey(s, &mech, mwk, key, NULL, &len);
    *wrap_rv = rv;
    if (kg_p11_rv_is_stale_handle(rv)) {
        kg_p11_mwk_forget(p11, mwk);
    }
    KG_GUARD(KG_P11_CHECK(rv, "C_WrapKey"));
    if (len == 0 || len > sizeof(out->bytes) - head) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("C_WrapKey wants %lu bytes, blob holds %zu", (unsigned long)len, sizeof(out->bytes) - head);
        return KG_RESULT_ERROR;
    }
    rv = p11->fn->C_WrapKey(s, &mech, mwk, key, out->bytes + head, &len);
    *wrap_rv = rv;
    if (kg_p11_rv_is_stale_handle(rv)) {
        kg_p11_mwk_forget(p11, mwk);
    }
    KG_GUARD(KG_P11_CHECK(rv, "C_WrapKey"));
    /* The second call may not claim more than the first one asked for. */
    if (len == 0 || len > sizeof(out->bytes) - head) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("C_WrapKey returned %lu bytes, blob holds %zu", (unsigned long)len,
                        sizeof(out->bytes) - head);
        return KG_RESULT_ERROR;
    }
    out->len = (uint32_t)(len + head);
    out->mechanism = mechanism;
    return KG_RESULT_OK;
}

/* Does `rv` from a CKM_AES_KEY_WRAP C_WrapKey say the key's encoding is
 * not a multiple of 8 bytes? Tokens use any of these for it. */
static bool kg_p11_rv_is_wrap_length(CK_RV rv)
{
    return rv == CKR_KEY_SIZE_RANGE || rv == CKR_DATA_LEN_RANGE || rv == CKR_KEY_NOT_WRAPPABLE ||
           rv == CKR_WRAPPED_KEY_LEN_RANGE;
}

kg_result kg_p11_wrap_under_mwk(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk, CK_OBJECT_HANDLE key,
                             struct kg_p11_blob *out)
{
    uint32_t generation = 0;
    CK_RV rv = CKR_OK;
    kg_result rc;

    kg_p11_blob_clear(out);
    if (p11->n_wrap_mechs == 0) {
        kg_error_set(KG_ERR_HSM_MECHANISM, __FILE__, __LINE__);
        kg_error_detail("no MWK wrapping mechanism chosen for token '%s'", p11->token_label);
        return KG_RESULT_ERROR;
    }
    /* The generation of the handle actually used, not the current one: a
     * rotation may have moved on since the caller got `mwk`. */
    KG_GUARD(kg_p11_mwk_generation_of(p11, s, mwk, &generation));
    rc = kg_p11_wrap_with(p11, s, mwk, key, p11->wrap_mechs[0], out, &rv);
    if (kg_failed(rc) && p11->wrap_mechs[0] == (uint32_t)CKM_AES_KEY_WRAP && p11->n_wrap_mechs > 1 &&
        kg_p11_rv_is_wrap_length(rv)) {
        /* RFC 3394 takes only whole 64-bit blocks (a PKCS#8 private key
         * or a 20-byte HMAC key is not): the next acceptable mechanism
         * takes it, and the blob says which. */
        kg_error_clear();
        kg_p11_blob_clear(out);
        rc = kg_p11_wrap_with(p11, s, mwk, key, p11->wrap_mechs[1], out, &rv);
    }
    if (kg_failed(rc)) {
        kg_p11_blob_clear(out);
        return rc;
    }
    out->mwk_generation = generation;
    return KG_RESULT_OK;
}

kg_result kg_p11_finish_all(struct kg_p11 *p11, CK_SESSION_HANDLE s, const CK_OBJECT_HANDLE *objs, size_t n,
                           kg_result rc)
{
    bool must_close = false;

    if (s == CK_INVALID_HANDLE) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (objs[i] == CK_INVALID_HANDLE) {
            continue;
        }
        CK_RV rv = p11->fn->C_DestroyObject(s, objs[i]);

        if (rv != CKR_OK) {
            if (kg_ok(rc)) {
                rc = KG_P11_CHECK(rv, "C_DestroyObject");
            }
            must_close = true;
        }
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), must_close);
    return rc;
}

kg_result kg_p11_finish(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, kg_result rc)
{
    return kg_p11_finish_all(p11, s, &key, 1, rc);
}

/* Is `blob` shaped like what kg_p11_wrap_under_mwk makes with its own
 * mechanism? RFC 5649: the AIV block and at least one data block, in
 * 64-bit blocks; RFC 3394: the IV and at least two data blocks; CBC-PAD:
 * the IV and at least one 16-byte block. */
static bool kg_p11_blob_shape_ok(const struct kg_p11_blob *blob)
{
    if (blob->len > sizeof(blob->bytes)) {
        return false;
    }
    switch (blob->mechanism) {
    case CKM_AES_KEY_WRAP_PAD:
        return blob->len >= 16 && blob->len % 8 == 0;
    case CKM_AES_KEY_WRAP:
        return blob->len >= 24 && blob->len % 8 == 0;
    case CKM_AES_CBC_PAD:
        return blob->len >= KG_P11_CBC_IV_LEN + 16 && (blob->len - KG_P11_CBC_IV_LEN) % 16 == 0;
    default:
        return false;
    }
}

kg_result kg_p11_mwk_for_blob(struct kg_p11 *p11, CK_SESSION_HANDLE s, const struct kg_p11_blob *blob,
                              CK_OBJECT_HANDLE *h)
{
    *h = CK_INVALID_HANDLE;
    /* A blob of a mechanism we never wrap with, or not of its shape,
     * never reaches the HSM. The blob's own mechanism decides, not the
     * one chosen now: a store written under CKM_AES_KEY_WRAP stays
     * readable when the token later offers CKM_AES_KEY_WRAP_PAD. */
    if (blob->mwk_generation == 0 || !kg_p11_blob_shape_ok(blob)) {
        kg_error_set(KG_ERR_HSM_UNWRAP, __FILE__, __LINE__);
        kg_error_detail("blob not unwrappable here: mechanism 0x%x, MWK generation %u, %u bytes "
                        "(supported: CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP, CKM_AES_CBC_PAD; generation 1 or "
                        "later)",
                        blob->mechanism, blob->mwk_generation, blob->len);
        return KG_RESULT_ERROR;
    }
    return kg_p11_mwk_for_generation(p11, s, blob->mwk_generation, h);
}

kg_result kg_p11_blob_unwrap_params(const struct kg_p11_blob *blob, CK_MECHANISM *mech, const uint8_t **data,
                                    CK_ULONG *len)
{
    KG_ENSURE(kg_p11_blob_shape_ok(blob), KG_ERR_HSM_UNWRAP);
    *mech = (CK_MECHANISM){ (CK_MECHANISM_TYPE)blob->mechanism, NULL, 0 };
    *data = blob->bytes;
    *len = blob->len;
    if (blob->mechanism == (uint32_t)CKM_AES_CBC_PAD) {
        /* PKCS#11 does not write through pParameter; the cast drops const. */
        mech->pParameter = (CK_VOID_PTR)blob->bytes;
        mech->ulParameterLen = KG_P11_CBC_IV_LEN;
        *data = blob->bytes + KG_P11_CBC_IV_LEN;
        *len = blob->len - KG_P11_CBC_IV_LEN;
    }
    return KG_RESULT_OK;
}

static bool kg_p11_aes_bits_ok(uint32_t bits) { return bits == 128 || bits == 192 || bits == 256; }

kg_result kg_p11_generate_aes(struct kg_p11 *p11, uint32_t bits, struct kg_p11_blob *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_ULONG value_len = bits / 8;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
        { CKA_ENCRYPT, &yes, sizeof(yes) },
        { CKA_DECRYPT, &yes, sizeof(yes) },
    };
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && out != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    if (!kg_p11_aes_bits_ok(bits)) {
        kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
        kg_error_detail("AES key length %u bits; 128, 192 or 256 supported", bits);
        return KG_RESULT_ERROR;
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GenerateKey(s, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &key),
                                   "C_GenerateKey"));
    KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, key, out));
    KG_GOTO_GUARD(rc, kg_p11_digest_into_blob(p11, s, key, out));
out:
    rc = kg_p11_finish(p11, s, key, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(out);
    }
    return rc;
}

/* Bytes a secret key of `kind` may have on import and export. HMAC keys:
 * from 16 (NIST SP 800-107's floor) up to KG_P11_MAX_KEY; the gateway
 * narrows that to the hash's output length. */
static kg_result kg_p11_secret_bytes_ok(enum kg_p11_key_kind kind, size_t n)
{
    if (kind == KG_P11_KEY_AES) {
        if (!kg_p11_aes_key_bytes_ok(n)) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("AES key of %zu bytes; 16, 24 or 32 supported", n);
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    if (kind == KG_P11_KEY_HMAC) {
        if (n < 16 || n > KG_P11_MAX_KEY) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("HMAC key of %zu bytes; 16 to %u supported", n, KG_P11_MAX_KEY);
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    if (kind == KG_P11_KEY_SECRET) {
        if (n < 1 || n > KG_P11_MAX_SECRET_DATA) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("secret data of %zu bytes; 1 to %u supported", n, KG_P11_MAX_SECRET_DATA);
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    if (kind == KG_P11_KEY_DES3) {
        if (n != KG_P11_DES3_BYTES) {
            kg_error_set(KG_ERR_BAD_KEY_LENGTH, __FILE__, __LINE__);
            kg_error_detail("Triple DES key of %zu bytes; %u supported", n, KG_P11_DES3_BYTES);
            return KG_RESULT_ERROR;
        }
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
    kg_error_detail("only AES, HMAC and Triple DES keys and secret data are imported or exported in plaintext");
    return KG_RESULT_ERROR;
}

kg_result kg_p11_import_secret(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_secret *key,
                               struct kg_p11_blob *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    bool generic = kind == KG_P11_KEY_HMAC || kind == KG_P11_KEY_SECRET;
    CK_KEY_TYPE ktype = generic ? CKK_GENERIC_SECRET : kind == KG_P11_KEY_DES3 ? CKK_DES3 : CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    /* The use flags of the wrapped object do not survive the wrap (every
     * use unwraps it with its own flags, kg_p11_key_load); they are set
     * only because SoftHSM wants a usable object. */
    CK_ATTRIBUTE_TYPE use1 = generic ? CKA_SIGN : CKA_ENCRYPT;
    CK_ATTRIBUTE_TYPE use2 = generic ? CKA_VERIFY : CKA_DECRYPT;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && key != NULL && out != NULL, KG_ERR_INTERNAL);
    kg_p11_blob_clear(out);
    KG_GUARD(kg_p11_secret_bytes_ok(kind, key->len));
    /* CKA_VALUE points straight into the locked kg_secret: no copy of the
     * key bytes is made on our side, so there is nothing else to wipe. */
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
        { use1, &yes, sizeof(yes) },
        { use2, &yes, sizeof(yes) },
        { CKA_VALUE, key->data, key->len },
    };

    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_CreateObject(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj),
                                   "C_CreateObject"));
    KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, obj, out));
    KG_GOTO_GUARD(rc, kg_p11_digest_into_blob(p11, s, obj, out));
out:
    rc = kg_p11_finish(p11, s, obj, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(out);
    }
    return rc;
}

kg_result kg_p11_import_aes(struct kg_p11 *p11, const struct kg_secret *key, struct kg_p11_blob *out)
{
    return kg_p11_import_secret(p11, KG_P11_KEY_AES, key, out);
}

/*
 * Is `got` bytes read back from the HSM the key of `want` bytes? SoftHSM
 * 2.6.1 does not strip RFC 5649 padding when it unwraps a generic secret,
 * so an HMAC key comes back zero-padded to a multiple of 8 bytes: accept
 * exactly that much more, checked to be zeros by the caller.
 */
static bool kg_p11_read_len_ok(enum kg_p11_key_kind kind, CK_ULONG got, size_t want)
{
    if (got == CK_UNAVAILABLE_INFORMATION) {
        return false;
    }
    if (kind == KG_P11_KEY_AES) {
        return kg_p11_aes_key_bytes_ok(got) && (want == 0 || got == want);
    }
    if (kind == KG_P11_KEY_DES3) {
        return got == KG_P11_DES3_BYTES;
    }
    return got >= want && got <= ((want + 7u) & ~(size_t)7u);
}

/* kg_p11_read_len_ok, or KG_ERR_HSM_UNWRAP saying why not. */
static kg_result kg_p11_value_len_ok(enum kg_p11_key_kind kind, CK_ULONG got, size_t want)
{
    const char *kind_name = kind == KG_P11_KEY_AES ? "AES" : kind == KG_P11_KEY_SECRET ? "secret data" : "HMAC";

    if (kg_p11_read_len_ok(kind, got, want)) {
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_HSM_UNWRAP, __FILE__, __LINE__);
    if (got == CK_UNAVAILABLE_INFORMATION) {
        kg_error_detail("unwrapped key is longer than the %zu bytes of the %s key of ours", want, kind_name);
    } else {
        kg_error_detail("unwrapped key has %lu bytes; not the %s key of ours", (unsigned long)got, kind_name);
    }
    return KG_RESULT_ERROR;
}

/* The most bytes kg_p11_read_len_ok accepts for a key of `want` (> 0) bytes. */
static size_t kg_p11_read_room(enum kg_p11_key_kind kind, size_t want)
{
    if (kind == KG_P11_KEY_DES3) {
        return KG_P11_DES3_BYTES;
    }
    return kind == KG_P11_KEY_AES ? want : (want + 7u) & ~(size_t)7u;
}

/*
 * Read CKA_VALUE of `obj` into a new locked secret (*out, the caller's).
 * With the length known (`want` > 0, from the store's row) one call reads
 * it into room for the longest form accepted: a SoftHSM call less per Get.
 * A longer value does not fit (CKR_BUFFER_TOO_SMALL) and is not our key.
 * Otherwise the length is asked first.
 */
static kg_result kg_p11_read_value(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, size_t want,
                                   enum kg_p11_key_kind kind, struct kg_secret **out)
{
    CK_ATTRIBUTE val = { CKA_VALUE, NULL, 0 };
    CK_RV rv;

    *out = NULL;
    if (want == 0) {
        KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, &val, 1), "C_GetAttributeValue"));
        KG_GUARD(kg_p11_value_len_ok(kind, val.ulValueLen, want));
    }
    KG_GUARD(kg_secret_alloc(want != 0 ? kg_p11_read_room(kind, want) : val.ulValueLen, out));
    val.pValue = (*out)->data;
    val.ulValueLen = (*out)->cap;
    rv = p11->fn->C_GetAttributeValue(s, obj, &val, 1);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        val.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        rv = CKR_OK;
    }
    if (kg_failed(KG_P11_CHECK(rv, "C_GetAttributeValue")) ||
        kg_failed(kg_p11_value_len_ok(kind, val.ulValueLen, want))) {
        kg_secret_free(*out);
        *out = NULL;
        return KG_RESULT_ERROR;
    }
    if (val.ulValueLen > (*out)->cap) { /* a token that says it wrote more than the room */
        kg_secret_free(*out);
        *out = NULL;
        KG_ENSURE(false, KG_ERR_HSM);
    }
    (*out)->len = val.ulValueLen;
    return KG_RESULT_OK;
}

kg_result kg_p11_export_key(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, size_t bytes,
                            struct kg_secret **out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE to_destroy = CK_INVALID_HANDLE;
    struct kg_secret *sec = NULL;
    uint8_t pad = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(p11 != NULL && ref != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(ref->storage != KG_P11_STORED_PUBLIC, KG_ERR_INTERNAL);
    if (ref->kind == KG_P11_KEY_DES3) {
        bytes = KG_P11_DES3_BYTES; /* whatever the Cryptographic Length says */
    }
    if (ref->kind == KG_P11_KEY_HMAC || ref->kind == KG_P11_KEY_SECRET || bytes != 0) {
        /* An HMAC key's or a secret's length comes only from the row. */
        KG_GUARD(kg_p11_secret_bytes_ok(ref->kind, bytes));
    } else {
        KG_GUARD(kg_p11_secret_bytes_ok(ref->kind, 16));
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    /* KG_P11_USE_READ: a non-sensitive session object; a resident key is
     * refused there (KG_ERR_DENIED), it never leaves the HSM. */
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, ref, KG_P11_USE_READ, &obj, &to_destroy));
    KG_GOTO_GUARD(rc, kg_p11_read_value(p11, s, obj, bytes, ref->kind, &sec));
    if (ref->kind == KG_P11_KEY_HMAC || ref->kind == KG_P11_KEY_SECRET) {
        /* Trim SoftHSM's padding; anything but zeros there is not our key. */
        for (size_t i = bytes; i < sec->len; i++) {
            pad |= sec->data[i];
        }
        KG_GOTO_ENSURE(rc, pad == 0, KG_ERR_HSM_UNWRAP);
        sec->len = bytes; /* the dropped tail is zeros: nothing to wipe */
    }
    *out = sec;
    sec = NULL;
out:
    rc = kg_p11_finish(p11, s, to_destroy, rc);
    if (kg_failed(rc) && *out != NULL) {
        /* Only the destroy can fail after *out was set: still fail closed. */
        kg_secret_free(*out);
        *out = NULL;
    }
    kg_secret_free(sec);
    return rc;
}

kg_result kg_p11_export_plaintext(struct kg_p11 *p11, const struct kg_p11_blob *blob, struct kg_secret **out)
{
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_AES, .storage = KG_P11_STORED_WRAPPED, .blob = blob };

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(blob != NULL, KG_ERR_INTERNAL);
    return kg_p11_export_key(p11, &ref, 0, out);
}

/* For kg_p11_tls.c: the gateway's TLS key is found and used through libp11. */
struct PKCS11_slot_st *kg_p11_libp11_slot(struct kg_p11 *p11) { return p11->slot; }
