/* kg_audit.c - JSON-lines audit records and the stderr log. */
#include "kg_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct kg_audit {
    int fd; /* -1: stderr only */
};

kg_result kg_audit_open(const char *path, struct kg_audit **out)
{
    struct kg_audit *a;

    *out = NULL;
    a = calloc(1, sizeof(*a));
    KG_ENSURE(a != NULL, KG_ERR_NOMEM);
    a->fd = -1;
    if (path != NULL) {
        a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (a->fd < 0) {
            free(a);
            kg_error_set(KG_ERR_CONFIG, __FILE__, __LINE__);
            kg_error_detail("cannot open audit log %s: %s", path, strerror(errno));
            return KG_RESULT_ERROR;
        }
    }
    *out = a;
    return KG_RESULT_OK;
}

void kg_audit_close(struct kg_audit *a)
{
    if (a == NULL) {
        return;
    }
    if (a->fd >= 0) {
        close(a->fd);
    }
    free(a);
}

/* Append `s` as a JSON string body: quotes, backslashes and control bytes
 * escaped, so a hostile certificate subject cannot forge audit fields. */
static void kg_audit_put_json(char *buf, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    for (; s != NULL && *s != '\0' && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = 'u';
            buf[(*pos)++] = '0';
            buf[(*pos)++] = '0';
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

static void kg_audit_put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);

    if (*pos + n < cap) {
        memcpy(buf + *pos, s, n);
        *pos += n;
    }
}

static void kg_audit_put_field(char *buf, size_t cap, size_t *pos, const char *key, const char *value)
{
    kg_audit_put_raw(buf, cap, pos, ",\"");
    kg_audit_put_raw(buf, cap, pos, key);
    kg_audit_put_raw(buf, cap, pos, "\":\"");
    kg_audit_put_json(buf, cap, pos, value);
    kg_audit_put_raw(buf, cap, pos, "\"");
}

void kg_audit_write(struct kg_audit *a, const struct kg_audit_record *rec)
{
    char line[2048];
    char head[96];
    char ous[512];
    size_t pos = 0, opos = 0;
    struct tm tm;
    time_t t = (time_t)rec->time;
    const struct kg_identity *id = rec->identity;

    gmtime_r(&t, &tm);
    strftime(head, sizeof(head), "{\"time\":\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    kg_audit_put_raw(line, sizeof(line), &pos, head);
    kg_audit_put_field(line, sizeof(line), &pos, "cn", id ? id->cn : "");
    ous[0] = '\0';
    for (size_t i = 0; id != NULL && i < id->ou_count; i++) {
        int n = snprintf(ous + opos, sizeof(ous) - opos, "%s%s", i ? "," : "", id->ous[i]);
        if (n < 0 || (size_t)n >= sizeof(ous) - opos) {
            break;
        }
        opos += (size_t)n;
    }
    kg_audit_put_field(line, sizeof(line), &pos, "ou", ous);
    kg_audit_put_field(line, sizeof(line), &pos, "serial", id ? id->serial : "");
    kg_audit_put_field(line, sizeof(line), &pos, "fingerprint", id ? id->fingerprint : "");
    kg_audit_put_field(line, sizeof(line), &pos, "group", rec->group ? rec->group : "");
    kg_audit_put_field(line, sizeof(line), &pos, "operation", rec->operation);
    kg_audit_put_field(line, sizeof(line), &pos, "uid", rec->uid ? rec->uid : "");
    kg_audit_put_field(line, sizeof(line), &pos, "decision", rec->decision);
    kg_audit_put_field(line, sizeof(line), &pos, "result",
                       rec->status == 0 ? "success" : "failed");
    snprintf(head, sizeof(head), ",\"reason\":%" PRIu32, rec->reason);
    kg_audit_put_raw(line, sizeof(line), &pos, head);
    if (rec->note != NULL) {
        kg_audit_put_field(line, sizeof(line), &pos, "note", rec->note);
    }
    kg_audit_put_raw(line, sizeof(line), &pos, "}\n");

    if (a != NULL && a->fd >= 0) {
        /* One write per record: with O_APPEND, lines from concurrent workers
         * never interleave. */
        if (write(a->fd, line, pos) != (ssize_t)pos) {
            fprintf(stderr, "{\"level\":\"error\",\"msg\":\"audit write failed: %s\"}\n", strerror(errno));
        }
    }
    /* `line` is not NUL-terminated: print exactly the record, minus its
     * opening brace, after the level field. */
    fprintf(stderr, "{\"level\":\"audit\",%.*s", (int)(pos - 1), line + 1);
}

void kg_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    char line[1200];
    size_t pos = 0;
    char head[96];
    struct tm tm;
    time_t t = time(NULL);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gmtime_r(&t, &tm);
    strftime(head, sizeof(head), "{\"time\":\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
    kg_audit_put_raw(line, sizeof(line), &pos, head);
    kg_audit_put_field(line, sizeof(line), &pos, "level", level);
    kg_audit_put_field(line, sizeof(line), &pos, "msg", msg);
    kg_audit_put_raw(line, sizeof(line), &pos, "}\n");
    fwrite(line, 1, pos, stderr);
}
