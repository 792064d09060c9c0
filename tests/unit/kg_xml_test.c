/*
 * kg_xml_test.c - CUnit suite for the KMIP XML encoding (gateway/kg_xml.c)
 * and the enumeration name table.
 *
 * Round trips: the ten TTLV examples of KMIP 1.4 section 9.1.2, and every
 * message of the OASIS XML vectors in $KG_SHARED_DIR/kmip-vectors that has no
 * placeholder in a typed value (XML -> TTLV -> XML -> TTLV, byte-identical).
 * Every check on input has a negative test with the exact error code.
 */
#include "kg_test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>

#include "kg_kmip.h"
#include "kg_ttlv.h"
#include "kg_xml.h"

#define EXPECT_ERR(expr, code)                                                  \
    do {                                                                        \
        kg_error_clear();                                                       \
        kg_result expect_rc_ = (expr);                                          \
        CU_ASSERT_TRUE(kg_failed(expect_rc_));                                  \
        CU_ASSERT_EQUAL(kg_errno(), (code));                                    \
        if (kg_errno() != (code)) {                                             \
            fprintf(stderr, "\n  %s:%d: got %s (%s), want %s\n", __FILE__,      \
                    __LINE__, kg_error_name(kg_errno()), kg_error_text(),       \
                    kg_error_name(code));                                       \
        }                                                                       \
    } while (0)

#define EXPECT_OK(expr)                                                         \
    do {                                                                        \
        kg_error_clear();                                                       \
        kg_result expect_rc_ = (expr);                                          \
        CU_ASSERT_TRUE(kg_ok(expect_rc_));                                      \
        if (kg_failed(expect_rc_)) {                                            \
            fprintf(stderr, "\n  %s:%d: unexpected %s (%s)\n", __FILE__,        \
                    __LINE__, kg_error_name(kg_errno()), kg_error_text());      \
        }                                                                       \
    } while (0)

#define T_USAGE_MASK 0x42002Cu
#define T_OBJECT_TYPE 0x420057u
#define T_BATCH_COUNT 0x42000Du
#define T_ATTRIBUTE_VALUE 0x42000Bu

static struct kg_ttlv_writer t_w;

static void t_writer(void)
{
    EXPECT_OK(kg_ttlv_writer_init(&t_w, 1u << 20, false));
}

static size_t t_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (; *hex != '\0'; hex++) {
        int v;

        if (*hex == ' ' || *hex == '\t') {
            continue;
        }
        v = *hex <= '9' ? *hex - '0' : (*hex | 0x20) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            CU_ASSERT_FATAL(n < cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

/* XML text of one leaf written with `ctx`, through the public API. */
static int32_t t_int_of(const char *value, uint32_t ctx)
{
    struct kg_ttlv_item it;
    struct kg_ttlv_reader r;
    struct kg_ttlv_budget b;
    int32_t v = -12345;

    t_writer();
    EXPECT_OK(kg_xml_write_leaf(&t_w, T_ATTRIBUTE_VALUE, KG_TTLV_INTEGER, ctx, value));
    kg_ttlv_budget_init(&b, NULL);
    EXPECT_OK(kg_ttlv_reader_init(&r, t_w.buf, t_w.len, &b));
    EXPECT_OK(kg_ttlv_read(&r, &it));
    EXPECT_OK(kg_ttlv_get_int(&it, &v));
    kg_ttlv_writer_cleanup(&t_w);
    return v;
}

/* ---- names ---- */

static void test_normalize(void)
{
    static const char *const cases[][2] = {
        { "Common Template-Attribute", "CommonTemplateAttribute" },
        { "X.509 Certificate Identifier", "X_509CertificateIdentifier" },
        { "CRT Coefficient", "CRTCoefficient" },
        { "Object archived", "ObjectArchived" },
        { "PKCS#11 Interface", "PKCS_11Interface" },
        { "Content Commitment (Non Repudiation)", "ContentCommitmentNonRepudiation" },
        { "3DES thing", "DES3Thing" },
        { "Re-key Key Pair", "ReKeyKeyPair" },
    };
    char out[KG_XML_MAX_NAME];
    char tiny[8];
    char huge[300];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EXPECT_OK(kg_xml_normalize(cases[i][0], out, sizeof(out)));
        CU_ASSERT_STRING_EQUAL(out, cases[i][1]);
    }
    EXPECT_ERR(kg_xml_normalize("Common Template-Attribute", tiny, sizeof(tiny)), KG_ERR_WRITER_FULL);
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    EXPECT_ERR(kg_xml_normalize(huge, out, sizeof(out)), KG_ERR_WRITER_FULL);
    EXPECT_ERR(kg_xml_normalize("x", out, 0), KG_ERR_WRITER_FULL);
}

static void test_tags(void)
{
    uint32_t tag = 1;

    EXPECT_OK(kg_xml_tag_from_name("UniqueIdentifier", &tag));
    CU_ASSERT_EQUAL(tag, 0x420094u);
    EXPECT_OK(kg_xml_tag_from_name("CommonTemplateAttribute", &tag));
    CU_ASSERT_EQUAL(tag, 0x42001Fu);
    EXPECT_OK(kg_xml_tag_from_name("AttributeReference", &tag)); /* a KMIP 2.x tag */
    CU_ASSERT_EQUAL(tag >> 16, 0x42u);
    EXPECT_OK(kg_xml_tag_from_name("0x540001", &tag));
    CU_ASSERT_EQUAL(tag, 0x540001u);
    CU_ASSERT_STRING_EQUAL(kg_xml_tag_name(0x420094), "UniqueIdentifier");
    CU_ASSERT_PTR_NULL(kg_xml_tag_name(0x54FFFF));
    EXPECT_ERR(kg_xml_tag_from_name("NoSuchTag", &tag), KG_ERR_TTLV_BAD_TAG);
    CU_ASSERT_EQUAL(tag, 0u);
    EXPECT_ERR(kg_xml_tag_from_name("0x430001", &tag), KG_ERR_TTLV_BAD_TAG);
    EXPECT_ERR(kg_xml_tag_from_name("uniqueidentifier", &tag), KG_ERR_TTLV_BAD_TAG);
    EXPECT_ERR(kg_xml_tag_from_name("ThisNameIsFarTooLongToBeAnyTagOfTheKmipSpecificationAtAllReally", &tag),
               KG_ERR_TTLV_BAD_TAG);
}

static void test_enum_table(void)
{
    const struct kg_enum_table *t = kg_kmip_enum_table(T_OBJECT_TYPE);
    bool found = false;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_FALSE(t->mask);
    for (uint32_t i = 0; i < t->count; i++) {
        found = found || (t->names[i].value == 2 && strcmp(t->names[i].name, "SymmetricKey") == 0);
    }
    CU_ASSERT_TRUE(found);
    CU_ASSERT_TRUE(kg_kmip_enum_table(T_USAGE_MASK)->mask);
    CU_ASSERT_PTR_NULL(kg_kmip_enum_table(T_BATCH_COUNT));
    CU_ASSERT_EQUAL(kg_xml_context_tag(T_ATTRIBUTE_VALUE, "Cryptographic Usage Mask"), T_USAGE_MASK);
    CU_ASSERT_EQUAL(kg_xml_context_tag(T_ATTRIBUTE_VALUE, "x-custom"), 0u);
    CU_ASSERT_EQUAL(kg_xml_context_tag(T_ATTRIBUTE_VALUE, NULL), 0u);
    CU_ASSERT_EQUAL(kg_xml_context_tag(T_OBJECT_TYPE, "Cryptographic Usage Mask"), T_OBJECT_TYPE);
}

/* ---- values ---- */

static void test_integer_and_masks(void)
{
    CU_ASSERT_EQUAL(t_int_of("12", 0), 12);
    CU_ASSERT_EQUAL(t_int_of("-1", 0), -1);
    CU_ASSERT_EQUAL(t_int_of("0xffffffff", 0), -1);
    CU_ASSERT_EQUAL(t_int_of("Encrypt Decrypt", T_USAGE_MASK), 12);
    /* Section 6.1.6.4's examples: names and hex parts mixed, any spacing. */
    CU_ASSERT_EQUAL(t_int_of("CertificateSign 0x00000004 0x0000008", T_USAGE_MASK), 0x100c);
    CU_ASSERT_EQUAL(t_int_of("Decrypt   Encrypt", T_USAGE_MASK), 12);

    t_writer();
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, "2147483648"), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, "12x"), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, " 1"), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, ""), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, NULL), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, "0x123456789"), KG_ERR_TTLV_BAD_VALUE);
    /* Names only where the tag has a mask table. */
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_BATCH_COUNT, KG_TTLV_INTEGER, 0, "Encrypt"), KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, T_USAGE_MASK, KG_TTLV_INTEGER, T_USAGE_MASK, "Encrypt Frobnicate"),
               KG_ERR_TTLV_BAD_VALUE);
    EXPECT_ERR(kg_xml_write_leaf(&t_w, 0x430000, KG_TTLV_INTEGER, 0, "1"), KG_ERR_TTLV_BAD_TAG);
    CU_ASSERT_EQUAL(t_w.len, 0u);
    kg_ttlv_writer_cleanup(&t_w);
}

static void test_other_types(void)
{
    static const struct {
        uint8_t type;
        uint32_t ctx;
        const char *value;
        const char *hex;
    } good[] = {
        { KG_TTLV_ENUMERATION, T_OBJECT_TYPE, "SymmetricKey", "420020 05 00000004 00000002 00000000" },
        { KG_TTLV_ENUMERATION, T_OBJECT_TYPE, "0x000000FF", "420020 05 00000004 000000ff 00000000" },
        { KG_TTLV_BOOLEAN, 0, "true", "420020 06 00000008 0000000000000001" },
        { KG_TTLV_BOOLEAN, 0, "0", "420020 06 00000008 0000000000000000" },
        { KG_TTLV_LONG_INTEGER, 0, "123456789000000000", "420020 03 00000008 01B69B4BA5749200" },
        { KG_TTLV_BIG_INTEGER, 0, "03FD35EB6BC2DF4618080000",
          "420020 04 00000010 0000000003FD35EB6BC2DF4618080000" },
        { KG_TTLV_TEXT_STRING, 0, "Hello World", "420020 07 0000000B 48656C6C6F20576F726C640000000000" },
        { KG_TTLV_TEXT_STRING, 0, NULL, "420020 07 00000000" },
        { KG_TTLV_BYTE_STRING, 0, "010203", "420020 08 00000003 0102030000000000" },
        { KG_TTLV_DATE_TIME, 0, "2008-03-14T11:56:40Z", "420020 09 00000008 0000000047DA67F8" },
        { KG_TTLV_DATE_TIME, 0, "2008-03-14T21:56:40+10:00", "420020 09 00000008 0000000047DA67F8" },
        { KG_TTLV_DATE_TIME, 0, "2008-03-14T11:56:40", "420020 09 00000008 0000000047DA67F8" },
        { KG_TTLV_INTERVAL, 0, "864000", "420020 0A 00000004 000D2F0000000000" },
    };
    static const struct {
        uint8_t type;
        uint32_t ctx;
        const char *value;
        int code;
    } bad[] = {
        { KG_TTLV_ENUMERATION, T_OBJECT_TYPE, "NoSuchObject", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_ENUMERATION, 0, "SymmetricKey", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_ENUMERATION, T_OBJECT_TYPE, "2", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_BOOLEAN, 0, "yes", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_LONG_INTEGER, 0, "9223372036854775808", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_BIG_INTEGER, 0, "123", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_BYTE_STRING, 0, "0g", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_BYTE_STRING, 0, "abc", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_DATE_TIME, 0, "2008-13-14T11:56:40Z", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_DATE_TIME, 0, "2008-03-14 11:56:40Z", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_DATE_TIME, 0, "2008-03-14T11:56:40+1000", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_DATE_TIME, 0, "$NOW", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_INTERVAL, 0, "-1", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_INTERVAL, 0, "4294967296", KG_ERR_TTLV_BAD_VALUE },
        { KG_TTLV_STRUCTURE, 0, "1", KG_ERR_TTLV_BAD_TYPE },
        { 0x0C, 0, "1", KG_ERR_TTLV_BAD_TYPE },
    };
    uint8_t want[64];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n = t_unhex(good[i].hex, want, sizeof(want));

        t_writer();
        EXPECT_OK(kg_xml_write_leaf(&t_w, 0x420020, good[i].type, good[i].ctx, good[i].value));
        CU_ASSERT_EQUAL(t_w.len, n);
        CU_ASSERT_TRUE(t_w.len == n && memcmp(t_w.buf, want, n) == 0);
        kg_ttlv_writer_cleanup(&t_w);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t_writer();
        EXPECT_ERR(kg_xml_write_leaf(&t_w, 0x420020, bad[i].type, bad[i].ctx, bad[i].value), bad[i].code);
        CU_ASSERT_EQUAL(t_w.len, 0u);
        kg_ttlv_writer_cleanup(&t_w);
    }
}

static void test_leaf_text(void)
{
    static const struct {
        const char *hex;
        uint32_t ctx;
        const char *text;
    } cases[] = {
        { "420057 05 00000004 0000002A 00000000", T_OBJECT_TYPE, "0x0000002a" }, /* no name: hex */
        { "420057 05 00000004 00000002 00000000", T_OBJECT_TYPE, "SymmetricKey" },
        { "42002C 02 00000004 8000000C 00000000", T_USAGE_MASK, "Encrypt Decrypt 0x80000000" },
        { "42002C 02 00000004 00000000 00000000", T_USAGE_MASK, "0" },
        { "420020 09 00000008 0000000047DA67F8", 0, "2008-03-14T11:56:40Z" },
        { "420020 08 00000000", 0, "" },
    };
    uint8_t buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = t_unhex(cases[i].hex, buf, sizeof(buf));
        struct kg_ttlv_budget b;
        struct kg_ttlv_reader r;
        struct kg_ttlv_item it;
        char *text = NULL;

        kg_ttlv_budget_init(&b, NULL);
        EXPECT_OK(kg_ttlv_reader_init(&r, buf, (uint32_t)n, &b));
        EXPECT_OK(kg_ttlv_read(&r, &it));
        EXPECT_OK(kg_xml_leaf_text(&it, cases[i].ctx, &text));
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_STRING_EQUAL(text, cases[i].text);
        free(text);
    }
}

/* ---- documents ---- */

static void test_spec_examples_round_trip(void)
{
    char path[1024];
    char line[512];
    FILE *f;
    int count = 0;

    snprintf(path, sizeof(path), "%s/kmip-vectors/ttlv-spec-examples/kmip-spec-v1.4-sec9.1.2-ttlv-examples.hex",
             kg_test_shared_dir());
    f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tab = strchr(line, '\t');
        uint8_t bytes[128];
        size_t n;
        char *xml = NULL;
        size_t xml_len = 0;

        if (line[0] == '#' || tab == NULL) {
            continue;
        }
        tab[strcspn(tab, "\r\n")] = '\0';
        n = t_unhex(tab + 1, bytes, sizeof(bytes));
        EXPECT_OK(kg_xml_from_ttlv(bytes, (uint32_t)n, &xml, &xml_len));
        CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
        CU_ASSERT_EQUAL(strlen(xml), xml_len);
        t_writer();
        EXPECT_OK(kg_xml_to_ttlv(xml, xml_len, &t_w));
        CU_ASSERT_TRUE(t_w.len == n && memcmp(t_w.buf, bytes, n) == 0);
        kg_ttlv_writer_cleanup(&t_w);
        free(xml);
        count++;
    }
    fclose(f);
    CU_ASSERT_EQUAL(count, 10);
}

struct t_vector_stats {
    int files;
    int messages;
    int round_trips;
};

/* Every message element of one vector file: encode; if it encodes, decode
 * and encode again and require the same bytes. Only placeholders may fail. */
static void t_vector_file(const char *path, struct t_vector_stats *st)
{
    xmlDoc *doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    st->files++;
    for (xmlNode *n = xmlDocGetRootElement(doc)->children; n != NULL; n = n->next) {
        struct kg_ttlv_writer again;
        char *xml = NULL;
        size_t xml_len = 0;

        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        st->messages++;
        t_writer();
        kg_error_clear();
        if (kg_failed(kg_xml_node_to_ttlv(n, &t_w))) {
            /* A $NOW or $UNIQUE_IDENTIFIER_n where a typed value belongs. */
            CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "\"$"));
            if (strstr(kg_error_text(), "\"$") == NULL) {
                fprintf(stderr, "\n  %s: %s\n", path, kg_error_text());
            }
            CU_ASSERT_EQUAL(t_w.len, 0u);
            kg_ttlv_writer_cleanup(&t_w);
            continue;
        }
        EXPECT_OK(kg_xml_from_ttlv(t_w.buf, t_w.len, &xml, &xml_len));
        EXPECT_OK(kg_ttlv_writer_init(&again, 1u << 20, false));
        EXPECT_OK(kg_xml_to_ttlv(xml, xml_len, &again));
        CU_ASSERT_TRUE(again.len == t_w.len && memcmp(again.buf, t_w.buf, t_w.len) == 0);
        if (again.len == t_w.len && memcmp(again.buf, t_w.buf, t_w.len) == 0) {
            st->round_trips++;
        }
        kg_ttlv_writer_cleanup(&again);
        kg_ttlv_writer_cleanup(&t_w);
        free(xml);
    }
    xmlFreeDoc(doc);
}

static void t_vector_dir(const char *dir, struct t_vector_stats *st)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((e = readdir(d)) != NULL) {
        char path[2048];
        struct stat sb;
        size_t n = strlen(e->d_name);

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0) {
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            t_vector_dir(path, st);
        } else if (n > 4 && strcmp(e->d_name + n - 4, ".xml") == 0) {
            t_vector_file(path, st);
        }
    }
    closedir(d);
}

static void test_vectors_round_trip(void)
{
    struct t_vector_stats st = { 0 };
    char dir[1024];

    snprintf(dir, sizeof(dir), "%s/kmip-vectors/oasis", kg_test_shared_dir());
    t_vector_dir(dir, &st);
    snprintf(dir, sizeof(dir), "%s/kmip-vectors/oasis-tc-1.x", kg_test_shared_dir());
    t_vector_dir(dir, &st);
    fprintf(stderr, "\n  vectors: %d files, %d messages, %d round trips\n", st.files, st.messages, st.round_trips);
    CU_ASSERT(st.files >= 300);
    /* Most messages carry no placeholder in a typed value. */
    CU_ASSERT(st.round_trips * 2 > st.messages);
}

static void test_bad_documents(void)
{
    static const struct {
        const char *xml;
        int code;
    } cases[] = {
        { "<RequestMessage>", KG_ERR_TTLV_BAD_VALUE },                          /* not well-formed */
        { "<Nope type=\"Integer\" value=\"1\"/>", KG_ERR_TTLV_BAD_TAG },
        { "<TTLV type=\"Integer\" value=\"1\"/>", KG_ERR_TTLV_BAD_TAG },          /* no tag= */
        { "<TTLV tag=\"0x990001\" type=\"Integer\" value=\"1\"/>", KG_ERR_TTLV_BAD_TAG },
        { "<BatchCount type=\"Float\" value=\"1\"/>", KG_ERR_TTLV_BAD_TYPE },
        { "<BatchCount type=\"Integer\" value=\"1\"><BatchCount type=\"Integer\" value=\"1\"/></BatchCount>",
          KG_ERR_TTLV_BAD_TYPE },                                                /* a leaf with children */
        { "<BatchCount type=\"Integer\"/>", KG_ERR_TTLV_BAD_VALUE },            /* no value */
        /* External entities are never loaded (and not allowed in a value). */
        { "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/hostname\">]><BatchCount type=\"Integer\" value=\"&e;\"/>",
          KG_ERR_TTLV_BAD_VALUE },
    };
    char deep[64 * 40];
    size_t o = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_writer();
        EXPECT_ERR(kg_xml_to_ttlv(cases[i].xml, strlen(cases[i].xml), &t_w), cases[i].code);
        CU_ASSERT_EQUAL(t_w.len, 0u);
        CU_ASSERT_EQUAL(t_w.depth, 0u);
        kg_ttlv_writer_cleanup(&t_w);
    }
    /* Nesting past the writer's KG_TTLV_MAX_DEPTH. */
    for (int i = 0; i < KG_TTLV_MAX_DEPTH + 1; i++) {
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "<Attribute>");
    }
    for (int i = 0; i < KG_TTLV_MAX_DEPTH + 1; i++) {
        o += (size_t)snprintf(deep + o, sizeof(deep) - o, "</Attribute>");
    }
    t_writer();
    EXPECT_ERR(kg_xml_to_ttlv(deep, o, &t_w), KG_ERR_TTLV_TOO_DEEP);
    CU_ASSERT_EQUAL(t_w.len, 0u);
    /* Over the input cap: refused before anything is read. */
    EXPECT_ERR(kg_xml_to_ttlv(deep, (size_t)KG_XML_MAX_INPUT + 1, &t_w), KG_ERR_TTLV_TOO_LONG);
    kg_ttlv_writer_cleanup(&t_w);
    /* A writer too small: all or nothing. */
    EXPECT_OK(kg_ttlv_writer_init(&t_w, 16, false));
    EXPECT_ERR(kg_xml_to_ttlv("<ProtocolVersion><ProtocolVersionMajor type=\"Integer\" value=\"1\"/>"
                              "<ProtocolVersionMinor type=\"Integer\" value=\"4\"/></ProtocolVersion>",
                              strlen("<ProtocolVersion><ProtocolVersionMajor type=\"Integer\" value=\"1\"/>"
                                     "<ProtocolVersionMinor type=\"Integer\" value=\"4\"/></ProtocolVersion>"),
                              &t_w),
               KG_ERR_WRITER_FULL);
    CU_ASSERT_EQUAL(t_w.len, 0u);
    kg_ttlv_writer_cleanup(&t_w);
}

static void test_bad_ttlv(void)
{
    uint8_t buf[64] = { 0 };
    size_t n = t_unhex("42002001000000204200040500000004000000FE000000004200050200000004000000FF00000000",
                       buf, sizeof(buf));
    char *xml = (char *)1;
    size_t len = 7;
    xmlNode *node = (xmlNode *)1;

    EXPECT_ERR(kg_xml_from_ttlv(buf, (uint32_t)n - 8, &xml, &len), KG_ERR_TTLV_TRUNCATED);
    CU_ASSERT_PTR_NULL(xml);
    CU_ASSERT_EQUAL(len, 0u);
    /* Eight zero bytes after the item. */
    EXPECT_ERR(kg_xml_from_ttlv_node(buf, (uint32_t)n + 8, &node), KG_ERR_TTLV_TRAILING);
    CU_ASSERT_PTR_NULL(node);
    buf[0] = 0x99; /* not 0x42/0x54 */
    EXPECT_ERR(kg_xml_from_ttlv(buf, (uint32_t)n, &xml, &len), KG_ERR_TTLV_BAD_TAG);
    buf[0] = 0x54; /* an extension tag with no name: the generic form */
    EXPECT_OK(kg_xml_from_ttlv(buf, (uint32_t)n, &xml, &len));
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "<TTLV tag=\"0x540020\">"));
    free(xml);
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_normalize),
        KG_TEST(test_tags),
        KG_TEST(test_enum_table),
        KG_TEST(test_integer_and_masks),
        KG_TEST(test_other_types),
        KG_TEST(test_leaf_text),
        KG_TEST(test_spec_examples_round_trip),
        KG_TEST(test_vectors_round_trip),
        KG_TEST(test_bad_documents),
        KG_TEST(test_bad_ttlv),
    };
    int failed = kg_test_run("xml", cases, sizeof(cases) / sizeof(cases[0]));

    xmlCleanupParser();
    return failed;
}
