"""A real KMIP client (PyKMIP's ProxyKmipClient, KMIP 1.2) as identity `admin`."""

import os
import threading
import unittest
import uuid

from kmip.core import enums
from kmip.core.factories import attributes as attribute_factories
from kmip.pie import exceptions as pie_exceptions
from kmip.pie import objects

import kg_kmip as K
from kg_harness import GatewayTestCase

ATTRS = attribute_factories.AttributeFactory()


class PyKmipClient(GatewayTestCase):
    gw_name = "pykmip-client"

    def client(self):
        return self.gw.pykmip_client("admin")

    def assertKmipFailure(self, reason, fn, *args, **kwargs):
        with self.assertRaises(pie_exceptions.KmipOperationFailure) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.reason, reason, str(cm.exception))

    @staticmethod
    def attr_map(attributes):
        out = {}
        for a in attributes:
            out.setdefault(a.attribute_name.value, []).append(a.attribute_value)
        return out

    def state(self, c, uid):
        got_uid, attributes = c.get_attributes(uid, ["State"])
        self.assertEqual(got_uid, uid)
        states = self.attr_map(attributes).get("State")
        self.assertIsNotNone(states, "no State attribute")
        return states[0].value

    def test_create_get_attributes_activate_revoke_destroy(self):
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256,
                           cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT,
                                                     enums.CryptographicUsageMask.DECRYPT])
            self.assertTrue(uid)
            key = c.get(uid)
            self.assertIsInstance(key, objects.SymmetricKey)
            self.assertEqual(len(key.value), 32)
            self.assertEqual(key.cryptographic_algorithm, enums.CryptographicAlgorithm.AES)
            self.assertEqual(key.cryptographic_length, 256)

            got_uid, attributes = c.get_attributes(
                uid, ["State", "Cryptographic Algorithm", "Cryptographic Length", "Object Type"])
            self.assertEqual(got_uid, uid)
            amap = self.attr_map(attributes)
            self.assertEqual(amap["State"][0].value, enums.State.PRE_ACTIVE)
            self.assertEqual(amap["Cryptographic Algorithm"][0].value,
                             enums.CryptographicAlgorithm.AES)
            self.assertEqual(amap["Cryptographic Length"][0].value, 256)
            self.assertEqual(amap["Object Type"][0].value, enums.ObjectType.SYMMETRIC_KEY)

            c.activate(uid)
            self.assertEqual(self.state(c, uid), enums.State.ACTIVE)
            c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
            self.assertEqual(self.state(c, uid), enums.State.DEACTIVATED)
            c.destroy(uid)
            self.assertKmipFailure(enums.ResultReason.ITEM_NOT_FOUND, c.get, uid)

    def test_destroy_active_key_is_refused(self):
        # KMIP 1.4 Table 348: an object not in Pre-Active, Deactivated or Compromised
        # state is not destroyed (Permission Denied); it must be revoked first.
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            c.activate(uid)
            self.assertKmipFailure(enums.ResultReason.PERMISSION_DENIED, c.destroy, uid)
            self.assertEqual(len(c.get(uid).value), 32)

    def test_locate_by_name(self):
        name = "kgtest-" + uuid.uuid4().hex
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=name)
            c.create(enums.CryptographicAlgorithm.AES, 256, name=name + "-other")
            found = c.locate(attributes=[ATTRS.create_attribute(enums.AttributeType.NAME, name)])
            self.assertEqual(found, [uid])

    def test_locate_by_custom_attribute(self):
        vm = str(uuid.uuid4())
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            other = c.create(enums.CryptographicAlgorithm.AES, 256)
        # vCenter's way of tagging a key (raw Add Attribute), then find it as an admin would.
        for u, value in ((uid, vm), (other, str(uuid.uuid4()))):
            resp = self.gw.request("admin", K.request(K.add_attribute(u, "x-Identifier", value,
                                                                      K.batch_id())))
            self.assertSuccess(resp.item, "Add Attribute x-Identifier")
        with self.client() as c:
            found = c.locate(attributes=[ATTRS.create_attribute("x-Identifier", vm)])
            self.assertEqual(found, [uid])
            names = c.get_attribute_list(uid)
            self.assertIn("x-Identifier", names)

    def test_register_raw_aes_key_and_get_it_back(self):
        material = os.urandom(32)
        with self.client() as c:
            uid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, material))
            self.assertTrue(uid)
            key = c.get(uid)
            self.assertEqual(key.value, material)
            self.assertEqual(key.cryptographic_algorithm, enums.CryptographicAlgorithm.AES)
            self.assertEqual(key.cryptographic_length, 256)

    def test_register_secret_data_opaque_and_certificate(self):
        # PyKMIP's own encodings of the three non-key objects, there and back.
        from test_objects import make_certificate
        password, blob = os.urandom(20), os.urandom(40)
        _, der = make_certificate("pykmip")
        with self.client() as c:
            uid = c.register(objects.SecretData(password, enums.SecretDataType.PASSWORD))
            got = c.get(uid)
            self.assertIsInstance(got, objects.SecretData)
            self.assertEqual((got.value, got.data_type), (password, enums.SecretDataType.PASSWORD))
            c.destroy(uid)
            self.assertKmipFailure(enums.ResultReason.ITEM_NOT_FOUND, c.get, uid)
            uid = c.register(objects.OpaqueObject(blob, enums.OpaqueDataType.NONE))
            got = c.get(uid)
            self.assertEqual((got.value, got.opaque_type), (blob, enums.OpaqueDataType.NONE))
            uid = c.register(objects.X509Certificate(der))
            got = c.get(uid)
            self.assertIsInstance(got, objects.X509Certificate)
            self.assertEqual(got.value, der)
            _, attributes = c.get_attributes(uid, ["Certificate Length", "Certificate Type"])
            got = self.attr_map(attributes)
            self.assertEqual(got["Certificate Length"][0].value, len(der))
            self.assertEqual(got["Certificate Type"][0].value, enums.CertificateType.X_509)

    def test_get_attribute_list(self):
        with self.client() as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            names = c.get_attribute_list(uid)
        for wanted in ("Cryptographic Algorithm", "Cryptographic Length", "State"):
            self.assertIn(wanted, names)
        self.assertEqual(len(names), len(set(names)), "names listed twice: %r" % names)

    def test_get_unknown_uid(self):
        with self.client() as c:
            self.assertKmipFailure(enums.ResultReason.ITEM_NOT_FOUND, c.get, str(uuid.uuid4()))

    def test_two_concurrent_creates(self):
        uids, errors = [None, None], []
        barrier = threading.Barrier(2)

        def run(n):
            try:
                with self.client() as c:
                    barrier.wait(10)
                    uids[n] = c.create(enums.CryptographicAlgorithm.AES, 256)
            except Exception as e:  # reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertTrue(uids[0] and uids[1], uids)
        self.assertNotEqual(uids[0], uids[1])
        with self.client() as c:
            for u in uids:
                self.assertEqual(len(c.get(u).value), 32)


if __name__ == "__main__":
    unittest.main()
