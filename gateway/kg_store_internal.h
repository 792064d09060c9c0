/*
 * kg_store_internal.h - the store's connection, for the files that make up
 * the store (kg_store.c, kg_store_copy.c) and no one else.
 */
#ifndef KG_STORE_INTERNAL_H
#define KG_STORE_INTERNAL_H

#include "kg_db.h"
#include "kg_store_sql.h"

struct kg_store {
    struct kg_db *db;
    const struct kg_store_dialect *dialect;
    struct kg_db_stmt *stmts[KG_STMT_COUNT_];
    uint64_t rotation_session; /* kg_db_session when the rotation lock was taken; 0: not held */
};

#endif
