"""The bridge's MQTT link: takes scans from scanners on WiFi through a broker, hands them to the
ScanService, publishes each RESULT back to the scanner that sent the scan, and tracks presence.

paho-mqtt v2 API, MQTT 5. Scans come through a shared subscription ($share/<group>/...) so any
number of bridges split a chain's scanners; the session is persistent (clean_start False plus a
session expiry) so scans published while a bridge restarts wait for it in the broker. QoS 1 is
at-least-once: a scan can arrive again (broker redelivery, scanner republish after a lost RESULT),
so scans are de-duplicated by (device, session, seq) and the duplicate gets the first verdict
again; across bridges the single-use ledger is the final guard for tokens.

Scans are decided off paho's network thread, in batches: a decision thread takes every scan
that is waiting (up to `batch_max`), decides them with one ScanService.handle_many call (one
ledger commit for the batch), publishes the RESULTs, and only then acknowledges the scans to
the broker (manual PUBACK): a bridge that dies mid-decision leaves them unacknowledged, and the
broker hands them out again. Topics and payloads:
scanbridge_fw.topics (docs/protocol.md, "MQTT link")."""
from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from collections import OrderedDict
from typing import Callable, Optional
from urllib.parse import urlparse

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from scanbridge.batches import next_batch
from scanbridge.scan import ACCEPTED, PENDING, ScanEvent, ScanService, Verdict
from scanbridge_fw import topics, wire

log = logging.getLogger("scanbridge.mqtt")

_VERDICT_CODES = {ACCEPTED: wire.ACCEPTED, PENDING: wire.PENDING}
PresenceListener = Callable[[str, dict], None]
EventListener = Callable[[str, dict], None]  # ("snapshot", {"device", "site", "id", "index", "count", "data"})


class MqttLinkError(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__("%s: %s" % (code, message) if message else code)
        self.code = code


def parse_url(url: str) -> tuple[str, int, bool]:
    """mqtt://host[:1883] or mqtts://host[:8883] -> (host, port, tls)."""
    u = urlparse(url if "://" in url else "mqtt://" + url)
    if u.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise MqttLinkError("bad_url", "scheme %r (use mqtt:// or mqtts://)" % u.scheme)
    tls = u.scheme in ("mqtts", "ssl")
    return u.hostname or "127.0.0.1", u.port or (8883 if tls else 1883), tls


class _Seen:
    """Bounded memory of answered scans: (site, device, session, seq) -> the packed RESULT (b""
    while the scan is being decided). Keys and values are plain tuples of str/int and bytes,
    which the cyclic GC stops tracking: 200,000 remembered scans add nothing to a collection's
    pause (holding ScanEvents and Verdicts here did: 120 ms full collections at 1,000 scans/s)."""

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._d.get(key)

    def put(self, key, value):
        with self._lock:
            self._d[key] = value
            if len(self._d) > self.size:
                self._d.popitem(last=False)


class MqttLink:
    """One bridge's connection to the broker. start() returns at once; paho's thread does the rest."""

    def __init__(self, service: ScanService, url: str, site: str = "+", group: str = "bridges",
                 username: Optional[str] = None, password: Optional[str] = None,
                 client_id: Optional[str] = None, tls: Optional[dict] = None,
                 session_expiry: int = 300, keepalive: int = 30, dedupe_size: int = 200_000,
                 receive_maximum: int = 1000, workers: int = 1, batch_max: int = 64):
        self.service = service
        self.host, self.port, use_tls = parse_url(url)
        self.site = site
        self.group = group
        # Stable by default, so a restarted bridge finds its session (and the scans queued in it);
        # two bridges on one host in one group need distinct ids (--mqtt-client-id).
        self.client_id = client_id or "bridge-%s-%s" % (os.uname().nodename, group)
        self.session_expiry = session_expiry
        self.keepalive = keepalive
        self.receive_maximum = receive_maximum
        # Decision threads drain one queue in batches (see the module doc). One is enough for a
        # batch-capable decider; more let a one-at-a-time decider overlap its waits.
        import queue
        self.batch_max = max(1, batch_max)
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self._deciders = [threading.Thread(target=self._decide_loop, name="mqtt-decide-%d" % i, daemon=True)
                          for i in range(max(1, workers))]
        self._seen = _Seen(dedupe_size)
        self._sessions: OrderedDict = OrderedDict()  # (device, seq) -> session, for late verdicts
        self._sessions_lock = threading.Lock()
        self._presence: dict[str, dict] = {}
        self._presence_lock = threading.Lock()
        self._presence_listeners: list[PresenceListener] = []
        self._event_listeners: list[EventListener] = []
        self._attached: set[str] = set()
        self._replies: dict[int, dict] = {}
        self._reply_cv = threading.Condition()
        self._cmd_seq = 0
        self._cmd_session = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
        self.connected = threading.Event()
        self._killed = False
        from collections import deque
        self._in_bridge_ms: deque = deque(maxlen=20000)  # scan received -> RESULT published
        self.counters = {"scans": 0, "duplicates": 0, "malformed": 0, "results": 0,
                         "connects": 0, "disconnects": 0, "batches": 0, "largest_batch": 0}
        self.last_error: Optional[str] = None
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=MQTTProtocolVersion.MQTTv5)
        if username is not None:
            c.username_pw_set(username, password)
        if use_tls or tls:
            tls = dict(tls or {})
            insecure = tls.pop("insecure", False)
            c.tls_set(ca_certs=tls.get("ca"), certfile=tls.get("cert"), keyfile=tls.get("key"),
                      cert_reqs=ssl.CERT_REQUIRED)
            if insecure:  # a test broker with a self-signed certificate and an IP address
                c.tls_insecure_set(True)
        c.manual_ack_set(True)  # a scan is acknowledged once its RESULT is published
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(0.2, 10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self._sub_mid = -1
        self.client = c

    # -- lifecycle
    def start(self, wait: float = 0) -> "MqttLink":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        props.ReceiveMaximum = self.receive_maximum
        for t in self._deciders:
            t.start()
        self.client.connect_async(self.host, self.port, self.keepalive, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        if wait and not self.connected.wait(wait):
            raise MqttLinkError("connect_timeout", "no CONNACK from %s:%d in %.0f s (%s)"
                                % (self.host, self.port, wait, self.last_error or "no answer"))
        return self

    def stop(self) -> None:
        for _ in self._deciders:  # answer what is queued before leaving
            self._queue.put(None)
        for t in self._deciders:
            if t.is_alive():
                t.join()
        self.client.disconnect()
        self.client.loop_stop()
        for device in list(self._attached):
            self.service.detach_device(device, self._send_result)

    def kill(self) -> None:
        """Vanish without DISCONNECT (tests: a bridge that crashed)."""
        self._killed = True
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    # -- presence (diagnostics, counter UI)
    def presence(self) -> dict[str, dict]:
        """{device_id: {"online": bool, "last_seen": unix time, "site": .., "status": {...}}}."""
        with self._presence_lock:
            return {k: dict(v) for k, v in self._presence.items()}

    def add_presence_listener(self, fn: PresenceListener) -> None:
        self._presence_listeners.append(fn)

    def add_event_listener(self, fn: EventListener) -> None:
        """Link events as the serial link's on_event gives them; today "snapshot" (one chunk of a
        camera picture a scanner sends for host assist, scanbridge.host_assist)."""
        self._event_listeners.append(fn)

    def _emit(self, kind: str, data: dict) -> None:
        for fn in list(self._event_listeners):
            try:
                fn(kind, data)
            except Exception as e:  # a listener's bug must not stop scans on the network thread
                log.warning("mqtt: %s listener failed: %s: %s", kind, type(e).__name__, e)

    def stats(self) -> dict:
        """Counters, and the time scans spent in this bridge (received -> RESULT published) over
        the last 20,000 scans: what the bridge adds to a scanner's round trip."""
        lat = sorted(self._in_bridge_ms)
        pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 3)) if lat else (lambda q: None)
        return dict(self.counters, connected=self.connected.is_set(), client_id=self.client_id,
                    last_error=self.last_error, in_bridge_p50_ms=pct(0.5), in_bridge_p99_ms=pct(0.99))

    # -- commands to a scanner (diagnostics, host assist)
    def command_device(self, device: str, cmd: str, args: Optional[dict] = None, timeout: float = 5.0) -> dict:
        """command() to a scanner this bridge has heard from, at the site it was heard on."""
        with self._presence_lock:
            site = (self._presence.get(device) or {}).get("site")
        if site is None:
            raise MqttLinkError("unknown_device", "no scanner %r has been heard on this broker" % device)
        return self.command(site, device, cmd, args, timeout)

    def command(self, site: str, device: str, cmd: str, args: Optional[dict] = None,
                timeout: float = 5.0) -> dict:
        """Send a COMMAND and wait for its REPLY data; MqttLinkError('timeout') otherwise."""
        with self._reply_cv:
            self._cmd_seq = self._cmd_seq % 0xFFFF + 1
            seq = self._cmd_seq
        cid = "%08x-%d" % (self._cmd_session, seq)
        payload = topics.pack(wire.COMMAND, self._cmd_session, seq, {"id": cid, "cmd": cmd, "args": args or {}})
        self.client.publish(topics.topic(site, device, topics.CMD), payload, qos=1)
        deadline = time.monotonic() + timeout
        with self._reply_cv:
            while cid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MqttLinkError("timeout", "no reply from %s to %s" % (device, cmd))
                self._reply_cv.wait(left)
            return self._replies.pop(cid)

    # -- paho callbacks (paho's network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = "connect_refused: %s" % reason_code
            log.warning("mqtt: broker refused the bridge: %s", reason_code)
            return
        self.counters["connects"] += 1
        site = self.site
        _, self._sub_mid = client.subscribe([
            (topics.shared(self.group, topics.filter_all(site, topics.SCAN)), 1),
            (topics.filter_all(site, topics.STATUS), 1),
            (topics.filter_all(site, topics.REPLY), 1),
        ])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid != self._sub_mid:
            return
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:  # an ACL that does not let this bridge read scans: say so, loudly
            self.last_error = "subscribe_refused: %s" % ", ".join(refused)
            log.error("mqtt: broker refused the bridge's subscriptions: %s", refused)
            return
        self.connected.set()  # only now can a scan reach us

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.counters["disconnects"] += 1
        self.connected.clear()
        if reason_code.is_failure:
            self.last_error = "disconnected: %s" % reason_code

    def _on_message(self, client, userdata, msg):
        queued = False
        try:
            queued = self._route(msg)
        finally:
            if not queued:  # everything but a scan being decided is acknowledged at once
                client.ack(msg.mid, msg.qos)

    def _route(self, msg) -> bool:
        """True when the message is a scan queued for a decision (acknowledged after its RESULT)."""
        try:
            site, device, leaf = topics.parse(msg.topic)
            kind, session, seq, data = topics.unpack(msg.payload)
        except wire.WireError as e:
            self.counters["malformed"] += 1
            log.warning("mqtt: dropped a message on %s: %s", msg.topic, e)
            if e.code != "bad_topic" and msg.topic.endswith("/" + topics.SCAN) and len(msg.payload) >= topics.HEADER_LEN:
                self._answer_malformed(msg.topic, bytes(msg.payload), e)
            return False
        if leaf == topics.SCAN and kind == wire.SCAN:
            return self._on_scan(site, device, session, seq, data, (msg.mid, msg.qos))
        elif leaf == topics.STATUS and kind == wire.STATUS:
            self._on_status(site, device, data, msg.retain)
        elif leaf == topics.REPLY and kind == wire.SNAPSHOT:  # host assist: a picture, chunk by chunk
            self._seen_device(site, device)
            self._emit("snapshot", dict(data, device=device, site=site))
        elif leaf == topics.REPLY and kind == wire.REPLY:
            with self._reply_cv:
                if isinstance(data.get("id"), str) and data["id"].startswith("%08x-" % self._cmd_session):
                    self._replies[data["id"]] = data
                    self._reply_cv.notify_all()
        else:
            self.counters["malformed"] += 1
        return False

    def _on_scan(self, site, device, session, seq, data, ack) -> bool:
        self._seen_device(site, device)
        key = (site, device, session, seq)
        prior = self._seen.get(key)
        if prior is not None:
            self.counters["duplicates"] += 1
            if prior:  # b"": being decided right now; its RESULT is on the way
                self._publish(site, device, prior)
            return False
        if device not in self._attached:
            self._attached.add(device)
            self.service.attach_device(device, self._send_result)
        scan = ScanEvent(device_id=device, link="mqtt:%s/%s" % (site, device), seq=seq,
                         payload=data["payload"], decode_ms=data.get("decode_ms", 0),
                         quality=data.get("quality", 0), session=session)
        self.counters["scans"] += 1
        self._seen.put(key, b"")
        self._queue.put((key, scan, ack))
        return True

    def _decide_loop(self) -> None:
        while True:
            batch, stop = next_batch(self._queue, self.batch_max)
            try:
                if batch:
                    self._decide_batch(batch)
            except Exception:  # never let the thread die: later scans would wait forever
                log.exception("mqtt: deciding %d scans failed", len(batch))
            if stop:
                return

    def _decide_batch(self, batch) -> None:
        verdicts = self.service.handle_many([scan for _, scan, _ in batch])
        with self._sessions_lock:
            self.counters["batches"] += 1
            self.counters["largest_batch"] = max(self.counters["largest_batch"], len(batch))
            for (site, device, session, seq), scan, _ in batch:
                self._sessions[(device, seq)] = (site, session)
            while len(self._sessions) > 65536:
                self._sessions.popitem(last=False)
        for ((site, device, session, seq), scan, ack), verdict in zip(batch, verdicts):
            self._publish_result(site, device, session, seq, verdict)
            self._in_bridge_ms.append((time.monotonic() - scan.received_mono) * 1000)
        if self._killed:
            return  # a crashed bridge acknowledges nothing (tests)
        for _, _, (mid, qos) in batch:
            self.client.ack(mid, qos)

    def _send_result(self, scan: ScanEvent, verdict: Verdict) -> None:
        """ScanService.update(): a later verdict for a scan this link delivered."""
        with self._sessions_lock:
            found = self._sessions.get((scan.device_id, scan.seq))
        if found is None:
            return
        site, session = found
        self._publish_result(site, scan.device_id, session, scan.seq, verdict)

    def _publish_result(self, site, device, session, seq, verdict: Verdict, remember: bool = True):
        """Publish a verdict as the RESULT of scan (session, seq) and remember it for duplicates."""
        body = {"scan_seq": seq, "verdict": _VERDICT_CODES.get(verdict.verdict, wire.REJECTED),
                "reason": verdict.reason, "text": verdict.text}
        payload = topics.pack(wire.RESULT, session, seq, body)
        if remember:
            self._seen.put((site, device, session, seq), payload)
        self._publish(site, device, payload)

    def _publish(self, site, device, payload: bytes):
        self.client.publish(topics.topic(site, device, topics.RESULT), payload, qos=1)
        with self._sessions_lock:
            self.counters["results"] += 1

    def _answer_malformed(self, topic, payload, err):
        try:
            site, device, _ = topics.parse(topic)
        except wire.WireError:
            return
        import struct
        _, _, session, seq = struct.unpack(">BBIH", payload[:topics.HEADER_LEN])
        # not remembered: a well-formed copy of that scan still gets decided
        self._publish_result(site, device, session, seq, Verdict("rejected", err.code, "Unreadable scan"),
                             remember=False)

    def _on_status(self, site, device, data, retained):
        # A retained copy (on subscribe) is the broker's latest word on the device, but it says
        # nothing about when the device was last heard: last_seen only moves on live messages.
        with self._presence_lock:
            old = self._presence.get(device) or {}
            info = {"online": bool(data.get("online")), "site": site,
                    "last_seen": old.get("last_seen") if retained else time.time(), "status": data}
            self._presence[device] = info
        for fn in list(self._presence_listeners):
            fn(device, dict(info))

    def _seen_device(self, site, device):
        with self._presence_lock:
            p = self._presence.get(device)
            if p is None:
                self._presence[device] = {"online": True, "site": site, "last_seen": time.time(),
                                          "status": {}}
            else:
                p["last_seen"] = time.time()


def start_mqtt_link(url: str, service: ScanService, site: str = "+", group: str = "bridges",
                    username: Optional[str] = None, password: Optional[str] = None,
                    client_id: Optional[str] = None, tls: Optional[dict] = None,
                    wait: float = 10.0, **kw) -> MqttLink:
    """Build and start the bridge's MQTT link (what `scanbridge run --mqtt URL` calls).

    site "+" serves every site on the broker; group names the shared subscription that the
    bridges of one deployment split scans in; the password may come from $SCANBRIDGE_MQTT_PASSWORD."""
    if password is None:
        password = os.environ.get("SCANBRIDGE_MQTT_PASSWORD")
    link = MqttLink(service, url, site=site, group=group, username=username, password=password,
                    client_id=client_id, tls=tls, **kw)
    return link.start(wait=wait)


def add_mqtt_arguments(parser) -> None:
    """The MQTT options of `scanbridge run` (the lead wires: add_mqtt_arguments(parser) in
    add_arguments, and `link = start_from_args(args, service)` when args.mqtt is set)."""
    g = parser.add_argument_group("MQTT (scanners on WiFi)")
    g.add_argument("--mqtt", metavar="URL", help="broker, e.g. mqtt://127.0.0.1:1883 or mqtts://broker:8883")
    g.add_argument("--mqtt-user", help="this bridge's broker username")
    g.add_argument("--mqtt-password-file", help="file holding the password (else $SCANBRIDGE_MQTT_PASSWORD)")
    g.add_argument("--mqtt-site", default="+", help="serve one site's scanners ('+': every site)")
    g.add_argument("--mqtt-group", default="bridges", help="shared-subscription group of the bridges that split the scans")
    g.add_argument("--mqtt-client-id", help="stable id: the broker keeps this bridge's session across restarts")
    g.add_argument("--mqtt-ca", help="CA certificate for mqtts://")
    g.add_argument("--mqtt-cert", help="client certificate (mutual TLS)")
    g.add_argument("--mqtt-key", help="client key (mutual TLS)")
    g.add_argument("--mqtt-workers", type=int, default=1,
                   help="threads deciding scans (1 is right for token verification, which decides in batches)")


def start_from_args(args, service: ScanService) -> MqttLink:
    password = None
    if getattr(args, "mqtt_password_file", None):
        with open(args.mqtt_password_file, encoding="utf-8") as f:
            password = f.read().strip()
    tls = None
    if args.mqtt_ca or args.mqtt_cert:
        tls = {"ca": args.mqtt_ca, "cert": args.mqtt_cert, "key": args.mqtt_key}
    return start_mqtt_link(args.mqtt, service, site=args.mqtt_site, group=args.mqtt_group,
                           username=args.mqtt_user, password=password,
                           client_id=args.mqtt_client_id, tls=tls, workers=args.mqtt_workers)
