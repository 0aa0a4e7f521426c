"""What flows through the bridge for one scan: the scan as received, and the verdict on it.

Links (serial, MQTT) turn wire messages into ScanEvents and hand them to a ScanService; the
service decides (token verification, single-use ledger, orders, outbox) and returns a Verdict,
which the link sends back to the scanner as a RESULT. Listeners (counter page, demo, logs)
see every (scan, verdict) pair."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

ACCEPTED = "accepted"
REJECTED = "rejected"
PENDING = "pending"


@dataclass(frozen=True)
class ScanEvent:
    device_id: str  # the scanner's id from its HELLO
    link: str  # "serial:/dev/ttyUSB0", "mqtt:site/dev", "virtual"
    seq: int  # the SCAN message number on that link (for the RESULT)
    payload: bytes  # exactly what the decoder read
    decode_ms: int = 0
    quality: int = 0
    received_at: float = field(default_factory=time.time)  # wall clock, for records
    received_mono: float = field(default_factory=time.monotonic)  # for latency
    session: int = 0  # the sending link's session (random per scanner boot); 0: none

    @property
    def presentation(self) -> Optional[bytes]:
        """This scan's identity for an idempotent ledger claim (device, link session, seq): the
        same scan delivered again may have its claim again; any other scan of the code may not.
        None when the link has no session (virtual, tests): then every claim is new or refused."""
        if not self.session:
            return None
        return ("%s/%d/%d" % (self.device_id, self.session, self.seq)).encode()


@dataclass
class Verdict:
    verdict: str  # ACCEPTED | REJECTED | PENDING
    reason: str  # a stable reason code: "ok", "expired", "bad_signature", "replayed", ...
    text: str = ""  # short human text for the counter page / scanner display
    token: Any = None  # the parsed token, when the payload was one
    details: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPTED


def accept_well_formed(scan: ScanEvent) -> Verdict:
    """The decision before token verification is configured: any non-empty payload is taken."""
    if not scan.payload:
        return Verdict(REJECTED, "malformed", "Empty code")
    return Verdict(ACCEPTED, "ok", "Read")


# A decider may also offer `many(scans) -> [Verdict]` (same order): ScanService.handle_many then
# decides a batch in one call, so a ledger commits the batch's claims in one transaction.
def _internal_error(e: BaseException) -> Verdict:
    return Verdict(REJECTED, "internal_error", "Bridge error: %s" % type(e).__name__)


Decider = Callable[[ScanEvent], Verdict]
Listener = Callable[[ScanEvent, Verdict], None]
ResultSender = Callable[[ScanEvent, Verdict], None]


class ScanService:
    """Owns the decision for each scan and tells everyone who listens. Thread-safe: links may
    call `handle` from their own threads; decisions are serialised by one lock so the single-use
    guarantee does not depend on every decider being thread-safe."""

    def __init__(self, decide: Optional[Decider] = None):
        self.decide: Decider = decide or accept_well_formed
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._senders: dict[str, ResultSender] = {}
        self._senders_lock = threading.Lock()

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def attach_device(self, device_id: str, send: ResultSender) -> None:
        """A link announces that results for `device_id` go through `send` (latest link wins)."""
        with self._senders_lock:
            self._senders[device_id] = send

    def detach_device(self, device_id: str, send: ResultSender) -> None:
        with self._senders_lock:
            if self._senders.get(device_id) is send:
                del self._senders[device_id]

    def update(self, scan: ScanEvent, verdict: Verdict) -> bool:
        """A later verdict for a scan already answered (e.g. PENDING -> ACCEPTED once the payment
        backend has spoken): sent to the scanner through its link and shown to listeners.
        Returns False when no link currently serves that device."""
        with self._senders_lock:
            send = self._senders.get(scan.device_id)
        self._tell(scan, verdict)
        if send is None:
            return False
        send(scan, verdict)
        return True

    def handle(self, scan: ScanEvent) -> Verdict:
        with self._lock:
            try:
                verdict = self.decide(scan)
            except Exception as e:  # a decider bug must not take the link down; the scanner hears why
                verdict = _internal_error(e)
        self._tell(scan, verdict)
        return verdict

    def handle_many(self, scans: list[ScanEvent]) -> list[Verdict]:
        """Decide scans that arrived together (a link's backlog) and tell listeners of each, in
        order. With a batch-capable decider this is one call (and one ledger commit); otherwise
        the scans are decided one by one, exactly as `handle` would."""
        if not scans:
            return []
        many = getattr(self.decide, "many", None)
        with self._lock:
            if many is None:
                verdicts = []
                for scan in scans:
                    try:
                        verdicts.append(self.decide(scan))
                    except Exception as e:
                        verdicts.append(_internal_error(e))
            else:
                try:
                    verdicts = list(many(scans))
                    if len(verdicts) != len(scans):
                        raise RuntimeError("decider returned %d verdicts for %d scans" % (len(verdicts), len(scans)))
                except Exception as e:  # not retried one by one: claims may already be made
                    verdicts = [_internal_error(e)] * len(scans)
        for scan, verdict in zip(scans, verdicts):
            self._tell(scan, verdict)
        return verdicts

    def _tell(self, scan: ScanEvent, verdict: Verdict) -> None:
        # A listener's failure (a page, a printer) must never keep the RESULT from the scanner.
        for fn in list(self._listeners):
            try:
                fn(scan, verdict)
            except Exception as e:
                import sys
                print("scanbridge: listener %r failed: %s: %s" % (getattr(fn, "__name__", fn), type(e).__name__, e),
                      file=sys.stderr, flush=True)
