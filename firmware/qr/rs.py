# Reed-Solomon error correction over GF(256) (polynomial 0x11d, generator roots a^0..a^(n-1)),
# as QR codes use it: syndromes, Berlekamp-Massey, Chien search, Forney. Corrects up to
# floor(ecc/2) byte errors per block in place; all work arrays are allocated once at import.

from . import kernels

EXP = bytearray(512)
LOG = bytearray(256)


def _init_tables():
    x = 1
    for i in range(255):
        EXP[i] = x
        LOG[x] = i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        EXP[i] = EXP[i - 255]


_init_tables()

_MAXE = 72  # largest ECC count per block is 30; headroom for the BM arrays
_syn = bytearray(_MAXE)
_sig = bytearray(_MAXE)
_prev = bytearray(_MAXE)
_tmp = bytearray(_MAXE)
_omega = bytearray(_MAXE)
_pos = bytearray(_MAXE)


def mul(a, b):
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def _poly_eval(p, n, x):
    """Evaluate p[0] + p[1] x + ... + p[n-1] x^(n-1) at x (low-order first)."""
    if x == 0:
        return p[0]
    lx = LOG[x]
    acc = 0
    i = n - 1
    while i >= 0:
        # Horner: acc = acc * x + p[i]
        if acc:
            acc = EXP[LOG[acc] + lx]
        acc ^= p[i]
        i -= 1
    return acc


def correct(block, n, necc):
    """Correct `block[0:n]` (data then ECC, highest degree first) in place.

    Returns the number of corrected bytes, or -1 when the block has more errors than the code
    can fix (the block is then left unchanged)."""
    syn = _syn
    nonzero = kernels.rs_syndromes(block, n, necc, EXP, LOG, syn)  # r(a^i), Horner
    if not nonzero:
        return 0
    # Berlekamp-Massey: error locator sigma (low-order first).
    sig = _sig
    prev = _prev
    tmp = _tmp
    for i in range(necc + 1):
        sig[i] = 0
        prev[i] = 0
    sig[0] = 1
    prev[0] = 1
    nerr = 0
    m = 1
    b = 1
    for r in range(necc):
        d = syn[r]
        for i in range(1, nerr + 1):
            if sig[i] and syn[r - i]:
                d ^= EXP[LOG[sig[i]] + LOG[syn[r - i]]]
        if d == 0:
            m += 1
            continue
        coef = EXP[LOG[d] + 255 - LOG[b]]  # d / b
        lc = LOG[coef]
        if 2 * nerr <= r:
            for i in range(necc + 1):
                tmp[i] = sig[i]
            for i in range(necc + 1 - m):
                if prev[i]:
                    sig[i + m] ^= EXP[LOG[prev[i]] + lc]
            nerr = r + 1 - nerr
            for i in range(necc + 1):
                prev[i] = tmp[i]
            b = d
            m = 1
        else:
            for i in range(necc + 1 - m):
                if prev[i]:
                    sig[i + m] ^= EXP[LOG[prev[i]] + lc]
            m += 1
    if nerr == 0 or 2 * nerr > necc:
        return -1
    # Chien search: byte k has degree n-1-k; it is in error when sigma(a^-(n-1-k)) == 0
    # (sigma evaluated by Horner, inline: no call per byte).
    found = 0
    pos = _pos
    ex = EXP
    lg = LOG
    for k in range(n):
        lx = (255 - (n - 1 - k)) % 255  # log of a^-(n-1-k)
        acc = 0
        i = nerr
        while i >= 0:
            if acc:
                acc = ex[lg[acc] + lx]
            acc ^= sig[i]
            i -= 1
        if acc == 0:
            if found >= nerr:
                return -1
            pos[found] = k
            found += 1
    if found != nerr:
        return -1
    # Omega = S(x) * sigma(x) mod x^necc
    omega = _omega
    for i in range(necc):
        acc = 0
        for j in range(min(i, nerr) + 1):
            if sig[j] and syn[i - j]:
                acc ^= EXP[LOG[sig[j]] + LOG[syn[i - j]]]
        omega[i] = acc
    # Forney (first root a^0): e = X * Omega(X^-1) / sigma'(X^-1)
    for f in range(found):
        k = pos[f]
        p = n - 1 - k
        xinv = EXP[(255 - p) % 255]
        num = _poly_eval(omega, necc, xinv)
        # sigma'(x): odd-power coefficients shifted down (characteristic 2)
        den = 0
        i = 1
        lxi = LOG[xinv]
        while i <= nerr:
            if sig[i]:
                den ^= EXP[LOG[sig[i]] + (lxi * (i - 1)) % 255]
            i += 2
        if den == 0:
            return -1
        if num:
            mag = EXP[(LOG[num] + 255 - LOG[den] + p) % 255]
        else:
            mag = 0
        tmp[f] = mag
    for f in range(found):
        block[pos[f]] ^= tmp[f]
    return found
