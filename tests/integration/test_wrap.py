"""Keys that leave or enter the HSM wrapped, and public keys in the clear (issue 5).

Wrapped Get (KMIP 1.4 sections 2.1.5, 2.1.6): the key is wrapped inside the HSM under
a registered AES key (RFC 3394 / RFC 5649) or RSA public key (OAEP), and the test
unwraps it with the Python `cryptography` package to the bytes a plaintext Get gives.
Wrapped Register: a key wrapped here is unwrapped in the HSM and re-wrapped under the
MWK. Public keys: Register (X.509 or PKCS#1, PyKMIP as the client) and Get in the
clear. kg_kmip builds what PyKMIP cannot: PyKMIP reads every Key Value as a structure,
and a wrapped Key Value is a Byte String (section 2.1.3).

The module writes its own policy before the gateway starts:
  admin    everything, plaintext export; may name its own keys and one absent UID
  backup   export wrapped, wrapping keys its own, scope own

Key Wrap Type (Get): As Registered wraps a key registered wrapped again as it was
registered (same key, parameters and Encoding Option: the registered bytes, AES key wrap
being deterministic); Not Wrapped, and As Registered of any other key, is a plain Get.
"""

import os
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import (aes_key_unwrap, aes_key_unwrap_with_padding,
                                                    aes_key_wrap, aes_key_wrap_with_padding)
from kmip.core import enums
from kmip.pie import objects

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
import kg_ttlv
from kg_ttlv import S, Int, Enum, Bool, Text, Bytes, DateTime

ABSENT_UID = "00000000-0000-4000-8000-000000000000"

POLICY = """version: 1
no_ou: deny
ambiguous: deny
groups:
  admin:
    ou: admin
    operations: all
    create:
      object_types: [Symmetric Key, Public Key]
      algorithms: [AES, RSA, EC, ECDSA]
    export: plaintext
    wrapping_keys: [own, %s]
    scope: all
  backup:
    ou: backup
    operations: [Discover Versions, Query, Create, Register, Get, Get Attributes, Activate]
    create:
      object_types: [Symmetric Key, Public Key]
      algorithms: [AES, RSA]
    export: wrapped
    wrapping_keys: [own]
    scope: own
""" % ABSENT_UID

# KMIP 1.4 section 9.1.3.2 values (section numbers in the names' comments).
MODE_CBC, MODE_KWP, MODE_KW = 0x01, 0x0C, 0x0D           # 9.1.3.2.14 Block Cipher Mode
PAD_OAEP = 0x02                                          # 9.1.3.2.15 Padding Method
HASH_SHA1, HASH_SHA256 = 0x04, 0x06                      # 9.1.3.2.16 Hashing Algorithm
NO_ENCODING, TTLV_ENCODING = 0x01, 0x02                  # 9.1.3.2.32 Encoding Option
USAGE_ENCRYPT, USAGE_DECRYPT, USAGE_WRAP, USAGE_UNWRAP = 0x04, 0x08, 0x10, 0x20
FMT_RAW, FMT_PKCS1, FMT_X509 = 0x01, 0x03, 0x05


def params(mode=None, pad=None, hashing=None):
    return S("CRYPTOGRAPHIC_PARAMETERS",
             *[i for i in (Enum("BLOCK_CIPHER_MODE", mode) if mode else None,
                           Enum("PADDING_METHOD", pad) if pad else None,
                           Enum("HASHING_ALGORITHM", hashing) if hashing else None) if i is not None])


def wrapping(uid, cparams=None, encoding=NO_ENCODING, method="ENCRYPT", tag="KEY_WRAPPING_SPECIFICATION"):
    info = [Text("UNIQUE_IDENTIFIER", uid)] + ([cparams] if cparams is not None else [])
    items = [Enum("WRAPPING_METHOD", method), S("ENCRYPTION_KEY_INFORMATION", *info)]
    if encoding is not None:
        items.append(Enum("ENCODING_OPTION", encoding))
    return S(tag, *items)


def get_wrapped(uid, spec, fmt=None):
    extra = ([Enum("KEY_FORMAT_TYPE", fmt)] if fmt is not None else []) + [spec]
    return K.request(K.get(uid, K.batch_id(), extra=extra))


def register_wrapped(wrapped, kek_uid, bits, mode, mask=USAGE_ENCRYPT | USAGE_DECRYPT, bare=False,
                     template=(), encoding=NO_ENCODING):
    """Register of a wrapped AES key: the wrapped bytes as Key Material (TC-WRAP's form),
    or with `bare` as a Byte String Key Value (KMIP 1.4 section 2.1.3's)."""
    value = Bytes("KEY_VALUE", wrapped) if bare else S("KEY_VALUE", Bytes("KEY_MATERIAL", wrapped))
    return K.request(K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask)),
          *template),
        S("SYMMETRIC_KEY", S("KEY_BLOCK",
            Enum("KEY_FORMAT_TYPE", "RAW"),
            value,
            Enum("CRYPTOGRAPHIC_ALGORITHM", "AES"),
            Int("CRYPTOGRAPHIC_LENGTH", bits),
            wrapping(kek_uid, params(mode=mode), encoding=encoding, tag="KEY_WRAPPING_DATA"))),
    ], K.batch_id()))


NOT_WRAPPED, AS_REGISTERED = 0x01, 0x02                  # 9.1.3.2.48 Key Wrap Type


def get_wrap_type(uid, wrap_type, fmt=FMT_RAW, spec=None):
    """Get with a Key Wrap Type, in its place (KMIP 1.4 4.11: after Key Format Type)."""
    extra = ([Enum("KEY_FORMAT_TYPE", fmt)] if fmt is not None else []) + [Enum("KEY_WRAP_TYPE", wrap_type)]
    return K.request(K.get(uid, K.batch_id(), extra=extra + ([spec] if spec is not None else [])))


def register_plain(key, mask, template=()):
    return K.request(K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask)), *template),
        S("SYMMETRIC_KEY", S("KEY_BLOCK",
            Enum("KEY_FORMAT_TYPE", "RAW"),
            S("KEY_VALUE", Bytes("KEY_MATERIAL", key)),
            Enum("CRYPTOGRAPHIC_ALGORITHM", "AES"),
            Int("CRYPTOGRAPHIC_LENGTH", len(key) * 8))),
    ], K.batch_id()))


def register_public(der, fmt, algorithm="RSA", mask=USAGE_WRAP):
    return K.request(K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "PUBLIC_KEY"),
        S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask))),
        S("PUBLIC_KEY", S("KEY_BLOCK",
            Enum("KEY_FORMAT_TYPE", fmt),
            S("KEY_VALUE", Bytes("KEY_MATERIAL", der)),
            Enum("CRYPTOGRAPHIC_ALGORITHM", algorithm))),
    ], K.batch_id()))


class Wrap(GatewayTestCase):
    gw_name = "wrap"

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

    # --- helpers ---------------------------------------------------------------------
    def req(self, identity, msg):
        return self.gw.request(identity, msg).item

    def new_key(self, identity, mask=USAGE_ENCRYPT | USAGE_DECRYPT, activate=False, extra=()):
        item = self.req(identity, K.request(K.create_aes256(K.batch_id(), usage_mask=mask,
                                                            extra_attributes=list(extra))))
        self.assertSuccess(item, "Create as %s" % identity)
        if activate:
            self.assertSuccess(self.req(identity, K.request(K.activate(item.uid(), K.batch_id()))), "Activate")
        return item.uid()

    def kek(self, identity="admin", mask=USAGE_WRAP | USAGE_UNWRAP, extra=()):
        return self.new_key(identity, mask=mask, activate=True, extra=extra)

    def plain(self, uid):
        item = self.req("admin", K.request(K.get(uid, K.batch_id())))
        self.assertSuccess(item, "plaintext Get as admin")
        return K.symmetric_key_of(item.payload)[0]

    def wrapped_of(self, item, version_minor=None):
        """(wrapped bytes, Key Wrapping Data) of a wrapped Get's Symmetric Key: in KMIP
        1.0/1.1 the Key Value is the wrapped Byte String itself (OASIS TC_141), from 1.2
        the Key Material inside the Key Value (OASIS TC-WRAP, PyKMIP)."""
        kb = item.payload.path("SYMMETRIC_KEY", "KEY_BLOCK")
        kv = kb.find("KEY_VALUE")
        if isinstance(kv.value, (bytes, bytearray)):
            self.assertNotEqual(version_minor, 4, "1.4 answers Key Material inside the Key Value")
            return kv.value, kb.find("KEY_WRAPPING_DATA")
        return kv.path("KEY_MATERIAL").value, kb.find("KEY_WRAPPING_DATA")

    # --- wrapped export under AES --------------------------------------------------
    def test_nist_key_wrap_unwraps_to_the_plaintext(self):
        uid, kek = self.new_key("admin"), self.kek()
        seq_item = self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW))))
        self.assertSuccess(seq_item, "wrapped Get (NISTKeyWrap)")
        wrapped, kwd = self.wrapped_of(seq_item)
        self.assertEqual(len(wrapped), 40)
        self.assertEqual(aes_key_unwrap(self.plain(kek), wrapped), self.plain(uid))
        self.assertNotIn(self.plain(uid), self.gw.request("admin", get_wrapped(
            uid, wrapping(kek, params(mode=MODE_KW)))).raw)
        # Key Wrapping Data as section 2.1.5 says.
        self.assertEqual(kwd.find("WRAPPING_METHOD").value, 0x01)
        self.assertEqual(kwd.path("ENCRYPTION_KEY_INFORMATION", "UNIQUE_IDENTIFIER").value, kek)
        self.assertEqual(kwd.path("ENCRYPTION_KEY_INFORMATION", "CRYPTOGRAPHIC_PARAMETERS",
                                  "BLOCK_CIPHER_MODE").value, MODE_KW)
        self.assertEqual(kwd.find("ENCODING_OPTION").value, NO_ENCODING)

    def test_sensitive_key_leaves_only_wrapped(self):
        """A Sensitive key (KMIP 1.4 section 3.48) is refused in the clear but may leave
        wrapped by another key, and unwraps to its bytes."""
        item = self.req("admin", K.request(K.create_aes256(K.batch_id(), extra_attributes=[
            K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", True))]), version=(1, 4)))
        self.assertSuccess(item, "Create a Sensitive key (Sensitive is KMIP 1.4's)")
        uid, kek = item.uid(), self.kek()
        self.assertFailure(self.req("admin", K.request(K.get(uid, K.batch_id()), version=(1, 4))), "SENSITIVE",
                           "plaintext Get")
        item = self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW))))
        self.assertSuccess(item, "wrapped Get of a Sensitive key")
        wrapped, _ = self.wrapped_of(item)
        self.assertEqual(len(aes_key_unwrap(self.plain(kek), wrapped)), 32)

    def test_padding_and_transparent_format(self):
        uid, kek = self.new_key("admin"), self.kek()
        item = self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KWP)), fmt=0x07))
        self.assertSuccess(item, "wrapped Get (AESKeyWrapPadding, Transparent Symmetric)")
        wrapped, _ = self.wrapped_of(item)
        self.assertEqual(item.payload.path("SYMMETRIC_KEY", "KEY_BLOCK", "KEY_FORMAT_TYPE").value, 0x07)
        self.assertEqual(aes_key_unwrap_with_padding(self.plain(kek), wrapped), self.plain(uid))

    def test_parameters_default_from_the_wrapping_key(self):
        uid = self.new_key("admin")
        kek = self.kek(extra=[K.attr("Cryptographic Parameters",
                                     S("ATTRIBUTE_VALUE", Enum("BLOCK_CIPHER_MODE", MODE_KWP)))])
        item = self.req("admin", get_wrapped(uid, wrapping(kek)))
        self.assertSuccess(item, "wrapped Get without Cryptographic Parameters")
        wrapped, kwd = self.wrapped_of(item)
        self.assertEqual(aes_key_unwrap_with_padding(self.plain(kek), wrapped), self.plain(uid))
        self.assertEqual(kwd.path("ENCRYPTION_KEY_INFORMATION", "CRYPTOGRAPHIC_PARAMETERS",
                                  "BLOCK_CIPHER_MODE").value, MODE_KWP)
        # Parameters that match none of the key's instances are refused (2.1.6) ...
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW)))),
                           "INVALID_FIELD", "parameters unlike the wrapping key's")
        # ... and a key without any needs them in the request.
        bare = self.kek()
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(bare))), "MISSING_DATA",
                           "no parameters anywhere")

    def test_wrapped_only_group_end_to_end(self):
        uid, kek = self.new_key("backup"), self.kek("backup")
        self.assertFailure(self.req("backup", K.request(K.get(uid, K.batch_id()))), "PERMISSION_DENIED",
                           "plaintext Get as backup")
        item = self.req("backup", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW))))
        self.assertSuccess(item, "wrapped Get as backup under its own key")
        wrapped, _ = self.wrapped_of(item)
        self.assertEqual(aes_key_unwrap(self.plain(kek), wrapped), self.plain(uid))
        audit = [l for l in open(self.gw.path("audit.log")).read().splitlines() if "wrapped export" in l]
        self.assertTrue(audit, "the audit line says wrapped export")

    # --- wrapped export under RSA ----------------------------------------------------
    def rsa_wrapping_key(self):
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        with self.gw.pykmip_client("admin") as c:
            pub_uid = c.register(objects.PublicKey(enums.CryptographicAlgorithm.RSA, 2048, der,
                                                   enums.KeyFormatType.X_509,
                                                   masks=[enums.CryptographicUsageMask.WRAP_KEY]))
            c.activate(pub_uid)
        return priv, pub_uid

    def test_rsa_oaep_unwraps_with_the_private_key(self):
        priv, pub_uid = self.rsa_wrapping_key()
        uid = self.new_key("admin")
        item = self.req("admin", get_wrapped(uid, wrapping(pub_uid, params(pad=PAD_OAEP, hashing=HASH_SHA1))))
        self.assertSuccess(item, "wrapped Get under RSA, OAEP SHA-1")
        wrapped, _ = self.wrapped_of(item)
        oaep1 = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        self.assertEqual(priv.decrypt(wrapped, oaep1), self.plain(uid))
        # SHA-256: done if the HSM does it, else said to be unsupported (SoftHSMv2 2.6
        # does OAEP with SHA-1 only). openCryptoki does it (scripts/test runs this test
        # there too): on that token it must succeed.
        item = self.req("admin", get_wrapped(uid, wrapping(pub_uid, params(pad=PAD_OAEP, hashing=HASH_SHA256))))
        if os.environ.get("KGTEST_TOKEN") == "opencryptoki":
            self.assertSuccess(item, "wrapped Get under RSA, OAEP SHA-256, on openCryptoki")
        if item.ok:
            wrapped, _ = self.wrapped_of(item)
            oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
            self.assertEqual(priv.decrypt(wrapped, oaep256), self.plain(uid))
        else:
            self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "OAEP SHA-256 on this HSM")

    # --- wrapped export refused ------------------------------------------------------
    def test_wrapping_key_not_allowed_by_policy(self):
        uid, foreign = self.new_key("backup"), self.kek("admin")
        item = self.req("backup", get_wrapped(uid, wrapping(foreign, params(mode=MODE_KW))))
        self.assertFailure(item, "PERMISSION_DENIED", "backup wrapping under admin's key")

    def test_wrapping_key_without_wrap_usage(self):
        uid, kek = self.new_key("admin"), self.kek(mask=USAGE_UNWRAP | USAGE_ENCRYPT)
        item = self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW))))
        self.assertFailure(item, "PERMISSION_DENIED", "wrapping key without Wrap Key usage")
        self.assertIn("Wrap Key", item.message or "")

    def test_unknown_wrapping_key(self):
        uid = self.new_key("admin")
        # Named in admin's wrapping_keys, so policy lets it through to the handler.
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(ABSENT_UID, params(mode=MODE_KW)))),
                           "ITEM_NOT_FOUND", "absent wrapping key")
        # Not named anywhere: the policy refuses it (an unknown key has no owner).
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(str(uuid.uuid4()), params(mode=MODE_KW)))),
                           "PERMISSION_DENIED", "unknown wrapping key")

    def test_unsupported_modes_and_encodings(self):
        uid, kek = self.new_key("admin"), self.kek()
        for what, spec, reason in (
                ("CBC", wrapping(kek, params(mode=MODE_CBC)), "FEATURE_NOT_SUPPORTED"),
                ("MAC/sign", wrapping(kek, params(mode=MODE_KW), method="MAC_SIGN"), "FEATURE_NOT_SUPPORTED"),
                ("OAEP under AES", wrapping(kek, params(pad=PAD_OAEP)), "FEATURE_NOT_SUPPORTED")):
            item = self.req("admin", get_wrapped(uid, spec))
            self.assertFailure(item, reason, what)
            self.assertNotIn(self.plain(uid), self.gw.request("admin", get_wrapped(uid, spec)).raw)
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW)), fmt=FMT_X509)),
                           "KEY_FORMAT_TYPE_NOT_SUPPORTED", "X.509 of a symmetric key")

    def test_ttlv_encoding(self):
        """TTLV Encoding wraps the TTLV Key Value, built inside the HSM by concatenation
        derives. An HSM without those mechanisms (SoftHSMv2 2.6.1) must refuse with
        Feature Not Supported naming the mechanism; one with them must answer bytes that
        unwrap to the Key Value of the plaintext."""
        uid, kek = self.new_key("admin"), self.kek()
        resp = self.gw.request("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW), encoding=TTLV_ENCODING)))
        self.assertNotIn(self.plain(uid), resp.raw)
        item = resp.item
        if item.status != 0:
            self.assertFailure(item, "FEATURE_NOT_SUPPORTED", "TTLV Encoding")
            self.assertIn("CKM_CONCATENATE_DATA_AND_BASE", item.message or "")
            return
        wrapped, kwd = self.wrapped_of(item)
        self.assertEqual(kwd.find("ENCODING_OPTION").value, TTLV_ENCODING)
        kv = kg_ttlv.decode(aes_key_unwrap(self.plain(kek), wrapped))
        self.assertEqual(kv.path("KEY_MATERIAL").value, self.plain(uid))

    def test_omitted_encoding_option_wraps_the_key_bytes(self):
        """An omitted Encoding Option wraps the bare key bytes (OASIS TC_141/TC_142,
        PyKMIP), and the answer's Key Wrapping Data omits it too; Attribute Names
        cannot travel with No Encoding and are not wrapped."""
        uid, kek = self.new_key("admin"), self.kek()
        spec = wrapping(kek, params(mode=MODE_KW), encoding=None)
        item = self.req("admin", get_wrapped(uid, spec))
        self.assertSuccess(item, "no Encoding Option")
        wrapped, kwd = self.wrapped_of(item)
        self.assertIsNone(kwd.find("ENCODING_OPTION"))
        self.assertEqual(aes_key_unwrap(self.plain(kek), wrapped), self.plain(uid))
        # With TTLV Encoding asked for, attributes would have to be wrapped: refused.
        spec = wrapping(kek, params(mode=MODE_KW), encoding=TTLV_ENCODING)
        spec.value.append(Text("ATTRIBUTE_NAME", "Cryptographic Usage Mask"))
        self.assertFailure(self.req("admin", get_wrapped(uid, spec)), "FEATURE_NOT_SUPPORTED",
                           "attributes with TTLV Encoding")

    def test_pre_active_wrapping_key(self):
        uid, kek = self.new_key("admin"), self.new_key("admin", mask=USAGE_WRAP)
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW)))),
                           "PERMISSION_DENIED", "Pre-Active wrapping key")

    def test_resident_key_never_leaves(self):
        uid, kek = self.new_key("admin"), self.kek()
        # Mark it resident as a residency: hsm group would have made it.
        with self.gw.store_db() as db:
            db.execute("UPDATE objects SET storage = 1, blob = ? WHERE uid = ?", (b"", uid))
        self.assertFailure(self.req("admin", K.request(K.get(uid, K.batch_id()))), "PERMISSION_DENIED",
                           "plaintext Get of a resident key")
        self.assertFailure(self.req("admin", get_wrapped(uid, wrapping(kek, params(mode=MODE_KW)))),
                           "PERMISSION_DENIED", "wrapped Get of a resident key")

    # --- wrapped import --------------------------------------------------------------
    def test_wrapped_register_round_trip(self):
        kek = self.kek()
        for mode, wrap, bare in ((MODE_KW, aes_key_wrap, False), (MODE_KWP, aes_key_wrap_with_padding, False),
                                 (MODE_KW, aes_key_wrap, True)):
            key = os.urandom(32)
            item = self.req("admin", register_wrapped(wrap(self.plain(kek), key), kek, 256, mode, bare=bare))
            self.assertSuccess(item, "wrapped Register mode %d bare %s" % (mode, bare))
            self.assertEqual(self.plain(item.uid()), key)
        with self.gw.store_db(readonly=True) as db:
            row = db.execute("SELECT storage, length(blob) FROM objects WHERE uid = ?", (item.uid(),)).fetchone()
        self.assertEqual(row, (0, 40), "stored as a blob under the MWK")

    def test_tc_wrap_1_known_answer(self):
        """OASIS TC-WRAP-1-14: KEK 000102..0f registered with Cryptographic Parameters
        NISTKeyWrap and a past Activation Date; key 00112233..ff registered wrapped under it
        (RFC 3394 4.1's ciphertext); Get under the KEK, parameters from the KEK, gives the
        RFC's ciphertext back."""
        rfc_kek, rfc_wrapped = bytes.fromhex("000102030405060708090a0b0c0d0e0f"), \
            bytes.fromhex("1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")
        past = DateTime("ATTRIBUTE_VALUE", int(time.time()) - 3600)
        kek = self.req("admin", register_plain(rfc_kek, USAGE_WRAP | USAGE_UNWRAP, template=[
            K.attr("Cryptographic Parameters", S("ATTRIBUTE_VALUE", Enum("BLOCK_CIPHER_MODE", MODE_KW))),
            K.attr("Activation Date", past)]))
        self.assertSuccess(kek, "Register the KEK")
        key = self.req("admin", register_wrapped(rfc_wrapped, kek.uid(), 128, MODE_KW))
        self.assertSuccess(key, "Register the wrapped key")
        self.assertEqual(self.plain(key.uid()).hex(), "00112233445566778899aabbccddeeff")
        item = self.req("admin", get_wrapped(key.uid(), wrapping(kek.uid()), fmt=FMT_RAW))
        self.assertSuccess(item, "wrapped Get, parameters from the KEK")
        self.assertEqual(self.wrapped_of(item)[0], rfc_wrapped)

    def test_pykmip_wrapped_get(self):
        uid, kek = self.new_key("admin"), self.kek()
        with self.gw.pykmip_client("admin") as c:
            got = c.get(uid, key_wrapping_specification={
                "wrapping_method": enums.WrappingMethod.ENCRYPT,
                "encryption_key_information": {
                    "unique_identifier": kek,
                    "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP}},
                "encoding_option": enums.EncodingOption.NO_ENCODING})
        self.assertEqual(aes_key_unwrap(self.plain(kek), got.value), self.plain(uid))
        self.assertEqual(got.key_wrapping_data["wrapping_method"], enums.WrappingMethod.ENCRYPT)
        self.assertEqual(got.key_wrapping_data["encryption_key_information"]["unique_identifier"], kek)

    def test_wrapped_register_refusals(self):
        kek = self.kek()
        kek_plain, key = self.plain(kek), os.urandom(16)
        good = aes_key_wrap(kek_plain, key)
        bad = bytearray(good)
        bad[3] ^= 1
        self.assertFailure(self.req("admin", register_wrapped(bytes(bad), kek, 128, MODE_KW)),
                           "CRYPTOGRAPHIC_FAILURE", "tampered wrapped key")
        self.assertFailure(self.req("admin", register_wrapped(good, kek, 256, MODE_KW)),
                           "INVALID_FIELD", "declared length unlike the key's")
        # A KEK registered for wrapping also unwraps on import (OASIS TC-WRAP); one
        # with neither Wrap Key nor Unwrap Key usage does not.
        wrap_only = self.kek(mask=USAGE_WRAP)
        self.assertSuccess(self.req("admin", register_wrapped(aes_key_wrap(self.plain(wrap_only), key),
                                                              wrap_only, 128, MODE_KW)),
                           "key-encryption key with Wrap Key usage only")
        no_unwrap = self.kek(mask=USAGE_ENCRYPT)
        self.assertFailure(self.req("admin", register_wrapped(aes_key_wrap(self.plain(no_unwrap), key),
                                                              no_unwrap, 128, MODE_KW)),
                           "PERMISSION_DENIED", "unwrapping key without Unwrap Key or Wrap Key usage")
        # backup may Register, but admin's key is outside its scope: as if absent.
        self.assertFailure(self.req("backup", register_wrapped(good, kek, 128, MODE_KW)),
                           "ITEM_NOT_FOUND", "unwrapping key outside the caller's scope")
        self.assertFailure(self.req("admin", register_wrapped(good, ABSENT_UID, 128, MODE_KW)),
                           "ITEM_NOT_FOUND", "absent unwrapping key")

    # --- Key Wrap Type (Get, KMIP 1.4 section 4.11) ---------------------------------------
    def register_wrapped_as(self, identity, kek, mode=MODE_KW, wrap=aes_key_wrap, encoding=NO_ENCODING):
        """(uid, key, wrapped bytes) of a fresh AES-128 key registered wrapped under `kek`."""
        key = os.urandom(16)
        wrapped = wrap(self.plain(kek), key)
        item = self.req(identity, register_wrapped(wrapped, kek, 128, mode, encoding=encoding))
        self.assertSuccess(item, "wrapped Register as %s" % identity)
        return item.uid(), key, wrapped

    def test_as_registered_returns_the_registered_bytes(self):
        kek = self.kek()
        for mode, wrap, encoding in ((MODE_KW, aes_key_wrap, NO_ENCODING),
                                     (MODE_KWP, aes_key_wrap_with_padding, None)):
            uid, key, wrapped = self.register_wrapped_as("admin", kek, mode, wrap, encoding)
            item = self.req("admin", get_wrap_type(uid, AS_REGISTERED))
            self.assertSuccess(item, "Get As Registered, mode %d" % mode)
            got, kwd = self.wrapped_of(item)
            self.assertEqual(got, wrapped, "the very bytes registered")
            self.assertEqual(kwd.find("WRAPPING_METHOD").value, 0x01)
            self.assertEqual(kwd.path("ENCRYPTION_KEY_INFORMATION", "UNIQUE_IDENTIFIER").value, kek)
            self.assertEqual(kwd.path("ENCRYPTION_KEY_INFORMATION", "CRYPTOGRAPHIC_PARAMETERS",
                                      "BLOCK_CIPHER_MODE").value, mode)
            # The Encoding Option as registered: given stays given, omitted stays omitted.
            eo = kwd.find("ENCODING_OPTION")
            self.assertEqual(eo.value if eo is not None else None, encoding)
            self.assertNotIn(key, self.gw.request("admin", get_wrap_type(uid, AS_REGISTERED)).raw)
        # (What the store keeps is checked by tests/unit/kg_store_test.c: a Python reader
        # of kmipgw.db here makes later tests' reads of it see stale data.)
        audit = [l for l in open(self.gw.path("audit.log")).read().splitlines()
                 if "wrapped export as registered" in l]
        self.assertTrue(audit, "the audit line says wrapped export as registered")

    def test_not_wrapped_follows_the_export_policy(self):
        kek = self.kek("backup")
        uid, key, wrapped = self.register_wrapped_as("backup", kek)
        item = self.req("admin", get_wrap_type(uid, NOT_WRAPPED))
        self.assertSuccess(item, "Get Not Wrapped as admin")
        self.assertEqual(K.symmetric_key_of(item.payload)[0], key)
        self.assertIsNone(item.payload.path("SYMMETRIC_KEY", "KEY_BLOCK").find("KEY_WRAPPING_DATA"))
        self.assertFailure(self.req("backup", get_wrap_type(uid, NOT_WRAPPED)), "PERMISSION_DENIED",
                           "Get Not Wrapped as the wrapped-only group")
        item = self.req("backup", get_wrap_type(uid, AS_REGISTERED))
        self.assertSuccess(item, "Get As Registered as the wrapped-only group")
        self.assertEqual(self.wrapped_of(item)[0], wrapped)

    def test_as_registered_of_a_key_registered_in_the_clear(self):
        uid = self.new_key("admin")
        item = self.req("admin", get_wrap_type(uid, AS_REGISTERED))
        self.assertSuccess(item, "Get As Registered of a created key as admin")
        self.assertEqual(K.symmetric_key_of(item.payload)[0], self.plain(uid))
        self.assertIsNone(item.payload.path("SYMMETRIC_KEY", "KEY_BLOCK").find("KEY_WRAPPING_DATA"))
        own = self.new_key("backup")
        self.assertFailure(self.req("backup", get_wrap_type(own, AS_REGISTERED)), "PERMISSION_DENIED",
                           "As Registered of a key registered in the clear is a plaintext Get")

    def test_as_registered_wrapping_key_must_be_allowed(self):
        # admin (scope all) registers a key wrapped under backup's KEK: admin's
        # wrapping_keys do not name it, so wrapping under it again is refused.
        kek = self.kek("backup")
        uid, key, _ = self.register_wrapped_as("admin", kek)
        self.assertFailure(self.req("admin", get_wrap_type(uid, AS_REGISTERED)), "PERMISSION_DENIED",
                           "As Registered under a wrapping key policy does not allow")
        self.assertEqual(self.plain(uid), key)
        # A wrapping key no longer Active wraps nothing.
        kek = self.kek()
        uid, _, _ = self.register_wrapped_as("admin", kek)
        self.assertSuccess(self.req("admin", K.request(K.revoke(kek, bid=K.batch_id()))), "Revoke the KEK")
        self.assertFailure(self.req("admin", get_wrap_type(uid, AS_REGISTERED)), "PERMISSION_DENIED",
                           "As Registered under a revoked wrapping key")

    def test_key_wrap_type_refusals(self):
        kek = self.kek()
        uid, key, _ = self.register_wrapped_as("admin", kek)
        spec = wrapping(kek, params(mode=MODE_KW))
        self.assertFailure(self.req("admin", get_wrap_type(uid, AS_REGISTERED, spec=spec)), "INVALID_FIELD",
                           "Key Wrap Type As Registered and a Key Wrapping Specification")
        # Not Wrapped with a specification: "not as registered, but like this" (TC-WRAP-3-20).
        resp = self.gw.request("admin", get_wrap_type(uid, NOT_WRAPPED, spec=spec))
        item = resp.item
        self.assertSuccess(item, "Key Wrap Type Not Wrapped and a Key Wrapping Specification")
        self.assertNotIn(key, resp.raw)
        self.assertIsNotNone(item.payload.find("SYMMETRIC_KEY").find("KEY_BLOCK").find("KEY_WRAPPING_DATA"))
        self.assertFailure(self.req("admin", get_wrap_type(uid, 0x03)), "FEATURE_NOT_SUPPORTED",
                           "Key Wrap Type 3")
        self.assertFailure(self.req("admin", get_wrap_type(uid, 0x80000001)), "FEATURE_NOT_SUPPORTED",
                           "an extension Key Wrap Type")
        # Out of its place (after the Key Wrapping Specification) it is not a Key Wrap Type.
        bad = K.request(K.get(uid, K.batch_id(), extra=[spec, Enum("KEY_WRAP_TYPE", AS_REGISTERED)]))
        self.assertEqual(self.req("admin", bad).status, K.RESULT_STATUS["OPERATION_FAILED"])
        self.assertNotIn(key, self.gw.request("admin", bad).raw)

    # --- public keys -----------------------------------------------------------------
    def test_public_key_register_and_get(self):
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        spki = priv.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        pkcs1 = priv.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        with self.gw.pykmip_client("admin") as c:
            uid = c.register(objects.PublicKey(enums.CryptographicAlgorithm.RSA, 2048, pkcs1,
                                               enums.KeyFormatType.PKCS_1))
            got = c.get(uid)
        # Without a Key Format Type, in the one it was registered in (KMIP 2.1 6.1.22).
        self.assertEqual(got.key_format_type, enums.KeyFormatType.PKCS_1)
        self.assertEqual(got.value, pkcs1)
        self.assertEqual(got.cryptographic_length, 2048)
        item = self.req("admin", K.request(K.get(uid, K.batch_id(), extra=[Enum("KEY_FORMAT_TYPE", "X_509")])))
        self.assertSuccess(item, "Get X.509")
        self.assertEqual(item.payload.path("PUBLIC_KEY", "KEY_BLOCK", "KEY_VALUE", "KEY_MATERIAL").value, spki)
        with self.gw.store_db(readonly=True) as db:
            row = db.execute("SELECT storage, blob FROM objects WHERE uid = ?", (uid,)).fetchone()
        self.assertEqual(row, (2, spki), "stored PUBLIC as SubjectPublicKeyInfo")
        # backup exports key material only wrapped, but a public key is no secret.
        own = self.req("backup", register_public(spki, FMT_X509))
        self.assertSuccess(own, "Register as backup")
        item = self.req("backup", K.request(K.get(own.uid(), K.batch_id())))
        self.assertSuccess(item, "Get of its public key as backup (export: wrapped)")
        self.assertEqual(item.payload.path("PUBLIC_KEY", "KEY_BLOCK", "KEY_VALUE", "KEY_MATERIAL").value, spki)
        self.assertFailure(self.req("backup", K.request(K.get(uid, K.batch_id()))), "ITEM_NOT_FOUND",
                           "admin's public key from backup")

    def test_ec_public_key_and_bad_der(self):
        pub = ec.generate_private_key(ec.SECP256R1()).public_key()
        spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        item = self.req("admin", register_public(spki, FMT_X509, algorithm="ECDSA", mask=0x02))
        self.assertSuccess(item, "Register EC public key")
        got = self.req("admin", K.request(K.get(item.uid(), K.batch_id())))
        self.assertSuccess(got, "Get EC public key")
        kb = got.payload.path("PUBLIC_KEY", "KEY_BLOCK")
        self.assertEqual(kb.path("KEY_VALUE", "KEY_MATERIAL").value, spki)
        self.assertEqual(kb.find("CRYPTOGRAPHIC_LENGTH").value, 256)
        self.assertFailure(self.req("admin", K.request(K.get(item.uid(), K.batch_id(),
                                                             extra=[Enum("KEY_FORMAT_TYPE", "PKCS_1")]))),
                           "KEY_FORMAT_TYPE_NOT_SUPPORTED", "PKCS#1 of an EC key")
        for what, der, fmt in (("trailing byte", spki + b"\0", FMT_X509), ("garbage", b"\x30\x03abc", FMT_X509),
                               ("SPKI sent as PKCS#1", spki, FMT_PKCS1)):
            self.assertFailure(self.req("admin", register_public(der, fmt, algorithm="ECDSA")), "INVALID_FIELD", what)
        self.assertFailure(self.req("admin", register_public(spki, FMT_X509, algorithm="RSA")), "INVALID_FIELD",
                           "EC key called RSA")
