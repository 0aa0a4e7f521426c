"""`scanbridge diag` end to end against the virtual scanner (the real firmware app with the
diag handlers, on a real pty): report, JSON, snapshot decoded with zxing-cpp, self-test,
latency, live log, and the focus/lighting/code verdicts."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from scanbridge_tools.diagnostics.errors import DiagError
from scanbridge_tools.diagnostics.report import gather, take_snapshot
from scanbridge_tools.diagnostics.serial_transport import SerialDiag
from scanbridge_tools.virtual_scanner.frames import Frame, blank, render
from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

SB = str(Path(sys.executable).with_name("scanbridge"))
CODE = b"DIAG-E2E-PAYMENT-CODE-0001"


class Camera:
    """An endless stream showing whatever frame the test puts in `frame`."""

    def __init__(self, frame):
        self.frame = frame

    def __iter__(self):
        while True:
            yield self.frame


def _blurred(frame, radius):
    img = Image.frombytes("L", (frame.width, frame.height), bytes(frame.gray)).filter(ImageFilter.GaussianBlur(radius))
    return Frame(img.tobytes(), frame.width, frame.height, [], "blurred")


@pytest.fixture()
def scanner():
    cam = Camera(blank())
    vs = VirtualScanner(cam, fps=4, rto_ms=100, device_id="scan-diag-1").start()
    vs.camera = cam
    deadline = time.monotonic() + 20
    while vs.status()["frames"] < 1:  # the app has taken and decoded its first frame
        assert time.monotonic() < deadline, "virtual scanner never took a frame"
        time.sleep(0.05)
    yield vs
    vs.stop()


def test_report_json_over_the_cli(scanner, tmp_path):
    scanner.camera.frame = render(CODE)
    shot = tmp_path / "shot.png"
    p = subprocess.run([SB, "diag", "-p", scanner.path, "--json", "-o", str(shot), "--count", "5"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 3), p.stderr
    r = json.loads(p.stdout)
    assert r["hello"]["device"] == "scan-diag-1" and r["info"]["device"] == "scan-diag-1"
    assert r["info"]["fw"] and r["health"]["frames"] >= 1 and "link" in r["health"]
    assert r["selftest"]["decoder"]["ok"] and r["selftest"]["leds"]["ok"] and r["selftest"]["buzzer"]["ok"]
    assert r["snapshot"]["verdict"] == "code_readable"
    assert r["snapshot"]["decoded"][0]["text"] == CODE.decode()
    assert Image.open(shot).size == (266, 240)  # QVGA, centre-cropped to fit one snapshot
    assert r["latency"]["count"] == 5 and r["latency"]["min_ms"] > 0
    assert r["link"]["sent"] > 0 and "crc_errors" in r["link"]
    ids = {f["id"] for f in r["findings"]}
    assert "lens_focus" not in ids and "lighting" not in ids


def test_human_report_names_problems_with_fixes(scanner):
    scanner.camera.frame = blank(level=10)  # a dark box: lighting
    p = subprocess.run([SB, "diag", "-p", scanner.path, "--no-selftest", "--count", "2"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stdout + p.stderr  # 3: problems found
    assert "PROBLEMS FOUND" in p.stdout and "[lighting]" in p.stdout and "fix:" in p.stdout
    assert "scan-diag-1" in p.stdout


def test_snapshot_tells_focus_from_code(scanner):
    scanner.camera.frame = _blurred(render(CODE), 4)
    with SerialDiag(scanner.path) as t:
        r = take_snapshot(t)
        assert r["verdict"] == "out_of_focus" and "lens" in r["advice"]
        scanner.camera.frame = render(CODE)
        time.sleep(0.2)
        assert take_snapshot(t)["verdict"] == "code_readable"


def test_facts_from_a_failing_camera_name_the_fix(scanner):
    scanner.camera.frame = render(CODE)

    async def broken():
        raise RuntimeError("Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")
    with SerialDiag(scanner.path) as t:
        scanner._call(lambda: setattr(scanner.board, "capture", broken))
        f = gather(t, do_snapshot=True, pings=0)
    ids = [x["id"] for x in f["findings"]]
    assert "camera_not_found" in ids and "camera_init_failed" not in ids
    row = next(x for x in f["findings"] if x["id"] == "camera_not_found")
    assert "5 V" in row["fix"] and "0x105" in row["evidence"]
    assert "snapshot" in f["errors"]


def test_live_log_shows_scans_and_results(scanner):
    scanner.camera.frame = blank()
    p = subprocess.Popen([SB, "diag", "-p", scanner.path, "log", "--seconds", "4", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    scanner.camera.frame = render(CODE)  # the app reads it and waits for a RESULT that never comes
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    logs = [l["log"] for l in lines if "log" in l]
    assert any(x.startswith("diag: live log on") for x in logs)
    assert any(x.startswith("scan seq=") for x in logs), logs


def test_wrong_port_and_no_scanner():
    p = subprocess.run([SB, "diag", "-p", "/dev/no-such-scanner", "--json"], capture_output=True, text=True)
    assert p.returncode == 1 and json.loads(p.stdout)["error"]["code"] == "port_not_found"
    import os
    master, slave = os.openpty()
    try:
        with pytest.raises(DiagError) as e:
            SerialDiag(os.ttyname(slave), timeout_s=0.5).open()
        assert e.value.code == "no_answer" and e.value.fix
    finally:
        os.close(master)
        os.close(slave)


def test_failure_table_cli():
    p = subprocess.run([SB, "diag", "failures", "--json"], capture_output=True, text=True)
    rows = json.loads(p.stdout)
    ids = {r["id"] for r in rows}
    assert {"camera_not_found", "camera_sensor_unsupported", "brownout", "no_psram", "wrong_board_profile",
            "lens_focus"} <= ids
    assert all(r["fix"] for r in rows)
