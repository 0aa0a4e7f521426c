"""Base45 (RFC 9285): bytes as text drawn from the 45 characters of the QR alphanumeric mode.

Used for the optional text form of a token (see docs/tokens.md): two bytes become three
characters, so the QR encoder can use alphanumeric mode (5.5 bits per character)."""
from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


class Base45Error(ValueError):
    pass


def b45encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    if len(text) % 3 == 1:
        raise Base45Error("base45 length %d leaves a lone character" % len(text))
    try:
        vals = [_INDEX[c] for c in text]
    except KeyError as e:
        raise Base45Error("character %r is not base45" % e.args[0]) from None
    out = bytearray()
    for i in range(0, len(vals), 3):
        chunk = vals[i:i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 2025
            if n > 0xFFFF:
                raise Base45Error("base45 triplet out of range")
            out += n.to_bytes(2, "big")
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise Base45Error("base45 pair out of range")
            out.append(n)
    return bytes(out)
