/*
 * kg_audit.c - the hash-chained JSON-lines audit log and the stderr log.
 *
 * The format and the guarantees are in kg_audit.h; the checker is in
 * kg_audit_verify.c. Here: building a line (outside the lock), chaining and
 * writing it (inside), and picking the chain up again from an existing file.
 */
#include "kg_audit.h"
#include "kg_kmip.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A record's members after "seq" and "prev". Budgets below keep a request
 * record under 10 KiB: 9 strings x 514 + 16 OUs x 259 + names and numbers. */
#define KG_AUDIT_BODY_MAX 12288u
#define KG_AUDIT_VALUE_BUDGET 512u
#define KG_AUDIT_OU_BUDGET 256u
#define KG_AUDIT_MAX_OUS 16u
/* Newline ending a fragment, {"seq":<20 digits>,"prev":"<64 hex>", newline. */
#define KG_AUDIT_PREFIX_MAX 112u

struct kg_audit {
    pthread_mutex_t lock; /* guards every member below but path and fd */
    int fd;               /* -1: stderr only */
    char *path;           /* for messages; NULL when stderr only */
    EVP_MD *sha256;       /* fetched once: no implicit fetch per record */
    uint64_t seq;         /* seq of the last record in the chain, 0: none */
    uint8_t head[32];     /* SHA-256 of that record's line; zeros: none */
    /* The file ends in a whole record that lacks its newline. */
    bool need_newline;
    /* The file ends inside a line of ours: end it and write "resume" first. */
    bool fragment;
    uint8_t fragment_hash[32];
    size_t fragment_len;
    /* Records not written since the last success, and why. */
    uint64_t lost;
    int lost_errno;
};

/* Bounded line under construction. Capacities are sized so that `overflow`
 * cannot happen; it is checked anyway and turns into a "truncated" mark. */
struct kg_audit_buf {
    char *data;
    size_t cap;
    size_t len;
    bool truncated; /* a value was cut to its budget */
    bool overflow;  /* something did not fit at all */
};

static void kg_audit_hex(const uint8_t md[32], char hex[KG_AUDIT_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

static bool kg_audit_sha256(const EVP_MD *md, const void *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;

    return EVP_Digest(data, len, out, &out_len, md, NULL) == 1 && out_len == 32;
}

/* ---- building a line ---- */

static void kg_audit_buf_raw(struct kg_audit_buf *b, const char *s, size_t n)
{
    if (b->cap - b->len < n) {
        b->overflow = true;
        return;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void kg_audit_buf_cstr(struct kg_audit_buf *b, const char *s)
{
    kg_audit_buf_raw(b, s, strlen(s));
}

/*
 * Append `s` as a JSON string, quotes included, with at most `budget` bytes
 * between the quotes. Escaping is what keeps a hostile value inside its
 * member: '"' and '\\' are escaped, every control byte (and DEL) becomes
 * \u00XX, and a byte that does not start well-formed UTF-8 becomes \ufffd
 * so the line stays valid JSON for every reader. A value cut to its budget
 * is cut between characters, never inside an escape or a UTF-8 sequence.
 */
static void kg_audit_buf_string(struct kg_audit_buf *b, const char *s, size_t budget)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)(s != NULL ? s : "");
    size_t left = strlen((const char *)p);
    size_t used = 0;

    kg_audit_buf_raw(b, "\"", 1);
    while (left > 0) {
        char esc[6];
        const char *unit = esc;
        size_t unit_len, adv;

        if (p[0] == '"' || p[0] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)p[0];
            unit_len = 2;
            adv = 1;
        } else if (p[0] < 0x20 || p[0] == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = digits[p[0] >> 4];
            esc[5] = digits[p[0] & 15];
            unit_len = 6;
            adv = 1;
        } else if ((adv = kg_audit_utf8_len(p, left)) > 0) {
            unit = (const char *)p;
            unit_len = adv;
        } else {
            unit = "\\ufffd";
            unit_len = 6;
            adv = 1;
        }
        if (budget - used < unit_len) {
            b->truncated = true;
            break;
        }
        kg_audit_buf_raw(b, unit, unit_len);
        used += unit_len;
        p += adv;
        left -= adv;
    }
    kg_audit_buf_raw(b, "\"", 1);
}

/* ,"key": then the string value. Keys are ours: plain ASCII. */
static void kg_audit_buf_member(struct kg_audit_buf *b, const char *key, const char *value)
{
    kg_audit_buf_raw(b, ",\"", 2);
    kg_audit_buf_cstr(b, key);
    kg_audit_buf_raw(b, "\":", 2);
    kg_audit_buf_string(b, value, KG_AUDIT_VALUE_BUDGET);
}

/* "time":"...": the first member of every body. */
static void kg_audit_buf_time(struct kg_audit_buf *b, int64_t when)
{
    char text[64];
    struct tm tm;
    time_t t = (time_t)when;

    if (gmtime_r(&t, &tm) == NULL || strftime(text, sizeof(text), "\"time\":\"%Y-%m-%dT%H:%M:%SZ\"", &tm) == 0) {
        snprintf(text, sizeof(text), "\"time\":\"@%" PRId64 "\"", when);
    }
    kg_audit_buf_cstr(b, text);
}

/* Close the body: the truncation mark if needed, then '}'. The buffer keeps
 * room for these (cap is reduced by the callers' reserve). */
static void kg_audit_buf_finish(struct kg_audit_buf *b)
{
    static const char mark[] = ",\"truncated\":true";

    b->cap += sizeof(mark); /* the reserve, see kg_audit_buf_init */
    if (b->truncated || b->overflow) {
        kg_audit_buf_raw(b, mark, sizeof(mark) - 1);
    }
    kg_audit_buf_raw(b, "}", 1);
}

static void kg_audit_buf_init(struct kg_audit_buf *b, char *data, size_t cap)
{
    /* Reserve the room kg_audit_buf_finish needs, so an overflowing value
     * can never cost the record its closing brace. */
    *b = (struct kg_audit_buf){ .data = data, .cap = cap - sizeof(",\"truncated\":true") };
}

static void kg_audit_body_request(struct kg_audit_buf *b, const struct kg_audit_record *rec)
{
    const struct kg_identity *id = rec->identity;
    size_t ou_count = id != NULL ? id->ou_count : 0;
    char num[32];

    kg_audit_buf_time(b, rec->time);
    kg_audit_buf_member(b, "cn", id != NULL ? id->cn : "");
    kg_audit_buf_raw(b, ",\"ou\":[", 7);
    if (ou_count > KG_AUDIT_MAX_OUS) {
        ou_count = KG_AUDIT_MAX_OUS;
        b->truncated = true;
    }
    for (size_t i = 0; i < ou_count; i++) {
        if (i > 0) {
            kg_audit_buf_raw(b, ",", 1);
        }
        kg_audit_buf_string(b, id->ous[i], KG_AUDIT_OU_BUDGET);
    }
    kg_audit_buf_raw(b, "]", 1);
    kg_audit_buf_member(b, "serial", id != NULL ? id->serial : "");
    kg_audit_buf_member(b, "fingerprint", id != NULL ? id->fingerprint : "");
    kg_audit_buf_member(b, "group", rec->group != NULL ? rec->group : "");
    kg_audit_buf_member(b, "operation", rec->operation != NULL ? rec->operation : "");
    kg_audit_buf_member(b, "uid", rec->uid != NULL ? rec->uid : "");
    kg_audit_buf_member(b, "decision", rec->decision != NULL ? rec->decision : "");
    if (rec->rule != NULL) {
        /* Every decision names its rule, so a denial can be traced to the
         * line of the policy that made it. */
        kg_audit_buf_member(b, "rule", rec->rule);
        snprintf(num, sizeof(num), ",\"rule_line\":%u", rec->rule_line);
        kg_audit_buf_cstr(b, num);
    }
    /* 2 is Operation Pending: an item deferred by an Asynchronous Indicator. */
    kg_audit_buf_member(b, "result",
                        rec->status == KG_STATUS_SUCCESS   ? "success"
                        : rec->status == KG_STATUS_PENDING ? "pending"
                        : rec->status == KG_STATUS_UNDONE  ? "undone"
                                                           : "failed");
    snprintf(num, sizeof(num), ",\"reason\":%" PRIu32, rec->reason);
    kg_audit_buf_cstr(b, num);
    if (rec->note != NULL) {
        kg_audit_buf_member(b, "note", rec->note);
    }
    kg_audit_buf_finish(b);
}

/* `partial` is the fragment's hash for a "resume" event, else NULL. */
static void kg_audit_body_event(struct kg_audit_buf *b, const char *event, const char *detail,
                                const uint8_t *partial)
{
    kg_audit_buf_time(b, (int64_t)time(NULL));
    kg_audit_buf_member(b, "event", event);
    kg_audit_buf_member(b, "detail", detail != NULL ? detail : "");
    if (partial != NULL) {
        char hex[KG_AUDIT_HASH_HEX];

        kg_audit_hex(partial, hex);
        kg_audit_buf_member(b, "partial_sha256", hex);
    }
    kg_audit_buf_finish(b);
}

/* ---- chaining and writing (all _locked: the caller holds a->lock) ---- */

/* write(2) until done or an error; returns the bytes written. */
static size_t kg_audit_write_all(int fd, const char *data, size_t len, int *err)
{
    size_t done = 0;

    *err = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            *err = n < 0 ? errno : EIO;
            break;
        }
        done += (size_t)n;
    }
    return done;
}

/* The record went nowhere but stderr: say so there, without seq and prev,
 * so that no two echoed lines claim the same seq. */
static void kg_audit_echo_unwritten(const struct kg_audit_buf *body)
{
    fprintf(stderr, "{\"level\":\"audit\",\"written\":false,%.*s\n", (int)body->len, body->data);
}

/*
 * Chain `body` onto the head and write it with one write(2): the newline
 * that ends an earlier fragment (if any), the line, its newline. The chain
 * advances only when the whole record reached the file; a short write
 * leaves a fragment that the next record first accounts for.
 */
static bool kg_audit_emit_locked(struct kg_audit *a, const struct kg_audit_buf *body)
{
    char line[KG_AUDIT_PREFIX_MAX + KG_AUDIT_BODY_MAX];
    char prev[KG_AUDIT_HASH_HEX];
    uint8_t md[32];
    bool lead = a->fd >= 0 && (a->need_newline || a->fragment);
    size_t start = lead ? 1 : 0, len, line_len, written, line_written;
    int n, err = 0;

    line[0] = '\n';
    kg_audit_hex(a->head, prev);
    n = snprintf(line + start, KG_AUDIT_PREFIX_MAX - start, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\",", a->seq + 1, prev);
    if (n < 0 || (size_t)n >= KG_AUDIT_PREFIX_MAX - start || body->len > KG_AUDIT_BODY_MAX) {
        a->lost_errno = EOVERFLOW;
        return false;
    }
    len = start + (size_t)n;
    memcpy(line + len, body->data, body->len);
    len += body->len;
    line_len = len - start;
    if (!kg_audit_sha256(a->sha256, line + start, line_len, md)) {
        a->lost_errno = EIO;
        return false;
    }
    line[len++] = '\n';

    written = a->fd >= 0 ? kg_audit_write_all(a->fd, line, len, &err) : len;
    if (written == 0) {
        a->lost_errno = err;
        return false;
    }
    if (lead) {
        /* Whatever the rest did, the old tail now ends in a newline. */
        a->need_newline = false;
        a->fragment = false;
    }
    line_written = written > start ? written - start : 0;
    if (line_written >= line_len) {
        a->seq++;
        memcpy(a->head, md, sizeof(md));
        a->need_newline = line_written == line_len; /* only the newline is missing */
        if (a->fd < 0) {
            /* Without an audit file, stderr is the audit trail. With one,
             * echoing every record would double the log volume for nothing. */
            fprintf(stderr, "{\"level\":\"audit\",%.*s", (int)(len - start - 1), line + start + 1);
        }
        return true;
    }
    if (line_written > 0 && kg_audit_sha256(a->sha256, line + start, line_written, a->fragment_hash)) {
        a->fragment = true;
        a->fragment_len = line_written;
    }
    a->lost_errno = err;
    return false;
}

/* The "resume" record that accounts for a fragment at the end of the file. */
static bool kg_audit_resume_locked(struct kg_audit *a)
{
    char data[KG_AUDIT_BODY_MAX];
    char detail[160];
    struct kg_audit_buf b;

    snprintf(detail, sizeof(detail),
             "the file ended inside a record: %zu bytes after seq %" PRIu64 " set aside, hash in partial_sha256",
             a->fragment_len, a->seq);
    kg_audit_buf_init(&b, data, sizeof(data));
    kg_audit_body_event(&b, "resume", detail, a->fragment_hash);
    if (!kg_audit_emit_locked(a, &b)) {
        return false;
    }
    kg_log("warn", "audit log %s: %s", a->path != NULL ? a->path : "(stderr)", detail);
    return true;
}

static bool kg_audit_lost_locked(struct kg_audit *a)
{
    char data[KG_AUDIT_BODY_MAX];
    char detail[200];
    struct kg_audit_buf b;

    snprintf(detail, sizeof(detail), "%" PRIu64 " record%s could not be written (%s); they are in the stderr log",
             a->lost, a->lost == 1 ? "" : "s", strerror(a->lost_errno));
    kg_audit_buf_init(&b, data, sizeof(data));
    kg_audit_body_event(&b, "records-lost", detail, NULL);
    if (!kg_audit_emit_locked(a, &b)) {
        return false;
    }
    a->lost = 0;
    return true;
}

/* Account for an earlier fragment and earlier losses, then write `body`. */
static void kg_audit_append_locked(struct kg_audit *a, const struct kg_audit_buf *body)
{
    if (a->fd >= 0 && a->fragment && !kg_audit_resume_locked(a)) {
        goto lost;
    }
    if (a->fd >= 0 && a->lost > 0 && !kg_audit_lost_locked(a)) {
        goto lost;
    }
    if (kg_audit_emit_locked(a, body)) {
        return;
    }
lost:
    a->lost++;
    kg_audit_echo_unwritten(body);
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"audit write failed: %s\"}\n", strerror(a->lost_errno));
}

/* ---- public ---- */

void kg_audit_write(struct kg_audit *a, const struct kg_audit_record *rec)
{
    char data[KG_AUDIT_BODY_MAX];
    struct kg_audit_buf b;

    /* Built before taking the lock: escaping is the slow part. */
    kg_audit_buf_init(&b, data, sizeof(data));
    kg_audit_body_request(&b, rec);
    if (a == NULL) {
        fprintf(stderr, "{\"level\":\"audit\",%.*s\n", (int)b.len, b.data);
        return;
    }
    pthread_mutex_lock(&a->lock);
    kg_audit_append_locked(a, &b);
    pthread_mutex_unlock(&a->lock);
}

void kg_audit_head(struct kg_audit *a, uint64_t *seq, char hex[KG_AUDIT_HASH_HEX])
{
    static const uint8_t zero[32];

    if (a == NULL) {
        *seq = 0;
        kg_audit_hex(zero, hex);
        return;
    }
    pthread_mutex_lock(&a->lock);
    *seq = a->seq;
    kg_audit_hex(a->head, hex);
    pthread_mutex_unlock(&a->lock);
}

void kg_audit_event(struct kg_audit *a, const char *event, const char *detail)
{
    char data[KG_AUDIT_BODY_MAX];
    char hex[KG_AUDIT_HASH_HEX];
    struct kg_audit_buf b;
    uint64_t seq;

    kg_audit_buf_init(&b, data, sizeof(data));
    kg_audit_body_event(&b, event != NULL ? event : "", detail, NULL);
    if (a == NULL) {
        fprintf(stderr, "{\"level\":\"audit\",%.*s\n", (int)b.len, b.data);
        return;
    }
    pthread_mutex_lock(&a->lock);
    kg_audit_append_locked(a, &b);
    seq = a->seq;
    kg_audit_hex(a->head, hex);
    pthread_mutex_unlock(&a->lock);
    /* The anchor: a copy of the head outside the file (kg_audit.h). */
    kg_log("info", "audit head seq %" PRIu64 " sha256 %s", seq, hex);
}

/* ---- opening ---- */

#define KG_AUDIT_FAIL(rc, code, ...)                \
    do {                                            \
        kg_error_set((code), __FILE__, __LINE__);   \
        kg_error_detail(__VA_ARGS__);               \
        (rc) = KG_RESULT_ERROR;                     \
        goto out;                                   \
    } while (0)

static bool kg_audit_pread_all(int fd, char *buf, size_t len, off_t at)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, at + (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

/* Index of the last '\n' in buf[0..end), or -1. */
static long kg_audit_last_newline(const char *buf, size_t end)
{
    const char *p = memrchr(buf, '\n', end);

    return p != NULL ? (long)(p - buf) : -1;
}

/*
 * Pick the chain up from the end of an existing file of `size` bytes. The
 * last complete line and a fragment after it are each at most
 * KG_AUDIT_MAX_LINE bytes, so the window below holds both with the newline
 * before them whenever the file is well formed.
 */
static kg_result kg_audit_load_tail(struct kg_audit *a, off_t size)
{
    size_t window = (size_t)size < 2 * ((size_t)KG_AUDIT_MAX_LINE + 1) ? (size_t)size
                                                                    : 2 * ((size_t)KG_AUDIT_MAX_LINE + 1);
    off_t base = size - (off_t)window;
    char *buf = NULL;
    size_t frag_start, frag_len = 0;
    struct kg_audit_line last;
    const char *why = NULL;
    kg_result rc = KG_RESULT_OK;
    long nl;

    if (size == 0) {
        goto out; /* a new file: a new chain */
    }
    buf = malloc(window);
    KG_GOTO_ENSURE(rc, buf != NULL, KG_ERR_NOMEM);
    if (!kg_audit_pread_all(a->fd, buf, window, base)) {
        KG_AUDIT_FAIL(rc, KG_ERR_IO, "cannot read audit log %s: %s", a->path, strerror(errno));
    }
    /* The fragment: bytes after the last newline. */
    nl = kg_audit_last_newline(buf, window);
    if (nl < 0 && base > 0) {
        KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "audit log %s: its last line is longer than %u bytes; move it aside",
                      a->path, KG_AUDIT_MAX_LINE);
    }
    frag_start = nl < 0 ? 0 : (size_t)nl + 1;
    frag_len = window - frag_start;
    if (frag_len > KG_AUDIT_MAX_LINE) {
        KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "audit log %s: its last line is longer than %u bytes; move it aside",
                      a->path, KG_AUDIT_MAX_LINE);
    }
    /* The last complete line, before the newline at nl. */
    if (nl >= 0) {
        long before = kg_audit_last_newline(buf, (size_t)nl);
        size_t line_start = before < 0 ? 0 : (size_t)before + 1;

        if (before < 0 && base > 0) {
            KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "audit log %s: its last line is longer than %u bytes; move it aside",
                          a->path, KG_AUDIT_MAX_LINE);
        }
        if (!kg_audit_parse_line(buf + line_start, (size_t)nl - line_start, &last, &why)) {
            KG_AUDIT_FAIL(rc, KG_ERR_CONFIG,
                          "audit log %s: its last line is not a chained audit record (%s); "
                          "check it with kmipgw audit verify and move it aside",
                          a->path, why);
        }
        if (!kg_audit_sha256(a->sha256, buf + line_start, (size_t)nl - line_start, a->head)) {
            KG_AUDIT_FAIL(rc, KG_ERR_INTERNAL, "SHA-256 failed");
        }
        a->seq = last.seq;
    }
    if (frag_len > 0) {
        uint8_t md[32];

        if (!kg_audit_sha256(a->sha256, buf + frag_start, frag_len, md)) {
            KG_AUDIT_FAIL(rc, KG_ERR_INTERNAL, "SHA-256 failed");
        }
        if (kg_audit_parse_line(buf + frag_start, frag_len, &last, &why) && last.seq == a->seq + 1 &&
            memcmp(last.prev, a->head, 32) == 0) {
            /* A whole record that only lost its newline: it is in the chain. */
            a->seq = last.seq;
            memcpy(a->head, md, sizeof(md));
            a->need_newline = true;
        } else {
            a->fragment = true;
            a->fragment_len = frag_len;
            memcpy(a->fragment_hash, md, sizeof(md));
        }
    }
out:
    free(buf);
    return rc;
}

kg_result kg_audit_open(const char *path, struct kg_audit **out)
{
    static const pthread_mutex_t mutex_init = PTHREAD_MUTEX_INITIALIZER;
    struct kg_audit *a = NULL;
    struct stat st;
    char hex[KG_AUDIT_HASH_HEX];
    kg_result rc = KG_RESULT_OK;

    *out = NULL;
    a = calloc(1, sizeof(*a));
    KG_GOTO_ENSURE(rc, a != NULL, KG_ERR_NOMEM);
    a->fd = -1;
    /* A default mutex cannot fail to initialise this way, so kg_audit_close
     * may always destroy it. */
    a->lock = mutex_init;
    a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    KG_GOTO_ENSURE(rc, a->sha256 != NULL, KG_ERR_INTERNAL);
    if (path != NULL) {
        a->path = strdup(path);
        KG_GOTO_ENSURE(rc, a->path != NULL, KG_ERR_NOMEM);
        /* O_RDWR only to read the tail back; every write appends. */
        a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (a->fd < 0) {
            KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "cannot open audit log %s: %s", path, strerror(errno));
        }
        if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "audit log %s is not a regular file", path);
        }
        /* A second writer would fork the chain. */
        if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
            KG_AUDIT_FAIL(rc, KG_ERR_CONFIG, "audit log %s is in use by another process (%s)", path,
                          strerror(errno));
        }
        if ((st.st_mode & 077) != 0) {
            kg_log("warn", "audit log %s is readable or writable by others (mode %03o)", path,
                   (unsigned)(st.st_mode & 0777));
        }
        KG_GOTO_GUARD(rc, kg_audit_load_tail(a, st.st_size));
        if (a->fragment) {
            pthread_mutex_lock(&a->lock);
            if (!kg_audit_resume_locked(a)) {
                kg_log("error", "audit log %s: cannot write the resume record: %s", path, strerror(a->lost_errno));
            }
            pthread_mutex_unlock(&a->lock);
        }
    }
    kg_audit_hex(a->head, hex);
    kg_log("info", "audit log %s: %s; audit head seq %" PRIu64 " sha256 %s", path != NULL ? path : "(stderr only)",
           a->seq == 0 ? "new chain" : "chain continues", a->seq, hex);
    *out = a;
    a = NULL;
out:
    kg_audit_close(a);
    return rc;
}

void kg_audit_close(struct kg_audit *a)
{
    if (a == NULL) {
        return;
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    EVP_MD_free(a->sha256);
    free(a->path);
    pthread_mutex_destroy(&a->lock);
    memset(a, 0, sizeof(*a));
    free(a);
}

/* ---- the stderr log ---- */

void kg_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    char data[4096];
    struct kg_audit_buf b;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kg_audit_buf_init(&b, data, sizeof(data));
    kg_audit_buf_raw(&b, "{", 1);
    kg_audit_buf_time(&b, (int64_t)time(NULL));
    kg_audit_buf_member(&b, "level", level);
    kg_audit_buf_raw(&b, ",\"msg\":", 7);
    kg_audit_buf_string(&b, msg, 2048);
    kg_audit_buf_finish(&b);
    kg_audit_buf_raw(&b, "\n", 1);
    fwrite(b.data, 1, b.len, stderr);
}
