"""PostgreSQL single-use ledger: a table with the token key as primary key (psycopg 3).

INSERT ... ON CONFLICT DO NOTHING RETURNING tells each bridge whether its row went in: the unique
index decides between bridges racing for one key. Commits are durable with the server's default
synchronous_commit=on. A batch of claims is one statement and one commit."""
from __future__ import annotations

import re
import threading
import time
import zlib
from typing import Optional, Sequence

import psycopg

from scanbridge.ledger import LedgerError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


class PostgresLedger:
    def __init__(self, url: str = "postgresql://postgres@127.0.0.1:5432/test", *,
                 table: str = "scanbridge_claims", connect_timeout: int = 5):
        if not _NAME.match(table):
            raise LedgerError("PostgreSQL ledger: table name %r is not a plain [schema.]name" % table)
        self.url = url
        self.table = table
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn: Optional[psycopg.Connection] = None
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    # One bridge at a time sets the table up: CREATE ... IF NOT EXISTS is not safe
                    # against a concurrent CREATE of the same table (the loser fails on the table's
                    # row type: DuplicateObject, or UniqueViolation in pg_type), which two bridges
                    # started together against a new ledger hit.  The lock ends with the transaction.
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(table.encode()),))
                    if "." in table:
                        conn.execute("CREATE SCHEMA IF NOT EXISTS %s" % table.split(".")[0])
                    conn.execute("CREATE TABLE IF NOT EXISTS %s (key bytea PRIMARY KEY, "
                                 "expires_at double precision NOT NULL, "
                                 "claimed_at double precision NOT NULL, owner bytea)" % table)
                    conn.execute("ALTER TABLE %s ADD COLUMN IF NOT EXISTS owner bytea" % table)
                    conn.execute("CREATE INDEX IF NOT EXISTS %s_expiry ON %s (expires_at)"
                                 % (table.split(".")[-1], table))
            except psycopg.Error as e:
                self._drop()
                raise LedgerError("PostgreSQL ledger %s: %s" % (self._safe_url(), e)) from e

    def _safe_url(self) -> str:
        return re.sub(r"//([^:@/]*):[^@/]*@", r"//\1:***@", self.url)  # never print a password

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
            except psycopg.Error as e:
                raise LedgerError("PostgreSQL ledger %s: %s" % (self._safe_url(), e)) from e
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def claim_many(self, items: Sequence[tuple]) -> list:
        if not items:
            return []
        keys = [bytes(it[0]) for it in items]
        exps = [float(it[1]) for it in items]
        owners = [bytes(it[2]) if len(it) > 2 and it[2] else None for it in items]
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction():
                    rows = conn.execute(
                        "INSERT INTO %s (key, expires_at, claimed_at, owner) "
                        "SELECT k, e, %%s, o FROM unnest(%%s::bytea[], %%s::float8[], %%s::bytea[]) AS t(k, e, o) "
                        "ON CONFLICT (key) DO NOTHING RETURNING key" % self.table,
                        (time.time(), keys, exps, owners)).fetchall()
                    won_keys = {bytes(r[0]) for r in rows}
                    ask = [k for k, o in zip(keys, owners) if o is not None and k not in won_keys]
                    held = {}
                    if ask:  # refused keys: granted anyway when this same owner holds them
                        held = {bytes(k): (bytes(o) if o is not None else None) for k, o in conn.execute(
                            "SELECT key, owner FROM %s WHERE key = ANY(%%s::bytea[])" % self.table,
                            (ask,)).fetchall()}
            except psycopg.Error as e:
                self._drop()  # reconnect on the next call
                raise LedgerError("PostgreSQL ledger %s: %s" % (self._safe_url(), e)) from e
        won = set(won_keys)
        first_owner = {}
        out = []
        for k, o in zip(keys, owners):  # a key twice in one batch: the first copy is the claim
            if k in won:
                out.append(True)
                won.discard(k)
                first_owner[k] = o
            elif k in first_owner:
                out.append(o is not None and first_owner[k] == o)
            else:
                out.append(o is not None and held.get(k) == o)
        return out

    def claim(self, key: bytes, expires_at: float, owner: Optional[bytes] = None) -> bool:
        return self.claim_many([(key, expires_at, owner)])[0]

    def is_claimed(self, key: bytes) -> bool:
        with self._lock:
            try:
                row = self._connection().execute("SELECT 1 FROM %s WHERE key = %%s" % self.table,
                                                 (bytes(key),)).fetchone()
            except psycopg.Error as e:
                self._drop()
                raise LedgerError("PostgreSQL ledger %s: %s" % (self._safe_url(), e)) from e
        return row is not None

    def prune(self, now: Optional[float] = None) -> int:
        with self._lock:
            try:
                cur = self._connection().execute("DELETE FROM %s WHERE expires_at < %%s" % self.table,
                                                 (time.time() if now is None else now,))
            except psycopg.Error as e:
                self._drop()
                raise LedgerError("PostgreSQL ledger %s: %s" % (self._safe_url(), e)) from e
        return cur.rowcount

    def drop_table(self) -> None:
        """Remove the table (tests use one table per run)."""
        with self._lock:
            self._connection().execute("DROP TABLE IF EXISTS %s" % self.table)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
