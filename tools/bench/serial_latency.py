"""`scanbridge bench serial`: what the bridge adds to a scan over serial, measured over a pty.

Measured in one run:
  bridge-added   SCAN frame fully received by the bridge (the read holding its last byte
                 returned) -> RESULT frame written, inside the bridge's serial link thread
  round trip     the device side's view: SCAN written to the pty -> RESULT read back
  pty echo       anchor: the same round trip with a trivial echo in place of the bridge (same
                 pyserial read pattern), i.e. what the OS and pyserial cost without us
Also the wire cost of one scan with a 100-byte payload (SCAN + ACK + RESULT + ACK) and its
time at 115200 baud 8N1 (10 bits per byte)."""
from __future__ import annotations

import json
import os
import select
import statistics
import threading
import time
import tty

from scanbridge_fw import wire


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def _pump(fd, link, now_ms, until, timeout=5.0):
    """Device side: write what the link has, read what comes, until until(msgs) is true."""
    end = time.monotonic() + timeout
    got = []
    while time.monotonic() < end:
        out = link.poll(now_ms())
        if out:
            os.write(fd, out)
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            got += link.receive(os.read(fd, 4096), now_ms())
        if until(got):
            return got
    raise RuntimeError("bridge did not answer in %.0f s" % timeout)


def measure_bridge(n: int, payload_len: int = 100):
    from scanbridge.link.serial import SerialLink
    from scanbridge.scan import ScanService
    master, slave, path = _pty()
    added = []

    def on_event(kind, data):
        if kind == "result":
            added.append((data["t_tx"] - data["t_rx"]) * 1000)
    link = SerialLink(path, ScanService(), on_event=on_event).start()
    now_ms = lambda: int(time.monotonic() * 1000) & 0x3FFFFFFF  # noqa: E731
    dev = wire.Link({"device": "bench", "fw": "bench", "board": "none", "caps": []}, 99)
    dev.start()
    rtt = []
    try:
        _pump(master, dev, now_ms, lambda got: dev.peer is not None and dev.pending() == 0)
        time.sleep(0.05)
        _pump(master, dev, now_ms, lambda got: True, 0.1)  # stray acks
        payload = bytes((i * 7) % 256 for i in range(payload_len))
        for _ in range(n):
            dev.send(wire.SCAN, {"payload": payload, "decode_ms": 80, "quality": 50})
            frame = dev.poll(now_ms())
            t0 = time.perf_counter()
            os.write(master, frame)
            while True:
                msgs = dev.receive(os.read(master, 4096), now_ms())
                if any(m.kind == wire.RESULT for m in msgs):
                    break
            rtt.append((time.perf_counter() - t0) * 1000)
            os.write(master, dev.poll(now_ms()))  # the acks (for the RESULT)
        time.sleep(0.05)
    finally:
        link.stop()
        os.close(master)
        os.close(slave)
    return added[-n:], rtt


def measure_echo(n: int, size: int):
    """The anchor: a pyserial thread echoing each frame back (no parsing, no decision)."""
    import serial
    master, slave, path = _pty()
    ser = serial.Serial()
    ser.port, ser.timeout, ser.dtr, ser.rts = path, 0.02, False, False
    ser.open()
    stop = threading.Event()

    def echo():
        while not stop.is_set():
            data = ser.read(ser.in_waiting or 1)
            if data and ser.in_waiting:
                data += ser.read(ser.in_waiting)
            if data:
                ser.write(data)
    th = threading.Thread(target=echo, daemon=True)
    th.start()
    msg = b"~" + b"A" * (size - 2) + b"\n"
    rtt = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(master, msg)
            got = 0
            while got < len(msg):
                got += len(os.read(master, 4096))
            rtt.append((time.perf_counter() - t0) * 1000)
    finally:
        stop.set()
        th.join(1)
        ser.close()
        os.close(master)
        os.close(slave)
    return rtt


def wire_cost(payload_len: int = 100, baud: int = 115200):
    payload = bytes(range(payload_len % 256)) * (payload_len // 256) + bytes(range(payload_len % 256))
    payload = payload[:payload_len]
    scan = wire.encode_frame(wire.SCAN, 2, {"payload": payload, "decode_ms": 80, "quality": 50})
    ack = wire.encode_frame(wire.ACK, 2, {})
    result = wire.encode_frame(wire.RESULT, 3, {"scan_seq": 2, "verdict": wire.ACCEPTED, "reason": "ok", "text": "Read"})
    total = len(scan) + len(ack) + len(result) + len(ack)
    return {"payload_bytes": payload_len, "scan_frame": len(scan), "ack_frame": len(ack),
            "result_frame": len(result), "total_bytes": total, "baud": baud,
            "ms_at_baud": round(total * 10 / baud * 1000, 2),
            "scan_frame_ms_at_baud": round(len(scan) * 10 / baud * 1000, 2)}


def add_arguments(parser):
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--json", action="store_true")


def main(args) -> int:
    n = args.count
    added, rtt = measure_bridge(n)
    cost = wire_cost()
    echo = measure_echo(n, cost["scan_frame"])
    rows = [("bridge-added (SCAN received -> RESULT written)", added),
            ("round trip via bridge (device side, pty both ways)", rtt),
            ("anchor: pty echo round trip, same frame size", echo)]
    out = {"count": n, "python": "%d.%d" % os.sys.version_info[:2], "wire": cost, "latency_ms": {}}
    for name, xs in rows:
        out["latency_ms"][name] = {"p50": round(statistics.median(xs), 3), "p99": round(_pct(xs, 99), 3),
                                   "max": round(max(xs), 3), "n": len(xs)}
    if args.json:
        print(json.dumps(out))
        return 0
    print("serial bench: %d scans, 100-byte payload, over a pty (Python %s)" % (n, out["python"]))
    print("%-54s %9s %9s %9s" % ("latency (ms)", "p50", "p99", "max"))
    for name, _ in rows:
        r = out["latency_ms"][name]
        print("%-54s %9.3f %9.3f %9.3f" % (name, r["p50"], r["p99"], r["max"]))
    print()
    print("wire cost of one scan (100-byte payload): SCAN %d + ACK %d + RESULT %d + ACK %d = %d bytes"
          % (cost["scan_frame"], cost["ack_frame"], cost["result_frame"], cost["ack_frame"], cost["total_bytes"]))
    print("  at %d baud 8N1: %.2f ms on the line (the SCAN frame alone: %.2f ms)"
          % (cost["baud"], cost["ms_at_baud"], cost["scan_frame_ms_at_baud"]))
    return 0
