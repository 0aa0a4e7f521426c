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


def demo_set(count: int):
    """The codes the virtual customers show, minted by the wallet simulator with the same token
    code the bridge verifies with: good codes, and among them an online wallet code, an expired,
    a forged and a tampered one, and last a replay of the first (see scanbridge_tools.mint)."""
    from scanbridge_tools.mint import demo_payloads
    return demo_payloads(count)


def show_payload(payload: bytes) -> str:
    """Text codes as they are; binary tokens as base64url (what a person can compare)."""
    try:
        text = payload.decode("ascii")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    import base64
    return "b64:" + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def add_arguments(parser):
    parser.add_argument("--count", type=int, default=0, help="stop after N scans (0: run until Ctrl-C)")
    parser.add_argument("--json", action="store_true", help="one JSON object per scan")
    parser.add_argument("--fps", type=float, default=15.0, help="virtual camera frame rate")
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds")


def main(args) -> int:
    from scanbridge_tools.virtual_scanner.frames import CodeStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

    from scanbridge.ledger import open_ledger
    from scanbridge.tokens import make_decider

    count = args.count
    demo = demo_set(count or 1000)  # forever: one pass of 1000 codes (a second pass would all be replays)
    labels = {}
    for label, payload in demo.payloads:
        labels.setdefault(payload, label)
    payloads = [p for _, p in demo.payloads]
    frames = CodeStream(payloads, hold=3, gap=2, repeat=False)
    results: queue.Queue = queue.Queue()
    scanner = VirtualScanner(frames, fps=args.fps)
    scanner.listeners.append(lambda event, data: results.put((event, data)))
    ledger = open_ledger("sqlite::memory:")
    service = make_service(args, decide=make_decider(demo.trust_store, ledger))
    seen = set()
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
            if (event == "result" and data["verdict"] == "pending"
                    and data.get("reason") != "online_verification"):
                continue  # the final verdict follows
            # online wallet codes stay pending: in the demo there is no acquirer to ask
            done += 1
            raw = data["payload"]
            label = labels.get(raw, "?")
            if label == "good" and raw in seen:
                label = "replayed"
            seen.add(raw)
            rec = {"payload": show_payload(raw), "kind": label,
                   "verdict": data.get("verdict", event), "reason": data.get("reason", event),
                   "latency_ms": data.get("latency_ms"), "decode_ms": data.get("decode_ms"),
                   "device": scanner.device_id}
            if args.json:
                print(json.dumps(rec), flush=True)
            else:
                print("%-9s %-8s %-20s %6s ms  %s" % (rec["kind"], rec["verdict"], rec["reason"],
                                                      rec["latency_ms"], rec["payload"][:56]), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        link.stop()
        scanner.stop()
        ledger.close()
    return 0
