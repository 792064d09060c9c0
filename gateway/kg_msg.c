/* kg_msg.c - not yet written. */
typedef int kg_unused_kg_msg;
