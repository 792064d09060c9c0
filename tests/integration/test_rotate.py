"""kmipgw rotate-master: master wrapping key rotation, online, killed midway and resumed.

The tests run in name order on one gateway: each builds on the token and store
the previous one left (generation 1 -> 2 -> 3, then retiring 1 and 2).
"""

import os
import signal
import subprocess
import threading
import time

from kmip.core import enums
from kmip.pie import objects

import kg_kmip as K
from kg_harness import GatewayTestCase

N_KEYS = 300
ROTATE_TIMEOUT = 180


class Rotate(GatewayTestCase):
    gw_name = "rotate"
    keys = {}          # uid -> plaintext, registered in test_1
    spare_uid = None   # a key whose generation-1 blob test_1 keeps for test_3
    spare_blob = None
    spare_mac = None   # its blob binding tag: an old row comes back whole, tag included

    # --- helpers -------------------------------------------------------------------------
    def rotate(self, *args, config=None, env=None):
        cmd = [self.gw.bin, "rotate-master", "--config", config or self.gw.path("gateway.yaml")] + list(args)
        e = self.gw.env()
        e.update(env or {})
        r = subprocess.run(cmd, env=e, cwd=self.gw.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=ROTATE_TIMEOUT)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def db(self):
        return self.gw.store_db()

    def blobs_by_generation(self):
        """{generation: count} of wrapped blobs (destroyed and public keys excluded)."""
        with self.db() as c:
            rows = c.execute("SELECT mwk_generation, COUNT(*) FROM objects WHERE storage = 0"
                             " AND length(blob) > 0 GROUP BY mwk_generation").fetchall()
        return dict(rows)

    def generation_of(self, uid):
        with self.db() as c:
            return c.execute("SELECT mwk_generation FROM objects WHERE uid = ?", (uid,)).fetchone()[0]

    def get_bytes(self, uid):
        resp = self.gw.request("admin", K.request(K.get(uid, K.batch_id())))
        if not resp.item.ok:
            return None
        key = K.symmetric_key_of(resp.item.payload)
        return key[0] if key else None

    def assert_all_keys_readable(self):
        for uid, material in self.keys.items():
            self.assertEqual(self.get_bytes(uid), material, "key %s unreadable or changed" % uid)

    def register_keys(self, n):
        out = {}
        with self.gw.pykmip_client("admin") as c:
            for _ in range(n):
                material = os.urandom(32)
                uid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, material))
                out[uid] = material
        return out

    # --- tests ---------------------------------------------------------------------------
    def test_0_usage(self):
        rc, _, err = self.rotate("--bogus")
        self.assertEqual(rc, 2, err)
        rc, _, err = self.rotate("--batch", "0")
        self.assertEqual(rc, 2, err)

    def test_1_online_rotation_killed_and_resumed(self):
        cls = type(self)
        cls.keys = self.register_keys(N_KEYS)
        self.assertEqual(self.blobs_by_generation(), {1: N_KEYS})
        cls.spare_uid = sorted(cls.keys)[-1]
        with self.db() as c:
            cls.spare_blob, cls.spare_mac = c.execute("SELECT blob, blob_mac FROM objects WHERE uid = ?",
                                                      (cls.spare_uid,)).fetchone()

        # Clients keep reading keys for the whole rotation.
        stop = threading.Event()
        reads = {"ok": 0, "bad": []}

        def reader():
            uids = sorted(cls.keys)
            i = 0
            while not stop.is_set():
                uid = uids[i % len(uids)]
                got = self.get_bytes(uid)
                if got == cls.keys[uid]:
                    reads["ok"] += 1
                else:
                    reads["bad"].append(uid)
                i += 1

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            # A crash right after the second batch's commit.
            rc, out, err = self.rotate("--batch", "20", env={"KG_ROTATE_TEST_STOP_AFTER": "2"})
            self.assertEqual(rc, 3, out + err)
            self.assertIn("created MWK generation 2", out)
            self.assertEqual(self.blobs_by_generation(), {1: N_KEYS - 40, 2: 40})

            # A Create while the rotation is half done lands under generation 2 once
            # the gateway has looked for a newer generation (at most once a second).
            time.sleep(1.2)
            created = self.create_key("vsphere")
            self.assertEqual(self.generation_of(created), 2)

            # SIGKILL in the middle of a run (one object per transaction: many commits).
            p = subprocess.Popen([self.gw.bin, "rotate-master", "--config", self.gw.path("gateway.yaml"),
                                  "--batch", "1"], env=self.gw.env(), cwd=self.gw.dir,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            first = p.stdout.readline().decode()
            self.assertIn("resuming", first)
            for _ in range(5):
                self.assertIn("batch", p.stdout.readline().decode())
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            p.stdout.close()
            left = self.blobs_by_generation().get(1, 0)
            self.assertGreater(left, 0, "the killed run had already finished: nothing left to resume")
            self.assertLess(left, N_KEYS - 40)

            rc, out, err = self.rotate()
            self.assertEqual(rc, 0, out + err)
            self.assertIn("resuming: %d blobs still below MWK generation 2" % left, out)
            self.assertIn("0 blobs left below generation 2", out)
        finally:
            stop.set()
            t.join(timeout=60)
        self.assertEqual(reads["bad"], [], "Gets failed during the rotation")
        self.assertGreater(reads["ok"], 0)

        self.assertEqual(self.blobs_by_generation(), {2: N_KEYS + 1})
        self.assert_all_keys_readable()
        self.assertEqual(len(self.get_key("vsphere", created)), 32)
        # And after a restart (the gateway reads the generations afresh).
        self.gw.restart()
        self.assert_all_keys_readable()

    def test_2_second_rotation_creates_generation_3(self):
        # Secret Data and an Opaque Object's value are blobs under the MWK like keys.
        values = {}
        for build in (K.register_secret_data, lambda m: K.register_opaque(0x80000002, m)):
            material = os.urandom(20)
            resp = self.gw.request("admin", K.request(build(material), version=(1, 4)))
            self.assertTrue(resp.item.ok, resp.describe())
            values[resp.item.uid()] = material
            self.assertEqual(self.generation_of(resp.item.uid()), 2)
        rc, out, err = self.rotate()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("created MWK generation 3", out)
        self.assertEqual(set(self.blobs_by_generation()), {3})
        # A run with nothing left below the newest generation starts a new rotation.
        # The gateway, which has not met a generation-3 blob yet (no Get since),
        # learns of it without a restart: it looks for a newer one at most once a
        # second when it wraps.
        time.sleep(1.2)
        self.assertEqual(self.generation_of(self.create_key("vsphere")), 3)
        self.assert_all_keys_readable()
        for uid, material in values.items():
            self.assertEqual(self.generation_of(uid), 3)
            resp = self.gw.request("admin", K.request(K.get(uid, K.batch_id()), version=(1, 4)))
            self.assertTrue(resp.item.ok, resp.describe())
            self.assertIn(material, resp.raw, "value %s changed by the rotation" % uid)

    def test_3_retire_old_refused_while_blobs_remain(self):
        uid = self.spare_uid
        damaged = bytearray(self.spare_blob)
        damaged[5] ^= 0x40
        with self.db() as c:
            c.execute("UPDATE objects SET blob = ?, mwk_generation = 1, blob_mac = ? WHERE uid = ?",
                      (bytes(damaged), self.spare_mac, uid))
        rc, out, err = self.rotate("--retire-old")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s: not re-wrapped" % uid, err)
        self.assertIn("not retiring MWK generation 1: 1 stored blob still uses it", out)
        self.assertIn("retired MWK generation 2", out)   # unused: retired
        self.assertEqual(self.generation_of(uid), 1)

        # Generation 1 is still on the token: the intact blob unwraps under it.
        with self.db() as c:
            c.execute("UPDATE objects SET blob = ?, blob_mac = ? WHERE uid = ?", (self.spare_blob, self.spare_mac, uid))
        self.assertEqual(self.get_bytes(uid), self.keys[uid])

        rc, out, err = self.rotate("--retire-old")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("resuming: 1 blobs still below MWK generation 3", out)
        self.assertIn("retired MWK generation 1", out)
        self.assertEqual(set(self.blobs_by_generation()), {3})
        self.assert_all_keys_readable()

        # Only generation 3 is left: a blob of generation 1 no longer unwraps.
        with self.db() as c:
            c.execute("UPDATE objects SET blob = ?, mwk_generation = 1, blob_mac = ? WHERE uid = ?",
                      (self.spare_blob, self.spare_mac, uid))
        self.assertIsNone(self.get_bytes(uid))
        rc, out, err = self.rotate("--retire-old")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("%s: not re-wrapped" % uid, err)
        # That key is lost for good (its generation is gone): erase it as Destroy would.
        with self.db() as c:
            c.execute("UPDATE objects SET blob = NULL WHERE uid = ?", (uid,))
        del self.keys[uid]

    def test_4_wrong_pin_fails_cleanly(self):
        bad_pin = self.gw.path("wrong.pin")
        with open(bad_pin, "w") as f:
            f.write("00000000")
        os.chmod(bad_pin, 0o600)
        conf = self.gw.path("gateway-wrong-pin.yaml")
        with open(self.gw.path("gateway.yaml")) as f:
            text = f.read()
        self.assertIn("pin_file:", text)
        lines = [("  pin_file: %s" % bad_pin) if l.strip().startswith("pin_file:") else l
                 for l in text.splitlines()]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        before = self.blobs_by_generation()
        rc, out, err = self.rotate(config=conf)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("CKR_PIN_INCORRECT", err)
        self.assertNotIn("created", out)
        self.assertEqual(self.blobs_by_generation(), before)
        self.assertEqual(self.get_bytes(sorted(self.keys)[0]), self.keys[sorted(self.keys)[0]])

    def test_5_audited_when_the_gateway_is_stopped(self):
        audit = self.gw.path("audit.log")
        with open(audit) as f:
            # The gateway held it until now: the earlier runs logged to stderr only.
            self.assertFalse("rotate-master" in f.read(), "rotation audited while the gateway held the log")
        wrapped = sum(self.blobs_by_generation().values())
        self.gw.stop()
        try:
            rc, out, err = self.rotate()
            self.assertEqual(rc, 0, out + err)
            self.assertIn("created MWK generation 4", out)
            with open(audit) as f:
                tail = f.read().splitlines()[-2:]
            self.assertIn('"event":"rotate-master-start"', tail[0])
            self.assertIn('"event":"rotate-master-end"', tail[1])
            self.assertIn("to generation 4: %d re-wrapped, 0 changed meanwhile, 0 failed, 0 left" % wrapped,
                          tail[1])
            r = subprocess.run([self.gw.bin, "audit", "verify", audit], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        finally:
            self.gw.start()
        self.assert_all_keys_readable()
