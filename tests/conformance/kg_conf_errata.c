/* kg_conf_errata.c - corrections to defects in the OASIS vectors (kg_conf_errata.h). */
#include "kg_conf_errata.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kg_conf_errata_load(const char *file, struct kg_conf_errata *e)
{
    char line[1024];
    unsigned lineno = 0;
    FILE *f = fopen(file, "r");
    int rc = 0;

    memset(e, 0, sizeof(*e));
    if (f == NULL) {
        fprintf(stderr, "kg-conformance: %s: %s\n", file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        struct kg_conf_erratum *x = &e->items[e->count];
        char reason[2];
        int n;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#') {
            continue;
        }
        /* Every field bounded by its buffer; a reason is required. */
        n = sscanf(line, "%511s %u %255s %127s %1s", x->path, &x->response, x->where, x->value, reason);
        if (n != 5 || e->count == KG_CONF_MAX_ERRATA) {
            fprintf(stderr, "kg-conformance: %s:%u: want \"<path> <response> <element> <value> <reason>\"%s\n",
                    file, lineno, e->count == KG_CONF_MAX_ERRATA ? " (too many lines)" : "");
            rc = -1;
            continue;
        }
        e->count++;
    }
    fclose(f);
    return rc;
}

/* The `k`th child element of `parent` named `name` (k counts from 0). */
static xmlNode *kg_conf_child(xmlNode *parent, const char *name, unsigned k)
{
    for (xmlNode *n = parent->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0 && k-- == 0) {
            return n;
        }
    }
    return NULL;
}

/* Follow "A[i]/B[j]/C" from `node`; NULL when a step is missing. */
static xmlNode *kg_conf_follow(xmlNode *node, const char *where)
{
    char step[128];

    while (node != NULL && *where != '\0') {
        size_t len = strcspn(where, "/");
        unsigned k = 0;
        char *bracket;

        if (len == 0 || len >= sizeof(step)) {
            return NULL;
        }
        memcpy(step, where, len);
        step[len] = '\0';
        where += len + (where[len] == '/');
        bracket = strchr(step, '[');
        if (bracket != NULL) {
            k = (unsigned)strtoul(bracket + 1, NULL, 10);
            *bracket = '\0';
        }
        node = kg_conf_child(node, step, k);
    }
    return node;
}

bool kg_conf_errata_apply(const struct kg_conf_errata *e, const char *rel, unsigned index, xmlNode *response,
                          const char **why)
{
    for (size_t i = 0; i < e->count; i++) {
        const struct kg_conf_erratum *x = &e->items[i];
        xmlNode *target;
        xmlChar *old;
        bool same;

        if (x->response != index || strcmp(x->path, rel) != 0) {
            continue;
        }
        target = kg_conf_follow(response, x->where);
        if (target == NULL) {
            *why = "an erratum names an element the vector does not have";
            return false;
        }
        old = xmlGetProp(target, BAD_CAST "value");
        same = old != NULL && strcmp((const char *)old, x->value) == 0;
        xmlFree(old);
        if (same || xmlSetProp(target, BAD_CAST "value", BAD_CAST x->value) == NULL) {
            *why = same ? "an erratum corrects a value the vector already has: remove it" : "out of memory";
            return false;
        }
    }
    return true;
}
