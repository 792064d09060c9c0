/*
 * kg_store_sql.h - the SQL text of the object store, per database
 * (kg_store_sql.c). Only kg_store.c includes this.
 *
 * One table of statements serves both databases; a dialect replaces the
 * few that differ (locking, schema bookkeeping, identity columns) and
 * brings its own schema and migrations.
 */
#ifndef KG_STORE_SQL_H
#define KG_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>

enum kg_store_stmt_id {
    KG_STMT_BEGIN,
    KG_STMT_BEGIN_READ,
    KG_STMT_COMMIT,
    KG_STMT_SAVEPOINT,
    KG_STMT_COUNT_LIVE,
    KG_STMT_RELEASE,
    KG_STMT_USER_VERSION,
    KG_STMT_JOURNAL_MODE,
    KG_STMT_SYNCHRONOUS,
    KG_STMT_FOREIGN_KEYS,
    KG_STMT_BUSY_TIMEOUT,
    KG_STMT_OBJ_INSERT,
    KG_STMT_OBJ_GET,
    KG_STMT_OBJ_EXISTS,
    KG_STMT_OBJ_LOCK,
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

/* Moves a store from from_version to to_version; ends by recording
 * to_version (checked after each step). Version 0 is an empty database. */
struct kg_store_migration {
    int from_version;
    int to_version;
    const char *sql;
};

struct kg_store_dialect {
    const char *name;
    /* Statements that differ from the common table (NULL: the common one). */
    const char *const *override;
    const struct kg_store_migration *migrations;
    size_t migration_count;
    /* Starts the migration transaction, holding whatever lock keeps two
     * processes from migrating at once; then the version is read with
     * read_version (one integer row). */
    const char *begin_migration;
    const char *read_version;
    /* Locate fragments for KG_STORE_MATCH_FIELDS and _DATES. With
     * fields_in_sql false the fields fragment only selects objects with a
     * row of that name (its value is not bound) and kg_store.c checks the
     * fields of the candidates itself. */
    const char *locate_fields;
    const char *locate_dates;
    bool fields_in_sql;
    /* Locate's `prefer` filter (name, value), asked of each candidate
     * object through the attributes' primary key, so its cost follows the
     * candidates, not how many objects in the store share the value (every
     * Fresh key): a filter (KG_STORE_ORDER_PREFER_ONLY) and an ORDER BY
     * that puts matches first, oldest first in each part (_PREFER_FIRST). */
    const char *locate_prefer_only;
    const char *locate_prefer_first;
    /* kg_store_read_begin opens a read transaction (KG_STMT_BEGIN_READ):
     * worth it where each statement outside one pays for a snapshot of its
     * own (SQLite's WAL read locks), not where it costs round trips. */
    bool read_snapshots;
};

extern const struct kg_store_dialect kg_store_sqlite_dialect;
extern const struct kg_store_dialect kg_store_pg_dialect;

/* The SQL of statement `id` in `dialect`. */
const char *kg_store_sql_of(const struct kg_store_dialect *dialect, enum kg_store_stmt_id id);

#endif
