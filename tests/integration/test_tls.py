"""TLS: what the gateway's handshake refuses and accepts (issue 7).

TLS 1.0/1.1 refused, weak suites refused, expired client certificates refused,
revoked ones refused (tls.crl), wrong CA refused, no certificate refused; TLS
1.2 and 1.3 accepted; the server certificate carries serverAuth + clientAuth
(VSPHERE.md: ESXi has failed without them).

Every refusal test also shows that the same client can succeed once the one
thing under test is changed (a control), so that a refusal cannot come from
a broken client set-up. The protocol-version controls go further: a local
Python TLS server that allows TLS 1.0/1.1 shows that this machine's OpenSSL
really offers them, so the gateway's refusal is the gateway's.

Test certificates (expired, revoked, fresh) are made here with
python3-cryptography, signed by the devenv CA (DIR/pki/ca.key).
"""

import datetime
import os
import socket
import ssl
import threading
import unittest
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import kg_kmip as K
from kg_harness import (
    IO_TIMEOUT, ConnectionClosed, Gateway, GatewayTestCase, HarnessError, KmipConnection,
)

warnings.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1 etc.

NOW = datetime.datetime.utcnow()
DAY = datetime.timedelta(days=1)


# --- certificates ---------------------------------------------------------------------------
def load_ca(gw):
    with open(gw.path("pki", "ca.crt"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(gw.path("pki", "ca.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def issue_client(gw, name, ou="vsphere", not_before=None, not_after=None):
    """A client certificate and key signed by the devenv CA, written to
    pki/<name>.crt/.key (so gw.context(name) presents it). Returns its serial."""
    ca_cert, ca_key = load_ca(gw)
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kmipgw dev"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    with open(gw.cert(name), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(gw.key(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return serial


def write_crl(gw, path, revoked_serials, next_update=None):
    """A CRL of the devenv CA revoking `revoked_serials`, as PEM at `path`."""
    ca_cert, ca_key = load_ca(gw)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(NOW - DAY)
        .next_update(next_update or NOW + 7 * DAY)
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial)
            .revocation_date(NOW - DAY).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    with open(path, "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))


# --- clients ----------------------------------------------------------------------------------
def client_context(gw, identity, version=None, ciphers=None):
    """gw.context(identity), optionally pinned to one protocol version and cipher list
    (old versions and weak suites need security level 0 to be offered at all)."""
    ctx = gw.context(identity)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    if ciphers is not None or version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx.set_ciphers((ciphers or "DEFAULT") + ":@SECLEVEL=0")
    return ctx


def await_tls13_verdict(sock):
    """In TLS 1.3 the client's handshake ends before the server has checked the
    client certificate: its verdict is an alert, or session tickets, that follow.
    Wait for one of the two before sending anything, so that an alert is read as
    such instead of being lost to a reset when the server closes on unread data.
    Raises the SSLError carrying the alert; returns once a ticket arrived."""
    previous = sock.gettimeout()
    sock.settimeout(0.05)
    try:
        for _ in range(int(IO_TIMEOUT / 0.05)):
            try:
                data = sock.recv(1)
            except (socket.timeout, ssl.SSLWantReadError):
                if sock.session is not None and sock.session.has_ticket:
                    return
                continue
            if not data:
                raise ConnectionClosed("EOF after the handshake, without an alert")
            raise HarnessError("the server sent data before any request: %r" % data)
        raise HarnessError("no alert and no session ticket within %.0fs" % IO_TIMEOUT)
    finally:
        sock.settimeout(previous)


def refusal(gw, ctx):
    """Handshake with ctx and send Discover Versions. Returns the error (str) that
    ended it, or None if the gateway answered."""
    try:
        with KmipConnection(gw.port, ctx) as c:
            if c.sock.version() == "TLSv1.3":
                await_tls13_verdict(c.sock)
            c.send(K.request(K.discover_versions()))
            resp = K.Response(c.recv_message())
            if not resp.item.ok:
                raise HarnessError("Discover Versions answered %s" % resp.describe())
            return None
    except socket.timeout:
        raise HarnessError("the server neither answered nor refused within %.0fs" % IO_TIMEOUT)
    except (ssl.SSLError, ConnectionClosed, OSError) as e:
        return str(e) or type(e).__name__


class LocalTLSServer:
    """A throw-away Python TLS server on loopback that accepts TLS 1.0 and up at
    security level 0, with the devenv server certificate: the control that this
    machine's client can actually offer what the gateway is expected to refuse."""

    def __init__(self, gw):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(gw.path("pki", "server.crt"), gw.path("pki", "server.key"))
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1
        self.ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(IO_TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.negotiated = None
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(IO_TIMEOUT)
            with self.ctx.wrap_socket(conn, server_side=True) as s:
                self.negotiated = (s.version(), s.cipher()[0])
        except OSError:
            pass

    def handshake(self, ctx):
        """Client handshake against it: the (version, cipher) it agreed, or None."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    return s.version(), s.cipher()[0]
        except (ssl.SSLError, OSError):
            return None
        finally:
            self.thread.join(IO_TIMEOUT)
            self.sock.close()


class TLSRefusals(GatewayTestCase):
    """The devenv's gateway as scripts/devenv writes it (no CRL)."""

    gw_name = "tls"

    def assertRefused(self, ctx, what, reasons=()):
        err = refusal(self.gw, ctx)
        self.assertIsNotNone(err, "%s: the gateway answered a request" % what)
        if reasons:
            self.assertTrue(any(r.lower() in err.lower() for r in reasons),
                            "%s: refused, but not for the expected reason (%s): %s"
                            % (what, " / ".join(reasons), err))
        return err

    def assertAccepted(self, ctx, what):
        err = refusal(self.gw, ctx)
        self.assertIsNone(err, "%s: refused: %s" % (what, err))

    def assertServing(self):
        self.assertAccepted(self.gw.context("vsphere"), "vsphere after the refusal")

    # --- protocol versions -----------------------------------------------------------------
    def test_tls_1_0_and_1_1_refused(self):
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version.name):
                # Control: this client does offer the old version (a local server agrees to it).
                agreed = LocalTLSServer(self.gw).handshake(client_context(self.gw, "vsphere", version))
                if agreed is None:
                    self.skipTest("this machine's OpenSSL cannot offer %s at all" % version.name)
                self.assertEqual(agreed[0], {"TLSv1": "TLSv1", "TLSv1_1": "TLSv1.1"}[version.name])
                # The gateway refuses it with a protocol_version alert.
                self.assertRefused(client_context(self.gw, "vsphere", version), version.name,
                                   ("protocol version", "unsupported protocol", "PROTOCOL_VERSION"))
        self.assertServing()

    def test_tls_1_2_and_1_3_accepted(self):
        for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            with self.subTest(version=name):
                with KmipConnection(self.gw.port, client_context(self.gw, "vsphere", version)) as c:
                    self.assertEqual(c.sock.version(), name)
                    self.assertSuccess(c.request(K.discover_versions()).item, name)
                    # A second request on the same connection (vCenter's health check).
                    self.assertSuccess(c.request(K.discover_versions(K.batch_id())).item, name)

    # --- cipher suites ---------------------------------------------------------------------
    def test_weak_suites_refused(self):
        # Static-RSA and ECDHE with SHA-1 CBC, and NULL (no encryption) suites; 3DES and
        # RC4 where this OpenSSL still has them. Each alone, TLS 1.2 at most.
        weak = ["AES128-SHA", "AES256-SHA", "ECDHE-RSA-AES128-SHA", "NULL-SHA256", "NULL-SHA",
                "DES-CBC3-SHA", "ECDHE-RSA-DES-CBC3-SHA", "RC4-SHA"]
        tried = []
        for suite in weak:
            try:
                ctx = client_context(self.gw, "vsphere", ssl.TLSVersion.TLSv1_2, suite)
            except ssl.SSLError:
                continue  # not even offerable here (e.g. 3DES, RC4 in OpenSSL 3)
            tried.append(suite)
            with self.subTest(suite=suite):
                # Control: the local server agrees to the suite, so it was offered.
                agreed = LocalTLSServer(self.gw).handshake(
                    client_context(self.gw, "vsphere", ssl.TLSVersion.TLSv1_2, suite))
                self.assertIsNotNone(agreed, "%s: not offerable by this client" % suite)
                self.assertEqual(agreed[1], suite)
                self.assertRefused(ctx, suite, ("handshake failure", "no shared cipher",
                                                "HANDSHAKE_FAILURE"))
        self.assertGreaterEqual(len(tried), 4, "too few weak suites could be offered: %r" % tried)
        # Control: a strong TLS 1.2 suite from the same kind of context works.
        self.assertAccepted(client_context(self.gw, "vsphere", ssl.TLSVersion.TLSv1_2,
                                           "ECDHE-RSA-AES128-GCM-SHA256"), "ECDHE-RSA-AES128-GCM-SHA256")

    # --- client certificates ---------------------------------------------------------------
    def test_expired_client_certificate_refused(self):
        issue_client(self.gw, "expired", not_before=NOW - 60 * DAY, not_after=NOW - DAY)
        issue_client(self.gw, "fresh")  # the same issuance, in date: the control
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                self.assertRefused(client_context(self.gw, "expired", version),
                                   "expired certificate over %s" % version.name,
                                   ("certificate expired", "CERTIFICATE_EXPIRED"))
                self.assertAccepted(client_context(self.gw, "fresh", version),
                                    "fresh certificate over %s" % version.name)

    def test_not_yet_valid_client_certificate_refused(self):
        issue_client(self.gw, "future", not_before=NOW + 2 * DAY, not_after=NOW + 60 * DAY)
        self.assertRefused(client_context(self.gw, "future"), "certificate not valid yet",
                           ("bad certificate", "BAD_CERTIFICATE"))
        self.assertServing()

    def test_certificate_from_another_ca_refused(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                # rogue: OU=vsphere, CN=vsphere, but signed by pki/rogue-ca.
                self.assertRefused(client_context(self.gw, "rogue", version), "rogue CA",
                                   ("unknown ca", "UNKNOWN_CA"))
        self.assertServing()

    def test_no_client_certificate_refused(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                self.assertRefused(client_context(self.gw, None, version), "no certificate",
                                   ("certificate required", "CERTIFICATE_REQUIRED",
                                    "handshake failure", "HANDSHAKE_FAILURE"))
        self.assertServing()

    # --- the server's certificate -----------------------------------------------------------
    def test_server_certificate_has_server_and_client_auth(self):
        with KmipConnection(self.gw.port, self.gw.context("vsphere")) as c:
            der = c.sock.getpeercert(binary_form=True)
        cert = x509.load_der_x509_certificate(der)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)


class CRLRevocation(GatewayTestCase):
    """tls.crl set: a revoked client certificate is refused, others are not."""

    gw_name = "tls-crl"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            cls.revoked_serial = issue_client(cls.gw, "revoked")
            issue_client(cls.gw, "kept")
            write_crl(cls.gw, cls.gw.path("pki", "ca.crl"), [cls.revoked_serial])
            cls.gw.set_config("tls", "crl", "pki/ca.crl")
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def test_revoked_client_certificate_refused(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                err = refusal(self.gw, client_context(self.gw, "revoked", version))
                self.assertIsNotNone(err, "revoked certificate accepted over %s" % version.name)
                self.assertTrue("revoked" in err.lower(), "refused, but not as revoked: %s" % err)
                # Same CA, not on the CRL: accepted; and the devenv's own clients too.
                for identity in ("kept", "vsphere", "admin"):
                    self.assertIsNone(refusal(self.gw, client_context(self.gw, identity, version)),
                                      "%s refused with a CRL configured" % identity)
        # The refusal is logged by nobody and costs nothing: the gateway still serves.
        self.assertTrue(self.gw.alive())

    def test_bad_crl_file_stops_startup(self):
        gw = self.gw
        good = gw.get_config("tls", "crl")
        bad = gw.path("pki", "garbage.crl")
        with open(bad, "w") as f:
            f.write("-----BEGIN X509 CRL-----\nnot base64 at all\n-----END X509 CRL-----\n")
        self.addCleanup(gw.start)
        self.addCleanup(gw.set_config, "tls", "crl", good)
        gw.stop()
        for value, what in (("pki/missing.crl", "missing CRL file"),
                            ("pki/garbage.crl", "unparsable CRL file"),
                            ("pki/ca.crt", "a certificate, not a CRL")):
            with self.subTest(what=what):
                gw.set_config("tls", "crl", value)
                with self.assertRaises(HarnessError, msg="%s: the gateway started" % what) as cm:
                    gw.start(timeout=20)
                self.assertIn(os.path.basename(value), str(cm.exception),
                              "%s: the startup error does not name the file" % what)


if __name__ == "__main__":
    unittest.main()
