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

#include "kg_policy.h"

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

static void kg_policy_check_export(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "export")) {
        return;
    }
    if (kg_policy_scalar_is(node, "wrapped")) {
        group->export_mode = KG_EXPORT_WRAPPED;
    } else if (kg_policy_scalar_is(node, "plaintext")) {
        group->export_mode = KG_EXPORT_PLAINTEXT;
    } else if (kg_policy_scalar_is(node, "none")) {
        group->export_mode = KG_EXPORT_NONE;
    } else {
        kg_policy_error_add(ctx, node->line, node->column, "export must be wrapped, plaintext or none, not '%s'",
                            kg_policy_quote(q, node->value, node->len));
    }
}

static void kg_policy_check_scope(struct kg_pctx *ctx, size_t idx, struct kg_policy_group *group)
{
    const struct kg_pnode *node = kg_policy_node(ctx, idx);
    char q[KG_POLICY_QUOTE];

    if (!kg_policy_expect(ctx, idx, KG_PNODE_SCALAR, "scope")) {
        return;
    }
    if (kg_policy_scalar_is(node, "own")) {
        group->scope = KG_SCOPE_OWN;
    } else if (kg_policy_scalar_is(node, "all")) {
        group->scope = KG_SCOPE_ALL;
    } else {
        kg_policy_error_add(ctx, node->line, node->column, "scope must be own or all, not '%s'",
                            kg_policy_quote(q, node->value, node->len));
    }
}

/* One group: `groups[index]` is filled in; its name is already set. */
static void kg_policy_check_group(struct kg_pctx *ctx, const struct kg_pnode *name, size_t value,
                                  struct kg_policy_group *groups, size_t index)
{
    struct kg_policy_group *group = &groups[index];
    const struct kg_pnode *map = kg_policy_node(ctx, value);
    unsigned seen_ou = 0, seen_ops = 0, seen_export = 0, seen_scope = 0;
    char q[KG_POLICY_QUOTE], q2[KG_POLICY_QUOTE];

    /* Defaults: nothing allowed, key material only wrapped, own objects only. */
    group->operations = 0;
    group->export_mode = KG_EXPORT_WRAPPED;
    group->scope = KG_SCOPE_OWN;
    if (!kg_policy_expect(ctx, value, KG_PNODE_MAPPING, "a group")) {
        return;
    }
    for (size_t k = map->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *key = kg_policy_node(ctx, k);
        unsigned *seen = NULL;

        v = key->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        if (!kg_policy_key(ctx, k)) {
            continue;
        }
        if (kg_policy_scalar_is(key, "ou")) {
            seen = &seen_ou;
        } else if (kg_policy_scalar_is(key, "operations")) {
            seen = &seen_ops;
        } else if (kg_policy_scalar_is(key, "export")) {
            seen = &seen_export;
        } else if (kg_policy_scalar_is(key, "scope")) {
            seen = &seen_scope;
        } else {
            kg_policy_error_add(ctx, key->line, key->column,
                                "unknown key '%s' in group '%s' (a group has ou, operations, export and scope)",
                                kg_policy_quote(q, key->value, key->len), kg_policy_quote(q2, name->value, name->len));
            continue;
        }
        if (*seen != 0) {
            kg_policy_duplicate_key(ctx, key, *seen);
            continue;
        }
        *seen = key->line;
        if (seen == &seen_ou) {
            kg_policy_check_ou(ctx, v, groups, index, group->name);
        } else if (seen == &seen_ops) {
            kg_policy_check_operations(ctx, v, group);
        } else if (seen == &seen_export) {
            kg_policy_check_export(ctx, v, group);
        } else {
            kg_policy_check_scope(ctx, v, group);
        }
    }
    if (seen_ou == 0) {
        kg_policy_error_add(ctx, name->line, name->column,
                            "group '%s' has no ou: say which certificate OU selects it (ou: ...)",
                            kg_policy_quote(q, name->value, name->len));
    }
}

/* groups: the mapping of group name to group. Fills *groups / *count (owned). */
static void kg_policy_check_groups(struct kg_pctx *ctx, size_t idx, struct kg_policy_group **out, size_t *count)
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
    if (groups == NULL) {
        kg_policy_error_add(ctx, 0, 0, "out of memory");
        return;
    }
    *out = groups;
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
        if (groups[n].name == NULL) {
            kg_policy_error_add(ctx, 0, 0, "out of memory");
            break;
        }
        groups[n].line = name->line;
        kg_policy_check_group(ctx, name, v, groups, n);
        n++;
        *count = n;
    }
}

static void kg_policy_check_root(struct kg_pctx *ctx, struct kg_policy_group **groups, size_t *count)
{
    const struct kg_pnode *root;
    unsigned seen_version = 0, seen_groups = 0;
    char q[KG_POLICY_QUOTE];

    if (ctx->root == KG_PNODE_NONE) {
        kg_policy_error_add(ctx, 1, 1, "the policy file is empty: it needs version: 1 and groups:");
        return;
    }
    root = kg_policy_node(ctx, ctx->root);
    if (!kg_policy_expect(ctx, ctx->root, KG_PNODE_MAPPING, "the top level (version: 1, groups: ...)")) {
        return;
    }
    for (size_t k = root->first, v; k != KG_PNODE_NONE; k = kg_policy_node(ctx, v)->next) {
        const struct kg_pnode *key = kg_policy_node(ctx, k);

        v = key->next;
        if (v == KG_PNODE_NONE) {
            break; /* cannot happen: a mapping's events come in pairs */
        }
        if (!kg_policy_key(ctx, k)) {
            continue;
        }
        if (kg_policy_scalar_is(key, "version")) {
            if (seen_version != 0) {
                kg_policy_duplicate_key(ctx, key, seen_version);
                continue;
            }
            seen_version = key->line;
            kg_policy_check_version(ctx, v);
        } else if (kg_policy_scalar_is(key, "groups")) {
            if (seen_groups != 0) {
                kg_policy_duplicate_key(ctx, key, seen_groups);
                continue;
            }
            seen_groups = key->line;
            kg_policy_check_groups(ctx, v, groups, count);
        } else {
            kg_policy_error_add(ctx, key->line, key->column,
                                "unknown key '%s' at top level (a policy has version and groups)",
                                kg_policy_quote(q, key->value, key->len));
        }
    }
    if (seen_version == 0) {
        kg_policy_error_add(ctx, root->line, root->column, "version is missing: write version: 1");
    }
    if (seen_groups == 0) {
        kg_policy_error_add(ctx, root->line, root->column,
                            "groups is missing (write groups: {} to deny every client)");
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

static void kg_policy_groups_free(struct kg_policy_group *groups, size_t count)
{
    if (groups == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(groups[i].name);
        free(groups[i].ou);
    }
    free(groups);
}

static int kg_policy_load_text(const char *text, size_t len, const char *name, struct kg_policy **out,
                               struct kg_policy_errors *errors)
{
    struct kg_pctx ctx = { .text = text, .len = len, .errors = errors, .root = KG_PNODE_NONE };
    struct kg_policy_group *groups = NULL;
    size_t group_count = 0;
    struct kg_policy *policy = NULL;
    int rc = -1;

    if (len > KG_POLICY_MAX_FILE_BYTES) {
        kg_policy_error_add(&ctx, 0, 0, "larger than %u bytes: refused", KG_POLICY_MAX_FILE_BYTES);
        goto out;
    }
    if (!kg_policy_build_tree(&ctx)) {
        goto out;
    }
    kg_policy_check_root(&ctx, &groups, &group_count);
    if (ctx.failed) {
        goto out;
    }
    policy = calloc(1, sizeof(*policy));
    if (policy == NULL || (name != NULL && (policy->path = strdup(name)) == NULL)) {
        kg_policy_error_add(&ctx, 0, 0, "out of memory");
        goto out;
    }
    policy->groups = groups;
    policy->group_count = group_count;
    groups = NULL;
    *out = policy;
    policy = NULL;
    rc = 0;
out:
    kg_policy_errors_sort(errors);
    kg_policy_free(policy);
    kg_policy_groups_free(groups, group_count);
    for (size_t i = 0; i < ctx.node_count; i++) {
        free(ctx.nodes[i].value);
    }
    free(ctx.nodes);
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
    free(text);
    return rc;
}

void kg_policy_free(struct kg_policy *policy)
{
    if (policy == NULL) {
        return;
    }
    kg_policy_groups_free(policy->groups, policy->group_count);
    free(policy->path);
    memset(policy, 0, sizeof(*policy));
    free(policy);
}
