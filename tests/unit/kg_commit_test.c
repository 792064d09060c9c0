/* kg_commit_test.c - group commit: grouping, isolation of failures, durability. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kg_commit.h"
#include "kg_test.h"

static char db_path[256];

static void fresh_db(void)
{
    static int n;
    snprintf(db_path, sizeof(db_path), "/tmp/kg_commit_test_%d_%d.db", (int)getpid(), n++);
    unlink(db_path);
}

static void make_object(struct kg_object *o, int i)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->uid, sizeof(o->uid), "00000000-0000-4000-8000-%012d", i);
    o->object_type = 2;
    o->state = 1;
    snprintf(o->owner_group, sizeof(o->owner_group), "g");
    o->algorithm = 3;
    o->length = 256;
    o->blob.len = 40;
    o->blob.mechanism = 0x210a;
    o->blob.mwk_generation = 1;
}

static kg_result insert_one(struct kg_committer *c, int i)
{
    struct kg_object o;
    struct kg_store *w;

    make_object(&o, i);
    KG_GUARD(kg_change_begin(c, NULL, &w));
    return kg_change_end(c, kg_store_insert_object(w, &o));
}

/* A change is visible to another connection as soon as kg_change_end says so. */
static void test_change_is_committed_on_return(void)
{
    struct kg_committer *c = NULL;
    struct kg_store *reader = NULL;
    struct kg_object o;

    fresh_db();
    CU_ASSERT_FATAL(kg_ok(kg_committer_open(db_path, &c)));
    CU_ASSERT_FATAL(kg_ok(kg_store_open(db_path, &reader)));
    CU_ASSERT(kg_ok(insert_one(c, 1)));
    CU_ASSERT(kg_ok(kg_store_get_object(reader, "00000000-0000-4000-8000-000000000001", &o)));
    kg_store_close(reader);
    kg_committer_close(c);
}

/* A failing change is rolled back alone; the next change still commits. */
static void test_failure_is_isolated(void)
{
    struct kg_committer *c = NULL;
    struct kg_store *reader = NULL;
    struct kg_object o;

    fresh_db();
    CU_ASSERT_FATAL(kg_ok(kg_committer_open(db_path, &c)));
    CU_ASSERT(kg_ok(insert_one(c, 1)));
    CU_ASSERT(kg_failed(insert_one(c, 1))); /* duplicate UID */
    CU_ASSERT(kg_ok(insert_one(c, 2)));
    CU_ASSERT_FATAL(kg_ok(kg_store_open(db_path, &reader)));
    CU_ASSERT(kg_ok(kg_store_get_object(reader, "00000000-0000-4000-8000-000000000002", &o)));
    kg_store_close(reader);
    kg_committer_close(c);
}

/* A change whose apply step fails after writing leaves nothing behind. */
static void test_partial_change_rolls_back(void)
{
    struct kg_committer *c = NULL;
    struct kg_store *w, *reader = NULL;
    struct kg_object o;

    fresh_db();
    CU_ASSERT_FATAL(kg_ok(kg_committer_open(db_path, &c)));
    make_object(&o, 7);
    CU_ASSERT_FATAL(kg_ok(kg_change_begin(c, NULL, &w)));
    CU_ASSERT(kg_ok(kg_store_insert_object(w, &o)));
    kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
    CU_ASSERT(kg_failed(kg_change_end(c, KG_RESULT_ERROR)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD); /* the caller's error survives */
    CU_ASSERT_FATAL(kg_ok(kg_store_open(db_path, &reader)));
    CU_ASSERT(kg_failed(kg_store_get_object(reader, o.uid, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(reader);
    kg_committer_close(c);
}

struct worker_arg {
    struct kg_committer *c;
    int base;
    int count;
    int failures;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;

    for (int i = 0; i < a->count; i++) {
        if (kg_failed(insert_one(a->c, a->base + i))) {
            a->failures++;
        }
    }
    return NULL;
}

/* Concurrent changes all commit, in fewer commits than changes. */
static void test_concurrent_changes_share_commits(void)
{
    enum { THREADS = 8, EACH = 100 };
    struct kg_committer *c = NULL;
    struct kg_store *reader = NULL;
    struct worker_arg args[THREADS];
    pthread_t t[THREADS];
    struct kg_commit_stats st;
    uint32_t found = 0;
    char (*uids)[KG_UID_LEN + 1] = calloc(THREADS * EACH + 1, sizeof(*uids));
    struct kg_store_locate q = { 0 };

    fresh_db();
    CU_ASSERT_FATAL(uids != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_committer_open(db_path, &c)));
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct worker_arg){ .c = c, .base = i * 1000, .count = EACH };
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(args[i].failures, 0);
    }
    kg_commit_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.changes, THREADS * EACH);
    CU_ASSERT(st.commits < st.changes);
    printf("\n    %llu changes in %llu commits\n", (unsigned long long)st.changes, (unsigned long long)st.commits);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(db_path, &reader)));
    CU_ASSERT(kg_ok(kg_store_locate(reader, &q, uids, THREADS * EACH + 1, &found)));
    CU_ASSERT_EQUAL(found, THREADS * EACH);
    kg_store_close(reader);
    kg_committer_close(c);
    free(uids);
}

/* A process killed right after kg_change_end returned keeps the change. */
static void test_durable_across_kill(void)
{
    struct kg_store *reader = NULL;
    struct kg_object o;
    int status = 0;
    pid_t pid;

    fresh_db();
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct kg_committer *c = NULL;
        if (kg_failed(kg_committer_open(db_path, &c)) || kg_failed(insert_one(c, 42))) {
            _exit(3);
        }
        /* No close, no checkpoint: as if the power went. */
        _exit(0);
    }
    waitpid(pid, &status, 0);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(db_path, &reader)));
    CU_ASSERT(kg_ok(kg_store_get_object(reader, "00000000-0000-4000-8000-000000000042", &o)));
    kg_store_close(reader);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_change_is_committed_on_return),
        KG_TEST(test_failure_is_isolated),
        KG_TEST(test_partial_change_rolls_back),
        KG_TEST(test_concurrent_changes_share_commits),
        KG_TEST(test_durable_across_kill),
    };
    return kg_test_run("commit", cases, sizeof(cases) / sizeof(cases[0]));
}
