/*
 * kg_store_sql.c - every SQL text of the object store (kg_store_sql.h):
 * the statements both databases share, then SQLite's schema history and
 * statements, then PostgreSQL's.
 */
#include "kg_store_sql.h"

#include "kg_store.h"

#define KG_STORE_SQL_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- SQLite ---- */

/*
 * Schema v1. STRICT makes SQLite refuse a value of the wrong type instead
 * of storing it. created_seq orders Locate results newest first; it is a
 * counter of its own (not the rowid, which VACUUM may renumber). The
 * attributes index carries uid so a Locate filter is answered from the index
 * alone (version 5 takes it out again: see there). No length CHECKs: the C
 * code checks on the way in and on the way out.
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

/*
 * Version 5 (issue 6): the index on attribute values no longer ends in uid.
 * Entries of equal name and value were ordered by uid, which is random, so
 * every new key put each of its attributes with a common value (Fresh, Lease
 * Time, the dates of one second...) on a leaf page of its own: 110 KB
 * written per Create (WAL and checkpoint), 70 KB once they are ordered by
 * rowid and new keys append to the same pages. A Locate reads the uid from
 * the row instead of from the index.
 */
static const char kg_store_schema_v5[] =
    "DROP INDEX IF EXISTS attributes_name_value;"
    "CREATE INDEX attributes_name_value ON attributes(name, value);"
    "PRAGMA user_version = 5;";

/* SQLite: one step per version, from the first schema on. */
static const struct kg_store_migration kg_store_sqlite_migrations[] = {
    { 0, 1, kg_store_schema_v1 },
    { 1, 2, kg_store_schema_v2 },
    { 2, 3, kg_store_schema_v3 },
    { 3, 4, kg_store_schema_v4 },
    { 4, 5, kg_store_schema_v5 },
};


/* Statements whose SQLite text is SQLite's own. */
static const char *const kg_store_sqlite_override[KG_STMT_COUNT_] = {
    [KG_STMT_BEGIN] = "BEGIN IMMEDIATE",
    [KG_STMT_USER_VERSION] = "PRAGMA user_version",
    [KG_STMT_JOURNAL_MODE] = "PRAGMA journal_mode",
    [KG_STMT_SYNCHRONOUS] = "PRAGMA synchronous",
    [KG_STMT_FOREIGN_KEYS] = "PRAGMA foreign_keys",
    [KG_STMT_BUSY_TIMEOUT] = "PRAGMA busy_timeout",
};

const struct kg_store_dialect kg_store_sqlite_dialect = {
    .name = "sqlite",
    .override = kg_store_sqlite_override,
    .migrations = kg_store_sqlite_migrations,
    .migration_count = KG_STORE_SQL_LEN(kg_store_sqlite_migrations),
    /* IMMEDIATE: the write lock at once; the version is read again under it,
     * since another process may have migrated meanwhile. */
    .begin_migration = "BEGIN IMMEDIATE",
    .read_version = "PRAGMA user_version",
    /* The functions the SQLite driver registers (kg_db_sqlite.c). */
    .locate_fields = " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND kg_fields_match(value, ?))",
    .locate_dates = " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND kg_date_within(value, ?, ?))",
    .fields_in_sql = true,
    /* The unary + keeps SQLite off the index on values, which it would
     * otherwise pick (it keeps no statistics) and walk every Fresh row. */
    .locate_prefer_only =
        " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = ? AND +a.value = ?)",
    .locate_prefer_first = " ORDER BY EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid"
                           " AND a.name = ? AND +a.value = ?) DESC, created_seq ASC",
    .read_snapshots = true,
};

/* ---- PostgreSQL ---- */

/*
 * PostgreSQL stores start at the current schema in one step. Integers are
 * BIGINT (the driver reads any width; one width keeps it simple). created_seq
 * is an identity column: two gateways inserting at once each get their own
 * number, where SQLite's MAX + 1 relies on its single writer. BY DEFAULT,
 * so a restore can write the numbers a backup holds. The attribute values
 * get a hash index: a btree entry is limited to about 2.7 KB and a value
 * may be 4 KB; Locate asks only equality of values.
 */
static const char kg_store_pg_schema_v4[] =
    "CREATE TABLE objects ("
    " uid TEXT PRIMARY KEY NOT NULL,"
    " created_seq BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE,"
    " object_type BIGINT NOT NULL,"
    " state BIGINT NOT NULL,"
    " owner_group TEXT NOT NULL,"
    " creator TEXT NOT NULL,"
    " algorithm BIGINT NOT NULL,"
    " length BIGINT NOT NULL,"
    " usage_mask BIGINT NOT NULL,"
    " blob BYTEA,"
    " blob_mechanism BIGINT NOT NULL,"
    " mwk_generation BIGINT NOT NULL,"
    " storage BIGINT NOT NULL DEFAULT 0,"
    " registered_wrapping BYTEA,"
    " blob_mac BYTEA"
    ");"
    "CREATE INDEX objects_owner ON objects(owner_group, created_seq);"
    "CREATE INDEX objects_mwk_generation ON objects(mwk_generation);"
    "CREATE INDEX objects_unsealed ON objects(uid)"
    " WHERE storage IN (0, 2) AND length(blob) > 0 AND blob_mac IS NULL;"
    "CREATE TABLE attributes ("
    " uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " idx BIGINT NOT NULL,"
    " value BYTEA NOT NULL,"
    " PRIMARY KEY (uid, name, idx)"
    ");"
    "CREATE INDEX attributes_name ON attributes(name);"
    "CREATE INDEX attributes_value ON attributes USING hash (value);"
    "INSERT INTO kg_meta (key, value) VALUES ('schema_version', 4)"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;";

/* Version 5 changed SQLite's value index only; PostgreSQL's never held uid. */
static const char kg_store_pg_schema_v5[] = "UPDATE kg_meta SET value = 5 WHERE key = 'schema_version'";

static const struct kg_store_migration kg_store_pg_migrations[] = {
    { 0, 4, kg_store_pg_schema_v4 },
    { 4, 5, kg_store_pg_schema_v5 },
};

static const char *const kg_store_pg_override[KG_STMT_COUNT_] = {
    [KG_STMT_BEGIN] = "BEGIN",
    [KG_STMT_USER_VERSION] = "SELECT value FROM kg_meta WHERE key = 'schema_version'",
    [KG_STMT_JOURNAL_MODE] = "SELECT CAST('postgresql' AS text)",
    /* 2 (SQLite's FULL) when the server syncs every commit to disk before
     * acknowledging it; kg_store_open refuses anything else. */
    [KG_STMT_SYNCHRONOUS] = "SELECT CASE WHEN current_setting('fsync') = 'on'"
                            " AND current_setting('synchronous_commit') <> 'off' THEN 2 ELSE 0 END",
    [KG_STMT_FOREIGN_KEYS] = "SELECT 1",
    [KG_STMT_BUSY_TIMEOUT] = "SELECT CAST(EXTRACT(EPOCH FROM CAST(current_setting('lock_timeout') AS interval))"
                             " * 1000 AS bigint)",
    [KG_STMT_OBJ_INSERT] =
        "INSERT INTO objects (uid, object_type, state, owner_group, creator,"
        " algorithm, length, usage_mask, blob, blob_mechanism, mwk_generation, storage, registered_wrapping,"
        " blob_mac)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    /* Taken before an attribute's next index is computed (kg_store_add_attr):
     * writers on other gateways wait here rather than pick the same index. */
    [KG_STMT_OBJ_LOCK] = "SELECT 1 FROM objects WHERE uid = ?1 FOR UPDATE",
    [KG_STMT_ATTR_ADD] =
        "INSERT INTO attributes (uid, name, idx, value)"
        " SELECT CAST(?1 AS text), CAST(?2 AS text), n, CAST(?3 AS bytea) FROM"
        " (SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM attributes WHERE uid = ?1 AND name = ?2) AS next"
        " WHERE n <= 2147483647 RETURNING idx",
};

const struct kg_store_dialect kg_store_pg_dialect = {
    .name = "postgresql",
    .override = kg_store_pg_override,
    .migrations = kg_store_pg_migrations,
    .migration_count = KG_STORE_SQL_LEN(kg_store_pg_migrations),
    /* The advisory lock serialises gateways that start at once on a new
     * database; kg_meta holds the schema version (SQLite's user_version). */
    .begin_migration = "BEGIN; SELECT pg_advisory_xact_lock(5696);"
                       " CREATE TABLE IF NOT EXISTS kg_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    .read_version = "SELECT COALESCE((SELECT value FROM kg_meta WHERE key = 'schema_version'), 0)",
    .locate_fields = " AND uid IN (SELECT uid FROM attributes WHERE name = ?)",
    /* A Date-Time item (kg_locate_date_of): 16 bytes, type 09, length 8,
     * then the signed big-endian seconds, compared as a bigint. */
    .locate_dates = " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND length(value) = 16"
                    " AND get_byte(value, 3) = 9 AND substring(value from 5 for 4) = '\\x00000008'::bytea"
                    " AND CAST(CAST(('x' || encode(substring(value from 9 for 8), 'hex')) AS bit(64)) AS bigint)"
                    " BETWEEN CAST(? AS bigint) AND CAST(? AS bigint))",
    .fields_in_sql = false,
    .locate_prefer_only =
        " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = ? AND a.value = ?)",
    .locate_prefer_first = " ORDER BY EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid"
                           " AND a.name = ? AND a.value = ?) DESC, created_seq ASC",
    .read_snapshots = false,
};

/* ---- both ---- */

/* The statements both databases run as written (a dialect may override). */
static const char *const kg_store_sql[KG_STMT_COUNT_] = {
    [KG_STMT_COMMIT] = "COMMIT",
    /* Deferred: a snapshot for reading, no lock on writers. */
    [KG_STMT_BEGIN_READ] = "BEGIN",
    [KG_STMT_SAVEPOINT] = "SAVEPOINT kg_change",
    /* States 5 and 6 are Destroyed and Destroyed Compromised. */
    [KG_STMT_COUNT_LIVE] = "SELECT count(*) FROM objects WHERE owner_group = ?1 AND state NOT IN (5, 6)",
    [KG_STMT_RELEASE] = "RELEASE kg_change",
    [KG_STMT_OBJ_INSERT] =
        "INSERT INTO objects (uid, created_seq, object_type, state, owner_group, creator,"
        " algorithm, length, usage_mask, blob, blob_mechanism, mwk_generation, storage, registered_wrapping,"
        " blob_mac)"
        " VALUES (?1, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM objects),"
        " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [KG_STMT_OBJ_GET] =
        "SELECT uid, object_type, state, owner_group, creator, algorithm, length, usage_mask,"
        " blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac FROM objects WHERE uid = ?1",
    [KG_STMT_OBJ_EXISTS] = "SELECT 1 FROM objects WHERE uid = ?1",
    /* SQLite's BEGIN IMMEDIATE already serialises writers: nothing to lock. */
    [KG_STMT_OBJ_LOCK] = "SELECT 1 FROM objects WHERE uid = ?1",
    [KG_STMT_OBJ_SET_STATE] = "UPDATE objects SET state = ?2 WHERE uid = ?1",
    [KG_STMT_OBJ_ERASE_BLOB] = "UPDATE objects SET blob = NULL, blob_mac = NULL WHERE uid = ?1",
    /* Next index in the same statement, so it is atomic even outside a
     * transaction; no row (and no RETURNING) once int32 indexes run out. */
    [KG_STMT_ATTR_ADD] =
        "INSERT INTO attributes (uid, name, idx, value)"
        " SELECT ?1, ?2, n, ?3 FROM"
        " (SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM attributes WHERE uid = ?1 AND name = ?2) AS next"
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


const char *kg_store_sql_of(const struct kg_store_dialect *dialect, enum kg_store_stmt_id id)
{
    return dialect->override[id] != NULL ? dialect->override[id] : kg_store_sql[id];
}
