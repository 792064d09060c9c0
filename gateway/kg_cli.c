/* kg_cli.c - kmipgw serve | init | policy check | version, and the table
 * of the other commands (kg_cli_*.c). */
#include "kg_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_audit.h"
#include "kg_config.h"
#include "kg_gateway.h"
#include "kg_p11.h"
#include "kg_policy.h"
#include "kg_metrics_http.h"
#include "kg_server.h"
#include "kg_store.h"
#include "kg_tls.h"

#define KG_VERSION "0.1.0"

static const char kg_usage[] =
    "usage: kmipgw serve --config FILE     run the KMIP gateway in the foreground\n"
    "       kmipgw init --config FILE      create the master wrapping and blob MAC keys and the store;\n"
    "                                      seal blobs stored before blob binding (idempotent)\n"
    "       kmipgw policy check FILE       check a policy file; every error as file:line:column\n"
    "       kmipgw policy explain ...      would this client be allowed this operation, and why\n"
    "       kmipgw audit verify FILE       check the audit log's hash chain\n"
    "       kmipgw rotate-master --config FILE [--batch N] [--retire-old]\n"
    "                                      new master key generation; re-wrap every key under it\n"
    "       kmipgw backup --config FILE OUT.db\n"
    "                                      online snapshot of the store into a new SQLite file\n"
    "       kmipgw restore --config FILE IN.db\n"
    "                                      load a backup into the (empty) configured store\n"
    "       kmipgw keys report --config FILE [--audit FILE ...] [--unused-days N]\n"
    "                          [--format text|csv|json] [--group G]\n"
    "                                      every key with its vSphere tags, freshness and last use\n"
    "       kmipgw ttlv to-xml | to-hex    TTLV hex on stdin to KMIP XML on stdout, or back\n"
    "       kmipgw pki sign-csr --config FILE --group NAME [--days N] [--out FILE] [--force] CSR\n"
    "                                      sign a client's CSR (vCenter's \"KMS signs the CSR\") with\n"
    "                                      the client CA, as a member of policy group NAME\n"
    "       kmipgw pki server-cert --config FILE --name DNS|IP [--name ...] --key-out KEY --out CERT\n"
    "                              [--key-type rsa3072|ec-p256] [--days N] [--force]\n"
    "                                      a new TLS key and certificate for this gateway\n"
    "       kmipgw version\n";

void kg_cli_error(const char *what)
{
    const char *text = kg_error_text();

    fprintf(stderr, "kmipgw: %s: %s\n", what, text[0] ? text : kg_error_name(kg_errno()));
}

const char **kg_cli_option_slot(const struct kg_cli_option *table, size_t count, void *opts, const char *arg)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(arg, table[i].name) == 0) {
            return (const char **)(void *)((char *)opts + table[i].offset);
        }
    }
    return NULL;
}

void kg_cli_print_policy_errors(const char *path, const struct kg_policy_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++) {
        fprintf(stderr, "%s:%u:%u: %s\n", path, errors->items[i].line, errors->items[i].column,
                errors->items[i].message);
    }
    if (errors->overflow > 0) {
        fprintf(stderr, "%s: %zu more errors not shown\n", path, errors->overflow);
    }
}

/* Load config, PIN and token; the PIN is wiped as soon as login is done. */
int kg_cli_open_hsm(const char *config_path, bool require_mwk, struct kg_config **cfg, struct kg_p11 **p11)
{
    struct kg_secret *pin = NULL;
    struct kg_p11_config pc;
    kg_result rc;

    if (kg_failed(kg_config_load(config_path, cfg))) {
        kg_cli_error("configuration");
        return 1;
    }
    if (kg_failed(kg_secret_read_pin((*cfg)->hsm_pin_file, (*cfg)->hsm_pin_env, &pin))) {
        kg_cli_error("HSM PIN");
        return 1;
    }
    pc = (struct kg_p11_config){
        .module_path = (*cfg)->hsm_module,
        .token_label = (*cfg)->hsm_token_label,
        .mwk_label = (*cfg)->hsm_mwk_label,
        .max_sessions = (*cfg)->hsm_sessions,
    };
    rc = kg_p11_open(&pc, pin, require_mwk, p11);
    kg_secret_free(pin);
    if (kg_failed(rc)) {
        kg_cli_error("HSM");
        return 1;
    }
    return 0;
}

static int kg_cli_init(const char *config_path)
{
    struct kg_config *cfg = NULL;
    struct kg_p11 *p11 = NULL;
    struct kg_store *store = NULL;
    bool created = false;
    uint64_t sealed = 0;
    int status = 1;

    if (kg_cli_open_hsm(config_path, false, &cfg, &p11) != 0) {
        goto out;
    }
    if (kg_failed(kg_p11_init_mwk(p11, &created))) {
        kg_cli_error("creating the master wrapping key");
        goto out;
    }
    printf("master wrapping key '%s' on token '%s': %s\n", cfg->hsm_mwk_label, cfg->hsm_token_label,
           created ? "created" : "already present");
    if (kg_failed(kg_p11_init_mac(p11, &created))) {
        kg_cli_error("creating the blob MAC key");
        goto out;
    }
    printf("blob MAC key '%s-mac' on token '%s': %s\n", cfg->hsm_mwk_label, cfg->hsm_token_label,
           created ? "created" : "already present");
    if (kg_failed(kg_store_open(cfg->store_path, &store))) {
        kg_cli_error("store");
        goto out;
    }
    if (kg_failed(kg_cli_seal_store(p11, store, &sealed))) {
        kg_cli_error("sealing stored blobs");
        goto out;
    }
    printf("store %s: ready; %llu blob%s sealed to their objects\n", kg_store_location_text(cfg->store_path), (unsigned long long)sealed,
           sealed == 1 ? "" : "s");
    status = 0;
out:
    kg_store_close(store);
    kg_p11_close(p11);
    kg_config_free(cfg);
    return status;
}

/*
 * Serve only a store whose every blob is bound to its object: the MAC key
 * must be on the token, and no row may lack its tag (one written before
 * blob binding). The simple safe rule: `kmipgw init` seals them first.
 */
static int kg_cli_check_sealed(struct kg_p11 *p11, struct kg_store *store, const char *store_path)
{
    uint64_t unsealed = 0;

    if (kg_failed(kg_p11_mac_check(p11))) {
        kg_cli_error("HSM");
        return 1;
    }
    if (kg_failed(kg_store_count_unsealed(store, &unsealed))) {
        kg_cli_error("store");
        return 1;
    }
    if (unsealed > 0) {
        fprintf(stderr,
                "kmipgw: store %s has %llu key blob%s not yet bound to their objects (written before blob "
                "binding); run kmipgw init --config FILE to seal them; not starting\n",
                kg_store_location_text(store_path), (unsigned long long)unsealed, unsealed == 1 ? "" : "s");
        return 1;
    }
    return 0;
}

static int kg_cli_serve(const char *config_path)
{
    struct kg_config *cfg = NULL;
    struct kg_p11 *p11 = NULL;
    struct kg_store *store = NULL;
    struct kg_audit *audit = NULL;
    struct kg_committer *committer = NULL;
    struct kg_metrics_http *metrics = NULL;
    struct kg_policy *policy = NULL;
    struct kg_policy_errors errors;
    struct kg_gateway gw;
    SSL_CTX *ssl_ctx = NULL;
    int status = 1;

    /* No core dumps and no ptrace: key bytes pass through this process. */
    kg_secret_process_harden();
    memset(&gw, 0, sizeof(gw));
    if (kg_cli_open_hsm(config_path, true, &cfg, &p11) != 0) {
        goto out;
    }
    /* Which MWK wrapping mechanism discovery chose (kg_p11_mech.c): an
     * operator moving between tokens sees what protects the store. */
    fprintf(stderr, "hsm: wrapping keys with %s\n", kg_p11_mwk_wrap_mechanism_text(p11));
    if (kg_policy_load_file(cfg->policy_path, &policy, &errors) != 0) {
        kg_cli_print_policy_errors(cfg->policy_path, &errors);
        fprintf(stderr, "kmipgw: policy %s has errors; not starting\n", cfg->policy_path);
        goto out;
    }
    /* Open once here so a schema migration runs before any worker starts. */
    if (kg_failed(kg_store_open(cfg->store_path, &store))) {
        kg_cli_error("store");
        goto out;
    }
    if (kg_cli_check_sealed(p11, store, cfg->store_path) != 0) {
        goto out;
    }
    if (kg_failed(kg_audit_open(cfg->audit_path, &audit))) {
        kg_cli_error("audit log");
        goto out;
    }
    kg_audit_event(audit, "start", "kmipgw " KG_VERSION);
    if (kg_failed(kg_tls_ctx_new(cfg, p11, &ssl_ctx))) {
        kg_cli_error("TLS");
        goto out;
    }
    gw.config = cfg;
    gw.p11 = p11;
    gw.audit = audit;
    gw.limits = (struct kg_ttlv_limits){
        .max_message_len = cfg->max_message_bytes,
        .max_depth = cfg->max_depth,
        .max_items = cfg->max_items,
    };
    if (kg_failed(kg_gateway_init(&gw, policy))) {
        policy = NULL;
        kg_cli_error("policy");
        goto out;
    }
    policy = NULL;
    if (kg_failed(kg_committer_open(cfg->store_path, &committer))) {
        kg_cli_error("store writer");
        goto out;
    }
    gw.committer = committer;
    if (kg_failed(kg_metrics_http_start(cfg, p11, &metrics))) {
        kg_cli_error("metrics listener");
        goto out;
    }
    if (kg_failed(kg_server_run(cfg, &gw, ssl_ctx))) {
        kg_cli_error("server");
    } else {
        status = 0;
    }
out:
    kg_metrics_http_stop(metrics);
    kg_committer_close(committer);
    kg_gateway_cleanup(&gw);
    kg_policy_free(policy);
    SSL_CTX_free(ssl_ctx);
    kg_audit_close(audit);
    kg_store_close(store);
    kg_p11_close(p11);
    kg_config_free(cfg);
    return status;
}

static int kg_cli_policy_check(const char *path)
{
    struct kg_policy *policy = NULL;
    struct kg_policy_errors errors;

    if (kg_policy_load_file(path, &policy, &errors) != 0) {
        kg_cli_print_policy_errors(path, &errors);
        return 1;
    }
    printf("%s: ok, %zu group%s\n", path, policy->group_count, policy->group_count == 1 ? "" : "s");
    for (size_t i = 0; i < policy->group_count; i++) {
        const struct kg_policy_group *g = &policy->groups[i];
        printf("  %s (OU=%s): export %s, scope %s\n", g->name, g->ou != NULL ? g->ou : "-",
               kg_policy_export_text(g->export_mode), kg_policy_scope_text(g->scope));
    }
    kg_policy_free(policy);
    return 0;
}

int kg_cli_main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[2], "--config") == 0) {
        if (strcmp(argv[1], "serve") == 0) {
            return kg_cli_serve(argv[3]);
        }
        if (strcmp(argv[1], "init") == 0) {
            return kg_cli_init(argv[3]);
        }
    }
    if (argc == 4 && strcmp(argv[1], "policy") == 0 && strcmp(argv[2], "check") == 0) {
        return kg_cli_policy_check(argv[3]);
    }
    if (argc >= 3 && strcmp(argv[1], "policy") == 0 && strcmp(argv[2], "explain") == 0) {
        return kg_cli_policy_explain(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "rotate-master") == 0) {
        return kg_cli_rotate_master(argc - 1, argv + 1);
    }
    if (argc >= 3 && strcmp(argv[1], "audit") == 0 && strcmp(argv[2], "verify") == 0) {
        return kg_cli_audit_verify(argc - 2, argv + 2);
    }
    if (argc >= 2 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0)) {
        return kg_cli_backup(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "pki") == 0) {
        return kg_cli_pki(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "keys") == 0) {
        return kg_cli_keys(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "ttlv") == 0) {
        return kg_cli_ttlv(argc - 1, argv + 1);
    }
    if (argc == 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("kmipgw %s\n", KG_VERSION);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        fputs(kg_usage, stdout);
        return 0;
    }
    fputs(kg_usage, stderr);
    return 2;
}
