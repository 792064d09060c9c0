/* kg_cli.h - the kmipgw command line. */
#ifndef KG_CLI_H
#define KG_CLI_H

#include <stdbool.h>

/* Run the command in argv; returns the process exit status (0 ok, 1
 * failure, 2 usage error). */
int kg_cli_main(int argc, char **argv);

/*
 * Seal every stored blob that has no binding tag yet (kg_cli_seal.c; run by
 * kmipgw init): batches of tags made in the HSM, each batch one durable
 * transaction. *sealed gets how many rows were sealed. Idempotent. The
 * caller owns p11 and store.
 */
struct kg_p11;
struct kg_store;
#include <stdint.h>
#include "kg_result.h"
kg_result kg_cli_seal_store(struct kg_p11 *p11, struct kg_store *store, uint64_t *sealed) KG_WARN_UNUSED;

/* kmipgw policy explain ARGS... (argv[0] is "explain"). */
int kg_cli_policy_explain(int argc, char **argv);

/* kmipgw audit verify ARGS... (argv[0] is "verify"). */
int kg_cli_audit_verify(int argc, char **argv);

/* kmipgw keys report ARGS... (argv[0] is "keys"; kg_cli_keys.c). */
int kg_cli_keys(int argc, char **argv);

/* kmipgw rotate-master ARGS... (argv[0] is "rotate-master"). */
int kg_cli_rotate_master(int argc, char **argv);

/* Shared by the commands that open the HSM (kg_cli.c). Load the config at
 * `config_path` and open the token; the caller owns *cfg and *p11 (free
 * with kg_config_free / kg_p11_close, also on failure) and the PIN never
 * outlives the login. Returns 0, or 1 after printing the error. */
struct kg_config;
struct kg_p11;
int kg_cli_open_hsm(const char *config_path, bool require_mwk, struct kg_config **cfg, struct kg_p11 **p11);

/* kmipgw backup | restore ARGS... (argv[0] is "backup" or "restore"). */
int kg_cli_backup(int argc, char **argv);
/* kmipgw pki sign-csr | server-cert ARGS... (argv[0] is "pki"; kg_cli_pki.c). */
int kg_cli_pki(int argc, char **argv);

/* An option that takes a value: its name ("--config") and the offset of
 * its `const char *` field in the command's options struct. */
#include <stddef.h>
struct kg_cli_option {
    const char *name;
    size_t offset;
};

/* The field of `opts` that `table` (count entries) names for option `arg`,
 * or NULL when the table has no such option (kg_cli.c). */
const char **kg_cli_option_slot(const struct kg_cli_option *table, size_t count, void *opts, const char *arg);

/* "kmipgw: <what>: <the current error's text or name>" on stderr (kg_cli.c). */
void kg_cli_error(const char *what);

/* Every error of a policy file as "path:line:column: message" on stderr (kg_cli.c). */
struct kg_policy_errors;
void kg_cli_print_policy_errors(const char *path, const struct kg_policy_errors *errors);

/* kmipgw ttlv to-xml | to-hex (argv[0] is "ttlv"); exit 2 on bad input. */
int kg_cli_ttlv(int argc, char **argv);

#endif
