/* kg_cli_audit.c - kmipgw audit verify. Not yet written. */
#include <stdio.h>

#include "kg_cli.h"

int kg_cli_audit_verify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kmipgw: audit verify is not available yet\n");
    return 2;
}
