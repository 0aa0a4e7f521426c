"""Talk to a scanner over its USB serial port with the wire protocol (wire.Link): commands and
replies, LOG and STATUS lines, SNAPSHOT chunks, link statistics, and the text the board prints
outside frames (ROM boot messages such as the brownout detector, camera driver errors)."""
from __future__ import annotations

import os
import time

import serial

from scanbridge_fw import wire
from scanbridge_tools.diagnostics.errors import DiagError

RAW_KEEP = 8192  # bytes of raw line text kept for known-failure matching


def _now_ms():
    return int(time.monotonic() * 1000) & 0x3FFFFFFF


class SerialDiag:
    kind = "serial"

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 5.0):
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.link = wire.Link({"tool": "scanbridge-diag"}, int.from_bytes(os.urandom(4), "big"), rto_ms=200)
        self.ser = None
        self.logs: list[str] = []
        self.statuses: list[dict] = []
        self.snapshots: dict[int, dict] = {}  # id -> {index: bytes, "count": n}
        self.raw = bytearray()
        self._replies: dict[int, dict] = {}
        self._next_id = 1
        self.on_log = None

    def open(self):
        if not os.path.exists(self.port) and not self.port.startswith("COM"):
            raise DiagError("port_not_found", "%s does not exist" % self.port,
                            "plug the scanner in; `scanbridge ports` lists scanners by USB id")
        s = serial.Serial()
        s.port = self.port
        s.baudrate = self.baud
        s.timeout = 0.02
        s.dtr = False  # an ESP32-CAM-MB resets or holds the ESP32 in the bootloader otherwise
        s.rts = False
        s.exclusive = True
        try:
            s.open()
        except (serial.SerialException, OSError) as e:
            raise DiagError("port_busy", "cannot open %s: %s" % (self.port, e),
                            "stop `scanbridge run` (it holds the port) or diagnose over MQTT")
        self.ser = s
        self.link.start(ask=True)
        deadline = time.monotonic() + self.timeout_s
        while self.link.peer is None:
            if time.monotonic() > deadline:
                raise DiagError("no_answer", "no scanner HELLO on %s within %.0f s" % (self.port, self.timeout_s),
                                "is the app running? a board at the REPL or in the bootloader does not answer; "
                                "try `scanbridge flash deploy`, check the baud rate and the cable")
            self.pump(0.05)
        return self

    def close(self):
        if self.ser is not None:
            self.ser.close()
            self.ser = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    @property
    def hello(self) -> dict:
        return self.link.peer or {}

    def pump(self, seconds: float):
        """Move bytes both ways for `seconds` and take what arrives."""
        end = time.monotonic() + seconds
        while True:
            out = self.link.poll(_now_ms())
            if out:
                self.ser.write(out)
            data = self.ser.read(4096)
            if data:
                self.raw += data
                del self.raw[:-RAW_KEEP]
                for msg in self.link.receive(data, _now_ms()):
                    self._take(msg)
            if time.monotonic() >= end:
                return

    def _take(self, msg):
        if msg.kind == wire.REPLY:
            self._replies[msg.data.get("id")] = msg.data
        elif msg.kind == wire.LOG:
            self.logs.append(msg.data["text"])
            if self.on_log:
                self.on_log(msg.data["text"])
        elif msg.kind == wire.STATUS:
            self.statuses.append(msg.data)
        elif msg.kind == wire.SNAPSHOT:
            d = msg.data
            s = self.snapshots.setdefault(d["id"], {"count": d["count"], "parts": {}})
            s["parts"][d["index"]] = d["data"]

    def command(self, cmd: str, args: dict | None = None, timeout_s: float | None = None):
        """Send a COMMAND; return its result or raise DiagError with the device's reason."""
        cid = self._next_id
        self._next_id += 1
        t0 = time.monotonic()
        self.link.send(wire.COMMAND, {"id": cid, "cmd": cmd, "args": args or {}})
        deadline = t0 + (timeout_s or self.timeout_s)
        while cid not in self._replies:
            if time.monotonic() > deadline:
                raise DiagError("no_answer", "%s: no reply within %.0f s" % (cmd, timeout_s or self.timeout_s),
                                "the scanner stopped answering: check power (brownout) and the cable")
            self.pump(0.01)
        r = self._replies.pop(cid)
        if not r.get("ok"):
            err = r.get("error") or {}
            raise DiagError(err.get("code", "command_failed"), "%s: %s" % (cmd, err.get("message", "")))
        return r.get("result")

    def stats(self) -> dict:
        return self.link.stats()

    def raw_text(self) -> str:
        return bytes(self.raw).decode("latin-1")
