/* kg_audit.c - not yet written. */
typedef int kg_unused_kg_audit;
