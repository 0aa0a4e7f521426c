"""SQLite single-use ledger (WAL, synchronous=FULL) with group commit: the default, zero setup.

A claim counts only once it is on disk: it returns after the COMMIT that wrote it, and with
synchronous=FULL that COMMIT syncs the WAL. One sync costs about as much as hundreds of inserts,
so claims that arrive together (several links, or `claim_many`) share one transaction and one
sync: a writer thread takes everything queued, commits once, then wakes every waiting caller.
Several processes may share one file; SQLite's write lock makes each claim atomic across them."""
from __future__ import annotations

import queue
import sqlite3
import threading
import time
from typing import Optional, Sequence

from scanbridge.batches import next_batch
from scanbridge.ledger import LedgerError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key BLOB PRIMARY KEY,
    expires_at REAL NOT NULL,
    claimed_at REAL NOT NULL,
    owner BLOB
) WITHOUT ROWID;
"""
# No index on expires_at: it would cost more per claim than the occasional full-scan prune
# (the table holds only the tokens still alive, and prune runs once a minute) saves.
PRUNE_EVERY_S = 60.0


def _owner(item) -> Optional[bytes]:
    return bytes(item[2]) if len(item) > 2 and item[2] else None


class _Request:
    """Claims submitted together; `wait()` returns their results once they are on disk."""
    __slots__ = ("items", "done", "result", "error", "path")

    def __init__(self, items, path=""):
        self.items = items
        self.done = threading.Event()
        self.result: Optional[list] = None
        self.error: Optional[BaseException] = None
        self.path = path

    def wait(self) -> list:
        self.done.wait()
        if self.error is not None:
            if isinstance(self.error, LedgerError):
                raise self.error
            raise LedgerError("SQLite ledger %s: %s" % (self.path, self.error)) from self.error
        return self.result  # type: ignore[return-value]


class SQLiteLedger:
    def __init__(self, path: str, *, group_commit: bool = True, max_batch: int = 512,
                 busy_timeout_ms: int = 10000):
        self.path = path
        self.url = "sqlite:" + path
        self.max_batch = max_batch
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       timeout=busy_timeout_ms / 1000)
            self._db.execute("PRAGMA busy_timeout=%d" % busy_timeout_ms)
        except sqlite3.Error as e:
            raise LedgerError("SQLite ledger %s: %s" % (path, e)) from e
        # Switching a new file to WAL and creating the table take locks that SQLite may refuse at
        # once (no busy wait) while another process does the same: retry until the busy timeout.
        deadline = time.monotonic() + busy_timeout_ms / 1000
        while True:
            try:
                self._setup()
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                    self._db.close()
                    raise LedgerError("SQLite ledger %s: %s" % (path, e)) from e
                time.sleep(0.01)
            except (sqlite3.Error, LedgerError) as e:
                self._db.close()
                if isinstance(e, LedgerError):
                    raise
                raise LedgerError("SQLite ledger %s: %s" % (path, e)) from e
        self._db_lock = threading.Lock()
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        self._queue: "queue.SimpleQueue[Optional[_Request]]" = queue.SimpleQueue()
        self._writer: Optional[threading.Thread] = None
        self._closed = False
        if group_commit:
            self._writer = threading.Thread(target=self._write_loop, name="ledger-commit", daemon=True)
            self._writer.start()

    def _setup(self) -> None:
        if self.path != ":memory:":
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError("SQLite ledger %s: could not switch to WAL (%s)" % (self.path, mode))
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(claims)")]
        if "owner" not in columns:  # a ledger file from before claims had owners
            self._db.execute("ALTER TABLE claims ADD COLUMN owner BLOB")

    # -- the one place that writes ------------------------------------------------------------
    def _commit(self, items: Sequence[tuple]) -> list:
        """Insert every (key, expires_at[, owner]) in one transaction; True where the key was new
        or is already held by the same owner."""
        now = time.time()
        out = []
        with self._db_lock:
            try:
                cur = self._db.cursor()
                cur.execute("BEGIN IMMEDIATE")  # take the write lock first: no upgrade deadlock
                try:
                    for item in items:
                        key, expires_at, owner = bytes(item[0]), float(item[1]), _owner(item)
                        cur.execute("INSERT OR IGNORE INTO claims (key, expires_at, claimed_at, owner) "
                                    "VALUES (?, ?, ?, ?)", (key, expires_at, now, owner))
                        won = cur.rowcount == 1
                        if not won and owner is not None:
                            row = cur.execute("SELECT owner FROM claims WHERE key = ?", (key,)).fetchone()
                            won = row is not None and row[0] == owner
                        out.append(won)
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise LedgerError("SQLite ledger %s: %s" % (self.path, e)) from e
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_S
                self._prune_locked(time.time())
        return out

    def _write_loop(self) -> None:
        while True:
            batch, stop = next_batch(self._queue, self.max_batch, lambda req: len(req.items))
            if not batch:
                return
            try:
                results = self._commit([item for req in batch for item in req.items])
                pos = 0
                for req in batch:
                    req.result = results[pos:pos + len(req.items)]
                    pos += len(req.items)
            except BaseException as e:  # every waiter hears it; nobody is told "claimed"
                for req in batch:
                    req.error = e
            for req in batch:
                req.done.set()
            if stop:
                return

    # -- API ----------------------------------------------------------------------------------
    def submit(self, items: Sequence[tuple]) -> _Request:
        """Queue claims for the next group commit and return at once; `.wait()` gives the
        results when they are durable. Lets a caller verify the next batch during the sync."""
        if self._closed:
            raise LedgerError("SQLite ledger %s is closed" % self.path)
        req = _Request(list(items), self.path)
        if self._writer is None or not req.items:
            try:
                req.result = self._commit(req.items) if req.items else []
            except BaseException as e:
                req.error = e
            req.done.set()
        else:
            self._queue.put(req)
        return req

    def claim_many(self, items: Sequence[tuple]) -> list:
        return self.submit(items).wait()

    def claim(self, key: bytes, expires_at: float, owner: Optional[bytes] = None) -> bool:
        return self.claim_many([(key, expires_at, owner)])[0]

    def is_claimed(self, key: bytes) -> bool:
        with self._db_lock:
            return self._db.execute("SELECT 1 FROM claims WHERE key = ?", (bytes(key),)).fetchone() is not None

    def _prune_locked(self, now: float) -> int:
        cur = self._db.execute("DELETE FROM claims WHERE expires_at < ?", (now,))
        return cur.rowcount

    def prune(self, now: Optional[float] = None) -> int:
        with self._db_lock:
            return self._prune_locked(time.time() if now is None else now)

    def count(self) -> int:
        with self._db_lock:
            return self._db.execute("SELECT count(*) FROM claims").fetchone()[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
        with self._db_lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
