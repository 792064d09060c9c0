/*
 * kg_db.h - one SQL connection, SQLite or PostgreSQL, behind one small
 * statement API, so that the object store (kg_store.c) is written once.
 *
 * The API is SQLite's shape (prepare, bind, step, column, reset) because
 * that is the shape the store was written in; the PostgreSQL driver
 * (kg_db_pg.c, libpq) fits it by executing at the first step and walking
 * the result rows after. Placeholders are written SQLite's way, `?N` or
 * bare `?`; the PostgreSQL driver rewrites them to `$N` at prepare.
 *
 * Ownership: the caller owns a kg_db and every kg_db_stmt it prepares, and
 * must finalize the statements before kg_db_close. Bound text and bytes are
 * NOT copied: they must stay valid until kg_db_reset (SQLite's
 * SQLITE_STATIC). Column pointers are valid until the next step or reset.
 *
 * Errors: every failure is KG_ERR_STORE with the driver's message in
 * kg_error_text(); SQL never carries secrets (key material is bound, and
 * bound values are never quoted in messages). kg_db_last_fail says whether
 * the last failed step broke a unique or a foreign key constraint.
 *
 * Not thread-safe: one connection belongs to one thread at a time.
 */
#ifndef KG_DB_H
#define KG_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kg_result.h"

struct kg_db;
struct kg_db_stmt;

/* How long a statement waits for another connection's lock, ms (SQLite's
 * busy_timeout, PostgreSQL's lock_timeout). */
#define KG_DB_LOCK_TIMEOUT_MS 5000

enum kg_db_backend {
    KG_DB_SQLITE = 0,
    KG_DB_POSTGRESQL,
};

enum kg_db_type {
    KG_DB_NULL = 0,
    KG_DB_INTEGER,
    KG_DB_TEXT,
    KG_DB_BLOB,
    KG_DB_OTHER,
};

enum kg_db_fail {
    KG_DB_FAIL_OTHER = 0,
    KG_DB_FAIL_UNIQUE,      /* a UNIQUE or PRIMARY KEY constraint */
    KG_DB_FAIL_FOREIGN_KEY, /* a REFERENCES constraint */
    KG_DB_FAIL_BUSY,        /* another connection's lock outlasted the wait */
};

/* PostgreSQL is chosen by a location that starts with postgresql:// or
 * postgres:// (inline: the config parser uses it without the drivers). */
static inline bool kg_db_location_is_pg(const char *location)
{
    return location != NULL &&
           (strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0);
}

/*
 * Open a connection. SQLite: `location` is a file path, created if absent
 * (mode set by the caller). PostgreSQL: a postgresql:// URI for libpq (the
 * password, if any, from the URI, PGPASSFILE or ~/.pgpass; it never appears
 * in a message). Caller owns *out (NULL on failure); kg_db_close releases.
 */
kg_result kg_db_open(const char *location, struct kg_db **out) KG_WARN_UNUSED;
/* Close; every statement must have been finalized. Accepts NULL. */
void kg_db_close(struct kg_db *db);
enum kg_db_backend kg_db_backend(const struct kg_db *db);

/* Run fixed SQL text, possibly several statements, returning no rows. */
kg_result kg_db_exec(struct kg_db *db, const char *sql) KG_WARN_UNUSED;
/* The same, for clean-up after a failure: the caller's error slot is kept.
 * Returns whether it succeeded. */
bool kg_db_exec_quiet(struct kg_db *db, const char *sql);

/*
 * Prepare `sql`. `cached` statements live for the connection (server-side
 * prepared on PostgreSQL, re-prepared by themselves after a reconnect);
 * others are for one use. Caller owns *out; kg_db_finalize releases.
 */
kg_result kg_db_prepare(struct kg_db *db, const char *sql, bool cached, struct kg_db_stmt **out) KG_WARN_UNUSED;
void kg_db_finalize(struct kg_db_stmt *st);
/* Number of placeholders in the statement. */
int kg_db_param_count(const struct kg_db_stmt *st);

/* Bind parameter `param` (1-based). Text is NUL-terminated; bytes of
 * length 0 bind an empty blob, not NULL. Not copied (see above). */
kg_result kg_db_bind_int(struct kg_db_stmt *st, int param, int64_t value) KG_WARN_UNUSED;
kg_result kg_db_bind_text(struct kg_db_stmt *st, int param, const char *text) KG_WARN_UNUSED;
kg_result kg_db_bind_blob(struct kg_db_stmt *st, int param, const uint8_t *bytes, uint32_t len) KG_WARN_UNUSED;
kg_result kg_db_bind_null(struct kg_db_stmt *st, int param) KG_WARN_UNUSED;

/*
 * Step: *row true with a row to read, false when the statement is done.
 * `what` names the step in the error message. On failure kg_db_last_fail
 * classifies it.
 */
kg_result kg_db_step(struct kg_db_stmt *st, const char *what, bool *row) KG_WARN_UNUSED;
/* Forget the execution and the bindings; the statement can run again.
 * Accepts NULL. */
void kg_db_reset(struct kg_db_stmt *st);
/* Stepped and not reset yet (a re-entrant use would disturb it). */
bool kg_db_busy(const struct kg_db_stmt *st);

enum kg_db_type kg_db_column_type(const struct kg_db_stmt *st, int col);
int64_t kg_db_column_int(const struct kg_db_stmt *st, int col);
/* Text or blob bytes of a column and their length; NULL for SQL NULL. */
const uint8_t *kg_db_column_bytes(const struct kg_db_stmt *st, int col, size_t *len);
const char *kg_db_column_name(const struct kg_db_stmt *st, int col);

/* Which server session this is: it changes each time the connection is
 * re-established (kg_db_pg.c), and with it whatever the session held
 * (advisory locks, prepared statements). */
uint64_t kg_db_session(const struct kg_db *db);
/* Rows changed by the last INSERT, UPDATE or DELETE of this connection. */
uint64_t kg_db_changes(const struct kg_db *db);
/* Inside a transaction (including a failed one awaiting rollback). */
bool kg_db_in_transaction(const struct kg_db *db);
enum kg_db_fail kg_db_last_fail(const struct kg_db *db);

#endif
