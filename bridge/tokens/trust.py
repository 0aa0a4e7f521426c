"""The trust store: the issuer public keys a merchant installs, with key id, validity and revocation.

A JSON file (docs/tokens.md, "Trust store"). It holds public keys only: a file that carries any
private key is refused, so the bridge never holds one. Several keys of one issuer may be valid
at once, which is how an issuer rotates keys without a gap."""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from typing import Iterable, Optional

from cryptography.hazmat.primitives import serialization

from scanbridge.tokens.format import ALG_BY_NAME, ALG_NAMES, KID_LEN
from scanbridge.tokens.signing import alg_of_public_key

FILE_FORMAT = "scanbridge-trust/1"
_KID_RE = re.compile(r"^[0-9a-f]{%d}$" % (2 * KID_LEN))
_PRIVATE_MARKERS = ("PRIVATE KEY", '"private_key"', '"d":', '"secret"')


class TrustStoreError(ValueError):
    """The trust store file or an entry is unusable. `reason` is a stable code."""

    def __init__(self, detail: str, reason: str = "trust_store_invalid"):
        super().__init__(detail)
        self.reason = reason


def parse_time(value) -> Optional[float]:
    """Epoch seconds from an int/float or an ISO 8601 string (UTC when no offset); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TrustStoreError("time %r is not a time" % value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            t = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise TrustStoreError("time %r is not ISO 8601" % value) from None
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return t.timestamp()
    raise TrustStoreError("time %r is not a time" % (value,))


def format_time(t: Optional[float]) -> Optional[str]:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TrustedKey:
    kid: bytes
    alg: int
    public_key: object  # a cryptography public key
    issuer: str = ""
    not_before: Optional[float] = None
    not_after: Optional[float] = None
    revoked: bool = False
    revoked_at: Optional[float] = None
    revoked_reason: str = ""

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    def valid_at(self, t: float) -> bool:
        return ((self.not_before is None or t >= self.not_before)
                and (self.not_after is None or t <= self.not_after))

    def entry(self) -> dict:
        pem = self.public_key.public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        d = {"kid": self.kid_hex, "alg": ALG_NAMES[self.alg], "issuer": self.issuer,
             "public_key": pem.decode("ascii"), "not_before": format_time(self.not_before),
             "not_after": format_time(self.not_after), "revoked": self.revoked}
        if self.revoked:
            d["revoked_at"] = format_time(self.revoked_at)
            d["revoked_reason"] = self.revoked_reason
        return d

    @classmethod
    def from_entry(cls, e: dict) -> "TrustedKey":
        if not isinstance(e, dict):
            raise TrustStoreError("a key entry must be an object, got %s" % type(e).__name__)
        for field in ("private_key", "d", "secret"):
            if field in e:
                raise TrustStoreError("entry carries a private key (%r): the bridge holds public keys only"
                                      % field, "private_key_refused")
        kid_hex = str(e.get("kid", "")).lower()
        if not _KID_RE.match(kid_hex):
            raise TrustStoreError("kid %r must be %d hex digits" % (e.get("kid"), 2 * KID_LEN))
        pem = e.get("public_key")
        if not isinstance(pem, str) or not pem.strip():
            raise TrustStoreError("key %s has no public_key (PEM)" % kid_hex)
        if "PRIVATE KEY" in pem:
            raise TrustStoreError("key %s is a private key: the bridge holds public keys only" % kid_hex,
                                  "private_key_refused")
        try:
            key = serialization.load_pem_public_key(pem.encode("ascii"))
            alg = alg_of_public_key(key)
        except (ValueError, TypeError, UnicodeEncodeError) as ex:
            raise TrustStoreError("key %s: public_key unreadable: %s" % (kid_hex, ex)) from None
        declared = e.get("alg")
        if declared is not None and ALG_BY_NAME.get(str(declared).lower()) != alg:
            raise TrustStoreError("key %s: alg %r does not match its %s public key"
                                  % (kid_hex, declared, ALG_NAMES[alg]))
        nb, na = parse_time(e.get("not_before")), parse_time(e.get("not_after"))
        if nb is not None and na is not None and na <= nb:
            raise TrustStoreError("key %s: not_after is not after not_before" % kid_hex)
        revoked = e.get("revoked", False)
        if not isinstance(revoked, bool):
            raise TrustStoreError("key %s: revoked must be true or false" % kid_hex)
        return cls(bytes.fromhex(kid_hex), alg, key, str(e.get("issuer", "")), nb, na, revoked,
                   parse_time(e.get("revoked_at")), str(e.get("revoked_reason", "")))


class TrustStore:
    """Issuer keys by kid. Thread-safe reads; `maybe_reload` picks up a file the merchant replaced
    (checked at most once per `reload_every_s`)."""

    def __init__(self, keys: Iterable[TrustedKey] = (), path: Optional[str] = None,
                 reload_every_s: float = 1.0):
        self._keys: dict[bytes, TrustedKey] = {}
        for k in keys:
            self._put(k)
        self.path = path
        self.reload_every_s = reload_every_s
        self.last_error: Optional[str] = None
        self._stamp = self._file_stamp()
        self._last_check = time.monotonic()
        self._lock = threading.Lock()

    def _put(self, key: TrustedKey) -> None:
        if key.kid in self._keys:
            raise TrustStoreError("kid %s appears twice" % key.kid_hex, "duplicate_kid")
        self._keys[key.kid] = key

    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, text: str, path: Optional[str] = None) -> "TrustStore":
        for marker in _PRIVATE_MARKERS:
            if marker in text:
                raise TrustStoreError("trust store %s contains private key material (%s); the bridge "
                                      "holds public keys only: install the public entry from "
                                      "`scanbridge mint keygen`" % (path or "", marker.strip('":')),
                                      "private_key_refused")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise TrustStoreError("trust store %s is not JSON: %s" % (path or "", e)) from None
        if isinstance(doc, list):
            entries = doc
        elif isinstance(doc, dict) and "keys" in doc:
            if doc.get("format", FILE_FORMAT) != FILE_FORMAT:
                raise TrustStoreError("trust store format %r (want %r)" % (doc.get("format"), FILE_FORMAT))
            entries = doc["keys"]
        elif isinstance(doc, dict) and "kid" in doc:
            entries = [doc]
        else:
            raise TrustStoreError("trust store %s: expected {\"keys\": [...]}" % (path or ""))
        if not isinstance(entries, list):
            raise TrustStoreError("trust store: keys must be a list")
        return cls([TrustedKey.from_entry(e) for e in entries], path=path)

    @classmethod
    def load(cls, path: str) -> "TrustStore":
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise TrustStoreError("trust store %s does not exist (create it with `scanbridge trust add`)"
                                  % path, "trust_store_missing") from None
        except (OSError, UnicodeDecodeError) as e:
            raise TrustStoreError("trust store %s unreadable: %s" % (path, e)) from None
        return cls.from_json(text, path=path)

    def _file_stamp(self):
        if not self.path:
            return None
        try:
            st = os.stat(self.path)
            return (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return None

    def maybe_reload(self) -> bool:
        """Reload from `path` when the file changed. A broken new file keeps the old keys and sets
        `last_error` (the trust CLI writes atomically and validates, so this needs a hand edit)."""
        if not self.path or time.monotonic() - self._last_check < self.reload_every_s:
            return False
        self._last_check = time.monotonic()
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            fresh = TrustStore.load(self.path)
        except TrustStoreError as e:
            self.last_error = "%s: %s" % (e.reason, e)
            self._stamp = stamp
            return False
        with self._lock:
            self._keys = fresh._keys
            self._stamp = stamp
            self.last_error = None
        return True

    def get(self, kid: bytes) -> Optional[TrustedKey]:
        return self._keys.get(kid)

    def keys(self) -> list[TrustedKey]:
        return sorted(self._keys.values(), key=lambda k: (k.issuer, k.not_before or 0, k.kid_hex))

    def __len__(self) -> int:
        return len(self._keys)

    # -- changing (the trust CLI) -------------------------------------------------------------
    def add(self, key: TrustedKey, replace_existing: bool = False) -> None:
        with self._lock:
            if replace_existing:
                self._keys.pop(key.kid, None)
            self._put(key)

    def revoke(self, kid: bytes, reason: str = "", at: Optional[float] = None) -> TrustedKey:
        with self._lock:
            key = self._keys.get(kid)
            if key is None:
                raise TrustStoreError("no key %s in the trust store" % kid.hex(), "unknown_key")
            key = replace(key, revoked=True, revoked_at=time.time() if at is None else at,
                          revoked_reason=reason)
            self._keys[kid] = key
            return key

    def to_json(self) -> str:
        return json.dumps({"format": FILE_FORMAT, "keys": [k.entry() for k in self.keys()]}, indent=2) + "\n"

    def save(self, path: Optional[str] = None) -> str:
        """Write atomically (temp file + rename) so a bridge reloading it never sees half a file."""
        path = path or self.path
        if not path:
            raise TrustStoreError("no path to save the trust store to")
        text = self.to_json()
        TrustStore.from_json(text)  # what we write must load
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".trust-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.path = path
        return path


def default_path() -> str:
    """Where the bridge and `scanbridge trust` look unless told: $SCANBRIDGE_TRUST, else
    ~/.config/scanbridge/trust.json."""
    return os.environ.get("SCANBRIDGE_TRUST") or os.path.join(
        os.path.expanduser("~"), ".config", "scanbridge", "trust.json")
