"""The wallet simulator: keys stay private (0600), codes are minted with the bridge's own format
module, render as PNG/terminal/web page, and the demo set gets the verdicts it promises."""
import json
import os
import shutil
import threading
import time
import urllib.request

import pytest

from scanbridge.cli import main as cli
from scanbridge.ledger.sqlite import SQLiteLedger
from scanbridge.scan import ScanEvent, ScanService
from scanbridge.tokens import format as fmt
from scanbridge.tokens.trust import TrustStore
from scanbridge.tokens.verify import Verifier, make_decider
import scanbridge_tools.mint as mint


def _keygen(tmp_path, capsys, alg="ed25519"):
    assert cli(["mint", "keygen", "--dir", str(tmp_path), "--alg", alg]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_keygen_private_key_is_0600_and_entry_is_public(tmp_path, capsys):
    info = _keygen(tmp_path, capsys)
    assert oct(os.stat(info["private_key"]).st_mode & 0o777) == "0o600"
    entry = open(info["trust_entry"]).read()
    assert "PRIVATE" not in entry and "BEGIN PUBLIC KEY" in entry
    store = TrustStore.load(info["trust_entry"])
    assert store.get(bytes.fromhex(info["kid"])) is not None
    with pytest.raises(FileExistsError):  # never overwrites a key
        mint.Issuer.load(info["private_key"]).save(info["private_key"])


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_token_cli_png_decodes_and_verifies(tmp_path, capsys, alg):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image
    info = _keygen(tmp_path, capsys, alg)
    png = str(tmp_path / "code.png")
    assert cli(["mint", "token", "--key", info["private_key"], "--amount", "12.5", "--payer", "hex:00ff10",
                "--lifetime", "90", "--png", png, "--terminal"]) == 0
    out = capsys.readouterr().out
    assert "\u2588" in out or "\u2580" in out  # the terminal drawing
    meta = json.loads(out.strip().splitlines()[-1])
    assert meta["amount_cap"] == 1250 and meta["payer"] == "00ff10" and meta["qr_version"] <= 6
    payload = zxingcpp.read_barcodes(Image.open(png))[0].bytes
    assert payload.hex() == meta["token_hex"]
    led = SQLiteLedger(":memory:")
    verdict = Verifier(TrustStore.load(info["trust_entry"]), led).check(payload)
    assert verdict.reason == "ok" and verdict.token.lifetime == 90
    led.close()


def test_token_cli_text_form_and_raw_file(tmp_path, capsys):
    info = _keygen(tmp_path, capsys)
    raw = tmp_path / "tok.bin"
    assert cli(["mint", "token", "--key", info["private_key"], "--text", "--raw", str(raw)]) == 0
    capsys.readouterr()
    data = raw.read_bytes()
    assert data.startswith(b"SB1:") and fmt.parse(data).kid.hex() == info["kid"]


def test_sizes_command(capsys):
    assert cli(["mint", "sizes"]) == 0
    out = capsys.readouterr().out
    assert out.count("binary (byte mode)            104 chars  version  6 (41x41)") == 2


def test_mint_uses_the_bridge_format_module(monkeypatch):
    assert mint.fmt is fmt
    calls = []
    real = fmt.build
    monkeypatch.setattr(fmt, "build", lambda *a, **k: calls.append(1) or real(*a, **k))
    mint.Issuer.generate("ed25519").mint()
    assert calls == [1]


def test_wallet_page_serves_fresh_verifiable_codes(tmp_path):
    issuer = mint.Issuer.generate("p256", "Page Wallet")
    server = mint.make_wallet_server(issuer, every_s=5, lifetime=30, amount_cap=900, currency="EUR")
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        html = urllib.request.urlopen(base + "/").read().decode()
        assert "EVERY_MS = 5000" in html
        a = json.loads(urllib.request.urlopen(base + "/next").read())
        b = json.loads(urllib.request.urlopen(base + "/next").read())
        assert a["token_hex"] != b["token_hex"] and a["svg"].startswith("data:image/svg+xml")
        led = SQLiteLedger(":memory:")
        v = Verifier(TrustStore([issuer.trusted_key()]), led)
        for j in (a, b):
            verdict = v.check(bytes.fromhex(j["token_hex"]))
            assert verdict.reason == "ok" and verdict.token.currency == "EUR"
        led.close()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not shutil.which("chromium") and not os.path.exists("/usr/bin/chromium"),
                    reason="no chromium")
def test_wallet_page_refreshes_in_a_real_browser():
    pw = pytest.importorskip("playwright.sync_api")
    issuer = mint.Issuer.generate("ed25519")
    server = mint.make_wallet_server(issuer, every_s=0.5, lifetime=30)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.goto("http://127.0.0.1:%d/" % server.server_address[1])
            page.wait_for_function("document.getElementById('code').dataset.token")
            first = page.get_attribute("#code", "data-token")
            page.wait_for_function("t => document.getElementById('code').dataset.token !== t", arg=first,
                                   timeout=10000)
            second = page.get_attribute("#code", "data-token")
            assert page.evaluate("document.getElementById('code').naturalWidth") > 0
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert first != second
    assert fmt.parse(bytes.fromhex(first)).kid == issuer.kid


def test_demo_payloads_get_their_verdicts():
    demo = mint.demo_payloads(14, seed=7)
    labels = [label for label, _ in demo.payloads]
    assert {"good", "online", "expired", "forged", "tampered", "replayed"} <= set(labels)
    assert labels[-1] == "replayed" and demo.payloads[-1][1] == demo.payloads[0][1]
    assert "PRIVATE" not in demo.trust_store.to_json()
    led = SQLiteLedger(":memory:")
    service = ScanService(make_decider(demo.trust_store, led))
    got = [service.handle(ScanEvent("demo", "virtual", i, p)).reason for i, (_, p) in enumerate(demo.payloads)]
    assert got == demo.expected
    led.close()


def test_demo_minimum_and_online_codes():
    demo = mint.demo_payloads(3)
    assert [label for label, _ in demo.payloads] == ["good", "online", "good", "expired", "good", "forged",
                                                     "good", "tampered", "replayed"]
    for label, payload in demo.payloads:
        if label == "online":
            assert len(payload) == 18 and payload.isdigit()
