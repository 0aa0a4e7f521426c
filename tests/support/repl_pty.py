"""A real MicroPython REPL on a pseudo-terminal, for tests that drive it with mpremote.

`ReplPty()` starts the official MicroPython WebAssembly port under Node (tests/support/
mpy_repl.mjs), opens a pty pair, and relays bytes between the pty master and the Node process.
`path` is the slave's device name (/dev/pts/N): open it with pyserial or `mpremote connect
<path>` exactly like a USB serial scanner. The device filesystem is the port's MEMFS; it lives
as long as the Node process (a "power cycle" is `restart()`, which loses it, like a RAM disk).
`hang()` stops relaying in both directions (a device that stops answering mid-transfer)."""
import os
import select
import shutil
import subprocess
import threading
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(__file__).with_name("mpy_repl.mjs")


def available():
    return shutil.which("node") is not None and (ROOT / "node_modules" / "@micropython").is_dir()


class ReplPty:
    def __init__(self, heap_bytes=4 * 1024 * 1024):
        self.heap_bytes = heap_bytes
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF rewriting: a serial line, not a terminal
        self.path = os.ttyname(self._slave)
        self._proc = None
        self._stop = threading.Event()
        self._hung = threading.Event()
        self._thread = None
        self.to_device = 0
        self.from_device = 0

    def start(self):
        self._proc = subprocess.Popen(
            ["node", str(SERVER), str(self.heap_bytes)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._stop.clear()
        self._thread = threading.Thread(target=self._relay, name="repl-pty", daemon=True)
        self._thread.start()
        return self

    def _relay(self):
        out_fd = self._proc.stdout.fileno()
        in_fd = self._proc.stdin.fileno()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master, out_fd], [], [], 0.05)
            if self.master in r:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data and not self._hung.is_set():
                    self.to_device += len(data)
                    try:
                        os.write(in_fd, data)
                    except OSError:
                        return
            if out_fd in r:
                data = os.read(out_fd, 4096)
                if not data:
                    return  # node exited
                if not self._hung.is_set():
                    self.from_device += len(data)
                    os.write(self.master, data)

    def hang(self):
        """From now on the device neither hears nor answers (bytes are dropped both ways)."""
        self._hung.set()

    def unhang(self):
        self._hung.clear()

    def restart(self):
        """Power cycle: a fresh interpreter with an empty filesystem."""
        self._shutdown_proc()
        self._hung.clear()
        self.start()

    def _shutdown_proc(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        if self._proc:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            self._proc = None

    def close(self):
        self._shutdown_proc()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
