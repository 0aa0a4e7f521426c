"""`scanbridge run --trust FILE --ledger URL` as a process: minted codes from a virtual scanner are
verified offline with the merchant's trust store; a forged one is refused; a code accepted before
a restart of the bridge is refused after it (the ledger is on disk)."""
import json
import subprocess
import sys
import time

import pytest

from scanbridge_tools.mint import demo_payloads


def _run(tmp_path, scanner, trust):
    cmd = [sys.executable, "-m", "scanbridge.cli", "run", "--port", scanner.path, "--json", "--no-counter",
           "--trust", str(trust), "--ledger", "sqlite:%s" % (tmp_path / "ledger.db")]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _next(proc, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if line.strip():
            return json.loads(line)
    raise AssertionError("no scan line from scanbridge run")


@pytest.mark.timeout(120)
def test_run_verifies_tokens_and_refuses_replay_across_restart(tmp_path):
    from scanbridge_tools.virtual_scanner.frames import QueuedStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner
    demo = demo_payloads(9)
    trust = tmp_path / "trust.json"
    demo.trust_store.save(str(trust))
    codes = dict((label, p) for label, p in reversed(demo.payloads))  # first of each kind
    frames = QueuedStream(hold=1)  # one frame per show: with dedupe off, a held code would be sent again
    scanner = VirtualScanner(frames, fps=15, config={"dedupe_ms": 0}).start()
    proc = _run(tmp_path, scanner, trust)
    try:
        frames.show(codes["good"])
        rec = _next(proc)
        assert (rec["verdict"], rec["reason"]) == ("accepted", "ok"), rec
        frames.show(codes["forged"])
        rec = _next(proc)
        assert (rec["verdict"], rec["reason"]) == ("rejected", "bad_signature"), rec
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    proc = _run(tmp_path, scanner, trust)  # a new bridge process, the same ledger file
    try:
        frames.show(codes["good"])
        rec = _next(proc)
        assert (rec["verdict"], rec["reason"]) == ("rejected", "replayed"), rec
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        scanner.stop()
    assert "WARNING no trust store" not in err
