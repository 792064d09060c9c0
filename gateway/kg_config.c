/* kg_config.c - not yet written. */
typedef int kg_unused_kg_config;
