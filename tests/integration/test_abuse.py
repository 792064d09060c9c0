"""Abuse: the gateway keeps serving a vCenter-shaped task while it is attacked (issue 7).

Attacks: slow handshakes, idle TLS connections, a connection flood, oversized
declared lengths, deep nesting, huge batch counts, half-closed sockets; the
per-address connection cap; and many idle connections against a gateway started
under a low open-file limit (LowFileLimit).

How each test works:
  - The attack runs in a forked child process (threads and sockets there), so
    that the attacker's Python work cannot hold this process's GIL and distort
    the victim's timing. It connects from ATTACKER (127.0.0.2, by binding the
    client socket: any 127/8 address reaches the gateway's 127.0.0.1 on Linux
    loopback), so per-address caps fall on it and not on the victim.
  - Once the attack is under way, the victim, identity `vsphere` from
    127.0.0.1, runs the vCenter-shaped task VICTIM_RUNS times spread over the
    attack: new TLS connection, Discover Versions, Create AES-256, Add Attribute
    x3 batched, Get, close. The test asserts the MAXIMUM wall time of those runs
    (connect to close) is under VICTIM_LIMIT seconds.
  - Every attack is bounded in count and time: it stops when told, and by
    itself after ATTACK_MAX_S whatever happens; its child process is killed if
    it does not exit.
  - Afterwards the gateway must be alive and answer a normal request.

Measured latencies are printed to stderr as "kgtest-abuse: ..." lines.

The devenv's gateway.yaml gets short timeouts (handshake 2 s, idle 3 s) so
that reaping happens within the test, and max_message_bytes 262144 so that a
message of 5000 tiny batch items fits the framing cap and reaches the
decoder (which must then refuse it with a KMIP error).
"""

import multiprocessing
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import unittest
from collections import Counter

import kg_kmip as K
from kg_harness import IO_TIMEOUT, Gateway, GatewayTestCase
from kg_ttlv import OPERATION, STRUCTURE, T, Enum, Int, S, encode, header

ATTACKER = "127.0.0.2"
FLOOD_SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
VICTIM = "vsphere"
VICTIM_RUNS = 3
VICTIM_LIMIT = 1.0     # seconds, per run, asserted on the maximum of the runs
ATTACK_MAX_S = 30.0    # an attack stops by itself after this, whatever happens
ATTACKER_NICE = 10     # CPU priority of the attacking process, see _attack_main

HANDSHAKE_TIMEOUT_MS = 2000
IDLE_TIMEOUT_MS = 3000
MAX_MESSAGE_BYTES = 262144
SIXTEEN_MIB = 16 * 1024 * 1024

RESULTS = {}  # attack -> victim times, for the summary printed at the end


def log(text):
    sys.stderr.write("kgtest-abuse: %s\n" % text)
    sys.stderr.flush()


# --- messages -------------------------------------------------------------------------------
def dv_request():
    return encode(K.request(K.discover_versions(K.batch_id())))


def nested_request(depth):
    """A Create request whose payload nests Structures until the whole message is
    `depth` Structures deep (Request Message = 1)."""
    inner = b""
    for _ in range(depth - 3):
        inner = header(T.ATTRIBUTE, STRUCTURE, len(inner)) + inner
    payload = header(T.REQUEST_PAYLOAD, STRUCTURE, len(inner)) + inner
    op = encode(Enum("OPERATION", OPERATION["CREATE"]))
    item = op + payload
    item = header(T.BATCH_ITEM, STRUCTURE, len(item)) + item
    hdr = encode(S("REQUEST_HEADER", K.protocol_version(1, 1), Int("BATCH_COUNT", 1)))
    body = hdr + item
    return header(T.REQUEST_MESSAGE, STRUCTURE, len(body)) + body


def claimed_batch_count_request(count):
    """One Discover Versions item under a header claiming Batch Count `count`."""
    hdr = encode(S("REQUEST_HEADER", K.protocol_version(1, 1), Int("BATCH_COUNT", count)))
    body = hdr + encode(K.discover_versions(K.batch_id()).item())
    return header(T.REQUEST_MESSAGE, STRUCTURE, len(body)) + body


def many_items_request(n):
    return encode(K.request([K.discover_versions() for _ in range(n)]))


def client_hello():
    """The bytes of a real TLS ClientHello (never sent by a real client here)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


# --- attacker side (runs in the child process) ----------------------------------------------
def tcp_connect(port, source, timeout=IO_TIMEOUT):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        s.close()
        raise
    return s


def tls_connect(port, ctx, source, timeout=IO_TIMEOUT):
    raw = tcp_connect(port, source, timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def reset_close(s):
    """Close with a RST: no TIME_WAIT on the attacker's side, so a flood cannot run
    out of ephemeral ports."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def peer_closed(s):
    """Non-blocking: True if the peer has closed (EOF, reset, TLS alert)."""
    try:
        data = s.recv(4096)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, socket.timeout):
        return False
    except (OSError, ssl.SSLError):
        return True
    return not data


def read_close(s, timeout=IO_TIMEOUT):
    """On a plain TCP socket mid-handshake: 'closed' once the server closes, having
    sent nothing or only TLS alert records; else what it did."""
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        return "not closed within %.0fs" % timeout
    except OSError:
        pass
    pos = 0
    while pos + 5 <= len(buf) and buf[pos] == 0x15:  # alert records only
        pos += 5 + int.from_bytes(buf[pos + 3:pos + 5], "big")
    return "closed" if pos == len(buf) else "closed after %d bytes that are not alerts" % len(buf)


def read_outcome(s, timeout=IO_TIMEOUT):
    """After sending a bad message: 'closed' if the server closes without a
    response, else a short description of the KMIP response it sent."""
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            if len(buf) >= 8:
                need = 8 + int.from_bytes(buf[4:8], "big")
                if len(buf) >= need:
                    break
            chunk = s.recv(65536)
            if not chunk:
                return "closed" if not buf else "closed mid-response"
            buf += chunk
    except socket.timeout:
        return "no answer and not closed within %.0fs" % timeout
    except (OSError, ssl.SSLError):
        return "closed" if not buf else "closed mid-response"
    try:
        resp = K.Response(buf[:need])
    except Exception as e:  # noqa: BLE001 - any decoding problem is an outcome to report
        return "undecodable response (%s)" % e
    if any(it.ok for it in resp.items):
        return "SUCCESS " + resp.describe()
    return "error " + "; ".join(
        K.enum_name(K.RESULT_REASON, it.reason) if it.reason is not None else "no reason"
        for it in resp.items[:3])


class Attack:
    """Base: `run` loops until stop is set or ATTACK_MAX_S passed; `stats` counts
    what happened; `ready` is set once the attack is at full strength."""

    def __init__(self, port, paths, stop, ready, **params):
        self.port = port
        self.paths = paths
        self.stop = stop
        self.ready = ready
        self.params = params
        self.stats = Counter()
        self.deadline = time.monotonic() + ATTACK_MAX_S
        self.lock = threading.Lock()

    def going(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def note_close(self, opened_at):
        """A connection the server closed: count it and track its age range."""
        age_ms = int((time.monotonic() - opened_at) * 1000)
        with self.lock:
            self.stats["closed by server"] += 1
            self.stats["max age at close ms"] = max(self.stats["max age at close ms"], age_ms)
            if not self.stats["min age at close ms"] or age_ms < self.stats["min age at close ms"]:
                self.stats["min age at close ms"] = age_ms

    def context(self, identity="vsphere"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(self.paths["ca"])
        ctx.load_cert_chain(self.paths["cert"], self.paths["key"])
        return ctx

    def threads(self, n, target):
        ts = [threading.Thread(target=self._guard, args=(target, i), daemon=True) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(ATTACK_MAX_S + IO_TIMEOUT * 2)

    def _guard(self, target, i):
        try:
            target(i)
        except Exception:  # noqa: BLE001 - reported to the parent
            self.count("attacker exception: " + traceback.format_exc().strip().splitlines()[-1])


class SlowHandshake(Attack):
    """n TCP connections that never finish the TLS handshake: half send nothing,
    half trickle a real ClientHello one byte per socket every 50 ms. Connections
    the server closes are counted (with their age) and replaced."""

    def run(self):
        n = self.params["n"]
        hello = client_hello()
        conns = {}  # fd -> [socket, opened at, bytes sent or None for silent]

        def open_one(i):
            s = tcp_connect(self.port, ATTACKER)
            s.setblocking(False)
            conns[s.fileno()] = [s, time.monotonic(), 0 if i % 2 else None]
            self.count("opened")
            return s.fileno()

        for i in range(n):
            open_one(i)
        self.ready.set()
        poller = select.poll()
        for fd in conns:
            poller.register(fd, select.POLLIN)
        while self.going():
            for fd, _ in poller.poll(50):
                entry = conns.get(fd)
                if entry is None or not peer_closed(entry[0]):
                    continue
                self.note_close(entry[1])
                poller.unregister(fd)
                trickle = entry[2] is not None
                entry[0].close()
                del conns[fd]
                if self.going():
                    poller.register(open_one(1 if trickle else 0), select.POLLIN)
            for entry in list(conns.values()):
                if entry[2] is not None and entry[2] < len(hello):
                    try:
                        entry[0].send(hello[entry[2]:entry[2] + 1])
                        entry[2] += 1
                        self.count("bytes trickled")
                    except (BlockingIOError, OSError):
                        pass
        for entry in conns.values():
            entry[0].close()


class IdleTLS(Attack):
    """n TLS connections with a valid certificate that never send a request.
    Connections the server closes (idle timeout) are counted and re-opened."""

    def run(self):
        n = self.params["n"]
        ctx = self.context()
        conns = {}

        def open_one():
            s = tls_connect(self.port, ctx, ATTACKER)
            s.setblocking(False)
            conns[s.fileno()] = (s, time.monotonic())
            self.count("opened")
            return s.fileno()

        for _ in range(n):
            if not self.going():
                break
            open_one()
        self.ready.set()
        poller = select.poll()
        for fd in conns:
            poller.register(fd, select.POLLIN)
        while self.going():
            for fd, _ in poller.poll(100):
                entry = conns.get(fd)
                if entry is None or not peer_closed(entry[0]):
                    continue
                self.note_close(entry[1])
                poller.unregister(fd)
                entry[0].close()
                del conns[fd]
                if self.going():
                    poller.register(open_one(), select.POLLIN)
        for s, _ in conns.values():
            s.close()


class Flood(Attack):
    """Open and reset TCP connections as fast as possible from several threads,
    each from its own 127/8 address."""

    def run(self):
        def flood(i):
            source = FLOOD_SOURCES[i % len(FLOOD_SOURCES)]
            while self.going():
                try:
                    s = tcp_connect(self.port, source, timeout=1.0)
                except socket.timeout:
                    self.count("connect timeouts")
                    continue
                except OSError as e:
                    self.count("connect errors (%s)" % (e.strerror or e))
                    time.sleep(0.01)
                    continue
                reset_close(s)
                self.count("connections")
                if self.stats["connections"] >= 200:
                    self.ready.set()

        self.threads(self.params["threads"], flood)


class BadMessages(Attack):
    """Threads that each loop: TLS connect, send one of `messages` (rotating),
    record the outcome (closed / KMIP error / success), close."""

    def run(self):
        messages = self.params["messages"]
        ctx = self.context()

        def attack(i):
            k = i
            while self.going():
                name, data, trailer = messages[k % len(messages)]
                k += 1
                try:
                    s = tls_connect(self.port, ctx, ATTACKER)
                except (OSError, ssl.SSLError) as e:
                    self.count("connect failed: %s" % type(e).__name__)
                    continue
                try:
                    try:
                        s.sendall(data)
                        if trailer:
                            s.sendall(trailer)
                    except (OSError, ssl.SSLError):
                        pass  # closed already: read_outcome sees it
                    self.count("%s: %s" % (name, read_outcome(s)))
                finally:
                    s.close()
                self.ready.set()

        self.threads(self.params["threads"], attack)


class HalfClosed(Attack):
    """Rounds of `n` connections that send part of something, then shutdown(SHUT_WR):
    half a ClientHello (plain TCP), half a request (after TLS), or a whole request
    (after TLS: its answer must still arrive). Then wait for the server to close
    each, and record how long that took."""

    def run(self):
        n = self.params["n"]
        ctx = self.context()
        hello = client_hello()
        dv = dv_request()
        kinds = ("half ClientHello", "half request", "whole request")
        while self.going():
            conns = []
            for i in range(n):
                kind = kinds[i % len(kinds)]
                try:
                    if kind == "half ClientHello":
                        s = tcp_connect(self.port, ATTACKER)
                        s.sendall(hello[:len(hello) // 2])
                    else:
                        s = tls_connect(self.port, ctx, ATTACKER)
                        s.sendall(dv[:len(dv) // 2] if kind == "half request" else dv)
                    # The plain socket's shutdown: SSLSocket.shutdown would drop the TLS
                    # state, and the whole request's answer must still be read through it.
                    socket.socket.shutdown(s, socket.SHUT_WR)
                except (OSError, ssl.SSLError) as e:
                    self.count("%s: setup failed (%s)" % (kind, type(e).__name__))
                    continue
                conns.append((kind, s, time.monotonic()))
            self.ready.set()
            for kind, s, t0 in conns:
                if kind == "half ClientHello":
                    outcome = read_close(s, timeout=IO_TIMEOUT)
                else:
                    outcome = read_outcome(s, timeout=IO_TIMEOUT)
                waited = time.monotonic() - t0
                if kind == "whole request":
                    ok = outcome.startswith("SUCCESS")
                    outcome = "answered" if ok else outcome
                    if ok:  # then the server must close its side too
                        outcome += " then " + read_outcome(s, timeout=IO_TIMEOUT)
                self.count("%s: %s" % (kind, outcome))
                if kind != "whole request" and waited > 2.0:
                    self.count("%s: closed only after %.1fs" % (kind, waited))
                s.close()


def _attack_main(cls, port, paths, params, stop, ready, pipe):
    # A real attacker does not share the gateway's CPUs; here it does (two of them
    # on the test machine). At a lower priority it still gets every idle cycle, so
    # the attack is as strong, but it does not preempt the gateway or the victim.
    os.nice(ATTACKER_NICE)
    attack = cls(port, paths, stop, ready, **params)
    try:
        attack.run()
        error = None
    except Exception:  # noqa: BLE001 - reported to the parent
        error = traceback.format_exc()
    ready.set()
    pipe.send({"stats": dict(attack.stats), "error": error})
    pipe.close()


# --- the victim (this process) and the tests ------------------------------------------------
class AbuseTestCase(GatewayTestCase):
    config = {}

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway(cls.gw_name)
        try:
            for (section, key), value in cls.config.items():
                cls.gw.set_config(section, key, value)
            cls.gw.start()
        except BaseException:
            cls.gw.cleanup()
            raise

    def vcenter_task(self):
        """The victim: one vCenter-shaped task. Returns its wall time in seconds."""
        t0 = time.monotonic()
        with self.gw.connect(VICTIM) as c:
            dv = c.request(K.discover_versions())
            create = c.request(K.create_aes256(K.batch_id()))
            uid = create.item.uid()
            adds = c.request([K.add_attribute(uid, "x-Product_Version", "7.0.3 build-19480866", K.batch_id()),
                              K.add_attribute(uid, "x-Vendor", "VMware, Inc.", K.batch_id()),
                              K.add_attribute(uid, "x-Product", "VMware vSphere", K.batch_id())])
            get = c.request(K.get(uid, K.batch_id()))
        elapsed = time.monotonic() - t0
        self.assertSuccess(dv.item, "victim Discover Versions")
        self.assertSuccess(create.item, "victim Create")
        self.assertEqual(len(adds.items), 3, "victim Add Attribute x3: %s" % adds.describe())
        for it in adds.items:
            self.assertSuccess(it, "victim Add Attribute")
        self.assertSuccess(get.item, "victim Get")
        key = K.symmetric_key_of(get.item.payload)
        self.assertTrue(key is not None and len(key[0]) == 32, "victim Get: no 32-byte key")
        return elapsed

    def assertServing(self, what):
        self.assertTrue(self.gw.alive(), "%s: the gateway died; log:\n%s" % (what, self.gw.log_tail()))
        resp = self.gw.request(VICTIM, K.request(K.discover_versions()))
        self.assertSuccess(resp.item, "Discover Versions after %s" % what)

    def paths(self, identity="vsphere"):
        return {"ca": self.gw.ca, "cert": self.gw.cert(identity), "key": self.gw.key(identity)}

    def under_attack(self, name, cls, duration, **params):
        """Run attack `cls` in a child process; meanwhile run the victim VICTIM_RUNS
        times spread over `duration` seconds; stop the attack; check the gateway.
        Returns the attacker's stats."""
        mp = multiprocessing.get_context("fork")
        stop, ready = mp.Event(), mp.Event()
        rx, tx = mp.Pipe(duplex=False)
        proc = mp.Process(target=_attack_main, daemon=True,
                          args=(cls, self.gw.port, self.paths(), params, stop, ready, tx))
        proc.start()
        tx.close()
        times = []
        result = None
        try:
            self.assertTrue(ready.wait(20.0), "%s: the attack did not get going" % name)
            t0 = time.monotonic()
            for i in range(VICTIM_RUNS):
                slot = t0 + duration * i / VICTIM_RUNS
                time.sleep(max(0.0, slot - time.monotonic()))
                self.assertTrue(proc.is_alive(), "%s: the attacker stopped early" % name)
                times.append(self.vcenter_task())
            time.sleep(max(0.0, t0 + duration - time.monotonic()))
        finally:
            stop.set()
            if rx.poll(ATTACK_MAX_S):
                result = rx.recv()
            proc.join(IO_TIMEOUT)
            if proc.is_alive():
                proc.kill()
                proc.join(IO_TIMEOUT)
            rx.close()
        self.assertIsNotNone(result, "%s: the attacker reported nothing" % name)
        stats = result["stats"]
        RESULTS[name] = times
        log("%-18s victim %s s (max %.3f); attacker %s"
            % (name, " ".join("%.3f" % t for t in times), max(times), dict(sorted(stats.items()))))
        self.assertIsNone(result["error"], "%s: the attacker failed:\n%s" % (name, result["error"]))
        self.assertFalse([k for k in stats if k.startswith("attacker exception")],
                         "%s: attacker threads failed: %r" % (name, stats))
        self.assertServing(name)
        self.assertLess(max(times), VICTIM_LIMIT,
                        "%s: the victim's task took %s s" % (name, ["%.3f" % t for t in times]))
        return stats


class Attacks(AbuseTestCase):
    gw_name = "abuse"
    config = {
        ("limits", "handshake_timeout_ms"): HANDSHAKE_TIMEOUT_MS,
        ("limits", "idle_timeout_ms"): IDLE_TIMEOUT_MS,
        ("limits", "max_message_bytes"): MAX_MESSAGE_BYTES,
    }

    @classmethod
    def tearDownClass(cls):
        if RESULTS:
            log("summary (max of %d victim runs, limit %.1f s): %s" % (
                VICTIM_RUNS, VICTIM_LIMIT,
                ", ".join("%s %.3f" % (k, max(v)) for k, v in sorted(RESULTS.items()))))
        super().tearDownClass()

    def test_baseline(self):
        times = [self.vcenter_task() for _ in range(VICTIM_RUNS)]
        RESULTS["no attack"] = times
        log("%-18s victim %s s" % ("no attack", " ".join("%.3f" % t for t in times)))
        self.assertLess(max(times), VICTIM_LIMIT)

    def test_a_slow_handshakes(self):
        stats = self.under_attack("slow handshake", SlowHandshake, HANDSHAKE_TIMEOUT_MS / 1000 + 1.5, n=300)
        # The handshake timeout reaped them, and not before it was due.
        self.assertGreaterEqual(stats.get("closed by server", 0), 150, stats)
        self.assertGreaterEqual(stats.get("min age at close ms", 0), HANDSHAKE_TIMEOUT_MS - 100, stats)
        self.assertLess(stats.get("max age at close ms", 0), HANDSHAKE_TIMEOUT_MS + 1500, stats)

    def test_b_idle_tls_connections(self):
        stats = self.under_attack("idle TLS", IdleTLS, IDLE_TIMEOUT_MS / 1000 + 1.5, n=300)
        self.assertGreaterEqual(stats.get("opened", 0), 300, stats)
        # The idle timeout reaped them, and not before it was due.
        self.assertGreater(stats.get("closed by server", 0), 0, stats)
        self.assertGreaterEqual(stats.get("min age at close ms", 0), IDLE_TIMEOUT_MS - 100, stats)

    def test_c_connection_flood(self):
        stats = self.under_attack("connection flood", Flood, 3.0, threads=4)
        self.assertGreater(stats.get("connections", 0), 1000, stats)

    def test_d_oversized_lengths(self):
        messages = [
            ("16 MiB", header(T.REQUEST_MESSAGE, STRUCTURE, SIXTEEN_MIB), b"\0" * 1024),
            ("cap+1", header(T.REQUEST_MESSAGE, STRUCTURE, MAX_MESSAGE_BYTES + 1), b"\0" * 1024),
        ]
        stats = self.under_attack("oversized length", BadMessages, 2.0, threads=2, messages=messages)
        for name, _, _ in messages:
            self.assertGreater(stats.get("%s: closed" % name, 0), 0, stats)
        # Refused before reading: closed, never answered.
        self.assertEqual([k for k in stats if not k.endswith(": closed")], [], stats)

    def test_e_deep_nesting(self):
        data = nested_request(1000)
        self.assertEqual(len(decode_depth(data)), 1000)
        stats = self.under_attack("deep nesting", BadMessages, 2.0, threads=2,
                                  messages=[("depth 1000", data, b"")])
        self.assertGreater(stats.get("depth 1000: error INVALID_MESSAGE", 0), 0, stats)
        self.assertEqual([k for k in stats if k not in ("depth 1000: error INVALID_MESSAGE",
                                                       "depth 1000: closed")], [], stats)

    def test_f_huge_batch_counts(self):
        messages = [
            ("Batch Count 1000000", claimed_batch_count_request(1000000), b""),
            ("5000 items", many_items_request(5000), b""),
        ]
        self.assertLess(len(messages[1][1]), MAX_MESSAGE_BYTES)
        stats = self.under_attack("huge batch count", BadMessages, 2.0, threads=2, messages=messages)
        for name, _, _ in messages:
            errors = [k for k in stats if k.startswith(name + ": error")]
            self.assertTrue(errors, "%s: no KMIP error answer: %r" % (name, stats))
        self.assertFalse([k for k in stats if "SUCCESS" in k or "undecodable" in k
                          or "no answer" in k or "mid-response" in k], stats)

    def test_g_half_closed_sockets(self):
        stats = self.under_attack("half-closed", HalfClosed, 2.0, n=60)
        for kind in ("half ClientHello", "half request"):
            self.assertGreater(stats.get("%s: closed" % kind, 0), 0, stats)
        self.assertGreater(stats.get("whole request: answered then closed", 0), 0, stats)
        bad = [k for k in stats if k not in ("half ClientHello: closed", "half request: closed",
                                             "whole request: answered then closed")]
        self.assertEqual(bad, [], stats)


def decode_depth(data):
    """The chain of Structure tags from the outside in, following the last child
    (a check on nested_request, without a recursive decoder)."""
    chain = []
    pos, end = 0, len(data)
    while pos < end:
        typ = data[pos + 3]
        length = int.from_bytes(data[pos + 4:pos + 8], "big")
        if typ != STRUCTURE:
            pos += 8 + length + (-length % 8)
            continue
        chain.append(int.from_bytes(data[pos:pos + 3], "big"))
        # Descend into the last child structure, if any.
        start, stop = pos + 8, pos + 8 + length
        last = None
        p = start
        while p < stop:
            t = data[p + 3]
            ln = int.from_bytes(data[p + 4:p + 8], "big")
            if t == STRUCTURE:
                last = p
            p += 8 + ln + (-ln % 8)
        if last is None:
            break
        pos, end = last, stop
    return chain


class PerAddressCap(AbuseTestCase):
    gw_name = "abuse-cap"
    CAP = 20
    config = {
        ("limits", "max_connections_per_ip"): CAP,
        ("limits", "handshake_timeout_ms"): 5000,
    }

    def test_per_address_cap(self):
        socks = []
        try:
            for _ in range(self.CAP + 10):
                socks.append(tcp_connect(self.gw.port, ATTACKER))
            time.sleep(0.5)  # let the gateway accept (or refuse) every one
            closed = [s for s in socks if poll_closed(s)]
            self.assertEqual(len(closed), 10, "%d of %d connections from %s closed at once; cap %d"
                             % (len(closed), len(socks), ATTACKER, self.CAP))
            # Those refused are the last ones in: the first CAP stay open.
            self.assertFalse([s for s in socks[:self.CAP] if s in closed])
            # While 127.0.0.2 is at its cap, it gets nothing more ...
            with self.assertRaises((OSError, ssl.SSLError)):
                with self.gw.connect(VICTIM, source=ATTACKER, timeout=3.0) as c:
                    c.request(K.discover_versions())
            # ... and 127.0.0.1 still connects and works.
            t = self.vcenter_task()
            log("%-18s victim %.3f s with %s at its cap of %d" % ("per-address cap", t, ATTACKER, self.CAP))
            self.assertLess(t, VICTIM_LIMIT)
        finally:
            for s in socks:
                s.close()
        # The slots are given back: 127.0.0.2 works again once its connections are gone.
        deadline = time.monotonic() + 5.0
        while True:
            try:
                with self.gw.connect(VICTIM, source=ATTACKER, timeout=3.0) as c:
                    self.assertSuccess(c.request(K.discover_versions()).item)
                break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertServing("per-address cap")


class LowFileLimit(AbuseTestCase):
    """The gateway started under a low open-file limit (systemd's default soft limit is
    1024, below what limits.max_connections 4096 needs). Without care, accept4 fails with
    EMFILE once a few hundred connections are open, and every other client is locked out
    until they time out. The gateway raises its soft limit as far as the hard limit
    allows, and below that accepts fewer connections than configured."""

    gw_name = "abuse-nofile"
    N = 300

    def start_with_limit(self, ulimit_args, **config):
        gw = self.gw
        gw.stop()
        for (section, key), value in config.items():
            gw.set_config(section, key, value)
        # The harness runs gw.bin; a wrapper sets the limit and execs the real binary.
        real = getattr(type(self), "real_bin", None) or gw.bin
        type(self).real_bin = real
        wrapper = gw.path("limited.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nulimit %s 256 || exit 97\nexec '%s' \"$@\"\n" % (ulimit_args, real))
        os.chmod(wrapper, 0o700)
        gw.bin = wrapper
        gw.start()
        with open("/proc/%d/limits" % gw.proc.pid) as f:
            line = [ln for ln in f if ln.startswith("Max open files")][0].split()
        return int(line[3]), int(line[4])  # soft, hard

    def hold(self, sources):
        """Open N plain TCP connections spread over `sources` and keep them; returns
        (sockets, how many the gateway kept open, the gateway's descriptor count)."""
        socks = []
        for i in range(self.N):
            socks.append(tcp_connect(self.gw.port, sources[i % len(sources)]))
        time.sleep(0.5)  # let the gateway accept (or refuse) every one
        fds = len(os.listdir("/proc/%d/fd" % self.gw.proc.pid))
        held = len([s for s in socks if not poll_closed(s)])
        return socks, held, fds

    def report(self, what, times, held, fds):
        log("%-18s victim %s s (max %.3f); %d of %d attacker connections held, gateway has %d fds"
            % (what, " ".join("%.3f" % t for t in times), max(times), held, self.N, fds))
        RESULTS[what] = times

    def test_soft_limit_is_raised(self):
        soft, hard = self.start_with_limit("-Sn")
        self.assertGreaterEqual(soft, min(hard, 4096), "soft open-file limit left at %d" % soft)
        socks, held, fds = self.hold([ATTACKER])
        try:
            times = [self.vcenter_task() for _ in range(VICTIM_RUNS)]
        finally:
            for s in socks:
                s.close()
        self.report("nofile soft 256", times, held, fds)
        self.assertEqual(held, self.N)
        self.assertServing("nofile soft 256")
        self.assertLess(max(times), VICTIM_LIMIT)

    def test_hard_limit_caps_connections(self):
        soft, hard = self.start_with_limit("-n")
        self.assertEqual((soft, hard), (256, 256))
        self.assertIn("open-file limit 256 is below", self.gw.log_text())
        # Two attacking addresses, each under its per-address cap (512): only the
        # descriptor budget stops them. A client connected before keeps working (the
        # store and the HSM still get descriptors); the gateway never runs out.
        with self.gw.connect(VICTIM) as victim:
            self.assertSuccess(victim.request(K.discover_versions()).item)
            socks, held, fds = self.hold(["127.0.0.2", "127.0.0.3"])
            try:
                t0 = time.monotonic()
                uid = victim.request(K.create_aes256(K.batch_id())).item.uid()
                self.assertTrue(uid, "Create failed while the descriptor budget was full")
                adds = victim.request([K.add_attribute(uid, n, "v", K.batch_id())
                                       for n in ("x-Product_Version", "x-Vendor", "x-Product")])
                self.assertTrue(all(it.ok for it in adds.items), adds.describe())
                self.assertSuccess(victim.request(K.get(uid, K.batch_id())).item)
                during = time.monotonic() - t0
            finally:
                for s in socks:
                    s.close()
        self.assertLess(fds, 256)
        self.assertLess(held, self.N)
        self.assertGreater(held, 0)
        time.sleep(0.3)
        times = [during] + [self.vcenter_task() for _ in range(VICTIM_RUNS - 1)]
        self.report("nofile hard 256", times, held, fds)
        self.assertServing("nofile hard 256")
        self.assertLess(max(times), VICTIM_LIMIT)


def poll_closed(s):
    """True if the peer closed `s` (non-blocking check)."""
    s.setblocking(False)
    try:
        return peer_closed(s)
    finally:
        s.setblocking(True)


if __name__ == "__main__":
    unittest.main()
