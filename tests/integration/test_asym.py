"""Asymmetric keys in every Key Format Type kmipgw takes (KMIP 1.4 section 2.1.7, 9.1.3.2.3):
Register of private keys (PKCS#1, PKCS#8, Transparent RSA/DSA Private Key) and public keys
(X.509, PKCS#1, Transparent RSA/DSA Public Key), and Get in the registered format by default
or in another one on request. Keys are made with `cryptography`; what comes back is compared
byte for byte, and a registered RSA key signs in the HSM with a signature `cryptography`
verifies. The module writes its own policy:
  admin   everything, plaintext export
  backup  may register private keys, export wrapped only
  split   (certificate OU vsphere) plaintext symmetric and public keys, private keys wrapped only
"""

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
from kmip.core import enums

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Enum, Text, Bytes, BigInt

POLICY = """version: 1
no_ou: deny
ambiguous: deny
groups:
  admin:
    ou: admin
    operations: all
    create:
      object_types: [Symmetric Key, Private Key, Public Key]
      algorithms: [AES, RSA, DSA, EC, ECDSA]
    export: plaintext
    scope: all
  backup:
    ou: backup
    operations: [Discover Versions, Register, Get, Get Attributes]
    create:
      object_types: [Private Key]
      algorithms: [RSA]
    export: wrapped
    scope: own
  split:
    ou: vsphere
    operations: [Discover Versions, Register, Get, Get Attributes]
    create:
      object_types: [Symmetric Key, Private Key, Public Key]
      algorithms: [AES, RSA]
    export:
      Symmetric Key: plaintext
      Public Key: plaintext
      Private Key: wrapped
    scope: own
  resident:
    ou: unlisted
    operations: [Discover Versions, Register, Get]
    create:
      object_types: [Private Key]
      algorithms: [RSA]
    export: plaintext
    residency: hsm
    scope: own
"""

V14 = (1, 4)
V21 = (2, 1)
PKCS_1, PKCS_8, X_509 = 0x03, 0x04, 0x05
T_DSA_PRIVATE, T_DSA_PUBLIC, T_RSA_PRIVATE, T_RSA_PUBLIC = 0x08, 0x09, 0x0A, 0x0B
RSA, DSA = 0x04, 0x05
SIGN, VERIFY = 0x01, 0x02

DER = serialization.Encoding.DER
PKCS8_FMT = serialization.PrivateFormat.PKCS8
TRAD_FMT = serialization.PrivateFormat.TraditionalOpenSSL
NOENC = serialization.NoEncryption()


def rsa_parts(key):
    n = key.private_numbers()
    return [("MODULUS", n.public_numbers.n), ("PRIVATE_EXPONENT", n.d),
            ("PUBLIC_EXPONENT", n.public_numbers.e), ("P", n.p), ("Q", n.q),
            ("PRIME_EXPONENT_P", n.dmp1), ("PRIME_EXPONENT_Q", n.dmq1), ("CRT_COEFFICIENT", n.iqmp)]


def dsa_private_parts(key):
    n = key.private_numbers()
    p = n.public_numbers.parameter_numbers
    return [("P", p.p), ("Q", p.q), ("G", p.g), ("X", n.x)]


def dsa_public_parts(pub):
    n = pub.public_numbers()
    p = n.parameter_numbers
    return [("P", p.p), ("Q", p.q), ("G", p.g), ("Y", n.y)]


def key_value(material):
    """Key Value of DER bytes, or of [(tag, int)] Big Integers."""
    if isinstance(material, bytes):
        return S("KEY_VALUE", Bytes("KEY_MATERIAL", material))
    return S("KEY_VALUE", S("KEY_MATERIAL", *[BigInt(t, v) for t, v in material]))


def register(object_type, fmt, material, alg=None, length=None, mask=SIGN, template=()):
    block = [Enum("KEY_FORMAT_TYPE", fmt), key_value(material)]
    if alg is not None:
        block.append(Enum("CRYPTOGRAPHIC_ALGORITHM", alg))
    if length is not None:
        block.append(Int("CRYPTOGRAPHIC_LENGTH", length))
    return K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", object_type),
        S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask)), *template),
        S(object_type, S("KEY_BLOCK", *block))], K.batch_id())


def get(uid, fmt=None):
    extra = [Enum("KEY_FORMAT_TYPE", fmt)] if fmt is not None else []
    return K.BatchItem("GET", [Text("UNIQUE_IDENTIFIER", uid)] + extra, K.batch_id())


class AsymmetricFormats(GatewayTestCase):
    gw_name = "asym"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            path = cls.gw.get_config("policy", "path") or "policy.yaml"
            with open(path if os.path.isabs(path) else cls.gw.path(path), "w") as f:
                f.write(POLICY)
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise
        cls.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cls.dsa = dsa.generate_private_key(key_size=2048)

    # --- helpers ---------------------------------------------------------------------
    def call(self, item, identity="admin", version=V14):
        return self.gw.request(identity, K.request(item, version=version)).item

    def registered(self, *args, identity="admin", **kwargs):
        item = self.call(register(*args, **kwargs), identity)
        self.assertSuccess(item, "Register %r" % (args[:2],))
        return item.uid()

    def got(self, uid, fmt=None, object_type="PRIVATE_KEY", version=V14):
        """(Key Format Type, Key Material) of a Get: bytes, or {tag name: int}."""
        item = self.call(get(uid, fmt), version=version)
        self.assertSuccess(item, "Get %s format %r" % (uid, fmt))
        block = item.payload.path(object_type, "KEY_BLOCK")
        self.assertIsNotNone(block, "no %s Key Block" % object_type)
        material = block.path("KEY_VALUE", "KEY_MATERIAL")
        if isinstance(material.value, list):
            from kg_ttlv import tag_name
            value = {tag_name(c.tag): c.value for c in material.value}
        else:
            value = material.value
        return block.find("KEY_FORMAT_TYPE").value, value

    def sign_and_verify(self, priv_uid, key):
        self.assertSuccess(self.call(K.activate(priv_uid, K.batch_id())), "Activate")
        data = b"registered keys sign" * 10
        with self.gw.pykmip_client("admin") as c:
            sig = c.sign(data, uid=priv_uid, cryptographic_parameters={
                "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
                "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
                "padding_method": enums.PaddingMethod.PKCS1v15})
        key.public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256())  # raises if wrong

    # --- RSA private keys ----------------------------------------------------------------
    def test_rsa_private_each_format_registers_signs_and_round_trips(self):
        key = self.rsa
        pkcs1 = key.private_bytes(DER, TRAD_FMT, NOENC)
        pkcs8 = key.private_bytes(DER, PKCS8_FMT, NOENC)
        numbers = {t: v for t, v in rsa_parts(key)}
        for fmt, material, default in ((PKCS_1, pkcs1, pkcs1), (PKCS_8, pkcs8, pkcs8),
                                       (T_RSA_PRIVATE, rsa_parts(key), numbers)):
            with self.subTest(format=fmt):
                uid = self.registered("PRIVATE_KEY", fmt, material, RSA, 2048)
                # No Key Format Type in the Get: the registered one (KMIP 2.1 6.1.22).
                self.assertEqual(self.got(uid), (fmt, default))
                self.assertEqual(self.got(uid, PKCS_1), (PKCS_1, pkcs1))
                self.assertEqual(self.got(uid, PKCS_8), (PKCS_8, pkcs8))
                self.assertEqual(self.got(uid, T_RSA_PRIVATE), (T_RSA_PRIVATE, numbers))
                # Not a private key format, or one of another algorithm.
                for bad in (X_509, T_DSA_PRIVATE, 0x01):
                    self.assertFailure(self.call(get(uid, bad)), "KEY_FORMAT_TYPE_NOT_SUPPORTED",
                                       "Get format %#x" % bad)
                self.sign_and_verify(uid, key)

    def test_registered_key_format_type_attribute(self):
        uid = self.registered("PRIVATE_KEY", PKCS_1, self.rsa.private_bytes(DER, TRAD_FMT, NOENC), RSA, 2048)
        item = self.call(K.get_attributes(uid, [], K.batch_id()), version=V21)
        self.assertSuccess(item, "Get Attributes 2.1")
        found = item.payload.path("ATTRIBUTES", "KEY_FORMAT_TYPE")
        self.assertIsNotNone(found, "no Key Format Type: %s" % item.describe())
        self.assertEqual(found.value, PKCS_1)
        formats = [c for c in item.payload.find("ATTRIBUTES").value if c.tag == found.tag]
        self.assertEqual(len(formats), 1, "Key Format Type listed more than once")

    def test_wrapped_get_of_registered_private_key(self):
        wrapper = self.call(K.create_aes256(K.batch_id(), usage_mask=0x10 | 0x20))
        self.assertSuccess(wrapper, "Create wrapping key")
        self.assertSuccess(self.call(K.activate(wrapper.uid(), K.batch_id())), "Activate")
        uid = self.registered("PRIVATE_KEY", PKCS_1, self.rsa.private_bytes(DER, TRAD_FMT, NOENC), RSA, 2048)
        spec = S("KEY_WRAPPING_SPECIFICATION", Enum("WRAPPING_METHOD", 0x01),
                 S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", wrapper.uid()),
                   S("CRYPTOGRAPHIC_PARAMETERS", Enum("BLOCK_CIPHER_MODE", 0x0C))),
                 Enum("ENCODING_OPTION", 0x01))
        item = self.call(K.BatchItem("GET", [Text("UNIQUE_IDENTIFIER", uid), spec], K.batch_id()))
        self.assertSuccess(item, "wrapped Get")
        block = item.payload.path("PRIVATE_KEY", "KEY_BLOCK")
        self.assertEqual(block.find("KEY_FORMAT_TYPE").value, PKCS_8)
        self.assertIsNotNone(block.find("KEY_WRAPPING_DATA"))

    def test_policy_wrapped_only_refuses_plaintext_private_key(self):
        uid = self.registered("PRIVATE_KEY", PKCS_8, self.rsa.private_bytes(DER, PKCS8_FMT, NOENC), RSA, 2048,
                              identity="backup")
        for fmt in (None, PKCS_1, PKCS_8):
            self.assertFailure(self.call(get(uid, fmt), "backup"), "PERMISSION_DENIED", "plaintext Get %r" % fmt)
        # The same key is plaintext to a group whose policy allows it.
        self.assertEqual(self.got(uid)[0], PKCS_8)

    def test_policy_per_object_type_keeps_private_keys_wrapped(self):
        """export per object type: the same group gets its symmetric and public keys in the clear,
        its private key not."""
        priv = self.registered("PRIVATE_KEY", PKCS_1, self.rsa.private_bytes(DER, TRAD_FMT, NOENC), RSA, 2048,
                               identity="vsphere")
        pub = self.registered("PUBLIC_KEY", X_509, self.rsa.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo), RSA, 2048, mask=VERIFY, identity="vsphere")
        self.assertSuccess(self.call(get(pub), "vsphere"), "public key Get")
        for fmt in (None, PKCS_1, PKCS_8, T_RSA_PRIVATE):
            self.assertFailure(self.call(get(priv, fmt), "vsphere"), "PERMISSION_DENIED", "private Get %r" % fmt)

    def test_residency_hsm_group_cannot_register_a_private_key(self):
        """A registered private key would be stored wrapped; a residency hsm group was
        promised its keys never leave the HSM: Permission Denied, nothing stored."""
        der = self.rsa.private_bytes(DER, PKCS8_FMT, NOENC)
        item = self.call(register("PRIVATE_KEY", PKCS_8, der, RSA, 2048), identity="unlisted")
        self.assertFailure(item, "PERMISSION_DENIED", "Register into a residency hsm group")
        self.assertIn("residency hsm", item.describe())

    def test_malformed_or_mismatched_private_keys_refused(self):
        pkcs1 = self.rsa.private_bytes(DER, TRAD_FMT, NOENC)
        pkcs8 = self.rsa.private_bytes(DER, PKCS8_FMT, NOENC)
        cases = [
            ("truncated DER", PKCS_1, pkcs1[:-5], RSA, 2048, "INVALID_FIELD"),
            ("trailing bytes", PKCS_1, pkcs1 + b"\x00", RSA, 2048, "INVALID_FIELD"),
            ("PKCS#8 given as PKCS#1", PKCS_1, pkcs8, RSA, 2048, "INVALID_FIELD"),
            ("PKCS#1 given as PKCS#8", PKCS_8, pkcs1, RSA, 2048, "INVALID_FIELD"),
            ("garbage", PKCS_8, os.urandom(300), RSA, 2048, "INVALID_FIELD"),
            ("length not the key's", PKCS_1, pkcs1, RSA, 1024, "INVALID_FIELD"),
            ("algorithm not the key's", PKCS_8, pkcs8, DSA, 2048, "INVALID_FIELD"),
            ("X.509 is no private key format", X_509, pkcs8, RSA, 2048, "KEY_FORMAT_TYPE_NOT_SUPPORTED"),
            ("missing CRT values", T_RSA_PRIVATE, rsa_parts(self.rsa)[:3], RSA, 2048, "MISSING_DATA"),
            ("components out of order", T_RSA_PRIVATE, rsa_parts(self.rsa)[1:2] + rsa_parts(self.rsa)[:1] +
             rsa_parts(self.rsa)[2:], RSA, 2048, "INVALID_FIELD"),
            ("one component too many", T_DSA_PRIVATE, dsa_private_parts(self.dsa) + [("Y", 5)], DSA, 2048,
             "INVALID_FIELD"),
            ("negative component", T_RSA_PRIVATE,
             [(t, -v if t == "P" else v) for t, v in rsa_parts(self.rsa)], RSA, 2048, "INVALID_FIELD"),
        ]
        for what, fmt, material, alg, length, reason in cases:
            with self.subTest(what):
                self.assertFailure(self.call(register("PRIVATE_KEY", fmt, material, alg, length)), reason, what)
        # The template's length is checked too.
        item = self.call(register("PRIVATE_KEY", PKCS_1, pkcs1, template=[
            K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 4096))]))
        self.assertFailure(item, "INVALID_FIELD", "template length")

    def test_ec_private_key_registers_and_signs(self):
        """PKCS#8 EC (P-256): stored wrapped, signs in the HSM; not returned in the clear (its
        PKCS#8 carries the public point, which the HSM does not give back)."""
        from cryptography.hazmat.primitives.asymmetric import ec
        key = ec.generate_private_key(ec.SECP256R1())
        pkcs8 = key.private_bytes(DER, PKCS8_FMT, NOENC)
        uid = self.registered("PRIVATE_KEY", PKCS_8, pkcs8, 0x1A, 256)
        self.assertFailure(self.call(get(uid)), "KEY_FORMAT_TYPE_NOT_SUPPORTED", "plaintext EC")
        self.assertSuccess(self.call(K.activate(uid, K.batch_id())), "Activate")
        data = b"ec registered"
        with self.gw.pykmip_client("admin") as c:
            sig = c.sign(data, uid=uid, cryptographic_parameters={
                "digital_signature_algorithm": enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA256})
        key.public_key().verify(sig, data, ec.ECDSA(hashes.SHA256()))  # raises if wrong
        # P-224 is not a curve kmipgw takes.
        other = ec.generate_private_key(ec.SECP224R1()).private_bytes(DER, PKCS8_FMT, NOENC)
        self.assertFailure(self.call(register("PRIVATE_KEY", PKCS_8, other)), "FEATURE_NOT_SUPPORTED", "P-224")

    # --- DSA -------------------------------------------------------------------------
    def test_dsa_pair_registered_and_read_back(self):
        key = self.dsa
        pub = key.public_key()
        pkcs8 = key.private_bytes(DER, PKCS8_FMT, NOENC)
        spki = pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        priv_numbers = {t: v for t, v in dsa_private_parts(key)}
        pub_numbers = {t: v for t, v in dsa_public_parts(pub)}

        priv = self.registered("PRIVATE_KEY", T_DSA_PRIVATE, dsa_private_parts(key), DSA, 2048)
        self.assertEqual(self.got(priv), (T_DSA_PRIVATE, priv_numbers))
        self.assertEqual(self.got(priv, PKCS_8), (PKCS_8, pkcs8))
        self.assertFailure(self.call(get(priv, PKCS_1)), "KEY_FORMAT_TYPE_NOT_SUPPORTED", "PKCS#1 of DSA")
        priv8 = self.registered("PRIVATE_KEY", PKCS_8, pkcs8, DSA, 2048)
        self.assertEqual(self.got(priv8), (PKCS_8, pkcs8))
        self.assertEqual(self.got(priv8, T_DSA_PRIVATE), (T_DSA_PRIVATE, priv_numbers))

        tpub = self.registered("PUBLIC_KEY", T_DSA_PUBLIC, dsa_public_parts(pub), DSA, 2048, mask=VERIFY)
        self.assertEqual(self.got(tpub, object_type="PUBLIC_KEY"), (T_DSA_PUBLIC, pub_numbers))
        self.assertEqual(self.got(tpub, X_509, object_type="PUBLIC_KEY"), (X_509, spki))
        xpub = self.registered("PUBLIC_KEY", X_509, spki, DSA, 2048, mask=VERIFY)
        self.assertEqual(self.got(xpub, object_type="PUBLIC_KEY"), (X_509, spki))
        self.assertEqual(self.got(xpub, T_DSA_PUBLIC, object_type="PUBLIC_KEY"), (T_DSA_PUBLIC, pub_numbers))
        self.assertFailure(self.call(get(xpub, PKCS_1)), "KEY_FORMAT_TYPE_NOT_SUPPORTED", "PKCS#1 of DSA public")
        self.assertFailure(self.call(get(xpub, T_RSA_PUBLIC)), "KEY_FORMAT_TYPE_NOT_SUPPORTED", "RSA form of DSA")

    def test_dsa_512_public_key_of_the_baseline_vector(self):
        """The Transparent DSA Public Key of OASIS BL-M-12-21 (a 512-bit p), Big Integers
        padded as the vector has them, comes back in the same encoding."""
        parts = [("P", int("fca682ce8e12caba26efccf7110e526db078b05edecbcd1eb4a208f3ae1617ae01f35b91a47e6df6"
                           "3413c5e12ed0899bcd132acd50d99151bdc43ee737592e17", 16)),
                 ("Q", int("962eddcc369cba8ebb260ee6b6a126d9346e38c5", 16)),
                 ("G", int("678471b27a9cf44ee91a49c5147db1a9aaf244f05a434d6486931d2d14271b9e35030b71fd73da17"
                           "9069b32e2935630e1c2062354d0da20a6c416e50be794ca4", 16)),
                 ("Y", int("b3cb74d988dea7160a64a4edbb7f70404fa4c08a4208c19d76357a6a9df200cce79faecb22e3419b"
                           "e9b01128cbd998a2d9307101705e4a952462f34728ac5fcf", 16))]
        uid = self.registered("PUBLIC_KEY", T_DSA_PUBLIC, parts, DSA, 512, mask=VERIFY)
        self.assertEqual(self.got(uid, object_type="PUBLIC_KEY"), (T_DSA_PUBLIC, dict(parts)))
        item = self.call(get(uid))
        p = item.payload.path("PUBLIC_KEY", "KEY_BLOCK", "KEY_VALUE", "KEY_MATERIAL", "P")
        from kg_ttlv import encode
        self.assertEqual(len(encode(p)), 8 + 72, "P is 64 bytes with its top bit set: 72 on the wire")

    # --- RSA public keys ---------------------------------------------------------------
    def test_rsa_public_transparent_and_registered_format(self):
        pub = self.rsa.public_key()
        n = pub.public_numbers()
        spki = pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pkcs1 = pub.public_bytes(DER, serialization.PublicFormat.PKCS1)
        numbers = {"MODULUS": n.n, "PUBLIC_EXPONENT": n.e}
        for fmt, material, default in ((T_RSA_PUBLIC, [("MODULUS", n.n), ("PUBLIC_EXPONENT", n.e)], numbers),
                                       (PKCS_1, pkcs1, pkcs1), (X_509, spki, spki)):
            with self.subTest(format=fmt):
                uid = self.registered("PUBLIC_KEY", fmt, material, RSA, 2048, mask=VERIFY)
                self.assertEqual(self.got(uid, object_type="PUBLIC_KEY"), (fmt, default))
                self.assertEqual(self.got(uid, X_509, object_type="PUBLIC_KEY"), (X_509, spki))
                self.assertEqual(self.got(uid, PKCS_1, object_type="PUBLIC_KEY"), (PKCS_1, pkcs1))
                self.assertEqual(self.got(uid, T_RSA_PUBLIC, object_type="PUBLIC_KEY"), (T_RSA_PUBLIC, numbers))
        # Declared length or algorithm not the key's.
        self.assertFailure(self.call(register("PUBLIC_KEY", T_RSA_PUBLIC, [("MODULUS", n.n), ("PUBLIC_EXPONENT", n.e)],
                                              RSA, 1024, mask=VERIFY)), "INVALID_FIELD", "length")
        self.assertFailure(self.call(register("PUBLIC_KEY", T_RSA_PUBLIC, [("MODULUS", n.n), ("PUBLIC_EXPONENT", n.e)],
                                              DSA, 2048, mask=VERIFY)), "INVALID_FIELD", "algorithm")

    def test_symmetric_key_registered_transparent_comes_back_transparent(self):
        material = os.urandom(32)
        item = self.call(K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", 12))),
            S("SYMMETRIC_KEY", S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", 0x07),
                                 S("KEY_VALUE", S("KEY_MATERIAL", Bytes("KEY", material))),
                                 Enum("CRYPTOGRAPHIC_ALGORITHM", 0x03), Int("CRYPTOGRAPHIC_LENGTH", 256)))],
            K.batch_id()))
        self.assertSuccess(item, "Register Transparent Symmetric Key")
        uid = item.uid()
        self.assertEqual(self.got(uid, object_type="SYMMETRIC_KEY"), (0x07, {"KEY": material}))
        self.assertEqual(self.got(uid, 0x01, object_type="SYMMETRIC_KEY"), (0x01, material))
        # A replacement made by Re-key is the server's: Raw, whatever its predecessor came in.
        self.assertSuccess(self.call(K.activate(uid, K.batch_id())), "Activate")
        item = self.call(K.BatchItem("REKEY", [Text("UNIQUE_IDENTIFIER", uid)], K.batch_id()))
        self.assertSuccess(item, "Re-key")
        fmt, value = self.got(item.uid(), object_type="SYMMETRIC_KEY")
        self.assertEqual(fmt, 0x01)
        self.assertEqual(len(value), 32)


if __name__ == "__main__":
    import unittest
    unittest.main()
