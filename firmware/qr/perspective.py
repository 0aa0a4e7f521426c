# Perspective transform through four arbitrary point pairs (float, 8x8 solve): used once per
# candidate size to place the far corner from the alignment pattern.  The fit itself and the
# sampling use the integer unit-square map of kernels.quad_coef.


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
