# Wire format shared by the scanner firmware and the bridge: message bodies, serial frames,
# and the reliable session (numbering, acks, retransmit, duplicate drop). Sans-IO: callers feed
# bytes in and write the bytes it returns; time is passed in as milliseconds.
#
# Runs unchanged in CPython (bridge, tests) and MicroPython (device, WebAssembly port).
# The byte layout is documented with examples in docs/protocol.md.
import binascii
import json
import struct
from scanbridge_fw.errors import CodedError

try:
    from micropython import const
except ImportError:  # CPython: const() is only a hint to MicroPython's compiler
    def const(__x):
        return __x


PROTOCOL_VERSION = const(1)
_VER_CHAR = const(0x31)  # b"1": protocol version as it appears in a frame

SOF = const(0x7E)  # "~" starts a frame
EOL = const(0x0A)  # "\n" ends it
MAX_BODY = const(1024)  # bytes of a message body before base64
MAX_LINE = const(1400)  # characters between "~" and "\n"; longer lines are dropped
MAX_PAYLOAD = const(1000)  # a SCAN payload (the QR text) or a JPEG chunk

# Message kinds: one printable ASCII letter each.
HELLO = const(0x48)  # H  identity and versions, both directions; resets the peer's duplicate filter
SCAN = const(0x53)  # S  a decoded code, device -> bridge
RESULT = const(0x52)  # R  the verdict for a scan, bridge -> device
STATUS = const(0x54)  # T  periodic health, device -> bridge (JSON)
COMMAND = const(0x43)  # C  a request, either direction (JSON: id, cmd, args)
REPLY = const(0x50)  # P  the answer to a COMMAND (JSON: id, ok, result | error)
LOG = const(0x4C)  # L  a log line, device -> bridge (UTF-8)
SNAPSHOT = const(0x4A)  # J  one chunk of a camera JPEG, device -> bridge
ERROR = const(0x45)  # E  the peer sent something we cannot take (JSON: code, message)
ACK = const(0x41)  # A  acknowledges the peer's numbered frame whose seq it carries

KIND_NAMES = {
    HELLO: "HELLO", SCAN: "SCAN", RESULT: "RESULT", STATUS: "STATUS", COMMAND: "COMMAND",
    REPLY: "REPLY", LOG: "LOG", SNAPSHOT: "SNAPSHOT", ERROR: "ERROR", ACK: "ACK",
}
# Kinds delivered reliably (numbered, acked, retransmitted, duplicates dropped).
RELIABLE = (HELLO, SCAN, RESULT, COMMAND, REPLY, SNAPSHOT)
_JSON_KINDS = (HELLO, STATUS, COMMAND, REPLY, ERROR)

# RESULT verdicts
ACCEPTED = const(0)
REJECTED = const(1)
PENDING = const(2)
VERDICT_NAMES = ("accepted", "rejected", "pending")


class WireError(CodedError):
    """Something on the wire could not be taken. `code` is a stable reason code."""


class Message:
    """One decoded message: kind (letter code), seq (0 when unnumbered), data (a dict)."""

    __slots__ = ("kind", "seq", "data")

    def __init__(self, kind, seq, data):
        self.kind = kind
        self.seq = seq
        self.data = data

    @property
    def name(self):
        return KIND_NAMES.get(self.kind, "?")

    def __repr__(self):
        return "Message(%s, %d, %r)" % (self.name, self.seq, self.data)


# ---------------------------------------------------------------- bodies


def encode_body(kind, data):
    """Turn a message's fields (a dict) into its body bytes."""
    if kind == SCAN:
        payload = bytes(data["payload"])
        if len(payload) > MAX_PAYLOAD:
            raise WireError("oversize", "scan payload of %d bytes" % len(payload))
        ms = min(max(int(data.get("decode_ms", 0)), 0), 0xFFFF)
        q = min(max(int(data.get("quality", 0)), 0), 255)
        return struct.pack(">HBB", ms, q, int(data.get("flags", 0)) & 0xFF) + payload
    if kind == RESULT:
        reason = data.get("reason", "").encode()[:64]
        text = data.get("text", "").encode()[:128]
        return struct.pack(">HBB", data["scan_seq"] & 0xFFFF, data["verdict"], len(reason)) + reason + text
    if kind == SNAPSHOT:
        chunk = bytes(data["data"])
        if len(chunk) > MAX_PAYLOAD:
            raise WireError("oversize", "snapshot chunk of %d bytes" % len(chunk))
        return struct.pack(">HHH", data["id"] & 0xFFFF, data["index"], data["count"]) + chunk
    if kind == LOG:
        return data.get("text", "").encode()[:MAX_BODY]
    if kind == ACK:
        return b""
    if kind in _JSON_KINDS:
        body = json.dumps(data).encode()
        if len(body) > MAX_BODY:
            raise WireError("oversize", "%s body of %d bytes" % (KIND_NAMES[kind], len(body)))
        return body
    raise WireError("unknown_type", "kind 0x%02x" % kind)


def decode_body(kind, body):
    """Parse body bytes of a given kind into a dict; raise WireError when malformed."""
    try:
        if kind == SCAN:
            if len(body) < 4:
                raise WireError("malformed", "short SCAN")
            ms, q, flags = struct.unpack(">HBB", body[:4])
            return {"payload": bytes(body[4:]), "decode_ms": ms, "quality": q, "flags": flags}
        if kind == RESULT:
            if len(body) < 4:
                raise WireError("malformed", "short RESULT")
            seq, verdict, rlen = struct.unpack(">HBB", body[:4])
            if verdict > PENDING or 4 + rlen > len(body):
                raise WireError("malformed", "bad RESULT")
            return {"scan_seq": seq, "verdict": verdict, "reason": body[4:4 + rlen].decode(),
                    "text": body[4 + rlen:].decode()}
        if kind == SNAPSHOT:
            if len(body) < 6:
                raise WireError("malformed", "short SNAPSHOT")
            sid, index, count = struct.unpack(">HHH", body[:6])
            if index >= count:
                raise WireError("malformed", "chunk index past count")
            return {"id": sid, "index": index, "count": count, "data": bytes(body[6:])}
        if kind == LOG:
            return {"text": body.decode()}
        if kind == ACK:
            return {}
        if kind in _JSON_KINDS:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise WireError("malformed", "JSON body is not an object")
            return data
    except WireError:
        raise
    except Exception as e:  # UnicodeError, ValueError from json, struct.error
        raise WireError("malformed", "%s body: %s" % (KIND_NAMES.get(kind, "?"), e))
    raise WireError("unknown_type", "kind 0x%02x" % kind)


# ---------------------------------------------------------------- frames


def encode_frame(kind, seq, data):
    """One frame as ASCII bytes: ~ VER KIND SEQ(4 hex) BODY(base64) CRC32(8 hex) \\n.

    Every byte is printable ASCII or the final newline, so nothing the bridge sends can be
    taken by the MicroPython REPL as Ctrl-A..Ctrl-E."""
    b64 = binascii.b2a_base64(encode_body(kind, data))[:-1]  # drop its trailing newline
    head = b"%c%c%04x" % (_VER_CHAR, kind, seq & 0xFFFF)
    crc = binascii.crc32(b64, binascii.crc32(head)) & 0xFFFFFFFF
    return b"~" + head + b64 + b"%08x\n" % crc


class FrameDecoder:
    """Finds frames in a byte stream full of other things (ROM boot noise, MicroPython banners,
    prints), checks them, and returns what it found. Bounded memory: one line buffer."""

    def __init__(self):
        self._buf = bytearray()
        self._in_frame = False
        self._overflow = False
        self.frames = 0
        self.crc_errors = 0
        self.malformed = 0
        self.oversize = 0
        self.noise_bytes = 0

    def feed(self, data):
        """Feed raw bytes; return a list of Message and WireError (in stream order)."""
        out = []
        buf = self._buf
        for b in data:
            if b == SOF:
                if self._in_frame and len(buf):
                    self.noise_bytes += len(buf)  # an unterminated frame: noise
                buf[:] = b""
                self._in_frame = True
                self._overflow = False
            elif not self._in_frame:
                self.noise_bytes += 1
            elif b == EOL:
                self._in_frame = False
                if self._overflow:
                    self._overflow = False
                    out.append(WireError("oversize", "frame longer than %d" % MAX_LINE))
                else:
                    item = self._parse(buf)
                    if item is not None:
                        out.append(item)
                buf[:] = b""
            elif self._overflow:
                pass
            elif len(buf) >= MAX_LINE:
                self.oversize += 1
                self._overflow = True
                buf[:] = b""
            else:
                buf.append(b)
        return out

    def _parse(self, line):
        n = len(line)
        if n < 14:
            self.malformed += 1
            return None  # too short to be a frame: noise that contained "~"
        if n % 4 != 2:
            # head(6) + base64 (multiple of 4) + crc(8): any other length is damage
            self.malformed += 1
            return None
        try:
            crc = int(bytes(line[n - 8:]), 16)
        except ValueError:
            self.malformed += 1
            return None
        body64 = bytes(line[6:n - 8])
        if binascii.crc32(body64, binascii.crc32(bytes(line[:6]))) & 0xFFFFFFFF != crc:
            self.crc_errors += 1
            return None
        if line[0] != _VER_CHAR:
            return WireError("protocol_version", "peer speaks version %c, we speak %d"
                             % (line[0], PROTOCOL_VERSION))
        kind = line[1]
        try:
            seq = int(bytes(line[2:6]), 16)
        except ValueError:
            self.malformed += 1
            return None
        if kind not in KIND_NAMES:
            return WireError("unknown_type", "kind %r seq %d" % (chr(kind), seq))
        try:
            body = binascii.a2b_base64(body64)
            data = decode_body(kind, body)
        except WireError as e:
            self.malformed += 1
            return e
        except Exception as e:
            self.malformed += 1
            return WireError("malformed", str(e))
        self.frames += 1
        return Message(kind, seq, data)


# ---------------------------------------------------------------- reliable session


class Link:
    """One end of a serial session: numbers outgoing messages, retransmits them until acked
    (stop-and-wait, so they arrive once and in order), acks and de-duplicates incoming ones.

    Pure logic: `receive(bytes, now_ms)` returns delivered Messages; `poll(now_ms)` returns
    bytes to write. `hello` is this end's HELLO data; `session` a random number per boot."""

    def __init__(self, hello, session, queue_max=16, rto_ms=300, rto_max_ms=3000):
        self.hello = hello
        self.session = session & 0x7FFFFFFF
        self.queue_max = queue_max
        self.rto_ms = rto_ms
        self.rto_max_ms = rto_max_ms
        self.decoder = FrameDecoder()
        self._queue = []  # [kind, data] waiting to be sent, head is in flight
        self._tx_seq = 0
        self._inflight = None  # encoded frame bytes
        self._inflight_seq = 0
        self._deadline = 0
        self._rto = rto_ms
        self._tries = 0
        self._out = bytearray()  # unreliable frames (acks, errors) waiting for poll()
        self._rx_last = -1
        self.peer = None  # the peer's last HELLO data
        self.peer_session = None
        self.errors = []  # recent WireErrors, bounded
        self.retransmits = 0
        self.duplicates = 0
        self.sent = 0
        self.delivered = 0

    # -- sending
    def start(self, ask=True):
        """Queue our HELLO (first thing on a fresh or re-opened line). ask: want the peer's."""
        data = dict(self.hello)
        data["proto"] = PROTOCOL_VERSION
        data["session"] = self.session
        data["ask"] = ask
        self._queue.insert(1 if self._inflight else 0, [HELLO, data, self._next_seq()])

    def send(self, kind, data):
        """Queue a reliable message and return its seq; raises WireError('queue_full') rather
        than drop one."""
        if kind not in RELIABLE:
            raise WireError("unknown_type", "kind %s is not sent reliably" % KIND_NAMES.get(kind, kind))
        if len(self._queue) >= self.queue_max:
            raise WireError("queue_full", "%d messages waiting for the peer" % len(self._queue))
        encode_body(kind, data)  # fail now, not at send time, on a message that cannot encode
        seq = self._next_seq()
        self._queue.append([kind, data, seq])
        return seq

    def _next_seq(self):
        # Numbered when queued, so the sender knows the seq a RESULT will name (send() returns
        # it). The receiver only compares with the last seq it took, so a HELLO queued ahead of
        # older messages may carry a higher number than they do.
        self._tx_seq = self._tx_seq % 0xFFFF + 1
        return self._tx_seq

    def send_unreliable(self, kind, data):
        """STATUS, LOG and ERROR go once, unnumbered (seq 0); losing one is harmless."""
        self._out += encode_frame(kind, 0, data)

    def forget(self, kind):
        """Drop every queued message of `kind`, the one in flight included (RESULTs meant for a
        peer that has restarted since). Returns how many were dropped."""
        n = 0
        i = 0
        while i < len(self._queue):
            if self._queue[i][0] == kind:
                if i == 0 and self._inflight is not None:
                    self._inflight = None
                    self._tries = 0
                self._queue.pop(i)
                n += 1
            else:
                i += 1
        return n

    def pending(self):
        """Number of reliable messages not yet acknowledged."""
        return len(self._queue)

    def stalled(self):
        return self._tries > 3

    def reset_timer(self, now_ms):
        """After a reopen: retransmit what is in flight at once."""
        self._deadline = now_ms
        self._rto = self.rto_ms

    def poll(self, now_ms):
        """Bytes to write now: acks/errors, then a new or retransmitted reliable frame."""
        out = self._out
        self._out = bytearray()
        if self._inflight is None and self._queue:
            kind, data, seq = self._queue[0]
            self._inflight_seq = seq
            self._inflight = encode_frame(kind, seq, data)
            self._deadline = now_ms
            self._rto = self.rto_ms
            self._tries = 0
        if self._inflight is not None and _ticks_diff(now_ms, self._deadline) >= 0:
            if self._tries:
                self.retransmits += 1
            else:
                self.sent += 1
            self._tries += 1
            out += self._inflight
            self._deadline = _ticks_add(now_ms, self._rto)
            self._rto = min(self._rto * 2, self.rto_max_ms)
        return bytes(out)

    def next_deadline(self, now_ms):
        """Milliseconds until poll() has something to do (0 = now, -1 = nothing pending)."""
        if len(self._out) or (self._inflight is None and self._queue):
            return 0
        if self._inflight is None:
            return -1
        return max(0, _ticks_diff(self._deadline, now_ms))

    # -- receiving
    def receive(self, data, now_ms=0):
        """Feed received bytes; return the Messages to deliver, each exactly once."""
        delivered = []
        for item in self.decoder.feed(data):
            if isinstance(item, WireError):
                self._note(item)
                if item.code in ("protocol_version", "unknown_type"):
                    self.send_unreliable(ERROR, {"code": item.code, "message": item.message})
                continue
            kind = item.kind
            if kind == ACK:
                if self._inflight is not None and item.seq == self._inflight_seq:
                    self._inflight = None
                    self._queue.pop(0)
                    self._tries = 0
                continue
            if kind not in RELIABLE:
                delivered.append(item)  # STATUS, LOG, ERROR: unnumbered
                continue
            self._out += encode_frame(ACK, item.seq, {})
            if kind == HELLO:
                if self._take_hello(item):
                    delivered.append(item)
                continue
            if item.seq == self._rx_last:
                self.duplicates += 1
                continue
            self._rx_last = item.seq
            self.delivered += 1
            delivered.append(item)
        return delivered

    def _take_hello(self, msg):
        d = msg.data
        if d.get("proto") != PROTOCOL_VERSION:
            err = WireError("protocol_version", "peer HELLO says protocol %r" % d.get("proto"))
            self._note(err)
            self.send_unreliable(ERROR, {"code": err.code, "message": err.message})
            return False
        new_session = d.get("session") != self.peer_session
        if not new_session and msg.seq == self._rx_last:
            self.duplicates += 1
            return False
        self.peer_session = d.get("session")
        self.peer = d
        self._rx_last = msg.seq
        self.delivered += 1
        if (new_session or d.get("ask")) and not self._hello_queued():
            self.start(ask=False)
        return True

    def _hello_queued(self):
        for i, item in enumerate(self._queue):
            if item[0] == HELLO and not (i == 0 and self._inflight is not None):
                return True
        return False

    def _note(self, err):
        self.errors.append(err)
        if len(self.errors) > 8:
            self.errors.pop(0)

    def stats(self):
        d = self.decoder
        return {"sent": self.sent, "retransmits": self.retransmits, "delivered": self.delivered,
                "duplicates": self.duplicates, "crc_errors": d.crc_errors, "malformed": d.malformed,
                "oversize": d.oversize, "noise_bytes": d.noise_bytes, "pending": len(self._queue)}


def _ticks_diff(a, b):
    # Works for plain monotonic ms (CPython) and MicroPython's wrapping ticks_ms alike as long as
    # callers pass values from one clock; the arithmetic is wrapped to 30 bits like ticks_ms.
    d = (a - b) & 0x3FFFFFFF
    return d - 0x40000000 if d & 0x20000000 else d


def _ticks_add(a, d):
    return (a + d) & 0x3FFFFFFF
