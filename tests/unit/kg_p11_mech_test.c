/*
 * kg_p11_mech_test.c - mechanism discovery and the MWK wrapping choice
 * (pkcs11/kg_p11_mech.c, issue 9), against SoftHSMv2 seen through the
 * fault module (tests/fault/kg_fault_p11.c) with chosen mechanisms hidden:
 * a token without CKM_AES_KEY_WRAP_PAD, without any AES key wrap, without
 * HMAC or EC key generation. Passes with a message when SoftHSM or the
 * fault module ($KG_FAULT_MODULE) is missing.
 *
 * Every kg_p11 here is opened on the fault module only: SoftHSM is loaded
 * once, by it, so closing one kg_p11 finalises it cleanly for the next.
 *
 * Also here, for its fault rules: the key Digest made in the HSM when a
 * blob is made (kg_p11_digest_into_blob).
 */
#include "kg_test.h"

#include "kg_p11.h"
#include "kg_p11_crypto.h"
#include "kg_p11_internal.h"

#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIN "1234"
#define LABEL "kgmech"

static char dir[] = "/tmp/kg_mech_test.XXXXXX";
static bool have_dir;
static bool usable;
static char control[600];

/* The SoftHSM token and the control file path; false to skip. */
static bool setup(void)
{
    static bool tried;
    char path[512];
    char cmd[1024];
    const char *module = getenv("KG_FAULT_MODULE");
    FILE *f;

    if (tried) {
        return usable;
    }
    tried = true;
    if (module == NULL || access(module, R_OK) != 0 || access("/usr/lib/softhsm/libsofthsm2.so", R_OK) != 0 ||
        system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\nSKIP: SoftHSMv2 or KG_FAULT_MODULE missing\n");
        return false;
    }
    if (mkdtemp(dir) == NULL) {
        return false;
    }
    have_dir = true;
    snprintf(path, sizeof(path), "%s/tokens", dir);
    if (mkdir(path, 0700) != 0) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return false;
    }
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label " LABEL " --pin " PIN " --so-pin 5678 >%s/init.log 2>&1", dir);
    if (system(cmd) != 0) {
        return false;
    }
    snprintf(control, sizeof(control), "%s/control", dir);
    setenv("KG_FAULT_CONTROL", control, 1);
    usable = true;
    return true;
}

/* Hide `mechs` (NULL-terminated CKM_ names) from now on: write + rename,
 * as the fault module wants. CKM_AES_CBC_PAD always says it can wrap:
 * SoftHSM 2.6.1 wraps with it but leaves CKF_WRAP out of its answer (and
 * ORs its flags into the caller's struct instead of setting them), where
 * openCryptoki's soft token declares it. */
static void hide(const char *const *mechs)
{
    char tmp[700];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", control);
    f = fopen(tmp, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "add-mechanism-flags CKM_AES_CBC_PAD 0x60000\n");
    for (size_t i = 0; mechs != NULL && mechs[i] != NULL; i++) {
        fprintf(f, "hide-mechanism %s\n", mechs[i]);
    }
    fclose(f);
    CU_ASSERT_FATAL(rename(tmp, control) == 0);
}

/* Open the token through the fault module and make sure it has an MWK. */
static kg_result open_token(struct kg_p11 **out)
{
    struct kg_secret *pin = NULL;
    struct kg_p11_config cfg = {
        .module_path = getenv("KG_FAULT_MODULE"),
        .token_label = LABEL,
        .mwk_label = LABEL "-mwk",
        .max_sessions = 4,
    };
    bool created = false;
    kg_result rc;

    *out = NULL;
    KG_GUARD(kg_secret_from(PIN, sizeof(PIN) - 1, &pin));
    rc = kg_p11_open(&cfg, pin, false, out);
    kg_secret_free(pin);
    if (kg_ok(rc)) {
        rc = kg_p11_init_mwk(*out, &created);
        if (kg_failed(rc)) {
            kg_p11_close(*out);
            *out = NULL;
        }
    }
    return rc;
}

#define SETUP_OR_SKIP()                                                    \
    do {                                                                   \
        if (!setup()) {                                                    \
            CU_PASS("SoftHSMv2 or the fault module missing: test skipped"); \
            return;                                                        \
        }                                                                  \
    } while (0)

/* Generate an AES-256 key and read it back: the blob is usable. */
static void generate_and_read(struct kg_p11 *p11, struct kg_p11_blob *blob, uint8_t key[32])
{
    struct kg_secret *plain = NULL;

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, blob)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, blob, &plain)));
    CU_ASSERT_EQUAL_FATAL(plain->len, 32);
    memcpy(key, plain->data, 32);
    kg_secret_free(plain);
}

static void test_filter_module(void)
{
    static const char *const kwp[] = { "CKM_AES_KEY_WRAP_PAD", NULL };
    struct kg_p11 *p11 = NULL;
    CK_MECHANISM_INFO info;
    CK_MECHANISM_TYPE list[1024];
    CK_ULONG n = 1024;
    bool listed = false;

    SETUP_OR_SKIP();
    hide(kwp);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT_EQUAL(p11->fn->C_GetMechanismInfo(p11->slot_id, CKM_AES_KEY_WRAP_PAD, &info), CKR_MECHANISM_INVALID);
    CU_ASSERT_EQUAL(p11->fn->C_GetMechanismInfo(p11->slot_id, CKM_AES_KEY_WRAP, &info), CKR_OK);
    CU_ASSERT_EQUAL_FATAL(p11->fn->C_GetMechanismList(p11->slot_id, list, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        listed = listed || list[i] == CKM_AES_KEY_WRAP_PAD;
    }
    CU_ASSERT(!listed);
    CU_ASSERT(n > 10);
    /* A too small buffer is answered as PKCS#11 says, with the count. */
    n = 1;
    CU_ASSERT_EQUAL(p11->fn->C_GetMechanismList(p11->slot_id, list, &n), CKR_BUFFER_TOO_SMALL);
    CU_ASSERT(n > 10);
    kg_p11_close(p11);
    hide(NULL);
}

static void test_kwp_chosen_when_present(void)
{
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    uint8_t key[32];

    SETUP_OR_SKIP();
    hide(NULL);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT_EQUAL(kg_p11_mwk_wrap_mechanism(p11), CKM_AES_KEY_WRAP_PAD);
    CU_ASSERT_STRING_EQUAL(kg_p11_mwk_wrap_mechanism_text(p11), "CKM_AES_KEY_WRAP_PAD (RFC 5649)");
    generate_and_read(p11, &blob, key);
    CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_KEY_WRAP_PAD);
    CU_ASSERT_EQUAL(blob.len, 40);
    /* Capabilities SoftHSM really has, with their sizes. */
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_AES));
    CU_ASSERT(kg_p11_can_bits(p11, KG_P11_CAN_GENERATE_AES, 256));
    CU_ASSERT(!kg_p11_can_bits(p11, KG_P11_CAN_GENERATE_AES, 512));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_HMAC));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_EC));
    CU_ASSERT(kg_p11_can_bits(p11, KG_P11_CAN_GENERATE_RSA, 2048));
    CU_ASSERT(!kg_p11_can_bits(p11, KG_P11_CAN_GENERATE_RSA, 64));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_HMAC_SHA256));
    CU_ASSERT(!kg_p11_can(p11, KG_P11_CAN_COUNT));
    CU_ASSERT(!kg_p11_can(NULL, KG_P11_CAN_GENERATE_AES));
    kg_p11_close(p11);
}

static void test_kw_when_kwp_absent(void)
{
    static const char *const kwp[] = { "CKM_AES_KEY_WRAP_PAD", NULL };
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    struct kg_secret *hmac = NULL;
    uint8_t key[32];

    SETUP_OR_SKIP();
    hide(kwp);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT_EQUAL(kg_p11_mwk_wrap_mechanism(p11), CKM_AES_KEY_WRAP);
    CU_ASSERT(strstr(kg_p11_mwk_wrap_mechanism_text(p11), "RFC 3394") != NULL);
    generate_and_read(p11, &blob, key);
    CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_KEY_WRAP);
    CU_ASSERT_EQUAL(blob.len, 40);
    /* SoftHSM pads a 20-byte generic secret to 24 before wrapping, so
     * RFC 3394 takes it (kg_p11_export_key trims the padding again). */
    CU_ASSERT_FATAL(kg_ok(kg_secret_from("0123456789abcdefghij", 20, &hmac)));
    CU_ASSERT(kg_ok(kg_p11_import_secret(p11, KG_P11_KEY_HMAC, hmac, &blob)));
    CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_KEY_WRAP);
    kg_secret_free(hmac);
    kg_p11_close(p11);
    hide(NULL);
}

/* Write a raw control file (fault rules and mechanism lines). */
static void control_lines(const char *text)
{
    char tmp[700];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", control);
    f = fopen(tmp, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    CU_ASSERT_FATAL(rename(tmp, control) == 0);
}

/*
 * CBC-PAD is acceptable only with the blob MAC: forced here as the bind
 * helper's seal will set it, and the choice made again. SoftHSM 2.6.1
 * refuses C_WrapKey with CKM_AES_CBC_PAD (CKR_MECHANISM_INVALID), so the
 * round trip runs only where the token can (openCryptoki); here the wrap
 * must then fail cleanly, with nothing stored.
 */
static void test_cbc_pad_when_both_absent(void)
{
    static const char *const both[] = { "CKM_AES_KEY_WRAP_PAD", "CKM_AES_KEY_WRAP", NULL };
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    struct kg_secret *plain = NULL;
    kg_result rc;

    SETUP_OR_SKIP();
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    hide(both);
    CU_ASSERT_FATAL(kg_ok(kg_p11_mech_read(p11)));
    /* Without the MAC: refused, naming what was looked for. */
    p11->blob_mac_ready = false;
    CU_ASSERT(kg_failed(kg_p11_mech_choose_wrap(p11)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_MECHANISM);
    CU_ASSERT(strstr(kg_error_text(), "CKM_AES_CBC_PAD with blob MACs") != NULL);
    CU_ASSERT_EQUAL(p11->n_wrap_mechs, 0);

    p11->blob_mac_ready = true;
    CU_ASSERT_FATAL(kg_ok(kg_p11_mech_choose_wrap(p11)));
    CU_ASSERT_EQUAL(kg_p11_mwk_wrap_mechanism(p11), CKM_AES_CBC_PAD);
    CU_ASSERT_EQUAL(p11->n_wrap_mechs, 1);
    CU_ASSERT(strstr(kg_p11_mwk_wrap_mechanism_text(p11), "CKM_AES_CBC_PAD") != NULL);
    rc = kg_p11_generate_aes(p11, 256, &blob);
    if (kg_ok(rc)) {
        CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_CBC_PAD);
        CU_ASSERT_EQUAL(blob.len, KG_P11_CBC_IV_LEN + 48);
        CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &blob, &plain)));
        kg_secret_free(plain);
        plain = NULL;
    } else {
        fprintf(stderr, "\nNOTE: this token does not wrap with CKM_AES_CBC_PAD: %s\n", kg_error_text());
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_MECHANISM);
        CU_ASSERT_EQUAL(blob.len, 0);
        CU_ASSERT_EQUAL(blob.mechanism, 0);
    }
    /* An unbound CBC-PAD blob is refused before the HSM sees it: CBC has
     * no integrity of its own, so only a verified binding makes it usable. */
    memset(&blob, 0, sizeof(blob));
    blob.mechanism = CKM_AES_CBC_PAD;
    blob.mwk_generation = 1;
    blob.len = KG_P11_CBC_IV_LEN + 48;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &blob, &plain)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_BLOB_TAMPERED);
    /* CBC-PAD blob shapes: the IV and whole 16-byte blocks, else refused
     * before an unwrap is tried. */
    {
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;

        CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&p11->pool, &s)));
        blob.len = KG_P11_CBC_IV_LEN + 40;
        CU_ASSERT(kg_failed(kg_p11_mwk_for_blob(p11, s, &blob, &mwk)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
        blob.len = KG_P11_CBC_IV_LEN;
        CU_ASSERT(kg_failed(kg_p11_mwk_for_blob(p11, s, &blob, &mwk)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
        blob.len = KG_P11_CBC_IV_LEN + 48;
        CU_ASSERT(kg_ok(kg_p11_mwk_for_blob(p11, s, &blob, &mwk)));
        kg_p11_session_release(&p11->pool, s);
    }
    CU_ASSERT_PTR_NULL(plain);
    kg_p11_close(p11);
    hide(NULL);
}

/*
 * CKM_AES_KEY_WRAP refuses an encoding that is not whole 64-bit blocks
 * (CKR_KEY_SIZE_RANGE, 0x62, injected here: SoftHSM pads its PKCS#8):
 * with CBC-PAD acceptable the key falls through to it; without, the
 * refusal stands and nothing is stored.
 */
static void test_kw_fall_through_to_cbc_pad(void)
{
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    struct kg_secret *key = NULL;

    SETUP_OR_SKIP();
    control_lines("hide-mechanism CKM_AES_KEY_WRAP_PAD\nadd-mechanism-flags CKM_AES_CBC_PAD 0x60000\n");
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    p11->blob_mac_ready = false;
    CU_ASSERT_FATAL(kg_ok(kg_p11_mech_choose_wrap(p11)));
    CU_ASSERT_EQUAL(p11->n_wrap_mechs, 1); /* no MAC: KW alone */
    CU_ASSERT_FATAL(kg_ok(kg_secret_from("0123456789abcdef0123456789abcdef", 32, &key)));
    control_lines("hide-mechanism CKM_AES_KEY_WRAP_PAD\nadd-mechanism-flags CKM_AES_CBC_PAD 0x60000\n"
                  "C_WrapKey 0x62 1\n");
    CU_ASSERT(kg_failed(kg_p11_import_aes(p11, key, &blob)));
    CU_ASSERT(strstr(kg_error_text(), "CKR_KEY_SIZE_RANGE") != NULL);
    CU_ASSERT_EQUAL(blob.len, 0);

    p11->blob_mac_ready = true;
    CU_ASSERT_FATAL(kg_ok(kg_p11_mech_choose_wrap(p11)));
    CU_ASSERT_EQUAL(p11->n_wrap_mechs, 2);
    CU_ASSERT_EQUAL(p11->wrap_mechs[0], CKM_AES_KEY_WRAP);
    CU_ASSERT_EQUAL(p11->wrap_mechs[1], CKM_AES_CBC_PAD);
    control_lines("hide-mechanism CKM_AES_KEY_WRAP_PAD\nadd-mechanism-flags CKM_AES_CBC_PAD 0x60000\n"
                  "C_WrapKey 0x62 1\n");
    if (kg_ok(kg_p11_import_aes(p11, key, &blob))) {
        CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_CBC_PAD);
    } else {
        /* The second try was CBC-PAD, which SoftHSM cannot wrap with. */
        CU_ASSERT(strstr(kg_error_text(), "CKR_MECHANISM_INVALID") != NULL);
        CU_ASSERT_EQUAL(blob.len, 0);
    }
    /* A whole-block key with no refusal stays on KW. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_aes(p11, key, &blob)));
    CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_KEY_WRAP);
    kg_secret_free(key);
    kg_p11_close(p11);
    hide(NULL);
}

static void test_refused_when_none(void)
{
    static const char *const all[] = { "CKM_AES_KEY_WRAP_PAD", "CKM_AES_KEY_WRAP", "CKM_AES_CBC_PAD", NULL };
    static const char *const keygen[] = { "CKM_AES_KEY_GEN", NULL };
    struct kg_p11 *p11 = NULL;

    SETUP_OR_SKIP();
    hide(all);
    CU_ASSERT(kg_failed(open_token(&p11)));
    CU_ASSERT_PTR_NULL(p11);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_MECHANISM);
    CU_ASSERT(strstr(kg_error_text(), "CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP, and CKM_AES_CBC_PAD") != NULL);
    CU_ASSERT(strstr(kg_error_text(), LABEL) != NULL);
    /* No AES key generation: no MWK can ever be made. */
    hide(keygen);
    CU_ASSERT(kg_failed(open_token(&p11)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_MECHANISM);
    CU_ASSERT(strstr(kg_error_text(), "CKM_AES_KEY_GEN") != NULL);
    hide(NULL);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    kg_p11_close(p11);
}

/* A store written under CKM_AES_KEY_WRAP stays readable when the token
 * later offers CKM_AES_KEY_WRAP_PAD, and rotation moves it to KWP. */
static void test_kw_blob_readable_after_kwp_appears(void)
{
    static const char *const kwp[] = { "CKM_AES_KEY_WRAP_PAD", NULL };
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob old_blob;
    struct kg_p11_blob new_blob;
    struct kg_secret *plain = NULL;
    uint8_t key[32];
    uint32_t gen = 0;

    SETUP_OR_SKIP();
    hide(kwp);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    generate_and_read(p11, &old_blob, key);
    CU_ASSERT_EQUAL(old_blob.mechanism, CKM_AES_KEY_WRAP);
    kg_p11_close(p11);

    hide(NULL);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT_EQUAL(kg_p11_mwk_wrap_mechanism(p11), CKM_AES_KEY_WRAP_PAD);
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &old_blob, &plain)));
    CU_ASSERT(memcmp(plain->data, key, 32) == 0);
    kg_secret_free(plain);
    plain = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_p11_mwk_add_generation(p11, &gen)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_rewrap(p11, KG_P11_KEY_AES, &old_blob, &new_blob)));
    CU_ASSERT_EQUAL(new_blob.mechanism, CKM_AES_KEY_WRAP_PAD);
    CU_ASSERT_EQUAL(new_blob.mwk_generation, gen);
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &new_blob, &plain)));
    CU_ASSERT(memcmp(plain->data, key, 32) == 0);
    kg_secret_free(plain);
    plain = NULL;
    /* The blob's own mechanism decides: relabelled, it is refused. */
    old_blob.mechanism = CKM_AES_KEY_WRAP_PAD;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &old_blob, &plain)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    old_blob.mechanism = 0x1234;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &old_blob, &plain)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    old_blob.mechanism = CKM_AES_KEY_WRAP;
    old_blob.len = 16; /* RFC 3394 needs two data blocks and the IV */
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &old_blob, &plain)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT_PTR_NULL(plain);
    kg_p11_close(p11);
}

/*
 * The Digest made in the HSM with each new blob: the OASIS TC-181-11 key
 * gives the vector's value, a generated key the SHA-256 of its exported
 * bytes; a token that will not digest keys leaves the blob without one and
 * still stores the key; any other failure fails the import, nothing kept.
 */
static void test_key_digest(void)
{
    static const uint8_t tc181_key[32] = {
        0x00, 0x00, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66, 0x77, 0x77,
        0x88, 0x88, 0x99, 0x99, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xff, 0xff,
    };
    static const uint8_t tc181_digest[32] = {
        0x6c, 0x06, 0x4f, 0xe0, 0x51, 0xad, 0xd1, 0x1e, 0xdc, 0x07, 0x72, 0x7b, 0x59, 0x4e, 0xb4, 0x87,
        0x11, 0xdf, 0x84, 0x3e, 0x08, 0x44, 0x5b, 0xba, 0x2c, 0xd7, 0x86, 0xbc, 0x16, 0xbc, 0x58, 0xe8,
    };
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    struct kg_secret *key = NULL;
    struct kg_secret *plain = NULL;
    uint8_t md[32];
    unsigned int md_len = 0;

    SETUP_OR_SKIP();
    hide(NULL);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT_FATAL(kg_ok(kg_secret_from(tc181_key, sizeof(tc181_key), &key)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_aes(p11, key, &blob)));
    CU_ASSERT(blob.has_digest);
    CU_ASSERT(memcmp(blob.digest, tc181_digest, sizeof(tc181_digest)) == 0);

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    CU_ASSERT(blob.has_digest);
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &blob, &plain)));
    CU_ASSERT(EVP_Digest(plain->data, plain->len, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == 32);
    CU_ASSERT(memcmp(blob.digest, md, sizeof(md)) == 0);
    kg_secret_free(plain);

    control_lines("C_DigestKey 0x67 1\n"); /* CKR_KEY_INDIGESTIBLE */
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_aes(p11, key, &blob)));
    CU_ASSERT(!blob.has_digest);
    CU_ASSERT(blob.len > 0);
    control_lines("C_DigestKey 0x30 1\n"); /* CKR_DEVICE_ERROR */
    CU_ASSERT(kg_failed(kg_p11_import_aes(p11, key, &blob)));
    CU_ASSERT_EQUAL(blob.len, 0);
    CU_ASSERT(!blob.has_digest);
    hide(NULL);
    kg_secret_free(key);

    /* Triple DES: made with its digest, read back as 24 bytes, and only
     * 24-byte keys imported. */
    {
        struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_DES3, .storage = KG_P11_STORED_WRAPPED, .blob = &blob };

        CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_DES3));
        CU_ASSERT_FATAL(kg_ok(kg_p11_generate_secret(p11, KG_P11_KEY_DES3, 168, 0, NULL, &blob)));
        CU_ASSERT(blob.has_digest);
        CU_ASSERT_FATAL(kg_ok(kg_p11_export_key(p11, &ref, 21, &plain)));
        CU_ASSERT_EQUAL(plain->len, KG_P11_DES3_BYTES);
        kg_secret_free(plain);
        CU_ASSERT(kg_failed(kg_p11_generate_secret(p11, KG_P11_KEY_DES3, 128, 0, NULL, &blob)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        CU_ASSERT_FATAL(kg_ok(kg_secret_from(tc181_key, 16, &key)));
        CU_ASSERT(kg_failed(kg_p11_import_secret(p11, KG_P11_KEY_DES3, key, &blob)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        kg_secret_free(key);
    }
    kg_p11_close(p11);
}

static void test_capabilities_follow_token(void)
{
    static const char *const lacking[] = { "CKM_GENERIC_SECRET_KEY_GEN", "CKM_EC_KEY_PAIR_GEN", "CKM_AES_GCM",
                                           "CKM_SHA256_HMAC", NULL };
    struct kg_p11 *p11 = NULL;

    SETUP_OR_SKIP();
    hide(lacking);
    CU_ASSERT_FATAL(kg_ok(open_token(&p11)));
    CU_ASSERT(!kg_p11_can(p11, KG_P11_CAN_GENERATE_HMAC));
    CU_ASSERT(!kg_p11_can(p11, KG_P11_CAN_GENERATE_EC));
    CU_ASSERT(!kg_p11_can(p11, KG_P11_CAN_AES_GCM));
    CU_ASSERT(!kg_p11_can(p11, KG_P11_CAN_HMAC_SHA256));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_AES));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_GENERATE_RSA));
    CU_ASSERT(kg_p11_can(p11, KG_P11_CAN_HMAC_SHA384));
    {
        /* Asked anyway, a missing mechanism is "not supported", not an HSM failure. */
        struct kg_p11_blob blob;
        struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_AES, .storage = KG_P11_STORED_WRAPPED, .blob = &blob };
        struct kg_p11_cipher_params gcm = { .cipher = KG_P11_CIPHER_AES_GCM };
        uint8_t in[16] = { 0 }, out[64], tag[KG_P11_CRYPTO_GCM_TAG_MAX], iv[KG_P11_CRYPTO_MAX_IV];
        size_t out_len = 0, tag_len = 0, iv_len = 0;

        CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
        CU_ASSERT(kg_failed(kg_p11_encrypt(p11, &ref, &gcm, in, sizeof(in), out, sizeof(out), &out_len, tag, &tag_len,
                                           iv, &iv_len)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_UNSUPPORTED_ALGORITHM);
    }
    kg_p11_close(p11);
    hide(NULL);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_filter_module),
        KG_TEST(test_kwp_chosen_when_present),
        KG_TEST(test_kw_when_kwp_absent),
        KG_TEST(test_cbc_pad_when_both_absent),
        KG_TEST(test_kw_fall_through_to_cbc_pad),
        KG_TEST(test_refused_when_none),
        KG_TEST(test_kw_blob_readable_after_kwp_appears),
        KG_TEST(test_capabilities_follow_token),
        KG_TEST(test_key_digest),
    };
    int failed = kg_test_run("kg_p11_mech", cases, sizeof(cases) / sizeof(cases[0]));

    if (have_dir) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return failed > 100 ? 100 : failed;
}
