# Adaptive (local) threshold: the frame is cut into square blocks, each block gets its mean
# grey, and each pixel is compared with the mean of the block means around it.  That follows
# uneven light and screen glare; flat blocks borrow their neighbours' level.  Several
# strategies (block size, window radius, bias) are offered so the decoder can retry.
# Only the per-block thresholds are computed here: the kernels that read the binary image
# compare a pixel with its block's threshold where they read it (no full-frame pass writes a
# binary image, and light-on-dark is a flag).
from array import array

from . import accel, kernels

# (block size in pixels, a power of two; window radius in blocks; bias subtracted from the threshold)
STRATEGIES = ((8, 2, 0), (4, 3, 0), (16, 1, 0), (8, 2, 12))
_MIN_RANGE = 24  # a block whose grey spread is at most this is "flat"


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
        self._p = array("i", (0 for _ in range(accel.BLOCK_STATS_PARAMS)))  # ... its parameters

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
        xt = accel.block_stats  # the ESP32's hand-written version, when in use
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
