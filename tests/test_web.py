"""The counter page: the API and its guards over real HTTP, and the whole flow in headless
Chromium (Playwright): create an order, a virtual scanner (firmware app on a pty, read by the
bridge's serial link) reads a signed code, and the page shows it paid, with the payer."""
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from scanbridge.counter import Counter
from scanbridge.ledger import open_ledger
from scanbridge.scan import ScanEvent, ScanService
from scanbridge.tokens import TrustStore
from scanbridge.web.registry import ScannerRegistry
from scanbridge.web.server import CounterWeb, WebConfigError
from scanbridge_tools.mint import Issuer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def call(url, method="GET", body=None, headers=None):
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


@pytest.fixture
def counter(tmp_path):
    c = Counter(str(tmp_path / "counter.db"))
    yield c
    c.stop()


def test_refuses_to_bind_beyond_loopback_without_a_token(counter):
    with pytest.raises(WebConfigError) as e:
        CounterWeb(counter, host="0.0.0.0", port=0)
    assert e.value.reason == "web_token_required"


def test_token_is_required_on_every_request_when_configured(counter):
    web = CounterWeb(counter, ScannerRegistry(), port=0, token="s3cret-token").start()
    try:
        base = "http://127.0.0.1:%d" % web.port
        for path in ("/", "/api/state", "/app.js"):
            assert call(base + path)[0] == 401
        assert call(base + "/api/orders", "POST", {"amount": "1.00"})[0] == 401
        assert call(base + "/api/state", headers={"Authorization": "Bearer wrong"})[0] == 401
        st, doc, _ = call(base + "/api/state", headers={"Authorization": "Bearer s3cret-token"})
        assert st == 200 and doc["till"] == "till-1"
        req = urllib.request.urlopen(base + "/?token=s3cret-token", timeout=5)
        cookie = req.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        st, doc, _ = call(base + "/api/state", headers={"Cookie": cookie.split(";")[0]})
        assert st == 200
    finally:
        web.stop()


def test_api_orders_guards_and_live_events(counter):
    registry = ScannerRegistry()
    service = counter.attach(ScanService())
    service.add_listener(registry.on_scan)
    web = CounterWeb(counter, registry, port=0).start()
    base = "http://127.0.0.1:%d" % web.port
    try:
        assert call(base + "/api/state", headers={"Host": "evil.example:%d" % web.port})[0] == 421
        req = urllib.request.Request(base + "/api/orders", data=b"amount=1", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        assert e.value.code == 415
        assert call(base + "/api/orders", "POST", {"amount": "abc"})[1]["error"] == "bad_amount"
        events = urllib.request.urlopen(base + "/api/events", timeout=5)
        assert events.readline().startswith(b"retry:")
        st, order, _ = call(base + "/api/orders", "POST", {"amount": "7.5", "currency": "EUR", "reference": "T9"})
        assert st == 201 and order["amount"] == 750 and order["state"] == "open"
        assert call(base + "/api/orders", "POST", {"amount": "1"})[1]["error"] == "till_busy"
        service.handle(ScanEvent("scanner-X", "test", 1, b"any code", decode_ms=42))
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not {"scan", "scanner"} <= {k for k, _ in seen}:
            line = events.readline().decode().strip()
            if line.startswith("event: "):
                kind = line[7:]
                data = json.loads(events.readline().decode()[6:])
                seen.append((kind, data))
        kinds = [k for k, _ in seen]
        assert "order" in kinds and "scan" in kinds and "scanner" in kinds
        scan = [d for k, d in seen if k == "scan"][0]
        assert scan["verdict"] == "accepted" and scan["order"] == order["id"]
        events.close()
        st, doc, _ = call(base + "/api/state")
        assert doc["orders"][0]["state"] == "completed"
        assert doc["scanners"][0]["device"] == "scanner-X" and doc["scanners"][0]["last_decode_ms"] == 42
        assert doc["outbox"]["pending"] == 1
        assert call(base + "/api/orders/%s/cancel" % order["id"], "POST", {})[1]["error"] == "order_closed"
        assert call(base + "/../../etc/passwd")[0] == 404
        entry = counter.outbox.list()[0]
        assert call(base + "/api/outbox/%d/retry" % entry["id"], "POST", {})[:2] == (409, {"retried": False})
        with counter.db.transaction() as c:  # as if the backend had refused it for good
            c.execute("UPDATE outbox SET state='dead', last_error='HTTP 401' WHERE id=?", (entry["id"],))
        st, doc, _ = call(base + "/api/state")
        assert doc["outbox"]["dead"] == 1 and doc["dead"][0]["last_error"] == "HTTP 401"
        assert call(base + "/api/outbox/%d/retry" % entry["id"], "POST", {})[:2] == (200, {"retried": True})
        assert counter.outbox.get(entry["id"])["state"] == "pending"
    finally:
        web.stop()


def test_registry_rates_from_status_and_presence():
    t = [100.0]
    reg = ScannerRegistry(clock=lambda: t[0])
    reg.on_link_event("hello", {"device": "d1", "port": "/dev/pts/9", "hello": {"fw": "0.1", "board": "ai-thinker"}})
    reg.on_link_event("status", {"device": "d1", "status": {"uptime_ms": 10000, "frames": 100, "scans": 2}})
    reg.on_link_event("status", {"device": "d1", "status": {"uptime_ms": 20000, "frames": 180, "scans": 4}})
    d = reg.get("d1")
    assert d["online"] and d["frames_per_s"] == 8.0 and d["decode_rate"] == 12.0 and d["board"] == "ai-thinker"
    reg.on_link_event("disconnected", {"port": "/dev/pts/9", "reason": "gone"})
    assert not reg.get("d1")["online"]
    reg.on_presence("m1", {"online": True, "site": "shop", "last_seen": 100.0, "status": {"online": True}})
    assert reg.get("m1")["online"] and reg.get("m1")["link"] == "mqtt:shop/m1"
    t[0] += 120
    assert not reg.get("m1")["online"] and reg.get("m1")["silent"]


@pytest.mark.timeout(120)
def test_counter_page_in_chromium_with_a_virtual_scanner(tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    from scanbridge.link.serial import SerialLink
    from scanbridge_tools.virtual_scanner.frames import QueuedStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

    issuer = Issuer.generate()
    now = time.time()
    ledger = open_ledger("sqlite:" + str(tmp_path / "ledger.db"))
    counter = Counter(str(tmp_path / "counter.db")).with_tokens(
        TrustStore([issuer.trusted_key(now - 3600, now + 3600)]), ledger)
    registry = ScannerRegistry()
    service = counter.attach(ScanService())
    service.add_listener(registry.on_scan)
    web = CounterWeb(counter, registry, port=0).start()
    frames = QueuedStream()
    scanner = VirtualScanner(frames, fps=15).start()
    link = SerialLink(scanner.path, service, on_event=registry.on_link_event).start()
    try:
        assert link.wait_ready(10)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone-sized screen
            page.goto(web.url)
            page.wait_for_selector("#conn.on")
            page.wait_for_selector("li[data-device='%s']" % scanner.device_id)
            page.fill("#amount", "12.30")
            page.click("#charge-btn")
            page.wait_for_selector("#status.waiting")
            assert page.inner_text("#status-title") == "Waiting for scan"
            assert "12.30 USD" in page.inner_text("#status-amount")
            frames.show(issuer.mint(payer=b"alice@demo"))
            page.wait_for_selector("#status.accepted", timeout=30000)
            assert page.inner_text("#status-title") == "Paid"
            assert "alice@demo" in page.inner_text("#status-detail")
            page.wait_for_selector("#orders tbody td.completed")
            row = page.inner_text("#orders tbody tr")
            assert "12.30 USD" in row and "completed" in row and "alice@demo" in row
            assert "online" in page.inner_text("li[data-device='%s']" % scanner.device_id)
            page.wait_for_function("document.getElementById('outbox-counts').textContent.includes('waiting 1')")
            page.screenshot(path=str(tmp_path / "counter.png"), full_page=True)
            print("screenshot:", tmp_path / "counter.png")
            browser.close()
        order = counter.orders.history()[0]
        assert order.state == "completed" and order.payer == "alice@demo" and order.device == scanner.device_id
    finally:
        link.stop()
        scanner.stop()
        web.stop()
        counter.stop()
        ledger.close()
