/*
 * kg_p11_test.c - the pkcs11/ layer.
 *
 * Two halves. The pool and the CK_RV mapping run over a fake
 * CK_FUNCTION_LIST that can refuse sessions, kill them, lose the login or
 * lose the device (after libp11's tests/session-pool-test.c), and check
 * what the pool does after each kind of failure (kg_p11_session_end). The key
 * operations run against a real SoftHSMv2 token in a temporary directory
 * (SOFTHSM2_CONF), and pass with a message when SoftHSM is not installed.
 */
#include "kg_test.h"

#include "kg_p11.h"
#include "kg_p11_internal.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ======================================================================
 * A fake PKCS#11 module: just what the pool calls.
 * ====================================================================== */

#define FAKE_MAX_HANDLES 64
#define FAKE_PIN "1234"

static struct {
    pthread_mutex_t lock;
    CK_ULONG max_rw;            /* ulMaxRwSessionCount reported */
    CK_FLAGS token_flags;       /* CKF_LOGIN_REQUIRED or 0 */
    CK_RV token_info_rv;        /* forced C_GetTokenInfo result */
    unsigned open_limit;        /* CKR_SESSION_COUNT once this many live (0: none) */
    CK_RV open_rv;              /* forced C_OpenSession failure (CKR_OK: none) */
    CK_RV info_rv;              /* forced C_GetSessionInfo failure for live sessions */
    bool live[FAKE_MAX_HANDLES];
    unsigned n_live;
    CK_SESSION_HANDLE next;
    bool logged_in;             /* token-wide, as in PKCS#11 */
    unsigned opens, closes, logins, infos, session_counts;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER };

static CK_FUNCTION_LIST fake_fl;

static CK_RV fake_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    (void)slot;
    memset(info, 0, sizeof(*info));
    info->ulMaxRwSessionCount = fake.max_rw;
    info->flags = fake.token_flags;
    return fake.token_info_rv;
}

static CK_RV fake_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                               CK_SESSION_HANDLE_PTR out)
{
    CK_RV rv = CKR_OK;

    (void)slot;
    (void)app;
    (void)notify;
    pthread_mutex_lock(&fake.lock);
    fake.opens++;
    if (!(flags & CKF_SERIAL_SESSION) || !(flags & CKF_RW_SESSION)) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (fake.open_rv != CKR_OK) {
        rv = fake.open_rv;
    } else if ((fake.open_limit != 0 && fake.n_live >= fake.open_limit) || fake.next + 1 >= FAKE_MAX_HANDLES) {
        fake.session_counts++;
        rv = CKR_SESSION_COUNT;
    } else {
        *out = ++fake.next;
        fake.live[*out] = true;
        fake.n_live++;
    }
    pthread_mutex_unlock(&fake.lock);
    return rv;
}

static CK_RV fake_close_session(CK_SESSION_HANDLE s)
{
    CK_RV rv = CKR_SESSION_HANDLE_INVALID;

    pthread_mutex_lock(&fake.lock);
    fake.closes++;
    if (s < FAKE_MAX_HANDLES && fake.live[s]) {
        fake.live[s] = false;
        fake.n_live--;
        if (fake.n_live == 0) {
            fake.logged_in = false; /* closing the last session logs out */
        }
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&fake.lock);
    return rv;
}

static CK_RV fake_get_session_info(CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&fake.lock);
    fake.infos++;
    if (s >= FAKE_MAX_HANDLES || !fake.live[s]) {
        rv = CKR_SESSION_HANDLE_INVALID;
    } else if (fake.info_rv != CKR_OK) {
        rv = fake.info_rv;
    } else {
        memset(info, 0, sizeof(*info));
        info->flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
        info->state = fake.logged_in ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION;
    }
    pthread_mutex_unlock(&fake.lock);
    return rv;
}

static CK_RV fake_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&fake.lock);
    fake.logins++;
    if (s >= FAKE_MAX_HANDLES || !fake.live[s]) {
        rv = CKR_SESSION_HANDLE_INVALID;
    } else if (user != CKU_USER) {
        rv = CKR_USER_TYPE_INVALID;
    } else if (fake.logged_in) {
        rv = CKR_USER_ALREADY_LOGGED_IN;
    } else if (pin_len != strlen(FAKE_PIN) || memcmp(pin, FAKE_PIN, pin_len) != 0) {
        rv = CKR_PIN_INCORRECT;
    } else {
        fake.logged_in = true;
    }
    pthread_mutex_unlock(&fake.lock);
    return rv;
}

/* Reset the fake to a token with no session limit and the user logged in. */
static void fake_reset(void)
{
    pthread_mutex_lock(&fake.lock);
    fake.max_rw = CK_EFFECTIVELY_INFINITE;
    fake.token_flags = CKF_LOGIN_REQUIRED;
    fake.token_info_rv = CKR_OK;
    fake.open_limit = 0;
    fake.open_rv = CKR_OK;
    fake.info_rv = CKR_OK;
    memset(fake.live, 0, sizeof(fake.live));
    fake.n_live = 0;
    fake.next = 0;
    fake.logged_in = true;
    fake.opens = fake.closes = fake.logins = fake.infos = fake.session_counts = 0;
    pthread_mutex_unlock(&fake.lock);

    memset(&fake_fl, 0, sizeof(fake_fl)); /* anything else the pool calls crashes */
    fake_fl.C_GetTokenInfo = fake_get_token_info;
    fake_fl.C_OpenSession = fake_open_session;
    fake_fl.C_CloseSession = fake_close_session;
    fake_fl.C_GetSessionInfo = fake_get_session_info;
    fake_fl.C_Login = fake_login;
    kg_error_clear();
}

static struct kg_secret *pin_of(const char *text)
{
    struct kg_secret *pin = NULL;

    if (kg_failed(kg_secret_from(text, strlen(text), &pin))) {
        return NULL;
    }
    return pin;
}

/* A pool over the fake with cap `max`, PIN FAKE_PIN, acquire timeout `ms`. */
static bool fake_pool(struct kg_p11_pool *pool, uint32_t max, uint32_t ms)
{
    struct kg_secret *pin = pin_of(FAKE_PIN);
    bool ok = pin != NULL && kg_ok(kg_p11_pool_init(pool, &fake_fl, 7, max, pin, ms));

    kg_secret_free(pin);
    return ok;
}

static void pool_figures(struct kg_p11_pool *pool, uint32_t *open, uint32_t *idle, uint32_t *cap)
{
    kg_p11_pool_stats(pool, open, idle, cap, NULL);
}

static void test_fake_pool_reuses_sessions(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE;
    uint32_t open, idle, cap;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 4, 0));
    pool_figures(&pool, &open, &idle, &cap);
    CU_ASSERT_EQUAL(open, 0); /* lazy */
    CU_ASSERT_EQUAL(cap, 4);

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_NOT_EQUAL(a, CK_INVALID_HANDLE);
    kg_p11_session_release(&pool, a);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_EQUAL(fake.opens, 1);
    CU_ASSERT_EQUAL(fake.infos, 2); /* checked on every checkout */
    CU_ASSERT_EQUAL(fake.logins, 0);
    kg_p11_session_release(&pool, b);
    kg_p11_session_release(&pool, CK_INVALID_HANDLE); /* no-op */
    pool_figures(&pool, &open, &idle, &cap);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);

    kg_p11_pool_cleanup(&pool);
    CU_ASSERT_EQUAL(fake.closes, 1);
    CU_ASSERT_EQUAL(fake.n_live, 0);
    kg_p11_pool_cleanup(&pool); /* zeroed: no-op */
}

static void test_fake_pool_cap_from_token(void)
{
    struct kg_p11_pool pool;
    uint32_t cap = 0;

    fake_reset();
    fake.max_rw = 2;
    CU_ASSERT_FATAL(fake_pool(&pool, 8, 0));
    pool_figures(&pool, NULL, NULL, &cap);
    CU_ASSERT_EQUAL(cap, 2);
    kg_p11_pool_cleanup(&pool);

    fake.max_rw = CK_UNAVAILABLE_INFORMATION;
    CU_ASSERT_FATAL(fake_pool(&pool, 8, 0));
    pool_figures(&pool, NULL, NULL, &cap);
    CU_ASSERT_EQUAL(cap, 8);
    kg_p11_pool_cleanup(&pool);

    fake.max_rw = 100;
    CU_ASSERT_FATAL(fake_pool(&pool, 3, 0));
    pool_figures(&pool, NULL, NULL, &cap);
    CU_ASSERT_EQUAL(cap, 3);
    kg_p11_pool_cleanup(&pool);
}

static void test_fake_pool_init_errors(void)
{
    struct kg_p11_pool pool;
    struct kg_secret *pin = pin_of(FAKE_PIN);

    fake_reset();
    CU_ASSERT_FATAL(pin != NULL);
    CU_ASSERT(kg_failed(kg_p11_pool_init(&pool, &fake_fl, 7, 0, pin, 0)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);

    fake.token_info_rv = CKR_TOKEN_NOT_PRESENT;
    CU_ASSERT(kg_failed(kg_p11_pool_init(&pool, &fake_fl, 7, 2, pin, 0)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "C_GetTokenInfo"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_TOKEN_NOT_PRESENT"));
    kg_p11_pool_cleanup(&pool); /* zeroed on failure: no-op */

    fake.token_info_rv = CKR_OK;
    CU_ASSERT(kg_failed(kg_p11_pool_init(&pool, &fake_fl, 7, 2, NULL, 0)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_LOGIN);

    /* A token without login needs no PIN, and the pool never logs in. */
    fake.token_flags = 0;
    fake.logged_in = false;
    CU_ASSERT_FATAL(kg_ok(kg_p11_pool_init(&pool, &fake_fl, 7, 2, NULL, 0)));
    {
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

        CU_ASSERT(kg_ok(kg_p11_session_acquire(&pool, &s)));
        CU_ASSERT_EQUAL(fake.logins, 0);
        kg_p11_session_release(&pool, s);
    }
    kg_p11_pool_cleanup(&pool);
    kg_secret_free(pin);
}

/* CKR_SESSION_COUNT lowers the cap to what we hold and waits; with nothing
 * held it fails instead of waiting forever. */
static void test_fake_session_count(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE, c = CK_INVALID_HANDLE;
    uint32_t open, idle, cap;

    fake_reset();
    fake.open_limit = 2;
    CU_ASSERT_FATAL(fake_pool(&pool, 4, 150));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &c)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_BUSY);
    CU_ASSERT_EQUAL(c, CK_INVALID_HANDLE);
    CU_ASSERT_EQUAL(fake.session_counts, 1); /* tried once, then waited */
    pool_figures(&pool, &open, &idle, &cap);
    CU_ASSERT_EQUAL(cap, 2);
    CU_ASSERT_EQUAL(open, 2);

    kg_p11_session_release(&pool, a);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &c)));
    CU_ASSERT_EQUAL(c, a);
    CU_ASSERT_EQUAL(fake.session_counts, 1);
    kg_p11_session_release(&pool, b);
    kg_p11_session_release(&pool, c);
    kg_p11_pool_cleanup(&pool);

    /* Someone else holds every session the token has. */
    fake_reset();
    fake.open_limit = 1;
    fake.live[1] = true;
    fake.n_live = 1;
    fake.next = 1;
    CU_ASSERT_FATAL(fake_pool(&pool, 4, 150));
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_SESSION_COUNT"));
    pool_figures(&pool, &open, &idle, &cap);
    CU_ASSERT_EQUAL(open, 0);
    kg_p11_pool_cleanup(&pool);
}

/* A session that died while idle is replaced at checkout. */
static void test_fake_dead_session_replaced(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE;
    uint64_t epoch0 = 0, epoch1 = 0;
    uint32_t open, idle;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 2, 0));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_session_release(&pool, a);
    kg_p11_pool_stats(&pool, NULL, NULL, NULL, &epoch0);

    pthread_mutex_lock(&fake.lock);
    fake.live[a] = false; /* e.g. the HSM restarted */
    fake.n_live--;
    pthread_mutex_unlock(&fake.lock);

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_NOT_EQUAL(a, b);
    CU_ASSERT_EQUAL(fake.opens, 2);
    kg_p11_pool_stats(&pool, &open, &idle, NULL, &epoch1);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 0);
    CU_ASSERT_NOT_EQUAL(epoch0, epoch1); /* cached object handles are suspect */
    kg_p11_session_release(&pool, b);
    kg_p11_pool_cleanup(&pool);
}

/* The token lost its login: the checkout logs in again, once. */
static void test_fake_lost_login(void)
{
    struct kg_p11_pool pool;
    struct kg_secret *wrong = pin_of("9999");
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE;
    uint64_t epoch0 = 0, epoch1 = 0;
    uint32_t open, idle;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 2, 0));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_session_release(&pool, a);
    CU_ASSERT_EQUAL(fake.logins, 0);

    kg_p11_pool_stats(&pool, NULL, NULL, NULL, &epoch0);
    fake.logged_in = false;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(fake.logins, 1);
    CU_ASSERT(fake.logged_in);
    kg_p11_pool_stats(&pool, NULL, NULL, NULL, &epoch1);
    CU_ASSERT_NOT_EQUAL(epoch0, epoch1); /* private object handles are suspect */
    kg_p11_session_release(&pool, a);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(fake.logins, 1);
    kg_p11_session_release(&pool, a);
    kg_p11_pool_cleanup(&pool);

    /* The PIN was changed under us: the checkout fails with a login error
     * and keeps the (healthy) session. */
    fake_reset();
    CU_ASSERT_FATAL(wrong != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_pool_init(&pool, &fake_fl, 7, 2, wrong, 0)));
    fake.logged_in = false;
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_LOGIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_PIN_INCORRECT"));
    CU_ASSERT_EQUAL(a, CK_INVALID_HANDLE);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);
    /* The refused PIN is not tried again: retries would lock it. */
    CU_ASSERT_EQUAL(fake.logins, 1);
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_LOGIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_PIN_INCORRECT"));
    CU_ASSERT_EQUAL(fake.logins, 1);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);
    /* While the token stays logged in, the pool keeps working. */
    fake.logged_in = true;
    CU_ASSERT(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_session_release(&pool, a);
    kg_p11_pool_cleanup(&pool);
    kg_secret_free(wrong);
}

static void test_fake_device_removed(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE;
    uint32_t open;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 2, 0));
    fake.open_rv = CKR_DEVICE_REMOVED;
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "C_OpenSession"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_DEVICE_REMOVED"));
    pool_figures(&pool, &open, NULL, NULL);
    CU_ASSERT_EQUAL(open, 0);

    /* The device comes back; then an idle session reports it gone. */
    fake.open_rv = CKR_OK;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_session_release(&pool, a);
    fake.info_rv = CKR_DEVICE_REMOVED;
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "C_GetSessionInfo"));
    pool_figures(&pool, &open, NULL, NULL);
    CU_ASSERT_EQUAL(open, 0); /* forgotten, not handed out */
    fake.info_rv = CKR_OK;
    kg_p11_pool_cleanup(&pool);
}

/* How an operation ended decides what happens to its session. */
static void test_fake_session_end(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE, c = CK_INVALID_HANDLE;
    CK_SESSION_HANDLE x = CK_INVALID_HANDLE;
    uint64_t epoch0 = 0, epoch1 = 0;
    uint32_t open, idle;
    unsigned closes;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 4, 0));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &c)));
    kg_p11_session_release(&pool, b);
    kg_p11_session_release(&pool, c);

    /* Success, and errors that say nothing about the session: returned. */
    kg_p11_session_end(&pool, a, KG_OK, false);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 3);
    CU_ASSERT_EQUAL(idle, 3);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &x)));
    kg_p11_session_end(&pool, x, KG_ERR_HSM_UNWRAP, false);
    kg_p11_session_end(&pool, CK_INVALID_HANDLE, KG_ERR_HSM_SESSION, true); /* no-op */
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 3);
    CU_ASSERT_EQUAL(idle, 3);
    CU_ASSERT_EQUAL(fake.closes, 0);

    /* The same with must_close (an object could not be destroyed): closed. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &x)));
    kg_p11_session_end(&pool, x, KG_ERR_HSM_UNWRAP, true);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 2);
    CU_ASSERT_EQUAL(idle, 2);
    CU_ASSERT_EQUAL(fake.closes, 1);
    CU_ASSERT(!fake.live[x]);

    /* A generic HSM failure (CKR_DEVICE_ERROR): that session only, closed. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &x)));
    kg_p11_session_end(&pool, x, KG_ERR_HSM, false);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);
    CU_ASSERT_EQUAL(fake.closes, 2);
    CU_ASSERT(!fake.live[x]);

    /* A dead session or device: it and every idle one are closed, checked-out
     * ones stay counted, and cached handles are suspect. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &c)));
    kg_p11_session_release(&pool, c);
    kg_p11_pool_stats(&pool, &open, &idle, NULL, &epoch0);
    CU_ASSERT_EQUAL(open, 3);
    CU_ASSERT_EQUAL(idle, 1);
    closes = fake.closes;
    kg_p11_session_end(&pool, a, KG_ERR_HSM_SESSION, false);
    kg_p11_pool_stats(&pool, &open, &idle, NULL, &epoch1);
    CU_ASSERT_EQUAL(open, 1); /* b, still checked out */
    CU_ASSERT_EQUAL(idle, 0);
    CU_ASSERT_EQUAL(fake.closes, closes + 2);
    CU_ASSERT(!fake.live[a] && !fake.live[c] && fake.live[b]);
    CU_ASSERT_NOT_EQUAL(epoch0, epoch1);
    kg_p11_session_release(&pool, b);
    kg_p11_pool_cleanup(&pool);
    CU_ASSERT_EQUAL(fake.n_live, 0);
}

/* CKR_USER_NOT_LOGGED_IN from an operation: the session is kept, and the
 * next checkout logs in even though C_GetSessionInfo says all is well. */
static void test_fake_relogin_after_not_logged_in(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE;
    uint64_t epoch0 = 0, epoch1 = 0;
    uint32_t open, idle;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 2, 0));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_pool_stats(&pool, NULL, NULL, NULL, &epoch0);
    kg_p11_session_end(&pool, a, KG_ERR_HSM_LOGIN, false);
    kg_p11_pool_stats(&pool, &open, &idle, NULL, &epoch1);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);
    CU_ASSERT_NOT_EQUAL(epoch0, epoch1); /* the MWK handle is looked up again */
    CU_ASSERT_EQUAL(fake.logins, 0);

    /* The token says we are logged in: CKR_USER_ALREADY_LOGGED_IN is fine. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(b, a);
    CU_ASSERT_EQUAL(fake.logins, 1);
    kg_p11_session_release(&pool, b);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(fake.logins, 1); /* once */
    kg_p11_session_end(&pool, b, KG_ERR_HSM_LOGIN, false);

    /* The login really was gone: restored. */
    fake.logged_in = false;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(fake.logins, 2);
    CU_ASSERT(fake.logged_in);
    kg_p11_session_release(&pool, b);
    kg_p11_pool_cleanup(&pool);
}

/* After a device reset every idle session is dead: the first dead one found
 * at checkout drops them all at once, and the pool starts afresh. */
static void test_fake_reset_flushes_idle(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE h[3] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE, CK_INVALID_HANDLE };
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    uint32_t open, idle;
    unsigned infos, closes;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 4, 0));
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &h[i])));
    }
    for (int i = 0; i < 3; i++) {
        kg_p11_session_release(&pool, h[i]);
    }
    pthread_mutex_lock(&fake.lock); /* C_CloseAllSessions behind our back */
    memset(fake.live, 0, sizeof(fake.live));
    fake.n_live = 0;
    fake.logged_in = false;
    pthread_mutex_unlock(&fake.lock);

    infos = fake.infos;
    closes = fake.closes;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &s)));
    CU_ASSERT(s != h[0] && s != h[1] && s != h[2]);
    CU_ASSERT_EQUAL(fake.infos - infos, 2); /* one dead session, one new */
    CU_ASSERT_EQUAL(fake.closes - closes, 3);
    CU_ASSERT_EQUAL(fake.logins, 1);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 0);
    kg_p11_session_release(&pool, s);
    kg_p11_pool_cleanup(&pool);
}

/* A check that fails without saying the session is dead (CKR_DEVICE_ERROR)
 * fails the checkout but keeps the session: closing it could fail the same
 * way and leak it. */
static void test_fake_check_error_keeps_session(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, b = CK_INVALID_HANDLE;
    uint32_t open, idle;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 2, 0));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    kg_p11_session_release(&pool, a);
    fake.info_rv = CKR_DEVICE_ERROR;
    CU_ASSERT(kg_failed(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_DEVICE_ERROR"));
    CU_ASSERT_EQUAL(b, CK_INVALID_HANDLE);
    CU_ASSERT_EQUAL(fake.closes, 0);
    pool_figures(&pool, &open, &idle, NULL);
    CU_ASSERT_EQUAL(open, 1);
    CU_ASSERT_EQUAL(idle, 1);
    fake.info_rv = CKR_OK;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &b)));
    CU_ASSERT_EQUAL(b, a);
    kg_p11_session_release(&pool, b);
    kg_p11_pool_cleanup(&pool);
}

struct waiter {
    struct kg_p11_pool *pool;
    CK_SESSION_HANDLE got;
    atomic_bool done;
    kg_result rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;

    w->rc = kg_p11_session_acquire(w->pool, &w->got);
    atomic_store(&w->done, true);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* At the cap, a checkout blocks until a session is released. */
static void test_fake_exhaustion_blocks(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE;
    struct waiter w = { .pool = &pool, .got = CK_INVALID_HANDLE };
    pthread_t t;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 1, 10000));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    atomic_init(&w.done, false);
    CU_ASSERT_FATAL(pthread_create(&t, NULL, waiter_main, &w) == 0);
    sleep_ms(200);
    CU_ASSERT(!atomic_load(&w.done));
    kg_p11_session_release(&pool, a);
    pthread_join(t, NULL);
    CU_ASSERT(atomic_load(&w.done));
    CU_ASSERT(kg_ok(w.rc));
    CU_ASSERT_EQUAL(w.got, a);
    CU_ASSERT_EQUAL(fake.opens, 1);
    kg_p11_session_release(&pool, w.got);
    kg_p11_pool_cleanup(&pool);
}

/*
 * Waiters are served in the order they came, and a thread that arrives as
 * a session is returned queues behind them rather than taking it.
 */
static void test_fake_waiters_served_in_order(void)
{
    struct kg_p11_pool pool;
    CK_SESSION_HANDLE a = CK_INVALID_HANDLE, late = CK_INVALID_HANDLE;
    struct waiter first = { .pool = &pool, .got = CK_INVALID_HANDLE };
    struct waiter second = { .pool = &pool, .got = CK_INVALID_HANDLE };
    pthread_t t1, t2;

    fake_reset();
    CU_ASSERT_FATAL(fake_pool(&pool, 1, 10000));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(&pool, &a)));
    atomic_init(&first.done, false);
    atomic_init(&second.done, false);
    CU_ASSERT_FATAL(pthread_create(&t1, NULL, waiter_main, &first) == 0);
    sleep_ms(100);
    CU_ASSERT_FATAL(pthread_create(&t2, NULL, waiter_main, &second) == 0);
    sleep_ms(100);

    /* Returned and asked for again at once: the first waiter has it. */
    kg_p11_session_release(&pool, a);
    CU_ASSERT(kg_failed(kg_p11_session_acquire_within(&pool, 100, &late)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_BUSY);
    CU_ASSERT_EQUAL(late, CK_INVALID_HANDLE);
    pthread_join(t1, NULL);
    CU_ASSERT(kg_ok(first.rc));
    CU_ASSERT_EQUAL(first.got, a);
    CU_ASSERT(!atomic_load(&second.done));

    kg_p11_session_release(&pool, first.got);
    pthread_join(t2, NULL);
    CU_ASSERT(kg_ok(second.rc));
    CU_ASSERT_EQUAL(second.got, a);
    kg_p11_session_release(&pool, second.got);
    /* The one that gave up left the line: nobody waits behind it. */
    CU_ASSERT(kg_ok(kg_p11_session_acquire_within(&pool, 100, &late)));
    CU_ASSERT_EQUAL(late, a);
    CU_ASSERT_EQUAL(fake.opens, 1);
    kg_p11_session_release(&pool, late);
    kg_p11_pool_cleanup(&pool);
}

static void test_error_mapping(void)
{
    static const struct {
        CK_RV rv;
        int err;
    } table[] = {
        { CKR_OK, KG_OK },
        { CKR_HOST_MEMORY, KG_ERR_NOMEM },
        { CKR_SESSION_HANDLE_INVALID, KG_ERR_HSM_SESSION },
        { CKR_SESSION_CLOSED, KG_ERR_HSM_SESSION },
        { CKR_DEVICE_REMOVED, KG_ERR_HSM_SESSION },
        { CKR_TOKEN_NOT_PRESENT, KG_ERR_HSM_SESSION },
        { CKR_SESSION_COUNT, KG_ERR_HSM_SESSION },
        { CKR_USER_NOT_LOGGED_IN, KG_ERR_HSM_LOGIN },
        { CKR_PIN_INCORRECT, KG_ERR_HSM_LOGIN },
        { CKR_PIN_LOCKED, KG_ERR_HSM_LOGIN },
        { CKR_MECHANISM_INVALID, KG_ERR_HSM_MECHANISM },
        { CKR_WRAPPED_KEY_INVALID, KG_ERR_HSM_UNWRAP },
        { CKR_ENCRYPTED_DATA_INVALID, KG_ERR_HSM_UNWRAP },
        { CKR_KEY_SIZE_RANGE, KG_ERR_BAD_KEY_LENGTH },
        { CKR_DEVICE_ERROR, KG_ERR_HSM },
        { CKR_GENERAL_ERROR, KG_ERR_HSM },
        { CKR_VENDOR_DEFINED + 5, KG_ERR_HSM },
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        CU_ASSERT_EQUAL(kg_p11_rv_error(table[i].rv), table[i].err);
        CU_ASSERT_EQUAL(kg_error_category_of(kg_p11_rv_error(table[i].rv)),
                        table[i].err == KG_OK ? KG_ERR_T_OK : kg_error_category_of(table[i].err));
    }
    CU_ASSERT_STRING_EQUAL(kg_p11_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
    CU_ASSERT_STRING_EQUAL(kg_p11_rv_name(CKR_OK), "CKR_OK");
    CU_ASSERT_STRING_EQUAL(kg_p11_rv_name(0x7777), "CKR_0x7777");
    CU_ASSERT_STRING_EQUAL(kg_p11_rv_name(CKR_VENDOR_DEFINED + 0x12), "CKR_VENDOR_DEFINED+0x12");

    kg_error_clear();
    CU_ASSERT(kg_ok(KG_P11_CHECK(CKR_OK, "C_Nothing")));
    CU_ASSERT_EQUAL(kg_errno(), KG_OK); /* success touches nothing */

    CU_ASSERT(kg_failed(KG_P11_CHECK(CKR_DEVICE_REMOVED, "C_WrapKey")));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT_STRING_EQUAL(kg_error_text(), "C_WrapKey: CKR_DEVICE_REMOVED (0x32)");
    /* The site is the caller's, not kg_p11_error.c. */
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_debug(), "kg_p11_test.c"));

    /* Unwrapping a stored blob: generic failures mean a bad blob. */
    CU_ASSERT(kg_ok(KG_P11_CHECK_UNWRAP(CKR_OK)));
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_GENERAL_ERROR)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_GENERAL_ERROR"));
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_WRAPPED_KEY_INVALID)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_UNWRAPPING_KEY_HANDLE_INVALID)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_SESSION_HANDLE_INVALID)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_USER_NOT_LOGGED_IN)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_LOGIN);
    /* A failing device is not a damaged blob. */
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_DEVICE_ERROR)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_DEVICE_MEMORY)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT(kg_failed(KG_P11_CHECK_UNWRAP(CKR_DEVICE_REMOVED)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_SESSION);
}

/* ======================================================================
 * kg_secret_read_pin
 * ====================================================================== */

static char pin_dir[] = "/tmp/kg_p11_pin.XXXXXX";

static const char *pin_file(const char *name, const char *content, size_t len)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
    f = fopen(path, "wb");
    if (f == NULL) {
        return NULL;
    }
    if (len > 0 && fwrite(content, 1, len, f) != len) {
        fclose(f);
        return NULL;
    }
    fclose(f);
    return path;
}

static bool pin_is(const char *path, const char *env, const char *want)
{
    struct kg_secret *s = NULL;
    bool ok;

    if (kg_failed(kg_secret_read_pin(path, env, &s))) {
        return false;
    }
    ok = s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
    kg_secret_free(s);
    return ok;
}

static bool pin_fails(const char *path, const char *env, int err)
{
    struct kg_secret *s = (struct kg_secret *)&s; /* must come back NULL */
    bool failed = kg_failed(kg_secret_read_pin(path, env, &s));

    return failed && s == NULL && kg_errno() == err;
}

static void test_secret_read_pin(void)
{
    char longline[400];

    CU_ASSERT_FATAL(mkdtemp(pin_dir) != NULL);
    CU_ASSERT(pin_is(pin_file("a", "1234\n", 5), NULL, "1234"));
    CU_ASSERT(pin_is(pin_file("b", "1234", 4), NULL, "1234"));
    CU_ASSERT(pin_is(pin_file("c", "1234\r\n", 6), NULL, "1234"));
    CU_ASSERT(pin_is(pin_file("d", "12 34\nsecond line\n", 18), NULL, "12 34")); /* first line */
    CU_ASSERT(pin_fails(pin_file("e", "", 0), NULL, KG_ERR_CONFIG));
    CU_ASSERT(pin_fails(pin_file("f", "\n1234\n", 6), NULL, KG_ERR_CONFIG));
    memset(longline, 'x', sizeof(longline));
    CU_ASSERT(pin_fails(pin_file("g", longline, sizeof(longline)), NULL, KG_ERR_CONFIG));
    {
        struct kg_secret *s = NULL; /* 255 bytes is the longest PIN */

        CU_ASSERT(kg_ok(kg_secret_read_pin(pin_file("h", longline, 255), NULL, &s)));
        CU_ASSERT(s != NULL && s->len == 255);
        kg_secret_free(s);
    }
    CU_ASSERT(pin_fails("/nonexistent/kg/pin", NULL, KG_ERR_CONFIG));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "/nonexistent/kg/pin"));

    setenv("KG_P11_TEST_PIN", "5678", 1);
    CU_ASSERT(pin_is(NULL, "KG_P11_TEST_PIN", "5678"));
    setenv("KG_P11_TEST_PIN", "5678\n", 1);
    CU_ASSERT(pin_is(NULL, "KG_P11_TEST_PIN", "5678"));
    setenv("KG_P11_TEST_PIN", "56\n78", 1);
    CU_ASSERT(pin_fails(NULL, "KG_P11_TEST_PIN", KG_ERR_CONFIG));
    setenv("KG_P11_TEST_PIN", "", 1);
    CU_ASSERT(pin_fails(NULL, "KG_P11_TEST_PIN", KG_ERR_CONFIG));
    unsetenv("KG_P11_TEST_PIN");
    CU_ASSERT(pin_fails(NULL, "KG_P11_TEST_PIN", KG_ERR_CONFIG));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "KG_P11_TEST_PIN"));
    CU_ASSERT(pin_fails(NULL, NULL, KG_ERR_CONFIG));

    for (const char *n = "abcdefgh"; *n != '\0'; n++) {
        char p[256];

        snprintf(p, sizeof(p), "%s/%c", pin_dir, *n);
        unlink(p);
    }
    rmdir(pin_dir);
}

/* ======================================================================
 * SoftHSMv2
 * ====================================================================== */

#define SOFTHSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN_LABEL "kgtest"
#define TOKEN_PIN "1234"
#define MWK_LABEL "kgtest-mwk"

static char hsm_dir[] = "/tmp/kg_p11_hsm.XXXXXX";
static bool hsm_tried;
static bool hsm_ready;

static const char *softhsm_module(void)
{
    const char *m = getenv("KG_SOFTHSM_MODULE");

    return m != NULL ? m : SOFTHSM_DEFAULT_MODULE;
}

/* One token for the whole run, created on first use. False: skip. */
static bool softhsm_setup(void)
{
    char path[512];
    char cmd[1024];
    FILE *f;

    if (hsm_tried) {
        return hsm_ready;
    }
    hsm_tried = true;
    if (access(softhsm_module(), R_OK) != 0 || system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\nSKIP: SoftHSMv2 (%s, softhsm2-util) not installed\n", softhsm_module());
        return false;
    }
    if (mkdtemp(hsm_dir) == NULL) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/tokens", hsm_dir);
    if (mkdir(path, 0700) != 0) {
        return false;
    }
    snprintf(path, sizeof(path), "%s/softhsm2.conf", hsm_dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return false;
    }
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", hsm_dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", path, 1);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label " TOKEN_LABEL " --pin " TOKEN_PIN
             " --so-pin 5678 >%s/init.log 2>&1",
             hsm_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "softhsm2-util --init-token failed, see %s/init.log\n", hsm_dir);
        return false;
    }
    hsm_ready = true;
    return true;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void softhsm_teardown(void)
{
    if (hsm_tried && hsm_dir[sizeof(hsm_dir) - 2] != 'X') {
        nftw(hsm_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

#define SKIP_WITHOUT_SOFTHSM()                                  \
    do {                                                        \
        if (!softhsm_setup()) {                                 \
            CU_PASS("SoftHSMv2 not available: test skipped");   \
            return;                                             \
        }                                                       \
    } while (0)

static kg_result hsm_open_with(const char *module, const char *label, const char *pin_text, uint32_t max,
                               bool require_mwk, const char *mwk_label, struct kg_p11 **out)
{
    struct kg_p11_config cfg = {
        .module_path = module,
        .token_label = label,
        .mwk_label = mwk_label,
        .max_sessions = max,
    };
    struct kg_secret *pin = pin_of(pin_text);
    kg_result rc;

    if (pin == NULL) {
        *out = NULL;
        return KG_RESULT_ERROR;
    }
    rc = kg_p11_open(&cfg, pin, require_mwk, out);
    kg_secret_free(pin);
    return rc;
}

static struct kg_p11 *hsm_open(uint32_t max)
{
    struct kg_p11 *p11 = NULL;

    if (kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, max, true, MWK_LABEL, &p11))) {
        fprintf(stderr, "\nkg_p11_open: %s %s (%s)\n", kg_error_name(kg_errno()), kg_error_text(),
                kg_error_debug());
        return NULL;
    }
    return p11;
}

/* Secret keys on the token visible to us with CKA_TOKEN = `token` (and
 * label `label` when not NULL). Session keys left behind would show here. */
static long hsm_count_keys(struct kg_p11 *p11, bool token, const char *label, CK_OBJECT_HANDLE *first)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL tok = token ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_TOKEN, &tok, sizeof(tok) },
        { CKA_LABEL, (void *)label, label != NULL ? strlen(label) : 0 },
    };
    CK_OBJECT_HANDLE objs[64];
    CK_ULONG n = 0;
    long total = -1;

    if (kg_failed(kg_p11_session_acquire(pool, &s))) {
        return -1;
    }
    if (pool->fn->C_FindObjectsInit(s, tmpl, label != NULL ? 3 : 2) == CKR_OK) {
        if (pool->fn->C_FindObjects(s, objs, 64, &n) == CKR_OK) {
            total = 0;
            for (CK_ULONG i = 0; i < n; i++) {
                if (kg_p11_is_key_copy(p11, objs[i])) {
                    continue; /* the gateway's own session copy of its MWK or MAC key */
                }
                if (first != NULL && total == 0) {
                    *first = objs[i];
                }
                total++;
            }
        }
        pool->fn->C_FindObjectsFinal(s);
    }
    kg_p11_session_release(pool, s);
    return total;
}

static void test_hsm_open_errors(void)
{
    struct kg_p11 *p11 = (struct kg_p11 *)&p11;

    SKIP_WITHOUT_SOFTHSM();
    CU_ASSERT(kg_failed(hsm_open_with("/nonexistent/libnothing.so", TOKEN_LABEL, TOKEN_PIN, 2, false, MWK_LABEL,
                                      &p11)));
    CU_ASSERT_PTR_NULL(p11);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "/nonexistent/libnothing.so"));

    /* The module loads but cannot initialise (its configuration is bad). */
    {
        char *conf = strdup(getenv("SOFTHSM2_CONF"));

        CU_ASSERT_FATAL(conf != NULL);
        setenv("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf", 1);
        CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 2, false, MWK_LABEL, &p11)));
        CU_ASSERT_PTR_NULL(p11);
        CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_HSM);
        CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "C_Initialize"));
        setenv("SOFTHSM2_CONF", conf, 1);
        free(conf);
    }

    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), "no-such-token", TOKEN_PIN, 2, false, MWK_LABEL, &p11)));
    CU_ASSERT_PTR_NULL(p11);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_NO_TOKEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "no-such-token"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "'" TOKEN_LABEL "'")); /* lists what exists */

    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, "0000", 2, false, MWK_LABEL, &p11)));
    CU_ASSERT_PTR_NULL(p11);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_LOGIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "CKR_PIN_INCORRECT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), TOKEN_LABEL));

    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 0, false, MWK_LABEL, &p11)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 2, false, "", &p11)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
}

static void test_hsm_no_mwk_then_init(void)
{
    struct kg_p11 *p11 = NULL;
    struct kg_p11_blob blob;
    bool created = false;

    SKIP_WITHOUT_SOFTHSM();
    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 2, true, MWK_LABEL, &p11)));
    CU_ASSERT_PTR_NULL(p11);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_NO_MWK);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "kmipgw init"));
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), MWK_LABEL));

    CU_ASSERT_FATAL(kg_ok(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 2, false, MWK_LABEL, &p11)));
    /* Without an MWK, key operations say so. */
    CU_ASSERT(kg_failed(kg_p11_generate_aes(p11, 256, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_NO_MWK);
    CU_ASSERT_EQUAL(blob.len, 0);

    CU_ASSERT(kg_ok(kg_p11_init_mwk(p11, &created)));
    CU_ASSERT(created);
    CU_ASSERT(kg_ok(kg_p11_init_mwk(p11, &created)));
    CU_ASSERT(!created);
    CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 1);
    CU_ASSERT(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    kg_p11_close(p11);

    /* A fresh process view: found by label, idempotent. */
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    CU_ASSERT(kg_ok(kg_p11_init_mwk(p11, &created)));
    CU_ASSERT(!created);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, true, MWK_LABEL, NULL), 1);
    kg_p11_close(p11);
}

/* The MWK on the token has the attributes DESIGN.md promises. */
static void test_hsm_mwk_attributes(void)
{
    struct kg_p11 *p11;
    struct kg_p11_pool *pool;
    CK_OBJECT_HANDLE mwk = CK_INVALID_HANDLE;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL token = 0, priv = 0, sensitive = 0, extractable = 1, wrap = 0, unwrap = 0, enc = 1, dec = 1;
    CK_KEY_TYPE kt = 0;
    CK_ULONG vlen = 0;
    char id[8] = { 0 };
    CK_ATTRIBUTE a[] = {
        { CKA_TOKEN, &token, 1 },     { CKA_PRIVATE, &priv, 1 },    { CKA_SENSITIVE, &sensitive, 1 },
        { CKA_EXTRACTABLE, &extractable, 1 }, { CKA_WRAP, &wrap, 1 }, { CKA_UNWRAP, &unwrap, 1 },
        { CKA_ENCRYPT, &enc, 1 },     { CKA_DECRYPT, &dec, 1 },     { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_ID, id, sizeof(id) },
    };

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(hsm_count_keys(p11, true, MWK_LABEL, &mwk) == 1);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_GetAttributeValue(s, mwk, a, sizeof(a) / sizeof(a[0])), CKR_OK);
    kg_p11_session_release(pool, s);
    CU_ASSERT(token && priv && sensitive && !extractable && wrap && unwrap && !enc && !dec);
    CU_ASSERT_EQUAL(kt, CKK_AES);
    CU_ASSERT_EQUAL(vlen, 32);
    CU_ASSERT_EQUAL(a[10].ulValueLen, 1);
    CU_ASSERT_EQUAL(id[0], '1');
    kg_p11_close(p11);
}

static void test_hsm_generate_lengths(void)
{
    static const struct {
        uint32_t bits;
        uint32_t blob_len;
    } cases[] = { { 128, 24 }, { 192, 32 }, { 256, 40 } };
    static const uint32_t bad[] = { 0, 64, 100, 129, 512 };
    struct kg_p11 *p11;
    struct kg_p11_blob blob;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kg_secret *plain = NULL;

        CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, cases[i].bits, &blob)));
        CU_ASSERT_EQUAL(blob.len, cases[i].blob_len);
        CU_ASSERT_EQUAL(blob.mechanism, CKM_AES_KEY_WRAP_PAD);
        CU_ASSERT_EQUAL(blob.mwk_generation, 1);
        CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &blob, &plain)));
        CU_ASSERT(plain != NULL && plain->len == cases[i].bits / 8);
        kg_secret_free(plain);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT(kg_failed(kg_p11_generate_aes(p11, bad[i], &blob)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        CU_ASSERT_EQUAL(blob.len, 0);
    }
    /* Nothing but the MWK stays on the token, no session key behind. */
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, true, NULL, NULL), 1);
    kg_p11_close(p11);
}

static void test_hsm_import_export_roundtrip(void)
{
    static const size_t lens[] = { 16, 24, 32 };
    struct kg_p11 *p11;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t bytes[32];
        struct kg_secret *key = NULL;
        struct kg_secret *back = NULL;
        struct kg_p11_blob blob;

        for (size_t j = 0; j < sizeof(bytes); j++) {
            bytes[j] = (uint8_t)(0xA5 ^ (j * 7 + i));
        }
        CU_ASSERT_FATAL(kg_ok(kg_secret_from(bytes, lens[i], &key)));
        CU_ASSERT_FATAL(kg_ok(kg_p11_import_aes(p11, key, &blob)));
        CU_ASSERT_EQUAL(blob.len, lens[i] + 8);
        /* The blob is not the key in clear. */
        CU_ASSERT(memmem(blob.bytes, blob.len, bytes, 8) == NULL);
        CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &blob, &back)));
        CU_ASSERT_EQUAL(back->len, lens[i]);
        CU_ASSERT(memcmp(back->data, bytes, lens[i]) == 0);
        kg_secret_free(back);
        kg_secret_free(key);
    }
    {
        uint8_t bytes[20] = { 1 };
        struct kg_secret *key = NULL;
        struct kg_p11_blob blob;

        CU_ASSERT_FATAL(kg_ok(kg_secret_from(bytes, sizeof(bytes), &key)));
        CU_ASSERT(kg_failed(kg_p11_import_aes(p11, key, &blob)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        kg_secret_free(key);
    }
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    kg_p11_close(p11);
}

/* HMAC keys (CKK_GENERIC_SECRET) in and out: read back at their own length,
 * including 33 bytes, which SoftHSM returns zero-padded to 40. */
static void test_hsm_hmac_export(void)
{
    static const size_t lens[] = { 32, 33, 40, 48, 64 };
    struct kg_p11 *p11;
    uint8_t bytes[KG_P11_MAX_KEY];
    struct kg_secret *key = NULL;
    struct kg_secret *back = NULL;
    struct kg_p11_blob blob;
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_HMAC, .storage = KG_P11_STORED_WRAPPED, .blob = &blob };

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    for (size_t j = 0; j < sizeof(bytes); j++) {
        bytes[j] = (uint8_t)(0x3C ^ (j * 11 + 1)); /* never a zero tail */
    }
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        CU_ASSERT_FATAL(kg_ok(kg_secret_from(bytes, lens[i], &key)));
        CU_ASSERT_FATAL(kg_ok(kg_p11_import_secret(p11, KG_P11_KEY_HMAC, key, &blob)));
        CU_ASSERT(memmem(blob.bytes, blob.len, bytes, 8) == NULL);
        CU_ASSERT_FATAL(kg_ok(kg_p11_export_key(p11, &ref, lens[i], &back)));
        CU_ASSERT_EQUAL(back->len, lens[i]);
        CU_ASSERT(memcmp(back->data, bytes, lens[i]) == 0);
        kg_secret_free(back);
        back = NULL;
        /* Its length is the object's, never guessed. */
        CU_ASSERT(kg_failed(kg_p11_export_key(p11, &ref, 0, &back)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        CU_ASSERT(back == NULL);
        /* Shorter than what the HSM holds (beyond its padding): not our key. */
        CU_ASSERT(kg_failed(kg_p11_export_key(p11, &ref, lens[i] - 8, &back)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
        CU_ASSERT(back == NULL);
        kg_secret_free(key);
        key = NULL;
    }
    /* A 33-byte key read as 34: the extra byte is padding, not key: 40 is
     * the most SoftHSM can return, so asking 41 is refused. */
    CU_ASSERT_FATAL(kg_ok(kg_secret_from(bytes, 33, &key)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_import_secret(p11, KG_P11_KEY_HMAC, key, &blob)));
    CU_ASSERT(kg_failed(kg_p11_export_key(p11, &ref, 41, &back)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    kg_secret_free(key);
    key = NULL;
    /* Too short or too long to import; a key pair kind is not a secret. */
    CU_ASSERT_FATAL(kg_ok(kg_secret_from(bytes, 15, &key)));
    CU_ASSERT(kg_failed(kg_p11_import_secret(p11, KG_P11_KEY_HMAC, key, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
    CU_ASSERT_EQUAL(blob.len, 0);
    CU_ASSERT(kg_failed(kg_p11_import_secret(p11, KG_P11_KEY_RSA_PRIVATE, key, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_UNSUPPORTED_ALGORITHM);
    kg_secret_free(key);
    key = NULL;
    {
        struct kg_secret *big = NULL;
        uint8_t more[KG_P11_MAX_KEY + 1] = { 7 };

        CU_ASSERT_FATAL(kg_ok(kg_secret_from(more, sizeof(more), &big)));
        CU_ASSERT(kg_failed(kg_p11_import_secret(p11, KG_P11_KEY_HMAC, big, &blob)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_BAD_KEY_LENGTH);
        kg_secret_free(big);
    }
    /* A resident key is never read out (KG_P11_USE_READ refused). */
    {
        struct kg_p11_key_ref res = { .kind = KG_P11_KEY_HMAC, .storage = KG_P11_STORED_RESIDENT,
                                      .resident_id = "no-such-key" };

        CU_ASSERT(kg_failed(kg_p11_export_key(p11, &res, 32, &back)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_DENIED);
        CU_ASSERT(back == NULL);
    }
    /* No readable session object stays behind on any path. */
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    kg_p11_close(p11);
}

static void test_hsm_generated_keys_differ(void)
{
    struct kg_p11 *p11;
    struct kg_p11_blob a, b;
    struct kg_secret *ka = NULL, *kb = NULL;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &a)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &b)));
    CU_ASSERT(memcmp(a.bytes, b.bytes, a.len) != 0);
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &a, &ka)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &b, &kb)));
    CU_ASSERT_EQUAL(ka->len, 32);
    CU_ASSERT_EQUAL(kb->len, 32);
    CU_ASSERT(memcmp(ka->data, kb->data, 32) != 0);
    kg_secret_free(ka);
    kg_secret_free(kb);
    kg_p11_close(p11);
}

/* A damaged blob is an error, never a different key. */
static void test_hsm_tampered_blob(void)
{
    struct kg_p11 *p11;
    struct kg_p11_blob blob, bad;
    struct kg_secret *k = (struct kg_secret *)&k;
    uint32_t open = 0, idle = 0;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    for (uint32_t pos = 0; pos < blob.len; pos += 3) {
        bad = blob;
        bad.bytes[pos] ^= (uint8_t)(1u << (pos % 8));
        CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
        CU_ASSERT_PTR_NULL(k);
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    }
    fprintf(stderr, "\n  (tampered blob: %s)\n", kg_error_text());

    bad = blob;
    bad.mechanism = CKM_AES_KEY_WRAP;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    bad = blob;
    bad.mwk_generation = 2;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    bad = blob;
    bad.len = 8;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    bad.len = 33;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    bad.len = KG_P11_MAX_BLOB + 8;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    bad = blob;
    bad.len -= 8; /* a whole block short */
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_error_category_of(kg_errno()), KG_ERR_T_HSM);

    /* The failures did not leak sessions or objects; the good blob works. */
    kg_p11_pool_stats(kg_p11_pool_of(p11), &open, &idle, NULL, NULL);
    CU_ASSERT_EQUAL(open, idle);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &blob, &k)));
    kg_secret_free(k);
    kg_p11_close(p11);
}

/* Sessions closed or logged out behind the pool's back are recovered. */
static void test_hsm_session_recovery(void)
{
    struct kg_p11 *p11;
    struct kg_p11_pool *pool;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SESSION_INFO info;
    struct kg_p11_blob blob;
    struct kg_secret *k = NULL;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(1);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_CloseSession(s), CKR_OK);
    kg_p11_session_release(pool, s);
    /* libp11's login session is still open, so the token is logged in. */
    {
        CK_SESSION_HANDLE raw = CK_INVALID_HANDLE;
        CK_SLOT_ID slot = pool->slot;

        CU_ASSERT_FATAL(pool->fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &raw) == CKR_OK);
        CU_ASSERT_EQUAL(pool->fn->C_GetSessionInfo(raw, &info), CKR_OK);
        CU_ASSERT_EQUAL(info.state, CKS_RO_USER_FUNCTIONS);
        CU_ASSERT_EQUAL(pool->fn->C_CloseSession(raw), CKR_OK);
    }
    CU_ASSERT(kg_ok(kg_p11_generate_aes(p11, 128, &blob)));

    /* Log the whole token out: only libp11's session and ours remain. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_Logout(s), CKR_OK);
    CU_ASSERT_EQUAL(pool->fn->C_GetSessionInfo(s, &info), CKR_OK);
    CU_ASSERT_EQUAL(info.state, CKS_RW_PUBLIC_SESSION);
    kg_p11_session_release(pool, s);
    if (!kg_ok(kg_p11_export_plaintext(p11, &blob, &k))) {
        fprintf(stderr, "\n  export after logout: %s %s\n", kg_error_name(kg_errno()), kg_error_text());
        CU_FAIL("export after logout");
    }
    kg_secret_free(k);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_GetSessionInfo(s, &info), CKR_OK);
    CU_ASSERT_EQUAL(info.state, CKS_RW_USER_FUNCTIONS);
    kg_p11_session_release(pool, s);
    kg_p11_close(p11);
}

/* Every session of the process closed (a device reset): libp11's login
 * session goes with them, so the token is logged out and the MWK handle is
 * gone. The next operations reopen sessions, log in, find the MWK again, and
 * old blobs still give the same key. */
static void test_hsm_all_sessions_lost(void)
{
    struct kg_p11 *p11;
    struct kg_p11_pool *pool;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SESSION_INFO info;
    struct kg_p11_blob blob, fresh;
    struct kg_secret *before = NULL, *after = NULL;
    struct kg_p11_stats st;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &blob, &before)));

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_CloseAllSessions(pool->slot), CKR_OK);
    kg_p11_session_release(pool, s); /* the pool does not know yet */

    if (!kg_ok(kg_p11_export_plaintext(p11, &blob, &after))) {
        fprintf(stderr, "\n  export after reset: %s %s\n", kg_error_name(kg_errno()), kg_error_text());
        CU_FAIL("export after all sessions were lost");
    } else {
        CU_ASSERT_EQUAL(after->len, before->len);
        CU_ASSERT(memcmp(after->data, before->data, before->len) == 0);
    }
    CU_ASSERT(kg_ok(kg_p11_generate_aes(p11, 128, &fresh)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_EQUAL(pool->fn->C_GetSessionInfo(s, &info), CKR_OK);
    CU_ASSERT_EQUAL(info.state, CKS_RW_USER_FUNCTIONS);
    kg_p11_session_release(pool, s);
    kg_p11_get_stats(p11, &st);
    CU_ASSERT_EQUAL(st.sessions_open, st.sessions_idle);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    kg_secret_free(before);
    kg_secret_free(after);
    kg_p11_close(p11);
}

/* Two keys under the MWK label, or one that is not a proper MWK: refused. */
static void test_hsm_bad_mwk_refused(void)
{
    struct kg_p11 *p11;
    struct kg_p11 *other = NULL;
    struct kg_p11_pool *pool;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE dup = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_ULONG vlen = 32;
    CK_BBOOL yes = CK_TRUE;
    char label[] = MWK_LABEL;
    char weak[] = "kgtest-weak";
    CK_ATTRIBUTE tmpl[] = {
        { CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_TOKEN, &yes, 1 },   { CKA_EXTRACTABLE, &yes, 1 },
        { CKA_WRAP, &yes, 1 },                  { CKA_UNWRAP, &yes, 1 },  { CKA_LABEL, label, strlen(label) },
    };
    bool created = true;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_FATAL(pool->fn->C_GenerateKey(s, &mech, tmpl, 6, &dup) == CKR_OK);
    kg_p11_session_release(pool, s);

    CU_ASSERT(kg_failed(kg_p11_init_mwk(p11, &created)));
    CU_ASSERT(!created);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "more than one"));

    /* Relabel the duplicate as an extractable would-be MWK of its own. */
    tmpl[0] = (CK_ATTRIBUTE){ CKA_LABEL, weak, strlen(weak) };
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT(pool->fn->C_SetAttributeValue(s, dup, tmpl, 1) == CKR_OK);
    kg_p11_session_release(pool, s);
    CU_ASSERT(kg_ok(kg_p11_init_mwk(p11, &created)));
    CU_ASSERT(!created);
    kg_p11_close(p11);

    CU_ASSERT(kg_failed(hsm_open_with(softhsm_module(), TOKEN_LABEL, TOKEN_PIN, 2, true, weak, &other)));
    CU_ASSERT_PTR_NULL(other);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "non-extractable"));

    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(hsm_count_keys(p11, true, weak, &dup) == 1);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT(pool->fn->C_DestroyObject(s, dup) == CKR_OK);
    kg_p11_session_release(pool, s);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, true, NULL, NULL), 1);
    kg_p11_close(p11);
}

#define CONC_THREADS 8
#define CONC_ROUNDS 40

struct conc {
    struct kg_p11 *p11;
    atomic_int failures;
    atomic_int done;
};

static void *conc_main(void *arg)
{
    struct conc *c = arg;

    for (int i = 0; i < CONC_ROUNDS; i++) {
        struct kg_p11_blob blob;
        struct kg_secret *k = NULL;
        uint32_t bits = i % 3 == 0 ? 128 : i % 3 == 1 ? 192 : 256;

        if (kg_failed(kg_p11_generate_aes(c->p11, bits, &blob)) ||
            kg_failed(kg_p11_export_plaintext(c->p11, &blob, &k)) || k->len != bits / 8) {
            fprintf(stderr, "\n  thread failure: %s %s\n", kg_error_name(kg_errno()), kg_error_text());
            atomic_fetch_add(&c->failures, 1);
        } else {
            atomic_fetch_add(&c->done, 1);
        }
        kg_secret_free(k);
    }
    return NULL;
}

static void test_hsm_concurrent_small_pool(void)
{
    struct conc c;
    pthread_t t[CONC_THREADS];
    struct kg_p11_stats st;

    SKIP_WITHOUT_SOFTHSM();
    c.p11 = hsm_open(2);
    CU_ASSERT_FATAL(c.p11 != NULL);
    atomic_init(&c.failures, 0);
    atomic_init(&c.done, 0);
    for (int i = 0; i < CONC_THREADS; i++) {
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, conc_main, &c) == 0);
    }
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&c.failures), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.done), CONC_THREADS * CONC_ROUNDS);
    kg_p11_get_stats(c.p11, &st);
    CU_ASSERT_EQUAL(st.max_sessions, 2);
    CU_ASSERT(st.sessions_open >= 1 && st.sessions_open <= 2);
    CU_ASSERT_EQUAL(st.sessions_idle, st.sessions_open);
    CU_ASSERT_EQUAL(hsm_count_keys(c.p11, false, NULL, NULL), 0);
    kg_p11_close(c.p11);
}

/* ---- MWK generations and rotation (kmipgw rotate-master) ---- */

/* Make MWK generation `id` (CKA_ID text) behind kg_p11's back, as another
 * process running rotate-master would. */
static CK_OBJECT_HANDLE gen_behind_back(struct kg_p11 *p11, const char *id)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
    CK_ULONG vlen = 32;
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    char label[] = MWK_LABEL;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_TOKEN, &yes, 1 },  { CKA_PRIVATE, &yes, 1 },
        { CKA_SENSITIVE, &yes, 1 },             { CKA_EXTRACTABLE, &no, 1 }, { CKA_WRAP, &yes, 1 },
        { CKA_UNWRAP, &yes, 1 },                { CKA_LABEL, label, strlen(label) },
        { CKA_ID, (void *)id, strlen(id) },
    };

    if (kg_failed(kg_p11_session_acquire(pool, &s))) {
        return CK_INVALID_HANDLE;
    }
    if (pool->fn->C_GenerateKey(s, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h) != CKR_OK) {
        h = CK_INVALID_HANDLE;
    }
    kg_p11_session_release(pool, s);
    return h;
}

static void destroy_token_object(struct kg_p11 *p11, CK_OBJECT_HANDLE h)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT(pool->fn->C_DestroyObject(s, h) == CKR_OK);
    kg_p11_session_release(pool, s);
}

static bool same_secret(const struct kg_secret *a, const struct kg_secret *b)
{
    return a != NULL && b != NULL && a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void test_hsm_mwk_generations(void)
{
    struct kg_p11 *p11;
    struct kg_p11_blob b1, b2, nb, bad, blob;
    struct kg_secret *k1 = NULL;
    struct kg_secret *k = NULL;
    uint32_t gen = 0;
    uint32_t gens[8];
    size_t n = 0;
    CK_OBJECT_HANDLE dup = CK_INVALID_HANDLE;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 1);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &b1)));
    CU_ASSERT_EQUAL(b1.mwk_generation, 1);
    CU_ASSERT_FATAL(kg_ok(kg_p11_export_plaintext(p11, &b1, &k1)));
    /* Nothing to rotate to yet. */
    CU_ASSERT(kg_failed(kg_p11_rewrap(p11, KG_P11_KEY_AES, &b1, &nb)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_EQUAL(nb.len, 0);

    /* Generation 2: new keys use it, generation 1 blobs still unwrap. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_mwk_add_generation(p11, &gen)));
    CU_ASSERT_EQUAL(gen, 2);
    CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 2);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 128, &b2)));
    CU_ASSERT_EQUAL(b2.mwk_generation, 2);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &b1, &k)));
    CU_ASSERT(same_secret(k, k1));
    kg_secret_free(k);
    k = NULL;

    /* Re-wrap: same key, new generation, different bytes, no object left. */
    CU_ASSERT_FATAL(kg_ok(kg_p11_rewrap(p11, KG_P11_KEY_AES, &b1, &nb)));
    CU_ASSERT_EQUAL(nb.mwk_generation, 2);
    CU_ASSERT_EQUAL(nb.len, b1.len);
    CU_ASSERT(memcmp(nb.bytes, b1.bytes, b1.len) != 0);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &nb, &k)));
    CU_ASSERT(same_secret(k, k1));
    kg_secret_free(k);
    k = NULL;
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    /* Already current; a public kind; damaged; a generation never made. */
    CU_ASSERT(kg_failed(kg_p11_rewrap(p11, KG_P11_KEY_AES, &nb, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT(kg_failed(kg_p11_rewrap(p11, KG_P11_KEY_RSA_PUBLIC, &b1, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    bad = b1;
    bad.bytes[3] ^= 0x10;
    CU_ASSERT(kg_failed(kg_p11_rewrap(p11, KG_P11_KEY_AES, &bad, &blob)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT_EQUAL(blob.len, 0);
    bad = b1;
    bad.mwk_generation = 7;
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &bad, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);

    /* Another process makes generation 3: a running kg_p11 starts using it
     * within KG_P11_MWK_RECHECK_MS, without being reopened. */
    CU_ASSERT_FATAL(gen_behind_back(p11, "3") != CK_INVALID_HANDLE);
    sleep_ms(KG_P11_MWK_RECHECK_MS + 100);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    CU_ASSERT_EQUAL(blob.mwk_generation, 3);
    CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 3);

    /* Generation 4 behind our back, and a blob under it met at once (no
     * waiting): an unknown newer generation is looked up on the spot. */
    {
        CK_OBJECT_HANDLE g4 = gen_behind_back(p11, "4");
        struct kg_p11_pool *pool = kg_p11_pool_of(p11);
        CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
        CK_MECHANISM gen_mech = { CKM_AES_KEY_GEN, NULL, 0 };
        CK_MECHANISM wrap_mech = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
        CK_ULONG vlen = 32;
        CK_ULONG len = sizeof(blob.bytes);
        CK_BBOOL yes = CK_TRUE;
        CK_BBOOL no = CK_FALSE;
        CK_ATTRIBUTE tmpl[] = {
            { CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_TOKEN, &no, 1 }, { CKA_EXTRACTABLE, &yes, 1 },
        };

        CU_ASSERT_FATAL(g4 != CK_INVALID_HANDLE);
        CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
        CU_ASSERT(pool->fn->C_GenerateKey(s, &gen_mech, tmpl, 3, &key) == CKR_OK);
        CU_ASSERT(pool->fn->C_WrapKey(s, &wrap_mech, g4, key, blob.bytes, &len) == CKR_OK);
        CU_ASSERT(pool->fn->C_DestroyObject(s, key) == CKR_OK);
        kg_p11_session_release(pool, s);
        blob.len = (uint32_t)len;
        blob.mechanism = CKM_AES_KEY_WRAP_PAD;
        blob.mwk_generation = 4;
        CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &blob, &k)));
        CU_ASSERT(k != NULL && k->len == 32);
        kg_secret_free(k);
        k = NULL;
        CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 4);
    }

    /* A second object for generation 4 (two rotators at once): the token is
     * refused as ambiguous, and add_generation never makes one. */
    dup = gen_behind_back(p11, "4");
    CU_ASSERT_FATAL(dup != CK_INVALID_HANDLE);
    CU_ASSERT(kg_failed(kg_p11_mwk_list(p11, gens, 8, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "more than one"));
    CU_ASSERT(kg_failed(kg_p11_mwk_add_generation(p11, &gen)));
    destroy_token_object(p11, dup);
    CU_ASSERT(kg_ok(kg_p11_mwk_list(p11, gens, 8, &n)));
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT(n == 4 && gens[0] == 1 && gens[1] == 2 && gens[2] == 3 && gens[3] == 4);

    /* Retire: never the current one, not a missing one; a retired
     * generation's blobs no longer unwrap, the others do. */
    CU_ASSERT(kg_failed(kg_p11_mwk_retire(p11, 4)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_DENIED);
    CU_ASSERT(kg_failed(kg_p11_mwk_retire(p11, 99)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(kg_ok(kg_p11_mwk_retire(p11, 1)));
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &b1, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &nb, &k)));
    CU_ASSERT(same_secret(k, k1));
    kg_secret_free(k);
    k = NULL;
    CU_ASSERT(kg_ok(kg_p11_mwk_retire(p11, 2)));
    CU_ASSERT(kg_ok(kg_p11_mwk_retire(p11, 3)));
    kg_p11_close(p11);

    /* A fresh open finds generation 4 current; add_generation makes 5. */
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    CU_ASSERT_EQUAL(kg_p11_mwk_generation(p11), 4);
    CU_ASSERT(kg_ok(kg_p11_mwk_add_generation(p11, &gen)));
    CU_ASSERT_EQUAL(gen, 5);
    CU_ASSERT(kg_ok(kg_p11_mwk_retire(p11, 4)));
    CU_ASSERT_EQUAL(hsm_count_keys(p11, true, MWK_LABEL, NULL), 1);
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);
    kg_secret_free(k1);
    kg_p11_close(p11);
}

/* The flags of key handle `h` that make it a session copy we may use. */
static bool is_unextractable_session_key(struct kg_p11 *p11, CK_OBJECT_HANDLE h, bool *token)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL tok = CK_TRUE, extractable = CK_TRUE, sensitive = CK_FALSE;
    CK_ATTRIBUTE q[] = {
        { CKA_TOKEN, &tok, 1 },
        { CKA_EXTRACTABLE, &extractable, 1 },
        { CKA_SENSITIVE, &sensitive, 1 },
    };
    CK_RV rv;

    if (kg_failed(kg_p11_session_acquire(pool, &s))) {
        return false;
    }
    rv = pool->fn->C_GetAttributeValue(s, h, q, 3);
    kg_p11_session_release(pool, s);
    *token = tok == CK_TRUE;
    return rv == CKR_OK && extractable == CK_FALSE && sensitive == CK_TRUE;
}

/* The handle operations use for MWK generation `gen`, and its token object. */
static CK_OBJECT_HANDLE mwk_handles(struct kg_p11 *p11, uint32_t gen, CK_OBJECT_HANDLE *token_h)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

    *token_h = CK_INVALID_HANDLE;
    if (kg_failed(kg_p11_session_acquire(pool, &s))) {
        return CK_INVALID_HANDLE;
    }
    if (kg_failed(kg_p11_mwk_for_generation(p11, s, gen, &h))) {
        h = CK_INVALID_HANDLE;
    }
    kg_p11_session_release(pool, s);
    for (uint32_t i = 0; i < p11->mwk_count; i++) {
        if (p11->mwk_gens[i].generation == gen) {
            *token_h = p11->mwk_gens[i].token_h;
        }
    }
    return h;
}

/* Is `h` still an object the token knows? */
static bool object_exists(struct kg_p11 *p11, CK_OBJECT_HANDLE h)
{
    struct kg_p11_pool *pool = kg_p11_pool_of(p11);
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL tok = CK_FALSE;
    CK_ATTRIBUTE q = { CKA_TOKEN, &tok, 1 };
    CK_RV rv;

    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    rv = pool->fn->C_GetAttributeValue(s, h, &q, 1);
    kg_p11_session_release(pool, s);
    return rv == CKR_OK;
}

/*
 * The MWK generations are used through session copies inside the HSM, as
 * sensitive and unextractable as the token objects (kg_p11_copy.c). A
 * generation another process retires stops unwrapping here within
 * KG_P11_MWK_RECHECK_MS, even when only unwraps run, and its copy is
 * destroyed. With copies off, the token objects serve as before.
 */
static void test_hsm_mwk_session_copies(void)
{
    struct kg_p11 *p11;
    struct kg_p11_blob old_blob, new_blob;
    struct kg_secret *k = NULL;
    uint32_t old_gen = 0, gen = 0;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE, token_h = CK_INVALID_HANDLE;
    bool token = true;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    old_gen = kg_p11_mwk_generation(p11);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &old_blob)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_mwk_add_generation(p11, &gen)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &new_blob)));
    CU_ASSERT_EQUAL(new_blob.mwk_generation, gen);

    h = mwk_handles(p11, old_gen, &token_h);
    CU_ASSERT_FATAL(h != CK_INVALID_HANDLE && token_h != CK_INVALID_HANDLE);
    CU_ASSERT(h != token_h);
    CU_ASSERT(kg_p11_is_key_copy(p11, h));
    CU_ASSERT(!kg_p11_is_key_copy(p11, token_h));
    CU_ASSERT(is_unextractable_session_key(p11, h, &token));
    CU_ASSERT(!token);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &old_blob, &k)));
    kg_secret_free(k);
    k = NULL;

    /* Another process retires the old generation: only unwraps follow. */
    destroy_token_object(p11, token_h);
    sleep_ms(KG_P11_MWK_RECHECK_MS + 100);
    CU_ASSERT(kg_failed(kg_p11_export_plaintext(p11, &old_blob, &k)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM_UNWRAP);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT(!object_exists(p11, h));
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &new_blob, &k)));
    kg_secret_free(k);
    k = NULL;
    CU_ASSERT_EQUAL(hsm_count_keys(p11, false, NULL, NULL), 0);

    /* The login session dies (as in a device reset, while the pool keeps
     * the token logged in): the next look opens another and copies again. */
    {
        CK_OBJECT_HANDLE old_copy = mwk_handles(p11, gen, &token_h);

        CU_ASSERT(kg_p11_is_key_copy(p11, old_copy));
        CU_ASSERT(p11->fn->C_CloseSession(p11->login_session) == CKR_OK);
        CU_ASSERT(!object_exists(p11, old_copy));
        p11->mwk_stale = true;
        h = mwk_handles(p11, gen, &token_h);
        CU_ASSERT(h != token_h && kg_p11_is_key_copy(p11, h) && object_exists(p11, h));
        CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &new_blob, &k)));
        kg_secret_free(k);
        k = NULL;
    }
    kg_p11_close(p11);

    /* Copies off: the token object itself, and everything still works. */
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    h = mwk_handles(p11, gen, &token_h); /* a copy, made at open */
    CU_ASSERT(kg_p11_is_key_copy(p11, h));
    p11->no_key_copies = true;
    p11->mwk_stale = true; /* as after an invalid handle: the table is read again, the copy dropped */
    {
        CK_OBJECT_HANDLE copy = h;

        h = mwk_handles(p11, gen, &token_h);
        CU_ASSERT(!object_exists(p11, copy));
    }
    CU_ASSERT(h != CK_INVALID_HANDLE && h == token_h);
    CU_ASSERT(!kg_p11_is_key_copy(p11, h));
    CU_ASSERT(is_unextractable_session_key(p11, h, &token));
    CU_ASSERT(token);
    CU_ASSERT(kg_ok(kg_p11_export_plaintext(p11, &new_blob, &k)));
    CU_ASSERT(k != NULL && k->len == 32);
    kg_secret_free(k);
    kg_p11_close(p11);
}

/* Private keys re-wrap the same way (PKCS#8 under the MWK) and still sign. */
static void test_hsm_rewrap_private_key(void)
{
    struct kg_p11 *p11;
    struct kg_p11_pool *pool;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE, mwk = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE loaded = CK_INVALID_HANDLE, to_destroy = CK_INVALID_HANDLE;
    CK_MECHANISM kp_mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    CK_MECHANISM sign_mech = { CKM_SHA256_RSA_PKCS, NULL, 0 };
    CK_ULONG bits = 2048;
    CK_BYTE e[] = { 1, 0, 1 };
    CK_BBOOL yes = CK_TRUE;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE pub_t[] = {
        { CKA_TOKEN, &no, 1 }, { CKA_VERIFY, &yes, 1 }, { CKA_MODULUS_BITS, &bits, sizeof(bits) },
        { CKA_PUBLIC_EXPONENT, e, sizeof(e) },
    };
    CK_ATTRIBUTE priv_t[] = {
        { CKA_TOKEN, &no, 1 }, { CKA_PRIVATE, &yes, 1 }, { CKA_SENSITIVE, &yes, 1 },
        { CKA_EXTRACTABLE, &yes, 1 }, { CKA_SIGN, &yes, 1 },
    };
    struct kg_p11_blob old, fresh;
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_RSA_PRIVATE, .storage = KG_P11_STORED_WRAPPED };
    uint8_t msg[] = "rotate me";
    uint8_t sig[512];
    CK_ULONG sig_len = sizeof(sig);
    uint32_t gen = 0;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_FATAL(pool->fn->C_GenerateKeyPair(s, &kp_mech, pub_t, 4, priv_t, 5, &pub, &priv) == CKR_OK);
    CU_ASSERT_FATAL(kg_ok(kg_p11_mwk_handle(p11, s, &mwk)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_wrap_under_mwk(p11, s, mwk, priv, &old)));
    CU_ASSERT(pool->fn->C_DestroyObject(s, priv) == CKR_OK);
    kg_p11_session_release(pool, s);
    s = CK_INVALID_HANDLE;

    CU_ASSERT_FATAL(kg_ok(kg_p11_mwk_add_generation(p11, &gen)));
    CU_ASSERT(old.mwk_generation + 1 == gen);
    CU_ASSERT_FATAL(kg_ok(kg_p11_rewrap(p11, KG_P11_KEY_RSA_PRIVATE, &old, &fresh)));
    CU_ASSERT_EQUAL(fresh.mwk_generation, gen);

    /* The re-wrapped private key signs, and the signature verifies. */
    ref.blob = &fresh;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    CU_ASSERT_FATAL(kg_ok(kg_p11_key_load(p11, s, &ref, KG_P11_USE_SIGN, &loaded, &to_destroy)));
    CU_ASSERT(pool->fn->C_SignInit(s, &sign_mech, loaded) == CKR_OK);
    CU_ASSERT(pool->fn->C_Sign(s, msg, sizeof(msg), sig, &sig_len) == CKR_OK);
    CU_ASSERT(pool->fn->C_VerifyInit(s, &sign_mech, pub) == CKR_OK);
    CU_ASSERT(pool->fn->C_Verify(s, msg, sizeof(msg), sig, sig_len) == CKR_OK);
    CU_ASSERT(pool->fn->C_DestroyObject(s, to_destroy) == CKR_OK);
    CU_ASSERT(pool->fn->C_DestroyObject(s, pub) == CKR_OK);
    kg_p11_session_release(pool, s);
    CU_ASSERT(kg_ok(kg_p11_mwk_retire(p11, gen - 1)));
    kg_p11_close(p11);
}

/*
 * openCryptoki 3.8.1's C_UnwrapKey, imitated over SoftHSM: CKA_SENSITIVE=FALSE
 * and CKA_EXTRACTABLE=TRUE are refused (CKR_ATTRIBUTE_READ_ONLY), and
 * whatever else was asked the object comes out non-sensitive and
 * extractable. ock_mode 1 also refuses every C_SetAttributeValue (no
 * tightening after the unwrap); 2 turns CKA_SIGN on behind our back.
 */
static CK_FUNCTION_LIST_PTR ock_real;
static int ock_mode;
static int ock_unwraps;

static CK_RV ock_unwrap(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k, CK_BYTE_PTR w, CK_ULONG wl,
                        CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR h)
{
    static CK_BBOOL yes = CK_TRUE;
    static CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[20];
    CK_ULONG m_n = 0;

    ock_unwraps++;
    if (n + 2 > sizeof(t) / sizeof(t[0])) {
        return CKR_TEMPLATE_INCONSISTENT;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        CK_BBOOL v = tmpl[i].ulValueLen == 1 ? *(CK_BBOOL *)tmpl[i].pValue : CK_FALSE;

        if ((tmpl[i].type == CKA_SENSITIVE && !v) || (tmpl[i].type == CKA_EXTRACTABLE && v)) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
        if (tmpl[i].type == CKA_SENSITIVE || tmpl[i].type == CKA_EXTRACTABLE) {
            continue;
        }
        t[m_n] = tmpl[i];
        if (ock_mode == 2 && tmpl[i].type == CKA_SIGN) {
            t[m_n].pValue = &yes;
        }
        m_n++;
    }
    t[m_n++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &no, 1 };
    t[m_n++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &yes, 1 };
    return ock_real->C_UnwrapKey(s, m, k, w, wl, t, m_n, h);
}

static CK_RV ock_set(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
    return ock_mode == 1 ? CKR_ATTRIBUTE_READ_ONLY : ock_real->C_SetAttributeValue(s, h, t, n);
}

/* Secret-key session objects visible on `s` now. */
static long ock_session_secrets(CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &no, 1 } };
    CK_OBJECT_HANDLE objs[64];
    CK_ULONG n = 0;

    if (fn->C_FindObjectsInit(s, t, 2) != CKR_OK) {
        return -1;
    }
    if (fn->C_FindObjects(s, objs, 64, &n) != CKR_OK) {
        n = 0;
    }
    (void)fn->C_FindObjectsFinal(s);
    return (long)n;
}

static void test_hsm_unwrap_ock_template(void)
{
    struct kg_p11 *p11 = NULL;
    struct kg_p11_pool *pool = NULL;
    CK_FUNCTION_LIST ock_fl;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE to_destroy = CK_INVALID_HANDLE;
    CK_BBOOL sensitive = 9;
    CK_BBOOL extractable = 9;
    CK_ATTRIBUTE get[] = { { CKA_SENSITIVE, &sensitive, 1 }, { CKA_EXTRACTABLE, &extractable, 1 } };
    struct kg_p11_blob blob;
    struct kg_p11_key_ref ref = { .kind = KG_P11_KEY_AES, .storage = KG_P11_STORED_WRAPPED, .blob = &blob };
    long before;

    SKIP_WITHOUT_SOFTHSM();
    p11 = hsm_open(2);
    CU_ASSERT_FATAL(p11 != NULL);
    pool = kg_p11_pool_of(p11);
    CU_ASSERT_FATAL(kg_ok(kg_p11_generate_aes(p11, 256, &blob)));
    ock_real = p11->fn;
    ock_fl = *ock_real;
    ock_fl.C_UnwrapKey = ock_unwrap;
    ock_fl.C_SetAttributeValue = ock_set;
    p11->fn = &ock_fl;
    CU_ASSERT_FATAL(kg_ok(kg_p11_session_acquire(pool, &s)));
    before = ock_session_secrets(ock_real, s);

    /* An encrypting key: the token hands it back readable; it is made
     * sensitive and non-extractable before anyone gets it. */
    ock_mode = 0;
    ock_unwraps = 0;
    CU_ASSERT_FATAL(kg_ok(kg_p11_key_load(p11, s, &ref, KG_P11_USE_ENCRYPT, &h, &to_destroy)));
    CU_ASSERT(ock_real->C_GetAttributeValue(s, h, get, 2) == CKR_OK);
    CU_ASSERT_EQUAL(sensitive, CK_TRUE);
    CU_ASSERT_EQUAL(extractable, CK_FALSE);
    CU_ASSERT_EQUAL(ock_unwraps, 1);
    CU_ASSERT(ock_real->C_DestroyObject(s, to_destroy) == CKR_OK);

    /* An extracting key: refused once, unwrapped without the two, and
     * read back extractable (what was asked). */
    ock_unwraps = 0;
    CU_ASSERT_FATAL(kg_ok(kg_p11_key_load(p11, s, &ref, KG_P11_USE_EXTRACT, &h, &to_destroy)));
    CU_ASSERT(ock_real->C_GetAttributeValue(s, h, get, 2) == CKR_OK);
    CU_ASSERT_EQUAL(extractable, CK_TRUE);
    CU_ASSERT_EQUAL(ock_unwraps, 2);
    CU_ASSERT(ock_real->C_DestroyObject(s, to_destroy) == CKR_OK);

    /* A token that will not tighten, or that adds a use: refused, and no
     * object is left behind. */
    for (ock_mode = 1; ock_mode <= 2; ock_mode++) {
        CU_ASSERT(kg_failed(kg_p11_key_load(p11, s, &ref, KG_P11_USE_ENCRYPT, &h, &to_destroy)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_HSM);
        CU_ASSERT_EQUAL(h, CK_INVALID_HANDLE);
        CU_ASSERT_EQUAL(to_destroy, CK_INVALID_HANDLE);
        CU_ASSERT_EQUAL(ock_session_secrets(ock_real, s), before);
    }
    p11->fn = ock_real;
    kg_p11_session_release(pool, s);
    kg_p11_close(p11);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_error_mapping),
        KG_TEST(test_fake_pool_reuses_sessions),
        KG_TEST(test_fake_pool_cap_from_token),
        KG_TEST(test_fake_pool_init_errors),
        KG_TEST(test_fake_session_count),
        KG_TEST(test_fake_dead_session_replaced),
        KG_TEST(test_fake_lost_login),
        KG_TEST(test_fake_device_removed),
        KG_TEST(test_fake_exhaustion_blocks),
        KG_TEST(test_fake_waiters_served_in_order),
        KG_TEST(test_fake_session_end),
        KG_TEST(test_fake_relogin_after_not_logged_in),
        KG_TEST(test_fake_reset_flushes_idle),
        KG_TEST(test_fake_check_error_keeps_session),
        KG_TEST(test_secret_read_pin),
        /* SoftHSM: in this order, the token's state carries over. */
        KG_TEST(test_hsm_open_errors),
        KG_TEST(test_hsm_no_mwk_then_init),
        KG_TEST(test_hsm_mwk_attributes),
        KG_TEST(test_hsm_generate_lengths),
        KG_TEST(test_hsm_import_export_roundtrip),
        KG_TEST(test_hsm_hmac_export),
        KG_TEST(test_hsm_generated_keys_differ),
        KG_TEST(test_hsm_tampered_blob),
        KG_TEST(test_hsm_session_recovery),
        KG_TEST(test_hsm_all_sessions_lost),
        KG_TEST(test_hsm_bad_mwk_refused),
        KG_TEST(test_hsm_concurrent_small_pool),
        KG_TEST(test_hsm_mwk_generations),
        KG_TEST(test_hsm_mwk_session_copies),
        KG_TEST(test_hsm_rewrap_private_key),
        KG_TEST(test_hsm_unwrap_ock_template),
    };
    int failed = kg_test_run("p11", cases, sizeof(cases) / sizeof(cases[0]));

    softhsm_teardown();
    return failed;
}
