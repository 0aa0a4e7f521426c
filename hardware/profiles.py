"""Board profiles (hardware/boards/*.json): load and validate them on the host.

The same files are deployed to the scanner as /board.json (the firmware reads them with
scanbridge_fw.hal.base.load_profile). Schema: hardware/boards/README.md."""
from __future__ import annotations

import json
import re
from pathlib import Path

BOARDS = Path(__file__).resolve().parent / "boards"
PIN_RANGE = {"esp32": range(0, 40), "esp32s3": range(0, 49)}
INPUT_ONLY = {"esp32": set(range(34, 40)), "esp32s3": set()}
HALS = ("esp32cam", "esp32s3")
_USB_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")


class ProfileError(ValueError):
    """A profile breaks a schema rule; the message names the board and the field."""

    def __init__(self, board: str, field: str, problem: str):
        super().__init__("%s: %s: %s" % (board, field, problem))
        self.code = "profile_invalid"
        self.board = board
        self.field = field


def ids() -> list[str]:
    return sorted(p.stem for p in BOARDS.glob("*.json"))


def path_of(board_id: str) -> Path:
    return BOARDS / (board_id + ".json")


def load(board_id: str) -> dict:
    p = path_of(board_id)
    if not p.exists():
        raise ProfileError(board_id, "id", "no such board; known: %s" % ", ".join(ids()))
    try:
        data = json.loads(p.read_text())
    except ValueError as e:
        raise ProfileError(board_id, "(file)", "not valid JSON: %s" % e)
    return validate(data, board_id)


def load_all() -> list[dict]:
    return [load(i) for i in ids()]


def _need(d: dict, key: str, kind, board: str, where: str = ""):
    name = where + key
    if key not in d:
        raise ProfileError(board, name, "missing")
    v = d[key]
    if kind is int and isinstance(v, bool):
        raise ProfileError(board, name, "must be an integer")
    if not isinstance(v, kind):
        raise ProfileError(board, name, "must be %s, got %r" % (getattr(kind, "__name__", kind), v))
    return v


def validate(p: dict, board_id: str | None = None) -> dict:
    """Check a profile against the schema; return it unchanged or raise ProfileError."""
    board = str(p.get("id", board_id or "?"))
    _need(p, "schema", int, board)
    if p["schema"] != 1:
        raise ProfileError(board, "schema", "version %r; this loader knows 1" % p["schema"])
    _need(p, "id", str, board)
    if board_id is not None and p["id"] != board_id:
        raise ProfileError(board, "id", "must match the file name %r" % board_id)
    _need(p, "name", str, board)
    if _need(p, "hal", str, board) not in HALS:
        raise ProfileError(board, "hal", "one of %s" % ", ".join(HALS))
    chip = _need(p, "chip", str, board)
    if chip not in PIN_RANGE:
        raise ProfileError(board, "chip", "one of %s" % ", ".join(PIN_RANGE))
    _need(p, "verified_on_hardware", bool, board)
    flash = _need(p, "flash", dict, board)
    _need(flash, "size_mb", int, board, "flash.")
    if not re.match(r"^0x[0-9a-f]+$", _need(flash, "micropython_offset", str, board, "flash.")):
        raise ProfileError(board, "flash.micropython_offset", "a hex string like 0x1000")
    psram = _need(p, "psram", dict, board)
    _need(psram, "size_mb", int, board, "psram.")
    _need(psram, "required", bool, board, "psram.")

    used: dict[int, str] = {}

    def pin(value, field, output=False, optional=True):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProfileError(board, field, "a GPIO number, got %r" % (value,))
        if value == -1 and optional:
            return
        if value not in PIN_RANGE[chip]:
            raise ProfileError(board, field, "GPIO%d does not exist on %s" % (value, chip))
        if output and value in INPUT_ONLY[chip]:
            raise ProfileError(board, field, "GPIO%d is input-only on %s" % (value, chip))
        if value in used:
            raise ProfileError(board, field, "GPIO%d is already %s" % (value, used[value]))
        used[value] = field

    cam = _need(p, "camera", dict, board)
    _need(cam, "model", str, board, "camera.")
    pins = _need(cam, "pins", dict, board, "camera.")
    data = _need(pins, "data", list, board, "camera.pins.")
    if len(data) != 8:
        raise ProfileError(board, "camera.pins.data", "8 data pins D0..D7, got %d" % len(data))
    for i, d in enumerate(data):
        pin(d, "camera.pins.data[%d]" % i, optional=False)
    for key in ("pclk", "vsync", "href", "sda", "scl", "xclk"):
        pin(_need(pins, key, int, board, "camera.pins."), "camera.pins." + key, optional=False)
    for key in ("pwdn", "reset"):
        pin(_need(pins, key, int, board, "camera.pins."), "camera.pins." + key, output=True)
    _need(cam, "xclk_freq", int, board, "camera.")
    _need(cam, "fb_count", int, board, "camera.")
    if _need(cam, "max_gray_frame", str, board, "camera.") not in ("QQVGA", "QVGA", "CIF", "VGA"):
        raise ProfileError(board, "camera.max_gray_frame", "QQVGA, QVGA, CIF or VGA")

    leds = _need(p, "leds", dict, board)
    for name, spec in leds.items():
        where = "leds.%s." % name
        if not isinstance(spec, dict):
            raise ProfileError(board, "leds." + name, "must be an object")
        pin(_need(spec, "pin", int, board, where), where + "pin", output=True)
        _need(spec, "active_low", bool, board, where)
        _need(spec, "colour", str, board, where)
        _need(spec, "external", bool, board, where)
        duty = spec.get("duty", 1.0)
        if not isinstance(duty, (int, float)) or not 0 < duty <= 1:
            raise ProfileError(board, where + "duty", "a fraction in (0, 1]")
    fb = _need(p, "feedback", dict, board)
    for logical in ("ok", "err", "busy"):
        _need(fb, logical, str, board, "feedback.")
    for logical, led in fb.items():
        if led not in leds:
            raise ProfileError(board, "feedback." + logical, "names LED %r, not in leds" % led)

    if "buzzer" not in p:
        raise ProfileError(board, "buzzer", "missing (null when there is none)")
    if p["buzzer"] is not None:
        bz = _need(p, "buzzer", dict, board)
        pin(_need(bz, "pin", int, board, "buzzer."), "buzzer.pin", output=True)
        if _need(bz, "type", str, board, "buzzer.") not in ("passive", "active"):
            raise ProfileError(board, "buzzer.type", "passive or active")
        _need(bz, "external", bool, board, "buzzer.")

    ser = _need(p, "serial", dict, board)
    if _need(ser, "kind", str, board, "serial.") not in ("uart0", "usb_cdc"):
        raise ProfileError(board, "serial.kind", "uart0 or usb_cdc")
    _need(ser, "adapter", str, board, "serial.")
    for vp in _need(ser, "usb_ids", list, board, "serial."):
        if not isinstance(vp, str) or not _USB_ID.match(vp):
            raise ProfileError(board, "serial.usb_ids", "%r is not like 1a86:7523" % (vp,))
    _need(ser, "baud", int, board, "serial.")
    _need(ser, "shared_with_repl", bool, board, "serial.")
    _need(ser, "dtr_rts_reset", bool, board, "serial.")

    sb = _need(p, "safe_boot", dict, board)
    sbp = _need(sb, "pin", int, board, "safe_boot.")
    if sbp != -1 and sbp not in PIN_RANGE[chip]:
        raise ProfileError(board, "safe_boot.pin", "GPIO%d does not exist on %s" % (sbp, chip))
    _need(sb, "active_low", bool, board, "safe_boot.")
    _need(sb, "window_ms", int, board, "safe_boot.")
    _need(sb, "hint", str, board, "safe_boot.")
    _need(p, "notes", list, board)
    return p
