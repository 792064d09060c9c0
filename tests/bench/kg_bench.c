/*
 * kg_bench.c - closed-loop load generator for any KMIP 1.x server over
 * mutual TLS (kg-bench).
 *
 *   kg-bench --mix get --conns 16 --secs 10 --port 5696 \
 *            --cert pki/admin.crt --key pki/admin.key --ca pki/ca.crt
 *
 * N threads, each with its own TLS connection, each sending one request,
 * waiting for its answer and sending the next (closed loop). After a
 * warm-up, operations that complete inside the measurement window are
 * counted and their latencies kept; at the end one machine-readable line
 * (`mix=... ops_per_sec=... p50_ms=...`) and one human line are printed.
 *
 * Mixes (one operation = what one latency sample measures):
 *   get             Get of a random key from a pool created first (--keys)
 *   create          Create AES-256 (vCenter's template)
 *   get-attributes  Get Attributes(State) of a random pool key
 *   locate          Locate by an x- attribute the pool keys were tagged with
 *                   (run-unique value, --keys/10 keys per value; the number of
 *                   UIDs returned is checked)
 *   vsphere-task    a vCenter task: new TLS connection, Discover Versions,
 *                   Create, Add Attribute x3 in one batched message, close
 *   handshake       connect, full mutual-TLS handshake, close_notify both ways
 * The first four keep their connection; the last two open one per operation.
 *
 * Errors are counted by kind over the whole load phase (warm-up included) and
 * always reported: kmip (a batch item whose Result Status is not Success),
 * tls (connect, handshake or TLS I/O failure, or the peer closing),
 * timeout (an operation that took longer than --timeout-ms), proto (a
 * response that does not decode or lacks what the operation must return).
 * After a connection-level error the thread closes its connection, waits
 * KG_BENCH_BACKOFF_MS and reconnects, so a server that refuses connections is
 * not flooded and the error count stays meaningful. The first errors of each
 * kind are described on stderr.
 *
 * Everything is bounded: every socket wait ends at the operation's timeout or
 * at the end of the run, whichever comes first. An operation still running
 * when the run ends is abandoned and counted as `unfinished`, not as an
 * error, unless it had been waiting for at least 90% of the measurement
 * window: that is a stalled connection and counts as a timeout.
 *
 * Exit status: 0 when operations completed and no error occurred, 1 when the
 * run completed with errors or without any operation, 2 on bad usage or when
 * the setup (TLS context, key pool) failed.
 *
 * Only loopback use is intended; nothing stops other addresses, but the
 * project's scripts never pass one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "kg_kmip.h"
#include "kg_ttlv.h"

#define KG_BENCH_MAX_CONNS 256u
#define KG_BENCH_MAX_KEYS 10000u
#define KG_BENCH_UID_MAX 128u             /* longest Unique Identifier kept */
#define KG_BENCH_MAX_RESPONSE (1u << 20)  /* a Locate of many keys stays far below */
#define KG_BENCH_MAX_REQUEST 4096u
#define KG_BENCH_BACKOFF_MS 50u
#define KG_BENCH_ERRORS_SHOWN 2u          /* error descriptions printed per kind */
#define KG_BENCH_LOCATE_GROUP 10u         /* pool keys per x- attribute value */
#define KG_BENCH_TAG_NAME "x-kg-bench"
#define KG_BENCH_MAX_ITEMS 4u             /* batch items of any response we expect */

enum kg_bench_mix {
    KG_BENCH_GET,
    KG_BENCH_CREATE,
    KG_BENCH_GET_ATTRIBUTES,
    KG_BENCH_LOCATE,
    KG_BENCH_VSPHERE_TASK,
    KG_BENCH_HANDSHAKE,
};

static const char *const kg_bench_mix_names[] = {
    [KG_BENCH_GET] = "get",
    [KG_BENCH_CREATE] = "create",
    [KG_BENCH_GET_ATTRIBUTES] = "get-attributes",
    [KG_BENCH_LOCATE] = "locate",
    [KG_BENCH_VSPHERE_TASK] = "vsphere-task",
    [KG_BENCH_HANDSHAKE] = "handshake",
};
#define KG_BENCH_MIX_COUNT (sizeof(kg_bench_mix_names) / sizeof(kg_bench_mix_names[0]))

/*
 * What one operation came to. This is the measured datum, not an error to
 * propagate, so it is an enum rather than the project's kg_result; codec
 * failures inside are still kg_result and become KG_BENCH_ERR_PROTO.
 */
enum kg_bench_outcome {
    KG_BENCH_OK = -1,
    KG_BENCH_ERR_KMIP = 0,
    KG_BENCH_ERR_TLS = 1,
    KG_BENCH_ERR_TIMEOUT = 2,
    KG_BENCH_ERR_PROTO = 3,
    KG_BENCH_STOPPED = -2, /* the run ended first: neither success nor error */
};
#define KG_BENCH_ERR_KINDS 4
static const char *const kg_bench_err_names[KG_BENCH_ERR_KINDS] = { "kmip", "tls", "timeout", "proto" };

struct kg_bench_opts {
    enum kg_bench_mix mix;
    const char *host;
    const char *port;
    const char *servername; /* name or IP the server certificate must carry */
    const char *cert, *key, *ca;
    uint32_t conns;
    double secs, warmup;
    uint32_t keys;
    uint32_t timeout_ms;
    int32_t kmip_minor; /* protocol 1.<minor> in every request header */
    int tls_max;        /* 0: library default (TLS 1.3) */
    bool quiet;
};

/* Shared by all threads; written before they start, read-only afterwards. */
struct kg_bench_run {
    const struct kg_bench_opts *o;
    SSL_CTX *ctx;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool servername_is_ip;
    uint64_t t_measure; /* CLOCK_MONOTONIC ns: measurement window start */
    uint64_t t_stop;    /* end of the run */
    char (*uids)[KG_BENCH_UID_MAX];
    uint32_t uid_count;
    char tag[40];          /* run-unique prefix of the x- attribute values */
    uint32_t groups;       /* distinct x- attribute values in the pool */
    uint32_t *group_size;  /* pool keys per value */
    atomic_uint errors_shown[KG_BENCH_ERR_KINDS]; /* descriptions printed, per kind */
};

struct kg_bench_thread {
    struct kg_bench_run *run;
    uint32_t index;
    pthread_t tid;
    uint64_t rng;
    uint64_t *lat; /* ns, operations completed inside the window */
    size_t lat_len, lat_cap;
    uint64_t errors[KG_BENCH_ERR_KINDS];
    uint64_t unfinished;
    bool alloc_failed;
    char tls_version[24];
    char tls_cipher[64];
    struct kg_ttlv_writer w; /* request buffer, reused */
    uint8_t *resp;           /* response buffer, KG_BENCH_MAX_RESPONSE */
    uint32_t resp_high;      /* most of it ever used: what must be wiped */
};

struct kg_bench_conn {
    int fd;
    SSL *ssl;
};

/* When the current operation must give up, and why. */
struct kg_bench_deadline {
    uint64_t at;
    bool is_stop; /* the run's end, not the operation's timeout */
};

/* One decoded response batch item; values borrow from the response buffer. */
struct kg_bench_item {
    uint32_t operation;
    uint32_t status;
    uint32_t reason;
    const char *message;
    uint32_t message_len;
    bool has_payload;
    struct kg_ttlv_item payload;
};

struct kg_bench_response {
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader top;
    uint32_t count;
    struct kg_bench_item items[KG_BENCH_MAX_ITEMS];
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t kg_bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void kg_bench_sleep_until(uint64_t until)
{
    struct timespec ts = { .tv_sec = (time_t)(until / 1000000000u), .tv_nsec = (long)(until % 1000000000u) };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* xorshift64*: uniform enough to pick pool keys; not for anything secret. */
static uint32_t kg_bench_random(struct kg_bench_thread *t, uint32_t below)
{
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return (uint32_t)(((t->rng * 2685821657736338717ull) >> 32) % below);
}

static struct kg_bench_deadline kg_bench_deadline_for(const struct kg_bench_run *run, uint64_t start)
{
    uint64_t at = start + (uint64_t)run->o->timeout_ms * 1000000u;

    if (at >= run->t_stop) {
        return (struct kg_bench_deadline){ .at = run->t_stop, .is_stop = true };
    }
    return (struct kg_bench_deadline){ .at = at, .is_stop = false };
}

/*
 * Describe an error on stderr, for the first KG_BENCH_ERRORS_SHOWN errors of
 * each kind only: a refusing server would otherwise print thousands of lines.
 * The counters, not these lines, are the result.
 */
static void kg_bench_explain(struct kg_bench_thread *t, enum kg_bench_outcome kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void kg_bench_explain(struct kg_bench_thread *t, enum kg_bench_outcome kind, const char *fmt, ...)
{
    char text[256];
    unsigned long e;
    va_list ap;

    if (kind < 0 || kind >= KG_BENCH_ERR_KINDS ||
        atomic_fetch_add(&t->run->errors_shown[kind], 1) >= KG_BENCH_ERRORS_SHOWN) {
        ERR_clear_error();
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    e = ERR_peek_last_error();
    if (e != 0) {
        char ssl_text[160];
        ERR_error_string_n(e, ssl_text, sizeof(ssl_text));
        fprintf(stderr, "kg-bench: conn %u: %s error: %s (%s)\n", t->index, kg_bench_err_names[kind], text,
                ssl_text);
    } else {
        fprintf(stderr, "kg-bench: conn %u: %s error: %s\n", t->index, kg_bench_err_names[kind], text);
    }
    ERR_clear_error();
}

/* ---- TLS connection with deadlines ---------------------------------------------------------- */

/* Wait until `fd` is ready for `events` or the deadline passes. */
static enum kg_bench_outcome kg_bench_wait(int fd, short events, const struct kg_bench_deadline *dl)
{
    for (;;) {
        uint64_t now = kg_bench_now();
        struct pollfd p = { .fd = fd, .events = events };
        int n;

        if (now >= dl->at) {
            return dl->is_stop ? KG_BENCH_STOPPED : KG_BENCH_ERR_TIMEOUT;
        }
        n = poll(&p, 1, (int)((dl->at - now + 999999u) / 1000000u));
        if (n > 0) {
            /* Readable, writable, or an error the next call will report. */
            return KG_BENCH_OK;
        }
        if (n < 0 && errno != EINTR) {
            return KG_BENCH_ERR_TLS;
        }
    }
}

/*
 * After an SSL_* call returned `ret`: wait if it wants I/O (KG_BENCH_OK means
 * "call again"), otherwise classify the failure.
 */
static enum kg_bench_outcome kg_bench_ssl_retry(struct kg_bench_thread *t, struct kg_bench_conn *c, int ret,
                                                const struct kg_bench_deadline *dl, const char *what)
{
    int err = SSL_get_error(c->ssl, ret);
    enum kg_bench_outcome o;

    switch (err) {
    case SSL_ERROR_WANT_READ:
        o = kg_bench_wait(c->fd, POLLIN, dl);
        break;
    case SSL_ERROR_WANT_WRITE:
        o = kg_bench_wait(c->fd, POLLOUT, dl);
        break;
    case SSL_ERROR_ZERO_RETURN:
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "%s: the server closed the connection (close_notify)", what);
        return KG_BENCH_ERR_TLS;
    case SSL_ERROR_SYSCALL:
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "%s: %s", what,
                         errno != 0 ? strerror(errno) : "the server closed the connection");
        return KG_BENCH_ERR_TLS;
    default:
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "%s failed", what);
        return KG_BENCH_ERR_TLS;
    }
    if (o == KG_BENCH_ERR_TIMEOUT) {
        kg_bench_explain(t, KG_BENCH_ERR_TIMEOUT, "%s: no progress within %u ms", what, t->run->o->timeout_ms);
    } else if (o == KG_BENCH_ERR_TLS) {
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "%s: poll: %s", what, strerror(errno));
    }
    return o;
}

static void kg_bench_close(struct kg_bench_conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    ERR_clear_error();
}

/* TCP connect and full handshake (a new SSL object, so never a resumption). */
static enum kg_bench_outcome kg_bench_connect(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                              const struct kg_bench_deadline *dl)
{
    const struct kg_bench_run *run = t->run;
    int one = 1, soerr = 0, ret;
    socklen_t len = sizeof(soerr);
    enum kg_bench_outcome o;

    c->fd = socket(run->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "socket: %s", strerror(errno));
        return KG_BENCH_ERR_TLS;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&run->addr, run->addr_len) != 0) {
        if (errno != EINPROGRESS) {
            kg_bench_explain(t, KG_BENCH_ERR_TLS, "connect: %s", strerror(errno));
            return KG_BENCH_ERR_TLS;
        }
        o = kg_bench_wait(c->fd, POLLOUT, dl);
        if (o == KG_BENCH_ERR_TIMEOUT) {
            kg_bench_explain(t, o, "connect: no answer within %u ms", run->o->timeout_ms);
        }
        if (o != KG_BENCH_OK) {
            return o;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            kg_bench_explain(t, KG_BENCH_ERR_TLS, "connect: %s", strerror(soerr != 0 ? soerr : errno));
            return KG_BENCH_ERR_TLS;
        }
    }
    c->ssl = SSL_new(run->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "SSL_new");
        return KG_BENCH_ERR_TLS;
    }
    if (run->servername_is_ip) {
        ret = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), run->o->servername);
    } else {
        ret = SSL_set1_host(c->ssl, run->o->servername) == 1 &&
              SSL_set_tlsext_host_name(c->ssl, run->o->servername) == 1;
    }
    if (ret != 1) {
        kg_bench_explain(t, KG_BENCH_ERR_TLS, "cannot set the expected server name %s", run->o->servername);
        return KG_BENCH_ERR_TLS;
    }
    for (;;) {
        ret = SSL_connect(c->ssl);
        if (ret == 1) {
            break;
        }
        o = kg_bench_ssl_retry(t, c, ret, dl, "TLS handshake");
        if (o != KG_BENCH_OK) {
            return o;
        }
    }
    if (t->tls_version[0] == '\0') {
        snprintf(t->tls_version, sizeof(t->tls_version), "%s", SSL_get_version(c->ssl));
        snprintf(t->tls_cipher, sizeof(t->tls_cipher), "%s", SSL_get_cipher_name(c->ssl));
    }
    return KG_BENCH_OK;
}

/*
 * Send close_notify and wait for the server's close (close_notify or EOF).
 * The wait makes the handshake mix measure the server's whole handshake: in
 * TLS 1.3 the client finishes before the server has checked the client
 * certificate, and a refusal would only show up here, as an alert.
 */
static enum kg_bench_outcome kg_bench_shutdown_wait(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                    const struct kg_bench_deadline *dl)
{
    uint8_t buf[256];
    enum kg_bench_outcome o;
    int ret;

    for (;;) {
        ret = SSL_shutdown(c->ssl);
        if (ret >= 0) {
            break;
        }
        o = kg_bench_ssl_retry(t, c, ret, dl, "sending close_notify");
        if (o != KG_BENCH_OK) {
            return o;
        }
    }
    if (ret == 1) {
        return KG_BENCH_OK;
    }
    for (;;) {
        int err;

        ret = SSL_read(c->ssl, buf, (int)sizeof(buf));
        if (ret > 0) {
            kg_bench_explain(t, KG_BENCH_ERR_PROTO, "closing: the server sent %d unexpected bytes", ret);
            return KG_BENCH_ERR_PROTO;
        }
        err = SSL_get_error(c->ssl, ret);
        if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
            /* close_notify, or a plain EOF: the server is done with us. */
            ERR_clear_error();
            return KG_BENCH_OK;
        }
        o = kg_bench_ssl_retry(t, c, ret, dl, "waiting for the server to close");
        if (o != KG_BENCH_OK) {
            return o;
        }
    }
}

static enum kg_bench_outcome kg_bench_write_all(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                const uint8_t *data, uint32_t len,
                                                const struct kg_bench_deadline *dl)
{
    uint32_t done = 0;

    while (done < len) {
        int ret = SSL_write(c->ssl, data + done, (int)(len - done));
        if (ret > 0) {
            done += (uint32_t)ret;
            continue;
        }
        enum kg_bench_outcome o = kg_bench_ssl_retry(t, c, ret, dl, "sending a request");
        if (o != KG_BENCH_OK) {
            return o;
        }
    }
    return KG_BENCH_OK;
}

static enum kg_bench_outcome kg_bench_read_exact(struct kg_bench_thread *t, struct kg_bench_conn *c, uint8_t *buf,
                                                 uint32_t len, const struct kg_bench_deadline *dl)
{
    uint32_t got = 0;

    while (got < len) {
        int ret = SSL_read(c->ssl, buf + got, (int)(len - got));
        if (ret > 0) {
            got += (uint32_t)ret;
            continue;
        }
        enum kg_bench_outcome o = kg_bench_ssl_retry(t, c, ret, dl, "reading a response");
        if (o != KG_BENCH_OK) {
            return o;
        }
    }
    return KG_BENCH_OK;
}

/* ---- requests ------------------------------------------------------------------------------ */

static kg_result kg_bench_request_begin(struct kg_bench_thread *t, int32_t batch_count)
{
    struct kg_ttlv_writer *w = &t->w;

    kg_ttlv_writer_rewind(w, 0, 0);
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_MESSAGE));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_HEADER));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_PROTOCOL_VERSION));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MAJOR, 1));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MINOR, t->run->o->kmip_minor));
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, batch_count));
    KG_GUARD(kg_ttlv_end_struct(w));
    return KG_RESULT_OK;
}

/* Open a Batch Item and its Request Payload; batch_id 0 means none (as in
 * vCenter's first Discover Versions). */
static kg_result kg_bench_item_begin(struct kg_bench_thread *t, uint32_t operation, uint8_t batch_id)
{
    struct kg_ttlv_writer *w = &t->w;

    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OPERATION, operation));
    if (batch_id != 0) {
        /* 8 bytes, like vCenter's: a marker and a counter. */
        const uint8_t id[8] = { 'k', 'g', 'b', 'n', batch_id, 0, 0, 0 };
        KG_GUARD(kg_ttlv_write_bytes(w, KG_TAG_UNIQUE_BATCH_ITEM_ID, id, sizeof(id)));
    }
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_PAYLOAD));
    return KG_RESULT_OK;
}

static kg_result kg_bench_item_end(struct kg_bench_thread *t)
{
    KG_GUARD(kg_ttlv_end_struct(&t->w)); /* Request Payload */
    KG_GUARD(kg_ttlv_end_struct(&t->w)); /* Batch Item */
    return KG_RESULT_OK;
}

static kg_result kg_bench_request_end(struct kg_bench_thread *t)
{
    KG_GUARD(kg_ttlv_end_struct(&t->w)); /* Request Message */
    return kg_ttlv_writer_finish(&t->w);
}

static kg_result kg_bench_write_text(struct kg_bench_thread *t, uint32_t tag, const char *s)
{
    return kg_ttlv_write_text(&t->w, tag, s, (uint32_t)strlen(s));
}

/* Attribute { Attribute Name, Attribute Value } with an Integer, Enumeration or Text value. */
static kg_result kg_bench_attr_int(struct kg_bench_thread *t, const char *name, int32_t v, bool is_enum)
{
    KG_GUARD(kg_ttlv_begin_struct(&t->w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_bench_write_text(t, KG_TAG_ATTRIBUTE_NAME, name));
    if (is_enum) {
        KG_GUARD(kg_ttlv_write_enum(&t->w, KG_TAG_ATTRIBUTE_VALUE, (uint32_t)v));
    } else {
        KG_GUARD(kg_ttlv_write_int(&t->w, KG_TAG_ATTRIBUTE_VALUE, v));
    }
    return kg_ttlv_end_struct(&t->w);
}

static kg_result kg_bench_attr_text(struct kg_bench_thread *t, const char *name, const char *value)
{
    KG_GUARD(kg_ttlv_begin_struct(&t->w, KG_TAG_ATTRIBUTE));
    KG_GUARD(kg_bench_write_text(t, KG_TAG_ATTRIBUTE_NAME, name));
    KG_GUARD(kg_bench_write_text(t, KG_TAG_ATTRIBUTE_VALUE, value));
    return kg_ttlv_end_struct(&t->w);
}

/* Create as vCenter sends it (VSPHERE.md): AES, 256 bits, Encrypt|Decrypt. */
static kg_result kg_bench_item_create(struct kg_bench_thread *t, uint8_t batch_id)
{
    KG_GUARD(kg_bench_item_begin(t, KG_OP_CREATE, batch_id));
    KG_GUARD(kg_ttlv_write_enum(&t->w, KG_TAG_OBJECT_TYPE, KG_OBJ_SYMMETRIC_KEY));
    KG_GUARD(kg_ttlv_begin_struct(&t->w, KG_TAG_TEMPLATE_ATTRIBUTE));
    KG_GUARD(kg_bench_attr_int(t, "Cryptographic Algorithm", KG_ALG_AES, true));
    KG_GUARD(kg_bench_attr_int(t, "Cryptographic Usage Mask", KG_USAGE_ENCRYPT | KG_USAGE_DECRYPT, false));
    KG_GUARD(kg_bench_attr_int(t, "Cryptographic Length", 256, false));
    KG_GUARD(kg_ttlv_end_struct(&t->w));
    return kg_bench_item_end(t);
}

static kg_result kg_bench_build_create(struct kg_bench_thread *t)
{
    KG_GUARD(kg_bench_request_begin(t, 1));
    KG_GUARD(kg_bench_item_create(t, 0));
    return kg_bench_request_end(t);
}

static kg_result kg_bench_build_uid_op(struct kg_bench_thread *t, uint32_t operation, const char *uid,
                                       const char *attribute_name)
{
    KG_GUARD(kg_bench_request_begin(t, 1));
    KG_GUARD(kg_bench_item_begin(t, operation, 0));
    KG_GUARD(kg_bench_write_text(t, KG_TAG_UNIQUE_IDENTIFIER, uid));
    if (attribute_name != NULL) {
        KG_GUARD(kg_bench_write_text(t, KG_TAG_ATTRIBUTE_NAME, attribute_name));
    }
    KG_GUARD(kg_bench_item_end(t));
    return kg_bench_request_end(t);
}

static kg_result kg_bench_build_add_attribute(struct kg_bench_thread *t, const char *uid, const char *name,
                                              const char *value)
{
    KG_GUARD(kg_bench_request_begin(t, 1));
    KG_GUARD(kg_bench_item_begin(t, KG_OP_ADD_ATTRIBUTE, 0));
    KG_GUARD(kg_bench_write_text(t, KG_TAG_UNIQUE_IDENTIFIER, uid));
    KG_GUARD(kg_bench_attr_text(t, name, value));
    KG_GUARD(kg_bench_item_end(t));
    return kg_bench_request_end(t);
}

static kg_result kg_bench_build_locate(struct kg_bench_thread *t, const char *value)
{
    KG_GUARD(kg_bench_request_begin(t, 1));
    KG_GUARD(kg_bench_item_begin(t, KG_OP_LOCATE, 0));
    KG_GUARD(kg_bench_attr_text(t, KG_BENCH_TAG_NAME, value));
    KG_GUARD(kg_bench_item_end(t));
    return kg_bench_request_end(t);
}

static kg_result kg_bench_build_discover(struct kg_bench_thread *t)
{
    KG_GUARD(kg_bench_request_begin(t, 1));
    KG_GUARD(kg_bench_item_begin(t, KG_OP_DISCOVER_VERSIONS, 0));
    KG_GUARD(kg_bench_item_end(t));
    return kg_bench_request_end(t);
}

/* vCenter's first Add Attribute message: three items, one batch (VSPHERE.md). */
static kg_result kg_bench_build_vcenter_tags(struct kg_bench_thread *t, const char *uid)
{
    static const char *const names[3] = { "x-Product_Version", "x-Vendor", "x-Product" };
    static const char *const values[3] = { "8.0.1 build-21560480", "VMware, Inc.", "VMware vSphere" };

    KG_GUARD(kg_bench_request_begin(t, 3));
    for (uint8_t i = 0; i < 3; i++) {
        KG_GUARD(kg_bench_item_begin(t, KG_OP_ADD_ATTRIBUTE, (uint8_t)(i + 1)));
        KG_GUARD(kg_bench_write_text(t, KG_TAG_UNIQUE_IDENTIFIER, uid));
        KG_GUARD(kg_bench_attr_text(t, names[i], values[i]));
        KG_GUARD(kg_bench_item_end(t));
    }
    return kg_bench_request_end(t);
}

/* ---- responses ----------------------------------------------------------------------------- */

/* Decode a Response Message's batch items (KMIP 1.4 section 7). Anything
 * unexpected is a protocol error of the server's. */
static kg_result kg_bench_decode(const uint8_t *data, uint32_t len, struct kg_bench_response *r)
{
    struct kg_ttlv_reader msg, bi;
    struct kg_ttlv_item it;
    static const struct kg_ttlv_limits limits = {
        .max_message_len = KG_BENCH_MAX_RESPONSE, .max_depth = 16, .max_items = 65536
    };

    memset(r, 0, sizeof(*r));
    kg_ttlv_budget_init(&r->budget, &limits);
    KG_GUARD(kg_ttlv_reader_init(&r->top, data, len, &r->budget));
    KG_GUARD(kg_ttlv_read_expect(&r->top, KG_TAG_RESPONSE_MESSAGE, KG_TTLV_STRUCTURE, &it));
    KG_GUARD(kg_ttlv_reader_finish(&r->top));
    KG_GUARD(kg_ttlv_child(&r->top, &it, &msg));
    KG_GUARD(kg_ttlv_read_expect(&msg, KG_TAG_RESPONSE_HEADER, KG_TTLV_STRUCTURE, &it));
    while (!kg_ttlv_reader_done(&msg)) {
        struct kg_bench_item *item;

        KG_GUARD(kg_ttlv_read_expect(&msg, KG_TAG_BATCH_ITEM, KG_TTLV_STRUCTURE, &it));
        KG_ENSURE(r->count < KG_BENCH_MAX_ITEMS, KG_ERR_TOO_MANY_BATCH_ITEMS);
        item = &r->items[r->count++];
        item->status = UINT32_MAX;
        KG_GUARD(kg_ttlv_child(&msg, &it, &bi));
        while (!kg_ttlv_reader_done(&bi)) {
            KG_GUARD(kg_ttlv_read(&bi, &it));
            switch (it.tag) {
            case KG_TAG_OPERATION:
                KG_GUARD(kg_ttlv_get_enum(&it, &item->operation));
                break;
            case KG_TAG_RESULT_STATUS:
                KG_GUARD(kg_ttlv_get_enum(&it, &item->status));
                break;
            case KG_TAG_RESULT_REASON:
                KG_GUARD(kg_ttlv_get_enum(&it, &item->reason));
                break;
            case KG_TAG_RESULT_MESSAGE:
                KG_GUARD(kg_ttlv_get_text(&it, &item->message, &item->message_len));
                break;
            case KG_TAG_RESPONSE_PAYLOAD:
                KG_ENSURE(it.type == KG_TTLV_STRUCTURE, KG_ERR_TTLV_BAD_TYPE);
                item->payload = it;
                item->has_payload = true;
                break;
            default:
                /* Unique Batch Item ID, Asynchronous Correlation Value, ... */
                break;
            }
        }
        KG_ENSURE(item->status != UINT32_MAX, KG_ERR_MISSING_FIELD);
    }
    return KG_RESULT_OK;
}

/*
 * In payload `item` of response `r`: the first item with `tag` (found set),
 * and how many items carry it (count, may be NULL).
 */
static kg_result kg_bench_payload_find(const struct kg_bench_response *r, const struct kg_bench_item *item,
                                       uint32_t tag, struct kg_ttlv_item *found, uint32_t *count)
{
    struct kg_ttlv_reader p;
    struct kg_ttlv_item it;
    uint32_t n = 0;

    memset(found, 0, sizeof(*found));
    KG_ENSURE(item->has_payload, KG_ERR_MISSING_FIELD);
    KG_GUARD(kg_ttlv_child(&r->top, &item->payload, &p));
    while (!kg_ttlv_reader_done(&p)) {
        KG_GUARD(kg_ttlv_read(&p, &it));
        if (it.tag == tag) {
            if (n == 0) {
                *found = it;
            }
            n++;
        }
    }
    if (count != NULL) {
        *count = n;
    }
    KG_ENSURE(n > 0, KG_ERR_MISSING_FIELD);
    return KG_RESULT_OK;
}

/* The Unique Identifier of a payload, copied out as a C string. */
static kg_result kg_bench_payload_uid(const struct kg_bench_response *r, const struct kg_bench_item *item,
                                      char out[KG_BENCH_UID_MAX])
{
    struct kg_ttlv_item it;
    const char *s;
    uint32_t len;

    KG_GUARD(kg_bench_payload_find(r, item, KG_TAG_UNIQUE_IDENTIFIER, &it, NULL));
    KG_GUARD(kg_ttlv_get_text(&it, &s, &len));
    KG_ENSURE(len > 0 && len < KG_BENCH_UID_MAX, KG_ERR_INVALID_FIELD);
    memcpy(out, s, len);
    out[len] = '\0';
    return KG_RESULT_OK;
}

/*
 * Send the request in t->w and read one whole response into t->resp, then
 * decode it and require `expect_items` batch items, all Success.
 */
static enum kg_bench_outcome kg_bench_roundtrip(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                const struct kg_bench_deadline *dl, uint32_t expect_items,
                                                const char *what, struct kg_bench_response *r)
{
    enum kg_bench_outcome o;
    uint32_t total = 0;

    o = kg_bench_write_all(t, c, t->w.buf, t->w.len, dl);
    if (o != KG_BENCH_OK) {
        return o;
    }
    o = kg_bench_read_exact(t, c, t->resp, KG_TTLV_HEADER_LEN, dl);
    if (o != KG_BENCH_OK) {
        return o;
    }
    if (kg_failed(kg_ttlv_message_length(t->resp, &total)) || total > KG_BENCH_MAX_RESPONSE) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "%s: response header is not a TTLV Structure of at most %u bytes",
                         what, KG_BENCH_MAX_RESPONSE);
        return KG_BENCH_ERR_PROTO;
    }
    if (total > t->resp_high) {
        t->resp_high = total;
    }
    o = kg_bench_read_exact(t, c, t->resp + KG_TTLV_HEADER_LEN, total - KG_TTLV_HEADER_LEN, dl);
    if (o != KG_BENCH_OK) {
        return o;
    }
    if (kg_failed(kg_bench_decode(t->resp, total, r))) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "%s: undecodable response (%s)", what, kg_error_name(kg_errno()));
        return KG_BENCH_ERR_PROTO;
    }
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->items[i].status != KG_STATUS_SUCCESS) {
            kg_bench_explain(t, KG_BENCH_ERR_KMIP, "%s: item %u: Result Status %u, Result Reason 0x%x: %.*s", what,
                             i + 1, r->items[i].status, r->items[i].reason, (int)r->items[i].message_len,
                             r->items[i].message != NULL ? r->items[i].message : "");
            return KG_BENCH_ERR_KMIP;
        }
    }
    if (r->count != expect_items) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "%s: %u batch items in the response, %u expected", what, r->count,
                         expect_items);
        return KG_BENCH_ERR_PROTO;
    }
    return KG_BENCH_OK;
}

static enum kg_bench_outcome kg_bench_built(struct kg_bench_thread *t, kg_result built, const char *what)
{
    if (kg_failed(built)) {
        /* Our own encoder refused: a bug here, reported like a protocol error. */
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "%s: cannot encode the request (%s)", what,
                         kg_error_name(kg_errno()));
        return KG_BENCH_ERR_PROTO;
    }
    return KG_BENCH_OK;
}

/* ---- operations ---------------------------------------------------------------------------- */

static enum kg_bench_outcome kg_bench_op_create(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                const struct kg_bench_deadline *dl, char uid[KG_BENCH_UID_MAX])
{
    struct kg_bench_response r;
    enum kg_bench_outcome o;

    o = kg_bench_built(t, kg_bench_build_create(t), "Create");
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, c, dl, 1, "Create", &r);
    }
    if (o == KG_BENCH_OK && kg_failed(kg_bench_payload_uid(&r, &r.items[0], uid))) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "Create: no usable Unique Identifier in the response");
        o = KG_BENCH_ERR_PROTO;
    }
    return o;
}

static enum kg_bench_outcome kg_bench_op_get(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                             const struct kg_bench_deadline *dl)
{
    const char *uid = t->run->uids[kg_bench_random(t, t->run->uid_count)];
    struct kg_bench_response r;
    struct kg_ttlv_item it;
    enum kg_bench_outcome o;

    o = kg_bench_built(t, kg_bench_build_uid_op(t, KG_OP_GET, uid, NULL), "Get");
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, c, dl, 1, "Get", &r);
    }
    if (o == KG_BENCH_OK && kg_failed(kg_bench_payload_find(&r, &r.items[0], KG_TAG_SYMMETRIC_KEY, &it, NULL))) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "Get: no Symmetric Key in the response");
        o = KG_BENCH_ERR_PROTO;
    }
    return o;
}

static enum kg_bench_outcome kg_bench_op_get_attributes(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                        const struct kg_bench_deadline *dl)
{
    const char *uid = t->run->uids[kg_bench_random(t, t->run->uid_count)];
    struct kg_bench_response r;
    struct kg_ttlv_item it;
    enum kg_bench_outcome o;

    /* State: what vCenter asks first and every server must answer. */
    o = kg_bench_built(t, kg_bench_build_uid_op(t, KG_OP_GET_ATTRIBUTES, uid, "State"), "Get Attributes");
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, c, dl, 1, "Get Attributes", &r);
    }
    if (o == KG_BENCH_OK && kg_failed(kg_bench_payload_find(&r, &r.items[0], KG_TAG_ATTRIBUTE, &it, NULL))) {
        kg_bench_explain(t, KG_BENCH_ERR_PROTO, "Get Attributes: State missing from the response");
        o = KG_BENCH_ERR_PROTO;
    }
    return o;
}

static enum kg_bench_outcome kg_bench_op_locate(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                const struct kg_bench_deadline *dl)
{
    uint32_t g = kg_bench_random(t, t->run->groups);
    struct kg_bench_response r;
    struct kg_ttlv_item it;
    enum kg_bench_outcome o;
    uint32_t n = 0;
    char value[64];

    snprintf(value, sizeof(value), "%s-%u", t->run->tag, g);
    o = kg_bench_built(t, kg_bench_build_locate(t, value), "Locate");
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, c, dl, 1, "Locate", &r);
    }
    if (o == KG_BENCH_OK) {
        /* A Locate that finds nothing has no Unique Identifier at all. */
        if (kg_failed(kg_bench_payload_find(&r, &r.items[0], KG_TAG_UNIQUE_IDENTIFIER, &it, &n))) {
            n = 0;
        }
        if (n != t->run->group_size[g]) {
            kg_bench_explain(t, KG_BENCH_ERR_PROTO, "Locate %s=%s: %u objects found, %u expected", KG_BENCH_TAG_NAME,
                             value, n, t->run->group_size[g]);
            o = KG_BENCH_ERR_PROTO;
        }
    }
    return o;
}

static enum kg_bench_outcome kg_bench_op_discover(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                                  const struct kg_bench_deadline *dl)
{
    struct kg_bench_response r;
    enum kg_bench_outcome o;

    o = kg_bench_built(t, kg_bench_build_discover(t), "Discover Versions");
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, c, dl, 1, "Discover Versions", &r);
    }
    return o;
}

/* A whole vCenter task on a connection of its own (VSPHERE.md). */
static enum kg_bench_outcome kg_bench_op_vsphere_task(struct kg_bench_thread *t, const struct kg_bench_deadline *dl)
{
    struct kg_bench_conn c = { .fd = -1 };
    struct kg_bench_response r;
    enum kg_bench_outcome o;
    char uid[KG_BENCH_UID_MAX];

    o = kg_bench_connect(t, &c, dl);
    if (o == KG_BENCH_OK) {
        o = kg_bench_op_discover(t, &c, dl);
    }
    if (o == KG_BENCH_OK) {
        o = kg_bench_op_create(t, &c, dl, uid);
    }
    if (o == KG_BENCH_OK) {
        o = kg_bench_built(t, kg_bench_build_vcenter_tags(t, uid), "Add Attribute x3");
    }
    if (o == KG_BENCH_OK) {
        o = kg_bench_roundtrip(t, &c, dl, 3, "Add Attribute x3", &r);
    }
    if (o == KG_BENCH_OK) {
        /* vCenter just closes: close_notify, no wait for the server's. */
        (void)SSL_shutdown(c.ssl);
    }
    kg_bench_close(&c);
    return o;
}

static enum kg_bench_outcome kg_bench_op_handshake(struct kg_bench_thread *t, const struct kg_bench_deadline *dl)
{
    struct kg_bench_conn c = { .fd = -1 };
    enum kg_bench_outcome o;

    o = kg_bench_connect(t, &c, dl);
    if (o == KG_BENCH_OK) {
        o = kg_bench_shutdown_wait(t, &c, dl);
    }
    kg_bench_close(&c);
    return o;
}

/* ---- threads ------------------------------------------------------------------------------- */

static void kg_bench_record(struct kg_bench_thread *t, uint64_t start, uint64_t end)
{
    const struct kg_bench_run *run = t->run;

    if (end < run->t_measure || end > run->t_stop) {
        return;
    }
    if (t->lat_len == t->lat_cap) {
        size_t cap = t->lat_cap ? t->lat_cap * 2 : 4096;
        uint64_t *grown = realloc(t->lat, cap * sizeof(*grown));
        if (grown == NULL) {
            t->alloc_failed = true;
            return;
        }
        t->lat = grown;
        t->lat_cap = cap;
    }
    t->lat[t->lat_len++] = end - start;
}

static bool kg_bench_persistent(enum kg_bench_mix mix)
{
    return mix != KG_BENCH_VSPHERE_TASK && mix != KG_BENCH_HANDSHAKE;
}

static enum kg_bench_outcome kg_bench_run_op(struct kg_bench_thread *t, struct kg_bench_conn *c,
                                             const struct kg_bench_deadline *dl)
{
    char uid[KG_BENCH_UID_MAX];

    switch (t->run->o->mix) {
    case KG_BENCH_GET:
        return kg_bench_op_get(t, c, dl);
    case KG_BENCH_CREATE:
        return kg_bench_op_create(t, c, dl, uid);
    case KG_BENCH_GET_ATTRIBUTES:
        return kg_bench_op_get_attributes(t, c, dl);
    case KG_BENCH_LOCATE:
        return kg_bench_op_locate(t, c, dl);
    case KG_BENCH_VSPHERE_TASK:
        return kg_bench_op_vsphere_task(t, dl);
    case KG_BENCH_HANDSHAKE:
        return kg_bench_op_handshake(t, dl);
    default:
        return KG_BENCH_ERR_PROTO;
    }
}

static void *kg_bench_thread_main(void *arg)
{
    struct kg_bench_thread *t = arg;
    struct kg_bench_run *run = t->run;
    const bool persistent = kg_bench_persistent(run->o->mix);
    struct kg_bench_conn c = { .fd = -1 };

    for (;;) {
        uint64_t start = kg_bench_now();
        struct kg_bench_deadline dl;
        enum kg_bench_outcome o = KG_BENCH_OK;

        if (start >= run->t_stop) {
            break;
        }
        dl = kg_bench_deadline_for(run, start);
        if (persistent && c.ssl == NULL) {
            /* Connecting is not an operation: only its failure is counted. */
            o = kg_bench_connect(t, &c, &dl);
            start = kg_bench_now();
            dl = kg_bench_deadline_for(run, start);
        }
        if (o == KG_BENCH_OK) {
            o = kg_bench_run_op(t, &c, &dl);
            if (o == KG_BENCH_OK) {
                kg_bench_record(t, start, kg_bench_now());
                continue;
            }
            if (o == KG_BENCH_ERR_KMIP) {
                /* The server answered properly; the connection stays usable. */
                t->errors[o]++;
                continue;
            }
        }
        kg_bench_close(&c);
        if (o == KG_BENCH_STOPPED) {
            uint64_t waited = kg_bench_now() - start;
            if (waited >= (run->t_stop - run->t_measure) / 10 * 9) {
                /* Pending through (nearly: threads start a little late) the
                 * whole window: a stalled connection, a server that never
                 * answers it, not a run that merely ended. */
                t->errors[KG_BENCH_ERR_TIMEOUT]++;
                kg_bench_explain(t, KG_BENCH_ERR_TIMEOUT, "no answer for %.1f s, until the run ended",
                                 (double)waited / 1e9);
            } else {
                t->unfinished++;
            }
            break;
        }
        t->errors[o]++;
        uint64_t until = kg_bench_now() + KG_BENCH_BACKOFF_MS * 1000000ull;
        kg_bench_sleep_until(until < run->t_stop ? until : run->t_stop);
    }
    if (c.ssl != NULL) {
        (void)SSL_shutdown(c.ssl); /* one non-blocking try: the run is over */
    }
    kg_bench_close(&c);
    return NULL;
}

static int kg_bench_thread_init(struct kg_bench_thread *t, struct kg_bench_run *run, uint32_t index)
{
    memset(t, 0, sizeof(*t));
    t->run = run;
    t->index = index;
    if (RAND_bytes((unsigned char *)&t->rng, sizeof(t->rng)) != 1 || t->rng == 0) {
        t->rng = 0x9E3779B97F4A7C15ull + index;
    }
    t->resp = malloc(KG_BENCH_MAX_RESPONSE);
    if (t->resp == NULL || kg_failed(kg_ttlv_writer_init(&t->w, KG_BENCH_MAX_REQUEST, false))) {
        return -1;
    }
    return 0;
}

static void kg_bench_thread_cleanup(struct kg_bench_thread *t)
{
    kg_ttlv_writer_cleanup(&t->w);
    if (t->resp != NULL) {
        /* Get responses carried key bytes. */
        OPENSSL_cleanse(t->resp, t->resp_high);
        free(t->resp);
    }
    free(t->lat);
    t->resp = NULL;
    t->lat = NULL;
}

/* ---- setup: key pool ------------------------------------------------------------------------ */

/*
 * Create the pool of keys the get, get-attributes and locate mixes use, on
 * one connection of the main thread, before the clock starts. For locate,
 * tag key i with x-kg-bench = "<run tag>-<i / 10>".
 */
static int kg_bench_make_pool(struct kg_bench_run *run, struct kg_bench_thread *t)
{
    const struct kg_bench_opts *o = run->o;
    struct kg_bench_conn c = { .fd = -1 };
    struct kg_bench_response r;
    struct kg_bench_deadline dl;
    enum kg_bench_outcome out;
    unsigned char rnd[8];
    int rc = -1;

    run->uids = calloc(o->keys, sizeof(*run->uids));
    run->groups = (o->keys + KG_BENCH_LOCATE_GROUP - 1) / KG_BENCH_LOCATE_GROUP;
    run->group_size = calloc(run->groups, sizeof(*run->group_size));
    if (run->uids == NULL || run->group_size == NULL || RAND_bytes(rnd, sizeof(rnd)) != 1) {
        fprintf(stderr, "kg-bench: out of memory or randomness for the key pool\n");
        return -1;
    }
    snprintf(run->tag, sizeof(run->tag), "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    for (uint32_t i = 0; i < o->keys; i++) {
        /* The pool has no run end yet: only the per-operation timeout. */
        dl = (struct kg_bench_deadline){ .at = kg_bench_now() + (uint64_t)o->timeout_ms * 1000000u };
        if (c.ssl == NULL) {
            out = kg_bench_connect(t, &c, &dl);
            if (out != KG_BENCH_OK) {
                fprintf(stderr, "kg-bench: cannot connect to create the key pool\n");
                goto out;
            }
        }
        out = kg_bench_op_create(t, &c, &dl, run->uids[i]);
        if (out != KG_BENCH_OK) {
            fprintf(stderr, "kg-bench: creating pool key %u of %u failed\n", i + 1, o->keys);
            goto out;
        }
        if (o->mix == KG_BENCH_LOCATE) {
            char value[64];
            snprintf(value, sizeof(value), "%s-%u", run->tag, i / KG_BENCH_LOCATE_GROUP);
            out = kg_bench_built(t, kg_bench_build_add_attribute(t, run->uids[i], KG_BENCH_TAG_NAME, value),
                                 "Add Attribute");
            if (out == KG_BENCH_OK) {
                out = kg_bench_roundtrip(t, &c, &dl, 1, "Add Attribute", &r);
            }
            if (out != KG_BENCH_OK) {
                fprintf(stderr, "kg-bench: tagging pool key %u with %s failed\n", i + 1, KG_BENCH_TAG_NAME);
                goto out;
            }
            run->group_size[i / KG_BENCH_LOCATE_GROUP]++;
        }
        run->uid_count++;
    }
    rc = 0;
out:
    kg_bench_close(&c);
    return rc;
}

/* ---- setup: TLS and address ----------------------------------------------------------------- */

static SSL_CTX *kg_bench_tls_context(const struct kg_bench_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        (o->tls_max != 0 && SSL_CTX_set_max_proto_version(ctx, o->tls_max) != 1)) {
        fprintf(stderr, "kg-bench: cannot set the TLS versions\n");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
        fprintf(stderr, "kg-bench: cannot load the client certificate %s\n", o->cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr, "kg-bench: cannot load the client key %s (or it does not match the certificate)\n", o->key);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
        fprintf(stderr, "kg-bench: cannot load the CA file %s\n", o->ca);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Every connection is a full handshake: no session is ever offered. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Servers that close without close_notify (PyKMIP) then look like a
     * clean close: fine once we closed; in the middle of a response it is
     * still an error (the peer closed). */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

static int kg_bench_resolve(struct kg_bench_run *run, const struct kg_bench_opts *o)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    unsigned char ip[sizeof(struct in6_addr)];
    int err = getaddrinfo(o->host, o->port, &hints, &res);

    if (err != 0 || res == NULL || res->ai_addrlen > sizeof(run->addr)) {
        fprintf(stderr, "kg-bench: cannot resolve %s port %s: %s\n", o->host, o->port,
                err != 0 ? gai_strerror(err) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return -1;
    }
    memcpy(&run->addr, res->ai_addr, res->ai_addrlen);
    run->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    run->servername_is_ip = inet_pton(AF_INET, o->servername, ip) == 1 || inet_pton(AF_INET6, o->servername, ip) == 1;
    return 0;
}

/* ---- results ------------------------------------------------------------------------------- */

static int kg_bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted `v`, in milliseconds. */
static double kg_bench_pct_ms(const uint64_t *v, size_t n, double q)
{
    size_t rank;

    if (n == 0) {
        return NAN; /* printed as "nan": no operation, no latency */
    }
    rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n) {
        rank++;
    }
    if (rank < 1) {
        rank = 1;
    }
    if (rank > n) {
        rank = n;
    }
    return (double)v[rank - 1] / 1e6;
}

static double kg_bench_cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0.0;
    }
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- command line ---------------------------------------------------------------------------- */

static void kg_bench_usage(FILE *f)
{
    fprintf(f,
            "usage: kg-bench --mix MIX --port PORT --cert FILE --key FILE --ca FILE [options]\n"
            "  --mix MIX          get | create | get-attributes | locate | vsphere-task | handshake\n"
            "  --host ADDR        server address (default 127.0.0.1)\n"
            "  --port PORT        server port (required)\n"
            "  --servername NAME  name or IP the server certificate must carry (default: --host)\n"
            "  --cert/--key FILE  client certificate and key (PEM)\n"
            "  --ca FILE          CA bundle that signs the server certificate\n"
            "  --conns N          connections, one thread each, 1..%u (default 1)\n"
            "  --secs S           measured duration in seconds (default 10)\n"
            "  --warmup S         unmeasured load before it (default 2)\n"
            "  --keys N           pool size for get, get-attributes, locate (default 100)\n"
            "  --timeout-ms MS    one operation (or connect) longer than this is an error (default 5000)\n"
            "  --kmip 1.N         protocol version in request headers (default 1.1, as vCenter)\n"
            "  --tls-max 1.2|1.3  highest TLS version offered (default 1.3)\n"
            "  --quiet            only the machine-readable line\n"
            "Prints one line `mix=.. conns=.. ops=.. secs=.. ops_per_sec=.. p50_ms=.. p99_ms=.. p999_ms=..\n"
            "errors=..` (errors over warm-up and measurement) and a human summary.\n"
            "Exit: 0 clean, 1 errors or no operation, 2 usage or setup failure.\n",
            KG_BENCH_MAX_CONNS);
}

static bool kg_bench_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool kg_bench_parse_secs(const char *s, double lo, double *out)
{
    char *end = NULL;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo) || v > 86400.0) {
        return false;
    }
    *out = v;
    return true;
}

static int kg_bench_parse_args(int argc, char **argv, struct kg_bench_opts *o)
{
    static const struct option longopts[] = {
        { "mix", required_argument, NULL, 'm' },    { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },   { "servername", required_argument, NULL, 'S' },
        { "cert", required_argument, NULL, 'c' },   { "key", required_argument, NULL, 'k' },
        { "ca", required_argument, NULL, 'a' },     { "conns", required_argument, NULL, 'n' },
        { "secs", required_argument, NULL, 's' },   { "warmup", required_argument, NULL, 'w' },
        { "keys", required_argument, NULL, 'K' },   { "timeout-ms", required_argument, NULL, 't' },
        { "kmip", required_argument, NULL, 'v' },   { "tls-max", required_argument, NULL, 'T' },
        { "quiet", no_argument, NULL, 'q' },        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool have_mix = false;
    uint32_t port;
    int ch;

    *o = (struct kg_bench_opts){ .host = "127.0.0.1", .conns = 1, .secs = 10.0, .warmup = 2.0, .keys = 100,
                                 .timeout_ms = 5000, .kmip_minor = 1 };
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            for (size_t i = 0; i < KG_BENCH_MIX_COUNT; i++) {
                if (strcmp(optarg, kg_bench_mix_names[i]) == 0) {
                    o->mix = (enum kg_bench_mix)i;
                    have_mix = true;
                }
            }
            if (!have_mix) {
                fprintf(stderr, "kg-bench: unknown mix '%s'\n", optarg);
                return -1;
            }
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            if (!kg_bench_parse_u32(optarg, 1, 65535, &port)) {
                fprintf(stderr, "kg-bench: bad port '%s'\n", optarg);
                return -1;
            }
            o->port = optarg;
            break;
        case 'S':
            o->servername = optarg;
            break;
        case 'c':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'a':
            o->ca = optarg;
            break;
        case 'n':
            if (!kg_bench_parse_u32(optarg, 1, KG_BENCH_MAX_CONNS, &o->conns)) {
                fprintf(stderr, "kg-bench: --conns must be 1..%u\n", KG_BENCH_MAX_CONNS);
                return -1;
            }
            break;
        case 's':
            if (!kg_bench_parse_secs(optarg, 0.1, &o->secs)) {
                fprintf(stderr, "kg-bench: --secs must be at least 0.1\n");
                return -1;
            }
            break;
        case 'w':
            if (!kg_bench_parse_secs(optarg, 0.0, &o->warmup)) {
                fprintf(stderr, "kg-bench: bad --warmup\n");
                return -1;
            }
            break;
        case 'K':
            if (!kg_bench_parse_u32(optarg, 1, KG_BENCH_MAX_KEYS, &o->keys)) {
                fprintf(stderr, "kg-bench: --keys must be 1..%u\n", KG_BENCH_MAX_KEYS);
                return -1;
            }
            break;
        case 't':
            if (!kg_bench_parse_u32(optarg, 1, 600000, &o->timeout_ms)) {
                fprintf(stderr, "kg-bench: --timeout-ms must be 1..600000\n");
                return -1;
            }
            break;
        case 'v':
            if (strlen(optarg) != 3 || optarg[0] != '1' || optarg[1] != '.' || optarg[2] < '0' || optarg[2] > '4') {
                fprintf(stderr, "kg-bench: --kmip must be 1.0 .. 1.4\n");
                return -1;
            }
            o->kmip_minor = optarg[2] - '0';
            break;
        case 'T':
            if (strcmp(optarg, "1.2") == 0) {
                o->tls_max = TLS1_2_VERSION;
            } else if (strcmp(optarg, "1.3") == 0) {
                o->tls_max = TLS1_3_VERSION;
            } else {
                fprintf(stderr, "kg-bench: --tls-max must be 1.2 or 1.3\n");
                return -1;
            }
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'h':
            kg_bench_usage(stdout);
            exit(0);
        default:
            kg_bench_usage(stderr);
            return -1;
        }
    }
    if (optind != argc || !have_mix || o->port == NULL || o->cert == NULL || o->key == NULL || o->ca == NULL) {
        kg_bench_usage(stderr);
        return -1;
    }
    if (o->servername == NULL) {
        o->servername = o->host;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct kg_bench_opts o;
    struct kg_bench_run run;
    struct kg_bench_thread *threads = NULL;
    uint64_t *all = NULL;
    uint64_t errors[KG_BENCH_ERR_KINDS] = { 0 }, unfinished = 0, total_errors = 0;
    size_t n = 0;
    uint32_t started = 0;
    double cpu0, cpu1, wall0, wall1, p50, p99, p999, max, ops_per_sec;
    const char *tls_version = "-", *tls_cipher = "-";
    bool alloc_failed = false;
    int rc = 2;

    if (kg_bench_parse_args(argc, argv, &o) != 0) {
        return 2;
    }
    memset(&run, 0, sizeof(run));
    run.o = &o;
    for (int k = 0; k < KG_BENCH_ERR_KINDS; k++) {
        atomic_init(&run.errors_shown[k], 0);
    }
    /* A server closing on us must be an error we count, not a SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (kg_bench_resolve(&run, &o) != 0 || (run.ctx = kg_bench_tls_context(&o)) == NULL) {
        goto out;
    }
    threads = calloc(o.conns, sizeof(*threads));
    if (threads == NULL) {
        goto out;
    }
    for (uint32_t i = 0; i < o.conns; i++) {
        if (kg_bench_thread_init(&threads[i], &run, i) != 0) {
            fprintf(stderr, "kg-bench: out of memory\n");
            goto out;
        }
    }
    if (o.mix == KG_BENCH_GET || o.mix == KG_BENCH_GET_ATTRIBUTES || o.mix == KG_BENCH_LOCATE) {
        if (kg_bench_make_pool(&run, &threads[0]) != 0) {
            goto out;
        }
        memset(threads[0].tls_version, 0, sizeof(threads[0].tls_version));
    }

    wall0 = (double)kg_bench_now() / 1e9;
    run.t_measure = kg_bench_now() + (uint64_t)(o.warmup * 1e9);
    run.t_stop = run.t_measure + (uint64_t)(o.secs * 1e9);
    cpu0 = kg_bench_cpu_seconds();
    for (; started < o.conns; started++) {
        if (pthread_create(&threads[started].tid, NULL, kg_bench_thread_main, &threads[started]) != 0) {
            fprintf(stderr, "kg-bench: cannot start thread %u\n", started);
            break;
        }
    }
    for (uint32_t i = 0; i < started; i++) {
        pthread_join(threads[i].tid, NULL);
    }
    cpu1 = kg_bench_cpu_seconds();
    wall1 = (double)kg_bench_now() / 1e9;
    if (started < o.conns) {
        goto out;
    }

    for (uint32_t i = 0; i < o.conns; i++) {
        n += threads[i].lat_len;
    }
    all = malloc((n ? n : 1) * sizeof(*all));
    if (all == NULL) {
        fprintf(stderr, "kg-bench: out of memory\n");
        goto out;
    }
    n = 0;
    for (uint32_t i = 0; i < o.conns; i++) {
        struct kg_bench_thread *t = &threads[i];
        if (t->lat_len > 0) {
            memcpy(all + n, t->lat, t->lat_len * sizeof(*all));
        }
        n += t->lat_len;
        for (int k = 0; k < KG_BENCH_ERR_KINDS; k++) {
            errors[k] += t->errors[k];
        }
        unfinished += t->unfinished;
        alloc_failed |= t->alloc_failed;
        if (tls_version[0] == '-' && t->tls_version[0] != '\0') {
            tls_version = t->tls_version;
            tls_cipher = t->tls_cipher;
        }
    }
    if (alloc_failed) {
        fprintf(stderr, "kg-bench: out of memory recording latencies: results incomplete\n");
        goto out;
    }
    qsort(all, n, sizeof(*all), kg_bench_cmp_u64);
    p50 = kg_bench_pct_ms(all, n, 0.50);
    p99 = kg_bench_pct_ms(all, n, 0.99);
    p999 = kg_bench_pct_ms(all, n, 0.999);
    max = n ? (double)all[n - 1] / 1e6 : NAN;
    ops_per_sec = (double)n / o.secs;
    for (int k = 0; k < KG_BENCH_ERR_KINDS; k++) {
        total_errors += errors[k];
    }

    printf("mix=%s conns=%u ops=%zu secs=%.2f ops_per_sec=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
           "errors=%" PRIu64 " err_kmip=%" PRIu64 " err_tls=%" PRIu64 " err_timeout=%" PRIu64 " err_proto=%" PRIu64
           " unfinished=%" PRIu64 " tls=%s client_cpus=%.2f\n",
           kg_bench_mix_names[o.mix], o.conns, n, o.secs, ops_per_sec, p50, p99, p999, max, total_errors,
           errors[KG_BENCH_ERR_KMIP], errors[KG_BENCH_ERR_TLS], errors[KG_BENCH_ERR_TIMEOUT],
           errors[KG_BENCH_ERR_PROTO], unfinished, tls_version, (cpu1 - cpu0) / (wall1 - wall0));
    if (!o.quiet && n == 0) {
        printf("%s with %u connection%s: no operation completed in %.1f s (after %.1f s warm-up); %" PRIu64
               " error%s\n",
               kg_bench_mix_names[o.mix], o.conns, o.conns == 1 ? "" : "s", o.secs, o.warmup, total_errors,
               total_errors == 1 ? "" : "s");
    } else if (!o.quiet) {
        printf("%s with %u connection%s: %.1f ops/s over %.1f s (after %.1f s warm-up); latency p50 %.3f ms, "
               "p99 %.3f ms, p99.9 %.3f ms, max %.3f ms; %" PRIu64 " error%s; %s %s; client used %.2f CPUs\n",
               kg_bench_mix_names[o.mix], o.conns, o.conns == 1 ? "" : "s", ops_per_sec, o.secs, o.warmup, p50, p99,
               p999, max, total_errors, total_errors == 1 ? "" : "s", tls_version, tls_cipher,
               (cpu1 - cpu0) / (wall1 - wall0));
    }
    fflush(stdout);
    rc = (total_errors == 0 && n > 0) ? 0 : 1;
out:
    if (threads != NULL) {
        for (uint32_t i = 0; i < o.conns; i++) {
            kg_bench_thread_cleanup(&threads[i]);
        }
    }
    free(threads);
    free(all);
    free(run.uids);
    free(run.group_size);
    SSL_CTX_free(run.ctx);
    return rc;
}
