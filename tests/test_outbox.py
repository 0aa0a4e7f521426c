"""The outbox against the reference backend on loopback: delivery, signature, retries with backoff,
dead letters, and exactly-once as the backend sees it across a backend outage and a kill -9."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from scanbridge import outbox_cli
from scanbridge.outbox import (CONFIRMATION, Database, Deliverer, Outbox, backoff_delay, check_signature,
                               sign)
from scanbridge_tools.backend import BackendServer

SECRET = b"test-secret-0123456789"


def body(i):
    key = "%024x" % (0xA000 + i)
    return key, {"version": 1, "type": "confirmation", "confirmation_id": key, "order_id": "o-%d" % i,
                 "till": "till-1", "amount": 100 + i, "currency": "USD", "token_id": key, "kid": "0badf00d",
                 "payer": "payer%d" % i, "scanner": "virtual-0001", "verdict": "accepted", "reason": "ok",
                 "mode": "offline"}


def fill(outbox, n, start=0):
    with outbox.db.transaction() as c:
        for i in range(start, start + n):
            key, b = body(i)
            outbox.enqueue(c, CONFIRMATION, key, b, b["order_id"])
    return [body(i)[0] for i in range(start, start + n)]


def wait_for(cond, timeout=20.0, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def control(url, **doc):
    req = urllib.request.Request(url + "/control", data=json.dumps(doc).encode(), method="POST")
    return json.loads(urllib.request.urlopen(req, timeout=5).read())


@pytest.fixture
def backend(tmp_path):
    srv = BackendServer(str(tmp_path / "backend.db"), SECRET, control=True).start()
    yield srv
    srv.stop()


def exactly_once(backend_db, keys):
    """Every key recorded by the backend once; none missing, none extra."""
    import sqlite3
    db = sqlite3.connect(backend_db)
    recorded = [r[0] for r in db.execute("SELECT idem_key FROM records")]
    applied = {r[0]: r[1] for r in db.execute(
        "SELECT idem_key, COUNT(*) FROM requests WHERE replayed=0 AND status=200 GROUP BY idem_key")}
    requests = db.execute("SELECT COUNT(*) FROM requests WHERE status=200").fetchone()[0]
    db.close()
    assert sorted(recorded) == sorted(keys)
    assert set(applied) == set(keys) and set(applied.values()) == {1}
    return requests


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    import hashlib
    import hmac
    sig = sign(b"k", "1700000000", b'{"a":1}')
    assert sig == "v1=" + hmac.new(b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
    assert check_signature(b"k", "1700000000", b'{"a":1}', sig)
    assert not check_signature(b"k", "1700000001", b'{"a":1}', sig)
    assert not check_signature(b"other", "1700000000", b'{"a":1}', sig)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    assert backoff_delay(1, 1.0, 60, lambda: 0.0) == 0.5
    assert backoff_delay(1, 1.0, 60, lambda: 1.0) == 1.0
    assert backoff_delay(4, 1.0, 60, lambda: 0.0) == 4.0
    assert backoff_delay(20, 1.0, 60, lambda: 1.0) == 60.0


def test_delivers_every_confirmation_once_with_headers(tmp_path, backend):
    ob = Outbox(Database(str(tmp_path / "c.db")))
    keys = fill(ob, 25)
    w = Deliverer(ob, backend.url, SECRET, base_delay_s=0.05).start()
    try:
        assert wait_for(lambda: ob.counts()["delivered"] == 25)
    finally:
        w.stop()
    assert exactly_once(str(tmp_path / "backend.db"), keys) == 25
    e = ob.get(1)
    assert e["state"] == "delivered" and e["attempts"] == 1 and e["answer"]["status"] == "recorded"
    assert e["answer"]["confirmation_id"] == keys[0]


def test_wrong_secret_is_a_dead_letter_at_once_and_retry_after_fix_delivers(tmp_path, backend, capsys):
    db = str(tmp_path / "c.db")
    ob = Outbox(Database(db))
    keys = fill(ob, 3)
    w = Deliverer(ob, backend.url, b"wrong secret", base_delay_s=0.05).start()
    try:
        assert wait_for(lambda: ob.counts()["dead"] == 3)
    finally:
        w.stop()
    e = ob.get(1)
    assert e["attempts"] == 1 and e["last_status"] == 401 and "bad_signature" in e["last_error"]
    assert backend.backend.stats()["records"] == 0
    # visible in the CLI, retried from it
    args = type("A", (), {"db": db, "json": True, "action": "list", "state": "dead", "limit": 50})
    assert outbox_cli.main(args) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"]["dead"] == 3 and len(listed["entries"]) == 3
    args = type("A", (), {"db": db, "json": False, "action": "retry", "id": None, "all_dead": True})
    assert outbox_cli.main(args) == 0
    assert ob.counts()["pending"] == 3
    w = Deliverer(ob, backend.url, SECRET, base_delay_s=0.05).start()
    try:
        assert wait_for(lambda: ob.counts()["delivered"] == 3)
    finally:
        w.stop()
    exactly_once(str(tmp_path / "backend.db"), keys)


def test_5xx_and_429_are_retried_with_backoff(tmp_path, backend):
    ob = Outbox(Database(str(tmp_path / "c.db")))
    control(backend.url, fail_status=503, fail_count=3)
    keys = fill(ob, 4)
    w = Deliverer(ob, backend.url, SECRET, base_delay_s=0.05, max_delay_s=0.2).start()
    try:
        assert wait_for(lambda: ob.counts()["delivered"] == 4)
    finally:
        w.stop()
    assert ob.get(1)["attempts"] == 4  # three 503s, then through
    exactly_once(str(tmp_path / "backend.db"), keys)
    control(backend.url, fail_status=429, fail_count=1)
    keys += fill(ob, 1, start=10)
    w = Deliverer(ob, backend.url, SECRET, base_delay_s=0.05).start()
    try:
        assert wait_for(lambda: ob.counts()["delivered"] == 5)
    finally:
        w.stop()
    assert ob.get(5)["attempts"] == 2


def test_non_retryable_4xx_is_dead_and_max_attempts_too(tmp_path, backend):
    ob = Outbox(Database(str(tmp_path / "c.db")))
    with ob.db.transaction() as c:  # the key does not match the body: 422, never retried
        ob.enqueue(c, CONFIRMATION, "mismatched-key", body(1)[1])
    control(backend.url, fail_status=500)  # every request fails from now on
    fill(ob, 1, start=5)
    w = Deliverer(ob, backend.url, SECRET, base_delay_s=0.02, max_delay_s=0.05, max_attempts=3).start()
    try:
        assert wait_for(lambda: ob.counts()["dead"] == 2)
    finally:
        w.stop()
    a, b = ob.get(1), ob.get(2)
    assert a["last_status"] in (422, 500)
    assert b["attempts"] == 3 and b["last_status"] == 500


def test_backend_down_then_back_every_confirmation_arrives_once(tmp_path):
    bdb = str(tmp_path / "backend.db")
    srv = BackendServer(bdb, SECRET, control=True).start()
    port = srv.port
    ob = Outbox(Database(str(tmp_path / "c.db")))
    w = Deliverer(ob, srv.url, SECRET, base_delay_s=0.05, max_delay_s=0.4, max_attempts=1000).start()
    try:
        keys = fill(ob, 30)
        assert wait_for(lambda: ob.counts()["delivered"] >= 10)
        srv.stop()  # the backend goes away (its port closed)
        keys += fill(ob, 30, start=100)  # scans keep coming while it is down
        time.sleep(2.0)
        down = ob.counts()
        assert down["pending"] > 0 and down["dead"] == 0
        retried = [e for e in ob.list("pending", 100) if e["attempts"] >= 2]
        assert retried and all("unreachable" in (e["last_error"] or "") or "connection" in (e["last_error"] or "")
                               for e in retried)
        srv = BackendServer(bdb, SECRET, port=port, control=True).start()  # back, same port and records
        assert wait_for(lambda: ob.counts()["delivered"] == 60, timeout=30)
    finally:
        w.stop()
        srv.stop()
    exactly_once(bdb, keys)


def test_kill_9_mid_delivery_then_restart_every_confirmation_arrives_once(tmp_path):
    """The bridge's delivery worker runs in its own process (`scanbridge outbox deliver`); the
    backend holds each fresh answer for a while after recording it, and the process is killed
    while an answer is in flight: recorded at the backend, not yet marked delivered here. After a
    restart it delivers that one again; the backend's idempotency key makes it count once."""
    bdb = str(tmp_path / "backend.db")
    srv = BackendServer(bdb, SECRET, control=True).start()
    control(srv.url, hold_ms=150)
    db = str(tmp_path / "c.db")
    ob = Outbox(Database(db))
    keys = fill(ob, 40)
    env = dict(os.environ, SCANBRIDGE_BACKEND_SECRET=SECRET.decode())
    cmd = [sys.executable, "-m", "scanbridge.cli", "outbox", "--db", db, "deliver", "--backend", srv.url,
           "--base-delay", "0.05", "--until-empty"]
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert wait_for(lambda: srv.backend.stats()["records"] >= 5 and srv.backend.holding >= 1, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = srv.backend.stats()["records"]
        assert 5 <= at_kill < 40
        assert ob.counts()["delivered"] < at_kill  # the one in flight is recorded there, pending here
        control(srv.url, hold_ms=0)
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        assert ob.counts() == {"pending": 0, "delivered": 40, "dead": 0}
        stats = srv.backend.stats()
    finally:
        srv.stop()
    requests = exactly_once(bdb, keys)
    assert stats["replayed"] >= 1 and requests == 40 + stats["replayed"]
