"""Resident keys (policy `residency: hsm`): Create makes a non-extractable token object
named by the UID and stores no blob; the key works for server-side cryptography; Get
never returns it; Destroy removes the token object.

The token is observed through SoftHSM's files (one *.object file per token object in
DIR/tokens/<serial>/) and through the gateway itself, so no PKCS#11 tool is needed."""

import glob
import os
import unittest

from kmip.core import enums

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Enum, Bool, Text, Bytes

V14 = (1, 4)
MASK = enums.CryptographicUsageMask

# The backup group, rewritten for these tests: every operation, plaintext export allowed
# by policy (so that a refused Get is residency's doing, not export's), keys in the HSM.
RESIDENT_GROUP = """  backup:
    ou: backup
    operations: all
    create:
      object_types: [Symmetric Key]
      algorithms: [AES, HMAC-SHA256]
    export: plaintext
    residency: hsm
    scope: own

"""


def make_backup_resident(gw):
    path = gw.path(gw.get_config("policy", "path") or "policy.yaml")
    with open(path) as f:
        lines = f.read().splitlines(True)
    start = lines.index("  backup:\n")
    end = start + 1
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1
    lines[start:end] = [RESIDENT_GROUP]
    with open(path, "w") as f:
        f.writelines(lines)


def field(item, tag):
    f = item.payload.find(tag) if item.payload is not None else None
    return f.value if f is not None else None


class Resident(GatewayTestCase):
    gw_name = "resident"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            make_backup_resident(cls.gw)
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def call(self, item, identity="backup"):
        return self.gw.request(identity, K.request(item, version=V14)).item

    def token_objects(self):
        return len(glob.glob(self.gw.path("tokens", "*", "*.object")))

    def create(self, alg, bits, mask):
        item = self.call(K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", alg)),
              K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", mask)),
              K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", bits)))], K.batch_id()))
        self.assertSuccess(item, "Create resident key")
        uid = item.uid()
        self.assertSuccess(self.call(K.activate(uid, K.batch_id())), "Activate")
        return uid

    def store_row(self, uid):
        with self.gw.store_db(readonly=True) as db:
            return db.execute("SELECT blob, storage FROM objects WHERE uid = ?", (uid,)).fetchone()

    def gcm(self, name, uid, data, iv=None, tag=None):
        return self.call(K.BatchItem(name, [
            Text("UNIQUE_IDENTIFIER", uid),
            S("CRYPTOGRAPHIC_PARAMETERS", Enum("BLOCK_CIPHER_MODE", 0x09),
              Bool("RANDOM_IV", True) if iv is None else None),
            Bytes("DATA", data),
            Bytes("IV_COUNTER_NONCE", iv) if iv is not None else None,
            Bytes("AUTHENTICATED_ENCRYPTION_TAG", tag) if tag is not None else None], K.batch_id()))

    def test_resident_aes_lifecycle(self):
        before = self.token_objects()
        uid = self.create(0x03, 256, MASK.ENCRYPT.value | MASK.DECRYPT.value)
        self.assertEqual(self.token_objects(), before + 1, "one token object per resident key")
        blob, storage = self.store_row(uid)
        self.assertFalse(blob, "a resident key has no blob in the store")
        self.assertEqual(storage, 1, "storage RESIDENT")

        # Get never hands it out, whatever the group's export policy says.
        item = self.call(K.get(uid, K.batch_id()))
        self.assertNotEqual(item.status, K.RESULT_STATUS["SUCCESS"], "Get of a resident key: %s" % item.describe())
        self.assertIsNone(K.symmetric_key_of(item.payload) if item.payload is not None else None)

        # It works in the HSM.
        enc = self.gcm("ENCRYPT", uid, b"resident secret")
        self.assertSuccess(enc, "Encrypt with a resident key")
        ct, iv = field(enc, "DATA"), field(enc, "IV_COUNTER_NONCE")
        tag = field(enc, "AUTHENTICATED_ENCRYPTION_TAG")
        dec = self.gcm("DECRYPT", uid, ct, iv, tag)
        self.assertSuccess(dec, "Decrypt with a resident key")
        self.assertEqual(field(dec, "DATA"), b"resident secret")
        bad = self.gcm("DECRYPT", uid, ct, iv, bytes([tag[0] ^ 1]) + tag[1:])
        self.assertFailure(bad, "CRYPTOGRAPHIC_FAILURE", "tampered tag, resident key")

        # Revoke, Destroy: the token object goes, and the key with it.
        self.assertSuccess(self.call(K.revoke(uid, bid=K.batch_id())), "Revoke")
        self.assertSuccess(self.call(K.destroy(uid, K.batch_id())), "Destroy")
        self.assertEqual(self.token_objects(), before, "Destroy removed the token object")
        self.assertFalse(self.gcm("DECRYPT", uid, ct, iv, tag).ok, "a destroyed key decrypts nothing")

    def test_resident_usage_flags_and_hmac(self):
        before = self.token_objects()
        enc_only = self.create(0x03, 128, MASK.ENCRYPT.value)
        enc = self.gcm("ENCRYPT", enc_only, b"x")
        self.assertSuccess(enc)
        dec = self.gcm("DECRYPT", enc_only, field(enc, "DATA"), field(enc, "IV_COUNTER_NONCE"),
                       field(enc, "AUTHENTICATED_ENCRYPTION_TAG"))
        self.assertFailure(dec, "PERMISSION_DENIED", "no Decrypt bit")

        mac_key = self.create(0x09, 256, MASK.MAC_GENERATE.value | MASK.MAC_VERIFY.value)
        item = self.call(K.BatchItem("MAC", [Text("UNIQUE_IDENTIFIER", mac_key), Bytes("DATA", b"m")],
                                     K.batch_id()))
        self.assertSuccess(item, "MAC with a resident HMAC key")
        mac = field(item, "MAC_DATA")
        self.assertEqual(len(mac), 32)
        for m, want in ((mac, enums.ValidityIndicator.VALID), (mac[::-1], enums.ValidityIndicator.INVALID)):
            item = self.call(K.BatchItem("MAC_VERIFY", [Text("UNIQUE_IDENTIFIER", mac_key), Bytes("DATA", b"m"),
                                                        Bytes("MAC_DATA", m)], K.batch_id()))
            self.assertSuccess(item)
            self.assertEqual(field(item, "VALIDITY_INDICATOR"), want.value)
        self.assertEqual(self.token_objects(), before + 2)

    def test_register_into_resident_group(self):
        """Register into a residency-hsm group makes a resident token object from the key:
        no blob in the store, Get refused, and the HSM computes with the very key sent."""
        import hashlib
        import hmac
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from kmip.pie import exceptions as pie_exceptions
        from kmip.pie import objects
        A = enums.CryptographicAlgorithm
        before = self.token_objects()
        aes = os.urandom(16)
        mac_key = os.urandom(33)
        with self.gw.pykmip_client("backup") as c:
            uid = c.register(objects.SymmetricKey(A.AES, 128, aes, masks=[MASK.ENCRYPT, MASK.DECRYPT]))
            c.activate(uid)
            hid = c.register(objects.SymmetricKey(A.HMAC_SHA256, 264, mac_key, masks=[MASK.MAC_GENERATE]))
            c.activate(hid)
            # Too short for HMAC-SHA256: refused, and no token object is left behind.
            with self.assertRaises(pie_exceptions.KmipOperationFailure) as cm:
                c.register(objects.SymmetricKey(A.HMAC_SHA256, 248, os.urandom(31), masks=[MASK.MAC_GENERATE]))
            self.assertEqual(cm.exception.reason, enums.ResultReason.INVALID_FIELD, str(cm.exception))
        self.assertEqual(self.token_objects(), before + 2, "one token object per registered key")
        for u in (uid, hid):
            blob, storage = self.store_row(u)
            self.assertFalse(blob, "a resident key has no blob in the store")
            self.assertEqual(storage, 1)
            item = self.call(K.get(u, bid=K.batch_id()))
            self.assertNotEqual(item.status, K.RESULT_STATUS["SUCCESS"], "Get of a resident key")
        enc = self.gcm("ENCRYPT", uid, b"registered secret")
        self.assertSuccess(enc, "Encrypt with a registered resident key")
        plain = AESGCM(aes).decrypt(field(enc, "IV_COUNTER_NONCE"),
                                    field(enc, "DATA") + field(enc, "AUTHENTICATED_ENCRYPTION_TAG"), None)
        self.assertEqual(plain, b"registered secret")
        item = self.call(K.BatchItem("MAC", [Text("UNIQUE_IDENTIFIER", hid), Bytes("DATA", b"m")], K.batch_id()))
        self.assertSuccess(item, "MAC with a registered resident HMAC key")
        self.assertEqual(field(item, "MAC_DATA"), hmac.new(mac_key, b"m", hashlib.sha256).digest())
        # The usage mask is the object's flags: no Decrypt... (MAC key cannot encrypt).
        self.assertFalse(self.gcm("ENCRYPT", hid, b"x").ok, "an HMAC key does not encrypt")

    def test_undo_batch_refuses_resident_keys(self):
        """A batch with Undo cannot roll back the HSM: making a resident key in one is
        refused (Feature Not Supported), the item before it is undone, and no token
        object is left behind; the same Create outside such a batch works."""
        before = self.token_objects()
        create = K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", 0x03)),
              K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", MASK.ENCRYPT.value)),
              K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 256)))], K.batch_id())
        msg = K.request([K.discover_versions(K.batch_id()), create], version=V14,
                        extra_header=[Enum("BATCH_ERROR_CONTINUATION_OPTION", 0x03)])  # Undo
        resp = self.gw.request("backup", msg)
        self.assertEqual(len(resp.items), 2)
        self.assertEqual(resp.items[0].status, K.RESULT_STATUS["OPERATION_UNDONE"])
        self.assertFailure(resp.items[1], "FEATURE_NOT_SUPPORTED", "resident Create in a batch with Undo")
        self.assertEqual(self.token_objects(), before)
        # The audit says the first item ran and was then undone.
        import json
        with open(self.gw.path("audit.log")) as f:
            undone = [json.loads(l) for l in f if '"undone: a later item' in l]
        self.assertEqual([(r["operation"], r["result"]) for r in undone], [("Discover Versions", "undone")])
        self.create(0x03, 256, MASK.ENCRYPT.value)
        self.assertEqual(self.token_objects(), before + 1)

    def test_wrapped_groups_unchanged(self):
        """admin (residency wrapped by default) still gets a blob and a Get-able key."""
        before = self.token_objects()
        uid = self.create_key("admin")
        blob, storage = self.store_row(uid)
        self.assertTrue(blob)
        self.assertEqual(storage, 0)
        self.assertEqual(self.token_objects(), before)
        self.assertEqual(len(self.get_key("admin", uid)), 32)


if __name__ == "__main__":
    unittest.main()
