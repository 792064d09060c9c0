/*
 * kg_cli_pki.c - kmipgw pki sign-csr | server-cert: certificates from the
 * client CA that gateway.yaml's pki: section names (kg_pki.h builds them).
 *
 * sign-csr is vCenter's "KMS certificate signing request" trust option:
 * vCenter makes a key and a CSR, the officer signs the CSR here, vCenter
 * uploads the certificate. The officer names the policy group; the CSR's OU
 * is replaced by that group's OU, since the OU is what policy keys on. A
 * group the policy does not define, or one the certificate would not land
 * in once issued (a group bound by ca_sha256 to another CA, an OU shared by
 * two groups), is refused: such a certificate would be denied on every
 * request, and the officer should learn that now, not from vCenter.
 *
 * The CA key is read into locked memory (kg_secret_read_file, mode 0600 or
 * refused), parsed, and freed as soon as the one signature is made.
 *
 * Files are written whole or not at all: a temporary file in the same
 * directory, fsync, then link() (which never replaces an existing file) or,
 * with --force, rename(). A private key file is mode 0600 from its creation.
 *
 * Exit status: 0 done, 1 refused or failed, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "kg_cli.h"
#include "kg_config.h"
#include "kg_pki.h"
#include "kg_policy.h"
#include "kg_tls.h"

#define KG_PKI_USAGE 2

static const char kg_pki_usage[] =
    "usage: kmipgw pki sign-csr --config FILE --group NAME [--days N] [--out FILE] [--force] CSR\n"
    "       kmipgw pki server-cert --config FILE --name DNS|IP [--name ...] --key-out KEY --out CERT\n"
    "                              [--key-type rsa3072|ec-p256] [--days N] [--force]\n"
    "\n"
    "Both sign with the CA of gateway.yaml's pki: section: pki.ca_key (unencrypted PEM, mode 0600)\n"
    "and pki.ca_cert (default: tls.client_ca, the CA the gateway trusts for clients).\n"
    "\n"
    "sign-csr: vCenter's \"KMS certificate signing request\" option. Verifies the CSR's signature,\n"
    "refuses RSA keys under 2048 bits and EC curves other than P-256/P-384, and issues a client\n"
    "certificate (EKU clientAuth) with the CSR's CN and OU = the OU of policy group NAME, which\n"
    "must exist in the policy the config names; any OU the CSR asked for is replaced. PEM to\n"
    "--out, or stdout. Upload it to vCenter as the key provider's client certificate.\n"
    "\n"
    "server-cert: a new key (default rsa3072: the KMIP profiles' RSA suites need it) and a\n"
    "certificate with EKU serverAuth+clientAuth (ESXi needs both) and subjectAltName from each\n"
    "--name (IP address or DNS name; CN = the first). Point tls.certificate and tls.key at them.\n"
    "\n"
    "--days: validity, 1..3650, default 730. Existing files are not replaced without --force.\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage error.\n";

struct kg_pki_opts {
    const char *command; /* "sign-csr" or "server-cert" */
    const char *config;
    const char *group;
    const char *days_text;
    const char *out;
    const char *key_out;
    const char *key_type;
    const char *csr;
    const char *names[KG_PKI_MAX_NAMES];
    size_t name_count;
    bool force;
    uint32_t days;
};

/* A usage error: the message (a format string literal and its arguments), a pointer to --help, exit 2. */
#define KG_PKI_USAGE_ERROR(...) \
    (fprintf(stderr, "kmipgw pki: " __VA_ARGS__), fputs(" (kmipgw pki --help)\n", stderr), KG_PKI_USAGE)

/* Returns 0, -1 after --help, or KG_PKI_USAGE. */
static int kg_pki_parse(int argc, char **argv, struct kg_pki_opts *o)
{
    static const struct kg_cli_option common[] = {
        { "--config", offsetof(struct kg_pki_opts, config) },
        { "--days", offsetof(struct kg_pki_opts, days_text) },
        { "--out", offsetof(struct kg_pki_opts, out) },
    };
    static const struct kg_cli_option sign_only[] = {
        { "--group", offsetof(struct kg_pki_opts, group) },
    };
    static const struct kg_cli_option server_only[] = {
        { "--key-out", offsetof(struct kg_pki_opts, key_out) },
        { "--key-type", offsetof(struct kg_pki_opts, key_type) },
    };
    const int server = strcmp(o->command, "server-cert") == 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char **slot;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(kg_pki_usage, stdout);
            return -1;
        }
        if (strcmp(arg, "--force") == 0) {
            o->force = true;
            continue;
        }
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (server || o->csr != NULL) {
                return KG_PKI_USAGE_ERROR("%s: unexpected argument '%s'", o->command, arg);
            }
            o->csr = arg;
            continue;
        }
        if (i + 1 >= argc) {
            return KG_PKI_USAGE_ERROR("%s: %s needs a value (or is not an option)", o->command, arg);
        }
        if (server && strcmp(arg, "--name") == 0) {
            if (o->name_count == KG_PKI_MAX_NAMES) {
                return KG_PKI_USAGE_ERROR("server-cert: at most %u --name options", KG_PKI_MAX_NAMES);
            }
            o->names[o->name_count++] = argv[++i];
            continue;
        }
        slot = kg_cli_option_slot(common, sizeof(common) / sizeof(common[0]), o, arg);
        if (slot == NULL) {
            slot = server ? kg_cli_option_slot(server_only, sizeof(server_only) / sizeof(server_only[0]), o, arg)
                          : kg_cli_option_slot(sign_only, sizeof(sign_only) / sizeof(sign_only[0]), o, arg);
        }
        if (slot == NULL) {
            return KG_PKI_USAGE_ERROR("%s: unknown option %s", o->command, arg);
        }
        if (*slot != NULL) {
            return KG_PKI_USAGE_ERROR("%s: %s given twice", o->command, arg);
        }
        *slot = argv[++i];
    }
    o->days = KG_PKI_DEFAULT_DAYS;
    if (o->days_text != NULL) {
        char *end = NULL;
        unsigned long n;

        errno = 0;
        n = strtoul(o->days_text, &end, 10);
        if (o->days_text[0] < '0' || o->days_text[0] > '9' || errno != 0 || *end != '\0' || n < 1 ||
            n > KG_PKI_MAX_DAYS) {
            return KG_PKI_USAGE_ERROR("%s: --days must be a whole number from 1 to %u, not '%s'", o->command,
                                      KG_PKI_MAX_DAYS, o->days_text);
        }
        o->days = (uint32_t)n;
    }
    if (o->config == NULL) {
        return KG_PKI_USAGE_ERROR("%s: --config FILE is required", o->command);
    }
    if (!server && (o->group == NULL || o->csr == NULL)) {
        return KG_PKI_USAGE_ERROR("sign-csr: --group NAME and the CSR file are required");
    }
    if (server && (o->name_count == 0 || o->out == NULL || o->key_out == NULL)) {
        return KG_PKI_USAGE_ERROR("server-cert: --name, --key-out and --out are required");
    }
    if (server && strcmp(o->out, o->key_out) == 0) {
        return KG_PKI_USAGE_ERROR("server-cert: --key-out and --out must be different files");
    }
    if (server && o->key_type != NULL && strcmp(o->key_type, "rsa3072") != 0 &&
        strcmp(o->key_type, "ec-p256") != 0) {
        return KG_PKI_USAGE_ERROR("server-cert: --key-type is rsa3072 or ec-p256, not '%s'", o->key_type);
    }
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/* Refuse up front, before any key is made or read, a target that exists (a dangling link too). */
static kg_result kg_pki_target_free(const char *path, bool force)
{
    struct stat st;

    if (!force && lstat(path, &st) == 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%s exists: not replaced (--force replaces it)", path);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

static kg_result kg_pki_io_fail(int line, const char *what, const char *path)
{
    kg_error_set(KG_ERR_IO, __FILE__, line);
    kg_error_detail("cannot %s %s: %s", what, path, strerror(errno));
    return KG_RESULT_ERROR;
}

/*
 * Write `cert` (when not NULL) or else `key` as PEM to `path` with `mode`:
 * whole or not at all (see the top of this file). The key's PEM goes from
 * OpenSSL's encoder straight to the file descriptor, never into a buffer of
 * ours.
 */
static kg_result kg_pki_write(const char *path, mode_t mode, bool force, X509 *cert, EVP_PKEY *key)
{
    char tmp[4096];
    kg_result rc = KG_RESULT_OK;
    BIO *bio = NULL;
    bool tmp_gone = false; /* renamed into place */
    int fd = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp)) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("%.80s...: path too long", path);
        return KG_RESULT_ERROR;
    }
    /* mkstemp creates the file 0600, so a key is never readable by others, not even for a moment. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        return kg_pki_io_fail(__LINE__, "create a file next to", path);
    }
    if (fchmod(fd, mode) != 0) {
        rc = kg_pki_io_fail(__LINE__, "set the mode of", tmp);
        goto out;
    }
    bio = BIO_new_fd(fd, BIO_NOCLOSE);
    KG_GOTO_ENSURE(rc, bio != NULL, KG_ERR_NOMEM);
    if ((cert != NULL ? PEM_write_bio_X509(bio, cert) : PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) !=
            1 ||
        BIO_flush(bio) != 1) {
        rc = kg_pki_io_fail(__LINE__, "write", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = kg_pki_io_fail(__LINE__, "write", tmp);
        goto out;
    }
    /* link() fails with EEXIST instead of replacing: a file that appeared
     * since kg_pki_target_free is still not overwritten. */
    if ((force ? rename(tmp, path) : link(tmp, path)) != 0) {
        rc = kg_pki_io_fail(__LINE__, force ? "replace" : "create", path);
        goto out;
    }
    tmp_gone = force;
out:
    BIO_free(bio);
    if (fd >= 0) {
        close(fd);
    }
    if (!tmp_gone) {
        (void)unlink(tmp);
    }
    return rc;
}

/* ---- the commands ------------------------------------------------------- */

static const struct kg_policy_group *kg_pki_group(const struct kg_policy *policy, const char *name)
{
    for (size_t i = 0; i < policy->group_count; i++) {
        if (strcmp(policy->groups[i].name, name) == 0) {
            return &policy->groups[i];
        }
    }
    return NULL;
}

static void kg_pki_list_groups(const struct kg_policy *policy)
{
    fputs("kmipgw pki: groups with an OU in this policy:", stderr);
    for (size_t i = 0; i < policy->group_count; i++) {
        if (policy->groups[i].ou != NULL) {
            fprintf(stderr, " %s", policy->groups[i].name);
        }
    }
    fputs("\n", stderr);
}

/* The policy of `cfg`; NULL after printing its errors. The caller frees it. */
static struct kg_policy *kg_pki_policy(const struct kg_config *cfg)
{
    struct kg_policy *policy = NULL;
    struct kg_policy_errors errors;

    if (kg_policy_load_file(cfg->policy_path, &policy, &errors) != 0) {
        kg_cli_print_policy_errors(cfg->policy_path, &errors);
        fprintf(stderr, "kmipgw pki: policy %s has errors\n", cfg->policy_path);
        return NULL;
    }
    return policy;
}

/* Load the config and the CA. Returns 0, or 1 after printing why. The caller cleans up both. */
static int kg_pki_open(const struct kg_pki_opts *o, struct kg_config **cfg, struct kg_pki_ca *ca)
{
    memset(ca, 0, sizeof(*ca));
    if (kg_failed(kg_config_load(o->config, cfg))) {
        kg_cli_error("configuration");
        return 1;
    }
    if ((*cfg)->pki_ca_key == NULL) {
        fprintf(stderr, "kmipgw pki: %s has no pki.ca_key: name the client CA's private key there\n", o->config);
        return 1;
    }
    return 0;
}

static int kg_pki_load_ca(const struct kg_config *cfg, struct kg_pki_ca *ca)
{
    if (kg_failed(kg_pki_ca_load(cfg->pki_ca_cert, cfg->pki_ca_key, ca))) {
        kg_cli_error("pki: CA");
        return 1;
    }
    return 0;
}

/* The group the gateway will give `cert`, exactly as it does for a peer (kg_tls, kg_policy_match). */
static struct kg_policy_decision kg_pki_match(const struct kg_policy *policy, X509 *cert, X509 *ca_cert,
                                              bool *ok)
{
    struct kg_tls_identity ident;
    struct kg_policy_decision d = { 0 };

    *ok = kg_ok(kg_tls_identity_from_cert(cert, ca_cert, &ident));
    if (*ok) {
        d = kg_policy_match(policy, &ident.id);
    }
    return d;
}

static int kg_pki_sign_csr(const struct kg_pki_opts *o)
{
    struct kg_config *cfg = NULL;
    struct kg_policy *policy = NULL;
    const struct kg_policy_group *group;
    struct kg_policy_decision d;
    struct kg_pki_request req;
    struct kg_pki_ca ca;
    char cn[KG_PKI_MAX_CN + 1];
    char why[512];
    X509_REQ *csr = NULL;
    X509 *cert = NULL;
    bool matched = false;
    int status = 1;

    if (kg_pki_open(o, &cfg, &ca) != 0 || (policy = kg_pki_policy(cfg)) == NULL) {
        goto out;
    }
    group = kg_pki_group(policy, o->group);
    if (group == NULL || group->ou == NULL) {
        fprintf(stderr, "kmipgw pki: sign-csr: policy %s %s group '%s': every request of such a client would be "
                "denied; refused\n", cfg->policy_path, group == NULL ? "defines no" : "gives no ou: to", o->group);
        kg_pki_list_groups(policy);
        goto out;
    }
    if (o->out != NULL && kg_failed(kg_pki_target_free(o->out, o->force))) {
        kg_cli_error("pki: sign-csr");
        goto out;
    }
    if (kg_failed(kg_pki_csr_read(o->csr, &csr, cn))) {
        kg_cli_error("pki: sign-csr");
        goto out;
    }
    /* The CA key is read last and dropped first: it lives for one signature. */
    if (kg_pki_load_ca(cfg, &ca) != 0) {
        goto out;
    }
    req = (struct kg_pki_request){ .profile = KG_PKI_CLIENT, .cn = cn, .ou = group->ou, .days = o->days };
    if (kg_failed(kg_pki_issue(&ca, &req, X509_REQ_get0_pubkey(csr), &cert))) {
        kg_cli_error("pki: sign-csr");
        goto out;
    }
    EVP_PKEY_free(ca.key);
    ca.key = NULL;
    d = kg_pki_match(policy, cert, ca.cert, &matched);
    if (!matched || d.group != group) {
        fprintf(stderr, "kmipgw pki: sign-csr: the gateway would not put this certificate in group '%s': %s; "
                "refused\n", o->group, matched ? kg_policy_decision_format(policy, &d, why, sizeof(why))
                                               : "it would get no identity");
        goto out;
    }
    if (o->out == NULL) {
        status = PEM_write_X509(stdout, cert) == 1 && fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    if (kg_failed(kg_pki_write(o->out, 0644, o->force, cert, NULL))) {
        kg_cli_error("pki: sign-csr");
        goto out;
    }
    fprintf(stderr, "kmipgw pki: sign-csr: %s: CN=%s, OU=%s (group %s), %u days\n", o->out, cn, group->ou,
            group->name, o->days);
    status = 0;
out:
    X509_free(cert);
    X509_REQ_free(csr);
    kg_pki_ca_cleanup(&ca);
    kg_policy_free(policy);
    kg_config_free(cfg);
    return status;
}

/* A server certificate is also a client one (clientAuth): say so if policy would give it a group. */
static void kg_pki_warn_client_group(const struct kg_config *cfg, X509 *cert, X509 *ca_cert)
{
    struct kg_policy *policy = kg_pki_policy(cfg);
    struct kg_policy_decision d;
    bool matched = false;

    if (policy == NULL) {
        return;
    }
    d = kg_pki_match(policy, cert, ca_cert, &matched);
    if (matched && d.group != NULL) {
        fprintf(stderr, "kmipgw pki: server-cert: warning: as a client this certificate would be in group '%s' "
                "(policy %s names the group of certificates without an OU)\n", d.group->name, cfg->policy_path);
    }
    kg_policy_free(policy);
}

static int kg_pki_server_cert(const struct kg_pki_opts *o)
{
    struct kg_config *cfg = NULL;
    struct kg_pki_request req;
    struct kg_pki_ca ca;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    bool key_written = false;
    int status = 1;

    if (kg_pki_open(o, &cfg, &ca) != 0) {
        goto out;
    }
    if (kg_failed(kg_pki_target_free(o->key_out, o->force)) || kg_failed(kg_pki_target_free(o->out, o->force))) {
        kg_cli_error("pki: server-cert");
        goto out;
    }
    if (kg_failed(kg_pki_keygen(o->key_type != NULL && strcmp(o->key_type, "ec-p256") == 0 ? KG_PKI_KEY_EC_P256
                                                                                           : KG_PKI_KEY_RSA3072,
                                &key))) {
        kg_cli_error("pki: server-cert: key generation");
        goto out;
    }
    if (kg_pki_load_ca(cfg, &ca) != 0) {
        goto out;
    }
    req = (struct kg_pki_request){
        .profile = KG_PKI_SERVER, .cn = o->names[0], .names = o->names, .name_count = o->name_count, .days = o->days
    };
    if (kg_failed(kg_pki_issue(&ca, &req, key, &cert))) {
        kg_cli_error("pki: server-cert");
        goto out;
    }
    EVP_PKEY_free(ca.key);
    ca.key = NULL;
    kg_pki_warn_client_group(cfg, cert, ca.cert);
    if (kg_failed(kg_pki_write(o->key_out, 0600, o->force, NULL, key))) {
        kg_cli_error("pki: server-cert");
        goto out;
    }
    key_written = true;
    if (kg_failed(kg_pki_write(o->out, 0644, o->force, cert, NULL))) {
        kg_cli_error("pki: server-cert");
        goto out;
    }
    fprintf(stderr, "kmipgw pki: server-cert: %s and %s (%s, %u days, %zu name%s)\n", o->out, o->key_out,
            o->key_type != NULL ? o->key_type : "rsa3072", o->days, o->name_count, o->name_count == 1 ? "" : "s");
    status = 0;
out:
    /* No key without its certificate: a half-made pair would only confuse. */
    if (status != 0 && key_written) {
        (void)unlink(o->key_out);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    kg_pki_ca_cleanup(&ca);
    kg_config_free(cfg);
    return status;
}

int kg_cli_pki(int argc, char **argv)
{
    struct kg_pki_opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(kg_pki_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? KG_PKI_USAGE : 0;
    }
    o.command = argv[1];
    if (strcmp(o.command, "sign-csr") != 0 && strcmp(o.command, "server-cert") != 0) {
        return KG_PKI_USAGE_ERROR("unknown command '%s' (sign-csr, server-cert)", o.command);
    }
    rc = kg_pki_parse(argc - 1, argv + 1, &o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    return strcmp(o.command, "sign-csr") == 0 ? kg_pki_sign_csr(&o) : kg_pki_server_cert(&o);
}
