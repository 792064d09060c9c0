/*
 * kg_keys_format.c - text, CSV and JSON writers of `kmipgw keys report`
 * (kg_keys_format.h).
 *
 * Every row is first rendered to one string per column (kg_keys_cells_of),
 * then each format writes those strings through its escaper: one place
 * decides what a row says, three decide how it is spelt.
 */
#include "kg_keys_format.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kg_audit.h"
#include "kg_kmip.h"
#include "kg_kmip_tags.h"
#include "kg_policy.h"

bool kg_keys_format_parse(const char *name, enum kg_keys_format *out)
{
    static const char *const names[] = { "text", "csv", "json" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum kg_keys_format)i;
            return true;
        }
    }
    return false;
}

/* ---- escaping ---- */

enum kg_keys_style {
    KG_KEYS_STYLE_TEXT,
    KG_KEYS_STYLE_CSV,
    KG_KEYS_STYLE_JSON,
};

/* Where escaped output goes: a stream, or nowhere while counting. */
struct kg_keys_sink {
    FILE *f;
    size_t chars;
};

static void kg_keys_emit(struct kg_keys_sink *k, const void *s, size_t n, size_t chars)
{
    if (k->f != NULL) {
        fwrite(s, 1, n, k->f);
    }
    k->chars += chars;
}

/* The character at p (n bytes of well-formed UTF-8) is a C0 or C1 control
 * or DEL: never written as itself (C1 0x9B is a terminal's CSI). */
static bool kg_keys_is_control(const uint8_t *p, size_t n)
{
    return n == 1 ? p[0] < 0x20 || p[0] == 0x7f : n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

static void kg_keys_escape_control(struct kg_keys_sink *k, uint32_t cp, enum kg_keys_style style)
{
    char esc[8];
    int n;

    if (style == KG_KEYS_STYLE_CSV) {
        /* RFC 4180 allows CR and LF inside a quoted field; nothing else. */
        if (cp == '\r' || cp == '\n') {
            kg_keys_emit(k, &(char){ (char)cp }, 1, 1);
        } else {
            kg_keys_emit(k, "?", 1, 1);
        }
        return;
    }
    if (style == KG_KEYS_STYLE_TEXT && (cp == '\n' || cp == '\r' || cp == '\t')) {
        n = snprintf(esc, sizeof(esc), "\\%c", cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
    } else if (style == KG_KEYS_STYLE_TEXT && cp < 0x80) {
        n = snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
    } else {
        n = snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
    }
    kg_keys_emit(k, esc, (size_t)n, (size_t)n);
}

static void kg_keys_escape(struct kg_keys_sink *k, const char *s, enum kg_keys_style style)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t left = strlen(s);

    while (left > 0) {
        size_t n = kg_audit_utf8_len(p, left);

        if (n == 0) {
            char esc[8];

            n = 1;
            if (style == KG_KEYS_STYLE_TEXT) {
                snprintf(esc, sizeof(esc), "\\x%02x", p[0]);
                kg_keys_emit(k, esc, 4, 4);
            } else if (style == KG_KEYS_STYLE_CSV) {
                kg_keys_emit(k, "?", 1, 1);
            } else {
                kg_keys_emit(k, "\\ufffd", 6, 6);
            }
        } else if (kg_keys_is_control(p, n)) {
            kg_keys_escape_control(k, n == 1 ? p[0] : p[1], style);
        } else if (p[0] == '"' && style == KG_KEYS_STYLE_CSV) {
            kg_keys_emit(k, "\"\"", 2, 2);
        } else if ((p[0] == '"' && style == KG_KEYS_STYLE_JSON) || (p[0] == '\\' && style != KG_KEYS_STYLE_CSV)) {
            kg_keys_emit(k, (const char[]){ '\\', (char)p[0] }, 2, 2);
        } else {
            kg_keys_emit(k, p, n, 1);
        }
        p += n;
        left -= n;
    }
}

void kg_keys_put_text(FILE *f, const char *s)
{
    struct kg_keys_sink k = { f, 0 };

    kg_keys_escape(&k, s, KG_KEYS_STYLE_TEXT);
}

size_t kg_keys_text_width(const char *s)
{
    struct kg_keys_sink k = { NULL, 0 };

    kg_keys_escape(&k, s, KG_KEYS_STYLE_TEXT);
    return k.chars;
}

void kg_keys_put_csv(FILE *f, const char *s)
{
    struct kg_keys_sink k = { f, 0 };
    /* Spreadsheets run a cell starting with these as a formula
     * (OWASP "CSV Injection"): a leading ' makes it text. */
    bool formula = s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;

    if (quote) {
        fputc('"', f);
    }
    if (formula) {
        fputc('\'', f);
    }
    kg_keys_escape(&k, s, KG_KEYS_STYLE_CSV);
    if (quote) {
        fputc('"', f);
    }
}

void kg_keys_put_json(FILE *f, const char *s)
{
    struct kg_keys_sink k = { f, 0 };

    fputc('"', f);
    kg_keys_escape(&k, s, KG_KEYS_STYLE_JSON);
    fputc('"', f);
}

/* ---- one row as strings ---- */

enum kg_keys_col {
    KG_KEYS_COL_UID,
    KG_KEYS_COL_TYPE,
    KG_KEYS_COL_ALGORITHM,
    KG_KEYS_COL_STATE,
    KG_KEYS_COL_GROUP,
    KG_KEYS_COL_CREATED,
    KG_KEYS_COL_LAST_USE,
    KG_KEYS_COL_FRESH,
    KG_KEYS_COL_FLAGS,
    KG_KEYS_COL_COMPONENT,
    KG_KEYS_COL_IDENTIFIER,
    KG_KEYS_COL_NAME, /* last: the longest values only push the line end */
    KG_KEYS_COL_COUNT,
};

/* Text heading, and the CSV header and JSON member name. */
static const char *const kg_keys_titles[KG_KEYS_COL_COUNT] = {
    "UID", "TYPE", "ALGORITHM", "STATE", "GROUP", "CREATED", "LAST USE", "FRESH", "FLAGS",
    "X-COMPONENT", "X-IDENTIFIER", "X-NAME",
};
static const char *const kg_keys_keys[KG_KEYS_COL_COUNT] = {
    "uid", "object_type", "algorithm", "state", "group", "created", "last_use", "fresh", "flags",
    "x-Component", "x-Identifier", "x-Name",
};

struct kg_keys_cells {
    char type[24], algorithm[48], state[32], created[24], last_use[24], flags[64];
    const char *flag[4]; /* the flags set, in the order of `flags` */
    size_t flag_count;
    const char *v[KG_KEYS_COL_COUNT];
};

static void kg_keys_date(char out[24], bool has, int64_t when)
{
    time_t t = (time_t)when;
    struct tm tm;

    out[0] = '\0';
    if (has && gmtime_r(&t, &tm) != NULL) {
        strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
}

/* The State's name as kmipgw's XML encoding spells it ("PreActive"). */
static void kg_keys_state_name(char out[32], uint32_t state)
{
    const struct kg_enum_table *t = kg_kmip_enum_table(KG_TAG_STATE);

    for (uint32_t i = 0; t != NULL && i < t->count; i++) {
        if (t->names[i].value == state) {
            snprintf(out, 32, "%s", t->names[i].name);
            return;
        }
    }
    snprintf(out, 32, "0x%08" PRIX32, state);
}

static void kg_keys_cells_of(const struct kg_keys_row *row, struct kg_keys_cells *c)
{
    const char *type = kg_policy_object_type_name(row->object_type);
    const char *alg = kg_policy_algorithm_name(row->algorithm);
    static const char *const flag_names[] = { "never-fetched", "unused", "destroyed", "compromised" };
    const bool flags[] = { row->never_fetched, row->unused, row->destroyed, row->compromised };
    size_t used = 0;

    memset(c, 0, sizeof(*c));
    if (type != NULL) {
        snprintf(c->type, sizeof(c->type), "%s", type);
    } else {
        snprintf(c->type, sizeof(c->type), "0x%08" PRIX32, row->object_type);
    }
    if (row->algorithm == 0) {
        c->algorithm[0] = '\0';
    } else if (alg == NULL) {
        snprintf(c->algorithm, sizeof(c->algorithm), "0x%08" PRIX32, row->algorithm);
    } else if (row->length > 0) {
        snprintf(c->algorithm, sizeof(c->algorithm), "%s-%" PRId32, alg, row->length);
    } else {
        snprintf(c->algorithm, sizeof(c->algorithm), "%s", alg);
    }
    kg_keys_state_name(c->state, row->state);
    kg_keys_date(c->created, row->has_created, row->created);
    kg_keys_date(c->last_use, row->has_last_use, row->last_use);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (flags[i]) {
            used += (size_t)snprintf(c->flags + used, sizeof(c->flags) - used, "%s%s", used > 0 ? "," : "",
                                     flag_names[i]);
            c->flag[c->flag_count++] = flag_names[i];
        }
    }
    c->v[KG_KEYS_COL_UID] = row->uid;
    c->v[KG_KEYS_COL_TYPE] = c->type;
    c->v[KG_KEYS_COL_ALGORITHM] = c->algorithm;
    c->v[KG_KEYS_COL_STATE] = c->state;
    c->v[KG_KEYS_COL_GROUP] = row->group;
    c->v[KG_KEYS_COL_CREATED] = c->created;
    c->v[KG_KEYS_COL_LAST_USE] = c->last_use;
    c->v[KG_KEYS_COL_FRESH] = !row->has_fresh ? "" : row->fresh ? "yes" : "no";
    c->v[KG_KEYS_COL_FLAGS] = c->flags;
    c->v[KG_KEYS_COL_COMPONENT] = row->tags[KG_KEYS_TAG_COMPONENT];
    c->v[KG_KEYS_COL_IDENTIFIER] = row->tags[KG_KEYS_TAG_IDENTIFIER];
    c->v[KG_KEYS_COL_NAME] = row->tags[KG_KEYS_TAG_NAME];
}

/* ---- the three formats ---- */

static void kg_keys_state_line(FILE *f, const struct kg_keys_report *r, size_t state)
{
    char name[32];

    if (state == 0) {
        snprintf(name, sizeof(name), "other");
    } else {
        kg_keys_state_name(name, (uint32_t)state);
    }
    fprintf(f, "  state %s: %zu\n", name, r->by_state[state]);
}

/* The summary as text: after the text table, and beside the CSV. */
static void kg_keys_summary_text(FILE *f, const struct kg_keys_report *r, const struct kg_keys_audit_summary *a)
{
    fprintf(f, "summary: %zu object%s\n", r->count, r->count == 1 ? "" : "s");
    for (size_t s = 1; s < sizeof(r->by_state) / sizeof(r->by_state[0]); s++) {
        if (r->by_state[s] > 0) {
            kg_keys_state_line(f, r, s);
        }
    }
    if (r->by_state[0] > 0) {
        kg_keys_state_line(f, r, 0);
    }
    for (size_t i = 0; i < r->component_count; i++) {
        fputs("  x-Component ", f);
        if (r->components[i].name[0] == '\0') {
            fputs("(none)", f);
        } else {
            fputc('"', f);
            kg_keys_put_text(f, r->components[i].name);
            fputc('"', f);
        }
        fprintf(f, ": %zu\n", r->components[i].count);
    }
    fprintf(f, "  never fetched: %zu\n", r->never_fetched);
    fprintf(f, "  unused for %u days or more: %zu\n", a->unused_days, r->unused);
    fprintf(f, "  destroyed: %zu\n  compromised: %zu\n", r->destroyed, r->compromised);
    fprintf(f, "  audit: %zu file%s, %zu line%s, %zu use%s, %zu malformed line%s skipped\n", a->files,
            a->files == 1 ? "" : "s", a->stats.lines, a->stats.lines == 1 ? "" : "s", a->stats.uses,
            a->stats.uses == 1 ? "" : "s", a->stats.malformed, a->stats.malformed == 1 ? "" : "s");
}

static void kg_keys_text_line(FILE *f, const char *const v[KG_KEYS_COL_COUNT], const size_t width[KG_KEYS_COL_COUNT])
{
    for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
        kg_keys_put_text(f, v[col]);
        if (col + 1 < KG_KEYS_COL_COUNT) {
            fprintf(f, "%*s", (int)(width[col] - kg_keys_text_width(v[col]) + 2), "");
        }
    }
    fputc('\n', f);
}

static kg_result kg_keys_write_text(FILE *f, const struct kg_keys_report *r, const struct kg_keys_audit_summary *a)
{
    size_t width[KG_KEYS_COL_COUNT];
    struct kg_keys_cells c;

    for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
        width[col] = kg_keys_text_width(kg_keys_titles[col]);
    }
    for (size_t i = 0; i < r->count; i++) {
        kg_keys_cells_of(&r->rows[i], &c);
        for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
            size_t w = kg_keys_text_width(c.v[col]);
            width[col] = w > width[col] ? w : width[col];
        }
    }
    /* A column wider than an int can say is not worth aligning to. */
    for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
        KG_ENSURE(width[col] < (size_t)INT32_MAX / 2, KG_ERR_INVALID_FIELD);
    }
    kg_keys_text_line(f, kg_keys_titles, width);
    for (size_t i = 0; i < r->count; i++) {
        kg_keys_cells_of(&r->rows[i], &c);
        kg_keys_text_line(f, c.v, width);
    }
    fputc('\n', f);
    kg_keys_summary_text(f, r, a);
    return KG_RESULT_OK;
}

static void kg_keys_write_csv(FILE *f, FILE *aside, const struct kg_keys_report *r,
                              const struct kg_keys_audit_summary *a)
{
    struct kg_keys_cells c;

    /* RFC 4180: CRLF ends every record, the header included. */
    for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
        fputs(col > 0 ? "," : "", f);
        kg_keys_put_csv(f, kg_keys_keys[col]);
    }
    fputs("\r\n", f);
    for (size_t i = 0; i < r->count; i++) {
        kg_keys_cells_of(&r->rows[i], &c);
        for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
            fputs(col > 0 ? "," : "", f);
            kg_keys_put_csv(f, c.v[col]);
        }
        fputs("\r\n", f);
    }
    kg_keys_summary_text(aside, r, a);
}

static void kg_keys_json_row(FILE *f, const struct kg_keys_row *row)
{
    struct kg_keys_cells c;

    kg_keys_cells_of(row, &c);
    fputc('{', f);
    for (size_t col = 0; col < KG_KEYS_COL_COUNT; col++) {
        fprintf(f, "%s\"%s\":", col > 0 ? "," : "", kg_keys_keys[col]);
        if (col == KG_KEYS_COL_FRESH) {
            fputs(!row->has_fresh ? "null" : row->fresh ? "true" : "false", f);
        } else if (col == KG_KEYS_COL_FLAGS) {
            /* Flag names are ours: plain words, no escaping needed. */
            fputc('[', f);
            for (size_t i = 0; i < c.flag_count; i++) {
                fprintf(f, "%s\"%s\"", i > 0 ? "," : "", c.flag[i]);
            }
            fputc(']', f);
        } else if ((col == KG_KEYS_COL_CREATED || col == KG_KEYS_COL_LAST_USE) && c.v[col][0] == '\0') {
            fputs("null", f);
        } else {
            kg_keys_put_json(f, c.v[col]);
        }
    }
    fputs("}\n", f);
}

static void kg_keys_write_json(FILE *f, const struct kg_keys_report *r, const struct kg_keys_audit_summary *a)
{
    char name[32];
    bool first = true;

    for (size_t i = 0; i < r->count; i++) {
        kg_keys_json_row(f, &r->rows[i]);
    }
    fprintf(f, "{\"summary\":{\"objects\":%zu,\"by_state\":{", r->count);
    for (size_t s = 0; s < sizeof(r->by_state) / sizeof(r->by_state[0]); s++) {
        if (r->by_state[s] == 0) {
            continue;
        }
        if (s == 0) {
            snprintf(name, sizeof(name), "other");
        } else {
            kg_keys_state_name(name, (uint32_t)s);
        }
        fprintf(f, "%s\"%s\":%zu", first ? "" : ",", name, r->by_state[s]);
        first = false;
    }
    fputs("},\"by_x-Component\":{", f);
    for (size_t i = 0; i < r->component_count; i++) {
        fputs(i > 0 ? "," : "", f);
        kg_keys_put_json(f, r->components[i].name);
        fprintf(f, ":%zu", r->components[i].count);
    }
    fprintf(f,
            "},\"never_fetched\":%zu,\"unused\":%zu,\"unused_days\":%u,\"destroyed\":%zu,\"compromised\":%zu,"
            "\"audit\":{\"files\":%zu,\"lines\":%zu,\"uses\":%zu,\"malformed\":%zu}}}\n",
            r->never_fetched, r->unused, a->unused_days, r->destroyed, r->compromised, a->files, a->stats.lines,
            a->stats.uses, a->stats.malformed);
}

kg_result kg_keys_report_write(FILE *out, FILE *aside, const struct kg_keys_report *r, enum kg_keys_format format,
                               const struct kg_keys_audit_summary *audit)
{
    switch (format) {
    case KG_KEYS_FORMAT_TEXT:
        KG_GUARD(kg_keys_write_text(out, r, audit));
        break;
    case KG_KEYS_FORMAT_CSV:
        kg_keys_write_csv(out, aside, r, audit);
        break;
    case KG_KEYS_FORMAT_JSON:
        kg_keys_write_json(out, r, audit);
        break;
    default:
        KG_BAIL(KG_ERR_INTERNAL);
    }
    if (fflush(out) != 0 || ferror(out) || fflush(aside) != 0 || ferror(aside)) {
        kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
        kg_error_detail("writing the report failed");
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}
