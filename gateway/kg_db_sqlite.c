/*
 * kg_db_sqlite.c - the kg_db driver for SQLite: a direct mapping, since the
 * kg_db API has SQLite's shape (kg_db.h). Connection settings (WAL,
 * synchronous, ...) are the store's business, not this file's.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "kg_db_internal.h"
#include "kg_locate_match.h"

struct kg_db_sqlite {
    struct kg_db base;
    sqlite3 *handle;
};

struct kg_db_sqlite_stmt {
    struct kg_db_stmt base;
    sqlite3_stmt *handle;
};

/* An empty, non-NULL value: sqlite3_bind_blob with a NULL pointer binds NULL. */
static const uint8_t kg_db_sqlite_empty[1];

static sqlite3 *kg_db_sqlite_handle(const struct kg_db *db)
{
    return ((const struct kg_db_sqlite *)db)->handle;
}

static sqlite3_stmt *kg_db_sqlite_stmt(const struct kg_db_stmt *st)
{
    return ((const struct kg_db_sqlite_stmt *)st)->handle;
}

/* OK when `got` is `want`; else KG_ERR_STORE with SQLite's message. */
static kg_result kg_db_sqlite_check(sqlite3 *handle, int got, int want, const char *what)
{
    if (got == want) {
        return KG_RESULT_OK;
    }
    kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
    kg_error_detail("store: %s: %s (sqlite %d)", what, handle != NULL ? sqlite3_errmsg(handle) : sqlite3_errstr(got),
                    got);
    return KG_RESULT_ERROR;
}

/*
 * SQL functions for the store's Locate filters that are not byte equality
 * (kg_locate_match.h). They read only their arguments; a NULL or empty
 * argument never matches. Registered per connection, used only in queries
 * (never in the schema), so other tools can still open the file.
 */
static void kg_db_sqlite_fn_fields_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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

static void kg_db_sqlite_fn_date_within(sqlite3_context *ctx, int argc, sqlite3_value **argv)
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

/*
 * Connection hardening: wait for another connection's lock instead of
 * failing at once; defensive mode (no writable_schema or other ways to
 * corrupt the file through SQL); the Locate functions above.
 */
static kg_result kg_db_sqlite_configure(sqlite3 *handle)
{
    /* DIRECTONLY: not callable from triggers or views a crafted file might hold. */
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY;

    KG_GUARD(kg_db_sqlite_check(handle, sqlite3_busy_timeout(handle, KG_DB_LOCK_TIMEOUT_MS), SQLITE_OK,
                                "busy_timeout"));
    KG_GUARD(kg_db_sqlite_check(handle, sqlite3_db_config(handle, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL), SQLITE_OK,
                                "defensive mode"));
    KG_GUARD(kg_db_sqlite_check(handle,
                                sqlite3_create_function_v2(handle, "kg_fields_match", 2, flags, NULL,
                                                           kg_db_sqlite_fn_fields_match, NULL, NULL, NULL),
                                SQLITE_OK, "register kg_fields_match"));
    KG_GUARD(kg_db_sqlite_check(handle,
                                sqlite3_create_function_v2(handle, "kg_date_within", 3, flags, NULL,
                                                           kg_db_sqlite_fn_date_within, NULL, NULL, NULL),
                                SQLITE_OK, "register kg_date_within"));
    return KG_RESULT_OK;
}

static kg_result kg_db_sqlite_open(const char *location, struct kg_db **out)
{
    struct kg_db_sqlite *db = calloc(1, sizeof(*db));
    int src;

    KG_ENSURE(db != NULL, KG_ERR_NOMEM);
    db->base.ops = &kg_db_sqlite_ops;
    /* NOMUTEX: a connection belongs to one thread (kg_db.h). */
    src = sqlite3_open_v2(location, &db->handle,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                          NULL);
    if (kg_failed(kg_db_sqlite_check(db->handle, src, SQLITE_OK, "open")) ||
        kg_failed(kg_db_sqlite_configure(db->handle))) {
        kg_db_sqlite_ops.close(&db->base);
        return KG_RESULT_ERROR;
    }
    *out = &db->base;
    return KG_RESULT_OK;
}

static void kg_db_sqlite_close(struct kg_db *base)
{
    struct kg_db_sqlite *db = (struct kg_db_sqlite *)base;

    /* sqlite3_close (not _v2): with every statement finalized it cannot be busy. */
    (void)sqlite3_close(db->handle);
    free(db);
}

static kg_result kg_db_sqlite_exec(struct kg_db *db, const char *sql)
{
    sqlite3 *handle = kg_db_sqlite_handle(db);

    return kg_db_sqlite_check(handle, sqlite3_exec(handle, sql, NULL, NULL, NULL), SQLITE_OK, "exec");
}

static kg_result kg_db_sqlite_prepare(struct kg_db *db, const char *sql, bool cached, struct kg_db_stmt **out)
{
    struct kg_db_sqlite_stmt *st = calloc(1, sizeof(*st));
    sqlite3 *handle = kg_db_sqlite_handle(db);

    KG_ENSURE(st != NULL, KG_ERR_NOMEM);
    st->base.db = db;
    if (kg_failed(kg_db_sqlite_check(
            handle, sqlite3_prepare_v3(handle, sql, -1, cached ? SQLITE_PREPARE_PERSISTENT : 0, &st->handle, NULL),
            SQLITE_OK, "prepare"))) {
        free(st);
        return KG_RESULT_ERROR;
    }
    *out = &st->base;
    return KG_RESULT_OK;
}

static void kg_db_sqlite_finalize(struct kg_db_stmt *base)
{
    sqlite3_finalize(kg_db_sqlite_stmt(base));
    free(base);
}

static int kg_db_sqlite_param_count(const struct kg_db_stmt *st)
{
    return sqlite3_bind_parameter_count(kg_db_sqlite_stmt(st));
}

static kg_result kg_db_sqlite_bound(const struct kg_db_stmt *st, int src)
{
    return kg_db_sqlite_check(kg_db_sqlite_handle(st->db), src, SQLITE_OK, "bind");
}

static kg_result kg_db_sqlite_bind_int(struct kg_db_stmt *st, int param, int64_t value)
{
    return kg_db_sqlite_bound(st, sqlite3_bind_int64(kg_db_sqlite_stmt(st), param, value));
}

static kg_result kg_db_sqlite_bind_text(struct kg_db_stmt *st, int param, const char *text)
{
    return kg_db_sqlite_bound(st, sqlite3_bind_text(kg_db_sqlite_stmt(st), param, text, -1, SQLITE_STATIC));
}

static kg_result kg_db_sqlite_bind_blob(struct kg_db_stmt *st, int param, const uint8_t *bytes, uint32_t len)
{
    return kg_db_sqlite_bound(st, sqlite3_bind_blob(kg_db_sqlite_stmt(st), param,
                                                    len > 0 ? (const void *)bytes : (const void *)kg_db_sqlite_empty,
                                                    (int)len, SQLITE_STATIC));
}

static kg_result kg_db_sqlite_bind_null(struct kg_db_stmt *st, int param)
{
    return kg_db_sqlite_bound(st, sqlite3_bind_null(kg_db_sqlite_stmt(st), param));
}

static kg_result kg_db_sqlite_step(struct kg_db_stmt *st, const char *what, bool *row)
{
    int src = sqlite3_step(kg_db_sqlite_stmt(st));

    if (src == SQLITE_ROW || src == SQLITE_DONE) {
        *row = src == SQLITE_ROW;
        return KG_RESULT_OK;
    }
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY || src == SQLITE_CONSTRAINT_UNIQUE) {
        st->db->last_fail = KG_DB_FAIL_UNIQUE;
    } else if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        st->db->last_fail = KG_DB_FAIL_FOREIGN_KEY;
    } else if ((src & 0xff) == SQLITE_BUSY) {
        st->db->last_fail = KG_DB_FAIL_BUSY;
    }
    return kg_db_sqlite_check(kg_db_sqlite_handle(st->db), src, SQLITE_DONE, what);
}

static void kg_db_sqlite_reset(struct kg_db_stmt *st)
{
    /* reset ends any read the statement holds; clear_bindings drops the
     * pointers to the caller's buffers. */
    (void)sqlite3_reset(kg_db_sqlite_stmt(st));
    (void)sqlite3_clear_bindings(kg_db_sqlite_stmt(st));
}

static bool kg_db_sqlite_busy(const struct kg_db_stmt *st)
{
    return sqlite3_stmt_busy(kg_db_sqlite_stmt(st)) != 0;
}

static enum kg_db_type kg_db_sqlite_column_type(const struct kg_db_stmt *st, int col)
{
    switch (sqlite3_column_type(kg_db_sqlite_stmt(st), col)) {
    case SQLITE_NULL:
        return KG_DB_NULL;
    case SQLITE_INTEGER:
        return KG_DB_INTEGER;
    case SQLITE_TEXT:
        return KG_DB_TEXT;
    case SQLITE_BLOB:
        return KG_DB_BLOB;
    default:
        return KG_DB_OTHER;
    }
}

static int64_t kg_db_sqlite_column_int(const struct kg_db_stmt *st, int col)
{
    return sqlite3_column_int64(kg_db_sqlite_stmt(st), col);
}

static const uint8_t *kg_db_sqlite_column_bytes(const struct kg_db_stmt *st, int col, size_t *len)
{
    sqlite3_stmt *handle = kg_db_sqlite_stmt(st);
    const void *bytes;
    int n;

    *len = 0;
    if (sqlite3_column_type(handle, col) == SQLITE_TEXT) {
        bytes = sqlite3_column_text(handle, col);
    } else {
        bytes = sqlite3_column_blob(handle, col);
    }
    n = sqlite3_column_bytes(handle, col); /* after the pointer, as SQLite asks */
    if (bytes == NULL || n < 0) {
        return NULL;
    }
    *len = (size_t)n;
    return bytes;
}

static const char *kg_db_sqlite_column_name(const struct kg_db_stmt *st, int col)
{
    const char *name = sqlite3_column_name(kg_db_sqlite_stmt(st), col);

    return name != NULL ? name : "?";
}

/* A SQLite connection is never re-established under its owner. */
static uint64_t kg_db_sqlite_session(const struct kg_db *db)
{
    (void)db;
    return 1;
}

static uint64_t kg_db_sqlite_changes(const struct kg_db *db)
{
    return (uint64_t)sqlite3_changes64(kg_db_sqlite_handle(db));
}

static bool kg_db_sqlite_in_transaction(const struct kg_db *db)
{
    return !sqlite3_get_autocommit(kg_db_sqlite_handle(db));
}

const struct kg_db_ops kg_db_sqlite_ops = {
    .backend = KG_DB_SQLITE,
    .open = kg_db_sqlite_open,
    .close = kg_db_sqlite_close,
    .exec = kg_db_sqlite_exec,
    .prepare = kg_db_sqlite_prepare,
    .finalize = kg_db_sqlite_finalize,
    .param_count = kg_db_sqlite_param_count,
    .bind_int = kg_db_sqlite_bind_int,
    .bind_text = kg_db_sqlite_bind_text,
    .bind_blob = kg_db_sqlite_bind_blob,
    .bind_null = kg_db_sqlite_bind_null,
    .step = kg_db_sqlite_step,
    .reset = kg_db_sqlite_reset,
    .busy = kg_db_sqlite_busy,
    .column_type = kg_db_sqlite_column_type,
    .column_int = kg_db_sqlite_column_int,
    .column_bytes = kg_db_sqlite_column_bytes,
    .column_name = kg_db_sqlite_column_name,
    .changes = kg_db_sqlite_changes,
    .session = kg_db_sqlite_session,
    .in_transaction = kg_db_sqlite_in_transaction,
};
