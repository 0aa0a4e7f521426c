"""The single-use ledger: claim a token's key once, atomically, until it expires; open one by URL.

Every backend offers `claim(key, expires_at, owner=None) -> bool`, `claim_many([(key, expires_at)
or (key, expires_at, owner), ...]) -> [bool]`, `prune(now=None) -> int` and `close()`. A claim
returns only once it is durable for that backend (see docs/tokens.md, "Single-use ledger").

`owner` names the presentation that claims (the scan: device, link session, sequence number). A
key is granted once; asking again with the same owner is granted again, so a scan redelivered
after a bridge died between its claim and its RESULT gets its verdict back instead of "replayed".
Any other owner, or none, is refused.

URLs: `sqlite:///abs/path.db`, `sqlite:relative.db`, `sqlite::memory:` (the default backend;
default file `~/.local/share/scanbridge/ledger.db` or $SCANBRIDGE_LEDGER),
`redis://127.0.0.1:6379/0?prefix=scanbridge:`, `postgresql://postgres@127.0.0.1:5432/test?table=t`."""
from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def default_url() -> str:
    """$SCANBRIDGE_LEDGER, else an SQLite file at a fixed place in the user's data folder (not the
    current directory: a bridge restarted from elsewhere must still find what it accepted)."""
    return os.environ.get("SCANBRIDGE_LEDGER") or "sqlite:" + os.path.join(
        os.path.expanduser("~"), ".local", "share", "scanbridge", "ledger.db")


DEFAULT_URL = default_url()


class LedgerError(RuntimeError):
    """The ledger could not record or answer a claim. `reason` is "ledger_unavailable"."""
    reason = "ledger_unavailable"


def _split_options(url: str, names: tuple) -> tuple:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    opts = {k: v for k, v in query if k in names}
    rest = [(k, v) for k, v in query if k not in names]
    return urlunsplit(parts._replace(query=urlencode(rest))), opts


def open_ledger(url: str = ""):
    """A ledger for `url` (a bare path means an SQLite file; empty means `default_url()`)."""
    url = url or default_url()
    if url.startswith("redis://") or url.startswith("rediss://") or url.startswith("unix://"):
        from scanbridge.ledger.redis import RedisLedger
        clean, opts = _split_options(url, ("prefix",))
        return RedisLedger(clean, prefix=opts.get("prefix", "scanbridge:claim:"))
    if url.startswith(("postgresql://", "postgres://")):
        from scanbridge.ledger.postgres import PostgresLedger
        clean, opts = _split_options(url, ("table",))
        return PostgresLedger(clean, table=opts.get("table", "scanbridge_claims"))
    from scanbridge.ledger.sqlite import SQLiteLedger
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        if rest.startswith("//"):
            rest = rest[2:]  # sqlite:///abs/path -> /abs/path
        path, _, query = rest.partition("?")
        opts = dict(parse_qsl(query))
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SQLiteLedger(path or ":memory:",
                            group_commit=opts.get("group_commit", "1") not in ("0", "false", "no"))
    if "://" in url:
        raise LedgerError("unknown ledger URL scheme in %r (sqlite:, redis://, postgresql://)" % url)
    return SQLiteLedger(url)
