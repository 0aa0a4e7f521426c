# Nearest-codeword decoding shared by the two BCH-protected fields of a QR code (format
# information, version information): small tables, so an exhaustive search is the simple answer.
from array import array

from . import kernels


def table(words):
    """The codewords as the int32 array nearest() searches."""
    return array("i", words)


_OUT = array("i", (0,))


def nearest(word, codewords):
    """(index, distance) of the codeword closest to `word` (first one on a tie); `codewords`
    from table() (the search is the kernel nearest_word)."""
    i = kernels.nearest_word(word, codewords, len(codewords), _OUT)
    return i, _OUT[0]
