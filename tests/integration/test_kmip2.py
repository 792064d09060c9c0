"""KMIP 2.0 and 2.1 messages, byte-level: the Attributes structure, Attribute Reference,
New Attribute and vendor (x-) attributes, each rewritten to and from the 1.4 forms the
handlers speak (gateway/kg_kmip2.c), and the refusals that prove each rule is checked:
an unknown tag, a malformed Vendor Identification, Current Attribute, a version we do not
speak, a key that is not quantum safe, and 2.0's own Wrong Key Lifecycle State reason.
Set Attribute (2.x only) with each of its refusals.
Runs as `admin` (operations: all, scope: all).
"""

import json
import unittest

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import S, Int, Enum, Text, Bool, DateTime, T, STRUCTURE, ENUMERATION

V20, V21, V14, V11 = (2, 0), (2, 1), (1, 4), (1, 1)

# KMIP 2.x tags (2.1 section 8.1.1), written out: the tests check the server's table.
ATTRIBUTES = 0x420125
ATTRIBUTE_REFERENCE = 0x42013B
CURRENT_ATTRIBUTE = 0x42013C
NEW_ATTRIBUTE = 0x42013D
QUANTUM_SAFE = 0x420147
CRYPTOGRAPHIC_ALGORITHM = 0x420028
CRYPTOGRAPHIC_LENGTH = 0x42002A
CRYPTOGRAPHIC_USAGE_MASK = 0x42002C
STATE = 0x42008D
CONTACT_INFORMATION = 0x420022
SENSITIVE = 0x420120
ALWAYS_SENSITIVE = 0x420121
INITIAL_DATE = 0x420039
AES = 0x03
SET_ATTRIBUTE = 0x31
# KMIP 2.x Result Reasons (2.1 section 11.42).
MULTI_VALUED_ATTRIBUTE = 0x1E
ATTRIBUTE_READ_ONLY = 0x22
OBJECT_NOT_FOUND = 0x37
WRONG_KEY_LIFECYCLE_STATE = 0x43


def aes(length, *extra):
    return S(ATTRIBUTES, Enum(CRYPTOGRAPHIC_ALGORITHM, AES), Int(CRYPTOGRAPHIC_LENGTH, length),
             Int(CRYPTOGRAPHIC_USAGE_MASK, 12), list(extra))


def vendor_attr(tag, vendor, name, value):
    return S(tag, Text("VENDOR_IDENTIFICATION", vendor), Text("ATTRIBUTE_NAME", name), value)


class Kmip2(GatewayTestCase):
    gw_name = "kmip2"

    def call(self, op, payload, version=V21):
        return self.gw.request("admin", K.request(K.BatchItem(op, payload), version=version))

    def create(self, length=256, *extra, version=V21):
        resp = self.call("CREATE", [Enum("OBJECT_TYPE", "SYMMETRIC_KEY"), aes(length, *extra)], version)
        self.assertEqual(resp.version, version, "answered in the request's version")
        self.assertSuccess(resp.item, "Create %d" % length)
        # 2.x answers Object Type and Unique Identifier, no Template-Attribute.
        self.assertEqual([c.tag for c in resp.item.payload.children()], [T.OBJECT_TYPE, T.UNIQUE_IDENTIFIER])
        return resp.item.uid()

    def attributes(self, uid, *refs, version=V21):
        item = self.call("GET_ATTRIBUTES", [Text("UNIQUE_IDENTIFIER", uid)] + list(refs), version).item
        self.assertSuccess(item, "Get Attributes")
        attrs = item.payload.find(ATTRIBUTES)
        self.assertIsNotNone(attrs, "2.x Get Attributes answers an Attributes structure")
        return attrs

    def test_create_and_get_attributes(self):
        uid = self.create(256, Text(CONTACT_INFORMATION, "ops@example.org"))
        attrs = self.attributes(uid, Enum(ATTRIBUTE_REFERENCE, CRYPTOGRAPHIC_LENGTH),
                                Enum(ATTRIBUTE_REFERENCE, STATE), Enum(ATTRIBUTE_REFERENCE, CONTACT_INFORMATION))
        self.assertEqual([(c.tag, c.value) for c in attrs.children()],
                         [(CRYPTOGRAPHIC_LENGTH, 256), (STATE, 0x01), (CONTACT_INFORMATION, "ops@example.org")])
        # All of them: tagged items only, no 1.x Attribute structure.
        every = self.attributes(uid)
        self.assertIn(CRYPTOGRAPHIC_ALGORITHM, [c.tag for c in every.children()])
        self.assertNotIn(T.ATTRIBUTE_NAME, [c.tag for c in every.children()])
        # Asked in 1.4, the same key shows 1.x Attribute structures.
        item = self.gw.request("admin", K.request(K.get_attributes(uid, ["Contact Information"]), version=V14)).item
        self.assertEqual([(n, v.value) for n, v in item.attributes()], [("Contact Information", "ops@example.org")])

    def test_vendor_attributes_add_modify_delete(self):
        uid = self.create()
        new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, "x", "tier", Text("ATTRIBUTE_VALUE", "gold")))
        item = self.call("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item
        self.assertSuccess(item, "Add x-tier")
        self.assertEqual([c.tag for c in item.payload.children()], [T.UNIQUE_IDENTIFIER], "2.x answers the UID only")
        # Stored as the 1.x custom attribute x-tier.
        v14 = self.gw.request("admin", K.request(K.get_attributes(uid, ["x-tier"]), version=V14)).item
        self.assertEqual([(n, v.value) for n, v in v14.attributes()], [("x-tier", "gold")])
        # Listed by reference, vendor and name.
        item = self.call("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)]).item
        refs = item.payload.find_all(ATTRIBUTE_REFERENCE)
        self.assertIn(STATE, [r.value for r in refs if r.type == ENUMERATION])
        custom = [r for r in refs if r.type == STRUCTURE]
        self.assertEqual([(r.find("VENDOR_IDENTIFICATION").value, r.find("ATTRIBUTE_NAME").value) for r in custom],
                         [("x", "tier")])
        new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, "x", "tier", Text("ATTRIBUTE_VALUE", "silver")))
        self.assertSuccess(self.call("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item, "Modify")
        got = self.attributes(uid, vendor_attr(ATTRIBUTE_REFERENCE, "x", "tier", None))
        self.assertEqual([c.find("ATTRIBUTE_VALUE").value for c in got.children()], ["silver"])
        ref = vendor_attr(ATTRIBUTE_REFERENCE, "x", "tier", None)
        self.assertSuccess(self.call("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), ref]).item, "Delete")
        self.assertEqual(self.attributes(uid, ref).children(), [])

    def test_upper_case_custom_attribute_of_a_1x_client(self):
        """A 1.x client may name a custom attribute "X-..." (kg_attr_lookup takes either
        case); a 2.x Get Attributes then shows it as vendor "X", not an internal error."""
        uid = self.create()
        item = self.gw.request("admin", K.request(K.add_attribute(uid, "X-Site", "lab"), version=V14)).item
        self.assertSuccess(item, "1.4 Add X-Site")
        every = self.attributes(uid)
        vendor = [(c.find("VENDOR_IDENTIFICATION").value, c.find("ATTRIBUTE_NAME").value,
                   c.find("ATTRIBUTE_VALUE").value) for c in every.children() if c.tag == T.ATTRIBUTE]
        self.assertEqual(vendor, [("X", "Site", "lab")])

    def test_other_vendors_attributes(self):
        uid = self.create()
        new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, "acme.io", "tier", Text("ATTRIBUTE_VALUE", "gold")))
        self.assertSuccess(self.call("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item, "Add acme.io")
        # Another vendor's x attribute of the same name is a different attribute.
        new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, "x", "acme.io:tier", Text("ATTRIBUTE_VALUE", "lead")))
        self.assertSuccess(self.call("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item, "Add x")
        got = self.attributes(uid, vendor_attr(ATTRIBUTE_REFERENCE, "acme.io", "tier", None))
        self.assertEqual([(c.find("VENDOR_IDENTIFICATION").value, c.find("ATTRIBUTE_NAME").value,
                           c.find("ATTRIBUTE_VALUE").value) for c in got.children()], [("acme.io", "tier", "gold")])
        item = self.call("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)]).item
        custom = [r for r in item.payload.find_all(ATTRIBUTE_REFERENCE) if r.type == STRUCTURE]
        self.assertEqual(sorted((r.find("VENDOR_IDENTIFICATION").value, r.find("ATTRIBUTE_NAME").value)
                                for r in custom), [("acme.io", "tier"), ("x", "acme.io:tier")])
        # KMIP 1.x has no such attributes: a 1.4 client neither sees nor sets them.
        v14 = self.gw.request("admin", K.request(K.BatchItem("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)]),
                                                 version=V14)).item
        names = [n.value for n in v14.payload.find_all("ATTRIBUTE_NAME")]
        self.assertIn("x-acme.io:tier", names)
        self.assertNotIn("acme.io:tier", names)
        item = self.gw.request("admin", K.request(
            K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                          K.attr("acme.io:tier", Text("ATTRIBUTE_VALUE", "gold"))]), version=V14)).item
        self.assertFailure(item, "INVALID_FIELD", "a 2.x vendor attribute named in 1.4")

    def set_attribute(self, uid, attribute, version=V21):
        return self.call(SET_ATTRIBUTE, [Text("UNIQUE_IDENTIFIER", uid), S(NEW_ATTRIBUTE, attribute)], version).item

    def test_set_attribute_adds_then_modifies(self):
        uid = self.create()
        contact = Enum(ATTRIBUTE_REFERENCE, CONTACT_INFORMATION)
        item = self.set_attribute(uid, Text(CONTACT_INFORMATION, "a"))
        self.assertSuccess(item, "Set absent Contact Information")
        self.assertEqual([(c.tag, c.value) for c in item.payload.children()], [(T.UNIQUE_IDENTIFIER, uid)],
                         "2.x Set Attribute answers the UID only")
        self.assertEqual([c.value for c in self.attributes(uid, contact).children()], ["a"])
        self.assertSuccess(self.set_attribute(uid, Text(CONTACT_INFORMATION, "b")), "Set it again")
        self.assertEqual([c.value for c in self.attributes(uid, contact).children()], ["b"], "changed, not added")
        # A multi-valued attribute with one instance is changed too.
        tier = vendor_attr(ATTRIBUTE_REFERENCE, "x", "tier", None)
        for value in ("gold", "silver"):
            attr = vendor_attr(T.ATTRIBUTE, "x", "tier", Text("ATTRIBUTE_VALUE", value))
            self.assertSuccess(self.set_attribute(uid, attr), "Set x-tier %s" % value)
        self.assertEqual([c.find("ATTRIBUTE_VALUE").value for c in self.attributes(uid, tier).children()],
                         ["silver"])
        # Set Attribute is one of the operations 2.x clients are offered, not 1.x ones.
        ops = lambda version: [o.value for o in self.call("QUERY", [Enum("QUERY_FUNCTION", 1)], version)
                               .item.payload.find_all("OPERATION")]
        self.assertIn(SET_ATTRIBUTE, ops(V20))
        self.assertNotIn(SET_ATTRIBUTE, ops(V14))

    def test_set_attribute_sensitive_is_raised_never_lowered(self):
        uid = self.create()
        self.assertSuccess(self.call("GET", [Text("UNIQUE_IDENTIFIER", uid)]).item, "Get before")
        self.assertSuccess(self.set_attribute(uid, Bool(SENSITIVE, False)), "Set Sensitive False on a key that is not")
        self.assertSuccess(self.set_attribute(uid, Bool(SENSITIVE, True)), "raise Sensitive")
        attrs = self.attributes(uid, Enum(ATTRIBUTE_REFERENCE, SENSITIVE), Enum(ATTRIBUTE_REFERENCE, ALWAYS_SENSITIVE))
        self.assertEqual([(c.tag, c.value) for c in attrs.children()], [(SENSITIVE, True), (ALWAYS_SENSITIVE, False)],
                         "it was not always sensitive")
        self.assertFailure(self.call("GET", [Text("UNIQUE_IDENTIFIER", uid)]).item, "SENSITIVE", "Get after")
        item = self.set_attribute(uid, Bool(SENSITIVE, False))
        self.assertEqual(item.reason, ATTRIBUTE_READ_ONLY, item.describe())
        # Nor through the 1.4 Modify Attribute.
        item = self.gw.request("admin", K.request(K.BatchItem("MODIFY_ATTRIBUTE", [
            Text("UNIQUE_IDENTIFIER", uid), K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", False))]), version=V14)).item
        self.assertFailure(item, "PERMISSION_DENIED", "lower Sensitive in 1.4")
        self.assertFailure(self.call("GET", [Text("UNIQUE_IDENTIFIER", uid)]).item, "SENSITIVE", "still sensitive")
        # Made sensitive at creation: always sensitive.
        made = self.create(256, Bool(SENSITIVE, True))
        attrs = self.attributes(made, Enum(ATTRIBUTE_REFERENCE, ALWAYS_SENSITIVE))
        self.assertEqual([c.value for c in attrs.children()], [True])

    def test_set_attribute_refusals(self):
        uid = self.create()
        # Read-only: the server's own (Initial Date is a stored row, State is derived).
        for attr in (Enum(STATE, 2), DateTime(INITIAL_DATE, 0)):
            item = self.set_attribute(uid, attr)
            self.assertEqual(item.reason, ATTRIBUTE_READ_ONLY, "0x%06X: %s" % (attr.tag, item.describe()))
        # Several instances: which one to change is ambiguous.
        for value in ("gold", "silver"):
            new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, "x", "tier", Text("ATTRIBUTE_VALUE", value)))
            self.assertSuccess(self.call("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item, value)
        item = self.set_attribute(uid, vendor_attr(T.ATTRIBUTE, "x", "tier", Text("ATTRIBUTE_VALUE", "bronze")))
        self.assertEqual(item.reason, MULTI_VALUED_ATTRIBUTE, item.describe())
        tier = self.attributes(uid, vendor_attr(ATTRIBUTE_REFERENCE, "x", "tier", None))
        self.assertEqual(sorted(c.find("ATTRIBUTE_VALUE").value for c in tier.children()), ["gold", "silver"])
        # A server (y-) attribute, and an object that does not exist.
        item = self.set_attribute(uid, vendor_attr(T.ATTRIBUTE, "y", "tier", Text("ATTRIBUTE_VALUE", "gold")))
        self.assertEqual(item.reason, ATTRIBUTE_READ_ONLY, "y-tier: " + item.describe())
        item = self.set_attribute("no-such-object", Text(CONTACT_INFORMATION, "a"))
        self.assertEqual(item.reason, OBJECT_NOT_FOUND, item.describe())
        # A destroyed object keeps its attributes for the record.
        self.assertSuccess(self.call("DESTROY", [Text("UNIQUE_IDENTIFIER", uid)]).item, "Destroy")
        item = self.set_attribute(uid, Text(CONTACT_INFORMATION, "a"))
        self.assertEqual(item.reason, WRONG_KEY_LIFECYCLE_STATE, "destroyed: " + item.describe())
        # KMIP 1.x has no Set Attribute, in whatever form it is sent.
        other = self.create()
        v14 = [Text("UNIQUE_IDENTIFIER", other), K.attr("Contact Information", Text("ATTRIBUTE_VALUE", "a"))]
        self.assertFailure(self.call(SET_ATTRIBUTE, v14, V14).item, "OPERATION_NOT_SUPPORTED", "Set Attribute in 1.4")
        self.assertEqual(self.attributes(other, Enum(ATTRIBUTE_REFERENCE, CONTACT_INFORMATION)).children(), [])

    def test_set_attribute_is_its_own_policy_operation(self):
        # vsphere (conf/policy.yaml) may Add and Modify Attribute, not Set Attribute:
        # each operation is granted by its own name.
        uid = self.create_key("vsphere")
        item = self.gw.request("vsphere", K.request(K.BatchItem(SET_ATTRIBUTE, [
            Text("UNIQUE_IDENTIFIER", uid), S(NEW_ATTRIBUTE, Text(CONTACT_INFORMATION, "a"))]), version=V21)).item
        self.assertFailure(item, "PERMISSION_DENIED", "Set Attribute not granted to vsphere")
        new = S(NEW_ATTRIBUTE, Text(CONTACT_INFORMATION, "a"))
        item = self.gw.request("vsphere", K.request(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]),
                                                    version=V21)).item
        self.assertSuccess(item, "Add Attribute is granted")
        # The audit names it as policy does.
        with open(self.gw.path("audit.log"), "rb") as f:
            recs = [json.loads(line) for line in f if line.endswith(b"\n")]
        ops = [r.get("operation") for r in recs if r.get("uid") == uid]
        self.assertIn("Set Attribute", ops)

    def test_locate_by_attributes(self):
        name = S(T.NAME, Text("NAME_VALUE", "kmip2-locate"), Enum("NAME_TYPE", 1))
        uid = self.create(256, name)
        item = self.call("LOCATE", [S(ATTRIBUTES, name)]).item
        self.assertSuccess(item, "Locate")
        self.assertEqual([u.value for u in item.payload.find_all("UNIQUE_IDENTIFIER")], [uid])

    def test_refusals(self):
        uid = self.create()
        # A tag that names no attribute, and another vendor's attribute.
        bad = [Enum("OBJECT_TYPE", "SYMMETRIC_KEY"), aes(256, Int(T.BATCH_COUNT, 1))]
        self.assertFailure(self.call("CREATE", bad).item, "INVALID_FIELD", "Batch Count as an attribute")
        # A Vendor Identification is [A-Za-z0-9_.] (2.1 section 4.60), 1 to 32 of them.
        for vendor in ("ac-me", "ac:me", "", "v" * 33):
            new = S(NEW_ATTRIBUTE, vendor_attr(T.ATTRIBUTE, vendor, "tier", Text("ATTRIBUTE_VALUE", "gold")))
            self.assertFailure(self.call("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), new]).item,
                               "INVALID_FIELD", "vendor %r" % vendor)
        # Current Attribute: kmipgw does not pick an instance by value.
        cur = S(CURRENT_ATTRIBUTE, Text(CONTACT_INFORMATION, "a"))
        new = S(NEW_ATTRIBUTE, Text(CONTACT_INFORMATION, "b"))
        self.assertFailure(self.call("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), cur, new]).item,
                           "FEATURE_NOT_SUPPORTED", "Current Attribute")
        # 2.2 is not a version we speak: answered in 1.1, Invalid Message.
        resp = self.call("DISCOVER_VERSIONS", [], (2, 2))
        self.assertEqual(resp.version, V11)
        self.assertFailure(resp.item, "INVALID_MESSAGE", "version 2.2")

    def test_quantum_safe(self):
        self.create(256, Bool(QUANTUM_SAFE, True))
        resp = self.call("CREATE", [Enum("OBJECT_TYPE", "SYMMETRIC_KEY"), aes(128, Bool(QUANTUM_SAFE, True))])
        self.assertFailure(resp.item, "GENERAL_FAILURE", "AES-128 asked to be quantum safe")
        self.create(128, Bool(QUANTUM_SAFE, False))
        # A 1.x client cannot name it at all.
        item = self.gw.request("admin", K.request(K.create_aes256(K.batch_id(), extra_attributes=[
            K.attr("Quantum Safe", Bool("ATTRIBUTE_VALUE", True))]), version=V14)).item
        self.assertFailure(item, "INVALID_FIELD", "Quantum Safe in 1.4")

    def test_wrong_key_lifecycle_state(self):
        uid = self.create()
        self.assertSuccess(self.call("ACTIVATE", [Text("UNIQUE_IDENTIFIER", uid)]).item, "Activate")
        item = self.call("DESTROY", [Text("UNIQUE_IDENTIFIER", uid)]).item
        self.assertEqual(item.reason, WRONG_KEY_LIFECYCLE_STATE, item.describe())
        # The same refusal in 1.4 is Permission Denied: 1.x has no such reason.
        item = self.gw.request("admin", K.request(K.BatchItem("DESTROY", [Text("UNIQUE_IDENTIFIER", uid)]),
                                                  version=V14)).item
        self.assertFailure(item, "PERMISSION_DENIED", "Destroy an Active key in 1.4")

    def test_log_and_interop(self):
        item = self.call(0x2C, [Text(0x420141, "backup job 42 done \u2713\n{\"x\":1}")]).item
        self.assertSuccess(item, "Log")
        self.assertIn('backup job 42 done', self.gw.log_tail())
        self.assertFailure(self.call(0x2C, []).item, "INVALID_MESSAGE", "Log without a Log Message")
        # Interop is for test benches only: not offered, not listed.
        interop = [Enum(0x420160, 1), Text(0x420161, "BL-M-1-21")]
        self.assertFailure(self.call(0x34, interop).item, "OPERATION_NOT_SUPPORTED", "Interop in production")
        item = self.call("QUERY", [Enum("QUERY_FUNCTION", 1)]).item
        ops = [o.value for o in item.payload.find_all("OPERATION")]
        self.assertIn(0x2C, ops)
        self.assertNotIn(0x34, ops)

    def test_discover_versions_not_newer_than_the_request(self):
        def versions(version):
            item = self.call("DISCOVER_VERSIONS", [], version).item
            self.assertSuccess(item, "Discover Versions %d.%d" % version)
            return [(v.find("PROTOCOL_VERSION_MAJOR").value, v.find("PROTOCOL_VERSION_MINOR").value)
                    for v in item.payload.find_all("PROTOCOL_VERSION")]
        self.assertEqual(versions(V21), [(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)])
        self.assertEqual(versions(V14), [(1, 4), (1, 3), (1, 2), (1, 1), (1, 0)])
        self.assertEqual(versions(V11), [(1, 1), (1, 0)])


if __name__ == "__main__":
    unittest.main()
