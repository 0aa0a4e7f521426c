"""The fleet bench itself (scanbridge bench fleet), small: simulated scanners publish signed tokens
through a real Mosquitto to two bridge processes in one share group; every scan is answered
once, the two bridges split the work, and one ledger file between them refuses nothing twice.
Its latency figures are not asserted (a bench, not a timed test)."""
import pytest

from scanbridge_tools.bench import fleet
from scanbridge_tools.broker import Broker

pytestmark = pytest.mark.skipif(not Broker.available(), reason="mosquitto is not installed")


def test_two_bridges_split_a_fleet_and_answer_every_scan_once():
    out = fleet.run(scanners=20, rate=100, seconds=2, drain=15, anchor_seconds=0.5, bridges=2)
    assert out["sent"] == 200
    assert out["accepted"] == out["sent"]
    assert out["lost"] == 0 and out["duplicates"] == 0
    split = out["bridge"]["scans_per_bridge"]
    assert len(split) == 2 and sum(split) == out["sent"]
    assert min(split) > 0, split  # the share group gave both bridges scans
    assert out["bridge"]["reasons"] == {"ok": out["sent"]}  # every token verified and claimed once
    assert out["anchor"]["received"] == out["anchor"]["sent"]
