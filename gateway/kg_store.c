/*
 * kg_store.c - the object store on SQLite or PostgreSQL (see kg_store.h).
 *
 * Durability. SQLite: every connection runs journal_mode=WAL with
 * synchronous=FULL, in which SQLite fsyncs the WAL before COMMIT returns.
 * Writers use BEGIN IMMEDIATE so the write lock is taken up front: a
 * transaction never holds a read lock while waiting to upgrade it, which is
 * the one way two WAL writers deadlock. PostgreSQL: the server must run
 * with fsync on and synchronous_commit not off (read back at open), so a
 * COMMIT returns after its WAL record is flushed. kg_store_commit returns
 * only after COMMIT has.
 *
 * Statements: every statement is prepared once per connection at open and
 * cached in struct kg_store; each use binds, steps, and resets at the
 * function's single `out:` label. The SQL text is in kg_store_sql.c, one
 * table for both databases plus each dialect's differences; the connection
 * itself is kg_db.h's. Fixed SQL run at open (settings, migration steps) is
 * constant text, never composed. Locate is the one place SQL is composed at
 * run time, and only from fixed fragments; every value is bound.
 *
 * Schema versions: SQLite's PRAGMA user_version, PostgreSQL's kg_meta
 * table. A later schema change appends one migration step per dialect and
 * bumps KG_STORE_SCHEMA_VERSION.
 */
#include "kg_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kg_db.h"
#include "kg_locate_match.h"
#include "kg_store_internal.h"
#include "kg_store_sql.h"


/*
 * Locate fragments. The SQL is the base, then one fragment per filter in
 * use, then the order and the limit; nothing else is ever appended.
 */
static const char kg_store_locate_base[] = "SELECT uid FROM objects WHERE 1 = 1";
static const char kg_store_locate_type[] = " AND object_type = ?";
static const char kg_store_locate_state[] = " AND state = ?";
static const char kg_store_locate_alg[] = " AND algorithm = ?";
/* Secret Data (7) and Opaque Objects (8) keep their value's length in the
 * column (kg_op_register_data.c), which is no Cryptographic Length. */
static const char kg_store_locate_length[] = " AND length = ? AND object_type NOT IN (7, 8)";
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
 * index on values; FIELDS and DATES are the dialect's (kg_store_sql.c). */
static const char kg_store_locate_attr[] =
    " AND uid IN (SELECT uid FROM attributes WHERE name = ? AND value = ?)";
/* Storage Status Mask: on-line only (the default) or archival only; both
 * bits add no fragment. "Archived" is the Archive Date row (kg_store.h). */
static const char kg_store_locate_online[] =
    " AND NOT EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = 'Archive Date')";
static const char kg_store_locate_archived[] =
    " AND EXISTS (SELECT 1 FROM attributes a WHERE a.uid = objects.uid AND a.name = 'Archive Date')";
/* Orders; PREFER_ONLY is the dialect's prefer_only for `prefer` then
 * OLDEST, PREFER_FIRST its prefer_first (kg_store_sql.c). */
static const char kg_store_locate_newest[] = " ORDER BY created_seq DESC";
static const char kg_store_locate_oldest[] = " ORDER BY created_seq ASC";
static const char kg_store_locate_limit[] = " LIMIT ? OFFSET ?";

/* Room for any one attribute filter fragment, the dialects' included
 * (kg_store_sql_append refuses a longer one). */
#define KG_STORE_LOCATE_ATTR_MAX 512

/* Every fragment at once (more than any query can use), plus the NUL. */
#define KG_STORE_LOCATE_SQL_MAX                                                                        \
    (sizeof(kg_store_locate_base) + sizeof(kg_store_locate_type) + sizeof(kg_store_locate_state) +     \
     sizeof(kg_store_locate_alg) + sizeof(kg_store_locate_length) + sizeof(kg_store_locate_uid) +      \
     sizeof(kg_store_locate_mask) + sizeof(kg_store_locate_owner) + sizeof(kg_store_locate_owners_head) + \
     sizeof(kg_store_locate_hidden_head) +                                                             \
     (KG_STORE_LOCATE_MAX_OWNERS + KG_STORE_LOCATE_MAX_HIDDEN) * sizeof(kg_store_locate_list_more) +  \
     2 * sizeof(kg_store_locate_list_tail) + (KG_STORE_LOCATE_MAX_ATTRS + 1) * KG_STORE_LOCATE_ATTR_MAX + \
     sizeof(kg_store_locate_online) + sizeof(kg_store_locate_archived) + sizeof(kg_store_locate_newest) + \
     sizeof(kg_store_locate_oldest) + KG_STORE_LOCATE_ATTR_MAX + sizeof(kg_store_locate_limit))

/* ---- error mapping ---- */

/* Fail with `err` and a detail message, inside a function with `rc`/`out:`. */
#define KG_STORE_GOTO_FAIL(rc, err, ...)                                                             \
    do {                                                                                             \
        kg_error_set((err), __FILE__, __LINE__);                                                     \
        kg_error_detail(__VA_ARGS__);                                                                \
        (rc) = KG_RESULT_ERROR;                                                                      \
        goto out;                                                                                    \
    } while (0)

/* Step a statement that must give a row now. */
static kg_result kg_store_step_row(struct kg_db_stmt *st, const char *what)
{
    bool row = false;

    KG_GUARD(kg_db_step(st, what, &row));
    if (!row) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: %s: no row", what);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* Step a statement that must be done now (a change, or the end of rows). */
static kg_result kg_store_step_done(struct kg_db_stmt *st, const char *what)
{
    bool row = false;

    KG_GUARD(kg_db_step(st, what, &row));
    if (row) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: %s: unexpected row", what);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

/* ---- statement cache ---- */

/*
 * Check a cached statement out for one use. A statement still stepping means
 * a re-entrant call (a kg_store_each_attr callback calling each_attr): refuse
 * it rather than reset the outer iteration under its feet.
 */
static kg_result kg_store_stmt(struct kg_store *store, enum kg_store_stmt_id id, struct kg_db_stmt **out)
{
    *out = NULL;
    KG_ENSURE(store != NULL && store->stmts[id] != NULL, KG_ERR_INTERNAL);
    if (kg_db_busy(store->stmts[id])) {
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
static void kg_store_stmt_done(struct kg_db_stmt *st)
{
    kg_db_reset(st);
}

/* ---- column readers: every value from the database is checked ---- */

static kg_result kg_store_col_int(struct kg_db_stmt *st, int col, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;

    if (kg_db_column_type(st, col) != KG_DB_INTEGER) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not an integer", kg_db_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    v = kg_db_column_int(st, col);
    if (v < min || v > max) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s out of range", kg_db_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    *out = v;
    return KG_RESULT_OK;
}

static kg_result kg_store_col_u32(struct kg_db_stmt *st, int col, uint32_t *out)
{
    int64_t v = 0;

    KG_GUARD(kg_store_col_int(st, col, 0, UINT32_MAX, &v));
    *out = (uint32_t)v;
    return KG_RESULT_OK;
}

static kg_result kg_store_col_i32(struct kg_db_stmt *st, int col, int32_t *out)
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
static kg_result kg_store_col_text(struct kg_db_stmt *st, int col, char *dst, size_t size)
{
    const uint8_t *text;
    size_t n = 0;

    dst[0] = '\0';
    if (kg_db_column_type(st, col) != KG_DB_TEXT) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not text", kg_db_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    text = kg_db_column_bytes(st, col, &n);
    if (text == NULL) {
        kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
        return KG_RESULT_ERROR;
    }
    if (n >= size || memchr(text, '\0', n) != NULL) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s holds %zu bytes, at most %zu fit", kg_db_column_name(st, col), n,
                        size - 1);
        return KG_RESULT_ERROR;
    }
    memcpy(dst, text, n);
    dst[n] = '\0';
    return KG_RESULT_OK;
}

/*
 * Copy a BLOB column (NULL reads as empty) into dst[0..max); too long is
 * KG_ERR_STORE.
 */
static kg_result kg_store_col_bytes(struct kg_db_stmt *st, int col, uint8_t *dst, uint32_t max, uint32_t *out_len)
{
    const uint8_t *bytes;
    enum kg_db_type type = kg_db_column_type(st, col);
    size_t n = 0;

    *out_len = 0;
    if (type == KG_DB_NULL) {
        return KG_RESULT_OK;
    }
    if (type != KG_DB_BLOB) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s is not a blob", kg_db_column_name(st, col));
        return KG_RESULT_ERROR;
    }
    bytes = kg_db_column_bytes(st, col, &n);
    if (n > max) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: column %s holds %zu bytes, at most %u fit", kg_db_column_name(st, col), n,
                        (unsigned)max);
        return KG_RESULT_ERROR;
    }
    if (n > 0) {
        if (bytes == NULL) {
            kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
            return KG_RESULT_ERROR;
        }
        memcpy(dst, bytes, n);
    }
    *out_len = (uint32_t)n;
    return KG_RESULT_OK;
}

/* ---- open, schema, close ---- */

/* Run one cached single-row integer query (settings, COUNT). */
static kg_result kg_store_query_int(struct kg_store *store, enum kg_store_stmt_id id, int64_t *out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;

    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, kg_store_sql_of(store->dialect, id)));
    KG_GOTO_GUARD(rc, kg_store_col_int(st, 0, INT32_MIN, INT32_MAX, out));
out:
    kg_store_stmt_done(st);
    return rc;
}

/* The schema version through a one-off statement (the cache is built after the schema). */
static kg_result kg_store_read_version(struct kg_store *store, int *out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    int64_t v = 0;

    *out = 0;
    KG_GOTO_GUARD(rc, kg_db_prepare(store->db, store->dialect->read_version, false, &st));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "read schema version"));
    KG_GOTO_GUARD(rc, kg_store_col_int(st, 0, INT32_MIN, INT32_MAX, &v));
    *out = (int)v;
out:
    kg_db_finalize(st);
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

/* The dialect's step from `version`, or NULL. */
static const struct kg_store_migration *kg_store_migration_from(const struct kg_store_dialect *dialect, int version)
{
    for (size_t i = 0; i < dialect->migration_count; i++) {
        if (dialect->migrations[i].from_version == version) {
            return &dialect->migrations[i];
        }
    }
    return NULL;
}

/*
 * The schema version at a glance, taking no lock and creating nothing: 0 for
 * a database with no store yet (on PostgreSQL, no kg_meta table: reading it
 * would fail, and creating it is the migration's job).
 */
static kg_result kg_store_peek_version(struct kg_store *store, int *out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;

    *out = 0;
    if (kg_db_backend(store->db) == KG_DB_POSTGRESQL) {
        KG_GOTO_GUARD(rc, kg_db_prepare(store->db, "SELECT to_regclass('kg_meta') IS NOT NULL", false, &st));
        KG_GOTO_GUARD(rc, kg_store_step_row(st, "look for the store's schema"));
        if (kg_db_column_int(st, 0) == 0) {
            goto out;
        }
    }
    KG_GOTO_GUARD(rc, kg_store_read_version(store, out));
out:
    kg_db_finalize(st);
    return rc;
}

/*
 * Bring the schema to KG_STORE_SCHEMA_VERSION in one transaction that holds
 * the dialect's migration lock; nothing at all when it is current (so a
 * worker's or a probe's connection does no DDL, and a read-only PostgreSQL
 * standby can be opened). The version is read again under the lock: another
 * worker or gateway may have migrated between our first look and getting
 * it. Without `create`, a database with no store yet is refused rather than
 * given one.
 */
static kg_result kg_store_migrate(struct kg_store *store, bool create)
{
    kg_result rc = KG_RESULT_OK;
    int version = 0;
    bool in_txn = false;

    KG_GOTO_GUARD(rc, kg_store_peek_version(store, &version));
    KG_GOTO_GUARD(rc, kg_store_check_not_newer(version));
    if (version == KG_STORE_SCHEMA_VERSION) {
        goto out;
    }
    if (version == 0 && !create) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: %s holds no kmipgw store (not created)",
                           store->dialect == &kg_store_pg_dialect ? "the PostgreSQL database" : "the file");
    }
    KG_GOTO_GUARD(rc, kg_db_exec(store->db, store->dialect->begin_migration));
    in_txn = true;
    KG_GOTO_GUARD(rc, kg_store_read_version(store, &version));
    KG_GOTO_GUARD(rc, kg_store_check_not_newer(version));
    while (version < KG_STORE_SCHEMA_VERSION) {
        const struct kg_store_migration *step = kg_store_migration_from(store->dialect, version);
        int now = 0;

        KG_GOTO_ENSURE(rc, step != NULL && step->to_version > version, KG_ERR_INTERNAL);
        KG_GOTO_GUARD(rc, kg_db_exec(store->db, step->sql));
        KG_GOTO_GUARD(rc, kg_store_read_version(store, &now));
        if (now != step->to_version) {
            KG_STORE_GOTO_FAIL(rc, KG_ERR_INTERNAL, "store: migration to %d left the version at %d",
                               step->to_version, now);
        }
        version = now;
    }
    KG_GOTO_GUARD(rc, kg_db_exec(store->db, "COMMIT"));
    in_txn = false;
out:
    if (in_txn && kg_db_in_transaction(store->db)) {
        (void)kg_db_exec_quiet(store->db, "ROLLBACK");
    }
    return rc;
}

/*
 * SQLite connection settings. journal_mode=WAL answers with the mode in
 * force: anything else (e.g. no shared-memory support on the file system)
 * is refused, because the durability argument assumes WAL. secure_delete
 * overwrites freed content, so an erased blob does not linger in free pages
 * of the main file. (busy_timeout and defensive mode are set by the driver.)
 */
static kg_result kg_store_configure_sqlite(struct kg_store *store)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    const uint8_t *mode;
    size_t mode_len = 0;

    KG_GOTO_GUARD(rc, kg_db_prepare(store->db, "PRAGMA journal_mode = WAL", false, &st));
    /* Switching a new file to WAL needs it alone, and SQLite does not wait
     * in its busy handler for that: workers opening one new file at once
     * see SQLITE_BUSY. Try again for as long as busy_timeout would wait. */
    for (int tries = 0;; tries++) {
        rc = kg_store_step_row(st, "journal_mode = WAL");
        if (kg_ok(rc) || kg_db_last_fail(store->db) != KG_DB_FAIL_BUSY ||
            tries * 10 >= KG_STORE_BUSY_TIMEOUT_MS) {
            break;
        }
        kg_db_reset(st);
        usleep(10 * 1000);
    }
    KG_GOTO_GUARD(rc, rc);
    mode = kg_db_column_bytes(st, 0, &mode_len);
    if (mode == NULL || mode_len != 3 || memcmp(mode, "wal", 3) != 0) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: cannot use WAL journal (got %.*s); refusing to open",
                           mode != NULL ? (int)mode_len : 7, mode != NULL ? (const char *)mode : "nothing");
    }
    KG_GOTO_GUARD(rc, kg_db_exec(store->db,
                                 "PRAGMA synchronous = FULL;"
                                 "PRAGMA foreign_keys = ON;"
                                 "PRAGMA secure_delete = ON;"));
out:
    kg_db_finalize(st);
    return rc;
}

static kg_result kg_store_prepare_all(struct kg_store *store)
{
    for (size_t i = 0; i < KG_STMT_COUNT_; i++) {
        KG_GUARD(kg_db_prepare(store->db, kg_store_sql_of(store->dialect, (enum kg_store_stmt_id)i), true,
                               &store->stmts[i]));
    }
    return KG_RESULT_OK;
}

/*
 * A new SQLite file is made 0600 whatever the umask: it holds wrapped keys.
 * SQLite creates it (empty) and we chmod it by name before anything is
 * written; SQLite gives -wal and -shm the mode of the main file. The file is
 * never opened and closed outside SQLite: closing any descriptor of it drops
 * every POSIX lock this process holds on it (fcntl semantics), including the
 * shared locks of the connections already open, and another process (a
 * backup, the sqlite3 shell) would then believe it is the last user,
 * checkpoint and delete the WAL while we still write to it: committed
 * changes lost at the next restart.
 */
static kg_result kg_store_open_sqlite(struct kg_store *store, const char *path)
{
    struct stat sb;
    bool existed = stat(path, &sb) == 0;

    KG_GUARD(kg_db_open(path, &store->db));
    if (!existed && chmod(path, 0600) != 0) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: cannot make %s private: %s", path, strerror(errno));
        return KG_RESULT_ERROR;
    }
    return kg_store_configure_sqlite(store);
}

/* kg_store_open and kg_store_open_existing: `create` says whether a store may be made. */
static kg_result kg_store_open_as(const char *location, bool create, struct kg_store **out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_store *store = NULL;
    int64_t sync = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_GOTO_ENSURE(rc, location != NULL && location[0] != '\0', KG_ERR_CONFIG);

    store = calloc(1, sizeof(*store));
    KG_GOTO_ENSURE(rc, store != NULL, KG_ERR_NOMEM);
    if (kg_db_location_is_pg(location)) {
        store->dialect = &kg_store_pg_dialect;
        KG_GOTO_GUARD(rc, kg_db_open(location, &store->db));
    } else {
        store->dialect = &kg_store_sqlite_dialect;
        KG_GOTO_GUARD(rc, kg_store_open_sqlite(store, location));
    }
    KG_GOTO_GUARD(rc, kg_store_migrate(store, create));
    KG_GOTO_GUARD(rc, kg_store_prepare_all(store));

    /* The durability rule rests on this: read it back rather than trust it. */
    KG_GOTO_GUARD(rc, kg_store_query_int(store, KG_STMT_SYNCHRONOUS, &sync));
    if (sync != 2) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE,
                           "store: commits are not synced to disk (%s: synchronous %lld); refusing to open",
                           store->dialect->name, (long long)sync);
    }
    *out = store;
    store = NULL;
out:
    kg_store_close(store);
    return rc;
}

kg_result kg_store_open_existing(const char *location, struct kg_store **out)
{
    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(location != NULL && location[0] != '\0', KG_ERR_CONFIG);
    /* sqlite3_open would create the file before the migration could refuse. */
    if (!kg_db_location_is_pg(location) && access(location, R_OK) != 0) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: cannot read %s: %s (not created)", location, strerror(errno));
        return KG_RESULT_ERROR;
    }
    return kg_store_open_as(location, false, out);
}

kg_result kg_store_open(const char *location, struct kg_store **out)
{
    return kg_store_open_as(location, true, out);
}

kg_result kg_store_try_rotation_lock(struct kg_store *store, bool *got)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;

    KG_ENSURE(store != NULL && got != NULL, KG_ERR_INTERNAL);
    *got = false;
    KG_ENSURE(kg_db_backend(store->db) == KG_DB_POSTGRESQL, KG_ERR_INTERNAL);
    /* 5697: any constant of ours; the migration lock is 5696. */
    KG_GOTO_GUARD(rc, kg_db_prepare(store->db, "SELECT pg_try_advisory_lock(5697)", false, &st));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "rotation lock"));
    *got = kg_db_column_int(st, 0) != 0;
    store->rotation_session = *got ? kg_db_session(store->db) : 0;
out:
    kg_db_finalize(st);
    return rc;
}

kg_result kg_store_check_rotation_lock(struct kg_store *store)
{
    KG_ENSURE(store != NULL, KG_ERR_INTERNAL);
    if (kg_db_backend(store->db) != KG_DB_POSTGRESQL || store->rotation_session == kg_db_session(store->db)) {
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
    kg_error_detail("store: the connection to PostgreSQL was re-established and the rotation lock went with it; "
                    "run rotate-master again to resume");
    return KG_RESULT_ERROR;
}

const char *kg_store_location_text(const char *location)
{
    return kg_db_location_is_pg(location) ? "the PostgreSQL database" : location;
}

void kg_store_close(struct kg_store *store)
{
    if (store == NULL) {
        return;
    }
    for (size_t i = 0; i < KG_STMT_COUNT_; i++) {
        kg_db_finalize(store->stmts[i]);
        store->stmts[i] = NULL;
    }
    kg_db_close(store->db);
    store->db = NULL;
    free(store);
}

const char *kg_store_backend_name(const struct kg_store *store)
{
    return store->dialect->name;
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
    struct kg_db_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_JOURNAL_MODE, &st));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "journal_mode"));
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
    struct kg_db_stmt *st = NULL;

    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, kg_store_step_done(st, kg_store_sql_of(store->dialect, id)));
out:
    kg_store_stmt_done(st);
    return rc;
}

/*
 * Nesting and committing nothing are refused here, not left to the
 * database: PostgreSQL only warns about both, and a COMMIT that "succeeds"
 * with no transaction open would tell a caller its change is durable when
 * the transaction was lost with its connection.
 */
kg_result kg_store_begin(struct kg_store *store)
{
    KG_ENSURE(store != NULL, KG_ERR_INTERNAL);
    if (kg_db_in_transaction(store->db)) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: begin: a transaction is already open");
        return KG_RESULT_ERROR;
    }
    return kg_store_exec_cached(store, KG_STMT_BEGIN);
}

/*
 * SQLite: with synchronous=FULL in WAL mode the WAL is fsynced before COMMIT
 * returns. PostgreSQL: with fsync on and synchronous_commit not off (checked
 * at open) COMMIT returns after the WAL is flushed. Either way OK here means
 * the change is on disk.
 */
kg_result kg_store_commit(struct kg_store *store)
{
    KG_ENSURE(store != NULL, KG_ERR_INTERNAL);
    if (!kg_db_in_transaction(store->db)) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: commit: no transaction is open");
        return KG_RESULT_ERROR;
    }
    return kg_store_exec_cached(store, KG_STMT_COMMIT);
}

/*
 * Some errors (SQLITE_FULL, IOERR, NOMEM) make SQLite roll back by itself;
 * kg_db_in_transaction tells whether a transaction is still open. Quiet:
 * rollback runs after a failure, and the caller's error slot must still
 * describe that failure. If ROLLBACK itself failed, the transaction stays
 * open and the next kg_store_begin fails loudly.
 */
void kg_store_rollback(struct kg_store *store)
{
    if (store == NULL || store->db == NULL || !kg_db_in_transaction(store->db)) {
        return;
    }
    (void)kg_db_exec_quiet(store->db, "ROLLBACK");
}

kg_result kg_store_read_begin(struct kg_store *store, bool *opened)
{
    *opened = false;
    KG_ENSURE(store != NULL, KG_ERR_INTERNAL);
    if (!store->dialect->read_snapshots || kg_db_in_transaction(store->db)) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_store_exec_cached(store, KG_STMT_BEGIN_READ));
    *opened = true;
    return KG_RESULT_OK;
}

void kg_store_read_end(struct kg_store *store, bool opened)
{
    struct kg_error_saved saved;

    if (!opened) {
        return;
    }
    /* Ending a read-only transaction only releases its snapshot. */
    kg_error_save(&saved);
    if (kg_failed(kg_store_exec_cached(store, KG_STMT_COMMIT))) {
        kg_store_rollback(store);
    }
    kg_error_restore(&saved);
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
    if (store == NULL || store->db == NULL || !kg_db_in_transaction(store->db)) {
        return;
    }
    if (kg_db_exec_quiet(store->db, "ROLLBACK TO kg_change")) {
        (void)kg_db_exec_quiet(store->db, "RELEASE kg_change");
    }
}

/* ---- objects ---- */

/* Length of a NUL-terminated string in a fixed array, or `size` if unterminated. */
static size_t kg_store_field_len(const char *s, size_t size)
{
    return strnlen(s, size);
}

/* Run a cached one-parameter query on `uid`; *out: it gave a row. */
static kg_result kg_store_uid_query(struct kg_store *store, enum kg_store_stmt_id id, const char *uid, bool *out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    bool row = false;

    *out = false;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_step(st, kg_store_sql_of(store->dialect, id), &row));
    *out = row;
out:
    kg_store_stmt_done(st);
    return rc;
}

static kg_result kg_store_object_exists(struct kg_store *store, const char *uid, bool *out)
{
    return kg_store_uid_query(store, KG_STMT_OBJ_EXISTS, uid, out);
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
    struct kg_db_stmt *st = NULL;
    size_t uid_len, group_len, creator_len;

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
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, obj->uid));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, obj->object_type));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, obj->state));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 4, obj->owner_group));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 5, obj->creator));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 6, obj->algorithm));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 7, obj->length));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 8, obj->usage_mask));
    if (obj->blob.len > 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 9, obj->blob.bytes, obj->blob.len));
    } else {
        KG_GOTO_GUARD(rc, kg_db_bind_null(st, 9));
    }
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 10, obj->blob.mechanism));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 11, obj->blob.mwk_generation));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 12, obj->storage));
    if (obj->registered_wrapping_len > 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 13, obj->registered_wrapping, obj->registered_wrapping_len));
    } else {
        KG_GOTO_GUARD(rc, kg_db_bind_null(st, 13));
    }
    if (obj->blob_sealed) {
        KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 14, obj->blob_mac, sizeof(obj->blob_mac)));
    } else {
        KG_GOTO_GUARD(rc, kg_db_bind_null(st, 14));
    }
    rc = kg_store_step_done(st, "insert object");
    if (kg_failed(rc) && kg_db_last_fail(store->db) == KG_DB_FAIL_UNIQUE) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: object %s already exists", obj->uid);
    }
    KG_GOTO_GUARD(rc, rc);
out:
    kg_store_stmt_done(st);
    return rc;
}

/* The binding tag column: NULL (unsealed) or exactly KG_P11_BLOB_TAG_LEN bytes. */
static kg_result kg_store_load_mac(struct kg_db_stmt *st, int col, struct kg_object *out)
{
    uint32_t len = 0;

    out->blob_sealed = false;
    if (kg_db_column_type(st, col) == KG_DB_NULL) {
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

static kg_result kg_store_load_object(struct kg_db_stmt *st, struct kg_object *out)
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
    struct kg_db_stmt *st = NULL;
    bool row = false;

    KG_GOTO_ENSURE(rc, uid != NULL && out != NULL, KG_ERR_INTERNAL);
    memset(out, 0, sizeof(*out));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_OBJ_GET, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_step(st, "get object", &row));
    KG_GOTO_ENSURE(rc, row, KG_ERR_NOT_FOUND);
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
    struct kg_db_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, id, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    if (bind_value) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, value));
    }
    KG_GOTO_GUARD(rc, kg_store_step_done(st, kg_store_sql_of(store->dialect, id)));
    KG_GOTO_ENSURE(rc, kg_db_changes(store->db) > 0, KG_ERR_NOT_FOUND);
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

/*
 * PostgreSQL only (kg_store.h). A missing object is left to the caller's
 * next statement (the insert's foreign key, an update that touches no row).
 */
kg_result kg_store_lock_object(struct kg_store *store, const char *uid)
{
    bool row = false;

    KG_ENSURE(store != NULL && uid != NULL, KG_ERR_INTERNAL);
    if (kg_db_backend(store->db) != KG_DB_POSTGRESQL) {
        return KG_RESULT_OK;
    }
    return kg_store_uid_query(store, KG_STMT_OBJ_LOCK, uid, &row);
}

kg_result kg_store_add_attr(struct kg_store *store, const char *uid, const char *name, const uint8_t *value,
                            uint32_t value_len, int32_t *out_index)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    bool row = false;
    int32_t index = -1;

    KG_GOTO_ENSURE(rc, out_index != NULL, KG_ERR_INTERNAL);
    *out_index = -1;
    KG_GOTO_GUARD(rc, kg_store_check_attr(uid, name, value, value_len));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_ADD, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 3, value, value_len));
    rc = kg_db_step(st, "add attribute", &row);
    if (kg_failed(rc) && kg_db_last_fail(store->db) == KG_DB_FAIL_FOREIGN_KEY) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_NOT_FOUND, "store: no object %s", uid);
    }
    KG_GOTO_GUARD(rc, rc);
    if (!row) {
        KG_STORE_GOTO_FAIL(rc, KG_ERR_STORE, "store: attribute %s has no free index", name);
    }
    KG_GOTO_GUARD(rc, kg_store_col_i32(st, 0, &index));
    /* RETURNING rows are produced after the insert is done; finish cleanly. */
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "add attribute"));
    *out_index = index;
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_set_attr(struct kg_store *store, const char *uid, const char *name, int32_t index,
                            const uint8_t *value, uint32_t value_len)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    int changes;

    KG_GOTO_GUARD(rc, kg_store_check_attr(uid, name, value, value_len));
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_SET, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, index));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 4, value, value_len));
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "set attribute"));
    changes = kg_db_changes(store->db);
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
    struct kg_db_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_DELETE, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, index));
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "delete attribute"));
    if (kg_db_changes(store->db) == 0) {
        KG_GOTO_GUARD(rc, kg_store_no_row(store, uid, KG_ERR_ATTRIBUTE_NOT_FOUND));
    }
out:
    kg_store_stmt_done(st);
    return rc;
}

kg_result kg_store_delete_attr_all(struct kg_store *store, const char *uid, const char *name)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    bool exists = false;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_DELETE_ALL, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "delete attributes"));
    if (kg_db_changes(store->db) == 0) {
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
    struct kg_db_stmt *st = NULL;
    struct kg_attr *attr = NULL;
    uint32_t len = 0;
    bool row = false;

    KG_GOTO_ENSURE(rc, uid != NULL && fn != NULL, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, name != NULL ? KG_STMT_ATTR_EACH_NAME : KG_STMT_ATTR_EACH, &st));
    /* One row buffer (4 KiB+) on the heap rather than a worker's stack. */
    attr = malloc(sizeof(*attr));
    KG_GOTO_ENSURE(rc, attr != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    if (name != NULL) {
        KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    }
    for (;;) {
        KG_GOTO_GUARD(rc, kg_db_step(st, "read attributes", &row));
        if (!row) {
            break;
        }
        KG_GOTO_GUARD(rc, kg_store_col_text(st, 0, attr->name, sizeof(attr->name)));
        KG_GOTO_GUARD(rc, kg_store_col_i32(st, 1, &attr->index));
        KG_GOTO_GUARD(rc, kg_store_col_bytes(st, 2, attr->value, KG_ATTR_VALUE_MAX, &len));
        attr->value_len = len;
        if (!fn(ctx, attr)) {
            goto out;
        }
    }
out:
    kg_store_stmt_done(st);
    free(attr);
    return rc;
}

kg_result kg_store_count_attr(struct kg_store *store, const char *uid, const char *name, uint32_t *out)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, uid != NULL && name != NULL && out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ATTR_COUNT, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, name));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "count attributes"));
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
    struct kg_db_stmt *st = NULL;
    uint32_t n = 0;

    KG_GOTO_ENSURE(rc, owner_group != NULL && out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_COUNT_LIVE, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, owner_group));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "count live objects"));
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

static const char *kg_store_locate_attr_fragment(const struct kg_store_dialect *dialect, uint32_t match,
                                                 size_t *len)
{
    const char *frag;

    switch (match) {
    case KG_STORE_MATCH_FIELDS:
        frag = dialect->locate_fields;
        break;
    case KG_STORE_MATCH_DATES:
        frag = dialect->locate_dates;
        break;
    default:
        frag = kg_store_locate_attr;
        break;
    }
    *len = strlen(frag);
    return frag;
}

/* FIELDS filters are checked here rather than in SQL (a dialect without
 * fields_in_sql, and the query has one). */
static bool kg_store_locate_fields_in_c(const struct kg_store *store, const struct kg_store_locate *query)
{
    if (store->dialect->fields_in_sql) {
        return false;
    }
    for (uint32_t i = 0; i < query->attr_count; i++) {
        if (query->attrs[i].match == KG_STORE_MATCH_FIELDS) {
            return true;
        }
    }
    return false;
}

/* Append the fragments of `query` to sql (NUL-terminated, *sql_len long). */
static kg_result kg_store_locate_sql(const struct kg_store_dialect *dialect, const struct kg_store_locate *query,
                                     char sql[KG_STORE_LOCATE_SQL_MAX], size_t *sql_len)
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
        const char *frag = kg_store_locate_attr_fragment(dialect, query->attrs[i].match, &frag_len);

        KG_GOTO_GUARD(rc, kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, &len, frag, frag_len));
    }
    if (query->order == KG_STORE_ORDER_PREFER_ONLY) {
        KG_GOTO_GUARD(rc, kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, &len, dialect->locate_prefer_only,
                                              strlen(dialect->locate_prefer_only)));
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
        KG_GOTO_GUARD(rc, kg_store_sql_append(sql, KG_STORE_LOCATE_SQL_MAX, &len, dialect->locate_prefer_first,
                                              strlen(dialect->locate_prefer_first)));
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
static kg_result kg_store_locate_bind(const struct kg_store *store, struct kg_db_stmt *st,
                                      const struct kg_store_locate *query, uint32_t limit, bool fields_in_c)
{
    kg_result rc = KG_RESULT_OK;
    int param = 1;

    if (query->object_type != 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->object_type));
    }
    if (query->state != 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->state));
    } else {
        for (uint32_t i = 0; i < query->hidden_state_count; i++) {
            KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->hidden_states[i]));
        }
    }
    if (query->algorithm != 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->algorithm));
    }
    if (query->length != 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->length));
    }
    if (query->uid != NULL) {
        KG_GOTO_GUARD(rc, kg_db_bind_text(st, param++, query->uid));
    }
    if (query->usage_mask != 0) {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->usage_mask));
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->usage_mask));
    }
    if (query->owner_group != NULL) {
        KG_GOTO_GUARD(rc, kg_db_bind_text(st, param++, query->owner_group));
    } else {
        for (uint32_t i = 0; i < query->owner_group_count; i++) {
            KG_GOTO_GUARD(rc, kg_db_bind_text(st, param++, query->owner_groups[i]));
        }
    }
    for (uint32_t i = 0; i < query->attr_count; i++) {
        const struct kg_store_filter_attr *f = &query->attrs[i];

        KG_GOTO_GUARD(rc, kg_db_bind_text(st, param++, f->name));
        if (f->match == KG_STORE_MATCH_DATES) {
            KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, f->low));
            KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, f->high));
        } else if (f->match == KG_STORE_MATCH_FIELDS && !store->dialect->fields_in_sql) {
            continue; /* the fragment names the attribute only */
        } else {
            KG_GOTO_GUARD(rc, kg_db_bind_blob(st, param++, f->value, f->value_len));
        }
    }
    if (query->order == KG_STORE_ORDER_PREFER_ONLY || query->order == KG_STORE_ORDER_PREFER_FIRST) {
        KG_GOTO_GUARD(rc, kg_db_bind_text(st, param++, query->prefer.name));
        KG_GOTO_GUARD(rc, kg_db_bind_blob(st, param++, query->prefer.value, query->prefer.value_len));
    }
    if (fields_in_c) {
        /* Offset and limit count what passes the check in C: no LIMIT in SQL. */
        KG_GOTO_GUARD(rc, kg_db_bind_null(st, param++));
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, 0));
    } else {
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, limit));
        KG_GOTO_GUARD(rc, kg_db_bind_int(st, param++, query->offset));
    }
    KG_GOTO_ENSURE(rc, param - 1 == kg_db_param_count(st), KG_ERR_INTERNAL);
out:
    return rc;
}

/* kg_store_each_attr callback: does some row match the structure fields wanted? */
struct kg_store_fields_check {
    const struct kg_store_filter_attr *filter;
    bool matched;
};

static bool kg_store_fields_row(void *ctx, const struct kg_attr *attr)
{
    struct kg_store_fields_check *check = ctx;

    check->matched = attr->value_len > 0 && check->filter->value_len > 0 &&
                     kg_locate_fields_match(attr->value, attr->value_len, check->filter->value,
                                            check->filter->value_len);
    return !check->matched;
}

/* Every FIELDS filter of `query` has a matching row on `uid`. */
static kg_result kg_store_locate_check_fields(struct kg_store *store, const struct kg_store_locate *query,
                                              const char *uid, bool *out)
{
    *out = true;
    for (uint32_t i = 0; i < query->attr_count && *out; i++) {
        struct kg_store_fields_check check = { &query->attrs[i], false };

        if (query->attrs[i].match != KG_STORE_MATCH_FIELDS) {
            continue;
        }
        KG_GUARD(kg_store_each_attr(store, uid, query->attrs[i].name, kg_store_fields_row, &check));
        *out = check.matched;
    }
    return KG_RESULT_OK;
}

kg_result kg_store_locate(struct kg_store *store, const struct kg_store_locate *query,
                          char (*out_uids)[KG_UID_LEN + 1], uint32_t cap, uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    char sql[KG_STORE_LOCATE_SQL_MAX];
    size_t sql_len = 0;
    uint32_t limit, n = 0, skipped = 0;
    bool row = false, fields_in_c;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, store != NULL && query != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, out_uids != NULL || cap == 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_locate_check(query));
    limit = query->max_items == 0 || query->max_items > cap ? cap : query->max_items;
    if (limit == 0) {
        goto out;
    }

    fields_in_c = kg_store_locate_fields_in_c(store, query);
    KG_GOTO_GUARD(rc, kg_store_locate_sql(store->dialect, query, sql, &sql_len));
    KG_GOTO_GUARD(rc, kg_db_prepare(store->db, sql, false, &st));
    KG_GOTO_GUARD(rc, kg_store_locate_bind(store, st, query, limit, fields_in_c));
    while (n < limit) {
        KG_GOTO_GUARD(rc, kg_db_step(st, "locate", &row));
        if (!row) {
            break;
        }
        KG_GOTO_GUARD(rc, kg_store_col_text(st, 0, out_uids[n], KG_UID_LEN + 1));
        if (fields_in_c) {
            bool match = false;

            KG_GOTO_GUARD(rc, kg_store_locate_check_fields(store, query, out_uids[n], &match));
            if (!match || skipped++ < query->offset) {
                continue;
            }
        }
        n++;
    }
    *out_count = n;
out:
    kg_db_finalize(st);
    return rc;
}

/* ---- master key rotation ---- */

/* Read every row of a bound object listing into out[0..cap); *n counts them
 * as they are read (so the caller can wipe what it got on failure). */
static kg_result kg_store_load_objects(struct kg_db_stmt *st, const char *what, struct kg_object *out, uint32_t cap,
                                       uint32_t *n)
{
    bool row = false;

    for (;;) {
        KG_GUARD(kg_db_step(st, what, &row));
        if (!row) {
            return KG_RESULT_OK;
        }
        KG_ENSURE(*n < cap, KG_ERR_INTERNAL);
        memset(&out[*n], 0, sizeof(out[*n]));
        KG_GUARD(kg_store_load_object(st, &out[*n]));
        (*n)++;
    }
}

kg_result kg_store_list_below_generation(struct kg_store *store, uint32_t generation, const char *after_uid,
                                         struct kg_object *out, uint32_t cap, uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    uint32_t n = 0;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, after_uid != NULL && out != NULL && cap > 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_LIST, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 1, generation));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 2, after_uid));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, cap));
    KG_GOTO_GUARD(rc, kg_store_load_objects(st, "list objects below an MWK generation", out, cap, &n));
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
    struct kg_db_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_COUNT, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 1, min_generation));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, max_generation));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "count wrapped blobs"));
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
    struct kg_db_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, replaced != NULL, KG_ERR_INTERNAL);
    *replaced = false;
    KG_GOTO_ENSURE(rc, uid != NULL && old_blob != NULL && new_blob != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, old_blob->len > 0 && old_blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_ENSURE(rc, new_blob->len > 0 && new_blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_ROTATE_REPLACE, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, old_blob->mechanism));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, old_blob->mwk_generation));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 4, old_blob->bytes, old_blob->len));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 5, new_blob->bytes, new_blob->len));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 6, new_blob->mechanism));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 7, new_blob->mwk_generation));
    if (new_mac != NULL) {
        KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 8, new_mac, KG_P11_BLOB_TAG_LEN));
    } else {
        KG_GOTO_GUARD(rc, kg_db_bind_null(st, 8));
    }
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "replace blob"));
    *replaced = kg_db_changes(store->db) > 0;
out:
    kg_store_stmt_done(st);
    return rc;
}

/* ---- blob binding migration (kmipgw init) ---- */

kg_result kg_store_list_unsealed(struct kg_store *store, const char *after_uid, struct kg_object *out, uint32_t cap,
                                 uint32_t *out_count)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    uint32_t n = 0;

    KG_GOTO_ENSURE(rc, out_count != NULL, KG_ERR_INTERNAL);
    *out_count = 0;
    KG_GOTO_ENSURE(rc, after_uid != NULL && out != NULL && cap > 0, KG_ERR_INTERNAL);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_LIST, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, after_uid));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, cap));
    KG_GOTO_GUARD(rc, kg_store_load_objects(st, "list unsealed blobs", out, cap, &n));
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
    struct kg_db_stmt *st = NULL;
    int64_t v = 0;

    KG_GOTO_ENSURE(rc, out != NULL, KG_ERR_INTERNAL);
    *out = 0;
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_COUNT, &st));
    KG_GOTO_GUARD(rc, kg_store_step_row(st, "count unsealed blobs"));
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
    struct kg_db_stmt *st = NULL;

    KG_GOTO_ENSURE(rc, set != NULL, KG_ERR_INTERNAL);
    *set = false;
    KG_GOTO_ENSURE(rc, uid != NULL && blob != NULL && mac != NULL, KG_ERR_INTERNAL);
    KG_GOTO_ENSURE(rc, blob->len > 0 && blob->len <= KG_P11_MAX_BLOB, KG_ERR_INVALID_FIELD);
    KG_GOTO_GUARD(rc, kg_store_stmt(store, KG_STMT_SEAL_SET, &st));
    KG_GOTO_GUARD(rc, kg_db_bind_text(st, 1, uid));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 2, blob->mechanism));
    KG_GOTO_GUARD(rc, kg_db_bind_int(st, 3, blob->mwk_generation));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 4, blob->bytes, blob->len));
    KG_GOTO_GUARD(rc, kg_db_bind_blob(st, 5, mac, KG_P11_BLOB_TAG_LEN));
    KG_GOTO_GUARD(rc, kg_store_step_done(st, "set blob tag"));
    *set = kg_db_changes(store->db) > 0;
out:
    kg_store_stmt_done(st);
    return rc;
}
