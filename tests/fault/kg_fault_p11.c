/*
 * kg_fault_p11.c - a fault-injecting PKCS#11 module for tests (issue 7).
 *
 * It exports only C_GetFunctionList. Its function list forwards every call
 * to a real module (SoftHSM) and, on demand, fails chosen calls, hangs them,
 * or makes the real module lose every session (a device reset).
 *
 * Environment:
 *   KG_FAULT_REAL_MODULE  the real module (default
 *                         /usr/lib/softhsm/libsofthsm2.so)
 *   KG_FAULT_CONTROL      the control file; unset or missing: forward all
 *   KG_FAULT_STATUS       optional: a file rewritten (write + rename) with
 *                         "sessions N" (real sessions open now), "opened N",
 *                         "closed N" and "injected N" lines whenever one of
 *                         those figures changes
 *
 * Control file: one rule per line, '#' starts a comment:
 *
 *   FUNCTION ACTION [COUNT]
 *
 *   FUNCTION  a PKCS#11 function name (C_WrapKey), or '*' for every
 *             function but C_Finalize and C_GetFunctionList
 *   ACTION    CKR_<NAME> or a number (0x32): return it without calling the
 *             real module;
 *             hang: block the call until no hang rule names it any more
 *             (the file is looked at every 50 ms), then go on as if the
 *             call had just been made;
 *             sessions-lost: C_CloseAllSessions on every slot of the real
 *             module, then forward the call (so the call and every later
 *             one on an old handle get CKR_SESSION_HANDLE_INVALID from the
 *             real module, and the login is gone with the last session)
 *   COUNT     apply to that many matching calls only; default unlimited,
 *             except sessions-lost, which defaults to 1
 *
 * Mechanism filter (issue 9): a line
 *
 *   hide-mechanism CKM_<NAME>|NUMBER
 *
 * makes the module look like a token without that mechanism: it is left
 * out of C_GetMechanismList, C_GetMechanismInfo answers
 * CKR_MECHANISM_INVALID, and so does every call given it (C_WrapKey,
 * C_UnwrapKey, C_GenerateKey, C_EncryptInit, ...). At most
 * KF_MAX_HIDDEN lines; they count as no rule for the others. And
 *
 *   add-mechanism-flags CKM_<NAME>|NUMBER FLAGS
 *
 * ORs FLAGS (a number, e.g. 0x60000 for CKF_WRAP|CKF_UNWRAP) into the
 * mechanism's C_GetMechanismInfo answer: SoftHSM 2.6.1 wraps with
 * CKM_AES_CBC_PAD but does not say so, where openCryptoki does.
 *
 * A line "sessions-lost" alone means "* sessions-lost 1". The first rule
 * that matches and has count left decides. The file is looked at (stat) on
 * every call and parsed again when its inode, size, mtime or ctime change;
 * counts start again from a new parse, so write it with write + rename.
 * Unparseable lines are reported on stderr and ignored. Every injected
 * fault is reported on stderr ("kgfaultp11: ...").
 *
 * Thread-safe: one mutex guards the rules and the figures; it is never held
 * across a call into the real module, so a hung call stalls nothing else.
 */
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KF_DEFAULT_REAL "/usr/lib/softhsm/libsofthsm2.so"
#define KF_MAX_RULES 64
#define KF_MAX_HIDDEN 32
#define KF_HANG_POLL_MS 50
#define KF_ANY (-1)
#define KF_UNLIMITED (-1L)

/* Every function of a v2.40 list, in list order. */
#define KF_FUNCTIONS(X)                                                                                      \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList) X(C_GetSlotInfo)         \
    X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) X(C_InitPIN) X(C_SetPIN)    \
    X(C_OpenSession) X(C_CloseSession) X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_GetOperationState)      \
    X(C_SetOperationState) X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject)       \
    X(C_GetObjectSize) X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects)   \
    X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal)                 \
    X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit) X(C_Digest)           \
    X(C_DigestUpdate) X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign) X(C_SignUpdate)                \
    X(C_SignFinal) X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit) X(C_Verify) X(C_VerifyUpdate)       \
    X(C_VerifyFinal) X(C_VerifyRecoverInit) X(C_VerifyRecover) X(C_DigestEncryptUpdate)                      \
    X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey)                \
    X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom) X(C_GenerateRandom)      \
    X(C_GetFunctionStatus) X(C_CancelFunction) X(C_WaitForSlotEvent)

enum kf_fn {
#define KF_ENUM(n) KF_##n,
    KF_FUNCTIONS(KF_ENUM)
#undef KF_ENUM
        KF_N_FUNCTIONS
};

static const char *const kf_fn_names[KF_N_FUNCTIONS] = {
#define KF_NAME(n) #n,
    KF_FUNCTIONS(KF_NAME)
#undef KF_NAME
};

enum kf_action { KF_FAIL, KF_HANG, KF_LOST };

struct kf_rule {
    int fn; /* enum kf_fn or KF_ANY */
    enum kf_action action;
    CK_RV rv;       /* KF_FAIL */
    long remaining; /* KF_UNLIMITED or calls left */
    int line;
};

/* The real sessions open now, to report leaks in the status file. */
struct kf_session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
};

static struct {
    pthread_mutex_t lock;
    pthread_once_t once;
    void *dl;
    CK_FUNCTION_LIST_PTR real;
    char load_error[512];

    const char *control; /* from the environment, or NULL */
    const char *status;
    bool seen_valid;     /* `seen` describes the file the rules came from */
    bool seen_present;
    struct stat seen;
    struct kf_rule rules[KF_MAX_RULES];
    unsigned n_rules;
    CK_MECHANISM_TYPE hidden[KF_MAX_HIDDEN]; /* hide-mechanism lines */
    unsigned n_hidden;
    CK_MECHANISM_TYPE flagged[KF_MAX_HIDDEN]; /* add-mechanism-flags lines */
    CK_FLAGS added_flags[KF_MAX_HIDDEN];
    unsigned n_flagged;

    struct kf_session *sessions;
    size_t n_sessions, cap_sessions;
    unsigned long opened, closed, injected;
    bool status_dirty;
} kf = { .lock = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

static pthread_mutex_t kf_status_lock = PTHREAD_MUTEX_INITIALIZER;

static void kf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void kf_log(const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "kgfaultp11: %s\n", buf);
}

/* ---- CK_RV names ----------------------------------------------------------- */

static const struct {
    const char *name;
    CK_RV rv;
} kf_rv_names[] = {
#define KF_RV(x) { #x, x },
    KF_RV(CKR_CANCEL) KF_RV(CKR_HOST_MEMORY) KF_RV(CKR_SLOT_ID_INVALID) KF_RV(CKR_GENERAL_ERROR)
    KF_RV(CKR_FUNCTION_FAILED) KF_RV(CKR_ARGUMENTS_BAD) KF_RV(CKR_CANT_LOCK) KF_RV(CKR_DEVICE_ERROR)
    KF_RV(CKR_DEVICE_MEMORY) KF_RV(CKR_DEVICE_REMOVED) KF_RV(CKR_FUNCTION_CANCELED)
    KF_RV(CKR_FUNCTION_NOT_SUPPORTED) KF_RV(CKR_KEY_HANDLE_INVALID) KF_RV(CKR_MECHANISM_INVALID)
    KF_RV(CKR_OBJECT_HANDLE_INVALID) KF_RV(CKR_OPERATION_ACTIVE) KF_RV(CKR_OPERATION_NOT_INITIALIZED)
    KF_RV(CKR_PIN_INCORRECT) KF_RV(CKR_PIN_LOCKED) KF_RV(CKR_SESSION_CLOSED) KF_RV(CKR_SESSION_COUNT)
    KF_RV(CKR_SESSION_HANDLE_INVALID) KF_RV(CKR_SESSION_READ_ONLY) KF_RV(CKR_TOKEN_NOT_PRESENT)
    KF_RV(CKR_TOKEN_NOT_RECOGNIZED) KF_RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID) KF_RV(CKR_USER_NOT_LOGGED_IN)
    KF_RV(CKR_USER_ALREADY_LOGGED_IN) KF_RV(CKR_WRAPPED_KEY_INVALID) KF_RV(CKR_WRAPPING_KEY_HANDLE_INVALID)
    KF_RV(CKR_BUFFER_TOO_SMALL) KF_RV(CKR_CRYPTOKI_NOT_INITIALIZED) KF_RV(CKR_ENCRYPTED_DATA_INVALID)
#undef KF_RV
};

static const char *kf_rv_name(CK_RV rv)
{
    for (size_t i = 0; i < sizeof(kf_rv_names) / sizeof(kf_rv_names[0]); i++) {
        if (kf_rv_names[i].rv == rv) {
            return kf_rv_names[i].name;
        }
    }
    return "CKR_?";
}

static bool kf_parse_rv(const char *word, CK_RV *rv)
{
    char *end = NULL;
    unsigned long v;

    for (size_t i = 0; i < sizeof(kf_rv_names) / sizeof(kf_rv_names[0]); i++) {
        if (strcmp(kf_rv_names[i].name, word) == 0) {
            *rv = kf_rv_names[i].rv;
            return true;
        }
    }
    if (word[0] < '0' || word[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtoul(word, &end, 0);
    if (errno != 0 || end == word || *end != '\0' || v == CKR_OK) {
        return false; /* CKR_OK without a call would hand back garbage */
    }
    *rv = (CK_RV)v;
    return true;
}

/* The mechanisms a test may hide by name (others by number). */
static const struct {
    const char *name;
    CK_MECHANISM_TYPE mech;
} kf_mech_names[] = {
#define KF_MECH(x) { #x, x },
    KF_MECH(CKM_AES_KEY_WRAP) KF_MECH(CKM_AES_KEY_WRAP_PAD) KF_MECH(CKM_AES_CBC_PAD) KF_MECH(CKM_AES_CBC)
    KF_MECH(CKM_AES_ECB) KF_MECH(CKM_AES_GCM) KF_MECH(CKM_AES_KEY_GEN) KF_MECH(CKM_GENERIC_SECRET_KEY_GEN)
    KF_MECH(CKM_RSA_PKCS_KEY_PAIR_GEN) KF_MECH(CKM_EC_KEY_PAIR_GEN) KF_MECH(CKM_SHA_1_HMAC)
    KF_MECH(CKM_SHA224_HMAC) KF_MECH(CKM_SHA256_HMAC) KF_MECH(CKM_SHA384_HMAC) KF_MECH(CKM_SHA512_HMAC)
    KF_MECH(CKM_RSA_PKCS) KF_MECH(CKM_RSA_PKCS_OAEP) KF_MECH(CKM_SHA256_RSA_PKCS) KF_MECH(CKM_SHA256_RSA_PKCS_PSS)
    KF_MECH(CKM_ECDSA)
#undef KF_MECH
};

static bool kf_parse_mech(const char *word, CK_MECHANISM_TYPE *mech)
{
    char *end = NULL;
    unsigned long v;

    for (size_t i = 0; i < sizeof(kf_mech_names) / sizeof(kf_mech_names[0]); i++) {
        if (strcmp(kf_mech_names[i].name, word) == 0) {
            *mech = kf_mech_names[i].mech;
            return true;
        }
    }
    if (word[0] < '0' || word[0] > '9') {
        return false;
    }
    errno = 0;
    v = strtoul(word, &end, 0);
    if (errno != 0 || end == word || *end != '\0') {
        return false;
    }
    *mech = (CK_MECHANISM_TYPE)v;
    return true;
}

/* ---- the control file -------------------------------------------------------- */

static int kf_fn_of(const char *word)
{
    if (strcmp(word, "*") == 0) {
        return KF_ANY;
    }
    for (int i = 0; i < KF_N_FUNCTIONS; i++) {
        if (strcmp(kf_fn_names[i], word) == 0) {
            return i;
        }
    }
    return KF_N_FUNCTIONS; /* unknown */
}

/* Parse one line into *r. False (with a message) for a bad line; a blank or
 * comment line is false without a message. */
static bool kf_parse_line(char *text, int lineno, struct kf_rule *r)
{
    char *words[4];
    int n = 0;
    char *save = NULL;
    char *hash = strchr(text, '#');

    if (hash != NULL) {
        *hash = '\0';
    }
    for (char *w = strtok_r(text, " \t\r\n", &save); w != NULL; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (n == 4) {
            kf_log("control line %d: too many words; ignored", lineno);
            return false;
        }
        words[n++] = w;
    }
    if (n == 0) {
        return false;
    }
    memset(r, 0, sizeof(*r));
    r->line = lineno;
    r->remaining = KF_UNLIMITED;
    if (n == 1 && strcmp(words[0], "sessions-lost") == 0) {
        r->fn = KF_ANY;
        r->action = KF_LOST;
        r->remaining = 1;
        return true;
    }
    if (n < 2) {
        kf_log("control line %d: want FUNCTION ACTION [COUNT]; ignored", lineno);
        return false;
    }
    r->fn = kf_fn_of(words[0]);
    if (r->fn == KF_N_FUNCTIONS || r->fn == KF_C_Finalize || r->fn == KF_C_GetFunctionList) {
        kf_log("control line %d: '%s' is not a function this module can fault; ignored", lineno, words[0]);
        return false;
    }
    if (strcmp(words[1], "hang") == 0) {
        r->action = KF_HANG;
    } else if (strcmp(words[1], "sessions-lost") == 0) {
        r->action = KF_LOST;
        r->remaining = 1;
    } else if (kf_parse_rv(words[1], &r->rv)) {
        r->action = KF_FAIL;
    } else {
        kf_log("control line %d: unknown action '%s'; ignored", lineno, words[1]);
        return false;
    }
    if (n == 3) {
        char *end = NULL;
        long c;

        errno = 0;
        c = strtol(words[2], &end, 10);
        if (errno != 0 || end == words[2] || *end != '\0' || c < 1) {
            kf_log("control line %d: count '%s' is not a positive number; ignored", lineno, words[2]);
            return false;
        }
        r->remaining = c;
    }
    return true;
}

static void kf_parse_file(void)
{
    FILE *f = fopen(kf.control, "r");
    char line[512];
    int lineno = 0;

    kf.n_rules = 0;
    kf.n_hidden = 0;
    kf.n_flagged = 0;
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct kf_rule r;
        char word[32];
        char arg[64];
        char extra[2];
        CK_MECHANISM_TYPE mech = 0;

        char flags[32];
        char *end = NULL;

        lineno++;
        if (sscanf(line, " %31s %63s %31s %1s", word, arg, flags, extra) == 3 &&
            strcmp(word, "add-mechanism-flags") == 0) {
            unsigned long v = strtoul(flags, &end, 0);

            if (!kf_parse_mech(arg, &mech) || end == flags || *end != '\0') {
                kf_log("control line %d: want add-mechanism-flags MECHANISM FLAGS; ignored", lineno);
            } else if (kf.n_flagged == KF_MAX_HIDDEN) {
                kf_log("control line %d: more than %d flag lines; ignored", lineno, KF_MAX_HIDDEN);
            } else {
                kf.flagged[kf.n_flagged] = mech;
                kf.added_flags[kf.n_flagged++] = (CK_FLAGS)v;
            }
            continue;
        }
        if (sscanf(line, " %31s %63s %1s", word, arg, extra) == 2 && strcmp(word, "hide-mechanism") == 0) {
            if (!kf_parse_mech(arg, &mech)) {
                kf_log("control line %d: unknown mechanism '%s'; ignored", lineno, arg);
            } else if (kf.n_hidden == KF_MAX_HIDDEN) {
                kf_log("control line %d: more than %d hidden mechanisms; ignored", lineno, KF_MAX_HIDDEN);
            } else {
                kf.hidden[kf.n_hidden++] = mech;
            }
            continue;
        }
        if (kf_parse_line(line, lineno, &r)) {
            if (kf.n_rules == KF_MAX_RULES) {
                kf_log("control line %d: more than %d rules; ignored", lineno, KF_MAX_RULES);
                continue;
            }
            kf.rules[kf.n_rules++] = r;
        }
    }
    fclose(f);
}

static bool kf_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Bring the rules up to date with the file. Called with kf.lock held. */
static void kf_refresh(void)
{
    struct stat st;
    bool present;

    if (kf.control == NULL) {
        return;
    }
    present = stat(kf.control, &st) == 0;
    if (kf.seen_valid && present == kf.seen_present && (!present || kf_same_file(&st, &kf.seen))) {
        return;
    }
    kf.seen_valid = true;
    kf.seen_present = present;
    if (present) {
        kf.seen = st;
        kf_parse_file();
    } else {
        kf.n_rules = 0;
        kf.n_hidden = 0;
        kf.n_flagged = 0;
    }
}

/* The flags add-mechanism-flags lines add to `mech` (0: none). */
static CK_FLAGS kf_added_flags(CK_MECHANISM_TYPE mech)
{
    CK_FLAGS add = 0;

    if (kf.control == NULL) {
        return 0;
    }
    pthread_mutex_lock(&kf.lock);
    kf_refresh();
    for (unsigned i = 0; i < kf.n_flagged; i++) {
        if (kf.flagged[i] == mech) {
            add |= kf.added_flags[i];
        }
    }
    pthread_mutex_unlock(&kf.lock);
    return add;
}

/* Is `mech` hidden by the control file now? */
static bool kf_hidden(CK_MECHANISM_TYPE mech)
{
    bool hidden = false;

    if (kf.control == NULL) {
        return false;
    }
    pthread_mutex_lock(&kf.lock);
    kf_refresh();
    for (unsigned i = 0; i < kf.n_hidden && !hidden; i++) {
        hidden = kf.hidden[i] == mech;
    }
    pthread_mutex_unlock(&kf.lock);
    return hidden;
}

/* The first rule for `fn` with count left (`hanging`: a hang rule matches
 * even with its count used up, as the call already took its share). */
static struct kf_rule *kf_match(enum kf_fn fn, bool hanging)
{
    for (unsigned i = 0; i < kf.n_rules; i++) {
        struct kf_rule *r = &kf.rules[i];

        if (r->fn != KF_ANY && r->fn != (int)fn) {
            continue;
        }
        if (hanging && r->action == KF_HANG) {
            return r;
        }
        if (r->remaining != 0) {
            return r;
        }
    }
    return NULL;
}

/* ---- the status file ---------------------------------------------------------- */

static void kf_status_write(void)
{
    char tmp[4096];
    unsigned long sessions, opened, closed, injected;
    bool dirty;
    FILE *f;

    if (kf.status == NULL) {
        return;
    }
    pthread_mutex_lock(&kf_status_lock);
    pthread_mutex_lock(&kf.lock);
    dirty = kf.status_dirty;
    kf.status_dirty = false;
    sessions = (unsigned long)kf.n_sessions;
    opened = kf.opened;
    closed = kf.closed;
    injected = kf.injected;
    pthread_mutex_unlock(&kf.lock);
    if (dirty && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", kf.status) < sizeof(tmp)) {
        f = fopen(tmp, "w");
        if (f != NULL) {
            fprintf(f, "sessions %lu\nopened %lu\nclosed %lu\ninjected %lu\n", sessions, opened, closed, injected);
            if (fclose(f) == 0) {
                (void)rename(tmp, kf.status);
            }
        }
    }
    pthread_mutex_unlock(&kf_status_lock);
}

/* Session bookkeeping, with kf.lock held. */
static void kf_session_add(CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
    if (kf.n_sessions == kf.cap_sessions) {
        size_t cap = kf.cap_sessions == 0 ? 16 : kf.cap_sessions * 2;
        struct kf_session *grown = realloc(kf.sessions, cap * sizeof(*grown));

        if (grown == NULL) {
            return; /* the figure is off by one; the test module goes on */
        }
        kf.sessions = grown;
        kf.cap_sessions = cap;
    }
    kf.sessions[kf.n_sessions++] = (struct kf_session){ h, slot };
    kf.opened++;
    kf.status_dirty = true;
}

static void kf_session_remove(CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < kf.n_sessions; i++) {
        if (kf.sessions[i].handle == h) {
            kf.sessions[i] = kf.sessions[--kf.n_sessions];
            kf.closed++;
            kf.status_dirty = true;
            return;
        }
    }
}

static void kf_session_remove_slot(CK_SLOT_ID slot)
{
    for (size_t i = 0; i < kf.n_sessions;) {
        if (kf.sessions[i].slot == slot) {
            kf.sessions[i] = kf.sessions[--kf.n_sessions];
            kf.closed++;
            kf.status_dirty = true;
        } else {
            i++;
        }
    }
}

/* ---- the real module ------------------------------------------------------------ */

static void kf_load(void)
{
    const char *path = getenv("KG_FAULT_REAL_MODULE");
    CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR) = NULL;
    CK_FUNCTION_LIST_PTR list = NULL;

    kf.control = getenv("KG_FAULT_CONTROL");
    if (kf.control != NULL && kf.control[0] == '\0') {
        kf.control = NULL;
    }
    kf.status = getenv("KG_FAULT_STATUS");
    if (kf.status != NULL && kf.status[0] == '\0') {
        kf.status = NULL;
    }
    if (path == NULL || path[0] == '\0') {
        path = KF_DEFAULT_REAL;
    }
    kf.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (kf.dl == NULL) {
        const char *why = dlerror();

        snprintf(kf.load_error, sizeof(kf.load_error), "cannot load the real module: %s",
                 why != NULL ? why : path);
        return;
    }
    *(void **)&get_list = dlsym(kf.dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&list) != CKR_OK || list == NULL) {
        snprintf(kf.load_error, sizeof(kf.load_error), "%s has no usable C_GetFunctionList", path);
        return;
    }
    kf.real = list;
    kf.status_dirty = true;
}

/* C_CloseAllSessions on every slot of the real module. */
static void kf_lose_sessions(void)
{
    CK_ULONG n = 0;
    CK_SLOT_ID *slots = NULL;

    if (kf.real->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK || n == 0) {
        return;
    }
    slots = calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return;
    }
    if (kf.real->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK) {
        for (CK_ULONG i = 0; i < n; i++) {
            CK_RV rv = kf.real->C_CloseAllSessions(slots[i]);

            if (rv == CKR_OK) {
                pthread_mutex_lock(&kf.lock);
                kf_session_remove_slot(slots[i]);
                pthread_mutex_unlock(&kf.lock);
            }
        }
    }
    free(slots);
}

static void kf_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Decide what call `fn` does. True: return *rv without calling the real
 * module. False: forward it (after hanging or losing sessions, if told).
 */
static bool kf_intercept(enum kf_fn fn, CK_RV *rv)
{
    bool hanging = false;

    if (kf.real == NULL) {
        *rv = CKR_GENERAL_ERROR;
        return true;
    }
    if (kf.control == NULL) {
        return false;
    }
    for (;;) {
        struct kf_rule *r;
        enum kf_action action;
        CK_RV fail = CKR_OK;

        pthread_mutex_lock(&kf.lock);
        kf_refresh();
        r = kf_match(fn, hanging);
        if (r == NULL) {
            pthread_mutex_unlock(&kf.lock);
            if (hanging) {
                kf_log("%s: hang released", kf_fn_names[fn]);
            }
            return false;
        }
        action = r->action;
        if (!(hanging && action == KF_HANG) && r->remaining > 0) {
            r->remaining--;
        }
        if (action == KF_FAIL) {
            fail = r->rv;
        }
        if (!(hanging && action == KF_HANG)) {
            kf.injected++;
            kf.status_dirty = true;
        }
        pthread_mutex_unlock(&kf.lock);

        switch (action) {
        case KF_FAIL:
            kf_log("%s -> %s (0x%lx)", kf_fn_names[fn], kf_rv_name(fail), (unsigned long)fail);
            kf_status_write();
            *rv = fail;
            return true;
        case KF_LOST:
            kf_log("%s: closing every real session (sessions-lost)", kf_fn_names[fn]);
            kf_lose_sessions();
            kf_status_write();
            return false;
        case KF_HANG:
        default:
            if (!hanging) {
                kf_log("%s: hanging", kf_fn_names[fn]);
                kf_status_write();
                hanging = true;
            }
            kf_sleep_ms(KF_HANG_POLL_MS);
            break;
        }
    }
}

/* ---- the forwarding functions ----------------------------------------------------- */

#define KF_BEGIN(n)                                                                                          \
    CK_RV rv_;                                                                                               \
    if (kf_intercept(KF_##n, &rv_)) {                                                                        \
        return rv_;                                                                                          \
    }

#define KF_WRAP1(n, T1)                                                                                      \
    static CK_RV kf_##n(T1 a1)                                                                               \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1);                                                                               \
    }
#define KF_WRAP2(n, T1, T2)                                                                                  \
    static CK_RV kf_##n(T1 a1, T2 a2)                                                                        \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2);                                                                           \
    }
#define KF_WRAP3(n, T1, T2, T3)                                                                              \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3)                                                                 \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2, a3);                                                                       \
    }
#define KF_WRAP4(n, T1, T2, T3, T4)                                                                          \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4)                                                          \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2, a3, a4);                                                                   \
    }
#define KF_WRAP5(n, T1, T2, T3, T4, T5)                                                                      \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)                                                   \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2, a3, a4, a5);                                                               \
    }
#define KF_WRAP6(n, T1, T2, T3, T4, T5, T6)                                                                  \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)                                            \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2, a3, a4, a5, a6);                                                           \
    }
#define KF_WRAP8(n, T1, T2, T3, T4, T5, T6, T7, T8)                                                          \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)                              \
    {                                                                                                        \
        KF_BEGIN(n)                                                                                          \
        return kf.real->n(a1, a2, a3, a4, a5, a6, a7, a8);                                                   \
    }

/* The calls that take a mechanism (always the second argument): a hidden
 * one is CKR_MECHANISM_INVALID, as from a token that lacks it. */
#define KF_MECH_BEGIN(n, m)                                                                                  \
    KF_BEGIN(n)                                                                                              \
    if ((m) != NULL && kf_hidden((m)->mechanism)) {                                                          \
        kf_log("%s: mechanism 0x%lx hidden -> CKR_MECHANISM_INVALID", #n, (unsigned long)(m)->mechanism);  \
        return CKR_MECHANISM_INVALID;                                                                        \
    }
#define KF_MWRAP2(n, T1, T2)                                                                                 \
    static CK_RV kf_##n(T1 a1, T2 a2)                                                                        \
    {                                                                                                        \
        KF_MECH_BEGIN(n, a2)                                                                                 \
        return kf.real->n(a1, a2);                                                                           \
    }
#define KF_MWRAP3(n, T1, T2, T3)                                                                             \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3)                                                                 \
    {                                                                                                        \
        KF_MECH_BEGIN(n, a2)                                                                                 \
        return kf.real->n(a1, a2, a3);                                                                       \
    }
#define KF_MWRAP5(n, T1, T2, T3, T4, T5)                                                                     \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5)                                                   \
    {                                                                                                        \
        KF_MECH_BEGIN(n, a2)                                                                                 \
        return kf.real->n(a1, a2, a3, a4, a5);                                                               \
    }
#define KF_MWRAP6(n, T1, T2, T3, T4, T5, T6)                                                                 \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6)                                            \
    {                                                                                                        \
        KF_MECH_BEGIN(n, a2)                                                                                 \
        return kf.real->n(a1, a2, a3, a4, a5, a6);                                                           \
    }
#define KF_MWRAP8(n, T1, T2, T3, T4, T5, T6, T7, T8)                                                         \
    static CK_RV kf_##n(T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8)                              \
    {                                                                                                        \
        KF_MECH_BEGIN(n, a2)                                                                                 \
        return kf.real->n(a1, a2, a3, a4, a5, a6, a7, a8);                                                   \
    }

typedef CK_SESSION_HANDLE SH;
typedef CK_OBJECT_HANDLE OH;
typedef CK_ULONG UL;
typedef CK_ULONG_PTR ULP;
typedef CK_BYTE_PTR BP;
typedef CK_ATTRIBUTE_PTR AP;
typedef CK_MECHANISM_PTR MP;

KF_WRAP1(C_Initialize, CK_VOID_PTR)
KF_WRAP1(C_GetInfo, CK_INFO_PTR)
KF_WRAP3(C_GetSlotList, CK_BBOOL, CK_SLOT_ID_PTR, ULP)
KF_WRAP2(C_GetSlotInfo, CK_SLOT_ID, CK_SLOT_INFO_PTR)
KF_WRAP2(C_GetTokenInfo, CK_SLOT_ID, CK_TOKEN_INFO_PTR)
KF_WRAP4(C_InitToken, CK_SLOT_ID, CK_UTF8CHAR_PTR, UL, CK_UTF8CHAR_PTR)
KF_WRAP3(C_InitPIN, SH, CK_UTF8CHAR_PTR, UL)
KF_WRAP5(C_SetPIN, SH, CK_UTF8CHAR_PTR, UL, CK_UTF8CHAR_PTR, UL)
KF_WRAP2(C_GetSessionInfo, SH, CK_SESSION_INFO_PTR)
KF_WRAP3(C_GetOperationState, SH, BP, ULP)
KF_WRAP5(C_SetOperationState, SH, BP, UL, OH, OH)
KF_WRAP4(C_Login, SH, CK_USER_TYPE, CK_UTF8CHAR_PTR, UL)
KF_WRAP1(C_Logout, SH)
KF_WRAP4(C_CreateObject, SH, AP, UL, CK_OBJECT_HANDLE_PTR)
KF_WRAP5(C_CopyObject, SH, OH, AP, UL, CK_OBJECT_HANDLE_PTR)
KF_WRAP2(C_DestroyObject, SH, OH)
KF_WRAP3(C_GetObjectSize, SH, OH, ULP)
KF_WRAP4(C_GetAttributeValue, SH, OH, AP, UL)
KF_WRAP4(C_SetAttributeValue, SH, OH, AP, UL)
KF_WRAP3(C_FindObjectsInit, SH, AP, UL)
KF_WRAP4(C_FindObjects, SH, CK_OBJECT_HANDLE_PTR, UL, ULP)
KF_WRAP1(C_FindObjectsFinal, SH)
KF_MWRAP3(C_EncryptInit, SH, MP, OH)
KF_WRAP5(C_Encrypt, SH, BP, UL, BP, ULP)
KF_WRAP5(C_EncryptUpdate, SH, BP, UL, BP, ULP)
KF_WRAP3(C_EncryptFinal, SH, BP, ULP)
KF_MWRAP3(C_DecryptInit, SH, MP, OH)
KF_WRAP5(C_Decrypt, SH, BP, UL, BP, ULP)
KF_WRAP5(C_DecryptUpdate, SH, BP, UL, BP, ULP)
KF_WRAP3(C_DecryptFinal, SH, BP, ULP)
KF_MWRAP2(C_DigestInit, SH, MP)
KF_WRAP5(C_Digest, SH, BP, UL, BP, ULP)
KF_WRAP3(C_DigestUpdate, SH, BP, UL)
KF_WRAP2(C_DigestKey, SH, OH)
KF_WRAP3(C_DigestFinal, SH, BP, ULP)
KF_MWRAP3(C_SignInit, SH, MP, OH)
KF_WRAP5(C_Sign, SH, BP, UL, BP, ULP)
KF_WRAP3(C_SignUpdate, SH, BP, UL)
KF_WRAP3(C_SignFinal, SH, BP, ULP)
KF_MWRAP3(C_SignRecoverInit, SH, MP, OH)
KF_WRAP5(C_SignRecover, SH, BP, UL, BP, ULP)
KF_MWRAP3(C_VerifyInit, SH, MP, OH)
KF_WRAP5(C_Verify, SH, BP, UL, BP, UL)
KF_WRAP3(C_VerifyUpdate, SH, BP, UL)
KF_WRAP3(C_VerifyFinal, SH, BP, UL)
KF_MWRAP3(C_VerifyRecoverInit, SH, MP, OH)
KF_WRAP5(C_VerifyRecover, SH, BP, UL, BP, ULP)
KF_WRAP5(C_DigestEncryptUpdate, SH, BP, UL, BP, ULP)
KF_WRAP5(C_DecryptDigestUpdate, SH, BP, UL, BP, ULP)
KF_WRAP5(C_SignEncryptUpdate, SH, BP, UL, BP, ULP)
KF_WRAP5(C_DecryptVerifyUpdate, SH, BP, UL, BP, ULP)
KF_MWRAP5(C_GenerateKey, SH, MP, AP, UL, CK_OBJECT_HANDLE_PTR)
KF_MWRAP8(C_GenerateKeyPair, SH, MP, AP, UL, AP, UL, CK_OBJECT_HANDLE_PTR, CK_OBJECT_HANDLE_PTR)
KF_MWRAP6(C_WrapKey, SH, MP, OH, OH, BP, ULP)
KF_MWRAP8(C_UnwrapKey, SH, MP, OH, BP, UL, AP, UL, CK_OBJECT_HANDLE_PTR)
KF_MWRAP6(C_DeriveKey, SH, MP, OH, AP, UL, CK_OBJECT_HANDLE_PTR)
KF_WRAP3(C_SeedRandom, SH, BP, UL)
KF_WRAP3(C_GenerateRandom, SH, BP, UL)
KF_WRAP1(C_GetFunctionStatus, SH)
KF_WRAP1(C_CancelFunction, SH)
KF_WRAP3(C_WaitForSlotEvent, CK_FLAGS, CK_SLOT_ID_PTR, CK_VOID_PTR)

/* Never faulted: a test must always be able to shut the module down. */
static CK_RV kf_C_Finalize(CK_VOID_PTR reserved_)
{
    if (kf.real == NULL) {
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    return kf.real->C_Finalize(reserved_);
}

/* The mechanism list without the hidden ones, in the module's order;
 * the two-call length pattern works on the filtered count. */
static CK_RV kf_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
    CK_MECHANISM_TYPE *all = NULL;
    CK_ULONG n = 0;
    CK_ULONG kept = 0;
    CK_RV rv;

    KF_BEGIN(C_GetMechanismList)
    if (count == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    rv = kf.real->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK) {
        return rv;
    }
    all = calloc(n > 0 ? n : 1, sizeof(*all));
    if (all == NULL) {
        return CKR_HOST_MEMORY;
    }
    rv = kf.real->C_GetMechanismList(slot, all, &n);
    if (rv == CKR_OK) {
        for (CK_ULONG i = 0; i < n; i++) {
            if (!kf_hidden(all[i])) {
                all[kept++] = all[i];
            }
        }
        if (list != NULL && *count < kept) {
            rv = CKR_BUFFER_TOO_SMALL;
        } else if (list != NULL) {
            memcpy(list, all, kept * sizeof(*all));
        }
        *count = kept;
    }
    free(all);
    return rv;
}

static CK_RV kf_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO_PTR info)
{
    KF_BEGIN(C_GetMechanismInfo)
    CK_RV rv;

    if (kf_hidden(mech)) {
        return CKR_MECHANISM_INVALID;
    }
    rv = kf.real->C_GetMechanismInfo(slot, mech, info);
    if (rv == CKR_OK && info != NULL) {
        info->flags |= kf_added_flags(mech);
    }
    return rv;
}

/* The session calls also keep the figures of the status file. */
static CK_RV kf_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv;

    KF_BEGIN(C_OpenSession)
    rv = kf.real->C_OpenSession(slot, flags, app, notify, out);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&kf.lock);
        kf_session_add(*out, slot);
        pthread_mutex_unlock(&kf.lock);
        kf_status_write();
    }
    return rv;
}

static CK_RV kf_C_CloseSession(CK_SESSION_HANDLE s)
{
    CK_RV rv;

    KF_BEGIN(C_CloseSession)
    rv = kf.real->C_CloseSession(s);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&kf.lock);
        kf_session_remove(s);
        pthread_mutex_unlock(&kf.lock);
        kf_status_write();
    }
    return rv;
}

static CK_RV kf_C_CloseAllSessions(CK_SLOT_ID slot)
{
    CK_RV rv;

    KF_BEGIN(C_CloseAllSessions)
    rv = kf.real->C_CloseAllSessions(slot);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&kf.lock);
        kf_session_remove_slot(slot);
        pthread_mutex_unlock(&kf.lock);
        kf_status_write();
    }
    return rv;
}

/* The entry in the list must be this very function, not a wrapper. */
#define kf_C_GetFunctionList C_GetFunctionList

static CK_FUNCTION_LIST kf_list = {
    .version = { 2, 40 },
#define KF_ENTRY(n) .n = kf_##n,
    KF_FUNCTIONS(KF_ENTRY)
#undef KF_ENTRY
};

__attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    if (list == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    pthread_once(&kf.once, kf_load);
    if (kf.real == NULL) {
        kf_log("%s", kf.load_error);
        return CKR_GENERAL_ERROR;
    }
    *list = &kf_list;
    return CKR_OK;
}
