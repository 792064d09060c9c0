/*
 * kg_server.c - one event loop for TLS and framing, a bounded worker pool for
 * HSM and store work.
 *
 * The loop thread owns every socket: it accepts, drives non-blocking
 * handshakes, reads the 8-byte TTLV header, refuses a declared length over
 * the cap before allocating, reads the body into locked memory and hands the
 * complete request to a worker through a bounded queue. Workers run
 * kg_gateway_process (policy, PKCS#11, SQLite) and post the finished response
 * back through an eventfd; the loop writes it. One request is in flight per
 * connection. A full queue is answered "server busy" instead of growing; a
 * worker stuck in a hung HSM call is abandoned after request_timeout_ms and
 * the client answered, while other workers carry on.
 *
 * Deadlines (handshake, idle, request) are checked by a scan of all
 * connections at most every 100 ms: cheap next to a TLS record, and it keeps
 * the loop free of timer bookkeeping.
 */
#include "kg_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "kg_audit.h"
#include "kg_metrics.h"
#include "kg_msg.h"
#include "kg_tls.h"

enum kg_conn_state {
    KG_CONN_HANDSHAKE,
    KG_CONN_READ,  /* waiting for or reading a request */
    KG_CONN_BUSY,  /* a worker has the request */
    KG_CONN_WRITE, /* sending the response */
};

struct kg_job;
struct kg_ip_count;

struct kg_conn {
    uint64_t id; /* unique for the process's life: owns its pending operations */
    int fd;
    SSL *ssl;
    enum kg_conn_state state;
    uint64_t deadline_ms;
    uint32_t events; /* current epoll interest */
    uint8_t header[KG_TTLV_HEADER_LEN];
    uint32_t header_got;
    struct kg_secret *req; /* locked; the request being read */
    uint32_t req_total;
    uint32_t req_got;
    struct kg_ttlv_writer resp; /* locked; the response being written */
    uint32_t resp_sent;
    bool close_after_write;
    struct kg_request_partial partial; /* for answers the loop writes itself */
    struct kg_tls_identity *who;
    struct kg_job *job;
    struct kg_ip_count *ip;
    bool closed; /* on the dead list: freed once the current epoll batch is done */
    struct kg_conn *prev, *next;
};

struct kg_job {
    struct kg_conn *conn; /* NULL once the loop abandoned it */
    uint64_t conn_id;
    struct kg_secret *req;
    uint32_t len;
    struct kg_tls_identity who; /* a copy: the connection may go first */
    struct kg_ttlv_writer resp;
    bool ok;
    bool close;
    struct kg_job *next;
};

/* Open connections per client address, for max_connections_per_ip. */
struct kg_ip_count {
    uint8_t addr[16];
    uint32_t count;
    struct kg_ip_count *next;
};

#define KG_IP_BUCKETS 1024

struct kg_server {
    const struct kg_config *cfg;
    struct kg_gateway *gw;
    SSL_CTX *ssl_ctx;
    int epfd, listen_fd, sig_fd, done_fd;

    struct kg_conn *conns; /* all open connections */
    struct kg_conn *dead;  /* closed during this epoll batch (linked by next) */
    uint32_t conn_count;
    uint64_t last_conn_id; /* the event loop's alone */
    uint32_t max_conns; /* limits.max_connections, or fewer if descriptors are short */
    struct kg_ip_count *ips[KG_IP_BUCKETS];

    pthread_mutex_t lock; /* guards the two queues and the flags below */
    pthread_cond_t cond;
    struct kg_job *todo_head, *todo_tail;
    uint32_t todo_len;
    struct kg_job *done;
    bool stopping;
    uint32_t workers_running;
    pthread_t *threads;
    uint32_t thread_count;
};

static uint64_t kg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- per-address connection counts ---- */

static void kg_ip_key(int fd, uint8_t out[16])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(out, 0, 16);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        /* IPv4 as an IPv4-mapped IPv6 address: one key space for both. */
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(out, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    }
}

/* FNV-1a over the address: the bucket of its count. */
static uint32_t kg_ip_bucket(const uint8_t addr[16])
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < 16; i++) {
        h = (h ^ addr[i]) * 16777619u;
    }
    return h % KG_IP_BUCKETS;
}

static struct kg_ip_count *kg_ip_acquire(struct kg_server *srv, const uint8_t addr[16])
{
    uint32_t b = kg_ip_bucket(addr);
    struct kg_ip_count *e;

    for (e = srv->ips[b]; e != NULL; e = e->next) {
        if (memcmp(e->addr, addr, 16) == 0) {
            break;
        }
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            return NULL;
        }
        memcpy(e->addr, addr, 16);
        e->next = srv->ips[b];
        srv->ips[b] = e;
    }
    if (e->count >= srv->cfg->max_connections_per_ip) {
        return NULL;
    }
    e->count++;
    return e;
}

static void kg_ip_release(struct kg_server *srv, struct kg_ip_count *ip)
{
    struct kg_ip_count **pp;

    if (ip == NULL || --ip->count > 0) {
        return;
    }
    for (pp = &srv->ips[kg_ip_bucket(ip->addr)]; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ip) {
            *pp = ip->next;
            free(ip);
            return;
        }
    }
}

/* ---- connections ---- */

static void kg_conn_set_events(struct kg_server *srv, struct kg_conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    if (c->events != events) {
        (void)epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->events = events;
    }
}

static void kg_conn_close(struct kg_server *srv, struct kg_conn *c)
{
    if (c->job != NULL) {
        /* The worker still holds the job: it is freed when it comes back. */
        c->job->conn = NULL;
    }
    (void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    /* Nobody is left to poll them. (A job of this connection still with a
     * worker may yet defer one: it expires, kg_async.h.) */
    kg_gateway_connection_closed(srv->gw, c->id);
    if (c->ssl != NULL && c->state != KG_CONN_HANDSHAKE) {
        (void)SSL_shutdown(c->ssl);
    }
    SSL_free(c->ssl);
    ERR_clear_error();
    close(c->fd);
    kg_secret_free(c->req);
    kg_ttlv_writer_cleanup(&c->resp);
    if (c->who != NULL) {
        OPENSSL_cleanse(c->who, sizeof(*c->who));
        free(c->who);
    }
    kg_ip_release(srv, c->ip);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->conn_count--;
    kg_metrics_connection_closed();
    /* Not freed yet: a later event of the same epoll batch may still carry
     * this pointer. kg_server_reap frees it after the batch. */
    c->closed = true;
    c->fd = -1;
    c->ssl = NULL;
    c->prev = NULL;
    c->next = srv->dead;
    srv->dead = c;
}

static void kg_server_reap(struct kg_server *srv)
{
    while (srv->dead != NULL) {
        struct kg_conn *c = srv->dead;
        srv->dead = c->next;
        free(c);
    }
}

static void kg_conn_drive(struct kg_server *srv, struct kg_conn *c);

/* Queue an answer the loop built itself (busy, timeout) for writing. */
static void kg_conn_answer_error(struct kg_server *srv, struct kg_conn *c, int code, const char *detail)
{
    kg_ttlv_writer_cleanup(&c->resp);
    kg_error_set(code, __FILE__, __LINE__);
    kg_error_detail("%s", detail);
    if (kg_failed(kg_ttlv_writer_init(&c->resp, srv->cfg->max_message_bytes, false)) ||
        kg_failed(kg_msg_write_decode_failure(&c->resp, &c->partial, (int64_t)time(NULL)))) {
        kg_conn_close(srv, c);
        return;
    }
    c->resp_sent = 0;
    c->state = KG_CONN_WRITE;
    kg_conn_drive(srv, c);
}

static void kg_conn_submit(struct kg_server *srv, struct kg_conn *c)
{
    struct kg_request *scratch = NULL;
    struct kg_job *job = NULL;
    bool queued = false;

    /* What the loop may need to answer by itself (busy, timeout) is read
     * now, while it owns the request: version, operation and batch ID. */
    scratch = malloc(sizeof(*scratch));
    if (scratch != NULL) {
        /* Failure is fine here: the worker will answer it properly, and
         * `partial` holds whatever could be read. */
        if (kg_failed(kg_msg_decode_request(c->req->data, c->req_total, &srv->gw->limits,
                                            srv->cfg->max_batch_items, scratch, &c->partial))) {
            kg_error_clear();
        }
        OPENSSL_cleanse(scratch, sizeof(*scratch));
        free(scratch);
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL) {
        kg_conn_close(srv, c);
        return;
    }
    job->conn = c;
    job->conn_id = c->id;
    job->req = c->req;
    job->len = c->req_total;
    kg_tls_identity_copy(&job->who, c->who);

    pthread_mutex_lock(&srv->lock);
    if (srv->todo_len < srv->cfg->max_pending) {
        if (srv->todo_tail != NULL) {
            srv->todo_tail->next = job;
        } else {
            srv->todo_head = job;
        }
        srv->todo_tail = job;
        srv->todo_len++;
        pthread_cond_signal(&srv->cond);
        queued = true;
    }
    pthread_mutex_unlock(&srv->lock);

    if (!queued) {
        OPENSSL_cleanse(&job->who, sizeof(job->who));
        free(job);
        kg_log("warn", "worker queue full (%u requests): answering busy", srv->cfg->max_pending);
        kg_conn_answer_error(srv, c, KG_ERR_HSM_BUSY, "server busy, retry later");
        return;
    }
    c->req = NULL; /* the job owns it now */
    c->job = job;
    c->state = KG_CONN_BUSY;
    c->deadline_ms = kg_now_ms() + srv->cfg->request_timeout_ms;
    kg_conn_set_events(srv, c, 0);
}

/* Start reading the next request (or finish one). Returns false on close. */
static bool kg_conn_read(struct kg_server *srv, struct kg_conn *c)
{
    for (;;) {
        uint8_t *dst;
        uint32_t want;
        int n;

        if (c->header_got < KG_TTLV_HEADER_LEN) {
            dst = c->header + c->header_got;
            want = KG_TTLV_HEADER_LEN - c->header_got;
        } else {
            dst = c->req->data + c->req_got;
            want = c->req_total - c->req_got;
        }
        n = SSL_read(c->ssl, dst, (int)want);
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err == SSL_ERROR_WANT_READ) {
                kg_conn_set_events(srv, c, EPOLLIN);
                return true;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                kg_conn_set_events(srv, c, EPOLLOUT);
                return true;
            }
            return false; /* closed by the peer, or a TLS error */
        }
        if (c->header_got < KG_TTLV_HEADER_LEN) {
            c->header_got += (uint32_t)n;
            if (c->header_got < KG_TTLV_HEADER_LEN) {
                continue;
            }
            /* A request has started: it gets the request deadline, not the
             * idle one, so a client trickling bytes cannot hold us. */
            c->deadline_ms = kg_now_ms() + srv->cfg->request_timeout_ms;
            if (kg_failed(kg_ttlv_message_length(c->header, &c->req_total)) ||
                c->req_total > srv->cfg->max_message_bytes) {
                kg_log("warn", "closing connection of CN=%s: bad or oversized message header", c->who->cn);
                return false;
            }
            if (kg_failed(kg_secret_alloc(c->req_total, &c->req))) {
                kg_log("error", "cannot lock memory for a request: %s", kg_error_name(kg_errno()));
                return false;
            }
            memcpy(c->req->data, c->header, KG_TTLV_HEADER_LEN);
            c->req->len = c->req_total;
            c->req_got = KG_TTLV_HEADER_LEN;
        } else {
            c->req_got += (uint32_t)n;
        }
        if (c->req_got == c->req_total) {
            c->header_got = 0;
            kg_conn_submit(srv, c);
            return true;
        }
    }
}

static bool kg_conn_write(struct kg_server *srv, struct kg_conn *c)
{
    while (c->resp_sent < c->resp.len) {
        int n = SSL_write(c->ssl, c->resp.buf + c->resp_sent, (int)(c->resp.len - c->resp_sent));
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err == SSL_ERROR_WANT_WRITE) {
                kg_conn_set_events(srv, c, EPOLLOUT);
                return true;
            }
            if (err == SSL_ERROR_WANT_READ) {
                kg_conn_set_events(srv, c, EPOLLIN);
                return true;
            }
            return false;
        }
        c->resp_sent += (uint32_t)n;
    }
    /* The response may hold key bytes: wipe it as soon as it is sent. */
    kg_ttlv_writer_cleanup(&c->resp);
    if (c->close_after_write) {
        return false;
    }
    c->state = KG_CONN_READ;
    c->deadline_ms = kg_now_ms() + srv->cfg->idle_timeout_ms;
    /* Bytes of a pipelined request may already sit in OpenSSL's buffer,
     * where epoll cannot see them: read on at once. */
    return kg_conn_read(srv, c);
}

static bool kg_conn_handshake(struct kg_server *srv, struct kg_conn *c)
{
    int r = SSL_accept(c->ssl);

    if (r != 1) {
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ) {
            kg_conn_set_events(srv, c, EPOLLIN);
            return true;
        }
        if (err == SSL_ERROR_WANT_WRITE) {
            kg_conn_set_events(srv, c, EPOLLOUT);
            return true;
        }
        /* Refused or abandoned handshakes are routine (probes, clients
         * whose trust is not yet set up): not logged, to avoid floods. */
        return false;
    }
    c->who = calloc(1, sizeof(*c->who));
    if (c->who == NULL || kg_failed(kg_tls_identity_from(c->ssl, c->who))) {
        kg_log("warn", "refusing a client whose certificate subject cannot be used as an identity");
        return false;
    }
    c->state = KG_CONN_READ;
    c->deadline_ms = kg_now_ms() + srv->cfg->idle_timeout_ms;
    return kg_conn_read(srv, c);
}

static void kg_conn_drive(struct kg_server *srv, struct kg_conn *c)
{
    bool keep = true;

    if (c->closed) {
        return;
    }
    switch (c->state) {
    case KG_CONN_HANDSHAKE:
        keep = kg_conn_handshake(srv, c);
        break;
    case KG_CONN_READ:
        keep = kg_conn_read(srv, c);
        break;
    case KG_CONN_WRITE:
        keep = kg_conn_write(srv, c);
        break;
    case KG_CONN_BUSY:
    default:
        break;
    }
    if (!keep) {
        kg_conn_close(srv, c);
    }
}

static void kg_server_accept(struct kg_server *srv)
{
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        uint8_t addr[16];
        struct kg_conn *c;
        struct kg_ip_count *ip;
        int one = 1;

        if (fd < 0) {
            return; /* EAGAIN, or a transient error: epoll tells us again */
        }
        if (srv->stopping || srv->conn_count >= srv->max_conns) {
            close(fd);
            continue;
        }
        kg_ip_key(fd, addr);
        ip = kg_ip_acquire(srv, addr);
        if (ip == NULL) {
            close(fd);
            continue;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            kg_ip_release(srv, ip);
            close(fd);
            continue;
        }
        c->id = ++srv->last_conn_id;
        c->fd = fd;
        c->ip = ip;
        c->ssl = SSL_new(srv->ssl_ctx);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        c->events = EPOLLIN;
        c->state = KG_CONN_HANDSHAKE;
        c->deadline_ms = kg_now_ms() + srv->cfg->handshake_timeout_ms;
        c->next = srv->conns;
        if (srv->conns != NULL) {
            srv->conns->prev = c;
        }
        srv->conns = c;
        srv->conn_count++;
        kg_metrics_connection_opened();
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1 || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            kg_conn_close(srv, c);
            continue;
        }
        SSL_set_accept_state(c->ssl);
    }
}

/* Responses the workers finished: hand each to its connection. */
static void kg_server_collect(struct kg_server *srv)
{
    struct kg_job *done;
    uint64_t n;

    if (read(srv->done_fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        return;
    }
    pthread_mutex_lock(&srv->lock);
    done = srv->done;
    srv->done = NULL;
    pthread_mutex_unlock(&srv->lock);

    while (done != NULL) {
        struct kg_job *job = done;
        struct kg_conn *c = job->conn;

        done = job->next;
        if (c != NULL && job->ok) {
            c->job = NULL;
            c->resp = job->resp; /* the writer moves to the connection */
            memset(&job->resp, 0, sizeof(job->resp));
            c->resp_sent = 0;
            c->close_after_write = job->close;
            c->state = KG_CONN_WRITE;
            kg_conn_drive(srv, c);
        } else if (c != NULL) {
            c->job = NULL;
            kg_conn_close(srv, c);
        }
        kg_ttlv_writer_cleanup(&job->resp);
        kg_secret_free(job->req);
        OPENSSL_cleanse(&job->who, sizeof(job->who));
        free(job);
    }
}

static void kg_server_expire(struct kg_server *srv, uint64_t now)
{
    struct kg_conn *c = srv->conns, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (c->deadline_ms > now) {
            continue;
        }
        if (c->state == KG_CONN_BUSY) {
            /* A hung HSM call cannot be cancelled: abandon the job to its
             * worker and answer the client now. */
            c->job->conn = NULL;
            c->job = NULL;
            kg_log("error", "request of CN=%s took over %u ms: answering with an error", c->who->cn,
                   srv->cfg->request_timeout_ms);
            /* The worker's own record comes when (if) the call returns, and
             * may say success: this one says what the client was told. */
            char detail[512];
            snprintf(detail, sizeof(detail), "CN=%s fingerprint=%s: answered with an error after %u ms; the "
                     "abandoned operation may still complete", c->who->cn, c->who->fingerprint,
                     srv->cfg->request_timeout_ms);
            kg_audit_event(srv->gw->audit, "request-timeout", detail);
            kg_conn_answer_error(srv, c, KG_ERR_HSM_BUSY, "the HSM did not answer in time");
        } else {
            kg_conn_close(srv, c);
        }
    }
}

/* ---- workers ---- */

static void *kg_server_worker(void *arg)
{
    struct kg_server *srv = arg;
    struct kg_store *store = NULL;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (kg_failed(kg_store_open(srv->cfg->store_path, &store))) {
        kg_log("error", "a worker cannot open the store: %s", kg_error_text());
    }
    for (;;) {
        struct kg_job *job;
        uint64_t one = 1;

        pthread_mutex_lock(&srv->lock);
        while (srv->todo_head == NULL && !srv->stopping) {
            pthread_cond_wait(&srv->cond, &srv->lock);
        }
        if (srv->todo_head == NULL) {
            pthread_mutex_unlock(&srv->lock);
            break;
        }
        job = srv->todo_head;
        srv->todo_head = job->next;
        if (srv->todo_head == NULL) {
            srv->todo_tail = NULL;
        }
        srv->todo_len--;
        job->next = NULL;
        pthread_mutex_unlock(&srv->lock);

        job->ok = store != NULL &&
                  kg_ok(kg_ttlv_writer_init(&job->resp, srv->cfg->max_message_bytes, true)) &&
                  kg_ok(kg_gateway_process(srv->gw, store, &job->who.id, job->conn_id, job->req->data, job->len, &job->resp,
                                           &job->close));
        if (!job->ok) {
            kg_log("error", "cannot answer CN=%s: %s at %s", job->who.cn, kg_error_name(kg_errno()),
                   kg_error_debug());
        }
        /* The request may hold key bytes (Register): wipe it now. */
        kg_secret_free(job->req);
        job->req = NULL;

        pthread_mutex_lock(&srv->lock);
        job->next = srv->done;
        srv->done = job;
        pthread_mutex_unlock(&srv->lock);
        (void)write(srv->done_fd, &one, sizeof(one));
    }
    kg_store_close(store);
    pthread_mutex_lock(&srv->lock);
    srv->workers_running--;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* ---- set-up, signals, shutdown ---- */

kg_result kg_server_listen(const char *address, uint16_t listen_port, int *out_fd)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    char port[8];
    int fd = -1, one = 1, err;

    snprintf(port, sizeof(port), "%u", (unsigned)listen_port);
    err = getaddrinfo(address, port, &hints, &res);
    if (err != 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("cannot resolve listen address %s: %s", address, gai_strerror(err));
        return KG_RESULT_ERROR;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, res->ai_protocol);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
        kg_error_detail("cannot listen on %s:%s: %s", address, port, strerror(errno));
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

/* SHA-256 of the policy file, hex, for the audit trail ("unreadable" if the
 * file cannot be read). */
static void kg_server_file_sha256(const char *path, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE], buf[8192];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    FILE *f = fopen(path, "rb");
    size_t n;

    snprintf(out, 65, "unreadable");
    if (ctx != NULL && f != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
            EVP_DigestUpdate(ctx, buf, n);
        }
        if (!ferror(f) && EVP_DigestFinal_ex(ctx, md, &md_len) == 1) {
            for (unsigned int i = 0; i < md_len && i < 32; i++) {
                snprintf(out + 2 * i, 3, "%02x", md[i]);
            }
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    EVP_MD_CTX_free(ctx);
}

static void kg_server_reload_policy(struct kg_server *srv)
{
    struct kg_policy_errors errors;
    struct kg_policy *policy = NULL;
    char sha[65], detail[160];

    /* Hashed before parsing: if the file changes in between, the audit
     * names the older bytes and the next reload records the newer. */
    kg_server_file_sha256(srv->cfg->policy_path, sha);
    if (kg_policy_load_file(srv->cfg->policy_path, &policy, &errors) != 0) {
        for (size_t i = 0; i < errors.count; i++) {
            kg_log("error", "policy reload refused: %s:%u:%u: %s", srv->cfg->policy_path, errors.items[i].line,
                   errors.items[i].column, errors.items[i].message);
        }
        kg_log("error", "policy reload refused; the previous policy stays in force");
        snprintf(detail, sizeof(detail), "sha256=%s refused: %zu errors, previous policy kept", sha,
                 errors.count + errors.overflow);
        kg_audit_event(srv->gw->audit, "policy-reload", detail);
        return;
    }
    kg_gateway_swap_policy(srv->gw, policy);
    kg_log("info", "policy reloaded from %s", srv->cfg->policy_path);
    snprintf(detail, sizeof(detail), "sha256=%s ok", sha);
    kg_audit_event(srv->gw->audit, "policy-reload", detail);
}

/* Returns true when the loop should stop. */
static bool kg_server_signal(struct kg_server *srv)
{
    struct signalfd_siginfo si;

    if (read(srv->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si)) {
        return false;
    }
    if (si.ssi_signo == SIGHUP) {
        kg_server_reload_policy(srv);
        return false;
    }
    kg_log("info", "signal %u: draining and exiting", si.ssi_signo);
    kg_audit_event(srv->gw->audit, "stop", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    return true;
}

static void kg_server_loop(struct kg_server *srv)
{
    struct epoll_event events[64];
    uint64_t last_scan = kg_now_ms(), drain_until = 0;

    for (;;) {
        int n = epoll_wait(srv->epfd, events, 64, 100);
        uint64_t now;

        for (int i = 0; i < n; i++) {
            void *p = events[i].data.ptr;
            if (p == &srv->listen_fd) {
                kg_server_accept(srv);
            } else if (p == &srv->done_fd) {
                kg_server_collect(srv);
            } else if (p == &srv->sig_fd) {
                if (kg_server_signal(srv) && drain_until == 0) {
                    /* Drain: no new connections; idle ones close; requests
                     * in flight finish, for up to request_timeout_ms. */
                    srv->stopping = true;
                    (void)epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
                    drain_until = kg_now_ms() + srv->cfg->request_timeout_ms;
                }
            } else {
                kg_conn_drive(srv, p);
            }
        }
        now = kg_now_ms();
        if (now - last_scan >= 100) {
            kg_server_expire(srv, now);
            /* The same monotonic milliseconds as the dispatcher's. */
            kg_async_sweep(&srv->gw->async, now);
            last_scan = now;
        }
        if (drain_until != 0) {
            struct kg_conn *c = srv->conns, *next;
            for (; c != NULL; c = next) {
                next = c->next;
                if (c->state == KG_CONN_HANDSHAKE || (c->state == KG_CONN_READ && c->header_got == 0)) {
                    kg_conn_close(srv, c);
                }
            }
            if (srv->conns == NULL || now >= drain_until) {
                kg_server_reap(srv);
                return;
            }
        }
        kg_server_reap(srv);
    }
}

/*
 * Every connection holds a descriptor. If the open-file limit (often a soft
 * 1024 under systemd) is below what limits.max_connections needs, accept4
 * fails with EMFILE: the listening socket stays readable, the loop spins, and
 * a few hundred idle connections from one address lock every other client
 * out. So raise the soft limit as far as needed (up to the hard limit), and
 * if that is still short, accept fewer connections than configured, keeping
 * descriptors back for the store, the HSM, the logs and the loop itself.
 */
static uint32_t kg_server_connection_budget(const struct kg_config *cfg)
{
    const uint64_t reserve = 64u + 4u * (uint64_t)cfg->workers + 2u * (uint64_t)cfg->hsm_sessions;
    const uint64_t want = (uint64_t)cfg->max_connections + reserve;
    struct rlimit rl;
    uint64_t have, budget;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return cfg->max_connections;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = rl;

        raised.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? (rlim_t)want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            rl.rlim_cur = raised.rlim_cur;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
        return cfg->max_connections;
    }
    have = rl.rlim_cur;
    budget = have > 2 * reserve ? have - reserve : (have / 2 > 0 ? have / 2 : 1);
    kg_log("warn",
           "open-file limit %llu is below the %llu that limits.max_connections %u needs: accepting at most %llu "
           "connections (raise LimitNOFILE / ulimit -n)",
           (unsigned long long)have, (unsigned long long)want, cfg->max_connections, (unsigned long long)budget);
    return (uint32_t)budget;
}

static kg_result kg_server_watch(struct kg_server *srv, int fd, void *tag)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

    KG_ENSURE(epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) == 0, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

kg_result kg_server_run(const struct kg_config *cfg, struct kg_gateway *gw, SSL_CTX *ssl_ctx)
{
    struct kg_server *srv = NULL;
    sigset_t mask;
    kg_result rc = KG_RESULT_OK;

    srv = calloc(1, sizeof(*srv));
    KG_ENSURE(srv != NULL, KG_ERR_NOMEM);
    srv->cfg = cfg;
    srv->gw = gw;
    srv->ssl_ctx = ssl_ctx;
    srv->max_conns = kg_server_connection_budget(cfg);
    srv->epfd = srv->listen_fd = srv->sig_fd = srv->done_fd = -1;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    /* Idle connections keep no TLS record buffers. */
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    srv->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    KG_GOTO_ENSURE(rc, srv->sig_fd >= 0 && srv->done_fd >= 0 && srv->epfd >= 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_server_listen(cfg->listen_address, cfg->listen_port, &srv->listen_fd));
    KG_GOTO_GUARD(rc, kg_server_watch(srv, srv->listen_fd, &srv->listen_fd));
    KG_GOTO_GUARD(rc, kg_server_watch(srv, srv->sig_fd, &srv->sig_fd));
    KG_GOTO_GUARD(rc, kg_server_watch(srv, srv->done_fd, &srv->done_fd));

    srv->threads = calloc(cfg->workers, sizeof(pthread_t));
    KG_GOTO_ENSURE(rc, srv->threads != NULL, KG_ERR_NOMEM);
    for (uint32_t i = 0; i < cfg->workers; i++) {
        pthread_mutex_lock(&srv->lock);
        srv->workers_running++;
        pthread_mutex_unlock(&srv->lock);
        if (pthread_create(&srv->threads[i], NULL, kg_server_worker, srv) != 0) {
            pthread_mutex_lock(&srv->lock);
            srv->workers_running--;
            pthread_mutex_unlock(&srv->lock);
            KG_GOTO_BAIL(rc, KG_ERR_INTERNAL);
        }
        srv->thread_count++;
    }
    kg_log("info", "serving KMIP on %s:%u: one event loop, %u workers", cfg->listen_address,
           (unsigned)cfg->listen_port, cfg->workers);
    kg_server_loop(srv);
out:
    /* Stop the workers. One stuck in a hung HSM call cannot be joined; it
     * is left behind (the process is about to exit) after a grace period. */
    pthread_mutex_lock(&srv->lock);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cond);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (srv->workers_running > 0) {
        if (pthread_cond_timedwait(&srv->cond, &srv->lock, &until) != 0) {
            break;
        }
    }
    bool all_stopped = srv->workers_running == 0;
    pthread_mutex_unlock(&srv->lock);
    if (!all_stopped) {
        kg_log("warn", "a worker is stuck in an HSM call; exiting without it");
        return rc; /* srv stays allocated: the stuck worker may still touch it */
    }
    for (uint32_t i = 0; i < srv->thread_count; i++) {
        pthread_join(srv->threads[i], NULL);
    }
    while (srv->conns != NULL) {
        kg_conn_close(srv, srv->conns);
    }
    kg_server_collect(srv);
    kg_server_reap(srv);
    for (uint32_t b = 0; b < KG_IP_BUCKETS; b++) {
        while (srv->ips[b] != NULL) {
            struct kg_ip_count *e = srv->ips[b];
            srv->ips[b] = e->next;
            free(e);
        }
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    if (srv->sig_fd >= 0) {
        close(srv->sig_fd);
    }
    if (srv->done_fd >= 0) {
        close(srv->done_fd);
    }
    if (srv->epfd >= 0) {
        close(srv->epfd);
    }
    free(srv->threads);
    free(srv);
    return rc;
}
