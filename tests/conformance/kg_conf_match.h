/*
 * kg_conf_match.h - placeholders and response matching for kg-conformance.
 *
 * A test vector's messages name values the server chooses with placeholders
 * ($UNIQUE_IDENTIFIER_n, $KEY_MATERIAL_n, ...; README of kmip-vectors). The
 * first time an expected response holds one, it is bound to what the server
 * sent there; later requests get the bound value. $NOW, $NOW+k and $NOW-k
 * are the current time plus or minus k seconds.
 *
 * Matching: tags, types and structure must be equal; leaf values are
 * compared as TTLV bytes after encoding the expected XML value, except
 * placeholders and the values a server chooses (time stamps, identifiers,
 * correlation values, and key bytes and digests of keys it generated), which
 * match any value of their type. Repeated siblings with the same tag (attributes, identifiers in a
 * Locate response, operations in a Query response) may come in any order.
 * In a Query answer the server describes itself: its lists of Operations and
 * Object Types match any non-empty list of their type, and its Vendor
 * Identification and Server Information contents any value (nothing else).
 */
#ifndef KG_CONF_MATCH_H
#define KG_CONF_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libxml/tree.h>

#include "kg_result.h"

#define KG_CONF_MAX_BINDINGS 512u
#define KG_CONF_MAX_PLACEHOLDER 64u

struct kg_conf_binding {
    char name[KG_CONF_MAX_PLACEHOLDER]; /* without the '$' */
    char *value;                        /* owned (malloc); XML value text */
};

/* One test case's bindings; zero-initialise, release with kg_conf_bindings_free. */
struct kg_conf_bindings {
    struct kg_conf_binding items[KG_CONF_MAX_BINDINGS];
    size_t count;
};

void kg_conf_bindings_free(struct kg_conf_bindings *b);

/*
 * Replace the placeholders in the value attributes of `req` (a copy the
 * caller owns) with bound values and times relative to `now`. Fails with
 * KG_ERR_MISSING_FIELD and a detail naming an unbound placeholder.
 */
kg_result kg_conf_bind_request(xmlNode *req, const struct kg_conf_bindings *b, time_t now) KG_WARN_UNUSED;

/*
 * Compare expected element `expected` with the TTLV message `resp`. Returns
 * true on a match (new bindings kept); false with the first mismatch written
 * to `why` ("BatchItem[0]/ResultStatus expected Success got OperationFailed").
 * Key Material and Digest Value match any bytes only when `server_keys` (the
 * case has the server generate keys); otherwise, keys being registered by
 * the case, they are known and compared, wrapped forms included.
 */
bool kg_conf_match(const xmlNode *expected, const uint8_t *resp, uint32_t len, struct kg_conf_bindings *b,
                   bool server_keys, char *why, size_t why_cap);

/* True when a request of the case makes the server generate key bytes
 * (Create, Create Key Pair, Re-key, Derive Key, ...) or finds keys it made
 * ahead of need (a Locate of Fresh group members). */
bool kg_conf_server_generates_keys(const xmlNode *root);

#endif
