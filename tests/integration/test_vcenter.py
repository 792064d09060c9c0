"""vCenter's task sequence (VSPHERE.md), as raw TTLV with protocol 1.1 headers.

Two halves:
 - VCenterTasks builds the requests the way vCenter does and asserts on every
   field that vCenter relies on;
 - VCenterRecording sends every request of kmip-vectors/vcenter-8.0.1 byte for
   byte (the server's UID substituted for the recorded one) and compares each
   answer's shape with the recorded answer.
Everything runs as identity `vsphere`, each task on its own connection.
"""

import glob
import os
import threading
import unittest

import kg_kmip as K
from kg_harness import GatewayTestCase, VCENTER_VECTORS
from kg_ttlv import (
    TEXT_STRING, ENUMERATION, STATE, OBJECT_TYPE, KEY_FORMAT_TYPE,
    CRYPTOGRAPHIC_ALGORITHM, OPERATION, check_dump_lengths, encode, parse_dump, replace_text,
)

X_NAMES = ["x-Product_Version", "x-Vendor", "x-Product", "x-Identifier", "x-Component", "x-Name"]
FIRST_BATCH = [("x-Product_Version", "7.0.3 build-19480866"), ("x-Vendor", "VMware, Inc."),
               ("x-Product", "VMware vSphere")]
FINAL_BATCH = [("x-Identifier", "421ff8c9-d527-341c-5437-1d2d25f34490"),
               ("x-Component", "Virtual Machine"), ("x-Name", "vm_test")]
CREDENTIAL = ("vSphere", "password")  # what the recorded vCenter sends


class VCenterTasks(GatewayTestCase):
    gw_name = "vcenter"

    # One vCenter task: its own connection, Discover Versions, then the request.
    def task(self, *items, auth=None):
        msgs = [K.request(i, auth=auth) for i in items]
        return self.gw.task("vsphere", *msgs)

    def one(self, item, auth=None):
        (resp,) = self.task(item, auth=auth)
        self.assertEqual(resp.version, (1, 1), "not answered in 1.1: %s" % resp.describe())
        self.assertEqual(resp.batch_count, 1)
        it = resp.item
        self.assertEqual(it.operation, item.operation, "Operation not echoed: %s" % it.describe())
        self.assertEqual(it.bid, item.bid, "Unique Batch Item ID not echoed")
        return it

    def state_of(self, uid, auth=None):
        it = self.one(K.get_attributes(uid, "State", K.batch_id()), auth=auth)
        self.assertSuccess(it, "Get Attributes(State)")
        self.assertEqual(it.uid(), uid)
        attrs = it.attributes()
        self.assertEqual([n for n, _ in attrs], ["State"], "expected exactly the State attribute")
        value = attrs[0][1]
        self.assertEqual(value.type, ENUMERATION)
        return value.value

    def x_attribute(self, uid, name):
        """Values of custom attribute `name` (Get Attributes of exactly that name)."""
        it = self.one(K.get_attributes(uid, name, K.batch_id()))
        self.assertSuccess(it, "Get Attributes(%s)" % name)
        self.assertEqual(it.uid(), uid, "Get Attributes(%s) must carry the UID" % name)
        values = []
        for n, v in it.attributes():
            self.assertEqual(n, name, "asked for %s, got %s" % (name, n))
            self.assertIsNotNone(v, "Attribute %s without Attribute Value" % n)
            self.assertEqual(v.type, TEXT_STRING, "%s is not a Text String" % n)
            values.append(v.value)
        return values

    def add_batch(self, uid, pairs):
        """Batched Add Attribute in ONE message (Batch Count = len(pairs)), vCenter style."""
        items = [K.add_attribute(uid, n, v, K.batch_id()) for n, v in pairs]
        with self.gw.connect("vsphere") as c:
            self.assertSuccess(c.request(K.discover_versions()).item, "Discover Versions")
            msg = K.request(items)
            self.assertEqual(msg.path("REQUEST_HEADER", "BATCH_COUNT").value, len(pairs))
            resp = c.request(msg)
        self.assertEqual(resp.version, (1, 1))
        self.assertEqual(resp.batch_count, len(pairs))
        self.assertEqual(len(resp.items), len(pairs), "one response item per request item")
        for req, it, (name, value) in zip(items, resp.items, pairs):
            self.assertEqual(it.operation, OPERATION["ADD_ATTRIBUTE"])
            self.assertEqual(it.bid, req.bid, "batch item IDs echoed in order")
            self.assertSuccess(it, "Add Attribute %s" % name)
            self.assertEqual(it.uid(), uid)
            self.assertEqual([(n, v.value if v is not None else None) for n, v in it.attributes()],
                             [(name, value)], "Add Attribute must answer with the attribute")
        return resp

    # --- the tests ---------------------------------------------------------------------
    def test_discover_versions_empty_payload(self):
        for bid in (None, K.vcenter_batch_id(1)):
            resp = self.gw.request("vsphere", K.request(K.discover_versions(bid)))
            self.assertEqual(resp.version, (1, 1))
            it = resp.item
            self.assertSuccess(it, "Discover Versions")
            self.assertEqual(it.operation, OPERATION["DISCOVER_VERSIONS"])
            self.assertEqual(it.bid, bid)
            versions = [(v.find("PROTOCOL_VERSION_MAJOR").value, v.find("PROTOCOL_VERSION_MINOR").value)
                        for v in it.payload.find_all("PROTOCOL_VERSION")]
            self.assertIn((1, 1), versions)

    def test_health_check_two_discover_versions_on_one_connection(self):
        with self.gw.connect("vsphere") as c:
            r1 = c.request(K.discover_versions())
            bid = K.vcenter_batch_id(1)
            r2 = c.request(K.discover_versions(bid))
        self.assertSuccess(r1.item)
        self.assertSuccess(r2.item)
        self.assertEqual(r2.item.bid, bid)

    def test_query_server_information(self):
        it = self.one(K.query_server_information(K.batch_id()))
        self.assertSuccess(it, "Query(Server Information)")
        vendor = it.payload.find("VENDOR_IDENTIFICATION")
        self.assertIsNotNone(vendor, "Query answer lacks Vendor Identification:\n%r" % it.payload)
        self.assertEqual(vendor.type, TEXT_STRING)
        self.assertTrue(vendor.value.strip())

    def test_key_lifecycle_as_vcenter_does_it(self):
        # Create: Symmetric Key, AES, mask 12, 256; no name, no dates.
        it = self.one(K.create_aes256(K.batch_id()))
        self.assertSuccess(it, "Create")
        self.assertEqual(it.payload.find("OBJECT_TYPE").value, OBJECT_TYPE["SYMMETRIC_KEY"])
        uid = it.uid()
        self.assertTrue(uid)

        # Get: Raw, 32 bytes, AES, 256.
        it = self.one(K.get(uid, K.batch_id()))
        self.assertSuccess(it, "Get")
        self.assertEqual(it.uid(), uid)
        self.assertEqual(it.payload.find("OBJECT_TYPE").value, OBJECT_TYPE["SYMMETRIC_KEY"])
        material, fmt, alg, length = K.symmetric_key_of(it.payload)
        self.assertEqual(fmt, KEY_FORMAT_TYPE["RAW"])
        self.assertEqual(len(material), 32)
        self.assertEqual(alg, CRYPTOGRAPHIC_ALGORITHM["AES"])
        self.assertEqual(length, 256)
        self.assertNotEqual(material, bytes(32))

        # Every x- attribute of a fresh key: Success, the UID, no attribute.
        for name in X_NAMES:
            self.assertEqual(self.x_attribute(uid, name), [], "%s set on a new key" % name)

        self.assertEqual(self.state_of(uid), STATE["PRE_ACTIVE"])
        it = self.one(K.activate(uid, K.batch_id()))
        self.assertSuccess(it, "Activate")
        self.assertEqual(it.uid(), uid)
        self.assertEqual(self.state_of(uid), STATE["ACTIVE"])

        # Tags: three adds in one message; re-adding must not fail the task.
        self.add_batch(uid, FIRST_BATCH)
        for name, value in FIRST_BATCH:
            self.assertIn(value, self.x_attribute(uid, name))
        self.add_batch(uid, FIRST_BATCH)
        for name, value in FIRST_BATCH:
            self.assertIn(value, self.x_attribute(uid, name))
        # Re-adding with a new value (a vCenter upgrade) must not fail either.
        self.add_batch(uid, [("x-Product_Version", "8.0.1 build-21560480")])

        for name, _ in FINAL_BATCH:
            self.assertEqual(self.x_attribute(uid, name), [])
        self.add_batch(uid, FINAL_BATCH)
        for name, value in FINAL_BATCH:
            self.assertIn(value, self.x_attribute(uid, name))

        # The key is still the same key.
        it = self.one(K.get(uid, K.batch_id()))
        self.assertSuccess(it)
        self.assertEqual(K.symmetric_key_of(it.payload)[0], material)
        self.assertEqual(self.state_of(uid), STATE["ACTIVE"])

    def test_credential_in_header_is_accepted(self):
        # With a password configured, vCenter adds Username/Password to Create, Get,
        # Activate and Get Attributes(State) (not to Discover Versions or x- requests).
        auth = K.credential(*CREDENTIAL)
        it = self.one(K.create_aes256(K.batch_id()), auth=auth)
        self.assertSuccess(it, "Create with credential")
        uid = it.uid()
        it = self.one(K.get(uid, K.batch_id()), auth=auth)
        self.assertSuccess(it, "Get with credential")
        self.assertEqual(len(K.symmetric_key_of(it.payload)[0]), 32)
        self.assertEqual(self.state_of(uid, auth=auth), STATE["PRE_ACTIVE"])
        self.assertSuccess(self.one(K.activate(uid, K.batch_id()), auth=auth), "Activate")
        self.assertEqual(self.state_of(uid, auth=auth), STATE["ACTIVE"])

    def test_concurrent_tasks(self):
        # A VM key and a host key created at the same time, on separate connections.
        results, errors = {}, []
        barrier = threading.Barrier(4)

        def run(n):
            try:
                barrier.wait(10)
                (resp,) = self.task(K.create_aes256(K.vcenter_batch_id(1)))
                results[n] = resp.item
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 4)
        for it in results.values():
            self.assertSuccess(it, "concurrent Create")
        self.assertEqual(len({it.uid() for it in results.values()}), 4, "UIDs must differ")


RECORDED_UID = "01000000-7356-8565-621e-08ddba133224"


def _recorded_pairs():
    """(name, request Item, expected response Item) in the order vCenter sent them:
    Discover Versions first, then by the recorded response Time Stamp."""
    pairs = []
    for req_path in sorted(glob.glob(os.path.join(VCENTER_VECTORS, "*_request.txt"))):
        name = os.path.basename(req_path)[:-len("_request.txt")]
        with open(req_path) as f:
            req = parse_dump(f.read())
        with open(req_path[:-len("_request.txt")] + "_response.txt") as f:
            resp = parse_dump(f.read())
        pairs.append((name, req, resp))

    def order(p):
        op = p[1].path("BATCH_ITEM", "OPERATION").value
        ts = p[2].path("RESPONSE_HEADER", "TIME_STAMP").value
        return (op != OPERATION["DISCOVER_VERSIONS"], ts, p[0])

    return sorted(pairs, key=order)


class VCenterRecording(GatewayTestCase):
    gw_name = "vcenter-recording"

    def test_vectors_parse_to_their_recorded_lengths(self):
        pairs = _recorded_pairs()
        self.assertEqual(len(pairs), 14, "expected the 14 recorded exchanges")
        for name, req, resp in pairs:
            self.assertEqual(check_dump_lengths(req), [], name)
            self.assertEqual(check_dump_lengths(resp), [], name)

    def test_replay_every_recorded_request(self):
        uid = None
        seen = []
        for name, req, expected in _recorded_pairs():
            op = req.path("BATCH_ITEM", "OPERATION").value
            if op not in (OPERATION["DISCOVER_VERSIONS"], OPERATION["CREATE"]):
                self.assertIsNotNone(uid, "%s before Create" % name)
                replace_text(req, "UNIQUE_IDENTIFIER", RECORDED_UID, uid)
            data = encode(req)
            with self.gw.connect("vsphere") as c:
                if op != OPERATION["DISCOVER_VERSIONS"]:
                    self.assertSuccess(c.request(K.discover_versions()).item, name)
                resp = K.Response(c.roundtrip(data))
            for it in resp.items:
                self.assertSuccess(it, name)
            if op == OPERATION["CREATE"]:
                uid = resp.item.uid()
                self.assertTrue(uid, "Create answered no UID")
            problems = K.compare_shape(expected, resp.msg, uid=uid)
            self.assertEqual(problems, [], "%s: answer differs from the recording:\n%r"
                             % (name, resp.msg))
            seen.append(name)
        self.assertIn("example_get_attributes_state", seen)
        self.assertIn("example_add_attribute_final_batch", seen)

        # After the recording: every tag vCenter added is there.
        wanted = {"x-Product_Version": "8.0.1 build-21560480", "x-Vendor": "VMware, Inc.",
                  "x-Product": "VMware vSphere",
                  "x-Identifier": "421ff8c9-d527-341c-5437-1d2d25f34490",
                  "x-Component": "Virtual Machine", "x-Name": "vm_test"}
        for name, value in wanted.items():
            resp = self.gw.request("vsphere", K.request(K.get_attributes(uid, name, K.batch_id())))
            self.assertSuccess(resp.item, name)
            got = [v.value for n, v in resp.item.attributes() if n == name]
            self.assertIn(value, got, name)
        resp = self.gw.request("vsphere", K.request(K.get_attributes(uid, "State", K.batch_id())))
        self.assertEqual([(n, v.value) for n, v in resp.item.attributes()],
                         [("State", STATE["ACTIVE"])])


if __name__ == "__main__":
    unittest.main()
