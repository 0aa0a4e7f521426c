"""Host assist: put camera snapshots from scanners back together and decode them with zxing-cpp.

A scanner sends a camera frame (JPEG from the sensor) as SNAPSHOT chunks (wire kind J: id,
index, count, data; see firmware/snapshot.py). The bridge links hand each chunk over as the
event ("snapshot", {"device", "id", "index", "count", "data"}); `HostAssist.on_event` takes
those, keeps chunks per (device, id) within bounds and a timeout, and when a snapshot is whole
decodes it and tells its listeners an `AssistResult` (payloads, or an error with a reason code).

Used by diagnostics ("what does the camera see?") and by the host-assist fallback mode, where
the bridge answers the scanner with the payloads it read (see docs/BENCHMARKS.md and the
decoder issue). Nothing here trusts the scanner: sizes, counts and indices are checked, and a
snapshot that never completes is dropped with "snapshot_incomplete" naming the missing chunks.
"""
from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from scanbridge_fw import wire

MAX_CHUNKS = 64  # as firmware/snapshot.py: 64 KB per snapshot
MAX_BYTES = MAX_CHUNKS * wire.MAX_PAYLOAD
MAX_PIXELS = 1600 * 1200  # UXGA, the OV2640's largest frame; bigger "JPEGs" are refused


class AssistError(Exception):
    """A snapshot could not be taken or decoded. `code` is a stable reason code."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.code + (": " + self.message if self.message else "")


@dataclass
class Snapshot:
    device: str
    id: int
    data: bytes
    chunks: int
    started: float  # monotonic seconds of the first chunk
    completed: float


@dataclass
class AssistResult:
    device: str
    id: int
    payloads: list = field(default_factory=list)  # bytes, as the decoder read them
    size: int = 0  # image bytes
    width: int = 0
    height: int = 0
    decode_ms: float = 0.0
    error: Optional[AssistError] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        d = {"device": self.device, "id": self.id, "size": self.size, "width": self.width,
             "height": self.height, "decode_ms": round(self.decode_ms, 1),
             "payloads": [p.decode("utf-8", "replace") for p in self.payloads]}
        if self.error is not None:
            d["error"] = {"code": self.error.code, "message": self.error.message}
        return d


class _Partial:
    __slots__ = ("count", "parts", "size", "started", "last")

    def __init__(self, count: int, now: float):
        self.count = count
        self.parts: dict[int, bytes] = {}
        self.size = 0
        self.started = now
        self.last = now

    def missing(self) -> list[int]:
        return [i for i in range(self.count) if i not in self.parts]


def _describe(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:10])
    return shown + (" and %d more" % (len(indices) - 10) if len(indices) > 10 else "")


class Reassembler:
    """Chunks in, whole snapshots out. Bounded: `max_bytes`/`max_chunks` per snapshot,
    `max_pending` snapshots in progress overall and `per_device` per scanner (the oldest is
    dropped first), each given up after `timeout_s` without a new chunk."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_chunks: int = MAX_CHUNKS, timeout_s: float = 10.0,
                 max_pending: int = 16, per_device: int = 2, clock: Callable[[], float] = time.monotonic):
        self.max_bytes = max_bytes
        self.max_chunks = max_chunks
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.per_device = per_device
        self.clock = clock
        self._partial: dict[tuple[str, int], _Partial] = {}  # insertion order = age
        self.dropped: list[tuple[str, int, AssistError]] = []  # given up, most recent last (bounded)

    def pending(self) -> int:
        return len(self._partial)

    def feed(self, device: str, sid: int, index: int, count: int, data: bytes) -> Optional[Snapshot]:
        """Take one chunk; return the Snapshot when it completes it. Raises AssistError for a
        chunk that cannot belong to a valid snapshot (the snapshot is dropped with it)."""
        now = self.clock()
        self.expire(now)
        key = (str(device), int(sid))
        if not (1 <= count <= self.max_chunks):
            self._drop(key, AssistError("snapshot_too_big", "%d chunks (at most %d)" % (count, self.max_chunks)))
            raise AssistError("snapshot_too_big", "snapshot %d from %s: %d chunks, at most %d"
                              % (sid, device, count, self.max_chunks))
        if not (0 <= index < count):
            raise AssistError("snapshot_malformed", "chunk %d of %d" % (index, count))
        if len(data) > wire.MAX_PAYLOAD or (len(data) == 0):
            raise AssistError("snapshot_malformed", "chunk of %d bytes" % len(data))
        part = self._partial.get(key)
        if part is None:
            self._make_room(key[0])
            part = self._partial[key] = _Partial(count, now)
        elif part.count != count:
            self._drop(key, AssistError("snapshot_inconsistent", "count changed %d -> %d" % (part.count, count)))
            raise AssistError("snapshot_inconsistent", "snapshot %d from %s: chunk says %d chunks, earlier ones %d"
                              % (sid, device, count, part.count))
        old = part.parts.get(index)
        if old is not None:
            if old != data:
                self._drop(key, AssistError("snapshot_inconsistent", "chunk %d sent twice, different" % index))
                raise AssistError("snapshot_inconsistent", "snapshot %d from %s: chunk %d arrived twice with "
                                  "different bytes" % (sid, device, index))
            part.last = now
            return None  # an at-least-once duplicate (MQTT QoS 1)
        if part.size + len(data) > self.max_bytes:
            self._drop(key, AssistError("snapshot_too_big", "more than %d bytes" % self.max_bytes))
            raise AssistError("snapshot_too_big", "snapshot %d from %s exceeds %d bytes" % (sid, device, self.max_bytes))
        part.parts[index] = bytes(data)
        part.size += len(data)
        part.last = now
        if len(part.parts) < part.count:
            return None
        del self._partial[key]
        blob = b"".join(part.parts[i] for i in range(part.count))
        return Snapshot(key[0], key[1], blob, part.count, part.started, now)

    def expire(self, now: Optional[float] = None) -> list[AssistError]:
        """Drop snapshots idle for longer than timeout_s; return why (snapshot_incomplete)."""
        now = self.clock() if now is None else now
        out = []
        for key, part in list(self._partial.items()):
            if now - part.last > self.timeout_s:
                err = AssistError("snapshot_incomplete", "snapshot %d from %s: missing chunk(s) %s of %d after %.0f s"
                                  % (key[1], key[0], _describe(part.missing()), part.count, self.timeout_s))
                self._drop(key, err)
                out.append(err)
        return out

    def _make_room(self, device: str) -> None:
        mine = [k for k in self._partial if k[0] == device]
        while len(mine) >= self.per_device:
            k = mine.pop(0)
            p = self._partial[k]
            self._drop(k, AssistError("snapshot_incomplete", "snapshot %d from %s superseded with chunk(s) %s missing"
                                      % (k[1], k[0], _describe(p.missing()))))
        while len(self._partial) >= self.max_pending:
            k = next(iter(self._partial))
            self._drop(k, AssistError("snapshot_overflow", "snapshot %d from %s dropped: %d in progress"
                                      % (k[1], k[0], self.max_pending)))

    def _drop(self, key, err: AssistError) -> None:
        if self._partial.pop(key, None) is not None or err.code != "snapshot_incomplete":
            self.dropped.append((key[0], key[1], err))
            del self.dropped[:-32]


def decode_image(data: bytes) -> tuple[list[bytes], int, int]:
    """QR payloads (bytes) zxing-cpp reads in an image file (JPEG, or PNG for tests); with its size.
    Raises AssistError("bad_image") when it is not an image we can open."""
    from PIL import Image, UnidentifiedImageError
    import zxingcpp
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise AssistError("bad_image", "%dx%d is larger than the sensor's largest frame" % img.size)
        img.load()
    except AssistError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise AssistError("bad_image", "not a readable JPEG (%d bytes): %s" % (len(data), e))
    gray = img.convert("L")
    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.bytes for r in found], gray.width, gray.height


Listener = Callable[[AssistResult], None]


class HostAssist:
    """Feeds snapshot events from the links into a Reassembler, decodes complete snapshots and
    tells listeners. Thread-safe (serial links run in their own threads). `wait(device, id)`
    lets a diagnostic command block until the snapshot it asked for has been decoded."""

    def __init__(self, decode: Callable[[bytes], tuple] = decode_image, keep: int = 32, **reassembler_kw):
        self.decode = decode
        self.reassembler = Reassembler(**reassembler_kw)
        self.listeners: list[Listener] = []
        self.errors: list[AssistError] = []  # recent chunk-level errors, bounded
        self.counts = {"chunks": 0, "snapshots": 0, "decoded": 0, "empty": 0, "failed": 0, "bad_chunks": 0}
        self._keep = keep
        self._results: dict[tuple[str, int], AssistResult] = {}
        self._cv = threading.Condition()

    def add_listener(self, fn: Listener) -> None:
        self.listeners.append(fn)

    def on_event(self, kind: str, data: dict) -> Optional[AssistResult]:
        """The links' on_event hook: takes ("snapshot", chunk) and ignores everything else."""
        if kind != "snapshot":
            return None
        return self.feed(data)

    def feed(self, chunk: dict) -> Optional[AssistResult]:
        """One SNAPSHOT chunk {"device", "id", "index", "count", "data"}; the AssistResult when it
        completed a snapshot (also given to listeners), else None."""
        device = str(chunk.get("device") or "unknown")
        with self._cv:
            self.counts["chunks"] += 1
            try:
                snap = self.reassembler.feed(device, int(chunk["id"]), int(chunk["index"]),
                                             int(chunk["count"]), bytes(chunk["data"]))
            except (AssistError, KeyError, TypeError, ValueError) as e:
                err = e if isinstance(e, AssistError) else AssistError("snapshot_malformed", repr(e))
                self.counts["bad_chunks"] += 1
                self._note(err)
                result = None
                if chunk.get("id") is not None and isinstance(e, AssistError):
                    result = AssistResult(device, int(chunk["id"]), error=err)
                    self._store(result)
            else:
                result = None if snap is None else self._decode(snap)
            for err in self.reassembler.expire():
                self._note(err)
        if result is not None:
            for fn in list(self.listeners):
                fn(result)
        return result

    def _decode(self, snap: Snapshot) -> AssistResult:
        self.counts["snapshots"] += 1
        r = AssistResult(snap.device, snap.id, size=len(snap.data))
        t0 = time.perf_counter()
        try:
            r.payloads, r.width, r.height = self.decode(snap.data)
        except AssistError as e:
            r.error = e
        except Exception as e:  # a decoder crash is reported with its reason, not raised into a link thread
            r.error = AssistError("decode_failed", "%s: %s" % (type(e).__name__, e))
        r.decode_ms = 1000.0 * (time.perf_counter() - t0)
        key = "failed" if r.error else "decoded" if r.payloads else "empty"
        self.counts[key] += 1
        self._store(r)
        return r

    def _store(self, r: AssistResult) -> None:
        self._results[(r.device, r.id)] = r
        while len(self._results) > self._keep:
            self._results.pop(next(iter(self._results)))
        self._cv.notify_all()

    def _note(self, err: AssistError) -> None:
        self.errors.append(err)
        del self.errors[:-32]

    def wait(self, device: str, sid: int, timeout: float = 10.0) -> AssistResult:
        """Block until snapshot `sid` from `device` is decoded (or failed); AssistError
        ("snapshot_timeout") naming what is missing when it does not arrive in time."""
        end = time.monotonic() + timeout
        key = (str(device), int(sid))
        with self._cv:
            while key not in self._results:
                left = end - time.monotonic()
                if left <= 0:
                    part = self.reassembler._partial.get(key)
                    what = ("chunk(s) %s of %d missing" % (_describe(part.missing()), part.count)
                            if part else "no chunk arrived")
                    raise AssistError("snapshot_timeout", "snapshot %d from %s: %s after %.1f s"
                                      % (sid, device, what, timeout))
                self._cv.wait(min(left, 0.5))
                for err in self.reassembler.expire():
                    self._note(err)
            return self._results[key]

    def status(self) -> dict:
        with self._cv:
            d = dict(self.counts)
            d["pending"] = self.reassembler.pending()
            d["last_error"] = str(self.errors[-1]) if self.errors else None
            return d


# ---------------------------------------------------------------- answering the scanner


def reply_args(result: AssistResult) -> dict:
    """Arguments of the COMMAND "assist.result" that hands the scanner what the bridge read
    (firmware/assist.py feeds them into its normal scan path; at most 4 payloads)."""
    import base64
    return {"id": result.id, "payloads": [base64.b64encode(p).decode("ascii") for p in result.payloads[:4]]}


class Responder:
    """Listener that answers each scanner whose snapshot yielded payloads with "assist.result".

    `send_command(device, cmd, args)` is the link's command call (it may block waiting for the
    REPLY), so it runs on one worker thread, never on the link thread that delivered the chunk;
    a bounded queue keeps a flood of snapshots from piling up."""

    def __init__(self, send_command: Callable[[str, str, dict], object], queue_max: int = 8):
        import queue
        self.send_command = send_command
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: Optional[str] = None
        self._q: "queue.Queue" = queue.Queue(maxsize=queue_max)
        self._thread = threading.Thread(target=self._run, name="host-assist-reply", daemon=True)
        self._thread.start()

    def __call__(self, result: AssistResult) -> None:
        import queue
        if not result.ok or not result.payloads:
            return
        try:
            self._q.put_nowait(result)
        except queue.Full:
            self.dropped += 1
            self.last_error = "reply queue full: snapshot %d from %s not answered" % (result.id, result.device)

    def _run(self) -> None:
        while True:
            result = self._q.get()
            if result is None:
                return
            try:
                self.send_command(result.device, "assist.result", reply_args(result))
                self.sent += 1
            except Exception as e:  # a scanner gone away must not kill the worker; counted, shown
                self.failed += 1
                self.last_error = "assist.result to %s: %s" % (result.device, e)

    def close(self, timeout: float = 2.0) -> None:
        import queue
        try:
            self._q.put(None, timeout=timeout)
        except queue.Full:
            return  # the worker is stuck in a command call; it is a daemon thread
        self._thread.join(timeout)
