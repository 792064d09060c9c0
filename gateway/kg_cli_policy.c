/* kg_cli_policy.c - kmipgw policy explain. Not yet written. */
#include <stdio.h>

#include "kg_cli.h"

int kg_cli_policy_explain(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kmipgw: policy explain is not available yet\n");
    return 2;
}
