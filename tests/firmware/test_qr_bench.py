# The decoder bench (run on the board by the `bench` command) reports frames per second and the
# split between per-pixel kernels and the rest, in CPython and MicroPython alike.
from scanbridge_fw.qr import bench, kernels
from test_qr_decode import SAMPLES, render


def test_bench_reports_rate_and_kernel_split():
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2, width=80, height=64)
    blank = bytes(w * h)
    before = kernels.find_rows
    r = bench.run([frame, blank, frame], w, h)
    assert kernels.find_rows is before  # the timing wrappers are removed again
    assert r["frames"] == 3 and r["decoded"] == 2
    assert r["fps"] > 0 and r["ms_per_frame"] > 0
    assert r["kernels"]["find_rows"][1] > 0  # calls per frame
    assert abs(r["kernel_ms"] + r["other_ms"] - r["ms_per_frame"]) < 1e-6 + r["ms_per_frame"] * 1e-6


class _Board:
    def __init__(self, frames):
        self.frames = frames

    async def capture(self):
        return self.frames.pop(0) if self.frames else None


class _App:
    def __init__(self, board):
        self.board = board


async def test_bench_command_over_the_command_registry():
    from scanbridge_fw import commands
    payload, size, rows = SAMPLES[0]
    frame, w, h = render(rows, size, 2, width=80, height=64)
    app = _App(_Board([(frame, w, h), None, (bytes(w * h), w, h)]))
    reply = await commands.dispatch(app, {"id": 7, "cmd": "bench", "args": {"frames": 3}})
    assert reply["ok"], reply
    r = reply["result"]
    assert r["frames"] == 2 and r["decoded"] == 1 and (r["width"], r["height"]) == (80, 64)
    assert r["fps"] > 0
    # viper in a device build (the unix-port run of this test), plain Python from sources
    assert r["kernels"] in ("viper", "python"), r["kernels"]
    assert r["accel"].startswith("off"), r["accel"]  # no Xtensa module off the device
    bad = await commands.dispatch(app, {"id": 8, "cmd": "bench", "args": {"frames": 0}})
    assert not bad["ok"]


class _FaultyCamera:
    fault = {"code": "camera_init_failed", "message": "Camera probe failed with error 0x105"}


class _Raising:
    async def capture(self):
        raise OSError(110)


async def test_bench_command_on_a_scanner_without_frames_says_why():
    from scanbridge_fw import commands
    app = _App(_Raising())
    app.camera = _FaultyCamera()
    reply = await commands.dispatch(app, {"id": 9, "cmd": "bench", "args": {"frames": 2}})
    assert not reply["ok"] and reply["error"]["code"] == "camera_fault"
    assert "0x105" in reply["error"]["message"]
    app.camera = None  # no fault known, but every capture fails
    reply = await commands.dispatch(app, {"id": 10, "cmd": "bench", "args": {"frames": 2}})
    assert not reply["ok"] and reply["error"]["code"] == "capture_failed"
    assert "110" in reply["error"]["message"]
    app = _App(_Board([None, None]))
    reply = await commands.dispatch(app, {"id": 11, "cmd": "bench", "args": {"frames": 2}})
    assert reply["error"]["code"] == "capture_failed" and "none of 2" in reply["error"]["message"]
