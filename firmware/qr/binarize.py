# Adaptive (local) threshold: the frame is cut into square blocks, each block gets its mean
# grey, and each pixel is compared with the mean of the block means around it.  That follows
# uneven light and screen glare; flat blocks borrow their neighbours' level.  Several
# strategies (block size, window radius, bias) are offered so the decoder can retry.
# Only the per-block thresholds are computed here: the kernels that read the binary image
# compare a pixel with its block's threshold where they read it (no full-frame pass writes a
# binary image, and light-on-dark is a flag).
from array import array

from . import kernels

# (block size in pixels, a power of two; window radius in blocks; bias subtracted from the threshold)
STRATEGIES = ((8, 2, 0), (4, 3, 0), (16, 1, 0), (8, 2, 12))
_MIN_RANGE = 24  # a block whose grey spread is at most this is "flat"


def _checked_xtensa(fn, reference):
    """`fn` (kernels_xtensa.block_stats: img, avg, params) if it gives what `reference`
    (kernels.block_stats) gives on a test frame, at every block size and with edge blocks,
    else None.  A wrong answer from hand-written machine code would binarise every frame
    wrongly, so it is not used on trust; the test costs about a millisecond, once."""
    w, h = 37, 29  # edge blocks at every block size
    img = bytearray(w * h)
    x = 12345
    for i in range(w * h):  # grey ramps, flat stretches and noise (an LCG: no imports)
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        img[i] = (x >> 16) & 255 if (i // 97) & 1 else (i * 7 // w) & 255
    p = array("i", (0 for _ in range(12)))
    for sh in (0, 2, 3, 4):
        bs = 1 << sh
        bw = (w + bs - 1) // bs
        bh = (h + bs - 1) // bs
        want = bytearray(bw * bh)
        got = bytearray(bw * bh)
        reference(0, 0, img, w, h, sh, bw, bh, _MIN_RANGE, want)
        p[0] = w
        p[1] = h
        p[2] = sh
        p[3] = bw
        p[4] = _MIN_RANGE
        fn(img, got, p)
        if got != want:
            return None
    return fn


# The ESP32's hand-written block_stats (kernels_xtensa: only a device build has it; ~4x
# fewer cycles than the viper kernel), once it has passed _checked_xtensa; None elsewhere, or
# when it did not load (no executable RAM left) or failed the check: then kernels.block_stats.
# XTENSA says which, for diag.
try:
    from . import kernels_xtensa  # type: ignore

    block_stats_xtensa = _checked_xtensa(kernels_xtensa.block_stats, kernels.block_stats)
    XTENSA = "block_stats" if block_stats_xtensa is not None else "off: block_stats failed its check"
except (ImportError, SyntaxError, MemoryError, ValueError) as e:  # no module, no inline asm, no IRAM
    block_stats_xtensa = None
    XTENSA = "off: %s" % (e,)


class Binarizer:
    """Buffers for one resolution, allocated once and reused for every frame."""

    def __init__(self, width, height):
        self.width = width
        self.height = height
        nb = ((width + 3) // 4) * ((height + 3) // 4)  # enough for the smallest block size
        self._avg = bytearray(nb)
        self.thr = bytearray(nb)  # per-block thresholds of the last run
        self._col = array("H", (0 for _ in range((width + 3) // 4)))  # block_smooth scratch
        self.bs = 8
        self.bw = 1
        self.tk = 0  # the binary image for the kernels: see kernels.find_rows
        self._p = array("i", (0 for _ in range(12)))  # kernels_xtensa.block_stats' parameters

    def run(self, gray, strategy):
        bs, radius, bias = strategy
        w = self.width
        h = self.height
        bw = (w + bs - 1) // bs
        bh = (h + bs - 1) // bs
        if radius > (min(bw, bh) - 1) // 2:
            radius = max(0, (min(bw, bh) - 1) // 2)
        self.bs = bs
        self.bw = bw
        sh = 0
        while (1 << sh) < bs:
            sh += 1
        self.tk = (bw << 4) | sh
        xt = block_stats_xtensa
        if xt is not None:
            p = self._p
            p[0] = w
            p[1] = h
            p[2] = sh
            p[3] = bw
            p[4] = _MIN_RANGE
            xt(gray, self._avg, p)
        else:
            kernels.block_stats(0, 0, gray, w, h, sh, bw, bh, _MIN_RANGE, self._avg)
        kernels.block_smooth(0, 0, self._avg, bw, bh, radius, bias, self.thr, self._col)

    def invert(self, on=True):
        """Read light-on-dark: dark = grey above the threshold (the thresholds stay)."""
        if on:
            self.tk |= 8
        else:
            self.tk &= ~8
