"""Keys survive a restart of the gateway: same UIDs, same key bytes, same state and tags."""

import os
import unittest

from kmip.core import enums
from kmip.pie import objects

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import STATE


class Restart(GatewayTestCase):
    gw_name = "restart"

    def state_of(self, identity, uid):
        resp = self.gw.request(identity, K.request(K.get_attributes(uid, "State", K.batch_id())))
        self.assertSuccess(resp.item, "Get Attributes(State)")
        return [v.value for n, v in resp.item.attributes() if n == "State"]

    def test_keys_survive_restart(self):
        keys = {}  # uid -> (identity, bytes)
        for identity in ("vsphere", "vsphere", "admin"):
            uid = self.create_key(identity)
            keys[uid] = (identity, self.get_key(identity, uid))
        registered = os.urandom(32)
        with self.gw.pykmip_client("admin") as c:
            ruid = c.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, registered))
            self.assertEqual(c.get(ruid).value, registered)
        keys[ruid] = ("admin", registered)

        active = next(u for u, (i, _) in keys.items() if i == "vsphere")
        self.assertSuccess(self.gw.request("vsphere", K.request(K.activate(active, K.batch_id()))).item)
        resp = self.gw.request("vsphere", K.request(
            K.add_attribute(active, "x-Name", "vm-restart", K.batch_id())))
        self.assertSuccess(resp.item)
        self.assertEqual(len(set(b for _, b in keys.values())), len(keys), "keys must differ")

        rc, killed = self.gw.stop()
        self.assertFalse(killed, "kmipgw did not exit within 10 s of SIGTERM")
        self.assertEqual(rc, 0, "kmipgw exit status after SIGTERM; log:\n%s" % self.gw.log_tail())
        self.gw.start()

        for uid, (identity, material) in keys.items():
            self.assertEqual(self.get_key(identity, uid), material, "key %s changed" % uid)
        self.assertEqual(self.state_of("vsphere", active), [STATE["ACTIVE"]])
        resp = self.gw.request("vsphere", K.request(K.get_attributes(active, "x-Name", K.batch_id())))
        self.assertSuccess(resp.item)
        self.assertEqual([v.value for n, v in resp.item.attributes()], ["vm-restart"])

        # And the restarted gateway still makes new keys.
        uid = self.create_key("vsphere")
        self.assertNotIn(uid, keys)
        self.assertEqual(len(self.get_key("vsphere", uid)), 32)


if __name__ == "__main__":
    unittest.main()
