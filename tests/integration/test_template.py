"""KMIP 1.x Template objects (KMIP 1.4 sections 2.2.6 and 2.1.8), byte-level.

A Template is a named set of client-settable attributes; a Template-Attribute
names it by its Name and gets its attributes, the request's own winning. Each
behaviour is next to the refusal that proves it is checked: a name that names
nothing or no Template, a template out of the caller's scope, server-set
attributes in a template, a 2.x client, a template whose attributes the
policy would refuse.

Runs as `admin` (operations: all, scope: all) unless a test says otherwise;
`vsphere` may here also Register Templates (scope own, 256-bit AES only) and
`backup` may not Register them (create.object_types: [Symmetric Key]).
"""

import unittest

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase
from kg_ttlv import S, Int, Enum, Text, Bytes, DateTime, CRYPTOGRAPHIC_ALGORITHM

AES = CRYPTOGRAPHIC_ALGORITHM["AES"]
RSA = CRYPTOGRAPHIC_ALGORITHM["RSA"]
HMAC_SHA256 = CRYPTOGRAPHIC_ALGORITHM.get("HMAC_SHA256", 0x08)
USAGE_ENCRYPT, USAGE_DECRYPT, USAGE_SIGN, USAGE_VERIFY = 0x04, 0x08, 0x01, 0x02


def name_value(name):
    return [Text("NAME_VALUE", name), Enum("NAME_TYPE", 1)]


def name_attr(name):
    return K.attr("Name", S("ATTRIBUTE_VALUE", *name_value(name)))


def text_attr(name, value):
    return K.attr(name, Text("ATTRIBUTE_VALUE", value))


def alg(a):
    return K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", a))


def length(n):
    return K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", n))


def mask(m):
    return K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", m))


def ref(name):
    """A Template-Attribute Name naming a Template object."""
    return S("NAME", *name_value(name))


def register_template(body, own=()):
    """Register { Template, Template-Attribute `own`, Template { `body` } }."""
    return K.BatchItem("REGISTER", [Enum("OBJECT_TYPE", "TEMPLATE"), S("TEMPLATE_ATTRIBUTE", *own),
                                    S("TEMPLATE", *body)], K.batch_id())


def create(*template_attribute):
    return K.BatchItem("CREATE", [Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
                                  S("TEMPLATE_ATTRIBUTE", *template_attribute)], K.batch_id())


class Templates(GatewayTestCase):
    gw_name = "template"

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            path = cls.gw.path("policy.yaml")
            with open(path) as f:
                text = f.read()
            start = text.index("\n  vsphere:\n")
            old = "    create:\n      object_types: [Symmetric Key]\n"
            at = text.index(old, start)
            text = text[:at] + ("      - Register\n      - Destroy\n"
                                "    create:\n      object_types: [Symmetric Key, Template]\n") + \
                text[at + len(old):]
            with open(path, "w") as f:
                f.write(text)
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    # --- helpers ------------------------------------------------------------------------------
    def send(self, item, identity="admin", version=(1, 1)):
        return self.gw.request(identity, K.request(item, version=version)).item

    def template(self, name, body, identity="admin", version=(1, 1)):
        item = self.send(register_template(body, [name_attr(name)]), identity, version)
        self.assertSuccess(item, "Register Template %s" % name)
        return item.uid()

    def attrs(self, uid, names, identity="admin"):
        item = self.send(K.get_attributes(uid, names, K.batch_id()), identity)
        self.assertSuccess(item, "Get Attributes")
        out = {}
        for n, v in item.attributes():
            out.setdefault(n, []).append(v)
        return out

    def destroy(self, uid, identity="admin"):
        self.assertSuccess(self.send(K.destroy(uid, K.batch_id()), identity), "Destroy %s" % uid)

    # --- what a template gives ------------------------------------------------------------------
    def test_create_gets_template_attributes_request_wins(self):
        tuid = self.template("t-prec", [
            alg(AES), length(128), mask(USAGE_ENCRYPT),
            text_attr("Object Group", "Group1"), text_attr("Contact Information", "Joe"),
            text_attr("x-Purpose", "demonstration")])
        item = self.send(create(ref("t-prec"), length(256), text_attr("Contact Information", "Foo"),
                                text_attr("Object Group", "Group2"), name_attr("k-prec")))
        self.assertSuccess(item, "Create naming a template")
        got = self.attrs(item.uid(), ["Cryptographic Algorithm", "Cryptographic Length",
                                      "Cryptographic Usage Mask", "Object Group", "Contact Information",
                                      "x-Purpose", "Name"])
        self.assertEqual(got["Cryptographic Algorithm"][0].value, AES)
        self.assertEqual(got["Cryptographic Length"][0].value, 256, "the request's length wins")
        self.assertEqual(got["Cryptographic Usage Mask"][0].value, USAGE_ENCRYPT, "the template's mask")
        self.assertEqual(sorted(v.value for v in got["Object Group"]), ["Group1", "Group2"],
                         "a multi-valued attribute is the union")
        self.assertEqual([v.value for v in got["Contact Information"]], ["Foo"], "the request's wins")
        self.assertEqual([v.value for v in got["x-Purpose"]], ["demonstration"])
        names = [v.find("NAME_VALUE").value for v in got["Name"]]
        self.assertEqual(names, ["k-prec"], "the template's Name is its own")

        # The template itself: its attributes, found by Locate as a Template.
        tgot = self.attrs(tuid, ["Object Type", "Cryptographic Length", "x-Purpose"])
        self.assertEqual(tgot["Object Type"][0].value, 0x06)
        self.assertEqual(tgot["Cryptographic Length"][0].value, 128)
        loc = self.send(K.BatchItem("LOCATE", [K.attr("Object Type", Enum("ATTRIBUTE_VALUE", 0x06)),
                                               name_attr("t-prec")], K.batch_id()))
        self.assertSuccess(loc, "Locate the template")
        self.assertEqual([u.value for u in loc.payload.find_all("UNIQUE_IDENTIFIER")], [tuid])

        # Destroyed, it is gone: Get fails, and naming it is Item Not Found.
        self.destroy(tuid)
        self.assertFailure(self.send(K.get(tuid, K.batch_id())), "ITEM_NOT_FOUND", "Get of a destroyed template")
        self.assertFailure(self.send(create(ref("t-prec"), alg(AES), length(128))), "ITEM_NOT_FOUND",
                           "naming a destroyed template")

    def test_kmip_1_0_name_inside_the_template(self):
        # TC-312-10's form: the Name among the Template's own attributes.
        item = self.send(register_template([alg(AES), length(192), name_attr("t-10")]), version=(1, 0))
        self.assertSuccess(item, "Register Template (1.0)")
        key = self.send(create(ref("t-10")), version=(1, 0))
        self.assertSuccess(key, "Create naming a 1.0 template")
        self.assertEqual(self.attrs(key.uid(), ["Cryptographic Length"])["Cryptographic Length"][0].value, 192)

    def test_last_template_wins_among_templates(self):
        self.template("t-first", [alg(AES), length(128), text_attr("Contact Information", "first"),
                                  text_attr("Object Group", "A")])
        self.template("t-second", [length(192), text_attr("Contact Information", "second"),
                                   text_attr("Object Group", "B")])
        key = self.send(create(ref("t-first"), ref("t-second")))
        self.assertSuccess(key, "Create naming two templates")
        got = self.attrs(key.uid(), ["Cryptographic Length", "Contact Information", "Object Group"])
        self.assertEqual(got["Cryptographic Length"][0].value, 192)
        self.assertEqual([v.value for v in got["Contact Information"]], ["second"])
        self.assertEqual(sorted(v.value for v in got["Object Group"]), ["A", "B"])

    def test_register_and_key_pair_use_templates(self):
        self.template("t-reg", [text_attr("x-Origin", "template"), text_attr("Object Group", "imported")])
        item = self.send(K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE", ref("t-reg"), mask(USAGE_ENCRYPT)),
            S("SYMMETRIC_KEY", S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", "RAW"),
                                 S("KEY_VALUE", Bytes("KEY_MATERIAL", bytes(range(16)))),
                                 Enum("CRYPTOGRAPHIC_ALGORITHM", AES), Int("CRYPTOGRAPHIC_LENGTH", 128)))],
            K.batch_id()))
        self.assertSuccess(item, "Register naming a template")
        self.assertEqual(self.attrs(item.uid(), ["x-Origin"])["x-Origin"][0].value, "template")

        self.template("t-pair", [alg(RSA), length(2048), text_attr("Contact Information", "common")])
        self.template("t-priv", [text_attr("Contact Information", "private")])
        pair = self.send(K.BatchItem("CREATE_KEY_PAIR", [
            S("COMMON_TEMPLATE_ATTRIBUTE", ref("t-pair")),
            S("PRIVATE_KEY_TEMPLATE_ATTRIBUTE", ref("t-priv"), mask(USAGE_SIGN)),
            S("PUBLIC_KEY_TEMPLATE_ATTRIBUTE", mask(USAGE_VERIFY))], K.batch_id()))
        self.assertSuccess(pair, "Create Key Pair naming templates")
        priv = pair.payload.find("PRIVATE_KEY_UNIQUE_IDENTIFIER").value
        pub = pair.payload.find("PUBLIC_KEY_UNIQUE_IDENTIFIER").value
        self.assertEqual([v.value for v in self.attrs(priv, ["Contact Information"])["Contact Information"]], ["private"],
                         "the private key's template wins over the common one")
        self.assertEqual([v.value for v in self.attrs(pub, ["Contact Information"])["Contact Information"]], ["common"])

    def test_get_a_template_and_no_life_cycle(self):
        tuid = self.template("t-get", [alg(AES), length(128), text_attr("x-Note", "kept")])
        item = self.send(K.get(tuid, K.batch_id()))
        self.assertSuccess(item, "Get of a template")
        self.assertEqual(item.payload.find("OBJECT_TYPE").value, 0x06)
        body = item.payload.find("TEMPLATE")
        self.assertIsNotNone(body, "Get answered no Template structure")
        got = {}
        for a in body.find_all("ATTRIBUTE"):
            got.setdefault(a.find("ATTRIBUTE_NAME").value, []).append(a.find("ATTRIBUTE_VALUE"))
        self.assertEqual(got["Cryptographic Algorithm"][0].value, AES)
        self.assertEqual(got["Cryptographic Length"][0].value, 128)
        self.assertEqual(got["x-Note"][0].value, "kept")
        self.assertEqual(got["Name"][0].find("NAME_VALUE").value, "t-get")
        self.assertNotIn("Initial Date", got, "only what a client could set is the template's")
        self.assertFailure(self.send(K.get(tuid, K.batch_id(), [Enum("KEY_FORMAT_TYPE", "RAW")])),
                           "INVALID_FIELD", "a Key Format Type for a template")
        # A template has no life cycle (KMIP 1.4 Tables 346 and 347).
        self.assertFailure(self.send(K.activate(tuid, K.batch_id())), "ILLEGAL_OPERATION", "Activate a template")
        self.assertFailure(self.send(K.revoke(tuid, bid=K.batch_id())), "ILLEGAL_OPERATION", "Revoke a template")
        self.destroy(tuid)

    def test_template_dates_are_for_its_keys(self):
        # An Activation Date already reached makes the new key Active, never
        # the template (which could then be neither revoked nor destroyed).
        tuid = self.template("t-dated", [alg(AES), length(128), K.attr("Activation Date", DateTime("ATTRIBUTE_VALUE", 1000))])
        key = self.send(create(ref("t-dated")))
        self.assertSuccess(key, "Create naming a dated template")
        self.assertEqual(self.attrs(key.uid(), ["State"])["State"][0].value, 0x02, "the key is Active")
        self.assertEqual(self.attrs(tuid, ["State"])["State"][0].value, 0x01, "the template stays as it was")
        self.destroy(tuid)

    # --- refusals -----------------------------------------------------------------------------
    def test_name_that_names_nothing_or_no_template(self):
        self.assertFailure(self.send(create(ref("no-such-template"), alg(AES), length(128))),
                           "ITEM_NOT_FOUND", "a name naming nothing")
        key = self.send(create(alg(AES), length(128), name_attr("just-a-key")))
        self.assertSuccess(key, "Create a named key")
        self.assertFailure(self.send(create(ref("just-a-key"), alg(AES), length(128))),
                           "INVALID_FIELD", "a name naming a key, not a template")

    def test_template_holds_only_client_settable_attributes(self):
        for bad in (K.attr("State", Enum("ATTRIBUTE_VALUE", 1)),
                    text_attr("Unique Identifier", "0" * 36),
                    K.attr("Initial Date", DateTime("ATTRIBUTE_VALUE", 1)),
                    K.attr("Digest", S("ATTRIBUTE_VALUE", Enum("HASHING_ALGORITHM", 6),
                                       Bytes("DIGEST_VALUE", b"\0" * 32)))):
            item = self.send(register_template([alg(AES), bad], [name_attr("t-bad")]))
            self.assertEqual(item.status, K.RESULT_STATUS["OPERATION_FAILED"],
                             "a server-set attribute in a template: %s" % item.describe())
        self.assertFailure(self.send(create(ref("t-bad"), alg(AES), length(128))), "ITEM_NOT_FOUND",
                           "no refused template was stored")

    def test_template_shape_refusals(self):
        self.assertFailure(self.send(register_template([alg(AES)])), "MISSING_DATA", "a Template without a Name")
        self.assertFailure(self.send(register_template([], [name_attr("t-empty")])), "MISSING_DATA",
                           "a Template without attributes")
        self.template("t-base", [alg(AES)])
        self.assertFailure(self.send(register_template([length(128)], [ref("t-base"), name_attr("t-derived")])),
                           "INVALID_FIELD", "a Template naming a template")
        self.assertFailure(self.send(register_template([alg(AES), alg(AES)], [name_attr("t-twice")])),
                           "INVALID_FIELD", "a single-valued attribute twice")
        many = [ref("t-base")] * 5
        self.assertFailure(self.send(create(*(many + [length(128)]))), "INVALID_FIELD", "five templates named")
        four = self.send(create(*([ref("t-base")] * 4 + [length(128)])))
        self.assertSuccess(four, "four templates named")

    def test_kmip_2_has_no_templates(self):
        item = self.send(K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "TEMPLATE"),
            S("ATTRIBUTES", S("NAME", *name_value("t-20"))),
            S("TEMPLATE", alg(AES))], K.batch_id()), version=(2, 0))
        self.assertFailure(item, "INVALID_FIELD", "Register of a Template in KMIP 2.0")
        self.assertFailure(self.send(create(ref("t-20"), alg(AES), length(128))), "ITEM_NOT_FOUND",
                           "a 2.0 Register stored no template")

    def test_rekey_names_a_template(self):
        self.template("t-rekey", [text_attr("x-Generation", "second")])
        old = self.send(create(alg(AES), length(256), mask(USAGE_ENCRYPT)))
        self.assertSuccess(old, "Create")
        item = self.send(K.BatchItem("REKEY", [Text("UNIQUE_IDENTIFIER", old.uid()),
                                               S("TEMPLATE_ATTRIBUTE", ref("t-rekey"))], K.batch_id()))
        self.assertSuccess(item, "Re-key naming a template")
        self.assertEqual(self.attrs(item.uid(), ["x-Generation"])["x-Generation"][0].value, "second")
        self.assertFailure(self.send(K.BatchItem("REKEY", [Text("UNIQUE_IDENTIFIER", item.uid()),
                                                           S("TEMPLATE_ATTRIBUTE", ref("t-none"))], K.batch_id())),
                           "ITEM_NOT_FOUND", "Re-key naming no template")

    def test_bounds(self):
        groups = [text_attr("Object Group", "g%d" % i) for i in range(20)]
        self.template("t-20-groups", [alg(AES), length(128)] + groups)
        self.assertSuccess(self.send(create(ref("t-20-groups"))), "22 attributes in all")
        more = [text_attr("Object Group", "h%d" % i) for i in range(20)]
        self.assertFailure(self.send(create(ref("t-20-groups"), *more)), "INVALID_FIELD",
                           "a request and its template over 32 attributes")
        too_many = [alg(AES)] + [text_attr("Object Group", "x%d" % i) for i in range(33)]
        self.assertFailure(self.send(register_template(too_many, [name_attr("t-33")])), "INVALID_FIELD",
                           "a template of more than 32 attributes")

    def test_kmip_2_client_gets_no_template(self):
        tuid = self.template("t-for-2x", [alg(AES)])
        self.assertFailure(self.send(K.get(tuid, K.batch_id()), version=(2, 0)), "INVALID_FIELD",
                           "Get of a Template by a KMIP 2.0 client")
        self.assertSuccess(self.send(K.get(tuid, K.batch_id())), "the same Get in KMIP 1.1")

    # --- scope and policy ------------------------------------------------------------------------
    def test_scope_and_policy(self):
        # vsphere's template (scope own) is invisible to backup (scope own)...
        self.template("t-vs", [alg(AES), length(256), mask(USAGE_ENCRYPT | USAGE_DECRYPT),
                               text_attr("x-Owner", "vsphere")], identity="vsphere")
        self.assertFailure(self.send(create(ref("t-vs")), "backup"), "ITEM_NOT_FOUND",
                           "another group's template is out of scope")
        mine = self.send(create(ref("t-vs")), "vsphere")
        self.assertSuccess(mine, "vsphere names its own template")
        # ...but admin (scope: all) sees it.
        self.assertSuccess(self.send(create(ref("t-vs"))), "admin names a template in its scope")

        # What a template gives is judged as if the client had said it: vsphere
        # may make 256-bit AES keys only.
        self.template("t-vs-128", [alg(AES), length(128)], identity="vsphere")
        self.assertFailure(self.send(create(ref("t-vs-128"), mask(USAGE_ENCRYPT)), "vsphere"),
                           "PERMISSION_DENIED", "a template's length the policy refuses")
        # backup may Register keys but not Templates (create.object_types).
        self.assertFailure(self.send(register_template([alg(AES)], [name_attr("t-backup")]), "backup"),
                           "PERMISSION_DENIED", "Register of a Template without it in object_types")
        # The group's own template can be destroyed by it.
        tuid = self.template("t-vs-gone", [alg(AES)], identity="vsphere")
        self.destroy(tuid, "vsphere")


if __name__ == "__main__":
    unittest.main()
