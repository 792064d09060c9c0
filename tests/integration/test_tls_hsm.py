"""The gateway's own TLS key on the HSM token: tls.key as a PKCS#11 URI.

The devenv's server key is imported into the SoftHSM token (softhsm2-util
--import), tls.key is set to pkcs11:object=...;id=..., and the PEM key file is
deleted before the gateway starts, so every handshake it completes was signed
inside the token through libp11. Real KMIP requests then run over mutual TLS
1.2 and 1.3, one at a time and from many concurrent connections, for an RSA
key (the devenv's) and an EC P-256 key (a server certificate made here).

Refusals, each with a control that the same gateway starts once the one
thing under test is put right: a URI naming a missing label, a malformed URI,
token= naming another token, and a token key that does not match
tls.certificate.
"""

import datetime
import ipaddress
import os
import ssl
import subprocess
import threading
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import kg_kmip as K
from kg_harness import Gateway, HarnessError

NOW = datetime.datetime.utcnow()
DAY = datetime.timedelta(days=1)
THREADS = 16
ROUNDS = 4


def pin(gw):
    with open(gw.path("hsm.pin")) as f:
        return f.read().strip()


def import_key(gw, key, label, key_id):
    """Put private key `key` (a cryptography key object) on the devenv token as
    `label` with CKA_ID `key_id` (hex), the way an operator would."""
    path = gw.path("import-%s.p8" % label)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    try:
        r = subprocess.run(["softhsm2-util", "--import", path, "--token", "kmipgw", "--label", label,
                            "--id", key_id, "--pin", pin(gw)],
                           env=gw.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        raise HarnessError("softhsm2-util --import failed: %s" % r.stdout.decode(errors="replace"))


def load_pem_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def issue_server(gw, name, key):
    """A server certificate for `key`, as scripts/devenv makes them (SAN
    localhost and 127.0.0.1, serverAuth + clientAuth), signed by the devenv CA;
    written to pki/<name>.crt. Returns its path."""
    with open(gw.path("pki", "ca.crt"), "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    ca_key = load_pem_key(gw.path("pki", "ca.key"))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path = gw.path("pki", name + ".crt")
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return path


def tls_context(gw, identity, version):
    ctx = gw.context(identity)
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


class _HsmKeyServing:
    """Shared tests; a subclass's setUpClass puts a key on the token and starts."""

    gw = None

    @classmethod
    def tearDownClass(cls):
        if cls.gw is not None:
            cls.gw.cleanup()

    def kmip_round(self, version):
        """Discover Versions, Create and Get on one fresh connection pinned to
        `version`; returns the negotiated protocol name."""
        from kg_harness import KmipConnection
        with KmipConnection(self.gw.port, tls_context(self.gw, "admin", version)) as c:
            dv = c.request(K.discover_versions())
            self.assertTrue(dv.item.ok, dv.describe())
            created = c.request(K.create_aes256(K.batch_id()))
            self.assertTrue(created.item.ok, created.describe())
            got = c.request(K.get(created.item.uid(), K.batch_id()))
            self.assertTrue(got.item.ok, got.describe())
            material = K.symmetric_key_of(got.item.payload)[0]
            self.assertEqual(len(material), 32)
            return c.sock.version(), c.sock.getpeercert(binary_form=True)

    def test_no_key_file(self):
        self.assertFalse(os.path.exists(self.gw.path("pki", "server.key")))
        self.assertTrue(self.gw.get_config("tls", "key").strip('"').startswith("pkcs11:object="))

    def test_tls12_and_tls13(self):
        with open(self.cert_path, "rb") as f:
            want = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            got, peer = self.kmip_round(version)
            self.assertEqual(got, name)
            self.assertEqual(peer, want, "the server presented another certificate")

    def test_concurrent_connections(self):
        """THREADS clients at once, each ROUNDS fresh connections (a full
        handshake, signed by the token, each), TLS 1.2 and 1.3 mixed, while the
        workers use the same token for Create and Get."""
        errors = []
        done = []
        start = threading.Barrier(THREADS)

        def client(n):
            try:
                start.wait(30)
                for r in range(ROUNDS):
                    version = ssl.TLSVersion.TLSv1_3 if (n + r) % 2 else ssl.TLSVersion.TLSv1_2
                    self.kmip_round(version)
                    done.append(1)
            except Exception as e:  # reported below with the others
                errors.append("client %d: %r" % (n, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [], "log tail:\n%s" % self.gw.log_tail())
        self.assertEqual(len(done), THREADS * ROUNDS)
        self.assertTrue(self.gw.alive())


class TlsHsmRsaTest(_HsmKeyServing, unittest.TestCase):
    """The devenv's RSA-2048 server key, moved into the token."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("tlshsm-rsa")
        try:
            import_key(cls.gw, load_pem_key(cls.gw.key("server")), "kmipgw-tls", "01")
            os.unlink(cls.gw.key("server"))
            cls.gw.set_config("tls", "key", '"pkcs11:object=kmipgw-tls;id=01;token=kmipgw"')
            cls.cert_path = cls.gw.cert("server")
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise


class TlsHsmEcTest(_HsmKeyServing, unittest.TestCase):
    """An EC P-256 server key that only ever existed here and on the token."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("tlshsm-ec")
        try:
            key = ec.generate_private_key(ec.SECP256R1())
            cls.cert_path = issue_server(cls.gw, "server-ec", key)
            import_key(cls.gw, key, "kmipgw-tls-ec", "02")
            del key
            os.unlink(cls.gw.key("server"))
            cls.gw.set_config("tls", "certificate", "pki/server-ec.crt")
            # RFC 7512 percent-encoded id this time.
            cls.gw.set_config("tls", "key", '"pkcs11:object=kmipgw-tls-ec;id=%02"')
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise


class TlsHsmRefusedTest(unittest.TestCase):
    """Start-up refusals. The token holds the devenv server key as kmipgw-tls
    (id 01), an unrelated RSA key as kmipgw-other (id 03) and an unrelated EC
    key also labelled kmipgw-tls (id 04)."""

    GOOD = '"pkcs11:object=kmipgw-tls;id=01"'

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway("tlshsm-refused")
        try:
            import_key(cls.gw, load_pem_key(cls.gw.key("server")), "kmipgw-tls", "01")
            import_key(cls.gw, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                       "kmipgw-other", "03")
            # A second key under the devenv key's label: only id= tells them apart.
            import_key(cls.gw, ec.generate_private_key(ec.SECP256R1()), "kmipgw-tls", "04")
            os.unlink(cls.gw.key("server"))
        except BaseException:
            cls.gw.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.gw.cleanup()

    def tearDown(self):
        self.gw.stop()

    def start_fails(self, key_value, *needles):
        """Start with tls.key `key_value`: it must exit before listening, and what
        this start wrote to the log (earlier starts' lines left out) must hold
        every needle. Returns that text."""
        self.gw.set_config("tls", "key", key_value)
        before = len(self.gw.log_text())
        with self.assertRaises(HarnessError):
            self.gw.start()
        text = self.gw.log_text()[before:]
        for needle in needles:
            self.assertIn(needle, text)
        return text

    def key_line(self):
        """1-based line of tls.key in gateway.yaml (set_config writes '  key: ')."""
        with open(self.gw.path("gateway.yaml")) as f:
            lines = f.read().splitlines()
        return 1 + lines.index("  key: " + self.gw.get_config("tls", "key"))

    def control(self):
        """The same gateway starts and serves with the good URI."""
        self.gw.stop()
        self.gw.set_config("tls", "key", self.GOOD)
        self.gw.start()
        resp = self.gw.request("admin", K.request(K.discover_versions()))
        self.assertTrue(resp.item.ok, resp.describe())
        self.gw.stop()

    def test_missing_label(self):
        self.start_fails('"pkcs11:object=kmipgw-nope"',
                         "no private key with label 'kmipgw-nope' on token 'kmipgw'",
                         "'kmipgw-tls'")  # the message lists what is there
        self.control()

    def test_ambiguous_label(self):
        self.start_fails('"pkcs11:object=kmipgw-tls"',
                         "2 private keys with label 'kmipgw-tls' on token 'kmipgw'; add id=<hex>")
        self.control()

    def test_missing_id(self):
        self.start_fails('"pkcs11:object=kmipgw-tls;id=09"',
                         "no private key with label 'kmipgw-tls' and id 09")
        self.control()

    def test_malformed_uri(self):
        text = self.start_fails('"pkcs11:object=kmipgw-tls;type=private"',
                                "kmipgw: configuration: %s:%d:8: tls.key: pkcs11 URI: attribute 'type' "
                                "is not accepted" % (self.gw.path("gateway.yaml"), self.key_line()))
        # A configuration error: refused before the HSM is opened or audit starts.
        self.assertNotIn("audit", text)
        self.start_fails('"pkcs11:object=kmipgw tls"', "must be percent-encoded")
        text = self.start_fails('"pkcs11:object=kmipgw-tls?pin-value=1234abcd"', "query attributes")
        self.assertNotIn("1234abcd", text)
        self.control()

    def test_other_token(self):
        self.start_fails('"pkcs11:object=kmipgw-tls;token=elsewhere"',
                         "tls.key names token 'elsewhere'", "hsm.token_label 'kmipgw'")
        self.control()

    def test_key_not_matching_certificate(self):
        self.start_fails('"pkcs11:object=kmipgw-other"',
                         "the HSM key 'kmipgw-other' does not match the certificate")
        self.control()


if __name__ == "__main__":
    unittest.main()
