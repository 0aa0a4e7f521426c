# Adaptive (local) threshold: the frame is cut into square blocks, each block gets its mean
# grey, and each pixel is compared with the mean of the block means around it.  That follows
# uneven light and screen glare; flat blocks borrow their neighbours' level.  Several
# strategies (block size, window radius, bias) are offered so the decoder can retry.
from array import array

from . import kernels

# (block size in pixels, window radius in blocks, bias subtracted from the threshold)
STRATEGIES = ((8, 2, 0), (4, 3, 0), (16, 1, 0), (8, 2, 12))
_MIN_RANGE = 24  # a block whose grey spread is at most this is "flat"


class Binarizer:
    """Buffers for one resolution, allocated once and reused for every frame."""

    def __init__(self, width, height):
        self.width = width
        self.height = height
        self.bits = bytearray(width * height)  # 1 = dark
        nb = ((width + 3) // 4) * ((height + 3) // 4)  # enough for the smallest block size
        self._avg = bytearray(nb)
        self.thr = bytearray(nb)  # per-block thresholds of the last run
        self._col = array("H", (0 for _ in range((width + 3) // 4)))  # block_smooth scratch
        self.bs = 8
        self.bw = 1

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
        kernels.block_stats(gray, w, h, bs, bw, bh, _MIN_RANGE, self._avg)
        kernels.block_smooth(self._avg, bw, bh, radius, bias, self.thr, self._col)
        return kernels.apply_threshold(gray, w, h, bs, bw, self.thr, self.bits)

    def invert(self):
        kernels.invert(self.bits, self.width * self.height)
