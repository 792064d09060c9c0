/*
 * kg_metrics_test.c - the counters and their Prometheus text.
 *
 * Durations are recorded with a start time in the past (now - N ns), so the
 * bucket a request lands in is known to within the few microseconds the
 * call itself takes: every boundary test keeps that far from the edge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_kmip.h"
#include "kg_metrics.h"
#include "kg_test.h"

static const struct kg_metrics_gauges no_hsm = { .has_hsm = false };

/* Render with `g`; the caller frees. */
static char *render(const struct kg_metrics_gauges *g)
{
    char *text = NULL;
    size_t len = 0;

    CU_ASSERT_FATAL(kg_ok(kg_metrics_render(g, &text, &len)));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_EQUAL(strlen(text), len);
    return text;
}

/* Does `text` hold `line` as a whole line? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = strstr(text, line); p != NULL; p = strstr(p + 1, line)) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return 1;
        }
    }
    fprintf(stderr, "\n  missing line '%s'", line);
    return 0;
}

static uint64_t ago(uint64_t ns)
{
    return kg_metrics_now_ns() - ns;
}

static void test_empty(void)
{
    char *text;

    kg_metrics_reset();
    text = render(&no_hsm);
    /* Every family is declared, even with no series yet. */
    CU_ASSERT(has_line(text, "# TYPE kmipgw_requests_total counter"));
    CU_ASSERT(has_line(text, "# TYPE kmipgw_request_duration_seconds histogram"));
    CU_ASSERT(has_line(text, "# TYPE kmipgw_policy_denials_total counter"));
    CU_ASSERT(has_line(text, "kmipgw_connections_open 0"));
    CU_ASSERT(has_line(text, "kmipgw_connections_total 0"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_count 0"));
    /* No request series before a request; no HSM lines without an HSM. */
    CU_ASSERT_PTR_NULL(strstr(text, "kmipgw_requests_total{"));
    CU_ASSERT_PTR_NULL(strstr(text, "kmipgw_request_duration_seconds_bucket"));
    CU_ASSERT_PTR_NULL(strstr(text, "kmipgw_hsm_"));
    /* The exposition format ends every line with a newline. */
    CU_ASSERT_EQUAL(text[strlen(text) - 1], '\n');
    free(text);
}

static void test_requests_by_operation_and_result(void)
{
    char *text;

    kg_metrics_reset();
    kg_metrics_request_done(KG_OP_GET, true, KG_REASON_NONE, ago(0));
    kg_metrics_request_done(KG_OP_GET, true, KG_REASON_NONE, ago(0));
    kg_metrics_request_done(KG_OP_GET, false, KG_REASON_ITEM_NOT_FOUND, ago(0));
    kg_metrics_request_done(KG_OP_CREATE_KEY_PAIR, false, KG_REASON_PERMISSION_DENIED, ago(0));
    /* `ok` decides: a reason given with a success is not looked at. */
    kg_metrics_request_done(KG_OP_CREATE, true, KG_REASON_ITEM_NOT_FOUND, ago(0));
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"Get\",result=\"success\"} 2"));
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"Get\",result=\"item_not_found\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"Create Key Pair\",result=\"permission_denied\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"Create\",result=\"success\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_count{operation=\"Get\"} 3"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_count{operation=\"Create Key Pair\"} 1"));
    /* Nothing for operations that saw no request. */
    CU_ASSERT_PTR_NULL(strstr(text, "operation=\"Locate\""));
    free(text);
}

/* Labels come from fixed sets: whatever code a client sends, no new label value appears. */
static void test_unbounded_input_lands_in_fixed_labels(void)
{
    char *text;

    kg_metrics_reset();
    kg_metrics_request_done(0, false, KG_REASON_OPERATION_NOT_SUPPORTED, ago(0));
    kg_metrics_request_done(0x30, false, KG_REASON_OPERATION_NOT_SUPPORTED, ago(0)); /* in range, no name */
    kg_metrics_request_done(KG_OP_MAX + 1, false, KG_REASON_OPERATION_NOT_SUPPORTED, ago(0));
    kg_metrics_request_done(0xFFFFFFFFu, false, 0x77, ago(0)); /* unknown reason */
    kg_metrics_request_done(KG_OP_GET, false, KG_REASON_NONE, ago(0)); /* failed without a reason */
    kg_metrics_policy_denied(0xFFFFFFFFu);
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"unknown\",result=\"operation_not_supported\"} 3"));
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"unknown\",result=\"other\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_requests_total{operation=\"Get\",result=\"other\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_count{operation=\"unknown\"} 4"));
    CU_ASSERT(has_line(text, "kmipgw_policy_denials_total{operation=\"unknown\"} 1"));
    CU_ASSERT_PTR_NULL(strstr(text, "result=\"success\""));
    free(text);
}

static void test_histogram_buckets(void)
{
    char *text;

    kg_metrics_reset();
    kg_metrics_request_done(KG_OP_LOCATE, true, 0, ago(100000));     /* 0.1 ms: first bucket */
    kg_metrics_request_done(KG_OP_LOCATE, true, 0, ago(700000));     /* 0.7 ms: le 0.001 */
    kg_metrics_request_done(KG_OP_LOCATE, true, 0, ago(30000000));   /* 30 ms: le 0.05 */
    kg_metrics_request_done(KG_OP_LOCATE, true, 0, ago(3000000000)); /* 3 s: only +Inf */
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"0.0005\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"0.001\"} 2"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"0.025\"} 2"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"0.05\"} 3"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"1\"} 3"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_bucket{operation=\"Locate\",le=\"+Inf\"} 4"));
    CU_ASSERT(has_line(text, "kmipgw_request_duration_seconds_count{operation=\"Locate\"} 4"));
    /* The sum is at least the 3.0308 s recorded, and the calls took far less than a second more. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "kmipgw_request_duration_seconds_sum{operation=\"Locate\"} 3.03"));
    free(text);
}

/* A start time in the future (a clock read on another CPU) counts as zero, not as 584 years. */
static void test_clock_skew(void)
{
    char *text;

    kg_metrics_reset();
    kg_metrics_commit_done(kg_metrics_now_ns() + 1000000000u);
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_bucket{le=\"0.0005\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_sum 0.000000000"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_count 1"));
    free(text);
}

static void test_denials_connections_commits(void)
{
    char *text;

    kg_metrics_reset();
    kg_metrics_policy_denied(KG_OP_GET);
    kg_metrics_policy_denied(KG_OP_GET);
    kg_metrics_policy_denied(KG_OP_DESTROY);
    for (int i = 0; i < 5; i++) {
        kg_metrics_connection_opened();
    }
    kg_metrics_connection_closed();
    kg_metrics_connection_closed();
    kg_metrics_commit_done(ago(2000000)); /* 2 ms */
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_policy_denials_total{operation=\"Get\"} 2"));
    CU_ASSERT(has_line(text, "kmipgw_policy_denials_total{operation=\"Destroy\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_connections_open 3"));
    CU_ASSERT(has_line(text, "kmipgw_connections_total 5"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_bucket{le=\"0.001\"} 0"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_bucket{le=\"0.0025\"} 1"));
    CU_ASSERT(has_line(text, "kmipgw_store_commit_duration_seconds_count 1"));
    free(text);

    /* More closes than opens (a scrape between the two loads) never prints a negative gauge. */
    kg_metrics_reset();
    kg_metrics_connection_closed();
    text = render(&no_hsm);
    CU_ASSERT(has_line(text, "kmipgw_connections_open 0"));
    free(text);
}

static void test_hsm_gauges(void)
{
    const struct kg_metrics_gauges g = {
        .has_hsm = true, .hsm_sessions = 8, .hsm_sessions_open = 5, .hsm_sessions_idle = 2, .hsm_errors = 7,
    };
    const struct kg_metrics_gauges odd = { .has_hsm = true, .hsm_sessions_open = 1, .hsm_sessions_idle = 3 };
    char *text;

    kg_metrics_reset();
    text = render(&g);
    CU_ASSERT(has_line(text, "# TYPE kmipgw_hsm_sessions gauge"));
    CU_ASSERT(has_line(text, "kmipgw_hsm_sessions 8"));
    CU_ASSERT(has_line(text, "kmipgw_hsm_sessions_open 5"));
    CU_ASSERT(has_line(text, "kmipgw_hsm_sessions_in_use 3"));
    CU_ASSERT(has_line(text, "# TYPE kmipgw_hsm_errors_total counter"));
    CU_ASSERT(has_line(text, "kmipgw_hsm_errors_total 7"));
    free(text);
    /* Figures read apart may disagree: in use is never negative. */
    text = render(&odd);
    CU_ASSERT(has_line(text, "kmipgw_hsm_sessions_in_use 0"));
    free(text);
}

/* Every non-comment line is `name{labels} value` or `name value`, with a HELP and TYPE before its family. */
static void test_format(void)
{
    char *text, *save = NULL, *line;
    char family[128] = "";

    kg_metrics_reset();
    kg_metrics_request_done(KG_OP_GET, true, 0, ago(0));
    kg_metrics_policy_denied(KG_OP_GET);
    text = render(&no_hsm);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            CU_ASSERT(sscanf(line + 7, "%127s", family) == 1);
            continue;
        }
        if (line[0] == '#') {
            CU_ASSERT(strncmp(line, "# HELP ", 7) == 0);
            continue;
        }
        CU_ASSERT(family[0] != '\0' && strncmp(line, family, strlen(family)) == 0);
        CU_ASSERT(strchr("0123456789", line[strlen(line) - 1]) != NULL);
    }
    free(text);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_empty),
        KG_TEST(test_requests_by_operation_and_result),
        KG_TEST(test_unbounded_input_lands_in_fixed_labels),
        KG_TEST(test_histogram_buckets),
        KG_TEST(test_clock_skew),
        KG_TEST(test_denials_connections_commits),
        KG_TEST(test_hsm_gauges),
        KG_TEST(test_format),
    };

    return kg_test_run("metrics", cases, sizeof(cases) / sizeof(cases[0]));
}
