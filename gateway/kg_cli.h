/* kg_cli.h - the kmipgw command line. */
#ifndef KG_CLI_H
#define KG_CLI_H

/* Run the command in argv; returns the process exit status (0 ok, 1
 * failure, 2 usage error). */
int kg_cli_main(int argc, char **argv);

/* kmipgw policy explain ARGS... (argv[0] is "explain"). */
int kg_cli_policy_explain(int argc, char **argv);

/* kmipgw audit verify ARGS... (argv[0] is "verify"). */
int kg_cli_audit_verify(int argc, char **argv);

#endif
