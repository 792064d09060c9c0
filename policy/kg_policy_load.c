/*
 * kg_policy_load.c - policy file parser and checker.
 *
 * Two passes:
 *  1. libyaml's event API builds a small tree of scalars, lists and
 *     mappings, each node with its 1-based line:column. The event API (not
 *     yaml_parser_load) is used because it shows aliases: `*name` is refused,
 *     which keeps a policy readable top to bottom and keeps the checker's work
 *     linear in the file size (a document loader would let one alias be
 *     walked once per reference, the "billion laughs" shape).
 *  2. The checker walks the tree against the schema and records *every*
 *     mistake it finds, so a security officer fixes a file in one round.
 *
 * A YAML syntax error ends pass 1 and is reported alone: the tree would be
 * cut short, and checking it would report keys "missing" that are merely
 * after the syntax error.
 *
 * Any error at all means no policy: the caller keeps the policy it had
 * (default deny at startup). There are no warnings, because nobody reads
 * warnings of a reload triggered by SIGHUP.
 */
/* strerror_r returning char * (GNU); meson passes this too, but the file must not depend on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include <openssl/crypto.h>

#include "kg_policy.h"
#include "kg_policy_internal.h"

#define KG_PNODE_NONE SIZE_MAX
/* The schema is four levels deep; anything much deeper is a mistake. */
#define KG_POLICY_MAX_NESTING 32
#define KG_POLICY_MAX_NAME 64 /* group name, bytes */
#define KG_POLICY_MAX_OU 256  /* X.520 ub-organizational-unit-name is 64 characters, UTF-8 <= 4 bytes each */
#define KG_POLICY_QUOTE 48    /* bytes of file text quoted in one message */

enum kg_pnode_kind {
    KG_PNODE_SCALAR,
    KG_PNODE_SEQUENCE,
    KG_PNODE_MAPPING,
    KG_PNODE_INVALID, /* an alias: already reported, checked as nothing */
};

struct kg_pnode {
    enum kg_pnode_kind kind;
    unsigned line;   /* 1-based */
    unsigned column; /* 1-based */
    char *value;     /* scalar only: owned copy, NUL-terminated, may hold NULs ("\0") */
    size_t len;      /* scalar only */
    size_t first;    /* children; a mapping's are key, value, key, value, ... */
    size_t last;
    size_t next;     /* next sibling */
};

struct kg_pctx {
    const char *text; /* borrowed input, for reader-error positions */
    size_t len;
    struct kg_policy_errors *errors;
    bool failed;
    struct kg_pnode *nodes; /* owned; indices, not pointers, because it grows */
    size_t node_count;
    size_t node_cap;
    size_t root;
    /* Per group, for what can only be checked once every group is read. */
    size_t *scope_nodes; /* a scope list, KG_PNODE_NONE if none */
    size_t *name_nodes;  /* the group's name, for messages */
    bool *ou_missing;    /* no ou: key (an error unless no_ou/ambiguous names the group) */
};

static void kg_policy_error_add(struct kg_pctx *ctx, unsigned line, unsigned column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void kg_policy_error_add(struct kg_pctx *ctx, unsigned line, unsigned column, const char *fmt, ...)
{
    struct kg_policy_errors *errors = ctx->errors;
    struct kg_policy_error *item;
    va_list ap;

    ctx->failed = true;
    if (errors->count >= KG_POLICY_MAX_ERRORS) {
        errors->overflow++;
        return;
    }
    item = &errors->items[errors->count++];
    item->line = line;
    item->column = column;
    va_start(ap, fmt);
    vsnprintf(item->message, sizeof(item->message), fmt, ap);
    va_end(ap);
}

/*
 * Copy file text into `buf` for a message: at most KG_POLICY_QUOTE - 4 bytes,
 * cut on a UTF-8 boundary, with C0/C1 control characters (and NUL) replaced
 * by '?' so that `kmipgw policy check` cannot be made to write terminal escape
 * sequences.
 */
static const char *kg_policy_quote(char buf[KG_POLICY_QUOTE], const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    const size_t room = KG_POLICY_QUOTE - 4; /* leave space for "..." and NUL */
    size_t i = 0, o = 0;

    while (i < len && o < room) {
        size_t n = 1;

        if (u[i] >= 0xF0) {
            n = 4;
        } else if (u[i] >= 0xE0) {
            n = 3;
        } else if (u[i] >= 0xC0) {
            n = 2;
        }
        if (n > len - i) {
            n = len - i;
        }
        if (n > room - o) {
            break; /* do not split a character */
        }
        if (u[i] < 0x20 || u[i] == 0x7F || (n == 2 && u[i] == 0xC2 && u[i + 1] < 0xA0)) {
            buf[o++] = '?';
        } else {
            memcpy(buf + o, s + i, n);
            o += n;
        }
        i += n;
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- pass 1: events to tree ------------------------------------------- */

static size_t kg_policy_node_new(struct kg_pctx *ctx, enum kg_pnode_kind kind, const yaml_mark_t *mark)
{
    struct kg_pnode *node;

    if (ctx->node_count == ctx->node_cap) {
        size_t cap = ctx->node_cap == 0 ? 64 : ctx->node_cap * 2;
        struct kg_pnode *nodes = realloc(ctx->nodes, cap * sizeof(*nodes));

        if (nodes == NULL) {
            return KG_PNODE_NONE;
        }
        ctx->nodes = nodes;
        ctx->node_cap = cap;
    }
    node = &ctx->nodes[ctx->node_count];
    memset(node, 0, sizeof(*node));
    node->kind = kind;
    /* libyaml marks are 0-based; people count from 1. */
    node->line = (unsigned)mark->line + 1;
    node->column = (unsigned)mark->column + 1;
    node->first = node->last = node->next = KG_PNODE_NONE;
    return ctx->node_count++;
}

static void kg_policy_node_attach(struct kg_pctx *ctx, const size_t *stack, size_t depth, size_t child)
{
    struct kg_pnode *parent;

    if (depth == 0) {
        ctx->root = child;
        return;
    }
    parent = &ctx->nodes[stack[depth - 1]];
    if (parent->last == KG_PNODE_NONE) {
        parent->first = child;
    } else {
        ctx->nodes[parent->last].next = child;
    }
    parent->last = child;
}

/* 1-based line:column of a byte offset, for reader errors that carry only an offset. */
static void kg_policy_offset_position(const struct kg_pctx *ctx, size_t offset, unsigned *line, unsigned *column)
{
    unsigned l = 1, c = 1;

    for (size_t i = 0; i < offset && i < ctx->len; i++) {
        unsigned char ch = (unsigned char)ctx->text[i];

        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) { /* count characters, as libyaml marks do */
            c++;
        }
    }
    *line = l;
    *column = c;
}

/* The byte at a 1-based line:column (columns count characters), or 0 past the end. */
static unsigned char kg_policy_char_at(const struct kg_pctx *ctx, unsigned line, unsigned column)
{
    unsigned l = 1, c = 1;

    for (size_t i = 0; i < ctx->len; i++) {
        unsigned char ch = (unsigned char)ctx->text[i];

        if ((ch & 0xC0) == 0x80) {
            continue;
        }
        if (l == line && c == column) {
            return ch;
        }
        if (ch == '\n') {
            if (l == line) {
                break;
            }
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    return 0;
}

static void kg_policy_syntax_error(struct kg_pctx *ctx, const yaml_parser_t *parser)
{
    const char *problem = parser->problem != NULL ? parser->problem : "unknown problem";
    const char *hint;
    unsigned line, column;

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        kg_policy_error_add(ctx, 0, 0, "out of memory while parsing");
        break;
    case YAML_READER_ERROR:
        kg_policy_offset_position(ctx, parser->problem_offset, &line, &column);
        kg_policy_error_add(ctx, line, column, "not valid YAML text: %s", problem);
        break;
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        line = (unsigned)parser->problem_mark.line + 1;
        column = (unsigned)parser->problem_mark.column + 1;
        /* The commonest mistake of all gets a plain-words hint. */
        hint = kg_policy_char_at(ctx, line, column) == '\t' ? "; YAML does not allow tabs for indentation" : "";
        if (parser->context != NULL) {
            kg_policy_error_add(ctx, line, column, "YAML syntax error: %s (%s at line %u)%s", problem,
                                parser->context, (unsigned)parser->context_mark.line + 1, hint);
        } else {
            kg_policy_error_add(ctx, line, column, "YAML syntax error: %s%s", problem, hint);
        }
        break;
    default:
        kg_policy_error_add(ctx, (unsigned)parser->problem_mark.line + 1,
                            (unsigned)parser->problem_mark.column + 1, "YAML error: %s", problem);
        break;
    }
}

/* Build ctx->nodes from the text. Returns false when the text could not be parsed. */
static bool kg_policy_build_tree(struct kg_pctx *ctx)
{
    yaml_parser_t parser;
    yaml_event_t event;
    size_t stack[KG_POLICY_MAX_NESTING];
    size_t depth = 0;
    unsigned documents = 0;
    bool done = false, ok = true;

    if (!yaml_parser_initialize(&parser)) {
        kg_policy_error_add(ctx, 0, 0, "out of memory while parsing");
        return false;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)ctx->text, ctx->len);
    while (!done) {
        size_t idx;
        char anchor[KG_POLICY_QUOTE];

        if (!yaml_parser_parse(&parser, &event)) {
            kg_policy_syntax_error(ctx, &parser);
            ok = false;
            break;
        }
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++documents > 1) {
                kg_policy_error_add(ctx, (unsigned)event.start_mark.line + 1,
                                    (unsigned)event.start_mark.column + 1,
                                    "a policy file holds one YAML document; remove this '---' and what follows "
                                    "or merge it into the first");
                ok = false;
                done = true;
            }
            break;
        case YAML_ALIAS_EVENT:
            kg_policy_error_add(ctx, (unsigned)event.start_mark.line + 1, (unsigned)event.start_mark.column + 1,
                                "aliases (*%s) are not allowed in a policy file: write the value out",
                                kg_policy_quote(anchor, (const char *)event.data.alias.anchor,
                                                strlen((const char *)event.data.alias.anchor)));
            idx = kg_policy_node_new(ctx, KG_PNODE_INVALID, &event.start_mark);
            if (idx == KG_PNODE_NONE) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
                ok = false;
                done = true;
                break;
            }
            kg_policy_node_attach(ctx, stack, depth, idx);
            break;
        case YAML_SCALAR_EVENT:
            idx = kg_policy_node_new(ctx, KG_PNODE_SCALAR, &event.start_mark);
            if (idx != KG_PNODE_NONE) {
                size_t n = event.data.scalar.length;
                char *copy = malloc(n + 1);

                if (copy == NULL) {
                    idx = KG_PNODE_NONE;
                } else {
                    memcpy(copy, event.data.scalar.value, n);
                    copy[n] = '\0';
                    ctx->nodes[idx].value = copy;
                    ctx->nodes[idx].len = n;
                }
            }
            if (idx == KG_PNODE_NONE) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
                ok = false;
                done = true;
                break;
            }
            kg_policy_node_attach(ctx, stack, depth, idx);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (depth == KG_POLICY_MAX_NESTING) {
                kg_policy_error_add(ctx, (unsigned)event.start_mark.line + 1,
                                    (unsigned)event.start_mark.column + 1,
                                    "nested more than %d levels deep", KG_POLICY_MAX_NESTING);
                ok = false;
                done = true;
                break;
            }
            idx = kg_policy_node_new(ctx,
                                     event.type == YAML_MAPPING_START_EVENT ? KG_PNODE_MAPPING : KG_PNODE_SEQUENCE,
                                     &event.start_mark);
            if (idx == KG_PNODE_NONE) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
                ok = false;
                done = true;
                break;
            }
            kg_policy_node_attach(ctx, stack, depth, idx);
            stack[depth++] = idx;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
            }
            break;
        default: /* stream start, document end */
            break;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return ok;
}

/* ---- pass 2: the checker ---------------------------------------------- */

static const struct kg_pnode *kg_policy_node(const struct kg_pctx *ctx, size_t idx)
{
    return &ctx->nodes[idx];
}

static const char *kg_policy_kind_text(enum kg_pnode_kind kind)
{
    switch (kind) {
    case KG_PNODE_SCALAR:
        return "a single value";
    case KG_PNODE_SEQUENCE:
        return "a list";
    case KG_PNODE_MAPPING:
        return "a mapping";
    case KG_PNODE_INVALID:
        return "an alias";
    default:
        return "something else";
    }
}

/*
 * True if node `idx` is of `kind`; otherwise reports "`what` must be ..." at
 * the node, unless it is an alias, which was reported already.
 */
static bool kg_policy_expect(struct kg_pctx *ctx, size_t idx, enum kg_pnode_kind kind, const char *what)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);

    if (node->kind == kind) {
        return true;
    }
    if (node->kind != KG_PNODE_INVALID) {
        kg_policy_error_add(ctx, node->line, node->column, "%s must be %s, not %s", what,
                            kg_policy_kind_text(kind), kg_policy_kind_text(node->kind));
    }
    return false;
}

static bool kg_policy_scalar_is(const struct kg_pnode *node, const char *word)
{
    size_t n = strlen(word);

    return node->kind == KG_PNODE_SCALAR && node->len == n && memcmp(node->value, word, n) == 0;
}

/* A mapping key: a scalar, or reported. */
static bool kg_policy_key(struct kg_pctx *ctx, size_t idx)
{
    return kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "a key");
}

static void kg_policy_duplicate_key(struct kg_pctx *ctx, const struct kg_pnode *key, unsigned first_line)
{
    char q[KG_POLICY_QUOTE];

    kg_policy_error_add(ctx, key->line, key->column, "key '%s' given twice (first at line %u)",
                        kg_policy_quote(q, key->value, key->len), first_line);
}

static void kg_policy_check_version(struct kg_pctx *ctx, size_t idx)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "version")) {
        return;
    }
    if (!kg_policy_scalar_is(node, "1")) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "version '%s' is not supported: this gateway reads version: 1",
                            kg_policy_quote(q, node->value, node->len));
    }
}

static bool kg_policy_name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
}

/*
 * Group names are recorded as the owner of every object the group creates
 * and printed in audit records, so they are kept to a plain alphabet.
 */
static bool kg_policy_check_group_name(struct kg_pctx *ctx, const struct kg_pnode *key)
{
    char q[KG_POLICY_QUOTE];
    bool ok = key->len >= 1 && key->len <= KG_POLICY_MAX_NAME;

    for (size_t i = 0; ok && i < key->len; i++) {
        ok = kg_policy_name_char_ok((unsigned char)key->value[i]);
    }
    if (!ok) {
        kg_policy_error_add(ctx, key->line, key->column,
                            "group name '%s': use 1 to %d letters, digits, '-', '_' or '.'",
                            kg_policy_quote(q, key->value, key->len), KG_POLICY_MAX_NAME);
    }
    return ok;
}

static char *kg_policy_strdup(const struct kg_pnode *node)
{
    char *s = malloc(node->len + 1);

    if (s != NULL) {
        memcpy(s, node->value, node->len + 1);
    }
    return s;
}

static void kg_policy_check_ou(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *groups, size_t index,
                               const char *group_name)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE], q2[KG_POLICY_QUOTE];
    bool ok;

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "ou")) {
        return;
    }
    if (node->len == 0) {
        kg_policy_error_add(ctx, node->line, node->column, "ou of group '%s' is empty",
                            kg_policy_quote(q, group_name, strlen(group_name)));
        return;
    }
    ok = node->len <= KG_POLICY_MAX_OU;
    for (size_t i = 0; ok && i < node->len; i++) {
        unsigned char c = (unsigned char)node->value[i];

        ok = c >= 0x20 && c != 0x7F;
    }
    if (!ok) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "ou '%s' must be at most %d bytes without control characters",
                            kg_policy_quote(q, node->value, node->len), KG_POLICY_MAX_OU);
        return;
    }
    /* One OU, one group: otherwise a certificate's group would depend on file order. */
    for (size_t g = 0; g < index; g++) {
        if (groups[g].ou != NULL && strcmp(groups[g].ou, node->value) == 0) {
            kg_policy_error_add(ctx, node->line, node->column, "ou '%s' already selects group '%s' (line %u)",
                                kg_policy_quote(q, node->value, node->len),
                                kg_policy_quote(q2, groups[g].name, strlen(groups[g].name)), groups[g].line);
            return;
        }
    }
    groups[index].ou = kg_policy_strdup(node);
    if (groups[index].ou == NULL) {
        kg_policy_error_add(ctx, 0, 0, "out of memory");
    }
}

/* A near miss for an unknown operation name: same letters, other case or spacing. */
static const char *kg_policy_operation_hint(const char *name, size_t len)
{
    for (uint32_t op = 1; op <= KG_POLICY_MAX_OP; op++) {
        const char *known = kg_policy_operation_name(op);
        size_t i = 0, j = 0;

        if (known == NULL) {
            continue;
        }
        for (;;) {
            while (i < len && (name[i] == ' ' || name[i] == '-' || name[i] == '_')) {
                i++;
            }
            while (known[j] == ' ' || known[j] == '-') {
                j++;
            }
            if (i == len || known[j] == '\0') {
                break;
            }
            unsigned char a = (unsigned char)name[i], b = (unsigned char)known[j];
            if (a >= 'A' && a <= 'Z') {
                a = (unsigned char)(a - 'A' + 'a');
            }
            if (b >= 'A' && b <= 'Z') {
                b = (unsigned char)(b - 'A' + 'a');
            }
            if (a != b) {
                break;
            }
            i++;
            j++;
        }
        if (i == len && known[j] == '\0') {
            return known;
        }
    }
    return NULL;
}

static void kg_policy_check_operations(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (node->kind == KG_PNODE_SCALAR) {
        if (kg_policy_scalar_is(node, "all")) {
            group->operations = kg_policy_operation_mask_all();
        } else {
            kg_policy_error_add(ctx, node->line, node->column,
                                "operations must be a list of operation names, e.g. [Get, Query], or the word "
                                "all, not '%s'",
                                kg_policy_quote(q, node->value, node->len));
        }
        return;
    }
    if (!kg_policy_expect(ctx, idx, KG_PNODE_SEQUENCE, "operations")) {
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        uint32_t op;
        const char *hint;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, "an operation")) {
            continue;
        }
        kg_policy_quote(q, item->value, item->len);
        op = memchr(item->value, '\0', item->len) == NULL ? kg_policy_operation_code(item->value) : 0;
        if (op == 0) {
            if (kg_policy_scalar_is(item, "all")) {
                kg_policy_error_add(ctx, item->line, item->column,
                                    "'all' stands alone: write operations: all instead of a list");
            } else if ((hint = kg_policy_operation_hint(item->value, item->len)) != NULL) {
                kg_policy_error_add(ctx, item->line, item->column,
                                    "unknown operation '%s'; did you mean '%s'? (names are case-sensitive)", q,
                                    hint);
            } else {
                kg_policy_error_add(ctx, item->line, item->column,
                                    "unknown operation '%s' (use the names of KMIP 1.4 section 9.1.3.2.27)", q);
            }
            continue;
        }
        if (group->operations & (UINT64_C(1) << op)) {
            kg_policy_error_add(ctx, item->line, item->column, "operation '%s' is listed twice", q);
            continue;
        }
        group->operations |= UINT64_C(1) << op;
    }
}

/* ---- generic pieces of the schema ---------------------------------------- */

/*
 * Identify mapping key `k` among `keys`: returns its index, or -1 after
 * reporting it (unknown, given twice, not a scalar). seen[i] records the
 * line of key i, 0 while unseen. `where` ends "unknown key 'x' <where>",
 * after "in group '<group>'" when group is not NULL.
 */
static int kg_policy_map_key(struct kg_pctx *ctx, size_t k, const char *const *keys, size_t nkeys, unsigned *seen,
                             const char *where, const char *group)
{
    const struct kg_pnode *key = kg_policy_node(ctx, k);
    char q[KG_POLICY_QUOTE], q2[KG_POLICY_QUOTE];

    if (!kg_policy_key(ctx, k)) {
        return -1;
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (kg_policy_scalar_is(key, keys[i])) {
            if (seen[i] != 0) {
                kg_policy_duplicate_key(ctx, key, seen[i]);
                return -1;
            }
            seen[i] = key->line;
            return (int)i;
        }
    }
    kg_policy_quote(q, key->value, key->len);
    if (group != NULL) {
        kg_policy_error_add(ctx, key->line, key->column, "unknown key '%s' in group '%s' %s", q,
                            kg_policy_quote(q2, group, strlen(group)), where);
    } else {
        kg_policy_error_add(ctx, key->line, key->column, "unknown key '%s' %s", q, where);
    }
    return -1;
}

/* No NUL, no control characters, 1..max bytes. */
static bool kg_policy_text_ok(const struct kg_pnode *node, size_t max)
{
    if (node->len == 0 || node->len > max) {
        return false;
    }
    for (size_t i = 0; i < node->len; i++) {
        unsigned char c = (unsigned char)node->value[i];

        if (c < 0x20 || c == 0x7F) {
            return false;
        }
    }
    return true;
}

/* A whole number in [min, max] written as plain decimal digits. */
static bool kg_policy_parse_uint(const struct kg_pnode *node, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;

    if (node->kind != KG_PNODE_SCALAR || node->len == 0 || node->len > 12) {
        return false;
    }
    for (size_t i = 0; i < node->len; i++) {
        char c = node->value[i];

        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(c - '0'); /* at most 12 digits: no overflow */
    }
    if (n < min || n > max) {
        return false;
    }
    *out = n;
    return true;
}

/* Name lookups for kg_policy_check_names: the bit a name stands for, 0 if unknown. */
static uint64_t kg_policy_object_type_bit(const char *name)
{
    uint32_t code = kg_policy_object_type_code(name);

    return code == 0 ? 0 : UINT64_C(1) << code;
}

static uint64_t kg_policy_algorithm_bit(const char *name)
{
    uint32_t code = kg_policy_algorithm_code(name);

    return code == 0 || code > KG_POLICY_MAX_ALGORITHM ? 0 : UINT64_C(1) << code;
}

static uint64_t kg_policy_usage_bit(const char *name)
{
    return kg_policy_usage_code(name);
}

/*
 * A list of KMIP names turned into a bit mask. `what` names the list in
 * messages ("create.algorithms"); `section` says where the names come from.
 */
static void kg_policy_check_names(struct kg_pctx *ctx, size_t idx, const char *what, const char *item_what,
                                  const char *section, uint64_t (*lookup)(const char *), uint64_t *out)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    *out = 0;
    if (!kg_policy_expect(ctx, idx, KG_PNODE_SEQUENCE, what)) {
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        uint64_t bit;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, item_what)) {
            continue;
        }
        kg_policy_quote(q, item->value, item->len);
        bit = memchr(item->value, '\0', item->len) == NULL ? lookup(item->value) : 0;
        if (bit == 0) {
            kg_policy_error_add(ctx, item->line, item->column, "unknown %s '%s' (use the names of KMIP %s)",
                                item_what, q, section);
        } else if (*out & bit) {
            kg_policy_error_add(ctx, item->line, item->column, "%s '%s' is listed twice", item_what, q);
        } else {
            *out |= bit;
        }
    }
}

/* ---- group keys ---------------------------------------------------------- */

static void kg_policy_check_ca(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SEQUENCE, "ca_sha256")) {
        return;
    }
    if (node->first == KG_PNODE_NONE) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "ca_sha256 is empty: list the client CAs that may vouch for this OU, or leave "
                            "ca_sha256 out to accept every client CA");
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        uint8_t fp[32];
        bool duplicate = false;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, "a CA fingerprint")) {
            continue;
        }
        kg_policy_quote(q, item->value, item->len);
        if (!kg_policy_parse_sha256(item->value, item->len, fp)) {
            if (memchr(item->value, '=', item->len) != NULL) {
                kg_policy_error_add(ctx, item->line, item->column,
                                    "ca_sha256 entry '%s': write only the hex digits after '='", q);
            } else {
                kg_policy_error_add(ctx, item->line, item->column,
                                    "ca_sha256 entry '%s' is not a SHA-256 fingerprint: 64 hex digits, colons "
                                    "allowed (openssl x509 -noout -fingerprint -sha256)",
                                    q);
            }
            continue;
        }
        for (size_t c = 0; c < group->ca_count; c++) {
            duplicate |= memcmp(group->ca_sha256[c], fp, sizeof(fp)) == 0;
        }
        if (duplicate) {
            kg_policy_error_add(ctx, item->line, item->column, "CA fingerprint '%s' is listed twice", q);
            continue;
        }
        if (group->ca_count == KG_POLICY_MAX_CAS) {
            kg_policy_error_add(ctx, item->line, item->column, "more than %d CA fingerprints", KG_POLICY_MAX_CAS);
            return;
        }
        memcpy(group->ca_sha256[group->ca_count++], fp, sizeof(fp));
    }
}

static void kg_policy_check_lengths(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    struct kg_policy_create *c = &group->create;
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SEQUENCE, "create.lengths")) {
        return;
    }
    if (node->first == KG_PNODE_NONE) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "create.lengths is empty: list the lengths in bits, or leave it out to allow any");
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        uint64_t bits;
        bool duplicate = false;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, "a length")) {
            continue;
        }
        if (!kg_policy_parse_uint(item, 1, 65536, &bits)) {
            kg_policy_error_add(ctx, item->line, item->column,
                                "a length is a whole number of bits from 1 to 65536, not '%s'",
                                kg_policy_quote(q, item->value, item->len));
            continue;
        }
        for (size_t l = 0; l < c->length_count; l++) {
            duplicate |= c->lengths[l] == (int32_t)bits;
        }
        if (duplicate) {
            kg_policy_error_add(ctx, item->line, item->column, "length %u is listed twice", (unsigned)bits);
            continue;
        }
        if (c->length_count == KG_POLICY_MAX_LENGTHS) {
            kg_policy_error_add(ctx, item->line, item->column, "more than %d lengths", KG_POLICY_MAX_LENGTHS);
            return;
        }
        c->lengths[c->length_count++] = (int32_t)bits;
    }
}

static void kg_policy_check_create(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    static const char *const keys[] = { "object_types", "algorithms", "lengths", "usage_masks" };
    static const enum kg_policy_rule_kind rules[] = { KG_RULE_CREATE_OBJECT_TYPES, KG_RULE_CREATE_ALGORITHMS,
                                                      KG_RULE_CREATE_LENGTHS, KG_RULE_CREATE_USAGE_MASKS };
    const struct kg_pnode *map = kg_policy_node(ctx, idx);
    unsigned seen[4] = { 0 };
    uint64_t bits;

    if (!kg_policy_expect(ctx, idx, KG_PNODE_MAPPING, "create")) {
        return;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        int which;

        v = kg_policy_node(ctx, k)->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        which = kg_policy_map_key(ctx, k, keys, 4, seen,
                                  "in create (keys: object_types, algorithms, lengths, usage_masks)", NULL);
        if (which < 0) {
            continue;
        }
        group->rule_line[rules[which]] = seen[which];
        switch (which) {
        case 0:
            kg_policy_check_names(ctx, v, "create.object_types", "object type", "1.4 section 9.1.3.2.12",
                                  kg_policy_object_type_bit, &bits);
            group->create.object_types = (uint32_t)bits;
            break;
        case 1:
            kg_policy_check_names(ctx, v, "create.algorithms", "algorithm", "1.4 section 9.1.3.2.13",
                                  kg_policy_algorithm_bit, &group->create.algorithms);
            break;
        case 2:
            kg_policy_check_lengths(ctx, v, group);
            break;
        default:
            kg_policy_check_names(ctx, v, "create.usage_masks", "usage", "1.4 section 9.1.3.3.1",
                                  kg_policy_usage_bit, &bits);
            group->create.has_usage_masks = true;
            group->create.usage_masks = (uint32_t)bits;
            break;
        }
    }
}

static bool kg_policy_export_word(const struct kg_pnode *node, enum kg_export_mode *mode)
{
    if (kg_policy_scalar_is(node, "wrapped")) {
        *mode = KG_EXPORT_WRAPPED;
    } else if (kg_policy_scalar_is(node, "plaintext")) {
        *mode = KG_EXPORT_PLAINTEXT;
    } else if (kg_policy_scalar_is(node, "none")) {
        *mode = KG_EXPORT_NONE;
    } else {
        return false;
    }
    return true;
}

/* export: a mode for every type, or a mapping of object type (or `default`) to mode. */
static void kg_policy_check_export(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    bool set[KG_POLICY_MAX_OBJECT_TYPE + 1] = { false };
    enum kg_export_mode dflt = KG_EXPORT_WRAPPED;
    unsigned seen_default = 0;
    char q[KG_POLICY_QUOTE];

    if (node->kind == KG_PNODE_SCALAR) {
        if (!kg_policy_export_word(node, &dflt)) {
            kg_policy_error_add(ctx, node->line, node->column,
                                "export must be wrapped, plaintext or none, not '%s'",
                                kg_policy_quote(q, node->value, node->len));
        }
    } else if (node->kind == KG_PNODE_SEQUENCE) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "export must be a single value or a mapping of object type to mode, not a list");
    } else if (node->kind == KG_PNODE_MAPPING) {
        for (size_t k = node->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
            const struct kg_pnode *key = kg_policy_node(ctx, k), *val;
            enum kg_export_mode mode;
            uint32_t type = 0;

            v = key->next;
            if (v == KG_PNODE_NONE) {
                break; /* cannot happen: a mapping's events come in pairs */
            }
            if (!kg_policy_key(ctx, k)) {
                continue;
            }
            val = kg_policy_node(ctx, v);
            kg_policy_quote(q, key->value, key->len);
            if (!kg_policy_scalar_is(key, "default")) {
                type = memchr(key->value, '\0', key->len) == NULL ? kg_policy_object_type_code(key->value) : 0;
                if (type == 0) {
                    kg_policy_error_add(ctx, key->line, key->column,
                                        "unknown object type '%s' in export (use the names of KMIP 1.4 section "
                                        "9.1.3.2.12, or default)",
                                        q);
                    continue;
                }
                if (set[type]) {
                    kg_policy_error_add(ctx, key->line, key->column, "object type '%s' is given twice in export", q);
                    continue;
                }
            } else if (seen_default != 0) {
                kg_policy_duplicate_key(ctx, key, seen_default);
                continue;
            }
            if (!kg_policy_expect(ctx, v, KG_PNODE_SCALAR, "an export mode")) {
                continue;
            }
            if (!kg_policy_export_word(val, &mode)) {
                char q2[KG_POLICY_QUOTE];

                kg_policy_error_add(ctx, val->line, val->column,
                                    "export of '%s' must be wrapped, plaintext or none, not '%s'", q,
                                    kg_policy_quote(q2, val->value, val->len));
                continue;
            }
            if (type == 0) {
                seen_default = key->line;
                dflt = mode;
            } else {
                set[type] = true;
                group->export_types[type] = mode;
            }
        }
    }
    for (uint32_t t = 0; t <= KG_POLICY_MAX_OBJECT_TYPE; t++) {
        if (!set[t]) {
            group->export_types[t] = dflt;
        }
    }
    group->export_other = dflt;
    group->export_mode = group->export_types[0x02];
}

static void kg_policy_check_wrapping_keys(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    size_t count = 0;
    char q[KG_POLICY_QUOTE];

    /* Present means exactly what it lists: the default [own] no longer applies. */
    group->wrap_own = false;
    group->wrap_in_scope = false;
    if (!kg_policy_expect(ctx, idx, KG_PNODE_SEQUENCE, "wrapping_keys")) {
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        count++;
    }
    if (count > 0) {
        group->wrapping_uids = calloc(count, sizeof(*group->wrapping_uids));
        if (group->wrapping_uids == NULL) {
            kg_policy_error_add(ctx, 0, 0, "out of memory");
            return;
        }
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        bool duplicate = false;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, "a wrapping key")) {
            continue;
        }
        kg_policy_quote(q, item->value, item->len);
        if (kg_policy_scalar_is(item, "own") || kg_policy_scalar_is(item, "in_scope")) {
            bool *flag = kg_policy_scalar_is(item, "own") ? &group->wrap_own : &group->wrap_in_scope;

            if (*flag) {
                kg_policy_error_add(ctx, item->line, item->column, "wrapping key '%s' is listed twice", q);
            }
            *flag = true;
            continue;
        }
        if (!kg_policy_text_ok(item, KG_POLICY_MAX_UID) || memchr(item->value, ' ', item->len) != NULL) {
            kg_policy_error_add(ctx, item->line, item->column,
                                "wrapping key '%s' must be own, in_scope or a UID of 1 to %d bytes without spaces "
                                "or control characters",
                                q, KG_POLICY_MAX_UID);
            continue;
        }
        for (size_t u = 0; u < group->wrapping_uid_count; u++) {
            duplicate |= strcmp(group->wrapping_uids[u], item->value) == 0;
        }
        if (duplicate) {
            kg_policy_error_add(ctx, item->line, item->column, "wrapping key '%s' is listed twice", q);
            continue;
        }
        if (group->wrapping_uid_count == KG_POLICY_MAX_WRAPPING_KEYS) {
            kg_policy_error_add(ctx, item->line, item->column, "more than %d wrapping keys",
                                KG_POLICY_MAX_WRAPPING_KEYS);
            return;
        }
        group->wrapping_uids[group->wrapping_uid_count] = kg_policy_strdup(item);
        if (group->wrapping_uids[group->wrapping_uid_count] == NULL) {
            kg_policy_error_add(ctx, 0, 0, "out of memory");
            return;
        }
        group->wrapping_uid_count++;
    }
}

/* scope: own | all here; a list is resolved once every group name is known. */
static void kg_policy_check_scope(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group, size_t index)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (node->kind == KG_PNODE_SEQUENCE) {
        group->scope = KG_SCOPE_LIST;
        ctx->scope_nodes[index] = idx;
        return;
    }
    if (node->kind == KG_PNODE_MAPPING) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "scope must be own, all or a list of group names, not a mapping");
        return;
    }
    if (node->kind != KG_PNODE_SCALAR) {
        return; /* an alias, reported already */
    }
    if (kg_policy_scalar_is(node, "own")) {
        group->scope = KG_SCOPE_OWN;
    } else if (kg_policy_scalar_is(node, "all")) {
        group->scope = KG_SCOPE_ALL;
    } else {
        kg_policy_error_add(ctx, node->line, node->column,
                            "scope must be own, all or a list of group names, not '%s'",
                            kg_policy_quote(q, node->value, node->len));
    }
}

/* The names of a scope list must be groups of this file (a typo must not pass silently). */
static void kg_policy_resolve_scope(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *groups, size_t count,
                                    size_t index)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    struct kg_policy_group *group = &groups[index];
    size_t n = 0;
    char q[KG_POLICY_QUOTE];

    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        n++;
    }
    if (n == 0) {
        kg_policy_error_add(ctx, node->line, node->column,
                            "scope is an empty list: write scope: own for the group's own objects");
        return;
    }
    group->scope_groups = calloc(n, sizeof(*group->scope_groups));
    if (group->scope_groups == NULL) {
        kg_policy_error_add(ctx, 0, 0, "out of memory");
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        const struct kg_pnode *item = kg_policy_node(ctx, i);
        bool known = false, duplicate = false;

        if (!kg_policy_expect(ctx, i, KG_PNODE_SCALAR, "a group name in scope")) {
            continue;
        }
        kg_policy_quote(q, item->value, item->len);
        if (kg_policy_scalar_is(item, "own") || kg_policy_scalar_is(item, "all")) {
            kg_policy_error_add(ctx, item->line, item->column,
                                "'%s' stands alone: a scope list names other groups (the own group is always in "
                                "scope)",
                                q);
            continue;
        }
        for (size_t g = 0; g < count; g++) {
            known |= groups[g].name != NULL && strlen(groups[g].name) == item->len &&
                     memcmp(groups[g].name, item->value, item->len) == 0;
        }
        if (!known) {
            kg_policy_error_add(ctx, item->line, item->column, "scope names group '%s', which is not defined", q);
            continue;
        }
        for (size_t s = 0; s < group->scope_group_count; s++) {
            duplicate |= strcmp(group->scope_groups[s], item->value) == 0;
        }
        if (duplicate) {
            kg_policy_error_add(ctx, item->line, item->column, "group '%s' is listed twice in scope", q);
            continue;
        }
        group->scope_groups[group->scope_group_count] = kg_policy_strdup(item);
        if (group->scope_groups[group->scope_group_count] == NULL) {
            kg_policy_error_add(ctx, 0, 0, "out of memory");
            return;
        }
        group->scope_group_count++;
    }
}

static void kg_policy_check_residency(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "residency")) {
        return;
    }
    if (kg_policy_scalar_is(node, "wrapped")) {
        group->residency = KG_RESIDENCY_WRAPPED;
    } else if (kg_policy_scalar_is(node, "hsm")) {
        group->residency = KG_RESIDENCY_HSM;
    } else {
        kg_policy_error_add(ctx, node->line, node->column, "residency must be wrapped or hsm, not '%s'",
                            kg_policy_quote(q, node->value, node->len));
    }
}

/*
 * One accepted credential: a mapping of username or device_serial_number
 * (exactly one), password_hash and check. Fills *c (kind, username,
 * password_hash) and *required; false (reported) when anything is wrong.
 */
static bool kg_policy_read_credential(struct kg_pctx *ctx, size_t idx, struct kg_policy_credential *c,
                                      bool *required)
{
    static const char *const keys[] = { "username", "password_hash", "check", "device_serial_number", "act_as" };
    const struct kg_pnode *map = kg_policy_node(ctx, idx);
    unsigned seen[5] = { 0 };
    char q[KG_POLICY_QUOTE];
    bool ok = true;

    *required = true;
    if (!kg_policy_expect(ctx, idx, KG_PNODE_MAPPING, "a credential")) {
        return false;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *key = kg_policy_node(ctx, k), *val;
        const char *why = NULL;
        int which;

        v = key->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        /* The one mistake that must never be made quietly. */
        if (kg_policy_scalar_is(key, "password")) {
            kg_policy_error_add(ctx, key->line, key->column,
                                "a password is never written in a policy: give password_hash, e.g. from "
                                "mkpasswd -m yescrypt");
            ok = false;
            continue;
        }
        which = kg_policy_map_key(ctx, k, keys, 5, seen,
                                  "in credential (keys: username or device_serial_number, password_hash, check, "
                                  "act_as)",
                                  NULL);
        if (which < 0) {
            ok = false;
            continue;
        }
        if (!kg_policy_expect(ctx, v, KG_PNODE_SCALAR, keys[which])) {
            ok = false;
            continue;
        }
        val = kg_policy_node(ctx, v);
        kg_policy_quote(q, val->value, val->len);
        switch (which) {
        case 0:
        case 3:
            if (!kg_policy_text_ok(val, KG_POLICY_MAX_USERNAME)) {
                kg_policy_error_add(ctx, val->line, val->column,
                                    "%s must be 1 to %d bytes without control characters", keys[which],
                                    KG_POLICY_MAX_USERNAME);
                ok = false;
            } else if (c->username == NULL && (c->username = kg_policy_strdup(val)) == NULL) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
            }
            c->kind = which == 0 ? KG_POLICY_CRED_USERNAME : KG_POLICY_CRED_DEVICE;
            break;
        case 1:
            /* Quote nothing of a hash in messages: it is a secret of sorts. */
            if (!kg_policy_text_ok(val, 512)) {
                kg_policy_error_add(ctx, val->line, val->column,
                                    "password_hash must be a crypt(3) hash (e.g. from mkpasswd -m yescrypt)");
                ok = false;
            } else if (!kg_policy_hash_check(val->value, &why)) {
                kg_policy_error_add(ctx, val->line, val->column, "password_hash %s", why);
                ok = false;
            } else if ((c->password_hash = kg_policy_strdup(val)) == NULL) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
            }
            break;
        case 4:
            /* Resolved once every group is known (kg_policy_resolve_act_as). */
            if ((c->act_as_name = kg_policy_strdup(val)) == NULL) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
            }
            c->act_as_line = val->line;
            c->act_as_column = val->column;
            break;
        default:
            if (kg_policy_scalar_is(val, "required")) {
                *required = true;
            } else if (kg_policy_scalar_is(val, "when_present")) {
                *required = false;
            } else {
                kg_policy_error_add(ctx, val->line, val->column, "check must be required or when_present, not '%s'",
                                    q);
                ok = false;
            }
            break;
        }
    }
    if (seen[0] == 0 && seen[3] == 0) {
        kg_policy_error_add(ctx, map->line, map->column, "credential has no username or device_serial_number");
        ok = false;
    } else if (seen[0] != 0 && seen[3] != 0) {
        kg_policy_error_add(ctx, map->line, map->column,
                            "a credential names a username or a device_serial_number, not both");
        ok = false;
    }
    if (seen[1] == 0) {
        kg_policy_error_add(ctx, map->line, map->column, "credential has no password_hash");
        ok = false;
    }
    return ok;
}

/* credential: one mapping, or a list of them (any one of which is accepted). */
static void kg_policy_check_credential(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    struct kg_policy_credential *first = &group->credential, **tail = &first->next;
    bool ok = true, required = false, one_required;

    first->required = true;
    if (node->kind != KG_PNODE_SEQUENCE) {
        first->present = kg_policy_read_credential(ctx, idx, first, &first->required);
        return;
    }
    if (node->first == KG_PNODE_NONE) {
        kg_policy_error_add(ctx, node->line, node->column, "credential lists no credential");
        return;
    }
    for (size_t i = node->first; i != KG_PNODE_NONE; i = kg_policy_node(ctx, i)->next) {
        struct kg_policy_credential *c = first;

        if (i != node->first) {
            if ((c = calloc(1, sizeof(*c))) == NULL) {
                kg_policy_error_add(ctx, 0, 0, "out of memory");
                return;
            }
            *tail = c;
            tail = &c->next;
        }
        ok &= kg_policy_read_credential(ctx, i, c, &one_required);
        /* The strictest check wins: a list cannot weaken what one entry asks. */
        required |= one_required;
    }
    first->required = required;
    first->present = ok;
}

static void kg_policy_check_limits(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    static const char *const keys[] = { "max_live_objects", "requests_per_second" };
    const struct kg_pnode *map = kg_policy_node(ctx, idx);
    unsigned seen[2] = { 0 };
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_MAPPING, "limits")) {
        return;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *val;
        uint64_t n;
        int which;

        v = kg_policy_node(ctx, k)->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        which = kg_policy_map_key(ctx, k, keys, 2, seen, "in limits (keys: max_live_objects, requests_per_second)",
                                  NULL);
        if (which < 0) {
            continue;
        }
        if (!kg_policy_expect(ctx, v, KG_PNODE_SCALAR, keys[which])) {
            continue;
        }
        val = kg_policy_node(ctx, v);
        kg_policy_quote(q, val->value, val->len);
        if (which == 0) {
            group->rule_line[KG_RULE_MAX_LIVE_OBJECTS] = seen[0];
            if (!kg_policy_parse_uint(val, 0, KG_POLICY_MAX_LIVE_OBJECTS, &n)) {
                kg_policy_error_add(ctx, val->line, val->column,
                                    "max_live_objects must be a whole number from 0 to %u, not '%s'",
                                    KG_POLICY_MAX_LIVE_OBJECTS, q);
                continue;
            }
            group->has_max_live_objects = true;
            group->max_live_objects = n;
        } else {
            group->rule_line[KG_RULE_REQUESTS_PER_SECOND] = seen[1];
            if (!kg_policy_parse_uint(val, 1, KG_POLICY_MAX_RATE, &n)) {
                kg_policy_error_add(ctx, val->line, val->column,
                                    "requests_per_second must be a whole number from 1 to %u, not '%s'",
                                    KG_POLICY_MAX_RATE, q);
                continue;
            }
            group->requests_per_second = (uint32_t)n;
        }
    }
}

/* fresh_pool: {object_group, algorithm, length, usage_masks, size}, all required. */
static void kg_policy_check_fresh_pool(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    static const char *const keys[] = { "object_group", "algorithm", "length", "usage_masks", "size" };
    const struct kg_pnode *map = kg_policy_node(ctx, idx);
    struct kg_policy_fresh_pool *p = &group->fresh_pool;
    unsigned seen[5] = { 0 };
    char q[KG_POLICY_QUOTE];
    bool ok = true;

    if (!kg_policy_expect(ctx, idx, KG_PNODE_MAPPING, "fresh_pool")) {
        return;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *val;
        uint64_t n = 0, mask = 0;
        int which;

        v = kg_policy_node(ctx, k)->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        which = kg_policy_map_key(ctx, k, keys, 5, seen,
                                  "in fresh_pool (keys: object_group, algorithm, length, usage_masks, size)", NULL);
        if (which < 0) {
            ok = false;
            continue;
        }
        if (which == 3) {
            kg_policy_check_names(ctx, v, "fresh_pool.usage_masks", "usage mask", "9.1.3.3.1", kg_policy_usage_bit,
                                  &mask);
            p->usage_mask = (uint32_t)mask;
            ok &= mask != 0;
            continue;
        }
        if (!kg_policy_expect(ctx, v, KG_PNODE_SCALAR, keys[which])) {
            ok = false;
            continue;
        }
        val = kg_policy_node(ctx, v);
        kg_policy_quote(q, val->value, val->len);
        if (which == 0) {
            if (!kg_policy_text_ok(val, KG_POLICY_MAX_OBJECT_GROUP) || (p->object_group = kg_policy_strdup(val)) == NULL) {
                kg_policy_error_add(ctx, val->line, val->column, "object_group must be 1 to %d bytes of text",
                                    KG_POLICY_MAX_OBJECT_GROUP);
                ok = false;
            }
        } else if (which == 1) {
            p->algorithm = memchr(val->value, '\0', val->len) == NULL ? kg_policy_algorithm_code(val->value) : 0;
            if (p->algorithm == 0) {
                kg_policy_error_add(ctx, val->line, val->column, "unknown algorithm '%s' (use the names of KMIP "
                                    "9.1.3.2.13)", q);
                ok = false;
            }
        } else if (!kg_policy_parse_uint(val, 1, which == 2 ? 65536 : KG_POLICY_MAX_POOL, &n)) {
            kg_policy_error_add(ctx, val->line, val->column, "%s must be a whole number from 1 to %d, not '%s'",
                                keys[which], which == 2 ? 65536 : KG_POLICY_MAX_POOL, q);
            ok = false;
        } else if (which == 2) {
            p->length = (int32_t)n;
        } else {
            p->size = (uint32_t)n;
        }
    }
    for (int i = 0; i < 5; i++) {
        if (seen[i] == 0) {
            kg_policy_error_add(ctx, map->line, map->column, "fresh_pool has no %s", keys[i]);
            ok = false;
        }
    }
    p->present = ok;
}

/* "groups.<name><suffix>" for every rule of the group. */
static bool kg_policy_group_rules(struct kg_policy_group *group)
{
    static const char *const suffix[KG_RULE_COUNT] = {
        [KG_RULE_OU] = ".ou",
        [KG_RULE_CA] = ".ca_sha256",
        [KG_RULE_OPERATIONS] = ".operations",
        [KG_RULE_CREATE] = ".create",
        [KG_RULE_CREATE_OBJECT_TYPES] = ".create.object_types",
        [KG_RULE_CREATE_ALGORITHMS] = ".create.algorithms",
        [KG_RULE_CREATE_LENGTHS] = ".create.lengths",
        [KG_RULE_CREATE_USAGE_MASKS] = ".create.usage_masks",
        [KG_RULE_EXPORT] = ".export",
        [KG_RULE_WRAPPING_KEYS] = ".wrapping_keys",
        [KG_RULE_SCOPE] = ".scope",
        [KG_RULE_RESIDENCY] = ".residency",
        [KG_RULE_CREDENTIAL] = ".credential",
        [KG_RULE_MAX_LIVE_OBJECTS] = ".limits.max_live_objects",
        [KG_RULE_REQUESTS_PER_SECOND] = ".limits.requests_per_second",
    };

    for (int r = 0; r < KG_RULE_COUNT; r++) {
        size_t n = strlen("groups.") + strlen(group->name) + strlen(suffix[r]) + 1;

        group->rule_text[r] = malloc(n);
        if (group->rule_text[r] == NULL) {
            return false;
        }
        snprintf(group->rule_text[r], n, "groups.%s%s", group->name, suffix[r]);
    }
    return true;
}

enum kg_group_key {
    KG_GK_OU,
    KG_GK_CA,
    KG_GK_OPERATIONS,
    KG_GK_CREATE,
    KG_GK_EXPORT,
    KG_GK_WRAPPING_KEYS,
    KG_GK_SCOPE,
    KG_GK_RESIDENCY,
    KG_GK_CREDENTIAL,
    KG_GK_LIMITS,
    KG_GK_FRESH_POOL,
    KG_GK_COUNT,
};

/* One group: `groups[index]` is filled in; its name is already set. */
static void kg_policy_check_group(struct kg_pctx *ctx, const struct kg_pnode *name, size_t value,
                                  struct kg_policy_group *groups, size_t index)
{
    static const char *const keys[KG_GK_COUNT] = {
        [KG_GK_OU] = "ou",
        [KG_GK_CA] = "ca_sha256",
        [KG_GK_OPERATIONS] = "operations",
        [KG_GK_CREATE] = "create",
        [KG_GK_EXPORT] = "export",
        [KG_GK_WRAPPING_KEYS] = "wrapping_keys",
        [KG_GK_SCOPE] = "scope",
        [KG_GK_RESIDENCY] = "residency",
        [KG_GK_CREDENTIAL] = "credential",
        [KG_GK_LIMITS] = "limits",
        [KG_GK_FRESH_POOL] = "fresh_pool",
    };
    static const enum kg_policy_rule_kind rule_of[KG_GK_COUNT] = {
        [KG_GK_OU] = KG_RULE_OU,
        [KG_GK_CA] = KG_RULE_CA,
        [KG_GK_OPERATIONS] = KG_RULE_OPERATIONS,
        [KG_GK_CREATE] = KG_RULE_CREATE,
        [KG_GK_EXPORT] = KG_RULE_EXPORT,
        [KG_GK_WRAPPING_KEYS] = KG_RULE_WRAPPING_KEYS,
        [KG_GK_SCOPE] = KG_RULE_SCOPE,
        [KG_GK_RESIDENCY] = KG_RULE_RESIDENCY,
        [KG_GK_CREDENTIAL] = KG_RULE_CREDENTIAL,
        [KG_GK_LIMITS] = KG_RULE_COUNT, /* its keys are the rules */
        [KG_GK_FRESH_POOL] = KG_RULE_COUNT, /* no rule: what the gateway makes, under create */
    };
    struct kg_policy_group *group = &groups[index];
    const struct kg_pnode *map = kg_policy_node(ctx, value);
    unsigned seen[KG_GK_COUNT] = { 0 };

    /* Defaults: nothing allowed; key material only wrapped, under the group's
     * own keys; own objects only; new keys as wrapped blobs; Create and
     * Register only of AES symmetric keys. */
    group->operations = 0;
    for (uint32_t t = 0; t <= KG_POLICY_MAX_OBJECT_TYPE; t++) {
        group->export_types[t] = KG_EXPORT_WRAPPED;
    }
    group->export_other = KG_EXPORT_WRAPPED;
    group->export_mode = KG_EXPORT_WRAPPED;
    group->scope = KG_SCOPE_OWN;
    group->residency = KG_RESIDENCY_WRAPPED;
    group->wrap_own = true;
    group->create.object_types = UINT32_C(1) << 0x02; /* Symmetric Key */
    group->create.algorithms = UINT64_C(1) << 0x03;   /* AES */
    if (!kg_policy_expect(ctx, value, KG_PNODE_MAPPING, "a group")) {
        ctx->ou_missing[index] = false; /* reported already: one mistake, one message */
        return;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        int which;

        v = kg_policy_node(ctx, k)->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        which = kg_policy_map_key(ctx, k, keys, KG_GK_COUNT, seen,
                                  "(keys: ou, ca_sha256, operations, create, export, wrapping_keys, scope, "
                                  "residency, credential, limits, fresh_pool)",
                                  group->name);
        if (which < 0) {
            continue;
        }
        if (rule_of[which] != KG_RULE_COUNT) {
            group->rule_line[rule_of[which]] = seen[which];
        }
        switch ((enum kg_group_key)which) {
        case KG_GK_OU:
            kg_policy_check_ou(ctx, v, groups, index, group->name);
            break;
        case KG_GK_CA:
            kg_policy_check_ca(ctx, v, group);
            break;
        case KG_GK_OPERATIONS:
            kg_policy_check_operations(ctx, v, group);
            break;
        case KG_GK_CREATE:
            kg_policy_check_create(ctx, v, group);
            break;
        case KG_GK_EXPORT:
            kg_policy_check_export(ctx, v, group);
            break;
        case KG_GK_WRAPPING_KEYS:
            kg_policy_check_wrapping_keys(ctx, v, group);
            break;
        case KG_GK_SCOPE:
            kg_policy_check_scope(ctx, v, group, index);
            break;
        case KG_GK_RESIDENCY:
            kg_policy_check_residency(ctx, v, group);
            break;
        case KG_GK_CREDENTIAL:
            kg_policy_check_credential(ctx, v, group);
            break;
        case KG_GK_FRESH_POOL:
            kg_policy_check_fresh_pool(ctx, v, group);
            break;
        case KG_GK_LIMITS:
        default:
            kg_policy_check_limits(ctx, v, group);
            break;
        }
    }
    /* Known only once the whole file is read: no_ou / ambiguous may name it. */
    ctx->ou_missing[index] = seen[KG_GK_OU] == 0;
}

/* groups: the mapping of group name to group. Fills policy->groups / group_count (owned). */
static void kg_policy_check_groups(struct kg_pctx *ctx, size_t idx, struct kg_policy *policy)
{
    const struct kg_pnode *map = kg_policy_node(ctx, idx);
    struct kg_policy_group *groups;
    size_t pairs = 0, n = 0;

    if (map->kind == KG_PNODE_SCALAR && map->len == 0) {
        kg_policy_error_add(ctx, map->line, map->column,
                            "groups is empty: list the groups, or write groups: {} to deny every client");
        return;
    }
    if (!kg_policy_expect(ctx, idx, KG_PNODE_MAPPING, "groups")) {
        return;
    }
    for (size_t k = map->first; k != KG_PNODE_NONE; k = kg_policy_node(ctx, k)->next) {
        pairs++;
    }
    pairs /= 2;
    if (pairs == 0) {
        return; /* allowed: a policy that denies everything */
    }
    groups = calloc(pairs, sizeof(*groups));
    ctx->scope_nodes = calloc(pairs, sizeof(*ctx->scope_nodes));
    ctx->name_nodes = calloc(pairs, sizeof(*ctx->name_nodes));
    ctx->ou_missing = calloc(pairs, sizeof(*ctx->ou_missing));
    policy->groups = groups;
    if (groups == NULL || ctx->scope_nodes == NULL || ctx->name_nodes == NULL || ctx->ou_missing == NULL) {
        kg_policy_error_add(ctx, 0, 0, "out of memory");
        return;
    }
    for (size_t i = 0; i < pairs; i++) {
        ctx->scope_nodes[i] = KG_PNODE_NONE;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *name = kg_policy_node(ctx, k);
        bool duplicate = false;
        char q[KG_POLICY_QUOTE];

        v = name->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        if (!kg_policy_expect(ctx, k, KG_PNODE_SCALAR, "a group name")) {
            continue;
        }
        if (!kg_policy_check_group_name(ctx, name)) {
            continue;
        }
        for (size_t g = 0; g < n; g++) {
            if (strcmp(groups[g].name, name->value) == 0) {
                kg_policy_error_add(ctx, name->line, name->column, "group '%s' is defined twice (first at line %u)",
                                    kg_policy_quote(q, name->value, name->len), groups[g].line);
                duplicate = true;
                break;
            }
        }
        if (duplicate) {
            continue;
        }
        groups[n].name = kg_policy_strdup(name);
        policy->group_count = n + 1; /* from here on, freeing the policy frees this group */
        if (groups[n].name == NULL || !kg_policy_group_rules(&groups[n])) {
            kg_policy_error_add(ctx, 0, 0, "out of memory");
            break;
        }
        groups[n].line = name->line;
        ctx->name_nodes[n] = k;
        kg_policy_check_group(ctx, name, v, groups, n);
        n++;
    }
    for (size_t g = 0; g < n; g++) {
        if (ctx->scope_nodes[g] != KG_PNODE_NONE) {
            kg_policy_resolve_scope(ctx, ctx->scope_nodes[g], groups, n, g);
        }
    }
}

/* no_ou / ambiguous: deny, or the name of a group of this file. */
static void kg_policy_resolve_case(struct kg_pctx *ctx, size_t idx, const char *key, struct kg_policy *policy,
                                   const struct kg_policy_group **out)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    *out = NULL;
    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, key)) {
        return;
    }
    if (kg_policy_scalar_is(node, "deny")) {
        return;
    }
    for (size_t g = 0; g < policy->group_count; g++) {
        const char *name = policy->groups[g].name;

        if (name != NULL && strlen(name) == node->len && memcmp(name, node->value, node->len) == 0) {
            *out = &policy->groups[g];
            return;
        }
    }
    kg_policy_error_add(ctx, node->line, node->column, "%s must be deny or the name of a group, not '%s'", key,
                        kg_policy_quote(q, node->value, node->len));
}

/* Every credential's act_as must name another group of this file. */
static void kg_policy_resolve_act_as(struct kg_pctx *ctx, struct kg_policy *policy)
{
    for (size_t g = 0; g < policy->group_count; g++) {
        for (struct kg_policy_credential *c = &policy->groups[g].credential; c != NULL; c = c->next) {
            if (c->act_as_name == NULL) {
                continue;
            }
            for (size_t o = 0; o < policy->group_count && c->act_as == NULL; o++) {
                if (o != g && policy->groups[o].name != NULL && strcmp(policy->groups[o].name, c->act_as_name) == 0) {
                    c->act_as = &policy->groups[o];
                }
            }
            if (c->act_as == NULL) {
                char q[KG_POLICY_QUOTE];

                kg_policy_error_add(ctx, c->act_as_line, c->act_as_column,
                                    "act_as must name another group of this file, not '%s'",
                                    kg_policy_quote(q, c->act_as_name, strlen(c->act_as_name)));
            }
        }
    }
}

static void kg_policy_check_root(struct kg_pctx *ctx, struct kg_policy *policy)
{
    static const char *const keys[] = { "version", "no_ou", "ambiguous", "groups" };
    const struct kg_pnode *root;
    unsigned seen[4] = { 0 };
    size_t no_ou = KG_PNODE_NONE, ambiguous = KG_PNODE_NONE;

    if (ctx->root == KG_PNODE_NONE) {
        kg_policy_error_add(ctx, 1, 1, "the policy file is empty: it needs version: 1 and groups:");
        return;
    }
    root = kg_policy_node(ctx, ctx->root);
    if (!kg_policy_expect(ctx, ctx->root, KG_PNODE_MAPPING, "the top level (version: 1, groups: ...)")) {
        return;
    }
    for (size_t k = root->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        v = kg_policy_node(ctx, k)->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        switch (kg_policy_map_key(ctx, k, keys, 4, seen,
                                  "at top level (a policy has version, no_ou, ambiguous and groups)", NULL)) {
        case 0:
            kg_policy_check_version(ctx, v);
            break;
        case 1:
            no_ou = v;
            break;
        case 2:
            ambiguous = v;
            break;
        case 3:
            policy->groups_line = seen[3];
            kg_policy_check_groups(ctx, v, policy);
            break;
        default:
            break;
        }
    }
    if (seen[0] == 0) {
        kg_policy_error_add(ctx, root->line, root->column, "version is missing: write version: 1");
    }
    if (seen[3] == 0) {
        kg_policy_error_add(ctx, root->line, root->column,
                            "groups is missing (write groups: {} to deny every client)");
    }
    /* Group names are all known now. */
    if (no_ou != KG_PNODE_NONE) {
        policy->no_ou_line = seen[1];
        kg_policy_resolve_case(ctx, no_ou, "no_ou", policy, &policy->no_ou_group);
    }
    if (ambiguous != KG_PNODE_NONE) {
        policy->ambiguous_line = seen[2];
        kg_policy_resolve_case(ctx, ambiguous, "ambiguous", policy, &policy->ambiguous_group);
    }
    kg_policy_resolve_act_as(ctx, policy);
    for (size_t g = 0; g < policy->group_count && ctx->ou_missing != NULL; g++) {
        const struct kg_policy_group *group = &policy->groups[g];
        const struct kg_pnode *name;
        char q[KG_POLICY_QUOTE];

        if (!ctx->ou_missing[g] || group == policy->no_ou_group || group == policy->ambiguous_group) {
            continue;
        }
        name = kg_policy_node(ctx, ctx->name_nodes[g]);
        kg_policy_error_add(ctx, name->line, name->column,
                            "group '%s' has no ou: say which certificate OU selects it (ou: ...)",
                            kg_policy_quote(q, name->value, name->len));
    }
}

/* Stable insertion sort by position: a file is fixed top to bottom. */
static void kg_policy_errors_sort(struct kg_policy_errors *errors)
{
    for (size_t i = 1; i < errors->count; i++) {
        struct kg_policy_error tmp = errors->items[i];
        size_t j = i;

        while (j > 0 && (errors->items[j - 1].line > tmp.line ||
                         (errors->items[j - 1].line == tmp.line && errors->items[j - 1].column > tmp.column))) {
            errors->items[j] = errors->items[j - 1];
            j--;
        }
        errors->items[j] = tmp;
    }
}

static void kg_policy_strings_free(char **strings, size_t count)
{
    if (strings == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(strings[i]);
    }
    free(strings);
}

static void kg_policy_groups_free(struct kg_policy_group *groups, size_t count)
{
    if (groups == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        struct kg_policy_group *g = &groups[i];

        free(g->name);
        free(g->ou);
        free(g->fresh_pool.object_group);
        kg_policy_strings_free(g->scope_groups, g->scope_group_count);
        kg_policy_strings_free(g->wrapping_uids, g->wrapping_uid_count);
        for (struct kg_policy_credential *c = &g->credential, *next; c != NULL; c = next) {
            next = c->next;
            free(c->username);
            free(c->act_as_name);
            if (c->password_hash != NULL) {
                /* Not the password, but what an offline guesser would want: wiped. */
                OPENSSL_cleanse(c->password_hash, strlen(c->password_hash));
                free(c->password_hash);
            }
            if (c != &g->credential) {
                free(c);
            }
        }
        for (int r = 0; r < KG_RULE_COUNT; r++) {
            free(g->rule_text[r]);
        }
    }
    free(groups);
}

static int kg_policy_load_text(const char *text, size_t len, const char *name, struct kg_policy **out,
                               struct kg_policy_errors *errors)
{
    struct kg_pctx ctx = { .text = text, .len = len, .errors = errors, .root = KG_PNODE_NONE };
    struct kg_policy *policy = NULL;
    int rc = -1;

    if (len > KG_POLICY_MAX_FILE_BYTES) {
        kg_policy_error_add(&ctx, 0, 0, "larger than %u bytes: refused", KG_POLICY_MAX_FILE_BYTES);
        goto out;
    }
    if (!kg_policy_build_tree(&ctx)) {
        goto out;
    }
    policy = calloc(1, sizeof(*policy));
    if (policy == NULL) {
        kg_policy_error_add(&ctx, 0, 0, "out of memory");
        goto out;
    }
    kg_policy_check_root(&ctx, policy);
    if (ctx.failed) {
        goto out;
    }
    if ((name != NULL && (policy->path = strdup(name)) == NULL) ||
        (policy->state = kg_policy_state_new(policy->group_count)) == NULL) {
        kg_policy_error_add(&ctx, 0, 0, "out of memory");
        goto out;
    }
    *out = policy;
    policy = NULL;
    rc = 0;
out:
    kg_policy_errors_sort(errors);
    kg_policy_free(policy);
    for (size_t i = 0; i < ctx.node_count; i++) {
        if (ctx.nodes[i].value != NULL) {
            /* The tree held password hashes among other things. */
            OPENSSL_cleanse(ctx.nodes[i].value, ctx.nodes[i].len);
        }
        free(ctx.nodes[i].value);
    }
    free(ctx.nodes);
    free(ctx.scope_nodes);
    free(ctx.name_nodes);
    free(ctx.ou_missing);
    return rc;
}

int kg_policy_load_buffer(const char *text, size_t len, const char *name, struct kg_policy **out,
                          struct kg_policy_errors *errors)
{
    struct kg_policy_errors scratch;

    if (errors == NULL) {
        errors = &scratch;
    }
    memset(errors, 0, sizeof(*errors));
    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (text == NULL) {
        text = "";
        len = 0;
    }
    return kg_policy_load_text(text, len, name, out, errors);
}

int kg_policy_load_file(const char *path, struct kg_policy **out, struct kg_policy_errors *errors)
{
    struct kg_policy_errors scratch;
    struct kg_pctx ctx;
    char q[KG_POLICY_QUOTE], ebuf[128];
    char *text = NULL;
    size_t len = 0, cap;
    struct stat st;
    int fd = -1, rc = -1;

    if (errors == NULL) {
        errors = &scratch;
    }
    memset(errors, 0, sizeof(*errors));
    memset(&ctx, 0, sizeof(ctx));
    ctx.errors = errors;
    if (out == NULL) {
        return -1;
    }
    *out = NULL;
    if (path == NULL) {
        kg_policy_error_add(&ctx, 0, 0, "no policy file given");
        return -1;
    }
    kg_policy_quote(q, path, strlen(path));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        kg_policy_error_add(&ctx, 0, 0, "cannot open %s: %s", q, strerror_r(errno, ebuf, sizeof(ebuf)));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        kg_policy_error_add(&ctx, 0, 0, "%s is not a regular file", q);
        goto out;
    }
    if (st.st_size > (off_t)KG_POLICY_MAX_FILE_BYTES) {
        kg_policy_error_add(&ctx, 0, 0, "%s is larger than %u bytes: refused", q, KG_POLICY_MAX_FILE_BYTES);
        goto out;
    }
    /* Read to EOF, not st_size bytes: the file may change under us, and must still obey the cap. */
    cap = (size_t)st.st_size + 1;
    text = malloc(cap);
    if (text == NULL) {
        kg_policy_error_add(&ctx, 0, 0, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            char *bigger;

            if (cap > KG_POLICY_MAX_FILE_BYTES) {
                kg_policy_error_add(&ctx, 0, 0, "%s is larger than %u bytes: refused", q,
                                    KG_POLICY_MAX_FILE_BYTES);
                goto out;
            }
            cap = cap * 2 > KG_POLICY_MAX_FILE_BYTES + 1 ? KG_POLICY_MAX_FILE_BYTES + 1 : cap * 2;
            bigger = realloc(text, cap);
            if (bigger == NULL) {
                kg_policy_error_add(&ctx, 0, 0, "out of memory");
                goto out;
            }
            text = bigger;
        }
        n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            kg_policy_error_add(&ctx, 0, 0, "cannot read %s: %s", q, strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    rc = kg_policy_load_text(text, len, path, out, errors);
out:
    if (fd >= 0) {
        close(fd);
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, len); /* it may hold password hashes */
    }
    free(text);
    return rc;
}

void kg_policy_free(struct kg_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    kg_policy_groups_free(policy->groups, policy->group_count);
    kg_policy_state_free(policy->state);
    free(policy->path);
    memset(policy, 0, sizeof(*policy));
    free(policy);
}
