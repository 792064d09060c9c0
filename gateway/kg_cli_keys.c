/*
 * kg_cli_keys.c - kmipgw keys report: every key in the store with its
 * vSphere tags, whether it was ever fetched and when it was last used, so
 * that an operator can find the orphans vCenter leaves behind (it never
 * deletes a key, shared/VSPHERE.md).
 *
 * Read-only in intent: it never creates a store (a typo in --config must
 * not leave an empty database behind), writes nothing to the store or the
 * audit logs, and reads both while the gateway serves (SQLite WAL readers;
 * audit files are only appended to).
 *
 * Exit status: 0 report written, 1 the config, store, an audit file or
 * the output failed, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kg_cli.h"
#include "kg_config.h"
#include "kg_keys_audit.h"
#include "kg_keys_format.h"
#include "kg_keys_report.h"
#include "kg_store.h"

#define KG_KEYS_USAGE 2
#define KG_KEYS_MAX_AUDIT 64
#define KG_KEYS_DEFAULT_UNUSED_DAYS 365u
#define KG_KEYS_MAX_UNUSED_DAYS 36500u

/* Two halves around the list of operations that count as a use, which
 * lives in kg_keys_audit.c so that help and code cannot differ. */
static const char kg_keys_usage_head[] =
    "usage: kmipgw keys report --config FILE [--audit FILE ...] [--unused-days N]\n"
    "                          [--format text|csv|json] [--group G]\n"
    "\n"
    "Lists every object in the store: UID, type, algorithm and length, state, owner group,\n"
    "creation date (Initial Date), the vSphere tags x-Component, x-Identifier and x-Name,\n"
    "Fresh (yes: never served by a Get), last use, and flags:\n"
    "  never-fetched  Fresh is True (an object without Fresh: no use in the audit logs)\n"
    "  unused         last use, or creation when never used, N days ago or more\n"
    "  destroyed, compromised  its state\n"
    "never-fetched and unused are not set on destroyed objects. A summary follows: totals by\n"
    "state and by x-Component, never-fetched and unused counts, audit lines read.\n"
    "\n"
    "Last use comes from the audit logs, not the store: the file of audit.path in the config,\n"
    "and every --audit FILE (other gateways of a cluster, rotated files). It is the latest\n"
    "time of an allowed, successful record of one of these operations on the key:\n";
static const char kg_keys_usage_tail[] =
    "A malformed audit line is reported as FILE:LINE on stderr, skipped and counted.\n"
    "\n"
    "--unused-days N  0 to 36500, default 365 (0 flags every key not destroyed)\n"
    "--format         text: aligned columns, control characters escaped (default);\n"
    "                 csv: RFC 4180 with a header line, cells that a spreadsheet would run as a\n"
    "                 formula prefixed with ', summary on stderr; json: one object a line per\n"
    "                 key, then {\"summary\":{...}}\n"
    "--group G        only the objects group G owns\n"
    "\n"
    "The store is never created: a missing store is an error. Nothing is written; the report\n"
    "may run while the gateway serves. Key material is never read out.\n"
    "Exit status: 0 report written, 1 a file could not be read or written, 2 usage error.\n";

struct kg_keys_opts {
    const char *config;
    const char *audit[KG_KEYS_MAX_AUDIT];
    size_t audit_count;
    unsigned unused_days;
    enum kg_keys_format format;
    const char *group;
};

static void kg_keys_usage(FILE *f)
{
    fputs(kg_keys_usage_head, f);
    for (size_t i = 0; kg_keys_audit_material_ops[i] != NULL; i++) {
        fprintf(f, "%s%s", i > 0 ? ", " : "  ", kg_keys_audit_material_ops[i]);
    }
    fputs("\n", f);
    fputs(kg_keys_usage_tail, f);
}

static int kg_keys_fail_usage(const char *what, const char *arg)
{
    fprintf(stderr, "kmipgw: keys report: %s%s\n", what, arg != NULL ? arg : "");
    fprintf(stderr, "kmipgw: keys report --help shows the options\n");
    return KG_KEYS_USAGE;
}

static bool kg_keys_parse_days(const char *s, unsigned *out)
{
    unsigned long v;
    char *end = NULL;

    if (s[0] < '0' || s[0] > '9' || strlen(s) > 5) {
        return false;
    }
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > KG_KEYS_MAX_UNUSED_DAYS) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* Returns 0, -1 after --help, or an exit status. */
static int kg_keys_parse(int argc, char **argv, struct kg_keys_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->unused_days = KG_KEYS_DEFAULT_UNUSED_DAYS;
    o->format = KG_KEYS_FORMAT_TEXT;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            kg_keys_usage(stdout);
            return -1;
        }
        if (strcmp(arg, "--config") != 0 && strcmp(arg, "--audit") != 0 && strcmp(arg, "--unused-days") != 0 &&
            strcmp(arg, "--format") != 0 && strcmp(arg, "--group") != 0) {
            return kg_keys_fail_usage("unknown argument ", arg);
        }
        if (val == NULL || val[0] == '\0') {
            return kg_keys_fail_usage(arg, " needs a value");
        }
        i++;
        if (strcmp(arg, "--config") == 0) {
            if (o->config != NULL) {
                return kg_keys_fail_usage("--config given twice", NULL);
            }
            o->config = val;
        } else if (strcmp(arg, "--audit") == 0) {
            if (o->audit_count == KG_KEYS_MAX_AUDIT) {
                return kg_keys_fail_usage("too many --audit files", NULL);
            }
            o->audit[o->audit_count++] = val;
        } else if (strcmp(arg, "--unused-days") == 0) {
            if (!kg_keys_parse_days(val, &o->unused_days)) {
                return kg_keys_fail_usage("--unused-days takes a whole number from 0 to 36500, not ", val);
            }
        } else if (strcmp(arg, "--format") == 0) {
            if (!kg_keys_format_parse(val, &o->format)) {
                return kg_keys_fail_usage("--format is text, csv or json, not ", val);
            }
        } else {
            if (o->group != NULL) {
                return kg_keys_fail_usage("--group given twice", NULL);
            }
            o->group = val;
        }
    }
    if (o->config == NULL) {
        return kg_keys_fail_usage("--config FILE is required", NULL);
    }
    return 0;
}

static int kg_keys_error(const char *what, const char *path)
{
    const char *text = kg_error_text();

    fprintf(stderr, "kmipgw: keys report: %s%s%s: %s\n", what, path != NULL ? " " : "", path != NULL ? path : "",
            text[0] ? text : kg_error_name(kg_errno()));
    return 1;
}

/* Every audit file into `uses`: the config's, then --audit ones. */
static int kg_keys_scan_all(const struct kg_config *cfg, const struct kg_keys_opts *o, struct kg_keys_uses *uses,
                            struct kg_keys_audit_summary *sum)
{
    const char *paths[KG_KEYS_MAX_AUDIT + 1];
    size_t n = 0;

    if (cfg->audit_path != NULL) {
        paths[n++] = cfg->audit_path;
    }
    for (size_t i = 0; i < o->audit_count; i++) {
        paths[n++] = o->audit[i];
    }
    if (n == 0) {
        fprintf(stderr, "kmipgw: keys report: no audit log (audit.path unset, no --audit): last use unknown\n");
    }
    for (size_t i = 0; i < n; i++) {
        if (kg_failed(kg_keys_audit_scan(uses, paths[i], stderr, &sum->stats))) {
            return kg_keys_error("audit log", NULL);
        }
        sum->files++;
    }
    return 0;
}

static int kg_keys_report_run(const struct kg_keys_opts *o)
{
    struct kg_config *cfg = NULL;
    struct kg_store *store = NULL;
    struct kg_keys_uses *uses = NULL;
    struct kg_keys_report report;
    struct kg_keys_audit_summary sum = { .unused_days = o->unused_days };
    struct kg_keys_report_opts ro = { .group = o->group, .unused_days = o->unused_days, .now = (int64_t)time(NULL) };
    int status = 1;

    memset(&report, 0, sizeof(report));
    if (kg_failed(kg_config_load(o->config, &cfg))) {
        status = kg_keys_error("configuration", NULL);
        goto out;
    }
    if (kg_failed(kg_keys_uses_new(&uses))) {
        status = kg_keys_error("audit log", NULL);
        goto out;
    }
    if (kg_keys_scan_all(cfg, o, uses, &sum) != 0) {
        goto out;
    }
    if (kg_failed(kg_store_open_existing(cfg->store_path, &store))) {
        status = kg_keys_error("store", kg_store_location_text(cfg->store_path));
        goto out;
    }
    if (kg_failed(kg_keys_report_build(store, uses, &ro, &report))) {
        status = kg_keys_error("store", kg_store_location_text(cfg->store_path));
        goto out;
    }
    if (kg_failed(kg_keys_report_write(stdout, stderr, &report, o->format, &sum))) {
        status = kg_keys_error("output", NULL);
        goto out;
    }
    status = 0;
out:
    kg_keys_report_cleanup(&report);
    kg_store_close(store);
    kg_keys_uses_free(uses);
    kg_config_free(cfg);
    return status;
}

int kg_cli_keys(int argc, char **argv)
{
    struct kg_keys_opts o;
    int rc;

    if (argc < 2 || strcmp(argv[1], "report") != 0) {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            kg_keys_usage(stdout);
            return 0;
        }
        kg_keys_usage(stderr);
        return KG_KEYS_USAGE;
    }
    rc = kg_keys_parse(argc - 1, argv + 1, &o);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    return kg_keys_report_run(&o);
}
