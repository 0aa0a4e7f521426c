"""Orders at the counter: tills bound to scanners, one open order per till, and every scan recorded.

The merchant creates an order (amount in minor units + currency, optional reference) at a till;
the next accepted scan from a scanner bound to that till completes it. Orders time out (expired)
or are cancelled. A scan that finds no open order is refused with reason "no_open_order" and
recorded, never lost. Stored in the same SQLite file as the outbox, so an order's completion and
its confirmation commit together (scanbridge.counter does that)."""
from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from scanbridge.outbox import Database

OPEN = "open"
AUTHORIZING = "authorizing"  # a code was read; waiting for the backend's/acquirer's answer
COMPLETED = "completed"
CANCELLED = "cancelled"
EXPIRED = "expired"
FINAL_STATES = (COMPLETED, CANCELLED, EXPIRED)

DEFAULT_TILL = "till-1"
DEFAULT_TTL_S = 120.0
MAX_AMOUNT = 10 ** 11  # minor units; anything bigger is a typo
_CURRENCY = re.compile(r"^[A-Z]{3}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS till_scanners (
    device TEXT PRIMARY KEY,
    till TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    till TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reference TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    closed_at REAL,
    device TEXT,
    payer TEXT,
    token_id TEXT,
    kid TEXT,
    mode TEXT,
    reason TEXT,
    outbox_id INTEGER
);
CREATE INDEX IF NOT EXISTS orders_till_state ON orders (till, state);
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    device TEXT NOT NULL,
    link TEXT,
    seq INTEGER,
    till TEXT,
    order_id TEXT,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    token_id TEXT,
    payer TEXT,
    payload_sha256 TEXT NOT NULL,
    payload_len INTEGER NOT NULL
);
"""


class OrderError(ValueError):
    """A request about orders that cannot be done; `reason` is the stable code."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass
class Order:
    id: str
    till: str
    amount: int  # minor units
    currency: str
    reference: Optional[str]
    state: str
    created_at: float
    expires_at: float
    closed_at: Optional[float] = None
    device: Optional[str] = None
    payer: Optional[str] = None
    token_id: Optional[str] = None
    kid: Optional[str] = None
    mode: Optional[str] = None  # offline | authorize | online
    reason: Optional[str] = None
    outbox_id: Optional[int] = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["amount_text"] = format_amount(self.amount, self.currency)
        return d


def format_amount(minor: int, currency: str) -> str:
    return "%d.%02d %s" % (minor // 100, minor % 100, currency)


def parse_amount(text) -> int:
    """"12.30" / "12,30" / "12" / 1230 (int: already minor units) -> minor units."""
    if isinstance(text, int):
        return text
    s = str(text).strip().replace(",", ".")
    m = re.match(r"^(\d{1,9})(?:\.(\d{1,2}))?$", s)
    if not m:
        raise OrderError("bad_amount", "amount %r: digits with at most two decimals" % text)
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def _row_order(row) -> Order:
    return Order(**{k: row[k] for k in row.keys()})


Listener = Callable[[str, dict], None]  # (event, order dict)


class OrderBook:
    def __init__(self, db: Database, default_till: Optional[str] = DEFAULT_TILL,
                 ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.time):
        self.db = db
        self.default_till = default_till
        self.ttl_s = ttl_s
        self.clock = clock
        self.listeners: list[Listener] = []
        db.executescript(_SCHEMA)
        self._bind_lock = threading.Lock()

    # -- tills
    def bind(self, device: str, till: str) -> None:
        with self.db.transaction() as c:
            c.execute("INSERT INTO till_scanners (device, till) VALUES (?,?) "
                      "ON CONFLICT(device) DO UPDATE SET till=excluded.till", (device, till))

    def till_for(self, device: str) -> Optional[str]:
        rows = self.db.query("SELECT till FROM till_scanners WHERE device=?", (device,))
        return rows[0]["till"] if rows else self.default_till

    def scanners_of(self, till: str) -> list[str]:
        return [r["device"] for r in self.db.query("SELECT device FROM till_scanners WHERE till=?", (till,))]

    # -- orders
    def create(self, amount, currency: str = "USD", reference: Optional[str] = None,
               till: Optional[str] = None, ttl_s: Optional[float] = None) -> Order:
        till = till or self.default_till
        if not till:
            raise OrderError("no_till", "which till?")
        minor = parse_amount(amount)
        if not 0 < minor <= MAX_AMOUNT:
            raise OrderError("bad_amount", "amount must be above zero and at most %d minor units" % MAX_AMOUNT)
        currency = (currency or "").upper()
        if not _CURRENCY.match(currency):
            raise OrderError("bad_currency", "currency %r: three letters (ISO 4217)" % currency)
        if reference is not None:
            reference = str(reference)[:64] or None
        now = self.clock()
        self.expire_due(now)
        order = Order("o-" + secrets.token_hex(6), till, minor, currency, reference, OPEN, now,
                      now + (self.ttl_s if ttl_s is None else ttl_s))
        with self.db.transaction() as c:
            busy = c.execute("SELECT id, state FROM orders WHERE till=? AND state IN (?,?)",
                             (till, OPEN, AUTHORIZING)).fetchone()
            if busy:
                raise OrderError("till_busy", "order %s on %s is still %s: cancel it first" % (busy["id"], till, busy["state"]))
            d = asdict(order)
            c.execute("INSERT INTO orders (%s) VALUES (%s)" % (",".join(d), ",".join("?" * len(d))), tuple(d.values()))
        self._emit("created", order)
        return order

    def get(self, order_id: str) -> Optional[Order]:
        rows = self.db.query("SELECT * FROM orders WHERE id=?", (order_id,))
        return _row_order(rows[0]) if rows else None

    def cancel(self, order_id: str) -> Order:
        with self.db.transaction() as c:
            row = c.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
            if row is None:
                raise OrderError("unknown_order", order_id)
            if row["state"] == AUTHORIZING:
                # the backend may approve at any moment: a cancel now could leave a paid order
                # marked cancelled
                raise OrderError("order_authorizing", "order %s is waiting for the backend's answer" % order_id)
            if row["state"] != OPEN:
                raise OrderError("order_closed", "order %s is already %s" % (order_id, row["state"]))
            c.execute("UPDATE orders SET state=?, closed_at=?, reason=? WHERE id=?",
                      (CANCELLED, self.clock(), "cancelled", order_id))
        order = self.get(order_id)
        assert order is not None
        self._emit("cancelled", order)
        return order

    def expire_due(self, now: Optional[float] = None) -> list[Order]:
        """Open orders past their time become expired (authorizing ones wait for the answer)."""
        now = self.clock() if now is None else now
        if not self.db.query("SELECT 1 FROM orders WHERE state=? AND expires_at<=? LIMIT 1", (OPEN, now)):
            return []  # the sweep runs every second: no write transaction when nothing is due
        with self.db.transaction() as c:
            rows = c.execute("SELECT * FROM orders WHERE state=? AND expires_at<=?", (OPEN, now)).fetchall()
            for r in rows:
                c.execute("UPDATE orders SET state=?, closed_at=?, reason=? WHERE id=? AND state=?",
                          (EXPIRED, now, "timeout", r["id"], OPEN))
        out = []
        for r in rows:
            o = _row_order(r)
            o.state, o.closed_at, o.reason = EXPIRED, now, "timeout"
            out.append(o)
            self._emit("expired", o)
        return out

    def current(self, till: str, now: Optional[float] = None) -> Optional[Order]:
        """The till's open or authorizing order (expiring overdue ones first)."""
        now = self.clock() if now is None else now
        rows = self.db.query("SELECT * FROM orders WHERE till=? AND state IN (?,?) ORDER BY created_at DESC LIMIT 1",
                             (till, OPEN, AUTHORIZING))
        if not rows:
            return None
        order = _row_order(rows[0])
        if order.state == OPEN and order.expires_at <= now:
            self.expire_due(now)
            return None
        return order

    def history(self, till: Optional[str] = None, limit: int = 50) -> list[Order]:
        if till:
            rows = self.db.query("SELECT * FROM orders WHERE till=? ORDER BY created_at DESC LIMIT ?", (till, limit))
        else:
            rows = self.db.query("SELECT * FROM orders ORDER BY created_at DESC LIMIT ?", (limit,))
        return [_row_order(r) for r in rows]

    # -- state changes inside the counter's transaction (the caller commits, then calls emit)
    def mark(self, conn: sqlite3.Connection, order: Order, state: str, *, scan=None, payer=None,
             token_id=None, kid=None, mode=None, reason=None, outbox_id=None) -> Order:
        closed = self.clock() if state in FINAL_STATES else None
        cur = conn.execute(
            "UPDATE orders SET state=?, closed_at=?, device=COALESCE(?, device), payer=COALESCE(?, payer), "
            "token_id=COALESCE(?, token_id), kid=COALESCE(?, kid), mode=COALESCE(?, mode), reason=?, "
            "outbox_id=COALESCE(?, outbox_id) WHERE id=? AND state IN (?,?)",
            (state, closed, scan.device_id if scan is not None else None, payer, token_id, kid, mode, reason,
             outbox_id, order.id, OPEN, AUTHORIZING))
        if cur.rowcount != 1:
            raise OrderError("order_closed", "order %s is no longer open" % order.id)
        row = conn.execute("SELECT * FROM orders WHERE id=?", (order.id,)).fetchone()
        return _row_order(row)

    def record_scan(self, conn: Optional[sqlite3.Connection], scan, verdict, till: Optional[str],
                    order_id: Optional[str], token_id: Optional[str] = None, payer: Optional[str] = None) -> int:
        """Every scan leaves a row: what was read (a digest, not the bearer code), where, the verdict."""
        args = (time.time(), scan.device_id, scan.link, scan.seq, till, order_id, verdict.verdict, verdict.reason,
                token_id, payer, hashlib.sha256(scan.payload).hexdigest(), len(scan.payload))
        sql = ("INSERT INTO scans (at, device, link, seq, till, order_id, verdict, reason, token_id, payer, "
               "payload_sha256, payload_len) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
        if conn is not None:
            return int(conn.execute(sql, args).lastrowid or 0)
        with self.db.transaction() as c:
            return int(c.execute(sql, args).lastrowid or 0)

    def scans(self, limit: int = 50, reason: Optional[str] = None) -> list[dict]:
        if reason:
            rows = self.db.query("SELECT * FROM scans WHERE reason=? ORDER BY id DESC LIMIT ?", (reason, limit))
        else:
            rows = self.db.query("SELECT * FROM scans ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    # -- listeners
    def _emit(self, event: str, order: Order) -> None:
        d = order.to_dict()
        for fn in list(self.listeners):
            fn(event, d)

    emit = _emit
