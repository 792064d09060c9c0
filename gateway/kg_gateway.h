/*
 * kg_gateway.h - the state one running gateway shares between workers, and
 * the per-message entry point.
 */
#ifndef KG_GATEWAY_H
#define KG_GATEWAY_H

#include <pthread.h>
#include <stdbool.h>

#include "kg_async.h"
#include "kg_audit.h"
#include "kg_commit.h"
#include "kg_config.h"
#include "kg_p11.h"
#include "kg_policy.h"
#include "kg_result.h"
#include "kg_store.h"
#include "kg_ttlv.h"

struct kg_gateway {
    const struct kg_config *config; /* borrowed */
    struct kg_p11 *p11;             /* borrowed */
    struct kg_audit *audit;         /* borrowed */
    struct kg_committer *committer; /* borrowed; every change goes through it */
    struct kg_ttlv_limits limits;
    /* The policy is swapped whole on SIGHUP. Each request takes a reference
     * to the policy in force when it starts and keeps it to its response, so
     * a group pointer never dangles; the swap never waits for requests (a
     * request stuck in a hung HSM call must not stall a reload, which runs on
     * the event loop). The lock guards only the pointer and the counts. */
    pthread_mutex_t policy_lock;
    struct kg_policy_ref *policy;   /* owned */
    /* Operations deferred by an Asynchronous Indicator, until polled,
     * cancelled, expired or their connection closes (kg_async.h). */
    struct kg_async async;
};

/* Set up the policy reference of `gw`, taking ownership of `policy`, and
 * the table of pending operations, sized by gw->config (set before). */
kg_result kg_gateway_init(struct kg_gateway *gw, struct kg_policy *policy) KG_WARN_UNUSED;

/* Release the policy and the pending operations (requests must be over). */
void kg_gateway_cleanup(struct kg_gateway *gw);

/*
 * Process one complete request message `in[0..len)` from `identity`, read on
 * connection `conn_id` (unique for the process's life; 0: none, and then
 * nothing is deferred), and
 * write the whole response message into `out` (a writer the caller owns,
 * locked memory since a Get answer carries key bytes). *close is set when
 * the connection must be closed after sending (framing lost or a cap hit).
 * When nothing can be answered at all, returns an error and writes nothing.
 */
kg_result kg_gateway_process(struct kg_gateway *gw, struct kg_store *store, const struct kg_identity *identity,
                             uint64_t conn_id, const uint8_t *in, uint32_t len, struct kg_ttlv_writer *out,
                             bool *close) KG_WARN_UNUSED;

/* Connection conn_id closed: its pending operations go (kg_async.h). */
void kg_gateway_connection_closed(struct kg_gateway *gw, uint64_t conn_id);

/* Replace the policy (takes ownership of `policy`); the old one is freed
 * when the last request using it ends. Never blocks on requests. */
void kg_gateway_swap_policy(struct kg_gateway *gw, struct kg_policy *policy);

#endif
