/*
 * kg_p11_mwk.c - the master wrapping key's generations on the token.
 *
 * Each generation is an AES-256 token object with the configured label and
 * CKA_ID = its number in decimal; the highest is current. Handles are cached
 * per pool epoch (they may not survive a lost session or a re-login), and a
 * running gateway looks for a newer generation at most once a second, or at
 * once when it meets a blob of a generation it does not know, so that
 * `kmipgw rotate-master` in another process takes effect without a restart.
 * Operations use each generation through a session copy (kg_p11_copy.c).
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    CK_BBOOL yes = CK_TRUE;
    /* Token objects only: our own session copies carry the same label and ID. */
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_TOKEN, &yes, sizeof(yes) },
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
        gens[i].token_h = objs[i];
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

/* Does the cached table hold `g` (same generation, same token object) under
 * `epoch`, still usable? Its handle in *h then. Caller holds mwk_lock. */
static bool kg_p11_mwk_cached_copy_locked(const struct kg_p11 *p11, const struct kg_p11_mwk_gen *g, uint64_t epoch,
                                          CK_OBJECT_HANDLE *h)
{
    if (p11->mwk_stale || p11->mwk_epoch != epoch) {
        return false;
    }
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (p11->mwk_gens[i].generation == g->generation && p11->mwk_gens[i].token_h == g->token_h) {
            *h = p11->mwk_gens[i].h;
            return true;
        }
    }
    return false;
}

/*
 * Replace the cached table with `gens` (from kg_p11_mwk_scan, h ==
 * token_h) read under pool epoch `epoch`. A generation the table already
 * holds keeps its session copy; a new one gets one; the copies of
 * generations no longer listed (retired, or from before the epoch moved)
 * are destroyed once the new table is in place. Caller holds keys_lock.
 */
static void kg_p11_mwk_install(struct kg_p11 *p11, struct kg_p11_mwk_gen *gens, uint32_t n, uint64_t epoch)
{
    struct kg_p11_mwk_gen old[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t n_old = 0;

    pthread_mutex_lock(&p11->mwk_lock);
    for (uint32_t i = 0; i < n; i++) {
        kg_p11_mwk_cached_copy_locked(p11, &gens[i], epoch, &gens[i].h);
    }
    n_old = p11->mwk_count;
    memcpy(old, p11->mwk_gens, n_old * sizeof(old[0]));
    pthread_mutex_unlock(&p11->mwk_lock);

    for (uint32_t i = 0; i < n; i++) {
        if (gens[i].h == gens[i].token_h) {
            gens[i].h = kg_p11_key_copy(p11, gens[i].token_h);
        }
    }

    pthread_mutex_lock(&p11->mwk_lock);
    memcpy(p11->mwk_gens, gens, n * sizeof(gens[0]));
    p11->mwk_count = n;
    p11->mwk_epoch = epoch;
    p11->mwk_stale = false;
    p11->mwk_checked_ms = kg_p11_now_ms();
    if (n > 0) {
        __atomic_store_n(&p11->mwk_generation, gens[n - 1].generation, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&p11->mwk_lock);

    for (uint32_t j = 0; j < n_old; j++) {
        bool kept = false;

        for (uint32_t i = 0; i < n; i++) {
            kept = kept || old[j].h == gens[i].h;
        }
        if (!kept) {
            kg_p11_key_copy_drop(p11, old[j].token_h, old[j].h);
        }
    }
}

/*
 * Read the table from the token and cache it. The lookup holds no lock: a
 * hung HSM call there must stall only its own request. Two threads may look
 * at once; their installs take turns under keys_lock, and the second keeps
 * the first one's copies. Cached under the epoch read before the lookup: if
 * sessions were lost meanwhile, the next operation looks again.
 */
static kg_result kg_p11_mwk_refresh(struct kg_p11 *p11, CK_SESSION_HANDLE s)
{
    struct kg_p11_mwk_gen gens[KG_P11_MWK_MAX_GENERATIONS];
    uint32_t n = 0;
    uint64_t epoch = 0;
    kg_result rc;

    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    rc = kg_p11_mwk_scan(p11, s, gens, &n);
    if (kg_ok(rc)) {
        pthread_mutex_lock(&p11->keys_lock);
        kg_p11_mwk_install(p11, gens, n, epoch);
        pthread_mutex_unlock(&p11->keys_lock);
    } else {
        pthread_mutex_lock(&p11->mwk_lock);
        p11->mwk_checked_ms = kg_p11_now_ms(); /* do not hammer a failing token */
        pthread_mutex_unlock(&p11->mwk_lock);
    }
    return rc;
}

/* The cached handle of `generation` (0: the current one) if the cache is
 * valid for `epoch`; CK_INVALID_HANDLE otherwise. Caller holds mwk_lock. */
static CK_OBJECT_HANDLE kg_p11_mwk_cached_locked(const struct kg_p11 *p11, uint32_t generation, uint64_t epoch)
{
    if (p11->mwk_count == 0 || p11->mwk_stale || p11->mwk_epoch != epoch) {
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

/* Is the periodic look at the token due? If so the caller does it: the
 * others keep going with the cached table meanwhile. Caller holds mwk_lock. */
static bool kg_p11_mwk_recheck_due_locked(struct kg_p11 *p11)
{
    uint64_t now = kg_p11_now_ms();

    if (now - p11->mwk_checked_ms < KG_P11_MWK_RECHECK_MS) {
        return false;
    }
    p11->mwk_checked_ms = now;
    return true;
}

kg_result kg_p11_mwk_handle(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    uint64_t epoch = 0;
    bool recheck = false;

    *h = CK_INVALID_HANDLE;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    pthread_mutex_lock(&p11->mwk_lock);
    *h = kg_p11_mwk_cached_locked(p11, 0, epoch);
    recheck = *h == CK_INVALID_HANDLE || kg_p11_mwk_recheck_due_locked(p11);
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
     * one (a rotation we have not seen); an older one was retired. With
     * the generation: look now and then, so that a generation another
     * process retired stops working here (its session copy would not). */
    look = *h == CK_INVALID_HANDLE ? p11->mwk_count == 0 || p11->mwk_stale || p11->mwk_epoch != epoch ||
                                         generation > p11->mwk_generation
                                   : kg_p11_mwk_recheck_due_locked(p11);
    pthread_mutex_unlock(&p11->mwk_lock);
    if (look) {
        kg_result rc = kg_p11_mwk_refresh(p11, s);

        if (kg_failed(rc) && *h == CK_INVALID_HANDLE) {
            return rc;
        }
        kg_error_clear(); /* only the periodic look failed: the cached handle still serves */
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
            p11->mwk_stale = true; /* the next install drops its copies */
            break;
        }
    }
    pthread_mutex_unlock(&p11->mwk_lock);
}

kg_result kg_p11_mwk_generation_of(struct kg_p11 *p11, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mwk,
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
    pthread_mutex_lock(&p11->keys_lock);
    locked = true;
    kg_p11_pool_stats(&p11->pool, NULL, NULL, NULL, &epoch);
    KG_GOTO_GUARD(rc, kg_p11_mwk_scan(p11, s, gens, &n));
    if (n == 0) {
        KG_GOTO_GUARD(rc, kg_p11_mwk_generate(p11, s, 1, &h));
        gens[0] = (struct kg_p11_mwk_gen){ .generation = 1, .h = h, .token_h = h };
        n = 1;
        *created = true;
    }
    kg_p11_mwk_install(p11, gens, n, epoch);
out:
    if (locked) {
        pthread_mutex_unlock(&p11->keys_lock);
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
    pthread_mutex_lock(&p11->keys_lock);
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
    kg_p11_mwk_install(p11, gens, n, epoch);
    *generation = next;
out:
    if (locked) {
        pthread_mutex_unlock(&p11->keys_lock);
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
    pthread_mutex_lock(&p11->keys_lock);
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
    kg_p11_mwk_install(p11, gens, n, epoch);
out:
    if (locked) {
        pthread_mutex_unlock(&p11->keys_lock);
    }
    kg_p11_session_end(&p11->pool, s, kg_ok(rc) ? KG_OK : kg_errno(), false);
    return rc;
}

