"""Secrets in the gateway process: no core dumps, locked request buffers, nothing left behind.

What is checked, on a running `kmipgw serve`:

  - core dumps are off: /proc/PID/limits says "Max core file size 0 0", and
    the process is not dumpable (prctl PR_SET_DUMPABLE 0). The dumpable flag
    has no /proc field (and as root, the owner of /proc/PID, which turns root
    for a non-dumpable process, says nothing). Its observable effect: opening
    /proc/PID/mem is refused to a process of the same uid and capabilities
    without CAP_SYS_PTRACE, while it works on a dumpable one. The gateway and a
    `sleep` control are started without CAP_SYS_PTRACE in their bounding set
    (else the kernel refuses anyway: the target's capabilities must be a subset
    of the reader's), and a helper that dropped CAP_SYS_PTRACE opens both.
  - requests are read into locked memory excluded from core dumps: while a
    request is half sent, VmLck in /proc/PID/status grows by at least a page
    and the new mapping's VmFlags in /proc/PID/smaps carry `lo` (mlock) and
    `dd` (MADV_DONTDUMP); once answered, VmLck is back where it was. Every
    locked mapping of the process is also `dd`.
  - vCenter's sequence (Create, three Add Attribute in one batch, Get of 32
    bytes, Activate, each task on its own connection after Discover Versions),
    a raw Register of known key bytes and one of Secret Data leave none of them anywhere in the
    gateway's files (store, -wal, -shm, audit log, stderr log, token files:
    test_at_rest's scanner, so bytes, hex in both cases, base64, halves),
    neither while it runs nor after a SIGKILL leaves the WAL as it was; and
    the HSM PIN (DIR/hsm.pin) appears in none of them either.
  - the same keys are gone from the gateway's memory once answered (every
    readable mapping read through /proc/PID/mem: cleansed, not just freed).
  - the PIN sits only in locked memory. EXPECTED TO FAIL for now: libp11's
    PKCS11_login (pkcs11/kg_p11.c, kg_p11_login) keeps its own malloc'ed
    copy of the PIN (PKCS11_SLOT_private.prev_pin, for a re-login after
    fork) for the life of the slot, in ordinary heap memory.

Tests that read another process's memory or flags need root (CAP_SYS_PTRACE,
since the gateway is not dumpable); they are skipped otherwise.
"""

import base64
import ctypes
import os
import re
import subprocess
import sys
import time
import unittest

import kg_kmip as K
from kg_harness import GatewayTestCase
from kg_ttlv import S, Bytes, Enum, Int, encode
from test_at_rest import find_leaks

PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024

# Runs in a child: drop CAP_SYS_PTRACE, then try to open /proc/PID/mem of each
# PID given. Prints one word per PID: readable | denied | gone.
_NO_PTRACE_READER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
header = Header(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3
data = (Data * 2)()
if libc.capget(ctypes.byref(header), data) != 0:
    print("capget-failed"); sys.exit(0)
CAP_SYS_PTRACE = 19
data[0].effective &= ~(1 << CAP_SYS_PTRACE)
data[0].permitted &= ~(1 << CAP_SYS_PTRACE)
data[0].inheritable &= ~(1 << CAP_SYS_PTRACE)
if libc.capset(ctypes.byref(header), data) != 0:
    print("capset-failed"); sys.exit(0)
out = []
for pid in sys.argv[1:]:
    try:
        with open("/proc/%s/mem" % pid, "rb"):
            pass
        out.append("readable")
    except PermissionError:
        out.append("denied")
    except FileNotFoundError:
        out.append("gone")
print(" ".join(out))
"""

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
_CAP_SYS_PTRACE = 19


def _drop_ptrace_from_bounding_set():
    """preexec_fn: after exec the process cannot hold CAP_SYS_PTRACE (a no-op when
    not root: there is nothing to drop)."""
    _LIBC.prctl(_PR_CAPBSET_DROP, _CAP_SYS_PTRACE, 0, 0, 0)


def register_item(material, bid=None):
    """Register of an AES-256 Raw key (vCenter-style header; the builders lack one)."""
    return K.BatchItem("REGISTER", [
        Enum("OBJECT_TYPE", "SYMMETRIC_KEY"),
        S("TEMPLATE_ATTRIBUTE", K.attr("Cryptographic Usage Mask", Int("ATTRIBUTE_VALUE", 12))),
        S("SYMMETRIC_KEY",
          S("KEY_BLOCK",
            Enum("KEY_FORMAT_TYPE", "RAW"),
            S("KEY_VALUE", Bytes("KEY_MATERIAL", material)),
            Enum("CRYPTOGRAPHIC_ALGORITHM", "AES"),
            Int("CRYPTOGRAPHIC_LENGTH", 256))),
    ], bid)


# --- /proc readers ---------------------------------------------------------------------
def proc_status(pid, field):
    """A numeric field of /proc/PID/status in kB (VmLck, VmRSS, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def smaps(pid):
    """[(start, end, perms, name, rss_kb, vmflags)] of /proc/PID/smaps."""
    out, cur = [], None
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = head.match(line)
            if m:
                cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4), 0, ()]
                out.append(cur)
            elif line.startswith("Rss:") and cur is not None:
                cur[4] = int(line.split()[1])
            elif line.startswith("VmFlags:") and cur is not None:
                cur[5] = tuple(line.split()[1:])
    return [tuple(m) for m in out]


def locked_mappings(pid):
    return {(s, e): flags for s, e, _, _, _, flags in smaps(pid) if "lo" in flags}


_WHOLE_READ_MAX = 64 << 20     # read mappings up to this size whole
_PAGEMAP_MAX = 16 << 30        # bigger ones only where pages are present; beyond: skipped
                               # (ASan's shadow: terabytes, and no data of ours)


def _present_runs(pid, start, end, page):
    """[(addr, len)] runs of present (or swapped) pages of [start, end), from pagemap."""
    runs = []
    with open("/proc/%d/pagemap" % pid, "rb", 0) as pm:
        pm.seek(start // page * 8)
        raw = pm.read((end - start) // page * 8)
    run_start = None
    for i in range(0, len(raw), 8):
        entry = int.from_bytes(raw[i:i + 8], "little")
        present = entry & (3 << 62)
        addr = start + i // 8 * page
        if present and run_start is None:
            run_start = addr
        elif not present and run_start is not None:
            runs.append((run_start, addr - run_start))
            run_start = None
    if run_start is not None:
        runs.append((run_start, end - run_start))
    return runs


def scan_memory(pid, needles):
    """{label: [(address, perms, name, locked)]} for every occurrence of each needle
    (bytes) in the readable memory of process `pid`."""
    page = os.sysconf("SC_PAGESIZE")
    hits = {label: [] for label in needles}
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for start, end, perms, name, rss, flags in smaps(pid):
            if not perms.startswith("r") or rss == 0 or name in ("[vvar]", "[vsyscall]", "[vdso]"):
                continue
            size = end - start
            if size <= _WHOLE_READ_MAX:
                runs = [(start, size)]
            elif size <= _PAGEMAP_MAX:
                runs = _present_runs(pid, start, end, page)
            else:
                continue
            for addr, length in runs:
                try:
                    mem.seek(addr)
                    data = mem.read(length)
                except OSError:
                    continue  # unmapped meanwhile, or a guard page
                for label, needle in needles.items():
                    i = data.find(needle)
                    while i >= 0:
                        hits[label].append((addr + i, perms, name, "lo" in flags))
                        i = data.find(needle, i + 1)
    return hits


def memory_needles(label, material):
    return {label: material, label + " (hex)": material.hex().encode(),
            label + " (HEX)": material.hex().upper().encode(),
            label + " (base64)": base64.b64encode(material).rstrip(b"=")}


class Secrets(GatewayTestCase):
    gw_name = "secrets"

    # --- helpers ---------------------------------------------------------------------
    def pid(self):
        self.assertTrue(self.gw.alive(), "gateway not running")
        return self.gw.proc.pid

    def need_proc_memory_access(self):
        try:
            with open("/proc/%d/mem" % self.pid(), "rb", 0) as f:
                f.seek(0)
            smaps(self.pid())
        except PermissionError:
            self.skipTest("cannot read the gateway's memory (needs root / CAP_SYS_PTRACE: "
                          "the gateway is not dumpable)")

    def skip_if_asan(self):
        # AddressSanitizer intercepts mlock() and makes it a no-op that reports
        # success, so under ASan nothing is ever locked and VmLck stays 0.
        with open("/proc/%d/maps" % self.pid()) as f:
            asan = any("libasan" in line or "libclang_rt.asan" in line for line in f)
        if not asan:
            with open(self.gw.bin, "rb") as f:
                asan = b"__asan_init" in f.read()
        if asan:
            self.skipTest("the gateway runs under AddressSanitizer, whose mlock() locks nothing")

    def pin(self):
        with open(self.gw.path("hsm.pin"), "rb") as f:
            pin = f.read().strip()
        self.assertGreaterEqual(len(pin), 4, "devenv PIN too short to search for")
        return pin

    def vcenter_sequence(self):
        """Create, batched Add Attribute x3, Get, Activate as vCenter does them; the key bytes."""
        (resp,) = self.gw.task("vsphere", K.request(K.create_aes256(K.vcenter_batch_id(1))))
        self.assertSuccess(resp.item, "Create")
        uid = resp.item.uid()
        pairs = [("x-Product_Version", "8.0.1 build-21560480"), ("x-Vendor", "VMware, Inc."),
                 ("x-Product", "VMware vSphere")]
        (resp,) = self.gw.task("vsphere", K.request(
            [K.add_attribute(uid, n, v, K.vcenter_batch_id(i + 1)) for i, (n, v) in enumerate(pairs)]))
        self.assertEqual(len(resp.items), 3)
        for it in resp.items:
            self.assertSuccess(it, "batched Add Attribute")
        (resp,) = self.gw.task("vsphere", K.request(K.get(uid, K.vcenter_batch_id(1))))
        self.assertSuccess(resp.item, "Get")
        material = K.symmetric_key_of(resp.item.payload)[0]
        self.assertIsInstance(material, bytes)
        self.assertEqual(len(material), 32)
        (resp,) = self.gw.task("vsphere", K.request(K.activate(uid, K.vcenter_batch_id(1))))
        self.assertSuccess(resp.item, "Activate")
        return uid, material

    def register_known_key(self):
        material = os.urandom(32)
        resp = self.gw.request("admin", K.request(register_item(material, K.batch_id())))
        self.assertSuccess(resp.item, "Register")
        uid = resp.item.uid()
        resp = self.gw.request("admin", K.request(K.get(uid, K.batch_id())))
        self.assertSuccess(resp.item, "Get of the registered key")
        self.assertEqual(K.symmetric_key_of(resp.item.payload)[0], material)
        return uid, material

    def register_known_secret_data(self):
        # Secret Data takes the symmetric key's path: locked request, kg_secret, HSM.
        material = os.urandom(32)
        resp = self.gw.request("admin", K.request(K.register_secret_data(material, bid=K.batch_id()),
                                                  version=(1, 4)))
        self.assertSuccess(resp.item, "Register of Secret Data")
        uid = resp.item.uid()
        resp = self.gw.request("admin", K.request(K.get(uid, K.batch_id()), version=(1, 4)))
        self.assertSuccess(resp.item, "Get of the Secret Data")
        self.assertEqual(K.secret_data_of(resp.item.payload)[2], material)
        return uid, material

    # --- core dumps --------------------------------------------------------------------
    def test_core_dumps_disabled(self):
        with open("/proc/%d/limits" % self.pid()) as f:
            line = next((l for l in f if l.startswith("Max core file size")), None)
        self.assertIsNotNone(line, "no core file size in /proc/PID/limits")
        soft, hard = line[len("Max core file size"):].split()[:2]
        self.assertEqual((soft, hard), ("0", "0"), "core file size limit: %r" % line)

    def test_process_not_dumpable(self):
        # A ptrace-mode access such as opening /proc/PID/mem is allowed to a process
        # of the same uid without CAP_SYS_PTRACE only if (1) the target is dumpable and
        # (2) the target's permitted capabilities are a subset of the caller's. So the
        # gateway and a dumpable control (`sleep`) run without CAP_SYS_PTRACE in their
        # bounding set, and a reader that dropped only CAP_SYS_PTRACE opens both: the
        # control must open (else the check says nothing here), the gateway must not.
        gw = self.gw
        gw.stop()
        gw.preexec_fn = _drop_ptrace_from_bounding_set
        control = None
        try:
            gw.start()
            control = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL,
                                       preexec_fn=_drop_ptrace_from_bounding_set)
            r = subprocess.run([sys.executable, "-c", _NO_PTRACE_READER, str(control.pid),
                                str(self.pid())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30)
        finally:
            if control is not None:
                control.kill()
                control.wait()
            gw.preexec_fn = None
            gw.stop()
            gw.start()
        words = r.stdout.decode().split()
        if len(words) != 2:
            self.skipTest("cannot drop CAP_SYS_PTRACE in a helper: %r %r" % (r.stdout, r.stderr))
        if words[0] != "readable":
            self.skipTest("/proc/PID/mem of a dumpable process of the same uid and capabilities "
                          "is %s too: the dumpable flag is not observable here" % words[0])
        self.assertEqual(words[1], "denied",
                         "/proc/PID/mem of the gateway opens without CAP_SYS_PTRACE: it is "
                         "dumpable (prctl(PR_SET_DUMPABLE, 0) missing?)")

    # --- locked memory -----------------------------------------------------------------
    def test_request_buffer_is_locked_and_not_dumped(self):
        # A Register is sent up to the middle of its key material and held there: the
        # key's first half is then in the gateway's request buffer. Every copy of it in
        # the process must be in locked memory excluded from core dumps. (Locked pages
        # are reused from a cache, so VmLck need not grow: look for the bytes instead.)
        self.need_proc_memory_access()
        self.skip_if_asan()
        pid = self.pid()
        material = os.urandom(32)
        msg = encode(K.request(register_item(material, K.batch_id())))
        split = msg.index(material) + 16
        with self.gw.connect("admin") as c:
            self.assertSuccess(c.request(K.discover_versions()).item)
            c.send(msg[:split])
            hits, deadline = [], time.monotonic() + 5
            while not hits and time.monotonic() < deadline:
                time.sleep(0.05)
                hits = scan_memory(pid, {"half": material[:16]})["half"]
            locked = locked_mappings(pid)
            c.send(msg[split:])
            resp = K.Response(c.recv_message())
            self.assertSuccess(resp.item, "Register sent in two parts")
        self.assertTrue(hits, "the half-read key bytes are nowhere in memory: memory scan broken?")
        unlocked = ["%x %s %s" % (a, p, n) for a, p, n, lo in hits if not lo]
        self.assertEqual(unlocked, [], "half-read key bytes in unlocked memory")
        for addr, _, _, _ in hits:
            flags = [f for (start, end), f in locked.items() if start <= addr < end]
            self.assertTrue(flags and "dd" in flags[0],
                            "locked request buffer at %x may be dumped (%s)" % (addr, flags))
        for (start, end), flags in locked_mappings(pid).items():
            self.assertIn("dd", flags, "locked mapping %x-%x not excluded from core dumps" % (start, end))

    # --- leftovers of key bytes and the PIN ------------------------------------------------
    def test_no_key_bytes_or_pin_in_files_after_vcenter_sequence_and_register(self):
        # test_at_rest covers keys made through PyKMIP and a clean stop; this is vCenter's
        # raw sequence, a raw Register, the PIN, and a SIGKILL that leaves the WAL as is.
        created_uid, created = self.vcenter_sequence()
        registered_uid, registered = self.register_known_key()
        data_uid, data = self.register_known_secret_data()
        secrets = {"created %s" % created_uid: created, "registered %s" % registered_uid: registered,
                   "secret data %s" % data_uid: data, "HSM PIN": self.pin()}
        files = self.gw.state_files()
        names = [os.path.basename(f) for f in files]
        self.assertTrue(self.gw.store_files(), "no store files at %s" % self.gw.store_location())
        for required in ("audit.log", os.path.basename(self.gw.log_path)):
            self.assertIn(required, names)
        with open(self.gw.path("audit.log"), "rb") as f:
            audit = f.read()
        self.assertIn(created_uid.encode(), audit, "the audit log does not name the created key")
        self.assertIn(registered_uid.encode(), audit, "the audit log does not name the registered key")
        self.assertEqual(find_leaks(files, secrets), [], "secrets in the gateway's files while running")
        self.gw.kill()
        self.assertEqual(find_leaks(self.gw.state_files(), secrets), [],
                         "secrets in the gateway's files after SIGKILL")
        self.gw.start()

    def test_key_bytes_cleansed_from_memory_after_answers(self):
        self.need_proc_memory_access()
        _, created = self.vcenter_sequence()
        _, registered = self.register_known_key()
        _, data = self.register_known_secret_data()
        time.sleep(0.3)  # the loop wipes a response right after its last byte is written
        needles = dict(memory_needles("created key", created))
        needles.update(memory_needles("registered key", registered))
        needles.update(memory_needles("secret data", data))
        needles["control: config path in argv"] = self.gw.path("gateway.yaml").encode()
        hits = scan_memory(self.pid(), needles)
        self.assertTrue(hits.pop("control: config path in argv"),
                        "memory scan broken: the config path from argv was not found")
        found = {k: ["%x %s %s%s" % (a, p, n, " locked" if lo else "") for a, p, n, lo in v]
                 for k, v in hits.items() if v}
        self.assertEqual(found, {}, "key bytes still in the gateway's memory after the answers")

    def test_pin_only_in_locked_memory(self):
        # The login goes through C_Login, not PKCS11_login, which kept a heap copy of the PIN.
        self.need_proc_memory_access()
        self.skip_if_asan()
        hits = scan_memory(self.pid(), {"pin": self.pin()})["pin"]
        self.assertTrue(hits, "the PIN is nowhere in memory: the pool's locked copy was expected")
        unlocked = ["%x %s %s" % (a, p, n) for a, p, n, lo in hits if not lo]
        self.assertEqual(unlocked, [], "the HSM PIN in unlocked (swappable, dumpable) memory")


if __name__ == "__main__":
    unittest.main()
