# MQTT 3.1.1 packet codec of the firmware client (scanbridge_fw.mqtt) and the MQTT topic/payload
# layout (scanbridge_fw.topics). Runs in CPython and inside MicroPython; plain asserts only.
from scanbridge_fw import mqtt, topics, wire


def test_connect_packet_bytes_match_the_spec():
    # MQTT 3.1.1 section 3.1: fixed header 0x10, remaining length, "MQTT", level 4, flags, keepalive
    p = mqtt.connect_packet("dev1", keepalive=30, clean=False, user="dev1", password="pw",
                            will_topic="w", will_payload=b"x", will_qos=1, will_retain=True)
    assert p[0] == 0x10
    body = p[2:]
    assert p[1] == len(body)
    assert body[:7] == b"\x00\x04MQTT\x04"
    assert body[7] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, will retain, will qos 1, will
    assert body[8:10] == b"\x00\x1e"
    assert body[10:] == b"\x00\x04dev1" + b"\x00\x01w" + b"\x00\x01x" + b"\x00\x04dev1" + b"\x00\x02pw"


def test_connect_clean_without_will_or_user():
    p = mqtt.connect_packet("c", keepalive=0, clean=True)
    assert p == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01c"


def test_remaining_length_encoding():
    # the spec's own examples: 0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455
    cases = [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16383, b"\xff\x7f"),
             (16384, b"\x80\x80\x01"), (2097151, b"\xff\xff\x7f"), (2097152, b"\x80\x80\x80\x01"),
             (268435455, b"\xff\xff\xff\x7f")]
    for n, enc in cases:
        assert mqtt._varlen(n) == enc, n


def test_publish_roundtrip_through_the_decoder_in_small_pieces():
    payload = bytes(range(256)) * 2
    p = mqtt.publish_packet("sb/v1/s/d/scan", payload, qos=1, retain=True, dup=True, pid=513)
    assert p[0] == 0x30 | 0x08 | 0x02 | 0x01
    dec = mqtt.PacketDecoder()
    got = []
    for i in range(0, len(p), 7):  # the stream arrives in arbitrary chunks
        got += dec.feed(p[i:i + 7])
    assert len(got) == 1
    ptype, flags, body = got[0]
    assert ptype == mqtt.PUBLISH
    t, pid, data, qos, retain, dup = mqtt.parse_publish(flags, body)
    assert (t, pid, data, qos, retain, dup) == ("sb/v1/s/d/scan", 513, payload, 1, True, True)


def test_qos0_publish_has_no_packet_id():
    p = mqtt.publish_packet("t", b"ab", qos=0)
    assert p == b"\x30\x05\x00\x01tab"
    (ptype, flags, body), = mqtt.PacketDecoder().feed(p)
    assert mqtt.parse_publish(flags, body) == ("t", 0, b"ab", 0, False, False)


def test_several_packets_in_one_read_and_acks():
    stream = b"\x20\x02\x01\x00" + b"\x40\x02\x00\x07" + b"\xd0\x00" + b"\x90\x04\x00\x05\x01\x80"
    got = mqtt.PacketDecoder().feed(stream)
    assert [g[0] for g in got] == [mqtt.CONNACK, mqtt.PUBACK, mqtt.PINGRESP, mqtt.SUBACK]
    assert mqtt.parse_connack(got[0][2]) == (True, 0)
    assert mqtt.parse_pid(got[1][2]) == 7
    assert mqtt.parse_suback(got[3][2]) == (5, [1, 0x80])
    assert mqtt.puback_packet(7) == b"\x40\x02\x00\x07"
    assert mqtt.subscribe_packet(5, [("a/+", 1)]) == b"\x82\x08\x00\x05\x00\x03a/+\x01"


def test_decoder_refuses_oversize_and_bad_length():
    dec = mqtt.PacketDecoder(max_packet=100)
    try:
        dec.feed(b"\x30\x80\x08")  # 1024 bytes announced
        assert False, "oversize accepted"
    except mqtt.MQTTError as e:
        assert e.code == "oversize"
    try:
        mqtt.PacketDecoder().feed(b"\x30\xff\xff\xff\xff\x01")
        assert False, "5-byte length accepted"
    except mqtt.MQTTError as e:
        assert e.code == "malformed"
    try:
        mqtt.parse_connack(b"\x00")
        assert False
    except mqtt.MQTTError as e:
        assert e.code == "malformed"


def test_backoff_grows_caps_and_jitters():
    assert mqtt.backoff_ms(0, 500, 30000, 0) == 250
    assert mqtt.backoff_ms(0, 500, 30000, 65535) < 750
    assert mqtt.backoff_ms(3, 500, 30000, 32768) == 4000
    assert mqtt.backoff_ms(20, 500, 30000, 32768) == 30000
    lo = mqtt.backoff_ms(20, 500, 30000, 0)
    hi = mqtt.backoff_ms(20, 500, 30000, 65535)
    assert lo == 15000 and 44000 < hi < 45000


def test_topic_layout():
    assert topics.topic("store1", "dev1", topics.SCAN) == "sb/v1/store1/dev1/scan"
    assert topics.parse("sb/v1/store1/dev1/result") == ("store1", "dev1", "result")
    assert topics.filter_all("+", topics.STATUS) == "sb/v1/+/+/status"
    assert topics.shared("g", topics.filter_all("s", topics.SCAN)) == "$share/g/sb/v1/s/+/scan"
    for bad in ("a/b", "+", "#", "", "$SYS"):
        try:
            topics.topic("s", bad, topics.SCAN)
            assert False, bad
        except wire.WireError as e:
            assert e.code == "bad_topic"
    for bad in ("sb/v1/s/d/other", "x/v1/s/d/scan", "sb/v1/s/scan"):
        try:
            topics.parse(bad)
            assert False, bad
        except wire.WireError as e:
            assert e.code == "bad_topic"
    try:
        topics.parse("sb/v9/s/d/scan")
        assert False
    except wire.WireError as e:
        assert e.code == "protocol_version"


def test_payload_header_roundtrip_and_errors():
    p = topics.pack(wire.SCAN, 0x12345678, 513, {"payload": b"TOKEN", "decode_ms": 9, "quality": 3})
    assert p[:8] == b"\x01S\x12\x34\x56\x78\x02\x01"
    kind, session, seq, data = topics.unpack(p)
    assert (kind, session, seq, data["payload"], data["decode_ms"]) == (wire.SCAN, 0x12345678, 513, b"TOKEN", 9)
    r = topics.pack(wire.RESULT, 7, 8, {"scan_seq": 8, "verdict": wire.REJECTED, "reason": "expired", "text": ""})
    assert topics.unpack(r)[3]["reason"] == "expired"
    for bad, code in ((b"\x01S", "malformed"), (b"\x02S\x00\x00\x00\x00\x00\x01", "protocol_version"),
                      (b"\x01Z\x00\x00\x00\x00\x00\x01", "unknown_type"),
                      (b"\x01R\x00\x00\x00\x00\x00\x01\x00", "malformed")):
        try:
            topics.unpack(bad)
            assert False, bad
        except wire.WireError as e:
            assert e.code == code, (bad, e.code)
