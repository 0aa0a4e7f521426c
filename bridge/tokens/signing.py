"""Signature algorithms of the token format: Ed25519 and ECDSA P-256 (raw r||s), via `cryptography`.

Verification needs only public keys (the bridge); `sign_with` is here so the wallet simulator
signs with the same conventions the bridge verifies with (one source for the r||s encoding)."""
from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                            encode_dss_signature)

from scanbridge.tokens.format import ALG_ED25519, ALG_ES256, KID_LEN

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def alg_of_public_key(key) -> int:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ALG_ED25519
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return ALG_ES256
    raise ValueError("unsupported public key type %s (Ed25519 or P-256 only)" % type(key).__name__)


def alg_of_private_key(key) -> int:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ALG_ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return ALG_ES256
    raise ValueError("unsupported private key type %s (Ed25519 or P-256 only)" % type(key).__name__)


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def kid_for(public_key) -> bytes:
    """The default key id: the first 4 bytes of SHA-256 over the key's SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der(public_key)).digest()[:KID_LEN]


def verify(public_key, alg: int, signature: bytes, message: bytes) -> bool:
    """True when `signature` is `public_key`'s signature of `message` under `alg`."""
    try:
        if alg == ALG_ED25519:
            public_key.verify(signature, message)
            return True
        if alg == ALG_ES256:
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
                return False
            public_key.verify(encode_dss_signature(r, s), message, _ECDSA_SHA256)
            return True
    except (InvalidSignature, TypeError):
        return False
    return False


def sign_with(private_key, message: bytes) -> bytes:
    """The 64-byte signature of `message` (wallet side only)."""
    alg = alg_of_private_key(private_key)
    if alg == ALG_ED25519:
        return private_key.sign(message)
    r, s = decode_dss_signature(private_key.sign(message, _ECDSA_SHA256))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def generate_private_key(alg: int):
    if alg == ALG_ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if alg == ALG_ES256:
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError("unknown algorithm %r" % alg)


def format_alg(alg: int) -> str:
    from scanbridge.tokens.format import ALG_NAMES
    return ALG_NAMES.get(alg, str(alg))
