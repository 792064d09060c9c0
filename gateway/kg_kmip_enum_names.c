/*
 * kg_kmip_enum_names.c - names of the enumeration and mask values, per tag,
 * for the XML encoding (KMIP Additional Message Encodings 1.0 section 6.1).
 *
 * Generated once from the tables of KMIP 1.4 section 9.1.3.2-9.1.3.3 and
 * KMIP 2.1 sections 11-12; names are normalised to CamelCase by the rules of
 * section 6.1.3. Where 2.1 gives an existing value a new name, the 1.4 name
 * is kept (the 1.x vectors use it); new 2.1 values are appended.
 */
#include "kg_kmip.h"

#include <stddef.h>

static const struct kg_enum_name kg_enum_credential_type[] = {
    { 0x00000001, "UsernameAndPassword" },
    { 0x00000002, "Device" },
    { 0x00000003, "Attestation" },
    { 0x00000004, "OneTimePassword" },
    { 0x00000005, "HashedPassword" },
    { 0x00000006, "Ticket" },
};

static const struct kg_enum_name kg_enum_key_compression_type[] = {
    { 0x00000001, "ECPublicKeyTypeUncompressed" },
    { 0x00000002, "ECPublicKeyTypeX9_62CompressedPrime" },
    { 0x00000003, "ECPublicKeyTypeX9_62CompressedChar2" },
    { 0x00000004, "ECPublicKeyTypeX9_62Hybrid" },
};

static const struct kg_enum_name kg_enum_key_format_type[] = {
    { 0x00000001, "Raw" },
    { 0x00000002, "Opaque" },
    { 0x00000003, "PKCS_1" },
    { 0x00000004, "PKCS_8" },
    { 0x00000005, "X_509" },
    { 0x00000006, "ECPrivateKey" },
    { 0x00000007, "TransparentSymmetricKey" },
    { 0x00000008, "TransparentDSAPrivateKey" },
    { 0x00000009, "TransparentDSAPublicKey" },
    { 0x0000000A, "TransparentRSAPrivateKey" },
    { 0x0000000B, "TransparentRSAPublicKey" },
    { 0x0000000C, "TransparentDHPrivateKey" },
    { 0x0000000D, "TransparentDHPublicKey" },
    { 0x0000000E, "TransparentECDSAPrivateKey" },
    { 0x0000000F, "TransparentECDSAPublicKey" },
    { 0x00000010, "TransparentECDHPrivateKey" },
    { 0x00000011, "TransparentECDHPublicKey" },
    { 0x00000012, "TransparentECMQVPrivateKey" },
    { 0x00000013, "TransparentECMQVPublicKey" },
    { 0x00000014, "TransparentECPrivateKey" },
    { 0x00000015, "TransparentECPublicKey" },
    { 0x00000016, "PKCS_12" },
    { 0x00000017, "PKCS_10" },
};

static const struct kg_enum_name kg_enum_wrapping_method[] = {
    { 0x00000001, "Encrypt" },
    { 0x00000002, "MACSign" },
    { 0x00000003, "EncryptThenMACSign" },
    { 0x00000004, "MACSignThenEncrypt" },
    { 0x00000005, "TR_31" },
};

static const struct kg_enum_name kg_enum_recommended_curve[] = {
    { 0x00000001, "P_192" },
    { 0x00000002, "K_163" },
    { 0x00000003, "B_163" },
    { 0x00000004, "P_224" },
    { 0x00000005, "K_233" },
    { 0x00000006, "B_233" },
    { 0x00000007, "P_256" },
    { 0x00000008, "K_283" },
    { 0x00000009, "B_283" },
    { 0x0000000A, "P_384" },
    { 0x0000000B, "K_409" },
    { 0x0000000C, "B_409" },
    { 0x0000000D, "P_521" },
    { 0x0000000E, "K_571" },
    { 0x0000000F, "B_571" },
    { 0x00000010, "SECP112R1" },
    { 0x00000011, "SECP112R2" },
    { 0x00000012, "SECP128R1" },
    { 0x00000013, "SECP128R2" },
    { 0x00000014, "SECP160K1" },
    { 0x00000015, "SECP160R1" },
    { 0x00000016, "SECP160R2" },
    { 0x00000017, "SECP192K1" },
    { 0x00000018, "SECP224K1" },
    { 0x00000019, "SECP256K1" },
    { 0x0000001A, "SECT113R1" },
    { 0x0000001B, "SECT113R2" },
    { 0x0000001C, "SECT131R1" },
    { 0x0000001D, "SECT131R2" },
    { 0x0000001E, "SECT163R1" },
    { 0x0000001F, "SECT193R1" },
    { 0x00000020, "SECT193R2" },
    { 0x00000021, "SECT239K1" },
    { 0x00000022, "ANSIX9P192V2" },
    { 0x00000023, "ANSIX9P192V3" },
    { 0x00000024, "ANSIX9P239V1" },
    { 0x00000025, "ANSIX9P239V2" },
    { 0x00000026, "ANSIX9P239V3" },
    { 0x00000027, "ANSIX9C2PNB163V1" },
    { 0x00000028, "ANSIX9C2PNB163V2" },
    { 0x00000029, "ANSIX9C2PNB163V3" },
    { 0x0000002A, "ANSIX9C2PNB176V1" },
    { 0x0000002B, "ANSIX9C2TNB191V1" },
    { 0x0000002C, "ANSIX9C2TNB191V2" },
    { 0x0000002D, "ANSIX9C2TNB191V3" },
    { 0x0000002E, "ANSIX9C2PNB208W1" },
    { 0x0000002F, "ANSIX9C2TNB239V1" },
    { 0x00000030, "ANSIX9C2TNB239V2" },
    { 0x00000031, "ANSIX9C2TNB239V3" },
    { 0x00000032, "ANSIX9C2PNB272W1" },
    { 0x00000033, "ANSIX9C2PNB304W1" },
    { 0x00000034, "ANSIX9C2TNB359V1" },
    { 0x00000035, "ANSIX9C2PNB368W1" },
    { 0x00000036, "ANSIX9C2TNB431R1" },
    { 0x00000037, "BRAINPOOLP160R1" },
    { 0x00000038, "BRAINPOOLP160T1" },
    { 0x00000039, "BRAINPOOLP192R1" },
    { 0x0000003A, "BRAINPOOLP192T1" },
    { 0x0000003B, "BRAINPOOLP224R1" },
    { 0x0000003C, "BRAINPOOLP224T1" },
    { 0x0000003D, "BRAINPOOLP256R1" },
    { 0x0000003E, "BRAINPOOLP256T1" },
    { 0x0000003F, "BRAINPOOLP320R1" },
    { 0x00000040, "BRAINPOOLP320T1" },
    { 0x00000041, "BRAINPOOLP384R1" },
    { 0x00000042, "BRAINPOOLP384T1" },
    { 0x00000043, "BRAINPOOLP512R1" },
    { 0x00000044, "BRAINPOOLP512T1" },
    { 0x00000045, "CURVE25519" },
    { 0x00000046, "CURVE448" },
};

static const struct kg_enum_name kg_enum_certificate_type[] = {
    { 0x00000001, "X_509" },
    { 0x00000002, "PGP" },
};

static const struct kg_enum_name kg_enum_digital_signature_algorithm[] = {
    { 0x00000001, "MD2WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000002, "MD5WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000003, "SHA_1WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000004, "SHA_224WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000005, "SHA_256WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000006, "SHA_384WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000007, "SHA_512WithRSAEncryptionPKCS_1V1_5" },
    { 0x00000008, "RSASSA_PSSPKCS_1V2_1" },
    { 0x00000009, "DSAWithSHA_1" },
    { 0x0000000A, "DSAWithSHA224" },
    { 0x0000000B, "DSAWithSHA256" },
    { 0x0000000C, "ECDSAWithSHA_1" },
    { 0x0000000D, "ECDSAWithSHA224" },
    { 0x0000000E, "ECDSAWithSHA256" },
    { 0x0000000F, "ECDSAWithSHA384" },
    { 0x00000010, "ECDSAWithSHA512" },
    { 0x00000011, "SHA3_256WithRSAEncryption" },
    { 0x00000012, "SHA3_384WithRSAEncryption" },
    { 0x00000013, "SHA3_512WithRSAEncryption" },
};

static const struct kg_enum_name kg_enum_split_key_method[] = {
    { 0x00000001, "XOR" },
    { 0x00000002, "PolynomialSharingGF216" },
    { 0x00000003, "PolynomialSharingPrimeField" },
    { 0x00000004, "PolynomialSharingGF28" },
};

static const struct kg_enum_name kg_enum_secret_data_type[] = {
    { 0x00000001, "Password" },
    { 0x00000002, "Seed" },
};

static const struct kg_enum_name kg_enum_name_type[] = {
    { 0x00000001, "UninterpretedTextString" },
    { 0x00000002, "URI" },
};

static const struct kg_enum_name kg_enum_object_type[] = {
    { 0x00000001, "Certificate" },
    { 0x00000002, "SymmetricKey" },
    { 0x00000003, "PublicKey" },
    { 0x00000004, "PrivateKey" },
    { 0x00000005, "SplitKey" },
    { 0x00000006, "Template" },
    { 0x00000007, "SecretData" },
    { 0x00000008, "OpaqueObject" },
    { 0x00000009, "PGPKey" },
    { 0x0000000A, "CertificateRequest" },
};

static const struct kg_enum_name kg_enum_cryptographic_algorithm[] = {
    { 0x00000001, "DES" },
    { 0x00000002, "DES3" },
    { 0x00000003, "AES" },
    { 0x00000004, "RSA" },
    { 0x00000005, "DSA" },
    { 0x00000006, "ECDSA" },
    { 0x00000007, "HMAC_SHA1" },
    { 0x00000008, "HMAC_SHA224" },
    { 0x00000009, "HMAC_SHA256" },
    { 0x0000000A, "HMAC_SHA384" },
    { 0x0000000B, "HMAC_SHA512" },
    { 0x0000000C, "HMAC_MD5" },
    { 0x0000000D, "DH" },
    { 0x0000000E, "ECDH" },
    { 0x0000000F, "ECMQV" },
    { 0x00000010, "Blowfish" },
    { 0x00000011, "Camellia" },
    { 0x00000012, "CAST5" },
    { 0x00000013, "IDEA" },
    { 0x00000014, "MARS" },
    { 0x00000015, "RC2" },
    { 0x00000016, "RC4" },
    { 0x00000017, "RC5" },
    { 0x00000018, "SKIPJACK" },
    { 0x00000019, "Twofish" },
    { 0x0000001A, "EC" },
    { 0x0000001B, "OneTimePad" },
    { 0x0000001C, "ChaCha20" },
    { 0x0000001D, "Poly1305" },
    { 0x0000001E, "ChaCha20Poly1305" },
    { 0x0000001F, "SHA3_224" },
    { 0x00000020, "SHA3_256" },
    { 0x00000021, "SHA3_384" },
    { 0x00000022, "SHA3_512" },
    { 0x00000023, "HMAC_SHA3_224" },
    { 0x00000024, "HMAC_SHA3_256" },
    { 0x00000025, "HMAC_SHA3_384" },
    { 0x00000026, "HMAC_SHA3_512" },
    { 0x00000027, "SHAKE_128" },
    { 0x00000028, "SHAKE_256" },
    { 0x00000029, "ARIA" },
    { 0x0000002A, "SEED" },
    { 0x0000002B, "SM2" },
    { 0x0000002C, "SM3" },
    { 0x0000002D, "SM4" },
    { 0x0000002E, "GOSTR34_10_2012" },
    { 0x0000002F, "GOSTR34_11_2012" },
    { 0x00000030, "GOSTR34_13_2015" },
    { 0x00000031, "GOST28147_89" },
    { 0x00000032, "XMSS" },
    { 0x00000033, "SPHINCS_256" },
    { 0x00000034, "McEliece" },
    { 0x00000035, "McEliece_6960119" },
    { 0x00000036, "McEliece_8192128" },
    { 0x00000037, "Ed25519" },
    { 0x00000038, "Ed448" },
};

static const struct kg_enum_name kg_enum_block_cipher_mode[] = {
    { 0x00000001, "CBC" },
    { 0x00000002, "ECB" },
    { 0x00000003, "PCBC" },
    { 0x00000004, "CFB" },
    { 0x00000005, "OFB" },
    { 0x00000006, "CTR" },
    { 0x00000007, "CMAC" },
    { 0x00000008, "CCM" },
    { 0x00000009, "GCM" },
    { 0x0000000A, "CBC_MAC" },
    { 0x0000000B, "XTS" },
    { 0x0000000C, "AESKeyWrapPadding" },
    { 0x0000000D, "NISTKeyWrap" },
    { 0x0000000E, "X9_102AESKW" },
    { 0x0000000F, "X9_102TDKW" },
    { 0x00000010, "X9_102AKW1" },
    { 0x00000011, "X9_102AKW2" },
    { 0x00000012, "AEAD" },
};

static const struct kg_enum_name kg_enum_padding_method[] = {
    { 0x00000001, "None" },
    { 0x00000002, "OAEP" },
    { 0x00000003, "PKCS5" },
    { 0x00000004, "SSL3" },
    { 0x00000005, "Zeros" },
    { 0x00000006, "ANSIX9_23" },
    { 0x00000007, "ISO10126" },
    { 0x00000008, "PKCS1V1_5" },
    { 0x00000009, "X9_31" },
    { 0x0000000A, "PSS" },
};

static const struct kg_enum_name kg_enum_hashing_algorithm[] = {
    { 0x00000001, "MD2" },
    { 0x00000002, "MD4" },
    { 0x00000003, "MD5" },
    { 0x00000004, "SHA_1" },
    { 0x00000005, "SHA_224" },
    { 0x00000006, "SHA_256" },
    { 0x00000007, "SHA_384" },
    { 0x00000008, "SHA_512" },
    { 0x00000009, "RIPEMD_160" },
    { 0x0000000A, "Tiger" },
    { 0x0000000B, "Whirlpool" },
    { 0x0000000C, "SHA_512_224" },
    { 0x0000000D, "SHA_512_256" },
    { 0x0000000E, "SHA_3_224" },
    { 0x0000000F, "SHA_3_256" },
    { 0x00000010, "SHA_3_384" },
    { 0x00000011, "SHA_3_512" },
};

static const struct kg_enum_name kg_enum_mask_generator_hashing_algorithm[] = {
    { 0x00000001, "MD2" },
    { 0x00000002, "MD4" },
    { 0x00000003, "MD5" },
    { 0x00000004, "SHA_1" },
    { 0x00000005, "SHA_224" },
    { 0x00000006, "SHA_256" },
    { 0x00000007, "SHA_384" },
    { 0x00000008, "SHA_512" },
    { 0x00000009, "RIPEMD_160" },
    { 0x0000000A, "Tiger" },
    { 0x0000000B, "Whirlpool" },
    { 0x0000000C, "SHA_512_224" },
    { 0x0000000D, "SHA_512_256" },
    { 0x0000000E, "SHA_3_224" },
    { 0x0000000F, "SHA_3_256" },
    { 0x00000010, "SHA_3_384" },
    { 0x00000011, "SHA_3_512" },
};

static const struct kg_enum_name kg_enum_key_role_type[] = {
    { 0x00000001, "BDK" },
    { 0x00000002, "CVK" },
    { 0x00000003, "DEK" },
    { 0x00000004, "MKAC" },
    { 0x00000005, "MKSMC" },
    { 0x00000006, "MKSMI" },
    { 0x00000007, "MKDAC" },
    { 0x00000008, "MKDN" },
    { 0x00000009, "MKCP" },
    { 0x0000000A, "MKOTH" },
    { 0x0000000B, "KEK" },
    { 0x0000000C, "MAC16609" },
    { 0x0000000D, "MAC97971" },
    { 0x0000000E, "MAC97972" },
    { 0x0000000F, "MAC97973" },
    { 0x00000010, "MAC97974" },
    { 0x00000011, "MAC97975" },
    { 0x00000012, "ZPK" },
    { 0x00000013, "PVKIBM" },
    { 0x00000014, "PVKPVV" },
    { 0x00000015, "PVKOTH" },
    { 0x00000016, "DUKPT" },
    { 0x00000017, "IV" },
    { 0x00000018, "TRKBK" },
};

static const struct kg_enum_name kg_enum_state[] = {
    { 0x00000001, "PreActive" },
    { 0x00000002, "Active" },
    { 0x00000003, "Deactivated" },
    { 0x00000004, "Compromised" },
    { 0x00000005, "Destroyed" },
    { 0x00000006, "DestroyedCompromised" },
};

static const struct kg_enum_name kg_enum_revocation_reason_code[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "KeyCompromise" },
    { 0x00000003, "CACompromise" },
    { 0x00000004, "AffiliationChanged" },
    { 0x00000005, "Superseded" },
    { 0x00000006, "CessationOfOperation" },
    { 0x00000007, "PrivilegeWithdrawn" },
};

static const struct kg_enum_name kg_enum_link_type[] = {
    { 0x00000101, "CertificateLink" },
    { 0x00000102, "PublicKeyLink" },
    { 0x00000103, "PrivateKeyLink" },
    { 0x00000104, "DerivationBaseObjectLink" },
    { 0x00000105, "DerivedKeyLink" },
    { 0x00000106, "ReplacementObjectLink" },
    { 0x00000107, "ReplacedObjectLink" },
    { 0x00000108, "ParentLink" },
    { 0x00000109, "ChildLink" },
    { 0x0000010A, "PreviousLink" },
    { 0x0000010B, "NextLink" },
    { 0x0000010C, "PKCS_12CertificateLink" },
    { 0x0000010D, "PKCS_12PasswordLink" },
    { 0x0000010E, "WrappingKeyLink" },
};

static const struct kg_enum_name kg_enum_derivation_method[] = {
    { 0x00000001, "PBKDF2" },
    { 0x00000002, "HASH" },
    { 0x00000003, "HMAC" },
    { 0x00000004, "ENCRYPT" },
    { 0x00000005, "NIST800_108_C" },
    { 0x00000006, "NIST800_108_F" },
    { 0x00000007, "NIST800_108_DPI" },
    { 0x00000008, "AsymmetricKey" },
    { 0x00000009, "AWSSignatureVersion4" },
    { 0x0000000A, "HKDF" },
};

static const struct kg_enum_name kg_enum_certificate_request_type[] = {
    { 0x00000001, "CRMF" },
    { 0x00000002, "PKCS_10" },
    { 0x00000003, "PEM" },
    { 0x00000004, "PGP" },
};

static const struct kg_enum_name kg_enum_validity_indicator[] = {
    { 0x00000001, "Valid" },
    { 0x00000002, "Invalid" },
    { 0x00000003, "Unknown" },
};

static const struct kg_enum_name kg_enum_query_function[] = {
    { 0x00000001, "QueryOperations" },
    { 0x00000002, "QueryObjects" },
    { 0x00000003, "QueryServerInformation" },
    { 0x00000004, "QueryApplicationNamespaces" },
    { 0x00000005, "QueryExtensionList" },
    { 0x00000006, "QueryExtensionMap" },
    { 0x00000007, "QueryAttestationTypes" },
    { 0x00000008, "QueryRNGs" },
    { 0x00000009, "QueryValidations" },
    { 0x0000000A, "QueryProfiles" },
    { 0x0000000B, "QueryCapabilities" },
    { 0x0000000C, "QueryClientRegistrationMethods" },
    { 0x0000000D, "QueryDefaultsInformation" },
    { 0x0000000E, "QueryStorageProtectionMasks" },
};

static const struct kg_enum_name kg_enum_cancellation_result[] = {
    { 0x00000001, "Canceled" },
    { 0x00000002, "UnableToCancel" },
    { 0x00000003, "Completed" },
    { 0x00000004, "Failed" },
    { 0x00000005, "Unavailable" },
};

static const struct kg_enum_name kg_enum_put_function[] = {
    { 0x00000001, "New" },
    { 0x00000002, "Replace" },
};

static const struct kg_enum_name kg_enum_operation[] = {
    { 0x00000001, "Create" },
    { 0x00000002, "CreateKeyPair" },
    { 0x00000003, "Register" },
    { 0x00000004, "ReKey" },
    { 0x00000005, "DeriveKey" },
    { 0x00000006, "Certify" },
    { 0x00000007, "ReCertify" },
    { 0x00000008, "Locate" },
    { 0x00000009, "Check" },
    { 0x0000000A, "Get" },
    { 0x0000000B, "GetAttributes" },
    { 0x0000000C, "GetAttributeList" },
    { 0x0000000D, "AddAttribute" },
    { 0x0000000E, "ModifyAttribute" },
    { 0x0000000F, "DeleteAttribute" },
    { 0x00000010, "ObtainLease" },
    { 0x00000011, "GetUsageAllocation" },
    { 0x00000012, "Activate" },
    { 0x00000013, "Revoke" },
    { 0x00000014, "Destroy" },
    { 0x00000015, "Archive" },
    { 0x00000016, "Recover" },
    { 0x00000017, "Validate" },
    { 0x00000018, "Query" },
    { 0x00000019, "Cancel" },
    { 0x0000001A, "Poll" },
    { 0x0000001B, "Notify" },
    { 0x0000001C, "Put" },
    { 0x0000001D, "ReKeyKeyPair" },
    { 0x0000001E, "DiscoverVersions" },
    { 0x0000001F, "Encrypt" },
    { 0x00000020, "Decrypt" },
    { 0x00000021, "Sign" },
    { 0x00000022, "SignatureVerify" },
    { 0x00000023, "MAC" },
    { 0x00000024, "MACVerify" },
    { 0x00000025, "RNGRetrieve" },
    { 0x00000026, "RNGSeed" },
    { 0x00000027, "Hash" },
    { 0x00000028, "CreateSplitKey" },
    { 0x00000029, "JoinSplitKey" },
    { 0x0000002A, "Import" },
    { 0x0000002B, "Export" },
    { 0x0000002C, "Log" },
    { 0x0000002D, "Login" },
    { 0x0000002E, "Logout" },
    { 0x0000002F, "DelegatedLogin" },
    { 0x00000030, "AdjustAttribute" },
    { 0x00000031, "SetAttribute" },
    { 0x00000032, "SetEndpointRole" },
    { 0x00000033, "PKCS_11" },
    { 0x00000034, "Interop" },
    { 0x00000035, "ReProvision" },
    { 0x00000036, "SetDefaults" },
    { 0x00000037, "SetConstraints" },
    { 0x00000038, "GetConstraints" },
    { 0x00000039, "QueryAsynchronousRequests" },
    { 0x0000003A, "Process" },
    { 0x0000003B, "Ping" },
};

static const struct kg_enum_name kg_enum_result_status[] = {
    { 0x00000000, "Success" },
    { 0x00000001, "OperationFailed" },
    { 0x00000002, "OperationPending" },
    { 0x00000003, "OperationUndone" },
};

static const struct kg_enum_name kg_enum_result_reason[] = {
    { 0x00000001, "ItemNotFound" },
    { 0x00000002, "ResponseTooLarge" },
    { 0x00000003, "AuthenticationNotSuccessful" },
    { 0x00000004, "InvalidMessage" },
    { 0x00000005, "OperationNotSupported" },
    { 0x00000006, "MissingData" },
    { 0x00000007, "InvalidField" },
    { 0x00000008, "FeatureNotSupported" },
    { 0x00000009, "OperationCanceledByRequester" },
    { 0x0000000A, "CryptographicFailure" },
    { 0x0000000B, "IllegalOperation" },
    { 0x0000000C, "PermissionDenied" },
    { 0x0000000D, "ObjectArchived" },
    { 0x0000000E, "IndexOutOfBounds" },
    { 0x0000000F, "ApplicationNamespaceNotSupported" },
    { 0x00000010, "KeyFormatTypeNotSupported" },
    { 0x00000011, "KeyCompressionTypeNotSupported" },
    { 0x00000012, "EncodingOptionError" },
    { 0x00000013, "KeyValueNotPresent" },
    { 0x00000014, "AttestationRequired" },
    { 0x00000015, "AttestationFailed" },
    { 0x00000016, "Sensitive" },
    { 0x00000017, "NotExtractable" },
    { 0x00000018, "ObjectAlreadyExists" },
    { 0x00000100, "GeneralFailure" },
    { 0x00000019, "InvalidTicket" },
    { 0x0000001A, "UsageLimitExceeded" },
    { 0x0000001B, "NumericRange" },
    { 0x0000001C, "InvalidDataType" },
    { 0x0000001D, "ReadOnlyAttribute" },
    { 0x0000001E, "MultiValuedAttribute" },
    { 0x0000001F, "UnsupportedAttribute" },
    { 0x00000020, "AttributeInstanceNotFound" },
    { 0x00000021, "AttributeNotFound" },
    { 0x00000022, "AttributeReadOnly" },
    { 0x00000023, "AttributeSingleValued" },
    { 0x00000024, "BadCryptographicParameters" },
    { 0x00000025, "BadPassword" },
    { 0x00000026, "CodecError" },
    { 0x00000028, "IllegalObjectType" },
    { 0x00000029, "IncompatibleCryptographicUsageMask" },
    { 0x0000002A, "InternalServerError" },
    { 0x0000002B, "InvalidAsynchronousCorrelationValue" },
    { 0x0000002C, "InvalidAttribute" },
    { 0x0000002D, "InvalidAttributeValue" },
    { 0x0000002E, "InvalidCorrelationValue" },
    { 0x0000002F, "InvalidCSR" },
    { 0x00000030, "InvalidObjectType" },
    { 0x00000032, "KeyWrapTypeNotSupported" },
    { 0x00000034, "MissingInitializationVector" },
    { 0x00000035, "NonUniqueNameAttribute" },
    { 0x00000036, "ObjectDestroyed" },
    { 0x00000037, "ObjectNotFound" },
    { 0x00000039, "NotAuthorised" },
    { 0x0000003A, "ServerLimitExceeded" },
    { 0x0000003B, "UnknownEnumeration" },
    { 0x0000003C, "UnknownMessageExtension" },
    { 0x0000003D, "UnknownTag" },
    { 0x0000003E, "UnsupportedCryptographicParameters" },
    { 0x0000003F, "UnsupportedProtocolVersion" },
    { 0x00000040, "WrappingObjectArchived" },
    { 0x00000041, "WrappingObjectDestroyed" },
    { 0x00000042, "WrappingObjectNotFound" },
    { 0x00000043, "WrongKeyLifecycleState" },
    { 0x00000044, "ProtectionStorageUnavailable" },
    { 0x00000045, "PKCS_11CodecError" },
    { 0x00000046, "PKCS_11InvalidFunction" },
    { 0x00000047, "PKCS_11InvalidInterface" },
    { 0x00000048, "PrivateProtectionStorageUnavailable" },
    { 0x00000049, "PublicProtectionStorageUnavailable" },
    { 0x0000004A, "UnknownObjectGroup" },
    { 0x0000004B, "ConstraintViolation" },
    { 0x0000004C, "DuplicateProcessRequest" },
};

static const struct kg_enum_name kg_enum_batch_error_continuation_option[] = {
    { 0x00000001, "Continue" },
    { 0x00000002, "Stop" },
    { 0x00000003, "Undo" },
};

static const struct kg_enum_name kg_enum_usage_limits_unit[] = {
    { 0x00000001, "Byte" },
    { 0x00000002, "Object" },
};

static const struct kg_enum_name kg_enum_encoding_option[] = {
    { 0x00000001, "NoEncoding" },
    { 0x00000002, "TTLVEncoding" },
};

static const struct kg_enum_name kg_enum_object_group_member[] = {
    { 0x00000001, "GroupMemberFresh" },
    { 0x00000002, "GroupMemberDefault" },
};

static const struct kg_enum_name kg_enum_alternative_name_type[] = {
    { 0x00000001, "UninterpretedTextString" },
    { 0x00000002, "URI" },
    { 0x00000003, "ObjectSerialNumber" },
    { 0x00000004, "EmailAddress" },
    { 0x00000005, "DNSName" },
    { 0x00000006, "X_500DistinguishedName" },
    { 0x00000007, "IPAddress" },
};

static const struct kg_enum_name kg_enum_key_value_location_type[] = {
    { 0x00000001, "UninterpretedTextString" },
    { 0x00000002, "URI" },
};

static const struct kg_enum_name kg_enum_attestation_type[] = {
    { 0x00000001, "TPMQuote" },
    { 0x00000002, "TCGIntegrityReport" },
    { 0x00000003, "SAMLAssertion" },
};

static const struct kg_enum_name kg_enum_rng_algorithm[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "FIPS186_2" },
    { 0x00000003, "DRBG" },
    { 0x00000004, "NRBG" },
    { 0x00000005, "ANSIX9_31" },
    { 0x00000006, "ANSIX9_62" },
};

static const struct kg_enum_name kg_enum_drbg_algorithm[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "Dual_EC" },
    { 0x00000003, "Hash" },
    { 0x00000004, "HMAC" },
    { 0x00000005, "CTR" },
};

static const struct kg_enum_name kg_enum_fips186_variation[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "GPXOriginal" },
    { 0x00000003, "GPXChangeNotice" },
    { 0x00000004, "XOriginal" },
    { 0x00000005, "XChangeNotice" },
    { 0x00000006, "KOriginal" },
    { 0x00000007, "KChangeNotice" },
};

static const struct kg_enum_name kg_enum_validation_authority_type[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "NISTCMVP" },
    { 0x00000003, "CommonCriteria" },
};

static const struct kg_enum_name kg_enum_validation_type[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "Hardware" },
    { 0x00000003, "Software" },
    { 0x00000004, "Firmware" },
    { 0x00000005, "Hybrid" },
};

static const struct kg_enum_name kg_enum_profile_name[] = {
    { 0x00000001, "BaselineServerBasicKMIPV1_2" },
    { 0x00000002, "BaselineServerTLSV1_2KMIPV1_2" },
    { 0x00000003, "BaselineClientBasicKMIPV1_2" },
    { 0x00000004, "BaselineClientTLSV1_2KMIPV1_2" },
    { 0x00000005, "CompleteServerBasicKMIPV1_2" },
    { 0x00000006, "CompleteServerTLSV1_2KMIPV1_2" },
    { 0x00000007, "TapeLibraryClientKMIPV1_0" },
    { 0x00000008, "TapeLibraryClientKMIPV1_1" },
    { 0x00000009, "TapeLibraryClientKMIPV1_2" },
    { 0x0000000A, "TapeLibraryServerKMIPV1_0" },
    { 0x0000000B, "TapeLibraryServerKMIPV1_1" },
    { 0x0000000C, "TapeLibraryServerKMIPV1_2" },
    { 0x0000000D, "SymmetricKeyLifecycleClientKMIPV1_0" },
    { 0x0000000E, "SymmetricKeyLifecycleClientKMIPV1_1" },
    { 0x0000000F, "SymmetricKeyLifecycleClientKMIPV1_2" },
    { 0x00000010, "SymmetricKeyLifecycleServerKMIPV1_0" },
    { 0x00000011, "SymmetricKeyLifecycleServerKMIPV1_1" },
    { 0x00000012, "SymmetricKeyLifecycleServerKMIPV1_2" },
    { 0x00000013, "AsymmetricKeyLifecycleClientKMIPV1_0" },
    { 0x00000014, "AsymmetricKeyLifecycleClientKMIPV1_1" },
    { 0x00000015, "AsymmetricKeyLifecycleClientKMIPV1_2" },
    { 0x00000016, "AsymmetricKeyLifecycleServerKMIPV1_0" },
    { 0x00000017, "AsymmetricKeyLifecycleServerKMIPV1_1" },
    { 0x00000018, "AsymmetricKeyLifecycleServerKMIPV1_2" },
    { 0x00000019, "BasicCryptographicClientKMIPV1_2" },
    { 0x0000001A, "BasicCryptographicServerKMIPV1_2" },
    { 0x0000001B, "AdvancedCryptographicClientKMIPV1_2" },
    { 0x0000001C, "AdvancedCryptographicServerKMIPV1_2" },
    { 0x0000001D, "RNGCryptographicClientKMIPV1_2" },
    { 0x0000001E, "RNGCryptographicServerKMIPV1_2" },
    { 0x0000001F, "BasicSymmetricKeyFoundryClientKMIPV1_0" },
    { 0x00000020, "IntermediateSymmetricKeyFoundryClientKMIPV1_0" },
    { 0x00000021, "AdvancedSymmetricKeyFoundryClientKMIPV1_0" },
    { 0x00000022, "BasicSymmetricKeyFoundryClientKMIPV1_1" },
    { 0x00000023, "IntermediateSymmetricKeyFoundryClientKMIPV1_1" },
    { 0x00000024, "AdvancedSymmetricKeyFoundryClientKMIPV1_1" },
    { 0x00000025, "BasicSymmetricKeyFoundryClientKMIPV1_2" },
    { 0x00000026, "IntermediateSymmetricKeyFoundryClientKMIPV1_2" },
    { 0x00000027, "AdvancedSymmetricKeyFoundryClientKMIPV1_2" },
    { 0x00000028, "SymmetricKeyFoundryServerKMIPV1_0" },
    { 0x00000029, "SymmetricKeyFoundryServerKMIPV1_1" },
    { 0x0000002A, "SymmetricKeyFoundryServerKMIPV1_2" },
    { 0x0000002B, "OpaqueManagedObjectStoreClientKMIPV1_0" },
    { 0x0000002C, "OpaqueManagedObjectStoreClientKMIPV1_1" },
    { 0x0000002D, "OpaqueManagedObjectStoreClientKMIPV1_2" },
    { 0x0000002E, "OpaqueManagedObjectStoreServerKMIPV1_0" },
    { 0x0000002F, "OpaqueManagedObjectStoreServerKMIPV1_1" },
    { 0x00000030, "OpaqueManagedObjectStoreServerKMIPV1_2" },
    { 0x00000031, "SuiteBMinLOS_128ClientKMIPV1_0" },
    { 0x00000032, "SuiteBMinLOS_128ClientKMIPV1_1" },
    { 0x00000033, "SuiteBMinLOS_128ClientKMIPV1_2" },
    { 0x00000034, "SuiteBMinLOS_128ServerKMIPV1_0" },
    { 0x00000035, "SuiteBMinLOS_128ServerKMIPV1_1" },
    { 0x00000036, "SuiteBMinLOS_128ServerKMIPV1_2" },
    { 0x00000037, "SuiteBMinLOS_192ClientKMIPV1_0" },
    { 0x00000038, "SuiteBMinLOS_192ClientKMIPV1_1" },
    { 0x00000039, "SuiteBMinLOS_192ClientKMIPV1_2" },
    { 0x0000003A, "SuiteBMinLOS_192ServerKMIPV1_0" },
    { 0x0000003B, "SuiteBMinLOS_192ServerKMIPV1_1" },
    { 0x0000003C, "SuiteBMinLOS_192ServerKMIPV1_2" },
    { 0x0000003D, "StorageArrayWithSelfEncryptingDriveClientKMIPV1_0" },
    { 0x0000003E, "StorageArrayWithSelfEncryptingDriveClientKMIPV1_1" },
    { 0x0000003F, "StorageArrayWithSelfEncryptingDriveClientKMIPV1_2" },
    { 0x00000040, "StorageArrayWithSelfEncryptingDriveServerKMIPV1_0" },
    { 0x00000041, "StorageArrayWithSelfEncryptingDriveServerKMIPV1_1" },
    { 0x00000042, "StorageArrayWithSelfEncryptingDriveServerKMIPV1_2" },
    { 0x00000043, "HTTPSClientKMIPV1_0" },
    { 0x00000044, "HTTPSClientKMIPV1_1" },
    { 0x00000045, "HTTPSClientKMIPV1_2" },
    { 0x00000046, "HTTPSServerKMIPV1_0" },
    { 0x00000047, "HTTPSServerKMIPV1_1" },
    { 0x00000048, "HTTPSServerKMIPV1_2" },
    { 0x00000049, "JSONClientKMIPV1_0" },
    { 0x0000004A, "JSONClientKMIPV1_1" },
    { 0x0000004B, "JSONClientKMIPV1_2" },
    { 0x0000004C, "JSONServerKMIPV1_0" },
    { 0x0000004D, "JSONServerKMIPV1_1" },
    { 0x0000004E, "JSONServerKMIPV1_2" },
    { 0x0000004F, "XMLClientKMIPV1_0" },
    { 0x00000050, "XMLClientKMIPV1_1" },
    { 0x00000051, "XMLClientKMIPV1_2" },
    { 0x00000052, "XMLServerKMIPV1_0" },
    { 0x00000053, "XMLServerKMIPV1_1" },
    { 0x00000054, "XMLServerKMIPV1_2" },
    { 0x00000055, "BaselineServerBasicKMIPV1_3" },
    { 0x00000056, "BaselineServerTLSV1_2KMIPV1_3" },
    { 0x00000057, "BaselineClientBasicKMIPV1_3" },
    { 0x00000058, "BaselineClientTLSV1_2KMIPV1_3" },
    { 0x00000059, "CompleteServerBasicKMIPV1_3" },
    { 0x0000005A, "CompleteServerTLSV1_2KMIPV1_3" },
    { 0x0000005B, "TapeLibraryClientKMIPV1_3" },
    { 0x0000005C, "TapeLibraryServerKMIPV1_3" },
    { 0x0000005D, "SymmetricKeyLifecycleClientKMIPV1_3" },
    { 0x0000005E, "SymmetricKeyLifecycleServerKMIPV1_3" },
    { 0x0000005F, "AsymmetricKeyLifecycleClientKMIPV1_3" },
    { 0x00000060, "AsymmetricKeyLifecycleServerKMIPV1_3" },
    { 0x00000061, "BasicCryptographicClientKMIPV1_3" },
    { 0x00000062, "BasicCryptographicServerKMIPV1_3" },
    { 0x00000063, "AdvancedCryptographicClientKMIPV1_3" },
    { 0x00000064, "AdvancedCryptographicServerKMIPV1_3" },
    { 0x00000065, "RNGCryptographicClientKMIPV1_3" },
    { 0x00000066, "RNGCryptographicServerKMIPV1_3" },
    { 0x00000067, "BasicSymmetricKeyFoundryClientKMIPV1_3" },
    { 0x00000068, "IntermediateSymmetricKeyFoundryClientKMIPV1_3" },
    { 0x00000069, "AdvancedSymmetricKeyFoundryClientKMIPV1_3" },
    { 0x0000006A, "SymmetricKeyFoundryServerKMIPV1_3" },
    { 0x0000006B, "OpaqueManagedObjectStoreClientKMIPV1_3" },
    { 0x0000006C, "OpaqueManagedObjectStoreServerKMIPV1_3" },
    { 0x0000006D, "SuiteBMinLOS_128ClientKMIPV1_3" },
    { 0x0000006E, "SuiteBMinLOS_128ServerKMIPV1_3" },
    { 0x0000006F, "SuiteBMinLOS_192ClientKMIPV1_3" },
    { 0x00000070, "SuiteBMinLOS_192ServerKMIPV1_3" },
    { 0x00000071, "StorageArrayWithSelfEncryptingDriveClientKMIPV1_3" },
    { 0x00000072, "StorageArrayWithSelfEncryptingDriveServerKMIPV1_3" },
    { 0x00000073, "HTTPSClientKMIPV1_3" },
    { 0x00000074, "HTTPSServerKMIPV1_3" },
    { 0x00000075, "JSONClientKMIPV1_3" },
    { 0x00000076, "JSONServerKMIPV1_3" },
    { 0x00000077, "XMLClientKMIPV1_3" },
    { 0x00000078, "XMLServerKMIPV1_3" },
    { 0x00000079, "BaselineServerBasicKMIPV1_4" },
    { 0x0000007A, "BaselineServerTLSV1_2KMIPV1_4" },
    { 0x0000007B, "BaselineClientBasicKMIPV1_4" },
    { 0x0000007C, "BaselineClientTLSV1_2KMIPV1_4" },
    { 0x0000007D, "CompleteServerBasicKMIPV1_4" },
    { 0x0000007E, "CompleteServerTLSV1_2KMIPV1_4" },
    { 0x0000007F, "TapeLibraryClientKMIPV1_4" },
    { 0x00000080, "TapeLibraryServerKMIPV1_4" },
    { 0x00000081, "SymmetricKeyLifecycleClientKMIPV1_4" },
    { 0x00000082, "SymmetricKeyLifecycleServerKMIPV1_4" },
    { 0x00000083, "AsymmetricKeyLifecycleClientKMIPV1_4" },
    { 0x00000084, "AsymmetricKeyLifecycleServerKMIPV1_4" },
    { 0x00000085, "BasicCryptographicClientKMIPV1_4" },
    { 0x00000086, "BasicCryptographicServerKMIPV1_4" },
    { 0x00000087, "AdvancedCryptographicClientKMIPV1_4" },
    { 0x00000088, "AdvancedCryptographicServerKMIPV1_4" },
    { 0x00000089, "RNGCryptographicClientKMIPV1_4" },
    { 0x0000008A, "RNGCryptographicServerKMIPV1_4" },
    { 0x0000008B, "BasicSymmetricKeyFoundryClientKMIPV1_4" },
    { 0x0000008C, "IntermediateSymmetricKeyFoundryClientKMIPV1_4" },
    { 0x0000008D, "AdvancedSymmetricKeyFoundryClientKMIPV1_4" },
    { 0x0000008E, "SymmetricKeyFoundryServerKMIPV1_4" },
    { 0x0000008F, "OpaqueManagedObjectStoreClientKMIPV1_4" },
    { 0x00000090, "OpaqueManagedObjectStoreServerKMIPV1_4" },
    { 0x00000091, "SuiteBMinLOS_128ClientKMIPV1_4" },
    { 0x00000092, "SuiteBMinLOS_128ServerKMIPV1_4" },
    { 0x00000093, "SuiteBMinLOS_192ClientKMIPV1_4" },
    { 0x00000094, "SuiteBMinLOS_192ServerKMIPV1_4" },
    { 0x00000095, "StorageArrayWithSelfEncryptingDriveClientKMIPV1_4" },
    { 0x00000096, "StorageArrayWithSelfEncryptingDriveServerKMIPV1_4" },
    { 0x00000097, "HTTPSClientKMIPV1_4" },
    { 0x00000098, "HTTPSServerKMIPV1_4" },
    { 0x00000099, "JSONClientKMIPV1_4" },
    { 0x0000009A, "JSONServerKMIPV1_4" },
    { 0x0000009B, "XMLClientKMIPV1_4" },
    { 0x0000009C, "XMLServerKMIPV1_4" },
    { 0x00000104, "CompleteServerBasic" },
    { 0x00000105, "CompleteServerTLSV1_2" },
    { 0x00000106, "TapeLibraryClient" },
    { 0x00000107, "TapeLibraryServer" },
    { 0x00000108, "SymmetricKeyLifecycleClient" },
    { 0x00000109, "SymmetricKeyLifecycleServer" },
    { 0x0000010A, "AsymmetricKeyLifecycleClient" },
    { 0x0000010B, "AsymmetricKeyLifecycleServer" },
    { 0x0000010C, "BasicCryptographicClient" },
    { 0x0000010D, "BasicCryptographicServer" },
    { 0x0000010E, "AdvancedCryptographicClient" },
    { 0x0000010F, "AdvancedCryptographicServer" },
    { 0x00000110, "RNGCryptographicClient" },
    { 0x00000111, "RNGCryptographicServer" },
    { 0x00000112, "BasicSymmetricKeyFoundryClient" },
    { 0x00000113, "IntermediateSymmetricKeyFoundryClient" },
    { 0x00000114, "AdvancedSymmetricKeyFoundryClient" },
    { 0x00000115, "SymmetricKeyFoundryServer" },
    { 0x00000116, "OpaqueManagedObjectStoreClient" },
    { 0x00000117, "OpaqueManagedObjectStoreServer" },
    { 0x0000011C, "StorageArrayWithSelfEncryptingDriveClient" },
    { 0x0000011D, "StorageArrayWithSelfEncryptingDriveServer" },
    { 0x0000011E, "HTTPSClient" },
    { 0x0000011F, "HTTPSServer" },
    { 0x00000120, "JSONClient" },
    { 0x00000121, "JSONServer" },
    { 0x00000122, "XMLClient" },
    { 0x00000123, "XMLServer" },
    { 0x00000124, "AESXTSClient" },
    { 0x00000125, "AESXTSServer" },
    { 0x00000126, "QuantumSafeClient" },
    { 0x00000127, "QuantumSafeServer" },
    { 0x00000128, "PKCS_11Client" },
    { 0x00000129, "PKCS_11Server" },
    { 0x0000012A, "BaselineClient" },
    { 0x0000012B, "BaselineServer" },
    { 0x0000012C, "CompleteServer" },
};

static const struct kg_enum_name kg_enum_unwrap_mode[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "Processed" },
    { 0x00000003, "NotProcessed" },
};

static const struct kg_enum_name kg_enum_destroy_action[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "KeyMaterialDeleted" },
    { 0x00000003, "KeyMaterialShredded" },
    { 0x00000004, "MetaDataDeleted" },
    { 0x00000005, "MetaDataShredded" },
    { 0x00000006, "Deleted" },
    { 0x00000007, "Shredded" },
};

static const struct kg_enum_name kg_enum_shredding_algorithm[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "Cryptographic" },
    { 0x00000003, "Unsupported" },
};

static const struct kg_enum_name kg_enum_rng_mode[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "SharedInstantiation" },
    { 0x00000003, "NonSharedInstantiation" },
};

static const struct kg_enum_name kg_enum_client_registration_method[] = {
    { 0x00000001, "Unspecified" },
    { 0x00000002, "ServerPreGenerated" },
    { 0x00000003, "ServerOnDemand" },
    { 0x00000004, "ClientGenerated" },
    { 0x00000005, "ClientRegistered" },
};

static const struct kg_enum_name kg_enum_key_wrap_type[] = {
    { 0x00000001, "NotWrapped" },
    { 0x00000002, "AsRegistered" },
};

static const struct kg_enum_name kg_enum_mask_generator[] = {
    { 0x00000001, "MGF1" },
};

static const struct kg_enum_name kg_enum_cryptographic_usage_mask[] = {
    { 0x00000001, "Sign" },
    { 0x00000002, "Verify" },
    { 0x00000004, "Encrypt" },
    { 0x00000008, "Decrypt" },
    { 0x00000010, "WrapKey" },
    { 0x00000020, "UnwrapKey" },
    { 0x00000040, "Export" },
    { 0x00000080, "MACGenerate" },
    { 0x00000100, "MACVerify" },
    { 0x00000200, "DeriveKey" },
    { 0x00000400, "ContentCommitmentNonRepudiation" },
    { 0x00000800, "KeyAgreement" },
    { 0x00001000, "CertificateSign" },
    { 0x00002000, "CRLSign" },
    { 0x00004000, "GenerateCryptogram" },
    { 0x00008000, "ValidateCryptogram" },
    { 0x00010000, "TranslateEncrypt" },
    { 0x00020000, "TranslateDecrypt" },
    { 0x00040000, "TranslateWrap" },
    { 0x00080000, "TranslateUnwrap" },
    { 0x00100000, "Authenticate" },
    { 0x00200000, "Unrestricted" },
    { 0x00400000, "FPEEncrypt" },
    { 0x00800000, "FPEDecrypt" },
};

static const struct kg_enum_name kg_enum_storage_status_mask[] = {
    { 0x00000001, "OnLineStorage" },
    { 0x00000002, "ArchivalStorage" },
    { 0x00000004, "DestroyedStorage" },
};

static const struct kg_enum_name kg_enum_adjustment_type[] = {
    { 0x00000001, "Increment" },
    { 0x00000002, "Decrement" },
    { 0x00000003, "Negate" },
};

static const struct kg_enum_name kg_enum_asynchronous_indicator[] = {
    { 0x00000001, "Mandatory" },
    { 0x00000002, "Optional" },
    { 0x00000003, "Prohibited" },
};

static const struct kg_enum_name kg_enum_interop_function[] = {
    { 0x00000001, "Begin" },
    { 0x00000002, "End" },
    { 0x00000003, "Reset" },
};

static const struct kg_enum_name kg_enum_nist_key_type[] = {
    { 0x00000001, "PrivateSignatureKey" },
    { 0x00000002, "PublicSignatureVerificationKey" },
    { 0x00000003, "SymmetricAuthenticationKey" },
    { 0x00000004, "PrivateAuthenticationKey" },
    { 0x00000005, "PublicAuthenticationKey" },
    { 0x00000006, "SymmetricDataEncryptionKey" },
    { 0x00000007, "SymmetricKeyWrappingKey" },
    { 0x00000008, "SymmetricRandomNumberGenerationKey" },
    { 0x00000009, "SymmetricMasterKey" },
    { 0x0000000A, "PrivateKeyTransportKey" },
    { 0x0000000B, "PublicKeyTransportKey" },
    { 0x0000000C, "SymmetricKeyAgreementKey" },
    { 0x0000000D, "PrivateStaticKeyAgreementKey" },
    { 0x0000000E, "PublicStaticKeyAgreementKey" },
    { 0x0000000F, "PrivateEphemeralKeyAgreementKey" },
    { 0x00000010, "PublicEphemeralKeyAgreementKey" },
    { 0x00000011, "SymmetricAuthorizationKey" },
    { 0x00000012, "PrivateAuthorizationKey" },
    { 0x00000013, "PublicAuthorizationKey" },
};

static const struct kg_enum_name kg_enum_protection_level[] = {
    { 0x00000001, "High" },
    { 0x00000002, "Low" },
};

static const struct kg_enum_name kg_enum_protection_storage_mask[] = {
    { 0x00000001, "Software" },
    { 0x00000002, "Hardware" },
    { 0x00000004, "OnProcessor" },
    { 0x00000008, "OnSystem" },
    { 0x00000010, "OffSystem" },
    { 0x00000020, "Hypervisor" },
    { 0x00000040, "OperatingSystem" },
    { 0x00000080, "Container" },
    { 0x00000100, "OnPremises" },
    { 0x00000200, "OffPremises" },
    { 0x00000400, "SelfManaged" },
    { 0x00000800, "Outsourced" },
    { 0x00001000, "Validated" },
    { 0x00002000, "SameJurisdiction" },
};

#define KG_ENUM_LIST(a) a, (uint32_t)(sizeof(a) / sizeof((a)[0]))

static const struct kg_enum_table kg_enum_tables[] = {
    { 0x420024, false, KG_ENUM_LIST(kg_enum_credential_type) }, /* Credential Type */
    { 0x420041, false, KG_ENUM_LIST(kg_enum_key_compression_type) }, /* Key Compression Type */
    { 0x420042, false, KG_ENUM_LIST(kg_enum_key_format_type) }, /* Key Format Type */
    { 0x42009E, false, KG_ENUM_LIST(kg_enum_wrapping_method) }, /* Wrapping Method */
    { 0x420075, false, KG_ENUM_LIST(kg_enum_recommended_curve) }, /* Recommended Curve */
    { 0x42001D, false, KG_ENUM_LIST(kg_enum_certificate_type) }, /* Certificate Type */
    { 0x4200AE, false, KG_ENUM_LIST(kg_enum_digital_signature_algorithm) }, /* Digital Signature Algorithm */
    { 0x42008A, false, KG_ENUM_LIST(kg_enum_split_key_method) }, /* Split Key Method */
    { 0x420086, false, KG_ENUM_LIST(kg_enum_secret_data_type) }, /* Secret Data Type */
    { 0x420054, false, KG_ENUM_LIST(kg_enum_name_type) }, /* Name Type */
    { 0x420057, false, KG_ENUM_LIST(kg_enum_object_type) }, /* Object Type */
    { 0x420028, false, KG_ENUM_LIST(kg_enum_cryptographic_algorithm) }, /* Cryptographic Algorithm */
    { 0x420011, false, KG_ENUM_LIST(kg_enum_block_cipher_mode) }, /* Block Cipher Mode */
    { 0x42005F, false, KG_ENUM_LIST(kg_enum_padding_method) }, /* Padding Method */
    { 0x420038, false, KG_ENUM_LIST(kg_enum_hashing_algorithm) }, /* Hashing Algorithm */
    { 0x420102, false, KG_ENUM_LIST(kg_enum_mask_generator_hashing_algorithm) }, /* Mask Generator Hashing Algorithm */
    { 0x420083, false, KG_ENUM_LIST(kg_enum_key_role_type) }, /* Key Role Type */
    { 0x42008D, false, KG_ENUM_LIST(kg_enum_state) }, /* State */
    { 0x420082, false, KG_ENUM_LIST(kg_enum_revocation_reason_code) }, /* Revocation Reason Code */
    { 0x42004B, false, KG_ENUM_LIST(kg_enum_link_type) }, /* Link Type */
    { 0x420031, false, KG_ENUM_LIST(kg_enum_derivation_method) }, /* Derivation Method */
    { 0x420019, false, KG_ENUM_LIST(kg_enum_certificate_request_type) }, /* Certificate Request Type */
    { 0x42009B, false, KG_ENUM_LIST(kg_enum_validity_indicator) }, /* Validity Indicator */
    { 0x420074, false, KG_ENUM_LIST(kg_enum_query_function) }, /* Query Function */
    { 0x420012, false, KG_ENUM_LIST(kg_enum_cancellation_result) }, /* Cancellation Result */
    { 0x420070, false, KG_ENUM_LIST(kg_enum_put_function) }, /* Put Function */
    { 0x42005C, false, KG_ENUM_LIST(kg_enum_operation) }, /* Operation */
    { 0x42007F, false, KG_ENUM_LIST(kg_enum_result_status) }, /* Result Status */
    { 0x42007E, false, KG_ENUM_LIST(kg_enum_result_reason) }, /* Result Reason */
    { 0x42000E, false, KG_ENUM_LIST(kg_enum_batch_error_continuation_option) }, /* Batch Error Continuation Option */
    { 0x420098, false, KG_ENUM_LIST(kg_enum_usage_limits_unit) }, /* Usage Limits Unit */
    { 0x4200A3, false, KG_ENUM_LIST(kg_enum_encoding_option) }, /* Encoding Option */
    { 0x4200AC, false, KG_ENUM_LIST(kg_enum_object_group_member) }, /* Object Group Member */
    { 0x4200C1, false, KG_ENUM_LIST(kg_enum_alternative_name_type) }, /* Alternative Name Type */
    { 0x4200BA, false, KG_ENUM_LIST(kg_enum_key_value_location_type) }, /* Key Value Location Type */
    { 0x4200C7, false, KG_ENUM_LIST(kg_enum_attestation_type) }, /* Attestation Type */
    { 0x4200DA, false, KG_ENUM_LIST(kg_enum_rng_algorithm) }, /* RNG Algorithm */
    { 0x4200DB, false, KG_ENUM_LIST(kg_enum_drbg_algorithm) }, /* DRBG Algorithm */
    { 0x4200DC, false, KG_ENUM_LIST(kg_enum_fips186_variation) }, /* FIPS186 Variation */
    { 0x4200E0, false, KG_ENUM_LIST(kg_enum_validation_authority_type) }, /* Validation Authority Type */
    { 0x4200E5, false, KG_ENUM_LIST(kg_enum_validation_type) }, /* Validation Type */
    { 0x4200EC, false, KG_ENUM_LIST(kg_enum_profile_name) }, /* Profile Name */
    { 0x4200F2, false, KG_ENUM_LIST(kg_enum_unwrap_mode) }, /* Unwrap Mode */
    { 0x4200F3, false, KG_ENUM_LIST(kg_enum_destroy_action) }, /* Destroy Action */
    { 0x4200F4, false, KG_ENUM_LIST(kg_enum_shredding_algorithm) }, /* Shredding Algorithm */
    { 0x4200F5, false, KG_ENUM_LIST(kg_enum_rng_mode) }, /* RNG Mode */
    { 0x4200F6, false, KG_ENUM_LIST(kg_enum_client_registration_method) }, /* Client Registration Method */
    { 0x4200F8, false, KG_ENUM_LIST(kg_enum_key_wrap_type) }, /* Key Wrap Type */
    { 0x420101, false, KG_ENUM_LIST(kg_enum_mask_generator) }, /* Mask Generator */
    { 0x42002C, true, KG_ENUM_LIST(kg_enum_cryptographic_usage_mask) }, /* Cryptographic Usage Mask */
    { 0x42008E, true, KG_ENUM_LIST(kg_enum_storage_status_mask) }, /* Storage Status Mask */
    { 0x420158, false, KG_ENUM_LIST(kg_enum_adjustment_type) }, /* Adjustment Type */
    { 0x420007, false, KG_ENUM_LIST(kg_enum_asynchronous_indicator) }, /* Asynchronous Indicator */
    { 0x420160, false, KG_ENUM_LIST(kg_enum_interop_function) }, /* Interop Function */
    { 0x42013A, false, KG_ENUM_LIST(kg_enum_nist_key_type) }, /* NIST Key Type */
    { 0x420145, false, KG_ENUM_LIST(kg_enum_protection_level) }, /* Protection Level */
    { 0x42015E, true, KG_ENUM_LIST(kg_enum_protection_storage_mask) }, /* Protection Storage Mask */
};

const struct kg_enum_table *kg_kmip_enum_table(uint32_t tag)
{
    for (size_t i = 0; i < sizeof(kg_enum_tables) / sizeof(kg_enum_tables[0]); i++) {
        if (kg_enum_tables[i].tag == tag) {
            return &kg_enum_tables[i];
        }
    }
    return NULL;
}
