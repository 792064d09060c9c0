"""No plaintext at rest: key bytes a client has seen appear in none of the gateway's files.
Secret Data and Opaque Object values count as key bytes.

Searched: the SQLite store with its -wal and -shm, the audit log, the gateway's
stderr log and every file of the SoftHSM token directory; for each key its
bytes, their hex (both cases), base64, and each 16-byte half (a partial leak
counts too). Searched while the gateway runs (WAL not yet checkpointed) and
again after it stopped.
"""

import base64
import os
import tempfile
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kmip.core import enums
from kmip.pie import objects

import kg_kmip as K
from kg_harness import GatewayTestCase


def _needles(m):
    """(kind, needle, case-insensitive?) for key bytes m."""
    return [
        ("bytes", m, False), ("first 16 bytes", m[:16], False), ("last 16 bytes", m[16:], False),
        ("hex", m.hex().encode(), True), ("hex of first 16 bytes", m[:16].hex().encode(), True),
        ("hex of last 16 bytes", m[16:].hex().encode(), True),
        ("base64", base64.b64encode(m).rstrip(b"="), False),
        ("base64url", base64.urlsafe_b64encode(m).rstrip(b"="), False),
    ]


def find_leaks(files, keys):
    """[(file, key label, needle kind)] for every occurrence."""
    leaks = []
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        lower = data.lower()
        for label, material in keys.items():
            for kind, needle, fold in _needles(material):
                if needle in (lower if fold else data):
                    leaks.append((path, label, kind))
    return leaks


class NoPlaintextAtRest(GatewayTestCase):
    gw_name = "at-rest"

    def test_scanner_finds_planted_bytes(self):
        # The check below is only worth something if the scanner works.
        material = os.urandom(32)
        with tempfile.NamedTemporaryFile(dir=self.gw.dir, delete=False) as f:
            f.write(b"prefix " + material.hex().upper().encode() + b" suffix")
            planted = f.name
        try:
            self.assertTrue(find_leaks([planted], {"k": material}))
            self.assertFalse(find_leaks([planted], {"k": os.urandom(32)}))
        finally:
            os.unlink(planted)

    def test_no_key_bytes_in_store_audit_log_or_token(self):
        keys = {}
        for n in range(3):
            uid = self.create_key("vsphere")
            keys["vsphere created %d (%s)" % (n, uid)] = self.get_key("vsphere", uid)
        with self.gw.pykmip_client("admin") as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256, name="at-rest")
            keys["admin created (%s)" % uid] = c.get(uid).value
            material = os.urandom(32)
            ruid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, material))
            self.assertEqual(c.get(ruid).value, material)
            keys["admin registered (%s)" % ruid] = material
            # Secret Data and an Opaque Object's value are kept like keys: wrapped.
            for label, build in (("secret data", K.register_secret_data),
                                 ("opaque object", lambda m: K.register_opaque(0x80000001, m))):
                material = os.urandom(32)
                resp = self.gw.request("admin", K.request(build(material), version=(1, 4)))
                self.assertTrue(resp.item.ok, resp.describe())
                got = self.gw.request("admin", K.request(K.get(resp.item.uid()), version=(1, 4)))
                self.assertIn(material, got.raw, "Get of the %s answers its bytes" % label)
                keys["admin registered %s (%s)" % (label, resp.item.uid())] = material
        for label, material in keys.items():
            self.assertEqual(len(material), 32, label)

        files = self.gw.state_files()
        names = [os.path.basename(f) for f in files]
        self.assertTrue(self.gw.store_files(), "no store files at %s" % self.gw.store_location())
        self.assertIn("audit.log", names, "no audit log at %s" % self.gw.path("audit.log"))
        self.assertGreater(os.path.getsize(self.gw.path("audit.log")), 0, "audit log is empty")
        self.assertTrue(any("tokens" in f for f in files), "token directory has no files")

        self.assertEqual(find_leaks(files, keys), [], "key bytes at rest while running")
        rc, killed = self.gw.stop()
        self.assertFalse(killed)
        self.assertEqual(find_leaks(self.gw.state_files(), keys), [], "key bytes at rest after stop")
        self.gw.start()

    def test_no_registered_private_key_bytes_at_rest(self):
        """A private key registered in the clear (PKCS#8) is stored wrapped only: none of its
        secret components (32-byte runs of d, p, q) nor its DER is in any file."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        n = key.private_numbers()
        secrets = {"PKCS#8 DER": der[:32], "DER tail": der[-32:]}
        for name, v in (("d", n.d), ("p", n.p), ("q", n.q)):
            b = v.to_bytes((v.bit_length() + 7) // 8, "big")
            secrets["%s head" % name] = b[:32]
            secrets["%s tail" % name] = b[-32:]
        with self.gw.pykmip_client("admin") as c:
            uid = c.register(objects.PrivateKey(enums.CryptographicAlgorithm.RSA, 2048, der,
                                                enums.KeyFormatType.PKCS_8,
                                                masks=[enums.CryptographicUsageMask.SIGN]))
            self.assertEqual(c.get(uid).value, der)  # the scan is over a key that was stored
        self.assertEqual(find_leaks(self.gw.state_files(), secrets), [], "private key bytes at rest")
        rc, killed = self.gw.stop()
        self.assertFalse(killed)
        self.assertEqual(find_leaks(self.gw.state_files(), secrets), [], "private key bytes after stop")
        self.gw.start()


if __name__ == "__main__":
    unittest.main()
