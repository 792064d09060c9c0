/*
 * kg_locate_match.h - how Locate compares one stored attribute value with
 * the value a request gives (KMIP 1.4 section 4.9), for the SQL functions
 * the store registers on each connection (kg_store.c).
 *
 * Both sides are encoded Attribute Value items as the store keeps them
 * (kg_store.h): header, value, padding. These functions are pure: they read
 * only the bytes they are given, never past `len`, allocate nothing and
 * treat anything that is not a well-formed item as "no match".
 */
#ifndef KG_LOCATE_MATCH_H
#define KG_LOCATE_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Structure match (4.9: "all of the structure fields are not REQUIRED to be
 * specified"): true when `want` is a Structure and `stored` a Structure of
 * the same tag holding, for every field of `want`, a field with exactly the
 * same encoding (a Link given only its Linked Object Identifier matches any
 * Link Type). A `want` that is not a Structure matches only identical bytes.
 * Fields are compared whole: a nested structure must be given in full.
 */
bool kg_locate_fields_match(const uint8_t *stored, size_t stored_len, const uint8_t *want, size_t want_len);

/*
 * The instant of an encoded Date-Time item into *out (seconds since the
 * epoch, signed); false, *out untouched, for anything else.
 */
bool kg_locate_date_of(const uint8_t *value, size_t len, int64_t *out);

#endif
