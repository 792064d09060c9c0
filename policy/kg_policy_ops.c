/* kg_policy_ops.c - not yet written. */
typedef int kg_unused_kg_policy_ops;
