"""Offline verification of a scanned payment code, in a fixed order with one reason code per failure.

Order (docs/tokens.md, "Verification"): malformed, unknown_key, bad_signature, revoked,
not_yet_valid, expired, over_amount_cap, replayed. The single-use claim comes last so that a code
refused for any other reason is not used up. Online wallet codes (Alipay/WeChat style) are not
checked here: they come back PENDING with reason "online_verification" for the acquirer."""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, Optional, Sequence

from scanbridge.scan import ACCEPTED, PENDING, REJECTED, ScanEvent, Verdict
from scanbridge.tokens import signing
from scanbridge.tokens.format import Token, TokenError, parse
from scanbridge.tokens.online import ONLINE_REASON, OnlineCode, classify_online
from scanbridge.tokens.trust import TrustStore

OK = "ok"
MALFORMED = "malformed"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
REVOKED = "revoked"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
OVER_AMOUNT_CAP = "over_amount_cap"
REPLAYED = "replayed"
LEDGER_UNAVAILABLE = "ledger_unavailable"
ONLINE = ONLINE_REASON

REASONS = (MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE, REVOKED, NOT_YET_VALID, EXPIRED,
           OVER_AMOUNT_CAP, REPLAYED)

TEXTS = {
    OK: "Payment code OK",
    MALFORMED: "Not a payment code",
    UNKNOWN_KEY: "Unknown issuer key",
    BAD_SIGNATURE: "Forged or damaged code",
    REVOKED: "Issuer key revoked",
    NOT_YET_VALID: "Code not valid yet (check clock)",
    EXPIRED: "Code expired",
    OVER_AMOUNT_CAP: "Amount over the code's limit",
    REPLAYED: "Code already used",
    LEDGER_UNAVAILABLE: "Cannot record the code (ledger down)",
    ONLINE: "Wallet code: verifying online",
}

DEFAULT_SKEW_S = 30.0
DEFAULT_ONLINE_TTL_S = 300.0  # an online code is forwarded once; wallets refresh them each minute

# (amount in minor units, currency) the counter is asking for this scan, or None if not known yet
AmountLookup = Callable[[ScanEvent], Optional[tuple]]


def _reject(reason: str, token=None, **details) -> Verdict:
    return Verdict(REJECTED, reason, TEXTS[reason], token=token, details=details)


def _done(started) -> bool:
    handle = started[2]
    return handle is None or getattr(handle, "done", None) is None or handle.done.is_set()


class _Done:
    def __init__(self, result):
        self.result = result

    def wait(self):
        return self.result


class Verifier:
    """Decides on payloads. `ledger` may be None for a check without the single-use claim
    (then no verdict is ever ACCEPTED: "ok" needs the claim)."""

    def __init__(self, trust: TrustStore, ledger=None, *, skew_s: float = DEFAULT_SKEW_S,
                 clock: Callable[[], float] = time.time, amount_for: Optional[AmountLookup] = None,
                 online_ttl_s: float = DEFAULT_ONLINE_TTL_S):
        if skew_s < 0:
            raise ValueError("skew_s must be >= 0")
        self.trust = trust
        self.ledger = ledger
        self.skew_s = float(skew_s)
        self.clock = clock
        self.amount_for = amount_for
        self.online_ttl_s = online_ttl_s

    # -- the checks before the ledger -------------------------------------------------------
    def precheck(self, payload: bytes, now: float, amount: Optional[tuple] = None):
        """(verdict-or-None, token-or-online-code, ledger expiry). A verdict means decided without
        the ledger; None means "claim it" (then the caller claims and decides)."""
        online = classify_online(payload) if payload[:1].isdigit() else None
        if online is not None:
            return None, online, now + self.online_ttl_s
        try:
            tok = parse(payload)
        except TokenError as e:
            return _reject(MALFORMED, error=e.detail), None, 0.0
        self.trust.maybe_reload()
        key = self.trust.get(tok.kid)
        if key is None:
            return _reject(UNKNOWN_KEY, tok, kid=tok.kid_hex), tok, 0.0
        if key.alg != tok.alg or not signing.verify(key.public_key, tok.alg, tok.signature,
                                                    tok.signing_input()):
            why = "algorithm %s for a %s key" % (tok.alg_name, signing.format_alg(key.alg)) \
                if key.alg != tok.alg else "signature does not verify"
            return _reject(BAD_SIGNATURE, tok, kid=tok.kid_hex, error=why), tok, 0.0
        if key.revoked:
            return _reject(REVOKED, tok, kid=tok.kid_hex, revoked_reason=key.revoked_reason), tok, 0.0
        if key.not_before is not None and tok.issued_at < key.not_before:
            return _reject(NOT_YET_VALID, tok, kid=tok.kid_hex,
                           error="issued before its key's validity window"), tok, 0.0
        if tok.issued_at > now + self.skew_s:
            return _reject(NOT_YET_VALID, tok, issued_at=tok.issued_at, now=now), tok, 0.0
        if key.not_after is not None and tok.issued_at > key.not_after:
            return _reject(EXPIRED, tok, kid=tok.kid_hex,
                           error="issued after its key's validity window"), tok, 0.0
        if now > tok.expires_at + self.skew_s:
            return _reject(EXPIRED, tok, expires_at=tok.expires_at, now=now), tok, 0.0
        if amount is not None and tok.amount_cap is not None:
            value, currency = amount
            if currency != tok.currency or value > tok.amount_cap:
                return _reject(OVER_AMOUNT_CAP, tok, amount=value, currency=currency,
                               amount_cap=tok.amount_cap, cap_currency=tok.currency), tok, 0.0
        # held as long as the token could still be accepted by a bridge with this skew, plus 1 s
        return None, tok, tok.expires_at + self.skew_s + 1.0

    def _after_claim(self, item, claimed: bool) -> Verdict:
        if isinstance(item, OnlineCode):
            if not claimed:
                return _reject(REPLAYED, item, wallet=item.wallet)
            return Verdict(PENDING, ONLINE, TEXTS[ONLINE], token=item,
                           details={"kind": "online", "wallet": item.wallet})
        if not claimed:
            return _reject(REPLAYED, item, kid=item.kid_hex, token_id=item.token_id.hex())
        details = item.summary()
        text = TEXTS[OK]
        if item.amount_cap is not None:
            text = "OK, up to %d.%02d %s" % (item.amount_cap // 100, item.amount_cap % 100, item.currency)
        return Verdict(ACCEPTED, OK, text, token=item, details=details)

    # -- whole decisions --------------------------------------------------------------------
    def check(self, payload: bytes, amount: Optional[tuple] = None, owner: Optional[bytes] = None) -> Verdict:
        return self.check_many([payload], [amount], [owner])[0]

    def _start(self, payloads: Sequence[bytes], amounts: Optional[Sequence], owners: Optional[Sequence] = None):
        """Pre-ledger checks for a batch and the submission of its claims: (verdicts so far,
        pending [(index, item)], a handle whose wait() gives the claim results, or an error)."""
        now = self.clock()
        out: list = [None] * len(payloads)
        pending, claims = [], []
        for i, payload in enumerate(payloads):
            verdict, item, expiry = self.precheck(payload, now, amounts[i] if amounts else None)
            if verdict is not None or item is None:
                out[i] = verdict
            else:
                pending.append((i, item))
                claims.append((item.ledger_key, expiry, owners[i] if owners else None))
        if not pending:
            return out, pending, None, None
        if self.ledger is None:
            return out, pending, None, "no ledger configured"
        try:
            submit = getattr(self.ledger, "submit", None)
            handle = submit(claims) if submit else _Done(self.ledger.claim_many(claims))
        except Exception as e:  # a ledger outage must refuse (fail closed), not crash the link
            return out, pending, None, "%s: %s" % (type(e).__name__, e)
        return out, pending, handle, None

    def _finish(self, out: list, pending: list, handle, error: Optional[str]) -> list:
        results: list = []
        if pending and error is None:
            try:
                results = handle.wait()
            except Exception as e:
                error = "%s: %s" % (type(e).__name__, e)
        for n, (i, item) in enumerate(pending):
            if error is not None:
                out[i] = Verdict(REJECTED, LEDGER_UNAVAILABLE, TEXTS[LEDGER_UNAVAILABLE], token=item,
                                 details={"error": error})
            else:
                out[i] = self._after_claim(item, results[n])
        return out

    def check_many(self, payloads: Sequence[bytes], amounts: Optional[Sequence] = None,
                   owners: Optional[Sequence] = None) -> list[Verdict]:
        """Decide a batch; the surviving claims go to the ledger in one call (one transaction and
        one disk sync for SQLite), so throughput does not pay one fsync per token. `owners[i]`
        (ScanEvent.presentation) makes a claim idempotent for that one scan (ledger doc)."""
        return self._finish(*self._start(payloads, amounts, owners))

    def check_stream(self, payloads: Sequence[bytes], batch: int = 64, depth: int = 4) -> list[Verdict]:
        """Decide many payloads in batches, verifying the next batches while earlier ones are
        being made durable (up to `depth` batches in flight; a slow disk sync then simply takes
        several batches at once). No verdict exists before its claim is on disk; the sync
        overlaps with signature work instead of adding to it (how a bridge drains a fleet's queue)."""
        out: list = []
        inflight: deque = deque()
        for start in range(0, len(payloads), batch):
            inflight.append(self._start(payloads[start:start + batch], None))
            while len(inflight) > depth or (len(inflight) > 1 and _done(inflight[0])):
                out += self._finish(*inflight.popleft())
        while inflight:
            out += self._finish(*inflight.popleft())
        return out

    def decide(self, scan: ScanEvent) -> Verdict:
        amount = self.amount_for(scan) if self.amount_for else None
        return self.check(scan.payload, amount, scan.presentation)

    def decide_many(self, scans: Sequence[ScanEvent]) -> list[Verdict]:
        amounts = [self.amount_for(s) for s in scans] if self.amount_for else None
        return self.check_many([s.payload for s in scans], amounts, [s.presentation for s in scans])

    # the ScanService decider protocol: call for one scan, many() for a batch
    __call__ = decide
    many = decide_many


def make_decider(trust_store: TrustStore, ledger, *, skew_s: float = DEFAULT_SKEW_S,
                 clock: Callable[[], float] = time.time, amount_for: Optional[AmountLookup] = None,
                 online_ttl_s: float = DEFAULT_ONLINE_TTL_S) -> Verifier:
    """The decider for scanbridge.scan.ScanService: called with a ScanEvent it returns a Verdict;
    `.many(scans)` decides a batch with one ledger commit. Thread-safe (the ledger makes the
    single-use claim atomic), so several links may call it at once."""
    return Verifier(trust_store, ledger, skew_s=skew_s, clock=clock, amount_for=amount_for,
                    online_ttl_s=online_ttl_s)
