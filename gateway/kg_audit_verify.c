/*
 * kg_audit_verify.c - reading the audit chain back: the line parser shared
 * with kg_audit_open, and the checker behind `kmipgw audit verify`.
 *
 * The parser is not a general JSON parser: it accepts exactly the flat
 * objects the writer produces (string, number, true/false/null and arrays of
 * those as values) and pulls out the four members the chain needs. It does
 * parse every string with its escapes, so text that looks like "seq":1
 * inside a value is never taken for a member.
 *
 * The checker reads line by line with a bound on the line length, keeps the
 * last record that was accepted into the chain (seq, hash, line number) and
 * looks one line ahead, which is enough to tell a deleted record from two
 * swapped ones and an inserted record from the genuine one beside it.
 */
#include "kg_audit.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ---- */

size_t kg_audit_utf8_len(const uint8_t *p, size_t n)
{
    uint8_t lo = 0x80, hi = 0xbf;

    if (n == 0) {
        return 0;
    }
    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        /* E0: no overlong forms; ED: no UTF-16 surrogates. */
        lo = p[0] == 0xe0 ? 0xa0 : 0x80;
        hi = p[0] == 0xed ? 0x9f : 0xbf;
        return n >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        /* F0: no overlong forms; F4: nothing above U+10FFFF. */
        lo = p[0] == 0xf0 ? 0x90 : 0x80;
        hi = p[0] == 0xf4 ? 0x8f : 0xbf;
        return n >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* ---- the line parser ---- */

struct kg_audit_json {
    const uint8_t *p;
    size_t len;
    size_t pos;
    const char *why; /* first error */
};

/* Decoded text of a key or of a member value we need; longer text is only
 * validated and marked `overlong`, so it matches nothing. */
struct kg_audit_text {
    char s[KG_AUDIT_TEXT_MAX];
    size_t len;
    bool overlong;
};

static bool kg_audit_json_fail(struct kg_audit_json *j, const char *why)
{
    if (j->why == NULL) {
        j->why = why;
    }
    return false;
}

static void kg_audit_json_ws(struct kg_audit_json *j)
{
    while (j->len - j->pos > 0 && (j->p[j->pos] == ' ' || j->p[j->pos] == '\t' || j->p[j->pos] == '\r')) {
        j->pos++;
    }
}

static bool kg_audit_json_byte(struct kg_audit_json *j, uint8_t c)
{
    if (j->len - j->pos > 0 && j->p[j->pos] == c) {
        j->pos++;
        return true;
    }
    return false;
}

static int kg_audit_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void kg_audit_text_put(struct kg_audit_text *t, uint8_t c)
{
    if (t == NULL) {
        return;
    }
    if (t->len < sizeof(t->s) - 1) {
        t->s[t->len++] = (char)c;
        t->s[t->len] = '\0';
    } else {
        t->overlong = true;
    }
}

/* A string at pos (the opening quote); its decoded text into `t` when not
 * NULL. Non-ASCII characters decode to one 0x80 byte: the members we look
 * for are ASCII, so that is all a comparison needs. */
static bool kg_audit_json_string(struct kg_audit_json *j, struct kg_audit_text *t)
{
    if (t != NULL) {
        *t = (struct kg_audit_text){ .len = 0 };
    }
    if (!kg_audit_json_byte(j, '"')) {
        return kg_audit_json_fail(j, "expected a string");
    }
    for (;;) {
        uint8_t c;
        size_t n;

        if (j->len - j->pos == 0) {
            return kg_audit_json_fail(j, "unterminated string");
        }
        c = j->p[j->pos];
        if (c == '"') {
            j->pos++;
            return true;
        }
        if (c < 0x20) {
            return kg_audit_json_fail(j, "control character in a string");
        }
        if (c == '\\') {
            static const char simple[] = "\"\\/bfnrt";
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            const char *hit;

            if (j->len - j->pos < 2) {
                return kg_audit_json_fail(j, "unterminated string");
            }
            c = j->p[j->pos + 1];
            if (c == 'u') {
                int v = 0;

                if (j->len - j->pos < 6) {
                    return kg_audit_json_fail(j, "bad \\u escape");
                }
                for (size_t i = 2; i < 6; i++) {
                    int h = kg_audit_hexval(j->p[j->pos + i]);
                    if (h < 0) {
                        return kg_audit_json_fail(j, "bad \\u escape");
                    }
                    v = v * 16 + h;
                }
                kg_audit_text_put(t, v < 0x80 ? (uint8_t)v : 0x80);
                j->pos += 6;
                continue;
            }
            hit = c != '\0' ? strchr(simple, c) : NULL;
            if (hit == NULL) {
                return kg_audit_json_fail(j, "bad escape in a string");
            }
            kg_audit_text_put(t, (uint8_t)decoded[hit - simple]);
            j->pos += 2;
            continue;
        }
        n = kg_audit_utf8_len(j->p + j->pos, j->len - j->pos);
        if (n == 0) {
            return kg_audit_json_fail(j, "invalid UTF-8");
        }
        kg_audit_text_put(t, n == 1 ? c : 0x80);
        j->pos += n;
    }
}

/* A JSON number; [start, end) is its text. */
static bool kg_audit_json_number(struct kg_audit_json *j, size_t *start, size_t *end)
{
    size_t digits;

    *start = j->pos;
    (void)kg_audit_json_byte(j, '-');
    digits = j->pos;
    if (kg_audit_json_byte(j, '0')) {
        /* no leading zeros */
    } else {
        while (j->len - j->pos > 0 && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
            j->pos++;
        }
    }
    if (j->pos == digits) {
        return kg_audit_json_fail(j, "bad number");
    }
    if (kg_audit_json_byte(j, '.')) {
        digits = j->pos;
        while (j->len - j->pos > 0 && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
            j->pos++;
        }
        if (j->pos == digits) {
            return kg_audit_json_fail(j, "bad number");
        }
    }
    if (kg_audit_json_byte(j, 'e') || kg_audit_json_byte(j, 'E')) {
        if (!kg_audit_json_byte(j, '+')) {
            (void)kg_audit_json_byte(j, '-');
        }
        digits = j->pos;
        while (j->len - j->pos > 0 && j->p[j->pos] >= '0' && j->p[j->pos] <= '9') {
            j->pos++;
        }
        if (j->pos == digits) {
            return kg_audit_json_fail(j, "bad number");
        }
    }
    *end = j->pos;
    return true;
}

static bool kg_audit_json_word(struct kg_audit_json *j, const char *word)
{
    size_t n = strlen(word);

    if (j->len - j->pos >= n && memcmp(j->p + j->pos, word, n) == 0) {
        j->pos += n;
        return true;
    }
    return kg_audit_json_fail(j, "bad value");
}

enum kg_audit_value_kind { KG_AUDIT_V_STRING, KG_AUDIT_V_NUMBER, KG_AUDIT_V_OTHER };

struct kg_audit_value {
    enum kg_audit_value_kind kind;
    struct kg_audit_text text; /* strings */
    size_t start, end;         /* numbers */
};

/* A scalar value, or (when `array_ok`) an array of scalars. */
static bool kg_audit_json_value(struct kg_audit_json *j, struct kg_audit_value *v, bool array_ok)
{
    uint8_t c;

    v->kind = KG_AUDIT_V_OTHER;
    if (j->len - j->pos == 0) {
        return kg_audit_json_fail(j, "missing value");
    }
    c = j->p[j->pos];
    switch (c) {
    case '"':
        v->kind = KG_AUDIT_V_STRING;
        return kg_audit_json_string(j, &v->text);
    case 't':
        return kg_audit_json_word(j, "true");
    case 'f':
        return kg_audit_json_word(j, "false");
    case 'n':
        return kg_audit_json_word(j, "null");
    case '{':
        return kg_audit_json_fail(j, "nested object");
    case '[': {
        struct kg_audit_value item;

        if (!array_ok) {
            return kg_audit_json_fail(j, "nested array");
        }
        j->pos++;
        kg_audit_json_ws(j);
        if (kg_audit_json_byte(j, ']')) {
            return true;
        }
        for (;;) {
            kg_audit_json_ws(j);
            if (!kg_audit_json_value(j, &item, false)) {
                return false;
            }
            kg_audit_json_ws(j);
            if (kg_audit_json_byte(j, ']')) {
                return true;
            }
            if (!kg_audit_json_byte(j, ',')) {
                return kg_audit_json_fail(j, "expected ',' or ']' in an array");
            }
        }
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            v->kind = KG_AUDIT_V_NUMBER;
            return kg_audit_json_number(j, &v->start, &v->end);
        }
        return kg_audit_json_fail(j, "bad value");
    }
}

/* 64 lowercase hex digits into 32 bytes. */
static bool kg_audit_hash_from_text(const char *t, uint8_t out[32])
{
    if (strlen(t) != 64) {
        return false;
    }
    for (size_t i = 0; i < 32; i++) {
        uint8_t hi = (uint8_t)t[2 * i], lo = (uint8_t)t[2 * i + 1];
        if ((hi >= 'A' && hi <= 'F') || (lo >= 'A' && lo <= 'F')) {
            return false; /* one spelling per hash */
        }
        int h = kg_audit_hexval(hi), l = kg_audit_hexval(lo);
        if (h < 0 || l < 0) {
            return false;
        }
        out[i] = (uint8_t)(h * 16 + l);
    }
    return true;
}

/* A positive integer of at most 18 digits: no sign, fraction or exponent,
 * one spelling per number. */
static bool kg_audit_seq_from_number(const struct kg_audit_member *m, uint64_t *out)
{
    uint64_t n = 0;

    if (m->kind != KG_AUDIT_MEMBER_NUMBER || m->number_len > 18) {
        return false;
    }
    for (size_t i = 0; i < m->number_len; i++) {
        if (m->number[i] < '0' || m->number[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(m->number[i] - '0');
    }
    *out = n;
    return n > 0;
}

bool kg_audit_parse_members(const char *line, size_t len, kg_audit_member_fn fn, void *ctx, const char **why)
{
    struct kg_audit_json j = { .p = (const uint8_t *)line, .len = len };
    struct kg_audit_text key;
    struct kg_audit_value v;
    struct kg_audit_member m;
    const char *refused;

    *why = NULL;
    if (len == 0) {
        *why = "empty line";
        return false;
    }
    kg_audit_json_ws(&j);
    if (!kg_audit_json_byte(&j, '{')) {
        *why = "not a JSON object";
        return false;
    }
    kg_audit_json_ws(&j);
    if (!kg_audit_json_byte(&j, '}')) {
        for (;;) {
            kg_audit_json_ws(&j);
            if (!kg_audit_json_string(&j, &key)) {
                goto bad;
            }
            kg_audit_json_ws(&j);
            if (!kg_audit_json_byte(&j, ':')) {
                kg_audit_json_fail(&j, "expected ':' after a member name");
                goto bad;
            }
            kg_audit_json_ws(&j);
            if (!kg_audit_json_value(&j, &v, true)) {
                goto bad;
            }
            m = (struct kg_audit_member){
                .name = key.overlong ? NULL : key.s,
                .kind = v.kind == KG_AUDIT_V_STRING   ? KG_AUDIT_MEMBER_STRING
                        : v.kind == KG_AUDIT_V_NUMBER ? KG_AUDIT_MEMBER_NUMBER
                                                      : KG_AUDIT_MEMBER_OTHER,
            };
            if (v.kind == KG_AUDIT_V_STRING && !v.text.overlong) {
                m.text = v.text.s;
            } else if (v.kind == KG_AUDIT_V_NUMBER) {
                m.number = line + v.start;
                m.number_len = v.end - v.start;
            }
            if ((refused = fn(ctx, &m)) != NULL) {
                kg_audit_json_fail(&j, refused);
                goto bad;
            }
            kg_audit_json_ws(&j);
            if (kg_audit_json_byte(&j, '}')) {
                break;
            }
            if (!kg_audit_json_byte(&j, ',')) {
                kg_audit_json_fail(&j, "expected ',' or '}' after a member");
                goto bad;
            }
        }
    }
    kg_audit_json_ws(&j);
    if (j.pos != j.len) {
        kg_audit_json_fail(&j, "bytes after the object");
        goto bad;
    }
    return true;
bad:
    *why = j.why != NULL ? j.why : "malformed";
    return false;
}

/* What kg_audit_parse_line has seen of the four members the chain needs. */
struct kg_audit_chain_members {
    struct kg_audit_line *out;
    bool seen_seq, seen_prev, seen_event, seen_partial;
};

static bool kg_audit_is(const struct kg_audit_member *m, const char *name)
{
    return m->name != NULL && strcmp(m->name, name) == 0;
}

static const char *kg_audit_chain_member(void *arg, const struct kg_audit_member *m)
{
    struct kg_audit_chain_members *c = arg;

    if (kg_audit_is(m, "seq")) {
        if (c->seen_seq) {
            return "two \"seq\" members";
        }
        c->seen_seq = true;
        return kg_audit_seq_from_number(m, &c->out->seq) ? NULL : "\"seq\" is not a positive integer";
    }
    if (kg_audit_is(m, "prev")) {
        if (c->seen_prev) {
            return "two \"prev\" members";
        }
        c->seen_prev = true;
        return m->text != NULL && kg_audit_hash_from_text(m->text, c->out->prev)
                   ? NULL
                   : "\"prev\" is not 64 lowercase hex digits";
    }
    if (kg_audit_is(m, "event")) {
        if (c->seen_event) {
            return "two \"event\" members";
        }
        c->seen_event = true;
        c->out->resume = m->text != NULL && strcmp(m->text, "resume") == 0;
        return NULL;
    }
    if (kg_audit_is(m, "partial_sha256")) {
        if (c->seen_partial) {
            return "two \"partial_sha256\" members";
        }
        c->seen_partial = true;
        c->out->has_partial = true;
        return m->text != NULL && kg_audit_hash_from_text(m->text, c->out->partial)
                   ? NULL
                   : "\"partial_sha256\" is not 64 lowercase hex digits";
    }
    return NULL;
}

bool kg_audit_parse_line(const char *line, size_t len, struct kg_audit_line *out, const char **why)
{
    struct kg_audit_chain_members c = { .out = out };

    memset(out, 0, sizeof(*out));
    if (!kg_audit_parse_members(line, len, kg_audit_chain_member, &c, why)) {
        return false;
    }
    if (!c.seen_seq) {
        *why = "no \"seq\" member";
        return false;
    }
    if (!c.seen_prev) {
        *why = "no \"prev\" member";
        return false;
    }
    return true;
}

/* ---- reading lines ---- */

#define KG_AUDIT_BLOCK 65536u

struct kg_audit_lines {
    FILE *f;
    char *block; /* KG_AUDIT_BLOCK bytes */
    size_t pos, len;
    bool eof;
    char *line; /* KG_AUDIT_MAX_LINE bytes */
    size_t line_len;
};

static enum kg_audit_read kg_audit_reader_next(struct kg_audit_lines *r)
{
    bool too_long = false, any = false;

    r->line_len = 0;
    for (;;) {
        const char *nl;
        size_t chunk;

        if (r->pos == r->len) {
            if (r->eof) {
                if (!any) {
                    return KG_AUDIT_READ_EOF;
                }
                return too_long ? KG_AUDIT_READ_TOO_LONG : KG_AUDIT_READ_LAST;
            }
            r->len = fread(r->block, 1, KG_AUDIT_BLOCK, r->f);
            r->pos = 0;
            if (r->len == 0) {
                if (ferror(r->f)) {
                    return KG_AUDIT_READ_ERROR;
                }
                r->eof = true;
            }
            continue;
        }
        any = true;
        nl = memchr(r->block + r->pos, '\n', r->len - r->pos);
        chunk = nl != NULL ? (size_t)(nl - (r->block + r->pos)) : r->len - r->pos;
        if (!too_long) {
            if (KG_AUDIT_MAX_LINE - r->line_len < chunk) {
                too_long = true;
            } else {
                memcpy(r->line + r->line_len, r->block + r->pos, chunk);
                r->line_len += chunk;
            }
        }
        r->pos += chunk;
        if (nl != NULL) {
            r->pos++;
            return too_long ? KG_AUDIT_READ_TOO_LONG : KG_AUDIT_READ_LINE;
        }
    }
}

kg_result kg_audit_lines_open(const char *path, struct kg_audit_lines **out)
{
    struct kg_audit_lines *r;
    kg_result rc = KG_RESULT_OK;

    *out = NULL;
    r = calloc(1, sizeof(*r));
    KG_ENSURE(r != NULL, KG_ERR_NOMEM);
    r->block = malloc(KG_AUDIT_BLOCK);
    r->line = malloc(KG_AUDIT_MAX_LINE);
    KG_GOTO_ENSURE(rc, r->block != NULL && r->line != NULL, KG_ERR_NOMEM);
    r->f = fopen(path, "rbe");
    if (r->f == NULL) {
        kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
        kg_error_detail("cannot open %s: %s", path, strerror(errno));
        rc = KG_RESULT_ERROR;
        goto out;
    }
    *out = r;
    r = NULL;
out:
    kg_audit_lines_close(r);
    return rc;
}

enum kg_audit_read kg_audit_lines_next(struct kg_audit_lines *r, const char **line, size_t *len)
{
    enum kg_audit_read got = kg_audit_reader_next(r);

    *line = r->line;
    *len = got == KG_AUDIT_READ_TOO_LONG ? 0 : r->line_len;
    return got;
}

void kg_audit_lines_close(struct kg_audit_lines *r)
{
    if (r == NULL) {
        return;
    }
    if (r->f != NULL) {
        fclose(r->f);
    }
    free(r->line);
    free(r->block);
    free(r);
}

/* ---- the checker ---- */

#define KG_AUDIT_MAX_REPORTS 100u

/* What the checker keeps of one line. */
struct kg_audit_vline {
    size_t lineno;
    bool present;
    bool record;      /* parsed: `f` is valid */
    bool complete;    /* ended by a newline */
    bool too_long;
    const char *why;  /* when not a record */
    size_t len;
    uint8_t hash[32]; /* of the line without its newline (not for too_long) */
    struct kg_audit_line f;
};

/* One line of the report. Messages are kept (the first KG_AUDIT_MAX_REPORTS
 * problems and as many notes) and printed in line order at the end, so that
 * a seq jump can be reworded once the records it misses turn up later in
 * the file: they were moved, not deleted. */
struct kg_audit_message {
    size_t lineno;
    size_t order; /* ties keep the order of discovery */
    bool note;
    bool jump;           /* "seq jumps from `from` to `to`" */
    uint64_t from, to;
    uint64_t moved;      /* missing seqs found later */
    size_t moved_line;   /* where the last one was */
    char text[224];
};

struct kg_audit_verifier {
    const char *path;
    size_t records;
    size_t problems;
    size_t notes;
    struct kg_audit_message *msgs; /* 2 * KG_AUDIT_MAX_REPORTS */
    size_t msg_count;
    /* The chain so far: the last record accepted into it. */
    uint64_t seq;
    uint8_t head[32];
    size_t head_line; /* 0: none yet, the start of the file */
    uint8_t head_pred[32]; /* the hash that record followed */
};

static struct kg_audit_message *kg_audit_say(struct kg_audit_verifier *v, size_t lineno, bool note, const char *fmt,
                                             ...) __attribute__((format(printf, 4, 5)));

/* Count a problem (or a note) and keep its message if under the cap. */
static struct kg_audit_message *kg_audit_say(struct kg_audit_verifier *v, size_t lineno, bool note, const char *fmt,
                                             ...)
{
    struct kg_audit_message *m;
    size_t *count = note ? &v->notes : &v->problems;
    va_list ap;

    (*count)++;
    if (*count > KG_AUDIT_MAX_REPORTS || v->msg_count == 2 * KG_AUDIT_MAX_REPORTS) {
        return NULL;
    }
    m = &v->msgs[v->msg_count];
    *m = (struct kg_audit_message){ .lineno = lineno, .order = v->msg_count, .note = note };
    va_start(ap, fmt);
    vsnprintf(m->text, sizeof(m->text), fmt, ap);
    va_end(ap);
    v->msg_count++;
    return m;
}

/* "seq jumps from `from` to `to`", remembered so a later sighting of a
 * missing seq can turn "deleted" into "moved". */
static void kg_audit_say_jump(struct kg_audit_verifier *v, size_t lineno, uint64_t from, uint64_t to)
{
    struct kg_audit_message *m;

    if (from == 0 && to == 2) {
        m = kg_audit_say(v, lineno, false, "first record has seq 2 (record 1 deleted)");
    } else if (from == 0) {
        m = kg_audit_say(v, lineno, false, "first record has seq %" PRIu64 " (records 1 to %" PRIu64 " deleted)", to,
                         to - 1);
    } else if (to - from == 2) {
        m = kg_audit_say(v, lineno, false, "seq jumps from %" PRIu64 " to %" PRIu64 " (record deleted)", from, to);
    } else {
        m = kg_audit_say(v, lineno, false, "seq jumps from %" PRIu64 " to %" PRIu64 " (%" PRIu64 " records deleted)",
                         from, to, to - from - 1);
    }
    if (m != NULL) {
        m->jump = true;
        m->from = from;
        m->to = to;
    }
}

/* A record with seq `seq` showed up at `lineno`, after its place. */
static void kg_audit_found_later(struct kg_audit_verifier *v, uint64_t seq, size_t lineno)
{
    for (size_t i = 0; i < v->msg_count; i++) {
        struct kg_audit_message *m = &v->msgs[i];
        if (m->jump && m->from < seq && seq < m->to && m->moved < m->to - m->from - 1) {
            m->moved++;
            m->moved_line = lineno;
            return;
        }
    }
}

static void kg_audit_reword_jump(struct kg_audit_message *m)
{
    uint64_t missing = m->to - m->from - 1;

    if (m->moved == 0) {
        return;
    }
    if (missing == 1) {
        snprintf(m->text, sizeof(m->text),
                 "seq jumps from %" PRIu64 " to %" PRIu64 " (record seq %" PRIu64 " moved to line %zu: reordered)",
                 m->from, m->to, m->from + 1, m->moved_line);
    } else if (m->moved == missing) {
        snprintf(m->text, sizeof(m->text),
                 "seq jumps from %" PRIu64 " to %" PRIu64 " (the %" PRIu64 " records between moved further down: "
                 "reordered)",
                 m->from, m->to, missing);
    } else {
        snprintf(m->text, sizeof(m->text),
                 "seq jumps from %" PRIu64 " to %" PRIu64 " (%" PRIu64 " records deleted, %" PRIu64
                 " moved further down)",
                 m->from, m->to, missing - m->moved, m->moved);
    }
}

static int kg_audit_message_cmp(const void *a, const void *b)
{
    const struct kg_audit_message *x = a, *y = b;

    if (x->lineno != y->lineno) {
        return x->lineno < y->lineno ? -1 : 1;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

static void kg_audit_accept(struct kg_audit_verifier *v, const struct kg_audit_vline *cur, uint64_t seq)
{
    memcpy(v->head_pred, v->head, 32);
    v->seq = seq;
    memcpy(v->head, cur->hash, 32);
    v->head_line = cur->lineno;
}

/* "line 16" or "the start of the file", for messages. */
static const char *kg_audit_where(const struct kg_audit_verifier *v, char *buf, size_t cap)
{
    if (v->head_line == 0) {
        return "the start of the file";
    }
    snprintf(buf, cap, "line %zu", v->head_line);
    return buf;
}

static bool kg_audit_follows(const struct kg_audit_vline *l, uint64_t seq, const uint8_t hash[32])
{
    return l->present && l->record && l->f.seq == seq && memcmp(l->f.prev, hash, 32) == 0;
}

/* Judge `cur` against the chain so far, seeing `next` (may be absent). */
static void kg_audit_judge(struct kg_audit_verifier *v, const struct kg_audit_vline *cur,
                           const struct kg_audit_vline *next)
{
    char where[48];
    uint64_t s = cur->f.seq, t = v->seq;
    bool links = cur->record && memcmp(cur->f.prev, v->head, 32) == 0;

    if (cur->record) {
        v->records++;
    }
    if (cur->record && s == t + 1 && links) {
        kg_audit_accept(v, cur, s);
        if (!cur->complete) {
            kg_audit_say(v, cur->lineno, true,
                         "note: the last record has no newline (its write was cut short after it)");
        }
        return;
    }
    /* A fragment of an interrupted write, and the resume record after it
     * that carries its hash: the chain itself accounts for it. */
    if (cur->complete && !cur->too_long && next->present && next->record && next->f.resume &&
        next->f.has_partial && memcmp(next->f.partial, cur->hash, 32) == 0 && kg_audit_follows(next, t + 1, v->head)) {
        kg_audit_say(v, cur->lineno, true,
                     "note: an interrupted write left %zu bytes here; the resume record at line %zu accounts for them",
                     cur->len, next->lineno);
        if (cur->record) {
            v->records--;
        }
        return;
    }
    if (!cur->record) {
        if (!cur->complete && !cur->too_long) {
            kg_audit_say(v, cur->lineno, false,
                         "line %zu is incomplete: the file ends inside a record (truncated, or a write in "
                         "progress)",
                         cur->lineno);
        } else if (cur->too_long) {
            kg_audit_say(v, cur->lineno, false, "line %zu is not a record: longer than %u bytes", cur->lineno,
                         KG_AUDIT_MAX_LINE);
        } else {
            kg_audit_say(v, cur->lineno, false, "line %zu is not a record: %s", cur->lineno, cur->why);
        }
        return;
    }
    kg_audit_where(v, where, sizeof(where));
    if (s == t + 1) {
        /* In sequence but not linked. If the next line holds the same seq
         * and does link, this one was put in beside it. */
        if (kg_audit_follows(next, s, v->head)) {
            kg_audit_say(v, cur->lineno, false,
                         "record seq %" PRIu64 " is not part of the chain: line %zu also has seq %" PRIu64
                         " and follows %s (inserted or forged record)",
                         s, next->lineno, s, where);
            return;
        }
        if (v->head_line == 0) {
            kg_audit_say(v, cur->lineno, false,
                         "record seq %" PRIu64 ": prev hash is not 64 zeros, the start of a chain "
                         "(edited record, or records before it deleted)",
                         s);
        } else {
            kg_audit_say(v, cur->lineno, false,
                         "record seq %" PRIu64 ": prev hash does not match %s (edited or deleted record before it)",
                         s, where);
        }
        kg_audit_accept(v, cur, s);
        return;
    }
    if (s > t + 1) {
        if (kg_audit_follows(next, t + 1, v->head)) {
            /* The missing record is the next line: a swap, which the next
             * line reports as "after". */
            kg_audit_accept(v, cur, s);
            return;
        }
        if (links) {
            kg_audit_say(v, cur->lineno, false,
                         "record seq %" PRIu64 ": seq should be %" PRIu64 ", yet prev matches %s (seq edited)", s,
                         t + 1, where);
            kg_audit_accept(v, cur, t + 1);
            return;
        }
        kg_audit_say_jump(v, cur->lineno, t, s);
        kg_audit_accept(v, cur, s);
        return;
    }
    /* s <= t: a seq seen before. */
    if (memcmp(cur->hash, v->head, 32) == 0) {
        kg_audit_say(v, cur->lineno, false, "line %zu duplicates line %zu (record seq %" PRIu64 " repeated)",
                     cur->lineno, v->head_line, s);
        return;
    }
    if (s == t && memcmp(cur->f.prev, v->head_pred, 32) == 0) {
        /* Two records claim the same place; the line after tells which
         * one the chain goes on from. */
        size_t other = v->head_line;

        if (next->present && next->record && memcmp(next->f.prev, cur->hash, 32) == 0) {
            kg_audit_say(v, other, false,
                         "record seq %" PRIu64 " is not part of the chain: line %zu also has seq %" PRIu64
                         " and line %zu follows it (inserted or forged record)",
                         s, cur->lineno, s, next->lineno);
            memcpy(v->head, cur->hash, 32);
            v->head_line = cur->lineno;
        } else {
            kg_audit_say(v, cur->lineno, false,
                         "record seq %" PRIu64 " is not part of the chain: line %zu has the same seq and "
                         "predecessor (inserted or forged record)",
                         s, other);
        }
        return;
    }
    if (links) {
        kg_audit_say(v, cur->lineno, false,
                     "record seq %" PRIu64 ": seq should be %" PRIu64 ", yet prev matches %s (seq edited)", s,
                     t + 1, where);
        kg_audit_accept(v, cur, t + 1);
        return;
    }
    kg_audit_say(v, cur->lineno, false, "seq %" PRIu64 " after %" PRIu64 " (reordered)", s, t);
    kg_audit_found_later(v, s, cur->lineno);
}

static void kg_audit_hex32(const uint8_t md[32], char hex[KG_AUDIT_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}

kg_result kg_audit_verify_file(const char *path, FILE *report, size_t *records, size_t *problems)
{
    struct kg_audit_lines *r = NULL;
    const char *line = NULL;
    size_t line_len = 0;
    struct kg_audit_verifier v = { .path = path };
    struct kg_audit_vline lines[2];
    struct kg_audit_vline *cur = &lines[0], *next = &lines[1];
    EVP_MD *sha256 = NULL;
    size_t lineno = 0;
    kg_result rc = KG_RESULT_OK;

    if (records != NULL) {
        *records = 0;
    }
    if (problems != NULL) {
        *problems = 0;
    }
    memset(lines, 0, sizeof(lines));
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    KG_GOTO_ENSURE(rc, sha256 != NULL, KG_ERR_INTERNAL);
    v.msgs = calloc(2 * KG_AUDIT_MAX_REPORTS, sizeof(*v.msgs));
    KG_GOTO_ENSURE(rc, v.msgs != NULL, KG_ERR_NOMEM);
    KG_GOTO_GUARD(rc, kg_audit_lines_open(path, &r));
    /* Read one line ahead: `next` is filled, then `cur` is judged. */
    for (;;) {
        enum kg_audit_read got = kg_audit_lines_next(r, &line, &line_len);
        struct kg_audit_vline *tmp;
        unsigned int md_len = 0;

        if (got == KG_AUDIT_READ_ERROR) {
            kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
            kg_error_detail("cannot read %s: %s", path, strerror(errno));
            rc = KG_RESULT_ERROR;
            goto out;
        }
        memset(next, 0, sizeof(*next));
        if (got != KG_AUDIT_READ_EOF) {
            next->present = true;
            next->lineno = ++lineno;
            next->complete = got != KG_AUDIT_READ_LAST;
            next->too_long = got == KG_AUDIT_READ_TOO_LONG;
            next->len = line_len;
            if (!next->too_long) {
                KG_GOTO_ENSURE(rc,
                               EVP_Digest(line, line_len, next->hash, &md_len, sha256, NULL) == 1 && md_len == 32,
                               KG_ERR_INTERNAL);
                next->record = kg_audit_parse_line(line, line_len, &next->f, &next->why);
            }
        }
        if (cur->present) {
            kg_audit_judge(&v, cur, next);
        }
        if (!next->present) {
            break;
        }
        tmp = cur;
        cur = next;
        next = tmp;
    }
    if (report != NULL) {
        qsort(v.msgs, v.msg_count, sizeof(*v.msgs), kg_audit_message_cmp);
        for (size_t i = 0; i < v.msg_count; i++) {
            kg_audit_reword_jump(&v.msgs[i]);
            fprintf(report, "%s:%zu: %s\n", path, v.msgs[i].lineno, v.msgs[i].text);
        }
        if (v.problems > KG_AUDIT_MAX_REPORTS) {
            fprintf(report, "%s: %zu more problems not shown\n", path, v.problems - KG_AUDIT_MAX_REPORTS);
        }
        if (v.problems == 0) {
            char hex[KG_AUDIT_HASH_HEX];

            kg_audit_hex32(v.head, hex);
            fprintf(report, "%s: %zu record%s, chain intact\n", path, v.records, v.records == 1 ? "" : "s");
            fprintf(report, "%s: head seq %" PRIu64 " sha256 %s\n", path, v.seq, hex);
        } else {
            fprintf(report, "%s: %zu record%s, %zu problem%s: chain broken\n", path, v.records,
                    v.records == 1 ? "" : "s", v.problems, v.problems == 1 ? "" : "s");
        }
    }
    if (records != NULL) {
        *records = v.records;
    }
    if (problems != NULL) {
        *problems = v.problems;
    }
out:
    kg_audit_lines_close(r);
    free(v.msgs);
    EVP_MD_free(sha256);
    return rc;
}
