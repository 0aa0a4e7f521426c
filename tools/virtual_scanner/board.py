"""The virtual board: the firmware's HAL on the host. Its camera plays frames from a stream,
its LEDs and buzzer are recorded (so tests and the demo can see what a customer would), and
its serial port is a pty (pty_port.PtyPort)."""
from __future__ import annotations

import asyncio
import time
from collections import deque

from scanbridge_fw.hal.base import Board, HalError

# What the ESP32 HAL raises when the OV2640 does not answer its probe (hal/camera.py wording).
PROBE_FAILED = "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND) (check power and the board pin map)"


class VirtualBoard(Board):
    name = "virtual"
    caps = ("scan", "status", "commands", "virtual")

    def __init__(self, frames, port, device_id="virtual-0001", fps=15.0, camera_open_failures=0,
                 camera_capture_failures=0):
        super().__init__(None)
        # A simulated camera fault: opens that fail (-1: every one until heal_camera()), then
        # captures that give no frame (a driver timeout), as a loose ribbon cable would.
        self.open_failures = camera_open_failures
        self.capture_failures = camera_capture_failures
        self.open_error = PROBE_FAILED
        self.camera_opens = 0
        self.camera_open = False
        self._frames = iter(frames)
        self.port = port
        self.device_id = device_id
        self.fps = fps
        self.current = None  # the Frame last captured
        self.feedback = deque(maxlen=200)  # (monotonic s, "led"|"tone"|"light", value)
        self.captures = 0
        self.reset_requested = False

    def open_camera(self, frame_size):
        self.camera_opens += 1
        if self.open_failures:
            if self.open_failures > 0:
                self.open_failures -= 1
            raise HalError("camera_init_failed", self.open_error)
        self.camera_open = True

    def close_camera(self):
        self.camera_open = False

    def fail_camera(self, opens=0, captures=0, message=None):
        """Make the next `opens` opens (-1: all) and then `captures` captures fail."""
        self.open_failures = opens
        self.capture_failures = captures
        if message:
            self.open_error = message

    def heal_camera(self):
        """The technician reseated the cable: the next retry opens and frames flow."""
        self.open_failures = 0
        self.capture_failures = 0

    async def capture(self):
        if self.fps:
            await asyncio.sleep(1.0 / self.fps)
        if self.capture_failures:
            self.capture_failures -= 1
            return None
        self.current = next(self._frames)
        self.captures += 1
        f = self.current
        return f.gray, f.width, f.height

    def serial_port(self):
        return self.port

    def led(self, name):
        self.feedback.append((time.monotonic(), "led", name))

    def tone(self, hz):
        if hz:
            self.feedback.append((time.monotonic(), "tone", hz))

    def light(self, on):
        self.feedback.append((time.monotonic(), "light", bool(on)))

    def unique_id(self):
        return self.device_id

    def reset(self):
        self.reset_requested = True
