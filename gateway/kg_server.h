/* kg_server.h - the TCP/TLS front of the gateway. */
#ifndef KG_SERVER_H
#define KG_SERVER_H

#include <openssl/ssl.h>

#include "kg_config.h"
#include "kg_gateway.h"
#include "kg_result.h"

/*
 * Listen on the configured address and serve until SIGTERM or SIGINT, then
 * drain: stop accepting, finish requests in flight, close idle connections.
 * SIGHUP reloads the policy (checked in full first; on any error the old
 * policy stays). Borrows everything it is given.
 */
/*
 * Bind and listen on `address` (an IP address or host name) and `port`,
 * non-blocking and close-on-exec; the caller owns *out_fd. Errors:
 * KG_ERR_CONFIG naming the address (unresolvable, in use, not ours).
 */
kg_result kg_server_listen(const char *address, uint16_t port, int *out_fd) KG_WARN_UNUSED;

kg_result kg_server_run(const struct kg_config *cfg, struct kg_gateway *gw, SSL_CTX *ssl_ctx) KG_WARN_UNUSED;

#endif
