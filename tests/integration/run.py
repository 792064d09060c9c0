#!/usr/bin/python3
"""Run every integration test module (tests/integration/test_*.py).

    /usr/bin/python3 tests/integration/run.py [-k PATTERN] [--suite NAME] [MODULE ...]

Each test class builds its own devenv (scripts/devenv in a temp dir, free
loopback port) and runs build/gateway/kmipgw (or $KMIPGW_BIN) against SoftHSM.
Prints unittest's usual report and, last, exactly one line

    kgtest-summary: integration <passed> <failed>

(skipped tests count as neither; --suite NAME replaces "integration", so that runs
against different tokens can be told apart); exits non-zero if anything failed.

KGTEST_TOKEN=opencryptoki (with KGTEST_OCK_DIR, see kg_harness.py) runs the gateways on
the openCryptoki soft token that scripts/ock-token started; test modules that reach into
SoftHSM itself (kg_harness.SOFTHSM_ONLY) are then skipped with their reason.

Needs Debian's python3-pykmip, so /usr/bin/python3: when started by another
interpreter without PyKMIP, it re-executes itself with /usr/bin/python3.
$KGTEST_TIMEOUT (seconds, default 900) bounds the whole run.
"""

import argparse
import faulthandler
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"


def ensure_pykmip():
    try:
        import kmip  # noqa: F401
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) and \
                os.path.exists(SYSTEM_PYTHON):
            os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
        sys.stderr.write("run.py: PyKMIP is not importable (apt-get install python3-pykmip)\n")
        summary(0, 1)
        sys.exit(1)


SUITE = "integration"


def summary(passed, failed):
    sys.stdout.flush()
    sys.stderr.flush()
    print("kgtest-summary: %s %d %d" % (SUITE, passed, failed), flush=True)


def suite_name(text):
    # One word: scripts/test splits the summary line on blanks.
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise argparse.ArgumentTypeError("a suite name is letters, digits, - _ . only")
    return text


def each_test(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from each_test(t)
        else:
            yield t


def skip_modules(suite, only, why):
    """Mark the classes of modules in `only` ({module: reason}) skipped, setUpClass included."""
    for t in each_test(suite):
        module = type(t).__module__.rpartition(".")[2]
        if module in only:
            cls = type(t)
            cls.__unittest_skip__ = True
            cls.__unittest_skip_why__ = "%s: %s" % (why, only[module])


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="test modules (default: every test_*.py here)")
    ap.add_argument("-k", dest="patterns", action="append",
                    help="only tests whose name matches this substring/glob (repeatable)")
    ap.add_argument("-q", dest="quiet", action="store_true", help="less output")
    ap.add_argument("--suite", type=suite_name, default="integration",
                    help="name printed in the kgtest-summary line (default integration)")
    args = ap.parse_args()
    global SUITE
    SUITE = args.suite

    ensure_pykmip()
    sys.path.insert(0, HERE)
    os.chdir(HERE)
    import kg_harness

    faulthandler.dump_traceback_later(float(os.environ.get("KGTEST_TIMEOUT", "900")), exit=True)

    if kg_harness.server_kind() == "kmipgw":
        binary = kg_harness.kmipgw_bin()
        if not os.access(binary, os.X_OK):
            sys.stderr.write(
                "\n*** run.py: kmipgw binary not found or not executable: %s\n"
                "*** build it first (meson setup build && ninja -C build) or set KMIPGW_BIN\n\n"
                % binary)
            summary(0, 1)
            return 1
    else:
        sys.stderr.write("run.py: KGTEST_SERVER=%s: validating the harness only, not kmipgw\n"
                         % kg_harness.server_kind())

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if any(c in p for c in "*?[") else "*%s*" % p
                                   for p in args.patterns]
    if args.modules:
        names = [os.path.splitext(os.path.basename(m))[0] for m in args.modules]
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    try:
        store = kg_harness.store_kind()
        token = kg_harness.token_kind()
        if token == "opencryptoki":
            conf = kg_harness.ock_token()
            sys.stderr.write("run.py: openCryptoki token '%s' via %s\n"
                             % (conf["token_label"], conf["module"]))
    except kg_harness.HarnessError as e:
        sys.stderr.write("run.py: %s\n" % e)
        summary(0, 1)
        return 1
    if token != "softhsm":
        skip_modules(suite, kg_harness.SOFTHSM_ONLY, "SoftHSM only")
    if store != "sqlite":
        skip_modules(suite, kg_harness.SQLITE_ONLY, "SQLite store only")

    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1 if args.quiet else 2,
                                     resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    summary(result.passed, failed)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
