/*
 * kg_p11_copy.c - session copies of the gateway's own token keys.
 *
 * The MWK generations and the blob MAC key are token objects: they must
 * outlive the process. SoftHSM re-reads a token object's generation file
 * (open, fcntl lock, read, close) on every use, which cost about a fifth of
 * a plaintext Get's CPU; a session object does nothing of the kind. So the
 * hot paths use a copy made inside the HSM by C_CopyObject with CKA_TOKEN
 * FALSE on the login session. The key never leaves the HSM: PKCS#11 forbids
 * a copy that is extractable or not sensitive where its original is not,
 * and the copy is read back to make sure. A token that refuses to copy
 * (CKA_COPYABLE FALSE, say) is used through the token object, as before.
 *
 * A copy lives until kg_p11_key_copy_drop, or until the login session
 * closes (kg_p11_close, process end). The MWK table drops the copy of a
 * generation that left the token, so a retired MWK stops working in a
 * running gateway at its next look (within KG_P11_MWK_RECHECK_MS), as it
 * did when the gateway used the token object.
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

/* Is `copy` a session object, unextractable and sensitive? */
static bool kg_p11_copy_is_sound(struct kg_p11 *p11, CK_OBJECT_HANDLE copy)
{
    CK_BBOOL token = CK_TRUE;
    CK_BBOOL extractable = CK_TRUE;
    CK_BBOOL sensitive = CK_FALSE;
    CK_ATTRIBUTE q[] = {
        { CKA_TOKEN, &token, sizeof(token) },
        { CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
        { CKA_SENSITIVE, &sensitive, sizeof(sensitive) },
    };

    return p11->fn->C_GetAttributeValue(p11->login_session, copy, q, sizeof(q) / sizeof(q[0])) == CKR_OK &&
           token == CK_FALSE && extractable == CK_FALSE && sensitive == CK_TRUE;
}

/*
 * The login session died (a device reset closes every session): open
 * another in its place, for the copies and to keep the token logged in.
 * By the time the MWK table is read again the pool has logged in anew
 * (login state is per token), so the new session sees private objects.
 */
static bool kg_p11_copy_reopen_session(struct kg_p11 *p11)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    if (p11->fn->C_OpenSession(p11->slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK) {
        return false;
    }
    /* The dead handle is not closed: a token may already have given its
     * number to one of the pool's new sessions. */
    p11->login_session = s;
    return true;
}

CK_OBJECT_HANDLE kg_p11_key_copy(struct kg_p11 *p11, CK_OBJECT_HANDLE original)
{
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &no, sizeof(no) } };
    CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
    CK_RV rv;

    if (!p11->has_login_session || p11->no_key_copies) {
        return original;
    }
    rv = p11->fn->C_CopyObject(p11->login_session, original, tmpl, 1, &copy);
    if ((rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) && kg_p11_copy_reopen_session(p11)) {
        rv = p11->fn->C_CopyObject(p11->login_session, original, tmpl, 1, &copy);
    }
    if (rv != CKR_OK || copy == CK_INVALID_HANDLE) {
        return original;
    }
    if (!kg_p11_copy_is_sound(p11, copy)) {
        (void)p11->fn->C_DestroyObject(p11->login_session, copy);
        return original;
    }
    return copy;
}

void kg_p11_key_copy_drop(struct kg_p11 *p11, CK_OBJECT_HANDLE original, CK_OBJECT_HANDLE copy)
{
    if (copy != original && copy != CK_INVALID_HANDLE && p11->has_login_session) {
        /* A copy the token already forgot (its session died) is gone either way. */
        (void)p11->fn->C_DestroyObject(p11->login_session, copy);
    }
}

bool kg_p11_is_key_copy(struct kg_p11 *p11, CK_OBJECT_HANDLE h)
{
    bool copy = false;

    pthread_mutex_lock(&p11->mwk_lock);
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        copy = copy || (p11->mwk_gens[i].h == h && h != p11->mwk_gens[i].token_h);
    }
    copy = copy || (p11->mac_h == h && h != p11->mac_token_h); /* known or not: it exists until replaced */
    pthread_mutex_unlock(&p11->mwk_lock);
    return copy;
}
