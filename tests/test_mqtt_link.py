"""Scanners on WiFi against a real Mosquitto: the firmware's MQTT client and link (run in CPython,
same code as on the device) publish scans; the bridge's paho MQTT 5 link verifies and answers.

Each test starts its own mosquitto with the deploy/ configuration (password file + ACL +
persistence in the test folder) on a free loopback port."""
import asyncio
import threading
import time

import pytest

from scanbridge.link.mqtt import start_mqtt_link
from scanbridge.scan import ACCEPTED, REJECTED, ScanService, Verdict
from scanbridge_fw import topics, wire
from scanbridge_fw.mqtt import MQTTClient
from scanbridge_fw.mqtt_link import MqttSession, Spool
from scanbridge_tools.broker import Broker

pytestmark = pytest.mark.skipif(not Broker.available(), reason="mosquitto is not installed")

DEVICES = {"dev1": "pw-dev1", "dev2": "pw-dev2", "dev3": "pw-dev3"}
BRIDGES = {"bridge-a": "pw-a", "bridge-b": "pw-b"}
SITE = "store1"


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", DEVICES, BRIDGES).start()
    yield b
    b.kill()


class Ledger:
    """A single-use decider shared by every bridge of a test (stands in for the shared ledger):
    the first scan of a payload is accepted, and so is that same scan delivered again (the
    ledger's owner rule, ScanEvent.presentation); any other scan of it is refused as replayed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = {}
        self.calls = 0

    def decide(self, scan):
        with self.lock:
            self.calls += 1
            held = self.accepted.get(scan.payload)
            if held is not None and (held == b"" or held != scan.presentation):
                return Verdict(REJECTED, "replayed", "Already used")
            self.accepted[scan.payload] = scan.presentation or b""
            return Verdict(ACCEPTED, "ok", "Paid")


def _bridge(broker, service, name="bridge-a", **kw):
    return start_mqtt_link(broker.url, service, site=SITE, group="g1", username=name,
                           password=BRIDGES[name], client_id=name, **kw)


def _scanner(broker, device="dev1", **kw):
    kw.setdefault("result_timeout_ms", 1000)
    kw.setdefault("backoff", (100, 1000))
    return MqttSession(device, SITE, "127.0.0.1", broker.port, password=DEVICES[device],
                    hello={"fw": "test", "board": "virtual"}, keepalive=5, **kw)


async def _wait(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.02)


async def _raw_device(broker, got, device="dev1"):
    """A bare MQTT client as `device` (no MqttSession: it publishes exactly what a test says, once)
    that appends every RESULT it receives, unpacked, to `got`. Returns (client, its task)."""
    c = MQTTClient(device, "127.0.0.1", broker.port, user=device, password=DEVICES[device],
                   subscriptions=[(topics.topic(SITE, device, topics.RESULT), 1)],
                   on_message=lambda t, p, r, d: got.append(topics.unpack(p)))
    task = asyncio.create_task(c.run())
    await asyncio.wait_for(c.up.wait(), 10)
    return c, task


async def _collect(link, n, timeout=30.0):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left = deadline - time.monotonic()
        assert left > 0, "only %d of %d results; link %r; waiting %r" % (
            len(got), n, link.stats(), [(q[1], q[4], q[6]) for q in link._queue])
        try:
            got.append(await asyncio.wait_for(link.recv(), left))
        except asyncio.TimeoutError:
            pass
    return got


@pytest.mark.parametrize("workers", [1, 4], ids=["inline", "thread-pool"])
def test_scan_is_verified_and_its_result_reaches_that_scanner(broker, workers):
    ledger = Ledger()
    seen = []
    service = ScanService(ledger.decide)
    service.add_listener(lambda scan, verdict: seen.append((scan, verdict)))
    bridge = _bridge(broker, service, workers=workers)

    async def scenario():
        s1, s2 = _scanner(broker, "dev1"), _scanner(broker, "dev2")
        tasks = [asyncio.create_task(s.run()) for s in (s1, s2)]
        await asyncio.wait_for(asyncio.gather(s1.client.up.wait(), s2.client.up.wait()), 10)
        seq = s1.send(wire.SCAN, {"payload": b"TOKEN-1", "decode_ms": 42, "quality": 7})
        r = await asyncio.wait_for(s1.recv(), 10)
        again = s1.send(wire.SCAN, {"payload": b"TOKEN-1"})
        r2 = await asyncio.wait_for(s1.recv(), 10)
        await asyncio.sleep(0.3)
        other_inbox = list(s2._inbox)
        for s in (s1, s2):
            await s.stop()
        for t in tasks:
            t.cancel()
        return seq, r, again, r2, other_inbox

    seq, r, again, r2, other_inbox = asyncio.run(scenario())
    bridge.stop()
    assert r.kind == wire.RESULT and r.seq == seq
    assert r.data == {"scan_seq": seq, "verdict": wire.ACCEPTED, "reason": "ok", "text": "Paid"}
    assert r2.seq == again and r2.data["verdict"] == wire.REJECTED and r2.data["reason"] == "replayed"
    assert other_inbox == []  # the RESULT went to the scanner that sent the scan, nobody else
    scan = seen[0][0]
    assert (scan.device_id, scan.link, scan.payload, scan.decode_ms, scan.quality) == (
        "dev1", "mqtt:store1/dev1", b"TOKEN-1", 42, 7)


def test_broker_killed_and_restarted_mid_stream_loses_and_doubles_nothing(broker, tmp_path):
    ledger = Ledger()
    service = ScanService(ledger.decide)
    bridge = _bridge(broker, service)
    n = 60

    async def scenario():
        s = _scanner(broker, "dev1", spool=Spool(str(tmp_path / "spool")), queue_max=n)
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        collector = asyncio.create_task(_collect(s, n, timeout=40))
        for i in range(n):
            s.send(wire.SCAN, {"payload": b"T-%03d" % i})
            if i == n // 3:
                broker.kill()  # SIGKILL: whatever was not autosaved is gone from the broker
            if i == n // 2:
                broker.start()
            await asyncio.sleep(0.01)
        results = await collector
        stats = s.stats()
        await s.stop()
        task.cancel()
        return results, stats

    results, stats = asyncio.run(scenario())
    bridge.stop()
    assert sorted(r.seq for r in results) == list(range(1, n + 1))  # every scan answered once
    assert all(r.data["verdict"] == wire.ACCEPTED for r in results), [r for r in results if r.data["verdict"]]
    assert sorted(ledger.accepted) == [b"T-%03d" % i for i in range(n)]  # none lost
    assert stats["connects"] >= 2 and stats["pending"] == 0
    assert not list((tmp_path / "spool").iterdir())  # the spool empties as results arrive


def test_bridge_killed_another_in_the_share_group_takes_over(broker):
    ledger = Ledger()
    service = ScanService(ledger.decide)
    a = _bridge(broker, service, "bridge-a", session_expiry=1)
    b = _bridge(broker, service, "bridge-b", session_expiry=1)
    n = 40

    async def scenario():
        s = _scanner(broker, "dev1", queue_max=n)
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        collector = asyncio.create_task(_collect(s, n, timeout=40))
        for i in range(n):
            s.send(wire.SCAN, {"payload": b"K-%03d" % i})
            if i == n // 4:
                a.kill()
                killed_at = a.stats()["scans"]
            await asyncio.sleep(0.02)
        results = await collector
        await s.stop()
        task.cancel()
        return results, killed_at

    results, killed_at = asyncio.run(scenario())
    b_scans = b.stats()["scans"]
    b.stop()
    assert killed_at > 0 and b_scans > 0  # both served before the kill; b alone after it
    assert a.stats()["scans"] == killed_at
    assert sorted(r.seq for r in results) == list(range(1, n + 1))
    # Every scan answered "accepted", each token claimed by exactly one scan: a scan that bridge A
    # had decided but not answered before dying is granted again to that same scan by B.
    assert sorted(ledger.accepted) == [b"K-%03d" % i for i in range(n)]
    assert [r.data["reason"] for r in results] == ["ok"] * n


def test_device_cannot_publish_under_another_devices_topic(broker):
    seen = []
    service = ScanService()
    service.add_listener(lambda scan, verdict: seen.append((scan.device_id, scan.payload)))
    bridge = _bridge(broker, service)

    async def scenario():
        # dev2 logs in with its own credentials and publishes as dev1, then as itself. The
        # broker drops the first (ACL); the second, later on the same connection, arrives.
        c = MQTTClient("dev2", "127.0.0.1", broker.port, user="dev2", password=DEVICES["dev2"],
                       keepalive=5)
        task = asyncio.create_task(c.run())
        await asyncio.wait_for(c.up.wait(), 10)
        forged = topics.pack(wire.SCAN, 1, 1, {"payload": b"FORGED"})
        await c.publish(topics.topic(SITE, "dev1", topics.SCAN), forged, 1)
        await c.publish(topics.topic(SITE, "dev1", topics.STATUS),
                        topics.pack(wire.STATUS, 1, 0, {"online": False}), 1, True)
        own = topics.pack(wire.SCAN, 1, 2, {"payload": b"OWN"})
        await c.publish(topics.topic(SITE, "dev2", topics.SCAN), own, 1)
        await _wait(lambda: ("dev2", b"OWN") in seen, what="dev2's own scan")
        await asyncio.sleep(0.2)
        acked = not c.unacked  # MQTT 3.1.1: the broker acks and silently drops the forged one
        await c.disconnect()
        task.cancel()
        return acked

    assert asyncio.run(scenario())
    bridge.stop()
    assert seen == [("dev2", b"OWN")]
    assert "dev1" not in bridge.presence()


def test_wrong_password_is_refused(broker):
    async def scenario():
        c = MQTTClient("dev1", "127.0.0.1", broker.port, user="dev1", password="wrong",
                       backoff=(50, 100))
        task = asyncio.create_task(c.run())
        await _wait(lambda: c.failures >= 1, what="a refused connect")
        c.kill()
        task.cancel()
        return c.last_error, c.is_up

    err, up = asyncio.run(scenario())
    assert not up and err.startswith(("not_authorized", "bad_credentials")), err


def test_scanner_that_drops_off_is_shown_offline_through_its_last_will(broker):
    service = ScanService()
    bridge = _bridge(broker, service)
    events = []
    bridge.add_presence_listener(lambda device, info: events.append((device, info["online"])))

    async def scenario():
        s = _scanner(broker, "dev3")
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        await _wait(lambda: bridge.presence().get("dev3", {}).get("online") is True, what="online")
        online = bridge.presence()["dev3"]
        s.client.kill()  # power cut: no DISCONNECT, the broker publishes the will
        await _wait(lambda: bridge.presence()["dev3"]["online"] is False, what="offline via will")
        task.cancel()
        return online

    online = asyncio.run(scenario())
    assert online["status"]["fw"] == "test" and online["site"] == SITE and online["last_seen"] > 0
    assert events[-1] == ("dev3", False) and ("dev3", True) in events
    # A bridge started later learns the state from the retained status.
    late = _bridge(broker, ScanService(), "bridge-b")
    deadline = time.time() + 5
    while "dev3" not in late.presence() and time.time() < deadline:
        time.sleep(0.02)
    assert late.presence()["dev3"]["online"] is False
    late.stop()
    bridge.stop()


def test_results_published_while_the_scanner_is_away_reach_it_on_return(broker):
    """Persistent scanner session: a late verdict (ScanService.update) waits in the broker."""
    service = ScanService(lambda scan: Verdict("pending", "waiting_backend", "Wait"))
    scans = []
    service.add_listener(lambda scan, verdict: scans.append(scan))
    bridge = _bridge(broker, service)

    async def scenario():
        s = _scanner(broker, "dev1", session=777)
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        seq = s.send(wire.SCAN, {"payload": b"P-1"})
        first = await asyncio.wait_for(s.recv(), 10)
        await s.stop()
        task.cancel()
        assert service.update(scans[0], Verdict(ACCEPTED, "ok", "Paid"))
        s2 = _scanner(broker, "dev1", session=777)  # back, same client id and session
        task = asyncio.create_task(s2.run())
        late = await asyncio.wait_for(s2.recv(), 10)
        await s2.stop()
        task.cancel()
        return seq, first, late

    seq, first, late = asyncio.run(scenario())
    bridge.stop()
    assert first.data["verdict"] == wire.PENDING
    assert late.seq == seq and late.data["verdict"] == wire.ACCEPTED


def test_a_redelivered_scan_is_answered_again_but_decided_once(broker):
    """QoS 1 redelivery / scanner republish: same (device, session, seq) -> the first verdict
    again, the decider (and the ledger behind it) is not asked twice. A copy that arrives while
    the first is being decided gets no answer of its own (that RESULT is on the way); a copy
    that arrives after it gets the first verdict again. A malformed body is answered with a
    reason code instead of silence."""
    ledger = Ledger()
    bridge = _bridge(broker, ScanService(ledger.decide))
    got = []

    def nines():
        return [g for g in got if g[2] == 9]

    async def scenario():
        c, task = await _raw_device(broker, got)
        scan = topics.pack(wire.SCAN, 5, 9, {"payload": b"ONCE"})
        for _ in range(3):
            await c.publish(topics.topic(SITE, "dev1", topics.SCAN), scan, 1)
        bad = topics.pack(wire.SCAN, 5, 10, {"payload": b""})[:10]  # header + 2 bytes of body
        await c.publish(topics.topic(SITE, "dev1", topics.SCAN), bad, 1)
        await _wait(lambda: nines() and any(g[2] == 10 for g in got), what="both RESULTs")
        first = len(nines())
        await c.publish(topics.topic(SITE, "dev1", topics.SCAN), scan, 1)  # long after: answered again
        await _wait(lambda: len(nines()) > first, what="the repeated RESULT")
        await c.disconnect()
        task.cancel()

    asyncio.run(scenario())
    stats = bridge.stats()
    bridge.stop()
    assert ledger.calls == 1 and stats["duplicates"] == 3 and stats["malformed"] == 1
    assert {(kind, session, seq, data["verdict"], data["reason"]) for kind, session, seq, data in nines()} == \
        {(wire.RESULT, 5, 9, wire.ACCEPTED, "ok")}
    assert 2 <= len(nines()) <= 4
    bad_answer = [(data["verdict"], data["reason"]) for _, session, seq, data in got if seq == 10]
    assert bad_answer == [(wire.REJECTED, "malformed")]


def test_a_silent_scanner_is_shown_offline_when_its_keepalive_runs_out(broker):
    """WiFi gone without a TCP goodbye: the socket stays open but nothing comes; the broker
    gives up after 1.5 x keepalive and publishes the will."""
    bridge = _bridge(broker, ScanService())

    async def scenario():
        s = MqttSession("dev2", SITE, "127.0.0.1", broker.port, password=DEVICES["dev2"], keepalive=1)
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        await _wait(lambda: bridge.presence().get("dev2", {}).get("online") is True, what="online")
        task.cancel()  # the client stops: no pings, no FIN (its socket is still open)
        await asyncio.sleep(0)
        await _wait(lambda: bridge.presence()["dev2"]["online"] is False, timeout=10, what="will")
        w = s.client._writer
        still_open = w is not None and not w.is_closing()
        s.client.kill()
        return still_open

    still_open = asyncio.run(scenario())
    bridge.stop()
    assert still_open  # it was the keepalive, not a closed socket, that fired the will


def test_a_scan_is_acknowledged_only_after_its_result_so_a_crash_mid_decision_loses_nothing(broker):
    """The bridge PUBACKs a scan only once its RESULT is published: a bridge killed while deciding
    leaves the scan with the broker, which hands it to the restarted bridge (same session), and
    the scanner is answered without having to publish again."""
    gate, entered = threading.Event(), threading.Event()

    def stuck(scan):  # bridge A hangs in the decision until it is dead
        entered.set()
        gate.wait(10)
        return Verdict(ACCEPTED, "ok", "Paid")
    a = _bridge(broker, ScanService(stuck), session_expiry=60)
    ledger = Ledger()
    got = []

    async def scenario():
        c, task = await _raw_device(broker, got)
        await c.publish(topics.topic(SITE, "dev1", topics.SCAN), topics.pack(wire.SCAN, 3, 1, {"payload": b"PAY-1"}), 1)
        await _wait(entered.is_set, what="bridge A deciding")
        a.kill()
        gate.set()  # A's decision finishes after its death: no RESULT leaves, no PUBACK either
        await asyncio.sleep(0.3)
        b = _bridge(broker, ScanService(ledger.decide), session_expiry=60)  # same client id: A's session
        await _wait(lambda: len(got) >= 1, what="the RESULT from the restarted bridge")
        await asyncio.sleep(0.3)
        b.stop()
        await c.disconnect()
        task.cancel()

    asyncio.run(scenario())
    assert ledger.calls == 1
    assert [(seq, data["verdict"]) for _, _, seq, data in got] == [(1, wire.ACCEPTED)]


def test_scans_that_arrive_together_are_decided_in_one_batch(broker):
    """A batch-capable decider (token verification: one ledger commit per batch) gets the scans
    that queued while it was busy in one call; each scanner still gets its own RESULT."""
    calls = []
    gate = threading.Event()

    class Batching:
        def __call__(self, scan):
            return self.many([scan])[0]

        def many(self, scans):
            calls.append(len(scans))
            gate.wait(5)  # the first call holds the line while the others queue
            return [Verdict(ACCEPTED, "ok", "Paid") for _ in scans]
    bridge = _bridge(broker, ScanService(Batching()))
    got = []

    async def scenario():
        c, task = await _raw_device(broker, got)
        for seq in range(1, 11):
            await c.publish(topics.topic(SITE, "dev1", topics.SCAN), topics.pack(wire.SCAN, 4, seq, {"payload": b"B-%d" % seq}), 1)
        await _wait(lambda: bridge.stats()["scans"] == 10, what="ten scans received")
        gate.set()
        await _wait(lambda: len(got) >= 10, what="ten RESULTs")
        await c.disconnect()
        task.cancel()

    asyncio.run(scenario())
    bridge.stop()
    assert sum(calls) == 10 and len(calls) < 10 and max(calls) > 1, calls
    assert sorted(seq for _, _, seq, _ in got) == list(range(1, 11))


def test_a_bridge_that_dies_after_the_claim_but_before_the_result_still_answers_accepted(broker, tmp_path):
    """Signed tokens and an SQLite ledger: bridge A claims the token, then dies before its RESULT
    leaves. The broker redelivers the scan to the restarted bridge; the ledger knows the claim is
    this same scan's (device, session, seq), so the scanner hears "accepted", not "replayed". A
    later scan of the same code is refused."""
    from scanbridge.ledger import open_ledger
    from scanbridge.tokens import make_decider
    from scanbridge_tools.mint import demo_payloads
    demo = demo_payloads(3)
    token = demo.payloads[0][1]
    url = "sqlite:%s" % (tmp_path / "ledger.db")
    gate, claimed = threading.Event(), threading.Event()
    verifier_a = make_decider(demo.trust_store, open_ledger(url))

    class DiesAfterClaim:
        def __call__(self, scan):
            return self.many([scan])[0]

        def many(self, scans):
            out = verifier_a.many(scans)
            claimed.set()
            gate.wait(10)
            return out
    a = _bridge(broker, ScanService(DiesAfterClaim()), session_expiry=60)
    got = []

    async def scenario():
        c, task = await _raw_device(broker, got)
        scan_topic = topics.topic(SITE, "dev1", topics.SCAN)
        await c.publish(scan_topic, topics.pack(wire.SCAN, 11, 1, {"payload": token}), 1)
        await _wait(claimed.is_set, what="bridge A's claim")
        a.kill()
        gate.set()
        await asyncio.sleep(0.3)
        b = _bridge(broker, ScanService(make_decider(demo.trust_store, open_ledger(url))), session_expiry=60)
        await _wait(lambda: len(got) >= 1, what="the RESULT of the redelivered scan")
        await c.publish(scan_topic, topics.pack(wire.SCAN, 11, 2, {"payload": token}), 1)  # shown again
        await _wait(lambda: len(got) >= 2, what="the RESULT of the second scan")
        b.stop()
        await c.disconnect()
        task.cancel()

    asyncio.run(scenario())
    assert [(seq, data["verdict"], data["reason"]) for _, _, seq, data in got] == [
        (1, wire.ACCEPTED, "ok"), (2, wire.REJECTED, "replayed")]


def test_host_assist_over_wifi_snapshot_decoded_by_the_bridge_and_handed_back(broker):
    """A scanner on WiFi in host-assist fallback: its camera picture goes out as SNAPSHOT chunks
    (on its reply topic, the only one it may publish such data on), the bridge puts them back
    together and decodes them with zxing-cpp, and answers with the COMMAND "assist.result"
    holding the payload, as over a USB cable."""
    import base64
    import io

    from PIL import Image

    from scanbridge.host_assist import HostAssist, Responder
    from scanbridge_fw import snapshot
    from scanbridge_tools import scenes
    code = "SB1.over-wifi.assist-4711"
    gray, w, h = scenes.render_scene(code, 320, 240, angle_deg=7, blur=0.5, noise=2)
    buf = io.BytesIO()
    Image.frombytes("L", (w, h), gray).save(buf, format="JPEG", quality=80)
    picture = buf.getvalue()
    bridge = _bridge(broker, ScanService())
    ha = HostAssist()
    bridge.add_event_listener(ha.on_event)
    responder = Responder(lambda device, cmd, args: bridge.command_device(device, cmd, args))
    ha.add_listener(responder)
    commands_seen = []

    async def scenario():
        s = _scanner(broker, "dev2")
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(s.client.up.wait(), 10)
        sid, count = await snapshot.send(s, picture)
        assert count == snapshot.chunk_count(len(picture)) and count > 1
        while True:
            msg = await asyncio.wait_for(s.recv(), 15)
            if msg.kind == wire.COMMAND:
                commands_seen.append(msg.data)
                s.send(wire.REPLY, {"id": msg.data["id"], "ok": True, "result": {"taken": 1}})
                break
        await _wait(lambda: responder.sent + responder.failed > 0, what="the assist reply")
        await s.stop()
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        responder.close()
        bridge.stop()
    assert [c["cmd"] for c in commands_seen] == ["assist.result"]
    assert [base64.b64decode(p) for p in commands_seen[0]["args"]["payloads"]] == [code.encode()]
    assert ha.status()["decoded"] == 1 and responder.sent == 1 and responder.failed == 0
    assert bridge.stats()["malformed"] == 0


def test_command_to_a_scanner_never_heard_is_a_clear_error(broker):
    from scanbridge.link.mqtt import MqttLinkError
    bridge = _bridge(broker, ScanService())
    try:
        with pytest.raises(MqttLinkError) as e:
            bridge.command_device("ghost", "status")
        assert e.value.code == "unknown_device"
    finally:
        bridge.stop()
