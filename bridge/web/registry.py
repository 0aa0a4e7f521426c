"""Which scanners the bridge knows, whether they are online, when they were last heard, how fast
they decode. Fed by ScanService listeners (every scan), by the serial link's on_event hook
(hello/status/disconnected) and by the MQTT link's presence listener."""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

STALE_S = 60.0  # no word from a scanner for this long: shown as "silent", not "online"


class ScannerRegistry:
    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._scanners: dict[str, dict] = {}
        self._port_device: dict[str, str] = {}
        self.listeners: list[Callable[[dict], None]] = []

    def _entry(self, device: str) -> dict:
        e = self._scanners.get(device)
        if e is None:
            e = {"device": device, "link": None, "online": False, "last_seen": None, "scans": 0,
                 "accepted": 0, "last_decode_ms": None, "decode_rate": None, "frames_per_s": None,
                 "fw": None, "board": None, "fault": None, "fault_fix": None, "_last_status": None}
            self._scanners[device] = e
        return e

    def _changed(self, e: dict) -> None:
        d = self._public(e)
        for fn in list(self.listeners):
            fn(d)

    def _public(self, e: dict) -> dict:
        d = {k: v for k, v in e.items() if not k.startswith("_")}
        if d["online"] and d["last_seen"] is not None and self.clock() - d["last_seen"] > STALE_S:
            d["online"] = False
            d["silent"] = True
        return d

    # -- feeds
    def on_scan(self, scan, verdict) -> None:
        """A ScanService listener."""
        with self._lock:
            e = self._entry(scan.device_id)
            e["link"] = scan.link or e["link"]
            e["online"] = True
            e["last_seen"] = self.clock()
            if verdict.verdict != "pending":
                e["scans"] += 1
            e["accepted"] += verdict.verdict == "accepted"
            if scan.decode_ms:
                e["last_decode_ms"] = scan.decode_ms
        self._changed(e)

    def on_link_event(self, kind: str, data: dict) -> None:
        """The serial link's on_event hook (chain it with any other hook)."""
        with self._lock:
            device = data.get("device")
            if kind == "hello" and device:
                e = self._entry(device)
                port = data.get("port")
                if port:
                    self._port_device[port] = device
                    e["link"] = "serial:" + port
                hello = data.get("hello") or {}
                e["fw"] = hello.get("fw", e["fw"])
                e["board"] = hello.get("board", e["board"])
                _fault(e, hello.get("fault"))
            elif kind == "disconnected":
                device = self._port_device.get(data.get("port", ""))
                if not device:
                    return
                e = self._entry(device)
                e["online"] = False
                self._changed(e)
                return
            elif kind == "status" and device:
                e = self._entry(device)
                self._status(e, data.get("status") or {})
            else:
                return
            e["online"] = True
            e["last_seen"] = self.clock()
        self._changed(e)

    def on_presence(self, device: str, info: dict) -> None:
        """The MQTT link's presence listener: (device, {online, last_seen, status, site})."""
        with self._lock:
            e = self._entry(device)
            e["online"] = bool(info.get("online"))
            e["link"] = "mqtt:%s/%s" % (info.get("site", "?"), device)
            if info.get("last_seen"):
                e["last_seen"] = info["last_seen"]
            self._status(e, info.get("status") or {})
        self._changed(e)

    def _status(self, e: dict, st: dict) -> None:
        # The scanner's STATUS carries counters since boot; the rate is their change over its uptime.
        e["fw"] = st.get("fw", e["fw"])
        e["board"] = st.get("board", e["board"])
        if "fault" in st:  # a scanner that cannot scan (camera fault) says why in every STATUS
            _fault(e, st["fault"])
        prev = e["_last_status"]
        up, frames, scans = st.get("uptime_ms"), st.get("frames"), st.get("scans")
        if prev and up is not None and prev.get("uptime_ms") is not None and up > prev["uptime_ms"]:
            dt = (up - prev["uptime_ms"]) / 1000.0
            if frames is not None and prev.get("frames") is not None and frames >= prev["frames"]:
                e["frames_per_s"] = round((frames - prev["frames"]) / dt, 1)
            if scans is not None and prev.get("scans") is not None and scans >= prev["scans"]:
                e["decode_rate"] = round((scans - prev["scans"]) * 60 / dt, 1)  # codes per minute
        if up is not None:
            e["_last_status"] = {"uptime_ms": up, "frames": frames, "scans": scans}

    # -- reads
    def snapshot(self) -> list[dict]:
        with self._lock:
            return [self._public(e) for e in sorted(self._scanners.values(), key=lambda e: e["device"])]

    def get(self, device: str) -> Optional[dict]:
        with self._lock:
            e = self._scanners.get(device)
            return self._public(e) if e else None


def _fault(e: dict, fault: Optional[dict]) -> None:
    """Record a scanner's fault ({code, message, ...} or None) and the plain fix for the page."""
    fault = {k: fault.get(k) for k in ("code", "message", "retries")} if isinstance(fault, dict) else None
    if fault == e["fault"]:
        return
    e["fault"] = fault
    e["fault_fix"] = None
    if fault:
        try:
            from scanbridge_tools.diagnostics.failures import explain_fault
        except ImportError:  # the bridge installed without the technician's tools
            return
        found = explain_fault(fault)
        e["fault_fix"] = found and found["fix"]
