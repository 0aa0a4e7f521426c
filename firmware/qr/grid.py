# Grid sampling: fits the perspective map to the finder centres (and the bottom-right alignment
# pattern when the version has one), then samples every module centre with the viper kernel.
from array import array

from . import kernels, perspective, tables


class GridSampler:
    """Module grid and fixed-point coefficients, allocated once for the largest version."""

    def __init__(self, max_version=40):
        side = tables.size_of(max_version)
        self.grid = bytearray(side * side)
        self.coef = array("i", [0] * 9)

    def sample(self, bits, w, h, hom, size, spread):
        """Sample `size` x `size` modules through homography `hom`; returns the number of
        module centres that fell outside the frame."""
        perspective.to_fixed(hom, self.coef)
        return kernels.sample_grid(bits, w, h, self.coef, size, spread, self.grid)


def find_alignment(bits, w, h, ex, ey, ms, radius):
    """Centre of the alignment pattern (dark dot, light ring, dark ring) nearest to the
    estimate (ex, ey) within `radius` pixels, or None."""
    m = int(ms + 0.5)
    if m < 1:
        m = 1
    m2 = 2 * m
    best = 13
    sx = 0.0
    sy = 0.0
    sn = 0
    bestd = 0
    x0 = max(m2, int(ex) - radius)
    x1 = min(w - 1 - m2, int(ex) + radius)
    y0 = max(m2, int(ey) - radius)
    y1 = min(h - 1 - m2, int(ey) + radius)
    for y in range(y0, y1 + 1):
        row = y * w
        for x in range(x0, x1 + 1):
            i = row + x
            if not bits[i]:
                continue
            # light ring at one module, dark ring at two, in 8 directions each
            s = 1
            s += 1 - bits[i - m] + 1 - bits[i + m] + 1 - bits[i - m * w] + 1 - bits[i + m * w]
            s += 1 - bits[i - m - m * w] + 1 - bits[i + m - m * w] + 1 - bits[i - m + m * w] + 1 - bits[i + m + m * w]
            if s < 7:
                continue
            s += bits[i - m2] + bits[i + m2] + bits[i - m2 * w] + bits[i + m2 * w]
            s += bits[i - m2 - m2 * w] + bits[i + m2 - m2 * w] + bits[i - m2 + m2 * w] + bits[i + m2 + m2 * w]
            if s < best:
                continue
            d = (x - ex) * (x - ex) + (y - ey) * (y - ey)
            if s > best or d < bestd - 4 * ms * ms:
                best = s
                bestd = d
                sx = x
                sy = y
                sn = 1
            elif s == best and d < bestd + 4 * ms * ms:
                # average the plateau of equally good positions: a better centre than any one
                sx += x
                sy += y
                sn += 1
    if sn == 0:
        return None
    return sx / sn + 0.5, sy / sn + 0.5
