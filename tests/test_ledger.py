"""Single-use ledger backends against the real thing: SQLite files, Redis and PostgreSQL on
127.0.0.1. Claims are atomic and once-only, survive a restart, expire and get pruned."""
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest

from scanbridge.ledger import LedgerError, open_ledger
from scanbridge.ledger.sqlite import SQLiteLedger

RUN = uuid.uuid4().hex[:10]
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def redis_available():
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


def pg_available():
    try:
        import psycopg
        psycopg.connect(PG_URL, connect_timeout=2).close()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "sqlite-nogroup", "redis", "postgres", "counter-db"])
def ledger(request, tmp_path):
    kind = request.param
    if kind == "counter-db":  # the claim inside the counter's own SQLite file (scanbridge.counter)
        from scanbridge.counter import CounterLedger
        from scanbridge.outbox import Database
        db = Database(str(tmp_path / "counter.db"))
        led = CounterLedger(db)
        led.is_claimed = lambda key: db.query("SELECT 1 FROM claims WHERE key=? AND expires_at>?",
                                             (key, time.time())) != []
        yield led
        db.close()
    elif kind == "redis":
        if not redis_available():
            pytest.skip("no Redis on 127.0.0.1:6379")
        led = open_ledger("%s?prefix=sbtest:%s:%s:" % (REDIS_URL, RUN, uuid.uuid4().hex[:6]))
        yield led
        led.clear()
        led.close()
    elif kind == "postgres":
        if not pg_available():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        led = open_ledger("%s?table=sbtest_%s_%s" % (PG_URL, RUN, uuid.uuid4().hex[:6]))
        yield led
        led.drop_table()
        led.close()
    else:
        led = open_ledger("sqlite://%s%s" % (tmp_path / "ledger.db", "?group_commit=0" if kind.endswith("nogroup") else ""))
        yield led
        led.close()


def test_claim_once(ledger):
    exp = time.time() + 60
    assert ledger.claim(b"k1", exp) is True
    assert ledger.claim(b"k1", exp) is False
    assert ledger.claim(b"k2", exp) is True
    assert ledger.is_claimed(b"k1") and not ledger.is_claimed(b"k3")


def test_claim_many_with_duplicates_in_one_batch(ledger):
    exp = time.time() + 60
    ledger.claim(b"old", exp)
    assert ledger.claim_many([(b"a", exp), (b"b", exp), (b"a", exp), (b"old", exp), (b"c", exp)]) == \
        [True, True, False, False, True]
    assert ledger.claim_many([]) == []


def test_threads_race_exactly_one_winner_each(ledger):
    keys = [b"race-%d" % i for i in range(200)]
    exp = time.time() + 60
    wins = []
    lock = threading.Lock()
    go = threading.Barrier(8)

    def run(seed):
        order = keys[seed::1] if seed % 2 else list(reversed(keys))
        go.wait()
        mine = [k for k in order if ledger.claim(k, exp)]
        with lock:
            wins.extend(mine)
    ts = [threading.Thread(target=run, args=(s,)) for s in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert sorted(wins) == sorted(keys)


def test_expiry_and_prune(ledger):
    now = time.time()
    ledger.claim(b"short", now + 1.0)
    ledger.claim(b"long", now + 600)
    if not hasattr(ledger, "_r"):
        assert ledger.prune(now + 5) == 1  # our own clock decides in SQL backends
        assert not ledger.is_claimed(b"short") and ledger.is_claimed(b"long")
    else:  # Redis expires keys itself (TTL given relative, never in the past)
        assert 0 < ledger._r.pttl(ledger.prefix + b"short".hex()) <= 1001
        assert ledger._r.pttl(ledger.prefix + b"long".hex()) > 500_000
        ledger.claim(b"past", now - 100)  # an expiry already gone still holds for a moment
        assert ledger.is_claimed(b"past")


def test_sqlite_is_wal_and_synchronous_full(tmp_path):
    led = SQLiteLedger(str(tmp_path / "l.db"))
    assert led._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert led._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    led.close()


def test_sqlite_restart_refuses_what_it_accepted(tmp_path):
    path = str(tmp_path / "l.db")
    led = open_ledger("sqlite://" + path)
    assert led.claim(b"paid", time.time() + 60)
    led.close()
    led = open_ledger(path)
    assert led.claim(b"paid", time.time() + 60) is False
    led.close()


_KILL_CHILD = r"""
import sys, time
from scanbridge.ledger import open_ledger
led = open_ledger(sys.argv[1])
for i in range(int(sys.argv[2])):
    assert led.claim(b"k%d" % i, time.time() + 60)
    print(i, flush=True)  # reported only after the claim returned, i.e. after its commit
time.sleep(60)
"""


def test_sqlite_claim_survives_sigkill_right_after_it_returns(tmp_path):
    """The process dies the instant after claim() returns (no close, no clean exit): every claim
    it reported is on disk when the next process opens the file."""
    path = str(tmp_path / "l.db")
    proc = subprocess.Popen([sys.executable, "-c", _KILL_CHILD, "sqlite://" + path, "50"],
                            stdout=subprocess.PIPE, text=True)
    reported = []
    for line in proc.stdout:
        reported.append(int(line))
        if len(reported) == 50:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    led = SQLiteLedger(path)
    assert all(led.claim(b"k%d" % i, time.time() + 60) is False for i in reported)
    led.close()


def test_sqlite_two_connections_to_one_file(tmp_path):
    path = str(tmp_path / "l.db")
    a, b = SQLiteLedger(path), SQLiteLedger(path, group_commit=False)
    assert a.claim(b"x", time.time() + 60) and not b.claim(b"x", time.time() + 60)
    assert b.claim(b"y", time.time() + 60) and not a.claim(b"y", time.time() + 60)
    a.close()
    b.close()


def test_factory_urls(tmp_path):
    led = open_ledger("sqlite:" + str(tmp_path / "a.db"))
    assert isinstance(led, SQLiteLedger) and led.path == str(tmp_path / "a.db")
    led.close()
    led = open_ledger("sqlite::memory:")
    assert led.path == ":memory:" and led.claim(b"k", time.time() + 5)
    led.close()
    with pytest.raises(LedgerError):
        open_ledger("mongodb://127.0.0.1/x")
    with pytest.raises(LedgerError):
        open_ledger(PG_URL + "?table=bad;name")


def test_unreachable_backends_raise_ledger_error():
    from scanbridge.ledger.redis import RedisLedger
    led = RedisLedger("redis://127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(LedgerError):
        led.claim(b"k", time.time() + 5)
    with pytest.raises(LedgerError):
        open_ledger("postgresql://postgres@127.0.0.1:1/test")


def test_sqlite_closed_ledger_refuses(tmp_path):
    led = SQLiteLedger(str(tmp_path / "l.db"))
    led.close()
    with pytest.raises(LedgerError):
        led.claim(b"k", time.time() + 5)


def test_sqlite_disk_error_reaches_every_waiter(tmp_path):
    path = str(tmp_path / "l.db")
    led = SQLiteLedger(path)
    blocker = sqlite3.connect(path, timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past our busy timeout
    led._db.execute("PRAGMA busy_timeout=100")
    with pytest.raises(LedgerError):
        led.claim(b"k", time.time() + 5)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert led.claim(b"k", time.time() + 5)  # nothing was recorded by the failed attempt
    led.close()


def test_redis_reports_its_durability():
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    from scanbridge.ledger.redis import RedisLedger
    led = RedisLedger(REDIS_URL)
    aof = led._r.config_get("appendonly")["appendonly"]
    fsync = led._r.config_get("appendfsync")["appendfsync"]
    warning = led.durability()
    assert (warning is None) == (aof == "yes" and fsync == "always")
    if aof != "yes":
        assert "appendonly" in warning
    led.close()


_OPEN_AT = r"""
import sys, time
from scanbridge.ledger.sqlite import SQLiteLedger
t = float(sys.argv[2])
while time.time() < t:
    pass
led = SQLiteLedger(sys.argv[1])
print(led.claim(b"first", time.time() + 60))
led.close()
"""


def test_sqlite_processes_creating_one_new_file_at_once(tmp_path):
    """Several bridges started together on a fresh file: WAL switch and schema creation race
    (SQLite refuses some of those locks without waiting); every one opens, one claim wins."""
    for round_ in range(5):
        path = str(tmp_path / ("new%d.db" % round_))
        at = time.time() + 0.4
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, path, repr(at)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err[-1500:]
            outs.append(out.strip())
        assert sorted(outs) == ["False", "False", "True"]


def test_the_same_owner_may_claim_again_nobody_else(ledger):
    """A scan redelivered after a bridge died between its claim and its RESULT is the same
    presentation: its claim is granted again. Another scan, or an anonymous claim, is refused."""
    exp = time.time() + 60
    assert ledger.claim(b"tok", exp, b"dev1/7/3") is True
    assert ledger.claim(b"tok", exp, b"dev1/7/3") is True  # the same scan, delivered again
    assert ledger.claim(b"tok", exp, b"dev1/7/4") is False  # the next scan of that code
    assert ledger.claim(b"tok", exp, b"dev2/9/3") is False
    assert ledger.claim(b"tok", exp) is False
    assert ledger.claim(b"anon", exp) is True
    assert ledger.claim(b"anon", exp, b"dev1/7/3") is False  # an owner cannot take an anonymous claim
    assert ledger.claim_many([(b"m", exp, b"a/1/1"), (b"m", exp, b"a/1/2"), (b"m", exp, b"a/1/1"),
                              (b"tok", exp, b"dev1/7/3"), (b"n", exp)]) == [True, False, True, True, True]


def test_sqlite_ledger_file_from_before_owners_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE claims (key BLOB PRIMARY KEY, expires_at REAL NOT NULL, "
               "claimed_at REAL NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO claims VALUES (?, ?, ?)", (b"old", time.time() + 60, time.time()))
    db.commit()
    db.close()
    led = SQLiteLedger(str(path))
    try:
        assert led.claim(b"old", time.time() + 60, b"d/1/1") is False  # what it held, it still holds
        assert led.claim(b"new", time.time() + 60, b"d/1/1") is True
        assert led.claim(b"new", time.time() + 60, b"d/1/1") is True
    finally:
        led.close()


def test_bridges_started_together_set_up_a_new_postgres_ledger_once():
    """Twelve bridges opening the same new table at one moment all get a working ledger, for
    each of sixteen new tables (a bare CREATE TABLE IF NOT EXISTS race fails the losers on the
    table's row type)."""
    if not pg_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    for _ in range(16):
        url = "%s?table=sbsetup_%s" % (PG_URL, uuid.uuid4().hex[:10])
        start = threading.Barrier(12)
        opened, errors = [], []

        def bridge():
            start.wait()
            try:
                opened.append(open_ledger(url))
            except Exception as e:  # the failure this test is about
                errors.append(e)

        threads = [threading.Thread(target=bridge) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert errors == [] and len(opened) == 12
            claims = [led.claim(b"k" * 12, time.time() + 60) for led in opened]
            assert claims.count(True) == 1  # one table, shared
        finally:
            for led in opened[1:]:
                led.close()
            if opened:
                opened[0].drop_table()
                opened[0].close()
