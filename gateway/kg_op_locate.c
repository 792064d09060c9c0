/* kg_op_locate.c - not yet written. */
typedef int kg_unused_kg_op_locate;
