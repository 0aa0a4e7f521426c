# Reed-Solomon error correction over GF(256) (polynomial 0x11d, generator roots a^0..a^(n-1)),
# as QR codes use it: syndromes, Berlekamp-Massey and the Chien search (the kernel rs_locate),
# then Forney here.  Corrects up to floor(ecc/2) byte errors per block in place; all work arrays
# are allocated once at import.

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
GF = EXP + LOG  # both tables in one buffer, as the kernel reads them

_SIG = 32  # offsets in the kernel's work buffer: syndromes at 0, the locator, its scratch,
_POS = 96  # the error positions
_work = bytearray(128)
_omega = bytearray(32)
_mag = bytearray(32)


def mul(a, b):
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def correct(block, n, necc):
    """Correct `block[0:n]` (data then ECC, highest degree first) in place.

    Returns the number of corrected bytes, or -1 when the block has more errors than the code
    can fix (the block is then left unchanged)."""
    wk = _work
    nerr = kernels.rs_locate(block, n, necc, GF, wk)
    if nerr <= 0:
        return nerr  # 0: clean; -1: beyond repair
    ex = EXP
    lg = LOG
    # Omega = S(x) * sigma(x) mod x^necc
    omega = _omega
    for i in range(necc):
        acc = 0
        for j in range(min(i, nerr) + 1):
            s = wk[_SIG + j]
            t = wk[i - j]
            if s and t:
                acc ^= ex[lg[s] + lg[t]]
        omega[i] = acc
    # Forney (first root a^0): e = X * Omega(X^-1) / sigma'(X^-1)
    mag = _mag
    for f in range(nerr):
        p = n - 1 - wk[_POS + f]
        lxi = (255 - p) % 255  # log of X^-1
        num = 0
        i = necc - 1
        while i >= 0:  # Horner
            if num:
                num = ex[lg[num] + lxi]
            num ^= omega[i]
            i -= 1
        # sigma'(x): odd-power coefficients shifted down (characteristic 2)
        den = 0
        i = 1
        while i <= nerr:
            s = wk[_SIG + i]
            if s:
                den ^= ex[lg[s] + (lxi * (i - 1)) % 255]
            i += 2
        if den == 0:
            return -1
        if num:
            mag[f] = ex[(lg[num] + 255 - lg[den] + p) % 255]
        else:
            mag[f] = 0
    for f in range(nerr):
        block[wk[_POS + f]] ^= mag[f]
    return nerr
