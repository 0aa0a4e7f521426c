"""The virtual scanner's UART: a pseudo-terminal whose master side the firmware reads and writes,
while the bridge opens the slave side (/dev/pts/N) through pyserial exactly like a USB serial
adapter. A stable symlink names it; unplug() closes the pty (the bridge sees the device vanish)
and replug() makes a new one behind the same symlink."""
from __future__ import annotations

import asyncio
import os
import tty


class PtyPort:
    def __init__(self, link_path: str | None = None):
        self.link_path = link_path
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_name = ""
        self.dropped_bytes = 0  # written while unplugged or while nobody read (a UART loses them too)
        self.written_bytes = 0
        self._plugged = asyncio.Event()
        self._wait: asyncio.Future | None = None
        self._open()

    @property
    def path(self) -> str:
        """What the bridge opens: the stable symlink when there is one."""
        return self.link_path or self.slave_name

    def _open(self):
        master, slave = os.openpty()
        # Raw at once: a cooked pty would echo the firmware's own frames back to it before the
        # bridge has opened (and set raw) the other side.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self.link_path:
            tmp = self.link_path + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link_path)  # atomic: the bridge never sees a half-made link
        self._plugged.set()

    # -- the firmware's side (called in the scanner's asyncio loop)
    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            if self.master is None:
                await self._plugged.wait()
                continue
            try:
                data = os.read(self.master, 4096)
                if data:
                    return data
            except BlockingIOError:
                pass
            except OSError:  # EIO: no slave side open at this instant
                await asyncio.sleep(0.01)
                continue
            fd = self.master
            fut = loop.create_future()
            self._wait = fut
            loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                self._wait = None
                if self.master == fd:
                    loop.remove_reader(fd)

    def write(self, data: bytes) -> None:
        if self.master is None:
            self.dropped_bytes += len(data)
            return
        try:
            n = os.write(self.master, data)
            self.written_bytes += n
            self.dropped_bytes += len(data) - n
        except (BlockingIOError, OSError):
            self.dropped_bytes += len(data)

    # -- the cable (call in the scanner's loop; VirtualScanner wraps them for other threads)
    def unplug(self) -> None:
        if self.master is None:
            return
        self._plugged.clear()
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.master)
        if self._wait is not None and not self._wait.done():
            self._wait.set_result(None)
        if self.link_path and os.path.lexists(self.link_path):
            os.unlink(self.link_path)
        os.close(self.master)
        if self.slave is not None:
            os.close(self.slave)
        self.master = self.slave = None

    def replug(self) -> None:
        if self.master is None:
            self._open()

    def close(self) -> None:
        try:
            self.unplug()
        except RuntimeError:  # no running loop (already stopped): just close the fds
            for fd in (self.master, self.slave):
                if fd is not None:
                    os.close(fd)
            self.master = self.slave = None
            if self.link_path and os.path.lexists(self.link_path):
                os.unlink(self.link_path)
