"""`scanbridge run` with the counter, as a process: a virtual scanner on a pty, the counter page's
API to open an order, the reference backend receiving the signed confirmation; the HMAC secret
comes from the environment and never appears in the output."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest

from scanbridge_tools.backend import BackendServer

SECRET = "run-secret-do-not-print"


def post(url, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())


@pytest.mark.timeout(120)
def test_run_with_counter_page_and_backend(tmp_path):
    from scanbridge_tools.virtual_scanner.frames import QueuedStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner
    backend = BackendServer(str(tmp_path / "backend.db"), SECRET.encode(), control=True).start()
    frames = QueuedStream()
    scanner = VirtualScanner(frames, fps=15).start()
    env = dict(os.environ, SCANBRIDGE_BACKEND_SECRET=SECRET)
    cmd = [sys.executable, "-m", "scanbridge.cli", "run", "--port", scanner.path, "--json",
           "--counter-db", str(tmp_path / "counter.db"), "--backend", backend.url, "--web-port", "0",
           "--till", "front"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines = []
    try:
        url = None
        end = time.monotonic() + 30
        while url is None and time.monotonic() < end:
            line = proc.stderr.readline()
            err_lines.append(line)
            m = re.search(r"page at (http://\S+)", line)
            if m:
                url = m.group(1)
        assert url, "".join(err_lines)
        state = json.loads(urllib.request.urlopen(url + "api/state", timeout=5).read())
        assert state["till"] == "front" and state["current"] is None
        order = post(url + "api/orders", {"amount": "4.20", "currency": "EUR", "reference": "table 7"})
        frames.show(b"SBDEMO1:run-test-code")
        line = proc.stdout.readline()
        rec = json.loads(line)
        assert rec["verdict"] == "accepted" and rec["reason"] == "ok"
        end = time.monotonic() + 20
        while time.monotonic() < end and backend.backend.stats()["records"] < 1:
            time.sleep(0.05)
        recs = backend.backend.records()
        assert len(recs) == 1
        body = recs[0]["body"]
        assert (body["order_id"], body["amount"], body["currency"], body["till"], body["reference"]) == \
            (order["id"], 420, "EUR", "front", "table 7")
        assert body["scanner"] == scanner.device_id
        state = json.loads(urllib.request.urlopen(url + "api/state", timeout=5).read())
        assert state["orders"][0]["state"] == "completed"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        scanner.stop()
        backend.stop()
    assert SECRET not in out + err + "".join(err_lines)


@pytest.mark.timeout(120)
def test_kill_9_the_bridge_mid_delivery_and_restart(tmp_path):
    """Confirmations already in the bridge's outbox (scans taken while the backend was away) are
    being delivered by `scanbridge run` when it is killed with SIGKILL; the restarted bridge
    delivers the rest and the one in flight again; the backend counts each once."""
    import signal

    from scanbridge.outbox import CONFIRMATION, Database, Outbox
    backend = BackendServer(str(tmp_path / "backend.db"), SECRET.encode(), control=True).start()
    backend.backend.hold_ms = 150
    db = str(tmp_path / "counter.db")
    ob = Outbox(Database(db))
    keys = []
    with ob.db.transaction() as c:
        for i in range(30):
            key = "%024x" % (0xBEEF00 + i)
            keys.append(key)
            ob.enqueue(c, CONFIRMATION, key, {"confirmation_id": key, "order_id": "o-%d" % i, "amount": 100 + i,
                                              "currency": "USD", "token_id": key, "scanner": "s", "till": "till-1"})
    env = dict(os.environ, SCANBRIDGE_BACKEND_SECRET=SECRET)
    cmd = [sys.executable, "-m", "scanbridge.cli", "run", "--port", str(tmp_path / "no-such-tty"),
           "--counter-db", db, "--backend", backend.url, "--no-web"]
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end and not (backend.backend.stats()["records"] >= 5 and backend.backend.holding):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = backend.backend.stats()["records"]
        assert 5 <= at_kill < 30 and ob.counts()["delivered"] < at_kill
        backend.backend.hold_ms = 0
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end and ob.counts()["delivered"] < 30:
            time.sleep(0.05)
        proc.terminate()
        proc.wait(10)
        stats = backend.backend.stats()
        recs = backend.backend.records()
    finally:
        backend.stop()
    assert ob.counts() == {"pending": 0, "delivered": 30, "dead": 0}
    assert sorted(r["confirmation_id"] for r in (x["answer"] for x in recs)) == sorted(keys)
    assert stats["records"] == 30 and stats["replayed"] >= 1
