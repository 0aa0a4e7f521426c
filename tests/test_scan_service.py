"""ScanService: the decision and its listeners."""
from scanbridge.scan import ACCEPTED, REJECTED, ScanEvent, ScanService, Verdict


def test_failing_listener_does_not_take_the_verdict_away():
    service = ScanService()
    seen = []
    service.add_listener(lambda s, v: (_ for _ in ()).throw(RuntimeError("page down")))
    service.add_listener(lambda s, v: seen.append(v.verdict))
    v = service.handle(ScanEvent("dev", "test", 1, b"CODE"))
    assert v.verdict == ACCEPTED and seen == [ACCEPTED]


def test_decider_crash_becomes_a_named_rejection():
    def broken(scan):
        raise KeyError("x")
    v = ScanService(broken).handle(ScanEvent("dev", "test", 1, b"CODE"))
    assert v.verdict == REJECTED and v.reason == "internal_error"


def test_update_reaches_the_attached_link_only():
    service = ScanService()
    sent = []
    service.attach_device("dev", lambda s, v: sent.append((s.device_id, v.reason)))
    scan = ScanEvent("dev", "test", 1, b"CODE")
    assert service.update(scan, Verdict(ACCEPTED, "approved"))
    assert not service.update(ScanEvent("other", "test", 1, b"X"), Verdict(ACCEPTED, "approved"))
    assert sent == [("dev", "approved")]


def test_handle_many_uses_the_deciders_batch_entry_and_tells_listeners_in_order():
    batches = []

    class Batch:
        def __call__(self, scan):
            raise AssertionError("one by one while a batch entry exists")

        def many(self, scans):
            batches.append([s.seq for s in scans])
            return [Verdict(ACCEPTED if s.payload != b"BAD" else REJECTED, "r%d" % s.seq) for s in scans]
    service = ScanService(Batch())
    told = []
    service.add_listener(lambda s, v: told.append((s.seq, v.reason)))
    scans = [ScanEvent("d", "t", i, b"BAD" if i == 2 else b"OK") for i in (1, 2, 3)]
    out = service.handle_many(scans)
    assert batches == [[1, 2, 3]]
    assert [(v.verdict, v.reason) for v in out] == [(ACCEPTED, "r1"), (REJECTED, "r2"), (ACCEPTED, "r3")]
    assert told == [(1, "r1"), (2, "r2"), (3, "r3")]
    assert service.handle_many([]) == []


def test_handle_many_without_a_batch_entry_decides_one_by_one_and_isolates_a_crash():
    def decide(scan):
        if scan.payload == b"BOOM":
            raise ValueError("bug")
        return Verdict(ACCEPTED, "ok")
    out = ScanService(decide).handle_many([ScanEvent("d", "t", i, p) for i, p in enumerate([b"A", b"BOOM", b"C"])])
    assert [v.reason for v in out] == ["ok", "internal_error", "ok"]


def test_a_batch_decider_that_breaks_refuses_the_batch_by_name():
    class Broken:
        def __call__(self, scan):
            return Verdict(ACCEPTED, "ok")

        def many(self, scans):
            return []  # wrong length: nobody may be told "accepted" on a guess
    out = ScanService(Broken()).handle_many([ScanEvent("d", "t", i, b"X") for i in range(3)])
    assert [v.reason for v in out] == ["internal_error"] * 3


def test_token_verifier_decides_a_batch_with_one_ledger_call(tmp_path):
    from scanbridge.ledger import open_ledger
    from scanbridge.tokens import make_decider
    from scanbridge_tools.mint import demo_payloads
    demo = demo_payloads(9)
    ledger = open_ledger("sqlite:%s" % (tmp_path / "l.db"))
    calls = []
    submit = ledger.submit
    ledger.submit = lambda items: calls.append(len(items)) or submit(items)
    service = ScanService(make_decider(demo.trust_store, ledger))
    scans = [ScanEvent("d", "t", i, p) for i, (_, p) in enumerate(demo.payloads)]
    got = [(label, v.reason) for (label, _), v in zip(demo.payloads, service.handle_many(scans))]
    single = ScanService(make_decider(demo.trust_store, open_ledger("sqlite::memory:")))
    one_by_one = [(label, single.handle(s).reason) for (label, _), s in zip(demo.payloads, scans)]
    assert got == one_by_one  # same verdicts as deciding one at a time (replays included)
    assert len(calls) == 1
    ledger.close()
