# The scanner's MQTT link (scanbridge_fw.mqtt_link) and WiFi manager (scanbridge_fw.wifi) with
# a fake MQTT client and a fake WLAN: queueing, result matching, duplicates, republish, the
# flash spool across a reset, network choice and rejoin. Runs in CPython and in MicroPython.
import asyncio

from scanbridge_fw import mqtt_link, topics, wifi, wire

try:
    import tempfile  # CPython, and the unix port's test runner (tests/support/mpy_unix_run.py)
    SPOOL = tempfile.mkdtemp() + "/spool"
except ImportError:  # the WebAssembly MicroPython: its filesystem root is ours
    SPOOL = "/sb_spool_test"


class FakeClient:
    """Stands in for mqtt.MQTTClient: records publishes, acks them when told."""

    def __init__(self, client_id, host, port, **kw):
        self.kw = kw
        self.is_up = True
        self.up = asyncio.Event()
        self.up.set()
        self.published = []  # (topic, payload, qos, retain, pid)
        self.unacked = {}
        self._pid = 0

    async def publish(self, topic, payload, qos=1, retain=False):
        pid = 0
        if qos:
            self._pid += 1
            pid = self._pid
            self.unacked[pid] = True
        self.published.append((topic, payload, qos, retain, pid))
        return pid

    def acked(self, pid):
        return pid not in self.unacked

    def ack_all(self):
        self.unacked = {}

    async def run(self):
        while True:
            await asyncio.sleep(1)

    async def disconnect(self):
        self.is_up = False

    def stats(self):
        return {"up": self.is_up}


def _link(**kw):
    return mqtt_link.MqttSession("dev1", "s1", "127.0.0.1", hello={"fw": "t"}, session=42,
                              client_factory=FakeClient, **kw)


def _result(session, seq, verdict=wire.ACCEPTED, reason="ok"):
    return topics.pack(wire.RESULT, session, seq, {"scan_seq": seq, "verdict": verdict, "reason": reason, "text": ""})


def test_client_is_configured_with_will_birth_and_subscriptions():
    link = _link()
    kw = link.client.kw
    assert kw["clean"] is False and kw["user"] == "dev1"
    will_topic, will_payload, will_retain = kw["will"]
    assert will_topic == "sb/v1/s1/dev1/status" and will_retain
    assert topics.unpack(will_payload)[3] == {"online": False, "device": "dev1"}
    birth = topics.unpack(kw["birth"][1])[3]
    assert birth["online"] is True and birth["fw"] == "t" and birth["session"] == 42
    assert ("sb/v1/s1/dev1/result", 1) in kw["subscriptions"]
    assert ("sb/v1/s1/dev1/cmd", 1) in kw["subscriptions"]


async def test_scan_is_published_then_matched_with_its_result():
    link = _link()
    seq = link.send(wire.SCAN, {"payload": b"TOK", "decode_ms": 5})
    pump = asyncio.create_task(link._pump())
    await asyncio.sleep(0.05)
    c = link.client
    assert len(c.published) == 1
    t, payload, qos, retain, pid = c.published[0]
    assert t == "sb/v1/s1/dev1/scan" and qos == 1 and not retain
    assert topics.unpack(payload)[:3] == (wire.SCAN, 42, seq)
    c.ack_all()
    link._on_message("sb/v1/s1/dev1/result", _result(42, seq), False, False)
    msg = await link.recv()
    assert msg.kind == wire.RESULT and msg.seq == seq and msg.data["verdict"] == wire.ACCEPTED
    assert link.pending() == 0
    # the same RESULT again (QoS 1 redelivery) is not delivered twice
    link._on_message("sb/v1/s1/dev1/result", _result(42, seq), False, False)
    assert link._inbox == [] and link.duplicates == 1
    # a later, different verdict for the same scan is (PENDING -> ACCEPTED flow)
    link._on_message("sb/v1/s1/dev1/result", _result(42, seq, wire.REJECTED, "refunded"), False, False)
    assert link._inbox[0].data["reason"] == "refunded"
    pump.cancel()


async def test_scan_without_result_is_republished_with_the_same_numbers():
    link = _link(result_timeout_ms=50)
    seq = link.send(wire.SCAN, {"payload": b"TOK"})
    pump = asyncio.create_task(link._pump())
    await asyncio.sleep(0.02)
    link.client.ack_all()  # the broker has it, but no RESULT comes
    await asyncio.sleep(0.4)
    pubs = link.client.published
    assert len(pubs) >= 2 and link.republished >= 1
    assert pubs[0][1] == pubs[1][1]  # identical payload: same session and seq, the bridge dedupes
    link._on_message("sb/v1/s1/dev1/result", _result(42, seq), False, False)
    assert link.pending() == 0
    pump.cancel()


def test_queue_is_bounded_and_refuses_rather_than_drops():
    link = _link(queue_max=2)
    link.send(wire.SCAN, {"payload": b"a"})
    link.send(wire.SCAN, {"payload": b"b"})
    try:
        link.send(wire.SCAN, {"payload": b"c"})
        assert False, "third scan accepted"
    except wire.WireError as e:
        assert e.code == "queue_full"
    try:
        link.send(wire.HELLO, {})
        assert False
    except wire.WireError as e:
        assert e.code == "unknown_type"
    assert link.pending() == 2


def test_foreign_and_malformed_messages_are_ignored():
    link = _link()
    seq = link.send(wire.SCAN, {"payload": b"a"})
    link._on_message("sb/v1/s1/dev2/result", _result(42, seq), False, False)
    link._on_message("sb/v1/s1/dev1/result", b"\x01R", False, False)
    link._on_message("garbage", b"", False, False)
    assert link.pending() == 1 and link._inbox == [] and len(link.errors) == 2


def test_commands_are_delivered_once():
    link = _link()
    cmd = topics.pack(wire.COMMAND, 9, 1, {"id": "x", "cmd": "status", "args": {}})
    link._on_message("sb/v1/s1/dev1/cmd", cmd, False, False)
    link._on_message("sb/v1/s1/dev1/cmd", cmd, False, True)
    assert len(link._inbox) == 1 and link._inbox[0].data["cmd"] == "status"


def _clear(folder):
    import os
    try:
        for name in os.listdir(folder):
            os.remove(folder + "/" + name)
    except OSError:
        pass


def test_spooled_scans_survive_a_reset_and_keep_their_numbers():
    _clear(SPOOL)
    link = _link(spool=mqtt_link.Spool(SPOOL))
    s1 = link.send(wire.SCAN, {"payload": b"one"})
    s2 = link.send(wire.SCAN, {"payload": b"two"})
    link._on_message("sb/v1/s1/dev1/result", _result(42, s1), False, False)
    # reset: a new boot has a new session; the unanswered scan comes back with its old numbers
    again = mqtt_link.MqttSession("dev1", "s1", "127.0.0.1", session=43, client_factory=FakeClient,
                               spool=mqtt_link.Spool(SPOOL))
    assert again.pending() == 1
    session, seq, kind, payload = again._queue[0][:4]
    assert (session, seq, kind) == (42, s2, wire.SCAN)
    assert topics.unpack(payload)[3]["payload"] == b"two"
    again._on_message("sb/v1/s1/dev1/result", _result(42, s2), False, False)
    assert again.pending() == 0 and again._inbox == []  # answered; not this boot's scan to show
    assert mqtt_link.Spool(SPOOL).load() == []


class FakeWLAN:
    def __init__(self, visible, good, joins_after=2):
        self.visible = visible  # [(ssid, rssi)]
        self.good = good  # ssids that accept us
        self.joins_after = joins_after
        self.connected = False
        self.tries = []
        self._polls = 0

    def active(self, on=None):
        return True

    def scan(self):
        return [(s.encode(), b"\x00" * 6, 1, rssi, 3, False) for s, rssi in self.visible]

    def connect(self, ssid, password):
        self.tries.append(ssid)
        self._polls = 0
        self._target = ssid

    def disconnect(self):
        self.connected = False

    def isconnected(self):
        if not self.connected and self.tries and self._target in self.good:
            self._polls += 1
            self.connected = self._polls >= self.joins_after
        return self.connected

    def ifconfig(self):
        return ("10.0.0.5", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def status(self, what=None):
        return -61 if what == "rssi" else 1010


def test_networks_are_tried_strongest_first_hidden_last():
    known = [{"ssid": "back"}, {"ssid": "hidden"}, {"ssid": "shop"}]
    seen = [(b"shop", b"", 1, -50), (b"back", b"", 6, -80), (b"other", b"", 11, -30)]
    assert [n["ssid"] for n in wifi.order_networks(known, seen)] == ["shop", "back", "hidden"]


async def test_wifi_joins_a_working_network_and_rejoins_after_a_loss():
    wlan = FakeWLAN([("shop", -50), ("back", -70)], good=("back",))
    w = wifi.WiFi(wlan, [{"ssid": "shop", "password": "a"}, {"ssid": "back", "password": "b"}],
                  join_timeout_ms=300, check_ms=20, backoff=(20, 50))
    task = asyncio.create_task(w.run())
    for _ in range(100):
        if w.up.is_set():
            break
        await asyncio.sleep(0.02)
    assert w.up.is_set() and w.ssid == "back" and wlan.tries[:2] == ["shop", "back"]
    st = w.status()
    assert st["wifi"] and st["ip"] == "10.0.0.5" and st["rssi"] == -61 and st["joins"] == 1
    wlan.connected = False  # the access point went away
    wlan.tries = []
    for _ in range(100):
        await asyncio.sleep(0.02)
        if w.joins == 2:
            break
    assert w.joins == 2 and w.losses == 1 and w.up.is_set()
    w.stop()
    task.cancel()


class FakeBoard:
    def __init__(self, wlan):
        self._wlan = wlan

    def unique_id(self):
        return "a0b1c2d3e4f5"

    def wlan(self):
        return self._wlan


async def test_app_link_over_mqtt_speaks_the_app_interface():
    from scanbridge_fw import config, mqtt_settings
    cfg = config.validate({"link": "mqtt", "mqtt_host": "10.0.0.2", "mqtt_password": "pw",
                           "mqtt_site": "shop7", "mqtt_spool": False,
                           "wifi": [{"ssid": "shop", "password": "x"}]})
    assert config.public(cfg)["mqtt_password"] == "***" and config.public(cfg)["wifi"] == "***"
    assert mqtt_settings.SPOOL_DIR
    wlan = FakeWLAN([("shop", -40)], good=("shop",), joins_after=1)
    link = mqtt_link.MqttLink(FakeBoard(wlan), cfg, {"fw": "t"}, 99, client_factory=FakeClient)
    assert link.mqtt.client.kw["user"] == "a0b1c2d3e4f5" and link.mqtt.client.kw["password"] == "pw"
    results = []
    link.on_result = results.append

    async def on_command(data):
        return {"id": data["id"], "ok": True, "result": {"pong": 1}}
    link.on_command = on_command
    task = asyncio.create_task(link.run())
    for _ in range(50):
        if link.wifi.up.is_set():
            break
        await asyncio.sleep(0.02)
    seq = link.send_scan({"payload": b"TOK"})
    assert link.ready()
    link.mqtt._on_message("sb/v1/shop7/a0b1c2d3e4f5/result", _result(99, seq), False, False)
    assert results and results[0]["scan_seq"] == seq
    cmd = topics.pack(wire.COMMAND, 5, 1, {"id": "c1", "cmd": "ping", "args": {}})
    link.mqtt._on_message("sb/v1/shop7/a0b1c2d3e4f5/cmd", cmd, False, False)
    for _ in range(50):
        await asyncio.sleep(0.02)
        replies = [p for p in link.mqtt.client.published if p[0].endswith("/reply")]
        if replies:
            break
    assert topics.unpack(replies[0][1])[3] == {"id": "c1", "ok": True, "result": {"pong": 1}}
    st = link.status()
    assert st["link"] == "mqtt" and st["ssid"] == "shop" and st["wifi"] is True
    task.cancel()
