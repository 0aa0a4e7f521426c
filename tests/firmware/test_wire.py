# Wire-format tests that run in CPython (pytest) and inside MicroPython (tests/support/mpy_run.mjs).
# Plain asserts only, no pytest features: the same file is imported by both interpreters.
from scanbridge_fw import wire


def _pair():
    dev = wire.Link({"device": "dev1", "fw": "0.1", "board": "virtual", "caps": []}, 1111)
    br = wire.Link({"bridge": "test"}, 2222)
    return dev, br


def _pump(a, b, now, rounds=10, corrupt=None):
    got_a, got_b = [], []
    for _ in range(rounds):
        x = a.poll(now)
        y = b.poll(now)
        if corrupt:
            x, y = corrupt(x), corrupt(y)
        got_b += b.receive(x, now)
        got_a += a.receive(y, now)
        now += 10
    return got_a, got_b, now


def test_frame_is_printable_ascii():
    f = wire.encode_frame(wire.SCAN, 7, {"payload": bytes(range(256))[:200], "decode_ms": 12, "quality": 80})
    assert f[0] == 0x7E and f[-1] == 0x0A
    for b in f[:-1]:
        assert 0x20 <= b < 0x7F, b
    for b in f:
        assert b not in (1, 2, 3, 4, 5)


def test_roundtrip_each_kind():
    cases = [
        (wire.SCAN, {"payload": b"hello \x00\xff", "decode_ms": 5, "quality": 9, "flags": 0}),
        (wire.RESULT, {"scan_seq": 3, "verdict": wire.REJECTED, "reason": "expired", "text": "Code expired"}),
        (wire.HELLO, {"device": "d", "proto": 1}),
        (wire.STATUS, {"heap": 100}),
        (wire.COMMAND, {"id": 1, "cmd": "ping", "args": {}}),
        (wire.REPLY, {"id": 1, "ok": True, "result": 5}),
        (wire.LOG, {"text": "hi"}),
        (wire.SNAPSHOT, {"id": 2, "index": 0, "count": 3, "data": b"\xff\xd8"}),
        (wire.ERROR, {"code": "x", "message": "y"}),
    ]
    for kind, data in cases:
        d = wire.FrameDecoder()
        out = d.feed(wire.encode_frame(kind, 42, data))
        assert len(out) == 1, out
        m = out[0]
        assert m.kind == kind and m.seq == 42
        for k in data:
            assert m.data[k] == data[k], (k, m.data)


def test_frames_found_amid_noise():
    noise = b"ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET)\r\n~~garbage\nMicroPython v1.27\r\n>>> "
    f1 = wire.encode_frame(wire.SCAN, 1, {"payload": b"A"})
    f2 = wire.encode_frame(wire.SCAN, 2, {"payload": b"B"})
    d = wire.FrameDecoder()
    out = []
    stream = noise + f1 + b"print output\r\n" + f2[:10]
    out += d.feed(stream)
    out += d.feed(f2[10:])
    msgs = [m for m in out if isinstance(m, wire.Message)]
    assert [m.data["payload"] for m in msgs] == [b"A", b"B"]
    assert d.noise_bytes > 0


def test_crc_catches_corruption():
    f = bytearray(wire.encode_frame(wire.SCAN, 1, {"payload": b"12345678901234567890"}))
    for i in range(1, len(f) - 1):
        g = bytearray(f)
        g[i] = g[i] ^ 0x01
        d = wire.FrameDecoder()
        out = [m for m in d.feed(bytes(g)) if isinstance(m, wire.Message)]
        assert out == [], i


def test_oversize_line_dropped_and_recovers():
    d = wire.FrameDecoder()
    out = d.feed(b"~1S0001" + b"A" * (wire.MAX_LINE + 10) + b"\n")
    assert any(isinstance(e, wire.WireError) and e.code == "oversize" for e in out)
    out = d.feed(wire.encode_frame(wire.SCAN, 2, {"payload": b"ok"}))
    assert isinstance(out[0], wire.Message) and out[0].data["payload"] == b"ok"


def test_other_protocol_version_is_named():
    f = bytearray(wire.encode_frame(wire.SCAN, 1, {"payload": b"x"}))
    f[1] = ord("2")
    # recompute the CRC so only the version differs
    import binascii
    n = len(f) - 1
    crc = binascii.crc32(bytes(f[1:n - 8])) & 0xFFFFFFFF
    f[n - 8:n] = b"%08x" % crc
    out = wire.FrameDecoder().feed(bytes(f))
    assert len(out) == 1 and isinstance(out[0], wire.WireError) and out[0].code == "protocol_version"


def test_link_delivers_once_in_order():
    dev, br = _pair()
    dev.start()
    br.start()
    for i in range(5):
        dev.send(wire.SCAN, {"payload": b"code%d" % i})
    got_dev, got_br, now = _pump(dev, br, 0, rounds=20)
    scans = [m.data["payload"] for m in got_br if m.kind == wire.SCAN]
    assert scans == [b"code%d" % i for i in range(5)], scans
    assert dev.pending() == 0 and br.pending() == 0
    assert br.peer["device"] == "dev1" and dev.peer["bridge"] == "test"


def test_link_retransmits_after_loss_and_drops_duplicates():
    dev, br = _pair()
    dev.start()
    br.start()
    _pump(dev, br, 0, rounds=4)
    dev.send(wire.SCAN, {"payload": b"X"})
    f = dev.poll(10_000)
    assert f  # the scan goes out
    # the bridge gets it, but its ack is lost
    got = br.receive(f, 10_000)
    assert [m.data["payload"] for m in got] == [b"X"]
    br.poll(10_000)  # ack dropped on the floor
    dups = br.duplicates
    again = dev.poll(20_000)  # timeout: retransmit
    assert again and f.endswith(again)  # the same frame again (f may lead with a stale ack)
    assert br.receive(again, 20_000) == []  # duplicate, not delivered again
    assert br.duplicates == dups + 1
    dev.receive(br.poll(20_000), 20_000)  # the second ack arrives
    assert dev.pending() == 0 and dev.retransmits >= 1


def test_queue_full_refuses_rather_than_drops():
    dev, _ = _pair()
    for i in range(dev.queue_max):
        dev.send(wire.SCAN, {"payload": b"%d" % i})
    try:
        dev.send(wire.SCAN, {"payload": b"one too many"})
        assert False, "expected queue_full"
    except wire.WireError as e:
        assert e.code == "queue_full"
    assert dev.pending() == dev.queue_max


def test_peer_restart_resets_duplicate_filter():
    dev, br = _pair()
    dev.start()
    br.start()
    dev.send(wire.SCAN, {"payload": b"first"})
    _, got_br, now = _pump(dev, br, 0, rounds=6)
    assert [m.data["payload"] for m in got_br if m.kind == wire.SCAN] == [b"first"]
    # the scanner reboots: same seq numbers start again under a new session
    dev2 = wire.Link({"device": "dev1"}, 3333)
    dev2.start()
    dev2.send(wire.SCAN, {"payload": b"second"})
    _, got_br, now = _pump(dev2, br, now, rounds=8)
    assert [m.data["payload"] for m in got_br if m.kind == wire.SCAN] == [b"second"]
    assert br.peer_session == 3333
