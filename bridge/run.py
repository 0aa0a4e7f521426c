"""`scanbridge run`: the bridge at the counter. A small composition: a ScanService (the decision)
plus serial links to the scanners (given ports, or found by USB ids with --auto), printing one
line per scan. Other parts (MQTT link, counter page, outbox) add their options here."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Callable, Optional

from scanbridge.scan import Decider, ScanEvent, ScanService, Verdict, accept_well_formed


def make_decider(args=None) -> Decider:
    """THE place where the bridge's decision is chosen. With a trust store (--trust, or the
    default file when it exists) every code is verified offline and claimed in the single-use
    ledger; without one, any well-formed code is taken and the bridge says so loudly."""
    store = load_trust_store(args)
    if store is None:
        return accept_well_formed
    from scanbridge.tokens.config import decider_from_args
    decide, ledger = decider_from_args(args, trust_store=store)
    _CLOSERS.append(ledger.close)
    return decide


_CLOSERS: list = []


def load_trust_store(args):
    """The merchant's trust store, or None when none is configured (demo/bring-up mode)."""
    import os
    if args is None or not hasattr(args, "trust"):
        return None
    from scanbridge.tokens.trust import TrustStore, default_path
    path = args.trust or default_path()
    if not args.trust and not os.path.exists(path):
        print("scanbridge run: WARNING no trust store (%s): accepting ANY well-formed code. "
              "Install issuer keys with `scanbridge trust add`." % path, file=sys.stderr, flush=True)
        return None
    return TrustStore.load(path)


def make_service(args=None, decide: Optional[Decider] = None) -> ScanService:
    return ScanService(decide or make_decider(args))


def scan_record(scan: ScanEvent, verdict: Verdict) -> dict:
    return {"device": scan.device_id, "link": scan.link, "seq": scan.seq,
            "payload": scan.payload.decode("utf-8", "replace"), "verdict": verdict.verdict,
            "reason": verdict.reason, "text": verdict.text, "decode_ms": scan.decode_ms}


def printer(as_json: bool, out=None) -> Callable[[ScanEvent, Verdict], None]:
    out = out or sys.stdout
    lock = threading.Lock()

    def show(scan: ScanEvent, verdict: Verdict) -> None:
        rec = scan_record(scan, verdict)
        with lock:
            if as_json:
                print(json.dumps(rec), file=out, flush=True)
            else:
                print("%-14s %-8s %-16s %s" % (rec["device"][:14], rec["verdict"], rec["reason"],
                                               rec["payload"][:60]), file=out, flush=True)
    return show


class SerialFleet:
    """Serial links to several scanners: fixed ports, and/or ports found by USB ids (--auto)."""

    def __init__(self, service: ScanService, baud=115200, on_event=None):
        self.service = service
        self.baud = baud
        self.on_event = on_event
        self.links: dict = {}
        self._stop = threading.Event()

    def add(self, port: str):
        from scanbridge.link.serial import SerialLink
        if port not in self.links:
            self.links[port] = SerialLink(port, self.service, baud=self.baud, on_event=self.on_event).start()
        return self.links[port]

    def watch_usb(self, interval_s: float = 2.0) -> None:
        """Add links for scanners plugged in later (a thread; links keep reopening their port)."""
        from scanbridge.link.discovery import find_scanners

        def loop():
            while not self._stop.is_set():
                for f in find_scanners():
                    self.add(f.device)
                self._stop.wait(interval_s)
        threading.Thread(target=loop, name="usb-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for link in self.links.values():
            link.stop()


def print_fault_change(faults: dict, data: dict, out=None) -> None:
    """A scanner that cannot scan (camera fault in its HELLO/STATUS): one `[fault]` line with the
    code, the driver's message and the plain fix when it begins or changes, `[fault]` cleared
    when it ends. `faults` remembers each device's last fault."""
    device = data.get("device")
    body = data.get("hello") if "hello" in data else data.get("status")
    if not device or not isinstance(body, dict) or ("status" in data and "fault" not in body):
        return
    fault = body.get("fault") if isinstance(body.get("fault"), dict) else None
    # STATUS cuts the message to 64 characters (HELLO has it whole): compare what both carry
    now = (fault.get("code"), str(fault.get("message") or "")[:64]) if fault else None
    if faults.get(device) == now or (now is None and device not in faults):
        faults[device] = now
        return
    faults[device] = now
    if now is None:
        line = {"device": device, "cleared": True}
    else:
        line = {"device": device, "code": now[0], "message": fault.get("message")}
        try:
            from scanbridge_tools.diagnostics.failures import explain_fault
            found = explain_fault(fault)
            if found:
                line["fix"] = found["fix"]
        except ImportError:
            pass
    print("[fault] %s" % json.dumps(line), file=out or sys.stderr, flush=True)


def presence_fault_printer(faults: dict, out=None):
    """A presence listener for the MQTT link: scanners on WiFi get the same `[fault]` lines as
    scanners on a cable (their STATUS arrives as presence)."""
    def on_presence(device: str, info: dict) -> None:
        status = info.get("status")
        if isinstance(status, dict):
            print_fault_change(faults, {"device": device, "status": status}, out)
    return on_presence


def add_arguments(parser):
    parser.add_argument("--port", action="append", default=[], help="serial port of a scanner (repeatable)")
    parser.add_argument("--auto", action="store_true", help="find scanners by USB ids, also ones plugged in later")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--json", action="store_true", help="one JSON object per scan")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    from scanbridge.counter import add_counter_arguments
    add_counter_arguments(parser)
    from scanbridge.tokens.config import add_arguments as add_token_arguments
    add_token_arguments(parser)
    from scanbridge.link.mqtt import add_mqtt_arguments
    add_mqtt_arguments(parser)


def main(args) -> int:
    if not args.port and not args.auto and not args.mqtt:
        print("scanbridge run: give --port PATH (repeatable), --auto, or --mqtt URL", file=sys.stderr)
        return 2
    from scanbridge.ledger import LedgerError
    from scanbridge.tokens.trust import TrustStoreError
    store = None
    try:
        if args.no_counter:
            service = make_service(args)
        else:
            # the counter verifies codes itself (one disk sync per scan: claim + order + outbox)
            store = load_trust_store(args)
            service = make_service(args, decide=accept_well_formed)
    except (TrustStoreError, LedgerError) as e:
        print("scanbridge run: %s" % e, file=sys.stderr)
        return 2
    runtime = None
    if not args.no_counter:  # orders, outbox to the payment backend, counter page
        from scanbridge.counter import start_counter
        ledger = None
        if store is not None and args.ledger:
            from scanbridge.ledger import open_ledger
            ledger = open_ledger(args.ledger)
            _CLOSERS.append(ledger.close)
        runtime = start_counter(args, service, trust_store=store, ledger=ledger)
    mqtt_link = None
    if args.mqtt:
        from scanbridge.link.mqtt import start_from_args
        mqtt_link = start_from_args(args, service)
        if runtime is not None:
            mqtt_link.add_presence_listener(runtime.registry.on_presence)
    service.add_listener(printer(args.json))
    from scanbridge.host_assist import HostAssist, Responder
    assist = HostAssist()  # decodes snapshots from scanners in host-assist fallback mode

    faults: dict = {}  # device -> its last fault code and message, to print each change once

    def event(kind, data):
        assist.on_event(kind, data)
        if runtime is not None:
            runtime.link_event(kind, data)
        if kind in ("hello", "disconnected", "error"):
            print("[%s] %s" % (kind, json.dumps(data, default=str)), file=sys.stderr, flush=True)
        if kind in ("hello", "status"):
            print_fault_change(faults, data)

    fleet = SerialFleet(service, baud=args.baud, on_event=event)

    def command(device, cmd, cargs):
        for link in list(fleet.links.values()):
            if link.device_id == device:
                return link.command(cmd, cargs)
        if mqtt_link is not None:
            return mqtt_link.command_device(device, cmd, cargs)
        raise LookupError("no serial link serves %s" % device)
    if mqtt_link is not None:
        mqtt_link.add_event_listener(event)  # snapshots from scanners on WiFi, for host assist
        mqtt_link.add_presence_listener(presence_fault_printer(faults))
    assist.add_listener(Responder(command))  # hands what zxing-cpp read back to the scanner
    for p in args.port:
        fleet.add(p)
    if args.auto:
        from scanbridge.link.discovery import find_scanners, none_found_message
        if not find_scanners():
            print(none_found_message(), file=sys.stderr)
            print("(waiting for a scanner to be plugged in; Ctrl-C to stop)", file=sys.stderr)
        fleet.watch_usb()
    import gc
    gc.collect()
    gc.freeze()  # what startup built stays: full collections then skip it (shorter pauses under load)
    try:
        end = time.monotonic() + args.seconds if args.seconds else None
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    finally:
        fleet.stop()
        if mqtt_link is not None:
            mqtt_link.stop()
        if runtime is not None:
            runtime.stop()
        while _CLOSERS:
            _CLOSERS.pop()()
    return 0
