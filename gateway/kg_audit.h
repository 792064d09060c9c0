/*
 * kg_audit.h - the audit log: one record per batch item (time, identity,
 * operation, UID, policy decision, result) and one per gateway event
 * (start, stop, policy reload, ...). Never key bytes, never a password.
 *
 * FORMAT. The audit file holds JSON lines. Every line is a flat JSON object
 * whose first two members are
 *
 *   "seq"  - 1, 2, 3, ... with no gap across the whole file;
 *   "prev" - SHA-256, lowercase hex, of the exact bytes of the previous
 *            record's line without its newline; 64 zeros for seq 1.
 *
 * A request record then has time, cn, ou (a JSON array: one string per OU,
 * so an OU holding a comma cannot pose as two), serial, fingerprint, group,
 * operation, uid, decision, result, reason and optionally note:
 *
 *   {"seq":7,"prev":"9f86...","time":"2025-01-02T03:04:05Z","cn":"vc01",
 *    "ou":["vsphere"],"serial":"1A","fingerprint":"ab12...","group":"vsphere",
 *    "operation":"Create","uid":"6f1c...","decision":"allow",
 *    "result":"success","reason":0}
 *
 * An event record has time, event, detail and, for "resume" only,
 * partial_sha256 (below):
 *
 *   {"seq":8,"prev":"...","time":"...","event":"policy-reload",
 *    "detail":"sha256=... ok"}
 *
 * Every string value is escaped: quotes, backslashes and control bytes
 * become \" \\ \u00XX, and bytes that are not valid UTF-8 become \ufffd, so a
 * hostile certificate subject or client-chosen UID can neither end its string
 * early nor add members. A value longer than its budget (512 bytes of JSON
 * text; 256 per OU, at most 16 OUs) is cut at a character boundary and the
 * record gets "truncated":true as its last member.
 *
 * CHAIN. Because each record carries the hash of the one before it, editing,
 * deleting, reordering, duplicating or inserting a record in the middle of the
 * file breaks the chain at that point, and `kmipgw audit verify` names the
 * line (kg_audit_verify_file below). One mutex is held around "format seq and
 * prev, hash, write", so the chain order is the file order whatever the
 * number of worker threads; the hash is cheap next to the write.
 *
 * WHAT THE CHAIN DOES NOT GIVE. Anyone who can rewrite the file can also
 * recompute every hash: a rewritten file, or one whose last records were
 * cut off or altered, still verifies. The defence is to keep the head of the
 * chain somewhere the attacker cannot reach: kg_audit_open and every
 * kg_audit_event log "audit head seq N sha256 H" through kg_log (stderr, so
 * the journal or syslog), and `kmipgw audit verify` prints the head it
 * found. A file whose head is older than, or differs from, the last logged
 * one has lost or changed records. The stderr echo (below) carries seq and
 * prev too, so the journal also holds a second copy of the whole chain.
 * Ship the log elsewhere if that matters.
 *
 * OPENING AN EXISTING FILE continues its chain: the last complete line must
 * be a record (else kg_audit_open fails, rather than start a second chain
 * that would hide whatever happened to the file). If the file ends inside a
 * line - a crash or a full disk in the middle of a write - the gateway first
 * ends that fragment with a newline and then writes an event "resume" record
 * whose partial_sha256 is the hash of the fragment and whose prev is the hash
 * of the last complete record. verify accepts such a fragment (it prints a
 * note) only when the very next line is that resume record, so the fragment
 * is accounted for inside the chain. A fragment that is a whole record which
 * merely lost its newline is simply completed. A short write at run time is
 * handled the same way before the next record, and records that could not
 * be written at all are counted in a "records-lost" event (they still went
 * to stderr).
 *
 * One process appends to one file: kg_audit_open takes an exclusive flock
 * and fails if another gateway holds it, since two writers would fork the
 * chain. Records are not fsynced (the store is the durable part); the file
 * is opened O_APPEND | O_CLOEXEC, created mode 0600. Each file is its own
 * chain from seq 1: rotate by moving the file aside while the gateway is
 * stopped.
 *
 * Every record is also echoed to stderr as the structured log, as
 * {"level":"audit",...the same members...}; a record that could not be
 * written to the file is echoed as {"level":"audit","written":false,...}
 * without seq and prev.
 */
#ifndef KG_AUDIT_H
#define KG_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    const char *rule;      /* the policy rule that decided ("groups.backup.export"), or NULL */
    unsigned rule_line;    /* its line in the policy file; 0 = a default */
};

/* Longest line, newline excluded, that verify and kg_audit_open accept.
 * Records written here stay far below it (about 10 KiB at worst). */
#define KG_AUDIT_MAX_LINE 65536u

/* Hex SHA-256 plus NUL. */
#define KG_AUDIT_HASH_HEX 65

/*
 * Open the audit log at `path` (NULL: stderr only, the chain is then kept
 * in memory and visible in the echoed lines only). Creates the file (0600)
 * or continues the chain of an existing one, as described above; logs the
 * head through kg_log. Caller owns *out (NULL on failure) and frees it with
 * kg_audit_close.
 * Errors: KG_ERR_CONFIG when the file cannot be opened, is not a regular
 * file, is locked by another process, or does not end in a chained record
 * (the detail says which and suggests `kmipgw audit verify`); KG_ERR_IO on
 * a read error; KG_ERR_NOMEM.
 */
kg_result kg_audit_open(const char *path, struct kg_audit **out) KG_WARN_UNUSED;

/* Close the file and free `audit`. Accepts NULL. Writes nothing: callers
 * log a "stop" event first if they want one. */
void kg_audit_close(struct kg_audit *audit);

/* Append one request record. Thread-safe. Failures are reported on stderr,
 * never to the client, and counted in a later "records-lost" event. */
void kg_audit_write(struct kg_audit *audit, const struct kg_audit_record *rec);

/*
 * Append one event record {"event":event,"detail":detail} in the same chain,
 * then log the new head through kg_log. Thread-safe. `detail` may be NULL.
 * Events the gateway writes: "start", "stop", "policy-reload" (detail
 * "sha256=<hex of the policy file> ok" or the reason it was refused), and
 * the "resume" and "records-lost" events described above.
 */
void kg_audit_event(struct kg_audit *audit, const char *event, const char *detail);

/* The head of the chain: seq of the last record (0 if none) and the SHA-256
 * of its line as hex (64 zeros if none). Thread-safe. */
void kg_audit_head(struct kg_audit *audit, uint64_t *seq /* OUT */, char hex[KG_AUDIT_HASH_HEX] /* OUT */);

/*
 * What the chain needs from one line (no newline), pulled out by a strict
 * parser of flat JSON objects: strings are parsed with their escapes, so a
 * key-like text inside a value is never taken for a key; nested objects,
 * duplicate keys, invalid UTF-8 and trailing bytes are refused.
 */
struct kg_audit_line {
    uint64_t seq;
    uint8_t prev[32];
    bool resume;             /* "event":"resume" */
    bool has_partial;        /* "partial_sha256" present (resume records) */
    uint8_t partial[32];
};

/* Parse `line[0..len)`. On failure returns false and sets *why to a static
 * phrase ("no \"seq\" member", ...). */
bool kg_audit_parse_line(const char *line, size_t len, struct kg_audit_line *out /* OUT */,
                         const char **why /* OUT */);

/*
 * The walker under kg_audit_parse_line, for every reader of the log (the
 * chain check, `kmipgw keys report`): parse `line[0..len)` as one flat JSON
 * object, as strictly as kg_audit_parse_line, and call `fn` with each member
 * in line order. `fn` returns NULL to go on, or a static phrase that refuses
 * the line. Returns false with *why a static phrase (fn's, or the parser's:
 * "nested object", "bytes after the object", ...) when the line is refused.
 * The member passed to fn, and every pointer in it, is valid only during
 * the call; nothing is allocated.
 */
#define KG_AUDIT_TEXT_MAX 80u /* decoded names and string values kept, NUL included */
enum kg_audit_member_kind {
    KG_AUDIT_MEMBER_STRING,
    KG_AUDIT_MEMBER_NUMBER,
    KG_AUDIT_MEMBER_OTHER, /* true, false, null, an array */
};
struct kg_audit_member {
    /* Decoded and NUL-terminated; NULL when KG_AUDIT_TEXT_MAX or longer, so
     * an overlong name or value matches nothing. A non-ASCII character
     * decodes to the one byte 0x80: every name and value a reader compares
     * is ASCII, and none can be forged from other characters. */
    const char *name;
    enum kg_audit_member_kind kind;
    const char *text;   /* STRING only */
    const char *number; /* NUMBER only: its text in `line`, number_len bytes */
    size_t number_len;
};
typedef const char *(*kg_audit_member_fn)(void *ctx, const struct kg_audit_member *m);
bool kg_audit_parse_members(const char *line, size_t len, kg_audit_member_fn fn, void *ctx,
                            const char **why /* OUT */);

/*
 * Reading an audit file line by line with a bound: a line longer than
 * KG_AUDIT_MAX_LINE is skipped to its end and reported as too long, never
 * buffered. kg_audit_lines_open: KG_ERR_IO (detail "cannot open PATH:
 * reason") or KG_ERR_NOMEM; the caller owns *out (NULL on failure) and
 * frees it with kg_audit_lines_close (accepts NULL). kg_audit_lines_next
 * sets *line and *len (no newline; valid until the next call) for LINE,
 * LAST and TOO_LONG (then *len is 0).
 */
enum kg_audit_read {
    KG_AUDIT_READ_LINE,     /* a line and its newline */
    KG_AUDIT_READ_LAST,     /* a last line without a newline */
    KG_AUDIT_READ_TOO_LONG, /* longer than KG_AUDIT_MAX_LINE: skipped to its end */
    KG_AUDIT_READ_EOF,
    KG_AUDIT_READ_ERROR,    /* errno says why */
};
struct kg_audit_lines;
kg_result kg_audit_lines_open(const char *path, struct kg_audit_lines **out) KG_WARN_UNUSED;
enum kg_audit_read kg_audit_lines_next(struct kg_audit_lines *r, const char **line /* OUT */,
                                       size_t *len /* OUT */);
void kg_audit_lines_close(struct kg_audit_lines *r);

/* Length (1-4) of the well-formed UTF-8 sequence at p[0..n), or 0 when it
 * is not one (overlong forms, surrogates and code points over U+10FFFF are
 * not). The writer and the parser share this one definition. */
size_t kg_audit_utf8_len(const uint8_t *p, size_t n);

/*
 * Check the chain of the audit file at `path`: every line a record, seq
 * rising by one from 1, prev the hash of the line before. Writes one line
 * per problem to `report` as "path:line: message", in line order (the
 * first 100; a count of the rest), a "note" line per interrupted write that
 * a resume record accounts for, and a summary: "path: N records, chain
 * intact" plus "path: head seq S sha256 H", or "path: N records, M
 * problems: chain broken". Messages name the kind of tampering where the
 * chain shows it: "prev hash does not match line 16 (edited or deleted
 * record before it)", "seq jumps from 16 to 18 (record deleted)" (or "moved
 * to line 40" when it turns up later), "seq 15 after 16 (reordered)", "line
 * 21 duplicates line 20", "record seq 11 is not part of the chain ...
 * (inserted or forged record)", "line 12 is not a record: <why>", "line 30
 * is incomplete". The file is read once, one line ahead, so it may be
 * checked while the gateway appends to it (a line being written at that
 * moment may show as incomplete).
 * *records and *problems (both OUT, may be NULL) count record lines and
 * problems. Returns an error (KG_ERR_IO, detail set, nothing printed about
 * the chain) only when the file cannot be opened or read; a broken chain is
 * a success with *problems > 0.
 */
kg_result kg_audit_verify_file(const char *path, FILE *report, size_t *records, size_t *problems) KG_WARN_UNUSED;

/* Structured log line to stderr: level and a message (no secrets). */
void kg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
