/* kg_p11_error.c - not yet written. */
typedef int kg_unused_kg_p11_error;
