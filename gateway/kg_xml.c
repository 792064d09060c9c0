/*
 * kg_xml.c - TTLV <-> KMIP XML (Additional Message Encodings 1.0 section 6.1).
 *
 * libxml2 does all XML parsing and writing; this file maps elements to TTLV
 * items and value text to TTLV values, checking every number's range.
 */
#include "kg_xml.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "kg_kmip.h"

#define KG_XML_MAX_TAGS 1024u
#define KG_XML_TAG_ATTRIBUTE_NAME 0x42000Au
#define KG_XML_TAG_ATTRIBUTE_VALUE 0x42000Bu

/* ---- names ---- */

struct kg_xml_name_entry {
    char name[KG_XML_MAX_NAME];
    uint32_t tag;
    uint32_t order; /* position in the tag table: the 1.4 name wins a tie */
};

static struct kg_xml_name_entry kg_xml_by_name[KG_XML_MAX_TAGS];
static struct kg_xml_name_entry kg_xml_by_tag[KG_XML_MAX_TAGS];
static size_t kg_xml_name_count;
static uint32_t kg_xml_tag_attribute_reference;
static pthread_once_t kg_xml_names_once = PTHREAD_ONCE_INIT;

static bool kg_xml_is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

kg_result kg_xml_normalize(const char *text, char *out, size_t cap)
{
    char buf[256];
    size_t n = strlen(text);
    size_t o = 0;
    size_t i;
    bool first_word = true;

    KG_ENSURE(cap > 0, KG_ERR_WRITER_FULL);
    out[0] = '\0';
    KG_ENSURE(n < sizeof(buf), KG_ERR_WRITER_FULL);
    /* Rules 1 and 2: brackets to spaces; a non-word char before a letter
     * and a lower-case letter becomes a space (the match spans 3 chars). */
    memcpy(buf, text, n + 1);
    for (i = 0; i < n; i++) {
        if (buf[i] == '(' || buf[i] == ')') {
            buf[i] = ' ';
        }
    }
    for (i = 0; i + 2 < n;) {
        if (!kg_xml_is_word(buf[i]) && isalpha((unsigned char)buf[i + 1]) &&
            islower((unsigned char)buf[i + 2])) {
            buf[i] = ' ';
            i += 3;
        } else {
            i++;
        }
    }
    /* Rules 3-6, word by word. */
    for (i = 0; i < n;) {
        char word[256];
        size_t wl = 0;
        size_t digits = 0;

        while (i < n && isspace((unsigned char)buf[i])) {
            i++;
        }
        while (i < n && !isspace((unsigned char)buf[i])) {
            word[wl++] = kg_xml_is_word(buf[i]) ? buf[i] : '_';
            i++;
        }
        if (wl == 0) {
            break;
        }
        if (first_word) {
            while (digits < wl && isdigit((unsigned char)word[digits])) {
                digits++;
            }
            if (digits > 0) {
                char tmp[256];

                memcpy(tmp, word + digits, wl - digits);
                memcpy(tmp + wl - digits, word, digits);
                memcpy(word, tmp, wl);
            }
            first_word = false;
        }
        word[0] = (char)toupper((unsigned char)word[0]);
        KG_ENSURE(cap - o > wl, KG_ERR_WRITER_FULL);
        memcpy(out + o, word, wl);
        o += wl;
    }
    out[o] = '\0';
    return KG_RESULT_OK;
}

static int kg_xml_cmp_name(const void *a, const void *b)
{
    const struct kg_xml_name_entry *x = a;
    const struct kg_xml_name_entry *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0) {
        return c;
    }
    return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

static int kg_xml_cmp_tag(const void *a, const void *b)
{
    const struct kg_xml_name_entry *x = a;
    const struct kg_xml_name_entry *y = b;

    if (x->tag != y->tag) {
        return x->tag < y->tag ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order ? 1 : 0);
}

static void kg_xml_names_build(void)
{
    const struct kg_tag_name *t;
    size_t n = 0;

    for (size_t i = 0; (t = kg_kmip_tag_at(i)) != NULL && n < KG_XML_MAX_TAGS; i++) {
        if (kg_failed(kg_xml_normalize(t->name, kg_xml_by_name[n].name, KG_XML_MAX_NAME))) {
            continue; /* a name too long for the index: reachable as 0x42xxxx */
        }
        kg_xml_by_name[n].tag = t->tag;
        kg_xml_by_name[n].order = (uint32_t)i;
        n++;
    }
    memcpy(kg_xml_by_tag, kg_xml_by_name, n * sizeof(kg_xml_by_name[0]));
    qsort(kg_xml_by_name, n, sizeof(kg_xml_by_name[0]), kg_xml_cmp_name);
    qsort(kg_xml_by_tag, n, sizeof(kg_xml_by_tag[0]), kg_xml_cmp_tag);
    kg_xml_name_count = n;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kg_xml_by_name[i].name, "AttributeReference") == 0) {
            kg_xml_tag_attribute_reference = kg_xml_by_name[i].tag;
            break;
        }
    }
}

static void kg_xml_names_init(void)
{
    (void)pthread_once(&kg_xml_names_once, kg_xml_names_build);
}

/* "0x" and 1..max hex digits, nothing else. */
static bool kg_xml_parse_hex_u64(const char *s, unsigned max_digits, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
        return false;
    }
    for (i = 2; s[i] != '\0'; i++) {
        int d;

        if (i - 2 >= max_digits || !isxdigit((unsigned char)s[i])) {
            return false;
        }
        d = isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10);
        v = (v << 4) | (uint64_t)d;
    }
    if (i == 2) {
        return false;
    }
    *out = v;
    return true;
}

kg_result kg_xml_tag_from_name(const char *name, uint32_t *out)
{
    struct kg_xml_name_entry key;
    size_t lo = 0;
    size_t hi;
    uint64_t v;

    *out = 0;
    if (kg_xml_parse_hex_u64(name, 6, &v)) {
        KG_ENSURE((v >> 16) == 0x42 || (v >> 16) == 0x54, KG_ERR_TTLV_BAD_TAG);
        *out = (uint32_t)v;
        return KG_RESULT_OK;
    }
    KG_ENSURE(strlen(name) < KG_XML_MAX_NAME, KG_ERR_TTLV_BAD_TAG);
    kg_xml_names_init();
    strcpy(key.name, name);
    key.order = 0;
    hi = kg_xml_name_count;
    /* Lower bound: the first entry with this name has the lowest order. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(kg_xml_by_name[mid].name, key.name) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    KG_ENSURE(lo < kg_xml_name_count && strcmp(kg_xml_by_name[lo].name, name) == 0, KG_ERR_TTLV_BAD_TAG);
    *out = kg_xml_by_name[lo].tag;
    return KG_RESULT_OK;
}

const char *kg_xml_tag_name(uint32_t tag)
{
    size_t lo = 0;
    size_t hi;

    kg_xml_names_init();
    hi = kg_xml_name_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (kg_xml_by_tag[mid].tag < tag) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < kg_xml_name_count && kg_xml_by_tag[lo].tag == tag ? kg_xml_by_tag[lo].name : NULL;
}

static const char *const kg_xml_type_names[] = {
    [KG_TTLV_STRUCTURE] = "Structure",
    [KG_TTLV_INTEGER] = "Integer",
    [KG_TTLV_LONG_INTEGER] = "LongInteger",
    [KG_TTLV_BIG_INTEGER] = "BigInteger",
    [KG_TTLV_ENUMERATION] = "Enumeration",
    [KG_TTLV_BOOLEAN] = "Boolean",
    [KG_TTLV_TEXT_STRING] = "TextString",
    [KG_TTLV_BYTE_STRING] = "ByteString",
    [KG_TTLV_DATE_TIME] = "DateTime",
    [KG_TTLV_INTERVAL] = "Interval",
    [KG_TTLV_DATE_TIME_EXTENDED] = "DateTimeExtended",
};

kg_result kg_xml_type_from_name(const char *name, uint8_t *out)
{
    *out = 0;
    for (uint8_t t = KG_TTLV_STRUCTURE; t <= KG_TTLV_DATE_TIME_EXTENDED; t++) {
        if (strcmp(kg_xml_type_names[t], name) == 0) {
            *out = t;
            return KG_RESULT_OK;
        }
    }
    kg_error_set(KG_ERR_TTLV_BAD_TYPE, __FILE__, __LINE__);
    kg_error_detail("unknown type \"%.40s\"", name);
    return KG_RESULT_ERROR;
}

const char *kg_xml_type_name(uint8_t type)
{
    if (type >= KG_TTLV_STRUCTURE && type <= KG_TTLV_DATE_TIME_EXTENDED) {
        return kg_xml_type_names[type];
    }
    return "Unknown";
}

uint32_t kg_xml_context_tag(uint32_t tag, const char *attr_name)
{
    char norm[KG_XML_MAX_NAME];
    uint32_t t;

    if (tag != KG_XML_TAG_ATTRIBUTE_VALUE) {
        return tag;
    }
    if (attr_name == NULL || kg_failed(kg_xml_normalize(attr_name, norm, sizeof(norm))) ||
        norm[0] == '\0' || kg_failed(kg_xml_tag_from_name(norm, &t))) {
        kg_error_clear();
        return 0;
    }
    return t;
}

/* ---- values: text -> TTLV ---- */

static kg_result kg_xml_bad_value(const char *type, const char *value)
{
    kg_error_set(KG_ERR_TTLV_BAD_VALUE, __FILE__, __LINE__);
    kg_error_detail("bad %s value \"%.60s\"", type, value ? value : "(absent)");
    return KG_RESULT_ERROR;
}

static bool kg_xml_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (s[0] == '\0' || isspace((unsigned char)s[0])) {
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static const struct kg_enum_name *kg_xml_enum_by_name(const struct kg_enum_table *t, const char *name,
                                                      size_t len)
{
    if (t == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < t->count; i++) {
        if (strlen(t->names[i].name) == len && memcmp(t->names[i].name, name, len) == 0) {
            return &t->names[i];
        }
    }
    return NULL;
}

/* An Integer: decimal, "0x" and 8 hex digits, or (for a mask) a
 * space-separated list of bit names and hex values (section 6.1.6.4). */
static bool kg_xml_parse_integer(const char *s, uint32_t ctx_tag, int32_t *out)
{
    const struct kg_enum_table *t = kg_kmip_enum_table(ctx_tag);
    uint32_t mask = 0;
    uint64_t h;
    int64_t v;
    const char *p = s;

    if (kg_xml_parse_i64(s, INT32_MIN, INT32_MAX, &v)) {
        *out = (int32_t)v;
        return true;
    }
    if (kg_xml_parse_hex_u64(s, 8, &h)) {
        *out = (int32_t)(uint32_t)h;
        return true;
    }
    if (t == NULL || !t->mask) {
        return false;
    }
    for (;;) {
        char tok[KG_XML_MAX_NAME];
        size_t len = 0;
        const struct kg_enum_name *e;

        while (*p != '\0' && isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        while (p[len] != '\0' && !isspace((unsigned char)p[len])) {
            len++;
        }
        if (len >= sizeof(tok)) {
            return false;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        p += len;
        if ((e = kg_xml_enum_by_name(t, tok, len)) != NULL) {
            mask |= e->value;
        } else if (kg_xml_parse_hex_u64(tok, 8, &h)) {
            mask |= (uint32_t)h;
        } else {
            return false;
        }
    }
    *out = (int32_t)mask;
    return true;
}

static bool kg_xml_parse_enum(const char *s, uint32_t ctx_tag, uint32_t *out)
{
    uint64_t h;
    const struct kg_enum_name *e;
    uint32_t tag;

    if (kg_xml_parse_hex_u64(s, 8, &h)) {
        *out = (uint32_t)h;
        return true;
    }
    kg_xml_names_init();
    if (ctx_tag != 0 && ctx_tag == kg_xml_tag_attribute_reference) {
        /* KMIP 2.x: the value is a tag, written by its name. */
        if (kg_ok(kg_xml_tag_from_name(s, &tag))) {
            *out = tag;
            return true;
        }
        kg_error_clear();
        return false;
    }
    if ((e = kg_xml_enum_by_name(kg_kmip_enum_table(ctx_tag), s, strlen(s))) != NULL) {
        *out = e->value;
        return true;
    }
    return false;
}

static int kg_xml_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Hex digits (even count) to bytes; *out malloc'ed (at least 1 byte). */
static bool kg_xml_parse_hexbin(const char *s, size_t pad_to, uint8_t **out, uint32_t *out_len)
{
    size_t n = strlen(s);
    size_t bytes;
    size_t total;
    size_t lead;
    uint8_t *b;

    *out = NULL;
    *out_len = 0;
    if (n % 2 != 0 || n / 2 > UINT32_MAX - 8) {
        return false;
    }
    bytes = n / 2;
    total = pad_to > 1 ? (bytes + pad_to - 1) / pad_to * pad_to : bytes;
    lead = total - bytes;
    b = calloc(total + 1, 1);
    if (b == NULL) {
        return false;
    }
    for (size_t i = 0; i < bytes; i++) {
        int hi = kg_xml_hexval(s[2 * i]);
        int lo = kg_xml_hexval(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[lead + i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *out_len = (uint32_t)total;
    return true;
}

static bool kg_xml_digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/*
 * xsd:dateTime "YYYY-MM-DDTHH:MM:SS[.f+][Z|(+|-)HH:MM]" (no zone: UTC) to
 * seconds and microseconds since the Epoch.
 */
static bool kg_xml_parse_datetime(const char *s, int64_t *secs, int64_t *usecs)
{
    struct tm tm;
    int y, mo, d, h, mi, se, zh = 0, zm = 0;
    int64_t frac = 0;
    int64_t t;
    size_t i = 19;

    if (strlen(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !kg_xml_digits(s, 4, &y) || !kg_xml_digits(s + 5, 2, &mo) ||
        !kg_xml_digits(s + 8, 2, &d) || !kg_xml_digits(s + 11, 2, &h) || !kg_xml_digits(s + 14, 2, &mi) ||
        !kg_xml_digits(s + 17, 2, &se)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
        return false;
    }
    if (s[i] == '.') {
        int scale = 0;

        i++;
        while (isdigit((unsigned char)s[i])) {
            if (scale < 6) {
                frac = frac * 10 + (s[i] - '0');
                scale++;
            }
            i++;
        }
        if (scale == 0) {
            return false;
        }
        while (scale++ < 6) {
            frac *= 10;
        }
    }
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        if (strlen(s + i) != 6 || s[i + 3] != ':' || !kg_xml_digits(s + i + 1, 2, &zh) ||
            !kg_xml_digits(s + i + 4, 2, &zm) || zh > 14 || zm > 59) {
            return false;
        }
        if (s[i] == '-') {
            zh = -zh;
            zm = -zm;
        }
        i += 6;
    }
    if (s[i] != '\0') {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    t = (int64_t)timegm(&tm);
    *secs = t - (int64_t)zh * 3600 - (int64_t)zm * 60;
    *usecs = frac;
    return true;
}

kg_result kg_xml_write_leaf(struct kg_ttlv_writer *w, uint32_t tag, uint8_t type, uint32_t ctx_tag,
                            const char *value)
{
    const char *tname = kg_xml_type_name(type);
    const char *v = value ? value : "";
    int64_t i64;
    uint64_t h;
    int32_t i32;
    uint32_t u32;
    uint8_t *bytes = NULL;
    uint32_t blen = 0;
    kg_result rc;

    if (value == NULL && type != KG_TTLV_TEXT_STRING && type != KG_TTLV_BYTE_STRING) {
        return kg_xml_bad_value(tname, value);
    }
    switch (type) {
    case KG_TTLV_INTEGER:
        if (!kg_xml_parse_integer(v, ctx_tag, &i32)) {
            return kg_xml_bad_value(tname, v);
        }
        return kg_ttlv_write_int(w, tag, i32);
    case KG_TTLV_LONG_INTEGER:
        if (kg_xml_parse_hex_u64(v, 16, &h)) {
            return kg_ttlv_write_long(w, tag, (int64_t)h);
        }
        if (!kg_xml_parse_i64(v, INT64_MIN, INT64_MAX, &i64)) {
            return kg_xml_bad_value(tname, v);
        }
        return kg_ttlv_write_long(w, tag, i64);
    case KG_TTLV_ENUMERATION:
        if (!kg_xml_parse_enum(v, ctx_tag, &u32)) {
            return kg_xml_bad_value(tname, v);
        }
        return kg_ttlv_write_enum(w, tag, u32);
    case KG_TTLV_BOOLEAN:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            return kg_ttlv_write_bool(w, tag, true);
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            return kg_ttlv_write_bool(w, tag, false);
        }
        return kg_xml_bad_value(tname, v);
    case KG_TTLV_TEXT_STRING:
        KG_ENSURE(strlen(v) <= UINT32_MAX, KG_ERR_TTLV_TOO_LONG);
        return kg_ttlv_write_text(w, tag, v, (uint32_t)strlen(v));
    case KG_TTLV_BYTE_STRING:
    case KG_TTLV_BIG_INTEGER:
        if (!kg_xml_parse_hexbin(v, type == KG_TTLV_BIG_INTEGER ? 8 : 1, &bytes, &blen)) {
            return kg_xml_bad_value(tname, v);
        }
        rc = type == KG_TTLV_BIG_INTEGER ? kg_ttlv_write_bigint(w, tag, bytes, blen)
                                         : kg_ttlv_write_bytes(w, tag, bytes, blen);
        free(bytes);
        return rc;
    case KG_TTLV_DATE_TIME:
    case KG_TTLV_DATE_TIME_EXTENDED: {
        int64_t usecs = 0;

        if (kg_xml_parse_hex_u64(v, 16, &h)) {
            i64 = (int64_t)h;
        } else if (kg_xml_parse_datetime(v, &i64, &usecs)) {
            if (type == KG_TTLV_DATE_TIME_EXTENDED) {
                KG_ENSURE(i64 < INT64_MAX / 1000000 && i64 > INT64_MIN / 1000000, KG_ERR_TTLV_BAD_VALUE);
                i64 = i64 * 1000000 + usecs;
            }
        } else {
            return kg_xml_bad_value(tname, v);
        }
        return type == KG_TTLV_DATE_TIME ? kg_ttlv_write_datetime(w, tag, i64)
                                         : kg_ttlv_write_datetime_ext(w, tag, i64);
    }
    case KG_TTLV_INTERVAL:
        if (kg_xml_parse_hex_u64(v, 8, &h)) {
            return kg_ttlv_write_interval(w, tag, (uint32_t)h);
        }
        if (!kg_xml_parse_i64(v, 0, UINT32_MAX, &i64)) {
            return kg_xml_bad_value(tname, v);
        }
        return kg_ttlv_write_interval(w, tag, (uint32_t)i64);
    default:
        kg_error_set(KG_ERR_TTLV_BAD_TYPE, __FILE__, __LINE__);
        kg_error_detail("type %s has no value", tname);
        return KG_RESULT_ERROR;
    }
}

/* ---- values: TTLV -> text ---- */

/* A growable NUL-terminated string; `ok` false once an allocation failed. */
struct kg_xml_str {
    char *s;
    size_t len;
    size_t cap;
    bool ok;
};

static void kg_xml_str_add(struct kg_xml_str *b, const char *text, size_t n)
{
    if (!b->ok) {
        return;
    }
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->ok = false;
                return;
            }
            cap *= 2;
        }
        p = realloc(b->s, cap);
        if (p == NULL) {
            b->ok = false;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void kg_xml_str_addf(struct kg_xml_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kg_xml_str_addf(struct kg_xml_str *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->ok = false;
        return;
    }
    kg_xml_str_add(b, tmp, (size_t)n);
}

static void kg_xml_str_hex(struct kg_xml_str *b, const uint8_t *p, uint32_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (uint32_t i = 0; i < n; i++) {
        char two[2] = { digits[p[i] >> 4], digits[p[i] & 15] };

        kg_xml_str_add(b, two, 2);
    }
    if (n == 0) {
        kg_xml_str_add(b, "", 0);
    }
}

static void kg_xml_str_datetime(struct kg_xml_str *b, int64_t secs, int64_t usecs, bool ext)
{
    struct tm tm;
    time_t t = (time_t)secs;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        kg_xml_str_addf(b, "0x%016llx", (unsigned long long)(ext ? secs * 1000000 + usecs : secs));
        return;
    }
    kg_xml_str_addf(b, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                    tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (ext) {
        kg_xml_str_addf(b, ".%06lld", (long long)usecs);
    }
    kg_xml_str_add(b, "Z", 1);
}

kg_result kg_xml_leaf_text(const struct kg_ttlv_item *it, uint32_t ctx_tag, char **out)
{
    struct kg_xml_str b = { .ok = true };
    const struct kg_enum_table *t = kg_kmip_enum_table(ctx_tag);
    const uint8_t *bytes;
    const char *text;
    uint32_t n;
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    bool flag;

    *out = NULL;
    switch (it->type) {
    case KG_TTLV_INTEGER:
        KG_GUARD(kg_ttlv_get_int(it, &i32));
        if (t != NULL && t->mask && i32 != 0) {
            uint32_t rest = (uint32_t)i32;
            bool first = true;

            for (uint32_t i = 0; i < t->count; i++) {
                if (t->names[i].value != 0 && (rest & t->names[i].value) == t->names[i].value) {
                    kg_xml_str_addf(&b, "%s%s", first ? "" : " ", t->names[i].name);
                    rest &= ~t->names[i].value;
                    first = false;
                }
            }
            if (rest != 0) {
                kg_xml_str_addf(&b, "%s0x%08x", first ? "" : " ", rest);
            }
        } else {
            kg_xml_str_addf(&b, "%d", i32);
        }
        break;
    case KG_TTLV_LONG_INTEGER:
        KG_GUARD(kg_ttlv_get_long(it, &i64));
        kg_xml_str_addf(&b, "%lld", (long long)i64);
        break;
    case KG_TTLV_BIG_INTEGER:
    case KG_TTLV_BYTE_STRING:
        KG_GUARD(kg_ttlv_get_bytes(it, &bytes, &n));
        kg_xml_str_hex(&b, bytes, n);
        break;
    case KG_TTLV_ENUMERATION: {
        const char *name = NULL;

        KG_GUARD(kg_ttlv_get_enum(it, &u32));
        kg_xml_names_init();
        if (ctx_tag != 0 && ctx_tag == kg_xml_tag_attribute_reference) {
            name = kg_xml_tag_name(u32);
        } else if (t != NULL && !t->mask) {
            for (uint32_t i = 0; i < t->count; i++) {
                if (t->names[i].value == u32) {
                    name = t->names[i].name;
                    break;
                }
            }
        }
        if (name != NULL) {
            kg_xml_str_add(&b, name, strlen(name));
        } else {
            kg_xml_str_addf(&b, "0x%08x", u32);
        }
        break;
    }
    case KG_TTLV_BOOLEAN:
        KG_GUARD(kg_ttlv_get_bool(it, &flag));
        kg_xml_str_add(&b, flag ? "true" : "false", flag ? 4 : 5);
        break;
    case KG_TTLV_TEXT_STRING:
        KG_GUARD(kg_ttlv_get_text(it, &text, &n));
        kg_xml_str_add(&b, text, n);
        break;
    case KG_TTLV_DATE_TIME:
        KG_GUARD(kg_ttlv_get_datetime(it, &i64));
        kg_xml_str_datetime(&b, i64, 0, false);
        break;
    case KG_TTLV_DATE_TIME_EXTENDED:
        KG_GUARD(kg_ttlv_get_datetime_ext(it, &i64));
        kg_xml_str_datetime(&b, i64 / 1000000 - (i64 % 1000000 < 0), (i64 % 1000000 + 1000000) % 1000000, true);
        break;
    case KG_TTLV_INTERVAL:
        KG_GUARD(kg_ttlv_get_interval(it, &u32));
        kg_xml_str_addf(&b, "%u", u32);
        break;
    default:
        KG_BAIL(KG_ERR_TTLV_BAD_TYPE);
    }
    if (!b.ok || b.s == NULL) {
        free(b.s);
        KG_BAIL(KG_ERR_NOMEM);
    }
    *out = b.s;
    return KG_RESULT_OK;
}

/* ---- elements: XML -> TTLV ---- */

static const char *kg_xml_node_name(const xmlNode *node)
{
    return (const char *)node->name;
}

/* The value attribute of the first element child named `name`, malloc'ed by
 * libxml2 (xmlFree), or NULL. */
static xmlChar *kg_xml_child_value(const xmlNode *parent, const char *name)
{
    for (const xmlNode *c = parent->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && strcmp(kg_xml_node_name(c), name) == 0) {
            return xmlGetProp(c, BAD_CAST "value");
        }
    }
    return NULL;
}

static kg_result kg_xml_encode(const xmlNode *node, struct kg_ttlv_writer *w, const char *attr_name)
{
    const char *name = kg_xml_node_name(node);
    xmlChar *tag_attr = NULL;
    xmlChar *type_attr = NULL;
    xmlChar *value = NULL;
    xmlChar *sibling_name = NULL;
    uint32_t tag = 0;
    uint8_t type = KG_TTLV_STRUCTURE;
    kg_result rc = KG_RESULT_OK;

    if (strcmp(name, "TTLV") == 0) {
        tag_attr = xmlGetProp(node, BAD_CAST "tag");
        if (tag_attr == NULL || kg_failed(kg_xml_tag_from_name((const char *)tag_attr, &tag))) {
            kg_error_set(KG_ERR_TTLV_BAD_TAG, __FILE__, __LINE__);
            kg_error_detail("line %d: <TTLV> needs tag=\"0x42xxxx\" or \"0x54xxxx\"", node->line);
            KG_GOTO_BAIL(rc, KG_ERR_TTLV_BAD_TAG);
        }
    } else if (kg_failed(kg_xml_tag_from_name(name, &tag))) {
        kg_error_detail("line %d: unknown tag <%.60s>", node->line, name);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    type_attr = xmlGetProp(node, BAD_CAST "type");
    if (type_attr != NULL && kg_failed(kg_xml_type_from_name((const char *)type_attr, &type))) {
        kg_error_detail("line %d: <%.60s> has unknown type \"%.40s\"", node->line, name,
                        (const char *)type_attr);
        rc = KG_RESULT_ERROR;
        goto out;
    }
    if (type == KG_TTLV_STRUCTURE) {
        sibling_name = kg_xml_child_value(node, "AttributeName");
        KG_GOTO_GUARD(rc, kg_ttlv_begin_struct(w, tag));
        for (const xmlNode *c = node->children; c != NULL; c = c->next) {
            if (c->type == XML_ELEMENT_NODE) {
                KG_GOTO_GUARD(rc, kg_xml_encode(c, w, (const char *)sibling_name));
            }
        }
        KG_GOTO_GUARD(rc, kg_ttlv_end_struct(w));
    } else {
        for (const xmlNode *c = node->children; c != NULL; c = c->next) {
            if (c->type == XML_ELEMENT_NODE) {
                kg_error_set(KG_ERR_TTLV_BAD_TYPE, __FILE__, __LINE__);
                kg_error_detail("line %d: <%.60s> is not a Structure but has children", node->line, name);
                KG_GOTO_BAIL(rc, KG_ERR_TTLV_BAD_TYPE);
            }
        }
        value = xmlGetProp(node, BAD_CAST "value");
        rc = kg_xml_write_leaf(w, tag, type, kg_xml_context_tag(tag, attr_name), (const char *)value);
        if (kg_failed(rc) && kg_errno() == KG_ERR_TTLV_BAD_VALUE) {
            char detail[160];

            snprintf(detail, sizeof(detail), "%s", kg_error_text());
            kg_error_detail("line %d: <%.60s>: %s", node->line, name, detail);
        }
    }
out:
    xmlFree(tag_attr);
    xmlFree(type_attr);
    xmlFree(value);
    xmlFree(sibling_name);
    return rc;
}

kg_result kg_xml_node_to_ttlv(const xmlNode *node, struct kg_ttlv_writer *w)
{
    uint32_t mark = w->len;
    uint32_t depth_mark = w->depth;

    KG_ENSURE(node != NULL && node->type == XML_ELEMENT_NODE, KG_ERR_TTLV_BAD_VALUE);
    if (kg_failed(kg_xml_encode(node, w, NULL))) {
        kg_ttlv_writer_rewind(w, mark, depth_mark);
        return KG_RESULT_ERROR;
    }
    return KG_RESULT_OK;
}

kg_result kg_xml_to_ttlv(const char *xml, size_t len, struct kg_ttlv_writer *w)
{
    xmlDoc *doc;
    kg_result rc;

    KG_ENSURE(len <= KG_XML_MAX_INPUT, KG_ERR_TTLV_TOO_LONG);
    /* No network, no entity expansion, no DTD loading: the input is data. */
    doc = xmlReadMemory(xml, (int)len, "input.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        const xmlError *e = xmlGetLastError();
        const char *msg = e && e->message ? e->message : "?";

        /* libxml2's messages end in a newline: keep the error on one line. */
        kg_error_set(KG_ERR_TTLV_BAD_VALUE, __FILE__, __LINE__);
        kg_error_detail("not well-formed XML (line %d: %.*s)", e ? e->line : 0, (int)strcspn(msg, "\n"), msg);
        return KG_RESULT_ERROR;
    }
    rc = kg_xml_node_to_ttlv(xmlDocGetRootElement(doc), w);
    xmlFreeDoc(doc);
    return rc;
}

/* ---- elements: TTLV -> XML ---- */

static kg_result kg_xml_set_prop(xmlNode *node, const char *name, const char *value)
{
    KG_ENSURE(xmlNewProp(node, BAD_CAST name, BAD_CAST value) != NULL, KG_ERR_NOMEM);
    return KG_RESULT_OK;
}

static kg_result kg_xml_decode_item(struct kg_ttlv_reader *r, const struct kg_ttlv_item *it,
                                    const char *attr_name, xmlNode **out);

/* Decode every item of `r` as children of `parent`. */
static kg_result kg_xml_decode_children(struct kg_ttlv_reader *r, xmlNode *parent)
{
    char *attr_name = NULL; /* the last Attribute Name seen at this level */
    kg_result rc = KG_RESULT_OK;

    while (!kg_ttlv_reader_done(r)) {
        struct kg_ttlv_item it;
        xmlNode *child = NULL;

        KG_GOTO_GUARD(rc, kg_ttlv_read(r, &it));
        KG_GOTO_GUARD(rc, kg_xml_decode_item(r, &it, attr_name, &child));
        if (xmlAddChild(parent, child) == NULL) {
            xmlFreeNode(child);
            KG_GOTO_BAIL(rc, KG_ERR_NOMEM);
        }
        if (it.tag == KG_XML_TAG_ATTRIBUTE_NAME && it.type == KG_TTLV_TEXT_STRING) {
            free(attr_name);
            KG_GOTO_GUARD(rc, kg_xml_leaf_text(&it, 0, &attr_name));
        }
    }
    KG_GOTO_GUARD(rc, kg_ttlv_reader_finish(r));
out:
    free(attr_name);
    return rc;
}

static kg_result kg_xml_decode_item(struct kg_ttlv_reader *r, const struct kg_ttlv_item *it,
                                    const char *attr_name, xmlNode **out)
{
    const char *name = kg_xml_tag_name(it->tag);
    xmlNode *node;
    char *text = NULL;
    kg_result rc = KG_RESULT_OK;

    *out = NULL;
    node = xmlNewNode(NULL, BAD_CAST(name ? name : "TTLV"));
    KG_ENSURE(node != NULL, KG_ERR_NOMEM);
    if (name == NULL) {
        char hex[16];

        snprintf(hex, sizeof(hex), "0x%06x", it->tag);
        KG_GOTO_GUARD(rc, kg_xml_set_prop(node, "tag", hex));
    }
    if (it->type == KG_TTLV_STRUCTURE) {
        struct kg_ttlv_reader child;

        KG_GOTO_GUARD(rc, kg_ttlv_child(r, it, &child));
        KG_GOTO_GUARD(rc, kg_xml_decode_children(&child, node));
    } else {
        KG_GOTO_GUARD(rc, kg_xml_set_prop(node, "type", kg_xml_type_name(it->type)));
        KG_GOTO_GUARD(rc, kg_xml_leaf_text(it, kg_xml_context_tag(it->tag, attr_name), &text));
        KG_GOTO_GUARD(rc, kg_xml_set_prop(node, "value", text));
    }
out:
    free(text);
    if (kg_failed(rc)) {
        xmlFreeNode(node);
        return rc;
    }
    *out = node;
    return KG_RESULT_OK;
}

kg_result kg_xml_from_ttlv_node(const uint8_t *ttlv, uint32_t len, xmlNode **out)
{
    struct kg_ttlv_limits limits = kg_ttlv_default_limits;
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;

    *out = NULL;
    limits.max_message_len = len;
    limits.max_items = UINT32_MAX;
    limits.max_depth = KG_TTLV_MAX_DEPTH;
    kg_ttlv_budget_init(&budget, &limits);
    KG_GUARD(kg_ttlv_reader_init(&r, ttlv, len, &budget));
    KG_GUARD(kg_ttlv_read(&r, &it));
    KG_GUARD(kg_ttlv_reader_finish(&r));
    return kg_xml_decode_item(&r, &it, NULL, out);
}

kg_result kg_xml_from_ttlv(const uint8_t *ttlv, uint32_t len, char **out, size_t *out_len)
{
    xmlNode *node = NULL;
    xmlDoc *doc = NULL;
    xmlBuffer *buf = NULL;
    kg_result rc = KG_RESULT_OK;
    int n;

    *out = NULL;
    *out_len = 0;
    KG_GOTO_GUARD(rc, kg_xml_from_ttlv_node(ttlv, len, &node));
    doc = xmlNewDoc(BAD_CAST "1.0");
    buf = xmlBufferCreate();
    KG_GOTO_ENSURE(rc, doc != NULL && buf != NULL, KG_ERR_NOMEM);
    xmlDocSetRootElement(doc, node);
    node = NULL; /* the document owns it now */
    n = xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 1);
    KG_GOTO_ENSURE(rc, n >= 0, KG_ERR_NOMEM);
    *out = malloc((size_t)xmlBufferLength(buf) + 2);
    KG_GOTO_ENSURE(rc, *out != NULL, KG_ERR_NOMEM);
    memcpy(*out, xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
    (*out)[xmlBufferLength(buf)] = '\n';
    (*out)[xmlBufferLength(buf) + 1] = '\0';
    *out_len = (size_t)xmlBufferLength(buf) + 1;
out:
    xmlFreeNode(node);
    xmlFreeDoc(doc);
    if (buf != NULL) {
        xmlBufferFree(buf);
    }
    return rc;
}
