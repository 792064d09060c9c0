/*
 * kg_policy_names.c - KMIP Object Type, Cryptographic Algorithm and
 * Cryptographic Usage Mask names <-> codes, for policy files and explain.
 *
 * Spelled exactly as the specification's tables (KMIP 1.4 sections
 * 9.1.3.2.12, 9.1.3.2.13 and 9.1.3.3.1; the algorithms KMIP 2.1 adds up to
 * 0x35 and its Certificate Request object type), and matched
 * case-sensitively, for the same reason as operation names: a policy file
 * reads the same everywhere.
 */
#include <string.h>

#include "kg_policy.h"

static const char *const kg_policy_object_type_names[KG_POLICY_MAX_OBJECT_TYPE + 1] = {
    [0x01] = "Certificate",   [0x02] = "Symmetric Key", [0x03] = "Public Key",
    [0x04] = "Private Key",   [0x05] = "Split Key",     [0x06] = "Template",
    [0x07] = "Secret Data",   [0x08] = "Opaque Object", [0x09] = "PGP Key",
    [0x0A] = "Certificate Request",
};

#define KG_POLICY_ALGORITHM_LAST 0x35
static const char *const kg_policy_algorithm_names[KG_POLICY_ALGORITHM_LAST + 1] = {
    [0x01] = "DES",
    [0x02] = "3DES",
    [0x03] = "AES",
    [0x04] = "RSA",
    [0x05] = "DSA",
    [0x06] = "ECDSA",
    [0x07] = "HMAC-SHA1",
    [0x08] = "HMAC-SHA224",
    [0x09] = "HMAC-SHA256",
    [0x0A] = "HMAC-SHA384",
    [0x0B] = "HMAC-SHA512",
    [0x0C] = "HMAC-MD5",
    [0x0D] = "DH",
    [0x0E] = "ECDH",
    [0x0F] = "ECMQV",
    [0x10] = "Blowfish",
    [0x11] = "Camellia",
    [0x12] = "CAST5",
    [0x13] = "IDEA",
    [0x14] = "MARS",
    [0x15] = "RC2",
    [0x16] = "RC4",
    [0x17] = "RC5",
    [0x18] = "SKIPJACK",
    [0x19] = "Twofish",
    [0x1A] = "EC",
    [0x1B] = "One Time Pad",
    [0x1C] = "ChaCha20",
    [0x1D] = "Poly1305",
    [0x1E] = "ChaCha20Poly1305",
    [0x1F] = "SHA3-224",
    [0x20] = "SHA3-256",
    [0x21] = "SHA3-384",
    [0x22] = "SHA3-512",
    [0x23] = "HMAC-SHA3-224",
    [0x24] = "HMAC-SHA3-256",
    [0x25] = "HMAC-SHA3-384",
    [0x26] = "HMAC-SHA3-512",
    [0x27] = "SHAKE-128",
    [0x28] = "SHAKE-256",
    [0x29] = "ARIA",
    [0x2A] = "SEED",
    [0x2B] = "SM2",
    [0x2C] = "SM3",
    [0x2D] = "SM4",
    [0x2E] = "GOST R 34.10-2012",
    [0x2F] = "GOST R 34.11-2012",
    [0x30] = "GOST R 34.13-2015",
    [0x31] = "GOST 28147-89",
    [0x32] = "XMSS",
    [0x33] = "SPHINCS-256",
    [0x34] = "McEliece",
    [0x35] = "McEliece-6960119",
};

/* Index n names bit 1 << n. "Content Commitment" is the table's "Content
 * Commitment (Non Repudiation)" without the parenthesis. */
static const char *const kg_policy_usage_names[20] = {
    "Sign",
    "Verify",
    "Encrypt",
    "Decrypt",
    "Wrap Key",
    "Unwrap Key",
    "Export",
    "MAC Generate",
    "MAC Verify",
    "Derive Key",
    "Content Commitment",
    "Key Agreement",
    "Certificate Sign",
    "CRL Sign",
    "Generate Cryptogram",
    "Validate Cryptogram",
    "Translate Encrypt",
    "Translate Decrypt",
    "Translate Wrap",
    "Translate Unwrap",
};

static uint32_t kg_policy_table_code(const char *const *table, uint32_t count, const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (uint32_t i = 1; i < count; i++) {
        if (table[i] != NULL && strcmp(table[i], name) == 0) {
            return i;
        }
    }
    return 0;
}

const char *kg_policy_object_type_name(uint32_t type)
{
    return type <= KG_POLICY_MAX_OBJECT_TYPE ? kg_policy_object_type_names[type] : NULL;
}

uint32_t kg_policy_object_type_code(const char *name)
{
    return kg_policy_table_code(kg_policy_object_type_names, KG_POLICY_MAX_OBJECT_TYPE + 1, name);
}

const char *kg_policy_algorithm_name(uint32_t algorithm)
{
    return algorithm <= KG_POLICY_ALGORITHM_LAST ? kg_policy_algorithm_names[algorithm] : NULL;
}

uint32_t kg_policy_algorithm_code(const char *name)
{
    return kg_policy_table_code(kg_policy_algorithm_names, KG_POLICY_ALGORITHM_LAST + 1, name);
}

const char *kg_policy_usage_name(uint32_t bit)
{
    for (uint32_t i = 0; i < sizeof(kg_policy_usage_names) / sizeof(kg_policy_usage_names[0]); i++) {
        if (bit == UINT32_C(1) << i) {
            return kg_policy_usage_names[i];
        }
    }
    return NULL;
}

uint32_t kg_policy_usage_code(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (uint32_t i = 0; i < sizeof(kg_policy_usage_names) / sizeof(kg_policy_usage_names[0]); i++) {
        if (strcmp(kg_policy_usage_names[i], name) == 0) {
            return UINT32_C(1) << i;
        }
    }
    return 0;
}
