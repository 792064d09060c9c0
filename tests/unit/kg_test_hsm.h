/*
 * kg_test_hsm.h - one SoftHSMv2 token with an MWK for a unit test program,
 * made on first use in a private temporary directory and removed at exit.
 * Suites that need no HSM do not link this.
 */
#ifndef KG_TEST_HSM_H
#define KG_TEST_HSM_H

#include <stdbool.h>

#include "kg_p11.h"
#include "kg_p11_internal.h"

/*
 * The program's token (label `label`, user PIN "1234", MWK "<label>-mwk"),
 * opened and with its MWK created; the same kg_p11 on every call. NULL when
 * SoftHSM is not installed or the token could not be made (the reason is on
 * stderr): tests then pass with a message, as KG_TEST_HSM_OR_SKIP does.
 * The helper owns the kg_p11; kg_test_hsm_cleanup closes it.
 */
struct kg_p11 *kg_test_hsm(const char *label);

/* Close the token and remove its directory. Safe if never made. */
void kg_test_hsm_cleanup(void);

/* Session (CKA_TOKEN false) objects of class `cls` (KG_TEST_ANY_CLASS: any)
 * visible now, to prove that no operation leaves a key behind; -1 if the
 * count failed. */
#define KG_TEST_ANY_CLASS ((CK_OBJECT_CLASS)CK_UNAVAILABLE_INFORMATION)
long kg_test_session_objects(struct kg_p11 *p11, CK_OBJECT_CLASS cls);

#define KG_TEST_HSM_OR_SKIP(p11, label)                       \
    struct kg_p11 *p11 = kg_test_hsm(label);                  \
    do {                                                      \
        if (p11 == NULL) {                                    \
            CU_PASS("SoftHSMv2 not available: test skipped"); \
            return;                                           \
        }                                                     \
    } while (0)

#endif
