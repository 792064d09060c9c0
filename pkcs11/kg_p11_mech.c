/*
 * kg_p11_mech.c - what the token can do, read once at kg_p11_open, and the
 * choice of how blobs are wrapped under the master key (issue 9).
 *
 * Tokens implement different subsets of PKCS#11: openCryptoki's soft token
 * has no AES key wrap at all, SoftHSM has RFC 3394 and 5649. Asking the
 * token (C_GetMechanismList, C_GetMechanismInfo, v2.40 sections 5.5 and
 * 6.1) once at start-up lets the gateway pick a wrapping it can really
 * use, say which at start, refuse to start when there is none, and refuse
 * requests for algorithms the token lacks before touching the HSM.
 *
 * MWK wrapping order (the first acceptable one wraps new blobs; every
 * blob records its own mechanism, so older blobs stay readable):
 *   1. CKM_AES_KEY_WRAP_PAD (RFC 5649): any key length, authenticated.
 *   2. CKM_AES_KEY_WRAP (RFC 3394): authenticated, but only for encodings
 *      that are a multiple of 8 bytes; PKCS#8 private keys and odd HMAC
 *      lengths often are not, and fall through to the next one.
 *   3. CKM_AES_CBC_PAD with a random IV kept in front of the ciphertext.
 *      CBC has no integrity of its own: it is acceptable ONLY when every
 *      blob also carries the HSM-computed MAC the bind helper adds (blob,
 *      UID and security attributes, verified before any unwrap). Until
 *      p11->blob_mac_ready says so, CBC-PAD is never chosen.
 * AES-GCM through C_WrapKey is almost never offered (SoftHSM and
 * openCryptoki refuse it) and its IV handling differs between tokens, so
 * it is not used for the MWK.
 */
#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <stdlib.h>
#include <string.h>

/* Most mechanisms we read from one token: SoftHSM lists about 80, physical
 * HSMs up to a few hundred. A longer list is cut (we only look for ours). */
#define KG_P11_MECH_LIST_MAX 1024u

/* Every mechanism kmipgw may use, in the order of p11->mechs[]. */
static const CK_MECHANISM_TYPE kg_p11_mech_tracked[KG_P11_MECH_TRACKED] = {
    CKM_AES_KEY_GEN,       CKM_GENERIC_SECRET_KEY_GEN, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN,
    CKM_AES_KEY_WRAP_PAD,  CKM_AES_KEY_WRAP,           CKM_AES_CBC_PAD,           CKM_AES_GCM,
    CKM_SHA_1_HMAC,        CKM_SHA224_HMAC,            CKM_SHA256_HMAC,           CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,       CKM_SHA256_RSA_PKCS,        CKM_SHA256_RSA_PKCS_PSS,   CKM_RSA_PKCS_OAEP,
    CKM_ECDSA,             CKM_RSA_PKCS,               CKM_DES3_KEY_GEN,
};

/* What each capability needs: a mechanism with flags, and how to read its
 * key-size range (PKCS#11 gives AES sizes in bytes, RSA and EC in bits). */
enum kg_p11_size_unit { KG_P11_SIZE_NONE, KG_P11_SIZE_AES, KG_P11_SIZE_BITS };

static const struct {
    CK_MECHANISM_TYPE mech;
    CK_FLAGS flags;
    enum kg_p11_size_unit unit;
} kg_p11_caps[KG_P11_CAN_COUNT] = {
    [KG_P11_CAN_GENERATE_AES] = { CKM_AES_KEY_GEN, CKF_GENERATE, KG_P11_SIZE_AES },
    [KG_P11_CAN_GENERATE_HMAC] = { CKM_GENERIC_SECRET_KEY_GEN, CKF_GENERATE, KG_P11_SIZE_NONE },
    [KG_P11_CAN_GENERATE_DES3] = { CKM_DES3_KEY_GEN, CKF_GENERATE, KG_P11_SIZE_NONE },
    [KG_P11_CAN_GENERATE_RSA] = { CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, KG_P11_SIZE_BITS },
    [KG_P11_CAN_GENERATE_EC] = { CKM_EC_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, KG_P11_SIZE_BITS },
    [KG_P11_CAN_AES_GCM] = { CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT, KG_P11_SIZE_AES },
    [KG_P11_CAN_AES_CBC_PAD] = { CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT, KG_P11_SIZE_AES },
    [KG_P11_CAN_HMAC_SHA1] = { CKM_SHA_1_HMAC, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_HMAC_SHA224] = { CKM_SHA224_HMAC, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_HMAC_SHA256] = { CKM_SHA256_HMAC, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_HMAC_SHA384] = { CKM_SHA384_HMAC, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_HMAC_SHA512] = { CKM_SHA512_HMAC, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_RSA_SIGN] = { CKM_SHA256_RSA_PKCS, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_RSA_PSS] = { CKM_SHA256_RSA_PKCS_PSS, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_ECDSA] = { CKM_ECDSA, CKF_SIGN | CKF_VERIFY, KG_P11_SIZE_NONE },
    [KG_P11_CAN_WRAP_AES_KW] = { CKM_AES_KEY_WRAP, CKF_WRAP | CKF_UNWRAP, KG_P11_SIZE_AES },
    [KG_P11_CAN_WRAP_AES_KWP] = { CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP, KG_P11_SIZE_AES },
    [KG_P11_CAN_WRAP_RSA_OAEP] = { CKM_RSA_PKCS_OAEP, CKF_WRAP | CKF_UNWRAP, KG_P11_SIZE_NONE },
};

static const struct kg_p11_mech_entry *kg_p11_mech_find(const struct kg_p11 *p11, CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < KG_P11_MECH_TRACKED; i++) {
        if (p11->mechs[i].type == type && p11->mechs[i].present) {
            return &p11->mechs[i];
        }
    }
    return NULL;
}

/*
 * Is `size` (bits) in `e`'s range? AES ranges are in bytes by the standard,
 * but some tokens report bits: a maximum above 64 can only be bits. A range
 * of 0..0 says nothing (several tokens report that) and allows all.
 */
static bool kg_p11_mech_size_ok(const struct kg_p11_mech_entry *e, enum kg_p11_size_unit unit, uint32_t bits)
{
    CK_ULONG size = bits;

    if (unit == KG_P11_SIZE_NONE || bits == 0 || (e->min_size == 0 && e->max_size == 0)) {
        return true;
    }
    if (unit == KG_P11_SIZE_AES && e->max_size <= 64) {
        if (bits % 8 != 0) {
            return false;
        }
        size = bits / 8;
    }
    return size >= e->min_size && size <= e->max_size;
}

bool kg_p11_mech_offers(const struct kg_p11 *p11, CK_MECHANISM_TYPE mechanism, CK_FLAGS flags, bool aes_size,
                        uint32_t bits)
{
    const struct kg_p11_mech_entry *e = kg_p11_mech_find(p11, mechanism);

    return e != NULL && (e->flags & flags) == flags &&
           kg_p11_mech_size_ok(e, aes_size ? KG_P11_SIZE_AES : KG_P11_SIZE_NONE, bits);
}

bool kg_p11_can_bits(const struct kg_p11 *p11, enum kg_p11_capability cap, uint32_t bits)
{
    const struct kg_p11_mech_entry *e;

    if (p11 == NULL || (unsigned)cap >= KG_P11_CAN_COUNT) {
        return false;
    }
    e = kg_p11_mech_find(p11, kg_p11_caps[cap].mech);
    return e != NULL && (e->flags & kg_p11_caps[cap].flags) == kg_p11_caps[cap].flags &&
           kg_p11_mech_size_ok(e, kg_p11_caps[cap].unit, bits);
}

bool kg_p11_can(const struct kg_p11 *p11, enum kg_p11_capability cap) { return kg_p11_can_bits(p11, cap, 0); }

kg_result kg_p11_mech_read(struct kg_p11 *p11)
{
    CK_MECHANISM_TYPE *list = NULL;
    CK_ULONG n = 0;
    CK_RV rv;
    kg_result rc = KG_RESULT_OK;

    memset(p11->mechs, 0, sizeof(p11->mechs));
    for (size_t i = 0; i < KG_P11_MECH_TRACKED; i++) {
        p11->mechs[i].type = kg_p11_mech_tracked[i];
    }
    KG_GUARD(KG_P11_CHECK(p11->fn->C_GetMechanismList(p11->slot_id, NULL, &n), "C_GetMechanismList"));
    if (n > KG_P11_MECH_LIST_MAX) {
        n = KG_P11_MECH_LIST_MAX;
    }
    list = calloc(n > 0 ? n : 1, sizeof(*list));
    KG_ENSURE(list != NULL, KG_ERR_NOMEM);
    rv = p11->fn->C_GetMechanismList(p11->slot_id, list, &n);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        /* More than the cap (or the list grew): the module filled nothing
         * it promised; read what fits of a list sized to the cap. */
        n = KG_P11_MECH_LIST_MAX;
        free(list);
        list = calloc(n, sizeof(*list));
        KG_GOTO_ENSURE(rc, list != NULL, KG_ERR_NOMEM);
        rv = p11->fn->C_GetMechanismList(p11->slot_id, list, &n);
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_GetMechanismList"));
    for (CK_ULONG j = 0; j < n && j < KG_P11_MECH_LIST_MAX; j++) {
        for (size_t i = 0; i < KG_P11_MECH_TRACKED; i++) {
            struct kg_p11_mech_entry *e = &p11->mechs[i];
            CK_MECHANISM_INFO info;

            if (e->type != list[j] || e->present) {
                continue;
            }
            /* Zeroed first: SoftHSM 2.6.1 ORs some flags into the caller's
             * struct instead of setting them. */
            memset(&info, 0, sizeof(info));
            rv = p11->fn->C_GetMechanismInfo(p11->slot_id, list[j], &info);
            if (rv == CKR_MECHANISM_INVALID) {
                continue; /* listed but refused: treat as absent */
            }
            KG_GOTO_GUARD(rc, KG_P11_CHECK(rv, "C_GetMechanismInfo"));
            e->present = true;
            e->flags = info.flags;
            e->min_size = info.ulMinKeySize;
            e->max_size = info.ulMaxKeySize;
        }
    }
out:
    free(list);
    return rc;
}

const char *kg_p11_mech_name(uint32_t mechanism)
{
    switch (mechanism) {
    case CKM_AES_KEY_WRAP_PAD:
        return "CKM_AES_KEY_WRAP_PAD (RFC 5649)";
    case CKM_AES_KEY_WRAP:
        return "CKM_AES_KEY_WRAP (RFC 3394)";
    case CKM_AES_CBC_PAD:
        return "CKM_AES_CBC_PAD (random IV, blob MAC)";
    default:
        return "unknown mechanism";
    }
}

/* Can the token wrap and unwrap a 256-bit MWK's blobs with `mech`? */
static bool kg_p11_mech_wraps(const struct kg_p11 *p11, CK_MECHANISM_TYPE mech)
{
    return kg_p11_mech_offers(p11, mech, CKF_WRAP | CKF_UNWRAP, true, 256);
}

kg_result kg_p11_mech_choose_wrap(struct kg_p11 *p11)
{
    uint32_t n = 0;

    memset(p11->wrap_mechs, 0, sizeof(p11->wrap_mechs));
    p11->n_wrap_mechs = 0;
    if (kg_p11_mech_wraps(p11, CKM_AES_KEY_WRAP_PAD)) {
        p11->wrap_mechs[n++] = (uint32_t)CKM_AES_KEY_WRAP_PAD;
    }
    if (kg_p11_mech_wraps(p11, CKM_AES_KEY_WRAP)) {
        p11->wrap_mechs[n++] = (uint32_t)CKM_AES_KEY_WRAP;
    }
    /* CBC-PAD only with the blob MAC: without it a flipped bit unwraps to
     * a wrong key instead of failing. */
    if (p11->blob_mac_ready && kg_p11_mech_wraps(p11, CKM_AES_CBC_PAD)) {
        p11->wrap_mechs[n++] = (uint32_t)CKM_AES_CBC_PAD;
    }
    p11->n_wrap_mechs = n;
    if (n == 0) {
        kg_error_set(KG_ERR_HSM_MECHANISM, __FILE__, __LINE__);
        kg_error_detail("token '%s' offers no acceptable way to wrap keys under the master key: looked for "
                        "CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP, and CKM_AES_CBC_PAD with blob MACs%s (each with "
                        "CKF_WRAP and CKF_UNWRAP for a 256-bit AES key)",
                        p11->token_label != NULL ? p11->token_label : "?",
                        p11->blob_mac_ready ? "" : " (not available in this build)");
        return KG_RESULT_ERROR;
    }
    if (!kg_p11_mech_offers(p11, CKM_AES_KEY_GEN, CKF_GENERATE, true, 256)) {
        /* The MWK itself and every AES key are made with it. */
        kg_error_set(KG_ERR_HSM_MECHANISM, __FILE__, __LINE__);
        kg_error_detail("token '%s' cannot generate 256-bit AES keys (CKM_AES_KEY_GEN with CKF_GENERATE): "
                        "no master wrapping key can be made on it",
                        p11->token_label != NULL ? p11->token_label : "?");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

uint32_t kg_p11_mwk_wrap_mechanism(const struct kg_p11 *p11)
{
    return p11 != NULL && p11->n_wrap_mechs > 0 ? p11->wrap_mechs[0] : 0;
}

const char *kg_p11_mwk_wrap_mechanism_text(const struct kg_p11 *p11) { return kg_p11_mech_name(kg_p11_mwk_wrap_mechanism(p11)); }
