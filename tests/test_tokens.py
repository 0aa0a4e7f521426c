"""Token format, QR embedding, and the verifier's fixed order of checks with one reason each."""
import base64
import io
import time

import pytest
import segno

from scanbridge.ledger.sqlite import SQLiteLedger
from scanbridge.scan import ACCEPTED, PENDING, REJECTED, ScanEvent, ScanService
from scanbridge.tokens import format as fmt
from scanbridge.tokens import signing
from scanbridge.tokens.base45 import Base45Error, b45decode, b45encode
from scanbridge.tokens.online import classify_online
from scanbridge.tokens.trust import TrustStore
from scanbridge.tokens.verify import Verifier, make_decider
from scanbridge_tools.mint import Issuer, online_code

NOW = 1_800_000_000


@pytest.fixture(params=["ed25519", "p256"])
def issuer(request):
    return Issuer.generate(request.param, "Test Wallet")


@pytest.fixture
def ledger():
    led = SQLiteLedger(":memory:")
    yield led
    led.close()


def verifier(store, ledger, now=NOW, **kw):
    return Verifier(store, ledger, clock=lambda: now, **kw)


def test_roundtrip_fields(issuer):
    tid = bytes(range(12))
    raw = issuer.mint(payer=b"alice-01", lifetime=90, issued_at=NOW, amount_cap=1234, currency="EUR", token_id=tid)
    tok = fmt.parse(raw)
    assert (tok.version, tok.alg, tok.kid, tok.token_id) == (1, issuer.alg, issuer.kid, tid)
    assert (tok.issued_at, tok.lifetime, tok.expires_at) == (NOW, 90, NOW + 90)
    assert (tok.payer, tok.amount_cap, tok.currency) == (b"alice-01", 1234, "EUR")
    assert len(tok.signature) == 64 and tok.raw == raw and tok.ledger_key == issuer.kid + tid
    assert tok.signing_input() == fmt.DOMAIN + raw[:-64]
    assert signing.verify(issuer.public_key, issuer.alg, tok.signature, tok.signing_input())
    # the domain prefix is part of what is signed: the bare body does not verify
    assert not signing.verify(issuer.public_key, issuer.alg, tok.signature, raw[:-64])


def test_layout_sizes(issuer):
    assert len(issuer.mint(issued_at=NOW)) == fmt.MIN_LEN == 89
    assert len(issuer.mint(payer=b"x" * 8, amount_cap=1, currency="USD", issued_at=NOW)) == 104
    assert fmt.MAX_LEN == 128


@pytest.mark.parametrize("payer_len,amount", [(0, False), (8, False), (8, True), (10, True)])
def test_fits_qr_version_6_level_m_in_byte_mode(issuer, payer_len, amount):
    raw = issuer.mint(payer=b"p" * payer_len, amount_cap=999 if amount else None,
                      currency="USD" if amount else None)
    code = segno.make(raw, error="m", boost_error=False, micro=False)
    assert code.mode == "byte" and code.version <= 6 and code.symbol_size(border=0) == (41, 41)


def test_text_forms_cost_versions(issuer):
    raw = issuer.mint(payer=b"p" * 8, amount_cap=999, currency="USD")
    text = fmt.to_text(raw).decode()
    b45 = segno.make(text, error="m", boost_error=False)
    b64 = segno.make(base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), error="m", boost_error=False)
    assert b45.mode == "alphanumeric" and b45.version == 7 and b64.version == 8
    assert fmt.parse(text.encode()).raw == raw  # the parser takes the text form too


def test_png_decodes_to_the_exact_bytes(issuer, tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image
    from scanbridge_tools.mint import to_png
    raw = issuer.mint(payer=b"\x00\xff\x80binary", amount_cap=5, currency="USD")
    to_png(raw, str(tmp_path / "c.png"), scale=4)
    results = zxingcpp.read_barcodes(Image.open(tmp_path / "c.png"))
    assert len(results) == 1 and results[0].bytes == raw


def test_base45_rfc9285_vectors():
    for data, text in ((b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
                       (b"ietf!", "QED8WEX0"), (b"", "")):
        assert b45encode(data) == text and b45decode(text) == data
    for bad in ("GGW", "A", "abc", "ZZZ"):
        with pytest.raises(Base45Error):
            b45decode(bad)


def test_build_refuses_bad_fields(issuer):
    for kw in ({"lifetime": 0}, {"lifetime": 70000}, {"payer": b"x" * 33},
               {"amount_cap": 5, "currency": "usd"}, {"amount_cap": 5, "currency": None}):
        with pytest.raises(ValueError):
            issuer.mint(**kw)


# -- online wallet codes ---------------------------------------------------------------------
@pytest.mark.parametrize("code,wallet", [(b"281234567890123456", "alipay"), (b"250000000000000000", "alipay"),
                                         (b"301234567890123456", "alipay"), (b"101234567890123456", "wechat"),
                                         (b"151234567890123456", "wechat"), (b"134567890123456789\r\n", "wechat")])
def test_online_codes_are_classified(code, wallet):
    oc = classify_online(code)
    assert oc is not None and oc.wallet == wallet and oc.kind == "online"
    assert "*" in oc.masked and oc.masked[:4] == code[:4].decode()


@pytest.mark.parametrize("code", [b"201234567890123456", b"161234567890123456", b"31123456789012345",
                                  b"2812345678901234567", b"28123456789012345a", b""])
def test_not_online_codes(code):
    assert classify_online(code) is None


def test_online_code_goes_pending_once_then_replayed(ledger):
    v = verifier(TrustStore(), ledger)
    code = online_code("alipay")
    first = v.check(code)
    assert (first.verdict, first.reason) == (PENDING, "online_verification")
    assert first.token.wallet == "alipay" and first.details["kind"] == "online"
    assert v.check(code).reason == "replayed"
    wechat = v.check(online_code("wechat"))
    assert wechat.verdict == PENDING and wechat.token.wallet == "wechat"


# -- the order of checks ---------------------------------------------------------------------
def store_for(*issuers, **kw):
    return TrustStore([i.trusted_key(kw.get("not_before"), kw.get("not_after")) for i in issuers])


def test_accept_then_replayed(issuer, ledger):
    v = verifier(store_for(issuer), ledger)
    raw = issuer.mint(issued_at=NOW - 10, lifetime=60, amount_cap=2500, currency="USD")
    ok = v.check(raw)
    assert (ok.verdict, ok.reason) == (ACCEPTED, "ok") and ok.token.raw == raw and "25.00 USD" in ok.text
    again = v.check(raw)
    assert (again.verdict, again.reason) == (REJECTED, "replayed") and again.text


@pytest.mark.parametrize("payload", [b"", b"hello", b"\x11", b"\x21" + b"\x00" * 120, b"\x13" + b"\x00" * 100,
                                     b"SB1:!!!", b"SB1:", b"\x11\x80" + b"\x00" * 100])
def test_malformed(payload, ledger, issuer):
    r = verifier(store_for(issuer), ledger).check(payload)
    assert (r.verdict, r.reason) == (REJECTED, "malformed") and r.details["error"]


def test_truncated_and_extended_are_malformed(issuer, ledger):
    raw = issuer.mint(issued_at=NOW)
    v = verifier(store_for(issuer), ledger)
    assert v.check(raw[:-1]).reason == "malformed"
    assert v.check(raw + b"\x00").reason == "malformed"


def test_unknown_key(issuer, ledger):
    stranger = Issuer.generate("ed25519")
    r = verifier(store_for(issuer), ledger).check(stranger.mint(issued_at=NOW))
    assert r.reason == "unknown_key" and r.details["kid"] == stranger.kid.hex()


def test_bad_signature_bitflip_impostor_and_alg_confusion(issuer, ledger):
    v = verifier(store_for(issuer), ledger)
    raw = bytearray(issuer.mint(payer=b"bob", issued_at=NOW))
    raw[fmt._HEAD.size] ^= 0x01  # a payer bit
    assert v.check(bytes(raw)).reason == "bad_signature"
    sig_flip = bytearray(issuer.mint(issued_at=NOW))
    sig_flip[-5] ^= 0x40
    assert v.check(bytes(sig_flip)).reason == "bad_signature"
    impostor = Issuer(signing.generate_private_key(issuer.alg), kid=issuer.kid)
    assert v.check(impostor.mint(issued_at=NOW)).reason == "bad_signature"
    other_alg = fmt.ALG_ES256 if issuer.alg == fmt.ALG_ED25519 else fmt.ALG_ED25519
    confused = Issuer(signing.generate_private_key(other_alg), kid=issuer.kid)
    r = v.check(confused.mint(issued_at=NOW))
    assert r.reason == "bad_signature" and "algorithm" in r.details["error"]


def test_revoked_comes_after_signature(issuer, ledger):
    store = store_for(issuer)
    store.revoke(issuer.kid, reason="phone stolen")
    v = verifier(store, ledger)
    assert v.check(issuer.mint(issued_at=NOW)).reason == "revoked"
    impostor = Issuer(signing.generate_private_key(issuer.alg), kid=issuer.kid)
    assert v.check(impostor.mint(issued_at=NOW)).reason == "bad_signature"  # forged: says so first


def test_clock_checks_with_skew(issuer, ledger):
    v = verifier(store_for(issuer), ledger, skew_s=30)
    assert v.check(issuer.mint(issued_at=NOW + 31)).reason == "not_yet_valid"
    assert v.check(issuer.mint(issued_at=NOW + 30)).reason == "ok"  # within the skew allowance
    assert v.check(issuer.mint(issued_at=NOW - 100, lifetime=69)).reason == "expired"
    assert v.check(issuer.mint(issued_at=NOW - 100, lifetime=70)).reason == "ok"  # expired 30 s ago: skew
    strict = verifier(store_for(issuer), ledger, skew_s=0)
    assert strict.check(issuer.mint(issued_at=NOW - 100, lifetime=99)).reason == "expired"
    assert strict.check(issuer.mint(issued_at=NOW + 1)).reason == "not_yet_valid"


def test_order_expired_before_over_cap_before_replayed(issuer, ledger):
    v = verifier(store_for(issuer), ledger, amount_for=lambda scan: (6000, "USD"))
    expired_big = issuer.mint(issued_at=NOW - 1000, lifetime=60, amount_cap=5000, currency="USD")
    assert v.check(expired_big, (6000, "USD")).reason == "expired"
    capped = issuer.mint(issued_at=NOW, amount_cap=5000, currency="USD")
    assert v.check(capped, (6000, "USD")).reason == "over_amount_cap"
    assert v.check(capped, (5000, "EUR")).reason == "over_amount_cap"
    # refused for the amount, the code was not used up: the right amount still goes through
    assert v.check(capped, (5000, "USD")).reason == "ok"
    assert v.check(capped, (100, "USD")).reason == "replayed"


def test_key_validity_window_and_rotation(ledger):
    old, new = Issuer.generate("ed25519", "W"), Issuer.generate("p256", "W")
    store = TrustStore([old.trusted_key(NOW - 1000, NOW - 100), new.trusted_key(NOW - 500, NOW + 1000)])
    v = verifier(store, ledger, skew_s=0)
    # overlap: a code the old key signed before it was retired is still good while it lives
    assert v.check(old.mint(issued_at=NOW - 150, lifetime=600)).reason == "ok"
    assert v.check(new.mint(issued_at=NOW)).reason == "ok"
    r = v.check(old.mint(issued_at=NOW - 50, lifetime=600))  # signed after the old key's window
    assert r.reason == "expired" and "window" in r.details["error"]
    r = v.check(new.mint(issued_at=NOW - 600, lifetime=1000))  # before the new key's window
    assert r.reason == "not_yet_valid" and "window" in r.details["error"]


def test_ledger_down_fails_closed(issuer):
    led = SQLiteLedger(":memory:")
    led.close()
    r = verifier(store_for(issuer), led).check(issuer.mint(issued_at=NOW))
    assert (r.verdict, r.reason) == (REJECTED, "ledger_unavailable")
    assert verifier(store_for(issuer), None).check(issuer.mint(issued_at=NOW)).reason == "ledger_unavailable"


def test_make_decider_in_scan_service(issuer, ledger):
    service = ScanService(make_decider(store_for(issuer), ledger, skew_s=5, clock=lambda: NOW))
    seen = []
    service.add_listener(lambda scan, verdict: seen.append(verdict.reason))
    raw = issuer.mint(issued_at=NOW)
    v1 = service.handle(ScanEvent("dev1", "virtual", 1, raw))
    v2 = service.handle(ScanEvent("dev2", "virtual", 7, raw))
    v3 = service.handle(ScanEvent("dev1", "virtual", 2, b"junk"))
    assert (v1.verdict, v2.reason, v3.reason) == (ACCEPTED, "replayed", "malformed")
    assert seen == ["ok", "replayed", "malformed"] and v1.token.kid == issuer.kid


def test_check_stream_matches_check_many(issuer, tmp_path):
    led = SQLiteLedger(str(tmp_path / "l.db"))
    v = verifier(store_for(issuer), led)
    toks = [issuer.mint(issued_at=NOW) for _ in range(150)]
    payloads = toks + [toks[3], b"junk", toks[149]]
    reasons = [r.reason for r in v.check_stream(payloads, batch=16)]
    assert reasons == ["ok"] * 150 + ["replayed", "malformed", "replayed"]
    led.close()


def test_every_failure_has_a_reason_text():
    from scanbridge.tokens.verify import REASONS, TEXTS
    assert REASONS == ("malformed", "unknown_key", "bad_signature", "revoked", "not_yet_valid", "expired",
                       "over_amount_cap", "replayed")
    assert all(TEXTS[r] for r in REASONS)
