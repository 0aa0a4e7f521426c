# QR code decoder for MicroPython (and CPython): decode(gray, width, height) -> [payload bytes].
# Stages, one module each: binarize, finders, grid/perspective, formatinfo/version, codewords,
# rs, segments; per-pixel loops live in kernels (viper on the device).  See docs/decoder.md.
import sys

# The per-pixel kernels.  On a device they are viper machine code (kernels.mpy), which needs
# executable RAM (IRAM on the ESP32; scarce on a camera build with PSRAM): when it runs out,
# loading them raises MemoryError, and the build's bytecode copy of the same source
# (kernels_bytecode.mpy) takes their place: the scanner still reads, 20-40x slower in those
# loops, and diag says so (KERNELS).  Elsewhere kernels.py is plain Python.
try:
    from . import kernels
    KERNELS = "viper" if kernels.__file__.endswith(".mpy") else "python"
except MemoryError as e:
    from . import kernels_bytecode as kernels  # type: ignore  # (only a device build has it)
    sys.modules[__name__ + ".kernels"] = kernels
    KERNELS = "bytecode: the viper kernels did not load (%s)" % e

from .decoder import Decoder  # noqa: E402 (after the kernels it imports)

_cached = None


def decoder_for(width, height):
    """The Decoder for this resolution: one is kept (buffers ~64 KB at QVGA) and replaced
    when the resolution changes.  Raises ValueError QR_BAD_DIMENSIONS for impossible sizes."""
    global _cached
    if not isinstance(width, int) or not isinstance(height, int) or width < 21 or height < 21:
        raise ValueError("QR_BAD_DIMENSIONS: %r x %r" % (width, height))
    d = _cached
    if d is None or d.width != width or d.height != height:
        _cached = None
        d = Decoder(width, height)
        _cached = d
    return d


def _check(gray, width, height):
    d = decoder_for(width, height)
    if len(gray) < width * height:
        raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), width, height))
    return d


def decode(gray, width, height):
    """Payloads (bytes) of the QR codes found in an 8-bit grayscale frame (row-major, one byte
    per pixel; bytes, bytearray or memoryview).  Returns [] when nothing decodes.  Raises
    ValueError (reason QR_BAD_DIMENSIONS / QR_SHORT_BUFFER) when the buffer cannot hold a
    width x height frame.  Full effort: every binarisation strategy and polarity until a read
    (benches, tests, single pictures)."""
    return _check(gray, width, height).decode(gray)


def scan(gray, width, height):
    """Like decode(), for a camera loop: one binarisation pass per call, capped work, the pass
    that last read tried first (Decoder.scan).  A code held in view reads within a few frames;
    a frame without a code costs one pass instead of eight."""
    return _check(gray, width, height).scan(gray)
