/*
 * kg_server.c - listener, bounded worker pool, one TLS connection at a time
 * per worker.
 *
 * The accept loop (the main thread) polls the listening socket and a
 * signalfd. Accepted sockets go into a bounded queue; when it is full the
 * connection is closed at once rather than queued without limit. Each
 * worker owns one SQLite connection and serves one client connection from
 * handshake to close, with kernel socket timeouts bounding the handshake and
 * idle time, so a silent client (vCenter's reachability probes) costs a
 * worker for at most the handshake timeout.
 *
 * This is the foundation's concurrency model; the performance issue replaces
 * it with an event loop in front of the same kg_gateway_process.
 */
#include "kg_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "kg_audit.h"
#include "kg_tls.h"

struct kg_server {
    const struct kg_config *cfg;
    struct kg_gateway *gw;
    SSL_CTX *ssl_ctx;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    int *queue; /* ring of accepted fds */
    uint32_t queue_cap, queue_head, queue_len;
    bool stopping;
    int *active; /* per worker: the fd being served, -1 if none */

    pthread_t *threads;
    uint32_t thread_count;
};

struct kg_worker {
    struct kg_server *srv;
    uint32_t index;
};

static void kg_server_set_timeout(int fd, uint32_t ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Read exactly `len` bytes; false on EOF, timeout or TLS error. */
static bool kg_server_read_full(SSL *ssl, uint8_t *buf, uint32_t len)
{
    uint32_t got = 0;

    while (got < len) {
        int n = SSL_read(ssl, buf + got, (int)(len - got));
        if (n <= 0) {
            return false;
        }
        got += (uint32_t)n;
    }
    return true;
}

static bool kg_server_write_full(SSL *ssl, const uint8_t *buf, uint32_t len)
{
    uint32_t put = 0;

    while (put < len) {
        int n = SSL_write(ssl, buf + put, (int)(len - put));
        if (n <= 0) {
            return false;
        }
        put += (uint32_t)n;
    }
    return true;
}

/*
 * Serve one request: frame, process, answer. Returns false when the
 * connection must close. The request lives in locked memory (a Register
 * carries key bytes, a header may carry a password) and is wiped; so is the
 * response (a Get answer carries key bytes).
 */
static bool kg_server_one_request(struct kg_server *srv, struct kg_store *store, SSL *ssl,
                                  const struct kg_tls_identity *who)
{
    uint8_t header[KG_TTLV_HEADER_LEN];
    struct kg_secret *req = NULL;
    struct kg_ttlv_writer resp = { 0 };
    uint32_t total = 0;
    bool close = true;

    if (!kg_server_read_full(ssl, header, sizeof(header))) {
        return false;
    }
    if (kg_failed(kg_ttlv_message_length(header, &total)) || total > srv->cfg->max_message_bytes) {
        /* No framing we can trust, or a length over the cap: close before
         * allocating anything for it. */
        kg_log("warn", "closing connection of CN=%s: bad or oversized message header (%u bytes declared)", who->cn,
               total);
        return false;
    }
    if (kg_failed(kg_secret_alloc(total, &req))) {
        kg_log("error", "cannot allocate locked memory for a request: %s", kg_error_name(kg_errno()));
        return false;
    }
    memcpy(req->data, header, sizeof(header));
    req->len = total;
    if (!kg_server_read_full(ssl, req->data + sizeof(header), total - (uint32_t)sizeof(header))) {
        goto out;
    }
    if (kg_failed(kg_ttlv_writer_init(&resp, srv->cfg->max_message_bytes, true))) {
        goto out;
    }
    if (kg_failed(kg_gateway_process(srv->gw, store, &who->id, req->data, total, &resp, &close))) {
        kg_log("error", "cannot answer CN=%s: %s at %s", who->cn, kg_error_name(kg_errno()), kg_error_debug());
        close = true;
        goto out;
    }
    if (!kg_server_write_full(ssl, resp.buf, resp.len)) {
        close = true;
    }
out:
    kg_ttlv_writer_cleanup(&resp);
    kg_secret_free(req);
    return !close;
}

static void kg_server_serve(struct kg_server *srv, struct kg_store *store, int fd)
{
    struct kg_tls_identity *who = NULL;
    SSL *ssl = NULL;
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    kg_server_set_timeout(fd, srv->cfg->handshake_timeout_ms);
    ssl = SSL_new(srv->ssl_ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        goto out;
    }
    if (SSL_accept(ssl) != 1) {
        /* Refused or abandoned handshakes are routine (probes, untrusted
         * certificates while an administrator sets up trust): one line at
         * debug level would be a flood, so they are only counted by the
         * client's own error. */
        ERR_clear_error();
        goto out;
    }
    who = calloc(1, sizeof(*who));
    if (who == NULL || kg_failed(kg_tls_identity_from(ssl, who))) {
        kg_log("warn", "refusing a client whose certificate subject cannot be used as an identity");
        goto out;
    }
    kg_server_set_timeout(fd, srv->cfg->idle_timeout_ms);
    while (kg_server_one_request(srv, store, ssl, who)) {
    }
    (void)SSL_shutdown(ssl);
out:
    ERR_clear_error();
    SSL_free(ssl);
    free(who);
}

static void *kg_server_worker(void *arg)
{
    struct kg_worker *w = arg;
    struct kg_server *srv = w->srv;
    struct kg_store *store = NULL;

    if (kg_failed(kg_store_open(srv->cfg->store_path, &store))) {
        kg_log("error", "worker %u cannot open the store: %s", w->index, kg_error_text());
        return NULL;
    }
    for (;;) {
        int fd;

        pthread_mutex_lock(&srv->lock);
        while (srv->queue_len == 0 && !srv->stopping) {
            pthread_cond_wait(&srv->cond, &srv->lock);
        }
        if (srv->queue_len == 0 && srv->stopping) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        fd = srv->queue[srv->queue_head];
        srv->queue_head = (srv->queue_head + 1) % srv->queue_cap;
        srv->queue_len--;
        srv->active[w->index] = fd;
        pthread_mutex_unlock(&srv->lock);

        kg_server_serve(srv, store, fd);

        pthread_mutex_lock(&srv->lock);
        srv->active[w->index] = -1;
        pthread_mutex_unlock(&srv->lock);
        close(fd);
    }
    kg_store_close(store);
    return NULL;
}

static kg_result kg_server_listen(const struct kg_config *cfg, int *out_fd)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    char port[8];
    int fd = -1, one = 1, err;

    snprintf(port, sizeof(port), "%u", (unsigned)cfg->listen_port);
    err = getaddrinfo(cfg->listen_address, port, &hints, &res);
    if (err != 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("cannot resolve listen address %s: %s", cfg->listen_address, gai_strerror(err));
        return KG_RESULT_ERROR;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("cannot listen on %s:%s: %s", cfg->listen_address, port, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return KG_RESULT_ERROR;
    }
    freeaddrinfo(res);
    *out_fd = fd;
    return KG_RESULT_OK;
}

static void kg_server_enqueue(struct kg_server *srv, int fd)
{
    pthread_mutex_lock(&srv->lock);
    if (srv->queue_len == srv->queue_cap) {
        pthread_mutex_unlock(&srv->lock);
        /* Busy: refuse now rather than let the queue grow. */
        close(fd);
        return;
    }
    srv->queue[(srv->queue_head + srv->queue_len) % srv->queue_cap] = fd;
    srv->queue_len++;
    pthread_cond_signal(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

static void kg_server_reload_policy(struct kg_server *srv)
{
    struct kg_policy_errors errors;
    struct kg_policy *policy = NULL;

    if (kg_policy_load_file(srv->cfg->policy_path, &policy, &errors) != 0) {
        for (size_t i = 0; i < errors.count; i++) {
            kg_log("error", "policy reload refused: %s:%u:%u: %s", srv->cfg->policy_path, errors.items[i].line,
                   errors.items[i].column, errors.items[i].message);
        }
        kg_log("error", "policy reload refused; the previous policy stays in force");
        return;
    }
    kg_gateway_swap_policy(srv->gw, policy);
    kg_log("info", "policy reloaded from %s", srv->cfg->policy_path);
}

/* Stop accepting, let in-flight requests finish, wake idle readers. */
static void kg_server_drain(struct kg_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    for (uint32_t i = 0; i < srv->thread_count; i++) {
        if (srv->active[i] >= 0) {
            /* A reader blocked on an idle client sees EOF; a request being
             * processed still gets its response written. */
            (void)shutdown(srv->active[i], SHUT_RD);
        }
    }
    while (srv->queue_len > 0) {
        close(srv->queue[srv->queue_head]);
        srv->queue_head = (srv->queue_head + 1) % srv->queue_cap;
        srv->queue_len--;
    }
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

kg_result kg_server_run(const struct kg_config *cfg, struct kg_gateway *gw, SSL_CTX *ssl_ctx)
{
    struct kg_server srv = { .cfg = cfg, .gw = gw, .ssl_ctx = ssl_ctx };
    struct kg_worker *workers = NULL;
    sigset_t mask;
    int listen_fd = -1, sig_fd = -1;
    kg_result rc = KG_RESULT_OK;

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked before any worker starts, so only the signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    KG_ENSURE(sig_fd >= 0, KG_ERR_INTERNAL);

    KG_GOTO_GUARD(rc, kg_server_listen(cfg, &listen_fd));
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.cond, NULL);
    srv.queue_cap = cfg->max_pending;
    srv.queue = calloc(srv.queue_cap, sizeof(int));
    srv.active = calloc(cfg->workers, sizeof(int));
    srv.threads = calloc(cfg->workers, sizeof(pthread_t));
    workers = calloc(cfg->workers, sizeof(*workers));
    KG_GOTO_ENSURE(rc, srv.queue && srv.active && srv.threads && workers, KG_ERR_NOMEM);
    for (uint32_t i = 0; i < cfg->workers; i++) {
        srv.active[i] = -1;
        workers[i] = (struct kg_worker){ .srv = &srv, .index = i };
        if (pthread_create(&srv.threads[i], NULL, kg_server_worker, &workers[i]) != 0) {
            kg_server_drain(&srv);
            KG_GOTO_BAIL(rc, KG_ERR_INTERNAL);
        }
        srv.thread_count++;
    }
    kg_log("info", "serving KMIP on %s:%u with %u workers", cfg->listen_address, (unsigned)cfg->listen_port,
           cfg->workers);

    for (;;) {
        struct pollfd pfd[2] = { { .fd = listen_fd, .events = POLLIN }, { .fd = sig_fd, .events = POLLIN } };
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    kg_server_reload_policy(&srv);
                } else {
                    kg_log("info", "signal %u: draining and exiting", si.ssi_signo);
                    break;
                }
            }
        }
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                kg_server_enqueue(&srv, fd);
            }
        }
    }
    kg_server_drain(&srv);
out:
    for (uint32_t i = 0; i < srv.thread_count; i++) {
        pthread_join(srv.threads[i], NULL);
    }
    if (listen_fd >= 0) {
        close(listen_fd);
    }
    if (sig_fd >= 0) {
        close(sig_fd);
    }
    free(srv.queue);
    free(srv.active);
    free(srv.threads);
    free(workers);
    return rc;
}
