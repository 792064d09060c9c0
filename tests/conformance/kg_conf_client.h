/*
 * kg_conf_client.h - a small blocking mutual-TLS KMIP client for the
 * conformance runner: one connection, one request at a time, every socket
 * operation bounded by a timeout.
 */
#ifndef KG_CONF_CLIENT_H
#define KG_CONF_CLIENT_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "kg_result.h"

/* Largest response accepted (the declared length is checked before reading). */
#define KG_CONF_MAX_RESPONSE (16u * 1024u * 1024u)

struct kg_conf_tls {
    SSL_CTX *ctx;        /* owned */
    const char *host;    /* borrowed: address to connect to and name to verify */
    const char *port;    /* borrowed */
    int timeout_ms;
};

struct kg_conf_conn {
    int fd;
    SSL *ssl; /* owned */
};

/*
 * A client context trusting `ca_file` and presenting `cert_file`/`key_file`.
 * The caller owns tls->ctx (kg_conf_tls_cleanup). Errors: KG_ERR_TLS with a
 * detail naming the file.
 */
kg_result kg_conf_tls_init(struct kg_conf_tls *tls, const char *ca_file, const char *cert_file,
                           const char *key_file) KG_WARN_UNUSED;
void kg_conf_tls_cleanup(struct kg_conf_tls *tls);

/* Connect and handshake; the server certificate must verify for tls->host.
 * The caller owns *conn afterwards (kg_conf_close). */
kg_result kg_conf_connect(const struct kg_conf_tls *tls, struct kg_conf_conn *conn) KG_WARN_UNUSED;

/*
 * Send `len` bytes and read one whole TTLV message back (header, then the
 * declared length, at most KG_CONF_MAX_RESPONSE). *resp is malloc'ed and
 * owned by the caller (free()); NULL on failure. KG_ERR_CLOSED when the
 * server closed, KG_ERR_TIMEOUT, KG_ERR_TLS, KG_ERR_TTLV_* for a bad header.
 */
kg_result kg_conf_roundtrip(struct kg_conf_conn *conn, const uint8_t *req, uint32_t len, uint8_t **resp,
                            uint32_t *resp_len) KG_WARN_UNUSED;

/* Close (best-effort close_notify) and free; accepts a closed conn. */
void kg_conf_close(struct kg_conf_conn *conn);

#endif
