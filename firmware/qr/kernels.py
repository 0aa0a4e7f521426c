# Per-pixel kernels of the QR decoder, in viper-compatible typed style.
#
# On the device this module is compiled with `mpy-cross -march=xtensawin -X emit=viper`, so every
# function becomes machine code (33-58x faster than bytecode); in CPython and in the WebAssembly
# MicroPython (which has no viper) it runs as plain Python with identical results.
# Rules that keep both worlds equal: integer arithmetic only, values stay below 2**30, buffers are
# indexed through ptr8/ptr16/ptr32 casts of the buffer arguments, no default arguments, no allocation, and no calls to
# other functions of this module (viper calls would box their arguments).
#
# Registers: the xtensawin viper emitter keeps only locals 0 and 1 in registers (a4, a5) and
# parameters are the first locals; every other local is a stack slot that each use loads and
# stores, and `//` is a runtime call.  So a kernel whose loop would otherwise run on the stack
# takes two leading scratch ints (callers pass 0) that the loop uses as its hottest variables,
# and shifts or multiplies instead of dividing where that is exact.  (Walking a raw address
# with ptr8(p)[0] would be cheaper still, but the plain path has no addresses.)  Measured on
# the real machine code: `python -m scanbridge_tools.bench.xtensa_sim` (docs/xtensa-sim.md).
try:
    ptr8  # a name only viper code knows (as a cast); absent in CPython and MicroPython bytecode
except NameError:
    # Outside viper the casts are the identity: buffers are indexed directly.  Set through
    # globals() because the ESP32 stubs declare these names as builtin classes.
    def _as_is(buf):
        return buf

    _names = globals()
    _names["ptr8"] = _names["ptr16"] = _names["ptr32"] = _as_is


def block_stats(i: int, v: int, img_buf, w: int, h: int, sh: int, bw: int, bh: int, mind: int, avg_buf) -> int:
    """Mean grey of each bs x bs block (bs = 1 << sh) into avg[bw*bh], from a checkerboard half of its pixels
    (even columns on the block's first, third, ... rows, odd columns on the others: half the
    reads, and every row and column still counts; a module of a readable code spans more than
    one pixel); a flat block (max-min <= mind over those pixels) gets a value below its minimum
    (so it reads as light) unless its upper/left neighbours are darker, which keeps the inside
    of large dark modules dark.  i and v are scratch (pass 0: see "Registers" above)."""
    img = ptr8(img_buf)
    avg = ptr8(avg_buf)
    # a rows x cnt block has (rows * cnt + 1) // 2 samples: 2**(2sh - 1) in a whole block, so
    # its mean is a shift by sf, not a runtime divide; a block cut by the frame's edge divides
    bs = 1 << sh
    sf = 2 * sh - 1
    if sf < 0:
        sf = 0
    k = 0
    y0 = 0
    while y0 < h:
        rows = bs
        if y0 + rows > h:
            rows = h - y0
        x0 = 0
        while x0 < w:
            cnt = bs
            if x0 + cnt > w:
                cnt = w - x0
            row = y0 * w + x0
            rend = row + rows * w
            s = 0
            lo = img[row]
            hi = lo
            ph = 0
            while row < rend:
                i = row + ph
                e = row + cnt
                while i < e:
                    v = img[i]
                    s += v
                    if v < lo:
                        lo = v
                    elif v > hi:
                        hi = v
                    i += 2
                ph ^= 1
                row += w
            if hi - lo > mind:
                if rows == bs and cnt == bs:
                    a = s >> sf
                else:
                    a = s // ((rows * cnt + 1) >> 1)
            else:
                a = lo >> 1
                if y0 > 0 and x0 > 0:
                    nb = (avg[k - bw] + 2 * avg[k - 1] + avg[k - bw - 1]) >> 2
                    if lo < nb:
                        a = nb
            avg[k] = a
            k += 1
            x0 += bs
        y0 += bs
    return bw * bh


def block_smooth(x: int, s: int, avg_buf, bw: int, bh: int, r: int, bias: int, thr_buf, col_buf) -> int:
    """thr[k] = mean of the (2r+1)^2 block means around block k (the window is moved inside
    the grid at the edges; the caller keeps 2r+1 <= bw, bh) minus bias, clamped to 0..255.
    x and s are scratch (pass 0: see "Registers" above).
    Separable: column sums of the window's rows of blocks in col (bw uint16), updated by one row
    in and one row out when the window moves down, and a running sum along each row.  The mean
    is (s * m) >> 21 with m = 2**21 // nn + 1, which equals s // nn for every sum of nn bytes
    while nn <= 121: the caller keeps r <= 5 (a divide would be a runtime call per block)."""
    avg = ptr8(avg_buf)
    thr = ptr8(thr_buf)
    col = ptr16(col_buf)
    d = 2 * r + 1
    nn = d * d
    m = (1 << 21) // nn + 1
    # the window's centre row cy = clamp(by, r, bh - 1 - r): column sums of rows 0 .. 2r first
    x = 0
    while x < bw:
        s = 0
        k = x
        e = x + d * bw
        while k < e:
            s += avg[k]
            k += bw
        col[x] = s
        x += 1
    cy = r
    top = bh - 1 - r
    row = 0
    by = 0
    while by < bh:
        if by > cy and cy < top:  # the window moves down one row of blocks
            a = (cy + r + 1) * bw
            b = (cy - r) * bw
            x = 0
            while x < bw:
                col[x] += avg[a + x] - avg[b + x]
                x += 1
            cy += 1
        # window [cx - r, cx + r] with cx = clamp(bx, r, bw - 1 - r)
        s = 0
        x = 0
        while x < d:
            s += col[x]
            x += 1
        x = 0
        while x < bw:
            if x > r and x < bw - r:  # the window moves with x (cx == x)
                s += col[x + r] - col[x - r - 1]
            t = ((s * m) >> 21) - bias
            if t < 0:
                t = 0
            if t > 255:
                t = 255
            thr[row + x] = t
            x += 1
        row += bw
        by += 1
    return bw * bh


def find_rows(i: int, ie: int, img_buf, thr_buf, tk: int, w: int, y0: int, y1: int, step: int, tol: int, out_buf, maxn: int) -> int:
    """Scan every `step`-th row from y0 up to (not incl.) y1 of the thresholded image (a pixel
    is dark when grey <= its block's threshold, see `tk`) for dark-light-dark-light-dark runs in
    the ratio 1:1:3:1:1 (each run within tol percent of its ideal length).  Writes (2*centre x,
    y, total width) triples into out; returns how many (at most maxn).

    `tk` describes the threshold map thr (one byte per block, row-major): block size 1 << (tk &
    7), blocks per row tk >> 4, and bit 3 set for light-on-dark codes (dark = grey above the
    threshold).  Every kernel that reads the binary image takes (img, thr, tk): the binary
    image is never written out.  i and ie are scratch (pass 0: see "Registers" above).  A run is
    followed in pixel indices, block by block, with the block's threshold and end carried
    forward (not recomputed from x at every block and every run)."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    out = ptr16(out_buf)
    sh = tk & 7
    inv = (tk >> 3) & 1
    one = 1 - inv
    bw = tk >> 4
    bsz = 1 << sh
    n = 0
    y = y0
    while y < y1:
        row = y * w
        rend = row + w
        tb = (y >> sh) * bw
        t = thr[tb]
        ie = row + bsz
        if ie > rend:
            ie = rend
        r0 = 0
        r1 = 0
        r2 = 0
        r3 = 0
        r4 = 0
        runs = 0
        col = inv
        if img[row] <= t:
            col = one
        i = row
        start = row
        while i < rend:
            # extend the run of colour col from i, one threshold block at a time
            while 1:
                if col == one:  # a run of pixels at or below the threshold
                    while i < ie:
                        if img[i] > t:
                            break
                        i += 1
                else:
                    while i < ie:
                        if img[i] <= t:
                            break
                        i += 1
                if i < ie or ie == rend:
                    break
                tb += 1
                t = thr[tb]
                ie += bsz
                if ie > rend:
                    ie = rend
            # the run [start, i) of colour col has ended (at a colour change or the row's end)
            r0 = r1
            r1 = r2
            r2 = r3
            r3 = r4
            r4 = i - start
            runs += 1
            if col == 1 and runs >= 5:
                s = r0 + r1 + r2 + r3 + r4
                if s >= 7:
                    lim = s * tol
                    # the centre run first: it rejects most dark runs of a code's data
                    ok = 0
                    e = 7 * r2 - 3 * s
                    if e < 0:
                        e = -e
                    if e * 100 < 3 * lim:
                        # then the largest error of the four one-module runs
                        e = 7 * r0 - s
                        if e < 0:
                            e = -e
                        f = 7 * r1 - s
                        if f < 0:
                            f = -f
                        if f > e:
                            e = f
                        f = 7 * r3 - s
                        if f < 0:
                            f = -f
                        if f > e:
                            e = f
                        f = 7 * r4 - s
                        if f < 0:
                            f = -f
                        if f > e:
                            e = f
                        if e * 100 < lim:
                            ok = 1
                    if ok == 1 and n < maxn:
                        out[3 * n] = 2 * (i - row) - 2 * r4 - 2 * r3 - r2
                        out[3 * n + 1] = y
                        out[3 * n + 2] = s
                        n += 1
            col = 1 - col
            start = i
        y += step
    return n


def confirm_hits(img_buf, thr_buf, tk: int, w: int, h: int, hits_buf, n: int, cent_buf, st_buf) -> int:
    """The finder cross-check of n row hits (find_rows' triples: 2 x centre, row, width), in
    order, against the finder centres found so far (cent: int32 quads: 2 x, 2 y, width x 1000,
    rows that saw it).  A hit within one module across and two modules (+1 px) along the
    column of a known centre, 0.6-1.7 times its width, is another row of it: the centre's
    count goes up.  Otherwise the hit is cross-checked through the finder: along the column
    (which re-centres y), the row (re-centres x), then both diagonals; each line must show
    dark-light-dark-light-dark around the centre in 1:1:3:1:1 (light runs within tol percent,
    outer dark runs within 1.5 tol, the centre within 3 tol; every run shorter than the hit's
    width), and the column, the row and at least one diagonal must pass.  A confirmed centre
    within 1.5 modules of a known one (module = width / 7) counts for it; a new one is added,
    its width the narrowest of the four directions (a diagonal's x 1.414: within 8 % of the
    true width whatever the rotation); when all slots are taken the centre seen by the fewest
    rows (the oldest of equals) makes room, so that a busy code cannot crowd out a finder lower
    in the frame.  Binary image as in find_rows.

    st (int32): [0] the centres found (in and out), [1] slots in cent, [2] tol; [4..9] of the
    last hit cross-checked: 2 x and 2 y of its centre, the widths along column, row and the
    two diagonals (0: failed); [10..15] scratch.  Returns the centres found."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    hits = ptr16(hits_buf)
    cent = ptr32(cent_buf)
    st = ptr32(st_buf)
    sh = tk & 7
    inv = (tk >> 3) & 1
    one = 1 - inv
    bw = tk >> 4
    nc = st[0]
    slots = st[1]
    tol = st[2]
    r0 = 0
    r3 = 0
    j = 0
    while j < n:
        x2 = hits[3 * j]
        y = hits[3 * j + 1]
        maxc = hits[3 * j + 2]
        j += 1
        qx = x2  # the point looked up among the centres (2 x, 2 y)
        qy = 2 * y + 1
        width = 0
        stage = 0  # 0 the row hit, 1 its cross-check, 2 the confirmed centre
        while stage < 3:
            if stage == 1:
                px = x2 // 2
                py = y
                ok = 0
                dirn = 0
                while dirn < 4:
                    dx = 1
                    dy = 0
                    if dirn == 0:
                        dx = 0
                        dy = 1
                    if dirn == 3:
                        dy = -1
                    if dirn == 2:
                        dy = 1
                    total = 0
                    v = inv
                    if img[py * w + px] <= thr[(py >> sh) * bw + (px >> sh)]:
                        v = one
                    if v == 1:
                        # runs: centre, light, dark going + (st[10..12]); centre, light, dark
                        # going - (st[13..15])
                        ph = 0
                        sgn = 1
                        cx = px
                        cy = py
                        while ph < 6:
                            if ph == 3:
                                sgn = -1
                                cx = px
                                cy = py
                            want = 1
                            if ph == 1 or ph == 4:
                                want = 0
                            c = 0
                            while c < maxc and 0 <= cx and cx < w and 0 <= cy and cy < h:
                                v = inv
                                if img[cy * w + cx] <= thr[(cy >> sh) * bw + (cx >> sh)]:
                                    v = one
                                if v != want:
                                    break
                                c += 1
                                cx += dx * sgn
                                cy += dy * sgn
                            st[10 + ph] = c
                            ph += 1
                        r0 = st[10]
                        r1 = st[11]
                        r2 = st[12]
                        r3 = st[13]
                        r4 = st[14]
                        r5 = st[15]
                        if r0 < maxc and r2 < maxc and r3 < maxc and r5 < maxc:
                            ce = r0 + r3 - 1
                            t = ce + r1 + r2 + r4 + r5
                            if t >= 7 and r1 > 0 and r2 > 0 and r4 > 0 and r5 > 0:
                                lim = t * tol
                                # the larger error of the two light runs, of the two dark runs,
                                # the centre's
                                e = 7 * r1 - t
                                if e < 0:
                                    e = -e
                                f = 7 * r4 - t
                                if f < 0:
                                    f = -f
                                if f > e:
                                    e = f
                                g = 7 * r2 - t
                                if g < 0:
                                    g = -g
                                f = 7 * r5 - t
                                if f < 0:
                                    f = -f
                                if f > g:
                                    g = f
                                f = 7 * ce - 3 * t
                                if f < 0:
                                    f = -f
                                if e * 100 < lim and g * 100 < lim * 3 // 2 and f * 100 < 3 * lim:
                                    total = t
                    st[6 + dirn] = total
                    if dirn < 2:
                        if total == 0:
                            break  # the column and the row must pass
                        # re-centre: the column moves y (st[5]), the row x (st[4])
                        if dirn == 0:
                            py = 2 * py + 1 + r0 - r3
                            st[5] = py
                            py = py // 2
                        else:
                            px = 2 * px + 1 + r0 - r3
                            st[4] = px
                            px = px // 2
                    elif total > 0:
                        ok = 1
                    dirn += 1
                if ok == 0:
                    break
                width = 1000 * st[6]
                if st[7] < st[6]:
                    width = 1000 * st[7]
                if st[8] > 0 and 1414 * st[8] < width:
                    width = 1414 * st[8]
                if st[9] > 0 and 1414 * st[9] < width:
                    width = 1414 * st[9]
                qx = st[4]
                qy = st[5]
                stage = 2
                continue
            # is (qx, qy) a centre already found?  stage 0: a row hit (one module across, two
            # along the column, width 0.6-1.7x); stage 2: a confirmed centre (1.5 modules)
            ka = 3
            kb = 3
            kc = 0
            if stage == 0:
                ka = 2
                kb = 4
                kc = 14000
            i = 0
            while i < nc:
                wd = cent[4 * i + 2]
                dx = cent[4 * i] - qx
                if dx < 0:
                    dx = -dx
                dy = cent[4 * i + 1] - qy
                if dy < 0:
                    dy = -dy
                if 7000 * dx <= ka * wd and 7000 * dy <= kb * wd + kc:
                    if stage == 2 or (6 * wd < 10000 * maxc and 10000 * maxc < 17 * wd):
                        cent[4 * i + 3] = cent[4 * i + 3] + 1
                        break
                i += 1
            if i < nc:
                break  # counted for a known centre
            if stage == 2:
                k = nc
                if nc < slots:
                    nc += 1
                else:  # full: the weakest makes room
                    k = 0
                    i = 1
                    while i < nc:
                        if cent[4 * i + 3] < cent[4 * k + 3]:
                            k = i
                        i += 1
                cent[4 * k] = qx
                cent[4 * k + 1] = qy
                cent[4 * k + 2] = width
                cent[4 * k + 3] = 1
            stage += 1
    st[0] = nc
    return nc


def sample_grid(x: int, y: int, img_buf, thr_buf, tk: int, w: int, h: int, coef_buf, size: int, spread: int, grid_buf) -> int:
    """Sample the module grid through a fixed-point homography.

    coef (11 int32, from fit) maps the module centre (u, v) = (2c+1, 2r+1), in half-module
    units, to the pixel x = (c9 + (c0 u + c1 v + c2) // (c6 u + c7 v + c8)) >> 4, y likewise with
    c3, c4, c5 and c10: the origin c9, c10 and the offsets are in 1/16 pixel.  With spread
    > 0 each module is the majority of 5 pixels (centre and +-spread in x and y).  Writes 0/1 per
    module (binary image as in find_rows); returns how many sample points fell outside the
    image.  spread + 16: only row 8 and column 8 (where the format information sits), with the
    values the whole grid would get there; the rest of grid is left as it was.
    x and y are scratch (pass 0: see "Registers" above): the pixel x, y of the loop."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    coef = ptr32(coef_buf)
    grid = ptr8(grid_buf)
    sh = tk & 7
    inv = (tk >> 3) & 1
    one = 1 - inv
    bw = tk >> 4
    probe = spread >> 4
    spread = spread & 15
    sx = 2 * coef[0]
    sy = 2 * coef[3]
    sd = 2 * coef[6]
    w1 = w - 1
    h1 = h - 1
    outside = 0
    r = 0
    while r < size:
        v = 2 * r + 1
        nx = coef[0] + coef[1] * v + coef[2]
        ny = coef[3] + coef[4] * v + coef[5]
        dd = coef[6] + coef[7] * v + coef[8]
        g = r * size
        n = size
        if probe != 0 and r != 8:  # column 8 alone: the module at u = 17
            g += 8
            n = 1
            nx += 8 * sx
            ny += 8 * sy
            dd += 8 * sd
        while n:
            bit = 0
            x = -1
            y = 0  # (dd <= 0: outside)
            if dd > 0:
                x = (nx // dd + coef[9]) >> 4
                y = (ny // dd + coef[10]) >> 4
            if (x | y | (w1 - x) | (h1 - y)) < 0:  # not (0 <= x < w and 0 <= y < h)
                outside += 1
            else:
                bit = inv
                if img[y * w + x] <= thr[(y >> sh) * bw + (x >> sh)]:
                    bit = one
                if spread > 0:
                    votes = 2 * bit
                    dx = spread
                    dy = 0
                    k = 4
                    while k:
                        xx = x + dx
                        yy = y + dy
                        if (xx | yy | (w1 - xx) | (h1 - yy)) >= 0:
                            votes += inv
                            if img[yy * w + xx] <= thr[(yy >> sh) * bw + (xx >> sh)]:
                                votes += one - inv
                        t = dx  # the next of the four neighbours: a quarter turn
                        dx = -dy
                        dy = t
                        k -= 1
                    bit = 0
                    if votes >= 3:
                        bit = 1
            grid[g] = bit
            nx += sx
            ny += sy
            dd += sd
            g += 1
            n -= 1
        r += 1
    return outside


def fit(x: int, ti: int, img_buf, thr_buf, tk: int, w: int, h: int, pts_buf, coef_buf, tmpl_buf, st_buf) -> int:
    """The perspective fit of a size x size code in one call: the homography of four anchors,
    the template score at them, or the hill-climb of the anchors that maximises it.

    Anchors: pts = [x0, y0 .. x3, y3] (1/16 pixel), the image points of the finder centres
    (module 3.5, 3.5), (size-3.5, 3.5), (3.5, size-3.5) and of the far corner (size-3.5,
    size-3.5).  Homography: into coef, the form sample_grid reads; integer only: the
    closed-form unit-square-to-quad map (Heckbert) around the origin (x0, y0), its three
    determinants scaled down just enough that the numerators at every module centre stay below
    2**30; absurd or degenerate quads are refused.  Template score: how many of the template's
    (row, column, expected 0/1) entries in tmpl sample to their colour through it (binary image
    as in find_rows; -1 for a refused quad).

    st (int32, 21 words) holds the parameters: st[0] size, st[1] mode, st[2] parts, st[3] the
    step budget (in and out: one step = homography + score; negative: no cap, it only goes
    further down), st[4] the score at the anchors (climb, parts = 0), st[5] n (template
    entries), st[6..9] the move of each round in 1/16 pixel, st[10..17] scratch, st[18..20]
    the objective, the first coordinate climbed and half (below).  Modes: -1 homography
    only (returns 1, or 0 for a refused quad; no step); 0 the score at the anchors (one step;
    -1 when the budget is spent); k > 0 the climb in k rounds: each anchor coordinate in turn
    moves by +-st[6 + round] while the objective improves, up to 6 passes a round; returns
    the score at the final anchors.  Only anchors not scored before are tried (the objective
    is a function of the anchors and the best only grows): after an improving move, not its
    reverse; a pass that comes back to the coordinate that improved last with nothing moved
    since tries only its move onwards, then ends.  With parts = 1 a move of a finder centre is
    judged by that finder's 64 template entries alone (function_template's layout: timing
    entries first, then 64 per finder), against that part's score at the current anchors
    (rescored, one step, after another anchor moved); the far corner by the whole template;
    and the final score is the whole template's (one more step, even past the budget).  The
    climb's control flow is a state machine around a single evaluation (ph: what to do with
    the score s), so the homography and the score exist once in the machine code.
    st[18] = 1 makes the objective the grey contrast instead of the template score: the sum
    over the module centres of |grey - the block's threshold| (largest when the centres sit in
    the middle of their modules, so it scores a fit where no fixed pattern can; st[20] = 1: a
    checkerboard half of the modules, row + column even); with it the climb moves only the
    coordinates from st[19] on (6: the far corner), parts = 0.
    x and ti are scratch (pass 0: see "Registers" above): the template loop's pixel x and its
    index into tmpl."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    p = ptr32(pts_buf)
    coef = ptr32(coef_buf)
    tmpl = ptr16(tmpl_buf)
    st = ptr32(st_buf)
    size = st[0]
    mode = st[1]
    parts = st[2]
    budget = st[3]
    n = st[5]
    obj = st[18]
    j0 = st[19]
    half = st[20]
    sh = tk & 7
    inv = (tk >> 3) & 1
    one = 1 - inv
    bw = tk >> 4
    nt = 2 * (size - 16)  # timing entries before the finders' parts
    ver = 0  # improving moves so far; st[14 + a] == ver: st[10 + a] is part a's score now
    a = 0
    while a < 4:
        st[10 + a] = st[4]
        st[14 + a] = -parts  # parts = 0: every part is the template, scored st[4] (current)
        a += 1
    a = 3  # the part the next evaluation scores
    rnd = 0
    step = 0
    last = -1
    lastd = 0
    improved = 0
    passes = 0
    j = 0
    cur = 0
    again = 0
    d = 0
    ev = 0
    dt = 0  # the homography's determinants: bound before the first evaluation (pyright)
    g = 0
    k = 0
    ph = 0  # 0 round start
    if mode < 0:
        ev = 1
    elif mode == 0:
        ph = 11  # score at the anchors
    while True:
        if ev != 0:
            ev = 0
            s = -1
            x0 = p[0]
            y0 = p[1]
            x1 = p[2] - x0
            y1 = p[3] - y0
            x2 = p[4] - x0
            y2 = p[5] - y0
            x3 = p[6] - x0
            y3 = p[7] - y0
            # refuse absurd quads (and keep the determinants below 2**30): rm = the largest
            # |coordinate|; rx, ry = |x1| + |x2|, |y1| + |y2|
            rm = 0
            rx = 0
            ry = 0
            i = 2
            while i < 8:
                t = p[i] - x0
                if i & 1:
                    t = p[i] - y0
                if t < 0:
                    t = -t
                if t > rm:
                    rm = t
                if i < 6:
                    if i & 1:
                        ry += t
                    else:
                        rx += t
                i += 1
            e = 0
            if rm < 16384 and 8 <= size and size <= 200:
                sx = x3 - x1 - x2
                sy = y3 - y1 - y2
                dx1 = x1 - x3
                dx2 = x2 - x3
                dy1 = y1 - y3
                dy2 = y2 - y3
                dt = dx1 * dy2 - dx2 * dy1
                g = sx * dy2 - sy * dx2
                k = dx1 * sy - dy1 * sx
                if dt < 0:
                    dt = -dt
                    g = -g
                    k = -k
                if dt != 0:
                    # |numerator| <= (2 size + 8) (|x1| + |x2|) (dt + |g| + |k|) at every module
                    # centre (u, v <= 2 size + 1): divide the determinants by q until that is
                    # below 2**30
                    if ry > rx:
                        rx = ry
                    room = 0x3FFFFFFF // (2 * size + 8) // (rx + 1)
                    ag = g
                    if ag < 0:
                        ag = -ag
                    ak = k
                    if ak < 0:
                        ak = -ak
                    m = dt + ag + ak
                    if m > room:
                        q = m // room + 1
                        dt = dt // q
                        g = g // q
                        k = k // q
                    if dt >= 32:
                        e = (2 * size - 14) * dt - 7 * (g + k)
            if e > 0:
                c0 = x1 * (dt + g)
                c1 = x2 * (dt + k)
                c2 = -7 * (c0 + c1)
                c3 = y1 * (dt + g)
                c4 = y2 * (dt + k)
                c5 = -7 * (c3 + c4)
                coef[0] = c0
                coef[1] = c1
                coef[2] = c2
                coef[3] = c3
                coef[4] = c4
                coef[5] = c5
                coef[6] = g
                coef[7] = k
                coef[8] = e
                coef[9] = x0
                coef[10] = y0
                if mode < 0:
                    return 1
            if e > 0 and obj != 0:  # the grey contrast (x, ti: the pixel x, y)
                s = 0
                stp = 2 + 2 * half  # u steps per module visited
                sx = stp * c0
                sy = stp * c3
                sd = stp * g
                r = 0
                while r < size:
                    v = 2 * r - 6  # in u - 7, v - 7, as the template loop below
                    cu = r & half
                    u = 2 * cu - 6
                    nx = c0 * u + c1 * v
                    ny = c3 * u + c4 * v
                    dd = g * u + k * v + e + 7 * (g + k)
                    cnt = (size - cu + half) >> half  # modules cu, cu + 1 + half, ... below size
                    while cnt:
                        if dd > 0:
                            x = (nx // dd + x0) >> 4
                            ti = (ny // dd + y0) >> 4
                            if (x | ti) >= 0 and x < w and ti < h:  # neither is negative
                                ee = img[ti * w + x] - thr[(ti >> sh) * bw + (x >> sh)]
                                if ee < 0:
                                    ee = -ee
                                s += ee
                        nx += sx
                        ny += sy
                        dd += sd
                        cnt -= 1
                    r += 1
            elif e > 0:
                i = 0  # part a's template entries: i .. ie - 1
                ie = n
                if parts != 0 and a < 3:
                    i = nt + 64 * a
                    ie = i + 64
                s = 0
                ti = 3 * i
                cnt = ie - i
                if cnt < 0:
                    cnt = 0
                e7 = e + 7 * (g + k)  # in u - 7, v - 7: c2, c5 and e fold in (the same sums)
                while cnt:
                    v = 2 * tmpl[ti] - 6
                    u = 2 * tmpl[ti + 1] - 6
                    dd = g * u + k * v + e7
                    if dd > 0:
                        x = ((c0 * u + c1 * v) // dd + x0) >> 4
                        y = ((c3 * u + c4 * v) // dd + y0) >> 4
                        if (x | y) >= 0 and x < w and y < h:  # (x | y) >= 0: neither is negative
                            b = inv
                            if img[y * w + x] <= thr[(y >> sh) * bw + (x >> sh)]:
                                b = one
                            if b == tmpl[ti + 2]:
                                s += 1
                    ti += 3
                    cnt -= 1
            elif mode < 0:
                return 0
        if ph == 4:  # a move
            ph = 6
            if budget != 0:
                budget -= 1
                p[j] += d
                ev = 1
                ph = 5
        elif ph == 5:  # (the move scored)
            ph = 6
            if s > cur:
                ver += 1
                st[10 + a] = s
                st[14 + a] = ver
                if parts == 0:
                    i = 0
                    while i < 4:
                        st[10 + i] = s
                        st[14 + i] = ver
                        i += 1
                improved = 1
                last = j
                lastd = d
            else:
                p[j] -= d
                if again == 0 and d == step:
                    d = -d
                    ph = 4
        elif ph == 6:  # coordinate j done
            ph = 7
            if budget != 0 and (again == 0 or improved != 0):
                j += 1
                ph = 2
        elif ph == 2:  # coordinate j: its part's score at the anchors first
            ph = 7
            if j < 8:
                a = j >> 1
                ph = 3
                if st[14 + a] != ver:
                    ph = 7
                    if budget != 0:
                        budget -= 1
                        ev = 1
                        ph = 10
        elif ph == 3:  # coordinate j: try its moves
            cur = st[10 + a]
            again = 0
            if j == last and improved == 0:
                again = 1
            d = step
            if again != 0:
                d = lastd
            ph = 4
        elif ph == 10:  # (rescored)
            st[10 + a] = s
            st[14 + a] = ver
            ph = 3
        elif ph == 7:  # a pass ends
            ph = 1
            if budget == 0 or (obj == 0 and st[17] == ver and st[13] == n):
                ph = 8
        elif ph == 1:  # a pass starts
            if improved != 0 and passes < 6:
                improved = 0
                passes += 1
                j = j0
                ph = 2
            else:
                rnd += 1
                ph = 0
        elif ph == 0:  # a round starts
            ph = 8
            if rnd < mode:
                step = st[6 + rnd]
                if step >= 1:
                    last = -1
                    lastd = 0
                    improved = 1
                    passes = 0
                    ph = 1
        elif ph == 8:  # the climb ends: the whole template's score at the anchors
            if st[17] == ver:
                s = st[13]
                break
            if budget != 0:
                budget -= 1
            a = 3
            ev = 1
            ph = 9
        elif ph == 11:  # mode 0
            if budget == 0:
                s = -1
                break
            budget -= 1
            a = 3
            ev = 1
            ph = 9
        else:  # 9: (scored)
            break
    st[3] = budget
    return s


def find_alignment(img_buf, thr_buf, tk: int, w: int, h: int, ex16: int, ey16: int, m: int, radius: int, near: int, out_buf) -> int:
    """Alignment pattern (dark dot, light ring at m pixels, dark ring at 2m, 8 directions each)
    around the estimate (ex16, ey16) (1/16 pixel) within `radius` pixels: the best-scoring
    pixels, and among them the plateau nearest the estimate (`near`: how much farther, in
    1/256 px^2, still counts as the same plateau).  out = [sum x, sum y, count]; returns count
    (binary image as in find_rows)."""
    img = ptr8(img_buf)
    thr = ptr8(thr_buf)
    out = ptr32(out_buf)
    sh = tk & 7
    inv = (tk >> 3) & 1
    one = 1 - inv
    bw = tk >> 4
    m2 = 2 * m
    best = 13
    sx = 0
    sy = 0
    sn = 0
    bestd = 0
    x0 = ex16 // 16 - radius
    if x0 < m2:
        x0 = m2
    x1 = ex16 // 16 + radius
    if x1 > w - 1 - m2:
        x1 = w - 1 - m2
    y0 = ey16 // 16 - radius
    if y0 < m2:
        y0 = m2
    y1 = ey16 // 16 + radius
    if y1 > h - 1 - m2:
        y1 = h - 1 - m2
    y = y0
    while y <= y1:
        x = x0
        while x <= x1:
            v = inv
            if img[y * w + x] <= thr[(y >> sh) * bw + (x >> sh)]:
                v = one
            if v == 1:
                # ring at m: light in the 8 directions (s counts the centre and the light
                # ones; stop once it cannot reach 7), then the ring at 2m: dark (adds)
                s = 9
                sg = -1
                rr = m
                while rr <= m2 and s >= 7:
                    dy = -rr
                    while dy <= rr and s >= 7:
                        py = y + dy
                        trow = (py >> sh) * bw
                        dx = -rr
                        while dx <= rr and s >= 7:
                            if dx != 0 or dy != 0:
                                px = x + dx
                                v = inv
                                if img[py * w + px] <= thr[trow + (px >> sh)]:
                                    v = one
                                s += sg * v
                            dx += rr
                        dy += rr
                    sg = 1
                    rr += m
                if s >= best:
                    dx = 16 * x - ex16
                    dy = 16 * y - ey16
                    dd = dx * dx + dy * dy
                    if s > best or dd < bestd - near:
                        best = s
                        bestd = dd
                        sx = x
                        sy = y
                        sn = 1
                    elif dd < bestd + near:
                        sx += x
                        sy += y
                        sn += 1
            x += 1
        y += 1
    out[0] = sx
    out[1] = sy
    out[2] = sn
    return sn


def function_template(size: int, apos_buf, na: int, tmpl_buf) -> int:
    """(row, column, colour) of every module whose colour the standard fixes: both timing
    patterns, the three finders with their separators, and the na alignment patterns centred
    at the (row, column) pairs in apos.  Returns how many."""
    apos = ptr8(apos_buf)
    tmpl = ptr16(tmpl_buf)
    n = 0
    i = 8
    while i < size - 8:
        v = 1 - (i & 1)
        tmpl[3 * n] = 6
        tmpl[3 * n + 1] = i
        tmpl[3 * n + 2] = v
        tmpl[3 * n + 3] = i
        tmpl[3 * n + 4] = 6
        tmpl[3 * n + 5] = v
        n += 2
        i += 1
    # concentric squares: q < 3 the finders (centre module 3 from the corner, radius 4 with the
    # separator, rings 2 and 4 light), then the alignment patterns (radius 2, ring 1 light);
    # light = bit mask of the light rings; modules outside the grid are left out
    q = 0
    while q < 3 + na:
        cy = 3
        cx = 3
        rad = 4
        light = 20
        if q == 1:
            cx = size - 4
        elif q == 2:
            cy = size - 4
        elif q >= 3:
            rad = 2
            light = 2
            cy = apos[2 * q - 6]
            cx = apos[2 * q - 5]
        r = -rad
        while r <= rad:
            c = -rad
            while c <= rad:
                y = cy + r
                x = cx + c
                if y >= 0 and x >= 0 and y < size and x < size:
                    d = r
                    if d < 0:
                        d = -d
                    e = c
                    if e < 0:
                        e = -e
                    if e > d:
                        d = e
                    tmpl[3 * n] = y
                    tmpl[3 * n + 1] = x
                    tmpl[3 * n + 2] = 1 - ((light >> d) & 1)
                    n += 1
                c += 1
            r += 1
        q += 1
    return n


def read_codewords(grid_buf, size: int, mask: int, amap_buf, out_buf) -> int:
    """Unmask and read the codewords (grid: 1 = dark) in the standard's zig-zag order, skipping
    the function modules: finders with separators and format areas, timing patterns, version
    areas (size >= 45), alignment patterns (amap[i] != 0 when row/column i is within 2 of an
    alignment centre; the three pairs on finders lie in finder areas, or next to one: row or
    column size - 9).  Returns how many bytes went into out."""
    grid = ptr8(grid_buf)
    am = ptr8(amap_buf)
    out = ptr8(out_buf)
    s9 = size - 9
    n = 0
    acc = 0
    nbits = 0
    right = size - 1
    up = 1
    while right >= 1:
        if right == 6:
            right = 5
        vert = 0
        while vert < size:
            r = vert
            if up == 1:
                r = size - 1 - vert
            j = 0
            while j < 2:
                c = right - j
                fn = 0
                if r == 6 or c == 6:
                    fn = 1
                elif r < 9 and (c < 9 or c > s9):
                    fn = 1
                elif c < 9 and r > s9:
                    fn = 1
                elif am[r] != 0 and am[c] != 0 and (r > 8 or c != s9) and (c > 8 or r != s9):
                    fn = 1
                elif size >= 45 and ((r < 6 and c > size - 12) or (c < 6 and r > size - 12)):
                    fn = 1
                if fn == 0:
                    bit = grid[r * size + c]
                    if mask == 0:
                        f = (r + c) & 1
                    elif mask == 1:
                        f = r & 1
                    elif mask == 2:
                        f = c % 3
                    elif mask == 3:
                        f = (r + c) % 3
                    elif mask == 4:
                        f = ((r >> 1) + c // 3) & 1
                    elif mask == 7:
                        f = (((r + c) & 1) + (r * c) % 3) & 1
                    else:
                        f = ((r * c) & 1) + (r * c) % 3
                        if mask == 6:
                            f = f & 1
                    if f == 0:
                        bit = bit ^ 1
                    acc = (acc << 1) | bit
                    nbits += 1
                    if nbits == 8:
                        out[n] = acc
                        n += 1
                        acc = 0
                        nbits = 0
                j += 1
            vert += 1
        up = 1 - up
        right -= 2
    return n


def rs_locate(block_buf, n: int, necc: int, gf_buf, work_buf) -> int:
    """Reed-Solomon error location over GF(256) for block[0:n] (highest degree first) with necc
    (<= 31) ECC bytes; gf = the exp table (512 bytes, a^i for i < 512) then the log table (256).
    work (128 bytes) receives the syndromes work[i] = r(a^i) (Horner; returns 0 when all are
    0), the error locator sig = work[32 + i] (low-order first, by Berlekamp-Massey; work[64..]
    is its scratch) and, from the Chien search, the error positions work[96 + j]: the indices k
    with sig(a^-(n-1-k)) == 0, increasing.  Returns the number of errors (the locator's
    degree), or -1 when it exceeds necc // 2 or the locator has fewer roots among the n bytes."""
    block = ptr8(block_buf)
    gf = ptr8(gf_buf)
    wk = ptr8(work_buf)
    nz = 0
    i = 0
    while i < necc:
        acc = 0
        k = 0
        while k < n:
            if acc != 0:
                acc = gf[gf[512 + acc] + i]
            acc = acc ^ block[k]
            k += 1
        wk[i] = acc
        nz = nz | acc
        wk[32 + i] = 0
        wk[64 + i] = 0
        i += 1
    if nz == 0:
        return 0
    wk[32 + necc] = 0
    wk[64 + necc] = 0
    wk[32] = 1
    wk[64] = 1
    ne = 0  # degree of sig
    m = 1
    lb = 0  # log of the last nonzero discrepancy (1 at first)
    r = 0
    while r < necc:
        d = wk[r]
        i = 1
        while i <= ne:
            a = wk[32 + i]
            b = wk[r - i]
            if a != 0 and b != 0:
                d = d ^ gf[gf[512 + a] + gf[512 + b]]
            i += 1
        if d == 0:
            m += 1
        else:
            lc = gf[512 + d] + 255 - lb  # log of d / b
            if lc >= 255:
                lc -= 255
            sw = 0
            if 2 * ne <= r:
                sw = 1
            # sig -= (d / b) x^m prev, from the top down so that prev can take the old sig
            # in the same pass (prev[i - m] is read before it is overwritten)
            i = necc
            while i >= 0:
                a = wk[32 + i]
                if i >= m:
                    b = wk[64 + i - m]
                    if b != 0:
                        wk[32 + i] = a ^ gf[gf[512 + b] + lc]
                if sw == 1:
                    wk[64 + i] = a
                i -= 1
            if sw == 1:
                ne = r + 1 - ne
                lb = gf[512 + d]
                m = 1
            else:
                m += 1
        r += 1
    if 2 * ne > necc:  # (ne >= 1 here: some syndrome is not 0)
        return -1
    # at most ne roots (sig is not 0: sig[0] = 1), at distinct a^-(n-1-k) for n <= 255
    found = 0
    k = 0
    while k < n:
        lx = 255 - (n - 1 - k)  # log of a^-(n-1-k) (255 for a^0: exp repeats from 255 on)
        acc = 0
        i = ne
        while i >= 0:
            if acc != 0:
                acc = gf[gf[512 + acc] + lx]
            acc = acc ^ wk[32 + i]
            i -= 1
        if acc == 0:
            wk[96 + found] = k
            found += 1
        k += 1
    if found != ne:
        return -1
    return found


def rs_forney(acc: int, i: int, block_buf, n: int, necc: int, nerr: int, gf_buf, work_buf) -> int:
    """The error values of the nerr errors rs_locate found (Forney's formula, first root a^0),
    XORed into block[0:n]: work as rs_locate left it (syndromes at 0, the locator at 32, the
    error positions at 96); work[64..] then holds Omega = S(x) sig(x) mod x^necc and work[0..]
    the values.  Returns nerr, or -1 (block unchanged) when sig' vanishes at an error.
    acc and i are scratch (pass 0: see "Registers" above)."""
    block = ptr8(block_buf)
    gf = ptr8(gf_buf)
    wk = ptr8(work_buf)
    i = 0
    while i < necc:  # Omega
        acc = 0
        j = i
        if j > nerr:
            j = nerr
        while j >= 0:
            a = wk[32 + j]
            b = wk[i - j]
            if a != 0 and b != 0:
                acc = acc ^ gf[gf[512 + a] + gf[512 + b]]
            j -= 1
        wk[64 + i] = acc
        i += 1
    f = 0
    while f < nerr:
        p = n - 1 - wk[96 + f]
        lxi = 255 - p  # log of X^-1 (p < 255: 1..255; 255 and 0 name the same element)
        if lxi == 255:
            lxi = 0
        acc = 0  # Omega(X^-1), Horner
        i = necc - 1
        while i >= 0:
            if acc != 0:
                acc = gf[gf[512 + acc] + lxi]
            acc = acc ^ wk[64 + i]
            i -= 1
        den = 0  # sig'(X^-1): the odd-power coefficients (characteristic 2)
        e = 0  # log X^-(i - 1), kept below 255
        i = 1
        while i <= nerr:
            a = wk[32 + i]
            if a != 0:
                den = den ^ gf[gf[512 + a] + e]
            e += lxi
            if e >= 255:
                e -= 255
            e += lxi
            if e >= 255:
                e -= 255
            i += 2
        if den == 0:
            return -1
        if acc != 0:
            e = gf[512 + acc] + 255 - gf[512 + den] + p
            while e >= 255:
                e -= 255
            acc = gf[e]
        wk[f] = acc
        f += 1
    f = 0
    while f < nerr:
        i = wk[96 + f]
        block[i] = block[i] ^ wk[f]
        f += 1
    return nerr


def nearest_word(word: int, words_buf, n: int, out_buf) -> int:
    """Index of the entry of words (n int32) with the fewest bits different from `word` (first
    on a tie); out[0] = that distance."""
    words = ptr32(words_buf)
    out = ptr32(out_buf)
    best = -1
    bestd = 99
    i = 0
    while i < n:
        x = word ^ words[i]
        d = 0
        while x != 0:
            x = x & (x - 1)
            d += 1
        if d < bestd:
            bestd = d
            best = i
        i += 1
    out[0] = bestd
    return best


def grid_word(i: int, p: int, grid_buf, size: int, kind: int) -> int:
    """The raw bits of a format or version copy from a size x size module grid (1 = dark), bit
    i at the standard's position i: kind 0 the format copy around the top-left finder, 1 the
    format copy split between the top-right and bottom-left finders (15 bits each), 2 the
    version copy beside the top-right finder (bit i at row i // 3, column size - 11 + i % 3),
    3 its transpose beside the bottom-left finder (18 bits each).
    i and p are scratch (pass 0: see "Registers" above): the bit and its grid index."""
    g = ptr8(grid_buf)
    n = 15
    if kind >= 2:
        n = 18
    word = 0
    q = 5  # version copies: row (kind 2) or column (kind 3) of bit i, i // 3 ...
    m = 2  # ... and i % 3, counted down with i
    i = n - 1
    while i >= 0:
        if kind == 0:
            if i < 6:
                p = i * size + 8
            elif i < 8:
                p = (i + 1) * size + 8
            elif i == 8:
                p = 8 * size + 7
            else:
                p = 8 * size + 14 - i
        elif kind == 1:
            if i < 8:
                p = 8 * size + size - 1 - i
            else:
                p = (size - 15 + i) * size + 8
        else:
            if kind == 2:
                p = q * size + size - 11 + m
            else:
                p = (size - 11 + m) * size + q
            m -= 1
            if m < 0:
                m = 2
                q -= 1
        word = (word << 1) | g[p]
        i -= 1
    return word


def deinterleave(k: int, idx: int, raw_buf, block_buf, b: int, nb: int, short_data: int, n_short: int, necc: int) -> int:
    """Block b of the nb interleaved blocks of the codewords raw (in reading order) into block:
    its data codewords (short_data, one more for a long block: b >= n_short, the last
    nb - n_short), then its necc ECC codewords; returns the number of data codewords.
    k and idx are scratch (pass 0: see "Registers" above)."""
    raw = ptr8(raw_buf)
    blk = ptr8(block_buf)
    k = 0
    idx = b
    while k < short_data:  # column b of the data part
        blk[k] = raw[idx]
        idx += nb
        k += 1
    if b >= n_short:  # a long block's last data codeword: the extra column
        blk[k] = raw[short_data * nb + b - n_short]
        k += 1
    dlen = k
    idx = short_data * nb + nb - n_short + b  # column b of the ECC part
    e = k + necc
    while k < e:
        blk[k] = raw[idx]
        idx += nb
        k += 1
    return dlen
