/*
 * kg_fuzz_walk.h - read every item of a TTLV reader the way a decoder
 * would, and check what the reader promises (kg_ttlv.h) on the way.
 */
#ifndef KG_FUZZ_WALK_H
#define KG_FUZZ_WALK_H

#include "kg_ttlv.h"

/*
 * Walk `r` to its end, recursing into every Structure through
 * kg_ttlv_child. Every item is checked against the reader's contract (it
 * lies inside its reader's bytes, a failed read consumes nothing, exactly
 * the typed getter of its type succeeds) and, when `w` is not NULL,
 * re-encoded into `w` with the typed getters and writers, so that the caller
 * can compare the output with the input: the encoding the reader accepts is
 * canonical (fixed lengths, zero padding, Boolean 0 or 1), so the two must be
 * equal byte for byte.
 *
 * Returns the first error of the reader or of `w`; a broken promise aborts.
 */
kg_result kg_fuzz_walk(struct kg_ttlv_reader *r, struct kg_ttlv_writer *w) KG_WARN_UNUSED;

#endif
