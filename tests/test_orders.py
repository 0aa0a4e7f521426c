"""Orders on their own: amounts, one open order per till, persistence across a restart."""
import pytest

from scanbridge.orders import OrderBook, OrderError, format_amount, parse_amount
from scanbridge.outbox import Database
from scanbridge.policy import AUTHORIZE, OFFLINE, ONLINE, Policy


def test_amounts():
    assert parse_amount("12.30") == 1230 and parse_amount("12,3") == 1230 and parse_amount("7") == 700
    assert parse_amount(" 0.05 ") == 5 and parse_amount(450) == 450
    for bad in ("", "1.", ".5", "1.005", "-3", "1e3", "12.30 USD"):
        with pytest.raises(OrderError) as e:
            parse_amount(bad)
        assert e.value.reason == "bad_amount"
    assert format_amount(1230, "EUR") == "12.30 EUR"


def test_policy_routes():
    p = Policy.from_args("USD=50,EUR=40.5")
    assert p.limit_for("USD") == 5000 and p.limit_for("EUR") == 4050 and p.limit_for("GBP") == 5000
    assert p.route(5000, "USD", False) == OFFLINE and p.route(5001, "USD", False) == AUTHORIZE
    assert p.route(100, "USD", True) == ONLINE
    assert Policy.from_args("20").route(2001, "CNY", False) == AUTHORIZE


def test_orders_survive_a_restart(tmp_path):
    path = str(tmp_path / "o.db")
    book = OrderBook(Database(path))
    book.bind("scanner-9", "till-9")
    o = book.create("3.10", "usd", reference="x" * 100, till="till-9")
    assert o.currency == "USD" and len(o.reference) == 64
    book.db.close()
    book = OrderBook(Database(path))
    assert book.till_for("scanner-9") == "till-9" and book.till_for("other") == "till-1"
    cur = book.current("till-9")
    assert cur is not None and cur.id == o.id and cur.amount == 310
    assert book.scanners_of("till-9") == ["scanner-9"]
    events = []
    book.listeners.append(lambda ev, d: events.append((ev, d["id"])))
    book.cancel(o.id)
    assert events == [("cancelled", o.id)]
    with pytest.raises(OrderError) as e:
        book.cancel("o-nope")
    assert e.value.reason == "unknown_order"
