/* kg_policy_load.c - not yet written. */
typedef int kg_unused_kg_policy_load;
