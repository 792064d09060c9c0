/* kg_ttlv.c - not yet written. */
typedef int kg_unused_kg_ttlv;
