# Snapshot chunking (firmware/snapshot.py) over real wire.Link pairs, in CPython and MicroPython.
# Plain asserts only: the same file runs inside the MicroPython WebAssembly port.
from scanbridge_fw import snapshot, wire


def _image(n):
    # deterministic bytes that look a little like a JPEG (SOI marker first)
    out = bytearray(n)
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    if n >= 2:
        out[0] = 0xFF
        out[1] = 0xD8
    return bytes(out)


def _pair():
    dev = wire.Link({"device": "cam-1"}, 11)
    br = wire.Link({"bridge": "t"}, 22)
    return dev, br


def _pump(dev, br, now, rounds=8):
    got = []
    for _ in range(rounds):
        got += br.receive(dev.poll(now), now)
        dev.receive(br.poll(now), now)
        now += 5
    return got, now


def _reassemble(msgs, sid):
    parts = {}
    count = None
    for m in msgs:
        if m.kind == wire.SNAPSHOT and m.data["id"] == sid:
            parts[m.data["index"]] = m.data["data"]
            count = m.data["count"]
    assert count is not None and sorted(parts) == list(range(count)), (count, sorted(parts))
    return b"".join(parts[i] for i in range(count))


def test_chunk_count_and_bounds():
    assert snapshot.chunk_count(1) == 1
    assert snapshot.chunk_count(1000) == 1
    assert snapshot.chunk_count(1001) == 2
    assert snapshot.MAX_BYTES == snapshot.CHUNK * snapshot.MAX_CHUNKS
    for size, code in ((0, "snapshot_empty"), (snapshot.MAX_BYTES + 1, "snapshot_too_big")):
        try:
            snapshot.Sender(bytes(size))
            assert False, "no error for %d bytes" % size
        except snapshot.SnapshotError as e:
            assert e.code == code
    s = snapshot.Sender(bytes(snapshot.MAX_BYTES))  # exactly at the bound is fine
    assert s.count == snapshot.MAX_CHUNKS


def test_ids_are_fresh_and_16_bit():
    a = snapshot.next_id()
    b = snapshot.next_id()
    assert a != b and 0 < a <= 0xFFFF and 0 < b <= 0xFFFF
    assert snapshot.Sender(b"x", snap_id=0x1FFFF).id == 0xFFFF


def test_chunks_carry_id_index_count_and_fit_the_wire():
    img = _image(2500)
    s = snapshot.Sender(img, snap_id=7)
    assert s.count == 3
    msgs = [s.message(i) for i in range(3)]
    assert [m["index"] for m in msgs] == [0, 1, 2]
    assert all(m["id"] == 7 and m["count"] == 3 for m in msgs)
    assert [len(m["data"]) for m in msgs] == [1000, 1000, 500]
    assert b"".join(m["data"] for m in msgs) == img
    for m in msgs:  # every chunk encodes as a frame the peer accepts
        body = wire.encode_body(wire.SNAPSHOT, m)
        assert wire.decode_body(wire.SNAPSHOT, body) == m


def test_window_keeps_room_for_scans():
    dev, br = _pair()
    s = snapshot.Sender(_image(9000), snap_id=3, window=4)
    assert s.pump(dev) == 4  # nothing acked yet: four chunks wait, the rest stay in the buffer
    assert s.pump(dev) == 0 and not s.done
    seq = dev.send(wire.SCAN, {"payload": b"PAY:1"})  # a scan still fits
    assert seq > 0


def test_snapshot_arrives_whole_over_a_link():
    dev, br = _pair()
    dev.start()
    br.start()
    _, now = _pump(dev, br, 0)
    img = _image(7321)
    s = snapshot.Sender(img, snap_id=9, window=3)
    got = []
    for _ in range(200):
        s.pump(dev)
        msgs, now = _pump(dev, br, now, rounds=2)
        got += msgs
        if s.done and dev.pending() == 0:
            break
    assert s.done
    assert _reassemble(got, 9) == img


def test_lossy_line_still_delivers_every_chunk_once():
    dev, br = _pair()
    dev.start()
    br.start()
    _, now = _pump(dev, br, 0)
    img = _image(4100)
    s = snapshot.Sender(img, snap_id=10, window=2)
    got = []
    drop = [0]
    for _ in range(600):
        s.pump(dev)
        out = dev.poll(now)
        drop[0] += 1
        if drop[0] % 3 == 0:
            out = b""  # lose every third write; wire.Link retransmits
        got += br.receive(out, now)
        dev.receive(br.poll(now), now)
        now += 400
        if s.done and dev.pending() == 0:
            break
    assert s.done and dev.pending() == 0
    snaps = [m for m in got if m.kind == wire.SNAPSHOT]
    assert len(snaps) == s.count  # duplicates were dropped by the link
    assert _reassemble(got, 10) == img


def test_sender_copies_chunks_when_queued():
    buf = bytearray(_image(1500))
    dev, br = _pair()
    s = snapshot.Sender(buf, snap_id=4, window=1)
    s.pump(dev)
    first = dev._queue[0][1]["data"]
    buf[0] = 0  # the camera reusing its buffer after the chunk went into the queue
    assert first[0] == 0xFF


def test_channel_of_finds_the_reliable_channel():
    dev, _ = _pair()

    class SerialLike:
        wire = dev

    class MqttLike:
        mqtt = dev

    assert snapshot.channel_of(SerialLike()) is dev
    assert snapshot.channel_of(MqttLike()) is dev
    assert snapshot.channel_of(dev) is dev
    try:
        snapshot.channel_of(object())
        assert False
    except snapshot.SnapshotError as e:
        assert e.code == "no_channel"


async def test_send_waits_for_room_and_times_out_when_nobody_acks():
    dev, br = _pair()
    sid, count = await snapshot.send(dev, _image(1200), snap_id=5, window=4)
    assert (sid, count) == (5, 2)
    stuck, _ = _pair()
    try:
        await snapshot.send(stuck, _image(8000), window=2, timeout_ms=60, poll_ms=10)
        assert False, "no timeout"
    except snapshot.SnapshotError as e:
        assert e.code == "snapshot_timeout"


def test_fallback_policy():
    p = snapshot.FallbackPolicy(misses=3, every_ms=1000)
    assert [p.frame(False, t) for t in (0, 10, 20)] == [False, False, True]
    assert [p.frame(False, t) for t in (30, 40, 50)] == [False, False, False]  # too soon
    assert p.frame(True, 60) is False  # a read resets the run
    assert [p.frame(False, t) for t in (1100, 1110, 1120)] == [False, False, True]
