"""`scanbridge demo`: the whole scan path on this PC with nothing plugged in. A virtual scanner
(the real firmware app, virtual camera, UART on a pty) is shown a stream of payment codes; the
bridge opens the pty with pyserial like a USB scanner, decides, and answers. One line per scan:
what was read, the verdict, the reason, and the time from the camera frame to the RESULT."""
from __future__ import annotations

import json
import queue
import sys
import time

from scanbridge.link.serial import SerialLink
from scanbridge.run import make_service


def demo_payloads(count: int) -> list[bytes]:
    """The codes the virtual customers show. Until signed tokens exist: plain payment-code
    strings (the lead swaps in minted tokens here)."""
    return [b"SBDEMO1:order=%06d;amount=%d.%02d;nonce=%08x" % (i + 1, 3 + i % 17, (i * 37) % 100,
                                                               (i * 2654435761) & 0xFFFFFFFF)
            for i in range(count)]


def add_arguments(parser):
    parser.add_argument("--count", type=int, default=0, help="stop after N scans (0: run until Ctrl-C)")
    parser.add_argument("--json", action="store_true", help="one JSON object per scan")
    parser.add_argument("--fps", type=float, default=15.0, help="virtual camera frame rate")
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds")


def main(args) -> int:
    from scanbridge_tools.virtual_scanner.frames import CodeStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

    count = args.count
    payloads = demo_payloads(count or 1000)
    frames = CodeStream(payloads, hold=3, gap=2, repeat=not count)
    results: queue.Queue = queue.Queue()
    scanner = VirtualScanner(frames, fps=args.fps)
    scanner.listeners.append(lambda event, data: results.put((event, data)))
    service = make_service(args)
    scanner.start()
    link = SerialLink(scanner.path, service).start()
    print("demo: virtual scanner %s on %s; firmware decoder %s" % (
        scanner.device_id, scanner.path, getattr(scanner.decode, "__module__", "")), file=sys.stderr, flush=True)
    timeout = args.timeout or (30 + 3 * count if count else 0)
    end = time.monotonic() + timeout if timeout else None
    done = 0
    try:
        while not count or done < count:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                print("demo: only %d of %d scans answered in %.0f s" % (done, count, timeout), file=sys.stderr)
                return 1
            try:
                event, data = results.get(timeout=left)
            except queue.Empty:
                continue
            if event not in ("result", "no_answer", "refused"):
                continue
            if event == "result" and data["verdict"] == "pending":
                continue  # the final verdict follows
            done += 1
            rec = {"payload": data["payload"].decode("utf-8", "replace"),
                   "verdict": data.get("verdict", event), "reason": data.get("reason", event),
                   "latency_ms": data.get("latency_ms"), "decode_ms": data.get("decode_ms"),
                   "device": scanner.device_id}
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                print("%-8s %-14s %6s ms  %s" % (rec["verdict"], rec["reason"], rec["latency_ms"],
                                                 rec["payload"]), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        link.stop()
        scanner.stop()
    return 0
