/* kg_tls.c - not yet written. */
typedef int kg_unused_kg_tls;
