"""The OASIS KMIP XML test vectors (issue 4) through tests/conformance's kg-conformance,
and `kmipgw ttlv` (TTLV hex <-> KMIP XML).

Each vector set (oasis/, oasis-tc-1.x/) runs on its own fresh gateway as identity
`admin`: the two sets repeat the same cases under the same object names. The table
is printed; every case in tests/conformance/expected_pass.txt must pass.

KGTEST_CONFORMANCE_PEER=pykmip also runs the vectors against Debian's PyKMIP server
on the same dev PKI and prints its table (nothing asserted: it is a reference).
KG_CONFORMANCE_BIN overrides the runner's path (default: next to $KMIPGW_BIN's build).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import kg_harness
from kg_harness import Gateway, HarnessError

CONF_DIR = os.path.join(kg_harness.ROOT, "tests", "conformance")
OUT_OF_SCOPE = os.path.join(CONF_DIR, "out_of_scope.txt")
EXPECTED_PASS = os.path.join(CONF_DIR, "expected_pass.txt")
ERRATA = os.path.join(CONF_DIR, "errata.txt")
SETS = ("oasis", "oasis-tc-1.x")
RUN_TIMEOUT = 600


def runner_bin():
    if os.environ.get("KG_CONFORMANCE_BIN"):
        return os.environ["KG_CONFORMANCE_BIN"]
    build = os.path.dirname(os.path.dirname(kg_harness.kmipgw_bin()))
    return os.path.join(build, "tests", "conformance", "kg-conformance")


def run_runner(gw, vector_set, vectors=kg_harness.VECTORS, out_of_scope=OUT_OF_SCOPE, extra=(), errata=ERRATA):
    """Run kg-conformance against `gw` -> (returncode, stdout+stderr, {path: (status, why)})."""
    exe = runner_bin()
    if not os.access(exe, os.X_OK):
        raise HarnessError("kg-conformance not found at %s (build it, or set KG_CONFORMANCE_BIN)" % exe)
    fd, results = tempfile.mkstemp(prefix="kgconf-", suffix=".txt")
    os.close(fd)
    try:
        cmd = [exe, "--vectors", vectors, "--set", vector_set, "--port", str(gw.port), "--ca", gw.ca,
               "--cert", gw.cert("admin"), "--key", gw.key("admin"), "--results", results, "-v"]
        if out_of_scope:
            cmd += ["--out-of-scope", out_of_scope]
        if errata:
            cmd += ["--errata", errata]
        r = subprocess.run(cmd + list(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=RUN_TIMEOUT)
        out = {}
        with open(results) as f:
            for line in f:
                head, _, why = line.rstrip("\n").partition("\t")
                status, _, path = head.partition(" ")
                out[path] = (status, why)
        return r.returncode, r.stdout.decode(errors="replace"), out
    finally:
        os.unlink(results)


def table_of(output):
    """The table part of the runner's output (header to total)."""
    lines = output.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("folder profile level")), len(lines))
    return "\n".join(lines[start:])


# The OASIS credential cases (TC_111, TC_112): Fred and device serNum123456 are the
# admin certificate's own users; Barney and device serNum101010 act as a group that sees
# admin's keys (so they are not hidden as absent) but may only Discover Versions and
# Query: their Get of Fred's key is Permission Denied.
CREDENTIALS = (("username", "Fred", "password1", None), ("username", "Barney", "secret2", "kmip-guest"),
               ("device_serial_number", "serNum123456", "secret", None),
               ("device_serial_number", "serNum101010", "passwd", "kmip-guest"))


def add_credentials(gw):
    """Give the admin group the vectors' credentials (and the group they may act as)
    and a fresh pool in Object Group "default"."""
    path = gw.path("policy.yaml")
    with open(path) as f:
        text = f.read()
    lines = ["    credential:\n"]
    for key, name, password, act_as in CREDENTIALS:
        digest = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                                stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        lines.append('      - {%s: %s, password_hash: "%s", check: when_present%s}\n'
                     % (key, name, digest, ", act_as: " + act_as if act_as else ""))
    anchor = "  admin:\n    ou: admin\n"
    if anchor not in text:
        raise HarnessError("policy.yaml has no admin group to give credentials to")
    # TC_151: a fresh key the server made ahead of need, in Object Group "default".
    lines.append("    fresh_pool: {object_group: default, algorithm: AES, length: 256, "
                 "usage_masks: [Encrypt, Decrypt], size: 1}\n")
    text = text.replace(anchor, anchor + "".join(lines), 1)
    text += "\n  kmip-guest:\n    ou: kmip-guest\n    operations: [Discover Versions, Query]\n    scope: [admin]\n"
    with open(path, "w") as f:
        f.write(text)


def run_on_fresh_server(kind, vector_set, timed):
    """One runner (`--timed skip|only`) on its own fresh server -> (rc, output, results)."""
    gw = Gateway("conformance-" + timed, kind=kind)
    try:
        if kind == "kmipgw":
            # The BL cases open and close with Interop, which only a test
            # bench may offer (KMIP 2.1 section 6.1.26).
            gw.set_config("testing", "interop", "true")
            add_credentials(gw)
        gw.start()
        return run_runner(gw, vector_set, extra=["--timed", timed])
    finally:
        gw.cleanup()


def run_all(kind):
    """Both sets, each on a fresh server of `kind` -> (tables text, {path: (status, why)}).

    The timed cases (minutes of waiting for a Deactivation Date, kg_conf_timeline.h)
    run on a second fresh server while the rest run on the first."""
    tables, results = [], {}
    for vector_set in SETS:
        timed = {}
        worker = threading.Thread(target=lambda: timed.update(out=run_on_fresh_server(kind, vector_set, "only")))
        worker.start()
        try:
            runs = [run_on_fresh_server(kind, vector_set, "skip")]
        finally:
            worker.join()
        if "out" not in timed:
            raise HarnessError("the timed cases of %s did not run (see the log above)" % vector_set)
        runs.append(timed["out"])
        for rc, output, res in runs:
            if rc != 0:
                raise HarnessError("kg-conformance exited %d:\n%s" % (rc, output))
            tables.append(table_of(output))
            results.update(res)
    return "\n\n".join(tables), results


class ConformanceKmipgw(unittest.TestCase):
    def test_vectors(self):
        tables, results = run_all("kmipgw")
        sys.stdout.write("\nkg-conformance against kmipgw:\n%s\n" % tables)
        with open(EXPECTED_PASS) as f:
            expected = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        self.assertTrue(expected, "expected_pass.txt lists no case")
        broken = ["%s: %s" % (p, results.get(p, ("missing", "not run"))[1] or results.get(p, ("missing",))[0])
                  for p in expected if results.get(p, ("missing",))[0] != "pass"]
        self.assertEqual(broken, [], "cases in expected_pass.txt that no longer pass")
        newly = sorted(p for p, (s, _) in results.items() if s == "pass" and p not in expected)
        if newly:
            sys.stdout.write("passing but not in expected_pass.txt (add them):\n  %s\n" % "\n  ".join(newly))

    @unittest.skipUnless(os.environ.get("KGTEST_CONFORMANCE_PEER") == "pykmip",
                         "set KGTEST_CONFORMANCE_PEER=pykmip to run the vectors against PyKMIP too")
    def test_vectors_pykmip(self):
        tables, results = run_all("pykmip")
        sys.stdout.write("\nkg-conformance against PyKMIP (reference, not asserted):\n%s\n" % tables)
        self.assertTrue(results)


class ConformanceRunner(unittest.TestCase):
    """The runner itself: it must see a wrong response, and refuse a bad out-of-scope list."""

    CASE = os.path.join("oasis", "v1.4", "XML", "mandatory", "SKFF-M-1-14.xml")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kgconf-vectors-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def vectors_with(self, text):
        path = os.path.join(self.tmp, self.CASE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return self.tmp

    def original(self):
        with open(os.path.join(kg_harness.VECTORS, self.CASE)) as f:
            return f.read()

    def test_mismatch_is_reported(self):
        text = self.original()
        # The first response says the object is a Symmetric Key; expect a Secret Data instead.
        first = text.index("<ResponseMessage>")
        tampered = text[:first] + text[first:].replace('value="SymmetricKey"', 'value="SecretData"', 1)
        self.assertNotEqual(tampered, text)
        gw = Gateway("conformance-runner")
        try:
            gw.start()
            rc, out, res = run_runner(gw, "oasis", vectors=self.vectors_with(self.original()),
                                      out_of_scope=None)
            self.assertEqual(rc, 0, out)
            self.assertEqual(res[self.CASE][0], "pass", out)   # the control: untouched, it passes
            rc, out, res = run_runner(gw, "oasis", vectors=self.vectors_with(tampered), out_of_scope=None)
        finally:
            gw.cleanup()
        self.assertEqual(rc, 0, out)
        status, why = res[self.CASE]
        self.assertEqual(status, "fail", out)
        self.assertIn("response 0: BatchItem[0]/ResponsePayload[0]/ObjectType expected SecretData got "
                      "SymmetricKey", why)
        self.assertIn("FAIL %s" % self.CASE, out)

    def test_errata_correct_one_value_and_must_apply(self):
        """An erratum corrects one expected value (the tampered ObjectType passes again);
        one naming an element the vector lacks, or a value it already has, fails its case;
        a line without a reason is refused."""
        text = self.original()
        first = text.index("<ResponseMessage>")
        tampered = text[:first] + text[first:].replace('value="SymmetricKey"', 'value="SecretData"', 1)
        element = "BatchItem[0]/ResponsePayload[0]/ObjectType"
        errata = os.path.join(self.tmp, "errata.txt")

        def run(vector_text, line):
            with open(errata, "w") as f:
                f.write(line)
            return run_runner(gw, "oasis", vectors=self.vectors_with(vector_text), out_of_scope=None, errata=errata)

        gw = Gateway("conformance-errata")
        try:
            gw.start()
            rc, out, res = run(tampered, "%s 0 %s SymmetricKey  the test's own defect\n" % (self.CASE, element))
            self.assertEqual((rc, res[self.CASE][0]), (0, "pass"), out)
            rc, out, res = run(text, "%s 0 %s SymmetricKey  already so\n" % (self.CASE, element))
            self.assertEqual(res[self.CASE], ("fail", "response 0: an erratum corrects a value the vector "
                                                      "already has: remove it"), out)
            rc, out, res = run(text, "%s 0 BatchItem[0]/Nothing[3] X  no such element\n" % self.CASE)
            self.assertEqual(res[self.CASE][0], "fail", out)
            self.assertIn("names an element the vector does not have", res[self.CASE][1])
            rc, out, res = run(text, "%s 0 %s SymmetricKey\n" % (self.CASE, element))
            self.assertEqual(rc, 2, out)
            self.assertIn("want \"<path> <response> <element> <value> <reason>\"", out)
        finally:
            gw.cleanup()

    def refused(self, list_text):
        oos = os.path.join(self.tmp, "oos.txt")
        with open(oos, "w") as f:
            f.write(list_text)
        r = subprocess.run([runner_bin(), "--vectors", kg_harness.VECTORS, "--port", "1", "--ca", "/dev/null",
                            "--cert", "/dev/null", "--key", "/dev/null", "--out-of-scope", oos],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        return r.returncode, r.stdout.decode(errors="replace")

    def test_mandatory_case_cannot_be_out_of_scope(self):
        rc, out = self.refused("oasis/v1.4/XML/mandatory/SKLC-M-1-14.xml  we would rather not\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("SKLC-M-1-14.xml is a mandatory case; it cannot be out of scope", out)
        rc, out = self.refused("oasis-tc-1.x/v1.1/SKLC_M_1_11_*.xml  nor this one\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("is a mandatory case", out)

    def test_out_of_scope_needs_a_reason_and_a_match(self):
        rc, out = self.refused("oasis/v1.4/XML/optional/SKLC-O-1-14.xml\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("has no reason", out)
        rc, out = self.refused("oasis/v9.9/nothing.xml  a reason\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("matches no vector file", out)

    def test_project_list_is_accepted(self):
        # The real list: optional and plain test cases only, each with a reason.
        rc, out = self.refused(open(OUT_OF_SCOPE).read() + "oasis/v1.4/XML/mandatory/AX-M-1-14.xml  x\n")
        self.assertEqual(rc, 2, out)
        self.assertEqual(out.count("is a mandatory case"), 1, out)  # only the line added here


class TtlvCli(unittest.TestCase):
    """kmipgw ttlv to-xml | to-hex."""

    # KMIP 1.4 section 9.1.2's Structure example, and a request built from it by hand.
    STRUCT_HEX = "42002001000000204200040500000004000000FE000000004200050200000004000000FF00000000"

    def ttlv(self, mode, data):
        r = subprocess.run([kg_harness.kmipgw_bin(), "ttlv", mode], input=data.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_round_trip_of_a_vector_request(self):
        with open(os.path.join(kg_harness.VECTORS, "oasis", "v1.4", "XML", "mandatory",
                               "SKLC-M-1-14.xml")) as f:
            request = re.search(r"<RequestMessage>.*?</RequestMessage>", f.read(), re.S).group(0)
        rc, hex1, err = self.ttlv("to-hex", request)
        self.assertEqual(rc, 0, err)
        self.assertTrue(hex1.startswith("42007801"), hex1)
        rc, xml, err = self.ttlv("to-xml", hex1)
        self.assertEqual(rc, 0, err)
        # Attribute Values take the names of the attribute their Attribute Name names.
        self.assertIn('<AttributeValue type="Enumeration" value="AES"/>', xml)
        self.assertIn('<AttributeValue type="Integer" value="Encrypt Decrypt"/>', xml)
        self.assertIn('<ObjectType type="Enumeration" value="SymmetricKey"/>', xml)
        rc, hex2, err = self.ttlv("to-hex", xml)
        self.assertEqual((rc, hex2), (0, hex1), err)

    def test_spec_example_with_whitespace(self):
        spaced = " ".join(self.STRUCT_HEX[i:i + 8] for i in range(0, len(self.STRUCT_HEX), 8)) + "\n"
        rc, xml, err = self.ttlv("to-xml", spaced)
        self.assertEqual(rc, 0, err)
        self.assertIn('<ApplicationSpecificInformation type="Enumeration" value="0x000000fe"/>', xml)
        self.assertIn('<ArchiveDate type="Integer" value="255"/>', xml)
        rc, back, err = self.ttlv("to-hex", xml)
        self.assertEqual((rc, back.strip()), (0, self.STRUCT_HEX.lower()), err)

    def test_bad_input_is_one_line_and_exit_2(self):
        cases = [
            ("to-xml", "4200", "TTLV at byte 0"),
            ("to-xml", "42007801zz", "not a hex digit"),
            ("to-xml", "420078010", "odd number of hex digits"),
            ("to-xml", "", "no input"),
            ("to-hex", "<RequestMessage><Nope type=\"Integer\" value=\"1\"/></RequestMessage>",
             "unknown tag <Nope>"),
            ("to-hex", "<BatchCount type=\"Integer\" value=\"ten\"/>", "bad Integer value"),
            ("to-hex", "<BatchCount type=\"Integer\" value=\"2147483648\"/>", "bad Integer value"),
            ("to-hex", "<BatchCount type=\"Float\" value=\"1\"/>", "unknown type"),
            ("to-hex", "<RequestMessage>", "not well-formed XML"),
            ("to-hex", "<ObjectType type=\"Enumeration\" value=\"NoSuchType\"/>", "bad Enumeration value"),
        ]
        for mode, data, message in cases:
            with self.subTest(mode=mode, data=data):
                rc, out, err = self.ttlv(mode, data)
                self.assertEqual(rc, 2, (out, err))
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(message, err)
        # Input over the cap (16 MiB of XML) is refused before it is parsed.
        rc, out, err = self.ttlv("to-hex", " " * (16 * 1024 * 1024 + 1))
        self.assertEqual((rc, out), (2, ""), err)
        self.assertIn("input larger than", err)
        rc, _, err = self.ttlv("sideways", "")
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)


if __name__ == "__main__":
    unittest.main()
