"""The bridge's serial link over real pseudo-terminals opened with pyserial: the virtual scanner
(the real firmware app) or a scripted device (a bare wire.Link on the pty master) at the other
end. Scan -> RESULT, several scanners, unplug/replug, noise, and protocol errors."""
import os
import queue
import threading
import time
import tty

import pytest

from scanbridge.link.serial import SerialLink
from scanbridge.run import SerialFleet
from scanbridge.scan import ACCEPTED, REJECTED, ScanService, Verdict
from scanbridge_fw import wire
from scanbridge_tools.virtual_scanner.frames import QueuedStream
from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

pytestmark = pytest.mark.timeout(60)


def _wait(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


class Recorder:
    def __init__(self, decide=None):
        self.seen = []
        self.lock = threading.Lock()
        self.decide_fn = decide

    def decide(self, scan):
        with self.lock:
            self.seen.append(scan)
        if self.decide_fn:
            return self.decide_fn(scan)
        if scan.payload.startswith(b"bad"):
            return Verdict(REJECTED, "bad_signature")
        return Verdict(ACCEPTED, "ok")


def _scanner(**kw):
    frames = QueuedStream(hold=2, gap=1)
    vs = VirtualScanner(frames, fps=100, rto_ms=100, **kw)
    results = queue.Queue()
    vs.listeners.append(lambda e, d: results.put((e, d)))
    vs.start()
    return vs, frames, results


def _next_result(results, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        e, d = results.get(timeout=max(0.01, end - time.monotonic()))
        if e == "result":
            return d


def test_scan_gets_result_through_pyserial_pty():
    rec = Recorder()
    service = ScanService(rec.decide)
    vs, frames, results = _scanner(device_id="scan-A")
    link = SerialLink(vs.path, service).start()
    try:
        assert link.wait_ready(), link.errors
        assert os.path.realpath(vs.path).startswith("/dev/pts/")
        frames.show(b"pay-123")
        frames.show(b"bad-456")
        r1, r2 = _next_result(results), _next_result(results)
        assert (r1["payload"], r1["verdict"], r1["reason"]) == (b"pay-123", "accepted", "ok")
        assert (r2["payload"], r2["verdict"], r2["reason"]) == (b"bad-456", "rejected", "bad_signature")
        assert [s.payload for s in rec.seen] == [b"pay-123", b"bad-456"]
        assert all(s.device_id == "scan-A" and s.link == "serial:" + vs.path for s in rec.seen)
        assert link.device["board"] == "virtual" and link.device["proto"] == wire.PROTOCOL_VERSION
        # the scanner showed it: accepted -> "ok" LED and beep, rejected -> "err"
        leds = lambda: [v for _, k, v in vs.board.feedback if k == "led"]  # noqa: E731
        assert _wait(lambda: "ok" in leds() and "err" in leds()), leds()
    finally:
        link.stop()
        vs.stop()


def test_bridge_asks_scanner_commands():
    service = ScanService()
    vs, frames, results = _scanner(device_id="scan-C")
    link = SerialLink(vs.path, service).start()
    try:
        assert link.wait_ready()
        r = link.command("ping")
        assert r["ok"] and r["result"]["pong"] is True
        r = link.command("config.set", {"dedupe_ms": "soon"})
        assert not r["ok"] and r["error"]["code"] == "config_invalid"
        r = link.command("info")
        assert r["result"]["device"] == "scan-C" and "ping" in r["result"]["commands"]
    finally:
        link.stop()
        vs.stop()


def test_several_scanners_at_once():
    rec = Recorder()
    service = ScanService(rec.decide)
    scanners = [_scanner(device_id="multi-%d" % i) for i in range(3)]
    fleet = SerialFleet(service)
    try:
        links = [fleet.add(vs.path) for vs, _, _ in scanners]
        assert all(link.wait_ready() for link in links)
        for i, (vs, frames, _) in enumerate(scanners):
            for j in range(3):
                frames.show(b"m%d-code%d" % (i, j))
        for i, (vs, frames, results) in enumerate(scanners):
            got = [_next_result(results)["payload"] for _ in range(3)]
            assert got == [b"m%d-code%d" % (i, j) for j in range(3)]
        assert _wait(lambda: len(rec.seen) == 9)
        by_dev = {}
        for s in rec.seen:
            by_dev.setdefault(s.device_id, []).append(s.payload)
        assert sorted(by_dev) == ["multi-0", "multi-1", "multi-2"]
        assert all(len(v) == 3 for v in by_dev.values())
    finally:
        fleet.stop()
        for vs, _, _ in scanners:
            vs.stop()


def test_unplug_replug_loses_no_scan_and_no_result():
    vs, frames, results = _scanner(device_id="plug-1")
    unplug_now = threading.Event()

    def decide(scan):
        if scan.payload == b"during-decision":
            # The cable comes out while the bridge is deciding: the RESULT cannot be written now
            # and must wait in the link for the replug.
            vs.unplug()
            unplug_now.set()
        return Verdict(ACCEPTED, "ok")
    rec = Recorder(decide)
    service = ScanService(rec.decide)
    events = []
    link = SerialLink(vs.path, service, on_event=lambda k, d: events.append(k), reopen_s=0.05).start()
    try:
        assert link.wait_ready()
        # 1. scan shown while unplugged: queued on the scanner, sent after replug
        vs.unplug()
        assert _wait(lambda: not link.connected)
        frames.show(b"while-unplugged")
        assert _wait(lambda: vs.app.counts["scans"] == 1)
        time.sleep(0.3)
        vs.replug()
        r = _next_result(results)
        assert r["payload"] == b"while-unplugged" and r["verdict"] == "accepted"
        # 2. unplugged between SCAN and RESULT
        frames.show(b"during-decision")
        assert unplug_now.wait(10)
        time.sleep(0.3)
        vs.replug()
        r = _next_result(results)
        assert r["payload"] == b"during-decision"
        assert [s.payload for s in rec.seen] == [b"while-unplugged", b"during-decision"]  # exactly once
        assert link.opens >= 3 and "disconnected" in events
    finally:
        link.stop()
        vs.stop()


# ---------------------------------------------------------------- scripted device on a raw pty


class ScriptedDevice:
    """The device side as bytes: a wire.Link on the pty master, pumped by the test."""

    def __init__(self, device_id="scripted-1", session=777):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = wire.Link({"device": device_id, "fw": "test", "board": "none", "caps": []}, session,
                              rto_ms=50, rto_max_ms=200)
        self.got = []
        self.rx = bytearray()

    def now(self):
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def write_raw(self, data):
        os.write(self.master, data)

    def pump(self, seconds=0.05, mangle=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                self.rx += data
                self.got += self.link.receive(data, self.now())
            out = self.link.poll(self.now())
            if out:
                os.write(self.master, mangle(out) if mangle else out)
            time.sleep(0.002)

    def pump_until(self, cond, timeout=10.0, mangle=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(0.02, mangle)
            if cond():
                return True
        return False

    def results(self):
        return [m for m in self.got if m.kind == wire.RESULT]

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def _frame_with_crc(line):
    import binascii
    crc = binascii.crc32(line) & 0xFFFFFFFF
    return b"~" + line + b"%08x\n" % crc


def test_noise_and_corruption_on_the_line():
    rec = Recorder()
    service = ScanService(rec.decide)
    dev = ScriptedDevice()
    link = SerialLink(dev.path, service).start()
    try:
        assert _wait(lambda: link.connected)
        # what a rebooting ESP32 prints on UART0 before the app runs
        dev.write_raw(b"ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET),boot:0x13\r\n"
                      b"MicroPython v1.27.0 on ESP32\r\n>>> ~~~ \x00\xff garbage\r\n")
        dev.link.start()
        assert dev.pump_until(lambda: link.device_id == "scripted-1")
        flip = [0]

        def mangle(out):
            # every other write: one byte flipped somewhere in it (the CRC catches it)
            flip[0] += 1
            if flip[0] % 2 and len(out) > 3:
                b = bytearray(out)
                b[len(b) // 2] ^= 0x20
                return bytes(b)
            return out
        seqs = [dev.link.send(wire.SCAN, {"payload": b"noisy-%d" % i}) for i in range(5)]
        assert dev.pump_until(lambda: len(dev.results()) == 5, mangle=mangle)
        assert [s.payload for s in rec.seen] == [b"noisy-%d" % i for i in range(5)]
        assert [m.data["scan_seq"] for m in dev.results()] == seqs
        st = link.wire.stats()
        assert st["crc_errors"] + st["malformed"] > 0 and st["noise_bytes"] > 0
    finally:
        link.stop()
        dev.close()


def test_protocol_errors_are_named_and_the_link_recovers():
    rec = Recorder()
    service = ScanService(rec.decide)
    dev = ScriptedDevice()
    link = SerialLink(dev.path, service).start()
    try:
        dev.link.start()
        assert dev.pump_until(lambda: link.device_id == "scripted-1")
        # an oversized frame, an unknown kind, a peer speaking protocol 2
        dev.write_raw(b"~1S0009" + b"QUFB" * 400 + b"\n")
        dev.write_raw(_frame_with_crc(b"1Z0003" + b"QUFB"))
        dev.write_raw(_frame_with_crc(b"2S0004" + b"AAAAAEFB"))
        assert _wait(lambda: {"oversize", "unknown_type", "protocol_version"} <= {e.split(":")[0] for e in link.errors}), link.errors
        # the bridge told the device what it could not take
        dev.pump(0.3)
        codes = [m.data["code"] for m in dev.got if m.kind == wire.ERROR]
        assert "unknown_type" in codes and "protocol_version" in codes
        # a HELLO claiming another protocol version is refused with a clear error, too
        bad = wire.Link({"device": "future"}, 5, rto_ms=50)
        bad.hello["proto"] = 2
        h = wire.encode_frame(wire.HELLO, 1, {"device": "future", "proto": 2, "session": 5, "ask": True})
        dev.write_raw(h)
        assert _wait(lambda: any("peer HELLO says protocol 2" in e for e in link.errors)), link.errors
        assert link.device_id == "scripted-1"
        # and the link still works
        dev.link.send(wire.SCAN, {"payload": b"after-errors"})
        assert dev.pump_until(lambda: len(dev.results()) == 1)
        assert [s.payload for s in rec.seen] == [b"after-errors"]
    finally:
        link.stop()
        dev.close()


def test_scanner_restart_drops_stale_results():
    """A scanner reboots while the bridge still owes a RESULT to its previous life: the new
    session only gets its own results after the bridge's HELLO (the firmware drops anything
    before it), and the bridge drops the stale RESULT instead of retransmitting it forever."""
    gate = threading.Event()

    def decide(scan):
        if scan.payload == b"old-life":
            gate.wait(10)  # the bridge is slow on this one; meanwhile the scanner reboots
        return Verdict(ACCEPTED, "ok")
    rec = Recorder(decide)
    service = ScanService(rec.decide)
    dev = ScriptedDevice(session=1000)
    link = SerialLink(dev.path, service, rto_ms=50).start()
    try:
        dev.link.start()
        assert dev.pump_until(lambda: link.device_id == "scripted-1")
        dev.link.send(wire.SCAN, {"payload": b"old-life"})
        assert dev.pump_until(lambda: len(rec.seen) == 1)
        # reboot: a new device Link, new session, the same seq numbers again
        dev.link = wire.Link({"device": "scripted-1", "fw": "test"}, 2000, rto_ms=50)
        dev.got = []
        dev.link.start()
        new_seq = dev.link.send(wire.SCAN, {"payload": b"new-life"})
        dev.pump(0.1)
        gate.set()
        assert dev.pump_until(lambda: len(rec.seen) == 2 and dev.link.pending() == 0 and any(
            m.kind == wire.RESULT for m in dev.got[1:]))
        dev.pump(0.3)
        kinds = [m.kind for m in dev.got]
        first_hello = kinds.index(wire.HELLO)
        after = [m.data for m in dev.got[first_hello:] if m.kind == wire.RESULT]
        assert [r["scan_seq"] for r in after] == [new_seq]
        assert [s.payload for s in rec.seen] == [b"old-life", b"new-life"]
        assert any(e.startswith("stale_results") for e in link.errors), link.errors
    finally:
        gate.set()
        link.stop()
        dev.close()


def test_a_failing_listener_does_not_stop_the_link():
    service = ScanService()
    calls = []

    def bad_listener(scan, verdict):
        calls.append(scan.payload)
        if scan.payload == b"boom":
            raise RuntimeError("listener bug")
    service.add_listener(bad_listener)
    dev = ScriptedDevice()
    link = SerialLink(dev.path, service).start()
    try:
        dev.link.start()
        assert dev.pump_until(lambda: link.device_id == "scripted-1")
        dev.link.send(wire.SCAN, {"payload": b"boom"})
        dev.link.send(wire.SCAN, {"payload": b"after"})
        assert dev.pump_until(lambda: len([m for m in dev.got if m.kind == wire.RESULT]) >= 2
                              and calls == [b"boom", b"after"])
        results = [m.data for m in dev.got if m.kind == wire.RESULT]
        # the listener's bug is isolated by ScanService: both scans get their real verdict
        assert [r["verdict"] for r in results[:2]] == [wire.ACCEPTED, wire.ACCEPTED], results
        assert link._thread.is_alive()
    finally:
        link.stop()
        dev.close()


def test_auto_discovery_adds_scanners_plugged_in_later(monkeypatch):
    from scanbridge.link import discovery
    plugged = []
    monkeypatch.setattr(discovery, "find_scanners", lambda ports=None: list(plugged))
    rec = Recorder()
    fleet = SerialFleet(ScanService(rec.decide))
    vs, frames, results = _scanner(device_id="auto-1")
    try:
        fleet.watch_usb(interval_s=0.05)
        time.sleep(0.2)
        assert fleet.links == {}
        # the "USB adapter" appears (a pty stands in for /dev/ttyUSB0)
        plugged.append(discovery.FoundPort(vs.path, "1a86:7523", "CH340", "", "", ""))
        assert _wait(lambda: vs.path in fleet.links and fleet.links[vs.path].device_id == "auto-1")
        frames.show(b"auto-code")
        assert _next_result(results)["payload"] == b"auto-code"
        assert len(fleet.links) == 1  # found again on every rescan, linked once
    finally:
        fleet.stop()
        vs.stop()
