# Keeps the camera usable without a reboot. A camera that will not open (ribbon loose, wrong
# board profile, sensor not detected, no PSRAM) or stops giving frames is not a crash: the app
# keeps its link up and reports a stable fault code, and this guard retries the camera with
# backoff, so a reseated cable recovers on its own. Fault codes (docs/firmware.md):
#   camera_init_failed     the driver refused to open the camera (its message says why)
#   no_camera_driver       the MicroPython image has no camera module
#   camera_capture_failed  the camera opened but camera_fail_limit captures in a row failed
from scanbridge_fw import config
from scanbridge_fw.compat import sleep_ms, ticks_add, ticks_diff, ticks_ms

INIT_FAILED = "camera_init_failed"
CAPTURE_FAILED = "camera_capture_failed"
_MESSAGE_MAX = 160  # in HELLO and diagnostics
_STATUS_MESSAGE_MAX = 64  # it rides in every STATUS, which must stay under wire.MAX_BODY
_WAIT_STEP_MS = 200  # a degraded capture() sleeps at most this long, so the app loop stays live

config.register("camera_retry_ms", 2000, "int", 50, 600000)  # first retry after a camera fault
config.register("camera_retry_max_ms", 60000, "int", 50, 3600000)  # backoff doubles up to this
config.register("camera_fail_limit", 10, "int", 1, 1000)  # failed captures in a row = a fault


def _code_message(e, default_code):
    code = getattr(e, "code", None)
    message = getattr(e, "message", None)
    if not isinstance(code, str) or not code:
        code = default_code
    if message is None:
        message = "%s: %s" % (type(e).__name__, e)
    return code, str(message)


def _unwatched(fault):
    pass


class CameraGuard:
    """Opens the camera through the board and hands out frames; degraded instead of dead.

    capture() returns a frame (buffer, width, height) or None. While the camera is faulty it
    returns None after a short sleep and reopens the camera when the next retry is due
    (camera_retry_ms, doubling up to camera_retry_max_ms). The first good frame clears the fault.
    on_change(fault) is called with the fault dict, or None on recovery."""

    def __init__(self, board, cfg=None, counts=None):
        self.board = board
        self.configure(cfg or config.defaults())
        self.counts = counts if counts is not None else {}
        if "capture_failed" not in self.counts:
            self.counts["capture_failed"] = 0
        self.retries = 0  # reopen attempts, ever (the fault's own "retries" counts this fault's)
        self.recoveries = 0  # faults that ended
        self.on_change = _unwatched
        self.fault = None  # {"code", "message", "retries"} while degraded
        self.last_fault = None  # "code: message" of the latest fault, kept after recovery
        self.last_failure = None  # why the latest open or capture failed (diagnostics)
        self.is_open = False
        self.tried = False  # open() was called at least once
        self.failed_run = 0  # failed captures in a row
        self._delay = self.retry_ms
        self._next_try = ticks_ms()

    def configure(self, cfg):
        """Take the camera_* settings (frame_size applies at the next open)."""
        self.frame_size = cfg.get("frame_size", "QVGA")
        self.retry_ms = cfg.get("camera_retry_ms", 2000)
        self.retry_max_ms = max(cfg.get("camera_retry_max_ms", 60000), self.retry_ms)
        self.fail_limit = cfg.get("camera_fail_limit", 10)

    # -- state
    def info(self, full=False):
        """The fault for STATUS (message cut short) or, full=True, diagnostics; None when the
        camera works."""
        f = self.fault
        if f is None:
            return None
        message = f["message"] if full else f["message"][:_STATUS_MESSAGE_MAX]
        return {"code": f["code"], "message": message, "retries": f["retries"],
                "retry_in_ms": 0 if self.is_open else max(0, ticks_diff(self._next_try, ticks_ms()))}

    def _set_fault(self, code, message):
        message = message[:_MESSAGE_MAX]
        self.last_fault = code + ": " + message
        old = self.fault
        if old is not None and old["code"] == code and old["message"] == message:
            return
        retries = old["retries"] if old is not None else 0
        self.fault = {"code": code, "message": message, "retries": retries}
        self.on_change(self.fault)

    def _clear_fault(self):
        self._delay = self.retry_ms
        if self.fault is None:
            return
        self.fault = None
        self.recoveries += 1
        self.on_change(None)

    def _schedule_retry(self):
        self._next_try = ticks_add(ticks_ms(), self._delay)
        self._delay = min(self._delay * 2, self.retry_max_ms)

    # -- the camera
    def open(self):
        """Open the camera now. True on success; else the fault is set and a retry scheduled."""
        self.tried = True
        self.close()
        fn = getattr(self.board, "open_camera", None)
        if fn is not None:
            try:
                fn(self.frame_size)
            except Exception as e:  # HalError from the driver, or whatever it raised instead
                code, message = _code_message(e, INIT_FAILED)
                self.last_failure = "%s: %s" % (code, message)
                self._set_fault(code, message)
                self._schedule_retry()
                return False
        self.is_open = True
        self.failed_run = 0
        return True

    def close(self):
        if not self.is_open:
            return
        self.is_open = False
        fn = getattr(self.board, "close_camera", None)
        if fn is not None:
            try:
                fn()
            except Exception:  # a driver that cannot even deinit: the reopen will say more
                pass

    def _retry(self):
        if self.fault is not None:
            self.fault["retries"] += 1
        self.retries += 1
        return self.open()

    async def capture(self, now=False):
        """A frame, or None (failed, or waiting for the next retry). now=True: reopen at once
        when the camera is closed (a technician's diagnostic asks)."""
        if not self.is_open:
            if not now:
                wait = ticks_diff(self._next_try, ticks_ms())
                if wait > 0:
                    await sleep_ms(wait if wait < _WAIT_STEP_MS else _WAIT_STEP_MS)
                    return None
            if not self._retry():
                return None
        err = None
        try:
            frame = await self.board.capture()
        except Exception as e:  # the driver raised (timeout, DMA, sensor gone)
            frame = None
            err = e
        if frame is not None:
            self.failed_run = 0
            self._clear_fault()
            return frame
        self.counts["capture_failed"] += 1
        self.failed_run += 1
        why = "no frame" if err is None else _code_message(err, CAPTURE_FAILED)[1]
        self.last_failure = "capture: " + why
        if self.failed_run >= self.fail_limit:
            # the driver's words first: STATUS keeps only the start of the message
            self._set_fault(CAPTURE_FAILED, "%s (%d failed captures in a row)" % (why, self.failed_run))
            self.close()
            self._schedule_retry()
        return None
