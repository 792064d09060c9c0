"""`kmipgw keys report` against a real gateway: keys made the vCenter way
(Create, then the batched x- tags), some fetched, some never, one destroyed
and one compromised by admin; the report read in every format while the
gateway serves, with last use taken from the audit log (and a second log).

Every check has its negative: a fetched key is not never-fetched, a Get in
a second log counts but a denied or failed one or a Create does not, a
hostile x-Name stays inside its field, a missing store is neither read nor
created, a missing audit file fails the run.
"""

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile

import kg_kmip as K
from kg_harness import GatewayTestCase

TAGS = ("x-Component", "x-Name", "x-Identifier")
FIRST_BATCH = [("x-Product_Version", "8.0.1 build-21560480"), ("x-Vendor", "VMware, Inc."),
               ("x-Product", "VMware vSphere")]
# A client-chosen name meant to forge a line, a CSV cell and a formula, and
# to drive the terminal (ESC, and C1 CSI U+009B).
HOSTILE_NAME = "=HYPERLINK(\"http://x\"),\nFORGED-LINE\r\x1b[2J\u009b31m"


class KeysReport(GatewayTestCase):
    gw_name = "keys"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls._make_keys()
        except BaseException:
            cls.gw.cleanup()
            raise

    # --- the scene ------------------------------------------------------------------
    @classmethod
    def _call(cls, identity, item):
        (resp,) = cls.gw.task(identity, K.request(item))
        if resp.item.status != K.RESULT_STATUS["SUCCESS"]:
            raise AssertionError("%s failed: %s" % (identity, resp.item.describe()))
        return resp.item

    @classmethod
    def _vcenter_key(cls, component, name, identifier, fetch):
        """vCenter's task: Create, the first three tags in one batch, the last three in
        another; then (when `fetch`) Get, as a host does to unlock a VM."""
        uid = cls._call("vsphere", K.create_aes256(K.batch_id())).uid()
        for pairs in (FIRST_BATCH, [("x-Identifier", identifier), ("x-Component", component),
                                    ("x-Name", name)]):
            items = [K.add_attribute(uid, n, v, K.batch_id()) for n, v in pairs]
            (resp,) = cls.gw.task("vsphere", K.request(items))
            for it in resp.items:
                if it.status != K.RESULT_STATUS["SUCCESS"]:
                    raise AssertionError("Add Attribute failed: %s" % it.describe())
        material = None
        if fetch:
            material = K.symmetric_key_of(cls._call("vsphere", K.get(uid, K.batch_id())).payload)[0]
        return uid, material

    @classmethod
    def _make_keys(cls):
        cls.vm_fetched, cls.material = cls._vcenter_key(
            "Virtual Machine", "vm-web01", "421ff8c9-d527-341c-5437-1d2d25f34490", True)
        cls.vm_never, _ = cls._vcenter_key(
            "Virtual Machine", "vm-orphan", "421ff8c9-0000-341c-5437-1d2d25f34491", False)
        cls.host, _ = cls._vcenter_key("ESXi Server", "esx01.example.com",
                                       "4c4c4544-0042-3510-8052-b4c04f4e3732", True)
        cls.hostile, _ = cls._vcenter_key("Virtual Machine", HOSTILE_NAME, "id,with,commas", False)
        cls.admin_key = cls._call("admin", K.create_aes256(K.batch_id())).uid()
        cls.destroyed = cls._call("admin", K.create_aes256(K.batch_id())).uid()
        cls._call("admin", K.destroy(cls.destroyed, K.batch_id()))
        cls.compromised = cls._call("admin", K.create_aes256(K.batch_id())).uid()
        cls._call("admin", K.revoke(cls.compromised, "KEY_COMPROMISE", K.batch_id()))
        cls.vsphere_keys = {cls.vm_fetched, cls.vm_never, cls.host, cls.hostile}
        cls.admin_keys = {cls.admin_key, cls.destroyed, cls.compromised}

    # --- running the report ---------------------------------------------------------
    def report(self, *args, config=None, expect=0):
        """Run the report (from another directory: relative paths in the config must
        still resolve); returns (stdout bytes, stderr text)."""
        cmd = [self.gw.bin, "keys", "report", "--config", config or self.gw.path("gateway.yaml")]
        r = subprocess.run(cmd + list(args), cwd="/", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, expect, "keys report %s: exit %d, stderr:\n%s"
                         % (" ".join(args), r.returncode, err))
        return r.stdout, err

    def json_rows(self, *args):
        out, err = self.report("--format", "json", *args)
        lines = [json.loads(line) for line in out.decode().splitlines()]
        self.assertIn("summary", lines[-1], "the last JSON line is the summary")
        rows = {row["uid"]: row for row in lines[:-1]}
        self.assertEqual(len(rows), len(lines) - 1, "a UID listed twice")
        return rows, lines[-1]["summary"], err

    def audit_gets(self, uid):
        """Times of the allowed, successful Gets of `uid` in the gateway's audit log."""
        times = []
        with open(self.gw.path("audit.log")) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("uid") == uid and rec.get("operation") == "Get" and \
                        rec.get("decision") == "allow" and rec.get("result") == "success":
                    times.append(rec["time"])
        return times

    def write_audit(self, name, lines):
        path = os.path.join(self.gw.dir, name)
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return path

    def config_in(self, tmp, store, audit):
        """A copy of gateway.yaml in `tmp` whose store and audit paths are `store` and
        `audit` (relative ones then resolve in tmp), every other path the gateway's."""
        with open(self.gw.path("gateway.yaml")) as f:
            text = f.read()
        text = text.replace("path: kmipgw.db", "path: " + store).replace("path: audit.log", "path: " + audit)
        for rel in ("pki/", "policy.yaml"):
            text = text.replace(" " + rel, " " + self.gw.path(rel))
        conf = os.path.join(tmp, "gateway.yaml")
        with open(conf, "w") as f:
            f.write(text)
        return conf

    @staticmethod
    def use(uid, time, operation="Get", decision="allow", result="success"):
        return json.dumps({"seq": 1, "prev": "0" * 64, "time": time, "cn": "esx02", "ou": ["vsphere"],
                           "serial": "1A", "fingerprint": "ab", "group": "vsphere",
                           "operation": operation, "uid": uid, "decision": decision,
                           "result": result, "reason": 0}, separators=(",", ":"))

    # --- the tests ------------------------------------------------------------------
    def test_json_lists_every_key_with_tags_states_and_fresh(self):
        rows, summary, _ = self.json_rows()
        self.assertEqual(set(rows), self.vsphere_keys | self.admin_keys)
        fetched, never = rows[self.vm_fetched], rows[self.vm_never]
        self.assertEqual((fetched["x-Component"], fetched["x-Name"], fetched["x-Identifier"]),
                         ("Virtual Machine", "vm-web01", "421ff8c9-d527-341c-5437-1d2d25f34490"))
        self.assertEqual(rows[self.host]["x-Component"], "ESXi Server")
        self.assertEqual(rows[self.hostile]["x-Name"], HOSTILE_NAME, "JSON keeps the value exactly")
        for uid in self.admin_keys:
            self.assertEqual([rows[uid][t] for t in TAGS], ["", "", ""], "absent tags are empty")
        self.assertEqual((fetched["object_type"], fetched["algorithm"], fetched["group"]),
                         ("Symmetric Key", "AES-256", "vsphere"))
        self.assertEqual(rows[self.admin_key]["group"], "admin")
        self.assertEqual(fetched["state"], "PreActive", "a state is named, not numbered")
        self.assertEqual(rows[self.destroyed]["state"], "Destroyed")
        self.assertEqual(rows[self.compromised]["state"], "Compromised")
        # Fresh: the store's flag, cleared by the first Get.
        self.assertIs(fetched["fresh"], False)
        self.assertIs(never["fresh"], True)
        self.assertNotIn("never-fetched", fetched["flags"])
        self.assertIn("never-fetched", never["flags"])
        self.assertIn("never-fetched", rows[self.hostile]["flags"])
        self.assertNotIn("never-fetched", rows[self.host]["flags"])
        self.assertEqual(rows[self.destroyed]["flags"], ["destroyed"],
                         "a destroyed key is not an orphan to clean up")
        self.assertIn("compromised", rows[self.compromised]["flags"])
        self.assertNotIn("compromised", fetched["flags"])
        self.assertNotIn("destroyed", fetched["flags"])
        # Created: the Initial Date, today.
        self.assertRegex(fetched["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(summary["objects"], 7)
        self.assertEqual(summary["by_state"], {"PreActive": 5, "Compromised": 1, "Destroyed": 1})
        self.assertEqual(summary["by_x-Component"], {"": 3, "ESXi Server": 1, "Virtual Machine": 3})
        # never fetched: vm_never, hostile, admin_key, compromised (destroyed is not counted)
        self.assertEqual(summary["never_fetched"], 4)
        self.assertEqual(summary["unused"], 0, "nothing is a year old")
        self.assertEqual((summary["destroyed"], summary["compromised"]), (1, 1))

    def test_last_use_comes_from_the_audit_log(self):
        rows, summary, _ = self.json_rows()
        for uid in (self.vm_fetched, self.host):
            gets = self.audit_gets(uid)
            self.assertTrue(gets, "the gateway audited no Get of %s" % uid)
            self.assertEqual(rows[uid]["last_use"], max(gets))
        for uid in (self.vm_never, self.hostile, self.admin_key):
            self.assertEqual(self.audit_gets(uid), [])
            self.assertIsNone(rows[uid]["last_use"], "a key never fetched has no last use")
        self.assertGreater(summary["audit"]["uses"], 0)
        self.assertEqual(summary["audit"]["files"], 1)
        self.assertEqual(summary["audit"]["malformed"], 0)

    def test_second_audit_file_later_get_updates_last_use(self):
        before = max(self.audit_gets(self.vm_fetched))
        later = "2031-05-06T07:08:09Z"
        path = self.write_audit("other-gateway.audit.log", [
            self.use(self.vm_fetched, later),
            # Not uses: denied, failed, a Create, an event; and an older Get.
            self.use(self.host, "2032-01-01T00:00:00Z", decision="deny: operation not allowed for the group"),
            self.use(self.host, "2032-01-01T00:00:00Z", result="failed"),
            self.use(self.host, "2032-01-01T00:00:00Z", operation="Create"),
            json.dumps({"seq": 2, "prev": "0" * 64, "time": "2033-01-01T00:00:00Z", "event": "start",
                        "detail": self.host}),
            self.use(self.host, "2001-01-01T00:00:00Z"),
            # Encrypt uses the key material too.
            self.use(self.admin_key, "2030-01-01T00:00:00Z", operation="Encrypt"),
        ])
        rows, summary, err = self.json_rows("--audit", path)
        self.assertEqual(rows[self.vm_fetched]["last_use"], later)
        self.assertEqual(rows[self.host]["last_use"], max(self.audit_gets(self.host)),
                         "denied, failed, Create, event and older records must not count")
        self.assertEqual(rows[self.admin_key]["last_use"], "2030-01-01T00:00:00Z")
        self.assertEqual(summary["audit"]["files"], 2)
        self.assertEqual(err, "", "a clean second log reports nothing")
        # Without it, the gateway's own Get is the last use again.
        rows, _, _ = self.json_rows()
        self.assertEqual(rows[self.vm_fetched]["last_use"], before)

    def test_malformed_audit_lines_are_reported_and_skipped(self):
        good = self.use(self.vm_never, "2030-02-02T02:02:02Z")
        path = self.write_audit("broken.audit.log", [
            "not json at all",
            '{"time":"2030-01-01T00:00:00Z","operation":"Get","uid":"%s","decision":"allow",'
            '"result":"success","nested":{"a":1}}' % self.vm_fetched,
            self.use(self.vm_fetched, "2030-13-01T00:00:00Z"),  # no 13th month
            self.use(self.vm_fetched, "2030-02-30T00:00:00Z"),  # no 30 February
            '{"time":"2030-01-01T00:00:00Z","time":"2030-01-01T00:00:00Z","operation":"Get",'
            '"uid":"%s","decision":"allow","result":"success"}' % self.vm_fetched,
            '{"operation":"Get","uid":"%s","decision":"allow","result":"success"}' % self.vm_fetched,
            good,
        ])
        rows, summary, err = self.json_rows("--audit", path)
        for lineno in range(1, 7):
            self.assertIn("%s:%d: " % (path, lineno), err)
        self.assertNotIn("%s:7:" % path, err, "the good line is not reported")
        self.assertEqual(summary["audit"]["malformed"], 6)
        self.assertEqual(rows[self.vm_fetched]["last_use"], max(self.audit_gets(self.vm_fetched)),
                         "no malformed line may count as a use")
        self.assertEqual(rows[self.vm_never]["last_use"], "2030-02-02T02:02:02Z",
                         "the good line after the bad ones still counts")
        self.assertIn("never-fetched", rows[self.vm_never]["flags"],
                      "Fresh, the store's own record, decides never-fetched")

    def test_unused_days(self):
        rows, summary, _ = self.json_rows("--unused-days", "0")
        for uid, row in rows.items():
            if uid == self.destroyed:
                self.assertNotIn("unused", row["flags"])
            else:
                self.assertIn("unused", row["flags"], "--unused-days 0 flags %s" % uid)
        self.assertEqual(summary["unused"], 6)
        self.assertEqual(summary["unused_days"], 0)
        rows, summary, _ = self.json_rows("--unused-days", "1")
        self.assertFalse([u for u, r in rows.items() if "unused" in r["flags"]],
                         "keys made and used today are not unused for a day")
        # A last use long ago makes a key unused, however new the key; the latest
        # use wins, so an old line cannot hide a newer Get.
        path = self.write_audit("old.audit.log", [self.use(self.vm_never, "2001-01-01T00:00:00Z"),
                                                  self.use(self.vm_fetched, "2001-01-01T00:00:00Z")])
        rows, _, _ = self.json_rows("--unused-days", "1", "--audit", path)
        self.assertEqual(rows[self.vm_never]["last_use"], "2001-01-01T00:00:00Z")
        self.assertIn("unused", rows[self.vm_never]["flags"])
        self.assertNotIn("unused", rows[self.vm_fetched]["flags"])

    def test_group_filter(self):
        rows, summary, _ = self.json_rows("--group", "admin")
        self.assertEqual(set(rows), self.admin_keys)
        rows, _, _ = self.json_rows("--group", "vsphere")
        self.assertEqual(set(rows), self.vsphere_keys)
        rows, summary, _ = self.json_rows("--group", "nobody")
        self.assertEqual(rows, {})
        self.assertEqual(summary["objects"], 0)

    def test_text_columns_and_escaping(self):
        out, _ = self.report()
        text = out.decode("utf-8")
        lines = text.split("\n")
        header = lines[0]
        titles = ["UID", "TYPE", "ALGORITHM", "STATE", "GROUP", "CREATED", "LAST USE", "FRESH",
                  "FLAGS", "X-COMPONENT", "X-IDENTIFIER", "X-NAME"]
        starts = [header.index(t) for t in titles]
        self.assertEqual(starts, sorted(starts))
        rows = {}
        for line in lines[1:]:
            if not line:
                break
            cells = [line[a:b].rstrip() for a, b in zip(starts, starts[1:] + [None])]
            rows[cells[0]] = dict(zip(titles, cells))
        self.assertEqual(set(rows), self.vsphere_keys | self.admin_keys,
                         "one line per key: nothing forged, nothing lost")
        self.assertEqual(rows[self.vm_fetched]["X-NAME"], "vm-web01")
        self.assertEqual(rows[self.vm_fetched]["X-COMPONENT"], "Virtual Machine")
        self.assertEqual(rows[self.vm_fetched]["FRESH"], "no")
        self.assertEqual(rows[self.vm_never]["FLAGS"], "never-fetched")
        self.assertEqual(rows[self.vm_fetched]["FLAGS"], "")
        self.assertEqual(rows[self.hostile]["X-NAME"],
                         '=HYPERLINK("http://x"),\\nFORGED-LINE\\r\\x1b[2J\\u009b31m')
        for line in lines:
            self.assertFalse(line.startswith("FORGED"), "a tag forged a line")
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\u009b", text)
        self.assertNotIn("\r", text)
        self.assertIn("summary: 7 objects", text)
        self.assertIn('x-Component "Virtual Machine": 3', text)
        self.assertIn("never fetched: 4", text)

    def test_csv_quotes_and_neutralises_formulas(self):
        out, err = self.report("--format", "csv")
        self.assertTrue(out.endswith(b"\r\n"))
        table = list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))
        header = table[0]
        self.assertEqual(header[:3], ["uid", "object_type", "algorithm"])
        self.assertEqual(len(table), 8, "a header and one record per key: nothing forged")
        rows = {r[0]: dict(zip(header, r)) for r in table[1:]}
        hostile = rows[self.hostile]
        # The spreadsheet sees text: a leading ', the value otherwise whole except
        # the control characters RFC 4180 does not allow in a field.
        self.assertEqual(hostile["x-Name"], "'" + HOSTILE_NAME.replace("\x1b", "?").replace("\u009b", "?"))
        self.assertEqual(hostile["x-Identifier"], "id,with,commas")
        self.assertIn(b'"id,with,commas"', out)
        self.assertEqual(rows[self.vm_fetched]["x-Name"], "vm-web01")
        self.assertNotIn(b'"vm-web01"', out, "a plain value is not quoted")
        self.assertEqual(rows[self.vm_never]["flags"], "never-fetched")
        self.assertEqual(rows[self.host]["last_use"], max(self.audit_gets(self.host)))
        self.assertIn("summary: 7 objects", err, "the summary goes beside the table")
        self.assertNotIn(b"summary", out)

    def test_key_material_never_printed(self):
        self.assertEqual(len(self.material), 32)
        for fmt in ("text", "csv", "json"):
            out, err = self.report("--format", fmt)
            for blob in (out, err.encode()):
                self.assertNotIn(self.material, blob)
                self.assertNotIn(self.material.hex().encode(), blob)
                self.assertNotIn(self.material.hex().upper().encode(), blob)

    def test_missing_store_is_an_error_and_not_created(self):
        tmp = tempfile.mkdtemp(prefix="kgtest-keys-")
        if self.gw.store_url is not None:
            # PostgreSQL: a database that does not exist is an error, and the URL (which may
            # hold a password) is not printed.
            try:
                conf = self.config_in(tmp, "unused.db", self.gw.path("audit.log"))
                with open(conf) as f:
                    text = f.read()
                db = self.gw.store_url.split("?")[0].rsplit("/", 1)[1]
                with open(conf, "w") as f:
                    f.write(text.replace("/%s?" % db, "/no_such_database?"))
                _, err = self.report(config=conf, expect=1)
                self.assertIn("PostgreSQL database", err)
                self.assertNotIn("no_such_database?", err)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        try:
            # A relative store path now resolves in tmp, where there is no store.
            conf = self.config_in(tmp, "missing.db", self.gw.path("audit.log"))
            _, err = self.report(config=conf, expect=1)
            self.assertIn("missing.db", err)
            self.assertIn("not created", err)
            self.assertFalse(os.path.exists(os.path.join(tmp, "missing.db")), "the store was created")
            self.assertFalse([n for n in os.listdir(tmp) if n.startswith("missing.db")])
            # The same config with the store copied in works.
            shutil.copy(self.gw.path("kmipgw.db"), os.path.join(tmp, "missing.db"))
            self.report(config=conf)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_missing_audit_file_is_an_error(self):
        missing = self.gw.path("no-such.audit.log")
        _, err = self.report("--audit", missing, expect=1)
        self.assertIn(missing, err)
        self.assertFalse(os.path.exists(missing))
        # The configured log missing is an error too.
        tmp = tempfile.mkdtemp(prefix="kgtest-keys-")
        try:
            conf = self.config_in(tmp, self.gw.path("kmipgw.db"), "audit.log")
            _, err = self.report(config=conf, expect=1)
            self.assertIn(os.path.join(tmp, "audit.log"), err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_usage_errors(self):
        for args in (["--format", "xml"], ["--unused-days", "-1"], ["--unused-days", "36501"],
                     ["--unused-days", "1x"], ["--unused-days", ""], ["--group"], ["--bogus"],
                     ["--group", "a", "--group", "b"], ["--config", "x"],
                     ["--audit", "a.log"] * 65):
            _, err = self.report(*args, expect=2)
            self.assertIn("keys report", err, args)
        r = subprocess.run([self.gw.bin, "keys", "report"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--config", r.stderr)
        r = subprocess.run([self.gw.bin, "keys", "report", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"Get, Export, Encrypt, Decrypt", r.stdout, "--help names the operations")
        self.assertIn(b"--unused-days", r.stdout)
        for args, status in ((["keys"], 2), (["keys", "list"], 2), (["keys", "--help"], 0)):
            r = subprocess.run([self.gw.bin] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30)
            self.assertEqual(r.returncode, status, args)
            self.assertIn(b"keys report", r.stdout if status == 0 else r.stderr)

    def test_bad_config_and_no_audit_log(self):
        _, err = self.report(config=self.gw.path("no-such.yaml"), expect=1)
        self.assertIn("configuration", err)
        # Without any audit log the report still runs, and says last use is unknown.
        tmp = tempfile.mkdtemp(prefix="kgtest-keys-")
        try:
            conf = self.config_in(tmp, self.gw.path("kmipgw.db"), "audit.log")
            with open(conf) as f:
                text = f.read().replace("audit:\n  path: audit.log\n", "")
            with open(conf, "w") as f:
                f.write(text)
            out, err = self.report("--format", "json", config=conf)
            self.assertIn("last use unknown", err)
            rows = [json.loads(line) for line in out.decode().splitlines()[:-1]]
            self.assertEqual(len(rows), 7)
            self.assertTrue(all(r["last_use"] is None for r in rows))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
