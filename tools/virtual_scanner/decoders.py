"""The virtual scanner decodes with the firmware's own decoder in the mode the device's camera
loop uses (start.py): scanbridge_fw.qr.scan, one binarisation pass per frame, the pass that last
read first. The same code the ESP32 runs, here interpreted by CPython (its viper kernels run as
plain Python).
(The temporary payload-beside-the-frame seam used before that decoder existed is gone.)"""
from __future__ import annotations

import threading

# Each virtual scanner gets its own Decoder, as each device runs its own: the streaming mode's
# state (which pass read last, where the rotation stands) belongs to one camera. Shared by
# several scanners it was interleaved: with two scanners, one of them met only the rotation's
# passes. The kernels' module-level scratch is shared, so calls are serialised; the GIL
# serialises this CPU-bound work anyway.
_LOCK = threading.Lock()


class DecoderMissing(RuntimeError):
    code = "decoder_missing"


def firmware_decoder():
    """A decode(gray, width, height) for one virtual scanner: its own scanbridge_fw.qr.Decoder in
    streaming mode (Decoder.scan), checked on a generated scene so a broken decoder is named at
    start-up instead of showing up as a scanner that never reads anything."""
    try:
        from scanbridge_fw.qr import Decoder
    except ImportError as e:
        raise DecoderMissing("scanbridge_fw.qr.Decoder missing: %s" % e)
    from scanbridge_tools.virtual_scanner.frames import render
    own = []  # this scanner's Decoder, made again when the resolution changes

    def locked_decode(gray, width, height):
        with _LOCK:  # copied inside: results may point into the decoder's buffers
            d = own[0] if own else None
            if d is None or d.width != width or d.height != height:
                d = Decoder(width, height)  # ValueError QR_BAD_DIMENSIONS for impossible sizes
                own[:] = [d]
            return [bytes(x) for x in d.scan(gray)]
    locked_decode.__module__ = "scanbridge_fw.qr"  # named in the demo's start-up line
    probe = b"SCANBRIDGE-SELFTEST-0001"
    f = render(probe)
    try:
        got = []
        for _ in range(16):  # scan mode reaches every pass within 16 frames
            got = [bytes(x) for x in locked_decode(f.gray, f.width, f.height)]
            if got:
                break
    except Exception as e:  # name the failure, whatever it is
        raise DecoderMissing("scanbridge_fw.qr Decoder.scan failed on a test scene: %r" % (e,))
    if got != [probe]:
        raise DecoderMissing("scanbridge_fw.qr Decoder.scan read %r from a test scene" % (got,))
    return locked_decode
