"""Attributes the server sets (KMIP 1.4 section 3), byte-level: Digest (SHA-256 of the key,
computed in the HSM when the key is made or registered), Fresh, Lease Time, Original
Creation Date, Random Number Generator; Sensitive / Always Sensitive / Extractable / Never
Extractable; each shown only to the protocol versions that have it; all of them read-only.
Alternative Name with attribute indexes; Usage Limits with the server's Count."""

import hashlib
import time
import unittest

import kg_kmip as K
import test_resident
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Long, Enum, Bool, Text, Bytes, DateTime, Interval

V10, V11, V12, V13, V14 = (1, 0), (1, 1), (1, 2), (1, 3), (1, 4)

SHA_256 = 0x06
RAW = 0x01
RNG_ALGORITHM = 0x4200DA
UNSPECIFIED = 0x01
BYTE = 0x01  # Usage Limits Unit

# TC-181-11's key and the Digest Value the OASIS vector gives for it (Raw).
TC181_KEY = bytes.fromhex("0000111122223333444455556666777788889999aaaabbbbccccddddeeeeffff")
TC181_RAW = bytes.fromhex("6c064fe051add11edc07727b594eb48711df843e08445bba2cd786bc16bc58e8")

# Sensitive is not among them: a client may raise it later (test_sensitive_raised_later).
SERVER_SET = ["Digest", "Lease Time", "Random Number Generator", "Fresh", "Original Creation Date",
              "Always Sensitive", "Extractable", "Never Extractable", "Initial Date"]
ADDED_IN = {"Fresh": V11, "Original Creation Date": V12, "Alternative Name": V12,
            "Random Number Generator": V14, "Sensitive": V14, "Always Sensitive": V14,
            "Extractable": V14, "Never Extractable": V14}
ALWAYS = ["Unique Identifier", "Object Type", "Cryptographic Algorithm", "Cryptographic Length",
          "Cryptographic Usage Mask", "State", "Digest", "Initial Date", "Last Change Date",
          "Lease Time"]


def uid_of(item):
    return item.uid()


def register_aes(key, fmt, extra=()):
    value = S("KEY_VALUE", Bytes("KEY_MATERIAL", key))
    return K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE",
          K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", 12)), list(extra)),
        S("SYMMETRIC_KEY", S("KEY_BLOCK",
                             Enum("KEY_FORMAT_TYPE", fmt), value,
                             Enum("CRYPTOGRAPHIC_ALGORITHM", "AES"),
                             Int("CRYPTOGRAPHIC_LENGTH", len(key) * 8)))], K.batch_id())


def digest_fields(value):
    """(Hashing Algorithm, Digest Value, Key Format Type or None) of a Digest value."""
    kft = value.find("KEY_FORMAT_TYPE")
    return (value.find("HASHING_ALGORITHM").value, value.find("DIGEST_VALUE").value,
            kft.value if kft is not None else None)


def name_value(text, tag_prefix="ALTERNATIVE_NAME"):
    return S("ATTRIBUTE_VALUE", Text(tag_prefix + "_VALUE", text),
             Enum(tag_prefix + "_TYPE", 0x01))


class ServerAttributes(GatewayTestCase):
    gw_name = "attributes"

    def call(self, item, version=V14, identity="admin"):
        return self.gw.request(identity, K.request(item, version=version)).item

    def create(self, version=V14, extra=()):
        item = self.call(K.create_aes256(K.batch_id(), extra_attributes=extra), version)
        self.assertSuccess(item, "Create")
        return item.uid()

    def attrs(self, uid, names=(), version=V14):
        item = self.call(K.get_attributes(uid, list(names)), version)
        self.assertSuccess(item, "Get Attributes %r" % (names,))
        return item.attributes()

    def one(self, uid, name, version=V14):
        found = [v for n, v in self.attrs(uid, [name], version) if n == name]
        self.assertEqual(len(found), 1, "%s: %r" % (name, found))
        return found[0]

    def key_bytes(self, uid):
        item = self.call(K.get(uid, K.batch_id()))
        self.assertSuccess(item, "Get")
        return K.symmetric_key_of(item.payload)[0]

    def names(self, uid, version):
        item = self.call(K.get_attribute_list(uid), version)
        self.assertSuccess(item, "Get Attribute List v%d.%d" % version)
        return [n.value for n in item.payload.find_all("ATTRIBUTE_NAME")]

    # --- Digest ------------------------------------------------------------------------
    def test_create_digest_is_sha256_of_the_key(self):
        uid = self.create()
        self.assertEqual(digest_fields(self.one(uid, "Digest")),
                         (SHA_256, hashlib.sha256(self.key_bytes(uid)).digest(), RAW))
        other = self.create()
        self.assertNotEqual(digest_fields(self.one(other, "Digest"))[1], digest_fields(self.one(uid, "Digest"))[1])

    def test_digest_in_kmip_10_has_no_key_format_type(self):
        uid = self.create(V10)
        value = self.one(uid, "Digest", V10)
        self.assertIsNone(value.find("KEY_FORMAT_TYPE"), "KMIP 1.0 Digest: %r" % value)
        self.assertEqual(digest_fields(value)[:2], (SHA_256, hashlib.sha256(self.key_bytes(uid)).digest()))
        self.assertEqual(digest_fields(self.one(uid, "Digest", V11))[2], RAW)

    def test_register_digest_is_the_vectors(self):
        item = self.call(register_aes(TC181_KEY, RAW))
        self.assertSuccess(item, "Register")
        self.assertEqual(digest_fields(self.one(item.uid(), "Digest")), (SHA_256, TC181_RAW, RAW))

    def test_rekey_gets_its_own_digest(self):
        old = self.create()
        old_digest = digest_fields(self.one(old, "Digest"))[1]
        item = self.call(K.BatchItem("REKEY", [Text("UNIQUE_IDENTIFIER", old)]))
        self.assertSuccess(item, "Re-key")
        new = item.uid()
        self.assertEqual(digest_fields(self.one(new, "Digest"))[1], hashlib.sha256(self.key_bytes(new)).digest())
        self.assertNotEqual(digest_fields(self.one(new, "Digest"))[1], old_digest)

    # --- life-cycle dates change only in the states KMIP allows (3.24 to 3.27) ---------
    def test_dates_follow_the_state(self):
        def change(op, uid, name, when):
            return self.call(K.BatchItem(op, [Text("UNIQUE_IDENTIFIER", uid),
                                              K.attr(name, DateTime("ATTRIBUTE_VALUE", when))]))
        uid = self.create()
        self.assertSuccess(change("ADD_ATTRIBUTE", uid, "Activation Date", 4000000000),
                           "Activation Date while Pre-Active")
        self.assertSuccess(change("MODIFY_ATTRIBUTE", uid, "Activation Date", 4000000001),
                           "Activation Date changed while Pre-Active")
        self.assertSuccess(self.call(K.activate(uid)), "Activate")
        self.assertFailure(change("MODIFY_ATTRIBUTE", uid, "Activation Date", 4000000002), "PERMISSION_DENIED",
                           "Activation Date once Active")
        self.assertSuccess(change("ADD_ATTRIBUTE", uid, "Deactivation Date", 4100000000),
                           "Deactivation Date while Active")
        self.assertSuccess(self.call(K.revoke(uid)), "Revoke")
        self.assertFailure(change("MODIFY_ATTRIBUTE", uid, "Deactivation Date", 4100000001), "PERMISSION_DENIED",
                           "Deactivation Date once Deactivated")
        self.assertFailure(change("ADD_ATTRIBUTE", uid, "Protect Stop Date", 4100000001), "PERMISSION_DENIED",
                           "Protect Stop Date once Deactivated")

    def test_state_follows_dates_once_reached(self):
        def add(uid, name, when):
            item = self.call(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          K.attr(name, DateTime("ATTRIBUTE_VALUE", when))]))
            self.assertSuccess(item, "Add %s" % name)
        now = int(time.time())
        uid = self.create()
        add(uid, "Activation Date", now + 3600)
        self.assertEqual(self.one(uid, "State").value, 0x01, "Activation Date ahead: still Pre-Active")
        uid = self.create()
        add(uid, "Activation Date", now - 10)
        self.assertEqual(self.one(uid, "State").value, 0x02, "Activation Date reached: Active")
        add(uid, "Deactivation Date", now - 1)
        self.assertEqual(self.one(uid, "State").value, 0x03, "Deactivation Date reached: Deactivated")

    # --- the other server-set attributes -----------------------------------------------
    def test_values_of_a_created_key(self):
        uid = self.create()
        self.assertIs(self.one(uid, "Fresh").value, True)
        # No lease interval: what Obtain Lease grants too (kg_op_usage.c).
        self.assertEqual(self.one(uid, "Lease Time").value, 0)
        rng = self.one(uid, "Random Number Generator")
        self.assertEqual([(c.tag, c.value) for c in rng.children()], [(RNG_ALGORITHM, UNSPECIFIED)])
        self.assertEqual(self.one(uid, "Original Creation Date").value, self.one(uid, "Initial Date").value)
        # A wrapped key: Get may return it, so it is neither sensitive nor unextractable.
        for name, want in (("Sensitive", False), ("Always Sensitive", False),
                           ("Extractable", True), ("Never Extractable", False)):
            self.assertIs(self.one(uid, name).value, want, name)

    def test_each_version_sees_its_own_attributes(self):
        uid = self.create()
        for version in (V10, V11, V12, V13, V14):
            listed = self.names(uid, version)
            every = [n for n, _ in self.attrs(uid, (), version)]
            for name in ALWAYS:
                self.assertIn(name, listed, "v%d.%d" % version)
            for name, since in ADDED_IN.items():
                if name == "Alternative Name":
                    continue
                for seen, where in ((listed, "Get Attribute List"), (every, "Get Attributes")):
                    if version >= since:
                        self.assertIn(name, seen, "%s v%d.%d" % (where, version[0], version[1]))
                    else:
                        self.assertNotIn(name, seen, "%s v%d.%d" % (where, version[0], version[1]))
                # Asked for by name, an attribute of a later version is absent.
                got = [n for n, _ in self.attrs(uid, [name], version)]
                self.assertEqual(got, [name] if version >= since else [], "%s v%d.%d" % (name, *version))

    def test_server_attributes_are_read_only(self):
        uid = self.create()
        values = {"Digest": S("ATTRIBUTE_VALUE", Enum("HASHING_ALGORITHM", SHA_256),
                              Bytes("DIGEST_VALUE", b"\0" * 32), Enum("KEY_FORMAT_TYPE", RAW)),
                  "Lease Time": Interval("ATTRIBUTE_VALUE", 60),
                  "Fresh": Bool("ATTRIBUTE_VALUE", False),
                  "Original Creation Date": DateTime("ATTRIBUTE_VALUE", 1000000000),
                  "Random Number Generator": S("ATTRIBUTE_VALUE", Enum(RNG_ALGORITHM, UNSPECIFIED)),
                  "Always Sensitive": Bool("ATTRIBUTE_VALUE", True),
                  "Extractable": Bool("ATTRIBUTE_VALUE", False),
                  "Never Extractable": Bool("ATTRIBUTE_VALUE", True),
                  "Initial Date": DateTime("ATTRIBUTE_VALUE", 1000000000)}
        before = self.attrs(uid)
        for name in SERVER_SET:
            value = values[name]
            for op in ("ADD_ATTRIBUTE", "MODIFY_ATTRIBUTE"):
                item = self.call(K.BatchItem(op, [Text("UNIQUE_IDENTIFIER", uid), K.attr(name, value)]))
                # A client may add an Original Creation Date to a key it registered
                # without one; this key has the server's, and it is single-valued.
                reason = "INVALID_FIELD" if (op, name) == ("ADD_ATTRIBUTE", "Original Creation Date") \
                    else "PERMISSION_DENIED"
                self.assertFailure(item, reason, "%s %s" % (op, name))
            item = self.call(K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                              Text("ATTRIBUTE_NAME", name)]))
            self.assertFailure(item, "PERMISSION_DENIED", "Delete %s" % name)
        self.assertEqual([(n, v) for n, v in self.attrs(uid) if n != "Last Change Date"],
                         [(n, v) for n, v in before if n != "Last Change Date"])
        # Nor may a template set them (Fresh and Sensitive excepted: a client may set
        # them at creation).
        for name in ("Digest", "Random Number Generator", "Always Sensitive", "Lease Time"):
            value = values[name]
            item = self.call(K.create_aes256(K.batch_id(), extra_attributes=[K.attr(name, value)]))
            self.assertFailure(item, "PERMISSION_DENIED", "Create with %s" % name)

    def test_an_attribute_asked_for_twice(self):
        uid = self.create()
        item = self.call(K.get_attributes(uid, ["Object Type", "State", "Object Type"]))
        self.assertFailure(item, "INVALID_MESSAGE", "Object Type asked for twice")
        # The connection and the key are fine: asked once each, both come back.
        self.assertEqual([n for n, _ in self.attrs(uid, ["Object Type", "State"])], ["Object Type", "State"])

    def test_a_served_key_is_no_longer_fresh(self):
        def locate_fresh(uid):
            item = self.call(K.BatchItem("LOCATE", [Enum("OBJECT_GROUP_MEMBER", 1),
                                                     K.attr("Unique Identifier", Text("ATTRIBUTE_VALUE", uid))]))
            self.assertSuccess(item, "Locate Fresh")
            return [u.value for u in item.payload.find_all("UNIQUE_IDENTIFIER")]
        uid = self.create()
        self.assertIs(self.one(uid, "Fresh").value, True)
        self.assertEqual(locate_fresh(uid), [uid])
        self.key_bytes(uid)
        self.assertIs(self.one(uid, "Fresh").value, False)
        self.assertEqual(locate_fresh(uid), [])
        self.key_bytes(uid)
        self.assertEqual(len([n for n, _ in self.attrs(uid) if n == "Fresh"]), 1)

    def test_sensitive_raised_later(self):
        """Add Attribute may make a key Sensitive after it was made (KMIP 1.4 section 3.48:
        modifiable by the client); Always Sensitive then stays False, and the key is no
        longer returned in the clear. Lowering it again is refused."""
        key = bytes(range(32))
        uid = self.call(register_aes(key, RAW)).uid()
        self.assertEqual(self.key_bytes(uid), key)
        self.assertIs(self.one(uid, "Always Sensitive").value, False)
        item = self.call(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                       K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", True))]))
        self.assertSuccess(item, "Add Sensitive")
        self.assertIs(self.one(uid, "Sensitive").value, True)
        self.assertIs(self.one(uid, "Always Sensitive").value, False, "it was not always sensitive")
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "SENSITIVE", "Get once Sensitive")
        item = self.call(K.BatchItem("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", False))]))
        self.assertFailure(item, "PERMISSION_DENIED", "lower Sensitive")
        # The server's record of it is no attribute a client may name.
        item = self.call(K.BatchItem("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)]))
        self.assertNotIn("Sensitive Raised", [n.value for n in item.payload.find_all("ATTRIBUTE_NAME")])
        item = self.call(K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          Text("ATTRIBUTE_NAME", "Sensitive Raised")]))
        self.assertEqual(item.status, K.RESULT_STATUS["OPERATION_FAILED"], item.describe())
        self.assertIs(self.one(uid, "Always Sensitive").value, False)

    def test_sensitive_given_at_creation(self):
        """A key made Sensitive is never returned in the clear (Result Reason Sensitive;
        Permission Denied to a 1.3 client, which has no such reason), and says so in
        Sensitive and Always Sensitive, once each; one made not Sensitive is returned."""
        key = bytes(range(32))
        item = self.call(register_aes(key, RAW, [K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", True))]))
        self.assertSuccess(item, "Register Sensitive")
        uid = item.uid()
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "SENSITIVE", "Get of a Sensitive key")
        self.assertFailure(self.call(K.get(uid, K.batch_id()), V13), "PERMISSION_DENIED", "1.3 Get")
        self.assertIs(self.one(uid, "Sensitive").value, True)
        self.assertIs(self.one(uid, "Always Sensitive").value, True)
        self.assertEqual([n for n, _ in self.attrs(uid) if n == "Sensitive"], ["Sensitive"])
        self.assertEqual(self.names(uid, V14).count("Sensitive"), 1)
        # Never lowered once set.
        item = self.call(K.BatchItem("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", False))]))
        self.assertFailure(item, "PERMISSION_DENIED", "Modify Sensitive")
        self.assertFailure(self.call(K.get(uid, K.batch_id())), "SENSITIVE", "Get after a refused Modify")
        item = self.call(register_aes(key, RAW, [K.attr("Sensitive", Bool("ATTRIBUTE_VALUE", False))]))
        self.assertSuccess(item, "Register not Sensitive")
        self.assertEqual(self.key_bytes(item.uid()), key)
        self.assertIs(self.one(item.uid(), "Sensitive").value, False)
        # Only a Boolean.
        item = self.call(register_aes(key, RAW, [K.attr("Sensitive", Int("ATTRIBUTE_VALUE", 1))]))
        self.assertEqual(item.status, K.RESULT_STATUS["OPERATION_FAILED"], item.describe())

    def test_fresh_given_at_creation_stands(self):
        uid = self.create(extra=[K.attr("Fresh", Bool("ATTRIBUTE_VALUE", False))])
        self.assertIs(self.one(uid, "Fresh").value, False)

    # --- Alternative Name --------------------------------------------------------------
    def test_alternative_name_with_indexes(self):
        uid = self.create(V12)

        def add(text):
            item = self.call(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                           K.attr("Alternative Name", name_value(text))]),
                             V12)
            self.assertSuccess(item, "Add Alternative Name %s" % text)
            index = item.payload.find("ATTRIBUTE").find("ATTRIBUTE_INDEX")
            return index.value if index is not None else 0

        self.assertEqual(add("first"), 0)
        self.assertEqual(add("second"), 1)
        item = self.call(K.BatchItem("MODIFY_ATTRIBUTE", [
            Text("UNIQUE_IDENTIFIER", uid),
            S("ATTRIBUTE", Text("ATTRIBUTE_NAME", "Alternative Name"), Int("ATTRIBUTE_INDEX", 1),
              name_value("second, changed"))]), V12)
        self.assertSuccess(item, "Modify Alternative Name[1]")
        item = self.call(K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          Text("ATTRIBUTE_NAME", "Alternative Name"),
                                                          Int("ATTRIBUTE_INDEX", 0)]), V12)
        self.assertSuccess(item, "Delete Alternative Name[0]")
        left = [v.find("ALTERNATIVE_NAME_VALUE").value
                for n, v in self.attrs(uid, ["Alternative Name"], V12) if n == "Alternative Name"]
        self.assertEqual(left, ["second, changed"])
        # Index 0 is gone: deleting it again fails; a 1.1 client does not know the attribute.
        item = self.call(K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          Text("ATTRIBUTE_NAME", "Alternative Name"),
                                                          Int("ATTRIBUTE_INDEX", 0)]), V12)
        self.assertEqual(item.status, K.RESULT_STATUS["OPERATION_FAILED"], item.describe())
        item = self.call(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                       K.attr("Alternative Name", name_value("old"))]), V11)
        self.assertFailure(item, "INVALID_FIELD", "Alternative Name from a KMIP 1.1 client")
        self.assertEqual([n for n, _ in self.attrs(uid, ["Alternative Name"], V11)], [])

    def test_alternative_name_in_a_template(self):
        item = self.call(register_aes(TC181_KEY, RAW, [K.attr("Alternative Name", name_value("Αλφα"))]))
        self.assertSuccess(item, "Register with Alternative Name")
        got = self.one(item.uid(), "Alternative Name")
        self.assertEqual(got.find("ALTERNATIVE_NAME_VALUE").value, "Αλφα")

    # --- Usage Limits --------------------------------------------------------------------
    def limits(self, total=1000, count=None, unit=BYTE):
        return S("ATTRIBUTE_VALUE",
                 Long("USAGE_LIMITS_TOTAL", total) if total is not None else None,
                 Long("USAGE_LIMITS_COUNT", count) if count is not None else None,
                 Enum("USAGE_LIMITS_UNIT", unit) if unit is not None else None)

    def limits_of(self, value):
        return tuple(value.find(t).value if value.find(t) is not None else None
                     for t in ("USAGE_LIMITS_TOTAL", "USAGE_LIMITS_COUNT", "USAGE_LIMITS_UNIT"))

    def test_usage_limits_count_is_the_servers(self):
        uid = self.create(V11)
        item = self.call(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                       K.attr("Usage Limits", self.limits())]), V11)
        self.assertSuccess(item, "Add Usage Limits")
        self.assertEqual(self.limits_of(item.payload.find("ATTRIBUTE").find("ATTRIBUTE_VALUE")),
                         (1000, 1000, BYTE))
        self.assertEqual(self.limits_of(self.one(uid, "Usage Limits", V11)), (1000, 1000, BYTE))
        item = self.call(K.BatchItem("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          K.attr("Usage Limits", self.limits(500))]), V11)
        self.assertSuccess(item, "Modify Usage Limits")
        self.assertEqual(self.limits_of(self.one(uid, "Usage Limits", V11)), (500, 500, BYTE))
        # The client may not set the Count, nor leave out Total or Unit.
        for bad, reason in ((self.limits(500, 7), "PERMISSION_DENIED"),
                            (self.limits(None), "INVALID_FIELD"), (self.limits(unit=None), "INVALID_FIELD"),
                            (self.limits(-1), "INVALID_FIELD")):
            item = self.call(K.BatchItem("MODIFY_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                              K.attr("Usage Limits", bad)]), V11)
            self.assertFailure(item, reason, "Modify Usage Limits to %r" % (bad,))
        self.assertEqual(self.limits_of(self.one(uid, "Usage Limits", V11)), (500, 500, BYTE))
        item = self.call(K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                          Text("ATTRIBUTE_NAME", "Usage Limits")]), V11)
        self.assertSuccess(item, "Delete Usage Limits")
        self.assertEqual(self.attrs(uid, ["Usage Limits"], V11), [])

    def test_usage_limits_in_a_template_ignores_the_count(self):
        uid = self.create(V11, extra=[K.attr("Usage Limits", self.limits(2000, 5))])
        self.assertEqual(self.limits_of(self.one(uid, "Usage Limits", V11)), (2000, 2000, BYTE))


class ResidentAttributes(GatewayTestCase):
    """A key that lives in the HSM: sensitive, never extractable, and still digested."""
    gw_name = "attributes-resident"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            test_resident.make_backup_resident(cls.gw)
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def test_resident_key(self):
        item = self.gw.request("backup", K.request(K.create_aes256(K.batch_id()), version=V14)).item
        self.assertSuccess(item, "Create resident")
        uid = item.uid()
        item = self.gw.request("backup", K.request(K.get_attributes(uid, []), version=V14)).item
        self.assertSuccess(item, "Get Attributes")
        got = dict((n, v) for n, v in item.attributes())
        for name, want in (("Sensitive", True), ("Always Sensitive", True),
                           ("Extractable", False), ("Never Extractable", True)):
            self.assertIs(got[name].value, want, name)
        # Digested in the HSM although its bytes can never leave it.
        alg, value, kft = digest_fields(got["Digest"])
        self.assertEqual((alg, kft, len(value)), (SHA_256, RAW, 32))


if __name__ == "__main__":
    unittest.main()
