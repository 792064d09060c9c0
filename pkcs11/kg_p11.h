/*
 * kg_p11.h - the HSM as kmipgw uses it: one token, one master wrapping key
 * (MWK), a pool of sessions, and message-shaped key operations.
 *
 * This is the only API through which the rest of kmipgw reaches PKCS#11;
 * nothing outside pkcs11/ includes pkcs11.h. libp11 loads the module, finds
 * the token by label and logs in once; the pool then opens its own sessions
 * on that slot through the module's function list (login state is per token
 * for the whole process, PKCS#11 v2.40 section 5.6).
 *
 * Key hierarchy (DESIGN.md): managed keys are generated in the HSM as session
 * objects (CKA_TOKEN=FALSE, CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=TRUE), wrapped
 * at once under the MWK with CKM_AES_KEY_WRAP_PAD, and the session object is
 * destroyed. Only the wrapped blob leaves this module. Plaintext leaves only
 * through kg_p11_export_plaintext, into a kg_secret.
 *
 * All functions are thread-safe; each operation checks a session out of the
 * pool and returns it before returning.
 *
 * HSM failures: an operation that meets one fails with the mapped error
 * (KG_ERR_HSM_SESSION for a closed session, a removed device or a missing
 * token; KG_ERR_HSM_LOGIN for a lost login; KG_ERR_HSM otherwise) and is
 * not retried. The pool learns from it (kg_p11_session_end): dead sessions
 * are closed, the token is logged in again and the MWK looked up again at
 * the next checkout, so once the HSM is back the next operations succeed
 * without reopening kg_p11. A call that hangs in the module holds its
 * session (and its caller) only; the caller's deadline is the gateway's.
 */
#ifndef KG_P11_H
#define KG_P11_H

#include <stddef.h>
#include <stdint.h>

#include "kg_result.h"
#include "kg_secret.h"

struct kg_p11;

struct kg_p11_config {
    const char *module_path; /* e.g. /usr/lib/softhsm/libsofthsm2.so */
    const char *token_label;
    const char *mwk_label;   /* label of the MWK token object, e.g. "kmipgw-mwk" */
    uint32_t max_sessions;   /* pool cap; lowered to the token's own limit */
};

/* Upper bound on a stored blob: RFC 5649 adds at most 15 bytes (8 + pad);
 * CBC-PAD blobs carry a 16-byte IV and up to 16 bytes of padding. */
#define KG_P11_MAX_BLOB 4096u
/* Largest symmetric key we generate or accept, bytes. */
#define KG_P11_MAX_KEY 64u
/* Largest Secret Data or Opaque Object value we accept, bytes: passwords,
 * seeds and small vendor blobs, well inside KG_P11_MAX_BLOB once wrapped. */
#define KG_P11_MAX_SECRET_DATA 1024u
/* SHA-256, the only digest kmipgw computes of keys. */
#define KG_P11_DIGEST_LEN 32u

/* A wrapped key as stored: mechanism and MWK generation travel with it. */
struct kg_p11_blob {
    uint32_t mechanism;     /* CKM_ value used to wrap: CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP, or
                             * CKM_AES_CBC_PAD (bytes = 16-byte IV, then the ciphertext) */
    uint32_t mwk_generation;
    uint32_t len;
    uint8_t bytes[KG_P11_MAX_BLOB];
    /* Not stored with the blob: SHA-256 of the key's own bytes, computed
     * in the HSM (C_DigestKey) when kg_p11_generate_aes, kg_p11_import_secret
     * or an AES kg_p11_unwrap_key made this blob, for the KMIP Digest
     * attribute; has_digest false when the token would not digest it. */
    bool has_digest;
    uint8_t digest[KG_P11_DIGEST_LEN];
};

/*
 * Where a stored key's material lives: kg_object.storage in the store.
 * Only WRAPPED and RESIDENT keys are secret; a PUBLIC key's blob is its
 * SubjectPublicKeyInfo DER, stored and returned in the clear.
 */
enum kg_p11_storage {
    KG_P11_STORED_WRAPPED = 0,  /* blob: the key wrapped under the MWK */
    KG_P11_STORED_RESIDENT = 1, /* a non-extractable token object whose CKA_ID is the KMIP UID; no blob */
    KG_P11_STORED_PUBLIC = 2,   /* blob: SubjectPublicKeyInfo DER (mechanism 0, generation 0) */
};

/* What a stored key is, in PKCS#11 terms. */
enum kg_p11_key_kind {
    KG_P11_KEY_AES = 1,
    KG_P11_KEY_HMAC,        /* CKK_GENERIC_SECRET, used with CKM_SHA*_HMAC */
    KG_P11_KEY_RSA_PRIVATE,
    KG_P11_KEY_RSA_PUBLIC,
    KG_P11_KEY_EC_PRIVATE,
    KG_P11_KEY_EC_PUBLIC,
    KG_P11_KEY_DES3,        /* CKK_DES3: three-key Triple DES, 24 bytes with parity */
    KG_P11_KEY_SECRET,      /* CKK_GENERIC_SECRET holding KMIP Secret Data or an Opaque Object's
                             * value: stored and read back, never used for cryptography */
    KG_P11_KEY_DSA_PRIVATE, /* registered only (kg_p11_import.h): never generated here */
    KG_P11_KEY_DSA_PUBLIC,
};
/* A Triple DES key's bytes: three 8-byte DES keys, parity bits included. */
#define KG_P11_DES3_BYTES 24u

/*
 * A stored key, as the gateway hands it to the key operations below: all
 * borrowed from the caller's kg_object for the duration of one call.
 */
/* Length of a blob's binding tag: HMAC-SHA-256. */
#define KG_P11_BLOB_TAG_LEN 32u

/*
 * What a stored blob is bound to (kg_p11_blob_seal / kg_p11_blob_verify):
 * the object's UID and its security-relevant attributes, with the blob
 * itself (bytes, mechanism, MWK generation). All borrowed from the
 * caller's kg_object. `tag` is the stored seal, NULL when the row has none
 * (written before blob binding: refused at use until `kmipgw init` seals).
 */
struct kg_p11_binding {
    const char *uid;
    uint32_t object_type; /* KMIP Object Type */
    uint32_t algorithm;   /* KMIP Cryptographic Algorithm */
    int32_t length;       /* Cryptographic Length, bits */
    uint32_t storage;     /* enum kg_p11_storage */
    const char *owner_group;
    const struct kg_p11_blob *blob;
    const uint8_t *tag;   /* KG_P11_BLOB_TAG_LEN bytes, or NULL */
};

struct kg_p11_key_ref {
    enum kg_p11_key_kind kind;
    enum kg_p11_storage storage;
    const struct kg_p11_blob *blob; /* WRAPPED and PUBLIC */
    const char *resident_id;        /* RESIDENT: the CKA_ID (the object's UID text) */
    /* WRAPPED and PUBLIC blobs read from the store: what the blob is bound
     * to (bind.blob must be `blob`); kg_p11_key_load verifies it before
     * anything else touches the blob. The gateway always sets it
     * (kg_op_key_ref). bind.uid NULL (unbound) only for a blob the caller
     * has just made itself and never stored (tests, kg_p11_export_plaintext). */
    struct kg_p11_binding bind;
};

/* ---- blob binding (kg_p11_bind.c) -----------------------------------------
 * One MAC key on the token, label "<mwk_label>-mac", CKA_ID "1": a 256-bit
 * CKK_GENERIC_SECRET token object, sensitive, never extractable, CKA_SIGN
 * and CKA_VERIFY only. It serves every MWK generation: it never leaves the
 * HSM so it needs no rotation with the MWK, the tag covers the blob's MWK
 * generation anyway, and rotate-master re-seals every blob it re-wraps. */

/*
 * Create the MAC key unless one with the label exists (looked up on the
 * token, not in a cache: idempotent across processes). *created tells
 * which. Errors: mapped CK_RV; KG_ERR_HSM when the label names several
 * objects or one with the wrong attributes.
 */
kg_result kg_p11_init_mac(struct kg_p11 *p11, bool *created) KG_WARN_UNUSED;

/* Is the MAC key on the token? KG_ERR_HSM_NO_MWK ("run kmipgw init") if
 * not; serve and rotate-master check this at start. */
kg_result kg_p11_mac_check(struct kg_p11 *p11) KG_WARN_UNUSED;

/*
 * HMAC-SHA-256 inside the HSM (C_Sign, CKM_SHA256_HMAC, the MAC key) over
 * a fixed length-prefixed encoding of "kmipgw-blob-v1", b->uid,
 * object_type, algorithm, length, storage, owner_group, blob mechanism,
 * MWK generation and blob bytes, into tag[KG_P11_BLOB_TAG_LEN] (caller's
 * buffer; the tag is no secret). b->tag is ignored. Errors:
 * KG_ERR_INVALID_FIELD (uid/group missing or too long, blob empty),
 * KG_ERR_HSM_NO_MWK (no MAC key), mapped CK_RV.
 */
kg_result kg_p11_blob_seal(struct kg_p11 *p11, const struct kg_p11_binding *b,
                           uint8_t tag[KG_P11_BLOB_TAG_LEN]) KG_WARN_UNUSED;

/*
 * Check b->tag against the binding inside the HSM (C_Verify). A missing
 * tag, a tag that does not match (another object's blob, a changed
 * attribute or bit) is KG_ERR_HSM_BLOB_TAMPERED with a text naming b->uid;
 * other errors as kg_p11_blob_seal.
 */
kg_result kg_p11_blob_verify(struct kg_p11 *p11, const struct kg_p11_binding *b) KG_WARN_UNUSED;

/*
 * Load the module, find the token, log in with `pin`, open the pool and find
 * the MWK. The PIN is only read here; the caller still owns and frees it.
 * When `require_mwk` is false a missing MWK is not an error (for `init`).
 * The caller owns *out and releases it with kg_p11_close; *out is NULL on
 * failure. Open one kg_p11 per module per process: closing one finalises
 * the module for all.
 * Errors, each with an operator-readable kg_error_text(): KG_ERR_CONFIG
 * (bad config, module not loadable), KG_ERR_HSM (module fails to
 * initialise, or the MWK label names several keys or one that is not a
 * non-extractable AES unwrapping key), KG_ERR_HSM_NO_TOKEN (no or several
 * initialised tokens with the label; the text lists the labels present),
 * KG_ERR_HSM_LOGIN (wrong or locked PIN), KG_ERR_HSM_NO_MWK ("run kmipgw
 * init"), KG_ERR_HSM_SESSION, KG_ERR_NOMEM, KG_ERR_LOCK.
 */
kg_result kg_p11_open(const struct kg_p11_config *cfg, const struct kg_secret *pin, bool require_mwk,
                      struct kg_p11 **out) KG_WARN_UNUSED;

/* Close all sessions, log out, unload. Accepts NULL. */
void kg_p11_close(struct kg_p11 *p11);

/*
 * Create the MWK (AES-256 token object: SENSITIVE, not EXTRACTABLE, WRAP and
 * UNWRAP, CKA_ID "1") unless one with the configured label exists. *created
 * tells which. Looks on the token, not in a cache, so it is idempotent
 * across processes.
 */
kg_result kg_p11_init_mwk(struct kg_p11 *p11, bool *created) KG_WARN_UNUSED;

/* Generation number of the MWK in use (1 for the first): the newest one on
 * the token as last looked up. */
uint32_t kg_p11_mwk_generation(const struct kg_p11 *p11);

/* ---- master key rotation (kmipgw rotate-master) ---------------------------
 * Generations are token objects sharing mwk_label, CKA_ID = the generation
 * in decimal. Every generation still on the token unwraps its blobs; new
 * blobs use the newest. kg_p11_rewrap moves one blob to the newest. */

/*
 * Create MWK generation max+1 on the token (same attributes as
 * kg_p11_init_mwk) and make it current; *generation gets it. Reads the
 * token, not the cache. If another process created the same generation at
 * the same moment, ours is destroyed again and this fails (KG_ERR_HSM, "run
 * again"): the token never keeps two objects of one generation.
 * Errors: KG_ERR_HSM_NO_MWK (no generation yet: kmipgw init), KG_ERR_HSM
 * (KG_P11_MWK_MAX_GENERATIONS reached: retire old ones), mapped CK_RV.
 */
kg_result kg_p11_mwk_add_generation(struct kg_p11 *p11, uint32_t *generation) KG_WARN_UNUSED;

/* The generations on the token now, ascending, into gens[0..cap); *n gets
 * how many there are (may exceed cap: only cap are written). */
kg_result kg_p11_mwk_list(struct kg_p11 *p11, uint32_t *gens, size_t cap, size_t *n) KG_WARN_UNUSED;

/*
 * Destroy MWK generation `generation` on the token. The current (newest)
 * generation is never destroyed (KG_ERR_DENIED); KG_ERR_NOT_FOUND if there
 * is no such generation. The caller must have made sure no stored blob uses
 * it: every key wrapped under it becomes unreadable.
 */
kg_result kg_p11_mwk_retire(struct kg_p11 *p11, uint32_t generation) KG_WARN_UNUSED;

/*
 * Re-wrap `old_blob` (a key of `kind`, wrapped under any generation still on
 * the token) under the current generation into `new_blob`: C_UnwrapKey into a
 * sensitive session object extractable only so that it can be wrapped again,
 * C_WrapKey, destroy. The key never leaves the HSM. Secret and private key
 * kinds only (a public key has no blob under the MWK: KG_ERR_INVALID_FIELD).
 * KG_ERR_HSM when the current generation is not newer than the blob's (no
 * rotation pending), KG_ERR_HSM_UNWRAP for a damaged blob or one of a
 * retired generation. new_blob->len is 0 on failure.
 */
kg_result kg_p11_rewrap(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_p11_blob *old_blob,
                        struct kg_p11_blob *new_blob) KG_WARN_UNUSED;

/* kg_p11_rewrap of a stored key: `ref` (WRAPPED, with ref->bind) is
 * verified first (KG_ERR_HSM_BLOB_TAMPERED); the caller seals new_blob
 * with kg_p11_blob_seal before storing it. */
kg_result kg_p11_rewrap_ref(struct kg_p11 *p11, const struct kg_p11_key_ref *ref,
                            struct kg_p11_blob *new_blob) KG_WARN_UNUSED;

/*
 * Generate an AES key of `bits` (128, 192 or 256) inside the HSM and return
 * it wrapped under the MWK (RFC 5649: bits/8 + 8 bytes). No plaintext exists
 * outside the HSM, and the session object is destroyed on every path.
 * Errors: KG_ERR_BAD_KEY_LENGTH, KG_ERR_HSM_NO_MWK, KG_ERR_HSM_BUSY (no
 * session free in time), or the mapped CK_RV (KG_ERR_HSM_*). out->len is 0
 * on failure.
 */
kg_result kg_p11_generate_aes(struct kg_p11 *p11, uint32_t bits, struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * Import plaintext AES key bytes (Register): create a session object from
 * `key`, wrap it under the MWK, destroy the object. The caller still owns
 * and wipes `key`; no other copy of it is made on our side.
 * Errors as kg_p11_generate_aes; KG_ERR_BAD_KEY_LENGTH unless 16, 24 or 32
 * bytes.
 */
kg_result kg_p11_import_aes(struct kg_p11 *p11, const struct kg_secret *key,
                            struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * kg_p11_import_aes generalised to `kind` KG_P11_KEY_AES, KG_P11_KEY_HMAC
 * (a CKK_GENERIC_SECRET of 16 to KG_P11_MAX_KEY bytes; the caller checks
 * the algorithm's own floor), KG_P11_KEY_DES3 or KG_P11_KEY_SECRET (a
 * CKK_GENERIC_SECRET of 1 to KG_P11_MAX_SECRET_DATA bytes). Same ownership and errors;
 * KG_ERR_UNSUPPORTED_ALGORITHM for another kind.
 */
kg_result kg_p11_import_secret(struct kg_p11 *p11, enum kg_p11_key_kind kind, const struct kg_secret *key,
                               struct kg_p11_blob *out) KG_WARN_UNUSED;

/*
 * Unwrap `blob` inside the HSM as a non-sensitive session object, read its
 * value into a new kg_secret, destroy the object. The caller owns *out and
 * frees it (wiped) with kg_secret_free. Used only where policy allows
 * plaintext export. A blob of another mechanism or MWK generation, or one
 * that fails the RFC 5649 integrity check, is KG_ERR_HSM_UNWRAP: never a
 * wrong key. *out is NULL on failure.
 */
kg_result kg_p11_export_plaintext(struct kg_p11 *p11, const struct kg_p11_blob *blob,
                                  struct kg_secret **out) KG_WARN_UNUSED;

/*
 * Plaintext of stored secret key `ref` (AES, HMAC, Triple DES or a
 * KG_P11_KEY_SECRET value; storage WRAPPED) into a
 * new kg_secret of exactly `bytes` (the object's Cryptographic Length / 8;
 * 0 for an AES key means any of 16/24/32). The key is loaded with
 * KG_P11_USE_READ into a non-sensitive session object, its CKA_VALUE read,
 * and the object destroyed on every path. SoftHSM returns a generic secret
 * zero-padded to a multiple of 8 bytes: the padding is checked and trimmed.
 * The caller owns *out and frees it (wiped) with kg_secret_free; *out is
 * NULL on failure. Errors: KG_ERR_DENIED (resident key: never readable),
 * KG_ERR_BAD_KEY_LENGTH (`bytes` out of range), KG_ERR_HSM_UNWRAP (blob
 * damaged, not ours, or of another length), mapped CK_RV.
 * kg_p11_export_plaintext is the AES-blob form of it.
 */
kg_result kg_p11_export_key(struct kg_p11 *p11, const struct kg_p11_key_ref *ref, size_t bytes,
                            struct kg_secret **out) KG_WARN_UNUSED;

/* ---- what the token can do (kg_p11_mech.c) ----------------------------------
 * Read once at kg_p11_open (C_GetMechanismList / C_GetMechanismInfo). The
 * gateway asks before touching the HSM, so a request for what the token
 * lacks is refused as unsupported rather than failing inside it. */
enum kg_p11_capability {
    KG_P11_CAN_GENERATE_AES,  /* CKM_AES_KEY_GEN, CKF_GENERATE */
    KG_P11_CAN_GENERATE_HMAC, /* CKM_GENERIC_SECRET_KEY_GEN */
    KG_P11_CAN_GENERATE_DES3, /* CKM_DES3_KEY_GEN */
    KG_P11_CAN_GENERATE_RSA,  /* CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR */
    KG_P11_CAN_GENERATE_EC,   /* CKM_EC_KEY_PAIR_GEN */
    KG_P11_CAN_AES_GCM,       /* CKM_AES_GCM, encrypt and decrypt */
    KG_P11_CAN_AES_CBC_PAD,   /* CKM_AES_CBC_PAD, encrypt and decrypt */
    KG_P11_CAN_HMAC_SHA1,     /* CKM_SHA*_HMAC, sign and verify */
    KG_P11_CAN_HMAC_SHA224,
    KG_P11_CAN_HMAC_SHA256,
    KG_P11_CAN_HMAC_SHA384,
    KG_P11_CAN_HMAC_SHA512,
    KG_P11_CAN_RSA_SIGN,      /* CKM_SHA256_RSA_PKCS */
    KG_P11_CAN_RSA_PSS,       /* CKM_SHA256_RSA_PKCS_PSS */
    KG_P11_CAN_ECDSA,         /* CKM_ECDSA */
    KG_P11_CAN_WRAP_AES_KW,   /* CKM_AES_KEY_WRAP, wrap and unwrap (wrapped Get) */
    KG_P11_CAN_WRAP_AES_KWP,  /* CKM_AES_KEY_WRAP_PAD */
    KG_P11_CAN_WRAP_RSA_OAEP, /* CKM_RSA_PKCS_OAEP */
    KG_P11_CAN_COUNT
};

/* Does the open token offer `cap` (its mechanism, with the flags that
 * capability needs)? False for a NULL p11 or an unknown capability. */
bool kg_p11_can(const struct kg_p11 *p11, enum kg_p11_capability cap);

/* kg_p11_can, and `bits` is within the mechanism's key-size range (AES
 * ranges are read in bytes as PKCS#11 says, RSA and EC in bits; a token
 * reporting 0..0 allows any size). bits 0 checks no size. */
bool kg_p11_can_bits(const struct kg_p11 *p11, enum kg_p11_capability cap, uint32_t bits);

/* The CKM_ value new blobs are wrapped with under the MWK (0 if none was
 * chosen), and its name for the start-up log, e.g. "CKM_AES_KEY_WRAP_PAD
 * (RFC 5649)". Static strings. */
uint32_t kg_p11_mwk_wrap_mechanism(const struct kg_p11 *p11);
const char *kg_p11_mwk_wrap_mechanism_text(const struct kg_p11 *p11);
const char *kg_p11_mech_name(uint32_t mechanism);

/* Pool figures for logs and tests. */
struct kg_p11_stats {
    uint32_t sessions_open;
    uint32_t sessions_idle;
    uint32_t max_sessions;
};
void kg_p11_get_stats(struct kg_p11 *p11, struct kg_p11_stats *out);

/*
 * Is the token usable? Checks a session out of the pool (C_GetSessionInfo,
 * and C_Login if the login was lost) and gives it back, waiting at most
 * `timeout_ms` for a free one. Errors: KG_ERR_HSM_BUSY (every session stayed
 * busy), or the mapped error of the calls. For the health endpoint.
 */
kg_result kg_p11_ping(struct kg_p11 *p11, uint32_t timeout_ms) KG_WARN_UNUSED;

/* PKCS#11 calls, process-wide and since start, that returned anything but
 * CKR_OK (counted where every CK_RV is checked, kg_p11_error.c). Lock-free. */
uint64_t kg_p11_error_count(void);

#endif
