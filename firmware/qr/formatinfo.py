# Format information: the 15-bit BCH(15,5) word that carries the ECC level and the mask.
# Both copies are read from the sampled grid; the nearest valid codeword within distance 3 wins.

from array import array

from scanbridge_fw.qr import bch, kernels

_MASK = 0x5412  # XOR pattern applied to every format word
_GEN = 0x537  # BCH generator polynomial x^10 + x^8 + x^5 + x^4 + x^2 + x + 1


def encode(data5):
    """The masked 15-bit format word for 5 data bits (level << 3 | mask)."""
    rem = data5
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * _GEN)
    return ((data5 << 10) | rem) ^ _MASK


CODEWORDS = bch.table([encode(d) for d in range(32)])
_OUT = array("i", (0,))


def nearest(word, max_dist=3):
    """(data5, distance) of the valid format word closest to `word`, or (-1, dist) if too far."""
    best, bestd = bch.nearest(word, CODEWORDS)
    if bestd > max_dist:
        return -1, bestd
    return best, bestd


def read_words(grid, size):
    """The two raw 15-bit copies (bit i at the standard's position i) from a module grid
    (bytearray, row-major, 1 = dark): copy 1 wraps around the top-left finder, copy 2 is split
    between the top-right and bottom-left finders (the kernel grid_word)."""
    return kernels.grid_word(0, 0, grid, size, 0), kernels.grid_word(0, 0, grid, size, 1)


def decode(grid, size):
    """(level, mask) from the best of both copies, or (-1, -1)."""
    a, b = read_words(grid, size)
    # nearest() of each copy, the kernel called directly (this runs for every sampled grid)
    out = _OUT
    da = kernels.nearest_word(a, CODEWORDS, 32, out)
    ea = out[0]
    db = kernels.nearest_word(b, CODEWORDS, 32, out)
    eb = out[0]
    if ea >= 3 and eb >= 3 and da != db:
        # the copies disagree and neither is within two bits of a codeword: a grid sampled off
        # the code (most grids that fail Reed-Solomon look like this), not worth reading
        return -1, -1
    if ea > 3:
        if eb > 3:
            return -1, -1
        d = db
    elif eb > 3 or ea <= eb:
        d = da
    else:
        d = db
    return d >> 3, d & 7
