"""`scanbridge bench serial` runs and reports what docs/BENCHMARKS.md records (no speed asserted)."""
import json
import subprocess
import sys
from pathlib import Path


def test_bench_serial_json_smoke():
    exe = Path(sys.executable).with_name("scanbridge")
    r = subprocess.run([str(exe), "bench", "serial", "--count", "30", "--json"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    lat = out["latency_ms"]
    assert len(lat) == 3 and all(v["n"] == 30 and v["p50"] <= v["p99"] <= v["max"] for v in lat.values())
    w = out["wire"]
    assert w["payload_bytes"] == 100 and w["total_bytes"] == w["scan_frame"] + 2 * w["ack_frame"] + w["result_frame"]
    assert w["scan_frame"] > 100 * 4 // 3  # base64 body plus header and CRC
