/*
 * kg_cli_rotate.c - kmipgw rotate-master: master wrapping key rotation,
 * online and resumable.
 *
 * 1. Target generation. If no stored blob is under a generation older than
 *    the token's newest, this is a new rotation: create generation max+1.
 *    Otherwise a previous run stopped midway: resume towards the newest
 *    generation instead of starting another one (creating one on every
 *    resume would leave a trail of half-used generations).
 * 2. Passes over the store in UID order, in batches: each blob is re-wrapped
 *    inside the HSM (kg_p11_rewrap) and then the batch is written in one
 *    durable transaction with a compare-and-set per object, so a Destroy or
 *    another writer in between keeps its change and the old blob stays
 *    readable (its generation is still on the token) until replaced. The
 *    HSM work happens before BEGIN: the gateway's writers never wait on it.
 * 3. A running gateway keeps wrapping new keys under the old generation
 *    until it notices the new one (at most KG_P11_MWK_RECHECK_MS, plus a
 *    request in flight), so a later pass after a pause catches those.
 * Killed at any point, nothing is lost: a blob is replaced only by a commit
 * of its re-wrapped form, and every generation stays on the token. Run it
 * again and it finishes.
 *
 * --retire-old destroys older generations, each only when no stored blob
 * uses it, after a pause and one more pass. It is not the default: the
 * destroy cannot be undone, store backups taken before the rotation still
 * need the old generation, and a gateway of an older version (or an HSM
 * replica not yet in sync) may still write blobs under it.
 *
 * Audit: the running gateway holds the audit log's lock, so the start and
 * end records go there only when it can be opened for a moment (gateway
 * stopped); they always go to stderr as structured log lines.
 */
#include "kg_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "kg_audit.h"
#include "kg_config.h"
#include "kg_ops.h"
#include "kg_p11.h"
#include "kg_db.h"
#include "kg_store.h"

#define KG_ROTATE_DEFAULT_BATCH 100u
#define KG_ROTATE_MAX_BATCH 1000u
/* Passes before giving up on blobs that keep appearing under an old
 * generation (a gateway that never learns of the new one). */
#define KG_ROTATE_MAX_PASSES 30u
/* Pause between passes: longer than a gateway needs to notice a new
 * generation (KG_P11_MWK_RECHECK_MS) plus a request in flight. */
#define KG_ROTATE_SETTLE_MS 2000u

struct kg_rotate {
    struct kg_config *cfg;
    struct kg_p11 *p11;
    struct kg_store *store;
    uint32_t target;        /* generation every blob moves to */
    uint32_t batch;         /* objects per transaction */
    long stop_after;        /* test hook: exit hard after this many batches (0: never) */
    uint64_t batches;       /* committed so far, all passes */
    uint64_t rewrapped;     /* replaced by us */
    uint64_t changed;       /* changed by someone else between read and write */
    uint64_t failed;        /* could not be re-wrapped (damaged, unsupported) */
};

struct kg_rotate_pass {
    uint64_t rewrapped;
    uint64_t changed;
    uint64_t failed;
};

static void kg_rotate_error(const char *what)
{
    const char *text = kg_error_text();

    fprintf(stderr, "kmipgw rotate-master: %s: %s\n", what, text[0] ? text : kg_error_name(kg_errno()));
}

static void kg_rotate_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/*
 * Write one rotation event to the audit log if it can be opened for a
 * moment (not while a gateway holds it), else only to stderr. Never holds
 * the log open: a gateway starting meanwhile must get its lock.
 */
static void kg_rotate_audit(const struct kg_rotate *r, const char *event, const char *detail)
{
    struct kg_audit *audit = NULL;

    kg_log("info", "rotate-master %s: %s", event, detail);
    if (r->cfg->audit_path == NULL) {
        return;
    }
    if (kg_failed(kg_audit_open(r->cfg->audit_path, &audit))) {
        kg_log("info", "rotate-master: audit log %s in use (gateway running?): event on stderr only: %s",
               r->cfg->audit_path, kg_error_text());
        kg_error_clear();
        return;
    }
    kg_audit_event(audit, event, detail);
    kg_audit_close(audit);
}

/* One rotate-master at a time per store: a lock file next to it. The fd
 * stays open (and locked) until the process exits. */
static int kg_rotate_lock(const char *store_path)
{
    char path[4096];
    int fd;
    int n = snprintf(path, sizeof(path), "%s.rotate-lock", store_path);

    if (n < 0 || (size_t)n >= sizeof(path)) {
        fprintf(stderr, "kmipgw rotate-master: store path too long\n");
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "kmipgw rotate-master: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "kmipgw rotate-master: another rotate-master holds %s\n", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Per-key failures: the key is left as it was and reported; anything else
 * (HSM down, store broken) stops the run. */
static bool kg_rotate_key_error(int err)
{
    return err == KG_ERR_HSM_UNWRAP || err == KG_ERR_UNSUPPORTED_ALGORITHM || err == KG_ERR_WRONG_STATE ||
           err == KG_ERR_INVALID_FIELD || err == KG_ERR_HSM_BLOB_TAMPERED;
}

/*
 * One batch: re-wrap objs[0..n) into fresh[] inside the HSM, then replace
 * them in one transaction. ok[i] says whether fresh[i] is to be written.
 */
static kg_result kg_rotate_batch(struct kg_rotate *r, struct kg_object *objs, struct kg_p11_blob *fresh, bool *ok,
                                 uint32_t n, struct kg_rotate_pass *pass)
{
    uint64_t replaced_here = 0;
    uint64_t changed_here = 0;
    kg_result rc = KG_RESULT_OK;
    bool in_tx = false;

    for (uint32_t i = 0; i < n; i++) {
        struct kg_p11_key_ref ref;
        struct kg_p11_binding fresh_bind;

        ok[i] = false;
        /* The old blob's tag is checked before the unwrap (a swapped or
         * altered blob is never re-wrapped into a valid-looking one), and
         * the new blob is sealed into objs[i].blob_mac, which the old tag
         * no longer needs: the compare-and-set below matches on the blob. */
        kg_op_binding(&objs[i], &fresh_bind);
        fresh_bind.blob = &fresh[i];
        if (kg_failed(kg_op_key_ref(&objs[i], &ref)) || kg_failed(kg_p11_rewrap_ref(r->p11, &ref, &fresh[i])) ||
            kg_failed(kg_p11_blob_seal(r->p11, &fresh_bind, objs[i].blob_mac))) {
            if (!kg_rotate_key_error(kg_errno())) {
                kg_rotate_error(objs[i].uid);
                return KG_RESULT_ERROR;
            }
            fprintf(stderr, "kmipgw rotate-master: %s: not re-wrapped: %s\n", objs[i].uid, kg_error_text());
            kg_error_clear();
            pass->failed++;
            continue;
        }
        if (fresh[i].mwk_generation != r->target) {
            /* Someone made an even newer generation meanwhile: stop, run again. */
            kg_error_set(KG_ERR_HSM, __FILE__, __LINE__);
            kg_error_detail("the current MWK generation changed from %u to %u during the rotation; run again",
                            r->target, fresh[i].mwk_generation);
            return KG_RESULT_ERROR;
        }
        ok[i] = true;
    }
    KG_GOTO_GUARD(rc, kg_store_begin(r->store));
    /* On PostgreSQL the lock keeping other rotate-master runs out lives in
     * the server session: after a reconnect it is gone, so stop. */
    in_tx = true;
    KG_GOTO_GUARD(rc, kg_store_check_rotation_lock(r->store));
    for (uint32_t i = 0; i < n; i++) {
        bool replaced = false;

        if (!ok[i]) {
            continue;
        }
        KG_GOTO_GUARD(rc, kg_store_replace_sealed_blob(r->store, objs[i].uid, &objs[i].blob, &fresh[i],
                                                       objs[i].blob_mac, &replaced));
        if (replaced) {
            replaced_here++;
        } else {
            changed_here++;
        }
    }
    KG_GOTO_GUARD(rc, kg_store_commit(r->store));
    in_tx = false;
    pass->rewrapped += replaced_here;
    pass->changed += changed_here;
out:
    if (in_tx) {
        kg_store_rollback(r->store);
    }
    return rc;
}

/* One pass over every object below the target generation, in UID order. */
static kg_result kg_rotate_pass(struct kg_rotate *r, struct kg_object *objs, struct kg_p11_blob *fresh, bool *ok,
                                struct kg_rotate_pass *pass)
{
    char after[KG_UID_LEN + 1] = "";
    uint32_t n = 0;

    memset(pass, 0, sizeof(*pass));
    for (;;) {
        KG_GUARD(kg_store_list_below_generation(r->store, r->target, after, objs, r->batch, &n));
        if (n == 0) {
            return KG_RESULT_OK;
        }
        KG_GUARD(kg_rotate_batch(r, objs, fresh, ok, n, pass));
        memcpy(after, objs[n - 1].uid, sizeof(after));
        r->batches++;
        printf("rotate-master: batch %" PRIu64 ": %" PRIu64 " re-wrapped, %" PRIu64 " changed meanwhile, %" PRIu64
               " failed (this pass)\n",
               r->batches, pass->rewrapped, pass->changed, pass->failed);
        fflush(stdout);
        if (r->stop_after > 0 && r->batches >= (uint64_t)r->stop_after) {
            /* Test hook (KG_ROTATE_TEST_STOP_AFTER): die like a crash, with
             * no cleanup, right after a commit. */
            fprintf(stderr, "kmipgw rotate-master: KG_ROTATE_TEST_STOP_AFTER reached, exiting hard\n");
            _exit(3);
        }
    }
}

/* Passes until no blob is left below the target, or only ones that cannot
 * be re-wrapped are. *left gets what remains. */
static kg_result kg_rotate_all(struct kg_rotate *r, bool settle_first, uint64_t *left)
{
    struct kg_object *objs = calloc(r->batch, sizeof(*objs));
    struct kg_p11_blob *fresh = calloc(r->batch, sizeof(*fresh));
    bool *ok = calloc(r->batch, sizeof(*ok));
    struct kg_rotate_pass pass;
    kg_result rc = KG_RESULT_OK;

    *left = 0;
    KG_GOTO_ENSURE(rc, objs != NULL && fresh != NULL && ok != NULL, KG_ERR_NOMEM);
    if (settle_first) {
        kg_rotate_sleep_ms(KG_ROTATE_SETTLE_MS);
    }
    for (uint32_t i = 0; i < KG_ROTATE_MAX_PASSES; i++) {
        KG_GOTO_GUARD(rc, kg_rotate_pass(r, objs, fresh, ok, &pass));
        r->rewrapped += pass.rewrapped;
        r->changed += pass.changed;
        r->failed = pass.failed; /* the same keys fail again on every pass */
        KG_GOTO_GUARD(rc, kg_store_count_wrapped(r->store, 1, r->target - 1, left));
        if (*left == 0 || (pass.rewrapped == 0 && pass.changed == 0)) {
            goto out;
        }
        /* Blobs written under the old generation by a gateway that had not
         * yet seen the new one: give it time to notice, then go again. */
        kg_rotate_sleep_ms(KG_ROTATE_SETTLE_MS);
    }
out:
    free(objs);
    free(fresh);
    free(ok);
    return rc;
}

/* --retire-old: destroy every generation below the target no blob uses.
 * Returns the number refused (still in use). */
static kg_result kg_rotate_retire(struct kg_rotate *r, unsigned *refused)
{
    uint32_t gens[64];
    size_t n = 0;

    *refused = 0;
    KG_GUARD(kg_p11_mwk_list(r->p11, gens, sizeof(gens) / sizeof(gens[0]), &n));
    for (size_t i = 0; i < n && i < sizeof(gens) / sizeof(gens[0]); i++) {
        uint64_t users = 0;
        char detail[96];

        if (gens[i] >= r->target) {
            continue;
        }
        KG_GUARD(kg_store_count_wrapped(r->store, gens[i], gens[i], &users));
        if (users > 0) {
            printf("rotate-master: not retiring MWK generation %u: %" PRIu64 " stored blob%s still use%s it\n",
                   gens[i], users, users == 1 ? "" : "s", users == 1 ? "s" : "");
            (*refused)++;
            continue;
        }
        KG_GUARD(kg_p11_mwk_retire(r->p11, gens[i]));
        printf("rotate-master: retired MWK generation %u\n", gens[i]);
        snprintf(detail, sizeof(detail), "generation %u destroyed on the token", gens[i]);
        kg_rotate_audit(r, "rotate-master-retire", detail);
    }
    return KG_RESULT_OK;
}

static int kg_rotate_usage(void)
{
    fputs("usage: kmipgw rotate-master --config FILE [--batch N] [--retire-old]\n", stderr);
    return 2;
}

int kg_cli_rotate_master(int argc, char **argv)
{
    struct kg_rotate r;
    const char *config_path = NULL;
    const char *stop = getenv("KG_ROTATE_TEST_STOP_AFTER");
    bool retire = false;
    uint64_t below = 0;
    uint64_t left = 0;
    unsigned refused = 0;
    char detail[256];
    int lock_fd = -1;
    int status = 1;

    memset(&r, 0, sizeof(r));
    r.batch = KG_ROTATE_DEFAULT_BATCH;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            char *end = NULL;
            unsigned long v = strtoul(argv[++i], &end, 10);

            if (end == argv[i] || *end != '\0' || v == 0 || v > KG_ROTATE_MAX_BATCH) {
                fprintf(stderr, "kmipgw rotate-master: --batch must be 1 to %u\n", KG_ROTATE_MAX_BATCH);
                return 2;
            }
            r.batch = (uint32_t)v;
        } else if (strcmp(argv[i], "--retire-old") == 0) {
            retire = true;
        } else {
            return kg_rotate_usage();
        }
    }
    if (config_path == NULL) {
        return kg_rotate_usage();
    }
    if (stop != NULL) {
        r.stop_after = strtol(stop, NULL, 10);
    }
    if (kg_cli_open_hsm(config_path, true, &r.cfg, &r.p11) != 0) {
        goto out;
    }
    if (kg_failed(kg_store_open(r.cfg->store_path, &r.store))) {
        kg_rotate_error("store");
        goto out;
    }
    if (kg_db_location_is_pg(r.cfg->store_path)) {
        bool got = false;

        if (kg_failed(kg_store_try_rotation_lock(r.store, &got))) {
            kg_rotate_error("store");
            goto out;
        }
        if (!got) {
            fprintf(stderr, "kmipgw rotate-master: another rotate-master holds the PostgreSQL store's lock\n");
            goto out;
        }
    } else {
        lock_fd = kg_rotate_lock(r.cfg->store_path);
        if (lock_fd < 0) {
            goto out;
        }
    }

    r.target = kg_p11_mwk_generation(r.p11);
    if (kg_failed(kg_store_count_wrapped(r.store, 1, r.target - 1, &below))) {
        kg_rotate_error("store");
        goto out;
    }
    if (below == 0) {
        if (kg_failed(kg_p11_mwk_add_generation(r.p11, &r.target))) {
            kg_rotate_error("creating a new MWK generation");
            goto out;
        }
        printf("rotate-master: created MWK generation %u\n", r.target);
    } else {
        printf("rotate-master: resuming: %" PRIu64 " blobs still below MWK generation %u\n", below, r.target);
    }
    fflush(stdout);
    snprintf(detail, sizeof(detail), "to generation %u, %s, batch %u", r.target, below == 0 ? "new" : "resumed",
             r.batch);
    kg_rotate_audit(&r, "rotate-master-start", detail);

    if (kg_failed(kg_rotate_all(&r, false, &left)) ||
        (retire && left == 0 && kg_failed(kg_rotate_all(&r, true, &left)))) {
        kg_rotate_error("re-wrapping");
        snprintf(detail, sizeof(detail), "to generation %u stopped: %" PRIu64 " re-wrapped; run again", r.target,
                 r.rewrapped);
        kg_rotate_audit(&r, "rotate-master-end", detail);
        goto out;
    }
    printf("rotate-master: done: %" PRIu64 " re-wrapped, %" PRIu64 " changed meanwhile, %" PRIu64
           " failed; %" PRIu64 " blobs left below generation %u\n",
           r.rewrapped, r.changed, r.failed, left, r.target);
    snprintf(detail, sizeof(detail),
             "to generation %u: %" PRIu64 " re-wrapped, %" PRIu64 " changed meanwhile, %" PRIu64 " failed, %" PRIu64
             " left",
             r.target, r.rewrapped, r.changed, r.failed, left);
    kg_rotate_audit(&r, "rotate-master-end", detail);
    status = left == 0 ? 0 : 1;
    if (retire) {
        if (kg_failed(kg_rotate_retire(&r, &refused))) {
            kg_rotate_error("retiring old generations");
            status = 1;
        } else if (refused > 0) {
            status = 1;
        }
    }
out:
    fflush(stdout);
    if (lock_fd >= 0) {
        close(lock_fd);
    }
    kg_store_close(r.store);
    kg_p11_close(r.p11);
    kg_config_free(r.cfg);
    return status;
}
