/* kg_main.c - the kmipgw binary. Everything else lives in kg_core. */
#include "kg_cli.h"

int main(int argc, char **argv)
{
    return kg_cli_main(argc, argv);
}
