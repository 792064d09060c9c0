/* kg_cli.c - not yet written. */
typedef int kg_unused_kg_cli;
