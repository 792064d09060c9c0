/*
 * kg_secret.h - locked, never-dumped, always-wiped memory for PINs and
 * plaintext key bytes.
 *
 * A kg_secret owns its bytes. They live in pages that are mlock()ed (never
 * swapped) and madvise(MADV_DONTDUMP)ed (never in a core file), and
 * kg_secret_free() cleanses them with OPENSSL_cleanse before unlocking and
 * releasing. Nothing else in kmipgw may hold plaintext key material or a PIN
 * outside a kg_secret, except transiently on the stack, and such stack copies
 * must be cleansed before the function returns.
 *
 * kg_secret_alloc fails (KG_ERR_LOCK) rather than hand out unlocked memory:
 * a key server must fail closed.
 */
#ifndef KG_SECRET_H
#define KG_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "kg_result.h"

struct kg_secret {
    uint8_t *data; /* locked pages; owned */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes usable */
    size_t map_len;
};

/*
 * Allocate a secret of capacity `cap` (len 0). The caller owns *out and must
 * release it with kg_secret_free, which wipes it. *out is NULL on failure.
 */
kg_result kg_secret_alloc(size_t cap, struct kg_secret **out) KG_WARN_UNUSED;

/* Allocate and copy `len` bytes from `src`. Does not wipe `src`. */
kg_result kg_secret_from(const void *src, size_t len, struct kg_secret **out) KG_WARN_UNUSED;

/*
 * Read a PIN from the first line of `path` (trailing newline dropped), or,
 * when path is NULL, from environment variable `env`. The caller owns *out.
 * The read buffer is cleansed.
 */
kg_result kg_secret_read_pin(const char *path, const char *env, struct kg_secret **out) KG_WARN_UNUSED;

/*
 * Read the whole file at `path` (at most `max` bytes; a larger file is
 * KG_ERR_CONFIG) straight into a new secret, with no stdio buffer or heap
 * copy on the way: for private keys in files (the CA key of `kmipgw pki`).
 * The file must be a regular file that neither group nor others may read
 * or write (mode 0600 or 0400): checked on the open descriptor, so it is
 * the file that is read. A key readable by others is refused rather than
 * used: it is already exposed, and using it would hide that. The caller
 * owns *out (kg_secret_free wipes it); *out is NULL on failure and
 * kg_error_text() names the file and the problem.
 */
kg_result kg_secret_read_file(const char *path, size_t max, struct kg_secret **out) KG_WARN_UNUSED;

/* Wipe, unlock and free. Accepts NULL. */
void kg_secret_free(struct kg_secret *secret);

/* Make this process non-dumpable (no core files, no ptrace by peers). */
void kg_secret_process_harden(void);

#endif
