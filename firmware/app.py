# The scanner application: grab a frame, decode it, suppress repeats, send the code over the
# link, wait for the bridge's RESULT and show it (LED/beep); STATUS now and then; commands.
# Hardware comes in as a board HAL, the decoder as a function decode(gray, w, h) -> [bytes],
# the link as an AppLink (serial or MQTT): the same code runs on the ESP32, on the host (virtual
# scanner) and in MicroPython tests.
import asyncio

from scanbridge_fw import commands, wire
from scanbridge_fw import config as config_mod
from scanbridge_fw.compat import create_task, sleep_ms, ticks_diff, ticks_ms, wait_for_ms
from scanbridge_fw.dedupe import Dedupe
from scanbridge_fw.feedback import Feedback
from scanbridge_fw.hal.camera_guard import CameraGuard
from scanbridge_fw.link import result_name

FW_VERSION = "0.1.0"
_KEEP = 16  # recent results kept for status and for late verdicts
FAULT_REMIND_MS = 10000  # while the camera is faulty, its LED pattern repeats this often

from scanbridge_fw import diag  # noqa: E402  (after FW_VERSION, which diag reads)
diag.register_all(commands)  # diag.* commands for `scanbridge diag`


def hello_for(board, cfg, caps=None, fault=None):
    """What this scanner says about itself in HELLO (the link adds proto and session). fault:
    the camera fault (CameraGuard.fault) a degraded scanner names at once."""
    d = {"device": board.unique_id(), "name": cfg.get("device_name", ""), "fw": FW_VERSION,
         "board": board.name, "caps": list(caps or board.caps), "link": cfg.get("link", "serial")}
    if fault is not None:
        d["fault"] = {"code": fault["code"], "message": fault["message"]}
    return d


class App:
    def __init__(self, board, link, decode, cfg=None, config_path=None, on_healthy=None, camera=None):
        self.board = board
        self.link = link
        self.decode = decode
        self.config = cfg if cfg is not None else config_mod.defaults()
        self.config_path = config_path or config_mod.PATH
        self.on_healthy = on_healthy
        self.dedupe = Dedupe(self.config["dedupe_ms"])
        self.feedback = Feedback(board, self.config["beep"])
        self.listeners = []  # fn(event, data): "scan", "result", "no_answer", "refused"
        self.results = []  # recent result records, oldest first
        self.exit_reason = None
        self.last_error = None
        self.counts = {"frames": 0, "scans": 0, "results": 0, "no_answer": 0, "refused": 0,
                       "capture_failed": 0, "decode_errors": 0, "unmatched_results": 0}
        # The camera behind a guard: a camera that fails leaves the app degraded (link up, fault
        # in HELLO/STATUS, fault LEDs) and is retried with backoff, never a crash.
        if camera is None:
            camera = CameraGuard(board, self.config, self.counts)
        else:  # opened by start.py before the link was built (so HELLO carries its fault)
            for key in camera.counts:
                self.counts[key] = camera.counts[key]
            camera.counts = self.counts
        self.camera = camera
        camera.on_change = self._camera_changed
        self._announce = False  # send a STATUS at once (the camera state changed)
        self._remind_at = 0
        self._waiting = {}  # seq -> scan record awaiting its first RESULT
        self._later = {}  # seq -> scan record that got PENDING; a later RESULT may follow
        self._event = asyncio.Event()
        self._started = ticks_ms()
        self._healthy = False
        link.on_result = self.on_result
        link.on_command = self.on_command
        link.on_error = self.on_link_error

    # -- the loop
    async def run(self):
        """Runs until a command asks to leave; returns why ("repl" or "reboot")."""
        self._started = ticks_ms()
        self.board.light(self.config["light"])
        if not self.camera.tried:
            self.camera.open()  # before the link: its HELLO names a camera fault
        elif self.camera.fault is not None:
            self._camera_changed(self.camera.fault)  # it failed before the app existed
        create_task(self.link.run())
        create_task(self._status_loop())
        while self.exit_reason is None:
            await self.step()
        await sleep_ms(300)  # let the REPLY that asked us to leave go out
        self.board.light(False)
        return self.exit_reason

    def stop(self, reason):
        self.exit_reason = reason

    async def step(self):
        """One frame: capture, decode, and for each fresh code send it and wait for the RESULT."""
        frame = await self.camera.capture()  # counts failures; a run of them is a camera fault
        if frame is None:
            if self.camera.is_open:
                await sleep_ms(100)
            return
        t_frame = ticks_ms()
        gray, width, height = frame
        try:
            codes = self.decode(gray, width, height)
        except Exception as e:  # a decoder bug must not stop the scanner; STATUS reports it
            self.counts["decode_errors"] += 1
            self.last_error = "decode: %r" % (e,)
            codes = ()
        decode_ms = ticks_diff(ticks_ms(), t_frame)
        self.counts["frames"] += 1
        for code in codes:
            if self.dedupe.fresh(code, t_frame):
                await self._scan(bytes(code), decode_ms, t_frame)
        await sleep_ms(self.config["frame_interval_ms"])

    async def _scan(self, code, decode_ms, t_frame):
        try:
            seq = self.link.send_scan({"payload": code, "decode_ms": decode_ms, "quality": 0})
        except wire.WireError as e:  # queue full or oversized: say so, never drop silently
            self.counts["refused"] += 1
            self.dedupe.forget(code)  # show it again and it is tried again
            self.last_error = str(e)
            self.feedback.show("rejected", e.code)
            self._emit("refused", {"payload": code, "reason": e.code})
            return
        self.counts["scans"] += 1
        rec = {"seq": seq, "payload": code, "t_frame": t_frame, "decode_ms": decode_ms}
        self._waiting[seq] = rec
        self.feedback.show("read")
        self._emit("scan", rec)
        timeout = self.config["result_timeout_ms"]
        while seq in self._waiting:
            left = timeout - ticks_diff(ticks_ms(), t_frame)
            if left <= 0:
                # The scan stays queued on the link and a late RESULT is still shown.
                self.counts["no_answer"] += 1
                self.feedback.show("no_answer")
                self._emit("no_answer", rec)
                return
            self._event.clear()
            try:
                await wait_for_ms(self._event.wait(), left)
            except asyncio.TimeoutError:
                pass

    # -- from the link
    def on_result(self, data):
        seq = data.get("scan_seq")
        rec = self._waiting.pop(seq, None)
        if rec is None:
            rec = self._later.pop(seq, None)
        if rec is None:
            self.counts["unmatched_results"] += 1
            return
        verdict = result_name(data.get("verdict", -1))
        reason = data.get("reason", "")
        if verdict == "pending":
            self._later[seq] = rec
            while len(self._later) > _KEEP:
                self._later.pop(next(iter(self._later)))
        self.counts["results"] += 1
        out = {"seq": seq, "payload": rec["payload"], "verdict": verdict, "reason": reason,
               "text": data.get("text", ""), "decode_ms": rec["decode_ms"],
               "latency_ms": ticks_diff(ticks_ms(), rec["t_frame"])}
        self.results.append(out)
        if len(self.results) > _KEEP:
            self.results.pop(0)
        self.feedback.show(verdict, reason)
        self._emit("result", out)
        self._event.set()

    async def on_command(self, data):
        return await commands.dispatch(self, data)

    def on_link_error(self, code, message):
        self.last_error = "link: %s %s" % (code, message)

    # -- the camera's state (hal/camera_guard.py calls this when a fault begins, changes, ends)
    def _camera_changed(self, fault):
        hello = self._hello_data()
        if fault is None:
            if hello is not None and "fault" in hello:
                hello.pop("fault")
            text = "camera recovered (%d retries so far)" % self.camera.retries
            self.feedback.show("recovered")
            self._emit("camera", {"reason": "recovered"})
        else:
            text = "camera fault %s: %s" % (fault["code"], fault["message"])
            diag.note_failure(text)
            if hello is not None:
                hello["fault"] = {"code": fault["code"], "message": fault["message"]}
            self.feedback.show("fault")
            self._remind_at = ticks_ms()
            self._emit("fault", {"reason": fault["code"], "message": fault["message"]})
        if self._link_ready():
            self.link.send_log(text)
        self._announce = True

    def _link_ready(self):
        ready = getattr(self.link, "ready", None)
        return ready is not None and ready()

    def _hello_data(self):
        """The HELLO dict the link sends on every (re)connect, to keep its fault current."""
        w = getattr(self.link, "wire", None)
        hello = getattr(w, "hello", None) if w is not None else None
        if hello is None:
            hello = getattr(self.link, "hello", None)
        return hello if isinstance(hello, dict) else None

    # -- state
    def apply_config(self, cfg, save=True):
        cfg = config_mod.save(cfg, self.config_path) if save else config_mod.validate(cfg)
        self.config = cfg
        self.dedupe.window_ms = cfg["dedupe_ms"]
        self.feedback.beep = cfg["beep"]
        self.board.light(cfg["light"])
        self.camera.configure(cfg)

    def info(self):
        d = hello_for(self.board, self.config, fault=self.camera.fault)
        d["proto"] = wire.PROTOCOL_VERSION
        d["commands"] = commands.names()
        return d

    def status(self):
        d = {"fw": FW_VERSION, "board": self.board.name}
        for key in self.counts:
            d[key] = self.counts[key]
        d["uptime_ms"] = ticks_diff(ticks_ms(), self._started)
        d["suppressed"] = self.dedupe.suppressed
        d["mem_free"] = self.board.mem_free()
        d["healthy"] = self._healthy
        d["last_error"] = self.last_error
        d["fault"] = self.camera.info()  # None, or {code, message, retries, retry_in_ms}
        d["link"] = self.link.status()
        return d

    def _emit(self, event, data):
        for fn in self.listeners:
            fn(event, data)

    async def _status_loop(self):
        last = ticks_ms()
        was_ready = False
        while self.exit_reason is None:
            await sleep_ms(250)
            now = ticks_ms()
            # A degraded app (camera fault) is healthy too: it is not a crash loop, and the boot
            # guard must not take the link away from the technician (docs/firmware.md).
            if not self._healthy and ticks_diff(now, self._started) >= self.config["healthy_after_ms"]:
                self._healthy = True
                if self.on_healthy is not None:
                    self.on_healthy()
            ready = self._link_ready()
            if ready and not was_ready:
                # (Re)connected: the current state at once (a camera fault, or its end; over MQTT
                # this also replaces the birth message, fixed at boot, as the retained status).
                self._announce = True
            was_ready = ready
            if self.camera.fault is not None and ticks_diff(now, self._remind_at) >= FAULT_REMIND_MS:
                self._remind_at = now
                self.feedback.show("fault_remind")
            if (self._announce and ready) or ticks_diff(now, last) >= self.config["status_interval_ms"]:
                self._announce = False
                last = now
                self.link.send_status(self.status())
