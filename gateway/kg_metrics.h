/*
 * kg_metrics.h - the gateway's counters, and their Prometheus text form.
 *
 * The counters are process-wide relaxed atomics in static storage: the
 * request path pays one clock read and two or three uncontended atomic adds
 * per batch item, and never a lock. Every label comes from a fixed set
 * (operation names from the KMIP operation enum, result names from the
 * Result Reason enum), never from client text, so the number of series is
 * bounded whatever clients send.
 *
 * Scrapes read the counters without stopping writers: a scrape may see a
 * request in a histogram's buckets before its time is in _sum, which
 * Prometheus tolerates; _count is always the sum of the buckets.
 */
#ifndef KG_METRICS_H
#define KG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_result.h"

/* The monotonic clock in nanoseconds: the start time the *_done hooks take. */
uint64_t kg_metrics_now_ns(void);

/*
 * One batch item answered: operation code `operation` (any value; codes
 * without a KMIP name count as "unknown"), `ok` or failed with Result
 * Reason `reason` (reasons outside the known set count as "other"), started
 * at `started_ns` (kg_metrics_now_ns).
 */
void kg_metrics_request_done(uint32_t operation, bool ok, uint32_t reason, uint64_t started_ns);

/* Policy refused an item of operation `operation` (scope, operation, rate,
 * credential... whatever the rule). */
void kg_metrics_policy_denied(uint32_t operation);

/* A client connection was accepted / closed. */
void kg_metrics_connection_opened(void);
void kg_metrics_connection_closed(void);

/* A group commit (kg_commit.c), successful or not, started at `started_ns`. */
void kg_metrics_commit_done(uint64_t started_ns);

/* Figures the renderer does not own: read by the caller at scrape time. */
struct kg_metrics_gauges {
    bool has_hsm;              /* false: the kmipgw_hsm_* lines are left out */
    uint32_t hsm_sessions;     /* pool cap */
    uint32_t hsm_sessions_open;
    uint32_t hsm_sessions_idle;
    uint64_t hsm_errors;       /* kg_p11_error_count() */
};

/*
 * The Prometheus text exposition (format 0.0.4) of every counter, plus
 * `gauges`. Series of requests, durations and denials appear once they are
 * non-zero. On success the caller owns *out (free()), NUL-terminated, *len
 * bytes without the NUL. Errors: KG_ERR_NOMEM; *out is then NULL.
 */
kg_result kg_metrics_render(const struct kg_metrics_gauges *gauges, char **out, size_t *len) KG_WARN_UNUSED;

/* Zero every counter. For unit tests: not atomic with respect to writers. */
void kg_metrics_reset(void);

#endif
