# The decoder pipeline: binarize -> finders -> grid -> format/version -> codewords/RS -> segments.
# One Decoder per resolution holds every buffer; decode() allocates no frame-sized memory.
from array import array

from . import binarize, codewords, finders, formatinfo, grid, segments, tables
from . import version as versioninfo

MAX_VERSION = 40
# Streaming mode (Decoder.scan): (strategy index, inverted) in the order a rotation tries them.
# Strategy 0 (8 px blocks) first: the cheapest pass, and nearly as good a first try on
# counter-dev as strategy 1 (39 vs 40 first-frame reads, measured at d439ae1); light-on-dark last.
PASSES = ((0, False), (1, False), (3, False), (2, False), (0, True), (1, True), (3, True), (2, True))
STREAM_TRIPLES = 3  # candidate finder triples per frame
# Fit steps (homography + score) per frame.  250, not 400 (stop 14): on the counter-dev stream
# the same reads within 1/2/4/8/16 frames (39/43/43/44/45) for 18 % less work per frame, the
# scenes mirrored 41/42/42/42/45 -> 41/43/43/43/45, rotated 180 degrees 36/39/40/41/45 ->
# 35/37/38/40/44; mean time to a read shorter in all three (frames are cheaper); 200 steps
# lose first-frame reads upright (37).
STREAM_STEPS = 250
STREAM_ROW_STEP = 2  # finder row scan on every other row
# The far corner's grey-contrast climb sums a checkerboard half of the modules (half the
# contrast work, kernels.fit with st[20]; the full decode sums them all: there it cost one
# zxing-qr frame).
STREAM_HALF_CONTRAST = 1
# The template climb judges a move of one anchor by that anchor's part of the template (its
# finder; the far corner: the whole template): kernels.fit with parts = 1.
STREAM_PARTS = 1
# The template climb's first move and rounds (each round halves the move): decode 1/2 module,
# 3 rounds (1/2, 1/4, 1/8); scan whole-module first moves, 3 rounds (1, 1/2, 1/4): the part-scored
# climb gets out of a wrong start faster, and the 1/8-module round would spend steps the budget
# uses better on the next size or triple (stream reads within 1/2/4/8/16 frames at 400 steps:
# 40/43/43/44/45; 1/2 module and 2 rounds 38/39/40/43/44; 1/2 module and 3 rounds 36/36/37/41/44).
STREAM_FIRST = 1.0
STREAM_ROUNDS = 3


def max_version_for(width, height):
    """The largest version a frame can hold at one pixel per module (clean renders do that);
    buffers are sized for it: 40 from 177 px up."""
    v = (min(width, height) - 17) // 4
    return max(1, min(MAX_VERSION, v))


def _far_corner(pts, al, au, far):
    """Image of module (far, far) given the finder centres pts[0..2] (modules (3.5, 3.5),
    (far, 3.5), (3.5, far)) and the alignment centre al (module (au, au)), or None.  The far
    corner lies on the diagonal from pts[0] through al; the diagonal meets the line between the
    other two finders at module ((3.5 + far) / 2, same); a perspective map is, along one line, a
    1-D projective map, which those three points fix (the same answer as the 8x8 solve
    through the four pairs, for a few float operations)."""
    x0, y0 = pts[0]
    x1, y1 = pts[1]
    x2, y2 = pts[2]
    ax, ay = al
    dx = ax - x0
    dy = ay - y0
    ex = x2 - x1
    ey = y2 - y1
    den = dx * ey - dy * ex
    if den == 0:
        return None
    s = ((x1 - x0) * ey - (y1 - y0) * ex) / den  # pts[0] + s * (al - pts[0]) is the centre
    if s <= 0:
        return None
    # parameter t along pts[0] -> centre: 0 at module 3.5, 1 at the centre, 1/s at the alignment
    ta = 1 / s
    dc = (far - 3.5) / 2
    da = au - 3.5
    if ta == 1:
        return None
    c = (ta - da / dc) / (da * (1 - ta))
    k = (1 + c * dc) / dc
    df = far - 3.5
    q = 1 + c * df
    if q <= 0:
        return None
    t = k * df / q
    return x0 + t * s * dx, y0 + t * s * dy


class Decoder:
    def __init__(self, width, height, max_version=0):
        if width < 21 or height < 21:
            raise ValueError("QR_BAD_DIMENSIONS: frame %dx%d is too small" % (width, height))
        if max_version <= 0:
            max_version = max_version_for(width, height)
        self.width = width
        self.height = height
        self.max_version = max_version
        self.binarizer = binarize.Binarizer(width, height)
        self.finders = finders.FinderScanner()
        self.sampler = grid.GridSampler(max_version)
        self.fitter = grid.Fitter(max_version)
        self._raw = bytearray(tables.total_codewords(max_version))
        self._data = bytearray(tables.total_codewords(max_version))
        self._block = bytearray(160)  # longest RS block is 153 codewords
        self._gray = b""
        # streaming: index in PASSES of the pass that last decoded; until one has, pass 0 (the
        # cheapest, dark on light like nearly every payment code) stands in for it, so that a
        # code shown for only 2 frames is read whatever the rotation was at
        self._good = 0
        self._rot = 0  # streaming: next pass of the rotation
        self._alt = False  # streaming: this frame belongs to the known-good pass
        self.last_pass = -1
        self._first = 0.5  # first move (module) and rounds of the template climb (scan: STREAM_*)
        self._rounds = 3
        self.stats = None  # optional dict the bench fills with per-stage timings

    def decode(self, gray):
        """Full effort: every binarisation strategy in both polarities until something decodes,
        up to 8 candidate triples each, no cap on fit steps (benches, tests, snapshots)."""
        n = self.width * self.height
        if len(gray) < n:
            raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), self.width, self.height))
        self._gray = gray
        self.fitter.budget = -1
        try:
            for strategy in binarize.STRATEGIES:
                self.binarizer.run(gray, strategy)
                for inverted in (False, True):
                    if inverted:
                        self.binarizer.invert()
                    found = self._scan(8)
                    if found:
                        return found
            return []
        finally:
            self._gray = b""

    def scan(self, gray):
        """Budgeted mode for a camera loop that sees the same code in many frames: ONE
        binarisation pass per frame, at most STREAM_TRIPLES candidate triples and STREAM_STEPS
        fit steps.  The pass that last decoded is tried again on the next frame; while nothing
        decodes, frames alternate between it and the next pass of a rotation over all
        strategies and polarities (PASSES), so every pass comes round within 2 x 8 frames."""
        n = self.width * self.height
        if len(gray) < n:
            raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), self.width, self.height))
        good = self._good
        if self._alt and good >= 0:
            k = good
        else:
            k = self._rot
            if k == good:
                k = (k + 1) % len(PASSES)
            self._rot = (k + 1) % len(PASSES)
        self._alt = not self._alt
        si, inverted = PASSES[k]
        self._gray = gray
        self.fitter.budget = STREAM_STEPS
        self.fitter.half = STREAM_HALF_CONTRAST
        self.fitter.parts = STREAM_PARTS
        self._first = STREAM_FIRST
        self._rounds = STREAM_ROUNDS
        self.finders.step = STREAM_ROW_STEP
        try:
            self.binarizer.run(gray, binarize.STRATEGIES[si])
            if inverted:
                self.binarizer.invert()
            found = self._scan(STREAM_TRIPLES)
        finally:
            self._gray = b""
            self.fitter.budget = -1
            self.fitter.half = 0
            self.fitter.parts = 0
            self._first = 0.5
            self._rounds = 3
            self.finders.step = 1
        self.last_pass = k
        if found:
            self._good = k
            self._alt = True  # same pass again next frame
        return found

    def _scan(self, max_triples):
        binz = self.binarizer
        # the binary image: grey against the block thresholds, read where needed (kernels)
        bits = (self._gray, binz.thr, binz.tk)
        w = self.width
        h = self.height
        centres = self.finders.find(self._gray, binz.thr, binz.tk, w, h)
        if len(centres) < 3:
            return []
        results = []
        used = []
        for tl, tr, bl in finders.triples(centres, max_triples):
            if self.fitter.budget == 0:
                break
            if tl in used or tr in used or bl in used:
                continue
            payload = self._try_triple(bits, w, h, tl, tr, bl)
            if payload is not None:
                if payload not in results:
                    results.append(payload)
                used.append(tl)
                used.append(tr)
                used.append(bl)
        return results

    def _try_triple(self, bits, w, h, tl, tr, bl):
        d1 = ((tr.x - tl.x) ** 2 + (tr.y - tl.y) ** 2) ** 0.5 / ((tl.ms + tr.ms) / 2)
        d2 = ((bl.x - tl.x) ** 2 + (bl.y - tl.y) ** 2) ** 0.5 / ((tl.ms + bl.ms) / 2)
        size = int((d1 + d2) / 2 + 7.5)
        rem = size % 4
        if rem == 0:
            sizes = (size + 1, size - 3)
        elif rem == 2:
            sizes = (size - 1, size + 3)
        elif rem == 3:
            sizes = (size - 2, size + 2)
        else:
            sizes = (size, size + 4, size - 4)
        # Rank the candidate sizes by how well their function patterns line up before fitting.
        # The template is symmetric under transposition, so one fit serves the mirrored
        # reading too (swap the top-right and bottom-left anchors).  A perfect score ends the
        # ranking early (no size can rank above it); the others are scored only if it fails,
        # so the sizes are tried in the same order as with a full ranking.
        ranked = []
        k = self._rank(bits, w, h, tl, tr, bl, sizes, 0, ranked)
        first = 0
        if k < len(sizes):
            p = self._try_size(bits, w, h, tl, tr, bl, ranked[-1][1], 0, ranked[-1][2])
            if p is not None:
                return p
            self._rank(bits, w, h, tl, tr, bl, sizes, k, ranked)
            first = 1
        ranked.sort(key=lambda t: -t[0])
        for _frac, size, pts in ranked[first:2]:
            p = self._try_size(bits, w, h, tl, tr, bl, size, 0, pts)
            if p is not None:
                return p
        return None

    def _rank(self, bits, w, h, tl, tr, bl, sizes, k, ranked):
        """Score sizes[k:] (the function patterns through the initial anchors) into `ranked` as
        (fraction, size, anchors); stops after a perfect score.  Returns the index after the
        last size scored."""
        fitter = self.fitter
        while k < len(sizes):
            size = sizes[k]
            k += 1
            version = versioninfo.from_dimension(size)
            if version < 1 or version > self.max_version:
                continue
            pts = self._anchors(bits, w, h, tl, tr, bl, size, version)
            n = fitter.prepare(size, version)
            fitter.set_points(pts)
            s = fitter.score(bits, w, h)
            if s >= n * 0.45:
                ranked.append((s / n, size, pts))
            if s == n:
                break
        return k

    def _anchors(self, bits, w, h, tl, tr, bl, size, version):
        """Image points of the three finder centres and the far corner (module size-3.5,
        size-3.5): from the bottom-right alignment pattern when found, else a parallelogram."""
        ms = (tl.ms + tr.ms + bl.ms) / 3
        far = size - 3.5
        pts = [(tl.x, tl.y), (tr.x, tr.y), (bl.x, bl.y), (tr.x + bl.x - tl.x, tr.y + bl.y - tl.y)]
        if version >= 2:
            au = size - 6.5
            f = (au - 3.5) / (far - 3.5)  # the parallelogram's estimate of the alignment centre
            ex = tl.x + (tr.x - tl.x + bl.x - tl.x) * f
            ey = tl.y + (tr.y - tl.y + bl.y - tl.y) * f
            al = grid.find_alignment(bits, w, h, ex, ey, ms, int(4 * ms) + 2)
            if al is not None:
                p = _far_corner(pts, al, au, far)
                if p is not None:
                    pts[3] = p
        return pts

    def _try_size(self, bits, w, h, tl, tr, bl, size, depth, pts=None):
        version = versioninfo.from_dimension(size)
        if version < 1 or version > self.max_version:
            return None
        ms = (tl.ms + tr.ms + bl.ms) / 3
        if pts is None:
            pts = self._anchors(bits, w, h, tl, tr, bl, size, version)
        fitter = self.fitter
        n = fitter.prepare(size, version)
        fitter.set_points(pts)
        score = fitter.refine(bits, w, h, ms, self._rounds, self._first)
        if score < n * 0.6:
            return None  # the function patterns do not line up: wrong size or not a code
        p = self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, ms)
        if p is not None or fitter.budget == 0:
            return p
        # The fixed patterns fit but the data does not: move the far corner by grey contrast.
        fitter.refine_corner(self._gray, w, h, self.binarizer, ms)
        p = self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, ms)
        if p is not None or fitter.budget >= 0:
            return p
        # Full effort only: the climb is path-dependent (1/16 px moves); a second climb from
        # the same anchors with whole-module first moves sometimes finds the fit the first missed.
        fitter.set_points(pts)
        if fitter.refine(bits, w, h, ms, 3, 1.0) < n * 0.6:
            return None
        p = self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, ms)
        if p is not None:
            return p
        fitter.refine_corner(self._gray, w, h, self.binarizer, ms)
        return self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, ms)

    def _sample_and_read(self, bits, w, h, tl, tr, bl, size, version, depth, ms):
        sampler = self.sampler
        fitter = self.fitter
        g = sampler.grid
        for mirrored in (False, True):
            if not fitter.load_coef(mirrored):
                return None
            for spread in (0, 1):
                if spread and ms < 2.5:
                    continue
                vinfo = version >= 7 and depth == 0
                fmt = None
                if not vinfo:
                    # the format modules first: most grids sampled off a code are refused on
                    # them (formatinfo.decode), and those need no full sample; the full sample
                    # gives those modules the same values, so the answer stands
                    sampler.sample_format(bits, w, h, fitter.coef, size, spread)
                    fmt = formatinfo.decode(g, size)
                    if fmt[0] < 0:
                        continue
                sampler.sample(bits, w, h, fitter.coef, size, spread)
                if vinfo:
                    va, vb = versioninfo.read_words(g, size)
                    v = versioninfo.nearest(va)
                    if v < 0:
                        v = versioninfo.nearest(vb)
                    if v > 0 and v != version:
                        a, b = (bl, tr) if mirrored else (tr, bl)
                        saved = array("i", fitter.pts)
                        p = self._try_size(bits, w, h, tl, a, b, tables.size_of(v), 1)
                        if p is not None:
                            return p
                        # back to this size's fit for the remaining readings
                        fitter.prepare(size, version)
                        for i in range(8):
                            fitter.pts[i] = saved[i]
                        fitter.load_coef(mirrored)
                        continue
                p = self._read_grid(size, version, fmt)
                if p is not None:
                    return p
        return None

    def _read_grid(self, size, version, fmt=None):
        """The payload of the sampled grid, or None; fmt: its (level, mask) when known."""
        g = self.sampler.grid
        level, mask = fmt if fmt is not None else formatinfo.decode(g, size)
        if level < 0:
            return None
        n = codewords.read(g, size, version, mask, self._raw)
        if n < tables.total_codewords(version):
            return None
        nd, _fixed = codewords.correct(self._raw, version, level, self._block, self._data)
        if nd < 0:
            return None
        return segments.parse(self._data, nd, version)
