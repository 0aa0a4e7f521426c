"""The counter: a scan's verdict composed from token verification, the till's open order, the
merchant policy and the durable outbox. `Counter.decide` is the decider for ScanService.

For one scan, in order: find the scanner's till and its open order (none: REJECTED
"no_open_order", recorded, the code is not used up); verify the code with the token decider
(which also checks the code's amount cap against the order); then by policy
- offline: complete the order and queue the confirmation in ONE transaction, then ACCEPTED;
- authorize (above the offline limit) / online (wallet code): queue the request and mark the
  order authorizing in one transaction, answer PENDING at once; when the backend's answer
  arrives the order completes (or reopens) and the scanner gets the final verdict through
  ScanService.update."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Callable, Optional

from scanbridge import orders as orders_mod
from scanbridge import outbox as outbox_mod
from scanbridge.orders import AUTHORIZING, COMPLETED, OPEN, Order, OrderBook, format_amount
from scanbridge.outbox import Database, Deliverer, Outbox, OutboxError
from scanbridge.policy import AUTHORIZE, OFFLINE, ONLINE, Policy
from scanbridge.scan import ACCEPTED, PENDING, REJECTED, ScanEvent, ScanService, Verdict, accept_well_formed

KIND_FOR_MODE = {OFFLINE: outbox_mod.CONFIRMATION, AUTHORIZE: outbox_mod.AUTHORIZATION, ONLINE: outbox_mod.ACQUIRER}

TEXTS = {
    "no_open_order": "No open order at this till",
    "no_till": "Scanner not bound to a till",
    "order_busy": "Order is waiting for approval",
    "awaiting_backend": "Waiting for approval",
    "online_verification": "Wallet code: verifying online",
    "approved": "Approved",
    "declined": "Declined by the backend",
    "backend_unavailable": "Backend unreachable: try another way",
    "duplicate_confirmation": "Code already used",
    "store_unavailable": "Cannot record the payment",
}

Event = Callable[[str, dict], None]  # (kind: "order" | "scan" | "outbox", data)


def payer_text(payer: bytes) -> str:
    """The payer handle as shown: printable ASCII as is, anything else as hex."""
    if payer and all(32 <= b < 127 for b in payer):
        return payer.decode("ascii")
    return payer.hex()


def describe_token(token, payload: bytes) -> dict:
    """The confirmation fields that come from the code: idempotency key, token id, payer, issuer."""
    if token is not None and hasattr(token, "token_id"):  # a signed scanbridge token
        d = {"key": token.token_id.hex(), "token_id": token.token_id.hex(), "kid": token.kid_hex,
             "payer": payer_text(token.payer), "issued_at": token.issued_at, "expires_at": token.expires_at}
        if token.amount_cap is not None:
            d["amount_cap"], d["cap_currency"] = token.amount_cap, token.currency
        return d
    if token is not None and hasattr(token, "wallet"):  # an online wallet code
        digest = hashlib.sha256(token.code.encode("ascii")).hexdigest()[:24]
        return {"key": "online-" + digest, "token_id": "online-" + digest, "kid": None,
                "payer": "%s %s" % (token.wallet, token.masked), "wallet": token.wallet, "code": token.code}
    digest = hashlib.sha256(payload).hexdigest()[:24]  # no token verification configured
    return {"key": "payload-" + digest, "token_id": "payload-" + digest, "kid": None, "payer": ""}


_CLAIMS = """
CREATE TABLE IF NOT EXISTS claims (
    key BLOB PRIMARY KEY,
    expires_at REAL NOT NULL,
    claimed_at REAL NOT NULL,
    owner BLOB
) WITHOUT ROWID;
"""


class CounterLedger:
    """The single-use ledger inside the counter's own SQLite file, for one counter PC (or several
    bridges sharing that file). A claim joins the transaction that completes the order and queues
    the confirmation, so one disk sync makes all three durable together, and a scan that cannot be
    confirmed does not use the code up. For several bridges on several machines use the Redis or
    PostgreSQL ledger (scanbridge.ledger) instead: then the claim is its own durable write."""

    url = "counter-db"

    def __init__(self, db: Database, prune_every_s: float = 60.0):
        self.db = db
        db.executescript(_CLAIMS)
        with db.transaction() as c:
            if "owner" not in [r[1] for r in c.execute("PRAGMA table_info(claims)").fetchall()]:
                c.execute("ALTER TABLE claims ADD COLUMN owner BLOB")  # a file from before owners
        self.prune_every_s = prune_every_s
        self._next_prune = time.monotonic() + prune_every_s

    def claim(self, key: bytes, expires_at: float, owner: Optional[bytes] = None) -> bool:
        return self.claim_many([(key, expires_at, owner)])[0]

    def claim_many(self, items) -> list:
        """(key, expires_at[, owner]) -> True where new, or held by this same owner (the ledger
        contract in scanbridge.ledger)."""
        now = time.time()
        out = []
        with self.db.transaction() as c:  # joins the counter's transaction when there is one
            for item in items:
                key, expires_at = item[0], item[1]
                owner = bytes(item[2]) if len(item) > 2 and item[2] else None
                row = c.execute("SELECT expires_at, owner FROM claims WHERE key=?", (key,)).fetchone()
                if row is not None and row[0] > now:
                    out.append(owner is not None and row[1] == owner)
                    continue
                c.execute("INSERT OR REPLACE INTO claims (key, expires_at, claimed_at, owner) VALUES (?,?,?,?)",
                          (key, expires_at, now, owner))
                out.append(True)
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self.prune_every_s
                c.execute("DELETE FROM claims WHERE expires_at<=?", (now,))
        return out

    def prune(self, now: Optional[float] = None) -> int:
        with self.db.transaction() as c:
            return c.execute("DELETE FROM claims WHERE expires_at<=?", (time.time() if now is None else now,)).rowcount

    def close(self) -> None:
        pass


class Counter:
    def __init__(self, db_path: str, *, token_decider: Optional[Callable[[ScanEvent], Verdict]] = None,
                 policy: Optional[Policy] = None, default_till: Optional[str] = orders_mod.DEFAULT_TILL,
                 order_ttl_s: float = orders_mod.DEFAULT_TTL_S, clock: Callable[[], float] = time.time):
        self.db = Database(db_path)
        self.orders = OrderBook(self.db, default_till=default_till, ttl_s=order_ttl_s, clock=clock)
        self.outbox = Outbox(self.db)
        self.policy = policy or Policy()
        self.token_decider = token_decider or accept_well_formed
        self.clock = clock
        self.service: Optional[ScanService] = None
        self.deliverer: Optional[Deliverer] = None
        self.ledger = None
        self.listeners: list[Event] = []
        self._deciding: Optional[Order] = None
        self._stop = threading.Event()
        self._ticker: Optional[threading.Thread] = None
        self.orders.listeners.append(lambda ev, order: self._emit("order", dict(order, event=ev)))

    # -- composition
    def with_tokens(self, trust_store, ledger=None, **verifier_options) -> "Counter":
        """Verify codes with scanbridge.tokens against `trust_store` and `ledger` (default: the
        CounterLedger in this counter's file); the code's amount cap is checked against the order."""
        from scanbridge.tokens import make_decider
        if ledger is None:
            ledger = CounterLedger(self.db)
        self.ledger = ledger
        self.token_decider = make_decider(trust_store, ledger, amount_for=self.amount_for, **verifier_options)
        return self

    def attach(self, service: ScanService) -> ScanService:
        """Make this counter the service's decider (later verdicts go back through `service`)."""
        self.service = service
        service.decide = self.decide
        return service

    def start_delivery(self, backend_url: str, secret: bytes, **options) -> Deliverer:
        self.deliverer = Deliverer(self.outbox, backend_url, secret, apply=self._apply_answer,
                                   on_change=lambda e: self._emit("outbox", summarize_entry(e)), **options)
        return self.deliverer.start()

    def start(self, sweep_s: float = 1.0) -> "Counter":
        """Expire overdue orders in the background (so the page sees the timeout), and checkpoint
        the WAL there rather than inside a scan's commit."""
        self.db.checkpoint_in_background()

        def loop():
            while not self._stop.wait(sweep_s):
                self.orders.expire_due()
                self.db.checkpoint()
        self._ticker = threading.Thread(target=loop, name="order-expiry", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.deliverer is not None:
            self.deliverer.stop()
        if self._ticker is not None:
            self._ticker.join(2)

    def amount_for(self, scan: ScanEvent):
        o = self._deciding
        return None if o is None else (o.amount, o.currency)

    # -- the decision
    def decide(self, scan: ScanEvent) -> Verdict:
        """One transaction for the whole decision: the single-use claim (when the ledger is the
        CounterLedger), the order's new state, the outbox entry and the scan record commit
        together with one disk sync, or not at all."""
        try:
            with self.db.transaction() as c:
                out, till, order, final = self._decide(c, scan)
        except OutboxError as e:  # the same code queued before: never confirm a payment twice
            till = self.orders.till_for(scan.device_id)
            order = self.orders.current(till) if till else None
            out = Verdict(REJECTED, e.reason, TEXTS.get(e.reason, e.reason))
            self.orders.record_scan(None, scan, out, till, order.id if order else None)
            self._emit_scan(scan, out, till, order)
            return out
        if final is not None:
            self.orders.emit(*final)
            if self.deliverer is not None:
                self.deliverer.wake()
        self._emit_scan(scan, out, till, order)
        return out

    def _decide(self, c, scan: ScanEvent):
        till = self.orders.till_for(scan.device_id)
        order = self.orders.current(till) if till else None
        if order is None or order.state != OPEN:
            reason = "no_till" if not till else ("no_open_order" if order is None else "order_busy")
            verdict = Verdict(REJECTED, reason, TEXTS[reason], details={"till": till})
            self.orders.record_scan(c, scan, verdict, till, order.id if order else None)
            return verdict, till, order, None
        self._deciding = order
        try:
            verdict = self.token_decider(scan)
        finally:
            self._deciding = None
        online = verdict.verdict == PENDING and hasattr(verdict.token, "wallet")
        if verdict.verdict == REJECTED or (verdict.verdict == PENDING and not online):
            info = describe_token(verdict.token, scan.payload) if verdict.token is not None else {}
            self.orders.record_scan(c, scan, verdict, till, order.id, info.get("token_id"), info.get("payer"))
            return verdict, till, order, None
        info = describe_token(verdict.token, scan.payload)
        mode = self.policy.route(order.amount, order.currency, online)
        body = self._body(scan, order, info, mode)
        final = mode == OFFLINE
        if final:
            out = Verdict(ACCEPTED, "ok", "Paid %s" % format_amount(order.amount, order.currency),
                          token=verdict.token, details={"order": order.id, "payer": info["payer"], "mode": mode})
        else:
            reason = "online_verification" if online else "awaiting_backend"
            out = Verdict(PENDING, reason, TEXTS[reason], token=verdict.token,
                          details={"order": order.id, "payer": info["payer"], "mode": mode})
        body["verdict"], body["reason"] = out.verdict, out.reason
        entry = self.outbox.enqueue(c, KIND_FOR_MODE[mode], info["key"], body, order.id)
        updated = self.orders.mark(c, order, COMPLETED if final else AUTHORIZING, scan=scan,
                                   payer=info["payer"], token_id=info["token_id"], kid=info["kid"],
                                   mode=mode, reason=out.reason, outbox_id=entry)
        self.orders.record_scan(c, scan, out, till, order.id, info["token_id"], info["payer"])
        out.details["outbox_id"] = entry
        return out, till, updated, ("completed" if final else "authorizing", updated)

    def _body(self, scan: ScanEvent, order: Order, info: dict, mode: str) -> dict:
        body = {"version": 1, "type": KIND_FOR_MODE[mode], "confirmation_id": info["key"], "mode": mode,
                "order_id": order.id, "till": order.till, "amount": order.amount, "currency": order.currency,
                "reference": order.reference, "token_id": info["token_id"], "kid": info["kid"],
                "payer": info["payer"], "scanner": scan.device_id, "link": scan.link, "scan_seq": scan.seq,
                "scanned_at": round(scan.received_at, 3), "decided_at": round(self.clock(), 3)}
        for k in ("issued_at", "expires_at", "amount_cap", "cap_currency", "wallet", "code"):
            if k in info:
                body[k] = info[k]
        return body

    # -- the backend's answer (runs inside the outbox worker's transaction)
    def _apply_answer(self, conn, row, answer: Optional[dict], state: str):
        kind = row["kind"]
        if kind == outbox_mod.CONFIRMATION:
            return None
        body = json.loads(row["body"])
        order_row = conn.execute("SELECT * FROM orders WHERE id=?", (body["order_id"],)).fetchone()
        if order_row is None or order_row["state"] != AUTHORIZING:
            return None  # the order moved on (see docs/integration.md, "late answers")
        approved = state == outbox_mod.DELIVERED and isinstance(answer, dict) and answer.get("status") == "approved"
        now = self.clock()
        if approved:
            conn.execute("UPDATE orders SET state=?, closed_at=?, reason=? WHERE id=?",
                         (COMPLETED, now, "approved", body["order_id"]))
            verdict = Verdict(ACCEPTED, "approved", "Paid %s" % format_amount(body["amount"], body["currency"]),
                              details={"order": body["order_id"], "payer": body.get("payer"), "mode": body["mode"]})
        else:
            reason = "declined" if state == outbox_mod.DELIVERED else "backend_unavailable"
            why = (answer or {}).get("reason") if isinstance(answer, dict) else None
            conn.execute("UPDATE orders SET state=?, reason=?, expires_at=?, device=NULL, payer=NULL, "
                         "token_id=NULL, kid=NULL, mode=NULL, outbox_id=NULL WHERE id=?",
                         (OPEN, reason, now + self.orders.ttl_s, body["order_id"]))
            verdict = Verdict(REJECTED, reason, TEXTS[reason], details={"order": body["order_id"], "why": why,
                                                                         "payer": body.get("payer")})
        scan = ScanEvent(device_id=body["scanner"], link=body.get("link", ""), seq=int(body.get("scan_seq", 0)),
                         payload=b"", received_at=body.get("scanned_at", now))

        def after():
            order = self.orders.get(body["order_id"])
            if order is not None:
                self.orders.emit("completed" if approved else "reopened", order)
            self._emit_scan(scan, verdict, body["till"], order)
            if self.service is not None:
                self.service.update(scan, verdict)
        return after

    # -- events for the page
    def _emit_scan(self, scan: ScanEvent, verdict: Verdict, till, order) -> None:
        self._emit("scan", {"device": scan.device_id, "link": scan.link, "seq": scan.seq, "till": till,
                            "order": order.id if order is not None else None, "verdict": verdict.verdict,
                            "reason": verdict.reason, "text": verdict.text,
                            "payer": verdict.details.get("payer") if verdict.details else None,
                            "at": time.time()})

    def _emit(self, kind: str, data: dict) -> None:
        for fn in list(self.listeners):
            fn(kind, data)

    # -- what the page shows
    def snapshot(self, till: Optional[str] = None) -> dict:
        till = till or self.orders.default_till
        cur = self.orders.current(till) if till else None
        return {"till": till, "current": cur.to_dict() if cur else None,
                "orders": [o.to_dict() for o in self.orders.history(till, 30)],
                "outbox": self.outbox.counts(),
                "dead": [summarize_entry(e) for e in self.outbox.list(outbox_mod.DEAD, 20)],
                "offline_limit": self.policy.offline_limit}


def summarize_entry(e: dict) -> dict:
    body = e.get("body") if isinstance(e.get("body"), dict) else {}
    return {"id": e["id"], "kind": e["kind"], "state": e["state"], "attempts": e["attempts"],
            "order_id": e.get("order_id"), "key": e["idem_key"], "last_status": e.get("last_status"),
            "last_error": e.get("last_error"), "amount": body.get("amount"), "currency": body.get("currency"),
            "created_at": e.get("created_at"), "delivered_at": e.get("delivered_at")}


# -- composition for `scanbridge run` / `scanbridge demo` -------------------------------------
def add_counter_arguments(parser) -> None:
    """The counter's options for `scanbridge run` (secrets only from files or the environment)."""
    g = parser.add_argument_group("counter (orders, payment backend, web page)")
    g.add_argument("--no-counter", action="store_true", help="no orders/outbox/web page: verdicts only")
    g.add_argument("--counter-db", default=outbox_mod.DEFAULT_DB, help="orders + outbox SQLite file (%(default)s)")
    g.add_argument("--till", default=orders_mod.DEFAULT_TILL, help="this counter's till (default %(default)s)")
    g.add_argument("--bind", action="append", default=[], metavar="DEVICE=TILL", help="put a scanner on another till")
    g.add_argument("--offline-limit", default="50.00",
                   help="accept offline up to this amount; above it wait for the backend (\"50.00\" or \"USD=50,EUR=40\")")
    g.add_argument("--order-ttl", type=float, default=orders_mod.DEFAULT_TTL_S, help="an open order expires after s")
    g.add_argument("--backend", help="payment backend base URL (confirmations wait in the outbox until given)")
    g.add_argument("--secret-file", help="HMAC secret for the backend (else $%s)" % outbox_mod.SECRET_ENV)
    g.add_argument("--no-web", action="store_true", help="do not serve the counter page")
    g.add_argument("--web-host", default="127.0.0.1", help="counter page address (default %(default)s)")
    g.add_argument("--web-port", type=int, default=8080)
    g.add_argument("--web-token-file", help="token for the page (required off loopback; else $SCANBRIDGE_WEB_TOKEN)")


class CounterRuntime:
    """What start_counter built: the counter, the scanner registry, the web page."""

    def __init__(self, counter: Counter, registry, web):
        self.counter = counter
        self.registry = registry
        self.web = web

    def link_event(self, kind: str, data: dict) -> None:
        """Chain into the serial links' on_event (scanner status for the page)."""
        self.registry.on_link_event(kind, data)

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.counter.stop()


def start_counter(args, service: ScanService, token_decider=None, log=None, trust_store=None,
                  ledger=None) -> CounterRuntime:
    """Build and start the counter around `service`: its current decider (token verification, if
    configured) becomes the counter's token decider; the counter becomes the service's decider.
    Given `trust_store`, the counter verifies codes itself with `ledger`, or by default with the
    CounterLedger in its own file (one disk sync per scan; use Redis/PostgreSQL for several PCs)."""
    import os
    import sys
    from scanbridge.web.registry import ScannerRegistry
    from scanbridge.web.server import CounterWeb
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    counter = Counter(args.counter_db, token_decider=token_decider or service.decide,
                      policy=Policy.from_args(args.offline_limit), default_till=args.till,
                      order_ttl_s=args.order_ttl)
    if trust_store is not None:
        counter.with_tokens(trust_store, ledger)
    dec = counter.token_decider  # a Verifier (make_decider) or a bound method of one
    verifier = dec if hasattr(dec, "amount_for") else getattr(dec, "__self__", None)
    if verifier is not None and hasattr(verifier, "amount_for") and verifier.amount_for is None:
        verifier.amount_for = counter.amount_for  # the code's amount cap is checked against the order
    for spec in args.bind:
        device, sep, till = spec.partition("=")
        if not sep or not device or not till:
            raise SystemExit("--bind wants DEVICE=TILL, not %r" % spec)
        counter.orders.bind(device, till)
    counter.attach(service)
    registry = ScannerRegistry()
    service.add_listener(registry.on_scan)
    counter.start()
    if args.backend:
        try:
            counter.start_delivery(args.backend, outbox_mod.read_secret(args.secret_file))
        except OutboxError as e:
            counter.stop()
            raise SystemExit("scanbridge run: %s" % e)
        log("counter: confirmations go to %s" % args.backend)
    else:
        log("counter: no --backend: confirmations wait in %s (scanbridge outbox list)" % args.counter_db)
    web = None
    if not args.no_web:
        token = None
        if args.web_token_file:
            with open(args.web_token_file) as f:
                token = f.read().strip() or None
        else:
            token = os.environ.get("SCANBRIDGE_WEB_TOKEN") or None
        from scanbridge.web.server import WebConfigError
        try:
            web = CounterWeb(counter, registry, host=args.web_host, port=args.web_port, token=token).start()
        except (WebConfigError, OSError) as e:
            counter.stop()
            raise SystemExit("scanbridge run: counter page: %s" % e)
        log("counter: page at %s%s" % (web.url, " (token required)" if token else ""))
    return CounterRuntime(counter, registry, web)
