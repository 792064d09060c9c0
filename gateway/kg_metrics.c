/*
 * kg_metrics.c - counters in static storage and their Prometheus text.
 *
 * Counters are relaxed atomics: each is a statistic on its own, ordered
 * with nothing else, so the cheapest atomic add is enough and a scrape
 * never stalls a worker. Per-thread counters would save the cache-line
 * traffic of a shared add, but at the gateway's rate (thousands, not
 * millions, of items a second) that traffic does not show, and they would
 * need registration and a walk at scrape time.
 */
#include "kg_metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kg_kmip.h"
#include "kg_policy.h"

typedef atomic_uint_fast64_t kg_counter;

/* Upper bounds of the duration buckets (Prometheus `le`, inclusive), in ns
 * and as printed; from half a millisecond (a Get on a warm pool) to one
 * second (a hung HSM is cut off by request_timeout_ms anyway). */
#define KG_METRICS_BUCKETS 11
static const uint64_t kg_metrics_bucket_ns[KG_METRICS_BUCKETS] = {
    500000u,   1000000u,   2500000u,   5000000u,   10000000u, 25000000u,
    50000000u, 100000000u, 250000000u, 500000000u, 1000000000u,
};
static const char *const kg_metrics_bucket_le[KG_METRICS_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
};

struct kg_metrics_hist {
    kg_counter buckets[KG_METRICS_BUCKETS + 1]; /* per bucket, not cumulative; the last is +Inf */
    kg_counter sum_ns;
};

/* The result label: success, a Result Reason kmipgw sends, or "other". */
static const struct {
    uint32_t reason;
    const char *label;
} kg_metrics_reasons[] = {
    { KG_REASON_NONE, "success" },
    { KG_REASON_ITEM_NOT_FOUND, "item_not_found" },
    { KG_REASON_RESPONSE_TOO_LARGE, "response_too_large" },
    { KG_REASON_AUTHENTICATION_NOT_SUCCESSFUL, "authentication_not_successful" },
    { KG_REASON_INVALID_MESSAGE, "invalid_message" },
    { KG_REASON_OPERATION_NOT_SUPPORTED, "operation_not_supported" },
    { KG_REASON_MISSING_DATA, "missing_data" },
    { KG_REASON_INVALID_FIELD, "invalid_field" },
    { KG_REASON_FEATURE_NOT_SUPPORTED, "feature_not_supported" },
    { KG_REASON_CANCELED_BY_REQUESTER, "operation_canceled_by_requester" },
    { KG_REASON_CRYPTOGRAPHIC_FAILURE, "cryptographic_failure" },
    { KG_REASON_ILLEGAL_OPERATION, "illegal_operation" },
    { KG_REASON_PERMISSION_DENIED, "permission_denied" },
    { KG_REASON_OBJECT_ARCHIVED, "object_archived" },
    { KG_REASON_INDEX_OUT_OF_BOUNDS, "index_out_of_bounds" },
    { KG_REASON_KEY_FORMAT_TYPE_NOT_SUPPORTED, "key_format_type_not_supported" },
    { KG_REASON_ATTRIBUTE_READ_ONLY, "attribute_read_only" },
    { KG_REASON_ATTRIBUTE_SINGLE_VALUED, "attribute_single_valued" },
    { KG_REASON_SENSITIVE, "sensitive" },
    { KG_REASON_MULTI_VALUED_ATTRIBUTE, "multi_valued_attribute" },
    { KG_REASON_INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, "incompatible_cryptographic_usage_mask" },
    { KG_REASON_NON_UNIQUE_NAME_ATTRIBUTE, "non_unique_name_attribute" },
    { KG_REASON_OBJECT_DESTROYED, "object_destroyed" },
    { KG_REASON_OBJECT_NOT_FOUND, "object_not_found" },
    { KG_REASON_WRONG_KEY_LIFECYCLE_STATE, "wrong_key_lifecycle_state" },
    { KG_REASON_GENERAL_FAILURE, "general_failure" },
};
#define KG_METRICS_RESULTS (sizeof(kg_metrics_reasons) / sizeof(kg_metrics_reasons[0]) + 1)
#define KG_METRICS_RESULT_OTHER (KG_METRICS_RESULTS - 1)

/* Indexed by operation code; slot 0 (no KMIP operation has code 0) holds
 * every code without a name. */
#define KG_METRICS_OPS (KG_OP_MAX + 1)

static struct {
    kg_counter requests[KG_METRICS_OPS][KG_METRICS_RESULTS];
    struct kg_metrics_hist duration[KG_METRICS_OPS];
    kg_counter denials[KG_METRICS_OPS];
    kg_counter connections_opened;
    kg_counter connections_closed;
    struct kg_metrics_hist commit;
} kg_metrics;

static void kg_metrics_add(kg_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t kg_metrics_load(kg_counter *c)
{
    return (uint64_t)atomic_load_explicit(c, memory_order_relaxed);
}

uint64_t kg_metrics_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t kg_metrics_op_index(uint32_t operation)
{
    return kg_policy_operation_name(operation) != NULL ? operation : 0;
}

static const char *kg_metrics_op_label(uint32_t index)
{
    const char *name = index != 0 ? kg_policy_operation_name(index) : NULL;

    return name != NULL ? name : "unknown";
}

static size_t kg_metrics_result_index(bool ok, uint32_t reason)
{
    if (ok) {
        return 0;
    }
    /* A failure that claims no reason is not a success: "other". */
    for (size_t i = 1; i < KG_METRICS_RESULTS - 1; i++) {
        if (kg_metrics_reasons[i].reason == reason) {
            return i;
        }
    }
    return KG_METRICS_RESULT_OTHER;
}

static void kg_metrics_observe(struct kg_metrics_hist *h, uint64_t started_ns)
{
    uint64_t now = kg_metrics_now_ns();
    uint64_t took = now > started_ns ? now - started_ns : 0;
    size_t b = 0;

    while (b < KG_METRICS_BUCKETS && took > kg_metrics_bucket_ns[b]) {
        b++;
    }
    kg_metrics_add(&h->buckets[b], 1);
    kg_metrics_add(&h->sum_ns, took);
}

void kg_metrics_request_done(uint32_t operation, bool ok, uint32_t reason, uint64_t started_ns)
{
    uint32_t op = kg_metrics_op_index(operation);

    kg_metrics_add(&kg_metrics.requests[op][kg_metrics_result_index(ok, reason)], 1);
    kg_metrics_observe(&kg_metrics.duration[op], started_ns);
}

void kg_metrics_policy_denied(uint32_t operation)
{
    kg_metrics_add(&kg_metrics.denials[kg_metrics_op_index(operation)], 1);
}

void kg_metrics_connection_opened(void)
{
    kg_metrics_add(&kg_metrics.connections_opened, 1);
}

void kg_metrics_connection_closed(void)
{
    kg_metrics_add(&kg_metrics.connections_closed, 1);
}

void kg_metrics_commit_done(uint64_t started_ns)
{
    kg_metrics_observe(&kg_metrics.commit, started_ns);
}

void kg_metrics_reset(void)
{
    memset(&kg_metrics, 0, sizeof(kg_metrics));
}

/* ---- text exposition ---------------------------------------------------- */

static void kg_metrics_header(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; `label` is `name="value"`, or "" for none. */
static void kg_metrics_print_hist(FILE *f, const char *name, const char *label, struct kg_metrics_hist *h)
{
    const bool labelled = label[0] != '\0';
    uint64_t cumulative = 0, sum;

    for (size_t b = 0; b <= KG_METRICS_BUCKETS; b++) {
        cumulative += kg_metrics_load(&h->buckets[b]);
        fprintf(f, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, label, labelled ? "," : "",
                b < KG_METRICS_BUCKETS ? kg_metrics_bucket_le[b] : "+Inf", cumulative);
    }
    sum = kg_metrics_load(&h->sum_ns);
    /* Integer arithmetic: exact, and no locale can turn the point into a comma. */
    fprintf(f, "%s_sum%s%s%s %" PRIu64 ".%09" PRIu64 "\n", name, labelled ? "{" : "", label, labelled ? "}" : "",
            sum / 1000000000u, sum % 1000000000u);
    /* _count is the +Inf bucket, so the two always agree within a scrape. */
    fprintf(f, "%s_count%s%s%s %" PRIu64 "\n", name, labelled ? "{" : "", label, labelled ? "}" : "", cumulative);
}

static uint64_t kg_metrics_hist_total(struct kg_metrics_hist *h)
{
    uint64_t n = 0;

    for (size_t b = 0; b <= KG_METRICS_BUCKETS; b++) {
        n += kg_metrics_load(&h->buckets[b]);
    }
    return n;
}

static void kg_metrics_print_requests(FILE *f)
{
    char label[80];

    kg_metrics_header(f, "kmipgw_requests_total", "counter",
                      "KMIP batch items answered, by operation and result (success or the Result Reason).");
    for (uint32_t op = 0; op < KG_METRICS_OPS; op++) {
        for (size_t r = 0; r < KG_METRICS_RESULTS; r++) {
            uint64_t n = kg_metrics_load(&kg_metrics.requests[op][r]);

            if (n != 0) {
                fprintf(f, "kmipgw_requests_total{operation=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                        kg_metrics_op_label(op),
                        r < KG_METRICS_RESULT_OTHER ? kg_metrics_reasons[r].label : "other", n);
            }
        }
    }
    kg_metrics_header(f, "kmipgw_request_duration_seconds", "histogram",
                      "Time from decoding a batch item to its audit record, by operation.");
    for (uint32_t op = 0; op < KG_METRICS_OPS; op++) {
        if (kg_metrics_hist_total(&kg_metrics.duration[op]) != 0) {
            snprintf(label, sizeof(label), "operation=\"%s\"", kg_metrics_op_label(op));
            kg_metrics_print_hist(f, "kmipgw_request_duration_seconds", label, &kg_metrics.duration[op]);
        }
    }
    kg_metrics_header(f, "kmipgw_policy_denials_total", "counter", "Batch items the policy refused, by operation.");
    for (uint32_t op = 0; op < KG_METRICS_OPS; op++) {
        uint64_t n = kg_metrics_load(&kg_metrics.denials[op]);

        if (n != 0) {
            fprintf(f, "kmipgw_policy_denials_total{operation=\"%s\"} %" PRIu64 "\n", kg_metrics_op_label(op), n);
        }
    }
}

static void kg_metrics_print_gauges(FILE *f, const struct kg_metrics_gauges *g)
{
    uint64_t opened = kg_metrics_load(&kg_metrics.connections_opened);
    uint64_t closed = kg_metrics_load(&kg_metrics.connections_closed);

    kg_metrics_header(f, "kmipgw_connections_open", "gauge", "Client connections open now.");
    /* Closed is read second, so it can run ahead of opened only by a
     * connection that was opened after the first read: never print < 0. */
    fprintf(f, "kmipgw_connections_open %" PRIu64 "\n", opened > closed ? opened - closed : 0);
    kg_metrics_header(f, "kmipgw_connections_total", "counter", "Client connections accepted.");
    fprintf(f, "kmipgw_connections_total %" PRIu64 "\n", opened);
    if (g->has_hsm) {
        uint32_t in_use = g->hsm_sessions_open > g->hsm_sessions_idle ? g->hsm_sessions_open - g->hsm_sessions_idle : 0;

        kg_metrics_header(f, "kmipgw_hsm_sessions", "gauge", "PKCS#11 sessions the pool may open.");
        fprintf(f, "kmipgw_hsm_sessions %" PRIu32 "\n", g->hsm_sessions);
        kg_metrics_header(f, "kmipgw_hsm_sessions_open", "gauge", "PKCS#11 sessions open now.");
        fprintf(f, "kmipgw_hsm_sessions_open %" PRIu32 "\n", g->hsm_sessions_open);
        kg_metrics_header(f, "kmipgw_hsm_sessions_in_use", "gauge", "PKCS#11 sessions checked out now.");
        fprintf(f, "kmipgw_hsm_sessions_in_use %" PRIu32 "\n", in_use);
        kg_metrics_header(f, "kmipgw_hsm_errors_total", "counter", "PKCS#11 calls that returned an error CKR.");
        fprintf(f, "kmipgw_hsm_errors_total %" PRIu64 "\n", g->hsm_errors);
    }
    kg_metrics_header(f, "kmipgw_store_commit_duration_seconds", "histogram",
                      "Time of one group commit of the store, fsync included.");
    kg_metrics_print_hist(f, "kmipgw_store_commit_duration_seconds", "", &kg_metrics.commit);
}

kg_result kg_metrics_render(const struct kg_metrics_gauges *gauges, char **out, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f;
    bool failed;

    *out = NULL;
    *len = 0;
    /* glibc's growing memory stream: fprintf does the bookkeeping. */
    f = open_memstream(&text, &n);
    KG_ENSURE(f != NULL, KG_ERR_NOMEM);
    kg_metrics_print_requests(f);
    kg_metrics_print_gauges(f, gauges);
    failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed) {
        free(text);
        KG_BAIL(KG_ERR_NOMEM);
    }
    *out = text;
    *len = n;
    return KG_RESULT_OK;
}
