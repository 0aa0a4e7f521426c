"""Command-line options that set up token verification for a bridge command (`scanbridge run`):
the trust store file, the ledger URL and the clock-skew allowance, and the decider built from them."""
from __future__ import annotations

from typing import Optional

from scanbridge.ledger import default_url
from scanbridge.tokens.trust import TrustStore, default_path
from scanbridge.tokens.verify import DEFAULT_SKEW_S, make_decider


def add_arguments(parser) -> None:
    g = parser.add_argument_group("payment tokens")
    g.add_argument("--trust", default=None, help="trust store of issuer public keys (default $SCANBRIDGE_TRUST "
                   "or ~/.config/scanbridge/trust.json)")
    g.add_argument("--ledger", default=None,
                   help="single-use ledger: sqlite:PATH, redis://..., postgresql://... (default "
                   "$SCANBRIDGE_LEDGER or sqlite:~/.local/share/scanbridge/ledger.db)")
    g.add_argument("--skew", type=float, default=DEFAULT_SKEW_S, help="clock-skew allowance in seconds")


def decider_from_args(args, trust_store: Optional[TrustStore] = None):
    """(decider, ledger) for the parsed options; close the ledger when the bridge stops.
    Raises TrustStoreError / LedgerError (each with .reason) when either cannot be opened."""
    from scanbridge.ledger import open_ledger
    store = trust_store or TrustStore.load(getattr(args, "trust", None) or default_path())
    ledger = open_ledger(getattr(args, "ledger", None) or default_url())
    return make_decider(store, ledger, skew_s=getattr(args, "skew", DEFAULT_SKEW_S)), ledger
