"""`scanbridge bench counter`: the time the bridge adds from a scan to the scanner's green RESULT for
an offline-accepted order, including the durable outbox write.

A scanner stand-in speaks the wire protocol on a pty (the device side of wire.Link, as in
`bench serial`); the bridge's SerialLink reads it with pyserial and the ScanService decides with
the real Counter: Ed25519 verification against a trust store, the single-use ledger
claim, the order completion and the outbox entry in ONE SQLite transaction (WAL,
synchronous=FULL: one disk sync per scan; scanbridge.counter.CounterLedger), while the delivery worker forwards confirmations to the reference backend
on loopback (its own records on tmpfs: it stands for a server elsewhere). Before each scan the counter has an open order (created outside the timing).
Measured: SCAN fully received by the bridge -> RESULT written (bridge-added).
Anchors in the same run: the same path with the plain accept-anything decider (link + wire only),
and one SQLite commit with synchronous=FULL on the same disk (what durability costs)."""
from __future__ import annotations

import json
import os
import sqlite3
import statistics
import tempfile
import time

from scanbridge_fw import wire


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _stats(xs):
    return {"p50": round(statistics.median(xs), 3), "p99": round(_pct(xs, 99), 3), "max": round(max(xs), 3), "n": len(xs)}


def run_scans(service, payloads, before_each=None, results=None):
    """Feed each payload as a SCAN over a pty into a SerialLink on `service`; bridge-added times."""
    from scanbridge.link.serial import SerialLink
    from scanbridge_tools.bench.serial_latency import _pty, _pump
    master, slave, path = _pty()
    added = []

    def on_event(kind, data):
        if kind == "result":
            added.append((data["t_tx"] - data["t_rx"]) * 1000)
            if results is not None:
                results.append(data["verdict"])
    link = SerialLink(path, service, on_event=on_event).start()
    now_ms = lambda: int(time.monotonic() * 1000) & 0x3FFFFFFF  # noqa: E731
    dev = wire.Link({"device": "bench-counter", "fw": "bench", "board": "none", "caps": []}, 7)
    dev.start()
    try:
        _pump(master, dev, now_ms, lambda got: dev.peer is not None and dev.pending() == 0)
        time.sleep(0.05)
        _pump(master, dev, now_ms, lambda got: True, 0.1)
        added.clear()
        for payload in payloads:
            if before_each is not None:
                before_each()
            dev.send(wire.SCAN, {"payload": payload, "decode_ms": 80, "quality": 50})
            os.write(master, dev.poll(now_ms()))
            while True:
                msgs = dev.receive(os.read(master, 4096), now_ms())
                if any(m.kind == wire.RESULT for m in msgs):
                    break
            os.write(master, dev.poll(now_ms()))  # ack the RESULT
        deadline = time.monotonic() + 5
        while len(added) < len(payloads) and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        link.stop()
        os.close(master)
        os.close(slave)
    return added[-len(payloads):]


def measure_counter(n: int, tmp: str, deliver: bool = True, ledger_kind: str = "counter"):
    """ledger_kind "counter": the claim in the counter's own transaction (one disk sync per scan);
    "file": the separate SQLite ledger (scanbridge.ledger), a second sync per scan."""
    from scanbridge.counter import Counter
    from scanbridge.ledger import open_ledger
    from scanbridge.scan import ScanService
    from scanbridge.tokens import TrustStore
    from scanbridge_tools.backend import BackendServer
    from scanbridge_tools.mint import Issuer
    issuer = Issuer.generate()
    now = time.time()
    tokens = [issuer.mint(payer=b"payer%04d" % i, amount_cap=5000, currency="USD") for i in range(n)]
    tag = "%d-%s" % (deliver, ledger_kind)
    ledger = open_ledger("sqlite:" + os.path.join(tmp, "ledger-%s.db" % tag)) if ledger_kind == "file" else None
    counter = Counter(os.path.join(tmp, "counter-%s.db" % tag)).with_tokens(
        TrustStore([issuer.trusted_key(now - 3600, now + 3600)]), ledger)
    service = counter.attach(ScanService())
    counter.start()  # as `scanbridge run` does: expiry sweep + WAL checkpoints off the scan path
    secret = b"bench-secret"
    # The backend stands for the merchant's server elsewhere: its disk syncs are not the counter
    # PC's, so its records go to tmpfs when there is one.
    btmp = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
    bpath = os.path.join(btmp, "sb-bench-backend-%d-%s.db" % (os.getpid(), tag))
    backend = BackendServer(bpath, secret).start() if deliver else None
    if backend is not None:
        counter.start_delivery(backend.url, secret)
    verdicts: list = []
    try:
        added = run_scans(service, tokens, lambda: counter.orders.create(1230, "USD"), verdicts)
        if backend is not None:
            deadline = time.monotonic() + 60
            while counter.outbox.counts()["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
        counts = counter.outbox.counts()
        completed = sum(1 for o in counter.orders.history(limit=n + 10) if o.state == "completed")
    finally:
        counter.stop()
        if backend is not None:
            backend.stop()
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(bpath + suffix):
                    os.remove(bpath + suffix)
        counter.ledger.close()
    return added, {"accepted": verdicts.count("accepted"), "orders_completed": completed, "outbox": counts}


def measure_plain(n: int):
    from scanbridge.scan import ScanService
    return run_scans(ScanService(), [b"x" * 120] * n)


def measure_fsync(n: int, tmp: str):
    db = sqlite3.connect(os.path.join(tmp, "fsync.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 300,))
        db.execute("COMMIT")
        out.append((time.perf_counter() - t0) * 1000)
    db.close()
    return out


def add_arguments(parser):
    parser.add_argument("--count", type=int, default=1000, help="scans (default %(default)s)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temporary directory)")


def main(args) -> int:
    n = args.count
    with tempfile.TemporaryDirectory(prefix="sb-bench-counter-", dir=args.dir) as tmp:
        added, check = measure_counter(n, tmp, deliver=True)
        quiet, _ = measure_counter(n, tmp, deliver=False)
        two, _ = measure_counter(n, tmp, deliver=True, ledger_kind="file")
        plain = measure_plain(n)
        fsync = measure_fsync(n, tmp)
    if check["accepted"] != n or check["orders_completed"] != n:
        print("bench counter: expected %d accepted orders, got %s" % (n, check))
        return 1
    out = {"p50_ms": round(statistics.median(added), 3), "p99_ms": round(_pct(added, 99), 3), "scans": len(added),
           "max_ms": round(max(added), 3), "check": check,
           "rows_ms": {"counter, delivery worker running": _stats(added),
                       "counter, delivery worker stopped": _stats(quiet),
                       "counter, separate SQLite ledger file (2 syncs)": _stats(two),
                       "anchor: link + wire only (accept anything)": _stats(plain),
                       "anchor: one SQLite commit, WAL, synchronous=FULL": _stats(fsync)}}
    if args.json:
        print(json.dumps(out))
        return 0
    print("counter bench: %d offline-accepted orders over a pty; bridge-added = SCAN received -> RESULT written" % n)
    print("%-52s %9s %9s %9s" % ("(ms)", "p50", "p99", "max"))
    for name, r in out["rows_ms"].items():
        print("%-52s %9.3f %9.3f %9.3f" % (name, r["p50"], r["p99"], r["max"]))
    print("delivered to the backend: %(delivered)d, pending %(pending)d, dead %(dead)d" % check["outbox"])
    return 0
