"""Signed one-time payment tokens: format (docs/tokens.md), trust store, offline verification.

    from scanbridge.tokens import TrustStore, make_decider
    from scanbridge.ledger import open_ledger
    decide = make_decider(TrustStore.load("trust.json"), open_ledger("sqlite:ledger.db"))
"""
from scanbridge.tokens.format import Token, TokenError, parse
from scanbridge.tokens.online import OnlineCode, classify_online
from scanbridge.tokens.trust import TrustedKey, TrustStore, TrustStoreError
from scanbridge.tokens.verify import REASONS, Verifier, make_decider

__all__ = ["Token", "TokenError", "parse", "OnlineCode", "classify_online", "TrustedKey",
           "TrustStore", "TrustStoreError", "REASONS", "Verifier", "make_decider"]
