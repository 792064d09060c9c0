/*
 * kg_keys_report.h - the rows and summary of `kmipgw keys report`: every
 * object in the store with its vSphere tags, freshness and last use, and
 * the flags that point at orphans (keys vCenter made and never deletes).
 *
 * Built from the store's public API only (kg_store.h): kg_store_locate in
 * pages, oldest first, then kg_store_get_object and one kg_store_each_attr
 * pass per object. Never the key material: the blob is loaded with the row
 * and not looked at. Last use comes from the audit logs (kg_keys_audit.h).
 * Writing the rows out is kg_keys_format.h's job.
 */
#ifndef KG_KEYS_REPORT_H
#define KG_KEYS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_keys_audit.h"
#include "kg_result.h"
#include "kg_store.h"

/* The vSphere tags, in report column order (shared/VSPHERE.md). */
enum kg_keys_tag {
    KG_KEYS_TAG_COMPONENT,
    KG_KEYS_TAG_NAME,
    KG_KEYS_TAG_IDENTIFIER,
    KG_KEYS_TAG_COUNT,
};
extern const char *const kg_keys_tag_names[KG_KEYS_TAG_COUNT]; /* "x-Component", ... */

/* Objects read from the store per kg_store_locate call. */
#define KG_KEYS_PAGE 256u

struct kg_keys_row {
    char uid[KG_UID_LEN + 1];
    uint32_t object_type; /* enum kg_object_type */
    uint32_t algorithm;
    int32_t length;
    uint32_t state; /* enum kg_state */
    char group[KG_GROUP_MAX + 1];
    bool has_created; /* Initial Date, else Original Creation Date */
    int64_t created;
    /* Text String values, heap, NUL-terminated; "" when absent or not
     * text. The last instance when the attribute has several (a re-add). */
    char *tags[KG_KEYS_TAG_COUNT];
    bool has_fresh; /* the object has a Fresh attribute */
    bool fresh;     /* ... and it is True: never served by a Get */
    bool has_last_use;
    int64_t last_use;
    /* Flags. never_fetched and unused are for objects not destroyed: a
     * destroyed key holds nothing to clean up. */
    bool never_fetched; /* Fresh True; without Fresh: no use in the audit */
    bool unused;        /* last use, or else creation, unused_days or more ago */
    bool destroyed;     /* Destroyed or Destroyed Compromised */
    bool compromised;   /* Compromised or Destroyed Compromised */
};

struct kg_keys_report_opts {
    const char *group;    /* only objects this group owns; NULL = all */
    uint32_t unused_days; /* see `unused` */
    int64_t now;
};

/* One count of the summary (a state or an x-Component value). */
struct kg_keys_count {
    const char *name; /* borrowed from a row or static */
    size_t count;
};

struct kg_keys_report {
    struct kg_keys_row *rows; /* owned */
    size_t count, cap;
    /* Summary, filled by kg_keys_report_build. */
    size_t by_state[7];                 /* index: enum kg_state; 0 = any other value */
    struct kg_keys_count *components;   /* owned array; names borrowed from rows; "" = no tag */
    size_t component_count;
    size_t never_fetched, unused, destroyed, compromised;
};

/*
 * Fill `out` (caller storage, zeroed here) with every object of `store`
 * that `opts` selects, oldest first, with last uses from `uses` (may be
 * NULL: none known) and the summary. Objects created while it runs may or
 * may not be listed; none is listed twice. The caller releases `out` with
 * kg_keys_report_cleanup, also after a failure.
 * Errors: the store's (KG_ERR_STORE ...), KG_ERR_NOMEM.
 */
kg_result kg_keys_report_build(struct kg_store *store, const struct kg_keys_uses *uses,
                               const struct kg_keys_report_opts *opts, struct kg_keys_report *out) KG_WARN_UNUSED;

/* Free everything `r` owns and zero it. Accepts a zeroed report. */
void kg_keys_report_cleanup(struct kg_keys_report *r);

/* Set the four flags of `row` from its state, Fresh, dates and `opts`
 * (for tests and for kg_keys_report_build). */
void kg_keys_row_flag(struct kg_keys_row *row, const struct kg_keys_report_opts *opts);

#endif
