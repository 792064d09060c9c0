/* kg_kmip.c - not yet written. */
typedef int kg_unused_kg_kmip;
