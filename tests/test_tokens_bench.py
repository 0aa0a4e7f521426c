"""`scanbridge bench verify` runs end to end and reports what it promises (no speed assertions:
the figures are for docs/BENCHMARKS.md, not for tests)."""
import json
import subprocess
import sys


def test_bench_verify_json_shape(tmp_path):
    out = subprocess.run([sys.executable, "-m", "scanbridge.cli", "bench", "verify", "--json", "-n", "150",
                          "--repeat", "1", "--threads", "3", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    for key in ("raw_verify_per_s", "pipeline_per_s", "ratio"):
        assert res[key] > 0
    assert res["alg"] == "Ed25519" and res["p256"]["pipeline_per_s"] > 0
    assert abs(res["ratio"] - res["ratio_rounds"][0]) < 1e-3
    assert list(tmp_path.iterdir()) == []  # its SQLite files are gone
