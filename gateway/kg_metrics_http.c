/*
 * kg_metrics_http.c - /metrics and /health on libmicrohttpd.
 *
 * One internal polling thread answers everything: a scrape renders a few
 * kilobytes, and a health probe waits at most KG_METRICS_HEALTH_HSM_WAIT_MS
 * for the HSM, so a thread per connection would buy nothing. Few
 * connections are allowed and idle ones are dropped: this listener must
 * never cost the KMIP side descriptors or memory.
 */
#include "kg_metrics_http.h"

#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "kg_audit.h"
#include "kg_metrics.h"
#include "kg_server.h"
#include "kg_store.h"

#define KG_METRICS_HTTP_MAX_CONNECTIONS 16
#define KG_METRICS_HTTP_IDLE_SECONDS 10

struct kg_metrics_http {
    struct MHD_Daemon *daemon;
    const struct kg_config *cfg; /* borrowed */
    struct kg_p11 *p11;          /* borrowed */
};

static void kg_metrics_http_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* libmicrohttpd ends its messages with a newline; kg_log adds its own. */
    msg[strcspn(msg, "\n")] = '\0';
    kg_log("warn", "metrics listener: %s", msg);
}

/* Queue `body`; with MHD_RESPMEM_MUST_FREE it is a malloc'd buffer this takes over. */
static enum MHD_Result kg_metrics_http_reply(struct MHD_Connection *conn, unsigned int status,
                                             const char *content_type, char *body, size_t len,
                                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp;
    enum MHD_Result r;

    resp = MHD_create_response_from_buffer(len, body, mode);
    if (resp == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE) {
            free(body);
        }
        return MHD_NO; /* libmicrohttpd closes the connection */
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET) != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result kg_metrics_http_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
    /* A string literal: libmicrohttpd only reads it. */
    return kg_metrics_http_reply(conn, status, "text/plain; charset=utf-8", (char *)(uintptr_t)text, strlen(text),
                                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result kg_metrics_http_metrics(struct kg_metrics_http *http, struct MHD_Connection *conn)
{
    struct kg_metrics_gauges gauges = { .has_hsm = http->p11 != NULL };
    struct kg_p11_stats stats;
    char *text = NULL;
    size_t len = 0;

    if (http->p11 != NULL) {
        kg_p11_get_stats(http->p11, &stats);
        gauges.hsm_sessions = stats.max_sessions;
        gauges.hsm_sessions_open = stats.sessions_open;
        gauges.hsm_sessions_idle = stats.sessions_idle;
    }
    gauges.hsm_errors = kg_p11_error_count();
    if (kg_failed(kg_metrics_render(&gauges, &text, &len))) {
        return kg_metrics_http_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the metrics\n");
    }
    return kg_metrics_http_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                                 MHD_RESPMEM_MUST_FREE);
}

/*
 * Does the store answer? A connection of the probe's own, opened and closed
 * each time: a connection kept open would go on reading through descriptors
 * it already holds after the file became unreadable, been replaced or
 * removed, where a worker or the committer opening it now would fail. A
 * file that is missing, or whose directory cannot be searched, is a failure
 * and not something to create (kg_store_open would create it).
 */
static bool kg_metrics_http_store_ok(const char *path)
{
    struct kg_store *store = NULL;
    int version = 0;
    bool ok;

    ok = kg_ok(kg_store_open_existing(path, &store)) && kg_ok(kg_store_schema_version(store, &version));
    if (!ok) {
        kg_log("warn", "health: the store does not answer: %s (%s)", kg_error_name(kg_errno()), kg_error_text());
    }
    kg_store_close(store);
    return ok;
}

static bool kg_metrics_http_hsm_ok(struct kg_p11 *p11)
{
    if (p11 == NULL || kg_failed(kg_p11_ping(p11, KG_METRICS_HEALTH_HSM_WAIT_MS))) {
        kg_log("warn", "health: the HSM does not answer: %s (%s)", kg_error_name(kg_errno()), kg_error_text());
        return false;
    }
    return true;
}

static enum MHD_Result kg_metrics_http_health(struct kg_metrics_http *http, struct MHD_Connection *conn)
{
    const bool hsm = kg_metrics_http_hsm_ok(http->p11);
    const bool store = kg_metrics_http_store_ok(http->cfg->store_path);
    char body[64];
    int n;

    n = snprintf(body, sizeof(body), "{\"hsm\":\"%s\",\"store\":\"%s\"}\n", hsm ? "ok" : "failed",
                 store ? "ok" : "failed");
    return kg_metrics_http_reply(conn, hsm && store ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result kg_metrics_http_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                              const char *method, const char *version, const char *upload_data,
                                              size_t *upload_data_size, void **con_cls)
{
    struct kg_metrics_http *http = cls;

    /* Answered on the first call, before any request body is read: a
     * body is never wanted, and libmicrohttpd drops the rest. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        return kg_metrics_http_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    }
    if (strcmp(url, "/metrics") == 0) {
        return kg_metrics_http_metrics(http, conn);
    }
    if (strcmp(url, "/health") == 0) {
        return kg_metrics_http_health(http, conn);
    }
    return kg_metrics_http_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /health\n");
}

kg_result kg_metrics_http_start(const struct kg_config *cfg, struct kg_p11 *p11, struct kg_metrics_http **out)
{
    struct kg_metrics_http *http = NULL;
    sigset_t all, old;
    int fd = -1;

    *out = NULL;
    if (cfg->metrics_listen.address == NULL) {
        return KG_RESULT_OK;
    }
    http = calloc(1, sizeof(*http));
    KG_ENSURE(http != NULL, KG_ERR_NOMEM);
    http->cfg = cfg;
    http->p11 = p11;
    if (kg_failed(kg_server_listen(cfg->metrics_listen.address, cfg->metrics_listen.port, &fd))) {
        free(http);
        return KG_RESULT_ERROR;
    }
    /* The thread libmicrohttpd starts inherits this mask: SIGTERM and the
     * rest must reach the event loop's signalfd, not kill the process here. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    http->daemon = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                    kg_metrics_http_answer, http, MHD_OPTION_EXTERNAL_LOGGER, kg_metrics_http_log,
                                    NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                                    (unsigned int)KG_METRICS_HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                                    (unsigned int)KG_METRICS_HTTP_IDLE_SECONDS, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (http->daemon == NULL) {
        close(fd);
        free(http);
        KG_BAIL(KG_ERR_INTERNAL);
    }
    kg_log("info", "serving metrics and health over plain HTTP on %s:%u", cfg->metrics_listen.address,
           (unsigned)cfg->metrics_listen.port);
    *out = http;
    return KG_RESULT_OK;
}

void kg_metrics_http_stop(struct kg_metrics_http *http)
{
    if (http == NULL) {
        return;
    }
    /* Waits for a request being answered; closes the listening socket. */
    MHD_stop_daemon(http->daemon);
    free(http);
}
