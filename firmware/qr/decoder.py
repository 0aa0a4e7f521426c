# The decoder pipeline: binarize -> finders -> grid -> format/version -> codewords/RS -> segments.
# One Decoder per resolution holds every buffer; decode() allocates no frame-sized memory.
from . import binarize, codewords, finders, formatinfo, grid, perspective, segments, tables
from . import version as versioninfo

MAX_VERSION = 40


def max_version_for(width, height):
    """The largest version a frame can hold at one pixel per module (clean renders do that);
    buffers are sized for it: 40 from 177 px up."""
    v = (min(width, height) - 17) // 4
    return max(1, min(MAX_VERSION, v))


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
        self.stats = None  # optional dict the bench fills with per-stage timings

    def decode(self, gray):
        n = self.width * self.height
        if len(gray) < n:
            raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), self.width, self.height))
        self._gray = gray
        for strategy in binarize.STRATEGIES:
            self.binarizer.run(gray, strategy)
            for inverted in (False, True):
                if inverted:
                    self.binarizer.invert()
                found = self._scan()
                if found:
                    self._gray = b""
                    return found
        self._gray = b""
        return []

    def _scan(self):
        bits = self.binarizer.bits
        w = self.width
        h = self.height
        centres = self.finders.find(bits, w, h)
        if len(centres) < 3:
            return []
        results = []
        used = []
        for tl, tr, bl in finders.triples(centres)[:8]:
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
        # reading too (swap the top-right and bottom-left anchors).
        ranked = []
        for size in sizes:
            version = versioninfo.from_dimension(size)
            if version < 1 or version > self.max_version:
                continue
            src, pts = self._anchors(bits, w, h, tl, tr, bl, size, version)
            n = self.fitter.prepare(size, version)
            s = self.fitter.score(bits, w, h, src, pts)
            if s >= n * 0.45:
                ranked.append((s / n, size))
        ranked.sort(key=lambda t: -t[0])
        for _frac, size in ranked[:2]:
            p = self._try_size(bits, w, h, tl, tr, bl, size, 0)
            if p is not None:
                return p
        return None

    def _anchors(self, bits, w, h, tl, tr, bl, size, version):
        """Module-space and image-space anchor points: three finder centres and the far corner
        (from the bottom-right alignment pattern when found, else a parallelogram)."""
        ms = (tl.ms + tr.ms + bl.ms) / 3
        far = size - 3.5
        src = [(3.5, 3.5), (far, 3.5), (3.5, far), (far, far)]
        pts = [(tl.x, tl.y), (tr.x, tr.y), (bl.x, bl.y), (tr.x + bl.x - tl.x, tr.y + bl.y - tl.y)]
        if version >= 2:
            hom = perspective.solve(src, pts)
            if hom is not None:
                au = size - 6.5
                ex, ey = perspective.apply(hom, au, au)
                al = grid.find_alignment(bits, w, h, ex, ey, ms, int(4 * ms) + 2)
                if al is not None:
                    h2 = perspective.solve(src[:3] + [(au, au)], pts[:3] + [al])
                    if h2 is not None:
                        pts[3] = perspective.apply(h2, far, far)
        return src, pts

    def _try_size(self, bits, w, h, tl, tr, bl, size, depth):
        version = versioninfo.from_dimension(size)
        if version < 1 or version > self.max_version:
            return None
        ms = (tl.ms + tr.ms + bl.ms) / 3
        src, pts = self._anchors(bits, w, h, tl, tr, bl, size, version)
        fitter = self.fitter
        n = fitter.prepare(size, version)
        score = fitter.refine(bits, w, h, src, pts, ms, 3)
        if score < n * 0.6:
            return None  # the function patterns do not line up: wrong size or not a code
        p = self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, src, pts, ms)
        if p is not None:
            return p
        # The fixed patterns fit but the data does not: move the far corner by grey contrast.
        fitter.refine_corner(self._gray, w, h, src, pts, size, self.binarizer, ms)
        return self._sample_and_read(bits, w, h, tl, tr, bl, size, version, depth, src, pts, ms)

    def _sample_and_read(self, bits, w, h, tl, tr, bl, size, version, depth, src, pts, ms):
        sampler = self.sampler
        g = sampler.grid
        for mirrored in (False, True):
            if mirrored:
                pts = [pts[0], pts[2], pts[1], pts[3]]
            hom = perspective.solve(src, pts)
            if hom is None:
                return None
            for spread in (0, 1):
                if spread and ms < 2.5:
                    continue
                sampler.sample(bits, w, h, hom, size, spread)
                if version >= 7 and depth == 0:
                    va, vb = versioninfo.read_words(g, size)
                    v = versioninfo.nearest(va)
                    if v < 0:
                        v = versioninfo.nearest(vb)
                    if v > 0 and v != version:
                        a, b = (bl, tr) if mirrored else (tr, bl)
                        p = self._try_size(bits, w, h, tl, a, b, tables.size_of(v), 1)
                        if p is not None:
                            return p
                        continue
                p = self._read_grid(size, version)
                if p is not None:
                    return p
        return None

    def _read_grid(self, size, version):
        g = self.sampler.grid
        level, mask = formatinfo.decode(g, size)
        if level < 0:
            return None
        codewords.mark_function(g, size, version)
        n = codewords.read(g, size, mask, self._raw)
        if n < tables.total_codewords(version):
            return None
        nd, _fixed = codewords.correct(self._raw, version, level, self._block, self._data)
        if nd < 0:
            return None
        return segments.parse(self._data, nd, version)
