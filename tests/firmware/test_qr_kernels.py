# The per-pixel kernels (viper on the device, plain Python here) against straightforward
# reference implementations on pseudo-random inputs.
from array import array

from scanbridge_fw.qr import kernels


def _rand(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n
    return nxt


def _ref_thresholds(img, w, h, bs, r, bias, mind):
    bw = (w + bs - 1) // bs
    bh = (h + bs - 1) // bs
    avg = [0] * (bw * bh)
    for by in range(bh):
        for bx in range(bw):
            px = [img[y * w + x] for y in range(by * bs, min(h, by * bs + bs))
                  for x in range(bx * bs, min(w, bx * bs + bs))]
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
    out = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            out[y * w + x] = 1 if img[y * w + x] <= thr[(y // bs) * bw + x // bs] else 0
    return out


def test_threshold_matches_reference():
    rnd = _rand(7)
    for w, h, bs, r, bias in ((37, 29, 8, 2, 0), (40, 24, 4, 3, 5), (33, 41, 16, 1, 12), (97, 61, 4, 3, 7),
                              (64, 48, 8, 0, 0)):
        img = bytearray(w * h)
        for i in range(w * h):
            # smooth gradient + blobs + noise, with flat areas so the low-contrast rule runs
            img[i] = (i % w) * 3 % 160 + (80 if rnd(5) == 0 else 0) + rnd(10) if (i // w) % 11 < 7 else 200
        bw = (w + bs - 1) // bs
        bh = (h + bs - 1) // bs
        r = min(r, (min(bw, bh) - 1) // 2)  # the window fits the grid (Binarizer.run does this)
        avg = bytearray(bw * bh)
        thr = bytearray(bw * bh)
        out = bytearray(w * h)
        kernels.block_stats(img, w, h, bs, bw, bh, 24, avg)
        kernels.block_smooth(avg, bw, bh, r, bias, thr, array("H", bytes(2 * bw)))
        dark = kernels.apply_threshold(img, w, h, bs, bw, thr, out)
        ref = _ref_thresholds(img, w, h, bs, r, bias, 24)
        assert out == ref
        assert dark == sum(ref)
        kernels.invert(out, w * h)
        assert all(out[i] == 1 - ref[i] for i in range(w * h))


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
    out = array("H", [0] * 3 * 200)
    n = kernels.find_rows(b, w, 0, h, 1, 55, out, 200)
    got = [(out[3 * i], out[3 * i + 1], out[3 * i + 2]) for i in range(n)]
    ref = _ref_find_rows(b, w, h, 55)
    assert got == ref
    assert n > 3


def test_cross_runs_matches_reference():
    rnd = _rand(3)
    w, h = 23, 19
    b = bytearray(rnd(2) for _ in range(w * h))
    out = array("H", [0] * 6)
    for _ in range(60):
        x, y = rnd(w), rnd(h)
        dx, dy = ((1, 0), (0, 1), (1, 1), (1, -1))[rnd(4)]
        r = kernels.cross_runs(b, w, h, x, y, dx, dy, 5, out)
        if b[y * w + x] != 1:
            assert r == 0
            continue
        assert r == 1
        for s, sgn in ((0, 1), (1, -1)):
            cx, cy = x, y
            for k, want in enumerate((1, 0, 1)):
                c = 0
                while 0 <= cx < w and 0 <= cy < h and b[cy * w + cx] == want and c < 5:
                    c += 1
                    cx += dx * sgn
                    cy += dy * sgn
                assert out[3 * s + k] == c


def _project(coef, u, v):
    dd = coef[6] * u + coef[7] * v + coef[8]
    if dd <= 0:
        return -1, -1
    return (coef[0] * u + coef[1] * v + coef[2]) // dd, (coef[3] * u + coef[4] * v + coef[5]) // dd


def test_sampling_kernels_match_reference():
    rnd = _rand(5)
    w, h = 50, 40
    b = bytearray(rnd(2) for _ in range(w * h))
    img = bytearray(rnd(256) for _ in range(w * h))
    s = 1 << 18
    # a mild perspective: 1.7 px per half-module, a little shear and foreshortening
    coef = array("i", [int(1.7 * s), int(0.2 * s), 3 * s, int(-0.1 * s), int(1.5 * s), 2 * s,
                       int(0.004 * s), int(0.002 * s), s])
    size = 21
    for spread in (0, 1):
        grid = bytearray(size * size)
        outside = kernels.sample_grid(b, w, h, coef, size, spread, grid)
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
    tmpl = array("H", [0] * 3 * 30)
    for i in range(30):
        tmpl[3 * i] = rnd(size)
        tmpl[3 * i + 1] = rnd(size)
        tmpl[3 * i + 2] = rnd(2)
    good = 0
    for i in range(30):
        x, y = _project(coef, 2 * tmpl[3 * i + 1] + 1, 2 * tmpl[3 * i] + 1)
        if 0 <= x < w and 0 <= y < h and b[y * w + x] == tmpl[3 * i + 2]:
            good += 1
    assert kernels.score_grid(b, w, h, coef, tmpl, 30) == good
    bs, bw = 8, (w + 7) // 8
    thr = bytearray(rnd(256) for _ in range(bw * ((h + 7) // 8)))
    total = 0
    for r in range(size):
        for c in range(size):
            x, y = _project(coef, 2 * c + 1, 2 * r + 1)
            if 0 <= x < w and 0 <= y < h:
                total += abs(img[y * w + x] - thr[(y // bs) * bw + x // bs])
    assert kernels.grid_contrast(img, w, h, coef, size, thr, bs, bw) == total
