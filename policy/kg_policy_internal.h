/*
 * kg_policy_internal.h - what the files of policy/ share and nobody else
 * sees: the mutable state behind the policy object's one mutex, and helpers
 * the loader and the decision function both need.
 */
#ifndef KG_POLICY_INTERNAL_H
#define KG_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_policy.h"

/*
 * New state for a policy of `group_count` groups: mutex, an empty
 * credential cache with a fresh random HMAC key, full rate buckets.
 * NULL when out of memory or no randomness.
 */
struct kg_policy_state *kg_policy_state_new(size_t group_count);
/* Wipes the cache and its key. Accepts NULL. */
void kg_policy_state_free(struct kg_policy_state *state);

/*
 * Does (kind, username, password) match one of group `g`'s credentials
 * (kind: enum kg_policy_credential_kind; username: the Username or the
 * Device Serial Number)? Returns the credential matched, or NULL. Constant-time
 * comparisons; the password is copied only into a stack buffer that is
 * cleansed before return. A cache hit skips the hash (see kg_policy.h).
 */
const struct kg_policy_credential *kg_policy_credential_verify(const struct kg_policy *policy,
                                                              const struct kg_policy_group *g, uint32_t kind,
                                 const char *username, size_t username_len, const char *password,
                                 size_t password_len);

/*
 * Load-time check of a password_hash: a complete hash of a method libcrypt
 * supports and does not call legacy or too cheap. On false, `why` says what
 * is wrong in words for the policy checker.
 */
bool kg_policy_hash_check(const char *hash, const char **why);

/*
 * Parse a SHA-256 fingerprint: 64 hex digits in either case, optionally as
 * 32 pairs separated by ':' (what `openssl x509 -fingerprint -sha256`
 * prints). Returns false for anything else.
 */
bool kg_policy_parse_sha256(const char *text, size_t len, uint8_t out[32]);

#endif
