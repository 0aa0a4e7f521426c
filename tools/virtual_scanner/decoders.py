"""The virtual scanner decodes with the firmware's own decoder in the mode the device's camera
loop uses (start.py): scanbridge_fw.qr.scan, one binarisation pass per frame, the pass that last
read first. The same code the ESP32 runs, here interpreted by CPython (its viper kernels run as
plain Python).
(The temporary payload-beside-the-frame seam used before that decoder existed is gone.)"""
from __future__ import annotations

import threading

# The firmware decoder keeps its buffers at module level (sized once, as on the device, where one
# scanner runs one decoder). Several virtual scanners in one process share that module, so
# their calls are serialised; the GIL serialises this CPU-bound work anyway.
_LOCK = threading.Lock()


class DecoderMissing(RuntimeError):
    code = "decoder_missing"


def firmware_decoder():
    """scanbridge_fw.qr.decode, checked on a generated scene so a broken decoder is named at
    start-up instead of showing up as a scanner that never reads anything."""
    try:
        from scanbridge_fw.qr import scan as decode  # type: ignore[attr-defined]
    except ImportError as e:
        raise DecoderMissing("scanbridge_fw.qr.scan missing: %s" % e)
    from scanbridge_tools.virtual_scanner.frames import render

    def locked_decode(gray, width, height):
        with _LOCK:  # copied inside: results may point into the decoder's shared buffers
            return [bytes(x) for x in decode(gray, width, height)]
    locked_decode.__module__ = decode.__module__
    probe = b"SCANBRIDGE-SELFTEST-0001"
    f = render(probe)
    try:
        got = []
        for _ in range(16):  # scan mode reaches every pass within 16 frames
            got = [bytes(x) for x in locked_decode(f.gray, f.width, f.height)]
            if got:
                break
    except Exception as e:  # name the failure, whatever it is
        raise DecoderMissing("scanbridge_fw.qr.scan failed on a test scene: %r" % (e,))
    if got != [probe]:
        raise DecoderMissing("scanbridge_fw.qr.scan read %r from a test scene" % (got,))
    return locked_decode
