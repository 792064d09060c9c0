/*
 * kg_p11_tls.c - find the gateway's TLS key on the token through libp11.
 *
 * libp11, not our own pool, runs this key: OpenSSL calls the key's methods
 * (libp11's RSA_METHOD / EC_KEY_METHOD) deep inside the handshake, where only
 * libp11 knows which object and slot they belong to. Its sessions see the
 * private key because login is per token for the whole application (PKCS#11
 * v2.40 section 5.6): kg_p11 logged in on its own held-open session.
 */
#include "kg_p11_tls.h"
#include "kg_p11_internal.h"

#include <stdio.h>
#include <string.h>

#include <libp11.h>
#include <openssl/err.h>

/* Bytes of the "private keys on the token" list in an error message. */
#define KG_P11_TLS_SEEN 256

/*
 * Record the failure of libp11 call `what`: the last CK_RV libp11 put on
 * OpenSSL's error queue when there is one. The queue is drained either way,
 * as TLS code on this thread reads it.
 */
static kg_result kg_p11_tls_libp11_fail(const char *what, const char *token)
{
    int ckr_lib = ERR_get_CKR_code();
    CK_RV rv = CKR_GENERAL_ERROR;
    unsigned long e;
    kg_result rc;

    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ckr_lib && ERR_GET_REASON(e) != 0) {
            rv = (CK_RV)ERR_GET_REASON(e);
        }
    }
    rc = KG_P11_CHECK(rv, what);
    kg_error_detail("%s on token '%s' failed: %s", what, token, kg_p11_rv_name(rv));
    return rc;
}

/* "id 01a2" for messages, or "" without an id. */
static void kg_p11_tls_id_text(char *buf, size_t cap, const uint8_t *id, size_t id_len)
{
    size_t o = 0;

    buf[0] = '\0';
    if (id_len == 0 || cap < 8) {
        return;
    }
    o = (size_t)snprintf(buf, cap, " and id ");
    for (size_t i = 0; i < id_len && cap - o > 2; i++) {
        o += (size_t)snprintf(buf + o, cap - o, "%02x", id[i]);
    }
}

static bool kg_p11_tls_match(const PKCS11_KEY *key, const char *label, const uint8_t *id, size_t id_len)
{
    if (!key->isPrivate || key->label == NULL || strcmp(key->label, label) != 0) {
        return false;
    }
    return id_len == 0 || (key->id_len == id_len && key->id != NULL && memcmp(key->id, id, id_len) == 0);
}

kg_result kg_p11_tls_private_key(struct kg_p11 *p11, const char *label, const uint8_t *id, size_t id_len,
                                 EVP_PKEY **out)
{
    PKCS11_SLOT *slot;
    PKCS11_KEY *keys = NULL;
    PKCS11_KEY *found = NULL;
    unsigned int nkeys = 0;
    unsigned int matches = 0;
    char seen[KG_P11_TLS_SEEN];
    char idtext[2 * KG_P11_TLS_SEEN];
    size_t used = 0;
    const char *tok;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(p11 != NULL && label != NULL && (id != NULL || id_len == 0), KG_ERR_INTERNAL);
    slot = kg_p11_libp11_slot(p11);
    KG_ENSURE(slot != NULL && slot->token != NULL, KG_ERR_INTERNAL);
    tok = slot->token->label != NULL ? slot->token->label : "";

    /* The list stays libp11's (freed with the slot); a later call returns
     * it again rather than searching anew. */
    if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
        return kg_p11_tls_libp11_fail("finding private keys (C_FindObjects)", tok);
    }
    seen[0] = '\0';
    for (unsigned int i = 0; i < nkeys; i++) {
        if (kg_p11_tls_match(&keys[i], label, id, id_len)) {
            if (matches++ == 0) {
                found = &keys[i];
            }
        }
        if (keys[i].isPrivate && keys[i].label != NULL && used < sizeof(seen)) {
            int n = snprintf(seen + used, sizeof(seen) - used, "%s'%s'", used > 0 ? ", " : "", keys[i].label);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    kg_p11_tls_id_text(idtext, sizeof(idtext), id, id_len);
    if (matches == 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("tls.key: no private key with label '%s'%s on token '%s' (private keys there: %s)", label,
                        idtext, tok, used > 0 ? seen : "none");
        return KG_RESULT_ERROR;
    }
    if (matches > 1) {
        /* Taking the first would make the server identity depend on the
         * order the token lists objects in. */
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("tls.key: %u private keys with label '%s'%s on token '%s'; add id=<hex> to the URI",
                        matches, label, idtext, tok);
        return KG_RESULT_ERROR;
    }
    /* libp11 0.4.12 lists only the RSA and EC keys it can drive, so no
     * other type reaches this point. */
    *out = PKCS11_get_private_key(found);
    if (*out == NULL) {
        return kg_p11_tls_libp11_fail("reading the TLS key's public part (C_GetAttributeValue)", tok);
    }
    ERR_clear_error();
    return KG_RESULT_OK;
}
