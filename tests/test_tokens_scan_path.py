"""Signed tokens along the real scan path: the wallet simulator's codes rendered as camera scenes,
read by the firmware's own QR decoder in the virtual scanner, sent over a pty to the bridge's
serial link, decided by the token decider; each verdict and reason comes back to the scanner."""
import queue
import time

import pytest

from scanbridge.ledger import open_ledger
from scanbridge.scan import ScanService
from scanbridge.tokens import make_decider
from scanbridge_tools.mint import demo_payloads


def test_demo_codes_reach_the_scanner_with_their_reasons():
    scanner_mod = pytest.importorskip("scanbridge_tools.virtual_scanner.scanner")
    from scanbridge.link.serial import SerialLink
    from scanbridge_tools.virtual_scanner.frames import CodeStream

    demo = demo_payloads(9, seed=3)
    ledger = open_ledger("sqlite::memory:")
    service = ScanService(make_decider(demo.trust_store, ledger))
    scanner = scanner_mod.VirtualScanner(CodeStream([p for _, p in demo.payloads], hold=3, gap=2), fps=30,
                                         config={"dedupe_ms": 500})
    results: queue.Queue = queue.Queue()
    scanner.listeners.append(lambda event, data: results.put((event, data)))
    scanner.start()
    link = SerialLink(scanner.path, service).start()
    got = []
    try:
        end = time.monotonic() + 90
        while len(got) < len(demo.payloads) and time.monotonic() < end:
            try:
                event, data = results.get(timeout=1)
            except queue.Empty:
                continue
            if event == "result":
                got.append((bytes(data["payload"]), data["verdict"], data["reason"]))
    finally:
        link.stop()
        scanner.stop()
        ledger.close()
    # the firmware decoder returned the exact binary token bytes (byte mode, QR version 6)
    assert [p for p, _, _ in got] == [p for _, p in demo.payloads]
    assert [r for _, _, r in got] == demo.expected
    verdicts = dict(zip([label for label, _ in demo.payloads], [v for _, v, _ in got]))
    assert verdicts["good"] == "accepted" and verdicts["online"] == "pending"
    assert verdicts["forged"] == verdicts["expired"] == verdicts["replayed"] == "rejected"
