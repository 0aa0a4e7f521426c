# Sends one camera JPEG to the bridge as SNAPSHOT chunks (wire kind J: id, index, count, data),
# for host-assisted decoding (the bridge runs zxing-cpp on it) and for diagnostics.
# Bounded: a snapshot is at most MAX_CHUNKS chunks of wire.MAX_PAYLOAD bytes, and at most
# `window` chunks wait on the link at once, so a SCAN queued meanwhile is not refused.
#
# A "channel" is anything with send(kind, data) -> seq and pending() -> int: wire.Link (serial)
# and mqtt_link.MqttSession both are; channel_of(app_link) finds it behind an AppLink.
from scanbridge_fw import wire
from scanbridge_fw.compat import sleep_ms, ticks_diff, ticks_ms
from scanbridge_fw.errors import CodedError

try:
    from micropython import const
except ImportError:  # CPython
    def const(__x):
        return __x

CHUNK = wire.MAX_PAYLOAD
MAX_CHUNKS = const(64)  # 64 KB: a VGA JPEG at medium quality; a QVGA one is 4-15 KB
MAX_BYTES = CHUNK * MAX_CHUNKS
WINDOW = const(4)  # chunks in flight; the serial link's queue holds 16 messages


class SnapshotError(CodedError):
    """A snapshot could not be sent. `code` is a stable reason code."""


_last_id = [0]


def next_id():
    """A new snapshot id (16 bits, wraps, never 0) so the bridge can tell snapshots apart."""
    _last_id[0] = _last_id[0] % 0xFFFF + 1
    return _last_id[0]


def chunk_count(size, chunk=CHUNK):
    return (size + chunk - 1) // chunk


def channel_of(link):
    """The reliable channel behind an app link (serial: .wire, MQTT: .mqtt), or the link itself."""
    for name in ("wire", "mqtt"):
        ch = getattr(link, name, None)
        if ch is not None and hasattr(ch, "send") and hasattr(ch, "pending"):
            return ch
    if hasattr(link, "send") and hasattr(link, "pending"):
        return link
    raise SnapshotError("no_channel", "this link cannot carry snapshots")


class Sender:
    """Splits `jpeg` into SNAPSHOT messages and queues them on a channel as it has room.

    The buffer must not change until `done` (copy a camera buffer that the next capture reuses:
    each chunk is copied when queued, never before, so memory stays at `window` chunks)."""

    def __init__(self, jpeg, snap_id=None, chunk=CHUNK, window=WINDOW):
        size = len(jpeg)
        if size == 0:
            raise SnapshotError("snapshot_empty", "no image bytes")
        if chunk < 1 or chunk > CHUNK:
            raise SnapshotError("bad_chunk", "chunk size must be 1..%d" % CHUNK)
        count = chunk_count(size, chunk)
        if count > MAX_CHUNKS:
            raise SnapshotError("snapshot_too_big", "%d bytes is more than %d chunks of %d"
                                % (size, MAX_CHUNKS, chunk))
        self.buf = memoryview(jpeg)
        self.size = size
        self.id = next_id() if snap_id is None else snap_id & 0xFFFF
        self.chunk = chunk
        self.count = count
        self.window = max(1, window)
        self.index = 0  # next chunk to queue

    @property
    def done(self):
        return self.index >= self.count

    def message(self, index):
        """The SNAPSHOT data dict of chunk `index`."""
        a = index * self.chunk
        return {"id": self.id, "index": index, "count": self.count,
                "data": bytes(self.buf[a:a + self.chunk])}

    def pump(self, channel):
        """Queue chunks while fewer than `window` messages wait; return how many were queued."""
        n = 0
        while self.index < self.count and channel.pending() < self.window:
            try:
                channel.send(wire.SNAPSHOT, self.message(self.index))
            except wire.WireError as e:
                if e.code == "queue_full":
                    break  # a scan took the room; try again on the next pump
                raise SnapshotError(e.code, e.message)
            self.index += 1
            n += 1
        return n


async def send(channel, jpeg, snap_id=None, window=WINDOW, timeout_ms=20000, poll_ms=20):
    """Queue the whole snapshot on `channel`, waiting for room; return (id, chunks).

    Raises SnapshotError("snapshot_timeout") when the link does not drain (bridge gone)."""
    s = Sender(jpeg, snap_id, CHUNK, window)
    t0 = ticks_ms()
    while True:
        s.pump(channel)
        if s.done:
            return s.id, s.count
        if ticks_diff(ticks_ms(), t0) > timeout_ms:
            raise SnapshotError("snapshot_timeout", "sent %d of %d chunks in %d ms"
                                % (s.index, s.count, timeout_ms))
        await sleep_ms(poll_ms)


class FallbackPolicy:
    """When the scanner should ask the bridge for help in host-assist fallback mode: after
    `misses` frames in a row without a code, at most once per `every_ms`. Pure logic."""

    def __init__(self, misses=10, every_ms=2000):
        self.misses = misses
        self.every_ms = every_ms
        self._run = 0
        self._last = None

    def frame(self, decoded, now_ms):
        """Report one frame (decoded: did the device read a code?); True: send this one."""
        if decoded:
            self._run = 0
            return False
        self._run += 1
        if self._run < self.misses:
            return False
        if self._last is not None and ticks_diff(now_ms, self._last) < self.every_ms:
            return False
        self._last = now_ms
        self._run = 0
        return True
