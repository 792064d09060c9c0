/* kg_op_get.c - not yet written. */
typedef int kg_unused_kg_op_get;
