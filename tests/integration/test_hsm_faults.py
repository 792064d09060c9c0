"""HSM faults (issue 7): a failing, reset or hung HSM gives clients clean KMIP errors, and
the gateway recovers by itself once the fault clears.

The gateway runs on the devenv's SoftHSM token through tests/fault/kgfaultp11.so, which
forwards every PKCS#11 call and fails, hangs or resets the ones its control file names
(syntax: tests/fault/kg_fault_p11.c). The module is taken from the build directory of
$KMIPGW_BIN (<build>/gateway/kmipgw -> <build>/tests/fault/kgfaultp11.so).

What each test holds the gateway to:
  - under a fault, the client gets Operation Failed with Cryptographic Failure or General
    Failure: never Success, never key bytes, never a dropped connection, and the process
    lives on;
  - once the fault is cleared the same operations succeed without a restart, including
    after every real session was closed under the gateway (it reopens sessions and logs in
    again), and keys made before the fault Get the same bytes;
  - no PKCS#11 session leaks (the module counts the real sessions open);
  - a hung HSM call is answered with a failure within limits.request_timeout_ms + 2 s, while
    other clients' requests, HSM ones included, still complete.
"""

import os
import signal
import threading
import time
import unittest

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase, HarnessError, ConnectionClosed, kmipgw_bin, server_kind
from kg_ttlv import RESULT_REASON, RESULT_STATUS

FAULT_KINDS = ("CKR_DEVICE_REMOVED", "CKR_SESSION_HANDLE_INVALID", "CKR_USER_NOT_LOGGED_IN",
               "CKR_DEVICE_ERROR", "CKR_TOKEN_NOT_PRESENT")
CREATE_CALLS = ("C_GenerateKey", "C_WrapKey")       # what a Create makes the HSM do
GET_CALLS = ("C_UnwrapKey", "C_GetAttributeValue")  # what a plaintext Get makes it do
FAILURE_REASONS = (RESULT_REASON["CRYPTOGRAPHIC_FAILURE"], RESULT_REASON["GENERAL_FAILURE"])

REQUEST_TIMEOUT_MS = 2000
HANG_SLACK = 2.0          # seconds allowed beyond the request timeout
PLAINTEXT = "vsphere"     # a group whose Get answers key bytes
OTHER = "backup"          # another client, for requests beside a hung one


def fault_module():
    build = os.path.dirname(os.path.dirname(os.path.abspath(kmipgw_bin())))
    return os.path.join(build, "tests", "fault", "kgfaultp11.so")


class HsmFaults(GatewayTestCase):
    gw_name = "hsmfault"

    @classmethod
    def setUpClass(cls):
        if server_kind() != "kmipgw":
            raise unittest.SkipTest("HSM faults are only injected into kmipgw")
        module = fault_module()
        if not os.path.exists(module):
            raise HarnessError("fault module %s not built (ninja -C %s)"
                               % (module, os.path.dirname(os.path.dirname(module))))
        gw = Gateway(cls.gw_name)
        try:
            cls.control = gw.path("fault.control")
            cls.status_path = gw.path("fault.status")
            real = gw.get_config("hsm", "module")
            if not real:
                raise HarnessError("devenv gateway.yaml names no hsm.module")
            gw.extra_env.update(KG_FAULT_REAL_MODULE=real, KG_FAULT_CONTROL=cls.control,
                                KG_FAULT_STATUS=cls.status_path)
            gw.set_config("hsm", "module", module)
            gw.set_config("limits", "request_timeout_ms", REQUEST_TIMEOUT_MS)
            cls.sessions = int(gw.get_config("hsm", "sessions") or 8)
            cls.write_control("")
            gw.start()
        except BaseException:
            gw.cleanup()
            raise
        cls.gw = gw

    def setUp(self):
        self.clear_faults()

    def tearDown(self):
        # Whatever happened, no fault outlives its test (a hung worker is released too).
        self.clear_faults()
        super().tearDown()

    # --- the control and status files ----------------------------------------------------
    @classmethod
    def write_control(cls, text):
        # write + rename: the module sees a new inode, so counts restart, and never
        # reads a half-written file.
        tmp = cls.control + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, cls.control)

    def set_faults(self, *rules):
        self.write_control("".join(r + "\n" for r in rules))

    def clear_faults(self):
        self.write_control("")

    def status(self):
        """The module's figures: sessions (real ones open now), opened, closed, injected."""
        figures = {}
        with open(self.status_path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                figures[k] = int(v)
        return figures

    def injected(self):
        return self.status()["injected"]

    # --- requests ------------------------------------------------------------------------
    def call(self, identity, batch_item, what):
        """One request on a fresh connection -> its single ResponseItem; a dropped
        connection fails the test."""
        try:
            with self.gw.connect(identity) as c:
                return c.request(batch_item).item
        except ConnectionClosed as e:
            self.fail("%s: the gateway dropped the connection (%s); log:\n%s"
                      % (what, e, self.gw.log_tail()))

    def create(self, what, identity=PLAINTEXT):
        return self.call(identity, K.create_aes256(K.batch_id()), what)

    def get(self, uid, what, identity=PLAINTEXT):
        return self.call(identity, K.get(uid, K.batch_id()), what)

    def assertAlive(self, what):
        self.assertTrue(self.gw.alive(), "%s: the gateway died; log:\n%s" % (what, self.gw.log_tail()))

    def assertHsmFailure(self, item, what):
        self.assertEqual(item.status, RESULT_STATUS["OPERATION_FAILED"],
                         "%s: expected Operation Failed, got %s" % (what, item.describe()))
        self.assertIn(item.reason, FAILURE_REASONS,
                      "%s: expected Cryptographic or General Failure, got %s"
                      % (what, item.describe()))
        self.assertIsNone(K.symmetric_key_of(item.payload), "%s: key material in a failure" % what)
        self.assertIsNone(item.uid(), "%s: a failed operation answered a UID" % what)

    def assertFaulted(self, before, what):
        """The module really injected something since `before` (else the test proves nothing)."""
        self.assertGreater(self.injected(), before, "%s: the fault was never hit" % what)

    def open_sessions(self):
        return self.status()["sessions"]

    def assertNoSessionLeak(self, what, before=None):
        """Real sessions open now: at most the pool's plus libp11's login session, and, after
        a test that sent one request at a time, no more than `before` it (the pool reuses
        one session then; a session it forgot without closing would show here)."""
        open_now = self.open_sessions()
        self.assertLessEqual(open_now, self.sessions + 1,
                             "%s: %d PKCS#11 sessions open (pool of %d)" % (what, open_now, self.sessions))
        if before is not None:
            self.assertLessEqual(open_now, before, "%s: %d PKCS#11 sessions open, %d before: leaked"
                                 % (what, open_now, before))

    def created_key(self, what):
        """Create as PLAINTEXT and Get it back: (uid, 32 key bytes)."""
        item = self.create(what)
        self.assertSuccess(item, what)
        uid = item.uid()
        self.assertTrue(uid, "%s: Create answered no UID" % what)
        return uid, self.key_bytes(uid, what)

    def key_bytes(self, uid, what):
        item = self.get(uid, what)
        self.assertSuccess(item, what)
        key = K.symmetric_key_of(item.payload)
        self.assertIsNotNone(key, "%s: Get answered no Symmetric Key" % what)
        self.assertEqual(len(key[0]), 32, "%s: key length" % what)
        return key[0]

    # --- tests ---------------------------------------------------------------------------
    def test_passthrough(self):
        """Without faults the module is invisible, and the gateway really goes through it."""
        before = self.injected()
        uid, key = self.created_key("Create through the fault module")
        self.assertEqual(self.key_bytes(uid, "Get again"), key)
        st = self.status()
        self.assertGreater(st["opened"], 0, "the gateway opened no session through the module")
        self.assertEqual(st["injected"], before)

    def test_create_faults(self):
        """Every fault kind on C_GenerateKey and C_WrapKey fails the Create cleanly; the next
        Create after clearing works."""
        old_uid, old_key = self.created_key("Create before the faults")
        sessions = self.open_sessions()
        for call in CREATE_CALLS:
            for kind in FAULT_KINDS:
                what = "Create with %s %s" % (call, kind)
                with self.subTest(call=call, kind=kind):
                    before = self.injected()
                    self.set_faults("%s %s" % (call, kind))
                    self.assertHsmFailure(self.create(what), what)
                    self.assertFaulted(before, what)
                    self.assertAlive(what)
                    self.clear_faults()
                    self.created_key(what + ", then cleared")
        self.assertEqual(self.key_bytes(old_uid, "Get the key made before the faults"), old_key)
        self.assertNoSessionLeak("after the Create faults", sessions)

    def test_get_faults(self):
        """Every fault kind on C_UnwrapKey and C_GetAttributeValue fails the Get cleanly; after
        clearing, the same key Gets the same bytes."""
        uid, key = self.created_key("Create before the faults")
        sessions = self.open_sessions()
        for call in GET_CALLS:
            for kind in FAULT_KINDS:
                what = "Get with %s %s" % (call, kind)
                with self.subTest(call=call, kind=kind):
                    before = self.injected()
                    self.set_faults("%s %s" % (call, kind))
                    self.assertHsmFailure(self.get(uid, what), what)
                    self.assertFaulted(before, what)
                    self.assertAlive(what)
                    self.clear_faults()
                    self.assertEqual(self.key_bytes(uid, what + ", then cleared"), key)
        self.assertNoSessionLeak("after the Get faults", sessions)

    def test_fault_once(self):
        """A counted fault fails that many calls, then the HSM is healthy again by itself."""
        before = self.injected()
        self.set_faults("C_GenerateKey CKR_DEVICE_ERROR 1")
        self.assertHsmFailure(self.create("first Create"), "first Create")
        self.assertFaulted(before, "first Create")
        self.created_key("second Create, fault not cleared")

    def test_session_check_fails(self):
        """The pool's own C_GetSessionInfo check failing: Create and Get fail, then recover."""
        uid, key = self.created_key("Create before the fault")
        sessions = self.open_sessions()
        for kind in ("CKR_SESSION_HANDLE_INVALID", "CKR_DEVICE_ERROR", "CKR_DEVICE_REMOVED"):
            with self.subTest(kind=kind):
                before = self.injected()
                self.set_faults("C_GetSessionInfo %s" % kind)
                self.assertHsmFailure(self.create("Create"), "Create with C_GetSessionInfo " + kind)
                self.assertHsmFailure(self.get(uid, "Get"), "Get with C_GetSessionInfo " + kind)
                self.assertFaulted(before, kind)
                self.assertAlive(kind)
                self.clear_faults()
                self.created_key("Create after C_GetSessionInfo %s cleared" % kind)
                self.assertEqual(self.key_bytes(uid, "Get after %s cleared" % kind), key)
        self.assertNoSessionLeak("after the session check faults", sessions)

    def test_every_call_fails(self):
        """`* CKR_DEVICE_ERROR`: every HSM call fails. Requests that need no HSM still work."""
        uid, key = self.created_key("Create before the fault")
        sessions = self.open_sessions()
        before = self.injected()
        self.set_faults("* CKR_DEVICE_ERROR")
        self.assertHsmFailure(self.create("Create"), "Create under * CKR_DEVICE_ERROR")
        self.assertHsmFailure(self.get(uid, "Get"), "Get under * CKR_DEVICE_ERROR")
        self.assertFaulted(before, "* CKR_DEVICE_ERROR")
        self.assertSuccess(self.call(OTHER, K.discover_versions(), "Discover Versions"),
                           "Discover Versions while the HSM fails")
        self.assertAlive("* CKR_DEVICE_ERROR")
        self.clear_faults()
        self.created_key("Create after the HSM came back")
        self.assertEqual(self.key_bytes(uid, "Get after the HSM came back"), key)
        self.assertNoSessionLeak("after * CKR_DEVICE_ERROR", sessions)

    def test_device_removed_and_back(self):
        """The token goes away (every real session closed, then every call says so) and
        comes back: sessions reopened and logged in again without a restart."""
        uid, key = self.created_key("Create before the removal")
        sessions = self.open_sessions()
        for kind in ("CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT"):
            with self.subTest(kind=kind):
                self.set_faults("sessions-lost", "* %s" % kind)
                self.assertHsmFailure(self.create("Create"), "Create while removed (%s)" % kind)
                self.assertHsmFailure(self.get(uid, "Get"), "Get while removed (%s)" % kind)
                self.assertAlive(kind)
                self.clear_faults()
                self.created_key("Create after the token came back (%s)" % kind)
                self.assertEqual(self.key_bytes(uid, "Get after the token came back"), key)
        self.assertNoSessionLeak("after the removals", sessions)

    def test_sessions_lost_mid_operation(self):
        """Every real session (and so the login) lost inside a Create's or a Get's HSM call:
        that request fails, the next ones reopen sessions, log in and succeed."""
        uid, key = self.created_key("Create before the reset")
        sessions = self.open_sessions()
        for call, op in (("C_WrapKey", "Create"), ("C_GenerateKey", "Create"),
                         ("C_UnwrapKey", "Get"), ("C_GetAttributeValue", "Get")):
            what = "%s with sessions lost in %s" % (op, call)
            with self.subTest(call=call):
                before = self.injected()
                self.set_faults("%s sessions-lost" % call)
                item = self.create(what) if op == "Create" else self.get(uid, what)
                self.assertHsmFailure(item, what)
                self.assertFaulted(before, what)
                self.assertAlive(what)
                self.clear_faults()
                self.created_key(what + ", then a Create")
                self.assertEqual(self.key_bytes(uid, what + ", then a Get"), key)
        self.assertNoSessionLeak("after the resets", sessions)

    def test_sessions_lost_between_requests(self):
        """A device reset while the gateway is idle is invisible to the next client: the pool
        finds its sessions dead at checkout, reopens them and logs in again."""
        uid, key = self.created_key("Create before the reset")
        sessions = self.open_sessions()
        before = self.injected()
        self.set_faults("sessions-lost")
        self.assertEqual(self.key_bytes(uid, "Get right after the reset"), key)
        self.assertFaulted(before, "sessions-lost")
        self.created_key("Create after the reset")
        self.assertNoSessionLeak("after the reset", sessions)

    def test_keys_survive_faults(self):
        """Keys made before a run of faults of every kind Get the same bytes after it."""
        keys = dict(self.created_key("Create %d before the faults" % i) for i in range(3))
        for rules in (["C_WrapKey CKR_DEVICE_REMOVED"], ["C_UnwrapKey CKR_USER_NOT_LOGGED_IN"],
                      ["C_GenerateKey sessions-lost"], ["sessions-lost", "* CKR_TOKEN_NOT_PRESENT"],
                      ["C_GetAttributeValue CKR_SESSION_HANDLE_INVALID"]):
            self.set_faults(*rules)
            for uid in keys:
                item = self.get(uid, "Get under %s" % rules)
                if item.ok:  # a fault on Create calls only: the Get must be right, then
                    self.assertEqual(K.symmetric_key_of(item.payload)[0], keys[uid],
                                     "Get under %s answered other bytes" % rules)
                else:
                    self.assertHsmFailure(item, "Get under %s" % rules)
            item = self.create("Create under %s" % rules)
            if not item.ok:
                self.assertHsmFailure(item, "Create under %s" % rules)
            self.clear_faults()
        for uid, key in keys.items():
            self.assertEqual(self.key_bytes(uid, "Get %s after the faults" % uid), key)
        self.assertAlive("after the faults")

    def test_failed_lookup_does_not_poison_sessions(self):
        """A failure that leaves an operation active on a session (C_FindObjectsFinal failing
        in the master key lookup after a reset) costs one request, not every later one."""
        uid, key = self.created_key("Create before the fault")
        sessions = self.open_sessions()
        before = self.injected()
        self.set_faults("sessions-lost", "C_FindObjectsFinal CKR_DEVICE_ERROR 1")
        self.assertHsmFailure(self.get(uid, "Get"), "Get with the MWK lookup failing")
        self.assertFaulted(before, "C_FindObjectsFinal CKR_DEVICE_ERROR")
        # The fault is spent: without clearing it, the next requests must work.
        self.assertEqual(self.key_bytes(uid, "Get after the failed lookup"), key)
        self.created_key("Create after the failed lookup")
        self.assertNoSessionLeak("after the failed lookup", sessions)

    def test_hung_lookup_stalls_only_its_request(self):
        """A master key lookup hung in the HSM (after a reset) holds up its own request only:
        another client's Create looks the key up itself and completes."""
        uid, key = self.created_key("Create before the hang")
        limit = REQUEST_TIMEOUT_MS / 1000.0 + HANG_SLACK
        outcome = {}

        def hung_get():
            t0 = time.monotonic()
            try:
                outcome["item"] = self.get(uid, "Get with a hung lookup")
            except BaseException as e:  # reported below, in the test's own thread
                outcome["error"] = "%s: %s" % (type(e).__name__, e)
            outcome["elapsed"] = time.monotonic() - t0

        before = self.injected()
        # The reset makes the next request look the MWK up again; its C_FindObjects hangs,
        # later ones do not (the count).
        self.set_faults("sessions-lost", "C_FindObjects hang 1")
        worker = threading.Thread(target=hung_get, name="hung-lookup", daemon=True)
        worker.start()
        try:
            deadline = time.monotonic() + 5.0
            while self.injected() < before + 2 and time.monotonic() < deadline and worker.is_alive():
                time.sleep(0.02)
            self.assertGreaterEqual(self.injected(), before + 2, "the Get never reached C_FindObjects")
            t0 = time.monotonic()
            self.assertSuccess(self.create("Create beside a hung lookup"), "Create beside a hung lookup")
            self.assertLess(time.monotonic() - t0, limit, "the Create waited for the hung lookup")
            worker.join(limit + 2.0)
            self.assertFalse(worker.is_alive(), "the Get with a hung lookup got no answer")
            self.assertNotIn("error", outcome, "hung lookup: %s" % outcome.get("error"))
            self.assertHsmFailure(outcome["item"], "Get with a hung lookup")
            # (its TLS handshake is inside this figure, hence the extra second)
            self.assertLessEqual(outcome["elapsed"], limit + 1.0)
        finally:
            self.clear_faults()
            worker.join(5.0)
        self.assertEqual(self.key_bytes(uid, "Get after the hang cleared"), key)

    def test_hung_call_times_out(self):
        """`C_UnwrapKey hang`: the Get is answered with a failure within the request timeout
        (+2 s) while other clients' requests still complete; after the hang clears, Gets work."""
        uid, key = self.created_key("Create before the hang")
        limit = REQUEST_TIMEOUT_MS / 1000.0 + HANG_SLACK
        outcome = {}

        def hung_get():
            try:
                with self.gw.connect(PLAINTEXT, timeout=limit + 1.0) as c:
                    t0 = time.monotonic()
                    try:
                        outcome["item"] = c.request(K.get(uid, K.batch_id())).item
                    finally:
                        outcome["elapsed"] = time.monotonic() - t0
            except Exception as e:  # reported below, in the test's own thread
                outcome["error"] = "%s: %s" % (type(e).__name__, e)

        before = self.injected()
        self.set_faults("C_UnwrapKey hang")
        worker = threading.Thread(target=hung_get, name="hung-get", daemon=True)
        worker.start()
        try:
            deadline = time.monotonic() + 5.0
            while self.injected() == before and time.monotonic() < deadline and worker.is_alive():
                time.sleep(0.02)
            self.assertGreater(self.injected(), before, "the Get never reached C_UnwrapKey")

            # A policy reload (SIGHUP) while the call hangs must not stall the
            # event loop: a request holds its own reference to the policy.
            os.kill(self.gw.pid, signal.SIGHUP)
            # Meanwhile, other clients: requests without the HSM, and a Create with it.
            t0 = time.monotonic()
            with self.gw.connect(OTHER) as c:
                self.assertSuccess(c.request(K.discover_versions()).item, "Discover Versions beside a hang")
                self.assertSuccess(c.request(K.query_server_information()).item, "Query beside a hang")
            # (a Create only: a Get would hang in C_UnwrapKey as well)
            self.assertSuccess(self.create("Create beside a hang"), "Create beside a hang")
            self.assertLess(time.monotonic() - t0, limit, "requests beside the hang were slow")

            worker.join(limit + 2.0)
            self.assertFalse(worker.is_alive(), "the hung Get's client did not give up")
            self.assertNotIn("error", outcome,
                             "hung Get: no KMIP answer within %.1f s (%s)"
                             % (limit, outcome.get("error")))
            self.assertLessEqual(outcome["elapsed"], limit)
            self.assertHsmFailure(outcome["item"], "hung Get")
            self.assertAlive("after the hang")
        finally:
            self.clear_faults()
            worker.join(5.0)
        self.assertEqual(self.key_bytes(uid, "Get after the hang cleared"), key)
        self.assertNoSessionLeak("after the hang")


if __name__ == "__main__":
    unittest.main()
