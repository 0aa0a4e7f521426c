# The scanner app end to end in one interpreter (CPython or MicroPython): a fake board (frames
# carry their payloads; LEDs and tones recorded), the REAL SerialLink over an in-memory port,
# and a bridge made of a second wire.Link that answers each SCAN.
from scanbridge_fw import config, wire
from scanbridge_fw.app import App, hello_for
from scanbridge_fw.compat import create_task, sleep_ms
from scanbridge_fw.serial_link import SerialLink


class FakeBoard:
    name = "fake"
    caps = ("scan",)

    def __init__(self, frames):
        self.frames = list(frames)  # each a list of payloads in view
        self.current = []
        self.leds = []
        self.tones = []

    async def capture(self):
        await sleep_ms(2)
        self.current = self.frames.pop(0) if self.frames else []
        return b"", 0, 0

    def led(self, name):
        if name is not None:
            self.leds.append(name)

    def tone(self, hz):
        if hz:
            self.tones.append(hz)

    def light(self, on):
        pass

    def unique_id(self):
        return "fake-1"

    def mem_free(self):
        return 1234


class MemPort:
    """Both ends of a cable: the app reads `inbox` and writes `outbox`."""

    def __init__(self):
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closed = False

    async def read(self):
        while not self.inbox and not self.closed:
            await sleep_ms(1)
        data = bytes(self.inbox)
        self.inbox = bytearray()
        return data

    def write(self, data):
        self.outbox += data


class Bridge:
    """The bridge's end: a wire.Link; answers SCANs with decide(payload) -> (verdict, reason)."""

    def __init__(self, port, decide=None, session=4242):
        self.port = port
        self.link = wire.Link({"bridge": "test"}, session)
        self.decide = decide
        self.scans = []
        self.replies = []
        self.other = []
        self.now = 0
        self.running = True
        self.silent = False  # received, acked, but no RESULT (a slow decision)

    async def run(self):
        self.link.start()
        while self.running:
            self.now += 5
            data = bytes(self.port.outbox)
            self.port.outbox = bytearray()
            for msg in self.link.receive(data, self.now):
                if msg.kind == wire.SCAN:
                    self.scans.append(msg)
                    if not self.silent:
                        self.answer(msg)
                elif msg.kind == wire.REPLY:
                    self.replies.append(msg.data)
                else:
                    self.other.append(msg)
            self.port.inbox += self.link.poll(self.now)
            await sleep_ms(1)

    def answer(self, msg, verdict=None, reason=None):
        if verdict is None:
            verdict, reason = self.decide(msg.data["payload"]) if self.decide else (wire.ACCEPTED, "ok")
        self.link.send(wire.RESULT, {"scan_seq": msg.seq, "verdict": verdict, "reason": reason, "text": ""})


def _decide(payload):
    if payload.startswith(b"bad"):
        return wire.REJECTED, "bad_signature"
    return wire.ACCEPTED, "ok"


def _setup(frames, decide=_decide, **cfg_over):
    board = FakeBoard(frames)
    port = MemPort()
    cfg = config.defaults()
    cfg["result_timeout_ms"] = 500
    for k in cfg_over:
        cfg[k] = cfg_over[k]
    link = SerialLink(port, hello_for(board, cfg), 1111, queue_max=cfg.get("serial_queue", 16), rto_ms=50)
    app = App(board, link, lambda g, w, h: board.current, cfg, config_path=_cfg_path())
    bridge = Bridge(port, decide)
    return app, board, port, bridge


def _cfg_path():
    try:
        import tempfile
        return tempfile.mkdtemp() + "/config.json"
    except ImportError:
        return "/app_config.json"


async def _until(cond, ms=3000):
    waited = 0
    while not cond():
        if waited >= ms:
            return False
        await sleep_ms(5)
        waited += 5
    return True


async def _stop(app, port, bridge, task):
    app.stop("test")
    bridge.running = False
    await _until(lambda: task_done(task), 2000)
    app.link.stop()
    port.closed = True
    await sleep_ms(20)


def task_done(task):
    return getattr(task, "done", lambda: False)() if hasattr(task, "done") else True


async def test_scans_are_sent_once_answered_and_shown():
    frames = [[b"pay-1"]] * 4 + [[]] * 2 + [[b"bad-2"]] * 3 + [[]]
    app, board, port, bridge = _setup(frames)
    events = []
    app.listeners.append(lambda e, d: events.append((e, d)))
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: len(app.results) >= 2)
    await _stop(app, port, bridge, task)
    assert [m.data["payload"] for m in bridge.scans] == [b"pay-1", b"bad-2"]  # repeats suppressed
    assert [(r["verdict"], r["reason"]) for r in app.results] == [("accepted", "ok"), ("rejected", "bad_signature")]
    assert app.counts["scans"] == 2 and app.dedupe.suppressed >= 3
    assert "ok" in board.leds and "err" in board.leds
    assert 2700 in board.tones and 400 in board.tones  # accept and reject beeps (docs/feedback.md)
    assert bridge.link.peer["device"] == "fake-1" and bridge.link.peer["board"] == "fake"
    assert all(r["latency_ms"] >= 0 for r in app.results)
    assert [e for e, d in events if e in ("scan", "result")] == ["scan", "result", "scan", "result"]
    btask.cancel() if hasattr(btask, "cancel") else None


async def test_no_answer_then_late_result_still_shown():
    app, board, port, bridge = _setup([[b"slow-1"]] + [[]] * 500)
    bridge.silent = True
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: app.counts["no_answer"] == 1)
    assert "no_answer" in app.feedback.played
    assert len(bridge.scans) == 1  # the scan did arrive; only the verdict is slow
    bridge.answer(bridge.scans[0], wire.ACCEPTED, "ok")
    assert await _until(lambda: len(app.results) == 1)
    assert app.results[0]["verdict"] == "accepted"
    await _stop(app, port, bridge, task)


async def test_pending_then_final_verdict():
    app, board, port, bridge = _setup([[b"p-1"]] + [[]] * 500)
    bridge.silent = True
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: len(bridge.scans) == 1)
    bridge.answer(bridge.scans[0], wire.PENDING, "backend")
    assert await _until(lambda: len(app.results) == 1)
    bridge.answer(bridge.scans[0], wire.ACCEPTED, "ok")
    assert await _until(lambda: len(app.results) == 2)
    assert [r["verdict"] for r in app.results] == ["pending", "accepted"]
    assert app.counts["unmatched_results"] == 0
    await _stop(app, port, bridge, task)


async def test_queue_full_is_refused_not_dropped():
    # No bridge at all: nothing is acked. The link holds serial_queue messages (HELLO + scans);
    # the next scan is refused with a reason, and shown again it is tried again.
    frames = []
    for i in range(6):
        frames += [[b"code-%d" % i], []]
    app, board, port, bridge = _setup(frames, serial_queue=3, result_timeout_ms=100)
    task = create_task(app.run())
    assert await _until(lambda: app.counts["refused"] >= 1)
    assert app.link.wire.pending() == 3
    assert app.counts["scans"] == 2  # HELLO + 2 scans fill the queue of 3
    assert "retry" in app.feedback.played
    await _stop(app, port, bridge, task)


async def test_stale_result_before_bridge_hello_is_ignored():
    app, board, port, bridge = _setup([[b"x-1"]] + [[]] * 500)
    link = app.link
    # a RESULT arrives before any bridge HELLO (a bridge answering our previous boot)
    old = wire.Link({"bridge": "old"}, 9)
    old.send(wire.RESULT, {"scan_seq": 1, "verdict": wire.REJECTED, "reason": "expired", "text": ""})
    link.feed(old.poll(0))
    assert link.stale_results == 1 and app.counts["results"] == 0


async def test_commands_over_the_link():
    app, board, port, bridge = _setup([[]] * 1000)
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: bridge.link.peer is not None)
    bridge.link.send(wire.COMMAND, {"id": 1, "cmd": "ping", "args": {}})
    bridge.link.send(wire.COMMAND, {"id": 2, "cmd": "nope", "args": {}})
    bridge.link.send(wire.COMMAND, {"id": 3, "cmd": "config.set", "args": {"dedupe_ms": -1}})
    bridge.link.send(wire.COMMAND, {"id": 4, "cmd": "config.set", "args": {"dedupe_ms": 1234}})
    bridge.link.send(wire.COMMAND, {"id": 5, "cmd": "status", "args": {}})
    assert await _until(lambda: len(bridge.replies) == 5)
    by_id = {}
    for r in bridge.replies:
        by_id[r["id"]] = r
    assert by_id[1]["ok"] and by_id[1]["result"]["pong"]
    assert not by_id[2]["ok"] and by_id[2]["error"]["code"] == "unknown_command"
    assert not by_id[3]["ok"] and by_id[3]["error"]["code"] == "config_invalid"
    assert by_id[4]["ok"] and app.config["dedupe_ms"] == 1234 and app.dedupe.window_ms == 1234
    assert config.load(app.config_path)["dedupe_ms"] == 1234  # saved on "flash"
    st = by_id[5]["result"]
    assert st["link"]["link"] == "serial" and st["mem_free"] == 1234 and "frames" in st
    await _stop(app, port, bridge, task)


async def test_repl_command_leaves_the_app():
    app, board, port, bridge = _setup([[]] * 1000)
    btask = create_task(bridge.run())
    out = []

    async def runner():
        out.append(await app.run())
    create_task(runner())
    assert await _until(lambda: bridge.link.peer is not None)
    bridge.link.send(wire.COMMAND, {"id": 7, "cmd": "repl", "args": {}})
    assert await _until(lambda: out == ["repl"])
    assert bridge.replies and bridge.replies[0]["result"] == {"leaving": "repl"}
    bridge.running = False
    app.link.stop()
    port.closed = True
    await sleep_ms(10)


async def test_status_is_sent_periodically_and_healthy_fires():
    healthy = []
    app, board, port, bridge = _setup([[]] * 1000)
    app.config["status_interval_ms"] = 50  # below the validated minimum: a test shortcut
    app.config["healthy_after_ms"] = 100
    app.on_healthy = lambda: healthy.append(1)
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: any(m.kind == wire.STATUS for m in bridge.other))
    assert await _until(lambda: healthy == [1])
    st = [m for m in bridge.other if m.kind == wire.STATUS][0].data
    assert st["board"] == "fake" and "uptime_ms" in st
    await _stop(app, port, bridge, task)


async def test_decoder_exception_is_counted_not_fatal():
    app, board, port, bridge = _setup([[]] * 1000)

    def broken(g, w, h):
        raise ValueError("boom")
    app.decode = broken
    task = create_task(app.run())
    assert await _until(lambda: app.counts["decode_errors"] >= 2)
    assert "boom" in app.last_error
    await _stop(app, port, bridge, task)


# -- camera faults: the app comes up degraded (link up, fault in HELLO/STATUS, fault LEDs),
# retries the camera, and scans again once it works (firmware/hal/camera_guard.py).
class FlakyCameraBoard(FakeBoard):
    def __init__(self, frames):
        super().__init__(frames)
        self.open_fails = True  # the ribbon cable is loose
        self.capture_fails = 0
        self.opens = 0

    def open_camera(self, frame_size):
        self.opens += 1
        if self.open_fails:
            from scanbridge_fw.hal.base import HalError
            raise HalError("camera_init_failed", "Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")

    async def capture(self):
        if self.capture_fails:
            self.capture_fails -= 1
            await sleep_ms(2)
            return None
        return await FakeBoard.capture(self)


def _statuses(bridge):
    return [m.data for m in bridge.other if m.kind == wire.STATUS]


def _fault_setup(frames):
    app, board, port, bridge = _setup([], camera_retry_ms=50, camera_retry_max_ms=100, camera_fail_limit=3,
                                      healthy_after_ms=1000)
    flaky = FlakyCameraBoard(frames)
    app.board = app.camera.board = app.feedback.board = flaky
    app.decode = lambda g, w, h: flaky.current
    return app, flaky, port, bridge


async def test_camera_that_will_not_open_leaves_the_app_degraded_then_recovers():
    from scanbridge_fw import bootguard
    count = _cfg_path().replace("config.json", "bootcount")
    for _ in range(2):
        bootguard.on_boot(count)  # this boot and an earlier one have not proved healthy yet
    app, board, port, bridge = _fault_setup([[b"after-fix"]] * 3 + [[]] * 1000)
    app.on_healthy = lambda: bootguard.healthy(count)
    btask = create_task(bridge.run())
    task = create_task(app.run())
    # the link comes up and the bridge hears why the scanner cannot scan
    assert await _until(lambda: bridge.link.peer is not None)
    fault = bridge.link.peer["fault"]
    assert fault["code"] == "camera_init_failed" and "0x105" in fault["message"]
    assert await _until(lambda: any(s.get("fault") for s in _statuses(bridge)))
    st = [s for s in _statuses(bridge) if s.get("fault")][0]
    assert st["fault"]["code"] == "camera_init_failed" and st["healthy"] is False
    assert "fault" in app.feedback.played and 300 in board.tones
    assert await _until(lambda: board.leds[:3] == ["err", "busy", "err"])  # err and busy alternate
    assert await _until(lambda: app.camera.retries >= 2)  # retried with backoff
    # degraded is not a crash: the boot counts as healthy and the guard forgets the bad boots
    assert await _until(lambda: app._healthy, 3000)
    assert bootguard.decide(count, count + ".noapp")[0] == "app" and bootguard._read_count(count) == 0
    assert bridge.scans == []
    board.open_fails = False  # the technician reseats the cable
    assert await _until(lambda: app.camera.recoveries == 1)
    assert await _until(lambda: [r["payload"] for r in app.results] == [b"after-fix"])
    assert [m.data["payload"] for m in bridge.scans] == [b"after-fix"]
    assert await _until(lambda: _statuses(bridge)[-1].get("fault") is None)
    assert "recovered" in app.feedback.played and app.status()["fault"] is None
    assert "fault" not in app._hello_data()  # a later reconnect's HELLO says all is well
    await _stop(app, port, bridge, task)


async def test_run_of_failed_captures_switches_to_degraded_and_back():
    app, board, port, bridge = _fault_setup([[b"before"]] * 3 + [[]] * 5)
    board.open_fails = False
    btask = create_task(bridge.run())
    task = create_task(app.run())
    assert await _until(lambda: len(app.results) == 1)
    board.capture_fails = 4  # the ribbon works loose while scanning
    assert await _until(lambda: any((s.get("fault") or {}).get("code") == "camera_capture_failed"
                                    for s in _statuses(bridge)))
    assert "fault" in app.feedback.played and app.counts["capture_failed"] >= 3
    assert await _until(lambda: app.camera.fault is None)
    assert app.camera.recoveries == 1 and board.opens >= 2
    board.frames += [[b"after"]] * 3 + [[]] * 1000
    assert await _until(lambda: [r["payload"] for r in app.results] == [b"before", b"after"])
    assert await _until(lambda: _statuses(bridge)[-1].get("fault") is None)
    await _stop(app, port, bridge, task)
