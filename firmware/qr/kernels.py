# Per-pixel kernels of the QR decoder, in viper-compatible typed style.
#
# On the device this module is compiled with `mpy-cross -march=xtensawin -X emit=viper`, so every
# function becomes machine code (33-58x faster than bytecode); in CPython and in the WebAssembly
# MicroPython (which has no viper) it runs as plain Python with identical results.
# Rules that keep both worlds equal: integer arithmetic only, values stay below 2**30, buffers are
# indexed through ptr8/ptr16/ptr32 casts of the buffer arguments, no default arguments, no allocation, and no calls to
# other functions of this module (viper calls would box their arguments).
try:
    ptr8  # a name only viper code knows (as a cast); absent in CPython and MicroPython bytecode
except NameError:
    # Outside viper the casts are the identity: buffers are indexed directly.  Set through
    # globals() because the ESP32 stubs declare these names as builtin classes.
    def _as_is(buf):
        return buf

    _names = globals()
    _names["ptr8"] = _names["ptr16"] = _names["ptr32"] = _as_is


def block_stats(img_buf, w: int, h: int, bs: int, bw: int, bh: int, mind: int, avg_buf) -> int:
    """Mean grey of each bs x bs block into avg[bw*bh]; a flat block (max-min <= mind) gets a
    value below its minimum (so it reads as light) unless its upper/left neighbours are darker,
    which keeps the inside of large dark modules dark."""
    img = ptr8(img_buf)
    avg = ptr8(avg_buf)
    by = 0
    while by < bh:
        y0 = by * bs
        y1 = y0 + bs
        if y1 > h:
            y1 = h
        bx = 0
        while bx < bw:
            x0 = bx * bs
            x1 = x0 + bs
            if x1 > w:
                x1 = w
            s = 0
            lo = 255
            hi = 0
            y = y0
            while y < y1:
                i = y * w + x0
                e = y * w + x1
                while i < e:
                    v = img[i]
                    s += v
                    if v < lo:
                        lo = v
                    if v > hi:
                        hi = v
                    i += 1
                y += 1
            n = (y1 - y0) * (x1 - x0)
            if hi - lo > mind:
                a = s // n
            else:
                a = lo // 2
                if by > 0 and bx > 0:
                    k = by * bw + bx
                    nb = (avg[k - bw] + 2 * avg[k - 1] + avg[k - bw - 1]) // 4
                    if lo < nb:
                        a = nb
            avg[by * bw + bx] = a
            bx += 1
        by += 1
    return bw * bh


def block_smooth(avg_buf, bw: int, bh: int, r: int, bias: int, thr_buf) -> int:
    """thr[k] = mean of the (2r+1)^2 block means around block k (window kept inside the grid)
    minus bias, clamped to 0..255."""
    avg = ptr8(avg_buf)
    thr = ptr8(thr_buf)
    d = 2 * r + 1
    by = 0
    while by < bh:
        cy = by
        if cy < r:
            cy = r
        if cy > bh - 1 - r:
            cy = bh - 1 - r
        if cy < r:
            cy = r
        bx = 0
        while bx < bw:
            cx = bx
            if cx < r:
                cx = r
            if cx > bw - 1 - r:
                cx = bw - 1 - r
            if cx < r:
                cx = r
            s = 0
            n = 0
            yy = cy - r
            while yy < cy - r + d:
                if 0 <= yy and yy < bh:
                    xx = cx - r
                    while xx < cx - r + d:
                        if 0 <= xx and xx < bw:
                            s += avg[yy * bw + xx]
                            n += 1
                        xx += 1
                yy += 1
            t = s // n - bias
            if t < 0:
                t = 0
            if t > 255:
                t = 255
            thr[by * bw + bx] = t
            bx += 1
        by += 1
    return bw * bh


def apply_threshold(img_buf, w: int, h: int, bs: int, bw: int, thr_buf, out_buf) -> int:
    """out[i] = 1 where the pixel is at or below its block's threshold (dark), else 0."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    out = ptr8(out_buf)
    dark = 0
    y = 0
    while y < h:
        brow = (y // bs) * bw
        x0 = 0
        while x0 < w:
            x1 = x0 + bs
            if x1 > w:
                x1 = w
            t = thr[brow + x0 // bs]
            i = y * w + x0
            e = y * w + x1
            while i < e:
                if img[i] <= t:
                    out[i] = 1
                    dark += 1
                else:
                    out[i] = 0
                i += 1
            x0 = x1
        y += 1
    return dark


def invert(buf_buf, n: int) -> int:
    """Flip a 0/1 image in place (light-on-dark codes)."""
    buf = ptr8(buf_buf)
    i = 0
    while i < n:
        buf[i] = 1 - buf[i]
        i += 1
    return n


def find_rows(b_buf, w: int, y0: int, y1: int, step: int, tol: int, out_buf, maxn: int) -> int:
    """Scan every `step`-th row from y0 up to (not incl.) y1 of a 0/1 image for dark-light-dark-light-dark runs in the ratio
    1:1:3:1:1 (each run within tol percent of its ideal length).  Writes (2*centre x, y, total
    width) triples into out; returns how many (at most maxn)."""
    b = ptr8(b_buf)
    out = ptr16(out_buf)
    n = 0
    y = y0
    while y < y1:
        row = y * w
        r0 = 0
        r1 = 0
        r2 = 0
        r3 = 0
        r4 = 0
        runs = 0
        cur = 0
        col = b[row]
        x = 0
        while x <= w:
            v = 2
            if x < w:
                v = b[row + x]
            if v == col:
                cur += 1
            else:
                r0 = r1
                r1 = r2
                r2 = r3
                r3 = r4
                r4 = cur
                runs += 1
                if col == 1 and runs >= 5:
                    t = r0 + r1 + r2 + r3 + r4
                    if t >= 7:
                        lim = t * tol
                        ok = 1
                        e = 7 * r0 - t
                        if e < 0:
                            e = -e
                        if e * 100 >= lim:
                            ok = 0
                        e = 7 * r1 - t
                        if e < 0:
                            e = -e
                        if e * 100 >= lim:
                            ok = 0
                        e = 7 * r3 - t
                        if e < 0:
                            e = -e
                        if e * 100 >= lim:
                            ok = 0
                        e = 7 * r4 - t
                        if e < 0:
                            e = -e
                        if e * 100 >= lim:
                            ok = 0
                        e = 7 * r2 - 3 * t
                        if e < 0:
                            e = -e
                        if e * 100 >= 3 * lim:
                            ok = 0
                        if ok == 1 and n < maxn:
                            out[3 * n] = 2 * x - 2 * r4 - 2 * r3 - r2
                            out[3 * n + 1] = y
                            out[3 * n + 2] = t
                            n += 1
                col = v
                cur = 1
            x += 1
        y += step
    return n


def cross_runs(b_buf, w: int, h: int, x: int, y: int, dx: int, dy: int, maxc: int, out_buf) -> int:
    """From the dark pixel (x, y) walk along (dx, dy) and back, measuring the dark run through
    the start, then the light and the dark run beyond it on each side (each capped at maxc).
    out = [centre run +, light +, dark +, centre run -, light -, dark -].  Returns 0 if the
    start pixel is not dark."""
    b = ptr8(b_buf)
    out = ptr16(out_buf)
    if b[y * w + x] != 1:
        return 0
    s = 0
    sgn = 1
    while s < 2:
        cx = x
        cy = y
        k = 0
        while k < 3:
            want = 1
            if k == 1:
                want = 0
            c = 0
            while 0 <= cx and cx < w and 0 <= cy and cy < h and b[cy * w + cx] == want and c < maxc:
                c += 1
                cx += dx * sgn
                cy += dy * sgn
            out[3 * s + k] = c
            k += 1
        sgn = -1
        s += 1
    return 1


def sample_grid(b_buf, w: int, h: int, coef_buf, size: int, spread: int, grid_buf) -> int:
    """Sample the module grid through a fixed-point homography.

    coef (scaled by 2**18, in half-module units) maps the module centre (u, v) = (2c+1, 2r+1) to
    x = (c0 u + c1 v + c2) / (c6 u + c7 v + c8), y = (c3 u + c4 v + c5) / (same).  With spread
    > 0 each module is the majority of 5 pixels (centre and +-spread in x and y).  Writes 0/1 per
    module; returns how many sample points fell outside the image."""
    b = ptr8(b_buf)
    coef = ptr32(coef_buf)
    grid = ptr8(grid_buf)
    outside = 0
    r = 0
    while r < size:
        v = 2 * r + 1
        nx = coef[0] + coef[1] * v + coef[2]
        ny = coef[3] + coef[4] * v + coef[5]
        dd = coef[6] + coef[7] * v + coef[8]
        c = 0
        while c < size:
            x = -1
            y = -1
            if dd > 0:
                x = nx // dd
                y = ny // dd
            bit = 0
            if x < 0 or y < 0 or x >= w or y >= h:
                outside += 1
            else:
                bit = b[y * w + x]
                if spread > 0:
                    votes = 2 * bit
                    if x >= spread:
                        votes += b[y * w + x - spread]
                    if x + spread < w:
                        votes += b[y * w + x + spread]
                    if y >= spread:
                        votes += b[(y - spread) * w + x]
                    if y + spread < h:
                        votes += b[(y + spread) * w + x]
                    bit = 0
                    if votes >= 3:
                        bit = 1
            grid[r * size + c] = bit
            nx += 2 * coef[0]
            ny += 2 * coef[3]
            dd += 2 * coef[6]
            c += 1
        r += 1
    return outside


def score_grid(b_buf, w: int, h: int, coef_buf, tmpl_buf, n: int) -> int:
    """How many of the n template modules (row, column, expected 0/1 triples in tmpl) sample to
    their expected colour through the homography coef (as in sample_grid)."""
    b = ptr8(b_buf)
    coef = ptr32(coef_buf)
    tmpl = ptr16(tmpl_buf)
    good = 0
    i = 0
    while i < n:
        v = 2 * tmpl[3 * i] + 1
        u = 2 * tmpl[3 * i + 1] + 1
        dd = coef[6] * u + coef[7] * v + coef[8]
        if dd > 0:
            x = (coef[0] * u + coef[1] * v + coef[2]) // dd
            y = (coef[3] * u + coef[4] * v + coef[5]) // dd
            if 0 <= x and x < w and 0 <= y and y < h:
                if b[y * w + x] == tmpl[3 * i + 2]:
                    good += 1
        i += 1
    return good


def grid_contrast(img_buf, w: int, h: int, coef_buf, size: int, thr_buf, bs: int, bw: int) -> int:
    """Sum over all module centres of |grey - local threshold|: largest when the centres sit
    in the middle of their modules, so it scores a fit where no fixed pattern can."""
    img = ptr8(img_buf)
    coef = ptr32(coef_buf)
    thr = ptr8(thr_buf)
    total = 0
    r = 0
    while r < size:
        v = 2 * r + 1
        nx = coef[0] + coef[1] * v + coef[2]
        ny = coef[3] + coef[4] * v + coef[5]
        dd = coef[6] + coef[7] * v + coef[8]
        c = 0
        while c < size:
            if dd > 0:
                x = nx // dd
                y = ny // dd
                if 0 <= x and x < w and 0 <= y and y < h:
                    e = img[y * w + x] - thr[(y // bs) * bw + x // bs]
                    if e < 0:
                        e = -e
                    total += e
            nx += 2 * coef[0]
            ny += 2 * coef[3]
            dd += 2 * coef[6]
            c += 1
        r += 1
    return total
