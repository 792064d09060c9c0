/*
 * kg_cli_policy.c - kmipgw policy explain: would this client be allowed this
 * request, and by which rule?
 *
 * It builds exactly what the gateway builds for a batch item - a struct
 * kg_identity and a struct kg_policy_request - and asks the same decision
 * function, kg_policy_decide_request, so its answer is the gateway's answer.
 * The identity comes from a certificate (read like gateway/kg_tls.c reads
 * a peer certificate: first CN, every OU as UTF-8, at most KG_TLS_MAX_OUS)
 * or from OUs given on the command line; the issuer fingerprint is the
 * SHA-256 of the --ca certificate, which must have signed --cert. A target
 * object is looked up in the store for its owner and type.
 *
 * Not evaluated: limits.requests_per_second (state of a running gateway).
 *
 * Exit status: 0 allow, 1 deny, 2 usage error or anything that prevents a
 * decision (policy with errors, unreadable certificate, unknown UID).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kg_cli.h"
#include "kg_policy.h"
#include "kg_db.h"
#include "kg_store.h"
#include "kg_tls.h"

#define KG_EXPLAIN_OK_ALLOW 0
#define KG_EXPLAIN_DENY 1
#define KG_EXPLAIN_USAGE 2

static const char kg_explain_usage[] =
    "usage: kmipgw policy explain --policy FILE\n"
    "           (--cert CLIENT.pem [--ca CA.pem]\n"
    "            | --ou OU [--ou OU ...] [--cn CN] [--ca CA.pem | --issuer-sha256 HEX])\n"
    "           --operation NAME\n"
    "           [--owner GROUP | --uid UID --store DB]\n"
    "           [--object-type NAME] [--algorithm NAME] [--length BITS] [--usage-mask N|NAME,NAME...]\n"
    "           [--wrapped] [--wrapping-key UID [--wrapping-key-owner GROUP]]\n"
    "           [--username USER (--password PASSWORD | --password-file FILE)] [--live-objects N]\n"
    "\n"
    "Prints the identity, its group, the request and the decision with the rule that made it.\n"
    "Names are KMIP's: --operation \"Get Attributes\", --object-type \"Symmetric Key\", --algorithm AES.\n"
    "--ca: the client CA that issued --cert; its SHA-256 is what ca_sha256 in the policy is compared to.\n"
    "--uid with --store: the object's owner and type come from the gateway's store.\n"
    "For Get, the answer is taken to carry key material; for Create, Register and Get the object\n"
    "type defaults to Symmetric Key. --live-objects: the objects the group owns now (max_live_objects).\n"
    "--password is visible to other local users; prefer --password-file.\n"
    "Exit status: 0 allow, 1 deny, 2 usage error or no decision possible.\n";

struct kg_explain_opts {
    const char *policy;
    const char *cert;
    const char *ca;
    const char *issuer_hex;
    const char *cn;
    const char *ous[KG_TLS_MAX_OUS];
    size_t ou_count;
    bool ou_given;
    const char *operation;
    const char *owner;
    const char *uid;
    const char *store;
    const char *object_type;
    const char *algorithm;
    const char *length;
    const char *usage_mask;
    bool wrapped;
    const char *wrapping_key;
    const char *wrapping_key_owner;
    const char *username;
    char *password; /* points into argv: wiped after use */
    const char *password_file;
    const char *live_objects;
};

static int kg_explain_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kg_explain_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("kmipgw: policy explain: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    return KG_EXPLAIN_USAGE;
}

/* Print text from a certificate or the command line with control characters replaced. */
static void kg_explain_put(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, stdout);
    }
}

static int kg_explain_parse(int argc, char **argv, struct kg_explain_opts *o)
{
    static const struct kg_cli_option valued[] = {
        { "--policy", offsetof(struct kg_explain_opts, policy) },
        { "--cert", offsetof(struct kg_explain_opts, cert) },
        { "--ca", offsetof(struct kg_explain_opts, ca) },
        { "--issuer-sha256", offsetof(struct kg_explain_opts, issuer_hex) },
        { "--cn", offsetof(struct kg_explain_opts, cn) },
        { "--operation", offsetof(struct kg_explain_opts, operation) },
        { "--owner", offsetof(struct kg_explain_opts, owner) },
        { "--uid", offsetof(struct kg_explain_opts, uid) },
        { "--store", offsetof(struct kg_explain_opts, store) },
        { "--object-type", offsetof(struct kg_explain_opts, object_type) },
        { "--algorithm", offsetof(struct kg_explain_opts, algorithm) },
        { "--length", offsetof(struct kg_explain_opts, length) },
        { "--usage-mask", offsetof(struct kg_explain_opts, usage_mask) },
        { "--wrapping-key", offsetof(struct kg_explain_opts, wrapping_key) },
        { "--wrapping-key-owner", offsetof(struct kg_explain_opts, wrapping_key_owner) },
        { "--username", offsetof(struct kg_explain_opts, username) },
        { "--password-file", offsetof(struct kg_explain_opts, password_file) },
        { "--live-objects", offsetof(struct kg_explain_opts, live_objects) },
    };

    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(kg_explain_usage, stdout);
            return -1;
        }
        if (strcmp(arg, "--wrapped") == 0) {
            o->wrapped = true;
            continue;
        }
        if (i + 1 >= argc) {
            fputs(kg_explain_usage, stderr);
            return kg_explain_fail("%s needs a value (or is not an option)", arg);
        }
        if (strcmp(arg, "--ou") == 0) {
            if (o->ou_count == KG_TLS_MAX_OUS) {
                return kg_explain_fail("at most %d --ou options", KG_TLS_MAX_OUS);
            }
            o->ous[o->ou_count++] = argv[++i];
            o->ou_given = true;
            continue;
        }
        if (strcmp(arg, "--password") == 0) {
            if (o->password != NULL) {
                return kg_explain_fail("%s given twice", arg);
            }
            o->password = argv[++i];
            continue;
        }
        slot = kg_cli_option_slot(valued, sizeof(valued) / sizeof(valued[0]), o, arg);
        if (slot == NULL) {
            fputs(kg_explain_usage, stderr);
            return kg_explain_fail("unknown option %s", arg);
        }
        if (*slot != NULL) {
            return kg_explain_fail("%s given twice", arg);
        }
        *slot = argv[++i];
    }
    if (o->policy == NULL || o->operation == NULL) {
        fputs(kg_explain_usage, stderr);
        return kg_explain_fail("--policy and --operation are required");
    }
    if ((o->cert != NULL) == o->ou_given) {
        return kg_explain_fail("give either --cert or --ou");
    }
    if (o->cert != NULL && (o->cn != NULL || o->issuer_hex != NULL)) {
        return kg_explain_fail("--cn and --issuer-sha256 go with --ou; --cert carries its own (use --ca)");
    }
    if (o->ca != NULL && o->issuer_hex != NULL) {
        return kg_explain_fail("give --ca or --issuer-sha256, not both");
    }
    if (o->owner != NULL && o->uid != NULL) {
        return kg_explain_fail("give --owner or --uid, not both");
    }
    if (o->uid != NULL && o->store == NULL) {
        return kg_explain_fail("--uid needs --store (the gateway's store file)");
    }
    if (o->password != NULL && o->password_file != NULL) {
        return kg_explain_fail("give --password or --password-file, not both");
    }
    if ((o->password != NULL || o->password_file != NULL) && o->username == NULL) {
        return kg_explain_fail("a password needs --username");
    }
    if (o->wrapping_key_owner != NULL && o->wrapping_key == NULL) {
        return kg_explain_fail("--wrapping-key-owner needs --wrapping-key");
    }
    return 0;
}

static X509 *kg_explain_read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *cert;

    if (f == NULL) {
        fprintf(stderr, "kmipgw: policy explain: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cert == NULL) {
        fprintf(stderr, "kmipgw: policy explain: %s holds no PEM certificate\n", path);
    }
    return cert;
}

static bool kg_explain_number(const char *text, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long n;

    if (text == NULL || text[0] == '\0' || text[0] == '-' || text[0] == '+') {
        return false;
    }
    errno = 0;
    n = strtoull(text, &end, 0);
    if (errno != 0 || *end != '\0' || n > max) {
        return false;
    }
    *out = n;
    return true;
}

/* A number (12, 0x0C) or names joined by ',' or '|' ("Encrypt,Decrypt"). */
static bool kg_explain_usage_mask(const char *text, uint32_t *out)
{
    char buf[512];
    uint64_t n;
    uint32_t mask = 0;

    if (kg_explain_number(text, UINT32_MAX, &n)) {
        *out = (uint32_t)n;
        return true;
    }
    if (strlen(text) >= sizeof(buf)) {
        return false;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, ",|", &save); tok != NULL; tok = strtok_r(NULL, ",|", &save)) {
        uint32_t bit;

        while (*tok == ' ') {
            tok++;
        }
        for (size_t l = strlen(tok); l > 0 && tok[l - 1] == ' '; l--) {
            tok[l - 1] = '\0';
        }
        bit = kg_policy_usage_code(tok);
        if (bit == 0) {
            return false;
        }
        mask |= bit;
    }
    *out = mask;
    return true;
}

/* First line of `path`, at most cap-1 bytes, into buf (wiped by the caller). */
static bool kg_explain_read_password(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "kmipgw: policy explain: cannot open %s: %s\n", path, strerror(errno));
        return false;
    }
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return true;
}

struct kg_explain_target {
    struct kg_object object; /* the target, if --uid */
    bool found;
    char wrapping_owner[KG_GROUP_MAX + 1];
    bool wrapping_found;
};

/* Look --uid (and --wrapping-key) up in --store. Returns 0 or an exit status. */
static int kg_explain_lookup(const struct kg_explain_opts *o, struct kg_explain_target *t)
{
    struct kg_store *store = NULL;
    struct kg_object *wk = NULL;
    int status = KG_EXPLAIN_USAGE;

    if (o->store == NULL) {
        return 0;
    }
    if (kg_failed(kg_store_open_existing(o->store, &store))) {
        fprintf(stderr, "kmipgw: policy explain: store %s: %s\n", kg_store_location_text(o->store), kg_error_text());
        goto out;
    }
    if (o->uid != NULL) {
        if (kg_failed(kg_store_get_object(store, o->uid, &t->object))) {
            fprintf(stderr, "kmipgw: policy explain: no object %s in %s (the gateway answers Item Not Found)\n",
                    o->uid, o->store);
            goto out;
        }
        t->found = true;
    }
    if (o->wrapping_key != NULL && o->wrapping_key_owner == NULL) {
        wk = calloc(1, sizeof(*wk));
        if (wk != NULL && kg_ok(kg_store_get_object(store, o->wrapping_key, wk))) {
            snprintf(t->wrapping_owner, sizeof(t->wrapping_owner), "%s", wk->owner_group);
            t->wrapping_found = true;
        }
    }
    status = 0;
out:
    if (wk != NULL) {
        OPENSSL_cleanse(wk, sizeof(*wk));
        free(wk);
    }
    kg_store_close(store);
    return status;
}

static void kg_explain_print_rule(const struct kg_policy *policy, const struct kg_policy_decision *d)
{
    if (d->line > 0) {
        printf("%s at %s:%u", d->rule, policy->path, d->line);
    } else {
        printf("%s, default", d->rule);
    }
}

static void kg_explain_print(const struct kg_policy *policy, const struct kg_explain_opts *o,
                             const struct kg_identity *id, const struct kg_policy_request *req,
                             const struct kg_explain_target *t, const struct kg_policy_decision *match)
{
    const char *type = kg_policy_object_type_name(req->object_type);

    printf("policy:   %s\n", policy->path);
    printf("identity: CN=");
    kg_explain_put(id->cn != NULL && id->cn[0] != '\0' ? id->cn : "(none)");
    printf(", OU=");
    if (id->ou_count == 0) {
        printf("(none)");
    }
    for (size_t i = 0; i < id->ou_count; i++) {
        printf("%s\"", i > 0 ? ", " : "");
        kg_explain_put(id->ous[i]);
        printf("\"");
    }
    printf(", issuer sha256 %s\n", id->issuer_fingerprint != NULL ? id->issuer_fingerprint : "(unknown)");
    if (match->group != NULL) {
        printf("group:    %s (", match->group->name);
        kg_explain_print_rule(policy, match);
        printf(")\n");
    } else {
        printf("group:    (none)\n");
    }
    printf("request:  %s", kg_policy_operation_name(req->operation));
    if (o->uid != NULL) {
        printf(" of %s", o->uid);
    }
    if (req->object_owner != NULL) {
        printf(", object owned by %s", req->object_owner);
    }
    if (req->object_type != 0) {
        printf(", %s", type != NULL ? type : "unknown object type");
    }
    if (req->operation == 0x01 || req->operation == 0x03) {
        const char *alg = kg_policy_algorithm_name(req->algorithm);

        printf(", algorithm %s, length %d, usage mask 0x%X", req->algorithm == 0 ? "(none)" : alg ? alg : "?",
               (int)req->length, (unsigned)(req->has_usage_mask ? req->usage_mask : 0));
        printf(", group owns %llu live objects", (unsigned long long)req->group_live_objects);
    }
    if (req->key_material) {
        printf(", key material %s", req->wrapped ? "wrapped" : "plaintext");
        if (req->wrapped) {
            printf(" under %s", req->wrapping_key_uid != NULL ? req->wrapping_key_uid : "(no key named)");
            if (req->wrapping_key_owner != NULL) {
                printf(" (owned by %s)", req->wrapping_key_owner);
            } else if (req->wrapping_key_uid != NULL && t->found) {
                printf(" (not in the store)");
            }
        }
    }
    if (req->has_credential) {
        printf(", credential of user ");
        kg_explain_put(o->username);
    }
    printf("\n");
    if (match->group != NULL && match->group->requests_per_second != 0) {
        printf("note:     limits.requests_per_second (%u/s) depends on the running gateway; not evaluated\n",
               match->group->requests_per_second);
    }
}

int kg_cli_policy_explain(int argc, char **argv)
{
    struct kg_explain_opts o;
    struct kg_policy *policy = NULL;
    struct kg_policy_errors errors;
    struct kg_tls_identity tid;
    struct kg_identity *id = &tid.id;
    struct kg_policy_request req;
    struct kg_policy_decision match, d;
    struct kg_explain_target target;
    X509 *cert = NULL, *ca = NULL;
    char issuer[65] = "", password[KG_POLICY_MAX_PASSWORD + 2];
    char line[512];
    uint64_t n;
    int status;

    memset(&tid, 0, sizeof(tid));
    memset(&req, 0, sizeof(req));
    memset(&target, 0, sizeof(target));
    password[0] = '\0';
    status = kg_explain_parse(argc, argv, &o);
    if (status != 0) {
        status = status < 0 ? 0 : status; /* --help */
        goto out;
    }
    status = KG_EXPLAIN_USAGE;

    /* The request. */
    req.operation = kg_policy_operation_code(o.operation);
    if (req.operation == 0) {
        kg_explain_fail("unknown operation '%s' (KMIP 1.4 names, e.g. \"Get Attributes\")", o.operation);
        goto out;
    }
    if (o.object_type != NULL && (req.object_type = kg_policy_object_type_code(o.object_type)) == 0) {
        kg_explain_fail("unknown object type '%s' (e.g. \"Symmetric Key\")", o.object_type);
        goto out;
    }
    if (o.algorithm != NULL && (req.algorithm = kg_policy_algorithm_code(o.algorithm)) == 0) {
        kg_explain_fail("unknown algorithm '%s' (e.g. AES)", o.algorithm);
        goto out;
    }
    if (o.length != NULL) {
        if (!kg_explain_number(o.length, INT32_MAX, &n)) {
            kg_explain_fail("--length '%s' is not a number of bits", o.length);
            goto out;
        }
        req.length = (int32_t)n;
    }
    if (o.usage_mask != NULL) {
        uint32_t mask;

        if (!kg_explain_usage_mask(o.usage_mask, &mask)) {
            kg_explain_fail("--usage-mask '%s': a number or names like Encrypt,Decrypt", o.usage_mask);
            goto out;
        }
        req.usage_mask = (int32_t)mask;
        req.has_usage_mask = true;
    }
    if (o.live_objects != NULL) {
        if (!kg_explain_number(o.live_objects, UINT64_MAX, &n)) {
            kg_explain_fail("--live-objects '%s' is not a number", o.live_objects);
            goto out;
        }
        req.group_live_objects = n;
    }

    /* The identity, read exactly as the gateway reads it (kg_tls.c). */
    if (o.ca != NULL && (ca = kg_explain_read_cert(o.ca)) == NULL) {
        goto out;
    }
    if (o.cert != NULL) {
        if ((cert = kg_explain_read_cert(o.cert)) == NULL) {
            goto out;
        }
        if (ca != NULL && (X509_check_issued(ca, cert) != X509_V_OK || X509_verify(cert, X509_get0_pubkey(ca)) != 1)) {
            kg_explain_fail("%s was not issued by --ca: the gateway takes the issuer from the verified chain", o.cert);
            goto out;
        }
        if (kg_failed(kg_tls_identity_from_cert(cert, ca, &tid))) {
            printf("deny: the gateway gives this certificate no identity (a CN or OU that is over-long or holds "
                   "NUL, or more than %d OUs)\n",
                   KG_TLS_MAX_OUS);
            status = KG_EXPLAIN_DENY;
            goto out;
        }
    } else {
        id->cn = o.cn;
        id->ous = o.ous;
        id->ou_count = o.ou_count;
        if (ca != NULL) {
            if (kg_failed(kg_tls_fingerprint(ca, issuer))) {
                kg_explain_fail("cannot hash %s", o.ca);
                goto out;
            }
            id->issuer_fingerprint = issuer;
        }
    }
    if (ca == NULL && o.issuer_hex != NULL) {
        id->issuer_fingerprint = o.issuer_hex;
    }

    /* The policy. */
    if (kg_policy_load_file(o.policy, &policy, &errors) != 0) {
        for (size_t i = 0; i < errors.count; i++) {
            fprintf(stderr, "%s:%u:%u: %s\n", o.policy, errors.items[i].line, errors.items[i].column,
                    errors.items[i].message);
        }
        if (errors.overflow > 0) {
            fprintf(stderr, "%s: %zu more errors not shown\n", o.policy, errors.overflow);
        }
        fprintf(stderr, "kmipgw: policy explain: %s has errors; no decision\n", o.policy);
        goto out;
    }

    /* The target object and the wrapping key. */
    if (kg_explain_lookup(&o, &target) != 0) {
        goto out;
    }
    if (target.found) {
        req.object_owner = target.object.owner_group;
        if (o.object_type == NULL) {
            req.object_type = target.object.object_type;
        }
    } else {
        req.object_owner = o.owner;
    }
    if (req.object_type == 0 && (req.operation == 0x01 || req.operation == 0x03 || req.operation == 0x0A)) {
        req.object_type = 0x02; /* Symmetric Key: what vCenter and most clients ask for */
    }
    req.key_material = req.operation == 0x0A;
    req.wrapped = o.wrapped || o.wrapping_key != NULL;
    req.wrapping_key_uid = o.wrapping_key;
    req.wrapping_key_owner = o.wrapping_key_owner != NULL ? o.wrapping_key_owner
                             : target.wrapping_found     ? target.wrapping_owner
                                                         : NULL;
    if (o.username != NULL) {
        req.has_credential = true;
        req.username = o.username;
        req.username_len = strlen(o.username);
        if (o.password_file != NULL) {
            if (!kg_explain_read_password(o.password_file, password, sizeof(password))) {
                goto out;
            }
        } else if (o.password != NULL) {
            if (strlen(o.password) >= sizeof(password)) {
                kg_explain_fail("--password is longer than any the gateway accepts");
                goto out;
            }
            snprintf(password, sizeof(password), "%s", o.password);
        }
        req.password = password;
        req.password_len = strlen(password);
    }

    match = kg_policy_match_request(policy, id, &req);
    d = kg_policy_decide_request(policy, id, &req);
    kg_explain_print(policy, &o, id, &req, &target, &match);
    printf("%s\n", kg_policy_decision_format(policy, &d, line, sizeof(line)));
    status = d.verdict == KG_POLICY_ALLOW ? KG_EXPLAIN_OK_ALLOW : KG_EXPLAIN_DENY;
out:
    if (o.password != NULL) {
        /* Out of /proc/PID/cmdline as soon as it is no longer needed. */
        OPENSSL_cleanse(o.password, strlen(o.password));
    }
    OPENSSL_cleanse(password, sizeof(password));
    OPENSSL_cleanse(&target, sizeof(target));
    X509_free(cert);
    X509_free(ca);
    kg_policy_free(policy);
    return status;
}
