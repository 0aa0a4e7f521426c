"""Talk to a scanner over MQTT for diagnostics: COMMAND on sb/v1/<site>/<device>/cmd, REPLY and
SNAPSHOT chunks on .../reply, LOG on .../log, the retained STATUS on .../status (its HELLO
fields and online flag). Needs a broker user allowed to write cmd and read the device's topics
(the bridges' ACL block in tools/broker.py gives exactly that). Same surface as SerialDiag."""
from __future__ import annotations

import os
import threading
import time

from scanbridge_fw import topics, wire
from scanbridge_tools.diagnostics.errors import DiagError


class MqttDiag:
    kind = "mqtt"

    def __init__(self, url: str, site: str, device: str, username: str | None = None,
                 password: str | None = None, timeout_s: float = 5.0):
        from scanbridge.link.mqtt import parse_url
        self.host, self.port_no, self.tls = parse_url(url)
        self.port = "%s/%s@%s:%d" % (site, device, self.host, self.port_no)
        self.site, self.device = site, device
        self.username, self.password = username, password
        self.timeout_s = timeout_s
        self.session = int.from_bytes(os.urandom(4), "big")
        self._seq = 0
        self._cv = threading.Condition()
        self._replies: dict = {}
        self.logs: list[str] = []
        self.statuses: list[dict] = []
        self.snapshots: dict[int, dict] = {}
        self.hello: dict = {}
        self.counters = {"sent": 0, "received": 0, "malformed": 0, "retransmits": 0, "crc_errors": 0}
        self.on_log = None
        self.client = None
        self._subscribed = threading.Event()

    def open(self):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="scanbridge-diag-%08x" % self.session,
                        protocol=MQTTProtocolVersion.MQTTv5)
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        if self.tls:
            c.tls_set()
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        try:
            c.connect(self.host, self.port_no, keepalive=30)
        except OSError as e:
            raise DiagError("broker_unreachable", "cannot reach %s:%d: %s" % (self.host, self.port_no, e),
                            "check the broker address (--mqtt URL) and that it runs")
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(self.timeout_s):
            self.close()
            raise DiagError("broker_refused", "no subscription within %.0f s (wrong user/password or ACL?)"
                            % self.timeout_s, "use a bridge user of the broker (its ACL may read device topics)")
        deadline = time.monotonic() + 1.0  # the retained STATUS, if the device ever published one
        while not self.hello and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return  # open() reports the missing subscription
        client.subscribe([(topics.topic(self.site, self.device, leaf), 1)
                          for leaf in (topics.REPLY, topics.LOG, topics.STATUS)])

    def _on_message(self, client, userdata, msg):
        try:
            _, _, leaf = topics.parse(msg.topic)
            kind, _, _, data = topics.unpack(msg.payload)
        except wire.WireError:
            self.counters["malformed"] += 1
            return
        self.counters["received"] += 1
        with self._cv:
            if kind == wire.REPLY:
                self._replies[data.get("id")] = data
                self._cv.notify_all()
            elif kind == wire.SNAPSHOT:
                s = self.snapshots.setdefault(data["id"], {"count": data["count"], "parts": {}})
                s["parts"][data["index"]] = data["data"]
            elif kind == wire.LOG:
                self.logs.append(data.get("text", ""))
                if self.on_log:
                    self.on_log(data.get("text", ""))
            elif kind == wire.STATUS:
                self.statuses.append(data)
                self.hello = dict(data, device=self.device)

    def close(self):
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def pump(self, seconds: float):
        time.sleep(seconds)  # paho's thread does the work

    def command(self, cmd: str, args: dict | None = None, timeout_s: float | None = None):
        self._seq = self._seq % 0xFFFF + 1
        cid = "diag-%08x-%d" % (self.session, self._seq)
        payload = topics.pack(wire.COMMAND, self.session, self._seq, {"id": cid, "cmd": cmd, "args": args or {}})
        self.client.publish(topics.topic(self.site, self.device, topics.CMD), payload, qos=1)
        self.counters["sent"] += 1
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        with self._cv:
            while cid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DiagError("no_answer", "%s: no reply from %s within %.0f s" % (cmd, self.device, timeout_s or self.timeout_s),
                                    "is the scanner online (retained status)? check its WiFi and broker settings")
                self._cv.wait(left)
            r = self._replies.pop(cid)
        if not r.get("ok"):
            err = r.get("error") or {}
            raise DiagError(err.get("code", "command_failed"), "%s: %s" % (cmd, err.get("message", "")))
        return r.get("result")

    def stats(self) -> dict:
        return dict(self.counters)

    def raw_text(self) -> str:
        return ""
