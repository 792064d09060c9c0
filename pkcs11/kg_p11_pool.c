/*
 * kg_p11_pool.c - a bounded pool of logged-in R/W sessions on one slot.
 *
 * Shape after libp11's pkcs11_get_session/pkcs11_put_session (p11_slot.c)
 * and kmip2pkcs11's pool.rs: a mutex, sessions opened lazily up to a cap,
 * CKR_SESSION_COUNT lowering the cap, and a C_GetSessionInfo check on every
 * checkout. Unlike libp11 we never call into the module with the pool lock
 * held: a slow HSM call must not stall threads that only want to return a
 * session.
 *
 * Waiters are served first come, first served: a returned session (or room
 * to open one) is handed to the oldest waiter, each on a condition of its
 * own. With one shared condition a thread arriving just then took it as
 * often as not, and the unlucky waited several turns: with 16 workers on 2
 * sessions Get's p99 was 1.5 times what 4 workers gave.
 */
#include "kg_p11_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A thread waiting in kg_p11_session_acquire_within, on its stack. */
struct kg_p11_pool_waiter {
    struct kg_p11_pool_waiter *next;
    pthread_cond_t cond;
    bool granted;           /* served: `session` or `fresh` below is its */
    bool fresh;             /* granted room to open a session (counted in n_open) */
    CK_SESSION_HANDLE session;
};

/* What checking a session out found. */
enum kg_p11_session_state {
    KG_P11_SESSION_USABLE, /* alive and logged in */
    KG_P11_SESSION_STALE,  /* dead (closed, or its device went away): forget
                            * it and its idle siblings, take another */
    KG_P11_SESSION_FAILED, /* the check or the re-login failed some other
                            * way: keep the session, fail the checkout */
};

kg_result kg_p11_pool_init(struct kg_p11_pool *pool, CK_FUNCTION_LIST_PTR fn, CK_SLOT_ID slot,
                           uint32_t max_sessions, const struct kg_secret *pin, uint32_t timeout_ms)
{
    CK_TOKEN_INFO info;
    bool mutex_ready = false;
    bool cattr_ready = false;
    kg_result rc = KG_RESULT_OK;

    memset(pool, 0, sizeof(*pool));
    memset(&info, 0, sizeof(info));
    KG_GOTO_ENSURE(rc, fn != NULL, KG_ERR_INTERNAL);
    if (max_sessions == 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("hsm max_sessions must be at least 1");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, KG_P11_CHECK(fn->C_GetTokenInfo(slot, &info), "C_GetTokenInfo"));

    pool->fn = fn;
    pool->slot = slot;
    pool->timeout_ms = timeout_ms != 0 ? timeout_ms : KG_P11_ACQUIRE_TIMEOUT_MS;
    pool->cap = max_sessions;
    /* 0 is CK_EFFECTIVELY_INFINITE; ~0 is CK_UNAVAILABLE_INFORMATION. */
    if (info.ulMaxRwSessionCount != CK_EFFECTIVELY_INFINITE &&
        info.ulMaxRwSessionCount != CK_UNAVAILABLE_INFORMATION && info.ulMaxRwSessionCount < pool->cap) {
        pool->cap = (uint32_t)info.ulMaxRwSessionCount;
    }
    pool->cap_max = pool->cap;

    pool->login_required = (info.flags & CKF_LOGIN_REQUIRED) != 0;
    if (pool->login_required) {
        if (pin == NULL) {
            kg_error_set(KG_ERR_HSM_LOGIN, __FILE__, __LINE__);
            kg_error_detail("the token requires a login but no PIN was given");
            rc = KG_RESULT_ERROR;
            goto out;
        }
        KG_GOTO_GUARD(rc, kg_secret_from(pin->data, pin->len, &pool->pin));
    }

    pool->idle = calloc(pool->cap_max, sizeof(*pool->idle));
    KG_GOTO_ENSURE(rc, pool->idle != NULL, KG_ERR_NOMEM);

    KG_GOTO_ENSURE(rc, pthread_mutex_init(&pool->lock, NULL) == 0, KG_ERR_INTERNAL);
    mutex_ready = true;
    /* Deadlines on the monotonic clock: a wall-clock step must neither
     * time out every waiter nor let them wait forever. */
    KG_GOTO_ENSURE(rc, pthread_condattr_init(&pool->cattr) == 0, KG_ERR_INTERNAL);
    cattr_ready = true;
    KG_GOTO_ENSURE(rc, pthread_condattr_setclock(&pool->cattr, CLOCK_MONOTONIC) == 0, KG_ERR_INTERNAL);
out:
    if (kg_failed(rc)) {
        if (cattr_ready) {
            pthread_condattr_destroy(&pool->cattr);
        }
        if (mutex_ready) {
            pthread_mutex_destroy(&pool->lock);
        }
        free(pool->idle);
        kg_secret_free(pool->pin);
        memset(pool, 0, sizeof(*pool));
    }
    return rc;
}

void kg_p11_pool_cleanup(struct kg_p11_pool *pool)
{
    if (pool == NULL || pool->fn == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    /* A session still checked out is a caller bug; its owner would use a
     * handle we are about to forget. */
    assert(pool->n_idle == pool->n_open && pool->wait_head == NULL);
    for (uint32_t i = 0; i < pool->n_idle; i++) {
        (void)pool->fn->C_CloseSession(pool->idle[i]);
    }
    pool->n_idle = 0;
    pool->n_open = 0;
    pthread_mutex_unlock(&pool->lock);

    pthread_condattr_destroy(&pool->cattr);
    pthread_mutex_destroy(&pool->lock);
    free(pool->idle);
    kg_secret_free(pool->pin);
    memset(pool, 0, sizeof(*pool));
}

/*
 * Does `rv` say the session is dead? Either it was closed (by us, by a
 * C_CloseAllSessions, by an HSM-side timeout), or the token or device went
 * away, which closes every session (PKCS#11 v2.40 section 5.6). Such a
 * handle is never used again; closing it is only a courtesy.
 */
static bool kg_p11_rv_is_dead_session(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
           rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED;
}

/*
 * Check session `s`: alive, and logged in (login state is per token, so one
 * C_Login restores it for every session of the process). Runs without the
 * pool lock. On anything but USABLE the kg error slot says why.
 *
 * A failure that does not say the session is dead (CKR_DEVICE_ERROR, a
 * login refused...) keeps the session: it is checked again at its next
 * checkout, and closing it could fail the same way and leak it.
 */
static enum kg_p11_session_state kg_p11_session_verify(struct kg_p11_pool *pool, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO info;
    CK_RV rv;
    bool relogin;

    memset(&info, 0, sizeof(info));
    rv = pool->fn->C_GetSessionInfo(s, &info);
    if (kg_failed(KG_P11_CHECK(rv, "C_GetSessionInfo"))) {
        return kg_p11_rv_is_dead_session(rv) ? KG_P11_SESSION_STALE : KG_P11_SESSION_FAILED;
    }
    if (!pool->login_required) {
        return KG_P11_SESSION_USABLE;
    }
    pthread_mutex_lock(&pool->lock);
    relogin = pool->relogin;
    pthread_mutex_unlock(&pool->lock);
    if (!relogin && info.state != CKS_RW_PUBLIC_SESSION && info.state != CKS_RO_PUBLIC_SESSION) {
        return KG_P11_SESSION_USABLE;
    }
    /* The token logged out under us (all sessions closed by someone, a
     * token reset, another process's C_Logout), or an operation said
     * CKR_USER_NOT_LOGGED_IN whatever the session state claims: log in
     * again. Another thread may win the race; CKR_USER_ALREADY_LOGGED_IN
     * is success. A PIN the token refused is not tried again: every try
     * counts towards locking it. */
    pthread_mutex_lock(&pool->lock);
    rv = pool->pin_refused;
    pthread_mutex_unlock(&pool->lock);
    if (rv != CKR_OK) {
        kg_error_set(KG_ERR_HSM_LOGIN, __FILE__, __LINE__);
        kg_error_detail("the token logged out and refused the configured PIN (%s); not retried, so as not "
                        "to lock it: fix the PIN and restart",
                        kg_p11_rv_name(rv));
        return KG_P11_SESSION_FAILED;
    }
    rv = pool->fn->C_Login(s, CKU_USER, pool->pin->data, pool->pin->len);
    if (rv == CKR_USER_ALREADY_LOGGED_IN || kg_ok(KG_P11_CHECK(rv, "C_Login"))) {
        /* Handles of private objects may not have survived the logout. */
        pthread_mutex_lock(&pool->lock);
        pool->relogin = false;
        pool->epoch++;
        pthread_mutex_unlock(&pool->lock);
        return KG_P11_SESSION_USABLE;
    }
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED ||
        rv == CKR_PIN_LOCKED) {
        pthread_mutex_lock(&pool->lock);
        pool->pin_refused = rv;
        pthread_mutex_unlock(&pool->lock);
    }
    return kg_p11_rv_is_dead_session(rv) ? KG_P11_SESSION_STALE : KG_P11_SESSION_FAILED;
}

/* Is a session free, or room to open one? Called with the lock held. */
static bool kg_p11_pool_has_room_locked(const struct kg_p11_pool *pool)
{
    return pool->n_idle > 0 || pool->n_open < pool->cap;
}

/* Take an idle session, else room to open one (*fresh). Lock held, room checked. */
static void kg_p11_pool_take_locked(struct kg_p11_pool *pool, CK_SESSION_HANDLE *session, bool *fresh)
{
    if (pool->n_idle > 0) {
        *session = pool->idle[--pool->n_idle];
        *fresh = false;
    } else {
        /* Reserved before the lock is dropped, so concurrent openers
         * cannot overshoot the cap. */
        pool->n_open++;
        *session = CK_INVALID_HANDLE;
        *fresh = true;
    }
}

/* Hand what is free to the oldest waiters. Called with the lock held,
 * after anything that may have freed a session or room. */
static void kg_p11_pool_serve_waiters_locked(struct kg_p11_pool *pool)
{
    while (pool->wait_head != NULL && kg_p11_pool_has_room_locked(pool)) {
        struct kg_p11_pool_waiter *w = pool->wait_head;

        pool->wait_head = w->next;
        if (pool->wait_head == NULL) {
            pool->wait_tail = NULL;
        }
        kg_p11_pool_take_locked(pool, &w->session, &w->fresh);
        w->granted = true;
        pthread_cond_signal(&w->cond);
    }
}

/* Leave the queue after a timeout. Called with the lock held. */
static void kg_p11_pool_unqueue_locked(struct kg_p11_pool *pool, struct kg_p11_pool_waiter *w)
{
    struct kg_p11_pool_waiter **link = &pool->wait_head, *prev = NULL;

    while (*link != NULL && *link != w) {
        prev = *link;
        link = &(*link)->next;
    }
    if (*link == w) {
        *link = w->next;
        if (pool->wait_tail == w) {
            pool->wait_tail = prev;
        }
    }
}

/*
 * Take a session or room to open one, waiting in line until `deadline`
 * when there is neither or others are already waiting. Takes the lock.
 */
static kg_result kg_p11_pool_wait_turn(struct kg_p11_pool *pool, const struct timespec *deadline, uint32_t timeout_ms,
                                       CK_SESSION_HANDLE *session, bool *fresh)
{
    struct kg_p11_pool_waiter me = { .session = CK_INVALID_HANDLE };
    kg_result rc = KG_RESULT_OK;

    pthread_mutex_lock(&pool->lock);
    if (pool->wait_head == NULL && kg_p11_pool_has_room_locked(pool)) {
        kg_p11_pool_take_locked(pool, session, fresh);
        pthread_mutex_unlock(&pool->lock);
        return KG_RESULT_OK;
    }
    if (pthread_cond_init(&me.cond, &pool->cattr) != 0) {
        pthread_mutex_unlock(&pool->lock);
        KG_ENSURE(false, KG_ERR_INTERNAL);
    }
    if (pool->wait_tail != NULL) {
        pool->wait_tail->next = &me;
    } else {
        pool->wait_head = &me;
    }
    pool->wait_tail = &me;
    while (!me.granted) {
        if (pthread_cond_timedwait(&me.cond, &pool->lock, deadline) == ETIMEDOUT && !me.granted) {
            kg_p11_pool_unqueue_locked(pool, &me);
            kg_error_set(KG_ERR_HSM_BUSY, __FILE__, __LINE__);
            kg_error_detail("no PKCS#11 session free within %u ms (pool of %u)", timeout_ms, pool->cap);
            rc = KG_RESULT_ERROR;
            break;
        }
    }
    if (me.granted) {
        *session = me.session;
        *fresh = me.fresh;
    }
    pthread_mutex_unlock(&pool->lock);
    pthread_cond_destroy(&me.cond);
    return rc;
}

/* Drop a session the pool counted as open. Takes the lock itself. */
static void kg_p11_session_forget(struct kg_p11_pool *pool, CK_SESSION_HANDLE s)
{
    /* Closing a dead handle fails harmlessly; closing a live but broken
     * one frees its slot on the token. */
    (void)pool->fn->C_CloseSession(s);
    pthread_mutex_lock(&pool->lock);
    assert(pool->n_open > 0);
    pool->n_open--;
    if (pool->n_open == 0) {
        pool->epoch++;
    }
    kg_p11_pool_serve_waiters_locked(pool);
    pthread_mutex_unlock(&pool->lock);
}

static void kg_p11_deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000u);
    ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

kg_result kg_p11_session_acquire(struct kg_p11_pool *pool, CK_SESSION_HANDLE *out)
{
    return kg_p11_session_acquire_within(pool, pool->timeout_ms, out);
}

kg_result kg_p11_session_acquire_within(struct kg_p11_pool *pool, uint32_t timeout_ms, CK_SESSION_HANDLE *out)
{
    struct timespec deadline;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_RV rv;

    *out = CK_INVALID_HANDLE;
    kg_p11_deadline_after(&deadline, timeout_ms);

    /* Bounded: each pass either consumes an idle session, which never
     * returns if it was stale, or opens a new one and ends. */
    for (;;) {
        bool fresh = false;
        enum kg_p11_session_state state;

        KG_GUARD(kg_p11_pool_wait_turn(pool, &deadline, timeout_ms, &s, &fresh));

        if (fresh) {
            rv = pool->fn->C_OpenSession(pool->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
            if (rv != CKR_OK) {
                bool wait = false;

                pthread_mutex_lock(&pool->lock);
                pool->n_open--;
                if (rv == CKR_SESSION_COUNT && pool->n_open > 0) {
                    /* The token (or other users of it) ran out first: our
                     * real limit is what we hold now. Wait for one back. */
                    pool->cap = pool->n_open;
                    wait = true;
                }
                kg_p11_pool_serve_waiters_locked(pool);
                pthread_mutex_unlock(&pool->lock);
                if (wait) {
                    continue;
                }
                /* Nothing of ours to wait for: the token refuses us. */
                return KG_P11_CHECK(rv, "C_OpenSession");
            }
        }

        state = kg_p11_session_verify(pool, s);
        switch (state) {
        case KG_P11_SESSION_USABLE:
            *out = s;
            return KG_RESULT_OK;
        case KG_P11_SESSION_STALE:
            /* One dead session usually means all of them died (device
             * reset, C_CloseAllSessions): drop the idle ones now rather
             * than one checkout at a time, before new sessions could be
             * given their handle numbers. */
            kg_p11_session_forget(pool, s);
            kg_p11_pool_flush(pool);
            if (!fresh) {
                kg_error_clear();
                continue;
            }
            return KG_RESULT_ERROR; /* a brand-new session is dead: give up */
        case KG_P11_SESSION_FAILED:
        default:
            kg_p11_session_release(pool, s);
            return KG_RESULT_ERROR;
        }
    }
}

void kg_p11_session_release(struct kg_p11_pool *pool, CK_SESSION_HANDLE session)
{
    if (session == CK_INVALID_HANDLE) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    /* n_idle < n_open <= cap <= cap_max while `session` is checked out. */
    assert(pool->n_idle < pool->cap_max);
    pool->idle[pool->n_idle++] = session;
    kg_p11_pool_serve_waiters_locked(pool);
    pthread_mutex_unlock(&pool->lock);
}

void kg_p11_session_discard(struct kg_p11_pool *pool, CK_SESSION_HANDLE session)
{
    if (session != CK_INVALID_HANDLE) {
        kg_p11_session_forget(pool, session);
    }
}

void kg_p11_pool_flush(struct kg_p11_pool *pool)
{
    CK_SESSION_HANDLE *doomed = calloc(pool->cap_max, sizeof(*doomed));
    uint32_t n = 0;

    pthread_mutex_lock(&pool->lock);
    /* Without memory the idle sessions stay: every checkout verifies them
     * anyway, so this only loses the early cleanup. */
    if (doomed != NULL) {
        n = pool->n_idle;
        memcpy(doomed, pool->idle, n * sizeof(*doomed));
        pool->n_idle = 0;
        assert(pool->n_open >= n);
        pool->n_open -= n;
        kg_p11_pool_serve_waiters_locked(pool);
    }
    pool->epoch++;
    pthread_mutex_unlock(&pool->lock);
    for (uint32_t i = 0; i < n; i++) {
        (void)pool->fn->C_CloseSession(doomed[i]);
    }
    free(doomed);
}

void kg_p11_session_end(struct kg_p11_pool *pool, CK_SESSION_HANDLE session, int err, bool must_close)
{
    if (session == CK_INVALID_HANDLE) {
        return;
    }
    switch (err) {
    case KG_ERR_HSM_SESSION:
        /* The session, the token or the device went away under the
         * operation: this session is done for, and so probably are its
         * idle siblings; cached object handles with them. */
        kg_p11_session_forget(pool, session);
        kg_p11_pool_flush(pool);
        return;
    case KG_ERR_HSM_LOGIN:
        /* CKR_USER_NOT_LOGGED_IN on an operation: log in again at the next
         * checkout even if C_GetSessionInfo claims we are logged in, and
         * look private objects (the MWK) up again. The session is fine. */
        pthread_mutex_lock(&pool->lock);
        pool->relogin = true;
        pool->epoch++;
        pthread_mutex_unlock(&pool->lock);
        break;
    case KG_ERR_HSM:
        /* CKR_DEVICE_ERROR, CKR_FUNCTION_FAILED...: the session's state is
         * unknown (an operation may still be active on it). A new one costs
         * one C_OpenSession. */
        must_close = true;
        break;
    default:
        break;
    }
    if (must_close) {
        kg_p11_session_forget(pool, session);
    } else {
        kg_p11_session_release(pool, session);
    }
}

void kg_p11_pool_stats(struct kg_p11_pool *pool, uint32_t *n_open, uint32_t *n_idle, uint32_t *cap,
                       uint64_t *epoch)
{
    pthread_mutex_lock(&pool->lock);
    if (n_open != NULL) {
        *n_open = pool->n_open;
    }
    if (n_idle != NULL) {
        *n_idle = pool->n_idle;
    }
    if (cap != NULL) {
        *cap = pool->cap;
    }
    if (epoch != NULL) {
        *epoch = pool->epoch;
    }
    pthread_mutex_unlock(&pool->lock);
}
