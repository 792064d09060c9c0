/* kg_conf_client.c - blocking mutual-TLS KMIP client for kg-conformance. */
#include "kg_conf_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "kg_ttlv.h"

static kg_result kg_conf_tls_error(const char *what)
{
    char buf[256];
    unsigned long e = ERR_get_error();

    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    kg_error_set(KG_ERR_TLS, __FILE__, __LINE__);
    kg_error_detail("%s: %s", what, e ? buf : "failed");
    return KG_RESULT_ERROR;
}

kg_result kg_conf_tls_init(struct kg_conf_tls *tls, const char *ca_file, const char *cert_file,
                           const char *key_file)
{
    tls->ctx = SSL_CTX_new(TLS_client_method());
    if (tls->ctx == NULL) {
        return kg_conf_tls_error("SSL_CTX_new");
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(tls->ctx, ca_file, NULL) != 1) {
        return kg_conf_tls_error(ca_file);
    }
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, cert_file) != 1) {
        return kg_conf_tls_error(cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(tls->ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(tls->ctx) != 1) {
        return kg_conf_tls_error(key_file);
    }
    return KG_RESULT_OK;
}

void kg_conf_tls_cleanup(struct kg_conf_tls *tls)
{
    SSL_CTX_free(tls->ctx);
    tls->ctx = NULL;
}

kg_result kg_conf_connect(const struct kg_conf_tls *tls, struct kg_conf_conn *conn)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    struct timeval tv = { .tv_sec = tls->timeout_ms / 1000, .tv_usec = (tls->timeout_ms % 1000) * 1000 };
    ASN1_OCTET_STRING *ip;
    int one = 1;
    int rc;

    conn->fd = -1;
    conn->ssl = NULL;
    rc = getaddrinfo(tls->host, tls->port, &hints, &ai);
    if (rc != 0) {
        kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
        kg_error_detail("%s:%s: %s", tls->host, tls->port, gai_strerror(rc));
        return KG_RESULT_ERROR;
    }
    conn->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn->fd < 0 || setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(conn->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
        kg_error_detail("connect %s:%s: %s", tls->host, tls->port, strerror(errno));
        freeaddrinfo(ai);
        kg_conf_close(conn);
        return KG_RESULT_ERROR;
    }
    freeaddrinfo(ai);
    (void)setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn->ssl = SSL_new(tls->ctx);
    if (conn->ssl == NULL || SSL_set_fd(conn->ssl, conn->fd) != 1) {
        kg_conf_close(conn);
        return kg_conf_tls_error("SSL_new");
    }
    /* Verify the server's name or address, as a real client would. */
    ip = a2i_IPADDRESS(tls->host);
    if (ip != NULL) {
        ASN1_OCTET_STRING_free(ip);
        rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl), tls->host);
    } else {
        rc = SSL_set1_host(conn->ssl, tls->host) == 1 && SSL_set_tlsext_host_name(conn->ssl, tls->host) == 1;
    }
    if (rc != 1 || SSL_connect(conn->ssl) != 1) {
        kg_conf_close(conn);
        return kg_conf_tls_error("TLS handshake");
    }
    return KG_RESULT_OK;
}

static kg_result kg_conf_io_error(SSL *ssl, int ret, const char *what)
{
    int err = SSL_get_error(ssl, ret);

    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) {
        kg_error_set(KG_ERR_CLOSED, __FILE__, __LINE__);
        kg_error_detail("%s: the server closed the connection", what);
        ERR_clear_error();
        return KG_RESULT_ERROR;
    }
    if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        kg_error_set(KG_ERR_TIMEOUT, __FILE__, __LINE__);
        kg_error_detail("%s: timed out", what);
        ERR_clear_error();
        return KG_RESULT_ERROR;
    }
    return kg_conf_tls_error(what);
}

static kg_result kg_conf_read_exact(SSL *ssl, uint8_t *buf, uint32_t n)
{
    uint32_t got = 0;

    while (got < n) {
        size_t r = 0;
        int ret;

        errno = 0;
        ret = SSL_read_ex(ssl, buf + got, n - got, &r);
        if (ret != 1) {
            return kg_conf_io_error(ssl, ret, "read");
        }
        got += (uint32_t)r;
    }
    return KG_RESULT_OK;
}

kg_result kg_conf_roundtrip(struct kg_conf_conn *conn, const uint8_t *req, uint32_t len, uint8_t **resp,
                            uint32_t *resp_len)
{
    uint8_t head[KG_TTLV_HEADER_LEN];
    uint32_t total = 0;
    size_t written = 0;
    uint8_t *buf;
    int ret;

    *resp = NULL;
    *resp_len = 0;
    KG_ENSURE(conn->ssl != NULL, KG_ERR_CLOSED);
    errno = 0;
    ret = SSL_write_ex(conn->ssl, req, len, &written);
    if (ret != 1 || written != len) {
        return kg_conf_io_error(conn->ssl, ret, "write");
    }
    KG_GUARD(kg_conf_read_exact(conn->ssl, head, sizeof(head)));
    KG_GUARD(kg_ttlv_message_length(head, &total));
    KG_ENSURE(total <= KG_CONF_MAX_RESPONSE, KG_ERR_TTLV_TOO_LONG);
    buf = malloc(total);
    KG_ENSURE(buf != NULL, KG_ERR_NOMEM);
    memcpy(buf, head, sizeof(head));
    if (kg_failed(kg_conf_read_exact(conn->ssl, buf + sizeof(head), total - (uint32_t)sizeof(head)))) {
        free(buf);
        return KG_RESULT_ERROR;
    }
    *resp = buf;
    *resp_len = total;
    return KG_RESULT_OK;
}

void kg_conf_close(struct kg_conf_conn *conn)
{
    if (conn->ssl != NULL) {
        (void)SSL_shutdown(conn->ssl);
        SSL_free(conn->ssl);
        conn->ssl = NULL;
    }
    if (conn->fd >= 0) {
        close(conn->fd);
        conn->fd = -1;
    }
    ERR_clear_error();
}
