# Host-assist fallback on the scanner (firmware/assist.py): after enough misses the failing frame
# goes out as SNAPSHOT chunks, and payloads the bridge sends back come out of decode().
# Plain asserts only: runs in CPython and in the MicroPython WebAssembly port.
import binascii

from scanbridge_fw import assist, commands, config, wire
from scanbridge_fw.compat import sleep_ms


class Board:
    name = "fake"


class JpegBoard:
    name = "fake-jpeg"

    def __init__(self, jpeg):
        self.jpeg = jpeg
        self.asked = 0

    async def capture_jpeg(self):
        self.asked += 1
        return self.jpeg


class Link:
    def __init__(self):
        self.wire = wire.Link({"device": "d"}, 5, queue_max=64)


class App:
    def __init__(self, board, cfg):
        self.board = board
        self.link = Link()
        self.config = cfg


def _cfg(mode="fallback", misses=3):
    cfg = config.defaults()
    cfg["host_assist"] = mode
    cfg["host_assist_misses"] = misses
    cfg["host_assist_every_ms"] = 500
    return cfg


def _frame(w, h):
    return bytes((x * 7 + y * 3) & 0xFF for y in range(h) for x in range(w))


def _chunks(app):
    return [item[1] for item in app.link.wire._queue if item[0] == wire.SNAPSHOT]


def test_settings_are_registered_and_checked():
    d = config.defaults()
    assert d["host_assist"] == "off"
    assert config.check("host_assist", "fallback") == "fallback"
    try:
        config.check("host_assist", "always")
        assert False
    except config.ConfigError as e:
        assert e.code == "config_invalid"


def test_frame_pgm_crops_rows_to_fit():
    w, h = 40, 10
    gray = _frame(w, h)
    pgm = assist.frame_pgm(gray, w, h, max_bytes=300)
    head = b"P5\n28 10\n255\n"
    assert bytes(pgm[:len(head)]) == head
    body = pgm[len(head):]
    assert len(body) == 28 * 10
    x0 = (40 - 28) // 2
    for y in range(h):
        assert bytes(body[y * 28:(y + 1) * 28]) == gray[y * w + x0:y * w + x0 + 28]
    whole = assist.frame_pgm(gray, w, h)
    assert bytes(whole[len(b"P5\n40 10\n255\n"):]) == gray


async def test_misses_send_the_failing_frame_then_bridge_payloads_come_out_of_decode():
    found = []
    dec = assist.Assisted(lambda g, w, h: found, Board(), _cfg())
    app = App(dec.board, _cfg())
    dec.attach(app)
    w, h = 64, 48
    gray = _frame(w, h)
    assert dec(gray, w, h) == [] and dec(gray, w, h) == []
    assert dec(gray, w, h) == []  # third miss: a snapshot is on its way
    assert dec.busy
    await sleep_ms(50)
    assert not dec.busy and dec.counts["snapshots"] == 1
    chunks = _chunks(app)
    assert len(chunks) == 4 and [c["index"] for c in chunks] == [0, 1, 2, 3]
    pgm = b"".join(c["data"] for c in chunks)
    assert pgm == b"P5\n64 48\n255\n" + gray
    # the bridge read a code in it and says so
    reply = await commands.dispatch(app, {"id": 1, "cmd": "assist.result",
                                          "args": {"id": chunks[0]["id"],
                                                   "payloads": [binascii.b2a_base64(b"PAY:42")[:-1].decode()]}})
    assert reply["ok"] and reply["result"] == {"taken": 1}
    assert dec(gray, w, h) == [b"PAY:42"]
    assert dec(gray, w, h) == []  # once only
    assert dec.counts["assisted"] == 1


async def test_jpeg_board_sends_its_jpeg_and_off_mode_sends_nothing():
    board = JpegBoard(b"\xff\xd8" + bytes(1500) + b"\xff\xd9")
    dec = assist.Assisted(lambda g, w, h: [], board, _cfg(misses=1))
    app = App(board, _cfg(misses=1))
    dec.attach(app)
    dec(b"\x00" * 16, 4, 4)
    await sleep_ms(50)
    assert board.asked == 1
    assert b"".join(c["data"] for c in _chunks(app)) == board.jpeg
    off = App(board, _cfg(mode="off", misses=1))
    dec2 = assist.Assisted(lambda g, w, h: [], board, off.config)
    dec2.attach(off)
    for _ in range(5):
        dec2(b"\x00" * 16, 4, 4)
    await sleep_ms(20)
    assert board.asked == 1 and _chunks(off) == []


class NoJpegCameraBoard(JpegBoard):
    """A board whose camera driver cannot switch to JPEG (lemariva): it says so."""

    def can_capture_jpeg(self):
        return False


async def test_a_board_that_cannot_give_a_jpeg_sends_the_failing_frame():
    board = NoJpegCameraBoard(b"never")
    dec = assist.Assisted(lambda g, w, h: [], board, _cfg(misses=1))
    app = App(board, _cfg(misses=1))
    dec.attach(app)
    gray = _frame(8, 4)
    dec(gray, 8, 4)
    await sleep_ms(50)
    assert board.asked == 0
    assert b"".join(c["data"] for c in _chunks(app)) == b"P5\n8 4\n255\n" + gray


async def test_a_device_read_resets_the_miss_count():
    out = [[], [], [b"seen"], [], []]
    dec = assist.Assisted(lambda g, w, h: out.pop(0), Board(), _cfg(misses=3))
    app = App(dec.board, _cfg(misses=3))
    dec.attach(app)
    for _ in range(5):
        dec(b"\x00" * 16, 4, 4)
    await sleep_ms(20)
    assert _chunks(app) == []


async def test_bad_assist_result_is_refused_with_a_reason():
    dec = assist.Assisted(lambda g, w, h: [], Board(), _cfg())
    app = App(dec.board, _cfg())
    dec.attach(app)
    for args, code in (({"payloads": "x"}, "bad_args"), ({"payloads": ["!!!"]}, "bad_args"),
                       ({"payloads": ["A"]}, "bad_args"), ({"payloads": [7]}, "bad_args"),
                       ({"payloads": ["QQ=="] * 5}, "bad_args")):
        reply = await commands.dispatch(app, {"id": 2, "cmd": "assist.result", "args": args})
        assert not reply["ok"] and reply["error"]["code"] == code, reply
    assert dec.inbox == []
    app.config = _cfg(mode="off")  # switched off with config.set: the bridge's answers are refused
    reply = await commands.dispatch(app, {"id": 3, "cmd": "assist.result", "args": {"payloads": ["QQ=="]}})
    assert not reply["ok"] and reply["error"]["code"] == "assist_off"
    assert dec.inbox == []
