/*
 * kg_audit_test.c - the hash-chained audit log: writing from many threads,
 * continuing a chain across restarts and interrupted writes, and
 * kg_audit_verify_file naming the line of every kind of tampering.
 *
 * Every test works on files in one private temporary directory. The tamper
 * tests build a clean log through the API, then edit a copy of it byte by
 * byte, as an attacker with write access to the file would. Set KG_TEST_KEEP
 * to keep the directory (its path is printed) and try `kmipgw audit verify`
 * on the files by hand. The audit echo on stderr goes to <dir>/stderr.log.
 */
#include "kg_test.h"

#include "kg_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[] = "/tmp/kg_audit_test.XXXXXX";

static const char g_zero_prev[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- helpers ---- */

static void test_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", g_dir, name);
}

static const char *const g_ous[] = { "vsphere" };
static const struct kg_identity g_id = {
    .cn = "vcenter01.example.com",
    .ous = g_ous,
    .ou_count = 1,
    .serial = "1A2B",
    .fingerprint = "ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34ab12cd34",
};

static void write_one(struct kg_audit *a, const struct kg_identity *id, const char *uid)
{
    struct kg_audit_record rec = {
        .time = 1700000000,
        .identity = id,
        .group = "vsphere",
        .operation = "Create",
        .uid = uid,
        .decision = "allow",
        .status = 0,
        .reason = 0,
        .note = NULL,
    };

    kg_audit_write(a, &rec);
}

/* A new log of `n` records with uids uid-0001.. at <dir>/<name>. */
static int make_log(const char *name, int n, char *path, size_t size)
{
    struct kg_audit *a = NULL;
    char uid[32];

    test_path(path, size, name);
    unlink(path);
    if (kg_failed(kg_audit_open(path, &a))) {
        printf("open %s: %s\n", path, kg_error_text());
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        snprintf(uid, sizeof(uid), "uid-%04d", i);
        write_one(a, &g_id, uid);
    }
    kg_audit_close(a);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

static int spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int rc = -1;

    if (f != NULL) {
        rc = fwrite(data, 1, len, f) == len ? 0 : -1;
        if (fclose(f) != 0) {
            rc = -1;
        }
    }
    return rc;
}

/* The lines of a file, newlines stripped; a last line without a newline
 * is kept too. Free with free_lines. */
struct lines {
    char **line;
    size_t count;
};

static struct lines read_lines(const char *path)
{
    struct lines l = { 0 };
    size_t len;
    char *text = slurp(path, &len);
    char *p = text;

    if (text == NULL) {
        return l;
    }
    l.line = calloc(len + 2, sizeof(char *));
    while (l.line != NULL && p < text + len) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(text + len - p);
        l.line[l.count] = strndup(p, n);
        l.count++;
        p += n + (nl != NULL ? 1 : 0);
    }
    free(text);
    return l;
}

static void free_lines(struct lines *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->line[i]);
    }
    free(l->line);
    memset(l, 0, sizeof(*l));
}

/* Write lines[order[i]] for i < n, each with a newline. */
static int write_lines(const char *path, const struct lines *l, const int *order, size_t n)
{
    FILE *f = fopen(path, "wb");
    int rc = 0;

    if (f == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (fprintf(f, "%s\n", l->line[order[i]]) < 0) {
            rc = -1;
        }
    }
    if (fclose(f) != 0) {
        rc = -1;
    }
    return rc;
}

/* Run the checker on `path`; the report (caller frees) and the counts. */
static char *verify(const char *path, size_t *records, size_t *problems, bool *io_ok)
{
    char *text = NULL;
    size_t size = 0;
    FILE *report = open_memstream(&text, &size);

    *io_ok = false;
    if (report == NULL) {
        return NULL;
    }
    *io_ok = kg_ok(kg_audit_verify_file(path, report, records, problems));
    fclose(report);
    return text;
}

/* The first report line, without the directory part of the path. */
static const char *first_line_of(const char *report, char *buf, size_t size)
{
    const char *start = report, *nl;
    size_t dir = strlen(g_dir);

    if (strncmp(start, g_dir, dir) == 0 && start[dir] == '/') {
        start += dir + 1;
    }
    nl = strchr(start, '\n');
    snprintf(buf, size, "%.*s", (int)(nl != NULL ? nl - start : (long)strlen(start)), start);
    return buf;
}

/*
 * Verify `path`, expect `want_problems` problems (SIZE_MAX: any, at least
 * one) and the first report line to equal `want_first` exactly. Prints the
 * report on a mismatch.
 */
static void expect_report(const char *path, size_t want_problems, const char *want_first)
{
    size_t records = 0, problems = 0;
    bool io_ok;
    char *report = verify(path, &records, &problems, &io_ok);
    char first[1024];

    CU_ASSERT_FATAL(report != NULL);
    CU_ASSERT(io_ok);
    first_line_of(report, first, sizeof(first));
    if (want_problems == SIZE_MAX) {
        CU_ASSERT(problems >= 1);
    } else {
        CU_ASSERT_EQUAL(problems, want_problems);
    }
    CU_ASSERT_STRING_EQUAL(first, want_first);
    if (strcmp(first, want_first) != 0 || (want_problems != SIZE_MAX && problems != want_problems)) {
        printf("\n--- report for %s (%zu problems):\n%s--- wanted first line: %s\n", path, problems, report,
               want_first);
    }
    free(report);
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
}

static bool valid_utf8(const char *s)
{
    size_t n = strlen(s);

    for (size_t i = 0; i < n;) {
        size_t k = kg_audit_utf8_len((const uint8_t *)s + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    return n;
}

/* ---- writing ---- */

static void test_new_file_first_record(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    struct stat st;
    struct lines l;
    struct kg_audit_line f;
    const char *why;
    char want[128];
    uint64_t seq;
    char head[KG_AUDIT_HASH_HEX], hash[65];

    test_path(path, sizeof(path), "first.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &g_id, "uid-1");
    kg_audit_head(a, &seq, head);
    kg_audit_close(a);

    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 1);
    snprintf(want, sizeof(want), "{\"seq\":1,\"prev\":\"%s\",\"time\":\"2023-11-14T22:13:20Z\"", g_zero_prev);
    CU_ASSERT(strncmp(l.line[0], want, strlen(want)) == 0);
    CU_ASSERT(strstr(l.line[0], ",\"ou\":[\"vsphere\"],") != NULL);
    CU_ASSERT(strstr(l.line[0], ",\"operation\":\"Create\",\"uid\":\"uid-1\",\"decision\":\"allow\","
                                "\"result\":\"success\",\"reason\":0}") != NULL);
    CU_ASSERT(kg_audit_parse_line(l.line[0], strlen(l.line[0]), &f, &why));
    CU_ASSERT_EQUAL(f.seq, 1);
    CU_ASSERT_EQUAL(seq, 1);
    sha256_hex(l.line[0], strlen(l.line[0]), hash);
    CU_ASSERT_STRING_EQUAL(head, hash);
    free_lines(&l);
    expect_report(path, 0, "first.log: 1 record, chain intact");
}

struct writer_arg {
    struct kg_audit *audit;
    int thread;
    int count;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    char uid[64];

    for (int i = 0; i < w->count; i++) {
        snprintf(uid, sizeof(uid), "t%d-%d", w->thread, i);
        write_one(w->audit, &g_id, uid);
        if (i % 100 == 0) {
            kg_audit_event(w->audit, "test-event", uid);
        }
    }
    return NULL;
}

static void test_concurrent_writers_keep_one_chain(void)
{
    enum { THREADS = 8, EACH = 400 };
    char path[512];
    struct kg_audit *a = NULL;
    pthread_t th[THREADS];
    struct writer_arg args[THREADS];
    size_t records = 0, problems = 0;
    bool io_ok;
    uint64_t seq;
    char head[KG_AUDIT_HASH_HEX], want[256];
    char *report;

    test_path(path, sizeof(path), "threads.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct writer_arg){ .audit = a, .thread = i, .count = EACH };
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, writer_main, &args[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    kg_audit_head(a, &seq, head);
    kg_audit_close(a);

    /* 400 records and 4 events per thread. */
    CU_ASSERT_EQUAL(seq, THREADS * (EACH + EACH / 100));
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(io_ok);
    CU_ASSERT_EQUAL(problems, 0);
    CU_ASSERT_EQUAL(records, THREADS * (EACH + EACH / 100));
    /* verify's head is the writer's head. */
    snprintf(want, sizeof(want), "head seq %llu sha256 %s", (unsigned long long)seq, head);
    CU_ASSERT(report != NULL && strstr(report, want) != NULL);
    free(report);
}

static void test_reopen_continues_chain(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    struct lines l;
    struct kg_audit_line f;
    const char *why;
    char hash[65], prev[80];

    CU_ASSERT_FATAL(make_log("reopen.log", 5, path, sizeof(path)) == 0);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &g_id, "after-restart");
    kg_audit_event(a, "policy-reload", "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ok");
    kg_audit_close(a);

    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 7);
    CU_ASSERT(kg_audit_parse_line(l.line[5], strlen(l.line[5]), &f, &why));
    CU_ASSERT_EQUAL(f.seq, 6);
    sha256_hex(l.line[4], strlen(l.line[4]), hash);
    snprintf(prev, sizeof(prev), "\"prev\":\"%s\"", hash);
    CU_ASSERT(strstr(l.line[5], prev) != NULL);
    CU_ASSERT(strstr(l.line[6], "\"event\":\"policy-reload\",\"detail\":\"sha256=e3b0") != NULL);
    free_lines(&l);
    expect_report(path, 0, "reopen.log: 7 records, chain intact");
}

static void test_events_share_the_chain(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    struct lines l;

    test_path(path, sizeof(path), "events.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    kg_audit_event(a, "start", "kmipgw 0.1.0");
    write_one(a, &g_id, "u1");
    kg_audit_event(a, "stop", NULL);
    kg_audit_close(a);
    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 3);
    CU_ASSERT(strstr(l.line[0], "{\"seq\":1,") == l.line[0]);
    CU_ASSERT(strstr(l.line[0], ",\"event\":\"start\",\"detail\":\"kmipgw 0.1.0\"}") != NULL);
    CU_ASSERT(strstr(l.line[2], ",\"event\":\"stop\",\"detail\":\"\"}") != NULL);
    free_lines(&l);
    expect_report(path, 0, "events.log: 3 records, chain intact");
}

static void test_open_refuses_foreign_tail(void)
{
    static const char *const tails[] = {
        "not json at all\n",
        "{\"time\":\"2024-01-01T00:00:00Z\",\"cn\":\"old format, no chain\"}\n",
        "\n",
    };
    char path[512];
    struct kg_audit *a = NULL;

    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        char good[512];
        size_t len = 0;
        char *text;

        CU_ASSERT_FATAL(make_log("foreign.log", 2, good, sizeof(good)) == 0);
        text = slurp(good, &len);
        CU_ASSERT_FATAL(text != NULL);
        test_path(path, sizeof(path), "foreign2.log");
        text = realloc(text, len + strlen(tails[i]) + 1);
        CU_ASSERT_FATAL(text != NULL);
        memcpy(text + len, tails[i], strlen(tails[i]) + 1);
        CU_ASSERT_FATAL(spit(path, text, strlen(text)) == 0);
        free(text);
        CU_ASSERT(kg_failed(kg_audit_open(path, &a)));
        CU_ASSERT(a == NULL);
        CU_ASSERT_EQUAL(kg_errno(), KG_ERR_CONFIG);
        CU_ASSERT(strstr(kg_error_text(), "not a chained audit record") != NULL);
    }
    /* Not a regular file. */
    CU_ASSERT(kg_failed(kg_audit_open("/dev/null", &a)));
    CU_ASSERT(a == NULL);
}

static void test_second_writer_is_refused(void)
{
    char path[512];
    struct kg_audit *a = NULL, *b = NULL;

    test_path(path, sizeof(path), "locked.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    CU_ASSERT(kg_failed(kg_audit_open(path, &b)));
    CU_ASSERT(b == NULL);
    CU_ASSERT(strstr(kg_error_text(), "in use by another process") != NULL);
    kg_audit_close(a);
    CU_ASSERT(kg_ok(kg_audit_open(path, &b)));
    kg_audit_close(b);
}

/* Stderr only: the chain lives in memory and in the echo. */
static void test_stderr_only(void)
{
    struct kg_audit *a = NULL;
    uint64_t seq;
    char head[KG_AUDIT_HASH_HEX];

    CU_ASSERT_FATAL(kg_ok(kg_audit_open(NULL, &a)));
    write_one(a, &g_id, "u");
    kg_audit_event(a, "start", "x");
    kg_audit_head(a, &seq, head);
    CU_ASSERT_EQUAL(seq, 2);
    kg_audit_close(a);
    write_one(NULL, &g_id, "no audit object");
    kg_audit_event(NULL, "start", NULL);
}

/* ---- interrupted writes ---- */

static void test_crash_mid_record_resumes(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    struct lines l;
    size_t len, records = 0, problems = 0;
    char *text, *report, frag_hash[65], want[128];
    bool io_ok;

    CU_ASSERT_FATAL(make_log("crash.log", 6, path, sizeof(path)) == 0);
    /* Cut the last record in the middle, as a crash inside write(2) may. */
    text = slurp(path, &len);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_FATAL(truncate(path, (off_t)len - 40) == 0);
    free(text);
    expect_report(path, 1, "crash.log:6: line 6 is incomplete: the file ends inside a record (truncated, or a "
                           "write in progress)");

    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &g_id, "after-crash");
    kg_audit_close(a);

    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 8);
    sha256_hex(l.line[5], strlen(l.line[5]), frag_hash);
    snprintf(want, sizeof(want), "\"partial_sha256\":\"%s\"", frag_hash);
    CU_ASSERT(strstr(l.line[6], "{\"seq\":6,") == l.line[6]);
    CU_ASSERT(strstr(l.line[6], "\"event\":\"resume\"") != NULL);
    CU_ASSERT(strstr(l.line[6], want) != NULL);
    CU_ASSERT(strstr(l.line[7], "{\"seq\":7,") == l.line[7]);
    free_lines(&l);

    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(io_ok);
    CU_ASSERT_EQUAL(problems, 0);
    CU_ASSERT_EQUAL(records, 7);
    CU_ASSERT(report != NULL && strstr(report, "crash.log:6: note: an interrupted write left") != NULL);
    free(report);

    /* The fragment is pinned by the resume record: changing it breaks the
     * chain at that line. */
    text = slurp(path, &len);
    CU_ASSERT_FATAL(text != NULL);
    {
        char *sixth = text;
        for (int i = 0; i < 5; i++) {
            sixth = strchr(sixth, '\n') + 1;
        }
        sixth[10] = sixth[10] == 'x' ? 'y' : 'x';
    }
    CU_ASSERT_FATAL(spit(path, text, len) == 0);
    free(text);
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(problems >= 1);
    CU_ASSERT(report != NULL && strstr(report, "crash.log:6: line 6 is not a record") != NULL);
    free(report);
}

/* A whole record whose newline never made it: it stays in the chain. */
static void test_missing_final_newline_completed(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    size_t len;
    char *text;

    CU_ASSERT_FATAL(make_log("newline.log", 3, path, sizeof(path)) == 0);
    text = slurp(path, &len);
    CU_ASSERT_FATAL(text != NULL);
    free(text);
    CU_ASSERT_FATAL(truncate(path, (off_t)len - 1) == 0);
    expect_report(path, 0, "newline.log:3: note: the last record has no newline (its write was cut short after it)");
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &g_id, "u4");
    kg_audit_close(a);
    expect_report(path, 0, "newline.log: 4 records, chain intact");
}

/*
 * A full disk at run time: RLIMIT_FSIZE makes write(2) stop part way
 * through a record (EFBIG, SIGXFSZ ignored), then refuse the next one
 * entirely. Once there is room again, the next record is preceded by a
 * resume record for the fragment and a records-lost event.
 */
static void test_short_write_at_run_time(void)
{
    char path[512];
    struct kg_audit *a = NULL;
    struct rlimit old, lim;
    struct stat st;
    struct lines l;
    size_t records = 0, problems = 0;
    bool io_ok;
    char *report;
    void (*old_handler)(int);

    test_path(path, sizeof(path), "shortwrite.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &g_id, "u1");
    write_one(a, &g_id, "u2");
    CU_ASSERT_FATAL(stat(path, &st) == 0);
    CU_ASSERT_FATAL(getrlimit(RLIMIT_FSIZE, &old) == 0);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 100;
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        signal(SIGXFSZ, old_handler);
        kg_audit_close(a);
        printf("(setrlimit refused: skipped) ");
        return;
    }
    write_one(a, &g_id, "u3-cut"); /* 100 bytes reach the file */
    write_one(a, &g_id, "u4-lost");
    CU_ASSERT_FATAL(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    write_one(a, &g_id, "u5");
    kg_audit_close(a);

    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 6);
    CU_ASSERT_EQUAL(strlen(l.line[2]), 100);
    CU_ASSERT(strstr(l.line[3], "{\"seq\":3,") == l.line[3] && strstr(l.line[3], "\"event\":\"resume\"") != NULL);
    CU_ASSERT(strstr(l.line[4], "\"event\":\"records-lost\",\"detail\":\"2 records could not be written") != NULL);
    CU_ASSERT(strstr(l.line[5], "{\"seq\":5,") == l.line[5] && strstr(l.line[5], "\"uid\":\"u5\"") != NULL);
    free_lines(&l);
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(io_ok);
    CU_ASSERT_EQUAL(problems, 0);
    CU_ASSERT_EQUAL(records, 5);
    CU_ASSERT(report != NULL && strstr(report, "shortwrite.log:3: note: an interrupted write left 100 bytes") != NULL);
    free(report);
}

/* ---- tampering: each kind named at its line ---- */

/* A 20-record log and its lines, copied to <dir>/<name> after `edit`. */
static struct lines tamper_base(const char *name, char *path, size_t size)
{
    char base[512];
    struct lines l = { 0 };

    if (make_log(name, 20, base, sizeof(base)) == 0) {
        l = read_lines(base);
    }
    snprintf(path, size, "%s", base);
    return l;
}

static void identity_order(int *order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        order[i] = (int)i;
    }
}

static void test_tamper_edit_field(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-edit.log", path, sizeof(path));
    int order[20];
    char *p;

    CU_ASSERT_FATAL(l.count == 20);
    /* Line 10 (seq 10): a different UID, same length. */
    p = strstr(l.line[9], "uid-0010");
    CU_ASSERT_FATAL(p != NULL);
    memcpy(p, "uid-9999", 8);
    identity_order(order, 20);
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    expect_report(path, 1,
                  "tamper-edit.log:11: record seq 11: prev hash does not match line 10 (edited or deleted record "
                  "before it)");
    free_lines(&l);
}

static void test_tamper_edit_first_prev(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-edit-first.log", path, sizeof(path));
    int order[20];
    char *p;

    CU_ASSERT_FATAL(l.count == 20);
    p = strstr(l.line[0], g_zero_prev);
    CU_ASSERT_FATAL(p != NULL);
    p[63] = '1';
    identity_order(order, 20);
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    /* Line 1 is reported for its own prev, line 2 for the changed line 1. */
    expect_report(path, 2,
                  "tamper-edit-first.log:1: record seq 1: prev hash is not 64 zeros, the start of a chain (edited "
                  "record, or records before it deleted)");
    free_lines(&l);
}

static void test_tamper_edit_seq(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-edit-seq.log", path, sizeof(path));
    int order[20];

    CU_ASSERT_FATAL(l.count == 20);
    CU_ASSERT_FATAL(strncmp(l.line[9], "{\"seq\":10,", 10) == 0);
    l.line[9][8] = '9'; /* seq 19 */
    identity_order(order, 20);
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    expect_report(path, 2,
                  "tamper-edit-seq.log:10: record seq 19: seq should be 10, yet prev matches line 9 (seq edited)");
    free_lines(&l);
}

/* The last record has nothing after it to pin it: only the anchor shows
 * the change (kg_audit.h, "what the chain does not give"). */
static void test_tamper_edit_last_needs_anchor(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-edit-last.log", path, sizeof(path));
    int order[20];
    char hash[65], want[200];
    size_t records = 0, problems = 0;
    bool io_ok;
    char *report;

    CU_ASSERT_FATAL(l.count == 20);
    sha256_hex(l.line[19], strlen(l.line[19]), hash); /* the logged head */
    memcpy(strstr(l.line[19], "uid-0020"), "uid-6666", 8);
    identity_order(order, 20);
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT_EQUAL(problems, 0);
    snprintf(want, sizeof(want), "head seq 20 sha256 %s", hash);
    CU_ASSERT(report != NULL && strstr(report, "head seq 20 sha256 ") != NULL && strstr(report, want) == NULL);
    free(report);
    free_lines(&l);
}

static void test_tamper_delete(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-delete.log", path, sizeof(path));
    int order[20], n = 0;

    CU_ASSERT_FATAL(l.count == 20);
    for (int i = 0; i < 20; i++) {
        if (i != 9) {
            order[n++] = i;
        }
    }
    CU_ASSERT_FATAL(write_lines(path, &l, order, (size_t)n) == 0);
    expect_report(path, 1, "tamper-delete.log:10: seq jumps from 9 to 11 (record deleted)");

    /* Three in a row. */
    n = 0;
    for (int i = 0; i < 20; i++) {
        if (i < 9 || i > 11) {
            order[n++] = i;
        }
    }
    test_path(path, sizeof(path), "tamper-delete-three.log");
    CU_ASSERT_FATAL(write_lines(path, &l, order, (size_t)n) == 0);
    expect_report(path, 1, "tamper-delete-three.log:10: seq jumps from 9 to 13 (3 records deleted)");

    /* The first. */
    n = 0;
    for (int i = 1; i < 20; i++) {
        order[n++] = i;
    }
    test_path(path, sizeof(path), "tamper-delete-first.log");
    CU_ASSERT_FATAL(write_lines(path, &l, order, (size_t)n) == 0);
    expect_report(path, 1, "tamper-delete-first.log:1: first record has seq 2 (record 1 deleted)");
    free_lines(&l);
}

static void test_tamper_swap(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-swap.log", path, sizeof(path));
    int order[20];

    CU_ASSERT_FATAL(l.count == 20);
    identity_order(order, 20);
    order[9] = 10;
    order[10] = 9;
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    expect_report(path, 1, "tamper-swap.log:11: seq 10 after 11 (reordered)");

    /* The first two. */
    identity_order(order, 20);
    order[0] = 1;
    order[1] = 0;
    test_path(path, sizeof(path), "tamper-swap-first.log");
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    expect_report(path, 1, "tamper-swap-first.log:2: seq 1 after 2 (reordered)");

    /* A record moved further down: reported where it left and where it
     * landed. */
    identity_order(order, 20);
    for (int i = 4; i < 15; i++) {
        order[i] = i + 1;
    }
    order[15] = 4;
    test_path(path, sizeof(path), "tamper-move.log");
    CU_ASSERT_FATAL(write_lines(path, &l, order, 20) == 0);
    expect_report(path, 2, "tamper-move.log:5: seq jumps from 4 to 6 (record seq 5 moved to line 16: reordered)");
    free_lines(&l);
}

static void test_tamper_truncate_mid_line(void)
{
    char path[512];
    size_t len;
    char *text, *twelfth;

    CU_ASSERT_FATAL(make_log("tamper-truncate.log", 20, path, sizeof(path)) == 0);
    text = slurp(path, &len);
    CU_ASSERT_FATAL(text != NULL);
    twelfth = text;
    for (int i = 0; i < 11; i++) {
        twelfth = strchr(twelfth, '\n') + 1;
    }
    CU_ASSERT_FATAL(truncate(path, (off_t)(twelfth - text) + 30) == 0);
    free(text);
    expect_report(path, 1,
                  "tamper-truncate.log:12: line 12 is incomplete: the file ends inside a record (truncated, or a "
                  "write in progress)");
}

static void test_tamper_insert_forged(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-insert.log", path, sizeof(path));
    struct lines forged = { 0 };
    int order[21];
    char line[1024], hash[65];
    char *body;

    CU_ASSERT_FATAL(l.count == 20);
    forged.line = calloc(22, sizeof(char *));
    CU_ASSERT_FATAL(forged.line != NULL);
    for (int i = 0; i < 20; i++) {
        forged.line[i] = l.line[i];
    }
    forged.count = 21;
    identity_order(order, 21);
    for (int i = 10; i < 21; i++) {
        order[i] = i - 1;
    }
    order[10] = 20;

    /* 1. Not even a record. */
    forged.line[20] = "{\"seq\":11,\"note\":\"\\\"prev\\\":\\\"0000\\\"\"}";
    test_path(path, sizeof(path), "tamper-insert-garbage.log");
    CU_ASSERT_FATAL(write_lines(path, &forged, order, 21) == 0);
    expect_report(path, 1, "tamper-insert-garbage.log:11: line 11 is not a record: no \"prev\" member");

    /* 2. A well-formed record that claims seq 11 with a made-up prev. */
    body = strstr(l.line[10], ",\"time\"");
    CU_ASSERT_FATAL(body != NULL);
    snprintf(line, sizeof(line), "{\"seq\":11,\"prev\":\"%s\"%s", g_zero_prev, body);
    forged.line[20] = line;
    test_path(path, sizeof(path), "tamper-insert-badprev.log");
    CU_ASSERT_FATAL(write_lines(path, &forged, order, 21) == 0);
    expect_report(path, 1,
                  "tamper-insert-badprev.log:11: record seq 11 is not part of the chain: line 12 also has seq 11 and "
                  "follows line 10 (inserted or forged record)");

    /* 3. A forger who hashed line 10: the forged record links, the genuine
     * one after it is what the chain goes on from. */
    sha256_hex(l.line[9], strlen(l.line[9]), hash);
    snprintf(line, sizeof(line), "{\"seq\":11,\"prev\":\"%s\",\"time\":\"2023-11-14T22:13:20Z\",\"cn\":\"mallory\"}",
             hash);
    test_path(path, sizeof(path), "tamper-insert-forged.log");
    CU_ASSERT_FATAL(write_lines(path, &forged, order, 21) == 0);
    expect_report(path, 1,
                  "tamper-insert-forged.log:11: record seq 11 is not part of the chain: line 12 also has seq 11 and "
                  "line 13 follows it (inserted or forged record)");

    /* 4. Same forger, inserted after the genuine one. */
    for (int i = 0; i < 21; i++) {
        order[i] = i <= 10 ? i : i - 1;
    }
    order[11] = 20;
    test_path(path, sizeof(path), "tamper-insert-forged-after.log");
    CU_ASSERT_FATAL(write_lines(path, &forged, order, 21) == 0);
    expect_report(path, 1,
                  "tamper-insert-forged-after.log:12: record seq 11 is not part of the chain: line 11 has the same "
                  "seq and predecessor (inserted or forged record)");
    free(forged.line);
    free_lines(&l);
}

static void test_tamper_duplicate(void)
{
    char path[512];
    struct lines l = tamper_base("tamper-duplicate.log", path, sizeof(path));
    int order[21];

    CU_ASSERT_FATAL(l.count == 20);
    /* Line 10 twice in a row. */
    for (int i = 0; i < 21; i++) {
        order[i] = i <= 9 ? i : i - 1;
    }
    CU_ASSERT_FATAL(write_lines(path, &l, order, 21) == 0);
    expect_report(path, 1, "tamper-duplicate.log:11: line 11 duplicates line 10 (record seq 10 repeated)");

    /* Line 5 replayed after line 15. */
    for (int i = 0; i < 21; i++) {
        order[i] = i <= 14 ? i : i - 1;
    }
    order[15] = 4;
    test_path(path, sizeof(path), "tamper-replay.log");
    CU_ASSERT_FATAL(write_lines(path, &l, order, 21) == 0);
    expect_report(path, 1, "tamper-replay.log:16: seq 5 after 15 (reordered)");
    free_lines(&l);
}

static void test_verify_reports_every_problem_with_cap(void)
{
    char path[512];
    FILE *f;
    size_t records = 0, problems = 0;
    bool io_ok;
    char *report;

    test_path(path, sizeof(path), "garbage.log");
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 150; i++) {
        fprintf(f, "garbage %d\n", i);
    }
    fclose(f);
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(io_ok);
    CU_ASSERT_EQUAL(problems, 150);
    CU_ASSERT_EQUAL(records, 0);
    CU_ASSERT(report != NULL && count_substr(report, "is not a record: not a JSON object") == 100);
    CU_ASSERT(report != NULL && strstr(report, "garbage.log: 50 more problems not shown\n") != NULL);
    CU_ASSERT(report != NULL && strstr(report, "garbage.log: 0 records, 150 problems: chain broken\n") != NULL);
    free(report);
}

static void test_verify_long_line_and_io_errors(void)
{
    char path[512];
    struct lines l;
    char *big;
    size_t records, problems;
    bool io_ok;
    char *report;
    char good[512];
    int order[3];
    struct lines three = { 0 };

    CU_ASSERT_FATAL(make_log("long.log", 2, good, sizeof(good)) == 0);
    l = read_lines(good);
    CU_ASSERT_FATAL(l.count == 2);
    big = malloc(70001);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 'x', 70000);
    big[70000] = '\0';
    three.line = (char *[]){ l.line[0], big, l.line[1] };
    three.count = 3;
    identity_order(order, 3);
    test_path(path, sizeof(path), "long.log");
    CU_ASSERT_FATAL(write_lines(path, &three, order, 3) == 0);
    expect_report(path, 1, "long.log:2: line 2 is not a record: longer than 65536 bytes");
    free(big);
    free_lines(&l);

    /* Empty file: nothing to break. */
    test_path(path, sizeof(path), "empty.log");
    CU_ASSERT_FATAL(spit(path, "", 0) == 0);
    expect_report(path, 0, "empty.log: 0 records, chain intact");

    /* Missing file: an I/O error, not a verdict. */
    test_path(path, sizeof(path), "missing.log");
    report = verify(path, &records, &problems, &io_ok);
    CU_ASSERT(!io_ok);
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_IO);
    CU_ASSERT(report != NULL && report[0] == '\0');
    free(report);
}

/* ---- escaping and the parser ---- */

static void test_hostile_identity_stays_in_its_fields(void)
{
    static const char *const hostile_ous[] = {
        "x,admin",
        "\"],\"group\":\"admin\",\"ou\":[\"",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
    };
    const struct kg_identity hostile = {
        .cn = "evil\",\"group\":\"admin\",\"decision\":\"allow\\\n\r\t\x01\x1f\x7f \xff\xc0\x80\x80\xed\xa0\x80 end",
        .ous = hostile_ous,
        .ou_count = 3,
        .serial = "\"}\n{\"seq\":2,\"prev\":\"",
        .fingerprint = "\\u0022",
    };
    char path[512];
    struct kg_audit *a = NULL;
    struct lines l;
    struct kg_audit_line f;
    const char *why;

    test_path(path, sizeof(path), "hostile.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &hostile, "uid\",\"seq\":99,\"x\":\"");
    write_one(a, &g_id, "after");
    kg_audit_close(a);

    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 2);
    CU_ASSERT(valid_utf8(l.line[0]));
    for (const char *p = l.line[0]; *p != '\0'; p++) {
        CU_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    /* Exactly one member of each name: the hostile ones stayed inside strings. */
    CU_ASSERT_EQUAL(count_substr(l.line[0], "\"group\":"), 1);
    CU_ASSERT_EQUAL(count_substr(l.line[0], "\"decision\":"), 1);
    CU_ASSERT_EQUAL(count_substr(l.line[0], "\"seq\":"), 1);
    CU_ASSERT_EQUAL(count_substr(l.line[0], "\"prev\":"), 1);
    CU_ASSERT(strstr(l.line[0], ",\"group\":\"vsphere\",") != NULL);
    CU_ASSERT(strstr(l.line[0], "\"cn\":\"evil\\\",\\\"group\\\":\\\"admin\\\",\\\"decision\\\":\\\"allow\\\\"
                                "\\u000a\\u000d\\u0009\\u0001\\u001f\\u007f \\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd"
                                "\\ufffd end\"") != NULL);
    CU_ASSERT(strstr(l.line[0], "\"ou\":[\"x,admin\",\"\\\"],\\\"group\\\":\\\"admin\\\",\\\"ou\\\":[\\\"\","
                                "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"]") != NULL);
    CU_ASSERT(strstr(l.line[0], "\"fingerprint\":\"\\\\u0022\"") != NULL);
    CU_ASSERT(kg_audit_parse_line(l.line[0], strlen(l.line[0]), &f, &why));
    CU_ASSERT_EQUAL(f.seq, 1);
    CU_ASSERT(strstr(l.line[0], "truncated") == NULL);
    free_lines(&l);
    expect_report(path, 0, "hostile.log: 2 records, chain intact");
}

static void test_oversized_values_are_cut_and_marked(void)
{
    const char *many[20];
    char cn[300], ou[300];
    struct kg_identity id = g_id;
    char path[512];
    struct kg_audit *a = NULL;
    struct lines l;

    memset(cn, '\x01', sizeof(cn) - 1); /* 6 bytes each once escaped */
    cn[sizeof(cn) - 1] = '\0';
    memset(ou, 'o', sizeof(ou) - 1);
    ou[sizeof(ou) - 1] = '\0';
    for (int i = 0; i < 20; i++) {
        many[i] = ou;
    }
    id.cn = cn;
    id.ous = many;
    id.ou_count = 20;
    test_path(path, sizeof(path), "oversized.log");
    unlink(path);
    CU_ASSERT_FATAL(kg_ok(kg_audit_open(path, &a)));
    write_one(a, &id, "u");
    kg_audit_close(a);
    l = read_lines(path);
    CU_ASSERT_FATAL(l.count == 1);
    CU_ASSERT(strstr(l.line[0], ",\"truncated\":true}") != NULL);
    CU_ASSERT(strlen(l.line[0]) < 12000);
    /* 512 bytes of \u0001 is 85 escapes; the OU list stops at 16. */
    CU_ASSERT_EQUAL(count_substr(l.line[0], "\\u0001"), 85);
    CU_ASSERT_EQUAL(count_substr(l.line[0], "oooo\""), 16);
    free_lines(&l);
    expect_report(path, 0, "oversized.log: 1 record, chain intact");
}

static void test_parser(void)
{
    static const struct {
        const char *line;
        bool ok;
        uint64_t seq;
        const char *why;
    } cases[] = {
        { "{\"seq\":1,\"prev\":\"ZEROS\"}", true, 1, NULL },
        { " { \"seq\" : 42 , \"prev\" : \"ZEROS\" , \"a\" : [1, \"x\", true, null, -1.5e3] } ", true, 42, NULL },
        { "{\"prev\":\"ZEROS\",\"se\\u0071\":7}", true, 7, NULL },
        { "{\"note\":\"\\\"seq\\\":5,\\\"prev\\\":\\\"ZEROS\\\"\"}", false, 0, "no \"seq\" member" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"cn\":\"a\\\",\\\"seq\\\":99\"}", true, 1, NULL },
        { "{\"seq\":01,\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":1.0,\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":-1,\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":0,\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":1e2,\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":\"1\",\"prev\":\"ZEROS\"}", false, 0, "\"seq\" is not a positive integer" },
        { "{\"seq\":1,\"seq\":2,\"prev\":\"ZEROS\"}", false, 0, "two \"seq\" members" },
        { "{\"seq\":1,\"prev\":\"ABCD\"}", false, 0, "\"prev\" is not 64 lowercase hex digits" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"o\":{}}", false, 0, "nested object" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"o\":[[1]]}", false, 0, "nested array" },
        { "{\"seq\":1,\"prev\":\"ZEROS\"}x", false, 0, "bytes after the object" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"c\":\"a\x01\"}", false, 0, "control character in a string" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"c\":\"\xff\"}", false, 0, "invalid UTF-8" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"c\":\"\\x\"}", false, 0, "bad escape in a string" },
        { "{\"seq\":1,\"prev\":\"ZEROS\",\"c\":\"abc", false, 0, "unterminated string" },
        { "{\"seq\":1}", false, 0, "no \"prev\" member" },
        { "[1]", false, 0, "not a JSON object" },
        { "", false, 0, "empty line" },
    };
    char line[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kg_audit_line f;
        const char *why = "unset";
        const char *z = strstr(cases[i].line, "ZEROS");
        bool ok;

        if (z != NULL) {
            snprintf(line, sizeof(line), "%.*s%s%s", (int)(z - cases[i].line), cases[i].line, g_zero_prev, z + 5);
        } else {
            snprintf(line, sizeof(line), "%s", cases[i].line);
        }
        ok = kg_audit_parse_line(line, strlen(line), &f, &why);
        CU_ASSERT_EQUAL(ok, cases[i].ok);
        if (ok != cases[i].ok || (ok && f.seq != cases[i].seq) ||
            (!ok && cases[i].why != NULL && strcmp(why, cases[i].why) != 0)) {
            printf("\ncase %zu: %s -> %s (%s)\n", i, line, ok ? "ok" : "refused", ok ? "" : why);
        }
        if (ok) {
            CU_ASSERT_EQUAL(f.seq, cases[i].seq);
        } else {
            CU_ASSERT_STRING_EQUAL(why, cases[i].why);
        }
    }
}

static void test_utf8(void)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        { "a", 1 },          { "\xc3\xa9", 2 },         { "\xe6\x97\xa5", 3 }, { "\xf0\x9f\x98\x80", 4 },
        { "\xc0\x80", 0 },   { "\xe0\x80\x80", 0 },     { "\xed\xa0\x80", 0 }, { "\xf4\x90\x80\x80", 0 },
        { "\x80", 0 },       { "\xc3", 0 },             { "\xf5\x80\x80\x80", 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_EQUAL(kg_audit_utf8_len((const uint8_t *)cases[i].s, strlen(cases[i].s)), cases[i].len);
    }
    /* Truncated sequences never read past n. */
    CU_ASSERT_EQUAL(kg_audit_utf8_len((const uint8_t *)"\xf0\x9f\x98\x80", 3), 0);
}

/* ---- runner ---- */

/* Copy sanitizer reports from the captured stderr to the real one; each
 * counts as a failure. */
static int pass_on_sanitizer_reports(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    int found = 0;

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "Sanitizer") != NULL || strstr(line, "runtime error:") != NULL) {
            fputs(line, stderr);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_new_file_first_record),
        KG_TEST(test_concurrent_writers_keep_one_chain),
        KG_TEST(test_reopen_continues_chain),
        KG_TEST(test_events_share_the_chain),
        KG_TEST(test_open_refuses_foreign_tail),
        KG_TEST(test_second_writer_is_refused),
        KG_TEST(test_stderr_only),
        KG_TEST(test_crash_mid_record_resumes),
        KG_TEST(test_missing_final_newline_completed),
        KG_TEST(test_short_write_at_run_time),
        KG_TEST(test_tamper_edit_field),
        KG_TEST(test_tamper_edit_first_prev),
        KG_TEST(test_tamper_edit_seq),
        KG_TEST(test_tamper_edit_last_needs_anchor),
        KG_TEST(test_tamper_delete),
        KG_TEST(test_tamper_swap),
        KG_TEST(test_tamper_truncate_mid_line),
        KG_TEST(test_tamper_insert_forged),
        KG_TEST(test_tamper_duplicate),
        KG_TEST(test_verify_reports_every_problem_with_cap),
        KG_TEST(test_verify_long_line_and_io_errors),
        KG_TEST(test_hostile_identity_stays_in_its_fields),
        KG_TEST(test_oversized_values_are_cut_and_marked),
        KG_TEST(test_parser),
        KG_TEST(test_utf8),
    };
    char log_path[600];
    int failed, fd, saved_stderr;

    if (mkdtemp(g_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* Every record is echoed to stderr: keep that out of the test output,
     * but not what a sanitizer says (below). */
    snprintf(log_path, sizeof(log_path), "%s/stderr.log", g_dir);
    saved_stderr = dup(STDERR_FILENO);
    fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && saved_stderr >= 0) {
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
    }
    if (fd >= 0) {
        close(fd);
    }
    failed = kg_test_run("audit", cases, sizeof(cases) / sizeof(cases[0]));
    if (saved_stderr >= 0) {
        fflush(stderr);
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        failed += pass_on_sanitizer_reports(log_path);
    }
    if (getenv("KG_TEST_KEEP") != NULL) {
        printf("kg_audit_test: files kept in %s\n", g_dir);
    } else {
        nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return failed;
}
