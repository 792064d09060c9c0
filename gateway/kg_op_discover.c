/* kg_op_discover.c - not yet written. */
typedef int kg_unused_kg_op_discover;
