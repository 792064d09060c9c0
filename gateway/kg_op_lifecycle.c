/* kg_op_lifecycle.c - not yet written. */
typedef int kg_unused_kg_op_lifecycle;
