/* kg_commit.c - group commit over one shared SQLite writer connection. */
#include "kg_commit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kg_metrics.h"

struct kg_committer {
    struct kg_store *writer;
    pthread_mutex_t lock; /* guards the writer connection and all below */
    pthread_cond_t committed;
    atomic_uint waiting; /* threads blocked in kg_change_begin */
    bool open;           /* the group's transaction is open */
    uint64_t applied;    /* sequence of the last change applied */
    uint64_t durable;    /* every change up to this one is on disk */
    uint64_t failed_from, failed_to; /* changes lost with a failed commit */
    uint64_t commits;
    /* A batch with Undo holds the lock from kg_change_batch_begin to
     * kg_change_batch_end; its thread's changes nest inside it. */
    atomic_bool in_batch;
    _Atomic pthread_t batch_owner; /* read by any thread, so atomic */
};

/* True on the thread that holds an open batch (it holds the lock). */
static bool kg_change_in_my_batch(struct kg_committer *c)
{
    return atomic_load(&c->in_batch) && pthread_equal(atomic_load(&c->batch_owner), pthread_self());
}

kg_result kg_committer_open(const char *path, struct kg_committer **out)
{
    struct kg_committer *c;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    KG_ENSURE(c != NULL, KG_ERR_NOMEM);
    if (kg_failed(kg_store_open(path, &c->writer))) {
        free(c);
        return KG_RESULT_ERROR;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->committed, NULL);
    *out = c;
    return KG_RESULT_OK;
}

void kg_committer_close(struct kg_committer *c)
{
    if (c == NULL) {
        return;
    }
    kg_store_rollback(c->writer);
    kg_store_close(c->writer);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->committed);
    free(c);
}

static void kg_commit_maybe_lead_locked(struct kg_committer *c);

static kg_result kg_change_join(struct kg_committer *c, struct kg_store **store);

kg_result kg_change_begin(struct kg_committer *c, const char *uid, struct kg_store **store)
{
    if (kg_change_in_my_batch(c)) {
        *store = NULL;
        KG_GUARD(kg_store_savepoint(c->writer));
        if (uid != NULL && kg_failed(kg_store_lock_object(c->writer, uid))) {
            kg_store_rollback_to(c->writer);
            return KG_RESULT_ERROR;
        }
        *store = c->writer;
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_change_join(c, store));
    if (uid != NULL && kg_failed(kg_store_lock_object(*store, uid))) {
        *store = NULL;
        /* Undo the savepoint and leave the group; the lock error is returned. */
        return kg_change_end(c, KG_RESULT_ERROR);
    }
    return KG_RESULT_OK;
}

/* Join the open group (opening one if needed) under a savepoint of this change. */
static kg_result kg_change_join(struct kg_committer *c, struct kg_store **store)
{
    *store = NULL;
    atomic_fetch_add(&c->waiting, 1);
    pthread_mutex_lock(&c->lock);
    atomic_fetch_sub(&c->waiting, 1);
    if (!c->open) {
        if (kg_failed(kg_store_begin(c->writer))) {
            pthread_mutex_unlock(&c->lock);
            return KG_RESULT_ERROR;
        }
        c->open = true;
    }
    if (kg_failed(kg_store_savepoint(c->writer))) {
        /* Others may be waiting for this thread to join their group: it
         * will not, so commit for them if nobody else comes. */
        kg_commit_maybe_lead_locked(c);
        pthread_mutex_unlock(&c->lock);
        return KG_RESULT_ERROR;
    }
    *store = c->writer;
    return KG_RESULT_OK; /* the lock is held until kg_change_end */
}

/* Commit the open group. Called with the lock held. */
static void kg_commit_group_locked(struct kg_committer *c)
{
    uint64_t upto = c->applied;
    const uint64_t started = kg_metrics_now_ns();

    if (kg_ok(kg_store_commit(c->writer))) {
        c->durable = upto;
    } else {
        /* The whole group is lost: every waiter in it must hear so. */
        kg_store_rollback(c->writer);
        c->failed_from = c->durable + 1;
        c->failed_to = upto;
        c->durable = upto;
    }
    kg_metrics_commit_done(started);
    c->open = false;
    c->commits++;
    pthread_cond_broadcast(&c->committed);
}

/* Lead the commit when nobody else is about to join the group. */
static void kg_commit_maybe_lead_locked(struct kg_committer *c)
{
    if (c->open && c->applied > c->durable && atomic_load(&c->waiting) == 0) {
        kg_commit_group_locked(c);
    } else if (c->open && c->applied == c->durable && atomic_load(&c->waiting) == 0) {
        /* Only failed (rolled back) changes: close the empty transaction. */
        kg_store_rollback(c->writer);
        c->open = false;
    }
}

kg_result kg_change_end(struct kg_committer *c, kg_result rc)
{
    uint64_t mine;

    if (kg_change_in_my_batch(c)) {
        /* Durable, or not, with the whole batch. */
        if (kg_ok(rc) && kg_ok(kg_store_release(c->writer))) {
            return KG_RESULT_OK;
        }
        kg_store_rollback_to(c->writer);
        return kg_failed(rc) ? rc : KG_RESULT_ERROR;
    }
    if (kg_failed(rc)) {
        kg_store_rollback_to(c->writer);
        kg_commit_maybe_lead_locked(c);
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    if (kg_failed(kg_store_release(c->writer))) {
        kg_store_rollback_to(c->writer);
        kg_commit_maybe_lead_locked(c);
        pthread_mutex_unlock(&c->lock);
        return KG_RESULT_ERROR;
    }
    mine = ++c->applied;
    while (c->durable < mine) {
        if (atomic_load(&c->waiting) == 0) {
            kg_commit_group_locked(c);
        } else {
            /* Someone is about to apply: let them join, and the last of
             * them commits for all. */
            pthread_cond_wait(&c->committed, &c->lock);
        }
    }
    if (mine >= c->failed_from && mine <= c->failed_to) {
        pthread_mutex_unlock(&c->lock);
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("the commit holding this change failed");
        return KG_RESULT_ERROR;
    }
    pthread_mutex_unlock(&c->lock);
    return KG_RESULT_OK;
}

kg_result kg_change_batch_begin(struct kg_committer *c, struct kg_store **store)
{
    KG_GUARD(kg_change_join(c, store));
    atomic_store(&c->batch_owner, pthread_self());
    atomic_store(&c->in_batch, true);
    return KG_RESULT_OK; /* the lock is held until kg_change_batch_end */
}

kg_result kg_change_batch_end(struct kg_committer *c, kg_result rc)
{
    atomic_store(&c->in_batch, false);
    /* From here the batch is one change like any other. */
    return kg_change_end(c, rc);
}

void kg_commit_get_stats(struct kg_committer *c, struct kg_commit_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->commits = c->commits;
    out->changes = c->applied;
    pthread_mutex_unlock(&c->lock);
}
