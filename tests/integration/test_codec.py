"""The test suite's own TTLV codec and response comparison (no server needed).

If these fail, the other tests' verdicts mean nothing."""

import glob
import os
import unittest

import kg_kmip as K
import kg_ttlv
from kg_harness import VCENTER_VECTORS
from kg_ttlv import (
    Bytes, Enum, Int, S, Text, TTLVError, check_dump_lengths, decode, encode, header, parse_dump,
    replace_text,
)


def recorded(name):
    with open(os.path.join(VCENTER_VECTORS, name)) as f:
        return parse_dump(f.read())


class Codec(unittest.TestCase):
    def test_spec_examples_and_enum_tables(self):
        kg_ttlv.selftest()

    def test_spec_example_file(self):
        path = os.path.join(os.path.dirname(VCENTER_VECTORS), "ttlv-spec-examples",
                            "kmip-spec-v1.4-sec9.1.2-ttlv-examples.hex")
        count = 0
        with open(path) as f:
            for line in f:
                if line.startswith("#") or "\t" not in line:
                    continue
                data = bytes.fromhex(line.split("\t", 1)[1].replace(" ", ""))
                self.assertEqual(encode(decode(data)), data, line)
                count += 1
        self.assertEqual(count, 10)

    def test_vcenter_dumps_roundtrip_at_recorded_lengths(self):
        files = sorted(glob.glob(os.path.join(VCENTER_VECTORS, "*.txt")))
        self.assertEqual(len(files), 28)
        for path in files:
            with open(path) as f:
                item = parse_dump(f.read())
            self.assertEqual(check_dump_lengths(item), [], path)
            data = encode(item)
            self.assertEqual(len(data) - 8, item.declared, path)
            self.assertEqual(decode(data), item, path)

    def test_uid_substitution_changes_lengths(self):
        req = recorded("example_get_object_request.txt")
        replace_text(req, "UNIQUE_IDENTIFIER", "01000000-7356-8565-621e-08ddba133224", "short")
        self.assertEqual(req.path("BATCH_ITEM", "REQUEST_PAYLOAD", "UNIQUE_IDENTIFIER").value, "short")
        self.assertEqual(decode(encode(req)), req)

    def test_strict_decoder(self):
        good = encode(S("REQUEST_MESSAGE", Int("BATCH_COUNT", 1)))
        bad = [
            good[:-8],                                              # truncated
            good + b"\0" * 8,                                       # trailing bytes
            good[:11] + b"\x0e" + good[12:],                        # unknown type
            good[:12] + b"\0\0\0\x08" + good[16:],                  # Integer of length 8
            good[:-4] + b"\x01\0\0\0",                              # non-zero padding
        ]
        for data in bad:
            with self.assertRaises(TTLVError, msg=data.hex()):
                decode(data)
        self.assertEqual(header("REQUEST_MESSAGE", 1, 16), good[:8])

    def test_compare_shape(self):
        expected = recorded("example_add_attribute_batch_response.txt")
        uid = "01000000-7356-8565-621e-08ddba133224"
        actual = decode(encode(expected))
        self.assertEqual(K.compare_shape(recorded("example_add_attribute_batch_response.txt"),
                                         actual, uid=uid), [])
        # a different batch item ID is noticed
        actual.find_all("BATCH_ITEM")[1].find("UNIQUE_BATCH_ITEM_ID").value = b"12345678"
        self.assertTrue(K.compare_shape(recorded("example_add_attribute_batch_response.txt"),
                                        actual, uid=uid))
        # an attribute where the recording has none is noticed
        expected = recorded("example_get_attributes_vendor_response.txt")
        actual = decode(encode(expected))
        actual.find("BATCH_ITEM").find("RESPONSE_PAYLOAD").value.append(
            S("ATTRIBUTE", Text("ATTRIBUTE_NAME", "x-Vendor"), Text("ATTRIBUTE_VALUE", "x")))
        self.assertTrue(K.compare_shape(expected, actual, uid=uid))
        # another UID is noticed
        self.assertTrue(K.compare_shape(recorded("example_get_attributes_vendor_response.txt"),
                                        decode(encode(expected)), uid="other"))
        # the Get recording's empty OBJECT_TYPE structure is a dump artifact, not required
        expected = recorded("example_get_object_response.txt")
        actual = decode(encode(expected))
        sk = actual.path("BATCH_ITEM", "RESPONSE_PAYLOAD", "SYMMETRIC_KEY")
        sk.value = [c for c in sk.value if c.tag != kg_ttlv.T.OBJECT_TYPE]
        self.assertEqual(K.compare_shape(expected, actual, uid=uid), [])

    def test_response_reader(self):
        bid = b"QLKC\x01\0\0\0"
        msg = S("RESPONSE_MESSAGE",
                S("RESPONSE_HEADER", S("PROTOCOL_VERSION", Int("PROTOCOL_VERSION_MAJOR", 1),
                                       Int("PROTOCOL_VERSION_MINOR", 1)),
                  kg_ttlv.DateTime("TIME_STAMP", 0), Int("BATCH_COUNT", 1)),
                S("BATCH_ITEM", Enum("OPERATION", "GET"), Bytes("UNIQUE_BATCH_ITEM_ID", bid),
                  Enum("RESULT_STATUS", "OPERATION_FAILED"), Enum("RESULT_REASON", "ITEM_NOT_FOUND"),
                  Text("RESULT_MESSAGE", "no such key")))
        r = K.Response(encode(msg))
        self.assertEqual(r.version, (1, 1))
        self.assertEqual(r.item.bid, bid)
        self.assertFalse(r.item.ok)
        self.assertEqual(r.item.reason, K.RESULT_REASON["ITEM_NOT_FOUND"])
        self.assertIn("ITEM_NOT_FOUND", r.describe())


if __name__ == "__main__":
    unittest.main()
