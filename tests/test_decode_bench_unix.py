"""The decoder bench in the MicroPython unix port (tools/bench/decode_mpy.py --unix): a run with
the viper kernels as machine code reports the kernel/rest split and both calibration loops, and
the ESP32 estimate scales each part by its own factor."""
import pytest

from scanbridge_tools.bench import decode_mpy
from tests.support.micropython_unix import unix_micropython


@pytest.mark.skipif(unix_micropython() is None, reason="the MicroPython unix port is missing")
def test_viper_run_reports_split_and_calibrations():
    out = decode_mpy.run_unix(decode_mpy.clean_frame(), [], [], 2, 0, viper=True)
    assert out["clean"]["scan"]["decoded"] == 1 and out["clean"]["full"]["decoded"] == 1
    assert out["blank"]["scan"]["decoded"] == 0
    assert out["calibration_ms"] > 0 and out["viper_calibration_ms"] > 0
    for name in ("clean", "blank"):
        r = out["replay"][name]
        assert r["kernel_ms"] > 0 and r["scan_ms"] >= r["kernel_ms"] * 0.5 and 0 < r["calls_ms"] < r["kernel_ms"]
    # the kernels a clean frame calls, by name, with their call counts
    k = out["clean"]["scan"]["kernels"]
    assert k["block_stats"][1] == 1 and k["read_codewords"][1] >= 1


def test_estimate_scales_kernels_and_rest_by_their_own_factors():
    vip = {"viper_calibration_ms": decode_mpy.FIELD_VIPER_MS, "calibration_ms": decode_mpy.FIELD_BYTECODE_MS * 2,
           "replay": {"scenes": {"kernel_ms": 1.1, "rest_ms": 0.1, "scan_ms": 1.2, "calls_ms": 0.1}},
           "stream_split": {"kernel_ms": 2.0, "rest_ms": -0.01, "scan_ms": 2.0, "calls_ms": 0.0}}
    rows = {r[0]: r for r in decode_mpy.esp32_estimate(vip)}
    _, kern, rest, lo, hi, flo, fhi = rows["replay scenes"]
    # kernels (less the cost of calling them, which is bytecode) x 33..100; the rest is halved
    # (this machine's bytecode loop is 2x the field notes') then x 170..260
    assert lo == pytest.approx(33 + 0.1 * 170) and hi == pytest.approx(100 + 0.1 * 260)
    assert fhi == pytest.approx(1000 / lo) and flo == pytest.approx(1000 / hi)
    # the stream's split comes from its replay; a rest below zero (clock noise) counts as none
    assert rows["stream"][2] == 0 and rows["stream"][3] == pytest.approx(66)


def test_estimate_of_several_runs_takes_each_row_from_its_fastest_run():
    def run(kern, viper_loop):
        return {"viper_calibration_ms": viper_loop, "calibration_ms": decode_mpy.FIELD_BYTECODE_MS,
                "replay": {"blank": {"kernel_ms": kern, "rest_ms": 0.0, "scan_ms": kern, "calls_ms": 0.0},
                           "scenes": {"kernel_ms": 2 * kern, "rest_ms": 0.0, "scan_ms": 2 * kern, "calls_ms": 0.0}}}
    slow, fast = run(1.0, decode_mpy.FIELD_VIPER_MS), run(0.5, decode_mpy.FIELD_VIPER_MS)
    # a run whose own viper loop also ran slow (twice the field notes') is scaled back: equal to fast
    scaled = run(1.0, 2 * decode_mpy.FIELD_VIPER_MS)
    rows, runs = decode_mpy.best_estimate([slow, fast])
    assert runs == [1, 1] and rows[0][3] == pytest.approx(0.5 * 33)
    rows, runs = decode_mpy.best_estimate([slow, scaled])
    assert rows[0][3] == pytest.approx(0.5 * 33)
    mixed = run(0.5, decode_mpy.FIELD_VIPER_MS)
    mixed["replay"]["scenes"]["kernel_ms"] = 3.0  # this run's scenes were slow, its blank fast
    rows, runs = decode_mpy.best_estimate([slow, mixed])
    assert runs == [1, 0]
    assert "run 2" in decode_mpy.estimate_table([slow, mixed])


def test_sim_table_adds_simulated_kernels_to_the_bytecode_term():
    """--sim: each row is the simulated kernels (+PSRAM) plus the rest scaled by the bytecode
    factor of the run that estimated that row; more bytecode time gives a slower row."""
    def vip(rest):
        split = {"kernel_ms": 0.1, "rest_ms": rest, "scan_ms": 0.1 + rest, "calls_ms": 0.0}
        return {"viper_calibration_ms": decode_mpy.FIELD_VIPER_MS, "calibration_ms": decode_mpy.FIELD_BYTECODE_MS,
                "replay": {"blank": dict(split), "clean": dict(split)}}
    clean = decode_mpy.clean_frame()

    def rows(rest):
        text = decode_mpy.sim_table([vip(rest)], clean, [], [], 0, 1, 1)
        return {line.split()[1]: line for line in text.splitlines() if line.startswith("replay ")}
    fast, slow = rows(0.0), rows(0.1)
    assert set(fast) == {"blank", "clean"}
    for name in fast:
        f = [float(x) for x in fast[name].split()[-1].split("..")]
        s = [float(x) for x in slow[name].split()[-1].split("..")]
        assert 0 < f[0] < f[1] and 0 < s[0] < s[1]
        # 0.1 ms of rest at the field notes' loop = 17..26 ms more per frame on the ESP32
        assert s[1] < f[1] and 1000 / s[0] - 1000 / f[0] == pytest.approx(26, abs=1.5)
    # the clean code costs the kernels more than a blank frame
    assert float(fast["clean"].split()[-1].split("..")[1]) < float(fast["blank"].split()[-1].split("..")[1])
