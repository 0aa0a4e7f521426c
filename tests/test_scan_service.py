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
