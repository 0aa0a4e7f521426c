# MQTT 3.1.1 client for the scanner: packet codec (pure) and an asyncio client that never blocks
# the app. QoS 1 publishes are kept until PUBACK and resent (DUP) after every reconnect; keepalive
# pings make the broker notice a dead scanner so its last will fires; reconnects back off with
# jitter; TLS through asyncio.open_connection(ssl=...). Written from the MQTT 3.1.1 spec (OASIS
# 2014); peterhinch's mqtt_as is the behavioural model. Runs in MicroPython and CPython alike.
import struct

try:
    import asyncio
except ImportError:  # older MicroPython
    import uasyncio as asyncio  # type: ignore

try:
    from micropython import const
except ImportError:  # CPython
    def const(__x):
        return __x

try:
    from time import ticks_ms, ticks_diff  # type: ignore[attr-defined]
except ImportError:  # CPython
    import time as _time

    _monotonic = getattr(_time, "monotonic")  # not in MicroPython's time: hide it from the stubs

    def ticks_ms():
        return int(_monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

import random
from scanbridge_fw.errors import CodedError

CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
SUBSCRIBE = const(8)
SUBACK = const(9)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

CONNACK_REASONS = ("accepted", "bad_protocol", "client_id_rejected", "server_unavailable",
                   "bad_credentials", "not_authorized")


class MQTTError(CodedError):
    """A protocol or connection failure; `code` is a stable reason code."""


# ---------------------------------------------------------------- packet codec (pure)


def _varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _utf8(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    if len(b) > 0xFFFF:
        raise MQTTError("oversize", "string of %d bytes" % len(b))
    return struct.pack(">H", len(b)) + b


def _packet(first, body):
    return bytes([first]) + _varlen(len(body)) + body


def connect_packet(client_id, keepalive=60, clean=False, user=None, password=None,
                   will_topic=None, will_payload=b"", will_qos=1, will_retain=True):
    flags = 0x02 if clean else 0
    payload = _utf8(client_id)
    if will_topic is not None:
        flags |= 0x04 | (will_qos & 3) << 3 | (0x20 if will_retain else 0)
        payload += _utf8(will_topic) + _utf8(will_payload)
    if user is not None:
        flags |= 0x80
        payload += _utf8(user)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    head = _utf8("MQTT") + struct.pack(">BBH", 4, flags, keepalive)
    return _packet(CONNECT << 4, head + payload)


def publish_packet(topic, payload, qos=0, retain=False, dup=False, pid=0):
    first = PUBLISH << 4 | (qos & 3) << 1 | (1 if retain else 0) | (8 if dup and qos else 0)
    body = _utf8(topic)
    if qos:
        body += struct.pack(">H", pid)
    return _packet(first, body + bytes(payload))


def puback_packet(pid):
    return _packet(PUBACK << 4, struct.pack(">H", pid))


def subscribe_packet(pid, filters):
    """filters: list of (topic filter, qos)."""
    body = struct.pack(">H", pid)
    for f, q in filters:
        body += _utf8(f) + bytes([q])
    return _packet(SUBSCRIBE << 4 | 2, body)


PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"


class PacketDecoder:
    """Cuts a byte stream into (type, flags, body) packets. Bounded: a packet longer than
    max_packet raises MQTTError('oversize') (the connection is then dropped)."""

    def __init__(self, max_packet=4096):
        self.max_packet = max_packet
        self._buf = bytearray()

    def feed(self, data):
        buf = self._buf
        buf += data
        out = []
        while True:
            n = len(buf)
            if n < 2:
                break
            length = 0
            shift = 0
            i = 1
            complete = False
            while i < n and i <= 4:
                b = buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    complete = True
                    break
            if not complete:
                if i > 4:
                    raise MQTTError("malformed", "remaining length over 4 bytes")
                break
            if length > self.max_packet:
                raise MQTTError("oversize", "packet of %d bytes" % length)
            if n < i + length:
                break
            first = buf[0]
            out.append((first >> 4, first & 0x0F, bytes(buf[i:i + length])))
            buf[:] = buf[i + length:]
        return out


def parse_publish(flags, body):
    """(topic, pid, payload, qos, retain, dup) of a PUBLISH body."""
    if len(body) < 2:
        raise MQTTError("malformed", "short PUBLISH")
    tlen = struct.unpack(">H", body[:2])[0]
    qos = (flags >> 1) & 3
    pos = 2 + tlen
    pid = 0
    if qos:
        if len(body) < pos + 2:
            raise MQTTError("malformed", "short PUBLISH")
        pid = struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 2
    elif len(body) < pos:
        raise MQTTError("malformed", "short PUBLISH")
    return body[2:2 + tlen].decode(), pid, body[pos:], qos, bool(flags & 1), bool(flags & 8)


def parse_connack(body):
    """(session_present, return code)."""
    if len(body) != 2:
        raise MQTTError("malformed", "CONNACK of %d bytes" % len(body))
    return bool(body[0] & 1), body[1]


def parse_suback(body):
    """(pid, [granted qos or 0x80 per filter])."""
    if len(body) < 3:
        raise MQTTError("malformed", "short SUBACK")
    return struct.unpack(">H", body[:2])[0], list(body[2:])


def parse_pid(body):
    if len(body) != 2:
        raise MQTTError("malformed", "bad packet id field")
    return struct.unpack(">H", body)[0]


def backoff_ms(attempt, base_ms, max_ms, rand16):
    """Delay before reconnect attempt `attempt` (0-based): exponential, capped, with jitter in
    [50 %, 150 %) so a store's scanners do not reconnect in lockstep after a broker restart.
    rand16 is a random number in 0..65535 (passed in to keep this pure)."""
    d = base_ms << min(attempt, 16)
    if d > max_ms:
        d = max_ms
    return d // 2 + d * rand16 // 65536


# ---------------------------------------------------------------- asyncio client


class MQTTClient:
    """One connection to the broker, kept up by `run()`.

    on_message(topic, payload, retained, dup) is called for every incoming PUBLISH (QoS 1 is
    acked after it returns). on_up() / on_down() are called (plain functions) when the session
    comes up or goes down. Inflight QoS 1 publishes live in `self.unacked` until PUBACK."""

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=60,
                 ssl=None, server_hostname=None, clean=False, will=None, birth=None,
                 subscriptions=(), on_message=None, on_up=None, on_down=None, max_inflight=16,
                 backoff=(500, 30000), timeout_ms=10000, max_packet=4096):
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.clean = clean
        self.will = will  # (topic, payload, retain) published by the broker when we vanish
        self.birth = birth  # (topic, payload, retain) published by us on every connect
        self.subscriptions = list(subscriptions)  # [(filter, qos)]
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.max_inflight = max_inflight
        self.backoff = backoff
        self.timeout_ms = timeout_ms
        self.max_packet = max_packet
        self.unacked = {}  # pid -> [topic, payload, retain, sent_ms]
        self.is_up = False
        self.up = asyncio.Event()
        self.last_error = None
        self.connects = 0
        self.failures = 0
        self.pings = 0
        self.resent = 0
        self._pid = 0
        self._room = asyncio.Event()  # set while unacked has room
        self._room.set()
        self._reader = None
        self._writer = None
        self._lock = asyncio.Lock()
        self._connack = None
        self._connack_ev = asyncio.Event()
        self._last_rx = 0
        self._last_tx = 0
        self._running = False
        self._stop = False
        self._sub_pid = -1
        self.session_present = False
        self._reported = False

    # -- public
    async def publish(self, topic, payload, qos=1, retain=False):
        """Queue a publish and send it if connected. QoS 1: returns its packet id; it is resent
        until the broker acks it, across reconnects. Waits while max_inflight are unacked."""
        if not qos:
            if self.is_up:
                await self._send(publish_packet(topic, payload, 0, retain))
            return 0
        while len(self.unacked) >= self.max_inflight:
            self._room.clear()
            await self._room.wait()
        pid = self._next_pid()
        entry = [topic, payload, retain, ticks_ms()]
        self.unacked[pid] = entry
        if len(self.unacked) >= self.max_inflight:
            self._room.clear()
        if self.is_up:
            try:
                await self._send(publish_packet(topic, payload, 1, retain, False, pid))
            except OSError as e:
                self._fail("write_failed", e)
        return pid

    def acked(self, pid):
        return pid not in self.unacked

    async def run(self):
        """Connect and stay connected until stop()/disconnect()."""
        self._running = True
        attempt = 0
        while not self._stop:
            try:
                await self._connect()
                attempt = 0
                await self._serve()
            except MQTTError as e:
                self._fail(e.code, e.message)
            except asyncio.TimeoutError as e:  # before OSError: a subclass of it in CPython only
                self._fail("timeout", e)
            except OSError as e:
                self._fail("connection_failed", e)
            self._down()
            if self._stop:
                break
            self.failures += 1
            delay = backoff_ms(attempt, self.backoff[0], self.backoff[1], random.getrandbits(16))
            attempt += 1
            await asyncio.sleep(delay / 1000)
        self._running = False

    async def disconnect(self):
        """Clean goodbye: DISCONNECT means the broker discards our will (publish offline first)."""
        self._stop = True
        if self.is_up:
            try:
                await self._send(DISCONNECT_PACKET)
            except OSError:
                pass
        self._close()

    def kill(self):
        """Drop the connection without DISCONNECT (as a power cut would): the will fires."""
        self._stop = True
        self._close()

    def drop(self):
        """Drop the connection and reconnect (tests, and after a WiFi change)."""
        self._close()

    def stats(self):
        return {"up": self.is_up, "connects": self.connects, "failures": self.failures,
                "pings": self.pings, "resent": self.resent, "inflight": len(self.unacked),
                "last_error": self.last_error}

    # -- internals
    def _next_pid(self):
        while True:
            self._pid = self._pid % 0xFFFF + 1
            if self._pid not in self.unacked and self._pid != self._sub_pid:
                return self._pid

    def _fail(self, code, err):
        if not self._reported:  # the first reason a connection died is the one to report
            self._reported = True
            self.last_error = "%s: %s" % (code, err)
        self._close()

    def _close(self):
        w = self._writer
        self._writer = None
        if w is not None:
            try:
                w.close()
            except OSError:
                pass

    def _down(self):
        was = self.is_up
        self.is_up = False
        self.up.clear()
        if was and self.on_down:
            self.on_down()

    async def _send(self, data):
        w = self._writer
        if w is None:
            raise OSError("not connected")
        async with self._lock:
            w.write(data)
            await w.drain()
        self._last_tx = ticks_ms()

    async def _connect(self):
        self._reported = False
        kw = {}
        if self.ssl:
            kw["ssl"] = self.ssl
            if self.server_hostname:
                kw["server_hostname"] = self.server_hostname
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, **kw), self.timeout_ms / 1000)
        will = self.will
        pkt = connect_packet(self.client_id, self.keepalive, self.clean, self.user, self.password,
                             will[0] if will else None, will[1] if will else b"", 1,
                             will[2] if will else False)
        self._connack = None
        self._connack_ev = asyncio.Event()
        await self._send(pkt)

    async def _serve(self):
        reader = self._reader
        if reader is None:
            raise MQTTError("connection_closed", "before CONNACK")
        decoder = PacketDecoder(self.max_packet)
        self._last_rx = ticks_ms()
        pinger = asyncio.create_task(self._keepalive())
        try:
            first = True
            while True:
                if first:
                    # the CONNACK must come within the timeout
                    data = await asyncio.wait_for(reader.read(1024), self.timeout_ms / 1000)
                else:
                    data = await reader.read(1024)
                if not data:
                    raise MQTTError("connection_closed", "by the broker")
                self._last_rx = ticks_ms()
                for ptype, flags, body in decoder.feed(data):
                    if first:
                        if ptype != CONNACK:
                            raise MQTTError("protocol", "expected CONNACK, got type %d" % ptype)
                        first = False
                        await self._on_connack(body)
                    else:
                        await self._dispatch(ptype, flags, body)
        finally:
            pinger.cancel()

    async def _on_connack(self, body):
        present, rc = parse_connack(body)
        self.session_present = present
        if rc:
            raise MQTTError(CONNACK_REASONS[rc] if rc < len(CONNACK_REASONS) else "refused",
                            "CONNACK return code %d" % rc)
        self.connects += 1
        if self.subscriptions:  # always: a broker restarted without persistence forgot them
            self._sub_pid = self._next_pid()
            await self._send(subscribe_packet(self._sub_pid, self.subscriptions))
        if self.birth:
            await self._send(publish_packet(self.birth[0], self.birth[1], 0, self.birth[2]))
        # Resend what the broker has not acked, oldest first, flagged DUP (MQTT-4.4.0-1).
        for pid in sorted(self.unacked, key=lambda p: self.unacked[p][3]):
            e = self.unacked.get(pid)
            if e is None:
                continue
            e[3] = ticks_ms()
            self.resent += 1
            await self._send(publish_packet(e[0], e[1], 1, e[2], True, pid))
        self.is_up = True
        self.up.set()
        if self.on_up:
            self.on_up()

    async def _dispatch(self, ptype, flags, body):
        if ptype == PUBLISH:
            topic, pid, payload, qos, retain, dup = parse_publish(flags, body)
            if self.on_message:
                self.on_message(topic, payload, retain, dup)
            if qos == 1:
                await self._send(puback_packet(pid))
        elif ptype == PUBACK:
            pid = parse_pid(body)
            if self.unacked.pop(pid, None) is not None and len(self.unacked) < self.max_inflight:
                self._room.set()
        elif ptype == SUBACK:
            pid, codes = parse_suback(body)
            if 0x80 in codes:
                self.last_error = "subscribe_refused: %r" % (codes,)
        elif ptype == PINGRESP:
            pass
        else:
            raise MQTTError("protocol", "unexpected packet type %d" % ptype)

    async def _keepalive(self):
        ka = self.keepalive * 1000
        tick = max(100, min(ka // 4, 5000)) if ka else 5000
        while True:
            await asyncio.sleep(tick / 1000)
            now = ticks_ms()
            if ka and ticks_diff(now, self._last_rx) > ka * 3 // 2:
                self._fail("keepalive_timeout", "no packet from the broker in %d ms" % ticks_diff(now, self._last_rx))
                return
            if self.unacked:
                oldest = min(e[3] for e in self.unacked.values())
                if ticks_diff(now, oldest) > self.timeout_ms:
                    # no PUBACK in time: the link is dead; reconnecting resends (as mqtt_as does)
                    self._fail("ack_timeout", "no PUBACK in %d ms" % self.timeout_ms)
                    return
            if ka and ticks_diff(now, self._last_tx) >= ka // 2:
                self.pings += 1
                try:
                    await self._send(PINGREQ_PACKET)
                except OSError as e:
                    self._fail("write_failed", e)
                    return
