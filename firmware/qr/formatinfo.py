# Format information: the 15-bit BCH(15,5) word that carries the ECC level and the mask.
# Both copies are read from the sampled grid; the nearest valid codeword within distance 3 wins.

from scanbridge_fw.qr import bch

_MASK = 0x5412  # XOR pattern applied to every format word
_GEN = 0x537  # BCH generator polynomial x^10 + x^8 + x^5 + x^4 + x^2 + x + 1


def encode(data5):
    """The masked 15-bit format word for 5 data bits (level << 3 | mask)."""
    rem = data5
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * _GEN)
    return ((data5 << 10) | rem) ^ _MASK


CODEWORDS = bch.table([encode(d) for d in range(32)])


def nearest(word, max_dist=3):
    """(data5, distance) of the valid format word closest to `word`, or (-1, dist) if too far."""
    best, bestd = bch.nearest(word, CODEWORDS)
    if bestd > max_dist:
        return -1, bestd
    return best, bestd


def read_words(grid, size):
    """The two raw 15-bit copies (bit i at the standard's position i) from a module grid
    (bytearray, row-major, 1 = dark)."""
    a = 0
    b = 0
    for i in range(15):
        # copy 1 wraps around the top-left finder
        if i < 6:
            bit = grid[i * size + 8]
        elif i < 8:
            bit = grid[(i + 1) * size + 8]
        elif i == 8:
            bit = grid[8 * size + 7]
        else:
            bit = grid[8 * size + 14 - i]
        a |= bit << i
        # copy 2 is split between the top-right and bottom-left finders
        if i < 8:
            bit = grid[8 * size + size - 1 - i]
        else:
            bit = grid[(size - 15 + i) * size + 8]
        b |= bit << i
    return a, b


def decode(grid, size):
    """(level, mask) from the best of both copies, or (-1, -1)."""
    a, b = read_words(grid, size)
    da, ea = nearest(a)
    db, eb = nearest(b)
    if da < 0 and db < 0:
        return -1, -1
    d = da if (db < 0 or (da >= 0 and ea <= eb)) else db
    return d >> 3, d & 7
