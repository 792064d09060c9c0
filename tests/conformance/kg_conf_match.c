/* kg_conf_match.c - placeholders and response matching for kg-conformance. */
#include "kg_conf_match.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_ttlv.h"
#include "kg_xml.h"

#define KG_CONF_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Values the server chooses: any value of the right type matches. Looked up
 * by the context tag, so an Attribute Value named "Initial Date" counts. */
static const char *const kg_conf_server_chosen[] = {
    "TimeStamp", "UniqueIdentifier", "InitialDate", "LastChangeDate", "OriginalCreationDate",
    "ServerCorrelationValue", "AsynchronousCorrelationValue", "IVCounterNonce", "RandomIV",
    /* Dates the server records when an operation runs (Activate, Revoke,
     * Destroy, Archive): the 1.0 vectors carry the reference server's
     * clock, the later ones $NOW. */
    "ActivationDate", "DeactivationDate", "CompromiseDate", "DestroyDate", "ArchiveDate",
    /* The server's own random number generator (KMIP 1.4 section 3.44). */
    "RNGAlgorithm",
    /* The longest lease the server grants (3.15, 4.17): its policy. */
    "LeaseTime",
    /* Free text: the specification gives no wording. */
    "ResultMessage",
};

void kg_conf_bindings_free(struct kg_conf_bindings *b)
{
    for (size_t i = 0; i < b->count; i++) {
        free(b->items[i].value);
        b->items[i].value = NULL;
    }
    b->count = 0;
}

static void kg_conf_bindings_truncate(struct kg_conf_bindings *b, size_t count)
{
    while (b->count > count) {
        b->count--;
        free(b->items[b->count].value);
        b->items[b->count].value = NULL;
    }
}

/* The latest binding of `name` (see kg_conf_rebinds). */
static const char *kg_conf_lookup(const struct kg_conf_bindings *b, const char *name)
{
    for (size_t i = b->count; i-- > 0;) {
        if (strcmp(b->items[i].name, name) == 0) {
            return b->items[i].value;
        }
    }
    return NULL;
}

/*
 * Placeholders the vectors reuse for a fresh value in each response: every
 * Operation Pending answer carries a new $ASYNCHRONOUS_CORRELATION_VALUE
 * (TC_32, TC_101), and the Poll or Cancel after it names that one. Such a
 * placeholder is bound again, on top of the earlier binding (so that a
 * failed alternative's truncation still undoes it).
 */
static bool kg_conf_rebinds(const char *name)
{
    return strcmp(name, "ASYNCHRONOUS_CORRELATION_VALUE") == 0;
}

/*
 * Collapse runs of spaces to one, in place. Some OASIS 1.0 vectors carry
 * attribute names with runs of spaces ("Unique   Identifier"), an artifact
 * of their conversion from the specification's tables: no attribute name
 * has two spaces in a row, so the runner sends and expects the real name.
 */
static void kg_conf_collapse_spaces(char *s)
{
    size_t o = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == ' ' && o > 0 && s[o - 1] == ' ') {
            continue;
        }
        s[o++] = s[i];
    }
    s[o] = '\0';
}

static bool kg_conf_is_attribute_name(const xmlNode *n)
{
    return strcmp((const char *)n->name, "AttributeName") == 0;
}

/* "$NOW", "$NOW+k", "$NOW-k": true and *out set; false for other names. */
static bool kg_conf_now(const char *v, time_t now, time_t *out)
{
    char *end = NULL;
    long k;

    if (strncmp(v, "$NOW", 4) != 0) {
        return false;
    }
    if (v[4] == '\0') {
        *out = now;
        return true;
    }
    if (v[4] != '+' && v[4] != '-') {
        return false;
    }
    k = strtol(v + 5, &end, 10);
    if (*end != '\0' || end == v + 5 || k < 0 || k > 100L * 365 * 86400) {
        return false;
    }
    *out = v[4] == '+' ? now + k : now - k;
    return true;
}

kg_result kg_conf_bind_request(xmlNode *req, const struct kg_conf_bindings *b, time_t now)
{
    xmlChar *v;

    if (req->type != XML_ELEMENT_NODE) {
        return KG_RESULT_OK;
    }
    v = xmlGetProp(req, BAD_CAST "value");
    if (v != NULL && kg_conf_is_attribute_name(req) && strstr((const char *)v, "  ") != NULL) {
        kg_conf_collapse_spaces((char *)v);
        if (xmlSetProp(req, BAD_CAST "value", v) == NULL) {
            xmlFree(v);
            KG_BAIL(KG_ERR_NOMEM);
        }
    }
    if (v != NULL && v[0] == '$') {
        char text[40];
        const char *bound = NULL;
        time_t t;
        struct tm tm;

        if (kg_conf_now((const char *)v, now, &t)) {
            if (gmtime_r(&t, &tm) == NULL) {
                xmlFree(v);
                KG_BAIL(KG_ERR_INTERNAL);
            }
            strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
            bound = text;
        } else {
            bound = kg_conf_lookup(b, (const char *)v + 1);
        }
        if (bound == NULL) {
            kg_error_set(KG_ERR_MISSING_FIELD, __FILE__, __LINE__);
            kg_error_detail("line %d: placeholder %.60s is not bound", req->line, (const char *)v);
            xmlFree(v);
            return KG_RESULT_ERROR;
        }
        if (xmlSetProp(req, BAD_CAST "value", BAD_CAST bound) == NULL) {
            xmlFree(v);
            KG_BAIL(KG_ERR_NOMEM);
        }
    }
    xmlFree(v);
    /* Recursion depth is the XML nesting, which libxml2 caps (256). */
    for (xmlNode *c = req->children; c != NULL; c = c->next) {
        KG_GUARD(kg_conf_bind_request(c, b, now));
    }
    return KG_RESULT_OK;
}

/* ---- matching ---- */

/* Server-chosen only when the server generated the key (kg_conf_match). */
static const char *const kg_conf_key_bytes[] = { "KeyMaterial", "DigestValue" };

static const char *const kg_conf_generating_ops[] = {
    "Create", "CreateKeyPair", "ReKey", "ReKeyKeyPair", "DeriveKey", "CreateSplitKey", "JoinSplitKey",
};

bool kg_conf_server_generates_keys(const xmlNode *root)
{
    for (const xmlNode *n = root; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (strcmp((const char *)n->name, "Operation") == 0 && n->parent != NULL &&
            n->parent->parent != NULL && strcmp((const char *)n->parent->parent->name, "RequestMessage") == 0) {
            xmlChar *v = xmlGetProp(n, BAD_CAST "value");
            bool hit = false;

            for (size_t i = 0; v != NULL && i < KG_CONF_COUNT(kg_conf_generating_ops); i++) {
                hit = hit || strcmp((const char *)v, kg_conf_generating_ops[i]) == 0;
            }
            xmlFree(v);
            if (hit) {
                return true;
            }
        }
        /* A Locate of Fresh group members finds keys the server made ahead
         * of need (TC_151: Client Registration Method Server Pre-Generated). */
        if (strcmp((const char *)n->name, "ObjectGroupMember") == 0) {
            xmlChar *v = xmlGetProp(n, BAD_CAST "value");
            bool fresh = v != NULL && strcmp((const char *)v, "GroupMemberFresh") == 0;

            xmlFree(v);
            if (fresh) {
                return true;
            }
        }
        if (n->children != NULL && kg_conf_server_generates_keys(n->children)) {
            return true;
        }
    }
    return false;
}

struct kg_conf_ctx {
    bool server_keys;
    struct kg_conf_bindings *b;
    char *why;
    size_t why_cap;
};

static void kg_conf_why(struct kg_conf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kg_conf_why(struct kg_conf_ctx *c, const char *fmt, ...)
{
    va_list ap;

    if (c->why == NULL || c->why_cap == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(c->why, c->why_cap, fmt, ap);
    va_end(ap);
}

static bool kg_conf_expected_tag(const xmlNode *n, uint32_t *tag)
{
    bool ok;

    if (strcmp((const char *)n->name, "TTLV") == 0) {
        xmlChar *t = xmlGetProp(n, BAD_CAST "tag");

        ok = t != NULL && kg_ok(kg_xml_tag_from_name((const char *)t, tag));
        xmlFree(t);
    } else {
        ok = kg_ok(kg_xml_tag_from_name((const char *)n->name, tag));
    }
    kg_error_clear();
    return ok;
}

static const char *kg_conf_tag_text(uint32_t tag, char buf[16])
{
    const char *name = kg_xml_tag_name(tag);

    if (name != NULL) {
        return name;
    }
    snprintf(buf, 16, "0x%06x", tag);
    return buf;
}

static bool kg_conf_is_server_chosen(uint32_t ctx_tag, bool server_keys)
{
    const char *name = kg_xml_tag_name(ctx_tag);

    for (size_t i = 0; name != NULL && server_keys && i < KG_CONF_COUNT(kg_conf_key_bytes); i++) {
        if (strcmp(name, kg_conf_key_bytes[i]) == 0) {
            return true;
        }
    }

    for (size_t i = 0; name != NULL && i < KG_CONF_COUNT(kg_conf_server_chosen); i++) {
        if (strcmp(name, kg_conf_server_chosen[i]) == 0) {
            return true;
        }
    }
    return false;
}

static bool kg_conf_match_item(struct kg_conf_ctx *c, const xmlNode *exp, const struct kg_ttlv_reader *r,
                               const struct kg_ttlv_item *act, const char *attr_name, const char *path);

/*
 * Is `tag` one the server may leave out and did? A Server Correlation Value
 * is for the server's own logs (KMIP 1.4 section 6.19, optional in every
 * response header); the reference server of the BL cases sent one.
 */
static bool kg_conf_optional_absent(uint32_t tag, const struct kg_ttlv_item *items, size_t n_items)
{
    if (tag != 0x420106) { /* Server Correlation Value */
        return false;
    }
    for (size_t j = 0; j < n_items; j++) {
        if (items[j].tag == tag) {
            return false;
        }
    }
    return true;
}

/*
 * Is kids[i] an Attribute Reference leaf that an earlier sibling already
 * names? A list of attribute references names each attribute once; the 2.x
 * SKFF-M-9 to -12 answers of the reference server list State twice, and a
 * server that lists it once is not wrong for it.
 */
static bool kg_conf_repeats_reference(const xmlNode *const *kids, size_t i)
{
    bool repeat = false;
    xmlChar *v;

    if (strcmp((const char *)kids[i]->name, "AttributeReference") != 0 || !xmlHasProp(kids[i], BAD_CAST "value")) {
        return false;
    }
    v = xmlGetProp(kids[i], BAD_CAST "value");
    for (size_t j = 0; j < i && !repeat; j++) {
        xmlChar *w;

        if (strcmp((const char *)kids[j]->name, "AttributeReference") != 0) {
            continue;
        }
        w = xmlGetProp(kids[j], BAD_CAST "value");
        repeat = v != NULL && w != NULL && xmlStrcmp(v, w) == 0;
        xmlFree(w);
    }
    xmlFree(v);
    return repeat;
}

/* Structures the server fills in about itself: any Structure matches. The
 * Random Number Generator attribute (KMIP 1.4 section 3.44) describes the
 * server's own generator (the reference server's was ANSI X9.31 over 3DES;
 * kmipgw's is the HSM's, "Unspecified"). Looked up by context tag. */
static bool kg_conf_is_server_chosen_struct(uint32_t ctx_tag)
{
    const char *name = kg_xml_tag_name(ctx_tag);

    return name != NULL && strcmp(name, "RandomNumberGenerator") == 0;
}

/*
 * A Query answer is the server's own description of itself: the vectors'
 * README ("values the server chooses match any value of their type") makes
 * the reference server's list of Operations and Object Types, its Vendor
 * Identification and what it put inside Server Information (vendor-specific,
 * KMIP 1.4 section 4.25) server-chosen. Only those four, and only in the
 * Response Payload of a Query batch item; every other field of a Query
 * answer (Capability Information, RNG Parameters, Profiles, ...) is compared
 * as usual.
 */
enum kg_conf_query_rule {
    KG_CONF_QUERY_NONE,
    KG_CONF_QUERY_LIST,   /* a non-empty list of leaves of the expected type */
    KG_CONF_QUERY_SINGLE, /* exactly one item of the expected type, any value */
};

static const struct {
    const char *name;
    enum kg_conf_query_rule rule;
} kg_conf_query_chosen[] = {
    { "Operation", KG_CONF_QUERY_LIST },
    { "ObjectType", KG_CONF_QUERY_LIST },
    { "VendorIdentification", KG_CONF_QUERY_SINGLE },
    { "ServerInformation", KG_CONF_QUERY_SINGLE },
};

/* `exp` is the Response Payload of a batch item whose Operation is Query. */
static bool kg_conf_is_query_payload(const xmlNode *exp)
{
    const xmlNode *item = exp->parent;
    bool query = false;

    if (strcmp((const char *)exp->name, "ResponsePayload") != 0 || item == NULL ||
        item->type != XML_ELEMENT_NODE || strcmp((const char *)item->name, "BatchItem") != 0) {
        return false;
    }
    for (const xmlNode *k = item->children; k != NULL && !query; k = k->next) {
        if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, "Operation") == 0) {
            xmlChar *v = xmlGetProp(k, BAD_CAST "value");

            query = v != NULL && strcmp((const char *)v, "Query") == 0;
            xmlFree(v);
        }
    }
    return query;
}

static enum kg_conf_query_rule kg_conf_query_rule_of(const xmlNode *kid)
{
    for (size_t i = 0; i < KG_CONF_COUNT(kg_conf_query_chosen); i++) {
        if (strcmp((const char *)kid->name, kg_conf_query_chosen[i].name) == 0) {
            return kg_conf_query_chosen[i].rule;
        }
    }
    return KG_CONF_QUERY_NONE;
}

/*
 * Match the server-chosen `kid` (tag `tag`, rule `rule`) of a Query payload
 * against the actual items: a LIST takes every item of the tag (at least one,
 * all of the expected type) the first time the tag is seen and nothing after;
 * a SINGLE takes one item of the tag and type. Marks what it took in `used`.
 */
static bool kg_conf_match_query_chosen(struct kg_conf_ctx *c, const xmlNode *kid, enum kg_conf_query_rule rule,
                                       uint32_t tag, size_t seen, const struct kg_ttlv_item *items, size_t n_items,
                                       bool *used, const char *sub)
{
    xmlChar *type_attr = xmlGetProp(kid, BAD_CAST "type");
    uint8_t type = KG_TTLV_STRUCTURE;
    size_t taken = 0;

    if (type_attr != NULL && kg_failed(kg_xml_type_from_name((const char *)type_attr, &type))) {
        kg_conf_why(c, "%s: the vector has an unknown type %s", sub, (const char *)type_attr);
        xmlFree(type_attr);
        kg_error_clear();
        return false;
    }
    xmlFree(type_attr);
    if (rule == KG_CONF_QUERY_LIST && seen > 0) {
        return true; /* the whole list was taken at its first element */
    }
    for (size_t j = 0; j < n_items; j++) {
        if (used[j] || items[j].tag != tag) {
            continue;
        }
        if (items[j].type != type) {
            kg_conf_why(c, "%s expected type %s got %s", sub, kg_xml_type_name(type), kg_xml_type_name(items[j].type));
            return false;
        }
        used[j] = true;
        taken++;
        if (rule == KG_CONF_QUERY_SINGLE) {
            break;
        }
    }
    if (taken == 0) {
        kg_conf_why(c, "%s missing", sub);
        return false;
    }
    return true;
}

static bool kg_conf_match_leaf(struct kg_conf_ctx *c, const xmlNode *exp, const struct kg_ttlv_item *act,
                               uint32_t tag, uint8_t type, const char *attr_name, const char *path)
{
    uint32_t ctx_tag = kg_xml_context_tag(tag, attr_name);
    xmlChar *value = xmlGetProp(exp, BAD_CAST "value");
    const char *v = (const char *)value;
    struct kg_ttlv_writer w;
    char *got = NULL;
    bool ok = false;

    if (v != NULL && v[0] == '$') {
        time_t t;

        ok = true;
        if (!kg_conf_now(v, 0, &t) && (kg_conf_lookup(c->b, v + 1) == NULL || kg_conf_rebinds(v + 1))) {
            if (c->b->count >= KG_CONF_MAX_BINDINGS || strlen(v + 1) >= KG_CONF_MAX_PLACEHOLDER ||
                kg_failed(kg_xml_leaf_text(act, ctx_tag, &got))) {
                kg_conf_why(c, "%s: cannot bind %s", path, v);
                ok = false;
            } else {
                struct kg_conf_binding *nb = &c->b->items[c->b->count++];

                snprintf(nb->name, sizeof(nb->name), "%s", v + 1);
                nb->value = got;
                got = NULL;
            }
        }
        goto out;
    }
    if (kg_conf_is_server_chosen(ctx_tag, c->server_keys)) {
        ok = true;
        goto out;
    }
    if (v != NULL && kg_conf_is_attribute_name(exp)) {
        kg_conf_collapse_spaces((char *)value);
    }
    if (kg_failed(kg_ttlv_writer_init(&w, KG_XML_MAX_INPUT, false))) {
        kg_conf_why(c, "%s: out of memory", path);
        goto out;
    }
    if (kg_failed(kg_xml_write_leaf(&w, tag, type, ctx_tag, v))) {
        kg_conf_why(c, "%s: the vector's value does not encode: %s", path, kg_error_text());
    } else if (w.len == act->raw_len && memcmp(w.buf, act->raw, w.len) == 0) {
        ok = true;
    } else {
        if (kg_failed(kg_xml_leaf_text(act, ctx_tag, &got))) {
            got = NULL;
        }
        kg_conf_why(c, "%s expected %.200s got %.200s", path, v ? v : "(empty)", got ? got : "(undecodable)");
    }
    kg_ttlv_writer_cleanup(&w);
out:
    free(got);
    xmlFree(value);
    kg_error_clear();
    return ok;
}

/* The element children of `n`, in order; *out malloc'ed (free()). */
static size_t kg_conf_elements(const xmlNode *n, const xmlNode ***out)
{
    size_t count = 0;
    size_t i = 0;

    for (const xmlNode *k = n->children; k != NULL; k = k->next) {
        count += k->type == XML_ELEMENT_NODE;
    }
    *out = calloc(count + 1, sizeof(**out));
    if (*out == NULL) {
        return 0;
    }
    for (const xmlNode *k = n->children; k != NULL; k = k->next) {
        if (k->type == XML_ELEMENT_NODE) {
            (*out)[i++] = k;
        }
    }
    return count;
}

static bool kg_conf_match_struct(struct kg_conf_ctx *c, const xmlNode *exp, const struct kg_ttlv_reader *r,
                                 const struct kg_ttlv_item *act, const char *path)
{
    struct kg_ttlv_reader child;
    struct kg_ttlv_item *items = NULL;
    const xmlNode **kids = NULL;
    bool *used = NULL;
    size_t n_items = 0;
    size_t cap = 0;
    size_t n_kids;
    xmlChar *attr_name = NULL;
    bool query = kg_conf_is_query_payload(exp);
    bool ok = false;

    if (kg_failed(kg_ttlv_child(r, act, &child))) {
        kg_conf_why(c, "%s: bad structure: %s", path, kg_error_name(kg_errno()));
        return false;
    }
    while (!kg_ttlv_reader_done(&child)) {
        if (n_items == cap) {
            struct kg_ttlv_item *p;

            cap = cap ? cap * 2 : 16;
            p = realloc(items, cap * sizeof(*items));
            if (p == NULL) {
                kg_conf_why(c, "%s: out of memory", path);
                goto out;
            }
            items = p;
        }
        if (kg_failed(kg_ttlv_read(&child, &items[n_items]))) {
            kg_conf_why(c, "%s: bad TTLV: %s", path, kg_error_name(kg_errno()));
            goto out;
        }
        n_items++;
    }
    n_kids = kg_conf_elements(exp, &kids);
    used = calloc(n_items + 1, sizeof(*used));
    if (kids == NULL || used == NULL) {
        kg_conf_why(c, "%s: out of memory", path);
        goto out;
    }
    for (const xmlNode *k = exp->children; k != NULL; k = k->next) {
        if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, "AttributeName") == 0) {
            attr_name = xmlGetProp(k, BAD_CAST "value");
            break;
        }
    }
    for (size_t i = 0; i < n_kids; i++) {
        char sub[512];
        char first_why[512];
        char tbuf[16];
        uint32_t tag;
        size_t k = 0;
        bool found = false;
        bool tried = false;

        if (!kg_conf_expected_tag(kids[i], &tag)) {
            kg_conf_why(c, "%s: the vector has an unknown tag <%s>", path, (const char *)kids[i]->name);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            uint32_t t2;

            k += kg_conf_expected_tag(kids[j], &t2) && t2 == tag;
        }
        if (kg_conf_repeats_reference(kids, i) || kg_conf_optional_absent(tag, items, n_items)) {
            continue;
        }
        /* Index structures always, leaves only when repeated: BatchItem[0]/ResultStatus. */
        if (k > 0 || !xmlHasProp(kids[i], BAD_CAST "type")) {
            snprintf(sub, sizeof(sub), "%s%s%s[%zu]", path, path[0] ? "/" : "", kg_conf_tag_text(tag, tbuf), k);
        } else {
            snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "/" : "", kg_conf_tag_text(tag, tbuf));
        }
        if (query && kg_conf_query_rule_of(kids[i]) != KG_CONF_QUERY_NONE) {
            if (!kg_conf_match_query_chosen(c, kids[i], kg_conf_query_rule_of(kids[i]), tag, k, items, n_items,
                                            used, sub)) {
                goto out;
            }
            continue;
        }
        for (size_t j = 0; j < n_items && !found; j++) {
            struct kg_conf_ctx trial = {
                .server_keys = c->server_keys, .b = c->b, .why = tried ? NULL : first_why, .why_cap = sizeof(first_why)
            };
            size_t mark = c->b->count;

            if (used[j] || items[j].tag != tag) {
                continue;
            }
            if (kg_conf_match_item(&trial, kids[i], &child, &items[j], (const char *)attr_name, sub)) {
                used[j] = true;
                found = true;
            } else {
                kg_conf_bindings_truncate(c->b, mark);
            }
            tried = true;
        }
        if (!found) {
            if (tried) {
                kg_conf_why(c, "%s", first_why);
            } else {
                kg_conf_why(c, "%s missing", sub);
            }
            goto out;
        }
    }
    for (size_t j = 0; j < n_items; j++) {
        char tbuf[16];

        if (!used[j]) {
            kg_conf_why(c, "%s%s%s unexpected (not in the expected response)", path, path[0] ? "/" : "",
                        kg_conf_tag_text(items[j].tag, tbuf));
            goto out;
        }
    }
    ok = true;
out:
    xmlFree(attr_name);
    free(items);
    free(kids);
    free(used);
    return ok;
}

static bool kg_conf_match_item(struct kg_conf_ctx *c, const xmlNode *exp, const struct kg_ttlv_reader *r,
                               const struct kg_ttlv_item *act, const char *attr_name, const char *path)
{
    xmlChar *type_attr = xmlGetProp(exp, BAD_CAST "type");
    uint8_t type = KG_TTLV_STRUCTURE;
    uint32_t tag = 0;
    char tbuf[16];
    char abuf[16];

    if (type_attr != NULL && kg_failed(kg_xml_type_from_name((const char *)type_attr, &type))) {
        kg_conf_why(c, "%s: the vector has an unknown type %s", path, (const char *)type_attr);
        xmlFree(type_attr);
        kg_error_clear();
        return false;
    }
    xmlFree(type_attr);
    if (!kg_conf_expected_tag(exp, &tag)) {
        kg_conf_why(c, "%s: the vector has an unknown tag <%s>", path, (const char *)exp->name);
        return false;
    }
    if (tag != act->tag) {
        kg_conf_why(c, "%s expected tag %s got %s", path, kg_conf_tag_text(tag, tbuf),
                    kg_conf_tag_text(act->tag, abuf));
        return false;
    }
    if (type != act->type) {
        kg_conf_why(c, "%s expected type %s got %s", path, kg_xml_type_name(type), kg_xml_type_name(act->type));
        return false;
    }
    if (type == KG_TTLV_STRUCTURE) {
        if (kg_conf_is_server_chosen_struct(kg_xml_context_tag(tag, attr_name))) {
            return true;
        }
        return kg_conf_match_struct(c, exp, r, act, path);
    }
    return kg_conf_match_leaf(c, exp, act, tag, type, attr_name, path);
}

bool kg_conf_match(const xmlNode *expected, const uint8_t *resp, uint32_t len, struct kg_conf_bindings *b,
                   bool server_keys, char *why, size_t why_cap)
{
    struct kg_ttlv_limits limits = kg_ttlv_default_limits;
    struct kg_conf_ctx c = { .server_keys = server_keys, .b = b, .why = why, .why_cap = why_cap };
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    struct kg_ttlv_item it;
    size_t mark = b->count;
    bool ok;

    limits.max_message_len = len;
    limits.max_items = UINT32_MAX;
    limits.max_depth = KG_TTLV_MAX_DEPTH;
    kg_ttlv_budget_init(&budget, &limits);
    if (kg_failed(kg_ttlv_reader_init(&r, resp, len, &budget)) || kg_failed(kg_ttlv_read(&r, &it)) ||
        kg_failed(kg_ttlv_reader_finish(&r))) {
        kg_conf_why(&c, "response is not one TTLV item: %s", kg_error_name(kg_errno()));
        kg_error_clear();
        return false;
    }
    ok = kg_conf_match_item(&c, expected, &r, &it, NULL, "");
    if (!ok) {
        kg_conf_bindings_truncate(b, mark);
    }
    return ok;
}
