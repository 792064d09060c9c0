/* kg_op_register.c - not yet written. */
typedef int kg_unused_kg_op_register;
