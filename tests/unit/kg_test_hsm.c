/* kg_test_hsm.c - see kg_test_hsm.h. */
#include "kg_test_hsm.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define KG_TEST_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define KG_TEST_PIN "1234"

static char kg_test_hsm_dir[] = "/tmp/kg_test_hsm.XXXXXX";
static bool kg_test_hsm_made_dir;
static bool kg_test_hsm_tried;
static struct kg_p11 *kg_test_hsm_p11;
static char kg_test_hsm_mwk[80];

static const char *kg_test_softhsm_module(void)
{
    const char *m = getenv("KG_SOFTHSM_MODULE");

    return m != NULL ? m : KG_TEST_SOFTHSM_MODULE;
}

/* Token directory, config and an initialised token; false on any failure. */
static bool kg_test_hsm_make_token(const char *label)
{
    char path[512];
    char cmd[1024];
    FILE *f;

    if (mkdtemp(kg_test_hsm_dir) == NULL) {
        return false;
    }
    kg_test_hsm_made_dir = true;
    snprintf(path, sizeof(path), "%s/tokens", kg_test_hsm_dir);
    if (mkdir(path, 0700) != 0) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", kg_test_hsm_dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return false;
    }
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
            kg_test_hsm_dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label '%s' --pin " KG_TEST_PIN " --so-pin 5678 >%s/init.log 2>&1",
             label, kg_test_hsm_dir);
    return system(cmd) == 0;
}

struct kg_p11 *kg_test_hsm(const char *label)
{
    struct kg_secret *pin = NULL;
    bool created = false;
    struct kg_p11_config cfg = {
        .module_path = kg_test_softhsm_module(),
        .token_label = label,
        .mwk_label = kg_test_hsm_mwk,
        .max_sessions = 4,
    };

    if (kg_test_hsm_tried) {
        return kg_test_hsm_p11;
    }
    kg_test_hsm_tried = true;
    snprintf(kg_test_hsm_mwk, sizeof(kg_test_hsm_mwk), "%s-mwk", label);
    if (access(kg_test_softhsm_module(), R_OK) != 0 || system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\nSKIP: SoftHSMv2 not installed\n");
        return NULL;
    }
    if (!kg_test_hsm_make_token(label)) {
        fprintf(stderr, "\nSKIP: could not make a SoftHSM token in %s\n", kg_test_hsm_dir);
        return NULL;
    }
    if (kg_failed(kg_secret_from(KG_TEST_PIN, sizeof(KG_TEST_PIN) - 1, &pin))) {
        return NULL;
    }
    if (kg_failed(kg_p11_open(&cfg, pin, false, &kg_test_hsm_p11)) ||
        kg_failed(kg_p11_init_mwk(kg_test_hsm_p11, &created)) ||
        kg_failed(kg_p11_init_mac(kg_test_hsm_p11, &created))) {
        fprintf(stderr, "\nhsm: %s %s\n", kg_error_name(kg_errno()), kg_error_text());
        kg_p11_close(kg_test_hsm_p11);
        kg_test_hsm_p11 = NULL;
    }
    kg_secret_free(pin);
    return kg_test_hsm_p11;
}

static int kg_test_hsm_remove(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void kg_test_hsm_cleanup(void)
{
    kg_p11_close(kg_test_hsm_p11);
    kg_test_hsm_p11 = NULL;
    if (kg_test_hsm_made_dir) {
        nftw(kg_test_hsm_dir, kg_test_hsm_remove, 16, FTW_DEPTH | FTW_PHYS);
        kg_test_hsm_made_dir = false;
    }
}

long kg_test_session_objects(struct kg_p11 *p11, CK_OBJECT_CLASS cls)
{
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &no, sizeof(no) }, { CKA_CLASS, &cls, sizeof(cls) } };
    CK_OBJECT_HANDLE objs[64];
    CK_ULONG n = 0;
    long count = -1;

    if (kg_failed(kg_p11_session_acquire(kg_p11_pool_of(p11), &s))) {
        return -1;
    }
    /* The class goes last in the template so that "any" just leaves it out. */
    if (p11->fn->C_FindObjectsInit(s, tmpl, cls == KG_TEST_ANY_CLASS ? 1 : 2) == CKR_OK) {
        if (p11->fn->C_FindObjects(s, objs, 64, &n) == CKR_OK) {
            count = 0;
            for (CK_ULONG i = 0; i < n; i++) {
                count += kg_p11_is_key_copy(p11, objs[i]) ? 0 : 1; /* the gateway's own MWK/MAC copies */
            }
        }
        (void)p11->fn->C_FindObjectsFinal(s);
    }
    kg_p11_session_release(kg_p11_pool_of(p11), s);
    return count;
}
