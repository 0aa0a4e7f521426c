# The per-pixel kernels (viper on the device, plain Python here) against straightforward
# reference implementations on pseudo-random inputs.
from array import array

from scanbridge_fw.qr import binarize, kernels


def _rand(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n
    return nxt


def _encode(b, w, h, rnd, inv=0, sh=3):
    """Grey image, block thresholds and tk (see kernels.find_rows) whose thresholded image is
    the 0/1 image b (1 = dark): random thresholds per block, grey values on the right side."""
    bs = 1 << sh
    bw = (w + bs - 1) // bs
    bh = (h + bs - 1) // bs
    thr = bytearray(40 + rnd(170) for _ in range(bw * bh))
    img = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            t = thr[(y >> sh) * bw + (x >> sh)]
            if b[y * w + x] ^ inv:
                img[y * w + x] = t - rnd(t + 1)  # at or below: dark (light when inverted)
            else:
                img[y * w + x] = t + 1 + rnd(255 - t)
    return img, thr, (bw << 4) | (inv << 3) | sh


def _ref_thresholds(img, w, h, bs, r, bias, mind):
    bw = (w + bs - 1) // bs
    bh = (h + bs - 1) // bs
    avg = [0] * (bw * bh)
    for by in range(bh):
        for bx in range(bw):
            px = [img[y * w + x] for y in range(by * bs, min(h, by * bs + bs))  # a checkerboard half
                  for x in range(bx * bs, min(w, bx * bs + bs)) if (x - bx * bs + y - by * bs) % 2 == 0]
            lo = min(px)
            if max(px) - lo > mind:
                a = sum(px) // len(px)
            else:
                a = lo // 2
                if by and bx:
                    k = by * bw + bx
                    nb = (avg[k - bw] + 2 * avg[k - 1] + avg[k - bw - 1]) // 4
                    if lo < nb:
                        a = nb
            avg[by * bw + bx] = a
    thr = [0] * (bw * bh)
    for by in range(bh):
        for bx in range(bw):
            cy = min(max(by, r), bh - 1 - r)
            cx = min(max(bx, r), bw - 1 - r)
            vals = [avg[yy * bw + xx] for yy in range(cy - r, cy + r + 1) for xx in range(cx - r, cx + r + 1)
                    if 0 <= yy < bh and 0 <= xx < bw]
            thr[by * bw + bx] = min(255, max(0, sum(vals) // len(vals) - bias))
    return thr


def _log2(n):
    k = 0
    while (1 << k) < n:
        k += 1
    return k


def test_threshold_matches_reference():
    rnd = _rand(7)
    for w, h, bs, r, bias in ((37, 29, 8, 2, 0), (40, 24, 4, 3, 5), (33, 41, 16, 1, 12), (97, 61, 4, 3, 7),
                              (64, 48, 8, 0, 0), (97, 61, 4, 5, 3)):  # r = 5: the largest window
        img = bytearray(w * h)
        for i in range(w * h):
            # smooth gradient + blobs + noise, with flat areas so the low-contrast rule runs
            img[i] = (i % w) * 3 % 160 + (80 if rnd(5) == 0 else 0) + rnd(10) if (i // w) % 11 < 7 else 200
        bw = (w + bs - 1) // bs
        bh = (h + bs - 1) // bs
        r = min(r, (min(bw, bh) - 1) // 2)  # the window fits the grid (Binarizer.run does this)
        avg = bytearray(bw * bh)
        thr = bytearray(bw * bh)
        kernels.block_stats(0, 0, img, w, h, _log2(bs), bw, bh, 24, avg)
        kernels.block_smooth(0, 0, avg, bw, bh, r, bias, thr, array("H", bytes(2 * bw)))
        assert list(thr) == _ref_thresholds(img, w, h, bs, r, bias, 24)


def test_smooth_mean_by_reciprocal_is_exact():
    # block_smooth's (s * m) >> 21 for s // nn, over every sum of nn bytes, where it is used
    for r in range(6):
        nn = (2 * r + 1) ** 2
        m = (1 << 21) // nn + 1
        assert all((s * m) >> 21 == s // nn for s in range(255 * nn + 1)), r
        assert 255 * nn * m < 1 << 30  # a small int on every port
    nn = 13 * 13
    m = (1 << 21) // nn + 1
    assert any((s * m) >> 21 != s // nn for s in range(255 * nn + 1))  # why r <= 5
    assert max(r for _bs, r, _bias in binarize.STRATEGIES) <= 5


def _runs(row):
    runs = []
    for i, v in enumerate(row):
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1, i])
    return runs


def _ref_find_rows(b, w, h, tol):
    hits = []
    for y in range(h):
        runs = _runs(b[y * w:(y + 1) * w])
        for k in range(4, len(runs)):
            five = runs[k - 4:k + 1]
            if five[4][0] != 1:
                continue
            r = [x[1] for x in five]
            t = sum(r)
            if t < 7:
                continue
            ok = all(abs(7 * r[i] - t) * 100 < t * tol for i in (0, 1, 3, 4)) and \
                abs(7 * r[2] - 3 * t) * 100 < 3 * t * tol
            if ok:
                end = five[4][2] + r[4]
                hits.append((2 * end - 2 * r[4] - 2 * r[3] - r[2], y, t))
    return hits


def test_find_rows_matches_reference():
    rnd = _rand(11)
    w, h = 60, 12
    b = bytearray(w * h)
    for y in range(h):
        x = 0
        while x < w:
            # runs of 1-6 pixels, sometimes a planted 1:1:3:1:1 pattern
            if rnd(6) == 0 and x + 15 < w:
                m = 1 + rnd(2)
                for length, v in ((m, 1), (m, 0), (3 * m, 1), (m, 0), (m, 1)):
                    for _ in range(length):
                        b[y * w + x] = v
                        x += 1
                continue
            v = rnd(2)
            for _ in range(1 + rnd(6)):
                if x < w:
                    b[y * w + x] = v
                    x += 1
    ref = _ref_find_rows(b, w, h, 55)
    assert len(ref) > 3
    for inv, sh in ((0, 3), (1, 2), (0, 4)):  # the grey image thresholds to b (light-on-dark too)
        img, thr, tk = _encode(b, w, h, rnd, inv, sh)
        out = array("H", [0] * 3 * 200)
        n = kernels.find_rows(0, 0, img, thr, tk, w, 0, h, 1, 55, out, 200)
        got = [(out[3 * i], out[3 * i + 1], out[3 * i + 2]) for i in range(n)]
        assert got == ref
    # every other row, a band in the middle, and the cap on hits
    n = kernels.find_rows(0, 0, img, thr, tk, w, 3, 10, 2, 55, out, 200)
    assert [(out[3 * i], out[3 * i + 1], out[3 * i + 2]) for i in range(n)] == [r for r in ref if r[1] in (3, 5, 7, 9)]
    assert kernels.find_rows(0, 0, img, thr, tk, w, 0, h, 1, 55, out, 2) == 2


def _ref_runs(b, w, h, x, y, dx, dy, maxc):
    out = []
    for sgn in (1, -1):
        cx, cy = x, y
        for want in (1, 0, 1):
            c = 0
            while 0 <= cx < w and 0 <= cy < h and b[cy * w + cx] == want and c < maxc:
                c += 1
                cx += dx * sgn
                cy += dy * sgn
            out.append(c)
    return out


def _ref_line(b, w, h, x, y, dx, dy, maxc, tol):
    """(2 x centre offset + 1, width) along one line, or None (the finder cross-check)."""
    if b[y * w + x] != 1:
        return None
    r = _ref_runs(b, w, h, x, y, dx, dy, maxc)
    if max(r[0], r[2], r[3], r[5]) >= maxc:
        return None
    ce, l1, d1, l2, d2 = r[0] + r[3] - 1, r[1], r[2], r[4], r[5]
    t = ce + l1 + d1 + l2 + d2
    if t < 7 or 0 in (l1, d1, l2, d2):
        return None
    lim = t * tol
    if abs(7 * l1 - t) * 100 >= lim or abs(7 * l2 - t) * 100 >= lim:
        return None
    if abs(7 * d1 - t) * 100 >= lim * 3 // 2 or abs(7 * d2 - t) * 100 >= lim * 3 // 2:
        return None
    if abs(7 * ce - 3 * t) * 100 >= 3 * lim:
        return None
    return 1 + r[0] - r[3], t


def _ref_confirm(b, w, h, x2, y, maxc, tol):
    """The cross-check of one row hit: (2 x, 2 y, width x 1000) of the finder centre and the
    four widths, or None."""
    v = _ref_line(b, w, h, x2 // 2, y, 0, 1, maxc, tol)
    if v is None:
        return None
    py = (2 * y + v[0]) // 2
    hh = _ref_line(b, w, h, x2 // 2, py, 1, 0, maxc, tol)
    if hh is None:
        return None
    px = (2 * (x2 // 2) + hh[0]) // 2
    da = _ref_line(b, w, h, px, py, 1, 1, maxc, tol)
    db = _ref_line(b, w, h, px, py, 1, -1, maxc, tol)
    if da is None and db is None:
        return None
    widths = [v[1], hh[1], da[1] if da else 0, db[1] if db else 0]
    width = min([1000 * v[1], 1000 * hh[1]] + [1414 * d for d in widths[2:] if d])
    return 2 * (x2 // 2) + hh[0], 2 * y + v[0], width, widths


def _ref_near(cent, nc, qx, qy, t, mode):
    """The first centre the point (qx / 2, qy / 2) belongs to: mode 0 a row hit of width t,
    mode 1 a confirmed centre; -1 if none."""
    for i in range(nc):
        cx, cy, ms = cent[4 * i] / 2, cent[4 * i + 1] / 2, cent[4 * i + 2] / 7000
        if mode == 0:
            ok = abs(cx - qx / 2) <= ms and abs(cy - qy / 2) <= 2 * ms + 1 and ms * 0.6 < t / 7 < ms * 1.7
        else:
            ok = abs(cx - qx / 2) <= 1.5 * ms and abs(cy - qy / 2) <= 1.5 * ms
        if ok:
            return i
    return -1


def _ref_confirm_hits(b, w, h, hits, n, cent, nc, slots, tol):
    for j in range(n):
        x2, y, t = hits[3 * j], hits[3 * j + 1], hits[3 * j + 2]
        i = _ref_near(cent, nc, x2, 2 * y + 1, t, 0)
        if i < 0:
            c = _ref_confirm(b, w, h, x2, y, t, tol)
            if c is None:
                continue
            i = _ref_near(cent, nc, c[0], c[1], 0, 1)
            if i < 0:
                if nc < slots:
                    k = nc
                    nc += 1
                else:  # the fewest rows, the oldest of equals
                    k = min(range(nc), key=lambda q: (cent[4 * q + 3], q))
                cent[4 * k:4 * k + 4] = array("i", [c[0], c[1], c[2], 1])
                continue
        cent[4 * i + 3] += 1
    return nc


def _finder_image(rnd, w, h, count):
    """A sparse random 0/1 image with `count` finder patterns (1-3 px modules); their corners."""
    b = bytearray(1 if rnd(4) == 0 else 0 for _ in range(w * h))
    placed = []
    for _ in range(count):
        m = 1 + rnd(3)
        ox, oy = 2 + rnd(w - 7 * m - 4), 2 + rnd(h - 7 * m - 4)
        for y in range(7 * m):  # a finder pattern, some modules a pixel off
            for x in range(7 * m):
                ring = max(abs(x // m - 3), abs(y // m - 3))
                b[(oy + y) * w + ox + x] = 0 if ring == 2 else 1
        placed.append((ox, oy, m))
    return b, placed


def test_confirm_hits_cross_checks_a_hit_as_the_reference():
    rnd = _rand(3)
    w, h = 64, 56
    st = array("i", [0] * 16)
    cent = array("i", [0] * 16)
    confirmed = 0
    for trial in range(12):
        b, placed = _finder_image(rnd, w, h, 1)
        ox, oy, m = placed[0]
        for _ in range(20):
            y = oy + rnd(7 * m)
            x2 = 2 * (ox + rnd(7 * m)) + rnd(2)
            maxc = 7 * m + rnd(3)
            img, thr, tk = _encode(b, w, h, rnd, trial % 2, 2 + trial % 3)
            st[0], st[1], st[2] = 0, 4, 70  # no centre yet
            got = kernels.confirm_hits(img, thr, tk, w, h, array("H", [x2, y, maxc]), 1, cent, st)
            ref = _ref_confirm(b, w, h, x2, y, maxc, 70)
            assert got == st[0] == (0 if ref is None else 1)
            if got:
                confirmed += 1
                assert list(st[4:10]) == [ref[0], ref[1]] + ref[3]
                assert list(cent[:4]) == [ref[0], ref[1], ref[2], 1]
    assert confirmed > 20


def test_confirm_hits_merges_centres_as_the_reference():
    """Bands of real row hits (find_rows) and random ones over several finders: the centres,
    their counts and the slots reused when full, as the reference loop."""
    rnd = _rand(23)
    w, h = 96, 80
    merged = replaced = 0
    for trial in range(16):
        b, _ = _finder_image(rnd, w, h, 1 + rnd(4))
        img, thr, tk = _encode(b, w, h, rnd, trial % 2, 2 + trial % 3)
        hits = array("H", [0] * 3 * 200)
        n = kernels.find_rows(0, 0, img, thr, tk, w, 0, h, 1, 55, hits, 180)
        for _ in range(10):  # and some hits anywhere
            hits[3 * n], hits[3 * n + 1], hits[3 * n + 2] = rnd(2 * w), rnd(h), 5 + rnd(20)
            n += 1
        slots = (2, 3, 64)[trial % 3]
        cent = array("i", [0] * 4 * slots)
        st = array("i", [0] * 16)
        st[1], st[2] = slots, 70
        ref = array("i", cent)
        nref = _ref_confirm_hits(b, w, h, hits, n, ref, 0, slots, 70)
        assert kernels.confirm_hits(img, thr, tk, w, h, hits, n, cent, st) == nref == st[0]
        assert list(cent) == list(ref), trial
        merged += sum(1 for i in range(nref) if cent[4 * i + 3] > 1)
        replaced += slots < 64 and nref == slots
    assert merged > 5 and replaced > 3


def test_a_row_hit_of_a_known_centre_only_counts():
    """A hit within a known centre is counted for it, not cross-checked (the image is blank)."""
    cent = array("i", [2 * 40, 2 * 30, 7000 * 3, 4, 2 * 10, 2 * 10, 7000 * 2, 1])
    st = array("i", [0] * 16)
    st[0], st[1], st[2] = 2, 2, 70
    img = bytearray(200 for _ in range(64 * 56))
    thr = bytearray(100 for _ in range(8 * 7))
    tk = (8 << 4) | 3
    # on the first centre's row, 3 px modules, hit width 21: counted; width 60: too wide for it
    assert kernels.confirm_hits(img, thr, tk, 64, 56, array("H", [2 * 41, 31, 21, 2 * 41, 31, 60]), 2, cent, st) == 2
    assert cent[3] == 5 and cent[7] == 1


def _project(coef, u, v):
    """Pixel of the half-module point (u, v): origin + offset (1/16 px), floored."""
    dd = coef[6] * u + coef[7] * v + coef[8]
    if dd <= 0:
        return -1, -1
    x = coef[9] + (coef[0] * u + coef[1] * v + coef[2]) // dd
    y = coef[10] + (coef[3] * u + coef[4] * v + coef[5]) // dd
    return x >> 4, y >> 4


def _fit_params(size, mode, parts, budget, n, best=0, steps=()):
    """kernels.fit's parameter block (see its docstring)."""
    st = array("i", [0] * 21)
    st[0], st[1], st[2], st[3], st[4], st[5] = size, mode, parts, budget, best, n
    for i in range(len(steps)):
        st[6 + i] = steps[i]
    return st


def _quad(pts, size, coef):
    """kernels.fit in mode -1: the homography alone."""
    t = array("H", [0])
    return kernels.fit(0, 0, t, t, 0, 0, 0, pts, coef, t, _fit_params(size, -1, 0, -1, 0))


def _ref_score(b, w, h, coef, tmpl, lo, hi):
    """Template entries lo .. hi-1 that the 0/1 image b shows in their colour through coef."""
    good = 0
    for i in range(lo, hi):
        x, y = _project(coef, 2 * tmpl[3 * i + 1] + 1, 2 * tmpl[3 * i] + 1)
        if 0 <= x < w and 0 <= y < h and b[y * w + x] == tmpl[3 * i + 2]:
            good += 1
    return good


def test_sampling_kernels_match_reference():
    rnd = _rand(5)
    w, h = 50, 40
    b = bytearray(rnd(2) for _ in range(w * h))
    img = bytearray(rnd(256) for _ in range(w * h))
    s = 1 << 15
    # a mild perspective: 1.7 px per half-module, a little shear and foreshortening; origin
    # (3.4, 2.6) px, offsets in 1/16 px
    coef = array("i", [int(27.2 * s), int(3.2 * s), 0, int(-1.6 * s), int(24 * s), 0,
                       int(0.004 * s), int(0.002 * s), s, 54, 42])
    size = 21
    for spread, inv in ((0, 0), (1, 0), (0, 1), (1, 1)):
        bimg, bthr, tk = _encode(b, w, h, rnd, inv, 3)
        grid = bytearray(size * size)
        outside = kernels.sample_grid(0, 0, bimg, bthr, tk, w, h, coef, size, spread, grid)
        n_out = 0
        for r in range(size):
            for c in range(size):
                x, y = _project(coef, 2 * c + 1, 2 * r + 1)
                if not (0 <= x < w and 0 <= y < h):
                    n_out += 1
                    assert grid[r * size + c] == 0
                    continue
                bit = b[y * w + x]
                if spread:
                    votes = 2 * bit + sum(b[yy * w + xx] for xx, yy in ((x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1))
                                          if 0 <= xx < w and 0 <= yy < h)
                    bit = 1 if votes >= 3 else 0
                assert grid[r * size + c] == bit
        assert outside == n_out
        # + 16: the format modules alone (row 8, column 8), the same values, the rest untouched
        probe = bytearray(7 for _ in range(size * size))
        kernels.sample_grid(0, 0, bimg, bthr, tk, w, h, coef, size, spread + 16, probe)
        for r in range(size):
            for c in range(size):
                assert probe[r * size + c] == (grid[r * size + c] if r == 8 or c == 8 else 7)
    tmpl = array("H", [0] * 3 * 30)
    for i in range(30):
        tmpl[3 * i] = rnd(size)
        tmpl[3 * i + 1] = rnd(size)
        tmpl[3 * i + 2] = rnd(2)
    # the template score of kernels.fit (mode 0), through the homography of anchors it makes
    pts = array("i", [54 + 16 * 5, 42 + 16 * 5, 54 + 16 * 33, 42 + 16 * 3, 54 + 16 * 6, 42 + 16 * 29,
                      54 + 16 * 35, 42 + 16 * 31])
    st = _fit_params(size, 0, 0, 7, 30)
    got = kernels.fit(0, 0, bimg, bthr, tk, w, h, pts, coef, tmpl, st)
    assert st[3] == 6  # one step
    assert got == _ref_score(b, w, h, coef, tmpl, 0, 30) > 0
    st[3] = 0  # no step left: no score, nothing spent
    assert kernels.fit(0, 0, bimg, bthr, tk, w, h, pts, coef, tmpl, st) == -1 and st[3] == 0
    bs, bw = 8, (w + 7) // 8
    thr = bytearray(rnd(256) for _ in range(bw * ((h + 7) // 8)))
    for half in (0, 1):  # every module, or a checkerboard half of them
        total = 0
        for r in range(size):
            for c in range(r % 2 if half else 0, size, 1 + half):
                x, y = _project(coef, 2 * c + 1, 2 * r + 1)
                if 0 <= x < w and 0 <= y < h:
                    total += abs(img[y * w + x] - thr[(y // bs) * bw + x // bs])
        # kernels.fit with the grey contrast as its objective (st[18]), at the same anchors
        st = _fit_params(size, 0, 0, 7, 30)
        st[18], st[20] = 1, half
        assert kernels.fit(0, 0, img, thr, (bw << 4) | 3, w, h, pts, coef, tmpl, st) == total
        assert st[3] == 6  # one step


# The float 8x8 homography solve (what the decoder used before kernels.fit's homography): the
# reference.
def _solve(src, dst):
    """Coefficients (a, b, c, d, e, f, g, h) with x = (a u + b v + c) / (g u + h v + 1),
    y = (d u + e v + f) / (g u + h v + 1) mapping each src (u, v) onto dst (x, y).
    Returns None when the points are degenerate."""
    m = []
    for i in range(4):
        u, v = src[i]
        x, y = dst[i]
        m.append([u, v, 1.0, 0.0, 0.0, 0.0, -u * x, -v * x, x])
        m.append([0.0, 0.0, 0.0, u, v, 1.0, -u * y, -v * y, y])
    for col in range(8):
        piv = col
        for r in range(col + 1, 8):
            if abs(m[r][col]) > abs(m[piv][col]):
                piv = r
        if abs(m[piv][col]) < 1e-9:
            return None
        m[col], m[piv] = m[piv], m[col]
        rowc = m[col]
        inv = 1.0 / rowc[col]
        for k in range(col, 9):
            rowc[k] *= inv
        for r in range(8):
            if r != col:
                row = m[r]
                f = row[col]
                if f != 0.0:
                    for k in range(col, 9):
                        row[k] -= f * rowc[k]
    return [m[i][8] for i in range(8)]


def _apply(h, u, v):
    """Image point of module coordinates (u, v)."""
    d = h[6] * u + h[7] * v + 1.0
    return (h[0] * u + h[1] * v + h[2]) / d, (h[3] * u + h[4] * v + h[5]) / d


def test_fit_homography_matches_the_float_solve():
    rnd = _rand(11)
    coef = array("i", [0] * 11)
    pts = array("i", [0] * 8)
    worst = 0.0
    for trial in range(40):
        size = 21 + 4 * rnd(40 if trial % 4 else 3)
        side = 60 + rnd(240)  # code width in pixels, up to QVGA-filling
        x0 = 10 + rnd(60)
        y0 = 10 + rnd(60)
        # a square of `side` pixels, each corner pushed around (perspective) by up to 12 %
        quad = [(x0, y0), (x0 + side, y0), (x0, y0 + side), (x0 + side, y0 + side)]
        quad = [(x + (rnd(25) - 12) * side / 100, y + (rnd(25) - 12) * side / 100) for x, y in quad]
        far = size - 3.5
        # finder centres sit 3.5 modules in from the corners
        m = [(3.5, 3.5), (far, 3.5), (3.5, far), (far, far)]
        hq = _solve([(0.0, 0.0), (size, 0.0), (0.0, size), (size, size)], quad)
        anchors = [_apply(hq, u, v) for u, v in m]
        for i in range(4):
            pts[2 * i] = int(anchors[i][0] * 16 + 0.5)
            pts[2 * i + 1] = int(anchors[i][1] * 16 + 0.5)
        assert _quad(pts, size, coef) == 1
        ref = _solve(m, [(pts[2 * i] / 16, pts[2 * i + 1] / 16) for i in range(4)])
        umax = 2 * size + 1
        for k in (0, 3, 6):  # numerators and denominator stay in 31 bits at every module centre
            assert abs(coef[k]) * umax + abs(coef[k + 1]) * umax + abs(coef[k + 2]) < 1 << 30
        for r in range(0, size, 3):
            for c in range(0, size, 3):
                fx, fy = _apply(ref, c + 0.5, r + 0.5)
                x, y = _project(coef, 2 * c + 1, 2 * r + 1)
                worst = max(worst, abs(x - fx + 0.5), abs(y - fy + 0.5))
    # the float map lands in the same or the next pixel (off by at most ~0.6 px at the far
    # modules of a QVGA-filling version 40; VGA-filling large versions reach ~1.7 px)
    assert worst <= 1.15, worst
    # degenerate quads are refused
    for bad in ([0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 160, 0, 320, 0, 480, 0], [0, 0, 17000, 0, 0, 160, 160, 160]):
        assert _quad(array("i", bad), 25, coef) == 0


def _ref_climb(b, w, h, pts, size, tmpl, n, parts, budget, best, steps):
    """The template climb of kernels.fit written as plain nested loops (the decoder's Python
    climbs before they became one kernel): returns (score, budget left); moves pts."""
    coef = array("i", [0] * 11)
    nt = 2 * (size - 16)

    def part(a):
        return (nt + 64 * a, nt + 64 * a + 64) if parts and a < 3 else (0, n)

    def score(a):
        if _quad(pts, size, coef) == 0:
            return -1
        return _ref_score(b, w, h, coef, tmpl, *part(a))

    gs = [best] * 4
    gv = [-parts] * 4
    ver = 0
    for step in steps:
        if step < 1:
            break
        last, lastd, improved, passes = -1, 0, True, 0
        while improved and passes < 6:
            improved = False
            passes += 1
            for j in range(8):
                a = j >> 1
                if gv[a] != ver:
                    if budget == 0:
                        break
                    budget -= 1
                    gs[a], gv[a] = score(a), ver
                cur = gs[a]
                again = j == last and not improved
                d = lastd if again else step
                while budget != 0:
                    budget -= 1
                    pts[j] += d
                    s = score(a)
                    if s > cur:
                        ver += 1
                        for k in ((a,) if parts else range(4)):
                            gs[k], gv[k] = s, ver
                        improved, last, lastd = True, j, d
                        break
                    pts[j] -= d
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
        return gs[3], budget
    if budget != 0:
        budget -= 1
    return score(3), budget


def test_fit_climb_matches_reference():
    """kernels.fit's climb (a state machine around one evaluation) makes the same moves as the
    nested-loop reference: a version 2 code's function patterns drawn at 3 px per module in a
    random image, its anchors pushed off by up to a module, climbed whole and by parts, with
    and without a step budget."""
    from scanbridge_fw.qr import grid, tables
    rnd = _rand(17)
    w, h = 110, 100
    size, version = 25, 2
    tmpl = array("H", [0] * 3 * 400)
    n = grid.function_template(size, version, tmpl, bytearray(92))
    climbed = 0
    for trial in range(24):
        ox, oy, mpx = 8 + rnd(10), 6 + rnd(10), 3
        b = bytearray(rnd(2) for _ in range(w * h))
        for i in range(n):
            r, c, dark = tmpl[3 * i], tmpl[3 * i + 1], tmpl[3 * i + 2]
            for y in range(oy + r * mpx, oy + r * mpx + mpx):
                for x in range(ox + c * mpx, ox + c * mpx + mpx):
                    b[y * w + x] = dark
        img, thr, tk = _encode(b, w, h, rnd, trial % 2, 3)
        true = [ox + 3.5 * mpx, oy + 3.5 * mpx, ox + (size - 3.5) * mpx, oy + 3.5 * mpx,
                ox + 3.5 * mpx, oy + (size - 3.5) * mpx, ox + (size - 3.5) * mpx, oy + (size - 3.5) * mpx]
        start = array("i", [int(v * 16) + rnd(49) - 24 for v in true])
        parts = trial % 2
        budget = (-1, 400, 60, 9, 1)[trial % 5]
        steps = (48, 24, 12) if trial % 3 else (24, 12, 6, 3)
        coef = array("i", [0] * 11)
        ref_pts = array("i", start)
        if _quad(ref_pts, size, coef) == 0:
            continue
        best = _ref_score(b, w, h, coef, tmpl, 0, n)
        ref, ref_budget = _ref_climb(b, w, h, ref_pts, size, tmpl, n, parts, budget, best, steps)
        pts = array("i", start)
        st = _fit_params(size, len(steps), parts, budget, n, best, steps)
        got = kernels.fit(0, 0, img, thr, tk, w, h, pts, coef, tmpl, st)
        assert (got, st[3], list(pts)) == (ref, ref_budget, list(ref_pts)), trial
        if budget < 0:
            assert got == n  # an unlimited climb from a module off finds the drawn patterns
        if list(pts) != list(start):
            climbed += 1
    assert climbed >= 12


def _ref_contrast(img, thr, tk, w, h, pts, size, half):
    """The grey contrast at anchors pts (the former kernel grid_contrast): -1 for a refused
    quad, else the sum over module centres (a checkerboard half with half) of |grey - the
    block's threshold|."""
    coef = array("i", [0] * 11)
    if _quad(pts, size, coef) == 0:
        return -1
    sh, bw = tk & 7, tk >> 4
    total = 0
    for r in range(size):
        for c in range(r % 2 if half else 0, size, 1 + half):
            x, y = _project(coef, 2 * c + 1, 2 * r + 1)
            if 0 <= x < w and 0 <= y < h:
                total += abs(img[y * w + x] - thr[(y >> sh) * bw + (x >> sh)])
    return total


def _ref_corner_climb(img, thr, tk, w, h, pts, size, ms, budget, half):
    """The far corner's climb as Python wrote it before it moved into kernels.fit: the grey
    contrast at the anchors (one step), then moves of pts[6], pts[7] by +-step (whole module
    first, halved for 4 rounds, up to 6 passes a round) while it improves; not a move's
    reverse after it improved, and a pass back at the coordinate that improved last with
    nothing moved since tries only that move.  Returns (contrast, budget left)."""
    if budget == 0:
        return -1, 0
    budget -= 1
    best = _ref_contrast(img, thr, tk, w, h, pts, size, half)
    for rnd in range(4):
        step = int(ms * 16 / (1 << rnd) + 0.5)
        if step < 1:
            break
        last, lastd, improved, passes = -1, 0, True, 0
        while improved and passes < 6:
            improved = False
            passes += 1
            for j in range(2):
                i = 6 + j
                again = j == last and not improved
                d = lastd if again else step
                while True:
                    if budget == 0:
                        return best, budget
                    budget -= 1
                    pts[i] += d
                    s = _ref_contrast(img, thr, tk, w, h, pts, size, half)
                    if s > best:
                        best, improved, last, lastd = s, True, j, d
                        break
                    pts[i] -= d
                    if again or d != step:
                        break
                    d = -d
                if again and not improved:
                    break
    return best, budget


class _Binz:
    def __init__(self, thr, tk):
        self.thr = thr
        self.tk = tk


def test_far_corner_climb_matches_reference():
    """Fitter.refine_corner (kernels.fit's climb with the grey contrast as objective) moves the
    far corner as the Python climb it replaced did: a version 1 code drawn at 3 px per module
    in a random grey image, the far corner pushed off by up to a module, every and half the
    modules, with and without a step budget."""
    from scanbridge_fw.qr import grid
    rnd = _rand(23)
    w, h = 90, 90
    size = 21
    moved = 0
    for trial in range(16):
        ox, oy, mpx = 6 + rnd(10), 5 + rnd(10), 3
        b = bytearray(rnd(2) for _ in range(w * h))
        for r in range(size):
            for c in range(size):
                dark = 1 if (r < 7 and c < 7) or (r + c) % 3 == 0 else 0
                for y in range(oy + r * mpx, oy + r * mpx + mpx):
                    for x in range(ox + c * mpx, ox + c * mpx + mpx):
                        b[y * w + x] = dark
        img, thr, tk = _encode(b, w, h, rnd, 0, 3)
        true = [ox + 3.5 * mpx, oy + 3.5 * mpx, ox + (size - 3.5) * mpx, oy + 3.5 * mpx,
                ox + 3.5 * mpx, oy + (size - 3.5) * mpx, ox + (size - 3.5) * mpx, oy + (size - 3.5) * mpx]
        start = [int(v * 16) for v in true]
        start[6] += rnd(49) - 24
        start[7] += rnd(49) - 24
        half = trial % 2
        budget = (-1, 40, 7, 1, 0, 300)[trial % 6]
        ref_pts = array("i", start)
        ref, ref_budget = _ref_corner_climb(img, thr, tk, w, h, ref_pts, size, 3.0, budget, half)
        f = grid.Fitter(1)
        f.prepare(size, 1)
        for i in range(8):
            f.pts[i] = start[i]
        f.budget = budget
        f.half = half
        f.parts = 1  # the streaming mode's template parts: the corner climb must not use them
        steps = f.steps
        got = f.refine_corner(img, w, h, _Binz(thr, tk), 3.0)
        assert (got, f.budget, list(f.pts)) == (ref, ref_budget, list(ref_pts)), trial
        assert f.parts == 1 and f.steps - steps == (budget - ref_budget if budget >= 0 else -1 - ref_budget)
        if list(f.pts) != start:
            moved += 1
    assert moved >= 6


def _ref_alignment(b, w, h, ex, ey, m, radius, near):
    best, bestd, sx, sy, sn = 13, 0, 0, 0, 0
    m2 = 2 * m
    for y in range(max(m2, int(ey) - radius), min(h - 1 - m2, int(ey) + radius) + 1):
        for x in range(max(m2, int(ex) - radius), min(w - 1 - m2, int(ex) + radius) + 1):
            i = y * w + x
            if not b[i]:
                continue
            ring1 = [b[i + dx * m + dy * m * w] for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
            s = 1 + sum(1 - v for v in ring1)
            if s < 7:
                continue
            s += sum(b[i + dx * m2 + dy * m2 * w] for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)
            if s < best:
                continue
            d = (16 * x - int(ex * 16)) ** 2 + (16 * y - int(ey * 16)) ** 2
            if s > best or d < bestd - near:
                best, bestd, sx, sy, sn = s, d, x, y, 1
            elif d < bestd + near:
                sx += x
                sy += y
                sn += 1
    return sx, sy, sn


def test_find_alignment_matches_reference():
    rnd = _rand(3)
    w, h = 60, 50
    out = array("i", [0] * 3)
    for trial in range(6):
        b = bytearray(1 if rnd(3) == 0 else 0 for _ in range(w * h))
        m = 1 + rnd(3)
        cx, cy = 20 + rnd(20), 15 + rnd(20)
        for dy in range(-2 * m - m // 2, 2 * m + m // 2 + 1):  # a pattern: dark dot, light ring, dark ring
            for dx in range(-2 * m - m // 2, 2 * m + m // 2 + 1):
                ring = (max(abs(dx), abs(dy)) + m // 2) // m
                b[(cy + dy) * w + cx + dx] = 0 if ring == 1 else 1
        ex, ey = cx + rnd(5) - 2 + 0.3, cy + rnd(5) - 2 + 0.6
        near = 4 * m * m * 256
        img, thr, tk = _encode(b, w, h, rnd, trial % 2, 2 + trial % 2)
        n = kernels.find_alignment(img, thr, tk, w, h, int(ex * 16), int(ey * 16), m, 4 * m + 2, near, out)
        ref = _ref_alignment(b, w, h, ex, ey, m, 4 * m + 2, near)
        assert (out[0], out[1], n) == ref
        assert n > 0 and abs(out[0] / n - cx) <= 1 and abs(out[1] / n - cy) <= 1


def test_function_template_matches_reference():
    from scanbridge_fw.qr import grid, tables
    for version in (1, 2, 7, 14, 32, 40):
        size = tables.size_of(version)
        pos = tables.alignment_positions(version)
        ref = []  # the alignment patterns on the timing lines repeat those modules, as before
        for fr, fc in ((0, 0), (0, size - 7), (size - 7, 0)):
            for r in range(-1, 8):
                for c in range(-1, 8):
                    if 0 <= fr + r < size and 0 <= fc + c < size:
                        ring = max(abs(r - 3), abs(c - 3))
                        ref.append((fr + r, fc + c, 0 if ring in (2, 4) else 1))
        for i in range(8, size - 8):
            ref.append((6, i, 1 - i % 2))
            ref.append((i, 6, 1 - i % 2))
        k = len(pos)
        for i in range(k):
            for j in range(k):
                if (i, j) in ((0, 0), (0, k - 1), (k - 1, 0)):
                    continue
                for r in range(-2, 3):
                    for c in range(-2, 3):
                        ref.append((pos[i] + r, pos[j] + c, 0 if max(abs(r), abs(c)) == 1 else 1))
        tmpl = array("H", [0] * 3 * (len(ref) + 10))
        apos = bytearray(92)
        n = grid.function_template(size, version, tmpl, apos)  # the kernel, with the pairs
        got = [(tmpl[3 * i], tmpl[3 * i + 1], tmpl[3 * i + 2]) for i in range(n)]
        assert sorted(got) == sorted(ref)
        # the layout kernels.fit's parts rely on: the timing patterns first, then each finder's
        # 64 modules (9 x 9 with the separator, clipped at the border) in turn
        nt = 2 * (size - 16)
        for a, (fr, fc) in enumerate(((0, 0), (0, size - 7), (size - 7, 0))):
            part = got[nt + 64 * a:nt + 64 * a + 64]
            assert all(fr - 1 <= r <= fr + 7 and fc - 1 <= c <= fc + 7 for r, c, _ in part), (version, a)


def _ref_masked(mask, r, c):
    return [(r + c) % 2 == 0, r % 2 == 0, c % 3 == 0, (r + c) % 3 == 0, (r // 2 + c // 3) % 2 == 0,
            (r * c) % 2 + (r * c) % 3 == 0, ((r * c) % 2 + (r * c) % 3) % 2 == 0,
            ((r + c) % 2 + (r * c) % 3) % 2 == 0][mask]


def _ref_function_modules(size, version):
    """The standard's function modules, drawn module by module (a set of (row, column))."""
    from scanbridge_fw.qr import tables
    fn = set()
    for r0, c0, h, w in ((0, 0, 9, 9), (0, size - 8, 9, 8), (size - 8, 0, 8, 9), (6, 0, 1, size), (0, 6, size, 1)):
        fn.update((r, c) for r in range(r0, r0 + h) for c in range(c0, c0 + w))
    pos = tables.alignment_positions(version)
    k = len(pos)
    for i in range(k):
        for j in range(k):
            if (i, j) not in ((0, 0), (0, k - 1), (k - 1, 0)):
                fn.update((pos[i] + r, pos[j] + c) for r in range(-2, 3) for c in range(-2, 3))
    if version >= 7:
        fn.update((r, c) for r in range(6) for c in range(size - 11, size - 8))
        fn.update((r, c) for r in range(size - 11, size - 8) for c in range(6))
    return fn


def test_read_codewords_matches_reference():
    from scanbridge_fw.qr import codewords, tables
    rnd = _rand(9)
    for version in (1, 2, 6, 7, 14, 32, 40):
        size = tables.size_of(version)
        fn = _ref_function_modules(size, version)
        amap = codewords.alignment_map(size, version)
        # the data modules are exactly what the standard's capacity says
        assert size * size - len(fn) == 8 * tables.total_codewords(version) + [0, 0, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0,
                                                                              3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4,
                                                                              3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0][version]
        for mask in range(8) if version in (2, 7) else (version % 8,):
            grid = bytearray(rnd(2) for _ in range(size * size))
            bits = []
            right, up = size - 1, True
            while right >= 1:
                if right == 6:
                    right = 5
                for vert in range(size):
                    r = size - 1 - vert if up else vert
                    for c in (right, right - 1):
                        if (r, c) not in fn:
                            bits.append(grid[r * size + c] ^ (1 if _ref_masked(mask, r, c) else 0))
                up = not up
                right -= 2
            ref = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - 7, 8))
            out = bytearray(len(ref) + 4)
            assert kernels.read_codewords(grid, size, mask, amap, out) == len(ref)
            assert out[:len(ref)] == ref


def _ref_rs_locate(block, n, necc):
    """Syndromes, Berlekamp-Massey (textbook, with lists) and a brute-force root search:
    (result, syndromes, locator, positions) as rs_locate defines them."""
    from scanbridge_fw.qr import rs
    syn = []
    for i in range(necc):
        acc = 0
        for k in range(n):
            acc = rs.mul(acc, rs.EXP[i]) ^ block[k]
        syn.append(acc)
    if not any(syn):
        return 0, syn, None, None
    c = [1] + [0] * necc
    b = [1] + [0] * necc
    el, m, bd = 0, 1, 1
    for r in range(necc):
        d = syn[r]
        for i in range(1, el + 1):
            d ^= rs.mul(c[i], syn[r - i])
        if d == 0:
            m += 1
            continue
        coef = rs.EXP[(rs.LOG[d] - rs.LOG[bd]) % 255]
        t = list(c)
        for i in range(necc + 1 - m):
            c[i + m] ^= rs.mul(coef, b[i])
        if 2 * el <= r:
            el, b, bd, m = r + 1 - el, t, d, 1
        else:
            m += 1
    if 2 * el > necc:
        return -1, syn, c, None
    pos = []
    for k in range(n):
        x = rs.EXP[(255 - (n - 1 - k)) % 255]
        acc = 0
        for i in range(el, -1, -1):
            acc = rs.mul(acc, x) ^ c[i]
        if acc == 0:
            pos.append(k)
    return (el if len(pos) == el else -1), syn, c, pos


def _ref_forney(block, n, necc, nerr, syn, sig, pos):
    """Forney's formula (first root a^0) written out: e_k = X_k Omega(X_k^-1) / sig'(X_k^-1)
    with X_k = a^(n-1-pos_k) and Omega = S sig mod x^necc (S the syndromes, low order first)."""
    from scanbridge_fw.qr import rs

    def power(a, e):
        r = 1
        for _ in range(e % 255):
            r = rs.mul(r, a)
        return r

    def inverse(a):
        return power(a, 254)

    omega = [0] * necc
    for i in range(necc):
        for j in range(min(i, nerr) + 1):
            omega[i] ^= rs.mul(sig[j], syn[i - j])
    out = bytearray(block)
    for p in pos:
        x = power(2, n - 1 - p)
        xi = inverse(x)
        num = 0
        for i in range(necc):
            num ^= rs.mul(omega[i], power(xi, i))
        den = 0
        for i in range(1, nerr + 1, 2):  # sig'(x): the odd terms, one power down
            den ^= rs.mul(sig[i], power(xi, i - 1))
        out[p] ^= rs.mul(rs.mul(x, num), inverse(den))
    return out


def test_rs_locate_and_nearest_word_match_reference():
    from scanbridge_fw.qr import rs
    rnd = _rand(13)
    work = bytearray(128)
    results = []
    for trial in range(36):
        necc = (7, 10, 16, 22, 26, 30)[trial % 6]
        n = necc + 5 + rnd(120)
        # a codeword (message times the generator, both highest degree first) with
        # 0 .. necc // 2 + 3 byte errors, or plain noise
        gen = [1]
        for i in range(necc):
            gen = [(gen[j] if j < len(gen) else 0) ^ (rs.mul(gen[j - 1], rs.EXP[i]) if j else 0)
                   for j in range(len(gen) + 1)]
        msg = [rnd(256) for _ in range(n - necc)]
        code = [0] * n
        for i, a in enumerate(msg):
            for j, g in enumerate(gen):
                code[i + j] ^= rs.mul(a, g)
        block = bytearray(code)
        if trial % 7 == 6:
            block = bytearray(rnd(256) for _ in range(n))
        else:
            for _ in range(trial % (necc // 2 + 4)):
                block[rnd(n)] ^= 1 + rnd(255)
        want, syn, sig, pos = _ref_rs_locate(block, n, necc)
        got = kernels.rs_locate(block, n, necc, rs.GF, work)
        assert got == want
        assert list(work[0:necc]) == syn
        if sig is not None:
            assert list(work[32:33 + necc]) == sig
        if got > 0:
            assert list(work[96:96 + got]) == pos
            # Forney's values, applied: within necc // 2 errors the codeword comes back
            fixed = bytearray(block)
            assert kernels.rs_forney(0, 0, fixed, n, necc, got, rs.GF, work) == got
            if trial % 7 != 6:
                assert list(fixed) == code
            assert fixed == _ref_forney(block, n, necc, got, syn, sig, pos)
        results.append(got)
    assert 0 in results and -1 in results and max(results) >= 5, results
    words = array("i", [rnd(1 << 15) for _ in range(32)])
    out = array("i", [0])
    for word in (words[5], words[5] ^ 0x101, rnd(1 << 15), 0):
        dist = [bin(word ^ x).count("1") for x in words]
        i = kernels.nearest_word(word, words, 32, out)
        assert out[0] == min(dist) and i == dist.index(min(dist))


def test_the_fitter_refuses_more_rounds_than_fit_has_room_for():
    from scanbridge_fw.qr import grid
    f = grid.Fitter(2)
    f.prepare(25, 2)
    f.set_points([(10, 10), (82, 10), (10, 82), (82, 82)])
    try:
        f.refine((bytearray(100 * 100), bytearray(13 * 13), (13 << 4) | 3), 100, 100, 3.0, 5)
    except ValueError as e:
        assert "QR_FIT_ROUNDS" in str(e)
    else:
        assert False, "5 rounds accepted"
