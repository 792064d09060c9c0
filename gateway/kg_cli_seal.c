/*
 * kg_cli_seal.c - the blob binding migration `kmipgw init` runs: give every
 * stored blob written before blob binding (schema v4) its tag.
 *
 * Batched and durable: each batch is sealed in the HSM first, then written
 * in one transaction with a compare-and-set per row (a Destroy or a
 * rotation in between keeps its change; that row is left to the next run).
 * Killed at any point, run it again: sealed rows are not listed again.
 * Serve refuses to start while any row is unsealed, so a gateway never
 * meets a mix it would have to trust blindly.
 */
#include "kg_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kg_ops.h"
#include "kg_p11.h"
#include "kg_store.h"

#define KG_SEAL_BATCH 100u

kg_result kg_cli_seal_store(struct kg_p11 *p11, struct kg_store *store, uint64_t *sealed)
{
    char after[KG_UID_LEN + 1] = "";
    struct kg_object *objs = NULL;
    uint32_t n = 0;
    bool in_tx = false;
    kg_result rc = KG_RESULT_OK;

    KG_ENSURE(p11 != NULL && store != NULL && sealed != NULL, KG_ERR_INTERNAL);
    *sealed = 0;
    objs = calloc(KG_SEAL_BATCH, sizeof(*objs));
    KG_ENSURE(objs != NULL, KG_ERR_NOMEM);
    for (;;) {
        KG_GOTO_GUARD(rc, kg_store_list_unsealed(store, after, objs, KG_SEAL_BATCH, &n));
        if (n == 0) {
            break;
        }
        /* HSM work before BEGIN: the gateway's writers never wait on it. */
        for (uint32_t i = 0; i < n; i++) {
            KG_GOTO_GUARD(rc, kg_op_seal(p11, &objs[i]));
        }
        KG_GOTO_GUARD(rc, kg_store_begin(store));
        in_tx = true;
        for (uint32_t i = 0; i < n; i++) {
            bool set = false;

            KG_GOTO_GUARD(rc, kg_store_set_blob_mac(store, objs[i].uid, &objs[i].blob, objs[i].blob_mac, &set));
            *sealed += set ? 1 : 0;
        }
        KG_GOTO_GUARD(rc, kg_store_commit(store));
        in_tx = false;
        memcpy(after, objs[n - 1].uid, sizeof(after));
    }
out:
    if (in_tx) {
        kg_store_rollback(store);
    }
    free(objs);
    return rc;
}
