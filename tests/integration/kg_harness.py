"""kg_harness - run a kmipgw on a fresh devenv and talk to it.

    gw = Gateway("vcenter")      # scripts/devenv in a temp dir, free loopback port
    gw.start()                   # kmipgw serve, stderr to DIR/kmipgw.stderr.log
    resp = gw.request("vsphere", kg_kmip.request(kg_kmip.discover_versions()))
    with gw.pykmip_client("admin") as c: uid = c.create(...)
    gw.stop()                    # SIGTERM, SIGKILL after a timeout
    gw.cleanup()

Environment:
    KMIPGW_BIN      the gateway binary (default <root>/build/gateway/kmipgw)
    KGTEST_KEEP=1   keep the temp dirs (their paths are printed)
    KGTEST_SERVER=pykmip   run Debian's PyKMIP server instead of kmipgw on the same devenv
                    PKI. Only to check this harness and the client code: PyKMIP does
                    not implement the gateway's behaviour, so most tests fail there.
    KGTEST_TOKEN=opencryptoki   use the openCryptoki soft token that
                    `scripts/ock-token start $KGTEST_OCK_DIR` runs instead of a SoftHSM
                    token per Gateway. The token is shared, so each Gateway gets its own
                    master wrapping key label (kgtest-<its dir>), its own copy of the PIN in
                    DIR/hsm.pin, and runs `kmipgw init` itself. Default: softhsm.
    KGTEST_OCK_DIR  the directory given to scripts/ock-token start (it holds token.env)

Everything is loopback-only and every socket operation has a timeout.
"""

import os
import atexit
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import kg_kmip
from kg_ttlv import encode, Item

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEVENV = os.path.join(ROOT, "scripts", "devenv")
VECTORS = os.environ.get("KGTEST_VECTORS",
                         os.path.join(os.path.dirname(ROOT), "shared", "kmip-vectors"))
VCENTER_VECTORS = os.path.join(VECTORS, "vcenter-8.0.1")

IO_TIMEOUT = 10.0      # every socket read/write
START_TIMEOUT = 30.0   # serve until the port accepts
STOP_TIMEOUT = 10.0    # SIGTERM until SIGKILL

IDENTITIES = ("vsphere", "backup", "admin", "unlisted", "rogue")


def kmipgw_bin():
    return os.environ.get("KMIPGW_BIN") or os.path.join(ROOT, "build", "gateway", "kmipgw")


def server_kind():
    return os.environ.get("KGTEST_SERVER", "kmipgw")


TOKENS = ("softhsm", "opencryptoki")

# Test modules that reach into the SoftHSM token itself (its files or softhsm2-util);
# under another token run.py marks their classes skipped with this reason.
SOFTHSM_ONLY = {
    "test_resident": "counts SoftHSM's object files in DIR/tokens",
    "test_tls_hsm": "imports the TLS key with softhsm2-util",
}


STORES = ("sqlite", "postgresql")

# Test modules that only make sense on a SQLite store; with KGTEST_STORE=postgresql run.py
# marks their classes skipped with the reason. None now: tests that read or alter rows go
# through Gateway.store_db, which speaks to either database.
SQLITE_ONLY = {}

_pg_databases = [0]


def store_kind():
    kind = os.environ.get("KGTEST_STORE", "sqlite")
    if kind not in STORES:
        raise HarnessError("KGTEST_STORE must be one of %s, not %r" % (", ".join(STORES), kind))
    return kind


def pg_database():
    """A new, empty database on the server scripts/pg-server started in $KGTEST_PG_DIR;
    returns its store URL."""
    base = os.environ.get("KGTEST_PG_DIR")
    if not base:
        raise HarnessError("KGTEST_STORE=postgresql needs KGTEST_PG_DIR (the directory of "
                           "scripts/pg-server start DIR)")
    _pg_databases[0] += 1
    name = "kgtest_%d_%d" % (os.getpid(), _pg_databases[0])
    r = subprocess.run([os.path.join(ROOT, "scripts", "pg-server"), "createdb", base, name],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise HarnessError("pg-server createdb failed: %s" % r.stdout.decode(errors="replace"))
    return r.stdout.decode().strip().splitlines()[-1]


def token_kind():
    kind = os.environ.get("KGTEST_TOKEN", "softhsm")
    if kind not in TOKENS:
        raise HarnessError("KGTEST_TOKEN must be one of %s, not %r" % (", ".join(TOKENS), kind))
    return kind


def ock_token():
    """The openCryptoki token's settings from $KGTEST_OCK_DIR/token.env (written by
    scripts/ock-token start): a dict with module, slot, token_label, pin_file, token_dir."""
    base = os.environ.get("KGTEST_OCK_DIR")
    if not base:
        raise HarnessError("KGTEST_TOKEN=opencryptoki needs KGTEST_OCK_DIR (the directory of "
                           "scripts/ock-token start DIR)")
    env = os.path.join(base, "token.env")
    try:
        with open(env) as f:
            pairs = [line.rstrip("\n").partition("=") for line in f if "=" in line]
    except OSError as e:
        raise HarnessError("no openCryptoki token in %s (%s): run scripts/ock-token start %s"
                           % (base, e, base)) from None
    conf = {k: v for k, _, v in pairs}
    missing = [k for k in ("module", "token_label", "pin_file", "token_dir") if not conf.get(k)]
    if missing:
        raise HarnessError("%s lacks %s" % (env, ", ".join(missing)))
    return conf


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HarnessError(RuntimeError):
    pass


_LIVE = set()  # Gateways with a process, stopped at exit whatever happens


@atexit.register
def _stop_all():
    for gw in list(_LIVE):
        gw.stop(timeout=3.0)


class ConnectionClosed(Exception):
    """The peer closed (or reset) the connection."""


def _closed_errors():
    return (ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
            ssl.SSLEOFError, ssl.SSLZeroReturnError)


class KmipConnection:
    """One mutual-TLS connection; send TTLV messages, read whole responses."""

    def __init__(self, port, context, timeout=IO_TIMEOUT, source=None):
        # source: a local address to connect from (e.g. "127.0.0.2": any 127/8
        # address works on Linux loopback), so per-address limits can be told apart.
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        try:
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self.sock.settimeout(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, Item):
            data = encode(data)
        self.sock.sendall(data)

    def _read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except _closed_errors() as e:
                raise ConnectionClosed("%s after %d bytes" % (type(e).__name__, len(buf))) from None
            except ssl.SSLError as e:
                # A TLS alert from the server (e.g. certificate required / unknown CA).
                raise ConnectionClosed("TLS alert: %s" % e) from None
            if not chunk:
                raise ConnectionClosed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_message(self):
        """One whole TTLV message: the 8-byte header, then its declared length."""
        head = self._read_exact(8)
        length = int.from_bytes(head[4:8], "big")
        if length > 16 * 1024 * 1024:
            raise HarnessError("response declares %d bytes" % length)
        return head + self._read_exact(length)

    def roundtrip(self, data):
        self.send(data)
        return self.recv_message()

    def request(self, msg):
        """Send a request (Item, BatchItem or list of BatchItems) -> Response."""
        if isinstance(msg, (kg_kmip.BatchItem, list)):
            msg = kg_kmip.request(msg)
        return kg_kmip.Response(self.roundtrip(msg))

    def wait_closed(self, timeout=IO_TIMEOUT):
        """True if the peer closes within `timeout` without sending anything more;
        raises HarnessError if it sends data instead."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except (_closed_errors() + (ssl.SSLError,)):
            return True
        if data:
            raise HarnessError("expected the connection to close, got data %r" % data)
        return True


class Gateway:
    """A devenv in a temp dir and the server process serving it."""

    def __init__(self, name="kgtest", kind=None, extra_env=None):
        self.kind = kind or server_kind()
        self.name = name
        # Added to the server's environment by env() (not to scripts/devenv's).
        self.extra_env = dict(extra_env or {})
        # Called in the server's child process before exec (subprocess preexec_fn),
        # e.g. to drop a capability from its bounding set; None: nothing.
        self.preexec_fn = None
        self.dir = tempfile.mkdtemp(prefix="kgtest-%s-" % name)
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "kmipgw.stderr.log")
        self._log = None
        self.bin = kmipgw_bin()
        if self.kind == "kmipgw" and not os.access(self.bin, os.X_OK):
            raise HarnessError("kmipgw binary not found at %s (build it: meson setup build && "
                               "ninja -C build, or set KMIPGW_BIN)" % self.bin)
        self.token = token_kind()
        self.ock = ock_token() if self.token == "opencryptoki" else None
        env = dict(os.environ, KMIPGW_PORT=str(self.port), KMIPGW_HSM="softhsm")
        if self.kind == "kmipgw" and self.ock is None:
            env["KMIPGW_BIN"] = self.bin
        else:
            env["KMIPGW_BIN"] = os.path.join(self.dir, "no-kmipgw")  # devenv skips init
        r = subprocess.run(["bash", DEVENV, self.dir], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        self.devenv_output = r.stdout.decode(errors="replace")
        if r.returncode != 0:
            raise HarnessError("scripts/devenv %s failed (%d):\n%s"
                               % (self.dir, r.returncode, self.devenv_output))
        if self.kind == "kmipgw" and not os.path.exists(os.path.join(self.dir, "policy.yaml")):
            raise HarnessError("devenv wrote no policy.yaml (conf/policy.yaml missing?):\n%s"
                               % self.devenv_output)
        if self.ock is not None:
            self._use_ock()
        self.store = store_kind()
        self.store_url = None
        if self.store == "postgresql":
            self.use_postgresql(pg_database())
        if os.environ.get("KGTEST_KEEP"):
            sys.stderr.write("kgtest: devenv %s kept in %s\n" % (name, self.dir))

    def _use_ock(self):
        """Point gateway.yaml at the shared openCryptoki token and make this gateway's MWK.
        devenv skipped `kmipgw init` (it would have run on its SoftHSM token)."""
        with open(self.ock["pin_file"]) as f:
            pin = f.readline().rstrip("\n")
        fd = os.open(self.path("hsm.pin"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pin)
        self.set_config("hsm", "module", self.ock["module"])
        self.set_config("hsm", "token_label", self.ock["token_label"])
        self.set_config("hsm", "pin_file", "hsm.pin")
        # One token for every gateway: a label of its own keeps each MWK (and its
        # generations under rotate-master) apart.
        self.set_config("hsm", "mwk_label", "kgtest-" + os.path.basename(self.dir))
        if self.kind != "kmipgw":
            return
        r = subprocess.run([self.bin, "init", "--config", self.path("gateway.yaml")],
                           env=self.env(), cwd=self.dir, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if r.returncode != 0:
            raise HarnessError("kmipgw init on the openCryptoki token failed (%d):\n%s"
                               % (r.returncode, r.stdout.decode(errors="replace")))

    # --- paths -----------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def cert(self, identity):
        return self.path("pki", identity + ".crt")

    def key(self, identity):
        return self.path("pki", identity + ".key")

    @property
    def ca(self):
        return self.path("pki", "ca.crt")

    def env(self):
        env = dict(os.environ, SOFTHSM2_CONF=self.path("softhsm2.conf"))
        env.update(self.extra_env)
        return env

    def store_db(self, readonly=False):
        """A DB-API connection to this gateway's store, whichever database it is on, for tests
        that read or tamper with rows: `with gw.store_db() as db: db.execute(sql, params)`.
        SQL is written SQLite's way with `?` placeholders; on PostgreSQL they become `%s` and
        bytea values come back as bytes. The `with` block commits on success."""
        return StoreDB(self, readonly)

    def store_location(self):
        """What gateway.yaml's store names: the SQLite file, or the PostgreSQL URL."""
        return self.store_url or self.path("kmipgw.db")

    def use_sqlite(self):
        """Serve from the devenv's SQLite file (undoes use_postgresql)."""
        if self.store_url is not None:
            self.delete_config("store", "url")
            self.set_config("store", "path", "kmipgw.db")
            self.store_url = None

    def use_postgresql(self, url):
        """Serve from the PostgreSQL database at `url` instead of the devenv's SQLite file."""
        self.delete_config("store", "path")
        self.set_config("store", "url", "'%s'" % url)
        self.store_url = url

    # --- gateway.yaml (two levels, as scripts/devenv writes it) ----------------------
    def delete_config(self, section, key):
        """Remove `section.key` from gateway.yaml if it is there."""
        conf = self.path("gateway.yaml")
        with open(conf) as f:
            lines = f.read().splitlines()
        start, end = self._config_section(lines, section)
        lines = [t for i, t in enumerate(lines)
                 if not (start <= i < end and t.strip().partition(":")[0] == key)]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def get_config(self, section, key):
        """The text of `section.key` in gateway.yaml, or None."""
        with open(self.path("gateway.yaml")) as f:
            lines = f.read().splitlines()
        start, end = self._config_section(lines, section)
        for i in range(start, end):
            k, sep, v = lines[i].strip().partition(":")
            if sep and k == key:
                return v.split(" #")[0].strip()
        return None

    def set_config(self, section, key, value):
        """Set `section.key` in gateway.yaml (adding the key or section if missing).
        Takes effect at the next start()."""
        conf = self.path("gateway.yaml")
        with open(conf) as f:
            lines = f.read().splitlines()
        start, end = self._config_section(lines, section)
        line = "  %s: %s" % (key, value)
        if start < 0:
            lines += ["%s:" % section, line]
        else:
            for i in range(start, end):
                if lines[i].strip().partition(":")[0] == key and lines[i].startswith("  "):
                    lines[i] = line
                    break
            else:
                lines.insert(end, line)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    @staticmethod
    def _config_section(lines, section):
        """(first line after `section:`, end of its indented block), or (-1, -1)."""
        for i, text in enumerate(lines):
            if text.rstrip() == section + ":":
                end = i + 1
                while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
                    end += 1
                while end > i + 1 and not lines[end - 1].strip():
                    end -= 1
                return i + 1, end
        return -1, -1

    # --- process ---------------------------------------------------------------------
    def _command(self):
        if self.kind == "kmipgw":
            return [self.bin, "serve", "--config", self.path("gateway.yaml")]
        if self.kind == "pykmip":
            return self._pykmip_command()
        raise HarnessError("unknown KGTEST_SERVER %r" % self.kind)

    def _pykmip_command(self):
        conf = self.path("pykmip-server.conf")
        policies = self.path("pykmip-policies")
        os.makedirs(policies, exist_ok=True)
        with open(conf, "w") as f:
            f.write("[server]\nhostname=127.0.0.1\nport=%d\ncertificate_path=%s\n"
                    "key_path=%s\nca_path=%s\nauth_suite=TLS1.2\npolicy_path=%s\n"
                    "enable_tls_client_auth=True\nlogging_level=INFO\ndatabase_path=%s\n"
                    % (self.port, self.path("pki", "server.crt"), self.path("pki", "server.key"),
                       self.ca, policies, self.path("pykmip.db")))
        return ["/usr/bin/python3", "-c",
                "import sys; from kmip.services.server.server import main; sys.exit(main())",
                "-f", conf, "-l", self.path("pykmip-server.log")]

    def start(self, timeout=START_TIMEOUT):
        if self.proc is not None:
            raise HarnessError("already started")
        self._log = open(self.log_path, "ab")
        # Its own process group, so that stop() also reaps any children it forks.
        self.proc = subprocess.Popen(self._command(), env=self.env(), cwd=self.dir,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True, preexec_fn=self.preexec_fn)
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._kill_group()
                self.proc = None
                _LIVE.discard(self)
                self._log.close()
                raise HarnessError("%s serve exited with %s before listening; log:\n%s"
                                   % (self.kind, rc, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError("%s serve not listening on %d after %.0fs; log:\n%s"
                                   % (self.kind, self.port, timeout, self.log_tail()))
            time.sleep(0.05)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after `timeout`. Returns (returncode, killed)."""
        if self.proc is None:
            return None, False
        killed = False
        if self.kind == "pykmip":
            timeout = min(timeout, 3.0)  # it lingers on SIGTERM; it is only a stand-in
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.proc.wait(timeout)
                killed = True
        self._kill_group()  # leftovers (PyKMIP's multiprocessing helpers)
        rc = self.proc.returncode
        self.proc = None
        _LIVE.discard(self)
        if self._log:
            self._log.close()
            self._log = None
        return rc, killed

    def kill(self, timeout=STOP_TIMEOUT):
        """SIGKILL at once (a crash: no drain, no clean close), then reap it.
        Returns the exit status (-9 when the signal did it). start() may follow on the
        same directory."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self._kill_group()
        self.proc.wait(timeout)
        rc = self.proc.returncode
        self.proc = None
        _LIVE.discard(self)
        if self._log:
            self._log.close()
            self._log = None
        return rc

    @property
    def pid(self):
        """The server process id while it runs, else None."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self):
        rc = self.stop()
        self.start()
        return rc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        self.stop()
        if not os.environ.get("KGTEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- clients ---------------------------------------------------------------------
    def context(self, identity, max_tls=None):
        """Client TLS context: trusts the devenv CA, presents pki/<identity>.crt
        (no certificate when identity is None)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_tls is not None:
            ctx.maximum_version = max_tls
        ctx.load_verify_locations(self.ca)
        ctx.check_hostname = True
        if identity is not None:
            ctx.load_cert_chain(self.cert(identity), self.key(identity))
        return ctx

    def connect(self, identity, timeout=IO_TIMEOUT, max_tls=None, source=None):
        return KmipConnection(self.port, self.context(identity, max_tls), timeout, source)

    def exchange(self, identity, data):
        """Raw: send bytes on a fresh connection, return one whole response's bytes."""
        with self.connect(identity) as c:
            return c.roundtrip(data)

    def request(self, identity, msg):
        """One request on a fresh connection -> kg_kmip.Response."""
        with self.connect(identity) as c:
            return c.request(msg)

    def task(self, identity, *msgs):
        """A vCenter task: one connection, Discover Versions first, then `msgs`.
        Returns the Responses to `msgs` (the Discover Versions one is checked)."""
        with self.connect(identity) as c:
            dv = c.request(kg_kmip.discover_versions())
            if not dv.item.ok:
                raise HarnessError("Discover Versions failed: %s" % dv.describe())
            return [c.request(m) for m in msgs]

    def pykmip_client(self, identity, kmip_version=None):
        """An (unopened) PyKMIP ProxyKmipClient for `identity`; use it as a context
        manager. KMIP 1.2 unless kmip_version (a kmip.core.enums.KMIPVersion) says."""
        from kmip.core import enums
        from kmip.pie.client import ProxyKmipClient
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # An empty client section of our own, so that ~/.pykmip or /etc/pykmip settings
        # cannot change what the tests do.
        conf = self.path("pykmip-client.conf")
        if not os.path.exists(conf):
            with open(conf, "w") as f:
                f.write("[client]\n")
        client = ProxyKmipClient(
            hostname="127.0.0.1", port=self.port, cert=self.cert(identity),
            key=self.key(identity), ca=self.ca, ssl_version="PROTOCOL_TLS",
            config_file=conf,
            kmip_version=kmip_version or enums.KMIPVersion.KMIP_1_2)
        client.proxy.timeout = int(IO_TIMEOUT)
        return client

    # --- files holding the gateway's state -------------------------------------------
    def store_files(self):
        """The files the store lives in: the SQLite file with its WAL and SHM; on PostgreSQL
        this database's own files and the server's WAL (shared by every database there)."""
        if self.store_url is None:
            return [self.path(n) for n in ("kmipgw.db", "kmipgw.db-wal", "kmipgw.db-shm")
                    if os.path.exists(self.path(n))]
        with self.store_db() as db:
            db.conn.autocommit = True
            oid = db.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
            # Until a checkpoint a new row is only in the WAL, and a WAL record that crosses
            # one of the WAL's 8 kB pages has a page header in its middle (about 3% of rows
            # the size of a public key): a scan of the WAL alone misses bytes that are there.
            # CHECKPOINT writes every changed page, whole, into the data files.
            db.execute("CHECKPOINT")
        data = os.path.join(os.environ["KGTEST_PG_DIR"], "data")
        files = []
        for top in (os.path.join(data, "base", str(oid)), os.path.join(data, "pg_wal")):
            files.extend(os.path.join(top, n) for n in sorted(os.listdir(top))
                         if os.path.isfile(os.path.join(top, n)))
        return files

    def state_files(self):
        """Store (see store_files), audit log, stderr log and every token file (under
        openCryptoki the shared token's files too)."""
        files = self.store_files()
        for name in ("audit.log",):
            if os.path.exists(self.path(name)):
                files.append(self.path(name))
        files.append(self.log_path)
        token_dirs = [self.path("tokens")]
        if self.ock is not None:
            token_dirs.append(self.ock["token_dir"])
        for top in token_dirs:
            for base, _, names in os.walk(top):
                files.extend(os.path.join(base, n) for n in names)
        return files


# --- unittest glue -------------------------------------------------------------------------
class StoreDB:
    """See Gateway.store_db."""

    def __init__(self, gw, readonly):
        self.pg = gw.store_url is not None
        if self.pg:
            import psycopg2  # python3-psycopg2, only needed with KGTEST_STORE=postgresql
            url = gw.store_url
            self.conn = psycopg2.connect(url)
            if readonly:
                self.conn.set_session(readonly=True)
        else:
            path = gw.path("kmipgw.db")
            self.conn = sqlite3.connect("file:%s?mode=ro" % path if readonly else path, uri=readonly,
                                        timeout=10)

    def execute(self, sql, params=()):
        if not self.pg:
            return self.conn.execute(sql, params)
        cur = self.conn.cursor()
        cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
        return _PgRows(cur)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        if exc_type is None:
            self.conn.commit()
        self.conn.close()


class _PgRows:
    """A psycopg2 cursor whose bytea values read as bytes, as sqlite3's do."""

    def __init__(self, cur):
        self.cur = cur

    @staticmethod
    def _row(row):
        return None if row is None else tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)

    def fetchone(self):
        return self._row(self.cur.fetchone() if self.cur.description else None)

    def fetchall(self):
        return [self._row(r) for r in self.cur.fetchall()] if self.cur.description else []

    def __iter__(self):
        return iter(self.fetchall())

    @property
    def rowcount(self):
        return self.cur.rowcount


class GatewayTestCase(unittest.TestCase):
    """One gateway (fresh devenv) per test class, started in setUpClass.

    A test after which the gateway is found dead fails with the log tail, and
    the gateway is restarted so that the next tests still run."""

    gw_name = "kgtest"
    gw = None

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.gw is not None:
            cls.gw.cleanup()

    def tearDown(self):
        gw = self.gw
        if gw.proc is not None and gw.proc.poll() is not None:
            rc = gw.proc.returncode
            tail = gw.log_tail()
            gw.stop()
            gw.start()
            self.fail("the server died during this test (exit %s); log tail:\n%s" % (rc, tail))

    # --- assertions ------------------------------------------------------------------
    def assertSuccess(self, item, what=""):
        self.assertEqual(item.status, kg_kmip.RESULT_STATUS["SUCCESS"],
                         "%s: expected Success, got %s" % (what, item.describe()))

    def assertFailure(self, item, reason, what=""):
        """Operation Failed with Result Reason `reason` (a name of kg_ttlv.RESULT_REASON)."""
        want = kg_kmip.RESULT_REASON[reason]
        self.assertEqual(item.status, kg_kmip.RESULT_STATUS["OPERATION_FAILED"],
                         "%s: expected Operation Failed/%s, got %s" % (what, reason, item.describe()))
        self.assertEqual(item.reason, want,
                         "%s: expected Result Reason %s, got %s" % (what, reason, item.describe()))

    # --- common steps ----------------------------------------------------------------
    def create_key(self, identity):
        """Create an AES-256 key as `identity` (vCenter's template); returns its UID."""
        bid = kg_kmip.batch_id()
        resp = self.gw.request(identity, kg_kmip.request(kg_kmip.create_aes256(bid)))
        self.assertSuccess(resp.item, "Create as %s" % identity)
        uid = resp.item.uid()
        self.assertTrue(uid, "Create answered no Unique Identifier")
        return uid

    def get_key(self, identity, uid):
        """Get as `identity`; returns the 32 key bytes (asserting Raw/AES/256)."""
        resp = self.gw.request(identity, kg_kmip.request(kg_kmip.get(uid, kg_kmip.batch_id())))
        self.assertSuccess(resp.item, "Get %s as %s" % (uid, identity))
        key = kg_kmip.symmetric_key_of(resp.item.payload)
        self.assertIsNotNone(key, "Get answered no Symmetric Key:\n%r" % resp.msg)
        material, fmt, alg, length = key
        self.assertIsInstance(material, bytes, "no Key Material byte string")
        self.assertEqual(len(material), 32)
        return material
