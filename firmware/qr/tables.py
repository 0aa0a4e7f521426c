# QR symbol tables as data: error-correction layout per version and level, alignment centres,
# and the raw codeword capacity of each version (ISO/IEC 18004 Table 9, written out as bytes).
#
# Rows are indexed by version (1..40) and by the 2-bit level as stored in the format information:
# 0 = M, 1 = L, 2 = H, 3 = Q.  Entry [4 * (version - 1) + level].

MAX_VERSION = 40
LEVEL_NAMES = "MLHQ"

# ECC codewords in each block (every block of a symbol carries the same number).
ECC_PER_BLOCK = (
    b"\x0a\x07\x11\x0d\x10\x0a\x1c\x16\x1a\x0f\x16\x12\x12\x14\x10\x1a"
    b"\x18\x1a\x16\x12\x10\x12\x1c\x18\x12\x14\x1a\x12\x16\x18\x1a\x16"
    b"\x16\x1e\x18\x14\x1a\x12\x1c\x18\x1e\x14\x18\x1c\x16\x18\x1c\x1a"
    b"\x16\x1a\x16\x18\x18\x1e\x18\x14\x18\x16\x18\x1e\x1c\x18\x1e\x18"
    b"\x1c\x1c\x1c\x1c\x1a\x1e\x1c\x1c\x1a\x1c\x1a\x1a\x1a\x1c\x1c\x1e"
    b"\x1a\x1c\x1e\x1c\x1c\x1c\x18\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e"
    b"\x1c\x1a\x1e\x1e\x1c\x1c\x1e\x1c\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e"
    b"\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e"
    b"\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e"
    b"\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e\x1c\x1e\x1e\x1e"
)

# Number of blocks the codewords are split into.
NUM_BLOCKS = (
    b"\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x02\x01\x04\x02"
    b"\x02\x01\x04\x04\x04\x02\x04\x04\x04\x02\x05\x06\x04\x02\x06\x06"
    b"\x05\x02\x08\x08\x05\x04\x08\x08\x05\x04\x0b\x08\x08\x04\x0b\x0a"
    b"\x09\x04\x10\x0c\x09\x04\x10\x10\x0a\x06\x12\x0c\x0a\x06\x10\x11"
    b"\x0b\x06\x13\x10\x0d\x06\x15\x12\x0e\x07\x19\x15\x10\x08\x19\x14"
    b"\x11\x08\x19\x17\x11\x09\x22\x17\x12\x09\x1e\x19\x14\x0a\x20\x1b"
    b"\x15\x0c\x23\x1d\x17\x0c\x25\x22\x19\x0c\x28\x22\x1a\x0d\x2a\x23"
    b"\x1c\x0e\x2d\x26\x1d\x0f\x30\x28\x1f\x10\x33\x2b\x21\x11\x36\x2d"
    b"\x23\x12\x39\x30\x25\x13\x3c\x33\x26\x13\x3f\x35\x28\x14\x42\x38"
    b"\x2b\x15\x46\x3b\x2d\x16\x4a\x3e\x2f\x18\x4d\x41\x31\x19\x51\x44"
)


def ecc_per_block(version, level):
    return ECC_PER_BLOCK[4 * (version - 1) + level]


def num_blocks(version, level):
    return NUM_BLOCKS[4 * (version - 1) + level]


def size_of(version):
    """Modules per side."""
    return 17 + 4 * version


def raw_modules(version):
    """Modules left for data and ECC once function patterns and format/version info are out."""
    n = (16 * version + 128) * version + 64
    if version >= 2:
        k = version // 7 + 2
        n -= (25 * k - 10) * k - 55
        if version >= 7:
            n -= 36
    return n


def total_codewords(version):
    return raw_modules(version) >> 3


def alignment_positions(version):
    """Centre coordinates (row = column sets) of the alignment patterns; [] for version 1.

    The centres are evenly spaced from the far edge back to column 6 with an even step, which
    reproduces the standard's Annex E table (version 32 is the one irregular step)."""
    if version < 2:
        return []
    k = version // 7 + 2
    size = 17 + 4 * version
    if version == 32:
        step = 26
    else:
        step = (version * 4 + k * 2 + 1) // (k * 2 - 2) * 2
    out = [6]
    pos = size - 7
    tail = []
    for _ in range(k - 1):
        tail.append(pos)
        pos -= step
    tail.reverse()
    return out + tail
