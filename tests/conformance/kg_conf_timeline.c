/* kg_conf_timeline.c - replay a vector's recorded pauses (kg_conf_timeline.h). */
#include "kg_conf_timeline.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define KG_CONF_PAUSE_MIN 10       /* seconds: shorter gaps are the reference server's speed */
#define KG_CONF_PAUSE_MAX 600      /* seconds: longer ones are artifacts (TC_161's clock) */
#define KG_CONF_SHIFT_WINDOW 86400 /* a date within a day of the recording is relative to it */

/* "YYYY-MM-DDTHH:MM:SS" with "Z" or "+hh:mm"/"-hh:mm": seconds since the epoch. */
static bool kg_conf_parse_time(const char *s, time_t *out)
{
    struct tm tm;
    int consumed = 0, oh = 0, om = 0;
    char sign = 0;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
        return false;
    }
    s += consumed;
    if (strcmp(s, "Z") != 0 && s[0] != '\0') {
        if (sscanf(s, "%c%2d:%2d", &sign, &oh, &om) != 3 || (sign != '+' && sign != '-')) {
            return false;
        }
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm) - (sign == '-' ? -1 : 1) * (time_t)(oh * 3600 + om * 60);
    return true;
}

/* The ResponseHeader TimeStamp of a ResponseMessage, if it is a date. */
static bool kg_conf_response_time(const xmlNode *resp, time_t *out)
{
    for (const xmlNode *h = resp->children; h != NULL; h = h->next) {
        if (h->type != XML_ELEMENT_NODE || strcmp((const char *)h->name, "ResponseHeader") != 0) {
            continue;
        }
        for (const xmlNode *f = h->children; f != NULL; f = f->next) {
            if (f->type == XML_ELEMENT_NODE && strcmp((const char *)f->name, "TimeStamp") == 0) {
                xmlChar *v = xmlGetProp(f, BAD_CAST "value");
                bool ok = kg_conf_parse_time((const char *)v, out);

                xmlFree(v);
                return ok;
            }
        }
    }
    return false;
}

void kg_conf_timeline_init(struct kg_conf_timeline *t, const xmlNode *root)
{
    time_t prev = 0, now = 0;
    bool have_prev = false;

    memset(t, 0, sizeof(*t));
    for (const xmlNode *n = root->children; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "ResponseMessage") != 0 ||
            !kg_conf_response_time(n, &now)) {
            continue;
        }
        if (!have_prev) {
            t->recorded0 = now;
        } else if (now - prev >= KG_CONF_PAUSE_MIN && now - prev <= KG_CONF_PAUSE_MAX) {
            t->timed = true;
        }
        prev = now;
        have_prev = true;
    }
}

bool kg_conf_timeline_wait(struct kg_conf_timeline *t, const xmlNode *resp)
{
    time_t recorded, due;
    bool slept = false;

    if (!t->timed) {
        return false;
    }
    if (t->started == 0) {
        t->started = time(NULL);
        return false;
    }
    if (!kg_conf_response_time(resp, &recorded) || recorded - t->recorded0 < KG_CONF_PAUSE_MIN ||
        recorded - t->recorded0 > 2 * KG_CONF_PAUSE_MAX) {
        return false;
    }
    due = t->started + (recorded - t->recorded0);
    while (time(NULL) < due) {
        sleep(1);
        slept = true;
    }
    return slept;
}

kg_result kg_conf_timeline_shift(const struct kg_conf_timeline *t, xmlNode *req)
{
    if (!t->timed || t->started == 0) {
        return KG_RESULT_OK;
    }
    for (xmlNode *n = req; n != NULL; n = n->next) {
        xmlChar *type, *v;
        time_t when;

        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        KG_GUARD(kg_conf_timeline_shift(t, n->children));
        type = xmlGetProp(n, BAD_CAST "type");
        v = xmlGetProp(n, BAD_CAST "value");
        if (type != NULL && v != NULL && strcmp((const char *)type, "DateTime") == 0 &&
            kg_conf_parse_time((const char *)v, &when) && when - t->recorded0 <= KG_CONF_SHIFT_WINDOW &&
            t->recorded0 - when <= KG_CONF_SHIFT_WINDOW) {
            char text[40];
            struct tm tm;
            time_t moved = when + (t->started - t->recorded0);

            if (gmtime_r(&moved, &tm) != NULL) {
                strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
                if (xmlSetProp(n, BAD_CAST "value", BAD_CAST text) == NULL) {
                    xmlFree(type);
                    xmlFree(v);
                    KG_BAIL(KG_ERR_NOMEM);
                }
            }
        }
        xmlFree(type);
        xmlFree(v);
    }
    return KG_RESULT_OK;
}
