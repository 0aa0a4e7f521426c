# QR code decoder for MicroPython (and CPython): decode(gray, width, height) -> [payload bytes].
# Stages, one module each: binarize, finders, grid/perspective, formatinfo/version, codewords,
# rs, segments; per-pixel loops live in kernels (viper on the device).  See docs/decoder.md.
from .decoder import Decoder

_cached = None


def decode(gray, width, height):
    """Payloads (bytes) of the QR codes found in an 8-bit grayscale frame (row-major, one byte
    per pixel; bytes, bytearray or memoryview).  Returns [] when nothing decodes.  Raises
    ValueError (reason QR_BAD_DIMENSIONS / QR_SHORT_BUFFER) when the buffer cannot hold a
    width x height frame.  Buffers are kept for the last resolution and reused."""
    global _cached
    if not isinstance(width, int) or not isinstance(height, int) or width < 21 or height < 21:
        raise ValueError("QR_BAD_DIMENSIONS: %r x %r" % (width, height))
    if len(gray) < width * height:
        raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), width, height))
    d = _cached
    if d is None or d.width != width or d.height != height:
        _cached = None
        d = Decoder(width, height)
        _cached = d
    return d.decode(gray)
