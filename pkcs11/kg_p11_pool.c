/* kg_p11_pool.c - not yet written. */
typedef int kg_unused_kg_p11_pool;
