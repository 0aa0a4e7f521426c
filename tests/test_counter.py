"""The counter's decision over real parts: minted tokens, the trust store, the SQLite ledger,
orders and the outbox in one SQLite file, the reference backend on loopback."""
import sqlite3
import threading
import time

import pytest

from scanbridge.counter import Counter
from scanbridge.ledger import open_ledger
from scanbridge.orders import OrderError
from scanbridge.policy import Policy
from scanbridge.scan import ScanEvent, ScanService
from scanbridge.tokens import TrustStore
from scanbridge_tools.backend import BackendServer
from scanbridge_tools.mint import Issuer, online_code

SECRET = b"counter-secret"


class Scanner:
    """Stands for a link: scans go to the service, every RESULT (first and later) is kept."""

    def __init__(self, service, device="scanner-A"):
        self.service = service
        self.device = device
        self.seq = 0
        self.results = []
        self.cond = threading.Condition()
        service.attach_device(device, self._send)

    def _send(self, scan, verdict):
        with self.cond:
            self.results.append((scan.seq, verdict))
            self.cond.notify_all()

    def scan(self, payload):
        self.seq += 1
        ev = ScanEvent(self.device, "test", self.seq, payload)
        v = self.service.handle(ev)
        self._send(ev, v)
        return v

    def final(self, seq, timeout=10):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for s, v in self.results:
                    if s == seq and v.verdict != "pending":
                        return v
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


@pytest.fixture(params=["counter-db", "sqlite-file"])
def world(tmp_path, request):
    """Both ledgers: the claim inside the counter's transaction, and a separate SQLite ledger."""
    issuer = Issuer.generate()
    now = time.time()
    trust = TrustStore([issuer.trusted_key(now - 3600, now + 3600)])
    ledger = open_ledger("sqlite:" + str(tmp_path / "ledger.db")) if request.param == "sqlite-file" else None
    counter = Counter(str(tmp_path / "counter.db"), policy=Policy(offline_limit=5000)).with_tokens(trust, ledger)
    service = counter.attach(ScanService())
    backend = BackendServer(str(tmp_path / "backend.db"), SECRET, control=True, approve_up_to=20000).start()
    counter.start_delivery(backend.url, SECRET, base_delay_s=0.05, max_delay_s=0.2)
    yield counter, service, issuer, backend
    counter.stop()
    backend.stop()
    counter.ledger.close()


def rows(counter, sql, args=()):
    return [dict(r) for r in counter.db.query(sql, args)]


def test_no_open_order_is_reported_recorded_and_does_not_use_up_the_code(world):
    counter, service, issuer, _ = world
    sc = Scanner(service)
    code = issuer.mint(payer=b"alice")
    v = sc.scan(code)
    assert (v.verdict, v.reason) == ("rejected", "no_open_order")
    rec = rows(counter, "SELECT * FROM scans")
    assert len(rec) == 1 and rec[0]["reason"] == "no_open_order" and rec[0]["device"] == "scanner-A"
    order = counter.orders.create("12.30", "USD", reference="R-1")
    v = sc.scan(code)  # the same code, now that there is an order: still good
    assert (v.verdict, v.reason) == ("accepted", "ok") and v.details["payer"] == "alice"
    o = counter.orders.get(order.id)
    assert o.state == "completed" and o.payer == "alice" and o.mode == "offline" and o.device == "scanner-A"


def test_offline_accept_completes_order_and_queues_confirmation_in_one_go(world):
    counter, service, issuer, backend = world
    sc = Scanner(service)
    order = counter.orders.create(1230, "USD")
    tok = issuer.mint(payer=b"bob", amount_cap=2000, currency="USD")
    assert sc.scan(tok).verdict == "accepted"
    o = counter.orders.get(order.id)
    e = counter.outbox.get(o.outbox_id)
    assert e["order_id"] == order.id and e["kind"] == "confirmation"
    b = e["body"]
    assert (b["amount"], b["currency"], b["payer"], b["scanner"], b["till"]) == (1230, "USD", "bob", "scanner-A", "till-1")
    assert b["token_id"] == e["idem_key"] and len(b["token_id"]) == 24 and b["kid"] == issuer.kid.hex()
    assert b["verdict"] == "accepted" and b["amount_cap"] == 2000
    for _ in range(200):
        if counter.outbox.get(o.outbox_id)["state"] == "delivered":
            break
        time.sleep(0.02)
    assert backend.backend.stats()["records"] == 1
    # the same code again, on the next order: replayed, the order stays open
    order2 = counter.orders.create(500, "USD")
    v = sc.scan(tok)
    assert (v.verdict, v.reason) == ("rejected", "replayed")
    assert counter.orders.get(order2.id).state == "open"


def test_refused_codes_leave_the_order_open(world):
    counter, service, issuer, _ = world
    sc = Scanner(service)
    order = counter.orders.create(3000, "USD")
    v = sc.scan(issuer.mint(payer=b"carol", amount_cap=2000, currency="USD"))
    assert (v.verdict, v.reason) == ("rejected", "over_amount_cap")
    v = sc.scan(Issuer.generate().mint(payer=b"eve"))
    assert (v.verdict, v.reason) == ("rejected", "unknown_key")
    v = sc.scan(b"hello")
    assert v.reason == "malformed"
    assert counter.orders.get(order.id).state == "open"
    assert [r["reason"] for r in rows(counter, "SELECT reason FROM scans ORDER BY id")] == \
        ["over_amount_cap", "unknown_key", "malformed"]
    assert counter.outbox.counts()["pending"] + counter.outbox.counts()["delivered"] == 0


def test_above_the_offline_limit_pending_first_then_green_after_the_backend(world):
    counter, service, issuer, backend = world
    sc = Scanner(service)
    order = counter.orders.create("120.00", "USD")  # limit 50.00
    v = sc.scan(issuer.mint(payer=b"dave"))
    assert (v.verdict, v.reason) == ("pending", "awaiting_backend")
    final = sc.final(sc.seq)
    assert final is not None and (final.verdict, final.reason) == ("accepted", "approved")
    o = counter.orders.get(order.id)
    assert o.state == "completed" and o.mode == "authorize" and o.payer == "dave"
    rec = backend.backend.records()
    assert rec[0]["kind"] == "authorization" and rec[0]["answer"]["status"] == "approved"


def test_backend_decline_reopens_the_order(world):
    counter, service, issuer, backend = world
    sc = Scanner(service)
    backend.backend.apply_control({"fail_status": 503})  # the answer waits until the cancel was tried
    order = counter.orders.create("300.00", "USD")  # backend approves up to 200.00
    assert sc.scan(issuer.mint(payer=b"frank")).verdict == "pending"
    assert counter.orders.get(order.id).state == "authorizing"
    with pytest.raises(OrderError) as e:
        counter.orders.cancel(order.id)
    assert e.value.reason == "order_authorizing"
    backend.backend.apply_control({"fail_status": 0})  # back: the retried delivery gets its "declined"
    final = sc.final(sc.seq)
    assert (final.verdict, final.reason) == ("rejected", "declined")
    assert final.details["why"] == "over_limit"
    o = counter.orders.get(order.id)
    assert o.state == "open" and o.reason == "declined"
    counter.orders.cancel(order.id)


def test_online_wallet_codes_go_to_the_acquirer(world):
    counter, service, issuer, backend = world
    sc = Scanner(service)
    order = counter.orders.create("5.00", "USD")  # under the offline limit: still online
    code = online_code("alipay")
    code = code[:-1] + b"1"
    v = sc.scan(code)
    assert (v.verdict, v.reason) == ("pending", "online_verification")
    final = sc.final(sc.seq)
    assert (final.verdict, final.reason) == ("accepted", "approved")
    o = counter.orders.get(order.id)
    assert o.state == "completed" and o.mode == "online" and o.payer.startswith("alipay ")
    assert code.decode() not in o.payer  # masked on screen
    rec = [r for r in backend.backend.records() if r["kind"] == "acquirer"]
    assert rec[0]["body"]["code"] == code.decode() and rec[0]["body"]["wallet"] == "alipay"
    order = counter.orders.create("5.00", "USD")
    v = sc.scan(online_code("wechat")[:-1] + b"9")
    final = sc.final(sc.seq)
    assert (final.verdict, final.reason) == ("rejected", "declined") and final.details["why"] == "insufficient_funds"


def test_tills_timeouts_cancel(tmp_path):
    clock = [1000.0]
    counter = Counter(str(tmp_path / "c.db"), order_ttl_s=60, clock=lambda: clock[0])
    service = counter.attach(ScanService())
    counter.orders.bind("scanner-B", "till-2")
    a, b = Scanner(service, "scanner-A"), Scanner(service, "scanner-B")
    o1 = counter.orders.create(100, "EUR")
    with pytest.raises(OrderError) as e:
        counter.orders.create(200, "EUR")
    assert e.value.reason == "till_busy"
    assert b.scan(b"code-1").reason == "no_open_order"  # scanner-B is on till-2
    o2 = counter.orders.create(200, "EUR", till="till-2")
    assert b.scan(b"code-2").verdict == "accepted"
    assert counter.orders.get(o2.id).state == "completed" and counter.orders.get(o1.id).state == "open"
    clock[0] += 61
    assert a.scan(b"code-3").reason == "no_open_order"
    assert counter.orders.get(o1.id).state == "expired"
    o3 = counter.orders.create(300, "EUR")
    assert counter.orders.cancel(o3.id).state == "cancelled"
    with pytest.raises(OrderError):
        counter.orders.cancel(o3.id)
    for bad in ("-1", "abc", "1.234", 0):
        with pytest.raises(OrderError):
            counter.orders.create(bad, "EUR")
    with pytest.raises(OrderError):
        counter.orders.create(100, "euro")
    counter.stop()


def test_completion_and_confirmation_commit_together_or_not_at_all(tmp_path):
    """Without token verification the idempotency key is the payload's digest: a second scan of
    the same payload cannot be queued again, and then the order must not be completed either."""
    counter = Counter(str(tmp_path / "c.db"))
    service = counter.attach(ScanService())
    sc = Scanner(service)
    counter.orders.create(100, "USD")
    assert sc.scan(b"same").verdict == "accepted"
    o2 = counter.orders.create(100, "USD")
    v = sc.scan(b"same")
    assert (v.verdict, v.reason) == ("rejected", "duplicate_confirmation")
    assert counter.orders.get(o2.id).state == "open"
    db = sqlite3.connect(str(tmp_path / "c.db"))
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    counter.stop()


def test_claim_order_and_confirmation_are_one_transaction(tmp_path):
    """With the claim in the counter's file, a code whose confirmation cannot be queued is not
    used up: the claim rolls back with the rest."""
    from scanbridge.outbox import CONFIRMATION
    issuer = Issuer.generate()
    now = time.time()
    counter = Counter(str(tmp_path / "c.db")).with_tokens(TrustStore([issuer.trusted_key(now - 60, now + 60)]))
    service = counter.attach(ScanService())
    sc = Scanner(service)
    tok = issuer.mint(payer=b"gina")
    from scanbridge.tokens import parse
    key = parse(tok).token_id.hex()
    with counter.db.transaction() as c:  # something already queued under this code's key
        counter.outbox.enqueue(c, CONFIRMATION, key, {"confirmation_id": key})
    order = counter.orders.create(100, "USD")
    v = sc.scan(tok)
    assert (v.verdict, v.reason) == ("rejected", "duplicate_confirmation")
    assert rows(counter, "SELECT COUNT(*) AS n FROM claims")[0]["n"] == 0
    assert counter.orders.get(order.id).state == "open"
    with counter.db.transaction() as c:
        c.execute("DELETE FROM outbox WHERE idem_key=?", (key,))
    assert sc.scan(tok).verdict == "accepted"
    assert sc.scan(tok).reason == "no_open_order"
    counter.orders.create(100, "USD")
    assert sc.scan(tok).reason == "replayed"
    counter.stop()


def test_backend_unreachable_for_an_authorization_gives_up_and_reopens(tmp_path):
    issuer = Issuer.generate()
    now = time.time()
    counter = Counter(str(tmp_path / "c.db")).with_tokens(TrustStore([issuer.trusted_key(now - 60, now + 60)]))
    service = counter.attach(ScanService())
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    counter.start_delivery("http://127.0.0.1:%d" % port, SECRET, base_delay_s=0.02, max_delay_s=0.05)
    sc = Scanner(service)
    order = counter.orders.create("99.00", "USD")
    assert sc.scan(issuer.mint(payer=b"hank")).verdict == "pending"
    final = sc.final(sc.seq)
    assert (final.verdict, final.reason) == ("rejected", "backend_unavailable")
    o = counter.orders.get(order.id)
    assert o.state == "open" and o.reason == "backend_unavailable"
    dead = counter.outbox.list("dead")
    assert len(dead) == 1 and dead[0]["attempts"] == 5 and dead[0]["kind"] == "authorization"
    counter.stop()
