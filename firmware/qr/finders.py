# Finder-pattern detection: row scans for the 1:1:3:1:1 dark/light profile and cross-checks
# through each hit along the column, the row again and the diagonals (kernels), clustering of
# the confirmed centres, and grouping of three centres into a plausible code corner triple.
from array import array

from . import accel, kernels

MAX_ROW_HITS = 400  # per band of rows
BAND = 16
MAX_CENTRES = 64
ROW_TOL = 55  # percent of a module a run may be off in the row scan
CROSS_TOL = 70  # looser for the cross-checks (blur widens the centre)
LIMIT = 12  # centres that triples() combines (12 give 220 triples)


class Centre:
    # x2, y2: twice x and y, exactly (ints from the finder scan): _score's sums of squares and
    # cross products in ints, which allocate nothing in MicroPython where float results do
    __slots__ = ("x", "y", "ms", "count", "x2", "y2")

    def __init__(self, x, y, ms):
        self.x = x
        self.y = y
        self.ms = ms
        self.count = 1
        self.x2 = x + x
        self.y2 = y + y


class FinderScanner:
    """Scratch for the row hits and the run measurements, allocated once."""

    def __init__(self):
        self.step = 1  # scan every step-th row (the streaming mode uses 2)
        # filled from a generator: a [0] * n list would be a second, temporary copy
        self._hits = array("H", (0 for _ in range(3 * MAX_ROW_HITS)))
        # kernels.confirm_hits' parameters and scratch: centres found, slots, tolerance, ...
        self._st = array("i", (0 for _ in range(16)))
        self._st[1] = MAX_CENTRES
        self._st[2] = CROSS_TOL
        # confirmed centres: 2 x, 2 y, width x 1000, row hits
        self._cent = array("i", (0 for _ in range(4 * MAX_CENTRES)))
        self._p = array("i", (0 for _ in range(accel.FIND_ROWS_PARAMS)))  # accel.find_rows' parameters

    def find(self, img, thr, tk, w, h):
        """The LIMIT confirmed finder centres with the most row hits, most first (binary
        image: grey img against the block thresholds thr, tk as in kernels.find_rows)."""
        hits = self._hits
        cent = self._cent
        st = self._st
        st[0] = 0
        # bands of rows, so that a busy top of the frame cannot use up the hit buffer; each
        # band's hits cross-checked and merged into the centres by one kernel call
        xt = accel.find_rows  # the ESP32's hand-written version, when in use
        p = self._p
        p[0] = tk
        p[1] = w
        p[4] = self.step
        p[5] = ROW_TOL
        p[6] = MAX_ROW_HITS
        for y0 in range(0, h, BAND):
            y1 = y0 + BAND
            if y1 > h:
                y1 = h
            if xt is not None:
                p[2] = y0
                p[3] = y1
                n = xt(img, thr, hits, p)
            else:
                n = kernels.find_rows(0, 0, img, thr, tk, w, y0, y1, self.step, ROW_TOL, hits, MAX_ROW_HITS)
            if n:
                kernels.confirm_hits(img, thr, tk, w, h, hits, n, cent, st)
        # most row hits first, the first found first among equals (the index in the key:
        # MicroPython's sort is not stable); only the LIMIT strongest become Centre objects,
        # the only ones triples() looks at
        # (keys i - MAX_CENTRES * hits are distinct and give i back as key % MAX_CENTRES: a
        # sort of ints, no key function called per centre)
        order = [i - MAX_CENTRES * cent[4 * i + 3] for i in range(st[0])]
        order.sort()
        centres = []
        for key in order[:LIMIT]:
            i = key % MAX_CENTRES
            c = Centre(cent[4 * i] / 2, cent[4 * i + 1] / 2, cent[4 * i + 2] / 7000)
            c.x2 = cent[4 * i]
            c.y2 = cent[4 * i + 1]
            c.count = cent[4 * i + 3]
            centres.append(c)
        return centres


def triples(centres, keep, limit=LIMIT):
    """The `keep` best candidate (top-left, top-right, bottom-left) triples, the most
    square-looking first (equals in the order found).  Top-right/bottom-left are ordered for a
    non-mirrored code seen from the front.  Only `keep` are held while the up to 220
    combinations are scored: the decoder tries no more, and a full sorted list was the largest
    allocation of a frame."""
    cs = centres[:limit]
    n = len(cs)
    out = []
    if keep < 1:
        return out
    top = cs[0].count if n else 1
    for i in range(n):
        a = cs[i]
        for j in range(i + 1, n):
            b = cs[j]
            ab = a.count if a.count < b.count else b.count
            for k in range(j + 1, n):
                c = cs[k]
                t = _score(a, b, c)
                if t is not None:
                    # real finders are crossed by many rows: prefer triples seen often
                    weak = 1 - (ab if ab < c.count else c.count) / top
                    s = t[0] + 0.6 * weak
                    m = len(out)
                    if m == keep and s >= out[-1][0]:
                        continue
                    while m > 0 and out[m - 1][0] > s:  # after its equals: a stable order
                        m -= 1
                    out.insert(m, (s, t[1], t[2], t[3]))
                    if len(out) > keep:
                        out.pop()
    return [t[1:] for t in out]


def _score(a, b, c):
    ams = a.ms
    bms = b.ms
    cms = c.ms
    lo = ams if ams < bms else bms
    hi = bms if ams < bms else ams
    if cms < lo:
        lo = cms
    elif cms > hi:
        hi = cms
    if hi > 2.2 * lo:
        return None
    # squared side lengths, x4 (twice the coordinates: ints in the decoder; inline: this runs
    # for up to 220 triples a frame)
    ax = a.x2
    ay = a.y2
    bx = b.x2
    by = b.y2
    cx = c.x2
    cy = c.y2
    dx = ax - bx
    dy = ay - by
    ab = dx * dx + dy * dy
    dx = ax - cx
    dy = ay - cy
    ac = dx * dx + dy * dy
    dx = bx - cx
    dy = by - cy
    bc = dx * dx + dy * dy
    # the corner is opposite the longest side
    if bc >= ab and bc >= ac:
        tl, p, q, l1, l2 = a, b, c, ab, ac
    elif ac >= ab:
        tl, p, q, l1, l2 = b, a, c, ab, bc
    else:
        tl, p, q, l1, l2 = c, a, b, ac, bc
    if l1 <= 0 or l2 <= 0:
        return None
    # legs within ~1.7x of each other (l1 / l2 in (1/3, 3): in ints, the same test; the
    # ratio itself, l1 / l2, is the same float at either scale)
    if l1 > 3 * l2 or 3 * l1 < l2:
        return None
    v1x = p.x2 - tl.x2
    v1y = p.y2 - tl.y2
    v2x = q.x2 - tl.x2
    v2y = q.y2 - tl.y2
    cross = v1x * v2y - v1y * v2x
    # back to pixel units (exact: powers of two) so that the float results are those of the
    # pixel coordinates
    l1 = l1 / 4
    l2 = l2 / 4
    r = l1 / l2
    cosang = (v1x * v2x + v1y * v2y) / 4 / ((l1 * l2) ** 0.5)
    if abs(cosang) > 0.5:
        return None
    ms = (ams + bms + cms) / 3
    modules = (l1 ** 0.5 + l2 ** 0.5) / 2 / ms
    if modules < 10 or modules > 180:
        return None
    score = abs(cosang) + abs(1 - r) * 0.5 + (hi / lo - 1) * 0.5
    if cross > 0:
        return score, tl, p, q
    return score, tl, q, p
