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
        assert rec["verdict"] in ("accepted", "rejected", "pending")
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


def test_demo_shows_each_kind_of_code_with_its_verdict():
    """Minted tokens verified offline: good ones accepted; an online wallet code left to the
    acquirer; expired, forged and tampered ones refused with their reason; the replay refused."""
    r = subprocess.run([str(SCANBRIDGE), "demo", "--count", "12", "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == 12, r.stdout
    got = {(rec["kind"], rec["verdict"], rec["reason"]) for rec in lines}
    assert ("good", "accepted", "ok") in got
    assert ("online", "pending", "online_verification") in got
    assert ("expired", "rejected", "expired") in got
    assert ("forged", "rejected", "bad_signature") in got
    assert ("tampered", "rejected", "bad_signature") in got
    assert lines[-1]["kind"] == "replayed" and lines[-1]["reason"] == "replayed"
    assert lines[-1]["payload"] == lines[0]["payload"] and lines[0]["verdict"] == "accepted"
    for rec in lines:  # every verdict matches its kind: nothing bad accepted
        if rec["kind"] != "good":
            assert rec["verdict"] != "accepted", rec
