"""The Xtensa simulator of the viper kernels (tools/bench/xtensa_sim.py): the decoder on known
encodings, the .mpy reader, and the simulated machine code against the Python kernels on the
kernel calls of a real Decoder.scan."""
import re
from array import array

import pytest

from scanbridge_fw.qr import kernels
from scanbridge_tools.bench import decode_mpy
from scanbridge_tools.bench import xtensa_sim as xs


@pytest.fixture(scope="module")
def runner():
    return xs.Runner()


def _dec(hexbytes, base=0x1000):
    return xs.decode(bytes.fromhex(hexbytes), 0, base)


@pytest.mark.parametrize("code, text", [
    ("364100", "entry    a1, 32"),
    ("366100", "entry    a1, 48"),
    ("1df0", "retw.n"),
    ("0df0", "ret.n"),
    ("f02000", "nop"),
    ("0c02", "movi.n   a2, 0"),
    ("7cf2", "movi.n   a2, -1"),
    ("22a000", "movi     a2, 0"),
    ("22affe", "movi     a2, -2"),
    ("22c2ff", "addi     a2, a2, -1"),
    ("4a23", "add.n    a2, a3, a4"),
    ("2d03", "mov.n    a2, a3"),
    ("2813", "l32i.n   a2, a3, 4"),
    ("222302", "l32i     a2, a3, 8"),
    ("220304", "l8ui     a2, a3, 4"),
    ("224305", "s8i      a2, a3, 5"),
    ("c08080", "add      a8, a0, a12"),
    ("c08020", "or       a8, a0, a12"),
    ("3042c0", "sub      a4, a2, a3"),
    ("a08282", "mull     a8, a2, a10"),
    ("e00800", "callx8   a8"),
    ("a00a00", "jx       a10"),
])
def test_decodes_known_encodings(code, text):
    ins = _dec(code)
    assert xs.format_insn(ins) == text
    assert ins.size == len(code) // 2


def test_branch_targets_are_relative_to_pc_plus_4():
    assert _dec("c6ffff").a == (0x1000 + 4 - 1,)  # j -1 (offset is 18 bits, signed)
    assert _dec("06ffff").op == "j"
    ins = _dec("561200")  # bnez a2, +1
    assert (ins.op, ins.a) == ("bnez", (2, 0x1000 + 4 + 1))
    ins = _dec("2723fe")  # blt a3, a2, -2
    assert (ins.op, ins.a) == ("blt", (3, 2, 0x1000 + 4 - 2))
    ins = _dec("9c12")  # beqz.n a2, +0x11
    assert (ins.op, ins.a) == ("beqz.n", (2, 0x1000 + 4 + 0x11))


def test_l32r_reads_below_the_aligned_pc():
    ins = xs.decode(bytes.fromhex("00" * 9 + "21ffff"), 9, 0x1000)  # l32r a2, offset -1 word
    assert ins.op == "l32r" and ins.a == (2, 0x1000 + 12 - 4)


def test_unknown_bytes_raise():
    with pytest.raises(xs.DecodeError):
        _dec("0e00")  # op0 14: reserved


def test_mpy_reader_names_every_kernel_with_its_signature(runner):
    funcs = runner.functions
    for name in ("block_stats", "block_smooth", "find_rows", "confirm_hits", "sample_grid", "fit", "nearest_word"):
        lo, hi, kw = funcs[name].signature()
        assert lo == hi == getattr(kernels, name).__code__.co_argcount and kw == 0
    with pytest.raises(xs.MpyError):
        xs.read_mpy(b"Mx\x00\x1f")


def test_mpy_header_and_tables():
    mpy = xs.read_mpy(xs.compile_viper(xs.KERNELS_PY))
    assert (mpy.arch, mpy.small_int_bits) == (xs.ARCH_XTENSAWIN, 31)
    assert mpy.qstrs[0].endswith("kernels.py") and "find_rows" in mpy.qstrs
    assert mpy.objs[0] == ("const", xs.OBJ_FUN_TABLE)  # the native code's mp_fun_table
    assert mpy.root.kind == xs.MP_CODE_NATIVE_VIPER
    assert all(rc.kind == xs.MP_CODE_NATIVE_VIPER and not rc.relocs for rc in mpy.root.children)


def test_listing_shows_the_helper_calls(runner):
    text = xs.listing(runner.functions["block_stats"])
    assert "entry    a1," in text and "retw.n" in text
    assert "mp_fun_table[3] convert_obj_to_native" in text
    assert "mp_fun_table[46] small_int_floor_divide" in text


def _source(tmp_path, text):
    p = tmp_path / "viper_src.py"
    p.write_text(text)
    return xs.Runner(p, size=1 << 16)


def test_loop_cost_is_linear_and_result_right(tmp_path):
    r = _source(tmp_path, "def tri(n: int) -> int:\n    i = 0\n    s = 0\n    while i < n:\n"
                          "        s += i\n        i += 1\n    return s\n")
    counts = {}
    for n in (10, 11, 20):
        res, c = r.run("tri", n)
        assert res == n * (n - 1) // 2
        counts[n] = sum(c.executed.values())
    assert counts[20] - counts[10] == 10 * (counts[11] - counts[10]) > 0
    res, c = r.run("tri", -5)
    assert res == 0


def test_unexpected_helper_names_its_index(tmp_path):
    r = _source(tmp_path, "def f(n: int):\n    return undefined_name\n")
    with pytest.raises(xs.SimError, match=r"mp_fun_table\[5\] \(native_swap_globals\)"):
        r.run("f", 3)


def test_large_result_is_refused(tmp_path):
    r = _source(tmp_path, "def big(n: int) -> int:\n    return n << 20\n")
    assert r.run("big", 3)[0] == 3 << 20
    with pytest.raises(xs.SimError, match="small int"):
        r.run("big", 1 << 10)  # 2**30: one past the largest small int


def _copies(args):
    return [a[:] if isinstance(a, (bytearray, array)) else a for a in args]


@pytest.fixture(scope="module")
def scene_calls():
    """The kernel calls of Decoder.scan on a real counter scene (the clean frame if the corpus
    is absent) and on the clean rendered code."""
    scenes = decode_mpy.counter_scenes(1)[0] if decode_mpy.CORPUS.is_dir() else []
    frames = scenes + [decode_mpy.clean_frame()]
    return [call for f in frames for call in xs.record_scan(f)]


def test_kernels_match_python_on_a_real_scan(runner, scene_calls):
    """Every kernel call of the scans, in the simulator and in Python on copies of the same
    arguments: the same result and the same bytes in every buffer afterwards."""
    seen = set()
    for name, args, _result in scene_calls:
        py_args, sim_args = _copies(args), _copies(args)
        expected = getattr(kernels, name)(*py_args)
        result, c = runner.run(name, *sim_args)
        assert result == expected, name
        assert [bytes(a) if not isinstance(a, int) else a for a in sim_args] == \
               [bytes(a) if not isinstance(a, int) else a for a in py_args], name
        assert sum(c.executed.values()) > 0
        seen.add(name)
    assert {"block_stats", "block_smooth", "find_rows", "sample_grid", "fit"} <= seen


def test_block_stats_writes_every_block(runner):
    """A frame region with flat and busy blocks; the output starts from garbage."""
    frame = bytes((x * 7 + y * 13) % 256 if (x // 16 + y // 16) % 2 else 100 for y in range(64) for x in range(96))
    py_avg, sim_avg = bytearray(b"\x55" * 96), bytearray(b"\xaa" * 96)
    args = (96, 64, 3, 12, 8, 24)  # 8 px blocks
    assert runner.run("block_stats", 0, 0, frame, *args, sim_avg)[0] == kernels.block_stats(0, 0, frame, *args, py_avg) == 96
    assert sim_avg == py_avg


def test_calibration_loop_matches_python():
    cal = xs.calibration_runner()
    frame = decode_mpy.clean_frame()[:3000]
    out = bytearray(b"\x07" * len(frame))
    result, c = cal.run("_vthreshold", frame, out, len(frame), 128)
    assert result is None
    assert out == bytes(1 if p <= 128 else 0 for p in frame)
    lo, hi, ev = xs.cycles(c, cal.insn_at)
    assert ev["insns"] == sum(c.executed.values()) < lo <= hi
    assert c.frame_lines() == 0 and c.buffer_lines[0] == (len(frame) + 31) // 32


def test_run_returns_result_instructions_and_cycles():
    frame = decode_mpy.clean_frame()
    avg = bytearray(40 * 30)
    result, insns, (lo, hi) = xs.run("block_stats", 0, 0, frame, 320, 240, 3, 40, 30, 24, avg)
    assert result == 1200 and 0 < insns < lo <= hi


def test_listing_option_prints_one_kernel(capsys):
    xs.main(["--listing", "nearest_word"])
    out = capsys.readouterr().out
    assert re.fullmatch(r"\s*8:\s+entry\s+a1, \d+", out.splitlines()[1])
    assert "retw.n" in out and "block_stats" not in out
    with pytest.raises(SystemExit):
        xs.main(["--listing", "no_such_kernel"])


def test_cycle_events_of_a_known_loop(tmp_path):
    """The calibration loop's events grow by a fixed amount per pixel, and the high model
    never prices a run below the low one."""
    cal = xs.calibration_runner()
    evs = []
    for n in (100, 200):
        _res, c = cal.run("_vthreshold", bytes(n), bytearray(n), n, 128)
        evs.append(xs.cycles(c, cal.insn_at))
    (lo1, hi1, ev1), (lo2, hi2, ev2) = evs
    per_pixel = {k: (ev2[k] - ev1[k]) / 100 for k in ev1}
    assert per_pixel["insns"] == int(per_pixel["insns"]) > 10
    assert per_pixel["taken"] >= 1 and per_pixel["load_use"] >= 1
    assert lo1 <= hi1 and lo2 <= hi2 and (lo2 - lo1) % 100 == 0


def test_stream_recording_stops_at_the_read(runner):
    """record_stream shows each scene until its payload is read (the clean code: at once) or
    `repeat` frames pass (a blank frame), one call list per frame; frames_cost prices them."""
    clean = decode_mpy.clean_frame()
    frames = xs.record_stream([clean, bytes(320 * 240)], [b"https://pay.example/t/Ddn4vYH", b"-"], 3)
    assert len(frames) == 1 + 3
    assert "read_codewords" in {name for name, _a, _r in frames[0]}
    assert all(name not in ("fit", "read_codewords") for calls in frames[1:] for name, _a, _r in calls)
    read, blank = xs.frames_cost(runner, frames[:1]), xs.frames_cost(runner, frames[1:])
    assert read["frames"] == 1 and blank["frames"] == 3
    assert 0 < blank["insns"] < read["insns"]
    assert 0 < blank["ms"][0] < blank["ms"][1] < read["ms"][0]
    assert blank["psram_ms"][0] > 0  # the frame is read, and it is large: its lines count as PSRAM


def test_first_pass_is_the_8px_pass():
    """record_scan records the pass decode_mpy's replay measures (pass 0: 8 px blocks)."""
    calls = xs.record_scan(bytes(320 * 240))
    name, args, _r = calls[0]
    assert name == "block_stats" and args[5] == 3  # sh: 8 px blocks
