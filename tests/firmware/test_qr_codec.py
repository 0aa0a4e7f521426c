# The symbol-level stages: Reed-Solomon over GF(256), format and version BCH words with bit
# errors, data segments, and the table of blocks (CPython and MicroPython).
from scanbridge_fw.qr import formatinfo, rs, segments, tables
from scanbridge_fw.qr import version as versioninfo


def _rs_encode(data, necc):
    # generator (x - a^0)(x - a^1)...(x - a^(necc-1)), highest degree first
    gen = [1]
    for i in range(necc):
        nxt = [0] * (len(gen) + 1)
        for j in range(len(gen)):
            nxt[j] ^= gen[j]
            nxt[j + 1] ^= rs.mul(gen[j], rs.EXP[i])
        gen = nxt
    msg = list(data) + [0] * necc
    for i in range(len(data)):
        c = msg[i]
        if c:
            for j in range(1, len(gen)):
                msg[i + j] ^= rs.mul(gen[j], c)
    return bytearray(list(data) + msg[len(data):])


def _rand(seed):
    state = [seed]

    def nxt(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n
    return nxt


def test_rs_corrects_up_to_capacity():
    rnd = _rand(1)
    for necc, ndata in ((7, 19), (10, 16), (22, 15), (30, 118), (28, 45)):
        data = bytes(rnd(256) for _ in range(ndata))
        good = _rs_encode(data, necc)
        n = len(good)
        assert rs.correct(bytearray(good), n, necc) == 0
        for nerr in range(1, necc // 2 + 1):
            block = bytearray(good)
            seen = []
            while len(seen) < nerr:
                p = rnd(n)
                if p not in seen:
                    seen.append(p)
                    block[p] ^= 1 + rnd(255)
            assert rs.correct(block, n, necc) == nerr
            assert block == good


def test_rs_refuses_too_many_errors_without_inventing():
    rnd = _rand(2)
    refused = 0
    for trial in range(20):
        data = bytes(rnd(256) for _ in range(20))
        good = _rs_encode(data, 10)
        block = bytearray(good)
        for p in range(8):  # 8 errors > capacity 5
            block[3 * p] ^= 1 + rnd(255)
        before = bytes(block)
        r = rs.correct(block, len(block), 10)
        if r < 0:
            refused += 1
            assert bytes(block) == before  # untouched when refused
        else:
            assert block != good  # a miscorrection can only land on another codeword
    assert refused >= 15


def test_format_word_nearest_within_three_bits():
    for d in range(32):
        word = formatinfo.encode(d)
        assert formatinfo.nearest(word) == (d, 0)
        for flips in ((0,), (3, 9), (1, 7, 14)):
            w = word
            for b in flips:
                w ^= 1 << b
            got, dist = formatinfo.nearest(w)
            assert got == d and dist == len(flips)
    # level M, mask 0 is the famous 101010000010010 word
    assert formatinfo.encode(0) == 0x5412


def _format_grid(size, a, b):
    """A module grid holding the two 15-bit format copies a and b (as read_words reads them)."""
    grid = bytearray(size * size)
    for i in range(15):
        grid[_format_index(size, 1, i)] = (a >> i) & 1
        grid[_format_index(size, 2, i)] = (b >> i) & 1
    return grid


def _format_index(size, copy, i):
    """Grid index of bit i of a format copy (ISO/IEC 18004 figure 25), row-major."""
    if copy == 1:  # around the top-left finder: up column 8, then along row 8 to the left
        row, col = ((i, 8) if i < 6 else (i + 1, 8) if i < 8 else (8, 7) if i == 8 else (8, 14 - i))
    else:  # bits 0-7 along row 8 from the right edge, 8-14 down column 8 near the bottom
        row, col = (8, size - 1 - i) if i < 8 else (size - 15 + i, 8)
    return row * size + col


def test_format_decode_takes_the_better_copy_and_refuses_disagreeing_far_ones():
    size = 25
    for d in (0, 13, 31):
        word = formatinfo.encode(d)
        other = formatinfo.encode((d + 7) % 32)
        grid = _format_grid(size, word, word)
        assert formatinfo.read_words(grid, size) == (word, word)
        assert formatinfo.decode(grid, size) == (d >> 3, d & 7)
        far = word ^ 0b100000100001  # 3 bits off
        assert formatinfo.decode(_format_grid(size, far, word ^ 0b11), size) == (d >> 3, d & 7)
        assert formatinfo.decode(_format_grid(size, other ^ 0b1001, far), size) == ((d + 7) % 32 >> 3, (d + 7) % 8)
        assert formatinfo.decode(_format_grid(size, far, far ^ 0b1), size) == (d >> 3, d & 7)  # 3 and 2 bits
        assert formatinfo.decode(_format_grid(size, far, far), size) == (d >> 3, d & 7)  # agreeing copies
        # both copies 3 bits from different words: a grid sampled off the code
        assert formatinfo.decode(_format_grid(size, far, other ^ 0b111), size) == (-1, -1)
        assert formatinfo.decode(_format_grid(size, far ^ 0b10000, other ^ 0b1111), size) == (-1, -1)


def test_version_word_nearest_within_three_bits():
    assert versioninfo.encode(7) == 0x07C94
    for v in range(7, 41):
        word = versioninfo.encode(v)
        assert versioninfo.nearest(word) == v
        assert versioninfo.nearest(word ^ 0b100000010001) == v
    assert versioninfo.from_dimension(45) == 7
    assert versioninfo.from_dimension(46) == -1


def test_version_words_are_read_from_their_standard_places():
    # ISO/IEC 18004 figure 27: bit i of the top-right copy at row i // 3, column size - 11 + i % 3;
    # the bottom-left copy is its transpose.  Two different words, so a swap would show.
    for v in (7, 15, 40):
        size = 17 + 4 * v
        a = versioninfo.encode(v)
        b = versioninfo.encode(47 - v) ^ 0b101
        grid = bytearray(size * size)
        for i in range(18):
            row, col = i // 3, size - 11 + i % 3
            grid[row * size + col] = (a >> i) & 1
            grid[col * size + row] = (b >> i) & 1
        assert versioninfo.read_words(grid, size) == (a, b)
        assert versioninfo.nearest(a) == v


def test_format_words_are_read_from_their_standard_places():
    for size in (21, 25, 57, 177):
        a = formatinfo.encode(9)
        b = formatinfo.encode(22) ^ 0b100000001
        grid = _format_grid(size, a, b)
        assert formatinfo.read_words(grid, size) == (a, b)
        grid[_format_index(size, 2, 14)] ^= 1  # the last bit of copy 2 is its own module
        assert formatinfo.read_words(grid, size) == (a, b ^ (1 << 14))


def _bits(fields):
    acc = 0
    n = 0
    for value, width in fields:
        acc = (acc << width) | value
        n += width
    pad = (-n) % 8
    acc <<= pad
    n += pad
    out = bytearray(n // 8)
    for i in range(len(out)):
        out[i] = (acc >> (8 * (len(out) - 1 - i))) & 0xFF
    return out


def test_segments_all_modes():
    data = _bits([
        (1, 4), (5, 10), (123, 10), (45, 7),  # numeric "12345"
        (2, 4), (3, 9), (10 * 45 + 11, 11), (36, 6),  # alphanumeric "AB " ...
        (7, 4), (26, 8),  # ECI 26 (UTF-8), bytes pass through
        (4, 4), (2, 8), (0xC3, 8), (0xA9, 8),  # byte "é" in UTF-8
        (8, 4), (1, 8), (0x0D9F, 13),  # Kanji: one character
        (0, 4),
    ])
    got = segments.parse(data, len(data), 1)
    assert got == b"12345AB \xc3\xa9" + b"\x93\x5f"


def test_segments_refuse_malformed():
    assert segments.parse(_bits([(1, 4), (3, 10), (1000, 10)]), 3, 1) is None  # 1000 is no digit triple
    assert segments.parse(_bits([(4, 4), (200, 8), (65, 8)]), 3, 1) is None  # count past the end
    assert segments.parse(_bits([(6, 4), (0, 12)]), 2, 1) is None  # no such mode


def test_block_table_is_consistent():
    for v in range(1, 41):
        total = tables.total_codewords(v)
        for level in range(4):
            nb = tables.num_blocks(v, level)
            necc = tables.ecc_per_block(v, level)
            assert total // nb - necc > 0
    assert tables.total_codewords(1) == 26 and tables.total_codewords(40) == 3706
    assert tables.alignment_positions(7) == [6, 22, 38]
    assert tables.alignment_positions(32) == [6, 34, 60, 86, 112, 138]
