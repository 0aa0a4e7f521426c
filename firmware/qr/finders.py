# Finder-pattern detection: row scans for the 1:1:3:1:1 dark/light profile and cross-checks
# through each hit along the column, the row again and the diagonals (kernels), clustering of
# the confirmed centres, and grouping of three centres into a plausible code corner triple.
from array import array

from . import kernels

MAX_ROW_HITS = 400  # per band of rows
BAND = 16
MAX_CENTRES = 64
ROW_TOL = 55  # percent of a module a run may be off in the row scan
CROSS_TOL = 70  # looser for the cross-checks (blur widens the centre)


class Centre:
    __slots__ = ("x", "y", "ms", "count")

    def __init__(self, x, y, ms):
        self.x = x
        self.y = y
        self.ms = ms
        self.count = 1


class FinderScanner:
    """Scratch for the row hits and the run measurements, allocated once."""

    def __init__(self):
        self.step = 1  # scan every step-th row (the streaming mode uses 2)
        # filled from a generator: a [0] * n list would be a second, temporary copy
        self._hits = array("H", (0 for _ in range(3 * MAX_ROW_HITS)))
        self._runs = array("i", (0 for _ in range(6)))

    def find(self, bits, w, h):
        """Confirmed finder centres, most row hits first."""
        hits = self._hits
        centres = []
        # bands of rows, so that a busy top of the frame cannot use up the hit buffer
        for y0 in range(0, h, BAND):
            n = kernels.find_rows(bits, w, y0, min(h, y0 + BAND), self.step, ROW_TOL, hits, MAX_ROW_HITS)
            self._confirm(bits, w, h, hits, n, centres)
        centres.sort(key=lambda c: -c.count)
        return centres

    def _confirm(self, bits, w, h, hits, n, centres):
        for i in range(n):
            x2 = hits[3 * i]
            y = hits[3 * i + 1]
            t = hits[3 * i + 2]
            xc = x2 / 2
            ms = t / 7
            merged = False
            for c in centres:
                if abs(c.x - xc) <= c.ms and abs(c.y - y - 0.5) <= 2 * c.ms + 1 and c.ms * 0.6 < ms < c.ms * 1.7:
                    c.count += 1
                    merged = True
                    break
            if merged:
                continue
            r = self._runs
            if not kernels.confirm_hit(bits, w, h, x2, y, t, CROSS_TOL, r):
                continue
            xc = r[0] / 2
            yc = r[1] / 2
            tv = r[2]
            th = r[3]
            da = r[4]
            db = r[5]
            if len(centres) >= MAX_CENTRES:
                continue
            # A rotated finder looks wider along rows and columns; the narrowest of the four
            # directions is within 8 % of the true width whatever the rotation.
            width = min(th, tv)
            if da:
                width = min(width, da * 1.414)
            if db:
                width = min(width, db * 1.414)
            c = Centre(xc, yc, width / 7)
            # a hit can confirm a centre already found from another row
            for o in centres:
                if abs(o.x - xc) <= o.ms * 1.5 and abs(o.y - yc) <= o.ms * 1.5:
                    o.count += 1
                    c = None
                    break
            if c is not None:
                centres.append(c)


def triples(centres, limit=12):
    """Candidate (top-left, top-right, bottom-left) triples, the most square-looking first.
    Top-right/bottom-left are ordered for a non-mirrored code seen from the front."""
    cs = centres[:limit]
    n = len(cs)
    out = []
    top = cs[0].count if n else 1
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                t = _score(cs[i], cs[j], cs[k])
                if t is not None:
                    # real finders are crossed by many rows: prefer triples seen often
                    weak = 1 - min(cs[i].count, cs[j].count, cs[k].count) / top
                    out.append((t[0] + 0.6 * weak, t[1], t[2], t[3]))
    out.sort(key=lambda t: t[0])
    return [t[1:] for t in out]


def _d2(a, b):
    dx = a.x - b.x
    dy = a.y - b.y
    return dx * dx + dy * dy


def _score(a, b, c):
    lo = min(a.ms, b.ms, c.ms)
    hi = max(a.ms, b.ms, c.ms)
    if hi > 2.2 * lo:
        return None
    ab = _d2(a, b)
    ac = _d2(a, c)
    bc = _d2(b, c)
    # the corner is opposite the longest side
    if bc >= ab and bc >= ac:
        tl, p, q, l1, l2 = a, b, c, ab, ac
    elif ac >= ab:
        tl, p, q, l1, l2 = b, a, c, ab, bc
    else:
        tl, p, q, l1, l2 = c, a, b, ac, bc
    if l1 <= 0 or l2 <= 0:
        return None
    r = l1 / l2
    if r > 3.0 or r < 1 / 3.0:  # legs within ~1.7x of each other
        return None
    v1x = p.x - tl.x
    v1y = p.y - tl.y
    v2x = q.x - tl.x
    v2y = q.y - tl.y
    cross = v1x * v2y - v1y * v2x
    cosang = (v1x * v2x + v1y * v2y) / ((l1 * l2) ** 0.5)
    if abs(cosang) > 0.5:
        return None
    ms = (a.ms + b.ms + c.ms) / 3
    modules = (l1 ** 0.5 + l2 ** 0.5) / 2 / ms
    if modules < 10 or modules > 180:
        return None
    score = abs(cosang) + abs(1 - r) * 0.5 + (hi / lo - 1) * 0.5
    if cross > 0:
        return score, tl, p, q
    return score, tl, q, p
