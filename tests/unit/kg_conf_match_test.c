/*
 * kg_conf_match_test.c - CUnit suite for kg-conformance's placeholder binding
 * and response matching: each leniency (placeholders, server-chosen values,
 * repeated siblings in any order) next to the mismatch it must still catch.
 */
#include "kg_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "kg_conf_match.h"
#include "kg_ttlv.h"
#include "kg_xml.h"

static xmlDoc *t_doc;

static xmlNode *t_parse(const char *xml)
{
    xmlFreeDoc(t_doc);
    t_doc = xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL, XML_PARSE_NONET);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t_doc);
    return xmlDocGetRootElement(t_doc);
}

/* Match `expected` against the TTLV encoding of `actual` (both XML). */
static bool t_match(const char *expected, const char *actual, struct kg_conf_bindings *b, bool server_keys,
                    char *why, size_t cap)
{
    struct kg_ttlv_writer w;
    bool ok;

    CU_ASSERT_FATAL(kg_ok(kg_ttlv_writer_init(&w, 1u << 16, false)));
    CU_ASSERT_FATAL(kg_ok(kg_xml_to_ttlv(actual, strlen(actual), &w)));
    why[0] = '\0';
    ok = kg_conf_match(t_parse(expected), w.buf, w.len, b, server_keys, why, cap);
    kg_ttlv_writer_cleanup(&w);
    return ok;
}

#define RESP(body) "<ResponseMessage><BatchItem>" body "</BatchItem></ResponseMessage>"
#define UID(v) "<UniqueIdentifier type=\"TextString\" value=\"" v "\"/>"
#define STATUS(v) "<ResultStatus type=\"Enumeration\" value=\"" v "\"/>"

static void test_values_and_status(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    char why[256];

    CU_ASSERT_TRUE(t_match(RESP(STATUS("Success")), RESP(STATUS("0x00000000")), b, false, why, sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP(STATUS("Success")), RESP(STATUS("OperationFailed")), b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResultStatus expected Success got OperationFailed");
    /* Wrong type, missing and extra items. */
    CU_ASSERT_FALSE(t_match(RESP(STATUS("Success")), RESP("<ResultStatus type=\"Integer\" value=\"0\"/>"), b,
                            false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResultStatus expected type Enumeration got Integer");
    CU_ASSERT_FALSE(t_match(RESP(STATUS("Success") UID("a")), RESP(STATUS("Success")), b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/UniqueIdentifier missing");
    CU_ASSERT_FALSE(t_match(RESP(STATUS("Success")), RESP(STATUS("Success") UID("a")), b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/UniqueIdentifier unexpected (not in the expected response)");
    kg_conf_bindings_free(b);
    free(b);
}

static void test_placeholders_bind(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    char why[256];
    xmlNode *req;
    xmlChar *v;

    CU_ASSERT_TRUE(t_match(RESP(UID("$UNIQUE_IDENTIFIER_0")), RESP(UID("uid-7")), b, false, why, sizeof(why)));
    CU_ASSERT_EQUAL(b->count, 1u);
    CU_ASSERT_STRING_EQUAL(b->items[0].name, "UNIQUE_IDENTIFIER_0");
    CU_ASSERT_STRING_EQUAL(b->items[0].value, "uid-7");
    /* A failed match keeps no binding it made. */
    CU_ASSERT_FALSE(t_match(RESP(UID("$UNIQUE_IDENTIFIER_1") STATUS("Success")),
                            RESP(UID("uid-8") STATUS("OperationFailed")), b, false, why, sizeof(why)));
    CU_ASSERT_EQUAL(b->count, 1u);

    req = t_parse("<RequestMessage><BatchItem>" UID("$UNIQUE_IDENTIFIER_0")
                  "<ActivationDate type=\"DateTime\" value=\"$NOW-3600\"/></BatchItem></RequestMessage>");
    CU_ASSERT_TRUE(kg_ok(kg_conf_bind_request(req, b, 7200)));
    v = xmlGetProp(req->children->children, BAD_CAST "value");
    CU_ASSERT_STRING_EQUAL((const char *)v, "uid-7");
    xmlFree(v);
    v = xmlGetProp(req->children->children->next, BAD_CAST "value");
    CU_ASSERT_STRING_EQUAL((const char *)v, "1970-01-01T01:00:00Z");
    xmlFree(v);
    /* An unbound placeholder is an error, not an empty value. */
    req = t_parse("<RequestMessage><BatchItem>" UID("$UNIQUE_IDENTIFIER_5") "</BatchItem></RequestMessage>");
    kg_error_clear();
    CU_ASSERT_TRUE(kg_failed(kg_conf_bind_request(req, b, 0)));
    CU_ASSERT_EQUAL(kg_errno(), KG_ERR_MISSING_FIELD);
    CU_ASSERT_PTR_NOT_NULL(strstr(kg_error_text(), "$UNIQUE_IDENTIFIER_5 is not bound"));
    kg_conf_bindings_free(b);
    CU_ASSERT_EQUAL(b->count, 0u);
    free(b);
}

#define ACV(v) "<AsynchronousCorrelationValue type=\"ByteString\" value=\"" v "\"/>"

/* TC_32, TC_101: each Operation Pending answer has a new value under the one
 * name, and the Poll after it must send that one; a UID stays bound. */
static void test_correlation_value_rebinds(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    char why[256];
    xmlNode *req;
    xmlChar *v;

    CU_ASSERT_TRUE(t_match(RESP(UID("$UNIQUE_IDENTIFIER_0") ACV("$ASYNCHRONOUS_CORRELATION_VALUE")),
                           RESP(UID("uid-1") ACV("0102")), b, false, why, sizeof(why)));
    CU_ASSERT_TRUE(t_match(RESP(UID("$UNIQUE_IDENTIFIER_0") ACV("$ASYNCHRONOUS_CORRELATION_VALUE")),
                           RESP(UID("uid-2") ACV("0304")), b, false, why, sizeof(why)));
    req = t_parse("<RequestMessage><BatchItem>" UID("$UNIQUE_IDENTIFIER_0") ACV("$ASYNCHRONOUS_CORRELATION_VALUE")
                  "</BatchItem></RequestMessage>");
    CU_ASSERT_TRUE(kg_ok(kg_conf_bind_request(req, b, 0)));
    v = xmlGetProp(req->children->children, BAD_CAST "value");
    CU_ASSERT_STRING_EQUAL((const char *)v, "uid-1");
    xmlFree(v);
    v = xmlGetProp(req->children->children->next, BAD_CAST "value");
    CU_ASSERT_STRING_EQUAL((const char *)v, "0304");
    xmlFree(v);
    kg_conf_bindings_free(b);
    free(b);
}

static void test_server_chosen(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    char why[256];

    /* Time stamps and identifiers are the server's: any value of the type. */
    CU_ASSERT_TRUE(t_match(RESP("<TimeStamp type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/>"),
                           RESP("<TimeStamp type=\"DateTime\" value=\"2030-01-01T00:00:00Z\"/>"), b, false, why,
                           sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<TimeStamp type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/>"),
                            RESP("<TimeStamp type=\"Integer\" value=\"1\"/>"), b, false, why, sizeof(why)));
    /* Key bytes: the server's only in a case where it generated keys. */
    CU_ASSERT_TRUE(t_match(RESP("<KeyMaterial type=\"ByteString\" value=\"0102\"/>"),
                           RESP("<KeyMaterial type=\"ByteString\" value=\"0304\"/>"), b, true, why, sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<KeyMaterial type=\"ByteString\" value=\"0102\"/>"),
                            RESP("<KeyMaterial type=\"ByteString\" value=\"0304\"/>"), b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/KeyMaterial expected 0102 got 0304");
    /* The same rule through an Attribute Value's name. */
    CU_ASSERT_TRUE(t_match(RESP("<Attribute><AttributeName type=\"TextString\" value=\"Initial Date\"/>"
                                "<AttributeValue type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/></Attribute>"),
                           RESP("<Attribute><AttributeName type=\"TextString\" value=\"Initial Date\"/>"
                                "<AttributeValue type=\"DateTime\" value=\"2031-01-01T00:00:00Z\"/></Attribute>"),
                           b, false, why, sizeof(why)));
    /* Activate records its own time; a date only a client sets must match. */
    CU_ASSERT_TRUE(t_match(RESP("<Attribute><AttributeName type=\"TextString\" value=\"Activation Date\"/>"
                                "<AttributeValue type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/></Attribute>"),
                           RESP("<Attribute><AttributeName type=\"TextString\" value=\"Activation Date\"/>"
                                "<AttributeValue type=\"DateTime\" value=\"2031-01-01T00:00:00Z\"/></Attribute>"),
                           b, false, why, sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<Attribute><AttributeName type=\"TextString\" value=\"Protect Stop Date\"/>"
                                 "<AttributeValue type=\"DateTime\" value=\"2012-04-27T08:12:24+00:00\"/></Attribute>"),
                            RESP("<Attribute><AttributeName type=\"TextString\" value=\"Protect Stop Date\"/>"
                                 "<AttributeValue type=\"DateTime\" value=\"2031-01-01T00:00:00Z\"/></Attribute>"),
                            b, false, why, sizeof(why)));
    /* The lease is the server's to grant. */
    CU_ASSERT_TRUE(t_match(RESP("<LeaseTime type=\"Interval\" value=\"3600\"/>"),
                           RESP("<LeaseTime type=\"Interval\" value=\"0\"/>"), b, false, why, sizeof(why)));
    /* The server's RNG description: any structure; another structure must match. */
    CU_ASSERT_TRUE(t_match(RESP("<Attribute><AttributeName type=\"TextString\" value=\"Random Number Generator\"/>"
                                "<AttributeValue><RNGAlgorithm type=\"Enumeration\" value=\"ANSIX9_31\"/>"
                                "<CryptographicAlgorithm type=\"Enumeration\" value=\"DES3\"/>"
                                "</AttributeValue></Attribute>"),
                           RESP("<Attribute><AttributeName type=\"TextString\" value=\"Random Number Generator\"/>"
                                "<AttributeValue><RNGAlgorithm type=\"Enumeration\" value=\"Unspecified\"/>"
                                "</AttributeValue></Attribute>"),
                           b, false, why, sizeof(why)));
    CU_ASSERT_TRUE(t_match(RESP("<RandomNumberGenerator><RNGAlgorithm type=\"Enumeration\" value=\"ANSIX9_31\"/>"
                                "</RandomNumberGenerator>"),
                           RESP("<RandomNumberGenerator><RNGAlgorithm type=\"Enumeration\" value=\"Unspecified\"/>"
                                "</RandomNumberGenerator>"),
                           b, false, why, sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<Attribute><AttributeName type=\"TextString\" value=\"Cryptographic Parameters\"/>"
                                 "<AttributeValue><BlockCipherMode type=\"Enumeration\" value=\"CBC\"/>"
                                 "</AttributeValue></Attribute>"),
                            RESP("<Attribute><AttributeName type=\"TextString\" value=\"Cryptographic Parameters\"/>"
                                 "<AttributeValue><BlockCipherMode type=\"Enumeration\" value=\"ECB\"/>"
                                 "</AttributeValue></Attribute>"),
                            b, false, why, sizeof(why)));
    kg_conf_bindings_free(b);
    free(b);
}

static void test_repeated_siblings(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    char why[256];

    CU_ASSERT_TRUE(t_match(RESP("<Operation type=\"Enumeration\" value=\"Create\"/>"
                                "<Operation type=\"Enumeration\" value=\"Get\"/>"),
                           RESP("<Operation type=\"Enumeration\" value=\"Get\"/>"
                                "<Operation type=\"Enumeration\" value=\"Create\"/>"),
                           b, false, why, sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<Operation type=\"Enumeration\" value=\"Create\"/>"
                                 "<Operation type=\"Enumeration\" value=\"Get\"/>"),
                            RESP("<Operation type=\"Enumeration\" value=\"Get\"/>"
                                 "<Operation type=\"Enumeration\" value=\"Locate\"/>"),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/Operation expected Create got Get");
    /* Vector artifact: runs of spaces in an attribute name. */
    CU_ASSERT_TRUE(t_match(RESP("<AttributeName type=\"TextString\" value=\"Unique   Identifier\"/>"),
                           RESP("<AttributeName type=\"TextString\" value=\"Unique Identifier\"/>"), b, false, why,
                           sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<AttributeName type=\"TextString\" value=\"Unique   Identifier\"/>"),
                            RESP("<AttributeName type=\"TextString\" value=\"UniqueIdentifier\"/>"), b, false, why,
                            sizeof(why)));
    /* An attribute reference named twice counts once; other repeats do not. */
    CU_ASSERT_TRUE(t_match(RESP("<AttributeReference type=\"Enumeration\" value=\"State\"/>"
                                "<AttributeReference type=\"Enumeration\" value=\"State\"/>"),
                           RESP("<AttributeReference type=\"Enumeration\" value=\"State\"/>"), b, false, why,
                           sizeof(why)));
    CU_ASSERT_FALSE(t_match(RESP("<Operation type=\"Enumeration\" value=\"Get\"/>"
                                 "<Operation type=\"Enumeration\" value=\"Get\"/>"),
                            RESP("<Operation type=\"Enumeration\" value=\"Get\"/>"), b, false, why, sizeof(why)));
    kg_conf_bindings_free(b);
    free(b);
}

/* A Query batch item's answer: BatchItem { Operation, Result Status, payload }. */
#define QUERY_RESP(op, payload)                                                                        \
    "<ResponseMessage><BatchItem><Operation type=\"Enumeration\" value=\"" op "\"/>" STATUS("Success") \
    "<ResponsePayload>" payload "</ResponsePayload></BatchItem></ResponseMessage>"
#define OP(v) "<Operation type=\"Enumeration\" value=\"" v "\"/>"
#define OBJ(v) "<ObjectType type=\"Enumeration\" value=\"" v "\"/>"
#define VENDOR(v) "<VendorIdentification type=\"TextString\" value=\"" v "\"/>"
#define STREAMING(v) "<CapabilityInformation><StreamingCapability type=\"Boolean\" value=\"" v "\"/></CapabilityInformation>"

static void test_query_server_chosen(void)
{
    struct kg_conf_bindings *b = calloc(1, sizeof(*b));
    const char *expected = QUERY_RESP("Query", OP("Create") OP("Get") OBJ("SymmetricKey") VENDOR("SOME-VENDOR-NAME")
                                                   "<ServerInformation></ServerInformation>" STREAMING("false"));
    char why[256];

    /* The server's own lists, name and Server Information contents. */
    CU_ASSERT_TRUE(t_match(expected,
                           QUERY_RESP("Query", OP("Locate") OP("Query") OP("Get") OBJ("PublicKey") OBJ("SymmetricKey")
                                                   VENDOR("kmipgw")
                                                   "<ServerInformation><TTLV tag=\"0x540001\" type=\"TextString\" "
                                                   "value=\"x\"/></ServerInformation>" STREAMING("false")),
                           b, false, why, sizeof(why)));
    /* Still required: a list that is not empty, of the right type. */
    CU_ASSERT_FALSE(t_match(expected,
                            QUERY_RESP("Query", OBJ("SymmetricKey") VENDOR("kmipgw")
                                                    "<ServerInformation/>" STREAMING("false")),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/Operation missing");
    CU_ASSERT_FALSE(t_match(expected,
                            QUERY_RESP("Query", OP("Get") "<ObjectType type=\"Integer\" value=\"2\"/>" VENDOR("kmipgw")
                                                    "<ServerInformation/>" STREAMING("false")),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/ObjectType expected type Enumeration got Integer");
    CU_ASSERT_FALSE(t_match(expected, QUERY_RESP("Query", OP("Get") OBJ("SymmetricKey") "<ServerInformation/>" STREAMING("false")),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/VendorIdentification missing");
    CU_ASSERT_FALSE(t_match(expected, QUERY_RESP("Query", OP("Get") OBJ("SymmetricKey") VENDOR("kmipgw") STREAMING("false")),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/ServerInformation[0] missing");
    /* Everything else in a Query answer is compared as usual. */
    CU_ASSERT_FALSE(t_match(expected,
                            QUERY_RESP("Query", OP("Get") OBJ("SymmetricKey") VENDOR("kmipgw") "<ServerInformation/>"
                                                    STREAMING("true")),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/CapabilityInformation[0]/StreamingCapability "
                                "expected false got true");
    CU_ASSERT_FALSE(t_match(expected,
                            QUERY_RESP("Query", OP("Get") OBJ("SymmetricKey") VENDOR("kmipgw") "<ServerInformation/>"
                                                    STREAMING("false") "<ApplicationNamespace type=\"TextString\" value=\"a\"/>"),
                            b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/ApplicationNamespace unexpected (not in the "
                                "expected response)");
    /* Outside a Query payload the same fields are compared value by value. */
    CU_ASSERT_FALSE(t_match(QUERY_RESP("Get", OP("Create") VENDOR("SOME-VENDOR-NAME")),
                            QUERY_RESP("Get", OP("Create") VENDOR("kmipgw")), b, false, why, sizeof(why)));
    CU_ASSERT_STRING_EQUAL(why, "BatchItem[0]/ResponsePayload[0]/VendorIdentification expected SOME-VENDOR-NAME got kmipgw");
    CU_ASSERT_FALSE(t_match(QUERY_RESP("Get", OP("Create") OP("Get")), QUERY_RESP("Get", OP("Create") OP("Locate")), b,
                            false, why, sizeof(why)));
    kg_conf_bindings_free(b);
    free(b);
}

static void test_generating_ops(void)
{
    CU_ASSERT_TRUE(kg_conf_server_generates_keys(
        t_parse("<KMIP><RequestMessage><BatchItem><Operation type=\"Enumeration\" value=\"Create\"/></BatchItem>"
                "</RequestMessage></KMIP>")));
    CU_ASSERT_FALSE(kg_conf_server_generates_keys(
        t_parse("<KMIP><RequestMessage><BatchItem><Operation type=\"Enumeration\" value=\"Register\"/></BatchItem>"
                "</RequestMessage><ResponseMessage><BatchItem><Operation type=\"Enumeration\" value=\"Create\"/>"
                "</BatchItem></ResponseMessage></KMIP>")));
}

int main(void)
{
    static const struct kg_test_case cases[] = {
        KG_TEST(test_values_and_status),
        KG_TEST(test_placeholders_bind),
        KG_TEST(test_correlation_value_rebinds),
        KG_TEST(test_server_chosen),
        KG_TEST(test_repeated_siblings),
        KG_TEST(test_generating_ops),
        KG_TEST(test_query_server_chosen),
    };
    int failed = kg_test_run("conf_match", cases, sizeof(cases) / sizeof(cases[0]));

    xmlFreeDoc(t_doc);
    xmlCleanupParser();
    return failed;
}
