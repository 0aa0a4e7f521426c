"""The bridge's serial link: one thread per port, pyserial, wire.Link for frames/acks/retransmit.

A scanner on a port says HELLO (its id); each SCAN becomes a ScanEvent for the ScanService and
the verdict goes back as a RESULT at once. The port is opened with DTR and RTS deasserted (an
ESP32-CAM-MB resets or hangs the ESP32 otherwise). When the port vanishes (unplug) the thread
reopens it until it is back, says HELLO again and retransmits what the scanner has not
acknowledged; the wire.Link (and its unacked RESULTs) lives as long as the SerialLink does."""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import Callable, Optional

import serial

from scanbridge import __version__
from scanbridge.scan import ACCEPTED, PENDING, REJECTED, ScanEvent, ScanService, Verdict
from scanbridge_fw import wire

log = logging.getLogger("scanbridge.serial")

VERDICT_CODES = {ACCEPTED: wire.ACCEPTED, REJECTED: wire.REJECTED, PENDING: wire.PENDING}
_HELD_MAX = 32  # scans received before the scanner's HELLO (a bridge restart mid-retransmit)


def _now_ms() -> int:
    return int(time.monotonic() * 1000) & 0x3FFFFFFF


class SerialLink:
    """One port, one scanner. start() runs it in a thread; stop() ends it."""

    def __init__(self, port: str, service: ScanService, baud: int = 115200,
                 on_event: Optional[Callable[[str, dict], None]] = None,
                 reopen_s: float = 0.3, rto_ms: int = 300, read_timeout_s: float = 0.02):
        self.port = port
        self.service = service
        self.baud = baud
        self.on_event = on_event or (lambda kind, data: None)
        self.reopen_s = reopen_s
        self.read_timeout_s = read_timeout_s
        session = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        self.wire = wire.Link({"bridge": "scanbridge", "version": __version__}, session, rto_ms=rto_ms)
        self.name = "serial:" + port
        self.device_id: Optional[str] = None
        self.device: dict = {}
        self.last_status: dict = {}
        self.connected = False
        self.opens = 0
        self.errors: list[str] = []  # recent, bounded; reason codes with text
        self._peer_session = None
        self._held: list[wire.Message] = []
        self._wire_errors_seen: list = []
        self._ser: Optional[serial.Serial] = None
        self._lock = threading.RLock()  # wire.Link and the port's write side
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cmd_ids = itertools.count(1)
        self._replies: dict[int, list] = {}  # id -> [Event, reply]

    # -- lifecycle
    def start(self) -> "SerialLink":
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()
        if self.device_id:
            self.service.detach_device(self.device_id, self._send_result)

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """True once a scanner has said HELLO on this port."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.device_id is not None and self.connected:
                return True
            time.sleep(0.01)
        return False

    # -- commands to the scanner (diagnostics, config)
    def command(self, cmd: str, args: Optional[dict] = None, timeout: float = 5.0) -> dict:
        """Send a COMMAND and wait for its REPLY ({id, ok, result | error})."""
        cid = next(self._cmd_ids)
        slot = [threading.Event(), None]
        self._replies[cid] = slot
        try:
            with self._lock:
                self.wire.send(wire.COMMAND, {"id": cid, "cmd": cmd, "args": args or {}})
                self._flush()
            if not slot[0].wait(timeout):
                return {"id": cid, "ok": False, "error": {"code": "timeout", "message": "no reply in %.1f s" % timeout}}
            return slot[1]
        finally:
            self._replies.pop(cid, None)

    # -- the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._open()
                self._serve()
            except (serial.SerialException, OSError) as e:
                if self.connected:
                    self._error("port_lost", str(e))
                    self.on_event("disconnected", {"port": self.port, "reason": str(e)})
                    log.warning("%s: lost (%s); reopening", self.port, e)
            except Exception as e:  # a bug must not silently end this port's thread
                log.exception("%s: link error; reopening", self.port)
                self._error("internal_error", repr(e))
            finally:
                self._close()
            self._stop.wait(self.reopen_s)

    def _open(self) -> None:
        ser = serial.Serial()
        ser.port = self.port
        ser.baudrate = self.baud
        ser.timeout = self.read_timeout_s
        ser.write_timeout = 1.0
        ser.dtr = False  # set before open(): pyserial asserts both by default
        ser.rts = False
        ser.open()
        with self._lock:
            self._ser = ser
            self.connected = True
            self.opens += 1
            self.wire.start(ask=True)  # re-HELLO on every (re)open; the scanner answers with its own
            self.wire.reset_timer(_now_ms())  # and whatever was unacked goes again now
            self._flush()
        self.on_event("opened", {"port": self.port, "opens": self.opens})

    def _close(self) -> None:
        with self._lock:
            ser, self._ser = self._ser, None
            self.connected = False
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

    def _serve(self) -> None:
        ser = self._ser
        assert ser is not None
        while not self._stop.is_set():
            data = ser.read(ser.in_waiting or 1)
            if data and ser.in_waiting:
                data += ser.read(ser.in_waiting)
            t_rx = time.monotonic()
            if data:
                with self._lock:
                    msgs = self.wire.receive(data, _now_ms())
                    self._flush()  # acks first
                    self._report_wire_errors()
                for msg in msgs:
                    try:
                        self._handle(msg, t_rx)
                    except (serial.SerialException, OSError):
                        raise
                    except Exception as e:  # e.g. a listener's bug: report, keep serving
                        log.exception("%s: handling %s", self.port, msg.name)
                        self._error("internal_error", "%s: %r" % (msg.name, e))
            with self._lock:
                if self.wire.next_deadline(_now_ms()) == 0:
                    self._flush()

    def _flush(self) -> None:
        # Caller holds the lock. Nothing is polled out of wire.Link while the port is closed,
        # so retransmission resumes on reopen instead of writing into the void.
        if self._ser is None:
            return
        out = self.wire.poll(_now_ms())
        if out:
            self._ser.write(out)

    # -- messages
    def _handle(self, msg: wire.Message, t_rx: float) -> None:
        kind = msg.kind
        if kind == wire.HELLO:
            self._hello(msg.data)
        elif kind == wire.SCAN:
            if self.device_id is None:
                if len(self._held) >= _HELD_MAX:
                    self._error("held_overflow", "scans before HELLO: dropped the oldest")
                    self._held.pop(0)
                self._held.append(msg)
            else:
                self._scan(msg, t_rx)
        elif kind == wire.STATUS:
            self.last_status = msg.data
            self.on_event("status", {"device": self.device_id, "status": msg.data})
        elif kind == wire.REPLY:
            slot = self._replies.get(msg.data.get("id"))
            if slot is not None:
                slot[1] = msg.data
                slot[0].set()
        elif kind == wire.LOG:
            log.info("%s: %s", self.device_id or self.port, msg.data.get("text", ""))
            self.on_event("log", {"device": self.device_id, "text": msg.data.get("text", "")})
        elif kind == wire.ERROR:
            self._error(str(msg.data.get("code")), "scanner says: %s" % msg.data.get("message", ""))
        elif kind == wire.SNAPSHOT:
            self.on_event("snapshot", {"device": self.device_id, **msg.data})

    def _hello(self, data: dict) -> None:
        device_id = str(data.get("device") or "unknown@" + self.port)
        session = data.get("session")
        if session != self._peer_session:
            if self._peer_session is not None:
                # The scanner restarted: RESULTs still queued were for scans of its past life,
                # and its new RESULT numbers would collide with them.
                with self._lock:
                    dropped = self.wire.forget(wire.RESULT)
                if dropped:
                    self._error("stale_results", "scanner restarted; %d unacked RESULTs dropped" % dropped)
            self._peer_session = session
        if self.device_id and self.device_id != device_id:
            self.service.detach_device(self.device_id, self._send_result)
        self.device_id = device_id
        self.device = dict(data)
        self.service.attach_device(device_id, self._send_result)
        self.on_event("hello", {"device": device_id, "hello": data, "port": self.port})
        held, self._held = self._held, []
        for msg in held:
            self._scan(msg, time.monotonic())

    def _scan(self, msg: wire.Message, t_rx: float) -> None:
        d = msg.data
        assert self.device_id is not None
        event = ScanEvent(device_id=self.device_id, link=self.name, seq=msg.seq,
                          payload=d["payload"], decode_ms=d.get("decode_ms", 0),
                          quality=d.get("quality", 0), received_mono=t_rx,
                          session=self._peer_session if isinstance(self._peer_session, int) else 0)
        verdict = self.service.handle(event)
        self._send_result(event, verdict)

    def _send_result(self, scan: ScanEvent, verdict: Verdict) -> None:
        data = {"scan_seq": scan.seq, "verdict": VERDICT_CODES.get(verdict.verdict, wire.REJECTED),
                "reason": verdict.reason, "text": verdict.text}
        with self._lock:
            try:
                self.wire.send(wire.RESULT, data)
            except wire.WireError as e:  # the scanner stopped acking 16 messages ago: say so
                self._error(e.code, "RESULT for scan %d not queued: %s" % (scan.seq, e.message))
                return
            try:
                self._flush()
            except (serial.SerialException, OSError) as e:  # the reader thread will reopen
                self._error("write_failed", str(e))
                return
        # t_rx: when the read holding the SCAN's last byte returned; now: RESULT written (or
        # queued for the reopen). The serial benchmark reads these.
        self.on_event("result", {"device": scan.device_id, "seq": scan.seq, "verdict": verdict.verdict,
                                 "t_rx": scan.received_mono, "t_tx": time.monotonic(),
                                 "written": self._ser is not None})

    def _report_wire_errors(self) -> None:
        # wire.Link keeps its recent errors (other protocol version, unknown kind, oversize);
        # each is reported once, by identity.
        for err in self.wire.errors:
            if not any(err is seen for seen in self._wire_errors_seen):
                self._error(err.code, err.message)
        self._wire_errors_seen = list(self.wire.errors)

    def _error(self, code: str, text: str) -> None:
        self.errors.append("%s: %s" % (code, text))
        del self.errors[:-16]
        self.on_event("error", {"port": self.port, "code": code, "message": text})

    def status(self) -> dict:
        return {"port": self.port, "connected": self.connected, "device": self.device_id,
                "opens": self.opens, "wire": self.wire.stats(), "errors": list(self.errors[-4:]),
                "last_status": self.last_status}
