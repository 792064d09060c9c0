/* kg_p11.c - not yet written. */
typedef int kg_unused_kg_p11;
