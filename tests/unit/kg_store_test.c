/*
 * kg_store_test.c - the SQLite object store: schema and migration, objects,
 * attribute rows, Locate, transactions and two connections on one file.
 *
 * Every test works on its own file in a private temporary directory. A raw
 * sqlite3 handle is used to look at (or tamper with) the file behind the
 * store's back: that is how the tests check WAL mode on disk, plant rows this
 * code would never write, and fake old or new schema versions.
 */
#include "kg_test.h"

#include "kg_kmip.h"
#include "kg_locate_match.h"
#include "kg_db.h"
#include "kg_store.h"
#include "kg_store_sql.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CKM_AES_KEY_WRAP_PAD_ 0x210Au

static char g_dir[] = "/tmp/kg_store_test.XXXXXX";
/* KG_TEST_PG_URL: a PostgreSQL database these tests may wipe (scripts/test
 * starts one with scripts/pg-server); the "store-pg" suite then runs every
 * test that is not about the SQLite file itself against it. */
static const char *g_pg_url;

/* ---- helpers ---- */

static void db_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s.db", g_dir, name);
}

static void remove_db(const char *path)
{
    char side[600];

    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

/* Empty the PostgreSQL test database: every table, the version included. */
static bool pg_wipe(void)
{
    struct kg_db *db = NULL;
    bool ok;

    if (kg_failed(kg_db_open(g_pg_url, &db))) {
        fprintf(stderr, "pg: %s\n", kg_error_text());
        return false;
    }
    ok = kg_ok(kg_db_exec(db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"));
    kg_db_close(db);
    return ok;
}

/* A new store at <dir>/<name>.db, or the emptied PostgreSQL database; its
 * location is written to `path`. */
static struct kg_store *fresh_store(const char *name, char *path, size_t size)
{
    struct kg_store *store = NULL;

    if (g_pg_url != NULL) {
        snprintf(path, size, "%s", g_pg_url);
        if (!pg_wipe()) {
            return NULL;
        }
    } else {
        db_path(path, size, name);
        remove_db(path);
    }
    if (kg_failed(kg_store_open(path, &store))) {
        fprintf(stderr, "open %s: %s %s\n", path, kg_error_name(kg_errno()), kg_error_text());
        return NULL;
    }
    return store;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        fprintf(stderr, "raw sql failed: %s: %s\n", sql, msg != NULL ? msg : "?");
    }
    sqlite3_free(msg);
    return rc;
}

/* First column of the first row as an integer, -1 on error or no row. */
static long long raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static void raw_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
    sqlite3_stmt *st = NULL;

    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_text(st, 0) != NULL) {
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
}

static void make_uid(char *uid, unsigned n)
{
    snprintf(uid, KG_UID_LEN + 1, "00000000-0000-4000-8000-%012u", n);
}

static void make_obj(struct kg_object *o, unsigned n, uint32_t type, uint32_t state, const char *group,
                     uint32_t alg, int32_t length)
{
    memset(o, 0, sizeof(*o));
    make_uid(o->uid, n);
    o->object_type = type;
    o->state = state;
    snprintf(o->owner_group, sizeof(o->owner_group), "%s", group);
    snprintf(o->creator, sizeof(o->creator), "CN=client-%u,OU=%s", n, group);
    o->algorithm = alg;
    o->length = length;
    o->usage_mask = 0x0C;
    o->blob.mechanism = CKM_AES_KEY_WRAP_PAD_;
    o->blob.mwk_generation = 1;
    o->blob.len = 40;
    for (uint32_t i = 0; i < o->blob.len; i++) {
        o->blob.bytes[i] = (uint8_t)(n * 31u + i);
    }
}

static bool insert_committed(struct kg_store *store, const struct kg_object *o)
{
    if (kg_failed(kg_store_begin(store))) {
        return false;
    }
    if (kg_failed(kg_store_insert_object(store, o))) {
        kg_store_rollback(store);
        return false;
    }
    return kg_ok(kg_store_commit(store));
}

static bool same_object(const struct kg_object *a, const struct kg_object *b)
{
    return strcmp(a->uid, b->uid) == 0 && a->object_type == b->object_type && a->state == b->state &&
           strcmp(a->owner_group, b->owner_group) == 0 && strcmp(a->creator, b->creator) == 0 &&
           a->algorithm == b->algorithm && a->length == b->length && a->usage_mask == b->usage_mask &&
           a->blob.mechanism == b->blob.mechanism && a->blob.mwk_generation == b->blob.mwk_generation &&
           a->storage == b->storage && a->blob.len == b->blob.len &&
           memcmp(a->blob.bytes, b->blob.bytes, a->blob.len) == 0 &&
           a->registered_wrapping_len == b->registered_wrapping_len &&
           memcmp(a->registered_wrapping, b->registered_wrapping, a->registered_wrapping_len) == 0;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- open, schema, settings ---- */

static void test_open_creates_wal_full(void)
{
    char path[256], mode[32];
    struct kg_store *store = fresh_store("create", path, sizeof(path));
    struct kg_store_settings set;
    struct stat sb;
    int version = -1;
    sqlite3 *raw;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CU_ASSERT(kg_ok(kg_store_schema_version(store, &version)));
    CU_ASSERT_EQUAL(version, KG_STORE_SCHEMA_VERSION);

    /* What this connection runs with, read back from SQLite. */
    CU_ASSERT(kg_ok(kg_store_get_settings(store, &set)));
    CU_ASSERT_STRING_EQUAL(set.journal_mode, "wal");
    CU_ASSERT_EQUAL(set.synchronous, 2); /* FULL */
    CU_ASSERT(set.foreign_keys);
    CU_ASSERT_EQUAL(set.busy_timeout_ms, KG_STORE_BUSY_TIMEOUT_MS);

    /* WAL is a property of the file: a second, unrelated handle sees it. */
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    raw_text(raw, "PRAGMA journal_mode", mode, sizeof(mode));
    CU_ASSERT_STRING_EQUAL(mode, "wal");
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), KG_STORE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('objects', 'attributes',"
                                 " 'attributes_name_value')"),
                    3);
    sqlite3_close(raw);
    kg_store_close(store);
    kg_store_close(NULL);
}

static void test_reopen_keeps_data(void)
{
    char path[256];
    struct kg_store *store = fresh_store("reopen", path, sizeof(path));
    struct kg_object o, got;
    int32_t idx = -1;
    uint32_t count = 0;
    const uint8_t v[] = { 1, 2, 3 };

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_insert_object(store, &o)));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "Name", v, sizeof(v), &idx)));
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    kg_store_close(store);

    store = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "Name", &count)));
    CU_ASSERT_EQUAL(count, 1);
    kg_store_close(store);
}

/* A committed change survives the process dying without closing the store. */
static void test_commit_survives_process_exit(void)
{
    char path[256];
    struct kg_store *store = fresh_store("crash", path, sizeof(path));
    struct kg_object o, got;
    pid_t pid;
    int status = 0;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_close(store);
    make_obj(&o, 7, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct kg_store *child = NULL;

        if (kg_failed(kg_store_open(path, &child)) || !insert_committed(child, &o)) {
            _exit(1);
        }
        _exit(0); /* no close, no checkpoint: the row lives only in the WAL */
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    store = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    kg_store_close(store);
}

static void test_refuse_newer_schema(void)
{
    char path[256];
    struct kg_store *store = fresh_store("newer", path, sizeof(path));
    sqlite3 *raw;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT(raw_exec(raw, "PRAGMA user_version = 99") == SQLITE_OK);
    sqlite3_close(raw);

    store = (struct kg_store *)1; /* must be reset to NULL */
    kg_error_clear();
    CU_ASSERT(kg_failed(kg_store_open(path, &store)));
    CU_ASSERT(store == NULL);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "newer") != NULL);
    CU_ASSERT(strstr(kg_error_text(), "99") != NULL);

    /* Refused means untouched. */
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), 99);
    sqlite3_close(raw);
}

/* Version 0 (a SQLite file without our schema) runs every step in order. */
static void test_migrate_from_v0(void)
{
    char path[256];
    struct kg_store *store = NULL;
    struct kg_object o, got;
    int version = -1;
    sqlite3 *raw;

    db_path(path, sizeof(path), "v0");
    remove_db(path);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT(raw_exec(raw, "CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (42);") ==
              SQLITE_OK);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), 0);
    sqlite3_close(raw);

    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_schema_version(store, &version)));
    CU_ASSERT_EQUAL(version, KG_STORE_SCHEMA_VERSION);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_PRE_ACTIVE, "backup", KG_ALG_AES, 128);
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    kg_store_close(store);

    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT x FROM unrelated"), 42);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), KG_STORE_SCHEMA_VERSION);
    sqlite3_close(raw);

    /* Opening again at the current version is a no-op. */
    store = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    kg_store_close(store);
}

/*
 * Another process that opens the store and closes it again (a backup, the
 * sqlite3 shell) must not take it for unused: if our connections lost
 * their POSIX locks (any close() of a descriptor of the file drops them
 * all), that process would checkpoint and delete the WAL we still append
 * to, and the next commits would vanish for every other reader.
 */
static int child_count(const char *path, const char *uid)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int found = 0;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT count(*) FROM objects WHERE uid = ?1 OR ?1 = ''", -1, &st, NULL) ==
                SQLITE_OK &&
            sqlite3_bind_text(st, 1, uid, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            found = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        _exit(found > 0 ? 0 : 1);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status) == 0 ? 1 : 0;
}

static void test_other_process_never_steals_the_wal(void)
{
    char path[256];
    struct kg_store *a = fresh_store("otherproc", path, sizeof(path));
    struct kg_store *b = NULL;
    struct kg_object o1, o2;

    CU_ASSERT_FATAL(a != NULL);
    make_obj(&o1, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    make_obj(&o2, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(a, &o1));
    /* A second connection of this process, as every worker opens one. */
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &b)));
    CU_ASSERT_EQUAL(child_count(path, ""), 1); /* opens, reads, closes */
    CU_ASSERT(insert_committed(a, &o2));
    CU_ASSERT_EQUAL(child_count(path, o2.uid), 1);
    kg_store_close(b);
    kg_store_close(a);
}

/* A version 1 file (before key storage kinds) keeps its keys as wrapped. */
static void test_migrate_from_v1(void)
{
    char path[256];
    struct kg_store *store = NULL;
    struct kg_object got;
    sqlite3 *raw;

    db_path(path, sizeof(path), "v1");
    remove_db(path);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT(raw_exec(raw, "CREATE TABLE objects (uid TEXT PRIMARY KEY NOT NULL, created_seq INTEGER NOT NULL UNIQUE,"
                            " object_type INTEGER NOT NULL, state INTEGER NOT NULL, owner_group TEXT NOT NULL,"
                            " creator TEXT NOT NULL, algorithm INTEGER NOT NULL, length INTEGER NOT NULL,"
                            " usage_mask INTEGER NOT NULL, blob BLOB, blob_mechanism INTEGER NOT NULL,"
                            " mwk_generation INTEGER NOT NULL) STRICT;"
                            "CREATE TABLE attributes (uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
                            " name TEXT NOT NULL, idx INTEGER NOT NULL, value BLOB NOT NULL,"
                            " PRIMARY KEY (uid, name, idx)) STRICT;"
                            "INSERT INTO objects VALUES ('old', 1, 2, 1, 'vsphere', 'c', 3, 256, 12,"
                            " x'00112233445566778899aabbccddeeff', 4234, 1);"
                            "PRAGMA user_version = 1;") == SQLITE_OK);
    sqlite3_close(raw);

    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, "old", &got)));
    CU_ASSERT_EQUAL(got.storage, KG_P11_STORED_WRAPPED);
    CU_ASSERT_EQUAL(got.blob.len, 16);
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), KG_STORE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'objects_mwk_generation'"), 1);
    sqlite3_close(raw);
}

/* A version 2 file (before registered wrapping) reads as never registered wrapped. */
static void test_migrate_from_v2(void)
{
    char path[256];
    struct kg_store *store = NULL;
    struct kg_object got;
    sqlite3 *raw;

    db_path(path, sizeof(path), "v2");
    remove_db(path);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT(raw_exec(raw, "CREATE TABLE objects (uid TEXT PRIMARY KEY NOT NULL, created_seq INTEGER NOT NULL UNIQUE,"
                            " object_type INTEGER NOT NULL, state INTEGER NOT NULL, owner_group TEXT NOT NULL,"
                            " creator TEXT NOT NULL, algorithm INTEGER NOT NULL, length INTEGER NOT NULL,"
                            " usage_mask INTEGER NOT NULL, blob BLOB, blob_mechanism INTEGER NOT NULL,"
                            " mwk_generation INTEGER NOT NULL, storage INTEGER NOT NULL DEFAULT 0) STRICT;"
                            "CREATE TABLE attributes (uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,"
                            " name TEXT NOT NULL, idx INTEGER NOT NULL, value BLOB NOT NULL,"
                            " PRIMARY KEY (uid, name, idx)) STRICT;"
                            "INSERT INTO objects VALUES ('old2', 1, 2, 2, 'vsphere', 'c', 3, 128, 12,"
                            " x'00112233445566778899aabbccddeeff', 4234, 1, 0);"
                            "PRAGMA user_version = 2;") == SQLITE_OK);
    sqlite3_close(raw);

    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, "old2", &got)));
    CU_ASSERT_EQUAL(got.storage, KG_P11_STORED_WRAPPED);
    CU_ASSERT_EQUAL(got.blob.len, 16);
    CU_ASSERT_EQUAL(got.registered_wrapping_len, 0);
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), KG_STORE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM pragma_table_info('objects')"
                                 " WHERE name = 'registered_wrapping'"), 1);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT registered_wrapping IS NULL FROM objects WHERE uid = 'old2'"), 1);
    sqlite3_close(raw);
}

/* Registered wrapping round-trips, and is bounded on the way in and out. */
static void test_registered_wrapping(void)
{
    char path[256];
    struct kg_store *store = fresh_store("regwrap", path, sizeof(path));
    struct kg_object o, plain, got;
    sqlite3 *raw;
    char sql[256];

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 128);
    o.registered_wrapping_len = KG_STORE_REG_WRAPPING_MAX; /* the bound itself fits */
    for (uint32_t i = 0; i < o.registered_wrapping_len; i++) {
        o.registered_wrapping[i] = (uint8_t)(0xA0u + i);
    }
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    CU_ASSERT_EQUAL(got.registered_wrapping_len, KG_STORE_REG_WRAPPING_MAX);

    /* Not registered wrapped: NULL in the file, length 0 back. */
    make_obj(&plain, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 128);
    CU_ASSERT(insert_committed(store, &plain));
    CU_ASSERT(kg_ok(kg_store_get_object(store, plain.uid, &got)));
    CU_ASSERT_EQUAL(got.registered_wrapping_len, 0);

    /* Over the bound on insert: refused, nothing written. */
    make_obj(&o, 3, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 128);
    o.registered_wrapping_len = KG_STORE_REG_WRAPPING_MAX + 1;
    CU_ASSERT(!insert_committed(store, &o));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    CU_ASSERT(kg_failed(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);

    /* Over the bound in the file: not written by us. */
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    make_uid(o.uid, 1);
    snprintf(sql, sizeof(sql), "UPDATE objects SET registered_wrapping = zeroblob(%d) WHERE uid = '%s'",
             KG_STORE_REG_WRAPPING_MAX + 1, o.uid);
    CU_ASSERT(raw_exec(raw, sql) == SQLITE_OK);
    sqlite3_close(raw);
    store = NULL;
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_failed(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    make_uid(plain.uid, 2); /* the neighbour still loads */
    CU_ASSERT(kg_ok(kg_store_get_object(store, plain.uid, &got)));
    kg_store_close(store);
}

/* A step that fails part way leaves the file exactly as it was. */
static void test_migration_is_atomic(void)
{
    char path[256];
    struct kg_store *store = (struct kg_store *)1;
    sqlite3 *raw;

    db_path(path, sizeof(path), "v0clash");
    remove_db(path);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    /* "objects" is created first, then "attributes" clashes with this one. */
    CU_ASSERT(raw_exec(raw, "CREATE TABLE attributes (x INTEGER)") == SQLITE_OK);
    sqlite3_close(raw);

    CU_ASSERT(kg_failed(kg_store_open(path, &store)));
    CU_ASSERT(store == NULL);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "already exists") != NULL);

    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), 0);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'objects'"), 0);
    sqlite3_close(raw);
}

static void test_open_rejects_garbage(void)
{
    char path[256];
    struct kg_store *store = (struct kg_store *)1;
    FILE *f;

    db_path(path, sizeof(path), "garbage");
    remove_db(path);
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 256; i++) {
        fputs("this is not a database ", f);
    }
    fclose(f);
    CU_ASSERT(kg_failed(kg_store_open(path, &store)));
    CU_ASSERT(store == NULL);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "not a database") != NULL);

    store = (struct kg_store *)1;
    CU_ASSERT(kg_failed(kg_store_open(g_dir, &store))); /* a directory */
    CU_ASSERT(store == NULL);
    CU_ASSERT(kg_failed(kg_store_open("", &store)));
    CU_ASSERT(store == NULL);
}

struct open_race {
    const char *path;
    bool ok;
};

static void *open_race_thread(void *arg)
{
    struct open_race *r = arg;
    struct kg_store *store = NULL;
    int version = 0;

    r->ok = kg_ok(kg_store_open(r->path, &store)) && kg_ok(kg_store_schema_version(store, &version)) &&
            version == KG_STORE_SCHEMA_VERSION;
    if (!r->ok) {
        fprintf(stderr, "open race: %s %s\n", kg_error_name(kg_errno()), kg_error_text());
    }
    kg_store_close(store);
    return NULL;
}

/* Workers opening one new file at once: one migrates, the others see it done. */
static void test_concurrent_first_open(void)
{
    char path[512];
    pthread_t th[4];
    struct open_race r[4];

    if (g_pg_url != NULL) {
        snprintf(path, sizeof(path), "%s", g_pg_url);
        CU_ASSERT_FATAL(pg_wipe());
    } else {
        db_path(path, sizeof(path), "race");
        remove_db(path);
    }
    for (int i = 0; i < 4; i++) {
        r[i].path = path;
        r[i].ok = false;
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, open_race_thread, &r[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT(r[i].ok);
    }
}

/* ---- objects ---- */

static void test_insert_get(void)
{
    char path[256];
    struct kg_store *store = fresh_store("insert", path, sizeof(path));
    struct kg_object o, got;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    o.usage_mask = INT32_MIN; /* extremes round-trip */
    o.length = INT32_MAX;
    o.algorithm = UINT32_MAX;
    o.blob.mwk_generation = UINT32_MAX;
    o.blob.len = KG_P11_MAX_BLOB;
    memset(o.blob.bytes, 0xA5, KG_P11_MAX_BLOB);
    memset(o.creator, 'c', KG_CREATOR_MAX);
    o.creator[KG_CREATOR_MAX] = '\0';
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));

    /* An object without key material (e.g. registered metadata only). */
    make_obj(&o, 2, KG_OBJ_SECRET_DATA, KG_STATE_PRE_ACTIVE, "backup", 0, 0);
    o.blob.len = 0;
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    kg_store_close(store);
}

static void test_insert_duplicate(void)
{
    char path[256];
    struct kg_store *store = fresh_store("dup", path, sizeof(path));
    struct kg_object o, o2, got;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o));
    make_obj(&o2, 1, KG_OBJ_SECRET_DATA, KG_STATE_PRE_ACTIVE, "backup", 0, 0);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o2)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "already exists") != NULL);
    kg_store_rollback(store);
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    kg_store_close(store);
}

static void test_insert_invalid(void)
{
    char path[256];
    struct kg_store *store = fresh_store("invalid", path, sizeof(path));
    struct kg_object o;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    o.uid[0] = '\0';
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);

    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    memset(o.owner_group, 'g', sizeof(o.owner_group)); /* no terminator */
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);

    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    memset(o.uid, 'u', sizeof(o.uid));
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);

    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    memset(o.creator, 'c', sizeof(o.creator));
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);

    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    o.blob.len = KG_P11_MAX_BLOB + 1;
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    kg_store_close(store);
}

static void test_get_missing(void)
{
    char path[256];
    struct kg_store *store = fresh_store("missing", path, sizeof(path));
    struct kg_object got;

    CU_ASSERT_FATAL(store != NULL);
    memset(&got, 0x55, sizeof(got));
    CU_ASSERT(kg_failed(kg_store_get_object(store, "00000000-0000-4000-8000-000000000099", &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(got.uid[0] == '\0' && got.blob.len == 0);
    CU_ASSERT(kg_failed(kg_store_get_object(store, "", &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    /* A UID longer than any stored one cannot match (and is not an overflow). */
    CU_ASSERT(kg_failed(kg_store_get_object(store, "00000000-0000-4000-8000-000000000099-and-more", &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);
}

static void test_set_state(void)
{
    char path[256];
    struct kg_store *store = fresh_store("state", path, sizeof(path));
    struct kg_object o, got;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_PRE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_set_state(store, o.uid, KG_STATE_ACTIVE)));
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT_EQUAL(got.state, KG_STATE_ACTIVE);
    /* Same state again still counts as found. */
    CU_ASSERT(kg_ok(kg_store_set_state(store, o.uid, KG_STATE_ACTIVE)));

    CU_ASSERT(kg_failed(kg_store_set_state(store, "nope", KG_STATE_ACTIVE)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);
}

static void test_erase_blob(void)
{
    char path[256];
    struct kg_store *store = fresh_store("erase", path, sizeof(path));
    struct kg_object o, got;
    int32_t idx = -1;
    uint32_t count = 0;
    const uint8_t v[] = { 9 };

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "Name", v, sizeof(v), &idx)));

    /* Destroy: the caller sets the state, the store drops the key material. */
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_erase_blob(store, o.uid)));
    CU_ASSERT(kg_ok(kg_store_set_state(store, o.uid, KG_STATE_DESTROYED)));
    CU_ASSERT(kg_ok(kg_store_commit(store)));

    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT_EQUAL(got.blob.len, 0);
    CU_ASSERT_EQUAL(got.state, KG_STATE_DESTROYED);
    CU_ASSERT_EQUAL(got.object_type, o.object_type);
    CU_ASSERT_STRING_EQUAL(got.owner_group, o.owner_group);
    CU_ASSERT_STRING_EQUAL(got.creator, o.creator);
    CU_ASSERT_EQUAL(got.algorithm, o.algorithm);
    CU_ASSERT_EQUAL(got.length, o.length);
    CU_ASSERT_EQUAL(got.blob.mwk_generation, o.blob.mwk_generation);
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "Name", &count)));
    CU_ASSERT_EQUAL(count, 1);
    /* Erasing again is harmless; a missing object is not. */
    CU_ASSERT(kg_ok(kg_store_erase_blob(store, o.uid)));
    CU_ASSERT(kg_failed(kg_store_erase_blob(store, "nope")));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);
}

/* ---- attributes ---- */

struct collected {
    unsigned n;
    unsigned stop_after; /* 0 = never */
    char names[16][KG_ATTR_NAME_MAX + 1];
    int32_t idx[16];
    uint8_t first_byte[16];
    uint32_t len[16];
    struct kg_store *store; /* for the re-entrancy test */
    int reenter_err;
};

static bool collect(void *ctx, const struct kg_attr *a)
{
    struct collected *c = ctx;

    if (c->n < 16) {
        snprintf(c->names[c->n], sizeof(c->names[c->n]), "%s", a->name);
        c->idx[c->n] = a->index;
        c->first_byte[c->n] = a->value_len > 0 ? a->value[0] : 0;
        c->len[c->n] = a->value_len;
    }
    c->n++;
    return c->stop_after == 0 || c->n < c->stop_after;
}

static bool reenter(void *ctx, const struct kg_attr *a)
{
    struct collected *c = ctx;

    (void)a;
    if (kg_failed(kg_store_each_attr(c->store, "x", NULL, collect, c))) {
        c->reenter_err = kg_errno();
    }
    return false;
}

static struct kg_store *store_with_object(const char *name, char *path, size_t size, struct kg_object *o)
{
    struct kg_store *store = fresh_store(name, path, size);

    if (store == NULL) {
        return NULL;
    }
    make_obj(o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    if (!insert_committed(store, o)) {
        kg_store_close(store);
        return NULL;
    }
    return store;
}

static void test_attr_add_indexes(void)
{
    char path[256], name[KG_ATTR_NAME_MAX + 2];
    struct kg_object o;
    struct kg_store *store = store_with_object("attr_add", path, sizeof(path), &o);
    uint8_t big[KG_ATTR_VALUE_MAX + 1];
    const uint8_t v[] = { 0x42, 0x00, 0x0B, 0x07 };
    int32_t idx = -1;
    struct collected c = { 0 };

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    for (int32_t i = 0; i < 3; i++) {
        CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "Name", v, sizeof(v), &idx)));
        CU_ASSERT_EQUAL(idx, i);
    }
    /* Indexes are per name. */
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-tag", v, sizeof(v), &idx)));
    CU_ASSERT_EQUAL(idx, 0);
    /* Largest value, and an empty one, both round-trip. */
    memset(big, 0x77, sizeof(big));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-big", big, KG_ATTR_VALUE_MAX, &idx)));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-empty", NULL, 0, &idx)));
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, "x-big", collect, &c)));
    CU_ASSERT(c.n == 1 && c.len[0] == KG_ATTR_VALUE_MAX && c.first_byte[0] == 0x77);
    memset(&c, 0, sizeof(c));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, "x-empty", collect, &c)));
    CU_ASSERT(c.n == 1 && c.len[0] == 0);

    /* Refusals. */
    idx = 5;
    CU_ASSERT(kg_failed(kg_store_add_attr(store, "nope", "Name", v, sizeof(v), &idx)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(idx, -1);
    CU_ASSERT(kg_failed(kg_store_add_attr(store, o.uid, "x-big", big, KG_ATTR_VALUE_MAX + 1, &idx)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0'; /* KG_ATTR_NAME_MAX + 1 chars */
    CU_ASSERT(kg_failed(kg_store_add_attr(store, o.uid, name, v, sizeof(v), &idx)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    name[KG_ATTR_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, name, v, sizeof(v), &idx)));
    CU_ASSERT(kg_failed(kg_store_add_attr(store, o.uid, "", v, sizeof(v), &idx)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    kg_store_close(store);
}

static void test_attr_set(void)
{
    char path[256];
    struct kg_object o;
    struct kg_store *store = store_with_object("attr_set", path, sizeof(path), &o);
    const uint8_t a[] = { 1 }, b[] = { 2 }, z[] = { 0xEE, 0xEE };
    int32_t idx = -1;
    struct collected c = { 0 };

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", a, 1, &idx)));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", b, 1, &idx)));
    CU_ASSERT(kg_ok(kg_store_set_attr(store, o.uid, "x-a", 1, z, sizeof(z))));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, "x-a", collect, &c)));
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT(c.first_byte[0] == 1 && c.len[0] == 1);
    CU_ASSERT(c.first_byte[1] == 0xEE && c.len[1] == 2 && c.idx[1] == 1);

    CU_ASSERT(kg_failed(kg_store_set_attr(store, o.uid, "x-a", 2, z, sizeof(z))));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_ATTRIBUTE_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_store_set_attr(store, o.uid, "x-none", 0, z, sizeof(z))));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_ATTRIBUTE_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_store_set_attr(store, "nope", "x-a", 0, z, sizeof(z))));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);
}

static void test_attr_delete(void)
{
    char path[256];
    struct kg_object o;
    struct kg_store *store = store_with_object("attr_del", path, sizeof(path), &o);
    const uint8_t v[] = { 1 };
    int32_t idx = -1;
    struct collected c = { 0 };

    CU_ASSERT_FATAL(store != NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    }
    CU_ASSERT(kg_ok(kg_store_delete_attr(store, o.uid, "x-a", 1)));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, "x-a", collect, &c)));
    CU_ASSERT(c.n == 2 && c.idx[0] == 0 && c.idx[1] == 2);

    CU_ASSERT(kg_failed(kg_store_delete_attr(store, o.uid, "x-a", 1)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_ATTRIBUTE_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_store_delete_attr(store, o.uid, "x-a", -1)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_ATTRIBUTE_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_store_delete_attr(store, "nope", "x-a", 0)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);

    /* New rows go after the highest index, never into a hole. */
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    CU_ASSERT_EQUAL(idx, 3);
    kg_store_close(store);
}

static void test_attr_delete_all(void)
{
    char path[256];
    struct kg_object o;
    struct kg_store *store = store_with_object("attr_delall", path, sizeof(path), &o);
    const uint8_t v[] = { 1 };
    int32_t idx = -1;
    uint32_t count = 99;

    CU_ASSERT_FATAL(store != NULL);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    }
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-b", v, 1, &idx)));
    CU_ASSERT(kg_ok(kg_store_delete_attr_all(store, o.uid, "x-a")));
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-a", &count)));
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-b", &count)));
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT(kg_ok(kg_store_delete_attr_all(store, o.uid, "x-a"))); /* none left: fine */
    CU_ASSERT(kg_failed(kg_store_delete_attr_all(store, "nope", "x-a")));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    /* After delete_all, numbering starts again at 0. */
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    CU_ASSERT_EQUAL(idx, 0);
    kg_store_close(store);
}

static void test_each_attr_order_and_stop(void)
{
    char path[256];
    struct kg_object o, o2;
    struct kg_store *store = store_with_object("attr_each", path, sizeof(path), &o);
    uint8_t v[1];
    int32_t idx = -1;
    struct collected c = { 0 };
    static const char *const added[] = { "x-b", "Name", "x-a", "x-b", "Name", "x-a", "x-b" };
    static const char *const want_names[] = { "Name", "Name", "x-a", "x-a", "x-b", "x-b", "x-b" };
    static const int32_t want_idx[] = { 0, 1, 0, 1, 0, 1, 2 };

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o2, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o2));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o2.uid, "Name", v, 0, &idx))); /* another object's row */
    for (unsigned i = 0; i < 7; i++) {
        v[0] = (uint8_t)i;
        CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, added[i], v, 1, &idx)));
    }
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, NULL, collect, &c)));
    CU_ASSERT_FATAL(c.n == 7);
    for (unsigned i = 0; i < 7; i++) {
        CU_ASSERT_STRING_EQUAL(c.names[i], want_names[i]);
        CU_ASSERT_EQUAL(c.idx[i], want_idx[i]);
    }
    CU_ASSERT_EQUAL(c.first_byte[6], 6); /* third x-b was the seventh added */

    memset(&c, 0, sizeof(c));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, "x-b", collect, &c)));
    CU_ASSERT(c.n == 3 && strcmp(c.names[0], "x-b") == 0 && c.idx[2] == 2);

    /* Early stop returns OK and calls fn no more. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, NULL, collect, &c)));
    CU_ASSERT_EQUAL(c.n, 2);
    /* ... and leaves the statement reusable. */
    memset(&c, 0, sizeof(c));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, NULL, collect, &c)));
    CU_ASSERT_EQUAL(c.n, 7);

    memset(&c, 0, sizeof(c));
    CU_ASSERT(kg_ok(kg_store_each_attr(store, "nope", NULL, collect, &c)));
    CU_ASSERT_EQUAL(c.n, 0);

    /* Re-entering each_attr from its own callback is refused, not corrupted. */
    memset(&c, 0, sizeof(c));
    c.store = store;
    CU_ASSERT(kg_ok(kg_store_each_attr(store, o.uid, NULL, reenter, &c)));
    CU_ASSERT_EQUAL(c.reenter_err, KG_ERR_INTERNAL);
    kg_store_close(store);
}

static void test_count_attr(void)
{
    char path[256];
    struct kg_object o;
    struct kg_store *store = store_with_object("attr_count", path, sizeof(path), &o);
    const uint8_t v[] = { 1 };
    int32_t idx = -1;
    uint32_t count = 99;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-a", &count)));
    CU_ASSERT_EQUAL(count, 0);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    }
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-b", v, 1, &idx)));
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-a", &count)));
    CU_ASSERT_EQUAL(count, 5);
    CU_ASSERT(kg_ok(kg_store_count_attr(store, "nope", "x-a", &count)));
    CU_ASSERT_EQUAL(count, 0);
    kg_store_close(store);
}

/* ---- Locate ---- */

/*
 * Ten objects, n = 1..10 inserted in order (so newest first is 10, 9, ...):
 *   type:  symmetric, except n = 3, 6, 9 secret data
 *   state: active for even n, pre-active for odd
 *   owner: "vsphere" for n <= 6, "backup" after
 *   alg/length: AES-256, except n = 4 and 8 AES-128 and n = 3, 6, 9 alg 0
 *   attrs: Name = "vm-<n mod 3>", and x-tier = "gold" for n = 2, 5, 8
 */
static struct kg_store *locate_fixture(const char *name, char *path, size_t size)
{
    struct kg_store *store = fresh_store(name, path, size);
    struct kg_object o;
    char value[16];
    int32_t idx;

    if (store == NULL || kg_failed(kg_store_begin(store))) {
        return NULL;
    }
    for (unsigned n = 1; n <= 10; n++) {
        bool secret = n % 3 == 0;

        make_obj(&o, n, secret ? KG_OBJ_SECRET_DATA : KG_OBJ_SYMMETRIC_KEY,
                 n % 2 == 0 ? KG_STATE_ACTIVE : KG_STATE_PRE_ACTIVE, n <= 6 ? "vsphere" : "backup",
                 secret ? 0 : KG_ALG_AES, secret ? 0 : (n == 4 || n == 8 ? 128 : 256));
        snprintf(value, sizeof(value), "vm-%u", n % 3);
        if (kg_failed(kg_store_insert_object(store, &o)) ||
            kg_failed(kg_store_add_attr(store, o.uid, "Name", (const uint8_t *)value, (uint32_t)strlen(value),
                                        &idx)) ||
            (n % 3 == 2 &&
             kg_failed(kg_store_add_attr(store, o.uid, "x-tier", (const uint8_t *)"gold", 4, &idx)))) {
            kg_store_rollback(store);
            kg_store_close(store);
            return NULL;
        }
    }
    if (kg_failed(kg_store_commit(store))) {
        kg_store_close(store);
        return NULL;
    }
    return store;
}

/* Run a Locate and compare with the expected object numbers, in order. */
static bool locate_is(struct kg_store *store, const struct kg_store_locate *q, uint32_t cap, const unsigned *want,
                      uint32_t want_n)
{
    char uids[16][KG_UID_LEN + 1];
    char uid[KG_UID_LEN + 1];
    uint32_t n = 99;

    if (cap > 16 || kg_failed(kg_store_locate(store, q, uids, cap, &n))) {
        return false;
    }
    if (n != want_n) {
        fprintf(stderr, "locate: %u results, want %u\n", n, want_n);
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        make_uid(uid, want[i]);
        if (strcmp(uid, uids[i]) != 0) {
            fprintf(stderr, "locate: result %u is %s, want %s\n", i, uids[i], uid);
            return false;
        }
    }
    return true;
}

/*
 * A version 4 file's value index ended in uid; version 5 rebuilds it on
 * (name, value), and Locate by attribute still finds the same keys.
 */
static void test_migrate_from_v4(void)
{
    char path[256];
    struct kg_store *store = locate_fixture("v4", path, sizeof(path));
    struct kg_store_locate q;
    struct kg_store_filter_attr f;
    sqlite3 *raw;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT(raw_exec(raw, "DROP INDEX attributes_name_value;"
                            "CREATE INDEX attributes_name_value ON attributes(name, value, uid);"
                            "PRAGMA user_version = 4;") == SQLITE_OK);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_info('attributes_name_value')"), 3);
    sqlite3_close(raw);

    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    memset(&q, 0, sizeof(q));
    f = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    q.attrs = &f;
    q.attr_count = 1;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 7, 4, 1 }, 4));
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    CU_ASSERT_EQUAL(raw_int(raw, "PRAGMA user_version"), KG_STORE_SCHEMA_VERSION);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_info('attributes_name_value')"), 2);
    CU_ASSERT_EQUAL(raw_int(raw, "SELECT COUNT(*) FROM pragma_index_info('attributes_name_value') WHERE name = 'uid'"),
                    0);
    sqlite3_close(raw);
}

/* Does SQLite's plan for `sql` name `index` in one of its steps? */
static bool plan_uses(sqlite3 *raw, const char *sql, const char *index)
{
    char explain[1024];
    sqlite3_stmt *st = NULL;
    bool found = false;

    snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
    if (sqlite3_prepare_v2(raw, explain, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "plan: %s\n", sqlite3_errmsg(raw));
        return false;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        found |= detail != NULL && strstr(detail, index) != NULL;
    }
    sqlite3_finalize(st);
    return found;
}

/*
 * The prefer filter asks each candidate through the attributes' primary key.
 * Without statistics SQLite would rather take the value index, which walks
 * every row of that name and value (every Fresh key): the unary + in the
 * fragment is what keeps it off, and this fails without it.
 */
static void test_prefer_uses_primary_key(void)
{
    char path[256];
    char sql[768];
    struct kg_store *store = fresh_store("prefer_plan", path, sizeof(path));
    sqlite3 *raw;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_close(store);
    raw = raw_open(path);
    CU_ASSERT_FATAL(raw != NULL);
    snprintf(sql, sizeof(sql), "SELECT uid FROM objects WHERE owner_group = ?%s ORDER BY created_seq",
             kg_store_sqlite_dialect.locate_prefer_only);
    CU_ASSERT(plan_uses(raw, sql, "sqlite_autoindex_attributes_1"));
    CU_ASSERT(!plan_uses(raw, sql, "attributes_name_value"));
    snprintf(sql, sizeof(sql), "SELECT uid FROM objects WHERE owner_group = ?%s",
             kg_store_sqlite_dialect.locate_prefer_first);
    CU_ASSERT(plan_uses(raw, sql, "sqlite_autoindex_attributes_1"));
    CU_ASSERT(!plan_uses(raw, sql, "attributes_name_value"));
    /* Negative control: the same filter without the + takes the value index. */
    CU_ASSERT(plan_uses(raw,
                        "SELECT uid FROM objects WHERE owner_group = ? AND EXISTS (SELECT 1 FROM attributes a"
                        " WHERE a.uid = objects.uid AND a.name = ? AND a.value = ?)",
                        "attributes_name_value"));
    sqlite3_close(raw);
}

static void test_locate_columns(void)
{
    char path[256];
    struct kg_store *store = locate_fixture("locate_cols", path, sizeof(path));
    struct kg_store_locate q;

    CU_ASSERT_FATAL(store != NULL);

    memset(&q, 0, sizeof(q)); /* no filter: everything, newest first */
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 }, 10));

    memset(&q, 0, sizeof(q));
    q.object_type = KG_OBJ_SECRET_DATA;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 9, 6, 3 }, 3));

    memset(&q, 0, sizeof(q));
    q.state = KG_STATE_ACTIVE;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 8, 6, 4, 2 }, 5));

    memset(&q, 0, sizeof(q));
    q.owner_group = "backup";
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 9, 8, 7 }, 4));

    memset(&q, 0, sizeof(q));
    q.owner_group = "nobody";
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    memset(&q, 0, sizeof(q));
    q.algorithm = KG_ALG_AES;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 8, 7, 5, 4, 2, 1 }, 7));

    memset(&q, 0, sizeof(q));
    q.length = 128;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 8, 4 }, 2));

    /* A scope of several groups: any of them, never another. */
    memset(&q, 0, sizeof(q));
    q.owner_groups = (const char *const[]){ "backup", "nobody" };
    q.owner_group_count = 2;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 9, 8, 7 }, 4));
    q.owner_groups = (const char *const[]){ "backup", "vsphere" };
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 }, 10));
    q.owner_group_count = KG_STORE_LOCATE_MAX_OWNERS + 1; /* over the cap: refused, not truncated */
    {
        char uids[4][KG_UID_LEN + 1];
        uint32_t found = 0;
        CU_ASSERT(kg_failed(kg_store_locate(store, &q, uids, 4, &found)));
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    }

    /* Every column filter at once. */
    memset(&q, 0, sizeof(q));
    q.object_type = KG_OBJ_SYMMETRIC_KEY;
    q.state = KG_STATE_ACTIVE;
    q.owner_group = "vsphere";
    q.algorithm = KG_ALG_AES;
    q.length = 256;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2 }, 1));

    /* A state change shows up in the next Locate. */
    CU_ASSERT(kg_ok(kg_store_set_state(store, "00000000-0000-4000-8000-000000000001", KG_STATE_ACTIVE)));
    memset(&q, 0, sizeof(q));
    q.state = KG_STATE_ACTIVE;
    q.owner_group = "vsphere";
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 4, 2, 1 }, 4));
    kg_store_close(store);
}

static void test_locate_attrs(void)
{
    char path[256];
    struct kg_store *store = locate_fixture("locate_attrs", path, sizeof(path));
    struct kg_store_locate q;
    struct kg_store_filter_attr f[2];
    int32_t idx;

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    q.attrs = f;
    q.attr_count = 1;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 7, 4, 1 }, 4));

    /* Two attribute filters must both hold. */
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-2", .value_len = 4 };
    f[1] = (struct kg_store_filter_attr){ .name = "x-tier", .value = (const uint8_t *)"gold", .value_len = 4 };
    q.attr_count = 2;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 8, 5, 2 }, 3));
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* Attribute and column filters together. */
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-2", .value_len = 4 };
    q.attr_count = 2;
    q.owner_group = "vsphere";
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 5, 2 }, 2));

    /* Exact bytes: a prefix or the same value under another name never matches. */
    memset(&q, 0, sizeof(q));
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-", .value_len = 3 };
    q.attrs = f;
    q.attr_count = 1;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    f[0] = (struct kg_store_filter_attr){ .name = "x-tier", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* A filter matches when *some* row of that name has the value. */
    CU_ASSERT(kg_ok(kg_store_add_attr(store, "00000000-0000-4000-8000-000000000003", "Name",
                                      (const uint8_t *)"vm-1", 4, &idx)));
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 7, 4, 3, 1 }, 5));
    f[0] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-0", .value_len = 4 };
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 9, 6, 3 }, 3));
    kg_store_close(store);
}

static void test_locate_limits(void)
{
    char path[256];
    struct kg_store *store = locate_fixture("locate_limits", path, sizeof(path));
    struct kg_store_locate q;
    struct kg_store_filter_attr f[KG_STORE_LOCATE_MAX_ATTRS + 1];
    char uids[4][KG_UID_LEN + 1];
    uint32_t n = 99;

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    q.max_items = 3;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 10, 9, 8 }, 3));
    /* max_items 0 means "no limit" but the caller's array still caps it. */
    q.max_items = 0;
    CU_ASSERT(locate_is(store, &q, 4, (const unsigned[]){ 10, 9, 8, 7 }, 4));
    q.max_items = 100;
    CU_ASSERT(locate_is(store, &q, 2, (const unsigned[]){ 10, 9 }, 2));
    /* cap 0: nothing written, out_uids may be NULL. */
    CU_ASSERT(kg_ok(kg_store_locate(store, &q, NULL, 0, &n)));
    CU_ASSERT_EQUAL(n, 0);
    /* Newest first holds within a filter too. */
    q.max_items = 2;
    q.state = KG_STATE_PRE_ACTIVE;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 9, 7 }, 2));

    /* At most KG_STORE_LOCATE_MAX_ATTRS attribute filters. */
    for (unsigned i = 0; i <= KG_STORE_LOCATE_MAX_ATTRS; i++) {
        f[i] = (struct kg_store_filter_attr){ .name = "Name", .value = (const uint8_t *)"vm-1", .value_len = 4 };
    }
    memset(&q, 0, sizeof(q));
    q.attrs = f;
    q.attr_count = KG_STORE_LOCATE_MAX_ATTRS;
    q.object_type = KG_OBJ_SYMMETRIC_KEY;
    q.state = KG_STATE_ACTIVE;
    q.algorithm = KG_ALG_AES;
    q.length = 128;
    q.owner_group = "vsphere"; /* longest possible SQL */
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4 }, 1));
    q.attr_count = KG_STORE_LOCATE_MAX_ATTRS + 1;
    n = 99;
    CU_ASSERT(kg_failed(kg_store_locate(store, &q, uids, 4, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    CU_ASSERT_EQUAL(n, 0);
    q.attr_count = UINT32_MAX;
    CU_ASSERT(kg_failed(kg_store_locate(store, &q, uids, 4, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);

    /* Oversized filter value. */
    q.attr_count = 1;
    f[0].value_len = KG_ATTR_VALUE_MAX + 1;
    CU_ASSERT(kg_failed(kg_store_locate(store, &q, uids, 4, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    kg_store_close(store);
}

/* ---- Locate filters of KMIP 1.4 section 4.9 ---- */

/* Encode one TTLV item into buf (header, value, zero padding); its length. */
static uint32_t enc_item(uint8_t *buf, uint32_t tag, uint8_t type, const void *value, uint32_t len)
{
    uint32_t padded = (len + 7u) & ~7u;

    buf[0] = (uint8_t)(tag >> 16);
    buf[1] = (uint8_t)(tag >> 8);
    buf[2] = (uint8_t)tag;
    buf[3] = type;
    buf[4] = (uint8_t)(len >> 24);
    buf[5] = (uint8_t)(len >> 16);
    buf[6] = (uint8_t)(len >> 8);
    buf[7] = (uint8_t)len;
    memset(buf + 8, 0, padded);
    if (len > 0) {
        memcpy(buf + 8, value, len);
    }
    return 8 + padded;
}

static uint32_t enc_enum(uint8_t *buf, uint32_t tag, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

    return enc_item(buf, tag, 0x05, b, 4);
}

static uint32_t enc_date(uint8_t *buf, int64_t when)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)when;

    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)u;
        u >>= 8;
    }
    return enc_item(buf, 0x42000B, 0x09, b, 8);
}

/* Attribute Value { Name Value `text`, Name Type `type` } (either part left
 * out when NULL / 0); its length. */
static uint32_t enc_name(uint8_t *buf, const char *text, uint32_t type)
{
    uint8_t fields[128];
    uint32_t n = 0;

    if (text != NULL) {
        n += enc_item(fields + n, 0x420055, 0x07, text, (uint32_t)strlen(text));
    }
    if (type != 0) {
        n += enc_enum(fields + n, 0x420054, type);
    }
    return enc_item(buf, 0x42000B, 0x01, fields, n);
}

static const uint8_t fresh_true[16] = { 0x42, 0x00, 0x0B, 0x06, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1 };
static const uint8_t fresh_false[16] = { 0x42, 0x00, 0x0B, 0x06, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0 };

/*
 * Six active AES-256 keys of "vsphere", n = 1..6 (oldest first):
 *   usage mask: n=1 Encrypt (0x04), n=2 Encrypt|Decrypt (0x0C), n=3 Decrypt (0x08),
 *               n=4 Sign|Encrypt|Decrypt (0x0D), n=5 0, n=6 0x0C
 *   Name: { "key-<n mod 2>", Uninterpreted Text String (1) }, n=6 also { "six", URI (2) }
 *   Activation Date: 1000 * n (n=5 none)
 *   Fresh: true for n = 2, 4, 5; false for n = 3
 */
static struct kg_store *filter_fixture(const char *name, char *path, size_t size)
{
    static const int32_t masks[7] = { 0, 0x04, 0x0C, 0x08, 0x0D, 0, 0x0C };
    struct kg_store *store = fresh_store(name, path, size);
    struct kg_object o;
    uint8_t v[128];
    char text[16];
    uint32_t len;
    int32_t idx;
    bool ok = store != NULL && kg_ok(kg_store_begin(store));

    for (unsigned n = 1; ok && n <= 6; n++) {
        make_obj(&o, n, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
        o.usage_mask = masks[n];
        snprintf(text, sizeof(text), "key-%u", n % 2);
        len = enc_name(v, text, 1);
        ok = kg_ok(kg_store_insert_object(store, &o)) && kg_ok(kg_store_add_attr(store, o.uid, "Name", v, len, &idx));
        if (ok && n == 6) {
            len = enc_name(v, "six", 2);
            ok = kg_ok(kg_store_add_attr(store, o.uid, "Name", v, len, &idx));
        }
        if (ok && n != 5) {
            len = enc_date(v, 1000 * (int64_t)n);
            ok = kg_ok(kg_store_add_attr(store, o.uid, "Activation Date", v, len, &idx));
        }
        if (ok && (n == 2 || n == 4 || n == 5 || n == 3)) {
            ok = kg_ok(kg_store_add_attr(store, o.uid, "Fresh", n == 3 ? fresh_false : fresh_true, 16, &idx));
        }
    }
    if (!ok || kg_failed(kg_store_commit(store))) {
        if (store != NULL) {
            kg_store_rollback(store);
        }
        kg_store_close(store);
        return NULL;
    }
    return store;
}

static void test_locate_uid_mask_hidden(void)
{
    char path[256], uid[KG_UID_LEN + 1];
    struct kg_store *store = filter_fixture("locate_uid", path, sizeof(path));
    struct kg_store_locate q;
    static const uint32_t destroyed[] = { KG_STATE_DESTROYED, KG_STATE_DESTROYED_COMPROMISED };

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    make_uid(uid, 4);
    q.uid = uid;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4 }, 1));
    make_uid(uid, 9);
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* Usage mask: every requested bit, more allowed (4.9's example). */
    memset(&q, 0, sizeof(q));
    q.usage_mask = 0x04;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 4, 2, 1 }, 4));
    q.usage_mask = 0x0C;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 4, 2 }, 3));
    q.usage_mask = 0x01;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4 }, 1));
    q.usage_mask = 0x10;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* Hidden states: gone from a plain Locate, found when State asks. */
    make_uid(uid, 2);
    CU_ASSERT(kg_ok(kg_store_set_state(store, uid, KG_STATE_DESTROYED)));
    make_uid(uid, 3);
    CU_ASSERT(kg_ok(kg_store_set_state(store, uid, KG_STATE_DESTROYED_COMPROMISED)));
    memset(&q, 0, sizeof(q));
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 5, 4, 3, 2, 1 }, 6));
    q.hidden_states = destroyed;
    q.hidden_state_count = 2;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 5, 4, 1 }, 4));
    q.hidden_state_count = 1;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 5, 4, 3, 1 }, 5));
    q.hidden_state_count = 2;
    q.uid = uid; /* object 3, destroyed compromised */
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    q.state = KG_STATE_DESTROYED_COMPROMISED;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 3 }, 1));
    q.uid = NULL;
    q.state = KG_STATE_DESTROYED;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2 }, 1));
    kg_store_close(store);
}

static void test_locate_offset_and_order(void)
{
    char path[256];
    struct kg_store *store = filter_fixture("locate_offset", path, sizeof(path));
    struct kg_store_locate q;

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    q.offset = 2;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4, 3, 2, 1 }, 4));
    q.max_items = 3;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4, 3, 2 }, 3));
    q.order = KG_STORE_ORDER_OLDEST;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 3, 4, 5 }, 3));
    q.offset = 6;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    q.offset = UINT32_MAX;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    /* Offset counts matches, not rows. */
    q.offset = 1;
    q.max_items = 0;
    q.usage_mask = 0x0C;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4, 6 }, 2));
    kg_store_close(store);
}

static void test_locate_fields_and_dates(void)
{
    char path[256];
    struct kg_store *store = filter_fixture("locate_fields", path, sizeof(path));
    struct kg_store_locate q;
    struct kg_store_filter_attr f[2];
    uint8_t v[128], w[128];
    uint32_t len, wlen;

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    q.attrs = f;
    q.attr_count = 1;
    /* The whole structure, as stored: both kinds of match find it. */
    len = enc_name(v, "key-1", 1);
    f[0] = (struct kg_store_filter_attr){ "Name", v, len, KG_STORE_MATCH_EQUAL, 0, 0 };
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 5, 3, 1 }, 3));
    f[0].match = KG_STORE_MATCH_FIELDS;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 5, 3, 1 }, 3));
    /* Only the Name Value: equality misses, the field match finds it. */
    len = enc_name(v, "six", 0);
    f[0] = (struct kg_store_filter_attr){ "Name", v, len, KG_STORE_MATCH_EQUAL, 0, 0 };
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    f[0].match = KG_STORE_MATCH_FIELDS;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6 }, 1));
    /* Only the Name Type. */
    len = enc_name(v, NULL, 2);
    f[0].value_len = len;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6 }, 1));
    len = enc_name(v, NULL, 1);
    f[0].value_len = len;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 5, 4, 3, 2, 1 }, 6));
    /* A field given with another value: no match, even if another field matches. */
    len = enc_name(v, "six", 1);
    f[0].value_len = len;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    /* A prefix of a text is not the text. */
    len = enc_name(v, "ke", 0);
    f[0].value_len = len;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* Dates: one instant, a range with both ends included. */
    f[0] = (struct kg_store_filter_attr){ "Activation Date", NULL, 0, KG_STORE_MATCH_DATES, 3000, 3000 };
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 3 }, 1));
    f[0].low = 2000;
    f[0].high = 4000;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4, 3, 2 }, 3));
    f[0].low = 2001;
    f[0].high = 3999;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 3 }, 1));
    f[0].low = INT64_MIN;
    f[0].high = INT64_MAX;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 6, 4, 3, 2, 1 }, 5));
    f[0].low = -5;
    f[0].high = 999;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    /* A name holding no date never matches a date filter. */
    f[0].name = "Name";
    f[0].low = INT64_MIN;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));

    /* Filters of different kinds together. */
    wlen = enc_name(w, "key-0", 0);
    f[0] = (struct kg_store_filter_attr){ "Activation Date", NULL, 0, KG_STORE_MATCH_DATES, 1000, 4000 };
    f[1] = (struct kg_store_filter_attr){ "Name", w, wlen, KG_STORE_MATCH_FIELDS, 0, 0 };
    q.attr_count = 2;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4, 2 }, 2));
    kg_store_close(store);
}

static void test_locate_prefer(void)
{
    char path[256];
    struct kg_store *store = filter_fixture("locate_prefer", path, sizeof(path));
    struct kg_store_locate q;
    char uid[KG_UID_LEN + 1];

    CU_ASSERT_FATAL(store != NULL);
    memset(&q, 0, sizeof(q));
    q.prefer = (struct kg_store_filter_attr){ "Fresh", fresh_true, 16, KG_STORE_MATCH_EQUAL, 0, 0 };
    q.order = KG_STORE_ORDER_PREFER_ONLY; /* Group Member Fresh: fresh only, oldest first */
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2, 4, 5 }, 3));
    q.max_items = 1;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2 }, 1));
    q.max_items = 0;
    q.order = KG_STORE_ORDER_PREFER_FIRST; /* Group Member Default: fresh first, then the rest */
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2, 4, 5, 1, 3, 6 }, 6));
    /* Served: no longer fresh, so the next default is the next one. */
    make_uid(uid, 2);
    CU_ASSERT(kg_ok(kg_store_set_attr(store, uid, "Fresh", 0, fresh_false, 16)));
    q.max_items = 1;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4 }, 1));
    q.order = KG_STORE_ORDER_PREFER_ONLY;
    q.usage_mask = 0x0C; /* with other filters */
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 4 }, 1));
    q.max_items = 0;
    q.usage_mask = 0x02;
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    kg_store_close(store);
}

static void test_locate_rejects_bad_queries(void)
{
    char path[256];
    struct kg_store *store = filter_fixture("locate_bad", path, sizeof(path));
    struct kg_store_locate q;
    struct kg_store_filter_attr f[1];
    static const uint32_t states[KG_STORE_LOCATE_MAX_HIDDEN + 1] = { 1, 2, 3, 4, 5 };
    char uids[4][KG_UID_LEN + 1];
    uint32_t n;

    CU_ASSERT_FATAL(store != NULL);
#define EXPECT_INVALID(q_)                                                   \
    do {                                                                     \
        n = 99;                                                              \
        CU_ASSERT(kg_failed(kg_store_locate(store, (q_), uids, 4, &n)));     \
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);                   \
        CU_ASSERT_EQUAL(n, 0);                                               \
    } while (0)

    /* A reversed date range. */
    memset(&q, 0, sizeof(q));
    f[0] = (struct kg_store_filter_attr){ "Activation Date", NULL, 0, KG_STORE_MATCH_DATES, 3000, 2000 };
    q.attrs = f;
    q.attr_count = 1;
    EXPECT_INVALID(&q);
    f[0].low = 2000;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2 }, 1));
    /* An unknown match kind. */
    f[0].match = KG_STORE_MATCH_DATES + 1;
    EXPECT_INVALID(&q);
    /* Too many hidden states. */
    memset(&q, 0, sizeof(q));
    q.hidden_states = states;
    q.hidden_state_count = KG_STORE_LOCATE_MAX_HIDDEN + 1;
    EXPECT_INVALID(&q);
    q.hidden_state_count = KG_STORE_LOCATE_MAX_HIDDEN; /* 1..4: all active objects stay hidden */
    CU_ASSERT(locate_is(store, &q, 16, NULL, 0));
    /* An unknown order; a preference without a name or that is not equality. */
    memset(&q, 0, sizeof(q));
    q.order = KG_STORE_ORDER_PREFER_FIRST + 1;
    EXPECT_INVALID(&q);
    q.order = KG_STORE_ORDER_PREFER_ONLY;
    EXPECT_INVALID(&q);
    q.prefer = (struct kg_store_filter_attr){ "Fresh", fresh_true, 16, KG_STORE_MATCH_FIELDS, 0, 0 };
    EXPECT_INVALID(&q);
    q.prefer.match = KG_STORE_MATCH_EQUAL;
    q.prefer.value_len = KG_ATTR_VALUE_MAX + 1;
    EXPECT_INVALID(&q);
    q.prefer.value_len = 16;
    CU_ASSERT(locate_is(store, &q, 16, (const unsigned[]){ 2, 4, 5 }, 3));
#undef EXPECT_INVALID
    kg_store_close(store);
}

/* The comparisons themselves, on well-formed and broken encodings. */
static void test_locate_match_encodings(void)
{
    uint8_t a[128], b[128], bad[128];
    uint32_t alen, blen;
    int64_t when = 0;

    alen = enc_name(a, "alpha", 1);
    blen = enc_name(b, "alpha", 0);
    CU_ASSERT(kg_locate_fields_match(a, alen, b, blen));
    CU_ASSERT(kg_locate_fields_match(a, alen, a, alen));
    CU_ASSERT_FALSE(kg_locate_fields_match(b, blen, a, alen)); /* the stored one lacks Name Type */
    blen = enc_name(b, NULL, 0);                                /* no field: any Name */
    CU_ASSERT(kg_locate_fields_match(a, alen, b, blen));
    /* Another tag around the same fields. */
    memcpy(bad, b, blen);
    bad[2] = 0x0C;
    CU_ASSERT_FALSE(kg_locate_fields_match(a, alen, bad, blen));
    /* Not a structure: exact bytes only. */
    blen = enc_item(b, 0x42000B, 0x07, "alpha", 5);
    CU_ASSERT(kg_locate_fields_match(b, blen, b, blen));
    CU_ASSERT_FALSE(kg_locate_fields_match(a, alen, b, blen));
    CU_ASSERT_FALSE(kg_locate_fields_match(b, blen - 8, b, blen - 8)); /* truncated: not one item */
    /* Lengths that point past the buffer, on either side. */
    memcpy(bad, a, alen);
    bad[7] = (uint8_t)(bad[7] + 8);
    CU_ASSERT_FALSE(kg_locate_fields_match(bad, alen, a, alen));
    CU_ASSERT_FALSE(kg_locate_fields_match(a, alen, bad, alen));
    memcpy(bad, a, alen);
    bad[8 + 4] = 0x7F; /* first field's length: huge */
    CU_ASSERT_FALSE(kg_locate_fields_match(bad, alen, a, alen));
    CU_ASSERT_FALSE(kg_locate_fields_match(a, alen, bad, alen));
    CU_ASSERT_FALSE(kg_locate_fields_match(NULL, 0, a, alen));
    CU_ASSERT_FALSE(kg_locate_fields_match(a, 7, a, 7));

    /* Dates. */
    alen = enc_date(a, -86400);
    CU_ASSERT(kg_locate_date_of(a, alen, &when));
    CU_ASSERT_EQUAL(when, -86400);
    alen = enc_date(a, INT64_MAX);
    CU_ASSERT(kg_locate_date_of(a, alen, &when));
    CU_ASSERT_EQUAL(when, INT64_MAX);
    when = 7;
    CU_ASSERT_FALSE(kg_locate_date_of(a, alen - 1, &when));
    a[3] = 0x03; /* a Long Integer is not a date */
    CU_ASSERT_FALSE(kg_locate_date_of(a, alen, &when));
    blen = enc_item(b, 0x42000B, 0x09, "\0\0\0\0", 4);
    CU_ASSERT_FALSE(kg_locate_date_of(b, blen, &when));
    CU_ASSERT_EQUAL(when, 7);
}

/* ---- transactions ---- */

static void test_rollback(void)
{
    char path[256];
    struct kg_object o, o2, got;
    struct kg_store *store = store_with_object("rollback", path, sizeof(path), &o);
    const uint8_t v[] = { 1 };
    int32_t idx = -1;
    uint32_t count = 99;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_rollback(store); /* outside a transaction: no-op */
    kg_store_rollback(NULL);

    make_obj(&o2, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_insert_object(store, &o2)));
    CU_ASSERT(kg_ok(kg_store_set_state(store, o.uid, KG_STATE_DEACTIVATED)));
    CU_ASSERT(kg_ok(kg_store_erase_blob(store, o.uid)));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, o.uid, "x-a", v, 1, &idx)));
    /* Within the transaction, the change is visible to this connection. */
    CU_ASSERT(kg_ok(kg_store_get_object(store, o2.uid, &got)));
    /* A failure, then rollback: the error slot still names the failure. */
    CU_ASSERT(kg_failed(kg_store_get_object(store, "nope", &got)));
    kg_store_rollback(store);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_rollback(store); /* twice is fine */

    CU_ASSERT(kg_failed(kg_store_get_object(store, o2.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&o, &got));
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-a", &count)));
    CU_ASSERT_EQUAL(count, 0);

    /* The connection is usable afterwards. */
    CU_ASSERT(insert_committed(store, &o2));
    kg_store_close(store);
}

/*
 * A read snapshot (SQLite): reads between kg_store_read_begin and _end see
 * the store as it was at the first of them, whatever another connection
 * commits meanwhile; ending it keeps the caller's error and shows the
 * change. Inside a transaction it opens nothing. PostgreSQL opens none:
 * each statement there reads what is committed.
 */
static void test_read_snapshot(void)
{
    char path[256];
    struct kg_object o, got;
    struct kg_store *reader = store_with_object("snapshot", path, sizeof(path), &o);
    struct kg_store *writer = NULL;
    const bool snapshots = g_pg_url == NULL;
    bool opened = true;

    CU_ASSERT_FATAL(reader != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &writer)));
    CU_ASSERT(kg_failed(kg_store_read_begin(NULL, &opened)));
    CU_ASSERT(!opened);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INTERNAL);

    CU_ASSERT_FATAL(kg_ok(kg_store_read_begin(reader, &opened)));
    CU_ASSERT_EQUAL(opened, snapshots);
    CU_ASSERT(kg_ok(kg_store_get_object(reader, o.uid, &got)) && got.state == KG_STATE_ACTIVE);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(writer)));
    CU_ASSERT(kg_ok(kg_store_set_state(writer, o.uid, KG_STATE_DEACTIVATED)));
    CU_ASSERT_FATAL(kg_ok(kg_store_commit(writer)));
    CU_ASSERT(kg_ok(kg_store_get_object(reader, o.uid, &got)));
    CU_ASSERT_EQUAL(got.state, snapshots ? KG_STATE_ACTIVE : KG_STATE_DEACTIVATED);
    /* Ended after a failure: the error slot still names the failure. */
    CU_ASSERT(kg_failed(kg_store_get_object(reader, "nope", &got)));
    kg_store_read_end(reader, opened);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(kg_ok(kg_store_get_object(reader, o.uid, &got)) && got.state == KG_STATE_DEACTIVATED);
    kg_store_read_end(reader, false); /* nothing open: nothing to do */

    /* A transaction already open (a batch with Undo) is left alone. */
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(writer)));
    CU_ASSERT(kg_ok(kg_store_read_begin(writer, &opened)));
    CU_ASSERT(!opened);
    CU_ASSERT(kg_ok(kg_store_set_state(writer, o.uid, KG_STATE_COMPROMISED)));
    kg_store_read_end(writer, opened);
    CU_ASSERT(kg_ok(kg_store_commit(writer)));
    CU_ASSERT(kg_ok(kg_store_get_object(reader, o.uid, &got)) && got.state == KG_STATE_COMPROMISED);
    kg_store_close(writer);
    kg_store_close(reader);
}

static void test_transaction_misuse(void)
{
    char path[256];
    struct kg_store *store = fresh_store("misuse", path, sizeof(path));

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT(kg_failed(kg_store_commit(store))); /* nothing to commit */
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "no transaction") != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_failed(kg_store_begin(store))); /* no nesting */
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    /* Closing with a transaction open discards it. */
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    kg_store_close(store);
}

struct writer {
    const char *path;
    unsigned n;
    bool ok;
    double waited_ms;
    int err;
};

static void *second_writer(void *arg)
{
    struct writer *w = arg;
    struct kg_store *store = NULL;
    struct kg_object o;
    double t0;

    if (kg_failed(kg_store_open(w->path, &store))) {
        w->err = kg_errno();
        return NULL;
    }
    make_obj(&o, w->n, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "backup", KG_ALG_AES, 128);
    t0 = now_ms();
    if (kg_failed(kg_store_begin(store))) {
        w->err = kg_errno();
        kg_store_close(store);
        return NULL;
    }
    w->waited_ms = now_ms() - t0;
    w->ok = kg_ok(kg_store_insert_object(store, &o)) && kg_ok(kg_store_commit(store));
    if (!w->ok) {
        w->err = kg_errno();
        kg_store_rollback(store);
    }
    kg_store_close(store);
    return NULL;
}

/*
 * Two connections on one file. While the first holds BEGIN IMMEDIATE, a
 * reader on the second sees only committed data and is not blocked (WAL),
 * and a second writer waits in its own BEGIN IMMEDIATE (busy_timeout) until
 * the first commits, then succeeds.
 */
static void test_two_writers(void)
{
    char path[256];
    struct kg_store *a = fresh_store("writers", path, sizeof(path));
    struct kg_store *b = NULL;
    struct kg_object o1, o0, got;
    struct writer w = { 0 };
    pthread_t th;
    double t0;

    CU_ASSERT_FATAL(a != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &b)));
    make_obj(&o0, 100, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(a, &o0));

    make_obj(&o1, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(a)));
    CU_ASSERT(kg_ok(kg_store_insert_object(a, &o1)));

    /* Reader on b: not blocked, sees the committed row, not the pending one. */
    t0 = now_ms();
    CU_ASSERT(kg_ok(kg_store_get_object(b, o0.uid, &got)));
    CU_ASSERT(kg_failed(kg_store_get_object(b, o1.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(now_ms() - t0 < 1000.0);

    w.path = path;
    w.n = 2;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, second_writer, &w) == 0);
    usleep(400 * 1000);
    CU_ASSERT(kg_ok(kg_store_commit(a)));
    pthread_join(th, NULL);

    CU_ASSERT(w.ok);
    if (!w.ok) {
        fprintf(stderr, "second writer failed: %s\n", kg_error_name(w.err));
    }
    /* It really waited for the first writer (the thread started well before the commit). */
    CU_ASSERT(w.waited_ms >= 200.0);
    CU_ASSERT(w.waited_ms < KG_STORE_BUSY_TIMEOUT_MS);

    CU_ASSERT(kg_ok(kg_store_get_object(b, o1.uid, &got)));
    make_uid(o1.uid, 2);
    CU_ASSERT(kg_ok(kg_store_get_object(b, o1.uid, &got)));
    CU_ASSERT(kg_ok(kg_store_get_object(a, o1.uid, &got)));
    CU_ASSERT_STRING_EQUAL(got.owner_group, "backup");
    kg_store_close(b);
    kg_store_close(a);
}

/* ---- rows this code never writes ---- */

/* Plant a row through a raw handle; `sql` is fixed test text. */
static bool plant(const char *path, const char *sql)
{
    sqlite3 *raw = raw_open(path);
    bool ok;

    if (raw == NULL) {
        return false;
    }
    ok = raw_exec(raw, sql) == SQLITE_OK;
    sqlite3_close(raw);
    return ok;
}

static void expect_get_fails(struct kg_store *store, const char *uid)
{
    struct kg_object got;

    memset(&got, 0x5A, sizeof(got));
    CU_ASSERT(kg_failed(kg_store_get_object(store, uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(got.uid[0] == '\0' && got.owner_group[0] == '\0' && got.blob.len == 0);
}

static void test_overlong_columns_rejected(void)
{
    char path[256], uids[4][KG_UID_LEN + 1];
    struct kg_store *store = fresh_store("overlong", path, sizeof(path));
    struct kg_store_locate q;
    struct collected c = { 0 };
    uint32_t n = 0;

#define ROW(uid, seq, state, group, creator, blob)                                                             \
    "INSERT INTO objects VALUES ('" uid "', " #seq ", 2, " state ", " group ", " creator ", 3, 256, 12, " blob \
    ", 4234, 1, 0, NULL, NULL);" /* ..., storage, registered_wrapping, blob_mac */

    CU_ASSERT_FATAL(store != NULL);
    /* owner_group of KG_GROUP_MAX + 1 characters. */
    CU_ASSERT(plant(path, ROW("g", 1, "2", "printf('%.*c', 65, 'g')", "'c'", "NULL")));
    expect_get_fails(store, "g");
    CU_ASSERT(strstr(kg_error_text(), "owner_group") != NULL);
    /* ... while exactly KG_GROUP_MAX loads. */
    CU_ASSERT(plant(path, ROW("g64", 2, "2", "printf('%.*c', 64, 'g')", "'c'", "NULL")));
    {
        struct kg_object got;

        CU_ASSERT(kg_ok(kg_store_get_object(store, "g64", &got)));
        CU_ASSERT_EQUAL(strlen(got.owner_group), KG_GROUP_MAX);
    }
    CU_ASSERT(plant(path, ROW("c", 3, "2", "'vsphere'", "printf('%.*c', 257, 'c')", "NULL")));
    expect_get_fails(store, "c");
    /* Embedded NUL would silently shorten the text. */
    CU_ASSERT(plant(path, ROW("z", 4, "2", "'vs' || char(0) || 'phere'", "'c'", "NULL")));
    expect_get_fails(store, "z");
    /* Blob one byte over KG_P11_MAX_BLOB. */
    CU_ASSERT(plant(path, ROW("b", 5, "2", "'vsphere'", "'c'", "zeroblob(4097)")));
    expect_get_fails(store, "b");
    CU_ASSERT(strstr(kg_error_text(), "blob") != NULL);
    /* Integers outside the struct's types. */
    CU_ASSERT(plant(path, ROW("s", 6, "-1", "'vsphere'", "'c'", "NULL")));
    expect_get_fails(store, "s");
    CU_ASSERT(plant(path, ROW("t", 7, "4294967296", "'vsphere'", "'c'", "NULL")));
    expect_get_fails(store, "t");
    /* A storage kind this build does not know. */
    CU_ASSERT(plant(path, "INSERT INTO objects VALUES ('k', 9, 2, 2, 'vsphere', 'c', 3, 256, 12, NULL, 4234, 1, 3, NULL, NULL);"));
    expect_get_fails(store, "k");
    CU_ASSERT(strstr(kg_error_text(), "storage") != NULL);

    /* A UID too long for Locate's output array. */
    CU_ASSERT(plant(path, ROW("00000000-0000-4000-8000-0000000000001", 8, "2", "'long'", "'c'", "NULL")));
    memset(&q, 0, sizeof(q));
    q.owner_group = "long";
    CU_ASSERT(kg_failed(kg_store_locate(store, &q, uids, 4, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT_EQUAL(n, 0);

    /* Attribute rows: name and value too long for struct kg_attr. */
    CU_ASSERT(plant(path, "INSERT INTO attributes VALUES ('g64', printf('%.*c', 129, 'n'), 0, x'01');"));
    CU_ASSERT(kg_failed(kg_store_each_attr(store, "g64", NULL, collect, &c)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(plant(path, "INSERT INTO attributes VALUES ('c', 'x-big', 0, zeroblob(4097));"));
    CU_ASSERT(kg_failed(kg_store_each_attr(store, "c", "x-big", collect, &c)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT_EQUAL(c.n, 0);
#undef ROW
    kg_store_close(store);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- master key rotation ---- */

/*
 * 10 objects: 0-5 wrapped under generation 1, 6-7 under 2, 8 destroyed
 * (blob erased, still generation 1), 9 public (storage 2, generation 0).
 */
static struct kg_store *rotation_fixture(const char *name, char *path, size_t size)
{
    struct kg_store *store = fresh_store(name, path, size);
    struct kg_object o;

    if (store == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < 10; i++) {
        make_obj(&o, i, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
        if (i == 6 || i == 7) {
            o.blob.mwk_generation = 2;
        }
        if (i == 9) {
            o.storage = KG_P11_STORED_PUBLIC;
            o.blob.mechanism = 0;
            o.blob.mwk_generation = 0;
        }
        if (!insert_committed(store, &o)) {
            kg_store_close(store);
            return NULL;
        }
    }
    make_uid(o.uid, 8);
    if (kg_failed(kg_store_erase_blob(store, o.uid))) {
        kg_store_close(store);
        return NULL;
    }
    return store;
}

static void test_rotation_list_and_count(void)
{
    char path[256];
    char uid[KG_UID_LEN + 1];
    struct kg_store *store = rotation_fixture("rotate-list", path, sizeof(path));
    struct kg_object batch[4];
    uint32_t n = 99;
    uint64_t count = 99;

    CU_ASSERT_FATAL(store != NULL);
    /* Below generation 2: objects 0-5 only, in UID order, in batches. */
    CU_ASSERT(kg_ok(kg_store_list_below_generation(store, 2, "", batch, 4, &n)));
    CU_ASSERT_EQUAL(n, 4);
    for (unsigned i = 0; i < n; i++) {
        make_uid(uid, i);
        CU_ASSERT_STRING_EQUAL(batch[i].uid, uid);
        CU_ASSERT_EQUAL(batch[i].blob.mwk_generation, 1);
        CU_ASSERT_EQUAL(batch[i].blob.len, 40);
    }
    CU_ASSERT(kg_ok(kg_store_list_below_generation(store, 2, batch[3].uid, batch, 4, &n)));
    CU_ASSERT_EQUAL(n, 2);
    make_uid(uid, 5);
    CU_ASSERT_STRING_EQUAL(batch[1].uid, uid);
    CU_ASSERT(kg_ok(kg_store_list_below_generation(store, 2, batch[1].uid, batch, 4, &n)));
    CU_ASSERT_EQUAL(n, 0);
    /* Below 3 takes generation 2 too; below 1 nothing (public keys, generation 0, never). */
    CU_ASSERT(kg_ok(kg_store_list_below_generation(store, 3, "", batch, 4, &n)));
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT(kg_ok(kg_store_list_below_generation(store, 1, "", batch, 4, &n)));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(kg_failed(kg_store_list_below_generation(store, 2, "", batch, 0, &n)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INTERNAL);

    CU_ASSERT(kg_ok(kg_store_count_wrapped(store, 1, 1, &count)));
    CU_ASSERT_EQUAL(count, 6); /* not the destroyed one */
    CU_ASSERT(kg_ok(kg_store_count_wrapped(store, 2, 2, &count)));
    CU_ASSERT_EQUAL(count, 2);
    CU_ASSERT(kg_ok(kg_store_count_wrapped(store, 0, UINT32_MAX, &count)));
    CU_ASSERT_EQUAL(count, 8); /* not the public key either */
    CU_ASSERT(kg_ok(kg_store_count_wrapped(store, 3, 9, &count)));
    CU_ASSERT_EQUAL(count, 0);
    kg_store_close(store);
}

static void test_rotation_replace_blob_cas(void)
{
    char path[256];
    struct kg_store *store = rotation_fixture("rotate-cas", path, sizeof(path));
    struct kg_object o, got;
    struct kg_p11_blob fresh, stale;
    bool replaced = true;
    uint64_t count = 0;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 3, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    fresh = o.blob;
    fresh.mwk_generation = 2;
    fresh.len = 48;
    memset(fresh.bytes, 0xA5, fresh.len);

    /* A blob that is not the stored one, by bytes, length, generation or
     * mechanism: nothing replaced, and that is not an error. */
    stale = o.blob;
    stale.bytes[7] ^= 1;
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &stale, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    stale = o.blob;
    stale.len = 32;
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &stale, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    stale = o.blob;
    stale.mwk_generation = 2;
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &stale, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    stale = o.blob;
    stale.mechanism = 0x1234;
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &stale, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    CU_ASSERT(same_object(&got, &o));

    /* The very blob: replaced, durable, everything else unchanged. */
    CU_ASSERT(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT(replaced);
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    kg_store_close(store);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o.uid, &got)));
    o.blob = fresh;
    CU_ASSERT(same_object(&got, &o));
    CU_ASSERT(kg_ok(kg_store_count_wrapped(store, 1, 1, &count)));
    CU_ASSERT_EQUAL(count, 5);

    /* A second rotator with the old blob loses, and so does one whose
     * object was destroyed or never existed. */
    make_obj(&o, 3, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    make_obj(&o, 8, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    make_obj(&o, 77, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    /* The public key's blob is never re-wrapped. */
    make_obj(&o, 9, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    o.blob.mechanism = 0;
    o.blob.mwk_generation = 0;
    CU_ASSERT(kg_ok(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT(!replaced);
    /* Empty blobs are refused outright. */
    fresh.len = 0;
    CU_ASSERT(kg_failed(kg_store_replace_blob(store, o.uid, &o.blob, &fresh, &replaced)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_INVALID_FIELD);
    kg_store_close(store);
}

/*
 * PostgreSQL: the settings read back, and a server that does not sync its
 * commits is refused (here one session asks for synchronous_commit off).
 */
static void test_pg_settings_and_durability(void)
{
    char path[512], unsynced[600];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_store_settings set;
    struct kg_store *bad = NULL;
    int version = 0;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_STRING_EQUAL(kg_store_backend_name(store), "postgresql");
    CU_ASSERT(kg_ok(kg_store_get_settings(store, &set)));
    CU_ASSERT_STRING_EQUAL(set.journal_mode, "postgresql");
    CU_ASSERT_EQUAL(set.synchronous, 2);
    CU_ASSERT_EQUAL(set.busy_timeout_ms, KG_STORE_BUSY_TIMEOUT_MS);
    CU_ASSERT(kg_ok(kg_store_schema_version(store, &version)));
    CU_ASSERT_EQUAL(version, KG_STORE_SCHEMA_VERSION);
    kg_store_close(store);

    snprintf(unsynced, sizeof(unsynced), "%s&options=-c%%20synchronous_commit%%3Doff", g_pg_url);
    CU_ASSERT(kg_failed(kg_store_open(unsynced, &bad)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "not synced") != NULL);
    CU_ASSERT(bad == NULL);

    /* A URL libpq cannot parse: its reason would quote the password. */
    CU_ASSERT(kg_failed(kg_store_open("postgresql://kmipgw:Secr%ZZet@localhost/kmipgw", &bad)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "does not parse") != NULL);
    CU_ASSERT(strstr(kg_error_text(), "Secr") == NULL);

    /* No server there: a clean store error, no password or URL in it. */
    CU_ASSERT(kg_failed(kg_store_open("postgresql:///kmipgw?host=/nonexistent&password=sekrit", &bad)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "sekrit") == NULL);
}

/* Two connections add rows to one object at once: each gets its own
 * index (the row lock), none fails. */
struct pg_adder {
    const char *path;
    const char *uid;
    int ok;
};

static void *pg_add_many(void *arg)
{
    struct pg_adder *a = arg;
    struct kg_store *store = NULL;
    static const uint8_t value[] = { 0x42, 0x00, 0x0b, 0x07, 0x00, 0x00, 0x00, 0x01, 'x', 0, 0, 0, 0, 0, 0, 0 };

    if (kg_failed(kg_store_open(a->path, &store))) {
        return NULL;
    }
    for (int i = 0; i < 50; i++) {
        int32_t index = -1;

        if (kg_failed(kg_store_begin(store))) {
            break;
        }
        /* As kg_change_begin does: the object's lock, then the change. */
        if (kg_failed(kg_store_lock_object(store, a->uid)) ||
            kg_failed(kg_store_add_attr(store, a->uid, "x-Race", value, sizeof(value), &index)) ||
            kg_failed(kg_store_commit(store))) {
            kg_store_rollback(store);
            break;
        }
        a->ok++;
    }
    kg_store_close(store);
    return NULL;
}

static void test_pg_concurrent_attr_indexes(void)
{
    char path[512];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_object o;
    struct pg_adder a = { path, NULL, 0 }, b = { path, NULL, 0 };
    pthread_t ta, tb;
    uint32_t count = 0;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT_FATAL(insert_committed(store, &o));
    a.uid = b.uid = o.uid;
    CU_ASSERT_FATAL(pthread_create(&ta, NULL, pg_add_many, &a) == 0);
    CU_ASSERT_FATAL(pthread_create(&tb, NULL, pg_add_many, &b) == 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CU_ASSERT_EQUAL(a.ok, 50);
    CU_ASSERT_EQUAL(b.ok, 50);
    CU_ASSERT(kg_ok(kg_store_count_attr(store, o.uid, "x-Race", &count)));
    CU_ASSERT_EQUAL(count, 100);
    kg_store_close(store);
}

/*
 * The server drops the connection (a restart, a failover): a statement
 * outside a transaction reconnects by itself; a transaction in flight fails
 * (never a COMMIT that "succeeds" on a new connection) and the next one works.
 */
/* Terminate every other connection to the test database and wait until they are gone. */
static void pg_kill_others(struct kg_db *admin)
{
    static const char kill_others[] =
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        " AND datname = current_database()";
    static const char others[] =
        "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()";
    struct kg_db_stmt *st = NULL;

    CU_ASSERT(kg_ok(kg_db_exec(admin, kill_others)));
    CU_ASSERT_FATAL(kg_ok(kg_db_prepare(admin, others, false, &st)));
    for (int i = 0; i < 100; i++) {
        bool row = false;
        int64_t n;

        CU_ASSERT_FATAL(kg_ok(kg_db_step(st, "others", &row)) && row);
        n = kg_db_column_int(st, 0);
        kg_db_reset(st);
        if (n == 0) {
            break;
        }
        usleep(20 * 1000);
    }
    kg_db_finalize(st);
}

static void test_pg_reconnect(void)
{
    char path[512];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_db *admin = NULL;
    struct kg_object o1, o2, got;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_db_open(g_pg_url, &admin)));
    make_obj(&o1, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    make_obj(&o2, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o1));

    pg_kill_others(admin);
    CU_ASSERT(kg_ok(kg_store_get_object(store, o1.uid, &got)));

    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_insert_object(store, &o2)));
    pg_kill_others(admin);
    CU_ASSERT(kg_failed(kg_store_commit(store)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    kg_store_rollback(store);
    CU_ASSERT(kg_failed(kg_store_get_object(store, o2.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(insert_committed(store, &o2));
    CU_ASSERT(kg_ok(kg_store_get_object(store, o2.uid, &got)));
    kg_db_close(admin);
    kg_store_close(store);
}

/*
 * PostgreSQL answers COMMIT of a transaction that had a failed statement
 * with ROLLBACK and no error: kg_store_commit must fail, since nothing
 * (not even the statement that worked) was committed.
 */
static void test_pg_commit_of_a_failed_transaction_fails(void)
{
    char path[512];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_object o1, o2, got;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o1, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    make_obj(&o2, 2, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT(insert_committed(store, &o1));
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_insert_object(store, &o2)));
    CU_ASSERT(kg_failed(kg_store_insert_object(store, &o1))); /* duplicate */
    CU_ASSERT(kg_failed(kg_store_commit(store)));
    CU_ASSERT(strstr(kg_error_text(), "nothing committed") != NULL);
    kg_store_rollback(store);
    CU_ASSERT(kg_failed(kg_store_get_object(store, o2.uid, &got)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    kg_store_close(store);
}

/* A second connection's lock on the same object waits for the first's
 * transaction to end: a change's reads and writes are one step. */
struct pg_locker {
    const char *path;
    const char *uid;
    double waited_ms;
    bool ok;
};

static void *pg_lock_second(void *arg)
{
    struct pg_locker *l = arg;
    struct kg_store *store = NULL;
    double t0;

    if (kg_failed(kg_store_open(l->path, &store))) {
        return NULL;
    }
    t0 = now_ms();
    l->ok = kg_ok(kg_store_begin(store)) && kg_ok(kg_store_lock_object(store, l->uid));
    l->waited_ms = now_ms() - t0;
    l->ok = l->ok && kg_ok(kg_store_commit(store));
    kg_store_close(store);
    return NULL;
}

static void test_pg_object_lock_serialises_changes(void)
{
    char path[512];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_object o;
    struct pg_locker l = { 0 };
    pthread_t th;

    CU_ASSERT_FATAL(store != NULL);
    make_obj(&o, 1, KG_OBJ_SYMMETRIC_KEY, KG_STATE_ACTIVE, "vsphere", KG_ALG_AES, 256);
    CU_ASSERT_FATAL(insert_committed(store, &o));
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    CU_ASSERT(kg_ok(kg_store_lock_object(store, o.uid)));
    l.path = path;
    l.uid = o.uid;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, pg_lock_second, &l) == 0);
    usleep(400 * 1000);
    CU_ASSERT(kg_ok(kg_store_commit(store)));
    pthread_join(th, NULL);
    CU_ASSERT(l.ok);
    CU_ASSERT(l.waited_ms >= 200.0);
    CU_ASSERT(l.waited_ms < KG_STORE_BUSY_TIMEOUT_MS);
    kg_store_close(store);
}

/* The rotation lock lives in the server session: a reconnect loses it,
 * and kg_store_check_rotation_lock says so. An empty database is no store
 * for the tools that must not create one. */
static void test_pg_rotation_lock_and_open_existing(void)
{
    char path[512];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_store *other = NULL;
    struct kg_db *admin = NULL;
    struct kg_object got;
    bool held = false;

    CU_ASSERT_FATAL(store != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &other)));
    CU_ASSERT(kg_ok(kg_store_try_rotation_lock(store, &held)) && held);
    CU_ASSERT(kg_ok(kg_store_try_rotation_lock(other, &held)) && !held);
    CU_ASSERT(kg_ok(kg_store_check_rotation_lock(store)));
    kg_store_close(other);
    other = NULL;

    CU_ASSERT_FATAL(kg_ok(kg_db_open(g_pg_url, &admin)));
    pg_kill_others(admin);
    CU_ASSERT(kg_failed(kg_store_get_object(store, "none", &got))); /* reconnects */
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_NOT_FOUND);
    CU_ASSERT(kg_failed(kg_store_check_rotation_lock(store)));
    CU_ASSERT(strstr(kg_error_text(), "rotation lock") != NULL);
    kg_store_close(store);

    /* open_existing: refused on an empty database, which stays empty. */
    CU_ASSERT_FATAL(pg_wipe());
    CU_ASSERT(kg_failed(kg_store_open_existing(path, &other)));
    CU_ASSERT(strstr(kg_error_text(), "holds no kmipgw store") != NULL);
    CU_ASSERT(other == NULL);
    {
        struct kg_db_stmt *st = NULL;
        bool row = false;

        CU_ASSERT_FATAL(kg_ok(kg_db_prepare(admin, "SELECT to_regclass('kg_meta') IS NULL", false, &st)));
        CU_ASSERT(kg_ok(kg_db_step(st, "still empty", &row)) && row && kg_db_column_int(st, 0) == 1);
        kg_db_finalize(st);
    }
    kg_db_close(admin);
}

/* A current store opens with no DDL and no write: a read-only session (as
 * on a standby) can open it; a new database cannot be made in one. */
static void test_pg_open_current_store_read_only(void)
{
    char path[512], readonly[600];
    struct kg_store *store = fresh_store("pg", path, sizeof(path));
    struct kg_store *ro = NULL;
    int version = 0;

    CU_ASSERT_FATAL(store != NULL);
    kg_store_close(store);
    snprintf(readonly, sizeof(readonly), "%s&options=-c%%20default_transaction_read_only%%3Don", g_pg_url);
    CU_ASSERT(kg_ok(kg_store_open(readonly, &ro)));
    CU_ASSERT(ro != NULL && kg_ok(kg_store_schema_version(ro, &version)) && version == KG_STORE_SCHEMA_VERSION);
    kg_store_close(ro);
    ro = NULL;
    CU_ASSERT_FATAL(pg_wipe());
    CU_ASSERT(kg_failed(kg_store_open(readonly, &ro)));
    CU_ASSERT(ro == NULL);
}

/* open_existing: a file that is there but holds no store is refused, not
 * given a schema; kg_store_open would make one. */
static void test_open_existing_refuses_an_empty_file(void)
{
    char path[256];
    struct kg_store *store = NULL;
    int fd, version = 0;

    db_path(path, sizeof(path), "empty");
    remove_db(path);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    CU_ASSERT(kg_failed(kg_store_open_existing(path, &store)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_STORE);
    CU_ASSERT(strstr(kg_error_text(), "holds no kmipgw store") != NULL);
    CU_ASSERT(store == NULL);
    CU_ASSERT(kg_ok(kg_store_open(path, &store)));
    CU_ASSERT(kg_ok(kg_store_schema_version(store, &version)) && version == KG_STORE_SCHEMA_VERSION);
    kg_store_close(store);
    store = NULL;
    CU_ASSERT(kg_ok(kg_store_open_existing(path, &store)));
    kg_store_close(store);
}

int main(void)
{
    /* About the SQLite file itself: WAL, migrations of old files, raw rows. */
    static const struct kg_test_case sqlite_cases[] = {
        KG_TEST(test_open_creates_wal_full),
        KG_TEST(test_refuse_newer_schema),
        KG_TEST(test_migrate_from_v0),
        KG_TEST(test_migrate_from_v1),
        KG_TEST(test_other_process_never_steals_the_wal),
        KG_TEST(test_migrate_from_v2),
        KG_TEST(test_migrate_from_v4),
        KG_TEST(test_prefer_uses_primary_key),
        KG_TEST(test_registered_wrapping),
        KG_TEST(test_migration_is_atomic),
        KG_TEST(test_open_rejects_garbage),
        KG_TEST(test_two_writers),
        KG_TEST(test_overlong_columns_rejected),
        KG_TEST(test_open_existing_refuses_an_empty_file),
    };
    /* What every store must do: run on SQLite, then on PostgreSQL too. */
    static const struct kg_test_case cases[] = {
        KG_TEST(test_reopen_keeps_data),
        KG_TEST(test_commit_survives_process_exit),
        KG_TEST(test_concurrent_first_open),
        KG_TEST(test_insert_get),
        KG_TEST(test_insert_duplicate),
        KG_TEST(test_insert_invalid),
        KG_TEST(test_get_missing),
        KG_TEST(test_set_state),
        KG_TEST(test_erase_blob),
        KG_TEST(test_attr_add_indexes),
        KG_TEST(test_attr_set),
        KG_TEST(test_attr_delete),
        KG_TEST(test_attr_delete_all),
        KG_TEST(test_each_attr_order_and_stop),
        KG_TEST(test_count_attr),
        KG_TEST(test_locate_columns),
        KG_TEST(test_locate_attrs),
        KG_TEST(test_locate_limits),
        KG_TEST(test_locate_uid_mask_hidden),
        KG_TEST(test_locate_offset_and_order),
        KG_TEST(test_locate_fields_and_dates),
        KG_TEST(test_locate_prefer),
        KG_TEST(test_locate_rejects_bad_queries),
        KG_TEST(test_locate_match_encodings),
        KG_TEST(test_rollback),
        KG_TEST(test_transaction_misuse),
        KG_TEST(test_read_snapshot),
        KG_TEST(test_rotation_list_and_count),
        KG_TEST(test_rotation_replace_blob_cas),
    };
    /* PostgreSQL's own: durability settings, row locks, reconnection. */
    static const struct kg_test_case pg_cases[] = {
        KG_TEST(test_pg_settings_and_durability),
        KG_TEST(test_pg_concurrent_attr_indexes),
        KG_TEST(test_pg_reconnect),
        KG_TEST(test_pg_commit_of_a_failed_transaction_fails),
        KG_TEST(test_pg_object_lock_serialises_changes),
        KG_TEST(test_pg_rotation_lock_and_open_existing),
        KG_TEST(test_pg_open_current_store_read_only),
    };
    int failed;

    if (mkdtemp(g_dir) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    failed = kg_test_run("store-sqlite", sqlite_cases, sizeof(sqlite_cases) / sizeof(sqlite_cases[0]));
    failed += kg_test_run("store", cases, sizeof(cases) / sizeof(cases[0]));
    g_pg_url = getenv("KG_TEST_PG_URL");
    if (g_pg_url != NULL && g_pg_url[0] != '\0') {
        failed += kg_test_run("store-pg-only", pg_cases, sizeof(pg_cases) / sizeof(pg_cases[0]));
        failed += kg_test_run("store-pg", cases, sizeof(cases) / sizeof(cases[0]));
    }
    nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return failed;
}
