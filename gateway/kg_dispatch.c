/* kg_dispatch.c - not yet written. */
typedef int kg_unused_kg_dispatch;
