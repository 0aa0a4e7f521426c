# Grid sampling: fits the perspective map to the finder centres (and the bottom-right alignment
# pattern when the version has one), then samples every module centre with the viper kernel.
# The fit is integer work: anchors in 1/16 pixel, homography and scores in kernels.
from array import array

from . import kernels, tables


class GridSampler:
    """Module grid and fixed-point coefficients, allocated once for the largest version."""

    def __init__(self, max_version=40):
        side = tables.size_of(max_version)
        self.grid = bytearray(side * side)

    def sample(self, bits, w, h, coef, size, spread):
        """Sample `size` x `size` modules through the fixed-point homography `coef` (see
        kernels.fit) from the binary image `bits` = (grey, block thresholds, tk: see
        kernels.find_rows); returns the number of module centres that fell outside the frame."""
        img, thr, tk = bits
        return kernels.sample_grid(0, 0, img, thr, tk, w, h, coef, size, spread, self.grid)

    def sample_format(self, bits, w, h, coef, size, spread):
        """Sample only row 8 and column 8, where the format information sits, as `sample`
        would (a tenth of the work or less): enough for formatinfo.decode to refuse a grid."""
        img, thr, tk = bits
        kernels.sample_grid(0, 0, img, thr, tk, w, h, coef, size, spread + 16, self.grid)


_ALIGN_OUT = array("i", (0 for _ in range(3)))


def find_alignment(bits, w, h, ex, ey, ms, radius):
    """Centre of the alignment pattern (dark dot, light ring, dark ring) nearest to the
    estimate (ex, ey) within `radius` pixels, or None (the search is a kernel)."""
    m = int(ms + 0.5)
    if m < 1:
        m = 1
    near = int(4 * ms * ms * 256)
    out = _ALIGN_OUT
    img, thr, tk = bits
    n = kernels.find_alignment(img, thr, tk, w, h, int(ex * 16), int(ey * 16), m, radius, near, out)
    if n == 0:
        return None
    return out[0] / n + 0.5, out[1] / n + 0.5


def function_template(size, version, tmpl, apos):
    """Fill `tmpl` with (row, column, colour) of the modules whose colour the standard fixes
    (finders with separators, timing patterns, alignment patterns); returns their count.
    `apos` is scratch for the alignment centres ((row, column) pairs, 2 x 46 bytes)."""
    pos = tables.alignment_positions(version)
    k = len(pos)
    na = 0
    for i in range(k):
        for j in range(k):
            if (i == 0 and (j == 0 or j == k - 1)) or (i == k - 1 and j == 0):
                continue  # those would sit on a finder
            apos[2 * na] = pos[i]
            apos[2 * na + 1] = pos[j]
            na += 1
    return kernels.function_template(size, apos, na, tmpl)




class Fitter:
    """Hill-climbs the four image points that anchor the homography so that the sampled
    function patterns match the template best (the idea of quirc's perspective jiggle).

    The anchors live in `pts` (int32: x0, y0 .. x3, y3 in 1/16 pixel: top-left, top-right,
    bottom-left finder centre, far corner) and the work is integer work in kernels: the
    homography, the template score and the template climb are one kernel (kernels.fit: one
    call per climb, not two per step), and so is the far corner's grey-contrast climb (fit
    with the grey contrast as its objective).  `budget` caps the steps (the streaming mode
    sets it per frame; negative = no cap)."""

    def __init__(self, max_version=40):
        k = max_version // 7 + 2
        entries = 3 * 81 + 2 * tables.size_of(max_version) + 25 * k * k
        self.tmpl = array("H", (0 for _ in range(3 * entries)))
        self.coef = array("i", (0 for _ in range(11)))
        self.pts = array("i", (0 for _ in range(8)))
        self._mirror = array("i", (0 for _ in range(8)))
        self._apos = bytearray(2 * 46)
        self._st = array("i", (0 for _ in range(21)))  # kernels.fit's parameters and scratch
        self.n = 0
        self.size = 0
        self._key = 0
        self.budget = -1
        self.half = 0  # 1: the grey contrast sums half the modules (the streaming mode)
        # 1: the template climb judges a move of a finder centre by that finder's 64 template
        # entries (function_template puts them after the timing patterns), the far corner by
        # the whole template (its alignment patterns alone, or the two finders next to it and
        # the alignment patterns, fitted worse: 31 and 35 of the stream's first-frame reads
        # instead of 36); the streaming mode
        self.parts = 0
        self.steps = 0  # fit steps taken (all time); the bench reads it

    def prepare(self, size, version):
        key = size * 64 + version
        if key != self._key:
            self.n = function_template(size, version, self.tmpl, self._apos)
            self._key = key
        self.size = size
        return self.n

    def set_points(self, pts):
        """Load anchors given as four (x, y) pixel pairs."""
        p = self.pts
        for i in range(4):
            x, y = pts[i]
            p[2 * i] = int(x * 16 + 0.5)
            p[2 * i + 1] = int(y * 16 + 0.5)

    def _fit(self, bits, w, h, mode):
        """kernels.fit in `mode` on the current anchors; the steps it took come off the budget."""
        st = self._st
        st[0] = self.size
        st[1] = mode
        st[2] = self.parts
        st[3] = self.budget
        st[5] = self.n
        img, thr, tk = bits
        s = kernels.fit(0, 0, img, thr, tk, w, h, self.pts, self.coef, self.tmpl, st)
        self.steps += self.budget - st[3]
        self.budget = st[3]
        return s

    def _quad(self, p):
        """Homography of the anchors p into self.coef; 0 for a refused quad (no step)."""
        st = self._st
        st[0] = self.size
        st[1] = -1
        t = self.tmpl
        return kernels.fit(0, 0, t, t, 0, 0, 0, p, self.coef, t, st)

    def load_coef(self, mirrored):
        """Homography of the current anchors into self.coef (top-right and bottom-left
        swapped when mirrored); False when degenerate."""
        p = self.pts
        if mirrored:
            p = self._swapped()
        return self._quad(p) != 0

    def _swapped(self):
        p = self.pts
        q = self._mirror
        for i in range(8):
            q[i] = p[i]
        q[2], q[3], q[4], q[5] = p[4], p[5], p[2], p[3]
        return q

    def score(self, bits, w, h):
        """Template score at the current anchors (one step; -1 when the budget is spent or
        the quad is refused)."""
        return self._fit(bits, w, h, 0)

    def refine(self, bits, w, h, ms, rounds, first=0.5):
        """Hill-climb the anchors: moves of `first` module (ms px), halved each round (at
        most 4 rounds: kernels.fit keeps the moves in st[6..9])."""
        if rounds > 4:
            raise ValueError("QR_FIT_ROUNDS: at most 4 climb rounds, not %d" % rounds)
        best = self.score(bits, w, h)
        if best < 0 or best == self.n:
            return best
        st = self._st
        st[4] = best
        for rnd in range(rounds):
            st[6 + rnd] = int(ms * 16 * first / (1 << rnd) + 0.5)  # in 1/16 px
        return self._fit(bits, w, h, rounds)

    def refine_corner(self, gray, w, h, binz, ms):
        """Move the far corner (pts[6], pts[7]) to where module centres sit deepest inside
        their modules: the fit for version 1, and for codes whose alignment pattern was
        missed.  kernels.fit's climb with the grey contrast as its objective (st[18]), over
        the far corner's coordinates only (st[19] = 6): whole-module first moves, 4 rounds;
        the grey contrast at the anchors is one step of the budget, as every move is."""
        st = self._st
        parts = self.parts
        self.parts = 0
        st[18] = 1
        st[19] = 6
        st[20] = self.half
        bits = (gray, binz.thr, binz.tk)
        try:
            best = self._fit(bits, w, h, 0)
            st[4] = best
            for rnd in range(4):
                st[6 + rnd] = int(ms * 16 / (1 << rnd) + 0.5)  # in 1/16 px
            return self._fit(bits, w, h, 4)
        finally:
            st[18] = 0
            st[19] = 0
            self.parts = parts
