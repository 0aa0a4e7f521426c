"""The virtual scanner as users run it: `scanbridge virtual-scanner` in one process and
`scanbridge run --port` in another, over the pty; and frames from image files (the corpus)."""
import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanbridge.link.serial import SerialLink
from scanbridge.scan import ScanService
from scanbridge_tools.virtual_scanner.frames import ImageStream
from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("scanbridge"))
CORPUS = ROOT / ".." / "shared" / "corpus" / "counter-dev" / "qvga"


@pytest.mark.timeout(120)
def test_virtual_scanner_and_bridge_in_two_processes(tmp_path):
    link = tmp_path / "vscan0"
    vs = subprocess.Popen([EXE, "virtual-scanner", "--link", str(link), "--payload", "two-proc-A",
                           "--payload", "two-proc-B", "--fps", "30"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while not os.path.lexists(link) and time.monotonic() < end:
            time.sleep(0.05)
        assert os.path.lexists(link), vs.stderr.read() if vs.poll() is not None else "no pty link"
        # the scanner reads both codes before any bridge listens: they wait in its queue
        time.sleep(1.0)
        # --no-counter: only the serial path and the decision (no orders/outbox/web page)
        run = subprocess.run([EXE, "run", "--port", str(link), "--json", "--seconds", "6", "--no-counter"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        recs = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        assert [r["payload"] for r in recs] == ["two-proc-A", "two-proc-B"], run.stdout + run.stderr
        assert all(r["verdict"] in ("accepted", "rejected") and r["reason"] and r["device"] == "virtual-0001"
                   for r in recs), recs
        assert "[hello]" in run.stderr
    finally:
        vs.send_signal(signal.SIGINT)
        try:
            out, err = vs.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            vs.kill()
            out, err = vs.communicate()
    assert vs.returncode == 0, err
    assert out.count("two-proc-") == 2  # the scanner's own view: one result line per code
    assert not os.path.lexists(link)  # the pty link is removed on exit


@pytest.mark.timeout(120)
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not here")
def test_frames_from_image_files_are_decoded_by_the_firmware_decoder():
    images = sorted(CORPUS.glob("*.png"))[:8]
    expected = {p.with_suffix(".txt").read_bytes() for p in images}
    frames = ImageStream(images, hold=1, gap=0)
    got = queue.Queue()
    vs = VirtualScanner(frames, fps=0)
    vs.listeners.append(lambda e, d: got.put(d) if e == "result" else None)
    service = ScanService()
    vs.start()
    link = SerialLink(vs.path, service).start()
    try:
        assert link.wait_ready()
        end = time.monotonic() + 60
        while frames.shown < len(images) and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(1.0)
        read = []
        while not got.empty():
            read.append(got.get()["payload"])
    finally:
        link.stop()
        vs.stop()
    assert read, "the firmware decoder read none of %d corpus images" % len(images)
    assert set(read) <= expected  # never a wrong read
    assert len(read) == len(set(read))  # each code once
