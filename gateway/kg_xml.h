/*
 * kg_xml.h - the XML encoding of TTLV (KMIP Additional Message Encodings 1.0
 * section 6.1), both ways, on libxml2.
 *
 * Each TTLV item is one element: named by the tag's normalised CamelCase
 * name (or <TTLV tag="0x54xxxx"> for a tag without a name), with a `type`
 * attribute (absent means Structure) and, for leaves, a `value` attribute.
 * Enumerations and the masks (Cryptographic Usage Mask, Storage Status Mask,
 * Protection Storage Mask) use the names of kg_kmip_enum_names.c; values
 * without a name are written as "0x0000000N" (section 6.1.6.7).
 *
 * Context: a 1.x Attribute Value takes the enumeration / mask names of the
 * tag its sibling Attribute Name names ("Cryptographic Algorithm" ->
 * CryptographicAlgorithm), and a 2.x Attribute Reference enumeration holds a
 * tag, written by its name. Both directions apply the same rule.
 *
 * Bounds: XML input is parsed without network access or entity expansion and
 * is capped at KG_XML_MAX_INPUT bytes; nesting is capped by the TTLV
 * writer's KG_TTLV_MAX_DEPTH; every number is range-checked. TTLV input is
 * read with the bounded kg_ttlv reader.
 *
 * Secrets: this is an operator and test tool. Key bytes in XML text are not
 * in locked memory; nothing in the serving path uses this file.
 */
#ifndef KG_XML_H
#define KG_XML_H

#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "kg_result.h"
#include "kg_ttlv.h"

#define KG_XML_MAX_INPUT (16u * 1024u * 1024u)
/* Longest CamelCase tag name kept in the name index. */
#define KG_XML_MAX_NAME 64u

/* Tag of a CamelCase name (or "0x42xxxx"/"0x54xxxx"); KG_ERR_TTLV_BAD_TAG if unknown. */
kg_result kg_xml_tag_from_name(const char *name, uint32_t *out) KG_WARN_UNUSED;

/* CamelCase name of a tag, or NULL if it has none. Static storage; do not free. */
const char *kg_xml_tag_name(uint32_t tag);

/*
 * Normalise a specification name to CamelCase (section 6.1.3): "Common
 * Template-Attribute" -> "CommonTemplateAttribute". Writes at most `cap`
 * bytes including the NUL; KG_ERR_WRITER_FULL if it does not fit.
 */
kg_result kg_xml_normalize(const char *text, char *out, size_t cap) KG_WARN_UNUSED;

/* TTLV type of a type name ("Integer"...); KG_ERR_TTLV_BAD_TYPE if unknown. */
kg_result kg_xml_type_from_name(const char *name, uint8_t *out) KG_WARN_UNUSED;
/* Name of a TTLV type, "Unknown" if none. Static storage. */
const char *kg_xml_type_name(uint8_t type);

/*
 * The tag whose enumeration / mask names apply to a leaf with `tag`: for an
 * Attribute Value, the tag its sibling Attribute Name `attr_name` names (NULL
 * or unknown: none, 0); otherwise `tag` itself.
 */
uint32_t kg_xml_context_tag(uint32_t tag, const char *attr_name);

/*
 * Encode one leaf: `value` (NUL-terminated text of the value attribute; NULL
 * means absent, allowed only for empty Text and Byte Strings) as TTLV type
 * `type` under `tag`, with names from `ctx_tag` (kg_xml_context_tag).
 * KG_ERR_TTLV_BAD_VALUE with a detail naming the value when it does not parse
 * or is out of range; writer errors as kg_ttlv_write_*. All or nothing.
 */
kg_result kg_xml_write_leaf(struct kg_ttlv_writer *w, uint32_t tag, uint8_t type, uint32_t ctx_tag,
                            const char *value) KG_WARN_UNUSED;

/*
 * The XML text of leaf `it`'s value with names from `ctx_tag`. *out is
 * malloc'ed, owned by the caller (free()); NULL on failure. Structures fail
 * with KG_ERR_TTLV_BAD_TYPE.
 */
kg_result kg_xml_leaf_text(const struct kg_ttlv_item *it, uint32_t ctx_tag, char **out) KG_WARN_UNUSED;

/*
 * Encode element `node` (and its element children) as one TTLV item into
 * `w`. Text, comment and processing-instruction children are ignored. On
 * failure the writer is rewound to where it was and the error detail names
 * the element and line.
 */
kg_result kg_xml_node_to_ttlv(const xmlNode *node, struct kg_ttlv_writer *w) KG_WARN_UNUSED;

/*
 * Parse XML text `xml` (len bytes, at most KG_XML_MAX_INPUT) whose root
 * element is one TTLV item and encode it into `w`.
 */
kg_result kg_xml_to_ttlv(const char *xml, size_t len, struct kg_ttlv_writer *w) KG_WARN_UNUSED;

/*
 * Decode one whole TTLV item (`len` bytes, limits as kg_ttlv_default_limits
 * but max_message_len = len) into a new element tree. *out is owned by the
 * caller (xmlFreeNode); NULL on failure. Trailing bytes are an error.
 */
kg_result kg_xml_from_ttlv_node(const uint8_t *ttlv, uint32_t len, xmlNode **out) KG_WARN_UNUSED;

/*
 * Decode one whole TTLV item to indented XML text. *out is malloc'ed and
 * NUL-terminated, owned by the caller (free()); *out_len excludes the NUL.
 */
kg_result kg_xml_from_ttlv(const uint8_t *ttlv, uint32_t len, char **out, size_t *out_len) KG_WARN_UNUSED;

#endif
