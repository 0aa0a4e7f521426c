"""Property tests of the serial framing and session (firmware/wire.py) against a hostile line:
random corruption, insertion, deletion and truncation never yield a wrong message, only drops
that the session repairs by retransmitting; once the noise stops, every scan arrives exactly
once and in order, and every RESULT comes back exactly once."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanbridge_fw import wire

OPS = ("flip", "insert", "delete", "truncate", "drop", "dup_byte", "none")

payloads = st.binary(min_size=0, max_size=300)
message = st.one_of(
    st.tuples(st.just(wire.SCAN), st.builds(lambda p, ms, q: {"payload": p, "decode_ms": ms, "quality": q, "flags": 0},
                                            payloads, st.integers(0, 0xFFFF), st.integers(0, 255))),
    st.tuples(st.just(wire.RESULT), st.builds(lambda s, v, r, t: {"scan_seq": s, "verdict": v, "reason": r, "text": t},
                                              st.integers(0, 0xFFFF), st.integers(0, 2),
                                              st.text(max_size=20), st.text(max_size=40))),
    st.tuples(st.just(wire.STATUS), st.dictionaries(st.text(max_size=8), st.integers(), max_size=5)),
    st.tuples(st.just(wire.COMMAND), st.builds(lambda i, c: {"id": i, "cmd": c, "args": {}},
                                               st.integers(0, 1000), st.text(max_size=12))),
)
noise_op = st.tuples(st.sampled_from(OPS), st.floats(0, 1), st.integers(0, 255), st.integers(1, 60))


def mangle(data, op):
    kind, where, byte, n = op
    if not data or kind == "none":
        return data
    b = bytearray(data)
    i = min(int(where * len(b)), len(b) - 1)
    if kind == "flip":
        b[i] ^= (byte or 1)
    elif kind == "insert":
        b[i:i] = bytes([byte]) * (n % 8 + 1)
    elif kind == "delete":
        del b[i:i + n]
    elif kind == "truncate":
        del b[i:]
    elif kind == "drop":
        return b""
    elif kind == "dup_byte":
        b[i:i] = b[i:i + 1]
    return bytes(b)


def _same(sent, got):
    kind, data = sent
    if got.kind != kind:
        return False
    for k in data:
        if got.data.get(k) != data[k]:
            return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message, min_size=1, max_size=6), st.lists(noise_op, min_size=1, max_size=12))
def test_decoder_never_yields_a_wrong_message(msgs, ops):
    frames = [wire.encode_frame(kind, i + 1, data) for i, (kind, data) in enumerate(msgs)]
    stream = b""
    for i, f in enumerate(frames):
        stream += mangle(f, ops[i % len(ops)])
    out = wire.FrameDecoder().feed(stream)
    for item in out:
        if isinstance(item, wire.WireError):
            # damage is reported as a reason code, never as a message
            assert item.code in ("oversize", "malformed", "protocol_version", "unknown_type")
            continue
        assert 1 <= item.seq <= len(msgs), item
        assert _same(msgs[item.seq - 1], item), (item, msgs[item.seq - 1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(payloads, min_size=1, max_size=8), st.lists(noise_op, min_size=1, max_size=40),
       st.integers(1, 7))
def test_after_noise_every_scan_arrives_exactly_once(scan_payloads, ops, chunk):
    dev = wire.Link({"device": "d"}, 11, rto_ms=30, rto_max_ms=120)
    br = wire.Link({"bridge": "b"}, 22, rto_ms=30, rto_max_ms=120)
    dev.start()
    br.start()
    seqs = {}
    for p in scan_payloads:
        seqs[dev.send(wire.SCAN, {"payload": p})] = p
    got_scans, got_results = [], []
    now = 0
    noisy = list(ops)
    for _ in range(3000):
        now += 10
        for src, dst, sink in ((dev, br, "scan"), (br, dev, "result")):
            out = src.poll(now)
            if out and noisy:
                out = mangle(out, noisy.pop(0))
            # the line delivers in small pieces, as a UART does
            msgs = []
            for i in range(0, len(out), chunk * 17):
                msgs += dst.receive(out[i:i + chunk * 17], now)
            for m in msgs:
                if m.kind == wire.SCAN:
                    got_scans.append(m)
                    br.send(wire.RESULT, {"scan_seq": m.seq, "verdict": wire.ACCEPTED, "reason": "ok", "text": ""})
                elif m.kind == wire.RESULT:
                    got_results.append(m.data["scan_seq"])
        if not noisy and len(got_results) == len(scan_payloads) and dev.pending() == 0 and br.pending() == 0:
            break
    assert [m.data["payload"] for m in got_scans] == list(scan_payloads)
    assert sorted(got_results) == sorted(seqs)  # each RESULT once, for the right scan
    assert [seqs[s] for s in got_results] == list(scan_payloads)
    assert dev.pending() == 0 and br.pending() == 0


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=3000))
def test_random_bytes_never_decode_to_a_message(junk):
    out = wire.FrameDecoder().feed(junk)
    assert not [m for m in out if isinstance(m, wire.Message)]
