/*
 * kg_keys_audit.h - when was each key last used? Read from audit logs.
 *
 * The store does not record use: a timestamp written on every Get would be
 * a durable write on the hot path (kg_store.h, durability rule). The audit
 * log already has one record per request (kg_audit.h), so `kmipgw keys
 * report` reads it back instead, from every file the operator names (each
 * gateway of a cluster has its own log, and rotated files are separate
 * chains).
 *
 * A record counts as a use of key `uid` when its decision is "allow", its
 * result "success", its uid non-empty and its operation one that uses the
 * key material (kg_keys_audit_material_ops). The latest time per uid wins,
 * whatever the order of files and lines.
 *
 * Lines go through kg_audit_parse_members, the audit chain's own strict
 * parser; on top of it every record must carry a well-formed "time", and
 * time, operation, uid, decision and result at most once each. A line that
 * fails is malformed: reported, counted and skipped, never guessed at.
 */
#ifndef KG_KEYS_AUDIT_H
#define KG_KEYS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kg_result.h"
#include "kg_store.h"

/* The operations (KMIP 1.4 / 2.x names, as the audit writes them) that
 * use a key's material: NULL-terminated. */
extern const char *const kg_keys_audit_material_ops[];

/* Most distinct UIDs kept: about 64 bytes each, so 256 MiB at most. */
#define KG_KEYS_USES_MAX (4u * 1024u * 1024u)

/* uid -> latest use. Owned by its creator; free with kg_keys_uses_free. */
struct kg_keys_uses;

/* *out NULL on failure (KG_ERR_NOMEM). */
kg_result kg_keys_uses_new(struct kg_keys_uses **out) KG_WARN_UNUSED;
/* Accepts NULL. */
void kg_keys_uses_free(struct kg_keys_uses *uses);

/* Record a use of `uid` (at most KG_UID_LEN bytes) at `when`, keeping the
 * later of it and any earlier one. KG_ERR_NOMEM when the table cannot grow
 * or would pass KG_KEYS_USES_MAX (detail says which). */
kg_result kg_keys_uses_note(struct kg_keys_uses *uses, const char *uid, int64_t when) KG_WARN_UNUSED;

/* The latest use of `uid` into *when: false (and *when 0) when none. */
bool kg_keys_uses_get(const struct kg_keys_uses *uses, const char *uid, int64_t *when /* OUT */);

/* Number of distinct UIDs with a use. */
size_t kg_keys_uses_count(const struct kg_keys_uses *uses);

/*
 * Read one audit line (no newline) into `uses`. Returns OK with *why NULL
 * for a good line, and *used saying whether it counted as a use (not: an
 * event, a denial, a Create, a UID longer than any the store holds); OK
 * with *why a static phrase for a malformed line, which changed nothing;
 * an error only when `uses` cannot grow.
 */
kg_result kg_keys_audit_line(struct kg_keys_uses *uses, const char *line, size_t len, bool *used /* OUT */,
                             const char **why /* OUT */) KG_WARN_UNUSED;

struct kg_keys_audit_stats {
    size_t lines;     /* lines read, malformed ones included */
    size_t uses;      /* records that counted as a use */
    size_t malformed; /* lines skipped */
};

/*
 * Read the audit file `path` into `uses`, adding to *stats (caller-owned,
 * not reset). Each malformed line is reported to `diag` as
 * "path:line: why". A last line
 * without its newline may be a record being written right now: reported
 * and counted like any malformed line if it does not parse.
 * Errors: KG_ERR_IO (missing or unreadable file, detail says which),
 * KG_ERR_NOMEM. The file is only read, so a gateway may append to it.
 */
kg_result kg_keys_audit_scan(struct kg_keys_uses *uses, const char *path, FILE *diag,
                             struct kg_keys_audit_stats *stats) KG_WARN_UNUSED;

/* "2025-01-02T03:04:05Z", exactly as the audit writes it, into seconds
 * since the Epoch; false for anything else (another layout, a day that
 * does not exist, a year before 1970). */
bool kg_keys_audit_parse_time(const char *text, int64_t *out /* OUT */);

#endif
