# Nearest-codeword decoding shared by the two BCH-protected fields of a QR code (format
# information, version information): small tables, so an exhaustive search is the simple answer.


def popcount(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


def nearest(word, codewords):
    """(index, distance) of the codeword closest to `word` (first one on a tie)."""
    best = -1
    bestd = 99
    for i in range(len(codewords)):
        d = popcount(word ^ codewords[i])
        if d < bestd:
            bestd = d
            best = i
    return best, bestd
