# Device-side diagnostics (firmware/diag.py) with the HAL faked: a board whose camera returns a
# synthetic frame, LEDs and buzzer recorded, a link that records what it would send.
# Plain asserts only: the same file runs inside the MicroPython WebAssembly port.
from scanbridge_fw import commands, diag, wire
from scanbridge_fw.app import App


class Channel:
    """Stands in for wire.Link behind the serial link: records messages, always has room."""

    def __init__(self):
        self.sent = []
        self.errors = [wire.WireError("malformed", "test")]

    def send(self, kind, data):
        self.sent.append((kind, data))
        return len(self.sent)

    def pending(self):
        return 0


class FakeLink:
    name = "fake"

    def __init__(self):
        self.wire = Channel()
        self.logs = []
        self.on_result = None
        self.on_command = None
        self.on_error = None

    def status(self):
        return {"link": "fake", "retransmits": 3, "crc_errors": 2}

    def send_log(self, text):
        self.logs.append(text)

    def send_status(self, data):
        pass


class FakeBoard:
    name = "fake-board"
    caps = ("scan",)

    def __init__(self, w=64, h=48, fail=None):
        self.profile = {"chip": "esp32", "camera": {"model": "OV2640"}}
        self.w = w
        self.h = h
        self.fail = fail
        self.events = []

    async def capture(self):
        if self.fail:
            raise Exception(self.fail)
        g = bytearray(self.w * self.h)
        for y in range(self.h):
            for x in range(self.w):
                g[y * self.w + x] = 255 if (x // 4 + y // 4) % 2 else 0  # a sharp checkerboard
        return g, self.w, self.h

    def led(self, name):
        self.events.append(("led", name))

    def tone(self, hz):
        self.events.append(("tone", hz))

    def light(self, on):
        pass

    def unique_id(self):
        return "240ac4123456"

    def mem_free(self):
        return 1000

    def reset_cause(self):
        return "pwron"

    def heap(self):
        return {"free": 90000, "idf_largest": 40000}


def _read_selftest(gray, w, h):
    """A decoder stand-in that samples module centres of the built-in code."""
    n = 21
    scale = w // (n + 8)
    rows = []
    for r in range(n):
        bits = 0
        for c in range(n):
            y = (r + 4) * scale + scale // 2
            x = (c + 4) * scale + scale // 2
            bits = (bits << 1) | (1 if gray[y * w + x] < 128 else 0)
        rows.append(bits)
    return [diag.SELFTEST_TEXT] if tuple(rows) == diag._SELFTEST_ROWS else []


def _app(board=None, decode=_read_selftest):
    diag.register_all(commands)
    return App(board or FakeBoard(), FakeLink(), decode)


async def _call(app, cmd, args=None):
    r = await commands.dispatch(app, {"id": 1, "cmd": cmd, "args": args or {}})
    assert r["ok"], r
    return r["result"]


async def test_info_names_device_board_and_reset_cause():
    app = _app()
    r = await _call(app, "diag.info")
    assert r["device"] == "240ac4123456" and r["board"] == "fake-board"
    assert r["reset_cause"] == "pwron" and r["profile_chip"] == "esp32" and r["camera_model"] == "OV2640"
    assert r["fw"] and r["micropython"] and r["proto"] == wire.PROTOCOL_VERSION


async def test_health_reports_heap_failures_and_link_quality():
    app = _app()
    app.counts["frames"] = 30
    app.last_error = "decode: boom"
    r = await _call(app, "diag.health")
    assert r["heap"]["free"] == 90000 and r["heap"]["min_free_seen"] is not None
    assert r["link"]["retransmits"] == 3 and r["link"]["crc_errors"] == 2
    assert r["link"]["recent_errors"] == ["malformed: test"]
    assert "decode: boom" in r["recent_failures"] and r["frames"] == 30


async def test_camera_stats_tell_sharp_from_flat():
    app = _app()
    r = await _call(app, "diag.camera")
    assert r["ok"] and r["width"] == 64
    sharp = r["stats"]["sharpness"]
    assert r["stats"]["min"] == 0 and r["stats"]["max"] == 255 and sharp > 500
    flat = diag.frame_stats(bytearray(b"\x80" * 64 * 48), 64, 48)
    assert flat["sharpness"] == 0 and flat["mean"] == 128


async def test_camera_failure_is_reported_not_raised():
    app = _app(FakeBoard(fail="Camera init failed: 0x105"))
    r = await _call(app, "diag.camera")
    assert not r["ok"] and "0x105" in r["error"]


async def test_selftest_drives_leds_buzzer_and_reads_the_builtin_code():
    board = FakeBoard()
    app = _app(board)
    r = await _call(app, "diag.selftest")
    assert r["ok"], r
    assert r["decoder"]["ok"] and r["camera"]["ok"]
    assert ("led", "ok") in board.events and ("led", "err") in board.events and ("led", None) in board.events
    assert ("tone", 2000) in board.events and ("tone", 0) in board.events


async def test_selftest_names_a_decoder_that_cannot_read():
    app = _app(decode=lambda g, w, h: [])
    r = await _call(app, "diag.selftest")
    assert not r["ok"] and not r["decoder"]["ok"] and r["leds"]["ok"]


async def test_snapshot_is_a_pgm_in_snapshot_chunks():
    app = _app(FakeBoard(w=64, h=48))
    r = await _call(app, "diag.snapshot")
    sent = app.link.wire.sent
    assert len(sent) == r["count"] and all(k == wire.SNAPSHOT for k, _ in sent)
    data = b"".join(d["data"] for _, d in sent)
    assert data.startswith(b"P5\n64 48\n255\n") and len(data) == r["bytes"] == 13 + 64 * 48
    r2 = await _call(app, "diag.snapshot", {"step": 2})
    assert r2["width"] == 32 and r2["height"] == 24 and r2["id"] != r["id"]


async def test_live_log_follows_app_events():
    app = _app()
    await _call(app, "diag.log", {"on": True})
    app._emit("result", {"seq": 4, "verdict": "accepted", "reason": "", "latency_ms": 80})
    app._emit("no_answer", {"seq": 5})
    assert any("result seq=4 accepted" in t for t in app.link.logs)
    await _call(app, "diag.log", {"on": False})
    n = len(app.link.logs)
    app._emit("result", {"seq": 6, "verdict": "accepted", "reason": "", "latency_ms": 1})
    assert len(app.link.logs) == n


def test_selftest_image_has_finder_patterns():
    gray, w, h = diag.selftest_image()
    assert w == h == (21 + 8) * 3
    assert gray[(4 * 3 + 1) * w + 4 * 3 + 1] == 0  # top-left finder corner is dark
    assert gray[0] == 255  # quiet zone
    gray, w, h = diag.selftest_image(width=320, height=240)  # the camera's frame size
    assert (w, h, len(gray)) == (320, 240, 320 * 240)
    ox, oy = (320 - 87) // 2 + 12, (240 - 87) // 2 + 12
    assert gray[(oy + 1) * w + ox + 1] == 0 and gray[oy * w + ox - 1] == 255
    assert diag.selftest_image(width=40, height=300)[1:] == (87, 87)  # too narrow: just the code


async def test_selftest_decodes_at_the_cameras_resolution_with_the_scanners_decoder():
    from scanbridge_fw import qr
    kept = qr.decoder_for(320, 240)
    app = _app(FakeBoard(w=320, h=240), decode=qr.decode)
    r = await _call(app, "diag.selftest")
    assert r["decoder"]["ok"], r
    assert qr.decoder_for(320, 240) is kept  # its buffers were not replaced for the self-test


async def test_a_degraded_scanner_reports_its_camera_and_health_still_fits_one_reply():
    from scanbridge_fw.hal.base import HalError

    class Broken(FakeBoard):
        def open_camera(self, frame_size):
            raise HalError("camera_init_failed", "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND) " + "x" * 200)
    app = _app(Broken())
    assert app.camera.open() is False
    for i in range(12):  # many long failures before the technician came
        diag.note_failure("camera fault camera_init_failed: Camera probe failed with error 0x105 %d %s" % (i, "y" * 200))
    app.last_error = "link: write " + "z" * 200
    r = await _call(app, "diag.health")
    cam = r["camera"]
    assert cam["fault"]["code"] == "camera_init_failed" and "0x105" in cam["fault"]["message"]
    assert cam["open"] is False and cam["recoveries"] == 0
    wire.encode_body(wire.REPLY, {"id": 1, "ok": True, "result": r})  # raises WireError("oversize") past MAX_BODY
    assert r["recent_failures"][-1].startswith("link: write") and len(r["recent_failures"]) >= 2  # newest kept
    info = await _call(app, "diag.info")
    assert info["camera"]["fault"]["code"] == "camera_init_failed"
    # diag.camera retries at once and names the fault when the camera still will not open
    c = await _call(app, "diag.camera")
    assert c["ok"] is False and c["error"].startswith("camera_init_failed: Camera probe failed")
    assert app.camera.retries == 1
