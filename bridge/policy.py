"""Merchant policy: which accepted codes may be shown green offline, and which wait for an answer.

- A signed code verified locally completes an order offline (green at once, the confirmation is
  forwarded later) when the order's amount is at most the offline limit for its currency.
- Above the limit the bridge answers PENDING at once and shows green only after the payment
  backend approves (an "authorization").
- Online wallet codes (Alipay/WeChat-style numbers) cannot be checked offline: they always go to
  the acquirer endpoint, whose answer decides (PENDING first)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

OFFLINE = "offline"
AUTHORIZE = "authorize"
ONLINE = "online"

DEFAULT_OFFLINE_LIMIT = 5000  # minor units: 50.00 in the order's currency


@dataclass
class Policy:
    offline_limit: int = DEFAULT_OFFLINE_LIMIT
    limits: dict = field(default_factory=dict)  # currency -> limit in minor units (overrides)

    def limit_for(self, currency: str) -> int:
        return int(self.limits.get(currency, self.offline_limit))

    def route(self, amount: int, currency: str, online_code: bool) -> str:
        """OFFLINE, AUTHORIZE or ONLINE for an order of `amount` paid with an accepted code."""
        if online_code:
            return ONLINE
        return OFFLINE if amount <= self.limit_for(currency) else AUTHORIZE

    @classmethod
    def from_args(cls, offline_limit: Optional[str] = None) -> "Policy":
        """"50.00" or "USD=50.00,EUR=40" (minor units are derived from the decimal text)."""
        from scanbridge.orders import parse_amount
        if not offline_limit:
            return cls()
        limits, default = {}, DEFAULT_OFFLINE_LIMIT
        for part in offline_limit.split(","):
            cur, sep, val = part.partition("=")
            if sep:
                limits[cur.strip().upper()] = parse_amount(val)
            else:
                default = parse_amount(cur)
        return cls(default, limits)
