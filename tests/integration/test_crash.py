"""Crash durability: SIGKILL during concurrent changes loses no acknowledged operation.

DESIGN.md "Durability": no response reporting a change leaves before the commit
holding it is durable. This test kills `kmipgw serve` with SIGKILL at a random
moment (uniformly 0.2-1.5 s after it listens) while CLIENTS raw mutual-TLS
connections (identity `admin`) run a mix of

    Create (then Get, to learn the key bytes),
    Add Attribute x-crash-... (one to three items batched in one message),
    Activate, Revoke (Active -> Deactivated), Destroy (of Pre-Active or
    Deactivated keys; Create-then-Destroy is the common case),

and restarts it on the same directory, ROUNDS times over. Each client writes to
its ledger only what it saw succeed in a response it received in full. After
each restart every ledger entry of the round is checked through the gateway:

    the created key exists and Get returns the bytes recorded after Create;
    every acknowledged attribute has its value (Get Attributes by name);
    the State is the one the last acknowledged change set (or, when a change
    of that key was in flight at the kill or answered with an error, the
    state that change would have set: it may or may not have happened);
    a key whose Destroy was acknowledged answers Get with Item Not Found.

Independently of the restarted gateway, the store files as the kill left them
are copied and opened with Python's sqlite3: PRAGMA integrity_check must say
ok, and every acknowledged UID, state and attribute must be in the copy. At
the end, all rounds' ledgers are checked once more (with the states observed
after their own round: nothing touched those keys since).

Losses must be 0; the totals are printed as

    crash: 15 rounds, 2345 acknowledged operations verified, 0 lost

Environment: KGTEST_CRASH_ROUNDS (default 15), KGTEST_CRASH_CLIENTS (default
6), KGTEST_CRASH_BUDGET (seconds, default 75: no new round starts after it,
as long as 5 rounds ran), KGTEST_CRASH_SEED (reproduce a run).

Note: SIGKILL ends the process, not the machine: what the process wrote
reaches the file even without fsync. So this proves "no response before
COMMIT"; that COMMIT itself is durable comes from synchronous=FULL in WAL
mode, which the store checks when it opens (gateway/kg_store.c).
"""

import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import unittest

import kg_kmip as K
from kg_harness import ConnectionClosed, Gateway, HarnessError
from kg_ttlv import ENUMERATION, RESULT_REASON, STATE, TEXT_STRING, enum_name

ROUNDS = int(os.environ.get("KGTEST_CRASH_ROUNDS", "15"))
CLIENTS = int(os.environ.get("KGTEST_CRASH_CLIENTS", "6"))
BUDGET = float(os.environ.get("KGTEST_CRASH_BUDGET", "75"))
MIN_ROUNDS = 5
KILL_AFTER = (0.2, 1.5)
IDENTITY = "admin"
VERIFIERS = 4

PRE_ACTIVE, ACTIVE, DEACTIVATED, DESTROYED = (STATE["PRE_ACTIVE"], STATE["ACTIVE"],
                                              STATE["DEACTIVATED"], STATE["DESTROYED"])
GONE = (OSError, ConnectionClosed)  # what a killed server looks like (ssl.SSLError is an OSError)


def state_name(s):
    return enum_name(STATE, s) if s is not None else "None"


class KeyRecord:
    """What the ledger knows of one key a client created (acknowledged facts only)."""

    def __init__(self, uid, rnd, client):
        self.uid = uid
        self.round = rnd
        self.client = client
        self.material = None        # bytes of an acknowledged Get after Create
        self.attrs = {}             # acknowledged Add Attribute: name -> value
        self.state = PRE_ACTIVE     # state after the last acknowledged change
        self.maybe = set()          # states an unacknowledged change may have set
        self.acked = {"create": 1, "attribute": 0, "state": 0, "destroy": 0}
        self.observed = None        # state seen after its round's restart
        self.in_doubt = False       # a change of it was in flight or failed: no more work on it

    def allowed_states(self):
        return {self.state} | self.maybe

    def operations(self):
        return sum(self.acked.values())


class Round:
    def __init__(self, number):
        self.number = number
        self.lock = threading.Lock()
        self.keys = []              # KeyRecords created (acknowledged) this round
        self.in_doubt = 0           # requests sent whose answer never came in full
        self.unexpected = []        # failure answers to requests that should succeed
        self.errors = []            # exceptions in client threads (test bugs)

    def add_key(self, rec):
        with self.lock:
            self.keys.append(rec)


class Client(threading.Thread):
    """One connection; a random mix of changes until the server goes away."""

    def __init__(self, gw, rnd, cid, seed, stop):
        super().__init__(name="crash-client-%d" % cid, daemon=True)
        self.gw, self.rnd, self.cid, self.stop = gw, rnd, cid, stop
        self.rng = random.Random(seed)
        self.serial = 0
        self.keys = []  # this client's usable keys (not destroyed, not in doubt)

    def run(self):
        try:
            conn = self.gw.connect(IDENTITY)
        except GONE:
            return  # killed before we got in
        try:
            while not self.stop.is_set():
                self.step(conn)
        except GONE:
            pass
        except Exception as e:  # a bug in the test or an undecodable answer
            with self.rnd.lock:
                self.rnd.errors.append("client %d: %r" % (self.cid, e))
        finally:
            conn.close()

    # One request; returns the Response. On a lost connection, marks `rec`
    # (when given) as possibly moved to `maybe_state` and re-raises.
    def send(self, conn, items, rec=None, maybe_state=None):
        try:
            return conn.request(items)
        except GONE:
            with self.rnd.lock:
                self.rnd.in_doubt += 1
            if rec is not None:
                self.doubt(rec, maybe_state)
            raise

    def doubt(self, rec, maybe_state):
        if maybe_state is not None:
            rec.maybe.add(maybe_state)
        rec.in_doubt = True
        if rec in self.keys:
            self.keys.remove(rec)

    def unexpected(self, what, item, rec=None, maybe_state=None):
        with self.rnd.lock:
            self.rnd.unexpected.append("client %d: %s: %s" % (self.cid, what, item.describe()))
        if rec is not None:
            self.doubt(rec, maybe_state)

    def pick(self, states):
        eligible = [k for k in self.keys if k.state in states]
        return self.rng.choice(eligible) if eligible else None

    def step(self, conn):
        r = self.rng.random()
        if r < 0.30 or not self.keys:
            return self.create(conn)
        if r < 0.62:
            return self.add_attributes(conn, self.rng.choice(self.keys))
        if r < 0.74:
            rec = self.pick((PRE_ACTIVE,))
            return self.activate(conn, rec) if rec else self.create(conn)
        if r < 0.82:
            rec = self.pick((ACTIVE,))
            return self.revoke(conn, rec) if rec else self.create(conn)
        rec = self.pick((PRE_ACTIVE, DEACTIVATED))
        return self.destroy(conn, rec) if rec else self.create(conn)

    def create(self, conn):
        resp = self.send(conn, K.create_aes256(K.batch_id()))
        it = resp.item
        if not it.ok or not it.uid():
            return self.unexpected("Create", it)
        rec = KeyRecord(it.uid(), self.rnd.number, self.cid)
        self.rnd.add_key(rec)  # acknowledged: from now on it must exist
        self.keys.append(rec)
        it = self.send(conn, K.get(rec.uid, K.batch_id())).item
        key = K.symmetric_key_of(it.payload) if it.ok else None
        if key is None or not isinstance(key[0], bytes) or len(key[0]) != 32:
            return self.unexpected("Get after Create", it, rec)
        rec.material = key[0]

    def add_attributes(self, conn, rec):
        pairs = []
        for _ in range(self.rng.randint(1, 3)):
            self.serial += 1
            pairs.append(("x-crash-%d-%d-%d" % (self.rnd.number, self.cid, self.serial),
                          "v-%s" % os.urandom(8).hex()))
        items = [K.add_attribute(rec.uid, n, v, K.batch_id()) for n, v in pairs]
        resp = self.send(conn, items, rec)
        for (name, value), it in zip(pairs, resp.items):
            if it.ok:
                rec.attrs[name] = value
                rec.acked["attribute"] += 1
            else:
                self.unexpected("Add Attribute %s" % name, it, rec)
        if len(resp.items) != len(pairs):
            with self.rnd.lock:
                self.rnd.unexpected.append("client %d: Add Attribute batch of %d answered with %d items"
                                           % (self.cid, len(pairs), len(resp.items)))

    def change_state(self, conn, rec, item, to, what):
        it = self.send(conn, item, rec, to).item
        if not it.ok:
            return self.unexpected(what, it, rec, to)
        rec.state = to
        if to == DESTROYED:
            rec.acked["destroy"] += 1
            self.keys.remove(rec)
        else:
            rec.acked["state"] += 1

    def activate(self, conn, rec):
        self.change_state(conn, rec, K.activate(rec.uid, K.batch_id()), ACTIVE, "Activate")

    def revoke(self, conn, rec):
        self.change_state(conn, rec, K.revoke(rec.uid, bid=K.batch_id()), DEACTIVATED, "Revoke")

    def destroy(self, conn, rec):
        self.change_state(conn, rec, K.destroy(rec.uid, K.batch_id()), DESTROYED, "Destroy")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.verified = {"create": 0, "attribute": 0, "state": 0, "destroy": 0}
        self.bytes_compared = 0
        self.losses = []

    def lost(self, rec, what):
        with self.lock:
            self.losses.append("round %d client %d key %s: %s" % (rec.round, rec.client, rec.uid, what))

    def total(self):
        return sum(self.verified.values())


def verify_key(conn, rec, tally, final):
    """Check one ledger entry against the running gateway; count into tally."""
    names = sorted(rec.attrs)
    resp = conn.request(K.get_attributes(rec.uid, ["State"] + names, K.batch_id()))
    it = resp.item
    allowed = {rec.observed} if final else rec.allowed_states()
    if not it.ok:
        if it.reason == RESULT_REASON["ITEM_NOT_FOUND"] and DESTROYED in allowed:
            # A destroyed object may be forgotten altogether: nothing else to check.
            values, state = None, DESTROYED
        else:
            tally.lost(rec, "Get Attributes: %s (acknowledged Create lost)" % it.describe())
            return
    else:
        values = {}
        for n, v in it.attributes():
            if v is not None and v.type in (ENUMERATION, TEXT_STRING):
                values.setdefault(n, []).append(v.value)
        states = values.get("State", [])
        state = states[0] if len(states) == 1 else None
    ok = True
    if state not in allowed:
        ok = False
        tally.lost(rec, "State is %s, acknowledged %s%s" % (
            state_name(state), state_name(rec.observed if final else rec.state),
            "" if final or not rec.maybe else " (or in doubt: %s)" % ", ".join(map(state_name, rec.maybe))))
    if not final:
        rec.observed = state
    if values is not None:
        for name in names:
            if rec.attrs[name] not in values.get(name, []):
                ok = False
                tally.lost(rec, "attribute %s=%s acknowledged, found %r"
                           % (name, rec.attrs[name], values.get(name)))
    it = conn.request(K.get(rec.uid, K.batch_id())).item
    if state == DESTROYED:
        if it.ok or it.reason != RESULT_REASON["ITEM_NOT_FOUND"]:
            ok = False
            tally.lost(rec, "destroyed, but Get answers %s" % it.describe())
    else:
        key = K.symmetric_key_of(it.payload) if it.ok else None
        if key is None:
            ok = False
            tally.lost(rec, "Get: %s" % it.describe())
        elif rec.material is not None:
            with tally.lock:
                tally.bytes_compared += 1
            if key[0] != rec.material:
                ok = False
                tally.lost(rec, "Get returns other key bytes than after Create")
    with tally.lock:
        for kind, n in rec.acked.items():
            tally.verified[kind] += n
    return ok


def verify_all(gw, records, final=False):
    """Check every record with VERIFIERS connections in parallel. Returns a Tally."""
    tally = Tally()
    errors = []
    chunks = [records[i::VERIFIERS] for i in range(VERIFIERS)]

    def run(chunk):
        try:
            with gw.connect(IDENTITY) as conn:
                for rec in chunk:
                    verify_key(conn, rec, tally, final)
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in chunks if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors or any(t.is_alive() for t in threads):
        raise HarnessError("verification failed to run: %s" % "; ".join(errors or ["timeout"]))
    return tally


def read_store(db):
    states = dict(db.execute("SELECT uid, state FROM objects").fetchall())
    attrs = set(db.execute("SELECT uid, name FROM attributes WHERE name LIKE 'x-crash-%'").fetchall())
    return states, attrs


def check_disk_copy(gw, records, workdir):
    """Copy the store files as the kill left them, open the copy: (integrity, [problems]).
    On PostgreSQL the server holds the store and outlives the killed gateway: its rows are
    read directly (the server's integrity is not the gateway's to break)."""
    if gw.store_url is not None:
        integrity = ["ok"]
        with gw.store_db(readonly=True) as db:
            states, attrs = read_store(db)
    else:
        for name in ("kmipgw.db", "kmipgw.db-wal", "kmipgw.db-shm"):
            dst = os.path.join(workdir, name)
            if os.path.exists(dst):
                os.unlink(dst)
            if os.path.exists(gw.path(name)):
                shutil.copyfile(gw.path(name), dst)
        db = sqlite3.connect(os.path.join(workdir, "kmipgw.db"))
        try:
            integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
            states, attrs = read_store(db)
        finally:
            db.close()
    problems = []
    for rec in records:
        if rec.uid not in states:
            if DESTROYED not in rec.allowed_states():
                problems.append("%s: acknowledged Create not in the store" % rec.uid)
            continue
        if states[rec.uid] not in rec.allowed_states():
            problems.append("%s: state %s in the store, acknowledged %s"
                            % (rec.uid, state_name(states[rec.uid]), state_name(rec.state)))
        for name in rec.attrs:
            if (rec.uid, name) not in attrs:
                problems.append("%s: acknowledged attribute %s not in the store" % (rec.uid, name))
    return integrity, problems


class CrashDurability(unittest.TestCase):
    def setUp(self):
        self.gw = Gateway("crash")
        self.copy_dir = tempfile.mkdtemp(prefix="kgtest-crash-copy-")

    def tearDown(self):
        self.gw.cleanup()
        shutil.rmtree(self.copy_dir, ignore_errors=True)

    def test_sigkill_during_changes_loses_nothing_acknowledged(self):
        seed = int(os.environ.get("KGTEST_CRASH_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        gw = self.gw
        t0 = time.monotonic()
        rounds, records, losses, disk_problems = [], [], [], []
        verified = {"create": 0, "attribute": 0, "state": 0, "destroy": 0}
        bytes_compared = in_doubt = 0
        unexpected, client_errors = [], []

        for number in range(1, ROUNDS + 1):
            if number > MIN_ROUNDS and time.monotonic() - t0 > BUDGET:
                break
            rnd = Round(number)
            if not gw.alive():
                gw.start()
            stop = threading.Event()
            clients = [Client(gw, rnd, c, rng.randrange(1 << 30), stop) for c in range(CLIENTS)]
            for c in clients:
                c.start()
            time.sleep(rng.uniform(*KILL_AFTER))
            rc = gw.kill()
            stop.set()
            for c in clients:
                c.join(30)
            self.assertFalse(any(c.is_alive() for c in clients), "a client thread hangs after the kill")
            self.assertEqual(rc, -9, "round %d: the gateway was not running when killed (exit %s); log:\n%s"
                             % (number, rc, gw.log_tail()))

            integrity, problems = check_disk_copy(gw, rnd.keys, self.copy_dir)
            self.assertEqual(integrity, ["ok"], "round %d: store corrupt after SIGKILL" % number)
            disk_problems += ["round %d: %s" % (number, p) for p in problems]

            try:
                gw.start()  # must come back on the store the kill left
            except HarnessError as e:
                self.fail("round %d: the gateway does not start after SIGKILL: %s" % (number, e))
            tally = verify_all(gw, rnd.keys)  # the next round runs on this recovered gateway

            rounds.append(rnd)
            records += rnd.keys
            losses += tally.losses
            for kind, n in tally.verified.items():
                verified[kind] += n
            bytes_compared += tally.bytes_compared
            in_doubt += rnd.in_doubt
            unexpected += ["round %d: %s" % (number, u) for u in rnd.unexpected]
            client_errors += ["round %d: %s" % (number, e) for e in rnd.errors]

        # Every round's keys once more, after all the later crashes.
        final = verify_all(gw, records, final=True)
        rc, killed = gw.stop()
        self.assertFalse(killed, "the gateway did not exit on SIGTERM after the rounds")

        total = sum(verified.values())
        line = ("crash: %d rounds, %d acknowledged operations verified, %d lost "
                "(%d creates, %d attributes, %d activate/revoke, %d destroys; %d key bytes compared; "
                "%d requests in flight at the kills; %d after all rounds: %d lost; %.1f s; seed %d)"
                % (len(rounds), total, len(losses), verified["create"], verified["attribute"],
                   verified["state"], verified["destroy"], bytes_compared, in_doubt,
                   final.total(), len(final.losses), time.monotonic() - t0, seed))
        print("\n" + line, flush=True)  # the unittest stream (run.py: stdout)

        self.assertEqual(client_errors, [], "client threads failed")
        self.assertEqual(losses, [], "acknowledged operations lost after SIGKILL:\n" + "\n".join(losses[:50]))
        self.assertEqual(disk_problems, [], "acknowledged changes missing from the store files:\n"
                         + "\n".join(disk_problems[:50]))
        self.assertEqual(final.losses, [], "acknowledged operations lost after later crashes:\n"
                         + "\n".join(final.losses[:50]))
        self.assertEqual(unexpected, [], "requests failed while the gateway was running:\n"
                         + "\n".join(unexpected[:50]))
        self.assertGreaterEqual(len(rounds), MIN_ROUNDS if ROUNDS >= MIN_ROUNDS else ROUNDS)
        self.assertGreater(total, 0, "no operation was acknowledged before the kills")
        self.assertEqual(final.total(), total)


if __name__ == "__main__":
    unittest.main()
