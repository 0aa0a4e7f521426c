# Perspective transform from module coordinates to image pixels: the 8-parameter homography
# through four point pairs, solved once per candidate code, then handed to the sampling kernel
# as fixed-point integers (no floats in the per-module loop).

_SCALE = 1 << 18  # keeps |numerators| below 2**28 for frames up to VGA


def solve(src, dst):
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


def apply(h, u, v):
    """Image point of module coordinates (u, v)."""
    d = h[6] * u + h[7] * v + 1.0
    return (h[0] * u + h[1] * v + h[2]) / d, (h[3] * u + h[4] * v + h[5]) / d


def to_fixed(h, coef):
    """Fill the int32 array `coef` (9 entries) for kernels.sample_grid: the same map in
    half-module units (u' = 2u), numerator and denominator scaled by 2**18."""
    s = _SCALE
    for i in range(8):
        if not -4096.0 < h[i] < 4096.0 or (i >= 6 and not -0.5 < h[i] < 0.5):
            return False  # a degenerate fit; its fixed-point form would overflow
    coef[0] = int(h[0] * s / 2)
    coef[1] = int(h[1] * s / 2)
    coef[2] = int(h[2] * s)
    coef[3] = int(h[3] * s / 2)
    coef[4] = int(h[4] * s / 2)
    coef[5] = int(h[5] * s)
    coef[6] = int(h[6] * s / 2)
    coef[7] = int(h[7] * s / 2)
    coef[8] = s
    return True
