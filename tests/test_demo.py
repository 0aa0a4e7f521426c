"""`scanbridge demo --count N --json` end to end, as a user runs it: a subprocess with the real
virtual scanner (firmware app on a pty) and the bridge's serial link."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANBRIDGE = Path(sys.executable).with_name("scanbridge")


def test_demo_json_prints_one_object_per_scan_and_exits_0():
    r = subprocess.run([str(SCANBRIDGE), "demo", "--count", "4", "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 4, r.stdout
    for rec in lines:
        assert rec["verdict"] in ("accepted", "rejected")
        assert isinstance(rec["reason"], str) and rec["reason"]
        assert isinstance(rec["latency_ms"], int) and rec["latency_ms"] >= 0
        assert rec["payload"]
    assert len({rec["payload"] for rec in lines}) == 4  # four customers, four distinct codes
    assert "firmware decoder scanbridge_fw.qr" in r.stderr


def test_demo_text_mode_prints_lines():
    r = subprocess.run([str(SCANBRIDGE), "demo", "--count", "2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and all(" ms " in line for line in lines), r.stdout
