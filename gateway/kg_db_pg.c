/*
 * kg_db_pg.c - the kg_db driver for PostgreSQL, on libpq (kg_db.h).
 *
 * Shape: a statement is executed at its first step (PQexecPrepared for
 * cached statements, PQexecParams for one-off ones), with every result in
 * binary format; later steps walk the rows of that one result. Parameters
 * go as text (integers, strings: the server infers the column's type) or as
 * binary (bytes, which are bytea); nothing is ever quoted into SQL.
 *
 * Placeholders: the store writes `?N` or bare `?` as SQLite does; prepare
 * rewrites them to `$N` outside quoted literals.
 *
 * Reconnection: when the server went away (restart, failover of a
 * PostgreSQL cluster behind one address), the next statement run outside a
 * transaction resets the connection once and re-prepares cached statements
 * as they are used. Inside a transaction the failure is returned: the
 * caller rolls back, and its next transaction gets the new connection.
 *
 * Messages: only the primary message of a server error is kept (its DETAIL
 * part may quote row values), and libpq never puts the password in one.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_db_internal.h"

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable since 7.x. */
enum {
    KG_PG_BOOL = 16,
    KG_PG_BYTEA = 17,
    KG_PG_NAME = 19,
    KG_PG_INT8 = 20,
    KG_PG_INT2 = 21,
    KG_PG_INT4 = 23,
    KG_PG_TEXT = 25,
    KG_PG_VARCHAR = 1043,
};

struct kg_db_pg {
    struct kg_db base;
    PGconn *conn;
    uint64_t changes;
    uint32_t next_name;  /* names cached statements kg1, kg2, ... */
    uint32_t generation; /* bumped by each reconnect: cached statements re-prepare */
    bool idle;           /* no transaction open after the last command */
};

/*
 * After a command: is a transaction open? On a connection that broke during
 * the command libpq cannot say; then it is whatever it was before.
 */
static void kg_db_pg_note_idle(struct kg_db_pg *db, bool idle_before)
{
    db->idle = PQstatus(db->conn) == CONNECTION_OK ? PQtransactionStatus(db->conn) == PQTRANS_IDLE : idle_before;
}

struct kg_db_pg_param {
    char number[24]; /* an integer's decimal text */
};

struct kg_db_pg_stmt {
    struct kg_db_stmt base;
    char *sql; /* with $N placeholders */
    char name[16]; /* "" for a one-off statement */
    uint32_t prepared_generation; /* 0: not prepared on the server yet */
    int nparams;
    const char **values; /* nparams each: NULL is SQL NULL */
    int *lengths;
    int *formats;
    struct kg_db_pg_param *numbers;
    PGresult *result; /* rows of the current execution */
    int row;          /* current row of result */
    bool executed;
};

static struct kg_db_pg *kg_db_pg_of(const struct kg_db *db)
{
    return (struct kg_db_pg *)db;
}

static struct kg_db_pg_stmt *kg_db_pg_stmt_of(const struct kg_db_stmt *st)
{
    return (struct kg_db_pg_stmt *)st;
}

/* KG_ERR_STORE with `what` and libpq's message, its last newline cut. */
static kg_result kg_db_pg_fail(const char *what, const char *message)
{
    size_t n = message != NULL ? strlen(message) : 0;

    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r')) {
        n--;
    }
    kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
    kg_error_detail("store: %s: %.*s (postgresql)", what, (int)n, n > 0 ? message : "no message");
    return KG_RESULT_ERROR;
}

/* A failed result: classify it, record the error, free it. */
static kg_result kg_db_pg_fail_result(struct kg_db_pg *db, PGresult *res, const char *what)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    kg_result rc;

    if (state != NULL && strcmp(state, "23505") == 0) {
        db->base.last_fail = KG_DB_FAIL_UNIQUE;
    } else if (state != NULL && strcmp(state, "23503") == 0) {
        db->base.last_fail = KG_DB_FAIL_FOREIGN_KEY;
    }
    rc = kg_db_pg_fail(what, primary != NULL ? primary : PQerrorMessage(db->conn));
    PQclear(res);
    return rc;
}

/* Server notices (e.g. "relation already exists, skipping") are not ours to print. */
static void kg_db_pg_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/*
 * Session settings, at connect and after each reconnect: a lock wait is
 * bounded like SQLite's busy_timeout, and notices stay quiet. The durability
 * settings (fsync, synchronous_commit) are the server's; the store reads
 * them back and refuses a server that does not sync its commits.
 */
static kg_result kg_db_pg_session(struct kg_db_pg *db)
{
    char sql[96];
    PGresult *res;

    PQsetNoticeProcessor(db->conn, kg_db_pg_ignore_notice, NULL);
    snprintf(sql, sizeof(sql), "SET lock_timeout = %d; SET client_min_messages = warning", KG_DB_LOCK_TIMEOUT_MS);
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return kg_db_pg_fail_result(db, res, "session settings");
    }
    PQclear(res);
    return KG_RESULT_OK;
}

/*
 * The connection works, or is made to work again if no transaction was
 * open on it. A transaction open on a lost connection is gone: that is
 * this statement's failure (the caller rolls back, which fails too, and
 * the next statement reconnects). Reconnecting in its middle instead would
 * let a later COMMIT "succeed" on a connection with nothing to commit.
 */
static kg_result kg_db_pg_ready(struct kg_db_pg *db)
{
    if (PQstatus(db->conn) == CONNECTION_OK) {
        return KG_RESULT_OK;
    }
    if (!db->idle) {
        db->idle = true;
        return kg_db_pg_fail("connection lost inside a transaction", PQerrorMessage(db->conn));
    }
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        return kg_db_pg_fail("reconnect", PQerrorMessage(db->conn));
    }
    db->generation++;
    return kg_db_pg_session(db);
}

/*
 * A statement that found the connection dead may run again on a new one
 * when no transaction was open and running it twice cannot change
 * anything: a read, or the BEGIN of a transaction. (A write in autocommit
 * may have committed before the connection died; it is not repeated.)
 */
static bool kg_db_pg_may_retry(const struct kg_db_pg *db, bool idle_before, const char *sql)
{
    return idle_before && PQstatus(db->conn) == CONNECTION_BAD &&
           (strncmp(sql, "SELECT", 6) == 0 || strcmp(sql, "BEGIN") == 0);
}

static kg_result kg_db_pg_open(const char *location, struct kg_db **out)
{
    struct kg_db_pg *db;
    char *parse_error = NULL;
    PQconninfoOption *parsed = PQconninfoParse(location, &parse_error);

    /* libpq's parse errors quote the part of the URL they stumbled on,
     * which may be the password: say only that it does not parse. */
    PQfreemem(parse_error);
    if (parsed == NULL) {
        kg_error_set(KG_ERR_STORE, __FILE__, __LINE__);
        kg_error_detail("store: the PostgreSQL URL does not parse (libpq's reason is not shown: it may quote "
                        "the password)");
        return KG_RESULT_ERROR;
    }
    PQconninfoFree(parsed);
    db = calloc(1, sizeof(*db));
    KG_ENSURE(db != NULL, KG_ERR_NOMEM);
    db->base.ops = &kg_db_pg_ops;
    db->generation = 1;
    db->idle = true;
    db->conn = PQconnectdb(location);
    if (db->conn == NULL) {
        free(db);
        KG_BAIL(KG_ERR_NOMEM);
    }
    if (PQstatus(db->conn) != CONNECTION_OK || kg_failed(kg_db_pg_session(db))) {
        if (PQstatus(db->conn) != CONNECTION_OK) {
            (void)kg_db_pg_fail("connect", PQerrorMessage(db->conn));
        }
        PQfinish(db->conn);
        free(db);
        return KG_RESULT_ERROR;
    }
    *out = &db->base;
    return KG_RESULT_OK;
}

static void kg_db_pg_close(struct kg_db *base)
{
    struct kg_db_pg *db = kg_db_pg_of(base);

    PQfinish(db->conn);
    free(db);
}

static kg_result kg_db_pg_exec(struct kg_db *base, const char *sql)
{
    struct kg_db_pg *db = kg_db_pg_of(base);
    PGresult *res;
    ExecStatusType status;
    bool idle_before;

    base->last_fail = KG_DB_FAIL_OTHER;
    KG_GUARD(kg_db_pg_ready(db));
    idle_before = db->idle;
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && kg_db_pg_may_retry(db, idle_before, sql)) {
        PQclear(res);
        KG_GUARD(kg_db_pg_ready(db));
        res = PQexec(db->conn, sql);
    }
    kg_db_pg_note_idle(db, idle_before);
    status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return kg_db_pg_fail_result(db, res, "exec");
    }
    PQclear(res);
    return KG_RESULT_OK;
}

/*
 * Copy `sql` with `?N` and bare `?` turned into `$N` (bare ones numbered in
 * order), leaving quoted literals alone. *out is malloc'd; *nparams gets the
 * highest number used.
 */
static kg_result kg_db_pg_rewrite(const char *sql, char **out, int *nparams)
{
    size_t len = strlen(sql);
    char *dst = malloc(len * 4 + 1); /* "?" becomes at most "$NNN" */
    size_t o = 0;
    bool quoted = false;
    int bare = 0, highest = 0;

    KG_ENSURE(dst != NULL, KG_ERR_NOMEM);
    for (size_t i = 0; i < len; i++) {
        char c = sql[i];

        if (c == '\'') {
            quoted = !quoted;
        }
        if (c != '?' || quoted) {
            dst[o++] = c;
            continue;
        }
        if (sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            long n = strtol(sql + i + 1, NULL, 10);

            while (sql[i + 1] >= '0' && sql[i + 1] <= '9') {
                i++;
            }
            if (n < 1 || n > 999) {
                free(dst);
                KG_BAIL(KG_ERR_INTERNAL);
            }
            highest = (int)n > highest ? (int)n : highest;
            o += (size_t)snprintf(dst + o, 5, "$%d", (int)n);
        } else {
            if (++bare > 999) {
                free(dst);
                KG_BAIL(KG_ERR_INTERNAL);
            }
            highest = bare > highest ? bare : highest;
            o += (size_t)snprintf(dst + o, 5, "$%d", bare);
        }
    }
    dst[o] = '\0';
    *out = dst;
    *nparams = highest;
    return KG_RESULT_OK;
}

/* Prepare a cached statement on the server for this connection generation. */
static kg_result kg_db_pg_server_prepare(struct kg_db_pg *db, struct kg_db_pg_stmt *st)
{
    PGresult *res = PQprepare(db->conn, st->name, st->sql, st->nparams, NULL);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        return kg_db_pg_fail_result(db, res, "prepare");
    }
    PQclear(res);
    st->prepared_generation = db->generation;
    return KG_RESULT_OK;
}

static void kg_db_pg_finalize(struct kg_db_stmt *base)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    /* A cached statement's server side ends with its connection: statements
     * are finalized only when the store closes it. */
    PQclear(st->result);
    free(st->sql);
    free(st->values);
    free(st->lengths);
    free(st->formats);
    free(st->numbers);
    free(st);
}

static kg_result kg_db_pg_prepare(struct kg_db *base, const char *sql, bool cached, struct kg_db_stmt **out)
{
    struct kg_db_pg *db = kg_db_pg_of(base);
    struct kg_db_pg_stmt *st = calloc(1, sizeof(*st));
    size_t n;

    KG_ENSURE(st != NULL, KG_ERR_NOMEM);
    st->base.db = base;
    st->row = -1;
    if (kg_failed(kg_db_pg_rewrite(sql, &st->sql, &st->nparams))) {
        kg_db_pg_finalize(&st->base);
        return KG_RESULT_ERROR;
    }
    n = st->nparams > 0 ? (size_t)st->nparams : 1;
    st->values = calloc(n, sizeof(*st->values));
    st->lengths = calloc(n, sizeof(*st->lengths));
    st->formats = calloc(n, sizeof(*st->formats));
    st->numbers = calloc(n, sizeof(*st->numbers));
    if (st->values == NULL || st->lengths == NULL || st->formats == NULL || st->numbers == NULL) {
        kg_db_pg_finalize(&st->base);
        KG_BAIL(KG_ERR_NOMEM);
    }
    if (cached) {
        snprintf(st->name, sizeof(st->name), "kg%u", (unsigned)++db->next_name);
        /* Prepared now so that a mistake in the SQL shows at open, not at
         * first use. */
        if (kg_failed(kg_db_pg_ready(db)) || kg_failed(kg_db_pg_server_prepare(db, st))) {
            kg_db_pg_finalize(&st->base);
            return KG_RESULT_ERROR;
        }
    }
    *out = &st->base;
    return KG_RESULT_OK;
}

static int kg_db_pg_param_count(const struct kg_db_stmt *st)
{
    return kg_db_pg_stmt_of(st)->nparams;
}

/* Parameter `param` (1-based) exists and the statement is not running. */
static kg_result kg_db_pg_param(struct kg_db_pg_stmt *st, int param)
{
    KG_ENSURE(param >= 1 && param <= st->nparams && !st->executed, KG_ERR_INTERNAL);
    return KG_RESULT_OK;
}

static kg_result kg_db_pg_bind_int(struct kg_db_stmt *base, int param, int64_t value)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);
    char *number;

    KG_GUARD(kg_db_pg_param(st, param));
    number = st->numbers[param - 1].number;
    snprintf(number, sizeof(st->numbers[0].number), "%lld", (long long)value);
    st->values[param - 1] = number;
    st->lengths[param - 1] = 0;
    st->formats[param - 1] = 0;
    return KG_RESULT_OK;
}

static kg_result kg_db_pg_bind_text(struct kg_db_stmt *base, int param, const char *text)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    KG_GUARD(kg_db_pg_param(st, param));
    st->values[param - 1] = text;
    st->lengths[param - 1] = 0;
    st->formats[param - 1] = 0;
    return KG_RESULT_OK;
}

static kg_result kg_db_pg_bind_blob(struct kg_db_stmt *base, int param, const uint8_t *bytes, uint32_t len)
{
    static const char empty[1];
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    KG_GUARD(kg_db_pg_param(st, param));
    KG_ENSURE(len <= INT32_MAX, KG_ERR_INTERNAL);
    /* A non-NULL pointer with length 0 is an empty bytea, not NULL. */
    st->values[param - 1] = len > 0 ? (const char *)bytes : empty;
    st->lengths[param - 1] = (int)len;
    st->formats[param - 1] = 1;
    return KG_RESULT_OK;
}

static kg_result kg_db_pg_bind_null(struct kg_db_stmt *base, int param)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    KG_GUARD(kg_db_pg_param(st, param));
    st->values[param - 1] = NULL;
    return KG_RESULT_OK;
}

/* Send the statement once (preparing it on this connection if needed). */
static PGresult *kg_db_pg_send(struct kg_db_pg *db, struct kg_db_pg_stmt *st)
{
    if (st->name[0] == '\0') {
        return PQexecParams(db->conn, st->sql, st->nparams, NULL, st->values, st->lengths, st->formats, 1);
    }
    if (st->prepared_generation != db->generation && kg_failed(kg_db_pg_server_prepare(db, st))) {
        return NULL;
    }
    return PQexecPrepared(db->conn, st->name, st->nparams, st->values, st->lengths, st->formats, 1);
}

/* Run the statement: its rows (or its count of changed rows) are kept. */
static kg_result kg_db_pg_execute(struct kg_db_pg *db, struct kg_db_pg_stmt *st, const char *what)
{
    PGresult *res;
    ExecStatusType status;
    const char *tuples;
    bool idle_before;

    KG_GUARD(kg_db_pg_ready(db));
    idle_before = db->idle;
    res = kg_db_pg_send(db, st);
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && kg_db_pg_may_retry(db, idle_before, st->sql)) {
        PQclear(res);
        KG_GUARD(kg_db_pg_ready(db));
        res = kg_db_pg_send(db, st);
    }
    kg_db_pg_note_idle(db, idle_before);
    if (res == NULL && st->name[0] != '\0' && st->prepared_generation != db->generation) {
        return KG_RESULT_ERROR; /* the prepare failed and said why */
    }
    status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        return kg_db_pg_fail_result(db, res, what);
    }
    if (strcmp(st->sql, "COMMIT") == 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* A transaction that had failed: PostgreSQL answers COMMIT with
         * ROLLBACK and no error. Nothing was committed; say so. */
        PQclear(res);
        return kg_db_pg_fail(what, "the transaction had failed and was rolled back, nothing committed");
    }
    tuples = PQcmdTuples(res);
    db->changes = tuples != NULL && tuples[0] != '\0' ? strtoull(tuples, NULL, 10) : 0;
    st->result = res;
    st->row = -1;
    st->executed = true;
    return KG_RESULT_OK;
}

static kg_result kg_db_pg_step(struct kg_db_stmt *base, const char *what, bool *row)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    if (!st->executed) {
        KG_GUARD(kg_db_pg_execute(kg_db_pg_of(base->db), st, what));
    }
    if (st->row < PQntuples(st->result)) {
        st->row++;
    }
    *row = st->row < PQntuples(st->result);
    return KG_RESULT_OK;
}

static void kg_db_pg_reset(struct kg_db_stmt *base)
{
    struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    PQclear(st->result);
    st->result = NULL;
    st->row = -1;
    st->executed = false;
    for (int i = 0; i < st->nparams; i++) {
        st->values[i] = NULL;
    }
}

static bool kg_db_pg_busy(const struct kg_db_stmt *st)
{
    return kg_db_pg_stmt_of(st)->executed;
}

/* The current row has column `col`. */
static bool kg_db_pg_has(const struct kg_db_pg_stmt *st, int col)
{
    return st->result != NULL && st->row >= 0 && st->row < PQntuples(st->result) && col >= 0 &&
           col < PQnfields(st->result);
}

static enum kg_db_type kg_db_pg_column_type(const struct kg_db_stmt *base, int col)
{
    const struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);

    if (!kg_db_pg_has(st, col)) {
        return KG_DB_OTHER;
    }
    if (PQgetisnull(st->result, st->row, col)) {
        return KG_DB_NULL;
    }
    switch (PQftype(st->result, col)) {
    case KG_PG_BOOL:
    case KG_PG_INT2:
    case KG_PG_INT4:
    case KG_PG_INT8:
        return KG_DB_INTEGER;
    case KG_PG_TEXT:
    case KG_PG_VARCHAR:
    case KG_PG_NAME:
        return KG_DB_TEXT;
    case KG_PG_BYTEA:
        return KG_DB_BLOB;
    default:
        return KG_DB_OTHER;
    }
}

/* A binary integer column: big-endian, 1 (bool), 2, 4 or 8 bytes, signed. */
static int64_t kg_db_pg_column_int(const struct kg_db_stmt *base, int col)
{
    const struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);
    const uint8_t *p;
    int len;
    uint64_t v = 0;

    if (kg_db_pg_column_type(base, col) != KG_DB_INTEGER) {
        return 0;
    }
    p = (const uint8_t *)PQgetvalue(st->result, st->row, col);
    len = PQgetlength(st->result, st->row, col);
    if (len != 1 && len != 2 && len != 4 && len != 8) {
        return 0;
    }
    for (int i = 0; i < len; i++) {
        v = v << 8 | p[i];
    }
    if (len < 8 && (p[0] & 0x80u) != 0 && len > 1) {
        v |= ~(uint64_t)0 << (8 * len); /* sign-extend */
    }
    return (int64_t)v;
}

static const uint8_t *kg_db_pg_column_bytes(const struct kg_db_stmt *base, int col, size_t *len)
{
    const struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);
    int n;

    *len = 0;
    if (!kg_db_pg_has(st, col) || PQgetisnull(st->result, st->row, col)) {
        return NULL;
    }
    n = PQgetlength(st->result, st->row, col);
    *len = n > 0 ? (size_t)n : 0;
    return (const uint8_t *)PQgetvalue(st->result, st->row, col);
}

static const char *kg_db_pg_column_name(const struct kg_db_stmt *base, int col)
{
    const struct kg_db_pg_stmt *st = kg_db_pg_stmt_of(base);
    const char *name = st->result != NULL ? PQfname(st->result, col) : NULL;

    return name != NULL ? name : "?";
}

static uint64_t kg_db_pg_session_of(const struct kg_db *db)
{
    return kg_db_pg_of(db)->generation;
}

static uint64_t kg_db_pg_changes(const struct kg_db *db)
{
    return kg_db_pg_of(db)->changes;
}

/* On a lost connection libpq cannot say; a transaction that was open then
 * still counts as open until the caller's rollback (kg_db_pg_ready). */
static bool kg_db_pg_in_transaction(const struct kg_db *base)
{
    const struct kg_db_pg *db = kg_db_pg_of(base);
    PGTransactionStatusType status;

    if (PQstatus(db->conn) != CONNECTION_OK) {
        return !db->idle;
    }
    status = PQtransactionStatus(db->conn);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

const struct kg_db_ops kg_db_pg_ops = {
    .backend = KG_DB_POSTGRESQL,
    .open = kg_db_pg_open,
    .close = kg_db_pg_close,
    .exec = kg_db_pg_exec,
    .prepare = kg_db_pg_prepare,
    .finalize = kg_db_pg_finalize,
    .param_count = kg_db_pg_param_count,
    .bind_int = kg_db_pg_bind_int,
    .bind_text = kg_db_pg_bind_text,
    .bind_blob = kg_db_pg_bind_blob,
    .bind_null = kg_db_pg_bind_null,
    .step = kg_db_pg_step,
    .reset = kg_db_pg_reset,
    .busy = kg_db_pg_busy,
    .column_type = kg_db_pg_column_type,
    .column_int = kg_db_pg_column_int,
    .column_bytes = kg_db_pg_column_bytes,
    .column_name = kg_db_pg_column_name,
    .changes = kg_db_pg_changes,
    .session = kg_db_pg_session_of,
    .in_transaction = kg_db_pg_in_transaction,
};
