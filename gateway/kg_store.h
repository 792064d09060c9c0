/*
 * kg_store.h - the object store: a SQLite file in WAL mode with
 * synchronous=FULL, or a PostgreSQL database shared by several gateways.
 *
 * Durability rule (DESIGN.md): a function here that changes the store
 * returns only after the transaction holding the change is committed and on
 * disk, so a caller may answer the client as soon as it returns.
 *
 * One struct kg_store is one database connection. It is not shared between
 * threads: each worker opens its own (SQLite's WAL lets readers and one
 * writer work concurrently and busy_timeout serialises writers; on
 * PostgreSQL a change of an existing object first locks its row,
 * kg_store_lock_object, so gateways sharing one database take turns).
 *
 * Objects: UID, type, state, owning group, creator, algorithm, length, usage
 * mask, wrapped blob with mechanism and MWK generation. Every other
 * attribute (standard dates, Name, custom x-/y- ones) is a row (uid, name,
 * index, value) whose value is the TTLV encoding of the Attribute Value item,
 * so any type round-trips unchanged. The store never holds plaintext keys.
 *
 * All SQL is prepared with bound parameters; no SQL is built from strings.
 * The one exception is kg_store_locate, which joins a fixed set of SQL
 * fragments because the number of filters varies; values are still bound.
 *
 * Errors: database failures are KG_ERR_STORE with the database's message in
 * kg_error_text() (no secrets ever reach SQL). A row that does not fit the
 * structs below (overlong text, oversized blob, out-of-range integer) is
 * KG_ERR_STORE too: the file was not written by this code.
 */
#ifndef KG_STORE_H
#define KG_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "kg_db.h"
#include "kg_p11.h"
#include "kg_result.h"

struct kg_store;

#define KG_UID_LEN 36 /* UUID text, without NUL */
#define KG_GROUP_MAX 64
#define KG_CREATOR_MAX 256
#define KG_ATTR_NAME_MAX 128
#define KG_ATTR_VALUE_MAX 4096 /* encoded TTLV of one attribute value */
/* Encoded Key Wrapping Data of a wrapped Register: a UID and a few
 * enumerations, about 150 bytes; anything longer was not written by us. */
#define KG_STORE_REG_WRAPPING_MAX 256

/* The schema version this build writes; older stores are migrated on open. */
#define KG_STORE_SCHEMA_VERSION 5

/* How long a writer waits for another connection's write lock, ms. */
#define KG_STORE_BUSY_TIMEOUT_MS KG_DB_LOCK_TIMEOUT_MS
/* Most attribute filters one Locate may carry (more: KG_ERR_INVALID_FIELD). */
#define KG_STORE_LOCATE_MAX_ATTRS 16

struct kg_object {
    char uid[KG_UID_LEN + 1];
    uint32_t object_type; /* enum kg_object_type */
    uint32_t state;       /* enum kg_state */
    char owner_group[KG_GROUP_MAX + 1];
    char creator[KG_CREATOR_MAX + 1];
    uint32_t algorithm;
    int32_t length;          /* bits; of Secret Data and Opaque Objects the value's, no attribute */
    int32_t usage_mask;
    uint32_t storage;        /* enum kg_p11_storage: where the key material lives */
    struct kg_p11_blob blob; /* wrapped key (or public DER); blob.len 0 once destroyed */
    /* Schema v3: the TTLV Key Wrapping Data the key was registered wrapped
     * with (no secret: method, wrapping key UID, parameters, encoding), for
     * a Get with Key Wrap Type As Registered; len 0 (NULL column) if the key
     * was not registered wrapped. Over KG_STORE_REG_WRAPPING_MAX: KG_ERR_STORE
     * on load, KG_ERR_INVALID_FIELD on insert. */
    uint8_t registered_wrapping[KG_STORE_REG_WRAPPING_MAX];
    uint32_t registered_wrapping_len;
    /* Schema v4: the blob's binding tag (kg_p11_blob_seal over the blob,
     * UID, type, algorithm, length, storage and owner group). Set before
     * every insert of a WRAPPED or PUBLIC object; blob_sealed false (NULL
     * column) only in rows written before blob binding. */
    uint8_t blob_mac[KG_P11_BLOB_TAG_LEN];
    bool blob_sealed;
    /* Not a column: the Key Format Type a Register received the key in
     * (0 otherwise). kg_op_store_new_object stores it as the object's
     * "Key Format Type" attribute row, which Get and Get Attributes read
     * (kg_attr_key_format). */
    uint32_t key_format;
    /* Not a column: the client's Sensitive attribute (an attribute row),
     * read by kg_attr_load_sensitive only where it matters (Get, Get
     * Attributes, Get Attribute List); false until then. */
    bool sensitive;
    /* Not a column: Sensitive was raised after the object was made (read
     * with `sensitive`), so it was not always sensitive. */
    bool sensitive_raised;
};

struct kg_attr {
    char name[KG_ATTR_NAME_MAX + 1];
    int32_t index;
    uint32_t value_len;
    uint8_t value[KG_ATTR_VALUE_MAX]; /* TTLV encoding of the value item */
};

/*
 * Open the store at `location`: a postgresql:// (or postgres://) URI opens
 * that PostgreSQL database (kg_db_location_is_pg), anything else is a SQLite
 * file path, created if absent (mode 0600) and set to WAL with
 * synchronous=FULL. Creates or migrates the schema, in one transaction: it
 * all happens or none of it does. A store whose schema is newer than
 * KG_STORE_SCHEMA_VERSION, a SQLite file that cannot run in WAL mode, or a
 * PostgreSQL server that does not sync commits (fsync off, or
 * synchronous_commit off) is refused (KG_ERR_STORE, reason in
 * kg_error_text()). Caller owns *out (NULL on failure); kg_store_close
 * releases.
 */
kg_result kg_store_open(const char *location, struct kg_store **out) KG_WARN_UNUSED;
/*
 * kg_store_open for the tools and probes that must not create a store (a
 * report, policy explain, the health check, restore's backup file): a SQLite
 * file that does not exist or cannot be read is KG_ERR_STORE, naming it.
 * A PostgreSQL location opens as with kg_store_open.
 */
kg_result kg_store_open_existing(const char *location, struct kg_store **out) KG_WARN_UNUSED;
/* `location` fit for a message: the path, or "the PostgreSQL database" for
 * a URL (it may hold a password). Static or `location` itself. */
const char *kg_store_location_text(const char *location);
/*
 * PostgreSQL: try to take the cluster-wide lock that keeps two
 * rotate-master runs apart (a session advisory lock, held until `store` is
 * closed); *got says whether this connection now holds it. SQLite stores
 * use a lock file beside the store instead: KG_ERR_INTERNAL here.
 */
kg_result kg_store_try_rotation_lock(struct kg_store *store, bool *got) KG_WARN_UNUSED;
/* OK while the lock kg_store_try_rotation_lock took is still held (always
 * on SQLite); KG_ERR_STORE once a reconnect has dropped it with the session. */
kg_result kg_store_check_rotation_lock(struct kg_store *store) KG_WARN_UNUSED;
/* "sqlite" or "postgresql". Static. */
const char *kg_store_backend_name(const struct kg_store *store);
/* Finalize every statement and close the connection. Accepts NULL. */
void kg_store_close(struct kg_store *store);

/* Schema version found in the file (after migration: the current one). */
kg_result kg_store_schema_version(struct kg_store *store, int *out) KG_WARN_UNUSED;

/*
 * The connection settings the durability rule depends on, read back from
 * the database (for tests and diagnostics). SQLite: journal_mode is "wal";
 * synchronous is SQLite's number (2 = FULL). PostgreSQL: journal_mode is
 * "postgresql", synchronous 2 when commits are synced, busy_timeout_ms the
 * lock_timeout.
 */
struct kg_store_settings {
    char journal_mode[16];
    int synchronous;
    bool foreign_keys;
    int busy_timeout_ms;
};
kg_result kg_store_get_settings(struct kg_store *store, struct kg_store_settings *out) KG_WARN_UNUSED;

/*
 * Transactions. Every change below must happen between begin and commit;
 * kg_store_commit returns only when the commit is durable. rollback is safe
 * to call after any failure (and a no-op outside a transaction).
 * begin is BEGIN IMMEDIATE: it takes the write lock at once, waiting up to
 * KG_STORE_BUSY_TIMEOUT_MS for another connection's writer, so two writers
 * never deadlock upgrading a read lock. A change made outside begin/commit is
 * its own durable transaction. If commit fails, call rollback.
 */
kg_result kg_store_begin(struct kg_store *store) KG_WARN_UNUSED;
kg_result kg_store_commit(struct kg_store *store) KG_WARN_UNUSED;
void kg_store_rollback(struct kg_store *store);

/*
 * A read snapshot: the reads on `store` between kg_store_read_begin and
 * kg_store_read_end see one state of the store, and on SQLite they take
 * the WAL's read locks once instead of once per statement (two fcntl
 * calls and a mutex each). *opened says whether a transaction was begun;
 * none is when `store` is already in one (a batch with Undo reads through
 * the writer) or on PostgreSQL, where it would only add round trips.
 * Hold it briefly: a checkpoint cannot pass an open snapshot. Changes made
 * meanwhile through another connection are not seen until the end.
 * kg_store_read_end keeps the caller's error slot.
 */
kg_result kg_store_read_begin(struct kg_store *store, bool *opened) KG_WARN_UNUSED;
void kg_store_read_end(struct kg_store *store, bool opened);

/*
 * Savepoints inside a transaction: one change of a group commit
 * (gateway/kg_commit.c) is applied under a savepoint so that a failing
 * change is undone alone. rollback_to undoes and releases the savepoint and
 * keeps the caller's error slot.
 */
kg_result kg_store_savepoint(struct kg_store *store) KG_WARN_UNUSED;
kg_result kg_store_release(struct kg_store *store) KG_WARN_UNUSED;
void kg_store_rollback_to(struct kg_store *store);

/* Insert a new object; KG_ERR_STORE if the UID exists. */
kg_result kg_store_insert_object(struct kg_store *store, const struct kg_object *obj) KG_WARN_UNUSED;

/*
 * PostgreSQL: lock the object's row until the transaction ends, so that a
 * change's reads and writes of it are one step for every gateway sharing
 * the database (two allocations of a Usage Limit, a next attribute index).
 * Waits at most KG_DB_LOCK_TIMEOUT_MS for another holder (then
 * KG_ERR_STORE). SQLite: nothing to do (its writer is single). Call inside
 * a transaction; a missing object is not an error here.
 */
kg_result kg_store_lock_object(struct kg_store *store, const char *uid) KG_WARN_UNUSED;

/* Load an object by UID; KG_ERR_NOT_FOUND if there is none. */
kg_result kg_store_get_object(struct kg_store *store, const char *uid, struct kg_object *out) KG_WARN_UNUSED;

/* Set the state of an object (KG_ERR_NOT_FOUND if absent). */
kg_result kg_store_set_state(struct kg_store *store, const char *uid, uint32_t state) KG_WARN_UNUSED;

/* Remove the wrapped key material (Destroy): blob set to empty. */
kg_result kg_store_erase_blob(struct kg_store *store, const char *uid) KG_WARN_UNUSED;

/*
 * Attribute rows. Indexes are per (uid, name), starting at 0.
 * add: append with the next free index; *out_index gets it. On PostgreSQL
 * the caller holds the object's lock (kg_store_lock_object; kg_change_begin
 * takes it) or made the object in this transaction: without it, two
 * connections may pick the same index, and the second then fails on the
 * primary key (KG_ERR_STORE), never overwrites.
 * set: replace the value at `index` (KG_ERR_ATTRIBUTE_NOT_FOUND if absent).
 * delete: remove the row at `index` (KG_ERR_ATTRIBUTE_NOT_FOUND if absent).
 * delete_all: remove every row of `name` (no error if none).
 * All four: KG_ERR_NOT_FOUND if the object does not exist; add/set:
 * KG_ERR_INVALID_FIELD for a name over KG_ATTR_NAME_MAX or a value over
 * KG_ATTR_VALUE_MAX bytes.
 */
kg_result kg_store_add_attr(struct kg_store *store, const char *uid, const char *name, const uint8_t *value,
                            uint32_t value_len, int32_t *out_index) KG_WARN_UNUSED;
kg_result kg_store_set_attr(struct kg_store *store, const char *uid, const char *name, int32_t index,
                            const uint8_t *value, uint32_t value_len) KG_WARN_UNUSED;
kg_result kg_store_delete_attr(struct kg_store *store, const char *uid, const char *name,
                               int32_t index) KG_WARN_UNUSED;
kg_result kg_store_delete_attr_all(struct kg_store *store, const char *uid, const char *name) KG_WARN_UNUSED;

/*
 * Call `fn` for each attribute row of `uid`, ordered by name then index;
 * `name` NULL means all names. Stops early (returning OK) when fn returns
 * false. The row passed to fn is valid only during the call. fn may call
 * other functions of this store but not kg_store_each_attr itself
 * (KG_ERR_INTERNAL). An unknown uid simply has no rows.
 */
typedef bool (*kg_store_attr_fn)(void *ctx, const struct kg_attr *attr);
kg_result kg_store_each_attr(struct kg_store *store, const char *uid, const char *name, kg_store_attr_fn fn,
                             void *ctx) KG_WARN_UNUSED;

/* Number of rows of (uid, name). */
kg_result kg_store_count_attr(struct kg_store *store, const char *uid, const char *name,
                              uint32_t *out) KG_WARN_UNUSED;

/* Objects of `owner_group` not yet destroyed (policy limits.max_live_objects). */
kg_result kg_store_count_live(struct kg_store *store, const char *owner_group, uint64_t *out) KG_WARN_UNUSED;

/*
 * Locate: UIDs of objects matching every filter, in `order` (newest first
 * by default), skipping the first `offset` matches, at most `max_items`
 * (0 = no limit, but never more than `cap`), written to
 * out_uids[][KG_UID_LEN+1]. Filters: the object columns below, and
 * attribute filters (name + encoded Attribute Value, see enum
 * kg_store_match); an attribute filter matches when some row of that name
 * matches. More than KG_STORE_LOCATE_MAX_ATTRS attribute filters or
 * KG_STORE_LOCATE_MAX_HIDDEN hidden states, a value over KG_ATTR_VALUE_MAX,
 * an unknown match or order, or a date range whose low end is above its
 * high end, is KG_ERR_INVALID_FIELD. out_uids may be NULL when cap is 0.
 * The caller owns every pointer in the query; nothing is kept after return.
 */
#define KG_STORE_LOCATE_MAX_OWNERS 32
#define KG_STORE_LOCATE_MAX_HIDDEN 4

enum kg_store_match {
    KG_STORE_MATCH_EQUAL = 0, /* the row's encoded value is exactly `value` */
    KG_STORE_MATCH_FIELDS,    /* kg_locate_fields_match(row, value): structure fields given */
    KG_STORE_MATCH_DATES,     /* the row is a Date-Time within [low, high]; `value` unused */
};
struct kg_store_filter_attr {
    const char *name;
    const uint8_t *value;
    uint32_t value_len;
    uint32_t match;    /* enum kg_store_match */
    int64_t low, high; /* KG_STORE_MATCH_DATES: inclusive bounds */
};
enum kg_store_order {
    KG_STORE_ORDER_NEWEST = 0,   /* newest first */
    KG_STORE_ORDER_OLDEST,       /* oldest first */
    KG_STORE_ORDER_PREFER_ONLY,  /* only objects matching `prefer`, oldest first */
    KG_STORE_ORDER_PREFER_FIRST, /* objects matching `prefer` first, oldest first within each part */
};
struct kg_store_locate {
    uint32_t object_type; /* 0 = any */
    uint32_t state;       /* 0 = any */
    uint32_t algorithm;   /* 0 = any */
    int32_t length;       /* 0 = any */
    const char *owner_group; /* NULL = any (or the list below) */
    const char *const *owner_groups; /* with owner_group NULL: any of these */
    uint32_t owner_group_count;      /* 0 = any owner; at most KG_STORE_LOCATE_MAX_OWNERS */
    const struct kg_store_filter_attr *attrs;
    uint32_t attr_count;
    uint32_t max_items;
    const char *uid;       /* NULL = any */
    int32_t usage_mask;    /* objects whose mask has every one of these bits; 0 = any */
    const uint32_t *hidden_states; /* states never listed (with `state` 0 only) */
    uint32_t hidden_state_count;   /* at most KG_STORE_LOCATE_MAX_HIDDEN */
    uint32_t offset;       /* matches skipped before the first one returned */
    uint32_t order;        /* enum kg_store_order */
    struct kg_store_filter_attr prefer; /* PREFER_*: an EQUAL filter */
    /* Storage Status Mask (KMIP 1.4 section 4.9): KG_STORAGE_ON_LINE and/or
     * KG_STORAGE_ARCHIVAL; 0 = on-line only, the default when the request
     * omits it. Archived means "has an Archive Date row" (see below). */
    uint32_t storage_mask;
};
kg_result kg_store_locate(struct kg_store *store, const struct kg_store_locate *query,
                          char (*out_uids)[KG_UID_LEN + 1], uint32_t cap, uint32_t *out_count) KG_WARN_UNUSED;

/*
 * Archived objects (Archive and Recover, KMIP 1.4 sections 4.22 and 4.23,
 * gateway/kg_op_archive.c). An object is archived exactly while it has an
 * "Archive Date" attribute row: 3.32 says the server sets it at Archive and
 * deletes it at Recover, so the row is the state, it survives restarts and
 * needs no schema change. Locate leaves such objects out unless the Storage
 * Status Mask asks for archival storage; the dispatcher refuses the other
 * operations on them with Object Archived.
 */
#define KG_STORE_ARCHIVE_DATE "Archive Date"
#define KG_STORAGE_ON_LINE 0x1u  /* Storage Status Mask bits, 9.1.3.3.5 */
#define KG_STORAGE_ARCHIVAL 0x2u
/* *out: `uid` has an Archive Date row. */
kg_result kg_store_is_archived(struct kg_store *store, const char *uid, bool *out) KG_WARN_UNUSED;

/*
 * Master key rotation (kmipgw rotate-master). "Wrapped blob" below means an
 * object with storage KG_P11_STORED_WRAPPED whose blob is not erased:
 * resident and public keys and destroyed objects have nothing to re-wrap.
 *
 * list_below_generation: up to `cap` objects with a wrapped blob under an
 * MWK generation below `generation`, in UID order, starting after
 * `after_uid` ("" for the first batch; then the last UID of the previous
 * batch), into caller-owned out[0..cap); *out_count gets how many.
 * count_wrapped: wrapped blobs with min_generation <= generation <=
 * max_generation.
 * replace_blob: compare-and-set. Replace the blob of `uid` with `new_blob`
 * only if it still is exactly `old_blob` (mechanism, generation and bytes);
 * *replaced says whether it was. Not replaced (the object was destroyed,
 * deleted or re-wrapped by someone else meanwhile) is not an error. Durable
 * on return unless inside begin/commit (batch several in one transaction).
 */
kg_result kg_store_list_below_generation(struct kg_store *store, uint32_t generation, const char *after_uid,
                                         struct kg_object *out, uint32_t cap, uint32_t *out_count) KG_WARN_UNUSED;
kg_result kg_store_count_wrapped(struct kg_store *store, uint32_t min_generation, uint32_t max_generation,
                                 uint64_t *out) KG_WARN_UNUSED;
kg_result kg_store_replace_blob(struct kg_store *store, const char *uid, const struct kg_p11_blob *old_blob,
                                const struct kg_p11_blob *new_blob, bool *replaced) KG_WARN_UNUSED;
/* replace_blob that also stores the new blob's binding tag `new_mac`
 * (KG_P11_BLOB_TAG_LEN bytes; NULL leaves the row unsealed, which is what
 * kg_store_replace_blob does: an old tag never stays on a new blob). */
kg_result kg_store_replace_sealed_blob(struct kg_store *store, const char *uid, const struct kg_p11_blob *old_blob,
                                       const struct kg_p11_blob *new_blob, const uint8_t *new_mac,
                                       bool *replaced) KG_WARN_UNUSED;

/*
 * Blob binding migration (kmipgw init). "Unsealed" means a WRAPPED or
 * PUBLIC object with a blob and no binding tag (written before schema v4).
 * list_unsealed: up to `cap` of them in UID order after `after_uid` (""
 * first), into caller-owned out[0..cap). count_unsealed: how many remain.
 * set_blob_mac: compare-and-set the tag of `uid`, only if its blob is still
 * exactly `blob` and it has no tag yet; *set says whether it was. Durable
 * on return unless inside begin/commit.
 */
kg_result kg_store_list_unsealed(struct kg_store *store, const char *after_uid, struct kg_object *out, uint32_t cap,
                                 uint32_t *out_count) KG_WARN_UNUSED;
kg_result kg_store_count_unsealed(struct kg_store *store, uint64_t *out) KG_WARN_UNUSED;
kg_result kg_store_set_blob_mac(struct kg_store *store, const char *uid, const struct kg_p11_blob *blob,
                                const uint8_t mac[KG_P11_BLOB_TAG_LEN], bool *set) KG_WARN_UNUSED;

/*
 * Copy every object and attribute row of `from` into `to`, as they are
 * (creation order, attribute indexes, wrapped blobs and their binding tags;
 * nothing is unwrapped): kmipgw backup (into a new SQLite file) and restore
 * (from one). `from` is read in one snapshot while other connections keep
 * writing; `to` is written in one transaction, durable on return, and must
 * hold no object yet (else KG_ERR_STORE: two stores are never merged).
 * Either store may be SQLite or PostgreSQL. The caller owns both.
 */
struct kg_store_copy_counts {
    uint64_t objects;
    uint64_t attributes;
};
kg_result kg_store_copy(struct kg_store *from, struct kg_store *to, struct kg_store_copy_counts *counts) KG_WARN_UNUSED;

#endif
