"""Redis single-use ledger: SET key NX with an expiry, for several bridges sharing one guarantee.

SET NX is atomic on the server, so of any number of bridges claiming one key exactly one gets
True. The expiry is sent relative (PX) so a Redis clock that differs from ours cannot make a
claim expire early. Durability is Redis's: with `appendonly yes` + `appendfsync always` a claim
survives a Redis power cut; with the common `everysec` up to a second of claims can be lost."""
from __future__ import annotations

import threading
import time
from typing import Optional, Sequence

import redis as _redis

from scanbridge.ledger import LedgerError


class RedisLedger:
    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "scanbridge:claim:",
                 clock=time.time, socket_timeout: float = 2.0):
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self._r = _redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                        socket_connect_timeout=socket_timeout)
        self._lock = threading.Lock()
        self.warning: Optional[str] = None

    def durability(self) -> Optional[str]:
        """A warning when the server's persistence can lose accepted claims, else None (also
        None when CONFIG is not allowed, as on many managed Redis services)."""
        try:
            aof = self._r.config_get("appendonly").get("appendonly")
            fsync = self._r.config_get("appendfsync").get("appendfsync")
        except _redis.RedisError:
            return None
        if aof != "yes":
            self.warning = ("Redis at %s runs with appendonly=%s: a Redis restart forgets the claims "
                            "since its last snapshot (set appendonly yes, appendfsync always)" % (self.url, aof))
        elif fsync != "always":
            self.warning = ("Redis at %s syncs its log %s: a Redis crash can forget up to ~1 s of claims"
                            % (self.url, fsync))
        return self.warning

    def _ttl_ms(self, expires_at: float, now: float) -> int:
        return max(1000, int((expires_at - now) * 1000) + 1)

    def claim_many(self, items: Sequence[tuple]) -> list:
        if not items:
            return []
        now = self.clock()
        owners = [bytes(it[2]) if len(it) > 2 and it[2] else None for it in items]
        try:
            pipe = self._r.pipeline(transaction=False)
            for (key, expires_at, *_), owner in zip(items, owners):
                # the value is the owner (or the claim time when there is none): SET NX is the claim
                pipe.set(self.prefix + bytes(key).hex(), b"o:" + owner if owner else b"%d" % int(now),
                         nx=True, px=self._ttl_ms(expires_at, now))
            out = [bool(x) for x in pipe.execute()]
            again = [i for i, won in enumerate(out) if not won and owners[i] is not None]
            if again:  # refused: granted anyway when the holder is this same owner
                pipe = self._r.pipeline(transaction=False)
                for i in again:
                    pipe.get(self.prefix + bytes(items[i][0]).hex())
                for i, held in zip(again, pipe.execute()):
                    out[i] = held == b"o:" + owners[i]
            return out
        except _redis.RedisError as e:
            raise LedgerError("Redis ledger %s: %s" % (self.url, e)) from e

    def claim(self, key: bytes, expires_at: float, owner: Optional[bytes] = None) -> bool:
        return self.claim_many([(key, expires_at, owner)])[0]

    def is_claimed(self, key: bytes) -> bool:
        try:
            return bool(self._r.exists(self.prefix + bytes(key).hex()))
        except _redis.RedisError as e:
            raise LedgerError("Redis ledger %s: %s" % (self.url, e)) from e

    def prune(self, now: Optional[float] = None) -> int:
        return 0  # Redis expires keys itself

    def clear(self) -> int:
        """Delete every key under our prefix (tests)."""
        n = 0
        for k in self._r.scan_iter(match=self.prefix + "*", count=1000):
            n += self._r.delete(k)
        return n

    def close(self) -> None:
        self._r.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
