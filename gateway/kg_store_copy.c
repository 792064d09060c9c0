/*
 * kg_store_copy.c - copy every row of one store into another (kmipgw
 * backup and restore; kg_store.h, kg_store_copy).
 *
 * Rows are copied as they are: the creation order (created_seq), attribute
 * indexes, blobs with their mechanism, generation and binding tag. Nothing
 * is unwrapped or re-sealed: a blob's tag covers its object, not its
 * database, so a copied blob verifies wherever it lands, under the same
 * master key (which lives in the HSM, never in a copy).
 *
 * Consistency: the source is read inside one read transaction (a SQLite
 * read transaction in WAL mode, a PostgreSQL REPEATABLE READ snapshot), so
 * the copy is the store as it was at one instant, while gateways keep
 * writing. Neither database blocks those writers for it.
 *
 * Memory: rows are read in pages of KG_COPY_PAGE, keyed on the last row
 * read, so a store of a million keys never sits in memory at once (libpq
 * would otherwise hold a whole result).
 */
#include <stdio.h>
#include <string.h>

#include "kg_store.h"
#include "kg_store_internal.h"

#define KG_COPY_PAGE 500

/* Pages of objects in creation order, then of attributes in key order. */
static const char kg_copy_objects_page[] =
    "SELECT uid, created_seq, object_type, state, owner_group, creator, algorithm, length, usage_mask,"
    " blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac FROM objects"
    " WHERE created_seq > ?1 ORDER BY created_seq LIMIT ?2";
static const char kg_copy_objects_insert[] =
    "INSERT INTO objects (uid, created_seq, object_type, state, owner_group, creator, algorithm, length,"
    " usage_mask, blob, blob_mechanism, mwk_generation, storage, registered_wrapping, blob_mac)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
#define KG_COPY_OBJECT_COLUMNS 15
#define KG_COPY_OBJECT_SEQ 1 /* created_seq's column */

static const char kg_copy_attrs_page[] =
    "SELECT uid, name, idx, value FROM attributes WHERE (uid, name, idx) > (?1, ?2, ?3)"
    " ORDER BY uid, name, idx LIMIT ?4";
static const char kg_copy_attrs_insert[] = "INSERT INTO attributes (uid, name, idx, value) VALUES (?1, ?2, ?3, ?4)";
#define KG_COPY_ATTR_COLUMNS 4

/* A read transaction that sees one instant of the source. */
static const char *kg_copy_snapshot(const struct kg_store *store)
{
    return kg_db_backend(store->db) == KG_DB_POSTGRESQL ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                        : "BEGIN";
}

/* Bind column `col` of the current row of `from` as parameter col + 1 of `to`. */
static kg_result kg_copy_column(struct kg_db_stmt *from, struct kg_db_stmt *to, int col)
{
    const uint8_t *bytes;
    size_t len = 0;

    switch (kg_db_column_type(from, col)) {
    case KG_DB_NULL:
        return kg_db_bind_null(to, col + 1);
    case KG_DB_INTEGER:
        return kg_db_bind_int(to, col + 1, kg_db_column_int(from, col));
    case KG_DB_TEXT:
        /* Both drivers end text with a NUL; an embedded one is refused. */
        bytes = kg_db_column_bytes(from, col, &len);
        KG_ENSURE(bytes != NULL && memchr(bytes, '\0', len) == NULL, KG_ERR_STORE);
        return kg_db_bind_text(to, col + 1, (const char *)bytes);
    case KG_DB_BLOB:
        bytes = kg_db_column_bytes(from, col, &len);
        KG_ENSURE(len <= UINT32_MAX, KG_ERR_STORE);
        return kg_db_bind_blob(to, col + 1, bytes, (uint32_t)len);
    default:
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store copy: column %s has a type this store never writes", kg_db_column_name(from, col));
        return KG_RESULT_ERROR;
    }
}

/* Insert the current row of `from` through `insert`, its `columns` columns as they are. */
static kg_result kg_copy_row(struct kg_db_stmt *from, struct kg_db_stmt *insert, int columns)
{
    kg_result rc = KG_RESULT_OK;
    bool row = false;

    for (int col = 0; col < columns; col++) {
        KG_GOTO_GUARD(rc, kg_copy_column(from, insert, col));
    }
    KG_GOTO_GUARD(rc, kg_db_step(insert, "copy row", &row));
out:
    kg_db_reset(insert);
    return rc;
}

static kg_result kg_copy_objects(struct kg_store *from, struct kg_store *to, uint64_t *count)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *page = NULL, *insert = NULL;
    int64_t after = -1;
    bool row = false;
    uint32_t n;

    KG_GOTO_GUARD(rc, kg_db_prepare(from->db, kg_copy_objects_page, false, &page));
    KG_GOTO_GUARD(rc, kg_db_prepare(to->db, kg_copy_objects_insert, false, &insert));
    do {
        KG_GOTO_GUARD(rc, kg_db_bind_int(page, 1, after));
        KG_GOTO_GUARD(rc, kg_db_bind_int(page, 2, KG_COPY_PAGE));
        for (n = 0;; n++) {
            KG_GOTO_GUARD(rc, kg_db_step(page, "read objects", &row));
            if (!row) {
                break;
            }
            after = kg_db_column_int(page, KG_COPY_OBJECT_SEQ);
            KG_GOTO_GUARD(rc, kg_copy_row(page, insert, KG_COPY_OBJECT_COLUMNS));
            (*count)++;
        }
        kg_db_reset(page);
    } while (n == KG_COPY_PAGE);
out:
    kg_db_finalize(page);
    kg_db_finalize(insert);
    return rc;
}

/* The last attribute key read, copied out of the row before the page is reset. */
struct kg_copy_attr_key {
    char uid[KG_UID_LEN + 1];
    char name[KG_ATTR_NAME_MAX + 1];
    int64_t idx;
};

static kg_result kg_copy_remember(struct kg_db_stmt *page, struct kg_copy_attr_key *key)
{
    const uint8_t *uid, *name;
    size_t uid_len = 0, name_len = 0;

    uid = kg_db_column_bytes(page, 0, &uid_len);
    name = kg_db_column_bytes(page, 1, &name_len);
    KG_ENSURE(uid != NULL && name != NULL && uid_len < sizeof(key->uid) && name_len < sizeof(key->name),
              KG_ERR_STORE);
    memcpy(key->uid, uid, uid_len);
    key->uid[uid_len] = '\0';
    memcpy(key->name, name, name_len);
    key->name[name_len] = '\0';
    key->idx = kg_db_column_int(page, 2);
    return KG_RESULT_OK;
}

static kg_result kg_copy_attrs(struct kg_store *from, struct kg_store *to, uint64_t *count)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *page = NULL, *insert = NULL;
    struct kg_copy_attr_key key = { "", "", -1 };
    bool row = false;
    uint32_t n;

    KG_GOTO_GUARD(rc, kg_db_prepare(from->db, kg_copy_attrs_page, false, &page));
    KG_GOTO_GUARD(rc, kg_db_prepare(to->db, kg_copy_attrs_insert, false, &insert));
    do {
        KG_GOTO_GUARD(rc, kg_db_bind_text(page, 1, key.uid));
        KG_GOTO_GUARD(rc, kg_db_bind_text(page, 2, key.name));
        KG_GOTO_GUARD(rc, kg_db_bind_int(page, 3, key.idx));
        KG_GOTO_GUARD(rc, kg_db_bind_int(page, 4, KG_COPY_PAGE));
        for (n = 0;; n++) {
            KG_GOTO_GUARD(rc, kg_db_step(page, "read attributes", &row));
            if (!row) {
                break;
            }
            KG_GOTO_GUARD(rc, kg_copy_remember(page, &key));
            KG_GOTO_GUARD(rc, kg_copy_row(page, insert, KG_COPY_ATTR_COLUMNS));
            (*count)++;
        }
        kg_db_reset(page);
    } while (n == KG_COPY_PAGE);
out:
    kg_db_finalize(page);
    kg_db_finalize(insert);
    return rc;
}

/* Is `store` without a single object? */
static kg_result kg_copy_is_empty(struct kg_store *store, bool *empty)
{
    kg_result rc = KG_RESULT_OK;
    struct kg_db_stmt *st = NULL;
    bool row = false;

    KG_GOTO_GUARD(rc, kg_db_prepare(store->db, "SELECT 1 FROM objects LIMIT 1", false, &st));
    KG_GOTO_GUARD(rc, kg_db_step(st, "is the store empty", &row));
    *empty = !row;
out:
    kg_db_finalize(st);
    return rc;
}

kg_result kg_store_copy(struct kg_store *from, struct kg_store *to, struct kg_store_copy_counts *counts)
{
    kg_result rc = KG_RESULT_OK;
    bool empty = false, reading = false, writing = false;

    KG_ENSURE(from != NULL && to != NULL && counts != NULL, KG_ERR_INTERNAL);
    memset(counts, 0, sizeof(*counts));
    KG_GOTO_GUARD(rc, kg_db_exec(from->db, kg_copy_snapshot(from)));
    reading = true;
    KG_GOTO_GUARD(rc, kg_store_begin(to));
    writing = true;
    /* Empty, and kept so until the copy commits: SQLite's BEGIN IMMEDIATE
     * already shuts other writers out; on PostgreSQL a gateway serving the
     * target meanwhile would otherwise mix its new keys into the restore. */
    if (kg_db_backend(to->db) == KG_DB_POSTGRESQL) {
        KG_GOTO_GUARD(rc, kg_db_exec(to->db, "LOCK TABLE objects IN EXCLUSIVE MODE"));
    }
    KG_GOTO_GUARD(rc, kg_copy_is_empty(to, &empty));
    if (!empty) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store copy: the target store already holds objects; refusing to mix two stores");
        rc = KG_RESULT_ERROR;
        goto out;
    }
    KG_GOTO_GUARD(rc, kg_copy_objects(from, to, &counts->objects));
    KG_GOTO_GUARD(rc, kg_copy_attrs(from, to, &counts->attributes));
    if (kg_db_backend(to->db) == KG_DB_POSTGRESQL) {
        /* Rows came with their own created_seq: move the identity past them. */
        KG_GOTO_GUARD(rc, kg_db_exec(to->db, "SELECT setval(pg_get_serial_sequence('objects', 'created_seq'),"
                                             " (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM objects), false)"));
    }
    KG_GOTO_GUARD(rc, kg_store_commit(to));
    writing = false;
out:
    if (writing) {
        kg_store_rollback(to);
    }
    if (reading) {
        (void)kg_db_exec_quiet(from->db, "ROLLBACK");
    }
    return rc;
}
