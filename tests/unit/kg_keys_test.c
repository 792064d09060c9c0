/*
 * kg_keys_test.c - kmipgw keys report: the audit scan (which records are a
 * use, malformed lines, the latest use winning, the uid table), the flags,
 * and the escaping of client-chosen tags in text, CSV and JSON.
 *
 * Every check has its refusal next to it: a record one member away from a
 * use is not one, a date one day past the month is malformed, and each
 * hostile byte is shown escaped. A light fuzz mutates good lines at random
 * (fixed seed, so a failure replays) and asks only that the scan neither
 * crashes nor counts a use for a UID the store could not hold.
 */
#include "kg_test.h"

#include "kg_attr.h"
#include "kg_audit.h"
#include "kg_keys_audit.h"
#include "kg_keys_format.h"
#include "kg_keys_report.h"
#include "kg_kmip.h"
#include "kg_kmip_tags.h"
#include "kg_store.h"
#include "kg_ttlv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UID_A "6f1c0b2e-8d5a-4c3e-9b7f-0a1b2c3d4e5f"
#define UID_B "0b2e6f1c-4c3e-8d5a-9b7f-5f4e3d2c1b0a"

/* A request record as kg_audit.c writes it, with the five members the scan
 * reads given. */
static void record(char *out, size_t cap, const char *time, const char *op, const char *uid, const char *decision,
                   const char *result)
{
    snprintf(out, cap,
             "{\"seq\":7,\"prev\":\"9f86\",\"time\":\"%s\",\"cn\":\"vc01\",\"ou\":[\"vsphere\"],\"serial\":\"1A\","
             "\"fingerprint\":\"ab12\",\"group\":\"vsphere\",\"operation\":\"%s\",\"uid\":\"%s\","
             "\"decision\":\"%s\",\"result\":\"%s\",\"reason\":0}",
             time, op, uid, decision, result);
}

/* Feed `line` to a fresh table: *why of the line, and the use it left. */
static const char *one_line(const char *line, bool *used, int64_t *when, const char *uid)
{
    struct kg_keys_uses *u = NULL;
    const char *why = "unset";

    *used = false;
    *when = 0;
    CU_ASSERT_FATAL(kg_ok(kg_keys_uses_new(&u)));
    CU_ASSERT(kg_ok(kg_keys_audit_line(u, line, strlen(line), used, &why)));
    CU_ASSERT_EQUAL(kg_keys_uses_get(u, uid, when), *used);
    kg_keys_uses_free(u);
    return why;
}

static void test_which_records_are_uses(void)
{
    static const struct {
        const char *op, *uid, *decision, *result;
        bool used;
    } cases[] = {
        { "Get", UID_A, "allow", "success", true },
        { "Encrypt", UID_A, "allow", "success", true },
        { "Decrypt", UID_A, "allow", "success", true },
        { "Sign", UID_A, "allow", "success", true },
        { "Signature Verify", UID_A, "allow", "success", true },
        { "MAC", UID_A, "allow", "success", true },
        { "MAC Verify", UID_A, "allow", "success", true },
        { "Export", UID_A, "allow", "success", true },
        /* One member away from a use. */
        { "Get", UID_A, "deny: operation not allowed for the group", "success", false },
        { "Get", UID_A, "allow", "failed", false },
        { "Create", UID_A, "allow", "success", false },
        { "Get Attributes", UID_A, "allow", "success", false },
        { "get", UID_A, "allow", "success", false },
        { "Get", "", "allow", "success", false },
        { "Get", UID_A "0", "allow", "success", false }, /* longer than any stored UID */
        { "Get", "a b", "allow", "success", false },     /* not a UID the store makes */
        { "Get", "\\u00e9", "allow", "success", false }, /* non-ASCII */
    };
    char line[1024];
    bool used;
    int64_t when;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *uid = cases[i].uid;
        const char *why;

        record(line, sizeof(line), "2025-01-02T03:04:05Z", cases[i].op, uid, cases[i].decision, cases[i].result);
        why = one_line(line, &used, &when, strlen(uid) <= KG_UID_LEN ? uid : UID_A);
        CU_ASSERT_PTR_NULL(why);
        CU_ASSERT_EQUAL(used, cases[i].used);
        if (used != cases[i].used) {
            printf("\ncase %zu: %s -> used %d\n", i, line, used);
        }
        if (used) {
            CU_ASSERT_EQUAL(when, 1735787045);
        }
    }
}

static void test_malformed_lines(void)
{
    static const struct {
        const char *line;
        const char *why;
    } cases[] = {
        { "", "empty line" },
        { "not json", "not a JSON object" },
        { "{\"time\":\"2025-01-02T03:04:05Z\",\"operation\":\"Get\",\"uid\":\"" UID_A "\"", "expected ',' or '}' after a member" },
        { "{\"time\":\"2025-01-02T03:04:05Z\",\"n\":{\"a\":1}}", "nested object" },
        { "{\"time\":\"2025-01-02T03:04:05Z\"} x", "bytes after the object" },
        { "{\"time\":\"2025-01-02T03:04:05Z\",\"uid\":\"a\",\"uid\":\"b\"}", "two \"uid\" members" },
        { "{\"time\":\"2025-01-02T03:04:05Z\",\"time\":\"2025-01-02T03:04:05Z\"}", "two \"time\" members" },
        { "{\"operation\":\"Get\",\"uid\":\"" UID_A "\",\"decision\":\"allow\",\"result\":\"success\"}",
          "no \"time\" member" },
        { "{\"time\":1735787045}", "\"time\" is not YYYY-MM-DDTHH:MM:SSZ" },
        { "{\"time\":\"2025-02-29T00:00:00Z\"}", "\"time\" is not YYYY-MM-DDTHH:MM:SSZ" },
        { "{\"time\":\"2025-01-02 03:04:05Z\"}", "\"time\" is not YYYY-MM-DDTHH:MM:SSZ" },
        { "{\"uid\":\"a\x01" "b\"}", "control character in a string" },
        { "{\"uid\":\"\xff\"}", "invalid UTF-8" },
    };
    bool used;
    int64_t when;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = one_line(cases[i].line, &used, &when, UID_A);

        CU_ASSERT_FALSE(used);
        CU_ASSERT_PTR_NOT_NULL(why);
        if (why == NULL || strcmp(why, cases[i].why) != 0) {
            printf("\ncase %zu: %s -> %s\n", i, cases[i].line, why != NULL ? why : "(accepted)");
            CU_FAIL("wrong reason");
        }
    }
    /* An event record is well formed and no use. */
    CU_ASSERT_PTR_NULL(one_line("{\"seq\":1,\"prev\":\"00\",\"time\":\"2025-01-02T03:04:05Z\",\"event\":\"start\","
                                "\"detail\":\"kmipgw 0.1.0\"}",
                                &used, &when, UID_A));
    CU_ASSERT_FALSE(used);
}

static void test_parse_time(void)
{
    static const struct {
        const char *text;
        bool ok;
        int64_t when;
    } cases[] = {
        { "1970-01-01T00:00:00Z", true, 0 },
        { "2024-02-29T23:59:59Z", true, 1709251199 },
        { "2025-01-02T03:04:05Z", true, 1735787045 },
        { "2025-02-29T00:00:00Z", false, 0 }, { "2025-04-31T00:00:00Z", false, 0 },
        { "2025-13-01T00:00:00Z", false, 0 }, { "2025-00-01T00:00:00Z", false, 0 },
        { "2025-01-00T00:00:00Z", false, 0 }, { "2025-01-01T24:00:00Z", false, 0 },
        { "2025-01-01T00:60:00Z", false, 0 }, { "2025-01-01T00:00:60Z", false, 0 },
        { "1969-12-31T23:59:59Z", false, 0 }, { "2025-01-01T00:00:00", false, 0 },
        { "2025-01-01T00:00:00+00:00", false, 0 }, { "2025-1-01T00:00:00Z", false, 0 },
        { "+025-01-01T00:00:00Z", false, 0 }, { "", false, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t when = -1;

        CU_ASSERT_EQUAL(kg_keys_audit_parse_time(cases[i].text, &when), cases[i].ok);
        CU_ASSERT_EQUAL(when, cases[i].when);
    }
}

static void test_latest_use_wins_and_table_grows(void)
{
    struct kg_keys_uses *u = NULL;
    char uid[KG_UID_LEN + 1];
    int64_t when;

    CU_ASSERT_FATAL(kg_ok(kg_keys_uses_new(&u)));
    CU_ASSERT(kg_ok(kg_keys_uses_note(u, UID_A, 200)));
    CU_ASSERT(kg_ok(kg_keys_uses_note(u, UID_A, 100)));
    CU_ASSERT(kg_keys_uses_get(u, UID_A, &when));
    CU_ASSERT_EQUAL(when, 200);
    CU_ASSERT(kg_ok(kg_keys_uses_note(u, UID_A, 300)));
    CU_ASSERT(kg_keys_uses_get(u, UID_A, &when));
    CU_ASSERT_EQUAL(when, 300);
    CU_ASSERT_FALSE(kg_keys_uses_get(u, UID_B, &when));
    CU_ASSERT_EQUAL(when, 0);
    CU_ASSERT_FALSE(kg_keys_uses_get(u, "", &when));
    CU_ASSERT_FALSE(kg_keys_uses_get(u, UID_A "0", &when));
    CU_ASSERT(kg_failed(kg_keys_uses_note(u, UID_A "0", 1)));
    CU_ASSERT(kg_failed(kg_keys_uses_note(u, "", 1)));
    /* Past several doublings, every entry still found. */
    for (int i = 0; i < 5000; i++) {
        snprintf(uid, sizeof(uid), "uid-%05d", i);
        CU_ASSERT(kg_ok(kg_keys_uses_note(u, uid, i)));
    }
    CU_ASSERT_EQUAL(kg_keys_uses_count(u), 5001);
    for (int i = 0; i < 5000; i++) {
        snprintf(uid, sizeof(uid), "uid-%05d", i);
        CU_ASSERT(kg_keys_uses_get(u, uid, &when) && when == i);
    }
    kg_keys_uses_free(u);
    kg_keys_uses_free(NULL);
}

/* Write `text` to a new temporary file; its path into `path`. */
static void temp_file(char *path, size_t cap, const char *text, size_t len)
{
    int fd;

    snprintf(path, cap, "/tmp/kg_keys_test.XXXXXX");
    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

static void test_scan_file(void)
{
    char good[512], later[512], path[64], diag_text[2048], expect[128];
    char *text = NULL, *longline = NULL;
    size_t text_len = 0;
    FILE *diag, *f;
    struct kg_keys_uses *u = NULL;
    struct kg_keys_audit_stats st = { 0 };
    int64_t when;

    record(good, sizeof(good), "2025-01-02T03:04:05Z", "Get", UID_A, "allow", "success");
    record(later, sizeof(later), "2025-06-01T00:00:00Z", "Get", UID_B, "allow", "success");
    longline = malloc(KG_AUDIT_MAX_LINE + 10);
    CU_ASSERT_FATAL(longline != NULL);
    memset(longline, 'x', KG_AUDIT_MAX_LINE + 9);
    longline[KG_AUDIT_MAX_LINE + 9] = '\0';
    f = open_memstream(&text, &text_len);
    CU_ASSERT_FATAL(f != NULL);
    /* 1 good, 2 malformed, 3 too long, 4 good, 5 incomplete last line */
    fprintf(f, "%s\n{\"time\":\"x\"}\n%s\n%s\n{\"time\":\"2025-", good, longline, later);
    fclose(f);
    temp_file(path, sizeof(path), text, text_len);
    diag = fmemopen(diag_text, sizeof(diag_text), "w");
    CU_ASSERT_FATAL(diag != NULL);
    CU_ASSERT_FATAL(kg_ok(kg_keys_uses_new(&u)));
    CU_ASSERT(kg_ok(kg_keys_audit_scan(u, path, diag, &st)));
    fclose(diag);
    CU_ASSERT_EQUAL(st.lines, 5);
    CU_ASSERT_EQUAL(st.uses, 2);
    CU_ASSERT_EQUAL(st.malformed, 3);
    for (int line = 1; line <= 5; line++) {
        snprintf(expect, sizeof(expect), "%s:%d: ", path, line);
        CU_ASSERT_EQUAL(strstr(diag_text, expect) != NULL, line == 2 || line == 3 || line == 5);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(diag_text, "line too long"));
    CU_ASSERT_PTR_NOT_NULL(strstr(diag_text, "no newline"));
    CU_ASSERT(kg_keys_uses_get(u, UID_A, &when) && when == 1735787045);
    CU_ASSERT(kg_keys_uses_get(u, UID_B, &when));
    /* A missing file is an error, not an empty log. */
    unlink(path);
    CU_ASSERT(kg_failed(kg_keys_audit_scan(u, path, stderr, &st)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), path));
    kg_keys_uses_free(u);
    free(text);
    free(longline);
}

/* Random single and double mutations of a good record: never a crash, and
 * a use only ever for a UID the store could hold. Fixed seed: replayable. */
static void test_fuzz_lines(void)
{
    static const char alphabet[] = "{}[]\":,\\u0123456789abcdefTZ- \x01\x7f\x80\xc3\xa9\xff";
    struct kg_keys_uses *u = NULL;
    char good[512], line[600];
    unsigned seed = 12345;
    size_t accepted = 0, refused = 0;

    record(good, sizeof(good), "2025-01-02T03:04:05Z", "Get", UID_A, "allow", "success");
    CU_ASSERT_FATAL(kg_ok(kg_keys_uses_new(&u)));
    for (int round = 0; round < 20000; round++) {
        size_t len = strlen(good);
        int edits = 1 + (int)(rand_r(&seed) % 3);
        bool used = false;
        const char *why = NULL;

        memcpy(line, good, len + 1);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand_r(&seed) % len;
            char c = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];

            switch (rand_r(&seed) % 3) {
            case 0: /* replace */
                line[at] = c;
                break;
            case 1: /* truncate */
                len = at;
                break;
            default: /* insert */
                if (len + 1 < sizeof(line)) {
                    memmove(line + at + 1, line + at, len - at);
                    line[at] = c;
                    len++;
                }
                break;
            }
            line[len] = '\0';
            if (len == 0) {
                break;
            }
        }
        CU_ASSERT(kg_ok(kg_keys_audit_line(u, line, len, &used, &why)));
        CU_ASSERT(!(used && why != NULL));
        if (why == NULL) {
            accepted++;
        } else {
            refused++;
        }
    }
    /* The fuzz reached both sides of the parser. */
    CU_ASSERT(accepted > 100);
    CU_ASSERT(refused > 100);
    kg_keys_uses_free(u);
}

/* ---- escaping ---- */

struct escape_case {
    const char *in, *out;
};

/* Each case's input through `put` must give exactly its output; text also
 * checks that kg_keys_text_width counts the characters written. */
static void check_escapes(void (*put)(FILE *, const char *), const struct escape_case *cases, size_t n)
{
    char buf[1024];

    for (size_t i = 0; i < n; i++) {
        FILE *f;

        memset(buf, 0, sizeof(buf)); /* fmemopen writes no NUL when nothing is written */
        f = fmemopen(buf, sizeof(buf) - 1, "w");
        CU_ASSERT_FATAL(f != NULL);
        put(f, cases[i].in);
        fclose(f);
        if (strcmp(buf, cases[i].out) != 0) {
            printf("\ncase %zu: got [%s], want [%s]\n", i, buf, cases[i].out);
            CU_FAIL("escaped differently");
        }
        if (put == kg_keys_put_text) {
            size_t chars = 0;

            for (const unsigned char *p = (const unsigned char *)buf; *p != '\0'; p++) {
                chars += (*p & 0xc0) != 0x80;
            }
            CU_ASSERT_EQUAL(kg_keys_text_width(cases[i].in), chars);
            CU_ASSERT_PTR_NULL(strpbrk(buf, "\n\r\x1b\x7f"));
        }
    }
}

static void test_text_escaping(void)
{
    static const struct escape_case cases[] = {
        { "vm-web01", "vm-web01" },
        { "Virtual Machine", "Virtual Machine" },
        { "a\nFORGED", "a\\nFORGED" },
        { "a\r\tb", "a\\r\\tb" },
        { "\x1b[2J", "\\x1b[2J" },
        { "\x7f", "\\x7f" },
        { "\xc2\x9b" "31m", "\\u009b31m" }, /* C1 CSI */
        { "\xc2\xa0", "\xc2\xa0" },         /* no-break space is text */
        { "caf\xc3\xa9", "caf\xc3\xa9" },
        { "\xff\xc3", "\\xff\\xc3" },       /* not UTF-8, truncated sequence */
        { "back\\slash", "back\\\\slash" },  /* so \n above cannot be forged */
        { "\"q\"", "\"q\"" },
        { "", "" },
    };

    check_escapes(kg_keys_put_text, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_csv_escaping(void)
{
    static const struct escape_case cases[] = {
        { "vm-web01", "vm-web01" },
        { "Virtual Machine", "Virtual Machine" },
        { "a,b", "\"a,b\"" },
        { "say \"hi\"", "\"say \"\"hi\"\"\"" },
        { "two\nlines", "\"two\nlines\"" },
        { "cr\r", "\"cr\r\"" },
        { "=1+2", "\"'=1+2\"" },
        { "+1", "\"'+1\"" },
        { "-1", "\"'-1\"" },
        { "@SUM(A1)", "\"'@SUM(A1)\"" },
        { "\tx", "\"'?x\"" },
        { "a=1", "a=1" }, /* only a leading one runs */
        { "=HYPERLINK(\"x\"),\n", "\"'=HYPERLINK(\"\"x\"\"),\n\"" },
        { "esc\x1b[2J", "esc?[2J" },
        { "\xc2\x9b", "?" },
        { "\xff", "?" },
        { "caf\xc3\xa9", "caf\xc3\xa9" },
        { "", "" },
    };

    check_escapes(kg_keys_put_csv, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_json_escaping(void)
{
    static const struct escape_case cases[] = {
        { "vm", "\"vm\"" },
        { "a\"b\\c", "\"a\\\"b\\\\c\"" },
        { "a\nb\x1b", "\"a\\u000ab\\u001b\"" },
        { "\xc2\x9b", "\"\\u009b\"" },
        { "\xff", "\"\\ufffd\"" },
        { "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
    };

    check_escapes(kg_keys_put_json, cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- flags and whole reports ---- */

static void test_flags(void)
{
    const struct kg_keys_report_opts o = { .unused_days = 10, .now = 100 * 86400 };
    struct kg_keys_row r;

    memset(&r, 0, sizeof(r));
    r.state = KG_STATE_ACTIVE;
    r.has_fresh = true;
    r.fresh = true;
    r.has_created = true;
    r.created = 95 * 86400;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT(r.never_fetched && !r.unused && !r.destroyed && !r.compromised);
    r.fresh = false; /* served once, no use in the logs: not never-fetched */
    kg_keys_row_flag(&r, &o);
    CU_ASSERT_FALSE(r.never_fetched);
    r.has_fresh = false; /* no Fresh at all: the audit decides */
    kg_keys_row_flag(&r, &o);
    CU_ASSERT_TRUE(r.never_fetched);
    r.has_last_use = true;
    r.last_use = 90 * 86400; /* exactly 10 days ago: unused */
    kg_keys_row_flag(&r, &o);
    CU_ASSERT(!r.never_fetched && r.unused);
    r.last_use = 90 * 86400 + 1;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT_FALSE(r.unused);
    r.has_last_use = false; /* never used: its age decides */
    r.created = 80 * 86400;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT_TRUE(r.unused);
    r.has_created = false;
    r.created = 0;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT_TRUE(r.unused);
    r.state = KG_STATE_COMPROMISED;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT(r.compromised && !r.destroyed && r.unused);
    r.state = KG_STATE_DESTROYED_COMPROMISED;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT(r.compromised && r.destroyed && !r.unused && !r.never_fetched);
    r.state = KG_STATE_DESTROYED;
    kg_keys_row_flag(&r, &o);
    CU_ASSERT(!r.compromised && r.destroyed);
}

/* A report of two keys, one with hostile tags, written in every format:
 * the hostile one never adds a line or a record. */
static void test_report_formats(void)
{
    char *tags[2][KG_KEYS_TAG_COUNT] = {
        { strdup("Virtual Machine"), strdup("vm-web01"), strdup("4211") },
        { strdup("=cmd|' /C calc'!A0"), strdup("x,\nFORGED\r\n\x1b[2J"), strdup("\"") },
    };
    struct kg_keys_row rows[2];
    struct kg_keys_count comps[2] = { { tags[0][0], 1 }, { tags[1][0], 1 } };
    struct kg_keys_report rep = { .rows = rows, .count = 2, .components = comps, .component_count = 2 };
    struct kg_keys_audit_summary sum = { .files = 1, .unused_days = 365 };
    char *out = NULL, *aside = NULL;
    size_t out_len = 0, aside_len = 0;
    FILE *fo, *fa;

    memset(rows, 0, sizeof(rows));
    for (int i = 0; i < 2; i++) {
        snprintf(rows[i].uid, sizeof(rows[i].uid), "%s", i == 0 ? UID_A : UID_B);
        rows[i].object_type = KG_OBJ_SYMMETRIC_KEY;
        rows[i].state = KG_STATE_ACTIVE;
        snprintf(rows[i].group, sizeof(rows[i].group), "vsphere");
        memcpy(rows[i].tags, tags[i], sizeof(tags[i]));
    }
    rep.by_state[KG_STATE_ACTIVE] = 2;
    for (int format = KG_KEYS_FORMAT_TEXT; format <= KG_KEYS_FORMAT_JSON; format++) {
        size_t newlines = 0;

        fo = open_memstream(&out, &out_len);
        fa = open_memstream(&aside, &aside_len);
        CU_ASSERT_FATAL(fo != NULL && fa != NULL);
        CU_ASSERT(kg_ok(kg_keys_report_write(fo, fa, &rep, (enum kg_keys_format)format, &sum)));
        fclose(fo);
        fclose(fa);
        for (size_t i = 0; i < out_len; i++) {
            newlines += out[i] == '\n';
        }
        CU_ASSERT_PTR_NULL(strchr(out, '\x1b'));
        if (format == KG_KEYS_FORMAT_TEXT) {
            /* header, 2 rows, blank, summary: 1 + 1 state + 2 components + 4 counts + audit */
            CU_ASSERT_EQUAL(newlines, 1 + 2 + 1 + 1 + 1 + 2 + 4 + 1);
            CU_ASSERT_PTR_NULL(strstr(out, "\nFORGED"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "x,\\nFORGED\\r\\n\\x1b[2J"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "x-Component \"=cmd|' /C calc'!A0\": 1"));
        } else if (format == KG_KEYS_FORMAT_CSV) {
            CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"'=cmd|' /C calc'!A0\","));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"x,\nFORGED\r\n?[2J\""));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, ",\"\"\"\"")); /* a lone quote, doubled and quoted */
            CU_ASSERT_PTR_NULL(strstr(out, "summary"));
            CU_ASSERT_PTR_NOT_NULL(strstr(aside, "summary: 2 objects"));
        } else {
            CU_ASSERT_EQUAL(newlines, 3);
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"x-Name\":\"x,\\u000aFORGED\\u000d\\u000a\\u001b[2J\""));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"fresh\":null,\"flags\":[]"));
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "{\"summary\":{\"objects\":2,\"by_state\":{\"Active\":2}"));
        }
        free(out);
        free(aside);
        out = aside = NULL;
    }
    for (int i = 0; i < 2; i++) {
        for (int t = 0; t < KG_KEYS_TAG_COUNT; t++) {
            free(tags[i][t]);
        }
    }
}

/* ---- building from a store ---- */

#define STORE_OBJECTS 600u /* more than two pages of KG_KEYS_PAGE */

static void store_uid(char *uid, unsigned n)
{
    snprintf(uid, KG_UID_LEN + 1, "00000000-0000-4000-8000-%012u", n);
}

/* Add one attribute row of `uid` whose value `w` holds, then empty `w`. */
static void add_row(struct kg_store *store, const char *uid, const char *name, struct kg_ttlv_writer *w)
{
    int32_t index;

    CU_ASSERT(kg_ok(kg_store_add_attr(store, uid, name, w->buf, w->len, &index)));
    w->len = 0;
}

static void fill_store(struct kg_store *store)
{
    static const uint8_t junk[3] = { 1, 2, 3 };
    struct kg_ttlv_writer w;
    struct kg_object o;
    char uid[KG_UID_LEN + 1];
    int32_t index;

    CU_ASSERT_FATAL(kg_ok(kg_ttlv_writer_init(&w, 4096, false)));
    CU_ASSERT_FATAL(kg_ok(kg_store_begin(store)));
    for (unsigned n = 0; n < STORE_OBJECTS; n++) {
        memset(&o, 0, sizeof(o));
        store_uid(o.uid, n);
        o.object_type = KG_OBJ_SYMMETRIC_KEY;
        o.state = n == 5 ? KG_STATE_DESTROYED : KG_STATE_ACTIVE;
        snprintf(o.owner_group, sizeof(o.owner_group), "%s", n % 2 == 0 ? "vsphere" : "admin");
        o.algorithm = 3; /* AES */
        o.length = 256;
        CU_ASSERT(kg_ok(kg_store_insert_object(store, &o)));
    }
    /* Object 1: two x-Name instances (the last wins), a non-text x-Component,
     * Fresh True, an Initial Date. */
    store_uid(uid, 1);
    CU_ASSERT(kg_ok(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_VALUE, "first", 5)));
    add_row(store, uid, "x-Name", &w);
    CU_ASSERT(kg_ok(kg_ttlv_write_text(&w, KG_TAG_ATTRIBUTE_VALUE, "second", 6)));
    add_row(store, uid, "x-Name", &w);
    CU_ASSERT(kg_ok(kg_ttlv_write_int(&w, KG_TAG_ATTRIBUTE_VALUE, 7)));
    add_row(store, uid, "x-Component", &w);
    CU_ASSERT(kg_ok(kg_ttlv_write_bool(&w, KG_TAG_ATTRIBUTE_VALUE, true)));
    add_row(store, uid, "Fresh", &w);
    CU_ASSERT(kg_ok(kg_ttlv_write_datetime(&w, KG_TAG_ATTRIBUTE_VALUE, 1000)));
    add_row(store, uid, "Initial Date", &w);
    /* Object 2: only an Original Creation Date; an unreadable Fresh row and
     * an unreadable x-Name row (not what kmipgw writes: shown as absent). */
    store_uid(uid, 2);
    CU_ASSERT(kg_ok(kg_ttlv_write_datetime(&w, KG_TAG_ATTRIBUTE_VALUE, 2000)));
    add_row(store, uid, "Original Creation Date", &w);
    CU_ASSERT(kg_ok(kg_store_add_attr(store, uid, "Fresh", junk, sizeof(junk), &index)));
    CU_ASSERT(kg_ok(kg_store_add_attr(store, uid, "x-Name", junk, sizeof(junk), &index)));
    /* Object 3: archived, still a key the site keeps. */
    store_uid(uid, 3);
    CU_ASSERT(kg_ok(kg_attr_store_date(store, uid, KG_STORE_ARCHIVE_DATE, 3000)));
    CU_ASSERT_FATAL(kg_ok(kg_store_commit(store)));
    kg_ttlv_writer_cleanup(&w);
}

static void test_report_from_store(void)
{
    char dir[] = "/tmp/kg_keys_store.XXXXXX", path[64], uid[KG_UID_LEN + 1];
    struct kg_store *store = NULL;
    struct kg_keys_uses *uses = NULL;
    struct kg_keys_report rep;
    struct kg_keys_report_opts o = { .unused_days = 0, .now = 10000 };

    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/kmipgw.db", dir);
    CU_ASSERT_FATAL(kg_ok(kg_store_open(path, &store)));
    fill_store(store);
    CU_ASSERT_FATAL(kg_ok(kg_keys_uses_new(&uses)));
    store_uid(uid, 1);
    CU_ASSERT(kg_ok(kg_keys_uses_note(uses, uid, 5000)));

    CU_ASSERT_FATAL(kg_ok(kg_keys_report_build(store, uses, &o, &rep)));
    CU_ASSERT_EQUAL(rep.count, STORE_OBJECTS);
    for (unsigned n = 0; n < rep.count && n < STORE_OBJECTS; n++) {
        store_uid(uid, n);
        CU_ASSERT_STRING_EQUAL(rep.rows[n].uid, uid); /* oldest first, each once */
    }
    CU_ASSERT_STRING_EQUAL(rep.rows[1].tags[KG_KEYS_TAG_NAME], "second");
    CU_ASSERT_STRING_EQUAL(rep.rows[1].tags[KG_KEYS_TAG_COMPONENT], "");
    CU_ASSERT(rep.rows[1].has_fresh && rep.rows[1].fresh && rep.rows[1].never_fetched);
    CU_ASSERT(rep.rows[1].has_created && rep.rows[1].created == 1000);
    CU_ASSERT(rep.rows[1].has_last_use && rep.rows[1].last_use == 5000);
    CU_ASSERT(rep.rows[2].has_created && rep.rows[2].created == 2000);
    CU_ASSERT_FALSE(rep.rows[2].has_fresh);
    CU_ASSERT_STRING_EQUAL(rep.rows[2].tags[KG_KEYS_TAG_NAME], "");
    CU_ASSERT_FALSE(rep.rows[2].has_last_use);
    CU_ASSERT_FALSE(rep.rows[0].has_created);
    CU_ASSERT(rep.rows[5].destroyed && !rep.rows[5].unused);
    CU_ASSERT(rep.rows[0].unused && rep.rows[1].unused); /* --unused-days 0 */
    CU_ASSERT_EQUAL(rep.by_state[KG_STATE_ACTIVE], STORE_OBJECTS - 1);
    CU_ASSERT_EQUAL(rep.by_state[KG_STATE_DESTROYED], 1);
    CU_ASSERT_EQUAL(rep.unused, STORE_OBJECTS - 1);
    CU_ASSERT_EQUAL(rep.component_count, 1); /* every x-Component is "" */
    CU_ASSERT_EQUAL(rep.components[0].count, STORE_OBJECTS);
    kg_keys_report_cleanup(&rep);
    CU_ASSERT_PTR_NULL(rep.rows);

    o.group = "admin";
    CU_ASSERT_FATAL(kg_ok(kg_keys_report_build(store, NULL, &o, &rep)));
    CU_ASSERT_EQUAL(rep.count, STORE_OBJECTS / 2);
    for (size_t i = 0; i < rep.count; i++) {
        CU_ASSERT_STRING_EQUAL(rep.rows[i].group, "admin");
        CU_ASSERT_FALSE(rep.rows[i].has_last_use); /* no uses given */
    }
    kg_keys_report_cleanup(&rep);
    o.group = "nobody";
    CU_ASSERT_FATAL(kg_ok(kg_keys_report_build(store, uses, &o, &rep)));
    CU_ASSERT_EQUAL(rep.count, 0);
    CU_ASSERT_EQUAL(rep.component_count, 0);
    kg_keys_report_cleanup(&rep);

    kg_keys_uses_free(uses);
    kg_store_close(store);
    unlink(path);
    snprintf(path, sizeof(path), "%s/kmipgw.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/kmipgw.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

static void test_format_names(void)
{
    enum kg_keys_format f = KG_KEYS_FORMAT_TEXT;

    CU_ASSERT(kg_keys_format_parse("csv", &f) && f == KG_KEYS_FORMAT_CSV);
    CU_ASSERT(kg_keys_format_parse("json", &f) && f == KG_KEYS_FORMAT_JSON);
    CU_ASSERT(kg_keys_format_parse("text", &f) && f == KG_KEYS_FORMAT_TEXT);
    CU_ASSERT_FALSE(kg_keys_format_parse("CSV", &f));
    CU_ASSERT_FALSE(kg_keys_format_parse("", &f));
    CU_ASSERT_FALSE(kg_keys_format_parse("xml", &f));
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_which_records_are_uses),
        KG_TEST(test_malformed_lines),
        KG_TEST(test_parse_time),
        KG_TEST(test_latest_use_wins_and_table_grows),
        KG_TEST(test_scan_file),
        KG_TEST(test_fuzz_lines),
        KG_TEST(test_text_escaping),
        KG_TEST(test_csv_escaping),
        KG_TEST(test_json_escaping),
        KG_TEST(test_flags),
        KG_TEST(test_report_formats),
        KG_TEST(test_report_from_store),
        KG_TEST(test_format_names),
    };

    return kg_test_run("keys", cases, sizeof(cases) / sizeof(cases[0]));
}
