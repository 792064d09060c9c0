"""The small KMIP 1.x operations, byte-level: Query with every 1.4 Query Function,
Check, Obtain Lease, Get Usage Allocation, Archive and Recover, and Poll/Cancel of
values that name nothing (the asynchronous operations themselves: test_async.py).

Each behaviour is next to the refusal that proves it is checked: a Check that
the object does not allow, a lease for a compromised key, an allocation past
the Usage Limits, an archived key that Get, Locate and Destroy no longer see.
Runs as `admin` (operations: all, scope: all) unless a test says otherwise.
"""

import os
import threading
import unittest

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import (
    S, Int, Long, Enum, Text, Interval, DateTime, T, STRUCTURE, ENUMERATION, BOOLEAN,
    TEXT_STRING, INTERVAL, DATE_TIME, OPERATION,
)

USAGE_ENCRYPT, USAGE_DECRYPT, USAGE_SIGN = 0x04, 0x08, 0x01
UNIT_BYTE = 0x01
STORAGE_ON_LINE, STORAGE_ARCHIVAL = 0x1, 0x2
# KMIP 2.x Profile Version (2.1 section 7.32), written out: the tests check the server's tags.
PROFILE_VERSION, PROFILE_VERSION_MAJOR, PROFILE_VERSION_MINOR = 0x420142, 0x420143, 0x420144


def qf(n):
    return Enum("QUERY_FUNCTION", n)


def query(functions, bid=None):
    return K.BatchItem("QUERY", [qf(f) for f in functions], bid)


def with_uid(op, uid, *rest):
    return K.BatchItem(op, ([Text("UNIQUE_IDENTIFIER", uid)] if uid else []) + list(rest), K.batch_id())


def check(uid, count=None, mask=None, lease=None):
    return with_uid("CHECK", uid,
                    Long("USAGE_LIMITS_COUNT", count) if count is not None else None,
                    Int("CRYPTOGRAPHIC_USAGE_MASK", mask) if mask is not None else None,
                    Interval("LEASE_TIME", lease) if lease is not None else None)


def allocation(uid, count):
    return with_uid("GET_USAGE_ALLOCATION", uid,
                    Long("USAGE_LIMITS_COUNT", count) if count is not None else None)


def usage_limits(total, unit=UNIT_BYTE):
    return K.attr("Usage Limits", S("ATTRIBUTE_VALUE", Long("USAGE_LIMITS_TOTAL", total),
                                    Enum("USAGE_LIMITS_UNIT", unit)))


def name_attr(name):
    return K.attr("Name", S("ATTRIBUTE_VALUE", Text("NAME_VALUE", name), Enum("NAME_TYPE", 1)))


def locate_name(name, mask=None):
    return K.BatchItem("LOCATE", [Int("STORAGE_STATUS_MASK", mask) if mask is not None else None,
                                  name_attr(name)], K.batch_id())


class Operations(GatewayTestCase):
    gw_name = "operations"


    # --- Triple DES (SKFF profiles): a key made and kept like AES, 24 bytes ---------------
    def des3(self, length, identity="admin"):
        return self.gw.request(identity, K.request(K.BatchItem("CREATE", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE",
              K.attr("Cryptographic Algorithm", Enum("ATTRIBUTE_VALUE", 0x02)),
              K.attr("Cryptographic Length", Int("ATTRIBUTE_VALUE", length)),
              K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", USAGE_ENCRYPT | USAGE_DECRYPT)))],
            K.batch_id()))).item

    def test_triple_des_create_get_register(self):
        item = self.des3(168)
        self.assertSuccess(item, "Create 3DES 168")
        got = self.gw.request("admin", K.request(K.get(item.uid(), K.batch_id()))).item
        self.assertSuccess(got, "Get 3DES")
        key, fmt, alg, length = K.symmetric_key_of(got.payload)
        self.assertEqual((len(key), alg, length), (24, 0x02, 168))
        # Registered back, the same 24 bytes as a new object.
        reg = self.gw.request("admin", K.request(K.BatchItem("REGISTER", [
            Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
            S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", USAGE_ENCRYPT))),
            S("SYMMETRIC_KEY", S("KEY_BLOCK", Enum("KEY_FORMAT_TYPE", 0x01),
                                 S("KEY_VALUE", K.Bytes("KEY_MATERIAL", key)),
                                 Enum("CRYPTOGRAPHIC_ALGORITHM", 0x02),
                                 Int("CRYPTOGRAPHIC_LENGTH", 168)))], K.batch_id()))).item
        self.assertSuccess(reg, "Register 3DES")
        got = self.gw.request("admin", K.request(K.get(reg.uid(), K.batch_id()))).item
        self.assertEqual(K.symmetric_key_of(got.payload)[0], key)

    def test_triple_des_refusals(self):
        self.assertFailure(self.des3(128), "INVALID_FIELD", "3DES of 128 bits")
        # The dev policy's vsphere group may create AES only.
        self.assertFailure(self.des3(168, "vsphere"), "PERMISSION_DENIED", "3DES for vsphere")

    def req(self, items, identity="admin", version=(1, 4), extra_header=()):
        return self.gw.request(identity, K.request(items, version=version, extra_header=extra_header))

    def one(self, item, identity="admin", version=(1, 4)):
        return self.req(item, identity, version).item

    def new_key(self, identity="admin", usage_mask=USAGE_ENCRYPT | USAGE_DECRYPT, name=None, activate=False):
        extra = [name_attr(name)] if name else []
        it = self.one(K.create_aes256(K.batch_id(), usage_mask=usage_mask, extra_attributes=extra), identity)
        self.assertSuccess(it, "Create")
        uid = it.uid()
        if activate:
            self.assertSuccess(self.one(K.activate(uid, K.batch_id()), identity), "Activate")
        return uid

    def attribute(self, uid, name):
        it = self.one(K.get_attributes(uid, name, K.batch_id()))
        self.assertSuccess(it, "Get Attributes(%s)" % name)
        values = [v for n, v in it.attributes() if n == name]
        return values[0] if values else None

    # --- Query ---------------------------------------------------------------------------
    def test_query_every_function(self):
        it = self.one(query(range(1, 13)))
        self.assertSuccess(it, "Query")
        p = it.payload
        ops = {n.value for n in p.find_all("OPERATION")}
        for op in ("CHECK", "OBTAIN_LEASE", "GET_USAGE_ALLOCATION", "ARCHIVE", "RECOVER", "QUERY", "LOCATE",
                   "POLL", "CANCEL"):
            self.assertIn(OPERATION[op], ops, op)
        for op in ("VALIDATE", "DERIVE_KEY"):
            self.assertNotIn(OPERATION[op], ops, "%s is not supported and must not be listed" % op)
        vendor = p.find("VENDOR_IDENTIFICATION")
        self.assertEqual((vendor.type, vendor.value), (TEXT_STRING, "kmipgw"))
        info = p.find("SERVER_INFORMATION")
        self.assertEqual((info.type, info.value), (STRUCTURE, []))
        # Nothing to say for these: kmipgw has none of them.
        for none in ("APPLICATION_NAMESPACE", "EXTENSION_INFORMATION", "ATTESTATION_TYPE",
                     "VALIDATION_INFORMATION"):
            self.assertIsNone(p.find(none), none)
        rngs = p.find_all("RNG_PARAMETERS")
        self.assertEqual(len(rngs), 1)
        self.assertEqual([(c.tag, c.value) for c in rngs[0].value], [(T.RNG_ALGORITHM, 0x01)],
                         "the HSM's RNG is not described by PKCS#11: Unspecified")
        caps = p.find_all("CAPABILITY_INFORMATION")
        self.assertEqual(len(caps), 1)
        got = [(c.tag, c.type, c.value) for c in caps[0].value]
        self.assertEqual(got, [
            (T.STREAMING_CAPABILITY, BOOLEAN, False), (T.ASYNCHRONOUS_CAPABILITY, BOOLEAN, True),
            (T.ATTESTATION_CAPABILITY, BOOLEAN, False), (T.BATCH_UNDO_CAPABILITY, BOOLEAN, True),
            (T.BATCH_CONTINUE_CAPABILITY, BOOLEAN, True), (T.UNWRAP_MODE, ENUMERATION, 0x02),
            (T.DESTROY_ACTION, ENUMERATION, 0x02), (T.SHREDDING_ALGORITHM, ENUMERATION, 0x03),
            (T.RNG_MODE, ENUMERATION, 0x01)])
        self.assertEqual([c.value for c in p.find_all("CLIENT_REGISTRATION_METHOD")], [0x04])
        # Table 223's order.
        order = [T.OPERATION, T.OBJECT_TYPE, T.VENDOR_IDENTIFICATION, T.SERVER_INFORMATION,
                 T.RNG_PARAMETERS, T.PROFILE_INFORMATION, T.CAPABILITY_INFORMATION,
                 T.CLIENT_REGISTRATION_METHOD]
        tags = [order.index(c.tag) for c in p.value]
        self.assertEqual(tags, sorted(tags), "payload not in Table 223's order")

    def test_query_answers_only_what_was_asked(self):
        it = self.one(query([8]))  # RNGs only
        self.assertSuccess(it)
        self.assertEqual([c.tag for c in it.payload.value], [T.RNG_PARAMETERS])
        # An unknown function value adds nothing and is not an error.
        it = self.one(query([0x7F]))
        self.assertSuccess(it)
        self.assertEqual(it.payload.value, [])

    def test_query_capabilities_of_1_3_have_no_1_4_fields(self):
        it = self.one(query([11]), version=(1, 3))
        self.assertSuccess(it)
        tags = [c.tag for c in it.payload.find("CAPABILITY_INFORMATION").value]
        self.assertNotIn(T.BATCH_UNDO_CAPABILITY, tags)
        self.assertNotIn(T.BATCH_CONTINUE_CAPABILITY, tags)
        self.assertIn(T.STREAMING_CAPABILITY, tags)

    def profiles(self, version):
        """(Profile Name, Profile Version or None) of each Profile Information, in order."""
        it = self.one(query([10]), version=version)
        self.assertSuccess(it, "Query Profiles in %d.%d" % version)
        out = []
        for info in it.payload.find_all("PROFILE_INFORMATION"):
            self.assertEqual([c.tag for c in info.value if c.tag not in (T.PROFILE_NAME, PROFILE_VERSION)], [],
                             "no Server URI or Port: those are the HTTPS profiles'")
            pv = info.find(PROFILE_VERSION)
            out.append((info.find("PROFILE_NAME").value,
                        None if pv is None else (pv.find(PROFILE_VERSION_MAJOR).value,
                                                 pv.find(PROFILE_VERSION_MINOR).value)))
        return out

    def test_query_profiles_are_those_whose_cases_pass(self):
        # Symmetric Key Lifecycle and Foundry servers, one 1.x name per KMIP version
        # (expected_pass.txt: SKLC-M-* and SKFF-M-* of 1.0 to 1.4), up to the client's.
        sklc = [0x10, 0x11, 0x12, 0x5E, 0x82]
        skff = [0x28, 0x29, 0x2A, 0x6A, 0x8E]
        self.assertEqual(self.profiles((1, 4)), [(n, None) for n in sklc + skff])
        self.assertEqual(self.profiles((1, 2)), [(n, None) for n in sklc[:3] + skff[:3]])
        # 1.3 and 1.4 profile names (0x55 and up) mean nothing to a 1.0 client.
        self.assertEqual(self.profiles((1, 0)), [(0x10, None), (0x28, None)])
        # 2.x names with the Profile Version whose cases pass: SKFF, AES XTS and Quantum
        # Safe of 2.0 and 2.1; Symmetric Key Lifecycle and Baseline of 2.1.
        v20 = [(0x115, (2, 0)), (0x125, (2, 0)), (0x127, (2, 0))]
        self.assertEqual(self.profiles((2, 0)), v20)
        self.assertEqual(sorted(self.profiles((2, 1))),
                         sorted(v20 + [(0x109, (2, 1)), (0x115, (2, 1)), (0x125, (2, 1)), (0x127, (2, 1)),
                                       (0x12B, (2, 1))]))

    def test_query_profiles_claims_nothing_untrue(self):
        names = {n for v in ((1, 4), (2, 1)) for n, _ in self.profiles(v)}
        # No HTTPS, JSON or XML server (TTLV over TLS only), no client profile, no
        # asymmetric, cryptographic, tape, storage, Suite B or Opaque store profile.
        untrue = {0x98, 0x9A, 0x9C, 0x11F, 0x121, 0x123,   # HTTPS / JSON / XML Server 1.4, 2.x
                  0x0D, 0x57, 0x108, 0x12A,                 # SKLC / Baseline clients
                  0x84, 0x10B, 0x86, 0x10D, 0x8A, 0x111,    # asymmetric, basic and RNG crypto servers
                  0x80, 0x107, 0x90, 0x117, 0x92, 0x96,     # tape, opaque store, Suite B, SED
                  0x79, 0x7A, 0x7D, 0x7E, 0x12C}            # 1.4 Baseline, Complete (no vectors)
        self.assertEqual(names & untrue, set())

    # --- Poll and Cancel -----------------------------------------------------------------
    def test_poll_and_cancel_of_nothing(self):
        value = b"\x01" * 16
        it = self.one(K.BatchItem("POLL", [K.Bytes("ASYNCHRONOUS_CORRELATION_VALUE", value)], K.batch_id()))
        self.assertFailure(it, "ITEM_NOT_FOUND", "Poll of a value nothing is pending under")
        it = self.one(K.BatchItem("CANCEL", [K.Bytes("ASYNCHRONOUS_CORRELATION_VALUE", value)], K.batch_id()))
        self.assertSuccess(it, "Cancel")
        # KMIP 1.4 section 4.27: Unavailable, the value matches nothing pending.
        self.assertEqual([(c.tag, c.value) for c in it.payload.value],
                         [(T.ASYNCHRONOUS_CORRELATION_VALUE, value), (T.CANCELLATION_RESULT, 0x05)])

    # --- Check ---------------------------------------------------------------------------
    def test_check_allowed_usage(self):
        uid = self.new_key()
        it = self.one(check(uid, mask=USAGE_ENCRYPT, lease=3600, count=10**9))
        self.assertSuccess(it, "Check within the key's mask, no Usage Limits")
        self.assertEqual(it.uid(), uid)
        self.assertEqual([c.tag for c in it.payload.value], [T.UNIQUE_IDENTIFIER])

    def test_check_refuses_usage_outside_the_mask(self):
        uid = self.new_key(usage_mask=USAGE_ENCRYPT)
        it = self.one(check(uid, mask=USAGE_ENCRYPT | USAGE_DECRYPT))
        self.assertFailure(it, "PERMISSION_DENIED", "Check Decrypt on an Encrypt-only key")
        self.assertIn("Cryptographic Usage Mask", it.message)

    def test_check_refused_empties_the_id_placeholder(self):
        create = K.create_aes256(K.batch_id(), usage_mask=USAGE_ENCRYPT)
        cont = [Enum("BATCH_ERROR_CONTINUATION_OPTION", 1)]  # Continue
        resp = self.req([create, check(None, mask=USAGE_SIGN), K.BatchItem("GET", [], K.batch_id())],
                        extra_header=cont)
        self.assertSuccess(resp.items[0], "Create")
        self.assertFailure(resp.items[1], "PERMISSION_DENIED", "Check Sign")
        self.assertFailure(resp.items[2], "MISSING_DATA", "Get after a refused Check has no ID Placeholder")
        # The same batch with an allowed Check: the placeholder carries through.
        resp = self.req([K.create_aes256(K.batch_id(), usage_mask=USAGE_ENCRYPT), check(None, mask=USAGE_ENCRYPT),
                         K.BatchItem("GET", [], K.batch_id())], extra_header=cont)
        self.assertSuccess(resp.items[2], "Get after an allowed Check")
        self.assertEqual(resp.items[2].uid(), resp.items[0].uid())

    def test_check_refuses_a_destroyed_key_and_bad_counts(self):
        uid = self.new_key()
        self.assertSuccess(self.one(K.destroy(uid, K.batch_id())))
        self.assertFailure(self.one(check(uid)), "PERMISSION_DENIED", "Check of a destroyed key")
        live = self.new_key()
        self.assertFailure(self.one(check(live, count=0)), "INVALID_FIELD", "Usage Limits Count 0")

    # --- Obtain Lease --------------------------------------------------------------------
    def test_obtain_lease(self):
        uid = self.new_key(activate=True)
        it = self.one(with_uid("OBTAIN_LEASE", uid))
        self.assertSuccess(it, "Obtain Lease")
        p = it.payload
        self.assertEqual([c.tag for c in p.value], [T.UNIQUE_IDENTIFIER, T.LEASE_TIME, T.LAST_CHANGE_DATE])
        self.assertEqual((p.find("LEASE_TIME").type, p.find("LEASE_TIME").value), (INTERVAL, 0))
        changed = self.attribute(uid, "Last Change Date")
        self.assertEqual((p.find("LAST_CHANGE_DATE").type, p.find("LAST_CHANGE_DATE").value),
                         (DATE_TIME, changed.value))

    def test_no_lease_for_compromised_or_destroyed_keys(self):
        uid = self.new_key(activate=True)
        self.assertSuccess(self.one(K.revoke(uid, "KEY_COMPROMISE", K.batch_id())))
        it = self.one(with_uid("OBTAIN_LEASE", uid))
        self.assertFailure(it, "PERMISSION_DENIED", "lease for a compromised key")
        self.assertIn("Compromised", it.message)
        gone = self.new_key()
        self.assertSuccess(self.one(K.destroy(gone, K.batch_id())))
        self.assertFailure(self.one(with_uid("OBTAIN_LEASE", gone)), "PERMISSION_DENIED", "destroyed")
        self.assertFailure(self.one(with_uid("OBTAIN_LEASE", "0" * 36)), "ITEM_NOT_FOUND")

    # --- Get Usage Allocation ------------------------------------------------------------
    def limited_key(self, total=1000, activate=True, usage_mask=USAGE_ENCRYPT):
        uid = self.new_key(usage_mask=usage_mask)
        it = self.one(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid), usage_limits(total)],
                                  K.batch_id()))
        self.assertSuccess(it, "Add Attribute(Usage Limits)")
        if activate:
            self.assertSuccess(self.one(K.activate(uid, K.batch_id())), "Activate")
        return uid

    def remaining(self, uid):
        v = self.attribute(uid, "Usage Limits")
        return v.find("USAGE_LIMITS_COUNT").value

    def test_usage_allocation_counts_down(self):
        uid = self.limited_key(1000)
        self.assertSuccess(self.one(allocation(uid, 500)), "first 500")
        self.assertEqual(self.remaining(uid), 500)
        it = self.one(check(uid, count=600))
        self.assertFailure(it, "PERMISSION_DENIED", "Check for more than remains")
        self.assertIn("500 remaining", it.message)
        self.assertSuccess(self.one(check(uid, count=500)), "Check for what remains")
        self.assertSuccess(self.one(allocation(uid, 500)), "second 500")
        it = self.one(allocation(uid, 1))
        self.assertFailure(it, "PERMISSION_DENIED", "allocation past the limit")
        self.assertEqual(self.remaining(uid), 0)
        # Total and Unit are kept.
        v = self.attribute(uid, "Usage Limits")
        self.assertEqual((v.find("USAGE_LIMITS_TOTAL").value, v.find("USAGE_LIMITS_UNIT").value), (1000, UNIT_BYTE))

    def test_usage_allocation_is_atomic(self):
        uid = self.limited_key(1000)
        results = []

        def take():
            results.append(self.one(allocation(uid, 600)))

        threads = [threading.Thread(target=take) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sum(1 for r in results if r.ok), 1, [r.describe() for r in results])
        self.assertEqual(self.remaining(uid), 400)

    def test_usage_allocation_refusals(self):
        plain = self.new_key(activate=True)
        self.assertFailure(self.one(allocation(plain, 10)), "ILLEGAL_OPERATION", "no Usage Limits")
        uid = self.limited_key(100)
        self.assertFailure(self.one(allocation(uid, None)), "MISSING_DATA", "no Usage Limits Count")
        self.assertFailure(self.one(allocation(uid, 0)), "INVALID_FIELD", "count 0")
        self.assertFailure(self.one(allocation(uid, -5)), "INVALID_FIELD", "negative count")
        decrypt_only = self.limited_key(100, usage_mask=USAGE_DECRYPT)
        self.assertFailure(self.one(allocation(decrypt_only, 10)), "ILLEGAL_OPERATION",
                           "a key that cannot apply protection")
        pre_active = self.limited_key(100, activate=False)
        self.assertFailure(self.one(allocation(pre_active, 10)), "PERMISSION_DENIED", "before the Activation Date")
        self.assertSuccess(self.one(K.revoke(uid, "CESSATION_OF_OPERATION", K.batch_id())))
        self.assertFailure(self.one(allocation(uid, 10)), "PERMISSION_DENIED", "Deactivated")
        self.assertEqual(self.remaining(uid), 100, "a refused allocation takes nothing")

    def test_usage_allocation_ends_at_protect_stop_date(self):
        uid = self.limited_key(100, activate=False)
        past = self.gw_now() - 3600
        for name, when in (("Activation Date", past), ("Protect Stop Date", past + 60)):
            it = self.one(K.BatchItem("ADD_ATTRIBUTE", [Text("UNIQUE_IDENTIFIER", uid),
                                                        K.attr(name, DateTime("ATTRIBUTE_VALUE", when))],
                                      K.batch_id()))
            self.assertSuccess(it, "Add Attribute(%s)" % name)
        it = self.one(allocation(uid, 10))
        self.assertFailure(it, "PERMISSION_DENIED", "after the Protect Stop Date")
        self.assertIn("Protect Stop Date", it.message)

    def gw_now(self):
        resp = self.req(query([3]))
        return resp.time_stamp

    # --- Archive and Recover -------------------------------------------------------------
    def test_archive_and_recover(self):
        name = "ops-archive-%s" % os.urandom(4).hex()
        uid = self.new_key(name=name)
        key = self.get_key("admin", uid)
        it = self.one(with_uid("ARCHIVE", uid))
        self.assertSuccess(it, "Archive")
        self.assertEqual(it.uid(), uid)
        self.assertFailure(self.one(K.get(uid, K.batch_id())), "OBJECT_ARCHIVED", "Get of an archived key")
        for item in (K.activate(uid, K.batch_id()), K.destroy(uid, K.batch_id()), with_uid("ARCHIVE", uid),
                     with_uid("OBTAIN_LEASE", uid), check(uid)):
            self.assertFailure(self.one(item), "OBJECT_ARCHIVED", K.enum_name(OPERATION, item.operation))
        # Its attributes stay readable, Archive Date among them.
        self.assertEqual(self.attribute(uid, "Archive Date").type, DATE_TIME)
        # Locate: on-line only by default.
        self.assertIsNone(self.one(locate_name(name)).uid(), "Locate found an archived key")
        self.assertEqual(self.one(locate_name(name, STORAGE_ON_LINE | STORAGE_ARCHIVAL)).uid(), uid)
        self.assertEqual(self.one(locate_name(name, STORAGE_ARCHIVAL)).uid(), uid)

        self.assertSuccess(self.one(with_uid("RECOVER", uid)), "Recover")
        self.assertEqual(self.get_key("admin", uid), key)
        self.assertIsNone(self.attribute(uid, "Archive Date"), "Recover must delete the Archive Date")
        self.assertEqual(self.one(locate_name(name)).uid(), uid)
        self.assertIsNone(self.one(locate_name(name, STORAGE_ARCHIVAL)).uid())
        # Recovering an on-line object is harmless.
        self.assertSuccess(self.one(with_uid("RECOVER", uid)), "Recover of an on-line key")
        self.assertFailure(self.one(with_uid("ARCHIVE", "0" * 36)), "ITEM_NOT_FOUND")

    def test_archived_keys_out_of_scope_stay_not_found(self):
        uid = self.new_key()
        self.assertSuccess(self.one(with_uid("ARCHIVE", uid)))
        self.assertFailure(self.one(K.get(uid, K.batch_id()), "vsphere"), "ITEM_NOT_FOUND",
                           "vsphere must not learn that admin's key is archived")

    def test_archive_survives_restart(self):
        uid = self.new_key()
        self.assertSuccess(self.one(with_uid("ARCHIVE", uid)))
        self.gw.stop()
        self.gw.start()
        self.assertFailure(self.one(K.get(uid, K.batch_id())), "OBJECT_ARCHIVED", "after a restart")

    # --- policy --------------------------------------------------------------------------
    def test_policy_gates_each_operation(self):
        # vsphere's operations list names none of them.
        uid = self.new_key("vsphere")
        for item in (check(uid), with_uid("OBTAIN_LEASE", uid), allocation(uid, 1), with_uid("ARCHIVE", uid),
                     with_uid("RECOVER", uid)):
            self.assertFailure(self.one(item, "vsphere"), "PERMISSION_DENIED",
                               K.enum_name(OPERATION, item.operation))
        self.assertSuccess(self.one(K.get(uid, K.batch_id()), "vsphere"), "the key is untouched")


if __name__ == "__main__":
    unittest.main()
