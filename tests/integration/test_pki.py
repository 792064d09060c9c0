"""kmipgw pki sign-csr / server-cert: certificates from the devenv's client CA.

sign-csr is vCenter's "KMS signs the CSR" option: a key and CSR are made here with
python3-cryptography (as vCenter would), signed by `kmipgw pki sign-csr --group vsphere`
with the devenv CA (DIR/pki/ca.key, named by pki.ca_key in the devenv's gateway.yaml),
and the signed certificate must then connect and be treated as group vsphere, whatever
OU the CSR asked for. Every refusal (tampered CSR, weak key, unknown group, CA key
readable by others, bad --days, garbage, missing file) must leave no output behind.

server-cert: the gateway is restarted on a key and certificate the command made, and a
client checks what it is served (chain, subjectAltName, serverAuth + clientAuth).
"""

import datetime
import os
import shutil
import stat
import subprocess
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import kg_kmip as K
from kg_harness import GatewayTestCase
from test_policy import audit_records


def name_of(cn, ou=None, org=None):
    attrs = []
    if org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_csr(cn, ou=None, key=None, san=None):
    """(private key, PEM CSR) as a client such as vCenter makes them."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(name_of(cn, ou, "VMware"))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    csr = b.sign(key, hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.PEM)


def ous_of(cert):
    return [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]


class PkiCase(GatewayTestCase):
    def kmipgw(self, *args):
        return subprocess.run([self.gw.bin, "pki"] + list(args), env=self.gw.env(), cwd=self.gw.dir,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    def write(self, name, data, mode=0o644):
        path = self.gw.path("pki", name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def load_cert(self, path):
        with open(path, "rb") as f:
            return x509.load_pem_x509_certificate(f.read())

    def ca_cert(self):
        return self.load_cert(self.gw.ca)

    def assertIssuedBy(self, cert):
        """Signed by the devenv CA with SHA-256, with SKI/AKI linking the two."""
        ca = self.ca_cert()
        self.assertEqual(cert.issuer, ca.subject)
        # The devenv CA is RSA: PKCS#1 v1.5 signatures.
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                               cert.signature_hash_algorithm)
        self.assertIsInstance(cert.signature_hash_algorithm, hashes.SHA256)
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self.assertEqual(ski.digest, x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest)
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        self.assertEqual(aki.key_identifier, ca_ski.digest)
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(bc.critical)
        self.assertFalse(bc.value.ca)
        # 16 random bytes, positive: at most 128 bits, and not a small counter.
        self.assertGreater(cert.serial_number, 1 << 120)
        self.assertLess(cert.serial_number, 1 << 127)


class SignCsrTest(PkiCase):
    gw_name = "pki-sign"

    def sign(self, name, csr_pem, group="vsphere", *extra):
        csr = self.write(name + ".csr", csr_pem)
        out = self.gw.path("pki", name + ".crt")
        r = self.kmipgw("sign-csr", "--config", self.gw.path("gateway.yaml"), "--group", group,
                        "--out", out, *extra, csr)
        return r, out

    def issue(self, name, cn, ou=None, key=None, *extra):
        """Key + CSR, signed as group vsphere; pki/<name>.crt/.key, so gw.connect(name) uses them."""
        key, csr_pem = make_csr(cn, ou, key)
        r, out = self.sign(name, csr_pem, "vsphere", *extra)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.write(name + ".key", key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()), 0o600)
        return self.load_cert(out)

    def assertRefused(self, r, out, needle):
        err = r.stderr.decode(errors="replace")
        self.assertNotEqual(r.returncode, 0, "expected a refusal, got success:\n%s" % err)
        self.assertIn(needle, err)
        self.assertFalse(os.path.exists(out), "a refused sign-csr left %s behind" % out)
        self.assertEqual([n for n in os.listdir(self.gw.path("pki")) if ".tmp" in n], [],
                         "temporary files left behind")

    def group_of(self, cn, seq):
        groups = {r.get("group") for r in audit_records(self.gw)
                  if r["seq"] > seq and "event" not in r and r.get("cn") == cn}
        self.assertEqual(len(groups), 1, "audit records of %s: groups %r" % (cn, groups))
        return groups.pop()

    def last_seq(self):
        recs = audit_records(self.gw)
        return recs[-1]["seq"] if recs else 0

    def test_signed_csr_connects_as_vsphere(self):
        cert = self.issue("signed", "vcenter-pki.example.com")
        self.assertEqual(cert.subject, name_of("vcenter-pki.example.com", "vsphere"))
        self.assertIssuedBy(cert)
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(list(eku), [ExtendedKeyUsageOID.CLIENT_AUTH])
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(ku.critical)
        self.assertTrue(ku.value.digital_signature)
        self.assertFalse(ku.value.key_encipherment)  # EC key: no key transport
        self.assertFalse(ku.value.key_cert_sign)
        days = (cert.not_valid_after - cert.not_valid_before).days
        self.assertIn(days, (730, 729))  # valid from five minutes ago
        self.assertLess(abs((cert.not_valid_before - datetime.datetime.utcnow()).total_seconds()), 600)

        # The gateway's verdict: the new certificate is group vsphere. vsphere's keys are
        # its own (scope own): one the devenv's vsphere client made, it may read; one
        # admin made, it may not.
        seq = self.last_seq()
        theirs = self.create_key("vsphere")
        self.assertEqual(len(self.get_key("signed", theirs)), 32)
        mine = self.create_key("signed")
        self.assertEqual(self.get_key("vsphere", mine), self.get_key("signed", mine))
        admins = self.create_key("admin")
        resp = self.gw.request("signed", K.request(K.get(admins, K.batch_id())))
        self.assertNotEqual(resp.item.status, K.RESULT_STATUS["SUCCESS"])
        self.assertEqual(self.group_of("vcenter-pki.example.com", seq), "vsphere")

    def test_rsa_csr_gets_key_encipherment(self):
        cert = self.issue("signed-rsa", "rsa-client", key=rsa.generate_private_key(65537, 2048))
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertTrue(ku.digital_signature and ku.key_encipherment)
        seq = self.last_seq()
        self.create_key("signed-rsa")
        self.assertEqual(self.group_of("rsa-client", seq), "vsphere")

    def test_requested_ou_and_extensions_are_replaced(self):
        # The requester asks to be admin, and for a SAN and O: it gets vsphere, and nothing else.
        key, csr_pem = make_csr("sneaky", "admin", san=["kms.example.com"])
        r, out = self.sign("sneaky", csr_pem)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.write("sneaky.key", key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), 0o600)
        cert = self.load_cert(out)
        self.assertEqual(ous_of(cert), ["vsphere"])
        self.assertEqual(cert.subject, name_of("sneaky", "vsphere"))
        with self.assertRaises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        seq = self.last_seq()
        admins = self.create_key("admin")
        resp = self.gw.request("sneaky", K.request(K.get(admins, K.batch_id())))
        self.assertNotEqual(resp.item.status, K.RESULT_STATUS["SUCCESS"], "OU=admin was honoured")
        self.create_key("sneaky")
        self.assertEqual(self.group_of("sneaky", seq), "vsphere")

    def test_stdout_and_days(self):
        _, csr_pem = make_csr("to-stdout")
        csr = self.write("stdout.csr", csr_pem)
        r = self.kmipgw("sign-csr", "--config", self.gw.path("gateway.yaml"), "--group", "backup",
                        "--days", "10", csr)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        cert = x509.load_pem_x509_certificate(r.stdout)
        self.assertEqual(ous_of(cert), ["backup"])
        self.assertIn((cert.not_valid_after - cert.not_valid_before).days, (9, 10))
        for days in ("1", "3000"):
            r = self.kmipgw("sign-csr", "--config", self.gw.path("gateway.yaml"), "--group", "backup",
                            "--days", days, csr)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        # 3650 is within range, but the devenv CA itself has 3650 days from its making:
        # a certificate may not outlive the CA that vouches for it.
        r = self.kmipgw("sign-csr", "--config", self.gw.path("gateway.yaml"), "--group", "backup",
                        "--days", "3650", csr)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"would outlast the CA certificate", r.stderr)

    def test_existing_output_is_not_replaced(self):
        _, csr_pem = make_csr("twice")
        r, out = self.sign("twice", csr_pem)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        with open(out, "rb") as f:
            first = f.read()
        r, out = self.sign("twice", csr_pem)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"exists", r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), first)
        r, out = self.sign("twice", csr_pem, "vsphere", "--force")
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        with open(out, "rb") as f:
            self.assertNotEqual(f.read(), first)

    # --- refusals --------------------------------------------------------------------------
    def test_tampered_csr(self):
        _, csr_pem = make_csr("tampered")
        der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
        # Change one byte of the CN inside the signed part: still a well-formed CSR.
        at = bytes(der).index(b"tampered")
        der[at] ^= 0x01
        csr = x509.load_der_x509_csr(bytes(der))
        r, out = self.sign("tampered", csr.public_bytes(serialization.Encoding.PEM))
        self.assertRefused(r, out, "does not verify")

    def test_weak_rsa_key(self):
        _, csr_pem = make_csr("weak", key=rsa.generate_private_key(65537, 1024))
        r, out = self.sign("weak", csr_pem)
        self.assertRefused(r, out, "RSA-1024")

    def test_other_curve(self):
        _, csr_pem = make_csr("k1", key=ec.generate_private_key(ec.SECP256K1()))
        r, out = self.sign("k1", csr_pem)
        self.assertRefused(r, out, "P-256 or P-384 only")

    def test_p384_is_accepted(self):
        _, csr_pem = make_csr("p384", key=ec.generate_private_key(ec.SECP384R1()))
        r, out = self.sign("p384", csr_pem)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))

    def test_unknown_group(self):
        _, csr_pem = make_csr("nogroup")
        r, out = self.sign("nogroup", csr_pem, "unlisted")
        self.assertRefused(r, out, "defines no group 'unlisted'")

    def test_ca_key_readable_by_others(self):
        _, csr_pem = make_csr("loose")
        ca_key = self.gw.path("pki", "ca.key")
        os.chmod(ca_key, 0o644)
        try:
            r, out = self.sign("loose", csr_pem)
        finally:
            os.chmod(ca_key, 0o600)
        self.assertRefused(r, out, "mode 0644")

    def test_days_out_of_range(self):
        _, csr_pem = make_csr("days")
        for days in ("0", "99999", "3651", "-1", "ten", ""):
            r, out = self.sign("days", csr_pem, "vsphere", "--days", days)
            self.assertRefused(r, out, "--days must be")
            self.assertEqual(r.returncode, 2)

    def test_garbage_and_missing_input(self):
        r, out = self.sign("garbage", os.urandom(700))
        self.assertRefused(r, out, "holds no PEM certificate request")
        r, out = self.sign("text", b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n"
                                   b"-----END CERTIFICATE REQUEST-----\n")
        self.assertRefused(r, out, "holds no PEM certificate request")
        out = self.gw.path("pki", "missing.crt")
        r = self.kmipgw("sign-csr", "--config", self.gw.path("gateway.yaml"), "--group", "vsphere",
                        "--out", out, self.gw.path("pki", "no-such.csr"))
        self.assertRefused(r, out, "No such file")

    def test_no_ca_key_configured(self):
        conf = self.gw.path("no-pki.yaml")
        with open(self.gw.path("gateway.yaml")) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("pki:\n  ca_key: pki/ca.key\n", ""))
        _, csr_pem = make_csr("nokey")
        csr = self.write("nokey.csr", csr_pem)
        r = self.kmipgw("sign-csr", "--config", conf, "--group", "vsphere", csr)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"no pki.ca_key", r.stderr)

    def test_help(self):
        r = self.kmipgw("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"sign-csr", r.stdout)
        self.assertIn(b"server-cert", r.stdout)
        r = self.kmipgw("sign-csr", "--bogus", "x")
        self.assertEqual(r.returncode, 2)


class ServerCertTest(PkiCase):
    gw_name = "pki-server"

    def make(self, stem, *extra):
        key, crt = self.gw.path("pki", stem + ".key"), self.gw.path("pki", stem + ".crt")
        r = self.kmipgw("server-cert", "--config", self.gw.path("gateway.yaml"), "--name", "localhost",
                        "--name", "127.0.0.1", "--name", "kms.example.com", "--key-out", key, "--out", crt,
                        *extra)
        return r, key, crt

    def serve_with(self, key, crt):
        self.gw.stop()
        self.gw.set_config("tls", "certificate", crt)
        self.gw.set_config("tls", "key", key)
        self.gw.start()

    def check_served(self, crt):
        with self.gw.connect("vsphere") as c:
            served = x509.load_der_x509_certificate(c.sock.getpeercert(binary_form=True))
            dv = c.request(K.discover_versions())
            self.assertEqual(dv.item.status, K.RESULT_STATUS["SUCCESS"])
        self.assertEqual(served, self.load_cert(crt))
        self.assertIssuedBy(served)
        san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost", "kms.example.com"])
        self.assertEqual([str(ip) for ip in san.get_values_for_type(x509.IPAddress)], ["127.0.0.1"])
        eku = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(set(eku), {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH})
        self.assertEqual(served.subject, name_of("localhost"))
        return served

    def test_rsa_server_cert_is_served(self):
        r, key, crt = self.make("made-rsa")
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.serve_with(key, crt)
        served = self.check_served(crt)
        self.assertIsInstance(served.public_key(), rsa.RSAPublicKey)
        self.assertEqual(served.public_key().key_size, 3072)
        ku = served.extensions.get_extension_for_class(x509.KeyUsage).value
        self.assertTrue(ku.digital_signature and ku.key_encipherment)

    def test_ec_server_cert_is_served(self):
        r, key, crt = self.make("made-ec", "--key-type", "ec-p256", "--days", "90")
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.serve_with(key, crt)
        served = self.check_served(crt)
        self.assertIsInstance(served.public_key(), ec.EllipticCurvePublicKey)
        self.assertEqual(served.public_key().curve.name, "secp256r1")

    def test_no_overwrite_without_force(self):
        r, key, crt = self.make("made-twice", "--key-type", "ec-p256")
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        with open(key, "rb") as f:
            first = f.read()
        for victim in (key, crt):
            os.rename(victim, victim + ".keep")
        # Either file existing is enough to refuse, before a key is made.
        for present in (key, crt):
            shutil.copy(present + ".keep", present)
            r, _, _ = self.make("made-twice", "--key-type", "ec-p256")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"exists", r.stderr)
            os.unlink(present)
        for victim in (key, crt):
            os.rename(victim + ".keep", victim)
        r, _, _ = self.make("made-twice", "--key-type", "ec-p256", "--force")
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        with open(key, "rb") as f:
            self.assertNotEqual(f.read(), first)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

    def test_refusals(self):
        conf = self.gw.path("gateway.yaml")
        cases = [
            (["--name", "bad name!"], 1, b"neither an IP address nor a host name"),
            (["--name", "-leading.example"], 1, b"neither"),
            (["--name", "localhost", "--key-type", "dsa"], 2, b"--key-type"),
            (["--name", "localhost", "--days", "0"], 2, b"--days"),
            ([], 2, b"--name"),
        ]
        for extra, code, needle in cases:
            stem = "refused-" + uuid.uuid4().hex[:8]
            key, crt = self.gw.path("pki", stem + ".key"), self.gw.path("pki", stem + ".crt")
            r = self.kmipgw("server-cert", "--config", conf, "--key-out", key, "--out", crt, *extra)
            self.assertEqual(r.returncode, code, "%r: %s" % (extra, r.stderr))
            self.assertIn(needle, r.stderr)
            self.assertFalse(os.path.exists(key) or os.path.exists(crt))
