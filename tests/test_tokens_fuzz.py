"""Hostile input for the token parser and verifier (hypothesis): random bytes, truncations, bit
flips of valid tokens, wrong lengths, huge fields. Never a crash, never an accept, always a reason."""
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanbridge.ledger.sqlite import SQLiteLedger
from scanbridge.scan import ACCEPTED, ScanEvent, ScanService
from scanbridge.tokens import format as fmt
from scanbridge.tokens.trust import TrustStore
from scanbridge.tokens.verify import REASONS, Verifier, make_decider
from scanbridge_tools.mint import Issuer

NOW = 1_800_000_000
ED = Issuer.generate("ed25519")
P256 = Issuer.generate("p256")
STORE = TrustStore([ED.trusted_key(), P256.trusted_key()])
VALID = [ED.mint(payer=b"fuzz-ed", issued_at=NOW, amount_cap=700, currency="USD"),
         P256.mint(payer=b"fuzz-p256", issued_at=NOW), ED.mint(issued_at=NOW)]
LEDGER = SQLiteLedger(":memory:", group_commit=False)
VERIFY = Verifier(STORE, LEDGER, clock=lambda: NOW)
ALLOWED = set(REASONS) | {"online_verification"}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def judge(payload: bytes):
    v = VERIFY.check(payload)
    assert v.verdict != ACCEPTED, "accepted a hostile payload"
    assert v.reason in ALLOWED and v.text
    return v


def parse_or_reason(payload: bytes):
    try:
        fmt.parse(payload)
    except fmt.TokenError as e:
        assert e.reason == "malformed" and e.detail


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    parse_or_reason(data)
    judge(data)


@FUZZ
@given(st.binary(min_size=0, max_size=250).map(lambda b: b"SB1:" + b))
def test_random_text_form(data):
    parse_or_reason(data)
    judge(data)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_truncations(tok, data):
    cut = data.draw(st.integers(0, len(tok) - 1))
    assert judge(tok[:cut]).reason == "malformed"


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_bit_flips(tok, data):
    flips = data.draw(st.lists(st.integers(0, len(tok) * 8 - 1), min_size=1, max_size=6, unique=True))
    raw = bytearray(tok)
    for bit in flips:
        raw[bit // 8] ^= 1 << (bit % 8)
    v = judge(bytes(raw))
    assert v.reason in ("malformed", "unknown_key", "bad_signature")


@FUZZ
@given(st.sampled_from(VALID), st.integers(0, 200), st.binary(min_size=1, max_size=40))
def test_inserted_and_appended_bytes(tok, pos, extra):
    pos = min(pos, len(tok))
    v = judge(tok[:pos] + extra + tok[pos:])
    assert v.reason in ("malformed", "unknown_key", "bad_signature")


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.binary(min_size=4, max_size=4),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), st.integers(0, 255), st.binary(max_size=400))
def test_arbitrary_headers_and_huge_fields(va, flags, kid, issued, lifetime, payer_len, rest):
    data = struct.pack(">BB4s12sIHB", va, flags, kid, b"\x00" * 12, issued, lifetime, payer_len) + rest
    parse_or_reason(data)
    judge(data)


def test_huge_payloads_are_malformed():
    for size in (129, 1000, 100_000, 2_000_000):
        assert judge(b"\x11" * size).reason == "malformed"
    assert judge(b"SB1:" + b"0" * 300_000).reason == "malformed"


def test_valid_signature_wrong_length_fields_rejected():
    """A header that claims a longer payer than is present: malformed, never read past the end."""
    tok = bytearray(VALID[0])
    tok[fmt._HEAD.size - 1] = 32  # payer length byte
    assert judge(bytes(tok)).reason == "malformed"


def test_empty_payload_through_the_service():
    service = ScanService(make_decider(STORE, LEDGER, clock=lambda: NOW))
    v = service.handle(ScanEvent("d", "virtual", 1, b""))
    assert v.reason == "malformed"


def test_the_fuzzed_tokens_still_verify():
    """The seeds are genuinely valid: the flips above are what made them fail."""
    led = SQLiteLedger(":memory:")
    v = Verifier(STORE, led, clock=lambda: NOW)
    assert [v.check(t).reason for t in VALID] == ["ok", "ok", "ok"]
    led.close()
