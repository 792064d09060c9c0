/*
 * kg_p11_bind_test.c - blob binding (pkcs11/kg_p11_bind.c): seal and
 * verify round trip, every covered field changed is refused, a wrong or
 * missing tag is refused, and kg_p11_key_load refuses a bound blob whose
 * tag does not match before unwrapping it.
 */
#include "kg_test.h"
#include "kg_test_hsm.h"

#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <string.h>

static struct kg_p11_binding binding(const struct kg_p11_blob *blob, const uint8_t *tag)
{
    return (struct kg_p11_binding){
        .uid = "11111111-2222-4333-8444-555555555555",
        .object_type = 2,
        .algorithm = 3,
        .length = 256,
        .storage = KG_P11_STORED_WRAPPED,
        .owner_group = "vsphere",
        .blob = blob,
        .tag = tag,
    };
}

static bool refused(kg_result r) { return kg_failed(r) && kg_errno() == KG_ERR_HSM_BLOB_TAMPERED; }

static void test_seal_verify_round_trip(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    struct kg_p11_blob blob;
    uint8_t tag[KG_P11_BLOB_TAG_LEN];
    uint8_t again[KG_P11_BLOB_TAG_LEN];
    struct kg_p11_binding b;

    CU_ASSERT_FATAL(kg_ok(kg_p11_mac_check(p11)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    b = binding(&blob, NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_blob_seal(p11, &b, tag)));
    CU_ASSERT(kg_ok(kg_p11_blob_seal(p11, &b, again)));
    CU_ASSERT(memcmp(tag, again, sizeof(tag)) == 0); /* deterministic: HMAC */
    b.tag = tag;
    CU_ASSERT(kg_ok(kg_p11_blob_verify(p11, &b)));
    /* No tag at all (a row written before binding): refused, naming the UID. */
    b.tag = NULL;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "11111111-2222-4333-8444-555555555555"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "kmipgw init"));
    /* A wrong tag: one bit off. */
    tag[31] ^= 0x01;
    b.tag = tag;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "does not belong to this object or was altered"));
}

static void test_every_field_covered(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    struct kg_p11_blob blob;
    struct kg_p11_blob other;
    uint8_t tag[KG_P11_BLOB_TAG_LEN];
    struct kg_p11_binding good;
    struct kg_p11_binding b;

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    good = binding(&blob, NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_blob_seal(p11, &good, tag)));
    good.tag = tag;
    CU_ASSERT_FATAL(kg_ok(kg_p11_blob_verify(p11, &good)));

    b = good;
    b.uid = "11111111-2222-4333-8444-555555555556";
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    b = good;
    b.object_type = 3;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    b = good;
    b.algorithm = 4;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    b = good;
    b.length = 128;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    b = good;
    b.storage = KG_P11_STORED_PUBLIC;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    b = good;
    b.owner_group = "backup";
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    /* Length prefixes: moving a byte between UID and group changes the input. */
    b = good;
    b.owner_group = "vspher";
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));

    other = blob;
    b = good;
    b.blob = &other;
    other.mechanism ^= 1;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    other = blob;
    other.mwk_generation++;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    other = blob;
    other.bytes[5] ^= 0x10;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    other = blob;
    other.len--;
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    /* Another key's blob under this object's tag: the swap. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &other)));
    CU_ASSERT(refused(kg_p11_blob_verify(p11, &b)));
    /* And an unchanged copy still verifies. */
    other = blob;
    CU_ASSERT(kg_ok(kg_p11_blob_verify(p11, &b)));
}

static void test_bad_bindings(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    struct kg_p11_blob blob;
    struct kg_p11_blob empty = { 0 };
    uint8_t tag[KG_P11_BLOB_TAG_LEN];
    char long_uid[300];
    struct kg_p11_binding b;

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 128, &blob)));
    b = binding(&empty, NULL);
    CU_ASSERT(kg_failed(kg_p11_blob_seal(p11, &b, tag)) && kg_errno() == KG_ERR_INVALID_FIELD);
    b = binding(&blob, NULL);
    b.uid = NULL;
    CU_ASSERT(kg_failed(kg_p11_blob_seal(p11, &b, tag)) && kg_errno() == KG_ERR_INVALID_FIELD);
    memset(long_uid, 'u', sizeof(long_uid) - 1);
    long_uid[sizeof(long_uid) - 1] = '\0';
    b.uid = long_uid;
    CU_ASSERT(kg_failed(kg_p11_blob_seal(p11, &b, tag)) && kg_errno() == KG_ERR_INVALID_FIELD);
    b = binding(&blob, NULL);
    b.owner_group = NULL;
    CU_ASSERT(kg_failed(kg_p11_blob_seal(p11, &b, tag)) && kg_errno() == KG_ERR_INVALID_FIELD);
}

/* The MAC key: idempotent init, the attributes it promises. */
static void test_mac_key(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    bool created = true;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE find[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, (CK_VOID_PTR) "kg-bind-mwk-mac", 15 },
        { CKA_TOKEN, &on_token, sizeof(on_token) }, /* not the gateway's session copy */
    };
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;
    CK_BBOOL extractable = CK_TRUE, sensitive = CK_FALSE, sign = CK_FALSE, encrypt = CK_TRUE, wrap = CK_TRUE;
    CK_ATTRIBUTE flags[] = {
        { CKA_EXTRACTABLE, &extractable, 1 }, { CKA_SENSITIVE, &sensitive, 1 }, { CKA_SIGN, &sign, 1 },
        { CKA_ENCRYPT, &encrypt, 1 },         { CKA_WRAP, &wrap, 1 },
    };

    CU_ASSERT(kg_ok(kg_p11_init_mac(p11, &created)));
    CU_ASSERT(!created);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(kg_p11_pool_of(p11), &s)));
    CU_ASSERT(p11->fn->C_FindObjectsInit(s, find, 3) == CKR_OK);
    CU_ASSERT(p11->fn->C_FindObjects(s, objs, 2, &n) == CKR_OK);
    CU_ASSERT(p11->fn->C_FindObjectsFinal(s) == CKR_OK);
    CU_ASSERT_FATAL(n == 1);
    CU_ASSERT(p11->fn->C_GetAttributeValue(s, objs[0], flags, 5) == CKR_OK);
    CU_ASSERT(!extractable && sensitive && sign && !encrypt && !wrap);
    kg_p11_session_release(kg_p11_pool_of(p11), s);
}

/* kg_p11_key_load: a bound blob with a wrong tag never reaches C_UnwrapKey;
 * the same ref with the right tag exports the key. */
static void test_key_load_verifies_first(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    struct kg_p11_blob blob;
    struct kg_p11_blob other;
    uint8_t tag[KG_P11_BLOB_TAG_LEN];
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_AES, .storage = KG_P11_STORED_WRAPPED };
    struct kg_p11_key_ref swapped;
    struct kg_secret *k = NULL;
    struct kg_p11_blob fresh;
    long before = kg_test_session_objects(p11, KG_TEST_ANY_CLASS);

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &other)));
    ref.blob = &blob;
    ref.bind = binding(&blob, NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_blob_seal(p11, &ref.bind, tag)));
    ref.bind.tag = tag;
    CU_ASSERT(kg_ok(kg_p11_export_key(p11, &ref, 32, &k)));
    kg_secret_free(k);
    k = NULL;

    /* Another blob under this object's binding and tag. */
    swapped = ref;
    swapped.blob = &other;
    swapped.bind.blob = &other;
    CU_ASSERT(refused(kg_p11_export_key(p11, &swapped, 32, &k)));
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(refused(kg_p11_rewrap_ref(p11, &swapped, &fresh)));
    CU_ASSERT_EQUAL(fresh.len, 0u);
    /* Unsealed: refused too. */
    swapped = ref;
    swapped.bind.tag = NULL;
    CU_ASSERT(refused(kg_p11_export_key(p11, &swapped, 32, &k)));
    /* A binding that names another blob than the ref is a caller bug. */
    swapped = ref;
    swapped.blob = &other;
    CU_ASSERT(kg_failed(kg_p11_export_key(p11, &swapped, 32, &k)) && kg_errno() == KG_ERR_INTERNAL);
    /* CBC-PAD has no integrity of its own: such a blob with no binding at
     * all is refused before it reaches the HSM (key wrap blobs check their
     * own integrity and may be used unbound, by tests and fresh keys). */
    swapped = ref;
    swapped.bind = (struct kg_p11_binding){ 0 };
    other = blob;
    other.mechanism = (uint32_t)CKM_AES_CBC_PAD;
    swapped.blob = &other;
    CU_ASSERT(kg_failed(kg_p11_export_key(p11, &swapped, 32, &k)) && kg_errno() == KG_ERR_HSM_BLOB_TAMPERED);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_EQUAL(kg_test_session_objects(p11, KG_TEST_ANY_CLASS), before);
}

/* The stored length decides how much of the key is read, in one call: a
 * key longer or shorter than the row says is not ours (KG_ERR_HSM_UNWRAP),
 * the right length and an unknown one (0: asked first) export it. */
static void test_export_length_from_row(void)
{
    KG_TEST_HSM_OR_SKIP(p11, "kg-bind");
    struct kg_p11_blob blob;
    uint8_t tag[KG_P11_BLOB_TAG_LEN];
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_AES, .storage = KG_P11_STORED_WRAPPED };
    struct kg_secret *k = NULL;
    struct kg_secret *again = NULL;
    long before = kg_test_session_objects(p11, KG_TEST_ANY_CLASS);

    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    ref.blob = &blob;
    ref.bind = binding(&blob, NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_blob_seal(p11, &ref.bind, tag)));
    ref.bind.tag = tag;

    CU_ASSERT(kg_failed(kg_p11_export_key(p11, &ref, 16, &k)) && kg_errno() == KG_ERR_HSM_UNWRAP);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "longer than the 16 bytes"));
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(kg_failed(kg_p11_export_key(p11, &ref, 24, &k)) && kg_errno() == KG_ERR_HSM_UNWRAP);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(kg_ok(kg_p11_export_key(p11, &ref, 32, &k)));
    CU_ASSERT(k != NULL && k->len == 32);
    CU_ASSERT(kg_ok(kg_p11_export_key(p11, &ref, 0, &again)));
    CU_ASSERT(again != NULL && k != NULL && again->len == 32 && memcmp(again->data, k->data, 32) == 0);
    kg_secret_free(k);
    kg_secret_free(again);
    CU_ASSERT_EQUAL(kg_test_session_objects(p11, KG_TEST_ANY_CLASS), before);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_seal_verify_round_trip), KG_TEST(test_every_field_covered), KG_TEST(test_bad_bindings),
        KG_TEST(test_mac_key),                KG_TEST(test_key_load_verifies_first),
        KG_TEST(test_export_length_from_row),
    };
    int failed = kg_test_run("kg_p11_bind", cases, sizeof(cases) / sizeof(cases[0]));

    kg_test_hsm_cleanup();
    return failed > 100 ? 100 : failed;
}
