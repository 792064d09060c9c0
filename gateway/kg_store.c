/* kg_store.c - not yet written. */
typedef int kg_unused_kg_store;
