# Grid sampling: fits the perspective map to the finder centres (and the bottom-right alignment
# pattern when the version has one), then samples every module centre with the viper kernel.
from array import array

from . import kernels, perspective, tables


class GridSampler:
    """Module grid and fixed-point coefficients, allocated once for the largest version."""

    def __init__(self, max_version=40):
        side = tables.size_of(max_version)
        self.grid = bytearray(side * side)
        self.coef = array("i", (0 for _ in range(9)))

    def sample(self, bits, w, h, hom, size, spread):
        """Sample `size` x `size` modules through homography `hom`; returns the number of
        module centres that fell outside the frame."""
        if not perspective.to_fixed(hom, self.coef):
            return size * size
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


def _put(tmpl, n, r, c, v):
    tmpl[3 * n] = r
    tmpl[3 * n + 1] = c
    tmpl[3 * n + 2] = v
    return n + 1


def function_template(size, version, tmpl):
    """Fill `tmpl` with (row, column, colour) of the modules whose colour the standard fixes
    (finders with separators, timing patterns, alignment patterns); returns their count."""
    n = 0
    for fr, fc in ((0, 0), (0, size - 7), (size - 7, 0)):
        for r in range(-1, 8):
            for c in range(-1, 8):
                rr = fr + r
                cc = fc + c
                if rr < 0 or cc < 0 or rr >= size or cc >= size:
                    continue
                ring = max(abs(r - 3), abs(c - 3))
                n = _put(tmpl, n, rr, cc, 0 if ring == 2 or ring == 4 else 1)
    for i in range(8, size - 8):
        v = 1 - (i & 1)
        n = _put(tmpl, n, 6, i, v)
        n = _put(tmpl, n, i, 6, v)
    pos = tables.alignment_positions(version)
    k = len(pos)
    for i in range(k):
        for j in range(k):
            if (i == 0 and j == 0) or (i == 0 and j == k - 1) or (i == k - 1 and j == 0):
                continue
            for r in range(-2, 3):
                for c in range(-2, 3):
                    ring = max(abs(r), abs(c))
                    n = _put(tmpl, n, pos[i] + r, pos[j] + c, 0 if ring == 1 else 1)
    return n


class Fitter:
    """Hill-climbs the four image points that anchor the homography so that the sampled
    function patterns match the template best (the idea of quirc's perspective jiggle)."""

    def __init__(self, max_version=40):
        k = max_version // 7 + 2
        entries = 3 * 81 + 2 * tables.size_of(max_version) + 25 * k * k
        self.tmpl = array("H", (0 for _ in range(3 * entries)))
        self.coef = array("i", (0 for _ in range(9)))
        self.n = 0

    def prepare(self, size, version):
        self.n = function_template(size, version, self.tmpl)
        return self.n

    def score(self, bits, w, h, src, pts):
        hom = perspective.solve(src, pts)
        if hom is None:
            return -1
        if not perspective.to_fixed(hom, self.coef):
            return -1
        return kernels.score_grid(bits, w, h, self.coef, self.tmpl, self.n)

    def refine(self, bits, w, h, src, pts, ms, rounds):
        best = self.score(bits, w, h, src, pts)
        if best < 0 or best == self.n:
            return best
        step = ms * 0.5
        for _ in range(rounds):
            improved = True
            passes = 0
            while improved and passes < 6:
                improved = False
                passes += 1
                for i in range(4):
                    for axis in (0, 1):
                        for sgn in (1, -1):
                            old = pts[i]
                            if axis == 0:
                                pts[i] = (old[0] + sgn * step, old[1])
                            else:
                                pts[i] = (old[0], old[1] + sgn * step)
                            s = self.score(bits, w, h, src, pts)
                            if s > best:
                                best = s
                                improved = True
                            else:
                                pts[i] = old
                if best == self.n:
                    return best
            step *= 0.5
        return best

    def contrast(self, gray, w, h, src, pts, size, binz):
        hom = perspective.solve(src, pts)
        if hom is None or not perspective.to_fixed(hom, self.coef):
            return -1
        return kernels.grid_contrast(gray, w, h, self.coef, size, binz.thr, binz.bs, binz.bw)

    def refine_corner(self, gray, w, h, src, pts, size, binz, ms):
        """Move the far corner (pts[3]) to where module centres sit deepest inside their
        modules: the fit for version 1, and for codes whose alignment pattern was missed."""
        best = self.contrast(gray, w, h, src, pts, size, binz)
        step = ms
        for _ in range(4):
            improved = True
            passes = 0
            while improved and passes < 6:
                improved = False
                passes += 1
                for axis in (0, 1):
                    for sgn in (1, -1):
                        old = pts[3]
                        if axis == 0:
                            pts[3] = (old[0] + sgn * step, old[1])
                        else:
                            pts[3] = (old[0], old[1] + sgn * step)
                        s = self.contrast(gray, w, h, src, pts, size, binz)
                        if s > best:
                            best = s
                            improved = True
                        else:
                            pts[3] = old
            step *= 0.5
        return best
