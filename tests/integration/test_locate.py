"""Locate and its KMIP 1.x filters (KMIP 1.4 section 4.9), byte-level through kg_kmip.

Every test tags the keys it makes with an x-Test value of its own, so the
keys other tests made (one gateway serves the whole class) never show up in
its results. Keys are made by `admin` (scope all) unless a test is about scope.
"""

import time
import unittest
import uuid

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Bool, DateTime, Enum, Int, Long, Text, CRYPTOGRAPHIC_ALGORITHM, OBJECT_TYPE, STATE

AV = "ATTRIBUTE_VALUE"
ENCRYPT, DECRYPT, SIGN = 0x04, 0x08, 0x01
YEAR_2100 = 4102444800


def x_test(tag):
    return K.attr("x-Test", Text(AV, tag))


def name_attr(value=None, name_type="UNINTERPRETED_TEXT_STRING"):
    return K.attr("Name", S(AV,
                            Text("NAME_VALUE", value) if value is not None else None,
                            Enum("NAME_TYPE", name_type) if name_type is not None else None))


def int_attr(name, v):
    return K.attr(name, Int(AV, v))


def date_attr(name, when):
    return K.attr(name, DateTime(AV, when))


def locate_item(*payload):
    return K.BatchItem("LOCATE", list(payload), K.batch_id())


def uids_of(item):
    return [u.value for u in item.payload.find_all("UNIQUE_IDENTIFIER")] if item.payload is not None else []


class Locate(GatewayTestCase):
    gw_name = "locate"

    # --- helpers ------------------------------------------------------------------
    def create(self, tag, *attrs, identity="admin", mask=ENCRYPT | DECRYPT):
        resp = self.gw.request(identity, K.request(K.create_aes256(
            K.batch_id(), usage_mask=mask, extra_attributes=[x_test(tag)] + list(attrs))))
        self.assertSuccess(resp.item, "Create")
        return resp.item.uid()

    def locate(self, *payload, identity="admin"):
        """Locate -> the UIDs found, in order (asserting Success)."""
        resp = self.gw.request(identity, K.request(locate_item(*payload)))
        self.assertSuccess(resp.item, "Locate")
        return uids_of(resp.item)

    def locate_fails(self, reason, *payload, what=""):
        resp = self.gw.request("admin", K.request(locate_item(*payload)))
        self.assertFailure(resp.item, reason, what or "Locate")

    def request_ok(self, item, what):
        resp = self.gw.request("admin", K.request(item))
        self.assertSuccess(resp.item, what)
        return resp.item

    # --- the ID Placeholder a Locate leaves ----------------------------------------------
    def test_placeholder_after_locate(self):
        tag = uuid.uuid4().hex
        uid = self.create(tag)
        cont = [Enum("BATCH_ERROR_CONTINUATION_OPTION", 1)]  # Continue
        get = lambda: K.BatchItem("GET_ATTRIBUTES", [Text("ATTRIBUTE_NAME", "State")], K.batch_id())
        # One found: the next item works on it.
        resp = self.gw.request("admin", K.request([locate_item(x_test(tag)), get()], extra_header=cont))
        self.assertSuccess(resp.items[1], "Get Attributes after a Locate that found one")
        self.assertEqual(resp.items[1].uid(), uid)
        # None found: the next item names no object at all (OASIS TC_152).
        resp = self.gw.request("admin", K.request([locate_item(x_test(uuid.uuid4().hex)), get()],
                                                  extra_header=cont))
        self.assertEqual(uids_of(resp.items[0]), [])
        self.assertFailure(resp.items[1], "ITEM_NOT_FOUND", "after a Locate that found nothing")
        # No Locate before it: the client left its UID out.
        resp = self.gw.request("admin", K.request(get()))
        self.assertFailure(resp.item, "MISSING_DATA", "no UID and no placeholder")

    # --- attribute filters ------------------------------------------------------------
    def test_name_structure_fields(self):
        tag = uuid.uuid4().hex
        a = self.create(tag, name_attr("a-" + tag))
        b = self.create(tag, name_attr("b-" + tag))
        self.assertEqual(self.locate(K.attr("Object Type", Enum(AV, OBJECT_TYPE["SYMMETRIC_KEY"])),
                                     name_attr("a-" + tag)), [a])
        self.assertEqual(self.locate(name_attr("b-" + tag)), [b])
        # 4.9: structure fields may be left out.
        self.assertEqual(self.locate(name_attr("a-" + tag, None)), [a], "Name Value alone")
        self.assertEqual(self.locate(x_test(tag), name_attr(None)), [b, a], "Name Type alone")
        # A field that differs never matches, another matching field or not.
        self.assertEqual(self.locate(name_attr("a-" + tag, "URI")), [])
        self.assertEqual(self.locate(name_attr("a-")), [], "a prefix is not the name")
        self.assertEqual(self.locate(K.attr("Object Type", Enum(AV, OBJECT_TYPE["SECRET_DATA"])),
                                     name_attr("a-" + tag)), [])

    def test_unique_identifier_and_destroyed(self):
        tag = uuid.uuid4().hex
        uid = self.create(tag)
        other = self.create(tag)
        by_uid = K.attr("Unique Identifier", Text(AV, uid))
        self.assertEqual(self.locate(by_uid), [uid])
        self.assertEqual(self.locate(by_uid, x_test(tag)), [uid])
        self.assertEqual(self.locate(K.attr("Unique Identifier", Text(AV, uid[:-1]))), [], "short UID")
        self.assertEqual(self.locate(by_uid, K.attr("Unique Identifier", Text(AV, other))), [],
                         "two different UIDs")
        self.request_ok(K.destroy(uid, K.batch_id()), "Destroy")
        # SKFF-M-5: a destroyed object is no longer found...
        self.assertEqual(self.locate(by_uid), [])
        self.assertEqual(self.locate(x_test(tag)), [other])
        # ...unless the State filter asks for destroyed ones.
        self.assertEqual(self.locate(by_uid, K.attr("State", Enum(AV, STATE["DESTROYED"]))), [uid])
        self.assertEqual(self.locate(x_test(tag), K.attr("State", Enum(AV, STATE["PRE_ACTIVE"]))), [other])

    def test_usage_mask_semantics(self):
        tag = uuid.uuid4().hex
        both = self.create(tag, mask=ENCRYPT | DECRYPT)
        enc = self.create(tag, mask=ENCRYPT)
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Usage Mask", ENCRYPT)), [enc, both])
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Usage Mask", DECRYPT)), [both])
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Usage Mask", ENCRYPT | DECRYPT)),
                         [both])
        # 4.9's example: a requested bit the object lacks fails the match.
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Usage Mask", ENCRYPT | SIGN)), [])
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Usage Mask", ENCRYPT),
                                     int_attr("Cryptographic Usage Mask", DECRYPT)), [both], "two masks")

    def test_columns(self):
        tag = uuid.uuid4().hex
        uid = self.create(tag)
        aes = K.attr("Cryptographic Algorithm", Enum(AV, CRYPTOGRAPHIC_ALGORITHM["AES"]))
        self.assertEqual(self.locate(x_test(tag), aes, int_attr("Cryptographic Length", 256)), [uid])
        self.assertEqual(self.locate(x_test(tag), int_attr("Cryptographic Length", 128)), [])
        self.assertEqual(self.locate(x_test(tag), K.attr("Cryptographic Algorithm",
                                                         Enum(AV, CRYPTOGRAPHIC_ALGORITHM["RSA"]))), [])
        self.assertEqual(self.locate(x_test(tag), K.attr("State", Enum(AV, STATE["PRE_ACTIVE"]))), [uid])
        self.assertEqual(self.locate(x_test(tag), K.attr("State", Enum(AV, STATE["ACTIVE"]))), [])
        self.assertEqual(self.locate(x_test(tag), K.attr("State", Enum(AV, STATE["ACTIVE"])),
                                     K.attr("State", Enum(AV, STATE["PRE_ACTIVE"]))), [], "two states")

    def test_object_group_link_and_application_info(self):
        tag = uuid.uuid4().hex
        target = self.create(tag)
        uid = self.create(tag, K.attr("Object Group", Text(AV, "g-" + tag)),
                          K.attr("Application Specific Information",
                                 S(AV, Text("APPLICATION_NAMESPACE", "ns-" + tag),
                                   Text("APPLICATION_DATA", "data"))))
        self.request_ok(K.BatchItem("ADD_ATTRIBUTE", [
            Text("UNIQUE_IDENTIFIER", uid),
            K.attr("Link", S(AV, Enum("LINK_TYPE", 0x0103), Text("LINKED_OBJECT_IDENTIFIER", target)))],
            K.batch_id()), "Add Attribute Link")
        self.assertEqual(self.locate(K.attr("Object Group", Text(AV, "g-" + tag))), [uid])
        self.assertEqual(self.locate(K.attr("Object Group", Text(AV, "g-"))), [])
        self.assertEqual(self.locate(K.attr("Link", S(AV, Text("LINKED_OBJECT_IDENTIFIER", target)))), [uid],
                         "Linked Object Identifier alone (4.9's example)")
        self.assertEqual(self.locate(K.attr("Link", S(AV, Enum("LINK_TYPE", 0x0103),
                                                      Text("LINKED_OBJECT_IDENTIFIER", target)))), [uid])
        self.assertEqual(self.locate(K.attr("Link", S(AV, Enum("LINK_TYPE", 0x0104),
                                                      Text("LINKED_OBJECT_IDENTIFIER", target)))), [])
        ns = Text("APPLICATION_NAMESPACE", "ns-" + tag)
        self.assertEqual(self.locate(K.attr("Application Specific Information", S(AV, ns))), [uid])
        self.assertEqual(self.locate(K.attr("Application Specific Information",
                                            S(AV, ns, Text("APPLICATION_DATA", "other")))), [])

    def test_date_ranges(self):
        tag = uuid.uuid4().hex
        day = 86400
        k = [self.create(tag, date_attr("Activation Date", YEAR_2100 + i * day)) for i in range(3)]
        act = lambda when: date_attr("Activation Date", when)  # noqa: E731
        self.assertEqual(self.locate(x_test(tag), act(YEAR_2100 + day)), [k[1]], "one instance: that date")
        self.assertEqual(self.locate(x_test(tag), act(YEAR_2100 + day + 1)), [])
        self.assertEqual(self.locate(x_test(tag), act(YEAR_2100), act(YEAR_2100 + day)), [k[1], k[0]],
                         "two instances: a range, ends included")
        self.assertEqual(self.locate(x_test(tag), act(YEAR_2100 + 2 * day), act(YEAR_2100 + 1)), [k[2], k[1]],
                         "a range given high end first")
        self.assertEqual(self.locate(x_test(tag), act(YEAR_2100 + 1), act(YEAR_2100 + day - 1)), [])
        now = int(time.time())
        self.assertEqual(self.locate(x_test(tag), date_attr("Initial Date", now - 3600),
                                     date_attr("Initial Date", now + 3600)), [k[2], k[1], k[0]])
        self.assertEqual(self.locate(x_test(tag), date_attr("Initial Date", now + 3600),
                                     date_attr("Initial Date", now + 7200)), [])
        # Negative: a third instance of one date attribute is no range.
        self.locate_fails("INVALID_FIELD", act(YEAR_2100), act(YEAR_2100 + day), act(YEAR_2100 + 2 * day),
                          what="three Activation Dates")

    # --- Maximum Items, Offset Items, order -------------------------------------------------
    def test_maximum_and_offset_items(self):
        tag = uuid.uuid4().hex
        k = [self.create(tag) for _ in range(4)]
        newest_first = list(reversed(k))
        self.assertEqual(self.locate(x_test(tag)), newest_first)
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 2), x_test(tag)), newest_first[:2])
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 2), Int("OFFSET_ITEMS", 1), x_test(tag)),
                         newest_first[1:3])
        self.assertEqual(self.locate(Int("OFFSET_ITEMS", 3), x_test(tag)), newest_first[3:])
        self.assertEqual(self.locate(Int("OFFSET_ITEMS", 4), x_test(tag)), [])
        self.assertEqual(self.locate(Int("OFFSET_ITEMS", 0), x_test(tag)), newest_first, "offset 0 = none")

    # --- Object Group Member ----------------------------------------------------------------
    def test_group_member_fresh_and_default(self):
        tag = uuid.uuid4().hex
        group = K.attr("Object Group", Text(AV, "grp-" + tag))
        # Fresh is the server's once set (3.34): the keys are made with it.
        k = [self.create(tag, group, K.attr("Fresh", Bool(AV, f))) for f in (False, True, True, False)]
        fresh = Enum("OBJECT_GROUP_MEMBER", 0x01)
        default = Enum("OBJECT_GROUP_MEMBER", 0x02)
        self.assertEqual(self.locate(fresh, group), [k[1], k[2]], "fresh members, oldest first")
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 1), fresh, group), [k[1]])
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 1), Int("OFFSET_ITEMS", 1), fresh, group), [k[2]])
        self.assertEqual(self.locate(default, group), [k[1], k[2], k[0], k[3]],
                         "default: fresh members first, then the others, oldest first")
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 1), default, group), [k[1]])
        self.assertEqual(self.locate(group), list(reversed(k)), "no Object Group Member: newest first")
        # TC-151/152/153: Locate + an item on the ID Placeholder in one batch.
        resp = self.gw.request("admin", K.request([
            K.BatchItem("LOCATE", [Int("MAXIMUM_ITEMS", 1), fresh, group], K.batch_id()),
            K.BatchItem("GET_ATTRIBUTES", [Text("ATTRIBUTE_NAME", "Fresh")], K.batch_id())]))
        self.assertSuccess(resp.items[0], "Locate")
        self.assertSuccess(resp.items[1], "Get Attributes on the ID Placeholder")
        self.assertEqual(resp.items[1].uid(), k[1])
        # A group with no fresh member: none fresh, the default is the oldest.
        stale = K.attr("Object Group", Text(AV, "stale-" + tag))
        s = [self.create(tag, stale, K.attr("Fresh", Bool(AV, False))) for _ in range(2)]
        self.assertEqual(self.locate(fresh, stale), [])
        self.assertEqual(self.locate(Int("MAXIMUM_ITEMS", 1), default, stale), [s[0]])

    def test_id_placeholder_emptied_by_many(self):
        tag = uuid.uuid4().hex
        a = self.create(tag)
        self.create(tag)
        resp = self.gw.request("admin", K.request([
            K.create_aes256(K.batch_id(), extra_attributes=[x_test(tag)]),
            locate_item(x_test(tag)),
            K.BatchItem("GET_ATTRIBUTES", [Text("ATTRIBUTE_NAME", "x-Test")], K.batch_id())]))
        self.assertSuccess(resp.items[0], "Create")
        self.assertEqual(len(uids_of(resp.items[1])), 3)
        self.assertNotEqual(resp.items[2].status, K.RESULT_STATUS["SUCCESS"],
                            "an item after a Locate of three objects used the Create's UID: %s"
                            % resp.items[2].describe())
        resp = self.gw.request("admin", K.request([
            K.create_aes256(K.batch_id()),
            locate_item(K.attr("Unique Identifier", Text(AV, a))),
            K.BatchItem("GET_ATTRIBUTES", [Text("ATTRIBUTE_NAME", "x-Test")], K.batch_id())]))
        self.assertSuccess(resp.items[2], "Get Attributes after a Locate of one object")
        self.assertEqual(resp.items[2].uid(), a)

    # --- scope ----------------------------------------------------------------------------
    def test_scope_with_new_filters(self):
        tag = uuid.uuid4().hex
        mine = self.create(tag, identity="backup")
        theirs = self.create(tag)
        self.assertEqual(self.locate(x_test(tag), identity="backup"), [mine])
        self.assertEqual(self.locate(K.attr("Unique Identifier", Text(AV, theirs)), identity="backup"), [])
        self.assertEqual(self.locate(Int("OFFSET_ITEMS", 0), Enum("OBJECT_GROUP_MEMBER", 0x02),
                                     int_attr("Cryptographic Usage Mask", ENCRYPT), x_test(tag),
                                     identity="backup"), [mine])
        self.assertEqual(self.locate(x_test(tag)), [theirs, mine], "admin's scope is all")

    # --- Storage Status Mask ------------------------------------------------------------------
    def test_storage_status_mask(self):
        tag = uuid.uuid4().hex
        uid = self.create(tag)
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 1), x_test(tag)), [uid])
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 2), x_test(tag)), [], "nothing archived yet")
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 3), x_test(tag)), [uid])
        resp = self.gw.request("admin", K.request(K.BatchItem("ARCHIVE", [Text("UNIQUE_IDENTIFIER", uid)],
                                                              K.batch_id())))
        if resp.item.reason == K.RESULT_REASON["OPERATION_NOT_SUPPORTED"]:
            self.skipTest("this build has no Archive operation")
        self.assertSuccess(resp.item, "Archive")
        self.assertEqual(self.locate(x_test(tag)), [], "archived: not on-line")
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 1), x_test(tag)), [])
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 2), x_test(tag)), [uid])
        self.assertEqual(self.locate(Int("STORAGE_STATUS_MASK", 3), x_test(tag)), [uid])

    # --- what Locate refuses -------------------------------------------------------------------
    def test_refusals(self):
        tag = x_test("refusals")
        too_many = [x_test("t%d" % i) for i in range(17)]
        self.locate_fails("INVALID_FIELD", *too_many, what="17 attributes")
        self.assertEqual(self.locate(*too_many[:16]), [], "16 attributes are allowed")
        self.locate_fails("INVALID_FIELD", Int("MAXIMUM_ITEMS", -1), tag, what="negative Maximum Items")
        self.locate_fails("INVALID_FIELD", Int("OFFSET_ITEMS", -1), tag, what="negative Offset Items")
        self.locate_fails("INVALID_FIELD", Int("MAXIMUM_ITEMS", 1), Int("MAXIMUM_ITEMS", 2), tag,
                          what="two Maximum Items")
        self.locate_fails("INVALID_FIELD", Int("STORAGE_STATUS_MASK", 4), tag, what="unknown storage bit")
        self.locate_fails("INVALID_FIELD", Enum("OBJECT_GROUP_MEMBER", 3), tag, what="unknown group member")
        # Re-key's Offset (0x420058) is not Locate's Offset Items (0x4200D4).
        self.locate_fails("INVALID_FIELD", Int("OFFSET", 1), tag, what="Offset instead of Offset Items")
        self.locate_fails("FEATURE_NOT_SUPPORTED",
                          K.attr("Usage Limits", S(AV, Long("USAGE_LIMITS_TOTAL", 10),
                                                   Enum("USAGE_LIMITS_UNIT", 0x02))),
                          what="Usage Limits")
        self.locate_fails("INVALID_FIELD", K.attr("Cryptographic Length", Text(AV, "256")),
                          what="a value of the wrong type")


if __name__ == "__main__":
    unittest.main()


class FreshPool(GatewayTestCase):
    """policy groups.<g>.fresh_pool: a Locate of the Fresh members of the pool's Object
    Group first tops the group's fresh keys there up to the pool's size (Client Registration
    Method Server Pre-Generated); Get makes one not fresh; each key is a Create by the
    group, under its own create rules, audited with the note "fresh pool"."""
    gw_name = "freshpool"
    POOL = "pool-%s" % uuid.uuid4().hex[:8]

    @staticmethod
    def gateway_with(name, pools):
        """A started gateway whose groups (by OU) get the fresh_pool lines given."""
        gw = Gateway(name)
        try:
            path = gw.path("policy.yaml")
            with open(path) as f:
                text = f.read()
            for ou, lines in pools.items():
                anchor = "    ou: %s\n" % ou
                assert anchor in text
                text = text.replace(anchor, anchor + lines, 1)
            with open(path, "w") as f:
                f.write(text)
            gw.start()
            return gw
        except BaseException:
            gw.cleanup()
            raise

    @classmethod
    def setUpClass(cls):
        cls.gw = cls.gateway_with(cls.gw_name, {
            "admin": "    fresh_pool: {object_group: %s, algorithm: AES, length: 256, "
                     "usage_masks: [Encrypt, Decrypt], size: 2}\n" % cls.POOL,
            # backup may hold one live object: its pool of 3 stops at that.
            "backup": "    fresh_pool: {object_group: %s, algorithm: AES, length: 256, "
                      "usage_masks: [Encrypt], size: 3}\n    limits: {max_live_objects: 1}\n" % cls.POOL})

    def locate(self, *payload, identity="admin"):
        resp = self.gw.request(identity, K.request(locate_item(*payload)))
        self.assertSuccess(resp.item, "Locate")
        return uids_of(resp.item)

    def members(self, fresh, group=None, identity="admin"):
        member = [Enum("OBJECT_GROUP_MEMBER", 0x01 if fresh else 0x02)] if fresh is not None else []
        return self.locate(*member, K.attr("Object Group", Text(AV, group or self.POOL)), identity=identity)

    def fresh_value(self, uid):
        resp = self.gw.request("admin", K.request(K.get_attributes(uid, ["Fresh"])))
        self.assertSuccess(resp.item, "Get Attributes Fresh")
        return [v.value for n, v in resp.item.attributes() if n == "Fresh"]

    def test_pool_is_topped_up_when_looked_at(self):
        self.assertEqual(self.members(None), [], "nothing is made before anyone looks")
        fresh = self.members(True)
        self.assertEqual(len(fresh), 2, "topped up to size")
        self.assertEqual(len(self.members(True)), 2, "looking again makes no more")
        self.assertEqual(self.fresh_value(fresh[0]), [True])
        got = self.gw.request("admin", K.request(K.get(fresh[0], K.batch_id()))).item
        self.assertSuccess(got, "Get of a pool key")
        self.assertEqual(len(K.symmetric_key_of(got.payload)[0]), 32)
        self.assertEqual(self.fresh_value(fresh[0]), [False])
        again = self.members(True)
        self.assertEqual(len(again), 2)
        self.assertNotIn(fresh[0], again, "a served key is no longer fresh")
        self.assertEqual(len(self.members(None)), 3, "one new key replaced the served one")
        notes = [r for r in audit_records(self.gw) if r.get("note") == "fresh pool"]
        self.assertEqual(len(notes), 3)
        self.assertTrue(all(r["operation"] == "Create" and r["group"] == "admin" for r in notes), notes)
        # Another Object Group, and a Locate that is not of Fresh members, make nothing.
        self.assertEqual(self.members(True, group="pool-other"), [])
        self.assertEqual(len(self.members(None)), 3)

    def test_pool_stops_at_the_groups_live_object_limit(self):
        self.assertEqual(len(self.members(True, identity="backup")), 1)
        self.assertEqual(len(self.members(True, identity="backup")), 1)
        self.assertIn("fresh_pool of group 'backup' is not made: its own policy refuses such a Create "
                      "(limits.max_live_objects)", self.gw.log_tail(200))

    def test_pool_must_pass_the_groups_own_rules(self):
        # backup may make AES keys only: an HMAC pool is refused by its own create rules.
        gw = self.gateway_with("freshpool-rules", {
            "backup": "    fresh_pool: {object_group: %s, algorithm: HMAC-SHA256, length: 256, "
                      "usage_masks: [MAC Generate], size: 2}\n" % self.POOL})
        try:
            resp = gw.request("backup", K.request(locate_item(Enum("OBJECT_GROUP_MEMBER", 0x01),
                                                              K.attr("Object Group", Text(AV, self.POOL)))))
            self.assertSuccess(resp.item, "Locate")
            self.assertEqual(uids_of(resp.item), [])
            self.assertIn("fresh_pool of group 'backup' is not made", gw.log_tail(200))
        finally:
            gw.cleanup()


def audit_records(gw):
    import json
    out = []
    with open(gw.path("audit.log"), "rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                out.append(json.loads(line))
    return out
