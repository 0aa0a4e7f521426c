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
        kernels.quad_coef) from the binary image `bits` = (grey, block thresholds, tk: see
        kernels.find_rows); returns the number of module centres that fell outside the frame."""
        img, thr, tk = bits
        return kernels.sample_grid(img, thr, tk, w, h, coef, size, spread, self.grid)


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


_ALL_ANCHORS = (0, 1, 2, 3, 4, 5, 6, 7)
_FAR_CORNER = (6, 7)  # the corner without a finder


class Fitter:
    """Hill-climbs the four image points that anchor the homography so that the sampled
    function patterns match the template best (the idea of quirc's perspective jiggle).

    The anchors live in `pts` (int32: x0, y0 .. x3, y3 in 1/16 pixel: top-left, top-right,
    bottom-left finder centre, far corner) and every step is integer work in kernels:
    quad_coef (homography) then score_grid or grid_contrast.  `budget` caps the steps (the
    streaming mode sets it per frame; negative = no cap)."""

    def __init__(self, max_version=40):
        k = max_version // 7 + 2
        entries = 3 * 81 + 2 * tables.size_of(max_version) + 25 * k * k
        self.tmpl = array("H", (0 for _ in range(3 * entries)))
        self.coef = array("i", (0 for _ in range(11)))
        self.pts = array("i", (0 for _ in range(8)))
        self._mirror = array("i", (0 for _ in range(8)))
        self._apos = bytearray(2 * 46)
        self.n = 0
        self.size = 0
        self._key = 0
        self.budget = -1
        self.half = 0  # 1: the grey contrast sums half the modules (the streaming mode)
        self.parts = 0  # 1: the template climb scores each anchor's own part (the streaming mode)
        self._view = memoryview(self.tmpl)
        self._pbuf = [self._view] * 4  # per anchor: template part (a view) and its length
        self._pn = array("i", (0 for _ in range(4)))
        self._gs = array("i", (0 for _ in range(4)))  # per anchor: score of its part, and when
        self._gv = array("i", (0 for _ in range(4)))
        self.steps = 0  # fit steps taken (all time); the bench reads it

    def prepare(self, size, version):
        key = size * 64 + version
        if key != self._key:
            n = self.n = function_template(size, version, self.tmpl, self._apos)
            self._key = key
            # the template's parts (kernels.function_template): timing patterns (nt entries),
            # the three finders (64 each: 9 x 9 with the separator, clipped at the border),
            # then the alignment patterns; a finder anchor's part is its finder, the far
            # corner's the whole template (its alignment patterns alone, or the two finders
            # next to it and the alignment patterns, fitted worse: 31 and 35 of the stream's
            # first-frame reads instead of 36)
            nt = 2 * (size - 16)
            v = self._view
            pb = self._pbuf
            pn = self._pn
            for a in range(3):
                pb[a] = v[3 * (nt + 64 * a):]
                pn[a] = 64
            pb[3] = v
            pn[3] = n
        self.size = size
        return self.n

    def set_points(self, pts):
        """Load anchors given as four (x, y) pixel pairs."""
        p = self.pts
        for i in range(4):
            x, y = pts[i]
            p[2 * i] = int(x * 16 + 0.5)
            p[2 * i + 1] = int(y * 16 + 0.5)

    def load_coef(self, mirrored):
        """Homography of the current anchors into self.coef (top-right and bottom-left
        swapped when mirrored); False when degenerate."""
        p = self.pts
        if mirrored:
            p = self._swapped()
        return kernels.quad_coef(p, self.size, self.coef) != 0

    def _swapped(self):
        p = self.pts
        q = self._mirror
        for i in range(8):
            q[i] = p[i]
        q[2], q[3], q[4], q[5] = p[4], p[5], p[2], p[3]
        return q

    def score(self, bits, w, h):
        if self.budget == 0:
            return -1  # out of steps for this frame
        self.budget -= 1  # (from -1, no cap, it only goes further down)
        self.steps += 1
        if kernels.quad_coef(self.pts, self.size, self.coef) == 0:
            return -1
        img, thr, tk = bits
        return kernels.score_grid(img, thr, tk, w, h, self.coef, self.tmpl, self.n)

    def refine(self, bits, w, h, ms, rounds, first=0.5):
        """Hill-climb the anchors: moves of `first` module, halved each round."""
        best = self.score(bits, w, h)
        if best < 0 or best == self.n:
            return best
        img, thr, tk = bits
        if self.parts:
            return self._climb_parts(img, thr, tk, w, h, ms, first, rounds)
        return self._climb(0, img, thr, tk, 0, 0, w, h, _ALL_ANCHORS, ms, first, rounds, best, self.n)

    def _climb_parts(self, img, thr, tk, w, h, ms, first, rounds):
        """The template climb of _climb (same moves, same rules against repeats), but a move of
        a finder centre is judged by that finder's part of the template alone (64 modules, a
        quarter of a small code's template or less), against that part's score at the current
        anchors (rescored, one step, after another anchor moved); the far corner by the whole
        template.  Returns the whole template's score at the final anchors (one more step
        unless the far corner's last score is it)."""
        p = self.pts
        size = self.size
        coef = self.coef
        quad = kernels.quad_coef
        score = kernels.score_grid
        n = self.n
        pb = self._pbuf
        pn = self._pn
        gs = self._gs
        gv = self._gv
        for a in range(4):
            gv[a] = -1
        ver = 0  # improving moves so far; gv[a] == ver: gs[a] is part a's score at the anchors
        budget = self.budget
        start = budget
        try:
            for rnd in range(rounds):
                step = int(ms * 16 * first / (1 << rnd) + 0.5)  # in 1/16 px
                if step < 1:
                    break
                last = -1
                lastd = 0
                improved = True
                passes = 0
                while improved and passes < 6:
                    improved = False
                    passes += 1
                    for j in range(8):
                        a = j >> 1
                        tb = pb[a]
                        tn = pn[a]
                        if gv[a] != ver:
                            if budget == 0:
                                break
                            budget -= 1
                            quad(p, size, coef)
                            gs[a] = score(img, thr, tk, w, h, coef, tb, tn)
                            gv[a] = ver
                        cur = gs[a]
                        again = j == last and not improved
                        d = lastd if again else step
                        while True:
                            if budget == 0:
                                break
                            budget -= 1
                            p[j] += d
                            if quad(p, size, coef) == 0:
                                s = -1
                            else:
                                s = score(img, thr, tk, w, h, coef, tb, tn)
                            if s > cur:
                                ver += 1
                                gs[a] = s
                                gv[a] = ver
                                improved = True
                                last = j
                                lastd = d
                                break
                            p[j] -= d
                            if again or d != step:
                                break
                            d = -d
                        if budget == 0 or (again and not improved):
                            break
                    if budget == 0 or (gv[3] == ver and gs[3] == n):
                        break
                if budget == 0 or (gv[3] == ver and gs[3] == n):
                    break
            if gv[3] == ver:
                return gs[3]
            # the answer is the whole template's score (one step more, even past the budget:
            # the caller's acceptance test needs it)
            if budget != 0:
                budget -= 1
            if quad(p, size, coef) == 0:
                return -1
            return score(img, thr, tk, w, h, coef, self.tmpl, n)
        finally:
            self.budget = budget
            self.steps += start - budget

    def _climb(self, mode, img, thr, tk, bs, bw, w, h, coords, ms, first, rounds, best, perfect):
        """Move each of pts[coords] by +-step while the objective improves: mode 0 the template
        score (score_grid on the binary image img/thr/tk), mode 1 the grey contrast
        (grid_contrast on the grey img with the block thresholds thr, bs, bw).  The step is
        `first` module (ms px, kept in 1/16 px), halved each round; stops at `perfect` or when
        the frame's step budget is spent.  One step = quad_coef + the objective, called here
        directly (the per-step Python is most of the fit's bytecode)."""
        p = self.pts
        size = self.size
        coef = self.coef
        tmpl = self.tmpl
        n = self.n
        quad = kernels.quad_coef
        score = kernels.score_grid
        contrast = kernels.grid_contrast
        half = self.half
        nco = len(coords)
        budget = self.budget
        start = budget  # steps taken = start - budget (a budget of -1, no cap, goes on down)
        try:
            for rnd in range(rounds):
                step = int(ms * 16 * first / (1 << rnd) + 0.5)  # in 1/16 px
                if step < 1:
                    break
                # Only moves to anchors not scored before are made (the objective is a function
                # of the anchors, and best only grows, so a repeat could never improve): after
                # a move that improves, not the reverse (back where it was); and when a pass
                # comes back to the coordinate that improved last with nothing moved since,
                # only its move onwards, then the pass ends (the rest were tried as they are).
                last = -1  # index in coords of the last improving move, and that move
                lastd = 0
                improved = True
                passes = 0
                while improved and passes < 6:
                    improved = False
                    passes += 1
                    for j in range(nco):
                        i = coords[j]
                        again = j == last and not improved
                        d = lastd if again else step
                        while True:
                            if budget == 0:
                                return best
                            budget -= 1
                            p[i] += d
                            if quad(p, size, coef) == 0:
                                s = -1
                            elif mode == 0:
                                s = score(img, thr, tk, w, h, coef, tmpl, n)
                            else:
                                s = contrast(img, w, h, coef, size, thr, bs, bw, half)
                            if s > best:
                                best = s
                                improved = True
                                last = j
                                lastd = d
                                break
                            p[i] -= d
                            if again or d != step:
                                break
                            d = -d
                        if again and not improved:
                            break
                    if best == perfect:
                        return best
            return best
        finally:
            self.budget = budget
            self.steps += start - budget

    def contrast(self, gray, w, h, binz):
        if self.budget == 0:
            return -1  # out of steps for this frame
        self.budget -= 1  # (from -1, no cap, it only goes further down)
        self.steps += 1
        if kernels.quad_coef(self.pts, self.size, self.coef) == 0:
            return -1
        return kernels.grid_contrast(gray, w, h, self.coef, self.size, binz.thr, binz.bs, binz.bw, self.half)

    def refine_corner(self, gray, w, h, binz, ms):
        """Move the far corner (pts[6], pts[7]) to where module centres sit deepest inside
        their modules: the fit for version 1, and for codes whose alignment pattern was
        missed."""
        best = self.contrast(gray, w, h, binz)
        return self._climb(1, gray, binz.thr, 0, binz.bs, binz.bw, w, h, _FAR_CORNER, ms, 1, 4, best, None)
