# Version information: the 18-bit BCH(18,6) word present in versions 7 and up, twice (beside the
# top-right and the bottom-left finder). Nearest valid word within distance 3 wins.

from scanbridge_fw.qr import bch, kernels

_GEN = 0x1F25  # x^12 + x^11 + x^10 + x^9 + x^8 + x^5 + x^2 + 1


def encode(version):
    rem = version
    for _ in range(12):
        rem = (rem << 1) ^ ((rem >> 11) * _GEN)
    return (version << 12) | rem


CODEWORDS = bch.table([encode(v) for v in range(7, 41)])


def nearest(word, max_dist=3):
    """The version (7..40) whose word is closest to `word`, or -1 if more than max_dist bits off."""
    i, d = bch.nearest(word, CODEWORDS)
    return -1 if d > max_dist else i + 7


def from_dimension(size):
    """Version implied by a side of `size` modules, or -1."""
    if size < 21 or size > 177 or (size - 17) % 4:
        return -1
    return (size - 17) // 4


def read_words(grid, size):
    """Both raw copies: bit i sits at column size-11+i%3, row i//3 (top right) and transposed
    (bottom left); the kernel grid_word reads them."""
    return kernels.grid_word(0, 0, grid, size, 2), kernels.grid_word(0, 0, grid, size, 3)
