"""Blob binding (issue 9): every stored blob is bound to its object by an HMAC made in the HSM.

Edits the SQLite store (with the gateway stopped) the way an attacker with the
file would: swapping the blobs
of two keys, flipping one bit, changing a row's owner_group. Each is answered
Cryptographic Failure with no key bytes, never with the other key, and putting
the row back makes it work again. Then a store written before blob binding
(blob_mac NULLed): serve refuses to start and names `kmipgw init`, init seals,
and every key reads back the same.
"""

import subprocess
import unittest

import kg_kmip
from kg_harness import GatewayTestCase, HarnessError


class BlobBinding(GatewayTestCase):
    gw_name = "blob-binding"

    def db(self):
        """A connection that commits and is closed at the end of the block: a
        connection left open with an unfinished SELECT would pin an old WAL
        snapshot in this process."""
        return self.gw.store_db()

    def offline(self, sql_args):
        """Run [(sql, args)] on the store with the gateway stopped (every change on
        disk, nothing cached), then start it again; returns the last statement's rows."""
        self.gw.stop()
        try:
            with self.db() as c:
                rows = None
                for sql, args in sql_args:
                    rows = c.execute(sql, args).fetchall()
            return rows
        finally:
            self.gw.start()

    def row(self, uid):
        return self.offline([("SELECT blob, owner_group, blob_mac FROM objects WHERE uid = ?", (uid,))])[0]

    def set_blob(self, uid, blob):
        self.offline([("UPDATE objects SET blob = ? WHERE uid = ?", (blob, uid))])

    def assertRefused(self, identity, uid, secrets, what):
        """Get answers Cryptographic Failure, and no byte string of `secrets` is in the answer."""
        resp = self.gw.request(identity, kg_kmip.request(kg_kmip.get(uid, kg_kmip.batch_id())))
        self.assertFailure(resp.item, "CRYPTOGRAPHIC_FAILURE", what)
        self.assertIsNone(kg_kmip.symmetric_key_of(resp.item.payload), what)
        for s in secrets:
            self.assertNotIn(s, resp.raw, what)
            self.assertNotIn(s.hex().encode(), resp.raw.lower(), what)

    def test_1_swapped_blobs_are_refused(self):
        a, b = self.create_key("vsphere"), self.create_key("vsphere")
        ka, kb = self.get_key("vsphere", a), self.get_key("vsphere", b)
        blob_a, blob_b = self.row(a)[0], self.row(b)[0]
        self.assertIsNotNone(self.row(a)[2], "a new row carries its tag")
        self.assertEqual(len(self.row(a)[2]), 32)
        self.set_blob(a, blob_b)
        self.set_blob(b, blob_a)
        self.assertRefused("vsphere", a, [ka, kb], "Get of a with b's blob")
        self.assertRefused("vsphere", b, [ka, kb], "Get of b with a's blob")
        self.set_blob(a, blob_a)
        self.set_blob(b, blob_b)
        self.assertEqual(self.get_key("vsphere", a), ka)
        self.assertEqual(self.get_key("vsphere", b), kb)

    def test_2_flipped_bit_is_refused(self):
        a = self.create_key("vsphere")
        ka = self.get_key("vsphere", a)
        blob = self.row(a)[0]
        for pos in (0, len(blob) // 2, len(blob) - 1):
            bad = bytearray(blob)
            bad[pos] ^= 0x04
            self.set_blob(a, bytes(bad))
            self.assertRefused("vsphere", a, [ka], "Get with bit flipped at %d" % pos)
        self.set_blob(a, blob)
        self.assertEqual(self.get_key("vsphere", a), ka)

    def test_3_changed_owner_group_is_refused(self):
        a = self.create_key("vsphere")
        ka = self.get_key("admin", a)
        self.offline([("UPDATE objects SET owner_group = 'admin' WHERE uid = ?", (a,))])
        self.assertRefused("admin", a, [ka], "Get after owner_group changed")
        self.offline([("UPDATE objects SET owner_group = 'vsphere' WHERE uid = ?", (a,))])
        self.assertEqual(self.get_key("admin", a), ka)
        self.assertEqual(self.get_key("vsphere", a), ka)

    def test_3b_swapped_public_keys_are_refused(self):
        from kmip.core import enums

        def pair(c):
            return c.create_key_pair(enums.CryptographicAlgorithm.EC, 256,
                                     public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
                                     private_usage_mask=[enums.CryptographicUsageMask.SIGN])[0]

        with self.gw.pykmip_client("admin") as c:
            pa, pb = pair(c), pair(c)
            da, db = c.get(pa).value, c.get(pb).value
        blob_a, blob_b = self.row(pa)[0], self.row(pb)[0]
        self.set_blob(pa, blob_b)
        self.set_blob(pb, blob_a)
        with self.gw.pykmip_client("admin") as c:
            for uid in (pa, pb):
                try:
                    c.get(uid)
                    self.fail("Get of public key %s with the other one's blob succeeded" % uid)
                except Exception as e:  # PyKMIP's KmipOperationFailure
                    # Compared by name: the class may come from two imports of kmip.
                    self.assertEqual(type(e).__name__, "KmipOperationFailure", repr(e))
                    self.assertEqual(e.reason, enums.ResultReason.CRYPTOGRAPHIC_FAILURE)
                    self.assertIn(uid, str(e))
        self.set_blob(pa, blob_a)
        self.set_blob(pb, blob_b)
        with self.gw.pykmip_client("admin") as c:
            self.assertEqual(c.get(pa).value, da)
            self.assertEqual(c.get(pb).value, db)

    def test_4_store_before_binding_is_sealed_by_init(self):
        keys = {}
        for _ in range(3):
            uid = self.create_key("vsphere")
            keys[uid] = self.get_key("vsphere", uid)
        self.gw.stop()
        with self.db() as c:
            c.execute("UPDATE objects SET blob_mac = NULL")
            n = c.execute("SELECT COUNT(*) FROM objects WHERE blob_mac IS NULL AND length(blob) > 0").fetchone()[0]
        self.assertGreaterEqual(n, 3)
        with self.assertRaises(HarnessError) as cm:
            self.gw.start()
        self.assertIn("run kmipgw init", str(cm.exception))
        self.assertIn("not yet bound to their objects", str(cm.exception))
        r = subprocess.run([self.gw.bin, "init", "--config", self.gw.path("gateway.yaml")], env=self.gw.env(),
                           cwd=self.gw.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("%d blobs sealed" % n, out)
        # Idempotent: a second run seals nothing.
        r = subprocess.run([self.gw.bin, "init", "--config", self.gw.path("gateway.yaml")], env=self.gw.env(),
                           cwd=self.gw.dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        self.assertIn("0 blobs sealed", r.stdout.decode(errors="replace"))
        self.gw.start()
        for uid, material in keys.items():
            self.assertEqual(self.get_key("vsphere", uid), material, uid)


if __name__ == "__main__":
    unittest.main()
