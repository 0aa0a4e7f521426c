"""Find scanners on USB serial by their adapter's VID:PID (`scanbridge ports`).

Known adapters: CH340 (ESP32-CAM-MB) 1a86:7523, CH9102 1a86:55d4, CH343 1a86:55d3, CP210x
10c4:ea60, ESP32-S3 native USB (USB-Serial/JTAG) 303a:1001. Board profiles may name more
(hardware/boards/*.json, "serial": {"usb_ids": [...]}); they are merged in."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass

KNOWN_IDS = {
    (0x1A86, 0x7523): "CH340 (ESP32-CAM-MB)",
    (0x1A86, 0x55D4): "CH9102",
    (0x1A86, 0x55D3): "CH343",
    (0x10C4, 0xEA60): "CP210x",
    (0x303A, 0x1001): "ESP32-S3 native USB",
}


@dataclass
class FoundPort:
    device: str  # /dev/ttyUSB0, COM3
    vid_pid: str  # "1a86:7523"
    adapter: str
    serial_number: str
    description: str
    location: str


def known_ids() -> dict:
    ids = dict(KNOWN_IDS)
    try:
        from scanbridge_hw.profiles import load_all
        for profile in load_all():
            for vp in profile.get("serial", {}).get("usb_ids", []):
                vid, pid = (int(x, 16) for x in vp.split(":"))
                ids.setdefault((vid, pid), profile["name"])
    except ImportError:
        pass
    return ids


def find_scanners(ports=None) -> list[FoundPort]:
    """Serial ports whose USB ids are a known scanner adapter, sorted by device name."""
    if ports is None:
        from serial.tools import list_ports
        ports = list_ports.comports()
    ids = known_ids()
    found = []
    for p in ports:
        if p.vid is None or p.pid is None:
            continue
        adapter = ids.get((p.vid, p.pid))
        if adapter is None:
            continue
        found.append(FoundPort(p.device, "%04x:%04x" % (p.vid, p.pid), adapter, p.serial_number or "",
                               p.description or "", p.location or ""))
    return sorted(found, key=lambda f: f.device)


NONE_FOUND = """No scanner found on USB serial.
  Looked for these USB adapters: %s.
  - Is the scanner plugged in with a data cable (not a charge-only one)?
  - Linux: is your user in the 'dialout' group (ls -l /dev/ttyUSB* /dev/ttyACM*)?
  - Another program (Arduino IDE, screen, mpremote) may hold the port.
  - A virtual scanner has no USB ids: use `scanbridge run --port PATH`."""


def none_found_message() -> str:
    ids = ", ".join("%04x:%04x %s" % (v, p, n) for (v, p), n in sorted(known_ids().items()))
    return NONE_FOUND % ids


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="one JSON object per port")


def main(args) -> int:
    found = find_scanners()
    if not found:
        print(none_found_message(), file=sys.stderr)
        return 1
    for f in found:
        if args.json:
            print(json.dumps(asdict(f)))
        else:
            print("%-16s %s  %-22s serial=%s %s" % (f.device, f.vid_pid, f.adapter, f.serial_number or "-",
                                                   f.description))
    return 0
