/*
 * kg_async_test.c - the table of pending asynchronous operations
 * (gateway/kg_async.c): who may take an entry, the three bounds, expiry,
 * connection close, and that a refused take leaves the entry in place.
 */
#include <string.h>

#include "kg_async.h"
#include "kg_result.h"
#include "kg_test.h"

#define OK(expr) CU_ASSERT_FATAL(kg_ok(expr))

static const struct kg_async_limits limits = { .max_total = 4, .max_per_conn = 3, .lifetime_ms = 1000 };
static const uint8_t payload[] = { 0x42, 0x00, 0x94, 0x07, 0, 0, 0, 1, 'u', 0, 0, 0, 0, 0, 0, 0 };

static struct kg_async_who who(const char *owner, uint64_t conn)
{
    return (struct kg_async_who){ .owner = owner, .conn_id = conn, .version_major = 1, .version_minor = 4 };
}

/* Add for `w` at time `now`; asserts it was queued, returns its value in id. */
static void add(struct kg_async *t, struct kg_async_who w, uint64_t now, uint8_t id[KG_ASYNC_ID_LEN])
{
    bool queued = false;

    OK(kg_async_add(t, &w, 0x08, payload, sizeof(payload), now, id, &queued));
    CU_ASSERT_FATAL(queued);
}

static bool refused(struct kg_async *t, struct kg_async_who w, uint64_t now)
{
    uint8_t id[KG_ASYNC_ID_LEN];
    bool queued = true;

    OK(kg_async_add(t, &w, 0x08, payload, sizeof(payload), now, id, &queued));
    return !queued;
}

static void test_take_returns_the_copy_once(void)
{
    struct kg_async t;
    struct kg_async_entry e;
    struct kg_async_who a = who("aa", 1);
    uint8_t id[KG_ASYNC_ID_LEN], other[KG_ASYNC_ID_LEN];

    OK(kg_async_init(&t, &limits));
    add(&t, a, 0, id);
    add(&t, a, 0, other);
    CU_ASSERT(memcmp(id, other, KG_ASYNC_ID_LEN) != 0);
    OK(kg_async_take(&t, &a, id, KG_ASYNC_ID_LEN, 10, &e));
    CU_ASSERT_EQUAL(e.operation, 0x08);
    CU_ASSERT_EQUAL(e.payload_len, sizeof(payload));
    CU_ASSERT(memcmp(e.payload, payload, sizeof(payload)) == 0);
    kg_async_entry_clear(&e);
    CU_ASSERT(e.payload == NULL);
    CU_ASSERT(kg_failed(kg_async_take(&t, &a, id, KG_ASYNC_ID_LEN, 10, &e)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(kg_async_count(&t, 10), 1);
    kg_async_cleanup(&t);
}

static void test_only_its_owner_and_version_take_it(void)
{
    struct kg_async t;
    struct kg_async_entry e;
    struct kg_async_who a = who("aa", 1), b = who("bb", 1), a13 = who("aa", 2), a_other_conn = who("aa", 7);
    uint8_t id[KG_ASYNC_ID_LEN], guess[KG_ASYNC_ID_LEN] = { 0 };

    a13.version_minor = 3;
    OK(kg_async_init(&t, &limits));
    add(&t, a, 0, id);
    CU_ASSERT(kg_failed(kg_async_take(&t, &b, id, KG_ASYNC_ID_LEN, 0, &e)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_async_take(&t, &a13, id, KG_ASYNC_ID_LEN, 0, &e)));
    CU_ASSERT(kg_failed(kg_async_take(&t, &a, guess, KG_ASYNC_ID_LEN, 0, &e)));
    CU_ASSERT(kg_failed(kg_async_take(&t, &a, id, KG_ASYNC_ID_LEN - 1, 0, &e)));
    /* None of the refusals removed it; the owner may take it from another connection. */
    CU_ASSERT_EQUAL(kg_async_count(&t, 0), 1);
    OK(kg_async_take(&t, &a_other_conn, id, KG_ASYNC_ID_LEN, 0, &e));
    kg_async_entry_clear(&e);
    kg_async_cleanup(&t);
}

static void test_bounds(void)
{
    struct kg_async t;
    struct kg_async_who c1 = who("aa", 1), c2 = who("aa", 2), c3 = who("bb", 3);
    uint8_t id[KG_ASYNC_ID_LEN];
    uint8_t big[KG_ASYNC_MAX_PAYLOAD + 1] = { 0 };
    bool queued = true;

    OK(kg_async_init(&t, &limits));
    for (int i = 0; i < 3; i++) {
        add(&t, c1, 0, id);
    }
    CU_ASSERT(refused(&t, c1, 0)); /* its connection's share */
    add(&t, c2, 0, id);
    CU_ASSERT(refused(&t, c3, 0)); /* the table */
    CU_ASSERT_EQUAL(kg_async_count(&t, 0), 4);
    kg_async_drop_conn(&t, 1);
    CU_ASSERT_EQUAL(kg_async_count(&t, 0), 1);
    OK(kg_async_add(&t, &c3, 0x08, big, sizeof(big), 0, id, &queued));
    CU_ASSERT_FALSE(queued); /* too long to keep */
    OK(kg_async_add(&t, &c3, 0x08, big, KG_ASYNC_MAX_PAYLOAD, 0, id, &queued));
    CU_ASSERT_TRUE(queued);
    kg_async_cleanup(&t);
}

static void test_no_owner_or_no_table_defers_nothing(void)
{
    struct kg_async t, off;
    const struct kg_async_limits none = { 0 };

    OK(kg_async_init(&t, &limits));
    CU_ASSERT(refused(&t, who("", 1), 0));
    CU_ASSERT(refused(&t, who(NULL, 1), 0));
    kg_async_cleanup(&t);
    OK(kg_async_init(&off, &none));
    CU_ASSERT(refused(&off, who("aa", 1), 0));
    kg_async_cleanup(&off);
}

static void test_expiry(void)
{
    struct kg_async t;
    struct kg_async_entry e;
    struct kg_async_who a = who("aa", 1);
    uint8_t id[KG_ASYNC_ID_LEN], late[KG_ASYNC_ID_LEN];

    OK(kg_async_init(&t, &limits));
    add(&t, a, 0, id);
    add(&t, a, 500, late);
    CU_ASSERT_EQUAL(kg_async_count(&t, 999), 2);
    CU_ASSERT(kg_failed(kg_async_take(&t, &a, id, KG_ASYNC_ID_LEN, 1000, &e)));
    CU_ASSERT_EQUAL(kg_async_count(&t, 1000), 1);
    OK(kg_async_take(&t, &a, late, KG_ASYNC_ID_LEN, 1499, &e));
    kg_async_entry_clear(&e);
    /* Expired entries free their slots for new ones. */
    for (int i = 0; i < 3; i++) {
        add(&t, a, 2000, id);
    }
    CU_ASSERT(refused(&t, a, 2999));
    kg_async_sweep(&t, 2999);
    CU_ASSERT_EQUAL(kg_async_count(&t, 2999), 3);
    kg_async_sweep(&t, 3000);
    CU_ASSERT_EQUAL(kg_async_count(&t, 0), 0); /* gone, whatever the clock says now */
    add(&t, a, 3000, id);
    kg_async_cleanup(&t);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_take_returns_the_copy_once),
        KG_TEST(test_only_its_owner_and_version_take_it),
        KG_TEST(test_bounds),
        KG_TEST(test_no_owner_or_no_table_defers_nothing),
        KG_TEST(test_expiry),
    };

    return kg_test_run("async", cases, sizeof(cases) / sizeof(cases[0]));
}
