/*
 * kg_p11.c - the token, the MWK and the key operations of kg_p11.h.
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

/* CLOCK_MONOTONIC in ms, for the re-check interval. */
static uint64_t kg_p11_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Parse a CKA_ID of `len` bytes as a generation: 1 to 4294967295 in
 * decimal, no sign, no leading zero. False for anything else. */
static bool kg_p11_mwk_parse_id(const char *id, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 10 || id[0] == '0') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (id[i] < '0' || id[i] > '9') {
            return false;
        }
        v = v * 10u + (uint64_t)(id[i] - '0');
    }
    if (v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* Is `obj` a non-extractable AES key that can unwrap? We refuse to wrap
 * customer keys under something an attacker or a mistake created. */
static kg_result kg_p11_mwk_check_object(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
    CK_KEY_TYPE ktype = 0;
    CK_BBOOL extractable = CK_TRUE;
    CK_BBOOL unwrap = CK_FALSE;
    CK_ATTRIBUTE check[] = {
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
        { CKA_UNWRAP, &unwrap, sizeof(unwrap) },
    };

    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, check, sizeof(check) / sizeof(check[0])),
                          "C_GetAttributeValue"));
    if (ktype != CKK_AES || extractable != CK_FALSE || unwrap != CK_TRUE) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("object '%s' on token '%s' is not a non-extractable AES unwrapping key; "
                        "refusing to use it as the MWK",
                        p11->mwk_label, p11->token_label);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* The generation in `obj`'s CKA_ID; *ok false when it holds none. */
static kg_result kg_p11_mwk_read_generation(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                                            uint32_t *generation, bool *ok)
{
    char id[16];
    CK_ATTRIBUTE a = { CKA_ID, id, sizeof(id) };
    CK_RV rv = p11->fn->C_GetAttributeValue(s, obj, &a, 1);

    *ok = false;
    *generation = 0;
    if (rv == CKR_BUFFER_TOO_SMALL) {
        return KG_RESULT_OK; /* far too long to be a generation */
    }
    KG_GUARD(KG_P11_CHECK(rv, "C_GetAttributeValue"));
    if (a.ulValueLen != CK_UNAVAILABLE_INFORMATION && a.ulValueLen <= sizeof(id)) {
        *ok = kg_p11_mwk_parse_id(id, a.ulValueLen, generation);
    }
    return KG_RESULT_OK;
}

/* Sort a few generations ascending (insertion sort: at most
 * KG_P11_MWK_MAX_GENERATIONS entries). */
static void kg_p11_mwk_sort(struct kg_p11_mwk_gen *gens, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        struct kg_p11_mwk_gen g = gens[i];
        uint32_t j = i;

        while (j > 0 && gens[j - 1].generation > g.generation) {
            gens[j] = gens[j - 1];
            j--;
        }
        gens[j] = g;
    }
}

/*
 * Look up every MWK generation on session `s` into gens[], ascending; *n is
 * 0 when the token has none. Each object with the label must be a
 * non-extractable AES unwrapping key whose CKA_ID is its generation, one
 * object per generation: a second object for a generation, or one with
 * no generation next to others, would make the key that unwraps a blob
 * ambiguous. A single object with the label must have a generation too.
 */
static kg_result kg_p11_mwk_scan(struct kg_p11 *p11, CK_SESSION_HANDLE s,
                                 struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS], uint32_t *n)
{
    CK_FUNCTION_LIST_PTR fn = p11->fn;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, p11->mwk_label, strlen(p11->mwk_label) },
    };
    CK_OBJECT_HANDLE objs[KG_P11_MWK_MAX_GENERATIONS + 1];
    CK_ULONG found = 0;
    bool finding = false;
    bool all_ids = true;
    kg_result rc = KG_RESULT_OK;

    *n = 0;
    KG_GOTO_GUARD(rc, KG_P11_CHECK(fn->C_FindObjectsInit(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0])),
                                   "C_FindObjectsInit"));
    finding = true;
    KG_GOTO_GUARD(rc, KG_P11_CHECK(fn->C_FindObjects(s, objs, KG_P11_MWK_MAX_GENERATIONS + 1, &found),
                                   "C_FindObjects"));
    finding = false;
    KG_GOTO_GUARD(rc, KG_P11_CHECK(fn->C_FindObjectsFinal(s), "C_FindObjectsFinal"));
    if (found > KG_P11_MWK_MAX_GENERATIONS) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("more than %u secret keys labelled '%s' on token '%s': retire old MWK generations",
                        KG_P11_MWK_MAX_GENERATIONS, p11->mwk_label, p11->token_label);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    for (CK_ULONG i = 0; i < found; i++) {
        bool ok = false;

        gens[i].h = objs[i];
        KG_GOTO_GUARD(rc, kg_p11_mwk_read_generation(p11, s, objs[i], &gens[i].generation, &ok));
        all_ids = all_ids && ok;
    }
    kg_p11_mwk_sort(gens, (uint32_t)found);
    for (CK_ULONG i = 1; i < found && all_ids; i++) {
        all_ids = gens[i].generation != gens[i - 1].generation;
    }
    if (found > 1 && !all_ids) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("more than one secret key labelled '%s' on token '%s' for one MWK generation (or "
                        "without one): exactly one MWK per generation expected, CKA_ID = the generation",
                        p11->mwk_label, p11->token_label);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    for (CK_ULONG i = 0; i < found; i++) {
        KG_GOTO_GUARD(rc, kg_p11_mwk_check_object(p11, s, gens[i].h));
    }
    if (found == 1 && !all_ids) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("MWK '%s' on token '%s' has no generation in its CKA_ID (decimal text expected)",
                        p11->mwk_label, p11->token_label);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    *n = (uint32_t)found;
out:
    if (finding) {
        (void)fn->C_FindObjectsFinal(s);
    }
    return rc;
}

/* Replace the cached table with `gens` read under pool epoch `epoch`.
 * Caller holds mwk_lock. */
static void kg_p11_mwk_install_locked(struct kg_p11 *p11, const struct kg_p11_mwk_gen *gens, uint32_t n,
                                      uint64_t epoch)
{
    memcpy(p11->mwk_gens, gens, n * sizeof(gens[0]));
    p11->mwk_count = n;
    p11->mwk_epoch = epoch;
    p11->mwk_checked_ms = kg_p11_now_ms();
    if (n > 0) {
        __atomic_store_n(&p11->mwk_generation, gens[n - 1].generation, __ATOMIC_RELAXED);
    }
}

/*
 * Read the table from the token and cache it. The lookup runs without
 * mwk_lock: a hung HSM call there must stall only its own request. Two
 * threads may look it up at once; both find the same objects. Cached under
 * the epoch read before the lookup: if sessions were lost meanwhile, the
 * next operation looks again.
 */
static kg_result kg_p11_mwk_refresh(struct kg_p11 *p11, CK_SESSION_HANDLE s)
{
    struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t n = 0;
    uint64_t epoch = 0;
    kg_result rc;

    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    rc = kg_p11_mwk_scan(p11, s, gens, &n);
    pthread_mutex_lock(&p11->mwk_lock);
    if (kg_ok(rc)) {
        kg_p11_mwk_install_locked(p11, gens, n, epoch);
    } else {
        p11->mwk_checked_ms = kg_p11_now_ms(); /* do not hammer a failing token */
    }
    pthread_mutex_unlock(&p11->mwk_lock);
    return rc;
}

/* The cached handle of `generation` (0: the current one) if the cache is
 * valid for `epoch`; CK_INVALID_HANDLE otherwise. Caller holds mwk_lock. */
static CK_OBJECT_HANDLE kg_p11_mwk_cached_locked(const struct kg_p11 *p11, uint32_t generation, uint64_t epoch)
{
    if (p11->mwk_count == 0 || p11->mwk_epoch != epoch) {
        return CK_INVALID_HANDLE;
    }
    if (generation == 0) {
        return p11->mwk_gens[p11->mwk_count - 1].h;
    }
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (p11->mwk_gens[i].generation == generation) {
            return p11->mwk_gens[i].h;
        }
    }
    return CK_INVALID_HANDLE;
}

kg_result kg_p11_mwk_handle(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    uint64_t epoch = 0;
    bool recheck = false;

    *h = CK_INVALID_HANDLE;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    pthread_mutex_lock(&p11->mwk_lock);
    *h = kg_p11_mwk_cached_locked(p11, 0, epoch);
    recheck = kg_p11_now_ms() - p11->mwk_checked_ms >= KG_P11_MWK_RECHECK_MS;
    if (*h != CK_INVALID_HANDLE && recheck) {
        /* This thread does the periodic look; the others keep going. */
        p11->mwk_checked_ms = kg_p11_now_ms();
    }
    pthread_mutex_unlock(&p11->mwk_lock);
    if (*h != CK_INVALID_HANDLE && !recheck) {
        return KG_RESULT_OK;
    }
    if (kg_failed(kg_p11_mwk_refresh(p11, s))) {
        if (*h == CK_INVALID_HANDLE) {
            return KG_RESULT_ERROR;
        }
        /* Only the periodic look for a newer generation failed (e.g. a
         * rotator is creating one right now): the cached current one is
         * still good; look again next interval. */
        kg_error_clear();
        return KG_RESULT_OK;
    }
    pthread_mutex_lock(&p11->mwk_lock);
    *h = kg_p11_mwk_cached_locked(p11, 0, p11->mwk_epoch);
    pthread_mutex_unlock(&p11->mwk_lock);
    if (*h == CK_INVALID_HANDLE) {
        kg_error_set(KG_ERR_HSM_NO_MWK, __FILE__, __LINE__);
        kg_error_detail("no master wrapping key labelled '%s' on token '%s': run `kmipgw init`", p11->mwk_label,
                        p11->token_label);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_p11_mwk_for_generation(struct kg_p11 *p11, CK_SESSION_HANDLE s, uint32_t generation,
                                    CK_OBJECT_HANDLE *h)
{
    uint64_t epoch = 0;
    bool look = false;

    *h = CK_INVALID_HANDLE;
    KG_ENSURE(generation != 0, KG_ERR_INTERNAL);
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    pthread_mutex_lock(&p11->mwk_lock);
    *h = kg_p11_mwk_cached_locked(p11, generation, epoch);
    /* A valid table without the generation: look again only for a newer
     * one (a rotation we have not seen); an older one was retired. */
    look = *h == CK_INVALID_HANDLE &&
           (p11->mwk_count == 0 || p11->mwk_epoch != epoch || generation > p11->mwk_generation);
    pthread_mutex_unlock(&p11->mwk_lock);
    if (look) {
        KG_GUARD(kg_p11_mwk_refresh(p11, s));
        pthread_mutex_lock(&p11->mwk_lock);
        *h = kg_p11_mwk_cached_locked(p11, generation, p11->mwk_epoch);
        pthread_mutex_unlock(&p11->mwk_lock);
    }
    if (*h == CK_INVALID_HANDLE) {
        kg_error_set(KG_ERR_HSM_UNWRAP, __FILE__, __LINE__);
        kg_error_detail("MWK generation %u is not on token '%s' (retired, or not made by this token)", generation,
                        p11->token_label);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* An operation found MWK handle `h` invalid: look the table up again next
 * time, unless someone already did. The failed operation is not retried. */
void kg_p11_mwk_forget(struct kg_p11 *p11, CK_OBJECT_HANDLE h)
{
    pthread_mutex_lock(&p11->mwk_lock);
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (p11->mwk_gens[i].h == h) {
            p11->mwk_count = 0;
            break;
        }
    }
    pthread_mutex_unlock(&p11->mwk_lock);
}

/* The generation of MWK handle `mwk`: from the table, else (the table was
 * read again since the caller got the handle) from the object's CKA_ID. */
static kg_result kg_p11_mwk_generation_of(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk,
                                          uint32_t *generation)
{
    bool ok = false;

    *generation = 0;
    pthread_mutex_lock(&p11->mwk_lock);
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (p11->mwk_gens[i].h == mwk) {
            *generation = p11->mwk_gens[i].generation;
        }
    }
    pthread_mutex_unlock(&p11->mwk_lock);
    if (*generation != 0) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_p11_mwk_read_generation(p11, s, mwk, generation, &ok));
    KG_ENSURE(ok, KG_ERR_HSM);
    return KG_RESULT_OK;
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
    if (p11->mwk_lock_ready) {
        pthread_mutex_destroy(&p11->mwk_lock);
    }
    free(p11->token_label);
    free(p11->mwk_label);
    OPENSSL_cleanse(p11, sizeof(*p11));
    free(p11);
}

/*
 * Generate MWK generation `generation` on session `s`: an AES-256 token
 * object, sensitive, never extractable, wrap/unwrap only, CKA_ID = the
 * generation in decimal.
 */
static kg_result kg_p11_mwk_generate(struct kg_p11 *p11, CK_SESSION_HANDLE s, uint32_t generation,
                                     CK_OBJECT_HANDLE *h)
{
    CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_ULONG value_len = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    char id[16];
    int id_len = snprintf(id, sizeof(id), "%u", generation);
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &yes, sizeof(yes) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &no, sizeof(no) },
        { CKA_WRAP, &yes, sizeof(yes) },
        { CKA_UNWRAP, &yes, sizeof(yes) },
        { CKA_ENCRYPT, &no, sizeof(no) },
        { CKA_DECRYPT, &no, sizeof(no) },
        { CKA_LABEL, p11->mwk_label, strlen(p11->mwk_label) },
        { CKA_ID, id, id_len > 0 ? (CK_ULONG)id_len : 0 },
    };

    KG_ENSURE(generation != 0 && id_len > 0 && (size_t)id_len < sizeof(id), KG_ERR_INTERNAL);
    return KG_P11_CHECK(p11->fn->C_GenerateKey(s, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), h),
                        "C_GenerateKey");
}

kg_result kg_p11_init_mwk(struct kg_p11 *p11, bool *created)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t n = 0;
    uint64_t epoch = 0;
    bool locked = false;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && created != NULL, KG_ERR_INTERNAL);
    *created = false;
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    /* Serialise with every other creator in this process; look on the
     * token itself rather than trusting the cache, another process may
     * have run `kmipgw init` since we opened. */
    pthread_mutex_lock(&p11->mwk_lock);
    locked = true;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    KG_GOTO_GUARD(rc, kg_p11_mwk_scan(p11, s, gens, &n));
    if (n == 0) {
        KG_GOTO_GUARD(rc, kg_p11_mwk_generate(p11, s, 1, &h));
        gens[0] = (struct kg_p11_mwk_gen){ .generation = 1, .h = h };
        n = 1;
        *created = true;
    }
    kg_p11_mwk_install_locked(p11, gens, n, epoch);
out:
    if (locked) {
        pthread_mutex_unlock(&p11->mwk_lock);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

kg_result kg_p11_mwk_add_generation(struct kg_p11 *p11, uint32_t *generation)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t n = 0;
    uint32_t next = 0;
    uint64_t epoch = 0;
    bool locked = false;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && generation != NULL, KG_ERR_INTERNAL);
    *generation = 0;
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    pthread_mutex_lock(&p11->mwk_lock);
    locked = true;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    KG_GOTO_GUARD(rc, kg_p11_mwk_scan(p11, s, gens, &n));
    if (n == 0) {
        kg_error_set(KG_ERR_HSM_NO_MWK, __FILE__, __LINE__);
        kg_error_detail("no master wrapping key labelled '%s' on token '%s': run `kmipgw init`", p11->mwk_label,
                        p11->token_label);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (n == KG_P11_MWK_MAX_GENERATIONS || gens[n - 1].generation == UINT32_MAX) {
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("token '%s' holds %u MWK generations (at most %u): retire old ones first", p11->token_label,
                        n, KG_P11_MWK_MAX_GENERATIONS);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    next = gens[n - 1].generation + 1;
    KG_GOTO_GUARD(rc, kg_p11_mwk_generate(p11, s, next, &h));
    /* Another process may have made the same generation meanwhile: the
     * scan then finds two and fails, and ours goes again, so the token is
     * left with at most the other one. */
    if (kg_failed(rc = kg_p11_mwk_scan(p11, s, gens, &n))) {
        CK_RV rv = p11->fn->C_DestroyObject(s, h);

        kg_error_detail("MWK generation %u was created twice at once (another rotate-master?); ours was %s: "
                        "run again",
                        next, rv == CKR_OK ? "destroyed" : "NOT destroyed, remove the duplicate by hand");
        goto out;
    }
    kg_p11_mwk_install_locked(p11, gens, n, epoch);
    *generation = next;
out:
    if (locked) {
        pthread_mutex_unlock(&p11->mwk_lock);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

kg_result kg_p11_mwk_list(struct kg_p11 *p11, uint32_t *gens, size_t cap, size_t *n)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && n != NULL && (gens != NULL || cap == 0), KG_ERR_INTERNAL);
    *n = 0;
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_mwk_refresh(p11, s));
    pthread_mutex_lock(&p11->mwk_lock);
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (i < cap) {
            gens[i] = p11->mwk_gens[i].generation;
        }
    }
    *n = p11->mwk_count;
    pthread_mutex_unlock(&p11->mwk_lock);
out:
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

kg_result kg_p11_mwk_retire(struct kg_p11 *p11, uint32_t generation)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS];
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    uint32_t n = 0;
    uint64_t epoch = 0;
    bool locked = false;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    pthread_mutex_lock(&p11->mwk_lock);
    locked = true;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    KG_GOTO_GUARD(rc, kg_p11_mwk_scan(p11, s, gens, &n));
    for (uint32_t i = 0; i < n; i++) {
        if (gens[i].generation == generation) {
            h = gens[i].h;
        }
    }
    if (h == CK_INVALID_HANDLE) {
        kg_error_set(KG_ERR_NOT_FOUND, __FILE__, __LINE__);
        kg_error_detail("no MWK generation %u on token '%s'", generation, p11->token_label);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (generation == gens[n - 1].generation) {
        kg_error_set(KG_ERR_DENIED, __FILE__, __LINE__);
        kg_error_detail("MWK generation %u is the current one; it is never retired", generation);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_DestroyObject(s, h), "C_DestroyObject"));
    KG_GOTO_GUARD(rc, kg_p11_mwk_scan(p11, s, gens, &n));
    kg_p11_mwk_install_locked(p11, gens, n, epoch);
out:
    if (locked) {
        pthread_mutex_unlock(&p11->mwk_lock);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

void kg_p11_blob_clear(struct kg_p11_blob *blob)
{
    blob->mechanism = 0;
    blob->mwk_generation = 0;
    blob->len = 0;
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
    kg_error_set(KG_ERR_UNSUPPORTED_ALGORITHM, __FILE__, __LINE__);
    kg_error_detail("only AES and HMAC keys are imported or exported in plaintext");
    return KG_RESULT_ERROR;
}

kg_result kg_p11_import_secret(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_secret *key,
                               struct kg_p11_blob *out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = kind == KG_P11_KEY_HMAC ? CKK_GENERIC_SECRET : CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    /* The use flags of the wrapped object do not survive the wrap (every
     * use unwraps it with its own flags, kg_p11_key_load); they are set
     * only because SoftHSM wants a usable object. */
    CK_ATTRIBUTE_TYPE use1 = kind == KG_P11_KEY_HMAC ? CKA_SIGN : CKA_ENCRYPT;
    CK_ATTRIBUTE_TYPE use2 = kind == KG_P11_KEY_HMAC ? CKA_VERIFY : CKA_DECRYPT;
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
    return got >= want && got <= ((want + 7u) & ~(size_t)7u);
}

kg_result kg_p11_export_key(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, size_t bytes,
                            struct kg_secret **out)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE to_destroy = CK_INVALID_HANDLE;
    CK_ATTRIBUTE val = { CKA_VALUE, NULL, 0 };
    struct kg_secret *sec = NULL;
    uint8_t pad = 0;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(p11 != NULL && ref != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(ref->storage != KG_P11_STORED_PUBLIC, KG_ERR_INTERNAL);
    if (ref->kind == KG_P11_KEY_HMAC || bytes != 0) {
        /* An HMAC key's length comes only from its Cryptographic Length. */
        KG_GUARD(kg_p11_secret_bytes_ok(ref->kind, bytes));
    } else {
        KG_GUARD(kg_p11_secret_bytes_ok(ref->kind, 16));
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    /* KG_P11_USE_READ: a non-sensitive session object; a resident key is
     * refused there (KG_ERR_DENIED), it never leaves the HSM. */
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, ref, KG_P11_USE_READ, &obj, &to_destroy));
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, &val, 1), "C_GetAttributeValue"));
    if (!kg_p11_read_len_ok(ref->kind, val.ulValueLen, bytes)) {
        kg_error_set(KG_ERR_HSM_UNWRAP, __FILE__, __LINE__);
        kg_error_detail("unwrapped key has %lu bytes; not the %s key of ours",
                        (unsigned long)val.ulValueLen, ref->kind == KG_P11_KEY_AES ? "AES" : "HMAC");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_secret_alloc(val.ulValueLen, &sec));
    val.pValue = sec->data;
    KG_GOTO_GUARD(rc, KG_P11_CHECK(p11->fn->C_GetAttributeValue(s, obj, &val, 1), "C_GetAttributeValue"));
    KG_GOTO_ENSURE(rc, val.ulValueLen <= sec->cap && kg_p11_read_len_ok(ref->kind, val.ulValueLen, bytes),
                   KG_ERR_HSM);
    sec->len = val.ulValueLen;
    if (ref->kind == KG_P11_KEY_HMAC) {
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
