# From a sampled module grid to corrected data codewords: marks the function patterns, removes
# the data mask, reads the codewords in the standard's zig-zag order, de-interleaves the blocks
# and runs Reed-Solomon on each.  The grid is a bytearray, row-major, bit 0 = dark module;
# bit 1 is set here on function modules (so one buffer serves both purposes).
from . import kernels, rs, tables

_FUNC = 2


def _fill(grid, size, r0, c0, h, w):
    kernels.mark_rect(grid, size, r0, c0, h, w, _FUNC)


def mark_function(grid, size, version):
    _fill(grid, size, 0, 0, 9, 9)  # top-left finder, separator, format info
    _fill(grid, size, 0, size - 8, 9, 8)  # top-right
    _fill(grid, size, size - 8, 0, 8, 9)  # bottom-left (incl. the dark module)
    _fill(grid, size, 6, 0, 1, size)  # timing row
    _fill(grid, size, 0, 6, size, 1)  # timing column
    pos = tables.alignment_positions(version)
    n = len(pos)
    for i in range(n):
        for j in range(n):
            if (i == 0 and j == 0) or (i == 0 and j == n - 1) or (i == n - 1 and j == 0):
                continue  # those would sit on a finder
            _fill(grid, size, pos[i] - 2, pos[j] - 2, 5, 5)
    if version >= 7:
        _fill(grid, size, 0, size - 11, 6, 3)
        _fill(grid, size, size - 11, 0, 3, 6)


def read(grid, size, mask, out):
    """Unmasked codewords in reading order into `out`; returns how many were filled (the
    zig-zag walk with the mask formulas is the kernel read_codewords)."""
    return kernels.read_codewords(grid, size, mask, out)


def correct(raw, version, level, block, data):
    """De-interleave `raw` into blocks, correct each, and write the data codewords into `data`.

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
        dlen = short_data + (0 if b < n_short else 1)
        # data codewords: column i of the interleave, skipping short blocks at their last column
        k = 0
        for i in range(dlen):
            if i < short_data:
                idx = i * nb + b
            else:
                idx = short_data * nb + (b - n_short)
            block[k] = raw[idx]
            k += 1
        ecc_base = short_data * nb + (nb - n_short)
        for i in range(necc):
            block[k] = raw[ecc_base + i * nb + b]
            k += 1
        r = rs.correct(block, k, necc)
        if r < 0:
            return -1, 0
        fixed += r
        for i in range(dlen):
            data[ndata_total + i] = block[i]
        ndata_total += dlen
    return ndata_total, fixed
