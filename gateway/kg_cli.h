/* kg_cli.h - the kmipgw command line. */
#ifndef KG_CLI_H
#define KG_CLI_H

/* Run the command in argv; returns the process exit status (0 ok, 1
 * failure, 2 usage error). */
int kg_cli_main(int argc, char **argv);

#endif
