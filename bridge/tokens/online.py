"""Payment codes of the big wallets that are verified online by the acquirer, not by signature.

Alipay-style and WeChat-Pay-style customer codes are 18 digits; the first two digits tell the
wallet (Alipay 25-30, WeChat 10-15). They cannot be checked offline, so the bridge classifies them
and the confirmation path forwards them to the acquirer instead of rejecting them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

ONLINE_REASON = "online_verification"

# (wallet, lowest and highest two-digit prefix, code length)
_WALLETS = (("alipay", 25, 30, 18), ("wechat", 10, 15, 18))


@dataclass(frozen=True)
class OnlineCode:
    wallet: str  # "alipay" | "wechat"
    code: str  # the digits as read
    kind: str = "online"

    @property
    def ledger_key(self) -> bytes:
        return b"online:" + self.code.encode("ascii")

    def summary(self) -> dict:
        return {"kind": self.kind, "wallet": self.wallet, "code": self.code}

    @property
    def masked(self) -> str:
        """For logs and screens: the code is a bearer credential until the acquirer has used it."""
        return self.code[:4] + "*" * (len(self.code) - 8) + self.code[-4:]


def classify_online(payload: bytes) -> Optional[OnlineCode]:
    """An OnlineCode when `payload` is one of the known online wallet codes, else None."""
    text = payload.strip()
    if not (16 <= len(text) <= 24) or not text.isdigit():
        return None
    code = text.decode("ascii")
    prefix = int(code[:2])
    for wallet, low, high, length in _WALLETS:
        if len(code) == length and low <= prefix <= high:
            return OnlineCode(wallet, code)
    return None
