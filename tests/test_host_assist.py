"""Host assist: a camera JPEG split by the firmware (firmware/snapshot.py), carried by wire.Link
(in memory and over a real pty into the bridge's SerialLink), reassembled and decoded with
zxing-cpp by bridge/host_assist.py; and every way a snapshot can go wrong."""
import io
import os
import threading
import time
import tty

import pytest
from PIL import Image

from scanbridge.host_assist import AssistError, HostAssist, Reassembler, decode_image
from scanbridge.link.serial import SerialLink
from scanbridge.scan import ScanService
from scanbridge_fw import snapshot, wire
from scanbridge_tools import scenes

pytestmark = pytest.mark.timeout(60)

PAYLOAD = "SB1.eyJhbXQiOiIxMi41MCIsImN1ciI6IkVVUiJ9.k3J9"


def _jpeg(payload=PAYLOAD, quality=80, **kw):
    gray, w, h = scenes.render_scene(payload, 320, 240, **kw)
    buf = io.BytesIO()
    Image.frombytes("L", (w, h), gray).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _chunks(data, sid, device="cam-1"):
    s = snapshot.Sender(data, snap_id=sid)
    return [dict(s.message(i), device=device) for i in range(s.count)]


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_jpeg_through_firmware_sender_and_wire_link_decodes():
    jpeg = _jpeg(angle_deg=15, tilt=(10, 5), blur=0.6, noise=3)
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 2 * wire.MAX_PAYLOAD
    dev = wire.Link({"device": "cam-1"}, 1)
    br = wire.Link({"bridge": "t"}, 2)
    assist = HostAssist()
    seen = []
    assist.add_listener(seen.append)
    sender = snapshot.Sender(jpeg, snap_id=42)
    now = 0
    for _ in range(500):
        sender.pump(dev)
        for msg in br.receive(dev.poll(now), now):
            if msg.kind == wire.SNAPSHOT:
                assist.on_event("snapshot", {"device": "cam-1", **msg.data})
        dev.receive(br.poll(now), now)
        now += 10
        if seen:
            break
    assert len(seen) == 1
    r = seen[0]
    assert r.ok and r.payloads == [PAYLOAD.encode()]
    assert (r.device, r.id, r.size, r.width, r.height) == ("cam-1", 42, len(jpeg), 320, 240)
    assert assist.wait("cam-1", 42, timeout=0.1) is r
    assert assist.status()["decoded"] == 1 and assist.status()["pending"] == 0
    assert r.as_dict()["payloads"] == [PAYLOAD]


def test_chunks_out_of_order_and_duplicated_still_assemble():
    jpeg = _jpeg()
    chunks = _chunks(jpeg, 7)
    assist = HostAssist()
    order = list(reversed(chunks)) + [chunks[0]]  # and an at-least-once duplicate of one
    results = [assist.feed(c) for c in order]
    done = [r for r in results if r is not None]
    assert len(done) == 1 and done[0].payloads == [PAYLOAD.encode()]
    assert assist.status()["bad_chunks"] == 0


def test_two_devices_same_id_do_not_mix():
    a, b = _jpeg("code-A"), _jpeg("code-B")
    assist = HostAssist()
    out = []
    for ca, cb in zip(_chunks(a, 1, "dev-a"), _chunks(b, 1, "dev-b")):
        out += [assist.feed(ca), assist.feed(cb)]
    got = {r.device: r.payloads for r in out if r is not None}
    assert got == {"dev-a": [b"code-A"], "dev-b": [b"code-B"]}


def test_missing_chunk_times_out_naming_it():
    clock = Clock()
    assist = HostAssist(timeout_s=5.0, clock=clock)
    chunks = _chunks(_jpeg(), 9)
    assert len(chunks) >= 3
    for c in chunks[:1] + chunks[2:]:
        assert assist.feed(c) is None
    with pytest.raises(AssistError) as e:
        assist.wait("cam-1", 9, timeout=0.05)
    assert e.value.code == "snapshot_timeout" and "chunk(s) 1 of" in e.value.message
    clock.t += 6
    errs = assist.reassembler.expire()
    assert [x.code for x in errs] == ["snapshot_incomplete"]
    assert "missing chunk(s) 1 of %d" % len(chunks) in errs[0].message
    assert assist.reassembler.pending() == 0
    # the late chunk alone starts a new snapshot; it does not resurrect the old one
    assert assist.feed(chunks[1]) is None


def test_bad_jpeg_is_a_clear_error():
    assist = HostAssist()
    r = assist.feed({"device": "cam-1", "id": 3, "index": 0, "count": 1, "data": b"\xff\xd8not a jpeg at all"})
    assert r is not None and not r.ok and r.error.code == "bad_image"
    assert "not a readable JPEG" in r.error.message
    assert assist.status()["failed"] == 1


def test_truncated_jpeg_is_bad_image_not_a_crash():
    jpeg = _jpeg()
    cut = jpeg[: len(jpeg) // 2]
    r = HostAssist().feed({"device": "d", "id": 1, "index": 0, "count": 1, "data": cut[:1000]})
    assert r.error is not None and r.error.code == "bad_image"


def test_image_without_a_code_is_empty_not_an_error():
    buf = io.BytesIO()
    Image.new("L", (320, 240), 128).save(buf, format="JPEG")
    assist = HostAssist()
    out = [assist.feed(c) for c in _chunks(buf.getvalue(), 1, "d")]
    r = out[-1]
    assert r.ok and r.payloads == [] and (r.width, r.height) == (320, 240)
    assert assist.status()["empty"] == 1


def test_bounds_and_inconsistent_chunks():
    ra = Reassembler(max_chunks=4, max_bytes=2500, per_device=1, max_pending=2)
    with pytest.raises(AssistError) as e:
        ra.feed("d", 1, 0, 5, b"x")
    assert e.value.code == "snapshot_too_big"
    with pytest.raises(AssistError) as e:
        ra.feed("d", 1, 4, 4, b"x")
    assert e.value.code == "snapshot_malformed"
    with pytest.raises(AssistError) as e:
        ra.feed("d", 1, 0, 1, b"x" * (wire.MAX_PAYLOAD + 1))
    assert e.value.code == "snapshot_malformed"
    # more bytes than allowed in total
    ra.feed("d", 2, 0, 3, b"a" * 1000)
    ra.feed("d", 2, 1, 3, b"b" * 1000)
    with pytest.raises(AssistError) as e:
        ra.feed("d", 2, 2, 3, b"c" * 1000)
    assert e.value.code == "snapshot_too_big" and ra.pending() == 0
    # a chunk claiming another count than its siblings
    ra.feed("d", 3, 0, 2, b"a")
    with pytest.raises(AssistError) as e:
        ra.feed("d", 3, 1, 3, b"b")
    assert e.value.code == "snapshot_inconsistent" and ra.pending() == 0
    # the same index twice with different bytes
    ra.feed("d", 4, 0, 2, b"a")
    with pytest.raises(AssistError) as e:
        ra.feed("d", 4, 0, 2, b"z")
    assert e.value.code == "snapshot_inconsistent"
    # one in progress per device: a new id supersedes the old one, recorded as incomplete
    ra.feed("d", 5, 0, 2, b"a")
    ra.feed("d", 6, 0, 2, b"a")
    assert ra.pending() == 1 and ra.dropped[-1][1] == 5 and ra.dropped[-1][2].code == "snapshot_incomplete"
    # overall bound: the oldest snapshot in progress goes first
    ra.feed("e", 1, 0, 2, b"a")
    ra.feed("f", 1, 0, 2, b"a")
    assert ra.pending() == 2 and ra.dropped[-1][2].code == "snapshot_overflow"


def test_malformed_event_is_counted_not_raised():
    assist = HostAssist()
    assert assist.feed({"device": "d", "index": 0}) is None
    r = assist.feed({"device": "d", "id": 5, "index": 3, "count": 2, "data": b"x"})
    assert r is not None and r.error.code == "snapshot_malformed"
    assert assist.status()["bad_chunks"] == 2
    assert assist.on_event("status", {"device": "d"}) is None  # other events are not ours


def test_decoder_crash_becomes_a_reason_code():
    def broken(data):
        raise RuntimeError("zxing exploded")
    r = HostAssist(decode=broken).feed({"device": "d", "id": 1, "index": 0, "count": 1, "data": b"x"})
    assert r.error.code == "decode_failed" and "zxing exploded" in r.error.message


def test_decode_image_reads_png_too_and_refuses_huge_frames():
    gray, w, h = scenes.render_scene("png works", 320, 240)
    payloads, pw, ph = decode_image(scenes.scene_to_png(gray, w, h))
    assert payloads == [b"png works"] and (pw, ph) == (320, 240)
    buf = io.BytesIO()
    Image.new("L", (2000, 1300)).save(buf, format="PNG")
    with pytest.raises(AssistError) as e:
        decode_image(buf.getvalue())
    assert e.value.code == "bad_image"


# ---------------------------------------------------------------- over a real pty


def test_snapshot_over_a_pty_into_the_bridge_serial_link():
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    path = os.ttyname(slave)
    dev = wire.Link({"device": "pty-cam", "fw": "test", "board": "none", "caps": ["snapshot"]}, 31,
                    rto_ms=50, rto_max_ms=200)
    assist = HostAssist()
    done = threading.Event()
    assist.add_listener(lambda r: done.set())
    link = SerialLink(path, ScanService(), on_event=assist.on_event).start()

    def now():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def pump(until, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and not until():
            try:
                data = os.read(master, 4096)
            except (BlockingIOError, OSError):
                data = b""
            if data:
                dev.receive(data, now())
            if sender is not None:
                sender.pump(dev)
            out = dev.poll(now())
            if out:
                os.write(master, out)
            time.sleep(0.002)
        return until()

    sender = None
    try:
        dev.start()
        assert pump(lambda: link.device_id == "pty-cam")
        jpeg = _jpeg(angle_deg=-12, blur=0.5, noise=2)
        sender = snapshot.Sender(jpeg, snap_id=snapshot.next_id())
        assert pump(done.is_set)
        r = assist.wait("pty-cam", sender.id, timeout=1)
        assert r.ok and r.payloads == [PAYLOAD.encode()] and r.size == len(jpeg)
    finally:
        link.stop()
        os.close(master)
        os.close(slave)


def test_fallback_round_trip_device_frame_to_bridge_and_payload_back():
    """Host-assist fallback end to end in one process: the device's decoder misses, the failing
    QVGA frame goes out as SNAPSHOT chunks over wire.Link, the bridge decodes it with zxing-cpp,
    the Responder answers "assist.result", and the payload comes out of the device's decode()."""
    import asyncio

    from scanbridge.host_assist import Responder
    from scanbridge_fw import assist, commands, config

    gray, w, h = scenes.render_scene(PAYLOAD, 320, 240, angle_deg=8, blur=0.5, noise=2)

    class Board:
        name = "t"

    class App:
        pass

    class AppLink:
        wire = wire.Link({"device": "cam-9"}, 3)

    async def main():
        cfg = config.defaults()
        cfg.update(host_assist="fallback", host_assist_misses=2, host_assist_every_ms=60000)
        app = App()
        app.board, app.config, app.link = Board(), cfg, AppLink()
        dec = assist.Assisted(lambda g, ww, hh: [], app.board, cfg)
        dec.attach(app)
        bridge = wire.Link({"bridge": "t"}, 4)
        ha = HostAssist()
        outbox = []
        responder = Responder(lambda dev, cmd, args: outbox.append((dev, cmd, args)))
        ha.add_listener(responder)
        now = 0
        try:
            for _ in range(2000):
                got = dec(gray, w, h)
                if got:
                    return got, ha, responder, outbox
                await asyncio.sleep(0)
                for msg in bridge.receive(app.link.wire.poll(now), now):
                    if msg.kind == wire.SNAPSHOT:
                        ha.on_event("snapshot", {"device": "cam-9", **msg.data})
                app.link.wire.receive(bridge.poll(now), now)
                while outbox:
                    dev, cmd, args = outbox.pop(0)
                    assert dev == "cam-9"
                    reply = await commands.dispatch(app, {"id": 1, "cmd": cmd, "args": args})
                    assert reply["ok"], reply
                now += 10
                await asyncio.sleep(0.001)
            raise AssertionError("no assisted payload; assist %s, device %s" % (ha.status(), dec.counts))
        finally:
            responder.close()

    got, ha, responder, outbox = asyncio.run(main())
    assert got == [PAYLOAD.encode()]
    assert ha.status()["decoded"] == 1 and responder.sent == 1 and responder.failed == 0


def test_fallback_through_the_virtual_scanner_and_bridge_serial_link():
    """The real firmware app (virtual scanner on a pty) in fallback mode, the bridge's real
    SerialLink with HostAssist + Responder: the code the device cannot read reaches the bridge's
    ScanService as an ordinary SCAN, and the scanner shows the verdict. The device decoder here
    is a stand-in that reads nothing (the condition fallback mode exists for)."""
    from scanbridge.host_assist import Responder
    from scanbridge.scan import ScanService
    from scanbridge_fw import assist
    from scanbridge_tools.virtual_scanner.frames import Frame, QueuedStream
    from scanbridge_tools.virtual_scanner.scanner import VirtualScanner

    gray, w, h = scenes.render_scene(PAYLOAD, 320, 240, angle_deg=-6, blur=0.6, noise=2)
    frames = QueuedStream(hold=100000, gap=0)
    frames.show(Frame(gray, w, h, [PAYLOAD.encode()], "assist"))
    cfg = {"host_assist": "fallback", "host_assist_misses": 3, "host_assist_every_ms": 500}
    dec = assist.Assisted(lambda g, ww, hh: [], None, cfg)
    vs = VirtualScanner(frames, fps=50, rto_ms=100, config=cfg, decode=dec, device_id="vs-assist")
    events = []
    vs.listeners.append(lambda e, d: events.append((e, d)))
    scans = []
    service = ScanService()
    service.add_listener(lambda scan, verdict: scans.append((scan, verdict)))
    ha = HostAssist()
    link = None
    responder = None
    try:
        vs.start()
        dec.attach(vs.app)
        link = SerialLink(vs.path, service, on_event=ha.on_event).start()
        responder = Responder(lambda device, cmd, args: link.command(cmd, args))
        ha.add_listener(responder)
        end = time.monotonic() + 30
        while time.monotonic() < end and not any(e == "result" for e, _ in events):
            time.sleep(0.05)
        assert scans, "no scan; assist %s, responder sent %d failed %d (%s), device %s" % (
            ha.status(), responder.sent, responder.failed, responder.last_error, dec.counts)
        scan, verdict = scans[0]
        assert scan.payload == PAYLOAD.encode() and scan.device_id == "vs-assist"
        assert verdict.accepted
        results = [d for e, d in events if e == "result"]
        assert results[0]["payload"] == PAYLOAD.encode() and results[0]["verdict"] == "accepted"
        assert dec.counts["snapshots"] >= 1 and dec.counts["assisted"] >= 1
    finally:
        if link is not None:
            link.stop()
        if responder is not None:
            responder.close()
        vs.stop()
