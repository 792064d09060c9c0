"""Asynchronous operations, byte-level (KMIP 1.4 sections 4.27 Cancel, 4.28 Poll, 6.7
Asynchronous Indicator, 6.8 Asynchronous Correlation Value; gateway/kg_async.c and the
deferral in gateway/kg_dispatch.c).

A request with the Asynchronous Indicator set is answered Operation Pending with a
fresh correlation value when its one item is an operation that carries no secret
(Locate, Check, Get Attributes, Get Attribute List, Activate, Revoke, Destroy, Archive,
Recover) and its caller may Poll; the item runs, through the ordinary path, when it is
polled. Everything else is answered at once. Each behaviour is next to the refusal
that proves it is checked: another identity's value, an unknown one, a cancelled one,
an expired one, a full table, a caller without the right to Poll.

The gateway's policy gives `backup` Poll and Cancel too (so that "someone else's value"
is refused by the table, not by the operations list); `vsphere` has neither.
"""

import os
import time
import unittest
import uuid

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import S, Bool, Enum, Int, Text, T, RESULT_STATUS, OPERATION

PENDING = RESULT_STATUS["OPERATION_PENDING"]
CANCELED, UNAVAILABLE = 0x01, 0x05
PER_CONNECTION, IN_ALL, LIFETIME_MS = 3, 5, 3000
ASYNC = [Bool("ASYNCHRONOUS_INDICATOR", True)]


def name_attr(name):
    return K.attr("Name", S("ATTRIBUTE_VALUE", Text("NAME_VALUE", name), Enum("NAME_TYPE", 1)))


def locate_name(name):
    return K.BatchItem("LOCATE", [name_attr(name)], K.batch_id())


def with_uid(op, uid):
    return K.BatchItem(op, [Text("UNIQUE_IDENTIFIER", uid)], K.batch_id())


def poll(value, bid=None):
    return K.BatchItem("POLL", [K.Bytes("ASYNCHRONOUS_CORRELATION_VALUE", value)], bid or K.batch_id())


def cancel(value):
    return K.BatchItem("CANCEL", [K.Bytes("ASYNCHRONOUS_CORRELATION_VALUE", value)], K.batch_id())


def audit_records(gw):
    import json
    with open(gw.path("audit.log"), "rb") as f:
        return [json.loads(line) for line in f if line.endswith(b"\n")]


class Async(GatewayTestCase):
    gw_name = "async"

    @classmethod
    def setUpClass(cls):
        from kg_harness import Gateway
        cls.gw = Gateway(cls.gw_name)
        try:
            path = cls.gw.path("policy.yaml")
            with open(path) as f:
                text = f.read()
            anchor = "      - Locate                # search, limited to this group's own keys\n"
            assert anchor in text, "conf/policy.yaml's backup group changed"
            with open(path, "w") as f:
                f.write(text.replace(anchor, anchor + "      - Poll\n      - Cancel\n"))
            cls.gw.set_config("limits", "async_max_pending", str(IN_ALL))
            cls.gw.set_config("limits", "async_per_connection", str(PER_CONNECTION))
            cls.gw.set_config("limits", "async_lifetime_ms", str(LIFETIME_MS))
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    # --- helpers ------------------------------------------------------------------
    def new_key(self, identity="admin"):
        name = "async-" + uuid.uuid4().hex
        it = self.gw.request(identity, K.request(K.create_aes256(K.batch_id(), extra_attributes=[name_attr(name)]),
                                                 version=(1, 4))).item
        self.assertSuccess(it, "Create")
        return it.uid(), name

    def send(self, conn, items, version=(1, 4), asynchronous=False):
        return conn.request(K.request(items, version=version, extra_header=ASYNC if asynchronous else ()))

    def defer(self, conn, item, version=(1, 4)):
        """Send `item` with the Asynchronous Indicator; assert Operation Pending -> its value."""
        it = self.send(conn, item, version, asynchronous=True).item
        self.assertEqual(it.status, PENDING, "expected Operation Pending, got %s" % it.describe())
        self.assertEqual(it.operation, item.operation)
        self.assertEqual(it.bid, item.bid, "the pending answer echoes the Unique Batch Item ID")
        self.assertIsNone(it.payload, "a pending answer has no payload")
        acv = it.node.find("ASYNCHRONOUS_CORRELATION_VALUE")
        self.assertIsNotNone(acv, "Operation Pending without an Asynchronous Correlation Value")
        self.assertGreaterEqual(len(acv.value), 16)
        return acv.value

    def assertCancel(self, item, value, result):
        self.assertSuccess(item, "Cancel")
        self.assertEqual(item.payload.find("ASYNCHRONOUS_CORRELATION_VALUE").value, value)
        self.assertEqual(item.payload.find("CANCELLATION_RESULT").value, result)

    def until_deferred(self, conn, item, seconds=5.0):
        """The server drops a closed connection's entries when it sees the close: retry."""
        deadline = time.monotonic() + seconds
        while True:
            it = self.send(conn, item, asynchronous=True).item
            if it.status == PENDING or time.monotonic() > deadline:
                return it
            time.sleep(0.1)

    # --- pending, then Poll -----------------------------------------------------------
    def test_locate_pending_then_poll_answers_it(self):
        uid, name = self.new_key()
        with self.gw.connect("admin") as c:
            value = self.defer(c, locate_name(name))
            bid = K.batch_id()
            it = self.send(c, poll(value, bid)).item
            self.assertSuccess(it, "Poll")
            self.assertEqual(it.operation, OPERATION["LOCATE"], "Poll answers as the original operation")
            self.assertEqual(it.bid, bid, "under the Poll's Unique Batch Item ID")
            self.assertEqual([u.value for u in it.payload.find_all("UNIQUE_IDENTIFIER")], [uid])
            # Answered once: the value is gone.
            self.assertFailure(self.send(c, poll(value)).item, "ITEM_NOT_FOUND", "second Poll")

    def test_deferred_archive_runs_when_polled(self):
        uid, _ = self.new_key()
        with self.gw.connect("admin") as c:
            value = self.defer(c, with_uid("ARCHIVE", uid))
            # Not run yet: the key is still on line.
            self.assertSuccess(self.send(c, K.get(uid, K.batch_id())).item, "Get before the Poll")
            it = self.send(c, poll(value)).item
            self.assertSuccess(it, "Poll of Archive")
            self.assertEqual(it.operation, OPERATION["ARCHIVE"])
            self.assertEqual(it.uid(), uid)
            self.assertFailure(self.send(c, K.get(uid, K.batch_id())).item, "OBJECT_ARCHIVED", "Get after")
            value = self.defer(c, with_uid("RECOVER", uid))
            self.assertSuccess(self.send(c, poll(value)).item, "Poll of Recover")
            self.assertSuccess(self.send(c, K.get(uid, K.batch_id())).item, "Get after Recover")

    def test_poll_answers_the_deferred_failure(self):
        with self.gw.connect("admin") as c:
            value = self.defer(c, with_uid("ACTIVATE", "no-such-uid"))
            it = self.send(c, poll(value)).item
            self.assertFailure(it, "ITEM_NOT_FOUND", "Poll of an Activate of nothing")
            self.assertEqual(it.operation, OPERATION["ACTIVATE"])

    def test_deferred_operation_is_decided_by_policy_when_polled(self):
        uid, _ = self.new_key("admin")
        own = self.create_key("backup")
        with self.gw.connect("backup") as c:
            # backup may not Destroy: deferred (it may Poll), refused when it runs.
            value = self.defer(c, with_uid("DESTROY", own))
            self.assertFailure(self.send(c, poll(value)).item, "PERMISSION_DENIED", "Destroy by backup")
            # admin's key is outside backup's scope: as if absent.
            value = self.defer(c, with_uid("GET_ATTRIBUTES", uid))
            self.assertFailure(self.send(c, poll(value)).item, "ITEM_NOT_FOUND", "out of scope")
        self.assertSuccess(self.gw.request("admin", K.request(K.get(uid, K.batch_id()), version=(1, 4))).item,
                           "the key is still there")

    def test_audit_records_the_deferral_the_poll_and_the_operation(self):
        uid, name = self.new_key()
        with self.gw.connect("admin") as c:
            value = self.defer(c, locate_name(name))
            self.assertSuccess(self.send(c, poll(value)).item)
            value = self.defer(c, with_uid("CHECK", uid))
            self.assertCancel(self.send(c, cancel(value)).item, value, CANCELED)
        recs = audit_records(self.gw)[-5:]
        self.assertEqual([(r["operation"], r["decision"], r["result"]) for r in recs[:3]],
                         [("Locate", "deferred", "pending"), ("Poll", "allow", "success"),
                          ("Locate", "allow", "success")], recs)
        self.assertEqual((recs[3]["operation"], recs[3]["result"], recs[3]["uid"]), ("Check", "pending", uid))
        self.assertEqual((recs[4]["operation"], recs[4]["result"]), ("Cancel", "success"))
        self.assertNotIn(value.hex(), open(self.gw.path("audit.log")).read(), "values are not logged")

    # --- Cancel -----------------------------------------------------------------------
    def test_cancel_then_poll(self):
        uid, _ = self.new_key()
        with self.gw.connect("admin") as c:
            value = self.defer(c, with_uid("DESTROY", uid))
            self.assertCancel(self.send(c, cancel(value)).item, value, CANCELED)
            self.assertFailure(self.send(c, poll(value)).item, "ITEM_NOT_FOUND", "Poll after Cancel")
            self.assertCancel(self.send(c, cancel(value)).item, value, UNAVAILABLE)
            self.assertSuccess(self.send(c, K.get(uid, K.batch_id())).item, "the Destroy never ran")

    # --- who may Poll -----------------------------------------------------------------
    def test_another_identity_cannot_poll_or_cancel(self):
        _, name = self.new_key()
        with self.gw.connect("admin") as owner, self.gw.connect("backup") as other:
            value = self.defer(owner, locate_name(name))
            self.assertFailure(self.send(other, poll(value)).item, "ITEM_NOT_FOUND", "backup polls admin's")
            self.assertCancel(self.send(other, cancel(value)).item, value, UNAVAILABLE)
            # Untouched by both: the owner still gets its answer.
            self.assertSuccess(self.send(owner, poll(value)).item, "the owner's Poll")

    def test_same_identity_other_connection_and_other_version(self):
        _, name = self.new_key()
        with self.gw.connect("admin") as c, self.gw.connect("admin") as d:
            value = self.defer(c, locate_name(name))
            self.assertFailure(self.send(d, poll(value), version=(1, 3)).item, "ITEM_NOT_FOUND",
                               "a value is bound to its protocol version")
            self.assertSuccess(self.send(d, poll(value)).item, "same identity, another connection")

    def test_unknown_values(self):
        with self.gw.connect("admin") as c:
            for value in (os.urandom(16), os.urandom(8), b""):
                self.assertFailure(self.send(c, poll(value)).item, "ITEM_NOT_FOUND", "Poll %r" % value)
                self.assertCancel(self.send(c, cancel(value)).item, value, UNAVAILABLE)
            it = self.send(c, K.BatchItem("POLL", [], K.batch_id())).item
            self.assertFalse(it.ok, "Poll without a value: %s" % it.describe())

    def test_no_right_to_poll_answers_at_once(self):
        uid = self.create_key("vsphere")
        with self.gw.connect("vsphere") as c:
            it = self.send(c, K.get_attributes(uid, "State", K.batch_id()), asynchronous=True).item
            self.assertSuccess(it, "vsphere may not Poll: its Get Attributes is answered at once")
            self.assertFailure(self.send(c, poll(os.urandom(16))).item, "PERMISSION_DENIED", "Poll by vsphere")

    # --- answered at once -------------------------------------------------------------
    def test_secret_bearing_and_batched_requests_answered_at_once(self):
        uid, name = self.new_key()
        with self.gw.connect("admin") as c:
            it = self.send(c, K.register_secret_data(os.urandom(16), bid=K.batch_id()), asynchronous=True).item
            self.assertSuccess(it, "Register with the indicator: at once")
            self.assertTrue(it.uid())
            it = self.send(c, K.get(uid, K.batch_id()), asynchronous=True).item
            self.assertSuccess(it, "Get with the indicator: at once")
            self.assertIsNotNone(K.symmetric_key_of(it.payload))
            resp = self.send(c, [locate_name(name), with_uid("CHECK", uid)], asynchronous=True)
            self.assertEqual([i.status for i in resp.items], [0, 0], "two items: both at once")
            # Without the indicator, a deferrable operation is answered at once too.
            self.assertSuccess(self.send(c, locate_name(name)).item)

    # --- bounds -----------------------------------------------------------------------
    def test_table_full_answers_at_once_and_close_frees(self):
        _, name = self.new_key()
        with self.gw.connect("admin") as b:
            with self.gw.connect("admin") as a:
                self.assertEqual(self.until_deferred(a, locate_name(name)).status, PENDING)
                for _ in range(PER_CONNECTION - 1):
                    self.defer(a, locate_name(name))
                it = self.send(a, locate_name(name), asynchronous=True).item
                self.assertSuccess(it, "the connection's share is full: answered at once")
                for _ in range(IN_ALL - PER_CONNECTION):
                    self.defer(b, locate_name(name))
                it = self.send(b, locate_name(name), asynchronous=True).item
                self.assertSuccess(it, "the table is full: answered at once")
            # a closed: its entries go, and b may defer again.
            self.assertEqual(self.until_deferred(b, locate_name(name)).status, PENDING,
                             "a closed connection's entries were not freed")

    def test_expiry(self):
        _, name = self.new_key()
        with self.gw.connect("admin") as c:
            value = self.defer(c, locate_name(name))
            time.sleep(LIFETIME_MS / 1000.0 + 0.5)
            self.assertFailure(self.send(c, poll(value)).item, "ITEM_NOT_FOUND", "Poll after expiry")

    # --- KMIP 2.x ---------------------------------------------------------------------
    def test_kmip_2(self):
        uid, _ = self.new_key()
        with self.gw.connect("admin") as c:
            for version in ((2, 0), (2, 1)):
                value = self.defer(c, with_uid("CHECK", uid), version=version)
                it = self.send(c, poll(value), version=version).item
                self.assertSuccess(it, "Poll in %d.%d" % version)
                self.assertEqual((it.operation, it.uid()), (OPERATION["CHECK"], uid))
            value = self.defer(c, with_uid("ACTIVATE", uid), version=(2, 1))
            self.assertCancel(self.send(c, cancel(value), version=(2, 1)).item, value, CANCELED)


if __name__ == "__main__":
    unittest.main()
