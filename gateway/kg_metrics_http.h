/*
 * kg_metrics_http.h - the metrics listener: GET /metrics (Prometheus text
 * format 0.0.4) and GET /health, over plain HTTP on metrics.listen.
 *
 * Plain HTTP because a scraper on the management network should need no
 * client certificate; what it answers holds counts only: no key material,
 * no UIDs, no client identities. It must therefore be bound to loopback or
 * a management network (README, "Metrics and health").
 */
#ifndef KG_METRICS_HTTP_H
#define KG_METRICS_HTTP_H

#include "kg_config.h"
#include "kg_p11.h"
#include "kg_result.h"

struct kg_metrics_http;

/* How long /health waits for a free PKCS#11 session before calling the
 * HSM busy: a probe must answer within a scraper's timeout. */
#define KG_METRICS_HEALTH_HSM_WAIT_MS 1000u

/*
 * Listen on cfg->metrics_listen and serve from a thread of libmicrohttpd's
 * own, which blocks every signal (the event loop takes them by signalfd).
 * Does nothing, with *out NULL, when the listener is off. `cfg` and `p11`
 * are borrowed and must outlive kg_metrics_http_stop. Caller owns *out.
 * Errors: KG_ERR_CONFIG (cannot bind the address), KG_ERR_INTERNAL (the
 * HTTP server would not start).
 */
kg_result kg_metrics_http_start(const struct kg_config *cfg, struct kg_p11 *p11,
                                struct kg_metrics_http **out) KG_WARN_UNUSED;

/* Stop serving, close the listener, free `http`. Accepts NULL. */
void kg_metrics_http_stop(struct kg_metrics_http *http);

#endif
