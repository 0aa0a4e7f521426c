# The camera guard (firmware/hal/camera_guard.py): a camera that will not open or stops giving
# frames is a fault with a stable code and the driver's message, retried with backoff, and the
# first good frame clears it. Plain asserts: the same file runs inside MicroPython.
from scanbridge_fw import config
from scanbridge_fw.hal.base import HalError
from scanbridge_fw.hal.camera_guard import CAPTURE_FAILED, INIT_FAILED, CameraGuard

PROBE_0x105 = "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND) (check power and the board pin map)"


class Board:
    """open_fails: opens that raise (-1: every one); capture_fails: captures that give None."""

    def __init__(self, open_fails=0, capture_fails=0, raise_on_capture=None):
        self.open_fails = open_fails
        self.capture_fails = capture_fails
        self.raise_on_capture = raise_on_capture
        self.opens = 0
        self.closes = 0
        self.captures = 0

    def open_camera(self, frame_size):
        self.opens += 1
        if self.open_fails:
            self.open_fails -= 1 if self.open_fails > 0 else 0
            raise HalError("camera_init_failed", PROBE_0x105)

    def close_camera(self):
        self.closes += 1

    async def capture(self):
        self.captures += 1
        if self.capture_fails:
            self.capture_fails -= 1
            if self.raise_on_capture:
                raise OSError(self.raise_on_capture)
            return None
        return b"\x80" * 12, 4, 3


def _guard(board, **over):
    cfg = config.defaults()
    cfg["camera_retry_ms"] = 50
    cfg["camera_retry_max_ms"] = 200
    cfg["camera_fail_limit"] = 3
    for k in over:
        cfg[k] = over[k]
    g = CameraGuard(board, cfg)
    changes = []
    g.on_change = lambda f: changes.append(None if f is None else f["code"])
    return g, changes


async def _capture_until(g, cond, limit=200):
    for _ in range(limit):
        frame = await g.capture()
        if cond(frame):
            return frame
    return None


def test_camera_settings_are_registered_and_checked():
    cfg = config.defaults()
    assert cfg["camera_retry_ms"] == 2000 and cfg["camera_retry_max_ms"] == 60000 and cfg["camera_fail_limit"] == 10
    try:
        config.check("camera_fail_limit", 0)
        assert False, "expected ConfigError"
    except config.ConfigError as e:
        assert e.code == "config_invalid"


def test_open_failure_is_a_fault_with_the_drivers_message():
    board = Board(open_fails=-1)
    g, changes = _guard(board)
    assert g.open() is False
    assert not g.is_open and g.fault["code"] == INIT_FAILED
    assert "0x105" in g.fault["message"]
    info = g.info()
    assert info["code"] == INIT_FAILED and info["retries"] == 0 and 0 < info["retry_in_ms"] <= 50
    assert changes == [INIT_FAILED]
    assert g.last_fault.startswith("camera_init_failed: Camera probe failed")


async def test_retries_back_off_up_to_the_maximum():
    g, changes = _guard(Board(open_fails=-1), camera_retry_ms=1000, camera_retry_max_ms=4000)
    g.open()
    waits = [g.info()["retry_in_ms"]]
    for _ in range(3):
        assert await g.capture(now=True) is None  # a retry that fails again
        waits.append(g.info()["retry_in_ms"])
    # next retry after 1 s, 2 s, 4 s, 4 s (each read a moment after it was scheduled)
    for got, want in zip(waits, (1000, 2000, 4000, 4000)):
        assert want // 2 < got <= want, waits
    assert g.fault["retries"] == 3 and g.retries == 3
    assert changes == [INIT_FAILED]  # the same fault again is not a new change


async def test_a_waiting_guard_does_not_touch_the_camera():
    board = Board(open_fails=-1)
    g, _ = _guard(board, camera_retry_ms=5000)
    g.open()
    assert await g.capture() is None
    assert board.opens == 1 and board.captures == 0


async def test_reseated_camera_recovers_without_reboot():
    board = Board(open_fails=2)  # the cable is reseated after two retries
    g, changes = _guard(board)
    assert g.open() is False
    frame = await _capture_until(g, lambda f: f is not None)
    assert frame is not None and frame[1:] == (4, 3)
    assert g.fault is None and g.info() is None and g.is_open
    assert changes == [INIT_FAILED, None]
    assert board.opens == 3 and g.recoveries == 1
    assert g.last_fault.startswith(INIT_FAILED)  # remembered for diagnostics


async def test_a_few_failed_captures_are_counted_not_a_fault():
    g, changes = _guard(Board(capture_fails=2))
    g.open()
    assert await g.capture() is None and await g.capture() is None
    assert await g.capture() is not None
    assert g.fault is None and changes == [] and g.counts["capture_failed"] == 2


async def test_run_of_failed_captures_is_a_fault_then_recovers():
    board = Board(capture_fails=5, raise_on_capture="ETIMEDOUT")
    g, changes = _guard(board)
    g.open()
    for _ in range(3):
        assert await g.capture() is None
    assert g.fault["code"] == CAPTURE_FAILED and "(3 failed captures in a row)" in g.fault["message"]
    assert "ETIMEDOUT" in g.fault["message"]
    assert not g.is_open and board.closes == 1  # closed, to be reopened from scratch
    frame = await _capture_until(g, lambda f: f is not None)
    assert frame is not None and g.fault is None and changes == [CAPTURE_FAILED, None]
    assert board.opens >= 2 and g.counts["capture_failed"] == 5


def test_a_board_without_open_camera_is_always_open():
    class Plain:
        async def capture(self):
            return b"", 0, 0
    g, changes = _guard(Plain())
    assert g.open() is True and g.is_open and g.fault is None and changes == []
