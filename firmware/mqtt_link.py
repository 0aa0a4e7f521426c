# The scanner's link to the bridges over WiFi and MQTT. MqttSession is the transport (the MQTT
# counterpart of the serial wire.Link): send(kind, data) -> seq, send_unreliable(kind, data), and
# RESULT/COMMAND messages delivered as wire.Message. MqttLink wraps WiFi + MqttSession in the
# app's link interface (link.AppLink; chosen by config "link": "mqtt"). A SCAN stays queued (bounded; on flash when a spool folder is configured, so it
# survives a reset) until its RESULT arrives; it is republished with the same (session, seq) when
# no RESULT comes in time, and the bridge drops the duplicates. Topics/payloads: topics.py.
import json
import os
import random

try:
    import asyncio
except ImportError:
    import uasyncio as asyncio  # type: ignore

from scanbridge_fw import mqtt_settings, topics, wire
from scanbridge_fw.link import AppLink
from scanbridge_fw.mqtt import MQTTClient, ticks_diff, ticks_ms


class Spool:
    """Scans waiting for their RESULT, one small file each, so a reset loses none."""

    def __init__(self, folder, max_items=64):
        self.folder = folder
        self.max_items = max_items
        try:
            os.mkdir(folder)
        except OSError:
            pass  # exists

    def _path(self, session, seq):
        return "%s/%08x%04x.scan" % (self.folder, session & 0xFFFFFFFF, seq & 0xFFFF)

    def add(self, session, seq, payload):
        with open(self._path(session, seq), "wb") as f:
            f.write(payload)

    def remove(self, session, seq):
        try:
            os.remove(self._path(session, seq))
        except OSError:
            pass  # already gone (duplicate RESULT)

    def load(self):
        """[(session, seq, payload)] of every spooled scan, oldest numbers first."""
        out = []
        for name in sorted(os.listdir(self.folder)):
            if not name.endswith(".scan") or len(name) != 17:
                continue
            try:
                session = int(name[:8], 16)
                seq = int(name[8:12], 16)
            except ValueError:
                continue
            with open(self.folder + "/" + name, "rb") as f:
                out.append((session, seq, f.read()))
        return out[:self.max_items]


class MqttSession:
    """One scanner's session with the bridges through a broker."""

    def __init__(self, device, site, host, port=1883, user=None, password=None, ssl=None,
                 hello=None, session=None, keepalive=30, queue_max=32, result_timeout_ms=5000,
                 spool=None, handler=None, client_factory=MQTTClient, backoff=(500, 30000)):
        self.device = device
        self.site = site
        self.session = (random.getrandbits(31) if session is None else session) & 0x7FFFFFFF
        self.hello = dict(hello or {})
        self.queue_max = queue_max
        self.result_timeout_ms = result_timeout_ms
        self.spool = spool
        self.handler = handler  # handler(Message) or None to use recv()
        self._t = {}
        for leaf in topics.LEAVES:
            self._t[leaf] = topics.topic(site, device, leaf)
        self._seq = 0
        # items: [session, seq, kind, payload, pid, sent_ms, tries]; SCANs stay until RESULT
        self._queue = []
        self._inbox = []
        self._inbox_ev = asyncio.Event()
        self._wake = asyncio.Event()
        self._rx_cmd = None
        self._last_verdicts = {}  # seq -> verdict last delivered to the app
        self.results = 0
        self.duplicates = 0
        self.republished = 0
        self.errors = []
        offline = topics.pack(wire.STATUS, self.session, 0, {"online": False, "device": device})
        self.client = client_factory(
            device, host, port, user=user if user is not None else device, password=password,
            keepalive=keepalive, ssl=ssl, clean=False, will=(self._t[topics.STATUS], offline, True),
            birth=(self._t[topics.STATUS], self._status_payload({}), True),
            subscriptions=[(self._t[topics.RESULT], 1), (self._t[topics.CMD], 1)],
            on_message=self._on_message, backoff=backoff)
        if spool is not None:
            for s, q, payload in spool.load():
                self._queue.append([s, q, wire.SCAN, payload, 0, 0, 0])

    # -- the link interface (as wire.Link)
    @property
    def up(self):
        return self.client.is_up

    def send(self, kind, data):
        """Queue a SCAN/REPLY/SNAPSHOT and return its seq; WireError('queue_full') rather than
        drop one."""
        if kind not in (wire.SCAN, wire.REPLY, wire.SNAPSHOT):
            raise wire.WireError("unknown_type", "kind %s is not sent over MQTT reliably"
                                 % wire.KIND_NAMES.get(kind, kind))
        if len(self._queue) >= self.queue_max:
            raise wire.WireError("queue_full", "%d messages waiting for the bridge" % len(self._queue))
        self._seq = self._seq % 0xFFFF + 1
        payload = topics.pack(kind, self.session, self._seq, data)
        if kind == wire.SCAN and self.spool is not None:
            self.spool.add(self.session, self._seq, payload)
        self._queue.append([self.session, self._seq, kind, payload, 0, 0, 0])
        self._wake.set()
        return self._seq

    def send_unreliable(self, kind, data):
        """STATUS (retained, with online=true) and LOG go once, at most; losing one is harmless."""
        if not self.client.is_up:
            return
        if kind == wire.STATUS:
            t, payload, retain = self._t[topics.STATUS], self._status_payload(data), True
        elif kind == wire.LOG:
            t, payload, retain = self._t[topics.LOG], topics.pack(kind, self.session, 0, data), False
        else:
            raise wire.WireError("unknown_type", "kind %s is not sent unreliably" % wire.KIND_NAMES.get(kind, kind))
        asyncio.create_task(self.client.publish(t, payload, 0, retain))

    def pending(self):
        return len(self._queue)

    async def recv(self):
        """The next RESULT or COMMAND from the bridge (when no handler was given)."""
        while not self._inbox:
            self._inbox_ev.clear()
            await self._inbox_ev.wait()
        return self._inbox.pop(0)

    async def run(self):
        """Keep the broker connection and deliver the queue. Runs until stop()."""
        pump = asyncio.create_task(self._pump())
        try:
            await self.client.run()
        finally:
            pump.cancel()

    async def stop(self):
        """Leave cleanly: retained offline status, then DISCONNECT (the will is then discarded)."""
        if self.client.is_up:
            offline = topics.pack(wire.STATUS, self.session, 0, {"online": False, "device": self.device})
            await self.client.publish(self._t[topics.STATUS], offline, 0, True)
        await self.client.disconnect()

    def stats(self):
        s = self.client.stats()
        s.update({"pending": len(self._queue), "results": self.results,
                  "duplicates": self.duplicates, "republished": self.republished,
                  "session": self.session})
        return s

    # -- internals
    def _status_payload(self, data):
        d = dict(self.hello)
        d.update(data)
        d["online"] = True
        d["device"] = self.device
        d["proto"] = wire.PROTOCOL_VERSION
        d["session"] = self.session
        return topics.pack(wire.STATUS, self.session, 0, d)

    def _note(self, err):
        self.errors.append(err)
        if len(self.errors) > 8:
            self.errors.pop(0)

    def _on_message(self, t, payload, retained, dup):
        try:
            _, device, leaf = topics.parse(t)
            kind, session, seq, data = topics.unpack(payload)
        except wire.WireError as e:
            self._note(e)
            return
        if device != self.device:
            return
        if leaf == topics.RESULT and kind == wire.RESULT:
            for i in range(len(self._queue)):
                item = self._queue[i]
                if item[0] == session and item[1] == seq and item[2] == wire.SCAN:
                    self._queue.pop(i)
                    if self.spool is not None:
                        self.spool.remove(session, seq)
                    self.results += 1
                    if session == self.session:
                        self._answered(seq, data)
                    return
            # Not waiting for it: a later verdict (PENDING -> ACCEPTED) goes to the app, a
            # repeat of one already delivered does not.
            if session == self.session and self._last_verdicts.get(seq) != data["verdict"]:
                self._answered(seq, data)
            else:
                self.duplicates += 1
        elif leaf == topics.CMD and kind == wire.COMMAND:
            if self._rx_cmd == (session, seq):
                self.duplicates += 1
                return
            self._rx_cmd = (session, seq)
            self._deliver(wire.Message(wire.COMMAND, seq, data))

    def _answered(self, seq, data):
        lv = self._last_verdicts
        lv[seq] = data["verdict"]
        if len(lv) > 16:
            del lv[min(lv)]  # bounded; the oldest seq first (wrap-around is harmless here)
        self._deliver(wire.Message(wire.RESULT, seq, data))

    def _deliver(self, msg):
        if self.handler is not None:
            self.handler(msg)
            return
        if len(self._inbox) >= self.queue_max + 8:  # every queued scan's RESULT fits
            self._note(wire.WireError("queue_full", "inbox full, dropped %s" % msg.name))
            self._inbox.pop(0)
        self._inbox.append(msg)
        self._inbox_ev.set()

    async def _pump(self):
        client = self.client
        t_scan = self._t[topics.SCAN]
        t_reply = self._t[topics.REPLY]
        while True:
            self._wake.clear()
            now = ticks_ms()
            wait_ms = -1  # until something is sent: sleep until woken
            for item in list(self._queue):
                session, seq, kind, payload, pid, sent, tries = item
                if pid and not client.acked(pid):
                    wait_ms = 250  # the client resends it until PUBACK; look again soon
                    continue
                if pid and kind != wire.SCAN:
                    self._queue.remove(item)  # REPLY/SNAPSHOT: the broker has it; done
                    continue
                left = self.result_timeout_ms * min(1 << (tries - 1), 8) - ticks_diff(now, sent) if pid else 0
                if left > 0:
                    if wait_ms < 0 or left < wait_ms:
                        wait_ms = left
                    continue  # waiting for the RESULT
                if not client.is_up:
                    continue
                if tries:
                    self.republished += 1
                item[4] = 0
                item[4] = await client.publish(t_scan if kind == wire.SCAN else t_reply, payload, 1)
                item[5] = ticks_ms()
                item[6] = tries + 1
                wait_ms = 250
            if not client.is_up:
                await client.up.wait()
                continue
            if wait_ms < 0:
                # Nothing in flight: no timer at all (a fleet of idle scanners costs nothing).
                await self._wake.wait()
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), max(wait_ms, 20) / 1000)
            except asyncio.TimeoutError:
                pass


class MqttLink(AppLink):
    """The app's link over WiFi + MQTT (see link.py for the interface). Settings come from the
    config keys registered in mqtt_settings; WiFi comes from board.wlan() when the HAL has it."""

    name = "mqtt"

    def __init__(self, board, cfg, hello, session, spool=None, client_factory=MQTTClient,
                 wlan=None):
        super().__init__()
        device = cfg.get("mqtt_device") or board.unique_id()
        if spool is None and cfg.get("mqtt_spool"):
            spool = Spool(mqtt_settings.SPOOL_DIR, cfg.get("mqtt_queue", 32))
        ssl = True if cfg.get("mqtt_tls") else None
        self.mqtt = MqttSession(
            device, cfg.get("mqtt_site") or "default", cfg["mqtt_host"],
            cfg.get("mqtt_port") or (8883 if ssl else 1883), cfg.get("mqtt_user") or None,
            cfg.get("mqtt_password") or None, ssl, hello, session, cfg.get("mqtt_keepalive", 30),
            cfg.get("mqtt_queue", 32), cfg.get("mqtt_result_timeout_ms", 5000), spool,
            self._on_message, client_factory)
        self.wifi = None
        networks = cfg.get("wifi") or []
        if networks:
            from scanbridge_fw import wifi
            if wlan is None:
                if not hasattr(board, "wlan"):
                    raise wire.WireError("no_wifi", "board %s has no WiFi in its HAL" % getattr(board, "name", "?"))
                wlan = board.wlan()
            self.wifi = wifi.WiFi(wlan, networks)

    def _on_message(self, msg):
        if msg.kind == wire.RESULT:
            self.on_result(msg.data)
        elif msg.kind == wire.COMMAND:
            asyncio.create_task(self._serve(msg.data))

    async def _serve(self, data):
        reply = await self.on_command(data)
        try:
            self.mqtt.send(wire.REPLY, reply)
        except wire.WireError as e:  # too big or queue full: say so instead of going quiet
            self.on_error(e.code, "reply to %s: %s" % (data.get("cmd"), e.message))

    async def run(self):
        radio = None
        if self.wifi is not None:
            radio = asyncio.create_task(self.wifi.run())
        try:
            if self.wifi is not None:
                await self.wifi.up.wait()  # no point dialling the broker before the radio is up
            await self.mqtt.run()
        finally:
            if radio is not None:
                radio.cancel()

    def send_scan(self, scan):
        return self.mqtt.send(wire.SCAN, scan)

    def send_status(self, data):
        if self.wifi is not None:
            data = dict(data)
            data.update(self.wifi.status())
        try:
            self.mqtt.send_unreliable(wire.STATUS, data)
        except wire.WireError as e:  # an oversized status must not stop the app
            self.on_error(e.code, e.message)

    def send_log(self, text):
        self.mqtt.send_unreliable(wire.LOG, {"text": text})

    def ready(self):
        return self.mqtt.up

    def status(self):
        d = {"link": self.name, "ready": self.ready()}
        s = self.mqtt.stats()
        for key in s:
            d[key] = s[key]
        if self.wifi is not None:
            w = self.wifi.status()
            for key in w:
                d[key] = w[key]
        return d
