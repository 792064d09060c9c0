"""Operations: backup and restore while traffic runs; two gateways active-active on one
PostgreSQL database and one token, with a client failing over when one is killed.

The "same token" is a copy of the first gateway's SoftHSM token directory (with its PIN and
dev PKI), standing for an HSM cluster with a replicated master key. Without it a restored
store is useless: every blob is wrapped under that master key.
"""

import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import kg_kmip as K
from kg_harness import ConnectionClosed, Gateway, GatewayTestCase, HarnessError, pg_database, store_kind


def same_hsm(src, dst):
    """Give gateway `dst` the token, PIN and PKI of `src` (before dst starts)."""
    for name in ("tokens", "pki"):
        shutil.rmtree(dst.path(name))
        shutil.copytree(src.path(name), dst.path(name))
    for name in ("hsm.pin", "hsm-so.pin"):
        shutil.copy2(src.path(name), dst.path(name))


def kmipgw(gw, *args):
    r = subprocess.run([gw.bin] + list(args), env=gw.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class BackupRestore(GatewayTestCase):
    gw_name = "backup"

    def test_backup_during_traffic_then_restore_on_a_fresh_gateway(self):
        before = {}
        for _ in range(20):
            uid = self.create_key("vsphere")
            before[uid] = self.get_key("vsphere", uid)
        tagged = next(iter(before))
        self.assertSuccess(self.gw.request("vsphere", K.request(
            K.add_attribute(tagged, "x-Name", "vm-backup", K.batch_id()))).item)

        # Traffic during the backup: Creates that keep committing.
        stop = threading.Event()
        during = []
        errors = []

        def traffic():
            try:
                while not stop.is_set():
                    during.append(self.create_key("vsphere"))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=traffic)
        t.start()
        time.sleep(0.5)
        out_dir = tempfile.mkdtemp(prefix="kgtest-backup-file-")
        backup = os.path.join(out_dir, "kmipgw-backup.db")
        rc, out, err = kmipgw(self.gw, "backup", "--config", self.gw.path("gateway.yaml"), backup)
        time.sleep(0.3)
        stop.set()
        t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("objects", out)
        self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)
        self.assertGreater(len(during), 0, "no traffic ran during the backup")

        db = sqlite3.connect("file:%s?mode=ro" % backup, uri=True)
        in_backup = {r[0] for r in db.execute("SELECT uid FROM objects")}
        attrs = db.execute("SELECT count(*) FROM attributes").fetchone()[0]
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        self.assertEqual(integrity, "ok")
        self.assertTrue(set(before) <= in_backup, "keys acknowledged before the backup are missing")
        self.assertGreater(attrs, 0)
        # A consistent instant: whatever Create made it in has its attributes too (no torn key).
        self.assertIn("%d objects, %d attributes" % (len(in_backup), attrs), out)

        # Refusals: an existing file is never overwritten; restore needs a file and an empty store.
        rc, out2, err2 = kmipgw(self.gw, "backup", "--config", self.gw.path("gateway.yaml"), backup)
        self.assertEqual(rc, 1)
        self.assertIn("exists", err2)
        rc, _, err2 = kmipgw(self.gw, "restore", "--config", self.gw.path("gateway.yaml"), backup)
        self.assertEqual(rc, 1)
        self.assertIn("already holds objects", err2)
        rc, _, err2 = kmipgw(self.gw, "restore", "--config", self.gw.path("gateway.yaml"),
                             os.path.join(out_dir, "missing.db"))
        self.assertEqual(rc, 1)
        self.assertFalse(os.path.exists(os.path.join(out_dir, "missing.db")))
        self.assertEqual(kmipgw(self.gw, "backup", "--config")[0], 2)

        # A fresh gateway on the same HSM token, restored from the file.
        fresh = Gateway("restored")
        try:
            same_hsm(self.gw, fresh)
            rc, out, err = kmipgw(fresh, "restore", "--config", fresh.path("gateway.yaml"), backup)
            self.assertEqual(rc, 0, out + err)
            fresh.start()
            for uid in in_backup:
                resp = fresh.request("vsphere", K.request(K.get(uid, K.batch_id())))
                self.assertSuccess(resp.item, "Get %s on the restored gateway" % uid)
                material = K.symmetric_key_of(resp.item.payload)[0]
                want = before.get(uid) or self.get_key("vsphere", uid)
                self.assertEqual(material, want, "key %s reads back differently" % uid)
            resp = fresh.request("vsphere", K.request(K.get_attributes(tagged, "x-Name", K.batch_id())))
            self.assertEqual([v.value for n, v in resp.item.attributes()], ["vm-backup"])
            # New keys on the restored store do not collide with restored ones.
            resp = fresh.request("vsphere", K.request(K.create_aes256(K.batch_id())))
            self.assertSuccess(resp.item)
            self.assertNotIn(resp.item.uid(), in_backup)
        finally:
            fresh.cleanup()
            shutil.rmtree(out_dir, ignore_errors=True)

    def test_restore_without_the_master_key_reads_nothing(self):
        """A store backup without the HSM's master key is useless: a gateway on another
        token refuses every restored key rather than serve the wrong bytes."""
        uid = self.create_key("vsphere")
        out_dir = tempfile.mkdtemp(prefix="kgtest-backup-file-")
        backup = os.path.join(out_dir, "b.db")
        other = Gateway("other-token")
        try:
            self.assertEqual(kmipgw(self.gw, "backup", "--config", self.gw.path("gateway.yaml"), backup)[0], 0)
            # Same PKI (so the client is trusted), but its own token and master key.
            shutil.rmtree(other.path("pki"))
            shutil.copytree(self.gw.path("pki"), other.path("pki"))
            rc, out, err = kmipgw(other, "restore", "--config", other.path("gateway.yaml"), backup)
            self.assertEqual(rc, 0, out + err)
            other.start()
            resp = other.request("vsphere", K.request(K.get(uid, K.batch_id())))
            self.assertEqual(resp.item.status, K.RESULT_STATUS["OPERATION_FAILED"], resp.item.describe())
        finally:
            other.cleanup()
            shutil.rmtree(out_dir, ignore_errors=True)


@unittest.skipUnless(store_kind() == "postgresql", "active-active needs the PostgreSQL store "
                     "(KGTEST_STORE=postgresql; scripts/test runs it)")
class ActiveActive(unittest.TestCase):
    """Two gateways, one PostgreSQL database, copies of one token."""

    @classmethod
    def setUpClass(cls):
        cls.a = Gateway("node-a")
        cls.b = Gateway("node-b")
        try:
            same_hsm(cls.a, cls.b)
            cls.b.use_postgresql(cls.a.store_url)
            cls.a.start()
            cls.b.start()
        except BaseException:
            cls.a.cleanup()
            cls.b.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.a.cleanup()
        cls.b.cleanup()

    def create(self, gw):
        resp = gw.request("vsphere", K.request(K.create_aes256(K.batch_id())))
        self.assertEqual(resp.item.status, K.RESULT_STATUS["SUCCESS"], resp.item.describe())
        return resp.item.uid()

    def get(self, gw, uid):
        resp = gw.request("vsphere", K.request(K.get(uid, K.batch_id())))
        self.assertEqual(resp.item.status, K.RESULT_STATUS["SUCCESS"], resp.item.describe())
        return K.symmetric_key_of(resp.item.payload)[0]

    def test_a_key_made_on_one_is_read_on_the_other_at_once(self):
        for maker, reader in ((self.a, self.b), (self.b, self.a)):
            uid = self.create(maker)
            self.assertEqual(self.get(reader, uid), self.get(maker, uid))
            resp = reader.request("vsphere", K.request(K.add_attribute(uid, "x-Name", "vm-%d" % maker.port,
                                                                         K.batch_id())))
            self.assertEqual(resp.item.status, K.RESULT_STATUS["SUCCESS"])
            resp = maker.request("vsphere", K.request(K.get_attributes(uid, "x-Name", K.batch_id())))
            self.assertEqual([v.value for n, v in resp.item.attributes()], ["vm-%d" % maker.port])

    def test_concurrent_tags_on_one_key_from_both(self):
        uid = self.create(self.a)
        errors = []

        def tag(gw, thread, n):
            for i in range(n):
                resp = gw.request("vsphere", K.request(K.add_attribute(uid, "x-Tag", "%d-%d" % (thread, i),
                                                                         K.batch_id())))
                if resp.item.status != K.RESULT_STATUS["SUCCESS"]:
                    errors.append(resp.item.describe())

        threads = [threading.Thread(target=tag, args=(gw, i, 15))
                   for i, gw in enumerate((self.a, self.b, self.a, self.b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        resp = self.b.request("vsphere", K.request(K.get_attributes(uid, "x-Tag", K.batch_id())))
        self.assertEqual(len([1 for n, v in resp.item.attributes() if n == "x-Tag"]), 60)

    def test_failover_when_one_gateway_is_killed_during_load(self):
        """Clients use the server list [a, b] as vCenter does: on a connection error they
        retry the same request on the next server. Nothing acknowledged may be lost."""
        servers = [self.a, self.b]
        acked = {}
        failovers = []
        stop = threading.Event()
        errors = []

        def client(seed):
            current = seed % 2
            while not stop.is_set():
                for attempt in range(2):
                    gw = servers[current]
                    try:
                        resp = gw.request("vsphere", K.request(K.create_aes256(K.batch_id())))
                        if resp.item.status != K.RESULT_STATUS["SUCCESS"]:
                            errors.append(resp.item.describe())
                            return
                        uid = resp.item.uid()
                        acked[uid] = self.get(gw, uid)
                        break
                    except (OSError, ConnectionClosed, HarnessError, AssertionError):
                        failovers.append(gw.port)
                        current = 1 - current
                else:
                    errors.append("both servers failed")
                    return

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        self.a.kill()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertIn(self.a.port, failovers, "no client saw gateway a go away")
        self.assertGreater(len(acked), 10)
        for uid, material in acked.items():
            self.assertEqual(self.get(self.b, uid), material, "acknowledged key %s lost" % uid)
        # a comes back and sees everything b made meanwhile.
        self.a.start()
        for uid, material in list(acked.items())[-5:]:
            self.assertEqual(self.get(self.a, uid), material)


if __name__ == "__main__":
    unittest.main()
