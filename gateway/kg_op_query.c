/* kg_op_query.c - not yet written. */
typedef int kg_unused_kg_op_query;
