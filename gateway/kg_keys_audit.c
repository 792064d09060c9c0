/*
 * kg_keys_audit.c - last use of each key from audit logs (kg_keys_audit.h).
 *
 * The uid -> time table is open addressing with linear probing, doubled
 * at half load: a report reads a few files once, so nothing fancier pays,
 * and memory follows the number of keys used, not the number of records.
 */
#include "kg_keys_audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kg_audit.h"

const char *const kg_keys_audit_material_ops[] = {
    "Get", "Export", "Encrypt", "Decrypt", "Sign", "Signature Verify", "MAC", "MAC Verify", NULL,
};

struct kg_keys_use {
    char uid[KG_UID_LEN + 1]; /* "" = free slot */
    int64_t when;
};

struct kg_keys_uses {
    struct kg_keys_use *slots;
    size_t cap; /* a power of two */
    size_t count;
};

#define KG_KEYS_USES_FIRST_CAP 1024u

kg_result kg_keys_uses_new(struct kg_keys_uses **out)
{
    struct kg_keys_uses *u;

    *out = NULL;
    u = calloc(1, sizeof(*u));
    KG_ENSURE(u != NULL, KG_ERR_NOMEM);
    u->slots = calloc(KG_KEYS_USES_FIRST_CAP, sizeof(*u->slots));
    if (u->slots == NULL) {
        free(u);
        KG_BAIL(KG_ERR_NOMEM);
    }
    u->cap = KG_KEYS_USES_FIRST_CAP;
    *out = u;
    return KG_RESULT_OK;
}

void kg_keys_uses_free(struct kg_keys_uses *uses)
{
    if (uses == NULL) {
        return;
    }
    free(uses->slots);
    free(uses);
}

/* FNV-1a: UIDs are server-made UUIDs, nobody tunes them against the table. */
static size_t kg_keys_hash(const char *uid)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (const unsigned char *p = (const unsigned char *)uid; *p != '\0'; p++) {
        h = (h ^ *p) * 0x100000001b3u;
    }
    return (size_t)h;
}

/* The slot holding `uid`, or the free slot where it would go. */
static struct kg_keys_use *kg_keys_slot(const struct kg_keys_use *slots, size_t cap, const char *uid)
{
    size_t i = kg_keys_hash(uid) & (cap - 1);

    while (slots[i].uid[0] != '\0' && strcmp(slots[i].uid, uid) != 0) {
        i = (i + 1) & (cap - 1);
    }
    return (struct kg_keys_use *)&slots[i];
}

static kg_result kg_keys_uses_grow(struct kg_keys_uses *u)
{
    struct kg_keys_use *bigger;

    if (u->cap >= 2 * (size_t)KG_KEYS_USES_MAX) {
        kg_error_set(KG_ERR_NOMEM, __FILE__, __LINE__);
        kg_error_detail("more than %u distinct UIDs in the audit logs", KG_KEYS_USES_MAX);
        return KG_RESULT_ERROR;
    }
    bigger = calloc(2 * u->cap, sizeof(*bigger));
    KG_ENSURE(bigger != NULL, KG_ERR_NOMEM);
    for (size_t i = 0; i < u->cap; i++) {
        if (u->slots[i].uid[0] != '\0') {
            *kg_keys_slot(bigger, 2 * u->cap, u->slots[i].uid) = u->slots[i];
        }
    }
    free(u->slots);
    u->slots = bigger;
    u->cap *= 2;
    return KG_RESULT_OK;
}

kg_result kg_keys_uses_note(struct kg_keys_uses *uses, const char *uid, int64_t when)
{
    struct kg_keys_use *slot;
    size_t len = strlen(uid);

    KG_ENSURE(len > 0 && len <= KG_UID_LEN, KG_ERR_INTERNAL);
    if (uses->count + 1 > uses->cap / 2) {
        KG_GUARD(kg_keys_uses_grow(uses));
    }
    slot = kg_keys_slot(uses->slots, uses->cap, uid);
    if (slot->uid[0] == '\0') {
        memcpy(slot->uid, uid, len + 1);
        slot->when = when;
        uses->count++;
    } else if (when > slot->when) {
        slot->when = when;
    }
    return KG_RESULT_OK;
}

bool kg_keys_uses_get(const struct kg_keys_uses *uses, const char *uid, int64_t *when)
{
    const struct kg_keys_use *slot;

    *when = 0;
    if (uid[0] == '\0' || strlen(uid) > KG_UID_LEN) {
        return false;
    }
    slot = kg_keys_slot(uses->slots, uses->cap, uid);
    if (slot->uid[0] == '\0') {
        return false;
    }
    *when = slot->when;
    return true;
}

size_t kg_keys_uses_count(const struct kg_keys_uses *uses)
{
    return uses->count;
}

/* ---- one line ---- */

static bool kg_keys_digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool kg_keys_audit_parse_time(const char *text, int64_t *out)
{
    struct tm tm, back;
    time_t t;

    *out = 0;
    memset(&tm, 0, sizeof(tm));
    /* One spelling only: the writer's strftime("%Y-%m-%dT%H:%M:%SZ"). */
    if (strlen(text) != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
        text[16] != ':' || text[19] != 'Z' || !kg_keys_digits(text, 4, &tm.tm_year) ||
        !kg_keys_digits(text + 5, 2, &tm.tm_mon) || !kg_keys_digits(text + 8, 2, &tm.tm_mday) ||
        !kg_keys_digits(text + 11, 2, &tm.tm_hour) || !kg_keys_digits(text + 14, 2, &tm.tm_min) ||
        !kg_keys_digits(text + 17, 2, &tm.tm_sec)) {
        return false;
    }
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 59) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    back = tm;
    t = timegm(&tm);
    /* timegm normalises 02-30 to 03-02: a date that moved did not exist. */
    if (t == (time_t)-1 || tm.tm_mday != back.tm_mday || tm.tm_mon != back.tm_mon) {
        return false;
    }
    *out = (int64_t)t;
    return true;
}

/* The members a use is made of, each at most once. */
enum kg_keys_field {
    KG_KEYS_F_TIME,
    KG_KEYS_F_OPERATION,
    KG_KEYS_F_UID,
    KG_KEYS_F_DECISION,
    KG_KEYS_F_RESULT,
    KG_KEYS_F_COUNT,
};

static const char *const kg_keys_field_names[KG_KEYS_F_COUNT] = { "time", "operation", "uid", "decision", "result" };
static const char *const kg_keys_field_twice[KG_KEYS_F_COUNT] = {
    "two \"time\" members", "two \"operation\" members", "two \"uid\" members", "two \"decision\" members",
    "two \"result\" members",
};

struct kg_keys_record {
    bool seen[KG_KEYS_F_COUNT];
    /* The decoded value, or "" when it was not a string or too long to
     * be one of ours (kg_audit_member: such text is NULL). */
    char value[KG_KEYS_F_COUNT][KG_AUDIT_TEXT_MAX];
};

static const char *kg_keys_record_member(void *arg, const struct kg_audit_member *m)
{
    struct kg_keys_record *rec = arg;

    if (m->name == NULL) {
        return NULL;
    }
    for (size_t f = 0; f < KG_KEYS_F_COUNT; f++) {
        if (strcmp(m->name, kg_keys_field_names[f]) != 0) {
            continue;
        }
        if (rec->seen[f]) {
            return kg_keys_field_twice[f];
        }
        rec->seen[f] = true;
        if (m->text != NULL) {
            snprintf(rec->value[f], sizeof(rec->value[f]), "%s", m->text);
        }
        return NULL;
    }
    return NULL;
}

static bool kg_keys_material_op(const char *operation)
{
    for (size_t i = 0; kg_keys_audit_material_ops[i] != NULL; i++) {
        if (strcmp(operation, kg_keys_audit_material_ops[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* A UID the store could hold: 1 to KG_UID_LEN printable ASCII bytes. A
 * non-ASCII character decodes to 0x80 (kg_audit_member) and so is out. */
static bool kg_keys_storable_uid(const char *uid)
{
    size_t n = strlen(uid);

    if (n == 0 || n > KG_UID_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)uid[i] < 0x21 || (unsigned char)uid[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

kg_result kg_keys_audit_line(struct kg_keys_uses *uses, const char *line, size_t len, bool *used, const char **why)
{
    struct kg_keys_record rec;
    int64_t when;

    *used = false;
    memset(&rec, 0, sizeof(rec));
    if (!kg_audit_parse_members(line, len, kg_keys_record_member, &rec, why)) {
        return KG_RESULT_OK;
    }
    if (!rec.seen[KG_KEYS_F_TIME]) {
        *why = "no \"time\" member";
        return KG_RESULT_OK;
    }
    if (!kg_keys_audit_parse_time(rec.value[KG_KEYS_F_TIME], &when)) {
        *why = "\"time\" is not YYYY-MM-DDTHH:MM:SSZ";
        return KG_RESULT_OK;
    }
    if (strcmp(rec.value[KG_KEYS_F_DECISION], "allow") != 0 || strcmp(rec.value[KG_KEYS_F_RESULT], "success") != 0 ||
        !kg_keys_material_op(rec.value[KG_KEYS_F_OPERATION]) || !kg_keys_storable_uid(rec.value[KG_KEYS_F_UID])) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_keys_uses_note(uses, rec.value[KG_KEYS_F_UID], when));
    *used = true;
    return KG_RESULT_OK;
}

kg_result kg_keys_audit_scan(struct kg_keys_uses *uses, const char *path, FILE *diag, struct kg_keys_audit_stats *stats)
{
    struct kg_audit_lines *lines = NULL;
    const char *line, *why;
    size_t len, lineno = 0;
    bool used;
    kg_result rc = KG_RESULT_OK;

    KG_GUARD(kg_audit_lines_open(path, &lines));
    for (;;) {
        enum kg_audit_read got = kg_audit_lines_next(lines, &line, &len);

        if (got == KG_AUDIT_READ_EOF) {
            break;
        }
        if (got == KG_AUDIT_READ_ERROR) {
            kg_error_set(KG_ERR_IO, __FILE__, __LINE__);
            kg_error_detail("cannot read %s: %s", path, strerror(errno));
            rc = KG_RESULT_ERROR;
            goto out;
        }
        lineno++;
        stats->lines++;
        why = NULL;
        if (got == KG_AUDIT_READ_TOO_LONG) {
            why = "line too long";
        } else {
            KG_GOTO_GUARD(rc, kg_keys_audit_line(uses, line, len, &used, &why));
            stats->uses += used ? 1 : 0;
        }
        if (why != NULL) {
            stats->malformed++;
            fprintf(diag, "%s:%zu: %s%s; skipped\n", path, lineno, why,
                    got == KG_AUDIT_READ_LAST ? " (last line, no newline: a write in progress?)" : "");
        }
    }
out:
    kg_audit_lines_close(lines);
    return rc;
}
