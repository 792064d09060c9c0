/*
 * kg_p11_ceiling.c - the raw PKCS#11 ceiling of a token for the gateway's
 * key paths (kg-p11-ceiling).
 *
 *   kg-p11-ceiling --module /usr/lib/softhsm/libsofthsm2.so --token kmipgw \
 *                  --pin-file DIR/hsm.pin --threads 8 --secs 5
 *
 * Measures, with 1 thread and with N threads (each its own session, one
 * login for the token), for a fixed duration each, the PKCS#11 calls the
 * gateway makes per request, and nothing else:
 *
 *   get     the plaintext Get path: C_UnwrapKey of a 40-byte blob (an AES-256
 *           key wrapped with CKM_AES_KEY_WRAP_PAD, RFC 5649) into a session
 *           object, C_GetAttributeValue(CKA_VALUE) twice (length, then
 *           value), C_DestroyObject
 *   create  the Create path: C_GenerateKey (AES-256 session object),
 *           C_WrapKey twice (length, then blob) with CKM_AES_KEY_WRAP_PAD,
 *           C_DestroyObject
 *   get-sealed  every PKCS#11 call the gateway's plaintext Get makes: the
 *           session check (C_GetSessionInfo), the blob's MAC checked in the
 *           HSM (C_VerifyInit + C_Verify, HMAC-SHA256 over 96 bytes), the
 *           get path above, and the read-back of the unwrapped object's
 *           six security flags (one C_GetAttributeValue)
 *
 * with the same templates as pkcs11/kg_p11.c. The wrapping key is the
 * gateway's master wrapping key, found by label (--mwk-label, default
 * kmipgw-mwk), used as the gateway uses it: through a session copy made
 * inside the HSM (wrap_key=copy; pkcs11/kg_p11_copy.c), or with
 * --token-wrap-key the token object itself, which SoftHSM re-reads from
 * its file generation on every use. Without it (or with --session-wrap-key)
 * a session AES-256 wrapping key is generated instead, and the output says
 * so. Nothing is written to the token.
 *
 * Output, one line per measurement, then a human line:
 *   p11 op=get threads=8 ops=123456 secs=5.00 ops_per_sec=24691.2 errors=0 wrap_key=copy
 * Exit status: 0 clean, 1 if any call failed during a measurement, 2 on bad
 * usage or setup failure (module, token, login, wrapping key).
 *
 * This file is a test tool: it includes pkcs11.h directly (DESIGN.md allows
 * tests/ everything) and dlopens the module itself, so that the number
 * includes no libp11 or gateway code at all.
 */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define KG_CEIL_MAX_THREADS 256u
#define KG_CEIL_AES_BYTES 32u
#define KG_CEIL_BLOB_MAX 64u

enum kg_ceil_op {
    KG_CEIL_GET,
    KG_CEIL_CREATE,
    KG_CEIL_GET_SEALED,
    KG_CEIL_N_OPS,
};

static const char *const kg_ceil_op_names[] = {
    [KG_CEIL_GET] = "get",
    [KG_CEIL_CREATE] = "create",
    [KG_CEIL_GET_SEALED] = "get-sealed",
};

static const char *const kg_ceil_op_calls[] = {
    [KG_CEIL_GET] = "C_UnwrapKey(KWP) + C_GetAttributeValue(CKA_VALUE) + C_DestroyObject",
    [KG_CEIL_CREATE] = "C_GenerateKey(AES-256) + C_WrapKey(KWP) + C_DestroyObject",
    [KG_CEIL_GET_SEALED] = "C_GetSessionInfo + C_VerifyInit/C_Verify(HMAC) + the get path + "
                           "C_GetAttributeValue(6 flags)",
};

/* How the wrapping key is held (the wrap_key= of the output). */
enum kg_ceil_wrap_kind {
    KG_CEIL_WRAP_COPY,    /* a session copy of the token MWK, as the gateway uses it */
    KG_CEIL_WRAP_TOKEN,   /* the token MWK itself */
    KG_CEIL_WRAP_SESSION, /* a fresh session key (no MWK, or --session-wrap-key) */
};

static const char *const kg_ceil_wrap_names[] = {
    [KG_CEIL_WRAP_COPY] = "copy",
    [KG_CEIL_WRAP_TOKEN] = "token",
    [KG_CEIL_WRAP_SESSION] = "session",
};

/* The bytes a sealed Get's MAC covers (about a binding's size). */
#define KG_CEIL_SEALED_BYTES 96u
#define KG_CEIL_TAG_BYTES 32u

struct kg_ceil_opts {
    const char *module;
    const char *token;
    const char *pin_file;
    const char *mwk_label;
    bool session_wrap_key;
    bool token_wrap_key;
    uint32_t threads;
    double secs;
    bool do_op[KG_CEIL_N_OPS];
};

/* Shared, read-only while threads run. */
struct kg_ceil {
    const struct kg_ceil_opts *o;
    CK_FUNCTION_LIST_PTR fn;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE wrap_key;
    enum kg_ceil_wrap_kind wrap_kind;
    CK_OBJECT_HANDLE mac_key; /* session HMAC key for get-sealed */
    CK_BYTE sealed[KG_CEIL_SEALED_BYTES];
    CK_BYTE tag[KG_CEIL_TAG_BYTES];
    CK_BYTE blob[KG_CEIL_BLOB_MAX];
    CK_ULONG blob_len;
    enum kg_ceil_op op;
    uint64_t t_stop;
    pthread_barrier_t ready;
};

struct kg_ceil_thread {
    struct kg_ceil *c;
    pthread_t tid;
    uint64_t ops;
    uint64_t errors;
    CK_RV first_rv;
    const char *first_call;
    bool no_session;
};

static uint64_t kg_ceil_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Zero a buffer that held key bytes in a way the compiler keeps. */
static void kg_ceil_cleanse(void *p, size_t n)
{
    volatile unsigned char *v = p;

    while (n-- > 0) {
        *v++ = 0;
    }
}

static void kg_ceil_fail(struct kg_ceil_thread *t, const char *call, CK_RV rv)
{
    if (t->errors++ == 0) {
        t->first_rv = rv;
        t->first_call = call;
    }
}

/* What a sealed Get does before its unwrap: the pool's session check and
 * the blob MAC. False (counted as a failure) when a call failed. */
static bool kg_ceil_sealed_checks(struct kg_ceil_thread *t, CK_SESSION_HANDLE s)
{
    const struct kg_ceil *c = t->c;
    CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 };
    CK_SESSION_INFO info;
    CK_BYTE data[KG_CEIL_SEALED_BYTES];
    CK_BYTE tag[KG_CEIL_TAG_BYTES];
    CK_RV rv;

    memcpy(data, c->sealed, sizeof(data));
    memcpy(tag, c->tag, sizeof(tag));
    if ((rv = c->fn->C_GetSessionInfo(s, &info)) != CKR_OK) {
        kg_ceil_fail(t, "C_GetSessionInfo", rv);
        return false;
    }
    if ((rv = c->fn->C_VerifyInit(s, &hmac, c->mac_key)) != CKR_OK) {
        kg_ceil_fail(t, "C_VerifyInit", rv);
        return false;
    }
    if ((rv = c->fn->C_Verify(s, data, sizeof(data), tag, sizeof(tag))) != CKR_OK) {
        kg_ceil_fail(t, "C_Verify", rv);
        return false;
    }
    return true;
}

/* The unwrapped object's security flags, read back as kg_p11_key_enforce does. */
static bool kg_ceil_read_flags(struct kg_ceil_thread *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj)
{
    CK_BBOOL got[6];
    CK_ATTRIBUTE q[] = {
        { CKA_TOKEN, &got[0], 1 },     { CKA_PRIVATE, &got[1], 1 }, { CKA_SENSITIVE, &got[2], 1 },
        { CKA_EXTRACTABLE, &got[3], 1 }, { CKA_ENCRYPT, &got[4], 1 }, { CKA_DECRYPT, &got[5], 1 },
    };
    CK_RV rv = t->c->fn->C_GetAttributeValue(s, obj, q, sizeof(q) / sizeof(q[0]));

    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_GetAttributeValue(flags)", rv);
        return false;
    }
    return true;
}

/* The plaintext Get path of kg_p11_export_plaintext; `sealed`: with the
 * checks the gateway makes around it (get-sealed). */
static void kg_ceil_get_once(struct kg_ceil_thread *t, CK_SESSION_HANDLE s, bool sealed)
{
    const struct kg_ceil *c = t->c;
    CK_MECHANISM mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &no, sizeof(no) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
    };
    CK_BYTE value[KG_CEIL_AES_BYTES];
    CK_ATTRIBUTE val = { CKA_VALUE, NULL, 0 };
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_BYTE blob[KG_CEIL_BLOB_MAX];
    bool ok = false;
    CK_RV rv;

    if (sealed && !kg_ceil_sealed_checks(t, s)) {
        return;
    }
    /* The gateway unwraps from its own copy of the blob, read from SQLite. */
    memcpy(blob, c->blob, c->blob_len);
    rv = c->fn->C_UnwrapKey(s, &mech, c->wrap_key, blob, c->blob_len, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_UnwrapKey", rv);
        return;
    }
    if (sealed && !kg_ceil_read_flags(t, s, obj)) {
        goto out;
    }
    rv = c->fn->C_GetAttributeValue(s, obj, &val, 1);
    if (rv != CKR_OK || val.ulValueLen != KG_CEIL_AES_BYTES) {
        kg_ceil_fail(t, "C_GetAttributeValue(length)", rv != CKR_OK ? rv : CKR_GENERAL_ERROR);
        goto out;
    }
    val.pValue = value;
    rv = c->fn->C_GetAttributeValue(s, obj, &val, 1);
    kg_ceil_cleanse(value, sizeof(value));
    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_GetAttributeValue", rv);
        goto out;
    }
    ok = true;
out:
    rv = c->fn->C_DestroyObject(s, obj);
    if (rv != CKR_OK) {
        /* An operation whose object stays behind failed. */
        kg_ceil_fail(t, "C_DestroyObject", rv);
    } else if (ok) {
        t->ops++;
    }
}

/* The Create path of kg_p11_generate_aes. */
static void kg_ceil_create_once(struct kg_ceil_thread *t, CK_SESSION_HANDLE s)
{
    const struct kg_ceil *c = t->c;
    CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_MECHANISM wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_ULONG value_len = KG_CEIL_AES_BYTES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
        { CKA_ENCRYPT, &yes, sizeof(yes) },
        { CKA_DECRYPT, &yes, sizeof(yes) },
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_BYTE blob[KG_CEIL_BLOB_MAX];
    CK_ULONG len = 0;
    bool ok = false;
    CK_RV rv;

    rv = c->fn->C_GenerateKey(s, &gen, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &key);
    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_GenerateKey", rv);
        return;
    }
    rv = c->fn->C_WrapKey(s, &wrap, c->wrap_key, key, NULL, &len);
    if (rv != CKR_OK || len > sizeof(blob)) {
        kg_ceil_fail(t, "C_WrapKey(length)", rv != CKR_OK ? rv : CKR_BUFFER_TOO_SMALL);
        goto out;
    }
    rv = c->fn->C_WrapKey(s, &wrap, c->wrap_key, key, blob, &len);
    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_WrapKey", rv);
        goto out;
    }
    ok = true;
out:
    rv = c->fn->C_DestroyObject(s, key);
    if (rv != CKR_OK) {
        kg_ceil_fail(t, "C_DestroyObject", rv);
    } else if (ok) {
        t->ops++;
    }
}

static void *kg_ceil_thread_main(void *arg)
{
    struct kg_ceil_thread *t = arg;
    struct kg_ceil *c = t->c;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv;

    /* Sessions are opened before the clock starts; login is per token. */
    rv = c->fn->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        t->no_session = true;
        kg_ceil_fail(t, "C_OpenSession", rv);
    }
    pthread_barrier_wait(&c->ready);
    if (!t->no_session) {
        while (kg_ceil_now() < c->t_stop) {
            if (c->op == KG_CEIL_CREATE) {
                kg_ceil_create_once(t, s);
            } else {
                kg_ceil_get_once(t, s, c->op == KG_CEIL_GET_SEALED);
            }
        }
        (void)c->fn->C_CloseSession(s);
    }
    return NULL;
}

/*
 * One measurement: `threads` threads, each its own session, for o->secs.
 * Returns the number of failed calls, or -1 if threads could not start.
 */
static int64_t kg_ceil_measure(struct kg_ceil *c, enum kg_ceil_op op, uint32_t threads)
{
    struct kg_ceil_thread *ts = calloc(threads, sizeof(*ts));
    uint64_t ops = 0, errors = 0;
    uint32_t started = 0;
    const struct kg_ceil_thread *first_err = NULL;

    if (ts == NULL || pthread_barrier_init(&c->ready, NULL, threads + 1) != 0) {
        free(ts);
        return -1;
    }
    c->op = op;
    c->t_stop = UINT64_MAX;
    for (; started < threads; started++) {
        ts[started].c = c;
        if (pthread_create(&ts[started].tid, NULL, kg_ceil_thread_main, &ts[started]) != 0) {
            break;
        }
    }
    if (started < threads) {
        /* The barrier can never fill; nothing sensible is left to do. */
        fprintf(stderr, "kg-p11-ceiling: cannot start thread %u\n", started);
        exit(2);
    }
    /* t_stop is read by the threads only after the barrier. */
    c->t_stop = kg_ceil_now() + (uint64_t)(c->o->secs * 1e9);
    pthread_barrier_wait(&c->ready);
    for (uint32_t i = 0; i < threads; i++) {
        pthread_join(ts[i].tid, NULL);
        ops += ts[i].ops;
        errors += ts[i].errors;
        if (ts[i].errors > 0 && first_err == NULL) {
            first_err = &ts[i];
        }
    }
    pthread_barrier_destroy(&c->ready);
    printf("p11 op=%s threads=%u ops=%" PRIu64 " secs=%.2f ops_per_sec=%.1f errors=%" PRIu64 " wrap_key=%s\n",
           kg_ceil_op_names[op], threads, ops, c->o->secs, (double)ops / c->o->secs, errors,
           kg_ceil_wrap_names[c->wrap_kind]);
    printf("%s path (%s), %u thread%s: %.1f ops/s, %" PRIu64 " failed call%s\n", kg_ceil_op_names[op],
           kg_ceil_op_calls[op], threads, threads == 1 ? "" : "s", (double)ops / c->o->secs, errors,
           errors == 1 ? "" : "s");
    if (first_err != NULL) {
        fprintf(stderr, "kg-p11-ceiling: first failure: %s returned 0x%lx\n", first_err->first_call,
                (unsigned long)first_err->first_rv);
    }
    fflush(stdout);
    free(ts);
    return (int64_t)errors;
}

/* ---- setup ----------------------------------------------------------------------------------- */

/* The PIN is the file's first line (as in gateway.yaml's pin_file). */
static int kg_ceil_read_pin(const char *path, char *pin, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "kg-p11-ceiling: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fgets(pin, (int)cap, f) == NULL) {
        fclose(f);
        fprintf(stderr, "kg-p11-ceiling: %s is empty\n", path);
        return -1;
    }
    fclose(f);
    n = strcspn(pin, "\r\n");
    pin[n] = '\0';
    *len = n;
    return n > 0 ? 0 : -1;
}

static int kg_ceil_find_slot(struct kg_ceil *c)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    size_t want = strlen(c->o->token);
    int rc = -1;

    if (c->fn->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0 || (slots = calloc(n, sizeof(*slots))) == NULL ||
        c->fn->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
        fprintf(stderr, "kg-p11-ceiling: no token present\n");
        goto out;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        size_t len = sizeof(info.label);

        if (c->fn->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
            continue;
        }
        /* Labels are blank-padded, not NUL-terminated. */
        while (len > 0 && info.label[len - 1] == ' ') {
            len--;
        }
        if (len == want && memcmp(info.label, c->o->token, want) == 0) {
            c->slot = slots[i];
            rc = 0;
            goto out;
        }
    }
    fprintf(stderr, "kg-p11-ceiling: no token labelled '%s'\n", c->o->token);
out:
    free(slots);
    return rc;
}

static int kg_ceil_find_mwk(struct kg_ceil *c, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, (void *)c->o->mwk_label, strlen(c->o->mwk_label) },
    };
    CK_ATTRIBUTE session_copy = { CKA_TOKEN, &no, sizeof(no) };
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;

    if (c->fn->C_FindObjectsInit(s, tmpl, sizeof(tmpl) / sizeof(tmpl[0])) != CKR_OK) {
        return -1;
    }
    if (c->fn->C_FindObjects(s, objs, 2, &n) != CKR_OK) {
        n = 0;
    }
    (void)c->fn->C_FindObjectsFinal(s);
    if (n != 1) {
        return -1;
    }
    c->wrap_key = objs[0];
    c->wrap_kind = KG_CEIL_WRAP_TOKEN;
    if (!c->o->token_wrap_key) {
        if (c->fn->C_CopyObject(s, objs[0], &session_copy, 1, &c->wrap_key) != CKR_OK) {
            fprintf(stderr, "kg-p11-ceiling: the token will not copy the MWK; using the token object\n");
            c->wrap_key = objs[0];
        } else {
            c->wrap_kind = KG_CEIL_WRAP_COPY;
        }
    }
    return 0;
}

/* A session AES-256 wrapping key, as sensitive and unextractable as the MWK. */
static int kg_ceil_session_wrap_key(struct kg_ceil *c, CK_SESSION_HANDLE s)
{
    CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_ULONG value_len = KG_CEIL_AES_BYTES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &no, sizeof(no) },
        { CKA_WRAP, &yes, sizeof(yes) },
        { CKA_UNWRAP, &yes, sizeof(yes) },
    };
    CK_RV rv = c->fn->C_GenerateKey(s, &gen, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &c->wrap_key);

    if (rv != CKR_OK) {
        fprintf(stderr, "kg-p11-ceiling: C_GenerateKey (wrapping key) returned 0x%lx\n", (unsigned long)rv);
        return -1;
    }
    c->wrap_kind = KG_CEIL_WRAP_SESSION;
    return 0;
}

/* The session HMAC key of get-sealed, and the tag its Verify checks. */
static int kg_ceil_mac_key(struct kg_ceil *c, CK_SESSION_HANDLE s)
{
    CK_MECHANISM gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
    CK_MECHANISM hmac = { CKM_SHA256_HMAC, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_GENERIC_SECRET;
    CK_ULONG value_len = 32;
    CK_ULONG tag_len = KG_CEIL_TAG_BYTES;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },     { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) }, { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },   { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &no, sizeof(no) }, { CKA_SIGN, &yes, sizeof(yes) },
        { CKA_VERIFY, &yes, sizeof(yes) },
    };
    CK_RV rv = c->fn->C_GenerateKey(s, &gen, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &c->mac_key);

    memset(c->sealed, 0x5a, sizeof(c->sealed));
    if (rv == CKR_OK) {
        rv = c->fn->C_SignInit(s, &hmac, c->mac_key);
    }
    if (rv == CKR_OK) {
        rv = c->fn->C_Sign(s, c->sealed, sizeof(c->sealed), c->tag, &tag_len);
    }
    if (rv != CKR_OK || tag_len != KG_CEIL_TAG_BYTES) {
        fprintf(stderr, "kg-p11-ceiling: making the HMAC key and tag failed: 0x%lx\n", (unsigned long)rv);
        return -1;
    }
    return 0;
}

/* The blob every Get unwraps: one managed key, made the Create way. */
static int kg_ceil_make_blob(struct kg_ceil *c, CK_SESSION_HANDLE s)
{
    struct kg_ceil_thread t = { .c = c };
    CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_MECHANISM wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE ktype = CKK_AES;
    CK_ULONG value_len = KG_CEIL_AES_BYTES, len = sizeof(c->blob);
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &ktype, sizeof(ktype) },
        { CKA_VALUE_LEN, &value_len, sizeof(value_len) },
        { CKA_TOKEN, &no, sizeof(no) },
        { CKA_PRIVATE, &yes, sizeof(yes) },
        { CKA_SENSITIVE, &yes, sizeof(yes) },
        { CKA_EXTRACTABLE, &yes, sizeof(yes) },
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_RV rv = c->fn->C_GenerateKey(s, &gen, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &key);

    if (rv == CKR_OK) {
        rv = c->fn->C_WrapKey(s, &wrap, c->wrap_key, key, c->blob, &len);
        (void)c->fn->C_DestroyObject(s, key);
    }
    if (rv != CKR_OK) {
        fprintf(stderr, "kg-p11-ceiling: cannot make a wrapped key to unwrap: 0x%lx\n", (unsigned long)rv);
        return -1;
    }
    c->blob_len = len;
    /* One trial Get, so that a token that cannot do the path fails here. */
    kg_ceil_get_once(&t, s, false);
    if (t.errors != 0) {
        fprintf(stderr, "kg-p11-ceiling: trial unwrap failed: %s returned 0x%lx\n", t.first_call,
                (unsigned long)t.first_rv);
        return -1;
    }
    return 0;
}

static void kg_ceil_usage(FILE *f)
{
    fprintf(f,
            "usage: kg-p11-ceiling --module PATH --token LABEL --pin-file FILE [options]\n"
            "  --threads N        the N of the second measurement, 1..%u (default 8, the devenv's sessions)\n"
            "  --secs S           duration of each measurement (default 5)\n"
            "  --ops LIST         of get, create, get-sealed (default all three)\n"
            "  --mwk-label LABEL  wrapping key to use, found by label (default kmipgw-mwk), through a\n"
            "                     session copy as the gateway does\n"
            "  --token-wrap-key   use the MWK token object itself, not a session copy\n"
            "  --session-wrap-key use a fresh session AES-256 wrapping key instead\n"
            "Runs each operation with 1 thread, then with N threads (each its own session).\n",
            KG_CEIL_MAX_THREADS);
}

/* --ops: a comma-separated list of operation names, each known. */
static int kg_ceil_parse_ops(const char *list, struct kg_ceil_opts *o)
{
    char buf[64];
    char *save = NULL;
    bool any = false;

    if (strlen(list) >= sizeof(buf)) {
        return -1;
    }
    strcpy(buf, list);
    memset(o->do_op, 0, sizeof(o->do_op));
    for (char *name = strtok_r(buf, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        int op = 0;

        while (op < KG_CEIL_N_OPS && strcmp(name, kg_ceil_op_names[op]) != 0) {
            op++;
        }
        if (op == KG_CEIL_N_OPS) {
            return -1;
        }
        o->do_op[op] = true;
        any = true;
    }
    return any ? 0 : -1;
}

static int kg_ceil_parse_args(int argc, char **argv, struct kg_ceil_opts *o)
{
    static const struct option longopts[] = {
        { "module", required_argument, NULL, 'm' },   { "token", required_argument, NULL, 't' },
        { "pin-file", required_argument, NULL, 'p' }, { "threads", required_argument, NULL, 'n' },
        { "secs", required_argument, NULL, 's' },     { "ops", required_argument, NULL, 'o' },
        { "mwk-label", required_argument, NULL, 'l' }, { "session-wrap-key", no_argument, NULL, 'S' },
        { "token-wrap-key", no_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
    };
    char *end = NULL;
    unsigned long v;
    int ch;

    *o = (struct kg_ceil_opts){ .mwk_label = "kmipgw-mwk", .threads = 8, .secs = 5.0,
                                .do_op = { true, true, true } };
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            o->module = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'p':
            o->pin_file = optarg;
            break;
        case 'n':
            errno = 0;
            v = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] == '-' || v < 1 || v > KG_CEIL_MAX_THREADS) {
                fprintf(stderr, "kg-p11-ceiling: --threads must be 1..%u\n", KG_CEIL_MAX_THREADS);
                return -1;
            }
            o->threads = (uint32_t)v;
            break;
        case 's':
            errno = 0;
            o->secs = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || !(o->secs >= 0.1) || o->secs > 3600.0) {
                fprintf(stderr, "kg-p11-ceiling: --secs must be 0.1..3600\n");
                return -1;
            }
            break;
        case 'o':
            if (kg_ceil_parse_ops(optarg, o) != 0) {
                fprintf(stderr, "kg-p11-ceiling: --ops takes a comma-separated list of get, create, get-sealed\n");
                return -1;
            }
            break;
        case 'l':
            o->mwk_label = optarg;
            break;
        case 'S':
            o->session_wrap_key = true;
            break;
        case 'T':
            o->token_wrap_key = true;
            break;
        case 'h':
            kg_ceil_usage(stdout);
            exit(0);
        default:
            kg_ceil_usage(stderr);
            return -1;
        }
    }
    if (optind != argc || o->module == NULL || o->token == NULL || o->pin_file == NULL) {
        kg_ceil_usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct kg_ceil_opts o;
    struct kg_ceil c;
    CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
    CK_C_GetFunctionList get_list;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    void *lib = NULL;
    bool initialized = false;
    char pin[256];
    size_t pin_len = 0;
    int64_t failed = 0;
    int rc = 2;
    CK_RV rv;

    if (kg_ceil_parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    memset(&c, 0, sizeof(c));
    c.o = &o;
    lib = dlopen(o.module, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "kg-p11-ceiling: cannot load %s: %s\n", o.module, dlerror());
        goto out;
    }
    /* POSIX dlsym returns void *; a function pointer is what it holds. */
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    if (get_list == NULL || get_list(&c.fn) != CKR_OK || c.fn == NULL) {
        fprintf(stderr, "kg-p11-ceiling: %s has no usable C_GetFunctionList\n", o.module);
        goto out;
    }
    rv = c.fn->C_Initialize(&init);
    if (rv != CKR_OK) {
        fprintf(stderr, "kg-p11-ceiling: C_Initialize returned 0x%lx\n", (unsigned long)rv);
        goto out;
    }
    initialized = true;
    if (kg_ceil_find_slot(&c) != 0 || kg_ceil_read_pin(o.pin_file, pin, sizeof(pin), &pin_len) != 0) {
        goto out;
    }
    rv = c.fn->C_OpenSession(c.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK) {
        rv = c.fn->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
        if (rv == CKR_USER_ALREADY_LOGGED_IN) {
            rv = CKR_OK;
        }
    }
    kg_ceil_cleanse(pin, sizeof(pin));
    if (rv != CKR_OK) {
        fprintf(stderr, "kg-p11-ceiling: opening a session and logging in to '%s' failed: 0x%lx\n", o.token,
                (unsigned long)rv);
        goto out;
    }
    if (o.session_wrap_key || kg_ceil_find_mwk(&c, s) != 0) {
        if (!o.session_wrap_key) {
            fprintf(stderr, "kg-p11-ceiling: no single key labelled '%s'; using a session wrapping key\n",
                    o.mwk_label);
        }
        if (kg_ceil_session_wrap_key(&c, s) != 0) {
            goto out;
        }
    }
    if (kg_ceil_make_blob(&c, s) != 0 || kg_ceil_mac_key(&c, s) != 0) {
        goto out;
    }
    /* The setup session stays open: a session wrapping key lives as long as it. */
    for (int op = 0; op < KG_CEIL_N_OPS; op++) {
        if (!o.do_op[op]) {
            continue;
        }
        for (int pass = 0; pass < (o.threads > 1 ? 2 : 1); pass++) {
            int64_t e = kg_ceil_measure(&c, (enum kg_ceil_op)op, pass == 0 ? 1 : o.threads);
            if (e < 0) {
                goto out;
            }
            failed += e;
        }
    }
    rc = failed == 0 ? 0 : 1;
out:
    if (s != CK_INVALID_HANDLE) {
        (void)c.fn->C_CloseSession(s);
    }
    if (initialized) {
        (void)c.fn->C_Finalize(NULL);
    }
    if (lib != NULL) {
        dlclose(lib);
    }
    return rc;
}
