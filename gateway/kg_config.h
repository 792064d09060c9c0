/*
 * kg_config.h - gateway.yaml, parsed with libyaml.
 *
 * Relative paths in the file are resolved against the file's directory, so a
 * devenv directory can be moved. Unknown keys are errors (a typo in a
 * security setting must not be silently ignored); every error names
 * file:line:column.
 */
#ifndef KG_CONFIG_H
#define KG_CONFIG_H

#include <stdint.h>

#include "kg_result.h"

/* Larger configuration files are refused unread. */
#define KG_CONFIG_MAX_FILE_BYTES (1024u * 1024u)

/*
 * Accepted ranges (inclusive); a value outside is an error, never clamped:
 *   listen.port                  1 .. 65535
 *   hsm.sessions                 1 .. 1024
 *   hsm.token_label              1 .. 32 bytes (CK_TOKEN_INFO.label)
 *   hsm.pin_env                  [A-Za-z_][A-Za-z0-9_]*
 *   limits.max_message_bytes     1024 .. 16777216 (16 MiB)
 *   limits.max_depth             4 .. 64
 *   limits.max_items             16 .. 1048576
 *   limits.max_batch_items       1 .. 4096
 *   limits.workers               1 .. 1024
 *   limits.max_pending           1 .. 65536
 *   limits.handshake_timeout_ms  100 .. 600000 (10 minutes)
 *   limits.idle_timeout_ms       1000 .. 86400000 (1 day)
 *   limits.max_connections       1 .. 1000000
 *   limits.max_connections_per_ip 1 .. 1000000
 *   limits.request_timeout_ms    100 .. 600000 (10 minutes)
 *   limits.async_max_pending     0 .. 65536 (0: never answer Operation Pending)
 *   limits.async_per_connection  1 .. 4096
 *   limits.async_lifetime_ms     100 .. 86400000 (1 day)
 *   testing.interop              true or false (default false; test benches only)
 *   metrics.listen               ADDRESS:PORT or [IPV6]:PORT, port 1 .. 65535;
 *                                absent or empty: no metrics listener (default)
 * Integers are plain decimal digits. Strings are non-empty, at most 4096
 * bytes, without control characters. Paths (tls.* but ciphers, hsm.module,
 * hsm.pin_file, store.path, policy.path, audit.path, pki.*) are made absolute against the
 * directory of the configuration file; hsm.module too, so the gateway never
 * lets dlopen() search library paths for its PKCS#11 module.
 */
/* Where a secondary listener binds. */
struct kg_config_endpoint {
    char *address; /* NULL: the listener is off */
    uint16_t port;
};

struct kg_config {
    /* listen: */
    char *listen_address; /* default 127.0.0.1 */
    uint16_t listen_port; /* default 5696 */

    /* tls: */
    char *tls_certificate; /* PEM, required */
    char *tls_key;         /* PEM path, or a pkcs11: URI kept verbatim (kg_p11_uri.h); required */
    char *tls_client_ca;   /* PEM bundle, required */
    char *tls_ciphers;     /* TLS 1.2 cipher list; NULL = built-in default */
    char *tls_crl;         /* PEM CRL(s) checked against client certificates; NULL = none */

    /* hsm: */
    char *hsm_module;      /* PKCS#11 module path, required */
    char *hsm_token_label; /* required */
    char *hsm_pin_file;    /* one of pin_file / pin_env is required */
    char *hsm_pin_env;
    char *hsm_mwk_label;   /* default "kmipgw-mwk" */
    uint32_t hsm_sessions; /* default 8 */

    /* store: */
    char *store_path;      /* the store's location: the SQLite file, or store_url (kg_store_open) */
    char *store_url;       /* postgresql:// URL, instead of a file; may hold a password: never log */

    /* policy: */
    char *policy_path;     /* required */

    /* audit: */
    char *audit_path;      /* JSON lines; NULL = stderr only */

    /* pki: the client CA that `kmipgw pki` signs with (kg_pki.h). Only the
     * pki commands read these; serve never opens the CA key. */
    char *pki_ca_cert;     /* PEM; default tls.client_ca (the first cert there that matches ca_key) */
    char *pki_ca_key;      /* PEM, mode 0600; NULL = the pki commands refuse to run */

    /* limits: */
    uint32_t max_message_bytes; /* default 65536 */
    uint32_t max_depth;         /* default 16 */
    uint32_t max_items;         /* default 4096 */
    uint32_t max_batch_items;   /* default 64 */
    uint32_t workers;           /* default 16 */
    uint32_t max_pending;       /* requests waiting for a worker, default 256 */
    uint32_t handshake_timeout_ms; /* default 10000 */
    uint32_t idle_timeout_ms;      /* default 30000 */
    uint32_t max_connections;      /* open connections in all, default 4096 */
    uint32_t max_connections_per_ip; /* from one client address, default 512 */
    uint32_t request_timeout_ms;   /* a request's HSM and store work, default 10000 */
    /* Asynchronous operations (kg_async.h): pending in all (default 1024),
     * per connection (default 16), and how long one waits for its Poll
     * (default 300000 ms). */
    uint32_t async_max_pending;
    uint32_t async_per_connection;
    uint32_t async_lifetime_ms;
    /* testing.interop: answer the KMIP 2.1 Interop operation, which the
     * OASIS conformance vectors send and a production server SHALL NOT
     * offer (section 6.1.26). Default false. */
    bool testing_interop;

    /* metrics: Prometheus /metrics and /health over plain HTTP
     * (kg_metrics_http.h); address NULL = off, the default. */
    struct kg_config_endpoint metrics_listen;
};

/*
 * Load `path`. The caller owns *out (kg_config_free). On error *out is NULL
 * and kg_error_text() holds "file:line:column: message".
 */
kg_result kg_config_load(const char *path, struct kg_config **out) KG_WARN_UNUSED;
/* Frees every string and the struct. Accepts NULL. */
void kg_config_free(struct kg_config *cfg);

#endif
