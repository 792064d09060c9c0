"""meson install: the binary, the systemd unit and the example configuration land where
they should, and the unit's paths follow --prefix, --bindir and --sysconfdir.

A fresh build directory in a temp dir (so the developer's build/ is not reconfigured),
`meson install --destdir`, then the installed files are checked, and the unit is passed
through `systemd-analyze verify` when this machine has it (skipped with the reason when
not). Nothing here needs a running systemd.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from kg_harness import ROOT

BUILD_TIMEOUT = 600


def run(*cmd, cwd=None):
    r = subprocess.run(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=BUILD_TIMEOUT)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode,
                                                       r.stdout.decode(errors="replace")[-4000:]))
    return r.stdout.decode(errors="replace")


def unit_settings(path):
    """{key: [values]} of a unit file (comments skipped)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", "[")):
                continue
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("meson") is None:
            raise unittest.SkipTest("meson is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="kgtest-install-")
        cls.build = os.path.join(cls.tmp, "build")
        run("meson", "setup", cls.build, ROOT, "--prefix=/usr/local")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("KGTEST_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def install(self, name):
        dest = os.path.join(self.tmp, name)
        run("meson", "install", "-C", self.build, "--destdir", dest, "--quiet")
        return dest

    def test_default_prefix(self):
        dest = self.install("dest-default")
        binary = os.path.join(dest, "usr/local/bin/kmipgw")
        unit = os.path.join(dest, "usr/local/lib/systemd/system/kmipgw.service")
        examples = os.path.join(dest, "usr/local/share/doc/kmipgw/examples")
        self.assertTrue(os.access(binary, os.X_OK), binary)
        self.assertTrue(os.path.isfile(unit), unit)
        for name in ("gateway.yaml", "policy.yaml"):
            with open(os.path.join(ROOT, "conf", name), "rb") as f, \
                    open(os.path.join(examples, name), "rb") as g:
                self.assertEqual(f.read(), g.read(), name)
        # Examples only: nothing that could replace a live configuration on upgrade.
        self.assertFalse(os.path.exists(os.path.join(dest, "usr/local/etc")))
        self.assertEqual(run(binary, "version").strip(), "kmipgw 0.1.0")

        s = unit_settings(unit)
        self.assertEqual(s["ExecStart"], ["/usr/local/bin/kmipgw serve --config /usr/local/etc/kmipgw/gateway.yaml"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(s["User"], ["kmipgw"])
        self.assertEqual(s["DynamicUser"], ["no"])
        for key, want in (("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("NoNewPrivileges", "yes"), ("CapabilityBoundingSet", ""),
                          ("LimitCORE", "0"), ("LimitMEMLOCK", "infinity"), ("UMask", "0077"),
                          ("MemoryDenyWriteExecute", "yes"), ("LockPersonality", "yes"),
                          ("RestrictRealtime", "yes"), ("ProtectKernelTunables", "yes"),
                          ("ProtectKernelModules", "yes"), ("ProtectKernelLogs", "yes"),
                          ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                          ("Restart", "on-failure")):
            self.assertEqual(s.get(key), [want], key)
        rw = s["ReadWritePaths"][0].split()
        for path in ("/var/lib/kmipgw", "/var/log/kmipgw", "-/var/lib/softhsm/tokens"):
            self.assertIn(path, rw)
        with open(unit) as f:
            text = f.read()
        self.assertIsNone(re.search(r"@[A-Z_]+@", text), "an unsubstituted @VAR@ is left in the unit")
        self.assertEqual(s["SystemCallFilter"], ["@system-service", "~@privileged"])
        self.verify(unit, dest)

    def test_prefix_sysconfdir_and_unitdir_follow_options(self):
        run("meson", "configure", self.build, "--prefix=/opt/kmipgw", "--sysconfdir=/etc",
            "-Dsystemdunitdir=/etc/systemd/system")
        try:
            dest = self.install("dest-opt")
        finally:
            run("meson", "configure", self.build, "--prefix=/usr/local", "--sysconfdir=etc",
                "-Dsystemdunitdir=")
        unit = os.path.join(dest, "etc/systemd/system/kmipgw.service")
        self.assertTrue(os.access(os.path.join(dest, "opt/kmipgw/bin/kmipgw"), os.X_OK))
        self.assertTrue(os.path.isfile(os.path.join(dest, "opt/kmipgw/share/doc/kmipgw/examples/policy.yaml")))
        self.assertEqual(unit_settings(unit)["ExecStart"],
                         ["/opt/kmipgw/bin/kmipgw serve --config /etc/kmipgw/gateway.yaml"])

    def verify(self, unit, dest):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            print("\n  systemd-analyze verify skipped: systemd-analyze is not installed here")
            return
        # verify insists that ExecStart's binary exists; it is only under DESTDIR here,
        # so check a copy whose binary path points there. Everything else is as installed.
        copy_dir = tempfile.mkdtemp(dir=self.tmp)
        copy = os.path.join(copy_dir, "kmipgw.service")
        with open(unit) as f:
            text = f.read()
        with open(copy, "w") as f:
            f.write(text.replace("/usr/local/bin/kmipgw", os.path.join(dest, "usr/local/bin/kmipgw")))
        r = subprocess.run([analyze, "verify", copy], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        self.assertEqual(r.returncode, 0, "systemd-analyze verify:\n%s" % r.stdout.decode(errors="replace"))
        self.assertNotIn(b"kmipgw.service:", r.stdout, r.stdout.decode(errors="replace"))
