/*
 * kg_async.c - the table of pending asynchronous operations (kg_async.h).
 *
 * A flat array scanned under one lock: max_total is small (default 1024)
 * and every scan is a few comparisons per slot, far below the cost of the
 * TLS record the request came in.
 */
#include "kg_async.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

kg_result kg_async_init(struct kg_async *t, const struct kg_async_limits *limits)
{
    memset(t, 0, sizeof(*t));
    t->limits = *limits;
    if (t->limits.max_total > 0) {
        t->entries = calloc(t->limits.max_total, sizeof(*t->entries));
        KG_ENSURE(t->entries != NULL, KG_ERR_NOMEM);
    }
    pthread_mutex_init(&t->lock, NULL);
    t->ready = true;
    return KG_RESULT_OK;
}

void kg_async_entry_clear(struct kg_async_entry *e)
{
    /* Not secret (kg_async.h), but a request's bytes are not left behind. */
    if (e->payload != NULL) {
        OPENSSL_cleanse(e->payload, e->payload_len);
        free(e->payload);
    }
    memset(e, 0, sizeof(*e));
}

void kg_async_cleanup(struct kg_async *t)
{
    if (!t->ready) {
        return;
    }
    for (uint32_t i = 0; i < t->limits.max_total; i++) {
        kg_async_entry_clear(&t->entries[i]);
    }
    free(t->entries);
    pthread_mutex_destroy(&t->lock);
    memset(t, 0, sizeof(*t));
}

/* Drop expired entries; the lock is held. */
static void kg_async_expire(struct kg_async *t, uint64_t now_ms)
{
    for (uint32_t i = 0; i < t->limits.max_total; i++) {
        if (t->entries[i].used && t->entries[i].expires_ms <= now_ms) {
            kg_async_entry_clear(&t->entries[i]);
        }
    }
}

static bool kg_async_owned_by(const struct kg_async_entry *e, const struct kg_async_who *who)
{
    return strcmp(e->owner, who->owner) == 0 && e->version_major == who->version_major &&
           e->version_minor == who->version_minor;
}

/* A free slot, or NULL when the table or who's connection is full; the
 * lock is held and expired entries are gone. */
static struct kg_async_entry *kg_async_free_slot(struct kg_async *t, uint64_t conn_id)
{
    struct kg_async_entry *free_slot = NULL;
    uint32_t of_conn = 0;

    for (uint32_t i = 0; i < t->limits.max_total; i++) {
        struct kg_async_entry *e = &t->entries[i];

        if (!e->used) {
            free_slot = free_slot != NULL ? free_slot : e;
        } else if (e->conn_id == conn_id) {
            of_conn++;
        }
    }
    return of_conn < t->limits.max_per_conn ? free_slot : NULL;
}

kg_result kg_async_add(struct kg_async *t, const struct kg_async_who *who, uint32_t operation,
                       const uint8_t *payload, uint32_t len, uint64_t now_ms, uint8_t id_out[KG_ASYNC_ID_LEN],
                       bool *queued)
{
    struct kg_async_entry fresh = { .used = true }, *slot;

    *queued = false;
    if (t->limits.max_total == 0 || len > KG_ASYNC_MAX_PAYLOAD || who->owner == NULL ||
        who->owner[0] == '\0' || strlen(who->owner) > KG_ASYNC_OWNER_MAX) {
        return KG_RESULT_OK;
    }
    /* Allocated and drawn outside the lock; freed again if no slot is left. */
    KG_ENSURE(RAND_bytes(fresh.id, KG_ASYNC_ID_LEN) == 1, KG_ERR_RANDOM);
    fresh.payload = malloc(len > 0 ? len : 1);
    KG_ENSURE(fresh.payload != NULL, KG_ERR_NOMEM);
    if (len > 0) {
        memcpy(fresh.payload, payload, len);
    }
    fresh.payload_len = len;
    memcpy(fresh.owner, who->owner, strlen(who->owner) + 1);
    fresh.conn_id = who->conn_id;
    fresh.version_major = who->version_major;
    fresh.version_minor = who->version_minor;
    fresh.operation = operation;
    fresh.expires_ms = now_ms + t->limits.lifetime_ms;

    pthread_mutex_lock(&t->lock);
    kg_async_expire(t, now_ms);
    slot = kg_async_free_slot(t, who->conn_id);
    if (slot != NULL) {
        *slot = fresh;
        *queued = true;
    }
    pthread_mutex_unlock(&t->lock);
    if (slot == NULL) {
        kg_async_entry_clear(&fresh);
        return KG_RESULT_OK;
    }
    memcpy(id_out, fresh.id, KG_ASYNC_ID_LEN);
    return KG_RESULT_OK;
}

kg_result kg_async_take(struct kg_async *t, const struct kg_async_who *who, const uint8_t *id, uint32_t id_len,
                        uint64_t now_ms, struct kg_async_entry *out)
{
    bool found = false;

    memset(out, 0, sizeof(*out));
    if (t->limits.max_total > 0 && id_len == KG_ASYNC_ID_LEN && who->owner != NULL) {
        pthread_mutex_lock(&t->lock);
        kg_async_expire(t, now_ms);
        for (uint32_t i = 0; i < t->limits.max_total && !found; i++) {
            struct kg_async_entry *e = &t->entries[i];

            /* Constant time in the value: a timing difference must not tell
             * how much of a guess was right. */
            if (e->used && CRYPTO_memcmp(e->id, id, KG_ASYNC_ID_LEN) == 0 && kg_async_owned_by(e, who)) {
                *out = *e;
                memset(e, 0, sizeof(*e));
                found = true;
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    if (!found) {
        /* Unknown, expired and someone else's answer alike. */
        kg_error_set(KG_ERR_NOT_FOUND, __FILE__, __LINE__);
        kg_error_detail("no pending operation has this Asynchronous Correlation Value");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

void kg_async_sweep(struct kg_async *t, uint64_t now_ms)
{
    if (!t->ready || t->limits.max_total == 0) {
        return;
    }
    pthread_mutex_lock(&t->lock);
    kg_async_expire(t, now_ms);
    pthread_mutex_unlock(&t->lock);
}

void kg_async_drop_conn(struct kg_async *t, uint64_t conn_id)
{
    if (!t->ready) {
        return;
    }
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->limits.max_total; i++) {
        if (t->entries[i].used && t->entries[i].conn_id == conn_id) {
            kg_async_entry_clear(&t->entries[i]);
        }
    }
    pthread_mutex_unlock(&t->lock);
}

uint32_t kg_async_count(struct kg_async *t, uint64_t now_ms)
{
    uint32_t n = 0;

    pthread_mutex_lock(&t->lock);
    kg_async_expire(t, now_ms);
    for (uint32_t i = 0; i < t->limits.max_total; i++) {
        n += t->entries[i].used ? 1u : 0u;
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}
