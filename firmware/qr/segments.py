# Data segments: turns the corrected data codewords into the payload bytes.
# Modes: numeric, alphanumeric, byte, Kanji (emitted as Shift JIS bytes), ECI (designator skipped,
# bytes passed through), structured append (header skipped), FNC1 markers (ignored).

_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


class _Bits:
    def __init__(self, data, nbytes):
        self.data = data
        self.nbits = nbytes * 8
        self.pos = 0

    def left(self):
        return self.nbits - self.pos

    def read(self, n):
        """The next n bits (n <= 16) as an integer, most significant first; bits past the end
        of the buffer read as 0 (callers check left() first)."""
        data = self.data
        pos = self.pos
        i = pos >> 3
        self.pos = pos + n
        # a 24-bit window holds any 16 bits starting within its first byte
        if i + 2 < len(data):
            win = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2]
        else:  # at the buffer's end: the missing bytes read as 0
            win = 0
            for k in range(3):
                win = (win << 8) | (data[i + k] if i + k < len(data) else 0)
        return (win >> (24 - (pos & 7) - n)) & ((1 << n) - 1)


def _count_bits(mode, version):
    if version < 10:
        col = 0
    elif version < 27:
        col = 1
    else:
        col = 2
    if mode == 1:
        return (10, 12, 14)[col]
    if mode == 2:
        return (9, 11, 13)[col]
    if mode == 4:
        return (8, 16, 16)[col]
    return (8, 10, 12)[col]  # Kanji


def parse(data, nbytes, version):
    """Payload bytes of the data codewords `data[0:nbytes]`, or None when the stream is
    malformed (unknown mode, counts that run past the end, bad digits)."""
    bits = _Bits(data, nbytes)
    out = bytearray()
    while bits.left() >= 4:
        mode = bits.read(4)
        if mode == 0:
            break
        if mode == 1:
            n = bits.read(_count_bits(1, version))
            if bits.left() < (n // 3) * 10 + (0, 4, 7)[n % 3]:
                return None
            data = bits.data
            end = len(data) - 2
            while n >= 3:
                pos = bits.pos
                i = pos >> 3
                if i < end:  # bits.read(10) inline: a method call per 3 digits saved
                    v = ((data[i] << 16 | data[i + 1] << 8 | data[i + 2]) >> (14 - (pos & 7))) & 1023
                    bits.pos = pos + 10
                else:
                    v = bits.read(10)
                if v > 999:
                    return None
                out.append(48 + v // 100)
                out.append(48 + (v // 10) % 10)
                out.append(48 + v % 10)
                n -= 3
            if n == 2:
                v = bits.read(7)
                if v > 99:
                    return None
                out.append(48 + v // 10)
                out.append(48 + v % 10)
            elif n == 1:
                v = bits.read(4)
                if v > 9:
                    return None
                out.append(48 + v)
        elif mode == 2:
            n = bits.read(_count_bits(2, version))
            if bits.left() < (n // 2) * 11 + (n % 2) * 6:
                return None
            data = bits.data
            end = len(data) - 2
            while n >= 2:
                pos = bits.pos
                i = pos >> 3
                if i < end:  # bits.read(11) inline
                    v = ((data[i] << 16 | data[i + 1] << 8 | data[i + 2]) >> (13 - (pos & 7))) & 2047
                    bits.pos = pos + 11
                else:
                    v = bits.read(11)
                if v >= 45 * 45:
                    return None
                out.append(_ALNUM[v // 45])
                out.append(_ALNUM[v % 45])
                n -= 2
            if n:
                v = bits.read(6)
                if v >= 45:
                    return None
                out.append(_ALNUM[v])
        elif mode == 4:
            n = bits.read(_count_bits(4, version))
            if bits.left() < n * 8:
                return None
            # whole bytes at a bit offset, read inline (the common mode; no call per byte)
            data = bits.data
            pos = bits.pos
            o = pos & 7
            for _ in range(n):
                i = pos >> 3
                if o:
                    out.append(((data[i] << 8 | data[i + 1]) >> (8 - o)) & 255)
                else:
                    out.append(data[i])
                pos += 8
            bits.pos = pos
        elif mode == 8:
            n = bits.read(_count_bits(8, version))
            if bits.left() < n * 13:
                return None
            for _ in range(n):
                v = bits.read(13)
                v = (v // 0xC0) << 8 | (v % 0xC0)
                v += 0x8140 if v < 0x1F00 else 0xC140
                out.append(v >> 8)
                out.append(v & 0xFF)
        elif mode == 7:
            # ECI designator: 1, 2 or 3 bytes by its leading bits; the payload stays raw bytes
            if bits.left() < 8:
                return None
            first = bits.read(8)
            if first & 0x80:
                if first & 0x40:
                    if first & 0x20:
                        return None
                    bits.read(16)
                else:
                    bits.read(8)
        elif mode == 3:
            if bits.left() < 16:
                return None
            bits.read(16)
        elif mode == 5:
            pass
        elif mode == 9:
            bits.read(8)
        else:
            return None
    return bytes(out)
