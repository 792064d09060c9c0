/*
 * kg_conf_timeline.h - replay a vector's recorded pauses.
 *
 * A few OASIS cases test what time does: a key whose Deactivation Date is
 * two minutes away is read as Active, then, two minutes later, as
 * Deactivated (TC_92_10, TC_92_11). Their responses' TimeStamps record the
 * pause. Such a "timed" case (one pause of 10 s to 10 min between two
 * responses) is replayed in time: each request waits until as long has
 * passed since the case began as the vector recorded, and a request that
 * waited is retried for a few seconds until its answer matches (the server's
 * clock and ours tick apart; the 1.1 case says "[REPEAT] until"). Dates the
 * 1.0 case wrote in its own day (2010) are moved to ours by the time since.
 * Untimed cases are sent as fast as the server answers, unchanged.
 */
#ifndef KG_CONF_TIMELINE_H
#define KG_CONF_TIMELINE_H

#include <stdbool.h>
#include <time.h>

#include <libxml/tree.h>

#include "kg_result.h"

struct kg_conf_timeline {
    bool timed;       /* the vector records a pause of 10 s to 10 min */
    time_t recorded0; /* its first response's TimeStamp */
    time_t started;   /* when this run sent its first request; 0 before */
};

/* Seconds a request that waited is retried for, one try a second. */
#define KG_CONF_RETRY_SECONDS 15

/* Read the TimeStamps of the case under `root` (a <KMIP> element). */
void kg_conf_timeline_init(struct kg_conf_timeline *t, const xmlNode *root);

/*
 * Before sending the request that `resp` (its expected ResponseMessage)
 * answers: in a timed case, sleep until the recorded offset of `resp` has
 * passed since the case began. True if it slept.
 */
bool kg_conf_timeline_wait(struct kg_conf_timeline *t, const xmlNode *resp);

/*
 * In a timed case, move every DateTime value of `req` (a copy the caller
 * owns) that lies within a day of the recording by the time since it. Other
 * cases and values are left as they are.
 */
kg_result kg_conf_timeline_shift(const struct kg_conf_timeline *t, xmlNode *req) KG_WARN_UNUSED;

#endif
