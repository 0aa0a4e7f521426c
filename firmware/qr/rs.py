# Reed-Solomon error correction over GF(256) (polynomial 0x11d, generator roots a^0..a^(n-1)),
# as QR codes use it: syndromes, Berlekamp-Massey and the Chien search (the kernel rs_locate),
# then Forney (the kernel rs_forney).  Corrects up to floor(ecc/2) byte errors per block in
# place; all work arrays are allocated once at import.

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

# the kernels' work buffer: syndromes at 0, the locator at 32, its scratch at 64, the error
# positions at 96 (rs_forney then puts Omega at 64 and the error values at 0)
_work = bytearray(128)


def mul(a, b):
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def correct(block, n, necc):
    """Correct `block[0:n]` (data then ECC, highest degree first) in place.

    Returns the number of corrected bytes, or -1 when the block has more errors than the code
    can fix (the block is then left unchanged).  Both steps are kernels: rs_locate (syndromes,
    Berlekamp-Massey, Chien search) and rs_forney (the error values, applied)."""
    wk = _work
    nerr = kernels.rs_locate(block, n, necc, GF, wk)
    if nerr <= 0:
        return nerr  # 0: clean; -1: beyond repair
    return kernels.rs_forney(0, 0, block, n, necc, nerr, GF, wk)
