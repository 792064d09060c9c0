/* kg_op_create.c - not yet written. */
typedef int kg_unused_kg_op_create;
