/*
 * kg_store.c - the object store on SQLite (see kg_store.h).
 *
 * Durability: every connection runs journal_mode=WAL with synchronous=FULL,
 * in which SQLite fsyncs the WAL before COMMIT returns; kg_store_commit
 * returns only after COMMIT has. Writers use BEGIN IMMEDIATE so the write
 * lock is taken up front: a transaction never holds a read lock while
 * waiting to upgrade it, which is the one way two WAL writers deadlock
 * (SQLITE_BUSY that no busy handler can resolve).
 *
 * Statements: every statement is prepared once per connection at open
 * (SQLITE_PREPARE_PERSISTENT) and cached in struct kg_store; each use binds,
 * steps, and resets at the function's single `out:` label. Fixed SQL run
 * once at open (connection PRAGMAs, migration steps) goes through
 * sqlite3_exec: it is constant text, never composed. Locate is the one place
 * SQL is composed at run time, and only from the fixed fragments in this
 * file; every value is bound.
 *
 * Schema versions live in PRAGMA user_version. kg_store_migrations[i]
 * moves a file from version i to i + 1; a later schema change appends one
 * step and bumps KG_STORE_SCHEMA_VERSION.
 */
#include "kg_store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kg_locate_match.h"

#define KG_STORE_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Schema v1. STRICT makes SQLite refuse a value of the wrong type instead
 * of storing it. created_seq orders Locate results newest first; it is a
 * counter of its own (not the rowid, which VACUUM may renumber). The
 * attributes index carries uid so a Locate filter is answered from the index
 * alone. No length CHECKs: the C code checks on the way in and on the way out.
 */
static const char kg_store_schema_v1[] =
    "CREATE TABLE objects ("
    " uid TEXT PRIMARY KEY NOT NULL,"
    " created_seq INTEGER NOT NULL UNIQUE,"
    " object_type INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " owner_group TEXT NOT NULL,"
    " creator TEXT NOT NULL,"
    " algorithm INTEGER NOT NULL,"
    " length INTEGER NOT NULL,"
    " usage_mask INTEGER NOT NULL,"
    " blob BLOB,"
    " blob_mechanism INTEGER NOT NULL,"
    " mwk_generation INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX objects_owner ON objects(owner_group, created_seq);"
    "CREATE TABLE attributes ("
    " uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " idx INTEGER NOT NULL,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY (uid, name, idx)"
    ") STRICT;"
    "CREATE INDEX attributes_name_value ON attributes(name, value, uid);"
    "PRAGMA user_version = 1;";

/*
 * One step per version: kg_store_migrations[i] turns version i into
 * version i + 1 and must end by setting user_version to i + 1 (checked after
 * each step). Version 0 is a file with no kmipgw schema (new or empty).
 */
struct kg_store_migration {
    int to_version;
    const char *sql;
};

/*
 * Version 2 (issue 5): where a key's material lives (enum kg_p11_storage:
 * wrapped blob, resident token object, clear public key), and an index on
 * the MWK generation so that a master key rotation finds what it has left
 * to re-wrap without a full scan.
 */
static const char kg_store_schema_v2[] =
    "ALTER TABLE objects ADD COLUMN storage INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX objects_mwk_generation ON objects(mwk_generation);"
    "PRAGMA user_version = 2;";

/*
 * Version 3 (issue 5): the Key Wrapping Data a key was registered wrapped
 * with (TTLV, no secret), so that Get with Key Wrap Type As Registered can
 * wrap it again the same way. NULL for every other key, old ones included.
 */
static const char kg_store_schema_v3[] =
    "ALTER TABLE objects ADD COLUMN registered_wrapping BLOB;"
    "PRAGMA user_version = 3;";

/*
 * Version 4 (issue 9): each WRAPPED or PUBLIC blob's binding tag, an
 * HMAC-SHA-256 made in the HSM over the blob and its object
 * (kg_p11_blob_seal). NULL in rows written before: `kmipgw init` seals
 * them, and serve refuses to start while any remain.
 */
static const char kg_store_schema_v4[] =
    "ALTER TABLE objects ADD COLUMN blob_mac BLOB;"
    /* serve counts unsealed blobs at every start: with this partial index
     * that costs what is unsealed, not a scan of every key. */
    "CREATE INDEX objects_unsealed ON objects(uid)"
    " WHERE storage IN (0, 2) AND length(blob) > 0 AND blob_mac IS NULL;"
    "PRAGMA user_version = 4;";

static const struct kg_store_migration kg_store_migrations[] = {
    { 1, kg_store_schema_v1 },
    { 2, kg_store_schema_v2 },
    { 3, kg_store_schema_v3 },
    { 4, kg_store_schema_v4 },
};

_Static_assert(KG_STORE_ARRAY_LEN(kg_store_migrations) == KG_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

enum kg_store_stmt_id {
    KG_STMT_BEGIN,
    KG_STMT_COMMIT,
    KG_STMT_ROLLBACK,
    KG_STMT_SAVEPOINT,
    KG_STMT_COUNT_LIVE,
    KG_STMT_RELEASE,
    KG_STMT_ROLLBACK_TO,
    KG_STMT_USER_VERSION,
    KG_STMT_JOURNAL_MODE,
    KG_STMT_SYNCHRONOUS,
    KG_STMT_FOREIGN_KEYS,
    KG_STMT_BUSY_TIMEOUT,
    KG_STMT_OBJ_INSERT,
    KG_STMT_OBJ_GET,
    KG_STMT_OBJ_EXISTS,
    KG_STMT_OBJ_SET_STATE,
    KG_STMT_OBJ_ERASE_BLOB,
    KG_STMT_ATTR_ADD,
    KG_STMT_ATTR_SET,
    KG_STMT_ATTR_DELETE,
    KG_STMT_ATTR_DELETE_ALL,
    KG_STMT_ATTR_EACH,
    KG_STMT_ATTR_EACH_NAME,
    KG_STMT_ATTR_COUNT,
    KG_STMT_ROTATE_LIST,
    KG_STMT_ROTATE_COUNT,
    KG_STMT_ROTATE_REPLACE,
    KG_STMT_SEAL_LIST,
    KG_STMT_SEAL_COUNT,
    KG_STMT_SEAL_SET,
    KG_STMT_COUNT_
};

static const char *const kg_store_sql[KG_STMT_COUNT_] = {
    [KG_STMT_BEGIN] = "BEGIN IMMEDIATE",
    [KG_STMT_COMMIT] = "COMMIT",
    [KG_STMT_ROLLBACK] = "ROLLBACK",
    [KG_STMT_SAVEPOINT] = "SAVEPOINT kg_change",
    /* States 5 and 6 are Destroyed and Destroyed Compromised. */
    [KG_STMT_COUNT_LIVE] = "SELECT count(*) FROM objects WHERE owner_group = ?1 AND state NOT IN (5, 6)",
    [KG_STMT_RELEASE] = "RELEASE kg_change",
    [KG_STMT_ROLLBACK_TO] = "ROLLBACK TO kg_change",
    [KG_STMT_USER_VERSION] = "PRAGMA user_version",
    [KG_STMT_JOURNAL_MODE] = "PRAGMA journal_mode",
    [KG_STMT_SYNCHRONOUS] = "PRAGMA synchronous",
    [KG_STMT_FOREIGN_KEYS] = "PRAGMA foreign_keys",
    [KG_STMT_BUSY_TIMEOUT] = "PRAGMA busy_timeout",
    [KG_STMT_OBJ_INSERT] =
        "INSERT INTO objects (uid, created_seq, object_type, state, owner_group, creator,"
        " algorithm, length, usage_mask, blob, blob_mechanism, mwk_generation, storage, registered_wrapping,"
        " blob_mac)"
        " VALUES (?1, (SELECT IFNULL(MAX(created_seq), 0) + 1 FROM objects),"
        " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [KG_STMT_OBJ_GET] =
        "SELECT uid, object_type, state, owner_group, creator, algorithm, length, usage_mask,"
        " blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac FROM objects WHERE uid = ?1",
    [KG_STMT_OBJ_EXISTS] = "SELECT 1 FROM objects WHERE uid = ?1",
    [KG_STMT_OBJ_SET_STATE] = "UPDATE objects SET state = ?2 WHERE uid = ?1",
    [KG_STMT_OBJ_ERASE_BLOB] = "UPDATE objects SET blob = NULL, blob_mac = NULL WHERE uid = ?1",
    /* Next index in the same statement, so it is atomic even outside a
     * transaction; no row (and no RETURNING) once int32 indexes run out. */
    [KG_STMT_ATTR_ADD] =
        "INSERT INTO attributes (uid, name, idx, value)"
        " SELECT ?1, ?2, n, ?3 FROM"
        " (SELECT IFNULL(MAX(idx) + 1, 0) AS n FROM attributes WHERE uid = ?1 AND name = ?2)"
        " WHERE n <= 2147483647 RETURNING idx",
    [KG_STMT_ATTR_SET] = "UPDATE attributes SET value = ?4 WHERE uid = ?1 AND name = ?2 AND idx = ?3",
    [KG_STMT_ATTR_DELETE] = "DELETE FROM attributes WHERE uid = ?1 AND name = ?2 AND idx = ?3",
    [KG_STMT_ATTR_DELETE_ALL] = "DELETE FROM attributes WHERE uid = ?1 AND name = ?2",
    [KG_STMT_ATTR_EACH] = "SELECT name, idx, value FROM attributes WHERE uid = ?1 ORDER BY name, idx",
    [KG_STMT_ATTR_EACH_NAME] =
        "SELECT name, idx, value FROM attributes WHERE uid = ?1 AND name = ?2 ORDER BY name, idx",
    [KG_STMT_ATTR_COUNT] = "SELECT COUNT(*) FROM attributes WHERE uid = ?1 AND name = ?2",
    /* Master key rotation. The list walks the uid index (the unary + keeps
     * SQLite off the generation index), so the batches of one pass cost
     * one scan of the table in all instead of one scan and sort each. */
    [KG_STMT_ROTATE_LIST] =
        "SELECT uid, object_type, state, owner_group, creator, algorithm, length, usage_mask,"
        " blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac FROM objects"
        " WHERE uid > ?2 AND +mwk_generation < ?1 AND storage = 0 AND length(blob) > 0"
        " ORDER BY uid LIMIT ?3",
    [KG_STMT_ROTATE_COUNT] =
        "SELECT COUNT(*) FROM objects WHERE mwk_generation BETWEEN ?1 AND ?2 AND storage = 0"
        " AND length(blob) > 0",
    /* Compare-and-set: only the very blob the rotation read is replaced, so
     * a Destroy (blob erased) or another rotator in between wins. */
    [KG_STMT_ROTATE_REPLACE] =
        "UPDATE objects SET blob = ?5, blob_mechanism = ?6, mwk_generation = ?7, blob_mac = ?8"
        " WHERE uid = ?1 AND storage = 0 AND blob_mechanism = ?2 AND mwk_generation = ?3 AND blob = ?4",
    /* Blob binding migration (kmipgw init): rows with a blob and no tag. */
    [KG_STMT_SEAL_LIST] =
        "SELECT uid, object_type, state, owner_group, creator, algorithm, length, usage_mask,"
        " blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac FROM objects"
        " WHERE uid > ?1 AND storage IN (0, 2) AND length(blob) > 0 AND blob_mac IS NULL"
        " ORDER BY uid LIMIT ?2",
    [KG_STMT_SEAL_COUNT] =
        "SELECT COUNT(*) FROM objects WHERE storage IN (0, 2) AND length(blob) > 0 AND blob_mac IS NULL",
    /* Compare-and-set like the rotation's replace: only the blob that was sealed gets the tag. */
    [KG_STMT_SEAL_SET] =
        "UPDATE objects SET blob_mac = ?5 WHERE uid = ?1 AND storage IN (0, 2) AND blob_mechanism = ?2"
        " AND mwk_generation = ?3 AND blob = ?4 AND blob_mac IS NULL",
};

struct kg_store {
    sqlite3 *db;
    sqlite3_stmt *stmts[KG_STMT_COUNT_];
};

/*
 * Locate fragments. The SQL is the base, then one fragment per filter in
 * use, then the order and the limit; nothing else is ever appended.
 */
static const char kg_store_locate_base[] = "SELECT uid FROM objects WHERE 1 = 1";
static const char kg_store_locate_type[] = " AND object_type = ?";
static const char kg_store_locate_state[] = " AND state = ?";
static const char kg_store_locate_alg[] = " AND algorithm = ?";
static const char kg_store_locate_length[] = " AND length = ?";
static const char kg_store_locate_uid[] = " AND uid = ?";
/* Usage mask (KMIP 1.4 section 4.9): every requested bit set, others free. */
static const char kg_store_locate_mask[] = " AND (usage_mask & ?) = ?";
static const char kg_store_locate_owner[] = " AND owner_group = ?";
/* A list of values: head, then ",?" per extra value, then ")". Used for a
 * scope of several groups and for the hidden states. */
static const char kg_store_locate_owners_head[] = " AND owner_group IN (?";
static const char kg_store_locate_hidden_head[] = " AND state NOT IN (?";
static const char kg_store_locate_list_more[] = ",?";
static const char kg_store_locate_list_tail[] = ")";
/* Attribute filters, one per enum kg_store_match. EQUAL is answered from the
 * (name, value, uid) index; the others scan the rows of that name through
 * the functions kg_store_register_functions installs. */
static const char kg_store_locate_attr[] =
    " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND value = ?)";
static const char kg_store_locate_fields[] =
    " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND kg_fields_match(value, ?))";
static const char kg_store_locate_dates[] =
    " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND kg_date_within(value, ?, ?))";
/* Storage Status Mask: on-line only (the default) or archival only; both
 * bits add no fragment. "Archived" is the Archive Date row (kg_store.h). */
static const char kg_store_locate_online[] =
    " AND NOT EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = 'Archive Date')";
static const char kg_store_locate_archived[] =
    " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = 'Archive Date')";
/* Orders; PREFER_ONLY is kg_store_locate_attr for `prefer` then OLDEST. */
static const char kg_store_locate_newest[] = " ORDER BY created_seq DESC";
static const char kg_store_locate_oldest[] = " ORDER BY created_seq ASC";
static const char kg_store_locate_prefer[] =
    " ORDER BY uid IN (SELECT uid FROM attributes WHERE name = ? AND value = ?) DESC, created_seq ASC";
static const char kg_store_locate_limit[] = " LIMIT ? OFFSET ?";

/* Room for any one attribute filter fragment (their sum: simpler than a max). */
#define KG_STORE_LOCATE_ATTR_MAX                                                                       \
    (sizeof(kg_store_locate_attr) + sizeof(kg_store_locate_fields) + sizeof(kg_store_locate_dates))

/* Every fragment at once (more than any query can use), plus the NUL. */
#define KG_STORE_LOCATE_SQL_MAX                                                                        \
    (sizeof(kg_store_locate_base) + sizeof(kg_store_locate_type) + sizeof(kg_store_locate_state) +     \
     sizeof(kg_store_locate_alg) + sizeof(kg_store_locate_length) + sizeof(kg_store_locate_uid) +      \
     sizeof(kg_store_locate_mask) + sizeof(kg_store_locate_owner) + sizeof(kg_store_locate_owners_head) + \
     sizeof(kg_store_locate_hidden_head) +                                                             \
     (KG_STORE_LOCATE_MAX_OWNERS + KG_STORE_LOCATE_MAX_HIDDEN) * sizeof(kg_store_locate_list_more) +  \
     2 * sizeof(kg_store_locate_list_tail) + (KG_STORE_LOCATE_MAX_ATTRS + 1) * KG_STORE_LOCATE_ATTR_MAX + \
     sizeof(kg_store_locate_online) + sizeof(kg_store_locate_archived) + sizeof(kg_store_locate_newest) + \
     sizeof(kg_store_locate_oldest) + sizeof(kg_store_locate_prefer) + sizeof(kg_store_locate_limit))

/* Locate's SQL functions, installed on every connection at open. */
static kg_result kg_store_register_functions(struct kg_store *store) KG_WARN_UNUSED;

/* An empty, non-NULL value: sqlite3_bind_blob with a NULL pointer binds NULL. */
static const uint8_t kg_store_empty[1];

/* ---- error mapping ---- */

/*
 * OK when `got` is `want`; otherwise record KG_ERR_STORE at the caller's
 * site with SQLite's message. SQL never carries secrets, so the message is
 * safe to log.
 */
#define KG_STORE_SQL(store, got, want, what) kg_store_sql_result((store), (got), (want), (what), __FILE__, __LINE__)

static kg_result kg_store_sql_result(const struct kg_store *store, int got, int want, const char *what,
                                     const char *file, int line)
{
    if (got == want) {
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_STORE, file, line);
    kg_error_detail("store: %s: %s (sqlite %d)", what,
                    store != NULL && store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(got), got);
    return KG_RESULT_ERROR;
}

/* Fail with `err` and a detail message, inside a function with `rc`/`out:`. */
#define KG_STORE_GOTO_FAIL(rc, err, ...)                                                             \
    do {                                                                                             \
        kg_error_set((err), __FILE__, __LINE__);                                                     \
        kg_error_detail(__VA_ARGS__);                                                                \
        (rc) = KG_RESULT_ERROR;                                                                      \
        goto out;                                                                                    \
    } while (0)

/* Bind one parameter; any bind failure is KG_ERR_STORE. */
#define KG_STORE_BIND(rc, store, call) KG_GOTO_GUARD(rc, KG_STORE_SQL((store), (call), SQLITE_OK, "bind"))

/* ---- statement cache ---- */

/*
 * Check a cached statement out for one use. A statement still stepping means
 * a re-entrant call (a kg_store_each_attr callback calling each_attr): refuse
 * it rather than reset the outer iteration under its feet.
 */
static kg_result kg_store_stmt(struct kg_store *store, enum kg_store_stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    KG_ENSURE(store != NULL && store->stmts[id] != NULL, KG_ERR_INTERNAL);
    if (sqlite3_stmt_busy(store->stmts[id])) {
        kg_error_set(KG_ERR_INTERNAL, __FILE__, __LINE__);
        kg_error_detail("store: statement re-entered while in use");
        return KG_RESULT_ERROR;
    }
    *out = store->stmts[id];
    return KG_RESULT_OK;
}

/*
 * Give a statement back: reset it (ends any read it holds) and drop its
 * bindings, which may point at the caller's buffers. Accepts NULL.
 */
static void kg_store_stmt_done(sqlite3_stmt *st)
{
    if (st != NULL) {
        (void)sqlite3_reset(st);
        (void)sqlite3_clear_bindings(st);
    }
}

/* ---- column readers: every value from the file is checked ---- */

static kg_result kg_store_col_int(sqlite3_stmt *st, int col, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;

    if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not an integer", sqlite3_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    v = sqlite3_column_int64(st, col);
    if (v < min || v > max) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s out of range", sqlite3_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    *out = v;
    return KG_RESULT_OK;
}

static kg_result kg_store_col_u32(sqlite3_stmt *st, int col, uint32_t *out)
{
    int64_t v = 0;

    KG_GUARD(kg_store_col_int(st, col, 0, UINT32_MAX, &v));
    *out = (uint32_t)v;
    return KG_RESULT_OK;
}

static kg_result kg_store_col_i32(sqlite3_stmt *st, int col, int32_t *out)
{
    int64_t v = 0;

    KG_GUARD(kg_store_col_int(st, col, INT32_MIN, INT32_MAX, &v));
    *out = (int32_t)v;
    return KG_RESULT_OK;
}

/*
 * Copy a TEXT column into a fixed array of `size` bytes (room for the NUL).
 * Too long, not text, or with an embedded NUL: KG_ERR_STORE, never a
 * truncation.
 */
static kg_result kg_store_col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *text;
    int n;

    dst[0] = '\0';
    if (sqlite3_column_type(st, col) != SQLITE_TEXT) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not text", sqlite3_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    text = sqlite3_column_text(st, col);
    n = sqlite3_column_bytes(st, col); /* after column_text, as SQLite asks */
    if (text == NULL) {
        kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
        return KG_RESULT_ERROR;
    }
    if (n < 0 || (size_t)n >= size || memchr(text, '\0', (size_t)n) != NULL) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s holds %d bytes, at most %zu fit", sqlite3_column_name(st, col), n,
                        size - 1);
        return KG_RESULT_ERROR;
    }
    memcpy(dst, text, (size_t)n);
    dst[n] = '\0';
    return KG_RESULT_OK;
}

/*
 * Copy a BLOB column (NULL reads as empty) into dst[0..max); too long is
 * KG_ERR_STORE.
 */
static kg_result kg_store_col_bytes(sqlite3_stmt *st, int col, uint8_t *dst, uint32_t max, uint32_t *out_len)
{
    const void *bytes;
    int type = sqlite3_column_type(st, col);
    int n;

    *out_len = 0;
    if (type == SQLITE_NULL) {
        return KG_RESULT_OK;
    }
    if (type != SQLITE_BLOB) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not a blob", sqlite3_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    bytes = sqlite3_column_blob(st, col);
    n = sqlite3_column_bytes(st, col);
    if (n < 0 || (uint32_t)n > max) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s holds %d bytes, at most %u fit", sqlite3_column_name(st, col), n,
                        (unsigned)max);
        return KG_RESULT_ERROR;
    }
    if (n > 0) {
        if (bytes == NULL) {
            kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
            return KG_RESULT_ERROR;
        }
        memcpy(dst, bytes, (size_t)n);
    }
    *out_len = (uint32_t)n;
    return KG_RESULT_OK;
}

/* Bind bytes as a BLOB; zero bytes bind an empty blob, not NULL. */
static int kg_store_bind_bytes(sqlite3_stmt *st, int param, const uint8_t *bytes, uint32_t len)
{
    return sqlite3_bind_blob(st, param, len > 0 ? (const void *)bytes : (const void *)kg_store_empty, (int)len,
                             SQLITE_STATIC);
}

/* ---- open, schema, close ---- */

/* Run one cached single-row integer query (PRAGMAs, COUNT). */
static kg_result kg_store_query_int(struct kg_store *store, enum kg_store_stmt_id id, int64_t *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, kg_store_sql[id]));
    KG_GOTO_GUARD(rc, kg_store_col_int(st, 0, INT32_MIN, INT32_MAX, out));
out:
    kg_store_stmt_done(st);
    return rc;
}

/* user_version through a one-off statement (the cache is built after the schema). */
static kg_result kg_store_read_version(struct kg_store *store, int *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    *out = 0;
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_prepare_v3(store->db, "PRAGMA user_version", -1, 0, &st, NULL),
                                   SQLITE_OK, "prepare user_version"));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "read user_version"));
    *out = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

static kg_result kg_store_check_not_newer(int version)
{
    if (version > KG_STORE_SCHEMA_VERSION || version < 0) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: schema version %d is newer than this kmipgw supports (%d); refusing to open "
                        "(was it written by a newer release?)",
                        version, KG_STORE_SCHEMA_VERSION);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/*
 * Bring the schema to KG_STORE_SCHEMA_VERSION in one IMMEDIATE transaction.
 * The version is read again under the write lock: another worker may have
 * migrated the file between our first look and getting the lock.
 */
static kg_result kg_store_migrate(struct kg_store *store)
{
    kg_result rc = KG_RESULT_OK;
    int version = 0;
    bool in_txn = false;

    KG_GOTO_GUARD(rc, kg_store_read_version(store, &version));
    KG_GOTO_GUARD(rc, kg_store_check_not_newer(version));
    if (version == KG_STORE_SCHEMA_VERSION) {
        goto out;
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
                                   "begin migration"));
    in_txn = true;
    KG_GOTO_GUARD(rc, kg_store_read_version(store, &version));
    KG_GOTO_GUARD(rc, kg_store_check_not_newer(version));
    while (version < KG_STORE_SCHEMA_VERSION) {
        const struct kg_store_migration *step = &kg_store_migrations[version];
        int now = 0;

        KG_GOTO_ENSURE(rc, step->to_version == version + 1, KG_ERR_INTERNAL);
        KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_exec(store->db, step->sql, NULL, NULL, NULL), SQLITE_OK,
                                       "schema migration"));
        KG_GOTO_GUARD(rc, kg_store_read_version(store, &now));
        if (now != step->to_version) {
            KG_STORE_GOTO_FAIL(rc, KG_ERR_INTERNAL, "store: migration to %d left user_version at %d",
                               step->to_version, now);
        }
        version = now;
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK,
                                   "commit migration"));
    in_txn = false;
out:
    if (in_txn && !sqlite3_get_autocommit(store->db)) {
        (void)sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/*
 * Connection settings. busy_timeout first, so the PRAGMAs below wait for
 * another connection instead of failing. journal_mode=WAL answers with the
 * mode in force: anything else (e.g. no shared-memory support on the file
 * system) is refused, because the durability argument assumes WAL.
 * secure_delete overwrites freed content, so an erased blob does not linger
 * in free pages of the main file.
 */
static kg_result kg_store_configure(struct kg_store *store)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    const unsigned char *mode;

    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_extended_result_codes(store->db, 1), SQLITE_OK,
                                   "extended result codes"));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_busy_timeout(store->db, KG_STORE_BUSY_TIMEOUT_MS), SQLITE_OK,
                                   "busy_timeout"));
    /* Defensive mode: no writable_schema or other ways to corrupt the file via SQL. */
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_db_config(store->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL),
                                   SQLITE_OK, "defensive mode"));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_prepare_v3(store->db, "PRAGMA journal_mode = WAL", -1, 0, &st,
                                                             NULL),
                                   SQLITE_OK, "prepare journal_mode"));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "journal_mode = WAL"));
    mode = sqlite3_column_text(st, 0);
    if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: cannot use WAL journal (got %s); refusing to open",
                           mode != NULL ? (const char *)mode : "nothing");
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store,
                                   sqlite3_exec(store->db,
                                                "PRAGMA synchronous = FULL;"
                                                "PRAGMA foreign_keys = ON;"
                                                "PRAGMA secure_delete = ON;",
                                                NULL, NULL, NULL),
                                   SQLITE_OK, "connection pragmas"));
out:
    sqlite3_finalize(st);
    return rc;
}

static kg_result kg_store_prepare_all(struct kg_store *store)
{
    for (size_t i = 0; i < KG_STMT_COUNT_; i++) {
        KG_GUARD(KG_STORE_SQL(store,
                              sqlite3_prepare_v3(store->db, kg_store_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                                 &store->stmts[i], NULL),
                              SQLITE_OK, "prepare"));
    }
    return KG_RESULT_OK;
}

kg_result kg_store_open(const char *path, struct kg_store **out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_store *store = NULL;
    struct stat sb;
    bool existed;
    int src;
    int64_t sync = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_GOTO_ENSURE(rc, path != NULL && path[0] != '\0', KG_ERR_CONFIG);

    /*
     * A new file is made 0600 whatever the umask: it holds wrapped keys.
     * SQLite creates it (empty) and we chmod it by name before anything is
     * written; SQLite gives -wal and -shm the mode of the main file. The
     * file is never opened and closed outside SQLite: closing any
     * descriptor of it drops every POSIX lock this process holds on it
     * (fcntl semantics), including the shared locks of the connections
     * already open, and another process (a backup, the sqlite3 shell) would
     * then believe it is the last user, checkpoint and delete the WAL while
     * we still write to it: committed changes lost at the next restart.
     */
    existed = stat(path, &sb) == 0;
    store = calloc(1, sizeof(*store));
    KG_GOTO_ENSURE(rc, store != NULL, KG_ERR_NOMEM);
    /* NOMUTEX: a connection belongs to one worker thread (kg_store.h). */
    src = sqlite3_open_v2(path, &store->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                          NULL);
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_OK, "open"));
    if (!existed && chmod(path, 0600) != 0) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: cannot make %s private: %s", path, strerror(errno));
    }
    KG_GOTO_GUARD(rc, kg_store_register_functions(store));
    KG_GOTO_GUARD(rc, kg_store_configure(store));
    KG_GOTO_GUARD(rc, kg_store_migrate(store));
    KG_GOTO_GUARD(rc, kg_store_prepare_all(store));

    /* The durability rule rests on this: read it back rather than trust it. */
    KG_GOTO_GUARD(rc, kg_store_query_int(store, KG_STMT_SYNCHRONOUS, &sync));
    if (sync != 2) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: synchronous is %lld, not FULL", (long long)sync);
    }
    *out = store;
    store = NULL;
out:
    kg_store_close(store);
    return rc;
}

void kg_store_close(struct kg_store *store)
{
    if (store == NULL) {
        return;
    }
    for (size_t i = 0; i < KG_STMT_COUNT_; i++) {
        sqlite3_finalize(store->stmts[i]);
        store->stmts[i] = NULL;
    }
    /* sqlite3_close (not _v2): with every statement finalized it cannot be busy. */
    (void)sqlite3_close(store->db);
    store->db = NULL;
    free(store);
}

kg_result kg_store_schema_version(struct kg_store *store, int *out)
{
    int64_t v = 0;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GUARD(kg_store_query_int(store, KG_STMT_USER_VERSION, &v));
    *out = (int)v;
    return KG_RESULT_OK;
}

kg_result kg_store_get_settings(struct kg_store *store, struct kg_store_settings *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_JOURNAL_MODE, &st));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "journal_mode"));
    KG_GOTO_GUARD(rc, kg_store_col_text(st, 0, out->journal_mode, sizeof(out->journal_mode)));
    KG_GOTO_GUARD(rc, kg_store_query_int(store, KG_STMT_SYNCHRONOUS, &v));
    out->synchronous = (int)v;
    KG_GOTO_GUARD(rc, kg_store_query_int(store, KG_STMT_FOREIGN_KEYS, &v));
    out->foreign_keys = v != 0;
    KG_GOTO_GUARD(rc, kg_store_query_int(store, KG_STMT_BUSY_TIMEOUT, &v));
    out->busy_timeout_ms = (int)v;
out:
    kg_store_stmt_done(st);
    return rc;
}

/* ---- transactions ---- */

static kg_result kg_store_exec_cached(struct kg_store *store, enum kg_store_stmt_id id)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, kg_store_sql[id]));
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_begin(struct kg_store *store)
{
    return kg_store_exec_cached(store, KG_STMT_BEGIN);
}

/*
 * With synchronous=FULL in WAL mode the WAL is fsynced before COMMIT
 * returns SQLITE_DONE, so returning OK here means the change is on disk.
 */
kg_result kg_store_commit(struct kg_store *store)
{
    return kg_store_exec_cached(store, KG_STMT_COMMIT);
}

/*
 * Some errors (SQLITE_FULL, IOERR, NOMEM) make SQLite roll back by itself;
 * get_autocommit tells whether a transaction is still open. The statement is
 * stepped directly, not through KG_STORE_SQL: rollback runs after a failure,
 * and the caller's error slot must still describe that failure. ROLLBACK
 * does not fail in WAL mode short of misuse; if it did, the transaction
 * stays open and the next kg_store_begin fails loudly.
 */
void kg_store_rollback(struct kg_store *store)
{
    sqlite3_stmt *st;

    if (store == NULL || store->db == NULL || sqlite3_get_autocommit(store->db)) {
        return;
    }
    st = store->stmts[KG_STMT_ROLLBACK];
    if (st != NULL) {
        (void)sqlite3_step(st);
        kg_store_stmt_done(st);
    }
}

kg_result kg_store_savepoint(struct kg_store *store)
{
    return kg_store_exec_cached(store, KG_STMT_SAVEPOINT);
}

kg_result kg_store_release(struct kg_store *store)
{
    return kg_store_exec_cached(store, KG_STMT_RELEASE);
}

/* Like kg_store_rollback, this keeps the caller's error slot: it runs after
 * the failure that it undoes. */
void kg_store_rollback_to(struct kg_store *store)
{
    sqlite3_stmt *st;

    if (store == NULL || store->db == NULL || sqlite3_get_autocommit(store->db)) {
        return;
    }
    st = store->stmts[KG_STMT_ROLLBACK_TO];
    if (st != NULL && sqlite3_step(st) == SQLITE_DONE) {
        kg_store_stmt_done(st);
        st = store->stmts[KG_STMT_RELEASE];
        (void)sqlite3_step(st);
    }
    if (st != NULL) {
        kg_store_stmt_done(st);
    }
}

/* ---- objects ---- */

/* Length of a NUL-terminated string in a fixed array, or `size` if unterminated. */
static size_t kg_store_field_len(const char *s, size_t size)
{
    return strnlen(s, size);
}

static kg_result kg_store_object_exists(struct kg_store *store, const char *uid, bool *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int src;

    *out = false;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_OBJ_EXISTS, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = true;
    } else {
        KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "object exists"));
    }
out:
    kg_store_stmt_done(st);
    return rc;
}

/* After a change that touched no row: NOT_FOUND if the object is missing, else `err`. */
static kg_result kg_store_no_row(struct kg_store *store, const char *uid, int err)
{
    bool exists = false;

    KG_GUARD(kg_store_object_exists(store, uid, &exists));
    KG_ENSURE(exists, KG_ERR_NOT_FOUND);
    KG_BAIL(err);
}

kg_result kg_store_insert_object(struct kg_store *store, const struct kg_object *obj)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    size_t uid_len, group_len, creator_len;
    int src;

    KG_GOTO_ENSURE(rc, obj != NULL, KG_ERR_INTERNAL);
    uid_len = kg_store_field_len(obj->uid, sizeof(obj->uid));
    group_len = kg_store_field_len(obj->owner_group, sizeof(obj->owner_group));
    creator_len = kg_store_field_len(obj->creator, sizeof(obj->creator));
    KG_GOTO_ENSURE(rc, uid_len > 0 && uid_len < sizeof(obj->uid), KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, group_len < sizeof(obj->owner_group), KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, creator_len < sizeof(obj->creator), KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, obj->blob.len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, obj->registered_wrapping_len <= KG_STORE_REG_WRAPPING_MAX, KG_ERR_INVALID_FIELD);

    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_OBJ_INSERT, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, obj->uid, (int)uid_len, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, obj->object_type));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, obj->state));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 4, obj->owner_group, (int)group_len, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 5, obj->creator, (int)creator_len, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 6, obj->algorithm));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 7, obj->length));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 8, obj->usage_mask));
    if (obj->blob.len > 0) {
        KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 9, obj->blob.bytes, obj->blob.len));
    } else {
        KG_STORE_BIND(rc, store, sqlite3_bind_null(st, 9));
    }
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 10, obj->blob.mechanism));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 11, obj->blob.mwk_generation));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 12, obj->storage));
    if (obj->registered_wrapping_len > 0) {
        KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 13, obj->registered_wrapping, obj->registered_wrapping_len));
    } else {
        KG_STORE_BIND(rc, store, sqlite3_bind_null(st, 13));
    }
    if (obj->blob_sealed) {
        KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 14, obj->blob_mac, sizeof(obj->blob_mac)));
    } else {
        KG_STORE_BIND(rc, store, sqlite3_bind_null(st, 14));
    }
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: object %s already exists", obj->uid);
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "insert object"));
out:
    kg_store_stmt_done(st);
    return rc;
}

/* The binding tag column: NULL (unsealed) or exactly KG_P11_BLOB_TAG_LEN bytes. */
static kg_result kg_store_load_mac(sqlite3_stmt *st, int col, struct kg_object *out)
{
    uint32_t len = 0;

    out->blob_sealed = false;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_store_col_bytes(st, col, out->blob_mac, sizeof(out->blob_mac), &len));
    if (len != sizeof(out->blob_mac)) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: object %s has a %u-byte blob tag", out->uid, len);
        return KG_RESULT_ERROR;
    }
    out->blob_sealed = true;
    return KG_RESULT_OK;
}

static kg_result kg_store_load_object(sqlite3_stmt *st, struct kg_object *out)
{
    KG_GUARD(kg_store_col_text(st, 0, out->uid, sizeof(out->uid)));
    KG_GUARD(kg_store_col_u32(st, 1, &out->object_type));
    KG_GUARD(kg_store_col_u32(st, 2, &out->state));
    KG_GUARD(kg_store_col_text(st, 3, out->owner_group, sizeof(out->owner_group)));
    KG_GUARD(kg_store_col_text(st, 4, out->creator, sizeof(out->creator)));
    KG_GUARD(kg_store_col_u32(st, 5, &out->algorithm));
    KG_GUARD(kg_store_col_i32(st, 6, &out->length));
    KG_GUARD(kg_store_col_i32(st, 7, &out->usage_mask));
    KG_GUARD(kg_store_col_bytes(st, 8, out->blob.bytes, KG_P11_MAX_BLOB, &out->blob.len));
    KG_GUARD(kg_store_col_u32(st, 9, &out->blob.mechanism));
    KG_GUARD(kg_store_col_u32(st, 10, &out->blob.mwk_generation));
    KG_GUARD(kg_store_col_u32(st, 11, &out->storage));
    KG_GUARD(kg_store_col_bytes(st, 12, out->registered_wrapping, KG_STORE_REG_WRAPPING_MAX,
                                &out->registered_wrapping_len));
    KG_GUARD(kg_store_load_mac(st, 13, out));
    if (out->storage > KG_P11_STORED_PUBLIC) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: object %s has unknown storage %u", out->uid, out->storage);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_store_get_object(struct kg_store *store, const char *uid, struct kg_object *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int src;

    KG_GOTO_ENSURE(rc, uid != NULL && out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_OBJ_GET, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        KG_GOTO_BAIL(rc, KG_ERR_NOT_FOUND);
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_ROW, "get object"));
    KG_GOTO_GUARD(rc, kg_store_load_object(st, out));
out:
    kg_store_stmt_done(st);
    if (kg_failed(rc) && out != NULL) {
        /* Never hand back half an object. */
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* Run a cached UPDATE keyed by uid; no row touched is KG_ERR_NOT_FOUND. */
static kg_result kg_store_update_object(struct kg_store *store, enum kg_store_stmt_id id, const char *uid,
                                        bool bind_value, int64_t value)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    if (bind_value) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, value));
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, kg_store_sql[id]));
    KG_GOTO_ENSURE(rc, sqlite3_changes(store->db) > 0, KG_ERR_NOT_FOUND);
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_set_state(struct kg_store *store, const char *uid, uint32_t state)
{
    return kg_store_update_object(store, KG_STMT_OBJ_SET_STATE, uid, true, state);
}

kg_result kg_store_erase_blob(struct kg_store *store, const char *uid)
{
    return kg_store_update_object(store, KG_STMT_OBJ_ERASE_BLOB, uid, false, 0);
}

/* ---- attributes ---- */

static kg_result kg_store_check_attr(const char *uid, const char *name, const uint8_t *value, uint32_t value_len)
{
    KG_ENSURE(uid != NULL && name != NULL, KG_ERR_INTERNAL);
    KG_ENSURE(name[0] != '\0' && strnlen(name, KG_ATTR_NAME_MAX + 1) <= KG_ATTR_NAME_MAX, KG_ERR_INVALID_FIELD);
    KG_ENSURE(value_len <= KG_ATTR_VALUE_MAX, KG_ERR_INVALID_FIELD);
    KG_ENSURE(value != NULL || value_len == 0, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

kg_result kg_store_add_attr(struct kg_store *store, const char *uid, const char *name, const uint8_t *value,
                            uint32_t value_len, int32_t *out_index)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int32_t index = -1;
    int src;

    KG_GOTO_ENSURE(rc, out_index != NULL, KG_ERR_INTERNAL);
    *out_index = -1;
    KG_GOTO_GUARD(rc, kg_store_check_attr(uid, name, value, value_len));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_ADD, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 3, value, value_len));
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_NOT_FOUND, "store: no object %s", uid);
    }
    if (src == SQLITE_DONE) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: attribute %s has no free index", name);
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_ROW, "add attribute"));
    KG_GOTO_GUARD(rc, kg_store_col_i32(st, 0, &index));
    /* RETURNING rows are produced after the insert is done; finish cleanly. */
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "add attribute"));
    *out_index = index;
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_set_attr(struct kg_store *store, const char *uid, const char *name, int32_t index,
                            const uint8_t *value, uint32_t value_len)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int changes;

    KG_GOTO_GUARD(rc, kg_store_check_attr(uid, name, value, value_len));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_SET, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, index));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 4, value, value_len));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "set attribute"));
    changes = sqlite3_changes(store->db);
    if (changes == 0) {
        KG_GOTO_GUARD(rc, kg_store_no_row(store, uid, KG_ERR_ATTRIBUTE_NOT_FOUND));
    }
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_delete_attr(struct kg_store *store, const char *uid, const char *name, int32_t index)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_DELETE, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, index));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "delete attribute"));
    if (sqlite3_changes(store->db) == 0) {
        KG_GOTO_GUARD(rc, kg_store_no_row(store, uid, KG_ERR_ATTRIBUTE_NOT_FOUND));
    }
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_delete_attr_all(struct kg_store *store, const char *uid, const char *name)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    bool exists = false;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_DELETE_ALL, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "delete attributes"));
    if (sqlite3_changes(store->db) == 0) {
        /* No rows is fine; no object is not. */
        KG_GOTO_GUARD(rc, kg_store_object_exists(store, uid, &exists));
        KG_GOTO_ENSURE(rc, exists, KG_ERR_NOT_FOUND);
    }
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_each_attr(struct kg_store *store, const char *uid, const char *name, kg_store_attr_fn fn,
                             void *ctx)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    struct kg_attr *attr = NULL;
    uint32_t len = 0;
    int src;

    KG_GOTO_ENSURE(rc, uid != NULL && fn != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, name != NULL ? KG_STMT_ATTR_EACH_NAME : KG_STMT_ATTR_EACH, &st));
    /* One row buffer (4 KiB+) on the heap rather than a worker's stack. */
    attr = malloc(sizeof(*attr));
    KG_GOTO_ENSURE(rc, attr != NULL, KG_ERR_NOMEM);
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    if (name != NULL) {
        KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        KG_GOTO_GUARD(rc, kg_store_col_text(st, 0, attr->name, sizeof(attr->name)));
        KG_GOTO_GUARD(rc, kg_store_col_i32(st, 1, &attr->index));
        KG_GOTO_GUARD(rc, kg_store_col_bytes(st, 2, attr->value, KG_ATTR_VALUE_MAX, &len));
        attr->value_len = len;
        if (!fn(ctx, attr)) {
            goto out;
        }
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "read attributes"));
out:
    kg_store_stmt_done(st);
    free(attr);
    return rc;
}

kg_result kg_store_count_attr(struct kg_store *store, const char *uid, const char *name, uint32_t *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL && out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_COUNT, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "count attributes"));
    KG_GOTO_GUARD(rc, kg_store_col_u32(st, 0, out));
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_is_archived(struct kg_store *store, const char *uid, bool *out)
{
    uint32_t n = 0;

    *out = false;
    KG_GUARD(kg_store_count_attr(store, uid, KG_STORE_ARCHIVE_DATE, &n));
    *out = n > 0;
    return KG_RESULT_OK;
}

kg_result kg_store_count_live(struct kg_store *store, const char *owner_group, uint64_t *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    uint32_t n = 0;

    KG_GOTO_ENSURE(rc, owner_group != NULL && out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_COUNT_LIVE, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, owner_group, -1, SQLITE_STATIC));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "count live objects"));
    KG_GOTO_GUARD(rc, kg_store_col_u32(st, 0, &n));
    *out = n;
out:
    kg_store_stmt_done(st);
    return rc;
}

/* ---- Locate ---- */

/* Append a fixed fragment; the bound check is written as a subtraction. */
static kg_result kg_store_sql_append(char *buf, size_t size, size_t *len, const char *frag, size_t frag_len)
{
    KG_ENSURE(*len < size && size - *len > frag_len, KG_ERR_INTERNAL);
    memcpy(buf + *len, frag, frag_len);
    *len += frag_len;
    buf[*len] = '\0';
    return KG_RESULT_OK;
}

/* Append the fixed fragment `frag` to the Locate SQL buffer `buf`. */
#define KG_STORE_APPEND_TO(rc, buf, len, frag) \
    KG_GOTO_GUARD(rc, kg_store_sql_append((buf), KG_STORE_LOCATE_SQL_MAX, &(len), (frag), sizeof(frag) - 1))

/* Append `head` (ending in "IN (?") and `count` - 1 more ",?", then ")":
 * one placeholder per value, bound in that order. count >= 1. */
static kg_result kg_store_sql_in_list(char sql[KG_STORE_LOCATE_SQL_MAX], size_t *len, const char *head,
                                      size_t head_len, uint32_t count)
{
    KG_GUARD(kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, len, head, head_len));
    for (uint32_t i = 1; i < count; i++) {
        KG_GUARD(kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, len, kg_store_locate_list_more,
                                     sizeof(kg_store_locate_list_more) - 1));
    }
    return kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, len, kg_store_locate_list_tail,
                               sizeof(kg_store_locate_list_tail) - 1);
}

/*
 * SQL functions for the Locate filters that are not byte equality
 * (kg_locate_match.h). They read only their arguments; a NULL or empty
 * argument never matches. Registered per connection, used only in queries
 * (never in the schema), so other tools can still open the file.
 */
static void kg_store_fn_fields_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *stored, *want;
    int stored_len, want_len;

    (void)argc;
    stored = sqlite3_value_blob(argv[0]);
    stored_len = sqlite3_value_bytes(argv[0]);
    want = sqlite3_value_blob(argv[1]);
    want_len = sqlite3_value_bytes(argv[1]);
    sqlite3_result_int(ctx, stored_len > 0 && want_len > 0 &&
                                kg_locate_fields_match(stored, (size_t)stored_len, want, (size_t)want_len));
}

static void kg_store_fn_date_within(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *value;
    int value_len;
    int64_t when = 0;

    (void)argc;
    value = sqlite3_value_blob(argv[0]);
    value_len = sqlite3_value_bytes(argv[0]);
    sqlite3_result_int(ctx, value_len > 0 && kg_locate_date_of(value, (size_t)value_len, &when) &&
                                when >= sqlite3_value_int64(argv[1]) && when <= sqlite3_value_int64(argv[2]));
}

static kg_result kg_store_register_functions(struct kg_store *store)
{
    /* DIRECTONLY: not callable from triggers or views a crafted file might hold. */
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;

    KG_GUARD(KG_STORE_SQL(store,
                          sqlite3_create_function_v2(store->db, "kg_fields_match", 2, flags, NULL,
                                                     kg_store_fn_fields_match, NULL, NULL, NULL),
                          SQLITE_OK, "register kg_fields_match"));
    KG_GUARD(KG_STORE_SQL(store,
                          sqlite3_create_function_v2(store->db, "kg_date_within", 3, flags, NULL,
                                                     kg_store_fn_date_within, NULL, NULL, NULL),
                          SQLITE_OK, "register kg_date_within"));
    return KG_RESULT_OK;
}

/*
 * Compose the SQL from fixed fragments, one per filter in use, so SQLite can
 * use the indexes of the filters that are present (a generic
 * "?1 = 0 OR col = ?1" would defeat them). User data never enters the text:
 * parameters are bound in the same order the fragments were appended (the
 * two halves below mirror each other). The statement is prepared per call
 * (the filter shapes are too many to cache usefully) and finalized at `out:`.
 */
static kg_result kg_store_locate_check(const struct kg_store_locate *query)
{
    if (query->attr_count > KG_STORE_LOCATE_MAX_ATTRS) {
        kg_error_set(KG_ERR_INVALID_FIELD, __FILE__, __LINE__);
        kg_error_detail("store: locate with %u attribute filters, at most %d", (unsigned)query->attr_count,
                        KG_STORE_LOCATE_MAX_ATTRS);
        return KG_RESULT_ERROR;
    }
    KG_ENSURE(query->attrs != NULL || query->attr_count == 0, KG_ERR_INTERNAL);
    for (uint32_t i = 0; i < query->attr_count; i++) {
        const struct kg_store_filter_attr *f = &query->attrs[i];

        KG_ENSURE(f->name != NULL, KG_ERR_INVALID_FIELD);
        KG_ENSURE(f->value_len <= KG_ATTR_VALUE_MAX, KG_ERR_INVALID_FIELD);
        KG_ENSURE(f->value != NULL || f->value_len == 0, KG_ERR_INTERNAL);
        KG_ENSURE(f->match <= KG_STORE_MATCH_DATES, KG_ERR_INVALID_FIELD);
        KG_ENSURE(f->match != KG_STORE_MATCH_DATES || f->low <= f->high, KG_ERR_INVALID_FIELD);
    }
    KG_ENSURE(query->hidden_state_count <= KG_STORE_LOCATE_MAX_HIDDEN, KG_ERR_INVALID_FIELD);
    KG_ENSURE(query->hidden_states != NULL || query->hidden_state_count == 0, KG_ERR_INTERNAL);
    KG_ENSURE(query->owner_group != NULL || query->owner_group_count <= KG_STORE_LOCATE_MAX_OWNERS,
              KG_ERR_INVALID_FIELD);
    KG_ENSURE(query->owner_groups != NULL || query->owner_group_count == 0 || query->owner_group != NULL,
              KG_ERR_INTERNAL);
    KG_ENSURE(query->order <= KG_STORE_ORDER_PREFER_FIRST, KG_ERR_INVALID_FIELD);
    if (query->order == KG_STORE_ORDER_PREFER_ONLY || query->order == KG_STORE_ORDER_PREFER_FIRST) {
        KG_ENSURE(query->prefer.name != NULL && query->prefer.match == KG_STORE_MATCH_EQUAL, KG_ERR_INVALID_FIELD);
        KG_ENSURE(query->prefer.value_len <= KG_ATTR_VALUE_MAX, KG_ERR_INVALID_FIELD);
        KG_ENSURE(query->prefer.value != NULL || query->prefer.value_len == 0, KG_ERR_INTERNAL);
    }
    return KG_RESULT_OK;
}

static const char *kg_store_locate_attr_fragment(uint32_t match, size_t *len)
{
    switch (match) {
    case KG_STORE_MATCH_FIELDS:
        *len = sizeof(kg_store_locate_fields) - 1;
        return kg_store_locate_fields;
    case KG_STORE_MATCH_DATES:
        *len = sizeof(kg_store_locate_dates) - 1;
        return kg_store_locate_dates;
    default:
        *len = sizeof(kg_store_locate_attr) - 1;
        return kg_store_locate_attr;
    }
}

/* Append the fragments of `query` to sql (NUL-terminated, *sql_len long). */
static kg_result kg_store_locate_sql(const struct kg_store_locate *query, char sql[KG_STORE_LOCATE_SQL_MAX],
                                     size_t *sql_len)
{
    kg_result rc = KG_RESULT_OK;
    size_t len = 0;

    KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_base);
    if (query->object_type != 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_type);
    }
    if (query->state != 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_state);
    } else if (query->hidden_state_count > 0) {
        KG_GOTO_GUARD(rc, kg_store_sql_in_list(sql, &len, kg_store_locate_hidden_head,
                                               sizeof(kg_store_locate_hidden_head) - 1, query->hidden_state_count));
    }
    if (query->algorithm != 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_alg);
    }
    if (query->length != 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_length);
    }
    if (query->uid != NULL) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_uid);
    }
    if (query->usage_mask != 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_mask);
    }
    if (query->owner_group != NULL) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_owner);
    } else if (query->owner_group_count > 0) {
        KG_GOTO_GUARD(rc, kg_store_sql_in_list(sql, &len, kg_store_locate_owners_head,
                                               sizeof(kg_store_locate_owners_head) - 1, query->owner_group_count));
    }
    for (uint32_t i = 0; i < query->attr_count; i++) {
        size_t frag_len;
        const char *frag = kg_store_locate_attr_fragment(query->attrs[i].match, &frag_len);

        KG_GOTO_GUARD(rc, kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, &len, frag, frag_len));
    }
    if (query->order == KG_STORE_ORDER_PREFER_ONLY) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_attr);
    }
    if ((query->storage_mask & KG_STORAGE_ARCHIVAL) == 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_online);
    } else if ((query->storage_mask & KG_STORAGE_ON_LINE) == 0) {
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_archived);
    }
    switch (query->order) {
    case KG_STORE_ORDER_NEWEST:
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_newest);
        break;
    case KG_STORE_ORDER_PREFER_FIRST:
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_prefer);
        break;
    default:
        KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_oldest);
        break;
    }
    KG_STORE_APPEND_TO(rc, sql, len, kg_store_locate_limit);
    *sql_len = len;
out:
    return rc;
}

/* Bind what kg_store_locate_sql asked for, in its order. */
static kg_result kg_store_locate_bind(struct kg_store *store, sqlite3_stmt *st, const struct kg_store_locate *query,
                                      uint32_t limit)
{
    kg_result rc = KG_RESULT_OK;
    int param = 1;

    if (query->object_type != 0) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->object_type));
    }
    if (query->state != 0) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->state));
    } else {
        for (uint32_t i = 0; i < query->hidden_state_count; i++) {
            KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->hidden_states[i]));
        }
    }
    if (query->algorithm != 0) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->algorithm));
    }
    if (query->length != 0) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->length));
    }
    if (query->uid != NULL) {
        KG_STORE_BIND(rc, store, sqlite3_bind_text(st, param++, query->uid, -1, SQLITE_STATIC));
    }
    if (query->usage_mask != 0) {
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->usage_mask));
        KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->usage_mask));
    }
    if (query->owner_group != NULL) {
        KG_STORE_BIND(rc, store, sqlite3_bind_text(st, param++, query->owner_group, -1, SQLITE_STATIC));
    } else {
        for (uint32_t i = 0; i < query->owner_group_count; i++) {
            KG_STORE_BIND(rc, store, sqlite3_bind_text(st, param++, query->owner_groups[i], -1, SQLITE_STATIC));
        }
    }
    for (uint32_t i = 0; i < query->attr_count; i++) {
        const struct kg_store_filter_attr *f = &query->attrs[i];

        KG_STORE_BIND(rc, store, sqlite3_bind_text(st, param++, f->name, -1, SQLITE_STATIC));
        if (f->match == KG_STORE_MATCH_DATES) {
            KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, f->low));
            KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, f->high));
        } else {
            KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, param++, f->value, f->value_len));
        }
    }
    if (query->order == KG_STORE_ORDER_PREFER_ONLY || query->order == KG_STORE_ORDER_PREFER_FIRST) {
        KG_STORE_BIND(rc, store, sqlite3_bind_text(st, param++, query->prefer.name, -1, SQLITE_STATIC));
        KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, param++, query->prefer.value, query->prefer.value_len));
    }
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, limit));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, param++, query->offset));
    KG_GOTO_ENSURE(rc, param - 1 == sqlite3_bind_parameter_count(st), KG_ERR_INTERNAL);
out:
    return rc;
}

kg_result kg_store_locate(struct kg_store *store, const struct kg_store_locate *query,
                          char (*out_uids)[KG_UID_LEN + 1], uint32_t cap, uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    char sql[KG_STORE_LOCATE_SQL_MAX];
    size_t sql_len = 0;
    uint32_t limit, n = 0;
    int src;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, store != NULL && query != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, out_uids != NULL || cap == 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_locate_check(query));
    limit = query->max_items == 0 || query->max_items > cap ? cap : query->max_items;
    if (limit == 0) {
        goto out;
    }

    KG_GOTO_GUARD(rc, kg_store_locate_sql(query, sql, &sql_len));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_prepare_v3(store->db, sql, (int)sql_len + 1, 0, &st, NULL),
                                   SQLITE_OK, "prepare locate"));
    KG_GOTO_GUARD(rc, kg_store_locate_bind(store, st, query, limit));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        KG_GOTO_ENSURE(rc, n < limit, KG_ERR_INTERNAL);
        KG_GOTO_GUARD(rc, kg_store_col_text(st, 0, out_uids[n], KG_UID_LEN + 1));
        n++;
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "locate"));
    *out_count = n;
out:
    sqlite3_finalize(st);
    return rc;
}

/* ---- master key rotation ---- */

kg_result kg_store_list_below_generation(struct kg_store *store, uint32_t generation, const char *after_uid,
                                         struct kg_object *out, uint32_t cap, uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    uint32_t n = 0;
    int src;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, after_uid != NULL && out != NULL && cap > 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_LIST, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 1, generation));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 2, after_uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, cap));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        KG_GOTO_ENSURE(rc, n < cap, KG_ERR_INTERNAL);
        memset(&out[n], 0, sizeof(out[n]));
        KG_GOTO_GUARD(rc, kg_store_load_object(st, &out[n]));
        n++;
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "list objects below an MWK generation"));
    *out_count = n;
out:
    kg_store_stmt_done(st);
    if (kg_failed(rc) && out != NULL) {
        /* Blobs are wrapped, but never hand back half a batch. */
        memset(out, 0, (size_t)n * sizeof(out[0]));
    }
    return rc;
}

kg_result kg_store_count_wrapped(struct kg_store *store, uint32_t min_generation, uint32_t max_generation,
                                 uint64_t *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_COUNT, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 1, min_generation));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, max_generation));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "count wrapped blobs"));
    KG_GOTO_GUARD(rc, kg_store_col_int(st, 0, 0, INT64_MAX, &v));
    *out = (uint64_t)v;
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_replace_blob(struct kg_store *store, const char *uid, const struct kg_p11_blob *old_blob,
                                const struct kg_p11_blob *new_blob, bool *replaced)
{
    return kg_store_replace_sealed_blob(store, uid, old_blob, new_blob, NULL, replaced);
}

kg_result kg_store_replace_sealed_blob(struct kg_store *store, const char *uid, const struct kg_p11_blob *old_blob,
                                       const struct kg_p11_blob *new_blob, const uint8_t *new_mac, bool *replaced)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, replaced != NULL, KG_ERR_INTERNAL);
    *replaced = false;
    KG_GOTO_ENSURE(rc, uid != NULL && old_blob != NULL && new_blob != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, old_blob->len > 0 && old_blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, new_blob->len > 0 && new_blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_REPLACE, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, old_blob->mechanism));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, old_blob->mwk_generation));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 4, old_blob->bytes, old_blob->len));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 5, new_blob->bytes, new_blob->len));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 6, new_blob->mechanism));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 7, new_blob->mwk_generation));
    if (new_mac != NULL) {
        KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 8, new_mac, KG_P11_BLOB_TAG_LEN));
    } else {
        KG_STORE_BIND(rc, store, sqlite3_bind_null(st, 8));
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "replace blob"));
    *replaced = sqlite3_changes(store->db) > 0;
out:
    kg_store_stmt_done(st);
    return rc;
}

/* ---- blob binding migration (kmipgw init) ---- */

kg_result kg_store_list_unsealed(struct kg_store *store, const char *after_uid, struct kg_object *out, uint32_t cap,
                                 uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    uint32_t n = 0;
    int src;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, after_uid != NULL && out != NULL && cap > 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_LIST, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, after_uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, cap));
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        KG_GOTO_ENSURE(rc, n < cap, KG_ERR_INTERNAL);
        memset(&out[n], 0, sizeof(out[n]));
        KG_GOTO_GUARD(rc, kg_store_load_object(st, &out[n]));
        n++;
    }
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, src, SQLITE_DONE, "list unsealed blobs"));
    *out_count = n;
out:
    kg_store_stmt_done(st);
    if (kg_failed(rc) && out != NULL) {
        memset(out, 0, (size_t)n * sizeof(out[0]));
    }
    return rc;
}

kg_result kg_store_count_unsealed(struct kg_store *store, uint64_t *out)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_COUNT, &st));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_ROW, "count unsealed blobs"));
    KG_GOTO_GUARD(rc, kg_store_col_int(st, 0, 0, INT64_MAX, &v));
    *out = (uint64_t)v;
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_set_blob_mac(struct kg_store *store, const char *uid, const struct kg_p11_blob *blob,
                                const uint8_t mac[KG_P11_BLOB_TAG_LEN], bool *set)
{
    kg_result rc = KG_RESULT_OK;
    sqlite3_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, set != NULL, KG_ERR_INTERNAL);
    *set = false;
    KG_GOTO_ENSURE(rc, uid != NULL && blob != NULL && mac != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, blob->len > 0 && blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_SET, &st));
    KG_STORE_BIND(rc, store, sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 2, blob->mechanism));
    KG_STORE_BIND(rc, store, sqlite3_bind_int64(st, 3, blob->mwk_generation));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 4, blob->bytes, blob->len));
    KG_STORE_BIND(rc, store, kg_store_bind_bytes(st, 5, mac, KG_P11_BLOB_TAG_LEN));
    KG_GOTO_GUARD(rc, KG_STORE_SQL(store, sqlite3_step(st), SQLITE_DONE, "set blob tag"));
    *set = sqlite3_changes(store->db) > 0;
out:
    kg_store_stmt_done(st);
    return rc;
}
