/*
 * kg_config_test.c - gateway.yaml loading.
 *
 * Each error test asserts the whole "file:line:column: " prefix of
 * kg_error_text(): the position is the point of the message.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kg_config.h"
#include "kg_result.h"
#include "kg_test.h"

/* ---- helpers ------------------------------------------------------------ */

/* Source tree root: $KG_SOURCE_DIR under meson test, else found upwards from the cwd. */
static const char *kg_test_source_dir(void)
{
    static const char *const candidates[] = { ".", "..", "../..", "../../.." };
    static char found[1024];
    const char *env = getenv("KG_SOURCE_DIR");

    if (env != NULL && env[0] != '\0') {
        return env;
    }
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        snprintf(found, sizeof(found), "%s/gateway/kg_config.h", candidates[i]);
        if (access(found, R_OK) == 0) {
            snprintf(found, sizeof(found), "%s", candidates[i]);
            return found;
        }
    }
    return ".";
}

static char tmpdir[] = "/tmp/kg_config_test_XXXXXX";
static char tmpreal[PATH_MAX]; /* tmpdir with symlinks resolved, as the loader reports it */
static char cfg_path[sizeof(tmpdir) + 32];

/* Write `text` (len bytes) as <tmpdir>/gateway.yaml and return its path. */
static const char *write_config_len(const char *text, size_t len)
{
    FILE *f;

    snprintf(cfg_path, sizeof(cfg_path), "%s/gateway.yaml", tmpdir);
    f = fopen(cfg_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(fwrite(text, 1, len, f) == len);
    CU_ASSERT_FATAL(fclose(f) == 0);
    return cfg_path;
}

static const char *write_config(const char *text)
{
    return write_config_len(text, strlen(text));
}

/* The smallest valid configuration; tests append to or edit it. */
#define MINIMAL                                                                                                  \
    "tls:\n"                                                                                                     \
    "  certificate: server.crt\n"                                                                                \
    "  key: server.key\n"                                                                                        \
    "  client_ca: ca.crt\n"                                                                                      \
    "hsm:\n"                                                                                                     \
    "  module: lib/module.so\n"                                                                                  \
    "  token_label: tok\n"                                                                                       \
    "  pin_env: PIN\n"                                                                                           \
    "store:\n"                                                                                                   \
    "  path: db/kmipgw.db\n"                                                                                     \
    "policy:\n"                                                                                                  \
    "  path: /etc/kmipgw/policy.yaml\n"

/* Load `text`; it must fail at line:column with a message containing `needle`. */
static int expect_error(const char *text, unsigned line, unsigned column, const char *needle)
{
    struct kg_config *cfg = (struct kg_config *)1;
    const char *path = write_config(text);
    char prefix[256];
    kg_result r;
    int ok;

    kg_error_clear();
    r = kg_config_load(path, &cfg);
    snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", path, line, column);
    ok = kg_failed(r) && cfg == NULL && kg_errno() == KG_ERR_CONFIG &&
         strncmp(kg_error_text(), prefix, strlen(prefix)) == 0 && strstr(kg_error_text(), needle) != NULL;
    if (!ok) {
        fprintf(stderr, "\n  wanted '%s...%s'\n  got    '%s' (%s, errno %s)\n", prefix, needle, kg_error_text(),
                kg_failed(r) ? "failed" : "loaded", kg_error_name(kg_errno()));
    }
    if (kg_ok(r)) {
        kg_config_free(cfg);
    }
    return ok;
}

/* ---- loading ------------------------------------------------------------- */

static void test_load_conf_example(void)
{
    char path[PATH_MAX + 32], dir[PATH_MAX], want[PATH_MAX + 64];
    struct kg_config *cfg = (struct kg_config *)1;

    CU_ASSERT_FATAL((size_t)snprintf(path, sizeof(path), "%s/conf", kg_test_source_dir()) < sizeof(path));
    CU_ASSERT_PTR_NOT_NULL_FATAL(realpath(path, dir));
    CU_ASSERT_FATAL((size_t)snprintf(path, sizeof(path), "%s/conf/gateway.yaml", kg_test_source_dir()) <
                    sizeof(path));

    kg_error_clear();
    if (kg_failed(kg_config_load(path, &cfg))) {
        fprintf(stderr, "\n  %s\n", kg_error_text());
        CU_FAIL_FATAL("conf/gateway.yaml does not load");
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->listen_address, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->listen_port, 5696);

    snprintf(want, sizeof(want), "%s/pki/server.crt", dir);
    CU_ASSERT_STRING_EQUAL(cfg->tls_certificate, want);
    snprintf(want, sizeof(want), "%s/pki/server.key", dir);
    CU_ASSERT_STRING_EQUAL(cfg->tls_key, want);
    snprintf(want, sizeof(want), "%s/pki/ca.crt", dir);
    CU_ASSERT_STRING_EQUAL(cfg->tls_client_ca, want);
    CU_ASSERT_PTR_NULL(cfg->tls_ciphers); /* commented out in the example */
    CU_ASSERT_PTR_NULL(cfg->tls_crl);     /* likewise */

    CU_ASSERT_STRING_EQUAL(cfg->hsm_module, "/usr/lib/softhsm/libsofthsm2.so"); /* absolute: unchanged */
    CU_ASSERT_STRING_EQUAL(cfg->hsm_token_label, "kmipgw");
    snprintf(want, sizeof(want), "%s/hsm.pin", dir);
    CU_ASSERT_STRING_EQUAL(cfg->hsm_pin_file, want);
    CU_ASSERT_PTR_NULL(cfg->hsm_pin_env);
    CU_ASSERT_STRING_EQUAL(cfg->hsm_mwk_label, "kmipgw-mwk");
    CU_ASSERT_EQUAL(cfg->hsm_sessions, 8);

    snprintf(want, sizeof(want), "%s/kmipgw.db", dir);
    CU_ASSERT_STRING_EQUAL(cfg->store_path, want);
    snprintf(want, sizeof(want), "%s/policy.yaml", dir);
    CU_ASSERT_STRING_EQUAL(cfg->policy_path, want);
    CU_ASSERT_EQUAL(access(cfg->policy_path, R_OK), 0); /* conf/policy.yaml sits next to it */
    snprintf(want, sizeof(want), "%s/audit.log", dir);
    CU_ASSERT_STRING_EQUAL(cfg->audit_path, want);

    CU_ASSERT_EQUAL(cfg->max_message_bytes, 65536);
    CU_ASSERT_EQUAL(cfg->max_depth, 16);
    CU_ASSERT_EQUAL(cfg->max_items, 4096);
    CU_ASSERT_EQUAL(cfg->max_batch_items, 64);
    CU_ASSERT_EQUAL(cfg->workers, 16);
    CU_ASSERT_EQUAL(cfg->max_pending, 256);
    CU_ASSERT_EQUAL(cfg->async_max_pending, 1024);
    CU_ASSERT_EQUAL(cfg->async_per_connection, 16);
    CU_ASSERT_EQUAL(cfg->async_lifetime_ms, 300000);
    CU_ASSERT_EQUAL(cfg->handshake_timeout_ms, 10000);
    CU_ASSERT_EQUAL(cfg->idle_timeout_ms, 30000);
    CU_ASSERT_EQUAL(cfg->max_connections, 4096);
    CU_ASSERT_EQUAL(cfg->max_connections_per_ip, 512);
    CU_ASSERT_EQUAL(cfg->request_timeout_ms, 10000);
    CU_ASSERT_PTR_NULL(cfg->metrics_listen.address); /* commented out in the example */
    kg_config_free(cfg);
}

static void test_defaults(void)
{
    struct kg_config *cfg = (struct kg_config *)1;
    const char *path = write_config(MINIMAL);
    char want[PATH_MAX + 64];

    CU_ASSERT_FATAL(kg_ok(kg_config_load(path, &cfg)));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->listen_address, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->listen_port, 5696);
    CU_ASSERT_PTR_NULL(cfg->tls_ciphers);
    CU_ASSERT_PTR_NULL(cfg->tls_crl);
    CU_ASSERT_PTR_NULL(cfg->hsm_pin_file);
    CU_ASSERT_STRING_EQUAL(cfg->hsm_pin_env, "PIN");
    CU_ASSERT_STRING_EQUAL(cfg->hsm_mwk_label, "kmipgw-mwk");
    CU_ASSERT_EQUAL(cfg->hsm_sessions, 8);
    CU_ASSERT_PTR_NULL(cfg->audit_path);
    CU_ASSERT_EQUAL(cfg->max_message_bytes, 65536);
    CU_ASSERT_EQUAL(cfg->max_depth, 16);
    CU_ASSERT_EQUAL(cfg->max_items, 4096);
    CU_ASSERT_EQUAL(cfg->max_batch_items, 64);
    CU_ASSERT_EQUAL(cfg->workers, 16);
    CU_ASSERT_EQUAL(cfg->max_pending, 256);
    CU_ASSERT_EQUAL(cfg->handshake_timeout_ms, 10000);
    CU_ASSERT_EQUAL(cfg->idle_timeout_ms, 30000);
    CU_ASSERT_EQUAL(cfg->max_connections, 4096);
    CU_ASSERT_EQUAL(cfg->max_connections_per_ip, 512);
    CU_ASSERT_EQUAL(cfg->request_timeout_ms, 10000);
    CU_ASSERT_FALSE(cfg->testing_interop); /* never on unless asked */
    CU_ASSERT_PTR_NULL(cfg->metrics_listen.address); /* no metrics listener unless asked */
    /* Relative paths, the module's included, hang off the config file's directory. */
    snprintf(want, sizeof(want), "%s/lib/module.so", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->hsm_module, want);
    snprintf(want, sizeof(want), "%s/server.crt", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->tls_certificate, want);
    snprintf(want, sizeof(want), "%s/db/kmipgw.db", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->store_path, want);
    CU_ASSERT_STRING_EQUAL(cfg->policy_path, "/etc/kmipgw/policy.yaml");
    kg_config_free(cfg);
    kg_config_free(NULL);
}

static void test_all_keys_and_bounds(void)
{
    struct kg_config *cfg = NULL;
    const char *path = write_config("listen: { address: '::1', port: 65535 }\n"
                                    "tls: { certificate: /c, key: /k, client_ca: /ca, ciphers: \"HIGH:!aNULL\" }\n"
                                    "hsm: { module: /m.so, token_label: 'Partition Ünicode 32 bytes...', "
                                    "pin_file: p, pin_env: KMIPGW_PIN, mwk_label: mwk-2, sessions: 1024 }\n"
                                    "store: { path: s }\n"
                                    "policy: { path: p.yaml }\n"
                                    "audit: { path: /var/log/kmipgw/audit.log }\n"
                                    "limits: { max_message_bytes: 16777216, max_depth: 4, max_items: 1048576,\n"
                                    "          max_batch_items: 4096, workers: 1, max_pending: 65536,\n"
                                    "          handshake_timeout_ms: 100, idle_timeout_ms: 86400000,\n"
                                    "          max_connections: 1000000, max_connections_per_ip: 1,\n"
                                    "          request_timeout_ms: 600000 }\n"
                                    "testing: { interop: true }\n");

    if (kg_failed(kg_config_load(path, &cfg))) {
        fprintf(stderr, "\n  %s\n", kg_error_text());
        CU_FAIL_FATAL("full config does not load");
    }
    CU_ASSERT_STRING_EQUAL(cfg->listen_address, "::1");
    CU_ASSERT_EQUAL(cfg->listen_port, 65535);
    CU_ASSERT_STRING_EQUAL(cfg->tls_ciphers, "HIGH:!aNULL");
    CU_ASSERT_STRING_EQUAL(cfg->hsm_token_label, "Partition Ünicode 32 bytes...");
    CU_ASSERT_STRING_EQUAL(cfg->hsm_pin_env, "KMIPGW_PIN");
    CU_ASSERT_STRING_EQUAL(cfg->hsm_mwk_label, "mwk-2");
    CU_ASSERT_EQUAL(cfg->hsm_sessions, 1024);
    CU_ASSERT_STRING_EQUAL(cfg->audit_path, "/var/log/kmipgw/audit.log");
    CU_ASSERT_EQUAL(cfg->max_message_bytes, 16u * 1024 * 1024);
    CU_ASSERT_EQUAL(cfg->max_depth, 4);
    CU_ASSERT_EQUAL(cfg->max_items, 1048576);
    CU_ASSERT_EQUAL(cfg->max_batch_items, 4096);
    CU_ASSERT_EQUAL(cfg->workers, 1);
    CU_ASSERT_EQUAL(cfg->max_pending, 65536);
    CU_ASSERT_EQUAL(cfg->handshake_timeout_ms, 100);
    CU_ASSERT_EQUAL(cfg->idle_timeout_ms, 86400000);
    CU_ASSERT_EQUAL(cfg->max_connections, 1000000);
    CU_ASSERT_EQUAL(cfg->max_connections_per_ip, 1);
    CU_ASSERT_EQUAL(cfg->request_timeout_ms, 600000);
    CU_ASSERT_TRUE(cfg->testing_interop);
    kg_config_free(cfg);
}

/* A config named by a relative path still yields absolute paths (the daemon may chdir later). */
/* tls.crl: optional; a path like the other tls files (relative to the config file, or absolute). */
static void test_tls_crl(void)
{
    struct kg_config *cfg = NULL;
    char want[PATH_MAX + 64];
    const char *path = write_config("tls:\n"
                                    "  certificate: server.crt\n"
                                    "  key: server.key\n"
                                    "  client_ca: ca.crt\n"
                                    "  crl: pki/ca.crl\n"
                                    "hsm: {module: m.so, token_label: tok, pin_env: PIN}\n"
                                    "store: {path: s}\n"
                                    "policy: {path: p}\n");

    if (kg_failed(kg_config_load(path, &cfg))) {
        fprintf(stderr, "\n  %s\n", kg_error_text());
        CU_FAIL_FATAL("config with tls.crl does not load");
    }
    snprintf(want, sizeof(want), "%s/pki/ca.crl", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->tls_crl, want);
    kg_config_free(cfg);

    path = write_config("tls: {certificate: c, key: k, client_ca: ca, crl: /etc/kmipgw/crl.pem}\n"
                        "hsm: {module: m.so, token_label: tok, pin_env: PIN}\n"
                        "store: {path: s}\n"
                        "policy: {path: p}\n");
    cfg = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_config_load(path, &cfg)));
    CU_ASSERT_STRING_EQUAL(cfg->tls_crl, "/etc/kmipgw/crl.pem");
    kg_config_free(cfg);

    /* Whether the file exists and parses is checked when the TLS context is built (startup). */
    CU_ASSERT(expect_error("tls:\n  crl: ''\n", 2, 8, "tls.crl is empty"));
    CU_ASSERT(expect_error("tls:\n  crl: [a.crl, b.crl]\n", 2, 8, "tls.crl must be a single value, not a list"));
    CU_ASSERT(expect_error("tls:\n  crl: a.crl\n  crl: b.crl\n", 3, 3, "tls.crl given twice (first at line 2)"));
}

/* pki: optional; ca_cert defaults to tls.client_ca (the CA that signs clients is the one trusted for them). */
static void test_pki_section(void)
{
    struct kg_config *cfg = NULL;
    char want[PATH_MAX + 64];
    const char *path = write_config(MINIMAL);

    CU_ASSERT_FATAL(kg_ok(kg_config_load(path, &cfg)));
    snprintf(want, sizeof(want), "%s/ca.crt", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->pki_ca_cert, want);
    CU_ASSERT_PTR_NULL(cfg->pki_ca_key);
    kg_config_free(cfg);

    path = write_config(MINIMAL "pki:\n  ca_key: pki/ca.key\n  ca_cert: /etc/kmipgw/issuing.crt\n");
    cfg = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_config_load(path, &cfg)));
    snprintf(want, sizeof(want), "%s/pki/ca.key", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->pki_ca_key, want);
    CU_ASSERT_STRING_EQUAL(cfg->pki_ca_cert, "/etc/kmipgw/issuing.crt");
    kg_config_free(cfg);

    CU_ASSERT(expect_error(MINIMAL "pki:\n  ca_keys: k\n", 14, 3,
                           "unknown key 'ca_keys' in pki (known: ca_cert, ca_key)"));
    CU_ASSERT(expect_error(MINIMAL "pki:\n  ca_key: ''\n", 14, 11, "pki.ca_key is empty"));
}

static void test_relative_config_path(void)
{
    struct kg_config *cfg = NULL;
    char old[PATH_MAX], want[PATH_MAX + 64];

    write_config(MINIMAL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(old, sizeof(old)));
    CU_ASSERT_FATAL(chdir(tmpdir) == 0);
    CU_ASSERT(kg_ok(kg_config_load("gateway.yaml", &cfg)));
    CU_ASSERT_FATAL(chdir(old) == 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    snprintf(want, sizeof(want), "%s/server.key", tmpreal);
    CU_ASSERT_STRING_EQUAL(cfg->tls_key, want);
    CU_ASSERT_EQUAL(cfg->tls_key[0], '/');
    kg_config_free(cfg);
}

/* metrics.listen: ADDRESS:PORT, IPv6 in brackets; empty is the same as absent (off). */
static void test_metrics_listen(void)
{
    static const struct {
        const char *value;
        const char *address; /* NULL: off */
        uint16_t port;
    } ok[] = {
        { "127.0.0.1:9696", "127.0.0.1", 9696 },
        { "'[::1]:1'", "::1", 1 },
        { "\"[fe80::1%eth0]:65535\"", "fe80::1%eth0", 65535 },
        { "metrics.example.net:9100", "metrics.example.net", 9100 },
        { "''", NULL, 0 },
        { "", NULL, 0 },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct kg_config *cfg = NULL;
        char text[1024];

        snprintf(text, sizeof(text), MINIMAL "metrics:\n  listen: %s\n", ok[i].value);
        if (kg_failed(kg_config_load(write_config(text), &cfg))) {
            fprintf(stderr, "\n  %s: %s\n", ok[i].value, kg_error_text());
            CU_FAIL("metrics.listen refused");
            continue;
        }
        if (ok[i].address == NULL) {
            CU_ASSERT_PTR_NULL(cfg->metrics_listen.address);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->metrics_listen.address);
            CU_ASSERT_STRING_EQUAL(cfg->metrics_listen.address, ok[i].address);
            CU_ASSERT_EQUAL(cfg->metrics_listen.port, ok[i].port);
        }
        kg_config_free(cfg);
    }
}

static void test_err_metrics_listen(void)
{
    /* Bad addresses. */
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 9696\n", 14, 11,
                           "metrics.listen must be ADDRESS:PORT (127.0.0.1:9696, [::1]:9696), not '9696'"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: ':9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: '::1:9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: '[::1]9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: '[]:9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: '[::1:9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 'http://host:9696'\n", 14, 11, "must be ADDRESS:PORT"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 'ho/st:9696'\n", 14, 11,
                           "metrics.listen must start with an IP address or host name, not 'ho/st:9696'"));
    /* Bad ports. */
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: '127.0.0.1:'\n", 14, 11,
                           "the port of metrics.listen must be a whole number from 1 to 65535, not ''"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 127.0.0.1:0\n", 14, 11,
                           "the port of metrics.listen is 0, out of range 1..65535"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 127.0.0.1:65536\n", 14, 11, "is 65536, out of range"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 127.0.0.1:http\n", 14, 11, "not 'http'"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: 127.0.0.1:-1\n", 14, 11, "not '-1'"));
    /* Structure, as for every key. */
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  listen: [127.0.0.1, 9696]\n", 14, 11,
                           "metrics.listen must be a single value, not a list"));
    CU_ASSERT(expect_error(MINIMAL "metrics:\n  port: 9696\n", 14, 3, "unknown key 'port' in metrics (known: listen)"));
}

/* ---- errors -------------------------------------------------------------- */

static void test_err_unknown_keys(void)
{
    CU_ASSERT(expect_error(MINIMAL "loggin:\n  level: 1\n", 13, 1, "unknown section 'loggin'"));
    CU_ASSERT(expect_error(MINIMAL "listen:\n  addr: 0.0.0.0\n", 14, 3,
                           "unknown key 'addr' in listen (known: address, port)"));
    CU_ASSERT(expect_error("tls:\n  certificate: a\n  verify_client: no\n", 3, 3,
                           "unknown key 'verify_client' in tls (known: certificate, key, client_ca, ciphers, crl)"));
}

static void test_err_missing_required(void)
{
    /* Section present, key absent: the position is the section's. */
    CU_ASSERT(expect_error("tls:\n"
                           "  certificate: server.crt\n"
                           "  client_ca: ca.crt\n"
                           "hsm: {module: m, token_label: t, pin_file: p}\n"
                           "store: {path: s}\n"
                           "policy: {path: p}\n",
                           1, 1, "missing required key tls.key"));
    /* Section absent: the position is the top level's. */
    CU_ASSERT(expect_error("\n\n"
                           "  tls: {certificate: c, key: k, client_ca: ca}\n"
                           "  hsm: {module: m, token_label: t, pin_file: p}\n"
                           "  policy: {path: p}\n",
                           3, 3, "missing required key store.path (a SQLite file) or store.url (PostgreSQL)"));
    /* store: one of path and url, and a url is PostgreSQL's. */
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "hsm: {module: m, token_label: t, pin_file: p}\n"
                           "store: {path: s, url: 'postgresql:///k'}\n"
                           "policy: {path: p}\n",
                           3, 1, "store.path and store.url are both given; choose one"));
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "hsm: {module: m, token_label: t, pin_file: p}\n"
                           "store: {url: 'mysql://secret@db/k'}\n"
                           "policy: {path: p}\n",
                           3, 1, "store.url must be a postgresql:// URL"));
    /* A URL is never quoted (it may hold a password), even when it is refused. */
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "hsm: {module: m, token_label: t, pin_file: p}\n"
                           "store: {url: \"postgresql://u:hunter2\\t@db/k\"}\n"
                           "policy: {path: p}\n",
                           3, 14, "store.url must be text without control characters"));
    CU_ASSERT(strstr(kg_error_text(), "hunter2") == NULL);
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "hsm: {module: m, token_label: t, pin_file: p}\n"
                           "store: {path: s}\n"
                           "policy: {}\n",
                           4, 1, "missing required key policy.path"));
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "store: {path: s}\n"
                           "hsm:\n"
                           "  token_label: t\n"
                           "  pin_file: p\n"
                           "policy: {path: p}\n",
                           3, 1, "missing required key hsm.module"));
    /* Neither PIN source. */
    CU_ASSERT(expect_error("tls: {certificate: c, key: k, client_ca: ca}\n"
                           "store: {path: s}\n"
                           "hsm:\n"
                           "  module: m\n"
                           "  token_label: t\n"
                           "policy: {path: p}\n",
                           3, 1, "missing required key hsm.pin_file or hsm.pin_env"));
}

static void test_err_out_of_range(void)
{
    CU_ASSERT(expect_error(MINIMAL "listen:\n  port: 0\n", 14, 9, "listen.port is 0, out of range 1..65535"));
    CU_ASSERT(expect_error(MINIMAL "listen:\n  port: 65536\n", 14, 9, "listen.port is 65536, out of range 1..65535"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: 0\n", 14, 12, "limits.workers is 0, out of range 1..1024"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: 1025\n", 14, 12, "out of range 1..1024"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_message_bytes: 1023\n", 14, 22, "out of range 1024..16777216"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_message_bytes: 16777217\n", 14, 22,
                           "out of range 1024..16777216"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_depth: 3\n", 14, 14, "limits.max_depth is 3, out of range 4..64"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_depth: 65\n", 14, 14, "out of range 4..64"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_items: 15\n", 14, 14, "out of range 16..1048576"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_batch_items: 4097\n", 14, 20, "out of range 1..4096"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_pending: 0\n", 14, 16, "out of range 1..65536"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  async_max_pending: 65537\n", 14, 22, "out of range 0..65536"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  async_per_connection: 0\n", 14, 25, "out of range 1..4096"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  async_lifetime_ms: 99\n", 14, 22, "out of range 100..86400000"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  handshake_timeout_ms: 99\n", 14, 25, "out of range 100..600000"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  idle_timeout_ms: 86400001\n", 14, 20, "out of range 1000..86400000"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_connections: 0\n", 14, 20, "out of range 1..1000000"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  max_connections_per_ip: 1000001\n", 14, 27, "out of range 1..1000000"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  request_timeout_ms: 99\n", 14, 23, "out of range 100..600000"));
    CU_ASSERT(expect_error("hsm: {sessions: 2000}\n", 1, 17, "hsm.sessions is 2000, out of range 1..1024"));
    /* Overflowing uint32 and uint64 must not wrap into range. */
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: 4294967297\n", 14, 12, "out of range"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: 18446744073709551617\n", 14, 12, "out of range"));
    /* Not a number at all. */
    CU_ASSERT(expect_error(MINIMAL "listen:\n  port: 5696x\n", 14, 9,
                           "listen.port must be a whole number from 1 to 65535, not '5696x'"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: -1\n", 14, 12, "not '-1'"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers: 0x10\n", 14, 12, "not '0x10'"));
    CU_ASSERT(expect_error(MINIMAL "limits:\n  workers:\n", 14, 11, "not ''"));
    /* A boolean is true or false, not yes, 1 or True. */
    CU_ASSERT(expect_error(MINIMAL "testing:\n  interop: yes\n", 14, 12, "testing.interop must be true or false"));
    CU_ASSERT(expect_error(MINIMAL "testing:\n  interop: 1\n", 14, 12, "must be true or false"));
    CU_ASSERT(expect_error(MINIMAL "testing:\n  interop: True\n", 14, 12, "must be true or false"));
}

static void test_err_bad_strings(void)
{
    CU_ASSERT(expect_error("hsm:\n  token_label: 'this label is longer than 32 bytes'\n", 2, 16,
                           "hsm.token_label is longer than 32 bytes"));
    CU_ASSERT(expect_error("hsm:\n  pin_env: 1PIN\n", 2, 12, "hsm.pin_env must be an environment variable name"));
    CU_ASSERT(expect_error("hsm:\n  pin_env: MY-PIN\n", 2, 12, "not 'MY-PIN'"));
    CU_ASSERT(expect_error("listen:\n  address: 'http://host/'\n", 2, 12, "an IP address or host name"));
    CU_ASSERT(expect_error("store:\n  path: ''\n", 2, 9, "store.path is empty"));
    CU_ASSERT(expect_error("store:\n  path:\n", 2, 8, "store.path is empty"));
    /* A NUL would cut the path short; an escape would reach the log: both refused, and not echoed raw. */
    CU_ASSERT(expect_error("store:\n  path: \"a\\0b\"\n", 2, 9,
                           "store.path must be text without control characters, not 'a?b'"));
    CU_ASSERT(expect_error("tls:\n  ciphers: \"\\e[2J\"\n", 2, 12, "not '?[2J'"));
}

static void test_err_bad_yaml(void)
{
    CU_ASSERT(expect_error("tls:\n\tcertificate: a\n", 2, 1,
                           "YAML syntax error: found character that cannot start any token"));
    CU_ASSERT(expect_error("listen: {port: 1\n", 2, 1, "YAML syntax error: did not find expected ',' or '}'"));
    CU_ASSERT(expect_error("listen:\n  port: 1\n bad: 2\n", 3, 2, "YAML syntax error"));
    /* libyaml reports the offending byte: the 0x28 that should have continued 0xC3. */
    CU_ASSERT(expect_error("listen:\n  address: \"\xc3\x28\"\n", 2, 14, "invalid trailing UTF-8 octet"));
    CU_ASSERT(expect_error(MINIMAL "---\nlisten: {port: 1}\n", 13, 1, "one YAML document"));
    CU_ASSERT(expect_error(MINIMAL "---\nlisten: {port: 1\n", 15, 1, "YAML syntax error"));
    CU_ASSERT(expect_error("", 1, 1, "the configuration is empty"));
    CU_ASSERT(expect_error("# comments only\n", 1, 1, "the configuration is empty"));
}

static void test_err_not_scalar(void)
{
    CU_ASSERT(expect_error("listen:\n  port: [5696]\n", 2, 9, "listen.port must be a single value, not a list"));
    CU_ASSERT(expect_error("tls:\n  certificate: {file: a}\n", 2, 16,
                           "tls.certificate must be a single value, not a mapping"));
    CU_ASSERT(expect_error("listen: 5696\n", 1, 9, "listen must be a mapping of settings, not a single value"));
    CU_ASSERT(expect_error("limits:\n  - workers: 4\n", 2, 3, "limits must be a mapping of settings, not a list"));
    CU_ASSERT(expect_error("audit:\n", 1, 7, "audit must be a mapping of settings, not a single value"));
    CU_ASSERT(expect_error("- tls\n", 1, 1, "the top level must be a mapping of sections"));
    CU_ASSERT(expect_error("[a]: 1\n", 1, 1, "a section name must be a single word, not a list"));
    CU_ASSERT(expect_error("tls:\n  {a: 1}: 2\n", 2, 3, "a key in tls must be a single word, not a mapping"));
}

static void test_err_duplicates(void)
{
    CU_ASSERT(expect_error("listen:\n  port: 1\n  port: 2\n", 3, 3, "listen.port given twice (first at line 2)"));
    CU_ASSERT(expect_error("listen: {port: 1}\nstore: {path: a}\nlisten: {address: b}\n", 3, 1,
                           "section listen given twice (first at line 1)"));
}

static void test_err_files(void)
{
    struct kg_config *cfg = (struct kg_config *)1;
    char *big;
    const char *path;

    kg_error_clear();
    CU_ASSERT(kg_failed(kg_config_load("/nonexistent/gateway.yaml", &cfg)));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    CU_ASSERT_STRING_EQUAL(kg_error_text(), "/nonexistent/gateway.yaml: cannot open: No such file or directory");

    CU_ASSERT(kg_failed(kg_config_load(tmpdir, &cfg)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
    CU_ASSERT(strstr(kg_error_text(), "not a regular file") != NULL);

    /* One byte over the cap: refused unread. Exactly at the cap: parsed. */
    big = malloc(KG_CONFIG_MAX_FILE_BYTES + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, '#', KG_CONFIG_MAX_FILE_BYTES + 1);
    memcpy(big, MINIMAL, strlen(MINIMAL));
    path = write_config_len(big, KG_CONFIG_MAX_FILE_BYTES + 1);
    CU_ASSERT(kg_failed(kg_config_load(path, &cfg)));
    CU_ASSERT(strstr(kg_error_text(), "larger than 1048576 bytes") != NULL);
    path = write_config_len(big, KG_CONFIG_MAX_FILE_BYTES);
    CU_ASSERT(kg_ok(kg_config_load(path, &cfg)));
    kg_config_free(cfg);
    free(big);

    CU_ASSERT(kg_failed(kg_config_load(NULL, &cfg)));
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_load_conf_example),
        KG_TEST(test_defaults),
        KG_TEST(test_all_keys_and_bounds),
        KG_TEST(test_relative_config_path),
        KG_TEST(test_tls_crl),
        KG_TEST(test_pki_section),
        KG_TEST(test_metrics_listen),
        KG_TEST(test_err_metrics_listen),
        KG_TEST(test_err_unknown_keys),
        KG_TEST(test_err_missing_required),
        KG_TEST(test_err_out_of_range),
        KG_TEST(test_err_bad_strings),
        KG_TEST(test_err_bad_yaml),
        KG_TEST(test_err_not_scalar),
        KG_TEST(test_err_duplicates),
        KG_TEST(test_err_files),
    };
    int failed;

    if (mkdtemp(tmpdir) == NULL || realpath(tmpdir, tmpreal) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    failed = kg_test_run("config", cases, sizeof(cases) / sizeof(cases[0]));
    snprintf(cfg_path, sizeof(cfg_path), "%s/gateway.yaml", tmpdir);
    unlink(cfg_path);
    rmdir(tmpdir);
    return failed;
}
