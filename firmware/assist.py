# Host-assist fallback on the scanner: when the on-device decoder keeps missing, send the camera
# picture to the bridge (snapshot.py), which decodes it with zxing-cpp (bridge/host_assist.py)
# and answers with the COMMAND "assist.result" {id, payloads: [base64]}. Those payloads come out
# of the next decode() call, so they take the normal scan path (dedupe, SCAN, RESULT, LED/beep)
# and the bridge verifies them like any other scan.
#
# Wiring (start.py): import this module before config.load() (it registers the settings), then
#     if cfg["host_assist"] != "off": decode = assist.Assisted(decode, board, cfg)
#     app = App(board, link, decode, cfg, ...); decode.attach(app)  (when wrapped)
# The picture is the sensor's JPEG when the HAL can give one (`can_capture_jpeg()` and
# `async capture_jpeg()`; a QVGA JPEG is 4-15 KB: about a second at 115200 baud), else the very
# frame that failed as a PGM, centre-cropped to fit one snapshot (64 KB: ~7 s at 115200 baud,
# fine over WiFi or USB CDC).
import binascii

from scanbridge_fw import commands, snapshot
from scanbridge_fw import config as config_mod
from scanbridge_fw.compat import create_task, ticks_ms

config_mod.register("host_assist", "off", "str", choices=("off", "fallback"))
config_mod.register("host_assist_misses", 15, "int", 1, 1000)  # frames without a code first
config_mod.register("host_assist_every_ms", 3000, "int", 500, 600000)  # at most this often

_INBOX_MAX = 4  # payloads waiting for the next decode() call


def frame_pgm(gray, width, height, max_bytes=snapshot.MAX_BYTES):
    """A gray frame as a binary PGM file, centre-cropped in width to fit max_bytes.
    Copies row slices (no per-pixel loop)."""
    head = b"P5\n%d %d\n255\n" % (width, height)
    ow = min(width, (max_bytes - len(head) - 4) // height)
    if ow < 1:
        raise snapshot.SnapshotError("snapshot_too_big", "%dx%d frame" % (width, height))
    head = b"P5\n%d %d\n255\n" % (ow, height)
    x0 = (width - ow) // 2
    out = bytearray(len(head) + ow * height)
    out[:len(head)] = head
    src = memoryview(gray)
    pos = len(head)
    for y in range(height):
        row = y * width + x0
        out[pos:pos + ow] = src[row:row + ow]
        pos += ow
    return out


def _jpeg_capable(board):
    can = getattr(board, "can_capture_jpeg", None)
    if can is not None:
        return bool(can())
    return hasattr(board, "capture_jpeg")


class Assisted:
    """decode(gray, w, h) that also returns what the bridge read from our snapshots, and in
    fallback mode sends a picture when the device's decoder has missed for a while."""

    def __init__(self, decode, board, cfg):
        self.decode = decode
        self.board = board
        self.cfg = cfg
        self.policy = snapshot.FallbackPolicy(cfg.get("host_assist_misses", 15),
                                              cfg.get("host_assist_every_ms", 3000))
        self.app = None
        self.inbox = []
        self.busy = False
        self.counts = {"snapshots": 0, "assisted": 0, "failed": 0}
        self.last_error = None
        _current["assisted"] = self

    def attach(self, app):
        self.app = app

    def mode(self):
        cfg = self.app.config if self.app is not None else self.cfg  # config.set replaces the dict
        return cfg.get("host_assist", "off")

    def __call__(self, gray, width, height):
        codes = list(self.decode(gray, width, height) or ())
        if self.inbox:
            codes += self.inbox
            self.inbox = []
        app = self.app
        if (app is not None and not self.busy and self.mode() == "fallback"
                and self.policy.frame(bool(codes), ticks_ms())):
            self.busy = True
            try:
                # taken now: the camera reuses its buffer at the next capture
                picture = None if _jpeg_capable(self.board) else frame_pgm(gray, width, height)
            except snapshot.SnapshotError as e:
                self.busy = False
                self._failed(e)
                return codes
            create_task(self._send(app.link, picture))
        return codes

    async def _send(self, link, picture):
        try:
            if picture is None:
                picture = await self.board.capture_jpeg()
                if not picture:
                    raise snapshot.SnapshotError("capture_failed", "the camera returned no JPEG")
                picture = bytes(picture)
            await snapshot.send(snapshot.channel_of(link), picture)
            self.counts["snapshots"] += 1
        except snapshot.SnapshotError as e:
            self._failed(e)
        finally:
            self.busy = False

    def _failed(self, e):
        self.counts["failed"] += 1
        self.last_error = str(e)

    def take(self, payloads):
        """Payloads (bytes) the bridge read; bounded, the oldest go first."""
        for p in payloads:
            self.inbox.append(p)
            self.counts["assisted"] += 1
        while len(self.inbox) > _INBOX_MAX:
            self.inbox.pop(0)


_current = {}  # "assisted": the Assisted in use, for the command below


def _assist_result(app, args):
    a = _current.get("assisted")
    if a is None or a.mode() != "fallback":
        raise commands.CommandError("assist_off", "host assist is off on this scanner (config host_assist)")
    payloads = args.get("payloads")
    if not isinstance(payloads, list) or len(payloads) > _INBOX_MAX:
        raise commands.CommandError("bad_args", "payloads: a list of at most %d base64 strings" % _INBOX_MAX)
    raw = []
    for p in payloads:
        if not isinstance(p, str):
            raise commands.CommandError("bad_args", "payloads must be base64 strings")
        try:
            data = binascii.a2b_base64(p.encode())  # MicroPython's a2b_base64 takes bytes only
        except Exception as e:  # CPython: binascii.Error; MicroPython: a plain Exception
            raise commands.CommandError("bad_args", "payloads must be base64: %s" % e)
        if not data:
            raise commands.CommandError("bad_args", "empty payload")
        raw.append(data)
    a.take(raw)
    return {"taken": len(raw)}


commands.register("assist.result", _assist_result, "payloads the bridge read from a snapshot (host assist)")
