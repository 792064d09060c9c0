"""Create Key Pair, Re-key and Re-key Key Pair (KMIP 1.4 sections 4.2, 4.4, 4.5).

PyKMIP's ProxyKmipClient makes the pairs and re-keys symmetric keys; kg_kmip builds
what PyKMIP cannot send (Recommended Curve, Re-key Key Pair). The module writes its
own policy before the gateway starts:
  admin    everything; create rules allow RSA/EC key pairs
  backup   may call Create Key Pair, but its create rules allow Symmetric Keys only;
           residency hsm (resident Re-key)
  vsphere  residency hsm, key pairs allowed, at most 5 live objects
"""

import os
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from kmip.core import enums
from kmip.pie import exceptions as pie_exceptions
from kmip.pie import objects

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Enum, Text, DateTime, Interval, CRYPTOGRAPHIC_ALGORITHM

POLICY = """version: 1
no_ou: deny
ambiguous: deny
groups:
  admin:
    ou: admin
    operations: all
    create:
      object_types: [Symmetric Key, Private Key, Public Key]
      algorithms: [AES, HMAC-SHA256, RSA, EC, ECDSA]
    export: plaintext
    scope: all
  backup:
    ou: backup
    operations: [Discover Versions, Query, Create, Create Key Pair, Re-key, Get, Get Attributes]
    create:
      object_types: [Symmetric Key]
      algorithms: [AES]
    export: wrapped
    residency: hsm
    scope: own
  vsphere:
    ou: vsphere
    operations: [Discover Versions, Query, Create Key Pair, Re-key Key Pair, Get Attributes]
    create:
      object_types: [Private Key, Public Key]
      algorithms: [EC]
    residency: hsm
    scope: own
    limits: { max_live_objects: 5 }
"""

LINK_PUBLIC, LINK_PRIVATE, LINK_REPLACEMENT, LINK_REPLACED = 0x102, 0x103, 0x106, 0x107
CURVE_P384, CURVE_P521 = 0x0A, 0x0F
EC = CRYPTOGRAPHIC_ALGORITHM.get("EC", 0x1A)
RSA = CRYPTOGRAPHIC_ALGORITHM["RSA"]


def cattr(name, item):
    return K.attr(name, item)


def create_key_pair(algorithm, length=None, curve=None, priv_mask=None, extra_common=()):
    common = [cattr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", algorithm))]
    if length is not None:
        common.append(cattr("Cryptographic Length", Int("ATTRIBUTE_VALUE", length)))
    if curve is not None:
        common.append(cattr("Cryptographic Domain Parameters",
                            S("ATTRIBUTE_VALUE", Enum("RECOMMENDED_CURVE", curve))))
    common.extend(extra_common)
    payload = [S("COMMON_TEMPLATE_ATTRIBUTE", *common)]
    if priv_mask is not None:
        payload.append(S("PRIVATE_KEY_TEMPLATE_ATTRIBUTE",
                         cattr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", priv_mask))))
    return K.BatchItem("CREATE_KEY_PAIR", payload, K.batch_id())


def rekey_key_pair(priv_uid, offset=None):
    return K.BatchItem("REKEY_KEY_PAIR", [
        Text("PRIVATE_KEY_UNIQUE_IDENTIFIER", priv_uid),
        Interval("OFFSET", offset) if offset is not None else None,
    ], K.batch_id())


def rekey(uid, offset=None):
    return K.BatchItem("REKEY", [
        Text("UNIQUE_IDENTIFIER", uid),
        Interval("OFFSET", offset) if offset is not None else None,
    ], K.batch_id())


def pair_uids(item):
    p = item.payload
    return (p.find("PRIVATE_KEY_UNIQUE_IDENTIFIER").value, p.find("PUBLIC_KEY_UNIQUE_IDENTIFIER").value)


class KeyPairs(GatewayTestCase):
    gw_name = "keypair"

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
    def client(self):
        return self.gw.pykmip_client("admin")

    def req(self, identity, item):
        return self.gw.request(identity, K.request(item)).item

    def attrs(self, identity, uid, names=()):
        """{name: [value Item]} from Get Attributes (all when names is empty)."""
        item = self.req(identity, K.get_attributes(uid, list(names), K.batch_id()))
        self.assertSuccess(item, "Get Attributes %s" % uid)
        out = {}
        for name, value in item.attributes():
            out.setdefault(name, []).append(value)
        return out

    def links(self, identity, uid):
        out = {}
        for v in self.attrs(identity, uid, ["Link"]).get("Link", []):
            out.setdefault(v.find("LINK_TYPE").value, []).append(v.find("LINKED_OBJECT_IDENTIFIER").value)
        return out

    def date(self, identity, uid, name):
        v = self.attrs(identity, uid, [name]).get(name)
        return v[0].value if v else None

    def row(self, uid):
        with self.gw.store_db(readonly=True) as db:
            return db.execute("SELECT object_type, storage, blob, blob_mechanism, algorithm, length "
                              "FROM objects WHERE uid = ?", (uid,)).fetchone()

    def store_bytes(self):
        data = b""
        for path in self.gw.store_files():
            with open(path, "rb") as f:
                data += f.read()
        return data

    def public_key(self, uid):
        with self.client() as c:
            key = c.get(uid)
        self.assertIsInstance(key, objects.PublicKey)
        return serialization.load_der_public_key(bytes(key.value))

    # --- Create Key Pair -------------------------------------------------------------
    def test_rsa_pair_links_attributes_and_public_key(self):
        with self.client() as c:
            pub, priv = c.create_key_pair(
                enums.CryptographicAlgorithm.RSA, 2048,
                public_name="kp-pub", private_name="kp-priv",
                public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
                private_usage_mask=[enums.CryptographicUsageMask.SIGN])
        self.assertNotEqual(pub, priv)
        self.assertEqual(self.links("admin", priv), {LINK_PUBLIC: [pub]})
        self.assertEqual(self.links("admin", pub), {LINK_PRIVATE: [priv]})
        a = self.attrs("admin", priv)
        self.assertEqual(a["Object Type"][0].value, enums.ObjectType.PRIVATE_KEY.value)
        self.assertEqual(a["Cryptographic Algorithm"][0].value, RSA)
        self.assertEqual(a["Cryptographic Length"][0].value, 2048)
        self.assertEqual(a["Cryptographic Usage Mask"][0].value, 0x1)
        self.assertEqual(a["State"][0].value, enums.State.PRE_ACTIVE.value)
        self.assertIn("Initial Date", a)
        b = self.attrs("admin", pub)
        self.assertEqual(b["Object Type"][0].value, enums.ObjectType.PUBLIC_KEY.value)
        self.assertEqual(b["Cryptographic Usage Mask"][0].value, 0x2)
        self.assertEqual(b["Cryptographic Length"][0].value, 2048)
        key = self.public_key(pub)
        self.assertIsInstance(key, rsa.RSAPublicKey)
        self.assertEqual(key.key_size, 2048)

        # The store: a PUBLIC row holding that very DER, a WRAPPED private row.
        otype, storage, blob, mech, alg, length = self.row(pub)
        self.assertEqual((otype, storage, mech), (3, 2, 0))
        self.assertEqual(bytes(blob), key.public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
        otype, storage, blob, mech, alg, length = self.row(priv)
        self.assertEqual((otype, storage), (4, 0))
        self.assertNotEqual(mech, 0)
        with self.assertRaises(Exception):
            serialization.load_der_private_key(bytes(blob), None)

    def test_store_holds_no_plaintext_private_key(self):
        with self.client() as c:
            pub, priv = c.create_key_pair(enums.CryptographicAlgorithm.RSA, 2048)
        n = self.public_key(pub).public_numbers().n.to_bytes(256, "big")
        spki = bytes(self.row(pub)[2])
        before = spki[:spki.index(n)][-12:]
        hits, foreign = self.modulus_copies(self.store_bytes(), n, before)
        self.assertGreater(hits, 0, "the public key is not in the store at all")
        self.assertEqual(foreign, [], "modulus outside a public key")
        # Negative control: a PKCS#1-shaped copy (version 0, then the modulus) is seen.
        fake = b"\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00" + n
        self.assertEqual(len(self.modulus_copies(fake, n, before)[1]), 1)

    @staticmethod
    def modulus_copies(data, n, before):
        """(copies of n in data, offsets of those not preceded as in the SPKI).
        A PKCS#8 or PKCS#1 private key holds the modulus too; every copy in the
        store must be the SubjectPublicKeyInfo's."""
        hits, foreign = 0, []
        pos = data.find(n)
        while pos >= 0:
            hits += 1
            if data[max(0, pos - 12):pos] != before:
                foreign.append(pos)
            pos = data.find(n, pos + 1)
        return hits, foreign

    def test_rsa_sizes(self):
        with self.client() as c:
            for bits in (3072, 4096):
                pub, priv = c.create_key_pair(enums.CryptographicAlgorithm.RSA, bits)
                self.assertEqual(self.public_key(pub).key_size, bits)
                self.assertEqual(self.links("admin", priv), {LINK_PUBLIC: [pub]})

    def test_ec_pairs(self):
        with self.client() as c:
            pub, priv = c.create_key_pair(enums.CryptographicAlgorithm.EC, 256)
        key = self.public_key(pub)
        self.assertIsInstance(key, ec.EllipticCurvePublicKey)
        self.assertEqual(key.curve.name, "secp256r1")
        # P-384 by Recommended Curve, under ECDSA.
        item = self.req("admin", create_key_pair(CRYPTOGRAPHIC_ALGORITHM["ECDSA"], curve=CURVE_P384))
        self.assertSuccess(item, "Create Key Pair P-384")
        priv, pub = pair_uids(item)
        self.assertEqual(self.public_key(pub).curve.name, "secp384r1")
        self.assertEqual(self.attrs("admin", priv, ["Cryptographic Length"])["Cryptographic Length"][0].value, 384)
        self.assertEqual(self.links("admin", pub), {LINK_PRIVATE: [priv]})

    def test_refused_sizes_and_curves(self):
        with self.client() as c:
            with self.assertRaises(pie_exceptions.KmipOperationFailure) as cm:
                c.create_key_pair(enums.CryptographicAlgorithm.RSA, 1024)
            self.assertEqual(cm.exception.reason, enums.ResultReason.INVALID_FIELD)
        self.assertFailure(self.req("admin", create_key_pair(EC, curve=CURVE_P521)), "FEATURE_NOT_SUPPORTED")
        self.assertFailure(self.req("admin", create_key_pair(EC, length=521)), "FEATURE_NOT_SUPPORTED")
        self.assertFailure(self.req("admin", create_key_pair(EC, length=384, curve=0x07)), "INVALID_FIELD")
        self.assertFailure(self.req("admin", create_key_pair(RSA)), "MISSING_DATA")
        self.assertFailure(self.req("admin", create_key_pair(CRYPTOGRAPHIC_ALGORITHM["AES"], 256)),
                           "FEATURE_NOT_SUPPORTED")

    def test_policy_refuses_key_pairs(self):
        # backup may call Create Key Pair, but its create rules allow Symmetric Keys only.
        self.assertFailure(self.req("backup", create_key_pair(RSA, 2048)), "PERMISSION_DENIED")
        # vsphere's allow EC only.
        self.assertFailure(self.req("vsphere", create_key_pair(RSA, 2048)), "PERMISSION_DENIED")
        # unlisted is nobody.
        self.assertFailure(self.req("unlisted", create_key_pair(EC, 256)), "PERMISSION_DENIED")

    def test_resident_pair_and_live_limit(self):
        item = self.req("vsphere", create_key_pair(EC, 256))
        self.assertSuccess(item, "resident Create Key Pair")
        priv, pub = pair_uids(item)
        otype, storage, blob, mech, alg, length = self.row(priv)
        self.assertEqual((otype, storage), (4, 1))
        self.assertFalse(blob, "a resident private key has no blob")
        self.assertEqual(self.row(pub)[1], 2)
        self.assertEqual(self.links("vsphere", priv), {LINK_PUBLIC: [pub]})
        # Re-key Key Pair keeps residency.
        item = self.req("vsphere", rekey_key_pair(priv))
        self.assertSuccess(item, "resident Re-key Key Pair")
        npriv, npub = pair_uids(item)
        self.assertEqual(self.row(npriv)[1], 1)
        # 4 live objects; a pair more would make 6 > 5.
        self.assertFailure(self.req("vsphere", create_key_pair(EC, 256)), "PERMISSION_DENIED")

    # --- Re-key ----------------------------------------------------------------------
    def make_dated_key(self):
        now = int(time.time())
        at1, dt1 = now + 1000, now + 100000
        item = self.req("admin", K.create_aes256(K.batch_id(), extra_attributes=[
            cattr("Activation Date", DateTime("ATTRIBUTE_VALUE", at1)),
            cattr("Deactivation Date", DateTime("ATTRIBUTE_VALUE", dt1)),
            cattr("Name", S("ATTRIBUTE_VALUE", Text("NAME_VALUE", "rk-%d" % now),
                            Enum("NAME_TYPE", "UNINTERPRETED_TEXT_STRING"))),
            cattr("x-owner", Text("ATTRIBUTE_VALUE", "tests")),
        ]))
        self.assertSuccess(item, "Create dated key")
        return item.uid(), at1, dt1

    def test_rekey_links_offset_dates_and_names(self):
        old, at1, dt1 = self.make_dated_key()
        before = int(time.time())
        with self.client() as c:
            new = c.rekey(uid=old, offset=3600)
            after = int(time.time())
            self.assertNotEqual(new, old)
            self.assertNotEqual(c.get(new).value, c.get(old).value)
        self.assertEqual(self.links("admin", new), {LINK_REPLACED: [old]})
        self.assertEqual(self.links("admin", old), {LINK_REPLACEMENT: [new]})
        at2 = self.date("admin", new, "Activation Date")
        self.assertTrue(before + 3600 <= at2 <= after + 3600, (before, at2, after))
        self.assertEqual(self.date("admin", new, "Deactivation Date"), dt1 + (at2 - at1))
        a_new, a_old = self.attrs("admin", new), self.attrs("admin", old)
        self.assertIn("Name", a_new)
        self.assertNotIn("Name", a_old, "the Name moves to the replacement")
        self.assertEqual(a_new["x-owner"][0].value, "tests")
        self.assertEqual(a_new["State"][0].value, enums.State.PRE_ACTIVE.value)
        self.assertEqual(a_old["State"][0].value, enums.State.PRE_ACTIVE.value)
        self.assertGreaterEqual(a_new["Initial Date"][0].value, before)

    def test_rekey_without_offset_copies_dates(self):
        old, at1, dt1 = self.make_dated_key()
        item = self.req("admin", rekey(old))
        self.assertSuccess(item, "Re-key")
        new = item.uid()
        self.assertEqual(self.date("admin", new, "Activation Date"), at1)
        self.assertEqual(self.date("admin", new, "Deactivation Date"), dt1)
        # Offset 0: active at once.
        item = self.req("admin", rekey(new, offset=0))
        self.assertSuccess(item, "Re-key offset 0")
        newer = item.uid()
        self.assertEqual(self.attrs("admin", newer, ["State"])["State"][0].value, enums.State.ACTIVE.value)
        self.assertEqual(self.attrs("admin", new, ["State"])["State"][0].value, enums.State.PRE_ACTIVE.value)

    def test_rekey_refusals(self):
        uid = self.create_key("admin")
        self.assertSuccess(self.req("admin", K.destroy(uid, K.batch_id())), "Destroy")
        self.assertFailure(self.req("admin", rekey(uid)), "PERMISSION_DENIED")
        item = self.req("admin", create_key_pair(EC, 256))
        self.assertSuccess(item)
        priv, pub = pair_uids(item)
        self.assertFailure(self.req("admin", rekey(priv)), "INVALID_FIELD")
        self.assertFailure(self.req("admin", rekey_key_pair(uid)), "INVALID_FIELD")
        self.assertFailure(self.req("admin", rekey_key_pair(pub)), "INVALID_FIELD")
        self.assertFailure(self.req("admin", rekey("00000000-0000-4000-8000-000000000000")), "ITEM_NOT_FOUND")
        # Another group's pair is as absent as a UID that does not exist.
        self.assertFailure(self.req("vsphere", rekey_key_pair(priv)), "ITEM_NOT_FOUND")

    def test_rekey_hmac_and_resident_keys(self):
        item = self.req("admin", K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              cattr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", CRYPTOGRAPHIC_ALGORITHM["HMAC_SHA256"])),
              cattr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 256)),
              cattr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", 0x80))),
        ], K.batch_id()))
        self.assertSuccess(item, "Create HMAC key")
        old = item.uid()
        item = self.req("admin", rekey(old))
        self.assertSuccess(item, "Re-key HMAC")
        new = item.uid()
        a = self.attrs("admin", new, ["Cryptographic Algorithm", "Cryptographic Length"])
        self.assertEqual(a["Cryptographic Algorithm"][0].value, CRYPTOGRAPHIC_ALGORITHM["HMAC_SHA256"])
        self.assertEqual(a["Cryptographic Length"][0].value, 256)
        self.assertEqual(self.row(new)[1], 0)
        self.assertTrue(self.row(new)[2], "a wrapped HMAC key has a blob")
        self.assertNotEqual(bytes(self.row(new)[2]), bytes(self.row(old)[2]))

        # backup is resident: its replacement is a token object too, with no blob.
        old = self.create_key("backup")
        self.assertEqual(self.row(old)[1], 1)
        item = self.req("backup", rekey(old))
        self.assertSuccess(item, "Re-key resident")
        new = item.uid()
        self.assertEqual(self.row(new)[1], 1)
        self.assertFalse(self.row(new)[2])
        self.assertEqual(self.links("backup", new), {LINK_REPLACED: [old]})

    # --- Re-key Key Pair -------------------------------------------------------------
    def test_rekey_key_pair_links_and_offset(self):
        now = int(time.time())
        at1, dt1 = now + 500, now + 50000
        item = self.req("admin", create_key_pair(RSA, 2048, extra_common=[
            cattr("Activation Date", DateTime("ATTRIBUTE_VALUE", at1)),
            cattr("Deactivation Date", DateTime("ATTRIBUTE_VALUE", dt1)),
        ]))
        self.assertSuccess(item, "Create Key Pair")
        priv, pub = pair_uids(item)
        before = int(time.time())
        item = self.req("admin", rekey_key_pair(priv, offset=60))
        self.assertSuccess(item, "Re-key Key Pair")
        npriv, npub = pair_uids(item)
        self.assertEqual(self.links("admin", npriv), {LINK_PUBLIC: [npub], LINK_REPLACED: [priv]})
        self.assertEqual(self.links("admin", npub), {LINK_PRIVATE: [npriv], LINK_REPLACED: [pub]})
        self.assertEqual(self.links("admin", priv), {LINK_PUBLIC: [pub], LINK_REPLACEMENT: [npriv]})
        self.assertEqual(self.links("admin", pub), {LINK_PRIVATE: [priv], LINK_REPLACEMENT: [npub]})
        at2 = self.date("admin", npriv, "Activation Date")
        self.assertTrue(before + 60 <= at2 <= int(time.time()) + 60)
        self.assertEqual(self.date("admin", npub, "Deactivation Date"), dt1 + (at2 - at1))
        self.assertNotEqual(self.public_key(npub).public_numbers().n, self.public_key(pub).public_numbers().n)
        self.assertEqual(self.attrs("admin", npriv, ["Cryptographic Length"])["Cryptographic Length"][0].value,
                         2048)
