/*
 * kg_async.h - the table of pending asynchronous operations (KMIP 1.4
 * sections 4.27 Cancel, 4.28 Poll, 6.7 Asynchronous Indicator, 6.8
 * Asynchronous Correlation Value).
 *
 * A request item the dispatcher defers (kg_dispatch.c decides which) is
 * kept here as a copy of its Request Payload's bytes, under a random
 * correlation value, until its client polls it (the item then runs through
 * the ordinary dispatcher path), cancels it, closes its connection, or lets
 * it expire. Nothing secret is ever put here: only operations whose request
 * carries no key material are deferred, and the header's credential is not
 * kept (a polled item is authorised with the Poll message's own).
 *
 * Bounded three ways: entries in all (max_total), entries per connection
 * (max_per_conn) and bytes per entry (KG_ASYNC_MAX_PAYLOAD); entries expire
 * lifetime_ms after they were made. An entry answers only to the identity
 * that made it, in the protocol version it was made in: for anyone else it
 * does not exist. Thread-safe: one mutex guards the table.
 */
#ifndef KG_ASYNC_H
#define KG_ASYNC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kg_result.h"

/* Bytes of a correlation value (RAND_bytes): unguessable, so knowing one is
 * never the only check, but the owner check below does not rely on it. */
#define KG_ASYNC_ID_LEN 16u
/* Longest Request Payload kept: the deferred operations have small ones. */
#define KG_ASYNC_MAX_PAYLOAD 16384u
/* Owner key: the client certificate's SHA-256 fingerprint, hex. */
#define KG_ASYNC_OWNER_MAX 64u

struct kg_async_limits {
    uint32_t max_total;    /* 0: the table is off, nothing is deferred */
    uint32_t max_per_conn;
    uint32_t lifetime_ms;
};

/* Who makes, polls or cancels an entry. */
struct kg_async_who {
    const char *owner;     /* NUL-terminated, at most KG_ASYNC_OWNER_MAX */
    uint64_t conn_id;
    int32_t version_major, version_minor;
};

/* One pending item, as kg_async_take hands it back. */
struct kg_async_entry {
    bool used;
    uint8_t id[KG_ASYNC_ID_LEN];
    char owner[KG_ASYNC_OWNER_MAX + 1];
    uint64_t conn_id;
    int32_t version_major, version_minor;
    uint32_t operation;
    uint64_t expires_ms;
    uint8_t *payload;      /* owned (malloc), the Request Payload's children */
    uint32_t payload_len;
};

struct kg_async {
    pthread_mutex_t lock;
    struct kg_async_limits limits;
    struct kg_async_entry *entries; /* owned, limits.max_total of them */
    bool ready;
};

/* Set up an empty table (all zero limits: a table that defers nothing). */
kg_result kg_async_init(struct kg_async *t, const struct kg_async_limits *limits) KG_WARN_UNUSED;

/* Free every entry and the table. No other thread may use it any more. */
void kg_async_cleanup(struct kg_async *t);

/*
 * Keep a copy of payload[0..len) for `who` and `operation`; its fresh
 * correlation value goes to id_out. *queued is false, and nothing is kept,
 * when the table is off or full (in all or for who's connection) or the
 * payload is too long: the caller then answers at once. Errors only for
 * out of memory or a failing random generator.
 */
kg_result kg_async_add(struct kg_async *t, const struct kg_async_who *who, uint32_t operation,
                       const uint8_t *payload, uint32_t len, uint64_t now_ms, uint8_t id_out[KG_ASYNC_ID_LEN],
                       bool *queued) KG_WARN_UNUSED;

/*
 * Remove the entry `id` of `who` (same owner and protocol version) and move
 * it to *out, which then owns its payload (kg_async_entry_clear frees it).
 * An unknown, expired or someone else's value: KG_ERR_NOT_FOUND, and the
 * table is left as it was.
 */
kg_result kg_async_take(struct kg_async *t, const struct kg_async_who *who, const uint8_t *id, uint32_t id_len,
                        uint64_t now_ms, struct kg_async_entry *out) KG_WARN_UNUSED;

/* Free an entry's payload and clear it. */
void kg_async_entry_clear(struct kg_async_entry *e);

/* Drop every entry made on connection conn_id (it closed). */
void kg_async_drop_conn(struct kg_async *t, uint64_t conn_id);

/* Drop the expired entries: the server calls it every 100 ms, so an entry
 * nobody asks about is freed soon after it expires, not at the next use. */
void kg_async_sweep(struct kg_async *t, uint64_t now_ms);

/* Entries pending now (expired ones are dropped first), for tests. */
uint32_t kg_async_count(struct kg_async *t, uint64_t now_ms);

#endif
