"""`scanbridge trust`: list, show, add and revoke issuer public keys in the merchant's trust store.

Every change is validated and written atomically, so a running bridge (which reloads the file
when it changes) never sees a half-written or invalid store. Private keys are refused."""
from __future__ import annotations

import json
import sys
import time

from scanbridge.tokens.format import ALG_NAMES
from scanbridge.tokens.trust import (TrustedKey, TrustStore, TrustStoreError, default_path,
                                     format_time, parse_time)


def add_arguments(parser):
    parser.add_argument("--store", default=None, help="trust store file (default $SCANBRIDGE_TRUST "
                        "or ~/.config/scanbridge/trust.json)")
    sub = parser.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="every key with its state")
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one key in full (public entry)")
    sh.add_argument("kid")
    ad = sub.add_parser("add", help="install public key entries (from `scanbridge mint keygen`)")
    ad.add_argument("entry", nargs="+", help="JSON file with one entry, a list, or a whole store")
    ad.add_argument("--replace", action="store_true", help="replace an entry with the same kid")
    ad.add_argument("--not-before", help="override the validity start (ISO 8601 or unix seconds)")
    ad.add_argument("--not-after", help="override the validity end")
    rv = sub.add_parser("revoke", help="revoke a key: its codes are refused from now on")
    rv.add_argument("kid")
    rv.add_argument("--reason", default="")


def _state(k: TrustedKey, now: float) -> str:
    if k.revoked:
        return "revoked"
    if k.not_before is not None and now < k.not_before:
        return "not yet valid"
    if k.not_after is not None and now > k.not_after:
        return "expired"
    return "valid"


def _open(path: str, create: bool) -> TrustStore:
    try:
        return TrustStore.load(path)
    except TrustStoreError as e:
        if create and e.reason == "trust_store_missing":
            return TrustStore(path=path)
        raise


def _kid(text: str) -> bytes:
    try:
        kid = bytes.fromhex(text)
    except ValueError:
        raise TrustStoreError("kid %r is not hex" % text, "unknown_key") from None
    return kid


def main(args) -> int:
    path = args.store or default_path()
    try:
        return _run(args, path)
    except TrustStoreError as e:
        print("scanbridge trust: %s (%s)" % (e, e.reason), file=sys.stderr)
        return 1


def _run(args, path: str) -> int:
    now = time.time()
    if args.action == "list":
        store = _open(path, create=False)
        rows = [{"kid": k.kid_hex, "alg": ALG_NAMES[k.alg], "issuer": k.issuer, "state": _state(k, now),
                 "not_before": format_time(k.not_before), "not_after": format_time(k.not_after)}
                for k in store.keys()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print("%-8s  %-7s  %-13s  %-20s  %-20s  %s" % ("kid", "alg", "state", "not_before", "not_after", "issuer"))
            for r in rows:
                print("%-8s  %-7s  %-13s  %-20s  %-20s  %s" % (r["kid"], r["alg"], r["state"], r["not_before"] or "-",
                                                               r["not_after"] or "-", r["issuer"]))
        return 0
    if args.action == "show":
        store = _open(path, create=False)
        key = store.get(_kid(args.kid))
        if key is None:
            raise TrustStoreError("no key %s in %s" % (args.kid, path), "unknown_key")
        entry = key.entry()
        entry["state"] = _state(key, now)
        print(json.dumps(entry, indent=2))
        return 0
    if args.action == "add":
        store = _open(path, create=True)
        added = []
        for file in args.entry:
            incoming = TrustStore.load(file)  # refuses private keys, validates every entry
            for key in incoming.keys():
                if args.not_before or args.not_after:
                    from dataclasses import replace
                    key = replace(key, not_before=parse_time(args.not_before) if args.not_before else key.not_before,
                                  not_after=parse_time(args.not_after) if args.not_after else key.not_after)
                store.add(key, replace_existing=args.replace)
                added.append(key.kid_hex)
        store.save(path)
        print("added %s to %s" % (", ".join(added), path))
        return 0
    if args.action == "revoke":
        store = _open(path, create=False)
        key = store.revoke(_kid(args.kid), reason=args.reason)
        store.save(path)
        print("revoked %s (%s) in %s" % (key.kid_hex, key.issuer, path))
        return 0
    return 2
