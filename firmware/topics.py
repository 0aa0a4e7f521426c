# MQTT topic layout and payload header shared by the scanner firmware and the bridge (one source).
#
#   sb/v1/<site>/<device>/scan     device -> bridges  QoS 1   SCAN     (bridges: $share/<group>/...)
#   sb/v1/<site>/<device>/result   bridge -> device   QoS 1   RESULT   (answers one scan)
#   sb/v1/<site>/<device>/status   device -> all      QoS 1, retained  STATUS JSON; the last will
#                                                      sets {"online": false} when the device drops
#   sb/v1/<site>/<device>/cmd      bridge -> device   QoS 1   COMMAND
#   sb/v1/<site>/<device>/reply    device -> bridge   QoS 1   REPLY
#   sb/v1/<site>/<device>/log      device -> bridge   QoS 0   LOG
#
# Every payload is an 8-byte header then a wire.encode_body() body:
#   VER(1) KIND(1) SESSION(4, big endian) SEQ(2, big endian)
# SESSION is random per boot of the sender, SEQ counts its messages; (device, SESSION, SEQ) names a
# scan for duplicate detection across QoS 1 redelivery, reconnects and reboots (spooled scans keep
# their numbers). A RESULT carries the SESSION and SEQ of the scan it answers.
# Documented in docs/protocol.md ("MQTT link").
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(__x):
        return __x

from scanbridge_fw import wire

ROOT = "sb"
VERSION = "v1"  # bump with an incompatible change of the layout or the header
HEADER_LEN = const(8)
_HEADER = ">BBIH"

SCAN = "scan"
RESULT = "result"
STATUS = "status"
CMD = "cmd"
REPLY = "reply"
LOG = "log"
LEAVES = (SCAN, RESULT, STATUS, CMD, REPLY, LOG)


def _check_segment(name, what):
    if not name or "/" in name or "+" in name or "#" in name or "\x00" in name or name[0] == "$":
        raise wire.WireError("bad_topic", "%s %r cannot be a topic level" % (what, name))
    return name


def topic(site, device, leaf):
    """The topic of one message kind of one device."""
    _check_segment(site, "site")
    _check_segment(device, "device")
    return "%s/%s/%s/%s/%s" % (ROOT, VERSION, site, device, leaf)


def filter_all(site, leaf):
    """Subscription filter for one leaf of every device of a site ('+' = every site)."""
    if site != "+":
        _check_segment(site, "site")
    return "%s/%s/%s/+/%s" % (ROOT, VERSION, site, leaf)


def shared(group, topic_filter):
    """A shared subscription: each message goes to one member of `group`."""
    _check_segment(group, "group")
    return "$share/%s/%s" % (group, topic_filter)


def parse(name):
    """(site, device, leaf) of a topic in this layout; WireError('bad_topic') otherwise."""
    if isinstance(name, (bytes, bytearray, memoryview)):
        name = bytes(name).decode()
    parts = name.split("/")
    if len(parts) != 5 or parts[0] != ROOT:
        raise wire.WireError("bad_topic", name)
    if parts[1] != VERSION:
        raise wire.WireError("protocol_version", "topic version %s, we speak %s" % (parts[1], VERSION))
    if parts[4] not in LEAVES or not parts[2] or not parts[3]:
        raise wire.WireError("bad_topic", name)
    return parts[2], parts[3], parts[4]


def pack(kind, session, seq, data):
    """Payload bytes: header + wire body."""
    return struct.pack(_HEADER, wire.PROTOCOL_VERSION, kind, session & 0xFFFFFFFF,
                       seq & 0xFFFF) + wire.encode_body(kind, data)


def unpack(payload):
    """(kind, session, seq, data) from payload bytes; WireError when it cannot be taken."""
    if len(payload) < HEADER_LEN:
        raise wire.WireError("malformed", "payload of %d bytes" % len(payload))
    ver, kind, session, seq = struct.unpack(_HEADER, bytes(payload[:HEADER_LEN]))
    if ver != wire.PROTOCOL_VERSION:
        raise wire.WireError("protocol_version", "peer speaks %d, we speak %d" % (ver, wire.PROTOCOL_VERSION))
    if kind not in wire.KIND_NAMES:
        raise wire.WireError("unknown_type", "kind 0x%02x" % kind)
    return kind, session, seq, wire.decode_body(kind, bytes(payload[HEADER_LEN:]))
