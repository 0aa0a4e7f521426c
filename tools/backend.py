"""`scanbridge backend`: a small reference payment backend for the demo, the tests and integrators.

It implements the contract in docs/integration.md: checks the HMAC-SHA256 signature and its
timestamp, keeps every Idempotency-Key in SQLite and answers a repeat with the stored answer
(so a confirmation delivered twice is applied once), and decides authorizations and acquirer
payments by a simple documented rule. It can be told to fail (tests): answer an HTTP error for
the next N requests, or hold each answer for a while after recording it."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from scanbridge.outbox import (ENDPOINTS, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
                               check_signature, read_secret)

KIND_BY_PATH = {path: kind for kind, path in ENDPOINTS.items()}
MAX_BODY = 64 * 1024
DEFAULT_TOLERANCE_S = 300
DEFAULT_APPROVE_UP_TO = 100000  # minor units: authorizations and acquirer payments up to 1000.00

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    idem_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    status INTEGER NOT NULL,
    answer TEXT NOT NULL,
    first_at REAL NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    path TEXT NOT NULL,
    idem_key TEXT,
    status INTEGER NOT NULL,
    replayed INTEGER NOT NULL,
    error TEXT
);
"""


def decide(kind: str, body: dict, approve_up_to: int) -> dict:
    """The reference rule (docs/integration.md): confirmations are recorded; authorizations and
    acquirer payments are approved up to `approve_up_to` minor units (and within the code's own
    cap); acquirer codes ending in 9 are declined as "insufficient_funds"."""
    if kind == "confirmation":
        return {"status": "recorded"}
    amount = int(body.get("amount") or 0)
    if amount > approve_up_to:
        return {"status": "declined", "reason": "over_limit"}
    if body.get("amount_cap") is not None and amount > int(body["amount_cap"]):
        return {"status": "declined", "reason": "over_amount_cap"}
    if kind == "acquirer" and str(body.get("code", "")).endswith("9"):
        return {"status": "declined", "reason": "insufficient_funds"}
    return {"status": "approved"}


class Backend:
    """The logic without HTTP: process(path, headers, body) -> (status, answer dict, headers)."""

    def __init__(self, db_path: str, secret: bytes, *, tolerance_s: int = DEFAULT_TOLERANCE_S,
                 approve_up_to: int = DEFAULT_APPROVE_UP_TO, control: bool = False):
        self.db_path = db_path
        self._secret = secret
        self.tolerance_s = tolerance_s
        self.approve_up_to = approve_up_to
        self.control = control
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=10)
        self.db.row_factory = sqlite3.Row
        if db_path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.lock = threading.Lock()
        self.fail_status = 0
        self.fail_left = 0
        self.hold_ms = 0  # hold each fresh answer this long after recording it (kill -9 tests)
        self.holding = 0

    def _log(self, path, key, status, replayed, error=None) -> None:
        self.db.execute("INSERT INTO requests (at, path, idem_key, status, replayed, error) VALUES (?,?,?,?,?,?)",
                        (time.time(), path, key, status, int(replayed), error))

    def _error(self, path, key, status, code, message):
        with self.lock:
            self._log(path, key, status, False, code)
        return status, {"error": code, "message": message}, {}

    def process(self, path: str, headers, body: bytes):
        kind = KIND_BY_PATH.get(path)
        key = headers.get(IDEMPOTENCY_HEADER)
        if kind is None:
            return self._error(path, key, 404, "unknown_endpoint", path)
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                status = self.fail_status
                self._log(path, key, status, False, "told_to_fail")
                return status, {"error": "told_to_fail", "message": "test failure"}, {"Retry-After": "0"}
        ts = headers.get(TIMESTAMP_HEADER) or ""
        if not ts.isdigit():
            return self._error(path, key, 401, "missing_timestamp", "send %s (unix seconds)" % TIMESTAMP_HEADER)
        if abs(time.time() - int(ts)) > self.tolerance_s:
            return self._error(path, key, 401, "stale_timestamp", "timestamp off by more than %d s" % self.tolerance_s)
        if not check_signature(self._secret, ts, body, headers.get(SIGNATURE_HEADER) or ""):
            return self._error(path, key, 401, "bad_signature", "HMAC-SHA256 over timestamp.body does not match")
        if not key:
            return self._error(path, key, 400, "missing_idempotency_key", "send %s" % IDEMPOTENCY_HEADER)
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError as e:
            return self._error(path, key, 400, "bad_json", str(e))
        if doc.get("confirmation_id") != key:
            return self._error(path, key, 422, "key_mismatch", "Idempotency-Key must equal confirmation_id")
        for field in ("order_id", "amount", "currency", "token_id", "scanner"):
            if field not in doc:
                return self._error(path, key, 400, "missing_field", field)
        digest = hashlib.sha256(body).hexdigest()
        with self.lock:
            row = self.db.execute("SELECT * FROM records WHERE idem_key=?", (key,)).fetchone()
            if row is not None:
                if row["body_sha256"] != digest or row["kind"] != kind:
                    self._log(path, key, 422, False, "idempotency_conflict")
                    return 422, {"error": "idempotency_conflict",
                                 "message": "this key was used with another body"}, {}
                self.db.execute("UPDATE records SET repeats=repeats+1 WHERE idem_key=?", (key,))
                self._log(path, key, row["status"], True)
                return row["status"], json.loads(row["answer"]), {"Idempotent-Replayed": "true"}
            answer = decide(kind, doc, self.approve_up_to)
            answer.update({"confirmation_id": key, "received_at": round(time.time(), 3)})
            self.db.execute("INSERT INTO records (idem_key, kind, body_sha256, body, status, answer, first_at) "
                            "VALUES (?,?,?,?,?,?,?)", (key, kind, digest, body.decode("utf-8"), 200,
                                                       json.dumps(answer, sort_keys=True), time.time()))
            self._log(path, key, 200, False)
            hold = self.hold_ms
            self.holding += 1 if hold else 0
        if hold:
            time.sleep(hold / 1000)
            with self.lock:
                self.holding -= 1
        return 200, answer, {}

    def stats(self) -> dict:
        with self.lock:
            q = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
            by_kind = {r[0]: r[1] for r in self.db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind")}
            return {"records": q("SELECT COUNT(*) FROM records"), "requests": q("SELECT COUNT(*) FROM requests"),
                    "replayed": q("SELECT COUNT(*) FROM requests WHERE replayed=1"),
                    "errors": q("SELECT COUNT(*) FROM requests WHERE status>=400"),
                    "by_kind": by_kind, "holding": self.holding}

    def records(self) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM records ORDER BY first_at").fetchall()
        return [dict(r, body=json.loads(r["body"]), answer=json.loads(r["answer"])) for r in rows]

    def apply_control(self, doc: dict) -> dict:
        with self.lock:
            if "fail_status" in doc:
                self.fail_status = int(doc["fail_status"])
                self.fail_left = int(doc.get("fail_count", 1 << 30))
            if doc.get("fail_status") in (0, None) and "fail_status" in doc:
                self.fail_left = 0
            if "hold_ms" in doc:
                self.hold_ms = int(doc["hold_ms"])
            return {"fail_status": self.fail_status, "fail_left": self.fail_left, "hold_ms": self.hold_ms}

    def close(self) -> None:
        with self.lock:
            self.db.close()


def make_handler(backend: Backend):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the outbox reuses its connection
        server_version = "scanbridge-backend/1"

        def _send(self, status: int, doc, headers=None) -> None:
            data = json.dumps(doc, sort_keys=True).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self._send(413, {"error": "too_large"}, {"Connection": "close"})
                self.close_connection = True
                return
            body = self.rfile.read(n)
            if self.path == "/control":
                if not backend.control:
                    return self._send(404, {"error": "unknown_endpoint"})
                return self._send(200, backend.apply_control(json.loads(body or b"{}")))
            status, doc, headers = backend.process(self.path, self.headers, body)
            self._send(status, doc, headers)

        def do_GET(self):
            if self.path == "/v1/health":
                return self._send(200, {"ok": True})
            if self.path == "/v1/stats" and backend.control:
                return self._send(200, backend.stats())
            if self.path == "/v1/records" and backend.control:
                return self._send(200, backend.records())
            self._send(404, {"error": "unknown_endpoint"})

        def log_message(self, *a):  # quiet: bodies carry payer handles
            pass
    return Handler


class BackendServer:
    """The reference backend on a loopback port, in a thread (tests, demo)."""

    def __init__(self, db_path: str, secret: bytes, host: str = "127.0.0.1", port: int = 0, **options):
        self.backend = Backend(db_path, secret, **options)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.backend))
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.url = "http://%s:%d" % (self.host, self.port)
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "BackendServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="backend", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.backend.close()


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", default="scanbridge-backend.db", help="SQLite file for idempotency records")
    parser.add_argument("--secret-file", help="file holding the HMAC secret (else $SCANBRIDGE_BACKEND_SECRET)")
    parser.add_argument("--approve-up-to", type=int, default=DEFAULT_APPROVE_UP_TO,
                        help="authorizations/acquirer payments approved up to this many minor units")
    parser.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE_S, help="timestamp tolerance, s")
    parser.add_argument("--control", action="store_true", help="enable /control, /v1/stats, /v1/records (tests)")


def main(args) -> int:
    secret = read_secret(args.secret_file)
    server = BackendServer(args.db, secret, args.host, args.port, tolerance_s=args.tolerance,
                           approve_up_to=args.approve_up_to, control=args.control)
    print("backend: listening on %s (db %s)" % (server.url, args.db), file=sys.stderr, flush=True)
    try:
        server.httpd.serve_forever(poll_interval=0.2)
    finally:
        server.httpd.server_close()
    return 0
