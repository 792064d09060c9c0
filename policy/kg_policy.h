/*
 * kg_policy.h - who may do what, keyed on the client certificate's OU.
 *
 * Two halves:
 *  - loading: kg_policy_load_file parses and checks a YAML policy file
 *    (libyaml) and reports every mistake as file:line:column. The schema is
 *    documented key by key in conf/policy.yaml;
 *  - deciding: kg_policy_decide_request is a function of (policy, identity,
 *    request): no I/O, no globals, and the same answer for the same inputs,
 *    so `kmipgw policy explain` replays it exactly.
 *
 * Default deny: an identity whose OU names no group, or whose OUs name more
 * than one group, gets no group and every decision is a denial, unless the
 * policy names that case (top-level `no_ou:` / `ambiguous:`). A group bound
 * to client CAs (`ca_sha256:`) is only matched by certificates those CAs
 * issued. This module includes nothing of gateway/ or pkcs11/.
 *
 * The two parts that are not pure, both behind one mutex in the policy
 * object (struct kg_policy_state, private to policy/):
 *  - a bounded cache of *successful* KMIP credential verifications, because
 *    yescrypt is slow on purpose. An entry is HMAC-SHA-256 under a random
 *    per-policy key of (group, username, password): it holds no password and
 *    nothing a dump could be brute-forced against offline without that key,
 *    which dies with the policy. A cache hit or miss never changes a verdict,
 *    only its cost; a reload starts an empty cache.
 *  - the per-group token buckets of `limits.requests_per_second`
 *    (kg_policy_rate_check); a reload starts full buckets.
 *
 * Operation codes are the KMIP Operation enumeration values (KMIP 1.4
 * section 9.1.3.2.27); names are the specification's ("Get Attributes").
 * Object types, algorithms and usage masks likewise (9.1.3.2.12, 9.1.3.2.13,
 * 9.1.3.3.1; algorithms up to KMIP 2.1's 0x35).
 */
#ifndef KG_POLICY_H
#define KG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_POLICY_MAX_OP 0x3F          /* operations fit a 64-bit mask */
#define KG_POLICY_MAX_OBJECT_TYPE 0x0A /* Certificate Request (KMIP 2.x) */
#define KG_POLICY_MAX_ALGORITHM 0x3F   /* algorithms fit a 64-bit mask */
#define KG_POLICY_MAX_LENGTHS 16       /* create.lengths entries */
#define KG_POLICY_MAX_CAS 16           /* ca_sha256 entries */
#define KG_POLICY_MAX_WRAPPING_KEYS 64 /* wrapping_keys UIDs */
#define KG_POLICY_MAX_UID 128          /* bytes of one wrapping key UID */
#define KG_POLICY_MAX_USERNAME 256     /* bytes; longer credentials are denied */
#define KG_POLICY_MAX_PASSWORD 256     /* bytes; longer credentials are denied */
#define KG_POLICY_MAX_LIVE_OBJECTS 1000000000u
#define KG_POLICY_MAX_RATE 1000000u    /* requests per second */

enum kg_export_mode {
    KG_EXPORT_WRAPPED = 0, /* the default: key material only wrapped */
    KG_EXPORT_PLAINTEXT = 1,
    KG_EXPORT_NONE = 2,
};

enum kg_scope {
    KG_SCOPE_OWN = 0,  /* objects created by this group (the default) */
    KG_SCOPE_ALL = 1,
    KG_SCOPE_LIST = 2, /* its own objects and those of scope_groups */
};

enum kg_residency {
    KG_RESIDENCY_WRAPPED = 0, /* the default: blob wrapped under the MWK in the store */
    KG_RESIDENCY_HSM = 1,     /* token object, never extractable (gateway support comes later) */
};

/*
 * The rules of a group, one per policy key that can decide a request. Each
 * has a text "groups.<name>.<key>" for audit records and explain, and the
 * line of that key in the file (0 when the key is absent and its default
 * decided).
 */
enum kg_policy_rule_kind {
    KG_RULE_OU = 0,
    KG_RULE_CA,                  /* ca_sha256 */
    KG_RULE_OPERATIONS,
    KG_RULE_CREATE,              /* create (absent: the default constraints) */
    KG_RULE_CREATE_OBJECT_TYPES, /* create.object_types */
    KG_RULE_CREATE_ALGORITHMS,   /* create.algorithms */
    KG_RULE_CREATE_LENGTHS,      /* create.lengths */
    KG_RULE_CREATE_USAGE_MASKS,  /* create.usage_masks */
    KG_RULE_EXPORT,
    KG_RULE_WRAPPING_KEYS,
    KG_RULE_SCOPE,
    KG_RULE_RESIDENCY,
    KG_RULE_CREDENTIAL,
    KG_RULE_MAX_LIVE_OBJECTS,    /* limits.max_live_objects */
    KG_RULE_REQUESTS_PER_SECOND, /* limits.requests_per_second */
    KG_RULE_COUNT,
};

/* create: what a Create or Register may ask for. */
struct kg_policy_create {
    uint32_t object_types;  /* bit n: object type n; default Symmetric Key only */
    uint64_t algorithms;    /* bit n: algorithm n; default AES only */
    int32_t lengths[KG_POLICY_MAX_LENGTHS];
    size_t length_count;    /* 0: any length (the gateway checks what it supports) */
    bool has_usage_masks;   /* false: any usage mask */
    uint32_t usage_masks;   /* the requested mask must be a subset of this */
};

/* What a KMIP Credential names (KMIP 1.4 section 2.1.2). */
enum kg_policy_credential_kind {
    KG_POLICY_CRED_USERNAME = 0, /* Username and Password: `username` */
    KG_POLICY_CRED_DEVICE = 1,   /* Device: `device_serial_number` */
};

/*
 * credential: the KMIP Authentication check. The group's first accepted
 * credential is embedded in the group; a `credential:` list chains the
 * others on `next`. A request's credential passes if it matches any.
 */
struct kg_policy_credential {
    bool present;          /* false: a request's credential is not looked at */
    bool required;         /* true: `check: required` (any entry); false: `check: when_present` */
    enum kg_policy_credential_kind kind;
    char *username;        /* owned: the Username, or the Device Serial Number */
    char *password_hash;   /* owned; crypt(3) string, e.g. "$y$..." or "$6$..." */
    /* act_as: a request carrying this credential is decided as this group
     * (borrowed from the policy), not as the certificate's; NULL: as the
     * certificate's. act_as_name (owned) and its position are the loader's. */
    const struct kg_policy_group *act_as;
    char *act_as_name;
    unsigned act_as_line, act_as_column;
    struct kg_policy_credential *next; /* owned: the next accepted credential, or NULL */
};

/*
 * fresh_pool: keys the gateway makes ahead of need (KMIP Client Registration
 * Method Server Pre-Generated): a Locate of Fresh members of this Object
 * Group first tops the group's fresh keys in it up to `size`, made as a
 * Create by the group would make them (its create rules apply).
 */
#define KG_POLICY_MAX_POOL 64
#define KG_POLICY_MAX_OBJECT_GROUP 256 /* bytes of fresh_pool.object_group */
struct kg_policy_fresh_pool {
    bool present;
    char *object_group;  /* owned */
    uint32_t algorithm;  /* KMIP Cryptographic Algorithm */
    int32_t length;      /* bits */
    uint32_t usage_mask; /* KMIP Cryptographic Usage Mask */
    uint32_t size;       /* 1 to KG_POLICY_MAX_POOL */
};

struct kg_policy_group {
    char *name;          /* owned; also the owner recorded on objects */
    char *ou;            /* owned; the certificate OU this group matches; NULL: only via no_ou/ambiguous */
    uint64_t operations; /* bit n set: operation code n allowed */
    /* Export mode per object type (index = KMIP Object Type); every slot is
     * filled at load. export_mode is the mode of Symmetric Keys, the one type
     * the gateway exports today; prefer kg_policy_export_for(). */
    enum kg_export_mode export_mode;
    enum kg_export_mode export_types[KG_POLICY_MAX_OBJECT_TYPE + 1];
    enum kg_export_mode export_other; /* types past the table */
    enum kg_scope scope;
    char **scope_groups; /* owned; KG_SCOPE_LIST: the other groups whose objects it may use */
    size_t scope_group_count;
    enum kg_residency residency;
    /* ca_sha256: SHA-256 of the client CA certificates allowed to vouch for
     * this OU; none listed = any client CA the gateway trusts. */
    uint8_t ca_sha256[KG_POLICY_MAX_CAS][32];
    size_t ca_count;
    struct kg_policy_create create;
    /* wrapping_keys: which keys a wrapped export may name. */
    bool wrap_own;        /* `own`: keys owned by this group (the default) */
    bool wrap_in_scope;   /* `in_scope`: keys of any group in its scope */
    char **wrapping_uids; /* owned: UIDs named one by one */
    size_t wrapping_uid_count;
    struct kg_policy_credential credential;
    struct kg_policy_fresh_pool fresh_pool;
    bool has_max_live_objects;
    uint64_t max_live_objects;
    uint32_t requests_per_second; /* 0 = no limit */
    /* Per enum kg_policy_rule_kind: "groups.<name>.<key>" (owned; NULL in a
     * group built by hand) and the key's line (0: absent, its default). */
    char *rule_text[KG_RULE_COUNT];
    unsigned rule_line[KG_RULE_COUNT];
    unsigned line;       /* where the group is defined, for explain */
};

struct kg_policy_state; /* private: the mutex, the credential cache, the rate buckets */

struct kg_policy {
    char *path; /* owned */
    struct kg_policy_group *groups; /* owned array */
    size_t group_count;
    /* Top-level `no_ou:` / `ambiguous:`: the group such identities get, or
     * NULL for deny (the default). Borrowed from `groups`. */
    const struct kg_policy_group *no_ou_group;
    const struct kg_policy_group *ambiguous_group;
    unsigned no_ou_line;     /* 0 when the key is absent */
    unsigned ambiguous_line;
    unsigned groups_line;
    struct kg_policy_state *state; /* owned */
};

/* What the gateway knows of a client: borrowed strings, valid per call. */
struct kg_identity {
    const char *cn;
    const char *const *ous;
    size_t ou_count;
    const char *serial;      /* hex */
    const char *fingerprint; /* SHA-256 of the certificate, hex */
    /* SHA-256 of the CA certificate that issued it, hex (colons allowed, any
     * case); NULL when unknown, and then no CA-bound group matches. */
    const char *issuer_fingerprint;
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
 *
 * A credential's password_hash is hashed once at load to prove it is a
 * complete hash of a supported method, so loading costs one password hash
 * per group with a credential.
 */
int kg_policy_load_file(const char *path, struct kg_policy **out, struct kg_policy_errors *errors);

/* Same from a buffer; `name` is used in messages only. */
int kg_policy_load_buffer(const char *text, size_t len, const char *name, struct kg_policy **out,
                          struct kg_policy_errors *errors);

/* Frees everything the policy owns and the policy itself. Accepts NULL. No
 * decision or rate check may be running on it. */
void kg_policy_free(struct kg_policy *policy);

/* New verdicts are only ever appended, so stored numbers keep their meaning. */
enum kg_policy_verdict {
    KG_POLICY_ALLOW = 0,
    KG_POLICY_DENY_NO_OU,        /* certificate carries no OU */
    KG_POLICY_DENY_UNKNOWN_OU,   /* no group matches any of its OUs */
    KG_POLICY_DENY_AMBIGUOUS,    /* its OUs match more than one group */
    KG_POLICY_DENY_OPERATION,    /* the group may not do this operation */
    KG_POLICY_DENY_SCOPE,        /* the object belongs to a group out of scope */
    KG_POLICY_DENY_CA,           /* the OU's group is bound to other client CAs */
    KG_POLICY_DENY_CREATE,       /* Create/Register asks for a type, algorithm, length or usage not allowed */
    KG_POLICY_DENY_EXPORT,       /* key material may not leave in that form */
    KG_POLICY_DENY_WRAPPING_KEY, /* the wrapping key named is not one the group may name */
    KG_POLICY_DENY_CREDENTIAL,   /* KMIP credential missing where required, or wrong */
    KG_POLICY_DENY_LIMIT,        /* limits.max_live_objects reached */
    KG_POLICY_DENY_RATE,         /* limits.requests_per_second exceeded */
};

struct kg_policy_decision {
    enum kg_policy_verdict verdict;
    const struct kg_policy_group *group; /* borrowed from the policy; NULL if none matched */
    /*
     * The rule that decided, e.g. "groups.backup.create.lengths", "no_ou",
     * "groups.vsphere.ca_sha256". Never NULL. Borrowed from the policy (or
     * static): valid while the policy lives, so the gateway copies it into
     * the audit record before it lets a reload free the policy.
     */
    const char *rule;
    unsigned line; /* line of that rule's key in policy->path; 0 = a default, the key is absent */
    /* kg_policy_match_request verified the request's credential against the
     * certificate's group (and perhaps acted as another group on it): the
     * credential rule then does not judge it again, against the group acted
     * as, whose own credentials are for its own certificates. */
    bool credential_verified;
};

/*
 * The group of an identity, with the verdict that explains a NULL. Rules:
 * "no_ou", "ambiguous", "groups" (no group has the OU),
 * "groups.<g>.ca_sha256" (bound to other CAs), "groups.<g>.ou" (matched).
 *
 * Every OU of the certificate takes part; one whose group is bound to CAs
 * that did not issue the certificate does not match that group (so it can
 * neither select it nor make the identity ambiguous). An identity matched
 * only by such OUs is DENY_CA. The group named by no_ou / ambiguous is also
 * subject to its ca_sha256.
 */
struct kg_policy_decision kg_policy_match(const struct kg_policy *policy, const struct kg_identity *id);

struct kg_policy_request;

/*
 * kg_policy_match, then the request's KMIP credential: when it is one of the
 * matched group's credentials (password verified) that says act_as, the
 * group decided on is that one. Every decision about a request starts here.
 */
struct kg_policy_decision kg_policy_match_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                  const struct kg_policy_request *req);

/*
 * May `id` perform `operation`? `object_owner` is the owning group of the
 * object the operation targets, or NULL when it targets none (Create,
 * Discover Versions, Query, Locate). Identity, operations and scope only:
 * the short form the gateway used before kg_policy_decide_request.
 */
struct kg_policy_decision kg_policy_decide(const struct kg_policy *policy, const struct kg_identity *id,
                                           uint32_t operation, const char *object_owner);

/*
 * Everything the gateway knows about one batch item before it runs, so that
 * one decision covers it all (DESIGN.md: handlers never re-check).
 * Fields that do not apply are 0 / NULL / false.
 */
struct kg_policy_request {
    uint32_t operation;
    const char *object_owner;        /* owning group of the target object, NULL if none */
    /* Create / Register: what is asked for (0 = not stated, which no list
     * allows). Get: object_type is the type of the target object. */
    uint32_t object_type;
    uint32_t algorithm;
    int32_t length;
    int32_t usage_mask;
    bool has_usage_mask;             /* false: treated as mask 0 */
    /* Get: the form key material would leave in. */
    bool key_material;               /* the answer would carry key material */
    bool wrapped;                    /* a Key Wrapping Specification was given */
    const char *wrapping_key_uid;    /* named wrapping key, NULL if none */
    const char *wrapping_key_owner;  /* its owning group, NULL if unknown */
    /* KMIP Authentication / Credential (Username and Password), borrowed,
     * not NUL-terminated. Never copied anywhere that outlives the call. */
    bool has_credential;
    uint32_t credential_kind; /* enum kg_policy_credential_kind */
    const char *username;     /* the Username, or the Device Serial Number */
    size_t username_len;
    const char *password;
    size_t password_len;
    /* Live (not destroyed) objects the caller's group owns, for Create limits. */
    uint64_t group_live_objects;
    /* Operations that make keys (Create, Register, Create Key Pair, Re-key,
     * Re-key Key Pair): how many objects this one makes (0 counts as 1),
     * and for a pair the public half's type and usage mask: create.*
     * applies to both halves (object_type..usage_mask above describe the
     * private half), and the live-object limit to all of them. */
    uint32_t objects_made;
    uint32_t pair_object_type; /* 0: not a pair */
    int32_t pair_usage_mask;
};

/*
 * The full decision for one request; `rule`/`line` of the result name the
 * rule that decided (for the audit record and `policy explain`). For an
 * allow, the rule is the one that granted: groups.<g>.export when key
 * material leaves, else groups.<g>.operations.
 *
 * Order of checks: identity (kg_policy_match_request), operations, scope of the
 * target object, create.* (every operation that makes a key, each half of
 * a pair), limits.max_live_objects
 * (operations that make objects), export and wrapping_keys (key_material),
 * and last the credential, so that a request denied anyway costs no hash.
 *
 * Thread-safe; the credential check may take a password hash's time (tens of
 * milliseconds for yescrypt) on a cache miss, so a caller on an event loop
 * may prefer to run decisions for requests with a credential on a worker.
 * Allocates only during that check (libxcrypt's work area); an allocation
 * failure denies. `req` NULL is a DENY_OPERATION.
 */
struct kg_policy_decision kg_policy_decide_request(const struct kg_policy *policy, const struct kg_identity *id,
                                                   const struct kg_policy_request *req);

/*
 * limits.requests_per_second: take one token from group `g`'s bucket.
 * Token bucket holding at most one second's worth (R requests), refilled at
 * R per second; `now_ms` is any monotonic millisecond clock (a clock going
 * back counts as no time passing). A group without the limit always passes.
 * Thread-safe (the policy's mutex). `g` must belong to `policy`.
 * kg_policy_rate_check returns ALLOW or DENY_RATE with the rule
 * "groups.<g>.limits.requests_per_second"; kg_policy_rate_allow is its bool.
 */
struct kg_policy_decision kg_policy_rate_check(struct kg_policy *policy, const struct kg_policy_group *g,
                                               uint64_t now_ms);
bool kg_policy_rate_allow(struct kg_policy *policy, const struct kg_policy_group *g, uint64_t now_ms);

/* May `group` see objects owned by `owner`? (Locate filters with this.) */
bool kg_policy_in_scope(const struct kg_policy_group *group, const char *owner);

/* The export mode of `group` for objects of `object_type`. NONE for a NULL group. */
enum kg_export_mode kg_policy_export_for(const struct kg_policy_group *group, uint32_t object_type);

/*
 * "<verdict text> (rule <rule> at <path>:<line>)", or "... (rule <rule>,
 * default)" when the key is absent, into buf[cap] (always NUL-terminated,
 * cut if needed). Returns buf. For logs and `policy explain`.
 */
char *kg_policy_decision_format(const struct kg_policy *policy, const struct kg_policy_decision *d, char *buf,
                                size_t cap);

/* "allow", "deny: no OU in certificate", ... Never NULL. */
const char *kg_policy_verdict_text(enum kg_policy_verdict verdict);
const char *kg_policy_export_text(enum kg_export_mode mode);
/* "own" / "all" / "own+listed". Never NULL. */
const char *kg_policy_scope_text(enum kg_scope scope);
/* "wrapped" / "hsm". Never NULL. */
const char *kg_policy_residency_text(enum kg_residency residency);

/* Operation name <-> code, KMIP 1.4 names. NULL / 0 when unknown. */
const char *kg_policy_operation_name(uint32_t operation);
uint32_t kg_policy_operation_code(const char *name);

/* Bit n set for every operation code n the table names: what `operations: all` grants. */
uint64_t kg_policy_operation_mask_all(void);

/* Object Type / Cryptographic Algorithm / Cryptographic Usage Mask bit names,
 * spelled as in the KMIP specification ("Symmetric Key", "AES", "Wrap Key").
 * NULL / 0 when unknown; usage mask takes and returns one bit. */
const char *kg_policy_object_type_name(uint32_t type);
uint32_t kg_policy_object_type_code(const char *name);
const char *kg_policy_algorithm_name(uint32_t algorithm);
uint32_t kg_policy_algorithm_code(const char *name);
const char *kg_policy_usage_name(uint32_t bit);
uint32_t kg_policy_usage_code(const char *name);

#endif
