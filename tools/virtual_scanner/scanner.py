"""A virtual scanner: the real firmware app (scanbridge_fw.app.App + SerialLink) on the host,
with a VirtualBoard and a pty, in its own thread and asyncio loop so a bridge in the same
process (demo, tests) or another process (`scanbridge virtual-scanner`) can talk to it."""
from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import zlib

from scanbridge_fw import config as config_mod
from scanbridge_fw.app import App, hello_for
from scanbridge_fw.serial_link import SerialLink
from scanbridge_tools.virtual_scanner.board import VirtualBoard
from scanbridge_tools.virtual_scanner.decoders import firmware_decoder
from scanbridge_tools.virtual_scanner.pty_port import PtyPort


class VirtualScanner:
    def __init__(self, frames, link_path=None, device_id="virtual-0001", fps=15.0,
                 config=None, config_dir=None, rto_ms=300, decode=None, camera_open_failures=0,
                 camera_capture_failures=0):
        self.frames = frames
        self.device_id = device_id
        self.fps = fps
        self.decode = decode  # default: the firmware's decoder (checked at start)
        self.camera_faults = (camera_open_failures, camera_capture_failures)  # at the first boot
        self.settings = dict(config or {})
        self._tmp = None
        if config_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sb-vscan-")
            config_dir = self._tmp.name
        self.config_path = os.path.join(config_dir, "config.json")
        self.link_path = link_path or os.path.join(config_dir, "tty")
        self.rto_ms = rto_ms
        self.listeners = []  # fn(event, data) from the app, called in the scanner's thread
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: App | None = None
        self.board: VirtualBoard | None = None
        self.port: PtyPort | None = None
        self.exit_reason = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._boots = 0

    @property
    def path(self) -> str:
        return self.link_path

    # -- lifecycle
    def start(self, timeout=10.0) -> "VirtualScanner":
        self._thread = threading.Thread(target=self._main, name="virtual-scanner", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("virtual scanner did not start")
        if self.error:
            raise self.error
        return self

    def stop(self, timeout=5.0) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            if self.app is not None:
                loop.call_soon_threadsafe(self.app.stop, "stopped")
        if self._thread is not None:
            self._thread.join(timeout)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def run_forever(self) -> str | None:
        """Run in the calling thread (the CLI). Returns the app's exit reason."""
        self._main()
        if self.error:
            raise self.error
        return self.exit_reason

    def _main(self):
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._run())
        except BaseException as e:  # reported to the starting thread
            self.error = e
            self._ready.set()
        finally:
            if self.port is not None:
                self.port.close()
            tasks = asyncio.all_tasks(self.loop)
            for t in tasks:
                t.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    def build(self):
        """Make port, board, link and app (in the scanner's loop). A boot, as on the device."""
        self._boots += 1
        cfg = config_mod.load(self.config_path)
        if self.settings:
            for k, v in self.settings.items():
                cfg[k] = v
            cfg = config_mod.validate(cfg)
        if self.port is None:
            self.port = PtyPort(self.link_path)
        opens, captures = self.camera_faults
        self.camera_faults = (0, 0)
        self.board = VirtualBoard(self.frames, self.port, self.device_id, self.fps,
                                  camera_open_failures=opens, camera_capture_failures=captures)
        if self.decode is None:
            self.decode = firmware_decoder()
        decode = self.decode
        session = zlib.crc32(os.urandom(8)) & 0x7FFFFFFF
        link = SerialLink(self.port, hello_for(self.board, cfg), session,
                          queue_max=cfg["serial_queue"], rto_ms=self.rto_ms)
        app = App(self.board, link, decode, cfg, config_path=self.config_path)
        app.listeners.append(self._emit)
        self.app = app
        return app

    async def _run(self):
        app = self.build()
        self._ready.set()
        self.exit_reason = await app.run()
        app.link.stop()

    def _emit(self, event, data):
        for fn in list(self.listeners):
            fn(event, data)

    # -- the cable, from any thread
    def unplug(self) -> None:
        self._call(lambda: self.port.unplug())

    def replug(self) -> None:
        self._call(lambda: self.port.replug())

    def _call(self, fn, timeout=5.0):
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(_as_coro(fn), self.loop)
        return fut.result(timeout)

    def status(self) -> dict:
        return self._call(lambda: self.app.status())

    # -- the camera, from any thread (a simulated fault: see VirtualBoard.fail_camera)
    def fail_camera(self, opens=0, captures=0, message=None) -> None:
        self._call(lambda: self.board.fail_camera(opens, captures, message))

    def heal_camera(self) -> None:
        self._call(lambda: self.board.heal_camera())


async def _as_coro(fn):
    return fn()
