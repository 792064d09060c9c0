"""kg_kmip - KMIP 1.x request builders and a response reader, on top of kg_ttlv.

Requests are built the way vCenter builds them (see
/work/shared/VSPHERE.md and kmip-vectors/vcenter-8.0.1): protocol 1.1 header,
Batch Count, and per item Operation, an optional 8-byte Unique Batch Item ID
and the Request Payload.
"""

import os
import struct

from kg_ttlv import (
    S, Int, Enum, Text, Bytes, T, TTLVError, STRUCTURE, ENUMERATION, TEXT_STRING,
    OPERATION, RESULT_STATUS, RESULT_REASON, CRYPTOGRAPHIC_ALGORITHM,
    decode, enum_name, tag_name,
)

VCENTER_VERSION = (1, 1)


def batch_id():
    """A fresh 8-byte Unique Batch Item ID (vCenter sends 8 bytes)."""
    return os.urandom(8)


def vcenter_batch_id(n):
    """vCenter's own form: 'QLKC' then a little-endian counter."""
    return b"QLKC" + struct.pack("<I", n)


def protocol_version(major, minor, tag="PROTOCOL_VERSION"):
    return S(tag, Int("PROTOCOL_VERSION_MAJOR", major), Int("PROTOCOL_VERSION_MINOR", minor))


def credential(username, password):
    return S("AUTHENTICATION",
             S("CREDENTIAL",
               Enum("CREDENTIAL_TYPE", "USERNAME_AND_PASSWORD"),
               S("CREDENTIAL_VALUE", Text("USERNAME", username), Text("PASSWORD", password))))


class BatchItem:
    def __init__(self, operation, payload=(), bid=None):
        self.operation = OPERATION[operation] if isinstance(operation, str) else operation
        self.payload = list(payload)
        self.bid = bid

    def item(self):
        return S("BATCH_ITEM",
                 Enum("OPERATION", self.operation),
                 Bytes("UNIQUE_BATCH_ITEM_ID", self.bid) if self.bid is not None else None,
                 S("REQUEST_PAYLOAD", *self.payload))


def request(items, version=VCENTER_VERSION, auth=None, extra_header=()):
    """A Request Message Item. `items`: BatchItem or list of them."""
    if isinstance(items, BatchItem):
        items = [items]
    hdr = S("REQUEST_HEADER",
            protocol_version(*version),
            auth,
            list(extra_header),
            Int("BATCH_COUNT", len(items)))
    return S("REQUEST_MESSAGE", hdr, [b.item() for b in items])


# --- payloads vCenter sends --------------------------------------------------------------
def attr(name, value_item):
    return S("ATTRIBUTE", Text("ATTRIBUTE_NAME", name), value_item)


def attr_value_text(v):
    return Text("ATTRIBUTE_VALUE", v)


def discover_versions(bid=None, versions=()):
    return BatchItem("DISCOVER_VERSIONS", [protocol_version(*v) for v in versions], bid)


def query_server_information(bid=None):
    return BatchItem("QUERY", [Enum("QUERY_FUNCTION", "QUERY_SERVER_INFORMATION")], bid)


def create_aes256(bid=None, usage_mask=12, extra_attributes=()):
    """vCenter's Create: Symmetric Key, AES, mask 12 (Encrypt|Decrypt), 256 bits."""
    return BatchItem("CREATE", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE",
          attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", CRYPTOGRAPHIC_ALGORITHM["AES"])),
          attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", usage_mask)),
          attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 256)),
          list(extra_attributes)),
    ], bid)


def get_attributes(uid, names, bid=None):
    if isinstance(names, str):
        names = [names]
    return BatchItem("GET_ATTRIBUTES",
                     [Text("UNIQUE_IDENTIFIER", uid)] + [Text("ATTRIBUTE_NAME", n) for n in names],
                     bid)


def get_attribute_list(uid, bid=None):
    return BatchItem("GET_ATTRIBUTE_LIST", [Text("UNIQUE_IDENTIFIER", uid)], bid)


def add_attribute(uid, name, value, bid=None):
    return BatchItem("ADD_ATTRIBUTE",
                     [Text("UNIQUE_IDENTIFIER", uid), attr(name, attr_value_text(value))], bid)


def get(uid, bid=None, extra=()):
    return BatchItem("GET", [Text("UNIQUE_IDENTIFIER", uid)] + list(extra), bid)


def activate(uid, bid=None):
    return BatchItem("ACTIVATE", [Text("UNIQUE_IDENTIFIER", uid)], bid)


def destroy(uid, bid=None):
    return BatchItem("DESTROY", [Text("UNIQUE_IDENTIFIER", uid)], bid)


def revoke(uid, reason="CESSATION_OF_OPERATION", bid=None):
    return BatchItem("REVOKE", [
        Text("UNIQUE_IDENTIFIER", uid),
        S("REVOCATION_REASON", Enum("REVOCATION_REASON_CODE", reason)),
    ], bid)


def locate_by_attribute(name, value_item, bid=None):
    return BatchItem("LOCATE", [attr(name, value_item)], bid)


# --- Secret Data, Opaque Object, Certificate (KMIP 1.4 sections 2.2.1, 2.2.7, 2.2.8) -------
SECRET_DATA_PASSWORD, SECRET_DATA_SEED = 0x01, 0x02
CERTIFICATE_X509, CERTIFICATE_PGP = 0x01, 0x02


def register_secret_data(material, data_type=SECRET_DATA_PASSWORD, fmt="RAW", bid=None, attributes=()):
    """Register of Secret Data { Secret Data Type, Key Block { fmt, Key Value { Key Material } } }."""
    return BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "SECRET_DATA"),
        S("TEMPLATE_ATTRIBUTE", list(attributes)),
        S("SECRET_DATA", Enum("SECRET_DATA_TYPE", data_type),
          S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", fmt), S("KEY_VALUE", Bytes("KEY_MATERIAL", material)))),
    ], bid)


def register_opaque(data_type, value, bid=None):
    """Register of an Opaque Object { Opaque Data Type, Opaque Data Value }."""
    return BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", 0x08),
        S("TEMPLATE_ATTRIBUTE"),
        S("OPAQUE_OBJECT", Enum("OPAQUE_DATA_TYPE", data_type), Bytes("OPAQUE_DATA_VALUE", value)),
    ], bid)


def register_certificate(der, cert_type=CERTIFICATE_X509, bid=None, attributes=()):
    """Register of a Certificate { Certificate Type, Certificate Value }."""
    return BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "CERTIFICATE"),
        S("TEMPLATE_ATTRIBUTE", list(attributes)),
        S("CERTIFICATE", Enum("CERTIFICATE_TYPE", cert_type), Bytes("CERTIFICATE_VALUE", der)),
    ], bid)


def secret_data_of(payload):
    """(Secret Data Type, Key Format Type, Key Material) of a Get payload's Secret Data, else None."""
    sd = payload.find("SECRET_DATA") if payload is not None else None
    if sd is None:
        return None
    material = sd.path("KEY_BLOCK", "KEY_VALUE", "KEY_MATERIAL")
    return (sd.find("SECRET_DATA_TYPE").value, sd.path("KEY_BLOCK", "KEY_FORMAT_TYPE").value,
            material.value if material is not None else None)


# --- responses ---------------------------------------------------------------------------
class ResponseItem:
    def __init__(self, node):
        self.node = node
        op = node.find("OPERATION")
        self.operation = op.value if op is not None else None
        b = node.find("UNIQUE_BATCH_ITEM_ID")
        self.bid = b.value if b is not None else None
        st = node.find("RESULT_STATUS")
        if st is None or st.type != ENUMERATION:
            raise TTLVError("batch item without a Result Status enumeration")
        self.status = st.value
        r = node.find("RESULT_REASON")
        self.reason = r.value if r is not None else None
        m = node.find("RESULT_MESSAGE")
        self.message = m.value if m is not None else None
        self.payload = node.find("RESPONSE_PAYLOAD")

    @property
    def ok(self):
        return self.status == RESULT_STATUS["SUCCESS"]

    def describe(self):
        parts = ["op=%s" % (enum_name(OPERATION, self.operation) if self.operation is not None
                             else None),
                 "status=%s" % enum_name(RESULT_STATUS, self.status)]
        if self.reason is not None:
            parts.append("reason=%s" % enum_name(RESULT_REASON, self.reason))
        if self.message:
            parts.append("message=%r" % self.message)
        return " ".join(parts)

    # payload helpers
    def uid(self):
        u = self.payload.find("UNIQUE_IDENTIFIER") if self.payload is not None else None
        return u.value if u is not None else None

    def attributes(self):
        """[(name, value Item)] of the payload's top-level Attribute structures."""
        if self.payload is None:
            return []
        out = []
        for a in self.payload.find_all("ATTRIBUTE"):
            n = a.find("ATTRIBUTE_NAME")
            out.append((n.value if n is not None else None, a.find("ATTRIBUTE_VALUE")))
        return out


class Response:
    def __init__(self, data):
        self.raw = bytes(data)
        self.msg = decode(self.raw)
        if self.msg.tag != T.RESPONSE_MESSAGE or self.msg.type != STRUCTURE:
            raise TTLVError("not a Response Message: %s" % tag_name(self.msg.tag))
        hdr = self.msg.find("RESPONSE_HEADER")
        if hdr is None:
            raise TTLVError("Response Message without Response Header")
        pv = hdr.find("PROTOCOL_VERSION")
        if pv is None:
            raise TTLVError("Response Header without Protocol Version")
        self.version = (pv.find("PROTOCOL_VERSION_MAJOR").value,
                        pv.find("PROTOCOL_VERSION_MINOR").value)
        ts = hdr.find("TIME_STAMP")
        self.time_stamp = ts.value if ts is not None else None
        bc = hdr.find("BATCH_COUNT")
        self.batch_count = bc.value if bc is not None else None
        self.items = [ResponseItem(n) for n in self.msg.find_all("BATCH_ITEM")]

    @property
    def item(self):
        """The single batch item (asserts there is exactly one)."""
        if len(self.items) != 1:
            raise AssertionError("expected 1 batch item, got %d" % len(self.items))
        return self.items[0]

    def describe(self):
        return "v%d.%d [%s]" % (self.version[0], self.version[1],
                                "; ".join(i.describe() for i in self.items))


def symmetric_key_of(payload):
    """(key bytes, format, algorithm, length) of a Get payload's Symmetric Key, else None."""
    sk = payload.find("SYMMETRIC_KEY") if payload is not None else None
    if sk is None:
        return None
    kb = sk.find("KEY_BLOCK")
    fmt = kb.find("KEY_FORMAT_TYPE")
    material = kb.path("KEY_VALUE", "KEY_MATERIAL")
    alg = kb.find("CRYPTOGRAPHIC_ALGORITHM")
    length = kb.find("CRYPTOGRAPHIC_LENGTH")
    return (material.value if material is not None else None,
            fmt.value if fmt is not None else None,
            alg.value if alg is not None else None,
            length.value if length is not None else None)


# --- comparing a response with a recorded one --------------------------------------------
# Values that must match the recording; anything else only needs the same tag and type.
_COMPARE_VALUES = {
    "OPERATION", "RESULT_STATUS", "UNIQUE_BATCH_ITEM_ID", "OBJECT_TYPE", "ATTRIBUTE_NAME",
    "KEY_FORMAT_TYPE", "CRYPTOGRAPHIC_ALGORITHM", "CRYPTOGRAPHIC_LENGTH", "BATCH_COUNT",
    "PROTOCOL_VERSION_MAJOR", "PROTOCOL_VERSION_MINOR",
}
# Fields a response may carry beyond what the recording shows (KMIP 1.4: Create's
# optional Template-Attribute, Key Block's Key Compression Type, Key Value's attributes,
# the header's optional fields, a Result Message on success).
_OPTIONAL_EXTRA = {
    "TEMPLATE_ATTRIBUTE", "KEY_COMPRESSION_TYPE", "ATTRIBUTE", "RESULT_MESSAGE",
    "CLIENT_CORRELATION_VALUE", "SERVER_CORRELATION_VALUE", "ATTESTATION_TYPE",
    "NONCE",
}


def _strip_artifacts(expected):
    # The dump tool printed an empty "OBJECT_TYPE:STRUCTURE(0)" inside SYMMETRIC_KEY; a
    # Symmetric Key object has no such field (KMIP 1.4 section 2.2.2), so ignore it.
    for node in expected.walk():
        if node.type == STRUCTURE:
            node.value = [c for c in node.value
                          if not (c.tag == T.OBJECT_TYPE and c.type == STRUCTURE and not c.value)]
    return expected


def compare_shape(expected, actual, uid=None, where=""):
    """Differences between a recorded response and ours, as a list of strings.

    Same tags and types in the same order, the values in _COMPARE_VALUES equal,
    Unique Identifier equal to `uid` when given, Attribute Values equal when
    they are text or enumerations (Add Attribute echoes, State), byte strings of
    the same length (Key Material). Extra optional fields are allowed, except an
    Attribute where the recording has none (a Get Attributes of an unset custom
    attribute must return none). Discover Versions lists are compared as "ours
    contains 1.1", since the recorded server offered other versions than we do."""
    expected = _strip_artifacts(expected)
    return _compare(expected, actual, uid, where or tag_name(expected.tag))


def _compare(exp, act, uid, where):
    probs = []
    name = tag_name(exp.tag)
    if exp.tag != act.tag or exp.type != act.type:
        return ["%s: expected %s/%d, got %s/%d" % (where, name, exp.type, tag_name(act.tag), act.type)]
    if exp.type != STRUCTURE:
        if name in _COMPARE_VALUES and exp.value != act.value:
            probs.append("%s: expected %r, got %r" % (where, exp.value, act.value))
        elif name == "UNIQUE_IDENTIFIER" and uid is not None and act.value != uid:
            probs.append("%s: expected UID %r, got %r" % (where, uid, act.value))
        elif name == "ATTRIBUTE_VALUE" and exp.type in (ENUMERATION, TEXT_STRING) \
                and exp.value != act.value:
            probs.append("%s: expected %r, got %r" % (where, exp.value, act.value))
        elif name == "KEY_MATERIAL" and len(exp.value) != len(act.value):
            probs.append("%s: expected %d bytes, got %d" % (where, len(exp.value), len(act.value)))
        return probs
    if name == "RESPONSE_PAYLOAD" and exp.find("PROTOCOL_VERSION") is not None:
        versions = [(v.find("PROTOCOL_VERSION_MAJOR").value, v.find("PROTOCOL_VERSION_MINOR").value)
                    for v in act.find_all("PROTOCOL_VERSION")]
        if (1, 1) not in versions:
            probs.append("%s: Discover Versions answer %r lacks 1.1" % (where, versions))
        if any(c.tag != T.PROTOCOL_VERSION for c in act.value):
            probs.append("%s: Discover Versions answer has other fields" % where)
        return probs
    # Walk both child lists in order; extra optional actual children are skipped.
    ai = 0
    acts = act.value
    for ec in exp.value:
        while ai < len(acts) and acts[ai].tag != ec.tag and \
                tag_name(acts[ai].tag) in _OPTIONAL_EXTRA and \
                not (tag_name(acts[ai].tag) == "ATTRIBUTE" and name == "RESPONSE_PAYLOAD"):
            ai += 1
        if ai >= len(acts):
            probs.append("%s: missing %s" % (where, tag_name(ec.tag)))
            continue
        probs.extend(_compare(ec, acts[ai], uid, "%s/%s" % (where, tag_name(ec.tag))))
        ai += 1
    for extra in acts[ai:]:
        en = tag_name(extra.tag)
        if en not in _OPTIONAL_EXTRA or (en == "ATTRIBUTE" and name == "RESPONSE_PAYLOAD"):
            probs.append("%s: unexpected %s" % (where, en))
    return probs
