# The decoder pipeline: binarize -> finders -> grid -> format/version -> codewords/RS -> segments.
# One Decoder per resolution holds every buffer; decode() allocates no frame-sized memory.
from . import binarize, codewords, finders, formatinfo, grid, perspective, segments, tables
from . import version as versioninfo

MAX_VERSION = 40


class Decoder:
    def __init__(self, width, height, max_version=MAX_VERSION):
        if width < 21 or height < 21:
            raise ValueError("QR_BAD_DIMENSIONS: frame %dx%d is too small" % (width, height))
        self.width = width
        self.height = height
        self.max_version = max_version
        self.binarizer = binarize.Binarizer(width, height)
        self.finders = finders.FinderScanner()
        self.sampler = grid.GridSampler(max_version)
        self._raw = bytearray(tables.total_codewords(max_version))
        self._data = bytearray(tables.total_codewords(max_version))
        self._block = bytearray(160)
        self.stats = None  # optional dict the bench fills with per-stage timings

    def decode(self, gray):
        n = self.width * self.height
        if len(gray) < n:
            raise ValueError("QR_SHORT_BUFFER: %d bytes for a %dx%d frame" % (len(gray), self.width, self.height))
        for strategy in binarize.STRATEGIES:
            self.binarizer.run(gray, strategy)
            for inverted in (False, True):
                if inverted:
                    self.binarizer.invert()
                found = self._scan()
                if found:
                    return found
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
        for tl, tr, bl in finders.triples(centres):
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
        for mirrored in (False, True):
            a, b = (bl, tr) if mirrored else (tr, bl)
            for size in sizes:
                p = self._try_size(bits, w, h, tl, a, b, size, 0)
                if p is not None:
                    return p
        return None

    def _try_size(self, bits, w, h, tl, tr, bl, size, depth):
        version = versioninfo.from_dimension(size)
        if version < 1 or version > self.max_version:
            return None
        ms = (tl.ms + tr.ms + bl.ms) / 3
        src = [(3.5, 3.5), (size - 3.5, 3.5), (3.5, size - 3.5), (size - 3.5, size - 3.5)]
        dst = [(tl.x, tl.y), (tr.x, tr.y), (bl.x, bl.y), (tr.x + bl.x - tl.x, tr.y + bl.y - tl.y)]
        hom = perspective.solve(src, dst)
        if hom is None:
            return None
        homs = [hom]
        if version >= 2:
            au = size - 6.5
            ex, ey = perspective.apply(hom, au, au)
            al = grid.find_alignment(bits, w, h, ex, ey, ms, int(4 * ms) + 2)
            if al is not None:
                src[3] = (au, au)
                dst[3] = al
                h2 = perspective.solve(src, dst)
                if h2 is not None:
                    homs.insert(0, h2)
        sampler = self.sampler
        g = sampler.grid
        for hm in homs:
            for spread in (0, 1):
                if spread and ms < 2.5:
                    continue
                sampler.sample(bits, w, h, hm, size, spread)
                if version >= 7 and depth == 0:
                    va, vb = versioninfo.read_words(g, size)
                    v = versioninfo.nearest(va)
                    if v < 0:
                        v = versioninfo.nearest(vb)
                    if v > 0 and v != version:
                        return self._try_size(bits, w, h, tl, tr, bl, tables.size_of(v), 1)
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
