/*
 * kg_fuzz.h - shared by the fuzz targets (tests/fuzz/kg_<target>_fuzz.c)
 * and the replay driver (kg_fuzz_replay.c).
 *
 * Each target file defines LLVMFuzzerTestOneInput and is linked either with
 * libFuzzer (clang, -Dfuzz=true) or with kg_fuzz_replay.c (any compiler),
 * which feeds it the committed corpus. Targets must be deterministic and
 * keep no state from one input to the next (s2n-tls tests/fuzz rules).
 */
#ifndef KG_FUZZ_H
#define KG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The libFuzzer entry point. Always returns 0; a finding crashes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A property the code under test promises does not hold. Crash, so that
 * libFuzzer saves the input: a wrong answer is a finding even when no
 * sanitizer sees a bad memory access.
 */
#define KG_FUZZ_CHECK(cond)                                                              \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#endif
