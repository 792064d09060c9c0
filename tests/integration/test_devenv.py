"""scripts/devenv's settings from the environment: KMIPGW_WORKERS and KMIPGW_SESSIONS land in
gateway.yaml (scripts/bench measures SoftHSM with fewer than the defaults), and a value that is
not a whole number from 1 is refused before anything is made (empty means the default)."""

import os
import shutil
import subprocess
import tempfile
import unittest

from kg_harness import ROOT

DEVENV = os.path.join(ROOT, "scripts", "devenv")


class Devenv(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kgtest-devenv-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "dev")

    def devenv(self, **env):
        e = dict(os.environ, KMIPGW_PORT="25697", **env)
        return subprocess.run([DEVENV, self.dir], env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=300)

    def settings(self):
        with open(os.path.join(self.dir, "gateway.yaml")) as f:
            lines = [l.strip() for l in f]
        return [l for l in lines if l.startswith(("workers:", "sessions:"))]

    def test_defaults_and_chosen_values(self):
        r = self.devenv()
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace")[-2000:])
        self.assertEqual(sorted(self.settings()), ["sessions: 8", "workers: 16"])
        r = self.devenv(KMIPGW_WORKERS="4", KMIPGW_SESSIONS="2")
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace")[-2000:])
        self.assertEqual(sorted(self.settings()), ["sessions: 2", "workers: 4"])

    def test_bad_values_refused_before_anything_is_made(self):
        for name in ("KMIPGW_WORKERS", "KMIPGW_SESSIONS"):
            for bad in ("0", "x4", "-1", "08", "4 "):  # empty means the default, as for KMIPGW_PORT
                with self.subTest(name=name, value=bad):
                    self.dir = os.path.join(self.tmp, "dev-%s-%s" % (name, bad.strip()))
                    r = self.devenv(**{name: bad})
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn(b"must be whole numbers from 1", r.stdout)
                    self.assertFalse(os.path.exists(self.dir), "devenv made %s before refusing" % self.dir)


if __name__ == "__main__":
    unittest.main()
