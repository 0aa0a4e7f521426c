"""The reference backend's contract (docs/integration.md) as an integrator's client sees it: a
plain HTTP client on loopback computing the signature by the documented recipe."""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from scanbridge_tools.backend import BackendServer

SECRET = b"integrator-secret"


def send(url, path, doc, secret=SECRET, key=None, ts=None, raw=None):
    body = raw if raw is not None else json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    ts = str(int(time.time())) if ts is None else ts
    sig = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Scanbridge-Timestamp": ts, "X-Scanbridge-Signature": sig}
    if key is not False:
        headers["Idempotency-Key"] = key or doc.get("confirmation_id", "")
    req = urllib.request.Request(url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def conf(key, **kw):
    d = {"version": 1, "type": "confirmation", "confirmation_id": key, "order_id": "o-1", "till": "till-1",
         "amount": 1230, "currency": "USD", "token_id": key, "kid": "00112233", "payer": "alice",
         "scanner": "scanner-A", "verdict": "accepted", "reason": "ok", "mode": "offline"}
    d.update(kw)
    return d


@pytest.fixture
def srv(tmp_path):
    s = BackendServer(str(tmp_path / "b.db"), SECRET, approve_up_to=10000).start()
    yield s
    s.stop()


def test_records_once_and_replays_the_same_answer(srv):
    st, a, h = send(srv.url, "/v1/confirmations", conf("k1"))
    assert st == 200 and a["status"] == "recorded" and a["confirmation_id"] == "k1"
    assert h.get("Idempotent-Replayed") is None
    st, b, h = send(srv.url, "/v1/confirmations", conf("k1"))
    assert st == 200 and b == a and h["Idempotent-Replayed"] == "true"
    st, c, _ = send(srv.url, "/v1/confirmations", conf("k1", amount=999))
    assert st == 422 and c["error"] == "idempotency_conflict"
    assert srv.backend.stats()["records"] == 1


def test_authentication_and_validation_errors(srv):
    assert send(srv.url, "/v1/confirmations", conf("k2"), secret=b"wrong")[1]["error"] == "bad_signature"
    st, e, _ = send(srv.url, "/v1/confirmations", conf("k2"), ts=str(int(time.time()) - 3600))
    assert (st, e["error"]) == (401, "stale_timestamp")
    st, e, _ = send(srv.url, "/v1/confirmations", conf("k2"), key=False)
    assert (st, e["error"]) == (400, "missing_idempotency_key")
    st, e, _ = send(srv.url, "/v1/confirmations", conf("k2"), key="other")
    assert (st, e["error"]) == (422, "key_mismatch")
    st, e, _ = send(srv.url, "/v1/confirmations", None, key="k3", raw=b"{nope")
    assert (st, e["error"]) == (400, "bad_json")
    d = conf("k4")
    del d["amount"]
    st, e, _ = send(srv.url, "/v1/confirmations", d)
    assert (st, e["error"]) == (400, "missing_field")
    assert send(srv.url, "/v1/nothing", conf("k5"))[0] == 404
    assert srv.backend.stats()["records"] == 0


def test_authorization_and_acquirer_rules(srv):
    ok = send(srv.url, "/v1/authorizations", conf("a1", type="authorization", amount=9000))[1]
    assert ok["status"] == "approved"
    no = send(srv.url, "/v1/authorizations", conf("a2", type="authorization", amount=10001))[1]
    assert (no["status"], no["reason"]) == ("declined", "over_limit")
    cap = send(srv.url, "/v1/authorizations", conf("a3", type="authorization", amount=600, amount_cap=500))[1]
    assert cap["reason"] == "over_amount_cap"
    w = send(srv.url, "/v1/acquirer/payments", conf("w1", type="acquirer", code="281234567890123451", wallet="alipay"))[1]
    assert w["status"] == "approved"
    w = send(srv.url, "/v1/acquirer/payments", conf("w2", type="acquirer", code="131234567890123459", wallet="wechat"))[1]
    assert (w["status"], w["reason"]) == ("declined", "insufficient_funds")


def test_control_and_stats_only_when_enabled(srv):
    for path in ("/v1/stats", "/v1/records"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + path, timeout=5)
        assert e.value.code == 404
    assert json.loads(urllib.request.urlopen(srv.url + "/v1/health", timeout=5).read()) == {"ok": True}


def test_cli_runs_with_the_secret_from_a_file(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (tmp_path / "secret").write_bytes(SECRET + b"\n")
    proc = subprocess.Popen([sys.executable, "-m", "scanbridge.cli", "backend", "--port", str(port),
                             "--db", str(tmp_path / "b.db"), "--secret-file", str(tmp_path / "secret")],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert "listening on http://127.0.0.1:%d" % port in proc.stderr.readline()
        st, a, _ = send("http://127.0.0.1:%d" % port, "/v1/confirmations", conf("cli-1"))
        assert st == 200 and a["status"] == "recorded"
    finally:
        proc.terminate()
        proc.wait(10)
