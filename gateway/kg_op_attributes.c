/* kg_op_attributes.c - not yet written. */
typedef int kg_unused_kg_op_attributes;
