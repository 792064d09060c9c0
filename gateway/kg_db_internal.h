/*
 * kg_db_internal.h - what a kg_db driver provides (kg_db_sqlite.c,
 * kg_db_pg.c). Only kg_db.c and the drivers include this.
 *
 * A driver's connection struct starts with a struct kg_db and its statement
 * struct with a struct kg_db_stmt, so kg_db.c can reach the common part and
 * the driver can cast back to its own.
 */
#ifndef KG_DB_INTERNAL_H
#define KG_DB_INTERNAL_H

#include "kg_db.h"

struct kg_db_ops {
    enum kg_db_backend backend;
    kg_result (*open)(const char *location, struct kg_db **out);
    void (*close)(struct kg_db *db);
    kg_result (*exec)(struct kg_db *db, const char *sql);
    kg_result (*prepare)(struct kg_db *db, const char *sql, bool cached, struct kg_db_stmt **out);
    void (*finalize)(struct kg_db_stmt *st);
    int (*param_count)(const struct kg_db_stmt *st);
    kg_result (*bind_int)(struct kg_db_stmt *st, int param, int64_t value);
    kg_result (*bind_text)(struct kg_db_stmt *st, int param, const char *text);
    kg_result (*bind_blob)(struct kg_db_stmt *st, int param, const uint8_t *bytes, uint32_t len);
    kg_result (*bind_null)(struct kg_db_stmt *st, int param);
    kg_result (*step)(struct kg_db_stmt *st, const char *what, bool *row);
    void (*reset)(struct kg_db_stmt *st);
    bool (*busy)(const struct kg_db_stmt *st);
    enum kg_db_type (*column_type)(const struct kg_db_stmt *st, int col);
    int64_t (*column_int)(const struct kg_db_stmt *st, int col);
    const uint8_t *(*column_bytes)(const struct kg_db_stmt *st, int col, size_t *len);
    const char *(*column_name)(const struct kg_db_stmt *st, int col);
    uint64_t (*changes)(const struct kg_db *db);
    uint64_t (*session)(const struct kg_db *db);
    bool (*in_transaction)(const struct kg_db *db);
};

struct kg_db {
    const struct kg_db_ops *ops;
    enum kg_db_fail last_fail;
};

struct kg_db_stmt {
    struct kg_db *db;
};

extern const struct kg_db_ops kg_db_sqlite_ops;
extern const struct kg_db_ops kg_db_pg_ops;

#endif
