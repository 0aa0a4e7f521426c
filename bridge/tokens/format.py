"""The signed one-time payment token: its binary layout, strict parser and builder (docs/tokens.md).

One module for both sides: the wallet simulator builds tokens with `build`, the bridge reads them
with `parse`, so what is minted is exactly what is verified. The parser checks structure only;
signatures, keys, clocks and the ledger belong to scanbridge.tokens.verify."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Callable, Optional

from scanbridge.tokens.base45 import Base45Error, b45decode, b45encode

FORMAT_VERSION = 1
ALG_ED25519 = 1
ALG_ES256 = 2  # ECDSA P-256 with SHA-256, signature as raw r||s (32 + 32 bytes)
ALG_NAMES = {ALG_ED25519: "Ed25519", ALG_ES256: "ES256"}
ALG_BY_NAME = {"ed25519": ALG_ED25519, "es256": ALG_ES256, "p256": ALG_ES256, "p-256": ALG_ES256}

FLAG_AMOUNT = 0x01
KNOWN_FLAGS = FLAG_AMOUNT

KID_LEN = 4
TOKEN_ID_LEN = 12  # 96 random bits; the ledger key is kid || token id
SIG_LEN = 64
MAX_PAYER_LEN = 32
MAX_LIFETIME_S = 0xFFFF

# The signature covers this prefix followed by every byte before the signature. The prefix keeps
# a token signature from ever being valid for anything else an issuer key might sign.
DOMAIN = b"scanbridge-token-v1\x00"

# version/alg(1) flags(1) kid(4) token id(12) issued-at(4) lifetime(2) payer length(1)
_HEAD = struct.Struct(">BB4s12sIHB")
_AMOUNT = struct.Struct(">I3s")
MIN_LEN = _HEAD.size + SIG_LEN
MAX_LEN = _HEAD.size + MAX_PAYER_LEN + _AMOUNT.size + SIG_LEN

TEXT_PREFIX = b"SB1:"  # the optional text form: "SB1:" + base45(binary token), alphanumeric mode


class TokenError(ValueError):
    """A payload that is not a well-formed token. `reason` is the stable code ("malformed")."""

    def __init__(self, detail: str, reason: str = "malformed"):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Token:
    version: int
    alg: int
    kid: bytes
    token_id: bytes
    issued_at: int  # unix seconds, issuer's clock
    lifetime: int  # seconds
    payer: bytes  # opaque handle, meaningful only to the issuer
    amount_cap: Optional[int]  # minor units (cents), or None
    currency: Optional[str]  # ISO 4217 letters when amount_cap is set
    signature: bytes
    signed: bytes  # the bytes the signature covers, without DOMAIN
    raw: bytes  # the whole binary token

    @property
    def expires_at(self) -> int:
        return self.issued_at + self.lifetime

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    @property
    def alg_name(self) -> str:
        return ALG_NAMES.get(self.alg, str(self.alg))

    @property
    def ledger_key(self) -> bytes:
        return self.kid + self.token_id

    def signing_input(self) -> bytes:
        return DOMAIN + self.signed

    def summary(self) -> dict:
        d = {"kid": self.kid_hex, "alg": self.alg_name, "token_id": self.token_id.hex(),
             "payer": self.payer.hex(), "issued_at": self.issued_at, "lifetime": self.lifetime,
             "expires_at": self.expires_at, "bytes": len(self.raw)}
        if self.amount_cap is not None:
            d["amount_cap"] = self.amount_cap
            d["currency"] = self.currency
        return d


def unwrap(payload: bytes) -> bytes:
    """The binary token inside a QR payload: the payload itself (byte mode, the canonical form)
    or the text form "SB1:" + base45."""
    if payload[:len(TEXT_PREFIX)] == TEXT_PREFIX:
        try:
            return b45decode(payload[len(TEXT_PREFIX):].decode("ascii"))
        except (UnicodeDecodeError, Base45Error) as e:
            raise TokenError("text form: %s" % e) from None
    return payload


def parse(payload: bytes) -> Token:
    """Parse a QR payload into a Token, or raise TokenError("malformed"). Never verifies."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TokenError("payload is %s, not bytes" % type(payload).__name__)
    data = unwrap(bytes(payload))
    n = len(data)
    if n < MIN_LEN:
        raise TokenError("%d bytes, a token has at least %d" % (n, MIN_LEN))
    if n > MAX_LEN:
        raise TokenError("%d bytes, a token has at most %d" % (n, MAX_LEN))
    va, flags, kid, token_id, issued_at, lifetime, payer_len = _HEAD.unpack_from(data, 0)
    version, alg = va >> 4, va & 0x0F
    if version != FORMAT_VERSION:
        raise TokenError("format version %d (this bridge reads %d)" % (version, FORMAT_VERSION))
    if alg not in ALG_NAMES:
        raise TokenError("unknown algorithm %d" % alg)
    if flags & ~KNOWN_FLAGS:
        raise TokenError("unknown flags 0x%02x" % flags)
    if payer_len > MAX_PAYER_LEN:
        raise TokenError("payer handle of %d bytes (max %d)" % (payer_len, MAX_PAYER_LEN))
    if lifetime == 0:
        raise TokenError("lifetime 0")
    pos = _HEAD.size
    want = pos + payer_len + (_AMOUNT.size if flags & FLAG_AMOUNT else 0) + SIG_LEN
    if n != want:
        raise TokenError("%d bytes where the header announces %d" % (n, want))
    payer = data[pos:pos + payer_len]
    pos += payer_len
    amount_cap = currency = None
    if flags & FLAG_AMOUNT:
        amount_cap, cur = _AMOUNT.unpack_from(data, pos)
        pos += _AMOUNT.size
        if not all(0x41 <= c <= 0x5A for c in cur):
            raise TokenError("currency %r is not three capital letters" % cur)
        currency = cur.decode("ascii")
    return Token(version, alg, kid, token_id, issued_at, lifetime, payer, amount_cap, currency,
                 data[pos:], data[:pos], data)


def pack_unsigned(alg: int, kid: bytes, token_id: bytes, issued_at: int, lifetime: int,
                  payer: bytes = b"", amount_cap: Optional[int] = None,
                  currency: Optional[str] = None) -> bytes:
    """The token bytes before the signature (what DOMAIN + these bytes the issuer signs)."""
    if alg not in ALG_NAMES:
        raise ValueError("unknown algorithm %r" % alg)
    if len(kid) != KID_LEN or len(token_id) != TOKEN_ID_LEN:
        raise ValueError("kid must be %d bytes and token id %d" % (KID_LEN, TOKEN_ID_LEN))
    if len(payer) > MAX_PAYER_LEN:
        raise ValueError("payer handle longer than %d bytes" % MAX_PAYER_LEN)
    if not 0 < lifetime <= MAX_LIFETIME_S:
        raise ValueError("lifetime must be 1..%d s" % MAX_LIFETIME_S)
    if not 0 <= issued_at <= 0xFFFFFFFF:
        raise ValueError("issued_at out of range")
    flags = 0
    tail = b""
    if amount_cap is not None:
        cur = (currency or "").encode("ascii")
        if len(cur) != 3 or not cur.isalpha() or not cur.isupper():
            raise ValueError("currency must be three capital letters (ISO 4217), got %r" % currency)
        if not 0 <= amount_cap <= 0xFFFFFFFF:
            raise ValueError("amount cap out of range")
        flags |= FLAG_AMOUNT
        tail = _AMOUNT.pack(amount_cap, cur)
    return _HEAD.pack((FORMAT_VERSION << 4) | alg, flags, kid, token_id, issued_at, lifetime,
                      len(payer)) + payer + tail


def build(sign: Callable[[bytes], bytes], alg: int, kid: bytes, issued_at: int, lifetime: int,
          payer: bytes = b"", amount_cap: Optional[int] = None, currency: Optional[str] = None,
          token_id: Optional[bytes] = None) -> bytes:
    """A complete binary token. `sign(message) -> 64-byte signature` is given DOMAIN + body."""
    body = pack_unsigned(alg, kid, token_id or os.urandom(TOKEN_ID_LEN), issued_at, lifetime,
                         payer, amount_cap, currency)
    sig = sign(DOMAIN + body)
    if len(sig) != SIG_LEN:
        raise ValueError("signature of %d bytes (want %d)" % (len(sig), SIG_LEN))
    return body + sig


def to_text(token: bytes) -> bytes:
    """The text form: for channels that carry only QR alphanumeric text."""
    return TEXT_PREFIX + b45encode(token).encode("ascii")
