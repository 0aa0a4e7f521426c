"""The ESP32 board HALs with stand-ins for what cannot exist here (GPIO, PWM, the camera
driver): LED mapping from the profile (active-low red LED), buzzer, illumination, safe-boot
pin, and both camera driver APIs (cnadler86 `camera.Camera`, lemariva `camera.init`)."""
import asyncio
import importlib
import sys
import types

import time

import pytest

import scanbridge_fw.compat  # noqa: F401  imported before time gets MicroPython's names below
from scanbridge_hw import profiles


class FakePin:
    OUT, IN, PULL_UP = 1, 0, 2
    levels = {}  # pin -> level read by value()
    written = {}

    def __init__(self, n, mode=None, pull=None):
        self.n = n

    def value(self, v=None):
        if v is None:
            return FakePin.levels.get(self.n, 1)
        FakePin.written.setdefault(self.n, []).append(v)


class FakePWM:
    all = {}

    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin, self.f, self.d = pin.n, freq, duty_u16
        FakePWM.all[pin.n] = self

    def freq(self, f):
        self.f = f

    def duty_u16(self, d):
        self.d = d


@pytest.fixture
def machine(monkeypatch):
    m = types.ModuleType("machine")
    m.Pin, m.PWM = FakePin, FakePWM
    m.unique_id = lambda: b"\x24\xa1\x60\xc3\xd1\xf0"
    m.reset = lambda: None
    FakePin.levels, FakePin.written, FakePWM.all = {}, {}, {}
    monkeypatch.setitem(sys.modules, "machine", m)
    clock = [0]
    monkeypatch.setattr(time, "sleep_ms", lambda ms: clock.__setitem__(0, clock[0] + ms), raising=False)
    monkeypatch.setattr(time, "ticks_ms", lambda: clock[0], raising=False)
    monkeypatch.setattr(time, "ticks_diff", lambda a, b: a - b, raising=False)
    for name in ("scanbridge_fw.hal.esp32", "scanbridge_fw.hal.esp32cam", "scanbridge_fw.hal.esp32s3"):
        sys.modules.pop(name, None)
    yield m
    for name in ("scanbridge_fw.hal.esp32", "scanbridge_fw.hal.esp32cam", "scanbridge_fw.hal.esp32s3"):
        sys.modules.pop(name, None)


def _board(profile_id):
    from scanbridge_fw import start
    return start.make_board(profiles.load(profile_id))


def test_esp32cam_leds_buzzer_light(machine):
    b = _board("ai-thinker-esp32-cam")
    assert b.name == "ai-thinker-esp32-cam" and b.unique_id() == "24a160c3d1f0"
    FakePin.written.clear()
    b.led("err")
    assert FakePin.written[33][-1] == 0  # red LED is active-low: 0 lights it
    assert FakePin.written[14][-1] == 0  # green off
    b.led("ok")
    assert FakePin.written[33][-1] == 1 and FakePin.written[14][-1] == 1
    b.led(None)
    assert FakePin.written[33][-1] == 1 and FakePin.written[14][-1] == 0
    b.tone(2700)
    assert FakePWM.all[13].f == 2700 and FakePWM.all[13].d > 0
    b.tone(0)
    assert FakePWM.all[13].d == 0
    b.light(True)
    assert 0 < FakePWM.all[4].d < 65535 * 0.05  # flash LED dimmed (duty 0.04)
    b.light(False)
    assert FakePWM.all[4].d == 0


def test_safe_boot_pin(machine):
    b = _board("freenove-esp32-s3-wroom-cam")
    FakePin.levels[0] = 1
    FakePin.written.clear()
    assert b.safe_boot_requested() is False  # watched for the whole window (fake clock)
    assert FakePin.written[2][0] == 1 and FakePin.written[2][-1] == 0  # busy LED lit, then off
    FakePin.levels[0] = 0  # BOOT held
    assert b.safe_boot_requested() is True


def _camera_module(monkeypatch, mod):
    monkeypatch.setitem(sys.modules, "camera", mod)
    import scanbridge_fw.hal.camera as cam
    return importlib.reload(cam)


def test_cnadler_camera_driver(machine, monkeypatch):
    calls = {}

    class Camera:
        def __init__(self, **kw):
            calls.update(kw)
            self.pixel_width, self.pixel_height = 320, 240

        def capture(self):
            return memoryview(bytes(320 * 240))
    mod = types.SimpleNamespace(Camera=Camera, PixelFormat=types.SimpleNamespace(GRAYSCALE=7),
                                FrameSize=types.SimpleNamespace(QVGA=5))
    cam = _camera_module(monkeypatch, mod)
    profile = profiles.load("ai-thinker-esp32-cam")
    c = cam.open_camera(profile["camera"], "QVGA")
    assert calls["data_pins"] == [5, 18, 19, 21, 36, 39, 34, 35] and calls["xclk_pin"] == 0
    assert calls["powerdown_pin"] == 32 and calls["pixel_format"] == 7 and calls["frame_size"] == 5
    buf, w, h = asyncio.run(c.capture())
    assert (w, h) == (320, 240) and len(buf) == 320 * 240


def test_cnadler_camera_gives_one_sensor_jpeg_for_host_assist_then_back_to_gray(machine, monkeypatch):
    fmt = types.SimpleNamespace(GRAYSCALE=7, JPEG=4)

    class Camera:
        def __init__(self, **kw):
            self.format = kw["pixel_format"]
            self.switches = []
            self.pixel_width, self.pixel_height = 320, 240

        def reconfigure(self, pixel_format):
            self.switches.append(pixel_format)
            self.format = pixel_format

        def capture(self):
            if self.format == fmt.JPEG:
                return memoryview(b"\xff\xd8JPEG-BODY\xff\xd9")
            return memoryview(bytes(320 * 240))
    mod = types.SimpleNamespace(Camera=Camera, PixelFormat=fmt, FrameSize=types.SimpleNamespace(QVGA=5))
    _camera_module(monkeypatch, mod)
    b = _board("ai-thinker-esp32-cam")
    assert not b.can_capture_jpeg()  # no camera open yet
    b.open_camera("QVGA")
    assert b.can_capture_jpeg()
    jpeg = asyncio.run(b.capture_jpeg())
    assert jpeg == b"\xff\xd8JPEG-BODY\xff\xd9" and isinstance(jpeg, bytes)
    assert b._camera.cam.switches == [fmt.JPEG, fmt.GRAYSCALE]
    buf, w, h = asyncio.run(b.capture())  # decoding goes on in gray
    assert len(buf) == w * h == 320 * 240


def test_lemariva_camera_driver_and_failures(machine, monkeypatch):
    state = {"ok": True}
    mod = types.SimpleNamespace(GRAYSCALE=1, FRAME_QVGA=2, PSRAM=3,
                                init=lambda *a, **kw: state["ok"], capture=lambda: b"\x80" * 10)
    cam = _camera_module(monkeypatch, mod)
    c = cam.open_camera(profiles.load("ai-thinker-esp32-cam")["camera"], "QVGA")
    assert asyncio.run(c.capture())[1:] == (320, 240)
    state["ok"] = False
    from scanbridge_fw.hal.base import HalError
    with pytest.raises(HalError) as e:
        cam.open_camera(profiles.load("ai-thinker-esp32-cam")["camera"], "QVGA")
    assert e.value.code == "camera_init_failed"
    monkeypatch.setitem(sys.modules, "camera", None)  # a MicroPython image without a camera module
    with pytest.raises(HalError) as e:
        cam.open_camera({}, "QVGA")
    assert e.value.code == "no_camera_driver"


def test_camera_reopened_after_a_failed_probe_recovers(machine, monkeypatch):
    """The ESP32-CAM HAL under the camera guard: a probe that fails (ribbon loose) is a fault with
    the driver's text; each retry powers the sensor down and up (PWDN GPIO32) and deinits the
    driver; once the probe answers, frames flow without a reboot."""
    state = {"fail": True, "deinit": 0}

    class Camera:
        def __init__(self, **kw):
            if state["fail"]:
                raise OSError("Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")
            self.pixel_width, self.pixel_height = 320, 240

        def capture(self):
            return memoryview(bytes(320 * 240))

        def deinit(self):
            state["deinit"] += 1
    mod = types.SimpleNamespace(Camera=Camera, PixelFormat=types.SimpleNamespace(GRAYSCALE=7),
                                FrameSize=types.SimpleNamespace(QVGA=5))
    _camera_module(monkeypatch, mod)
    sys.modules.pop("scanbridge_fw.hal.esp32", None)
    sys.modules.pop("scanbridge_fw.hal.esp32cam", None)
    from scanbridge_fw import config
    from scanbridge_fw.hal.camera_guard import CameraGuard
    b = _board("ai-thinker-esp32-cam")
    FakePin.written.clear()
    cfg = dict(config.defaults(), camera_retry_ms=50)
    g = CameraGuard(b, cfg)
    assert g.open() is False
    assert g.fault["code"] == "camera_init_failed" and "0x105" in g.fault["message"]
    assert FakePin.written[32] == [1, 0]  # PWDN pulsed before the probe
    state["fail"] = False  # reseated
    frame = asyncio.run(g.capture(now=True))
    assert frame is not None and frame[1:] == (320, 240) and g.fault is None
    assert FakePin.written[32] == [1, 0, 1, 0]  # pulsed again for the retry
    g.close()
    assert state["deinit"] == 1 and b._camera is None


def test_a_missing_corrupt_or_unknown_board_profile_still_gives_a_board_that_links(machine, tmp_path, monkeypatch):
    """No /board.json, a corrupt one, or a HAL this firmware does not have: start runs on a bare
    board (the REPL's stdio as its link, no LEDs) whose camera fault names the problem, so HELLO
    tells the bridge and diag gives the fix, instead of the scanner going silent."""
    from scanbridge_fw import start
    from scanbridge_fw.hal import base
    from scanbridge_fw.hal.base import HalError
    from scanbridge_tools.diagnostics.failures import explain_fault
    cases = {"profile_missing": None, "profile_corrupt": "{not json", "profile_invalid": '{"id": "x", "hal": "esp8266", '
             '"chip": "ESP8266", "camera": {}, "leds": {}, "serial": {}}'}
    for code, text in cases.items():
        path = tmp_path / ("%s.json" % code)
        if text is not None:
            path.write_text(text)
        monkeypatch.setattr(base, "PROFILE_PATH", str(path))
        monkeypatch.setattr(start, "load_profile", lambda p=str(path): base.load_profile(p))
        board = start.board_or_fallback()
        assert board.name == "unknown" and board.safe_boot_requested() is False
        board.led("err")  # no LEDs: nothing to light, nothing raised
        with pytest.raises(HalError) as e:
            board.open_camera("QVGA")
        assert e.value.code == code, (code, e.value.code, e.value.message)
        camera = start.open_camera(board, __import__("scanbridge_fw.config", None, None, ["defaults"]).defaults())
        assert camera.fault["code"] == code
        found = explain_fault(camera.fault)
        assert found["id"] == "no_board_profile" and "flash provision" in found["fix"]
