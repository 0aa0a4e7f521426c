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
    return parse_results(proc.stdout), proc


def parse_results(stdout):
    """{(module, test): result} from the runners' "@@RESULT {json}" lines (both ports)."""
    results = {}
    for line in stdout.splitlines():
        if line.startswith("@@RESULT "):
            r = json.loads(line[len("@@RESULT "):])
            results[(r["module"], r["test"])] = r
    return results


def firmware_cases(paths):
    """(module, test) for every top-level test_* function of the given test files."""
    import ast
    out = []
    for p in paths:
        tree = ast.parse(Path(p).read_text())
        out += [(Path(p).stem, n.name) for n in tree.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test_")]
    return out
