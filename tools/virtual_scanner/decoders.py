"""Which decoder the virtual scanner runs: the firmware's own (scanbridge_fw.qr.decode, the same
code the device runs) whenever it is there and reads a test scene; otherwise the seam below.

PayloadBesideFrame is a TEMPORARY SEAM, to be removed once scanbridge_fw.qr.decode works: it
does not look at the pixels, it returns the payload the frame source put beside the frame."""
from __future__ import annotations


class PayloadBesideFrame:
    """decode(gray, w, h) that returns the payloads of the frame the board last captured."""

    name = "payload-beside-frame (seam: firmware decoder not available)"

    def __init__(self, board):
        self.board = board

    def __call__(self, gray, width, height):
        frame = self.board.current
        return list(frame.payloads) if frame is not None else []


def firmware_decoder():
    """scanbridge_fw.qr.decode if it exists and decodes a generated scene correctly, else None
    and the reason."""
    try:
        from scanbridge_fw.qr import decode  # type: ignore[attr-defined]
    except ImportError as e:
        return None, "scanbridge_fw.qr.decode missing (%s)" % e
    from scanbridge_tools.virtual_scanner.frames import render
    probe = b"SCANBRIDGE-SELFTEST-0001"
    f = render(probe)
    try:
        got = [bytes(x) for x in decode(f.gray, f.width, f.height)]
    except Exception as e:  # a decoder still being written: fall back, and say why
        return None, "scanbridge_fw.qr.decode failed on a test scene: %r" % (e,)
    if got != [probe]:
        return None, "scanbridge_fw.qr.decode read %r from a test scene" % (got,)
    return decode, ""


def choose(board, mode="auto"):
    """(decode function, name, note). mode: auto | firmware | beside."""
    if mode in ("auto", "firmware"):
        fn, why = firmware_decoder()
        if fn is not None:
            return fn, "firmware (scanbridge_fw.qr)", ""
        if mode == "firmware":
            raise RuntimeError(why)
        return PayloadBesideFrame(board), PayloadBesideFrame.name, why
    if mode == "beside":
        return PayloadBesideFrame(board), PayloadBesideFrame.name, "chosen with --decoder beside"
    raise ValueError("decoder mode %r (auto, firmware, beside)" % mode)
