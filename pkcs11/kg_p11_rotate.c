/*
 * kg_p11_rotate.c - move one wrapped key from an older MWK generation to
 * the current one without it ever leaving the HSM (kmipgw rotate-master).
 *
 * The key is unwrapped under its own generation into a session object that
 * is sensitive and can do nothing but be wrapped (kg_p11_key_load with
 * KG_P11_USE_EXTRACT only), wrapped under the current generation, and
 * destroyed, all on one session: the plaintext exists only inside the HSM.
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

static bool kg_p11_kind_has_blob(enum kg_p11_key_kind kind)
{
    return kind == KG_P11_KEY_AES || kind == KG_P11_KEY_HMAC || kind == KG_P11_KEY_RSA_PRIVATE ||
           kind == KG_P11_KEY_EC_PRIVATE || kind == KG_P11_KEY_SECRET || kind == KG_P11_KEY_DSA_PRIVATE;
}

kg_result kg_p11_rewrap(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_p11_blob *old_blob,
                        struct kg_p11_blob *new_blob)
{
    struct kg_p11_key_ref ref = { .kind = kind, .storage = KG_P11_STORED_WRAPPED, .blob = old_blob };

    return kg_p11_rewrap_ref(p11, &ref, new_blob);
}

/* The stored form: kg_p11_key_load checks ref->bind before the unwrap, so
 * a swapped or altered blob is never re-wrapped into a valid-looking one. */
kg_result kg_p11_rewrap_ref(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, struct kg_p11_blob *new_blob)
{
    const struct kg_p11_blob *old_blob = ref != NULL ? ref->blob : NULL;
    enum kg_p11_key_kind kind = ref != NULL ? ref->kind : KG_P11_KEY_AES;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE to_destroy = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && old_blob != NULL && new_blob != NULL && old_blob != new_blob &&
                  ref->storage == KG_P11_STORED_WRAPPED,
              KG_ERR_INTERNAL);
    kg_p11_blob_clear(new_blob);
    if (!kg_p11_kind_has_blob(kind)) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("key kind %d has no blob under the MWK to re-wrap", (int)kind);
        return KG_RESULT_ERROR;
    }
    KG_GOTO_GUARD(rc, kg_p11_session_acquire(&p11->pool, &s));
    KG_GOTO_GUARD(rc, kg_p11_mwk_handle(p11, s, &mwk));
    KG_GOTO_GUARD(rc, kg_p11_key_load(p11, s, ref, KG_P11_USE_EXTRACT, &key, &to_destroy));
    KG_GOTO_GUARD(rc, kg_p11_wrap_under_mwk(p11, s, mwk, key, new_blob));
    if (new_blob->mwk_generation <= old_blob->mwk_generation) {
        /* Nothing to rotate to: refuse rather than rewrite a blob in place. */
        kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
        kg_error_detail("current MWK generation %u is not newer than the blob's generation %u",
                        new_blob->mwk_generation, old_blob->mwk_generation);
        rc = KG_RESULT_ERROR;
        goto out;
    }
out:
    rc = kg_p11_finish(p11, s, to_destroy, rc);
    if (kg_failed(rc)) {
        kg_p11_blob_clear(new_blob);
    }
    return rc;
}
