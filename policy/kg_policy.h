/*
 * kg_policy.h - who may do what, keyed on the client certificate's OU.
 *
 * Two halves:
 *  - loading: kg_policy_load_file parses and checks a YAML policy file
 *    (libyaml) and reports every mistake as file:line:column;
 *  - deciding: kg_policy_decide is a pure function of (policy, identity,
 *    operation, owner of the object): no I/O, no allocation, no globals.
 *
 * Default deny: an identity whose OU names no group, or whose OUs name more
 * than one group, gets no group and every decision is a denial. This module
 * includes nothing of gateway/ or pkcs11/.
 *
 * Operation codes are the KMIP Operation enumeration values (KMIP 1.4
 * section 9.1.3.2.27); names are the specification's ("Get Attributes").
 */
#ifndef KG_POLICY_H
#define KG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_POLICY_MAX_OP 0x3F /* operations fit a 64-bit mask */

enum kg_export_mode {
    KG_EXPORT_WRAPPED = 0, /* the default: key material only wrapped */
    KG_EXPORT_PLAINTEXT = 1,
    KG_EXPORT_NONE = 2,
};

enum kg_scope {
    KG_SCOPE_OWN = 0, /* objects created by this group (the default) */
    KG_SCOPE_ALL = 1,
};

struct kg_policy_group {
    char *name;          /* owned; also the owner recorded on objects */
    char *ou;            /* owned; the certificate OU this group matches */
    uint64_t operations; /* bit n set: operation code n allowed */
    enum kg_export_mode export_mode;
    enum kg_scope scope;
    unsigned line;       /* where the group is defined, for explain */
};

struct kg_policy {
    char *path; /* owned */
    struct kg_policy_group *groups; /* owned array */
    size_t group_count;
};

/* What the gateway knows of a client: borrowed strings, valid per call. */
struct kg_identity {
    const char *cn;
    const char *const *ous;
    size_t ou_count;
    const char *serial;      /* hex */
    const char *fingerprint; /* SHA-256 of the certificate, hex */
    const char *issuer_fingerprint; /* SHA-256 of the CA certificate that issued it, hex; may be NULL */
};

/*
 * One mistake in a policy file. line and column are 1-based; both are 0 for
 * a mistake about the file as a whole (cannot open it, larger than
 * KG_POLICY_MAX_FILE_BYTES). Messages never contain control characters: text
 * quoted from the file is sanitized, so printing them to a terminal is safe.
 */
struct kg_policy_error {
    unsigned line;   /* 1-based, 0 = whole file */
    unsigned column; /* 1-based, 0 = whole file */
    char message[160];
};

#define KG_POLICY_MAX_ERRORS 32
#define KG_POLICY_MAX_FILE_BYTES (1024u * 1024u) /* larger files are refused */
struct kg_policy_errors {
    struct kg_policy_error items[KG_POLICY_MAX_ERRORS];
    size_t count;     /* stored */
    size_t overflow;  /* not stored: more than KG_POLICY_MAX_ERRORS */
};

/*
 * Parse and check the policy at `path`. On success returns 0 and *out holds a
 * policy the caller owns (kg_policy_free). On any error returns -1, *out is
 * NULL and `errors` lists every problem found (all of them, not the first),
 * sorted by position. `errors` is reset on entry; it may be NULL when the
 * caller only wants the verdict.
 *
 * A YAML syntax error stops the parse: it is reported alone, at the parser's
 * position, because checking half a document would report phantom errors.
 */
int kg_policy_load_file(const char *path, struct kg_policy **out, struct kg_policy_errors *errors);

/* Same from a buffer; `name` is used in messages only. */
int kg_policy_load_buffer(const char *text, size_t len, const char *name, struct kg_policy **out,
                          struct kg_policy_errors *errors);

/* Frees everything the policy owns and the policy itself. Accepts NULL. */
void kg_policy_free(struct kg_policy *policy);

enum kg_policy_verdict {
    KG_POLICY_ALLOW = 0,
    KG_POLICY_DENY_NO_OU,        /* certificate carries no OU */
    KG_POLICY_DENY_UNKNOWN_OU,   /* no group matches any of its OUs */
    KG_POLICY_DENY_AMBIGUOUS,    /* its OUs match more than one group */
    KG_POLICY_DENY_OPERATION,    /* the group may not do this operation */
    KG_POLICY_DENY_SCOPE,        /* the object belongs to a group out of scope */
};

struct kg_policy_decision {
    enum kg_policy_verdict verdict;
    const struct kg_policy_group *group; /* borrowed from the policy; NULL if none matched */
    const char *rule; /* static text naming the deciding rule, e.g. "groups.vsphere.operations"; never NULL */
};

/* The group of an identity, with the verdict that explains a NULL. */
struct kg_policy_decision kg_policy_match(const struct kg_policy *policy, const struct kg_identity *id);

/*
 * May `id` perform `operation`? `object_owner` is the owning group of the
 * object the operation targets, or NULL when it targets none (Create,
 * Discover Versions, Query, Locate).
 */
struct kg_policy_decision kg_policy_decide(const struct kg_policy *policy, const struct kg_identity *id,
                                           uint32_t operation, const char *object_owner);

/*
 * Everything the gateway knows about one batch item before it runs, so that
 * one pure decision covers it all (DESIGN.md: handlers never re-check).
 * Fields that do not apply are 0 / NULL / false.
 */
struct kg_policy_request {
    uint32_t operation;
    const char *object_owner;        /* owning group of the target object, NULL if none */
    /* Create / Register: what is asked for. */
    uint32_t object_type;
    uint32_t algorithm;
    int32_t length;
    int32_t usage_mask;
    bool has_usage_mask;
    /* Get: the form key material would leave in. */
    bool key_material;               /* the answer would carry key material */
    bool wrapped;                    /* a Key Wrapping Specification was given */
    const char *wrapping_key_uid;    /* named wrapping key, NULL if none */
    const char *wrapping_key_owner;  /* its owning group, NULL if unknown */
    /* KMIP Authentication / Credential (Username and Password), borrowed. */
    bool has_credential;
    const char *username;
    size_t username_len;
    const char *password;
    size_t password_len;
    /* Live (not destroyed) objects the caller's group owns, for Create limits. */
    uint64_t group_live_objects;
};

/*
 * The full decision for one request. `rule` in the result names the rule
 * that decided (for the audit record and `policy explain`).
 */
struct kg_policy_decision kg_policy_decide_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                   const struct kg_policy_request *req);

/* May `group` see objects owned by `owner`? (Locate filters with this.) */
bool kg_policy_in_scope(const struct kg_policy_group *group, const char *owner);

/* "allow", "deny: no OU in certificate", ... Never NULL. */
const char *kg_policy_verdict_text(enum kg_policy_verdict verdict);
const char *kg_policy_export_text(enum kg_export_mode mode);
/* "own" / "all". Never NULL. */
const char *kg_policy_scope_text(enum kg_scope scope);

/* Operation name <-> code, KMIP 1.4 names. NULL / 0 when unknown. */
const char *kg_policy_operation_name(uint32_t operation);
uint32_t kg_policy_operation_code(const char *name);

/* Bit n set for every operation code n the table names: what `operations: all` grants. */
uint64_t kg_policy_operation_mask_all(void);

#endif
