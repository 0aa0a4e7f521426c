"""A MicroPython board's raw REPL, through mpremote's SerialTransport used as a library.

Everything deploy and provision need: run code, read/write/hash/rename files. Errors come out
as FlashError with reason codes: `port_not_found`, `port_busy`, `not_micropython` (no raw REPL
answers: ROM bootloader, our app holding the port, wrong device), `device_timeout` (it stopped
answering), `device_error` (the code raised on the device)."""
from __future__ import annotations

import binascii
import hashlib
import json
import os

from scanbridge_tools.flashing.errors import FlashError

CHUNK = 768  # bytes per write exec: base64 grows it to 1 KiB, well inside the raw REPL's buffer
ENOENT = (2, 44)  # 44: ENOENT as the WebAssembly port (Emscripten) numbers it


def _transport_errors():
    from mpremote.transport import TransportError, TransportExecError
    return TransportError, TransportExecError


class Device:
    """Open with Device(port).open(); use as a context manager. timeout_s bounds every wait."""

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 10.0):
        self.port = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.t = None

    # -- session
    def open(self, soft_reset: bool = False):
        from mpremote.transport_serial import SerialTransport
        TransportError, _ = _transport_errors()
        if not (os.path.exists(self.port) or self.port.startswith(("COM", "socket:", "rfc2217:"))):
            raise FlashError("port_not_found", "%s does not exist" % self.port,
                             "plug the board in; `scanbridge ports` lists scanners by USB id")
        try:
            # A read timeout on the port itself: without one a silent device blocks mpremote forever.
            self.t = SerialTransport(self.port, baudrate=self.baud, timeout=min(self.timeout_s, 3.0))
        except TransportError as e:
            raise FlashError("port_busy", "cannot open %s: %s" % (self.port, e),
                             "close other programs using the port (scanbridge run, a serial monitor)")
        except Exception as e:  # serial.SerialException and OSError from the OS
            raise FlashError("port_busy", "cannot open %s: %s" % (self.port, e),
                             "check permissions (dialout group / udev rule) and other programs")
        try:
            # ESP32-CAM-MB: DTR/RTS drive IO0/EN through the usual two-transistor circuit; pyserial
            # opened with both asserted (neither pin pulled). Release RTS first: the step between
            # is "DTR alone" (IO0 low, harmless while running), never "RTS alone" (EN low: reset).
            self.t.serial.rts = False
            self.t.serial.dtr = False
        except (OSError, ValueError):  # a pty or an adapter without modem lines
            pass
        try:
            self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=self.timeout_s)
        except Exception as e:
            self.close()
            raise FlashError("not_micropython", "no MicroPython raw REPL on %s (%s)" % (self.port, e),
                             "flash MicroPython first (`scanbridge flash image`), or press RST; "
                             "an ESP32-CAM-MB needs IO0 released after flashing")
        return self

    def close(self):
        if self.t is not None:
            try:
                if self.t.in_raw_repl:
                    self.t.exit_raw_repl()
                self.t.close()
            except Exception:  # closing a dead port: nothing left to save
                pass
            self.t = None

    def __enter__(self):
        return self if self.t is not None else self.open()

    def __exit__(self, *exc):
        self.close()

    # -- code
    def exec(self, code: str, timeout_s: float | None = None) -> bytes:
        TransportError, _ = _transport_errors()
        if self.t is None:
            raise FlashError("device_closed", "the device session is closed")
        import serial
        try:
            out, err = self.t.exec_raw(code, timeout=timeout_s or self.timeout_s)
        except (TransportError, OSError, serial.SerialException) as e:
            raise FlashError("device_timeout", "%s stopped answering (%s)" % (self.port, e),
                             "check the cable and power; run the same command again: "
                             "the app on the device is unchanged until a deploy is verified")
        if err:
            lines = err.decode(errors="replace").strip().splitlines()
            raise FlashError("device_error", lines[-1] if lines else "error on the device")
        return out

    def eval_json(self, code: str, timeout_s: float | None = None):
        """Run `code` whose last line prints one JSON document; return it parsed."""
        out = self.exec(code, timeout_s).decode(errors="replace").strip().splitlines()
        if not out:
            raise FlashError("device_error", "no answer from the device")
        try:
            return json.loads(out[-1])
        except ValueError:
            raise FlashError("device_error", "unexpected answer: %r" % out[-1][:200])

    # -- files
    def write_file(self, path: str, data: bytes, progress=None):
        """Write `path` in chunks (base64 so any byte goes through the REPL safely)."""
        self.exec("import binascii\n_f=open(%r,'wb')\n_w=_f.write\n_d=binascii.a2b_base64" % path)
        done = 0
        for i in range(0, len(data), CHUNK):
            chunk = binascii.b2a_base64(data[i:i + CHUNK], newline=False).decode()
            self.exec("_w(_d(b'%s'))" % chunk)
            done += len(data[i:i + CHUNK])
            if progress:
                progress(done)
        self.exec("_f.close()\ndel _f,_w,_d")

    def read_file(self, path: str) -> bytes:
        text = self.exec(
            "import binascii\nwith open(%r,'rb') as _f:\n while True:\n  _c=_f.read(512)\n"
            "  if not _c: break\n  print(binascii.b2a_base64(_c).decode().strip())" % path)
        return b"".join(binascii.a2b_base64(line) for line in text.split())

    def sha256(self, paths: list[str]) -> dict:
        """{path: hex sha256 or None when missing}, hashed on the device; when the firmware has
        no hashlib.sha256, each file is read back and hashed here (slower, same answer)."""
        code = ("import json\ntry:\n import hashlib\n _H=hashlib.sha256\nexcept Exception:\n _H=None\n"
                "_b=bytearray(512)\n_m=memoryview(_b)\n_o={}\n"
                "for _p in %s:\n"
                " if _H is None:\n  _o[_p]='nohash'\n  continue\n"
                " try:\n  _h=_H()\n  with open(_p,'rb') as _f:\n   while True:\n    _n=_f.readinto(_b)\n"
                "    if not _n: break\n    _h.update(_m[:_n])\n"
                "  _o[_p]=''.join('%%02x'%%x for x in _h.digest())\n"
                " except OSError:\n  _o[_p]=None\n"
                "print(json.dumps(_o))" % json.dumps(paths))
        out = self.eval_json(code, timeout_s=max(self.timeout_s, 2 * len(paths)))
        for p, h in list(out.items()):
            if h == "nohash":
                out[p] = hashlib.sha256(self.read_file(p)).hexdigest() if self.exists(p) else None
        return out

    def exists(self, path: str) -> bool:
        return bool(self.eval_json("import os,json\ntry:\n os.stat(%r)\n print('true')\nexcept OSError:\n print('false')" % path))

    def listdir_recursive(self, root: str) -> list[str]:
        """Every file below root (paths as absolute device paths); [] when root is missing."""
        return self.eval_json(
            "import os,json\n_o=[]\ndef _walk(d):\n for _n in os.listdir(d):\n  _p=d+'/'+_n\n"
            "  if os.stat(_p)[0]&0x4000: _walk(_p)\n  else: _o.append(_p)\n"
            "try:\n _walk(%r)\nexcept OSError:\n pass\nprint(json.dumps(_o))" % root)

    def makedirs(self, paths: list[str]):
        self.exec("import os\nfor _d in %s:\n try:\n  os.mkdir(_d)\n except OSError:\n  pass" % json.dumps(sorted(paths)))

    def remove_tree(self, root: str):
        self.exec("import os\ndef _rm(d):\n try:\n  _s=os.stat(d)\n except OSError:\n  return\n"
                  " if _s[0]&0x4000:\n  for _n in os.listdir(d):\n   _rm(d+'/'+_n)\n  os.rmdir(d)\n"
                  " else:\n  os.remove(d)\n_rm(%r)" % root)

    def unique_id(self) -> str:
        """machine.unique_id() as hex (the MAC on ESP32); 'none' where machine has none."""
        return self.eval_json("import json\ntry:\n import machine,binascii\n print(json.dumps(binascii.hexlify(machine.unique_id()).decode()))\n"
                              "except Exception:\n print(json.dumps('none'))")

    def platform(self) -> dict:
        return self.eval_json("import sys,json\nprint(json.dumps({'platform':sys.platform,'version':'.'.join(str(x) for x in sys.implementation.version[:3]),'machine':getattr(sys.implementation,'_machine','')}))")
