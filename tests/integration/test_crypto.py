"""Server-side cryptography (KMIP 1.4 sections 4.29-4.34): Encrypt, Decrypt, MAC, MAC
Verify, Sign and Signature Verify done in the HSM, cross-checked with `cryptography`
and Python's hmac. PyKMIP's ProxyKmipClient where it can say it (CBC, MAC, Sign);
byte-level requests (kg_kmip/kg_ttlv) for what it cannot (GCM tag and AAD, MAC
Verify)."""

import hashlib
import hmac
import os
import unittest

from cryptography.hazmat.primitives import hashes, padding as sym_padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.exceptions import InvalidSignature
from kmip.core import enums
from kmip.pie import exceptions as pie_exceptions

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Enum, Bool, Text, Bytes

V14 = (1, 4)
MASK = enums.CryptographicUsageMask
MODE = {"CBC": 0x01, "ECB": 0x02, "GCM": 0x09}  # KMIP 1.4 9.1.3.2.14


def crypto_params(mode=None, padding_method=None, random_iv=None, tag_length=None, alg=None):
    return S("CRYPTOGRAPHIC_PARAMETERS",
             Enum("BLOCK_CIPHER_MODE", MODE[mode]) if mode is not None else None,
             Enum("PADDING_METHOD", padding_method) if padding_method is not None else None,
             Enum("CRYPTOGRAPHIC_ALGORITHM", alg) if alg is not None else None,
             Bool("RANDOM_IV", random_iv) if random_iv is not None else None,
             Int("TAG_LENGTH", tag_length) if tag_length is not None else None)


def op(name, uid, *items):
    return K.BatchItem(name, [Text("UNIQUE_IDENTIFIER", uid)] + [i for i in items if i is not None],
                       K.batch_id())


def field(item, tag):
    f = item.payload.find(tag) if item.payload is not None else None
    return f.value if f is not None else None


class Crypto(GatewayTestCase):
    gw_name = "crypto"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def client(self, identity="admin"):
        return self.gw.pykmip_client(identity)

    def call(self, identity, item):
        return self.gw.request(identity, K.request(item, version=V14)).item

    def assertKmipFailure(self, reason, fn, *args, **kwargs):
        with self.assertRaises(pie_exceptions.KmipOperationFailure) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.reason, reason, str(cm.exception))

    def create_raw(self, alg, bits, usage, activate=True):
        """Create through our own request: PyKMIP's create always adds Encrypt and
        Decrypt to the usage mask, which would hide what the mask checks do."""
        mask = 0
        for m in usage:
            mask |= m.value
        item = self.call("admin", K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", alg.value)),
              K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask)),
              K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", bits)))], K.batch_id()))
        self.assertSuccess(item, "Create %s/%d mask %#x" % (alg, bits, mask))
        uid = item.uid()
        if activate:
            self.assertSuccess(self.call("admin", K.activate(uid, K.batch_id())), "Activate")
        return uid

    def aes_key(self, c, usage=(MASK.ENCRYPT, MASK.DECRYPT), activate=True):
        return self.create_raw(enums.CryptographicAlgorithm.AES, 256, usage, activate)

    def export(self, c, uid):
        """The key's plaintext (admin may export) to cross-check the HSM's results."""
        return c.get(uid).value

    # --- AES-GCM ---------------------------------------------------------------------
    def gcm_encrypt(self, uid, data, aad=None, iv=None):
        item = self.call("admin", op("ENCRYPT", uid,
                                     crypto_params("GCM", random_iv=None if iv else True, tag_length=16),
                                     Bytes("DATA", data),
                                     Bytes("IV_COUNTER_NONCE", iv) if iv else None,
                                     Bytes("AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA", aad)
                                     if aad is not None else None))
        self.assertSuccess(item, "GCM Encrypt")
        return (field(item, "DATA"), field(item, "IV_COUNTER_NONCE"),
                field(item, "AUTHENTICATED_ENCRYPTION_TAG"))

    def gcm_decrypt(self, uid, ct, iv, tag, aad=None, identity="admin"):
        return self.call(identity, op("DECRYPT", uid, crypto_params("GCM", tag_length=16),
                                      Bytes("DATA", ct), Bytes("IV_COUNTER_NONCE", iv),
                                      Bytes("AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA", aad)
                                      if aad is not None else None,
                                      Bytes("AUTHENTICATED_ENCRYPTION_TAG", tag)))

    def test_gcm_round_trip_matches_cryptography(self):
        with self.client() as c:
            uid = self.aes_key(c)
            key = self.export(c, uid)
        data, aad = os.urandom(1000), b"header"
        ct, iv, tag = self.gcm_encrypt(uid, data, aad)
        self.assertEqual(len(iv), 12, "the server drew a 96-bit IV and returned it")
        self.assertEqual(len(tag), 16)
        self.assertEqual(len(ct), len(data))
        self.assertEqual(AESGCM(key).decrypt(iv, ct + tag, aad), data)
        item = self.gcm_decrypt(uid, ct, iv, tag, aad)
        self.assertSuccess(item, "GCM Decrypt")
        self.assertEqual(field(item, "DATA"), data)
        # A client-chosen IV is used as given (and not echoed back).
        my_iv = os.urandom(12)
        ct2, iv2, tag2 = self.gcm_encrypt(uid, b"abc", iv=my_iv)
        self.assertIsNone(iv2)
        self.assertEqual(AESGCM(key).encrypt(my_iv, b"abc", None), ct2 + tag2)

    def test_gcm_tampered_tag_or_data_is_cryptographic_failure(self):
        with self.client() as c:
            uid = self.aes_key(c)
        ct, iv, tag = self.gcm_encrypt(uid, b"attack at dawn" * 10, b"aad")
        bad_tag = bytes([tag[0] ^ 1]) + tag[1:]
        for what, args in (("tag", (ct, iv, bad_tag, b"aad")),
                           ("ciphertext", (bytes([ct[0] ^ 1]) + ct[1:], iv, tag, b"aad")),
                           ("aad", (ct, iv, tag, b"AAD"))):
            item = self.gcm_decrypt(uid, *args)
            self.assertFailure(item, "CRYPTOGRAPHIC_FAILURE", "tampered " + what)
            self.assertIsNone(field(item, "DATA"), "no partial plaintext")
        self.assertFailure(self.call("admin", op("DECRYPT", uid, crypto_params("GCM"), Bytes("DATA", ct),
                                                 Bytes("IV_COUNTER_NONCE", iv))),
                           "MISSING_DATA", "GCM Decrypt without a tag")

    def test_gcm_vector_nist(self):
        """NIST GCM test case 16 key (AES-256), through Register: the HSM's GCM must
        equal the reference."""
        key = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
        iv = bytes.fromhex("cafebabefacedbaddecaf888")
        pt = bytes.fromhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                           "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
        aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
        want_ct = bytes.fromhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                                "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
        want_tag = bytes.fromhex("76fc6ece0f4e1768cddf8853bb2d551b")
        from kmip.pie import objects
        with self.client() as c:
            uid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, key,
                                                  masks=[MASK.ENCRYPT, MASK.DECRYPT]))
            c.activate(uid)
        ct, _, tag = self.gcm_encrypt(uid, pt, aad, iv=iv)
        self.assertEqual(ct, want_ct)
        self.assertEqual(tag, want_tag)

    # --- AES-CBC through PyKMIP ------------------------------------------------------
    def test_cbc_round_trip_pykmip(self):
        params = {"block_cipher_mode": enums.BlockCipherMode.CBC,
                  "padding_method": enums.PaddingMethod.PKCS5,
                  "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
                  "random_iv": True}
        with self.client() as c:
            uid = self.aes_key(c)
            key = self.export(c, uid)
            data = b"sixteen byte blk" * 3 + b"tail"
            ct, iv = c.encrypt(data, uid=uid, cryptographic_parameters=params)
            self.assertEqual(len(iv), 16)
            self.assertEqual(len(ct), 64, "PKCS#5 padded to the next block")
            d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
            unpadder = sym_padding.PKCS7(128).unpadder()
            self.assertEqual(unpadder.update(d.update(ct) + d.finalize()) + unpadder.finalize(), data)
            params.pop("random_iv")
            self.assertEqual(c.decrypt(ct, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv),
                             data)
            # Wrong IV length is the client's mistake.
            self.assertKmipFailure(enums.ResultReason.INVALID_FIELD, c.decrypt, ct, uid=uid,
                                   cryptographic_parameters=params, iv_counter_nonce=iv[:8])

    def test_usage_mask_gates_each_direction(self):
        params = {"block_cipher_mode": enums.BlockCipherMode.CBC,
                  "padding_method": enums.PaddingMethod.PKCS5, "random_iv": True}
        with self.client() as c:
            enc_only = self.aes_key(c, usage=[MASK.ENCRYPT])
            ct, iv = c.encrypt(b"data", uid=enc_only, cryptographic_parameters=params)
            params.pop("random_iv")
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.decrypt, ct, uid=enc_only,
                                   cryptographic_parameters=params, iv_counter_nonce=iv)
            dec_only = self.aes_key(c, usage=[MASK.DECRYPT])
            params["random_iv"] = True
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.encrypt, b"data",
                                   uid=dec_only, cryptographic_parameters=params)

    def test_pre_active_key_does_not_encrypt(self):
        with self.client() as c:
            uid = self.aes_key(c, activate=False)
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.encrypt, b"x", uid=uid,
                                   cryptographic_parameters={
                                       "block_cipher_mode": enums.BlockCipherMode.CBC,
                                       "random_iv": True})

    def test_policy_refuses_operation(self):
        """vsphere's operations list has no Encrypt: Permission Denied before any HSM work."""
        uid = self.create_key("vsphere")
        item = self.call("vsphere", op("ENCRYPT", uid, crypto_params("CBC", random_iv=True),
                                       Bytes("DATA", b"x")))
        self.assertFailure(item, "PERMISSION_DENIED", "Encrypt by a group without it")

    def test_streaming_and_oversized_refused(self):
        with self.client() as c:
            uid = self.aes_key(c)
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("CBC", random_iv=True),
                                     Bytes("DATA", b"x"), Bool("INIT_INDICATOR", True)))
        self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "Init Indicator")
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("CBC", random_iv=True),
                                     Bytes("DATA", b"x"), Text("CORRELATION_VALUE", "c")))
        self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "Correlation Value")
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("CBC")))
        self.assertFailure(item, "MISSING_DATA", "no Data")
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("ECB", random_iv=True),
                                     Bytes("DATA", b"x" * 16)))
        self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "ECB")

    def test_key_parameters_default_and_conflicts(self):
        """No Cryptographic Parameters in the request: the key's own attribute (lowest
        index) is used; none at all is Missing Data."""
        with self.client() as c:
            uid = self.aes_key(c)
        no_params = op("ENCRYPT", uid, Bytes("DATA", b"x"))
        self.assertFailure(self.call("admin", no_params), "MISSING_DATA", "no parameters anywhere")
        item = self.call("admin", K.BatchItem("ADD_ATTRIBUTE", [
            Text("UNIQUE_IDENTIFIER", uid),
            K.attr("Cryptographic Parameters", S("ATTRIBUTE_VALUE", Enum("BLOCK_CIPHER_MODE", MODE["GCM"]),
                                                 Bool("RANDOM_IV", True)))], K.batch_id()))
        self.assertSuccess(item, "Add Attribute Cryptographic Parameters")
        item = self.call("admin", op("ENCRYPT", uid, Bytes("DATA", b"x")))
        self.assertSuccess(item, "Encrypt with the key's stored parameters")
        self.assertEqual(len(field(item, "IV_COUNTER_NONCE")), 12)
        self.assertIsNotNone(field(item, "AUTHENTICATED_ENCRYPTION_TAG"), "GCM was used")
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("GCM", random_iv=True), Bytes("DATA", b"x"),
                                     Bytes("IV_COUNTER_NONCE", os.urandom(12))))
        self.assertFailure(item, "INVALID_FIELD", "Random IV and an IV together")
        item = self.call("admin", op("ENCRYPT", uid, S("CRYPTOGRAPHIC_PARAMETERS",
                                                       Enum("BLOCK_CIPHER_MODE", MODE["GCM"]),
                                                       Bool("RANDOM_IV", True), Int("IV_LENGTH", 128)),
                                     Bytes("DATA", b"x")))
        self.assertSuccess(item, "IV Length 128 bits")
        self.assertEqual(len(field(item, "IV_COUNTER_NONCE")), 16)
        item = self.call("admin", op("ENCRYPT", uid, S("CRYPTOGRAPHIC_PARAMETERS",
                                                       Enum("BLOCK_CIPHER_MODE", MODE["GCM"]),
                                                       Bool("RANDOM_IV", True), Int("IV_LENGTH", 100)),
                                     Bytes("DATA", b"x")))
        self.assertFailure(item, "INVALID_FIELD", "IV Length not whole bytes")
        item = self.call("admin", op("ENCRYPT", uid, S("CRYPTOGRAPHIC_PARAMETERS",
                                                       Enum("BLOCK_CIPHER_MODE", MODE["GCM"]),
                                                       Int("SALT_LENGTH", 20)), Bytes("DATA", b"x")))
        self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "a parameter we cannot honour")

    def test_deactivated_key_decrypts_only(self):
        with self.client() as c:
            uid = self.aes_key(c)
        ct, iv, tag = self.gcm_encrypt(uid, b"old data")
        self.assertSuccess(self.call("admin", K.revoke(uid, bid=K.batch_id())), "Revoke (deactivate)")
        item = self.gcm_decrypt(uid, ct, iv, tag)
        self.assertSuccess(item, "a Deactivated key still decrypts")
        self.assertEqual(field(item, "DATA"), b"old data")
        item = self.call("admin", op("ENCRYPT", uid, crypto_params("GCM", random_iv=True), Bytes("DATA", b"x")))
        self.assertFailure(item, "PERMISSION_DENIED", "a Deactivated key protects nothing new")

    # --- HMAC ------------------------------------------------------------------------
    def hmac_key(self, c, alg=enums.CryptographicAlgorithm.HMAC_SHA256, bits=256,
                 usage=(MASK.MAC_GENERATE, MASK.MAC_VERIFY)):
        return self.create_raw(alg, bits, usage)

    def test_hmac_matches_python(self):
        for alg, bits, h in ((enums.CryptographicAlgorithm.HMAC_SHA256, 256, hashlib.sha256),
                             (enums.CryptographicAlgorithm.HMAC_SHA384, 384, hashlib.sha384),
                             (enums.CryptographicAlgorithm.HMAC_SHA512, 512, hashlib.sha512),
                             (enums.CryptographicAlgorithm.HMAC_SHA256, 320, hashlib.sha256)):
            with self.client() as c:
                uid = self.hmac_key(c, alg, bits)
                data = os.urandom(300)
                got_uid, mac = c.mac(data, uid=uid, algorithm=alg)
                self.assertEqual(got_uid, uid)
                self.assertEqual(len(mac), h().digest_size)
                key = self.export(c, uid)
                self.assertEqual(len(key), bits // 8)
                self.assertEqual(mac, hmac.new(key, data, h).digest(), "HMAC of %s" % alg)
            item = self.call("admin", op("MAC_VERIFY", uid, None, Bytes("DATA", data), Bytes("MAC_DATA", mac)))
            self.assertSuccess(item, "MAC Verify")
            self.assertEqual(field(item, "VALIDITY_INDICATOR"), enums.ValidityIndicator.VALID.value)
            bad = bytes([mac[0] ^ 0x80]) + mac[1:]
            for wrong in (bad, mac[:-1], b""):
                item = self.call("admin", op("MAC_VERIFY", uid, None, Bytes("DATA", data),
                                             Bytes("MAC_DATA", wrong)))
                self.assertSuccess(item, "MAC Verify of a wrong MAC")
                self.assertEqual(field(item, "VALIDITY_INDICATOR"), enums.ValidityIndicator.INVALID.value)

    def test_hmac_known_key_through_register(self):
        """A known 256-bit key Registered, its MAC compared with Python's hmac. (RFC 4231's
        vectors use 4-, 20-, 25- or 131-byte keys, outside what Create/Register take; the
        RFC 4231 case 6 known answer is in tests/unit/kg_p11_crypto_test.c.) 33 bytes too:
        not a multiple of 8 bytes, so SoftHSM pads it under the MWK and Get must trim."""
        from kmip.pie import objects
        data = b"what do ya want for nothing?"
        for alg, key, h in ((enums.CryptographicAlgorithm.HMAC_SHA256, bytes(range(32)), hashlib.sha256),
                            (enums.CryptographicAlgorithm.HMAC_SHA256, bytes(range(1, 34)), hashlib.sha256),
                            (enums.CryptographicAlgorithm.HMAC_SHA384, os.urandom(48), hashlib.sha384),
                            (enums.CryptographicAlgorithm.HMAC_SHA512, os.urandom(64), hashlib.sha512)):
            with self.client() as c:
                uid = c.register(objects.SymmetricKey(alg, len(key) * 8, key,
                                                      masks=[MASK.MAC_GENERATE]))
                c.activate(uid)
                _, mac = c.mac(data, uid=uid, algorithm=alg)
                self.assertEqual(mac, hmac.new(key, data, h).digest(), "%s, %d bytes" % (alg, len(key)))
                self.assertEqual(self.export(c, uid), key, "Get returns the registered key")

    def test_hmac_register_lengths_refused(self):
        """Below the hash length, above 512 bits, or a length that is not the key's own."""
        from kmip.pie import objects
        A = enums.CryptographicAlgorithm
        with self.client() as c:
            for alg, nbytes in ((A.HMAC_SHA256, 31), (A.HMAC_SHA384, 47), (A.HMAC_SHA512, 32),
                                (A.HMAC_SHA256, 65), (A.HMAC_SHA256, 16)):
                self.assertKmipFailure(enums.ResultReason.INVALID_FIELD, c.register,
                                       objects.SymmetricKey(alg, nbytes * 8, os.urandom(nbytes),
                                                            masks=[MASK.MAC_GENERATE]))
            # HMAC-SHA1 keys are not taken (only SHA-256/384/512), as in Create.
            self.assertKmipFailure(enums.ResultReason.FEATURE_NOT_SUPPORTED, c.register,
                                   objects.SymmetricKey(A.HMAC_SHA1, 256, os.urandom(32),
                                                        masks=[MASK.MAC_GENERATE]))
        # A Cryptographic Length that is not a multiple of 8 (nor the key's): refused.
        item = self.call("admin", K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", MASK.MAC_GENERATE.value))),
            S("SYMMETRIC_KEY", S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", 0x01),
                                 S("KEY_VALUE", Bytes("KEY_MATERIAL", os.urandom(33))),
                                 Enum("CRYPTOGRAPHIC_ALGORITHM", A.HMAC_SHA256.value),
                                 Int("CRYPTOGRAPHIC_LENGTH", 260)))], K.batch_id()))
        self.assertFailure(item, "INVALID_FIELD", "HMAC key of 260 bits")

    def test_hmac_usage_and_lengths(self):
        with self.client() as c:
            uid = self.hmac_key(c, usage=[MASK.MAC_VERIFY])
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.mac, b"d", uid=uid,
                                   algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
            # A multiple of 8 bits, from the hash length (the HSM's floor) to 512.
            for alg, bits in ((enums.CryptographicAlgorithm.HMAC_SHA256, 248),
                              (enums.CryptographicAlgorithm.HMAC_SHA256, 260),
                              (enums.CryptographicAlgorithm.HMAC_SHA256, 520),
                              (enums.CryptographicAlgorithm.HMAC_SHA512, 384)):
                self.assertKmipFailure(enums.ResultReason.INVALID_FIELD, c.create, alg, bits,
                                       cryptographic_usage_mask=[MASK.MAC_GENERATE])
            # HMAC-SHA1 keys are not made here (only SHA-256/384/512).
            self.assertKmipFailure(enums.ResultReason.FEATURE_NOT_SUPPORTED, c.create,
                                   enums.CryptographicAlgorithm.HMAC_SHA1, 256,
                                   cryptographic_usage_mask=[MASK.MAC_GENERATE])
            # Even with the MAC Generate bit, an AES key is no HMAC key.
            aes = self.aes_key(c, usage=[MASK.ENCRYPT, MASK.MAC_GENERATE])
            self.assertKmipFailure(enums.ResultReason.INVALID_FIELD, c.mac, b"d", uid=aes,
                                   algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
            sha256 = self.hmac_key(c)
            self.assertKmipFailure(enums.ResultReason.INVALID_FIELD, c.mac, b"d", uid=sha256,
                                   algorithm=enums.CryptographicAlgorithm.HMAC_SHA512)

    # --- Sign / Signature Verify -----------------------------------------------------
    def key_pair(self, c, alg, length, curve=None):
        try:
            kwargs = {}
            if curve is not None:
                kwargs["public_usage_mask"] = [MASK.VERIFY]
                kwargs["private_usage_mask"] = [MASK.SIGN]
            else:
                kwargs["public_usage_mask"] = [MASK.VERIFY]
                kwargs["private_usage_mask"] = [MASK.SIGN]
            pub, priv = c.create_key_pair(alg, length, **kwargs)
        except pie_exceptions.KmipOperationFailure as e:
            if e.reason in (enums.ResultReason.OPERATION_NOT_SUPPORTED,
                            enums.ResultReason.FEATURE_NOT_SUPPORTED):
                self.skipTest("Create Key Pair not supported yet (key-pair helper): %s" % e)
            raise
        c.activate(pub)
        c.activate(priv)
        return pub, priv

    def public_key(self, c, uid):
        return serialization.load_der_public_key(c.get(uid).value)

    def test_rsa_sign_verify(self):
        with self.client() as c:
            pub, priv = self.key_pair(c, enums.CryptographicAlgorithm.RSA, 2048)
            pk = self.public_key(c, pub)
            data = b"to be signed" * 50
            for pad_name, pad, verifier in (
                    ("PSS", enums.PaddingMethod.PSS,
                     padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)),
                    ("PKCS1 v1.5", enums.PaddingMethod.PKCS1v15, padding.PKCS1v15())):
                params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
                          "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
                          "padding_method": pad}
                sig = c.sign(data, uid=priv, cryptographic_parameters=params)
                pk.verify(sig, data, verifier, hashes.SHA256())  # raises if wrong
                self.assertEqual(c.signature_verify(data, sig, uid=pub, cryptographic_parameters=params),
                                 enums.ValidityIndicator.VALID, pad_name)
                bad = bytes([sig[0] ^ 1]) + sig[1:]
                self.assertEqual(c.signature_verify(data, bad, uid=pub, cryptographic_parameters=params),
                                 enums.ValidityIndicator.INVALID, pad_name)
            # The public key has no Sign bit; the private key no Verify bit.
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.sign, data, uid=pub,
                                   cryptographic_parameters=params)

    def test_ecdsa_sign_is_der_and_verifies(self):
        with self.client() as c:
            pub, priv = self.key_pair(c, enums.CryptographicAlgorithm.EC, 256, curve=True)
            pk = self.public_key(c, pub)
            data = b"ecdsa input"
            params = {"digital_signature_algorithm": enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA256}
            sig = c.sign(data, uid=priv, cryptographic_parameters=params)
            self.assertEqual(sig[0], 0x30, "DER SEQUENCE, not raw r||s")
            pk.verify(sig, data, ec.ECDSA(hashes.SHA256()))
            self.assertEqual(c.signature_verify(data, sig, uid=pub, cryptographic_parameters=params),
                             enums.ValidityIndicator.VALID)
            with self.assertRaises(InvalidSignature):
                pk.verify(sig, data + b"x", ec.ECDSA(hashes.SHA256()))
            self.assertEqual(c.signature_verify(data + b"x", sig, uid=pub, cryptographic_parameters=params),
                             enums.ValidityIndicator.INVALID)
            self.assertEqual(c.signature_verify(data, b"\x30\x00", uid=pub, cryptographic_parameters=params),
                             enums.ValidityIndicator.INVALID)


if __name__ == "__main__":
    unittest.main()
