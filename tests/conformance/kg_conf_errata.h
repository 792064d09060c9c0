/*
 * kg_conf_errata.h - corrections to defects in the OASIS vectors.
 *
 * A few vectors contradict themselves: TC_94_10 sets a Protect Stop Date of
 * 2070 in its Re-key and expects to read back 2020 (the request was moved
 * past 2020 when that year came, its expected response was not). Such an
 * expected value is corrected by a line of the errata file, which names the
 * vector, the response (0-based), the element (the path kg-conformance
 * reports in a mismatch) and the value the vector's own request implies:
 *
 *   <path> <response> <element path> <value>  <reason>
 *
 * The rest of the case is checked as written. An erratum that no longer
 * applies (no such element, or the vector already says that value) fails
 * its case, so a fixed vector cannot hide behind an old correction.
 */
#ifndef KG_CONF_ERRATA_H
#define KG_CONF_ERRATA_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#define KG_CONF_MAX_ERRATA 32u

struct kg_conf_erratum {
    char path[512];  /* vector file, relative to the vectors root */
    unsigned response;
    char where[256]; /* "BatchItem[0]/ResponsePayload[0]/Attribute[2]/AttributeValue" */
    char value[128];
};

struct kg_conf_errata {
    struct kg_conf_erratum items[KG_CONF_MAX_ERRATA];
    size_t count;
};

/* Read `file` into *e; 0, or -1 with the reason on stderr. */
int kg_conf_errata_load(const char *file, struct kg_conf_errata *e);

/*
 * Apply the errata of (rel, response index) to `response` (the expected
 * ResponseMessage, modified in place). False, with *why set, when one does
 * not apply.
 */
bool kg_conf_errata_apply(const struct kg_conf_errata *e, const char *rel, unsigned index, xmlNode *response,
                          const char **why);

#endif
