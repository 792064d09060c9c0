"""Mechanism discovery (issue 9): the gateway wraps under the master key with the best
mechanism the token offers, says which at start, refuses to start when none is acceptable,
and answers Create and Query only with what the token can do.

The gateway runs on the devenv's SoftHSM token through tests/fault/kgfaultp11.so, whose
control file hides chosen mechanisms ("hide-mechanism CKM_..."; syntax in
tests/fault/kg_fault_p11.c): a token without CKM_AES_KEY_WRAP_PAD, without HMAC or EC key
generation, or without any AES key wrap.
"""

import os
import unittest

import kg_kmip as K
from kg_harness import Gateway, GatewayTestCase, HarnessError, kmipgw_bin, server_kind
from kg_ttlv import CRYPTOGRAPHIC_ALGORITHM, Enum, Int, OPERATION, S

# (HMAC-SHA256 itself stays: the gateway MACs every blob with it inside the HSM.)
HIDDEN = ("CKM_AES_KEY_WRAP_PAD", "CKM_GENERIC_SECRET_KEY_GEN", "CKM_EC_KEY_PAIR_GEN",
          "CKM_RSA_PKCS_KEY_PAIR_GEN")


def fault_module():
    build = os.path.dirname(os.path.dirname(os.path.abspath(kmipgw_bin())))
    return os.path.join(build, "tests", "fault", "kgfaultp11.so")


def filtered_gateway(name, hidden):
    """A Gateway (not started) on the fault module hiding `hidden` mechanisms."""
    module = fault_module()
    if not os.path.exists(module):
        raise HarnessError("fault module %s not built" % module)
    gw = Gateway(name)
    try:
        control = gw.path("fault.control")
        write_control(control, hidden)
        gw.extra_env.update(KG_FAULT_REAL_MODULE=gw.get_config("hsm", "module"),
                            KG_FAULT_CONTROL=control)
        gw.set_config("hsm", "module", module)
    except BaseException:
        gw.cleanup()
        raise
    return gw, control


def write_control(path, hidden):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join("hide-mechanism %s\n" % m for m in hidden))
    os.replace(tmp, path)


def create_hmac256(bid=None):
    return K.BatchItem("CREATE", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE",
          K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", CRYPTOGRAPHIC_ALGORITHM["HMAC_SHA256"])),
          K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", 0x80)),
          K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", 256))),
    ], bid)


def query_operations(bid=None):
    return K.BatchItem("QUERY", [Enum("QUERY_FUNCTION", "QUERY_OPERATIONS"),
                                 Enum("QUERY_FUNCTION", "QUERY_OBJECTS")], bid)


class WithoutKeyWrapPad(GatewayTestCase):
    """SoftHSM without RFC 5649, HMAC, RSA or EC key generation."""
    gw_name = "mechkw"

    @classmethod
    def setUpClass(cls):
        if server_kind() != "kmipgw":
            raise unittest.SkipTest("mechanisms are only filtered for kmipgw")
        cls.gw, cls.control = filtered_gateway(cls.gw_name, HIDDEN)
        try:
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def test_kw_chosen_and_logged(self):
        self.assertIn("hsm: wrapping keys with CKM_AES_KEY_WRAP (RFC 3394)", self.gw.log_text())
        self.assertNotIn("CKM_AES_KEY_WRAP_PAD (RFC 5649)", self.gw.log_text())

    def test_create_get_under_kw(self):
        uid = self.create_key("vsphere")
        key = self.get_key("vsphere", uid)
        self.assertEqual(self.get_key("vsphere", uid), key)

    def test_create_of_missing_algorithm_refused(self):
        resp = self.gw.request("admin", K.request(create_hmac256(K.batch_id())))
        self.assertFailure(resp.item, "FEATURE_NOT_SUPPORTED", "HMAC Create")
        self.assertIn("CKM_GENERIC_SECRET_KEY_GEN", resp.item.message or "")

    def test_query_lists_only_what_works(self):
        resp = self.gw.request("admin", K.request(query_operations(K.batch_id())))
        self.assertSuccess(resp.item, "Query")
        ops = {n.value for n in resp.item.payload.find_all("OPERATION")}
        objs = {n.value for n in resp.item.payload.find_all("OBJECT_TYPE")}
        self.assertIn(OPERATION["CREATE"], ops)
        self.assertIn(OPERATION["GET"], ops)
        for gone in ("CREATE_KEY_PAIR", "REKEY_KEY_PAIR"):
            self.assertNotIn(OPERATION[gone], ops, gone)
        self.assertEqual(objs, {0x02})  # Symmetric Key only: no pair generation

    def test_kw_store_readable_when_kwp_appears(self):
        uid = self.create_key("vsphere")
        key = self.get_key("vsphere", uid)
        self.gw.stop()
        write_control(self.control, ())
        try:
            self.gw.start()
            self.assertEqual(self.get_key("vsphere", uid), key)
            self.assertIn("hsm: wrapping keys with CKM_AES_KEY_WRAP_PAD (RFC 5649)", self.gw.log_text())
            resp = self.gw.request("admin", K.request(query_operations(K.batch_id())))
            ops = {n.value for n in resp.item.payload.find_all("OPERATION")}
            self.assertIn(OPERATION["CREATE_KEY_PAIR"], ops)
        finally:
            self.gw.stop()
            write_control(self.control, HIDDEN)
            self.gw.start()


class WithoutAnyWrap(unittest.TestCase):
    def test_refuses_to_start(self):
        if server_kind() != "kmipgw":
            raise unittest.SkipTest("mechanisms are only filtered for kmipgw")
        gw, _ = filtered_gateway("mechnone", ("CKM_AES_KEY_WRAP_PAD", "CKM_AES_KEY_WRAP", "CKM_AES_CBC_PAD"))
        try:
            with self.assertRaises(HarnessError):
                gw.start()
            log = gw.log_text()
            self.assertIn("no acceptable way to wrap keys under the master key", log)
            self.assertIn("CKM_AES_KEY_WRAP_PAD, CKM_AES_KEY_WRAP, and CKM_AES_CBC_PAD", log)
        finally:
            gw.cleanup()


if __name__ == "__main__":
    unittest.main()
