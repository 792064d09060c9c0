"""What the gateway must refuse, and how (KMIP 1.4 section 11, DESIGN.md "Request flow")."""

import socket
import ssl
import struct
import unittest
import uuid

import kg_kmip as K
from kg_harness import ConnectionClosed, GatewayTestCase, HarnessError
from kg_ttlv import (
    INTEGER, Enum, Int, S, T, encode, header,
)

SIXTEEN_MIB = 16 * 1024 * 1024


def dv_bytes():
    return encode(K.request(K.discover_versions(K.batch_id())))


def set_outer_length(data):
    return data[:4] + struct.pack(">I", len(data) - 8) + data[8:]


def offset_of(data, tag, typ, length):
    off = data.find(header(tag, typ, length))
    assert off >= 0, "item not found in the message"
    return off


class Malformed(GatewayTestCase):
    gw_name = "negative-malformed"

    def assertInvalidMessageThenClose(self, data, what):
        with self.gw.connect("vsphere") as c:
            c.send(data)
            try:
                raw = c.recv_message()
            except ConnectionClosed as e:
                self.fail("%s: connection closed without a KMIP error response (%s)" % (what, e))
            resp = K.Response(raw)
            self.assertEqual(resp.version[0], 1, "%s: answered in %r" % (what, resp.version))
            self.assertEqual(len(resp.items), 1, "%s: %s" % (what, resp.describe()))
            self.assertFailure(resp.items[0], "INVALID_MESSAGE", what)
            self.assertTrue(c.wait_closed(), "%s: connection left open after Invalid Message" % what)
        self.assertServing()

    def assertServing(self):
        resp = self.gw.request("vsphere", K.request(K.discover_versions()))
        self.assertSuccess(resp.item, "Discover Versions after the bad message")

    def test_child_overruns_its_parent(self):
        data = bytearray(dv_bytes())
        off = offset_of(data, T.REQUEST_HEADER, 0x01, 56)
        data[off + 4:off + 8] = struct.pack(">I", 56 + 64)
        self.assertInvalidMessageThenClose(bytes(data), "Request Header longer than the message")

    def test_truncated_structure(self):
        data = dv_bytes()
        cut = set_outer_length(data[:-16])  # framing consistent, Batch Item cut short
        self.assertInvalidMessageThenClose(cut, "truncated Batch Item")

    def test_unknown_item_type(self):
        data = bytearray(dv_bytes())
        off = offset_of(data, T.BATCH_COUNT, INTEGER, 4)
        data[off + 3] = 0x0E
        self.assertInvalidMessageThenClose(bytes(data), "item type 0x0E")

    def test_wrong_length_for_fixed_size_type(self):
        data = bytearray(dv_bytes())
        off = offset_of(data, T.BATCH_COUNT, INTEGER, 4)
        data[off + 4:off + 8] = struct.pack(">I", 8)  # an Integer is 4 bytes
        self.assertInvalidMessageThenClose(bytes(data), "Integer of length 8")

    def test_nonzero_padding(self):
        data = bytearray(dv_bytes())
        off = offset_of(data, T.BATCH_COUNT, INTEGER, 4)
        data[off + 12:off + 16] = b"\xff\xff\xff\xff"
        self.assertInvalidMessageThenClose(bytes(data), "non-zero padding")

    def test_not_a_request_message(self):
        data = bytearray(dv_bytes())
        data[0:3] = struct.pack(">I", T.RESPONSE_MESSAGE)[1:]
        self.assertInvalidMessageThenClose(bytes(data), "Response Message sent as a request")

    def test_eof_inside_a_message(self):
        data = dv_bytes()
        with self.gw.connect("vsphere") as c:
            c.send(data[:8 + 24])  # header promises more; then the client goes away
        self.assertServing()

    def test_declared_length_over_cap_closes_without_response(self):
        with self.gw.connect("vsphere") as healthy:
            self.assertSuccess(healthy.request(K.discover_versions()).item)
            for declared in (SIXTEEN_MIB, 65536 + 1024):
                with self.gw.connect("vsphere") as c:
                    try:
                        c.send(header(T.REQUEST_MESSAGE, 0x01, declared))
                        c.send(b"\0" * 1024)
                    except (OSError, ssl.SSLError):
                        pass  # already closed by the server: fine
                    try:
                        closed = c.wait_closed()
                    except HarnessError as e:
                        self.fail("declared length %d: server answered instead of closing (%s)"
                                  % (declared, e))
                    self.assertTrue(closed, "declared length %d: connection not closed" % declared)
            # Other connections are unaffected.
            self.assertSuccess(healthy.request(K.discover_versions()).item)
        self.assertServing()


class Refusals(GatewayTestCase):
    gw_name = "negative-refusals"

    def test_unknown_operation(self):
        bid = K.batch_id()
        with self.gw.connect("admin") as c:
            resp = c.request(K.BatchItem(0x7F, [], bid))
            it = resp.item
            self.assertFailure(it, "OPERATION_NOT_SUPPORTED", "operation 0x7F")
            self.assertEqual(it.bid, bid, "batch item ID not echoed")
            if it.operation is not None:
                self.assertEqual(it.operation, 0x7F)
            # A well-formed message: the connection stays usable.
            self.assertSuccess(c.request(K.discover_versions()).item)

    def assertHandshakeRefused(self, identity, max_tls):
        what = "%s over %s" % (identity or "no certificate", max_tls.name)
        try:
            with self.gw.connect(identity, max_tls=max_tls) as c:
                c.send(dv_bytes())
                data = c.recv_message()
        except socket.timeout:
            self.fail("%s: the server neither answered nor refused" % what)
        except (ssl.SSLError, ConnectionClosed, OSError):
            return
        self.fail("%s: the server answered %r" % (what, K.Response(data).describe()))

    def test_certificate_from_another_ca_is_refused(self):
        for tls in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            self.assertHandshakeRefused("rogue", tls)
        self.assertSuccess(self.gw.request("vsphere", K.request(K.discover_versions())).item)

    def test_no_client_certificate_is_refused(self):
        for tls in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            self.assertHandshakeRefused(None, tls)
        self.assertSuccess(self.gw.request("vsphere", K.request(K.discover_versions())).item)

    def test_unlisted_ou_is_denied(self):
        resp = self.gw.request("unlisted", K.request(K.create_aes256(K.batch_id())))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "Create as OU=unlisted")
        uid = self.create_key("admin")
        resp = self.gw.request("unlisted", K.request(K.get(uid, K.batch_id())))
        self.assertEqual(resp.item.status, K.RESULT_STATUS["OPERATION_FAILED"])
        self.assertIsNone(K.symmetric_key_of(resp.item.payload))

    def test_get_unknown_uid(self):
        for identity in ("vsphere", "admin"):
            resp = self.gw.request(identity, K.request(K.get(str(uuid.uuid4()), K.batch_id())))
            self.assertFailure(resp.item, "ITEM_NOT_FOUND", "Get of an unknown UID as %s" % identity)

    def test_get_destroyed_key(self):
        uid = self.create_key("admin")
        self.get_key("admin", uid)
        resp = self.gw.request("admin", K.request(K.destroy(uid, K.batch_id())))
        self.assertSuccess(resp.item, "Destroy of a Pre-Active key")
        resp = self.gw.request("admin", K.request(K.get(uid, K.batch_id())))
        self.assertFailure(resp.item, "ITEM_NOT_FOUND", "Get of a destroyed key")

    def test_backup_gets_no_plaintext(self):
        uid = self.create_key("backup")
        resp = self.gw.request("backup", K.request(K.get(uid, K.batch_id())))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "Get without wrapping as backup")
        self.assertFalse(any(n.tag == T.KEY_MATERIAL for n in resp.msg.walk()),
                         "key material in a refused Get")
        # Its metadata is still its own to read.
        resp = self.gw.request("backup", K.request(K.get_attributes(uid, "State", K.batch_id())))
        self.assertSuccess(resp.item, "Get Attributes as backup")

    def test_vsphere_cannot_see_admins_key(self):
        uid = self.create_key("admin")
        for msg in (K.get(uid, K.batch_id()), K.get_attributes(uid, "State", K.batch_id())):
            resp = self.gw.request("vsphere", K.request(msg))
            self.assertFailure(resp.item, "ITEM_NOT_FOUND", "vsphere on admin's key")
            self.assertIsNone(K.symmetric_key_of(resp.item.payload))

    def test_backup_cannot_see_vsphere_key(self):
        uid = self.create_key("vsphere")
        resp = self.gw.request("backup", K.request(K.get_attributes(uid, "State", K.batch_id())))
        self.assertFailure(resp.item, "ITEM_NOT_FOUND", "backup on vsphere's key")

    def test_admin_sees_every_key(self):
        uid = self.create_key("vsphere")
        self.assertEqual(len(self.get_key("admin", uid)), 32)

    def test_protocol_3_0_is_refused_cleanly(self):
        # A Create in a major version kmipgw does not speak (it speaks 1.0 to 1.4, 2.0
        # and 2.1): Invalid Message (KMIP 1.4 Table 327), in a 1.x header, and nothing
        # done.
        bid = K.batch_id()
        item = K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("ATTRIBUTES",
              Enum("CRYPTOGRAPHIC_ALGORITHM", "AES"),
              Int("CRYPTOGRAPHIC_LENGTH", 256),
              Int("CRYPTOGRAPHIC_USAGE_MASK", 12)),
        ], bid)
        resp = self.gw.request("admin", K.request(item, version=(3, 0)))
        self.assertEqual(resp.version[0], 1, "answered in %r" % (resp.version,))
        self.assertEqual(len(resp.items), 1, resp.describe())
        self.assertFailure(resp.items[0], "INVALID_MESSAGE", "protocol 3.0 request")
        self.assertIsNone(resp.items[0].uid(), "a 3.0 request created something")

    def test_answers_in_the_request_version(self):
        for version in ((1, 1), (1, 2)):
            resp = self.gw.request("admin", K.request(K.discover_versions(K.batch_id()),
                                                      version=version))
            self.assertSuccess(resp.item)
            self.assertEqual(resp.version, version)

    def test_batch_of_mixed_results(self):
        # One bad item does not hide the others' results; each echoes its own ID.
        good = self.create_key("admin")
        items = [K.get_attributes(good, "State", K.batch_id()),
                 K.get_attributes(str(uuid.uuid4()), "State", K.batch_id())]
        resp = self.gw.request("admin", K.request(items, extra_header=[
            Enum("BATCH_ERROR_CONTINUATION_OPTION", 0x01)]))  # Continue
        self.assertEqual([it.bid for it in resp.items], [i.bid for i in items])
        self.assertSuccess(resp.items[0])
        self.assertFailure(resp.items[1], "ITEM_NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
