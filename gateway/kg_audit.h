/*
 * kg_audit.h - one record per batch item: time, identity, operation, UID,
 * policy decision, result. Never key bytes, never a password.
 *
 * Records are JSON lines appended with one write(2) each to the audit file
 * (O_APPEND, so concurrent workers never interleave within a line), and
 * echoed to stderr as the structured log.
 */
#ifndef KG_AUDIT_H
#define KG_AUDIT_H

#include <stdint.h>

#include "kg_policy.h"
#include "kg_result.h"

struct kg_audit;

struct kg_audit_record {
    int64_t time;
    const struct kg_identity *identity;
    const char *group;     /* NULL when none matched */
    const char *operation; /* specification name or "unknown(0x..)" */
    const char *uid;       /* "" when none */
    const char *decision;  /* kg_policy_verdict_text */
    uint32_t status;       /* Result Status */
    uint32_t reason;       /* Result Reason, 0 on success */
    const char *note;      /* static text or NULL */
};

/* Open the audit log at `path` (NULL: stderr only). Caller owns *out. */
kg_result kg_audit_open(const char *path, struct kg_audit **out) KG_WARN_UNUSED;
void kg_audit_close(struct kg_audit *audit);

/* Append one record. Failures are reported on stderr, never to the client. */
void kg_audit_write(struct kg_audit *audit, const struct kg_audit_record *rec);

/* Structured log line to stderr: level and a message (no secrets). */
void kg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
