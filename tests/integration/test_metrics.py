"""The metrics listener: GET /metrics (Prometheus text) and GET /health on metrics.listen.

The gateway runs on the devenv's SoftHSM token through the fault module (tests/fault), so
that an HSM fault can be injected under /health; with an empty control file it forwards
every call. Its store lives in a directory of its own (DIR/store/), and it runs without
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that that directory chmod'ed to 000 locks it
out even as root, as it would a real service user. (A mode on the store file alone would
not: SQLite hands a new connection a descriptor the process already holds for the file.)

What each test holds the gateway to:
  - a known sequence of requests moves each counter by exactly what it did, no more;
  - histograms agree with the counters (count = +Inf bucket = sum of results);
  - /health is 200 with both parts ok, and 503 naming the part that failed (store file
    unreadable, store file gone, HSM failing C_GetSessionInfo), and 200 again once fixed;
  - other paths are 404, other methods 405;
  - with metrics.listen absent or empty no port is opened, and a port that cannot be bound
    stops the gateway from starting.
"""

import ctypes
import http.client
import json
import os
import re
import socket
import time
import unittest
import uuid

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase, HarnessError, free_port, server_kind
from test_mechanisms import filtered_gateway

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _drop_dac_from_bounding_set():
    """preexec_fn: after exec, root holds no capability to read past file modes."""
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)


def effective_caps(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def listening_ports(pid):
    """TCP ports the process `pid` listens on (IPv4 and IPv6)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.append(int(cols[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def parse_metrics(text):
    """{(name, ((label, value), ...)): float} of every series; raises on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES.match(line)
        if m is None:
            raise AssertionError("not a Prometheus series line: %r" % line)
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Metrics(GatewayTestCase):
    gw_name = "metrics"

    @classmethod
    def setUpClass(cls):
        if server_kind() != "kmipgw":
            raise unittest.SkipTest("the metrics listener is kmipgw's")
        gw, cls.control = filtered_gateway(cls.gw_name, hidden=())
        try:
            # The store faults below need a store the test can break: a SQLite file of its
            # own, whichever store the rest of the suite runs on.
            gw.use_sqlite()
            os.mkdir(gw.path("store"), 0o700)
            gw.set_config("store", "path", "store/kmipgw.db")
            cls.store_dir = gw.path("store")
            cls.store = gw.path("store", "kmipgw.db")
            cls.metrics_port = free_port()
            gw.set_config("metrics", "listen", "127.0.0.1:%d" % cls.metrics_port)
            gw.preexec_fn = _drop_dac_from_bounding_set
            gw.start()
        except BaseException:
            gw.cleanup()
            raise
        cls.gw = gw

    def tearDown(self):
        # Whatever a test did, no fault outlives it.
        self.write_control("")
        os.chmod(self.store_dir, 0o700)
        super().tearDown()

    def write_control(self, text):
        # write + rename: the module never reads a half-written file.
        with open(self.control + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.control + ".tmp", self.control)

    # --- HTTP ------------------------------------------------------------------------------
    def http(self, method, path, body=None):
        """(status, headers dict with lower-case names, body text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()

    def scrape(self):
        status, headers, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        return parse_metrics(body)

    @staticmethod
    def value(m, name, **labels):
        return m.get((name, tuple(sorted(labels.items()))), 0.0)

    def health(self):
        status, headers, body = self.http("GET", "/health")
        self.assertEqual(headers.get("content-type"), "application/json")
        return status, json.loads(body)

    def wait_connections_closed(self):
        """The server sees a client's close at its next epoll turn: wait for the gauge to say 0."""
        deadline = time.monotonic() + 5
        while True:
            m = self.scrape()
            if self.value(m, "kmipgw_connections_open") == 0 or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    # --- counters ----------------------------------------------------------------------------
    def test_known_sequence_moves_counters_exactly(self):
        before = self.wait_connections_closed()
        uids = [self.create_key("vsphere") for _ in range(3)]
        self.get_key("vsphere", uids[0])
        self.get_key("vsphere", uids[1])
        # backup may not read vsphere's keys: policy denies (answered as absent, by design).
        r = self.gw.request("backup", K.request(K.get(uids[2], K.batch_id())))
        self.assertFailure(r.item, "ITEM_NOT_FOUND", "Get of another group's key")
        # A UID nobody has: Item Not Found too, but no denial.
        r = self.gw.request("vsphere", K.request(K.get(str(uuid.uuid4()), K.batch_id())))
        self.assertFailure(r.item, "ITEM_NOT_FOUND", "Get of an unknown UID")
        after = self.wait_connections_closed()

        def delta(name, **labels):
            return self.value(after, name, **labels) - self.value(before, name, **labels)

        req = "kmipgw_requests_total"
        self.assertEqual(delta(req, operation="Create", result="success"), 3)
        self.assertEqual(delta(req, operation="Get", result="success"), 2)
        self.assertEqual(delta(req, operation="Get", result="item_not_found"), 2)
        # Nothing else moved: every request series but these three is unchanged.
        moved = {k for k in set(before) | set(after)
                 if k[0] == req and self.value(after, k[0], **dict(k[1])) != self.value(before, k[0], **dict(k[1]))}
        self.assertEqual(moved, {(req, (("operation", "Create"), ("result", "success"))),
                                 (req, (("operation", "Get"), ("result", "success"))),
                                 (req, (("operation", "Get"), ("result", "item_not_found")))})
        self.assertEqual(delta("kmipgw_policy_denials_total", operation="Get"), 1)
        self.assertEqual(delta("kmipgw_policy_denials_total", operation="Create"), 0)
        dur = "kmipgw_request_duration_seconds"
        self.assertEqual(delta(dur + "_count", operation="Create"), 3)
        self.assertEqual(delta(dur + "_count", operation="Get"), 4)
        self.assertEqual(delta(dur + "_bucket", operation="Get", le="+Inf"), 4)
        self.assertGreater(delta(dur + "_sum", operation="Get"), 0)
        # Seven requests, each on a connection of its own, all closed again.
        self.assertEqual(delta("kmipgw_connections_total"), 7)
        self.assertEqual(self.value(after, "kmipgw_connections_open"), 0)
        # Sequential requests, one commit each: the 3 Creates, and the first Get of each of
        # the 2 keys read (it writes Fresh = False, KMIP 1.4 section 3.34).
        self.assertEqual(delta("kmipgw_store_commit_duration_seconds_count"), 5)
        self.assertGreater(delta("kmipgw_store_commit_duration_seconds_sum"), 0)
        self.assertEqual(delta("kmipgw_hsm_errors_total"), 0)
        # Scraping is not a request: two scrapes in a row agree on every request counter.
        again = self.scrape()
        for key, v in after.items():
            if key[0].startswith(("kmipgw_requests", "kmipgw_request_duration", "kmipgw_policy")):
                self.assertEqual(again.get(key), v, key)

    def test_histograms_agree_with_counters(self):
        self.create_key("vsphere")
        m = self.scrape()
        ops = {dict(k[1])["operation"] for k in m if k[0] == "kmipgw_request_duration_seconds_count"}
        self.assertIn("Create", ops)
        for op in ops:
            count = self.value(m, "kmipgw_request_duration_seconds_count", operation=op)
            results = sum(v for k, v in m.items()
                          if k[0] == "kmipgw_requests_total" and dict(k[1])["operation"] == op)
            self.assertEqual(count, results, op)
            buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                             if k[0] == "kmipgw_request_duration_seconds_bucket" and dict(k[1])["operation"] == op)
            self.assertEqual(len(buckets), 12, op)
            self.assertEqual(buckets[-1], (float("inf"), count), op)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "%s: buckets must be cumulative" % op)

    def test_gauges(self):
        sessions = int(self.gw.get_config("hsm", "sessions") or 8)
        m = self.wait_connections_closed()
        self.assertEqual(self.value(m, "kmipgw_hsm_sessions"), sessions)
        self.assertEqual(self.value(m, "kmipgw_hsm_sessions_in_use"), 0)
        self.assertGreaterEqual(self.value(m, "kmipgw_hsm_sessions_open"), 1)
        with self.gw.connect("vsphere") as c:
            self.assertTrue(c.request(K.discover_versions()).item.ok)
            self.assertEqual(self.value(self.scrape(), "kmipgw_connections_open"), 1)
        self.assertEqual(self.value(self.wait_connections_closed(), "kmipgw_connections_open"), 0)

    # --- health ----------------------------------------------------------------------------
    def test_health_ok(self):
        self.assertEqual(self.health(), (200, {"hsm": "ok", "store": "ok"}))

    def test_health_store_unreadable(self):
        if os.geteuid() == 0 and effective_caps(self.gw.pid) & (1 << _CAP_DAC_OVERRIDE):
            self.skipTest("the gateway kept CAP_DAC_OVERRIDE: a mode cannot lock it out")
        os.chmod(self.store_dir, 0)
        try:
            self.assertEqual(self.health(), (503, {"hsm": "ok", "store": "failed"}))
        finally:
            os.chmod(self.store_dir, 0o700)
        self.assertEqual(self.health(), (200, {"hsm": "ok", "store": "ok"}))
        self.assertIn("cannot read %s: Permission denied" % self.store, self.gw.log_text())

    def test_health_store_not_a_database(self):
        # The store path names something SQLite cannot open: the probe's own connection fails.
        os.rename(self.store, self.store + ".away")
        os.mkdir(self.store)
        try:
            self.assertEqual(self.health(), (503, {"hsm": "ok", "store": "failed"}))
        finally:
            os.rmdir(self.store)
            os.rename(self.store + ".away", self.store)
        self.assertEqual(self.health(), (200, {"hsm": "ok", "store": "ok"}))
        self.assertIn("health: the store does not answer", self.gw.log_text())

    def test_health_store_missing(self):
        os.rename(self.store, self.store + ".away")
        try:
            self.assertEqual(self.health(), (503, {"hsm": "ok", "store": "failed"}))
            # The probe must not have made a new, empty store in its place.
            self.assertFalse(os.path.exists(self.store))
        finally:
            os.rename(self.store + ".away", self.store)
        self.assertEqual(self.health(), (200, {"hsm": "ok", "store": "ok"}))
        self.assertIn("cannot read %s: No such file or directory (not created)" % self.store,
                      self.gw.log_text())

    def test_health_hsm_failing(self):
        before = self.value(self.scrape(), "kmipgw_hsm_errors_total")
        self.write_control("C_GetSessionInfo CKR_DEVICE_ERROR\n")
        self.assertEqual(self.health(), (503, {"hsm": "failed", "store": "ok"}))
        self.write_control("")
        # The one failed C_GetSessionInfo of that probe, and nothing else.
        self.assertEqual(self.value(self.scrape(), "kmipgw_hsm_errors_total"), before + 1)
        self.assertEqual(self.health(), (200, {"hsm": "ok", "store": "ok"}))

    # --- paths and methods ---------------------------------------------------------------------
    def test_other_paths_404(self):
        for path in ("/", "/metrics/", "/Metrics", "/healthz", "/metrics/x", "/../metrics"):
            status, _, _ = self.http("GET", path)
            self.assertEqual(status, 404, path)

    def test_only_get(self):
        for method, path, body in (("POST", "/metrics", "x=1"), ("POST", "/health", None),
                                   ("PUT", "/metrics", "data"), ("DELETE", "/health", None),
                                   ("HEAD", "/metrics", None), ("POST", "/nowhere", None)):
            status, headers, _ = self.http(method, path, body)
            self.assertEqual(status, 405, "%s %s" % (method, path))
            self.assertEqual(headers.get("allow"), "GET", "%s %s" % (method, path))
        # The refused requests were not counted as anything, and the listener still answers.
        self.assertEqual(self.health()[0], 200)

    def test_metrics_port_is_open(self):
        # The control case of Disabled below: with metrics on, two listening ports.
        self.assertEqual(listening_ports(self.gw.pid), sorted([self.gw.port, self.metrics_port]))


class Disabled(unittest.TestCase):
    """metrics.listen absent or empty: no port; a port that cannot be bound: no start."""

    @classmethod
    def setUpClass(cls):
        if server_kind() != "kmipgw":
            raise unittest.SkipTest("the metrics listener is kmipgw's")
        cls.gw = Gateway("metrics-off")

    @classmethod
    def tearDownClass(cls):
        cls.gw.cleanup()

    def tearDown(self):
        self.gw.stop()

    def test_absent_opens_no_port(self):
        self.assertIsNone(self.gw.get_config("metrics", "listen"))
        self.gw.start()
        self.assertEqual(listening_ports(self.gw.pid), [self.gw.port])

    def test_empty_opens_no_port(self):
        self.gw.set_config("metrics", "listen", "''")
        self.gw.start()
        self.assertEqual(listening_ports(self.gw.pid), [self.gw.port])

    def test_port_in_use_refuses_to_start(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            self.gw.set_config("metrics", "listen", "127.0.0.1:%d" % taken.getsockname()[1])
            with self.assertRaises(HarnessError) as ctx:
                self.gw.start(timeout=10)
        self.assertIn("metrics listener", str(ctx.exception))
        self.assertIn("Address already in use", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
