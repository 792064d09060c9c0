/*
 * kg_conformance.c - kg-conformance: run the OASIS KMIP XML test vectors
 * against a running server over mutual TLS and print passed / failed / out
 * of scope per folder, profile and level.
 *
 *   kg-conformance --vectors ../shared/kmip-vectors --port 5696 --ca ca.crt \
 *       --cert admin.crt --key admin.key [--out-of-scope FILE] [--results FILE]
 *       [--only SUBSTRING] [--set oasis|oasis-tc-1.x] [--host 127.0.0.1]
 *       [--timeout-ms N] [--timed skip|only] [--errata FILE] [-v]
 *
 * Each vector file is one case: its RequestMessages are sent in order on one
 * connection, placeholders bound (kg_conf_match.h), and each response must
 * match the ResponseMessage that follows. A case passes when every response
 * matches. The out-of-scope list has one "<path or fnmatch pattern>  <reason>"
 * per line; a mandatory case in it is refused (exit 2). --results writes one
 * "pass|fail|out <path>\t<first mismatch or reason>" line per case.
 * --set picks one vector set (default both). The two sets hold the same cases
 * under the same object names, and a server may keep destroyed objects
 * findable, so run each set against a fresh server to get the clean server
 * the vectors assume.
 * Exit: 0 when the run completed (whatever the results), 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "kg_conf_client.h"
#include "kg_conf_errata.h"
#include "kg_conf_match.h"
#include "kg_conf_timeline.h"
#include "kg_kmip.h"
#include "kg_ttlv.h"
#include "kg_xml.h"

#define KG_CONF_MAX_CASES 4096u
#define KG_CONF_MAX_PATH 512u
#define KG_CONF_WHY 600u

enum kg_conf_status { KG_CONF_NOT_RUN, KG_CONF_PASS, KG_CONF_FAIL, KG_CONF_OUT };

struct kg_conf_case {
    char rel[KG_CONF_MAX_PATH]; /* relative to the vectors root */
    char row[KG_CONF_MAX_PATH]; /* "oasis/v1.4 SKLC mandatory" */
    bool mandatory;
    enum kg_conf_status status;
    char why[KG_CONF_WHY];
};

struct kg_conf_run {
    const char *root;
    struct kg_conf_case *cases; /* owned */
    size_t count;
    struct kg_conf_tls tls;
    struct kg_conf_bindings *bindings; /* owned */
    bool verbose;
    bool server_keys; /* this case has the server generate keys */
    bool all_sets; /* both vector sets walked: every out-of-scope line must match */
    /* --timed: run every case, only the untimed ones, or only the timed ones
     * (kg_conf_timeline.h), so that a caller can run the minutes-long timed
     * cases against a second server while the rest run here. */
    enum { KG_CONF_TIMED_ALL, KG_CONF_TIMED_SKIP, KG_CONF_TIMED_ONLY } timed;
    struct kg_conf_errata *errata; /* owned; corrections to vector defects */
};

static void kg_conf_usage(void)
{
    fputs("usage: kg-conformance --vectors DIR --port N --ca FILE --cert FILE --key FILE\n"
          "                      [--host ADDR] [--out-of-scope FILE] [--results FILE]\n"
          "                      [--only SUBSTRING] [--set oasis|oasis-tc-1.x] [--timeout-ms N]\n"
          "                      [--timed skip|only] [--errata FILE] [-v]\n",
          stderr);
}

/* ---- discovery and classification ---- */

static int kg_conf_cmp_case(const void *a, const void *b)
{
    return strcmp(((const struct kg_conf_case *)a)->rel, ((const struct kg_conf_case *)b)->rel);
}

static bool kg_conf_has(const char *s, const char *a, const char *b)
{
    return strstr(s, a) != NULL || strstr(s, b) != NULL;
}

/* Row "<folder> <profile> <level>" from a relative path such as
 * oasis/v1.4/XML/mandatory/SKLC-M-1-14.xml or oasis-tc-1.x/v1.1/TC_141_11_....xml. */
static void kg_conf_classify(struct kg_conf_case *c)
{
    char folder[KG_CONF_MAX_PATH];
    char base[KG_CONF_MAX_PATH];
    char profile[64];
    const char *slash = strrchr(c->rel, '/');
    const char *level;
    char *p;
    size_t n;

    snprintf(folder, sizeof(folder), "%.*s", slash ? (int)(slash - c->rel) : 0, c->rel);
    snprintf(base, sizeof(base), "%s", slash ? slash + 1 : c->rel);
    if ((p = strstr(base, ".xml")) != NULL) {
        *p = '\0';
    }
    if ((p = strstr(folder, "/XML/")) != NULL) {
        *p = '\0';
    }
    if (kg_conf_has(base, "-M-", "_M_")) {
        level = "mandatory";
    } else if (kg_conf_has(base, "-O-", "_O_")) {
        level = "optional";
    } else {
        level = "testcase";
    }
    c->mandatory = strcmp(level, "mandatory") == 0;
    if (strncmp(base, "TC-", 3) == 0) {
        n = 3 + strcspn(base + 3, "-");
    } else if (strncmp(base, "TC_", 3) == 0) {
        n = 2;
    } else if ((p = strstr(base, "-M-")) != NULL || (p = strstr(base, "-O-")) != NULL ||
               (p = strstr(base, "_M_")) != NULL || (p = strstr(base, "_O_")) != NULL) {
        n = (size_t)(p - base);
    } else {
        n = strcspn(base, "-_");
    }
    snprintf(profile, sizeof(profile), "%.*s", (int)(n < 63 ? n : 63), base);
    /* Bounded by the sizes of both parts; a cut row name would only merge rows. */
    snprintf(c->row, sizeof(c->row), "%.200s %.60s %s", folder, profile, level);
}

static int kg_conf_walk(struct kg_conf_run *run, const char *rel)
{
    char path[KG_CONF_MAX_PATH * 2];
    struct dirent *e;
    DIR *d;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", run->root, rel);
    d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "kg-conformance: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char sub[KG_CONF_MAX_PATH];
        char full[KG_CONF_MAX_PATH * 2];
        struct stat st;
        size_t n = strlen(e->d_name);

        if (e->d_name[0] == '.') {
            continue;
        }
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name) >= sizeof(sub)) {
            continue;
        }
        snprintf(full, sizeof(full), "%s/%s", run->root, sub);
        if (stat(full, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = kg_conf_walk(run, sub);
        } else if (n > 4 && strcmp(e->d_name + n - 4, ".xml") == 0) {
            struct kg_conf_case *c;

            if (run->count >= KG_CONF_MAX_CASES) {
                fprintf(stderr, "kg-conformance: more than %u vector files\n", KG_CONF_MAX_CASES);
                rc = -1;
                break;
            }
            c = &run->cases[run->count++];
            memset(c, 0, sizeof(*c));
            snprintf(c->rel, sizeof(c->rel), "%s", sub);
            kg_conf_classify(c);
        }
    }
    closedir(d);
    return rc;
}

/* ---- the out-of-scope list ---- */

static int kg_conf_load_out_of_scope(struct kg_conf_run *run, const char *file)
{
    char line[1024];
    unsigned lineno = 0;
    FILE *f = fopen(file, "r");
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "kg-conformance: %s: %s\n", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *pattern = line;
        char *reason;
        size_t matched = 0;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        pattern += strspn(pattern, " \t");
        if (pattern[0] == '\0' || pattern[0] == '#') {
            continue;
        }
        reason = pattern + strcspn(pattern, " \t");
        if (*reason != '\0') {
            *reason++ = '\0';
            reason += strspn(reason, " \t");
        }
        if (*reason == '\0') {
            fprintf(stderr, "kg-conformance: %s:%u: %s has no reason\n", file, lineno, pattern);
            rc = -1;
            continue;
        }
        for (size_t i = 0; i < run->count; i++) {
            struct kg_conf_case *c = &run->cases[i];

            if (fnmatch(pattern, c->rel, FNM_PATHNAME) != 0) {
                continue;
            }
            matched++;
            if (c->mandatory) {
                fprintf(stderr, "kg-conformance: %s:%u: %s is a mandatory case; it cannot be out of scope\n",
                        file, lineno, c->rel);
                rc = -1;
                continue;
            }
            c->status = KG_CONF_OUT;
            snprintf(c->why, sizeof(c->why), "%s", reason);
        }
        if (matched == 0 && run->all_sets) {
            fprintf(stderr, "kg-conformance: %s:%u: %s matches no vector file\n", file, lineno, pattern);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* ---- running one case ---- */

static void kg_conf_fail(struct kg_conf_case *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kg_conf_fail(struct kg_conf_case *c, const char *fmt, ...)
{
    va_list ap;

    c->status = KG_CONF_FAIL;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
}

static const char *kg_conf_err(void)
{
    const char *t = kg_error_text();

    return t[0] ? t : kg_error_name(kg_errno());
}

/* Walk `r` for the first Result Reason and Result Message, as "name" text. */
static void kg_conf_find_result(struct kg_ttlv_reader *r, char **reason, char **message)
{
    struct kg_ttlv_item it;

    while (!kg_ttlv_reader_done(r) && kg_ok(kg_ttlv_read(r, &it))) {
        struct kg_ttlv_reader child;

        if (it.type == KG_TTLV_STRUCTURE) {
            if (kg_ok(kg_ttlv_child(r, &it, &child))) {
                kg_conf_find_result(&child, reason, message);
            }
        } else if (it.tag == 0x42007E && *reason == NULL) {
            if (kg_failed(kg_xml_leaf_text(&it, it.tag, reason))) {
                *reason = NULL;
            }
        } else if (it.tag == 0x42007D && *message == NULL) {
            if (kg_failed(kg_xml_leaf_text(&it, it.tag, message))) {
                *message = NULL;
            }
        }
    }
}

/* " (server: Reason: message)" from a response, or "" if it has neither. */
static void kg_conf_server_says(const uint8_t *resp, uint32_t len, char *out, size_t cap)
{
    struct kg_ttlv_limits limits = kg_ttlv_default_limits;
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    char *reason = NULL;
    char *message = NULL;

    out[0] = '\0';
    limits.max_message_len = len;
    limits.max_items = UINT32_MAX;
    kg_ttlv_budget_init(&budget, &limits);
    if (kg_ok(kg_ttlv_reader_init(&r, resp, len, &budget))) {
        kg_conf_find_result(&r, &reason, &message);
    }
    if (reason != NULL || message != NULL) {
        snprintf(out, cap, " (server: %.40s: %.100s)", reason ? reason : "-", message ? message : "-");
    }
    free(reason);
    free(message);
    kg_error_clear();
}

/* Send one request element (bound and encoded) and match the response; a
 * request the timeline waited for is retried until it matches, for a while. */
static bool kg_conf_step(struct kg_conf_run *run, struct kg_conf_case *c, struct kg_conf_conn *conn,
                         struct kg_conf_timeline *timeline, const xmlNode *req, const xmlNode *exp, unsigned index)
{
    struct kg_ttlv_writer w;
    xmlNode *copy = xmlCopyNode((xmlNode *)req, 1);
    uint8_t *resp = NULL;
    uint32_t resp_len = 0;
    char why[KG_CONF_WHY - 64];
    bool ok = false;
    bool waited = kg_conf_timeline_wait(timeline, exp);
    int tries = waited ? KG_CONF_RETRY_SECONDS : 0;

    if (copy == NULL || kg_failed(kg_ttlv_writer_init(&w, KG_XML_MAX_INPUT, false))) {
        kg_conf_fail(c, "out of memory");
        xmlFreeNode(copy);
        return false;
    }
    if (kg_failed(kg_conf_bind_request(copy, run->bindings, time(NULL))) ||
        kg_failed(kg_conf_timeline_shift(timeline, copy))) {
        kg_conf_fail(c, "request %u: %s", index, kg_conf_err());
        goto out;
    }
    if (kg_failed(kg_xml_node_to_ttlv(copy, &w))) {
        kg_conf_fail(c, "request %u does not encode: %s", index, kg_conf_err());
        goto out;
    }
    if (conn->ssl == NULL && kg_failed(kg_conf_connect(&run->tls, conn))) {
        kg_conf_fail(c, "request %u: %s", index, kg_conf_err());
        goto out;
    }
    for (;;) {
        bool sent = kg_ok(kg_conf_roundtrip(conn, w.buf, w.len, &resp, &resp_len));

        if (!sent && waited) {
            /* The server may close a connection left idle through the
             * pause: one new connection, as a client would open. */
            kg_conf_close(conn);
            sent = kg_ok(kg_conf_connect(&run->tls, conn)) &&
                   kg_ok(kg_conf_roundtrip(conn, w.buf, w.len, &resp, &resp_len));
        }
        if (!sent) {
            kg_conf_fail(c, "request %u: %s", index, kg_conf_err());
            kg_conf_close(conn);
            goto out;
        }
        ok = kg_conf_match(exp, resp, resp_len, run->bindings, run->server_keys, why, sizeof(why));
        if (ok || tries-- <= 0) {
            break;
        }
        free(resp);
        resp = NULL;
        sleep(1);
    }
    if (!ok) {
        char server[160];

        kg_conf_server_says(resp, resp_len, server, sizeof(server));
        kg_conf_fail(c, "response %u: %s%s", index, why, server);
        goto out;
    }
out:
    free(resp);
    kg_ttlv_writer_cleanup(&w);
    xmlFreeNode(copy);
    kg_error_clear();
    return ok;
}

/* One-item request "op UID" (Revoke adds reason Cessation Of Operation). */
static kg_result kg_conf_write_cleanup(struct kg_ttlv_writer *w, uint32_t op, const char *uid)
{
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_MESSAGE));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_HEADER));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_PROTOCOL_VERSION));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MAJOR, 1));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_PROTOCOL_VERSION_MINOR, 0));
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_write_int(w, KG_TAG_BATCH_COUNT, 1));
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_BATCH_ITEM));
    KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_OPERATION, op));
    KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REQUEST_PAYLOAD));
    KG_GUARD(kg_ttlv_write_text(w, KG_TAG_UNIQUE_IDENTIFIER, uid, (uint32_t)strlen(uid)));
    if (op == KG_OP_REVOKE) {
        KG_GUARD(kg_ttlv_begin_struct(w, KG_TAG_REVOCATION_REASON));
        KG_GUARD(kg_ttlv_write_enum(w, KG_TAG_REVOCATION_REASON_CODE, KG_REVOKE_CESSATION));
        KG_GUARD(kg_ttlv_end_struct(w));
    }
    KG_GUARD(kg_ttlv_end_struct(w));
    KG_GUARD(kg_ttlv_end_struct(w));
    return kg_ttlv_end_struct(w);
}

/*
 * After a failed case, revoke and destroy every object it was told about
 * ($UNIQUE_IDENTIFIER_n), results ignored: the vectors clean up in their last
 * steps, which a failure skips, and the objects left behind (same names in
 * the 1.0-1.4 copies of a case) would make later Locates find too much.
 */
static void kg_conf_cleanup_case(struct kg_conf_run *run, struct kg_conf_conn *conn)
{
    static const uint32_t ops[] = { KG_OP_REVOKE, KG_OP_DESTROY };
    const struct kg_conf_bindings *b = run->bindings;

    for (size_t i = 0; i < b->count; i++) {
        if (strncmp(b->items[i].name, "UNIQUE_IDENTIFIER_", 18) != 0) {
            continue;
        }
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
            struct kg_ttlv_writer w;
            uint8_t *resp = NULL;
            uint32_t resp_len = 0;

            if (kg_failed(kg_ttlv_writer_init(&w, 65536, false))) {
                return;
            }
            if (conn->ssl == NULL && kg_failed(kg_conf_connect(&run->tls, conn))) {
                kg_ttlv_writer_cleanup(&w);
                return;
            }
            if (kg_ok(kg_conf_write_cleanup(&w, ops[k], b->items[i].value)) &&
                kg_failed(kg_conf_roundtrip(conn, w.buf, w.len, &resp, &resp_len))) {
                kg_conf_close(conn);
            }

            free(resp);
            kg_ttlv_writer_cleanup(&w);
        }
    }
    kg_error_clear();
}

static void kg_conf_run_case(struct kg_conf_run *run, struct kg_conf_case *c)
{
    char path[KG_CONF_MAX_PATH * 2];
    struct kg_conf_conn conn = { .fd = -1, .ssl = NULL };
    struct kg_conf_timeline timeline;
    const xmlNode *req = NULL;
    unsigned index = 0;
    xmlDoc *doc;

    snprintf(path, sizeof(path), "%s/%s", run->root, c->rel);
    doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        kg_conf_fail(c, "not well-formed XML");
        xmlFreeDoc(doc);
        return;
    }
    kg_conf_bindings_free(run->bindings);
    run->server_keys = kg_conf_server_generates_keys(xmlDocGetRootElement(doc));
    kg_conf_timeline_init(&timeline, xmlDocGetRootElement(doc));
    if ((run->timed == KG_CONF_TIMED_SKIP && timeline.timed) || (run->timed == KG_CONF_TIMED_ONLY && !timeline.timed)) {
        c->status = KG_CONF_NOT_RUN; /* another run takes it */
        xmlFreeDoc(doc);
        return;
    }
    c->status = KG_CONF_PASS;
    for (const xmlNode *n = xmlDocGetRootElement(doc)->children; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (strcmp((const char *)n->name, "RequestMessage") == 0 && req == NULL) {
            req = n;
        } else if (strcmp((const char *)n->name, "ResponseMessage") == 0 && req != NULL) {
            const char *why = NULL;

            if (!kg_conf_errata_apply(run->errata, c->rel, index, (xmlNode *)n, &why)) {
                kg_conf_fail(c, "response %u: %s", index, why);
                break;
            }
            if (!kg_conf_step(run, c, &conn, &timeline, req, n, index++)) {
                break;
            }
            req = NULL;
        } else {
            kg_conf_fail(c, "vector: unexpected <%s> at line %d", (const char *)n->name, n->line);
            break;
        }
    }
    if (c->status == KG_CONF_PASS && (req != NULL || index == 0)) {
        kg_conf_fail(c, "vector: a request without a response, or no messages");
    }
    if (c->status == KG_CONF_FAIL) {
        kg_conf_cleanup_case(run, &conn);
    }
    kg_conf_close(&conn);
    kg_conf_bindings_free(run->bindings);
    xmlFreeDoc(doc);
}

/* ---- the table ---- */

/* Does case `c` take part in the table (a case another run takes does not)? */
static bool kg_conf_listed(const struct kg_conf_case *c, const char *only)
{
    return c->status != KG_CONF_NOT_RUN || (only != NULL && strstr(c->rel, only) != NULL);
}

static void kg_conf_print_table(const struct kg_conf_run *run, const char *only)
{
    size_t tp = 0, tf = 0, to = 0;

    printf("%-44s %7s %7s %13s\n", "folder profile level", "passed", "failed", "out-of-scope");
    for (size_t i = 0; i < run->count; i++) {
        const struct kg_conf_case *c = &run->cases[i];
        size_t p = 0, f = 0, o = 0;
        bool seen = false;

        if (!kg_conf_listed(c, only)) {
            continue;
        }
        /* A row is printed at its first listed case. */
        for (size_t j = 0; j < i; j++) {
            seen = seen || (kg_conf_listed(&run->cases[j], only) && strcmp(run->cases[j].row, c->row) == 0);
        }
        if (seen) {
            continue;
        }
        for (size_t j = i; j < run->count; j++) {
            const struct kg_conf_case *d = &run->cases[j];

            if (strcmp(d->row, c->row) != 0) {
                continue;
            }
            p += d->status == KG_CONF_PASS;
            f += d->status == KG_CONF_FAIL;
            /* Out-of-scope cases are counted by the run that takes the untimed ones. */
            o += d->status == KG_CONF_OUT && run->timed != KG_CONF_TIMED_ONLY &&
                 (only == NULL || strstr(d->rel, only) != NULL);
        }
        if (p + f + o == 0) {
            continue;
        }
        printf("%-44s %7zu %7zu %13zu\n", c->row, p, f, o);
        tp += p;
        tf += f;
        to += o;
    }
    printf("%-44s %7zu %7zu %13zu\n", "total", tp, tf, to);
}

static int kg_conf_write_results(const struct kg_conf_run *run, const char *file)
{
    static const char *const names[] = { "skip", "pass", "fail", "out" };
    FILE *f = fopen(file, "w");

    if (f == NULL) {
        fprintf(stderr, "kg-conformance: %s: %s\n", file, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < run->count; i++) {
        const struct kg_conf_case *c = &run->cases[i];

        if (c->status != KG_CONF_NOT_RUN) {
            fprintf(f, "%s %s\t%s\n", names[c->status], c->rel, c->why);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct kg_conf_run run = { .tls = { .host = "127.0.0.1", .timeout_ms = 10000 } };
    const char *ca = NULL, *cert = NULL, *key = NULL, *oos = NULL, *results = NULL, *only = NULL;
    const char *set = NULL, *errata = NULL;
    int status = 2;

    /* A server that closed the connection must fail a write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-v") == 0) {
            run.verbose = true;
            continue;
        }
        if (v == NULL) {
            kg_conf_usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--vectors") == 0) {
            run.root = v;
        } else if (strcmp(a, "--host") == 0) {
            run.tls.host = v;
        } else if (strcmp(a, "--port") == 0) {
            run.tls.port = v;
        } else if (strcmp(a, "--ca") == 0) {
            ca = v;
        } else if (strcmp(a, "--cert") == 0) {
            cert = v;
        } else if (strcmp(a, "--key") == 0) {
            key = v;
        } else if (strcmp(a, "--out-of-scope") == 0) {
            oos = v;
        } else if (strcmp(a, "--results") == 0) {
            results = v;
        } else if (strcmp(a, "--set") == 0 && (strcmp(v, "oasis") == 0 || strcmp(v, "oasis-tc-1.x") == 0)) {
            set = v;
        } else if (strcmp(a, "--timed") == 0 && (strcmp(v, "skip") == 0 || strcmp(v, "only") == 0)) {
            run.timed = strcmp(v, "skip") == 0 ? KG_CONF_TIMED_SKIP : KG_CONF_TIMED_ONLY;
        } else if (strcmp(a, "--errata") == 0) {
            errata = v;
        } else if (strcmp(a, "--only") == 0) {
            only = v;
        } else if (strcmp(a, "--timeout-ms") == 0) {
            run.tls.timeout_ms = atoi(v);
        } else {
            kg_conf_usage();
            return 2;
        }
    }
    if (run.root == NULL || run.tls.port == NULL || ca == NULL || cert == NULL || key == NULL ||
        run.tls.timeout_ms <= 0) {
        kg_conf_usage();
        return 2;
    }
    run.all_sets = set == NULL;
    run.cases = calloc(KG_CONF_MAX_CASES, sizeof(*run.cases));
    run.bindings = calloc(1, sizeof(*run.bindings));
    run.errata = calloc(1, sizeof(*run.errata));
    if (run.cases == NULL || run.bindings == NULL || run.errata == NULL) {
        fprintf(stderr, "kg-conformance: out of memory\n");
        goto out;
    }
    if ((set == NULL || strcmp(set, "oasis") == 0) && kg_conf_walk(&run, "oasis") != 0) {
        goto out;
    }
    if ((set == NULL || strcmp(set, "oasis-tc-1.x") == 0) && kg_conf_walk(&run, "oasis-tc-1.x") != 0) {
        goto out;
    }
    qsort(run.cases, run.count, sizeof(*run.cases), kg_conf_cmp_case);
    if (oos != NULL && kg_conf_load_out_of_scope(&run, oos) != 0) {
        goto out;
    }
    if (errata != NULL && kg_conf_errata_load(errata, run.errata) != 0) {
        goto out;
    }
    if (kg_failed(kg_conf_tls_init(&run.tls, ca, cert, key))) {
        fprintf(stderr, "kg-conformance: %s\n", kg_conf_err());
        goto out;
    }
    for (size_t i = 0; i < run.count; i++) {
        struct kg_conf_case *c = &run.cases[i];

        if (c->status == KG_CONF_OUT || (only != NULL && strstr(c->rel, only) == NULL)) {
            continue;
        }
        kg_conf_run_case(&run, c);
        if (run.verbose && c->status == KG_CONF_FAIL) {
            printf("FAIL %s: %s\n", c->rel, c->why);
        }
    }
    kg_conf_print_table(&run, only);
    if (results != NULL && kg_conf_write_results(&run, results) != 0) {
        goto out;
    }
    status = 0;
out:
    kg_conf_tls_cleanup(&run.tls);
    if (run.bindings != NULL) {
        kg_conf_bindings_free(run.bindings);
    }
    free(run.bindings);
    free(run.errata);
    free(run.cases);
    xmlCleanupParser();
    return status;
}
