/*
 * kg_keys_format.h - writing a keys report (kg_keys_report.h) as aligned
 * text, RFC 4180 CSV or JSON lines.
 *
 * The tags are client-chosen strings: whoever can add an attribute to a
 * key writes into this report. So every field goes through one escaper per
 * format, and no value can end its field or line early:
 *  - text: backslash, C0 and C1 control characters, DEL and bytes that are
 *    not UTF-8 are written as \\, \n, \r, \t, \xHH or \u00HH, so a value
 *    cannot start a line of its own or move the terminal's cursor;
 *  - CSV: a field holding a comma, quote, CR or LF is quoted, quotes
 *    doubled (RFC 4180 section 2); a field starting with = + - @ TAB or CR
 *    gets a leading ' and is quoted, so a spreadsheet shows it as text
 *    instead of running it as a formula; other control characters and
 *    bytes that are not UTF-8 become '?';
 *  - JSON: quote and backslash escaped, control characters as \u00XX,
 *    bytes that are not UTF-8 as \ufffd.
 */
#ifndef KG_KEYS_FORMAT_H
#define KG_KEYS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kg_keys_audit.h"
#include "kg_keys_report.h"
#include "kg_result.h"

enum kg_keys_format {
    KG_KEYS_FORMAT_TEXT,
    KG_KEYS_FORMAT_CSV,
    KG_KEYS_FORMAT_JSON,
};

/* "text", "csv" or "json"; false for anything else. */
bool kg_keys_format_parse(const char *name, enum kg_keys_format *out /* OUT */);

/* One field, escaped as described above, to `f`. kg_keys_text_width: the
 * number of characters kg_keys_put_text writes for `s` (for alignment). */
void kg_keys_put_text(FILE *f, const char *s);
size_t kg_keys_text_width(const char *s);
void kg_keys_put_csv(FILE *f, const char *s);
void kg_keys_put_json(FILE *f, const char *s); /* with its quotes */

/* What the audit scan saw, for the summary. */
struct kg_keys_audit_summary {
    size_t files;
    struct kg_keys_audit_stats stats;
    unsigned unused_days;
};

/*
 * Write `r` to `out` in `format`, then the summary: at the end of `out`
 * for text and JSON (its last line is {"summary":{...}}), and to `aside`
 * for CSV, so that the CSV file stays one table. KG_ERR_IO when a write
 * failed (ferror on either stream). Nothing is owned or kept.
 */
kg_result kg_keys_report_write(FILE *out, FILE *aside, const struct kg_keys_report *r, enum kg_keys_format format,
                               const struct kg_keys_audit_summary *audit) KG_WARN_UNUSED;

#endif
