# From a sampled module grid to corrected data codewords: skips the function patterns, removes
# the data mask, reads the codewords in the standard's zig-zag order, de-interleaves the blocks
# and runs Reed-Solomon on each.  The grid is a bytearray, row-major, 1 = dark module.
from . import kernels, rs, tables

_amap = bytearray(177)  # read_codewords' alignment map for _amap_key (size * 64 + version)
_amap_key = [0]


def alignment_map(size, version):
    """bytearray whose entry i is 1 when row/column i is within 2 of an alignment centre (what
    read_codewords needs to skip the alignment patterns); built once per version."""
    key = size * 64 + version
    if _amap_key[0] != key:
        am = _amap
        for i in range(size):
            am[i] = 0
        for p in tables.alignment_positions(version):
            for i in range(p - 2, p + 3):
                am[i] = 1
        _amap_key[0] = key
    return _amap


def read(grid, size, version, mask, out):
    """Unmasked codewords in reading order into `out`; returns how many were filled (the
    zig-zag walk, which skips the function modules, with the mask formulas is the kernel
    read_codewords)."""
    return kernels.read_codewords(grid, size, mask, alignment_map(size, version), out)


def correct(raw, version, level, block, data):
    """De-interleave `raw` into blocks (the kernel deinterleave), correct each, and write the
    data codewords into `data`.

    `block` is scratch of at least 153 bytes.  Returns (data bytes, corrected errors) or
    (-1, 0) when any block is beyond repair."""
    total = tables.total_codewords(version)
    nb = tables.num_blocks(version, level)
    necc = tables.ecc_per_block(version, level)
    if nb == 1:  # one block (small versions): no interleave, corrected in place in `data`
        data[0:total] = memoryview(raw)[0:total]
        r = rs.correct(data, total, necc)
        if r < 0:
            return -1, 0
        return total - necc, r
    short_len = total // nb
    n_short = nb - total % nb
    short_data = short_len - necc
    ndata_total = 0
    fixed = 0
    for b in range(nb):
        dlen = kernels.deinterleave(0, 0, raw, block, b, nb, short_data, n_short, necc)
        r = rs.correct(block, dlen + necc, necc)
        if r < 0:
            return -1, 0
        fixed += r
        data[ndata_total:ndata_total + dlen] = memoryview(block)[0:dlen]
        ndata_total += dlen
    return ndata_total, fixed
