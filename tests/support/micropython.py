"""Run firmware test modules inside the real MicroPython (official WebAssembly port, Node)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
RUNNER = Path(__file__).with_name("mpy_run.mjs")


def node_available():
    return shutil.which("node") is not None and (ROOT / "node_modules" / "@micropython").is_dir()


def run_in_micropython(test_files, heap_bytes=4 * 1024 * 1024, timeout=600, files=None):
    """Run test_* functions of the given files in MicroPython; return {(module, test): result}."""
    env = dict(os.environ)
    if files:
        env["SB_MPY_FILES"] = ",".join("%s:%s" % (src, dst) for src, dst in files.items())
    proc = subprocess.run(
        ["node", str(RUNNER), str(FIRMWARE), str(heap_bytes), *map(str, test_files)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT "):
            r = json.loads(line[len("@@RESULT "):])
            results[(r["module"], r["test"])] = r
    return results, proc
