"""Policy, keyed on the certificate OU (DESIGN.md "Policy", conf/policy.yaml): what
each group may see and do, how it is told no, what the audit log says about it,
reloads on SIGHUP, identity edge cases and the `kmipgw policy` commands.

One gateway serves the whole module (its devenv takes seconds to make): every
test writes the policy it needs to the gateway's policy.yaml and reloads it with
SIGHUP, waiting for the "policy-reload" audit event, so a test never depends on
the policy another test left behind. Its tls.client_ca is a bundle of the devenv
CA and a second CA made here, so a certificate of either CA connects and only
the policy's ca_sha256 tells them apart.

Client certificates are made here with openssl (EC P-256, quick to make), signed
by the devenv CA (DIR/pki/ca.crt + ca.key) unless a test says otherwise; each
one's OU selects the group of the same name below.
"""

import copy
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import unicodedata
import unittest
import uuid

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase, HarnessError, kmipgw_bin, server_kind
from kg_ttlv import Enum, Int, S, T, Text, CRYPTOGRAPHIC_ALGORITHM

REASON = K.RESULT_REASON
STATE_PRE_ACTIVE = 0x01
STATE_ACTIVE = 0x02
RELOAD_TIMEOUT = 10.0

# Every operation the gateway implements except Register (what a group that
# "does everything" to its own keys lists).
OPS = ("[Discover Versions, Query, Create, Get, Get Attributes, Get Attribute List, "
       "Add Attribute, Modify Attribute, Delete Attribute, Activate, Revoke, Destroy, Locate]")
LIGHT = "[Discover Versions, Query]"

UNICODE_OU = "S\u00e9curit\u00e9-\u03a9"                       # Sécurité-Ω, NFC
UNICODE_OU_NFD = unicodedata.normalize("NFD", UNICODE_OU)      # same text, decomposed
UNICODE_OU_CASE = "s\u00e9curit\u00e9-\u03a9"                  # other case
ESCAPED_OU = 'Storage, "EMEA" + R&D/x'                         # comma, quotes, plus, slash
# How RFC 2253 / OpenSSL print that OU: a gateway that compared printed subjects
# instead of the attribute value would match this group instead.
ESCAPED_OU_RFC2253 = 'Storage\\, \\"EMEA\\" \\+ R&D/x'

USERNAME, PASSWORD = "storage", "correct horse 42"
VC_USERNAME, VC_PASSWORD = "vcenter", "Vc-p4ss!"

# name -> (subject, signing CA). OUs are written unescaped here; subj() escapes.
CERTS = {
    "auditor": (["auditor"], "ca"),
    "aes256": (["aes256"], "ca"),
    "limited": (["limited"], "ca"),
    "rated": (["rated"], "ca"),
    "cred": (["cred"], "ca"),
    "credopt": (["credopt"], "ca"),
    "noexport": (["noexport"], "ca"),
    "pertype": (["pertype"], "ca"),
    "noou": ([], "ca"),
    "multi": (["not-a-group", "backup"], "ca"),
    "ambig": (["vsphere", "backup"], "ca"),
    "unicode": ([UNICODE_OU], "ca"),
    "unicode-nfd": ([UNICODE_OU_NFD], "ca"),
    "unicode-case": ([UNICODE_OU_CASE], "ca"),
    "escaped": ([ESCAPED_OU], "ca"),
    "bound-ca1": (["bound"], "ca"),
    "bound-ca2": (["bound"], "ca2"),
}

EXT = """[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, **kw)
    if r.returncode != 0:
        raise HarnessError("%s failed (%d): %s" % (cmd[:3], r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def subj(ous, cn):
    def esc(v):
        return v.replace("\\", "\\\\").replace("/", "\\/").replace("+", "\\+")
    return "/O=kmipgw dev" + "".join("/OU=" + esc(o) for o in ous) + "/CN=" + esc(cn)


def make_ca(pki, name, subject):
    run(["openssl", "req", "-new", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", os.path.join(pki, name + ".key"), "-subj", subject, "-days", "30",
         "-config", os.path.join(pki, "policy-test.cnf"), "-extensions", "ca_ext",
         "-out", os.path.join(pki, name + ".crt")])


def issue(pki, name, ous, ca):
    key, csr, crt = (os.path.join(pki, name + ext) for ext in (".key", ".csr", ".crt"))
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-utf8", "-subj", subj(ous, name), "-config", os.path.join(pki, "policy-test.cnf"),
         "-out", csr])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(pki, ca + ".crt"),
         "-CAkey", os.path.join(pki, ca + ".key"), "-set_serial", "0x7%s" % os.urandom(15).hex(),
         "-days", "30", "-sha256", "-extfile", os.path.join(pki, "policy-test.cnf"),
         "-extensions", "client_ext", "-out", crt])
    os.unlink(csr)


def ca_fingerprint(path):
    """As conf/policy.yaml says to take it: openssl x509 -fingerprint -sha256, after the '='."""
    out = run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path])
    return out.strip().split("=", 1)[1]


def password_hash(password):
    """sha512crypt ($6$), made with openssl passwd (crypt(3) format the policy takes)."""
    return run(["openssl", "passwd", "-6", "-stdin"], input=password.encode()).strip()


# --- policies ---------------------------------------------------------------------------
def base_groups(ca1_fp, cred_hash, vc_hash):
    """The module's policy: group name -> {key: YAML value text}, in file order."""
    return {
        "vsphere": {"ou": "vsphere", "operations": OPS, "export": "plaintext", "scope": "own"},
        "backup": {"ou": "backup", "operations": OPS, "export": "wrapped",
                   "wrapping_keys": "[own]", "scope": "own"},
        "admin": {"ou": "admin", "operations": "all", "export": "plaintext", "scope": "all",
                  "create": "{object_types: [Symmetric Key, Secret Data], algorithms: [AES]}"},
        "auditor": {"ou": "auditor", "operations": OPS, "export": "plaintext", "scope": "[backup]"},
        "noexport": {"ou": "noexport", "operations": "[Get, Get Attributes]",
                     "export": "{Symmetric Key: none, default: plaintext}", "scope": "all"},
        "pertype": {"ou": "pertype", "operations": "[Get, Get Attributes]",
                    "export": "{Symmetric Key: plaintext, Secret Data: none, default: none}",
                    "scope": "all"},
        "aes256": {"ou": "aes256", "operations": "[Create, Get Attributes]",
                   "create": "{lengths: [256], usage_masks: [Encrypt, Decrypt]}"},
        "limited": {"ou": "limited", "operations": "[Create, Destroy, Get Attributes]", "scope": "own",
                    "limits": "{max_live_objects: 3}"},
        "rated": {"ou": "rated", "operations": LIGHT, "limits": "{requests_per_second: 5}"},
        "cred": {"ou": "cred", "operations": LIGHT,
                 "credential": '{username: %s, password_hash: "%s", check: required}'
                               % (USERNAME, cred_hash)},
        "credopt": {"ou": "credopt", "operations": LIGHT,
                    "credential": '{username: %s, password_hash: "%s", check: when_present}'
                                  % (VC_USERNAME, vc_hash)},
        "bound": {"ou": "bound", "ca_sha256": '["%s"]' % ca1_fp, "operations": LIGHT},
        "unicode": {"ou": '"%s"' % UNICODE_OU, "operations": LIGHT},
        "escaped": {"ou": json.dumps(ESCAPED_OU), "operations": LIGHT},
        "escaped-rfc2253": {"ou": "'%s'" % ESCAPED_OU_RFC2253, "operations": LIGHT},
    }


def render(groups, top=()):
    lines = ["# written by tests/integration/test_policy.py", "version: 1"]
    lines += ["%s: %s" % kv for kv in top]
    lines.append("groups:")
    for name, keys in groups.items():
        lines.append("  %s:" % name)
        lines += ["    %s: %s" % kv for kv in keys.items()]
    return "\n".join(lines) + "\n"


def line_of(text, group, key):
    """1-based line of `key` inside group `group` of a rendered policy."""
    lines = text.splitlines()
    start = lines.index("  %s:" % group)
    for i in range(start + 1, len(lines)):
        if not lines[i].startswith("    "):
            break
        if lines[i].startswith("    %s:" % key):
            return i + 1
    raise AssertionError("no %s in group %s" % (key, group))


# --- requests the shared builders do not have ---------------------------------------------
def create(length=256, usage_mask=12, algorithm="AES"):
    return K.BatchItem("CREATE", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE",
          K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", CRYPTOGRAPHIC_ALGORITHM[algorithm])),
          K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", usage_mask)),
          K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", length))),
    ], K.batch_id())


def modify_attribute(uid, name, value):
    return K.BatchItem("MODIFY_ATTRIBUTE",
                       [Text("UNIQUE_IDENTIFIER", uid), K.attr(name, K.attr_value_text(value))], K.batch_id())


def delete_attribute(uid, name):
    return K.BatchItem("DELETE_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), Text("ATTRIBUTE_NAME", name)],
                       K.batch_id())


def locate(*attrs):
    return K.BatchItem("LOCATE", list(attrs), K.batch_id())


def get_wrapped(uid, wrapping_uid):
    return K.get(uid, K.batch_id(), extra=[
        S("KEY_WRAPPING_SPECIFICATION",
          Enum("WRAPPING_METHOD", "ENCRYPT"),
          S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", wrapping_uid)))])


def located(resp):
    p = resp.item.payload
    return [u.value for u in p.find_all("UNIQUE_IDENTIFIER")] if p is not None else []


def has_key_material(resp):
    return any(n.tag in (T.KEY_MATERIAL, T.SYMMETRIC_KEY, T.KEY_BLOCK) for n in resp.msg.walk())


# --- the module's gateway -------------------------------------------------------------------
class Env:
    gw = None
    groups = None
    base = None          # text of the module's policy
    named = None         # base + no_ou / ambiguous naming groups
    applied = None       # sha256 of the policy in force (last reload that said ok)
    ca1_fp = None


def sha256_text(text):
    return hashlib.sha256(text.encode()).hexdigest()


def setUpModule():
    if server_kind() != "kmipgw":
        raise unittest.SkipTest("the policy is kmipgw's")
    gw = Gateway("policy")
    try:
        pki = gw.path("pki")
        with open(os.path.join(pki, "policy-test.cnf"), "w") as f:
            f.write("[ req ]\ndistinguished_name = dn\n[ dn ]\n" + EXT)
        make_ca(pki, "ca2", "/O=kmipgw test/CN=second client CA")
        for name, (ous, ca) in CERTS.items():
            issue(pki, name, ous, ca)
        bundle = os.path.join(pki, "client-ca-bundle.crt")
        with open(bundle, "w") as out:
            for ca in ("ca.crt", "ca2.crt"):
                with open(os.path.join(pki, ca)) as f:
                    out.write(f.read())
        gw.set_config("tls", "client_ca", bundle)
        Env.ca1_fp = ca_fingerprint(gw.ca)
        Env.groups = base_groups(Env.ca1_fp, password_hash(PASSWORD), password_hash(VC_PASSWORD))
        Env.base = render(Env.groups)
        named = copy.deepcopy(Env.groups)
        named["anon"] = {"operations": LIGHT}      # no ou of its own: only through no_ou
        named["guest"] = {"ou": "guest", "operations": "[Discover Versions]"}
        # The fingerprint the other way the schema allows: no colons, lower case.
        named["bound"]["ca_sha256"] = "[%s]" % Env.ca1_fp.replace(":", "").lower()
        Env.named = render(named, top=(("no_ou", "anon"), ("ambiguous", "guest")))
        with open(policy_path(gw), "w") as f:
            f.write(Env.base)
        gw.start()
        Env.applied = sha256_text(Env.base)
    except BaseException:
        gw.cleanup()
        raise
    Env.gw = gw


def tearDownModule():
    if Env.gw is not None:
        Env.gw.cleanup()
        Env.gw = None


def policy_path(gw):
    p = gw.get_config("policy", "path") or "policy.yaml"
    return p if os.path.isabs(p) else gw.path(p)


def audit_records(gw):
    out = []
    try:
        with open(gw.path("audit.log"), "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def last_seq(gw):
    recs = audit_records(gw)
    return recs[-1]["seq"] if recs else 0


def sighup_and_wait(gw, text, timeout=RELOAD_TIMEOUT):
    """Write `text` as the policy, SIGHUP, wait for its policy-reload event. Returns it."""
    sha = sha256_text(text)
    if gw.pid is None:
        raise AssertionError("the gateway is not running; log:\n%s" % gw.log_tail())
    before = last_seq(gw)
    with open(policy_path(gw), "w") as f:
        f.write(text)
    os.kill(gw.pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in audit_records(gw):
            if rec["seq"] > before and rec.get("event") == "policy-reload" and \
                    rec.get("detail", "").startswith("sha256=%s " % sha):
                if rec["detail"].endswith(" ok"):
                    Env.applied = sha
                return rec
        time.sleep(0.02)
    raise AssertionError("no policy-reload event for sha256 %s within %.0fs; log:\n%s"
                         % (sha, timeout, gw.log_tail()))


class PolicyTestCase(GatewayTestCase):
    """Uses the module's gateway; each test says which policy it needs."""

    policy = "base"

    @classmethod
    def setUpClass(cls):
        cls.gw = Env.gw

    @classmethod
    def tearDownClass(cls):
        pass

    def tearDown(self):
        if not self.gw.alive():
            Env.applied = None  # restarted below: it loads whatever the file holds
        super().tearDown()

    def setUp(self):
        self.use_policy(getattr(Env, self.policy))

    def use_policy(self, text):
        if Env.applied != sha256_text(text):
            rec = sighup_and_wait(self.gw, text)
            self.assertTrue(rec["detail"].endswith(" ok"), "policy refused: %s\n%s"
                            % (rec["detail"], self.gw.log_tail()))

    # --- audit ---------------------------------------------------------------------------
    def audit_since(self, seq, **match):
        """Request records after `seq` whose fields equal `match`."""
        return [r for r in audit_records(self.gw)
                if r["seq"] > seq and "event" not in r and all(r.get(k) == v for k, v in match.items())]

    def one_audit(self, seq, **match):
        recs = self.audit_since(seq, **match)
        self.assertEqual(len(recs), 1, "expected one audit record with %r after seq %d, got %r"
                         % (match, seq, recs))
        rec = recs[0]
        for key in ("decision", "rule", "rule_line"):
            self.assertIn(key, rec, "audit record without %s: %r" % (key, rec))
        return rec

    @property
    def text(self):
        """The policy this test runs under."""
        return getattr(Env, self.policy)

    def assertRule(self, rec, rule, group=None, key=None, line=None):
        self.assertEqual(rec["rule"], rule, rec)
        if line is None and key is not None:
            line = line_of(self.text, group, key)
        if line is not None:
            self.assertEqual(rec["rule_line"], line, rec)

    # --- steps -----------------------------------------------------------------------------
    def new_key(self, identity):
        resp = self.gw.request(identity, create())
        self.assertSuccess(resp.item, "Create as %s" % identity)
        return resp.item.uid()

    def state_of(self, identity, uid):
        resp = self.gw.request(identity, K.get_attributes(uid, ["State", "x-Name"], K.batch_id()))
        self.assertSuccess(resp.item, "Get Attributes of %s as %s" % (uid, identity))
        attrs = resp.item.attributes()
        return ([v.value for n, v in attrs if n == "State"][0],
                sorted(v.value for n, v in attrs if n == "x-Name"))


# --- scope ------------------------------------------------------------------------------------
class Scope(PolicyTestCase):
    """Two groups with scope own cannot see each other's keys; out of scope is
    Item Not Found, exactly as an absent UID; Locate never lists them; scope all
    and a scope listing the other group can."""

    @staticmethod
    def every_operation(uid):
        return [
            ("Get", K.get(uid, K.batch_id())),
            ("Get Attributes", K.get_attributes(uid, "State", K.batch_id())),
            ("Get Attribute List", K.get_attribute_list(uid, K.batch_id())),
            ("Add Attribute", K.add_attribute(uid, "x-Name", "taken", K.batch_id())),
            ("Modify Attribute", modify_attribute(uid, "x-Name", "changed")),
            ("Delete Attribute", delete_attribute(uid, "x-Name")),
            ("Activate", K.activate(uid, K.batch_id())),
            ("Revoke", K.revoke(uid, bid=K.batch_id())),
            ("Destroy", K.destroy(uid, K.batch_id())),
        ]

    def make_pair(self):
        keys = {}
        for identity in ("vsphere", "backup"):
            uid = self.new_key(identity)
            resp = self.gw.request(identity, K.add_attribute(uid, "x-Name", "shared-tag", K.batch_id()))
            self.assertSuccess(resp.item, "Add Attribute to its own key as %s" % identity)
            keys[identity] = uid
        return keys

    def test_groups_cannot_touch_each_others_keys(self):
        keys = self.make_pair()
        absent = str(uuid.uuid4())
        for me, other in (("vsphere", "backup"), ("backup", "vsphere")):
            uid = keys[other]
            seq = last_seq(self.gw)
            with self.gw.connect(me) as c:
                ghosts = dict(self.every_operation(absent))
                for name, item in self.every_operation(uid):
                    resp = c.request(item)
                    what = "%s as %s on %s's key" % (name, me, other)
                    self.assertFailure(resp.item, "ITEM_NOT_FOUND", what)
                    self.assertFalse(has_key_material(resp), what)
                    # Indistinguishable from a UID that does not exist.
                    ghost = c.request(ghosts[name])
                    self.assertEqual((ghost.item.status, ghost.item.reason, ghost.item.message),
                                     (resp.item.status, resp.item.reason, resp.item.message),
                                     "%s: out of scope answers differently from absent" % what)
            denials = self.audit_since(seq, cn=me, uid=uid)
            self.assertEqual(len(denials), len(self.every_operation(uid)), denials)
            for rec in denials:
                self.assertEqual(rec["decision"], "deny: object belongs to a group outside the scope", rec)
                self.assertRule(rec, "groups.%s.scope" % me, me, "scope")
                self.assertEqual(rec["reason"], REASON["ITEM_NOT_FOUND"], rec)
            # The owner's key is untouched: still Pre-Active, its tag unchanged.
            self.assertEqual(self.state_of(other, uid), (STATE_PRE_ACTIVE, ["shared-tag"]))

    def test_out_of_scope_is_absent_whatever_else_is_wrong(self):
        # `limited` (scope own) may not Activate, Revoke or Get at all. On its own key
        # that is Permission Denied; on another group's key the answer must still be
        # that of a UID that does not exist, or it learns which UIDs exist.
        foreign, own, absent = self.new_key("vsphere"), self.new_key("limited"), str(uuid.uuid4())
        malformed_kws = [S("KEY_WRAPPING_SPECIFICATION",
                           S("ENCRYPTION_KEY_INFORMATION", Text("UNIQUE_IDENTIFIER", own)))]
        for name, make in (("Activate", lambda u: K.activate(u, K.batch_id())),
                           ("Revoke", lambda u: K.revoke(u, bid=K.batch_id())),
                           ("Get", lambda u: K.get(u, K.batch_id()))):
            resp = self.gw.request("limited", make(own))
            self.assertFailure(resp.item, "PERMISSION_DENIED", "%s on its own key" % name)
            ghost = self.gw.request("limited", make(absent)).item
            self.assertFailure(ghost, "ITEM_NOT_FOUND", "%s of an absent UID" % name)
            seq = last_seq(self.gw)
            item = self.gw.request("limited", make(foreign)).item
            self.assertEqual((item.status, item.reason, item.message),
                             (ghost.status, ghost.reason, ghost.message),
                             "%s (not allowed) on another group's key answers unlike an absent UID" % name)
            rec = self.one_audit(seq, cn="limited")
            self.assertEqual(rec["decision"], "deny: operation not allowed for the group", rec)
            self.assertEqual(rec["reason"], REASON["ITEM_NOT_FOUND"], rec)
        # backup may Get, but a request its handler would find malformed must not
        # tell a foreign key from an absent one either.
        ghost = self.gw.request("backup", K.get(absent, K.batch_id(), extra=malformed_kws)).item
        self.assertFailure(ghost, "ITEM_NOT_FOUND", "malformed Get of an absent UID")
        item = self.gw.request("backup", K.get(foreign, K.batch_id(), extra=malformed_kws)).item
        self.assertEqual((item.status, item.reason, item.message), (ghost.status, ghost.reason, ghost.message),
                         "malformed Get of another group's key answers unlike an absent UID")

    def test_locate_never_lists_other_groups_keys(self):
        keys = self.make_pair()
        by_tag = K.attr("x-Name", K.attr_value_text("shared-tag"))
        for me, other in (("vsphere", "backup"), ("backup", "vsphere")):
            for what, item in (("Locate of everything", locate()), ("Locate by x-Name", locate(by_tag))):
                resp = self.gw.request(me, item)
                self.assertSuccess(resp.item, "%s as %s" % (what, me))
                found = located(resp)
                self.assertIn(keys[me], found, "%s as %s misses its own key" % (what, me))
                self.assertNotIn(keys[other], found, "%s as %s lists %s's key" % (what, me, other))
        resp = self.gw.request("admin", locate(by_tag))
        self.assertSuccess(resp.item)
        self.assertTrue({keys["vsphere"], keys["backup"]} <= set(located(resp)),
                        "scope all: Locate misses keys")
        resp = self.gw.request("auditor", locate(by_tag))
        self.assertSuccess(resp.item)
        self.assertIn(keys["backup"], located(resp), "scope [backup]: Locate misses backup's key")
        self.assertNotIn(keys["vsphere"], located(resp), "scope [backup]: Locate lists vsphere's key")

    def run_everything(self, identity, uid):
        """Every operation on `uid` as `identity`, in an order the state machine allows."""
        with self.gw.connect(identity) as c:
            for name, item in self.every_operation(uid):
                resp = c.request(item)
                self.assertSuccess(resp.item, "%s as %s" % (name, identity))
                if name == "Get":
                    material = K.symmetric_key_of(resp.item.payload)[0]
                    self.assertEqual(len(material), 32)
                if name == "Modify Attribute":  # instance 0: the owner's tag
                    self.assertEqual(self.state_of(identity, uid), (STATE_PRE_ACTIVE, ["changed", "taken"]))
            self.assertEqual(self.state_of(identity, uid)[1], ["taken"], "after Delete Attribute")

    def test_scope_all_reaches_every_group(self):
        keys = self.make_pair()
        seq = last_seq(self.gw)
        for owner in ("vsphere", "backup"):
            self.run_everything("admin", keys[owner])
        for rec in self.audit_since(seq, cn="admin"):
            self.assertEqual(rec["decision"], "allow", rec)
            self.assertEqual(rec["result"], "success", rec)
            # An allow names the rule that granted it.
            want = "groups.admin.export" if rec["operation"] == "Get" else "groups.admin.operations"
            self.assertRule(rec, want, "admin", want.rsplit(".", 1)[1])

    def test_scope_listing_another_group(self):
        keys = self.make_pair()
        self.run_everything("auditor", keys["backup"])
        own = self.new_key("auditor")
        self.assertEqual(self.state_of("auditor", own)[0], STATE_PRE_ACTIVE)
        # Listing backup adds backup, nothing else; and backup does not see the auditor's keys.
        for me, uid in (("auditor", keys["vsphere"]), ("backup", own)):
            resp = self.gw.request(me, K.get_attributes(uid, "State", K.batch_id()))
            self.assertFailure(resp.item, "ITEM_NOT_FOUND", "%s on a key out of its scope" % me)


# --- export -----------------------------------------------------------------------------------
class Export(PolicyTestCase):

    def test_wrapped_group_gets_no_plaintext(self):
        uid = self.new_key("backup")
        plain = self.get_key("admin", uid)           # what must not leave for backup
        seq = last_seq(self.gw)
        resp = self.gw.request("backup", K.get(uid, K.batch_id()))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "plaintext Get as backup (export: wrapped)")
        self.assertFalse(has_key_material(resp), "key material in a refused Get")
        self.assertNotIn(plain, resp.raw, "the key's bytes are in the refused response")
        rec = self.one_audit(seq, cn="backup", operation="Get")
        self.assertEqual(rec["decision"], "deny: key material may not leave in this form")
        self.assertRule(rec, "groups.backup.export", "backup", "export")
        self.assertEqual(rec["reason"], REASON["PERMISSION_DENIED"])
        self.assertEqual(rec["group"], "backup")
        # Its metadata is its own to read.
        self.assertEqual(self.state_of("backup", uid)[0], STATE_PRE_ACTIVE)

    def test_wrapping_key_must_be_one_the_group_may_name(self):
        uid = self.new_key("backup")
        foreign = self.new_key("vsphere")
        seq = last_seq(self.gw)
        resp = self.gw.request("backup", get_wrapped(uid, foreign))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "wrapped Get under vsphere's key as backup")
        self.assertFalse(has_key_material(resp))
        rec = self.one_audit(seq, cn="backup", operation="Get")
        self.assertRule(rec, "groups.backup.wrapping_keys", "backup", "wrapping_keys")
        # Under its own key, policy allows it (what the gateway then does with it is
        # the Get handler's business, not this module's).
        own_kek = self.new_key("backup")
        seq = last_seq(self.gw)
        resp = self.gw.request("backup", get_wrapped(uid, own_kek))
        rec = self.one_audit(seq, cn="backup", operation="Get")
        self.assertEqual(rec["decision"], "allow", rec)
        self.assertRule(rec, "groups.backup.export", "backup", "export")
        if resp.item.ok:
            self.assertNotIn(self.get_key("admin", uid), resp.raw, "wrapped export carries the plain key")

    def test_export_per_object_type(self):
        uid = self.new_key("backup")
        seq = last_seq(self.gw)
        resp = self.gw.request("noexport", K.get(uid, K.batch_id()))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "Get with export {Symmetric Key: none}")
        self.assertFalse(has_key_material(resp))
        self.assertRule(self.one_audit(seq, cn="noexport"), "groups.noexport.export", "noexport", "export")
        resp = self.gw.request("noexport", K.get_attributes(uid, "State", K.batch_id()))
        self.assertSuccess(resp.item, "metadata with export none")
        resp = self.gw.request("pertype", K.get(uid, K.batch_id()))
        self.assertSuccess(resp.item, "Get with export {Symmetric Key: plaintext, default: none}")
        self.assertEqual(len(K.symmetric_key_of(resp.item.payload)[0]), 32)


    def test_secret_data_export_per_object_type(self):
        # Secret Data passes admin's create rule (algorithms: [AES]) by object type
        # alone: it has no algorithm. Its Get follows export's Secret Data entry.
        material = os.urandom(24)
        resp = self.gw.request("admin", K.request(K.register_secret_data(material, bid=K.batch_id())))
        self.assertSuccess(resp.item, "Register of Secret Data by admin")
        uid = resp.item.uid()
        seq = last_seq(self.gw)
        resp = self.gw.request("pertype", K.get(uid, K.batch_id()))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "Get with export {Secret Data: none}")
        self.assertFalse(has_key_material(resp), "key material in a refused Get")
        self.assertNotIn(material, resp.raw, "the secret's bytes are in the refused response")
        self.assertRule(self.one_audit(seq, cn="pertype"), "groups.pertype.export", "pertype", "export")
        resp = self.gw.request("backup", K.get(uid, K.batch_id()))
        self.assertFailure(resp.item, "ITEM_NOT_FOUND", "Secret Data outside backup's scope")
        resp = self.gw.request("noexport", K.get(uid, K.batch_id()))
        self.assertSuccess(resp.item, "Get with export {Symmetric Key: none, default: plaintext}")
        self.assertEqual(K.secret_data_of(resp.item.payload), (K.SECRET_DATA_PASSWORD, 0x01, material))


# --- create facts and limits --------------------------------------------------------------------
class CreateLimits(PolicyTestCase):

    def test_lengths(self):
        seq = last_seq(self.gw)
        resp = self.gw.request("aes256", create(length=128))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "AES-128 with create.lengths [256]")
        self.assertIsNone(resp.item.uid())
        rec = self.one_audit(seq, cn="aes256", operation="Create")
        self.assertEqual(rec["decision"], "deny: the group may not create or register such an object")
        self.assertRule(rec, "groups.aes256.create.lengths", "aes256", "create")
        self.assertFalse(rec.get("uid"), "a refused Create named a UID")
        uid = self.new_key("aes256")
        resp = self.gw.request("aes256", K.get_attributes(uid, "Cryptographic Length", K.batch_id()))
        self.assertSuccess(resp.item)
        self.assertEqual(dict(resp.item.attributes())["Cryptographic Length"].value, 256)

    def test_usage_masks(self):
        encrypt, decrypt, wrap = 0x04, 0x08, 0x10
        for mask, ok in ((encrypt | decrypt, True), (encrypt, True),
                         (encrypt | decrypt | wrap, False), (wrap, False)):
            seq = last_seq(self.gw)
            resp = self.gw.request("aes256", create(usage_mask=mask))
            if ok:
                self.assertSuccess(resp.item, "usage mask 0x%X within [Encrypt, Decrypt]" % mask)
            else:
                self.assertFailure(resp.item, "PERMISSION_DENIED", "usage mask 0x%X" % mask)
                self.assertRule(self.one_audit(seq, cn="aes256"), "groups.aes256.create.usage_masks",
                                "aes256", "create")

    def test_algorithm_default_is_aes_only(self):
        seq = last_seq(self.gw)
        resp = self.gw.request("aes256", create(length=256, algorithm="HMAC_SHA256"))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "HMAC key where create.algorithms defaults to AES")
        self.assertEqual(self.one_audit(seq, cn="aes256")["rule"], "groups.aes256.create.algorithms")

    def test_max_live_objects(self):
        live = [self.new_key("limited") for _ in range(3)]
        seq = last_seq(self.gw)
        resp = self.gw.request("limited", create())
        self.assertFailure(resp.item, "PERMISSION_DENIED", "4th key with max_live_objects 3")
        rec = self.one_audit(seq, cn="limited", operation="Create")
        self.assertEqual(rec["decision"], "deny: the group owns its maximum of live objects")
        self.assertRule(rec, "groups.limited.limits.max_live_objects", "limited", "limits")
        # Other groups are not counted against it, nor it against them.
        self.new_key("vsphere")
        resp = self.gw.request("limited", K.destroy(live.pop(), K.batch_id()))
        self.assertSuccess(resp.item, "Destroy of a live key")
        live.append(self.new_key("limited"))
        resp = self.gw.request("limited", create())
        self.assertFailure(resp.item, "PERMISSION_DENIED", "over the limit again")
        # One batch may not overrun it either: with 2 live, the 2nd of 2 Creates is refused.
        resp = self.gw.request("limited", K.destroy(live.pop(), K.batch_id()))
        self.assertSuccess(resp.item)
        resp = self.gw.request("limited", K.request([create(), create()], extra_header=[
            Enum("BATCH_ERROR_CONTINUATION_OPTION", 0x01)]))  # Continue
        self.assertEqual(len(resp.items), 2, resp.describe())
        self.assertSuccess(resp.items[0], "1st Create of the batch")
        self.assertFailure(resp.items[1], "PERMISSION_DENIED", "2nd Create of the batch")
        live.append(resp.items[0].uid())
        for uid in live:
            self.assertSuccess(self.gw.request("limited", K.destroy(uid, K.batch_id())).item)

    def test_max_live_objects_holds_under_concurrent_creates(self):
        results = []
        lock = threading.Lock()
        start = threading.Barrier(8)

        def one():
            try:
                with self.gw.connect("limited") as c:
                    start.wait(5)
                    resp = c.request(create())
                with lock:
                    results.append(resp.item)
            except BaseException as e:  # reported below
                with lock:
                    results.append(e)

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        errors = [r for r in results if isinstance(r, BaseException)]
        self.assertFalse(errors, errors)
        made = [r.uid() for r in results if r.ok]
        try:
            self.assertEqual(len(results), 8)
            for r in results:
                if not r.ok:
                    self.assertFailure(r, "PERMISSION_DENIED", "concurrent Create over the limit")
            self.assertLessEqual(len(made), 3, "8 concurrent Creates made %d keys with max_live_objects 3"
                                 % len(made))
        finally:
            for uid in made:
                self.gw.request("limited", K.destroy(uid, K.batch_id()))

    def test_requests_per_second(self):
        with self.gw.connect("rated") as c:
            outcomes = []
            t0 = time.monotonic()
            seq = last_seq(self.gw)
            for _ in range(20):
                outcomes.append(c.request(K.discover_versions(K.batch_id())).item)
            elapsed = time.monotonic() - t0
            ok = [i for i in outcomes if i.ok]
            denied = [i for i in outcomes if not i.ok]
            for item in denied:
                self.assertFailure(item, "PERMISSION_DENIED", "request over the rate")
            self.assertGreaterEqual(len(ok), 5, "a full bucket holds one second's worth (5)")
            self.assertLessEqual(len(ok), 5 + int(elapsed * 5) + 1,
                                 "%d of 20 passed in %.2fs at 5/s" % (len(ok), elapsed))
            self.assertTrue(denied, "no request denied in a burst of 20 at 5/s")
            recs = [r for r in self.audit_since(seq, cn="rated") if r["decision"] != "allow"]
            self.assertEqual(len(recs), len(denied))
            for rec in recs:
                self.assertEqual(rec["decision"], "deny: the group's request rate limit is exceeded")
                self.assertRule(rec, "groups.rated.limits.requests_per_second", "rated", "limits")
            for rec in self.audit_since(seq, cn="rated", decision="allow"):
                self.assertRule(rec, "groups.rated.operations", "rated", "operations")
            # The connection stays, and the bucket refills.
            time.sleep(1.1)
            for _ in range(3):
                self.assertSuccess(c.request(K.discover_versions(K.batch_id())).item, "after a second")
        # Other groups never shared the bucket.
        self.assertSuccess(self.gw.request("vsphere", K.discover_versions(K.batch_id())).item)


# --- credential ---------------------------------------------------------------------------------
class Credential(PolicyTestCase):

    def query(self, identity, auth=None):
        return self.gw.request(identity, K.request(K.query_server_information(K.batch_id()), auth=auth))

    def test_required(self):
        seq = last_seq(self.gw)
        self.assertFailure(self.query("cred").item, "AUTHENTICATION_NOT_SUCCESSFUL", "no credential")
        for user, password in ((USERNAME, "wrong"), ("someone", PASSWORD), (USERNAME, PASSWORD + " "),
                               (USERNAME, "")):
            resp = self.query("cred", K.credential(user, password))
            self.assertFailure(resp.item, "AUTHENTICATION_NOT_SUCCESSFUL", "credential %r/%r" % (user, password))
        recs = self.audit_since(seq, cn="cred")
        self.assertEqual(len(recs), 5)
        for rec in recs:
            self.assertEqual(rec["decision"], "deny: KMIP credential missing or wrong")
            self.assertRule(rec, "groups.cred.credential", "cred", "credential")
            self.assertEqual(rec["reason"], REASON["AUTHENTICATION_NOT_SUCCESSFUL"])
        for _ in range(2):  # the second one from the verification cache
            self.assertSuccess(self.query("cred", K.credential(USERNAME, PASSWORD)).item, "right password")
        # The right credential does not carry over to another group's certificate.
        resp = self.query("credopt", K.credential(USERNAME, PASSWORD))
        self.assertFailure(resp.item, "AUTHENTICATION_NOT_SUCCESSFUL", "cred's credential on credopt")

    def test_when_present(self):
        self.assertSuccess(self.query("credopt").item, "no credential with check: when_present")
        resp = self.query("credopt", K.credential(VC_USERNAME, "wrong"))
        self.assertFailure(resp.item, "AUTHENTICATION_NOT_SUCCESSFUL", "wrong password with when_present")
        self.assertSuccess(self.query("credopt", K.credential(VC_USERNAME, VC_PASSWORD)).item)
        # On one connection, as vCenter does: some requests with, some without.
        with self.gw.connect("credopt") as c:
            for auth in (None, K.credential(VC_USERNAME, VC_PASSWORD), None):
                self.assertSuccess(c.request(K.request(K.discover_versions(K.batch_id()), auth=auth)).item)

    def test_passwords_never_logged(self):
        self.query("cred", K.credential(USERNAME, PASSWORD))
        self.query("cred", K.credential(USERNAME, "wrong-Pa55word"))
        for path in (self.gw.path("audit.log"), self.gw.log_path):
            with open(path, "rb") as f:
                data = f.read()
            for secret in (PASSWORD, "wrong-Pa55word", VC_PASSWORD):
                self.assertNotIn(secret.encode(), data, "a password in %s" % path)


# --- reload -----------------------------------------------------------------------------------------
class Reload(PolicyTestCase):

    def test_reload_during_traffic(self):
        uid = self.new_key("vsphere")
        stop = threading.Event()
        background = {"ok": 0, "errors": []}

        def traffic():
            try:
                with self.gw.connect("admin") as c:
                    while not stop.is_set():
                        item = c.request(K.discover_versions(K.batch_id())).item
                        if item.ok:
                            background["ok"] += 1
                        else:
                            background["errors"].append(item.describe())
            except BaseException as e:
                background["errors"].append(repr(e))

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            with self.gw.connect("vsphere") as c:
                self.assertSuccess(c.request(K.get_attributes(uid, "State", K.batch_id())).item,
                                   "Get Attributes before the reload")
                groups = copy.deepcopy(Env.groups)
                groups["vsphere"]["operations"] = OPS.replace(" Get Attributes,", "")
                reduced = render(groups)
                rec = sighup_and_wait(self.gw, reduced)
                self.assertEqual(rec["detail"], "sha256=%s ok" % sha256_text(reduced))
                seq = last_seq(self.gw)
                resp = c.request(K.get_attributes(uid, "State", K.batch_id()))
                self.assertFailure(resp.item, "PERMISSION_DENIED", "Get Attributes after it was removed")
                rec = self.one_audit(seq, cn="vsphere")
                self.assertEqual(rec["decision"], "deny: operation not allowed for the group")
                self.assertEqual(rec["rule"], "groups.vsphere.operations")
                self.assertEqual(rec["rule_line"], line_of(reduced, "vsphere", "operations"))
                # Same connection, still open, still served.
                self.assertSuccess(c.request(K.get(uid, K.batch_id())).item, "Get on the same connection")
                sighup_and_wait(self.gw, Env.base)
                self.assertSuccess(c.request(K.get_attributes(uid, "State", K.batch_id())).item,
                                   "Get Attributes after the policy was restored")
        finally:
            stop.set()
            thread.join(15)
            self.use_policy(Env.base)
        self.assertFalse(background["errors"], "traffic during reloads: %s" % background["errors"][:3])
        self.assertGreater(background["ok"], 0)

    def assertRefused(self, text, line, column, message):
        uid = self.new_key("vsphere")
        seq = last_seq(self.gw)
        try:
            rec = sighup_and_wait(self.gw, text)
            self.assertRegex(rec["detail"], r"^sha256=%s refused: 1 errors?, previous policy kept$"
                             % sha256_text(text))
            self.assertEqual(Env.applied, sha256_text(Env.base))
            # The stderr log says where.
            want = "policy reload refused: %s:%d:%d: %s" % (policy_path(self.gw), line, column, message)
            self.assertIn(want, self.gw.log_text())
            # Decisions are those of the old policy.
            self.assertEqual(self.state_of("vsphere", uid)[0], STATE_PRE_ACTIVE)
            self.assertEqual(len(self.get_key("vsphere", uid)), 32)
            resp = self.gw.request("backup", K.get(uid, K.batch_id()))
            self.assertFailure(resp.item, "ITEM_NOT_FOUND", "backup on vsphere's key after a refused reload")
            resp = self.gw.request("unlisted", K.discover_versions(K.batch_id()))
            self.assertFailure(resp.item, "PERMISSION_DENIED", "unlisted after a refused reload")
            for rec in self.audit_since(seq, cn="vsphere"):
                self.assertEqual(rec["decision"], "allow")
        finally:
            sighup_and_wait(self.gw, Env.base)
        self.assertEqual(Env.applied, sha256_text(Env.base), "the good policy did not reload")

    def test_yaml_error_keeps_the_old_policy(self):
        text = Env.base.replace("    ou: vsphere\n", "    ou: vsphere\n\toperations: [Get]\n", 1)
        line = text.splitlines().index("\toperations: [Get]") + 1
        self.assertRefused(text, line, 1,
                           "YAML syntax error: found a tab character that violates indentation")

    def test_schema_error_keeps_the_old_policy(self):
        # Valid YAML that says too much: everything, for everyone.
        groups = copy.deepcopy(Env.groups)
        groups["backup"]["export"] = "plaintxt"
        groups["backup"]["scope"] = "all"
        text = render(groups)
        self.assertRefused(text, line_of(text, "backup", "export"), 13,
                           "export must be wrapped, plaintext or none, not 'plaintxt'")


# --- identity ------------------------------------------------------------------------------------
class Identity(PolicyTestCase):

    def dv(self, identity):
        seq = last_seq(self.gw)
        resp = self.gw.request(identity, K.discover_versions(K.batch_id()))
        return resp.item, self.one_audit(seq, cn=identity)

    def assertDenied(self, identity, rule, decision, line=0):
        item, rec = self.dv(identity)
        self.assertFailure(item, "PERMISSION_DENIED", identity)
        self.assertEqual(rec["decision"], decision, rec)
        self.assertEqual(rec["rule"], rule, rec)
        self.assertEqual(rec["rule_line"], line, rec)
        self.assertEqual(rec.get("group", ""), "", "a denied identity got a group: %r" % rec)
        return rec

    def assertAllowed(self, identity, group):
        item, rec = self.dv(identity)
        self.assertSuccess(item, identity)
        self.assertEqual(rec["group"], group, rec)
        self.assertEqual(rec["decision"], "allow")
        return rec

    def test_no_ou(self):
        rec = self.assertDenied("noou", "no_ou", "deny: no OU in certificate")
        self.assertEqual(rec.get("ou", []), [])

    def test_several_ous_one_matching(self):
        rec = self.assertAllowed("multi", "backup")
        self.assertEqual(rec["ou"], ["not-a-group", "backup"])
        uid = self.new_key("multi")
        self.assertEqual(self.state_of("backup", uid)[0], STATE_PRE_ACTIVE, "the key is backup's")

    def test_two_ous_two_groups(self):
        self.assertDenied("ambig", "ambiguous", "deny: the certificate's OUs match more than one group")
        resp = self.gw.request("ambig", K.get_attributes(self.new_key("backup"), "State", K.batch_id()))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "ambiguous identity on a backup key")

    def test_unicode_ou(self):
        rec = self.assertAllowed("unicode", "unicode")
        self.assertEqual(rec["ou"], [UNICODE_OU])
        # Byte for byte: no Unicode normalisation, no case folding.
        line = self.text.splitlines().index("groups:") + 1
        for identity, ou in (("unicode-nfd", UNICODE_OU_NFD), ("unicode-case", UNICODE_OU_CASE)):
            rec = self.assertDenied(identity, "groups", "deny: no group matches the certificate's OU", line)
            self.assertEqual(rec["ou"], [ou])

    def test_escaped_characters_in_the_subject(self):
        rec = self.assertAllowed("escaped", "escaped")
        self.assertEqual(rec["ou"], [ESCAPED_OU])

    def test_ou_bound_to_its_ca(self):
        self.assertAllowed("bound-ca1", "bound")
        self.assertDenied("bound-ca2", "groups.bound.ca_sha256",
                          "deny: the OU's group does not accept certificates of this CA",
                          line_of(self.text, "bound", "ca_sha256"))


class NamedIdentityCases(Identity):
    """The same certificates under a policy with `no_ou: anon` and `ambiguous: guest`."""

    policy = "named"

    def test_no_ou(self):
        rec = self.assertAllowed("noou", "anon")
        self.assertEqual(rec["rule"], "groups.anon.operations")
        self.assertSuccess(self.gw.request("noou", K.query_server_information(K.batch_id())).item)

    def test_two_ous_two_groups(self):
        self.assertAllowed("ambig", "guest")
        # guest may do only Discover Versions: the ambiguous holder gets no more.
        resp = self.gw.request("ambig", K.query_server_information(K.batch_id()))
        self.assertFailure(resp.item, "PERMISSION_DENIED", "Query as guest")
        resp = self.gw.request("ambig", K.get_attributes(self.new_key("backup"), "State", K.batch_id()))
        self.assertFailure(resp.item, "ITEM_NOT_FOUND", "guest (scope own) on a backup key")


# --- kmipgw policy check / explain ----------------------------------------------------------------
class Cli(PolicyTestCase):

    def kmipgw(self, *args):
        return subprocess.run([kmipgw_bin()] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=30, env=self.gw.env())

    def write(self, name, text):
        path = self.gw.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_check(self):
        root_conf = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "conf", "policy.yaml")
        r = self.kmipgw("policy", "check", root_conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.kmipgw("policy", "check", self.write("good.yaml", Env.base)).returncode, 0)
        groups = copy.deepcopy(Env.groups)
        groups["backup"]["export"] = "plaintxt"
        groups["vsphere"]["operatons"] = "[Get]"
        text = render(groups)
        path = self.write("bad.yaml", text)
        r = self.kmipgw("policy", "check", path)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertIn("%s:%d:5: " % (path, line_of(text, "vsphere", "operatons")), err)
        self.assertIn("%s:%d:13: export must be" % (path, line_of(text, "backup", "export")), err)
        path = self.write("bad-yaml.yaml", "version: 1\ngroups:\n  a:\n    ou: a\n    operations: [Get, Query\n"
                                           "  b:\n    ou: b\n")
        r = self.kmipgw("policy", "check", path)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr.decode(), r"%s:6:\d+: YAML syntax error" % path)

    def explain(self, *args):
        policy = self.write("explain.yaml", Env.base)
        r = self.kmipgw("policy", "explain", "--policy", policy, *args)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_explain(self):
        backup = ("--cert", self.gw.cert("backup"), "--ca", self.gw.ca)
        rc, out, err = self.explain(*backup, "--operation", "Get", "--owner", "backup")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("deny: key material may not leave in this form (rule groups.backup.export at ", out)
        self.assertIn("explain.yaml:%d)" % line_of(Env.base, "backup", "export"), out)
        rc, out, err = self.explain(*backup, "--operation", "Get Attributes", "--owner", "backup")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("allow (rule groups.backup.operations at ", out)
        rc, out, err = self.explain("--cert", self.gw.cert("admin"), "--ca", self.gw.ca,
                                    "--operation", "Get", "--owner", "backup")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("allow (rule groups.admin.export", out)
        rc, out, err = self.explain(*backup, "--operation", "Create", "--algorithm", "AES", "--length", "128")
        self.assertEqual(rc, 0, out + err)
        rc, out, err = self.explain("--cert", self.gw.cert("aes256"), "--ca", self.gw.ca, "--operation", "Create",
                                    "--algorithm", "AES", "--length", "128", "--usage-mask", "Encrypt,Decrypt")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("rule groups.aes256.create.lengths", out)
        # The CA binding, from the certificate's real issuer.
        rc, out, err = self.explain("--cert", self.gw.cert("bound-ca2"), "--ca", self.gw.path("pki", "ca2.crt"),
                                    "--operation", "Query")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("rule groups.bound.ca_sha256", out)
        rc, out, err = self.explain("--cert", self.gw.cert("bound-ca1"), "--ca", self.gw.ca, "--operation", "Query")
        self.assertEqual(rc, 0, out + err)
        # An object of the running gateway's store: explain agrees with the gateway.
        uid = self.new_key("vsphere")
        rc, out, err = self.explain(*backup, "--operation", "Get Attributes", "--uid", uid,
                                    "--store", self.gw.store_location())
        self.assertEqual(rc, 1, out + err)
        self.assertIn("rule groups.backup.scope", out)
        self.assertIn("owned by vsphere", out)
        resp = self.gw.request("backup", K.get_attributes(uid, "State", K.batch_id()))
        self.assertFailure(resp.item, "ITEM_NOT_FOUND")
        # Credentials.
        cred = ("--cert", self.gw.cert("cred"), "--ca", self.gw.ca, "--operation", "Query")
        self.assertEqual(self.explain(*cred)[0], 1)
        pw = self.write("pw.txt", PASSWORD + "\n")
        rc, out, err = self.explain(*cred, "--username", USERNAME, "--password-file", pw)
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    unittest.main()
