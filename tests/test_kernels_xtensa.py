"""The hand-written Xtensa kernels (firmware/qr/kernels_xtensa.py) run as the machine code
mpy-cross makes of them, in tools/bench/xtensa_sim.py, and must give exactly what the Python
kernels give; the firmware (accel.py) uses them only after its own check on the device, which
must reject a wrong one."""
import random
import subprocess
from array import array
from pathlib import Path

import pytest

from scanbridge_fw.qr import accel, binarize, decoder, finders, kernels
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
    assert set(fns) == {"block_stats", "find_rows"}
    # a fraction of the viper kernels' executable RAM (1.3 and 1.8 KB)
    assert len(fns["block_stats"].code) < 600 and len(fns["find_rows"].code) < 800
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


def _rows_both(runner, img, thr, tk, w, y0, y1, step, tol=55, maxn=400):
    want = array("H", [0] * (3 * maxn))
    n = kernels.find_rows(0, 0, img, thr, tk, w, y0, y1, step, tol, want, maxn)
    got = array("H", [0] * (3 * maxn))
    p = array("i", [tk, w, y0, y1, step, tol, maxn] + [0] * (accel.FIND_ROWS_PARAMS - 7))
    m, c = runner.run_asm("find_rows", img, thr, got, p)
    return n, m, want[:3 * n], got[:3 * max(0, m)], c


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus missing")
def test_find_rows_equals_the_python_kernel_on_camera_frames(runner):
    hits = 0
    asm = viper = 0
    for img in counter_scenes(3)[0] + [clean_frame()]:
        for strategy in binarize.STRATEGIES:
            b = binarize.Binarizer(320, 240)
            b.run(img, strategy)
            for inv in (0, 8):
                for y0 in (0, 112, 224):
                    n, m, want, got, c = _rows_both(runner, img, b.thr, b.tk | inv, 320, y0, min(240, y0 + 16), 2)
                    assert (m, got) == (n, want), (strategy, inv, y0)
                    hits += n
                    asm += sum(c.executed.values())
                    _r, vc = runner.run("find_rows", 0, 0, img, b.thr, b.tk | inv, 320, y0, min(240, y0 + 16), 2, 55,
                                        array("H", [0] * 1200), 400)
                    viper += sum(vc.executed.values())
    assert hits > 20  # finder rows were found, and compared
    assert asm * 4 < viper, (asm, viper)


def test_find_rows_equals_the_python_kernel_on_random_rows(runner):
    rnd = random.Random(3)
    for _ in range(40):
        w, h, sh = rnd.randint(21, 80), rnd.randint(5, 30), rnd.randint(0, 4)
        bs = 1 << sh
        bw = (w + bs - 1) // bs
        img = bytes(rnd.choice((10, 240, rnd.randint(0, 255))) for _ in range(w * h))
        thr = bytes(rnd.randint(60, 200) for _ in range(bw * ((h + bs - 1) // bs)))
        tk = (bw << 4) | sh | rnd.choice((0, 8))
        n, m, want, got, _c = _rows_both(runner, img, thr, tk, w, 0, h, rnd.choice((1, 2, 3)),
                                         rnd.choice((55, 70, 100, 150)), rnd.choice((2, 50)))
        assert (m, got) == (n, want)


def _sim_fn(runner, name):
    def fn(*args):
        return runner.run_asm(name, *args)[0]
    return fn


def _mutant(tmp_path, old, new):
    src = ASM.read_text()
    assert src.count(old) == 1, old
    bad = tmp_path / "kx_bad.py"
    bad.write_text(src.replace(old, new))
    return xs.Runner(asm_source=bad)


def test_the_device_checks_accept_the_real_code_and_reject_wrong_code(runner, tmp_path):
    assert accel.check_block_stats(_sim_fn(runner, "block_stats"))
    assert accel.check_find_rows(_sim_fn(runner, "find_rows"))
    # block_stats reading every pixel, not a checkerboard half
    wrong = _mutant(tmp_path, "addi(a10, a10, 2)", "addi(a10, a10, 1)")
    assert not accel.check_block_stats(_sim_fn(wrong, "block_stats"))
    # a slip only edge blocks see: the sample count one lower
    wrong = _mutant(tmp_path, "addi(a10, a10, 1)\n    srai(a10, a10, 1)", "addi(a10, a10, 0)\n    srai(a10, a10, 1)")
    assert not accel.check_block_stats(_sim_fn(wrong, "block_stats"))
    # find_rows with the centre run's test 4x looser
    wrong = _mutant(tmp_path, "add(a12, a12, a15)\n    bge(a2, a12, after_hit_tr)",
                    "add(a12, a12, a12)\n    bge(a2, a12, after_hit_tr)")
    assert not accel.check_find_rows(_sim_fn(wrong, "find_rows"))
    # find_rows ignoring the hit buffer's size
    wrong = _mutant(tmp_path, "l32i(a12, a4, 24)\n", "movi(a12, 999)\n")
    assert not accel.check_find_rows(_sim_fn(wrong, "find_rows"))


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus missing")
def test_a_scan_through_the_xtensa_kernels_is_the_same_scan(runner, monkeypatch):
    frames, expected = counter_scenes(2)
    plain = decoder.Decoder(320, 240)
    with_xt = decoder.Decoder(320, 240)
    for f, want in zip(frames, expected):
        monkeypatch.setattr(accel, "block_stats", _sim_fn(runner, "block_stats"))
        monkeypatch.setattr(accel, "find_rows", _sim_fn(runner, "find_rows"))
        got = with_xt.scan(f)
        thr = bytes(with_xt.binarizer.thr)
        centres = [(c.x, c.y, c.count) for c in with_xt.finders.find(f, with_xt.binarizer.thr, with_xt.binarizer.tk, 320, 240)]
        monkeypatch.setattr(accel, "block_stats", None)
        monkeypatch.setattr(accel, "find_rows", None)
        assert plain.scan(f) == got and want in got
        assert bytes(plain.binarizer.thr) == thr
        assert [(c.x, c.y, c.count) for c in plain.finders.find(f, plain.binarizer.thr, plain.binarizer.tk, 320, 240)] == centres
    assert accel.STATUS.startswith("off")  # on this host: no Xtensa module to load


def test_builds_hold_the_module_for_xtensa_only(tmp_path):
    build.build(tmp_path / "dev")
    assert (tmp_path / "dev" / build.APP_DIR / "qr" / "kernels_xtensa.mpy").exists()
    build.build(tmp_path / "host", arch="x64")
    assert not (tmp_path / "host" / build.APP_DIR / "qr" / "kernels_xtensa.mpy").exists()
    assert (tmp_path / "host" / build.APP_DIR / "qr" / "kernels.mpy").exists()
