"""The app's link to the bridge: the one interface every transport implements.

Transports: `serial_link.SerialLink` (frames over the UART/USB CDC with wire.Link) and, later,
`mqtt_link.MqttLink` (WiFi). The app (`app.App`) only talks to this shape:

    link = SomeLink(...)
    link.on_result = fn(data)          # called once per RESULT: data has scan_seq, verdict
                                       # (wire.ACCEPTED/REJECTED/PENDING), reason, text
    link.on_command = async fn(data)   # data has id, cmd, args; returns the REPLY dict
                                       # (id, ok, result | error); the link sends it back
    link.on_error = fn(code, message)  # the peer refused something (wire ERROR) or the link broke
    await link.run()                   # runs forever: connect, HELLO, receive, retransmit
    seq = link.send_scan({"payload": b"...", "decode_ms": 12, "quality": 0})
                                       # queues a scan reliably and returns the number the
                                       # RESULT will carry as scan_seq; raises
                                       # wire.WireError("queue_full") rather than drop a scan
    link.send_status(dict)             # best effort (STATUS)
    link.send_log(text)                # best effort (LOG)
    link.ready()                       # True once the bridge has said HELLO on this link
    link.status()                      # dict for STATUS/diagnostics: {"link": "serial", ...}

Rules every link keeps:
- A scan is sent until the bridge has it (retransmit / QoS 1); the bridge de-duplicates.
- A RESULT is only delivered for this device session: a RESULT that predates the bridge's
  answer to our HELLO (a bridge still answering our previous boot) is dropped.
- Callbacks are plain functions called from the link's task; they must not block.
"""
from scanbridge_fw import wire


class AppLink:
    """Base class with the callbacks and the shape; transports override the methods."""

    name = "none"

    def __init__(self):
        self.on_result = _ignore
        self.on_command = _no_commands
        self.on_error = _ignore2

    async def run(self):
        raise NotImplementedError

    def send_scan(self, scan):
        raise NotImplementedError

    def send_status(self, data):
        pass

    def send_log(self, text):
        pass

    def ready(self):
        return False

    def status(self):
        return {"link": self.name}


def _ignore(data):
    pass


def _ignore2(code, message):
    pass


async def _no_commands(data):
    return {"id": data.get("id"), "ok": False,
            "error": {"code": "unknown_command", "message": "no command handler"}}


def result_name(verdict):
    """wire.ACCEPTED -> "accepted" (for logs and feedback)."""
    if 0 <= verdict < len(wire.VERDICT_NAMES):
        return wire.VERDICT_NAMES[verdict]
    return "unknown"
