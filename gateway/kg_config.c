/*
 * kg_config.c - gateway.yaml.
 *
 * The schema is one table (kg_config_keys): section, key, kind, where it
 * lands in struct kg_config, range, and whether it is required. Parsing,
 * unknown-key detection, duplicate detection, range checks and the
 * "missing required key" check are all driven by it, so adding a setting is
 * one line here plus one field in kg_config.h.
 *
 * Unlike the policy checker this stops at the first mistake: the gateway
 * refuses to start either way, and kg_result carries one error. Every error
 * names file:line:column (1-based; libyaml's marks are 0-based).
 *
 * libyaml's document API is enough here: the schema is two levels of
 * mappings over scalars and nothing is walked twice (duplicate keys are
 * errors), so an alias can cost no more than the node it names.
 */
/* strerror_r returning char * (GNU); meson passes this too, but the file must not depend on it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kg_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "kg_db.h"
#include "kg_p11_uri.h"

#define KG_CONFIG_MAX_STRING 4096 /* bytes of any one value: PATH_MAX */
#define KG_CONFIG_QUOTE 40        /* bytes of file text quoted in a message */

enum kg_config_kind {
    KG_CFG_STRING,  /* free text without control characters */
    KG_CFG_PATH,    /* a file name, resolved against the config's directory */
    KG_CFG_KEYREF,  /* a PATH, or a pkcs11: URI (kg_p11_uri.h) kept verbatim */
    KG_CFG_ENVNAME, /* an environment variable name */
    KG_CFG_ADDRESS, /* an IP address or host name */
    KG_CFG_U16,
    KG_CFG_U32,
    KG_CFG_BOOL,    /* true or false, nothing else */
    KG_CFG_ENDPOINT, /* ADDRESS:PORT or [IPV6]:PORT into a struct kg_config_endpoint; empty = off */
};

struct kg_config_key {
    const char *section;
    const char *name;
    enum kg_config_kind kind;
    size_t offset;   /* into struct kg_config */
    uint32_t min;    /* integers: inclusive range; strings: unused */
    uint32_t max;    /* integers: inclusive range; strings: max bytes (0 = KG_CONFIG_MAX_STRING) */
    bool required;
};

#define KEY(sec, nm, kind, field, lo, hi, req) { sec, nm, kind, offsetof(struct kg_config, field), lo, hi, req }

/* The ranges are documented in kg_config.h and conf/gateway.yaml; keep the three in step. */
static const struct kg_config_key kg_config_keys[] = {
    KEY("listen", "address", KG_CFG_ADDRESS, listen_address, 0, 255, false),
    KEY("listen", "port", KG_CFG_U16, listen_port, 1, 65535, false),
    KEY("tls", "certificate", KG_CFG_PATH, tls_certificate, 0, 0, true),
    /* A PEM file, or pkcs11:object=<label>[;id=..][;token=..]: the key on the HSM token. */
    KEY("tls", "key", KG_CFG_KEYREF, tls_key, 0, 0, true),
    KEY("tls", "client_ca", KG_CFG_PATH, tls_client_ca, 0, 0, true),
    KEY("tls", "ciphers", KG_CFG_STRING, tls_ciphers, 0, 0, false),
    KEY("tls", "crl", KG_CFG_PATH, tls_crl, 0, 0, false),
    KEY("hsm", "module", KG_CFG_PATH, hsm_module, 0, 0, true),
    /* CK_TOKEN_INFO.label is 32 bytes (PKCS#11 v2.40 section 3.2): a longer label can never match. */
    KEY("hsm", "token_label", KG_CFG_STRING, hsm_token_label, 0, 32, true),
    KEY("hsm", "pin_file", KG_CFG_PATH, hsm_pin_file, 0, 0, false),
    KEY("hsm", "pin_env", KG_CFG_ENVNAME, hsm_pin_env, 0, 255, false),
    KEY("hsm", "mwk_label", KG_CFG_STRING, hsm_mwk_label, 0, 0, false),
    KEY("hsm", "sessions", KG_CFG_U32, hsm_sessions, 1, 1024, false),
    /* One of the two: a SQLite file, or a PostgreSQL database shared by a cluster of gateways. */
    KEY("store", "path", KG_CFG_PATH, store_path, 0, 0, false),
    KEY("store", "url", KG_CFG_STRING, store_url, 0, 0, false),
    KEY("policy", "path", KG_CFG_PATH, policy_path, 0, 0, true),
    KEY("audit", "path", KG_CFG_PATH, audit_path, 0, 0, false),
    KEY("pki", "ca_cert", KG_CFG_PATH, pki_ca_cert, 0, 0, false),
    KEY("pki", "ca_key", KG_CFG_PATH, pki_ca_key, 0, 0, false),
    KEY("limits", "max_message_bytes", KG_CFG_U32, max_message_bytes, 1024, 16u * 1024 * 1024, false),
    KEY("limits", "max_depth", KG_CFG_U32, max_depth, 4, 64, false),
    KEY("limits", "max_items", KG_CFG_U32, max_items, 16, 1024u * 1024, false),
    KEY("limits", "max_batch_items", KG_CFG_U32, max_batch_items, 1, 4096, false),
    KEY("limits", "workers", KG_CFG_U32, workers, 1, 1024, false),
    KEY("limits", "max_pending", KG_CFG_U32, max_pending, 1, 65536, false),
    KEY("limits", "handshake_timeout_ms", KG_CFG_U32, handshake_timeout_ms, 100, 600000, false),
    KEY("limits", "idle_timeout_ms", KG_CFG_U32, idle_timeout_ms, 1000, 86400000, false),
    KEY("limits", "max_connections", KG_CFG_U32, max_connections, 1, 1000000, false),
    KEY("limits", "max_connections_per_ip", KG_CFG_U32, max_connections_per_ip, 1, 1000000, false),
    KEY("limits", "request_timeout_ms", KG_CFG_U32, request_timeout_ms, 100, 600000, false),
    /* Operations deferred by an Asynchronous Indicator (kg_async.h); 0 pending: never deferred. */
    KEY("limits", "async_max_pending", KG_CFG_U32, async_max_pending, 0, 65536, false),
    KEY("limits", "async_per_connection", KG_CFG_U32, async_per_connection, 1, 4096, false),
    KEY("limits", "async_lifetime_ms", KG_CFG_U32, async_lifetime_ms, 100, 86400000, false),
    /* KMIP 2.1 section 6.1.26: Interop SHALL NOT be available in a production server. */
    KEY("testing", "interop", KG_CFG_BOOL, testing_interop, 0, 1, false),
    /* Plain HTTP: loopback or a management network only (README, "Metrics and health"). */
    KEY("metrics", "listen", KG_CFG_ENDPOINT, metrics_listen, 1, 65535, false),
};
#undef KEY

#define KG_CONFIG_KEY_COUNT (sizeof(kg_config_keys) / sizeof(kg_config_keys[0]))

static const char *const kg_config_sections[] = { "listen", "tls",    "hsm",     "store", "policy",
                                                  "audit",  "limits", "testing", "pki", "metrics" };
#define KG_CONFIG_SECTION_COUNT (sizeof(kg_config_sections) / sizeof(kg_config_sections[0]))

struct kg_config_ctx {
    const char *file; /* as the caller named it: messages only */
    char *dir;        /* owned: absolute directory of the file, for relative paths */
    yaml_document_t *doc;
    struct kg_config *cfg;
    const yaml_node_t *section_key[KG_CONFIG_SECTION_COUNT]; /* where each section was given */
    const yaml_node_t *key_node[KG_CONFIG_KEY_COUNT];         /* where each key was given */
};

/*
 * Record KG_ERR_CONFIG and "file:line:column: message". kg_error_set clears
 * the detail, so the detail is attached after it; callers `return` this.
 */
static kg_result kg_config_fail(const struct kg_config_ctx *ctx, int src_line, const yaml_mark_t *mark,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static kg_result kg_config_fail(const struct kg_config_ctx *ctx, int src_line, const yaml_mark_t *mark,
                                const char *fmt, ...)
{
    char msg[224];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kg_error_set(KG_ERR_CONFIG, __FILE__, src_line);
    if (mark != NULL) {
        kg_error_detail("%s:%u:%u: %s", ctx->file, (unsigned)mark->line + 1, (unsigned)mark->column + 1, msg);
    } else {
        kg_error_detail("%s: %s", ctx->file, msg);
    }
    return KG_RESULT_ERROR;
}

#define KG_CONFIG_FAIL(ctx, mark, ...) kg_config_fail((ctx), __LINE__, (mark), __VA_ARGS__)

/* File text for a message: cut short, control characters replaced, so a log cannot be forged. */
static const char *kg_config_quote(char buf[KG_CONFIG_QUOTE], const char *s, size_t len)
{
    const size_t room = KG_CONFIG_QUOTE - 4;
    size_t o = 0;

    for (size_t i = 0; i < len && o < room; i++) {
        unsigned char c = (unsigned char)s[i];

        buf[o++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    if (len > room) {
        /* Do not leave half a UTF-8 character before the ellipsis. */
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80) {
            o--;
        }
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0) {
            o--;
        }
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static const char *kg_config_node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return "a single value";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "empty";
    }
}

static bool kg_config_scalar_is(const yaml_node_t *node, const char *word)
{
    size_t n = strlen(word);

    return node->type == YAML_SCALAR_NODE && node->data.scalar.length == n &&
           memcmp(node->data.scalar.value, word, n) == 0;
}

/* ---- reading and parsing ------------------------------------------------ */

static kg_result kg_config_read(struct kg_config_ctx *ctx, const char *path, char **out, size_t *out_len)
{
    kg_result rc = KG_RESULT_OK;
    char ebuf[128];
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return KG_CONFIG_FAIL(ctx, NULL, "cannot open: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = KG_CONFIG_FAIL(ctx, NULL, "not a regular file");
        goto out;
    }
    if (st.st_size > (off_t)KG_CONFIG_MAX_FILE_BYTES) {
        rc = KG_CONFIG_FAIL(ctx, NULL, "larger than %u bytes: refused", KG_CONFIG_MAX_FILE_BYTES);
        goto out;
    }
    /* One byte more than the cap, so a file that grew since fstat is still caught. */
    text = malloc(KG_CONFIG_MAX_FILE_BYTES + 1);
    KG_GOTO_ENSURE(rc, text != NULL, KG_ERR_NOMEM);
    while (len <= KG_CONFIG_MAX_FILE_BYTES) {
        ssize_t n = read(fd, text + len, KG_CONFIG_MAX_FILE_BYTES + 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = KG_CONFIG_FAIL(ctx, NULL, "cannot read: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > KG_CONFIG_MAX_FILE_BYTES) {
        rc = KG_CONFIG_FAIL(ctx, NULL, "larger than %u bytes: refused", KG_CONFIG_MAX_FILE_BYTES);
        goto out;
    }
    *out = text;
    *out_len = len;
    text = NULL;
out:
    free(text);
    close(fd);
    return rc;
}

/* 0-based mark of a byte offset, for reader errors, which carry only an offset. */
static yaml_mark_t kg_config_offset_mark(const char *text, size_t len, size_t offset)
{
    yaml_mark_t mark = { 0, 0, 0 };

    for (size_t i = 0; i < offset && i < len; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c == '\n') {
            mark.line++;
            mark.column = 0;
        } else if ((c & 0xC0) != 0x80) {
            mark.column++;
        }
    }
    mark.index = offset;
    return mark;
}

static kg_result kg_config_syntax_error(const struct kg_config_ctx *ctx, const yaml_parser_t *parser,
                                        const char *text, size_t len)
{
    const char *problem = parser->problem != NULL ? parser->problem : "unknown problem";
    yaml_mark_t mark;

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        KG_BAIL(KG_ERR_NOMEM);
    case YAML_READER_ERROR:
        mark = kg_config_offset_mark(text, len, parser->problem_offset);
        return KG_CONFIG_FAIL(ctx, &mark, "not valid YAML text: %s", problem);
    default:
        if (parser->context != NULL) {
            return KG_CONFIG_FAIL(ctx, &parser->problem_mark, "YAML syntax error: %s (%s at line %u)", problem,
                                  parser->context, (unsigned)parser->context_mark.line + 1);
        }
        return KG_CONFIG_FAIL(ctx, &parser->problem_mark, "YAML syntax error: %s", problem);
    }
}

/* ---- values ------------------------------------------------------------- */

static void kg_config_key_path(char *buf, size_t size, const struct kg_config_key *key)
{
    snprintf(buf, size, "%s.%s", key->section, key->name);
}

/* `s[0..len)` as a decimal number in min..max; `name` and `mark` are for the message. */
static kg_result kg_config_parse_uint_text(const struct kg_config_ctx *ctx, const char *name, const yaml_mark_t *mark,
                                           const char *s, size_t len, uint32_t min, uint32_t max, uint32_t *out)
{
    const size_t shown = len;
    char q[KG_CONFIG_QUOTE];
    uint64_t v = 0;

    /* Decimal digits only: no sign, no 0x, no 1e3, no "10k"; a limit must read as what it is. */
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            len = 0;
            break;
        }
        if (v <= UINT32_MAX) {
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
    }
    if (len == 0) {
        return KG_CONFIG_FAIL(ctx, mark, "%s must be a whole number from %u to %u, not '%s'", name, min, max,
                              kg_config_quote(q, s, shown));
    }
    if (v < min || v > max) {
        return KG_CONFIG_FAIL(ctx, mark, "%s is %s, out of range %u..%u", name, kg_config_quote(q, s, shown), min,
                              max);
    }
    *out = (uint32_t)v;
    return KG_RESULT_OK;
}

static kg_result kg_config_parse_uint(const struct kg_config_ctx *ctx, const struct kg_config_key *key,
                                      const yaml_node_t *node, uint32_t *out)
{
    char name[64];

    kg_config_key_path(name, sizeof(name), key);
    return kg_config_parse_uint_text(ctx, name, &node->start_mark, (const char *)node->data.scalar.value,
                                     node->data.scalar.length, key->min, key->max, out);
}

static bool kg_config_char_ok(enum kg_config_kind kind, unsigned char c, bool first)
{
    switch (kind) {
    case KG_CFG_ENVNAME:
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
    case KG_CFG_ADDRESS:
        /* IPv4, IPv6 (with %zone) and DNS names; a port belongs in `port`, a URL nowhere. */
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
               c == ':' || c == '-' || c == '%' || c == '_';
    default:
        return c >= 0x20 && c != 0x7F;
    }
}

/* `rel` made absolute against the config file's directory, or copied if already absolute. */
static kg_result kg_config_resolve(const struct kg_config_ctx *ctx, const char *rel, char **out)
{
    size_t need;

    *out = NULL;
    if (rel[0] == '/') {
        *out = strdup(rel);
        KG_ENSURE(*out != NULL, KG_ERR_NOMEM);
        return KG_RESULT_OK;
    }
    need = strlen(ctx->dir) + 1 + strlen(rel) + 1;
    *out = malloc(need);
    KG_ENSURE(*out != NULL, KG_ERR_NOMEM);
    snprintf(*out, need, "%s/%s", ctx->dir, rel);
    return KG_RESULT_OK;
}

/*
 * A pkcs11: URI, checked now so that a malformed one stops `serve` and
 * `init` alike with file:line:column; kept verbatim (kg_tls parses it again
 * when it loads the key). Whether its token= names hsm.token_label is
 * checked in kg_config_finish, as hsm: may come later in the file.
 */
static kg_result kg_config_set_uri(const struct kg_config_ctx *ctx, const struct kg_config_key *key,
                                   const yaml_node_t *node, char **field)
{
    struct kg_p11_uri uri;
    char name[64], why[200];

    kg_config_key_path(name, sizeof(name), key);
    if (kg_failed(kg_p11_uri_parse((const char *)node->data.scalar.value, &uri))) {
        /* The parser's text never quotes a value, so nothing after '?' (a
         * pin-value, say) reaches the message. */
        snprintf(why, sizeof(why), "%s", kg_error_text());
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s: %s", name, why);
    }
    *field = strdup((const char *)node->data.scalar.value);
    KG_ENSURE(*field != NULL, KG_ERR_NOMEM);
    return KG_RESULT_OK;
}

/* tls.key's token= (if any) must be the token the gateway opens: the key is
 * looked up only there, so another name can only be a mistake. */
static kg_result kg_config_check_key_token(const struct kg_config_ctx *ctx)
{
    const struct kg_config *cfg = ctx->cfg;
    struct kg_p11_uri uri;

    if (!kg_p11_uri_is(cfg->tls_key) || cfg->hsm_token_label == NULL) {
        return KG_RESULT_OK;
    }
    KG_GUARD(kg_p11_uri_parse(cfg->tls_key, &uri));
    if (!uri.has_token || strcmp(uri.token, cfg->hsm_token_label) == 0) {
        return KG_RESULT_OK;
    }
    for (size_t i = 0; i < KG_CONFIG_KEY_COUNT; i++) {
        if (kg_config_keys[i].offset == offsetof(struct kg_config, tls_key)) {
            const yaml_node_t *at = ctx->key_node[i];

            return KG_CONFIG_FAIL(ctx, at != NULL ? &at->start_mark : NULL,
                                  "tls.key names token '%s', but the gateway opens hsm.token_label '%s'; "
                                  "drop token= or make them the same",
                                  uri.token, cfg->hsm_token_label);
        }
    }
    KG_BAIL(KG_ERR_INTERNAL);
}

static kg_result kg_config_set_string(const struct kg_config_ctx *ctx, const struct kg_config_key *key,
                                      const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    size_t max = key->max != 0 ? key->max : KG_CONFIG_MAX_STRING;
    char **field = (char **)(void *)((char *)ctx->cfg + key->offset);
    char name[64], q[KG_CONFIG_QUOTE];

    kg_config_key_path(name, sizeof(name), key);
    if (len == 0) {
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s is empty", name);
    }
    if (len > max) {
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s is longer than %zu bytes", name, max);
    }
    /* Also refuses NUL ("\0" in a quoted scalar), which would silently cut a path short. */
    for (size_t i = 0; i < len; i++) {
        if (!kg_config_char_ok(key->kind, (unsigned char)s[i], i == 0)) {
            const char *what = key->kind == KG_CFG_ENVNAME   ? "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                               : key->kind == KG_CFG_ADDRESS ? "an IP address or host name"
                                                             : "text without control characters";

            /* store.url may hold a password: never quoted. */
            if (key->offset == offsetof(struct kg_config, store_url)) {
                return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must be %s", name, what);
            }
            return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must be %s, not '%s'", name, what,
                                  kg_config_quote(q, s, len));
        }
    }
    if (key->kind == KG_CFG_KEYREF && kg_p11_uri_is(s)) {
        return kg_config_set_uri(ctx, key, node, field);
    }
    if (key->kind == KG_CFG_PATH || key->kind == KG_CFG_KEYREF) {
        /*
         * Relative paths, the module's too, are taken from the config file's
         * directory. For the module that also means no dlopen() search of
         * LD_LIBRARY_PATH and the like: the gateway loads the file named.
         */
        return kg_config_resolve(ctx, s, field);
    }
    *field = strdup(s);
    KG_ENSURE(*field != NULL, KG_ERR_NOMEM);
    return KG_RESULT_OK;
}

/*
 * ADDRESS:PORT, with an IPv6 address in brackets ([::1]:9696) so that its
 * colons cannot be mistaken for the port's. Empty means "off": the key can
 * be left in a file with nothing after it.
 */
static kg_result kg_config_set_endpoint(const struct kg_config_ctx *ctx, const struct kg_config_key *key,
                                        const yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length, host_at = 0, host_len, colon;
    struct kg_config_endpoint *field = (struct kg_config_endpoint *)(void *)((char *)ctx->cfg + key->offset);
    const char *bracket;
    char name[64], port_name[80], q[KG_CONFIG_QUOTE];
    uint32_t port;

    kg_config_key_path(name, sizeof(name), key);
    if (len == 0) {
        return KG_RESULT_OK;
    }
    colon = len;
    while (colon > 0 && s[colon - 1] != ':') {
        colon--;
    }
    host_len = colon > 0 ? colon - 1 : 0;
    if (s[0] == '[') {
        /* The bracket must close right before the port's colon. */
        bracket = memchr(s, ']', len);
        host_at = 1;
        host_len = bracket != NULL && (size_t)(bracket - s) + 1 == host_len ? host_len - 2 : 0;
    } else if (memchr(s, ':', host_len) != NULL) {
        host_len = 0; /* IPv6 without brackets: which colon starts the port? */
    }
    if (colon == 0 || host_len == 0 || host_len > 255) {
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must be ADDRESS:PORT (127.0.0.1:9696, [::1]:9696), not '%s'",
                              name, kg_config_quote(q, s, len));
    }
    for (size_t i = 0; i < host_len; i++) {
        if (!kg_config_char_ok(KG_CFG_ADDRESS, (unsigned char)s[host_at + i], i == 0)) {
            return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must start with an IP address or host name, not '%s'",
                                  name, kg_config_quote(q, s, len));
        }
    }
    snprintf(port_name, sizeof(port_name), "the port of %s", name);
    KG_GUARD(kg_config_parse_uint_text(ctx, port_name, &node->start_mark, s + colon, len - colon, key->min, key->max,
                                       &port));
    field->address = strndup(s + host_at, host_len);
    KG_ENSURE(field->address != NULL, KG_ERR_NOMEM);
    field->port = (uint16_t)port;
    return KG_RESULT_OK;
}

static kg_result kg_config_set(const struct kg_config_ctx *ctx, const struct kg_config_key *key,
                               const yaml_node_t *node)
{
    char name[64];
    uint32_t v;

    kg_config_key_path(name, sizeof(name), key);
    if (node->type != YAML_SCALAR_NODE) {
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must be a single value, not %s", name,
                              kg_config_node_kind(node));
    }
    switch (key->kind) {
    case KG_CFG_U16:
        KG_GUARD(kg_config_parse_uint(ctx, key, node, &v));
        *(uint16_t *)(void *)((char *)ctx->cfg + key->offset) = (uint16_t)v;
        return KG_RESULT_OK;
    case KG_CFG_U32:
        KG_GUARD(kg_config_parse_uint(ctx, key, node, &v));
        *(uint32_t *)(void *)((char *)ctx->cfg + key->offset) = v;
        return KG_RESULT_OK;
    case KG_CFG_BOOL: {
        const char *text = (const char *)node->data.scalar.value;
        bool *field = (bool *)(void *)((char *)ctx->cfg + key->offset);

        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            *field = text[0] == 't';
            return KG_RESULT_OK;
        }
        return KG_CONFIG_FAIL(ctx, &node->start_mark, "%s must be true or false", name);
    }
    case KG_CFG_STRING:
    case KG_CFG_PATH:
    case KG_CFG_KEYREF:
    case KG_CFG_ENVNAME:
    case KG_CFG_ADDRESS:
        return kg_config_set_string(ctx, key, node);
    case KG_CFG_ENDPOINT:
        return kg_config_set_endpoint(ctx, key, node);
    default:
        KG_BAIL(KG_ERR_INTERNAL);
    }
}

/* ---- structure ---------------------------------------------------------- */

/* "certificate, key, client_ca, ciphers": the keys a section takes, for messages. */
static void kg_config_section_keys(char *buf, size_t size, const char *section)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < KG_CONFIG_KEY_COUNT && o < size; i++) {
        if (strcmp(kg_config_keys[i].section, section) == 0) {
            int n = snprintf(buf + o, size - o, "%s%s", o == 0 ? "" : ", ", kg_config_keys[i].name);

            if (n < 0) {
                break;
            }
            o += (size_t)n;
        }
    }
}

static kg_result kg_config_section(struct kg_config_ctx *ctx, const char *section, const yaml_node_t *map)
{
    char q[KG_CONFIG_QUOTE], keys[160];

    if (map->type != YAML_MAPPING_NODE) {
        return KG_CONFIG_FAIL(ctx, &map->start_mark, "%s must be a mapping of settings, not %s", section,
                              kg_config_node_kind(map));
    }
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        size_t found = KG_CONFIG_KEY_COUNT;

        KG_ENSURE(k != NULL && v != NULL, KG_ERR_INTERNAL);
        if (k->type != YAML_SCALAR_NODE) {
            return KG_CONFIG_FAIL(ctx, &k->start_mark, "a key in %s must be a single word, not %s", section,
                                  kg_config_node_kind(k));
        }
        for (size_t i = 0; i < KG_CONFIG_KEY_COUNT; i++) {
            if (strcmp(kg_config_keys[i].section, section) == 0 && kg_config_scalar_is(k, kg_config_keys[i].name)) {
                found = i;
                break;
            }
        }
        if (found == KG_CONFIG_KEY_COUNT) {
            kg_config_section_keys(keys, sizeof(keys), section);
            return KG_CONFIG_FAIL(ctx, &k->start_mark, "unknown key '%s' in %s (known: %s)",
                                  kg_config_quote(q, (const char *)k->data.scalar.value, k->data.scalar.length),
                                  section, keys);
        }
        if (ctx->key_node[found] != NULL) {
            return KG_CONFIG_FAIL(ctx, &k->start_mark, "%s.%s given twice (first at line %u)", section,
                                  kg_config_keys[found].name, (unsigned)ctx->key_node[found]->start_mark.line + 1);
        }
        ctx->key_node[found] = k;
        KG_GUARD(kg_config_set(ctx, &kg_config_keys[found], v));
    }
    return KG_RESULT_OK;
}

static kg_result kg_config_root(struct kg_config_ctx *ctx, const yaml_node_t *root)
{
    char q[KG_CONFIG_QUOTE];

    if (root->type != YAML_MAPPING_NODE) {
        return KG_CONFIG_FAIL(ctx, &root->start_mark,
                              "the top level must be a mapping of sections (listen, tls, hsm, ...), not %s",
                              kg_config_node_kind(root));
    }
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
        const yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
        const yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
        size_t found = KG_CONFIG_SECTION_COUNT;

        KG_ENSURE(k != NULL && v != NULL, KG_ERR_INTERNAL);
        if (k->type != YAML_SCALAR_NODE) {
            return KG_CONFIG_FAIL(ctx, &k->start_mark, "a section name must be a single word, not %s",
                                  kg_config_node_kind(k));
        }
        for (size_t i = 0; i < KG_CONFIG_SECTION_COUNT; i++) {
            if (kg_config_scalar_is(k, kg_config_sections[i])) {
                found = i;
                break;
            }
        }
        if (found == KG_CONFIG_SECTION_COUNT) {
            return KG_CONFIG_FAIL(ctx, &k->start_mark,
                                  "unknown section '%s' (known: listen, tls, hsm, store, policy, audit, limits, "
                                  "testing, pki, metrics)",
                                  kg_config_quote(q, (const char *)k->data.scalar.value, k->data.scalar.length));
        }
        if (ctx->section_key[found] != NULL) {
            return KG_CONFIG_FAIL(ctx, &k->start_mark, "section %s given twice (first at line %u)",
                                  kg_config_sections[found],
                                  (unsigned)ctx->section_key[found]->start_mark.line + 1);
        }
        ctx->section_key[found] = k;
        KG_GUARD(kg_config_section(ctx, kg_config_sections[found], v));
    }
    return KG_RESULT_OK;
}

static const yaml_node_t *kg_config_section_node(const struct kg_config_ctx *ctx, const char *section)
{
    for (size_t i = 0; i < KG_CONFIG_SECTION_COUNT; i++) {
        if (strcmp(kg_config_sections[i], section) == 0) {
            return ctx->section_key[i];
        }
    }
    return NULL;
}

/*
 * store.path or store.url, not both. The URL is kept verbatim and becomes
 * the store's location (store_path), which kg_store_open tells apart by its
 * scheme; it may hold a password, so it is never quoted in a message.
 */
static kg_result kg_config_check_store(struct kg_config_ctx *ctx, const yaml_node_t *root)
{
    struct kg_config *cfg = ctx->cfg;
    const yaml_node_t *sec = kg_config_section_node(ctx, "store");
    const yaml_mark_t *mark = sec != NULL ? &sec->start_mark : &root->start_mark;

    if ((cfg->store_path == NULL) == (cfg->store_url == NULL)) {
        return KG_CONFIG_FAIL(ctx, mark,
                              cfg->store_path == NULL
                                  ? "missing required key store.path (a SQLite file) or store.url (PostgreSQL)"
                                  : "store.path and store.url are both given; choose one");
    }
    if (cfg->store_url == NULL) {
        return KG_RESULT_OK;
    }
    if (!kg_db_location_is_pg(cfg->store_url)) {
        return KG_CONFIG_FAIL(ctx, mark, "store.url must be a postgresql:// URL");
    }
    cfg->store_path = strdup(cfg->store_url);
    KG_ENSURE(cfg->store_path != NULL, KG_ERR_NOMEM);
    return KG_RESULT_OK;
}

/* Required keys, the PIN source, then defaults. Positions point at the section that lacks the key. */
static kg_result kg_config_finish(struct kg_config_ctx *ctx, const yaml_node_t *root)
{
    struct kg_config *cfg = ctx->cfg;
    const yaml_node_t *hsm;

    for (size_t i = 0; i < KG_CONFIG_KEY_COUNT; i++) {
        const struct kg_config_key *key = &kg_config_keys[i];
        const yaml_node_t *sec;

        if (!key->required || ctx->key_node[i] != NULL) {
            continue;
        }
        sec = kg_config_section_node(ctx, key->section);
        if (sec == NULL) {
            return KG_CONFIG_FAIL(ctx, &root->start_mark, "missing required key %s.%s (no %s: section)",
                                  key->section, key->name, key->section);
        }
        return KG_CONFIG_FAIL(ctx, &sec->start_mark, "missing required key %s.%s", key->section, key->name);
    }
    /* Both may be given: pin_file is then used (kg_secret_read_pin); neither is an error. */
    if (cfg->hsm_pin_file == NULL && cfg->hsm_pin_env == NULL) {
        hsm = kg_config_section_node(ctx, "hsm");
        return KG_CONFIG_FAIL(ctx, hsm != NULL ? &hsm->start_mark : &root->start_mark,
                              "missing required key hsm.pin_file or hsm.pin_env (where the token PIN comes from)");
    }
    KG_GUARD(kg_config_check_key_token(ctx));
    KG_GUARD(kg_config_check_store(ctx, root));
    if (cfg->listen_address == NULL) {
        cfg->listen_address = strdup("127.0.0.1");
        KG_ENSURE(cfg->listen_address != NULL, KG_ERR_NOMEM);
    }
    if (cfg->hsm_mwk_label == NULL) {
        cfg->hsm_mwk_label = strdup("kmipgw-mwk");
        KG_ENSURE(cfg->hsm_mwk_label != NULL, KG_ERR_NOMEM);
    }
    /* The CA that signs client certificates is, by default, the one the
     * gateway trusts for them: a certificate it signs then connects. */
    if (cfg->pki_ca_cert == NULL) {
        cfg->pki_ca_cert = strdup(cfg->tls_client_ca);
        KG_ENSURE(cfg->pki_ca_cert != NULL, KG_ERR_NOMEM);
    }
    return KG_RESULT_OK;
}

static void kg_config_defaults(struct kg_config *cfg)
{
    cfg->listen_port = 5696;
    cfg->hsm_sessions = 8;
    cfg->max_message_bytes = 65536;
    cfg->max_depth = 16;
    cfg->max_items = 4096;
    cfg->max_batch_items = 64;
    cfg->workers = 16;
    cfg->max_pending = 256;
    cfg->handshake_timeout_ms = 10000;
    cfg->idle_timeout_ms = 30000;
    cfg->max_connections = 4096;
    cfg->max_connections_per_ip = 512;
    cfg->request_timeout_ms = 10000;
    cfg->async_max_pending = 1024;
    cfg->async_per_connection = 16;
    cfg->async_lifetime_ms = 300000;
}

/* Absolute directory of `path`, so relative settings survive a later chdir. */
static kg_result kg_config_dir(struct kg_config_ctx *ctx, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;

    if (slash == NULL) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    KG_ENSURE(dir != NULL, KG_ERR_NOMEM);
    ctx->dir = realpath(dir, NULL);
    free(dir);
    if (ctx->dir == NULL) {
        char ebuf[128];

        return KG_CONFIG_FAIL(ctx, NULL, "cannot resolve its directory: %s", strerror_r(errno, ebuf, sizeof(ebuf)));
    }
    /* "/" + "/rel" would give "//rel"; harmless, but keep names tidy. */
    if (strcmp(ctx->dir, "/") == 0) {
        ctx->dir[0] = '\0';
    }
    return KG_RESULT_OK;
}

kg_result kg_config_load(const char *path, struct kg_config **out)
{
    struct kg_config_ctx ctx;
    kg_result rc = KG_RESULT_OK;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    bool parser_ok = false, doc_ok = false;
    char *text = NULL;
    size_t len = 0;
    const yaml_node_t *root;

    KG_ENSURE(out != NULL, KG_ERR_INTERNAL);
    *out = NULL;
    memset(&ctx, 0, sizeof(ctx));
    ctx.file = path != NULL ? path : "(null)";
    KG_ENSURE(path != NULL, KG_ERR_CONFIG);

    KG_GOTO_GUARD(rc, kg_config_read(&ctx, path, &text, &len));
    KG_GOTO_GUARD(rc, kg_config_dir(&ctx, path));
    ctx.cfg = calloc(1, sizeof(*ctx.cfg));
    KG_GOTO_ENSURE(rc, ctx.cfg != NULL, KG_ERR_NOMEM);
    kg_config_defaults(ctx.cfg);

    KG_GOTO_ENSURE(rc, yaml_parser_initialize(&parser), KG_ERR_NOMEM);
    parser_ok = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = kg_config_syntax_error(&ctx, &parser, text, len);
        goto out;
    }
    doc_ok = true;
    ctx.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        yaml_mark_t start = { 0, 0, 0 };

        rc = KG_CONFIG_FAIL(&ctx, &start, "the configuration is empty (see conf/gateway.yaml for an example)");
        goto out;
    }
    /* A second document would be ignored by a reader and so silently not apply: refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
        rc = kg_config_syntax_error(&ctx, &parser, text, len);
        goto out;
    }
    if (yaml_document_get_root_node(&extra) != NULL) {
        yaml_mark_t start = extra.start_mark;

        yaml_document_delete(&extra);
        rc = KG_CONFIG_FAIL(&ctx, &start, "a configuration file holds one YAML document, not several");
        goto out;
    }
    yaml_document_delete(&extra);

    KG_GOTO_GUARD(rc, kg_config_root(&ctx, root));
    KG_GOTO_GUARD(rc, kg_config_finish(&ctx, root));
    *out = ctx.cfg;
    ctx.cfg = NULL;
out:
    if (doc_ok) {
        yaml_document_delete(&doc);
    }
    if (parser_ok) {
        yaml_parser_delete(&parser);
    }
    kg_config_free(ctx.cfg);
    free(ctx.dir);
    free(text);
    return rc;
}

void kg_config_free(struct kg_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < KG_CONFIG_KEY_COUNT; i++) {
        switch (kg_config_keys[i].kind) {
        case KG_CFG_STRING:
        case KG_CFG_PATH:
        case KG_CFG_KEYREF:
        case KG_CFG_ENVNAME:
        case KG_CFG_ADDRESS:
            free(*(char **)(void *)((char *)cfg + kg_config_keys[i].offset));
            break;
        case KG_CFG_ENDPOINT:
            free(((struct kg_config_endpoint *)(void *)((char *)cfg + kg_config_keys[i].offset))->address);
            break;
        default:
            break;
        }
    }
    memset(cfg, 0, sizeof(*cfg));
    free(cfg);
}
