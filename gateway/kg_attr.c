/* kg_attr.c - not yet written. */
typedef int kg_unused_kg_attr;
