"""The durable outbox of confirmations for the payment backend, and the worker that delivers them.

A confirmation is written in the same SQLite transaction as the order it completes (WAL,
synchronous=FULL: once the scanner hears "accepted", the confirmation is on disk). The delivery
worker POSTs each one to the merchant's payment backend with an HMAC-SHA256 signature and an
Idempotency-Key (the token id), retries with exponential backoff and jitter, and moves an entry
to the dead-letter state after N attempts or a non-retryable 4xx. Exactly once as the backend
sees it = at-least-once delivery here + the backend's idempotency key (docs/integration.md)."""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import random
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"

# kind -> backend path (docs/integration.md)
CONFIRMATION = "confirmation"  # offline-accepted payment: the backend records it
AUTHORIZATION = "authorization"  # signed code above the offline limit: the backend approves or declines
ACQUIRER = "acquirer"  # online wallet code: forwarded to the acquirer, whose answer decides
ENDPOINTS = {CONFIRMATION: "/v1/confirmations", AUTHORIZATION: "/v1/authorizations",
             ACQUIRER: "/v1/acquirer/payments"}

SIGNATURE_HEADER = "X-Scanbridge-Signature"
TIMESTAMP_HEADER = "X-Scanbridge-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRYABLE_STATUS = (408, 425, 429)  # and every 5xx

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    order_id TEXT,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    last_status INTEGER,
    last_error TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
"""


class OutboxError(RuntimeError):
    def __init__(self, reason: str, message: str = ""):
        super().__init__("%s: %s" % (reason, message) if message else reason)
        self.reason = reason


class Database:
    """One SQLite file (orders + outbox) in WAL mode with synchronous=FULL, one connection shared
    by the bridge's threads behind a lock. Other processes (`scanbridge outbox`) open the same
    file; SQLite's locking and the busy timeout keep them apart."""

    def __init__(self, path: str, busy_timeout_ms: int = 10000):
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                    timeout=busy_timeout_ms / 1000)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout=%d" % busy_timeout_ms)
        if path != ":memory:":
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxError("db_unavailable", "%s: could not switch to WAL (%s)" % (path, mode))
        # FULL: a commit syncs the WAL, so "accepted" is never said about a confirmation that a
        # power cut could lose.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.lock = threading.RLock()
        self._depth = 0
        self._ckpt: Optional[sqlite3.Connection] = None

    def checkpoint_in_background(self) -> None:
        """From now on the caller runs checkpoint() every second or so, from its own thread: the
        WAL is copied back into the database (and that file synced) there, not inside whichever
        scan's commit crosses SQLite's automatic checkpoint threshold."""
        if self.path == ":memory:" or self._ckpt is not None:
            return
        self._ckpt = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=self._busy_timeout_ms / 1000)
        with self.lock:
            self.conn.execute("PRAGMA wal_autocheckpoint=0")

    def checkpoint(self) -> None:
        """A PASSIVE checkpoint on its own connection: never waits for the scan path's writers."""
        if self._ckpt is not None:
            self._ckpt.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested uses join the outer transaction. durable=False
        commits without syncing the disk (synchronous=NORMAL for this one transaction): only for
        writes whose loss in a power cut is harmless, like "delivered" marks (a lost mark means
        one more delivery, which the backend's idempotency key absorbs)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            if not durable:
                self.conn.execute("PRAGMA synchronous=NORMAL")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield self.conn
                except BaseException:
                    self._depth = 0
                    self.conn.execute("ROLLBACK")
                    raise
                self._depth = 0
                self.conn.execute("COMMIT")
            finally:
                if not durable:
                    self.conn.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, args=()) -> list:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def executescript(self, script: str) -> None:
        with self.lock:
            self.conn.executescript(script)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
        if self._ckpt is not None:
            self._ckpt.close()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


SECRET_ENV = "SCANBRIDGE_BACKEND_SECRET"
DEFAULT_DB = "scanbridge-counter.db"


def read_secret(path: Optional[str] = None, env: str = SECRET_ENV) -> bytes:
    """The shared HMAC secret from a file (its content, stripped) or an environment variable.
    Never logged or printed."""
    if path:
        with open(path, "rb") as f:
            secret = f.read().strip()
    else:
        secret = os.environ.get(env, "").encode("utf-8")
    if not secret:
        raise OutboxError("no_secret", "no HMAC secret: give --secret-file PATH or set %s" % env)
    return secret


def check_signature(secret: bytes, timestamp: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), header or "")


def entry_dict(row) -> dict:
    d = dict(row)
    try:
        d["body"] = json.loads(d["body"])
    except (TypeError, ValueError):
        pass
    if d.get("answer"):
        try:
            d["answer"] = json.loads(d["answer"])
        except ValueError:
            pass
    return d


class Outbox:
    """The table and its state changes. `enqueue` takes the caller's open transaction so the
    confirmation commits with the order completion, or not at all."""

    def __init__(self, db: Database):
        self.db = db
        db.executescript(_SCHEMA)

    def enqueue(self, conn: sqlite3.Connection, kind: str, idem_key: str, body: dict,
                order_id: Optional[str] = None, now: Optional[float] = None) -> int:
        if kind not in ENDPOINTS:
            raise OutboxError("bad_kind", kind)
        now = time.time() if now is None else now
        try:
            cur = conn.execute(
                "INSERT INTO outbox (idem_key, kind, order_id, body, next_at, created_at) VALUES (?,?,?,?,?,?)",
                (idem_key, kind, order_id, canonical_json(body).decode("ascii"), now, now))
        except sqlite3.IntegrityError as e:
            raise OutboxError("duplicate_confirmation", "idempotency key %s already queued" % idem_key) from e
        return int(cur.lastrowid or 0)

    def get(self, entry_id: int) -> Optional[dict]:
        rows = self.db.query("SELECT * FROM outbox WHERE id=?", (entry_id,))
        return entry_dict(rows[0]) if rows else None

    def list(self, state: Optional[str] = None, limit: int = 100) -> list[dict]:
        if state:
            rows = self.db.query("SELECT * FROM outbox WHERE state=? ORDER BY id DESC LIMIT ?", (state, limit))
        else:
            rows = self.db.query("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [entry_dict(r) for r in rows]

    def counts(self) -> dict:
        rows = self.db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        out = {PENDING: 0, DELIVERED: 0, DEAD: 0}
        out.update({r["state"]: r["n"] for r in rows})
        return out

    def due(self, now: float, limit: int = 50) -> list[sqlite3.Row]:
        return self.db.query("SELECT * FROM outbox WHERE state='pending' AND next_at<=? ORDER BY id LIMIT ?",
                             (now, limit))

    def next_due_at(self) -> Optional[float]:
        rows = self.db.query("SELECT MIN(next_at) AS t FROM outbox WHERE state='pending'")
        return rows[0]["t"] if rows else None

    def retry(self, entry_id: int, now: Optional[float] = None) -> bool:
        """A dead letter goes back to the queue with a fresh attempt budget."""
        now = time.time() if now is None else now
        with self.db.transaction() as c:
            cur = c.execute("UPDATE outbox SET state='pending', attempts=0, next_at=?, last_error="
                            "COALESCE(last_error,'') || ' (retried by hand)' WHERE id=? AND state='dead'",
                            (now, entry_id))
        return cur.rowcount == 1

    def retry_dead(self, now: Optional[float] = None) -> int:
        now = time.time() if now is None else now
        with self.db.transaction() as c:
            cur = c.execute("UPDATE outbox SET state='pending', attempts=0, next_at=? WHERE state='dead'", (now,))
        return cur.rowcount


def backoff_delay(attempts: int, base_s: float, max_s: float, rnd: Callable[[], float] = random.random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random, so a fleet of
    bridges coming back after an outage does not hit the backend in lockstep."""
    step = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    return step / 2 + rnd() * step / 2


# apply(conn, entry_row, answer_dict_or_None, state) runs inside the transaction that marks the
# entry delivered/dead and returns a callable to run after the commit (or None).
ApplyAnswer = Callable[[sqlite3.Connection, sqlite3.Row, Optional[dict], str], Optional[Callable[[], None]]]


class Deliverer:
    """The delivery worker: one thread, entries in id order, one keep-alive HTTP connection."""

    def __init__(self, outbox: Outbox, backend_url: str, secret: bytes, *, max_attempts: int = 12,
                 base_delay_s: float = 0.5, max_delay_s: float = 300.0, timeout_s: float = 10.0,
                 apply: Optional[ApplyAnswer] = None, on_change: Optional[Callable[[dict], None]] = None,
                 poll_s: float = 1.0, clock: Callable[[], float] = time.time, interactive_max_attempts: int = 5):
        parts = urlsplit(backend_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboxError("bad_backend_url", backend_url)
        if not secret:
            raise OutboxError("no_secret", "the HMAC secret for the payment backend is empty")
        self.outbox = outbox
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._secret = secret  # never logged, never in reprs
        self.max_attempts = max_attempts
        # an authorization or acquirer payment has a customer waiting at the counter: it gives up
        # (dead letter, the scanner hears "backend_unavailable") after a few seconds, not half an hour
        self.interactive_max_attempts = min(max_attempts, interactive_max_attempts)
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.timeout_s = timeout_s
        self.apply = apply
        self.on_change = on_change
        self.poll_s = poll_s
        self.clock = clock
        self.delivered = 0
        self.failures = 0
        self._conn: Optional[http.client.HTTPConnection] = None
        self._pause_until = 0.0  # after a retryable failure the backend is given time, not hammered
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __repr__(self) -> str:
        return "Deliverer(%s://%s:%d%s)" % (self.scheme, self.host, self.port, self.prefix)

    # -- lifecycle
    def start(self) -> "Deliverer":
        self._thread = threading.Thread(target=self._run, name="outbox-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except sqlite3.Error as e:  # the DB busy/locked by another process: try again soon
                self.failures += 1
                self._stop.wait(0.2)
                del e
            nxt = self.outbox.next_due_at()
            if nxt is not None:
                nxt = max(nxt, self._pause_until)
            wait = self.poll_s if nxt is None else max(0.0, min(self.poll_s, nxt - self.clock()))
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    # -- one pass
    def run_once(self) -> int:
        """Deliver what is due now; returns how many entries reached a final state."""
        done = 0
        while not self._stop.is_set() and self.clock() >= self._pause_until:
            rows = self.outbox.due(self.clock())
            if not rows:
                break
            for row in rows:
                if self._stop.is_set() or self.clock() < self._pause_until:
                    break
                done += self._deliver(row)
        return done

    def _deliver(self, row) -> int:
        body = row["body"].encode("ascii")
        path = self.prefix + ENDPOINTS[row["kind"]]
        status, answer, error, retry_after = self._post(path, body, row["idem_key"])
        attempts = row["attempts"] + 1
        now = self.clock()
        if status is not None and 200 <= status < 300:
            return self._finish(row, DELIVERED, attempts, status, None, answer, now)
        retryable = status is None or status >= 500 or status in RETRYABLE_STATUS
        limit = self.max_attempts if row["kind"] == CONFIRMATION else self.interactive_max_attempts
        if not retryable or attempts >= limit:
            why = error if retryable else "non-retryable HTTP %s: %s" % (status, error)
            return self._finish(row, DEAD, attempts, status, why, answer, now)
        delay = backoff_delay(attempts, self.base_delay_s, self.max_delay_s)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay_s))
        with self.outbox.db.transaction(durable=False) as c:
            c.execute("UPDATE outbox SET attempts=?, next_at=?, last_status=?, last_error=? WHERE id=? AND state='pending'",
                      (attempts, now + delay, status, error, row["id"]))
        self.failures += 1
        self._pause_until = now + delay  # the whole queue waits: the oldest entry goes first again
        self._changed(row["id"])
        return 0

    def _finish(self, row, state, attempts, status, error, answer, now) -> int:
        after = None
        # Not synced: losing this mark in a power cut means one more delivery (idempotent), and
        # the scan path, which must sync, does not wait behind the worker's disk syncs. An
        # answer that changes an order (apply) is synced: the scanner hears about it.
        durable = self.apply is not None and row["kind"] != CONFIRMATION
        with self.outbox.db.transaction(durable=durable) as c:
            cur = c.execute("UPDATE outbox SET state=?, attempts=?, last_status=?, last_error=?, answer=?, "
                            "delivered_at=? WHERE id=? AND state='pending'",
                            (state, attempts, status, error,
                             None if answer is None else json.dumps(answer, sort_keys=True),
                             now if state == DELIVERED else None, row["id"]))
            if cur.rowcount == 1 and self.apply is not None:
                after = self.apply(c, row, answer, state)
        if state == DELIVERED:
            self.delivered += 1
        if after is not None:
            after()
        self._changed(row["id"])
        return 1

    def _changed(self, entry_id: int) -> None:
        if self.on_change is not None:
            entry = self.outbox.get(entry_id)
            if entry is not None:
                self.on_change(entry)

    # -- HTTP
    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, path: str, body: bytes, key: str):
        """(status or None, answer dict or None, error text, retry-after seconds or None)."""
        ts = str(int(self.clock()))
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: key, TIMESTAMP_HEADER: ts,
                   SIGNATURE_HEADER: sign(self._secret, ts, body), "User-Agent": "scanbridge-outbox/1"}
        for attempt in (1, 2):  # a keep-alive connection the server closed: one fresh reconnect
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self._close()
                if attempt == 1:
                    continue
                return None, None, "connection_lost: %s" % e, None
            except (OSError, http.client.HTTPException) as e:
                self._close()
                return None, None, "unreachable: %s" % (e or type(e).__name__), None
            if resp.getheader("Connection", "").lower() == "close":
                self._close()
            answer = None
            try:
                answer = json.loads(data) if data else None
            except ValueError:
                answer = {"raw": data[:200].decode("utf-8", "replace")}
            retry_after = None
            ra = resp.getheader("Retry-After")
            if ra and ra.strip().isdigit():
                retry_after = float(ra.strip())
            error = None
            if not 200 <= resp.status < 300:
                error = "HTTP %d %s" % (resp.status, (answer or {}).get("error", "") if isinstance(answer, dict) else "")
            return resp.status, answer, error, retry_after
        return None, None, "unreachable", None
