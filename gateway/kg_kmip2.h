/*
 * kg_kmip2.h - KMIP 2.0 and 2.1 payloads rewritten to and from the KMIP 1.4
 * forms every operation handler reads and writes.
 *
 * KMIP 2.0 replaced the 1.x Template-Attribute and its Attribute {Attribute
 * Name, Attribute Index, Attribute Value} with an Attributes structure of
 * items tagged by the attribute itself (Cryptographic Algorithm is the item
 * 0x420028), names attributes by Attribute Reference (that tag, as an
 * Enumeration), and carries custom attributes as Attribute {Vendor
 * Identification, Attribute Name, Attribute Value}. Everything else the
 * handlers read is laid out as in 1.4. So instead of a second set of
 * handlers, the dispatcher rewrites a 2.x request payload into the 1.4 form
 * before policy and the handler see it, and the handler's 1.4 answer back
 * into the 2.x form. Both rewrites are bounded by the request's own limits.
 */
#ifndef KG_KMIP2_H
#define KG_KMIP2_H

#include <stdint.h>

#include "kg_result.h"
#include "kg_ttlv.h"

/*
 * Rewrite the KMIP 2.x request payload read by `in` (its content: the items
 * inside Request Payload) of operation `operation` into the 1.4 form, as
 * payload content, appended to `out` (caller's writer):
 *   Attributes                    -> Template-Attribute (Locate: the bare
 *                                    Attribute items, as 1.4 Locate has them)
 *   Common/Private Key/Public Key
 *   Attributes                    -> the matching ... Template-Attribute
 *   New Attribute                 -> Attribute
 *   Attribute Reference           -> Attribute Name
 *   any other item                -> unchanged
 * A tagged attribute becomes Attribute {Attribute Name = the tag's name,
 * Attribute Value}; Attribute {Vendor Identification "x" or "y", Attribute
 * Name N, Attribute Value} becomes the custom attribute "x-N" or "y-N".
 * Errors: KG_ERR_BAD_ATTRIBUTE for a tag that names no attribute or another
 * vendor's attribute, KG_ERR_UNSUPPORTED_FEATURE for Current Attribute
 * (kmipgw changes the first instance only), and the reader's and writer's
 * own errors. Nothing secret passes here.
 */
kg_result kg_kmip2_request(uint32_t operation, struct kg_ttlv_reader *in, struct kg_ttlv_writer *out) KG_WARN_UNUSED;

/*
 * Rewrite the 1.4-form response payload content `payload` (`len` bytes, as
 * a handler wrote it) of `operation` into the 2.x form, appended to `out`:
 *   Attribute items               -> one Attributes structure of tagged items
 *                                    (Get Attributes answers one, empty if
 *                                    need be); dropped from the answers of
 *                                    Add, Modify and Delete Attribute, which
 *                                    2.x reduces to the Unique Identifier
 *   Attribute Name                -> Attribute Reference
 *   ... Template-Attribute        -> dropped (2.x answers no attributes)
 *   any other item                -> unchanged
 * Key material passes unchanged; `out` may be a locked writer.
 */
kg_result kg_kmip2_response(uint32_t operation, const uint8_t *payload, uint32_t len,
                            struct kg_ttlv_writer *out) KG_WARN_UNUSED;

#endif
