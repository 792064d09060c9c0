"""Secret Data, Opaque Objects and Certificates (KMIP 1.4 sections 2.2.7, 2.2.8, 2.2.1).

Secret Data and an Opaque Object's value are stored like a plaintext symmetric
key (wrapped under the HSM's master key; test_at_rest scans the store for
them) and come back exactly as registered, whatever their length (1 to 1024
bytes; SoftHSM pads generic secrets, which the gateway trims). A certificate is
parsed at Register and answers its attributes, which no client may change.
Each behaviour sits next to the refusal that proves it is checked. Runs as
`admin` (operations: all, export: plaintext) unless a test says otherwise.
"""

import datetime
import os
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import S, Int, Enum, Text, Bytes, T

V14, V21 = (1, 4), (2, 1)
OBJ_CERTIFICATE, OBJ_SECRET_DATA, OBJ_OPAQUE = 0x01, 0x07, 0x08
FORMAT_RAW, FORMAT_OPAQUE = 0x01, 0x02
ALG_RSA, DSA_SHA256_RSA = 0x04, 0x05
# KMIP 2.x tags and Result Reasons (KMIP 2.1 section 11)
ATTRIBUTES, ATTRIBUTE_REFERENCE, NEW_ATTRIBUTE = 0x420125, 0x42013B, 0x42013D
SUBJECT_CN, SUBJECT_O, SUBJECT_OU, ISSUER_CN = 0x420108, 0x420109, 0x42010A, 0x420114
REASON_ATTRIBUTE_READ_ONLY, REASON_OBJECT_NOT_FOUND = 0x22, 0x37


def make_certificate(cn="objects-test", ous=("Storage", "Backup")):
    """A self-signed RSA-2048 / SHA-256 certificate (DER) with two OUs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")] +
                     [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous] +
                     [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2026, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234567890ABCDEF).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert, cert.public_bytes(serialization.Encoding.DER)


def with_uid(op, uid, *rest):
    return K.BatchItem(op, [Text("UNIQUE_IDENTIFIER", uid)] + list(rest), K.batch_id())


class DataObjects(GatewayTestCase):
    gw_name = "objects"

    def call(self, item, version=V14, identity="admin"):
        return self.gw.request(identity, K.request(item, version=version)).item

    def register(self, item, version=V14):
        r = self.call(item, version)
        self.assertSuccess(r, "Register")
        return r.uid()

    def attrs(self, uid, names, version=V14):
        r = self.call(K.get_attributes(uid, names, K.batch_id()), version)
        self.assertSuccess(r, "Get Attributes %s" % names)
        out = {}
        for n, v in r.attributes():
            out.setdefault(n, []).append(v)
        return out

    def attr_names(self, uid):
        r = self.call(K.get_attribute_list(uid, K.batch_id()))
        self.assertSuccess(r, "Get Attribute List")
        return [n.value for n in r.payload.find_all("ATTRIBUTE_NAME")]

    def get_secret(self, uid, *extra):
        r = self.call(K.get(uid, K.batch_id(), extra=extra))
        self.assertSuccess(r, "Get of Secret Data")
        return K.secret_data_of(r.payload)

    # --- Secret Data ---------------------------------------------------------------------
    def test_secret_data_round_trip_locate_revoke_destroy(self):
        material = os.urandom(32)
        uid = self.register(K.register_secret_data(material, K.SECRET_DATA_SEED, "OPAQUE"))
        self.assertEqual(self.get_secret(uid), (K.SECRET_DATA_SEED, FORMAT_OPAQUE, material),
                         "Get answers the type, the registered format and the bytes")
        self.assertEqual(self.get_secret(uid, Enum("KEY_FORMAT_TYPE", "RAW")),
                         (K.SECRET_DATA_SEED, FORMAT_RAW, material))
        r = self.call(K.get(uid, K.batch_id(), extra=[Enum("KEY_FORMAT_TYPE", "X_509")]))
        self.assertFailure(r, "KEY_FORMAT_TYPE_NOT_SUPPORTED", "Secret Data as X.509")
        a = self.attrs(uid, ["Object Type", "Cryptographic Length", "Cryptographic Algorithm", "Fresh", "Digest"])
        self.assertNotIn("Digest", a, "a clear SHA-256 of a password would let the store guess it")
        self.assertEqual(a["Object Type"][0].value, OBJ_SECRET_DATA)
        self.assertNotIn("Cryptographic Length", a, "Secret Data has no Cryptographic Length")
        self.assertNotIn("Cryptographic Algorithm", a)
        self.assertEqual(a["Fresh"][0].value, False, "served once: no longer Fresh")
        # Locate by Object Type finds it, and no symmetric key.
        key = self.create_key("admin")
        r = self.call(K.BatchItem("LOCATE", [K.attr("Object Type", Enum("ATTRIBUTE_VALUE", OBJ_SECRET_DATA))],
                                  K.batch_id()))
        self.assertSuccess(r, "Locate by Object Type")
        found = [u.value for u in r.payload.find_all("UNIQUE_IDENTIFIER")]
        self.assertIn(uid, found)
        self.assertNotIn(key, found)
        # Its row's length is the value's, not a Cryptographic Length to be found by.
        r = self.call(K.BatchItem("LOCATE", [K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 256))],
                                  K.batch_id()))
        self.assertSuccess(r, "Locate by Cryptographic Length")
        found = [u.value for u in r.payload.find_all("UNIQUE_IDENTIFIER")]
        self.assertIn(key, found)
        self.assertNotIn(uid, found, "32 bytes of Secret Data located as a 256-bit key")
        # Life cycle: Activate, Revoke, Destroy; then there is nothing to Get.
        self.assertSuccess(self.call(K.activate(uid, K.batch_id())), "Activate")
        self.assertFailure(self.call(K.destroy(uid, K.batch_id())), "PERMISSION_DENIED", "Destroy while Active")
        self.assertSuccess(self.call(K.revoke(uid, bid=K.batch_id())), "Revoke")
        self.assertSuccess(self.call(K.destroy(uid, K.batch_id())), "Destroy")
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "ITEM_NOT_FOUND", "Get after Destroy")
        self.assertEqual(self.attrs(uid, ["State"])["State"][0].value, 0x05, "Destroyed")

    def test_secret_data_lengths_are_exact_and_bounded(self):
        # 1 byte (below one AES block), trailing zeros (what SoftHSM pads with must not
        # be mistaken for padding), and the largest accepted value.
        for material in (b"\x07", b"pw\x00\x00\x00", os.urandom(1024)):
            uid = self.register(K.register_secret_data(material))
            self.assertEqual(self.get_secret(uid)[2], material, "%d bytes back" % len(material))
        for material, what in ((os.urandom(1025), "1025 bytes"), (b"", "empty")):
            r = self.call(K.register_secret_data(material))
            self.assertFailure(r, "INVALID_FIELD", "Secret Data of %s" % what)
            self.assertIsNone(r.uid())

    def test_secret_data_refuses_wrapping_and_key_attributes(self):
        kek = self.create_key("admin")
        uid = self.register(K.register_secret_data(os.urandom(16)))
        r = self.call(K.get(uid, K.batch_id(), extra=[
            S("KEY_WRAPPING_SPECIFICATION", Enum("WRAPPING_METHOD", "ENCRYPT"),
              S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", kek)))]))
        self.assertFailure(r, "FEATURE_NOT_SUPPORTED", "wrapped Get of Secret Data")
        self.assertIsNone(r.payload, "a refused Get answered a payload")
        # Registered wrapped (Key Wrapping Data in the Key Block): refused.
        r = self.call(K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "SECRET_DATA"), S("TEMPLATE_ATTRIBUTE"),
            S("SECRET_DATA", Enum("SECRET_DATA_TYPE", 1),
              S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", "RAW"), Bytes("KEY_VALUE", os.urandom(24)),
                S("KEY_WRAPPING_DATA", Enum("WRAPPING_METHOD", "ENCRYPT"),
                  S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", kek)))))], K.batch_id()))
        self.assertFailure(r, "FEATURE_NOT_SUPPORTED", "wrapped Register of Secret Data")
        # A key's attributes do not apply.
        r = self.call(K.register_secret_data(os.urandom(16), attributes=[
            K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 128))]))
        self.assertFailure(r, "INVALID_FIELD", "Secret Data with a Cryptographic Length")

    def test_server_rows_are_not_attributes(self):
        uid = self.register(K.register_secret_data(os.urandom(16)))
        names = self.attr_names(uid)
        self.assertIn("Object Type", names)
        self.assertNotIn("Secret Data Type", names, "the server's own row is listed")
        self.assertNotIn("Cryptographic Length", names)
        self.assertEqual(self.attrs(uid, ["Secret Data Type"]), {})
        r = self.call(with_uid("ADD_ATTRIBUTE", uid, K.attr("Secret Data Type", Enum("ATTRIBUTE_VALUE", 2))))
        self.assertFailure(r, "INVALID_FIELD", "Add Attribute of the server's row")
        self.assertEqual(self.get_secret(uid)[0], K.SECRET_DATA_PASSWORD)

    def test_secret_data_is_no_key_for_cryptography(self):
        uid = self.register(K.register_secret_data(os.urandom(32)))
        self.assertSuccess(self.call(K.activate(uid, K.batch_id())), "Activate")
        r = self.call(with_uid("ENCRYPT", uid, Bytes("DATA", b"x" * 16)))
        self.assertFalse(r.ok, "Encrypt with Secret Data: " + r.describe())
        r = self.call(with_uid("MAC", uid, S("CRYPTOGRAPHIC_PARAMETERS", Enum("CRYPTOGRAPHIC_ALGORITHM", 0x08)),
                               Bytes("DATA", b"x" * 16)))
        self.assertFalse(r.ok, "MAC with Secret Data: " + r.describe())
        self.assertEqual(self.get_secret(uid)[0], K.SECRET_DATA_PASSWORD, "still there, still readable")

    # --- Opaque Object -------------------------------------------------------------------
    def test_opaque_object_round_trip(self):
        value = os.urandom(48)
        uid = self.register(K.register_opaque(0x80123456, value))
        r = self.call(K.get(uid, K.batch_id()))
        self.assertSuccess(r, "Get of an Opaque Object")
        self.assertEqual(r.payload.find("OBJECT_TYPE").value, OBJ_OPAQUE)
        oo = r.payload.find("OPAQUE_OBJECT")
        self.assertEqual(oo.find("OPAQUE_DATA_TYPE").value, 0x80123456)
        self.assertEqual(oo.find("OPAQUE_DATA_VALUE").value, value)
        r = self.call(K.get(uid, K.batch_id(), extra=[Enum("KEY_FORMAT_TYPE", "RAW")]))
        self.assertFailure(r, "KEY_FORMAT_TYPE_NOT_SUPPORTED", "an Opaque Object has no Key Format Type")
        self.assertSuccess(self.call(K.destroy(uid, K.batch_id())), "Destroy")
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "ITEM_NOT_FOUND", "Get after Destroy")
        r = self.call(K.register_opaque(1, os.urandom(1025)))
        self.assertFailure(r, "INVALID_FIELD", "Opaque Object over 1024 bytes")

    def test_single_valued_attribute_added_twice(self):
        uid = self.register(K.register_opaque(1, b"x"))
        self.assertSuccess(self.call(K.add_attribute(uid, "Description", "one", K.batch_id())), "first")
        self.assertSuccess(self.call(K.add_attribute(uid, "Description", "one", K.batch_id())),
                           "the same value again is no second instance")
        self.assertFailure(self.call(K.add_attribute(uid, "Description", "two", K.batch_id())),
                           "INVALID_FIELD", "second Description (1.x)")

    # --- Certificate ---------------------------------------------------------------------
    def test_certificate_register_get_attributes(self):
        cert, der = make_certificate()
        uid = self.register(K.register_certificate(der, attributes=[
            K.attr("Certificate Type", Enum("ATTRIBUTE_VALUE", K.CERTIFICATE_X509))]))
        r = self.call(K.get(uid, K.batch_id()))
        self.assertSuccess(r, "Get of a certificate")
        c = r.payload.find("CERTIFICATE")
        self.assertEqual(c.find("CERTIFICATE_TYPE").value, K.CERTIFICATE_X509)
        self.assertEqual(c.find("CERTIFICATE_VALUE").value, der)
        a = self.attrs(uid, ["Object Type", "Certificate Type", "Certificate Length", "Cryptographic Algorithm",
                             "Cryptographic Length", "Digital Signature Algorithm", "X.509 Certificate Identifier",
                             "X.509 Certificate Subject", "X.509 Certificate Issuer", "Certificate Identifier",
                             "Certificate Subject"])
        self.assertEqual(a["Object Type"][0].value, OBJ_CERTIFICATE)
        self.assertEqual(a["Certificate Type"][0].value, K.CERTIFICATE_X509)
        self.assertEqual(a["Certificate Length"][0].value, len(der))
        self.assertEqual(a["Cryptographic Algorithm"][0].value, ALG_RSA)
        self.assertEqual(a["Cryptographic Length"][0].value, 2048)
        self.assertEqual(a["Digital Signature Algorithm"][0].value, DSA_SHA256_RSA)
        subject_der = cert.subject.public_bytes()
        ident = a["X.509 Certificate Identifier"][0]
        self.assertEqual(ident.find("ISSUER_DISTINGUISHED_NAME").value, subject_der, "self-signed")
        self.assertEqual(ident.find("CERTIFICATE_SERIAL_NUMBER").value, bytes.fromhex("1234567890ABCDEF"))
        self.assertEqual(a["X.509 Certificate Subject"][0].find("SUBJECT_DISTINGUISHED_NAME").value, subject_der)
        self.assertEqual(a["X.509 Certificate Issuer"][0].find("ISSUER_DISTINGUISHED_NAME").value, subject_der)
        self.assertEqual(a["Certificate Identifier"][0].find("SERIAL_NUMBER").value, str(0x1234567890ABCDEF))
        self.assertIn("CN=objects-test", a["Certificate Subject"][0].find(
            "CERTIFICATE_SUBJECT_DISTINGUISHED_NAME").value)
        # KMIP 2.x: the name parts, each OU an instance; the 1.0 forms are gone.
        r = self.call(K.BatchItem("GET_ATTRIBUTES", [Text("UNIQUE_IDENTIFIER", uid)] + [
            Enum(ATTRIBUTE_REFERENCE, t) for t in (SUBJECT_CN, SUBJECT_O, SUBJECT_OU, ISSUER_CN)]), V21)
        self.assertSuccess(r, "2.1 Get Attributes of the name parts")
        got = [(n.tag, n.value) for n in r.payload.find(ATTRIBUTES).children()]
        self.assertEqual(sorted(got), sorted([(SUBJECT_CN, "objects-test"), (SUBJECT_O, "Example"),
                                              (SUBJECT_OU, "Storage"), (SUBJECT_OU, "Backup"),
                                              (ISSUER_CN, "objects-test")]))
        names = self.attr_names_v2(uid)
        self.assertIn(T.CERTIFICATE_LENGTH, names)
        self.assertIn(SUBJECT_OU, names)
        self.assertNotIn(0x420014, names, "Certificate Identifier (removed in 2.0) shown to 2.1")
        # Destroy leaves nothing to Get.
        self.assertSuccess(self.call(K.destroy(uid, K.batch_id())), "Destroy")
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "ITEM_NOT_FOUND", "Get after Destroy")

    def attr_names_v2(self, uid):
        r = self.call(K.BatchItem("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)]), V21)
        self.assertSuccess(r, "2.1 Get Attribute List")
        return [n.value for n in r.payload.find_all(ATTRIBUTE_REFERENCE)]

    def test_certificate_attributes_are_read_only(self):
        _, der = make_certificate()
        uid = self.register(K.register_certificate(der))
        for item, what in (
                (with_uid("MODIFY_ATTRIBUTE", uid, K.attr("Certificate Length", Int("ATTRIBUTE_VALUE", 1))),
                 "Modify Certificate Length"),
                (with_uid("ADD_ATTRIBUTE", uid, K.attr("Digital Signature Algorithm", Enum("ATTRIBUTE_VALUE", 3))),
                 "Add Digital Signature Algorithm"),
                (with_uid("DELETE_ATTRIBUTE", uid, Text("ATTRIBUTE_NAME", "Certificate Type")),
                 "Delete Certificate Type")):
            self.assertFailure(self.call(item), "PERMISSION_DENIED", what + " (1.4)")
        r = self.call(with_uid("MODIFY_ATTRIBUTE", uid, S(NEW_ATTRIBUTE, Int("CERTIFICATE_LENGTH", 1))), V21)
        self.assertEqual((r.status, r.reason), (1, REASON_ATTRIBUTE_READ_ONLY), "2.1 Modify: " + r.describe())
        self.assertEqual(self.attrs(uid, ["Certificate Length"])["Certificate Length"][0].value, len(der))
        # Certificates are not secret: no export policy applies, and they are never wrapped.
        kek = self.create_key("admin")
        r = self.call(K.get(uid, K.batch_id(), extra=[
            S("KEY_WRAPPING_SPECIFICATION", Enum("WRAPPING_METHOD", "ENCRYPT"),
              S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", kek)))]))
        self.assertFailure(r, "FEATURE_NOT_SUPPORTED", "wrapped Get of a certificate")

    def test_malformed_certificates_refused(self):
        _, der = make_certificate()
        for bad, what in ((os.urandom(300), "random bytes"), (der[:-1], "truncated"),
                          (der + b"\x00", "a byte after the certificate"), (b"\x30\x00", "an empty SEQUENCE")):
            r = self.call(K.register_certificate(bad))
            self.assertFailure(r, "INVALID_FIELD", "Certificate Value of %s" % what)
            self.assertIn("not one DER X.509 certificate", r.message or "", what)
        r = self.call(K.register_certificate(der, cert_type=K.CERTIFICATE_PGP))
        self.assertFailure(r, "FEATURE_NOT_SUPPORTED", "a PGP certificate")
        r = self.call(K.register_certificate(der, attributes=[
            K.attr("Certificate Type", Enum("ATTRIBUTE_VALUE", K.CERTIFICATE_PGP))]))
        self.assertFailure(r, "INVALID_FIELD", "template Certificate Type other than the certificate's")
        r = self.call(K.register_secret_data(b"pw", attributes=[
            K.attr("Certificate Type", Enum("ATTRIBUTE_VALUE", K.CERTIFICATE_X509))]))
        self.assertFailure(r, "INVALID_FIELD", "Certificate Type on Secret Data")

    def test_unknown_object_is_object_not_found_in_2x(self):
        r = self.call(K.get("AAABBBCCC", K.batch_id()), V21)
        self.assertEqual((r.status, r.reason), (1, REASON_OBJECT_NOT_FOUND), r.describe())
        self.assertFailure(self.call(K.get("AAABBBCCC", K.batch_id())), "ITEM_NOT_FOUND", "1.4")


if __name__ == "__main__":
    unittest.main()
