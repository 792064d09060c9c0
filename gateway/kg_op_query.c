/*
 * kg_op_query.c - Query (KMIP 1.4 section 4.25): what this gateway, on the
 * token behind it, really offers (issue 9), for every Query Function of
 * KMIP 1.4. The answer is written in the order of Table 223; a function
 * whose honest answer is "none" adds nothing (4.25: "the response payload is
 * empty if there are no values to return"), and Query Function values this
 * version does not define are ignored the same way.
 */
#include <string.h>

#include "kg_kmip.h"
#include "kg_ops.h"

#define KG_VENDOR "kmipgw"

/* Enumerations only Query answers with (KMIP 1.4 section 9.1.3.2). */
enum {
    KG_RNG_ALGORITHM_UNSPECIFIED = 0x01,        /* 9.1.3.2.40 */
    KG_UNWRAP_MODE_PROCESSED = 0x02,            /* 9.1.3.2.43 */
    KG_DESTROY_ACTION_KEY_MATERIAL_DELETED = 0x02, /* 9.1.3.2.44 */
    KG_SHREDDING_ALGORITHM_UNSUPPORTED = 0x03,  /* 9.1.3.2.45 */
    KG_RNG_MODE_UNSPECIFIED = 0x01,             /* 9.1.3.2.46 */
    KG_CLIENT_REGISTRATION_CLIENT_GENERATED = 0x04, /* 9.1.3.2.47 */
};

/*
 * Can the token behind this gateway really do `op`? Mechanism discovery
 * (kg_p11_mech.c) decides for the operations that need a particular
 * mechanism; every other one in the table works on any token that passed
 * kg_p11_open (which requires AES key generation and an MWK wrapping).
 */
static bool kg_query_token_can(struct kg_p11 *p11, uint32_t op)
{
    switch (op) {
    case KG_OP_CREATE_KEY_PAIR:
    case KG_OP_REKEY_KEY_PAIR:
        return kg_p11_can(p11, KG_P11_CAN_GENERATE_RSA) || kg_p11_can(p11, KG_P11_CAN_GENERATE_EC);
    case KG_OP_ENCRYPT:
    case KG_OP_DECRYPT:
        return kg_p11_can(p11, KG_P11_CAN_AES_GCM) || kg_p11_can(p11, KG_P11_CAN_AES_CBC_PAD);
    case KG_OP_SIGN:
    case KG_OP_SIGNATURE_VERIFY:
        return kg_p11_can(p11, KG_P11_CAN_RSA_SIGN) || kg_p11_can(p11, KG_P11_CAN_RSA_PSS) ||
               kg_p11_can(p11, KG_P11_CAN_ECDSA);
    case KG_OP_MAC:
    case KG_OP_MAC_VERIFY:
        return kg_p11_can(p11, KG_P11_CAN_HMAC_SHA256) || kg_p11_can(p11, KG_P11_CAN_HMAC_SHA384) ||
               kg_p11_can(p11, KG_P11_CAN_HMAC_SHA512);
    default:
        return true;
    }
}

/* Which Query Functions the request named (bit n: function n). */
static kg_result kg_query_read(struct kg_ttlv_reader *in, uint32_t *want)
{
    struct kg_ttlv_item it;
    uint32_t fn;

    *want = 0;
    while (!kg_ttlv_reader_done(in)) {
        KG_GUARD(kg_ttlv_read_expect(in, KG_TAG_QUERY_FUNCTION, KG_TTLV_ENUMERATION, &it));
        KG_GUARD(kg_ttlv_get_enum(&it, &fn));
        if (fn >= 1 && fn <= KG_QUERY_CLIENT_REGISTRATION_METHODS) {
            *want |= 1u << fn;
        }
    }
    return KG_RESULT_OK;
}

static bool kg_query_wants(uint32_t want, uint32_t fn)
{
    return (want & (1u << fn)) != 0;
}

static kg_result kg_query_operations(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out)
{
    for (uint32_t op = 1; op <= KG_OP_MAX; op++) {
        if (op == KG_OP_INTEROP && !ctx->gw->config->testing_interop) {
            continue; /* a production server has no Interop (kg_op_interop.c) */
        }
        if (op == KG_OP_SET_ATTRIBUTE && ctx->version.major < 2) {
            continue; /* a 1.x client is refused it (kg_op_set_attribute) */
        }
        if (kg_ops_lookup(op) != NULL && kg_query_token_can(ctx->gw->p11, op)) {
            KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OPERATION, op));
        }
    }
    return KG_RESULT_OK;
}

static kg_result kg_query_objects(struct kg_op_ctx *ctx, struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    if (kg_query_token_can(ctx->gw->p11, KG_OP_CREATE_KEY_PAIR)) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_PUBLIC_KEY));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_OBJECT_TYPE, KG_OBJ_PRIVATE_KEY));
    }
    return KG_RESULT_OK;
}

/*
 * Vendor Identification is what vCenter reads (VSPHERE.md). The 1.x Server
 * Information structure holds only vendor-defined fields, which would need
 * extension tags that Query Extension List would then have to name; kmipgw
 * defines none, so the structure is sent empty, as the 1.4 test cases'
 * reference server does.
 */
static kg_result kg_query_server_information(struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_ttlv_write_text(out, KG_TAG_VENDOR_IDENTIFICATION, KG_VENDOR, (uint32_t)strlen(KG_VENDOR)));
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_SERVER_INFORMATION));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/*
 * RNG Parameters (2.1.18). Every key, IV and nonce a client ever sees comes
 * from the HSM's generator (C_GenerateKey, C_GenerateRandom), and PKCS#11
 * does not say what that generator is; 4.25 prescribes the answer for that
 * case: one RNG Parameters with RNG Algorithm Unspecified. OpenSSL's DRBG
 * only makes Unique Identifiers, which protect nothing, so it is not listed.
 */
static kg_result kg_query_rngs(struct kg_ttlv_writer *out)
{
    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_RNG_PARAMETERS));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_RNG_ALGORITHM, KG_RNG_ALGORITHM_UNSPECIFIED));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/*
 * Profiles kmipgw conforms to as a server (KMIP 1.4 section 2.1.19, 2.1
 * section 7.31): only those whose mandatory OASIS test cases of that KMIP
 * version all pass against it (tests/conformance/expected_pass.txt), and
 * only on a token with the mechanisms those cases need.
 *   Symmetric Key Lifecycle Server: KMIP 1.0 to 1.4 and 2.1 (SKLC-M-*);
 *   Symmetric Key Foundry Server: 1.0 to 1.4, 2.0, 2.1 (SKFF-M-*); the
 *     1.0 to 1.3 cases make Triple DES keys;
 *   AES XTS Server: 2.0, 2.1 (AX-M-*; KMIP 1.4 has no name for it), which
 *     gets a key wrapped with AES Key Wrap;
 *   Quantum Safe Server: 2.0, 2.1 (QS-M-*);
 *   Baseline Server: 2.1 (BL-M-*). The 1.x Baseline profiles have no
 *     vectors here, so they are not claimed.
 * Not claimed: the HTTPS, JSON and XML Server profiles, whose MSGENC cases
 * pass as TTLV: kmipgw serves TTLV over TLS only, not those encodings over
 * HTTPS; the asymmetric, cryptographic, tape, storage and Suite B ones, which
 * have no passing vectors. Server URI and Server Port are left out: they
 * belong to the HTTPS profiles.
 * A 1.x client is shown the 1.x names of its version and older (a 1.2
 * client knows no 1.3 names); a 2.x client the 2.x names (KMIP 2.1 reserves
 * the 1.x values), each with the Profile Version it passes, up to its own.
 */
#define KG_QUERY_NEEDS_NOTHING KG_P11_CAN_COUNT

struct kg_query_profile {
    uint32_t name;                 /* 1.4 9.1.3.2.42 / 2.1 11.41 Profile Name */
    int32_t major, minor;          /* the KMIP version whose cases pass */
    enum kg_p11_capability needs;  /* a mechanism the cases need, or KG_QUERY_NEEDS_NOTHING */
};

static const struct kg_query_profile kg_query_profiles[] = {
    /* KMIP 1.x names: one value per KMIP version. */
    { 0x10, 1, 0, KG_QUERY_NEEDS_NOTHING }, /* Symmetric Key Lifecycle Server KMIP v1.0 */
    { 0x11, 1, 1, KG_QUERY_NEEDS_NOTHING }, /* ... v1.1 */
    { 0x12, 1, 2, KG_QUERY_NEEDS_NOTHING }, /* ... v1.2 */
    { 0x5E, 1, 3, KG_QUERY_NEEDS_NOTHING }, /* ... v1.3 */
    { 0x82, 1, 4, KG_QUERY_NEEDS_NOTHING }, /* ... v1.4 */
    { 0x28, 1, 0, KG_P11_CAN_GENERATE_DES3 }, /* Symmetric Key Foundry Server KMIP v1.0 */
    { 0x29, 1, 1, KG_P11_CAN_GENERATE_DES3 }, /* ... v1.1 */
    { 0x2A, 1, 2, KG_P11_CAN_GENERATE_DES3 }, /* ... v1.2 */
    { 0x6A, 1, 3, KG_P11_CAN_GENERATE_DES3 }, /* ... v1.3 */
    { 0x8E, 1, 4, KG_QUERY_NEEDS_NOTHING },   /* ... v1.4 */
    /* KMIP 2.x names, versioned by Profile Version. */
    { 0x109, 2, 1, KG_QUERY_NEEDS_NOTHING }, /* Symmetric Key Lifecycle Server */
    { 0x115, 2, 0, KG_QUERY_NEEDS_NOTHING }, /* Symmetric Key Foundry Server */
    { 0x115, 2, 1, KG_QUERY_NEEDS_NOTHING },
    { 0x125, 2, 0, KG_P11_CAN_WRAP_AES_KW }, /* AES XTS Server */
    { 0x125, 2, 1, KG_P11_CAN_WRAP_AES_KW },
    { 0x127, 2, 0, KG_QUERY_NEEDS_NOTHING }, /* Quantum Safe Server */
    { 0x127, 2, 1, KG_QUERY_NEEDS_NOTHING },
    { 0x12B, 2, 1, KG_QUERY_NEEDS_NOTHING }, /* Baseline Server */
};

/* Is profile `p` one to show a client of version `v` on this token? */
static bool kg_query_profile_shown(const struct kg_query_profile *p, struct kg_version v, struct kg_p11 *p11)
{
    if (p->major != v.major || p->minor > v.minor) {
        return false;
    }
    return p->needs == KG_QUERY_NEEDS_NOTHING || kg_p11_can(p11, p->needs);
}

static kg_result kg_query_profiles_write(const struct kg_op_ctx *ctx, struct kg_ttlv_writer *out)
{
    for (size_t i = 0; i < sizeof(kg_query_profiles) / sizeof(kg_query_profiles[0]); i++) {
        const struct kg_query_profile *p = &kg_query_profiles[i];

        if (!kg_query_profile_shown(p, ctx->version, ctx->gw->p11)) {
            continue;
        }
        KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_PROFILE_INFORMATION));
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_PROFILE_NAME, p->name));
        if (p->major >= 2) {
            KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_PROFILE_VERSION));
            KG_GUARD(kg_ttlv_write_int(out, KG_TAG_PROFILE_VERSION_MAJOR, p->major));
            KG_GUARD(kg_ttlv_write_int(out, KG_TAG_PROFILE_VERSION_MINOR, p->minor));
            KG_GUARD(kg_ttlv_end_struct(out));
        }
        KG_GUARD(kg_ttlv_end_struct(out));
    }
    return KG_RESULT_OK;
}

/*
 * Capability Information (2.1.21), each field as kmipgw behaves:
 *  - no streaming (multi-part Encrypt/Decrypt is refused, kg_op_crypto.c),
 *    no attestation;
 *  - asynchronous yes: an Asynchronous Indicator defers the operations that
 *    carry no secret until Poll (kg_dispatch.c, kg_async.h);
 *  - Batch Undo yes (a batch with Undo is one change, kg_dispatch.c),
 *    Batch Continue yes; both fields are KMIP 1.4's;
 *  - Unwrap Mode Processed: a key registered wrapped is unwrapped inside the
 *    HSM and kept under the master key (kg_op_register.c);
 *  - Destroy Action Key Material Deleted: Destroy erases the wrapped blob
 *    (SQLite secure_delete) or the resident token object and keeps the
 *    object's attributes; not "shredded", as a WAL frame may hold the
 *    ciphertext until the next checkpoint;
 *  - Shredding Algorithm Unsupported: nothing is shredded;
 *  - RNG Mode Unspecified: PKCS#11 does not say how the HSM instantiates
 *    its generator.
 */
static kg_result kg_query_capabilities(const struct kg_op_ctx *ctx, struct kg_ttlv_writer *out)
{
    bool v14 = ctx->version.major > 1 || ctx->version.minor >= 4;

    KG_GUARD(kg_ttlv_begin_struct(out, KG_TAG_CAPABILITY_INFORMATION));
    KG_GUARD(kg_ttlv_write_bool(out, KG_TAG_STREAMING_CAPABILITY, false));
    KG_GUARD(kg_ttlv_write_bool(out, KG_TAG_ASYNCHRONOUS_CAPABILITY, true));
    KG_GUARD(kg_ttlv_write_bool(out, KG_TAG_ATTESTATION_CAPABILITY, false));
    if (v14) {
        KG_GUARD(kg_ttlv_write_bool(out, KG_TAG_BATCH_UNDO_CAPABILITY, true));
        KG_GUARD(kg_ttlv_write_bool(out, KG_TAG_BATCH_CONTINUE_CAPABILITY, true));
    }
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_UNWRAP_MODE, KG_UNWRAP_MODE_PROCESSED));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_DESTROY_ACTION, KG_DESTROY_ACTION_KEY_MATERIAL_DELETED));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_SHREDDING_ALGORITHM, KG_SHREDDING_ALGORITHM_UNSUPPORTED));
    KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_RNG_MODE, KG_RNG_MODE_UNSPECIFIED));
    KG_GUARD(kg_ttlv_end_struct(out));
    return KG_RESULT_OK;
}

/*
 * Answers, in Table 223's order. Functions answered by nothing, and why:
 * Application Namespaces (kmipgw generates no Application Data, 3.36),
 * Extension List and Map (it defines no extension tags), Attestation Types
 * (no attestation), Validations (it asserts no formal validation; 4.25 lets
 * a server return none). Client Registration Methods: Client Generated —
 * a client's certificate comes from its own PKI and is admitted by
 * configuration (tls.client_ca and the policy's OU), never through KMIP.
 */
kg_result kg_op_query(struct kg_op_ctx *ctx, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out)
{
    uint32_t want;

    KG_GUARD(kg_query_read(in, &want));
    if (kg_query_wants(want, KG_QUERY_OPERATIONS)) {
        KG_GUARD(kg_query_operations(ctx, out));
    }
    if (kg_query_wants(want, KG_QUERY_OBJECTS)) {
        KG_GUARD(kg_query_objects(ctx, out));
    }
    if (kg_query_wants(want, KG_QUERY_SERVER_INFORMATION)) {
        KG_GUARD(kg_query_server_information(out));
    }
    if (kg_query_wants(want, KG_QUERY_RNGS)) {
        KG_GUARD(kg_query_rngs(out));
    }
    if (kg_query_wants(want, KG_QUERY_PROFILES)) {
        KG_GUARD(kg_query_profiles_write(ctx, out));
    }
    if (kg_query_wants(want, KG_QUERY_CAPABILITIES)) {
        KG_GUARD(kg_query_capabilities(ctx, out));
    }
    if (kg_query_wants(want, KG_QUERY_CLIENT_REGISTRATION_METHODS)) {
        KG_GUARD(kg_ttlv_write_enum(out, KG_TAG_CLIENT_REGISTRATION_METHOD, KG_CLIENT_REGISTRATION_CLIENT_GENERATED));
    }
    return KG_RESULT_OK;
}
