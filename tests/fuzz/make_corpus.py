#!/usr/bin/env python3
"""make_corpus.py - (re)write the seed corpora of tests/fuzz/corpus/.

    tests/fuzz/make_corpus.py [--vectors DIR]

DIR defaults to ../shared/kmip-vectors next to the project root. Written:

  ttlv/   spec-*.ttlv     the ten TTLV examples of KMIP 1.4 section 9.1.2
          vcenter-*.ttlv  the vCenter 8.0.1 requests (also in msg/)
  msg/    vcenter-*.ttlv  vcenter-8.0.1/*_request.txt, a decoded text dump,
                          encoded to binary TTLV
          oasis-*.ttlv    RequestMessages of the OASIS 1.x XML test cases
  policy/ seed-*.yaml     conf/policy.yaml and broken variants of it
  config/ seed-*.yaml     conf/gateway.yaml and variants of it

Only files with those prefixes are replaced; crash-* files (inputs that once
crashed a target, kept as regression seeds) and cov-* files (what libFuzzer
found, minimised; see README.md) are never touched. The output is
deterministic, so re-running it on unchanged inputs changes nothing.

Tag numbers come from gateway/kg_kmip_tag_names.c (the KMIP 1.4 names: the
XML element names are those names without spaces and hyphens, the vCenter
dumps spell them in UPPER_SNAKE). Enumeration values are the few tables of
KMIP 1.4 section 9.1.3.2 below; an XML message naming a value they lack is
skipped, not guessed.
"""

import argparse
import calendar
import ast
import glob
import hashlib
import os
import re
import struct
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

STRUCTURE, INTEGER, LONG_INTEGER, BIG_INTEGER, ENUMERATION = 0x01, 0x02, 0x03, 0x04, 0x05
BOOLEAN, TEXT_STRING, BYTE_STRING, DATE_TIME, INTERVAL = 0x06, 0x07, 0x08, 0x09, 0x0A

TYPE_BY_NAME = {
    "Structure": STRUCTURE, "Integer": INTEGER, "LongInteger": LONG_INTEGER,
    "BigInteger": BIG_INTEGER, "Enumeration": ENUMERATION, "Boolean": BOOLEAN,
    "TextString": TEXT_STRING, "ByteString": BYTE_STRING, "DateTime": DATE_TIME,
    "Interval": INTERVAL,
}

# A fixed "now" for $NOW placeholders: the corpus must not change run to run.
FIXED_NOW = 1700000000


class Skip(Exception):
    """A message this script cannot encode faithfully; it is left out."""


def norm(name):
    """'Get Attributes', 'GetAttributes', 'GET_ATTRIBUTES' -> 'getattributes'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# --- tags -------------------------------------------------------------------------------

def load_tags():
    path = os.path.join(ROOT, "gateway", "kg_kmip_tag_names.c")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tags = {}
    for value, name in re.findall(r'\{\s*(0x[0-9A-Fa-f]+)\s*,\s*"([^"]+)"\s*\}', text):
        tags[norm(name)] = int(value, 16)
    if len(tags) < 100:
        sys.exit("%s: found only %d tag names" % (path, len(tags)))
    return tags


# --- enumerations (KMIP 1.4 section 9.1.3.2), by normalized tag name ------------------

def _table(pairs):
    return {norm(k): v for k, v in pairs.items()}


OPERATIONS = _table({
    "Create": 0x01, "CreateKeyPair": 0x02, "Register": 0x03, "ReKey": 0x04, "DeriveKey": 0x05,
    "Certify": 0x06, "ReCertify": 0x07, "Locate": 0x08, "Check": 0x09, "Get": 0x0A,
    "GetAttributes": 0x0B, "GetAttributeList": 0x0C, "AddAttribute": 0x0D,
    "ModifyAttribute": 0x0E, "DeleteAttribute": 0x0F, "ObtainLease": 0x10,
    "GetUsageAllocation": 0x11, "Activate": 0x12, "Revoke": 0x13, "Destroy": 0x14,
    "Archive": 0x15, "Recover": 0x16, "Validate": 0x17, "Query": 0x18, "Cancel": 0x19,
    "Poll": 0x1A, "Notify": 0x1B, "Put": 0x1C, "ReKeyKeyPair": 0x1D,
    "DiscoverVersions": 0x1E, "Encrypt": 0x1F, "Decrypt": 0x20, "Sign": 0x21,
    "SignatureVerify": 0x22, "MAC": 0x23, "MACVerify": 0x24, "RNGRetrieve": 0x25,
    "RNGSeed": 0x26, "Hash": 0x27, "CreateSplitKey": 0x28, "JoinSplitKey": 0x29,
})

ENUMS = {
    "operation": OPERATIONS,
    "objecttype": _table({
        "Certificate": 1, "SymmetricKey": 2, "PublicKey": 3, "PrivateKey": 4, "SplitKey": 5,
        "Template": 6, "SecretData": 7, "OpaqueObject": 8, "PGPKey": 9}),
    "cryptographicalgorithm": _table({
        "DES": 1, "DES3": 2, "AES": 3, "RSA": 4, "DSA": 5, "ECDSA": 6, "HMAC_SHA1": 7,
        "HMAC_SHA224": 8, "HMAC_SHA256": 9, "HMAC_SHA384": 0x0A, "HMAC_SHA512": 0x0B,
        "SKIPJACK": 0x12}),
    "credentialtype": _table({"UsernameAndPassword": 1, "Device": 2, "Attestation": 3}),
    "keyformattype": _table({
        "Raw": 1, "Opaque": 2, "PKCS_1": 3, "PKCS_8": 4, "X_509": 5, "ECPrivateKey": 6,
        "TransparentSymmetricKey": 7}),
    "nametype": _table({"UninterpretedTextString": 1, "URI": 2}),
    "state": _table({
        "PreActive": 1, "Active": 2, "Deactivated": 3, "Compromised": 4, "Destroyed": 5,
        "DestroyedCompromised": 6}),
    "queryfunction": _table({
        "QueryOperations": 1, "QueryObjects": 2, "QueryServerInformation": 3,
        "QueryApplicationNamespaces": 4, "QueryExtensionList": 5, "QueryExtensionMap": 6,
        "QueryAttestationTypes": 7, "QueryRNGs": 8, "QueryValidations": 9,
        "QueryProfiles": 0x0A, "QueryCapabilities": 0x0B,
        "QueryClientRegistrationMethods": 0x0C}),
    "revocationreasoncode": _table({
        "Unspecified": 1, "KeyCompromise": 2, "CACompromise": 3, "AffiliationChanged": 4,
        "Superseded": 5, "CessationOfOperation": 6, "PrivilegeWithdrawn": 7}),
    "batcherrorcontinuationoption": _table({"Continue": 1, "Stop": 2, "Undo": 3}),
    "blockciphermode": _table({
        "CBC": 1, "ECB": 2, "PCBC": 3, "CFB": 4, "OFB": 5, "CTR": 6, "CMAC": 7, "CCM": 8,
        "GCM": 9, "CBC_MAC": 0x0A, "XTS": 0x0B, "AESKeyWrapPadding": 0x0C,
        "NISTKeyWrap": 0x0D}),
    "paddingmethod": _table({
        "None": 1, "OAEP": 2, "PKCS5": 3, "SSL3": 4, "Zeros": 5, "ANSIX9_23": 6,
        "ISO10126": 7, "PKCS1v1_5": 8, "X9_31": 9, "PSS": 0x0A}),
    "hashingalgorithm": _table({
        "MD2": 1, "MD4": 2, "MD5": 3, "SHA_1": 4, "SHA_224": 5, "SHA_256": 6, "SHA_384": 7,
        "SHA_512": 8}),
    "wrappingmethod": _table({
        "Encrypt": 1, "MACSign": 2, "EncryptThenMACSign": 3, "MACSignThenEncrypt": 4, "TR_31": 5}),
    "encodingoption": _table({"NoEncoding": 1, "TTLVEncoding": 2}),
    "secretdatatype": _table({"Password": 1, "Seed": 2}),
    "linktype": _table({
        "CertificateLink": 0x101, "PublicKeyLink": 0x102, "PrivateKeyLink": 0x103,
        "DerivationBaseObjectLink": 0x104, "DerivedKeyLink": 0x105,
        "ReplacementObjectLink": 0x106, "ReplacedObjectLink": 0x107, "ParentLink": 0x108,
        "ChildLink": 0x109, "PreviousLink": 0x10A, "NextLink": 0x10B}),
    "objectgroupmember": _table({"GroupMemberFresh": 1, "GroupMemberDefault": 2}),
    "keywraptype": _table({"NotWrapped": 1, "AsRegistered": 2}),
}

# Integers written as space-separated mask names.
MASKS = {
    "cryptographicusagemask": _table({
        "Sign": 0x1, "Verify": 0x2, "Encrypt": 0x4, "Decrypt": 0x8, "WrapKey": 0x10,
        "UnwrapKey": 0x20, "Export": 0x40, "MACGenerate": 0x80, "MACVerify": 0x100,
        "DeriveKey": 0x200, "ContentCommitment": 0x400, "KeyAgreement": 0x800,
        "CertificateSign": 0x1000, "CRLSign": 0x2000, "GenerateCryptogram": 0x4000,
        "ValidateCryptogram": 0x8000, "TranslateEncrypt": 0x10000,
        "TranslateDecrypt": 0x20000, "TranslateWrap": 0x40000, "TranslateUnwrap": 0x80000}),
    "storagestatusmask": _table({"OnlineStorage": 1, "ArchivalStorage": 2}),
}


def enum_value(table_name, value):
    if re.fullmatch(r"0x[0-9A-Fa-f]{1,8}", value):
        return int(value, 16)
    table = ENUMS.get(table_name)
    if table is None or norm(value) not in table:
        raise Skip("enumeration %s value %s" % (table_name, value))
    return table[norm(value)]


# --- TTLV encoding --------------------------------------------------------------------

def item(tag, typ, value):
    """One encoded item: header, value, zero padding to 8 bytes."""
    pad = (8 - len(value) % 8) % 8
    return struct.pack(">I", tag)[1:] + bytes([typ]) + struct.pack(">I", len(value)) + value + b"\0" * pad


def encode_scalar(typ, value):
    if typ == INTEGER:
        return struct.pack(">i", value)
    if typ in (ENUMERATION, INTERVAL):
        return struct.pack(">I", value)
    if typ in (LONG_INTEGER, DATE_TIME):
        return struct.pack(">q", value)
    if typ == BOOLEAN:
        return struct.pack(">Q", 1 if value else 0)
    if typ == BIG_INTEGER:
        n = max(8, (value.bit_length() + 8 + 63) // 64 * 8)
        return value.to_bytes(n, "big", signed=True)
    if typ in (TEXT_STRING, BYTE_STRING):
        return value
    raise Skip("type %d" % typ)


# --- vCenter text dumps ---------------------------------------------------------------

DUMP_LINE = re.compile(r"^( *)([A-Z0-9_]+):([A-Z_]+)\((\d+)\):(.*)$")
DUMP_TYPES = {
    "STRUCTURE": STRUCTURE, "INTEGER": INTEGER, "LONG_INTEGER": LONG_INTEGER,
    "BIG_INTEGER": BIG_INTEGER, "ENUMERATION": ENUMERATION, "BOOLEAN": BOOLEAN,
    "TEXT_STRING": TEXT_STRING, "BYTE_STRING": BYTE_STRING, "DATE_TIME": DATE_TIME,
    "INTERVAL": INTERVAL,
}


def dump_to_ttlv(path, tags):
    """Encode a vCenter dump; every Structure must come out at its recorded length."""
    nodes = []  # (depth, tag, type, declared length, raw value text)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = DUMP_LINE.match(line.rstrip("\n"))
            if m is None:
                sys.exit("%s:%d: cannot read %r" % (path, n, line))
            indent, name, typ, length, value = m.groups()
            if norm(name) not in tags:
                sys.exit("%s:%d: unknown tag %s" % (path, n, name))
            nodes.append((len(indent), tags[norm(name)], DUMP_TYPES[typ], int(length), value, name))

    def build(i, depth):
        """Encode nodes[i] (at `depth`); return (bytes, next index)."""
        d, tag, typ, length, value, name = nodes[i]
        assert d == depth, (path, i)
        if typ == STRUCTURE:
            body, j = b"", i + 1
            while j < len(nodes) and nodes[j][0] > depth:
                enc, j = build(j, depth + 1)
                body += enc
            if len(body) != length:
                sys.exit("%s: %s encodes to %d bytes, dump says %d" % (path, name, len(body), length))
            return item(tag, STRUCTURE, body), j
        if typ == ENUMERATION:
            raw = encode_scalar(typ, enum_value(norm(name), value) if not value.isdigit() else int(value))
        elif typ == TEXT_STRING:
            raw = ast.literal_eval(value[len("bytearray("):-1]) if value.startswith("bytearray(") else value.encode()
        elif typ == BYTE_STRING:
            raw = bytes.fromhex(ast.literal_eval(value).decode())
        elif typ == BOOLEAN:
            raw = encode_scalar(typ, value in ("True", "true", "1"))
        else:
            raw = encode_scalar(typ, int(value))
        if len(raw) != length:
            sys.exit("%s: %s is %d bytes, dump says %d" % (path, name, len(raw), length))
        return item(tag, typ, raw), i + 1

    out, j = build(0, 0)
    if j != len(nodes):
        sys.exit("%s: more than one top-level item" % path)
    return out


# The vCenter dumps name Attribute Value enumerations by value only.
ENUMS["attributevalue"] = dict(ENUMS["cryptographicalgorithm"])
ENUMS["credentialtype"][norm("USERNAME_AND_PASSWORD")] = 1


# --- OASIS XML ------------------------------------------------------------------------

def xml_time(value):
    m = re.fullmatch(r"\$NOW(?:([+-])(\d+))?", value)
    if m:
        delta = int(m.group(2) or 0)
        return FIXED_NOW + (delta if m.group(1) != "-" else -delta)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", value)
    if not m:
        raise Skip("date-time %s" % value)
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    zone = m.group(2)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        t -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return t


def xml_to_ttlv(elem, tags, attribute_name=None):
    tag_key = norm(elem.tag)
    if elem.get("tag") is not None:
        # <TTLV tag="0x540001" ...>: an item given by number (extensions).
        if not re.fullmatch(r"0x[0-9A-Fa-f]{6}", elem.get("tag")):
            raise Skip("tag %s" % elem.get("tag"))
        tag = int(elem.get("tag"), 16)
    elif tag_key in tags:
        tag = tags[tag_key]
    else:
        raise Skip("tag %s" % elem.tag)
    typ = TYPE_BY_NAME.get(elem.get("type", "Structure"))
    if typ is None:
        raise Skip("type %s" % elem.get("type"))
    if typ == STRUCTURE:
        body = b""
        name = None
        for child in elem:
            if norm(child.tag) == "attributename":
                name = child.get("value")
            body += xml_to_ttlv(child, tags, name)
        return item(tag, STRUCTURE, body)
    value = elem.get("value", "")
    if typ == ENUMERATION:
        table = norm(attribute_name) if tag_key == "attributevalue" and attribute_name else tag_key
        raw = encode_scalar(typ, enum_value(table, value))
    elif typ == INTEGER:
        if re.fullmatch(r"-?\d+", value):
            raw = encode_scalar(typ, int(value))
        elif re.fullmatch(r"0x[0-9A-Fa-f]+", value):
            raw = struct.pack(">I", int(value, 16))
        else:
            mask_table = norm(attribute_name) if tag_key == "attributevalue" and attribute_name else tag_key
            names = MASKS.get(mask_table)
            if names is None or any(norm(w) not in names for w in value.split()):
                raise Skip("mask %s" % value)
            raw = encode_scalar(typ, sum(names[norm(w)] for w in value.split()))
    elif typ in (LONG_INTEGER, INTERVAL):
        if not re.fullmatch(r"-?\d+", value):
            raise Skip("number %s" % value)
        raw = encode_scalar(typ, int(value))
    elif typ == BIG_INTEGER:
        if not re.fullmatch(r"(0x)?[0-9A-Fa-f]+", value):
            raise Skip("big integer %s" % value)
        raw = encode_scalar(typ, int(value, 16))
    elif typ == BOOLEAN:
        raw = encode_scalar(typ, value.lower() == "true")
    elif typ == TEXT_STRING:
        raw = value.encode("utf-8")
    elif typ == BYTE_STRING:
        if not re.fullmatch(r"([0-9A-Fa-f]{2})*", value):
            raise Skip("byte string %s" % value[:20])
        raw = bytes.fromhex(value)
    else:  # DATE_TIME
        raw = encode_scalar(typ, xml_time(value))
    return item(tag, typ, raw)


def xml_requests(path, tags):
    """The encodable RequestMessages of one file, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # The kmip-go copies hold "# TIME n" lines between messages.
    text = re.sub(r"(?m)^\s*# TIME.*$", "", text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return []
    out = []
    for msg in root.iter("RequestMessage"):
        try:
            out.append(xml_to_ttlv(msg, tags))
        except Skip:
            continue
    return out


# --- YAML seeds -----------------------------------------------------------------------

def strip_comments(text):
    lines = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        lines.append(re.sub(r"\s+#.*$", "", line))
    return "\n".join(lines) + "\n"


def uncomment_example(text):
    """conf/policy.yaml ends with a commented-out group using every key: enable it."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("  # example:"):
            inside = True
        if inside and line.startswith("  #"):
            line = "  " + (line[4:] if line.startswith("  # ") else line[3:])
        out.append(line)
    return "\n".join(out) + "\n"


# A sha512crypt hash (openssl passwd -6 -salt kgfuzzsalt secret): loads fast,
# unlike yescrypt, and is a real hash for the credential checks.
SHA512_HASH = "$6$kgfuzzsalt$LHxWkQaMhXaPt2iAa4iVMXSmzLjErITjewXEqzMbBu1yo9ahyiVH9V.sn/EB2IYg.8dUBVEZsGMchEIil9RXA/"
CA_FP = ":".join(["3F"] * 32)


def policy_seeds():
    with open(os.path.join(ROOT, "conf", "policy.yaml"), encoding="utf-8") as f:
        full = f.read()
    bare = strip_comments(full)
    example = strip_comments(uncomment_example(full))
    # The example's placeholders made real, so the whole group can load.
    every = example.replace('"3F:2A:...:9C"', '"%s"' % CA_FP).replace('"$y$j9T$...."', '"%s"' % SHA512_HASH)
    seeds = {
        "conf": full,
        "bare": bare,
        "every-key": every,
        "example-as-shipped": example,
        "deny-all": "version: 1\ngroups: {}\n",
        "flow": "{version: 1, groups: {a: {ou: x, operations: [Get, Query], export: none, scope: all}}}\n",
        "empty": "",
        "empty-groups": "version: 1\ngroups:\n",
        "version-2": bare.replace("version: 1", "version: 2"),
        "tab": bare.replace("    ou: vsphere", "\tou: vsphere"),
        "unknown-op": bare.replace("- Get Attributes", "- get_attributes"),
        "bad-op": bare.replace("- Query", "- Frobnicate"),
        "dup-op": bare.replace("- Query", "- Query\n      - Query"),
        "all-in-list": bare.replace("- Query", "- all"),
        "dup-group": bare + "  vsphere:\n    ou: other\n",
        "dup-ou": bare.replace("ou: backup", "ou: vsphere"),
        "no-ou": bare.replace("    ou: admin\n", ""),
        "no-ou-group": bare.replace("no_ou: deny", "no_ou: admin").replace("    ou: admin\n", ""),
        "ambiguous-group": bare.replace("ambiguous: deny", "ambiguous: backup"),
        "ambiguous-unknown": bare.replace("ambiguous: deny", "ambiguous: nobody"),
        "bad-name": bare.replace("  backup:", "  \"back up!\":"),
        "bad-export": bare.replace("export: wrapped", "export: maybe"),
        "export-types": bare.replace("export: wrapped", "export:\n      Symmetric Key: wrapped\n"
                                     "      Secret Data: none\n      Opaque Object: plaintext\n      default: none"),
        "export-bad-type": bare.replace("export: wrapped", "export: {Frob: none, default: sometimes}"),
        "bad-scope": bare.replace("scope: all", "scope: some"),
        "scope-list": bare.replace("scope: all", "scope: [vsphere, backup]"),
        "scope-unknown": bare.replace("scope: all", "scope: [vsphere, nobody, admin]"),
        "wrapping-keys": bare.replace("wrapping_keys: [own]",
                                      "wrapping_keys: [own, in_scope, 1f0c6a4e-8d8b-4a8e-9c55-2b3f6d7e8a90, \"\"]"),
        "create-bad": bare.replace("lengths: [128, 192, 256]", "lengths: [0, 128, 128, 65537, x]")
                          .replace("algorithms: [AES]", "algorithms: [AES, Rot13, HMAC-SHA256]"),
        "create-many": bare.replace("lengths: [128, 192, 256]",
                                    "lengths: [%s]" % ", ".join(str(8 * i) for i in range(1, 20))),
        "ca-bad": bare.replace("    ou: admin\n", "    ou: admin\n    ca_sha256: [\"SHA256 Fingerprint=%s\", 12, []]\n"
                               % CA_FP),
        "credential-bad": bare.replace("    ou: admin\n", "    ou: admin\n    credential:\n      username: \"\"\n"
                                       "      password_hash: plain\n      check: sometimes\n"),
        "limits-bad": bare.replace("    ou: admin\n", "    ou: admin\n    limits: {max_live_objects: -1, "
                                   "requests_per_second: 1000001, burst: 3}\n"),
        "unknown-key": bare.replace("scope: own", "scope: own\n    colour: red", 1),
        "alias": "version: &v 1\ngroups:\n  a:\n    ou: *v\n",
        "two-docs": "version: 1\ngroups: {}\n---\nversion: 1\n",
        "deep": "version: 1\ngroups: " + "[" * 40 + "]" * 40 + "\n",
        "control-ou": "version: 1\ngroups:\n  a:\n    ou: \"x\\u0007y\\u0085\"\n    operations: all\n",
        "nul-op": "version: 1\ngroups:\n  a:\n    ou: a\n    operations: [\"Get\\0\"]\n",
        # Lone surrogates become raw bytes (surrogateescape): invalid UTF-8.
        "bad-utf8": "version: 1\ngroups:\n  a:\n    ou: \"\udcc3(\"\n",
        "complex-key": "version: 1\ngroups:\n  ? [a, b]\n  : {ou: x}\n",
        "ops-scalar": "version: 1\ngroups:\n  a: {ou: a, operations: Get}\n",
    }
    return seeds


def config_seeds():
    with open(os.path.join(ROOT, "conf", "gateway.yaml"), encoding="utf-8") as f:
        full = f.read()
    minimal = (
        "tls:\n  certificate: pki/server.crt\n  key: pki/server.key\n  client_ca: pki/ca.crt\n"
        "hsm:\n  module: /usr/lib/softhsm/libsofthsm2.so\n  token_label: kmipgw\n  pin_env: KMIPGW_PIN\n"
        "store:\n  path: kmipgw.db\npolicy:\n  path: policy.yaml\n"
    )
    complete = minimal + (
        "listen:\n  address: \"::1\"\n  port: 5696\naudit:\n  path: /var/log/kmipgw/audit.log\n"
        "limits:\n  max_message_bytes: 65536\n  max_depth: 16\n  max_items: 4096\n  max_batch_items: 64\n"
        "  workers: 16\n  max_pending: 256\n  handshake_timeout_ms: 10000\n  idle_timeout_ms: 30000\n"
    )
    seeds = {
        "conf": full,
        "bare": strip_comments(full),
        "minimal": minimal,
        "complete": complete,
        "flow": "{tls: {certificate: a, key: b, client_ca: c}, hsm: {module: m, token_label: t, pin_file: p},"
                " store: {path: s}, policy: {path: p}}\n",
        "empty": "",
        "scalar": "just a string\n",
        "port-range": complete.replace("port: 5696", "port: 65536"),
        "port-digits": complete.replace("port: 5696", "port: 0x1640"),
        "huge-number": complete.replace("max_items: 4096", "max_items: 99999999999999999999999"),
        "unknown-key": complete.replace("port: 5696", "port: 5696\n  backlog: 5"),
        "unknown-section": complete + "extra:\n  a: 1\n",
        "dup-key": complete.replace("port: 5696", "port: 5696\n  port: 5697"),
        "dup-section": complete + "store:\n  path: again.db\n",
        "missing": minimal.replace("  token_label: kmipgw\n", ""),
        "no-pin": minimal.replace("  pin_env: KMIPGW_PIN\n", ""),
        "bad-env": minimal.replace("pin_env: KMIPGW_PIN", "pin_env: 9PIN"),
        "long-label": minimal.replace("token_label: kmipgw", "token_label: " + "x" * 33),
        "nul": minimal.replace("path: kmipgw.db", "path: \"kmip\\0gw.db\""),
        "control": minimal.replace("path: kmipgw.db", "path: \"a\\u001b[31mb\""),
        "address": complete.replace("\"::1\"", "\"http://x\""),
        "sequence": minimal.replace("path: kmipgw.db", "path: [a, b]"),
        "alias": minimal.replace("path: kmipgw.db", "path: &p kmipgw.db").replace("path: policy.yaml", "path: *p"),
        "two-docs": minimal + "---\nstore: {path: x}\n",
        "tab": minimal.replace("  path: kmipgw.db", "\tpath: kmipgw.db"),
        "bad-utf8": minimal.replace("kmipgw.db", "\udcff\udcfe.db"),
        "relative-root": minimal.replace("path: kmipgw.db", "path: ../../../../../../x"),
    }
    return seeds


# --- output ---------------------------------------------------------------------------

def replace_seeds(directory, prefixes, files):
    """Write `files` (name -> bytes) into `directory`, removing stale seeds of `prefixes`."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith(prefixes) and name not in files:
            os.unlink(os.path.join(directory, name))
    for name, data in sorted(files.items()):
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "wb") as f:
            f.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", default=os.path.join(os.path.dirname(ROOT), "shared", "kmip-vectors"))
    parser.add_argument("--max-oasis", type=int, default=200,
                        help="at most this many distinct OASIS requests (default 200)")
    parser.add_argument("--per-file", type=int, default=2,
                        help="at most this many requests of one test case file (default 2)")
    args = parser.parse_args()
    tags = load_tags()

    # Section 9.1.2 examples: "description<TAB>hex".
    spec = {}
    path = os.path.join(args.vectors, "ttlv-spec-examples", "kmip-spec-v1.4-sec9.1.2-ttlv-examples.hex")
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or "\t" not in line:
                continue
            desc, hexdata = line.rstrip("\n").split("\t", 1)
            data = bytes.fromhex(re.sub(r"\s", "", hexdata))
            slug = re.sub(r"[^a-z0-9]+", "-", desc.lower()).strip("-")[:40]
            spec["spec-%02d-%s.ttlv" % (len(spec) + 1, slug)] = data
    if len(spec) != 10:
        sys.exit("%s: expected ten examples, found %d" % (path, len(spec)))

    vcenter = {}
    for path in sorted(glob.glob(os.path.join(args.vectors, "vcenter-8.0.1", "*_request.txt"))):
        name = os.path.basename(path)[: -len("_request.txt")].replace("example_", "")
        vcenter["vcenter-%s.ttlv" % name] = dump_to_ttlv(path, tags)
    if not vcenter:
        sys.exit("no vCenter dumps under %s" % args.vectors)

    # OASIS 1.x XML test cases; 2.x messages use other tags and are not requests we decode.
    oasis, seen, skipped = {}, set(), 0
    sources = []
    # Newest first: the cap then keeps the most varied cases (1.0 repeats 1.1).
    for sub in ("oasis-tc-1.x/v1.1", "oasis/testcases-1.4", "oasis/testcases-1.3", "oasis/v1.4", "oasis/v1.3",
                "oasis-tc-1.x/v1.0", "oasis/v1.0"):
        sources += sorted(glob.glob(os.path.join(args.vectors, sub, "**", "*.xml"), recursive=True))
    for path in sources:
        base = re.sub(r"[^A-Za-z0-9]+", "-", os.path.splitext(os.path.basename(path))[0])[:48]
        taken = 0
        for n, data in enumerate(xml_requests(path, tags)):
            digest = hashlib.sha1(data).digest()
            if digest in seen or len(data) > 16384:
                continue
            if len(oasis) >= args.max_oasis or taken >= args.per_file:
                skipped += 1
                continue
            seen.add(digest)
            taken += 1
            oasis["oasis-%s-%d.ttlv" % (base, n)] = data

    replace_seeds(os.path.join(CORPUS, "ttlv"), ("spec-", "vcenter-"), {**spec, **vcenter})
    replace_seeds(os.path.join(CORPUS, "msg"), ("vcenter-", "oasis-"), {**vcenter, **oasis})
    replace_seeds(os.path.join(CORPUS, "policy"), ("seed-",),
                  {"seed-%s.yaml" % k: v.encode("utf-8", "surrogateescape") for k, v in policy_seeds().items()})
    replace_seeds(os.path.join(CORPUS, "config"), ("seed-",),
                  {"seed-%s.yaml" % k: v.encode("utf-8", "surrogateescape") for k, v in config_seeds().items()})
    print("ttlv: %d spec + %d vCenter; msg: %d vCenter + %d OASIS (%d more left out); policy: %d; config: %d"
          % (len(spec), len(vcenter), len(vcenter), len(oasis), skipped, len(policy_seeds()), len(config_seeds())))


if __name__ == "__main__":
    main()
