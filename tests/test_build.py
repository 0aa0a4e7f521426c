"""`scanbridge build`: every firmware module compiled for xtensawin into the device layout,
with a manifest of sha256 hashes that matches the files."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scanbridge_tools import build as b

ROOT = Path(__file__).resolve().parents[1]


def test_layout_and_manifest(tmp_path):
    m = b.build(tmp_path / "out", board="ai-thinker-esp32-cam")
    out = tmp_path / "out"
    srcs = b.sources()
    mpys = sorted(p.relative_to(out / b.APP_DIR).as_posix() for p in (out / b.APP_DIR).rglob("*.mpy"))
    want = [p.relative_to(ROOT / "firmware").with_suffix(".mpy").as_posix() for p in srcs]
    # each viper module also as bytecode, its fallback when no executable RAM is left
    want += [v[:-3] + "_bytecode.mpy" for v in b.VIPER_MODULES]
    assert mpys == sorted(want)
    kernels = (out / b.APP_DIR / "qr" / "kernels.mpy").read_bytes()
    fallback = (out / b.APP_DIR / "qr" / "kernels_bytecode.mpy").read_bytes()
    assert kernels[2] >> 2 != 0 and fallback[2] >> 2 == 0  # machine code (arch set) vs bytecode only
    assert (out / "boot.py").read_text() == (ROOT / "firmware/device/boot.py").read_text()
    assert (out / "main.py").exists() and not (out / b.APP_DIR / "device").exists()
    assert json.loads((out / "board.json").read_text())["id"] == "ai-thinker-esp32-cam"
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == m and m["arch"] == "xtensawin" and m["fw"] == b.firmware_version()
    for rel, f in m["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == f["sha256"], rel
    assert (out / "lib/scanbridge_fw/wire.mpy").read_bytes()[:1] == b"M"  # .mpy magic


def test_build_is_reproducible(tmp_path):
    a = b.build(tmp_path / "a")
    c = b.build(tmp_path / "c")
    assert a["files"] == c["files"]


def test_unknown_board_and_broken_source_are_named(tmp_path):
    with pytest.raises(b.BuildError) as e:
        b.build(tmp_path / "x", board="esp8266-toaster")
    assert e.value.code == "unknown_board" and "ai-thinker-esp32-cam" in e.value.message
    fw = tmp_path / "fw"
    (fw / "device").mkdir(parents=True)
    (fw / "device" / "boot.py").write_text("")
    (fw / "device" / "main.py").write_text("")
    (fw / "broken.py").write_text("def f(:\n")
    with pytest.raises(b.BuildError) as e:
        b.build(tmp_path / "y", fw_dir=fw)
    assert e.value.code == "compile_failed" and "broken.py" in e.value.message


def test_cli(tmp_path):
    exe = str(Path(sys.executable).with_name("scanbridge"))
    p = subprocess.run([exe, "build", "-o", str(tmp_path / "o"), "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["files"]["boot.py"]["sha256"]


def test_kernels_are_built_as_viper_native_code(tmp_path):
    """The per-pixel kernels go to the device as viper (native xtensawin code), the rest as bytecode."""
    from scanbridge_tools.build import build
    build(tmp_path / "out")
    mpys = {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in (tmp_path / "out").rglob("*.mpy")}
    kern = next(v for k, v in mpys.items() if k.endswith("qr/kernels.mpy"))
    plain = next(v for k, v in mpys.items() if k.endswith("qr/rs.mpy"))
    # .mpy header byte 2 holds the native architecture (bits 2..7; xtensawin = 10) when the file
    # carries native code, and 0 for pure bytecode
    assert kern[0] == ord("M") and kern[2] >> 2 == 10, kern[:4]
    assert plain[0] == ord("M") and plain[2] >> 2 == 0, plain[:4]
