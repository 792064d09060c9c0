/* kg_policy_decide.c - not yet written. */
typedef int kg_unused_kg_policy_decide;
