"""The virtual board: the firmware's HAL on the host. Its camera plays frames from a stream,
its LEDs and buzzer are recorded (so tests and the demo can see what a customer would), and
its serial port is a pty (pty_port.PtyPort)."""
from __future__ import annotations

import asyncio
import time
from collections import deque

from scanbridge_fw.hal.base import Board


class VirtualBoard(Board):
    name = "virtual"
    caps = ("scan", "status", "commands", "virtual")

    def __init__(self, frames, port, device_id="virtual-0001", fps=15.0):
        super().__init__(None)
        self._frames = iter(frames)
        self.port = port
        self.device_id = device_id
        self.fps = fps
        self.current = None  # the Frame last captured
        self.feedback = deque(maxlen=200)  # (monotonic s, "led"|"tone"|"light", value)
        self.captures = 0
        self.reset_requested = False

    async def capture(self):
        if self.fps:
            await asyncio.sleep(1.0 / self.fps)
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
