/*
 * kg_p11_uri.h - the PKCS#11 URIs (RFC 7512) that name the gateway's own TLS
 * key on its token: tls.key: "pkcs11:object=<label>[;id=<id>][;token=<label>]".
 *
 * Only what naming one private key on the already-open token needs is
 * accepted: `object` (required), `id` and `token`, each at most once, in any
 * order. Every other path attribute (type, manufacturer, serial, ...) and any
 * query (pin-value, pin-source, module-path, ...) is refused rather than
 * ignored: the gateway opens its module and logs in from hsm: alone, and a
 * URI that seemed to say otherwise must not be half-obeyed.
 *
 * Values are percent-decoded (RFC 7512 section 2.3; RFC 3986 section 2.1);
 * characters RFC 7512's pk11-pchar does not allow must be percent-encoded.
 * `id` takes either form: all "%xx" triplets (RFC 7512: id=%01%a2) or bare
 * hex digits (id=01a2, as softhsm2-util --id and pkcs11-tool take it). Note
 * that RFC 7512 alone would read "id=01" as the two bytes '0' '1'; a mix of
 * the two forms is refused as ambiguous.
 *
 * Pure: no I/O, no allocation; safe from any thread.
 */
#ifndef KG_P11_URI_H
#define KG_P11_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kg_result.h"

/* Longest URI read at all (bytes, without the NUL); longer is an error. */
#define KG_P11_URI_MAX 1024u
/* Longest decoded object label; CKA_LABEL has no limit of its own. */
#define KG_P11_URI_MAX_LABEL 255u
/* CK_TOKEN_INFO.label is 32 bytes (PKCS#11 v2.40 section 3.2). */
#define KG_P11_URI_MAX_TOKEN 32u
/* Longest decoded CKA_ID, bytes. */
#define KG_P11_URI_MAX_ID 64u

struct kg_p11_uri {
    char object[KG_P11_URI_MAX_LABEL + 1]; /* decoded, NUL-terminated, no NUL inside */
    char token[KG_P11_URI_MAX_TOKEN + 1];  /* "" unless has_token */
    bool has_token;
    uint8_t id[KG_P11_URI_MAX_ID];
    size_t id_len;                         /* 0: no id given */
};

/* True when `s` starts with the "pkcs11:" scheme (case-insensitive,
 * RFC 3986 section 3.1): tls.key is a URI, not a file name. NULL is false. */
bool kg_p11_uri_is(const char *s);

/*
 * Parse NUL-terminated `s` into the caller's `out` (zeroed first; holds no
 * secret, as a key's label and id are not secret). Reads at most
 * KG_P11_URI_MAX + 1 bytes of `s`.
 * Errors: KG_ERR_CONFIG with a kg_error_text() such as "pkcs11 URI:
 * attribute 'type' is not accepted (only object, id and token)". The text
 * never quotes an attribute's value, nor anything after a '?', so a PIN
 * written into the URI by mistake does not reach a log.
 */
kg_result kg_p11_uri_parse(const char *s, struct kg_p11_uri *out) KG_WARN_UNUSED;

#endif
