/*
 * kg_db.c - picks the driver for a location and forwards each call to it
 * (see kg_db.h).
 */
#include "kg_db.h"

#include <string.h>

#include "kg_db_internal.h"

kg_result kg_db_open(const char *location, struct kg_db **out)
{
    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(location != NULL && location[0] != '\0', KG_ERR_CONFIG);
    return kg_db_location_is_pg(location) ? kg_db_pg_ops.open(location, out)
                                          : kg_db_sqlite_ops.open(location, out);
}

void kg_db_close(struct kg_db *db)
{
    if (db != NULL) {
        db->ops->close(db);
    }
}

enum kg_db_backend kg_db_backend(const struct kg_db *db)
{
    return db->ops->backend;
}

kg_result kg_db_exec(struct kg_db *db, const char *sql)
{
    return db->ops->exec(db, sql);
}

bool kg_db_exec_quiet(struct kg_db *db, const char *sql)
{
    struct kg_error_saved saved;
    bool ok;

    kg_error_save(&saved);
    ok = kg_ok(db->ops->exec(db, sql));
    kg_error_restore(&saved);
    return ok;
}

kg_result kg_db_prepare(struct kg_db *db, const char *sql, bool cached, struct kg_db_stmt **out)
{
    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    KG_ENSURE(db != NULL && sql != NULL, KG_ERR_INTERNAL);
    return db->ops->prepare(db, sql, cached, out);
}

void kg_db_finalize(struct kg_db_stmt *st)
{
    if (st != NULL) {
        st->db->ops->finalize(st);
    }
}

int kg_db_param_count(const struct kg_db_stmt *st)
{
    return st->db->ops->param_count(st);
}

kg_result kg_db_bind_int(struct kg_db_stmt *st, int param, int64_t value)
{
    return st->db->ops->bind_int(st, param, value);
}

kg_result kg_db_bind_text(struct kg_db_stmt *st, int param, const char *text)
{
    KG_ENSURE(text != NULL, KG_ERR_INTERNAL);
    return st->db->ops->bind_text(st, param, text);
}

kg_result kg_db_bind_blob(struct kg_db_stmt *st, int param, const uint8_t *bytes, uint32_t len)
{
    KG_ENSURE(bytes != NULL || len == 0, KG_ERR_INTERNAL);
    return st->db->ops->bind_blob(st, param, bytes, len);
}

kg_result kg_db_bind_null(struct kg_db_stmt *st, int param)
{
    return st->db->ops->bind_null(st, param);
}

kg_result kg_db_step(struct kg_db_stmt *st, const char *what, bool *row)
{
    KG_ENSURE(st != NULL && row != NULL, KG_ERR_INTERNAL);
    *row = false;
    st->db->last_fail = KG_DB_FAIL_OTHER;
    return st->db->ops->step(st, what, row);
}

void kg_db_reset(struct kg_db_stmt *st)
{
    if (st != NULL) {
        st->db->ops->reset(st);
    }
}

bool kg_db_busy(const struct kg_db_stmt *st)
{
    return st->db->ops->busy(st);
}

enum kg_db_type kg_db_column_type(const struct kg_db_stmt *st, int col)
{
    return st->db->ops->column_type(st, col);
}

int64_t kg_db_column_int(const struct kg_db_stmt *st, int col)
{
    return st->db->ops->column_int(st, col);
}

const uint8_t *kg_db_column_bytes(const struct kg_db_stmt *st, int col, size_t *len)
{
    return st->db->ops->column_bytes(st, col, len);
}

const char *kg_db_column_name(const struct kg_db_stmt *st, int col)
{
    return st->db->ops->column_name(st, col);
}

uint64_t kg_db_session(const struct kg_db *db)
{
    return db->ops->session(db);
}

uint64_t kg_db_changes(const struct kg_db *db)
{
    return db->ops->changes(db);
}

bool kg_db_in_transaction(const struct kg_db *db)
{
    return db->ops->in_transaction(db);
}

enum kg_db_fail kg_db_last_fail(const struct kg_db *db)
{
    return db->last_fail;
}
