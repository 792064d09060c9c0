/*
 * kg_cli_ttlv.c - kmipgw ttlv to-xml | to-hex: turn captured TTLV (hex) into
 * the KMIP XML encoding and back, for operators reading traffic dumps.
 *
 * Input is stdin, capped; every error is one line on stderr and exit 2.
 */
#include "kg_cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_ttlv.h"
#include "kg_xml.h"

/* Hex text of a capped message: two digits per byte plus whitespace. */
#define KG_CLI_TTLV_MAX_INPUT (4u * KG_XML_MAX_INPUT)

static int kg_cli_ttlv_fail(const char *what)
{
    const char *text = kg_error_text();

    fprintf(stderr, "kmipgw ttlv: %s: %s\n", what, text[0] ? text : kg_error_name(kg_errno()));
    return 2;
}

/* Read all of stdin (at most `cap` bytes) into a malloc'ed, NUL-terminated
 * buffer owned by the caller. Returns NULL (message printed) on failure. */
static char *kg_cli_ttlv_read_stdin(size_t cap, size_t *out_len)
{
    size_t len = 0;
    size_t size = 65536;
    char *buf = malloc(size);

    if (buf == NULL) {
        fprintf(stderr, "kmipgw ttlv: out of memory\n");
        return NULL;
    }
    for (;;) {
        size_t n;

        if (size - len < 2) {
            char *p;

            if (size > cap) {
                fprintf(stderr, "kmipgw ttlv: input larger than %zu bytes\n", cap);
                free(buf);
                return NULL;
            }
            p = realloc(buf, size * 2);
            if (p == NULL) {
                fprintf(stderr, "kmipgw ttlv: out of memory\n");
                free(buf);
                return NULL;
            }
            buf = p;
            size *= 2;
        }
        n = fread(buf + len, 1, size - len - 1, stdin);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "kmipgw ttlv: cannot read stdin\n");
        free(buf);
        return NULL;
    }
    if (len > cap) {
        fprintf(stderr, "kmipgw ttlv: input larger than %zu bytes\n", cap);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

/* Hex digits with any whitespace between them, decoded in place into `text`. */
static int kg_cli_ttlv_unhex(char *text, size_t len, uint32_t *out_len)
{
    size_t o = 0;
    int hi = -1;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        int v;

        if (isspace(c)) {
            continue;
        }
        if (!isxdigit(c)) {
            fprintf(stderr, "kmipgw ttlv: not a hex digit at byte %zu: '%c'\n", i, isprint(c) ? c : '?');
            return 2;
        }
        v = isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            text[o++] = (char)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        fprintf(stderr, "kmipgw ttlv: odd number of hex digits\n");
        return 2;
    }
    if (o == 0) {
        fprintf(stderr, "kmipgw ttlv: no input\n");
        return 2;
    }
    *out_len = (uint32_t)o;
    return 0;
}

/* Each top-level item of the input becomes one XML element on stdout. */
static int kg_cli_ttlv_to_xml(void)
{
    size_t len = 0;
    uint32_t blen = 0;
    char *buf = kg_cli_ttlv_read_stdin(KG_CLI_TTLV_MAX_INPUT, &len);
    struct kg_ttlv_limits limits = kg_ttlv_default_limits;
    struct kg_ttlv_budget budget;
    struct kg_ttlv_reader r;
    int status = 2;

    if (buf == NULL) {
        return 2;
    }
    if (kg_cli_ttlv_unhex(buf, len, &blen) != 0) {
        goto out;
    }
    limits.max_message_len = blen;
    limits.max_items = UINT32_MAX;
    limits.max_depth = KG_TTLV_MAX_DEPTH;
    kg_ttlv_budget_init(&budget, &limits);
    if (kg_failed(kg_ttlv_reader_init(&r, (const uint8_t *)buf, blen, &budget))) {
        status = kg_cli_ttlv_fail("TTLV");
        goto out;
    }
    while (!kg_ttlv_reader_done(&r)) {
        struct kg_ttlv_item it;
        char *xml = NULL;
        size_t xml_len = 0;

        if (kg_failed(kg_ttlv_read(&r, &it))) {
            fprintf(stderr, "kmipgw ttlv: TTLV at byte %u: %s\n", r.pos,
                    kg_error_text()[0] ? kg_error_text() : kg_error_name(kg_errno()));
            goto out;
        }
        if (kg_failed(kg_xml_from_ttlv(it.raw, it.raw_len, &xml, &xml_len))) {
            status = kg_cli_ttlv_fail("TTLV");
            goto out;
        }
        fwrite(xml, 1, xml_len, stdout);
        free(xml);
    }
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    free(buf);
    return status;
}

static int kg_cli_ttlv_to_hex(void)
{
    size_t len = 0;
    char *buf = kg_cli_ttlv_read_stdin(KG_XML_MAX_INPUT, &len);
    struct kg_ttlv_writer w;
    int status = 2;

    if (buf == NULL) {
        return 2;
    }
    if (kg_failed(kg_ttlv_writer_init(&w, KG_XML_MAX_INPUT, false))) {
        free(buf);
        return kg_cli_ttlv_fail("writer");
    }
    if (kg_failed(kg_xml_to_ttlv(buf, len, &w))) {
        status = kg_cli_ttlv_fail("XML");
        goto out;
    }
    for (uint32_t i = 0; i < w.len; i++) {
        printf("%02x", w.buf[i]);
    }
    putchar('\n');
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    kg_ttlv_writer_cleanup(&w);
    free(buf);
    return status;
}

int kg_cli_ttlv(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "to-xml") == 0) {
        return kg_cli_ttlv_to_xml();
    }
    if (argc == 2 && strcmp(argv[1], "to-hex") == 0) {
        return kg_cli_ttlv_to_hex();
    }
    fputs("usage: kmipgw ttlv to-xml   < hex      TTLV as hex (whitespace allowed) to KMIP XML\n"
          "       kmipgw ttlv to-hex   < xml      KMIP XML to TTLV hex\n",
          stderr);
    return 2;
}
